/*
 * test_bodylimit.c — `body_limit SIZE` with a real gwd and origin: 413
 * from the head when Content-Length is over the limit (the body is never
 * read: the answer comes while the client has sent only the head, and a
 * client waiting on Expect: 100-continue gets the 413 instead of 100),
 * 413 while streaming a chunked upload (also one far over the limit: gwd
 * answers on the socket itself and closes lingering), exact limits, the smaller of
 * body_limit and limits.max_body_size, declaration order against other
 * access directives, body_limit 0, and routes without a proxy.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"

static int g_port;

static void start(const char *extra_yaml, const char *rules)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n"
	           "threads: 1\n%s", g_port, extra_yaml ? extra_yaml : "");
	gwt_gwd("gw.yaml", g_port);
}

static gwt_resp *post(const char *path, uint64_t n, int chunked)
{
	gwt_req q = { .url = gwt_url(g_port, path), .gen_len = n, .chunked = chunked,
	              .has_body = 1 };
	return gwt_http(&q);
}

static void assert_413(const gwt_resp *r)
{
	ck_assert_msg(r->curl_code == 0, "curl: %s", r->error);
	ck_assert_int_eq(r->status, 413);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"request body too large\",\"request_id\":\"%s\"}",
	                                   gwt_hdr(r, "X-Request-Id")));
}

static void assert_echoed(const gwt_resp *r, uint64_t n)
{
	ck_assert_msg(r->curl_code == 0, "curl: %s", r->error);
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "body_len")), (json_int_t)n);
	char want[65];
	gwt_pattern_sha256(n, want);
	ck_assert_str_eq(gwt_echo_str(r, "body_sha256"), want);
}

static const char *rules(origin *o)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                "route small { match path ^= \"/small/\"; rewrite path strip_prefix \"/small\";"
	                " body_limit 1k; proxy a; }\n"
	                "route big { match path ^= \"/big/\"; rewrite path strip_prefix \"/big\";"
	                " body_limit 10k; proxy a; }\n"
	                "route zero { match path ^= \"/zero/\"; rewrite path strip_prefix \"/zero\";"
	                " body_limit 0; proxy a; }\n"
	                "route own { match path == \"/own\"; body_limit 1k; respond 200 \"own\\n\"; }\n"
	                "route deny_first { match path ^= \"/df/\"; deny all; body_limit 1k; proxy a; }\n"
	                "route limit_first { match path ^= \"/lf/\"; body_limit 1k; deny all; proxy a; }\n"
	                "route r { match any; proxy a; }\n", origin_port(o));
}

START_TEST(content_length)
{
	origin *o = gwt_origin("a");
	start(NULL, rules(o));
	/* (a large body the server does not read may make the client's send
	 * fail before it reads the 413: answered_before_the_body tests that
	 * case on a raw socket) */
	assert_413(post("/small/echo", 1025, 0));
	assert_413(post("/small/echo", 60000, 0));
	ck_assert_uint_eq(origin_count(o), 0);
	assert_echoed(post("/small/echo", 1024, 0), 1024);
	assert_echoed(post("/small/echo", 0, 0), 0);
	/* other routes are not limited by it */
	assert_echoed(post("/echo", 100000, 0), 100000);
	/* a route without a proxy refuses the same way */
	assert_413(post("/own", 2000, 0));
	gwt_resp *r = post("/own", 1000, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "own\n");
}
END_TEST

START_TEST(answered_before_the_body)
{
	origin *o = gwt_origin("a");
	start(NULL, rules(o));
	/* only the head is sent: the 413 comes anyway, and the connection is
	 * closed after it (the body will never be read) */
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	gwt_sendf(fd, "POST /small/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
	int eof = 0;
	const char *a = gwt_recv_all(fd, 3000, NULL, &eof);
	ck_assert_int_eq(gwt_raw_status(a), 413);
	ck_assert_int_eq(eof, 1);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(a), "request body too large"));
	/* Expect: 100-continue: the client gets the 413, never a 100 */
	fd = gwt_connect("127.0.0.1", g_port, 2000);
	gwt_sendf(fd, "POST /small/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
	              "Expect: 100-continue\r\n\r\n");
	a = gwt_recv_all(fd, 3000, NULL, &eof);
	ck_assert_int_eq(gwt_raw_status(a), 413);
	ck_assert_ptr_null(strstr(a, " 100 "));
	/* under the limit, 100-continue goes on as usual */
	fd = gwt_connect("127.0.0.1", g_port, 2000);
	gwt_sendf(fd, "POST /small/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	              "Expect: 100-continue\r\nConnection: close\r\n\r\n");
	a = gwt_recv_all(fd, 1000, NULL, &eof);
	ck_assert_int_eq(gwt_raw_status(a), 100);
	gwt_sendf(fd, "hello");
	a = gwt_recv_all(fd, 3000, NULL, &eof);
	ck_assert_int_eq(gwt_raw_status(a), 200);
	ck_assert_ptr_nonnull(strstr(a, "\"body_len\": 5"));
	ck_assert_uint_eq(origin_count(o), 1);
}
END_TEST

START_TEST(chunked)
{
	origin *o = gwt_origin("a");
	start(NULL, rules(o));
	assert_413(post("/small/echo", 5000, 1));
	assert_413(post("/big/echo", 10241, 1));
	assert_echoed(post("/small/echo", 1024, 1), 1024);
	assert_echoed(post("/big/echo", 10240, 1), 10240);
	/* the connection is usable after a streamed 413 */
	gwt_client *c = gwt_client_new();
	gwt_req q = { .url = gwt_url(g_port, "/small/echo"), .gen_len = 3000, .chunked = 1,
	              .client = c };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 413);
	gwt_req g = { .url = gwt_url(g_port, "/name"), .client = c };
	r = gwt_http(&g);
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_str_eq(r->body, "a");
}
END_TEST

START_TEST(chunked_far_over)
{
	/* a chunked upload far over the limit (more than gwd reads and drops
	 * before it gives up on the body): the client still gets the 413,
	 * not a reset, both with and without Expect: 100-continue */
	origin *o = gwt_origin("a");
	start(NULL, rules(o));
	static const char *const no_expect[] = { "Expect:", NULL };
	assert_413(post("/small/echo", 8u << 20, 1));
	gwt_req q = { .url = gwt_url(g_port, "/small/echo"), .gen_len = 8u << 20, .chunked = 1,
	              .has_body = 1, .headers = no_expect };
	assert_413(gwt_http(&q));
	/* a Content-Length body sent whole without waiting for an answer
	 * (refused from the head: unlike the streamed ones above, it never
	 * reaches the origin) */
	unsigned seen = origin_count(o);
	gwt_req l = { .url = gwt_url(g_port, "/small/echo"), .gen_len = 8u << 20,
	              .has_body = 1, .headers = no_expect };
	assert_413(gwt_http(&l));
	ck_assert_uint_eq(origin_count(o), seen);
}
END_TEST

START_TEST(with_max_body_size)
{
	/* the smaller limit applies, whichever it is */
	origin *o = gwt_origin("a");
	start("limits: {max_body_size: 2k}\n", rules(o));
	assert_413(post("/big/echo", 2049, 0));      /* body_limit 10k, max 2k */
	assert_413(post("/big/echo", 3000, 1));
	assert_echoed(post("/big/echo", 2048, 0), 2048);
	assert_413(post("/small/echo", 1500, 0));    /* body_limit 1k, max 2k */
	assert_413(post("/echo", 2049, 0));          /* no body_limit */
	assert_echoed(post("/echo", 2048, 1), 2048);
}
END_TEST

START_TEST(order_and_zero)
{
	origin *o = gwt_origin("a");
	start(NULL, rules(o));
	/* access directives run in declaration order: the first refusal wins */
	gwt_resp *r = post("/df/echo", 5000, 0);
	ck_assert_int_eq(r->status, 403);
	assert_413(post("/lf/echo", 5000, 0));
	ck_assert_int_eq(post("/lf/echo", 10, 0)->status, 403);
	/* body_limit 0: no body at all */
	assert_413(post("/zero/echo", 1, 0));
	assert_413(post("/zero/echo", 1, 1));
	gwt_req g = { .url = gwt_url(g_port, "/zero/echo") };
	r = gwt_http(&g);
	ck_assert_int_eq(r->status, 200);
	ck_assert_uint_eq(origin_count(o), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("body_limit");
	TCase *t = tcase_create("body_limit");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, content_length);
	tcase_add_test(t, answered_before_the_body);
	tcase_add_test(t, chunked);
	tcase_add_test(t, chunked_far_over);
	tcase_add_test(t, with_max_body_size);
	tcase_add_test(t, order_and_zero);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

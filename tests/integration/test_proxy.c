/*
 * test_proxy.c — gwd as a reverse proxy, black box: a real gwd in front of
 * in-process origins (origin.h) on 127.0.0.1. Forwarding headers,
 * hop-by-hop headers in both directions, bodies both ways (1 MB, chunked,
 * 100 MB), HEAD/204/304, 502/503/504, failures after the response started,
 * retries, balancing, keep-alive and the limits.
 */
#include <config.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "gwd_common.h"

static const char *one_upstream(origin *o, const char *ups_extra, const char *route_extra)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; %s }\n"
	                "route r { match any; %s proxy a; }\n",
	                origin_port(o), ups_extra ? ups_extra : "", route_extra ? route_extra : "");
}

/* ------------------------------------------------------------ headers */

START_TEST(forwarding_headers)
{
	origin *o = gwt_origin("a");
	int port = gwdt_start(NULL, one_upstream(o, NULL, NULL));
	const char *h[] = { "X-Forwarded-For: 1.2.3.4", "X-Request-Id: client-id-7",
	                    "X-Custom: kept", NULL };
	gwt_resp *r = gwdt_get_h("/echo/a?x=1&y=%2f%20&&z=%zz", h);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "a");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-For"), "1.2.3.4, 127.0.0.1");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-Proto"), "http");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-Host"), gwt_strf("127.0.0.1:%d", port));
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Real-IP"), "127.0.0.1");
	ck_assert_str_eq(gwt_echo_hdr(r, "Host"), gwt_strf("127.0.0.1:%d", port));
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Custom"), "kept");
	/* the client's id is kept, upstream and in the answer */
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Request-Id"), "client-id-7");
	ck_assert_str_eq(gwt_hdr(r, "X-Request-Id"), "client-id-7");
	ck_assert_uint_eq(gwt_hdr_count(r, "X-Request-Id"), 1);
	/* the query string byte for byte */
	ck_assert_str_eq(gwt_echo_str(r, "query"), "x=1&y=%2f%20&&z=%zz");
	ck_assert_str_eq(gwt_echo_str(r, "uri"), "/echo/a?x=1&y=%2f%20&&z=%zz");
	/* no client X-Forwarded-For: just the client address */
	r = gwdt_get("/echo");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-For"), "127.0.0.1");
	/* a generated id: 32 hex digits, the same upstream and in the answer */
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_msg(gwdt_is_hex(id, 32), "generated id '%s'", id ? id : "(none)");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Request-Id"), id);
	ck_assert_str_ne(gwt_hdr(gwdt_get("/echo"), "X-Request-Id"), id);
}
END_TEST

START_TEST(hop_by_hop_request)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, one_upstream(o, NULL, NULL));
	const char *h[] = { "Connection: keep-alive, X-Hop", "X-Hop: secret", "Keep-Alive: timeout=5",
	                    "TE: trailers", "Trailer: X-T", "Proxy-Authorization: Basic eDp5",
	                    "Proxy-Connection: keep-alive", "X-End: 1", NULL };
	gwt_resp *r = gwdt_get_h("/echo", h);
	ck_assert_int_eq(r->status, 200);
	const char *gone[] = { "Connection", "X-Hop", "Keep-Alive", "TE", "Trailer",
	                       "Proxy-Authorization", "Proxy-Connection", "Transfer-Encoding" };
	for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
		ck_assert_msg(gwt_echo_hdr(r, gone[i]) == NULL, "%s reached the origin: %s", gone[i],
		              gwt_echo_hdr(r, gone[i]));
	ck_assert_str_eq(gwt_echo_hdr(r, "X-End"), "1");
}
END_TEST

START_TEST(hop_by_hop_response)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, one_upstream(o, NULL, NULL));
	gwt_resp *r = gwdt_get("/headers?h=Connection:X-Secret&h=X-Secret:1&h=Keep-Alive:timeout%3D5"
	                       "&h=Proxy-Connection:x&h=Trailer:X-T&h=Upgrade:foo&h=X-Kept:yes");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "ok\n");
	ck_assert_str_eq(gwt_hdr(r, "X-Kept"), "yes");
	const char *gone[] = { "X-Secret", "Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade" };
	for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
		ck_assert_msg(gwt_hdr(r, gone[i]) == NULL, "%s reached the client", gone[i]);
	/* and the connection to the client stays usable */
	const char *c = gwt_hdr(r, "Connection");
	ck_assert_msg(c == NULL || strcasecmp(c, "close"), "Connection: %s", c);
}
END_TEST

START_TEST(host_kept_or_set)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                          "route set { match path ^= \"/set/\"; rewrite path strip_prefix \"/set\";"
	                          " set_header request \"Host\" \"backend.internal\"; proxy a; }\n"
	                          "route r { match any; proxy a; }\n", origin_port(o)));
	const char *h[] = { "Host: www.example.com", NULL };
	gwt_resp *r = gwdt_get_h("/echo", h);
	ck_assert_str_eq(gwt_echo_hdr(r, "Host"), "www.example.com");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-Host"), "www.example.com");
	r = gwdt_get_h("/set/echo", h);
	ck_assert_str_eq(gwt_echo_str(r, "path"), "/echo");
	ck_assert_str_eq(gwt_echo_hdr(r, "Host"), "backend.internal");
	ck_assert_uint_eq(gwt_hdr_count(r, "X-Origin-Name"), 1);
}
END_TEST

/* -------------------------------------------------------------- bodies */

START_TEST(post_1mb)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, one_upstream(o, NULL, NULL));
	char want[65];
	gwt_pattern_sha256(1048576, want);
	gwt_req q = { .url = gwt_url(g_port, "/echo"), .gen_len = 1048576 };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "body_len")), 1048576);
	ck_assert_str_eq(gwt_echo_str(r, "body_sha256"), want);
	ck_assert_str_eq(gwt_echo_str(r, "method"), "POST");
	ck_assert_str_eq(gwt_echo_hdr(r, "Content-Length"), "1048576");
	/* PUT of the same body, from a buffer */
	char *buf = malloc(1048576);
	origin_pattern_fill(buf, 0, 1048576);
	gwt_req p = { .method = "PUT", .url = gwt_url(g_port, "/echo"), .body = buf, .body_len = 1048576 };
	r = gwt_http(&p);
	free(buf);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_str(r, "method"), "PUT");
	ck_assert_str_eq(gwt_echo_str(r, "body_sha256"), want);
}
END_TEST

START_TEST(chunked_upload)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, one_upstream(o, NULL, NULL));
	uint64_t n = 3 * 1048576 + 17;
	char want[65];
	gwt_pattern_sha256(n, want);
	gwt_req q = { .url = gwt_url(g_port, "/echo"), .gen_len = n, .chunked = 1 };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "body_len")), (json_int_t)n);
	ck_assert_str_eq(gwt_echo_str(r, "body_sha256"), want);
	ck_assert_str_eq(gwt_echo_hdr(r, "Transfer-Encoding"), "chunked");
	/* an empty POST */
	gwt_req e = { .url = gwt_url(g_port, "/echo"), .has_body = 1 };
	r = gwt_http(&e);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(gwt_json(r), "body_len")), 0);
}
END_TEST

START_TEST(download_100mb)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, one_upstream(o, NULL, NULL));
	uint64_t n = 100ull * 1048576;
	char want[65];
	gwt_pattern_sha256(n, want);
	gwt_req q = { .url = gwt_url(g_port, gwt_strf("/bytes/%llu", (unsigned long long)n)),
	              .hash_only = 1, .timeout_ms = 60000 };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), gwt_strf("%llu", (unsigned long long)n));
	ck_assert_uint_eq(r->body_len, n);
	ck_assert_str_eq(r->sha256, want);
	/* chunked from the origin: streamed through, chunked to the client */
	n = 5 * 1048576 + 3;
	gwt_pattern_sha256(n, want);
	q.url = gwt_url(g_port, gwt_strf("/chunked/%llu", (unsigned long long)n));
	r = gwt_http(&q);
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_ptr_null(gwt_hdr(r, "Content-Length"));
	ck_assert_str_eq(gwt_hdr(r, "Transfer-Encoding"), "chunked");
	ck_assert_uint_eq(r->body_len, n);
	ck_assert_str_eq(r->sha256, want);
	/* a small chunked response arrives whole */
	r = gwdt_get("/chunked/100");
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_uint_eq(r->body_len, 100);
}
END_TEST

START_TEST(head_204_304)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, one_upstream(o, NULL, NULL));
	gwt_req q = { .method = "HEAD", .url = gwt_url(g_port, "/bytes/1234") };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "1234");
	ck_assert_uint_eq(r->body_len, 0);
	r = gwdt_get("/status/204");
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 204);
	ck_assert_uint_eq(r->body_len, 0);
	ck_assert_ptr_null(gwt_hdr(r, "Content-Length"));
	r = gwdt_get("/status/304");
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 304);
	ck_assert_uint_eq(r->body_len, 0);
	/* the connection is fine afterwards: raw, two answers on one socket */
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	gwt_sendf(fd, "GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n");
	const char *a = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(gwt_raw_status(a), 204);
	gwt_sendf(fd, "HEAD /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n");
	a = gwt_recv_response(fd, 1, 3000, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(gwt_raw_status(a), 200);
	ck_assert_str_eq(gwt_raw_hdr(a, "Content-Length"), "10");
	gwt_sendf(fd, "GET /name HTTP/1.1\r\nHost: x\r\n\r\n");
	a = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(gwt_raw_body(a), "a");
}
END_TEST

/* -------------------------------------------------------------- errors */

START_TEST(error_502_503_504)
{
	origin *o = gwt_origin("a");
	int dead = gwt_free_port();
	gwdt_start(NULL, gwt_strf(
		"upstream down { server 127.0.0.1:%d max_fails=0; }\n"
		"upstream empty dynamic;\n"
		"upstream slow { server 127.0.0.1:%d; read_timeout 300ms; }\n"
		"route d { match path ^= \"/down/\"; proxy down; }\n"
		"route e { match path ^= \"/empty/\"; proxy empty; }\n"
		"route s { match path ^= \"/slow/\"; proxy slow; }\n"
		"route t { match path ^= \"/delay-body/\"; proxy slow; }\n",
		dead, origin_port(o)));
	gwdt_assert_error(gwdt_get("/down/x"), 502, "upstream connect error");
	gwdt_assert_error(gwdt_get("/empty/x"), 503, "no healthy upstream");
	uint64_t t0 = gwt_now_ms();
	gwdt_assert_error(gwdt_get("/slow/3000"), 504, "upstream timeout");
	uint64_t el = gwt_now_ms() - t0;
	ck_assert_msg(el >= 300 && el < 1500, "504 after %llu ms", (unsigned long long)el);
	/* the request id of an error is the client's when it sent one */
	const char *h[] = { "X-Request-Id: mine-1", NULL };
	gwt_resp *r = gwdt_get_h("/down/y", h);
	ck_assert_str_eq(gwt_hdr(r, "X-Request-Id"), "mine-1");
	ck_assert_str_eq(r->body, "{\"error\":\"upstream connect error\",\"request_id\":\"mine-1\"}");
}
END_TEST

/* the upstream dies after the response started: the client must see an
 * incomplete response (connection closed early), never a short one passed
 * off as complete */
static void cut_midway(const char *path, int chunked)
{
	int oport;
	gwt_proc *op = gwt_origin_proc("o", &oport);
	gwdt_start(NULL, gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                          "route r { match any; proxy a; }\n", oport));
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	gwt_sendf(fd, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	char buf[65536];
	size_t got = 0;
	while (got < 300000) {
		ssize_t k = read(fd, buf, sizeof buf);
		ck_assert_int_gt(k, 0);
		if (got == 0) {
			buf[k < 200 ? k : 200] = '\0';
			ck_assert_int_eq(gwt_raw_status(buf), 200);
			if (!chunked)
				ck_assert_ptr_nonnull(strstr(buf, "Content-Length: 50000000"));
		}
		got += (size_t)k;
	}
	gwt_signal(op, SIGKILL);
	size_t rest = 0;
	int eof = 0;
	const char *tail = gwt_recv_all(fd, 10000, &rest, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_uint_lt(got + rest, 50000000);
	if (chunked)   /* no terminating zero-length chunk */
		ck_assert_msg(rest < 5 || memcmp(tail + rest - 5, "0\r\n\r\n", 5) != 0,
		              "chunked response terminated as if complete");
}

START_TEST(failure_after_start_closes)
{
	cut_midway("/bytes/50000000", 0);
}
END_TEST

START_TEST(failure_after_start_closes_chunked)
{
	cut_midway("/chunked/50000000", 1);
}
END_TEST

START_TEST(timeout_before_start_is_504)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, gwt_strf("upstream a { server 127.0.0.1:%d max_fails=0; read_timeout 400ms; }\n"
	                          "route r { match any; proxy a; }\n", origin_port(o)));
	/* a small body (Content-Length 13) is sent whole once complete, so a
	 * read timeout in its middle is still a clean 504 */
	gwdt_assert_error(gwdt_get("/delay-body/2000"), 504, "upstream timeout");
	gwt_resp *r = gwdt_get("/delay-body/100");
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_str_eq(r->body, "first\nsecond\n");
}
END_TEST

/* ------------------------------------------------------------- retries */

START_TEST(retry_get_not_post)
{
	origin *o = gwt_origin("live");
	int dead = gwt_free_port();
	/* max_fails=0: the dead server is never ejected, round robin keeps
	 * offering it */
	gwdt_start(NULL, gwt_strf("upstream u { server 127.0.0.1:%d max_fails=0; "
	                          "server 127.0.0.1:%d max_fails=0; }\n"
	                          "route r { match any; proxy u; }\n", dead, origin_port(o)));
	for (int i = 0; i < 6; i++) {
		gwt_resp *r = gwdt_get("/name");
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(r->body, "live");
	}
	int ok = 0, bad = 0;
	origin_reset(o);
	for (int i = 0; i < 6; i++) {
		gwt_req q = { .url = gwt_url(g_port, "/echo"), .body = "x", .body_len = 1 };
		gwt_resp *r = gwt_http(&q);
		if (r->status == 200)
			ok++;
		else if (r->status == 502)
			bad++;
		else
			ck_abort_msg("POST %d: status %ld curl %d (%s) body %s", i, r->status, r->curl_code,
			             r->error, r->body);
	}
	ck_assert_int_eq(ok, 3);
	ck_assert_int_eq(bad, 3);
	ck_assert_uint_eq(origin_count(o), 3);
	/* DELETE without a body is idempotent: retried */
	for (int i = 0; i < 4; i++) {
		gwt_req q = { .method = "DELETE", .url = gwt_url(g_port, "/echo") };
		ck_assert_int_eq(gwt_http(&q)->status, 200);
	}
}
END_TEST

START_TEST(retry_on_status)
{
	origin *a = gwt_origin("a");
	origin *b = gwt_origin("b");
	origin_set_health(a, 503);
	gwdt_start(NULL, gwt_strf("upstream u { server 127.0.0.1:%d max_fails=0; "
	                          "server 127.0.0.1:%d max_fails=0; retries 1 on 503; }\n"
	                          "route r { match any; proxy u; }\n", origin_port(a), origin_port(b)));
	for (int i = 0; i < 6; i++) {
		gwt_resp *r = gwdt_get("/healthz");
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "b");
	}
	/* no other server to try: the upstream's own 503 is the answer */
	origin_set_health(b, 503);
	gwt_resp *r = gwdt_get("/healthz");
	ck_assert_int_eq(r->status, 503);
	ck_assert_ptr_nonnull(gwt_hdr(r, "X-Origin-Name"));
}
END_TEST

/* ----------------------------------------------------------- balancing */

static int count_names(const char *path, int n, const char *name, const char *const *hdrs)
{
	int c = 0;
	for (int i = 0; i < n; i++) {
		gwt_resp *r = gwdt_get_h(path, hdrs);
		ck_assert_int_eq(r->status, 200);
		c += !strcmp(r->body, name);
	}
	return c;
}

START_TEST(balance_round_robin)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b");
	gwdt_start(NULL, gwt_strf("upstream u { server 127.0.0.1:%d weight=3; server 127.0.0.1:%d; }\n"
	                          "route r { match any; proxy u; }\n", origin_port(a), origin_port(b)));
	ck_assert_int_eq(count_names("/name", 40, "a", NULL), 30);
	ck_assert_uint_eq(origin_count(b), 10);
}
END_TEST

START_TEST(balance_least_conn)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b");
	gwdt_start(NULL, gwt_strf("upstream u { server 127.0.0.1:%d; server 127.0.0.1:%d; "
	                          "balance least_conn; read_timeout 10s; }\n"
	                          "route r { match any; proxy u; }\n", origin_port(a), origin_port(b)));
	/* one request held open on a server: every other goes to the other one */
	const char *slow = gwt_strf("curl -s -o /dev/null %s &", gwt_url(g_port, "/slow/1500"));
	ck_assert_int_eq(system(slow), 0);
	gwt_sleep_ms(300);
	origin *busy = origin_count(a) ? a : b, *idle = busy == a ? b : a;
	int n = count_names("/name", 10, origin_name(idle), NULL);
	ck_assert_int_eq(n, 10);
	gwt_sleep_ms(1500);
	/* idle again: both are used */
	n = count_names("/name", 10, "a", NULL);
	ck_assert_int_eq(n, 5);
}
END_TEST

START_TEST(balance_ip_hash_and_hash)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b"), *c = gwt_origin("c");
	gwdt_start(NULL, gwt_strf(
		"upstream ip { server 127.0.0.1:%d; server 127.0.0.1:%d; server 127.0.0.1:%d; balance ip_hash; }\n"
		"upstream hh { server 127.0.0.1:%d; server 127.0.0.1:%d; server 127.0.0.1:%d; "
		"balance hash(header(\"X-User\")); }\n"
		"route ip { match path ^= \"/ip/\"; rewrite path strip_prefix \"/ip\"; proxy ip; }\n"
		"route hh { match path ^= \"/h/\"; rewrite path strip_prefix \"/h\"; proxy hh; }\n",
		origin_port(a), origin_port(b), origin_port(c),
		origin_port(a), origin_port(b), origin_port(c)));
	/* one client address: always the same server */
	const char *first = gwdt_get("/ip/name")->body;
	ck_assert_int_eq(count_names("/ip/name", 20, first, NULL), 20);
	/* one key: always the same server; many keys: spread over all three */
	int seen[3] = { 0 };
	for (int u = 0; u < 30; u++) {
		const char *h[] = { gwt_strf("X-User: user-%d", u), NULL };
		const char *who = gwdt_get_h("/h/name", h)->body;
		ck_assert_int_eq(count_names("/h/name", 3, who, h), 3);
		seen[who[0] - 'a']++;
	}
	ck_assert_msg(seen[0] && seen[1] && seen[2], "keys spread %d/%d/%d", seen[0], seen[1], seen[2]);
}
END_TEST

START_TEST(balance_random_and_backup)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b"), *k = gwt_origin("k");
	int dead = gwt_free_port();
	gwdt_start(NULL, gwt_strf(
		"upstream rnd { server 127.0.0.1:%d; server 127.0.0.1:%d; balance random; }\n"
		"upstream bk { server 127.0.0.1:%d max_fails=1 fail_timeout=30s; server 127.0.0.1:%d backup; }\n"
		"upstream ok { server 127.0.0.1:%d; server 127.0.0.1:%d backup; }\n"
		"route rnd { match path ^= \"/rnd/\"; rewrite path strip_prefix \"/rnd\"; proxy rnd; }\n"
		"route bk { match path ^= \"/bk/\"; rewrite path strip_prefix \"/bk\"; proxy bk; }\n"
		"route ok { match path ^= \"/ok/\"; rewrite path strip_prefix \"/ok\"; proxy ok; }\n",
		origin_port(a), origin_port(b), dead, origin_port(k), origin_port(a), origin_port(k)));
	int na = count_names("/rnd/name", 200, "a", NULL);
	ck_assert_msg(na > 60 && na < 140, "random: %d of 200 to a", na);
	/* primary healthy: the backup gets nothing */
	ck_assert_int_eq(count_names("/ok/name", 10, "a", NULL), 10);
	/* primary dead: the retry (connect_error) and then the backup take it */
	ck_assert_int_eq(count_names("/bk/name", 10, "k", NULL), 10);
}
END_TEST

/* ---------------------------------------------------------- keep-alive */

START_TEST(keepalive)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                          "route own { match path == \"/own\"; respond 200 \"own\"; }\n"
	                          "route r { match any; proxy a; }\n", origin_port(o)));
	gwt_client *c = gwt_client_new();
	const char *paths[] = { "/name", "/own", "/name", "/nothing", "/own", "/echo" };
	for (int i = 0; i < 6; i++) {
		gwt_req q = { .url = gwt_url(g_port, paths[i]), .client = c };
		gwt_resp *r = gwt_http(&q);
		ck_assert_int_eq(r->curl_code, 0);
		ck_assert_msg(r->num_connects == (i == 0), "request %d (%s) made %ld connections", i,
		              paths[i], r->num_connects);
		const char *conn = gwt_hdr(r, "Connection");
		ck_assert_msg(!conn || strcasecmp(conn, "close"), "Connection: close on %s", paths[i]);
	}
	/* raw: two requests, two answers, one socket */
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	for (int i = 0; i < 2; i++) {
		gwt_sendf(fd, "GET /own HTTP/1.1\r\nHost: x\r\n\r\n");
		const char *a = gwt_recv_response(fd, 0, 3000, NULL);
		ck_assert_ptr_nonnull(a);
		ck_assert_int_eq(gwt_raw_status(a), 200);
		ck_assert_str_eq(gwt_raw_body(a), "own");
	}
}
END_TEST

/* -------------------------------------------------------------- limits */

START_TEST(limits)
{
	origin *o = gwt_origin("a");
	gwdt_start("limits: {max_header_size: 4k, max_body_size: 64k}\n", one_upstream(o, NULL, NULL));
	/* body: Content-Length over the limit */
	gwt_req q = { .url = gwt_url(g_port, "/echo"), .gen_len = 65537 };
	gwdt_assert_error(gwt_http(&q), 413, "request body too large");
	/* chunked, over the limit while streaming */
	gwt_req c = { .url = gwt_url(g_port, "/echo"), .gen_len = 300000, .chunked = 1 };
	gwdt_assert_error(gwt_http(&c), 413, "request body too large");
	/* at the limit: fine */
	gwt_req k = { .url = gwt_url(g_port, "/echo"), .gen_len = 65536, .chunked = 1 };
	gwt_resp *r = gwt_http(&k);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(gwt_json(r), "body_len")), 65536);
	/* URI longer than max_header_size */
	char *longp = malloc(5000);
	memset(longp, 'a', 4999);
	longp[0] = '/';
	longp[4999] = '\0';
	gwdt_assert_error(gwdt_get(longp), 414, "uri too long");
	/* headers over max_header_size */
	memcpy(longp, "X-Big: ", 7);
	const char *h[] = { longp, NULL };
	gwdt_assert_error(gwdt_get_h("/echo", h), 431, "request header fields too large");
	free(longp);
	/* a malformed path */
	const char *a = gwt_raw(g_port, "GET /a/../../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
	a = gwt_raw(g_port, "GET /a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
	a = gwt_raw(g_port, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
}
END_TEST

START_TEST(client_timeout)
{
	origin *o = gwt_origin("a");
	gwdt_start("limits: {client_timeout: 1s}\n", one_upstream(o, NULL, NULL));
	/* a client trickling its head is cut after client_timeout */
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	uint64_t t0 = gwt_now_ms();
	for (int i = 0; i < 6; i++) {
		if (gwt_sendf(fd, "X-H%d: v\r\n", i) != 0)
			break;
		if (i == 0)
			gwt_sendf(fd, "GET /name HTTP/1.1\r\nHost: x\r\n");
		gwt_sleep_ms(300);
	}
	int eof = 0;
	gwt_recv_all(fd, 3000, NULL, &eof);
	uint64_t el = gwt_now_ms() - t0;
	ck_assert_int_eq(eof, 1);
	ck_assert_msg(el < 2800, "trickling client kept %llu ms", (unsigned long long)el);
	/* an idle keep-alive connection too */
	fd = gwt_connect("127.0.0.1", g_port, 2000);
	gwt_sendf(fd, "GET /name HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_ptr_nonnull(gwt_recv_response(fd, 0, 3000, NULL));
	t0 = gwt_now_ms();
	gwt_recv_all(fd, 4000, NULL, &eof);
	el = gwt_now_ms() - t0;
	ck_assert_int_eq(eof, 1);
	ck_assert_msg(el >= 700 && el < 2500, "idle connection closed after %llu ms",
	              (unsigned long long)el);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gwd proxy");
	TCase *t = tcase_create("proxy");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, forwarding_headers);
	tcase_add_test(t, hop_by_hop_request);
	tcase_add_test(t, hop_by_hop_response);
	tcase_add_test(t, host_kept_or_set);
	tcase_add_test(t, post_1mb);
	tcase_add_test(t, chunked_upload);
	tcase_add_test(t, download_100mb);
	tcase_add_test(t, head_204_304);
	tcase_add_test(t, error_502_503_504);
	tcase_add_test(t, failure_after_start_closes);
	tcase_add_test(t, failure_after_start_closes_chunked);
	tcase_add_test(t, timeout_before_start_is_504);
	tcase_add_test(t, retry_get_not_post);
	tcase_add_test(t, retry_on_status);
	tcase_add_test(t, balance_round_robin);
	tcase_add_test(t, balance_least_conn);
	tcase_add_test(t, balance_ip_hash_and_hash);
	tcase_add_test(t, balance_random_and_backup);
	tcase_add_test(t, keepalive);
	tcase_add_test(t, limits);
	tcase_add_test(t, client_timeout);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

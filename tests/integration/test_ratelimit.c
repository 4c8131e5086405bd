/*
 * test_ratelimit.c — rate_limit and conn_limit in a real gwd (local store):
 * the burst then 429 with an exact Retry-After, RateLimit-* headers on
 * own and proxied answers, the rate measured over 3 s, keys (header,
 * query, client address), several limits on one route, budgets that
 * survive table reloads (rename and SIGHUP), and conn_limit with slow
 * upstream requests.
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int port;
static gwt_proc *gwd;

/* rules.gwr <- rules, compiled; gwd with two workers (so buckets are
 * shared across threads) */
static void start(const char *rules)
{
	gwt_writef("rules.gwr", "%s", rules);
	gwt_compile("rules.gwr");
	port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n"
	           "threads: 2\n", port);
	gwd = gwt_gwd("gw.yaml", port);
}

static gwt_resp *get(gwt_client *c, const char *path, const char *hdr)
{
	const char *h[] = { hdr, NULL };
	gwt_req q = { .url = gwt_url(port, path), .headers = hdr ? h : NULL, .client = c };
	gwt_resp *r = gwt_http(&q);
	ck_assert_msg(r->curl_code == 0, "%s: %s", path, r->error);
	return r;
}

static void assert_hdr(const gwt_resp *r, const char *name, const char *want)
{
	const char *v = gwt_hdr(r, name);
	ck_assert_msg(v != NULL, "no %s header (status %ld)", name, r->status);
	ck_assert_msg(!strcmp(v, want), "%s: '%s', want '%s'", name, v, want);
}

/* gwd's 429: JSON body naming the request, Retry-After */
static void assert_429(const gwt_resp *r, const char *retry_after)
{
	ck_assert_int_eq(r->status, 429);
	assert_hdr(r, "Content-Type", "application/json");
	assert_hdr(r, "Retry-After", retry_after);
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_ptr_nonnull(id);
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"rate limited\",\"request_id\":\"%s\"}", id));
}

/* rate_limit 1r/m burst=3: three pass with the headers counting down,
 * the fourth is refused for exactly the minute one token takes */
START_TEST(burst_then_429)
{
	start("route rl {\n    match path ^= \"/rl\";\n    rate_limit 1r/m burst=3;\n"
	      "    respond 200 \"ok\\n\";\n}\n"
	      "route free {\n    match any;\n    respond 200 \"free\\n\";\n}\n");
	gwt_client *c = gwt_client_new();
	for (int i = 0; i < 3; i++) {
		gwt_resp *r = get(c, "/rl", NULL);
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(r->body, "ok\n");
		assert_hdr(r, "RateLimit-Limit", "3");
		assert_hdr(r, "RateLimit-Remaining", gwt_strf("%d", 2 - i));
		/* seconds until the bucket is full again: one minute per token */
		assert_hdr(r, "RateLimit-Reset", gwt_strf("%d", 60 * (i + 1)));
		ck_assert_ptr_null(gwt_hdr(r, "Retry-After"));
	}
	for (int i = 0; i < 3; i++) {
		gwt_resp *r = get(i == 2 ? NULL : c, "/rl/x", NULL);   /* new connection too */
		assert_429(r, "60");
		assert_hdr(r, "RateLimit-Limit", "3");
		assert_hdr(r, "RateLimit-Remaining", "0");
		assert_hdr(r, "RateLimit-Reset", "180");
	}
	/* routes without a limit carry no RateLimit headers and are not limited */
	gwt_resp *r = get(c, "/other", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_null(gwt_hdr(r, "RateLimit-Limit"));
	ck_assert_int_eq(gwt_stop(gwd, SIGTERM, 5000), 0);
}
END_TEST

/* proxied answers carry the headers too; a refused request never reaches
 * the upstream */
START_TEST(proxied_headers)
{
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream a {\n    server 127.0.0.1:%d;\n}\n"
	               "route api {\n    match any;\n    rate_limit 1r/m burst=2;\n    proxy a;\n}\n",
	               origin_port(o)));
	gwt_client *c = gwt_client_new();
	gwt_resp *r = get(c, "/echo", NULL);
	ck_assert_int_eq(r->status, 200);
	assert_hdr(r, "X-Origin-Name", "a");
	assert_hdr(r, "RateLimit-Limit", "2");
	assert_hdr(r, "RateLimit-Remaining", "1");
	assert_hdr(r, "RateLimit-Reset", "60");
	r = get(c, "/echo", NULL);
	ck_assert_int_eq(r->status, 200);
	assert_hdr(r, "RateLimit-Remaining", "0");
	assert_hdr(r, "RateLimit-Reset", "120");
	uint64_t before = origin_count(o);
	r = get(c, "/echo", NULL);
	assert_429(r, "60");
	ck_assert_ptr_null(gwt_hdr(r, "X-Origin-Name"));
	ck_assert_uint_eq(origin_count(o), before);
}
END_TEST

/* 20r/s burst=5, as fast as one keep-alive client can go for 3 s: the
 * accepted count is the burst plus rate x time, within 10% */
START_TEST(rate_over_time)
{
	start("route rl {\n    match any;\n    rate_limit 20r/s burst=5;\n    respond 200 \"ok\\n\";\n}\n");
	gwt_client *c = gwt_client_new();
	unsigned ok = 0, refused = 0, other = 0;
	uint64_t t0 = gwt_now_ms(), t1;
	while ((t1 = gwt_now_ms()) - t0 < 3000) {
		gwt_resp *r = get(c, "/", NULL);
		if (r->status == 200)
			ok++;
		else if (r->status == 429)
			refused++;
		else
			other++;
	}
	double secs = (double)(t1 - t0) / 1000.0;
	double want = 5 + 20 * secs;
	ck_assert_uint_eq(other, 0);
	ck_assert_msg(refused > ok, "only %u refused of %u: not sending fast enough", refused,
	              ok + refused);
	ck_assert_msg(ok >= want * 0.9 && ok <= want * 1.1, "accepted %u in %.3f s, want %.1f +-10%%",
	              ok, secs, want);
}
END_TEST

/* key=header("X-Key"): each value has its own bucket; a request without
 * the header counts by client address (its own bucket too) */
START_TEST(per_key)
{
	start("route rl {\n    match path ^= \"/h\";\n"
	      "    rate_limit 1r/m burst=2 key=header(\"X-Key\");\n    respond 200 \"ok\\n\";\n}\n"
	      "route q {\n    match path ^= \"/q\";\n"
	      "    rate_limit 1r/m burst=1 key=query(\"k\");\n    respond 200 \"ok\\n\";\n}\n"
	      "route ip {\n    match path ^= \"/ip\";\n"
	      "    rate_limit 1r/m burst=1;\n    respond 200 \"ok\\n\";\n}\n");
	gwt_client *c = gwt_client_new();
	const char *a = "X-Key: alice", *b = "X-Key: bob";
	ck_assert_int_eq(get(c, "/h", a)->status, 200);
	ck_assert_int_eq(get(c, "/h", a)->status, 200);
	assert_429(get(c, "/h", a), "60");
	/* bob is untouched by alice's budget */
	gwt_resp *r = get(c, "/h", b);
	ck_assert_int_eq(r->status, 200);
	assert_hdr(r, "RateLimit-Remaining", "1");
	ck_assert_int_eq(get(c, "/h", b)->status, 200);
	assert_429(get(c, "/h", b), "60");
	assert_429(get(c, "/h", a), "60");
	/* no header: the client address's bucket, not alice's or bob's */
	ck_assert_int_eq(get(c, "/h", NULL)->status, 200);
	ck_assert_int_eq(get(c, "/h", NULL)->status, 200);
	assert_429(get(c, "/h", NULL), "60");
	/* an empty value is a value of its own */
	ck_assert_int_eq(get(c, "/h", "X-Key;")->status, 200);

	/* query keys are decoded: "a b" written two ways is one key */
	ck_assert_int_eq(get(c, "/q?k=a%20b", NULL)->status, 200);
	assert_429(get(c, "/q?x=1&k=a+b", NULL), "60");
	ck_assert_int_eq(get(c, "/q?k=c", NULL)->status, 200);

	/* key=client_ip (the default) on another route: a separate limit */
	ck_assert_int_eq(get(c, "/ip", NULL)->status, 200);
	assert_429(get(c, "/ip", NULL), "60");
}
END_TEST

/* key=cookie("sid") (quotes and neighbours ignored) and key=consumer (the
 * name auth key gave the request; a request no auth directive let in
 * counts by client address) */
START_TEST(cookie_and_consumer_keys)
{
	gwt_writef("keys.txt", "alice:k-alice-1\nbob:k-bob-2\n");
	start("route c {\n    match path ^= \"/c\";\n"
	      "    rate_limit 1r/m burst=1 key=cookie(\"sid\");\n    respond 200 \"ok\\n\";\n}\n"
	      "route u {\n    match path ^= \"/u\";\n    auth key keys=file(\"keys.txt\");\n"
	      "    rate_limit 1r/m burst=2 key=consumer;\n    respond 200 \"ok\\n\";\n}\n"
	      "route n {\n    match path ^= \"/n\";\n"
	      "    rate_limit 1r/m burst=1 key=consumer;\n    respond 200 \"ok\\n\";\n}\n");
	gwt_client *c = gwt_client_new();
	ck_assert_int_eq(get(c, "/c", "Cookie: a=1; sid=s1")->status, 200);
	assert_429(get(c, "/c", "Cookie: sid=\"s1\"; b=2"), "60");
	ck_assert_int_eq(get(c, "/c", "Cookie: sid=s2")->status, 200);
	ck_assert_int_eq(get(c, "/c", "Cookie: sidx=s1")->status, 200);   /* no sid: by address */

	/* alice has two keys' worth of budget whatever her client does */
	const char *ka = "X-API-Key: k-alice-1", *kb = "X-API-Key: k-bob-2";
	ck_assert_int_eq(get(c, "/u", ka)->status, 200);
	ck_assert_int_eq(get(NULL, "/u", ka)->status, 200);
	assert_429(get(c, "/u", ka), "60");
	gwt_resp *r = get(c, "/u", kb);
	ck_assert_int_eq(r->status, 200);
	assert_hdr(r, "RateLimit-Remaining", "1");
	/* a wrong key is refused by auth before it costs anybody a token */
	ck_assert_int_eq(get(c, "/u", "X-API-Key: nope")->status, 401);
	ck_assert_int_eq(get(c, "/u", kb)->status, 200);
	/* no auth on the route: the consumer is the client address */
	ck_assert_int_eq(get(c, "/n", ka)->status, 200);
	assert_429(get(c, "/n", kb), "60");
}
END_TEST

/* two limits on one route: both count, the headers describe the tighter,
 * and the one that refuses sets Retry-After */
START_TEST(two_limits)
{
	start("policy gentle {\n    rate_limit 100r/s burst=10;\n}\n"
	      "route rl {\n    match any;\n    use gentle;\n    rate_limit 1r/m burst=2;\n"
	      "    respond 200 \"ok\\n\";\n}\n");
	gwt_client *c = gwt_client_new();
	gwt_resp *r = get(c, "/", NULL);
	ck_assert_int_eq(r->status, 200);
	assert_hdr(r, "RateLimit-Limit", "2");
	assert_hdr(r, "RateLimit-Remaining", "1");
	ck_assert_uint_eq(gwt_hdr_count(r, "RateLimit-Limit"), 1);
	r = get(c, "/", NULL);
	assert_hdr(r, "RateLimit-Remaining", "0");
	r = get(c, "/", NULL);
	assert_429(r, "60");
	assert_hdr(r, "RateLimit-Limit", "2");
}
END_TEST

/* wait until path answers body (the new table is in) */
static void wait_body(const char *path, const char *body)
{
	uint64_t t0 = gwt_now_ms();
	for (;;) {
		gwt_resp *r = get(NULL, path, NULL);
		if (r->status == 200 && r->body && !strcmp(r->body, body))
			return;
		ck_assert_msg(gwt_now_ms() - t0 < 10000, "%s never answered '%s' (got %ld '%s')\n%s",
		              path, body, r->status, r->body ? r->body : "", gwt_stderr(gwd));
		gwt_sleep_ms(50);
	}
}

static const char reload_rules[] =
	"route rl {\n    match path ^= \"/rl\";\n    rate_limit 1r/m burst=2 key=route;\n"
	"    respond 200 \"ok\\n\";\n}\n"
	"route conn {\n    match path ^= \"/conn\";\n    conn_limit 5;\n    respond 200 \"ok\\n\";\n}\n";

/* a drained bucket stays drained across reloads: by a new table renamed
 * over the old one (inotify) and by SIGHUP */
START_TEST(reload_keeps_budget)
{
	start(gwt_strf("%sroute v {\n    match path == \"/v\";\n    respond 200 \"v1\";\n}\n",
	               reload_rules));
	ck_assert_int_eq(get(NULL, "/rl", NULL)->status, 200);
	ck_assert_int_eq(get(NULL, "/rl", NULL)->status, 200);
	assert_429(get(NULL, "/rl", NULL), "60");
	/* a new table: another route added before, the limit as it was */
	gwt_writef("rules.gwr", "route first {\n    match path == \"/first\";\n"
	           "    respond 200 \"new\";\n}\n%sroute v {\n    match path == \"/v\";\n"
	           "    respond 200 \"v2\";\n}\n", reload_rules);
	gwt_compile("rules.gwr");                 /* atomic rename: inotify */
	wait_body("/v", "v2");
	gwt_resp *r = get(NULL, "/rl", NULL);
	assert_429(r, "60");
	assert_hdr(r, "RateLimit-Remaining", "0");
	/* SIGHUP (config and table read again) */
	gwt_writef("rules.gwr", "%sroute v {\n    match path == \"/v\";\n    respond 200 \"v3\";\n}\n",
	           reload_rules);
	gwt_compile("rules.gwr");
	ck_assert_int_eq(gwt_signal(gwd, SIGHUP), 0);
	wait_body("/v", "v3");
	assert_429(get(NULL, "/rl", NULL), "60");
	/* changing the limit's numbers makes it a new limit: a fresh bucket */
	gwt_writef("rules.gwr", "route rl {\n    match path ^= \"/rl\";\n"
	           "    rate_limit 1r/m burst=3 key=route;\n    respond 200 \"ok\\n\";\n}\n"
	           "route v {\n    match path == \"/v\";\n    respond 200 \"v4\";\n}\n");
	gwt_compile("rules.gwr");
	wait_body("/v", "v4");
	r = get(NULL, "/rl", NULL);
	ck_assert_int_eq(r->status, 200);
	assert_hdr(r, "RateLimit-Remaining", "2");
	ck_assert_int_eq(gwt_stop(gwd, SIGTERM, 5000), 0);
}
END_TEST

/* send a request on a fresh socket without reading the answer */
static int send_slow(const char *path)
{
	int fd = gwt_connect("127.0.0.1", port, 2000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gwt_sendf(fd, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path), 0);
	return fd;
}

/* conn_limit 2 with slow upstream requests: the third at once gets 429,
 * the two finish with 200, and their places are free again after */
START_TEST(conn_limit_slow)
{
	origin *o = gwt_origin("slow");
	start(gwt_strf("upstream s {\n    server 127.0.0.1:%d;\n}\n"
	               "route slow {\n    match path ^= \"/slow/\";\n    conn_limit 2 key=route;\n"
	               "    proxy s;\n}\n"
	               "route other {\n    match any;\n    conn_limit 1 key=route;\n"
	               "    respond 200 \"other\\n\";\n}\n", origin_port(o)));
	int f1 = send_slow("/slow/800"), f2 = send_slow("/slow/800");
	gwt_sleep_ms(200);                        /* both in flight at the origin */
	uint64_t t0 = gwt_now_ms();
	gwt_resp *r = get(NULL, "/slow/1", NULL);
	ck_assert_int_eq(r->status, 429);
	ck_assert_msg(gwt_now_ms() - t0 < 300, "the refusal waited");
	assert_hdr(r, "Retry-After", "1");
	assert_hdr(r, "Content-Type", "application/json");
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"rate limited\",\"request_id\":\"%s\"}",
	                                   gwt_hdr(r, "X-Request-Id")));
	/* another route's limit is its own */
	ck_assert_int_eq(get(NULL, "/x", NULL)->status, 200);
	const char *a1 = gwt_recv_response(f1, 0, 5000, NULL);
	const char *a2 = gwt_recv_response(f2, 0, 5000, NULL);
	ck_assert_ptr_nonnull(a1);
	ck_assert_ptr_nonnull(a2);
	ck_assert_int_eq(gwt_raw_status(a1), 200);
	ck_assert_int_eq(gwt_raw_status(a2), 200);
	ck_assert_str_eq(gwt_raw_body(a1), "slept 800\n");
	/* released when the requests ended */
	r = get(NULL, "/slow/1", NULL);
	ck_assert_int_eq(r->status, 200);
	/* a client that goes away mid-request releases its place too */
	int f3 = send_slow("/slow/300"), f4 = send_slow("/slow/300");
	gwt_sleep_ms(100);
	close(f3);
	close(f4);
	gwt_sleep_ms(600);
	ck_assert_int_eq(get(NULL, "/slow/1", NULL)->status, 200);
	ck_assert_int_eq(get(NULL, "/slow/1", NULL)->status, 200);
	ck_assert_int_eq(gwt_stop(gwd, SIGTERM, 5000), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *t = tcase_create("rate_limit");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, burst_then_429);
	tcase_add_test(t, proxied_headers);
	tcase_add_test(t, rate_over_time);
	tcase_add_test(t, per_key);
	tcase_add_test(t, cookie_and_consumer_keys);
	tcase_add_test(t, two_limits);
	tcase_add_test(t, reload_keeps_budget);
	suite_add_tcase(s, t);
	t = tcase_create("conn_limit");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, conn_limit_slow);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

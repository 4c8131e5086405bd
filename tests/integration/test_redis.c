/*
 * test_redis.c — rate_limit's cluster mode against a real redis-server
 * started by the test on a free port: two gwd instances enforce one
 * shared limit (not twice it), EVALSHA falls back to EVAL after SCRIPT
 * FLUSH, Redis killed mid-test or stopped (SIGSTOP) leaves every request
 * answered quickly by the local store, and gwd reconnects when Redis is
 * back.
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define REDIS_BIN "/usr/bin/redis-server"

static gwt_proc *start_redis(int rport)
{
	const char *argv[] = { REDIS_BIN, "--port", gwt_strf("%d", rport), "--bind", "127.0.0.1",
	                       "--save", "", "--appendonly", "no", NULL };
	gwt_proc *p = gwt_spawn("redis", argv, NULL);
	ck_assert_msg(gwt_wait_port("127.0.0.1", rport, 10000) == 0, "redis-server did not start: %s",
	              gwt_stderr(p));
	return p;
}

/* inline commands to Redis, then QUIT: the replies */
static const char *redis_cmd(int rport, const char *cmds)
{
	int fd = gwt_connect("127.0.0.1", rport, 2000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gwt_sendf(fd, "%s\r\nQUIT\r\n", cmds), 0);
	const char *out = gwt_recv_all(fd, 3000, NULL, NULL);
	close(fd);
	return out;
}

/* a gwd with its own config file; rules.gwb shared */
static gwt_proc *start_gwd(const char *yaml, int port, int rport, const char *timeout)
{
	gwt_writef(yaml, "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n"
	           "threads: 2\nredis:\n  url: redis://127.0.0.1:%d/0\n  timeout: %s\n",
	           port, rport, timeout);
	return gwt_gwd(yaml, port);
}

static void rules(const char *limit)
{
	gwt_writef("rules.gwr", "route shared {\n    match any;\n    %s\n    respond 200 \"ok\\n\";\n}\n",
	           limit);
	gwt_compile("rules.gwr");
}

static gwt_resp *get(gwt_client *c, int port)
{
	gwt_req q = { .url = gwt_url(port, "/"), .client = c, .timeout_ms = 5000 };
	gwt_resp *r = gwt_http(&q);
	ck_assert_msg(r->curl_code == 0, "%s", r->error);
	return r;
}

/* two instances, one limit: 10 tokens in all, not 10 each */
START_TEST(two_instances_share_one_limit)
{
	if (access(REDIS_BIN, X_OK) != 0) {
		fprintf(stderr, "no %s: test skipped\n", REDIS_BIN);
		return;
	}
	int rport = gwt_free_port();
	start_redis(rport);
	rules("rate_limit 1r/m burst=10 key=route;");
	/* a generous timeout: this test is about sharing, not fallbacks */
	int p1 = gwt_free_port(), p2 = gwt_free_port();
	gwt_proc *g1 = start_gwd("gw1.yaml", p1, rport, "1s");
	gwt_proc *g2 = start_gwd("gw2.yaml", p2, rport, "1s");
	gwt_client *c1 = gwt_client_new(), *c2 = gwt_client_new();
	unsigned ok[2] = { 0, 0 }, refused = 0;
	for (int i = 0; i < 30; i++) {
		gwt_resp *r = get(i % 2 ? c2 : c1, i % 2 ? p2 : p1);
		if (r->status == 200) {
			ok[i % 2]++;
			ck_assert_str_eq(gwt_hdr(r, "RateLimit-Limit"), "10");
		} else {
			ck_assert_int_eq(r->status, 429);
			/* Redis's clock: a token a minute, all taken within a second */
			ck_assert_str_eq(gwt_hdr(r, "Retry-After"), "60");
			ck_assert_str_eq(gwt_hdr(r, "RateLimit-Remaining"), "0");
			refused++;
		}
	}
	ck_assert_msg(ok[0] + ok[1] == 10, "accepted %u + %u, want 10 in all\n%s", ok[0], ok[1],
	              gwt_stderr(g1));
	ck_assert_uint_eq(ok[0], 5);             /* alternating: each took its turn */
	ck_assert_uint_eq(refused, 20);
	/* the bucket is in Redis under a readable name */
	const char *keys = redis_cmd(rport, "KEYS gwrl:*");
	ck_assert_msg(strstr(keys, "gwrl:shared:0:1/60000ms:10:route:r") != NULL, "%s", keys);
	/* SCRIPT FLUSH: EVALSHA answers NOSCRIPT, gwd sends EVAL and the
	 * shared bucket still decides (a local decision would let these in) */
	ck_assert_msg(strstr(redis_cmd(rport, "SCRIPT FLUSH"), "+OK") != NULL, "flush failed");
	for (int i = 0; i < 4; i++) {
		gwt_resp *r = get(i % 2 ? c2 : c1, i % 2 ? p2 : p1);
		ck_assert_msg(r->status == 429, "after SCRIPT FLUSH: %ld\n%s", r->status,
		              gwt_stderr(i % 2 ? g2 : g1));
	}
	ck_assert_ptr_null(strstr(gwt_stderr(g1), "redis: worker"));
	ck_assert_int_eq(gwt_stop(g1, SIGTERM, 5000), 0);
	ck_assert_int_eq(gwt_stop(g2, SIGTERM, 5000), 0);
}
END_TEST

/* Redis killed mid-test: every request is still answered, fast, by the
 * local store; when Redis is back, gwd uses it again */
START_TEST(redis_killed)
{
	if (access(REDIS_BIN, X_OK) != 0)
		return;
	int rport = gwt_free_port(), port = gwt_free_port();
	gwt_proc *redis = start_redis(rport);
	rules("rate_limit 1r/m burst=3 key=route;");
	gwt_proc *g = start_gwd("gw.yaml", port, rport, "200ms");
	gwt_client *c = gwt_client_new();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get(c, port)->status, 200);
	ck_assert_int_eq(get(c, port)->status, 429);
	ck_assert_ptr_nonnull(strstr(redis_cmd(rport, "KEYS gwrl:*"), "gwrl:shared:"));

	ck_assert_int_eq(gwt_stop(redis, SIGKILL, 5000), 128 + SIGKILL);
	unsigned ok = 0;
	for (int i = 0; i < 20; i++) {
		uint64_t t0 = gwt_now_ms();
		gwt_resp *r = get(i % 3 ? c : NULL, port);
		uint64_t dt = gwt_now_ms() - t0;
		ck_assert_msg(dt < 200, "request %d took %llu ms with Redis down", i,
		              (unsigned long long)dt);
		ck_assert_msg(r->status == 200 || r->status == 429, "status %ld", r->status);
		ok += r->status == 200;
	}
	/* decided locally: the local bucket (fresh) gives its 3 tokens */
	ck_assert_uint_eq(ok, 3);
	ck_assert_int_eq(gwt_wait_output(g, "redis: worker", 2000), 0);

	/* Redis back (empty): gwd reconnects and the decisions are Redis's
	 * again: the bucket reappears there */
	start_redis(rport);
	uint64_t t0 = gwt_now_ms();
	for (;;) {
		gwt_resp *r = get(c, port);
		ck_assert_msg(r->status == 200 || r->status == 429, "status %ld", r->status);
		if (strstr(redis_cmd(rport, "KEYS gwrl:*"), "gwrl:shared:"))
			break;
		ck_assert_msg(gwt_now_ms() - t0 < 15000, "gwd never used Redis again\n%s",
		              gwt_stderr(g));
		gwt_sleep_ms(100);
	}
	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);
}
END_TEST

/* Redis stopped (SIGSTOP: the connection stays up, nothing answers):
 * each decision waits at most redis.timeout, then is local */
START_TEST(redis_stopped)
{
	if (access(REDIS_BIN, X_OK) != 0)
		return;
	int rport = gwt_free_port(), port = gwt_free_port();
	gwt_proc *redis = start_redis(rport);
	rules("rate_limit 100r/s burst=100;");
	gwt_proc *g = start_gwd("gw.yaml", port, rport, "20ms");
	gwt_client *c = gwt_client_new();
	ck_assert_int_eq(get(c, port)->status, 200);
	ck_assert_int_eq(gwt_signal(redis, SIGSTOP), 0);
	uint64_t worst = 0;
	for (int i = 0; i < 40; i++) {
		uint64_t t0 = gwt_now_ms();
		gwt_resp *r = get(c, port);
		uint64_t dt = gwt_now_ms() - t0;
		if (dt > worst)
			worst = dt;
		ck_assert_int_eq(r->status, 200);
	}
	ck_assert_msg(worst < 200, "a request took %llu ms with Redis stopped",
	              (unsigned long long)worst);
	ck_assert_int_eq(gwt_wait_output(g, "took more than 20ms", 2000), 0);
	ck_assert_int_eq(gwt_signal(redis, SIGCONT), 0);
	/* answered again: a fresh key shows up in Redis */
	redis_cmd(rport, "FLUSHALL");
	uint64_t t0 = gwt_now_ms();
	for (;;) {
		ck_assert_int_eq(get(c, port)->status, 200);
		if (strstr(redis_cmd(rport, "KEYS gwrl:*"), "gwrl:shared:"))
			break;
		ck_assert_msg(gwt_now_ms() - t0 < 15000, "gwd never used Redis again\n%s",
		              gwt_stderr(g));
		gwt_sleep_ms(100);
	}
	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("redis");
	TCase *t = tcase_create("cluster");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, two_instances_share_one_limit);
	tcase_add_test(t, redis_killed);
	tcase_add_test(t, redis_stopped);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

/*
 * test_health.c — active health checks and the circuit breaker, black box:
 * a real gwd (one worker) in front of in-process origins (origin.h).
 *
 * Health: a stopped origin is ejected within interval x unhealthy (+ slack)
 * and not before its checks failed (requests still reach it meanwhile:
 * passive ejection is off), traffic then goes only to the live one; a new
 * origin on the same port is re-admitted within interval x healthy; a
 * status outside `expect` is a failure (and `expect 500` makes /status/500
 * a success); with no server left the client gets 503 with the JSON
 * body; the verdict shows in the admin API (state, and the health and
 * breaker fields of /api/upstreams, /status and /detail); servers added by the admin API
 * and by a table reload are checked, and removing the health_check block
 * by a reload clears the verdict.
 *
 * Breaker: 5xx answers and connect errors open it after N failures; while
 * open nothing reaches the server (503 JSON when it is the only one,
 * the other server otherwise); after the cooldown exactly one probe goes
 * through: a success closes it, a failure opens it again.
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static gwt_proc *g_gwd;
static int g_port, g_admin;

/* rules compiled, gw.yaml (one worker; the admin API on a port of its
 * own when admin != 0), gwd started */
static void start(const char *rules, int admin)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	const char *adm = "admin: {listen: 'off'}\n";
	if (admin) {
		do
			g_admin = gwt_free_port();
		while (g_admin == g_port);
		adm = gwt_strf("admin: {listen: 127.0.0.1:%d}\nstate_dir: state\n", g_admin);
	}
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n%s",
	           g_port, adm);
	g_gwd = gwt_gwd("gw.yaml", g_port);
	if (admin)
		ck_assert_msg(gwt_wait_port("127.0.0.1", g_admin, 5000) == 0,
		              "admin API not listening; stderr:\n%s", gwt_stderr(g_gwd));
}

static void reload_rules(const char *rules)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	gwt_signal(g_gwd, SIGHUP);
}

static gwt_resp *get(const char *path)
{
	gwt_resp *r = gwt_get(gwt_url(g_port, path));
	ck_assert_msg(r->curl_code == 0, "GET %s: %s", path, r->error);
	return r;
}

/* who answered a request: the origin's name, or "status N" */
static const char *who(const char *path)
{
	gwt_resp *r = get(path);
	const char *n = gwt_hdr(r, "X-Origin-Name");
	if (r->status == 200 && n)
		return n;
	return gwt_strf("status %ld", r->status);
}

/* n requests: "a=N b=N other=N" */
static const char *spread(const char *path, int n)
{
	int a = 0, b = 0, other = 0;
	for (int i = 0; i < n; i++) {
		const char *w = who(path);
		if (!strcmp(w, "a"))
			a++;
		else if (!strcmp(w, "b"))
			b++;
		else
			other++;
	}
	return gwt_strf("a=%d b=%d other=%d", a, b, other);
}

/* gwd's own 503 for "no server available" */
static void assert_503(const gwt_resp *r)
{
	ck_assert_int_eq(r->status, 503);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_ptr_nonnull(id);
	ck_assert_ptr_null(gwt_hdr(r, "X-Origin-Name"));
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"no healthy upstream\",\"request_id\":\"%s\"}",
	                                   id));
}

/* the admin API's "state" of server addr of upstream ups */
static const char *server_state(const char *ups, const char *addr)
{
	gwt_resp *r = gwt_get(gwt_url(g_admin, gwt_strf("/api/upstreams/%s", ups)));
	ck_assert_int_eq(r->status, 200);
	json_t *sv = json_object_get(gwt_json(r), "servers");
	for (size_t i = 0; i < json_array_size(sv); i++) {
		json_t *s = json_array_get(sv, i);
		if (!strcmp(json_string_value(json_object_get(s, "address")), addr))
			return json_string_value(json_object_get(s, "state"));
	}
	return "(absent)";
}

/* wait until the state of addr is want; returns the ms it took, or fails */
static int wait_state(const char *ups, const char *addr, const char *want, int timeout_ms)
{
	uint64_t t0 = gwt_now_ms();
	const char *st = "";
	while ((int)(gwt_now_ms() - t0) < timeout_ms) {
		st = server_state(ups, addr);
		if (!strcmp(st, want))
			return (int)(gwt_now_ms() - t0);
		gwt_sleep_ms(20);
	}
	ck_abort_msg("%s in upstream %s: state '%s' after %d ms, want '%s'; gwd stderr:\n%s",
	             addr, ups, st, timeout_ms, want, gwt_stderr(g_gwd));
	return -1;
}

static const char *addr_of(int port)
{
	return gwt_strf("127.0.0.1:%d", port);
}

/* ------------------------------------------------------------- health */

#define INTERVAL 200
#define SLACK    400

START_TEST(ejects_dead_server_and_readmits)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b");
	int pa = origin_port(a);
	/* no passive ejection, no retries: only the health checks keep
	 * requests away from a dead server */
	start(gwt_strf("upstream u { server 127.0.0.1:%d max_fails=0; server 127.0.0.1:%d max_fails=0;"
	               " retries 0; health_check { path \"/healthz\"; interval %dms; timeout 500ms;"
	               " healthy 2; unhealthy 2; } }\n"
	               "route r { match any; proxy u; }\n", pa, origin_port(b), INTERVAL), 0);
	ck_assert_str_eq(spread("/name", 10), "a=5 b=5 other=0");

	gwt_forget_origin(a);
	origin_stop(a);
	uint64_t t0 = gwt_now_ms(), last_bad = 0;
	int bad = 0, run = 0;
	while (run < 10 && gwt_now_ms() - t0 < 5000) {
		const char *w = who("/name");
		if (!strcmp(w, "status 502")) {
			bad++;
			last_bad = gwt_now_ms();
			run = 0;
		} else {
			ck_assert_str_eq(w, "b");
			run++;
		}
		gwt_sleep_ms(10);
	}
	ck_assert_int_eq(run, 10);
	/* requests reached the dead server until its checks failed twice */
	ck_assert_int_ge(bad, 1);
	ck_assert_msg(last_bad - t0 <= 2 * INTERVAL + SLACK, "ejected after %d ms",
	              (int)(last_bad - t0));
	ck_assert_msg(last_bad - t0 >= INTERVAL / 2, "ejected after %d ms: before two checks",
	              (int)(last_bad - t0));
	ck_assert_str_eq(spread("/name", 20), "a=0 b=20 other=0");
	ck_assert_int_eq(gwt_wait_output(g_gwd, gwt_strf("upstream 'u' server 127.0.0.1:%d: 2 failed "
	                                                 "health checks (", pa), 1000), 0);

	/* a new origin on the same port: back within interval x healthy */
	char err[256];
	origin *a2 = origin_start("a", "127.0.0.1", pa, 1, err, sizeof err);
	ck_assert_msg(a2 != NULL, "origin on port %d: %s", pa, err);
	uint64_t t1 = gwt_now_ms();
	int back = -1;
	while (gwt_now_ms() - t1 < 5000) {
		if (!strcmp(who("/name"), "a")) {
			back = (int)(gwt_now_ms() - t1);
			break;
		}
		gwt_sleep_ms(10);
	}
	ck_assert_msg(back >= 0, "not re-admitted; stderr:\n%s", gwt_stderr(g_gwd));
	ck_assert_msg(back <= 2 * INTERVAL + SLACK, "re-admitted after %d ms", back);
	/* two successful checks an interval apart were needed */
	ck_assert_msg(back >= INTERVAL - 50, "re-admitted after %d ms: before two checks", back);
	ck_assert_str_eq(spread("/name", 10), "a=5 b=5 other=0");
	ck_assert_int_eq(gwt_wait_output(g_gwd, gwt_strf("upstream 'u' server 127.0.0.1:%d: 2 passed "
	                                                 "health checks: up", pa), 1000), 0);
	origin_stop(a2);
}
END_TEST

START_TEST(expected_status)
{
	origin *a = gwt_origin("a");
	int pa = origin_port(a);
	start(gwt_strf("upstream bad { server 127.0.0.1:%d max_fails=0;"
	               " health_check { path \"/status/500\"; interval 100ms; unhealthy 1; } }\n"
	               "upstream ok500 { server 127.0.0.1:%d max_fails=0;"
	               " health_check { path \"/status/500\"; interval 100ms; unhealthy 1; expect 500; } }\n"
	               "upstream exact { server 127.0.0.1:%d max_fails=0;"
	               " health_check { path \"/status/204\"; interval 100ms; unhealthy 1; expect 200; } }\n"
	               "route b { match path ^= \"/bad/\"; rewrite path strip_prefix \"/bad\"; proxy bad; }\n"
	               "route o { match path ^= \"/ok/\"; rewrite path strip_prefix \"/ok\"; proxy ok500; }\n"
	               "route e { match path ^= \"/exact/\"; rewrite path strip_prefix \"/exact\"; proxy exact; }\n",
	               pa, pa, pa), 0);
	uint64_t t0 = gwt_now_ms();
	while (get("/bad/name")->status != 503 && gwt_now_ms() - t0 < 3000)
		gwt_sleep_ms(10);
	assert_503(get("/bad/name"));
	assert_503(get("/bad/echo"));
	while (get("/exact/name")->status != 503 && gwt_now_ms() - t0 < 3000)
		gwt_sleep_ms(10);
	assert_503(get("/exact/name"));
	/* the same origin through an upstream that expects 500: up */
	for (int i = 0; i < 5; i++)
		ck_assert_str_eq(who("/ok/name"), "a");
	ck_assert_int_eq(gwt_wait_output(g_gwd, "upstream 'bad' server", 1000), 0);
	ck_assert_int_eq(gwt_wait_output(g_gwd, "(status 500, expected 200..399): down", 1000), 0);
	ck_assert_int_eq(gwt_wait_output(g_gwd, "(status 204, expected 200..200): down", 1000), 0);
	ck_assert_ptr_null(strstr(gwt_stderr(g_gwd), "upstream 'ok500' server"));
}
END_TEST

/* the origin's /healthz turned to 503 and back; seen in the admin API */
START_TEST(health_endpoint_and_admin_view)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b");
	start(gwt_strf("upstream u { server 127.0.0.1:%d; server 127.0.0.1:%d;"
	               " health_check { path \"/healthz\"; interval 100ms; healthy 2; unhealthy 2; } }\n"
	               "route r { match any; proxy u; }\n", origin_port(a), origin_port(b)), 1);
	ck_assert_str_eq(spread("/name", 10), "a=5 b=5 other=0");
	origin_set_health(a, 503);
	int ms = wait_state("u", addr_of(origin_port(a)), "health_down", 3000);
	ck_assert_msg(ms <= 2 * 100 + SLACK, "down after %d ms", ms);
	ck_assert_str_eq(server_state("u", addr_of(origin_port(b))), "up");
	ck_assert_str_eq(spread("/name", 10), "a=0 b=10 other=0");
	origin_set_health(a, 200);
	ms = wait_state("u", addr_of(origin_port(a)), "up", 3000);
	ck_assert_msg(ms <= 2 * 100 + SLACK, "up after %d ms", ms);
	ck_assert_str_eq(spread("/name", 10), "a=5 b=5 other=0");
	/* both /healthz turned bad: no server, 503 */
	origin_set_health(a, 500);
	origin_set_health(b, 500);
	wait_state("u", addr_of(origin_port(a)), "health_down", 3000);
	wait_state("u", addr_of(origin_port(b)), "health_down", 3000);
	assert_503(get("/name"));
}
END_TEST

/* servers from the admin API and from a reload are checked; a reload
 * without the block clears the verdict */
START_TEST(new_servers_picked_up)
{
	origin *a = gwt_origin("a");
	int pa = origin_port(a), dead1 = gwt_free_port(), dead2;
	do
		dead2 = gwt_free_port();
	while (dead2 == dead1);
	const char *hc = "health_check { path \"/healthz\"; interval 100ms; unhealthy 2; }";
	start(gwt_strf("upstream u { server 127.0.0.1:%d; %s }\n"
	               "route r { match any; proxy u; }\n", pa, hc), 1);
	/* dyups: a server nobody sends traffic to (passive ejection cannot
	 * see it) is found dead by the checks */
	gwt_req q = { .method = "POST", .url = gwt_url(g_admin, "/upstream/u"),
	              .body = NULL, .has_body = 1 };
	const char *body = gwt_strf("server 127.0.0.1:%d;server 127.0.0.1:%d;", pa, dead1);
	q.body = body;
	q.body_len = strlen(body);
	ck_assert_int_eq(gwt_http(&q)->status, 200);
	wait_state("u", addr_of(dead1), "health_down", 2000);
	ck_assert_str_eq(server_state("u", addr_of(pa)), "up");
	/* back to the table's list, then a reload adds another dead server */
	gwt_req d = { .method = "DELETE", .url = gwt_url(g_admin, "/upstream/u") };
	ck_assert_int_eq(gwt_http(&d)->status, 200);
	reload_rules(gwt_strf("upstream u { server 127.0.0.1:%d; server 127.0.0.1:%d; %s }\n"
	                      "route r { match any; proxy u; }\n", pa, dead2, hc));
	wait_state("u", addr_of(dead2), "health_down", 3000);
	ck_assert_str_eq(server_state("u", addr_of(pa)), "up");
	/* the block removed: nothing stays marked down by the checks */
	reload_rules(gwt_strf("upstream u { server 127.0.0.1:%d; server 127.0.0.1:%d; }\n"
	                      "route r { match any; proxy u; }\n", pa, dead2));
	wait_state("u", addr_of(dead2), "up", 3000);
}
END_TEST

/* ------------------------------------------------------------ breaker */

#define COOLDOWN 1000

static const char *one_breaker(origin *a)
{
	return gwt_strf("upstream u { server 127.0.0.1:%d max_fails=0;"
	                " circuit_breaker { failures 3; window 10s; cooldown %dms; } }\n"
	                "route r { match any; proxy u; }\n", origin_port(a), COOLDOWN);
}

/* three 5xx answers (passed through to the client) open the breaker */
static uint64_t open_with(const char *path, long status)
{
	for (int i = 0; i < 3; i++) {
		gwt_resp *r = get(path);
		ck_assert_int_eq(r->status, status);
		ck_assert_str_eq(r->body, gwt_strf("status %ld\n", status));
	}
	return gwt_now_ms();
}

static void sleep_until(uint64_t t)
{
	uint64_t now = gwt_now_ms();
	if (t > now)
		gwt_sleep_ms((int)(t - now));
}

START_TEST(breaker_opens_and_half_opens)
{
	origin *a = gwt_origin("a");
	start(one_breaker(a), 0);
	ck_assert_str_eq(who("/name"), "a");
	/* 4xx are not failures */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(get("/status/404")->status, 404);
	ck_assert_str_eq(who("/name"), "a");
	uint64_t t_open = open_with("/status/502", 502);
	uint64_t n = origin_count(a);
	for (int i = 0; i < 5; i++)
		assert_503(get("/echo"));
	ck_assert_uint_eq(origin_count(a), n);            /* nothing reached it */
	sleep_until(t_open + COOLDOWN * 7 / 10);
	assert_503(get("/echo"));
	/* cooldown over: the probe goes through and closes it */
	sleep_until(t_open + COOLDOWN + 100);
	ck_assert_str_eq(who("/name"), "a");
	for (int i = 0; i < 5; i++)
		ck_assert_str_eq(who("/name"), "a");
	ck_assert_uint_eq(origin_count(a), n + 6);

	/* open again (503s count too); the probe fails: open again at once */
	t_open = open_with("/status/503", 503);
	assert_503(get("/echo"));
	sleep_until(t_open + COOLDOWN + 100);
	gwt_resp *r = get("/status/500");                 /* the probe */
	ck_assert_int_eq(r->status, 500);
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "a");
	uint64_t t_reopen = gwt_now_ms();
	n = origin_count(a);
	assert_503(get("/echo"));
	assert_503(get("/name"));
	ck_assert_uint_eq(origin_count(a), n);
	/* a new cooldown from the probe's failure */
	sleep_until(t_reopen + COOLDOWN * 7 / 10);
	assert_503(get("/echo"));
	sleep_until(t_reopen + COOLDOWN + 100);
	ck_assert_str_eq(who("/name"), "a");
	ck_assert_str_eq(who("/name"), "a");
	const char *srv = gwt_strf("upstream 'u' server 127.0.0.1:%d: circuit breaker", origin_port(a));
	ck_assert_int_eq(gwt_wait_output(g_gwd, gwt_strf("%s open for 1000 ms (3 failures within "
	                                                 "10000 ms)", srv), 1000), 0);
	ck_assert_int_eq(gwt_wait_output(g_gwd, gwt_strf("%s open again for 1000 ms (probe failed: "
	                                                 "status 5xx)", srv), 1000), 0);
	ck_assert_int_eq(gwt_wait_output(g_gwd, gwt_strf("%s closed (probe succeeded)", srv), 1000), 0);
}
END_TEST

START_TEST(breaker_single_probe)
{
	origin *a = gwt_origin("a");
	start(one_breaker(a), 0);
	uint64_t t_open = open_with("/status/502", 502);
	sleep_until(t_open + COOLDOWN + 100);
	/* the probe: a slow request, in flight while others arrive */
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gwt_sendf(fd, "GET /slow/800 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	gwt_sleep_ms(200);
	uint64_t n = origin_count(a);
	for (int i = 0; i < 3; i++)
		assert_503(get("/echo"));                  /* only one probe */
	ck_assert_uint_eq(origin_count(a), n);
	const char *resp = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(resp);
	ck_assert_int_eq(gwt_raw_status(resp), 200);
	ck_assert_str_eq(gwt_raw_body(resp), "slept 800\n");
	/* the probe succeeded: closed */
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(who("/name"), "a");
}
END_TEST

/* one server of two answers 500: its breaker opens, the other serves */
START_TEST(breaker_other_server)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b");
	start(gwt_strf("upstream u { server 127.0.0.1:%d max_fails=0; server 127.0.0.1:%d max_fails=0;"
	               " circuit_breaker { failures 3; window 10s; cooldown %dms; } }\n"
	               "route r { match any; rewrite path regex \"^.*$\" \"/healthz\"; proxy u; }\n",
	               origin_port(a), origin_port(b), COOLDOWN), 0);
	ck_assert_str_eq(spread("/x", 10), "a=5 b=5 other=0");
	origin_set_health(a, 500);
	/* round robin: a's three 500s come with three of b's 200s */
	ck_assert_str_eq(spread("/x", 6), "a=0 b=3 other=3");
	uint64_t t_open = gwt_now_ms();
	ck_assert_str_eq(spread("/x", 20), "a=0 b=20 other=0");
	origin_set_health(a, 200);
	ck_assert_str_eq(spread("/x", 6), "a=0 b=6 other=0");  /* still open */
	sleep_until(t_open + COOLDOWN + 100);
	/* half-open: a gets its probe, succeeds, and round robin resumes */
	ck_assert_str_eq(spread("/x", 20), "a=10 b=10 other=0");
}
END_TEST

/* connect errors count: a dead server of two, no retries, no passive
 * ejection: exactly `failures` requests see its 502 */
START_TEST(breaker_counts_connect_errors)
{
	origin *b = gwt_origin("b");
	int dead = gwt_free_port();
	start(gwt_strf("upstream u { server 127.0.0.1:%d max_fails=0; server 127.0.0.1:%d max_fails=0;"
	               " retries 0; circuit_breaker { failures 2; window 10s; cooldown 30s; } }\n"
	               "route r { match any; proxy u; }\n", dead, origin_port(b)), 0);
	ck_assert_str_eq(spread("/name", 12), "a=0 b=10 other=2");
	ck_assert_str_eq(spread("/name", 10), "a=0 b=10 other=0");
}
END_TEST

/* ------------------------------------------------ admin API views */

/* the object of server addr in GET /api/upstreams/ups */
static json_t *server_obj(const char *ups, const char *addr)
{
	gwt_resp *r = gwt_get(gwt_url(g_admin, gwt_strf("/api/upstreams/%s", ups)));
	ck_assert_int_eq(r->status, 200);
	json_t *sv = json_object_get(gwt_json(r), "servers");
	for (size_t i = 0; i < json_array_size(sv); i++) {
		json_t *s = json_array_get(sv, i);
		if (!strcmp(json_string_value(json_object_get(s, "address")), addr))
			return s;
	}
	ck_abort_msg("no server %s in upstream %s", addr, ups);
	return NULL;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	ck_assert_msg(v != NULL, "no string %s", key);
	return v;
}

static json_int_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "no integer %s", key);
	return json_integer_value(v);
}

static const char *compact(json_t *o)
{
	char *t = json_dumps(o, JSON_COMPACT);
	const char *s = gwt_strf("%s", t ? t : "(null)");
	free(t);
	return s;
}

static void wait_health(const char *ups, const char *addr, const char *want)
{
	uint64_t t0 = gwt_now_ms();
	const char *h = "";
	while (gwt_now_ms() - t0 < 3000) {
		if (!strcmp(h = jstr(server_obj(ups, addr), "health"), want))
			return;
		gwt_sleep_ms(20);
	}
	ck_abort_msg("%s in %s: health '%s', want '%s'", addr, ups, h, want);
}

/* per-server health-check and breaker state in /api/upstreams, /status
 * and dyups /detail; upstreams without the blocks keep dyups' lines */
START_TEST(admin_views_show_health_and_breaker)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b"), *c = gwt_origin("c");
	int pa = origin_port(a), pb = origin_port(b), pc = origin_port(c);
	start(gwt_strf("upstream p { server 127.0.0.1:%d; }\n"
	               "upstream u { server 127.0.0.1:%d max_fails=0; server 127.0.0.1:%d max_fails=0;"
	               " retries 0; health_check { path \"/healthz\"; interval 100ms; healthy 1;"
	               " unhealthy 2; } circuit_breaker { failures 3; window 10s; cooldown 30s; } }\n"
	               "route rp { match path ^= \"/p/\"; proxy p; }\n"
	               "route r { match any; proxy u; }\n", pc, pa, pb), 1);
	wait_health("u", addr_of(pa), "up");
	wait_health("u", addr_of(pb), "up");
	json_t *s = server_obj("u", addr_of(pa));
	ck_assert_str_eq(jstr(s, "state"), "up");
	json_t *hc = json_object_get(s, "health_check");
	ck_assert_int_ge(jint(hc, "checks"), 1);
	ck_assert_int_eq(jint(hc, "failures"), 0);
	ck_assert_int_eq(jint(hc, "last_status"), 200);
	ck_assert_str_eq(jstr(hc, "last_error"), "");
	ck_assert_str_eq(jstr(s, "breaker"), "closed");
	ck_assert_str_eq(compact(json_object_get(s, "circuit_breaker")),
	                 "{\"failures\":0,\"opened\":0,\"retry_in_ms\":0}");
	/* no blocks: health "none", no details, no breaker */
	s = server_obj("p", addr_of(pc));
	ck_assert_str_eq(jstr(s, "health"), "none");
	ck_assert_ptr_null(json_object_get(s, "health_check"));
	ck_assert_ptr_null(json_object_get(s, "breaker"));
	ck_assert_ptr_null(json_object_get(s, "circuit_breaker"));

	/* a's /healthz fails: down after two checks */
	origin_set_health(a, 503);
	wait_health("u", addr_of(pa), "down");
	s = server_obj("u", addr_of(pa));
	ck_assert_str_eq(jstr(s, "state"), "health_down");
	hc = json_object_get(s, "health_check");
	ck_assert_int_ge(jint(hc, "failures"), 2);
	ck_assert_int_eq(jint(hc, "last_status"), 503);
	ck_assert_str_eq(jstr(hc, "last_error"), "status 503, expected 200..399");
	ck_assert_str_eq(jstr(s, "breaker"), "closed");
	/* b (the only one left) answers three 500s: its breaker opens */
	for (int i = 0; i < 3; i++) {
		gwt_resp *r = get("/status/500");
		ck_assert_int_eq(r->status, 500);
		ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "b");
	}
	uint64_t t_open = gwt_now_ms();
	s = server_obj("u", addr_of(pb));
	ck_assert_str_eq(jstr(s, "breaker"), "open");
	ck_assert_str_eq(jstr(s, "health"), "up");
	ck_assert_str_eq(jstr(s, "state"), "up");        /* the breaker is not health */
	json_t *cb = json_object_get(s, "circuit_breaker");
	ck_assert_int_eq(jint(cb, "opened"), 1);
	json_int_t retry = jint(cb, "retry_in_ms");
	ck_assert_int_le(retry, 30000);
	ck_assert_int_ge(retry, 30000 - (json_int_t)(gwt_now_ms() - t_open) - 1000);
	assert_503(get("/echo"));

	/* dyups /detail: health= and breaker= after the servers of u only */
	gwt_resp *r = gwt_get(gwt_url(g_admin, "/detail"));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, gwt_strf(
		"p\nserver 127.0.0.1:%d weight=1 max_fails=1 fail_timeout=10 backup=0 down=0\n\n"
		"u\nserver 127.0.0.1:%d weight=1 max_fails=0 fail_timeout=10 backup=0 down=1"
		" health=down breaker=closed\n"
		"server 127.0.0.1:%d weight=1 max_fails=0 fail_timeout=10 backup=0 down=1"
		" health=up breaker=open\n\n", pc, pa, pb));
	/* GET /upstream/u keeps dyups' lines (they can be posted back) */
	r = gwt_get(gwt_url(g_admin, "/upstream/u"));
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_null(strstr(r->body, "health="));

	/* /status carries the same per-server fields */
	r = gwt_get(gwt_url(g_admin, "/status"));
	ck_assert_int_eq(r->status, 200);
	json_t *ups = json_object_get(gwt_json(r), "upstreams");
	json_t *u = NULL;
	for (size_t i = 0; i < json_array_size(ups); i++)
		if (!strcmp(jstr(json_array_get(ups, i), "name"), "u"))
			u = json_array_get(ups, i);
	ck_assert_ptr_nonnull(u);
	json_t *sv = json_object_get(u, "servers");
	ck_assert_uint_eq(json_array_size(sv), 2);
	ck_assert_str_eq(jstr(json_array_get(sv, 0), "health"), "down");
	ck_assert_str_eq(jstr(json_array_get(sv, 0), "breaker"), "closed");
	ck_assert_str_eq(jstr(json_array_get(sv, 1), "health"), "up");
	ck_assert_str_eq(jstr(json_array_get(sv, 1), "breaker"), "open");
	ck_assert_int_eq(jint(json_object_get(json_array_get(sv, 1), "circuit_breaker"), "opened"), 1);

	/* the servers of a GET answer can be PUT back: the new keys are
	 * runtime keys */
	r = gwt_get(gwt_url(g_admin, "/api/upstreams/u"));
	const char *back = compact(json_object_get(gwt_json(r), "servers"));
	ck_assert_ptr_nonnull(strstr(back, "\"circuit_breaker\":{"));
	gwt_req q = { .method = "PUT", .url = gwt_url(g_admin, "/api/upstreams/u"),
	              .body = back, .body_len = strlen(back), .has_body = 1 };
	r = gwt_http(&q);
	ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("health");
	TCase *h = tcase_create("health checks");
	tcase_set_timeout(h, 60);
	tcase_add_test(h, ejects_dead_server_and_readmits);
	tcase_add_test(h, expected_status);
	tcase_add_test(h, health_endpoint_and_admin_view);
	tcase_add_test(h, new_servers_picked_up);
	tcase_add_test(h, admin_views_show_health_and_breaker);
	suite_add_tcase(s, h);
	TCase *b = tcase_create("circuit breaker");
	tcase_set_timeout(b, 60);
	tcase_add_test(b, breaker_opens_and_half_opens);
	tcase_add_test(b, breaker_single_probe);
	tcase_add_test(b, breaker_other_server);
	tcase_add_test(b, breaker_counts_connect_errors);
	suite_add_tcase(s, b);
	return gwt_main(s, "gwd gwc");
}

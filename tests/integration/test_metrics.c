/*
 * test_metrics.c — GET /metrics on the admin port of a real gwd: the text
 * format itself (HELP/TYPE before samples, contiguous families, label
 * syntax, cumulative histogram buckets), counters that move by exactly the
 * requests sent (per route, upstream and status class), histogram counts,
 * bytes, connections, upstream servers (up, retries), cache hits/misses,
 * rate_limit / conn_limit decisions, table generation and reload results,
 * counters kept across reloads, and metrics: {enabled: false}.
 */
#include <config.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static gwt_proc *g_gwd;
static int g_port, g_admin;

/* rules.gwr <- rules, compiled; gwd with `threads` workers and the admin
 * API on a free port */
static void start(const char *rules, int threads, const char *extra_yaml)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	g_admin = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: %d\n"
	           "admin: {listen: '127.0.0.1:%d'}\n%s", g_port, threads, g_admin,
	           extra_yaml ? extra_yaml : "");
	g_gwd = gwt_gwd("gw.yaml", g_port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", g_admin, 5000), 0);
}

static gwt_resp *get(const char *path)
{
	return gwt_get(gwt_url(g_port, path));
}

/* the exposition, checked for 200 and its content type */
static const char *scrape(void)
{
	gwt_resp *r = gwt_get(gwt_url(g_admin, "/metrics"));
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
	return r->body;
}

/* the value of the sample written exactly `series` (name{labels}); -1 when
 * there is no such line */
static double val(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/* a scrape once every request sent so far is counted: a client has its
 * answer a little before gwd's completion callback counts the request, so
 * wait until none is in flight (the gauge drops after the counting) */
static const char *settled(void)
{
	uint64_t t0 = gwt_now_ms();
	const char *m;
	while (val(m = scrape(), "gw_requests_in_flight") != 0 && gwt_now_ms() - t0 < 3000)
		gwt_sleep_ms(10);
	return m;
}

/* a counter: a missing series is 0 */
static double ctr(const char *text, const char *series)
{
	double v = val(text, series);
	return v < 0 ? 0 : v;
}

#define DELTA(before, after, series) (ctr(after, series) - ctr(before, series))

/* ------------------------------------------------ format validation */
static int name_ok(const char *s, size_t n)
{
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return 0;
	return 1;
}

/* the base family of a sample name (histogram suffixes stripped when the
 * family is a histogram) */
static int in_family(const char *name, size_t n, const char *fam, const char *type)
{
	size_t fl = strlen(fam);
	if (n == fl && !strncmp(name, fam, n))
		return 1;
	if (strcmp(type, "histogram") || n <= fl || strncmp(name, fam, fl))
		return 0;
	const char *suf = name + fl;
	size_t sl = n - fl;
	return (sl == 7 && !strncmp(suf, "_bucket", 7)) || (sl == 4 && !strncmp(suf, "_sum", 4)) ||
	       (sl == 6 && !strncmp(suf, "_count", 6));
}

/* Checks the text format 0.0.4 rules that a Prometheus server enforces:
 * every sample belongs to the family whose HELP and TYPE came just before,
 * a family appears once, names and labels are well formed, values parse,
 * histogram buckets are cumulative with +Inf last and equal to _count. */
static void check_format(const char *text)
{
	char fam[128] = "", type[32] = "";
	char seen[256][128];
	int nseen = 0;
	int line = 0;
	char hist_key[512] = "";
	double last_bucket = -1, inf_bucket = -1;
	int have_help = 0;
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		ck_assert_msg(e != NULL, "last line not terminated");
		size_t n = (size_t)(e - p);
		char l[2048];
		ck_assert_uint_lt(n, sizeof l);
		memcpy(l, p, n);
		l[n] = '\0';
		line++;
		p = e + 1;
		if (!strncmp(l, "# HELP ", 7)) {
			char *sp = strchr(l + 7, ' ');
			ck_assert_msg(sp && sp[1], "line %d: HELP without text", line);
			ck_assert_msg(name_ok(l + 7, (size_t)(sp - l - 7)), "line %d: bad name", line);
			snprintf(fam, sizeof fam, "%.*s", (int)(sp - l - 7), l + 7);
			for (int i = 0; i < nseen; i++)
				ck_assert_msg(strcmp(seen[i], fam), "family %s appears twice", fam);
			ck_assert_int_lt(nseen, 256);
			snprintf(seen[nseen++], sizeof seen[0], "%s", fam);
			have_help = 1;
			type[0] = '\0';
			hist_key[0] = '\0';        /* a new family: new series */
			last_bucket = inf_bucket = -1;
			continue;
		}
		if (!strncmp(l, "# TYPE ", 7)) {
			size_t fl = strlen(fam);
			ck_assert_msg(have_help && !strncmp(l + 7, fam, fl) && l[7 + fl] == ' ',
			              "line %d: TYPE not after its HELP: %s", line, l);
			snprintf(type, sizeof type, "%s", l + 8 + fl);
			ck_assert_msg(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
			              !strcmp(type, "histogram"), "line %d: type %s", line, type);
			continue;
		}
		ck_assert_msg(l[0] != '#', "line %d: unknown comment %s", line, l);
		ck_assert_msg(type[0], "line %d: sample before HELP/TYPE: %s", line, l);
		/* name{labels} value */
		size_t nl = strcspn(l, "{ ");
		ck_assert_msg(name_ok(l, nl), "line %d: bad name", line);
		ck_assert_msg(in_family(l, nl, fam, type), "line %d: %s outside its family %s", line,
		              l, fam);
		const char *q = l + nl;
		char le[256] = "";
		char key[512];
		size_t kl = 0;
		if (*q == '{') {
			q++;
			while (*q != '}') {
				size_t ln = strcspn(q, "=");
				ck_assert_msg(name_ok(q, ln), "line %d: bad label name", line);
				int is_le = ln == 2 && !strncmp(q, "le", 2);
				q += ln;
				ck_assert_msg(q[0] == '=' && q[1] == '"', "line %d: label syntax", line);
				q += 2;
				char v[256];
				size_t vl = 0;
				while (*q != '"') {
					ck_assert_msg(*q, "line %d: unterminated label value", line);
					if (*q == '\\') {
						ck_assert_msg(q[1] == '\\' || q[1] == '"' || q[1] == 'n',
						              "line %d: bad escape", line);
						q++;
					}
					if (vl < sizeof v - 1)
						v[vl++] = *q;
					q++;
				}
				v[vl] = '\0';
				if (is_le)
					snprintf(le, sizeof le, "%s", v);
				else
					kl += (size_t)snprintf(key + kl, sizeof key - kl, "%s;", v);
				q++;
				if (*q == ',')
					q++;
				else
					ck_assert_msg(*q == '}', "line %d: label list syntax", line);
			}
			q++;
		}
		key[kl] = '\0';
		ck_assert_msg(*q == ' ', "line %d: no value", line);
		char *end;
		double v = strtod(q + 1, &end);
		ck_assert_msg(*end == '\0' && end != q + 1, "line %d: bad value '%s'", line, q + 1);
		ck_assert_msg(v >= 0, "line %d: negative", line);
		if (!strcmp(type, "histogram")) {
			if (nl == strlen(fam) + 7) {          /* _bucket */
				ck_assert_msg(le[0], "line %d: bucket without le", line);
				if (strcmp(key, hist_key)) {
					ck_assert_msg(last_bucket < 0 || inf_bucket >= 0,
					              "line %d: series ended without +Inf", line);
					snprintf(hist_key, sizeof hist_key, "%s", key);
					last_bucket = -1;
					inf_bucket = -1;
				}
				ck_assert_msg(inf_bucket < 0, "line %d: bucket after +Inf", line);
				ck_assert_msg(v >= last_bucket, "line %d: buckets not cumulative", line);
				last_bucket = v;
				if (!strcmp(le, "+Inf"))
					inf_bucket = v;
			} else if (nl == strlen(fam) + 6) {   /* _count */
				ck_assert_msg(!strcmp(key, hist_key) && inf_bucket == v,
				              "line %d: _count %g != +Inf bucket %g", line, v, inf_bucket);
			}
		}
	}
	ck_assert_int_gt(line, 20);
}

/* ------------------------------------------------------------- tests */
static const char *rules_basic(int oport)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                "route api { match path ^= \"/api/\"; tag \"public\"; tag \"v1\"; proxy a; }\n"
	                "route hello { match path == \"/hello\"; tag \"public\"; tag \"public\";"
	                " respond 200 \"hi\\n\"; }\n"
	                "route moved { match path == \"/old\"; redirect 301 \"/new\"; }\n",
	                oport);
}

START_TEST(format_is_valid)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), 2, NULL);
	ck_assert_int_eq(get("/api/echo")->status, 200);
	ck_assert_int_eq(get("/hello")->status, 200);
	ck_assert_int_eq(get("/nope")->status, 404);
	const char *m = scrape();
	check_format(m);
	/* the families issue 5 names, present from the start */
	const char *fams[] = {
		"gw_requests_total", "gw_request_duration_seconds", "gw_upstream_duration_seconds",
		"gw_received_bytes_total", "gw_sent_bytes_total", "gw_connections_active",
		"gw_upstream_server_up", "gw_upstream_retries_total", "gw_ratelimit_decisions_total",
		"gw_waf_blocks_total", "gw_cache_requests_total", "gw_table_generation",
		"gw_table_info", "gw_reloads_total", "gw_ratelimit_redis_fallbacks_total",
		"gw_access_log_dropped_total",
	};
	for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
		ck_assert_msg(strstr(m, gwt_strf("# TYPE %s ", fams[i])), "no family %s", fams[i]);
	ck_assert_ptr_nonnull(strstr(m, "# TYPE gw_request_duration_seconds histogram\n"));
	ck_assert_ptr_nonnull(strstr(m, "# TYPE gw_requests_total counter\n"));
	/* other methods are not the metrics endpoint */
	gwt_req q = { .method = "POST", .url = gwt_url(g_admin, "/metrics"), .body = "", .has_body = 1 };
	ck_assert_int_ne(gwt_http(&q)->status, 200);
}
END_TEST

START_TEST(requests_move_exactly)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), 2, NULL);
	const char *b = scrape();
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(get("/api/echo")->status, 200);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(get("/api/status/503")->status, 503);
	ck_assert_int_eq(get("/api/status/404")->status, 404);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get("/hello")->status, 200);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(get("/old")->status, 301);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(get("/nope")->status, 404);
	const char *a = settled();
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"api\",upstream=\"a\",code_class=\"2xx\"}"), 7);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"api\",upstream=\"a\",code_class=\"5xx\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"api\",upstream=\"a\",code_class=\"4xx\"}"), 1);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"hello\",upstream=\"\",code_class=\"2xx\"}"), 3);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"moved\",upstream=\"\",code_class=\"3xx\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"\",upstream=\"\",code_class=\"4xx\"}"), 4);
	/* `tag` labels: the tagged routes' counts again, per tag (a repeated
	 * tag once); untagged routes have none */
	ck_assert_double_eq(DELTA(b, a, "gw_tag_requests_total{tag=\"public\",route=\"api\",code_class=\"2xx\"}"), 7);
	ck_assert_double_eq(DELTA(b, a, "gw_tag_requests_total{tag=\"v1\",route=\"api\",code_class=\"5xx\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_tag_requests_total{tag=\"public\",route=\"hello\",code_class=\"2xx\"}"), 3);
	ck_assert_ptr_null(strstr(a, "route=\"moved\",code_class"));
	ck_assert_int_eq(strstr(strstr(a, "tag=\"public\",route=\"hello\"") + 1, "tag=\"public\",route=\"hello\"") != NULL, 0);
	/* nothing else moved */
	ck_assert_double_eq(val(a, "gw_requests_total{route=\"hello\",upstream=\"\",code_class=\"4xx\"}"), -1);
	ck_assert_double_eq(val(a, "gw_requests_total{route=\"api\",upstream=\"\",code_class=\"2xx\"}"), -1);
	/* histograms count every request of the route; upstream time only
	 * for proxied ones */
	ck_assert_double_eq(DELTA(b, a, "gw_request_duration_seconds_count{route=\"api\"}"), 10);
	ck_assert_double_eq(DELTA(b, a, "gw_request_duration_seconds_bucket{route=\"api\",le=\"+Inf\"}"), 10);
	ck_assert_double_eq(DELTA(b, a, "gw_upstream_duration_seconds_count{route=\"api\"}"), 10);
	ck_assert_double_eq(DELTA(b, a, "gw_request_duration_seconds_count{route=\"hello\"}"), 3);
	ck_assert_double_eq(val(a, "gw_upstream_duration_seconds_count{route=\"hello\"}"), -1);
	ck_assert_double_eq(DELTA(b, a, "gw_request_duration_seconds_count{route=\"\"}"), 4);
	/* local answers take well under a second */
	ck_assert_double_eq(DELTA(b, a, "gw_request_duration_seconds_bucket{route=\"hello\",le=\"1\"}"), 3);
	ck_assert_double_lt(ctr(a, "gw_request_duration_seconds_sum{route=\"hello\"}"), 3.0);
	/* the origin saw 10 requests */
	ck_assert_double_eq(DELTA(b, a, gwt_strf("gw_upstream_server_requests_total{upstream=\"a\","
	                                         "server=\"127.0.0.1:%d\"}", origin_port(o))), 10);
	check_format(a);
}
END_TEST

/* counts from several workers and concurrent clients add up exactly */
START_TEST(concurrent_counts_add_up)
{
	/* the origin runs as a process of its own: this test forks clients,
	 * and a fork while an in-process origin's threads hold the allocator
	 * lock can hang the child (seen under ASan) */
	int oport;
	gwt_origin_proc("a", &oport);
	start(rules_basic(oport), 3, NULL);
	const char *b = scrape();
	enum { KIDS = 4, EACH = 50 };
	pid_t kids[KIDS];
	for (int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		ck_assert_int_ge(kids[k], 0);
		if (kids[k] == 0) {
			gwt_client *c = gwt_client_new();
			int bad = 0;
			for (int i = 0; i < EACH; i++) {
				gwt_req q = { .url = gwt_url(g_port, i % 2 ? "/hello" : "/api/echo"), .client = c };
				bad += gwt_http(&q)->status != 200;
			}
			_exit(bad ? 1 : 0);
		}
	}
	/* scrapes while the traffic runs never see a counter go back */
	double last = 0;
	for (int i = 0; i < 10; i++) {
		double v = ctr(scrape(), "gw_requests_total{route=\"hello\",upstream=\"\",code_class=\"2xx\"}");
		ck_assert_double_ge(v, last);
		last = v;
		gwt_sleep_ms(10);
	}
	for (int k = 0; k < KIDS; k++) {
		int st;
		ck_assert_int_eq(waitpid(kids[k], &st, 0), kids[k]);
		ck_assert_int_eq(WEXITSTATUS(st), 0);
	}
	const char *a = settled();
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"hello\",upstream=\"\",code_class=\"2xx\"}"), KIDS * EACH / 2);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"api\",upstream=\"a\",code_class=\"2xx\"}"), KIDS * EACH / 2);
	ck_assert_double_eq(DELTA(b, a, "gw_request_duration_seconds_count{route=\"api\"}"), KIDS * EACH / 2);
}
END_TEST

START_TEST(bytes_and_connections)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), 1, NULL);
	const char *b = scrape();
	ck_assert_double_eq(val(b, "gw_connections_active"), 0);
	/* exact bytes: a raw request of known size on keep-alive connections */
	const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = gwt_connect("127.0.0.1", g_port, 2000);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(gwt_send(fds[i], req, strlen(req)), 0);
		const char *resp = gwt_recv_response(fds[i], 0, 2000, NULL);
		ck_assert_ptr_nonnull(resp);
		ck_assert_str_eq(gwt_raw_body(resp), "hi\n");
	}
	const char *req2 = "GET /api/bytes/1000 HTTP/1.1\r\nHost: x\r\n\r\n";
	ck_assert_int_eq(gwt_send(fds[0], req2, strlen(req2)), 0);
	ck_assert_ptr_nonnull(gwt_recv_response(fds[0], 0, 2000, NULL));
	const char *req3 = "GET /api/bytes/200000 HTTP/1.1\r\nHost: x\r\n\r\n";   /* streamed */
	ck_assert_int_eq(gwt_send(fds[1], req3, strlen(req3)), 0);
	ck_assert_ptr_nonnull(gwt_recv_response(fds[1], 0, 5000, NULL));
	const char *req4 = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
	ck_assert_int_eq(gwt_send(fds[2], req4, strlen(req4)), 0);
	const char *r4 = gwt_recv_response(fds[2], 0, 2000, NULL);
	ck_assert_ptr_nonnull(r4);
	const char *a = settled();
	ck_assert_double_eq(val(a, "gw_connections_active"), 3);
	ck_assert_double_eq(DELTA(b, a, "gw_received_bytes_total{route=\"hello\"}"), 3 * strlen(req));
	ck_assert_double_eq(DELTA(b, a, "gw_sent_bytes_total{route=\"hello\"}"), 9);
	ck_assert_double_eq(DELTA(b, a, "gw_received_bytes_total{route=\"api\"}"),
	                    strlen(req2) + strlen(req3) + strlen(req4));
	ck_assert_double_eq(DELTA(b, a, "gw_sent_bytes_total{route=\"api\"}"),
	                    1000 + 200000 + strlen(gwt_raw_body(r4)));
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/* closed connections leave the gauge */
	uint64_t t0 = gwt_now_ms();
	while (val(scrape(), "gw_connections_active") != 0 && gwt_now_ms() - t0 < 2000)
		gwt_sleep_ms(20);
	ck_assert_double_eq(val(scrape(), "gw_connections_active"), 0);
	/* a connection that has not sent its first head yet counts too (gwd
	 * holds it before libmicrohttpd gets it: runtime/door.c) */
	int idle = gwt_connect("127.0.0.1", g_port, 2000);
	ck_assert_int_ge(idle, 0);
	t0 = gwt_now_ms();
	while (val(scrape(), "gw_connections_active") != 1 && gwt_now_ms() - t0 < 2000)
		gwt_sleep_ms(20);
	ck_assert_double_eq(val(scrape(), "gw_connections_active"), 1);
	close(idle);
	t0 = gwt_now_ms();
	while (val(scrape(), "gw_connections_active") != 0 && gwt_now_ms() - t0 < 2000)
		gwt_sleep_ms(20);
	ck_assert_double_eq(val(scrape(), "gw_connections_active"), 0);
}
END_TEST

START_TEST(upstream_servers_and_retries)
{
	origin *o = gwt_origin("a");
	int dead = gwt_free_port();
	start(gwt_strf("upstream a { server 127.0.0.1:%d max_fails=1 fail_timeout=60s;"
	               " server 127.0.0.1:%d max_fails=1 fail_timeout=60s; }\n"
	               "route api { match any; proxy a; }\n", origin_port(o), dead), 1, NULL);
	const char *live_s = gwt_strf("{upstream=\"a\",server=\"127.0.0.1:%d\"}", origin_port(o));
	const char *dead_s = gwt_strf("{upstream=\"a\",server=\"127.0.0.1:%d\"}", dead);
	const char *b = scrape();
	ck_assert_double_eq(val(b, gwt_strf("gw_upstream_server_up%s", live_s)), 1);
	ck_assert_double_eq(val(b, gwt_strf("gw_upstream_server_up%s", dead_s)), 1);
	ck_assert_double_eq(val(b, "gw_upstream_retries_total{upstream=\"a\"}"), 0);
	/* round robin: one request goes to the dead server, is retried on the
	 * live one (GET, connect error), and the dead one is ejected */
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(get("/echo")->status, 200);
	const char *a = settled();
	ck_assert_double_eq(val(a, gwt_strf("gw_upstream_server_up%s", live_s)), 1);
	ck_assert_double_eq(val(a, gwt_strf("gw_upstream_server_up%s", dead_s)), 0);
	ck_assert_double_eq(val(a, "gw_upstream_retries_total{upstream=\"a\"}"), 1);
	ck_assert_double_eq(val(a, gwt_strf("gw_upstream_server_failures_total%s", dead_s)), 1);
	ck_assert_double_eq(val(a, gwt_strf("gw_upstream_server_requests_total%s", live_s)), 6);
	ck_assert_double_eq(val(a, gwt_strf("gw_upstream_server_draining%s", live_s)), 0);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"api\",upstream=\"a\",code_class=\"2xx\"}"), 6);
}
END_TEST

/* the circuit breaker's state and the active health checks, per server */
START_TEST(breaker_and_health_checks)
{
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream u { server 127.0.0.1:%d max_fails=0; retries 0;"
	               " circuit_breaker { failures 3; window 10s; cooldown 30s; }"
	               " health_check { path \"/healthz\"; interval 100ms; } }\n"
	               "route r { match any; proxy u; }\n", origin_port(o)), 1, NULL);
	const char *sv = gwt_strf("upstream=\"u\",server=\"127.0.0.1:%d\"", origin_port(o));
	const char *m = scrape();
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_server_breaker_state{%s,state=\"closed\"}", sv)), 1);
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_server_breaker_state{%s,state=\"open\"}", sv)), 0);
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_server_breaker_state{%s,state=\"half_open\"}", sv)), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get("/status/500")->status, 500);
	ck_assert_int_eq(get("/echo")->status, 503);          /* open: no server */
	m = settled();
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_server_breaker_state{%s,state=\"closed\"}", sv)), 0);
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_server_breaker_state{%s,state=\"open\"}", sv)), 1);
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_server_breaker_opened_total{%s}", sv)), 1);
	/* the breaker is not health: the server is still up */
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_server_up{%s}", sv)), 1);
	/* the 503 went nowhere upstream, but it counts under the upstream */
	ck_assert_double_eq(val(m, "gw_requests_total{route=\"r\",upstream=\"u\",code_class=\"5xx\"}"), 4);
	/* health checks run every 100 ms */
	uint64_t t0 = gwt_now_ms();
	while (ctr(scrape(), gwt_strf("gw_upstream_health_checks_total{%s}", sv)) < 3)
		ck_assert_msg(gwt_now_ms() - t0 < 3000, "no health checks counted");
	m = scrape();
	ck_assert_double_eq(val(m, gwt_strf("gw_upstream_health_check_failures_total{%s}", sv)), 0);
	check_format(m);
}
END_TEST

START_TEST(cache_hits_and_misses)
{
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route c { match any; cache ttl=60s; proxy a; }\n", origin_port(o)), 1, NULL);
	const char *b = scrape();
	ck_assert_str_eq(gwt_hdr(get("/bytes/10"), "X-Cache"), "MISS");
	ck_assert_str_eq(gwt_hdr(get("/bytes/10"), "X-Cache"), "HIT");
	ck_assert_str_eq(gwt_hdr(get("/bytes/10"), "X-Cache"), "HIT");
	ck_assert_str_eq(gwt_hdr(get("/bytes/20"), "X-Cache"), "MISS");
	const char *a = settled();
	ck_assert_double_eq(DELTA(b, a, "gw_cache_requests_total{route=\"c\",result=\"hit\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_cache_requests_total{route=\"c\",result=\"miss\"}"), 2);
	/* hits are answered by gwd itself: counted without upstream */
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"c\",upstream=\"a\",code_class=\"2xx\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"c\",upstream=\"\",code_class=\"2xx\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_sent_bytes_total{route=\"c\"}"), 10 * 3 + 20);
}
END_TEST

/* rate_limit and conn_limit decisions by route and result (the plugins
 * call metrics_count_ratelimit / _connlimit): a request is counted once
 * even when two limits looked at it, "limited" if either refused */
START_TEST(ratelimit_decisions)
{
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route rl { match path ^= \"/rl\"; rate_limit 1r/m burst=3;"
	               " respond 200 \"ok\\n\"; }\n"
	               "route two { match path ^= \"/two\"; rate_limit 100r/s burst=50;"
	               " rate_limit 1r/m burst=2; respond 200 \"ok\\n\"; }\n"
	               "route conn { match path ^= \"/slow/\"; conn_limit 1 key=route; proxy a; }\n"
	               "route free { match any; respond 200 \"free\\n\"; }\n", origin_port(o)),
	      1, NULL);
	const char *b = scrape();
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(get("/rl")->status, i < 3 ? 200 : 429);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(get("/two")->status, i < 2 ? 200 : 429);
	ck_assert_int_eq(get("/free")->status, 200);
	/* conn_limit 1: a slow request holds the route's only place */
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gwt_sendf(fd, "GET /slow/600 HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	gwt_sleep_ms(200);
	ck_assert_int_eq(get("/slow/1")->status, 429);
	const char *slow = gwt_recv_response(fd, 0, 5000, NULL);
	ck_assert_ptr_nonnull(slow);
	ck_assert_int_eq(gwt_raw_status(slow), 200);
	close(fd);
	ck_assert_int_eq(get("/slow/1")->status, 200);
	const char *a = settled();
	ck_assert_double_eq(DELTA(b, a, "gw_ratelimit_decisions_total{route=\"rl\",result=\"allowed\"}"), 3);
	ck_assert_double_eq(DELTA(b, a, "gw_ratelimit_decisions_total{route=\"rl\",result=\"limited\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_ratelimit_decisions_total{route=\"two\",result=\"allowed\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_ratelimit_decisions_total{route=\"two\",result=\"limited\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_connlimit_decisions_total{route=\"conn\",result=\"allowed\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_connlimit_decisions_total{route=\"conn\",result=\"limited\"}"), 1);
	/* routes without the directive have no series */
	ck_assert_double_eq(val(a, "gw_ratelimit_decisions_total{route=\"free\",result=\"allowed\"}"), -1);
	ck_assert_double_eq(val(a, "gw_ratelimit_decisions_total{route=\"conn\",result=\"allowed\"}"), -1);
	ck_assert_double_eq(val(a, "gw_connlimit_decisions_total{route=\"rl\",result=\"allowed\"}"), -1);
	/* the refusals are gwd's own 4xx answers */
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"rl\",upstream=\"\",code_class=\"4xx\"}"), 2);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"conn\",upstream=\"\",code_class=\"4xx\"}"), 1);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"conn\",upstream=\"a\",code_class=\"2xx\"}"), 2);
	/* local mode: no Redis fallback */
	ck_assert_double_eq(val(a, "gw_ratelimit_redis_fallbacks_total"), 0);
	check_format(a);
}
END_TEST

/* the waf plugin reports its hits (metrics_count_waf): blocks and
 * detect-mode hits by route, rule and class; label values escaped */
START_TEST(waf_hits_by_rule)
{
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route guarded { match path ^= \"/g\"; waf rule \"no-\\\\widgets\\\"x\\\"\""
	               " in=args regex \"widget-[0-9]+\"; proxy a; }\n"
	               "route watched { match path ^= \"/w\"; waf rule \"watch\" in=args"
	               " regex \"widget-[0-9]+\"; waf all mode=detect; proxy a; }\n",
	               origin_port(o)), 1, NULL);
	const char *b = scrape();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get("/g?q=widget-1")->status, 403);
	ck_assert_int_eq(get("/g?q=fine")->status, 404);      /* the origin's 404 */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(get("/w?q=widget-2")->status, 403);
	const char *a = settled();
	ck_assert_double_eq(DELTA(b, a, "gw_waf_blocks_total{route=\"guarded\","
	                    "rule=\"no-\\\\widgets\\\"x\\\"\",class=\"rule\"}"), 3);
	ck_assert_double_eq(DELTA(b, a, "gw_waf_blocks_total{route=\"watched\",rule=\"watch\","
	                    "class=\"rule\"}"), 2);
	ck_assert_ptr_null(strstr(a, "gw_waf_detections_total{route=\"watched\""));
	/* detect mode: let through, counted as a detection of class sqli */
	ck_assert_int_eq(get("/w?id=1%27%20OR%20%271%27=%271")->status, 404);
	const char *c = settled();
	const char *d = strstr(c, "\ngw_waf_detections_total{route=\"watched\",rule=\"");
	ck_assert_ptr_nonnull(d);
	const char *e = strchr(d + 1, '\n');
	ck_assert_ptr_nonnull(e);
	ck_assert_msg(!strncmp(e - 16, ",class=\"sqli\"} 1", 16), "%.*s", (int)(e - d), d);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"guarded\",upstream=\"\","
	                    "code_class=\"4xx\"}"), 3);
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"guarded\",upstream=\"a\","
	                    "code_class=\"4xx\"}"), 1);
	check_format(c);
}
END_TEST

static void compile_into_rules(const char *src)
{
	gwt_write("next.gwr", src, strlen(src));
	const char *out = gwt_path("next.gwb");
	ck_assert_int_eq(gwt_compile_status("next.gwr", out, NULL), 0);
	ck_assert_int_eq(rename(out, gwt_path("rules.gwb")), 0);
}

static void wait_metric(const char *series, double want)
{
	uint64_t t0 = gwt_now_ms();
	double v = -1;
	while (gwt_now_ms() - t0 < 3000) {
		if ((v = val(scrape(), series)) == want)
			return;
		gwt_sleep_ms(20);
	}
	ck_abort_msg("%s is %g, not %g", series, v, want);
}

START_TEST(reloads_and_counters_survive)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), 1, NULL);
	const char *b = scrape();
	ck_assert_double_eq(val(b, "gw_table_generation"), 1);
	ck_assert_double_eq(val(b, "gw_reloads_total{result=\"ok\"}"), 1);
	ck_assert_double_eq(val(b, "gw_reloads_total{result=\"error\"}"), 0);
	char hash1[80];
	const char *h = strstr(b, "gw_table_info{source_hash=\"");
	ck_assert_ptr_nonnull(h);
	snprintf(hash1, sizeof hash1, "%.64s", h + 27);
	ck_assert_ptr_nonnull(strstr(b, gwt_strf("gw_table_info{source_hash=\"%s\"} 1\n", hash1)));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(get("/hello")->status, 200);

	/* a new table: routes reordered, one added; "hello" keeps its counts */
	compile_into_rules(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                            "route extra { match path == \"/extra\"; respond 200 \"x\"; }\n"
	                            "route hello { match path == \"/hello\"; respond 200 \"hi\\n\"; }\n",
	                            origin_port(o)));
	wait_metric("gw_table_generation", 2);
	const char *m = scrape();
	ck_assert_double_eq(val(m, "gw_reloads_total{result=\"ok\"}"), 2);
	ck_assert_ptr_null(strstr(m, gwt_strf("gw_table_info{source_hash=\"%s\"}", hash1)));
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(get("/hello")->status, 200);
	ck_assert_int_eq(get("/extra")->status, 200);
	const char *a = settled();
	ck_assert_double_eq(DELTA(b, a, "gw_requests_total{route=\"hello\",upstream=\"\",code_class=\"2xx\"}"), 7);
	ck_assert_double_eq(DELTA(b, a, "gw_request_duration_seconds_count{route=\"hello\"}"), 7);
	ck_assert_double_eq(val(a, "gw_requests_total{route=\"extra\",upstream=\"\",code_class=\"2xx\"}"), 1);

	/* a broken table: counted as an error, generation unchanged */
	gwt_writef("rules.gwb", "not a table\n");
	wait_metric("gw_reloads_total{result=\"error\"}", 1);
	a = scrape();
	ck_assert_double_eq(val(a, "gw_table_generation"), 2);
	ck_assert_double_eq(val(a, "gw_reloads_total{result=\"ok\"}"), 2);
	/* SIGHUP reload with the bad table: another error */
	gwt_signal(g_gwd, SIGHUP);
	wait_metric("gw_reloads_total{result=\"error\"}", 2);
	check_format(scrape());
}
END_TEST

/* 1,000 routes over 100 upstreams: ids past the first counter chunks,
 * every route's series, a scrape that stays fast */
START_TEST(thousand_routes)
{
	origin *o = gwt_origin("a");
	size_t cap = 200000, n = 0;
	char *src = malloc(cap);
	for (int u = 0; u < 100; u++)
		n += (size_t)snprintf(src + n, cap - n, "upstream u%d { server 127.0.0.1:%d; }\n", u,
		                      origin_port(o));
	for (int r = 0; r < 1000; r++)
		n += (size_t)snprintf(src + n, cap - n, "route r%d { match path ^= \"/r%d/\";"
		                      " rewrite path strip_prefix \"/r%d\"; proxy u%d; }\n", r, r, r, r % 100);
	start(src, 2, NULL);
	free(src);
	gwt_client *c = gwt_client_new();
	for (int r = 0; r < 1000; r++) {
		gwt_req q = { .url = gwt_url(g_port, gwt_strf("/r%d/bytes/%d", r, r % 7)), .client = c };
		ck_assert_int_eq(gwt_http(&q)->status, 200);
	}
	for (int k = 0; k < 3; k++) {
		gwt_req q = { .url = gwt_url(g_port, "/r999/echo"), .client = c };
		ck_assert_int_eq(gwt_http(&q)->status, 200);
	}
	settled();                 /* every route counted before the timed scrape */
	uint64_t t0 = gwt_now_ms();
	const char *m = scrape();
	uint64_t ms = gwt_now_ms() - t0;
	ck_assert_msg(ms < 2000, "scrape took %llu ms", (unsigned long long)ms);
	for (int r = 0; r < 1000; r++) {
		ck_assert_double_eq(val(m, gwt_strf("gw_requests_total{route=\"r%d\",upstream=\"u%d\","
		                                    "code_class=\"2xx\"}", r, r % 100)), r == 999 ? 4 : 1);
		if (r != 999)   /* (r999 also sent three /echo bodies) */
			ck_assert_double_eq(val(m, gwt_strf("gw_sent_bytes_total{route=\"r%d\"}", r)), r % 7);
	}
	ck_assert_double_eq(val(m, "gw_upstream_retries_total{upstream=\"u57\"}"), 0);
	check_format(m);
}
END_TEST

/* metrics: {enabled: false}: no GET /metrics (404), while the access log
 * still gets every field the request path gathers (upstream side,
 * rate-limit verdicts); with the access log off too, requests still flow */
START_TEST(metrics_off)
{
	origin *o = gwt_origin("a");
	const char *rules = gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                             "route api { match path ^= \"/api/\"; rate_limit 1r/m burst=1;"
	                             " proxy a; }\n", origin_port(o));
	start(rules, 1, "metrics: {enabled: false}\naccess_log: {path: access.log}\n");
	ck_assert_int_eq(gwt_wait_output(g_gwd, "metrics are off", 2000), 0);
	gwt_resp *r = gwt_get(gwt_url(g_admin, "/metrics"));
	ck_assert_int_eq(r->status, 404);
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/status"))->status, 200);
	ck_assert_int_eq(get("/api/echo")->status, 200);
	ck_assert_int_eq(get("/api/echo")->status, 429);
	const char *log = NULL;
	uint64_t t0 = gwt_now_ms();
	size_t n = 0;
	while (gwt_now_ms() - t0 < 3000) {
		log = gwt_read("access.log", NULL);
		n = 0;
		for (const char *p = log; p && *p; p++)
			n += *p == '\n';
		if (n >= 2)
			break;
		gwt_sleep_ms(20);
	}
	ck_assert_uint_eq(n, 2);
	const char *second = strchr(log, '\n') + 1;
	ck_assert_ptr_nonnull(strstr(log, gwt_strf("\"upstream\":\"a\",\"upstream_server\":"
	                                           "\"127.0.0.1:%d\",\"upstream_status\":200,",
	                                           origin_port(o))));
	ck_assert_ptr_nonnull(strstr(log, "\"ratelimit\":\"allowed\""));
	ck_assert_ptr_nonnull(strstr(second, "\"status\":429,"));
	ck_assert_ptr_nonnull(strstr(second, "\"upstream\":null,"));
	ck_assert_ptr_nonnull(strstr(second, "\"ratelimit\":\"limited\""));
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);

	/* both off */
	start(rules, 1, "metrics: {enabled: false}\n");
	ck_assert_int_eq(get("/api/echo")->status, 200);
	ck_assert_int_eq(get("/api/echo")->status, 429);
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/metrics"))->status, 404);
}
END_TEST

START_TEST(admin_token_applies)
{
	origin *o = gwt_origin("a");
	gwt_writef("token", "s3cret\n");
	start(rules_basic(origin_port(o)), 1, NULL);
	/* the /metrics endpoint goes through the admin API's authentication:
	 * restart with a token file */
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n"
	           "admin: {listen: '127.0.0.1:%d', token_file: token}\n", g_port, g_admin);
	g_gwd = gwt_gwd("gw.yaml", g_port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", g_admin, 5000), 0);
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/metrics"))->status, 401);
	const char *hdr[] = { "Authorization: Bearer s3cret", NULL };
	gwt_req q = { .url = gwt_url(g_admin, "/metrics"), .headers = hdr };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "# TYPE gw_requests_total counter\n"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *t = tcase_create("metrics");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, format_is_valid);
	tcase_add_test(t, requests_move_exactly);
	tcase_add_test(t, concurrent_counts_add_up);
	tcase_add_test(t, bytes_and_connections);
	tcase_add_test(t, upstream_servers_and_retries);
	tcase_add_test(t, breaker_and_health_checks);
	tcase_add_test(t, cache_hits_and_misses);
	tcase_add_test(t, ratelimit_decisions);
	tcase_add_test(t, waf_hits_by_rule);
	tcase_add_test(t, reloads_and_counters_survive);
	tcase_add_test(t, thousand_routes);
	tcase_add_test(t, admin_token_applies);
	tcase_add_test(t, metrics_off);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

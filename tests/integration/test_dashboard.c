/*
 * test_dashboard.c — the dashboard at GET / on gwd's admin port
 * (runtime/dashboard.h) and what it reads from /status.
 *
 *   page      GET / is runtime/dashboard.html byte for byte, text/html,
 *             self-contained (no src=/href=/url()/@import, a CSP meta that
 *             allows nothing but the admin API), HEAD works, POST is 405
 *   token     with admin.token_file the page is served without the token
 *             (it holds no data) while /status and /metrics still want it
 *   reloads   /status reload_history: start, POST /reload, a bad table by
 *             inotify (failed, generation kept, error text), newest first;
 *             uptime_ms moves
 *   chromium  Debian's chromium, headless, opens the page while curl sends
 *             live traffic (200s, slow requests, 5xx, WAF blocks, 429s, a
 *             dead health-checked upstream): the dumped DOM holds the live
 *             figures (requests/s > 0, error rate > 0, p50 <= p99, per-route
 *             rows with their rates, SVG chart paths, upstream server
 *             states, both reloads, the WAF hits) — and, with the token, the
 *             same through #token=...; then a screenshot (a PNG; copied to
 *             $GW_DASH_SCREENSHOT when set: docs/dashboard.png is made so);
 *             with metrics: {enabled: false} the page says metrics are off
 *             and still shows upstreams and reloads from /status.
 *
 * Without chromium the first three run and the program exits 77 (SKIP):
 * the browser test is the point of the program, CI installs chromium.
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char *chromium_path(void)
{
	static const char *const cand[] = { "/usr/bin/chromium", "/usr/bin/chromium-browser",
	                                    "/usr/bin/google-chrome", NULL };
	const char *env = getenv("GW_CHROMIUM");
	if (env && *env)
		return access(env, X_OK) == 0 ? env : NULL;
	for (int i = 0; cand[i]; i++)
		if (access(cand[i], X_OK) == 0)
			return cand[i];
	return NULL;
}

static int g_port, g_admin;
static gwt_proc *g_gwd;

/* rules + gateway.yaml (admin on a free port; admin_extra: more keys of
 * the admin: mapping, ", k: v"; extra_yaml: more top-level lines), gwd
 * started */
static void start(const char *rules, const char *admin_extra, const char *extra_yaml)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	g_admin = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 2\n"
	           "admin: {listen: '127.0.0.1:%d'%s}\n%s", g_port, g_admin,
	           admin_extra ? admin_extra : "", extra_yaml ? extra_yaml : "");
	g_gwd = gwt_gwd("gw.yaml", g_port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", g_admin, 5000), 0);
}

static const char *simple_rules(int origin_port)
{
	return gwt_strf("upstream api { server 127.0.0.1:%d; }\n"
	                "route users { match path ^= \"/echo/\"; proxy api; }\n", origin_port);
}

static gwt_resp *admin_req(const char *method, const char *path, const char *token)
{
	const char *hdrs[2] = { token ? gwt_strf("Authorization: Bearer %s", token) : NULL, NULL };
	gwt_req q = { .method = method, .url = gwt_url(g_admin, path), .headers = hdrs };
	return gwt_http(&q);
}

/* ------------------------------------------------------------- page */

START_TEST(page_is_the_file_and_self_contained)
{
	origin *o = gwt_origin("a");
	start(simple_rules(origin_port(o)), NULL, NULL);
	gwt_resp *r = gwt_get(gwt_url(g_admin, "/"));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "text/html; charset=utf-8");
	ck_assert_str_eq(gwt_hdr(r, "Cache-Control"), "no-store");
	size_t flen;
	const char *file = gwt_read(gwt_strf("%s/runtime/dashboard.html", gwt_srcdir()), &flen);
	ck_assert_msg(file != NULL, "runtime/dashboard.html not found under GW_SRCDIR");
	ck_assert_uint_eq(r->body_len, flen);
	ck_assert(memcmp(r->body, file, flen) == 0);

	/* nothing loaded from elsewhere: no attribute that fetches, no CSS
	 * import or url(), and a CSP that would refuse it anyway */
	const char *forbidden[] = { "src=", "href=", "url(", "@import", "//cdn", "fonts.googleapis", NULL };
	for (int i = 0; forbidden[i]; i++)
		ck_assert_msg(strstr(r->body, forbidden[i]) == NULL, "page contains %s", forbidden[i]);
	ck_assert_ptr_nonnull(strstr(r->body, "http-equiv=\"Content-Security-Policy\""));
	ck_assert_ptr_nonnull(strstr(r->body, "default-src 'none'"));
	ck_assert_ptr_nonnull(strstr(r->body, "connect-src 'self'"));
	/* it polls the two endpoints relative to itself */
	ck_assert_ptr_nonnull(strstr(r->body, "get(\"status\")"));
	ck_assert_ptr_nonnull(strstr(r->body, "get(\"metrics\")"));

	gwt_req head = { .method = "HEAD", .url = gwt_url(g_admin, "/") };
	r = gwt_http(&head);
	ck_assert_int_eq(r->status, 200);
	ck_assert_uint_eq(r->body_len, 0);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), gwt_strf("%zu", flen));

	r = admin_req("POST", "/", NULL);
	ck_assert_int_eq(r->status, 405);
	ck_assert_str_eq(json_string_value(json_object_get(gwt_json(r), "error")),
	                 "method not allowed (allowed: GET)");
	/* only "/" is the page: other paths are still the admin API's */
	r = gwt_get(gwt_url(g_admin, "/index.html"));
	ck_assert_int_eq(r->status, 404);
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(page_public_data_needs_token)
{
	origin *o = gwt_origin("a");
	gwt_writef("admin.token", "  s3cret-token\n");
	start(simple_rules(origin_port(o)), ", token_file: admin.token", NULL);
	gwt_resp *r = gwt_get(gwt_url(g_admin, "/"));
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "<svg"));
	r = admin_req("HEAD", "/", NULL);
	ck_assert_int_eq(r->status, 200);
	/* the data is not public */
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/status"))->status, 401);
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/metrics"))->status, 401);
	ck_assert_int_eq(admin_req("GET", "/status", "wrong")->status, 401);
	ck_assert_int_eq(admin_req("GET", "/status", "s3cret-token")->status, 200);
	ck_assert_int_eq(admin_req("GET", "/metrics", "s3cret-token")->status, 200);
	/* nor is anything else because "/" is */
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/list"))->status, 401);
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/?x=1"))->status, 200);
	ck_assert_int_eq(admin_req("POST", "/", NULL)->status, 401);
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

/* ---------------------------------------------------------- reloads */

static json_t *status_json(void)
{
	gwt_resp *r = gwt_get(gwt_url(g_admin, "/status"));
	ck_assert_int_eq(r->status, 200);
	return gwt_json(r);
}

static json_t *hist_at(json_t *st, size_t i)
{
	json_t *h = json_object_get(st, "reload_history");
	ck_assert_msg(json_is_array(h), "no reload_history in /status");
	ck_assert_uint_gt(json_array_size(h), i);
	return json_array_get(h, i);
}

START_TEST(status_reload_history)
{
	origin *o = gwt_origin("a");
	uint64_t t0 = (uint64_t)time(NULL) * 1000;
	start(simple_rules(origin_port(o)), NULL, NULL);
	json_t *st = status_json();
	ck_assert_uint_eq(json_array_size(json_object_get(st, "reload_history")), 1);
	json_t *e = hist_at(st, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "generation")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(e, "trigger")), "start");
	ck_assert(json_is_true(json_object_get(e, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(e, "error")), "");
	const char *hash1 = json_string_value(json_object_get(json_object_get(st, "table"), "source_sha256"));
	ck_assert_str_eq(json_string_value(json_object_get(e, "source_sha256")), hash1);
	json_int_t tm = json_integer_value(json_object_get(e, "time_ms"));
	ck_assert_msg((uint64_t)tm + 1000 >= t0 && (uint64_t)tm <= (uint64_t)time(NULL) * 1000 + 1000,
	              "time_ms %lld not now", (long long)tm);
	json_int_t up1 = json_integer_value(json_object_get(st, "uptime_ms"));
	ck_assert(json_is_integer(json_object_get(st, "uptime_ms")));

	/* POST /reload: generation 2, newest first */
	ck_assert_int_eq(admin_req("POST", "/reload", NULL)->status, 200);
	gwt_sleep_ms(30);
	st = status_json();
	ck_assert_int_gt(json_integer_value(json_object_get(st, "uptime_ms")), up1 + 20);
	e = hist_at(st, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "generation")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(e, "trigger")), "reload");
	ck_assert(json_is_true(json_object_get(e, "ok")));
	ck_assert_int_eq(json_integer_value(json_object_get(hist_at(st, 1), "generation")), 1);

	/* a garbage table dropped in place: a failed attempt, 2 kept */
	gwt_write("rules.gwb", "not a table", 11);
	int found = 0;
	for (int i = 0; i < 100 && !found; i++) {
		gwt_sleep_ms(50);
		st = status_json();
		found = json_array_size(json_object_get(st, "reload_history")) == 3;
	}
	ck_assert_msg(found, "the failed reload never showed in reload_history");
	e = hist_at(st, 0);
	ck_assert(json_is_false(json_object_get(e, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(e, "trigger")), "file changed");
	ck_assert_int_eq(json_integer_value(json_object_get(e, "generation")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(e, "source_sha256")), hash1);
	ck_assert_str_ne(json_string_value(json_object_get(e, "error")), "");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(st, "table"),
	                                                     "reloads_failed")), 1);

	/* the ring keeps the last 16, newest first */
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(admin_req("POST", "/reload", NULL)->status, 409);
	st = status_json();
	ck_assert_uint_eq(json_array_size(json_object_get(st, "reload_history")), 16);
	ck_assert_str_eq(json_string_value(json_object_get(hist_at(st, 15), "trigger")), "reload");
	ck_assert(json_is_false(json_object_get(hist_at(st, 0), "ok")));
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

/* --------------------------------------------------------- chromium */

/* Run chromium headless on url; extra: its last arguments (--dump-dom or
 * --screenshot=...). Returns stdout; asserts exit 0. */
static const char *chromium(const char *url, const char *extra, int budget_ms)
{
	const char *prof = gwt_path(gwt_strf("chromium-profile-%d", (int)(gwt_now_ms() % 100000)));
	mkdir(prof, 0700);
	const char *argv[] = {
		chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
		gwt_strf("--user-data-dir=%s", prof), gwt_strf("--virtual-time-budget=%d", budget_ms),
		"--window-size=1280,900", extra, url, NULL
	};
	const char *env[] = { gwt_strf("HOME=%s", gwt_dir()), NULL };
	const char *out, *err;
	int rc = gwt_run("chromium", argv, env, 90000, &out, &err);
	ck_assert_msg(rc == 0, "chromium exited %d: %s", rc, err);
	return out;
}

/* the value of attribute attr in the first tag of dom that contains
 * `marker` (e.g. id="kpi-rps"); NULL when there is none */
static const char *attr_of(const char *dom, const char *marker, const char *attr)
{
	const char *p = strstr(dom, marker);
	if (!p)
		return NULL;
	const char *tag = p;
	while (tag > dom && *tag != '<')
		tag--;
	const char *end = strchr(p, '>');
	const char *key = gwt_strf("%s=\"", attr);
	for (const char *a = strstr(tag, key); a && a < end; a = strstr(a + 1, key))
		if (a[-1] == ' ') {
			a += strlen(key);
			const char *q = strchr(a, '"');
			return gwt_strf("%.*s", (int)(q - a), a);
		}
	return NULL;
}

static double num_attr(const char *dom, const char *marker, const char *attr)
{
	const char *v = attr_of(dom, marker, attr);
	ck_assert_msg(v != NULL, "no %s on the tag of %s", attr, marker);
	ck_assert_msg(*v, "empty %s on the tag of %s (no live number)", attr, marker);
	return strtod(v, NULL);
}

/* the text between <svg ... id="ID" and its </svg> */
static const char *svg_of(const char *dom, const char *id)
{
	const char *p = strstr(dom, gwt_strf("id=\"%s\"", id));
	ck_assert_msg(p != NULL, "no svg %s", id);
	const char *e = strstr(p, "</svg>");
	ck_assert_ptr_nonnull(e);
	return gwt_strf("%.*s", (int)(e - p), p);
}

/* a drawn line: <path class="line" ... d="M x y L x y ..."> */
static int has_line(const char *svg)
{
	for (const char *p = strstr(svg, "<path class=\"line\""); p; p = strstr(p + 1, "<path class=\"line\"")) {
		const char *d = attr_of(p, "class=\"line\"", "d");
		if (d && d[0] == 'M' && strchr(d, 'L'))
			return 1;
	}
	return 0;
}

static double metric_sum(const char *text, const char *prefix)
{
	double sum = 0;
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, prefix, n)) {
			const char *sp = strchr(p, ' ');
			if (sp)
				sum += strtod(sp + 1, NULL);
		}
	return sum;
}

/* live traffic through gwd while chromium looks, from curl processes
 * (their --rate keeps it gentle on a 2-core machine) */
static void traffic(void)
{
	const char *u = gwt_url(g_port, "");
	const char *script = gwt_strf(
		"C='curl -s -o /dev/null'\n"
		"$C --rate 150/s '%s/echo/users/[1-1000000]' &\n"
		"$C --rate 30/s '%s/slow/8?i=[1-1000000]' &\n"
		"$C --rate 5/s '%s/slow/70?i=[1-1000000]' &\n"
		"$C --rate 40/s '%s/echo/search?q=1%%27%%20or%%201=1--%%20&i=[1-1000000]' &\n"
		"$C --rate 40/s '%s/echo/login?i=[1-1000000]' &\n"
		"$C --rate 30/s '%s/status/500?i=[1-1000000]' &\n"
		"$C --rate 25/s '%s/legacy/x?i=[1-1000000]' &\n"
		"wait\n", u, u, u, u, u, u, u);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	gwt_spawn("traffic", argv, NULL);
}

static const char *dash_rules(int a, int b, int dead)
{
	return gwt_strf(
		"upstream api { server 127.0.0.1:%d; server 127.0.0.1:%d weight=2; retries 0; }\n"
		"upstream legacy { server 127.0.0.1:%d; retries 0;\n"
		"  health_check { path \"/healthz\"; interval 100ms; timeout 100ms; unhealthy 1; } }\n"
		"upstream billing { server 127.0.0.1:%d; retries 0;\n"
		"  circuit_breaker { failures 3; window 10s; cooldown 60s; } }\n"
		"route search { match path == \"/echo/search\"; waf sqli xss; proxy api; }\n"
		"route login { match path == \"/echo/login\"; rate_limit 5r/s burst=5 key=client_ip; proxy api; }\n"
		"route users { match path ^= \"/echo/\"; proxy api; }\n"
		"route reports { match path ^= \"/slow/\"; proxy api; }\n"
		"route payments { match path ^= \"/status/\"; proxy billing; }\n"
		"route legacy { match path ^= \"/legacy/\"; proxy legacy; }\n", a, b, dead, a);
}

/* wait until the dead upstream is health-checked down and every route has
 * counted some traffic */
static const char *warm_up(const char *token)
{
	const char *m = NULL;
	for (int i = 0; i < 100; i++) {
		gwt_resp *r = admin_req("GET", "/metrics", token);
		ck_assert_int_eq(r->status, 200);
		m = r->body;
		if (strstr(m, "gw_upstream_server_up{upstream=\"legacy\"") &&
		    metric_sum(m, "gw_upstream_server_up{upstream=\"legacy\"") == 0 &&
		    /* billing is the only upstream with a breaker */
		    strstr(m, "gw_upstream_server_breaker_state{upstream=\"billing\"") &&
		    strstr(m, ",state=\"open\"} 1\n") &&
		    metric_sum(m, "gw_requests_total{route=\"users\"") > 50 &&
		    metric_sum(m, "gw_requests_total{route=\"legacy\"") > 0 &&
		    metric_sum(m, "gw_requests_total{route=\"reports\"") > 0 &&
		    metric_sum(m, "gw_waf_blocks_total{route=\"search\"") > 0)
			return m;
		gwt_sleep_ms(100);
	}
	ck_abort_msg("traffic never showed in /metrics:\n%s", m);
	return NULL;
}

static void check_dom(const char *dom, const char *metrics)
{
	ck_assert_msg(strstr(dom, "id=\"live\" class=\"ok\""), "the page never polled successfully");
	double rps = num_attr(dom, "id=\"kpi-rps\"", "data-value");
	ck_assert_msg(rps > 0, "requests/s %g", rps);
	double err = num_attr(dom, "id=\"kpi-err\"", "data-value");
	ck_assert_msg(err > 0 && err < 1, "error rate %g", err);
	double e4 = num_attr(dom, "id=\"kpi-4xx\"", "data-value");
	ck_assert_msg(e4 > 0 && e4 < 1, "4xx rate %g", e4);
	double p50 = num_attr(dom, "id=\"kpi-p50\"", "data-value");
	double p99 = num_attr(dom, "id=\"kpi-p99\"", "data-value");
	ck_assert_msg(p50 > 0 && p99 >= p50 && p99 < 10, "p50 %g p99 %g", p50, p99);
	num_attr(dom, "id=\"kpi-conn\"", "data-value");

	/* one row per route, with its own live rate */
	const char *routes[] = { "users", "reports", "search", "login", "payments", "legacy", NULL };
	for (int i = 0; routes[i]; i++) {
		const char *m = gwt_strf("data-route=\"%s\"", routes[i]);
		ck_assert_msg(strstr(dom, m), "no row for route %s", routes[i]);
		num_attr(dom, m, "data-rps");
	}
	ck_assert_msg(num_attr(dom, "data-route=\"users\"", "data-rps") > 0, "users has no rate");
	/* the charts are drawn */
	ck_assert_msg(has_line(svg_of(dom, "chart-traffic")), "no traffic line");
	ck_assert_msg(has_line(svg_of(dom, "chart-latency")), "no latency line");
	ck_assert_ptr_nonnull(strstr(dom, "<svg class=\"spark\""));

	/* upstream servers with their state, and the open breaker */
	ck_assert_str_eq(attr_of(dom, "data-upstream=\"legacy\"", "data-state"), "health_down");
	ck_assert_str_eq(attr_of(dom, "data-upstream=\"billing\"", "data-breaker"), "open");
	ck_assert_ptr_nonnull(strstr(dom, ">breaker open</span>"));
	const char *up = attr_of(dom, "data-upstream=\"api\"", "data-state");
	ck_assert_ptr_nonnull(up);
	ck_assert_str_eq(up, "up");

	/* both reloads, newest first */
	const char *g2 = strstr(dom, "class=\"reload\" data-generation=\"2\" data-ok=\"1\"");
	const char *g1 = strstr(dom, "class=\"reload\" data-generation=\"1\" data-ok=\"1\"");
	ck_assert_msg(g2 && g1 && g2 < g1, "reloads not shown newest first");

	/* WAF blocks; rate-limit refusals when gwd counts them */
	ck_assert_msg(num_attr(dom, "data-kind=\"waf block\"", "data-total") > 0, "no WAF hits");
	if (metric_sum(metrics, "gw_ratelimit_decisions_total{route=\"login\",result=\"limited\"") > 0)
		ck_assert_msg(num_attr(dom, "data-kind=\"rate_limit\"", "data-total") > 0,
		              "rate-limit refusals in /metrics but not on the page");
}

START_TEST(chromium_renders_live_numbers)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b");
	int dead = gwt_free_port();
	start(dash_rules(origin_port(a), origin_port(b), dead), NULL, NULL);
	ck_assert_int_eq(admin_req("POST", "/reload", NULL)->status, 200);
	traffic();
	const char *metrics = warm_up(NULL);

	const char *dom = chromium(gwt_url(g_admin, "/"), "--dump-dom", 6000);
	gwt_write("dom.html", dom, strlen(dom));
	check_dom(dom, metrics);

	/* a screenshot for the docs: the page after half a minute of polls */
	const char *png = gwt_path("dashboard.png");
	chromium(gwt_url(g_admin, "/"), gwt_strf("--screenshot=%s", png), 30000);
	size_t len;
	const char *img = gwt_read("dashboard.png", &len);
	ck_assert_msg(img && len > 20000, "no screenshot (%zu bytes)", img ? len : 0);
	ck_assert(memcmp(img, "\x89PNG\r\n\x1a\n", 8) == 0);
	const char *keep = getenv("GW_DASH_SCREENSHOT");
	if (keep && *keep) {
		FILE *f = fopen(keep, "wb");
		ck_assert_msg(f != NULL, "cannot write %s", keep);
		ck_assert_uint_eq(fwrite(img, 1, len, f), len);
		ck_assert_int_eq(fclose(f), 0);
	}
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(chromium_with_token_in_fragment)
{
	origin *a = gwt_origin("a"), *b = gwt_origin("b");
	int dead = gwt_free_port();
	gwt_writef("admin.token", "tok-%d\n", dead);
	const char *tok = gwt_strf("tok-%d", dead);
	start(dash_rules(origin_port(a), origin_port(b), dead), ", token_file: admin.token", NULL);
	ck_assert_int_eq(admin_req("POST", "/reload", tok)->status, 200);
	traffic();
	const char *metrics = warm_up(tok);
	const char *dom = chromium(gwt_url(g_admin, gwt_strf("/#token=%s", tok)), "--dump-dom", 6000);
	check_dom(dom, metrics);
	/* the token left the address bar and is not written into the page */
	ck_assert_ptr_null(strstr(dom, tok));

	/* no token: the page asks for one instead of showing numbers */
	dom = chromium(gwt_url(g_admin, "/"), "--dump-dom", 3000);
	ck_assert_ptr_nonnull(strstr(dom, "id=\"authbar\" class=\"show\""));
	ck_assert_ptr_nonnull(strstr(dom, "token needed"));
	ck_assert_str_eq(attr_of(dom, "id=\"kpi-rps\"", "data-value"), "");
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

/* metrics: {enabled: false}: GET /metrics is 404; the page says so and
 * still shows what /status has */
START_TEST(chromium_metrics_off)
{
	origin *a = gwt_origin("a");
	start(simple_rules(origin_port(a)), NULL, "metrics: {enabled: false}\n");
	ck_assert_int_eq(gwt_get(gwt_url(g_admin, "/metrics"))->status, 404);
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/echo/x"))->status, 200);
	const char *dom = chromium(gwt_url(g_admin, "/"), "--dump-dom", 4000);
	ck_assert_msg(strstr(dom, "id=\"live\" class=\"ok\""), "the page did not poll");
	ck_assert_ptr_nonnull(strstr(dom, "live (metrics are off in gateway.yaml)"));
	ck_assert_ptr_nonnull(strstr(dom, "metrics are off (gateway.yaml metrics: {enabled: false})"));
	ck_assert_str_eq(attr_of(dom, "id=\"kpi-rps\"", "data-value"), "");
	ck_assert_str_eq(attr_of(dom, "data-upstream=\"api\"", "data-state"), "up");
	ck_assert_ptr_nonnull(strstr(dom, "class=\"reload\" data-generation=\"1\" data-ok=\"1\""));
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dashboard");
	TCase *t = tcase_create("page");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, page_is_the_file_and_self_contained);
	tcase_add_test(t, page_public_data_needs_token);
	tcase_add_test(t, status_reload_history);
	suite_add_tcase(s, t);
	int have = chromium_path() != NULL;
	if (have) {
		TCase *c = tcase_create("chromium");
		tcase_set_timeout(c, 240);
		tcase_add_test(c, chromium_renders_live_numbers);
		tcase_add_test(c, chromium_with_token_in_fragment);
		tcase_add_test(c, chromium_metrics_off);
		suite_add_tcase(s, c);
	}
	int rc = gwt_main(s, "gwd gwc");
	if (rc == 0 && !have) {
		printf("SKIP: chromium is not installed (apt-get install chromium); "
		       "the browser tests did not run\n");
		return 77;
	}
	return rc;
}

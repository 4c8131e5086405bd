/*
 * test_cache.c — `cache ttl=... [key=...]` with a real gwd in front of
 * real origins on 127.0.0.1: MISS then HIT with the same body, Age, HEAD
 * from the GET entry; what is not stored (no-store, private, no-cache,
 * Set-Cookie, Vary: *, statuses, stale, Authorization); expiry by max-age,
 * s-maxage, Expires, Age and the directive's ttl; Vary variants; request
 * coalescing (10 concurrent misses -> 1 upstream request, over 2 workers;
 * an unstorable fill does not serialise its waiters); entries surviving a
 * table reload; LRU eviction under a small cap (cache.max_size in
 * gateway.yaml, or GW_CACHE_MAX_SIZE, which overrides it) and the
 * per-entry limit; custom keys; conditional requests.
 */
#include <config.h>

#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static int g_port;
static const char *g_yaml;     /* more gw.yaml lines, or NULL */

/* rules.gwr <- rules, compiled; gw.yaml (+ g_yaml); gwd started with
 * `threads` workers and extra environment (NULL-terminated, may be NULL) */
static gwt_proc *start_env(int threads, const char *const env[], const char *rules)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n"
	           "threads: %d\n%s", g_port, threads, g_yaml ? g_yaml : "");
	if (!env)
		return gwt_gwd("gw.yaml", g_port);
	const char *argv[] = { gwt_bin("gwd"), "-c", gwt_path("gw.yaml"), NULL };
	gwt_proc *p = gwt_spawn("gwd", argv, env);
	ck_assert_msg(gwt_wait_port("127.0.0.1", g_port, 10000) == 0, "gwd did not listen: %s",
	              gwt_stderr(p));
	return p;
}

static gwt_proc *start(const char *rules)
{
	return start_env(1, NULL, rules);
}

/* one upstream `a` on origin o; route c caches everything with ttl */
static const char *cached_rules(int port, const char *ttl, const char *extra)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                "route plain { match path ^= \"/plain/\"; rewrite path strip_prefix \"/plain\"; proxy a; }\n"
	                "%s"
	                "route c { match any; cache ttl=%s; proxy a; }\n",
	                port, extra ? extra : "", ttl);
}

static gwt_resp *get_h(const char *path, const char *const *h)
{
	gwt_req q = { .url = gwt_url(g_port, path), .headers = h };
	return gwt_http(&q);
}

static gwt_resp *get(const char *path)
{
	return get_h(path, NULL);
}

/* GET path: status and X-Cache as expected; returns the response */
static gwt_resp *expect(const char *path, const char *const *h, long status, const char *xcache)
{
	gwt_resp *r = get_h(path, h);
	ck_assert_msg(r->curl_code == 0, "%s: %s", path, r->error);
	ck_assert_msg(r->status == status, "%s: status %ld, want %ld", path, r->status, status);
	const char *x = gwt_hdr(r, "X-Cache");
	ck_assert_msg(x && !strcmp(x, xcache), "%s: X-Cache %s, want %s", path, x ? x : "(none)",
	              xcache);
	ck_assert_uint_eq(gwt_hdr_count(r, "X-Cache"), 1);
	return r;
}

/* the HTTP-date of now + secs */
static const char *http_date(long secs)
{
	time_t t = time(NULL) + secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[64];
	strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return gwt_strf("%s", buf);
}

/* "a b" -> "a%20b" (for /headers?h=...) */
static const char *qesc(const char *s)
{
	char *o = malloc(strlen(s) * 3 + 1), *p = o;
	for (; *s; s++)
		if (*s == ' ' || *s == ',' || *s == '=' || *s == '&' || *s == '"' || *s == ':')
			p += sprintf(p, "%%%02X", (unsigned char)*s);
		else
			*p++ = *s;
	*p = '\0';
	const char *r = gwt_strf("%s", o);
	free(o);
	return r;
}

/* /headers with one response header NAME: VALUE, plus a tag to make the
 * key unique */
static const char *hdr_path(const char *name, const char *value, const char *tag)
{
	return gwt_strf("/headers?h=%s:%s&t=%s", name, qesc(value), tag);
}

/* ------------------------------------------------------------ basics */

START_TEST(miss_then_hit)
{
	origin *o = gwt_origin("a");
	start(cached_rules(origin_port(o), "60s", NULL));
	char want[65];
	gwt_pattern_sha256(1000, want);
	gwt_resp *r = expect("/bytes/1000", NULL, 200, "MISS");
	ck_assert_str_eq(r->sha256, want);
	ck_assert_ptr_null(gwt_hdr(r, "Age"));
	const char *id1 = gwt_hdr(r, "X-Request-Id");
	r = expect("/bytes/1000", NULL, 200, "HIT");
	ck_assert_uint_eq(r->body_len, 1000);
	ck_assert_str_eq(r->sha256, want);
	ck_assert_str_eq(gwt_hdr(r, "Age"), "0");
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "1000");
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/octet-stream");
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "a");       /* stored with it */
	ck_assert_uint_eq(gwt_hdr_count(r, "Date"), 1);
	ck_assert_str_ne(gwt_hdr(r, "X-Request-Id"), id1);        /* the hit's own id */
	ck_assert_uint_eq(origin_count(o), 1);
	/* HEAD from the GET entry: headers, Content-Length, no body */
	gwt_req h = { .method = "HEAD", .url = gwt_url(g_port, "/bytes/1000") };
	r = gwt_http(&h);
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "HIT");
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "1000");
	ck_assert_uint_eq(r->body_len, 0);
	/* the client's Cache-Control / Pragma do not bypass the cache */
	const char *nc[] = { "Cache-Control: no-cache", "Pragma: no-cache", NULL };
	r = expect("/bytes/1000", nc, 200, "HIT");
	ck_assert_str_eq(r->sha256, want);
	ck_assert_uint_eq(origin_count(o), 1);
	/* another query is another key; a route without cache has no X-Cache */
	expect("/bytes/1000?x=1", NULL, 200, "MISS");
	ck_assert_uint_eq(origin_count(o), 2);
	r = get("/plain/bytes/1000");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_null(gwt_hdr(r, "X-Cache"));
	/* Age grows; an upstream Age is added to it */
	gwt_sleep_ms(1100);
	r = expect("/bytes/1000", NULL, 200, "HIT");
	const char *age = gwt_hdr(r, "Age");
	ck_assert_msg(!strcmp(age, "1") || !strcmp(age, "2"), "Age %s after 1.1 s", age);
	const char *aged = gwt_strf("%s&h=Cache-Control:max-age%%3D1000", hdr_path("Age", "100", "age"));
	expect(aged, NULL, 200, "MISS");
	r = expect(aged, NULL, 200, "HIT");
	ck_assert_str_eq(gwt_hdr(r, "Age"), "100");
	ck_assert_uint_eq(gwt_hdr_count(r, "Age"), 1);
}
END_TEST

START_TEST(methods_and_head_miss)
{
	origin *o = gwt_origin("a");
	start(cached_rules(origin_port(o), "60s", NULL));
	/* POST, PUT, DELETE go upstream every time */
	for (int i = 0; i < 2; i++) {
		gwt_req q = { .url = gwt_url(g_port, "/echo"), .body = "x", .body_len = 1 };
		gwt_resp *r = gwt_http(&q);
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "MISS");
		gwt_req d = { .method = "DELETE", .url = gwt_url(g_port, "/echo") };
		r = gwt_http(&d);
		ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "MISS");
	}
	ck_assert_uint_eq(origin_count(o), 4);
	/* a HEAD miss goes upstream as HEAD and stores nothing; the GET then
	 * fills, and HEAD hits */
	gwt_req h = { .method = "HEAD", .url = gwt_url(g_port, "/bytes/77") };
	gwt_resp *r = gwt_http(&h);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "MISS");
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "77");
	expect("/bytes/77", NULL, 200, "MISS");
	r = gwt_http(&h);
	ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "HIT");
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "77");
	ck_assert_uint_eq(r->body_len, 0);
	ck_assert_uint_eq(origin_count(o), 6);
}
END_TEST

START_TEST(not_stored)
{
	origin *o = gwt_origin("a");
	start(cached_rules(origin_port(o), "60s", NULL));
	const char *never[] = {
		hdr_path("Cache-Control", "no-store", "1"),
		hdr_path("Cache-Control", "private, max-age=60", "2"),
		hdr_path("Cache-Control", "no-cache", "3"),
		hdr_path("Cache-Control", "max-age=0", "4"),
		hdr_path("Set-Cookie", "s=1", "5"),
		hdr_path("Vary", "*", "6"),
		hdr_path("Expires", "Thu, 01 Jan 1970 00:00:00 GMT", "7"),
		hdr_path("Expires", "0", "8"),
		hdr_path("Age", "30", "9&h=Cache-Control:max-age%3D10"),   /* stale on arrival */
		"/status/500", "/status/503", "/status/302", "/status/201", "/status/403",
	};
	size_t n = sizeof never / sizeof never[0];
	for (size_t i = 0; i < n; i++) {
		uint64_t before = origin_count(o);
		for (int k = 0; k < 2; k++) {
			gwt_resp *r = get(never[i]);
			ck_assert_int_eq(r->curl_code, 0);
			ck_assert_msg(!strcmp(gwt_hdr(r, "X-Cache"), "MISS"), "%s: %s", never[i],
			              gwt_hdr(r, "X-Cache"));
		}
		ck_assert_msg(origin_count(o) == before + 2, "%s reached the origin %llu times",
		              never[i], (unsigned long long)(origin_count(o) - before));
	}
	/* stored: 404 and 410 like 200 (203/301 by the same rule, unit-tested) */
	const char *ok[] = { "/status/404", "/status/410", hdr_path("Cache-Control", "public", "p") };
	for (size_t i = 0; i < 3; i++) {
		uint64_t before = origin_count(o);
		gwt_resp *a = get(ok[i]);
		gwt_resp *b = get(ok[i]);
		ck_assert_str_eq(gwt_hdr(a, "X-Cache"), "MISS");
		ck_assert_str_eq(gwt_hdr(b, "X-Cache"), "HIT");
		ck_assert_int_eq(b->status, a->status);
		ck_assert_str_eq(b->body, a->body);
		ck_assert_uint_eq(origin_count(o), before + 1);
	}
	/* a body over the per-entry limit (1 MiB by default) streams through */
	char want[65];
	gwt_pattern_sha256(2000000, want);
	for (int k = 0; k < 2; k++) {
		gwt_req q = { .url = gwt_url(g_port, "/bytes/2000000"), .hash_only = 1 };
		gwt_resp *r = gwt_http(&q);
		ck_assert_int_eq(r->curl_code, 0);
		ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "MISS");
		ck_assert_str_eq(r->sha256, want);
	}
	/* a chunked body under the limit is stored */
	expect("/chunked/5000", NULL, 200, "MISS");
	gwt_resp *r = expect("/chunked/5000", NULL, 200, "HIT");
	gwt_pattern_sha256(5000, want);
	ck_assert_str_eq(r->sha256, want);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "5000");
}
END_TEST

START_TEST(authorization)
{
	origin *o = gwt_origin("a");
	start(cached_rules(origin_port(o), "60s", NULL));
	const char *auth[] = { "Authorization: Bearer x", NULL };
	/* an authenticated request's response is not stored... */
	expect("/name?a", auth, 200, "MISS");
	expect("/name?a", auth, 200, "MISS");
	/* ...and that does not stop others from caching the key */
	expect("/name?a", NULL, 200, "MISS");
	expect("/name?a", NULL, 200, "HIT");
	expect("/name?a", auth, 200, "HIT");      /* a stored response may serve it */
	ck_assert_uint_eq(origin_count(o), 3);
	/* unless the upstream says public (or s-maxage) */
	const char *pub = hdr_path("Cache-Control", "public, max-age=60", "auth");
	expect(pub, auth, 200, "MISS");
	expect(pub, auth, 200, "HIT");
}
END_TEST

START_TEST(conditional_requests)
{
	origin *o = gwt_origin("a");
	start(cached_rules(origin_port(o), "60s", NULL));
	/* the fill asks for the whole response, whatever the client sent */
	const char *cond[] = { "If-None-Match: \"abc\"", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
	                       "Range: bytes=0-1", NULL };
	gwt_resp *r = expect("/echo/cond", cond, 200, "MISS");
	ck_assert_ptr_null(gwt_echo_hdr(r, "If-None-Match"));
	ck_assert_ptr_null(gwt_echo_hdr(r, "If-Modified-Since"));
	ck_assert_ptr_null(gwt_echo_hdr(r, "Range"));
	gwt_resp *h = expect("/echo/cond", cond, 200, "HIT");
	ck_assert_str_eq(h->body, r->body);
	ck_assert_uint_eq(origin_count(o), 1);
	/* a route without cache forwards them */
	r = get_h("/plain/echo", cond);
	ck_assert_str_eq(gwt_echo_hdr(r, "If-None-Match"), "\"abc\"");
}
END_TEST

/* ------------------------------------------------------------ expiry */

START_TEST(expiry)
{
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route short { match path ^= \"/short/\"; rewrite path strip_prefix \"/short\";"
	               " cache ttl=600ms; proxy a; }\n"
	               "route c { match any; cache ttl=60s; proxy a; }\n", origin_port(o)));
	const char *paths[] = {
		hdr_path("Cache-Control", "max-age=1", "ma"),
		hdr_path("Cache-Control", "max-age=60, s-maxage=1", "sma"),
		hdr_path("Expires", http_date(2), "exp"),
		gwt_strf("%s&h=Cache-Control:max-age%%3D3", hdr_path("Age", "2", "age")),
		"/short/name",
	};
	size_t n = sizeof paths / sizeof paths[0];
	for (size_t i = 0; i < n; i++) {
		expect(paths[i], NULL, 200, "MISS");
		expect(paths[i], NULL, 200, "HIT");
	}
	/* Expires is 1.0-2.0 s away (whole seconds); the rest 0.6-1 s */
	gwt_sleep_ms(2200);
	for (size_t i = 0; i < n; i++)
		expect(paths[i], NULL, 200, "MISS");
	ck_assert_uint_eq(origin_count(o), 2 * n);
	/* the directive's ttl only when the upstream says nothing */
	const char *long_ma = hdr_path("Cache-Control", "max-age=60", "long");
	gwt_req q = { .url = gwt_url(g_port, gwt_strf("/short%s", long_ma)) };
	ck_assert_str_eq(gwt_hdr(gwt_http(&q), "X-Cache"), "MISS");
	gwt_sleep_ms(800);
	ck_assert_str_eq(gwt_hdr(gwt_http(&q), "X-Cache"), "HIT");
}
END_TEST

/* -------------------------------------------------------------- vary */

/* a small origin of the test's own: /v answers "variant <Accept-Encoding>"
 * with Vary: Accept-Encoding; /star with Vary: *; /slow-nostore sleeps
 * 500 ms and says no-store. Thread per connection (sleeping is fine). */
static atomic_int v_count;

static enum MHD_Result v_handler(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **ctx)
{
	(void)cls; (void)method; (void)version; (void)data;
	if (!*ctx) {
		*ctx = (void *)1;
		return MHD_YES;
	}
	if (*size) {
		*size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&v_count, 1);
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	char body[128];
	snprintf(body, sizeof body, "variant %s\n", ae ? ae : "-");
	if (!strcmp(url, "/slow-nostore"))
		usleep(500000);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
	                                                         MHD_RESPMEM_MUST_COPY);
	if (!strcmp(url, "/star"))
		MHD_add_response_header(r, "Vary", "*");
	else if (!strcmp(url, "/slow-nostore"))
		MHD_add_response_header(r, "Cache-Control", "no-store");
	else
		MHD_add_response_header(r, "Vary", "Accept-Encoding");
	MHD_add_response_header(r, "Cache-Control", "max-age=60");
	enum MHD_Result rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}

static struct MHD_Daemon *v_origin(int *port)
{
	*port = gwt_free_port();
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
		(uint16_t)*port, NULL, NULL, v_handler, NULL, MHD_OPTION_END);
	ck_assert_ptr_nonnull(d);
	return d;
}

static void expect_variant(const char *path, const char *ae, const char *xcache)
{
	const char *h[] = { ae ? gwt_strf("Accept-Encoding: %s", ae) : "Accept-Encoding:", NULL };
	gwt_resp *r = expect(path, h, 200, xcache);
	ck_assert_str_eq(r->body, gwt_strf("variant %s\n", ae ? ae : "-"));
	ck_assert_str_eq(gwt_hdr(r, "Vary"), "Accept-Encoding");
}

START_TEST(vary)
{
	int vp;
	struct MHD_Daemon *d = v_origin(&vp);
	start(cached_rules(vp, "60s", NULL));
	expect_variant("/v", "gzip", "MISS");
	expect_variant("/v", "gzip", "HIT");
	expect_variant("/v", "br", "MISS");
	expect_variant("/v", "br", "HIT");
	expect_variant("/v", "gzip", "HIT");
	expect_variant("/v", NULL, "MISS");
	expect_variant("/v", NULL, "HIT");
	expect_variant("/v", "br", "HIT");
	ck_assert_int_eq(atomic_load(&v_count), 3);
	/* Vary: * is never stored */
	const char *h[] = { "Accept-Encoding: gzip", NULL };
	expect("/star", h, 200, "MISS");
	expect("/star", h, 200, "MISS");
	ck_assert_int_eq(atomic_load(&v_count), 5);
	MHD_stop_daemon(d);
}
END_TEST

/* -------------------------------------------------------- coalescing */

/* n raw GETs of path sent at once on n connections (with head, every
 * other one a HEAD, after the first GET had 100 ms to become the fill);
 * the responses */
static const char **concurrent(int n, const char *path, int head)
{
	int fd[32];
	const char **resp = calloc((size_t)n, sizeof *resp);
	for (int i = 0; i < n; i++) {
		fd[i] = gwt_connect("127.0.0.1", g_port, 2000);
		ck_assert_int_ge(fd[i], 0);
	}
	for (int i = 0; i < n; i++) {
		gwt_sendf(fd[i], "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", head && i % 2 ? "HEAD" : "GET", path);
		if (head && i == 0)
			gwt_sleep_ms(100);
	}
	for (int i = 0; i < n; i++) {
		resp[i] = gwt_recv_response(fd[i], head && i % 2, 10000, NULL);
		ck_assert_msg(resp[i] != NULL, "response %d of %d missing", i, n);
	}
	return resp;
}

START_TEST(coalescing)
{
	origin *o = gwt_origin("a");
	/* two workers: connections land on both (SO_REUSEPORT), so waiters
	 * are woken across threads too */
	start_env(2, NULL, cached_rules(origin_port(o), "60s", NULL));
	uint64_t t0 = gwt_now_ms();
	const char **resp = concurrent(10, "/slow/700", 0);
	uint64_t el = gwt_now_ms() - t0;
	int miss = 0, hit = 0;
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(gwt_raw_status(resp[i]), 200);
		ck_assert_str_eq(gwt_raw_body(resp[i]), "slept 700\n");
		const char *x = gwt_raw_hdr(resp[i], "X-Cache");
		miss += !strcmp(x, "MISS");
		hit += !strcmp(x, "HIT");
	}
	ck_assert_uint_eq(origin_count(o), 1);
	ck_assert_int_eq(miss, 1);
	ck_assert_int_eq(hit, 9);
	ck_assert_msg(el < 1400, "10 coalesced requests took %llu ms", (unsigned long long)el);
	free((void *)resp);
	/* GET and HEAD mixed: still one upstream request */
	resp = concurrent(10, "/slow/400", 1);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(gwt_raw_status(resp[i]), 200);
		ck_assert_str_eq(gwt_raw_hdr(resp[i], "Content-Length"), "10");
	}
	free((void *)resp);
	ck_assert_uint_eq(origin_count(o), 2);
}
END_TEST

START_TEST(coalescing_unstorable)
{
	/* the fill's response cannot be stored: the waiters go upstream at
	 * once, together (not one after the other), and later requests pass
	 * straight through */
	int vp;
	struct MHD_Daemon *d = v_origin(&vp);
	start_env(2, NULL, cached_rules(vp, "60s", NULL));
	uint64_t t0 = gwt_now_ms();
	const char **resp = concurrent(8, "/slow-nostore", 0);
	uint64_t el = gwt_now_ms() - t0;
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(gwt_raw_status(resp[i]), 200);
		ck_assert_str_eq(gwt_raw_hdr(resp[i], "X-Cache"), "MISS");
	}
	ck_assert_int_eq(atomic_load(&v_count), 8);
	ck_assert_msg(el < 1600, "8 requests took %llu ms: waiters serialised?", (unsigned long long)el);
	free((void *)resp);
	t0 = gwt_now_ms();
	resp = concurrent(8, "/slow-nostore", 0);
	el = gwt_now_ms() - t0;
	free((void *)resp);
	ck_assert_int_eq(atomic_load(&v_count), 16);
	ck_assert_msg(el < 1000, "8 passed requests took %llu ms", (unsigned long long)el);
	MHD_stop_daemon(d);
}
END_TEST

/* ------------------------------------------------------------ reload */

START_TEST(survives_reload)
{
	origin *o = gwt_origin("a");
	gwt_proc *gwd = start(cached_rules(origin_port(o), "60s", NULL));
	expect("/bytes/500", NULL, 200, "MISS");
	expect("/bytes/500", NULL, 200, "HIT");
	/* a new table (a route added, the cache's ttl changed), by rename */
	const char *rules = cached_rules(origin_port(o), "30s",
	                                 "route new { match path == \"/new\"; respond 200 \"new\"; }\n");
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	uint64_t end = gwt_now_ms() + 5000;
	while (gwt_now_ms() < end && get("/new")->status != 200)
		gwt_sleep_ms(50);
	ck_assert_int_eq(get("/new")->status, 200);
	gwt_resp *r = expect("/bytes/500", NULL, 200, "HIT");
	char want[65];
	gwt_pattern_sha256(500, want);
	ck_assert_str_eq(r->sha256, want);
	/* and by SIGHUP */
	ck_assert_int_eq(gwt_signal(gwd, SIGHUP), 0);
	gwt_sleep_ms(500);
	expect("/bytes/500", NULL, 200, "HIT");
	ck_assert_uint_eq(origin_count(o), 1);
	ck_assert_int_eq(gwt_running(gwd), 1);
}
END_TEST

/* ------------------------------------------------------ size and LRU */

/* the 64 KiB cap set three ways: gateway.yaml's cache.max_size, the
 * GW_CACHE_MAX_SIZE environment variable, and both (the variable wins) */
static const struct { const char *yaml, *env; } lru_caps[] = {
	{ "cache: {max_size: 64k}\n", NULL },
	{ NULL, "GW_CACHE_MAX_SIZE=64k" },
	{ "cache:\n  max_size: 16m\n", "GW_CACHE_MAX_SIZE=64k" },
};

START_TEST(lru_small_cap)
{
	origin *o = gwt_origin("a");
	/* 64 KiB: entries of 7100 bytes (+ ~0.2-0.9 KiB of key, headers and
	 * bookkeeping) -> 8 fit, 9 do not; entries up to 8 KiB */
	const char *env[] = { lru_caps[_i].env, NULL };
	g_yaml = lru_caps[_i].yaml;
	start_env(1, env[0] ? env : NULL, cached_rules(origin_port(o), "60s", NULL));
	g_yaml = NULL;
	for (int k = 0; k < 8; k++)
		expect(gwt_strf("/bytes/7100?k=%d", k), NULL, 200, "MISS");
	for (int k = 0; k < 8; k++)
		expect(gwt_strf("/bytes/7100?k=%d", k), NULL, 200, "HIT");
	/* k=0 is now the least recently used: use it, so k=1 is */
	expect("/bytes/7100?k=0", NULL, 200, "HIT");
	expect("/bytes/7100?k=8", NULL, 200, "MISS");       /* evicts k=1 */
	expect("/bytes/7100?k=0", NULL, 200, "HIT");
	expect("/bytes/7100?k=8", NULL, 200, "HIT");
	for (int k = 2; k < 8; k++)
		expect(gwt_strf("/bytes/7100?k=%d", k), NULL, 200, "HIT");
	ck_assert_uint_eq(origin_count(o), 9);
	expect("/bytes/7100?k=1", NULL, 200, "MISS");
	ck_assert_uint_eq(origin_count(o), 10);
	/* over the per-entry limit (64k / 8): never stored, intact */
	char want[65];
	gwt_pattern_sha256(9000, want);
	for (int i = 0; i < 2; i++)
		ck_assert_str_eq(expect("/bytes/9000", NULL, 200, "MISS")->sha256, want);
	ck_assert_uint_eq(origin_count(o), 12);
}
END_TEST

/* -------------------------------------------------------------- keys */

START_TEST(keys)
{
	origin *o = gwt_origin("a");
	origin *b = gwt_origin("b");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "upstream b { server 127.0.0.1:%d; }\n"
	               "route bypath { match path ^= \"/k/\"; rewrite path strip_prefix \"/k\";"
	               " cache ttl=60s key=\"${path}\"; proxy a; }\n"
	               "route canary { match header(\"X-Canary\") == \"1\"; cache ttl=60s; proxy b; }\n"
	               "route c { match any; cache ttl=60s; proxy a; }\n",
	               origin_port(o), origin_port(b)));
	/* the default key has the host: two hosts, two entries */
	const char *ha[] = { "Host: one.example", NULL }, *hb[] = { "Host: two.example", NULL };
	expect("/name", ha, 200, "MISS");
	expect("/name", hb, 200, "MISS");
	expect("/name", ha, 200, "HIT");
	/* ...and the upstream: the canary route's answer is b's, not a's entry */
	const char *hc[] = { "Host: one.example", "X-Canary: 1", NULL };
	gwt_resp *r = expect("/name", hc, 200, "MISS");
	ck_assert_str_eq(r->body, "b");
	ck_assert_str_eq(expect("/name", hc, 200, "HIT")->body, "b");
	ck_assert_str_eq(expect("/name", ha, 200, "HIT")->body, "a");
	/* key="${path}": hosts and queries share one entry */
	expect("/k/name?q=1", ha, 200, "MISS");
	ck_assert_str_eq(expect("/k/name?q=2", hb, 200, "HIT")->body, "a");
	ck_assert_uint_eq(origin_count(o) + origin_count(b), 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache");
	TCase *t = tcase_create("cache");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, miss_then_hit);
	tcase_add_test(t, methods_and_head_miss);
	tcase_add_test(t, not_stored);
	tcase_add_test(t, authorization);
	tcase_add_test(t, conditional_requests);
	tcase_add_test(t, expiry);
	tcase_add_test(t, vary);
	tcase_add_test(t, coalescing);
	tcase_add_test(t, coalescing_unstorable);
	tcase_add_test(t, survives_reload);
	tcase_add_loop_test(t, lru_small_cap, 0, (int)(sizeof lru_caps / sizeof lru_caps[0]));
	tcase_add_test(t, keys);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

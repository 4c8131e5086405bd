/*
 * test_accesslog.c — the access log of a real gwd: JSON lines with the
 * exact fields and values of known requests (proxied, own answers, no
 * route, odd bytes in the URI), nginx's combined format, `log off` and
 * `log sample`, `tag`, stdout, and log rotation (mv + USR1 reopens).
 */
#include <config.h>

#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static gwt_proc *g_gwd;
static int g_port;

static void start(const char *rules, const char *log_yaml)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n"
	           "admin: {listen: 'off'}\n%s", g_port, log_yaml);
	g_gwd = gwt_gwd("gw.yaml", g_port);
}

static const char *rules_basic(int oport)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                "route api { match path ^= \"/api/\"; rewrite path strip_prefix \"/api\";"
	                " proxy a; }\n"
	                "route hello { match path == \"/hello\"; respond 200 \"hi\\n\"; tag \"greet\";"
	                " tag \"small\"; }\n"
	                "route quiet { match path == \"/quiet\"; respond 200 \"q\"; log off; }\n"
	                "route never { match path == \"/never\"; respond 200 \"n\"; log sample=0; }\n",
	                oport);
}

/* the lines of a file (NULL-terminated; valid until the next call),
 * waiting up to 3 s until it has at least n */
static char **lines(const char *file, size_t n)
{
	uint64_t t0 = gwt_now_ms();
	for (;;) {
		const char *txt = gwt_read(file, NULL);
		size_t k = 0;
		for (const char *p = txt; p && *p; p++)
			k += *p == '\n';
		if ((txt && k >= n) || gwt_now_ms() - t0 > 3000) {
			static char *v[4096];      /* the strings are harness-owned */
			ck_assert_uint_lt(k, sizeof v / sizeof v[0]);
			size_t i = 0;
			for (const char *p = txt; p && *p && i < k;) {
				const char *e = strchr(p, '\n');
				v[i++] = (char *)gwt_strf("%.*s", (int)(e - p), p);
				p = e + 1;
			}
			v[i] = NULL;
			ck_assert_msg(k >= n, "%s has %zu lines, wanted %zu", file, k, n);
			return v;
		}
		gwt_sleep_ms(20);
	}
}

static size_t count(char **v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

static json_t *parse(const char *line)
{
	json_error_t e;
	json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &e);
	ck_assert_msg(j != NULL, "not JSON (%s): %s", e.text, line);
	ck_assert(json_is_object(j));
	return j;
}

static const char *jstr(json_t *j, const char *k)
{
	json_t *v = json_object_get(j, k);
	ck_assert_msg(v != NULL, "no key %s", k);
	return json_is_null(v) ? NULL : json_string_value(v);
}

static long long jint(json_t *j, const char *k)
{
	json_t *v = json_object_get(j, k);
	ck_assert_msg(json_is_integer(v), "%s is not an integer", k);
	return json_integer_value(v);
}

static const char *const keys[] = {
	"time", "client_ip", "method", "uri", "protocol", "status", "bytes_in", "bytes_out",
	"duration", "upstream_duration", "route", "upstream", "upstream_server",
	"upstream_status", "attempts", "request_id", "user_agent", "referer", "consumer", "tags",
	"waf", "ratelimit", "connlimit", "cache",
};

/* every key, none more, and a time of now in UTC */
static void check_shape(json_t *j)
{
	ck_assert_uint_eq(json_object_size(j), sizeof keys / sizeof keys[0]);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		ck_assert_msg(json_object_get(j, keys[i]), "no key %s", keys[i]);
	const char *t = jstr(j, "time");
	regex_t re;
	ck_assert_int_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
	                         REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, t, 0, NULL, 0) == 0, "time %s", t);
	regfree(&re);
	struct tm tm = { 0 };
	ck_assert_ptr_nonnull(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
	long long d = (long long)timegm(&tm) - (long long)time(NULL);
	ck_assert_msg(d > -10 && d <= 1, "time %s is %lld s from now", t, d);
	ck_assert(json_is_real(json_object_get(j, "duration")));
	ck_assert(json_is_array(json_object_get(j, "tags")));
}

START_TEST(json_proxied_request)
{
	/* OpenSSL initialised on this thread, not first on the origin's (its
	 * per-thread state there shows as a leak in sanitizer builds) */
	char h[65];
	gwt_sha256_hex("", 0, h);
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), "access_log: {path: access.log, format: json}\n");
	const char *req = "GET /api/echo?x=1&y=%20 HTTP/1.1\r\nHost: example.test\r\n"
	                  "User-Agent: agent/1.0 \"quoted\"\r\nReferer: http://ref.test/p\r\n"
	                  "X-Request-Id: test-req-0001\r\n\r\n";
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	ck_assert_int_eq(gwt_send(fd, req, strlen(req)), 0);
	const char *resp = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(resp);
	ck_assert_int_eq(gwt_raw_status(resp), 200);
	size_t body_len = strlen(gwt_raw_body(resp));
	close(fd);
	char **v = lines("access.log", 1);
	ck_assert_uint_eq(count(v), 1);
	json_t *j = parse(v[0]);
	check_shape(j);
	ck_assert_str_eq(jstr(j, "client_ip"), "127.0.0.1");
	ck_assert_str_eq(jstr(j, "method"), "GET");
	ck_assert_str_eq(jstr(j, "uri"), "/api/echo?x=1&y=%20");
	ck_assert_str_eq(jstr(j, "protocol"), "HTTP/1.1");
	ck_assert_int_eq(jint(j, "status"), 200);
	ck_assert_int_eq(jint(j, "bytes_in"), (long long)strlen(req));
	ck_assert_int_eq(jint(j, "bytes_out"), (long long)body_len);
	ck_assert_str_eq(jstr(j, "route"), "api");
	ck_assert_str_eq(jstr(j, "upstream"), "a");
	ck_assert_str_eq(jstr(j, "upstream_server"), gwt_strf("127.0.0.1:%d", origin_port(o)));
	ck_assert_int_eq(jint(j, "upstream_status"), 200);
	ck_assert_int_eq(jint(j, "attempts"), 1);
	ck_assert_str_eq(jstr(j, "request_id"), "test-req-0001");
	ck_assert_str_eq(jstr(j, "user_agent"), "agent/1.0 \"quoted\"");
	ck_assert_str_eq(jstr(j, "referer"), "http://ref.test/p");
	ck_assert_ptr_null(jstr(j, "consumer"));
	ck_assert_uint_eq(json_array_size(json_object_get(j, "tags")), 0);
	ck_assert(json_is_null(json_object_get(j, "waf")));
	ck_assert_ptr_null(jstr(j, "ratelimit"));
	ck_assert_ptr_null(jstr(j, "cache"));
	double du = json_real_value(json_object_get(j, "duration"));
	json_t *ud = json_object_get(j, "upstream_duration");
	ck_assert(json_is_real(ud));
	ck_assert(du >= 0 && du < 2);
	ck_assert(json_real_value(ud) > 0 && json_real_value(ud) < 2);
	json_decref(j);

	/* an upstream error status and a slow one: duration covers it */
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/api/status/502"))->status, 502);
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/api/slow/300"))->status, 200);
	v = lines("access.log", 3);
	j = parse(v[1]);
	ck_assert_int_eq(jint(j, "status"), 502);
	ck_assert_int_eq(jint(j, "upstream_status"), 502);
	ck_assert_int_eq(jint(j, "bytes_out"), (long long)strlen("status 502\n"));
	json_decref(j);
	j = parse(v[2]);
	du = json_real_value(json_object_get(j, "duration"));
	ck_assert_msg(du >= 0.29 && du < 2, "duration %g", du);
	ck_assert(json_real_value(json_object_get(j, "upstream_duration")) >= 0.29);
	json_decref(j);
}
END_TEST

START_TEST(json_own_answers)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), "access_log: {path: access.log}\n");  /* json default */
	gwt_resp *r1 = gwt_get(gwt_url(g_port, "/hello"));
	gwt_resp *r2 = gwt_get(gwt_url(g_port, "/no/such"));
	gwt_req h = { .method = "HEAD", .url = gwt_url(g_port, "/hello") };
	gwt_resp *r3 = gwt_http(&h);
	ck_assert_int_eq(r3->status, 200);
	char **v = lines("access.log", 3);
	ck_assert_uint_eq(count(v), 3);
	json_t *j = parse(v[0]);
	check_shape(j);
	ck_assert_str_eq(jstr(j, "route"), "hello");
	ck_assert_ptr_null(jstr(j, "upstream"));
	ck_assert_ptr_null(jstr(j, "upstream_server"));
	ck_assert(json_is_null(json_object_get(j, "upstream_duration")));
	ck_assert(json_is_null(json_object_get(j, "upstream_status")));
	ck_assert_int_eq(jint(j, "attempts"), 0);
	ck_assert_int_eq(jint(j, "bytes_out"), 3);
	ck_assert_str_eq(jstr(j, "request_id"), gwt_hdr(r1, "X-Request-Id"));
	json_t *tags = json_object_get(j, "tags");
	ck_assert_uint_eq(json_array_size(tags), 2);
	ck_assert_str_eq(json_string_value(json_array_get(tags, 0)), "greet");
	ck_assert_str_eq(json_string_value(json_array_get(tags, 1)), "small");
	ck_assert_ptr_null(jstr(j, "user_agent"));   /* libcurl sends none by default */
	json_decref(j);
	j = parse(v[1]);
	check_shape(j);
	ck_assert_int_eq(jint(j, "status"), 404);
	ck_assert_ptr_null(jstr(j, "route"));
	ck_assert_int_eq(jint(j, "bytes_out"), (long long)strlen(r2->body));
	ck_assert_str_eq(jstr(j, "request_id"), gwt_hdr(r2, "X-Request-Id"));
	json_decref(j);
	j = parse(v[2]);
	ck_assert_str_eq(jstr(j, "method"), "HEAD");
	ck_assert_int_eq(jint(j, "bytes_out"), 0);
	json_decref(j);
}
END_TEST

START_TEST(json_waf_verdict)
{
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route g { match any; waf rule \"no-widgets\" in=args regex \"widget-[0-9]+\";"
	               " proxy a; }\n", origin_port(o)), "access_log: {path: access.log}\n");
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/echo?q=widget-7"))->status, 403);
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/echo?q=fine"))->status, 200);
	char **v = lines("access.log", 2);
	json_t *j = parse(v[0]);
	check_shape(j);
	ck_assert_int_eq(jint(j, "status"), 403);
	ck_assert_ptr_null(jstr(j, "upstream"));
	json_t *w = json_object_get(j, "waf");
	ck_assert(json_is_object(w));
	ck_assert_uint_eq(json_object_size(w), 3);
	ck_assert_str_eq(json_string_value(json_object_get(w, "action")), "block");
	ck_assert_str_eq(json_string_value(json_object_get(w, "rule")), "no-widgets");
	ck_assert_str_eq(json_string_value(json_object_get(w, "class")), "rule");
	json_decref(j);
	j = parse(v[1]);
	ck_assert(json_is_null(json_object_get(j, "waf")));
	ck_assert_str_eq(jstr(j, "upstream"), "a");
	json_decref(j);
}
END_TEST

/* the consumer an auth directive established: in JSON and as combined's
 * user field */
START_TEST(consumer_from_auth)
{
	origin *o = gwt_origin("a");
	gwt_writef("keys.txt", "alice:k-alice-0001\n");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route k { match any; auth key keys=file(\"keys.txt\"); proxy a; }\n",
	               origin_port(o)), "access_log: {path: access.log, format: combined}\n");
	const char *hd[] = { "X-API-Key: k-alice-0001", NULL };
	gwt_req q = { .url = gwt_url(g_port, "/echo"), .headers = hd };
	ck_assert_int_eq(gwt_http(&q)->status, 200);
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/echo"))->status, 401);
	char **v = lines("access.log", 2);
	ck_assert_msg(!strncmp(v[0], "127.0.0.1 - alice [", 19), "%s", v[0]);
	ck_assert_msg(!strncmp(v[1], "127.0.0.1 - - [", 15), "%s", v[1]);
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route k { match any; auth key keys=file(\"keys.txt\"); proxy a; }\n",
	               origin_port(o)), "access_log: {path: access.json}\n");
	q.url = gwt_url(g_port, "/echo");
	ck_assert_int_eq(gwt_http(&q)->status, 200);
	v = lines("access.json", 1);
	json_t *j = parse(v[0]);
	ck_assert_str_eq(jstr(j, "consumer"), "alice");
	json_decref(j);
}
END_TEST

/* bytes a client may put in a request target: the line stays valid JSON */
START_TEST(json_escapes_odd_bytes)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), "access_log: {path: access.log, format: json}\n");
	/* (a control byte in the target or a header value is refused with
	 * 400 before it gets here: test_conformance malformed_head_bytes_400;
	 * the formatter's \u00XX for them is in tests/unit/test_accesslog) */
	const char *req = "GET /x\"y\\z\xff\xc3\xa9?q=\x7e HTTP/1.1\r\nHost: x\r\n"
	                  "User-Agent: a\tb\r\n\r\n";
	const char *resp = gwt_raw(g_port, req, 2000);
	ck_assert_ptr_nonnull(resp);
	char **v = lines("access.log", 1);
	json_t *j = parse(v[0]);
	check_shape(j);
	/* '"' and '\\' escaped, 0xff (not UTF-8) as U+00FF, é kept */
	const char *uri = jstr(j, "uri");
	if (!strcmp(uri, "/x\"y\\z\xc3\xbf\xc3\xa9?q=~")) {
		/* as sent (MHD passed the bytes through) */
	} else {
		ck_abort_msg("uri %s", uri);
	}
	ck_assert_ptr_nonnull(strstr(v[0], "\\u00ff"));
	ck_assert_str_eq(jstr(j, "user_agent"), "a\tb");
	json_decref(j);
}
END_TEST

START_TEST(combined_format)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), "access_log: {path: access.log, format: combined}\n");
	const char *hd[] = { "User-Agent: Mozilla/5.0 (X11) \"x\"", "Referer: http://r.test/a", NULL };
	gwt_req q = { .url = gwt_url(g_port, "/api/bytes/123?z=1"), .headers = hd };
	ck_assert_int_eq(gwt_http(&q)->status, 200);
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/nope"))->status, 404);
	char **v = lines("access.log", 2);
	ck_assert_uint_eq(count(v), 2);
	/* nginx's combined, as log parsers match it */
	regex_t re;
	ck_assert_int_eq(regcomp(&re, "^([^ ]+) - ([^ ]+) \\[([^]]+)\\] \"([^\"]*)\" ([0-9]{3}) "
	                              "([0-9]+|-) \"([^\"]*)\" \"([^\"]*)\"$", REG_EXTENDED), 0);
	regmatch_t m[9];
	ck_assert_msg(regexec(&re, v[0], 9, m, 0) == 0, "not combined: %s", v[0]);
#define FIELD(i) gwt_strf("%.*s", (int)(m[i].rm_eo - m[i].rm_so), v[0] + m[i].rm_so)
	ck_assert_str_eq(FIELD(1), "127.0.0.1");
	ck_assert_str_eq(FIELD(2), "-");
	ck_assert_str_eq(FIELD(4), "GET /api/bytes/123?z=1 HTTP/1.1");
	ck_assert_str_eq(FIELD(5), "200");
	ck_assert_str_eq(FIELD(6), "123");
	ck_assert_str_eq(FIELD(7), "http://r.test/a");
	ck_assert_str_eq(FIELD(8), "Mozilla/5.0 (X11) \\x22x\\x22");
	/* [10/Oct/2000:13:55:36 +0000], now */
	struct tm tm = { 0 };
	const char *ts = FIELD(3);
	ck_assert_msg(strptime(ts, "%d/%b/%Y:%H:%M:%S +0000", &tm) != NULL, "time %s", ts);
	long long d = (long long)timegm(&tm) - (long long)time(NULL);
	ck_assert_msg(d > -10 && d <= 1, "time %s", ts);
	ck_assert_msg(regexec(&re, v[1], 9, m, 0) == 0, "not combined: %s", v[1]);
	ck_assert_str_eq(gwt_strf("%.*s", (int)(m[5].rm_eo - m[5].rm_so), v[1] + m[5].rm_so), "404");
	ck_assert_str_eq(gwt_strf("%.*s", (int)(m[7].rm_eo - m[7].rm_so), v[1] + m[7].rm_so), "-");
#undef FIELD
	regfree(&re);
}
END_TEST

START_TEST(log_off_and_sample_zero)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), "access_log: {path: access.log, format: json}\n");
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(gwt_get(gwt_url(g_port, "/quiet"))->status, 200);
		ck_assert_int_eq(gwt_get(gwt_url(g_port, "/never"))->status, 200);
	}
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/hello"))->status, 200);
	/* one worker, one ring: lines keep their order, so once the /hello
	 * line is there, any line of the others would be too */
	char **v = lines("access.log", 1);
	gwt_sleep_ms(300);
	v = lines("access.log", 1);
	ck_assert_uint_eq(count(v), 1);
	json_t *j = parse(v[0]);
	ck_assert_str_eq(jstr(j, "route"), "hello");
	json_decref(j);
}
END_TEST

START_TEST(usr1_reopens_after_mv)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), "access_log: {path: access.log, format: json}\n"
	      "error_log: {path: error.log}\n");
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/hello"))->status, 200);
	lines("access.log", 1);
	ck_assert_int_eq(rename(gwt_path("access.log"), gwt_path("access.log.1")), 0);
	ck_assert_int_eq(rename(gwt_path("error.log"), gwt_path("error.log.1")), 0);
	/* still the old file (renamed) until the signal */
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/hello?2"))->status, 200);
	lines("access.log.1", 2);
	gwt_signal(g_gwd, SIGUSR1);
	/* the error log reopened too: its line about it is in the new file */
	uint64_t t0 = gwt_now_ms();
	const char *el;
	while (!(el = gwt_read("error.log", NULL)) || !strstr(el, "SIGUSR1: logs reopened")) {
		ck_assert_msg(gwt_now_ms() - t0 < 3000, "no new error.log");
		gwt_sleep_ms(20);
	}
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/hello?3"))->status, 200);
	char **v = lines("access.log", 1);
	ck_assert_uint_eq(count(v), 1);
	json_t *j = parse(v[0]);
	ck_assert_str_eq(jstr(j, "uri"), "/hello?3");
	json_decref(j);
	ck_assert_uint_eq(count(lines("access.log.1", 2)), 2);
	/* the stop writes out what is queued */
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/hello?4"))->status, 200);
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
	ck_assert_uint_eq(count(lines("access.log", 2)), 2);
}
END_TEST

START_TEST(stdout_and_off)
{
	origin *o = gwt_origin("a");
	start(rules_basic(origin_port(o)), "access_log: {path: '-', format: combined}\n");
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/hello"))->status, 200);
	ck_assert_int_eq(gwt_wait_output(g_gwd, "\"GET /hello HTTP/1.1\" 200 3 ", 3000), 0);
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
	/* off: no file, nothing on stdout */
	start(rules_basic(origin_port(o)), "access_log: {path: 'off'}\n");
	ck_assert_int_eq(gwt_get(gwt_url(g_port, "/hello"))->status, 200);
	gwt_sleep_ms(300);
	ck_assert_ptr_null(strstr(gwt_stdout(g_gwd), "/hello"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("accesslog");
	TCase *t = tcase_create("accesslog");
	tcase_set_timeout(t, 30);
	tcase_add_test(t, json_proxied_request);
	tcase_add_test(t, json_own_answers);
	tcase_add_test(t, json_waf_verdict);
	tcase_add_test(t, consumer_from_auth);
	tcase_add_test(t, json_escapes_odd_bytes);
	tcase_add_test(t, combined_format);
	tcase_add_test(t, log_off_and_sample_zero);
	tcase_add_test(t, usr1_reopens_after_mv);
	tcase_add_test(t, stdout_and_off);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

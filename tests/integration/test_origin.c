/*
 * test_origin.c — the origin that the integration tests and the demo rely
 * on, endpoint by endpoint, and the harness itself (processes, cleanup,
 * HTTP client, raw sockets). If these fail, no proxy test can be trusted.
 */
#include <config.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static origin *o;
static const char *base;     /* http://127.0.0.1:PORT */

static void setup(void)
{
	o = gwt_origin("alpha");
	base = gwt_strf("http://127.0.0.1:%d", origin_port(o));
}

static gwt_resp *get(const char *path)
{
	return gwt_get(gwt_strf("%s%s", base, path));
}

/* ---------------------------------------------------------- endpoints */

START_TEST(home_page)
{
	gwt_resp *r = get("/");
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "text/plain");
	ck_assert_str_eq(gwt_hdr(r, "x-origin-name"), "alpha");
	ck_assert_ptr_nonnull(strstr(r->body, "gw demo origin \"alpha\". Endpoints:\n"));
	ck_assert_ptr_nonnull(strstr(r->body, "  /echo[/...]"));
	/* the quick start's /api prefix reaches the same endpoints */
	r = get("/api");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "gw demo origin"));
	r = get("/api/name");
	ck_assert_str_eq(r->body, "alpha");
	r = get("/apiname");
	ck_assert_int_eq(r->status, 404);
}
END_TEST

START_TEST(echo_get)
{
	const char *hdrs[] = { "X-One: 1", "x-one: 2", "X-Two:  two", NULL };
	gwt_req q = { .url = gwt_strf("%s/echo/a%%20b/../c?x=1&y=%%zz&&z", base), .headers = hdrs };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	json_t *j = gwt_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "alpha");
	ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
	ck_assert_str_eq(json_string_value(json_object_get(j, "uri")), "/echo/a%20b/../c?x=1&y=%zz&&z");
	ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/echo/a%20b/../c");
	ck_assert_str_eq(json_string_value(json_object_get(j, "query")), "x=1&y=%zz&&z");
	ck_assert_str_eq(json_string_value(json_object_get(j, "version")), "HTTP/1.1");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "body_len")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(j, "body_sha256")),
	                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	json_t *h = json_object_get(j, "headers");
	ck_assert_str_eq(json_string_value(json_object_get(h, "X-One")), "1");
	ck_assert_str_eq(json_string_value(json_object_get(h, "x-one")), "2");
	ck_assert_str_eq(json_string_value(json_object_get(h, "X-Two")), "two");
	ck_assert_str_eq(json_string_value(json_object_get(h, "Host")),
	                 gwt_strf("127.0.0.1:%d", origin_port(o)));
	/* order, case and repeats kept */
	json_t *l = json_object_get(j, "header_list");
	size_t n = json_array_size(l);
	ck_assert_uint_eq(n, 5);   /* Host, Accept, X-One, x-one, X-Two */
	ck_assert_str_eq(json_string_value(json_array_get(json_array_get(l, 2), 0)), "X-One");
	ck_assert_str_eq(json_string_value(json_array_get(json_array_get(l, 3), 0)), "x-one");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-ONE"), "1, 2");
	ck_assert_ptr_null(gwt_echo_hdr(r, "X-Three"));
	ck_assert_str_eq(gwt_echo_str(r, "path"), "/echo/a%20b/../c");
	ck_assert_str_eq(gwt_echo_str(r, "body_len"), "0");
	/* a query-less request: query is "" */
	r = get("/echo");
	ck_assert_str_eq(gwt_echo_str(r, "query"), "");
	ck_assert_str_eq(gwt_echo_str(r, "uri"), "/echo");
}
END_TEST

START_TEST(echo_bodies)
{
	/* a buffer body */
	static const char hello[] = "hello";
	gwt_req q = { .url = gwt_strf("%s/echo", base), .method = "PUT", .body = hello,
	              .body_len = 5 };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_str(r, "method"), "PUT");
	ck_assert_str_eq(gwt_echo_str(r, "body_len"), "5");
	ck_assert_str_eq(gwt_echo_str(r, "body_sha256"),
	                 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	ck_assert_str_eq(gwt_echo_hdr(r, "Content-Length"), "5");
	ck_assert_ptr_null(gwt_echo_hdr(r, "Expect"));

	/* 1 MB POST, generated */
	char want[65];
	gwt_pattern_sha256(1 << 20, want);
	gwt_req big = { .url = gwt_strf("%s/echo", base), .gen_len = 1 << 20 };
	r = gwt_http(&big);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_str(r, "method"), "POST");
	ck_assert_str_eq(gwt_echo_str(r, "body_len"), "1048576");
	ck_assert_str_eq(gwt_echo_str(r, "body_sha256"), want);

	/* 3 MB chunked upload */
	gwt_pattern_sha256(3000001, want);
	gwt_req ch = { .url = gwt_strf("%s/echo", base), .gen_len = 3000001, .chunked = 1 };
	r = gwt_http(&ch);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_hdr(r, "Transfer-Encoding"), "chunked");
	ck_assert_ptr_null(gwt_echo_hdr(r, "Content-Length"));
	ck_assert_str_eq(gwt_echo_str(r, "body_len"), "3000001");
	ck_assert_str_eq(gwt_echo_str(r, "body_sha256"), want);

	/* an empty POST body */
	gwt_req empty = { .url = gwt_strf("%s/echo", base), .has_body = 1 };
	r = gwt_http(&empty);
	ck_assert_str_eq(gwt_echo_str(r, "method"), "POST");
	ck_assert_str_eq(gwt_echo_hdr(r, "Content-Length"), "0");
	ck_assert_str_eq(gwt_echo_str(r, "body_len"), "0");

	/* bodies are read on every endpoint, not only /echo */
	gwt_req other = { .url = gwt_strf("%s/name", base), .gen_len = 200000 };
	r = gwt_http(&other);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "alpha");
}
END_TEST

START_TEST(bytes_and_chunked)
{
	gwt_resp *r = get("/bytes/10");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "10");
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/octet-stream");
	char want[11];
	origin_pattern_fill(want, 0, 10);
	want[10] = '\0';
	ck_assert_str_eq(r->body, want);
	ck_assert_str_eq(r->body, "AnP2eFtU8j");   /* the pattern is part of the contract */

	r = get("/chunked/10");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_null(gwt_hdr(r, "Content-Length"));
	ck_assert_str_eq(gwt_hdr(r, "Transfer-Encoding"), "chunked");
	ck_assert_str_eq(r->body, want);

	r = get("/bytes/0");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "0");
	ck_assert_uint_eq(r->body_len, 0);

	char sha[65];
	gwt_pattern_sha256(1000000, sha);
	gwt_req q = { .url = gwt_strf("%s/chunked/1000000", base), .hash_only = 1 };
	r = gwt_http(&q);
	ck_assert_ptr_null(r->body);
	ck_assert_uint_eq(r->body_len, 1000000);
	ck_assert_str_eq(r->sha256, sha);

	gwt_req h = { .url = gwt_strf("%s/bytes/12345", base), .method = "HEAD" };
	r = gwt_http(&h);
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "12345");
	ck_assert_uint_eq(r->body_len, 0);

	r = get("/bytes/12x");
	ck_assert_int_eq(r->status, 400);
	ck_assert_str_eq(r->body, "bad number in path\n");
	r = get("/bytes/");
	ck_assert_int_eq(r->status, 400);
}
END_TEST

START_TEST(statuses)
{
	gwt_resp *r = get("/status/418");
	ck_assert_int_eq(r->status, 418);
	ck_assert_str_eq(r->body, "status 418\n");
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "11");
	r = get("/status/503");
	ck_assert_int_eq(r->status, 503);
	ck_assert_str_eq(r->body, "status 503\n");
	r = get("/status/204");
	ck_assert_int_eq(r->status, 204);
	ck_assert_uint_eq(r->body_len, 0);
	ck_assert_ptr_null(gwt_hdr(r, "Content-Length"));
	r = get("/status/304");
	ck_assert_int_eq(r->status, 304);
	ck_assert_uint_eq(r->body_len, 0);
	r = get("/status/199");
	ck_assert_int_eq(r->status, 400);
	ck_assert_str_eq(r->body, "status must be 200..599\n");
	r = get("/status/600");
	ck_assert_int_eq(r->status, 400);
	r = get("/nope");
	ck_assert_int_eq(r->status, 404);
	ck_assert_str_eq(r->body, "no such endpoint: /nope\n");
}
END_TEST

START_TEST(response_headers)
{
	gwt_resp *r = get("/headers?h=X-Foo:bar&h=X-Foo:%20baz&h=Cache-Control%3A%20no-store&x=1");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "ok\n");
	ck_assert_uint_eq(gwt_hdr_count(r, "x-foo"), 2);
	ck_assert_str_eq(gwt_hdr_nth(r, "X-Foo", 0), "bar");
	ck_assert_str_eq(gwt_hdr_nth(r, "X-Foo", 1), "baz");
	ck_assert_ptr_null(gwt_hdr_nth(r, "X-Foo", 2));
	ck_assert_str_eq(gwt_hdr(r, "Cache-Control"), "no-store");
	r = get("/headers?h=novalue");
	ck_assert_int_eq(r->status, 400);
}
END_TEST

START_TEST(name_count_reset_health)
{
	ck_assert_str_eq(get("/name")->body, "alpha");
	get("/echo");
	get("/status/500");
	get("/healthz");              /* not counted, nor are /count and /reset */
	ck_assert_str_eq(get("/count")->body, "3");
	ck_assert_uint_eq(origin_count(o), 3);
	ck_assert_str_eq(get("/reset")->body, "ok\n");
	ck_assert_str_eq(get("/count")->body, "0");
	get("/name");
	origin_reset(o);
	ck_assert_uint_eq(origin_count(o), 0);

	gwt_resp *r = get("/healthz");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "ok\n");
	r = get("/healthz?set=503");
	ck_assert_int_eq(r->status, 200);
	r = get("/healthz");
	ck_assert_int_eq(r->status, 503);
	ck_assert_str_eq(r->body, "unhealthy\n");
	origin_set_health(o, 200);
	ck_assert_int_eq(get("/healthz")->status, 200);
	ck_assert_int_eq(get("/healthz?set=42")->status, 400);
}
END_TEST

START_TEST(close_without_response)
{
	gwt_resp *r = get("/close");
	ck_assert_int_eq(r->curl_code, 52);      /* CURLE_GOT_NOTHING */
	ck_assert_int_eq(r->status, 0);
	const char *raw = gwt_raw(origin_port(o), "GET /close HTTP/1.1\r\nHost: x\r\n\r\n", 2000);
	ck_assert_str_eq(raw, "");
}
END_TEST

static void *slow_request(void *arg)
{
	gwt_req *q = arg;
	return gwt_http(q);
}

START_TEST(slow_does_not_block_others)
{
	gwt_req q = { .url = gwt_strf("%s/slow/800", base) };
	pthread_t t;
	uint64_t t0 = gwt_now_ms();
	ck_assert_int_eq(pthread_create(&t, NULL, slow_request, &q), 0);
	gwt_sleep_ms(100);
	/* the only server thread is not blocked by the sleeping request */
	gwt_resp *fast = get("/name");
	ck_assert_int_eq(fast->status, 200);
	ck_assert_uint_lt(gwt_now_ms() - t0, 500);
	void *res;
	pthread_join(t, &res);
	gwt_resp *slow = res;
	uint64_t took = gwt_now_ms() - t0;
	ck_assert_int_eq(slow->status, 200);
	ck_assert_str_eq(slow->body, "slept 800\n");
	ck_assert_uint_ge(took, 800);
	ck_assert_uint_lt(took, 3000);
	ck_assert_int_eq(get("/slow/600001")->status, 400);
}
END_TEST

START_TEST(delay_body)
{
	gwt_resp *r = get("/delay-body/700");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "13");
	ck_assert_str_eq(r->body, "first\nsecond\n");
	ck_assert(r->time_starttransfer < 0.4);   /* headers came at once */
	ck_assert(r->time_total >= 0.69);          /* the body waited */
	/* a client giving up mid-body gets the head and part of the body */
	gwt_req q = { .url = gwt_strf("%s/delay-body/3000", base), .timeout_ms = 500 };
	r = gwt_http(&q);
	ck_assert_int_eq(r->curl_code, 28);        /* CURLE_OPERATION_TIMEDOUT */
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "first\n");
}
END_TEST

/* origin_stop does not wait for the timers of waiting requests */
START_TEST(stop_with_waiting_requests)
{
	origin *x = gwt_origin("x");
	gwt_forget_origin(x);
	gwt_req slow = { .url = gwt_strf("http://127.0.0.1:%d/slow/5000", origin_port(x)) };
	gwt_req delay = { .url = gwt_strf("http://127.0.0.1:%d/delay-body/5000", origin_port(x)) };
	pthread_t t1, t2;
	ck_assert_int_eq(pthread_create(&t1, NULL, slow_request, &slow), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, slow_request, &delay), 0);
	gwt_sleep_ms(300);
	uint64_t t0 = gwt_now_ms();
	origin_stop(x);
	uint64_t took = gwt_now_ms() - t0;
	void *r1, *r2;
	pthread_join(t1, &r1);
	pthread_join(t2, &r2);
	ck_assert_msg(took < 1000, "origin_stop took %llu ms", (unsigned long long)took);
	ck_assert_uint_lt(gwt_now_ms() - t0, 2000);
	/* the body that was waiting is cut, never completed */
	gwt_resp *d = r2;
	ck_assert_int_ne(d->curl_code, 0);
	ck_assert_str_eq(d->body, "first\n");
	(void)r1;
}
END_TEST

/* --------------------------------------------------- HTTP client, raw */

START_TEST(keep_alive)
{
	gwt_client *c = gwt_client_new();
	gwt_req q = { .url = gwt_strf("%s/echo", base), .client = c };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(r->num_connects, 1);
	r = gwt_http(&q);
	ck_assert_int_eq(r->num_connects, 0);      /* reused */
	q.gen_len = 100000;
	r = gwt_http(&q);
	ck_assert_int_eq(r->num_connects, 0);
	ck_assert_str_eq(gwt_echo_str(r, "body_len"), "100000");
	/* HTTP/1.0 */
	gwt_req old = { .url = gwt_strf("%s/echo", base), .http10 = 1 };
	r = gwt_http(&old);
	ck_assert_str_eq(gwt_echo_str(r, "version"), "HTTP/1.0");
}
END_TEST

START_TEST(raw_socket)
{
	int fd = gwt_connect("127.0.0.1", origin_port(o), 2000);
	ck_assert_int_ge(fd, 0);
	/* two pipelined requests, read one response at a time */
	ck_assert_int_eq(gwt_sendf(fd, "GET /name HTTP/1.1\r\nHost: h\r\n\r\n"
	                               "GET /chunked/5 HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
	size_t len;
	const char *a = gwt_recv_response(fd, 0, 3000, &len);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(gwt_raw_status(a), 200);
	ck_assert_str_eq(gwt_raw_hdr(a, "content-length"), "5");
	ck_assert_str_eq(gwt_raw_hdr(a, "X-Origin-Name"), "alpha");
	ck_assert_ptr_null(gwt_raw_hdr(a, "Transfer-Encoding"));
	ck_assert_str_eq(gwt_raw_body(a), "alpha");
	ck_assert_uint_eq(len, strlen(a));
	const char *b = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(gwt_raw_hdr(b, "Transfer-Encoding"), "chunked");
	ck_assert_str_eq(gwt_raw_body(b), "5\r\nAnP2e\r\n0\r\n\r\n");
	/* HEAD: a head only, the connection stays usable */
	gwt_sendf(fd, "HEAD /bytes/99 HTTP/1.1\r\nHost: h\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: h\r\n\r\n");
	const char *h = gwt_recv_response(fd, 1, 3000, NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(gwt_raw_hdr(h, "Content-Length"), "99");
	ck_assert_str_eq(gwt_raw_body(h), "");
	const char *n = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_int_eq(gwt_raw_status(n), 204);
	/* nothing more */
	ck_assert_ptr_null(gwt_recv_response(fd, 0, 200, NULL));

	/* malformed requests, as libmicrohttpd 0.9.75 treats them: a header
	 * line without a colon gets 400 and a close, an unknown version 505,
	 * a request line without a version a close without any answer */
	int eof = 0;
	int fd2 = gwt_connect("127.0.0.1", origin_port(o), 2000);
	gwt_sendf(fd2, "GET /name HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n");
	const char *bad = gwt_recv_all(fd2, 3000, NULL, &eof);
	ck_assert_int_eq(gwt_raw_status(bad), 400);
	ck_assert_str_eq(gwt_raw_hdr(bad, "Connection"), "close");
	ck_assert_int_eq(eof, 1);
	bad = gwt_raw(origin_port(o), "GET /name HTTP/9.1\r\nHost: x\r\n\r\n", 2000);
	ck_assert_int_eq(gwt_raw_status(bad), 505);
	bad = gwt_raw(origin_port(o), "GARBAGE\r\n\r\n", 2000);
	ck_assert_str_eq(bad, "");
	/* HTTP/1.0 without keep-alive: the server closes after the response */
	const char *one = gwt_raw(origin_port(o), "GET /name HTTP/1.0\r\n\r\n", 2000);
	ck_assert_int_eq(gwt_raw_status(one), 200);
	ck_assert_str_eq(gwt_raw_body(one), "alpha");
	ck_assert_int_eq(gwt_raw_status("HTTP/1.1 2x0 OK"), -1);
	ck_assert_int_eq(gwt_raw_status("nope"), -1);
}
END_TEST

/* ---------------------------------------------- gw-origin as a process */

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	fclose(f);
	return kib;
}

START_TEST(gw_origin_program)
{
	int port;
	gwt_proc *p = gwt_origin_proc("beta", &port);
	ck_assert_int_gt(port, 0);
	ck_assert_str_eq(gwt_stdout(p), gwt_strf("listening 127.0.0.1:%d\n", port));
	gwt_resp *r = gwt_get(gwt_url(port, "/name"));
	ck_assert_str_eq(r->body, "beta");
	/* 100 MB streams through without the origin holding it */
	long before = rss_kib(gwt_pid(p));
	char sha[65];
	gwt_pattern_sha256(100000000, sha);
	gwt_req q = { .url = gwt_url(port, "/bytes/100000000"), .hash_only = 1, .timeout_ms = 60000 };
	r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	ck_assert_uint_eq(r->body_len, 100000000);
	ck_assert_str_eq(r->sha256, sha);
	long after = rss_kib(gwt_pid(p));
	ck_assert_int_gt(before, 0);
	ck_assert_msg(after - before < 8192, "RSS grew by %ld KiB", after - before);
	/* SIGTERM: exit 0 */
	ck_assert_int_eq(gwt_stop(p, SIGTERM, 5000), 0);
	ck_assert_int_eq(gwt_running(p), 0);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", port, 100), -1);
}
END_TEST

START_TEST(gw_origin_usage)
{
	const char *out, *err;
	const char *a1[] = { gwt_bin("gw-origin"), NULL };
	ck_assert_int_eq(gwt_run("o1", a1, NULL, 5000, &out, &err), 2);
	ck_assert_str_eq(err, "usage: gw-origin --listen HOST:PORT [--name NAME] [--threads N]\n"
	                      "  an HTTP origin for gw's tests and demo; endpoints: GET / lists them\n");
	const char *a2[] = { gwt_bin("gw-origin"), "--listen", "nope", NULL };
	ck_assert_int_eq(gwt_run("o2", a2, NULL, 5000, &out, &err), 2);
	ck_assert_str_eq(err, "gw-origin: --listen nope: expected HOST:PORT, :PORT or PORT\n");
	/* a port in use: exit 1 */
	const char *a3[] = { gwt_bin("gw-origin"), "--listen",
	                     gwt_strf("127.0.0.1:%d", origin_port(o)), NULL };
	ck_assert_int_eq(gwt_run("o3", a3, NULL, 5000, &out, &err), 1);
	ck_assert_str_eq(err, gwt_strf("gw-origin: origin: bind 127.0.0.1:%d: Address already in use\n",
	                               origin_port(o)));
	const char *a4[] = { gwt_bin("gw-origin"), "--listen", ":0", "--threads", "0", NULL };
	ck_assert_int_eq(gwt_run("o4", a4, NULL, 5000, &out, &err), 2);
	/* a thread pool works the same */
	const char *a5[] = { gwt_bin("gw-origin"), "--listen", "127.0.0.1:0", "--threads", "3",
	                     "--name", "pool", NULL };
	gwt_proc *p = gwt_spawn("o5", a5, NULL);
	int port = gwt_wait_listening(p, 5000);
	ck_assert_int_gt(port, 0);
	for (int i = 0; i < 6; i++)
		ck_assert_str_eq(gwt_get(gwt_url(port, "/name"))->body, "pool");
	ck_assert_int_eq(gwt_stop(p, SIGINT, 5000), 0);
}
END_TEST

/* ------------------------------------------------- harness processes */

START_TEST(process_helpers)
{
	const char *env[] = { "GWT_HELLO=world", "HOME=/nowhere", NULL };
	const char *argv[] = { "/bin/sh", "-c",
		"echo \"$GWT_HELLO $HOME\"; echo oops >&2; exit 3", NULL };
	const char *out, *err;
	ck_assert_int_eq(gwt_run("sh", argv, env, 5000, &out, &err), 3);
	ck_assert_str_eq(out, "world /nowhere\n");
	ck_assert_str_eq(err, "oops\n");
	ck_assert_str_eq(gwt_read("sh.out", NULL), "world /nowhere\n");

	/* killed by a signal: 128+N */
	const char *k[] = { "/bin/sh", "-c", "kill -USR1 $$", NULL };
	ck_assert_int_eq(gwt_run("k", k, NULL, 5000, NULL, NULL), 128 + SIGUSR1);

	/* a process that ignores TERM is killed after the timeout */
	const char *stubborn[] = { "/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done", NULL };
	gwt_proc *p = gwt_spawn("stubborn", stubborn, NULL);
	ck_assert_int_eq(gwt_wait_output(p, "ready", 5000), 0);
	uint64_t t0 = gwt_now_ms();
	ck_assert_int_eq(gwt_stop(p, SIGTERM, 300), -1);
	ck_assert_uint_lt(gwt_now_ms() - t0, 2000);
	ck_assert_int_eq(gwt_running(p), 0);

	/* a missing program: 127 */
	const char *none[] = { "/nonexistent/prog", NULL };
	ck_assert_int_eq(gwt_run("none", none, NULL, 5000, NULL, NULL), 127);

	/* run with a timeout */
	const char *sleepy[] = { "/bin/sleep", "10", NULL };
	t0 = gwt_now_ms();
	ck_assert_int_eq(gwt_run("sleepy", sleepy, NULL, 200, NULL, NULL), -1);
	ck_assert_uint_lt(gwt_now_ms() - t0, 2000);

	/* files */
	const char *path = gwt_writef("sub/dir/f.txt", "%d-%s", 42, "x");
	ck_assert_str_eq(path, gwt_strf("%s/sub/dir/f.txt", gwt_dir()));
	ck_assert_str_eq(gwt_read("sub/dir/f.txt", NULL), "42-x");
	ck_assert_ptr_null(gwt_read("missing", NULL));
	int fp = gwt_free_port();
	ck_assert_int_ge(fp, 20000);
	ck_assert_int_lt(fp, 32000);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", fp, 50), -1);
}
END_TEST

/* The cleanup promise: a test that fails (exit) or is killed outright
 * (SIGKILL: no atexit) leaves no process behind. The next test checks. */
static const char *pidfile(const char *which)
{
	return gwt_strf("%s/%s.pid", getenv("GWT_BASE"), which);
}

static void spawn_sleeper(const char *which)
{
	const char *argv[] = { "/bin/sh", "-c", "echo up; exec sleep 300", NULL };
	gwt_proc *p = gwt_spawn("sleeper", argv, NULL);
	/* really running (past the harness's own parent-died check) */
	ck_assert_int_eq(gwt_wait_output(p, "up", 5000), 0);
	gwt_write(pidfile(which), gwt_strf("%d", (int)gwt_pid(p)),
	          strlen(gwt_strf("%d", (int)gwt_pid(p))));
}

START_TEST(leaves_by_exit)
{
	spawn_sleeper("exit");
	exit(3);
}
END_TEST

START_TEST(leaves_by_sigkill)
{
	spawn_sleeper("kill");
	raise(SIGKILL);
}
END_TEST

static int alive(pid_t pid)
{
	/* a zombie is not alive: its parent, the test, is gone and init reaps */
	char path[64], state = 0;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int r = fscanf(f, "%*d %*s %c", &state);
	fclose(f);
	return r == 1 && state != 'Z';
}

START_TEST(nothing_left_running)
{
	const char *which[] = { "exit", "kill" };
	for (int i = 0; i < 2; i++) {
		const char *s = gwt_read(pidfile(which[i]), NULL);
		ck_assert_msg(s != NULL, "no pid file from the %s test", which[i]);
		pid_t pid = (pid_t)atoi(s);
		ck_assert_int_gt(pid, 1);
		uint64_t end = gwt_now_ms() + 2000;
		while (alive(pid) && gwt_now_ms() < end)
			gwt_sleep_ms(10);
		ck_assert_msg(!alive(pid), "sleeper %d of the %s test still runs", (int)pid, which[i]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("origin");
	TCase *t = tcase_create("endpoints");
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, home_page);
	tcase_add_test(t, echo_get);
	tcase_add_test(t, echo_bodies);
	tcase_add_test(t, bytes_and_chunked);
	tcase_add_test(t, statuses);
	tcase_add_test(t, response_headers);
	tcase_add_test(t, name_count_reset_health);
	tcase_add_test(t, close_without_response);
	tcase_add_test(t, slow_does_not_block_others);
	tcase_add_test(t, delay_body);
	tcase_add_test(t, stop_with_waiting_requests);
	tcase_add_test(t, keep_alive);
	tcase_add_test(t, raw_socket);
	tcase_add_test(t, gw_origin_program);
	tcase_add_test(t, gw_origin_usage);
	suite_add_tcase(s, t);
	TCase *h = tcase_create("harness");
	tcase_set_timeout(h, 30);
	tcase_add_test(h, process_helpers);
	tcase_add_exit_test(h, leaves_by_exit, 3);
	tcase_add_test_raise_signal(h, leaves_by_sigkill, SIGKILL);
	tcase_add_test(h, nothing_left_running);
	suite_add_tcase(s, h);
	return gwt_main(s, "gw-origin");
}

/*
 * test_http10.c — HTTP/1.0 clients and "Expect: 100-continue" through gwd,
 * black box with raw sockets (the bytes on the wire are the point):
 *
 *   HTTP/1.0: no chunked answer ever (a chunked origin answer arrives
 *   whole, close-delimited or with Content-Length), no keep-alive unless
 *   the client asks for it, requests without Host, bodies, HEAD.
 *   Expect: 100-continue (as nginx): "100 Continue" before a body that
 *   is read (proxied uploads of 1 MiB, Content-Length or chunked, arrive
 *   intact); a refusal decided from the head (401, 413, 404) is the only
 *   answer, without a 100; no 100 for an HTTP/1.0 client.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gwd_common.h"

static origin *g_o;

static int start(const char *yaml)
{
	g_o = gwt_origin("o");
	gwt_writef("keys.txt", "k-1\n");
	return gwdt_start(yaml, gwt_strf(
		"upstream o { server 127.0.0.1:%d; }\n"
		"route auth { match path ^= \"/auth/\"; auth key header=\"X-API-Key\""
		" keys=file(\"keys.txt\"); rewrite path strip_prefix \"/auth\"; proxy o; }\n"
		"route small { match path ^= \"/small/\"; body_limit 1k; rewrite path strip_prefix"
		" \"/small\"; proxy o; }\n"
		"route nothing { match path == \"/nothing\"; respond 404 \"nothing here\\n\"; }\n"
		"route o { match any; proxy o; }\n", origin_port(g_o)));
}

static int conn(void)
{
	int fd = gwt_connect("127.0.0.1", g_port, 3000);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* the head of a raw response (harness-owned copy), NULL if incomplete */
static const char *head_of(const char *resp)
{
	const char *e = strstr(resp, "\r\n\r\n");
	return e ? gwt_strf("%.*s", (int)(e - resp + 2), resp) : NULL;
}

static void assert_pattern_body(const char *body, size_t len, size_t want)
{
	char got[65], exp[65];
	ck_assert_uint_eq(len, want);
	gwt_sha256_hex(body, len, got);
	gwt_pattern_sha256(want, exp);
	ck_assert_str_eq(got, exp);
}

/* ----------------------------------------------------------- HTTP/1.0 */

START_TEST(http10_chunked_origin_whole_body)
{
	start(NULL);
	/* 1 MB the origin sends chunked: the 1.0 client gets it unchunked,
	 * close-delimited, and the connection closes after it */
	int fd = conn();
	gwt_sendf(fd, "GET /chunked/1000000 HTTP/1.0\r\nHost: x\r\n\r\n");
	size_t len;
	int eof;
	const char *r = gwt_recv_all(fd, 5000, &len, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	const char *h = head_of(r);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_null(gwt_raw_hdr(h, "Transfer-Encoding"));
	ck_assert_str_eq(gwt_raw_hdr(h, "Connection"), "close");
	const char *cl = gwt_raw_hdr(h, "Content-Length");
	size_t hl = strlen(h) + 2;
	if (cl)
		ck_assert_str_eq(cl, "1000000");
	assert_pattern_body(r + hl, len - hl, 1000000);
	close(fd);
	/* the same when the client asks for keep-alive: an unknown length
	 * cannot be delimited in 1.0 but by the close */
	fd = conn();
	gwt_sendf(fd, "GET /chunked/1000000 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
	r = gwt_recv_all(fd, 5000, &len, &eof);
	ck_assert_int_eq(eof, 1);
	h = head_of(r);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_null(gwt_raw_hdr(h, "Transfer-Encoding"));
	hl = strlen(h) + 2;
	assert_pattern_body(r + hl, len - hl, 1000000);
	close(fd);
	/* a small chunked answer may be complete before gwd answers: then it
	 * gets a Content-Length and the connection stays; else it is
	 * close-delimited like the big one. Never chunked. */
	fd = conn();
	gwt_sendf(fd, "GET /chunked/50 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
	r = gwt_recv_response(fd, 0, 3000, &len);
	ck_assert_ptr_nonnull(r);
	h = head_of(r);
	ck_assert_ptr_null(gwt_raw_hdr(h, "Transfer-Encoding"));
	hl = strlen(h) + 2;
	assert_pattern_body(r + hl, len - hl, 50);
	if (gwt_raw_hdr(h, "Content-Length")) {
		ck_assert_str_eq(gwt_raw_hdr(h, "Content-Length"), "50");
		ck_assert_str_eq(gwt_raw_hdr(h, "Connection"), "Keep-Alive");
		gwt_sendf(fd, "GET /name HTTP/1.0\r\nHost: x\r\n\r\n");
		r = gwt_recv_all(fd, 3000, &len, &eof);
		ck_assert_int_eq(eof, 1);
		ck_assert_int_eq(gwt_raw_status(r), 200);
		ck_assert_str_eq(gwt_raw_body(r), "o");
	} else {
		ck_assert_str_eq(gwt_raw_hdr(h, "Connection"), "close");
	}
	close(fd);
}
END_TEST

START_TEST(http10_keepalive_only_when_asked)
{
	start(NULL);
	/* no Connection header: closed after the answer */
	int fd = conn();
	gwt_sendf(fd, "GET /bytes/20 HTTP/1.0\r\nHost: x\r\n\r\n");
	size_t len;
	int eof;
	const char *r = gwt_recv_all(fd, 3000, &len, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_str_eq(gwt_raw_hdr(head_of(r), "Connection"), "close");
	close(fd);
	/* Connection: keep-alive: two requests on one connection, the second
	 * without it closes */
	fd = conn();
	gwt_sendf(fd, "GET /bytes/20 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
	r = gwt_recv_response(fd, 0, 3000, &len);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(gwt_raw_hdr(head_of(r), "Connection"), "Keep-Alive");
	ck_assert_str_eq(gwt_raw_hdr(head_of(r), "Content-Length"), "20");
	gwt_sendf(fd, "GET /bytes/5 HTTP/1.0\r\nHost: x\r\n\r\n");
	r = gwt_recv_all(fd, 3000, &len, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_str_eq(gwt_raw_hdr(head_of(r), "Content-Length"), "5");
	close(fd);
	/* gwd's own answers follow the same rules */
	fd = conn();
	gwt_sendf(fd, "GET /nothing HTTP/1.0\r\nHost: x\r\n\r\n");
	r = gwt_recv_all(fd, 3000, &len, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_int_eq(gwt_raw_status(r), 404);
	ck_assert_str_eq(gwt_raw_body(r), "nothing here\n");
	close(fd);
}
END_TEST

START_TEST(http10_requests)
{
	start(NULL);
	/* no Host (legal in 1.0): routed, forwarded */
	const char *r = gwt_raw(g_port, "GET /name HTTP/1.0\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_str_eq(gwt_raw_body(r), "o");
	/* Transfer-Encoding in 1.0 is faulty framing (RFC 9112 6.1): 400 and
	 * the connection closed, as nginx; the pipelined request is not read */
	r = gwt_raw(g_port, "POST /echo HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
	            "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	            "GET /name HTTP/1.0\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(r), 400);
	ck_assert_str_eq(gwt_raw_hdr(r, "Connection"), "close");
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r), "Transfer-Encoding in an HTTP/1.0 request"));
	ck_assert_ptr_null(strstr(gwt_raw_body(r), "HTTP/1.1 "));
	/* HTTP/1.1 without Host: 400 and closed too (nginx) */
	r = gwt_raw(g_port, "GET /name HTTP/1.1\r\n\r\nGET /name HTTP/1.1\r\nHost: x\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(r), 400);
	ck_assert_str_eq(gwt_raw_hdr(r, "Connection"), "close");
	ck_assert_ptr_null(strstr(gwt_raw_body(r), "HTTP/1.1 "));
	/* HEAD: the length, no body */
	r = gwt_raw(g_port, "HEAD /bytes/300 HTTP/1.0\r\nHost: x\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_str_eq(gwt_raw_hdr(r, "Content-Length"), "300");
	ck_assert_str_eq(gwt_raw_body(r), "");
	/* a body with Content-Length reaches the origin intact */
	int fd = conn();
	char *body = malloc(100000);
	origin_pattern_fill(body, 0, 100000);
	gwt_sendf(fd, "POST /echo HTTP/1.0\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
	ck_assert_int_eq(gwt_send(fd, body, 100000), 0);
	free(body);
	size_t len;
	int eof;
	r = gwt_recv_all(fd, 5000, &len, &eof);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	char want[65];
	gwt_pattern_sha256(100000, want);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r), gwt_strf("\"body_sha256\": \"%s\"", want)));
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r), "\"body_len\": 100000"));
	close(fd);
}
END_TEST

/* ------------------------------------------------- Expect: 100-continue */

/* read what arrives within ms (no more than cap bytes); harness-owned */
static const char *recv_for(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	tv.tv_sec = 10;
	tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return gwt_strf("%.*s", n > 0 ? (int)n : 0, buf);
}

START_TEST(expect_upload_1mb)
{
	start(NULL);
	size_t n = 1048576;
	char want[65];
	gwt_pattern_sha256(n, want);
	char *body = malloc(n);
	origin_pattern_fill(body, 0, n);
	/* raw: the 100 comes before any body byte is sent, then the upload */
	int fd = conn();
	gwt_sendf(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
	          "Expect: 100-continue\r\n\r\n", n);
	ck_assert_str_eq(recv_for(fd, 2000), "HTTP/1.1 100 Continue\r\n\r\n");
	ck_assert_int_eq(gwt_send(fd, body, n), 0);
	size_t len;
	const char *r = gwt_recv_response(fd, 0, 5000, &len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r), gwt_strf("\"body_sha256\": \"%s\"", want)));
	/* the origin never saw the Expect (gwd took care of it) */
	ck_assert_ptr_null(strcasestr(gwt_raw_body(r), "100-continue"));
	/* keep-alive survives: the next request on the same connection */
	gwt_sendf(fd, "GET /name HTTP/1.1\r\nHost: x\r\n\r\n");
	r = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(gwt_raw_body(r), "o");
	close(fd);
	/* chunked upload with Expect */
	fd = conn();
	gwt_sendf(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	          "Expect: 100-continue\r\n\r\n");
	ck_assert_str_eq(recv_for(fd, 2000), "HTTP/1.1 100 Continue\r\n\r\n");
	for (size_t off = 0; off < n; off += 65536) {
		gwt_sendf(fd, "%x\r\n", 65536);
		ck_assert_int_eq(gwt_send(fd, body + off, 65536), 0);
		gwt_sendf(fd, "\r\n");
	}
	gwt_sendf(fd, "0\r\n\r\n");
	r = gwt_recv_response(fd, 0, 5000, &len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r), gwt_strf("\"body_sha256\": \"%s\"", want)));
	close(fd);
	free(body);
	/* and with libcurl, which waits for the 100 itself */
	const char *hd[] = { "Expect: 100-continue", NULL };
	gwt_req q = { .url = gwt_url(g_port, "/echo"), .gen_len = n, .headers = hd };
	gwt_resp *res = gwt_http(&q);
	ck_assert_int_eq(res->status, 200);
	ck_assert_str_eq(gwt_echo_str(res, "body_sha256"), want);
}
END_TEST

START_TEST(expect_refused_without_100)
{
	start("limits: {max_body_size: 512k}\n");
	struct { const char *what, *path; int len, status; } c[] = {
		{ "auth", "/auth/echo", 100000, 401 },          /* access phase refusal */
		{ "max_body_size", "/echo", 1048576, 413 },     /* limit from the head */
		{ "body_limit", "/small/echo", 100000, 413 },   /* the route's limit */
		{ "respond", "/nothing", 100000, 404 },         /* an answer of the route */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int fd = conn();
		gwt_sendf(fd, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
		          "Expect: 100-continue\r\n\r\n", c[i].path, c[i].len);
		/* the final answer is the first thing that comes, and the
		 * connection closes after it (the body was never read) */
		size_t len;
		int eof;
		const char *r = gwt_recv_all(fd, 3000, &len, &eof);
		ck_assert_msg(gwt_raw_status(r) == c[i].status, "%s: %s", c[i].what, r);
		ck_assert_msg(!strstr(r, " 100 "), "%s: a 100 Continue came: %s", c[i].what, r);
		ck_assert_msg(eof == 1, "%s: the connection stayed open", c[i].what);
		close(fd);
	}
	/* with the right key the same upload is invited and goes through */
	int fd = conn();
	gwt_sendf(fd, "POST /auth/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
	          "Expect: 100-continue\r\nX-API-Key: k-1\r\n\r\n");
	ck_assert_str_eq(recv_for(fd, 2000), "HTTP/1.1 100 Continue\r\n\r\n");
	char body[1000];
	origin_pattern_fill(body, 0, sizeof body);
	ck_assert_int_eq(gwt_send(fd, body, sizeof body), 0);
	const char *r = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r), "\"body_len\": 1000"));
	close(fd);
	/* libcurl gets the 401 without sending the megabyte */
	gwt_req q = { .url = gwt_url(g_port, "/auth/echo"), .gen_len = 400000,
	              .headers = (const char *[]){ "Expect: 100-continue", NULL } };
	gwt_resp *res = gwt_http(&q);
	ck_assert_int_eq(res->status, 401);
	ck_assert_ptr_null(strstr(gwt_stderr(g_gwd), "error"));
}
END_TEST

START_TEST(expect_ignored_for_http10)
{
	start(NULL);
	/* HTTP/1.0 clients get no 100 (RFC 7231 5.1.1): they send the body
	 * after a pause, and it is proxied */
	int fd = conn();
	gwt_sendf(fd, "POST /echo HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n"
	          "Expect: 100-continue\r\n\r\n");
	ck_assert_str_eq(recv_for(fd, 500), "");
	gwt_sendf(fd, "hello");
	size_t len;
	int eof;
	const char *r = gwt_recv_all(fd, 3000, &len, &eof);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_ptr_null(strstr(r, " 100 "));
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r), "\"body_len\": 5"));
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http10");
	TCase *t = tcase_create("http10");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, http10_chunked_origin_whole_body);
	tcase_add_test(t, http10_keepalive_only_when_asked);
	tcase_add_test(t, http10_requests);
	tcase_add_test(t, expect_upload_1mb);
	tcase_add_test(t, expect_refused_without_100);
	tcase_add_test(t, expect_ignored_for_http10);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

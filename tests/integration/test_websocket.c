/*
 * test_websocket.c — WebSocket and other upgrades through gwd, black box:
 * a real gwd in front of ws_echo (tests/integration/ws_echo.c, a WebSocket
 * echo server) and gw-origin, clients on raw sockets that speak RFC 6455.
 *
 * Echo both ways (handshake headers, lengths 7/16/64-bit, fragments with a
 * ping between them, bytes the server sends with its 101), a 10 MB message,
 * ping/pong, both closing handshakes, back-pressure (a client that does not
 * read costs gwd no memory), the idle timeout, answers other than 101
 * passed through (200, 400, chunked), which tokens are upgraded,
 * auth/waf on the handshake, 50 reloads under 20 open WebSockets, a
 * graceful stop closing them at the drain timeout, and the counters in
 * GET /metrics.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gwd_common.h"

/* ------------------------------------------------------ the servers */
static int ws_port;

static int start_ws_echo(void)
{
	const char *bin = gwt_bin("tests/integration/ws_echo");
	const char *argv[] = { bin, "--listen", "127.0.0.1:0", NULL };
	gwt_proc *p = gwt_spawn("ws_echo", argv, NULL);
	ws_port = gwt_wait_listening(p, 5000);
	ck_assert_int_gt(ws_port, 0);
	return ws_port;
}

/* gwd in front of ws_echo: route "ws" for everything, plus extra routes
 * (before it) and extra directives in it */
static int start_gwd(const char *yaml, const char *routes, const char *ws_extra)
{
	start_ws_echo();
	return gwdt_start(yaml, gwt_strf("upstream ws { server 127.0.0.1:%d; }\n%s"
	                                 "route ws { match any; %s proxy ws; }\n",
	                                 ws_port, routes ? routes : "", ws_extra ? ws_extra : ""));
}

/* ------------------------------------------------- a WebSocket client */
typedef struct ws {
	int fd;
	SSL *ssl;                   /* wss: through gwd's TLS listener */
	int status;                 /* of the handshake answer */
	char *head;                 /* the answer's head (harness-owned) */
	char buf[65536];            /* bytes read past what was consumed */
	size_t len, pos;
} ws;

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int write_all(int fd, const void *p, size_t n);

/* recv / send through TLS when the client has it */
static ssize_t c_recv(ws *c, void *p, size_t n)
{
	if (!c->ssl)
		return recv(c->fd, p, n, 0);
	int k = SSL_read(c->ssl, p, n > 1u << 30 ? 1 << 30 : (int)n);
	if (k > 0)
		return k;
	return SSL_get_error(c->ssl, k) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static int c_write_all(ws *c, const void *p, size_t n)
{
	if (!c->ssl)
		return write_all(c->fd, p, n);
	const char *q = p;
	while (n) {
		int k = SSL_write(c->ssl, q, n > 1u << 30 ? 1 << 30 : (int)n);
		if (k <= 0)
			return -1;
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

/* n bytes (from the buffer first); 0, or -1 on EOF / error / timeout */
static int ws_read(ws *c, void *p, size_t n)
{
	char *d = p;
	while (n) {
		if (c->pos < c->len) {
			size_t k = c->len - c->pos < n ? c->len - c->pos : n;
			memcpy(d, c->buf + c->pos, k);
			c->pos += k;
			d += k;
			n -= k;
			continue;
		}
		if (n >= sizeof c->buf) {
			ssize_t k = c_recv(c, d, n);
			if (k <= 0)
				return -1;
			d += k;
			n -= (size_t)k;
			continue;
		}
		ssize_t k = c_recv(c, c->buf, sizeof c->buf);
		if (k <= 0)
			return -1;
		c->len = (size_t)k;
		c->pos = 0;
	}
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* clients are freed when the test process ends (leak-checked builds) */
static ws *all_ws[256];
static size_t n_ws;
static SSL_CTX *tls_ctx;
static void ws_close_fd(ws *c);

static void free_all_ws(void)
{
	for (size_t i = 0; i < n_ws; i++) {
		ws_close_fd(all_ws[i]);
		free(all_ws[i]);
	}
	n_ws = 0;
	if (tls_ctx)
		SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

/* send a request head; read the answer head. extra: header lines, each
 * ending in \r\n. upgrade: the Upgrade value (NULL: websocket). tls: wss */
static ws *ws_request_tls(int port, const char *path, const char *upgrade, const char *extra,
                          int tls)
{
	ws *c = calloc(1, sizeof *c);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_lt(n_ws, sizeof all_ws / sizeof all_ws[0]);
	if (!n_ws)
		atexit(free_all_ws);
	all_ws[n_ws++] = c;
	c->fd = -1;
	c->fd = gwt_connect("127.0.0.1", port, 3000);
	ck_assert_int_ge(c->fd, 0);
	set_timeouts(c->fd, 10000);
	if (tls) {
		if (!tls_ctx)
			tls_ctx = SSL_CTX_new(TLS_client_method());   /* trusts any certificate */
		ck_assert_ptr_nonnull(tls_ctx);
		c->ssl = SSL_new(tls_ctx);
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_tlsext_host_name(c->ssl, "localhost");
		ck_assert_int_eq(SSL_connect(c->ssl), 1);
	}
	const char *req = gwt_strf("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: Upgrade\r\n"
	                           "Upgrade: %s\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                           "Sec-WebSocket-Version: 13\r\n%s\r\n", path, port,
	                           upgrade ? upgrade : "websocket", extra ? extra : "");
	ck_assert_int_eq(c_write_all(c, req, strlen(req)), 0);
	/* the head, byte by byte into buf until the blank line */
	char h[16384];
	size_t n = 0;
	while (n < sizeof h - 1) {
		ssize_t k = c_recv(c, h + n, 1);
		if (k <= 0)
			break;
		n++;
		if (n >= 4 && !memcmp(h + n - 4, "\r\n\r\n", 4))
			break;
	}
	h[n] = '\0';
	c->head = (char *)gwt_strf("%s", h);
	c->status = gwt_raw_status(c->head);
	return c;
}

static ws *ws_request(int port, const char *path, const char *upgrade, const char *extra)
{
	return ws_request_tls(port, path, upgrade, extra, 0);
}

static ws *ws_open(int port, const char *path, const char *extra)
{
	ws *c = ws_request(port, path, NULL, extra);
	ck_assert_msg(c->status == 101, "handshake answered %d: %s", c->status, c->head);
	return c;
}

static void ws_close_fd(ws *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void ws_send(ws *c, int op, int fin, const void *p, size_t n)
{
	unsigned char h[14];
	size_t hl;
	unsigned char key[4] = { (unsigned char)rand(), (unsigned char)rand(),
	                         (unsigned char)rand(), (unsigned char)rand() };
	h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		h[1] = (unsigned char)(0x80 | n);
		hl = 2;
	} else if (n < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	memcpy(h + hl, key, 4);
	hl += 4;
	ck_assert_int_eq(c_write_all(c, h, hl), 0);
	const unsigned char *s = p;
	unsigned char tmp[65536];
	for (size_t off = 0; off < n;) {
		size_t k = n - off < sizeof tmp ? n - off : sizeof tmp;
		for (size_t i = 0; i < k; i++)
			tmp[i] = s[off + i] ^ key[(off + i) & 3];
		ck_assert_int_eq(c_write_all(c, tmp, k), 0);
		off += k;
	}
}

/* one frame from the server (unmasked); payload malloc'd, NUL-terminated.
 * 0, or -1 on EOF / error */
static int ws_recv(ws *c, int *op, char **payload, size_t *len)
{
	unsigned char h[2];
	if (ws_read(c, h, 2) != 0)
		return -1;
	ck_assert_msg(!(h[1] & 0x80), "the server's frame is masked");
	ck_assert_msg(h[0] & 0x80, "the server's frame is fragmented");
	*op = h[0] & 0x0f;
	uint64_t n = h[1] & 0x7f;
	if (n == 126) {
		unsigned char e[2];
		if (ws_read(c, e, 2) != 0)
			return -1;
		n = (uint64_t)e[0] << 8 | e[1];
	} else if (n == 127) {
		unsigned char e[8];
		if (ws_read(c, e, 8) != 0)
			return -1;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | e[i];
	}
	char *p = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(p);
	if (ws_read(c, p, (size_t)n) != 0) {
		free(p);
		return -1;
	}
	p[n] = '\0';
	*payload = p;
	*len = (size_t)n;
	return 0;
}

/* a text message out, its echo back */
static int ws_echo_text(ws *c, const char *msg)
{
	int op;
	char *p;
	size_t n;
	ws_send(c, 1, 1, msg, strlen(msg));
	if (ws_recv(c, &op, &p, &n) != 0)
		return -1;
	int ok = op == 1 && n == strlen(msg) && !memcmp(p, msg, n);
	free(p);
	return ok ? 0 : -1;
}

static void expect_frame(ws *c, int want_op, const void *want, size_t want_len)
{
	int op;
	char *p;
	size_t n;
	ck_assert_int_eq(ws_recv(c, &op, &p, &n), 0);
	ck_assert_int_eq(op, want_op);
	ck_assert_uint_eq(n, want_len);
	ck_assert_msg(!memcmp(p, want, n), "payload differs");
	free(p);
}

/* 1 once the peer has closed (EOF), within ms; 0 if data came, -1 timeout */
static int wait_eof(ws *c, int ms)
{
	set_timeouts(c->fd, ms);
	char b[256];
	if (c->pos < c->len)
		return 0;
	ssize_t k = c_recv(c, b, sizeof b);
	set_timeouts(c->fd, 10000);
	if (k == 0)
		return 1;
	if (k < 0 && errno == ECONNRESET)
		return 1;
	return k > 0 ? 0 : -1;
}

static const char *hdr(ws *c, const char *name)
{
	return gwt_raw_hdr(c->head, name);
}

/* ------------------------------------------------------------ tests */

START_TEST(echo_both_ways)
{
	int port = start_gwd(NULL, NULL, "set_header response \"X-Route\" \"ws\";");
	ws *c = ws_open(port, "/chat?room=1&x=%2f",
	                "Sec-WebSocket-Protocol: chat, superchat\r\nX-Forwarded-For: 10.9.9.9\r\n");
	/* the handshake as the client sees it: the upstream's 101 headers, the
	 * route's header_filter, gwd's X-Request-Id */
	ck_assert_msg(!strncmp(c->head, "HTTP/1.1 101 ", 13), "%s", c->head);
	ck_assert_str_eq(hdr(c, "Upgrade"), "websocket");
	ck_assert_ptr_nonnull(strcasestr(hdr(c, "Connection"), "upgrade"));
	ck_assert_str_eq(hdr(c, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	ck_assert_str_eq(hdr(c, "Sec-WebSocket-Protocol"), "chat");
	ck_assert_str_eq(hdr(c, "X-Route"), "ws");
	const char *id = hdr(c, "X-Request-Id");
	ck_assert_msg(gwdt_is_hex(id, 32), "X-Request-Id '%s'", id ? id : "(none)");
	ck_assert_ptr_null(hdr(c, "Content-Length"));
	ck_assert_ptr_null(hdr(c, "Transfer-Encoding"));
	/* and the handshake as the upstream saw it */
	ck_assert_str_eq(hdr(c, "X-Echo-Path"), "/chat?room=1&x=%2f");
	ck_assert_str_eq(hdr(c, "X-Echo-Request-Id"), id);
	ck_assert_str_eq(hdr(c, "X-Echo-XFF"), "10.9.9.9, 127.0.0.1");
	ck_assert_str_eq(hdr(c, "X-Echo-Proto"), "http");
	ck_assert_str_eq(hdr(c, "X-Echo-Host"), gwt_strf("127.0.0.1:%d", port));

	/* messages of each length encoding, text and binary */
	ck_assert_int_eq(ws_echo_text(c, "hi"), 0);
	ck_assert_int_eq(ws_echo_text(c, ""), 0);
	char b126[126], b70k[70000];
	for (size_t i = 0; i < sizeof b126; i++)
		b126[i] = (char)i;
	origin_pattern_fill(b70k, 7, sizeof b70k);
	ws_send(c, 2, 1, b126, sizeof b126);
	expect_frame(c, 2, b126, sizeof b126);
	ws_send(c, 2, 1, b70k, sizeof b70k);
	expect_frame(c, 2, b70k, sizeof b70k);
	/* a fragmented message with a ping between its fragments: the pong
	 * first, then the whole message */
	ws_send(c, 1, 0, "frag", 4);
	ws_send(c, 0, 0, "men", 3);
	ws_send(c, 9, 1, "p!", 2);
	ws_send(c, 0, 1, "ted", 3);
	expect_frame(c, 10, "p!", 2);
	expect_frame(c, 1, "fragmented", 10);
	/* many small messages in one write, answers in order */
	for (int i = 0; i < 100; i++)
		ws_send(c, 1, 1, gwt_strf("m%d", i), strlen(gwt_strf("m%d", i)));
	for (int i = 0; i < 100; i++) {
		const char *m = gwt_strf("m%d", i);
		expect_frame(c, 1, m, strlen(m));
	}
	/* closing handshake started by the client: the server's close comes
	 * back with the same code, then the connection ends */
	ws_send(c, 8, 1, "\x03\xe8" "done", 6);
	expect_frame(c, 8, "\x03\xe8", 2);
	ck_assert_int_eq(wait_eof(c, 3000), 1);
	ws_close_fd(c);
	/* gwd is fine and serves the next one */
	ws *d = ws_open(port, "/again", NULL);
	ck_assert_int_eq(ws_echo_text(d, "again"), 0);
	ws_send(d, 8, 1, "", 0);
	expect_frame(d, 8, "", 0);
	ck_assert_int_eq(wait_eof(d, 3000), 1);
	ws_close_fd(d);
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(server_sends_first_and_closes)
{
	int port = start_gwd(NULL, NULL, NULL);
	/* a message the server wrote with its 101, in the same segment */
	ws *c = ws_open(port, "/hello", NULL);
	expect_frame(c, 1, "hello", 5);
	ck_assert_int_eq(ws_echo_text(c, "after hello"), 0);
	/* ping/pong */
	ws_send(c, 9, 1, "ping-1", 6);
	expect_frame(c, 10, "ping-1", 6);
	ws_send(c, 9, 1, "", 0);
	expect_frame(c, 10, "", 0);
	/* the server starts the closing handshake */
	ws_send(c, 1, 1, "close-me", 8);
	expect_frame(c, 8, "\x03\xe8" "bye", 5);
	ws_send(c, 8, 1, "\x03\xe8", 2);
	ck_assert_int_eq(wait_eof(c, 3000), 1);
	ws_close_fd(c);
}
END_TEST

START_TEST(message_10mb)
{
	int port = start_gwd(NULL, NULL, NULL);
	ws *c = ws_open(port, "/big", NULL);
	size_t n = 10u * 1024 * 1024;
	char *m = malloc(n);
	ck_assert_ptr_nonnull(m);
	origin_pattern_fill(m, 0, n);
	/* one message in ten fragments of 1 MiB; back as one 10 MiB frame */
	for (int i = 0; i < 10; i++)
		ws_send(c, i ? 0 : 2, i == 9, m + (size_t)i * 1048576, 1048576);
	int op;
	char *p;
	size_t len;
	ck_assert_int_eq(ws_recv(c, &op, &p, &len), 0);
	ck_assert_int_eq(op, 2);
	ck_assert_uint_eq(len, n);
	ck_assert_msg(!memcmp(p, m, n), "the 10 MB message came back changed");
	free(p);
	/* and once more the other way round: a single 10 MiB frame */
	m[0] ^= 1;
	ws_send(c, 2, 1, m, n);
	ck_assert_int_eq(ws_recv(c, &op, &p, &len), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_msg(!memcmp(p, m, n), "the second 10 MB message came back changed");
	free(p);
	free(m);
	ck_assert_int_eq(ws_echo_text(c, "still here"), 0);
}
END_TEST

static long rss_kb(pid_t pid)
{
	const char *s = gwt_read(gwt_strf("/proc/%d/status", (int)pid), NULL);
	const char *v = s ? strstr(s, "VmRSS:") : NULL;
	return v ? strtol(v + 6, NULL, 10) : -1;
}

START_TEST(backpressure)
{
	int port = start_gwd(NULL, NULL, NULL);
	ws *c = ws_open(port, "/slow-reader", NULL);
	ck_assert_int_eq(ws_echo_text(c, "warm up"), 0);
	long before = rss_kb(gwt_pid(g_gwd));
	/* 40 MB the server echoes while this client reads nothing: the echo
	 * stalls in the socket buffers, gwd stops reading the server, and
	 * must not hold the rest in memory */
	size_t n = 40u * 1024 * 1024;
	char *m = malloc(n);
	ck_assert_ptr_nonnull(m);
	origin_pattern_fill(m, 3, n);
	ws_send(c, 2, 1, m, n);
	gwt_sleep_ms(1500);
	long during = rss_kb(gwt_pid(g_gwd));
	ck_assert_msg(during - before < 8192, "gwd grew by %ld kB while the client did not read",
	              during - before);
	int op;
	char *p;
	size_t len;
	ck_assert_int_eq(ws_recv(c, &op, &p, &len), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_msg(!memcmp(p, m, n), "the message came back changed");
	free(p);
	free(m);
}
END_TEST

START_TEST(idle_timeout)
{
	/* the route's proxy timeout is the relay's idle timeout */
	start_ws_echo();
	int port = gwdt_start(NULL, gwt_strf("upstream ws { server 127.0.0.1:%d; }\n"
	                                     "route ws { match any; proxy ws timeout=1s; }\n",
	                                     ws_port));
	ws *idle = ws_open(port, "/idle", NULL);
	ws *busy = ws_open(port, "/busy", NULL);
	uint64_t t0 = gwt_now_ms();
	while (gwt_now_ms() - t0 < 3000) {
		ck_assert_int_eq(ws_echo_text(busy, "tick"), 0);
		gwt_sleep_ms(250);
	}
	/* the idle one was closed after ~1 s of silence (the sweep runs every
	 * second), the busy one still works */
	ck_assert_int_eq(wait_eof(idle, 100), 1);
	ck_assert_int_eq(ws_echo_text(busy, "tock"), 0);
}
END_TEST

START_TEST(answers_other_than_101)
{
	origin *o = gwt_origin("o");
	int port = start_gwd(NULL, gwt_strf("upstream o { server 127.0.0.1:%d; }\n"
	                                    "route o { match path ^= \"/o/\"; rewrite path strip_prefix"
	                                    " \"/o\"; proxy o; }\n", origin_port(o)), NULL);
	/* an upstream that answers 200 to an upgrade request: a normal answer,
	 * and the connection stays usable for the next request */
	ws *c = ws_request(port, "/plain", NULL, NULL);
	ck_assert_int_eq(c->status, 200);
	ck_assert_str_eq(hdr(c, "Content-Length"), "16");
	ck_assert_ptr_null(hdr(c, "Upgrade"));
	char body[17] = "";
	ck_assert_int_eq(ws_read(c, body, 16), 0);
	ck_assert_str_eq(body, "not a websocket\n");
	ck_assert_ptr_nonnull(hdr(c, "X-Request-Id"));
	const char *next = gwt_strf("GET /o/name HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(write_all(c->fd, next, strlen(next)), 0);
	const char *r = gwt_recv_response(c->fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(gwt_raw_status(r), 200);
	ck_assert_str_eq(gwt_raw_body(r), "o");
	ws_close_fd(c);
	/* 400 for a bad handshake (no key): passed through */
	int fd = gwt_connect("127.0.0.1", port, 3000);
	gwt_sendf(fd, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
	r = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(gwt_raw_status(r), 400);
	ck_assert_str_eq(gwt_raw_body(r), "not a websocket handshake\n");
	close(fd);
	/* a chunked answer (gw-origin has no upgrades) is de-chunked, whole */
	c = ws_request(port, "/o/chunked/100000", NULL, NULL);
	ck_assert_int_eq(c->status, 200);
	ck_assert_str_eq(hdr(c, "Content-Length"), "100000");
	ck_assert_ptr_null(hdr(c, "Transfer-Encoding"));
	ck_assert_str_eq(hdr(c, "X-Origin-Name"), "o");
	char *b = malloc(100000);
	ck_assert_int_eq(ws_read(c, b, 100000), 0);
	char want[65], got[65];
	gwt_pattern_sha256(100000, want);
	gwt_sha256_hex(b, 100000, got);
	free(b);
	ck_assert_str_eq(got, want);
	ws_close_fd(c);
	c = ws_request(port, "/o/status/404", NULL, NULL);
	ck_assert_int_eq(c->status, 404);
	ck_assert_str_eq(hdr(c, "Content-Length"), "11");
	ws_close_fd(c);
	/* an upstream that cannot be reached: gwd's 502 */
	int dead = gwt_free_port();
	int port2 = gwt_free_port();
	gwt_writef("dead.gwr", "upstream d { server 127.0.0.1:%d; }\nroute d { match any; proxy d; }\n",
	           dead);
	gwt_compile("dead.gwr");
	gwt_writef("dead.yaml", "listen: 127.0.0.1:%d\nrules: dead.gwb\nadmin: {listen: 'off'}\n"
	           "threads: 1\n", port2);
	gwt_gwd("dead.yaml", port2);
	c = ws_request(port2, "/ws", NULL, NULL);
	ck_assert_int_eq(c->status, 502);
	ck_assert_str_eq(hdr(c, "Content-Type"), "application/json");
	ws_close_fd(c);
}
END_TEST

START_TEST(which_tokens)
{
	origin *o = gwt_origin("o");
	int port = start_gwd(NULL, gwt_strf(
		"upstream o { server 127.0.0.1:%d; }\n"
		"route raw { match path ^= \"/raw\" and header(\"Upgrade\") == \"x-echo\"; proxy ws; }\n"
		"route o { match path ^= \"/o/\"; rewrite path strip_prefix \"/o\"; proxy o; }\n",
		origin_port(o)), NULL);
	/* a token the route asks for: upgraded, bytes relayed raw, and a
	 * half-close passed on (the server answers it with its own) */
	ws *c = ws_request(port, "/raw", "x-echo", NULL);
	ck_assert_msg(c->status == 101, "%s", c->head);
	ck_assert_str_eq(hdr(c, "Upgrade"), "x-echo");
	ck_assert_int_eq(write_all(c->fd, "abc", 3), 0);
	char b[8] = "";
	ck_assert_int_eq(ws_read(c, b, 3), 0);
	ck_assert_str_eq(b, "abc");
	ck_assert_int_eq(write_all(c->fd, "defg", 4), 0);
	shutdown(c->fd, SHUT_WR);
	ck_assert_int_eq(ws_read(c, b, 4), 0);
	ck_assert_str_eq(b, "defg");
	ck_assert_int_eq(wait_eof(c, 3000), 1);
	ws_close_fd(c);
	/* the same token on a route that does not test it: a normal request
	 * without Upgrade/Connection (ws_echo then sees no handshake) */
	c = ws_request(port, "/other", "x-echo", NULL);
	ck_assert_int_eq(c->status, 400);
	ws_close_fd(c);
	/* h2c is never upgraded unless a route asks: gw-origin gets a plain
	 * GET without the upgrade headers */
	c = ws_request(port, "/o/echo", "h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n");
	ck_assert_int_eq(c->status, 200);
	const char *cl = hdr(c, "Content-Length");
	ck_assert_ptr_nonnull(cl);
	size_t n = (size_t)atoi(cl);
	char *body = calloc(1, n + 1);
	ck_assert_int_eq(ws_read(c, body, n), 0);
	ck_assert_ptr_null(strstr(body, "\"Upgrade\""));
	ck_assert_ptr_null(strstr(body, "h2c"));
	free(body);
	ws_close_fd(c);
	/* HTTP/1.0 has no upgrades: proxied as a plain request */
	int fd = gwt_connect("127.0.0.1", port, 3000);
	gwt_sendf(fd, "GET /ws HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
	          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
	const char *r = gwt_recv_all(fd, 3000, NULL, NULL);
	ck_assert_int_eq(gwt_raw_status(r), 400);
	close(fd);
	/* POST with a body: not upgraded either */
	fd = gwt_connect("127.0.0.1", port, 3000);
	gwt_sendf(fd, "POST /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
	          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	          "Content-Length: 2\r\n\r\nab");
	r = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert_int_eq(gwt_raw_status(r), 400);
	close(fd);
	/* a route that removes the Upgrade header gets no upgrade */
	gwt_writef("rules.gwr", "upstream ws { server 127.0.0.1:%d; }\n"
	           "route ws { match any; remove_header request \"Upgrade\"; proxy ws; }\n", ws_port);
	gwt_compile("rules.gwr");
	ck_assert_int_eq(gwt_wait_output(g_gwd, "generation 2,", 3000), 0);
	c = ws_request(port, "/ws", NULL, NULL);
	ck_assert_int_eq(c->status, 400);
	ws_close_fd(c);
}
END_TEST

START_TEST(access_on_the_handshake)
{
	start_ws_echo();
	gwt_writef("keys.txt", "alice:k-alice-123\n");
	int port = gwdt_start(NULL, gwt_strf(
		"upstream ws { server 127.0.0.1:%d; }\n"
		"route ws { match any; auth key header=\"X-API-Key\" keys=file(\"keys.txt\");"
		" waf sqli; proxy ws; }\n", ws_port));
	/* no key: 401 from gwd, nothing upgraded */
	ws *c = ws_request(port, "/ws", NULL, NULL);
	ck_assert_int_eq(c->status, 401);
	ck_assert_str_eq(hdr(c, "Content-Type"), "application/json");
	ck_assert_ptr_null(hdr(c, "Upgrade"));
	ws_close_fd(c);
	c = ws_request(port, "/ws", NULL, "X-API-Key: wrong\r\n");
	ck_assert_int_eq(c->status, 401);
	ws_close_fd(c);
	/* a key but an attack in the query: the waf refuses the handshake */
	c = ws_request(port, "/ws?id=1%27%20OR%20%271%27%3D%271", NULL, "X-API-Key: k-alice-123\r\n");
	ck_assert_int_eq(c->status, 403);
	ws_close_fd(c);
	/* the right key: upgraded */
	c = ws_open(port, "/ws", "X-API-Key: k-alice-123\r\n");
	ck_assert_int_eq(ws_echo_text(c, "let in"), 0);
}
END_TEST

/* two tables that differ in a response header of the handshake */
static const char *compile_v(int v)
{
	const char *src = gwt_strf("v%d.gwr", v);
	gwt_writef(src, "upstream ws { server 127.0.0.1:%d; }\n"
	           "route ws { match any; set_header response \"X-V\" \"%d\"; proxy ws; }\n",
	           ws_port, v);
	const char *out = gwt_path(gwt_strf("v%d.gwb", v));
	ck_assert_int_eq(gwt_compile_status(src, out, NULL), 0);
	return out;
}

START_TEST(reloads_keep_websockets)
{
	start_ws_echo();
	gwdt_start("threads: 2\n", gwt_strf("upstream ws { server 127.0.0.1:%d; }\n"
	                                    "route ws { match any; set_header response \"X-V\" \"0\";"
	                                    " proxy ws; }\n", ws_port));
	size_t l1, l2;
	const char *b1 = gwt_read(compile_v(1), &l1), *b2 = gwt_read(compile_v(2), &l2);
	enum { N = 20 };
	ws *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = ws_open(g_port, gwt_strf("/ws/%d", i), NULL);
		ck_assert_str_eq(hdr(c[i], "X-V"), "0");
	}
	for (int k = 0; k < 50; k++) {
		/* the next table, as gwc writes it (temp + rename) */
		int fd = open(gwt_path("next.tmp"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ck_assert_int_ge(fd, 0);
		const char *b = k % 2 ? b2 : b1;
		size_t n = k % 2 ? l2 : l1;
		ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
		close(fd);
		ck_assert_int_eq(rename(gwt_path("next.tmp"), gwt_path("rules.gwb")), 0);
		ck_assert_int_eq(gwt_wait_output(g_gwd, gwt_strf("generation %d,", k + 2), 3000), 0);
		/* every WebSocket still echoes, right after the swap */
		for (int i = 0; i < N; i++)
			ck_assert_msg(ws_echo_text(c[i], gwt_strf("ws %d after reload %d", i, k + 1)) == 0,
			              "websocket %d failed after reload %d", i, k + 1);
	}
	/* new handshakes get the last table (k = 49: v2), old ones go on */
	ws *d = ws_open(g_port, "/new", NULL);
	ck_assert_str_eq(hdr(d, "X-V"), "2");
	ck_assert_int_eq(ws_echo_text(d, "new"), 0);
	ws_close_fd(d);               /* an abrupt end, for a change */
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(ws_echo_text(c[i], "the end"), 0);
		ws_send(c[i], 8, 1, "\x03\xe8", 2);
		expect_frame(c[i], 8, "\x03\xe8", 2);
		ck_assert_int_eq(wait_eof(c[i], 3000), 1);
		ws_close_fd(c[i]);
	}
	ck_assert_ptr_null(strstr(gwt_stderr(g_gwd), "not reloaded"));
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(graceful_stop_closes_at_drain_timeout)
{
	start_gwd("drain_timeout: 1500ms\n", NULL, NULL);
	ws *a = ws_open(g_port, "/a", NULL), *b = ws_open(g_port, "/b", NULL);
	uint64_t t0 = gwt_now_ms();
	gwt_signal(g_gwd, SIGTERM);
	/* draining: the listener is closed, open WebSockets go on */
	gwt_sleep_ms(300);
	ck_assert_int_eq(ws_echo_text(a, "still open"), 0);
	ck_assert_int_eq(ws_echo_text(b, "me too"), 0);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", g_port, 200), -1);
	/* then closed at the deadline */
	ck_assert_int_eq(wait_eof(a, 4000), 1);
	uint64_t dt = gwt_now_ms() - t0;
	ck_assert_msg(dt >= 1400 && dt < 2500, "closed %llu ms after SIGTERM", (unsigned long long)dt);
	ck_assert_int_eq(wait_eof(b, 500), 1);
	/* gwd exits cleanly: nothing was cut by force */
	ck_assert_int_eq(gwt_wait(g_gwd, 3000), 0);
	ck_assert_ptr_null(strstr(gwt_stderr(g_gwd), "requests cut"));
}
END_TEST

/* the value of one sample line ("name{labels} v") in GET /metrics */
static long long metric(int admin, const char *line_prefix)
{
	gwt_resp *r = gwt_get(gwt_url(admin, "/metrics"));
	ck_assert_int_eq(r->status, 200);
	const char *p = strstr(r->body, gwt_strf("\n%s ", line_prefix));
	return p ? strtoll(p + strlen(line_prefix) + 2, NULL, 10) : -1;
}

/* poll until the sample has the value (counters are updated right after
 * the bytes move: a scrape may come a moment earlier) */
static void metric_is(int admin, const char *line_prefix, long long want)
{
	long long v = -1;
	for (int i = 0; i < 100 && (v = metric(admin, line_prefix)) != want; i++)
		gwt_sleep_ms(20);
	ck_assert_msg(v == want, "%s is %lld, not %lld", line_prefix, v, want);
}

/* ws_echo behind gwd, with the admin API (GET /metrics) on: its port */
static int start_with_admin(void)
{
	start_ws_echo();
	gwt_writef("rules.gwr", "upstream ws { server 127.0.0.1:%d; }\n"
	           "route ws { match any; proxy ws; }\n", ws_port);
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	int admin = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n"
	           "admin: {listen: '127.0.0.1:%d'}\n", g_port, admin);
	g_gwd = gwt_gwd("gw.yaml", g_port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", admin, 5000), 0);
	return admin;
}

START_TEST(metrics_count_upgrades)
{
	int admin = start_with_admin();
	metric_is(admin, "gw_upgraded_connections_active", 0);
	ws *c = ws_open(g_port, "/m", NULL);
	/* "hello": 2 + 4 (mask) + 5 bytes up, 2 + 5 down */
	ck_assert_int_eq(ws_echo_text(c, "hello"), 0);
	metric_is(admin, "gw_upgraded_connections_active", 1);
	metric_is(admin, "gw_upgraded_connections_total", 1);
	metric_is(admin, "gw_upgrade_handshakes_total", 1);
	metric_is(admin, "gw_upgraded_bytes_total{direction=\"client_to_upstream\"}", 11);
	metric_is(admin, "gw_upgraded_bytes_total{direction=\"upstream_to_client\"}", 7);
	/* close: 2 + 4 + 2 up, 2 + 2 down; then nothing is open */
	ws_send(c, 8, 1, "\x03\xe8", 2);
	expect_frame(c, 8, "\x03\xe8", 2);
	ck_assert_int_eq(wait_eof(c, 3000), 1);
	/* half-closed by the server: open until the client closes too */
	metric_is(admin, "gw_upgraded_connections_active", 1);
	ws_close_fd(c);
	metric_is(admin, "gw_upgraded_connections_active", 0);
	metric_is(admin, "gw_upgraded_bytes_total{direction=\"client_to_upstream\"}", 19);
	metric_is(admin, "gw_upgraded_bytes_total{direction=\"upstream_to_client\"}", 11);
	/* a handshake the upstream refuses counts as a handshake only */
	ws *d = ws_request(g_port, "/plain", NULL, NULL);
	ck_assert_int_eq(d->status, 200);
	metric_is(admin, "gw_upgrade_handshakes_total", 2);
	metric_is(admin, "gw_upgraded_connections_total", 1);
	ws_close_fd(d);
}
END_TEST

START_TEST(half_closed_relay_ends)
{
	int admin = start_with_admin();
	/* the server ends the connection (after the closing handshake); a
	 * client that never closes its side does not keep the relay: it
	 * ends UPGRADE_FIN_MS (5 s) later without traffic */
	ws *c = ws_open(g_port, "/fin", NULL);
	ws_send(c, 8, 1, "\x03\xe8", 2);
	expect_frame(c, 8, "\x03\xe8", 2);
	ck_assert_int_eq(wait_eof(c, 3000), 1);
	uint64_t t0 = gwt_now_ms();
	metric_is(admin, "gw_upgraded_connections_active", 1);
	while (metric(admin, "gw_upgraded_connections_active") != 0 && gwt_now_ms() - t0 < 9000)
		gwt_sleep_ms(100);
	uint64_t dt = gwt_now_ms() - t0;
	ck_assert_int_eq(metric(admin, "gw_upgraded_connections_active"), 0);
	ck_assert_msg(dt >= 4500 && dt < 7500, "closed after %llu ms", (unsigned long long)dt);
	ws_close_fd(c);
}
END_TEST

/* wss:// through gwd's TLS listener (libmicrohttpd's TLS upgrade: slow
 * for bulk in 0.9.75, see upgrade.h; chat-sized traffic is the point) */
START_TEST(wss_through_tls_listener)
{
	start_ws_echo();
	const char *argv[] = { "/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
	                       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
	                       gwt_path("key.pem"), "-out", gwt_path("cert.pem"), "-days", "2",
	                       "-subj", "/CN=localhost", NULL };
	const char *err;
	ck_assert_int_eq(gwt_run("openssl", argv, NULL, 20000, NULL, &err), 0);
	int tls_port = gwt_free_port();
	gwdt_start(gwt_strf("tls:\n  listen: 127.0.0.1:%d\n  cert: cert.pem\n  key: key.pem\n",
	                    tls_port),
	           gwt_strf("upstream ws { server 127.0.0.1:%d; }\nroute ws { match any; proxy ws; }\n",
	                    ws_port));
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", tls_port, 5000), 0);
	ws *c = ws_request_tls(tls_port, "/secure", NULL, NULL, 1);
	ck_assert_msg(c->status == 101, "%s", c->head);
	ck_assert_str_eq(hdr(c, "X-Echo-Proto"), "https");
	ck_assert_str_eq(hdr(c, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(ws_echo_text(c, gwt_strf("secret message %d", i)), 0);
	ws_send(c, 9, 1, "tls-ping", 8);
	expect_frame(c, 10, "tls-ping", 8);
	char b[4096];
	origin_pattern_fill(b, 11, sizeof b);
	ws_send(c, 2, 1, b, sizeof b);
	expect_frame(c, 2, b, sizeof b);
	ws_send(c, 8, 1, "\x03\xe8", 2);
	expect_frame(c, 8, "\x03\xe8", 2);
	ck_assert_int_eq(wait_eof(c, 3000), 1);
	ws_close_fd(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("websocket");
	TCase *t = tcase_create("websocket");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, echo_both_ways);
	tcase_add_test(t, server_sends_first_and_closes);
	tcase_add_test(t, message_10mb);
	tcase_add_test(t, backpressure);
	tcase_add_test(t, idle_timeout);
	tcase_add_test(t, answers_other_than_101);
	tcase_add_test(t, which_tokens);
	tcase_add_test(t, access_on_the_handshake);
	tcase_add_test(t, reloads_keep_websockets);
	tcase_add_test(t, graceful_stop_closes_at_drain_timeout);
	tcase_add_test(t, metrics_count_upgrades);
	tcase_add_test(t, half_closed_relay_ends);
	tcase_add_test(t, wss_through_tls_listener);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc gw-origin tests/integration/ws_echo");
}

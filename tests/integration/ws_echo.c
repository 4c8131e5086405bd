/*
 * ws_echo.c — a small WebSocket (RFC 6455) echo server for gw's tests.
 *
 *   ws_echo --listen HOST:PORT      (PORT 0: a free port)
 *
 * prints "listening HOST:PORT" on stdout once it accepts, then serves each
 * connection on a thread of its own with blocking I/O:
 *
 *   GET /plain...        200 "not a websocket\n" (an upstream that does not
 *                        upgrade, whatever the request asks), then close
 *   anything else        the opening handshake: Upgrade: websocket,
 *                        Connection: upgrade, Sec-WebSocket-Key and
 *                        Sec-WebSocket-Version: 13 are required (else 400,
 *                        close). The 101 carries Sec-WebSocket-Accept, the
 *                        first offered Sec-WebSocket-Protocol, and what the
 *                        server saw: X-Echo-Path (request target), X-Echo-
 *                        Host, X-Echo-XFF (X-Forwarded-For), X-Echo-Proto
 *                        (X-Forwarded-Proto), X-Echo-Request-Id.
 *                        A path containing "hello" gets a text message
 *                        "hello" in the same write as the 101 head.
 *   Upgrade: x-echo      (a protocol that is not WebSocket) 101, then every
 *                        byte is echoed raw; the client's half-close is
 *                        answered by the server's once all is echoed
 *
 * After the handshake: client frames must be masked (else close 1002);
 * fragmented messages are reassembled (up to 64 MiB) and every text or
 * binary message is echoed as one unfragmented frame of the same opcode;
 * pings (also between fragments) get a pong with the same payload; a
 * text message "close-me" makes the server start the closing handshake
 * (close 1000 "bye", then it waits for the client's close frame); a client
 * close frame is answered with the same status code and the server then
 * closes the TCP connection, as RFC 6455 7.1.1 wants.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEAD 16384
#define MAX_MESSAGE (64u * 1024 * 1024)

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

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t k = recv(fd, c, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* a header's value from a request head (first of that name), or NULL */
static const char *header(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
		const char *s = l + 2;
		if (!strncasecmp(s, name, nl) && s[nl] == ':') {
			s += nl + 1;
			while (*s == ' ' || *s == '\t')
				s++;
			const char *e = strstr(s, "\r\n");
			size_t n = e ? (size_t)(e - s) : strlen(s);
			while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
				n--;
			if (n >= cap)
				n = cap - 1;
			memcpy(out, s, n);
			out[n] = '\0';
			return out;
		}
	}
	return NULL;
}

static int has_token(const char *list, const char *tok)
{
	size_t tl = strlen(tok);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *s = p;
		while (*p && *p != ',')
			p++;
		const char *e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == tl && !strncasecmp(s, tok, tl))
			return 1;
	}
	return 0;
}

static void accept_key(const char *key, char out[64])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char buf[256];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = snprintf(buf, sizeof buf, "%s%s", key, guid);
	EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

static int send_frame(int fd, int opcode, const void *p, uint64_t n)
{
	unsigned char h[10];
	size_t hl;
	h[0] = (unsigned char)(0x80 | opcode);
	if (n < 126) {
		h[1] = (unsigned char)n;
		hl = 2;
	} else if (n < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)(n >> (56 - 8 * i));
		hl = 10;
	}
	/* head and payload in one write when small (one segment) */
	if (n <= 4096) {
		unsigned char buf[4106];
		memcpy(buf, h, hl);
		memcpy(buf + hl, p, (size_t)n);
		return write_all(fd, buf, hl + (size_t)n);
	}
	return write_all(fd, h, hl) || write_all(fd, p, (size_t)n) ? -1 : 0;
}

static void send_close(int fd, unsigned code, const char *reason)
{
	unsigned char b[128];
	size_t rl = strlen(reason);
	b[0] = (unsigned char)(code >> 8);
	b[1] = (unsigned char)code;
	memcpy(b + 2, reason, rl);
	send_frame(fd, 8, b, 2 + rl);
}

static void serve_ws(int fd)
{
	char *msg = NULL;
	uint64_t mlen = 0;
	int mop = 0;
	int closing = 0;               /* we sent a close: wait for theirs */
	for (;;) {
		unsigned char h[2];
		if (read_all(fd, h, 2) != 0)
			break;
		int fin = h[0] & 0x80, op = h[0] & 0x0f, masked = h[1] & 0x80;
		uint64_t n = h[1] & 0x7f;
		if (n == 126) {
			unsigned char e[2];
			if (read_all(fd, e, 2) != 0)
				break;
			n = (uint64_t)e[0] << 8 | e[1];
		} else if (n == 127) {
			unsigned char e[8];
			if (read_all(fd, e, 8) != 0)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | e[i];
		}
		if (!masked) {
			send_close(fd, 1002, "unmasked frame");
			break;
		}
		if (n > MAX_MESSAGE || mlen + n > MAX_MESSAGE || ((op & 8) && n > 125)) {
			send_close(fd, 1009, "too big");
			break;
		}
		unsigned char key[4];
		if (read_all(fd, key, 4) != 0)
			break;
		char *p = malloc(n ? n : 1);
		if (!p || read_all(fd, p, (size_t)n) != 0) {
			free(p);
			break;
		}
		for (uint64_t i = 0; i < n; i++)
			p[i] ^= (char)key[i & 3];
		if (op == 8) {                       /* close */
			if (!closing) {
				if (n >= 2)
					send_frame(fd, 8, p, 2);
				else
					send_frame(fd, 8, "", 0);
			}
			free(p);
			break;
		}
		if (op == 9) {                       /* ping */
			send_frame(fd, 10, p, n);
			free(p);
			continue;
		}
		if (op == 10) {                      /* pong */
			free(p);
			continue;
		}
		if (op == 1 || op == 2) {
			if (msg) {                       /* a new message inside one */
				free(p);
				send_close(fd, 1002, "expected a continuation");
				break;
			}
			mop = op;
		} else if (op != 0 || !msg) {
			free(p);
			send_close(fd, 1002, "bad opcode");
			break;
		}
		char *m = realloc(msg, mlen + n + 1);
		if (!m) {
			free(p);
			break;
		}
		msg = m;
		memcpy(msg + mlen, p, n);
		mlen += n;
		free(p);
		if (!fin)
			continue;
		if (mop == 1 && mlen == 8 && !memcmp(msg, "close-me", 8)) {
			send_close(fd, 1000, "bye");
			closing = 1;
		} else if (send_frame(fd, mop, msg, mlen) != 0) {
			break;
		}
		free(msg);
		msg = NULL;
		mlen = 0;
	}
	free(msg);
}

/* Upgrade: x-echo — a protocol that is no WebSocket: after the 101 every
 * byte is echoed as it comes; the client's end of stream (a half-close)
 * is answered by ours once everything is echoed */
static void serve_raw(int fd, const char *target)
{
	char buf[65536];
	int k = snprintf(buf, sizeof buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-echo\r\n"
	                 "Connection: Upgrade\r\nX-Echo-Path: %s\r\n\r\n", target);
	if (write_all(fd, buf, (size_t)k) != 0)
		return;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write_all(fd, buf, (size_t)n) != 0)
			return;
	}
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char head[MAX_HEAD + 1];
	size_t n = 0;
	char *end = NULL;
	while (n < MAX_HEAD && !end) {
		ssize_t k = recv(fd, head + n, MAX_HEAD - n, 0);
		if (k <= 0)
			goto out;
		n += (size_t)k;
		head[n] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if (!end)
		goto out;
	/* bytes after the head (a client's first frame) are not expected: the
	 * test clients wait for the 101 */
	end[2] = '\0';
	char target[2048] = "";
	sscanf(head, "%*s %2047s", target);
	if (!strncmp(target, "/plain", 6)) {
		static const char r[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		                        "Content-Length: 16\r\nConnection: close\r\n\r\nnot a websocket\n";
		write_all(fd, r, sizeof r - 1);
		goto out;
	}
	char up[256], conn[256], key[256], ver[32], v[1024];
	if (header(head, "Upgrade", up, sizeof up) && !strcasecmp(up, "x-echo") &&
	    header(head, "Connection", conn, sizeof conn) && has_token(conn, "upgrade")) {
		serve_raw(fd, target);
		goto out;
	}
	if (!header(head, "Upgrade", up, sizeof up) || strcasecmp(up, "websocket") ||
	    !header(head, "Connection", conn, sizeof conn) || !has_token(conn, "upgrade") ||
	    !header(head, "Sec-WebSocket-Key", key, sizeof key) ||
	    !header(head, "Sec-WebSocket-Version", ver, sizeof ver) || strcmp(ver, "13")) {
		static const char r[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
		                        "Content-Length: 26\r\nConnection: close\r\n\r\n"
		                        "not a websocket handshake\n";
		write_all(fd, r, sizeof r - 1);
		goto out;
	}
	char acc[64];
	accept_key(key, acc);
	char resp[8192];
	int k = snprintf(resp, sizeof resp,
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Echo-Path: %s\r\n",
	                 acc, target);
	static const char *const echo[][2] = {
		{ "Host", "X-Echo-Host" }, { "X-Forwarded-For", "X-Echo-XFF" },
		{ "X-Forwarded-Proto", "X-Echo-Proto" }, { "X-Request-Id", "X-Echo-Request-Id" },
	};
	for (size_t i = 0; i < sizeof echo / sizeof echo[0]; i++)
		if (header(head, echo[i][0], v, sizeof v))
			k += snprintf(resp + k, sizeof resp - (size_t)k, "%s: %s\r\n", echo[i][1], v);
	if (header(head, "Sec-WebSocket-Protocol", v, sizeof v)) {
		char *c = strchr(v, ',');
		if (c)
			*c = '\0';
		k += snprintf(resp + k, sizeof resp - (size_t)k, "Sec-WebSocket-Protocol: %s\r\n", v);
	}
	k += snprintf(resp + k, sizeof resp - (size_t)k, "\r\n");
	if (strstr(target, "hello")) {            /* first message with the head */
		memcpy(resp + k, "\x81\x05hello", 7);
		k += 7;
	}
	if (write_all(fd, resp, (size_t)k) == 0)
		serve_ws(fd);
out:
	shutdown(fd, SHUT_WR);
	/* let the peer read what we sent before the close (no RST for unread
	 * data in our buffer: drain briefly) */
	{
		struct timeval tv = { 1, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		char sink[4096];
		while (recv(fd, sink, sizeof sink, 0) > 0)
			;
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *listen_at = NULL;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--listen") && i + 1 < argc)
			listen_at = argv[++i];
	if (!listen_at || !strchr(listen_at, ':')) {
		fprintf(stderr, "usage: ws_echo --listen HOST:PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	char host[64];
	snprintf(host, sizeof host, "%.*s", (int)(strrchr(listen_at, ':') - listen_at), listen_at);
	int port = atoi(strrchr(listen_at, ':') + 1);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 128) != 0) {
		fprintf(stderr, "ws_echo: cannot listen on %s: %s\n", listen_at, strerror(errno));
		return 1;
	}
	socklen_t sl = sizeof sa;
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	printf("listening %s:%d\n", host, ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "ws_echo: accept: %s\n", strerror(errno));
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		pthread_t th;
		if (pthread_create(&th, NULL, conn_main, (void *)(intptr_t)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(th);
	}
}

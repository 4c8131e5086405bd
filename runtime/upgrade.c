/*
 * upgrade.c — HTTP Upgrade through gwd (see upgrade.h for what and why).
 *
 * One gw_upg per upgrade request, on the request's worker, in states:
 *
 *   U_CONNECT  a CONNECT_ONLY easy handle on a multi handle of its own
 *              (one per upgrade: a shared one would let libcurl's
 *              dead-connection pruning and its connection cache limit
 *              touch established relays), driven through gw_loop_watch
 *              and the worker's upgrade tick; connect errors are retried
 *              on another server like proxy.c does (retries ... on
 *              connect_error)
 *   U_SEND     the handshake goes out with curl_easy_send
 *   U_HEAD     the answer's head comes in with curl_easy_recv (1xx other
 *              than 101 skipped)
 *   U_BODY     a non-101 answer: its body, buffered and de-chunked
 *   U_READY    answer complete (or failed): the MHD connection, suspended
 *              in the final access-handler call, is resumed and
 *              upgrade_final() queues it
 *   U_RELAY    after the 101 went out: MHD's upgrade handler gave us the
 *              client socket; bytes move between it and curl_easy_send /
 *              curl_easy_recv through two bounded rings
 *   U_CLOSED   both sides closed; the object waits for completed_cb
 *
 * Nothing here holds a lock or blocks: everything runs on the worker
 * thread, from srv.c's hooks, MHD's upgrade handler and loop callbacks.
 * The worker's "tick" (one gw_timer per worker, armed while upgrades
 * exist) runs libcurl's timeouts, the handshake and idle timeouts, and
 * closes relays when a graceful stop reaches its drain deadline.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "tls.h"
#include "upgrade.h"

#define TICK_MS 100
#define IDLE_SCAN_MS 1000
#define DEFAULT_READ_TIMEOUT_MS 60000u
#define DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define MAX_TRIED 8

enum { U_CONNECT, U_SEND, U_HEAD, U_BODY, U_READY, U_RELAY, U_CLOSED };
enum { CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER,
       CK_TRAILER_LF, CK_DONE };

typedef struct upg_worker upg_worker;
typedef struct gw_upg gw_upg;

struct gw_upg {
	gw_upg *prev, *next;          /* worker's list */
	upg_worker *uw;
	gw_req *r;
	int state;
	/* upstream */
	ups_upstream *u;
	const gwb_upstream *uo;
	ups_snapshot *snap;
	ups_server *srv;              /* current server (ups_conn_begin'd) */
	const ups_server *tried[MAX_TRIED];
	size_t ntried;
	unsigned attempts;
	CURLM *multi;
	CURL *easy;
	int in_multi;
	int ufd;                      /* upstream socket once connected, else -1 */
	int https;
	uint64_t curl_due;            /* libcurl's timer, 0 = none */
	char errbuf[CURL_ERROR_SIZE];
	uint32_t timeout_ms;          /* handshake answer and relay idle time */
	uint64_t last_io;
	/* handshake */
	char *hs; size_t hs_len, hs_sent;
	char *in; size_t in_len, in_cap;   /* the answer's head (+ what follows) */
	size_t head_len;
	int status;
	gw_hlist rh;                  /* answer headers (request arena) */
	int64_t clen;                 /* -1 none */
	int chunked, eof_body;
	char *body; size_t body_len, body_cap;
	int ck_state, ck_digits;
	uint64_t ck_left;
	size_t ck_line;
	int failed;                   /* status to answer with (502/503/504) */
	const char *fail_msg;
	int head_wait;                /* MHD suspended until U_READY */
	/* relay */
	int cfd;
	struct MHD_UpgradeResponseHandle *urh;
	gw_ring up, down;             /* client -> upstream, upstream -> client */
	int c_eof, u_eof, up_shut, down_shut;
	unsigned cev, uev;            /* events watched on cfd / ufd */
	int cwatch, uwatch;           /* registered with gw_loop_watch */
	uint64_t n_up, n_down;
};

struct upg_worker {
	gw_upg list;                  /* sentinel */
	unsigned n;
	gw_timer *tick;
	uint64_t tick_due;
	uint64_t next_scan;
	int in_tick;                  /* tick_cb runs: keep the state */
};

static _Thread_local upg_worker *tl_uw;

static atomic_ullong st_handshakes, st_upgraded, st_bytes_up, st_bytes_down, st_idle;
static atomic_llong st_open;

void upgrade_get_stats(upgrade_stats *out)
{
	long long open = atomic_load_explicit(&st_open, memory_order_relaxed);
	out->handshakes = atomic_load_explicit(&st_handshakes, memory_order_relaxed);
	out->upgraded = atomic_load_explicit(&st_upgraded, memory_order_relaxed);
	out->open = open > 0 ? (uint64_t)open : 0;
	out->bytes_up = atomic_load_explicit(&st_bytes_up, memory_order_relaxed);
	out->bytes_down = atomic_load_explicit(&st_bytes_down, memory_order_relaxed);
	out->idle_closed = atomic_load_explicit(&st_idle, memory_order_relaxed);
}

int upgrade_req_info_get(const gw_req *r, upgrade_req_info *out)
{
	const gw_upg *g = r->upg;
	if (!g)
		return 0;
	out->server = g->ntried ? g->tried[g->ntried - 1]->addr : NULL;
	out->up_status = g->status;
	out->attempts = g->attempts;
	out->bytes_up = g->n_up;
	out->bytes_down = g->n_down;
	return 1;
}

/* --------------------------------------------------------------- helpers */
/* is tok one of the comma-separated tokens of list (any case)? */
static int has_token(const char *list, size_t ll, const char *tok, size_t tl)
{
	size_t i = 0;
	while (i < ll) {
		while (i < ll && (list[i] == ',' || list[i] == ' ' || list[i] == '\t'))
			i++;
		size_t s = i;
		while (i < ll && list[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (list[e - 1] == ' ' || list[e - 1] == '\t'))
			e--;
		if (e - s == tl && !strncasecmp(list + s, tok, tl))
			return 1;
	}
	return 0;
}

static void trim(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

/* headers never passed on between the two connections (RFC 9110 7.6.1);
 * Upgrade is added back on a 101 */
static int hop_by_hop(const char *n, size_t len)
{
	switch (len) {
	case 2: return !strncasecmp(n, "te", 2);
	case 7: return !strncasecmp(n, "trailer", 7) || !strncasecmp(n, "upgrade", 7);
	case 10: return !strncasecmp(n, "connection", 10) || !strncasecmp(n, "keep-alive", 10);
	case 14: return !strncasecmp(n, "content-length", 14);
	case 16: return !strncasecmp(n, "proxy-connection", 16);
	case 17: return !strncasecmp(n, "transfer-encoding", 17);
	default: return 0;
	}
}

/* rings: the contiguous stretch to read from / write into */
static size_t ring_rspan(const gw_ring *g, char **p)
{
	size_t k = g->cap - g->head;
	*p = g->buf + g->head;
	return g->len < k ? g->len : k;
}

static size_t ring_wspan(gw_ring *g, char **p)
{
	if (g->len == 0)
		g->head = 0;
	size_t tail = (g->head + g->len) % g->cap;
	*p = g->buf + tail;
	return tail >= g->head && g->len < g->cap ? g->cap - tail : g->head - tail;
}

static void ring_took(gw_ring *g, size_t n)
{
	g->head = (g->head + n) % g->cap;
	g->len -= n;
	if (!g->len)
		g->head = 0;
}

static int ring_init(gw_ring *g, size_t cap, const char *p, size_t n)
{
	if (cap < n)
		cap = n;
	g->buf = malloc(cap);
	if (!g->buf)
		return -1;
	g->cap = cap;
	g->head = 0;
	g->len = n;
	if (n)
		memcpy(g->buf, p, n);
	return 0;
}

/* ---------------------------------------------------------- the tick */
static void tick_cb(void *arg);

static upg_worker *worker_state(void)
{
	if (tl_uw)
		return tl_uw;
	upg_worker *uw = calloc(1, sizeof *uw);
	if (!uw)
		return NULL;
	uw->list.next = uw->list.prev = &uw->list;
	uw->tick = gw_timer_new(tick_cb, uw);
	if (!uw->tick) {
		free(uw);
		return NULL;
	}
	tl_uw = uw;
	return uw;
}

/* the worker's last upgrade is gone: free its state (made again by the
 * next upgrade), so nothing is left when the worker ends */
static void worker_release(upg_worker *uw)
{
	if (uw->n || uw->in_tick)
		return;
	gw_timer_free(uw->tick);
	if (tl_uw == uw)
		tl_uw = NULL;
	free(uw);
}

/* the tick runs at `due` at the latest */
static void tick_arm(upg_worker *uw, uint64_t due)
{
	if (!due)
		due = 1;
	if (!uw->tick_due || due < uw->tick_due) {
		uw->tick_due = due;
		gw_timer_set(uw->tick, due);
	}
}

/* ------------------------------------------------------ the upstream */
static void on_up_io(int fd, unsigned events, void *arg);
static void on_client_io(int fd, unsigned events, void *arg);
static void relay_pump(gw_upg *g);

static void watch_up(gw_upg *g, unsigned ev)
{
	if (g->ufd < 0 || (g->uwatch && ev == g->uev))
		return;
	if (gw_loop_watch(g->ufd, ev, on_up_io, g) == 0) {
		g->uwatch = 1;
		g->uev = ev;
	} else {
		log_warn("request %s: cannot watch the upstream socket: %s", g->r->id, strerror(errno));
	}
}

/* close the upstream connection (libcurl closes the socket) */
static void upstream_close(gw_upg *g)
{
	if (g->uwatch) {
		gw_loop_unwatch(g->ufd);
		g->uwatch = 0;
	}
	g->ufd = -1;
	if (g->in_multi) {
		curl_multi_remove_handle(g->multi, g->easy);
		g->in_multi = 0;
	}
	if (g->easy) {
		curl_easy_cleanup(g->easy);
		g->easy = NULL;
	}
	if (g->multi) {
		curl_multi_cleanup(g->multi);
		g->multi = NULL;
	}
	g->curl_due = 0;
	if (g->srv) {
		ups_conn_end(g->srv);
		g->srv = NULL;
	}
}

static void report(gw_upg *g, int ok)
{
	if (!g->srv)
		return;
	ups_report(g->u, g->srv, ok, gw_tl_now);
	breaker_report(g->u, g->srv, g->uo, ok, ok ? g->status : 0, gw_tl_now);
}

/* the answer is complete (or failed): the final call may queue it */
static void ready(gw_upg *g)
{
	g->state = U_READY;
	if (g->head_wait) {
		g->head_wait = 0;
		srv_resume(g->r);
	}
}

static void fail(gw_upg *g, int status, const char *msg)
{
	if (g->errbuf[0])
		log_debug("request %s: upgrade: %s (%s)", g->r->id, msg, g->errbuf);
	else
		log_debug("request %s: upgrade: %s", g->r->id, msg);
	upstream_close(g);
	g->failed = status;
	g->fail_msg = msg;
	ready(g);
}

static int m_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	gw_upg *g = userp;
	(void)e; (void)socketp;
	if (what == CURL_POLL_REMOVE) {
		/* once connected the socket is the relay's (watch_up) */
		if (fd != g->ufd)
			gw_loop_unwatch(fd);
		return 0;
	}
	if (fd == g->ufd)
		return 0;
	unsigned ev = (what & CURL_POLL_IN ? GW_IO_READ : 0u) | (what & CURL_POLL_OUT ? GW_IO_WRITE : 0u);
	return gw_loop_watch(fd, ev, on_up_io, g) == 0 ? 0 : -1;
}

static int m_timer_cb(CURLM *m, long ms, void *userp)
{
	gw_upg *g = userp;
	(void)m;
	if (ms < 0) {
		g->curl_due = 0;
		return 0;
	}
	g->curl_due = gw_tl_now + (uint64_t)ms;
	tick_arm(g->uw, g->curl_due);
	return 0;
}

static int attempt(gw_upg *g);
static void hs_io(gw_upg *g);

static void connect_done(gw_upg *g, CURLcode rc)
{
	if (rc == CURLE_OK) {
		curl_socket_t fd = CURL_SOCKET_BAD;
		if (curl_easy_getinfo(g->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
		    fd == CURL_SOCKET_BAD) {
			report(g, 0);
			fail(g, 502, "upstream connect error");
			return;
		}
		g->ufd = (int)fd;
		g->uwatch = 0;            /* libcurl's watch (if any) is replaced */
		g->state = U_SEND;
		g->last_io = gw_tl_now;
		hs_io(g);
		return;
	}
	int timeout = rc == CURLE_OPERATION_TIMEDOUT;
	log_debug("request %s: upgrade: connecting to %s failed: %s", g->r->id,
	          g->srv ? g->srv->addr : "?", g->errbuf[0] ? g->errbuf : curl_easy_strerror(rc));
	report(g, 0);
	if (g->srv) {
		ups_conn_end(g->srv);
		g->srv = NULL;
	}
	unsigned on = g->uo->retry_on;
	if (g->attempts <= g->uo->retries && g->ntried < MAX_TRIED &&
	    ((on & GWB_RETRY_CONNECT) || (timeout && (on & GWB_RETRY_TIMEOUT)))) {
		curl_multi_remove_handle(g->multi, g->easy);
		g->in_multi = 0;
		g->errbuf[0] = '\0';
		if (attempt(g) == 0)
			return;
	}
	fail(g, timeout ? 504 : 502, timeout ? "upstream timeout" : "upstream connect error");
}

/* after any libcurl call while connecting: completions */
static void multi_check(gw_upg *g)
{
	CURLMsg *m;
	int left;
	while (g->state == U_CONNECT && g->multi && (m = curl_multi_info_read(g->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			connect_done(g, m->data.result);
}

/* pick a server not tried yet, point the easy handle at it, connect.
 * 0 ok; 503 when no server is left; 500 */
static int attempt(gw_upg *g)
{
	gw_req *r = g->r;
	ups_server *s = proxy_pick(r, g->u, g->snap, g->tried, g->ntried);
	if (!s)
		return 503;
	g->srv = s;
	ups_conn_begin(s);
	g->tried[g->ntried++] = s;
	g->attempts++;
	g->https = s->https;
	CURL *e = g->easy;
	/* https: the same TLS options as proxy.c (tls.c); the URL names
	 * tls_sni when one is set */
	const char *host = s->https ? tls_upstream_prepare(e, r, g->uo, s) : s->host;
	if (!s->https)
		tls_upstream_plain(e);
	int v6 = host && strchr(host, ':') != NULL;
	char url[600];
	if (!host || strlen(host) > 512) {
		ups_conn_end(s);
		g->srv = NULL;
		return 500;
	}
	snprintf(url, sizeof url, "%s://%s%s%s:%d/", s->https ? "https" : "http", v6 ? "[" : "",
	         host, v6 ? "]" : "", s->port);
	curl_easy_setopt(e, CURLOPT_URL, url);
	g->state = U_CONNECT;
	if (curl_multi_add_handle(g->multi, e) != CURLM_OK) {
		ups_conn_end(s);
		g->srv = NULL;
		return 500;
	}
	g->in_multi = 1;
	/* curl_multi_add_handle only arms a 0 ms timer: start now */
	int running;
	curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	multi_check(g);
	return 0;
}

/* ------------------------------------------------------ the handshake */
/* the request as proxy.c would send it, plus Connection and Upgrade */
static char *build_handshake(gw_req *r, const char *upg, size_t ul, size_t *len)
{
	size_t pl = 0;
	const char *path = proxy_req_path(r, &pl);
	struct curl_slist *h = proxy_req_headers(r);
	if (!path || !h)
		return NULL;
	size_t n = r->method_len + 1 + pl + 1 + r->query_len + 11 + 21 + 9 + ul + 2 + 2;
	for (const struct curl_slist *s = h; s; s = s->next)
		n += strlen(s->data) + 3;
	char *b = malloc(n + 1), *p = b;
	if (!b)
		return NULL;
	p += sprintf(p, "%.*s %.*s%s%.*s HTTP/1.1\r\n", (int)r->method_len, r->method, (int)pl,
	             path, r->has_query ? "?" : "", (int)r->query_len, r->query);
	for (const struct curl_slist *s = h; s; s = s->next) {
		const char *d = s->data, *colon = strchr(d, ':');
		size_t dl = strlen(d);
		if (colon) {
			if (!colon[1])
				continue;               /* "Name:": a header curl must not add */
			memcpy(p, d, dl);
			p += dl;
		} else if (dl && d[dl - 1] == ';') {
			memcpy(p, d, dl - 1);       /* "Name;": empty value */
			p += dl - 1;
			*p++ = ':';
		} else {
			continue;
		}
		*p++ = '\r';
		*p++ = '\n';
	}
	p += sprintf(p, "Connection: Upgrade\r\nUpgrade: %.*s\r\n\r\n", (int)ul, upg);
	*len = (size_t)(p - b);
	return b;
}

static void parse_header_line(gw_upg *g, const char *l, size_t n)
{
	gw_req *r = g->r;
	const char *colon = memchr(l, ':', n);
	if (!colon || colon == l || l[0] == ' ' || l[0] == '\t')
		return;                         /* not a header (folding dropped) */
	size_t nl = (size_t)(colon - l);
	const char *v = colon + 1;
	size_t vl = n - nl - 1;
	trim(&v, &vl);
	if (nl == 14 && !strncasecmp(l, "content-length", 14)) {
		int64_t cl = 0;
		for (size_t i = 0; i < vl && isdigit((unsigned char)v[i]) && cl < INT64_MAX / 10; i++)
			cl = cl * 10 + (v[i] - '0');
		g->clen = cl;
	} else if (nl == 17 && !strncasecmp(l, "transfer-encoding", 17)) {
		g->chunked = has_token(v, vl, "chunked", 7);
	}
	char *name = srv_strndup(r, l, nl), *val = srv_strndup(r, v, vl);
	if (name && val)
		hlist_push(r, &g->rh, name, nl, val, vl, HDR_ADD);
}

static int body_put(gw_upg *g, const char *p, size_t n)
{
	if (g->body_len + n > UPGRADE_BODY_MAX)
		return -1;
	if (g->body_len + n > g->body_cap) {
		size_t cap = g->body_cap ? g->body_cap : 16384;
		while (cap < g->body_len + n)
			cap *= 2;
		char *b = realloc(g->body, cap);
		if (!b)
			return -1;
		g->body = b;
		g->body_cap = cap;
	}
	memcpy(g->body + g->body_len, p, n);
	g->body_len += n;
	return 0;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	     : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* a piece of a chunked body: 0 go on, 1 complete, -1 malformed/too large */
static int dechunk(gw_upg *g, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		char c = p[i];
		switch (g->ck_state) {
		case CK_SIZE: {
			int v = hexval((unsigned char)c);
			if (v >= 0) {
				if (g->ck_left > UPGRADE_BODY_MAX)
					return -1;
				g->ck_left = g->ck_left * 16 + (uint64_t)v;
				g->ck_digits++;
			} else if (c == ';' || c == ' ' || c == '\t') {
				g->ck_state = CK_EXT;
			} else if (c == '\r') {
				g->ck_state = CK_SIZE_LF;
			} else if (c == '\n') {
				goto size_line;
			} else {
				return -1;
			}
			i++;
			continue;
		}
		case CK_EXT:
			if (c == '\r')
				g->ck_state = CK_SIZE_LF;
			else if (c == '\n')
				goto size_line;
			i++;
			continue;
		case CK_SIZE_LF:
			if (c != '\n')
				return -1;
		size_line:
			i++;
			if (!g->ck_digits)
				return -1;
			g->ck_state = g->ck_left ? CK_DATA : CK_TRAILER;
			g->ck_line = 0;
			continue;
		case CK_DATA: {
			size_t k = n - i < g->ck_left ? n - i : (size_t)g->ck_left;
			if (body_put(g, p + i, k) != 0)
				return -1;
			i += k;
			g->ck_left -= k;
			if (!g->ck_left)
				g->ck_state = CK_DATA_CR;
			continue;
		}
		case CK_DATA_CR:
			if (c == '\r')
				g->ck_state = CK_DATA_LF;
			else if (c == '\n')
				g->ck_state = CK_SIZE;
			else
				return -1;
			g->ck_digits = 0;
			i++;
			continue;
		case CK_DATA_LF:
			if (c != '\n')
				return -1;
			g->ck_state = CK_SIZE;
			g->ck_digits = 0;
			i++;
			continue;
		case CK_TRAILER:
			if (c == '\r') {
				g->ck_state = CK_TRAILER_LF;
			} else if (c == '\n') {
				if (!g->ck_line)
					g->ck_state = CK_DONE;
				g->ck_line = 0;
			} else {
				g->ck_line++;
			}
			i++;
			if (g->ck_state == CK_DONE)
				return 1;
			continue;
		case CK_TRAILER_LF:
			if (c != '\n')
				return -1;
			i++;
			if (!g->ck_line) {
				g->ck_state = CK_DONE;
				return 1;
			}
			g->ck_line = 0;
			g->ck_state = CK_TRAILER;
			continue;
		default:
			return 1;
		}
	}
	return g->ck_state == CK_DONE;
}

/* body bytes of a non-101 answer: 0 more wanted, 1 complete, -1 error */
static int body_feed(gw_upg *g, const char *p, size_t n)
{
	if (g->chunked)
		return dechunk(g, p, n);
	if (g->clen >= 0) {
		size_t want = (size_t)g->clen - g->body_len;
		if (n > want)
			n = want;               /* anything after it is not ours */
		if (body_put(g, p, n) != 0)
			return -1;
		return g->body_len == (size_t)g->clen;
	}
	return body_put(g, p, n) == 0 ? 0 : -1;   /* until the upstream closes */
}

static void body_complete(gw_upg *g)
{
	report(g, 1);
	upstream_close(g);
	ready(g);
}

/* a complete head is in in[0..end): 0 go on, -1 failed (fail() called) */
static int head_parsed(gw_upg *g, size_t end)
{
	const char *h = g->in;
	int st = 0;
	if (end < 12 || memcmp(h, "HTTP/1.", 7) || h[8] != ' ' || !isdigit((unsigned char)h[9]) ||
	    !isdigit((unsigned char)h[10]) || !isdigit((unsigned char)h[11]) ||
	    (st = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0')) < 100) {
		report(g, 0);
		fail(g, 502, "upstream protocol error");
		return -1;
	}
	if (st < 200 && st != 101) {    /* 1xx: the real answer follows */
		memmove(g->in, g->in + end, g->in_len - end);
		g->in_len -= end;
		return 0;
	}
	g->status = st;
	g->head_len = end;
	g->clen = -1;
	g->rh.n = 0;
	const char *l = memchr(h, '\n', end) + 1;
	while (l < h + end) {
		const char *e = memchr(l, '\n', (size_t)(h + end - l));
		size_t n = (size_t)(e - l);
		if (n && l[n - 1] == '\r')
			n--;
		if (n)
			parse_header_line(g, l, n);
		l = e + 1;
	}
	if (st == 101) {
		report(g, 1);
		ready(g);                   /* what follows the head is relayed */
		watch_up(g, 0);
		return 0;
	}
	/* a normal answer: its body, then the client gets it */
	g->state = U_BODY;
	if (st == 204 || st == 304 || g->clen == 0) {
		body_complete(g);
		return 0;
	}
	if (!g->chunked && g->clen > UPGRADE_BODY_MAX) {
		report(g, 0);
		fail(g, 502, "upstream answer to an upgrade too large");
		return -1;
	}
	g->eof_body = !g->chunked && g->clen < 0;
	int rc = body_feed(g, g->in + end, g->in_len - end);
	if (rc < 0) {
		report(g, 0);
		fail(g, 502, "upstream answer to an upgrade malformed or too large");
		return -1;
	}
	if (rc == 1)
		body_complete(g);
	return 0;
}

/* in U_HEAD: look for the end of the head */
static int head_scan(gw_upg *g)
{
	for (;;) {
		char *e = memmem(g->in, g->in_len, "\r\n\r\n", 4);
		if (!e) {
			if (g->in_len == g->in_cap) {
				report(g, 0);
				fail(g, 502, "upstream answer head too large");
				return -1;
			}
			return 0;
		}
		size_t end = (size_t)(e - g->in) + 4;
		if (head_parsed(g, end) != 0)
			return -1;
		if (g->state != U_HEAD)
			return 0;
	}
}

/* U_SEND, U_HEAD, U_BODY: move the handshake along */
static void hs_io(gw_upg *g)
{
	while (g->state == U_SEND) {
		if (g->hs_sent == g->hs_len) {
			g->state = U_HEAD;
			g->last_io = gw_tl_now;
			break;
		}
		size_t n = 0;
		CURLcode rc = curl_easy_send(g->easy, g->hs + g->hs_sent, g->hs_len - g->hs_sent, &n);
		if (rc == CURLE_AGAIN) {
			watch_up(g, GW_IO_WRITE);
			return;
		}
		if (rc != CURLE_OK) {
			snprintf(g->errbuf, sizeof g->errbuf, "%s", curl_easy_strerror(rc));
			report(g, 0);
			fail(g, 502, "upstream connection failed");
			return;
		}
		g->hs_sent += n;
	}
	while (g->state == U_HEAD || g->state == U_BODY) {
		char tmp[16384], *dst;
		size_t room;
		if (g->state == U_HEAD) {
			dst = g->in + g->in_len;
			room = g->in_cap - g->in_len;
		} else {
			dst = tmp;
			room = sizeof tmp;
		}
		size_t n = 0;
		CURLcode rc = curl_easy_recv(g->easy, dst, room, &n);
		if (rc == CURLE_AGAIN) {
			watch_up(g, GW_IO_READ);
			return;
		}
		if (rc != CURLE_OK || n == 0) {
			if (rc == CURLE_OK && g->state == U_BODY && g->eof_body) {
				body_complete(g);   /* close-delimited body */
				return;
			}
			if (rc != CURLE_OK)
				snprintf(g->errbuf, sizeof g->errbuf, "%s", curl_easy_strerror(rc));
			report(g, 0);
			fail(g, 502, g->state == U_HEAD ? "upstream closed the connection before answering"
			                                : "upstream answer cut short");
			return;
		}
		g->last_io = gw_tl_now;
		if (g->state == U_HEAD) {
			g->in_len += n;
			if (head_scan(g) != 0)
				return;
		} else {
			int b = body_feed(g, tmp, n);
			if (b < 0) {
				report(g, 0);
				fail(g, 502, "upstream answer to an upgrade malformed or too large");
				return;
			}
			if (b == 1)
				body_complete(g);
		}
	}
}

static void on_up_io(int fd, unsigned events, void *arg)
{
	gw_upg *g = arg;
	if (g->state == U_CONNECT) {
		int mask = (events & GW_IO_READ ? CURL_CSELECT_IN : 0) |
		           (events & GW_IO_WRITE ? CURL_CSELECT_OUT : 0) |
		           (events & GW_IO_ERROR ? CURL_CSELECT_ERR : 0);
		int running;
		curl_multi_socket_action(g->multi, fd, mask, &running);
		multi_check(g);
		return;
	}
	if (g->state == U_RELAY) {
		relay_pump(g);
		/* EPOLLHUP/ERR fire whatever is watched: while the relay cannot
		 * read the rest (no room towards the client), stop watching; the
		 * next pump registers the socket again */
		if (g->state == U_RELAY && (events & GW_IO_ERROR) && !(g->uev & GW_IO_READ) &&
		    g->uwatch) {
			gw_loop_unwatch(g->ufd);
			g->uwatch = 0;
		}
		return;
	}
	if (g->state == U_SEND || g->state == U_HEAD || g->state == U_BODY)
		hs_io(g);
	else if (g->uwatch)
		watch_up(g, 0);         /* U_READY: quiet until the relay starts */
}

/* -------------------------------------------------------------- relay */
static void relay_close(gw_upg *g, const char *why)
{
	if (g->state != U_RELAY)
		return;
	if (g->cwatch) {
		gw_loop_unwatch(g->cfd);
		g->cwatch = 0;
	}
	if (g->urh) {
		/* MHD closes the client socket and completes the request in its
		 * next run */
		MHD_upgrade_action(g->urh, MHD_UPGRADE_ACTION_CLOSE);
		g->urh = NULL;
		g->r->w->mhd_dirty = 1;
	}
	g->cfd = -1;
	upstream_close(g);
	g->state = U_CLOSED;
	atomic_fetch_sub_explicit(&st_open, 1, memory_order_relaxed);
	log_debug("request %s: upgraded connection closed (%s): %llu bytes to the upstream, %llu "
	          "to the client", g->r->id, why, (unsigned long long)g->n_up,
	          (unsigned long long)g->n_down);
}

static void watch_client(gw_upg *g, unsigned ev)
{
	if (g->cwatch && ev == g->cev)
		return;
	if (gw_loop_watch(g->cfd, ev, on_client_io, g) == 0) {
		g->cwatch = 1;
		g->cev = ev;
	} else {
		relay_close(g, "cannot watch the client socket");
	}
}

/* move what can be moved, both ways; then decide what to wait for */
static void relay_pump(gw_upg *g)
{
	uint64_t up0 = g->n_up, down0 = g->n_down;
	for (int pass = 0; pass < 8 && g->state == U_RELAY; pass++) {
		int moved = 0;
		char *p;
		size_t k, n;
		/* client -> up ring */
		while (!g->c_eof && (k = ring_wspan(&g->up, &p)) > 0) {
			ssize_t m = recv(g->cfd, p, k, 0);
			if (m > 0) {
				g->up.len += (size_t)m;
				moved = 1;
			} else if (m == 0) {
				g->c_eof = 1;
			} else if (errno == EINTR) {
				continue;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				break;
			} else {
				relay_close(g, "client connection error");
				return;
			}
		}
		/* up ring -> upstream */
		while ((k = ring_rspan(&g->up, &p)) > 0) {
			n = 0;
			CURLcode rc = curl_easy_send(g->easy, p, k, &n);
			if (rc == CURLE_AGAIN)
				break;
			if (rc != CURLE_OK) {
				relay_close(g, "upstream connection error");
				return;
			}
			ring_took(&g->up, n);
			g->n_up += n;
			moved = 1;
		}
		/* upstream -> down ring */
		while (!g->u_eof && (k = ring_wspan(&g->down, &p)) > 0) {
			n = 0;
			CURLcode rc = curl_easy_recv(g->easy, p, k, &n);
			if (rc == CURLE_AGAIN)
				break;
			if (rc != CURLE_OK) {
				relay_close(g, "upstream connection error");
				return;
			}
			if (n == 0) {
				g->u_eof = 1;
			} else {
				g->down.len += n;
				moved = 1;
			}
		}
		/* down ring -> client */
		while ((k = ring_rspan(&g->down, &p)) > 0) {
			ssize_t m = send(g->cfd, p, k, MSG_NOSIGNAL);
			if (m > 0) {
				ring_took(&g->down, (size_t)m);
				g->n_down += (size_t)m;
				moved = 1;
			} else if (m < 0 && errno == EINTR) {
				continue;
			} else if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				break;
			} else {
				relay_close(g, "client connection error");
				return;
			}
		}
		if (!moved)
			break;
	}
	if (g->n_up != up0 || g->n_down != down0) {
		/* TLS clients: cfd is one end of MHD's socketpair; MHD moves the
		 * bytes between it and the TLS connection in MHD_run, and only
		 * as much as its per-connection buffers hold at a time. What
		 * GnuTLS has already decrypted raises no event: run MHD again
		 * whenever the relay moved something */
		if (g->r->tls)
			g->r->w->mhd_dirty = 1;
		g->last_io = gw_tl_now;
		atomic_fetch_add_explicit(&st_bytes_up, g->n_up - up0, memory_order_relaxed);
		atomic_fetch_add_explicit(&st_bytes_down, g->n_down - down0, memory_order_relaxed);
	}
	/* an end of stream is passed on once what came before it is out. TLS
	 * to the upstream cannot be half-closed through libcurl: the client's
	 * end closes everything there */
	if (g->c_eof && !g->up.len && !g->up_shut) {
		g->up_shut = 1;
		if (g->https) {
			relay_close(g, "client closed");
			return;
		}
		shutdown(g->ufd, SHUT_WR);
	}
	if (g->u_eof && !g->down.len && !g->down_shut) {
		g->down_shut = 1;
		/* a TLS client's socket is MHD's socketpair, and libmicrohttpd
		 * 0.9.75 does not pass a half-close on to the TLS connection:
		 * close (MHD still sends what it has) */
		if (g->r->tls) {
			relay_close(g, "upstream closed");
			return;
		}
		shutdown(g->cfd, SHUT_WR);
	}
	if (g->up_shut && g->down_shut) {
		relay_close(g, "both sides closed");
		return;
	}
	/* read a side only while there is room towards the other one */
	watch_client(g, (!g->c_eof && g->up.len < g->up.cap ? GW_IO_READ : 0u) |
	                (g->down.len ? GW_IO_WRITE : 0u));
	if (g->state == U_RELAY)
		watch_up(g, (!g->u_eof && g->down.len < g->down.cap ? GW_IO_READ : 0u) |
		            (g->up.len ? GW_IO_WRITE : 0u));
}

static void on_client_io(int fd, unsigned events, void *arg)
{
	gw_upg *g = arg;
	(void)fd;
	if (g->state != U_RELAY)
		return;
	relay_pump(g);
	/* EPOLLHUP/ERR with nothing to read: the client is gone both ways
	 * (a half-close alone reports no HUP); nothing more can reach it */
	if (g->state == U_RELAY && (events & GW_IO_ERROR) && !(events & GW_IO_READ))
		relay_close(g, "client gone");
}

/* MHD sent the 101: the client socket is ours (until MHD_upgrade_action
 * CLOSE). extra_in: bytes the client sent after its head */
static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
                        const char *extra_in, size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
	gw_upg *g = cls;
	(void)conn; (void)con_cls;
	g->cfd = sock;
	g->urh = urh;
	/* MHD's sockets are non-blocking (the TLS socketpair too, in 0.9.75);
	 * the relay depends on it, so make sure */
	int fl = fcntl(sock, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(sock, F_SETFL, fl | O_NONBLOCK);
	size_t pre = g->in_len - g->head_len;   /* upstream bytes after its 101 */
	if (g->state != U_READY || g->ufd < 0 ||
	    ring_init(&g->up, UPGRADE_RING, extra_in, extra_in_size) != 0 ||
	    ring_init(&g->down, UPGRADE_RING, g->in + g->head_len, pre) != 0) {
		log_warn("request %s: upgrade: no relay (out of memory or upstream gone)", g->r->id);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		g->urh = NULL;
		g->r->w->mhd_dirty = 1;
		upstream_close(g);
		g->state = U_CLOSED;
		return;
	}
	free(g->in);
	g->in = NULL;
	g->in_len = g->in_cap = g->head_len = 0;
	g->state = U_RELAY;
	g->last_io = gw_tl_now;
	atomic_fetch_add_explicit(&st_upgraded, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st_open, 1, memory_order_relaxed);
	log_debug("request %s: upgraded (%s)", g->r->id, g->srv ? g->srv->addr : "?");
	relay_pump(g);
}

/* --------------------------------------------------------- the tick */
/* idle time allowed once one side has ended its stream: a half-closed
 * relay is kept for the other direction, but not for long */
static uint32_t fin_ms(const gw_upg *g)
{
	return g->timeout_ms < UPGRADE_FIN_MS ? g->timeout_ms : UPGRADE_FIN_MS;
}

static void tick_cb(void *arg)
{
	upg_worker *uw = arg;
	uw->tick_due = 0;
	uw->in_tick = 1;
	uint64_t now = gw_tl_now;
	gw_worker *w = NULL;
	int scan = now >= uw->next_scan;
	if (scan)
		uw->next_scan = now + IDLE_SCAN_MS;
	for (gw_upg *g = uw->list.next, *nx; g != &uw->list; g = nx) {
		nx = g->next;
		w = g->r->w;
		/* a graceful stop: relays end at the drain deadline, handshakes
		 * still waiting get 503 */
		if (w->draining && now >= w->drain_deadline) {
			if (g->state == U_RELAY)
				relay_close(g, "drain timeout");
			else if (g->state < U_READY)
				fail(g, 503, "shutting down");
			continue;
		}
		if (g->state == U_CONNECT && g->curl_due && now >= g->curl_due) {
			g->curl_due = 0;
			int running;
			curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
			multi_check(g);
		} else if (g->state >= U_SEND && g->state <= U_BODY &&
		           now - g->last_io >= g->timeout_ms) {
			snprintf(g->errbuf, sizeof g->errbuf, "no answer for %u ms", g->timeout_ms);
			report(g, 0);
			fail(g, 504, "upstream timeout");
		} else if (scan && g->state == U_RELAY &&
		           now - g->last_io >= (g->up_shut || g->down_shut ? fin_ms(g) : g->timeout_ms)) {
			atomic_fetch_add_explicit(&st_idle, 1, memory_order_relaxed);
			relay_close(g, "idle timeout");
		}
		if (g->state == U_CONNECT && g->curl_due)
			tick_arm(uw, g->curl_due);
	}
	uw->in_tick = 0;
	if (uw->n) {
		uint64_t due = now + TICK_MS;
		if (w && w->draining && w->drain_deadline > now && w->drain_deadline < due)
			due = w->drain_deadline;
		tick_arm(uw, due);
	} else {
		worker_release(uw);
	}
}

/* ------------------------------------------------------- srv.c hooks */
/* a token other than websocket: allowed when the route's match tests
 * header("Upgrade") == that value */
static int route_allows(const gw_req *r, const char *v, size_t n)
{
	const uint32_t *code = gwb_code(r->t);
	for (uint32_t pc = r->rt->match_pc; pc < r->rt->match_end;) {
		uint32_t op = code[pc] & 0xff;
		const gwb_opinfo *oi = gwb_opinfo_get(op);
		if (!oi)
			break;
		if (op == GWB_OP_HEADER_EQ) {
			size_t nl, vl;
			const char *name = gwb_str(r->t, code[pc + 1], &nl);
			const char *val = gwb_str(r->t, code[pc + 2], &vl);
			if (nl == 7 && !strncasecmp(name, "upgrade", 7) && vl == n &&
			    !strncasecmp(val, v, n))
				return 1;
		}
		pc += 1 + oi->nargs;
	}
	return 0;
}

int upgrade_wanted(gw_req *r)
{
	const char *v;
	size_t n;
	if (r->http10 || r->has_body || r->w->draining || !r->rt ||
	    (r->mbit & (GWB_M_HEAD | GWB_M_CONNECT)))
		return 0;
	/* Upgrade first: the one most requests lack (one header scan) */
	if (!gw_req_header(r, "Upgrade", &v, &n))
		return 0;
	const char *cv;
	size_t cn;
	if (!gw_req_header(r, "Connection", &cv, &cn) || !has_token(cv, cn, "upgrade", 7))
		return 0;
	trim(&v, &n);
	if (!n)
		return 0;
	if (n == 9 && !strncasecmp(v, "websocket", 9))
		return r->mbit == GWB_M_GET;
	return route_allows(r, v, n);
}

int upgrade_start(gw_req *r)
{
	ups_upstream *u = r->tab->ups[r->proxy_ups];
	if (!u)
		return 503;
	upg_worker *uw = worker_state();
	if (!uw)
		return 500;
	/* a cache fill started for this request never gets an answer */
	if (r->tap) {
		const gw_resp_tap *t = r->tap;
		r->tap = NULL;
		t->end(r, r->tap_arg, 0);
	}
	const char *v;
	size_t vn;
	gw_req_header(r, "Upgrade", &v, &vn);
	trim(&v, &vn);
	gw_upg *g = calloc(1, sizeof *g);
	if (!g) {
		worker_release(uw);
		return 500;
	}
	g->r = r;
	g->uw = uw;
	g->ufd = g->cfd = -1;
	g->u = u;
	g->uo = gwb_upstream_at(r->t, r->proxy_ups);
	g->timeout_ms = r->proxy_timeout_ms ? r->proxy_timeout_ms
	              : g->uo->read_timeout_ms ? g->uo->read_timeout_ms : DEFAULT_READ_TIMEOUT_MS;
	g->hs = build_handshake(r, v, vn, &g->hs_len);
	g->in_cap = UPGRADE_HEAD_MAX;
	g->in = malloc(g->in_cap);
	g->multi = curl_multi_init();
	g->easy = curl_easy_init();
	if (!g->hs || !g->in || !g->multi || !g->easy) {
		free(g->hs);
		free(g->in);
		if (g->easy)
			curl_easy_cleanup(g->easy);
		if (g->multi)
			curl_multi_cleanup(g->multi);
		free(g);
		worker_release(uw);
		return 500;
	}
	r->upg = g;
	g->snap = ups_acquire(u);
	g->prev = &uw->list;
	g->next = uw->list.next;
	uw->list.next->prev = g;
	uw->list.next = g;
	uw->n++;
	curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, m_sock_cb);
	curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
	curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, m_timer_cb);
	curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
	CURL *e = g->easy;
	curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, g);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, g->errbuf);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* HTTP/1.1 in the TLS ALPN offer too: the handshake is HTTP/1.1 */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(g->uo->connect_timeout_ms ? g->uo->connect_timeout_ms
	                                                 : DEFAULT_CONNECT_TIMEOUT_MS));
	atomic_fetch_add_explicit(&st_handshakes, 1, memory_order_relaxed);
	tick_arm(uw, gw_tl_now + TICK_MS);
	int st = attempt(g);
	if (st) {
		/* nothing started (no server, or libcurl refused): answer st */
		r->upg = NULL;
		g->prev->next = g->next;
		g->next->prev = g->prev;
		uw->n--;
		upstream_close(g);
		ups_release(g->snap);
		free(g->hs);
		free(g->in);
		free(g);
		worker_release(uw);
		return st;
	}
	return 0;
}

enum MHD_Result upgrade_final(gw_req *r)
{
	gw_upg *g = r->upg;
	if (g->state < U_READY) {
		g->head_wait = 1;
		if (!r->suspended) {
			r->suspended = 1;
			MHD_suspend_connection(r->conn);
		}
		return MHD_YES;
	}
	if (g->failed || (g->status == 101 && r->w->draining)) {
		upstream_close(g);
		srv_queue_error(r, g->failed ? g->failed : 503,
		                g->failed ? g->fail_msg : "shutting down");
		return MHD_YES;
	}
	/* the upstream's headers, hop-by-hop ones out (MHD writes Connection
	 * and, for a body, Content-Length); a 101 keeps its Upgrade */
	const char *ct = NULL;
	size_t ctl = 0;
	for (size_t i = 0; i < g->rh.n; i++)
		if (g->rh.v[i].nlen == 10 && !strncasecmp(g->rh.v[i].name, "connection", 10)) {
			ct = g->rh.v[i].val;
			ctl = g->rh.v[i].vlen;
		}
	for (size_t i = 0; i < g->rh.n; i++) {
		gw_hdr *h = &g->rh.v[i];
		int keep = g->status == 101 && h->nlen == 7 && !strncasecmp(h->name, "upgrade", 7);
		if (!keep && (hop_by_hop(h->name, h->nlen) ||
		              (ct && has_token(ct, ctl, h->name, h->nlen))))
			h->nlen = 0;
	}
	struct MHD_Response *resp;
	if (g->status == 101)
		resp = MHD_create_response_for_upgrade(on_upgraded, g);
	else
		resp = MHD_create_response_from_buffer(g->body_len, g->body ? g->body : (void *)"",
		                                       MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		upstream_close(g);
		srv_queue_error(r, 500, NULL);
		return MHD_YES;
	}
	srv_queue(r, g->status, resp, &g->rh);
	return MHD_YES;
}

void upgrade_done(gw_req *r)
{
	gw_upg *g = r->upg;
	if (!g)
		return;
	r->upg = NULL;
	if (g->state == U_RELAY) {
		/* MHD ended the request with the relay open (cannot happen before
		 * MHD_upgrade_action CLOSE; kept for safety) */
		relay_close(g, "request ended");
	}
	upstream_close(g);
	g->prev->next = g->next;
	g->next->prev = g->prev;
	upg_worker *uw = g->uw;
	uw->n--;
	if (g->snap)
		ups_release(g->snap);
	free(g->hs);
	free(g->in);
	free(g->body);
	free(g->up.buf);
	free(g->down.buf);
	free(g);
	worker_release(uw);
}

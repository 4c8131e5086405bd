/*
 * proxy.c — the libcurl side of gwd: one pooled easy handle per in-flight
 * proxied request, driven by the worker's multi handle (socket API, no
 * thread per request). Bodies stream both ways through two bounded rings:
 *
 *   client --MHD upload calls--> up ring --read callback--> curl --> upstream
 *   client <--MHD reader------ down ring <--write callback-- curl <-- upstream
 *
 * A full ring pauses its producer (MHD: suspend the connection; curl:
 * CURL_WRITEFUNC_PAUSE), an empty one pauses its consumer (curl:
 * CURL_READFUNC_PAUSE; MHD: suspend in the content reader); the other side
 * resumes it. Unpausing curl is deferred to after MHD_run (curl may call
 * back synchronously from curl_easy_pause).
 *
 * A response whose Content-Length fits the down ring is sent only when it
 * is complete, as one buffer: MHD then writes head and body with one
 * sendmsg, and the connection is resumed once instead of several times.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "tls.h"

#define RING_UP    (64 * 1024)
#define RING_DOWN  (64 * 1024)
#define PX_POOL_MAX 512
#define DEFAULT_READ_TIMEOUT_MS 60000u
#define DEFAULT_CONNECT_TIMEOUT_MS 5000u

/* --------------------------------------------------------------- rings */
static size_t ring_free(const gw_ring *g) { return g->cap - g->len; }

static size_t ring_put(gw_ring *g, const char *p, size_t n)
{
	size_t k = ring_free(g);
	if (n > k)
		n = k;
	size_t tail = (g->head + g->len) % g->cap, first = g->cap - tail;
	if (first > n)
		first = n;
	memcpy(g->buf + tail, p, first);
	memcpy(g->buf, p + first, n - first);
	g->len += n;
	return n;
}

static size_t ring_get(gw_ring *g, char *p, size_t n)
{
	if (n > g->len)
		n = g->len;
	size_t first = g->cap - g->head;
	if (first > n)
		first = n;
	memcpy(p, g->buf + g->head, first);
	memcpy(p + first, g->buf, n - first);
	g->head = (g->head + n) % g->cap;
	g->len -= n;
	if (!g->len)
		g->head = 0;
	return n;
}

/* ------------------------------------------------------------- helpers */
static int hop_by_hop(const char *n, size_t len)
{
	switch (len) {
	case 2: return !strncasecmp(n, "te", 2);
	case 7: return !strncasecmp(n, "trailer", 7) || !strncasecmp(n, "upgrade", 7);
	case 10: return !strncasecmp(n, "connection", 10) || !strncasecmp(n, "keep-alive", 10);
	case 16: return !strncasecmp(n, "proxy-connection", 16);
	case 17: return !strncasecmp(n, "transfer-encoding", 17);
	case 19: return !strncasecmp(n, "proxy-authorization", 19);
	default: return 0;
	}
}

/* is name one of the comma-separated tokens of a Connection header? */
static int in_tokens(const char *list, size_t ll, const char *n, size_t len)
{
	size_t i = 0;
	while (i < ll) {
		while (i < ll && (list[i] == ',' || list[i] == ' ' || list[i] == '\t'))
			i++;
		size_t s = i;
		while (i < ll && list[i] != ',' && list[i] != ' ' && list[i] != '\t')
			i++;
		if (i - s == len && !strncasecmp(list + s, n, len))
			return 1;
	}
	return 0;
}

static int idempotent(uint32_t mbit)
{
	return (mbit & (GWB_M_GET | GWB_M_HEAD | GWB_M_PUT | GWB_M_DELETE |
	                GWB_M_OPTIONS | GWB_M_TRACE)) != 0;
}

/* ------------------------------------------------------ curl callbacks */
static ups_server *pick(gw_proxy *px);
static size_t hdr_cb(char *buf, size_t size, size_t nmemb, void *ud);
static size_t write_cb(char *buf, size_t size, size_t nmemb, void *ud);
static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud);

static int close_cb(void *clientp, curl_socket_t fd)
{
	gw_worker *w = clientp;
	if (fd >= 0 && (size_t)fd < w->nsock)
		w->sock[fd] = 0;
	return close(fd);
}

static gw_proxy *px_get(gw_worker *w)
{
	gw_proxy *px = w->free_px;
	if (px) {
		w->free_px = px->next;
		w->nfree_px--;
		return px;
	}
	px = calloc(1, sizeof *px);
	if (!px)
		return NULL;
	px->w = w;
	px->up.buf = malloc(RING_UP);
	px->down.buf = malloc(RING_DOWN);
	px->easy = curl_easy_init();
	if (!px->up.buf || !px->down.buf || !px->easy) {
		free(px->up.buf);
		free(px->down.buf);
		if (px->easy)
			curl_easy_cleanup(px->easy);
		free(px);
		return NULL;
	}
	px->up.cap = RING_UP;
	px->down.cap = RING_DOWN;
	CURL *e = px->easy;
	/* options that never change: set once per pooled handle */
	curl_easy_setopt(e, CURLOPT_PRIVATE, px);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, hdr_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, px);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, px);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(e, CURLOPT_READDATA, px);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, w);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, px->errbuf);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* "" = no proxy, and no getenv("http_proxy"...) on every request */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	/* read a 16 KiB response and its head with one recv, not two (curl
	 * still hands the write callback at most CURL_MAX_WRITE_SIZE at once) */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 65536L);
	return px;
}

static void px_put(gw_worker *w, gw_proxy *px)
{
	if (w->nfree_px < PX_POOL_MAX) {
		px->next = w->free_px;
		w->free_px = px;
		w->nfree_px++;
		return;
	}
	curl_easy_cleanup(px->easy);
	free(px->up.buf);
	free(px->down.buf);
	free(px);
}

static void queue_unpause(gw_proxy *px)
{
	if (px->unpause_queued)
		return;
	px->unpause_queued = 1;
	px->unext = px->w->unpause;
	px->w->unpause = px;
}

/* the response tap (plugin.h gw_req_tap_response): ends once */
static void tap_end(gw_proxy *px, int ok)
{
	gw_req *r = px->r;
	if (r && r->tap) {
		const gw_resp_tap *t = r->tap;
		r->tap = NULL;
		t->end(r, r->tap_arg, ok);
	}
}

/* curl calls this for each header line of each response (1xx included) */
static size_t hdr_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
	gw_proxy *px = ud;
	gw_req *r = px->r;
	size_t len = size * nmemb;
	px->last_io_ms = gw_tl_now;
	if (!r)
		return 0;
	if (len >= 5 && !memcmp(buf, "HTTP/", 5)) {
		const char *sp = memchr(buf, ' ', len);
		int st = 0;
		if (sp && (size_t)(sp - buf) + 4 <= len && isdigit((unsigned char)sp[1]) &&
		    isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
			st = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
		if (st < 100)
			return 0;          /* not HTTP: protocol error (502) */
		px->status = st;
		px->head_state = 1;
		px->clen = -1;
		px->rh.n = 0;
		return len;
	}
	size_t n = len;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0) {                       /* end of a head */
		if (px->status < 200) {
			px->head_state = 0;     /* 1xx: the real head follows */
			return len;
		}
		/* a status the upstream is configured to be retried on */
		const gwb_upstream *uo = px->uo;
		if (px->attempts <= uo->retries && idempotent(r->mbit) && !r->has_body)
			for (int i = 0; i < 4; i++)
				if (uo->retry_status[i] && uo->retry_status[i] == (uint32_t)px->status) {
					/* retry only when another server can take it; else
					 * this response is the answer */
					if (px->ntried < sizeof px->tried / sizeof px->tried[0] &&
					    (px->next_srv = pick(px))) {
						px->abort_retry = 1;
						return 0;
					}
					break;
				}
		px->head_state = 2;
		if (r->tap)
			r->tap->head(r, r->tap_arg);
		srv_proxy_event(r);
		return len;
	}
	if (buf[0] == ' ' || buf[0] == '\t')
		return len;                    /* obsolete line folding: dropped */
	const char *colon = memchr(buf, ':', n);
	if (!colon || colon == buf)
		return len;
	size_t nl = (size_t)(colon - buf);
	const char *v = colon + 1;
	while (v < buf + n && (*v == ' ' || *v == '\t'))
		v++;
	size_t vl = (size_t)(buf + n - v);
	if (nl == 14 && !strncasecmp(buf, "Content-Length", 14)) {
		int64_t cl = 0;
		for (size_t i = 0; i < vl && isdigit((unsigned char)v[i]); i++)
			cl = cl * 10 + (v[i] - '0');
		px->clen = cl;
		return len;                     /* MHD writes its own */
	}
	char *name = srv_strndup(r, buf, nl), *val = srv_strndup(r, v, vl);
	if (!name || !val || hlist_push(r, &px->rh, name, nl, val, vl, HDR_ADD) != 0)
		return 0;
	return len;
}

static size_t write_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
	gw_proxy *px = ud;
	size_t len = size * nmemb;
	px->last_io_ms = gw_tl_now;
	if (!px->r)
		return 0;
	if (ring_free(&px->down) < len) {
		px->down_paused = 1;
		return CURL_WRITEFUNC_PAUSE;   /* redelivered when unpaused */
	}
	ring_put(&px->down, buf, len);
	if (px->r->tap)
		px->r->tap->body(px->r, px->r->tap_arg, buf, len);
	if (px->reader_wait)
		srv_proxy_event(px->r);
	return len;
}

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
	gw_proxy *px = ud;
	px->last_io_ms = gw_tl_now;
	if (!px->r)
		return CURL_READFUNC_ABORT;
	if (!px->up.len) {
		if (px->up_end)
			return 0;
		px->up_paused = 1;
		return CURL_READFUNC_PAUSE;
	}
	size_t n = ring_get(&px->up, buf, size * nmemb);
	if (px->body_wait)
		srv_proxy_event(px->r);
	return n;
}

/* ----------------------------------------------------------- requests */
static struct curl_slist *slist_add(gw_req *r, struct curl_slist **tail, char *line)
{
	struct curl_slist *s = srv_alloc(r, sizeof *s);
	if (!s)
		return NULL;
	s->data = line;
	s->next = NULL;
	(*tail)->next = s;
	*tail = s;
	return s;
}

static char *hline(gw_req *r, const char *n, size_t nl, const char *v, size_t vl)
{
	char *p = srv_alloc(r, nl + vl + 3);
	if (!p)
		return NULL;
	memcpy(p, n, nl);
	if (vl == 0) {
		p[nl] = ';';             /* curl: "Name;" sends an empty value */
		p[nl + 1] = '\0';
		return p;
	}
	p[nl] = ':';
	p[nl + 1] = ' ';
	memcpy(p + nl + 2, v, vl);
	p[nl + 2 + vl] = '\0';
	return p;
}

typedef struct hb {
	gw_req *r;
	struct curl_slist head, *tail;
	const char *conn_tokens; size_t conn_len;
	char *xff; size_t xff_len;
	int have_accept;
	int oom;
} hb;

/* headers gwd writes itself (or that curl must write) */
static int ours(const char *k, size_t n)
{
	switch (n) {
	case 4: return !strncasecmp(k, "host", 4);
	case 6: return !strncasecmp(k, "expect", 6);
	case 9: return !strncasecmp(k, "x-real-ip", 9);
	case 12: return !strncasecmp(k, "x-request-id", 12);
	case 14: return !strncasecmp(k, "content-length", 14);
	case 15: return !strncasecmp(k, "x-forwarded-for", 15);
	case 16: return !strncasecmp(k, "x-forwarded-host", 16);
	case 17: return !strncasecmp(k, "x-forwarded-proto", 17);
	default: return 0;
	}
}

static enum MHD_Result hb_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                               size_t ks, const char *val, size_t vs)
{
	hb *b = cls;
	gw_req *r = b->r;
	(void)kind;
	vs = srv_value_len(val, vs);
	if (hop_by_hop(key, ks) || (b->conn_tokens && in_tokens(b->conn_tokens, b->conn_len, key, ks)))
		return MHD_YES;
	if (ks == 15 && !strncasecmp(key, "x-forwarded-for", 15) && vs) {
		/* several X-Forwarded-For lines are one list */
		size_t nl = b->xff_len ? b->xff_len + 2 + vs : vs;
		char *x = srv_alloc(r, nl + 1);
		if (!x) {
			b->oom = 1;
			return MHD_NO;
		}
		if (b->xff_len) {
			memcpy(x, b->xff, b->xff_len);
			memcpy(x + b->xff_len, ", ", 2);
		}
		memcpy(x + (b->xff_len ? b->xff_len + 2 : 0), val, vs);
		b->xff = x;
		b->xff_len = nl;
		return MHD_YES;
	}
	if (ours(key, ks) || hlist_find(&r->req_edits, key, ks))
		return MHD_YES;
	if (ks == 6 && !strncasecmp(key, "accept", 6))
		b->have_accept = 1;
	char *l = hline(r, key, ks, val, vs);
	if (!l || !slist_add(r, &b->tail, l)) {
		b->oom = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

static int hb_add(hb *b, const char *n, const char *v, size_t vl)
{
	if (hlist_find(&b->r->req_edits, n, strlen(n)))
		return 0;                 /* the route set (or removed) it */
	char *l = hline(b->r, n, strlen(n), v, vl);
	return l && slist_add(b->r, &b->tail, l) ? 0 : -1;
}

static struct curl_slist *build_headers(gw_req *r)
{
	hb b = { .r = r };
	b.tail = &b.head;
	b.head.next = NULL;
	srv_header_raw_n(r, "Connection", 10, &b.conn_tokens, &b.conn_len);
	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, hb_iter, &b);
	if (b.oom)
		return NULL;
	int rc = 0;
	const gw_hdr *hh = hlist_find(&r->req_edits, "Host", 4);
	if (!hh && r->host)
		rc |= hb_add(&b, "Host", r->host, r->host_len);
	size_t iplen = strlen(r->ipstr);
	if (b.xff_len) {
		char *x = srv_alloc(r, b.xff_len + 2 + iplen + 1);
		if (!x)
			return NULL;
		memcpy(x, b.xff, b.xff_len);
		memcpy(x + b.xff_len, ", ", 2);
		memcpy(x + b.xff_len + 2, r->ipstr, iplen);
		rc |= hb_add(&b, "X-Forwarded-For", x, b.xff_len + 2 + iplen);
	} else {
		rc |= hb_add(&b, "X-Forwarded-For", r->ipstr, iplen);
	}
	rc |= hb_add(&b, "X-Forwarded-Proto", r->tls ? "https" : "http", r->tls ? 5 : 4);
	if (r->host)
		rc |= hb_add(&b, "X-Forwarded-Host", r->host, r->host_len);
	rc |= hb_add(&b, "X-Real-IP", r->ipstr, iplen);
	rc |= hb_add(&b, "X-Request-Id", r->id, strlen(r->id));
	/* the route's set_header request edits (last one of a name wins) */
	for (size_t i = 0; i < r->req_edits.n; i++) {
		const gw_hdr *e = &r->req_edits.v[i];
		if (e->op == HDR_DEL || hlist_find(&r->req_edits, e->name, e->nlen) != e)
			continue;
		char *l = hline(r, e->name, e->nlen, e->val, e->vlen);
		if (!l || !slist_add(r, &b.tail, l))
			return NULL;
	}
	/* what curl would add on its own */
	rc |= slist_add(r, &b.tail, "Expect:") ? 0 : -1;
	if (!b.have_accept)
		rc |= slist_add(r, &b.tail, "Accept:") ? 0 : -1;
	if (rc)
		return NULL;
	return b.head.next;
}

/* the path sent upstream: the client's bytes when normalisation changed
 * nothing, else the normalised (and rewritten) path, re-encoded */
static const char *upstream_path(gw_req *r, size_t *len)
{
	if (!r->path_changed) {
		*len = r->rawpath_len;
		return r->uri;
	}
	static const char hex[] = "0123456789ABCDEF";
	char *p = srv_alloc(r, r->path_len * 3 + 1);
	if (!p)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < r->path_len; i++) {
		unsigned char c = (unsigned char)r->path[i];
		if (isalnum(c) || strchr("/-._~!$&'()*+,;=:@", c)) {
			p[k++] = (char)c;
		} else {
			p[k++] = '%';
			p[k++] = hex[c >> 4];
			p[k++] = hex[c & 15];
		}
	}
	p[k] = '\0';
	*len = k;
	return p;
}

/* choose a server not tried yet for this request; NULL if none */
static ups_server *pick(gw_proxy *px)
{
	gw_req *r = px->r;
	ups_pick_ctx pc = {
		.worker = px->w->idx,
		.client_ip = r->ip, .client_ip_len = r->ip_family == 6 ? 16 : 4,
		.exclude = px->tried, .nexclude = px->ntried,
		.now_ms = gw_tl_now,
	};
	if (px->uo->balance == GWB_BAL_HASH) {
		const char *kv = NULL;
		size_t kl = 0;
		const char *kn = gwb_str(r->t, px->uo->hash_name, NULL);
		switch (px->uo->hash_key) {
		case GWB_KEY_HEADER: gw_req_header(r, kn, &kv, &kl); break;
		case GWB_KEY_CLIENT_IP: kv = r->ipstr; kl = strlen(kv); break;
		case GWB_KEY_PATH: kv = r->path; kl = r->path_len; break;
		case GWB_KEY_ROUTE: kv = gwb_str(r->t, r->rt->name, &kl); break;
		case GWB_KEY_QUERY: {
			/* raw value of the first kn= argument */
			size_t nn = strlen(kn);
			for (size_t i = 0; i + nn < r->query_len + 1; i++) {
				if ((i == 0 || r->query[i - 1] == '&') && !strncmp(r->query + i, kn, nn) &&
				    r->query[i + nn] == '=') {
					kv = r->query + i + nn + 1;
					const char *e = memchr(kv, '&', r->query_len - (size_t)(kv - r->query));
					kl = e ? (size_t)(e - kv) : r->query_len - (size_t)(kv - r->query);
					break;
				}
			}
			break;
		}
		default: break;
		}
		pc.hash_key = kv;
		pc.hash_key_len = kl;
	}
	return ups_pick(px->u, px->snap, &pc);
}

/* scheme://host:port/path?query into url (sized by the caller); by hand
 * because snprintf's format parsing was 1.6 % of gwd's instructions per
 * proxied request */
static void url_build(char *url, int https, const char *host, int v6, int port,
                      const char *path, size_t pl, const char *query, size_t ql)
{
	char *o = url, digits[8];
	size_t hl = strlen(host), nd = 0;
	memcpy(o, https ? "https://" : "http://", https ? 8 : 7);
	o += https ? 8 : 7;
	if (v6)
		*o++ = '[';
	memcpy(o, host, hl);
	o += hl;
	if (v6)
		*o++ = ']';
	*o++ = ':';
	do
		digits[nd++] = (char)('0' + port % 10);
	while ((port /= 10) > 0 && nd < sizeof digits);
	while (nd)
		*o++ = digits[--nd];
	memcpy(o, path, pl);
	o += pl;
	if (query) {
		*o++ = '?';
		memcpy(o, query, ql);
		o += ql;
	}
	*o = '\0';
}

/* one attempt: pick a server (unless the head callback already chose the
 * one to retry on), point the handle at it, add it to multi.
 * 0 ok; 503 when no server is available */
static int attempt(gw_proxy *px)
{
	gw_req *r = px->r;
	gw_worker *w = px->w;
	ups_server *s = px->next_srv ? px->next_srv : pick(px);
	px->next_srv = NULL;
	if (!s)
		return 503;
	px->srv = s;
	if (px->ntried < sizeof px->tried / sizeof px->tried[0])
		px->tried[px->ntried++] = s;
	px->attempts++;

	size_t pl = 0;
	const char *path = upstream_path(r, &pl);
	CURL *e = px->easy;
	/* https: TLS options (tls.c); the URL names tls_sni when one is set */
	const char *host = s->https ? tls_upstream_prepare(e, r, px->uo, s) : s->host;
	if (!s->https)
		tls_upstream_plain(e);
	if (!host)
		return 500;
	int v6 = strchr(host, ':') != NULL;
	size_t ul = 8 + strlen(host) + 2 + 6 + pl + 1 + r->query_len + 1;
	char *url = srv_alloc(r, ul);
	if (!path || !url)
		return 500;
	url_build(url, s->https, host, v6, s->port, path, pl,
	          r->has_query ? (r->query ? r->query : "") : NULL,
	          r->query_len);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(px->uo->connect_timeout_ms ? px->uo->connect_timeout_ms
	                                                  : DEFAULT_CONNECT_TIMEOUT_MS));
	px->head_state = 0;
	px->status = 0;
	px->clen = -1;
	px->rh.n = 0;
	px->abort_retry = 0;
	px->done = 0;
	px->failed = 0;
	px->fail_msg = NULL;
	px->last_io_ms = gw_tl_now;
	ups_conn_begin(s);
	if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
		ups_conn_end(s);
		return 500;
	}
	px->in_multi = 1;
	return 0;
}

int proxy_start(gw_req *r)
{
	gw_worker *w = r->w;
	const gw_tab *tab = r->tab;
	ups_upstream *u = tab->ups[r->proxy_ups];
	if (!u)
		return 503;
	gw_proxy *px = px_get(w);
	if (!px)
		return 500;
	px->r = r;
	r->px = px;
	px->u = u;
	px->uo = gwb_upstream_at(r->t, r->proxy_ups);
	px->snap = ups_acquire(u);
	px->ntried = 0;
	px->attempts = 0;
	px->up.head = px->up.len = 0;
	px->down.head = px->down.len = 0;
	px->up_end = !r->has_body;
	px->up_paused = px->down_paused = px->unpause_queued = 0;
	px->started = px->streaming = 0;
	px->reader_wait = px->body_wait = px->head_wait = 0;
	px->in_multi = 0;
	px->srv = px->next_srv = NULL;
	px->rh.v = NULL;
	px->rh.n = px->rh.cap = 0;
	px->timeout_ms = r->proxy_timeout_ms ? r->proxy_timeout_ms
	               : px->uo->read_timeout_ms ? px->uo->read_timeout_ms
	               : DEFAULT_READ_TIMEOUT_MS;
	/* active list (read timeouts) */
	px->prev = &w->active;
	px->next = w->active.next;
	w->active.next->prev = px;
	w->active.next = px;

	struct curl_slist *h = build_headers(r);
	if (!h)
		return 500;
	CURL *e = px->easy;
	/* HTTPGET resets NOBODY and UPLOAD left by the handle's last request */
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	if (r->mbit == GWB_M_GET) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	} else if (r->mbit == GWB_M_HEAD) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, srv_strndup(r, r->method, r->method_len));
	}
	if (r->has_body || (r->content_length == 0 && r->mbit != GWB_M_GET && r->mbit != GWB_M_HEAD)) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
		                 (curl_off_t)(r->content_length >= 0 ? r->content_length : -1));
	}
	return attempt(px);
}

size_t proxy_body(gw_proxy *px, const char *data, size_t n)
{
	size_t k = ring_put(&px->up, data, n);
	if (k && px->up_paused) {
		px->up_paused = 0;
		queue_unpause(px);
	}
	return k;
}

void proxy_body_end(gw_proxy *px)
{
	px->up_end = 1;
	if (px->up_paused) {
		px->up_paused = 0;
		queue_unpause(px);
	}
}

int proxy_head_ready(const gw_proxy *px)
{
	if (px->failed || px->done)
		return 1;
	if (px->head_state != 2)
		return 0;
	/* small bodies are sent in one piece once complete */
	if (px->r->mbit == GWB_M_HEAD || px->status == 204 || px->status == 304)
		return 0;             /* complete right after the head anyway */
	return !(px->clen >= 0 && (size_t)px->clen <= px->down.cap);
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	gw_proxy *px = cls;
	(void)pos;
	if (px->down.len) {
		size_t n = ring_get(&px->down, buf, max);
		if (px->down_paused && ring_free(&px->down) >= CURL_MAX_WRITE_SIZE) {
			px->down_paused = 0;
			queue_unpause(px);
		}
		return (ssize_t)n;
	}
	if (px->done)
		return px->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
	px->reader_wait = 1;
	px->r->suspended = 1;
	MHD_suspend_connection(px->r->conn);
	return 0;
}

struct MHD_Response *proxy_response(gw_proxy *px, int *status)
{
	gw_req *r = px->r;
	struct MHD_Response *resp;
	int nobody = r->mbit == GWB_M_HEAD || px->status == 204 || px->status == 304;
	*status = px->status;
	px->started = 1;
	if (nobody && r->mbit == GWB_M_HEAD && px->clen >= 0)
		/* HEAD: MHD sends Content-Length from the size and never reads */
		resp = MHD_create_response_from_callback((uint64_t)px->clen, 4096, reader, px, NULL);
	else if (nobody)
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	else if (px->done && px->down.head == 0)
		resp = MHD_create_response_from_buffer(px->down.len, px->down.buf,
		                                       MHD_RESPMEM_PERSISTENT);
	else {
		px->streaming = 1;
		resp = MHD_create_response_from_callback(
			px->clen >= 0 ? (uint64_t)px->clen : MHD_SIZE_UNKNOWN, 32 * 1024, reader, px, NULL);
	}
	if (!resp)
		return NULL;
	/* drop hop-by-hop headers and those the upstream's Connection lists */
	const char *ct = NULL;
	size_t ctl = 0;
	for (size_t i = 0; i < px->rh.n; i++)
		if (px->rh.v[i].nlen == 10 && !strncasecmp(px->rh.v[i].name, "connection", 10)) {
			ct = px->rh.v[i].val;
			ctl = px->rh.v[i].vlen;
		}
	for (size_t i = 0; i < px->rh.n; i++) {
		gw_hdr *h = &px->rh.v[i];
		if (hop_by_hop(h->name, h->nlen) || (ct && in_tokens(ct, ctl, h->name, h->nlen)))
			h->nlen = 0;
	}
	return resp;
}

/* ------------------------------------------------------- completions */
static void report(gw_proxy *px, int ok)
{
	if (!px->srv)
		return;
	ups_report(px->u, px->srv, ok, gw_tl_now);
	breaker_report(px->u, px->srv, px->uo, ok, px->status, gw_tl_now);
	ups_conn_end(px->srv);
	px->srv = NULL;
}

static void detach(gw_proxy *px)
{
	if (px->in_multi) {
		curl_multi_remove_handle(px->w->multi, px->easy);
		px->in_multi = 0;
	}
}

enum { F_CONNECT = 1, F_TIMEOUT = 2, F_STATUS = 4, F_OTHER = 8 };

/* a failed attempt: retry on another server, or answer 502/504 */
static void failed(gw_proxy *px, int why, int status)
{
	gw_req *r = px->r;
	const gwb_upstream *uo = px->uo;
	report(px, 0);
	int can = !px->started && px->attempts <= uo->retries && idempotent(r->mbit) &&
	          !r->has_body;
	int on = ((why & F_CONNECT) && (uo->retry_on & GWB_RETRY_CONNECT)) ||
	         ((why & F_TIMEOUT) && (uo->retry_on & GWB_RETRY_TIMEOUT)) ||
	         (why & F_STATUS);
	if (can && on) {
		int st = attempt(px);
		if (st == 0) {
			log_debug("request %s: retry %u on another server", r->id, px->attempts);
			return;
		}
	}
	px->done = 1;
	px->failed = status;
	tap_end(px, 0);
	px->fail_msg = status == 504 ? "upstream timeout"
	             : (why & F_CONNECT) ? "upstream connect error"
	             : (why & F_STATUS) ? "upstream error"
	             : "upstream protocol error";
	if (px->started)
		log_warn("request %s: upstream failed after the response started (%s): closing",
		         r->id, px->errbuf[0] ? px->errbuf : "error");
	srv_proxy_event(r);
	if (!px->started && r->suspended && !px->head_wait && !px->body_wait && !px->reader_wait)
		srv_resume(r);
}

static void completed(gw_proxy *px, CURLcode rc)
{
	gw_req *r = px->r;
	detach(px);
	if (!r)
		return;
	if (rc == CURLE_OK) {
		int bad = 0;
		for (int i = 0; i < 4; i++)
			if (px->uo->retry_status[i] == (uint32_t)px->status)
				bad = 1;
		report(px, !bad);
		px->done = 1;
		tap_end(px, 1);
		srv_proxy_event(r);
		return;
	}
	if (px->abort_retry) {
		failed(px, F_STATUS, 502);
		return;
	}
	int why, status;
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SSL_CONNECT_ERROR:          /* TLS handshake failed */
	case CURLE_PEER_FAILED_VERIFICATION:   /* certificate or name not verified */
		/* nothing was sent: a connect error, retried on another server
		 * (nginx's proxy_next_upstream error), as the upgrade path does */
		why = F_CONNECT; status = 502;
		break;
	case CURLE_OPERATION_TIMEDOUT: {
		curl_off_t connect_us = 0;
		curl_easy_getinfo(px->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
		why = connect_us ? F_TIMEOUT : (F_CONNECT | F_TIMEOUT);
		status = 504;
		break;
	}
	default:
		why = F_OTHER; status = 502;
		break;
	}
	log_debug("request %s: upstream error %d (%s)", r->id, (int)rc,
	          px->errbuf[0] ? px->errbuf : curl_easy_strerror(rc));
	failed(px, why, status);
}

void proxy_drain_done(gw_worker *w)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(w->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		gw_proxy *px = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&px);
		if (px)
			completed(px, m->data.result);
	}
}

void proxy_unpause_pending(gw_worker *w)
{
	while (w->unpause) {
		gw_proxy *px = w->unpause;
		w->unpause = px->unext;
		px->unpause_queued = 0;
		if (px->r && px->in_multi)
			curl_easy_pause(px->easy, CURLPAUSE_CONT);
	}
}

void proxy_sweep(gw_worker *w, uint64_t now)
{
	for (gw_proxy *px = w->active.next, *nx; px != &w->active; px = nx) {
		nx = px->next;
		if (!px->in_multi || px->done || px->down_paused || px->up_paused)
			continue;
		if (now - px->last_io_ms >= px->timeout_ms) {
			snprintf(px->errbuf, sizeof px->errbuf, "no data from upstream for %u ms",
			         px->timeout_ms);
			detach(px);
			failed(px, F_TIMEOUT, 504);
		}
	}
}

void proxy_abort(gw_proxy *px)
{
	tap_end(px, 0);
	detach(px);
	if (px->srv) {
		ups_conn_end(px->srv);
		px->srv = NULL;
	}
	px->done = 1;
	px->failed = 502;
	px->fail_msg = "request aborted";
}

void proxy_finish(gw_proxy *px)
{
	gw_worker *w = px->w;
	gw_req *r = px->r;
	tap_end(px, 0);           /* still tapping: the transfer was cut */
	detach(px);
	if (px->srv) {            /* client gone before the upstream finished */
		ups_conn_end(px->srv);
		px->srv = NULL;
	}
	if (px->snap) {
		ups_release(px->snap);
		px->snap = NULL;
	}
	px->prev->next = px->next;
	px->next->prev = px->prev;
	if (px->unpause_queued) {
		for (gw_proxy **p = &w->unpause; *p; p = &(*p)->unext)
			if (*p == px) {
				*p = px->unext;
				break;
			}
		px->unpause_queued = 0;
	}
	px->r = NULL;
	if (r)
		r->px = NULL;
	px_put(w, px);
}

/* ------------------------------------------------- multi / socket glue */
#define SOCK_REG  0x100u     /* in our epoll */
#define SOCK_WANT 0x200u     /* curl watches it (else: idle keep-alive) */

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	gw_worker *w = userp;
	(void)e; (void)socketp;
	if (fd < 0)
		return 0;
	if ((size_t)fd >= w->nsock) {
		size_t n = w->nsock ? w->nsock : 1024;
		while (n <= (size_t)fd)
			n *= 2;
		uint32_t *ns = realloc(w->sock, n * sizeof *ns);
		if (!ns)
			return -1;
		memset(ns + w->nsock, 0, (n - w->nsock) * sizeof *ns);
		w->sock = ns;
		w->nsock = n;
	}
	uint32_t st = w->sock[fd];
	if (what == CURL_POLL_REMOVE) {
		/* keep an idle keep-alive socket registered: the next request on it
		 * then needs no epoll_ctl (an event while idle unregisters it) */
		w->sock[fd] = st & ~SOCK_WANT;
		return 0;
	}
	uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!(st & SOCK_REG) || (st & 0xff) != ev) {
		struct epoll_event ee = { .events = ev, .data.u64 = ((uint64_t)2 << 32) | (uint32_t)fd };
		int op = (st & SOCK_REG) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		if (epoll_ctl(w->epfd, op, fd, &ee) != 0) {
			op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
			if (epoll_ctl(w->epfd, op, fd, &ee) != 0)
				return -1;
		}
	}
	w->sock[fd] = SOCK_REG | SOCK_WANT | ev;
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	gw_worker *w = userp;
	(void)m;
	w->curl_timeout = timeout_ms;
	w->curl_deadline = gw_tl_now + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	return 0;
}

int proxy_socket_event(gw_worker *w, int fd, uint32_t events)
{
	if ((size_t)fd < w->nsock && !(w->sock[fd] & SOCK_WANT)) {
		/* idle keep-alive socket readable: the upstream closed it (or sent
		 * garbage). Stop watching; curl finds out when it reuses or prunes */
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
		w->sock[fd] = 0;
		return 0;
	}
	int mask = (events & EPOLLIN ? CURL_CSELECT_IN : 0) | (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
	           (events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
	int running;
	curl_multi_socket_action(w->multi, fd, mask, &running);
	return 0;
}

/* ------------------------------------------------- curl's liveness polls
 * libcurl 7.88 calls poll(fd, 1, 0) twice per request on a reused upstream
 * connection: once to see whether the idle connection is still alive, once
 * right after sending, to see whether the answer is already there. Both
 * are syscalls nginx does not make, and no curl option turns them off.
 * gwd answers them itself: this poll() (the executable's definition wins
 * over libc's for libcurl's calls) says "nothing to read" for a socket
 * that is in the worker's epoll, without a syscall:
 *   - idle connection: the epoll (level-triggered EPOLLIN, kept registered
 *     while idle) would have reported a close or stray bytes, and such a
 *     socket is unregistered at once (proxy_socket_event), so it is not
 *     answered here. A close in the last microseconds makes curl find a
 *     dead connection when it sends, and curl retries such a request on a
 *     fresh connection by itself.
 *   - after sending: curl then waits for the readiness the epoll reports
 *     (curl_multi_socket_action with CURL_CSELECT_IN), one loop turn later.
 * Every other poll() — other threads, other fds, other events, a timeout —
 * goes to libc. */
static _Thread_local gw_worker *tl_worker;

void proxy_thread_enter(gw_worker *w)
{
	tl_worker = w;
}

extern int __poll(struct pollfd *fds, nfds_t nfds, int timeout);

/* glibc declares poll()'s array write-only; this definition reads it */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	gw_worker *w = tl_worker;
	if (w && nfds == 1 && timeout == 0 && fds[0].fd >= 0 && (size_t)fds[0].fd < w->nsock &&
	    (w->sock[fds[0].fd] & SOCK_REG) &&
	    !(fds[0].events & ~(POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND))) {
		fds[0].revents = 0;
		return 0;
	}
	return __poll(fds, nfds, timeout);
}
#pragma GCC diagnostic pop

void proxy_timeout_event(gw_worker *w)
{
	int running;
	w->curl_timeout = -1;
	curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

int proxy_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

int proxy_worker_init(gw_worker *w)
{
	w->active.next = w->active.prev = &w->active;
	w->curl_timeout = -1;
	w->multi = curl_multi_init();
	if (!w->multi)
		return -1;
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
	/* the idle pool of upstream connections, all upstreams of this worker
	 * together: high enough that -c 256 does not churn connections */
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 1024L);
	return 0;
}

void proxy_worker_free(gw_worker *w)
{
	while (w->active.next && w->active.next != &w->active)
		proxy_finish(w->active.next);
	while (w->free_px) {
		gw_proxy *px = w->free_px;
		w->free_px = px->next;
		curl_easy_cleanup(px->easy);
		free(px->up.buf);
		free(px->down.buf);
		free(px);
	}
	if (w->multi)
		curl_multi_cleanup(w->multi);
	w->multi = NULL;
	free(w->sock);
	w->sock = NULL;
	w->nsock = 0;
}

/* ------------------------------------------------ for upgrade.c (core.h) */
const char *proxy_req_path(gw_req *r, size_t *len)
{
	return upstream_path(r, len);
}

struct curl_slist *proxy_req_headers(gw_req *r)
{
	return build_headers(r);
}

ups_server *proxy_pick(gw_req *r, ups_upstream *u, ups_snapshot *snap,
                       const ups_server *const *tried, size_t ntried)
{
	/* pick() reads these fields of a proxy only */
	gw_proxy px;
	memset(&px, 0, sizeof px);
	px.r = r;
	px.w = r->w;
	px.u = u;
	px.snap = snap;
	px.uo = gwb_upstream_at(r->t, r->proxy_ups);
	px.ntried = ntried < sizeof px.tried / sizeof px.tried[0] ? ntried
	          : sizeof px.tried / sizeof px.tried[0];
	memcpy(px.tried, tried, px.ntried * sizeof px.tried[0]);
	return pick(&px);
}

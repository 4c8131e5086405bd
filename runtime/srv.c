/*
 * srv.c — the libmicrohttpd side of gwd: a request from its first byte to
 * its completion.
 *
 * MHD calls the access handler several times per request:
 *   1st call (headers only)  req_begin(): limits, path normalisation,
 *                            table reference, match, rewrite/access/content
 *                            phases, proxy start. Never queues a response:
 *                            MHD answers "Connection: close" to a response
 *                            queued in the first call (keep-alive dies).
 *   body calls               stream the body to the proxy (suspend when its
 *                            ring is full) or discard it (own answer).
 *   final call (size 0)      queue the response, or suspend until the
 *                            proxy has the upstream's head.
 * The connection is resumed by proxy.c events (srv_proxy_event) and by
 * plugins completing (gw_req_resume).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "door.h"
#include "linger.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "respond.h"
#include "srv.h"
#include "upgrade.h"
#include "tls.h"

gw_worker *srv_workers;
int srv_nworkers;

#define REQ_POOL_MAX 1024
#define CONN_POOL_MAX 1024
#define TOO_LARGE_DRAIN (1024 * 1024)   /* body bytes dropped before a 413 */
/* the Allow of gwd's own 405 (TRACE, CONNECT): what routes may serve */
#define METHODS_ALLOWED "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"

/* ------------------------------------------------------------- helpers */
/* several Cookie lines (HTTP/2-to-1.1 front ends send them) read as one,
 * joined with "; " as nginx's $http_cookie and $cookie_NAME see them: a
 * first pass measures (buf NULL), a second copies into the request arena */
typedef struct cookie_join { unsigned n; size_t len; char *buf; } cookie_join;

static enum MHD_Result cookie_line(void *cls, enum MHD_ValueKind kind, const char *key, size_t ks,
                                   const char *val, size_t vs)
{
	cookie_join *j = cls;
	(void)kind;
	if (ks != 6 || strncasecmp(key, "cookie", 6) != 0 || !val)
		return MHD_YES;
	vs = srv_value_len(val, vs);
	if (j->buf) {
		if (j->n++) {
			memcpy(j->buf + j->len, "; ", 2);
			j->len += 2;
		}
		memcpy(j->buf + j->len, val, vs);
	} else {
		j->len += (j->n++ ? 2 : 0);
	}
	j->len += vs;
	return MHD_YES;
}

static int cookie_lines(gw_req *r, const char **v, size_t *vlen)
{
	cookie_join j = { 0 };
	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, cookie_line, &j);
	if (j.n < 2)
		return 0;
	size_t len = j.len;
	if (!(j.buf = srv_alloc(r, len + 1)))
		return 0;
	j.n = 0;
	j.len = 0;
	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, cookie_line, &j);
	j.buf[j.len] = '\0';
	*v = j.buf;
	*vlen = j.len;
	return 1;
}

int srv_header_raw_n(gw_req *r, const char *name, size_t nlen, const char **v, size_t *vlen)
{
	size_t n;
	const char *val;
	if (MHD_lookup_connection_value_n(r->conn, MHD_HEADER_KIND, name, nlen, &val, &n) != MHD_YES
	    || !val)
		return 0;
	if (nlen == 6 && !strncasecmp(name, "cookie", 6) && cookie_lines(r, v, vlen))
		return 1;
	*v = val;
	*vlen = srv_value_len(val, n);
	return 1;
}

static int match_header(void *ctx, const char *name, const char **v, size_t *vlen)
{
	gw_req *r = ctx;
	return gw_req_header(r, name, v, vlen);
}

void srv_resume(gw_req *r)
{
	if (r->suspended) {
		r->suspended = 0;
		MHD_resume_connection(r->conn);
		r->w->mhd_dirty = 1;
	}
}

static void suspend(gw_req *r)
{
	if (!r->suspended) {
		r->suspended = 1;
		MHD_suspend_connection(r->conn);
	}
}

/* --------------------------------------------------- building responses */
/* base headers then the header_filter edits: DEL removes every header of
 * the name, SET replaces them, ADD appends one more */
static void apply_edits(gw_hlist *base, const gw_hlist *ed, gw_req *r)
{
	for (size_t i = 0; i < ed->n; i++) {
		const gw_hdr *e = &ed->v[i];
		if (e->op != HDR_ADD)
			for (size_t k = 0; k < base->n; k++)
				if (base->v[k].nlen == e->nlen && !strncasecmp(base->v[k].name, e->name, e->nlen))
					base->v[k].nlen = 0;     /* removed */
		if (e->op != HDR_DEL)
			hlist_push(r, base, e->name, e->nlen, e->val, e->vlen, HDR_ADD);
	}
}

static void add_headers(struct MHD_Response *resp, const gw_hlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].nlen)
			MHD_add_response_header(resp, l->v[i].name, l->v[i].val);
}

/* queue resp with the request's finishing touches; consumes resp */
static void queue(gw_req *r, int status, struct MHD_Response *resp, gw_hlist *hdrs)
{
	r->status = status;
	hlist_push(r, hdrs, "X-Request-Id", 12, r->id, strlen(r->id), HDR_SET);
	if (r->rt)
		phase_run_hfilter(r);
	apply_edits(hdrs, &r->resp_edits, r);
	/* X-Request-Id is always ours, whatever the filter did */
	for (size_t k = 0; k < hdrs->n; k++)
		if (hdrs->v[k].nlen == 12 && !strncasecmp(hdrs->v[k].name, "X-Request-Id", 12))
			hdrs->v[k].nlen = 0;
	hlist_push(r, hdrs, "X-Request-Id", 12, r->id, strlen(r->id), HDR_SET);
	add_headers(resp, hdrs);
	if (r->w->draining || r->close_conn)
		MHD_add_response_header(resp, "Connection", "close");
	if (MHD_queue_response(r->conn, (unsigned)status, resp) != MHD_YES)
		log_debug("request %s: response %d not queued", r->id, status);
	MHD_destroy_response(resp);
	r->state = RQ_QUEUED;
}

static void queue_error(gw_req *r, int status, const char *msg)
{
	if (!msg)
		msg = respond_error_text(status);
	char tmp[256];
	size_t n = respond_json_error(tmp, sizeof tmp, msg, r->id);
	char *body = srv_alloc(r, n + 1);
	if (!body) {
		body = "";
		n = 0;
	} else if (n < sizeof tmp) {
		memcpy(body, tmp, n + 1);
	} else {
		respond_json_error(body, n + 1, msg, r->id);
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return;
	gw_hlist h = { 0 };
	hlist_push(r, &h, "Content-Type", 12, "application/json", 16, HDR_SET);
	if (status == 405)            /* RFC 9110 15.5.6: a 405 lists what is allowed */
		hlist_push(r, &h, "Allow", 5, METHODS_ALLOWED, sizeof METHODS_ALLOWED - 1, HDR_SET);
	r->w->errors++;
	queue(r, status, resp, &h);
}

static void queue_own(gw_req *r)
{
	if (r->err_msg || (r->own_status >= 400 && !r->own_body)) {
		queue_error(r, r->own_status, r->err_msg);
		return;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		r->own_body_len, (void *)r->own_body, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return;
	gw_hlist h = { 0 };
	if (r->own_ctype)
		hlist_push(r, &h, "Content-Type", 12, r->own_ctype, strlen(r->own_ctype), HDR_SET);
	if (r->own_location)
		hlist_push(r, &h, "Location", 8, r->own_location, strlen(r->own_location), HDR_SET);
	queue(r, r->own_status, resp, &h);
}

static void queue_proxied(gw_req *r)
{
	int status;
	gw_proxy *px = r->px;
	if (px->failed) {
		queue_error(r, px->failed, px->fail_msg);
		return;
	}
	struct MHD_Response *resp = proxy_response(px, &status);
	if (!resp) {
		queue_error(r, 500, NULL);
		return;
	}
	queue(r, status, resp, &px->rh);
}

/* an own answer (error or respond/redirect) decided before the final call */
static void decide_error(gw_req *r, int status, const char *msg)
{
	r->kind = K_OWN;
	r->own_status = status;
	r->err_msg = msg ? msg : respond_error_text(status);
	if (r->has_body)
		r->discard_body = 1;
}

void srv_queue(gw_req *r, int status, struct MHD_Response *resp, gw_hlist *hdrs)
{
	queue(r, status, resp, hdrs);
}

void srv_queue_error(gw_req *r, int status, const char *msg)
{
	decide_error(r, status, msg);
	queue_own(r);
}

/* after the phases said what to do: start the proxy, or note the answer */
static void after_phases(gw_req *r, int rc)
{
	if (rc == GW_AGAIN)
		return;
	if (rc >= 100) {
		decide_error(r, rc, r->err_msg);
		return;
	}
	if (r->kind == K_PROXY) {
		int st = upgrade_wanted(r) ? upgrade_start(r) : proxy_start(r);
		if (st) {
			r->kind = K_OWN;
			decide_error(r, st, NULL);
		} else {
			r->w->proxied++;
		}
	} else if (r->has_body) {
		r->discard_body = 1;
	}
}

/* ------------------------------------------------------- request start */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* ------------------------------------------- request head sanity
 * What libmicrohttpd 0.9.75 lets through and nginx refuses (RFC 9112):
 * a second Host, Content-Length values that differ, Content-Length with
 * Transfer-Encoding (MHD frames such a body as chunked and ignores the
 * length: an upstream or a cache in front that reads the length instead
 * sees another request in the body), methods nginx's parser refuses. */
typedef struct {
	unsigned nhost, ncl, nte;
	const char *cl;               /* the first Content-Length value */
	size_t cllen;
	int cl_differs;
	int bad_byte;                 /* NUL, bare CR or another control byte in a value */
	const char *te;               /* the Transfer-Encoding value */
	size_t telen;
} head_count;

static enum MHD_Result head_count_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t keylen, const char *value, size_t vlen)
{
	head_count *hc = cls;
	(void)kind;
	/* MHD 0.9.75 passes a bare CR or a control byte in a value on */
	if (door_value_bad(value, vlen))
		hc->bad_byte = 1;
	if (keylen == 4 && !strcasecmp(key, "Host")) {
		hc->nhost++;
	} else if (keylen == 14 && !strcasecmp(key, "Content-Length")) {
		if (hc->ncl++ == 0) {
			hc->cl = value;
			hc->cllen = vlen;
		} else if (vlen != hc->cllen || memcmp(value, hc->cl, vlen) != 0) {
			hc->cl_differs = 1;
		}
	} else if (keylen == 17 && !strcasecmp(key, "Transfer-Encoding")) {
		hc->nte++;
		hc->te = value;
		hc->telen = vlen;
	}
	return MHD_YES;
}

/* Transfer-Encoding other than "chunked": with chunked not the last
 * coding the body's end is unknown (RFC 9112 section 6.1: 400); a coding
 * gwd does not implement before a final chunked is 501, as nginx answers.
 * MHD 0.9.75 would wait for such a body until the client timeout. */
static int te_status(const char *v, size_t n)
{
	/* exactly what MHD frames as chunked (it compares the whole value:
	 * "chunked " with a trailing space would be read until the close) */
	if (n == 7 && !strncasecmp(v, "chunked", 7))
		return 0;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	if (n == 7 && !strncasecmp(v, "chunked", 7))
		return 400;
	size_t k = n;
	while (k && v[k - 1] != ',' && v[k - 1] != ' ' && v[k - 1] != '\t')
		k--;
	return n - k == 7 && !strncasecmp(v + k, "chunked", 7) ? 501 : 400;
}

/* nginx's method token: upper-case letters, '_' and '-' ("get" is 400) */
static int method_ok(const char *m, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((m[i] >= 'A' && m[i] <= 'Z') || m[i] == '_' || m[i] == '-'))
			return 0;
	return 1;
}

/* 0: go on (*hc then has the framing headers); else the status decided.
 * *close_now: answer from the head and
 * close (MHD closes after a response queued in the first call) without
 * reading any body: a malformed head, as nginx does after its 400s; with
 * ambiguous framing the body's end is unknown anyway. */
static int head_sane(gw_req *r, head_count *hc, int *close_now)
{
	*close_now = 1;
	if (!method_ok(r->method, r->method_len))
		return 400;
	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, head_count_cb, hc);
	if (hc->cl_differs || (hc->ncl && hc->nte) || hc->nhost > 1 || hc->nte > 1 || hc->bad_byte)
		return 400;
	if (hc->nte) {
		int st = te_status(hc->te, hc->telen);
		if (st)
			return st;
	}
	/* MHD 0.9.75 takes "GET /a b HTTP/1.1" as the target "/a b" */
	if (r->uri && door_target_bad(r->uri, r->uri_len))
		return 400;
	*close_now = 0;
	/* TRACE echoes the request (cookies, credentials) back: cross-site
	 * tracing; CONNECT would make gwd a tunnel. Refused before routing,
	 * as nginx does. */
	if ((r->method_len == 5 && !memcmp(r->method, "TRACE", 5)) ||
	    (r->method_len == 7 && !memcmp(r->method, "CONNECT", 7)))
		return 405;
	return 0;
}

/* A path whose ".." climbs above the root is never served (the phase
 * runner answers 400 after the access phase), but the route the client
 * aimed at judges it first: it is routed by the path as sent, so `waf
 * traversal` on `^= "/files/"` refuses /files/../../etc/passwd with 403
 * (the design: waf refusals are 403, path traversal included); when no
 * route matches that, by the clamped path. 1 if routed (r->m filled). */
static int route_raw(gw_req *r, gwb_request *rq, gw_worker *w)
{
	char *raw = srv_alloc(r, r->rawpath_len + 1);
	if (!raw)
		return 0;
	memcpy(raw, r->uri, r->rawpath_len);
	raw[r->rawpath_len] = '\0';
	const char *path = rq->path;
	size_t plen = rq->path_len;
	rq->path = raw;
	rq->path_len = r->rawpath_len;
	int hit = gwb_match_request(r->t, rq, &r->m, w->scratch) != GWB_NONE;
	rq->path = path;
	rq->path_len = plen;
	if (hit)
		r->match_path = raw;     /* the subject of its captures */
	return hit;
}

static void req_begin(gw_req *r, const char *method, const char *version)
{
	gw_worker *w = r->w;
	gw_conn *c = r->c;
	const gw_limits *lim;

	r->start_ms = gw_tl_now;
	if (c) {
		c->idle_since_ms = 0;
		c->nreq++;
		r->ip_family = c->ip_family;
		memcpy(r->ip, c->ip, sizeof r->ip);
		memcpy(r->ipstr, c->ipstr, sizeof r->ipstr);
		r->tls = c->tls;
	}
	r->method = method;
	r->method_len = strlen(method);
	r->mbit = gwb_method_bit(method, r->method_len);
	r->http10 = version && !strcmp(version, "HTTP/1.0");

	/* request id first: every answer, errors included, carries it */
	const char *id;
	size_t idlen;
	if (srv_header_raw_n(r, "X-Request-Id", 12, &id, &idlen) && reqid_valid(id, idlen)) {
		memcpy(r->id, id, idlen);
		r->id[idlen] = '\0';
		r->id_from_client = 1;
	} else {
		reqid_gen(r->id);
	}

	/* the table this request will finish on */
	r->wt = w->wt;
	r->wt->inflight++;
	r->tab = r->wt->tab;
	r->t = r->tab->t;
	lim = &r->tab->lim;

	head_count hc = { 0 };
	int close_now, bad = head_sane(r, &hc, &close_now);
	if (bad) {
		decide_error(r, bad, NULL);
		if (close_now)
			queue_own(r);
		return;
	}

	/* body size known up front (head_sane saw the framing headers) */
	const char *v;
	size_t vlen;
	r->content_length = -1;
	if (hc.nte) {
		r->has_body = 1;
	} else if (hc.ncl) {
		uint64_t cl;
		if (parse_u64(hc.cl, hc.cllen, &cl) != 0) {
			decide_error(r, 400, "bad Content-Length");
			return;
		}
		r->content_length = (int64_t)cl;
		r->has_body = cl > 0;
	}

	/* limits: URI (414), head (431), body (413) */
	if (!r->uri) {
		decide_error(r, 500, NULL);
		return;
	}
	if (r->uri_len > lim->max_header_size) {
		decide_error(r, 414, NULL);
		return;
	}
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (ci && ci->header_size > r->uri_len + lim->max_header_size) {
		decide_error(r, 431, NULL);
		return;
	}
	if (lim->max_body_size && r->content_length > 0 &&
	    (uint64_t)r->content_length > lim->max_body_size) {
		/* the one answer queued in the first call: the connection is
		 * closed after it anyway, and a client waiting on "Expect:
		 * 100-continue" then never sends the body */
		decide_error(r, 413, NULL);
		queue_own(r);
		return;
	}

	/* target: origin-form "/p?q" or absolute-form "http://h/p?q" */
	char *u = r->uri;
	size_t ulen = r->uri_len;
	if (ulen > 7 && (!strncasecmp(u, "http://", 7) || !strncasecmp(u, "https://", 8))) {
		size_t s = u[4] == ':' ? 7 : 8, e = s;
		while (e < ulen && u[e] != '/' && u[e] != '?')
			e++;
		r->host = u + s;
		r->host_len = e - s;
		u += e;
		ulen -= e;
		if (ulen == 0 || u[0] == '?') {
			/* "http://h" or "http://h?q": the path is "/" */
			char *nu = srv_alloc(r, ulen + 2);
			if (!nu) {
				decide_error(r, 500, NULL);
				return;
			}
			nu[0] = '/';
			memcpy(nu + 1, u, ulen);
			nu[ulen + 1] = '\0';
			u = nu;
			ulen++;
		}
		r->uri = u;
		r->uri_len = ulen;
	} else if (srv_header_raw_n(r, "Host", 4, &v, &vlen)) {
		r->host = v;
		r->host_len = vlen;
	} else if (!r->http10) {
		/* as nginx: 400, and the connection is closed after it */
		r->close_conn = 1;
		decide_error(r, 400, "missing Host header");
		return;
	}
	if (r->http10 && hc.nte) {
		/* HTTP/1.0 has no Transfer-Encoding: the framing is faulty (RFC
		 * 9112 6.1), a request smuggling vector; nginx answers 400 and
		 * closes */
		r->close_conn = 1;
		decide_error(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
		return;
	}
	if (ulen == 0 || u[0] != '/') {
		decide_error(r, 400, "bad request target");
		return;
	}
	const char *q = memchr(u, '?', ulen);
	r->rawpath_len = q ? (size_t)(q - u) : ulen;
	if (q) {
		r->has_query = 1;
		r->query = q + 1;
		r->query_len = ulen - r->rawpath_len - 1;
	} else {
		r->query = "";
	}
	r->path = srv_alloc(r, r->rawpath_len + 1);
	int pn = r->path ? gwb_path_normalize_clamped(u, r->rawpath_len, r->path,
	                                              r->rawpath_len + 1, &r->path_len) : -1;
	/* ".." above the root: routed clamped, refused with 400 by the phase
	 * runner after the access phase (unless an access directive refused it) */
	r->path_above_root = pn == 1;
	if (pn < 0) {
		r->path = "/";
		r->path_len = 1;
		decide_error(r, 400, "bad path");
		return;
	}
	r->path[r->path_len] = '\0';
	r->path_changed = r->path_len != r->rawpath_len || memcmp(r->path, u, r->path_len) != 0;
	r->match_path = r->path;

	/* route */
	gwb_request rq = {
		.method = r->method, .method_len = r->method_len,
		.host = r->host ? r->host : "", .host_len = r->host_len,
		.path = r->path, .path_len = r->path_len,
		.query = r->query, .query_len = r->query_len,
		.header = match_header, .ctx = r,
		.ip_family = r->ip_family,
	};
	memcpy(rq.ip, r->ip, sizeof rq.ip);
	if (!(r->path_above_root && route_raw(r, &rq, w)) &&
	    gwb_match_request(r->t, &rq, &r->m, w->scratch) == GWB_NONE) {
		if (r->path_above_root)
			decide_error(r, 400, "bad path");
		else
			decide_error(r, 404, NULL);
		return;
	}
	r->route = r->m.route;
	r->rt = gwb_route_at(r->t, r->route);
	r->phase = GWB_PH_REWRITE;
	r->pc = r->rt->phase_pc[GWB_PH_REWRITE];
	after_phases(r, phase_run(r));
	/* a 413 decided from the head (body_limit and Content-Length) is
	 * answered now, like max_body_size above: the body is never read */
	if (r->kind == K_OWN && r->own_status == 413 && r->has_body)
		queue_own(r);
}

void srv_continue(gw_req *r)
{
	after_phases(r, phase_run(r));
	srv_resume(r);
}

void gw_req_resume(gw_req *r)
{
	srv_continue(r);
}

void srv_proxy_event(gw_req *r)
{
	gw_proxy *px = r->px;
	if (!px || !r->suspended)
		return;
	if (px->reader_wait) {
		if (px->down.len || px->done) {
			px->reader_wait = 0;
			srv_resume(r);
		}
	} else if (px->body_wait) {
		if (px->up.len < px->up.cap || px->done) {
			px->body_wait = 0;
			srv_resume(r);
		}
	} else if (px->head_wait) {
		if (proxy_head_ready(px)) {
			px->head_wait = 0;
			srv_resume(r);
		}
	}
}

/* ------------------------------------------------------ MHD callbacks */
static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	gw_worker *w = cls;
	gw_req *r = w->free_req;
	if (r) {
		w->free_req = r->next;
		w->nfree_req--;
	} else if (!(r = malloc(sizeof *r))) {
		return NULL;
	}
	/* zero everything up to the arena (the arena needs no clearing) */
	memset(r, 0, offsetof(gw_req, arena));
	r->w = w;
	r->conn = conn;
	r->route = GWB_NONE;
	r->ap = r->arena;
	r->aleft = sizeof r->arena;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	r->c = ci ? ci->socket_context : NULL;
	size_t n = strlen(uri);
	r->uri = srv_strndup(r, uri, n);
	r->uri_len = n;
	w->nreq++;
	w->requests++;
	return r;
}

static void req_free(gw_req *r)
{
	gw_worker *w = r->w;
	while (r->blk) {
		gw_arena_blk *b = r->blk;
		r->blk = b->next;
		free(b);
	}
	if (w->nfree_req < REQ_POOL_MAX) {
		r->next = w->free_req;
		w->free_req = r;
		w->nfree_req++;
	} else {
		free(r);
	}
}

static void wtab_done(gw_worker *w, gw_wtab *wt)
{
	if (--wt->inflight || wt == w->wt)
		return;
	for (gw_wtab **p = &w->retired; *p; p = &(*p)->next)
		if (*p == wt) {
			*p = wt->next;
			break;
		}
	reload_release(wt->tab);
	free(wt);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	gw_worker *w = cls;
	gw_req *r = *con_cls;
	(void)conn;
	if (!r)
		return;
	*con_cls = NULL;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status)
		log_debug("request %s ended early (%d)", r->id, (int)toe);
	if (r->px) {
		metrics_req_proxied(r);      /* before the proxy is recycled */
		proxy_finish(r->px);
	}
	if (r->rt)
		phase_run_log(r);
	metrics_req_done(r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);  /* + access log */
	if (r->upg)
		upgrade_done(r);
	if (r->wt)
		wtab_done(w, r->wt);
	if (r->c)
		r->c->idle_since_ms = gw_tl_now ? gw_tl_now : 1;
	w->nreq--;
	req_free(r);
}

/* limits.max_body_size and the route's body_limit: the smaller one that
 * is set (0 = unlimited) */
static uint64_t body_max(const gw_req *r)
{
	uint64_t a = r->tab->lim.max_body_size, b = r->body_limit;
	return !a ? b : !b ? a : a < b ? a : b;
}

/* ------------------------------------------------- gw_req_body_peek
 * An access handler (waf) asks for the body's first `want` bytes: the
 * upload calls copy them into peek_buf (arena, at most want bytes) while
 * the handler waits with GW_AGAIN, and the phases run again once the
 * buffer is full or the body has ended. When the request is proxied the
 * buffered bytes go to the upstream first (peek_flush). */
int gw_req_body_peek(gw_req *r, size_t want, const char **data, size_t *len)
{
	if (!r->has_body || want == 0) {
		*data = "";
		*len = 0;
		return 1;
	}
	if (r->content_length >= 0 && (uint64_t)r->content_length < want)
		want = (size_t)r->content_length;
	if (r->peek_state == PEEK_DONE && (r->body_ended || r->peek_want >= want)) {
		*data = r->peek_buf;
		*len = r->peek_len < want ? r->peek_len : want;
		return 1;
	}
	if (r->peek_state == PEEK_FILL && r->peek_want >= want)
		return 0;
	/* first call, or a larger want than buffered so far */
	char *buf = srv_alloc(r, want);
	if (!buf)
		return -1;
	if (r->peek_len)
		memcpy(buf, r->peek_buf, r->peek_len);
	r->peek_buf = buf;
	r->peek_want = want;
	r->peek_state = PEEK_FILL;
	return 0;
}

/* the body is complete enough for the waiting handler: run it again */
static void peek_done(gw_req *r)
{
	r->peek_state = PEEK_DONE;
	after_phases(r, phase_run(r));
}

/* buffered bytes to the proxy before any later body byte; 1 when all are
 * out, 0 when the up ring is full (wait for it to drain) */
static int peek_flush(gw_req *r)
{
	if (r->px->done)                  /* the upstream answered already */
		r->peek_sent = r->peek_len;
	if (r->peek_sent < r->peek_len)
		r->peek_sent += proxy_body(r->px, r->peek_buf + r->peek_sent,
		                           r->peek_len - r->peek_sent);
	return r->peek_sent == r->peek_len;
}

static enum MHD_Result on_body(gw_req *r, const char *data, size_t *size)
{
	uint64_t max = body_max(r);
	/* a handler waits for the body's first bytes: take them (within the
	 * body limits; over them, the code below answers 413) */
	while (r->peek_state == PEEK_FILL && *size) {
		size_t take = r->peek_want - r->peek_len;
		if (take > *size)
			take = *size;
		if (max && r->body_seen + take > max) {
			r->peek_state = PEEK_DONE;  /* abandoned: the 413 decides */
			r->phase_wait = 0;
			break;
		}
		memcpy(r->peek_buf + r->peek_len, data, take);
		r->peek_len += take;
		r->body_seen += take;
		data += take;
		*size -= take;
		if (r->peek_len == r->peek_want)
			peek_done(r);       /* may ask for more (the loop goes on) */
		if (!*size)
			return MHD_YES;
	}
	if (r->phase_wait) {          /* a plugin is deciding: hold the body */
		suspend(r);
		return MHD_YES;
	}
	r->body_seen += *size;
	if (max && r->body_seen > max && !r->too_large) {
		/* chunked (or more than announced): over the limit. Stop the
		 * upstream transfer, but keep reading and dropping the body for a
		 * while so the client is reading when the 413 comes (closing on
		 * unread data would reset the connection and lose the answer) */
		r->too_large = 1;
		if (r->px)
			proxy_abort(r->px);
		r->kind = K_OWN;
		r->discard_body = 1;
		r->own_status = 413;
		r->err_msg = respond_error_text(413);
	}
	if (r->too_large && r->body_seen > max + TOO_LARGE_DRAIN) {
		/* still sending. MHD 0.9.75 does not send a response queued from
		 * a body call, so gwd writes its 413 to the socket itself
		 * (nothing else is being written there while the body is read)
		 * and ends the connection with a lingering close; TLS bytes it
		 * cannot write itself: there the connection just closes */
		log_debug("request %s: body over the limit by more than %d bytes: 413 and close",
		          r->id, TOO_LARGE_DRAIN);
		if (r->c && !r->c->tls && r->c->fd >= 0 &&
		    door_send_error(r->c->fd, 413, r->err_msg, r->id)) {
			r->status = 413;     /* for the log and the metrics */
			r->c->linger = 1;
		}
		return MHD_NO;
	}
	if (r->kind != K_PROXY || r->discard_body) {
		*size = 0;
		return MHD_YES;
	}
	gw_proxy *px = r->px;
	if (px->done && px->failed) {
		/* the upstream is gone: drop the rest of the body and answer in
		 * the final call (a response queued from a body call is not
		 * always sent by MHD 0.9.75 in epoll mode) */
		*size = 0;
		return MHD_YES;
	}
	if (!peek_flush(r)) {
		r->body_seen -= *size;        /* counted again when redelivered */
		px->body_wait = 1;
		suspend(r);
		return MHD_YES;
	}
	size_t n = proxy_body(px, data, *size);
	r->body_seen -= *size - n;        /* counted again when redelivered */
	*size -= n;
	if (*size) {
		px->body_wait = 1;
		suspend(r);
	}
	return MHD_YES;
}

static enum MHD_Result on_final(gw_req *r)
{
	r->body_ended = 1;
	if (r->peek_state == PEEK_FILL)
		peek_done(r);             /* a shorter body than asked for */
	if (r->phase_wait) {
		suspend(r);
		return MHD_YES;
	}
	if (r->kind != K_PROXY) {
		queue_own(r);
		return MHD_YES;
	}
	if (r->upg)
		return upgrade_final(r);
	gw_proxy *px = r->px;
	if (!px->up_end && !peek_flush(r)) {
		px->body_wait = 1;
		suspend(r);
		return MHD_YES;
	}
	if (!px->up_end)
		proxy_body_end(px);
	if (proxy_head_ready(px)) {
		queue_proxied(r);
		return MHD_YES;
	}
	px->head_wait = 1;
	suspend(r);
	return MHD_YES;
}

/* an HTTP/1.1 client with a body that waits for "100 Continue" */
static int expects_continue(gw_req *r)
{
	const char *v;
	size_t n;
	return !r->http10 && r->has_body && srv_header_raw_n(r, "Expect", 6, &v, &n) && n == 12 &&
	       !strncasecmp(v, "100-continue", 12);
}

static enum MHD_Result ahc(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version,
                           const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	gw_req *r = *con_cls;
	(void)cls; (void)url; (void)conn;
	if (!r)
		return MHD_NO;           /* out of memory in uri_cb */
	if (r->state == RQ_NEW) {
		r->state = RQ_HEAD;
		req_begin(r, method, version);
		/* answered from the head (a refusal, respond, redirect) while the
		 * client waits for "100 Continue": answer now, without inviting the
		 * body, as nginx does. MHD sends no 100 once a response is queued,
		 * and closes the connection after it (the body is never read). An
		 * access plugin that decides later (GW_AGAIN) lets MHD send the 100
		 * first: MHD gives no way to hold it back but this one. */
		if (r->kind == K_OWN && r->state != RQ_QUEUED && expects_continue(r))
			queue_own(r);
		return MHD_YES;
	}
	if (r->state == RQ_QUEUED) {     /* answered early: drop the rest */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size)
		return on_body(r, upload_data, upload_data_size);
	return on_final(r);
}

static void conn_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe)
{
	gw_worker *w = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		gw_conn *c = w->free_conn;
		if (c) {
			w->free_conn = c->next;
			w->nfree_conn--;
		} else if (!(c = malloc(sizeof *c))) {
			*socket_context = NULL;
			return;
		}
		memset(c, 0, sizeof *c);
		c->conn = conn;
		c->idle_since_ms = gw_tl_now ? gw_tl_now : 1;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		c->tls = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION) != NULL;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci && ci->client_addr) {
			const struct sockaddr *sa = ci->client_addr;
			if (sa->sa_family == AF_INET) {
				const struct sockaddr_in *s4 = (const void *)sa;
				c->ip_family = 4;
				memcpy(c->ip, &s4->sin_addr, 4);
			} else if (sa->sa_family == AF_INET6) {
				const struct sockaddr_in6 *s6 = (const void *)sa;
				if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
					c->ip_family = 4;
					memcpy(c->ip, s6->sin6_addr.s6_addr + 12, 4);
				} else {
					c->ip_family = 6;
					memcpy(c->ip, &s6->sin6_addr, 16);
				}
			}
			if (c->ip_family)
				inet_ntop(c->ip_family == 4 ? AF_INET : AF_INET6, c->ip, c->ipstr,
				          sizeof c->ipstr);
		}
		c->prev = &w->conns;
		c->next = w->conns.next;
		w->conns.next->prev = c;
		w->conns.next = c;
		w->nconn++;
		*socket_context = c;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		gw_conn *c = *socket_context;
		if (!c)
			return;
		/* libmicrohttpd closes the socket after this call; with bytes
		 * of the client still unread (a body gwd refused, a pipelined
		 * request after an error) that close would send a reset, which
		 * can destroy the answer: a duplicate keeps the socket open for a
		 * lingering close (linger.h) */
		int unread = 0;
		if (c->fd >= 0 && (c->linger || (ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0))) {
			int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
			if (fd >= 0)
				linger_start(w, fd);
		}
		c->prev->next = c->next;
		c->next->prev = c->prev;
		w->nconn--;
		*socket_context = NULL;
		if (c->tls_ctx)
			tls_conn_closed(c);
		if (w->nfree_conn < CONN_POOL_MAX) {
			c->next = w->free_conn;
			w->free_conn = c;
			w->nfree_conn++;
		} else {
			free(c);
		}
	}
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	(void)cls;
	vsnprintf(buf, sizeof buf, fmt, ap);
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_debug("libmicrohttpd: %s", buf);
}

/* the head-timeout sweep: a connection waiting for a request head longer
 * than client_timeout is cut (covers slow-header clients and idle
 * keep-alive). While draining, every idle connection is closed. */
void srv_sweep(gw_worker *w, uint64_t now, uint32_t client_timeout_ms)
{
	for (gw_conn *c = w->conns.next; c != &w->conns; c = c->next) {
		if (!c->idle_since_ms || c->fd < 0)
			continue;
		if (w->draining || now - c->idle_since_ms >= client_timeout_ms) {
			shutdown(c->fd, SHUT_RDWR);
			c->idle_since_ms = 0;
		}
	}
}

/* ------------------------------------------------------------- start */
/* probe: bind without SO_REUSEPORT and close again, so that a port some
 * other process (another gwd included) listens on is an error instead of
 * being silently shared by the kernel */
static int listen_socket(const cfg_listen *l, int probe, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	char port[16];
	snprintf(port, sizeof port, "%d", l->port);
	int rc = getaddrinfo(l->host && *l->host ? l->host : NULL, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s:%d: %s", l->host, l->port, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (!probe && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || (!probe && listen(fd, 511) != 0)) {
		snprintf(err, errlen, "listen %s:%d: %s", l->host, l->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if (probe) {
		close(fd);
		return 0;
	}
	return fd;
}

size_t srv_head_room(const gwd_config *cfg)
{
	size_t mem = (size_t)cfg->max_header_size + cfg->max_header_size / 4 + 8192;
	return mem < 16384 ? 16384 : mem;
}

unsigned srv_conn_limit(const gwd_config *cfg, int nworkers)
{
	unsigned climit = (cfg->max_connections + (unsigned)nworkers - 1) / (unsigned)nworkers;
	return climit ? climit : 1u;
}

/* lfd < 0: no listen socket, gwd accepts and hands connections over
 * (door.c) */
static struct MHD_Daemon *daemon_start(gw_worker *w, int lfd, const gwd_config *cfg,
                                       int nworkers, int tls)
{
	static const struct MHD_OptionItem no_opts[] = { { MHD_OPTION_END, 0, NULL } };
	unsigned climit = srv_conn_limit(cfg, nworkers);
	/* MHD's per-connection memory pool holds the request head (and the
	 * response head). Leave room above max_header_size so gwd, not MHD,
	 * sees an oversized head and answers 431/414 with its own JSON body (a
	 * first head that does not fit at all is door.c's 414/431; a later one
	 * on a keep-alive connection stalls in MHD 0.9.75 until the head
	 * timeout). But no more: MHD zeroes the whole
	 * pool for every request on a keep-alive connection (memset of 80 KiB
	 * was 9 % of gwd's CPU at 64 KiB + 16 KiB). */
	size_t mem = srv_head_room(cfg);
	unsigned tmo = (cfg->client_timeout_ms + 999) / 1000;
	/* MHD refuses MHD_OPTION_LISTEN_SOCKET with MHD_USE_NO_LISTEN_SOCKET,
	 * even an invalid one: the option is there only with a socket */
	struct MHD_OptionItem lopts[] = {
		{ lfd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, lfd, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	return MHD_start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG |
			(tls ? MHD_USE_TLS : 0) | (lfd < 0 ? MHD_USE_NO_LISTEN_SOCKET : 0),
		0, NULL, NULL, ahc, w,
		MHD_OPTION_ARRAY, tls ? tls_mhd_options() : no_opts,   /* tls.c: certificates */
		MHD_OPTION_ARRAY, lopts,                                /* the listen socket, if any */
		MHD_OPTION_URI_LOG_CALLBACK, uri_cb, w,
		MHD_OPTION_NOTIFY_COMPLETED, completed_cb, w,
		MHD_OPTION_NOTIFY_CONNECTION, conn_cb, w,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
		MHD_OPTION_CONNECTION_LIMIT, climit,
		MHD_OPTION_CONNECTION_TIMEOUT, tmo ? tmo : 1u,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
		MHD_OPTION_END);
}

struct MHD_Daemon *srv_daemon_start(gw_worker *w, int lfd, const gwd_config *cfg, int nworkers)
{
	return daemon_start(w, lfd, cfg, nworkers, 0);
}

struct MHD_Daemon *srv_daemon_start_tls(gw_worker *w, int lfd, const gwd_config *cfg, int nworkers)
{
	return daemon_start(w, lfd, cfg, nworkers, 1);
}

const cfg_listen *srv_listen_addr(const gwd_config *cfg, size_t i, int *tls)
{
	if (tls)
		*tls = i >= cfg->nlisten;
	return i < cfg->nlisten ? &cfg->listen[i] : &cfg->tls_listen[i - cfg->nlisten];
}

int srv_start(const gwd_config *cfg, char *err, size_t errlen)
{
	int n = cfg->threads;
	if (n <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (int)c : 1;
	}
	if (n > 256)
		n = 256;
	if (proxy_global_init() != 0) {
		snprintf(err, errlen, "libcurl initialisation failed");
		return -1;
	}
	srv_workers = calloc((size_t)n, sizeof *srv_workers);
	if (!srv_workers) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv_nworkers = n;
	for (int i = 0; i < n; i++)
		srv_workers[i].evfd = srv_workers[i].epfd = -1;
	size_t nl = cfg->nlisten + cfg->ntls_listen;     /* plain, then TLS */
	int *lfds = calloc(nl ? nl : 1, sizeof *lfds);
	if (!lfds) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t k = 0; k < nl; k++)
		if (listen_socket(srv_listen_addr(cfg, k, NULL), 1, err, errlen) != 0) {
			free(lfds);
			return -1;
		}
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < nl; k++) {
			lfds[k] = listen_socket(srv_listen_addr(cfg, k, NULL), 0, err, errlen);
			if (lfds[k] < 0) {
				while (k-- > 0)
					close(lfds[k]);
				free(lfds);
				return -1;
			}
		}
		srv_workers[i].idx = i;
		if (loop_worker_init(&srv_workers[i], lfds, nl, cfg, n, err, errlen) != 0) {
			free(lfds);
			return -1;
		}
	}
	free(lfds);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&srv_workers[i].th, NULL, loop_run, &srv_workers[i]) != 0) {
			snprintf(err, errlen, "cannot start worker thread %d", i);
			srv_nworkers = i;
			return -1;
		}
	}
	for (size_t k = 0; k < nl; k++) {
		int tls;
		const cfg_listen *l = srv_listen_addr(cfg, k, &tls);
		log_info("listening on %s:%d%s (%d workers)", l->host, l->port, tls ? " (TLS)" : "", n);
	}
	return 0;
}

void srv_stop(int how)
{
	for (int i = 0; i < srv_nworkers; i++) {
		gw_worker *w = &srv_workers[i];
		int cur = atomic_load(&w->stop);
		if (how > cur)
			atomic_store(&w->stop, how);
		uint64_t one = 1;
		ssize_t k = write(w->evfd, &one, sizeof one);
		(void)k;
	}
}

void srv_join(void)
{
	for (int i = 0; i < srv_nworkers; i++)
		if (!srv_workers[i].joined) {
			pthread_join(srv_workers[i].th, NULL);
			srv_workers[i].joined = 1;
		}
	for (int i = 0; i < srv_nworkers; i++)
		loop_worker_free(&srv_workers[i]);
	free(srv_workers);
	srv_workers = NULL;
	srv_nworkers = 0;
}

void srv_get_stats(srv_stats *out)
{
	memset(out, 0, sizeof *out);
	for (int i = 0; i < srv_nworkers; i++) {
		const gw_worker *w = &srv_workers[i];
		out->requests += w->requests;
		out->proxied += w->proxied;
		out->errors += w->errors;
		/* with the ones door.c holds until their first head is in */
		out->connections += w->nconn + door_waiting(w);
		out->in_flight += w->nreq;
	}
}

/*
 * req.c — the request as plugins and actions see it (plugin.h): the
 * per-request arena, header edit lists, accessors, template expansion.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"
#include "tls.h"

_Thread_local uint64_t gw_tl_now;

/* ---------------------------------------------------------------- arena
 * Bump allocation from a block inside the request (no malloc for a usual
 * request); larger needs get their own blocks, freed with the request. */
void *srv_alloc(gw_req *r, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n <= r->aleft) {
		void *p = r->ap;
		r->ap += n;
		r->aleft -= n;
		return p;
	}
	size_t bs = n > 4096 - sizeof(gw_arena_blk) - 16 ? n + 16 : 4096 - sizeof(gw_arena_blk);
	gw_arena_blk *b = malloc(sizeof *b + 16 + bs);
	if (!b)
		return NULL;
	b->next = r->blk;
	r->blk = b;
	char *base = (char *)(((uintptr_t)(b + 1) + 15) & ~(uintptr_t)15);
	if (bs - n >= 256 && bs - n > r->aleft) {   /* keep the rest for later */
		r->ap = base + n;
		r->aleft = bs - n;
	}
	return base;
}

char *srv_strndup(gw_req *r, const char *s, size_t n)
{
	char *p = srv_alloc(r, n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void *gw_req_alloc(gw_req *r, size_t n) { return srv_alloc(r, n); }

/* -------------------------------------------------------- header edits */
int hlist_push(gw_req *r, gw_hlist *l, const char *name, size_t nlen,
               const char *val, size_t vlen, int op)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 8;
		gw_hdr *v = srv_alloc(r, nc * sizeof *v);
		if (!v)
			return -1;
		if (l->n)
			memcpy(v, l->v, l->n * sizeof *v);
		l->v = v;
		l->cap = nc;
	}
	gw_hdr *h = &l->v[l->n++];
	h->name = name; h->nlen = nlen;
	h->val = val; h->vlen = vlen;
	h->op = op;
	return 0;
}

const gw_hdr *hlist_find(const gw_hlist *l, const char *name, size_t nlen)
{
	for (size_t i = l->n; i-- > 0;)
		if (l->v[i].nlen == nlen && !strncasecmp(l->v[i].name, name, nlen))
			return &l->v[i];
	return NULL;
}

/* A header value may come from a template that includes other headers:
 * never let CR or LF through into a header line. */
static char *clean_value(gw_req *r, const char *v, size_t n)
{
	char *p = srv_strndup(r, v, n);
	if (p)
		for (size_t i = 0; i < n; i++)
			if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
				p[i] = ' ';
	return p;
}

static int edit(gw_req *r, gw_hlist *l, const char *name, const char *val,
                size_t vlen, int op)
{
	size_t nlen = strlen(name);
	char *n = srv_strndup(r, name, nlen);
	char *v = val ? clean_value(r, val, vlen) : NULL;
	if (!n || (val && !v))
		return -1;
	return hlist_push(r, l, n, nlen, v, val ? vlen : 0, op);
}

int gw_req_set_header(gw_req *r, const char *name, const char *val, size_t vlen)
{
	return edit(r, &r->req_edits, name, val, vlen, HDR_SET);
}

void gw_req_del_header(gw_req *r, const char *name)
{
	edit(r, &r->req_edits, name, NULL, 0, HDR_DEL);
}

int gw_resp_set_header(gw_req *r, const char *name, const char *val, size_t vlen)
{
	return edit(r, &r->resp_edits, name, val, vlen, HDR_SET);
}

int gw_resp_add_header(gw_req *r, const char *name, const char *val, size_t vlen)
{
	return edit(r, &r->resp_edits, name, val, vlen, HDR_ADD);
}

void gw_resp_del_header(gw_req *r, const char *name)
{
	edit(r, &r->resp_edits, name, NULL, 0, HDR_DEL);
}

static int header_n(gw_req *r, const char *name, size_t nlen, const char **v, size_t *vlen)
{
	const gw_hdr *h = hlist_find(&r->req_edits, name, nlen);
	if (h) {
		if (h->op == HDR_DEL)
			return 0;
		*v = h->val;
		*vlen = h->vlen;
		return 1;
	}
	return srv_header_raw_n(r, name, nlen, v, vlen);
}

int gw_req_header(gw_req *r, const char *name, const char **v, size_t *vlen)
{
	return header_n(r, name, strlen(name), v, vlen);
}

/* ------------------------------------------------------------ accessors */
const gwb_table *gw_req_table(const gw_req *r) { return r->t; }
uint32_t gw_req_route(const gw_req *r) { return r->route; }
const char *gw_req_id(const gw_req *r) { return r->id; }
const char *gw_req_client_ip_str(const gw_req *r) { return r->ipstr; }
int gw_req_worker(const gw_req *r) { return r->w->idx; }
int gw_resp_status(const gw_req *r) { return r->status; }
uint64_t gw_now_ms(void) { return gw_tl_now; }

void **gw_req_ctx(gw_req *r, unsigned id)
{
	return id < GW_MAX_PLUGINS ? &r->pctx[id] : NULL;
}

const char *gw_req_method(const gw_req *r, size_t *len)
{
	if (len) *len = r->method_len;
	return r->method;
}

const char *gw_req_host(const gw_req *r, size_t *len)
{
	if (len) *len = r->host_len;
	return r->host ? r->host : "";
}

const char *gw_req_path(const gw_req *r, size_t *len)
{
	if (len) *len = r->path_len;
	return r->path;
}

const char *gw_req_raw_path(const gw_req *r, size_t *len)
{
	if (len) *len = r->rawpath_len;
	return r->uri ? r->uri : "";
}

const char *gw_req_query(const gw_req *r, size_t *len)
{
	if (len) *len = r->query_len;
	return r->query ? r->query : "";
}

int gw_req_client_ip(const gw_req *r, const uint8_t **addr)
{
	if (addr) *addr = r->ip;
	return r->ip_family;
}

/* ------------------------------------------------------------ templates */

/* ${host} is nginx's $host: lower-cased, port and a final dot stripped
 * (what gwc test expands too), so `redirect 301 "https://${host}${path}"`
 * does not carry the plain listener's port to the TLS one */
static int tpl_host(gw_req *r, const char **v, size_t *vlen)
{
	const char *h = r->host ? r->host : "";
	size_t n = gwb_host_key(h, r->host_len);
	char *lc = srv_alloc(r, n + 1);
	if (!lc)
		return 0;
	gwb_host_normalize(h, r->host_len, lc, n + 1);   /* the matcher's host, lower-cased */
	*v = lc;
	*vlen = n;
	return 1;
}

static int tpl_lookup(void *ctx, enum gwb_tplvar var, const char *name, size_t namelen,
                      const char **v, size_t *vlen)
{
	gw_req *r = ctx;
	switch (var) {
	case GWB_V_HOST:   return tpl_host(r, v, vlen);
	case GWB_V_PATH:   *v = r->path; *vlen = r->path_len; return 1;
	case GWB_V_QUERY:  *v = r->query ? r->query : ""; *vlen = r->query_len; return 1;
	case GWB_V_METHOD: *v = r->method; *vlen = r->method_len; return 1;
	case GWB_V_SCHEME: *v = r->tls ? "https" : "http"; *vlen = r->tls ? 5 : 4; return 1;
	case GWB_V_URI:    *v = r->uri; *vlen = r->uri_len; return 1;
	case GWB_V_CLIENT_IP: *v = r->ipstr; *vlen = strlen(r->ipstr); return 1;
	case GWB_V_REQUEST_ID: *v = r->id; *vlen = strlen(r->id); return 1;
	case GWB_V_HEADER: return header_n(r, name, namelen, v, vlen);
	case GWB_V_TLS_CLIENT_SUBJECT: return tls_client_subject(r, v, vlen);
	default: return 0;
	}
}

const char *req_expand_with(gw_req *r, const char *s, size_t n, const char *subject,
                            const gwb_match *m, size_t *len)
{
	char stack[512];
	size_t need = gwb_tpl_expand(s, n, subject, m, tpl_lookup, r, stack, sizeof stack);
	char *out = srv_alloc(r, need + 1);
	if (!out)
		return NULL;
	if (need < sizeof stack)
		memcpy(out, stack, need + 1);
	else
		gwb_tpl_expand(s, n, subject, m, tpl_lookup, r, out, need + 1);
	if (len)
		*len = need;
	return out;
}

const char *gw_req_expand(gw_req *r, uint32_t tpl, size_t *len)
{
	size_t n;
	const char *s = gwb_str(r->t, tpl, &n);
	return req_expand_with(r, s, n, r->match_path, &r->m, len);
}

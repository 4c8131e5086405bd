/*
 * cache.c — the `cache ttl=DUR [key="tpl"]` directive: an in-memory
 * response cache in front of `proxy`, shared by all workers, kept across
 * table reloads (the store, cache_store.c, is global and keyed by the
 * expanded key, not by anything of the table).
 *
 * Per request (content phase, before the proxy instruction):
 *   GET/HEAD only; other methods pass through (X-Cache: MISS).
 *   hit       answered from the store: status, headers and body as the
 *             upstream sent them, `Age`, `X-Cache: HIT`; the proxy is
 *             skipped. HEAD is answered from the GET entry, without body.
 *   miss      a GET becomes the fill of its key: the response is tapped
 *             as it streams to the client and stored if it may be; HEAD
 *             goes upstream as it is and stores nothing.
 *   fill in progress for the key: the request waits (GW_AGAIN) and is
 *             resumed through its worker's loop (gw_worker_post) when
 *             the fill ends: it then finds the response, or, when nothing
 *             was stored, goes upstream without waiting again. So N
 *             concurrent misses make one upstream request.
 *
 * Decisions (RFC 9111 for a shared cache, nginx where it differs little):
 *  - Key: the `key=` template expanded, or by default
 *    "GET <upstream> <host><path>?<query>" with the host lowercased and
 *    the path as normalised and rewritten; the upstream's name is in it
 *    (like nginx's $proxy_host) so two routes sending one URL to
 *    different upstreams never share entries. HEAD looks up as GET.
 *  - Stored: statuses 200 203 301 404 410, unless the response has
 *    Cache-Control no-store, private or no-cache, a Set-Cookie, or
 *    `Vary: *`; a request with Authorization only when the response says
 *    public, s-maxage or must-revalidate.
 *  - Lifetime: s-maxage, else max-age, else Expires - Date, else the
 *    directive's ttl; minus the upstream's Age. Stale entries are not
 *    revalidated: the next request fetches a new response.
 *  - The request's own Cache-Control / Pragma are ignored (as nginx and
 *    Varnish do): a client cannot make the gateway bypass or refresh its
 *    cache. The fill's upstream request drops If-None-Match,
 *    If-Modified-Since, If-Match, If-Unmodified-Since, If-Range and Range
 *    so the upstream answers with the whole response, which is what is
 *    stored; the client gets that 200 (allowed for conditional and range
 *    requests).
 *  - Vary: responses are stored per value of the listed request headers
 *    (as the upstream receives them).
 *  - A response that cannot be stored (for the response's own reasons)
 *    leaves a pass object for min(ttl, 5s): requests for the key then go
 *    upstream at once instead of queueing behind one another.
 *  - Size: the store's cap is gateway.yaml's cache.max_size (default
 *    64 MiB), read when the first table is loaded (the store outlives
 *    reloads, so a new value takes effect at the next start); the
 *    environment variable GW_CACHE_MAX_SIZE (e.g. "16m"), when set,
 *    overrides it (tests, one-off runs). Least recently used entries are
 *    evicted. A body over min(1 MiB, cap / 8) streams through
 *    uncached.
 *  - A waiter waits as long as the fill takes (bounded by the upstream's
 *    read timeout); there is no separate lock timeout.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache_store.h"
#include "content.h"
#include "log.h"
#include "reload.h"

#define CACHE_DEFAULT_CAP ((size_t)64 << 20)
#define CACHE_SHARDS 16
#define CACHE_PASS_MAX_MS 5000u

static cs_store *g_store;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* "64m", "512k", "1g", "1048576" -> bytes; 0 when malformed */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	return *end ? 0 : (size_t)v;
}

static void store_create(void)
{
	/* the configuration gwd started with: reload_init sets it before the
	 * first table load (NULL under gwd -t: the default) */
	const gwd_config *cfg = reload_config();
	size_t cap = cfg && cfg->cache_max_size ? (size_t)cfg->cache_max_size : CACHE_DEFAULT_CAP;
	const char *e = getenv("GW_CACHE_MAX_SIZE");
	if (e && *e) {
		size_t c = parse_size(e);
		if (c)
			cap = c;
		else
			log_warn("GW_CACHE_MAX_SIZE '%s' is not a size (e.g. 64m): using %zu bytes", e, cap);
	}
	g_store = cs_new(cap, CACHE_SHARDS);
	if (g_store)
		log_debug("cache: %zu bytes, entries up to %zu bytes", cap, cs_entry_max(g_store));
}

static int cache_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	(void)t;
	pthread_once(&g_once, store_create);
	if (!g_store) {
		snprintf(err, errlen, "out of memory for the cache store");
		return -1;
	}
	*state = g_store;
	return 0;
}

/* ------------------------------------------------------------ request */
typedef struct cache_waiter {
	cs_waiter cw;                   /* first */
	gw_req *r;                      /* NULL once the request went away */
	int worker;
} cache_waiter;

typedef struct crx {
	gw_req *r;
	cs_store *st;
	uint32_t ttl_ms;
	int woken_pass;                 /* woken from a fill that stored nothing */
	char *key; size_t klen;         /* arena */
	cs_entry *hit;                  /* held until the request is over */
	cs_fill *fill;                  /* we are the fill of our key */
	cache_waiter *wt;               /* we wait on a fill */
	/* the response being captured (malloc'ed: it outlives nothing but
	 * may be larger than an arena should hold) */
	int capturing;
	int status;
	uint32_t age0_s;
	uint64_t expires_ms;
	int64_t clen;
	cs_hdr *hdr; size_t nhdr;
	char *hblock;
	char *vary; size_t vary_len;
	char *body; size_t blen, bcap;
} crx;

static void capture_free(crx *c)
{
	free(c->hdr);
	free(c->hblock);
	free(c->vary);
	free(c->body);
	c->hdr = NULL;
	c->hblock = c->vary = c->body = NULL;
	c->nhdr = c->vary_len = c->blen = c->bcap = 0;
	c->capturing = 0;
}

static int req_hdr(void *ctx, const char *name, const char **v, size_t *vlen)
{
	return gw_req_header(ctx, name, v, vlen);
}

/* on the waiter's worker: the fill it waited on is over */
static void waiter_run(void *arg)
{
	cache_waiter *w = arg;
	gw_req *r = w->r;
	int pass = w->cw.pass;
	free(w);
	if (!r)
		return;                 /* the request went away meanwhile */
	crx *c = *gw_req_ctx(r, CTP_ID_cache);
	c->wt = NULL;
	c->woken_pass = pass;
	gw_req_resume(r);
}

/* on the filler's thread, no lock held */
static void waiter_wake(cs_waiter *cw)
{
	cache_waiter *w = (cache_waiter *)cw;
	if (gw_worker_post(w->worker, waiter_run, w) != 0)
		log_err("cache: cannot wake a request waiting on worker %d (out of memory)", w->worker);
}

/* called by the store with a shard locked: allocate only */
static cs_waiter *mkwaiter(void *ctx)
{
	crx *c = ctx;
	cache_waiter *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->r = c->r;
	w->worker = gw_req_worker(c->r);
	w->cw.wake = waiter_wake;
	c->wt = w;
	return &w->cw;
}

/* the end of a fill that stores nothing; pass: leave a pass object */
static void fill_abandon(crx *c, int pass)
{
	if (!c->fill)
		return;
	uint64_t now = gw_now_ms();
	uint32_t pm = c->ttl_ms < CACHE_PASS_MAX_MS ? c->ttl_ms : CACHE_PASS_MAX_MS;
	cs_fill_done(c->st, c->fill, NULL, NULL, NULL, now, pass ? now + pm : 0);
	c->fill = NULL;
	capture_free(c);
}

static int hdr_is(const char *n, size_t nl, const char *lit)
{
	size_t l = strlen(lit);
	return nl == l && !strncasecmp(n, lit, l);
}

/* is name one of the comma-separated tokens of list? */
static int in_list(const char *list, size_t ll, const char *n, size_t nl)
{
	size_t i = 0;
	while (i < ll) {
		while (i < ll && (list[i] == ',' || list[i] == ' ' || list[i] == '\t'))
			i++;
		size_t s = i;
		while (i < ll && list[i] != ',' && list[i] != ' ' && list[i] != '\t')
			i++;
		if (i - s == nl && nl && !strncasecmp(list + s, n, nl))
			return 1;
	}
	return 0;
}

/* headers not stored: hop-by-hop ones, those the upstream's Connection
 * names, and the ones the cache writes itself */
static int not_stored(const char *n, size_t nl, const char *conn, size_t cl)
{
	static const char *const skip[] = {
		"connection", "keep-alive", "proxy-connection", "te", "trailer",
		"transfer-encoding", "upgrade", "content-length", "age", "x-cache", "set-cookie",
	};
	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
		if (hdr_is(n, nl, skip[i]))
			return 1;
	return conn && in_list(conn, cl, n, nl);
}

/* Vary names (lowercase, each NUL-terminated) appended to c->vary;
 * returns 1 for "*" */
static int vary_add(crx *c, const char *v, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		size_t l = i - s;
		if (!l)
			continue;
		if (l == 1 && v[s] == '*')
			return 1;
		char *nv = realloc(c->vary, c->vary_len + l + 1);
		if (!nv)
			return 1;        /* cannot key the variants: do not store */
		for (size_t k = 0; k < l; k++)
			nv[c->vary_len + k] = (char)tolower((unsigned char)v[s + k]);
		nv[c->vary_len + l] = '\0';
		c->vary = nv;
		c->vary_len += l + 1;
	}
	return 0;
}

/* ----------------------------------------------------------- the tap */
static void tap_head(gw_req *r, void *arg)
{
	crx *c = arg;
	if (!c->fill)
		return;
	capture_free(c);                 /* a retry: start over */
	cs_policy p;
	memset(&p, 0, sizeof p);
	cs_cc_init(&p.cc);
	p.status = gw_up_status(r);
	p.now_s = (int64_t)time(NULL);
	p.default_ttl_ms = c->ttl_ms;
	const char *n, *v, *conn = NULL;
	size_t nl, vl, cl = 0, nh = 0, hbytes = 0;
	for (size_t i = 0; gw_up_header(r, i, &n, &nl, &v, &vl); i++) {
		if (!nl)
			continue;
		if (hdr_is(n, nl, "cache-control"))
			cs_cc_parse(&p.cc, v, vl);
		else if (hdr_is(n, nl, "set-cookie"))
			p.set_cookie = 1;
		else if (hdr_is(n, nl, "vary"))
			p.vary_star |= vary_add(c, v, vl);
		else if (hdr_is(n, nl, "date"))
			p.has_date = cs_http_date(v, vl, &p.date_s) == 0;
		else if (hdr_is(n, nl, "expires")) {
			p.has_expires = 1;
			if (cs_http_date(v, vl, &p.expires_s) != 0)
				p.expires_s = 0;     /* invalid Expires: already expired */
		} else if (hdr_is(n, nl, "age")) {
			int64_t a = 0;
			for (size_t k = 0; k < vl && isdigit((unsigned char)v[k]) && a < (1 << 30); k++)
				a = a * 10 + (v[k] - '0');
			p.age_s = a;
		} else if (hdr_is(n, nl, "connection")) {
			conn = v;
			cl = vl;
		}
	}
	const char *av;
	size_t al;
	p.authorization = gw_req_header(r, "Authorization", &av, &al);
	const char *why;
	int intrinsic;
	int64_t fresh = cs_fresh_ms(&p, &why, &intrinsic);
	c->clen = gw_up_content_length(r);
	if (fresh > 0 && c->clen > (int64_t)cs_entry_max(c->st)) {
		fresh = 0;
		why = "too large";
	}
	if (fresh <= 0) {
		log_debug("request %s: cache: response not stored (%s)", gw_req_id(r), why);
		fill_abandon(c, intrinsic);
		return;
	}
	for (size_t i = 0; gw_up_header(r, i, &n, &nl, &v, &vl); i++)
		if (nl && !not_stored(n, nl, conn, cl)) {
			nh++;
			hbytes += nl + vl;
		}
	c->hdr = calloc(nh ? nh : 1, sizeof *c->hdr);
	c->hblock = malloc(hbytes ? hbytes : 1);
	size_t want = c->clen >= 0 ? (size_t)c->clen : 16384;
	c->body = malloc(want ? want : 1);
	if (!c->hdr || !c->hblock || !c->body) {
		fill_abandon(c, 0);
		return;
	}
	c->bcap = want ? want : 1;
	char *hp = c->hblock;
	for (size_t i = 0; gw_up_header(r, i, &n, &nl, &v, &vl); i++)
		if (nl && !not_stored(n, nl, conn, cl)) {
			cs_hdr *h = &c->hdr[c->nhdr++];
			memcpy(hp, n, nl);
			h->name = hp;
			h->nlen = (uint32_t)nl;
			hp += nl;
			memcpy(hp, v, vl);
			h->val = hp;
			h->vlen = (uint32_t)vl;
			hp += vl;
		}
	c->status = p.status;
	c->age0_s = (uint32_t)p.age_s;
	c->expires_ms = gw_now_ms() + (uint64_t)fresh;
	c->capturing = 1;
}

static void tap_body(gw_req *r, void *arg, const char *p, size_t n)
{
	crx *c = arg;
	if (!c->capturing)
		return;
	if (c->blen + n > cs_entry_max(c->st)) {
		log_debug("request %s: cache: response not stored (too large)", gw_req_id(r));
		fill_abandon(c, 1);
		return;
	}
	if (c->blen + n > c->bcap) {
		size_t nc = c->bcap * 2;
		while (nc < c->blen + n)
			nc *= 2;
		char *nb = realloc(c->body, nc);
		if (!nb) {
			fill_abandon(c, 0);
			return;
		}
		c->body = nb;
		c->bcap = nc;
	}
	memcpy(c->body + c->blen, p, n);
	c->blen += n;
}

static void tap_end(gw_req *r, void *arg, int ok)
{
	crx *c = arg;
	if (!c->fill)
		return;
	if (!c->capturing || !ok || (c->clen >= 0 && (size_t)c->clen != c->blen)) {
		fill_abandon(c, 0);
		return;
	}
	cs_put put = {
		.status = c->status, .age0_s = c->age0_s, .expires_ms = c->expires_ms,
		.hdr = c->hdr, .nhdr = c->nhdr,
		.body = c->body, .body_len = c->blen,
		.vary = c->vary, .vary_len = c->vary_len,
	};
	c->body = NULL;                  /* the store takes it */
	cs_fill_done(c->st, c->fill, &put, req_hdr, r, gw_now_ms(), 0);
	c->fill = NULL;
	capture_free(c);
}

static const gw_resp_tap cache_tap = { tap_head, tap_body, tap_end };

/* ------------------------------------------------------------ handler */
static int miss(gw_req *r)
{
	return gw_resp_set_header(r, "X-Cache", "MISS", 4) ? 500 : GW_OK;
}

static int serve(gw_req *r, crx *c, cs_entry *e)
{
	c->hit = e;
	gw_req_respond(r, e->status, e->body, e->body_len);
	for (size_t i = 0; i < e->nhdr; i++)
		if (gw_resp_add_header(r, e->hdr[i].name, e->hdr[i].val, e->hdr[i].vlen) != 0)
			return 500;
	uint64_t now = gw_now_ms();
	char age[24];
	int n = snprintf(age, sizeof age, "%llu", (unsigned long long)e->age0_s +
	                 (now > e->stored_ms ? (now - e->stored_ms) / 1000 : 0));
	if (gw_resp_set_header(r, "Age", age, (size_t)n) != 0 ||
	    gw_resp_set_header(r, "X-Cache", "HIT", 3) != 0)
		return 500;
	return GW_DONE;
}

/* the default key: "GET <upstream> <host><path>?<query>" */
static int build_key(gw_req *r, const uint32_t *insn, crx *c)
{
	const gwb_table *t = gw_req_table(r);
	size_t tl;
	gwb_str(t, insn[2], &tl);
	if (tl) {
		c->key = (char *)gw_req_expand(r, insn[2], &c->klen);
		return c->key ? 0 : -1;
	}
	const gwb_route *rt = gwb_route_at(t, gw_req_route(r));
	const uint32_t *code = gwb_code(t);
	const char *ups = "";
	size_t ul = 0;
	for (uint32_t pc = rt->phase_pc[GWB_PH_CONTENT]; pc < rt->phase_pc[GWB_PH_HFILTER];) {
		unsigned op = code[pc] & 0xff;
		if (op == GWB_OP_PROXY) {
			ups = gwb_str(t, gwb_upstream_at(t, code[pc + 1])->name, &ul);
			break;
		}
		pc += 1 + gwb_ops[op].nargs;
	}
	size_t hl, pl, ql;
	const char *host = gw_req_host(r, &hl), *path = gw_req_path(r, &pl);
	const char *q = gw_req_query(r, &ql);
	size_t need = 4 + ul + 1 + hl + pl + 1 + ql;
	char *k = gw_req_alloc(r, need + 1);
	if (!k)
		return -1;
	size_t o = 0;
	memcpy(k, "GET ", 4);
	o = 4;
	memcpy(k + o, ups, ul);
	o += ul;
	k[o++] = ' ';
	for (size_t i = 0; i < hl; i++)
		k[o++] = (char)tolower((unsigned char)host[i]);
	memcpy(k + o, path, pl);
	o += pl;
	k[o++] = '?';
	memcpy(k + o, q, ql);
	o += ql;
	k[o] = '\0';
	c->key = k;
	c->klen = o;
	return 0;
}

static int cache_handler(gw_req *r, const uint32_t *insn, void *state)
{
	void **slot = gw_req_ctx(r, CTP_ID_cache);
	crx *c = *slot;
	if (!c) {
		if (!(c = gw_req_alloc(r, sizeof *c)))
			return 500;
		memset(c, 0, sizeof *c);
		c->r = r;
		c->st = state;
		*slot = c;
	}
	size_t ml;
	const char *m = gw_req_method(r, &ml);
	int get = ml == 3 && !memcmp(m, "GET", 3);
	int head = ml == 4 && !memcmp(m, "HEAD", 4);
	if ((!get && !head) || c->woken_pass)
		return miss(r);
	if (!c->key && build_key(r, insn, c) != 0)
		return 500;
	cs_entry *e;
	cs_fill *f;
	switch (cs_lookup(c->st, c->key, c->klen, req_hdr, r, gw_now_ms(), get, mkwaiter, c,
	                  &e, &f)) {
	case CS_HIT:
		return serve(r, c, e);
	case CS_WAIT:
		return GW_AGAIN;
	case CS_PASS:
		return miss(r);
	default:
		if (f) {
			static const char *const cond[] = {
				"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since",
				"If-Range", "Range",
			};
			c->fill = f;
			c->ttl_ms = insn[1];
			for (size_t i = 0; i < sizeof cond / sizeof cond[0]; i++) {
				const char *v;
				size_t vl;
				if (gw_req_header(r, cond[i], &v, &vl))
					gw_req_del_header(r, cond[i]);
			}
			gw_req_tap_response(r, &cache_tap, c);
		}
		return miss(r);
	}
}

static void cache_request_done(gw_req *r, void *state)
{
	crx *c = *gw_req_ctx(r, CTP_ID_cache);
	(void)state;
	if (!c)
		return;
	if (c->hit) {
		cs_release(c->hit);
		c->hit = NULL;
	}
	fill_abandon(c, 0);              /* never proxied, or cut before the tap ended */
	if (c->wt) {
		if (cs_wait_cancel(c->st, &c->wt->cw))
			free(c->wt);
		else
			c->wt->r = NULL;         /* waiter_run, queued on this worker, frees it */
		c->wt = NULL;
	}
	capture_free(c);
}

static const uint8_t cache_ops[] = { GWB_OP_CACHE };

const gw_plugin gw_plugin_cache = {
	.name = "cache",
	.ops = cache_ops, .nops = sizeof cache_ops,
	.init = cache_init,
	.handler = cache_handler,
	.request_done = cache_request_done,
};

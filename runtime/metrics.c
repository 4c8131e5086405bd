/*
 * metrics.c — per-worker counters, the name registry that keys them, the
 * end-of-request hook and the Prometheus text rendering (metrics.h).
 *
 * Data layout:
 *   registry (one, under reg_mu; written at table load, read by scrapes)
 *     route names -> rid, upstream names -> uid, (rid, uid) -> cell id;
 *     id 0 of each is "" (no route / not proxied)
 *   per-table map (the "metrics" plugin's state, built by its init)
 *     route index -> rid, its two cells (not proxied / proxied to the
 *     route's upstream), table upstream index -> uid
 *   per-worker block (mt_worker): chunks of counters by rid, cell and uid
 *
 * Workers touch only their own block and the immutable per-table map; the
 * registry lock is taken by table loads, scrapes, and the rare WAF hit.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accesslog.h"
#include "admin.h"
#include "breaker.h"
#include "core.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "plugin_list.h"
#include "plugins/ratelimit.h"
#include "reload.h"
#include "respond.h"
#include "srv.h"
#include "upgrade.h"

/* this plugin's position in plugin_list.h, for gw_req_ctx */
#define MT_ID_(n) MT_ID_##n,
enum { GW_PLUGIN_LIST(MT_ID_) MT_ID__COUNT };
#undef MT_ID_

/* ------------------------------------------------------------ counters */
typedef _Atomic uint64_t mt_ctr;

/* One writer per counter (its worker): a relaxed load and store, which
 * compile to plain moves, instead of a locked read-modify-write. */
static inline void ctr_add(mt_ctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static inline uint64_t ctr_get(mt_ctr *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* histogram buckets, upper bounds in microseconds; the last is +Inf */
static const uint64_t bucket_us[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_le[] = {
	"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10", "+Inf",
};
#define MT_NB (sizeof bucket_us / sizeof bucket_us[0] + 1)

/* no count: a scrape sums the buckets for it, so _count always equals
 * the +Inf bucket even while requests complete during the scrape */
typedef struct mt_hist {
	mt_ctr b[MT_NB];            /* per bucket (not cumulative) */
	mt_ctr sum_us;
} mt_hist;

typedef struct mt_route {
	mt_hist req, up;
	mt_ctr bytes_in, bytes_out;
	mt_ctr rl[2], cl[2];        /* allowed, limited */
	mt_ctr cache[2];            /* hit, miss */
} mt_route;

typedef struct mt_cell { mt_ctr code[5]; } mt_cell;    /* 1xx .. 5xx */
typedef struct mt_ups { mt_ctr retries; } mt_ups;

#define MT_CHUNK_BITS 8
#define MT_CHUNK (1u << MT_CHUNK_BITS)
#define MT_MAX_IDS (1u << 20)
#define MT_NCHUNKS (MT_MAX_IDS >> MT_CHUNK_BITS)
#define MT_MAX_WORKERS 256    /* srv_start's cap */

typedef struct mt_worker {
	_Atomic(mt_route *) route[MT_NCHUNKS];
	_Atomic(mt_cell *) cell[MT_NCHUNKS];
	_Atomic(mt_ups *) ups[MT_NCHUNKS];
} mt_worker;

static _Atomic(mt_worker *) workers[MT_MAX_WORKERS];

/* the worker's own block, allocated on its first request */
static mt_worker *worker_block(int idx)
{
	if (idx < 0 || idx >= MT_MAX_WORKERS)
		return NULL;
	mt_worker *w = atomic_load_explicit(&workers[idx], memory_order_relaxed);
	if (!w) {
		w = calloc(1, sizeof *w);
		if (w)
			atomic_store_explicit(&workers[idx], w, memory_order_release);
	}
	return w;
}

/* a slot of kind T in chunk array a for id; allocated by the owner */
#define SLOT_FN(name, T, field)                                                \
	static T *name(mt_worker *w, uint32_t id)                              \
	{                                                                      \
		if (id >= MT_MAX_IDS)                                          \
			return NULL;                                           \
		_Atomic(T *) *cp = &w->field[id >> MT_CHUNK_BITS];             \
		T *c = atomic_load_explicit(cp, memory_order_relaxed);         \
		if (!c) {                                                      \
			if (!(c = calloc(MT_CHUNK, sizeof *c)))                \
				return NULL;                                   \
			atomic_store_explicit(cp, c, memory_order_release);    \
		}                                                              \
		return &c[id & (MT_CHUNK - 1)];                                \
	}                                                                      \
	/* reader side: NULL while the chunk does not exist */                 \
	static T *name##_peek(mt_worker *w, uint32_t id)                       \
	{                                                                      \
		T *c = atomic_load_explicit(&w->field[id >> MT_CHUNK_BITS],    \
		                            memory_order_acquire);             \
		return c ? &c[id & (MT_CHUNK - 1)] : NULL;                     \
	}
SLOT_FN(route_slot, mt_route, route)
SLOT_FN(cell_slot, mt_cell, cell)
SLOT_FN(ups_slot, mt_ups, ups)

static void hist_add(mt_hist *h, uint64_t us)
{
	size_t i = 0;
	while (i < MT_NB - 1 && us > bucket_us[i])
		i++;
	ctr_add(&h->b[i], 1);
	ctr_add(&h->sum_us, us);
}

/* ------------------------------------------------------------ registry */
typedef struct strtab {
	char **names; uint32_t n, ncap;
	uint32_t *slot; uint32_t nslot;   /* open addressing; id + 1, 0 = empty */
} strtab;

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint32_t strtab_find(const strtab *t, const char *s)
{
	if (!t->nslot)
		return GWB_NONE;
	uint32_t m = t->nslot - 1;
	for (uint32_t i = (uint32_t)fnv(s, strlen(s), FNV0) & m;; i = (i + 1) & m) {
		uint32_t v = t->slot[i];
		if (!v)
			return GWB_NONE;
		if (!strcmp(t->names[v - 1], s))
			return v - 1;
	}
}

static int strtab_grow(strtab *t)
{
	uint32_t ns = t->nslot ? t->nslot * 2 : 64;
	uint32_t *sl = calloc(ns, sizeof *sl);
	if (!sl)
		return -1;
	for (uint32_t id = 0; id < t->n; id++) {
		const char *s = t->names[id];
		uint32_t i = (uint32_t)fnv(s, strlen(s), FNV0) & (ns - 1);
		while (sl[i])
			i = (i + 1) & (ns - 1);
		sl[i] = id + 1;
	}
	free(t->slot);
	t->slot = sl;
	t->nslot = ns;
	return 0;
}

/* id of s, added if new; GWB_NONE when out of memory or out of ids */
static uint32_t strtab_intern(strtab *t, const char *s)
{
	uint32_t id = strtab_find(t, s);
	if (id != GWB_NONE)
		return id;
	if (t->n >= MT_MAX_IDS)
		return GWB_NONE;
	if ((t->n + 1) * 2 > t->nslot && strtab_grow(t) != 0)
		return GWB_NONE;
	if (t->n == t->ncap) {
		uint32_t nc = t->ncap ? t->ncap * 2 : 64;
		char **nn = realloc(t->names, nc * sizeof *nn);
		if (!nn)
			return GWB_NONE;
		t->names = nn;
		t->ncap = nc;
	}
	char *copy = strdup(s);
	if (!copy)
		return GWB_NONE;
	id = t->n++;
	t->names[id] = copy;
	uint32_t m = t->nslot - 1, i = (uint32_t)fnv(s, strlen(s), FNV0) & m;
	while (t->slot[i])
		i = (i + 1) & m;
	t->slot[i] = id + 1;
	return id;
}

static void strtab_free(strtab *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	free(t->slot);
	memset(t, 0, sizeof *t);
}

/* cells: (rid, uid) pairs */
typedef struct celltab {
	uint64_t *key; uint32_t n, ncap;   /* key[id] = rid << 32 | uid */
	uint32_t *slot; uint32_t nslot;
} celltab;

static uint32_t cell_hash(uint64_t k) { return (uint32_t)((k * 0x9e3779b97f4a7c15ull) >> 32); }

static uint32_t celltab_intern(celltab *t, uint32_t rid, uint32_t uid)
{
	uint64_t k = (uint64_t)rid << 32 | uid;
	if (t->nslot) {
		uint32_t m = t->nslot - 1;
		for (uint32_t i = cell_hash(k) & m; t->slot[i]; i = (i + 1) & m)
			if (t->key[t->slot[i] - 1] == k)
				return t->slot[i] - 1;
	}
	if (t->n >= MT_MAX_IDS)
		return GWB_NONE;
	if ((t->n + 1) * 2 > t->nslot) {
		uint32_t ns = t->nslot ? t->nslot * 2 : 64;
		uint32_t *sl = calloc(ns, sizeof *sl);
		if (!sl)
			return GWB_NONE;
		for (uint32_t id = 0; id < t->n; id++) {
			uint32_t i = cell_hash(t->key[id]) & (ns - 1);
			while (sl[i])
				i = (i + 1) & (ns - 1);
			sl[i] = id + 1;
		}
		free(t->slot);
		t->slot = sl;
		t->nslot = ns;
	}
	if (t->n == t->ncap) {
		uint32_t nc = t->ncap ? t->ncap * 2 : 64;
		uint64_t *nk = realloc(t->key, nc * sizeof *nk);
		if (!nk)
			return GWB_NONE;
		t->key = nk;
		t->ncap = nc;
	}
	uint32_t id = t->n++;
	t->key[id] = k;
	uint32_t m = t->nslot - 1, i = cell_hash(k) & m;
	while (t->slot[i])
		i = (i + 1) & m;
	t->slot[i] = id + 1;
	return id;
}

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static strtab reg_routes, reg_ups;
static celltab reg_cells;
/* a route's `tag` labels ("a\0b\0\0", NULL: none) by rid, from the last
 * table that had the route: tags are static per route, so the per-tag
 * series are the route's counts, summed at scrape time (no request cost) */
static char **reg_rtags; static uint32_t reg_rtags_n;
static ups_registry *ups_reg;
static double start_time_s;
/* metrics.enabled, set by metrics_init before the workers start and read
 * by them only (no atomics needed: thread creation orders it) */
static int mt_on = 1;

int metrics_enabled(void) { return mt_on; }

/* does this request need a per-request context at all? the counters do,
 * and so does the access log (verdicts, upstream side) */
static inline int mt_wanted(void)
{
	return mt_on || accesslog_enabled();
}

/* under reg_mu: "" is id 0 of routes and upstreams, ("", "") cell 0 */
static int reg_ready(void)
{
	if (reg_routes.n && reg_ups.n && reg_cells.n)
		return 0;
	if (strtab_intern(&reg_routes, "") != 0 || strtab_intern(&reg_ups, "") != 0 ||
	    celltab_intern(&reg_cells, 0, 0) != 0)
		return -1;
	return 0;
}

/* ---------------------------------------------------- WAF hit counters */
/* WAF hits are rare (attacks) and keyed by strings: one shared table under
 * reg_mu rather than per-worker string maps */
typedef struct waf_ctr {
	struct waf_ctr *next;
	uint32_t rid;
	char *rule, *cls;
	uint64_t blocks, detections;
} waf_ctr;
#define WAF_BUCKETS 256
static waf_ctr *waf_tab[WAF_BUCKETS];
static waf_ctr **waf_order; static size_t waf_n, waf_cap;   /* render order */

static void waf_count(uint32_t rid, const char *rule, const char *cls, int blocked)
{
	uint64_t h = fnv(&rid, sizeof rid, FNV0);
	h = fnv(rule, strlen(rule) + 1, h);
	h = fnv(cls, strlen(cls), h);
	waf_ctr **bp = &waf_tab[h & (WAF_BUCKETS - 1)];
	pthread_mutex_lock(&reg_mu);
	waf_ctr *c = *bp;
	while (c && !(c->rid == rid && !strcmp(c->rule, rule) && !strcmp(c->cls, cls)))
		c = c->next;
	if (!c && waf_n == waf_cap) {
		size_t nc = waf_cap ? waf_cap * 2 : 16;
		waf_ctr **no = realloc(waf_order, nc * sizeof *no);
		if (no) {
			waf_order = no;
			waf_cap = nc;
		}
	}
	if (!c && waf_n < waf_cap && (c = calloc(1, sizeof *c))) {
		c->rid = rid;
		c->rule = strdup(rule);
		c->cls = strdup(cls);
		if (!c->rule || !c->cls) {
			free(c->rule);
			free(c->cls);
			free(c);
			c = NULL;
		} else {
			c->next = *bp;
			*bp = c;
			waf_order[waf_n++] = c;
		}
	}
	if (c) {
		if (blocked)
			c->blocks++;
		else
			c->detections++;
	}
	pthread_mutex_unlock(&reg_mu);
}

/* --------------------------------------------- per-table map (plugin) */
typedef struct mt_rmap {
	uint32_t rid;
	uint32_t cell_none;          /* (rid, "") */
	uint32_t cell_ups;           /* (rid, uid of ups), or cell_none */
	uint32_t ups;                /* table index of the route's proxy upstream, GWB_NONE */
	uint8_t cache;               /* the route has a cache directive */
} mt_rmap;

typedef struct mt_tmap {
	uint32_t nroutes, nups;
	uint32_t *uid;               /* by table upstream index */
	mt_rmap routes[];
} mt_tmap;

static void mt_dispose(void *state)
{
	mt_tmap *m = state;
	if (m) {
		free(m->uid);
		free(m);
	}
}

/* under reg_mu: reg_rtags[rid] <- the route's tags in declaration order
 * (a repeated one once, as logctl labels the request); best effort when
 * out of memory (no tag series) */
static void rtags_note(const gwb_table *t, const gwb_route *rt, uint32_t rid)
{
	const uint32_t *code = gwb_code(t);
	size_t len = 1;
	for (uint32_t pc = rt->phase_pc[GWB_PH_LOG]; pc < rt->phase_pc[GWB_PH_LOG + 1];) {
		uint32_t op = code[pc] & 0xff;
		if (op == GWB_OP_TAG)
			len += strlen(gwb_str(t, code[pc + 1], NULL)) + 1;
		pc += 1 + gwb_ops[op].nargs;
	}
	if (rid >= reg_rtags_n) {
		if (len == 1)
			return;
		uint32_t nn = rid + 64;
		char **nt = realloc(reg_rtags, nn * sizeof *nt);
		if (!nt)
			return;
		memset(nt + reg_rtags_n, 0, (nn - reg_rtags_n) * sizeof *nt);
		reg_rtags = nt;
		reg_rtags_n = nn;
	}
	free(reg_rtags[rid]);
	reg_rtags[rid] = NULL;
	char *v = len > 1 ? malloc(len) : NULL;
	if (!v)
		return;
	size_t at = 0;
	for (uint32_t pc = rt->phase_pc[GWB_PH_LOG]; pc < rt->phase_pc[GWB_PH_LOG + 1];) {
		uint32_t op = code[pc] & 0xff;
		if (op == GWB_OP_TAG) {
			const char *tg = gwb_str(t, code[pc + 1], NULL);
			int seen = 0;
			for (const char *q = v; q < v + at && !seen; q += strlen(q) + 1)
				seen = !strcmp(q, tg);
			if (!seen) {
				memcpy(v + at, tg, strlen(tg) + 1);
				at += strlen(tg) + 1;
			}
		}
		pc += 1 + gwb_ops[op].nargs;
	}
	v[at] = '\0';
	reg_rtags[rid] = v;
}

static int mt_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	uint32_t nr = gwb_nroutes(t), nu = gwb_nupstreams(t);
	mt_tmap *m = calloc(1, sizeof *m + (size_t)nr * sizeof m->routes[0]);
	if (!m || !(m->uid = calloc(nu ? nu : 1, sizeof *m->uid))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->nroutes = nr;
	m->nups = nu;
	const uint32_t *code = gwb_code(t);
	int full = 0;
	pthread_mutex_lock(&reg_mu);
	if (reg_ready() != 0) {
		pthread_mutex_unlock(&reg_mu);
		mt_dispose(m);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < nu; i++) {
		m->uid[i] = strtab_intern(&reg_ups, gwb_str(t, gwb_upstream_at(t, i)->name, NULL));
		if (m->uid[i] == GWB_NONE) {
			m->uid[i] = 0;
			full = 1;
		}
	}
	for (uint32_t i = 0; i < nr; i++) {
		const gwb_route *rt = gwb_route_at(t, i);
		mt_rmap *e = &m->routes[i];
		e->rid = strtab_intern(&reg_routes, gwb_str(t, rt->name, NULL));
		if (e->rid == GWB_NONE) {
			e->rid = 0;
			full = 1;
		}
		e->ups = GWB_NONE;
		for (uint32_t pc = rt->phase_pc[GWB_PH_CONTENT]; pc < rt->phase_pc[GWB_PH_CONTENT + 1];) {
			uint32_t op = code[pc] & 0xff;
			if (op == GWB_OP_PROXY)
				e->ups = code[pc + 1];
			else if (op == GWB_OP_CACHE)
				e->cache = 1;
			pc += 1 + gwb_ops[op].nargs;
		}
		rtags_note(t, rt, e->rid);
		e->cell_none = celltab_intern(&reg_cells, e->rid, 0);
		e->cell_ups = e->ups == GWB_NONE ? e->cell_none
		                                 : celltab_intern(&reg_cells, e->rid, m->uid[e->ups]);
		if (e->cell_none == GWB_NONE || e->cell_ups == GWB_NONE) {
			e->cell_none = e->cell_ups = 0;
			full = 1;
		}
	}
	pthread_mutex_unlock(&reg_mu);
	if (full)
		log_warn("metrics: more than %u route or upstream names since start (or out of "
		         "memory): the others are counted under route=\"\"", MT_MAX_IDS);
	*state = m;
	return 0;
}

const gw_plugin gw_plugin_metrics = {
	.name = "metrics",
	.ops = NULL, .nops = 0,
	.init = mt_init,
	.dispose = mt_dispose,
};

/* ------------------------------------------------------- per request */
typedef struct mt_reqctx {
	uint8_t rl, cl;              /* 0 none, 1 allowed, 2 limited */
	uint8_t waf;                 /* 0 none, 1 detect, 2 block */
	const char *waf_rule, *waf_cls;
	/* the proxy side, noted before the proxy is recycled */
	uint8_t proxied;
	unsigned attempts;
	int up_status;
	int64_t up_us;
	uint64_t px_bytes_out;
	const char *up_server;
} mt_reqctx;

static mt_reqctx *reqctx(gw_req *r, int create)
{
	void **slot = gw_req_ctx(r, MT_ID_metrics);
	if (!*slot && create) {
		mt_reqctx *c = gw_req_alloc(r, sizeof *c);
		if (c) {
			memset(c, 0, sizeof *c);
			c->up_us = -1;
		}
		*slot = c;
	}
	return *slot;
}

void metrics_count_ratelimit(gw_req *r, int allowed)
{
	if (!mt_wanted())
		return;
	mt_reqctx *c = reqctx(r, 1);
	if (c && c->rl != 2)
		c->rl = allowed ? 1 : 2;
}

void metrics_count_connlimit(gw_req *r, int allowed)
{
	if (!mt_wanted())
		return;
	mt_reqctx *c = reqctx(r, 1);
	if (c && c->cl != 2)
		c->cl = allowed ? 1 : 2;
}

void metrics_count_waf(gw_req *r, const char *rule, const char *cls, int blocked)
{
	if (!mt_wanted())
		return;
	mt_reqctx *c = reqctx(r, 1);
	if (!c)
		return;
	/* a block outranks a detection seen before it */
	if (c->waf == 2 && !blocked)
		return;
	c->waf = blocked ? 2 : 1;
	c->waf_rule = rule ? rule : "";
	c->waf_cls = cls ? cls : "";
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void metrics_req_proxied(gw_req *r)
{
	gw_proxy *px = r->px;
	mt_reqctx *c;
	if (!px || !mt_wanted() || !(c = reqctx(r, 1)))
		return;
	c->proxied = 1;
	c->attempts = px->attempts;
	c->up_status = px->head_state ? px->status : 0;
	if (px->ntried) {
		const ups_server *s = px->tried[px->ntried - 1];
		c->up_server = srv_strndup(r, s->addr, strlen(s->addr));
	}
	if (px->attempts) {
		curl_off_t t = 0;
		if (curl_easy_getinfo(px->easy, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK && t >= 0)
			c->up_us = (int64_t)t;
	}
	if (px->failed && !px->started) {
		/* gwd answered with its own error (srv.c queue_error) */
		c->px_bytes_out = respond_json_error(NULL, 0, px->fail_msg ? px->fail_msg
		                                     : respond_error_text(px->failed), r->id);
	} else if (px->started && r->mbit != GWB_M_HEAD && px->status != 204 &&
	           px->status != 304) {
		/* streamed: what curl took from the upstream minus what is still
		 * waiting in the ring (not handed to MHD); a small body went to
		 * MHD as one buffer, the ring itself (proxy_response) */
		curl_off_t dl = 0;
		curl_easy_getinfo(px->easy, CURLINFO_SIZE_DOWNLOAD_T, &dl);
		if (!px->streaming)
			c->px_bytes_out = px->down.len;
		else
			c->px_bytes_out = dl > 0 && (uint64_t)dl > px->down.len
			                ? (uint64_t)dl - px->down.len : 0;
	}
}

/* the body of an answer gwd made itself (srv.c queue_own / queue_error) */
static uint64_t own_bytes(gw_req *r)
{
	if (r->err_msg || (r->own_status >= 400 && !r->own_body))
		return respond_json_error(NULL, 0, r->err_msg ? r->err_msg
		                          : respond_error_text(r->own_status), r->id);
	return r->own_body_len;
}

void metrics_req_done(gw_req *r, int completed)
{
	(void)completed;
	int logged = accesslog_enabled() && !gw_req_log_off(r);
	if (!mt_on && !logged)
		return;                  /* metrics off and no line to write */
	mt_reqctx *c = reqctx(r, 0);
	const mt_tmap *tm = r->tab ? r->tab->pstate[MT_ID_metrics] : NULL;
	const mt_rmap *rm = tm && r->rt && r->route < tm->nroutes ? &tm->routes[r->route] : NULL;
	int proxied = c && c->proxied;

	metrics_rec m = { .upstream_us = -1 };
	/* an answer never queued: MHD refused the head itself (400), or the
	 * client went away first (nginx's 499) */
	m.status = r->status ? r->status : r->state == RQ_NEW ? 400 : 499;
	if (r->start_ms) {
		uint64_t now = mono_us() / 1000;
		m.duration_ms = now > r->start_ms ? now - r->start_ms : 0;
	}
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	m.bytes_in = (ci ? ci->header_size : 0) + r->body_seen;
	if (!r->status || r->mbit == GWB_M_HEAD)
		m.bytes_out = 0;
	else if (proxied && r->kind == K_PROXY)
		m.bytes_out = c->px_bytes_out;
	else
		m.bytes_out = own_bytes(r);
	uint32_t uid = 0;
	if (r->rt)
		m.route = gwb_str(r->t, r->rt->name, NULL);
	if (proxied) {
		m.upstream = gwb_str(r->t, gwb_upstream_at(r->t, r->proxy_ups)->name, NULL);
		m.upstream_server = c->up_server;
		m.upstream_status = c->up_status;
		m.upstream_us = c->up_us;
		m.attempts = c->attempts;
		if (tm && r->proxy_ups < tm->nups)
			uid = tm->uid[r->proxy_ups];
	}
	if (c) {
		static const char *const verdict[] = { NULL, "allowed", "limited" };
		m.ratelimit = verdict[c->rl];
		m.connlimit = verdict[c->cl];
		if (c->waf) {
			m.waf_action = c->waf == 2 ? "block" : "detect";
			m.waf_rule = c->waf_rule;
			m.waf_class = c->waf_cls;
		}
	}
	if (rm && rm->cache) {
		const gw_hdr *h = hlist_find(&r->resp_edits, "X-Cache", 7);
		if (h && h->op != HDR_DEL)
			m.cache = h->vlen == 3 && !strncmp(h->val, "HIT", 3) ? "hit" : "miss";
	}

	/* count */
	mt_worker *w = mt_on ? worker_block(r->w->idx) : NULL;
	if (w) {
		uint32_t rid = rm ? rm->rid : 0;
		uint32_t cell = !rm ? 0 : proxied && rm->ups == r->proxy_ups ? rm->cell_ups
		                                                             : rm->cell_none;
		int cls = m.status / 100;
		cls = cls < 1 ? 1 : cls > 5 ? 5 : cls;
		mt_cell *ce = cell_slot(w, cell);
		if (ce)
			ctr_add(&ce->code[cls - 1], 1);
		mt_route *rs = route_slot(w, rid);
		if (rs) {
			hist_add(&rs->req, m.duration_ms * 1000);
			if (m.upstream_us >= 0)
				hist_add(&rs->up, (uint64_t)m.upstream_us);
			ctr_add(&rs->bytes_in, m.bytes_in);
			ctr_add(&rs->bytes_out, m.bytes_out);
			if (c && c->rl)
				ctr_add(&rs->rl[c->rl - 1], 1);
			if (c && c->cl)
				ctr_add(&rs->cl[c->cl - 1], 1);
			if (m.cache)
				ctr_add(&rs->cache[m.cache[0] == 'h' ? 0 : 1], 1);
		}
		if (m.attempts > 1 && uid) {
			mt_ups *us = ups_slot(w, uid);
			if (us)
				ctr_add(&us->retries, m.attempts - 1);
		}
		if (c && c->waf)
			waf_count(rid, c->waf_rule, c->waf_cls, c->waf == 2);
	}

	if (logged)
		accesslog_request(r, &m);
}

/* ------------------------------------------------------------ text out */
static int buf_reserve(metrics_buf *b, size_t n)
{
	if (b->oom)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	size_t nc = b->cap ? b->cap : 4096;
	while (nc < b->len + n + 1)
		nc *= 2;
	char *p = realloc(b->p, nc);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = nc;
	return 0;
}

static void buf_put(metrics_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_puts(metrics_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_printf(metrics_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(metrics_buf *b, const char *fmt, ...)
{
	if (buf_reserve(b, 64) != 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		if (buf_reserve(b, (size_t)n) != 0)
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static void buf_cat(metrics_buf *b, const metrics_buf *x)
{
	if (x->oom)
		b->oom = 1;
	else if (x->len)
		buf_put(b, x->p, x->len);
}

void metrics_buf_free(metrics_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* a label value: backslash, double quote and line feed escaped */
static void put_lv(metrics_buf *b, const char *s)
{
	size_t i = 0, start = 0;
	for (; s[i]; i++) {
		const char *e = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : NULL;
		if (e) {
			buf_put(b, s + start, i - start);
			buf_put(b, e, 2);
			start = i + 1;
		}
	}
	buf_put(b, s + start, i - start);
}

static void family(metrics_buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2"...} value — labels as NULL-terminated k, v pairs */
static void sample(metrics_buf *b, const char *name, uint64_t v, ...)
{
	va_list ap;
	buf_puts(b, name);
	va_start(ap, v);
	const char *k = va_arg(ap, const char *);
	for (int first = 1; k; first = 0) {
		buf_puts(b, first ? "{" : ",");
		buf_puts(b, k);
		buf_puts(b, "=\"");
		put_lv(b, va_arg(ap, const char *));
		buf_puts(b, "\"");
		if (!(k = va_arg(ap, const char *)))
			buf_puts(b, "}");
	}
	va_end(ap);
	buf_printf(b, " %llu\n", (unsigned long long)v);
}

static void hist_out(metrics_buf *b, const char *name, const char *route, const uint64_t *bk,
                     uint64_t sum_us, uint64_t count)
{
	uint64_t cum = 0;
	for (size_t i = 0; i < MT_NB; i++) {
		cum += bk[i];
		buf_printf(b, "%s_bucket{route=\"", name);
		put_lv(b, route);
		buf_printf(b, "\",le=\"%s\"} %llu\n", bucket_le[i], (unsigned long long)cum);
	}
	buf_printf(b, "%s_sum{route=\"", name);
	put_lv(b, route);
	buf_printf(b, "\"} %llu.%06llu\n", (unsigned long long)(sum_us / 1000000),
	           (unsigned long long)(sum_us % 1000000));
	buf_printf(b, "%s_count{route=\"", name);
	put_lv(b, route);
	buf_printf(b, "\"} %llu\n", (unsigned long long)count);
}

/* a route's counters summed over the workers */
typedef struct route_sum {
	uint64_t req_b[MT_NB], req_sum, req_n;
	uint64_t up_b[MT_NB], up_sum, up_n;
	uint64_t bytes_in, bytes_out, rl[2], cl[2], cache[2];
} route_sum;

static mt_worker *worker_peek(int i)
{
	return atomic_load_explicit(&workers[i], memory_order_acquire);
}

static void route_sum_get(uint32_t rid, route_sum *s)
{
	memset(s, 0, sizeof *s);
	for (int i = 0; i < MT_MAX_WORKERS; i++) {
		mt_worker *w = worker_peek(i);
		mt_route *r = w ? route_slot_peek(w, rid) : NULL;
		if (!r)
			continue;
		for (size_t k = 0; k < MT_NB; k++) {
			s->req_b[k] += ctr_get(&r->req.b[k]);
			s->up_b[k] += ctr_get(&r->up.b[k]);
		}
		s->req_sum += ctr_get(&r->req.sum_us);
		s->up_sum += ctr_get(&r->up.sum_us);
		s->bytes_in += ctr_get(&r->bytes_in);
		s->bytes_out += ctr_get(&r->bytes_out);
		for (int k = 0; k < 2; k++) {
			s->rl[k] += ctr_get(&r->rl[k]);
			s->cl[k] += ctr_get(&r->cl[k]);
			s->cache[k] += ctr_get(&r->cache[k]);
		}
	}
	for (size_t k = 0; k < MT_NB; k++) {
		s->req_n += s->req_b[k];
		s->up_n += s->up_b[k];
	}
}

static void cell_sum_get(uint32_t cell, uint64_t out[5])
{
	memset(out, 0, 5 * sizeof out[0]);
	for (int i = 0; i < MT_MAX_WORKERS; i++) {
		mt_worker *w = worker_peek(i);
		mt_cell *c = w ? cell_slot_peek(w, cell) : NULL;
		for (int k = 0; c && k < 5; k++)
			out[k] += ctr_get(&c->code[k]);
	}
}

static uint64_t ups_retries_get(uint32_t uid)
{
	uint64_t n = 0;
	for (int i = 0; i < MT_MAX_WORKERS; i++) {
		mt_worker *w = worker_peek(i);
		mt_ups *u = w ? ups_slot_peek(w, uid) : NULL;
		if (u)
			n += ctr_get(&u->retries);
	}
	return n;
}

/* upstream servers, from the upstream registry (not under reg_mu) */
typedef struct srv_out {
	metrics_buf up, drain, active, req, fail, brk, brk_opened, hc, hc_fail;
	uint64_t now_ms;
} srv_out;

static int srv_one(ups_upstream *u, void *ctx)
{
	srv_out *o = ctx;
	const char *un = ups_name(u);
	ups_snapshot *s = ups_acquire(u);
	if (!s)
		return 0;
	const gwb_upstream *opt = ups_options(u);
	int has_brk = opt && (opt->flags & GWB_UPS_BREAKER);
	for (size_t i = 0; i < s->n; i++) {
		ups_server *sv = s->servers[i];
		int down = atomic_load(&sv->health_down) ||
		           (uint64_t)atomic_load(&sv->down_until_ms) > o->now_ms;
		sample(&o->up, "gw_upstream_server_up", !down, "upstream", un, "server", sv->addr, NULL);
		sample(&o->drain, "gw_upstream_server_draining", atomic_load(&sv->drain) != 0,
		       "upstream", un, "server", sv->addr, NULL);
		int act = atomic_load(&sv->active);
		sample(&o->active, "gw_upstream_server_active_requests", act > 0 ? (uint64_t)act : 0,
		       "upstream", un, "server", sv->addr, NULL);
		sample(&o->req, "gw_upstream_server_requests_total", atomic_load(&sv->requests),
		       "upstream", un, "server", sv->addr, NULL);
		sample(&o->fail, "gw_upstream_server_failures_total", atomic_load(&sv->failures),
		       "upstream", un, "server", sv->addr, NULL);
		if (has_brk) {
			brk_info bi;
			breaker_info(sv, o->now_ms, &bi);
			static const brk_phase ph[] = { BRK_CLOSED, BRK_OPEN, BRK_HALF_OPEN };
			for (size_t k = 0; k < 3; k++)
				sample(&o->brk, "gw_upstream_server_breaker_state", bi.phase == ph[k],
				       "upstream", un, "server", sv->addr, "state", brk_phase_name(ph[k]),
				       NULL);
			sample(&o->brk_opened, "gw_upstream_server_breaker_opened_total", bi.opened,
			       "upstream", un, "server", sv->addr, NULL);
		}
	}
	ups_release(s);
	return 0;
}

/* active health checks (health.h), one target per (upstream, address) */
static void hc_one(const char *upstream, const char *addr, const health_info *hi, void *ctx)
{
	srv_out *o = ctx;
	sample(&o->hc, "gw_upstream_health_checks_total", hi->checks, "upstream", upstream,
	       "server", addr, NULL);
	sample(&o->hc_fail, "gw_upstream_health_check_failures_total", hi->failures, "upstream",
	       upstream, "server", addr, NULL);
}

int metrics_render(metrics_buf *b)
{
	/* outside reg_mu: these take the reload and upstream locks, which a
	 * table load holds while it calls mt_init (which takes reg_mu) */
	reload_info ri;
	reload_get_info(&ri);
	srv_stats st;
	srv_get_stats(&st);
	srv_out so = { .now_ms = mono_us() / 1000 };
	if (ups_reg)
		ups_foreach(ups_reg, srv_one, &so);
	/* separately: not with the upstream registry held */
	health_foreach(hc_one, &so);
	uint64_t alines = 0, adropped = 0;
	accesslog_counts(&alines, &adropped);

	family(b, "gw_build_info", "gauge", "gwd version (value 1).");
	sample(b, "gw_build_info", 1, "version", PACKAGE_VERSION, NULL);
	family(b, "process_start_time_seconds", "gauge", "Start time of gwd since the epoch.");
	buf_printf(b, "process_start_time_seconds %.3f\n", start_time_s);
	family(b, "gw_table_generation", "gauge", "Generation of the routing table in use (1, 2, ...).");
	sample(b, "gw_table_generation", ri.generation, NULL);
	family(b, "gw_table_info", "gauge", "Routing table in use: SHA-256 of its sources (value 1).");
	sample(b, "gw_table_info", 1, "source_hash", ri.hash, NULL);
	family(b, "gw_reloads_total", "counter", "Table and configuration reloads by result.");
	sample(b, "gw_reloads_total", ri.reloads_ok, "result", "ok", NULL);
	sample(b, "gw_reloads_total", ri.reloads_failed, "result", "error", NULL);
	family(b, "gw_connections_active", "gauge", "Client connections open.");
	sample(b, "gw_connections_active", st.connections, NULL);
	family(b, "gw_requests_in_flight", "gauge", "Requests being served.");
	sample(b, "gw_requests_in_flight", st.in_flight, NULL);
	upgrade_stats us;                         /* upgrade.h: WebSocket and others */
	upgrade_get_stats(&us);
	family(b, "gw_upgrade_handshakes_total", "counter",
	       "Upgrade requests (WebSocket...) forwarded to an upstream.");
	sample(b, "gw_upgrade_handshakes_total", us.handshakes, NULL);
	family(b, "gw_upgraded_connections_total", "counter",
	       "Connections upgraded (the upstream answered 101) and relayed.");
	sample(b, "gw_upgraded_connections_total", us.upgraded, NULL);
	family(b, "gw_upgraded_connections_active", "gauge", "Upgraded connections being relayed.");
	sample(b, "gw_upgraded_connections_active", us.open, NULL);
	family(b, "gw_upgraded_bytes_total", "counter",
	       "Bytes relayed on upgraded connections after the 101, by direction.");
	sample(b, "gw_upgraded_bytes_total", us.bytes_up, "direction", "client_to_upstream", NULL);
	sample(b, "gw_upgraded_bytes_total", us.bytes_down, "direction", "upstream_to_client", NULL);

	family(b, "gw_upstream_server_up", "gauge",
	       "1 if the server is healthy (not ejected by failures or health checks), else 0.");
	buf_cat(b, &so.up);
	family(b, "gw_upstream_server_draining", "gauge",
	       "1 if the server is drained through the admin API (no new requests).");
	buf_cat(b, &so.drain);
	family(b, "gw_upstream_server_active_requests", "gauge", "Requests in flight to the server.");
	buf_cat(b, &so.active);
	family(b, "gw_upstream_server_requests_total", "counter", "Requests sent to the server.");
	buf_cat(b, &so.req);
	family(b, "gw_upstream_server_failures_total", "counter",
	       "Requests to the server that failed (connect error, timeout, retried status).");
	buf_cat(b, &so.fail);
	family(b, "gw_upstream_server_breaker_state", "gauge",
	       "Circuit breaker of the server (upstreams with a circuit_breaker block): 1 for the "
	       "state it is in.");
	buf_cat(b, &so.brk);
	family(b, "gw_upstream_server_breaker_opened_total", "counter",
	       "Times the server's circuit breaker opened.");
	buf_cat(b, &so.brk_opened);
	family(b, "gw_upstream_health_checks_total", "counter",
	       "Active health checks completed (upstreams with a health_check block).");
	buf_cat(b, &so.hc);
	family(b, "gw_upstream_health_check_failures_total", "counter",
	       "Active health checks that failed.");
	buf_cat(b, &so.hc_fail);
	metrics_buf *sb[] = { &so.up, &so.drain, &so.active, &so.req, &so.fail, &so.brk,
	                      &so.brk_opened, &so.hc, &so.hc_fail };
	for (size_t i = 0; i < sizeof sb / sizeof sb[0]; i++)
		metrics_buf_free(sb[i]);

	enum { F_REQ, F_TAG, F_DUR, F_UP, F_IN, F_OUT, F_RL, F_CL, F_CACHE, F_RETRY, F_WAFB, F_WAFD,
	       F__N };
	metrics_buf f[F__N];
	memset(f, 0, sizeof f);
	static const char *const cls[5] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	pthread_mutex_lock(&reg_mu);
	/* per tagged route, its cells summed over upstreams */
	uint64_t (*tagged)[5] = reg_rtags_n ? calloc(reg_rtags_n, sizeof *tagged) : NULL;
	for (uint32_t cell = 0; cell < reg_cells.n; cell++) {
		uint64_t code[5];
		cell_sum_get(cell, code);
		uint32_t rid = (uint32_t)(reg_cells.key[cell] >> 32);
		const char *rn = reg_routes.names[rid];
		const char *un = reg_ups.names[(uint32_t)reg_cells.key[cell]];
		for (int k = 0; k < 5; k++) {
			if (code[k])
				sample(&f[F_REQ], "gw_requests_total", code[k], "route", rn, "upstream", un,
				       "code_class", cls[k], NULL);
			if (tagged && rid < reg_rtags_n && reg_rtags[rid])
				tagged[rid][k] += code[k];
		}
	}
	for (uint32_t rid = 0; tagged && rid < reg_rtags_n; rid++)
		for (const char *tg = reg_rtags[rid]; tg && *tg; tg += strlen(tg) + 1)
			for (int k = 0; k < 5; k++)
				if (tagged[rid][k])
					sample(&f[F_TAG], "gw_tag_requests_total", tagged[rid][k], "tag", tg,
					       "route", reg_routes.names[rid], "code_class", cls[k], NULL);
	free(tagged);
	for (uint32_t rid = 0; rid < reg_routes.n; rid++) {
		route_sum s;
		route_sum_get(rid, &s);
		if (!s.req_n)
			continue;         /* a route not used yet: no series */
		const char *rn = reg_routes.names[rid];
		hist_out(&f[F_DUR], "gw_request_duration_seconds", rn, s.req_b, s.req_sum, s.req_n);
		if (s.up_n)
			hist_out(&f[F_UP], "gw_upstream_duration_seconds", rn, s.up_b, s.up_sum, s.up_n);
		sample(&f[F_IN], "gw_received_bytes_total", s.bytes_in, "route", rn, NULL);
		sample(&f[F_OUT], "gw_sent_bytes_total", s.bytes_out, "route", rn, NULL);
		if (s.rl[0] || s.rl[1]) {
			sample(&f[F_RL], "gw_ratelimit_decisions_total", s.rl[0], "route", rn, "result",
			       "allowed", NULL);
			sample(&f[F_RL], "gw_ratelimit_decisions_total", s.rl[1], "route", rn, "result",
			       "limited", NULL);
		}
		if (s.cl[0] || s.cl[1]) {
			sample(&f[F_CL], "gw_connlimit_decisions_total", s.cl[0], "route", rn, "result",
			       "allowed", NULL);
			sample(&f[F_CL], "gw_connlimit_decisions_total", s.cl[1], "route", rn, "result",
			       "limited", NULL);
		}
		if (s.cache[0] || s.cache[1]) {
			sample(&f[F_CACHE], "gw_cache_requests_total", s.cache[0], "route", rn, "result",
			       "hit", NULL);
			sample(&f[F_CACHE], "gw_cache_requests_total", s.cache[1], "route", rn, "result",
			       "miss", NULL);
		}
	}
	for (uint32_t uid = 1; uid < reg_ups.n; uid++)
		sample(&f[F_RETRY], "gw_upstream_retries_total", ups_retries_get(uid), "upstream",
		       reg_ups.names[uid], NULL);
	for (size_t i = 0; i < waf_n; i++) {
		const waf_ctr *c = waf_order[i];
		const char *rn = c->rid < reg_routes.n ? reg_routes.names[c->rid] : "";
		if (c->blocks)
			sample(&f[F_WAFB], "gw_waf_blocks_total", c->blocks, "route", rn, "rule", c->rule,
			       "class", c->cls, NULL);
		if (c->detections)
			sample(&f[F_WAFD], "gw_waf_detections_total", c->detections, "route", rn, "rule",
			       c->rule, "class", c->cls, NULL);
	}
	pthread_mutex_unlock(&reg_mu);

	static const struct { const char *name, *type, *help; } fam[F__N] = {
		{ "gw_requests_total", "counter",
		  "Requests answered, by route, upstream (\"\" when gwd answered itself) and status class." },
		{ "gw_tag_requests_total", "counter",
		  "Requests answered by routes with a `tag`, by tag, route and status class." },
		{ "gw_request_duration_seconds", "histogram",
		  "Time from the request head to the end of the response, by route." },
		{ "gw_upstream_duration_seconds", "histogram",
		  "Time of the last upstream attempt (connect to last byte), by route." },
		{ "gw_received_bytes_total", "counter", "Request bytes received (head and body), by route." },
		{ "gw_sent_bytes_total", "counter", "Response body bytes sent, by route." },
		{ "gw_ratelimit_decisions_total", "counter", "rate_limit decisions by route and result." },
		{ "gw_connlimit_decisions_total", "counter", "conn_limit decisions by route and result." },
		{ "gw_cache_requests_total", "counter", "Cache lookups by route and result." },
		{ "gw_upstream_retries_total", "counter", "Upstream attempts beyond the first, by upstream." },
		{ "gw_waf_blocks_total", "counter", "Requests refused by the WAF, by route, rule and class." },
		{ "gw_waf_detections_total", "counter",
		  "WAF hits in detect mode (not refused), by route, rule and class." },
	};
	for (int i = 0; i < F__N; i++) {
		family(b, fam[i].name, fam[i].type, fam[i].help);
		buf_cat(b, &f[i]);
		metrics_buf_free(&f[i]);
	}

	family(b, "gw_ratelimit_redis_fallbacks_total", "counter",
	       "rate_limit decisions taken locally because Redis could not answer in time.");
	sample(b, "gw_ratelimit_redis_fallbacks_total", atomic_load(&gw_rl_redis_fallbacks), NULL);
	family(b, "gw_ratelimit_redis_errors_total", "counter",
	       "Redis error replies and lost connections of the rate limiter.");
	sample(b, "gw_ratelimit_redis_errors_total", atomic_load(&gw_rl_redis_errors), NULL);
	family(b, "gw_ratelimit_evictions_total", "counter",
	       "Rate-limit buckets dropped to make room in the local store.");
	sample(b, "gw_ratelimit_evictions_total", atomic_load(&gw_rl_evictions), NULL);
	family(b, "gw_access_log_lines_total", "counter", "Access log lines queued for writing.");
	sample(b, "gw_access_log_lines_total", alines, NULL);
	family(b, "gw_access_log_dropped_total", "counter",
	       "Access log lines dropped because the writer could not keep up.");
	sample(b, "gw_access_log_dropped_total", adropped, NULL);
	return b->oom ? -1 : 0;
}

int metrics_route_stats_get(const char *route, metrics_route_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&reg_mu);
	uint32_t rid = strtab_find(&reg_routes, route);
	if (rid == GWB_NONE) {
		pthread_mutex_unlock(&reg_mu);
		return -1;
	}
	for (uint32_t cell = 0; cell < reg_cells.n; cell++) {
		if (reg_cells.key[cell] >> 32 != rid)
			continue;
		uint64_t code[5];
		cell_sum_get(cell, code);
		for (int k = 0; k < 5; k++) {
			out->by_class[k] += code[k];
			out->requests += code[k];
		}
	}
	pthread_mutex_unlock(&reg_mu);
	route_sum s;
	route_sum_get(rid, &s);
	out->bytes_in = s.bytes_in;
	out->bytes_out = s.bytes_out;
	out->duration_sum_s = (double)s.req_sum / 1e6;
	return 0;
}

/* ------------------------------------------------------------ set-up */
static void admin_metrics(const char *method, const char *path, const char *body, size_t len,
                          admin_reply *out, void *ctx)
{
	(void)method; (void)path; (void)body; (void)len; (void)ctx;
	metrics_buf b = { 0 };
	if (metrics_render(&b) != 0) {
		metrics_buf_free(&b);
		out->status = 500;
		out->body = strdup("out of memory\n");
		out->len = out->body ? strlen(out->body) : 0;
		return;
	}
	out->status = 200;
	out->ctype = METRICS_CONTENT_TYPE;
	out->body = b.p;
	out->len = b.len;
}

int metrics_init(ups_registry *reg, const gwd_config *cfg, char *err, size_t errlen)
{
	mt_on = cfg ? cfg->metrics_enabled : 1;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	start_time_s = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
	ups_reg = reg;
	pthread_mutex_lock(&reg_mu);
	int rc = reg_ready();
	pthread_mutex_unlock(&reg_mu);
	if (rc != 0 || (mt_on && admin_route_add("GET", "/metrics", 0, admin_metrics, NULL) != 0)) {
		snprintf(err, errlen, "metrics: out of memory");
		return -1;
	}
	if (!mt_on)
		log_info("metrics are off (metrics.enabled: false): no GET /metrics");
	return 0;
}

void metrics_shutdown(void)
{
	for (int i = 0; i < MT_MAX_WORKERS; i++) {
		mt_worker *w = atomic_exchange(&workers[i], NULL);
		if (!w)
			continue;
		for (uint32_t k = 0; k < MT_NCHUNKS; k++) {
			free(atomic_load(&w->route[k]));
			free(atomic_load(&w->cell[k]));
			free(atomic_load(&w->ups[k]));
		}
		free(w);
	}
	pthread_mutex_lock(&reg_mu);
	strtab_free(&reg_routes);
	strtab_free(&reg_ups);
	free(reg_cells.key);
	free(reg_cells.slot);
	memset(&reg_cells, 0, sizeof reg_cells);
	for (uint32_t i = 0; i < reg_rtags_n; i++)
		free(reg_rtags[i]);
	free(reg_rtags);
	reg_rtags = NULL;
	reg_rtags_n = 0;
	for (size_t i = 0; i < waf_n; i++) {
		free(waf_order[i]->rule);
		free(waf_order[i]->cls);
		free(waf_order[i]);
	}
	free(waf_order);
	waf_order = NULL;
	waf_n = waf_cap = 0;
	memset(waf_tab, 0, sizeof waf_tab);
	ups_reg = NULL;
	pthread_mutex_unlock(&reg_mu);
}

/*
 * upstream.c — runtime state of upstreams (contract: upstream.h).
 *
 * Design
 * ------
 * Objects and lifetimes.
 *   registry ── map (immutable array of the upstreams of the last synced
 *                table, sorted by name; replaced as a whole)
 *            └─ all upstreams ever seen (an upstream that leaves the table
 *               keeps its state and comes back with it; freed only by
 *               ups_registry_free, so a ups_upstream* cached by the core for
 *               a table stays valid for the registry's whole life)
 *   upstream ── cur: the current snapshot (immutable, refcounted)
 *            └─ options: every distinct gwb_upstream ever synced, newest
 *               first; ups_options() returns the newest and the pointer
 *               stays valid until ups_registry_free (options change rarely,
 *               identical reloads add nothing)
 *   snapshot ── servers[] (ups_server*, shared between snapshots by refcount)
 *            ├─ tiers: primaries and backups (indexes into servers[])
 *            ├─ per-worker smooth-WRR rows, allocated on first use
 *            └─ consistent-hash rings (balance hash only)
 *
 * Readers never lock. ups_acquire() must turn "the current snapshot" into a
 * counted reference without the snapshot being freed between the load of
 * the pointer and the increment. Each upstream has a pin counter: a reader
 * increments it, loads cur, takes a ref, decrements it (a few ns). A writer
 * swaps cur with one atomic exchange, then waits until the pin counter is
 * zero before dropping the registry's ref to the old snapshot: any reader
 * that loaded the old pointer had pinned before the exchange (all seq_cst),
 * so once pin reads zero every such reader already holds its own ref. The
 * name -> upstream map uses the same scheme (ups_find pins the registry).
 * Writers (ups_sync, ups_set_servers) serialise on the registry mutex.
 * In-flight requests keep the snapshot they acquired; the old snapshot and
 * the servers only it referenced are freed by the last ups_release().
 *
 * Persisting servers. A new snapshot reuses the ups_server of the previous
 * one with the same addr (first unused match, so duplicates pair up in
 * order): counters, fail window and ejection survive reloads and admin
 * changes. If that server's configuration changed (weight, max_fails,
 * fail_timeout, backup), a new ups_server is made because those fields are
 * read without synchronisation; it copies fails/ejection/health/requests/
 * failures, but `active` starts at 0 (in-flight requests decrement the old
 * object), so least_conn briefly under-counts it.
 *
 * Sync is all-or-nothing: every new upstream, snapshot and option version is
 * prepared first; on any failure nothing is changed and -1 is returned.
 * A sync whose server list and balance are unchanged keeps the snapshot (so
 * round-robin state is not reset by reloads that do not touch it).
 *
 * Balancing (per tier: primaries first, then backups; see ups_pick):
 *   round_robin  nginx's smooth weighted round robin. Each worker keeps its
 *                own current-weight row in the snapshot (worker % 64), so
 *                the hot path writes no shared cache line; a swap starts
 *                fresh rows. Unlike nginx there is no effective_weight
 *                slow start after failures: ejected servers are skipped.
 *   least_conn   fewest active/weight (compared as a.active*b.weight), ties
 *                broken by smooth WRR among the tied servers (as nginx).
 *   ip_hash      nginx's: hash 89, h = (h*113 + byte) % 6271 over the first
 *                three octets of IPv4 (and of v4-mapped IPv6) or all 16 bytes
 *                of IPv6, server = h % total tier weight walked by weight;
 *                unavailable -> rehash (same bytes, from the last h), up to
 *                20 times, then the next available server in list order.
 *                Everything depends only on the address and the server set,
 *                so a client keeps its server while the set is unchanged and
 *                clients of a down server land deterministically. No address
 *                -> round robin.
 *   hash         consistent hashing, ketama-like: each server has
 *                160*weight points (scaled to at most 160k per tier) placed
 *                by a hash of its addr, so adding or removing one server
 *                moves only ~1/n of the keys. Key: FNV-1a 64 + murmur3
 *                finaliser; the first available point clockwise wins. A
 *                request without a key hashes the empty key (as nginx).
 *   random       weighted, thread-local xorshift64* seeded per thread.
 *
 * ups_pick order: available and not yet tried primaries, then backups;
 * when every available server was already tried (c->exclude), the same
 * again ignoring exclude, so a retry goes to a different server when there
 * is one and to the same one otherwise (interfaces.md). A tried primary
 * counts as unavailable for this request, so an untried backup wins over
 * retrying it, as in nginx.
 *
 * Passive health (nginx's max_fails/fail_timeout). A failure opens a window
 * of fail_timeout if none is open; max_fails failures inside it eject the
 * server until now + fail_timeout (down_until_ms). After that the server is
 * picked again, but stays "on probation" until a success: one more failure
 * ejects it again at once (nginx does the same: its fails stay >= max_fails
 * until a success). A success clears fails and probation. max_fails 0 never
 * ejects; fail_timeout 0 means nginx's default, 10 s. Failures reported
 * while the server is ejected (requests that started before) are ignored.
 * Counters are updated with atomics and no lock; two failures racing at a
 * window boundary may be counted in either window, which is harmless.
 *
 * Counters: `requests` counts ups_conn_begin (attempts, retries included),
 * `failures` counts ups_report(ok=0), `active` is begin minus end.
 *
 * When every server (primaries and backups) is ejected, health_down or
 * behind an open circuit breaker (breaker.h), ups_pick returns NULL and the core answers 503. We do NOT reset the
 * servers and try anyway as old nginx did (and as nginx still does for an
 * upstream with a single server): the operator asked for max_fails, and a
 * 503 within microseconds is kinder to clients and to a dying origin than
 * a connect timeout per request. Servers come back after fail_timeout.
 */
#include <config.h>   /* <>: runtime/config.h is gwd's config, not autoconf's */

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "upstream.h"

#define UPS_WORKERS          64      /* per-worker rr rows per snapshot */
#define RING_PER_WEIGHT      160u
#define RING_MAX             (160u * 1024u)  /* points per tier */
#define DEFAULT_FAIL_TIMEOUT 10000u
#define IPHASH_TRIES         20

/* an owned copy of one server's configuration */
typedef struct spec {
	char *addr, *host;
	int port, https, backup, drain;
	uint32_t weight, max_fails, fail_timeout_ms;
} spec;

typedef struct ring_pt { uint32_t hash, idx; } ring_pt;

typedef struct tier {
	uint32_t *idx; size_t n;        /* indexes into servers[] */
	uint64_t total_weight;
	ring_pt *ring; size_t nring;    /* balance hash only */
} tier;

typedef struct snap {
	ups_snapshot pub;               /* first: ups_snapshot* == snap* */
	uint32_t balance;
	tier t[2];                      /* 0 primaries, 1 backups */
	_Atomic(atomic_llong *) rr[UPS_WORKERS];
} snap;

typedef struct optver {
	struct optver *next;
	gwb_upstream o;
} optver;

struct ups_upstream {
	char *name;
	ups_registry *reg;
	_Atomic(snap *) cur;            /* never NULL once published */
	atomic_int pin;
	_Atomic(const gwb_upstream *) opts;
	/* below: only under reg->mu */
	optver *optvers;
	spec *tbl; size_t ntbl;         /* the last synced table's list */
	spec *ovr; size_t novr;         /* admin override */
	atomic_int has_ovr;             /* also read without the lock */
};

typedef struct umap {
	ups_upstream **v; size_t n;     /* sorted by name */
} umap;

struct ups_registry {
	pthread_mutex_t mu;
	_Atomic(umap *) map;            /* upstreams of the last synced table */
	atomic_int pin;
	ups_upstream **all; size_t nall; /* every upstream, sorted by name (mu) */
};

/* ------------------------------------------------------------- helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
}

static void wait_unpinned(atomic_int *pin)
{
	while (atomic_load(pin) != 0)
		sched_yield();
}

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;       /* FNV-1a 64 */
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return fmix64(h);                          /* FNV mixes high bits poorly */
}

static _Thread_local uint64_t rng_state;

static uint64_t rng_next(void)
{
	if (rng_state == 0) {
		static atomic_ullong seq;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
		             (uint64_t)(uintptr_t)&rng_state ^
		             (atomic_fetch_add(&seq, 1) + 1) * 0x9e3779b97f4a7c15ULL;
		rng_state = fmix64(x) | 1;
	}
	uint64_t x = rng_state;                    /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* ------------------------------------------------------------- specs */

static void spec_clear(spec *s)
{
	free(s->addr);
	free(s->host);
	memset(s, 0, sizeof *s);
}

static void specs_free(spec *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		spec_clear(&v[i]);
	free(v);
}

static int spec_init(spec *s, const char *addr, uint32_t weight,
                     uint32_t max_fails, uint32_t fail_timeout_ms, int backup,
                     int https, char *err, size_t errlen)
{
	addr_parsed ap;
	memset(s, 0, sizeof *s);
	if (!addr) {
		set_err(err, errlen, "bad address (null)");
		return -1;
	}
	if (addr_parse(addr, strlen(addr), &ap, err, errlen) < 0)
		return -1;
	if (weight < 1 || weight > UPS_MAX_WEIGHT) {
		set_err(err, errlen, "bad weight %u for '%s' (must be 1..%u)",
		        weight, addr, UPS_MAX_WEIGHT);
		return -1;
	}
	s->addr = strdup(addr);
	s->host = strdup(ap.host);
	if (!s->addr || !s->host) {
		spec_clear(s);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	s->port = ap.port;
	s->https = https || ap.https;
	s->backup = backup != 0;
	s->weight = weight;
	s->max_fails = max_fails;
	s->fail_timeout_ms = fail_timeout_ms ? fail_timeout_ms : DEFAULT_FAIL_TIMEOUT;
	return 0;
}

/* same configuration: the ups_server can be shared as is */
static bool srv_matches(const ups_server *v, const spec *s)
{
	return strcmp(v->addr, s->addr) == 0 && v->weight == s->weight &&
	       v->max_fails == s->max_fails &&
	       v->fail_timeout_ms == s->fail_timeout_ms &&
	       v->backup == s->backup && v->https == s->https;
}

/* ----------------------------------------------------------- servers */

static void server_free(ups_server *v)
{
	free(v->addr);
	free(v->host);
	free(v);
}

static void server_unref(ups_server *v)
{
	if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
		server_free(v);
}

static ups_server *server_new(const spec *s, const ups_server *from)
{
	ups_server *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->addr = strdup(s->addr);
	v->host = strdup(s->host);
	if (!v->addr || !v->host) {
		server_free(v);
		return NULL;
	}
	v->port = s->port;
	v->https = s->https;
	v->weight = s->weight;
	v->max_fails = s->max_fails;
	v->fail_timeout_ms = s->fail_timeout_ms;
	v->backup = s->backup;
	atomic_init(&v->drain, s->drain);
	atomic_init(&v->refs, 1);
	atomic_init(&v->active, 0);
	/* same addr, new configuration: carry the passive-health state over */
	atomic_init(&v->fails, from ? atomic_load(&from->fails) : 0);
	atomic_init(&v->fail_window_start_ms,
	            from ? atomic_load(&from->fail_window_start_ms) : 0);
	atomic_init(&v->down_until_ms, from ? atomic_load(&from->down_until_ms) : 0);
	atomic_init(&v->health_down, from ? atomic_load(&from->health_down) : 0);
	atomic_init(&v->requests, from ? atomic_load(&from->requests) : 0);
	atomic_init(&v->failures, from ? atomic_load(&from->failures) : 0);
	brk_carry(&v->brk, from ? &from->brk : NULL);
	return v;
}

int ups_server_available(const ups_server *s, uint64_t now_ms)
{
	if (atomic_load_explicit(&s->drain, memory_order_relaxed))
		return 0;
	if (atomic_load_explicit(&s->health_down, memory_order_relaxed))
		return 0;
	if (!brk_admits(&s->brk, now_ms))
		return 0;
	long long du = atomic_load_explicit(&s->down_until_ms, memory_order_relaxed);
	return du == 0 || now_ms >= (uint64_t)du;
}

/* --------------------------------------------------------- snapshots */

static void snap_free(snap *s)
{
	for (size_t i = 0; i < s->pub.n; i++)
		server_unref(s->pub.servers[i]);
	free(s->pub.servers);
	for (int k = 0; k < 2; k++) {
		free(s->t[k].idx);
		free(s->t[k].ring);
	}
	for (int w = 0; w < UPS_WORKERS; w++)
		free(atomic_load_explicit(&s->rr[w], memory_order_relaxed));
	free(s);
}

static int ring_cmp(const void *a, const void *b)
{
	const ring_pt *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int ring_build(snap *s, tier *t)
{
	if (t->n == 0)
		return 0;
	/* points per weight unit, scaled down so a tier has at most RING_MAX */
	uint64_t want = t->total_weight * RING_PER_WEIGHT;
	size_t cap = 0;
	for (size_t i = 0; i < t->n; i++) {
		uint64_t w = s->pub.servers[t->idx[i]]->weight;
		uint64_t p = want > RING_MAX ? w * RING_MAX / t->total_weight
		                             : w * RING_PER_WEIGHT;
		cap += p ? p : 1;
	}
	t->ring = malloc(cap * sizeof *t->ring);
	if (!t->ring)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < t->n; i++) {
		const ups_server *v = s->pub.servers[t->idx[i]];
		uint64_t w = v->weight;
		uint64_t p = want > RING_MAX ? w * RING_MAX / t->total_weight
		                             : w * RING_PER_WEIGHT;
		if (!p)
			p = 1;
		/* positions depend only on the addr: stable across list changes */
		uint64_t h = hash_bytes(v->addr, strlen(v->addr));
		for (uint64_t j = 0; j < p; j++) {
			t->ring[k].hash = (uint32_t)(fmix64(h + (j + 1) *
			                  0x9e3779b97f4a7c15ULL) >> 32);
			t->ring[k].idx = t->idx[i];
			k++;
		}
	}
	t->nring = k;
	if (k > 1)
		qsort(t->ring, k, sizeof *t->ring, ring_cmp);
	return 0;
}

/* old servers sorted by addr, for reuse lookups */
static int old_cmp(const void *a, const void *b, void *ctx)
{
	const ups_snapshot *o = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(o->servers[x]->addr, o->servers[y]->addr);
	return c ? c : (x < y ? -1 : x > y);
}

/* Build a snapshot for specs, reusing old's servers with the same addr.
 * Called under the registry mutex. */
static snap *snap_build(const snap *old, const spec *sp, size_t n, uint32_t balance)
{
	snap *s = calloc(1, sizeof *s);
	uint32_t *order = NULL;
	bool *used = NULL;
	size_t nold = old ? old->pub.n : 0;
	if (!s)
		return NULL;
	atomic_init(&s->pub.refs, 1);
	for (int w = 0; w < UPS_WORKERS; w++)
		atomic_init(&s->rr[w], NULL);
	s->balance = balance < GWB_BAL__COUNT ? balance : GWB_BAL_ROUND_ROBIN;
	if (n) {
		s->pub.servers = calloc(n, sizeof *s->pub.servers);
		s->t[0].idx = malloc(n * sizeof *s->t[0].idx);
		s->t[1].idx = malloc(n * sizeof *s->t[1].idx);
		if (!s->pub.servers || !s->t[0].idx || !s->t[1].idx)
			goto fail;
	}
	if (nold) {
		order = malloc(nold * sizeof *order);
		used = calloc(nold, sizeof *used);
		if (!order || !used)
			goto fail;
		for (size_t j = 0; j < nold; j++)
			order[j] = (uint32_t)j;
		qsort_r(order, nold, sizeof *order, old_cmp, (void *)&old->pub);
	}
	for (size_t i = 0; i < n; i++) {
		const ups_server *prev = NULL;
		/* lower bound of sp[i].addr in order[], then the first unused */
		size_t lo = 0, hi = nold;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (strcmp(old->pub.servers[order[mid]]->addr, sp[i].addr) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < nold && strcmp(old->pub.servers[order[lo]]->addr,
		                           sp[i].addr) == 0; lo++) {
			if (!used[order[lo]]) {
				used[order[lo]] = true;
				prev = old->pub.servers[order[lo]];
				break;
			}
		}
		ups_server *v;
		if (prev && srv_matches(prev, &sp[i])) {
			v = (ups_server *)prev;
			atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
		} else if (!(v = server_new(&sp[i], prev))) {
			goto fail;
		}
		s->pub.servers[i] = v;
		s->pub.n = i + 1;
		tier *t = &s->t[v->backup ? 1 : 0];
		t->idx[t->n++] = (uint32_t)i;
		t->total_weight += v->weight;
	}
	if (s->balance == GWB_BAL_HASH &&
	    (ring_build(s, &s->t[0]) < 0 || ring_build(s, &s->t[1]) < 0))
		goto fail;
	free(order);
	free(used);
	return s;
fail:
	free(order);
	free(used);
	snap_free(s);
	return NULL;
}

/* does old already serve exactly sp with this balance? */
static bool snap_same(const snap *old, const spec *sp, size_t n, uint32_t balance)
{
	if (!old || old->pub.n != n || old->balance != balance)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!srv_matches(old->pub.servers[i], &sp[i]))
			return false;
	return true;
}

/* the drain flags of u's current snapshot from want[] (same order; under
 * reg->mu). A flag, not configuration: the objects, shared with older
 * snapshots that in-flight requests hold, stay. */
static void snap_set_drain(ups_upstream *u, const spec *want, size_t n)
{
	snap *s = atomic_load(&u->cur);
	for (size_t i = 0; s && i < s->pub.n && i < n; i++)
		if (atomic_load(&s->pub.servers[i]->drain) != want[i].drain)
			atomic_store(&s->pub.servers[i]->drain, want[i].drain);
}

/* publish s as u's current snapshot (under reg->mu) */
static void snap_swap(ups_upstream *u, snap *s)
{
	snap *old = atomic_exchange(&u->cur, s);
	if (old) {
		wait_unpinned(&u->pin);
		ups_release(&old->pub);
	}
}

ups_snapshot *ups_acquire(ups_upstream *u)
{
	atomic_fetch_add(&u->pin, 1);
	snap *s = atomic_load(&u->cur);
	if (s)
		atomic_fetch_add_explicit(&s->pub.refs, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&u->pin, 1, memory_order_release);
	return s ? &s->pub : NULL;
}

void ups_release(ups_snapshot *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		snap_free((snap *)s);
}

/* --------------------------------------------------------- balancing */

static bool excluded(const ups_pick_ctx *c, const ups_server *v)
{
	for (size_t i = 0; i < c->nexclude; i++)
		if (c->exclude[i] == v)
			return true;
	return false;
}

typedef struct pick {
	snap *s;
	const ups_pick_ctx *c;
	bool honour_exclude;
	/* least_conn: only servers with this active/weight ratio */
	bool lc; uint64_t lc_active, lc_weight;
} pick;

static bool usable(const pick *p, const ups_server *v)
{
	if (!ups_server_available(v, p->c->now_ms))
		return false;
	if (p->honour_exclude && excluded(p->c, v))
		return false;
	if (p->lc) {
		uint64_t a = (uint64_t)atomic_load_explicit(&v->active,
		                                            memory_order_relaxed);
		if (a * p->lc_weight != p->lc_active * v->weight)
			return false;
	}
	return true;
}

static atomic_llong *rr_row(snap *s, int worker)
{
	unsigned w = worker < 0 ? 0 : (unsigned)worker % UPS_WORKERS;
	atomic_llong *row = atomic_load_explicit(&s->rr[w], memory_order_acquire);
	if (row || s->pub.n == 0)
		return row;
	row = malloc(s->pub.n * sizeof *row);
	if (!row)
		return NULL;
	for (size_t i = 0; i < s->pub.n; i++)
		atomic_init(&row[i], 0);
	atomic_llong *expect = NULL;
	if (!atomic_compare_exchange_strong_explicit(&s->rr[w], &expect, row,
	        memory_order_acq_rel, memory_order_acquire)) {
		free(row);          /* two threads shared a worker index */
		row = expect;
	}
	return row;
}

/* nginx's smooth weighted round robin over the usable servers of t. The
 * row is the worker's own; atomics (relaxed) only keep two threads that
 * share a worker index from being undefined behaviour. */
static ups_server *pick_swrr(const pick *p, const tier *t)
{
	atomic_llong *row = rr_row(p->s, p->c->worker);
	long long total = 0, bestcur = 0;
	long best = -1;
	for (size_t k = 0; k < t->n; k++) {
		uint32_t i = t->idx[k];
		const ups_server *v = p->s->pub.servers[i];
		if (!usable(p, v))
			continue;
		if (!row)           /* out of memory: degrade to first usable */
			return (ups_server *)v;
		long long cur = atomic_load_explicit(&row[i], memory_order_relaxed)
		                + v->weight;
		atomic_store_explicit(&row[i], cur, memory_order_relaxed);
		total += v->weight;
		if (best < 0 || cur > bestcur) {
			best = i;
			bestcur = cur;
		}
	}
	if (best < 0)
		return NULL;
	atomic_store_explicit(&row[best], bestcur - total, memory_order_relaxed);
	return p->s->pub.servers[best];
}

static ups_server *pick_least_conn(pick *p, const tier *t)
{
	const ups_server *min = NULL;
	uint64_t ma = 0;
	for (size_t k = 0; k < t->n; k++) {
		const ups_server *v = p->s->pub.servers[t->idx[k]];
		if (!usable(p, v))
			continue;
		uint64_t a = (uint64_t)atomic_load_explicit(&v->active,
		                                            memory_order_relaxed);
		if (!min || a * min->weight < ma * v->weight) {
			min = v;
			ma = a;
		}
	}
	if (!min)
		return NULL;
	p->lc = true;
	p->lc_active = ma;
	p->lc_weight = min->weight;
	ups_server *v = pick_swrr(p, t);
	p->lc = false;
	/* another thread changed `active` in between: the min will do */
	return v ? v : (ups_server *)min;
}

static ups_server *pick_first_from(const pick *p, const tier *t, size_t from)
{
	for (size_t j = 0; j < t->n; j++) {
		ups_server *v = p->s->pub.servers[t->idx[(from + j) % t->n]];
		if (usable(p, v))
			return v;
	}
	return NULL;
}

static ups_server *pick_ip_hash(const pick *p, const tier *t)
{
	const ups_pick_ctx *c = p->c;
	const uint8_t *a = c->client_ip;
	size_t alen;
	static const uint8_t v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	if (t->n == 0)
		return NULL;
	if (a && c->client_ip_len == 4) {
		alen = 3;
	} else if (a && c->client_ip_len == 16) {
		if (memcmp(a, v4mapped, 12) == 0) {
			a += 12;
			alen = 3;
		} else {
			alen = 16;
		}
	} else {
		return pick_swrr(p, t);
	}
	uint32_t h = 89;
	size_t k = 0;
	for (int tries = 0; tries < IPHASH_TRIES; tries++) {
		for (size_t i = 0; i < alen; i++)
			h = (h * 113 + a[i]) % 6271;
		/* the whole tier's weight, down servers included: a server going
		 * down does not move the clients of the others */
		uint64_t w = h % t->total_weight;
		for (k = 0; k < t->n; k++) {
			uint32_t sw = p->s->pub.servers[t->idx[k]]->weight;
			if (w < sw)
				break;
			w -= sw;
		}
		ups_server *v = p->s->pub.servers[t->idx[k]];
		if (usable(p, v))
			return v;
	}
	return pick_first_from(p, t, k + 1);
}

static ups_server *pick_hash(const pick *p, const tier *t)
{
	if (t->nring == 0)
		return NULL;
	/* when nothing is usable, say so now instead of walking the ring */
	if (!pick_first_from(p, t, 0))
		return NULL;
	const ups_pick_ctx *c = p->c;
	uint32_t h = (uint32_t)(hash_bytes(c->hash_key ? c->hash_key : "",
	                                   c->hash_key ? c->hash_key_len : 0) >> 32);
	size_t lo = 0, hi = t->nring;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t j = 0; j < t->nring; j++) {
		ups_server *v = p->s->pub.servers[t->ring[(lo + j) % t->nring].idx];
		if (usable(p, v))
			return v;
	}
	return NULL;
}

static ups_server *pick_random(const pick *p, const tier *t)
{
	uint64_t total = 0;
	for (size_t k = 0; k < t->n; k++) {
		const ups_server *v = p->s->pub.servers[t->idx[k]];
		if (usable(p, v))
			total += v->weight;
	}
	if (total == 0)
		return NULL;
	uint64_t r = rng_next() % total;
	ups_server *last = NULL;
	for (size_t k = 0; k < t->n; k++) {
		ups_server *v = p->s->pub.servers[t->idx[k]];
		if (!usable(p, v))
			continue;
		last = v;
		if (r < v->weight)
			return v;
		r -= v->weight;
	}
	return last;   /* a server changed state between the passes */
}

static ups_server *pick_tier(pick *p, const tier *t)
{
	if (t->n == 0)
		return NULL;
	switch (p->s->balance) {
	case GWB_BAL_LEAST_CONN: return pick_least_conn(p, t);
	case GWB_BAL_IP_HASH:    return pick_ip_hash(p, t);
	case GWB_BAL_HASH:       return pick_hash(p, t);
	case GWB_BAL_RANDOM:     return pick_random(p, t);
	default:                 return pick_swrr(p, t);
	}
}

ups_server *ups_pick(ups_upstream *u, ups_snapshot *ss, const ups_pick_ctx *c)
{
	snap *s = (snap *)ss;
	(void)u;
	if (!s || s->pub.n == 0)
		return NULL;
	pick p = { .s = s, .c = c, .honour_exclude = true };
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < 2; k++) {
			ups_server *v = pick_tier(&p, &s->t[k]);
			/* a half-open circuit breaker lets one probe through: claim
			 * it. A loser sees the server unavailable now: pick again
			 * (bounded, in case the state keeps flipping) */
			for (int n = 0; v && n < 8; n++) {
				if (brk_claim(&v->brk, c->now_ms))
					return v;
				v = pick_tier(&p, &s->t[k]);
			}
		}
		if (c->nexclude == 0)
			break;
		p.honour_exclude = false;   /* every usable server was tried */
	}
	return NULL;
}

/* ---------------------------------------------------- passive health */

void ups_report(ups_upstream *u, ups_server *s, int ok, uint64_t now_ms)
{
	(void)u;
	if (ok) {
		/* load first: the common case writes nothing shared */
		if (atomic_load_explicit(&s->fails, memory_order_relaxed))
			atomic_store_explicit(&s->fails, 0, memory_order_relaxed);
		if (atomic_load_explicit(&s->down_until_ms, memory_order_relaxed))
			atomic_store_explicit(&s->down_until_ms, 0, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
	if (s->max_fails == 0)
		return;
	/* nginx: the only server of a group is never marked down by failures;
	 * there is nothing to fail over to, and the next client is better
	 * served by a fresh attempt (502) than by a refusal (503) */
	if (u) {
		ups_snapshot *sn = ups_acquire(u);
		size_t n = sn ? sn->n : 0;
		ups_release(sn);
		if (n <= 1)
			return;
	}
	long long now = (long long)now_ms;
	long long ft = s->fail_timeout_ms ? s->fail_timeout_ms : DEFAULT_FAIL_TIMEOUT;
	long long du = atomic_load(&s->down_until_ms);
	if (du) {
		/* on probation: the first request after the ejection failed too */
		if (now >= du)
			atomic_store(&s->down_until_ms, now + ft);
		return;
	}
	long long ws = atomic_load(&s->fail_window_start_ms);
	if (atomic_load(&s->fails) == 0 || now - ws >= ft) {
		if (atomic_compare_exchange_strong(&s->fail_window_start_ms, &ws, now))
			atomic_store(&s->fails, 0);
	}
	if (atomic_fetch_add(&s->fails, 1) + 1 >= s->max_fails) {
		atomic_store(&s->down_until_ms, now + ft);
		atomic_store(&s->fails, 0);
	}
}

void ups_conn_begin(ups_server *s)
{
	atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
}

void ups_conn_end(ups_server *s)
{
	atomic_fetch_sub_explicit(&s->active, 1, memory_order_relaxed);
}

/* ---------------------------------------------------------- registry */

ups_registry *ups_registry_new(void)
{
	ups_registry *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	umap *m = calloc(1, sizeof *m);
	if (!m || pthread_mutex_init(&r->mu, NULL) != 0) {
		free(m);
		free(r);
		return NULL;
	}
	atomic_init(&r->map, m);
	atomic_init(&r->pin, 0);
	return r;
}

static void upstream_free(ups_upstream *u)
{
	if (!u)
		return;
	snap *s = atomic_load(&u->cur);
	if (s)
		ups_release(&s->pub);
	for (optver *o = u->optvers, *n; o; o = n) {
		n = o->next;
		free(o);
	}
	specs_free(u->tbl, u->ntbl);
	specs_free(u->ovr, u->novr);
	free(u->name);
	free(u);
}

void ups_registry_free(ups_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nall; i++)
		upstream_free(r->all[i]);
	free(r->all);
	umap *m = atomic_load(&r->map);
	if (m) {
		free(m->v);
		free(m);
	}
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static int upcmp(const void *a, const void *b)
{
	return strcmp((*(ups_upstream *const *)a)->name,
	              (*(ups_upstream *const *)b)->name);
}

static ups_upstream *find_in(ups_upstream *const *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v[mid]->name, name);
		if (c == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

ups_upstream *ups_find(ups_registry *r, const char *name)
{
	atomic_fetch_add(&r->pin, 1);
	umap *m = atomic_load(&r->map);
	ups_upstream *u = find_in(m->v, m->n, name);
	atomic_fetch_sub_explicit(&r->pin, 1, memory_order_release);
	return u;
}

const char *ups_name(const ups_upstream *u)
{
	return u->name;
}

const gwb_upstream *ups_options(const ups_upstream *u)
{
	return atomic_load_explicit(&u->opts, memory_order_acquire);
}

int ups_has_override(ups_upstream *u)
{
	return atomic_load(&u->has_ovr);
}

int ups_foreach(ups_registry *r, int (*fn)(ups_upstream *u, void *ctx), void *ctx)
{
	int rc = 0;
	pthread_mutex_lock(&r->mu);
	umap *m = atomic_load(&r->map);
	for (size_t i = 0; i < m->n && rc == 0; i++)
		rc = fn(m->v[i], ctx);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* one table upstream being synced: everything prepared before the commit */
typedef struct prep {
	ups_upstream *u;
	bool fresh;                 /* created by this sync */
	const gwb_upstream *g;
	spec *tbl; size_t ntbl;
	snap *ns;                   /* NULL: keep the current snapshot */
	optver *ov;                 /* NULL: options unchanged */
} prep;

static ups_upstream *upstream_new(ups_registry *r, const char *name)
{
	ups_upstream *u = calloc(1, sizeof *u);
	if (!u || !(u->name = strdup(name))) {
		free(u);
		return NULL;
	}
	u->reg = r;
	atomic_init(&u->cur, NULL);
	atomic_init(&u->pin, 0);
	atomic_init(&u->opts, NULL);
	atomic_init(&u->has_ovr, 0);
	return u;
}

static int prep_one(ups_registry *r, const gwb_table *t, uint32_t i,
                    prep *pv, size_t np, char *err, size_t errlen)
{
	prep *p = &pv[np];
	const gwb_upstream *g = gwb_upstream_at(t, i);
	size_t len;
	const char *name = gwb_str(t, g->name, &len);

	p->g = g;
	for (size_t j = 0; j < np; j++)
		if (strcmp(pv[j].u->name, name) == 0) {
			set_err(err, errlen, "duplicate upstream '%s'", name);
			return -1;
		}
	p->u = find_in(r->all, r->nall, name);
	if (!p->u) {
		if (!(p->u = upstream_new(r, name)))
			goto oom;
		p->fresh = true;
	}
	if (g->server_count && !(p->tbl = calloc(g->server_count, sizeof *p->tbl)))
		goto oom;
	for (uint32_t k = 0; k < g->server_count; k++) {
		const gwb_server *gs = gwb_server_at(t, g->server_first + k);
		char e[160];
		if (spec_init(&p->tbl[k], gwb_str(t, gs->addr, &len), gs->weight,
		              gs->max_fails, gs->fail_timeout_ms,
		              (gs->flags & GWB_SRV_BACKUP) != 0,
		              (gs->flags & GWB_SRV_HTTPS) != 0, e, sizeof e) < 0) {
			set_err(err, errlen, "upstream '%s': %s", name, e);
			return -1;
		}
		p->ntbl = k + 1;
	}
	const gwb_upstream *cur = atomic_load(&p->u->opts);
	if (!cur || memcmp(cur, g, sizeof *g) != 0) {
		if (!(p->ov = calloc(1, sizeof *p->ov)))
			goto oom;
		p->ov->o = *g;
	}
	const spec *want = p->u->has_ovr ? p->u->ovr : p->tbl;
	size_t nwant = p->u->has_ovr ? p->u->novr : p->ntbl;
	snap *old = atomic_load(&p->u->cur);
	if (!snap_same(old, want, nwant, g->balance) &&
	    !(p->ns = snap_build(old, want, nwant, g->balance)))
		goto oom;
	return 0;
oom:
	set_err(err, errlen, "upstream '%s': out of memory", name);
	return -1;
}

int ups_sync(ups_registry *r, const gwb_table *t)
{
	return ups_sync_ex(r, t, NULL, 0);
}

int ups_sync_ex(ups_registry *r, const gwb_table *t, char *err, size_t errlen)
{
	uint32_t n = gwb_nupstreams(t);
	prep *pv = calloc(n ? n : 1, sizeof *pv);
	umap *m = calloc(1, sizeof *m);
	ups_upstream **all = NULL;
	size_t np = 0, nfresh = 0;
	int rc = -1;

	set_err(err, errlen, "out of memory");
	if (!pv || !m)
		goto out_nolock;
	if (n && !(m->v = malloc(n * sizeof *m->v)))
		goto out_nolock;
	pthread_mutex_lock(&r->mu);
	for (uint32_t i = 0; i < n; i++) {
		int e = prep_one(r, t, i, pv, np, err, errlen);
		if (pv[np].u)
			np++;
		if (e < 0)
			goto out;
		nfresh += pv[np - 1].fresh;
	}
	if (nfresh) {
		all = malloc((r->nall + nfresh) * sizeof *all);
		if (!all) {
			set_err(err, errlen, "out of memory");
			goto out;
		}
	}

	/* commit: nothing below can fail */
	if (all) {
		if (r->nall)
			memcpy(all, r->all, r->nall * sizeof *all);
		size_t k = r->nall;
		for (size_t i = 0; i < np; i++)
			if (pv[i].fresh)
				all[k++] = pv[i].u;
		qsort(all, k, sizeof *all, upcmp);
		free(r->all);
		r->all = all;
		r->nall = k;
		all = NULL;
	}
	for (size_t i = 0; i < np; i++) {
		prep *p = &pv[i];
		ups_upstream *u = p->u;
		if (p->ov) {
			p->ov->next = u->optvers;
			u->optvers = p->ov;
			atomic_store_explicit(&u->opts, &p->ov->o, memory_order_release);
			p->ov = NULL;
		}
		specs_free(u->tbl, u->ntbl);
		u->tbl = p->tbl;
		u->ntbl = p->ntbl;
		p->tbl = NULL;
		p->ntbl = 0;
		if (p->ns) {
			snap_swap(u, p->ns);
			p->ns = NULL;
		}
		if (u->has_ovr)
			snap_set_drain(u, u->ovr, u->novr);
		else
			snap_set_drain(u, u->tbl, u->ntbl);
		p->fresh = false;           /* owned by r->all now */
		m->v[i] = u;
	}
	m->n = np;
	if (m->n > 1)               /* m->v is NULL for a table without upstreams */
		qsort(m->v, m->n, sizeof *m->v, upcmp);
	umap *oldm = atomic_exchange(&r->map, m);
	m = NULL;
	wait_unpinned(&r->pin);
	free(oldm->v);
	free(oldm);
	set_err(err, errlen, "%s", "");
	rc = 0;
out:
	pthread_mutex_unlock(&r->mu);
out_nolock:
	for (size_t i = 0; pv && i < np; i++) {
		specs_free(pv[i].tbl, pv[i].ntbl);
		if (pv[i].ns)
			ups_release(&pv[i].ns->pub);
		free(pv[i].ov);
		if (pv[i].fresh)
			upstream_free(pv[i].u);
	}
	free(all);
	free(pv);
	if (m) {
		free(m->v);
		free(m);
	}
	return rc;
}

/* ------------------------------------------------------------- admin */

int ups_set_servers_ex(ups_upstream *u, const ups_server_spec *v, size_t n,
                       char *err, size_t errlen)
{
	spec *sp = NULL;
	size_t nsp = 0;
	ups_registry *r = u->reg;

	if (n > GWB_MAX_SERVERS) {
		set_err(err, errlen, "too many servers (limit is %u)", GWB_MAX_SERVERS);
		return -1;
	}
	if (v && n) {
		if (!(sp = calloc(n, sizeof *sp))) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
		for (; nsp < n; nsp++) {
			if (spec_init(&sp[nsp], v[nsp].addr, v[nsp].weight,
			              v[nsp].max_fails, v[nsp].fail_timeout_ms,
			              v[nsp].backup, 0, err, errlen) < 0) {
				specs_free(sp, nsp);
				return -1;
			}
			sp[nsp].drain = v[nsp].drain != 0;
		}
	}

	pthread_mutex_lock(&r->mu);
	const gwb_upstream *o = atomic_load(&u->opts);
	uint32_t balance = o ? o->balance : GWB_BAL_ROUND_ROBIN;
	const spec *want = sp ? sp : u->tbl;
	size_t nwant = sp ? nsp : u->ntbl;
	snap *old = atomic_load(&u->cur);
	snap *ns = NULL;
	if (!snap_same(old, want, nwant, balance) &&
	    !(ns = snap_build(old, want, nwant, balance))) {
		pthread_mutex_unlock(&r->mu);
		specs_free(sp, nsp);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	specs_free(u->ovr, u->novr);
	u->ovr = sp;
	u->novr = nsp;
	atomic_store(&u->has_ovr, sp != NULL);
	if (ns)
		snap_swap(u, ns);
	if (sp)
		snap_set_drain(u, sp, nsp);
	else
		snap_set_drain(u, u->tbl, u->ntbl);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

int ups_set_servers(ups_upstream *u, const char *const *addrs,
                    const uint32_t *weights, size_t n, char *err, size_t errlen)
{
	if (!addrs || n == 0)
		return ups_set_servers_ex(u, NULL, 0, err, errlen);
	if (n > GWB_MAX_SERVERS) {
		set_err(err, errlen, "too many servers (limit is %u)", GWB_MAX_SERVERS);
		return -1;
	}
	ups_server_spec *v = calloc(n, sizeof *v);
	if (!v) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		v[i].addr = addrs[i];
		v[i].weight = weights ? weights[i] : 1;
		v[i].max_fails = 1;                 /* nginx's defaults */
		v[i].fail_timeout_ms = DEFAULT_FAIL_TIMEOUT;
	}
	int rc = ups_set_servers_ex(u, v, n, err, errlen);
	free(v);
	return rc;
}

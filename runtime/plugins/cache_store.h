/*
 * cache_store.h — the response cache's store (cache_store.c): shared by
 * all workers, outlives tables, knows nothing about requests, so the unit
 * tests drive it directly.
 *
 * Objects, by key (the expanded `cache key=` template):
 *   response  status, headers, body, freshness; refcounted, so a hit keeps
 *             its body while it is sent even if the entry is evicted or
 *             replaced meanwhile
 *   vary      "this key's responses vary on these request headers": the
 *             responses are stored under key + the request's values of
 *             those headers (a variant key)
 *   pass      "this key's last response could not be stored": requests go
 *             straight upstream without waiting on each other, for a few
 *             seconds (Varnish's hit-for-pass)
 * and, separately, the fills in progress: a miss that finds no fill for
 * its key becomes the filler; later misses for the key wait on the fill
 * (request coalescing) and are woken when it ends.
 *
 * Memory: one byte cap for the whole store (objects count their key,
 * headers and body); an insert over the cap evicts the least recently
 * used objects. Locks: N shards by key hash, each with its own mutex, hash
 * table and LRU list; a hit locks one shard. LRU order is global: every
 * use takes a stamp from one counter, and eviction takes the oldest tail
 * among the shards (exact when single-threaded, near-exact otherwise).
 */
#ifndef GWD_CACHE_STORE_H
#define GWD_CACHE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_hdr {
	const char *name, *val;        /* NUL-terminated in a stored entry */
	uint32_t nlen, vlen;
} cs_hdr;

/* a stored response; read-only */
typedef struct cs_entry {
	int status;
	uint32_t age0_s;               /* the upstream's Age when stored */
	uint64_t stored_ms, expires_ms;/* caller's clock (gw_now_ms) */
	const cs_hdr *hdr; size_t nhdr;
	const char *body; size_t body_len;
} cs_entry;

typedef struct cs_store cs_store;
typedef struct cs_fill cs_fill;

/* cap: bytes for everything; nshards: rounded up to a power of two.
 * The per-entry limit is min(1 MiB, cap / 8). NULL: out of memory. */
cs_store *cs_new(size_t cap, unsigned nshards);
void cs_free(cs_store *s);          /* only when nobody uses it any more */
size_t cs_cap(const cs_store *s);
size_t cs_entry_max(const cs_store *s);
size_t cs_bytes(cs_store *s);       /* accounted now */
size_t cs_count(cs_store *s);       /* objects now (responses, vary, pass) */
uint64_t cs_evictions(cs_store *s);

/* A request waiting for a fill. The caller allocates it (mkwaiter of
 * cs_lookup, called with the shard locked: allocate, nothing else) and
 * frees it after wake() has been called or cs_wait_cancel() returned 1. */
typedef struct cs_waiter cs_waiter;
struct cs_waiter {
	cs_waiter *next;
	/* called once, with no lock held, on the thread that ended the fill;
	 * pass is set: 1 when the fill stored nothing (go upstream, do not
	 * wait again), 0 when a lookup now finds the response */
	void (*wake)(cs_waiter *w);
	int pass;
	int state;                      /* internal */
	unsigned shard;                 /* internal */
	cs_fill *fill;                  /* internal */
};

/* value of request header name (lowercase) for Vary: 1 and *v,*vlen, or 0 */
typedef int (*cs_hdr_fn)(void *ctx, const char *name, const char **v, size_t *vlen);

enum cs_result { CS_HIT, CS_MISS, CS_WAIT, CS_PASS };

/* Look key up at time now.
 *   CS_HIT   *hit: a fresh response (a reference: cs_release it)
 *   CS_WAIT  a fill is in progress: mkwaiter(mkctx)'s waiter was queued
 *   CS_PASS  go upstream, do not store
 *   CS_MISS  go upstream; *fill != NULL when may_fill was set and no fill
 *            was in progress: the caller is now the filler and must end it
 *            with cs_fill_done (whatever happens). Without may_fill, or
 *            when mkwaiter returns NULL, a miss never waits or fills.
 * hdr(hctx) gives the request's headers for keys whose responses vary. */
int cs_lookup(cs_store *s, const char *key, size_t klen, cs_hdr_fn hdr, void *hctx,
              uint64_t now, int may_fill, cs_waiter *(*mkwaiter)(void *), void *mkctx,
              cs_entry **hit, cs_fill **fill);
void cs_release(cs_entry *e);

/* what a fill stores */
typedef struct cs_put {
	int status;
	uint32_t age0_s;
	uint64_t expires_ms;
	const cs_hdr *hdr; size_t nhdr; /* copied */
	char *body; size_t body_len;    /* malloc'ed: the store takes it */
	/* the response's Vary header names, lowercase, each followed by a
	 * NUL ("accept-encoding\0"); NULL/0 = none */
	const char *vary; size_t vary_len;
} cs_put;

/* End a fill: store put (may be NULL: nothing to store; then, when
 * pass_until > now, the fill's key becomes a pass object until then), and
 * wake every waiter. hdr/hctx: the filler's request headers (Vary). */
void cs_fill_done(cs_store *s, cs_fill *f, cs_put *put, cs_hdr_fn hdr, void *hctx,
                  uint64_t now, uint64_t pass_until);
/* the fill's key (the variant key when the key's responses vary) */
const char *cs_fill_key(const cs_fill *f, size_t *len);
/* a waiter leaves before it was woken (its request went away): 1 when it
 * was removed (free it), 0 when wake() has been or is being called */
int cs_wait_cancel(cs_store *s, cs_waiter *w);

/* ----------------------------------------------- HTTP caching rules
 * RFC 9111, as a shared cache; pure functions */
#define CS_CC_NO_STORE        (1u << 0)
#define CS_CC_PRIVATE         (1u << 1)
#define CS_CC_NO_CACHE        (1u << 2)
#define CS_CC_PUBLIC          (1u << 3)
#define CS_CC_MUST_REVALIDATE (1u << 4)
typedef struct cs_cc {
	unsigned flags;
	int64_t max_age, s_maxage;      /* seconds, -1 absent */
} cs_cc;
void cs_cc_init(cs_cc *cc);
/* add one Cache-Control header value (several lines accumulate; a
 * repeated age keeps the smaller, a malformed one counts as 0) */
void cs_cc_parse(cs_cc *cc, const char *v, size_t n);
/* HTTP-date (IMF-fixdate, RFC 850, asctime) to Unix seconds: 0 ok, -1 */
int cs_http_date(const char *v, size_t n, int64_t *t);

typedef struct cs_policy {
	int status;
	cs_cc cc;
	int set_cookie, vary_star;
	int has_date, has_expires;
	int64_t date_s, expires_s;      /* an unparsable Expires: has_expires, expires_s 0 */
	int64_t age_s;                  /* upstream Age header, 0 if none */
	int authorization;              /* the request carried Authorization */
	int64_t now_s;                  /* wall clock */
	uint32_t default_ttl_ms;        /* the directive's ttl */
} cs_policy;
/* how long the response stays fresh from now (ms, > 0), or 0 when it
 * must not be stored; *why names the reason, *intrinsic is 1 when the
 * reason is the response's (any request would get it: a pass object is
 * worth keeping) and 0 when it is this request's (Authorization) */
int64_t cs_fresh_ms(const cs_policy *p, const char **why, int *intrinsic);
/* statuses stored: 200 203 301 404 410 */
int cs_status_cacheable(int status);

#endif /* GWD_CACHE_STORE_H */

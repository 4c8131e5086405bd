/*
 * ratelimit.h — rate_limit and conn_limit (the access directives of
 * gwr-language.md §4): GCRA, the in-process store, request keys and the
 * Redis cluster mode.
 *
 *   ratelimit_store.c  GCRA arithmetic, the sharded in-process store of
 *                      buckets and of concurrency counters (no gwd
 *                      dependency: unit-tested on its own)
 *   ratelimit.c        the rate_limit plugin, request keys
 *   ratelimit_redis.c  cluster mode: one Redis connection per worker
 *                      (hiredis async API in the worker's event loop)
 *   connlimit.c        the conn_limit plugin
 *
 * GCRA. `rate_limit C/P burst=N` is a bucket of N tokens refilled at one
 * token every T = P/C. GCRA keeps, per key, one number: the theoretical
 * arrival time TAT (when the bucket would be full again). A request at
 * `now` takes a token if max(TAT, now) + T - now <= N*T; then TAT becomes
 * max(TAT, now) + T. A key whose TAT is in the past has a full bucket, so
 * it can be forgotten: expiry of idle keys costs nothing.
 *
 * State outlives tables: the stores are global, created once, and a limit
 * is named by what the rules say (route name, the directive's position
 * among the route's limits, its numbers and its key), never by a table
 * pointer, so a reload does not reset anybody's budget.
 */
#ifndef GWD_RATELIMIT_H
#define GWD_RATELIMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- GCRA */
typedef struct rl_result {
	int allowed;
	uint32_t limit;          /* burst N */
	uint32_t remaining;      /* tokens left after this request */
	uint64_t retry_ns;       /* refused: time until one token is there */
	uint64_t reset_ns;       /* time until the bucket is full again */
} rl_result;

/* T (ns per token) and L = N*T (ns), saturated so the arithmetic cannot
 * overflow; period_ms, count, burst >= 1 */
void rl_gcra_params(uint32_t count, uint32_t period_ms, uint32_t burst, uint64_t *T,
                    uint64_t *L);
/* one decision; *tat is updated only when the request is allowed */
void rl_gcra(uint64_t *tat, uint64_t now_ns, uint64_t T, uint64_t L, uint32_t burst,
             rl_result *out);
/* whole seconds, rounded up (Retry-After, RateLimit-Reset) */
uint64_t rl_ceil_s(uint64_t ns);

/* --------------------------------------------------------------- hash */
/* SipHash-2-4 with the process's random key: bucket keys cannot be aimed
 * at each other by a client choosing header values */
uint64_t rl_hash(uint64_t salt, const void *data, size_t len);
/* the same with a fixed key: equal in every gwd (names in Redis) */
uint64_t rl_hash_stable(const void *data, size_t len);

/* -------------------------------------------------------------- store
 * RL_SHARDS shards, each a set-associative table (RL_WAYS slots per set)
 * under its own mutex; a key lives in one set of one shard, chosen by its
 * hash. The memory is allocated once (cap bytes), never grows. */
#define RL_SHARDS 64
#define RL_WAYS 8

typedef struct rl_store rl_store;

rl_store *rl_store_new(size_t cap_bytes);
void rl_store_free(rl_store *s);
size_t rl_store_slots(const rl_store *s);

/* Buckets. A slot whose TAT is <= now is free (its bucket is full). With
 * every slot of a set busy, the bucket closest to full is evicted (its key
 * starts again with a full bucket: the least budget given away). */
void rl_store_take(rl_store *s, uint64_t h, uint64_t now_ns, uint64_t T, uint64_t L,
                   uint32_t burst, rl_result *out);
/* keys holding a bucket that is not full at now (test and /status aid) */
size_t rl_store_live(rl_store *s, uint64_t now_ns);

/* Concurrency counters (conn_limit). acquire: 1 counted, 0 at the limit,
 * -1 no room (every slot of the set is held by another busy key: the
 * caller lets the request through uncounted). release after acquire == 1. */
int rl_store_acquire(rl_store *s, uint64_t h, uint32_t limit);
void rl_store_release(rl_store *s, uint64_t h);
uint32_t rl_store_count(rl_store *s, uint64_t h);

/* counters for the metrics endpoint */
extern atomic_ullong gw_rl_evictions;        /* buckets dropped for room */
extern atomic_ullong gw_rl_conn_untracked;   /* conn_limit: no room to count */
extern atomic_ullong gw_rl_redis_fallbacks;  /* cluster mode: decided locally */
extern atomic_ullong gw_rl_redis_errors;     /* Redis error replies, lost connections */
extern atomic_ullong gw_rl_limited;          /* rate_limit 429s */
extern atomic_ullong gw_rl_conn_limited;     /* conn_limit 429s */

/* ------------------------------------------------------ plugin pieces */
#ifdef GWD_PLUGIN_H
/* the process-wide stores (created by the first table's init) */
rl_store *rl_buckets(void);
rl_store *rl_conns(void);
int rl_stores_init(char *err, size_t errlen);

/* The key a request is counted under, for `key=` kind/name (gwb_keykind):
 * a kind byte then the value (client address bytes, header value,
 * decoded query argument, cookie, consumer, path; nothing for route).
 * A header/query/cookie/consumer the request lacks falls back to the
 * client address, so leaving it out is no way around a limit. The bytes
 * are in buf (cap >= 64) or in the request's arena. */
const char *rl_req_key(gw_req *r, uint32_t kind, const char *name, char *buf, size_t cap,
                       size_t *len);

/* The limits of one table, built by init() (rate_limit or conn_limit),
 * found by instruction offset in the handler. */
typedef struct rl_limit {
	uint32_t pc;               /* offset of the instruction in CODE */
	uint32_t count, period_ms, burst;   /* rate_limit; conn_limit: count = N */
	uint32_t kind;             /* enum gwb_keykind */
	const char *kname;         /* header/query/cookie name (table string) */
	uint64_t id;               /* identity: salt of the keys' hashes */
	uint64_t T, L;             /* GCRA, ns */
	char *rkey; size_t rklen;  /* Redis key prefix (rate_limit) */
} rl_limit;
typedef struct rl_limits { size_t n; rl_limit v[]; } rl_limits;
int rl_limits_build(const gwb_table *t, unsigned op, rl_limits **out, char *err, size_t errlen);
const rl_limit *rl_limits_find(const rl_limits *ls, uint32_t pc);
void rl_limits_free(rl_limits *ls);

/* cluster mode (ratelimit_redis.c) */
enum { RLW_PENDING = 1, RLW_DONE, RLW_LOCAL };
typedef struct rl_wait {
	gw_req *r;
	struct rl_redis_op *op;  /* while pending */
	int state;               /* RLW_*: DONE = res is Redis's decision,
	                          * LOCAL = decide locally (timeout, error) */
	rl_result res;
} rl_wait;
/* read redis_url / redis_timeout_ms (control thread, at table init) */
void rl_redis_configure(const char *url, uint32_t timeout_ms);
int rl_redis_enabled(void);
/* Ask Redis for one decision on bucket `key` (T, L in ns), on the
 * worker's connection. 0: asked; w (request memory) becomes DONE or LOCAL
 * later and r is resumed (gw_req_resume). -1: Redis cannot be asked now
 * (down, backing off after failures): decide locally at once. */
int rl_redis_take(rl_wait *w, gw_req *r, const char *key, size_t keylen, uint64_t T,
                  uint64_t L, uint32_t burst);
/* the request is gone before the answer: forget w */
void rl_redis_detach(rl_wait *w);
#endif

#endif /* GWD_RATELIMIT_H */

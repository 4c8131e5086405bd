/*
 * ratelimit_store.c — GCRA arithmetic and the in-process store of rate
 * buckets and concurrency counters (ratelimit.h). No gwd dependency.
 *
 * Layout: RL_SHARDS shards (top bits of the key hash), each a flat array
 * of sets of RL_WAYS 16-byte slots (low bits of the hash) under one mutex.
 * A slot is { hash, value }: for buckets the value is the TAT in ns, for
 * counters the number of requests in flight. The whole store is one
 * allocation made at start; nothing is allocated per key, so the memory
 * cap is the allocation and a flood of new keys costs evictions, not RAM.
 *
 * Why set-associative instead of a hash map with an LRU: a GCRA slot whose
 * TAT has passed is *exactly* an absent key (full bucket), so expiry needs
 * no sweeper and no list — a lookup that finds an expired slot may reuse
 * it. Only when all RL_WAYS slots of a set hold live buckets is one evicted:
 * the one closest to full, which gives away the least budget.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ratelimit.h"

atomic_ullong gw_rl_evictions;
atomic_ullong gw_rl_conn_untracked;
atomic_ullong gw_rl_redis_fallbacks;
atomic_ullong gw_rl_redis_errors;
atomic_ullong gw_rl_limited;
atomic_ullong gw_rl_conn_limited;

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull
#define L_MAX     (1ull << 62)    /* saturation: TAT + T never wraps */

/* ---------------------------------------------------------------- GCRA */
void rl_gcra_params(uint32_t count, uint32_t period_ms, uint32_t burst, uint64_t *T,
                    uint64_t *L)
{
	if (!count)
		count = 1;
	if (!burst)
		burst = 1;
	uint64_t t = (uint64_t)period_ms * NS_PER_MS / count;   /* < 2^53 */
	if (!t)
		t = 1;
	*T = t;
	*L = t > L_MAX / burst ? L_MAX : t * burst;
}

void rl_gcra(uint64_t *tat, uint64_t now, uint64_t T, uint64_t L, uint32_t burst,
             rl_result *o)
{
	uint64_t t = *tat > now ? *tat : now;
	uint64_t nt = t + T;
	o->limit = burst;
	if (nt - now > L) {
		/* refused: a token is there once now' + L >= t + T */
		o->allowed = 0;
		o->remaining = 0;
		o->retry_ns = nt - L - now;
		o->reset_ns = t - now;
		return;
	}
	*tat = nt;
	o->allowed = 1;
	uint64_t rem = (L - (nt - now)) / T;
	o->remaining = rem > burst ? burst : (uint32_t)rem;
	o->retry_ns = 0;
	o->reset_ns = nt - now;
}

uint64_t rl_ceil_s(uint64_t ns)
{
	return ns / NS_PER_S + (ns % NS_PER_S != 0);
}

/* -------------------------------------------------------------- SipHash */
static uint64_t seed0, seed1;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	uint64_t k[2];
	if (getrandom(k, sizeof k, 0) != (ssize_t)sizeof k) {
		/* no entropy source: still different per process and boot */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
		k[1] = (uint64_t)(uintptr_t)&ts * 0xbf58476d1ce4e5b9ull ^ k[0];
	}
	seed0 = k[0];
	seed1 = k[1];
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

static uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
	uint64_t b = (uint64_t)len << 56;
	const uint8_t *end = in + (len & ~(size_t)7);
	for (; in != end; in += 8) {
		uint64_t m;
		memcpy(&m, in, 8);          /* little-endian host (x86-64, arm64) */
		v3 ^= m;
		SIPROUND; SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)in[i] << (8 * i);
	v3 ^= b;
	SIPROUND; SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND; SIPROUND; SIPROUND; SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t rl_hash(uint64_t salt, const void *data, size_t len)
{
	pthread_once(&seed_once, seed_init);
	uint64_t h = siphash24(seed0 ^ salt, seed1, data, len);
	return h ? h : 1;    /* 0 marks an empty slot */
}

uint64_t rl_hash_stable(const void *data, size_t len)
{
	return siphash24(0x6777726c2d6b6579ull, 0x737461626c652121ull, data, len);
}

/* --------------------------------------------------------------- store */
typedef struct rl_slot { uint64_t h, v; } rl_slot;

typedef struct rl_shard {
	pthread_mutex_t mu;
	rl_slot *slots;
	uint64_t mask;          /* sets - 1 */
} __attribute__((aligned(64))) rl_shard;

struct rl_store {
	rl_shard sh[RL_SHARDS];
	rl_slot *mem;
	size_t nslots;
};

rl_store *rl_store_new(size_t cap_bytes)
{
	size_t per = cap_bytes / (RL_SHARDS * RL_WAYS * sizeof(rl_slot));
	size_t sets = 1;
	while (sets * 2 <= per)
		sets *= 2;
	rl_store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->nslots = RL_SHARDS * sets * RL_WAYS;
	s->mem = calloc(s->nslots, sizeof *s->mem);
	if (!s->mem) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < RL_SHARDS; i++) {
		pthread_mutex_init(&s->sh[i].mu, NULL);
		s->sh[i].slots = s->mem + i * sets * RL_WAYS;
		s->sh[i].mask = sets - 1;
	}
	return s;
}

void rl_store_free(rl_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < RL_SHARDS; i++)
		pthread_mutex_destroy(&s->sh[i].mu);
	free(s->mem);
	free(s);
}

size_t rl_store_slots(const rl_store *s) { return s->nslots; }

static rl_shard *shard_of(rl_store *s, uint64_t h, rl_slot **set)
{
	rl_shard *sh = &s->sh[h >> 58];          /* 64 shards: top 6 bits */
	*set = sh->slots + (h & sh->mask) * RL_WAYS;
	return sh;
}

static rl_slot *find(rl_slot *set, uint64_t h)
{
	for (int i = 0; i < RL_WAYS; i++)
		if (set[i].h == h)
			return &set[i];
	return NULL;
}

void rl_store_take(rl_store *s, uint64_t h, uint64_t now, uint64_t T, uint64_t L,
                   uint32_t burst, rl_result *out)
{
	rl_slot *set;
	rl_shard *sh = shard_of(s, h, &set);
	pthread_mutex_lock(&sh->mu);
	rl_slot *e = find(set, h);
	uint64_t tat = e ? e->v : 0;
	rl_gcra(&tat, now, T, L, burst, out);
	if (out->allowed) {
		if (!e) {
			/* a free slot (empty, or a bucket full again), else evict
			 * the bucket closest to full */
			rl_slot *old = NULL;
			for (int i = 0; i < RL_WAYS; i++) {
				if (set[i].h == 0 || set[i].v <= now) {
					e = &set[i];
					break;
				}
				if (!old || set[i].v < old->v)
					old = &set[i];
			}
			if (!e) {
				e = old;
				atomic_fetch_add_explicit(&gw_rl_evictions, 1, memory_order_relaxed);
			}
			e->h = h;
		}
		e->v = tat;
	}
	pthread_mutex_unlock(&sh->mu);
}

size_t rl_store_live(rl_store *s, uint64_t now)
{
	size_t n = 0;
	for (size_t i = 0; i < RL_SHARDS; i++) {
		rl_shard *sh = &s->sh[i];
		pthread_mutex_lock(&sh->mu);
		for (size_t k = 0; k < (sh->mask + 1) * RL_WAYS; k++)
			n += sh->slots[k].h != 0 && sh->slots[k].v > now;
		pthread_mutex_unlock(&sh->mu);
	}
	return n;
}

int rl_store_acquire(rl_store *s, uint64_t h, uint32_t limit)
{
	rl_slot *set;
	rl_shard *sh = shard_of(s, h, &set);
	int rc = 1;
	pthread_mutex_lock(&sh->mu);
	rl_slot *e = find(set, h);
	if (e) {
		if (e->v >= limit)
			rc = 0;
		else
			e->v++;
	} else {
		/* a counter at 0 is free; a busy one cannot be evicted (its
		 * requests will release it) */
		for (int i = 0; i < RL_WAYS && !e; i++)
			if (set[i].h == 0 || set[i].v == 0)
				e = &set[i];
		if (e) {
			e->h = h;
			e->v = 1;
		} else {
			rc = -1;
		}
	}
	pthread_mutex_unlock(&sh->mu);
	if (rc < 0)
		atomic_fetch_add_explicit(&gw_rl_conn_untracked, 1, memory_order_relaxed);
	return rc;
}

void rl_store_release(rl_store *s, uint64_t h)
{
	rl_slot *set;
	rl_shard *sh = shard_of(s, h, &set);
	pthread_mutex_lock(&sh->mu);
	rl_slot *e = find(set, h);
	if (e && e->v && --e->v == 0)
		e->h = 0;
	pthread_mutex_unlock(&sh->mu);
}

uint32_t rl_store_count(rl_store *s, uint64_t h)
{
	rl_slot *set;
	rl_shard *sh = shard_of(s, h, &set);
	pthread_mutex_lock(&sh->mu);
	rl_slot *e = find(set, h);
	uint32_t n = e ? (uint32_t)e->v : 0;
	pthread_mutex_unlock(&sh->mu);
	return n;
}

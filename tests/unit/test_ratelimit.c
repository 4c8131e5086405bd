/*
 * test_ratelimit.c — GCRA arithmetic and the in-process store of
 * rate_limit / conn_limit (runtime/plugins/ratelimit_store.c): exact
 * decisions, Retry-After / RateLimit-* numbers, the rate over simulated
 * time, expiry of idle keys, the memory cap and its eviction choice,
 * concurrency counters, and the locking under threads.
 */
#include <config.h>

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* the store itself, to reach its statics (siphash24) */
#include "ratelimit_store.c"

#define MS 1000000ull
#define S  1000000000ull

START_TEST(params)
{
	uint64_t T, L;
	rl_gcra_params(20, 1000, 5, &T, &L);          /* 20r/s burst=5 */
	ck_assert_uint_eq(T, 50 * MS);
	ck_assert_uint_eq(L, 250 * MS);
	rl_gcra_params(6000, 60000, 1, &T, &L);       /* 6000r/m = 100r/s */
	ck_assert_uint_eq(T, 10 * MS);
	ck_assert_uint_eq(L, 10 * MS);
	rl_gcra_params(1, 3600000, 10, &T, &L);       /* 1r/h */
	ck_assert_uint_eq(T, 3600 * S);
	ck_assert_uint_eq(L, 36000 * S);
	/* extremes saturate instead of wrapping */
	rl_gcra_params(1, UINT32_MAX, UINT32_MAX, &T, &L);
	ck_assert_uint_eq(T, (uint64_t)UINT32_MAX * MS);
	ck_assert_uint_eq(L, 1ull << 62);
	rl_gcra_params(UINT32_MAX, 1, 1, &T, &L);     /* sub-ns interval */
	ck_assert_uint_eq(T, 1);
}
END_TEST

START_TEST(ceil_seconds)
{
	ck_assert_uint_eq(rl_ceil_s(0), 0);
	ck_assert_uint_eq(rl_ceil_s(1), 1);
	ck_assert_uint_eq(rl_ceil_s(S - 1), 1);
	ck_assert_uint_eq(rl_ceil_s(S), 1);
	ck_assert_uint_eq(rl_ceil_s(S + 1), 2);
	ck_assert_uint_eq(rl_ceil_s(59 * S + 999 * MS), 60);
}
END_TEST

/* rate_limit 1r/m burst=3: three at once, then refused for exactly the
 * time one token takes to come back */
START_TEST(burst_then_refuse)
{
	uint64_t T, L, tat = 0, now = 1000 * S;
	rl_result r;
	rl_gcra_params(1, 60000, 3, &T, &L);
	for (uint32_t i = 0; i < 3; i++) {
		rl_gcra(&tat, now, T, L, 3, &r);
		ck_assert_int_eq(r.allowed, 1);
		ck_assert_uint_eq(r.limit, 3);
		ck_assert_uint_eq(r.remaining, 2 - i);
		ck_assert_uint_eq(r.reset_ns, (uint64_t)(i + 1) * 60 * S);
		ck_assert_uint_eq(r.retry_ns, 0);
	}
	uint64_t full = tat;
	rl_gcra(&tat, now, T, L, 3, &r);
	ck_assert_int_eq(r.allowed, 0);
	ck_assert_uint_eq(r.remaining, 0);
	ck_assert_uint_eq(r.retry_ns, 60 * S);
	ck_assert_uint_eq(rl_ceil_s(r.retry_ns), 60);
	ck_assert_uint_eq(r.reset_ns, 180 * S);
	ck_assert_uint_eq(tat, full);          /* a refusal costs nothing */
	/* 250 ms later: 59.75 s to wait, Retry-After rounds up to 60 */
	rl_gcra(&tat, now + 250 * MS, T, L, 3, &r);
	ck_assert_int_eq(r.allowed, 0);
	ck_assert_uint_eq(r.retry_ns, 59 * S + 750 * MS);
	ck_assert_uint_eq(rl_ceil_s(r.retry_ns), 60);
	/* one ns early: still refused; on time: exactly one more */
	rl_gcra(&tat, now + 60 * S - 1, T, L, 3, &r);
	ck_assert_int_eq(r.allowed, 0);
	ck_assert_uint_eq(r.retry_ns, 1);
	ck_assert_uint_eq(rl_ceil_s(r.retry_ns), 1);
	rl_gcra(&tat, now + 60 * S, T, L, 3, &r);
	ck_assert_int_eq(r.allowed, 1);
	ck_assert_uint_eq(r.remaining, 0);
	rl_gcra(&tat, now + 60 * S, T, L, 3, &r);
	ck_assert_int_eq(r.allowed, 0);
	/* idle for long: the bucket is full again, not fuller */
	rl_gcra(&tat, now + 3600 * S, T, L, 3, &r);
	ck_assert_int_eq(r.allowed, 1);
	ck_assert_uint_eq(r.remaining, 2);
}
END_TEST

/* 20r/s burst=5, a request every ms for 3 s: 5 + 20 * 3 accepted, spread
 * one per 50 ms after the burst */
START_TEST(rate_over_time)
{
	uint64_t T, L, tat = 0, t0 = 5 * S;
	rl_result r;
	rl_gcra_params(20, 1000, 5, &T, &L);
	unsigned ok = 0, ok_first_ms = 0;
	for (uint64_t ms = 0; ms < 3000; ms++) {
		rl_gcra(&tat, t0 + ms * MS, T, L, 5, &r);
		ok += (unsigned)r.allowed;
		if (ms == 0)
			ok_first_ms = ok;
	}
	ck_assert_uint_eq(ok_first_ms, 1);
	/* at ms 0..3: the burst (5) taken one per ms; then one per 50 ms */
	ck_assert_uint_eq(ok, 5 + 60 - 1);     /* t=3000 ms itself not sent */
	/* the same at 1 request per 10 ms over 10 s */
	tat = 0;
	ok = 0;
	for (uint64_t ms = 0; ms < 10000; ms += 10) {
		rl_gcra(&tat, t0 + ms * MS, T, L, 5, &r);
		ok += (unsigned)r.allowed;
	}
	ck_assert_uint_ge(ok, 5 + 200 - 2);
	ck_assert_uint_le(ok, 5 + 200);
}
END_TEST

/* a key of a given shard and set (the store picks the shard with the top
 * 6 bits, the set with the low bits) */
static uint64_t key_at(unsigned shard, uint64_t set, uint64_t n)
{
	return ((uint64_t)shard << 58) | (n << 20) | set;
}

START_TEST(store_expiry)
{
	rl_store *s = rl_store_new(1);            /* smallest: one set per shard */
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(rl_store_slots(s), RL_SHARDS * RL_WAYS);
	uint64_t T, L, now = 10 * S;
	rl_result r;
	rl_gcra_params(10, 1000, 2, &T, &L);      /* 10r/s burst 2: full after 200 ms */
	unsigned long long ev0 = atomic_load(&gw_rl_evictions);
	for (unsigned sh = 0; sh < RL_SHARDS; sh++)
		for (uint64_t k = 1; k <= RL_WAYS; k++) {
			rl_store_take(s, key_at(sh, 0, k), now, T, L, 2, &r);
			ck_assert_int_eq(r.allowed, 1);
		}
	ck_assert_uint_eq(rl_store_live(s, now), RL_SHARDS * RL_WAYS);
	/* the store is full; a key's state is kept */
	rl_store_take(s, key_at(3, 0, 1), now, T, L, 2, &r);
	ck_assert_int_eq(r.allowed, 1);
	ck_assert_uint_eq(r.remaining, 0);
	rl_store_take(s, key_at(3, 0, 1), now, T, L, 2, &r);
	ck_assert_int_eq(r.allowed, 0);
	ck_assert_uint_eq(atomic_load(&gw_rl_evictions), ev0);
	/* 200 ms later every bucket is full again: all idle keys have expired
	 * (no sweeper: their slots are simply free) */
	now += 200 * MS;
	ck_assert_uint_eq(rl_store_live(s, now), 0);
	for (unsigned sh = 0; sh < RL_SHARDS; sh++)
		for (uint64_t k = 100; k < 100 + RL_WAYS; k++) {
			rl_store_take(s, key_at(sh, 0, k), now, T, L, 2, &r);
			ck_assert_int_eq(r.allowed, 1);
			ck_assert_uint_eq(r.remaining, 1);
		}
	ck_assert_uint_eq(atomic_load(&gw_rl_evictions), ev0);   /* reused, not evicted */
	ck_assert_uint_eq(rl_store_live(s, now), RL_SHARDS * RL_WAYS);
	rl_store_free(s);
}
END_TEST

START_TEST(store_cap_and_eviction)
{
	/* 64 KiB: 4096 slots, whatever the number of keys */
	rl_store *s = rl_store_new(64 * 1024);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(rl_store_slots(s), 4096);
	uint64_t T, L, now = 10 * S;
	rl_result r;
	rl_gcra_params(1, 60000, 5, &T, &L);
	unsigned long long ev0 = atomic_load(&gw_rl_evictions);
	for (uint64_t k = 0; k < 100000; k++)
		rl_store_take(s, rl_hash(7, &k, sizeof k), now, T, L, 5, &r);
	ck_assert_uint_eq(rl_store_live(s, now), 4096);
	ck_assert_uint_eq(atomic_load(&gw_rl_evictions) - ev0, 100000 - 4096);
	rl_store_free(s);

	/* the victim in a full set is the bucket closest to full */
	s = rl_store_new(1);
	ev0 = atomic_load(&gw_rl_evictions);
	for (uint64_t k = 1; k <= RL_WAYS; k++) {
		/* key k takes k tokens: key 1 is the closest to full */
		for (uint64_t i = 0; i < k; i++)
			rl_store_take(s, key_at(5, 0, k), now, T, L, 5, &r);
		ck_assert_uint_eq(r.remaining, 5 - (k > 5 ? 5 : k));
	}
	rl_store_take(s, key_at(5, 0, 99), now, T, L, 5, &r);
	ck_assert_int_eq(r.allowed, 1);
	ck_assert_uint_eq(atomic_load(&gw_rl_evictions) - ev0, 1);
	/* key 1 starts again with a full bucket; key 2 kept its state */
	rl_store_take(s, key_at(5, 0, 2), now, T, L, 5, &r);
	ck_assert_uint_eq(r.remaining, 2);
	rl_store_take(s, key_at(5, 0, 1), now, T, L, 5, &r);   /* evicts another */
	ck_assert_uint_eq(r.remaining, 4);
	/* other shards were not touched */
	ck_assert_uint_eq(rl_store_live(s, now), RL_WAYS);
	rl_store_free(s);
}
END_TEST

START_TEST(conn_counters)
{
	rl_store *s = rl_store_new(1);
	uint64_t a = key_at(9, 0, 1), b = key_at(9, 0, 2);
	ck_assert_int_eq(rl_store_acquire(s, a, 2), 1);
	ck_assert_int_eq(rl_store_acquire(s, a, 2), 1);
	ck_assert_int_eq(rl_store_acquire(s, a, 2), 0);      /* the third */
	ck_assert_uint_eq(rl_store_count(s, a), 2);
	ck_assert_int_eq(rl_store_acquire(s, b, 2), 1);      /* other key */
	rl_store_release(s, a);
	ck_assert_uint_eq(rl_store_count(s, a), 1);
	ck_assert_int_eq(rl_store_acquire(s, a, 2), 1);
	rl_store_release(s, a);
	rl_store_release(s, a);
	ck_assert_uint_eq(rl_store_count(s, a), 0);
	rl_store_release(s, a);                              /* extra: no underflow */
	ck_assert_uint_eq(rl_store_count(s, a), 0);
	/* a set full of busy keys cannot take another: -1, counted */
	unsigned long long u0 = atomic_load(&gw_rl_conn_untracked);
	for (uint64_t k = 10; k < 10 + RL_WAYS - 1; k++)      /* b holds one slot */
		ck_assert_int_eq(rl_store_acquire(s, key_at(9, 0, k), 1), 1);
	ck_assert_int_eq(rl_store_acquire(s, key_at(9, 0, 50), 1), -1);
	ck_assert_uint_eq(atomic_load(&gw_rl_conn_untracked) - u0, 1);
	/* a released key frees its slot for another */
	rl_store_release(s, b);
	ck_assert_int_eq(rl_store_acquire(s, key_at(9, 0, 50), 1), 1);
	rl_store_free(s);
}
END_TEST

START_TEST(hashing)
{
	const char k[] = "i127.0.0.1";
	ck_assert_uint_eq(rl_hash(1, k, sizeof k - 1), rl_hash(1, k, sizeof k - 1));
	ck_assert_uint_ne(rl_hash(1, k, sizeof k - 1), rl_hash(2, k, sizeof k - 1));
	ck_assert_uint_ne(rl_hash(1, k, sizeof k - 1), rl_hash(1, k, sizeof k - 2));
	ck_assert_uint_ne(rl_hash(1, "", 0), 0);
	ck_assert_uint_eq(rl_hash_stable(k, 3), rl_hash_stable(k, 3));
	ck_assert_uint_ne(rl_hash_stable(k, 3), rl_hash_stable(k, 4));
}
END_TEST

/* the SipHash-2-4 paper's test vector (key 00..0f, message 00..0e) */
START_TEST(siphash_vector)
{
	uint8_t m[15];
	for (int i = 0; i < 15; i++)
		m[i] = (uint8_t)i;
	ck_assert_uint_eq(siphash24(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, m, 15),
	                  0xa129ca6149be45e5ull);
}
END_TEST

START_TEST(hash_spread)
{
	unsigned shards[RL_SHARDS] = { 0 };
	for (uint64_t k = 0; k < 64000; k++)
		shards[rl_hash(3, &k, sizeof k) >> 58]++;
	for (unsigned i = 0; i < RL_SHARDS; i++) {
		ck_assert_uint_gt(shards[i], 800);    /* 1000 expected each */
		ck_assert_uint_lt(shards[i], 1200);
	}
}
END_TEST

/* threads taking from one bucket with the clock stopped: exactly burst
 * tokens are handed out, however the takes interleave */
static rl_store *tstore;
static atomic_uint tok;

static void *taker(void *arg)
{
	uint64_t T, L;
	rl_result r;
	(void)arg;
	rl_gcra_params(1, 60000, 1000, &T, &L);
	for (int i = 0; i < 5000; i++) {
		rl_store_take(tstore, key_at(1, 0, 1), 42 * S, T, L, 1000, &r);
		if (r.allowed)
			atomic_fetch_add(&tok, 1);
	}
	return NULL;
}

START_TEST(threads)
{
	tstore = rl_store_new(1 << 20);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, taker, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_eq(atomic_load(&tok), 1000);
	rl_store_free(tstore);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *t = tcase_create("gcra");
	tcase_add_test(t, params);
	tcase_add_test(t, ceil_seconds);
	tcase_add_test(t, burst_then_refuse);
	tcase_add_test(t, rate_over_time);
	suite_add_tcase(s, t);
	t = tcase_create("store");
	tcase_add_test(t, store_expiry);
	tcase_add_test(t, store_cap_and_eviction);
	tcase_add_test(t, conn_counters);
	tcase_add_test(t, hashing);
	tcase_add_test(t, siphash_vector);
	tcase_add_test(t, hash_spread);
	tcase_add_test(t, threads);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

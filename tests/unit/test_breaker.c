/*
 * test_breaker.c — the circuit breaker (runtime/breaker.c) on a fake
 * clock: the window (counted in tenths, expiry exactly at the bucket
 * boundary), opening, cooldown, the single half-open probe, its success
 * and failure, a probe that never reports, stale outcomes, defaults, what
 * breaker_report counts as a failure, carrying state to a new server
 * object, exact counts under threads; and through upstream.c's ups_pick
 * (tables made with gwb's builder): an open server is skipped for every
 * balancing algorithm, a half-open one gets exactly one request, all open
 * gives NULL (the core's 503), and a reload that changes a server's weight
 * keeps its breaker.
 */
#include <config.h>

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwb.h"
/* the breaker itself, to reach its statics (window_sum) */
#include "runtime/breaker.c"

static const brk_conf C5 = { 5, 1000, 3000 };   /* 5 in 1 s, cooldown 3 s */

static void fail_n(brk_state *b, const brk_conf *c, int n, uint64_t now)
{
	for (int i = 0; i < n; i++)
		brk_record(b, c, 1, now);
}

START_TEST(opens_after_n_failures)
{
	brk_state b;
	brk_init(&b);
	ck_assert_int_eq(brk_phase_at(&b, 0), BRK_CLOSED);
	ck_assert_int_eq(brk_admits(&b, 0), 1);
	fail_n(&b, &C5, 4, 100);
	ck_assert_int_eq(brk_phase_at(&b, 100), BRK_CLOSED);
	ck_assert_int_eq(brk_admits(&b, 100), 1);
	brk_info in;
	brk_get_info(&b, 100, &in);
	ck_assert_uint_eq(in.failures, 4);
	ck_assert_uint_eq(in.opened, 0);
	/* successes do not reset the count: N failures in a window */
	for (int i = 0; i < 50; i++)
		brk_record(&b, &C5, 0, 150);
	brk_get_info(&b, 150, &in);
	ck_assert_uint_eq(in.failures, 4);
	ck_assert_int_eq(brk_record(&b, &C5, 1, 200), BRK_OPEN);   /* a transition */
	ck_assert_int_eq(brk_phase_at(&b, 200), BRK_OPEN);
	ck_assert_int_eq(brk_record(&b, &C5, 1, 201), -1);        /* none */
	ck_assert_int_eq(brk_admits(&b, 200), 0);
	ck_assert_int_eq(brk_claim(&b, 200), 0);
	brk_get_info(&b, 200, &in);
	ck_assert_int_eq(in.phase, BRK_OPEN);
	ck_assert_uint_eq(in.opened, 1);
	ck_assert_uint_eq(in.retry_in_ms, 3000);
	ck_assert_uint_eq(in.failures, 0);
	brk_get_info(&b, 2199, &in);
	ck_assert_uint_eq(in.retry_in_ms, 1001);
	ck_assert_str_eq(brk_phase_name(in.phase), "open");
}
END_TEST

START_TEST(window_expiry)
{
	brk_state b;
	brk_init(&b);
	/* window 1000 ms = 10 buckets of 100 ms; epoch = now/100 + 1.
	 * 4 failures at t=50 (bucket [0,100)) count until t=999 ... */
	fail_n(&b, &C5, 4, 50);
	ck_assert_uint_eq(window_sum(&b, epoch_at(&b, 999)), 4);
	/* ... and not from t=1000: the bucket is a whole window old */
	ck_assert_uint_eq(window_sum(&b, epoch_at(&b, 1000)), 0);
	brk_record(&b, &C5, 1, 1000);
	ck_assert_int_eq(brk_phase_at(&b, 1000), BRK_CLOSED);
	brk_info in;
	brk_get_info(&b, 1000, &in);
	ck_assert_uint_eq(in.failures, 1);

	/* the fifth inside the window opens it */
	brk_init(&b);
	fail_n(&b, &C5, 4, 50);
	brk_record(&b, &C5, 1, 999);
	ck_assert_int_eq(brk_phase_at(&b, 999), BRK_OPEN);

	/* failures spread evenly: 5 at 250 ms intervals stay under 5 in any
	 * window (the first has expired when the fifth comes at 1000) */
	brk_init(&b);
	for (uint64_t t = 0; t <= 1000; t += 250)
		brk_record(&b, &C5, 1, t);
	ck_assert_int_eq(brk_phase_at(&b, 1000), BRK_CLOSED);
	brk_get_info(&b, 1000, &in);
	ck_assert_uint_eq(in.failures, 4);
	/* a reused bucket slot starts from zero */
	brk_init(&b);
	fail_n(&b, &C5, 3, 10);                 /* slot 1, epoch 1 */
	fail_n(&b, &C5, 1, 1010);               /* slot 1 again, epoch 11 */
	brk_get_info(&b, 1010, &in);
	ck_assert_uint_eq(in.failures, 1);
}
END_TEST

START_TEST(half_open_one_probe)
{
	brk_state b;
	brk_init(&b);
	fail_n(&b, &C5, 5, 1000);                       /* open until 4000 */
	ck_assert_int_eq(brk_admits(&b, 3999), 0);
	ck_assert_int_eq(brk_claim(&b, 3999), 0);
	ck_assert_int_eq(brk_phase_at(&b, 3999), BRK_OPEN);
	/* cooldown over: half-open, one request may go */
	ck_assert_int_eq(brk_phase_at(&b, 4000), BRK_HALF_OPEN);
	ck_assert_int_eq(brk_admits(&b, 4000), 1);
	ck_assert_int_eq(brk_claim(&b, 4000), 1);       /* the probe */
	/* and no other while it is in flight */
	ck_assert_int_eq(brk_admits(&b, 4000), 0);
	ck_assert_int_eq(brk_claim(&b, 4000), 0);
	ck_assert_int_eq(brk_claim(&b, 5000), 0);
	ck_assert_int_eq(brk_phase_at(&b, 5000), BRK_HALF_OPEN);
	/* the probe succeeds: closed, with an empty window */
	ck_assert_int_eq(brk_record(&b, &C5, 0, 5000), BRK_CLOSED);
	ck_assert_int_eq(brk_record(&b, &C5, 0, 5000), -1);
	ck_assert_int_eq(brk_phase_at(&b, 5000), BRK_CLOSED);
	ck_assert_int_eq(brk_admits(&b, 5000), 1);
	ck_assert_int_eq(brk_claim(&b, 5000), 1);
	ck_assert_int_eq(brk_claim(&b, 5000), 1);       /* closed: everyone */
	fail_n(&b, &C5, 4, 5001);
	ck_assert_int_eq(brk_phase_at(&b, 5001), BRK_CLOSED);
	brk_record(&b, &C5, 1, 5002);
	ck_assert_int_eq(brk_phase_at(&b, 5002), BRK_OPEN);
	brk_info in;
	brk_get_info(&b, 5002, &in);
	ck_assert_uint_eq(in.opened, 2);
}
END_TEST

START_TEST(probe_fails)
{
	brk_state b;
	brk_init(&b);
	fail_n(&b, &C5, 5, 0);                          /* open until 3000 */
	ck_assert_int_eq(brk_claim(&b, 3500), 1);
	ck_assert_int_eq(brk_record(&b, &C5, 1, 3600), BRK_OPEN);  /* probe failed */
	ck_assert_int_eq(brk_phase_at(&b, 3600), BRK_OPEN);
	/* a new cooldown from the failure */
	ck_assert_int_eq(brk_admits(&b, 6599), 0);
	ck_assert_int_eq(brk_admits(&b, 6600), 1);
	brk_info in;
	brk_get_info(&b, 3600, &in);
	ck_assert_uint_eq(in.retry_in_ms, 3000);
	ck_assert_uint_eq(in.opened, 2);
	ck_assert_int_eq(brk_claim(&b, 6600), 1);
	brk_record(&b, &C5, 0, 6700);
	ck_assert_int_eq(brk_phase_at(&b, 6700), BRK_CLOSED);
}
END_TEST

START_TEST(probe_never_reports)
{
	brk_state b;
	brk_init(&b);
	fail_n(&b, &C5, 5, 0);
	ck_assert_int_eq(brk_claim(&b, 3000), 1);
	/* its client went away: no outcome. The slot is held one cooldown */
	ck_assert_int_eq(brk_claim(&b, 5999), 0);
	ck_assert_int_eq(brk_admits(&b, 6000), 1);
	ck_assert_int_eq(brk_claim(&b, 6000), 1);       /* the next probe */
	ck_assert_int_eq(brk_claim(&b, 6001), 0);
	brk_record(&b, &C5, 0, 6100);
	ck_assert_int_eq(brk_phase_at(&b, 6100), BRK_CLOSED);
}
END_TEST

START_TEST(stale_outcomes_while_open)
{
	brk_state b;
	brk_init(&b);
	fail_n(&b, &C5, 5, 0);                          /* open until 3000 */
	/* requests that were in flight when it opened finish now */
	brk_record(&b, &C5, 0, 100);
	ck_assert_int_eq(brk_phase_at(&b, 100), BRK_OPEN);
	fail_n(&b, &C5, 20, 200);
	ck_assert_int_eq(brk_admits(&b, 3000), 1);      /* cooldown not extended */
	brk_info in;
	brk_get_info(&b, 200, &in);
	ck_assert_uint_eq(in.opened, 1);
	/* after the cooldown but before a probe is claimed, too */
	brk_record(&b, &C5, 0, 3100);
	ck_assert_int_eq(brk_phase_at(&b, 3100), BRK_HALF_OPEN);
	ck_assert_int_eq(brk_claim(&b, 3100), 1);
}
END_TEST

START_TEST(defaults_and_reset)
{
	brk_state b;
	brk_init(&b);
	brk_conf z = { 0, 0, 0 };                       /* 5 in 10 s, 30 s */
	fail_n(&b, &z, 4, 0);
	brk_record(&b, &z, 1, 9999);
	ck_assert_int_eq(brk_phase_at(&b, 9999), BRK_OPEN);
	ck_assert_int_eq(brk_admits(&b, 9999 + 29999), 0);
	ck_assert_int_eq(brk_admits(&b, 9999 + 30000), 1);
	brk_reset(&b);
	ck_assert_int_eq(brk_phase_at(&b, 10000), BRK_CLOSED);
	brk_info in;
	brk_get_info(&b, 10000, &in);
	ck_assert_uint_eq(in.failures, 0);
	/* a window changed by a reload starts empty */
	brk_conf a = { 3, 1000, 1000 }, c = { 3, 2000, 1000 };
	fail_n(&b, &a, 2, 20000);
	brk_record(&b, &c, 1, 20001);
	ck_assert_int_eq(brk_phase_at(&b, 20001), BRK_CLOSED);
	brk_get_info(&b, 20001, &in);
	ck_assert_uint_eq(in.failures, 1);
	/* window under 10 ms: 1 ms buckets, exact */
	brk_conf tiny = { 2, 5, 100 };
	brk_init(&b);
	brk_record(&b, &tiny, 1, 0);
	brk_record(&b, &tiny, 1, 5);
	ck_assert_int_eq(brk_phase_at(&b, 5), BRK_CLOSED);
	brk_record(&b, &tiny, 1, 9);
	ck_assert_int_eq(brk_phase_at(&b, 9), BRK_OPEN);
}
END_TEST

/* breaker_report: what counts, and an upstream without the block */
START_TEST(report_glue)
{
	ups_server s;
	memset(&s, 0, sizeof s);
	s.addr = (char *)"t:1";
	brk_init(&s.brk);
	gwb_upstream o;
	memset(&o, 0, sizeof o);
	o.flags = GWB_UPS_BREAKER;
	o.cb_failures = 3;
	o.cb_window_ms = 1000;
	o.cb_cooldown_ms = 500;
	breaker_report(NULL, &s, &o, 1, 200, 10);
	breaker_report(NULL, &s, &o, 1, 404, 10);
	breaker_report(NULL, &s, &o, 1, 429, 10);
	breaker_report(NULL, &s, &o, 1, 499, 10);
	brk_info in;
	breaker_info(&s, 10, &in);
	ck_assert_uint_eq(in.failures, 0);
	breaker_report(NULL, &s, &o, 1, 500, 10);    /* a 5xx answer */
	breaker_report(NULL, &s, &o, 0, 0, 10);      /* a connect error */
	breaker_info(&s, 10, &in);
	ck_assert_uint_eq(in.failures, 2);
	breaker_report(NULL, &s, &o, 1, 599, 10);
	ck_assert_int_eq(breaker_state(&s, 10), BRK_OPEN);
	ck_assert_int_eq(breaker_state(&s, 510), BRK_HALF_OPEN);
	/* the block was removed by a reload: the next outcome closes it */
	o.flags = 0;
	breaker_report(NULL, &s, &o, 0, 0, 20);
	ck_assert_int_eq(breaker_state(&s, 20), BRK_CLOSED);
	breaker_report(NULL, &s, &o, 0, 0, 20);
	breaker_info(&s, 20, &in);
	ck_assert_uint_eq(in.failures, 0);             /* nothing recorded */
	breaker_report(NULL, &s, NULL, 0, 0, 20);
	ck_assert_int_eq(breaker_state(&s, 20), BRK_CLOSED);
}
END_TEST

START_TEST(carry)
{
	brk_state a, b;
	brk_init(&a);
	fail_n(&a, &C5, 3, 100);
	brk_carry(&b, &a);
	brk_info in;
	brk_get_info(&b, 100, &in);
	ck_assert_uint_eq(in.failures, 3);
	fail_n(&a, &C5, 2, 100);
	brk_carry(&b, &a);
	ck_assert_int_eq(brk_phase_at(&b, 100), BRK_OPEN);
	ck_assert_int_eq(brk_admits(&b, 3100), 1);
	brk_carry(&b, NULL);
	ck_assert_int_eq(brk_phase_at(&b, 100), BRK_CLOSED);
}
END_TEST

/* --------------------------------------------------------- threads */

typedef struct race {
	brk_state *b;
	pthread_barrier_t *bar;
	int won;
	int fails;
} race;

static void *claimer(void *arg)
{
	race *r = arg;
	pthread_barrier_wait(r->bar);
	for (int i = 0; i < 1000; i++)
		r->won += brk_claim(r->b, 10000);
	return NULL;
}

static void *failer(void *arg)
{
	race *r = arg;
	static const brk_conf big = { 1000000, 60000, 1000 };
	pthread_barrier_wait(r->bar);
	for (int i = 0; i < r->fails; i++)
		brk_record(r->b, &big, 1, 100);
	return NULL;
}

START_TEST(threads)
{
	enum { N = 4 };
	brk_state b;
	pthread_t th[N];
	race r[N];
	pthread_barrier_t bar;
	for (int round = 0; round < 20; round++) {
		brk_init(&b);
		fail_n(&b, &C5, 5, 0);
		pthread_barrier_init(&bar, NULL, N);
		for (int i = 0; i < N; i++) {
			r[i] = (race){ &b, &bar, 0, 0 };
			pthread_create(&th[i], NULL, claimer, &r[i]);
		}
		int won = 0;
		for (int i = 0; i < N; i++) {
			pthread_join(th[i], NULL);
			won += r[i].won;
		}
		pthread_barrier_destroy(&bar);
		ck_assert_int_eq(won, 1);                  /* exactly one probe */
	}
	/* concurrent failures: none lost */
	brk_init(&b);
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		r[i] = (race){ &b, &bar, 0, 20000 };
		pthread_create(&th[i], NULL, failer, &r[i]);
	}
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	brk_info in;
	brk_get_info(&b, 100, &in);
	ck_assert_uint_eq(in.failures, N * 20000);
	ck_assert_int_eq(in.phase, BRK_CLOSED);
}
END_TEST

/* ------------------------------------------- through upstream.c */

static uint32_t bstr(gwb_builder *b, const char *s)
{
	return gwb_b_str(b, s, strlen(s));
}

/* one upstream "u" with a circuit_breaker block and servers addrs[] (with
 * weights), one route proxying to it; loaded by gwb's verifying loader */
static gwb_table *mk_table(uint32_t balance, const char *const *addrs,
                           const uint32_t *weights, size_t n)
{
	gwb_builder *b = gwb_builder_new();
	char err[256] = "";
	ck_assert_ptr_nonnull(b);
	gwb_upstream g;
	gwb_server sv[8];
	memset(&g, 0, sizeof g);
	memset(sv, 0, sizeof sv);
	g.name = bstr(b, "u");
	g.balance = balance;
	g.flags = GWB_UPS_BREAKER;
	g.hash_key = GWB_KEY_PATH;
	g.keepalive = 16;
	g.connect_timeout_ms = 1000;
	g.read_timeout_ms = 5000;
	g.retries = 1;
	g.retry_on = GWB_RETRY_CONNECT;
	g.cb_failures = 2;
	g.cb_window_ms = 10000;
	g.cb_cooldown_ms = 1000;
	for (size_t k = 0; k < n; k++) {
		sv[k].addr = bstr(b, addrs[k]);
		sv[k].weight = weights ? weights[k] : 1;
	}
	uint32_t idx = gwb_b_upstream(b, &g, sv, n);
	ck_assert_uint_ne(idx, GWB_NONE);
	gwb_b_route_begin(b, bstr(b, "r"), bstr(b, "test.gwr"), 1, 1);
	uint32_t a[2] = { bstr(b, "/"), 0 };
	gwb_b_emit(b, GWB_OP_PATH_PREFIX, a);
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = idx;
	a[1] = 0;
	gwb_b_emit(b, GWB_OP_PROXY, a);
	gwb_index_key k = { GWB_HOST_ANY, GWB_PATH_PREFIX, GWB_M_ALL, 0, bstr(b, "/"), 1 };
	gwb_b_route_key(b, &k);
	gwb_b_route_end(b);
	uint8_t *out = NULL;
	size_t len = 0;
	if (gwb_builder_finish(b, &out, &len, err, sizeof err) != 0)
		ck_abort_msg("builder: %s", err);
	gwb_builder_free(b);
	gwb_table *t = gwb_load_mem(out, len, err, sizeof err);
	free(out);
	if (!t)
		ck_abort_msg("loader: %s", err);
	return t;
}

static ups_server *pick_at(ups_upstream *u, uint64_t now, const char *key)
{
	static const uint8_t ip[4] = { 10, 1, 2, 3 };
	ups_pick_ctx c = { .worker = 0, .client_ip = ip, .client_ip_len = 4,
	                   .hash_key = key, .hash_key_len = strlen(key), .now_ms = now };
	ups_snapshot *s = ups_acquire(u);
	ups_server *v = ups_pick(u, s, &c);
	ups_release(s);     /* the registry's ref keeps v alive here */
	return v;
}

static ups_server *server_named(ups_upstream *u, const char *addr)
{
	ups_snapshot *s = ups_acquire(u);
	ups_server *v = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->servers[i]->addr, addr))
			v = s->servers[i];
	ups_release(s);
	ck_assert_ptr_nonnull(v);
	return v;
}

START_TEST(pick_skips_open_and_probes_once)
{
	static const char *const addrs[] = { "a:1", "b:1" };
	for (uint32_t bal = 0; bal < GWB_BAL__COUNT; bal++) {
		ups_registry *r = ups_registry_new();
		gwb_table *t = mk_table(bal, addrs, NULL, 2);
		ck_assert_int_eq(ups_sync(r, t), 0);
		ups_upstream *u = ups_find(r, "u");
		const gwb_upstream *o = gwb_upstream_at(t, 0);
		ups_server *a = server_named(u, "a:1"), *b = server_named(u, "b:1");
		/* hash and ip_hash send this key and address to one server:
		 * that one's breaker opens first, the other takes over */
		const char *key = "k";
		if (pick_at(u, 0, key) != a) {
			ups_server *x = a; a = b; b = x;
		}
		breaker_report(u, a, o, 0, 0, 100);
		breaker_report(u, a, o, 1, 502, 100);      /* 2 in the window: open */
		ck_assert_int_eq(breaker_state(a, 100), BRK_OPEN);
		for (int i = 0; i < 20; i++)
			ck_assert_ptr_eq(pick_at(u, 200, key), b);
		/* all open: NULL (the core answers 503) */
		breaker_report(u, b, o, 0, 0, 100);
		breaker_report(u, b, o, 0, 0, 100);
		ck_assert_ptr_null(pick_at(u, 200, key));
		ck_assert_ptr_null(pick_at(u, 1099, key));
		/* cooldown over for both: each gets exactly one probe */
		ups_server *p1 = pick_at(u, 1100, key), *p2 = pick_at(u, 1100, key);
		ck_assert_ptr_nonnull(p1);
		ck_assert_ptr_nonnull(p2);
		ck_assert_ptr_ne(p1, p2);
		ck_assert_ptr_null(pick_at(u, 1100, key));
		ck_assert_ptr_null(pick_at(u, 1500, key));
		/* a's probe fails, b's succeeds: only b */
		breaker_report(u, a, o, 1, 503, 1200);
		breaker_report(u, b, o, 1, 200, 1200);
		ck_assert_int_eq(breaker_state(a, 1200), BRK_OPEN);
		ck_assert_int_eq(breaker_state(b, 1200), BRK_CLOSED);
		for (int i = 0; i < 20; i++)
			ck_assert_ptr_eq(pick_at(u, 1300, key), b);
		ck_assert_int_eq(ups_server_available(a, 1300), 0);
		ck_assert_int_eq(ups_server_available(b, 1300), 1);
		/* a's next probe, after its new cooldown (1200 + 1000) */
		ck_assert_int_eq(ups_server_available(a, 2200), 1);
		ups_registry_free(r);
		gwb_free(t);
	}
}
END_TEST

START_TEST(state_survives_reconfiguration)
{
	static const char *const addrs[] = { "a:1", "b:1" };
	static const uint32_t w1[] = { 1, 1 }, w2[] = { 3, 1 };
	ups_registry *r = ups_registry_new();
	gwb_table *t = mk_table(GWB_BAL_ROUND_ROBIN, addrs, w1, 2);
	ck_assert_int_eq(ups_sync(r, t), 0);
	ups_upstream *u = ups_find(r, "u");
	ups_server *a = server_named(u, "a:1");
	breaker_report(u, a, gwb_upstream_at(t, 0), 0, 0, 100);
	breaker_report(u, a, gwb_upstream_at(t, 0), 0, 0, 100);
	ck_assert_int_eq(breaker_state(a, 100), BRK_OPEN);
	/* a new weight makes a new server object: the breaker goes with it */
	gwb_table *t2 = mk_table(GWB_BAL_ROUND_ROBIN, addrs, w2, 2);
	ck_assert_int_eq(ups_sync(r, t2), 0);
	ups_server *a2 = server_named(u, "a:1");
	ck_assert_ptr_ne(a2, a);
	ck_assert_uint_eq(a2->weight, 3);
	ck_assert_int_eq(breaker_state(a2, 200), BRK_OPEN);
	for (int i = 0; i < 10; i++)
		ck_assert_str_eq(pick_at(u, 200, "")->addr, "b:1");
	ups_registry_free(r);
	gwb_free(t);
	gwb_free(t2);
}
END_TEST

int main(void)
{
	log_set_level(LOG_ERR);     /* no transition lines in the test output */
	Suite *s = suite_create("breaker");
	TCase *tc = tcase_create("state machine");
	tcase_add_test(tc, opens_after_n_failures);
	tcase_add_test(tc, window_expiry);
	tcase_add_test(tc, half_open_one_probe);
	tcase_add_test(tc, probe_fails);
	tcase_add_test(tc, probe_never_reports);
	tcase_add_test(tc, stale_outcomes_while_open);
	tcase_add_test(tc, defaults_and_reset);
	tcase_add_test(tc, report_glue);
	tcase_add_test(tc, carry);
	tcase_add_test(tc, threads);
	suite_add_tcase(s, tc);
	TCase *tp = tcase_create("pick");
	tcase_add_test(tp, pick_skips_open_and_probes_once);
	tcase_add_test(tp, state_survives_reconfiguration);
	suite_add_tcase(s, tp);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

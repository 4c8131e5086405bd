/*
 * breaker.c — per-server circuit breaker (contract and state machine:
 * breaker.h).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <sched.h>
#include <string.h>

#include "breaker.h"
#include "log.h"
#include "upstream.h"

#define DEFAULT_FAILURES    5u
#define DEFAULT_WINDOW_MS   10000u
#define DEFAULT_COOLDOWN_MS 30000u

#define PH_SHIFT 62
#define T_MASK   ((1ull << PH_SHIFT) - 1)

static uint64_t mk(brk_phase p, uint64_t t)
{
	return ((uint64_t)p << PH_SHIFT) | (t & T_MASK);
}

static brk_phase ph_of(uint64_t w) { return (brk_phase)(w >> PH_SHIFT); }
static uint64_t t_of(uint64_t w) { return w & T_MASK; }

/* The lock is held for a few dozen instructions; yield rather than spin
 * hard when the holder was preempted (2 cores shared with the origin). */
static void lock(brk_state *b)
{
	while (atomic_flag_test_and_set_explicit(&b->lock, memory_order_acquire))
		sched_yield();
}

static void unlock(brk_state *b)
{
	atomic_flag_clear_explicit(&b->lock, memory_order_release);
}

static void conf_norm(const brk_conf *c, brk_conf *o)
{
	o->failures = c && c->failures ? c->failures : DEFAULT_FAILURES;
	o->window_ms = c && c->window_ms ? c->window_ms : DEFAULT_WINDOW_MS;
	o->cooldown_ms = c && c->cooldown_ms ? c->cooldown_ms : DEFAULT_COOLDOWN_MS;
}

void brk_init(brk_state *b)
{
	atomic_init(&b->word, mk(BRK_CLOSED, 0));
	atomic_init(&b->hold_ms, 0);
	atomic_init(&b->opened, 0);
	atomic_flag_clear(&b->lock);
	memset(b->bucket_epoch, 0, sizeof b->bucket_epoch);
	memset(b->bucket_count, 0, sizeof b->bucket_count);
	b->bucket_ms = 0;
	b->bucket_n = 0;
}

void brk_carry(brk_state *dst, const brk_state *src)
{
	brk_init(dst);
	if (!src)
		return;
	/* src is shared with other threads; its lock guards the buckets.
	 * The cast drops const only to take that lock. */
	brk_state *s = (brk_state *)src;
	lock(s);
	atomic_store(&dst->word, atomic_load(&s->word));
	atomic_store(&dst->hold_ms, atomic_load(&s->hold_ms));
	atomic_store(&dst->opened, atomic_load(&s->opened));
	memcpy(dst->bucket_epoch, s->bucket_epoch, sizeof dst->bucket_epoch);
	memcpy(dst->bucket_count, s->bucket_count, sizeof dst->bucket_count);
	dst->bucket_ms = s->bucket_ms;
	dst->bucket_n = s->bucket_n;
	unlock(s);
}

int brk_admits(const brk_state *b, uint64_t now_ms)
{
	uint64_t w = atomic_load_explicit(&b->word, memory_order_relaxed);
	if (ph_of(w) == BRK_CLOSED)
		return 1;
	/* OPEN: cooldown over; HALF_OPEN: the probe's hold expired */
	return now_ms >= t_of(w);
}

int brk_claim(brk_state *b, uint64_t now_ms)
{
	uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
	for (;;) {
		if (ph_of(w) == BRK_CLOSED)
			return 1;
		if (now_ms < t_of(w))
			return 0;
		uint64_t hold = atomic_load_explicit(&b->hold_ms, memory_order_relaxed);
		if (!hold)
			hold = DEFAULT_COOLDOWN_MS;
		uint64_t nw = mk(BRK_HALF_OPEN, now_ms + hold);
		/* on failure w is reloaded: closed meanwhile (go), or another
		 * thread's probe holds the slot now (now < its hold: 0) */
		if (atomic_compare_exchange_weak_explicit(&b->word, &w, nw,
		                                          memory_order_acq_rel,
		                                          memory_order_acquire))
			return 1;
	}
}

static void buckets_clear(brk_state *b)
{
	memset(b->bucket_epoch, 0, sizeof b->bucket_epoch);
	memset(b->bucket_count, 0, sizeof b->bucket_count);
}

/* failures in the buckets of the last window ending at epoch e (under
 * the lock). Epochs start at 1 so that a zeroed bucket never counts. */
static uint32_t window_sum(const brk_state *b, uint64_t e)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < b->bucket_n; i++)
		if (b->bucket_epoch[i] && b->bucket_epoch[i] <= e &&
		    b->bucket_epoch[i] + b->bucket_n > e)
			sum += b->bucket_count[i];
	return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

static uint64_t epoch_at(const brk_state *b, uint64_t now_ms)
{
	return b->bucket_ms ? now_ms / b->bucket_ms + 1 : 0;
}

static void trip(brk_state *b, const brk_conf *c, uint64_t now_ms)
{
	atomic_store_explicit(&b->hold_ms, c->cooldown_ms, memory_order_relaxed);
	atomic_store_explicit(&b->word, mk(BRK_OPEN, now_ms + c->cooldown_ms),
	                      memory_order_release);
	atomic_fetch_add_explicit(&b->opened, 1, memory_order_relaxed);
	buckets_clear(b);
}

int brk_record(brk_state *b, const brk_conf *conf, int fail, uint64_t now_ms)
{
	brk_conf c;
	int to = -1;
	conf_norm(conf, &c);
	if (!fail) {
		/* the hot path: a success while closed writes nothing */
		uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
		if (ph_of(w) != BRK_HALF_OPEN)
			return -1;       /* closed; or open: a request from before */
		lock(b);
		w = atomic_load(&b->word);
		if (ph_of(w) == BRK_HALF_OPEN) {
			buckets_clear(b);
			atomic_store_explicit(&b->word, mk(BRK_CLOSED, 0), memory_order_release);
			to = BRK_CLOSED;
		}
		unlock(b);
		return to;
	}
	lock(b);
	uint64_t w = atomic_load(&b->word);
	switch (ph_of(w)) {
	case BRK_CLOSED: {
		/* tenths of the window; a window under 10 ms in 1 ms buckets */
		uint32_t bw = c.window_ms >= BRK_BUCKETS ? c.window_ms / BRK_BUCKETS : 1;
		uint32_t bn = c.window_ms >= BRK_BUCKETS ? BRK_BUCKETS : c.window_ms;
		if (bw != b->bucket_ms || bn != b->bucket_n) {   /* new window (reload) */
			buckets_clear(b);
			b->bucket_ms = bw;
			b->bucket_n = bn;
		}
		uint64_t e = epoch_at(b, now_ms);
		unsigned i = (unsigned)(e % bn);
		if (b->bucket_epoch[i] != e) {
			b->bucket_epoch[i] = e;
			b->bucket_count[i] = 0;
		}
		if (b->bucket_count[i] < UINT32_MAX)
			b->bucket_count[i]++;
		if (window_sum(b, e) >= c.failures) {
			trip(b, &c, now_ms);
			to = BRK_OPEN;
		}
		break;
	}
	case BRK_HALF_OPEN:
		trip(b, &c, now_ms);            /* the probe failed */
		to = BRK_OPEN;
		break;
	default:
		break;                          /* open: a request from before */
	}
	unlock(b);
	return to;
}

void brk_reset(brk_state *b)
{
	lock(b);
	buckets_clear(b);
	atomic_store(&b->word, mk(BRK_CLOSED, 0));
	unlock(b);
}

brk_phase brk_phase_at(const brk_state *b, uint64_t now_ms)
{
	uint64_t w = atomic_load_explicit(&b->word, memory_order_relaxed);
	switch (ph_of(w)) {
	case BRK_CLOSED: return BRK_CLOSED;
	case BRK_OPEN:   return now_ms >= t_of(w) ? BRK_HALF_OPEN : BRK_OPEN;
	default:         return BRK_HALF_OPEN;
	}
}

void brk_get_info(brk_state *b, uint64_t now_ms, brk_info *out)
{
	memset(out, 0, sizeof *out);
	lock(b);
	uint64_t w = atomic_load(&b->word);
	out->phase = brk_phase_at(b, now_ms);
	if (ph_of(w) == BRK_CLOSED && b->bucket_ms)
		out->failures = window_sum(b, epoch_at(b, now_ms));
	if (out->phase == BRK_OPEN)
		out->retry_in_ms = t_of(w) - now_ms;
	out->opened = atomic_load(&b->opened);
	unlock(b);
}

const char *brk_phase_name(brk_phase p)
{
	switch (p) {
	case BRK_CLOSED: return "closed";
	case BRK_OPEN:   return "open";
	default:         return "half_open";
	}
}

/* ------------------------------------------------------------- glue */

void breaker_report(ups_upstream *u, ups_server *s, const gwb_upstream *o, int ok,
                    int status, uint64_t now_ms)
{
	if (!o || !(o->flags & GWB_UPS_BREAKER)) {
		/* no breaker: a state left by a removed block must not keep the
		 * server out (one relaxed load in the common case) */
		if (ph_of(atomic_load_explicit(&s->brk.word, memory_order_relaxed)) != BRK_CLOSED)
			brk_reset(&s->brk);
		return;
	}
	brk_conf c = { o->cb_failures, o->cb_window_ms, o->cb_cooldown_ms };
	int fail = !ok || (status >= 500 && status <= 599);
	brk_phase was = brk_phase_at(&s->brk, now_ms);
	int to = brk_record(&s->brk, &c, fail, now_ms);
	if (to < 0)
		return;
	brk_conf n;
	conf_norm(&c, &n);
	const char *name = u ? ups_name(u) : "?";
	if (to == BRK_CLOSED)
		log_info("upstream '%s' server %s: circuit breaker closed (probe succeeded)",
		         name, s->addr);
	else if (was == BRK_HALF_OPEN)
		log_warn("upstream '%s' server %s: circuit breaker open again for %u ms (probe "
		         "failed%s)", name, s->addr, n.cooldown_ms, ok ? ": status 5xx" : "");
	else
		log_warn("upstream '%s' server %s: circuit breaker open for %u ms (%u failures "
		         "within %u ms)", name, s->addr, n.cooldown_ms, n.failures, n.window_ms);
}

brk_phase breaker_state(const ups_server *s, uint64_t now_ms)
{
	return brk_phase_at(&s->brk, now_ms);
}

void breaker_info(ups_server *s, uint64_t now_ms, brk_info *out)
{
	brk_get_info(&s->brk, now_ms, out);
}

/*
 * breaker.h — the circuit breaker of an upstream server (the rules'
 * `circuit_breaker { failures N; window DUR; cooldown DUR; }` block).
 *
 * State is per server (an ups_server embeds a brk_state, upstream.h), as
 * the design asks: one bad server of an upstream is cut off while the
 * others keep serving; when every server's breaker is open, ups_pick finds
 * none and the client gets 503 {"error":"no healthy upstream"}.
 *
 *            N failures within window                cooldown over
 *   CLOSED ───────────────────────────► OPEN ───────────────────────► HALF_OPEN
 *     ▲                                  ▲                              │
 *     │         probe succeeded          │       probe failed           │ one request
 *     └──────────────────────────────────┼──────────────────────────────┤ (the probe)
 *                                        └──────────────────────────────┘ is let through
 *
 * What counts as a failure (breaker_report): a transfer that failed
 * (connect error, timeout, protocol error, an attempt abandoned for a
 * status retry) and any 5xx response (500..599). 4xx and other statuses
 * are successes: they say the server is alive and answering.
 *
 * The window. Failures are counted in BRK_BUCKETS (10) buckets of
 * window/10 ms each (a window under 10 ms: 1 ms buckets), so a failure
 * counts for between 0.9 x window and window (bucket granularity), never
 * longer; the breaker opens when the failures of the last window reach N.
 * Successes do not reset the count (it is "N failures in a window", not
 * "N in a row").
 *
 * Open: the server is not picked until the cooldown is over. Then it is
 * half-open: ups_pick lets exactly one request through (brk_claim: the
 * first picker wins a compare-and-swap; every other request skips the
 * server, going to another server or getting 503). The first outcome
 * reported while half-open decides: a success closes the breaker (window
 * cleared), a failure opens it for another cooldown. A probe whose outcome
 * never comes (its client went away and the transfer was cut, which
 * reports nothing) holds the slot for at most one cooldown; after that the
 * next request becomes the probe.
 *
 * Outcomes of requests that were already in flight when the breaker
 * opened are ignored while it is open; one arriving after a probe was
 * claimed is taken as the probe's (the state has no per-request identity;
 * such late requests are rare, and their outcome says as much about the
 * server as the probe's would).
 *
 * Threads. brk_admits/brk_claim are lock-free (one atomic load; claim adds
 * one CAS only at the half-open transition), so the pick path never locks.
 * A success in the closed state (the common case) writes nothing. Failures
 * and transitions take a small per-server spinlock (workers report
 * concurrently).
 *
 * Clock: milliseconds of CLOCK_MONOTONIC, the core's gw_tl_now.
 */
#ifndef GWD_BREAKER_H
#define GWD_BREAKER_H

#include <stdatomic.h>
#include <stdint.h>

#include "gwb.h"

#define BRK_BUCKETS 10

typedef enum brk_phase {
	BRK_CLOSED = 0,             /* requests flow */
	BRK_OPEN = 1,               /* cooling down: the server is not picked */
	BRK_HALF_OPEN = 2           /* cooldown over: one probe request allowed
	                             * (or in flight) */
} brk_phase;

/* Embedded in ups_server. All zero bytes (calloc) is a valid closed
 * breaker; brk_init/brk_carry make that explicit. */
typedef struct brk_state {
	/* phase in the 2 high bits, a time (ms) in the others: OPEN -> until
	 * when; HALF_OPEN (probe claimed) -> until when the probe holds the
	 * slot */
	atomic_ullong word;
	atomic_uint hold_ms;        /* the cooldown in force (probe hold time) */
	atomic_ullong opened;       /* times the breaker opened */
	atomic_flag lock;           /* buckets and transitions */
	uint64_t bucket_epoch[BRK_BUCKETS];
	uint32_t bucket_count[BRK_BUCKETS];
	uint32_t bucket_ms;         /* width of the buckets in use */
	uint32_t bucket_n;          /* how many are in use (<= BRK_BUCKETS) */
} brk_state;

/* the block's values; zeros take the defaults (5, 10 s, 30 s) */
typedef struct brk_conf {
	uint32_t failures, window_ms, cooldown_ms;
} brk_conf;

void brk_init(brk_state *b);
/* dst := a copy of src's state (src NULL: closed). Used when a server
 * object is replaced because its configuration changed (upstream.c). */
void brk_carry(brk_state *dst, const brk_state *src);

/* may the server be picked at now? (closed, or an open breaker whose
 * cooldown is over and no probe holds the slot). Lock-free, no writes. */
int brk_admits(const brk_state *b, uint64_t now_ms);
/* the server was chosen: claim the half-open probe if that is the state.
 * 1: go ahead (closed, or this request is the probe); 0: someone else's
 * probe got the slot first (the server does not admit now either). */
int brk_claim(brk_state *b, uint64_t now_ms);
/* one outcome: fail != 0 counts as a failure. Returns the new phase when
 * this outcome changed it (BRK_OPEN: tripped or probe failed; BRK_CLOSED:
 * probe succeeded), else -1. */
int brk_record(brk_state *b, const brk_conf *c, int fail, uint64_t now_ms);
/* back to closed, window cleared (the block was removed from the rules) */
void brk_reset(brk_state *b);

typedef struct brk_info {
	brk_phase phase;
	uint32_t failures;          /* counted in the current window (closed) */
	uint64_t opened;            /* times opened since the server object
	                             * was first created (carried over) */
	uint64_t retry_in_ms;       /* OPEN: ms until half-open; else 0 */
} brk_info;
brk_phase brk_phase_at(const brk_state *b, uint64_t now_ms);
void brk_get_info(brk_state *b, uint64_t now_ms, brk_info *out);
const char *brk_phase_name(brk_phase p);   /* "closed", "open", "half_open" */

/* ------------------------------------------------------------- glue */
struct ups_server;
struct ups_upstream;

/* The proxy's report of one attempt on s of upstream u (proxy.c, next to
 * ups_report): o = the upstream's options in the request's table, ok = 0
 * for a failed transfer, status = the upstream's status (0 if none).
 * Does nothing for an upstream without a circuit_breaker block (and
 * closes a breaker left open by a block that a reload removed). Logs the
 * transitions (warn: opened; info: closed), naming u (may be NULL). */
void breaker_report(struct ups_upstream *u, struct ups_server *s, const gwb_upstream *o,
                    int ok, int status, uint64_t now_ms);
/* For the admin API, /status, metrics and the dashboard: the breaker of a
 * server (phase BRK_CLOSED and zero counts when its upstream has no
 * circuit_breaker block, since nothing was ever recorded). now_ms: the
 * core's clock (CLOCK_MONOTONIC ms). */
brk_phase breaker_state(const struct ups_server *s, uint64_t now_ms);
void breaker_info(struct ups_server *s, uint64_t now_ms, brk_info *out);

#endif /* GWD_BREAKER_H */

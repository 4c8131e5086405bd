/*
 * health.h — active health checks of upstream servers (the rules'
 * `health_check { path "/healthz"; interval 2s; timeout 1s; healthy 2;
 * unhealthy 3; expect 200..399; }` block).
 *
 * Where they run. One health thread for the whole process, with its own
 * libcurl multi handle driven by curl_multi_poll: every check of every
 * server of every upstream is a transfer on that one event loop (no thread
 * per check, no blocking call). Not on a worker's loop: checks are not
 * request traffic, and keeping them off the workers means a burst of
 * checks (hundreds of servers, slow DNS, TLS handshakes) never adds
 * latency to requests, and the request loops stay as measured
 * (runtime-notes.md). The thread only reads the table (reload_acquire) and
 * the upstream registry's snapshots, and writes ups_server.health_down.
 *
 * What a check is. GET scheme://host:port/PATH to the server itself (Host:
 * host:port, User-Agent: gwd-health-check), connection kept alive between
 * checks, whole check bounded by `timeout`; a success is a response whose
 * status lies in expect LO..HI; anything else (connect error, timeout, a
 * status outside the range) is a failure. https:// servers are checked
 * over TLS with the upstream's tls_verify setting. One target per
 * distinct (upstream, server address): servers listed twice share it.
 *
 * Schedule. Each target is checked every `interval` (measured from the
 * start of one check to the start of the next; a check never overlaps the
 * previous one of the same target, so a timeout longer than the interval
 * stretches the period). The first check of a new target starts within a
 * quarter of the interval (at most 250 ms), spread to avoid bursts. Every
 * 200 ms the thread re-reads the current table and each upstream's
 * current snapshot: servers added by the admin API or by a table reload
 * are picked up then, removed ones are dropped with their state, changed
 * settings apply to the next check.
 *
 * Verdicts. A server starts "unknown" and is treated as up (a freshly
 * started gwd serves at once; passive ejection and retries cover a dead
 * server meanwhile). It becomes down after `unhealthy` consecutive failed
 * checks (also from unknown), and up after `healthy` consecutive
 * successes (from unknown: after the first success). Down sets
 * health_down on every ups_server object with that address in the
 * upstream's current snapshot, so ups_pick skips it; the verdict is
 * re-applied every 200 ms, so a server object replaced by a configuration
 * change (new weight...) gets it too. When a health_check block is removed
 * by a reload, the servers of that upstream are marked up again.
 *
 * Clock: CLOCK_MONOTONIC milliseconds, the core's gw_tl_now clock.
 */
#ifndef GWD_HEALTH_H
#define GWD_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

/* start the health thread (after reload_init and curl_global_init, i.e.
 * after srv_start). 0 ok; -1 with err */
int health_start(char *err, size_t errlen);
/* stop and join it, free every target; servers keep their health_down
 * values. A no-op when not started. */
void health_stop(void);

typedef enum health_state {
	HEALTH_NONE = 0,            /* the upstream has no health_check block */
	HEALTH_UNKNOWN,             /* checked, no verdict yet (treated as up) */
	HEALTH_UP,
	HEALTH_DOWN
} health_state;
/* "none", "unknown", "up", "down" */
const char *health_state_name(health_state st);

typedef struct health_info {
	health_state state;
	uint32_t ok_run, fail_run;  /* consecutive successes / failures now */
	uint64_t checks, failures;  /* checks completed, of which failed */
	int last_status;            /* status of the last check; 0: no response */
	char last_error[128];       /* why the last failed check failed ("" if
	                             * the last check succeeded) */
	uint64_t last_check_ms;     /* when the last check completed; 0 never */
	uint64_t since_ms;          /* when the state last changed */
	uint64_t transitions;       /* up<->down changes */
} health_info;

/* For the admin API (/status, /detail), metrics and the dashboard; any
 * thread, takes a short lock. */
health_state health_server_state(const ups_upstream *u, const ups_server *s);
/* the target of (upstream name, server addr as in ups_server.addr):
 * 0 and *out filled, -1 when there is none (no health_check block, or
 * not seen by the health thread yet) */
int health_server_info(const char *upstream, const char *addr, health_info *out);
/* every target, sorted by upstream then address; fn must not call back
 * into health_* (a lock is held) */
void health_foreach(void (*fn)(const char *upstream, const char *addr,
                               const health_info *hi, void *ctx), void *ctx);

#endif /* GWD_HEALTH_H */

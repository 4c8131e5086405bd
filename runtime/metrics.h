/*
 * metrics.h — gwd's Prometheus metrics (GET /metrics on the admin port,
 * text exposition format 0.0.4) and the end-of-request hook that feeds them
 * and the access log (accesslog.h).
 *
 * Counting. Each worker thread owns a counter block; a request is counted
 * on the worker that ran it with plain relaxed loads and stores (no
 * read-modify-write, no lock, no cache line shared with another writer).
 * The scraper (admin thread) sums the blocks with relaxed loads: a scrape
 * may miss the increments of requests completing during the scrape, never
 * sees a counter go back. Counter blocks grow in fixed chunks that never
 * move, allocated by their worker the first time it counts an id of the
 * chunk and published with a release store.
 *
 * Names. Per-route series are keyed by the route's *name* (and upstream
 * series by the upstream's name), interned once per name in a registry when
 * a table is loaded (the "metrics" plugin's init, control thread), so
 * counters survive reloads and a route that disappears keeps its last
 * values. Requests that matched no route count under route="".
 *
 * Families (all names gw_*):
 *   gw_requests_total{route,upstream,code_class}   counter; upstream="" for
 *                            answers gwd made itself (refusals, redirects,
 *                            404...); code_class "1xx".."5xx" (a client gone
 *                            before any answer counts as 499, "4xx")
 *   gw_request_duration_seconds{route}              histogram, first byte of
 *                            the head to completion (millisecond resolution)
 *   gw_upstream_duration_seconds{route}             histogram, libcurl's total
 *                            time of the last attempt (microseconds)
 *   gw_received_bytes_total{route}                  request head + body bytes
 *   gw_sent_bytes_total{route}                      response body bytes
 *   gw_connections_active, gw_requests_in_flight    gauges
 *   gw_upgrade_handshakes_total, gw_upgraded_connections_total counters,
 *   gw_upgraded_connections_active gauge, gw_upgraded_bytes_total{direction}
 *                            (client_to_upstream|upstream_to_client):
 *                            WebSocket and other upgrades (upgrade.h)
 *   gw_upstream_server_up{upstream,server}          1 if the server is
 *                            healthy: not ejected by failures (max_fails) nor
 *                            down by health checks (drain and the breaker
 *                            are separate families), else 0
 *   gw_upstream_server_draining{upstream,server}     1 while drained (admin API)
 *   gw_upstream_server_active_requests{upstream,server}, and counters
 *   gw_upstream_server_requests_total / _failures_total{upstream,server}
 *   gw_upstream_server_breaker_state{upstream,server,state}  1 for the
 *                            breaker's state (closed|open|half_open), 0 for
 *                            the others; only upstreams with circuit_breaker
 *   gw_upstream_server_breaker_opened_total{upstream,server}
 *   gw_upstream_health_checks_total / _check_failures_total{upstream,server}
 *                            (upstreams with a health_check block)
 *   gw_upstream_retries_total{upstream}             attempts beyond the first
 *   gw_ratelimit_decisions_total{route,result}      result allowed|limited
 *   gw_connlimit_decisions_total{route,result}      result allowed|limited
 *   gw_waf_blocks_total{route,rule,class}, gw_waf_detections_total{...}
 *   gw_cache_requests_total{route,result}           result hit|miss (the
 *                            cache plugin's X-Cache answer header)
 *   gw_table_generation, gw_table_info{source_hash} 1,
 *   gw_reloads_total{result="ok|error"}
 *   gw_ratelimit_redis_fallbacks_total, gw_ratelimit_redis_errors_total,
 *   gw_ratelimit_evictions_total                    (ratelimit.h counters)
 *   gw_access_log_lines_total, gw_access_log_dropped_total
 *   gw_build_info{version} 1, process_start_time_seconds
 *
 * Off switch: `metrics: {enabled: false}` in gateway.yaml (read at start)
 * skips the per-request counting and leaves GET /metrics unregistered.
 */
#ifndef GWD_METRICS_H
#define GWD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "plugin.h"
#include "upstream.h"

/* ---- set-up (control thread) ---------------------------------------- */

/* Before admin_start: remember the upstream registry (server health) and
 * register GET /metrics with the admin API. cfg (NULL: the defaults)
 * gives metrics.enabled: when off, GET /metrics is not registered (404),
 * requests are not counted, and the request-path calls below only gather
 * what the access log needs (nothing at all when it is off too).
 * 0 ok; -1 with err. */
int metrics_init(ups_registry *reg, const gwd_config *cfg, char *err, size_t errlen);
/* metrics.enabled as metrics_init took it (1 before metrics_init) */
int metrics_enabled(void);
/* after the workers are gone: free the counter blocks and the registry */
void metrics_shutdown(void);

/* ---- rendering ------------------------------------------------------ */

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* a growing text buffer; p is malloc'd (NULL while empty) */
typedef struct metrics_buf {
	char *p;
	size_t len, cap;
	int oom;                  /* an append failed: the text is incomplete */
} metrics_buf;

/* Append every family to b. Thread-safe (renders hold the registry lock;
 * workers are never blocked by a scrape). 0 ok, -1 out of memory. */
int metrics_render(metrics_buf *b);
void metrics_buf_free(metrics_buf *b);

/* ---- the request path (srv.c completed_cb, worker thread) ----------- */

/* The request has a proxy (r->px): note the upstream side (server,
 * attempts, upstream time, bytes) before proxy_finish() recycles it. */
void metrics_req_proxied(gw_req *r);
/* The request is over, after the log phase and before the table is let
 * go: count it and write its access-log line (unless `log off`).
 * completed: 0 when MHD ended it early (client gone, error). */
void metrics_req_done(gw_req *r, int completed);

/* ---- for plugins (worker thread, from a handler) -------------------- */

/* a rate_limit decision for this request (the request's verdict is
 * "limited" if any call said so); counted once per request */
void metrics_count_ratelimit(gw_req *r, int allowed);
void metrics_count_connlimit(gw_req *r, int allowed);
/* a WAF hit: rule (the `waf rule` name, or a built-in check's name) and
 * class ("sqli", "xss", "traversal", "scanner", "protocol", "rule");
 * blocked 1 = refused (403), 0 = detect mode. The strings must live as
 * long as the request (table strings do). The last hit is the one the
 * access log shows. */
void metrics_count_waf(gw_req *r, const char *rule, const char *cls, int blocked);

/* ---- for the admin API: one route's counters, summed over workers --- */
typedef struct metrics_route_stats {
	uint64_t requests;             /* all code classes, all upstreams */
	uint64_t by_class[5];          /* 1xx .. 5xx */
	uint64_t bytes_in, bytes_out;
	double duration_sum_s;         /* sum of request durations */
} metrics_route_stats;
/* 0 and *out filled; -1 when no table ever had a route of that name */
int metrics_route_stats_get(const char *route, metrics_route_stats *out);

/* ---- what the end-of-request hook hands the access log -------------- */
typedef struct metrics_rec {
	int status;                    /* sent; 499: client gone before it */
	uint64_t duration_ms;
	int64_t upstream_us;           /* -1: no upstream attempt */
	uint64_t bytes_in, bytes_out;
	const char *route;             /* NULL: no route matched */
	const char *upstream;          /* NULL: not proxied */
	const char *upstream_server;   /* "host:port" of the last attempt, or NULL */
	int upstream_status;           /* 0: no response head */
	unsigned attempts;
	const char *ratelimit;         /* "allowed" / "limited" / NULL */
	const char *connlimit;
	const char *waf_action;        /* "block" / "detect" / NULL */
	const char *waf_rule, *waf_class;
	const char *cache;             /* "hit" / "miss" / NULL */
} metrics_rec;

/* the plugin (plugin_list.h): per-table route maps, per-request verdicts */
extern const gw_plugin gw_plugin_metrics;

#endif /* GWD_METRICS_H */

/*
 * admin.h — gwd's admin API (interfaces.md "Admin API"), on its own
 * listener (admin.listen, default 127.0.0.1:9901; "off" disables it),
 * served by a libmicrohttpd daemon with its own internal thread: the admin
 * API is not the hot path and never runs on a worker.
 *
 * Endpoints
 *   dyups-compatible (text):
 *     POST   /upstream/NAME   body "server 127.0.0.1:9001;server h:p weight=2;"
 *                             replace NAME's servers; 200 "success"
 *     DELETE /upstream/NAME   drop the override: back to the table's servers
 *                             (a `dynamic` upstream becomes empty); 200 "success"
 *     GET    /upstream/NAME   its servers, one per line:
 *                             "server ADDR weight=W max_fails=F fail_timeout=T backup=0 down=0"
 *     GET    /list            upstream names, one per line
 *     GET    /detail          "NAME\n" + its server lines + "\n", per upstream;
 *                             lines end with " health=STATE" / " breaker=STATE"
 *                             for upstreams with those blocks
 *   JSON:
 *     GET    /api/upstreams                     every upstream, with server state
 *                             (incl. health check and circuit breaker)
 *     GET|PUT|DELETE /api/upstreams/NAME         one upstream; PUT body
 *                             {"servers":[{address, weight, max_fails,
 *                             fail_timeout, backup, drain}]} or the bare array
 *     PUT|DELETE /api/upstreams/NAME/servers/ADDR       add/replace or remove one
 *     POST|DELETE /api/upstreams/NAME/servers/ADDR/drain drain / undrain one
 *     GET    /api/routes      route names with file:line:col and their
 *                             counters (metrics_route_stats_get)
 *     POST   /reload          re-read gateway.yaml and the table
 *     GET    /status          version, table, uptime, connections, upstreams,
 *                             reload_history (the last reload attempts)
 *   Other areas add theirs (GET /metrics, GET /) with admin_route_add().
 *
 * Every change is written to state_dir (temp file, fsync, rename, fsync of
 * the directory) before it is applied and before the 200; a failed write
 * answers 500 and changes nothing. The state is re-applied at start-up and
 * after every table reload (reload_set_sync_hook), so overrides survive
 * both. Details and decisions: admin_state.c.
 *
 * Security: a non-loopback admin.listen without admin.token_file is refused
 * (config_load, and again by admin_start). With a token file, every call
 * needs "Authorization: Bearer TOKEN" (the file's surrounding whitespace is
 * ignored), compared in constant time; 401 otherwise.
 */
#ifndef GWD_ADMIN_H
#define GWD_ADMIN_H

#include <stddef.h>
#include "config.h"
#include "upstream.h"

/* Before reload_init: read the token file and the persisted state, and
 * hook the state into table loads (so the first table already gets it).
 * Keeps copies of what it needs from cfg (admin.listen, token, state_dir
 * take effect at start only). 0 ok; -1 with err. */
int admin_init(const gwd_config *cfg, ups_registry *reg, char *err, size_t errlen);

/* gwd -t: would admin_init accept this token file (readable, one line,
 * not empty once trimmed)? Keeps nothing. 0 ok; -1 with err. */
int admin_check_token(const char *path, char *err, size_t errlen);
/* After srv_start: open the listener and start the admin thread (a no-op
 * when admin.listen is off). 0 ok; -1 with err. */
int admin_start(char *err, size_t errlen);
/* Stop the listener (waits for a call in progress), free everything. */
void admin_stop(void);

/* ---- for other areas: more endpoints on the admin listener ---- */

/* What a handler answers. body is malloc'd (taken over and freed by the
 * admin API), or NULL with len 0; ctype NULL = "text/plain". */
typedef struct admin_reply {
	int status;
	const char *ctype;
	char *body; size_t len;
} admin_reply;

/* Called on the admin thread, after authentication, with the whole request
 * body (NUL-terminated; len excludes the NUL). path has no query string. */
typedef void (*admin_handler)(const char *method, const char *path,
                              const char *body, size_t len,
                              admin_reply *out, void *ctx);

/* Serve method (NULL = any) on path: exactly, or with prefix = 1 every path
 * starting with it. Checked before the built-in endpoints, in the order
 * added. Call before admin_start. 0 ok, -1 out of memory. */
int admin_route_add(const char *method, const char *path, int prefix,
                    admin_handler fn, void *ctx);
/* The same for a page that carries no data (the dashboard's HTML, which
 * fetches everything else with the token): exactly path, any method,
 * GET and HEAD served without the bearer token so a browser can open it.
 * The handler must answer other methods itself. 0 ok, -1 out of memory. */
int admin_route_add_public(const char *path, admin_handler fn, void *ctx);

#endif /* GWD_ADMIN_H */

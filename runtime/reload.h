/*
 * reload.h — the current table and how it changes.
 *
 * The current table (gw_tab, core.h) is swapped with one pointer store
 * under a mutex that only the swap and a worker *noticing* a new
 * generation take (never a request); each worker holds one reference on
 * the table it serves, requests count on the worker's handle without
 * atomics, and a table is freed when the last worker lets it go, so
 * in-flight requests finish on the table they started with.
 *
 * Sources of reloads: inotify on the table's directory (rename-over,
 * in-place writes, deleted-and-recreated files), SIGHUP and reload_now()
 * (config + table, for the admin API). A new table is read into memory
 * (never mmapped: an editor writing in place must not change a live
 * table under us), verified by gwb_load_mem, its upstreams reconciled
 * with ups_sync, its plugins initialised, and only then swapped in. A bad
 * table is logged and the old one stays.
 */
#ifndef GWD_RELOAD_H
#define GWD_RELOAD_H

#include <stddef.h>
#include <stdint.h>
#include "core.h"
#include "config.h"

/* load the first table for cfg (taken over by reload: freed by
 * reload_shutdown). 0 ok; -1 with err */
int reload_init(gwd_config *cfg, ups_registry *reg, char *err, size_t errlen);
void reload_shutdown(void);

/* workers: the generation (changes on each swap) and a reference on the
 * current table */
uint64_t reload_generation(void);
gw_tab *reload_acquire(void);
void reload_release(gw_tab *t);

/* re-read gateway.yaml and the table, swap both (SIGHUP, admin POST
 * /reload). 0 ok; -1 with err (nothing changed). Thread-safe. */
int reload_now(char *err, size_t errlen);
/* re-read the table only (inotify); force = swap even if unchanged */
int reload_table(int force, char *err, size_t errlen);

/* inotify: the fd to poll (-1 if watching failed), its events handler,
 * and the debounce: reload_watch_handle() returns the delay in ms after
 * which reload_watch_timer() must be called (-1 = no timer needed) */
int reload_watch_fd(void);
int reload_watch_handle(void);
void reload_watch_timer(void);

/* the configuration in force (the control thread's copy) */
const gwd_config *reload_config(void);

/* for gwd -t and /status */
typedef struct reload_info {
	uint64_t generation;
	char hash[65];
	uint32_t routes, upstreams;
	uint64_t reloads_ok, reloads_failed;
} reload_info;
void reload_get_info(reload_info *out);

/* The last reload attempts (table loads at start, on file changes, SIGHUP
 * and POST /reload; successful or not), newest first, for /status and the
 * dashboard: copies up to max of them into out, returns how many. */
#define RELOAD_HISTORY 16
typedef struct reload_event {
	int64_t time_ms;            /* wall clock, ms since the epoch */
	uint64_t generation;        /* the table in force afterwards (kept on failure) */
	char hash[65];              /* its source sha256, hex */
	int ok;
	char why[16];               /* "start", "reload", "file changed", "forced" */
	char error[200];            /* why it failed ("" when ok) */
} reload_event;
size_t reload_history(reload_event *out, size_t max);

/* Called after a new table's upstreams were reconciled (ups_sync) and
 * before the table is swapped in, with the reload lock held, so the first
 * request on the new table already sees what the hook did: the admin API
 * re-applies its persisted upstream overrides there (admin_state.c). It
 * must not call reload_* functions. NULL = none. Set before reload_init. */
typedef void (*reload_sync_hook)(const gwb_table *t, ups_registry *reg);
void reload_set_sync_hook(reload_sync_hook fn);

/* build a table holder from a file (no swap); used by gwd -t */
gw_tab *reload_load_tab(const char *path, const gwd_config *cfg, ups_registry *reg,
                        char *err, size_t errlen);

#endif /* GWD_RELOAD_H */

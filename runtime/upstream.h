/*
 * upstream.h — runtime state of upstreams: server lists, balancing, passive
 * health (max_fails/fail_timeout), active connection counts. This state
 * outlives compiled tables: it is keyed by upstream name and reconciled with
 * each new table (ups_sync), and the admin API replaces server lists at run
 * time (ups_set_servers). Readers (server threads) never take a global lock:
 * they use an RCU-style refcounted snapshot of an upstream's server list and
 * atomics for counters; balancing state that is not shared (round-robin
 * cursors) is per worker thread.
 */
#ifndef GWD_UPSTREAM_H
#define GWD_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include "gwb.h"
#include "breaker.h"

typedef struct ups_server {
	char *addr;                 /* "host:port" as configured */
	char *host; int port;       /* parsed; host without brackets */
	int https;
	uint32_t weight, max_fails, fail_timeout_ms;
	int backup;
	/* shared, atomically updated */
	atomic_uint fails;          /* failures in the current fail window */
	atomic_llong fail_window_start_ms;
	atomic_llong down_until_ms; /* passive ejection: skip until then */
	atomic_int active;          /* requests in flight (least_conn) */
	atomic_int health_down;     /* active health check verdict (issue 5) */
	atomic_ullong requests, failures;
	atomic_int refs;            /* internal */
	atomic_int drain;           /* admin API: drained, gets no new requests
	                             * (in-flight ones finish). Not part of the
	                             * server's identity: changing it keeps the
	                             * object (and its `active` count, which
	                             * shows when a drain is complete) */
	brk_state brk;              /* circuit breaker (breaker.h); consulted
	                             * by ups_server_available and ups_pick */
} ups_server;

typedef struct ups_snapshot {   /* immutable list; refcounted */
	ups_server **servers; size_t n;
	atomic_int refs;
} ups_snapshot;

typedef struct ups_upstream ups_upstream;   /* opaque, one per name */
typedef struct ups_registry ups_registry;

ups_registry *ups_registry_new(void);
void ups_registry_free(ups_registry *r);
/* reconcile with a freshly loaded table: create upstreams that are new,
 * update options, and for upstreams without an admin override take the
 * table's server list (servers with the same addr keep their counters) */
int ups_sync(ups_registry *r, const gwb_table *t);
ups_upstream *ups_find(ups_registry *r, const char *name);
const char *ups_name(const ups_upstream *u);
/* options as compiled (balance, timeouts, retries ...) of the last sync.
 * The pointer stays valid until ups_registry_free; its STR fields index
 * the strings of the table last synced, so resolve strings through the
 * table's own gwb_upstream_at() rather than through this copy. */
const gwb_upstream *ups_options(const ups_upstream *u);

/* admin API: replace the server list (NULL/0 drops the override and
 * returns to the table's list, or empties a dynamic upstream) */
int ups_set_servers(ups_upstream *u, const char *const *addrs,
                    const uint32_t *weights, size_t n, char *err, size_t errlen);

/* readers */
ups_snapshot *ups_acquire(ups_upstream *u);
void ups_release(ups_snapshot *s);

typedef struct ups_pick_ctx {
	int worker;                 /* worker index, for per-thread rr state */
	const uint8_t *client_ip; size_t client_ip_len;
	const char *hash_key; size_t hash_key_len;   /* for hash(...) */
	const ups_server *const *exclude; size_t nexclude; /* already tried */
	uint64_t now_ms;
} ups_pick_ctx;

/* choose a server; NULL when none is available (-> 503) */
ups_server *ups_pick(ups_upstream *u, ups_snapshot *s, const ups_pick_ctx *c);
/* passive health: report the outcome of a request to s */
void ups_report(ups_upstream *u, ups_server *s, int ok, uint64_t now_ms);
void ups_conn_begin(ups_server *s);
void ups_conn_end(ups_server *s);

/* ---- additions (upstream.c), for the admin API and /status ---- */

/* one server of an admin override; ups_set_servers() uses weight (NULL =
 * 1 each) and nginx's defaults max_fails=1 fail_timeout=10s, not backup */
typedef struct ups_server_spec {
	const char *addr;           /* see addr.h: host:port, [v6]:port, https://... */
	uint32_t weight;            /* 1..UPS_MAX_WEIGHT */
	uint32_t max_fails;         /* 0 = never eject passively */
	uint32_t fail_timeout_ms;   /* 0 = 10 s */
	int backup;
	int drain;                  /* no new requests (admin API drain) */
} ups_server_spec;
#define UPS_MAX_WEIGHT 1000000u
int ups_set_servers_ex(ups_upstream *u, const ups_server_spec *v, size_t n,
                       char *err, size_t errlen);
/* ups_sync with the reason of a failure in err ("upstream 'api': bad
 * address 'h:' (empty port)", "duplicate upstream 'x'"); all-or-nothing:
 * on -1 the registry is unchanged */
int ups_sync_ex(ups_registry *r, const gwb_table *t, char *err, size_t errlen);
/* 1 while an admin override replaces the table's list */
int ups_has_override(ups_upstream *u);
/* calls fn for every upstream of the last synced table, in name order,
 * stopping at the first nonzero return (which it returns); writers are
 * held off meanwhile, so fn must not call ups_sync/ups_set_servers */
int ups_foreach(ups_registry *r, int (*fn)(ups_upstream *u, void *ctx), void *ctx);
/* 1 if s may be picked at now_ms (not ejected, not health_down, not
 * drained, its circuit breaker admits requests) */
int ups_server_available(const ups_server *s, uint64_t now_ms);

#endif /* GWD_UPSTREAM_H */

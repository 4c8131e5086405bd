/*
 * core.h — gwd internals shared by the server (srv.c), the proxy (proxy.c),
 * the event loop (loop.c), the phase runner (phase.c), the core actions
 * (actions.c) and reload (reload.c). Not a public API: plugins use
 * plugin.h, the admin API uses reload.h and srv.h.
 *
 * Threads: one worker per core, each with its own epoll, its own
 * libmicrohttpd daemons (one per listen address, SO_REUSEPORT) and its own
 * libcurl multi handle; a request lives and dies on one worker, so nothing
 * in gw_req / gw_proxy / gw_worker is ever touched by two threads. The only
 * shared objects are the current table (gw_tab, refcounted, swapped with one
 * atomic store) and the upstream registry (upstream.h, lock-free readers).
 */
#ifndef GWD_CORE_H
#define GWD_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>
#include <curl/curl.h>

#include "gwb.h"
#include "plugin.h"
#include "reqid.h"
#include "upstream.h"

/* ------------------------------------------------------------ settings */
/* What a request needs from gateway.yaml; a copy travels with each table
 * (gw_tab.lim) so SIGHUP swaps config and table in the same atomic store. */
typedef struct gw_limits {
	uint64_t max_header_size;   /* request head bytes (431); URI (414) */
	uint64_t max_body_size;     /* 0 = unlimited (413) */
	uint32_t client_timeout_ms; /* head receive + keep-alive idle */
	uint32_t drain_timeout_ms;
} gw_limits;

/* --------------------------------------------------------------- table */
typedef struct gw_tab {
	gwb_table *t;
	atomic_int refs;            /* 1 while current + 1 per worker holding it */
	uint64_t gen;               /* generation: 1, 2, ... */
	char hash[65];              /* source sha256, hex */
	gw_limits lim;
	ups_upstream **ups;         /* runtime upstream by table upstream index */
	void *pstate[GW_MAX_PLUGINS];
	uint8_t pinit[GW_MAX_PLUGINS]; /* init() ran: dispose() on free */
} gw_tab;

/* A worker's handle on a table: requests count on it without atomics. */
typedef struct gw_wtab {
	gw_tab *tab;
	unsigned inflight;          /* requests of this worker using tab */
	struct gw_wtab *next;       /* retired list */
} gw_wtab;

/* ------------------------------------------------------------- headers */
typedef struct gw_hdr {
	const char *name; size_t nlen;
	const char *val; size_t vlen;
	int op;                     /* HDR_SET, HDR_ADD, HDR_DEL */
} gw_hdr;
enum { HDR_SET, HDR_ADD, HDR_DEL };

typedef struct gw_hlist { gw_hdr *v; size_t n, cap; } gw_hlist;

/* -------------------------------------------------------------- buffers */
typedef struct gw_ring { char *buf; size_t cap, head, len; } gw_ring;

/* ------------------------------------------------------------- request */
#define GW_ARENA_INLINE 3072

typedef struct gw_arena_blk { struct gw_arena_blk *next; } gw_arena_blk;

typedef struct gw_worker gw_worker;
typedef struct gw_proxy gw_proxy;
typedef struct gw_conn gw_conn;

enum { RQ_NEW, RQ_HEAD, RQ_QUEUED };          /* gw_req.state */
enum { K_NONE, K_OWN, K_PROXY };              /* gw_req.kind */
enum { PEEK_NONE, PEEK_FILL, PEEK_DONE };     /* gw_req.peek_state */

struct gw_req {
	gw_req *next;                /* pool free list */
	gw_worker *w;
	gw_conn *c;
	struct MHD_Connection *conn;
	gw_wtab *wt;                 /* table holder (counted in wt->inflight) */
	const gw_tab *tab;
	const gwb_table *t;
	uint32_t route;              /* GWB_NONE before a match */
	const gwb_route *rt;
	gwb_match m;
	const char *match_path;      /* subject of m's captures */
	int phase; uint32_t pc;      /* phase cursor */
	int state, kind;
	int suspended;               /* MHD connection suspended by us */
	int phase_wait;              /* a plugin returned GW_AGAIN */
	int discard_body;            /* own answer decided: drop upload data */
	int too_large;               /* body went over max_body_size */
	/* request line */
	const char *method; size_t method_len;
	uint32_t mbit;
	char *uri; size_t uri_len;   /* raw request-target, as sent */
	size_t rawpath_len;          /* uri[0..rawpath_len) is the path */
	const char *query; size_t query_len;
	int has_query;
	char *path; size_t path_len; /* normalised, rewritten */
	int path_changed;            /* path differs from the raw one */
	const char *host; size_t host_len;
	int http10;
	int close_conn;              /* answer with Connection: close (bad framing, no Host) */
	int tls;                     /* came over TLS (X-Forwarded-Proto, ${scheme}) */
	/* client */
	int ip_family; uint8_t ip[16];
	char ipstr[48];
	char id[REQID_MAX + 1];
	int id_from_client;
	/* body */
	int has_body;
	int64_t content_length;      /* -1 unknown (chunked) */
	uint64_t body_seen;
	uint64_t body_limit;         /* body_limit directive (0 none), see body_max() */
	/* gw_req_body_peek (srv.c): the body's first bytes, read while an
	 * access handler waits; proxied before the rest of the body */
	char *peek_buf;
	size_t peek_len, peek_want, peek_sent;
	int peek_state;              /* PEEK_NONE, PEEK_FILL, PEEK_DONE */
	int body_ended;              /* the final upload call came */
	/* the path climbed above "/" with "..": routed on its clamped form so
	 * access directives (waf traversal: 403) see it; 400 if they pass */
	int path_above_root;
	/* edits by rewrite / header_filter / plugins */
	gw_hlist req_edits, resp_edits;
	/* own response */
	int status;                  /* status sent (0 until queued) */
	int own_status;
	const char *own_body; size_t own_body_len;
	const char *own_ctype;
	const char *own_location;
	const char *err_msg;         /* JSON error text; NULL = not an error */
	/* content: proxy */
	uint32_t proxy_ups, proxy_timeout_ms;
	gw_proxy *px;
	struct gw_upg *upg;          /* an Upgrade handshake / relay (upgrade.c) */
	uint64_t start_ms;
	/* plugins */
	void *pctx[GW_MAX_PLUGINS];
	const gw_resp_tap *tap;      /* gw_req_tap_response (cache fills) */
	void *tap_arg;
	/* arena */
	gw_arena_blk *blk;
	char *ap; size_t aleft;
	_Alignas(16) char arena[GW_ARENA_INLINE];
};

/* per-connection state (MHD socket context) */
struct gw_conn {
	gw_conn *prev, *next;        /* worker's list, for the head-timeout sweep */
	struct MHD_Connection *conn;
	uint64_t idle_since_ms;      /* waiting for a request head since; 0 = busy */
	unsigned nreq;
	int fd;
	int ip_family; uint8_t ip[16];
	char ipstr[48];
	int tls;                     /* accepted by a TLS listener (tls.c) */
	struct tls_ctx *tls_ctx;     /* certificates its handshake used (tls.c) */
	int linger;                  /* answered before the body's end: lingering close */
};

/* --------------------------------------------------------------- proxy */
struct gw_proxy {
	gw_proxy *next, *prev;       /* free list / worker's active list */
	gw_worker *w;
	CURL *easy;
	gw_req *r;
	gw_ring up, down;            /* request body to curl / response body to MHD */
	char errbuf[CURL_ERROR_SIZE];
	/* upstream */
	ups_upstream *u;
	const gwb_upstream *uo;
	ups_snapshot *snap;
	ups_server *srv;
	ups_server *next_srv;        /* chosen for a status retry */
	const ups_server *tried[8]; size_t ntried;
	unsigned attempts;
	/* transfer state */
	int in_multi;
	int up_end;                  /* client body complete */
	int up_paused;               /* curl read callback paused (ring empty) */
	int down_paused;             /* curl write callback paused (ring full) */
	int unpause_queued;
	int head_state;              /* 0 none, 1 status seen, 2 final head done */
	int status;
	int64_t clen;                /* upstream Content-Length, -1 unknown */
	gw_hlist rh;                 /* upstream response headers (arena) */
	int done;                    /* transfer finished (ok or not) */
	int failed;                  /* 502/503/504 if the transfer failed */
	const char *fail_msg;        /* its JSON error text */
	int started;                 /* response queued to MHD */
	int streaming;               /* queued as a callback response */
	int reader_wait;             /* MHD suspended in the reader for data */
	int body_wait;               /* MHD suspended in an upload call (ring full) */
	int head_wait;               /* MHD suspended waiting for the head */
	int abort_retry;             /* header callback aborted for a status retry */
	uint64_t last_io_ms;
	uint32_t timeout_ms;
	unsigned unpause_mask;
	gw_proxy *unext;             /* worker's unpause list */
};

/* -------------------------------------------------------------- worker */
struct gw_worker {
	int idx;
	int epfd, evfd;
	struct MHD_Daemon **mhd; size_t nmhd;
	int *mhd_fd;                 /* each daemon's epoll fd */
	CURLM *multi;
	long curl_timeout;           /* ms from curl_deadline, -1 = none */
	uint64_t curl_deadline;
	gwb_scratch *scratch;
	void *md;                    /* pcre2_match_data for rewrite regex */
	gw_wtab *wt;                 /* current table */
	uint64_t gen;
	gw_wtab *retired;
	gw_req *free_req; unsigned nfree_req;
	gw_proxy *free_px; unsigned nfree_px;
	gw_proxy active;             /* sentinel: in-flight proxies */
	gw_proxy *unpause;
	int mhd_dirty;               /* a connection was resumed: run MHD */
	gw_conn conns;               /* sentinel */
	gw_conn *free_conn; unsigned nfree_conn;
	uint64_t next_sweep;
	int draining;
	uint64_t drain_deadline;
	unsigned nreq;               /* requests in flight */
	unsigned nconn;
	uint32_t *sock; size_t nsock;/* curl socket state by fd */
	struct door_state *door;     /* door.c: gwd's accept on plain listeners */
	struct linger_state *linger; /* linger.c: answered, waiting for the client's end */
	pthread_t th;
	int joined;                  /* control thread: th joined */
	atomic_int stop;             /* 1 graceful, 2 now */
	/* counters */
	uint64_t requests, proxied, errors;
};

/* ------------------------------------------------------------ srv.c */
extern gw_worker *srv_workers;
extern int srv_nworkers;
void srv_resume(gw_req *r);                 /* resume if we suspended it */
void srv_continue(gw_req *r);               /* after gw_req_resume */
/* the MHD side of a proxy event: head ready / body data / done */
void srv_proxy_event(gw_req *r);
/* responses built outside srv.c (upgrade.c), with the same finishing
 * touches as gwd's own: X-Request-Id, header_filter, Connection: close
 * while draining. srv_queue consumes resp; srv_queue_error answers with
 * gwd's JSON error (msg NULL: the status's default text) */
void srv_queue(gw_req *r, int status, struct MHD_Response *resp, gw_hlist *hdrs);
void srv_queue_error(gw_req *r, int status, const char *msg);
void *srv_alloc(gw_req *r, size_t n);

/* a header value's length without trailing SP/HTAB: libmicrohttpd 0.9.75
 * strips only the leading ones, RFC 9110 5.5 (and nginx) both */
static inline size_t srv_value_len(const char *v, size_t n)
{
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n;
}
void srv_sweep(gw_worker *w, uint64_t now, uint32_t client_timeout_ms);
struct gwd_config;
/* lfd < 0: a daemon without a listen socket (door.c accepts for it) */
struct MHD_Daemon *srv_daemon_start(gw_worker *w, int lfd, const struct gwd_config *cfg,
                                    int nworkers);
/* bytes of a request head libmicrohttpd's connection pool has room for,
 * and the connections each of nworkers workers takes (max_connections) */
size_t srv_head_room(const struct gwd_config *cfg);
unsigned srv_conn_limit(const struct gwd_config *cfg, int nworkers);
/* the same with TLS (MHD_USE_TLS, tls.c's certificate callback) */
struct MHD_Daemon *srv_daemon_start_tls(gw_worker *w, int lfd, const struct gwd_config *cfg,
                                        int nworkers);
/* listen address i of a worker's daemons: cfg->listen, then
 * cfg->tls_listen (*tls = 1 for those; tls may be NULL) */
struct cfg_listen;
const struct cfg_listen *srv_listen_addr(const struct gwd_config *cfg, size_t i, int *tls);
char *srv_strndup(gw_req *r, const char *s, size_t n);
int hlist_push(gw_req *r, gw_hlist *l, const char *name, size_t nlen,
               const char *val, size_t vlen, int op);
/* look an edit up by name: the last one wins; NULL if none */
const gw_hdr *hlist_find(const gw_hlist *l, const char *name, size_t nlen);
/* the client's own header (first of that name), any case */
int srv_header_raw_n(gw_req *r, const char *name, size_t nlen, const char **v, size_t *vlen);
/* expand template text s[0..n) (req.c); arena string */
const char *req_expand_with(gw_req *r, const char *s, size_t n, const char *subject,
                            const gwb_match *m, size_t *len);
extern _Thread_local uint64_t gw_tl_now;

/* ---------------------------------------------------------- proxy.c */
int proxy_global_init(void);
int proxy_worker_init(gw_worker *w);
/* the calling thread runs worker w's loop (see poll() in proxy.c) */
void proxy_thread_enter(gw_worker *w);
void proxy_worker_free(gw_worker *w);
/* start the transfer for r (route content PROXY); 0 ok, else a status to
 * answer with (503 no server, 500) */
int proxy_start(gw_req *r);
/* feed client body bytes; returns how many were taken (0: ring full) */
size_t proxy_body(gw_proxy *px, const char *data, size_t n);
void proxy_body_end(gw_proxy *px);
/* build the MHD response for a proxied request whose head is ready */
struct MHD_Response *proxy_response(gw_proxy *px, int *status);
/* the request is over: stop the transfer, return px to the pool */
void proxy_finish(gw_proxy *px);
/* stop the transfer now (the client side failed); no retry, no report */
void proxy_abort(gw_proxy *px);
/* after MHD_run: run deferred curl unpauses; after curl events: completions */
void proxy_unpause_pending(gw_worker *w);
void proxy_drain_done(gw_worker *w);
void proxy_sweep(gw_worker *w, uint64_t now);
int proxy_socket_event(gw_worker *w, int fd, uint32_t events);
void proxy_timeout_event(gw_worker *w);
/* 1 when the head is ready (response can be built) */
int proxy_head_ready(const gw_proxy *px);
/* for upgrade.c: the request as proxy_start would send it — the path
 * (arena), the header lines (curl_slist in the arena; "Name:" lines ask
 * curl not to add a header, "Name;" is an empty value) — and a server of
 * u not in tried[0..ntried), chosen as proxy.c chooses (NULL: none) */
const char *proxy_req_path(gw_req *r, size_t *len);
struct curl_slist *proxy_req_headers(gw_req *r);
ups_server *proxy_pick(gw_req *r, ups_upstream *u, ups_snapshot *snap,
                       const ups_server *const *tried, size_t ntried);

/* ------------------------------------------------------------ loop.c */
int loop_worker_init(gw_worker *w, const int *lfds, size_t nl, const struct gwd_config *cfg,
                     int nworkers, char *err, size_t errlen);
void *loop_run(void *arg);
void loop_worker_free(gw_worker *w);

/* ----------------------------------------------------------- phase.c */
int phase_init(void);
const gw_plugin *phase_plugin_for(unsigned op, unsigned *id);
extern const gw_plugin *const *phase_plugins;
extern unsigned phase_nplugins;
/* run rewrite, access, content from the cursor; GW_AGAIN, GW_DONE or a
 * status >= 100 */
int phase_run(gw_req *r);
void phase_run_hfilter(gw_req *r);
void phase_run_log(gw_req *r);
/* at table load: plugins' init; 0 ok or -1 with err */
int phase_table_init(gw_tab *tab, char *err, size_t errlen);
void phase_table_dispose(gw_tab *tab);
/* log each opcode the table uses that no plugin handles */
void phase_report_unsupported(const gwb_table *t);

#endif /* GWD_CORE_H */

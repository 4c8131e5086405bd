/*
 * plugin.h — the phase/plugin interface of gwd.
 *
 * A route's action program (gwb.h) is a list of instructions grouped by
 * phase: rewrite, access, content, header_filter, log. gwd runs them in
 * order with one checker (phase.c) that dispatches each opcode to the
 * plugin that registered it, nginx style:
 *
 *   handler returns   meaning
 *   GW_OK             done with this instruction, go on with the next
 *   GW_DECLINED       not for me (same as GW_OK for the checker)
 *   GW_AGAIN          waiting for something asynchronous; the request keeps
 *                     its phase cursor (phase + pc) and the checker stops.
 *                     The plugin later calls gw_req_resume() from the
 *                     request's worker thread, and the *same* instruction
 *                     runs again (keep your progress in gw_req_ctx()).
 *   GW_DONE           the request has its answer (content phase actions),
 *                     skip the rest of this phase
 *   100..599          refuse with this status now (gwd's JSON error body;
 *                     set extra response headers, e.g. Retry-After, with
 *                     gw_resp_set_header() before returning)
 *
 * A plugin is a struct of hooks (h2o style) registered in the static list
 * of plugin_list.h; adding a plugin is adding its file and one line there.
 * Per-table state (key files read, buckets sized...) is built by init()
 * when a table is loaded, before any request uses it, and freed by
 * dispose() when the last request that used the table has finished. A
 * table whose init() fails is refused like a corrupt one (the old table
 * stays).
 *
 * Everything here is called on a worker thread with no lock held: a
 * handler must not block. State shared between workers must use atomics.
 */
#ifndef GWD_PLUGIN_H
#define GWD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include "gwb.h"

typedef struct gw_req gw_req;

enum gw_rc { GW_OK = 0, GW_DECLINED = 1, GW_AGAIN = 2, GW_DONE = 3 };

#define GW_MAX_PLUGINS 32

typedef struct gw_plugin {
	const char *name;                 /* "core", "auth_key", ... */
	const uint8_t *ops; size_t nops;  /* the opcodes (enum gwb_op) it runs */
	/* table t was loaded: build the state handlers get (NULL is fine).
	 * 0 ok; -1 with err = the reason the table is refused */
	int (*init)(const gwb_table *t, void **state, char *err, size_t errlen);
	/* run one instruction: insn[0] is the opcode, insn[1..] its operands
	 * as the verifier checked them (gwb.h kinds) */
	int (*handler)(gw_req *r, const uint32_t *insn, void *state);
	/* the request is over (after the log phase); optional */
	void (*request_done)(gw_req *r, void *state);
	/* the table is gone: free what init() built; optional */
	void (*dispose)(void *state);
	/* optional, for an instruction of this plugin in the header_filter
	 * phase that may have to answer before anything else runs (cors
	 * preflights): called once per request, after the rewrite phase and
	 * before the access phase. GW_OK go on; GW_DONE the plugin answered
	 * (gw_req_respond) and access + content are skipped; 100..599 refuse */
	int (*early)(gw_req *r, const uint32_t *insn, void *state);
} gw_plugin;

/* ---- the request, as plugins see it ---------------------------------- */
const gwb_table *gw_req_table(const gw_req *r);
uint32_t gw_req_route(const gw_req *r);
const char *gw_req_method(const gw_req *r, size_t *len);
const char *gw_req_host(const gw_req *r, size_t *len);   /* as sent, "" if none */
const char *gw_req_path(const gw_req *r, size_t *len);   /* normalised, after rewrites so far */
const char *gw_req_query(const gw_req *r, size_t *len);  /* raw, without '?'; "" if none */
const char *gw_req_id(const gw_req *r);                  /* X-Request-Id */
/* family 4 or 6 and the address bytes (network order) */
int gw_req_client_ip(const gw_req *r, const uint8_t **addr);
const char *gw_req_client_ip_str(const gw_req *r);
/* request header (any case) as the upstream will see it: client's headers
 * with the rewrite-phase edits applied. 1 and *v,*vlen if present */
int gw_req_header(gw_req *r, const char *name, const char **v, size_t *vlen);
/* request header edits (what set_header/remove_header request do) */
int gw_req_set_header(gw_req *r, const char *name, const char *val, size_t vlen);
void gw_req_del_header(gw_req *r, const char *name);
/* response header edits: apply to the response gwd sends, own or proxied
 * (set replaces any header of that name, add appends one more) */
int gw_resp_set_header(gw_req *r, const char *name, const char *val, size_t vlen);
int gw_resp_add_header(gw_req *r, const char *name, const char *val, size_t vlen);
void gw_resp_del_header(gw_req *r, const char *name);
/* response status once known (0 before), e.g. in the log phase */
int gw_resp_status(const gw_req *r);
/* expand a template string (STR index of a GWB_K_TPL operand) with this
 * request's captures and variables; returns a NUL-terminated string from
 * the request's arena (NULL on out of memory) and its length */
const char *gw_req_expand(gw_req *r, uint32_t tpl, size_t *len);
/* memory that lives as long as the request */
void *gw_req_alloc(gw_req *r, size_t n);
/* a per-request slot for plugin number `id` (its index in plugin_list.h);
 * NULL until set */
void **gw_req_ctx(gw_req *r, unsigned id);
/* after GW_AGAIN: continue the phases (on the request's worker thread) */
void gw_req_resume(gw_req *r);
/* index of the worker thread running the request (0..nworkers-1) */
int gw_req_worker(const gw_req *r);
/* milliseconds, CLOCK_MONOTONIC, cached once per event-loop iteration */
uint64_t gw_now_ms(void);

/* ---- the worker's event loop, for plugins that talk to other servers --
 * (e.g. the rate limiter's Redis client). Call these only on a worker
 * thread (from a handler or from one of these callbacks): the fd or timer
 * then belongs to that worker's loop, and its callbacks run there, between
 * requests, with no lock held. The watch is level-triggered (epoll). */
#define GW_IO_READ  1u
#define GW_IO_WRITE 2u
#define GW_IO_ERROR 4u   /* reported only: EPOLLERR / EPOLLHUP */
typedef void (*gw_io_cb)(int fd, unsigned events, void *arg);
/* watch fd for events (GW_IO_READ|GW_IO_WRITE; 0 = stay registered but
 * quiet), or change what is watched; 0 ok, -1 (errno) */
int gw_loop_watch(int fd, unsigned events, gw_io_cb cb, void *arg);
/* stop watching fd (before closing it) */
void gw_loop_unwatch(int fd);
/* one-shot timers: cb(arg) runs once gw_now_ms() >= due. Meant for a few
 * long-lived timers per worker (a connection's timeout), not one per
 * request. gw_timer_set(t, 0) disarms; re-arming replaces the due time. */
typedef struct gw_timer gw_timer;
typedef void (*gw_timer_cb)(void *arg);
gw_timer *gw_timer_new(gw_timer_cb cb, void *arg);
void gw_timer_set(gw_timer *t, uint64_t due_ms);
void gw_timer_free(gw_timer *t);

/* ---- the consumer (added by the auth plugins; runtime/plugins/consumer.c)
 * Who the request is from, as an auth directive established it: the key's
 * name (auth key), the user (auth basic), the `sub` claim (auth jwt). For
 * rate_limit / conn_limit key=consumer and the access log. The name is
 * copied into the request; a later auth directive of the route replaces it. */
int gw_req_set_consumer(gw_req *r, const char *name, size_t len);
/* NULL (and *len = 0) until an auth directive has let the request in */
const char *gw_req_consumer(gw_req *r, size_t *len);

/* ---- content plugins (cache, cors, body_limit, log; runtime/plugins/
 * content.am, implemented in runtime/plugins/reqext.c) */
/* Answer with this status, body and no headers but those the plugin adds
 * with gw_resp_add_header (the header_filter phase still runs). The body
 * is not copied: it must stay valid until the request is over (the
 * plugin's request_done). For a HEAD request only its length is sent. */
void gw_req_respond(gw_req *r, int status, const char *body, size_t len);
/* the request body's length: its Content-Length, 0 when there is no
 * body, -1 when it is chunked (length unknown) */
int64_t gw_req_content_length(const gw_req *r);
/* a body limit for this request (body_limit; 0 is ignored): over it, gwd
 * answers 413 the way it does for limits.max_body_size (the smallest
 * limit set applies) */
void gw_req_set_body_limit(gw_req *r, uint64_t bytes);
/* The proxied response as it streams through (cache fills). head() is
 * called once the upstream's final head is in (again if the proxy retries
 * on another server: forget what was seen), body() for each piece of the
 * body in order, end() once: ok 1 when the upstream response is complete,
 * 0 when it failed or the request was cut (end() is the last call; a tap
 * installed on a request that is never proxied is never called).
 * Everything runs on the request's worker. */
typedef struct gw_resp_tap {
	void (*head)(gw_req *r, void *arg);
	void (*body)(gw_req *r, void *arg, const char *p, size_t n);
	void (*end)(gw_req *r, void *arg, int ok);
} gw_resp_tap;
void gw_req_tap_response(gw_req *r, const gw_resp_tap *tap, void *arg);
/* in head(): the upstream's status, Content-Length (-1 unknown) and
 * header lines as received (Content-Length excepted); header i: 1 and
 * name/value (not NUL-terminated), 0 past the end */
int gw_up_status(const gw_req *r);
int64_t gw_up_content_length(const gw_req *r);
int gw_up_header(const gw_req *r, size_t i, const char **name, size_t *nlen,
                 const char **val, size_t *vlen);
/* Run fn(arg) on worker `worker`'s loop thread, soon; callable from any
 * thread (a cache fill on one worker waking requests waiting on another).
 * 0 ok, -1 (no such worker, out of memory). fn runs between requests with
 * no lock held; gw_req_resume() may be called from it. */
int gw_worker_post(int worker, void (*fn)(void *arg), void *arg);
/* ---- what the waf plugin needs (implemented in req.c and srv.c) */
/* the request path as the client sent it: still percent-encoded, dot
 * segments not resolved, rewrites not applied (gw_req_path is the
 * normalised one). Not NUL-terminated. */
const char *gw_req_raw_path(const gw_req *r, size_t *len);
/* The first bytes of the request body, for an access-phase handler, before
 * anything is proxied. Returns 1 with *data, *len = the first min(want,
 * body length) bytes (*len 0 when there is no body); 0 when they have not
 * all arrived yet: gwd then reads the body into a buffer of at most `want`
 * bytes (held in the request's arena) and, once it has them or the body
 * has ended, runs the same instruction again; the handler returns
 * GW_AGAIN. The buffered bytes are proxied first, then the rest of the
 * body streams as usual. -1: out of memory. A later call with a larger
 * want buffers more. */
int gw_req_body_peek(gw_req *r, size_t want, const char **data, size_t *len);
/* ---- log directives (runtime/plugins/logctl.c), for the access log and
 * metrics; meaningful once the log phase has run (in request_done hooks) */
/* 1: write no access-log line for this request (`log off`, or `log
 * sample=F` drew it out); metrics still count it */
int gw_req_log_off(gw_req *r);
/* the route's `tag` labels in declaration order (duplicates dropped);
 * returns how many, *tags (may be NULL) points at them */
size_t gw_req_tags(gw_req *r, const char *const **tags);

#endif /* GWD_PLUGIN_H */

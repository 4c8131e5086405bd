/*
 * accesslog.h — gwd's access log (gateway.yaml access_log: path, format).
 *
 * A request never waits for the disk: its worker formats the line into its
 * own single-producer single-consumer ring (one per worker, lock-free) and
 * goes on; one writer thread drains every ring with writev(2). When a ring
 * is full — the disk (or the pipe behind stdout) is slower than the
 * traffic — the line is dropped and counted (gw_access_log_dropped_total).
 * The writer wakes every ALOG_FLUSH_MS, or at once when a ring is half full.
 *
 * Formats (one line per request):
 *   json      {"time":"2024-05-01T12:00:00.123Z","client_ip":"127.0.0.1",
 *             "method":"GET","uri":"/a?b=1","protocol":"HTTP/1.1",
 *             "status":200,"bytes_in":78,"bytes_out":5,"duration":0.002,
 *             "upstream_duration":0.001,"route":"api","upstream":"api",
 *             "upstream_server":"127.0.0.1:9001","upstream_status":200,
 *             "attempts":1,"request_id":"...","user_agent":"curl/7.88.1",
 *             "referer":null,"consumer":null,"tags":[],"waf":null,
 *             "ratelimit":null,"connlimit":null,"cache":null}
 *             Every key is always present, null when it does not apply;
 *             durations in seconds (duration: ms resolution, upstream:
 *             us); bytes_in is the request head + body, bytes_out the
 *             response body; waf is {"action":"block|detect","rule":..,
 *             "class":..}; time is UTC at completion.
 *   combined  nginx's: $remote_addr - $remote_user [$time_local] "$request"
 *             $status $body_bytes_sent "$http_referer" "$http_user_agent"
 *             (remote_user: the consumer an auth directive set, else "-";
 *             time in UTC, "+0000"; strings escaped as nginx does: '"',
 *             '\\', control and non-ASCII bytes as \xHH).
 *
 * `log off` / `log sample` (plugin.h gw_req_log_off) suppress the line;
 * metrics still count the request. SIGUSR1 reopens the file (logrotate:
 * mv, then USR1): the writer opens the path again, and lines not yet
 * written go to the new file.
 */
#ifndef GWD_ACCESSLOG_H
#define GWD_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config.h"
#include "metrics.h"

#define ALOG_RING_SIZE (1u << 20)   /* bytes per worker */
#define ALOG_LINE_MAX  16384        /* longer lines are cut (fields shortened) */
#define ALOG_FLUSH_MS  100

/* ---- set-up (control thread) */
/* Open access_log.path ("-" stdout; NULL/"off": nothing to do) and start
 * the writer thread. 0 ok; -1 with err (the file cannot be opened). */
int accesslog_open(const gwd_config *cfg, char *err, size_t errlen);
/* SIGUSR1: reopen the file; the writer thread does it, and this returns
 * once it has (at most a second) */
void accesslog_reopen(void);
/* write out what the rings hold, stop the writer, close the file (after
 * the workers are gone) */
void accesslog_close(void);
/* 1 when lines are being written */
int accesslog_enabled(void);
/* lines queued / dropped (ring full) since start, over all workers */
void accesslog_counts(uint64_t *lines, uint64_t *dropped);

/* ---- the request path (worker thread, from metrics_req_done) */
void accesslog_request(gw_req *r, const metrics_rec *m);

/* ---- pieces, exposed for the unit tests ---------------------------- */

/* One line's fields; strings NUL-terminated, NULL = absent. */
typedef struct alog_entry {
	int64_t time_ms;               /* wall clock, ms since the epoch */
	const char *client_ip, *method, *uri, *protocol;
	int status;
	uint64_t bytes_in, bytes_out;
	uint64_t duration_ms;
	int64_t upstream_us;           /* -1 none */
	const char *route, *upstream, *upstream_server;
	int upstream_status;           /* 0 none */
	unsigned attempts;
	const char *request_id, *user_agent, *referer, *consumer;
	const char *const *tags; size_t ntags;
	const char *waf_action, *waf_rule, *waf_class;
	const char *ratelimit, *connlimit, *cache;
} alog_entry;
/* format e as one line ending in '\n' into buf (cap >= 1024); returns its
 * length (at most cap; long strings are shortened to fit) */
size_t alog_format_json(char *buf, size_t cap, const alog_entry *e);
size_t alog_format_combined(char *buf, size_t cap, const alog_entry *e);

/* The SPSC ring: bytes of whole lines. cap is a power of two. */
typedef struct alog_ring alog_ring;
alog_ring *alog_ring_new(size_t cap);
void alog_ring_free(alog_ring *g);
/* producer: 1 if the line went in whole, 0 if it was dropped (counted) */
int alog_ring_put(alog_ring *g, const char *line, size_t n);
/* consumer: the bytes ready (whole lines), as at most two pieces; returns
 * their total. Then alog_ring_consume(g, n) with n <= that total. */
size_t alog_ring_peek(alog_ring *g, struct iovec iov[2]);
void alog_ring_consume(alog_ring *g, size_t n);
/* bytes in use; lines put; lines dropped */
size_t alog_ring_used(alog_ring *g);
uint64_t alog_ring_lines(alog_ring *g);
uint64_t alog_ring_dropped(alog_ring *g);

#endif /* GWD_ACCESSLOG_H */

/*
 * door.h — gwd's own accept() for plain-HTTP listeners.
 *
 * libmicrohttpd 0.9.75 answers some malformed request heads itself, with a
 * fixed HTML page and no X-Request-Id, and closes on a request line
 * without spaces without answering at all; it has no hook to change that.
 * So gwd accepts plain connections itself, looks at the first request head
 * with MSG_PEEK (nothing is consumed), and either hands the socket to
 * libmicrohttpd (MHD_add_connection: it reads the same bytes) or answers
 * the malformed head with gwd's own JSON error and closes. Later requests
 * on a keep-alive connection are parsed by libmicrohttpd alone. TLS
 * listeners keep libmicrohttpd's accept (the bytes are encrypted).
 */
#ifndef GW_DOOR_H
#define GW_DOOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_worker gw_worker;

/* the worker's epoll tags (data.u64 >> 32) for door's fds */
#define DOOR_TAG_LISTEN 5ull
#define DOOR_TAG_CONN   6ull

/* door_check's verdicts */
enum { DOOR_MORE = 0, DOOR_PASS = 1, DOOR_REFUSE = 2 };

/* Looks at the first bytes of a connection: DOOR_MORE (the head is not
 * complete yet and fits in cap), DOOR_PASS (a well-formed head),
 * DOOR_REFUSE with *status (400 malformed, 505 version, 413 absurd
 * Content-Length, 414/431 a request line/head that does not fit in cap)
 * and *why (the JSON error text). */
int door_check(const char *buf, size_t n, size_t cap, int *status, const char **why);

/* Also for the later heads on a keep-alive connection, which
 * libmicrohttpd parses alone (srv.c): a control byte other than HTAB in a
 * field value (NUL, a bare CR: an upstream may end the line there), and a
 * space or control byte in a request target (RFC 9112: reject both). */
int door_value_bad(const char *v, size_t n);
int door_target_bad(const char *u, size_t n);

/* gwd's JSON error answer written to a socket it owns or libmicrohttpd
 * is not writing to (respond_raw_error, with the status's reason phrase),
 * without blocking; 1 when all of it went out */
int door_send_error(int fd, int status, const char *msg, const char *reqid);

/* the worker's listener i of nl (index into w->mhd) is plain HTTP on lfd:
 * gwd accepts on it from now on, peeking at up to cap bytes of a head and
 * keeping at most climit connections (with libmicrohttpd's); 0 ok, -1 error */
int door_listen(gw_worker *w, size_t i, size_t nl, int lfd, size_t cap, unsigned climit);
void door_listen_event(gw_worker *w, uint32_t i);   /* lfd readable */
void door_conn_event(gw_worker *w, int fd, uint32_t events);   /* a waiting head */
/* close heads that did not complete within timeout_ms (no answer, as a
 * head timeout in libmicrohttpd or nginx) */
void door_sweep(gw_worker *w, uint64_t now, uint32_t timeout_ms);
/* drain: stop accepting, close the waiting connections */
void door_close(gw_worker *w);
void door_free(gw_worker *w);
unsigned door_waiting(const gw_worker *w);

#endif

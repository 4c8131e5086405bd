/*
 * linger.h — lingering close (nginx's lingering_close) for connections
 * gwd answers before the client has finished sending.
 *
 * A socket closed while unread bytes wait in its receive buffer, or while
 * the client is still sending, makes the kernel answer with a reset, and a
 * reset can destroy the answer gwd has just sent before the client reads
 * it: a client uploading 10 MB to a route whose body_limit is 1 MB would
 * see "connection reset" instead of the 413. So such a socket is not
 * closed at once: its sending side is shut (the client sees the end of the
 * answer), and whatever the client still sends is read and dropped until
 * it closes its side, it is silent for LINGER_IDLE_MS, or LINGER_MAX_MS
 * have passed (nginx: lingering_timeout 5s, lingering_time 30s).
 */
#ifndef GW_LINGER_H
#define GW_LINGER_H

#include <stdint.h>

typedef struct gw_worker gw_worker;

#define LINGER_TAG      7ull      /* the worker's epoll tag (data.u64 >> 32) */
#define LINGER_IDLE_MS  5000
#define LINGER_MAX_MS   30000
#define LINGER_MAX_FDS  1024      /* per worker; more are closed at once */

/* takes fd (the caller's answer already written to it): shuts its sending
 * side and reads what arrives until the client is done; closes fd at once
 * when it cannot be watched */
void linger_start(gw_worker *w, int fd);
void linger_event(gw_worker *w, int fd);        /* fd readable */
void linger_sweep(gw_worker *w, uint64_t now);  /* close the expired ones */
void linger_free(gw_worker *w);                 /* close all */
unsigned linger_count(const gw_worker *w);

#endif

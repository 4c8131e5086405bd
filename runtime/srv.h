/*
 * srv.h — gwd's server: listen sockets, worker threads (each with its own
 * event loop: libmicrohttpd daemons + libcurl multi in one epoll), and
 * stopping them.
 */
#ifndef GWD_SRV_H
#define GWD_SRV_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"

/* open the listen sockets and start the workers (the table must already
 * be loaded: reload_init). 0 ok; -1 with err */
int srv_start(const gwd_config *cfg, char *err, size_t errlen);
/* 1: graceful (stop accepting, drain up to drain_timeout), 2: at once.
 * Async-signal-safe is not needed: called from the control thread. */
void srv_stop(int how);
/* wait for the workers to end, free everything */
void srv_join(void);
/* sum of the workers' counters (racy reads: for /status only) */
typedef struct srv_stats {
	uint64_t requests, proxied, errors;
	unsigned connections, in_flight;
} srv_stats;
void srv_get_stats(srv_stats *out);

#endif /* GWD_SRV_H */

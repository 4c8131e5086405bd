/*
 * upgrade.h — HTTP Upgrade (WebSocket and other protocols) through gwd.
 *
 * A proxied request that asks for an upgrade (`Connection: upgrade` and an
 * `Upgrade:` token the route allows, HTTP/1.1, no body) does not go through
 * proxy.c: upgrade.c opens a connection of its own to the server ups_pick
 * chose (libcurl CURLOPT_CONNECT_ONLY on a multi handle of its own, driven
 * by the worker's loop through gw_loop_watch: plain or TLS upstreams, the
 * upstream's connect_timeout), writes the handshake (the request line and
 * the headers proxy.c would send, plus Connection/Upgrade) and reads the
 * answer:
 *
 *   101           the client gets the 101 (libmicrohttpd's upgrade response,
 *                 with the upstream's headers and the route's header_filter
 *                 edits), then bytes are relayed both ways in the worker's
 *                 loop: a bounded buffer per direction (UPGRADE_RING), a
 *                 side is not read while the buffer towards the other side
 *                 is full (back-pressure), and the relay is closed after
 *                 `timeout` (the route's proxy timeout=, else the
 *                 upstream's read_timeout, else 60 s) without a byte in
 *                 either direction. A half-close (end of stream from one
 *                 side) is passed on, once what came before it is out; the
 *                 other direction may go on, idle at most UPGRADE_FIN_MS
 *                 (or `timeout` if shorter). nginx closes both at once;
 *                 passing the half-close on keeps protocols that rely on
 *                 it working, and a WebSocket client closes its side
 *                 after the server's FIN anyway.
 *   anything else the answer is passed to the client as a normal response
 *                 (buffered, de-chunked, at most UPGRADE_BODY_MAX bytes of
 *                 body, else 502) and the upstream connection is closed.
 *
 * Which tokens: `websocket` (any case, GET only) is always allowed. Any
 * other token (h2c, a custom protocol) only on a route whose match tests
 * that exact value with `header("Upgrade") == "TOKEN"` — the rules have
 * no directive for upgrades, and relaying an arbitrary protocol (h2c above
 * all, which would let a client talk HTTP/2 to the upstream past gwd's
 * routing and access rules) must be something a rule asked for. A request
 * whose token is not allowed is proxied as a normal request, without its
 * Upgrade and Connection headers (hop-by-hop), as nginx does by default.
 *
 * Rewrite and access phases (auth, rate_limit, conn_limit, waf, allow/deny)
 * run on the handshake like on any request, before content: a refusal is
 * answered and nothing reaches the upstream. An upgraded connection stays
 * a request in flight until it closes (conn_limit counts it; the access
 * log line is written at the close). It keeps the table it was routed
 * with, as every request does, which never blocks a reload: a reload only
 * retires the old table, freed when its last request (or relay) is over.
 * A graceful stop lets relays run until the drain timeout, then closes
 * them (no new upgrade is made while draining).
 *
 * Known limit: on a TLS listener the client side of the relay is
 * libmicrohttpd's: it decrypts into a socketpair, with buffers carved from
 * what is left of the connection's memory pool — in libmicrohttpd 0.9.75
 * that is nothing (its read buffer holds the rest; measured: 4 bytes per
 * MHD_run whatever MHD_OPTION_CONNECTION_MEMORY_LIMIT/_INCREMENT say).
 * wss:// through gwd works (handshake, messages, close) but moves tens of
 * kB/s: fine for chat-sized traffic, not for bulk. Newer libmicrohttpd
 * releases free the read buffer before the upgrade.
 */
#ifndef GWD_UPGRADE_H
#define GWD_UPGRADE_H

#include <stdint.h>
#include <microhttpd.h>

#include "plugin.h"

#define UPGRADE_RING      (16 * 1024)    /* relay buffer, per direction */
#define UPGRADE_HEAD_MAX  (64 * 1024)    /* the upstream's answer head */
#define UPGRADE_BODY_MAX  (1024 * 1024)  /* body of a non-101 answer */
#define UPGRADE_FIN_MS    5000           /* idle limit once half-closed */

/* process-wide counters (all workers), for metrics and /status */
typedef struct upgrade_stats {
	uint64_t handshakes;    /* upgrade requests sent to an upstream */
	uint64_t upgraded;      /* answered 101 and relayed */
	uint64_t open;          /* relays open now */
	uint64_t bytes_up;      /* relayed client -> upstream (after the 101) */
	uint64_t bytes_down;    /* relayed upstream -> client */
	uint64_t idle_closed;   /* relays closed by the idle timeout */
} upgrade_stats;
void upgrade_get_stats(upgrade_stats *out);

/* What the access log / metrics may want of an upgrade request (call
 * before upgrade_done): 1 and *out filled if r is one, else 0. */
typedef struct upgrade_req_info {
	const char *server;     /* "host:port" of the last server tried, or NULL */
	int up_status;          /* the upstream's answer, 0 if none */
	unsigned attempts;
	uint64_t bytes_up, bytes_down;
} upgrade_req_info;
int upgrade_req_info_get(const gw_req *r, upgrade_req_info *out);

/* ---- srv.c's hooks (worker thread) ---- */
/* after the phases decided to proxy r: 1 if it is an upgrade handshake
 * this route allows (see above) */
int upgrade_wanted(gw_req *r);
/* instead of proxy_start: 0 started, else a status to answer with */
int upgrade_start(gw_req *r);
/* the final access-handler call of an upgrade request (r->upg set):
 * queue the 101 / the upstream's answer / an error, or suspend until the
 * upstream has answered */
enum MHD_Result upgrade_final(gw_req *r);
/* the request is over (completed_cb): close and free what is left */
void upgrade_done(gw_req *r);

#endif /* GWD_UPGRADE_H */

/*
 * tls.h — TLS in gwd, both sides.
 *
 * Client side (the `tls:` section of gateway.yaml): libmicrohttpd does the
 * TLS (GnuTLS); each worker runs one MHD daemon with MHD_USE_TLS per TLS
 * listen address, in the same event loop as the plain ones. gwd gives MHD
 * a certificate callback that picks the certificate by SNI (exact names,
 * then `*.` wildcards, read from the certificates' SAN, or CN when there
 * is no SAN; the default certificate when nothing matches) and, with
 * `client_ca`, requires and verifies a client certificate.
 *
 * The certificates live in a refcounted set (tls_ctx): a reload builds a
 * new set, swaps it in, and the old one is freed when the last connection
 * that shook hands with it closes. A set that fails to load is never
 * swapped in: the old one stays (reload_now fails and logs why).
 *
 * Upstream side: options of the pooled libcurl handles for https://
 * servers (tls_verify, tls_ca, tls_sni, tls_cert/tls_key), set on each
 * attempt; curl's connection reuse compares the TLS settings, so a pooled
 * connection made with one upstream's settings is never handed to
 * another's.
 */
#ifndef GWD_TLS_H
#define GWD_TLS_H

#include <stddef.h>
#include <curl/curl.h>

#include "config.h"
#include "core.h"

typedef struct tls_ctx tls_ctx;

/* ------------------------------------------------------ client side */

/* at start, when cfg has TLS listeners: load the certificates and make
 * them current; checks that libmicrohttpd has TLS. 0 ok; -1 with err. */
int tls_init(const gwd_config *cfg, char *err, size_t errlen);
/* gwd -t: load and check every file of cfg's tls: section (each key
 * matches its certificate, the client CA has certificates), naming the
 * file that is wrong. 0 ok (or no TLS); -1 with err. */
int tls_check(const gwd_config *cfg, char *err, size_t errlen);
/* reload, in two steps so that nothing changes unless everything loaded:
 * tls_prepare loads cfg's certificates into *out (NULL when cfg has no
 * TLS listeners: nothing to change); tls_commit makes them current (and
 * takes *out over), tls_discard drops them. 0 ok; -1 with err. */
int tls_prepare(const gwd_config *cfg, tls_ctx **out, char *err, size_t errlen);
void tls_commit(tls_ctx *x);
void tls_discard(tls_ctx *x);
/* the current set is released (at exit, after the workers) */
void tls_shutdown(void);

/* libmicrohttpd options of a TLS daemon (certificate callback, GnuTLS
 * priorities from min_version), for MHD_OPTION_ARRAY. Valid after
 * tls_init. */
const struct MHD_OptionItem *tls_mhd_options(void);
/* a connection of a TLS daemon closed: drop its hold on the certificates */
void tls_conn_closed(gw_conn *c);
/* ${tls.client_subject}: the verified client certificate's subject DN
 * (RFC 4514, as nginx's $ssl_client_s_dn), in r's arena; 0 when the
 * request came without one (plain listener, no client_ca) */
int tls_client_subject(gw_req *r, const char **v, size_t *vlen);

/* ---------------------------------------------------- upstream side */

/* set the TLS options of an https:// attempt on the pooled handle e and
 * return the host name to put in the URL: s->host, or tls_sni when set
 * (curl sends it as SNI and verifies the certificate against it, while
 * CURLOPT_CONNECT_TO still connects to s). NULL when out of memory.
 * For plain http:// attempts call tls_upstream_plain(e). */
const char *tls_upstream_prepare(CURL *e, gw_req *r, const gwb_upstream *uo,
                                 const ups_server *s);
void tls_upstream_plain(CURL *e);

#endif /* GWD_TLS_H */

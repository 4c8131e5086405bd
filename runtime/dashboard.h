/*
 * dashboard.h — the live dashboard at GET / on the admin port.
 *
 * One self-contained page (runtime/dashboard.html, compiled into gwd as a
 * byte array by runtime/dash.am): inline CSS, JS and SVG, no CDN, no
 * external font, and a Content-Security-Policy that forbids loading
 * anything but the admin API itself. It polls GET status and GET metrics
 * (relative URLs, so it also works behind a reverse proxy under a prefix)
 * every second and computes in the browser, from the difference between
 * two polls: requests/s, error rate, p50/p99 latency per route (from the
 * gw_request_duration_seconds histogram buckets), upstream server health,
 * recent reloads (/status reload_history) and the top WAF and rate-limit
 * hits.
 *
 * The page itself holds no data, so it is served without the admin token
 * (admin_route_add_public); every poll carries the token the operator gave
 * in the URL fragment (http://HOST:9901/#token=...; a fragment is never
 * sent to the server nor logged) or typed into the form the page shows on
 * a 401. The page keeps it in sessionStorage, not in the URL.
 */
#ifndef GWD_DASHBOARD_H
#define GWD_DASHBOARD_H

#include <stddef.h>

/* Register GET / with the admin API; call before admin_start.
 * 0 ok; -1 with err. */
int dashboard_init(char *err, size_t errlen);

/* the page, for tests: its bytes and length */
const unsigned char *dashboard_page(size_t *len);

#endif /* GWD_DASHBOARD_H */

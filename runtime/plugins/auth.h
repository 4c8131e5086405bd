/*
 * auth.h — what the access plugins (access.c, auth_key.c, auth_basic.c,
 * auth_jwt.c, consumer.c) share: their ids in plugin_list.h (for
 * gw_req_ctx) and small helpers.
 */
#ifndef GWD_AUTH_H
#define GWD_AUTH_H

#include <stddef.h>

#include "plugin.h"
#include "plugin_list.h"

/* GWP_ID_name: a plugin's position in GW_PLUGIN_LIST */
#define GWP_ID_(n) GWP_ID_##n,
enum gwp_id { GW_PLUGIN_LIST(GWP_ID_) GWP_ID__COUNT };
#undef GWP_ID_

/* "route NAME" of the request, for log lines */
const char *auth_route_name(gw_req *r);
/* s quoted for an HTTP quoted-string (RFC 9110 5.6.4) into out; returns
 * the length needed like snprintf */
size_t auth_quote(const char *s, char *out, size_t cap);

#endif /* GWD_AUTH_H */

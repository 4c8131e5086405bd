/*
 * content.h — what the content/header/log plugins (cache.c, cors.c,
 * bodylimit.c, logctl.c) share: their ids in plugin_list.h (for
 * gw_req_ctx) and the pure helpers the unit tests (tests/unit/
 * test_content.c) call directly.
 */
#ifndef GWD_CONTENT_H
#define GWD_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "plugin.h"
#include "plugin_list.h"

/* CTP_ID_name: a plugin's position in GW_PLUGIN_LIST */
#define CTP_ID_(n) CTP_ID_##n,
enum ctp_id { GW_PLUGIN_LIST(CTP_ID_) CTP_ID__COUNT };
#undef CTP_ID_

/* ---- cors.c */
/* is origin[0..n) in the cors origins list? The list is "*", or origins
 * separated by commas or spaces, each exact (any case) or with a "*."
 * wildcard first in the host: "https:" "//" "*.example.com" matches
 * "https://a.b.example.com" */
int cors_origin_allowed(const char *list, size_t llen, const char *origin, size_t n);

/* ---- logctl.c */
/* a draw of the per-thread generator (xorshift64*) */
uint64_t logctl_rand(void);
/* with a uniform 64-bit rnd: 1 when this request is kept by `log
 * sample` at ppm parts per million (0: never, >= 1000000: always) */
int logctl_sampled(uint64_t rnd, uint32_t ppm);

#endif /* GWD_CONTENT_H */

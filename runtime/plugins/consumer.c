/*
 * consumer.c — gw_req_set_consumer / gw_req_consumer (plugin.h), and the
 * helpers of auth.h. The consumer lives in the request's arena; the
 * pointer to it in the per-request slot of the "consumer" entry of
 * plugin_list.h, a plugin with no opcodes that exists for that slot
 * (slots are cleared with the request, so nothing leaks into the next).
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <string.h>

#include "auth.h"
#include "gwb.h"

typedef struct consumer { const char *s; size_t n; } consumer;

int gw_req_set_consumer(gw_req *r, const char *name, size_t len)
{
	consumer *c = gw_req_alloc(r, sizeof *c);
	char *s = gw_req_alloc(r, len + 1);
	if (!c || !s)
		return -1;
	memcpy(s, name, len);
	s[len] = '\0';
	c->s = s;
	c->n = len;
	*gw_req_ctx(r, GWP_ID_consumer) = c;
	return 0;
}

const char *gw_req_consumer(gw_req *r, size_t *len)
{
	const consumer *c = *gw_req_ctx(r, GWP_ID_consumer);
	if (len)
		*len = c ? c->n : 0;
	return c ? c->s : NULL;
}

const char *auth_route_name(gw_req *r)
{
	const gwb_table *t = gw_req_table(r);
	uint32_t i = gw_req_route(r);
	if (!t || i == GWB_NONE)
		return "?";
	return gwb_str(t, gwb_route_at(t, i)->name, NULL);
}

size_t auth_quote(const char *s, char *out, size_t cap)
{
	size_t n = 0;
#define PUT(ch) do { if (n + 1 < cap) out[n] = (ch); n++; } while (0)
	PUT('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			PUT('\\');
		PUT(*s);
	}
	PUT('"');
#undef PUT
	if (cap)
		out[n < cap ? n : cap - 1] = '\0';
	return n;
}

const gw_plugin gw_plugin_consumer = { .name = "consumer" };

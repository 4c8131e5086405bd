/*
 * cors.c — `cors [origins=] [methods=] [headers=] [max_age=]
 * [credentials=]` (header_filter phase; operands: origins, methods,
 * headers strings, max_age seconds, credentials bool).
 *
 * Preflight (OPTIONS with Origin and Access-Control-Request-Method): the
 * gateway answers it itself, before the access phase — a browser sends
 * preflights without credentials, so auth or rate limits must not see
 * them (Kong's cors plugin runs before auth for the same reason) — and
 * never proxies it:
 *   origin allowed      204, Access-Control-Allow-Origin (the origin, or
 *                       "*" when origins="*" without credentials),
 *                       -Allow-Methods (the configured list), -Allow-
 *                       Headers (the configured list, or the request's
 *                       Access-Control-Request-Headers echoed when none is
 *                       configured), -Max-Age (when max_age > 0),
 *                       -Allow-Credentials: true (credentials=on),
 *                       Vary: Origin. The requested method is not checked
 *                       here: the browser compares it with the list.
 *   origin not allowed  403 with gwd's JSON error body and no CORS headers
 *                       (like Spring's CorsFilter: an explicit refusal is
 *                       easier to debug than a 204 the browser rejects).
 * Other requests (proxied or not) get, from the header filter:
 *   origins="*" without credentials: Access-Control-Allow-Origin: * on
 *     every response (it does not depend on the request);
 *   otherwise Vary: Origin on every response, and for an allowed Origin
 *     Access-Control-Allow-Origin: <that origin> (+ -Allow-Credentials:
 *     true with credentials=on; origins="*" with credentials echoes any
 *     origin, as Kong does). A disallowed or absent Origin gets no
 *     Access-Control-* headers, and the upstream's own
 *     Access-Control-Allow-Origin/-Credentials are removed: the route's
 *     policy is the gateway's, and the browser blocks the response.
 * Access-Control-Expose-Headers: the directive has no option for it; an
 * upstream's own header passes through.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "content.h"
#include "log.h"

static int tok_match(const char *t, size_t tl, const char *o, size_t n)
{
	if (tl == 1 && t[0] == '*')
		return 1;
	if (tl == n && !strncasecmp(t, o, n))
		return 1;
	/* "SCHEME:" "//" "*.SUFFIX": scheme equal, the origin's host ends with
	 * ".suffix" and has at least one label before it */
	const char *star = memchr(t, '*', tl);
	if (!star || star + 1 >= t + tl || star[1] != '.')
		return 0;
	size_t pre = (size_t)(star - t), suf = tl - pre - 1;   /* suffix keeps its '.' */
	if (n <= pre + suf || strncasecmp(o, t, pre) != 0 ||
	    strncasecmp(o + n - suf, star + 1, suf) != 0)
		return 0;
	for (size_t i = pre; i < n - suf; i++)
		if (o[i] == '/' || o[i] == ':' || o[i] == '@')
			return 0;                 /* the wildcard covers host labels only */
	return 1;
}

int cors_origin_allowed(const char *list, size_t ll, const char *o, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return 0;
	while (i < ll) {
		while (i < ll && (list[i] == ',' || list[i] == ' ' || list[i] == '\t'))
			i++;
		size_t s = i;
		while (i < ll && list[i] != ',' && list[i] != ' ' && list[i] != '\t')
			i++;
		if (i > s && tok_match(list + s, i - s, o, n))
			return 1;
	}
	return 0;
}

/* per-request marks: a preflight this plugin answered; headers set */
static char PREFLIGHT, DONE;

static int is_star(const gwb_table *t, uint32_t s)
{
	size_t n;
	const char *v = gwb_str(t, s, &n);
	return n == 1 && v[0] == '*';
}

static int cors_early(gw_req *r, const uint32_t *insn, void *state)
{
	(void)state;
	void **slot = gw_req_ctx(r, CTP_ID_cors);
	if (*slot == &PREFLIGHT)
		return GW_OK;                 /* a second cors directive */
	size_t ml, ol, am_l;
	const char *m = gw_req_method(r, &ml), *origin, *am;
	if (ml != 7 || memcmp(m, "OPTIONS", 7) || !gw_req_header(r, "Origin", &origin, &ol) ||
	    !gw_req_header(r, "Access-Control-Request-Method", &am, &am_l))
		return GW_OK;                 /* not a preflight */
	*slot = &PREFLIGHT;
	const gwb_table *t = gw_req_table(r);
	size_t ll;
	const char *list = gwb_str(t, insn[1], &ll);
	int cred = insn[5] != 0;
	if (gw_resp_add_header(r, "Vary", "Origin", 6) != 0)
		return 500;
	if (!cors_origin_allowed(list, ll, origin, ol)) {
		log_debug("request %s: cors preflight from origin '%.*s' refused", gw_req_id(r),
		          (int)ol, origin);
		return 403;
	}
	gw_req_respond(r, 204, "", 0);
	int rc = 0;
	if (is_star(t, insn[1]) && !cred)
		rc |= gw_resp_set_header(r, "Access-Control-Allow-Origin", "*", 1);
	else
		rc |= gw_resp_set_header(r, "Access-Control-Allow-Origin", origin, ol);
	if (cred)
		rc |= gw_resp_set_header(r, "Access-Control-Allow-Credentials", "true", 4);
	size_t n;
	const char *v = gwb_str(t, insn[2], &n);
	if (n)
		rc |= gw_resp_set_header(r, "Access-Control-Allow-Methods", v, n);
	v = gwb_str(t, insn[3], &n);
	if (n || gw_req_header(r, "Access-Control-Request-Headers", &v, &n))
		rc |= gw_resp_set_header(r, "Access-Control-Allow-Headers", v, n);
	if (insn[4]) {
		char age[16];
		int k = snprintf(age, sizeof age, "%u", insn[4]);
		rc |= gw_resp_set_header(r, "Access-Control-Max-Age", age, (size_t)k);
	}
	return rc ? 500 : GW_DONE;
}

static int cors_handler(gw_req *r, const uint32_t *insn, void *state)
{
	(void)state;
	void **slot = gw_req_ctx(r, CTP_ID_cors);
	if (*slot)
		return GW_OK;                 /* the preflight, or an earlier cors directive */
	*slot = &DONE;
	const gwb_table *t = gw_req_table(r);
	int cred = insn[5] != 0;
	if (is_star(t, insn[1]) && !cred) {
		gw_resp_del_header(r, "Access-Control-Allow-Credentials");
		return gw_resp_set_header(r, "Access-Control-Allow-Origin", "*", 1) ? 500 : GW_OK;
	}
	int rc = gw_resp_add_header(r, "Vary", "Origin", 6);
	size_t ol, ll;
	const char *origin;
	const char *list = gwb_str(t, insn[1], &ll);
	if (gw_req_header(r, "Origin", &origin, &ol) && cors_origin_allowed(list, ll, origin, ol)) {
		rc |= gw_resp_set_header(r, "Access-Control-Allow-Origin", origin, ol);
		if (cred)
			rc |= gw_resp_set_header(r, "Access-Control-Allow-Credentials", "true", 4);
		else
			gw_resp_del_header(r, "Access-Control-Allow-Credentials");
	} else {
		gw_resp_del_header(r, "Access-Control-Allow-Origin");
		gw_resp_del_header(r, "Access-Control-Allow-Credentials");
	}
	return rc ? 500 : GW_OK;
}

static const uint8_t cors_ops[] = { GWB_OP_CORS };

const gw_plugin gw_plugin_cors = {
	.name = "cors",
	.ops = cors_ops, .nops = sizeof cors_ops,
	.handler = cors_handler,
	.early = cors_early,
};

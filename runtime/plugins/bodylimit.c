/*
 * bodylimit.c — `body_limit SIZE` (access phase; operand: bytes).
 *
 * The route's limit joins limits.max_body_size (gw_req_set_body_limit:
 * the smaller of the two applies) and is enforced by the same code in
 * srv.c:
 *   Content-Length over the limit  413 right away, from the request head;
 *                                  the body is not read (MHD closes the
 *                                  connection after the answer);
 *   chunked, or more than announced the upload to the upstream stops when
 *                                  the limit is passed; gwd answers 413
 *                                  (after dropping up to 1 MiB more so the
 *                                  client is reading when it comes), or,
 *                                  when the upstream's response already
 *                                  started, the connection is closed.
 * `body_limit 0` refuses any request with a body (a chunked one too,
 * even if it turns out empty).
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include "content.h"
#include "log.h"

static int bl_handler(gw_req *r, const uint32_t *insn, void *state)
{
	(void)state;
	uint64_t max = insn[1];
	int64_t cl = gw_req_content_length(r);
	if (max == 0 ? cl != 0 : cl > 0 && (uint64_t)cl > max) {
		log_debug("request %s: body of %lld bytes over body_limit %llu", gw_req_id(r),
		          (long long)cl, (unsigned long long)max);
		gw_req_set_body_limit(r, max ? max : 1);
		return 413;
	}
	gw_req_set_body_limit(r, max);
	return GW_OK;
}

static const uint8_t bl_ops[] = { GWB_OP_BODY_LIMIT };

const gw_plugin gw_plugin_body_limit = {
	.name = "body_limit",
	.ops = bl_ops, .nops = sizeof bl_ops,
	.handler = bl_handler,
};

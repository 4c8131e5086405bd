/*
 * connlimit.c — the conn_limit plugin:
 *
 *   conn_limit N [key=client_ip|header("X")|...]   (CONN_LIMIT n keykind keyname)
 *
 * At most N requests of one key in flight at once, counted from the access
 * phase to the end of the request (request_done, after the log phase, so
 * a slow upload or download holds its place). The (N+1)th concurrent
 * request is refused at once with 429 — the status interfaces.md gives to
 * every limit refusal, not nginx limit_conn's default 503 — with
 * `Retry-After: 1` (there is no way to know when a slot frees up; a second
 * is the smallest honest hint) and gwd's JSON error body.
 *
 * Counters live in a process-wide store (ratelimit_store.c), keyed like
 * rate_limit's buckets by the limit's identity (route name, position among
 * the route's conn_limits, key; not N) and the request's key: requests in
 * flight across a reload are still counted and released against the same
 * counter. The limit is per gwd instance (also in Redis cluster mode: a
 * crashed instance would leave its counts in Redis for ever).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <string.h>

#include "metrics.h"
#include "plugin.h"
#include "plugin_list.h"
#include "ratelimit.h"

#define PID_(n) CL_PID_##n,
enum { GW_PLUGIN_LIST(PID_) CL_PID__COUNT };
#undef PID_

/* the counters this request holds, released when it is over */
typedef struct cl_hold {
	struct cl_hold *next;
	uint64_t h;
} cl_hold;

static int cl_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	if (rl_stores_init(err, errlen) != 0)
		return -1;
	rl_limits *ls;
	if (rl_limits_build(t, GWB_OP_CONN_LIMIT, &ls, err, errlen) != 0)
		return -1;
	*state = ls;
	return 0;
}

static void cl_dispose(void *state)
{
	rl_limits_free(state);
}

static int cl_handler(gw_req *r, const uint32_t *insn, void *state)
{
	uint32_t pc = (uint32_t)(insn - gwb_code(gw_req_table(r)));
	const rl_limit *lim = rl_limits_find(state, pc);
	if (!lim)
		return GW_OK;
	char kbuf[256];
	size_t klen;
	const char *key = rl_req_key(r, lim->kind, lim->kname, kbuf, sizeof kbuf, &klen);
	uint64_t h = rl_hash(lim->id, key, klen);
	cl_hold *hold = gw_req_alloc(r, sizeof *hold);
	if (!hold)
		return 500;
	int rc = rl_store_acquire(rl_conns(), h, lim->count);
	/* -1 (no room to count) lets the request through: allowed */
	metrics_count_connlimit(r, rc != 0);
	if (rc == 0) {
		atomic_fetch_add_explicit(&gw_rl_conn_limited, 1, memory_order_relaxed);
		gw_resp_set_header(r, "Retry-After", "1", 1);
		return 429;
	}
	if (rc > 0) {
		void **slot = gw_req_ctx(r, CL_PID_connlimit);
		hold->h = h;
		hold->next = *slot;
		*slot = hold;
	}
	return GW_OK;
}

static void cl_request_done(gw_req *r, void *state)
{
	(void)state;
	void **slot = gw_req_ctx(r, CL_PID_connlimit);
	for (cl_hold *h = *slot; h; h = h->next)
		rl_store_release(rl_conns(), h->h);
	*slot = NULL;
}

static const uint8_t cl_ops[] = { GWB_OP_CONN_LIMIT };

const gw_plugin gw_plugin_connlimit = {
	.name = "conn_limit",
	.ops = cl_ops, .nops = sizeof cl_ops,
	.init = cl_init,
	.handler = cl_handler,
	.request_done = cl_request_done,
	.dispose = cl_dispose,
};

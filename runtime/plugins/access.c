/*
 * access.c — `allow CIDR...;` and `deny CIDR...;` (nginx's access module).
 *
 * A route's allow/deny directives are checked in order; the first whose
 * list holds the client address decides: deny answers 403, allow lets the
 * request through and every later allow/deny of the route is skipped. A
 * client no list holds is let through (interfaces.md).
 *
 * At table load each CIDRSET that an ALLOW or DENY uses becomes an ipset
 * (sorted disjoint ranges, binary search), so a list of thousands of
 * entries costs a few dozen comparisons per request. The state is an
 * array indexed by the CIDRSET number; sets shared by many routes (a
 * policy) are built once.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <stdio.h>
#include <stdlib.h>

#include "auth.h"
#include "ipset.h"
#include "keyfile.h"
#include "log.h"

typedef struct acc_state {
	uint32_t nsets;
	ipset **set;            /* by CIDRSET index; NULL if not used here */
} acc_state;

/* the request's slot says "an allow matched: the list is decided" */
#define ACC_DECIDED ((void *)1)

static void acc_dispose(void *state)
{
	acc_state *st = state;
	if (!st)
		return;
	for (uint32_t i = 0; i < st->nsets; i++)
		ipset_free(st->set[i]);
	free(st->set);
	free(st);
}

static int acc_build(const gwb_table *t, uint32_t route, const uint32_t *insn, void *arg)
{
	acc_state *st = arg;
	uint32_t idx = insn[1];
	if (st->set[idx])
		return 0;
	uint32_t n;
	const gwb_cidr *v = gwb_cidrset(t, idx, &n);
	st->set[idx] = ipset_build(v, n);
	return st->set[idx] ? 0 : -1;
}

static int acc_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	acc_state *st = calloc(1, sizeof *st);
	if (!st)
		goto oom;
	st->nsets = gwb_ncidrsets(t);
	st->set = calloc(st->nsets ? st->nsets : 1, sizeof *st->set);
	if (!st->set)
		goto oom;
	if (kf_each_op(t, GWB_OP_ALLOW, acc_build, st) || kf_each_op(t, GWB_OP_DENY, acc_build, st))
		goto oom;
	*state = st;
	return 0;
oom:
	acc_dispose(st);
	snprintf(err, errlen, "out of memory building allow/deny lists");
	return -1;
}

static int acc_handler(gw_req *r, const uint32_t *insn, void *state)
{
	acc_state *st = state;
	void **slot = gw_req_ctx(r, GWP_ID_access);
	if (*slot == ACC_DECIDED)
		return GW_OK;
	const uint8_t *addr;
	int fam = gw_req_client_ip(r, &addr);
	if (!fam || !ipset_contains(st->set[insn[1]], fam, addr))
		return GW_OK;
	if ((insn[0] & 0xff) == GWB_OP_ALLOW) {
		*slot = ACC_DECIDED;
		return GW_OK;
	}
	log_debug("request %s: %s denied by deny list (%s)", gw_req_id(r),
	          gw_req_client_ip_str(r), auth_route_name(r));
	return 403;
}

static const uint8_t acc_ops[] = { GWB_OP_ALLOW, GWB_OP_DENY };

const gw_plugin gw_plugin_access = {
	.name = "access",
	.ops = acc_ops, .nops = sizeof acc_ops,
	.init = acc_init,
	.handler = acc_handler,
	.dispose = acc_dispose,
};

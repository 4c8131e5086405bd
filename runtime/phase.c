/*
 * phase.c — the phase runner: dispatches each instruction of a route's
 * action program to the plugin that claimed its opcode, keeps the phase
 * cursor in the request so a plugin that answers GW_AGAIN can resume it,
 * and decides what each return code means (plugin.h).
 *
 * Opcodes no plugin claims (directives whose plugin is not built yet) are
 * reported once per table load. At run time they are skipped, except in
 * the access phase: an access directive that cannot run (auth, deny, waf,
 * rate_limit...) must not silently let everyone in, so the route answers
 * 500 "access directive X not supported by this gwd" instead (fail closed).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <stdio.h>
#include <string.h>

#include "core.h"
#include "log.h"
#include "plugin_list.h"

#define DECL_(n) extern const gw_plugin gw_plugin_##n;
GW_PLUGIN_LIST(DECL_)
#undef DECL_
#define REF_(n) &gw_plugin_##n,
static const gw_plugin *const plugin_tab[] = { GW_PLUGIN_LIST(REF_) NULL };
#undef REF_

const gw_plugin *const *phase_plugins = plugin_tab;
unsigned phase_nplugins;

static const gw_plugin *op_plugin[GWB_OP__COUNT];
static uint8_t op_pid[GWB_OP__COUNT];
static int any_early;          /* a plugin has an early() hook */

int phase_init(void)
{
	phase_nplugins = 0;
	memset(op_plugin, 0, sizeof op_plugin);
	any_early = 0;
	for (unsigned i = 0; plugin_tab[i]; i++) {
		const gw_plugin *p = plugin_tab[i];
		if (i >= GW_MAX_PLUGINS) {
			log_err("too many plugins (limit is %d)", GW_MAX_PLUGINS);
			return -1;
		}
		for (size_t k = 0; k < p->nops; k++) {
			unsigned op = p->ops[k];
			if (op >= GWB_OP__COUNT || gwb_ops[op].phase == GWB_PH_MATCH) {
				log_err("plugin %s claims opcode %u, which is not an action", p->name, op);
				return -1;
			}
			if (op_plugin[op]) {
				log_err("plugins %s and %s both claim %s", op_plugin[op]->name,
				        p->name, gwb_ops[op].name);
				return -1;
			}
			op_plugin[op] = p;
			op_pid[op] = (uint8_t)i;
		}
		if (p->early)
			any_early = 1;
		phase_nplugins = i + 1;
	}
	return 0;
}

const gw_plugin *phase_plugin_for(unsigned op, unsigned *id)
{
	if (op >= GWB_OP__COUNT || !op_plugin[op])
		return NULL;
	if (id)
		*id = op_pid[op];
	return op_plugin[op];
}

void phase_report_unsupported(const gwb_table *t)
{
	uint8_t seen[GWB_OP__COUNT] = { 0 };
	const uint32_t *code = gwb_code(t);
	uint32_t nr = gwb_nroutes(t);
	for (uint32_t i = 0; i < nr; i++) {
		const gwb_route *rt = gwb_route_at(t, i);
		for (uint32_t pc = rt->phase_pc[0]; pc < rt->phase_pc[GWB_PH__COUNT];) {
			uint32_t op = code[pc] & 0xff;
			const gwb_opinfo *oi = gwb_opinfo_get(op);
			if (!oi)
				break;     /* cannot happen in a verified table */
			if (!op_plugin[op] && !seen[op]) {
				seen[op] = 1;
				const gwb_debug *d = gwb_debug_at(t, i);
				const char *file = d ? gwb_str(t, d->file, NULL) : "?";
				log_warn("directive %s (first used by route %s at %s:%u) is not supported "
				         "by this gwd yet: %s", oi->name, gwb_str(t, rt->name, NULL), file,
				         d ? d->line : 0,
				         oi->phase == GWB_PH_ACCESS ? "routes using it answer 500"
				                                     : "it is skipped");
			}
			pc += 1 + oi->nargs;
		}
	}
}

int phase_table_init(gw_tab *tab, char *err, size_t errlen)
{
	for (unsigned i = 0; i < phase_nplugins; i++) {
		const gw_plugin *p = plugin_tab[i];
		tab->pstate[i] = NULL;
		tab->pinit[i] = 0;
		if (!p->init)
			continue;
		char perr[256] = "";
		if (p->init(tab->t, &tab->pstate[i], perr, sizeof perr) != 0) {
			snprintf(err, errlen, "plugin %s: %s", p->name, perr[0] ? perr : "init failed");
			phase_table_dispose(tab);
			return -1;
		}
		tab->pinit[i] = 1;
	}
	return 0;
}

void phase_table_dispose(gw_tab *tab)
{
	for (unsigned i = 0; i < phase_nplugins; i++) {
		if (tab->pinit[i] && plugin_tab[i]->dispose)
			plugin_tab[i]->dispose(tab->pstate[i]);
		tab->pinit[i] = 0;
		tab->pstate[i] = NULL;
	}
}

static int run_one(gw_req *r, const uint32_t *insn, unsigned op)
{
	const gw_plugin *p = op_plugin[op];
	if (p)
		return p->handler(r, insn, r->tab->pstate[op_pid[op]]);
	if (gwb_ops[op].phase == GWB_PH_ACCESS) {
		char *msg = srv_alloc(r, 96);
		if (msg)
			snprintf(msg, 96, "access directive %s not supported by this gwd", gwb_ops[op].name);
		r->err_msg = msg ? msg : "access directive not supported by this gwd";
		return 500;
	}
	return GW_OK;
}

/* plugin.h's early(): header_filter instructions that may answer before
 * the access phase (a cors preflight must not meet auth or rate limits) */
static int run_early(gw_req *r)
{
	const uint32_t *code = gwb_code(r->t);
	uint32_t pc = r->rt->phase_pc[GWB_PH_HFILTER], end = r->rt->phase_pc[GWB_PH_HFILTER + 1];
	while (pc < end) {
		unsigned op = code[pc] & 0xff;
		const gw_plugin *p = op_plugin[op];
		if (p && p->early) {
			int rc = p->early(r, code + pc, r->tab->pstate[op_pid[op]]);
			if (rc >= 100)
				return rc;
			if (rc == GW_DONE)
				return r->kind == K_NONE ? 500 : GW_DONE;
		}
		pc += 1 + gwb_ops[op].nargs;
	}
	return GW_OK;
}

int phase_run(gw_req *r)
{
	const uint32_t *code = gwb_code(r->t);
	r->phase_wait = 0;
	while (r->phase <= GWB_PH_CONTENT) {
		uint32_t end = r->rt->phase_pc[r->phase + 1];
		while (r->pc < end) {
			unsigned op = code[r->pc] & 0xff;
			int rc = run_one(r, code + r->pc, op);
			if (rc == GW_AGAIN) {
				r->phase_wait = 1;
				return GW_AGAIN;
			}
			r->pc += 1 + gwb_ops[op].nargs;
			if (rc >= 100)
				return rc;
			if (rc == GW_DONE)
				r->pc = end;
		}
		r->phase++;
		r->pc = r->rt->phase_pc[r->phase];
		if (r->phase == GWB_PH_CONTENT && r->path_above_root) {
			/* access let it through (srv.c routed it clamped): still 400 */
			r->err_msg = "bad path";
			return 400;
		}
		if (r->phase == GWB_PH_ACCESS && any_early && !r->path_above_root) { /* once */
			int rc = run_early(r);
			if (rc != GW_OK)
				return rc;
		}
	}
	if (r->kind == K_NONE) {
		r->err_msg = "route has no content action";
		return 500;
	}
	return GW_DONE;
}

/* header_filter and log run after the answer is decided: a refusal or
 * GW_AGAIN cannot change it any more, so they only continue */
static void run_range(gw_req *r, int phase)
{
	const uint32_t *code = gwb_code(r->t);
	uint32_t pc = r->rt->phase_pc[phase], end = r->rt->phase_pc[phase + 1];
	while (pc < end) {
		unsigned op = code[pc] & 0xff;
		const gw_plugin *p = op_plugin[op];
		if (p) {
			int rc = p->handler(r, code + pc, r->tab->pstate[op_pid[op]]);
			if (rc == GW_AGAIN || rc >= 100)
				log_debug("%s returned %d in the %s phase: ignored", gwb_ops[op].name, rc,
				          gwb_phase_name((unsigned)phase));
		}
		pc += 1 + gwb_ops[op].nargs;
	}
}

void phase_run_hfilter(gw_req *r)
{
	if (r->rt)
		run_range(r, GWB_PH_HFILTER);
}

void phase_run_log(gw_req *r)
{
	if (r->rt)
		run_range(r, GWB_PH_LOG);
	if (!r->tab)
		return;
	for (unsigned i = 0; i < phase_nplugins; i++)
		if (plugin_tab[i]->request_done)
			plugin_tab[i]->request_done(r, r->tab->pstate[i]);
}

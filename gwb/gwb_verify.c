/*
 * gwb_verify.c — everything inside the sections is checked before a table
 * is used, so that gwd's matcher and plugins can index without checks:
 * strings NUL-terminated and in bounds; every record's indexes in range;
 * every program decoded from its start with each opcode known, of the
 * right phase, its operands checked by kind (from the X-macro list) and
 * its jumps forward onto an instruction boundary of the same program; the
 * index's structure; and every regex compiled (PCRE2 + JIT).
 *
 * Error messages are one line and name the thing: "route 3: jump at 120
 * goes backward".
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include "gwb_int.h"

typedef struct vf {
	gwb_table *t;
	char *err;
	size_t errlen;
	uint8_t *start;          /* per CODE word: an instruction starts here */
	uint8_t *tplok;          /* per string: 0 unchecked, 1 valid, 2 invalid */
	uint32_t *jmp;           /* (pc, target) pairs of the current program */
	size_t njmp, cjmp;
	char tplerr[128];
} vf;

#define FAIL(...) return gwb_errf(v->err, v->errlen, __VA_ARGS__)

static int vf_strings(vf *v)
{
	const gwb_table *t = v->t;
	if (t->nstr == 0)
		FAIL("string table is empty");
	if (t->nstr > GWB_MAX_STRINGS)
		FAIL("too many strings (%u, limit is %u)", t->nstr, GWB_MAX_STRINGS);
	for (uint32_t i = 0; i < t->nstr; i++) {
		uint32_t off = t->stridx[2 * i], len = t->stridx[2 * i + 1];
		if (len > GWB_MAX_STRLEN)
			FAIL("string %u too long (%u bytes)", i, len);
		if ((uint64_t)off + len >= t->nstrdata)
			FAIL("string %u out of bounds", i);
		if (t->strdata[off + len] != '\0')
			FAIL("string %u not NUL-terminated", i);
	}
	if (t->stridx[1] != 0)
		FAIL("string 0 is not empty");
	return 0;
}

static int str_ok(const vf *v, uint32_t s)
{
	return s < v->t->nstr;
}

static int vf_records(vf *v)
{
	const gwb_table *t = v->t;

	if (t->nregex > GWB_MAX_REGEXES)
		FAIL("too many regexes (%u, limit is %u)", t->nregex, GWB_MAX_REGEXES);
	for (uint32_t i = 0; i < t->nregex; i++) {
		if (!str_ok(v, t->regex[i].pattern))
			FAIL("regex %u: pattern string %u out of range", i, t->regex[i].pattern);
		if (t->regex[i].flags & ~GWB_RE_CASELESS)
			FAIL("regex %u: unknown flags 0x%x", i, t->regex[i].flags);
	}
	for (uint32_t i = 0; i < t->ncidr; i++)
		if (!gwb_cidr_valid(&t->cidr[i]))
			FAIL("cidr %u: invalid family, prefix or host bits", i);
	for (uint32_t i = 0; i < t->ncidrset; i++)
		if ((uint64_t)t->cidrset[2 * i] + t->cidrset[2 * i + 1] > t->ncidr)
			FAIL("cidr set %u out of range", i);
	for (uint32_t i = 0; i < t->nsrv; i++) {
		const gwb_server *s = &t->srv[i];
		if (!str_ok(v, s->addr))
			FAIL("server %u: address string %u out of range", i, s->addr);
		if (s->flags & ~(GWB_SRV_BACKUP | GWB_SRV_HTTPS))
			FAIL("server %u: unknown flags 0x%x", i, s->flags);
		if (s->weight == 0)
			FAIL("server %u: weight 0", i);
	}
	if (t->nups > GWB_MAX_UPSTREAMS)
		FAIL("too many upstreams (%u, limit is %u)", t->nups, GWB_MAX_UPSTREAMS);
	for (uint32_t i = 0; i < t->nups; i++) {
		const gwb_upstream *u = &t->ups[i];
		uint32_t strs[] = { u->name, u->hash_name, u->hc_path, u->tls_ca, u->tls_sni, u->tls_cert, u->tls_key };
		for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
			if (!str_ok(v, strs[k]))
				FAIL("upstream %u: string %u out of range", i, strs[k]);
		if (u->flags & ~0xfu)
			FAIL("upstream %u: unknown flags 0x%x", i, u->flags);
		if (u->balance >= GWB_BAL__COUNT)
			FAIL("upstream %u: unknown balance %u", i, u->balance);
		if (u->hash_key >= GWB_KEY__COUNT)
			FAIL("upstream %u: unknown hash key %u", i, u->hash_key);
		if ((uint64_t)u->server_first + u->server_count > t->nsrv || u->server_count > GWB_MAX_SERVERS)
			FAIL("upstream %u: servers out of range", i);
		if (u->retry_on & ~(GWB_RETRY_CONNECT | GWB_RETRY_TIMEOUT))
			FAIL("upstream %u: unknown retry_on bits 0x%x", i, u->retry_on);
		for (int k = 0; k < 4; k++)
			if (u->retry_status[k] && (u->retry_status[k] < 100 || u->retry_status[k] > 599))
				FAIL("upstream %u: retry status %u not in 100..599", i, u->retry_status[k]);
		if ((u->flags & GWB_UPS_HEALTH) &&
		    (u->hc_expect_lo < 100 || u->hc_expect_hi > 599 || u->hc_expect_lo > u->hc_expect_hi))
			FAIL("upstream %u: health check expects %u..%u", i, u->hc_expect_lo, u->hc_expect_hi);
	}
	if (t->nroute > GWB_MAX_ROUTES)
		FAIL("too many routes (%u, limit is %u)", t->nroute, GWB_MAX_ROUTES);
	if (t->ncode > GWB_MAX_CODE)
		FAIL("code too large (%u words, limit is %u)", t->ncode, GWB_MAX_CODE);
	if (t->ndebug != t->nroute)
		FAIL("debug section has %u entries for %u routes", t->ndebug, t->nroute);
	for (uint32_t i = 0; i < t->ndebug; i++)
		if (!str_ok(v, t->debug[i].file))
			FAIL("route %u: debug file string %u out of range", i, t->debug[i].file);
	for (uint32_t i = 0; i < t->nroute; i++) {
		const gwb_route *r = &t->route[i];
		if (!str_ok(v, r->name))
			FAIL("route %u: name string %u out of range", i, r->name);
		if (r->flags)
			FAIL("route %u: flags 0x%x not zero", i, r->flags);
		if (r->match_pc >= r->match_end || r->match_end > t->ncode)
			FAIL("route %u: match program [%u, %u) out of bounds (%u code words)",
			     i, r->match_pc, r->match_end, t->ncode);
		for (int p = 0; p <= GWB_PH__COUNT; p++)
			if ((p > 0 && r->phase_pc[p] < r->phase_pc[p - 1]) || r->phase_pc[p] > t->ncode)
				FAIL("route %u: phase offsets out of order or out of bounds", i);
	}
	return 0;
}

/* one operand of the instruction at pc, by kind */
static int vf_operand(vf *v, uint32_t r, uint32_t pc, const gwb_opinfo *oi, unsigned k, uint32_t a)
{
	const gwb_table *t = v->t;
	switch (oi->kind[k]) {
	case GWB_K_U32:
		return 0;
	case GWB_K_STR:
	case GWB_K_TPL:
		if (a >= t->nstr)
			FAIL("route %u: %s at %u: string %u out of range (%u strings)", r, oi->name, pc, a, t->nstr);
		if (oi->kind[k] == GWB_K_TPL) {
			if (v->tplok[a] == 0) {
				size_t l, eo;
				const char *s = gwb_s(t, a, &l);
				v->tplok[a] = gwb_tpl_check(s, l, &eo, v->tplerr, sizeof v->tplerr) == 0 ? 1 : 2;
			}
			if (v->tplok[a] == 2)
				FAIL("route %u: %s at %u: invalid template (string %u)", r, oi->name, pc, a);
		}
		return 0;
	case GWB_K_RE:
		if (a >= t->nregex)
			FAIL("route %u: %s at %u: regex %u out of range (%u regexes)", r, oi->name, pc, a, t->nregex);
		return 0;
	case GWB_K_CIDRS:
		if (a >= t->ncidrset)
			FAIL("route %u: %s at %u: cidr set %u out of range (%u sets)", r, oi->name, pc, a, t->ncidrset);
		return 0;
	case GWB_K_UPS:
		if (a >= t->nups)
			FAIL("route %u: %s at %u: upstream %u out of range (%u upstreams)", r, oi->name, pc, a, t->nups);
		return 0;
	case GWB_K_JMP:
		if (v->njmp == v->cjmp) {
			size_t nc = v->cjmp ? v->cjmp * 2 : 32;
			uint32_t *p = realloc(v->jmp, nc * 2 * sizeof *p);
			if (!p)
				FAIL("out of memory");
			v->jmp = p;
			v->cjmp = nc;
		}
		v->jmp[2 * v->njmp] = pc;
		v->jmp[2 * v->njmp + 1] = a;
		v->njmp++;
		return 0;
	case GWB_K_METHODS:
		if (a == 0 || (a & ~GWB_M_ALL))
			FAIL("route %u: %s at %u: bad method mask 0x%x", r, oi->name, pc, a);
		return 0;
	case GWB_K_STATUS:
		if (a < 100 || a > 599)
			FAIL("route %u: %s at %u: status %u not in 100..599", r, oi->name, pc, a);
		return 0;
	case GWB_K_KEY:
		if (a >= GWB_KEY__COUNT)
			FAIL("route %u: %s at %u: unknown key kind %u", r, oi->name, pc, a);
		return 0;
	case GWB_K_BOOL:
		if (a > 1)
			FAIL("route %u: %s at %u: operand %u is %u, not 0 or 1", r, oi->name, pc, k + 1, a);
		return 0;
	case GWB_K_ENUM:
		if (a >= 16)
			FAIL("route %u: %s at %u: operand %u (%u) out of range", r, oi->name, pc, k + 1, a);
		return 0;
	default:
		FAIL("route %u: %s at %u: operand %u has an unknown kind", r, oi->name, pc, k + 1);
	}
}

/* what the runtime divides by or switches on, beyond the operand kinds */
static int vf_semantics(vf *v, uint32_t r, uint32_t pc, uint32_t op, const uint32_t *a)
{
	int bad = -1;
	switch (op) {
	case GWB_OP_AUTH_KEY:
		if (a[0] > GWB_SRC_COOKIE) bad = 0;
		break;
	case GWB_OP_AUTH_JWT:
		if (a[0] > GWB_SECRET_FILE) bad = 0;
		else if (a[2] == 0 || (a[2] & ~0x1fu)) bad = 2;
		else if (a[3] > GWB_SRC_COOKIE) bad = 3;
		break;
	case GWB_OP_RATE_LIMIT:
		if (a[0] == 0) bad = 0;
		else if (a[1] == 0) bad = 1;
		break;
	case GWB_OP_WAF:
		if (a[0] & ~GWB_WAF_ALL) bad = 0;
		else if (a[1] > GWB_WAF_DETECT) bad = 1;
		break;
	case GWB_OP_WAF_RULE:
		if (a[1] == 0 || (a[1] & ~0xfu)) bad = 1;
		break;
	case GWB_OP_LOG_SAMPLE:
		if (a[0] > 1000000) bad = 0;
		break;
	default:
		break;
	}
	if (bad >= 0)
		FAIL("route %u: %s at %u: operand %d (%u) out of range", r, gwb_ops[op].name, pc, bad + 1, a[bad]);
	return 0;
}

/* decodes [pc, end) once, checking each instruction; phase is the phase
 * every op must have. Jumps are collected and checked at the end. */
static int vf_program(vf *v, uint32_t r, uint32_t pc0, uint32_t end, unsigned phase,
                      uint32_t *ops, uint32_t *opc, uint32_t *nops, uint32_t maxops)
{
	const uint32_t *code = v->t->code;
	uint32_t pc = pc0, last = GWB_OP_INVALID;

	v->njmp = 0;
	while (pc < end) {
		uint32_t w = code[pc];
		const gwb_opinfo *oi = gwb_opinfo_get(w);
		if (!oi) {
			if (w > 0xff)
				FAIL("route %u: bad instruction word 0x%08x at %u", r, w, pc);
			FAIL("route %u: unknown opcode %u at %u", r, w, pc);
		}
		if (oi->phase != phase) {
			if (phase == GWB_PH_MATCH)
				FAIL("route %u: %s at %u is not a match test", r, oi->name, pc);
			FAIL("route %u: %s at %u is not a %s action", r, oi->name, pc, gwb_phase_name(phase));
		}
		if ((uint64_t)pc + 1 + oi->nargs > end)
			FAIL("route %u: %s at %u runs past the end of its program", r, oi->name, pc);
		if (w == GWB_OP_END && pc + 1 != end)
			FAIL("route %u: END at %u before the end of the program", r, pc);
		v->start[pc] = 1;
		for (unsigned k = 0; k < oi->nargs; k++)
			if (vf_operand(v, r, pc, oi, k, code[pc + 1 + k]) < 0)
				return -1;
		if (vf_semantics(v, r, pc, w, code + pc + 1) < 0)
			return -1;
		if (ops && *nops < maxops) {
			ops[*nops] = w;
			opc[*nops] = pc;
		}
		if (nops)
			(*nops)++;
		last = w;
		pc += 1 + oi->nargs;
	}
	int rc = 0;
	if (phase == GWB_PH_MATCH && last != GWB_OP_END) {
		gwb_errf(v->err, v->errlen, "route %u: match program does not end with END", r);
		rc = -1;
	}
	for (size_t j = 0; rc == 0 && j < v->njmp; j++) {
		uint32_t at = v->jmp[2 * j], to = v->jmp[2 * j + 1];
		if (to <= at)
			rc = gwb_errf(v->err, v->errlen, "route %u: jump at %u goes backward", r, at);
		else if (to > end)
			rc = gwb_errf(v->err, v->errlen, "route %u: jump at %u leaves its program", r, at);
		else if (to < end && !v->start[to])
			rc = gwb_errf(v->err, v->errlen, "route %u: jump at %u lands inside an instruction", r, at);
	}
	/* programs may share words only in crafted files; clearing keeps each
	 * program's boundaries its own */
	for (uint32_t i = pc0; i < end; i++)
		v->start[i] = 0;
	return rc;
}

static int is_content_action(uint32_t op)
{
	return op == GWB_OP_PROXY || op == GWB_OP_RESPOND || op == GWB_OP_REDIRECT;
}

static int vf_route(vf *v, uint32_t r)
{
	const gwb_route *rt = &v->t->route[r];
	if (vf_program(v, r, rt->match_pc, rt->match_end, GWB_PH_MATCH, NULL, NULL, NULL, 0) < 0)
		return -1;
	for (unsigned p = 0; p < GWB_PH__COUNT; p++) {
		uint32_t ops[3], opc[3], n = 0;
		uint32_t *np = p == GWB_PH_CONTENT ? &n : NULL;
		if (vf_program(v, r, rt->phase_pc[p], rt->phase_pc[p + 1], p,
		               np ? ops : NULL, opc, np, 3) < 0)
			return -1;
		if (p != GWB_PH_CONTENT)
			continue;
		/* exactly one action, optionally preceded by one CACHE */
		uint32_t act = GWB_NONE;
		for (uint32_t i = 0; i < n && i < 3; i++) {
			if (ops[i] == GWB_OP_CACHE) {
				if (i != 0)
					FAIL("route %u: CACHE at %u must come first in the content phase", r, opc[i]);
			} else if (is_content_action(ops[i])) {
				if (act != GWB_NONE)
					FAIL("route %u: two content actions (at %u and %u)", r, act, opc[i]);
				act = opc[i];
			}
		}
		if (act == GWB_NONE)
			FAIL("route %u: no content action (proxy, respond or redirect)", r);
		if (n > 2 || (n == 2 && ops[0] != GWB_OP_CACHE))
			FAIL("route %u: content phase has %u instructions", r, n);
	}
	return 0;
}

static int vf_regexes(vf *v)
{
	gwb_table *t = v->t;
	t->re = calloc(t->nregex ? t->nregex : 1, sizeof *t->re);
	if (!t->re)
		FAIL("out of memory");
	for (uint32_t i = 0; i < t->nregex; i++) {
		size_t len;
		const char *pat = gwb_s(t, t->regex[i].pattern, &len);
		int ec;
		PCRE2_SIZE eo;
		t->re[i] = pcre2_compile((PCRE2_SPTR)pat, len,
		                         (t->regex[i].flags & GWB_RE_CASELESS) ? PCRE2_CASELESS : 0,
		                         &ec, &eo, NULL);
		if (!t->re[i]) {
			PCRE2_UCHAR msg[160];
			if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
				strcpy((char *)msg, "invalid");
			FAIL("regex %u: %s at offset %zu", i, (const char *)msg, (size_t)eo);
		}
		/* without JIT (e.g. no executable memory) PCRE2's interpreter is
		 * used; slower, still correct */
		(void)pcre2_jit_compile(t->re[i], PCRE2_JIT_COMPLETE);
	}
	return 0;
}

int gwb_verify(gwb_table *t, char *err, size_t errlen)
{
	vf v = { .t = t, .err = err, .errlen = errlen };
	int rc = -1;

	if (vf_strings(&v) < 0 || vf_records(&v) < 0)
		goto out;
	v.start = calloc(t->ncode ? t->ncode : 1, 1);
	v.tplok = calloc(t->nstr, 1);
	if (!v.start || !v.tplok) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	for (uint32_t r = 0; r < t->nroute; r++)
		if (vf_route(&v, r) < 0)
			goto out;
	if (gwb_index_verify(t, err, errlen) < 0)
		goto out;
	if (vf_regexes(&v) < 0)
		goto out;
	rc = 0;
out:
	free(v.start);
	free(v.tplok);
	free(v.jmp);
	return rc;
}

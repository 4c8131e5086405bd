/*
 * gwb_match.c — the interpreter for match programs and the entry points of
 * the matcher. gwb_match_request() asks the index (gwb_index.c) for the
 * lowest matching route; gwb_eval_route() runs one program, with a trace
 * for `gwc explain`. Both read the request through gwb_prep, built once.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include "gwb_int.h"

gwb_scratch *gwb_scratch_new(void)
{
	gwb_scratch *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->md = pcre2_match_data_create(GWB_MAX_CAPTURES, NULL);
	s->mc = pcre2_match_context_create(NULL);
	if (!s->md || !s->mc) {
		gwb_scratch_free(s);
		return NULL;
	}
	/* a pathological regex costs bounded work per request, then simply
	 * does not match */
	pcre2_set_match_limit(s->mc, 1000000);
	pcre2_set_depth_limit(s->mc, 10000);
	s->js = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
	if (s->js)
		pcre2_jit_stack_assign(s->mc, NULL, s->js);
	return s;
}

void gwb_scratch_free(gwb_scratch *s)
{
	if (!s)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mc);
	pcre2_jit_stack_free(s->js);
	free(s);
}

void gwb_prep_init(gwb_prep *p, const gwb_request *rq)
{
	/* host, method and path sit wherever the caller keeps them: ask for
	 * all three at once so that their cache misses overlap */
	if (rq->host)
		__builtin_prefetch(rq->host);
	if (rq->method)
		__builtin_prefetch(rq->method);
	if (rq->path)
		__builtin_prefetch(rq->path);
	p->rq = rq;
	p->host = rq->host ? rq->host : "";
	p->hlen = rq->host ? gwb_host_key(rq->host, rq->host_len) : 0;
	p->path = rq->path ? rq->path : "";
	p->plen = rq->path ? rq->path_len : 0;
	p->mbit = rq->method ? gwb_method_bit(rq->method, rq->method_len) : GWB_M_OTHER;
}

static int eq_lower(const char *req, const char *tbl, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (gwb_lower((unsigned char)req[i]) != (unsigned char)tbl[i])
			return 0;
	return 1;
}

static int get_header(const gwb_request *rq, const char *name, const char **v, size_t *vl)
{
	if (!rq->header)
		return 0;
	*v = NULL;
	*vl = 0;
	return rq->header(rq->ctx, name, v, vl) ? 1 : 0;
}

static int cookie_get(const gwb_request *rq, const char *name, size_t nl, const char **v, size_t *vl)
{
	const char *h;
	size_t hl;
	if (!get_header(rq, "Cookie", &h, &hl))
		return 0;
	return gwb_cookie_find(h, hl, name, nl, v, vl);
}

/* runs [pc, end) of route r's match program with the flag starting as
 * given */
static inline int run(const gwb_table *t, uint32_t r, uint32_t pc, uint32_t end, int flag,
                      const gwb_prep *p, gwb_match *m, gwb_scratch *s,
                      gwb_trace_fn trace, void *tctx)
{
	const gwb_request *rq = p->rq;
	const uint32_t *code = t->code;
	int ncap = 0;
	size_t cap[2 * GWB_MAX_CAPTURES];
	const char *a, *b, *v;
	size_t al, bl, vl;

	while (pc < end) {
		uint32_t op = code[pc], at = pc;
		switch (op) {
		case GWB_OP_END:
			pc = end;
			continue;
		case GWB_OP_ANY:
			flag = 1;
			pc += 1;
			break;
		case GWB_OP_HOST_EQ:
			a = gwb_s(t, code[pc + 1], &al);
			flag = p->hlen == al && eq_lower(p->host, a, al);
			pc += 2;
			break;
		case GWB_OP_HOST_WILD:
			a = gwb_s(t, code[pc + 1], &al);
			flag = p->hlen > al && p->host[p->hlen - al - 1] == '.' &&
			       eq_lower(p->host + p->hlen - al, a, al);
			pc += 2;
			break;
		case GWB_OP_PATH_EQ:
			a = gwb_s(t, code[pc + 1], &al);
			flag = p->plen == al && memcmp(p->path, a, al) == 0;
			pc += 2;
			break;
		case GWB_OP_PATH_PREFIX:
			a = gwb_s(t, code[pc + 1], &al);
			flag = p->plen >= al && memcmp(p->path, a, al) == 0;
			pc += 2;
			break;
		case GWB_OP_PATH_RE: {
			flag = 0;
			if (s) {
				int rc = pcre2_match(t->re[code[pc + 1]], (PCRE2_SPTR)p->path,
				                     p->plen, 0, 0, s->md, s->mc);
				if (rc >= 0) {
					/* rc == 0: more groups than the ovector holds; all
					 * GWB_MAX_CAPTURES pairs are set */
					int n = rc == 0 ? GWB_MAX_CAPTURES : rc;
					const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
					for (int i = 0; i < 2 * GWB_MAX_CAPTURES; i++)
						cap[i] = i < 2 * n ? (size_t)ov[i] : (size_t)~0;
					ncap = n;
					flag = 1;
				}
			}
			pc += 2;
			break;
		}
		case GWB_OP_METHOD:
			flag = (code[pc + 1] & p->mbit) != 0;
			pc += 2;
			break;
		case GWB_OP_HEADER_EQ:
			a = gwb_s(t, code[pc + 1], NULL);
			b = gwb_s(t, code[pc + 2], &bl);
			flag = get_header(rq, a, &v, &vl) && vl == bl && (bl == 0 || memcmp(v, b, bl) == 0);
			pc += 3;
			break;
		case GWB_OP_HEADER_HAS:
			a = gwb_s(t, code[pc + 1], NULL);
			flag = get_header(rq, a, &v, &vl);
			pc += 2;
			break;
		case GWB_OP_QUERY_EQ:
			a = gwb_s(t, code[pc + 1], &al);
			b = gwb_s(t, code[pc + 2], &bl);
			flag = gwb_query_find(rq->query, rq->query_len, a, al, &v, &vl) &&
			       gwb_form_eq(v, vl, b, bl);
			pc += 3;
			break;
		case GWB_OP_QUERY_HAS:
			a = gwb_s(t, code[pc + 1], &al);
			flag = gwb_query_find(rq->query, rq->query_len, a, al, NULL, NULL);
			pc += 2;
			break;
		case GWB_OP_COOKIE_EQ:
			a = gwb_s(t, code[pc + 1], &al);
			b = gwb_s(t, code[pc + 2], &bl);
			flag = cookie_get(rq, a, al, &v, &vl) && vl == bl && (bl == 0 || memcmp(v, b, bl) == 0);
			pc += 3;
			break;
		case GWB_OP_COOKIE_HAS:
			a = gwb_s(t, code[pc + 1], &al);
			flag = cookie_get(rq, a, al, &v, &vl);
			pc += 2;
			break;
		case GWB_OP_IP_IN:
			flag = gwb_cidrset_contains(t, code[pc + 1], rq->ip_family, rq->ip);
			pc += 2;
			break;
		case GWB_OP_NOT:
			flag = !flag;
			pc += 1;
			continue;
		case GWB_OP_JF:
			pc = flag ? pc + 2 : code[pc + 1];
			continue;
		case GWB_OP_JT:
			pc = flag ? code[pc + 1] : pc + 2;
			continue;
		default:
			return 0;       /* not reached on a verified table */
		}
		if (trace)
			trace(tctx, at, flag);
	}
	if (flag && m) {
		m->route = r;
		m->ncap = ncap;
		if (ncap)
			memcpy(m->cap, cap, sizeof cap);
		else
			memset(m->cap, 0xff, sizeof m->cap);    /* all (size_t)~0 */
	}
	return flag;
}

int gwb_eval_prep(const gwb_table *t, uint32_t r, const gwb_prep *p,
                  gwb_match *m, gwb_scratch *s, gwb_trace_fn trace, void *tctx)
{
	const gwb_route *rt = &t->route[r];
	return run(t, r, rt->match_pc, rt->match_end, 0, p, m, s, trace, tctx);
}

int gwb_eval_residual(const gwb_table *t, uint32_t r, const gwb_prep *p,
                      gwb_match *m, gwb_scratch *s)
{
	if (!t->ev)
		return gwb_eval_prep(t, r, p, m, s, NULL, NULL);
	uint32_t pc = t->ev[2 * r];
	return run(t, r, pc & ~GWB_EV_FLAG, t->ev[2 * r + 1], (pc & GWB_EV_FLAG) != 0,
	           p, m, s, NULL, NULL);
}

/*
 * Residual programs. The index only offers a route to a request that meets
 * the route's key, so the tests at the head of its program that the key
 * implies need not run again: they are skipped once, at load, and the
 * matcher starts each program after them with the flag true (which is
 * what those tests and the JFs after them would have left). Skipping them
 * also spares the cache misses on their strings. gwb_eval_route (explain)
 * always runs the whole program.
 */
typedef struct resid_ctx {
	gwb_table *t;
} resid_ctx;

static int str_is(const gwb_table *t, uint32_t s, const char *b, size_t n)
{
	size_t l;
	const char *a = gwb_s(t, s, &l);
	return l == n && memcmp(a, b, n) == 0;
}

static void on_filed(void *ctx, uint32_t r, int hk, const char *host, size_t hl,
                     int pk, const char *path, size_t pl, uint32_t methods, int exact)
{
	gwb_table *t = ((resid_ctx *)ctx)->t;
	const gwb_route *rt = &t->route[r];
	const uint32_t *code = t->code;
	uint32_t pc = rt->match_pc, end = rt->match_end;
	int skipped = 0;
	(void)exact;

	while (pc < end) {
		uint32_t op = code[pc], a = pc + 1 < end ? code[pc + 1] : 0;
		size_t al;
		int implied = 0;
		switch (op) {
		case GWB_OP_ANY:
			implied = 1;
			break;
		case GWB_OP_HOST_EQ:
			implied = hk == GWB_HOST_EXACT && str_is(t, a, host, hl);
			break;
		case GWB_OP_HOST_WILD:
			implied = hk == GWB_HOST_WILD && str_is(t, a, host, hl);
			break;
		case GWB_OP_PATH_EQ:
			implied = pk == GWB_PATH_EXACT && str_is(t, a, path, pl);
			break;
		case GWB_OP_PATH_PREFIX:
			gwb_s(t, a, &al);
			implied = pk != GWB_PATH_ANY && al <= pl && memcmp(gwb_s(t, a, NULL), path, al) == 0;
			break;
		case GWB_OP_METHOD:
			implied = (methods & ~a) == 0;
			break;
		case GWB_OP_JF:
			implied = skipped;       /* the flag is true here: falls through */
			break;
		default:
			break;
		}
		if (!implied)
			break;
		skipped = 1;
		pc += 1 + gwb_ops[op].nargs;
	}
	t->ev[2 * r] = pc | (skipped ? GWB_EV_FLAG : 0);
	t->ev[2 * r + 1] = end;
}

int gwb_residuals(gwb_table *t)
{
	resid_ctx c = { .t = t };
	t->ev = malloc(((size_t)t->nroute + 1) * 2 * sizeof *t->ev);
	if (!t->ev)
		return -1;
	for (uint32_t r = 0; r < t->nroute; r++) {
		t->ev[2 * r] = t->route[r].match_pc;
		t->ev[2 * r + 1] = t->route[r].match_end;
	}
	if (gwb_index_visit(t, on_filed, &c) < 0) {
		free(t->ev);
		t->ev = NULL;
		return -1;
	}
	return 0;
}

int gwb_eval_route(const gwb_table *t, uint32_t route, const gwb_request *rq,
                   gwb_match *m, gwb_scratch *s, gwb_trace_fn trace, void *tctx)
{
	gwb_prep p;
	if (route >= t->nroute)
		return 0;
	gwb_prep_init(&p, rq);
	return gwb_eval_prep(t, route, &p, m, s, trace, tctx);
}

uint32_t gwb_match_request(const gwb_table *t, const gwb_request *rq,
                           gwb_match *m, gwb_scratch *s)
{
	gwb_prep p;
	gwb_match dummy;
	gwb_prep_init(&p, rq);
	return gwb_index_lookup(t, &p, m ? m : &dummy, s);
}

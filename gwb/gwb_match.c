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
	p->rq = rq;
	p->host = rq->host ? rq->host : "";
	gwb_prep_host(p, p->host, rq->host ? rq->host_len : 0);
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

/* one word of a program; residual programs sit unaligned in the index */
static inline uint32_t ld32(const uint8_t *cb, uint32_t pc)
{
	uint32_t x;
	memcpy(&x, cb + 4 * (size_t)pc, 4);
	return x;
}

/* runs [pc, end) of a program of route r with the flag starting as given:
 * cb is CODE (pcs and jumps absolute) or a residual program in the index
 * (pcs and jumps from its first word) */
static inline int run(const gwb_table *t, const uint8_t *cb, uint32_t r, uint32_t pc,
                      uint32_t end, int flag, const gwb_prep *p, gwb_match *m,
                      gwb_scratch *s, gwb_trace_fn trace, void *tctx)
{
	const gwb_request *rq = p->rq;
#define code(i) ld32(cb, (i))
	int ncap = 0;
	size_t cap[2 * GWB_MAX_CAPTURES];
	const char *a, *b, *v;
	size_t al, bl, vl;

	while (pc < end) {
		uint32_t op = code(pc), at = pc;
		switch (op) {
		case GWB_OP_END:
			pc = end;
			continue;
		case GWB_OP_ANY:
			flag = 1;
			pc += 1;
			break;
		case GWB_OP_HOST_EQ:
			a = gwb_s(t, code(pc + 1), &al);
			flag = p->hlen == al && eq_lower(p->host, a, al);
			pc += 2;
			break;
		case GWB_OP_HOST_WILD:
			a = gwb_s(t, code(pc + 1), &al);
			/* at least one label before the dot: ".example.com" is no match */
			flag = p->hlen > al + 1 && p->host[p->hlen - al - 1] == '.' &&
			       eq_lower(p->host + p->hlen - al, a, al);
			pc += 2;
			break;
		case GWB_OP_PATH_EQ:
			a = gwb_s(t, code(pc + 1), &al);
			flag = p->plen == al && memcmp(p->path, a, al) == 0;
			pc += 2;
			break;
		case GWB_OP_PATH_PREFIX:
			a = gwb_s(t, code(pc + 1), &al);
			flag = p->plen >= al && memcmp(p->path, a, al) == 0;
			pc += 2;
			break;
		case GWB_OP_PATH_RE: {
			flag = 0;
			if (s) {
				int rc = pcre2_match(t->re[code(pc + 1)], (PCRE2_SPTR)p->path,
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
			flag = (code(pc + 1) & p->mbit) != 0;
			pc += 2;
			break;
		case GWB_OP_HEADER_EQ:
			a = gwb_s(t, code(pc + 1), NULL);
			b = gwb_s(t, code(pc + 2), &bl);
			flag = get_header(rq, a, &v, &vl) && vl == bl && (bl == 0 || memcmp(v, b, bl) == 0);
			pc += 3;
			break;
		case GWB_OP_HEADER_HAS:
			a = gwb_s(t, code(pc + 1), NULL);
			flag = get_header(rq, a, &v, &vl);
			pc += 2;
			break;
		case GWB_OP_QUERY_EQ:
			a = gwb_s(t, code(pc + 1), &al);
			b = gwb_s(t, code(pc + 2), &bl);
			flag = gwb_query_find(rq->query, rq->query_len, a, al, &v, &vl) &&
			       gwb_form_eq(v, vl, b, bl);
			pc += 3;
			break;
		case GWB_OP_QUERY_HAS:
			a = gwb_s(t, code(pc + 1), &al);
			flag = gwb_query_find(rq->query, rq->query_len, a, al, NULL, NULL);
			pc += 2;
			break;
		case GWB_OP_COOKIE_EQ:
			a = gwb_s(t, code(pc + 1), &al);
			b = gwb_s(t, code(pc + 2), &bl);
			flag = cookie_get(rq, a, al, &v, &vl) && vl == bl && (bl == 0 || memcmp(v, b, bl) == 0);
			pc += 3;
			break;
		case GWB_OP_COOKIE_HAS:
			a = gwb_s(t, code(pc + 1), &al);
			flag = cookie_get(rq, a, al, &v, &vl);
			pc += 2;
			break;
		case GWB_OP_IP_IN:
			flag = gwb_cidrset_contains(t, code(pc + 1), rq->ip_family, rq->ip);
			pc += 2;
			break;
		case GWB_OP_NOT:
			flag = !flag;
			pc += 1;
			continue;
		case GWB_OP_JF:
			pc = flag ? pc + 2 : code(pc + 1);
			continue;
		case GWB_OP_JT:
			pc = flag ? code(pc + 1) : pc + 2;
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
#undef code
}

int gwb_eval_prep(const gwb_table *t, uint32_t r, const gwb_prep *p,
                  gwb_match *m, gwb_scratch *s, gwb_trace_fn trace, void *tctx)
{
	const gwb_route *rt = &t->route[r];
	return run(t, (const uint8_t *)t->code, r, rt->match_pc, rt->match_end, 0, p, m, s,
	           trace, tctx);
}

int gwb_eval_inline(const gwb_table *t, uint32_t r, const uint8_t *prog, uint32_t len,
                    int flag, const gwb_prep *p, gwb_match *m, gwb_scratch *s)
{
	return run(t, prog, r, 0, len, flag, p, m, s, NULL, NULL);
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
	gwb_match dummy;
	return gwb_index_match(t, rq, m ? m : &dummy, s);
}

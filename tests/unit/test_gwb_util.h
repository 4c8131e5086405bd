/*
 * test_gwb_util.h — helpers for the gwb unit tests: build tables through
 * the builder API (the compiler is tested elsewhere), a tiny expression
 * emitter for match programs, requests with headers, and raw-byte surgery
 * on finished tables (patch a word, fix the checksum).
 */
#ifndef TEST_GWB_UTIL_H
#define TEST_GWB_UTIL_H

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "gwb.h"

/* not every test program uses every helper */
#define TU_FN static __attribute__((unused))

TU_FN uint32_t tu_str(gwb_builder *b, const char *s)
{
	return gwb_b_str(b, s, strlen(s));
}

/* ---------------------------------------------------------------- exprs */
enum tx_kind {
	TX_ANY, TX_HOST, TX_WILD, TX_PEQ, TX_PPRE, TX_PRE, TX_METHOD,
	TX_HEQ, TX_HHAS, TX_QEQ, TX_QHAS, TX_CEQ, TX_CHAS, TX_IP,
	TX_NOT, TX_AND, TX_OR
};

typedef struct tx {
	enum tx_kind k;
	const char *a, *b;          /* strings; for TX_IP: a = "cidr,cidr" */
	uint32_t m;                 /* methods / regex flags */
	struct tx *l, *r;
} tx;

/* a pool so tests need not free expression trees one by one */
#define TX_POOL 4096
static tx tx_pool[TX_POOL];
static int tx_used;

TU_FN tx *tx_new(enum tx_kind k, const char *a, const char *b, uint32_t m, tx *l, tx *r)
{
	ck_assert_int_lt(tx_used, TX_POOL);
	tx *e = &tx_pool[tx_used++];
	e->k = k;
	e->a = a;
	e->b = b;
	e->m = m;
	e->l = l;
	e->r = r;
	return e;
}
#define X_ANY()        tx_new(TX_ANY, NULL, NULL, 0, NULL, NULL)
#define X_HOST(h)      tx_new(TX_HOST, h, NULL, 0, NULL, NULL)
#define X_WILD(s)      tx_new(TX_WILD, s, NULL, 0, NULL, NULL)
#define X_PEQ(p)       tx_new(TX_PEQ, p, NULL, 0, NULL, NULL)
#define X_PPRE(p)      tx_new(TX_PPRE, p, NULL, 0, NULL, NULL)
#define X_RE(p, f)     tx_new(TX_PRE, p, NULL, f, NULL, NULL)
#define X_METHOD(m)    tx_new(TX_METHOD, NULL, NULL, m, NULL, NULL)
#define X_HEQ(h, v)    tx_new(TX_HEQ, h, v, 0, NULL, NULL)
#define X_HHAS(h)      tx_new(TX_HHAS, h, NULL, 0, NULL, NULL)
#define X_QEQ(h, v)    tx_new(TX_QEQ, h, v, 0, NULL, NULL)
#define X_QHAS(h)      tx_new(TX_QHAS, h, NULL, 0, NULL, NULL)
#define X_CEQ(h, v)    tx_new(TX_CEQ, h, v, 0, NULL, NULL)
#define X_CHAS(h)      tx_new(TX_CHAS, h, NULL, 0, NULL, NULL)
#define X_IP(c)        tx_new(TX_IP, c, NULL, 0, NULL, NULL)
#define X_NOT(e)       tx_new(TX_NOT, NULL, NULL, 0, e, NULL)
#define X_AND(l, r)    tx_new(TX_AND, NULL, NULL, 0, l, r)
#define X_OR(l, r)     tx_new(TX_OR, NULL, NULL, 0, l, r)

TU_FN uint32_t tu_cidrs(gwb_builder *b, const char *list)
{
	gwb_cidr v[16];
	size_t n = 0;
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		ck_assert_int_eq(gwb_cidr_parse(p, l, &v[n], 0), 0);
		n++;
		p += l + (e ? 1 : 0);
	}
	return gwb_b_cidrset(b, v, n);
}

/* emits e so that the flag holds its value (short-circuit and/or) */
TU_FN void tu_emit(gwb_builder *b, const tx *e)
{
	uint32_t a[2], pc;
	char err[128];
	size_t eo;
	switch (e->k) {
	case TX_ANY: gwb_b_emit(b, GWB_OP_ANY, NULL); break;
	case TX_HOST: a[0] = tu_str(b, e->a); gwb_b_emit(b, GWB_OP_HOST_EQ, a); break;
	case TX_WILD: a[0] = tu_str(b, e->a); gwb_b_emit(b, GWB_OP_HOST_WILD, a); break;
	case TX_PEQ: a[0] = tu_str(b, e->a); gwb_b_emit(b, GWB_OP_PATH_EQ, a); break;
	case TX_PPRE: a[0] = tu_str(b, e->a); gwb_b_emit(b, GWB_OP_PATH_PREFIX, a); break;
	case TX_PRE:
		a[0] = gwb_b_regex(b, e->a, strlen(e->a), e->m, err, sizeof err, &eo);
		ck_assert_msg(a[0] != GWB_NONE, "regex %s: %s", e->a, err);
		gwb_b_emit(b, GWB_OP_PATH_RE, a);
		break;
	case TX_METHOD: a[0] = e->m; gwb_b_emit(b, GWB_OP_METHOD, a); break;
	case TX_HEQ: a[0] = tu_str(b, e->a); a[1] = tu_str(b, e->b); gwb_b_emit(b, GWB_OP_HEADER_EQ, a); break;
	case TX_HHAS: a[0] = tu_str(b, e->a); gwb_b_emit(b, GWB_OP_HEADER_HAS, a); break;
	case TX_QEQ: a[0] = tu_str(b, e->a); a[1] = tu_str(b, e->b); gwb_b_emit(b, GWB_OP_QUERY_EQ, a); break;
	case TX_QHAS: a[0] = tu_str(b, e->a); gwb_b_emit(b, GWB_OP_QUERY_HAS, a); break;
	case TX_CEQ: a[0] = tu_str(b, e->a); a[1] = tu_str(b, e->b); gwb_b_emit(b, GWB_OP_COOKIE_EQ, a); break;
	case TX_CHAS: a[0] = tu_str(b, e->a); gwb_b_emit(b, GWB_OP_COOKIE_HAS, a); break;
	case TX_IP: a[0] = tu_cidrs(b, e->a); gwb_b_emit(b, GWB_OP_IP_IN, a); break;
	case TX_NOT: tu_emit(b, e->l); gwb_b_emit(b, GWB_OP_NOT, NULL); break;
	case TX_AND:
	case TX_OR:
		tu_emit(b, e->l);
		a[0] = 0;
		pc = gwb_b_emit(b, e->k == TX_AND ? GWB_OP_JF : GWB_OP_JT, a);
		tu_emit(b, e->r);
		gwb_b_patch(b, pc + 1, gwb_b_pc(b));
		break;
	}
}

/* the index key of e: from the top-level conjunction, as gwc does */
TU_FN void tu_key_walk(gwb_builder *b, const tx *e, gwb_index_key *k, int *used, int *total)
{
	if (e->k == TX_AND) {
		tu_key_walk(b, e->l, k, used, total);
		tu_key_walk(b, e->r, k, used, total);
		return;
	}
	(*total)++;
	if ((e->k == TX_HOST || e->k == TX_WILD) && k->host_kind == GWB_HOST_ANY) {
		int lower = 1;
		for (const char *p = e->a; *p; p++)
			lower &= !isupper((unsigned char)*p);
		if (!lower)
			return;
		k->host_kind = e->k == TX_HOST ? GWB_HOST_EXACT : GWB_HOST_WILD;
		k->host = tu_str(b, e->a);
		(*used)++;
	} else if ((e->k == TX_PEQ || e->k == TX_PPRE) && k->path_kind == GWB_PATH_ANY) {
		k->path_kind = e->k == TX_PEQ ? GWB_PATH_EXACT : GWB_PATH_PREFIX;
		k->path = tu_str(b, e->a);
		(*used)++;
	} else if (e->k == TX_METHOD) {
		k->methods &= (uint16_t)e->m;
		(*used)++;
	} else if (e->k == TX_ANY) {
		(*used)++;
	}
}

/* one route: match e, respond 200 with body = name; keyed unless nokey */
TU_FN void tu_route(gwb_builder *b, const char *name, const tx *e, int nokey)
{
	static uint32_t line = 1;
	uint32_t a[3];
	gwb_b_route_begin(b, tu_str(b, name), tu_str(b, "test.gwr"), line++, 1);
	tu_emit(b, e);
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 200;
	a[1] = tu_str(b, name);
	a[2] = tu_str(b, "text/plain");
	gwb_b_emit(b, GWB_OP_RESPOND, a);
	if (!nokey) {
		gwb_index_key k;
		memset(&k, 0, sizeof k);
		k.methods = GWB_M_ALL;
		int used = 0, total = 0;
		tu_key_walk(b, e, &k, &used, &total);
		if (k.methods == 0) {
			/* contradictory methods: the route never matches; any key
			 * implied by the program will do */
			k.methods = GWB_M_ALL;
			used = -1;
		}
		k.exact = used == total;
		gwb_b_route_key(b, &k);
	}
	gwb_b_route_end(b);
}

TU_FN uint8_t *tu_finish(gwb_builder *b, size_t *n)
{
	uint8_t *out;
	char err[256];
	int rc = gwb_builder_finish(b, &out, n, err, sizeof err);
	ck_assert_msg(rc == 0, "finish: %s", err);
	gwb_builder_free(b);
	return out;
}

TU_FN gwb_table *tu_load(const uint8_t *p, size_t n)
{
	char err[256] = "";
	gwb_table *t = gwb_load_mem(p, n, err, sizeof err);
	ck_assert_msg(t != NULL, "load: %s", err);
	return t;
}

/* loads and expects failure with exactly msg */
TU_FN void tu_load_fail(const uint8_t *p, size_t n, const char *msg)
{
	char err[256] = "";
	gwb_table *t = gwb_load_mem(p, n, err, sizeof err);
	if (t)
		gwb_free(t);
	ck_assert_msg(t == NULL, "loaded, expected: %s", msg);
	ck_assert_str_eq(err, msg);
}

/* ---------------------------------------------------------------- bytes */
TU_FN uint32_t tu_get32(const uint8_t *p, size_t off)
{
	return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
	       (uint32_t)p[off + 3] << 24;
}

TU_FN void tu_put32(uint8_t *p, size_t off, uint32_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
	p[off + 2] = (uint8_t)(v >> 16);
	p[off + 3] = (uint8_t)(v >> 24);
}

TU_FN void tu_fix_crc(uint8_t *p, size_t n)
{
	tu_put32(p, 12, 0);
	tu_put32(p, 12, gwb_crc32(0, p, n));
}

/* byte offset of section id's data */
TU_FN size_t tu_sec(const uint8_t *p, uint32_t id, uint32_t *count)
{
	uint32_t ns = tu_get32(p, 48);
	for (uint32_t i = 0; i < ns; i++)
		if (tu_get32(p, 64 + 16 * i) == id) {
			if (count)
				*count = tu_get32(p, 64 + 16 * i + 12);
			return tu_get32(p, 64 + 16 * i + 4);
		}
	ck_abort_msg("no section %u", id);
	return 0;
}

/* sets CODE word w and fixes the checksum */
TU_FN void tu_patch_code(uint8_t *p, size_t n, uint32_t w, uint32_t v)
{
	tu_put32(p, tu_sec(p, GWB_SEC_CODE, NULL) + 4 * w, v);
	tu_fix_crc(p, n);
}

/* ---------------------------------------------------------------- requests */
typedef struct tu_req {
	gwb_request rq;
	const char *hn[8], *hv[8];
	int nh;
} tu_req;

TU_FN int tu_header(void *ctx, const char *name, const char **v, size_t *vl)
{
	tu_req *r = ctx;
	for (int i = 0; i < r->nh; i++)
		if (strcasecmp(r->hn[i], name) == 0) {
			*v = r->hv[i];
			*vl = strlen(r->hv[i]);
			return 1;
		}
	return 0;
}

/* ip: "" for none */
TU_FN void tu_req_init(tu_req *r, const char *method, const char *host, const char *path,
                        const char *query, const char *ip)
{
	memset(r, 0, sizeof *r);
	r->rq.method = method;
	r->rq.method_len = strlen(method);
	r->rq.host = host;
	r->rq.host_len = host ? strlen(host) : 0;
	r->rq.path = path;
	r->rq.path_len = strlen(path);
	r->rq.query = query;
	r->rq.query_len = query ? strlen(query) : 0;
	r->rq.header = tu_header;
	r->rq.ctx = r;
	if (ip && *ip) {
		gwb_cidr c;
		ck_assert_int_eq(gwb_cidr_parse(ip, strlen(ip), &c, 1), 0);
		r->rq.ip_family = c.family;
		memcpy(r->rq.ip, c.addr, 16);
	}
}

TU_FN void tu_req_hdr(tu_req *r, const char *n, const char *v)
{
	ck_assert_int_lt(r->nh, 8);
	r->hn[r->nh] = n;
	r->hv[r->nh] = v;
	r->nh++;
}

/* the reference: every route's program in order */
TU_FN uint32_t tu_linear(const gwb_table *t, const gwb_request *rq, gwb_match *m, gwb_scratch *s)
{
	for (uint32_t i = 0; i < gwb_nroutes(t); i++)
		if (gwb_eval_route(t, i, rq, m, s, NULL, NULL))
			return i;
	return GWB_NONE;
}

#endif /* TEST_GWB_UTIL_H */

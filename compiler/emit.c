/*
 * emit.c — checked AST -> gwb builder calls -> .gwb bytes.
 *
 * Layout decisions (the format itself is gwb.h's):
 *  - Upstreams are emitted in declaration order, used or not (the admin
 *    API and /status name them all); `proxy` refers to one by index.
 *  - Match programs are short-circuit code with forward jumps only:
 *      a and b:  <a> JF end <b> end:
 *      a or b:   <a> JT end <b> end:
 *      not e:    <e> NOT
 *    followed by END, so the flag at END is the value of the expression.
 *  - The index key comes from the top-level conjunction (sema_index_key):
 *    at most one host atom (exact preferred to wildcard), one path atom
 *    (== preferred to ^=), the methods intersected; `exact` only when the
 *    conjunction has nothing else (`any` counts as nothing).
 *  - Actions: directives sorted by phase, declaration order inside a phase,
 *    `use` spliced in place; in the content phase CACHE comes first.
 *  - Identical regexes share one REGEX record.
 *  - source_hash = SHA-256 over the sources in include order, each as
 *    path "\0" contents "\0".
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "compiler.h"
#include "sema.h"

typedef struct ectx {
	const ast_file *f;
	diag_ctx *d;
	gwb_builder *b;
	sema_map ups;        /* name -> upstream index */
	sema_map pol;        /* name -> item index */
	sema_map re;         /* pattern -> regex index */
	int bad;
} ectx;

static void eerr(ectx *e, ast_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void eerr(ectx *e, ast_pos pos, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag_error(e->d, pos, 1, "limit", "%s", msg);
	e->bad = 1;
}

static uint32_t str(ectx *e, const char *s, size_t n)
{
	return gwb_b_str(e->b, s ? s : "", s ? n : 0);
}

static uint32_t cstr(ectx *e, const char *s)
{
	return str(e, s, s ? strlen(s) : 0);
}

static uint32_t regex(ectx *e, const char *pat, size_t len, ast_pos pos)
{
	long ix = sema_map_get(&e->re, pat, len);
	if (ix >= 0)
		return (uint32_t)ix;
	char err[256] = "";
	size_t off = 0;
	uint32_t r = gwb_b_regex(e->b, pat, len, 0, err, sizeof err, &off);
	if (r == GWB_NONE) {
		ast_pos p = sema_strpos(e->f, pos, off);
		eerr(e, p, "regex rejected by the table builder: %s", err);
		return 0;
	}
	sema_map_put(&e->re, pat, len, (long)r);
	return r;
}

/* ------------------------------------------------------------- sha256 */

static int source_hash(const ast_file *f, uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	for (size_t i = 0; ok && i < f->nsources; i++) {
		const ast_source *s = &f->sources[i];
		const char *p = s->path ? s->path : "";
		ok = EVP_DigestUpdate(c, p, strlen(p) + 1) &&
		     EVP_DigestUpdate(c, s->text ? s->text : "", s->len) &&
		     EVP_DigestUpdate(c, "", 1);
	}
	ok = ok && EVP_DigestFinal_ex(c, out, &n) && n == 32;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

/* ----------------------------------------------------------- index key */

static void key_walk(const ast_expr *e, sema_key *k, int *hostpref, int *pathpref)
{
	switch (e->kind) {
	case AE_AND:
		key_walk(e->a, k, hostpref, pathpref);
		key_walk(e->b, k, hostpref, pathpref);
		return;
	case AE_ANY:
		return;
	case AE_HOST_EQ: {
		int wild = e->s[0] == '*';
		int pref = wild ? 1 : 2;
		if (k->host_kind != GWB_HOST_ANY)
			k->exact = 0;
		if (pref > *hostpref) {
			*hostpref = pref;
			k->host_kind = wild ? GWB_HOST_WILD : GWB_HOST_EXACT;
			k->host = wild ? e->s + 2 : e->s;
			k->hostlen = wild ? e->len - 2 : e->len;
		}
		return;
	}
	case AE_PATH_EQ: case AE_PATH_PREFIX: {
		int pref = e->kind == AE_PATH_EQ ? 2 : 1;
		if (k->path_kind != GWB_PATH_ANY)
			k->exact = 0;
		if (pref > *pathpref) {
			*pathpref = pref;
			k->path_kind = e->kind == AE_PATH_EQ ? GWB_PATH_EXACT : GWB_PATH_PREFIX;
			k->path = e->s;
			k->pathlen = e->len;
		}
		return;
	}
	case AE_METHOD:
		k->methods &= e->methods;
		return;
	default:
		k->exact = 0;
		return;
	}
}

void sema_index_key(const ast_expr *e, sema_key *k)
{
	memset(k, 0, sizeof *k);
	k->host_kind = GWB_HOST_ANY;
	k->path_kind = GWB_PATH_ANY;
	k->host = k->path = "";
	k->methods = GWB_M_ALL;
	k->exact = 1;
	int hp = 0, pp = 0;
	if (e)
		key_walk(e, k, &hp, &pp);
	else
		k->exact = 0;
	if ((k->methods & GWB_M_ALL) == 0) {
		/* never true; leave it to the program to say so */
		k->methods = GWB_M_ALL;
		k->exact = 0;
	}
}

/* ------------------------------------------------------- match program */

static void emit_expr(ectx *e, const ast_expr *x)
{
	uint32_t a[GWB_MAX_ARGS] = { 0 };
	switch (x->kind) {
	case AE_AND: case AE_OR: {
		emit_expr(e, x->a);
		uint32_t pc = gwb_b_emit(e->b, x->kind == AE_AND ? GWB_OP_JF : GWB_OP_JT, a);
		emit_expr(e, x->b);
		gwb_b_patch(e->b, pc + 1, gwb_b_pc(e->b));
		return;
	}
	case AE_NOT:
		emit_expr(e, x->a);
		gwb_b_emit(e->b, GWB_OP_NOT, a);
		return;
	case AE_ANY:
		gwb_b_emit(e->b, GWB_OP_ANY, a);
		return;
	case AE_HOST_EQ:
		if (x->s[0] == '*') {
			a[0] = str(e, x->s + 2, x->len - 2);
			gwb_b_emit(e->b, GWB_OP_HOST_WILD, a);
		} else {
			a[0] = str(e, x->s, x->len);
			gwb_b_emit(e->b, GWB_OP_HOST_EQ, a);
		}
		return;
	case AE_PATH_EQ:
		a[0] = str(e, x->s, x->len);
		gwb_b_emit(e->b, GWB_OP_PATH_EQ, a);
		return;
	case AE_PATH_PREFIX:
		a[0] = str(e, x->s, x->len);
		gwb_b_emit(e->b, GWB_OP_PATH_PREFIX, a);
		return;
	case AE_PATH_RE:
		a[0] = regex(e, x->s, x->len, x->vpos);
		gwb_b_emit(e->b, GWB_OP_PATH_RE, a);
		return;
	case AE_METHOD:
		a[0] = x->methods & GWB_M_ALL;
		gwb_b_emit(e->b, GWB_OP_METHOD, a);
		return;
	case AE_HEADER_EQ: case AE_QUERY_EQ: case AE_COOKIE_EQ:
		a[0] = cstr(e, x->name);
		a[1] = str(e, x->s, x->len);
		gwb_b_emit(e->b, x->kind == AE_HEADER_EQ ? GWB_OP_HEADER_EQ :
		           x->kind == AE_QUERY_EQ ? GWB_OP_QUERY_EQ : GWB_OP_COOKIE_EQ, a);
		return;
	case AE_HEADER_HAS: case AE_QUERY_HAS: case AE_COOKIE_HAS:
		a[0] = cstr(e, x->name);
		gwb_b_emit(e->b, x->kind == AE_HEADER_HAS ? GWB_OP_HEADER_HAS :
		           x->kind == AE_QUERY_HAS ? GWB_OP_QUERY_HAS : GWB_OP_COOKIE_HAS, a);
		return;
	case AE_IP_IN: {
		sema_opnd o = { 0 };
		o.cidrs = x->cidrs;
		o.ncidrs = x->ncidrs;
		gwb_cidr *c = NULL;
		long n = sema_cidrs(&o, &c);
		if (n < 0) {
			eerr(e, x->pos, "invalid CIDR in client_ip test");
			return;
		}
		a[0] = gwb_b_cidrset(e->b, c, (size_t)n);
		free(c);
		gwb_b_emit(e->b, GWB_OP_IP_IN, a);
		return;
	}
	}
}

/* ------------------------------------------------------------- actions */

typedef struct insns { sema_insn *v; size_t n, cap; } insns;

static void collect(ectx *e, const ast_item *it, unsigned place, insns *out, int depth)
{
	if (depth > 64)
		return; /* sema rejects cycles; this only guards a bad tree */
	for (size_t i = 0; i < it->ndirs; i++) {
		sema_insn in;
		if (sema_decode(e->f, &it->dirs[i], place, &in, NULL) < 0) {
			eerr(e, it->dirs[i].pos, "directive '%s' did not pass the checks",
			     it->dirs[i].name);
			continue;
		}
		if (in.is_use) {
			long p = sema_map_get(&e->pol, in.a[0].s, in.a[0].len);
			if (p < 0)
				eerr(e, in.a[0].pos, "undefined policy '%s'", in.a[0].s);
			else
				collect(e, &e->f->items[p], SP_POLICY, out, depth + 1);
			sema_insn_fini(&in);
			continue;
		}
		if (out->n == out->cap) {
			out->cap = out->cap ? 2 * out->cap : 16;
			sema_insn *nv = realloc(out->v, out->cap * sizeof *nv);
			if (!nv) {
				perror("gwc");
				abort();
			}
			out->v = nv;
		}
		out->v[out->n++] = in;
	}
}

static void emit_insn(ectx *e, const sema_insn *in)
{
	const gwb_opinfo *oi = gwb_opinfo_get(in->op);
	uint32_t a[GWB_MAX_ARGS] = { 0 };
	for (unsigned i = 0; i < oi->nargs; i++) {
		const sema_opnd *o = &in->a[i];
		switch (oi->kind[i]) {
		case GWB_K_STR: case GWB_K_TPL:
			a[i] = str(e, o->s, o->len);
			break;
		case GWB_K_RE:
			a[i] = regex(e, o->s, o->len, o->pos);
			break;
		case GWB_K_CIDRS: {
			gwb_cidr *c = NULL;
			long n = sema_cidrs(o, &c);
			if (n < 0) {
				eerr(e, o->pos, "invalid CIDR");
				break;
			}
			a[i] = gwb_b_cidrset(e->b, c, (size_t)n);
			free(c);
			break;
		}
		case GWB_K_UPS: {
			long u = sema_map_get(&e->ups, o->s, o->len);
			if (u < 0)
				eerr(e, o->pos, "undefined upstream '%s'", o->s);
			a[i] = u < 0 ? 0 : (uint32_t)u;
			break;
		}
		default:
			a[i] = o->u;
		}
	}
	gwb_b_emit(e->b, in->op, a);
}

static void emit_route(ectx *e, const ast_item *it)
{
	gwb_b_route_begin(e->b, cstr(e, it->name), cstr(e, it->pos.file), it->pos.line,
	                  it->pos.col);
	if (it->match)
		emit_expr(e, it->match);
	else
		eerr(e, it->pos, "route '%s' has no match", it->name);
	uint32_t none[GWB_MAX_ARGS] = { 0 };
	gwb_b_emit(e->b, GWB_OP_END, none);
	gwb_b_match_done(e->b);

	insns v = { NULL, 0, 0 };
	collect(e, it, SP_ROUTE, &v, 0);
	for (unsigned ph = 0; ph < GWB_PH__COUNT; ph++) {
		gwb_b_phase(e->b, (enum gwb_phase)ph);
		if (ph == GWB_PH_CONTENT)
			for (size_t i = 0; i < v.n; i++)
				if (v.v[i].op == GWB_OP_CACHE)
					emit_insn(e, &v.v[i]);
		for (size_t i = 0; i < v.n; i++)
			if (v.v[i].phase == ph && v.v[i].op != GWB_OP_CACHE)
				emit_insn(e, &v.v[i]);
	}
	for (size_t i = 0; i < v.n; i++)
		sema_insn_fini(&v.v[i]);
	free(v.v);

	sema_key k;
	sema_index_key(it->match, &k);
	gwb_index_key key = { 0 };
	key.host_kind = (uint8_t)k.host_kind;
	key.path_kind = (uint8_t)k.path_kind;
	key.methods = (uint16_t)k.methods;
	key.host = str(e, k.host, k.hostlen);
	key.path = str(e, k.path, k.pathlen);
	key.exact = (uint32_t)k.exact;
	gwb_b_route_key(e->b, &key);
	gwb_b_route_end(e->b);
}

static void emit_upstream(ectx *e, const ast_item *it)
{
	sema_upstream su;
	if (sema_decode_upstream(e->f, it, &su, NULL) < 0) {
		eerr(e, it->pos, "upstream '%s' did not pass the checks", it->name);
		sema_upstream_fini(&su);
		return;
	}
	gwb_upstream u = su.u;
	u.name = cstr(e, it->name);
	u.hash_name = cstr(e, su.hash_name);
	u.hc_path = cstr(e, su.hc_path);
	u.tls_ca = cstr(e, su.tls_ca);
	u.tls_sni = cstr(e, su.tls_sni);
	u.tls_cert = cstr(e, su.tls_cert);
	u.tls_key = cstr(e, su.tls_key);
	gwb_server *s = calloc(su.nservers ? su.nservers : 1, sizeof *s);
	if (!s) {
		perror("gwc");
		abort();
	}
	for (size_t i = 0; i < su.nservers; i++) {
		s[i].addr = str(e, su.servers[i].addr, su.servers[i].addrlen);
		s[i].flags = su.servers[i].flags;
		s[i].weight = su.servers[i].weight;
		s[i].max_fails = su.servers[i].max_fails;
		s[i].fail_timeout_ms = su.servers[i].fail_timeout_ms;
	}
	uint32_t ix = gwb_b_upstream(e->b, &u, s, su.nservers);
	free(s);
	sema_upstream_fini(&su);
	if (ix == GWB_NONE) {
		eerr(e, it->pos, "too many upstreams (limit is %u)", GWB_MAX_UPSTREAMS);
		return;
	}
	sema_map_put(&e->ups, it->name, strlen(it->name), (long)ix);
}

int emit_table(const ast_file *f, diag_ctx *d, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	ectx e = { f, d, gwb_builder_new(), { 0 }, { 0 }, { 0 }, 0 };
	if (!e.b) {
		perror("gwc");
		return -1;
	}
	sema_map_init(&e.ups);
	sema_map_init(&e.pol);
	sema_map_init(&e.re);

	uint8_t h[32];
	if (source_hash(f, h) < 0) {
		ast_pos p = { 0 };
		eerr(&e, p, "SHA-256 failed (libcrypto)");
	} else {
		gwb_b_source_hash(e.b, h);
	}
	size_t nroutes = 0;
	for (size_t i = 0; i < f->nitems; i++) {
		const ast_item *it = &f->items[i];
		if (it->kind == AI_UPSTREAM)
			emit_upstream(&e, it);
		else if (it->kind == AI_POLICY)
			sema_map_put(&e.pol, it->name, strlen(it->name), (long)i);
		else
			nroutes++;
	}
	if (nroutes > GWB_MAX_ROUTES) {
		eerr(&e, f->items[0].pos, "too many routes: %zu (limit is %u)", nroutes, GWB_MAX_ROUTES);
	} else {
		for (size_t i = 0; i < f->nitems && !e.bad; i++)
			if (f->items[i].kind == AI_ROUTE)
				emit_route(&e, &f->items[i]);
	}
	int rc = -1;
	if (!e.bad) {
		char err[256] = "";
		if (gwb_builder_finish(e.b, out, len, err, sizeof err) == 0) {
			rc = 0;
		} else {
			ast_pos p = f->nitems ? f->items[0].pos : (ast_pos){ 0 };
			diag_error(d, p, 1, "limit", "cannot build the table: %s", err);
		}
	}
	gwb_builder_free(e.b);
	sema_map_fini(&e.ups);
	sema_map_fini(&e.pol);
	sema_map_fini(&e.re);
	return rc;
}

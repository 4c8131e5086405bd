/*
 * test_emit.c — the emitter, checked through the loader: the example of
 * gwr-language.md §2 compiles, its routes, upstream options and defaults
 * come back, requests match the right route; match programs and phases
 * have the documented shape; index keys; determinism; limits.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "compiler.h"
#include "gwb.h"
#include "sema.h"

#define DATA SEMA_DATA_DIR

typedef struct out {
	ast_file f;
	diag_ctx d;
	uint8_t *buf;
	size_t len;
	gwb_table *t;
} out;

static void dump(const diag_ctx *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %s:%u:%u: %s\n", d->v[i].pos.file, d->v[i].pos.line,
		        d->v[i].pos.col, d->v[i].msg);
}

static out *finish(out *o)
{
	o->d.sources = o->f.sources;
	o->d.nsources = o->f.nsources;
	if (o->d.nerrors == 0)
		sema_check(&o->f, &o->d);
	if (o->d.nerrors)
		dump(&o->d);
	ck_assert_uint_eq(o->d.nerrors, 0);
	ck_assert_int_eq(emit_table(&o->f, &o->d, &o->buf, &o->len), 0);
	char err[256] = "";
	o->t = gwb_load_mem(o->buf, o->len, err, sizeof err);
	ck_assert_msg(o->t != NULL, "table does not load: %s", err);
	return o;
}

static out *compile_file(const char *path)
{
	out *o = calloc(1, sizeof *o);
	diag_init(&o->d);
	parse_file(path, &o->f, &o->d);
	return finish(o);
}

static out *compile_s(const char *src)
{
	out *o = calloc(1, sizeof *o);
	diag_init(&o->d);
	parse_string(DATA "/t.gwr", src, strlen(src), &o->f, &o->d);
	return finish(o);
}

static void out_free(out *o)
{
	gwb_free(o->t);
	free(o->buf);
	ast_free(&o->f);
	diag_fini(&o->d);
	free(o);
}

/* ---- requests ---- */
typedef struct hdrs { const char *const *kv; } hdrs;

static int hdr(void *ctx, const char *name, const char **v, size_t *vlen)
{
	const hdrs *h = ctx;
	for (const char *const *p = h->kv; p && *p; p += 2)
		if (strcasecmp(p[0], name) == 0) {
			*v = p[1];
			*vlen = strlen(p[1]);
			return 1;
		}
	return 0;
}

static uint32_t match(const out *o, const char *method, const char *host, const char *path,
                      const char *query, const char *const *kv, gwb_match *m)
{
	hdrs h = { kv };
	gwb_request rq;
	memset(&rq, 0, sizeof rq);
	rq.method = method;
	rq.method_len = strlen(method);
	rq.host = host;
	rq.host_len = strlen(host);
	rq.path = path;
	rq.path_len = strlen(path);
	rq.query = query ? query : "";
	rq.query_len = strlen(rq.query);
	rq.header = hdr;
	rq.ctx = &h;
	gwb_scratch *s = gwb_scratch_new();
	gwb_match mm;
	uint32_t r = gwb_match_request(o->t, &rq, m ? m : &mm, s);
	gwb_scratch_free(s);
	return r;
}

static const char *route_name(const out *o, uint32_t r)
{
	return gwb_str(o->t, gwb_route_at(o->t, r)->name, NULL);
}

/* the opcodes of [pc, end) in order */
static size_t ops(const out *o, uint32_t pc, uint32_t end, uint32_t *v, size_t cap)
{
	const uint32_t *code = gwb_code(o->t);
	size_t n = 0;
	while (pc < end) {
		const gwb_opinfo *oi = gwb_opinfo_get(code[pc]);
		ck_assert_ptr_nonnull(oi);
		if (n < cap)
			v[n] = code[pc];
		n++;
		pc += 1 + oi->nargs;
	}
	return n;
}

/* ================================================================ tests */

START_TEST(t_doc_example)
{
	out *o = compile_file(DATA "/doc/rules.gwr");
	/* the upstream from the included file is unused: one warning, no error */
	ck_assert_uint_eq(o->d.nwarnings, 1);

	ck_assert_uint_eq(gwb_nroutes(o->t), 4);
	ck_assert_str_eq(route_name(o, 0), "users");
	ck_assert_str_eq(route_name(o, 1), "health");
	ck_assert_str_eq(route_name(o, 2), "old_docs");
	ck_assert_str_eq(route_name(o, 3), "fallback");
	const gwb_debug *dbg = gwb_debug_at(o->t, 0);
	const char *file = gwb_str(o->t, dbg->file, NULL);
	ck_assert_str_eq(file + strlen(file) - strlen("doc/rules.gwr"), "doc/rules.gwr");
	ck_assert_uint_eq(dbg->line, 22);
	ck_assert_uint_eq(dbg->col, 1);

	/* upstreams: declaration order (the included one comes first) */
	ck_assert_uint_eq(gwb_nupstreams(o->t), 2);
	const gwb_upstream *sp = gwb_upstream_at(o->t, 0);
	ck_assert_str_eq(gwb_str(o->t, sp->name, NULL), "spare");
	ck_assert_uint_eq(sp->flags, GWB_UPS_DYNAMIC);
	ck_assert_uint_eq(sp->server_count, 0);
	/* nginx-like defaults */
	ck_assert_uint_eq(sp->balance, GWB_BAL_ROUND_ROBIN);
	ck_assert_uint_eq(sp->keepalive, 64);
	ck_assert_uint_eq(sp->connect_timeout_ms, 5000);
	ck_assert_uint_eq(sp->read_timeout_ms, 60000);
	ck_assert_uint_eq(sp->retries, 1);
	ck_assert_uint_eq(sp->retry_on, GWB_RETRY_CONNECT);

	const gwb_upstream *u = gwb_upstream_at(o->t, 1);
	ck_assert_str_eq(gwb_str(o->t, u->name, NULL), "users");
	ck_assert_uint_eq(u->flags, GWB_UPS_HEALTH | GWB_UPS_BREAKER);
	ck_assert_uint_eq(u->balance, GWB_BAL_ROUND_ROBIN);
	ck_assert_uint_eq(u->keepalive, 64);
	ck_assert_uint_eq(u->connect_timeout_ms, 1000);
	ck_assert_uint_eq(u->read_timeout_ms, 5000);
	ck_assert_uint_eq(u->retries, 2);
	ck_assert_uint_eq(u->retry_on, GWB_RETRY_CONNECT);
	ck_assert_uint_eq(u->retry_status[0], 502);
	ck_assert_uint_eq(u->retry_status[1], 503);
	ck_assert_uint_eq(u->retry_status[2], 0);
	ck_assert_str_eq(gwb_str(o->t, u->hc_path, NULL), "/healthz");
	ck_assert_uint_eq(u->hc_interval_ms, 2000);
	ck_assert_uint_eq(u->hc_timeout_ms, 1000);
	ck_assert_uint_eq(u->hc_healthy, 2);
	ck_assert_uint_eq(u->hc_unhealthy, 3);
	ck_assert_uint_eq(u->hc_expect_lo, 200);
	ck_assert_uint_eq(u->hc_expect_hi, 399);
	ck_assert_uint_eq(u->cb_failures, 5);
	ck_assert_uint_eq(u->cb_window_ms, 10000);
	ck_assert_uint_eq(u->cb_cooldown_ms, 30000);
	ck_assert_uint_eq(u->server_count, 3);
	const gwb_server *s0 = gwb_server_at(o->t, u->server_first);
	const gwb_server *s1 = gwb_server_at(o->t, u->server_first + 1);
	const gwb_server *s2 = gwb_server_at(o->t, u->server_first + 2);
	ck_assert_str_eq(gwb_str(o->t, s0->addr, NULL), "10.0.0.11:8080");
	ck_assert_uint_eq(s0->weight, 3);
	ck_assert_uint_eq(s0->max_fails, 1);
	ck_assert_uint_eq(s0->fail_timeout_ms, 10000);
	ck_assert_uint_eq(s0->flags, 0);
	ck_assert_uint_eq(s1->weight, 1);
	ck_assert_uint_eq(s1->max_fails, 3);
	ck_assert_uint_eq(s2->flags, GWB_SRV_BACKUP);

	/* requests */
	gwb_match m;
	ck_assert_uint_eq(match(o, "GET", "api.example.com", "/v1/users/42", NULL, NULL, &m), 0);
	ck_assert_uint_eq(match(o, "POST", "API.example.com:443", "/v1/users/", NULL, NULL, &m), 0);
	ck_assert_uint_eq(match(o, "DELETE", "api.example.com", "/v1/users/42", NULL, NULL, &m), 3);
	ck_assert_uint_eq(match(o, "GET", "www.example.com", "/v1/users/42", NULL, NULL, &m), 3);
	ck_assert_uint_eq(match(o, "GET", "anything", "/healthz", NULL, NULL, &m), 1);
	ck_assert_uint_eq(match(o, "GET", "x", "/docs/v1/a/b", NULL, NULL, &m), 2);
	ck_assert_int_ge(m.ncap, 2);
	const gwb_route *r2 = gwb_route_at(o->t, 2);
	const uint32_t *code = gwb_code(o->t);
	uint32_t pc = r2->phase_pc[GWB_PH_CONTENT];
	ck_assert_uint_eq(code[pc], GWB_OP_REDIRECT);
	ck_assert_uint_eq(code[pc + 1], 301);
	size_t tl;
	const char *tpl = gwb_str(o->t, code[pc + 2], &tl);
	char loc[64];
	gwb_tpl_expand(tpl, tl, "/docs/v1/a/b", &m, NULL, NULL, loc, sizeof loc);
	ck_assert_str_eq(loc, "/docs/v2/a/b");

	/* route users: policy spliced where `use` stands, phases in order */
	const gwb_route *r0 = gwb_route_at(o->t, 0);
	uint32_t v[16];
	ck_assert_uint_eq(ops(o, r0->phase_pc[GWB_PH_REWRITE], r0->phase_pc[GWB_PH_ACCESS], v, 16), 2);
	ck_assert_uint_eq(v[0], GWB_OP_STRIP_PREFIX);
	ck_assert_uint_eq(v[1], GWB_OP_SET_REQ_HDR);
	ck_assert_uint_eq(ops(o, r0->phase_pc[GWB_PH_ACCESS], r0->phase_pc[GWB_PH_CONTENT], v, 16), 3);
	ck_assert_uint_eq(v[0], GWB_OP_RATE_LIMIT);
	ck_assert_uint_eq(v[1], GWB_OP_WAF);
	ck_assert_uint_eq(v[2], GWB_OP_AUTH_KEY);
	pc = r0->phase_pc[GWB_PH_ACCESS];
	ck_assert_uint_eq(code[pc + 1], 100);   /* 100r/s burst=50 */
	ck_assert_uint_eq(code[pc + 2], 1000);
	ck_assert_uint_eq(code[pc + 3], 50);
	ck_assert_uint_eq(code[pc + 4], GWB_KEY_CLIENT_IP);
	pc += 6 + 4;                             /* RATE_LIMIT, WAF */
	ck_assert_uint_eq(code[pc], GWB_OP_AUTH_KEY);
	ck_assert_str_eq(gwb_str(o->t, code[pc + 2], NULL), "X-API-Key");
	ck_assert_str_eq(gwb_str(o->t, code[pc + 3], NULL), DATA "/doc/keys.txt");
	ck_assert_uint_eq(ops(o, r0->phase_pc[GWB_PH_CONTENT], r0->phase_pc[GWB_PH_HFILTER], v, 16), 1);
	ck_assert_uint_eq(v[0], GWB_OP_PROXY);
	ck_assert_uint_eq(code[r0->phase_pc[GWB_PH_CONTENT] + 1], 1);   /* upstream users */

	/* source hash: SHA-256 of path "\0" text "\0" per source, include order */
	uint8_t h[32];
	unsigned hl = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	ck_assert_uint_eq(o->f.nsources, 2);
	for (size_t i = 0; i < o->f.nsources; i++) {
		EVP_DigestUpdate(c, o->f.sources[i].path, strlen(o->f.sources[i].path) + 1);
		EVP_DigestUpdate(c, o->f.sources[i].text, o->f.sources[i].len);
		EVP_DigestUpdate(c, "", 1);
	}
	EVP_DigestFinal_ex(c, h, &hl);
	EVP_MD_CTX_free(c);
	ck_assert_int_eq(memcmp(gwb_source_hash(o->t), h, 32), 0);
	out_free(o);
}
END_TEST

START_TEST(t_deterministic)
{
	out *a = compile_file(DATA "/doc/rules.gwr");
	out *b = compile_file(DATA "/doc/rules.gwr");
	ck_assert_uint_eq(a->len, b->len);
	ck_assert_int_eq(memcmp(a->buf, b->buf, a->len), 0);
	out_free(a);
	out_free(b);
}
END_TEST

START_TEST(t_match_program)
{
	out *o = compile_s("route r {\n"
	                   "    match host == \"a.com\" and (path == \"/x\" or not header(\"H\"));\n"
	                   "    respond 200;\n"
	                   "}\n");
	const gwb_route *r = gwb_route_at(o->t, 0);
	const uint32_t *code = gwb_code(o->t);
	uint32_t v[16];
	ck_assert_uint_eq(ops(o, r->match_pc, r->match_end, v, 16), 7);
	const uint32_t want[] = { GWB_OP_HOST_EQ, GWB_OP_JF, GWB_OP_PATH_EQ, GWB_OP_JT,
	                          GWB_OP_HEADER_HAS, GWB_OP_NOT, GWB_OP_END };
	for (int i = 0; i < 7; i++)
		ck_assert_uint_eq(v[i], want[i]);
	/* both jumps go forward to the END */
	uint32_t p = r->match_pc, end_pc = r->match_end - 1;
	ck_assert_uint_eq(code[end_pc], GWB_OP_END);
	ck_assert_uint_eq(code[p + 2], GWB_OP_JF);
	ck_assert_uint_eq(code[p + 3], end_pc);
	ck_assert_uint_eq(code[p + 6], GWB_OP_JT);
	ck_assert_uint_eq(code[p + 7], end_pc);

	ck_assert_uint_eq(match(o, "GET", "a.com", "/x", NULL, (const char *const[]){ "H", "1", NULL }, NULL), 0);
	ck_assert_uint_eq(match(o, "GET", "a.com", "/y", NULL, NULL, NULL), 0);
	ck_assert_uint_eq(match(o, "GET", "a.com", "/y", NULL, (const char *const[]){ "h", "1", NULL }, NULL),
	                  GWB_NONE);
	ck_assert_uint_eq(match(o, "GET", "b.com", "/x", NULL, NULL, NULL), GWB_NONE);
	out_free(o);
}
END_TEST

START_TEST(t_phases)
{
	out *o = compile_s("upstream u { server 10.0.0.1:80; }\n"
	                   "route r {\n"
	                   "    match any;\n"
	                   "    tag \"t\";\n"
	                   "    proxy u timeout=3s;\n"
	                   "    set_header response X-A \"1\";\n"
	                   "    rate_limit 5r/m;\n"
	                   "    rewrite path strip_prefix \"/p\";\n"
	                   "    cache ttl=1m;\n"
	                   "    deny 10.0.0.0/8, ::1;\n"
	                   "    cors origins=(\"https://a\", \"https://b\") credentials=on max_age=1h;\n"
	                   "    log off;\n"
	                   "}\n");
	const gwb_route *r = gwb_route_at(o->t, 0);
	const uint32_t *code = gwb_code(o->t);
	uint32_t v[16];
	ck_assert_uint_eq(ops(o, r->phase_pc[0], r->phase_pc[1], v, 16), 1);
	ck_assert_uint_eq(v[0], GWB_OP_STRIP_PREFIX);
	ck_assert_uint_eq(ops(o, r->phase_pc[1], r->phase_pc[2], v, 16), 2);
	ck_assert_uint_eq(v[0], GWB_OP_RATE_LIMIT);
	ck_assert_uint_eq(v[1], GWB_OP_DENY);
	ck_assert_uint_eq(code[r->phase_pc[1] + 2], 60000);   /* 5r/m */
	uint32_t cnt;
	const gwb_cidr *cs = gwb_cidrset(o->t, code[r->phase_pc[1] + 7], &cnt);
	ck_assert_uint_eq(cnt, 2);
	ck_assert_uint_eq(cs[0].family, 4);
	ck_assert_uint_eq(cs[0].prefix, 8);
	ck_assert_uint_eq(cs[1].family, 6);
	ck_assert_uint_eq(cs[1].prefix, 128);
	/* CACHE first in the content phase, whatever the source order */
	ck_assert_uint_eq(ops(o, r->phase_pc[2], r->phase_pc[3], v, 16), 2);
	ck_assert_uint_eq(v[0], GWB_OP_CACHE);
	ck_assert_uint_eq(v[1], GWB_OP_PROXY);
	ck_assert_uint_eq(code[r->phase_pc[2] + 1], 60000);
	ck_assert_uint_eq(code[r->phase_pc[2] + 5], 3000);
	ck_assert_uint_eq(ops(o, r->phase_pc[3], r->phase_pc[4], v, 16), 2);
	ck_assert_uint_eq(v[0], GWB_OP_SET_RESP_HDR);
	ck_assert_uint_eq(v[1], GWB_OP_CORS);
	uint32_t cp = r->phase_pc[3] + 3;
	ck_assert_str_eq(gwb_str(o->t, code[cp + 1], NULL), "https://a, https://b");
	ck_assert_uint_eq(code[cp + 4], 3600);
	ck_assert_uint_eq(code[cp + 5], 1);
	ck_assert_uint_eq(ops(o, r->phase_pc[4], r->phase_pc[5], v, 16), 2);
	ck_assert_uint_eq(v[0], GWB_OP_TAG);
	ck_assert_uint_eq(v[1], GWB_OP_LOG_OFF);
	out_free(o);
}
END_TEST

static sema_key key_of(const char *match_src)
{
	char src[512];
	snprintf(src, sizeof src, "route r { match %s; respond 200; }\n", match_src);
	ast_file f;
	diag_ctx d;
	diag_init(&d);
	ck_assert_int_eq(parse_string("k.gwr", src, strlen(src), &f, &d), 0);
	sema_key k;
	sema_index_key(f.items[0].match, &k);
	/* the strings live in the arena: copy what the tests read */
	static char host[64], path[64];
	snprintf(host, sizeof host, "%.*s", (int)k.hostlen, k.host);
	snprintf(path, sizeof path, "%.*s", (int)k.pathlen, k.path);
	k.host = host;
	k.path = path;
	ast_free(&f);
	diag_fini(&d);
	return k;
}

START_TEST(t_index_key)
{
	sema_key k = key_of("host == \"a.com\" and path ^= \"/x\" and method in (GET, HEAD)");
	ck_assert_int_eq(k.host_kind, GWB_HOST_EXACT);
	ck_assert_str_eq(k.host, "a.com");
	ck_assert_int_eq(k.path_kind, GWB_PATH_PREFIX);
	ck_assert_str_eq(k.path, "/x");
	ck_assert_uint_eq(k.methods, GWB_M_GET | GWB_M_HEAD);
	ck_assert_int_eq(k.exact, 1);

	k = key_of("host == \"*.a.com\" and path == \"/x\" and header(\"H\")");
	ck_assert_int_eq(k.host_kind, GWB_HOST_WILD);
	ck_assert_str_eq(k.host, "a.com");
	ck_assert_int_eq(k.path_kind, GWB_PATH_EXACT);
	ck_assert_int_eq(k.exact, 0);

	/* == preferred to ^=, the other stays in the program */
	k = key_of("path ^= \"/a\" and path == \"/a/b\"");
	ck_assert_int_eq(k.path_kind, GWB_PATH_EXACT);
	ck_assert_str_eq(k.path, "/a/b");
	ck_assert_int_eq(k.exact, 0);

	/* methods intersect */
	k = key_of("method in (GET, POST) and method in (POST, PUT)");
	ck_assert_uint_eq(k.methods, GWB_M_POST);
	ck_assert_int_eq(k.exact, 1);

	/* `or` has no usable conjunct */
	k = key_of("path == \"/a\" or path == \"/b\"");
	ck_assert_int_eq(k.host_kind, GWB_HOST_ANY);
	ck_assert_int_eq(k.path_kind, GWB_PATH_ANY);
	ck_assert_int_eq(k.exact, 0);

	k = key_of("any");
	ck_assert_int_eq(k.host_kind, GWB_HOST_ANY);
	ck_assert_uint_eq(k.methods, GWB_M_ALL);
	ck_assert_int_eq(k.exact, 1);
}
END_TEST

START_TEST(t_examples_compile)
{
	const char *ex[] = { "api/rules.gwr", "legacy/rules.gwr", "multitenant/rules.gwr",
	                     "demo.gwr" };
	for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", EXAMPLES_DIR, ex[i]);
		out *o = compile_file(p);
		ck_assert_uint_gt(gwb_nroutes(o->t), 0);
		out_free(o);
	}
}
END_TEST

START_TEST(t_limits_are_errors)
{
	/* a string longer than the table allows is a diagnostic, not an abort */
	size_t n = GWB_MAX_STRLEN + 10;
	char *src = malloc(n + 100);
	strcpy(src, "route r { match any; respond 200 \"");
	size_t k = strlen(src);
	memset(src + k, 'a', n);
	strcpy(src + k + n, "\"; }\n");
	ast_file f;
	diag_ctx d;
	diag_init(&d);
	parse_string(DATA "/t.gwr", src, strlen(src), &f, &d);
	if (d.nerrors == 0)
		sema_check(&f, &d);
	ck_assert_uint_ge(d.nerrors, 1);
	int found = 0;
	for (size_t i = 0; i < d.n; i++)
		found |= strstr(d.v[i].msg, "too long") != NULL;
	ck_assert_msg(found, "no 'too long' diagnostic");
	ast_free(&f);
	diag_fini(&d);
	free(src);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("emit");
	TCase *t = tcase_create("emit");
	tcase_set_timeout(t, 30);
	tcase_add_test(t, t_doc_example);
	tcase_add_test(t, t_deterministic);
	tcase_add_test(t, t_match_program);
	tcase_add_test(t, t_phases);
	tcase_add_test(t, t_index_key);
	tcase_add_test(t, t_examples_compile);
	tcase_add_test(t, t_limits_are_errors);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}

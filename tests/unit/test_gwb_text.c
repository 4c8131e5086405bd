/*
 * test_gwb_text.c — the text-level helpers of gwb: templates, path
 * normalisation, host/query/cookie reading, CIDR text, CRC-32, and the
 * dump of a small table against its expected text.
 */
#include "config.h"

#include "test_gwb_util.h"

START_TEST(templates_check)
{
	static const struct {
		const char *s;
		int ok;
		size_t off;
		const char *msg;
	} cases[] = {
		{ "plain", 1, 0, NULL },
		{ "", 1, 0, NULL },
		{ "/docs/v2/$1", 1, 0, NULL },
		{ "$0-$9$$", 1, 0, NULL },
		{ "${host}${path}${query}${method}${scheme}${uri}${client_ip}${request_id}", 1, 0, NULL },
		{ "${header.X-Real-IP} ${tls.client_subject}", 1, 0, NULL },
		{ "a$", 0, 1, "'$' at end of template (write '$$' for a dollar)" },
		{ "a$x", 0, 1, "invalid '$x' in template (write '$$' for a dollar)" },
		{ "ab${host", 0, 2, "unterminated '${' in template" },
		{ "${hostname}", 0, 0, "unknown variable '${hostname}' in template" },
		{ "ok ${}", 0, 3, "unknown variable '${}' in template" },
		{ "${header.}", 0, 0, "unknown variable '${header.}' in template" },
		{ "${header.a b}", 0, 0, "unknown variable '${header.a b}' in template" },
		{ "$ ", 0, 0, "invalid '$ ' in template (write '$$' for a dollar)" },
		{ "$\n", 0, 0, "invalid '$' in template (write '$$' for a dollar)" },
		{ "$$$", 0, 2, "'$' at end of template (write '$$' for a dollar)" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t off = 999;
		char err[128] = "";
		int rc = gwb_tpl_check(cases[i].s, strlen(cases[i].s), &off, err, sizeof err);
		ck_assert_msg((rc == 0) == cases[i].ok, "case %zu \"%s\"", i, cases[i].s);
		if (!cases[i].ok) {
			ck_assert_uint_eq(off, cases[i].off);
			ck_assert_str_eq(err, cases[i].msg);
		}
	}
}
END_TEST

static int lookup(void *ctx, enum gwb_tplvar var, const char *name, size_t nl,
                  const char **v, size_t *vl)
{
	(void)ctx;
	switch (var) {
	case GWB_V_HOST: *v = "h.example"; break;
	case GWB_V_METHOD: *v = "GET"; break;
	case GWB_V_HEADER:
		if (nl == 5 && memcmp(name, "X-Env", 5) == 0) {
			*v = "canary";
			break;
		}
		return 0;
	default:
		return 0;
	}
	*vl = strlen(*v);
	return 1;
}

START_TEST(templates_expand)
{
	gwb_match m;
	const char *subj = "/docs/v1/abc";
	char out[64];
	m.ncap = 2;
	for (int i = 0; i < 2 * GWB_MAX_CAPTURES; i++)
		m.cap[i] = (size_t)~0;
	m.cap[0] = 0; m.cap[1] = 12;
	m.cap[2] = 9; m.cap[3] = 12;
	static const struct { const char *t, *want; } cases[] = {
		{ "/v2/$1", "/v2/abc" },
		{ "$0|$2|$9", "/docs/v1/abc||" },
		{ "$$1 costs $$", "$1 costs $" },
		{ "${host}${path}:${header.X-Env}:${header.X-None}", "h.example:canary:" },
		{ "${method} ${unknown", "GET ${unknown" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = gwb_tpl_expand(cases[i].t, strlen(cases[i].t), subj, &m, lookup, NULL, out, sizeof out);
		ck_assert_str_eq(out, cases[i].want);
		ck_assert_uint_eq(n, strlen(cases[i].want));
	}
	/* truncation: like snprintf */
	ck_assert_uint_eq(gwb_tpl_expand("/v2/$1", 6, subj, &m, NULL, NULL, out, 5), 7);
	ck_assert_str_eq(out, "/v2/");
	ck_assert_uint_eq(gwb_tpl_expand("/v2/$1", 6, subj, &m, NULL, NULL, NULL, 0), 7);
	/* no match: captures expand to nothing */
	ck_assert_uint_eq(gwb_tpl_expand("a$1b", 4, NULL, NULL, NULL, NULL, out, sizeof out), 2);
	ck_assert_str_eq(out, "ab");
}
END_TEST

START_TEST(paths)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "/", "/" },
		{ "/a/./b/../c", "/a/c" },
		{ "/a/b/..", "/a/" },
		{ "/a/b/.", "/a/b/" },
		{ "/a/b/", "/a/b/" },
		{ "//x", "/x" },
		{ "/a//b///c", "/a/b/c" },
		{ "/a%2Fb", "/a/b" },
		{ "/a%2fb", "/a/b" },
		{ "/%61%62c", "/abc" },
		{ "/a%2F..%2Fb", "/b" },
		{ "/a/%2e%2e/b", "/b" },
		{ "/a/%2E/b", "/a/b" },
		{ "/.", "/" },
		{ "/a/..", "/" },
		{ "/..a/b..", "/..a/b.." },
		{ "/.a", "/.a" },
		{ "/a b?c", "/a b?c" },
		{ "/%20", "/ " },
		{ "/a/../../", NULL },
		{ "/..", NULL },
		{ "/%2e%2e/", NULL },
		{ "/%2E%2E", NULL },
		{ "/%00", NULL },
		{ "/%", NULL },
		{ "/%4", NULL },
		{ "/%zz", NULL },
		{ "/%4g", NULL },
		{ "a/b", NULL },
		{ "", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[64];
		size_t n = 999;
		int rc = gwb_path_normalize(cases[i].in, strlen(cases[i].in), out, sizeof out, &n);
		if (!cases[i].out) {
			ck_assert_msg(rc == -1, "\"%s\" accepted as \"%s\"", cases[i].in, rc == 0 ? out : "");
			continue;
		}
		ck_assert_msg(rc == 0, "\"%s\" refused", cases[i].in);
		ck_assert_str_eq(out, cases[i].out);
		ck_assert_uint_eq(n, strlen(cases[i].out));
	}
	/* a NUL byte inside, and the output capacity (including the NUL) */
	char out[8];
	size_t n;
	ck_assert_int_eq(gwb_path_normalize("/a\0b", 4, out, sizeof out, &n), -1);
	ck_assert_int_eq(gwb_path_normalize("/abcdef", 7, out, 8, &n), 0);
	ck_assert_int_eq(gwb_path_normalize("/abcdefg", 8, out, 8, &n), -1);
	ck_assert_int_eq(gwb_path_normalize("/abcdef/.", 9, out, 8, &n), -1);
}
END_TEST

START_TEST(request_parts)
{
	char out[64];
	ck_assert_uint_eq(gwb_host_key("a.b:80", 6), 3);
	ck_assert_uint_eq(gwb_host_key("[::1]:80", 8), 5);
	ck_assert_uint_eq(gwb_host_key("[::1", 4), 4);
	ck_assert_uint_eq(gwb_host_key("", 0), 0);
	ck_assert_uint_eq(gwb_host_key("a.b.:80", 7), 3);     /* FQDN's trailing dot */
	ck_assert_uint_eq(gwb_host_key("a.b.", 4), 3);
	ck_assert_uint_eq(gwb_host_key(".", 1), 1);
	ck_assert_uint_eq(gwb_host_normalize("API.Example.com:443", 19, out, sizeof out), 15);
	ck_assert_str_eq(out, "api.example.com");
	ck_assert_uint_eq(gwb_host_normalize("ABCDEF", 6, out, 4), 6);
	ck_assert_str_eq(out, "abc");

	const char *v;
	size_t vl;
	const char *q = "a=1&b&c=x%20y&a=2&d+e=f&&=g";
	ck_assert_int_eq(gwb_query_find(q, strlen(q), "a", 1, &v, &vl), 1);
	ck_assert_uint_eq(vl, 1);
	ck_assert_int_eq(v[0], '1');
	ck_assert_int_eq(gwb_query_find(q, strlen(q), "b", 1, &v, &vl), 1);
	ck_assert_uint_eq(vl, 0);
	ck_assert_int_eq(gwb_query_find(q, strlen(q), "c", 1, &v, &vl), 1);
	ck_assert_int_eq(gwb_form_eq(v, vl, "x y", 3), 1);
	ck_assert_int_eq(gwb_form_eq(v, vl, "x y ", 4), 0);
	ck_assert_int_eq(gwb_form_eq(v, vl, "x ", 2), 0);
	ck_assert_int_eq(gwb_query_find(q, strlen(q), "d e", 3, &v, &vl), 1);
	ck_assert_int_eq(gwb_query_find(q, strlen(q), "", 0, &v, &vl), 1);
	ck_assert_int_eq(v[0], 'g');
	ck_assert_int_eq(gwb_query_find(q, strlen(q), "z", 1, &v, &vl), 0);
	ck_assert_int_eq(gwb_query_find(NULL, 0, "a", 1, &v, &vl), 0);
	ck_assert_uint_eq(gwb_form_decode("a+b%41%4x%", 10, out, sizeof out), 8);
	ck_assert_str_eq(out, "a bA%4x%");

	const char *c = " a=1 ; b = \"two\";c=;d ; e=x=y";
	ck_assert_int_eq(gwb_cookie_find(c, strlen(c), "a", 1, &v, &vl), 1);
	ck_assert_uint_eq(vl, 1);
	ck_assert_int_eq(gwb_cookie_find(c, strlen(c), "b", 1, &v, &vl), 1);
	ck_assert_uint_eq(vl, 3);
	ck_assert_int_eq(memcmp(v, "two", 3), 0);
	ck_assert_int_eq(gwb_cookie_find(c, strlen(c), "c", 1, &v, &vl), 1);
	ck_assert_uint_eq(vl, 0);
	ck_assert_int_eq(gwb_cookie_find(c, strlen(c), "d", 1, &v, &vl), 0);
	ck_assert_int_eq(gwb_cookie_find(c, strlen(c), "e", 1, &v, &vl), 1);
	ck_assert_uint_eq(vl, 3);
	ck_assert_int_eq(gwb_cookie_find(c, strlen(c), "A", 1, &v, &vl), 0);
}
END_TEST

START_TEST(cidrs)
{
	gwb_cidr c;
	char buf[64];
	ck_assert_int_eq(gwb_cidr_parse("10.0.0.0/8", 10, &c, 1), 0);
	ck_assert_uint_eq(c.family, 4);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_int_eq(gwb_cidr_parse("10.1.0.0/8", 10, &c, 1), -1);     /* host bits */
	ck_assert_int_eq(gwb_cidr_parse("10.1.0.0/8", 10, &c, 0), 0);
	gwb_cidr_format(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "10.0.0.0/8");
	ck_assert_int_eq(gwb_cidr_parse("::1", 3, &c, 1), 0);
	gwb_cidr_format(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "::1/128");
	ck_assert_int_eq(gwb_cidr_parse("2001:db8::/33", 13, &c, 1), 0);
	ck_assert_uint_eq(c.prefix, 33);
	ck_assert_int_eq(gwb_cidr_parse("10.0.0.0/33", 11, &c, 0), -1);
	ck_assert_int_eq(gwb_cidr_parse("10.0.0.0/", 9, &c, 0), -1);
	ck_assert_int_eq(gwb_cidr_parse("10.0.0/8", 8, &c, 0), -1);
	ck_assert_int_eq(gwb_cidr_parse("/8", 2, &c, 0), -1);
	ck_assert_int_eq(gwb_cidr_parse("::/0", 4, &c, 1), 0);
	ck_assert_int_eq(gwb_cidr_parse("1.2.3.4/1x", 10, &c, 0), -1);

	uint8_t a[16] = { 10, 200, 3, 4 };
	ck_assert_int_eq(gwb_cidr_parse("10.128.0.0/9", 12, &c, 1), 0);
	ck_assert_int_eq(gwb_cidr_contains(&c, 4, a), 1);
	a[1] = 127;
	ck_assert_int_eq(gwb_cidr_contains(&c, 4, a), 0);
	ck_assert_int_eq(gwb_cidr_contains(&c, 6, a), 0);
	ck_assert_int_eq(gwb_cidr_parse("0.0.0.0/0", 9, &c, 1), 0);
	ck_assert_int_eq(gwb_cidr_contains(&c, 4, a), 1);
	ck_assert_int_eq(gwb_cidr_contains(&c, 0, a), 0);
}
END_TEST

START_TEST(crc)
{
	ck_assert_uint_eq(gwb_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(gwb_crc32(0, "", 0), 0);
	/* incremental = one shot, across the 8-byte stride */
	const char *s = "The quick brown fox jumps over the lazy dog";
	uint32_t one = gwb_crc32(0, s, strlen(s));
	ck_assert_uint_eq(one, 0x414fa339u);
	ck_assert_uint_eq(gwb_crc32(gwb_crc32(0, s, 13), s + 13, strlen(s) - 13), one);
}
END_TEST

START_TEST(ops_table)
{
	ck_assert_str_eq(gwb_ops[GWB_OP_PATH_PREFIX].name, "PATH_PREFIX");
	ck_assert_uint_eq(gwb_ops[GWB_OP_AUTH_JWT].nargs, 8);
	ck_assert_uint_eq(gwb_ops[GWB_OP_PROXY].phase, GWB_PH_CONTENT);
	ck_assert_uint_eq(gwb_ops[GWB_OP_REWRITE_RE].kind[1], GWB_K_TPL);
	ck_assert_ptr_null(gwb_opinfo_get(GWB_OP__COUNT));
	ck_assert_ptr_null(gwb_opinfo_get(0xffffffffu));
	ck_assert_ptr_eq(gwb_opinfo_get(GWB_OP_END), &gwb_ops[0]);
	ck_assert_str_eq(gwb_phase_name(GWB_PH_HFILTER), "header_filter");
	ck_assert_str_eq(gwb_phase_name(GWB_PH_MATCH), "match");
	ck_assert_str_eq(gwb_phase_name(9), "?");
}
END_TEST

static const char dump_want[] =
"gwb 2.0  1384 bytes  checksum %08x\n"
"source_hash 0000000000000000000000000000000000000000000000000000000000000000\n"
"strings 20  regexes 1  cidr_sets 1  upstreams 1  servers 2  routes 3  code 47 words  index 57 words\n"
"\n"
"upstream 0 \"users\"\n"
"  balance hash(header \"X-User\")  keepalive 8  connect_timeout 1000ms  read_timeout 5000ms\n"
"  retries 1 on connect_error,503\n"
"  health_check path \"/healthz\" interval 2000ms timeout 1000ms healthy 2 unhealthy 3 expect 200..399\n"
"  server \"10.0.0.1:80\" weight 1 max_fails 0 fail_timeout 0ms\n"
"  server \"[::1]:81\" weight 2 max_fails 3 fail_timeout 10000ms backup\n"
"\n"
"route 0 \"users\"  rules.gwr:3:1\n"
"  index: host \"api.example.com\"  path ^= \"/v1/\"  methods *\n"
"  match:\n"
"         0  HOST_EQ \"api.example.com\"\n"
"         2  JF -> 6\n"
"         4  PATH_PREFIX \"/v1/\"\n"
"         6  JF -> 11\n"
"         8  HEADER_HAS \"X-Skip\"\n"
"        10  NOT\n"
"        11  END\n"
"  rewrite:\n"
"        12  SET_REQ_HDR \"X-Q\" \"\\\"${host}\\\"\\n\\x01\"\n"
"  access:\n"
"        15  DENY (10.0.0.0/8, 2001:db8::/32)\n"
"  content:\n"
"        17  PROXY upstream:users 0\n"
"  header_filter:\n"
"        20  CORS \"*\" \"GET\" \"\" 600 true\n"
"\n"
"route 1 \"docs\"  rules.gwr:9:5\n"
"  index: host *.\"example.com\"  path *  methods *\n"
"  match:\n"
"        26  HOST_WILD \"example.com\"\n"
"        28  JF -> 32\n"
"        30  ANY\n"
"        31  NOT\n"
"        32  END\n"
"  content:\n"
"        33  REDIRECT 301 \"/d/$1\"\n"
"\n"
"route 2 \"exact\"  rules.gwr:12:1\n"
"  index: host *  path == \"/x\"  methods GET|HEAD  exact\n"
"  match:\n"
"        36  PATH_EQ \"/x\"\n"
"        38  JF -> 42\n"
"        40  METHOD GET|HEAD\n"
"        42  END\n"
"  content:\n"
"        43  RESPOND 204 \"\" \"\"\n"
"\n"
"index: 1 exact hosts (4 slots), 1 wildcard suffixes (4 slots), any-host group yes, 3 trie nodes, 3 candidates\n";

START_TEST(dump_golden)
{
	gwb_builder *b = gwb_builder_new();
	uint32_t a[8];
	gwb_upstream u;
	gwb_server s[2];
	memset(&u, 0, sizeof u);
	memset(s, 0, sizeof s);
	u.name = tu_str(b, "users");
	u.balance = GWB_BAL_HASH;
	u.hash_key = GWB_KEY_HEADER;
	u.hash_name = tu_str(b, "X-User");
	u.keepalive = 8;
	u.connect_timeout_ms = 1000;
	u.read_timeout_ms = 5000;
	u.retries = 1;
	u.retry_on = GWB_RETRY_CONNECT;
	u.retry_status[0] = 503;
	u.flags = GWB_UPS_HEALTH;
	u.hc_path = tu_str(b, "/healthz");
	u.hc_interval_ms = 2000;
	u.hc_timeout_ms = 1000;
	u.hc_healthy = 2;
	u.hc_unhealthy = 3;
	u.hc_expect_lo = 200;
	u.hc_expect_hi = 399;
	s[0].addr = tu_str(b, "10.0.0.1:80");
	s[0].weight = 1;
	s[1].addr = tu_str(b, "[::1]:81");
	s[1].weight = 2;
	s[1].max_fails = 3;
	s[1].fail_timeout_ms = 10000;
	s[1].flags = GWB_SRV_BACKUP;
	gwb_b_upstream(b, &u, s, 2);

	gwb_b_route_begin(b, tu_str(b, "users"), tu_str(b, "rules.gwr"), 3, 1);
	tu_emit(b, X_AND(X_AND(X_HOST("api.example.com"), X_PPRE("/v1/")), X_NOT(X_HHAS("X-Skip"))));
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_REWRITE);
	a[0] = tu_str(b, "X-Q");
	a[1] = tu_str(b, "\"${host}\"\n\x01");
	gwb_b_emit(b, GWB_OP_SET_REQ_HDR, a);
	gwb_b_phase(b, GWB_PH_ACCESS);
	a[0] = tu_cidrs(b, "10.0.0.0/8,2001:db8::/32");
	gwb_b_emit(b, GWB_OP_DENY, a);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 0; a[1] = 0;
	gwb_b_emit(b, GWB_OP_PROXY, a);
	gwb_b_phase(b, GWB_PH_HFILTER);
	a[0] = tu_str(b, "*"); a[1] = tu_str(b, "GET"); a[2] = 0; a[3] = 600; a[4] = 1;
	gwb_b_emit(b, GWB_OP_CORS, a);
	gwb_index_key k = { GWB_HOST_EXACT, GWB_PATH_PREFIX, GWB_M_ALL,
	                    tu_str(b, "api.example.com"), tu_str(b, "/v1/"), 0 };
	gwb_b_route_key(b, &k);
	gwb_b_route_end(b);

	gwb_b_route_begin(b, tu_str(b, "docs"), tu_str(b, "rules.gwr"), 9, 5);
	tu_emit(b, X_AND(X_WILD("example.com"), X_NOT(X_ANY())));
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 301; a[1] = tu_str(b, "/d/$1");
	gwb_b_emit(b, GWB_OP_REDIRECT, a);
	k = (gwb_index_key){ GWB_HOST_WILD, GWB_PATH_ANY, GWB_M_ALL, tu_str(b, "example.com"), 0, 0 };
	gwb_b_route_key(b, &k);
	gwb_b_route_end(b);

	gwb_b_route_begin(b, tu_str(b, "exact"), tu_str(b, "rules.gwr"), 12, 1);
	tu_emit(b, X_AND(X_PEQ("/x"), X_METHOD(GWB_M_GET | GWB_M_HEAD)));
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 204; a[1] = 0; a[2] = 0;
	gwb_b_emit(b, GWB_OP_RESPOND, a);
	k = (gwb_index_key){ GWB_HOST_ANY, GWB_PATH_EXACT, GWB_M_GET | GWB_M_HEAD, 0, tu_str(b, "/x"), 1 };
	gwb_b_route_key(b, &k);
	gwb_b_route_end(b);
	char err[128];
	size_t eo;
	gwb_b_regex(b, "unused", 6, 0, err, sizeof err, &eo);

	size_t n;
	uint8_t *p = tu_finish(b, &n);
	gwb_table *t = tu_load(p, n);
	char *got = NULL;
	size_t gl = 0;
	FILE *f = open_memstream(&got, &gl);
	gwb_dump(t, f);
	fclose(f);
	char want[sizeof dump_want + 16];
	snprintf(want, sizeof want, dump_want, tu_get32(p, 12));
	if (strcmp(got, want) != 0)
		fprintf(stderr, "--- dump:\n%s--- end\n", got);
	ck_assert_str_eq(got, want);
	free(got);
	gwb_free(t);
	free(p);
}
END_TEST

START_TEST(regex_prefix)
{
	static const struct {
		const char *re;
		uint32_t flags;
		const char *prefix;
		int whole;
	} cases[] = {
		{ "^/docs/v1/(.*)$", 0, "/docs/v1/", 0 },
		{ "^/docs/", 0, "/docs/", 1 },
		{ "^/a\\.b\\/c", 0, "/a.b/c", 1 },
		{ "^/ab?c", 0, "/a", 0 },
		{ "^/ab*", 0, "/a", 0 },
		{ "^/ab{2}", 0, "/a", 0 },
		{ "^/ab+c", 0, "/ab", 0 },
		{ "^/a\\d", 0, "/a", 0 },
		{ "^/a.b", 0, "/a", 0 },
		{ "^/a[bc]", 0, "/a", 0 },
		{ "^/x$", 0, "/x", 0 },
		{ "^/a|/b", 0, "", 0 },
		{ "^/(a|b)", 0, "", 0 },
		{ "/docs", 0, "", 0 },
		{ "^/docs", GWB_RE_CASELESS, "", 0 },
		{ "^(?i)/docs", 0, "", 0 },
		{ "^", 0, "", 1 },
		{ "", 0, "", 0 },
		{ "^/a\\", 0, "/a", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[64];
		int whole = -1;
		size_t n = gwb_regex_prefix(cases[i].re, strlen(cases[i].re), cases[i].flags, out, sizeof out, &whole);
		ck_assert_msg(n == strlen(cases[i].prefix) && memcmp(out, cases[i].prefix, n) == 0,
		              "%s: got \"%.*s\"", cases[i].re, (int)n, out);
		ck_assert_msg(whole == cases[i].whole, "%s: whole %d", cases[i].re, whole);
	}
	char small[3];
	int whole;
	ck_assert_uint_eq(gwb_regex_prefix("^/abcdef", 8, 0, small, sizeof small, &whole), 3);
	ck_assert_int_eq(whole, 0);
	ck_assert_int_eq(memcmp(small, "/ab", 3), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("gwb_text");
	TCase *tc = tcase_create("text");
	tcase_add_test(tc, templates_check);
	tcase_add_test(tc, templates_expand);
	tcase_add_test(tc, paths);
	tcase_add_test(tc, request_parts);
	tcase_add_test(tc, cidrs);
	tcase_add_test(tc, crc);
	tcase_add_test(tc, ops_table);
	tcase_add_test(tc, regex_prefix);
	tcase_add_test(tc, dump_golden);
	suite_add_tcase(s, tc);
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

/*
 * test_gwb_match.c — the matcher: every kind of test in match programs,
 * first-match order across index groups, and a randomized self-check of
 * gwb_match_request (index) against running every route's program in
 * order (set GWB_SEED to replay a failure).
 */
#include "config.h"

#include <time.h>
#include "test_gwb_util.h"

static gwb_table *T;
static gwb_scratch *S;
static uint8_t *Tbytes;

static void load_built(gwb_builder *b)
{
	size_t n;
	Tbytes = tu_finish(b, &n);
	T = tu_load(Tbytes, n);
	S = gwb_scratch_new();
	ck_assert_ptr_nonnull(S);
}

static void unload(void)
{
	gwb_free(T);
	gwb_scratch_free(S);
	free(Tbytes);
	T = NULL;
	S = NULL;
	Tbytes = NULL;
	tx_used = 0;
}

/* route matched by the index, checked against the linear reference */
static uint32_t M(tu_req *r, gwb_match *m)
{
	gwb_match lm;
	uint32_t got = gwb_match_request(T, &r->rq, m, S);
	uint32_t want = tu_linear(T, &r->rq, &lm, S);
	ck_assert_uint_eq(got, want);
	ck_assert_uint_eq(m->route, got);
	return got;
}

static uint32_t match(const char *method, const char *host, const char *path)
{
	tu_req r;
	gwb_match m;
	tu_req_init(&r, method, host, path, "", "");
	return M(&r, &m);
}

START_TEST(hosts)
{
	gwb_builder *b = gwb_builder_new();
	tu_route(b, "api", X_HOST("api.example.com"), 0);
	tu_route(b, "wild", X_WILD("example.com"), 0);
	tu_route(b, "v6", X_HOST("[::1]"), 0);
	tu_route(b, "empty", X_HOST(""), 0);
	tu_route(b, "deep", X_WILD("b.example.com"), 0);
	load_built(b);

	ck_assert_uint_eq(match("GET", "api.example.com", "/"), 0);
	ck_assert_uint_eq(match("GET", "API.Example.COM", "/"), 0);
	ck_assert_uint_eq(match("GET", "api.example.com:8080", "/"), 0);
	ck_assert_uint_eq(match("GET", "a.example.com", "/"), 1);
	ck_assert_uint_eq(match("GET", "a.b.example.com", "/"), 1);  /* route 1 before 4 */
	ck_assert_uint_eq(match("GET", "A.B.EXAMPLE.COM:1", "/"), 1);
	ck_assert_uint_eq(match("GET", "example.com", "/"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "xexample.com", "/"), GWB_NONE);
	ck_assert_uint_eq(match("GET", ".example.com", "/"), GWB_NONE);  /* empty label */
	ck_assert_uint_eq(match("GET", "[::1]:8080", "/"), 2);
	ck_assert_uint_eq(match("GET", "[::1]", "/"), 2);
	ck_assert_uint_eq(match("GET", "[::2]:8080", "/"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "", "/"), 3);
	ck_assert_uint_eq(match("GET", ":80", "/"), 3);
	ck_assert_uint_eq(match("GET", NULL, "/"), 3);
	ck_assert_uint_eq(match("GET", "b.example.com", "/"), 1);
	ck_assert_uint_eq(match("GET", "example.org", "/"), GWB_NONE);
	unload();

	/* a wildcard-only table: the suffix needs a label in front */
	b = gwb_builder_new();
	tu_route(b, "deep", X_WILD("b.example.com"), 0);
	load_built(b);
	ck_assert_uint_eq(match("GET", "a.b.example.com", "/"), 0);
	ck_assert_uint_eq(match("GET", "b.example.com", "/"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "ab.example.com", "/"), GWB_NONE);
	unload();
}
END_TEST

START_TEST(paths)
{
	gwb_builder *b = gwb_builder_new();
	tu_route(b, "eq", X_PEQ("/healthz"), 0);
	tu_route(b, "pre", X_PPRE("/v1/users/"), 0);
	tu_route(b, "pre2", X_PPRE("/v1/"), 0);
	tu_route(b, "re", X_RE("^/docs/v1/(\\w+)/(\\d+)?$", 0), 0);
	tu_route(b, "rei", X_RE("^/CASE/(x)", GWB_RE_CASELESS), 0);
	tu_route(b, "eqslash", X_PEQ("/"), 0);
	load_built(b);

	ck_assert_uint_eq(match("GET", "h", "/healthz"), 0);
	ck_assert_uint_eq(match("GET", "h", "/healthz/"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "h", "/healthy"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "h", "/v1/users/42"), 1);
	ck_assert_uint_eq(match("GET", "h", "/v1/users/"), 1);
	ck_assert_uint_eq(match("GET", "h", "/v1/users"), 2);
	ck_assert_uint_eq(match("GET", "h", "/v1/"), 2);
	ck_assert_uint_eq(match("GET", "h", "/v1"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "h", "/"), 5);
	ck_assert_uint_eq(match("GET", "h", ""), GWB_NONE);

	tu_req r;
	gwb_match m;
	tu_req_init(&r, "GET", "h", "/docs/v1/abc/12", "", "");
	ck_assert_uint_eq(M(&r, &m), 3);
	ck_assert_int_eq(m.ncap, 3);
	ck_assert_uint_eq(m.cap[0], 0);
	ck_assert_uint_eq(m.cap[1], 15);
	ck_assert_uint_eq(m.cap[2], 9);
	ck_assert_uint_eq(m.cap[3], 12);
	ck_assert_uint_eq(m.cap[4], 13);
	ck_assert_uint_eq(m.cap[5], 15);
	ck_assert_uint_eq(m.cap[6], (size_t)~0);
	char out[64];
	ck_assert_uint_eq(gwb_tpl_expand("/d/$1-$2$3$$", 12, r.rq.path, &m, NULL, NULL, out, sizeof out), 10);
	ck_assert_str_eq(out, "/d/abc-12$");

	/* an unset group in the middle */
	tu_req_init(&r, "GET", "h", "/docs/v1/abc/", "", "");
	ck_assert_uint_eq(M(&r, &m), 3);
	ck_assert_int_eq(m.ncap, 2);
	ck_assert_uint_eq(m.cap[4], (size_t)~0);

	tu_req_init(&r, "GET", "h", "/case/X/y", "", "");
	ck_assert_uint_eq(M(&r, &m), 4);
	ck_assert_int_eq(m.ncap, 2);

	/* a winner without regex has no captures */
	tu_req_init(&r, "GET", "h", "/healthz", "", "");
	ck_assert_uint_eq(M(&r, &m), 0);
	ck_assert_int_eq(m.ncap, 0);
	ck_assert_uint_eq(m.cap[0], (size_t)~0);
	unload();
}
END_TEST

START_TEST(methods)
{
	gwb_builder *b = gwb_builder_new();
	tu_route(b, "get", X_AND(X_PPRE("/a"), X_METHOD(GWB_M_GET | GWB_M_HEAD)), 0);
	tu_route(b, "post", X_AND(X_PPRE("/a"), X_METHOD(GWB_M_POST)), 0);
	tu_route(b, "other", X_METHOD(GWB_M_OTHER), 0);
	tu_route(b, "notget", X_NOT(X_METHOD(GWB_M_GET)), 0);
	load_built(b);
	ck_assert_uint_eq(match("GET", "h", "/a"), 0);
	ck_assert_uint_eq(match("HEAD", "h", "/a"), 0);
	ck_assert_uint_eq(match("POST", "h", "/a"), 1);
	ck_assert_uint_eq(match("PROPFIND", "h", "/a"), 2);
	ck_assert_uint_eq(match("get", "h", "/a"), 2);
	ck_assert_uint_eq(match("PUT", "h", "/a"), 3);
	ck_assert_uint_eq(match("GET", "h", "/b"), GWB_NONE);
	ck_assert_uint_eq(gwb_method_bit("DELETE", 6), GWB_M_DELETE);
	ck_assert_uint_eq(gwb_method_bit("TRACE", 5), GWB_M_TRACE);
	ck_assert_uint_eq(gwb_method_bit("GETX", 4), GWB_M_OTHER);
	ck_assert_uint_eq(gwb_method_bit("GE", 2), GWB_M_OTHER);
	/* every name, and what is near them: the bytes are read as one word */
	static const struct { const char *m; size_t n; uint32_t bit; } mb[] = {
		{ "GET", 3, GWB_M_GET }, { "HEAD", 4, GWB_M_HEAD }, { "POST", 4, GWB_M_POST },
		{ "PUT", 3, GWB_M_PUT }, { "DELETE", 6, GWB_M_DELETE }, { "PATCH", 5, GWB_M_PATCH },
		{ "OPTIONS", 7, GWB_M_OPTIONS }, { "CONNECT", 7, GWB_M_CONNECT },
		{ "TRACE", 5, GWB_M_TRACE }, { "GET", 2, GWB_M_OTHER }, { "GET\0", 4, GWB_M_OTHER },
		{ "\0", 1, GWB_M_OTHER }, { "", 0, GWB_M_OTHER }, { "OPTIONSX", 8, GWB_M_OTHER },
		{ "Get", 3, GWB_M_OTHER }, { "PUTS", 4, GWB_M_OTHER }, { "G", 1, GWB_M_OTHER },
		{ "CONNECTED", 9, GWB_M_OTHER }, { "DELETE", 5, GWB_M_OTHER },
	};
	for (size_t i = 0; i < sizeof mb / sizeof mb[0]; i++) {
		/* from the end of a buffer, so reading past the name would show
		 * under ASan */
		char *c = malloc(mb[i].n ? mb[i].n : 1);
		memcpy(c, mb[i].m, mb[i].n);
		ck_assert_msg(gwb_method_bit(c, mb[i].n) == mb[i].bit, "method %zu", i);
		free(c);
	}
	unload();
}
END_TEST

/* A request whose strings sit at the end of their own allocations, so
 * that reading past them shows under ASan. */
typedef struct heapreq {
	tu_req r;
	char *host, *path;
} heapreq;

static void hr_init(heapreq *h, const char *method, const char *host, size_t hl,
                    const char *path, size_t pl)
{
	h->host = malloc(hl ? hl : 1);
	h->path = malloc(pl ? pl : 1);
	memcpy(h->host, host, hl);
	memcpy(h->path, path, pl);
	tu_req_init(&h->r, method, "", "", "", "");
	h->r.rq.host = h->host;
	h->r.rq.host_len = hl;
	h->r.rq.path = h->path;
	h->r.rq.path_len = pl;
}

static uint32_t hr_match(const char *host, size_t hl, const char *path, size_t pl)
{
	heapreq h;
	gwb_match m;
	hr_init(&h, "GET", host, hl, path, pl);
	uint32_t got = M(&h.r, &m);
	free(h.host);
	free(h.path);
	return got;
}

/* one route whose key is (host or any, path of given bytes) */
static void raw_route(gwb_builder *b, const char *host, const char *path, size_t pl, int exact)
{
	uint32_t a[3];
	static uint32_t line = 1;
	gwb_b_route_begin(b, tu_str(b, "raw"), tu_str(b, "raw.gwr"), line++, 1);
	uint32_t ps = gwb_b_str(b, path, pl), j = GWB_NONE;
	if (host) {
		a[0] = tu_str(b, host);
		gwb_b_emit(b, GWB_OP_HOST_EQ, a);
		a[0] = 0;
		j = gwb_b_emit(b, GWB_OP_JF, a);
	}
	a[0] = ps;
	gwb_b_emit(b, exact ? GWB_OP_PATH_EQ : GWB_OP_PATH_PREFIX, a);
	if (j != GWB_NONE)
		gwb_b_patch(b, j + 1, gwb_b_pc(b));
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 204;
	a[1] = a[2] = 0;
	gwb_b_emit(b, GWB_OP_RESPOND, a);
	gwb_index_key k = { host ? GWB_HOST_EXACT : GWB_HOST_ANY,
	                    exact ? GWB_PATH_EXACT : GWB_PATH_PREFIX, GWB_M_ALL,
	                    host ? tu_str(b, host) : 0, ps, 1 };
	gwb_b_route_key(b, &k);
	gwb_b_route_end(b);
}

/* the shapes of the index that small tables never take: labels longer
 * than a node says (cut), a node with all 256 children, a group larger
 * than 16-bit offsets reach, paths with NUL bytes; and hosts of every
 * length around the word size, with and without a port */
START_TEST(index_shapes)
{
	char p[1200];
	gwb_builder *b = gwb_builder_new();
	memset(p, 'a', sizeof p);
	p[0] = '/';
	raw_route(b, NULL, p, 600, 0);                 /* 0: one 600-byte label */
	p[300] = 'b';
	raw_route(b, NULL, p, 520, 1);                 /* 1: splits it at 300 */
	p[300] = 'a';
	raw_route(b, NULL, p, 256, 1);                 /* 2: ends inside the cut */
	for (int c = 0; c < 256; c++) {                /* 3..258: "/x" + every byte */
		char q[3] = { '/', 'x', (char)c };
		raw_route(b, NULL, q, 3, 0);
	}
	load_built(b);
	ck_assert_uint_eq(hr_match("h", 1, p, 600), 0);
	ck_assert_uint_eq(hr_match("h", 1, p, 1200), 0);
	ck_assert_uint_eq(hr_match("h", 1, p, 599), GWB_NONE);
	ck_assert_uint_eq(hr_match("h", 1, p, 256), 2);
	ck_assert_uint_eq(hr_match("h", 1, p, 255), GWB_NONE);
	ck_assert_uint_eq(hr_match("h", 1, p, 257), GWB_NONE);
	p[300] = 'b';
	ck_assert_uint_eq(hr_match("h", 1, p, 520), 1);
	ck_assert_uint_eq(hr_match("h", 1, p, 521), GWB_NONE);
	ck_assert_uint_eq(hr_match("h", 1, p, 600), GWB_NONE);
	p[300] = 'a';
	p[599] = 'z';
	ck_assert_uint_eq(hr_match("h", 1, p, 600), GWB_NONE);
	p[599] = 'a';
	for (int c = 0; c < 256; c++) {
		char q[4] = { '/', 'x', (char)c, 'y' };
		ck_assert_uint_eq(hr_match("h", 1, q, 3), 3 + (uint32_t)c);
		ck_assert_uint_eq(hr_match("h", 1, q, 4), 3 + (uint32_t)c);
	}
	ck_assert_uint_eq(hr_match("h", 1, "/x", 2), GWB_NONE);
	unload();

	/* one host with ~80 KiB of paths: a group with 32-bit offsets */
	b = gwb_builder_new();
	for (int i = 0; i < 700; i++) {
		snprintf(p, sizeof p, "/%03d/%0100d/", i, i);
		raw_route(b, "big.example", p, strlen(p), i % 2);
	}
	raw_route(b, "other.example", "/", 1, 0);
	load_built(b);
	for (int i = 0; i < 700; i += 7) {
		snprintf(p, sizeof p, "/%03d/%0100d/", i, i);
		size_t l = strlen(p);
		ck_assert_uint_eq(hr_match("big.example", 11, p, l), (uint32_t)i);
		ck_assert_uint_eq(hr_match("BIG.example:8", 13, p, l), (uint32_t)i);
		p[l] = 'x';
		ck_assert_uint_eq(hr_match("big.example", 11, p, l + 1), i % 2 ? GWB_NONE : (uint32_t)i);
		ck_assert_uint_eq(hr_match("big.example", 11, p, l - 1), GWB_NONE);
	}
	ck_assert_uint_eq(hr_match("other.example", 13, "/a", 2), 700);
	unload();

	/* hosts of 1..40 bytes: the host is read a word at a time */
	b = gwb_builder_new();
	char h[64];
	for (int l = 1; l <= 40; l++) {
		for (int i = 0; i < l; i++)
			h[i] = (char)('a' + (i * 7 + l) % 26);
		h[l] = 0;
		raw_route(b, h, "/", 1, 0);
	}
	load_built(b);
	for (int l = 1; l <= 40; l++) {
		for (int i = 0; i < l; i++)
			h[i] = (char)('a' + (i * 7 + l) % 26);
		ck_assert_uint_eq(hr_match(h, (size_t)l, "/", 1), (uint32_t)l - 1);
		memcpy(h + l, ":8080", 5);
		ck_assert_uint_eq(hr_match(h, (size_t)l + 5, "/", 1), (uint32_t)l - 1);
		ck_assert_uint_eq(hr_match(h, (size_t)l + 1, "/", 1), (uint32_t)l - 1);
		h[l] = 'q';
		ck_assert_uint_eq(hr_match(h, (size_t)l + 1, "/", 1), GWB_NONE);
		h[0] = (char)(h[0] - 32);                  /* uppercase */
		ck_assert_uint_eq(hr_match(h, (size_t)l, "/", 1), (uint32_t)l - 1);
		ck_assert_uint_eq(hr_match(h, (size_t)l - 1, "/", 1), GWB_NONE);
	}
	unload();
}
END_TEST

START_TEST(predicates)
{
	gwb_builder *b = gwb_builder_new();
	tu_route(b, "heq", X_HEQ("X-Env", "canary"), 0);
	tu_route(b, "hhas", X_HHAS("X-Debug"), 0);
	tu_route(b, "qeq", X_QEQ("v", "2 x"), 0);
	tu_route(b, "qhas", X_QHAS("flag"), 0);
	tu_route(b, "ceq", X_CEQ("beta", "1"), 0);
	tu_route(b, "chas", X_CHAS("sid"), 0);
	tu_route(b, "ip4", X_IP("10.0.0.0/8,192.168.1.0/24"), 0);
	tu_route(b, "ip6", X_IP("2001:db8::/32,::1/128"), 0);
	load_built(b);

	tu_req r;
	gwb_match m;
	tu_req_init(&r, "GET", "h", "/", "", "");
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);
	tu_req_hdr(&r, "x-env", "canary");
	ck_assert_uint_eq(M(&r, &m), 0);
	tu_req_init(&r, "GET", "h", "/", "", "");
	tu_req_hdr(&r, "X-Env", "Canary");       /* values are case-sensitive */
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);
	tu_req_hdr(&r, "X-Debug", "");
	ck_assert_uint_eq(M(&r, &m), 1);

	tu_req_init(&r, "GET", "h", "/", "a=1&v=2+x", "");
	ck_assert_uint_eq(M(&r, &m), 2);
	tu_req_init(&r, "GET", "h", "/", "v=2%20x", "");
	ck_assert_uint_eq(M(&r, &m), 2);
	tu_req_init(&r, "GET", "h", "/", "v=3&v=2+x", "");      /* first one counts */
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);
	tu_req_init(&r, "GET", "h", "/", "%76=2+x", "");        /* name decoded */
	ck_assert_uint_eq(M(&r, &m), 2);
	tu_req_init(&r, "GET", "h", "/", "x=1&flag", "");
	ck_assert_uint_eq(M(&r, &m), 3);
	tu_req_init(&r, "GET", "h", "/", "flag=&x", "");
	ck_assert_uint_eq(M(&r, &m), 3);
	tu_req_init(&r, "GET", "h", "/", "flags=1", "");
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);

	tu_req_init(&r, "GET", "h", "/", "", "");
	tu_req_hdr(&r, "Cookie", "a=b; beta=1");
	ck_assert_uint_eq(M(&r, &m), 4);
	tu_req_init(&r, "GET", "h", "/", "", "");
	tu_req_hdr(&r, "Cookie", "beta=\"1\"");
	ck_assert_uint_eq(M(&r, &m), 4);
	tu_req_init(&r, "GET", "h", "/", "", "");
	tu_req_hdr(&r, "Cookie", "beta=10;sid");
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);               /* "sid" has no '=' */
	tu_req_init(&r, "GET", "h", "/", "", "");
	tu_req_hdr(&r, "Cookie", "beta=10; sid=");
	ck_assert_uint_eq(M(&r, &m), 5);

	tu_req_init(&r, "GET", "h", "/", "", "10.2.3.4");
	ck_assert_uint_eq(M(&r, &m), 6);
	tu_req_init(&r, "GET", "h", "/", "", "192.168.1.77");
	ck_assert_uint_eq(M(&r, &m), 6);
	tu_req_init(&r, "GET", "h", "/", "", "192.168.2.1");
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);
	tu_req_init(&r, "GET", "h", "/", "", "::1");
	ck_assert_uint_eq(M(&r, &m), 7);
	tu_req_init(&r, "GET", "h", "/", "", "2001:db8:ffff::1");
	ck_assert_uint_eq(M(&r, &m), 7);
	tu_req_init(&r, "GET", "h", "/", "", "2001:db9::1");
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);
	tu_req_init(&r, "GET", "h", "/", "", "");               /* unknown address */
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);
	unload();
}
END_TEST

START_TEST(boolean)
{
	gwb_builder *b = gwb_builder_new();
	/* (host a or host b) and not path ^= /private */
	tu_route(b, "r0", X_AND(X_OR(X_HOST("a.test"), X_HOST("b.test")), X_NOT(X_PPRE("/private"))), 0);
	/* header or (query and cookie) */
	tu_route(b, "r1", X_OR(X_HHAS("X-A"), X_AND(X_QHAS("q"), X_CHAS("c"))), 0);
	tu_route(b, "r2", X_NOT(X_NOT(X_PEQ("/nn"))), 0);
	load_built(b);
	ck_assert_uint_eq(match("GET", "a.test", "/x"), 0);
	ck_assert_uint_eq(match("GET", "b.test", "/x"), 0);
	ck_assert_uint_eq(match("GET", "b.test", "/private/x"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "c.test", "/x"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "c.test", "/nn"), 2);
	tu_req r;
	gwb_match m;
	tu_req_init(&r, "GET", "c", "/", "q=1", "");
	ck_assert_uint_eq(M(&r, &m), GWB_NONE);
	tu_req_hdr(&r, "Cookie", "c=1");
	ck_assert_uint_eq(M(&r, &m), 1);
	tu_req_init(&r, "GET", "c", "/", "", "");
	tu_req_hdr(&r, "X-A", "1");
	ck_assert_uint_eq(M(&r, &m), 1);
	unload();
}
END_TEST

START_TEST(first_match_across_groups)
{
	gwb_builder *b = gwb_builder_new();
	tu_route(b, "anyre", X_RE("^/x/", 0), 0);                  /* any host, any path */
	tu_route(b, "exact", X_HOST("a.example.com"), 0);
	tu_route(b, "wild", X_AND(X_WILD("example.com"), X_PPRE("/w")), 0);
	tu_route(b, "exact2", X_AND(X_HOST("a.example.com"), X_PEQ("/w/1")), 0);
	tu_route(b, "any", X_ANY(), 0);
	load_built(b);
	ck_assert_uint_eq(match("GET", "a.example.com", "/x/1"), 0);
	ck_assert_uint_eq(match("GET", "a.example.com", "/y"), 1);
	ck_assert_uint_eq(match("GET", "a.example.com", "/w/1"), 1);
	ck_assert_uint_eq(match("GET", "b.example.com", "/w/1"), 2);
	ck_assert_uint_eq(match("GET", "b.example.com", "/x/1"), 0);
	ck_assert_uint_eq(match("GET", "other", "/w"), 4);
	unload();

	/* the same routes, the exact host first: it wins over the regex */
	b = gwb_builder_new();
	tu_route(b, "exact", X_HOST("a.example.com"), 0);
	tu_route(b, "anyre", X_RE("^/x/", 0), 0);
	load_built(b);
	ck_assert_uint_eq(match("GET", "a.example.com", "/x/1"), 0);
	ck_assert_uint_eq(match("GET", "b.example.com", "/x/1"), 1);
	unload();

	/* routes without a key are filed under (any, "") and still ordered */
	b = gwb_builder_new();
	tu_route(b, "k0", X_AND(X_HOST("h"), X_PEQ("/a")), 0);
	tu_route(b, "nokey", X_PEQ("/a"), 1);
	tu_route(b, "k2", X_PPRE("/"), 0);
	load_built(b);
	ck_assert_uint_eq(match("GET", "h", "/a"), 0);
	ck_assert_uint_eq(match("GET", "g", "/a"), 1);
	ck_assert_uint_eq(match("GET", "g", "/b"), 2);
	unload();
}
END_TEST

static struct {
	uint32_t pc[16];
	int res[16];
	int n;
} TR;

static void on_trace(void *ctx, uint32_t pc, int res)
{
	(void)ctx;
	ck_assert_int_lt(TR.n, 16);
	TR.pc[TR.n] = pc;
	TR.res[TR.n++] = res;
}

START_TEST(trace)
{
	gwb_builder *b = gwb_builder_new();
	/* HOST_EQ "a" (0), JF (2), PATH_EQ "/x" (4), END (6) */
	tu_route(b, "r0", X_AND(X_HOST("a"), X_PEQ("/x")), 0);
	load_built(b);
	tu_req r;
	gwb_match m;
	tu_req_init(&r, "GET", "a", "/y", "", "");
	TR.n = 0;
	ck_assert_int_eq(gwb_eval_route(T, 0, &r.rq, &m, S, on_trace, NULL), 0);
	ck_assert_int_eq(TR.n, 2);
	ck_assert_uint_eq(TR.pc[0], 0);
	ck_assert_int_eq(TR.res[0], 1);
	ck_assert_uint_eq(TR.pc[1], 4);
	ck_assert_int_eq(TR.res[1], 0);
	tu_req_init(&r, "GET", "b", "/x", "", "");
	TR.n = 0;
	ck_assert_int_eq(gwb_eval_route(T, 0, &r.rq, &m, S, on_trace, NULL), 0);
	ck_assert_int_eq(TR.n, 1);
	tu_req_init(&r, "GET", "A:1", "/x", "", "");
	TR.n = 0;
	ck_assert_int_eq(gwb_eval_route(T, 0, &r.rq, &m, S, on_trace, NULL), 1);
	ck_assert_uint_eq(m.route, 0);
	ck_assert_int_eq(TR.n, 2);
	ck_assert_int_eq(gwb_eval_route(T, 1, &r.rq, &m, S, NULL, NULL), 0);  /* no such route */

	char buf[64];
	ck_assert_int_eq(gwb_disasm_insn(T, 4, buf, sizeof buf), 2);
	ck_assert_str_eq(buf, "PATH_EQ \"/x\"");
	ck_assert_int_eq(gwb_disasm_insn(T, 2, buf, sizeof buf), 2);
	ck_assert_str_eq(buf, "JF -> 6");
	ck_assert_int_eq(gwb_disasm_insn(T, 6, buf, 4), 1);
	ck_assert_str_eq(buf, "END");
	ck_assert_int_eq(gwb_disasm_insn(T, 4, buf, 5), 2);
	ck_assert_str_eq(buf, "PATH");
	ck_assert_int_eq(gwb_disasm_insn(T, 9999, buf, sizeof buf), -1);
	unload();
}
END_TEST

/* ------------------------------------------------------ randomized self-check */
static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)((rng_state >> 33) % n);
}

static const char *R_HOSTS[] = { "a.example.com", "b.example.com", "example.com", "x.org", "c.b.example.com" };
static const char *R_WILDS[] = { "example.com", "b.example.com", "org", "com" };
static const char *R_PATHS[] = { "/", "/a", "/a/", "/a/b", "/ab", "/b/c", "/a/b/c", "",
                                 "/a/b/", "/a/b/c/", "/a/bc/", "/b/", "/a//" };
#define NRP (sizeof R_PATHS / sizeof R_PATHS[0])
static const char *R_RES[] = { "^/a/(\\w+)$", "b", "^/(a|b)/?(c)?", "^$" };
static const char *R_CIDRS[] = { "10.0.0.0/8", "10.1.0.0/16,::1/128", "2001:db8::/32", "0.0.0.0/0" };

static tx *rnd_expr(int depth)
{
	uint32_t k = rnd(depth > 0 ? 17 : 14);
	switch (k) {
	case 0: return X_HOST(R_HOSTS[rnd(5)]);
	case 1: return X_WILD(R_WILDS[rnd(4)]);
	case 2: return X_PEQ(R_PATHS[rnd(NRP)]);
	case 3: return X_PPRE(R_PATHS[rnd(NRP)]);
	case 4: return X_RE(R_RES[rnd(4)], rnd(2));
	case 5: return X_METHOD(1u + rnd(GWB_M_ALL));
	case 6: return X_HEQ("X-A", rnd(2) ? "1" : "2");
	case 7: return X_HHAS("X-B");
	case 8: return X_QEQ("q", rnd(2) ? "1" : "a b");
	case 9: return X_QHAS("f");
	case 10: return X_CEQ("c", "1");
	case 11: return X_CHAS("s");
	case 12: return X_IP(R_CIDRS[rnd(4)]);
	case 13: return X_ANY();
	case 14: return X_NOT(rnd_expr(depth - 1));
	case 15: return X_OR(rnd_expr(depth - 1), rnd_expr(depth - 1));
	default: return X_AND(rnd_expr(depth - 1), rnd_expr(depth - 1));
	}
}

/* mostly conjunctions that start with host/path/method, like real rules */
static tx *rnd_route_expr(void)
{
	tx *e = rnd_expr(2);
	if (rnd(3))
		e = X_AND(X_PPRE(R_PATHS[rnd(NRP)]), e);
	if (rnd(2))
		e = X_AND(rnd(2) ? X_HOST(R_HOSTS[rnd(5)]) : X_WILD(R_WILDS[rnd(4)]), e);
	if (rnd(3) == 0)
		e = X_AND(X_METHOD(GWB_M_GET | GWB_M_POST), e);
	if (rnd(4) == 0)
		e = X_AND(rnd(2) ? X_PEQ(R_PATHS[rnd(NRP)]) : X_PPRE(R_PATHS[rnd(NRP)]), X_HOST(R_HOSTS[rnd(5)]));
	return e;
}

static const char *Q_HOSTS[] = { "a.example.com", "B.Example.com:8080", "example.com", "x.org",
                                 "c.b.example.com", "d.c.b.example.com", "y.org", "", "com", "[::1]:80",
                                 ".example.com", "a.example.com.", "X.ORG:1" };
static const char *Q_PATHS[] = { "/", "/a", "/a/", "/a/b", "/ab", "/b/c", "/a/b/c", "", "/a/bc", "/b", "/c",
                                 "/a/b/c/d", "/a/b/", "/a/b/c/", "/a/bc/d", "/b/c/d/e", "/a//", "/a//b" };
#define NQP (sizeof Q_PATHS / sizeof Q_PATHS[0])
static const char *Q_METHODS[] = { "GET", "POST", "PUT", "DELETE", "BREW" };
static const char *Q_QUERIES[] = { "", "q=1", "q=a+b&f", "f=1&q=2", "x" };
static const char *Q_IPS[] = { "", "10.1.2.3", "10.2.0.1", "192.0.2.1", "::1", "2001:db8::5" };

START_TEST(random_self_check)
{
	const char *env = getenv("GWB_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	unsigned combos = 0, hits = 0;
	printf("random_self_check: seed %llu (GWB_SEED=... to replay)\n", (unsigned long long)seed);
	rng_state = seed;
	for (int round = 0; round < 400; round++) {
		gwb_builder *b = gwb_builder_new();
		int nr = 1 + (int)rnd(40);
		char names[40][8];
		for (int i = 0; i < nr; i++) {
			snprintf(names[i], sizeof names[i], "r%d", i);
			tu_route(b, names[i], rnd_route_expr(), rnd(10) == 0);
		}
		load_built(b);
		for (int q = 0; q < 40; q++) {
			tu_req r;
			gwb_match m, lm;
			tu_req_init(&r, Q_METHODS[rnd(5)], Q_HOSTS[rnd(13)], Q_PATHS[rnd(NQP)],
			            Q_QUERIES[rnd(5)], Q_IPS[rnd(6)]);
			if (rnd(2))
				tu_req_hdr(&r, "X-A", rnd(2) ? "1" : "2");
			if (rnd(2))
				tu_req_hdr(&r, "X-B", "");
			if (rnd(2))
				tu_req_hdr(&r, "Cookie", rnd(2) ? "c=1; s=2" : "s");
			uint32_t got = gwb_match_request(T, &r.rq, &m, S);
			uint32_t want = tu_linear(T, &r.rq, &lm, S);
			ck_assert_msg(got == want, "seed %llu round %d query %d: index says %u, linear %u",
			              (unsigned long long)seed, round, q, got, want);
			if (got != GWB_NONE) {
				hits++;
				ck_assert_msg(m.ncap == lm.ncap && memcmp(m.cap, lm.cap, sizeof m.cap) == 0,
				              "seed %llu round %d query %d: captures differ",
				              (unsigned long long)seed, round, q);
			}
			combos++;
		}
		unload();
	}
	printf("random_self_check: %u combinations, %u matched\n", combos, hits);
	ck_assert_uint_ge(combos, 10000);
	ck_assert_uint_gt(hits, combos / 10);
}
END_TEST

/* dump line "  index: ..." of route r */
static char *index_line(uint32_t r, char *buf, size_t cap)
{
	char *d = NULL, want[32];
	size_t dl = 0;
	FILE *f = open_memstream(&d, &dl);
	gwb_dump(T, f);
	fclose(f);
	snprintf(want, sizeof want, "\nroute %u ", r);
	char *p = strstr(d, want);
	ck_assert_ptr_nonnull(p);
	p = strstr(p, "  index: ");
	ck_assert_ptr_nonnull(p);
	p += 9;
	size_t n = strcspn(p, "\n");
	snprintf(buf, cap, "%.*s", (int)n, p);
	free(d);
	return buf;
}

START_TEST(regex_narrowing)
{
	gwb_builder *b = gwb_builder_new();
	char buf[256];
	tu_route(b, "r0", X_RE("^/docs/v1/(.*)$", 0), 0);
	tu_route(b, "r1", X_OR(X_RE("^/a/x", 0), X_PEQ("/b")), 0);
	tu_route(b, "r2", X_NOT(X_RE("^/n/", 0)), 0);
	tu_route(b, "r3", X_AND(X_PPRE("/d"), X_RE("^/docs/(x)", 0)), 0);
	tu_route(b, "r4", X_AND(X_PPRE("/z"), X_RE("^/docs/(x)", 0)), 0);
	tu_route(b, "r5", X_AND(X_HOST("h"), X_NOT(X_NOT(X_RE("^/nn/", 0)))), 0);
	tu_route(b, "r6", X_RE("^/ci/", GWB_RE_CASELESS), 0);
	tu_route(b, "r7", X_AND(X_OR(X_RE("^/o/1", 0), X_RE("^/o/2", 0)), X_RE("^/o/", 0)), 0);
	load_built(b);
	ck_assert_str_eq(index_line(0, buf, sizeof buf), "host *  path ^= \"/docs/v1/\"  methods *");
	ck_assert_str_eq(index_line(1, buf, sizeof buf), "host *  path *  methods *");
	ck_assert_str_eq(index_line(2, buf, sizeof buf), "host *  path *  methods *");
	ck_assert_str_eq(index_line(3, buf, sizeof buf), "host *  path ^= \"/docs/\"  methods *");
	ck_assert_str_eq(index_line(4, buf, sizeof buf), "host *  path ^= \"/z\"  methods *");
	ck_assert_str_eq(index_line(5, buf, sizeof buf), "host \"h\"  path ^= \"/nn/\"  methods *");
	ck_assert_str_eq(index_line(6, buf, sizeof buf), "host *  path *  methods *");
	ck_assert_str_eq(index_line(7, buf, sizeof buf), "host *  path ^= \"/o/\"  methods *");
	ck_assert_uint_eq(match("GET", "x", "/docs/v1/a"), 0);
	ck_assert_uint_eq(match("GET", "x", "/docs/x"), 2);        /* r2 comes first */
	ck_assert_uint_eq(match("GET", "x", "/b"), 1);
	ck_assert_uint_eq(match("GET", "x", "/a/x"), 1);
	ck_assert_uint_eq(match("GET", "x", "/n/"), GWB_NONE);
	ck_assert_uint_eq(match("GET", "x", "/m"), 2);
	unload();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("gwb_match");
	TCase *tc = tcase_create("match");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hosts);
	tcase_add_test(tc, paths);
	tcase_add_test(tc, methods);
	tcase_add_test(tc, predicates);
	tcase_add_test(tc, boolean);
	tcase_add_test(tc, first_match_across_groups);
	tcase_add_test(tc, trace);
	tcase_add_test(tc, regex_narrowing);
	tcase_add_test(tc, index_shapes);
	tcase_add_test(tc, random_self_check);
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

/*
 * test_diff.c — differential test of the matcher.
 *
 * Random .gwr rule sets (from a seeded PRNG, values drawn from small pools
 * so that routes overlap and requests hit them often) go through the real
 * pipeline: parse_string -> sema_check -> emit_table -> gwb_load_mem. Random
 * requests drawn from the same pools are then matched three ways:
 *
 *   gwb_match_request()      the indexed matcher (what gwd runs)
 *   gwb_eval_route() per route, in order   the compiled match programs alone
 *   refeval_run()/refeval_expr()           the naive walk of the AST (oracle)
 *
 * and any disagreement fails with the seed, the rule text and the request.
 * Replay one rule set with all its requests printed:
 *
 *   GW_DIFF_SEED=12345 tests/unit/test_diff
 *
 * GW_DIFF_ITERS=N changes the number of rule sets (default 10000);
 * GW_DIFF_KNOWN_BUGS=1 adds the tests of disagreements already reported
 * and not yet fixed (see test_wildcard_empty_label).
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compiler.h"
#include "gwb.h"
#include "refeval.h"

#define DIFF_DEFAULT_ITERS 10000u
#define DIFF_CHUNKS        20       /* Check loop iterations (one fork each) */
#define DIFF_REQS          40       /* requests per rule set */
#define DIFF_SEED_BASE     0x5eed0000ull

/* ------------------------------------------------------------- PRNG */
typedef struct rng { uint64_t s; } rng;

/* splitmix64: tiny, full period, good enough to pick from pools */
static uint64_t rng_next(rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rnd(rng *r, unsigned n)
{
	return (unsigned)(rng_next(r) % n);
}

static int chance(rng *r, unsigned pct)
{
	return rnd(r, 100) < pct;
}

#define PICK(r, arr) ((arr)[rnd((r), sizeof(arr) / sizeof((arr)[0]))])

/* allocation failure; plain abort because run_seed also runs outside
 * Check (GW_DIFF_SEED replay), where ck_assert cannot report */
static void *nonnull(void *p)
{
	if (!p) {
		fprintf(stderr, "test_diff: out of memory\n");
		abort();
	}
	return p;
}

/* ------------------------------------------------------ string buffer */
typedef struct sbuf { char *p; size_t n, cap; } sbuf;

static void sb_vprintf(sbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int need = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (b->n + (size_t)need + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc < b->n + (size_t)need + 1)
			nc *= 2;
		char *np = nonnull(realloc(b->p, nc));
		b->p = np;
		b->cap = nc;
	}
	vsnprintf(b->p + b->n, (size_t)need + 1, fmt, ap);
	b->n += (size_t)need;
}

static void sb_printf(sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

/* s as a .gwr string literal */
static void sb_quoted(sbuf *b, const char *s)
{
	sb_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			sb_printf(b, "\\x%02x", c);
		else
			sb_printf(b, "%c", c);
	}
	sb_printf(b, "\"");
}

/* ------------------------------------------------------------- pools
 * Rule values and request values overlap on purpose, and the request
 * pools add near misses (case, ports, one character more or less). */
static const char *const rule_hosts[] = {
	"example.com", "a.example.com", "b.example.com", "x.a.example.com",
	"api.test", "A.Example.com", "localhost", "10.0.0.1", "[::1]",
	"example.com.",
};
static const char *const rule_wilds[] = {
	"*.example.com", "*.a.example.com", "*.test", "*.B.Example.Com",
};
static const char *const req_hosts[] = {
	"example.com", "a.example.com", "b.example.com", "x.a.example.com",
	"y.x.a.example.com", "api.test", "API.TEST", "a.example.com:8080",
	"EXAMPLE.com:443", "localhost", "localhost:80", "other.org",
	"xexample.com", "c.b.example.com", "10.0.0.1", "10.0.0.1:8080",
	"", "a.test", "test", "example.com.", "EXAMPLE.COM.", "[::1]:8080",
	"[::1]", "[::1", "a.example.com:", "b.example.com:x:y",
};
static const char *const rule_prefixes[] = {
	"/", "/a", "/a/", "/a/b", "/a/b/", "/api/", "/api/v1/", "/api/v1/users",
	"/b", "/static/",
};
static const char *const rule_exacts[] = {
	"/", "/a", "/a/b", "/api/v1/users", "/healthz", "/api/", "/b/",
};
static const char *const req_paths[] = {
	"/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/api", "/api/", "/api/v1/",
	"/api/v1/users", "/api/v1/users/42", "/api/v1/usersx", "/healthz",
	"/static/x.css", "/b", "/B", "/b/", "/a/b/", "/api/v2/users", "/a/c",
	"/a/b/c/d.css", "/api/v10/x", "/healthz/", "/a\n", "/a/b\n",
	"/api/v1/users\n", "/aa", "/abbb", "/aB", "/ab", "/API/x", "/a.b",
	"/a/7", "/a/b\nx",
};
static const char *const rule_regexes[] = {
	"^/a/(b|c)", "^/api/v[0-9]+/", "users", "^/$", "\\.css$",
	"^/a/([^/]+)/?$", "^/(api|static)/(.*)$", "(?i)^/B", "x",
	"^/api/v1/users/([0-9]+)$", "^/(a)(/(b))?(/c)?", "^/b",
	/* shapes a literal-prefix extraction must get right */
	"^/api|^/b", "^/ab*", "^/a{2}", "^/a(?i)B", "^(?i)/API/", "\\A/api/",
	"^/a\\.b", "^/a/\\d+$", "^/api/v1/users$", "^/a$|^/b$", "^/a/?$",
	"^/a\\/b", "^/[a]/b", "(?m)^/b", "^/a/b\\z", "^/a/b$",
};
static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
};
static const char *const req_methods[] = {
	"GET", "GET", "GET", "HEAD", "POST", "POST", "PUT", "DELETE", "PATCH",
	"OPTIONS", "CONNECT", "TRACE", "PROPFIND", "get",
};
static const char *const hdr_names[] = { "X-Env", "X-Canary", "Accept", "x-user" };
static const char *const hdr_values[] = { "canary", "prod", "1", "", "Canary" };
static const char *const req_hdr_names[] = {
	"X-Env", "x-env", "X-ENV", "X-Canary", "x-canary", "Accept", "X-User",
	"X-Other",
};
static const char *const req_hdr_values[] = {
	"canary", "prod", "1", "", "Canary", "canary ", "2",
};
static const char *const query_names[] = { "v", "q", "debug", "x y" };
static const char *const query_values[] = { "1", "2", "a b", "", "A" };
static const char *const req_query_parts[] = {
	"v=1", "v=2", "q=a+b", "q=a%20b", "debug", "debug=", "v=%31", "x+y=1",
	"x%20y=1", "v", "=1", "q=", "%76=2", "q=%41", "q=A", "v=1&v=2",
	"v=2&v=1", "v=%zz", "q=a%2", "",
};
static const char *const cookie_names[] = { "beta", "sid", "canary" };
static const char *const cookie_values[] = { "1", "0", "abc", "" };
static const char *const req_cookies[] = {
	"beta=1", "sid=abc; beta=0", "beta=1;canary=1", "canary=1; sid=abc",
	"beta=0; beta=1", "sid=abc", "beta", "canary=", "beta=1; sid=x",
	"beta=\"1\"", "sid=\"abc\"; beta = 1", "beta=\"\"", "canary=\"", " sid=abc ;",
};
static const char *const cidrs4[] = {
	"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "192.168.0.0/16",
	"0.0.0.0/0", "10.1.2.3/32", "10.1.2.128/25",
};
static const char *const cidrs6[] = {
	"::1/128", "::1", "2001:db8::/32", "2001:db8:1::/48", "fe80::/10", "::/0",
};
static const char *const req_ips[] = {
	"10.1.2.3", "10.1.2.200", "10.2.0.1", "192.168.5.5", "8.8.8.8", "::1",
	"2001:db8:1::5", "2001:db9::1", "fe80::1", "::ffff:10.1.2.3", "",
};

/* ---------------------------------------------------- rule generation */
enum { CTX_TOP, CTX_AND, CTX_ATOM };

static void gen_cidr_list(rng *r, sbuf *b)
{
	unsigned n = 1 + rnd(r, 3);
	int paren = n > 1 || chance(r, 20);
	sb_printf(b, "client_ip in %s", paren ? "(" : "");
	for (unsigned i = 0; i < n; i++)
		sb_printf(b, "%s%s", i ? ", " : "",
		          chance(r, 60) ? PICK(r, cidrs4) : PICK(r, cidrs6));
	sb_printf(b, "%s", paren ? ")" : "");
}

static void gen_methods(rng *r, sbuf *b)
{
	if (chance(r, 40)) {
		sb_printf(b, "method == %s", PICK(r, methods));
		return;
	}
	unsigned n = 1 + rnd(r, 4);
	sb_printf(b, "method in (");
	for (unsigned i = 0; i < n; i++)
		sb_printf(b, "%s%s", i ? ", " : "", PICK(r, methods));
	sb_printf(b, ")");
}

/* Synthetic values from a wider space, so that the host hash tables get
 * many slots (and collisions) and trie nodes get more than 16 children
 * (the matcher's other child search). n is the size of the space. */
#define SYN_HOSTS 96
static unsigned syn_pct = 25;     /* chance of a synthetic host or path */
static const char syn_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789-._~";

static void syn_host(rng *r, char *out, size_t len, int wild)
{
	snprintf(out, len, "%sh%u.example.com", wild ? "*." : "", rnd(r, SYN_HOSTS));
}

static void syn_path(rng *r, char *out, size_t len)
{
	/* "/x", "/xy", "/x/", "/xy/z" ... over a 40-letter alphabet */
	size_t n = 0;
	out[n++] = '/';
	out[n++] = syn_chars[rnd(r, sizeof syn_chars - 1)];
	if (chance(r, 50))
		out[n++] = syn_chars[rnd(r, sizeof syn_chars - 1)];
	if (chance(r, 50))
		out[n++] = '/';
	if (chance(r, 30))
		out[n++] = syn_chars[rnd(r, 4)];
	out[n < len ? n : len - 1] = 0;
}

static void gen_host(rng *r, sbuf *b)
{
	char h[64];
	sb_printf(b, "host == ");
	if (chance(r, syn_pct)) {
		syn_host(r, h, sizeof h, chance(r, 30));
		sb_quoted(b, h);
		return;
	}
	sb_quoted(b, chance(r, 30) ? PICK(r, rule_wilds) : PICK(r, rule_hosts));
}

static void gen_path(rng *r, sbuf *b)
{
	unsigned k = rnd(r, 10);
	char p[16];
	int syn = chance(r, syn_pct);
	if (syn)
		syn_path(r, p, sizeof p);
	if (k < 5) {
		sb_printf(b, "path ^= ");
		sb_quoted(b, syn ? p : PICK(r, rule_prefixes));
	} else if (k < 8) {
		sb_printf(b, "path == ");
		sb_quoted(b, syn ? p : PICK(r, rule_exacts));
	} else {
		sb_printf(b, "path ~ ");
		sb_quoted(b, PICK(r, rule_regexes));
	}
}

/* a predicate the index does not use */
static void gen_pred(rng *r, sbuf *b)
{
	switch (rnd(r, 7)) {
	case 0:
		sb_printf(b, "header(");
		sb_quoted(b, PICK(r, hdr_names));
		sb_printf(b, ") == ");
		sb_quoted(b, PICK(r, hdr_values));
		break;
	case 1:
		sb_printf(b, "header(");
		sb_quoted(b, PICK(r, hdr_names));
		sb_printf(b, ")");
		break;
	case 2:
		sb_printf(b, "query(");
		sb_quoted(b, PICK(r, query_names));
		sb_printf(b, ") == ");
		sb_quoted(b, PICK(r, query_values));
		break;
	case 3:
		sb_printf(b, "query(");
		sb_quoted(b, PICK(r, query_names));
		sb_printf(b, ")");
		break;
	case 4:
		sb_printf(b, "cookie(");
		sb_quoted(b, PICK(r, cookie_names));
		sb_printf(b, ") == ");
		sb_quoted(b, PICK(r, cookie_values));
		break;
	case 5:
		sb_printf(b, "cookie(");
		sb_quoted(b, PICK(r, cookie_names));
		sb_printf(b, ")");
		break;
	default:
		gen_cidr_list(r, b);
		break;
	}
}

static void gen_leaf(rng *r, sbuf *b)
{
	/* `any` is rare: under `or` it makes whole routes match everything */
	switch (rnd(r, 40)) {
	case 0: sb_printf(b, "any"); break;
	case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8:
		gen_host(r, b); break;
	case 9: case 10: case 11: case 12: case 13: case 14: case 15:
	case 16: case 17: case 18: case 19: case 20:
		gen_path(r, b); break;
	case 21: case 22: case 23: case 24: case 25: case 26:
		gen_methods(r, b); break;
	default: gen_pred(r, b); break;
	}
}

/* a random boolean tree; ctx says what the parent needs for precedence:
 * under `and` an `or` must be parenthesised, under `not` both must be */
static void gen_tree(rng *r, sbuf *b, int depth, int ctx)
{
	unsigned k = depth > 0 ? rnd(r, 10) : 9;
	if (k >= 6) {
		int paren = chance(r, 10);
		sb_printf(b, "%s", paren ? "(" : "");
		gen_leaf(r, b);
		sb_printf(b, "%s", paren ? ")" : "");
		return;
	}
	if (k < 1) {
		sb_printf(b, "not ");
		gen_tree(r, b, depth - 1, CTX_ATOM);
		return;
	}
	int is_or = k < 3;
	int paren = ctx == CTX_ATOM || (is_or && ctx == CTX_AND) || chance(r, 15);
	sb_printf(b, "%s", paren ? "(" : "");
	gen_tree(r, b, depth - 1, is_or ? CTX_TOP : CTX_AND);
	sb_printf(b, " %s ", is_or ? "or" : "and");
	gen_tree(r, b, depth - 1, is_or ? CTX_TOP : CTX_AND);
	sb_printf(b, "%s", paren ? ")" : "");
}

/* the shape most real routes have: host/path/method conjuncts (which the
 * compiler files in the index) plus sometimes extra predicates */
static void gen_conj(rng *r, sbuf *b)
{
	int n = 0;
	int has_host = chance(r, 60), has_path = chance(r, 75),
	    has_method = chance(r, 30), has_pred = chance(r, 30);
	int order = (int)rnd(r, 2);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == order) {
			if (has_host) {
				sb_printf(b, "%s", n++ ? " and " : "");
				gen_host(r, b);
			}
			if (has_path) {
				sb_printf(b, "%s", n++ ? " and " : "");
				gen_path(r, b);
			}
		} else {
			if (has_method) {
				sb_printf(b, "%s", n++ ? " and " : "");
				gen_methods(r, b);
			}
			if (has_pred) {
				sb_printf(b, "%s", n++ ? " and " : "");
				if (chance(r, 50))
					gen_pred(r, b);
				else
					gen_tree(r, b, 2, CTX_AND);
			}
		}
	}
	if (!n)
		sb_printf(b, "any");
}

static void gen_rules(rng *r, sbuf *b, unsigned nroutes)
{
	sb_printf(b, "# generated by test_diff\n");
	for (unsigned i = 0; i < nroutes; i++) {
		sb_printf(b, "route r%u {\n    match ", i);
		unsigned k = rnd(r, 100);
		if (k < 60)
			gen_conj(r, b);
		else if (k < 98)
			gen_tree(r, b, 1 + (int)rnd(r, 3), CTX_TOP);
		else
			sb_printf(b, "any");
		sb_printf(b, ";\n    respond 200;\n}\n");
	}
}

/* ------------------------------------------------------------ requests */
typedef struct treq {
	char host[64];
	char path[32];
	char query[128];
	char cookie[64];
	refeval_hdr hdrs[6];
	size_t nh;
	const char *ipstr;
	refeval_req rr;
	gwb_request gr;
} treq;

static int treq_header(void *ctx, const char *name, const char **v, size_t *vlen)
{
	const treq *q = ctx;
	for (size_t i = 0; i < q->nh; i++)
		if (strcasecmp(q->hdrs[i].name, name) == 0) {
			*v = q->hdrs[i].value;
			*vlen = strlen(q->hdrs[i].value);
			return 1;
		}
	return 0;
}

static void gen_request(rng *r, treq *q)
{
	memset(q, 0, sizeof *q);
	q->rr.method = PICK(r, req_methods);
	q->rr.host = PICK(r, req_hosts);
	q->rr.path = PICK(r, req_paths);
	if (chance(r, syn_pct)) {
		/* "h7.example.com", or a name under it, maybe with a port */
		int under = chance(r, 40);
		snprintf(q->host, sizeof q->host, "%sh%u.example.com%s",
		         !under ? "" : chance(r, 50) ? "x." : "x.y.",
		         rnd(r, SYN_HOSTS), under && chance(r, 20) ? ":8443" : "");
		q->rr.host = q->host;
	}
	if (chance(r, syn_pct)) {
		syn_path(r, q->path, sizeof q->path);
		if (chance(r, 50)) {      /* something below it */
			size_t l = strlen(q->path);
			snprintf(q->path + l, sizeof q->path - l, "%sz",
			         q->path[l - 1] == '/' ? "" : "/");
		}
		q->rr.path = q->path;
	}
	if (chance(r, 60)) {
		unsigned n = 1 + rnd(r, 3);
		for (unsigned i = 0; i < n; i++) {
			size_t l = strlen(q->query);
			snprintf(q->query + l, sizeof q->query - l, "%s%s",
			         i ? "&" : "", PICK(r, req_query_parts));
		}
		q->rr.query = q->query;
	}
	unsigned nh = rnd(r, 4);
	for (unsigned i = 0; i < nh; i++) {
		q->hdrs[q->nh].name = PICK(r, req_hdr_names);
		q->hdrs[q->nh].value = PICK(r, req_hdr_values);
		q->nh++;
	}
	if (chance(r, 40)) {
		snprintf(q->cookie, sizeof q->cookie, "%s", PICK(r, req_cookies));
		q->hdrs[q->nh].name = chance(r, 50) ? "Cookie" : "cookie";
		q->hdrs[q->nh].value = q->cookie;
		q->nh++;
	}
	q->rr.headers = q->hdrs;
	q->rr.nheaders = q->nh;
	q->ipstr = PICK(r, req_ips);
	if (inet_pton(AF_INET, q->ipstr, q->rr.ip) == 1)
		q->rr.ip_family = 4;
	else if (inet_pton(AF_INET6, q->ipstr, q->rr.ip) == 1)
		q->rr.ip_family = 6;

	q->gr.method = q->rr.method;
	q->gr.method_len = strlen(q->rr.method);
	q->gr.host = q->rr.host;
	q->gr.host_len = strlen(q->rr.host);
	q->gr.path = q->rr.path;
	q->gr.path_len = strlen(q->rr.path);
	q->gr.query = q->rr.query ? q->rr.query : "";
	q->gr.query_len = strlen(q->gr.query);
	q->gr.header = treq_header;
	q->gr.ctx = q;
	q->gr.ip_family = q->rr.ip_family;
	memcpy(q->gr.ip, q->rr.ip, sizeof q->gr.ip);
}

static void print_request(FILE *out, const treq *q)
{
	fprintf(out, "  %s host=\"%s\" path=\"%s\"", q->rr.method, q->rr.host, q->rr.path);
	if (q->rr.query)
		fprintf(out, " query=\"%s\"", q->rr.query);
	fprintf(out, " ip=%s", *q->ipstr ? q->ipstr : "(none)");
	for (size_t i = 0; i < q->nh; i++)
		fprintf(out, "\n    %s: \"%s\"", q->hdrs[i].name, q->hdrs[i].value);
	fprintf(out, "\n");
}

/* ------------------------------------------------------ one rule set */
typedef struct diffstate {
	gwb_scratch *scratch;
	int verbose;
	/* coverage of the run, printed per chunk: a differential test whose
	 * requests never match anything would prove nothing */
	unsigned long sets, reqs, matched, capchecks, evals, evals_true;
	unsigned long deep;        /* winner is not among the first 3 routes */
} diffstate;

/* the only AE_PATH_RE of an expression made of AND and leaves, or NULL:
 * then the captures of a match are well defined whatever the order in
 * which the compiled program tests the conjuncts */
static const ast_expr *sole_regex(const ast_expr *e, int *count)
{
	if (e->kind == AE_AND) {
		const ast_expr *a = sole_regex(e->a, count);
		const ast_expr *b = sole_regex(e->b, count);
		return a ? a : b;
	}
	if (e->kind == AE_OR || e->kind == AE_NOT) {
		*count += 100;       /* disqualifies */
		return NULL;
	}
	if (e->kind == AE_PATH_RE) {
		++*count;
		return e;
	}
	return NULL;
}

static int caps_disagree(const refeval *re, const ast_expr *rx, const treq *q,
                         const gwb_match *m, char *why, size_t whylen)
{
	size_t want[2 * GWB_MAX_CAPTURES];
	if (refeval_regex_caps(re, rx, q->rr.path, want) < 0) {
		snprintf(why, whylen, "oracle: regex does not match on the winner");
		return 1;
	}
	for (int i = 0; i < GWB_MAX_CAPTURES; i++) {
		size_t gs = i < m->ncap ? m->cap[2 * i] : (size_t)-1;
		size_t ge = i < m->ncap ? m->cap[2 * i + 1] : (size_t)-1;
		if (gs != want[2 * i] || ge != want[2 * i + 1]) {
			snprintf(why, whylen,
			         "capture $%d: gwb [%zd,%zd) ncap=%d, oracle [%zd,%zd)",
			         i, (ssize_t)gs, (ssize_t)ge, m->ncap,
			         (ssize_t)want[2 * i], (ssize_t)want[2 * i + 1]);
			return 1;
		}
	}
	return 0;
}

/* Builds the rule set of one seed and checks DIFF_REQS requests. Returns
 * 0, or 1 after printing everything needed to replay the failure. */
static int run_seed(diffstate *ds, uint64_t seed)
{
	rng r = { seed };
	sbuf src = { 0 };
	ast_file f;
	diag_ctx d;
	uint8_t *tb = NULL;
	size_t tl = 0;
	gwb_table *t = NULL;
	refeval *re = NULL;
	const ast_expr **matches = NULL;
	size_t nroutes = 0;
	char err[512];
	int bad = 0;

	/* 1 set in 20 is wide: many routes, mostly synthetic values, so
	 * that tables and trie nodes grow past their small-size paths */
	unsigned nr = 1 + rnd(&r, 40);
	syn_pct = 25;
	if (rnd(&r, 20) == 0) {
		nr = 60 + rnd(&r, 140);
		syn_pct = 70;
	}
	gen_rules(&r, &src, nr);
	memset(&f, 0, sizeof f);
	diag_init(&d);
	int nerr = parse_string("diff.gwr", src.p, src.n, &f, &d);
	if (!nerr)
		nerr = sema_check(&f, &d);
	if (!nerr && emit_table(&f, &d, &tb, &tl) != 0)
		nerr = 1;
	if (nerr || d.nerrors) {
		fprintf(stderr, "seed %" PRIu64 ": generated rules do not compile:\n%s\n",
		        seed, src.p);
		diag_print_text(&d, stderr);
		bad = 1;
		goto out;
	}
	t = gwb_load_mem(tb, tl, err, sizeof err);
	if (!t) {
		fprintf(stderr, "seed %" PRIu64 ": gwb_load_mem: %s\nrules:\n%s\n",
		        seed, err, src.p);
		bad = 1;
		goto out;
	}
	re = refeval_new(&f, err, sizeof err);
	if (!re) {
		fprintf(stderr, "seed %" PRIu64 ": refeval_new: %s\nrules:\n%s\n",
		        seed, err, src.p);
		bad = 1;
		goto out;
	}
	matches = nonnull(calloc(f.nitems + 1, sizeof *matches));
	for (size_t i = 0; i < f.nitems; i++)
		if (f.items[i].kind == AI_ROUTE)
			matches[nroutes++] = f.items[i].match;
	if (gwb_nroutes(t) != nroutes) {
		fprintf(stderr, "seed %" PRIu64 ": table has %u routes, source %zu\n%s\n",
		        seed, gwb_nroutes(t), nroutes, src.p);
		bad = 1;
		goto out;
	}
	if (ds->verbose)
		printf("seed %" PRIu64 ": %zu routes\n%s\n", seed, nroutes, src.p);
	ds->sets++;

	for (int k = 0; k < DIFF_REQS && !bad; k++) {
		treq q;
		gwb_match m;
		char why[256] = "";
		gen_request(&r, &q);
		int want = refeval_run(re, &q.rr);
		memset(&m, 0, sizeof m);
		uint32_t got = gwb_match_request(t, &q.gr, &m, ds->scratch);
		int gotn = got == GWB_NONE ? -1 : (int)got;
		ds->reqs++;
		ds->matched += want >= 0;
		ds->deep += want >= 3;
		if (gotn != want) {
			snprintf(why, sizeof why, "gwb_match_request -> %d, oracle -> %d",
			         gotn, want);
		} else if (want >= 0) {
			int cnt = 0;
			const ast_expr *rx = sole_regex(matches[want], &cnt);
			if (rx && cnt == 1) {
				ds->capchecks++;
				caps_disagree(re, rx, &q, &m, why, sizeof why);
			}
		}
		/* each compiled match program against its AST expression,
		 * independent of the index */
		for (size_t i = 0; i < nroutes && !*why; i++) {
			gwb_match m2;
			int a = gwb_eval_route(t, (uint32_t)i, &q.gr, &m2, ds->scratch,
			                       NULL, NULL) ? 1 : 0;
			int b = refeval_expr(re, matches[i], &q.rr);
			ds->evals++;
			ds->evals_true += (unsigned)b;
			if (a != b)
				snprintf(why, sizeof why,
				         "route r%zu: gwb_eval_route -> %d, oracle -> %d",
				         i, a, b);
		}
		if (ds->verbose) {
			printf("request %d -> %d\n", k, want);
			print_request(stdout, &q);
		}
		if (*why) {
			fprintf(stderr,
			        "\nDISAGREEMENT seed %" PRIu64 " request %d: %s\n"
			        "replay: GW_DIFF_SEED=%" PRIu64 " tests/unit/test_diff\n"
			        "request:\n", seed, k, why, seed);
			print_request(stderr, &q);
			fprintf(stderr, "rules:\n%s\n", src.p);
			bad = 1;
		}
	}
out:
	free(matches);
	refeval_free(re);
	gwb_free(t);
	free(tb);
	ast_free(&f);
	diag_fini(&d);
	free(src.p);
	return bad;
}

static unsigned diff_iters(void)
{
	const char *s = getenv("GW_DIFF_ITERS");
	if (s && *s) {
		unsigned long n = strtoul(s, NULL, 10);
		if (n > 0)
			return (unsigned)n;
	}
	return DIFF_DEFAULT_ITERS;
}

/* chunk _i of the seeds; one fork per chunk keeps a crash local to it */
START_TEST(test_random_rulesets)
{
	diffstate ds = { .scratch = gwb_scratch_new(), .verbose = 0 };
	ck_assert_ptr_nonnull(ds.scratch);
	unsigned iters = diff_iters();
	unsigned per = (iters + DIFF_CHUNKS - 1) / DIFF_CHUNKS;
	unsigned lo = (unsigned)_i * per, hi = lo + per > iters ? iters : lo + per;
	unsigned failures = 0;
	uint64_t first_bad = 0;
	for (unsigned i = lo; i < hi; i++) {
		if (run_seed(&ds, DIFF_SEED_BASE + i)) {
			if (!failures++)
				first_bad = DIFF_SEED_BASE + i;
			if (failures >= 3)
				break;      /* enough to see the pattern */
		}
	}
	gwb_scratch_free(ds.scratch);
	printf("diff chunk %d: %lu rule sets, %lu requests, %.0f%% matched a route, "
	       "%.0f%% past the 3rd route, %lu capture checks, "
	       "%lu route evaluations (%.0f%% true)\n", _i,
	       ds.sets, ds.reqs, ds.reqs ? 100.0 * ds.matched / ds.reqs : 0.0,
	       ds.reqs ? 100.0 * ds.deep / ds.reqs : 0.0,
	       ds.capchecks, ds.evals, ds.evals ? 100.0 * ds.evals_true / ds.evals : 0.0);
	/* a generator drifting into all-miss or all-hit would hollow the test */
	if (failures == 0 && ds.reqs >= 1000) {
		ck_assert_msg(ds.matched > ds.reqs / 5 && ds.matched < ds.reqs - ds.reqs / 20,
		              "only %lu of %lu requests matched", ds.matched, ds.reqs);
		ck_assert_msg(ds.capchecks > 0, "no capture was compared");
	}
	ck_assert_msg(failures == 0, "%u rule set(s) disagree; first seed %" PRIu64
	              " (GW_DIFF_SEED=%" PRIu64 " to replay)", failures, first_bad,
	              first_bad);
}
END_TEST

/* ------------------------------------------------ fixed cases
 * The oracle itself, on hand-written rules with hand-derived answers,
 * and the compiled table on the same: if the oracle drifted from the
 * language, the random test would prove nothing. */
static const char fixed_rules[] =
	"route r0 { match host == \"*.example.com\" and path ^= \"/a/\"; respond 200; }\n"
	"route r1 { match host == \"Example.com\" and method in (GET, HEAD); respond 200; }\n"
	"route r2 { match query(\"q\") == \"a b\"; respond 200; }\n"
	"route r3 { match cookie(\"beta\") == \"1\" and not header(\"X-Env\") == \"prod\"; respond 200; }\n"
	"route r4 { match client_ip in (10.0.0.0/8, 2001:db8::/32); respond 200; }\n"
	"route r5 { match path ~ \"^/u/([0-9]+)$\" or path == \"/x\" and header(\"X-Env\"); respond 200; }\n"
	"route r6 { match query(\"flag\") and not path ^= \"/private/\"; respond 200; }\n";

typedef struct fixed_case {
	const char *method, *host, *path, *query, *hname, *hvalue, *ip;
	int want;
} fixed_case;

static const fixed_case fixed_cases[] = {
	{ "GET", "www.example.com", "/a/b", NULL, NULL, NULL, NULL, 0 },
	{ "GET", "a.b.EXAMPLE.com:8443", "/a/", NULL, NULL, NULL, NULL, 0 },
	{ "GET", "example.com", "/a/b", NULL, NULL, NULL, NULL, 1 },
	{ "HEAD", "EXAMPLE.COM:80", "/zzz", NULL, NULL, NULL, NULL, 1 },
	{ "POST", "example.com", "/zzz", NULL, NULL, NULL, NULL, -1 },
	{ "GET", "www.example.com", "/a", NULL, NULL, NULL, NULL, -1 },
	{ "POST", "h", "/", "x=1&q=a+b", NULL, NULL, NULL, 2 },
	{ "POST", "h", "/", "q=a%20b&q=zz", NULL, NULL, NULL, 2 },
	{ "POST", "h", "/", "q=zz&q=a%20b", NULL, NULL, NULL, -1 },
	{ "POST", "h", "/", NULL, "Cookie", "sid=1; beta=1", NULL, 3 },
	{ "POST", "h", "/", NULL, "cookie", "beta=0", NULL, -1 },
	{ "POST", "h", "/", NULL, NULL, NULL, "10.9.8.7", 4 },
	{ "POST", "h", "/", NULL, NULL, NULL, "2001:db8:ffff::1", 4 },
	{ "POST", "h", "/", NULL, NULL, NULL, "11.0.0.1", -1 },
	{ "POST", "h", "/u/42", NULL, NULL, NULL, NULL, 5 },
	{ "POST", "h", "/u/42/", NULL, NULL, NULL, NULL, -1 },
	{ "POST", "h", "/x", NULL, "x-env", "", NULL, 5 },
	{ "POST", "h", "/x", NULL, NULL, NULL, NULL, -1 },
	{ "POST", "h", "/p", "flag", NULL, NULL, NULL, 6 },
	{ "POST", "h", "/private/p", "flag=1", NULL, NULL, NULL, -1 },
};

START_TEST(test_fixed_cases)
{
	ast_file f;
	diag_ctx d;
	uint8_t *tb = NULL;
	size_t tl = 0;
	char err[256];
	memset(&f, 0, sizeof f);
	diag_init(&d);
	int nerr = parse_string("fixed.gwr", fixed_rules, strlen(fixed_rules), &f, &d);
	if (!nerr)
		nerr = sema_check(&f, &d);
	if (!nerr)
		nerr = emit_table(&f, &d, &tb, &tl);
	if (nerr)
		diag_print_text(&d, stderr);
	ck_assert_int_eq(nerr, 0);
	refeval *re = refeval_new(&f, err, sizeof err);
	ck_assert_msg(re != NULL, "refeval_new: %s", err);
	gwb_table *t = gwb_load_mem(tb, tl, err, sizeof err);
	ck_assert_msg(t != NULL, "gwb_load_mem: %s", err);
	gwb_scratch *s = gwb_scratch_new();
	for (size_t i = 0; i < sizeof fixed_cases / sizeof fixed_cases[0]; i++) {
		const fixed_case *c = &fixed_cases[i];
		treq q;
		memset(&q, 0, sizeof q);
		q.rr.method = c->method;
		q.rr.host = c->host;
		q.rr.path = c->path;
		q.rr.query = c->query;
		if (c->hname) {
			q.hdrs[0].name = c->hname;
			q.hdrs[0].value = c->hvalue;
			q.nh = 1;
		}
		q.rr.headers = q.hdrs;
		q.rr.nheaders = q.nh;
		q.ipstr = c->ip ? c->ip : "";
		if (c->ip && inet_pton(AF_INET, c->ip, q.rr.ip) == 1)
			q.rr.ip_family = 4;
		else if (c->ip && inet_pton(AF_INET6, c->ip, q.rr.ip) == 1)
			q.rr.ip_family = 6;
		q.gr = (gwb_request){
			.method = c->method, .method_len = strlen(c->method),
			.host = c->host, .host_len = strlen(c->host),
			.path = c->path, .path_len = strlen(c->path),
			.query = c->query ? c->query : "",
			.query_len = c->query ? strlen(c->query) : 0,
			.header = treq_header, .ctx = &q,
			.ip_family = q.rr.ip_family,
		};
		memcpy(q.gr.ip, q.rr.ip, 16);
		ck_assert_msg(refeval_run(re, &q.rr) == c->want,
		              "case %zu: oracle says %d, expected %d", i,
		              refeval_run(re, &q.rr), c->want);
		gwb_match m;
		uint32_t got = gwb_match_request(t, &q.gr, &m, s);
		ck_assert_msg((got == GWB_NONE ? -1 : (int)got) == c->want,
		              "case %zu: gwb says %d, expected %d", i,
		              got == GWB_NONE ? -1 : (int)got, c->want);
	}
	/* captures of r5 for /u/42: $0 = [0,5), $1 = [3,5) */
	size_t cap[2 * GWB_MAX_CAPTURES];
	const ast_expr *rx = NULL;
	for (size_t i = 0, n = 0; i < f.nitems; i++)
		if (f.items[i].kind == AI_ROUTE && n++ == 5)
			rx = f.items[i].match->a;
	ck_assert_ptr_nonnull(rx);
	ck_assert_int_eq(rx->kind, AE_PATH_RE);
	ck_assert_int_eq(refeval_regex_caps(re, rx, "/u/42", cap), 2);
	ck_assert_uint_eq(cap[0], 0);
	ck_assert_uint_eq(cap[1], 5);
	ck_assert_uint_eq(cap[2], 3);
	ck_assert_uint_eq(cap[3], 5);
	ck_assert_uint_eq(cap[4], (size_t)-1);
	ck_assert_int_eq(refeval_regex_caps(re, rx, "/u/x", cap), -1);

	gwb_scratch_free(s);
	gwb_free(t);
	refeval_free(re);
	free(tb);
	ast_free(&f);
	diag_fini(&d);
}
END_TEST

/* the generator is deterministic: the same seed gives the same text, or
 * a printed seed would not replay anything */
START_TEST(test_generator_replays)
{
	sbuf a = { 0 }, b = { 0 };
	rng r1 = { 42 }, r2 = { 42 };
	gen_rules(&r1, &a, 25);
	gen_rules(&r2, &b, 25);
	ck_assert_uint_eq(a.n, b.n);
	ck_assert_int_eq(memcmp(a.p, b.p, a.n), 0);
	ck_assert_ptr_nonnull(strstr(a.p, "route r24 {"));
	free(a.p);
	free(b.p);
}
END_TEST

/* Once a disagreement: "*.example.com" means one or more labels
 * before "example.com" (gwr-language.md), so the host ".example.com",
 * whose first label is empty, must not match it. gwb's HOST_WILD and its
 * index lookup (which probes the suffix after a '.' at offset 0) both
 * accept it. */
START_TEST(test_wildcard_empty_label)
{
	static const char rules[] =
		"route r0 { match host == \"*.example.com\"; respond 200; }\n";
	ast_file f;
	diag_ctx d;
	uint8_t *tb = NULL;
	size_t tl = 0;
	char err[256];
	memset(&f, 0, sizeof f);
	diag_init(&d);
	ck_assert_int_eq(parse_string("w.gwr", rules, strlen(rules), &f, &d), 0);
	ck_assert_int_eq(sema_check(&f, &d), 0);
	ck_assert_int_eq(emit_table(&f, &d, &tb, &tl), 0);
	gwb_table *t = gwb_load_mem(tb, tl, err, sizeof err);
	ck_assert_msg(t != NULL, "gwb_load_mem: %s", err);
	gwb_scratch *s = gwb_scratch_new();
	static const char *const hosts[] = { ".example.com", ".example.com:80" };
	for (size_t i = 0; i < 2; i++) {
		treq q;
		memset(&q, 0, sizeof q);
		q.rr.method = "GET";
		q.rr.host = hosts[i];
		q.rr.path = "/";
		q.gr = (gwb_request){ .method = "GET", .method_len = 3,
			.host = hosts[i], .host_len = strlen(hosts[i]),
			.path = "/", .path_len = 1, .query = "", .header = treq_header,
			.ctx = &q };
		ck_assert_int_eq(refeval_first(&f, &q.rr), -1);
		gwb_match m;
		ck_assert_msg(!gwb_eval_route(t, 0, &q.gr, &m, s, NULL, NULL),
		              "HOST_WILD \"example.com\" matches host \"%s\"", hosts[i]);
		ck_assert_msg(gwb_match_request(t, &q.gr, &m, s) == GWB_NONE,
		              "the index matches host \"%s\" to *.example.com", hosts[i]);
	}
	gwb_scratch_free(s);
	gwb_free(t);
	free(tb);
	ast_free(&f);
	diag_fini(&d);
}
END_TEST

static int replay(const char *s)
{
	diffstate ds = { .scratch = nonnull(gwb_scratch_new()), .verbose = 1 };
	uint64_t seed = strtoull(s, NULL, 0);
	int bad = run_seed(&ds, seed);
	gwb_scratch_free(ds.scratch);
	printf("seed %" PRIu64 ": %s\n", seed, bad ? "DISAGREES" : "agrees");
	return bad ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(void)
{
	const char *seed = getenv("GW_DIFF_SEED");
	if (seed && *seed)
		return replay(seed);

	Suite *s = suite_create("diff");
	TCase *tc = tcase_create("oracle");
	tcase_add_test(tc, test_generator_replays);
	tcase_add_test(tc, test_fixed_cases);
	tcase_add_test(tc, test_wildcard_empty_label);
	suite_add_tcase(s, tc);
	tc = tcase_create("random");
	/* a chunk is ~1/20 of the whole run; generous for sanitizer builds */
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_random_rulesets, 0, DIFF_CHUNKS);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}

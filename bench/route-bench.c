/*
 * route-bench.c — compile and route-match benchmark (run it through
 * bench/route-bench.sh from the repository root after the build).
 *
 * For 1k, 10k and 100k routes it generates a realistic rule set as .gwr
 * text — hosts (a few of them wildcards) x path prefixes/exact paths x
 * method sets, ~5% regex routes, ~10% header/query predicate routes
 * (canaries placed before the route they divert from), a fallback — and
 * prints:
 *
 *   compile   parse + sema + emit, wall time, median of 3
 *   bytes     .gwb size per route
 *   match     gwb_match_request ns/lookup: median over batches of 64
 *             lookups, >= 1M lookups in all, drawn from 65536 distinct
 *             random requests (hits and misses mixed); each batch's
 *             requests are read just before it is timed, as a gateway
 *             has just parsed the request it routes
 *   naive     the same for the reference evaluator that walks the AST in
 *             order (compiler/refeval.c), on fewer requests when slow
 *
 * The last lines are machine-readable, one figure per line, the ones the
 * issue asks for last: compile_s_100k, match_ns_10k, match_ns_100k,
 * naive_ns_10k, bytes_per_route_10k.
 *
 * Usage: route-bench [-q] [--no-naive] [SIZE...]   (default 1000 10000 100000)
 * ROUTE_BENCH_LOOKUPS=N sets the matcher lookups per size (to profile it:
 * ROUTE_BENCH_LOOKUPS=30000000 perf record bench/route-bench --no-naive 10000).
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "compiler.h"
#include "gwb.h"
#include "refeval.h"

/* Distinct requests, in random order: enough of them that the table is
 * read at random places, as real traffic reads it, and not a working set
 * that settles into the cache. A gateway routes a request it has just
 * parsed, so the request's own bytes are in cache when it is matched:
 * each batch's requests are read once (untimed, the "parse") before the
 * batch is timed. Only the table has to earn its cache residency. */
#define BENCH_REQS      (1u << 16)
#define BENCH_LOOKUPS   1000000u       /* matcher lookups per size */
#define BENCH_BATCH     64u            /* lookups per timing sample */
#define NAIVE_BUDGET    100000000.0    /* naive route evaluations per size */

/* ------------------------------------------------------------- utils */
typedef struct rng { uint64_t s; } rng;

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

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "route-bench: out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

typedef struct sbuf { char *p; size_t n, cap; } sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int need = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->n + (size_t)need + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->n + (size_t)need + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np) {
			fprintf(stderr, "route-bench: out of memory\n");
			exit(2);
		}
		b->p = np;
		b->cap = nc;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)need + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)need;
}

/* ---------------------------------------------------- rule generation
 * What each generated route accepts, kept so that requests can be made to
 * hit it (and near it, for misses). */
enum { RK_PREFIX, RK_EXACT, RK_REGEX, RK_HEADER, RK_QUERY };

typedef struct groute {
	int kind;
	unsigned host;         /* index into hosts */
	char *path;            /* prefix / exact path; for regex a sample path */
	uint32_t methods;      /* bit mask, GWB_M_ALL = any */
} groute;

typedef struct gset {
	char **hosts; int *wild; unsigned nhosts;
	groute *routes; size_t nroutes;
	sbuf text;
} gset;

static const char *const words[] = {
	"users", "orders", "items", "carts", "search", "billing", "invoices",
	"accounts", "sessions", "reports", "catalog", "inventory", "shipping",
	"payments", "profiles", "media", "assets", "events", "metrics", "admin",
	"auth", "tokens", "teams", "projects", "files", "comments", "reviews",
	"prices", "offers", "stores",
};
#define NWORDS (sizeof words / sizeof words[0])

static const struct { const char *text; uint32_t mask; } msets[] = {
	{ NULL, GWB_M_ALL },
	{ "method in (GET, HEAD)", GWB_M_GET | GWB_M_HEAD },
	{ "method == POST", GWB_M_POST },
	{ "method in (PUT, PATCH)", GWB_M_PUT | GWB_M_PATCH },
	{ "method == DELETE", GWB_M_DELETE },
};

static void add_route(gset *g, int kind, unsigned host, const char *path,
                      uint32_t methods)
{
	groute *r = &g->routes[g->nroutes++];
	r->kind = kind;
	r->host = host;
	r->path = xstrdup(path);
	r->methods = methods;
}

/* n routes: about 50 per host; per host a tree of service/resource
 * prefixes, some exact paths, method splits on part of them. */
static void gen_set(gset *g, size_t n, uint64_t seed)
{
	rng r = { seed };
	memset(g, 0, sizeof *g);
	g->nhosts = n / 50 ? (unsigned)(n / 50) : 1;
	g->hosts = xmalloc(g->nhosts * sizeof *g->hosts);
	g->wild = xmalloc(g->nhosts * sizeof *g->wild);
	g->routes = xmalloc((n + 1) * sizeof *g->routes);
	for (unsigned h = 0; h < g->nhosts; h++) {
		char buf[128];
		g->wild[h] = rnd(&r, 100) < 3;     /* ~3% wildcard hosts */
		if (g->wild[h])
			snprintf(buf, sizeof buf, "*.t%u.example.com", h);
		else
			snprintf(buf, sizeof buf, "%s%u.example.com", words[h % NWORDS], h);
		g->hosts[h] = xstrdup(buf);
	}

	sbuf *t = &g->text;
	sb_printf(t, "# route-bench: %zu routes over %u hosts\n\n", n, g->nhosts);
	unsigned nups = g->nhosts < 1000 ? g->nhosts : 1000;
	for (unsigned u = 0; u < nups; u++)
		sb_printf(t, "upstream u%u {\n    server 10.%u.%u.1:8080;\n"
		          "    server 10.%u.%u.2:8080;\n}\n",
		          u, u / 250, u % 250, u / 250, u % 250);

	size_t per_host = (n - 1 + g->nhosts - 1) / g->nhosts;
	for (unsigned h = 0; h < g->nhosts && g->nroutes < n - 1; h++) {
		unsigned ups = h % nups;
		for (size_t j = 0; j < per_host && g->nroutes < n - 1; j++) {
			char path[128];
			unsigned k = rnd(&r, 100);
			unsigned svc = (unsigned)(j / 8) % NWORDS, res = (unsigned)j % 8;
			size_t idx = g->nroutes;
			if (k < 5) {
				/* regex route: an id-shaped path under the service */
				snprintf(path, sizeof path, "/v%u/%s/%s%u/12345/detail",
				         (unsigned)(j / (8 * NWORDS)) + 1, words[svc],
				         words[(svc + res + 1) % NWORDS], res);
				sb_printf(t, "route r%zu {\n    match host == \"%s\" and "
				          "path ~ \"^/v%u/%s/%s%u/([0-9]+)/detail$\";\n"
				          "    proxy u%u;\n}\n", idx, g->hosts[h],
				          (unsigned)(j / (8 * NWORDS)) + 1, words[svc],
				          words[(svc + res + 1) % NWORDS], res, ups);
				add_route(g, RK_REGEX, h, path, GWB_M_ALL);
				continue;
			}
			snprintf(path, sizeof path, "/v%u/%s/%s%u/",
			         (unsigned)(j / (8 * NWORDS)) + 1, words[svc],
			         words[(svc + res + 1) % NWORDS], res);
			if (k < 15 && g->nroutes < n - 2) {
				/* a canary in front of the route it diverts from */
				int hdr = k < 10;
				sb_printf(t, "route r%zu {\n    match host == \"%s\" and "
				          "path ^= \"%s\" and %s;\n    proxy u%u;\n}\n",
				          idx, g->hosts[h], path,
				          hdr ? "header(\"X-Canary\") == \"1\""
				              : "query(\"v\") == \"2\"",
				          (ups + 1) % nups);
				add_route(g, hdr ? RK_HEADER : RK_QUERY, h, path, GWB_M_ALL);
				idx = g->nroutes;
			}
			unsigned ms = rnd(&r, 10) < 6 ? 0 : 1 + rnd(&r, 4);
			int exact = rnd(&r, 10) == 0;
			if (exact)
				path[strlen(path) - 1] = 0;   /* "/v1/users/items0" */
			sb_printf(t, "route r%zu {\n    match host == \"%s\" and path %s \"%s\"%s%s;\n"
			          "    proxy u%u;\n}\n", idx, g->hosts[h],
			          exact ? "==" : "^=", path, msets[ms].text ? " and " : "",
			          msets[ms].text ? msets[ms].text : "", ups);
			add_route(g, exact ? RK_EXACT : RK_PREFIX, h, path, msets[ms].mask);
		}
	}
	sb_printf(t, "route fallback {\n    match any;\n"
	          "    respond 404 \"{\\\"error\\\":\\\"no route\\\"}\" "
	          "content_type=\"application/json\";\n}\n");
	add_route(g, RK_PREFIX, 0, "", GWB_M_ALL);   /* placeholder, never targeted */
}

static void free_set(gset *g)
{
	for (unsigned h = 0; h < g->nhosts; h++)
		free(g->hosts[h]);
	for (size_t i = 0; i < g->nroutes; i++)
		free(g->routes[i].path);
	free(g->hosts);
	free(g->wild);
	free(g->routes);
	free(g->text.p);
}

/* ------------------------------------------------------------ requests */
typedef struct breq {
	gwb_request gr;
	refeval_req rr;
	refeval_hdr hdr;
	int has_hdr;
	char *buf;             /* method, host, path, query: NUL-terminated, packed */
} breq;

static int breq_header(void *ctx, const char *name, const char **v, size_t *vlen)
{
	const breq *q = ctx;
	if (q->has_hdr && strcasecmp(name, q->hdr.name) == 0) {
		*v = q->hdr.value;
		*vlen = strlen(q->hdr.value);
		return 1;
	}
	return 0;
}

static const char *method_in(rng *r, uint32_t mask)
{
	static const char *const names[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
	};
	static const uint32_t bits[] = {
		GWB_M_GET, GWB_M_HEAD, GWB_M_POST, GWB_M_PUT, GWB_M_DELETE,
		GWB_M_PATCH, GWB_M_OPTIONS,
	};
	for (int tries = 0; tries < 32; tries++) {
		unsigned i = rnd(r, 7);
		if (tries == 0 && mask == GWB_M_ALL)
			i = rnd(r, 3) ? 0 : i;   /* mostly GET, as traffic is */
		if (bits[i] & mask)
			return names[i];
	}
	return "GET";
}

/* ~70% aimed at a route (most hit it, some just miss by method, header or
 * a path one level up), ~30% plain misses (unknown host or path) */
static void gen_request(rng *r, const gset *g, breq *q)
{
	struct { char method[8], host[96], path[160], query[32]; } w;   /* work space */
	memset(q, 0, sizeof *q);
	memset(&w, 0, sizeof w);
	unsigned k = rnd(r, 100);
	const groute *rt = &g->routes[rnd(r, (unsigned)(g->nroutes - 1))];
	const char *host = g->hosts[rt->host];
	if (g->wild[rt->host])
		snprintf(w.host, sizeof w.host, "pod%u%s", rnd(r, 50), host + 1);
	else
		snprintf(w.host, sizeof w.host, "%s", host);
	if (rnd(r, 10) == 0)
		snprintf(w.host + strlen(w.host), sizeof w.host - strlen(w.host), ":443");
	snprintf(w.method, sizeof w.method, "%s", method_in(r, rt->methods));
	switch (rt->kind) {
	case RK_EXACT:
	case RK_REGEX:
		snprintf(w.path, sizeof w.path, "%s", rt->path);
		break;
	default:
		snprintf(w.path, sizeof w.path, "%s%u", rt->path, rnd(r, 100000));
		break;
	}
	if (rt->kind == RK_HEADER || rnd(r, 20) == 0) {
		q->hdr.name = "X-Canary";
		q->hdr.value = rnd(r, 2) ? "1" : "0";
		q->has_hdr = 1;
	}
	if (rt->kind == RK_QUERY || rnd(r, 4) == 0)
		snprintf(w.query, sizeof w.query, "v=%u&page=%u", 1 + rnd(r, 2), rnd(r, 9));
	if (k >= 70 && k < 85) {
		snprintf(w.host, sizeof w.host, "unknown%u.example.org", rnd(r, 1000));
	} else if (k >= 85 && k < 95) {
		snprintf(w.path, sizeof w.path, "/v9/nothing/%u", rnd(r, 1000));
	} else if (k >= 95) {
		snprintf(w.method, sizeof w.method, "OPTIONS");
	}

	/* packed into one small allocation, as a parser leaves them */
	size_t lm = strlen(w.method), lh = strlen(w.host), lp = strlen(w.path),
	       lq = strlen(w.query);
	char *p = q->buf = xmalloc(lm + lh + lp + lq + 4);
	const char *method = memcpy(p, w.method, lm + 1);
	const char *hst = memcpy(p += lm + 1, w.host, lh + 1);
	const char *path = memcpy(p += lh + 1, w.path, lp + 1);
	const char *query = memcpy(p += lp + 1, w.query, lq + 1);

	q->rr.method = method;
	q->rr.host = hst;
	q->rr.path = path;
	q->rr.query = lq ? query : NULL;
	q->rr.headers = &q->hdr;
	q->rr.nheaders = (size_t)q->has_hdr;
	q->rr.ip_family = 4;
	q->rr.ip[0] = 192, q->rr.ip[1] = 0, q->rr.ip[2] = 2, q->rr.ip[3] = (uint8_t)rnd(r, 256);
	q->gr = (gwb_request){
		.method = method, .method_len = lm,
		.host = hst, .host_len = lh,
		.path = path, .path_len = lp,
		.query = query, .query_len = lq,
		.header = breq_header, .ctx = q, .ip_family = 4,
	};
	memcpy(q->gr.ip, q->rr.ip, 16);
}

/* what parsing a request leaves in the cache: its bytes and its
 * descriptor (the header callback's context included) */
static unsigned touch_req(const breq *q)
{
	unsigned x = q->gr.ip[3] + (unsigned)q->has_hdr;
	for (size_t i = 0; i < q->gr.method_len + q->gr.host_len + q->gr.path_len +
	                       q->gr.query_len + 4; i++)
		x += (unsigned char)q->buf[i];
	return x;
}

/* ------------------------------------------------------------ one size */
typedef struct result {
	size_t n;
	double compile_s, load_s, bytes_per_route, match_ns, naive_ns, hit_rate;
	unsigned mismatches;
} result;

static int compile_once(const gset *g, ast_file *f, uint8_t **tb, size_t *tl,
                        double *secs)
{
	diag_ctx d;
	diag_init(&d);
	memset(f, 0, sizeof *f);
	double t0 = now();
	int nerr = parse_string("bench.gwr", g->text.p, g->text.n, f, &d);
	if (!nerr)
		nerr = sema_check(f, &d);
	if (!nerr && emit_table(f, &d, tb, tl) != 0)
		nerr = 1;
	*secs = now() - t0;
	if (nerr || d.nerrors) {
		diag_sort(&d);
		diag_print_text(&d, stderr);
		diag_fini(&d);
		return -1;
	}
	diag_fini(&d);
	return 0;
}

static int no_naive;

static int bench_size(size_t n, int quiet, result *res)
{
	gset g;
	ast_file f;
	uint8_t *tb = NULL;
	size_t tl = 0;
	double times[3];
	char err[256];

	memset(res, 0, sizeof *res);
	res->n = n;
	gen_set(&g, n, 0xbe7c4000u + n);
	for (int i = 0; i < 3; i++) {
		if (i) {
			ast_free(&f);
			free(tb);
			tb = NULL;
		}
		if (compile_once(&g, &f, &tb, &tl, &times[i]) < 0) {
			fprintf(stderr, "route-bench: the generated %zu-route set does not compile\n", n);
			free_set(&g);
			return -1;
		}
	}
	res->compile_s = median(times, 3);
	res->bytes_per_route = (double)tl / (double)n;

	double t0 = now();
	gwb_table *t = gwb_load_mem(tb, tl, err, sizeof err);
	res->load_s = now() - t0;
	if (!t) {
		fprintf(stderr, "route-bench: gwb_load_mem: %s\n", err);
		ast_free(&f);
		free(tb);
		free_set(&g);
		return -1;
	}
	refeval *re = refeval_new(&f, err, sizeof err);
	if (!re) {
		fprintf(stderr, "route-bench: refeval_new: %s\n", err);
		gwb_free(t);
		ast_free(&f);
		free(tb);
		free_set(&g);
		return -1;
	}

	breq *reqs = xmalloc(BENCH_REQS * sizeof *reqs);
	rng r = { 0x5eedu + n };
	for (size_t i = 0; i < BENCH_REQS; i++) {
		gen_request(&r, &g, &reqs[i]);
		reqs[i].gr.ctx = &reqs[i];
	}

	/* matcher: median over batches */
	gwb_scratch *s = gwb_scratch_new();
	gwb_match m;
	/* ROUTE_BENCH_LOOKUPS: more lookups, e.g. to profile the matcher */
	const char *ls = getenv("ROUTE_BENCH_LOOKUPS");
	size_t lookups = ls && strtoul(ls, NULL, 10) >= BENCH_BATCH ?
	                 strtoul(ls, NULL, 10) : BENCH_LOOKUPS;
	size_t nb = lookups / BENCH_BATCH;
	double *samples = xmalloc(nb * sizeof *samples);
	volatile uint32_t sink = 0;
	size_t hits = 0;
	for (size_t i = 0; i < BENCH_REQS; i++)   /* warm-up, and the hit rate */
		hits += gwb_match_request(t, &reqs[i].gr, &m, s) != gwb_nroutes(t) - 1;
	res->hit_rate = (double)hits / BENCH_REQS;
	size_t next = 0;
	for (size_t b = 0; b < nb; b++) {
		for (size_t i = 0; i < BENCH_BATCH; i++)      /* "parse" them */
			sink += touch_req(&reqs[(next + i) & (BENCH_REQS - 1)]);
		double b0 = now();
		for (size_t i = 0; i < BENCH_BATCH; i++) {
			sink += gwb_match_request(t, &reqs[next].gr, &m, s);
			next = (next + 1) & (BENCH_REQS - 1);
		}
		samples[b] = (now() - b0) * 1e9 / BENCH_BATCH;
	}
	res->match_ns = median(samples, nb);

	/* naive: a budget of route evaluations, so 100k does not take hours */
	size_t naive_lookups = no_naive ? 10 : (size_t)(NAIVE_BUDGET / (double)n);
	if (naive_lookups > BENCH_LOOKUPS)
		naive_lookups = BENCH_LOOKUPS;
	size_t nbatch = naive_lookups >= 100000 ? BENCH_BATCH : 10;
	size_t nnb = naive_lookups / nbatch ? naive_lookups / nbatch : 1;
	double *nsamples = xmalloc(nnb * sizeof *nsamples);
	for (size_t b = 0; b < nnb; b++) {
		double b0 = now();
		for (size_t i = 0; i < nbatch; i++) {
			sink += (uint32_t)refeval_run(re, &reqs[next].rr);
			next = (next + 1) & (BENCH_REQS - 1);
		}
		nsamples[b] = (now() - b0) * 1e9 / (double)nbatch;
	}
	res->naive_ns = median(nsamples, nnb);
	(void)sink;

	/* the two must agree: a fast wrong matcher is no result */
	size_t ncheck = nnb * nbatch < 2000 ? nnb * nbatch : 2000;
	for (size_t i = 0; i < ncheck; i++) {
		int want = refeval_run(re, &reqs[i].rr);
		uint32_t got = gwb_match_request(t, &reqs[i].gr, &m, s);
		if ((got == GWB_NONE ? -1 : (int)got) != want) {
			if (!res->mismatches++)
				fprintf(stderr, "route-bench: MISMATCH at %zu routes: %s %s%s%s%s -> "
				        "gwb %d, naive %d\n", n, reqs[i].rr.method, reqs[i].rr.host,
				        reqs[i].rr.path, reqs[i].rr.query ? "?" : "",
				        reqs[i].rr.query ? reqs[i].rr.query : "",
				        got == GWB_NONE ? -1 : (int)got, want);
		}
	}

	if (!quiet)
		printf("%7zu routes: compile %8.3f s  load %7.3f s  %6.1f bytes/route  "
		       "match %7.1f ns  naive %11.1f ns  (hits %.0f%%, %zu+%zu lookups%s)\n",
		       n, res->compile_s, res->load_s, res->bytes_per_route,
		       res->match_ns, res->naive_ns, 100 * res->hit_rate,
		       nb * BENCH_BATCH, nnb * nbatch,
		       res->mismatches ? ", MISMATCHES" : "");
	fflush(stdout);

	free(nsamples);
	free(samples);
	gwb_scratch_free(s);
	for (size_t i = 0; i < BENCH_REQS; i++)
		free(reqs[i].buf);
	free(reqs);
	refeval_free(re);
	gwb_free(t);
	ast_free(&f);
	free(tb);
	free_set(&g);
	return res->mismatches ? -1 : 0;
}

static const char *size_tag(size_t n, char *buf, size_t len)
{
	if (n % 1000 == 0)
		snprintf(buf, len, "%zuk", n / 1000);
	else
		snprintf(buf, len, "%zu", n);
	return buf;
}

int main(int argc, char **argv)
{
	size_t sizes[16];
	size_t nsizes = 0;
	int quiet = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-q") == 0) {
			quiet = 1;
		} else if (strcmp(argv[i], "--no-naive") == 0) {
			no_naive = 1;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: route-bench [-q] [--no-naive] [ROUTES...]   (default 1000 10000 100000)\n");
			return 0;
		} else {
			char *end;
			unsigned long v = strtoul(argv[i], &end, 10);
			if (*end || v < 2 || v > GWB_MAX_ROUTES || nsizes == 16) {
				fprintf(stderr, "route-bench: bad size '%s'\n", argv[i]);
				return 2;
			}
			sizes[nsizes++] = v;
		}
	}
	if (!nsizes) {
		sizes[0] = 1000, sizes[1] = 10000, sizes[2] = 100000;
		nsizes = 3;
	}
	result res[16];
	int rc = 0;
	for (size_t i = 0; i < nsizes; i++)
		if (bench_size(sizes[i], quiet, &res[i]) < 0)
			rc = 1;

	/* machine-readable, one figure per line: the extras first, then the
	 * five the issue names, in its order */
	static const struct { const char *key; size_t n; } last[] = {
		{ "compile_s", 100000 }, { "match_ns", 10000 }, { "match_ns", 100000 },
		{ "naive_ns", 10000 }, { "bytes_per_route", 10000 },
	};
	static const char *const keys[] = {
		"compile_s", "load_s", "bytes_per_route", "match_ns", "naive_ns",
	};
	char tag[32];
	for (int pass = 0; pass < 2; pass++) {
		size_t nk = pass ? sizeof last / sizeof last[0] : sizeof keys / sizeof keys[0];
		for (size_t k = 0; k < nk; k++)
			for (size_t i = 0; i < nsizes; i++) {
				const char *key = pass ? last[k].key : keys[k];
				int is_last = 0;
				for (size_t j = 0; j < sizeof last / sizeof last[0]; j++)
					is_last |= strcmp(last[j].key, key) == 0 && last[j].n == res[i].n;
				if (pass ? res[i].n != last[k].n : is_last)
					continue;
				printf("%s_%s=", key, size_tag(res[i].n, tag, sizeof tag));
				if (strcmp(key, "compile_s") == 0)
					printf("%.3f\n", res[i].compile_s);
				else if (strcmp(key, "load_s") == 0)
					printf("%.4f\n", res[i].load_s);
				else if (strcmp(key, "bytes_per_route") == 0)
					printf("%.1f\n", res[i].bytes_per_route);
				else if (strcmp(key, "match_ns") == 0)
					printf("%.1f\n", res[i].match_ns);
				else
					printf("%.1f\n", res[i].naive_ns);
			}
	}
	return rc;
}

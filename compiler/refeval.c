/*
 * refeval.c — the naive reference evaluator (see refeval.h). This is the
 * oracle the compiled table is checked against, so every function here is
 * written the plainest way; speed is only a concern in that regexes and
 * CIDRs are parsed once per file (refeval_new), not per request.
 *
 * Nothing from gwb/ is called: only the method bit values of gwb.h are
 * used, because the AST stores method sets as those bits.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "gwb.h"
#include "refeval.h"

/* what refeval_new prepares for one AE_PATH_RE or AE_IP_IN node */
typedef struct rcidr {
	int family;             /* 4 or 6 */
	unsigned prefix;        /* bits */
	uint8_t addr[16];
} rcidr;

typedef struct prep {
	const ast_expr *e;      /* the key: node address */
	pcre2_code *re;         /* AE_PATH_RE */
	rcidr *cidrs; size_t ncidrs;   /* AE_IP_IN */
} prep;

struct refeval {
	const ast_file *f;
	const ast_item **routes; size_t nroutes;
	prep *p; size_t np, pcap;      /* sorted by e after refeval_new */
	pcre2_match_data *md;
};

/* a request reduced to what the expressions look at */
typedef struct rview {
	const refeval_req *rq;
	char host[512];         /* lowercased, port stripped */
	size_t hostlen;
	int host_ok;            /* 0 when the host did not fit: matches no host test */
	uint32_t mbit;
} rview;

/* ---------------------------------------------------------- small parts */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, const char *b)
{
	while (*a && *b) {
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return 0;
		a++, b++;
	}
	return *a == *b;
}

static uint32_t method_bit(const char *m)
{
	static const struct { const char *name; uint32_t bit; } tab[] = {
		{ "GET", GWB_M_GET }, { "HEAD", GWB_M_HEAD }, { "POST", GWB_M_POST },
		{ "PUT", GWB_M_PUT }, { "DELETE", GWB_M_DELETE },
		{ "PATCH", GWB_M_PATCH }, { "OPTIONS", GWB_M_OPTIONS },
		{ "CONNECT", GWB_M_CONNECT }, { "TRACE", GWB_M_TRACE },
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(m, tab[i].name) == 0)
			return tab[i].bit;
	return GWB_M_OTHER;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* percent-decode s[0..n) into out (at most n bytes); '+' is a space; a '%'
 * not followed by two hex digits is kept as it is */
static size_t qdecode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n &&
		           hexval((unsigned char)s[i + 1]) >= 0 &&
		           hexval((unsigned char)s[i + 2]) >= 0) {
			out[o++] = (char)(hexval((unsigned char)s[i + 1]) * 16 +
			                  hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	return o;
}

/* the first header called name (any case), or NULL */
static const char *header_get(const refeval_req *rq, const char *name)
{
	for (size_t i = 0; i < rq->nheaders; i++)
		if (ieq(rq->headers[i].name, name))
			return rq->headers[i].value;
	return NULL;
}

/* query argument name: 1 and its decoded value in val/vlen (val must hold
 * strlen(query) bytes) when present */
static int query_get(const char *q, const char *name, char *val, size_t *vlen)
{
	size_t nlen = strlen(name);
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t plen = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', plen);
		size_t klen = eq ? (size_t)(eq - q) : plen;
		char *key = malloc(klen + 1);
		if (!key)
			abort();
		size_t kd = qdecode(q, klen, key);
		int same = kd == nlen && memcmp(key, name, nlen) == 0;
		free(key);
		if (same) {
			*vlen = eq ? qdecode(eq + 1, plen - klen - 1, val) : 0;
			return 1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* cookie name from the first Cookie header: 1 and value (not decoded) */
static int cookie_get(const refeval_req *rq, const char *name,
                      const char **val, size_t *vlen)
{
	const char *c = header_get(rq, "Cookie");
	size_t nlen = strlen(name);
	while (c && *c) {
		const char *semi = strchr(c, ';');
		const char *end = semi ? semi : c + strlen(c);
		const char *b = c;
		while (b < end && is_ws(*b))
			b++;
		const char *e = end;
		while (e > b && is_ws(e[-1]))
			e--;
		const char *eq = memchr(b, '=', (size_t)(e - b));
		if (eq) {
			const char *ke = eq;
			while (ke > b && is_ws(ke[-1]))
				ke--;
			const char *vb = eq + 1;
			while (vb < e && is_ws(*vb))
				vb++;
			if ((size_t)(ke - b) == nlen && memcmp(b, name, nlen) == 0) {
				const char *ve = e;
				/* a quoted cookie-value (RFC 6265) is its inside */
				if (ve - vb >= 2 && vb[0] == '"' && ve[-1] == '"')
					vb++, ve--;
				*val = vb;
				*vlen = (size_t)(ve - vb);
				return 1;
			}
		}
		c = semi ? semi + 1 : NULL;
	}
	return 0;
}

static int cidr_parse(const char *s, rcidr *out)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen >= sizeof buf)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = 0;
	memset(out, 0, sizeof *out);
	unsigned maxbits;
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = 6;
		maxbits = 128;
	} else {
		return -1;
	}
	out->prefix = maxbits;
	if (slash) {
		char *end;
		unsigned long p = strtoul(slash + 1, &end, 10);
		if (end == slash + 1 || *end || p > maxbits)
			return -1;
		out->prefix = (unsigned)p;
	}
	return 0;
}

/* the first c->prefix bits of addr equal those of c->addr */
static int cidr_has(const rcidr *c, int family, const uint8_t *addr)
{
	if (family != c->family)
		return 0;
	for (unsigned bit = 0; bit < c->prefix; bit++) {
		unsigned byte = bit / 8, shift = 7 - bit % 8;
		if (((addr[byte] >> shift) & 1) != ((c->addr[byte] >> shift) & 1))
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ prepare */

static int prep_cmp(const void *a, const void *b)
{
	const ast_expr *x = ((const prep *)a)->e, *y = ((const prep *)b)->e;
	return x < y ? -1 : x > y;
}

static const prep *prep_find(const refeval *r, const ast_expr *e)
{
	prep key = { .e = e };
	return r->np ? bsearch(&key, r->p, r->np, sizeof *r->p, prep_cmp) : NULL;
}

static int prep_expr(refeval *r, const ast_expr *e, char *err, size_t errlen)
{
	if (!e)
		return 0;
	if (e->kind == AE_AND || e->kind == AE_OR)
		return prep_expr(r, e->a, err, errlen) ? -1 : prep_expr(r, e->b, err, errlen);
	if (e->kind == AE_NOT)
		return prep_expr(r, e->a, err, errlen);
	if (e->kind != AE_PATH_RE && e->kind != AE_IP_IN)
		return 0;
	if (r->np == r->pcap) {
		size_t nc = r->pcap ? 2 * r->pcap : 16;
		prep *np = realloc(r->p, nc * sizeof *np);
		if (!np) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		r->p = np;
		r->pcap = nc;
	}
	prep *p = &r->p[r->np];
	memset(p, 0, sizeof *p);
	p->e = e;
	if (e->kind == AE_PATH_RE) {
		int ec;
		PCRE2_SIZE off;
		p->re = pcre2_compile((PCRE2_SPTR)e->s, e->len, 0, &ec, &off, NULL);
		if (!p->re) {
			char msg[256];
			pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
			snprintf(err, errlen, "regex \"%s\": %s at %zu", e->s, msg,
			         (size_t)off);
			return -1;
		}
	} else {
		p->cidrs = calloc(e->ncidrs ? e->ncidrs : 1, sizeof *p->cidrs);
		if (!p->cidrs) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->ncidrs = e->ncidrs;
		r->np++;    /* owned from here on, freed by refeval_free */
		for (size_t i = 0; i < e->ncidrs; i++)
			if (cidr_parse(e->cidrs[i].s, &p->cidrs[i]) < 0) {
				snprintf(err, errlen, "bad CIDR \"%s\"", e->cidrs[i].s);
				return -1;
			}
		return 0;
	}
	r->np++;
	return 0;
}

refeval *refeval_new(const ast_file *f, char *err, size_t errlen)
{
	refeval *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->f = f;
	r->routes = calloc(f->nitems ? f->nitems : 1, sizeof *r->routes);
	r->md = pcre2_match_data_create(GWB_MAX_CAPTURES, NULL);
	if (!r->routes || !r->md) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < f->nitems; i++) {
		if (f->items[i].kind != AI_ROUTE)
			continue;
		r->routes[r->nroutes++] = &f->items[i];
		if (prep_expr(r, f->items[i].match, err, errlen) < 0)
			goto fail;
	}
	if (r->np)   /* qsort(NULL, 0, ...) is undefined */
		qsort(r->p, r->np, sizeof *r->p, prep_cmp);
	return r;
fail:
	refeval_free(r);
	return NULL;
}

void refeval_free(refeval *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->np; i++) {
		pcre2_code_free(r->p[i].re);
		free(r->p[i].cidrs);
	}
	free(r->p);
	free(r->routes);
	pcre2_match_data_free(r->md);
	free(r);
}

/* ------------------------------------------------------------- evaluate */

static void view_init(rview *v, const refeval_req *rq)
{
	const char *h = rq->host ? rq->host : "";
	size_t n = strlen(h);
	/* "[v6]:port" -> "[v6]"; "name.:port" -> "name"; a "[" without its
	 * "]" is kept whole (malformed: matches no rule anyway) */
	if (h[0] == '[') {
		const char *cut = strchr(h, ']');
		if (cut)
			n = (size_t)(cut - h) + 1;
	} else {
		if (strchr(h, ':'))
			n = (size_t)(strchr(h, ':') - h);
		if (n > 1 && h[n - 1] == '.')   /* "a.example.com." is a.example.com */
			n--;
	}
	v->rq = rq;
	v->host_ok = n < sizeof v->host;
	v->hostlen = v->host_ok ? n : 0;
	for (size_t i = 0; i < v->hostlen; i++)
		v->host[i] = (char)lower((unsigned char)h[i]);
	v->host[v->hostlen] = 0;
	v->mbit = method_bit(rq->method ? rq->method : "");
}

static int host_test(const rview *v, const char *pat)
{
	char want[512];
	size_t n = strlen(pat);
	if (!v->host_ok || n >= sizeof want)
		return 0;
	for (size_t i = 0; i <= n; i++)
		want[i] = (char)lower((unsigned char)pat[i]);
	if (want[0] == '*' && want[1] == '.') {
		const char *sfx = want + 1;          /* ".example.com" */
		size_t sl = n - 1;
		return v->hostlen > sl &&
		       memcmp(v->host + v->hostlen - sl, sfx, sl) == 0;
	}
	return v->hostlen == n && memcmp(v->host, want, n) == 0;
}

static int eval(const refeval *r, const ast_expr *e, const rview *v)
{
	const refeval_req *rq = v->rq;
	const char *path = rq->path ? rq->path : "";
	switch (e->kind) {
	case AE_ANY:
		return 1;
	case AE_AND:
		return eval(r, e->a, v) && eval(r, e->b, v);
	case AE_OR:
		return eval(r, e->a, v) || eval(r, e->b, v);
	case AE_NOT:
		return !eval(r, e->a, v);
	case AE_HOST_EQ:
		return host_test(v, e->s);
	case AE_PATH_EQ:
		return strlen(path) == e->len && memcmp(path, e->s, e->len) == 0;
	case AE_PATH_PREFIX:
		return strlen(path) >= e->len && memcmp(path, e->s, e->len) == 0;
	case AE_PATH_RE: {
		const prep *p = prep_find(r, e);
		return p && pcre2_match(p->re, (PCRE2_SPTR)path, strlen(path), 0, 0,
		                        r->md, NULL) >= 0;
	}
	case AE_METHOD:
		return (e->methods & v->mbit) != 0;
	case AE_HEADER_EQ: {
		const char *h = header_get(rq, e->name);
		return h && strlen(h) == e->len && memcmp(h, e->s, e->len) == 0;
	}
	case AE_HEADER_HAS:
		return header_get(rq, e->name) != NULL;
	case AE_QUERY_EQ:
	case AE_QUERY_HAS: {
		size_t ql = rq->query ? strlen(rq->query) : 0;
		char *val = malloc(ql + 1);
		size_t vlen = 0;
		if (!val)
			abort();
		int has = query_get(rq->query, e->name, val, &vlen);
		int ok = has && (e->kind == AE_QUERY_HAS ||
		                 (vlen == e->len && memcmp(val, e->s, e->len) == 0));
		free(val);
		return ok;
	}
	case AE_COOKIE_EQ:
	case AE_COOKIE_HAS: {
		const char *val;
		size_t vlen;
		int has = cookie_get(rq, e->name, &val, &vlen);
		return has && (e->kind == AE_COOKIE_HAS ||
		               (vlen == e->len && memcmp(val, e->s, e->len) == 0));
	}
	case AE_IP_IN: {
		const prep *p = prep_find(r, e);
		if (!p)
			return 0;
		for (size_t i = 0; i < p->ncidrs; i++)
			if (cidr_has(&p->cidrs[i], rq->ip_family, rq->ip))
				return 1;
		return 0;
	}
	}
	return 0;
}

int refeval_expr(const refeval *r, const ast_expr *e, const refeval_req *rq)
{
	rview v;
	view_init(&v, rq);
	return eval(r, e, &v);
}

int refeval_regex_caps(const refeval *r, const ast_expr *e, const char *path,
                       size_t *cap)
{
	const prep *p = prep_find(r, e);
	if (!p || !p->re)
		return -1;
	int rc = pcre2_match(p->re, (PCRE2_SPTR)path, strlen(path), 0, 0, r->md, NULL);
	if (rc < 0)
		return -1;
	/* rc = 0 means the ovector was too small: all GWB_MAX_CAPTURES are set */
	int n = rc == 0 ? GWB_MAX_CAPTURES : rc;
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
	for (int i = 0; i < GWB_MAX_CAPTURES; i++) {
		cap[2 * i] = i < n ? ov[2 * i] : PCRE2_UNSET;
		cap[2 * i + 1] = i < n ? ov[2 * i + 1] : PCRE2_UNSET;
	}
	return n;
}

int refeval_run(const refeval *r, const refeval_req *rq)
{
	rview v;
	view_init(&v, rq);
	for (size_t i = 0; i < r->nroutes; i++)
		if (r->routes[i]->match && eval(r, r->routes[i]->match, &v))
			return (int)i;
	return -1;
}

int refeval_first(const ast_file *f, const refeval_req *rq)
{
	char err[256];
	refeval *r = refeval_new(f, err, sizeof err);
	if (!r)
		return -2;
	int got = refeval_run(r, rq);
	refeval_free(r);
	return got;
}

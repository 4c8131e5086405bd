/*
 * gwb_build.c — the builder gwc's emitter drives: interned strings,
 * regexes (checked with PCRE2 here, compiled again by the loader), CIDR
 * sets, upstreams, and routes with their programs and index keys.
 *
 * Two properties matter beyond correctness:
 *  - determinism: the same call sequence gives the same bytes. Every table
 *    is ordered by first insertion; the hash sets only answer "seen
 *    before?" and never decide an order. No pointer, no padding byte and no
 *    uninitialised field reaches the output.
 *  - linear time: 100k routes must build well under a second, so interning
 *    goes through hash sets and nothing walks all routes per route.
 *
 * Misuse by the caller (a phase out of order, an operand index out of
 * range) and limits a user can hit are remembered as the first error and
 * reported by gwb_builder_finish(), never asserted.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "gwb_int.h"

typedef struct vec {
	void *v;
	size_t n, cap;        /* in elements */
} vec;

/* a set of item numbers keyed by a caller-computed hash; items are
 * 0..n-1 and their hashes are kept so that growing needs no callback */
typedef struct hset {
	uint32_t *slot;       /* item + 1, 0 = empty */
	uint32_t cap;         /* power of two */
	vec hash;             /* uint32_t per item */
} hset;

struct gwb_builder {
	char err[256];
	int failed;

	vec strdata;          /* char */
	vec stridx;           /* uint32_t off, len */
	hset strset;
	vec regex;            /* gwb_regex */
	hset reset;
	vec cidr;             /* gwb_cidr */
	vec cidrset;          /* uint32_t first, count */
	hset cidrsetset;
	vec ups;              /* gwb_upstream */
	vec srv;              /* gwb_server */
	vec route;            /* gwb_route */
	vec debug;            /* gwb_debug */
	vec key;              /* gwb_index_key */
	vec code;             /* uint32_t */
	uint8_t source_hash[32];

	int stage;            /* 0 between routes, 1 match code, 2 actions */
	int phase;            /* last phase begun, -1 none */
};

static void b_fail(gwb_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void b_fail(gwb_builder *b, const char *fmt, ...)
{
	if (b->failed)
		return;         /* the first error is the one to report */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->err, sizeof b->err, fmt, ap);
	va_end(ap);
	b->failed = 1;
}

/* grows v to hold n more elements of size sz; 0 or -1 (out of memory) */
static int vec_reserve(gwb_builder *b, vec *v, size_t sz, size_t more)
{
	if (v->n + more <= v->cap)
		return 0;
	size_t nc = v->cap ? v->cap : 16;
	while (nc < v->n + more)
		nc *= 2;
	void *p = realloc(v->v, nc * sz);
	if (!p) {
		b_fail(b, "out of memory");
		return -1;
	}
	v->v = p;
	v->cap = nc;
	return 0;
}

static int vec_push(gwb_builder *b, vec *v, size_t sz, const void *e, size_t n)
{
	if (n == 0)
		return 0;
	if (vec_reserve(b, v, sz, n) < 0)
		return -1;
	memcpy((char *)v->v + v->n * sz, e, n * sz);
	v->n += n;
	return 0;
}

#define VEC_AT(vv, T, i) (((T *)(vv).v)[i])

static uint32_t fnv1a(const void *p, size_t n, uint32_t h)
{
	const uint8_t *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}
#define FNV_SEED 2166136261u

/* first slot for hash h: either empty or the next candidate; callers walk
 * with (i + 1) & (cap - 1) */
static int hset_grow(gwb_builder *b, hset *h)
{
	uint32_t nc = h->cap ? h->cap * 2 : 64;
	uint32_t *ns = calloc(nc, sizeof *ns);
	if (!ns) {
		b_fail(b, "out of memory");
		return -1;
	}
	for (size_t it = 0; it < h->hash.n; it++) {
		uint32_t i = VEC_AT(h->hash, uint32_t, it) & (nc - 1);
		while (ns[i])
			i = (i + 1) & (nc - 1);
		ns[i] = (uint32_t)it + 1;
	}
	free(h->slot);
	h->slot = ns;
	h->cap = nc;
	return 0;
}

/* records item (= number of items so far) with hash hv in slot position
 * found by the caller's probe; grows at 50% load */
static int hset_add(gwb_builder *b, hset *h, uint32_t hv)
{
	if (vec_push(b, &h->hash, sizeof(uint32_t), &hv, 1) < 0)
		return -1;
	if (h->hash.n * 2 > h->cap)
		return hset_grow(b, h);
	uint32_t i = hv & (h->cap - 1);
	while (h->slot[i])
		i = (i + 1) & (h->cap - 1);
	h->slot[i] = (uint32_t)h->hash.n;
	return 0;
}

gwb_builder *gwb_builder_new(void)
{
	gwb_builder *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->phase = -1;
	if (gwb_b_str(b, "", 0) != 0) {         /* string 0 is "" */
		gwb_builder_free(b);
		return NULL;
	}
	return b;
}

void gwb_builder_free(gwb_builder *b)
{
	if (!b)
		return;
	vec *vs[] = { &b->strdata, &b->stridx, &b->strset.hash, &b->regex, &b->reset.hash,
	              &b->cidr, &b->cidrset, &b->cidrsetset.hash, &b->ups, &b->srv,
	              &b->route, &b->debug, &b->key, &b->code };
	for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
		free(vs[i]->v);
	free(b->strset.slot);
	free(b->reset.slot);
	free(b->cidrsetset.slot);
	free(b);
}

/* ---------------------------------------------------------------- strings */
static const char *b_str(const gwb_builder *b, uint32_t i, uint32_t *len)
{
	uint32_t off = VEC_AT(b->stridx, uint32_t, 2 * i);
	if (len)
		*len = VEC_AT(b->stridx, uint32_t, 2 * i + 1);
	return (const char *)b->strdata.v + off;
}

static uint32_t b_nstr(const gwb_builder *b)
{
	return (uint32_t)(b->stridx.n / 2);
}

uint32_t gwb_b_str(gwb_builder *b, const char *s, size_t len)
{
	if (len > GWB_MAX_STRLEN) {
		b_fail(b, "string too long (%zu bytes, limit is %u)", len, GWB_MAX_STRLEN);
		return GWB_NONE;
	}
	uint32_t hv = fnv1a(s, len, FNV_SEED);
	if (b->strset.cap) {
		uint32_t i = hv & (b->strset.cap - 1);
		for (; b->strset.slot[i]; i = (i + 1) & (b->strset.cap - 1)) {
			uint32_t it = b->strset.slot[i] - 1, l;
			const char *p = b_str(b, it, &l);
			if (VEC_AT(b->strset.hash, uint32_t, it) == hv && l == len && memcmp(p, s, len) == 0)
				return it;
		}
	}
	uint32_t idx = b_nstr(b);
	if (idx >= GWB_MAX_STRINGS) {
		b_fail(b, "too many strings (limit is %u)", GWB_MAX_STRINGS);
		return GWB_NONE;
	}
	if (b->strdata.n + len + 1 > 0xffffffffu - 8) {
		b_fail(b, "string data too large");
		return GWB_NONE;
	}
	uint32_t ent[2] = { (uint32_t)b->strdata.n, (uint32_t)len };
	if (vec_push(b, &b->strdata, 1, s, len) < 0 || vec_push(b, &b->strdata, 1, "", 1) < 0 ||
	    vec_push(b, &b->stridx, sizeof(uint32_t), ent, 2) < 0 ||
	    hset_add(b, &b->strset, hv) < 0)
		return GWB_NONE;
	return idx;
}

/* ---------------------------------------------------------------- regexes */
uint32_t gwb_b_regex(gwb_builder *b, const char *pat, size_t len, uint32_t flags,
                     char *err, size_t errlen, size_t *erroff)
{
	if (erroff)
		*erroff = 0;
	if (flags & ~GWB_RE_CASELESS) {
		gwb_errf(err, errlen, "unknown regex flags 0x%x", flags);
		return GWB_NONE;
	}
	uint32_t ps = gwb_b_str(b, pat, len);
	if (ps == GWB_NONE) {
		gwb_errf(err, errlen, "%s", b->err);
		return GWB_NONE;
	}
	uint32_t hv = fnv1a(&ps, 4, fnv1a(&flags, 4, FNV_SEED));
	if (b->reset.cap) {
		uint32_t i = hv & (b->reset.cap - 1);
		for (; b->reset.slot[i]; i = (i + 1) & (b->reset.cap - 1)) {
			uint32_t it = b->reset.slot[i] - 1;
			const gwb_regex *r = &VEC_AT(b->regex, gwb_regex, it);
			if (r->pattern == ps && r->flags == flags)
				return it;
		}
	}
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len,
	                               (flags & GWB_RE_CASELESS) ? PCRE2_CASELESS : 0,
	                               &ec, &eo, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];
		if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
			strcpy((char *)msg, "invalid regex");
		gwb_errf(err, errlen, "%s", (const char *)msg);
		if (erroff)
			*erroff = eo;
		return GWB_NONE;
	}
	uint32_t ncap = 0;
	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ncap);
	pcre2_code_free(re);
	uint32_t idx = (uint32_t)b->regex.n;
	if (idx >= GWB_MAX_REGEXES) {
		b_fail(b, "too many regexes (limit is %u)", GWB_MAX_REGEXES);
		gwb_errf(err, errlen, "%s", b->err);
		return GWB_NONE;
	}
	gwb_regex r = { .pattern = ps, .flags = flags, .ncap = ncap, .reserved = 0 };
	if (vec_push(b, &b->regex, sizeof r, &r, 1) < 0 || hset_add(b, &b->reset, hv) < 0) {
		gwb_errf(err, errlen, "%s", b->err);
		return GWB_NONE;
	}
	return idx;
}

/* ---------------------------------------------------------------- cidrs */
uint32_t gwb_b_cidrset(gwb_builder *b, const gwb_cidr *v, size_t n)
{
	if (n > 0xffffu) {
		b_fail(b, "too many addresses in one list (%zu, limit is 65535)", n);
		return GWB_NONE;
	}
	/* normalise into the tail of the CIDR vector first (host bits and
	 * padding zeroed), then either keep it or find an equal set */
	size_t first = b->cidr.n;
	if (vec_reserve(b, &b->cidr, sizeof(gwb_cidr), n) < 0)
		return GWB_NONE;
	gwb_cidr *c = &VEC_AT(b->cidr, gwb_cidr, first);
	for (size_t i = 0; i < n; i++) {
		unsigned maxp = v[i].family == 4 ? 32 : 128;
		if ((v[i].family != 4 && v[i].family != 6) || v[i].prefix > maxp) {
			b_fail(b, "invalid CIDR (family %u, prefix %u)", v[i].family, v[i].prefix);
			return GWB_NONE;
		}
		memset(&c[i], 0, sizeof c[i]);
		c[i].family = v[i].family;
		c[i].prefix = v[i].prefix;
		for (unsigned k = 0; k < (maxp / 8); k++) {
			unsigned lo = k * 8;
			if (lo + 8 <= v[i].prefix)
				c[i].addr[k] = v[i].addr[k];
			else if (lo < v[i].prefix)
				c[i].addr[k] = v[i].addr[k] & (uint8_t)(0xff << (8 - (v[i].prefix - lo)));
		}
	}
	uint32_t hv = fnv1a(c, n * sizeof *c, FNV_SEED);
	if (b->cidrsetset.cap) {
		uint32_t i = hv & (b->cidrsetset.cap - 1);
		for (; b->cidrsetset.slot[i]; i = (i + 1) & (b->cidrsetset.cap - 1)) {
			uint32_t it = b->cidrsetset.slot[i] - 1;
			uint32_t f = VEC_AT(b->cidrset, uint32_t, 2 * it);
			uint32_t cn = VEC_AT(b->cidrset, uint32_t, 2 * it + 1);
			if (cn == n && memcmp(&VEC_AT(b->cidr, gwb_cidr, f), c, n * sizeof *c) == 0)
				return it;
		}
	}
	if (first + n > 0xffffffu) {
		b_fail(b, "too many CIDRs");
		return GWB_NONE;
	}
	b->cidr.n += n;
	uint32_t idx = (uint32_t)(b->cidrset.n / 2);
	uint32_t ent[2] = { (uint32_t)first, (uint32_t)n };
	if (vec_push(b, &b->cidrset, sizeof(uint32_t), ent, 2) < 0 ||
	    hset_add(b, &b->cidrsetset, hv) < 0)
		return GWB_NONE;
	return idx;
}

/* ---------------------------------------------------------------- upstreams */
uint32_t gwb_b_upstream(gwb_builder *b, const gwb_upstream *u,
                        const gwb_server *s, size_t ns)
{
	if (b->ups.n >= GWB_MAX_UPSTREAMS) {
		b_fail(b, "too many upstreams (limit is %u)", GWB_MAX_UPSTREAMS);
		return GWB_NONE;
	}
	if (ns > GWB_MAX_SERVERS) {
		b_fail(b, "too many servers in one upstream (limit is %u)", GWB_MAX_SERVERS);
		return GWB_NONE;
	}
	if (b->srv.n + ns > 0xffffffu) {
		b_fail(b, "too many servers");
		return GWB_NONE;
	}
	gwb_upstream c = *u;
	c.server_first = (uint32_t)b->srv.n;
	c.server_count = (uint32_t)ns;
	memset(c.reserved, 0, sizeof c.reserved);
	uint32_t strs[] = { c.name, c.hash_name, c.hc_path, c.tls_ca, c.tls_sni, c.tls_cert, c.tls_key };
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if (strs[i] >= b_nstr(b)) {
			b_fail(b, "upstream: string index %u out of range", strs[i]);
			return GWB_NONE;
		}
	if (vec_reserve(b, &b->srv, sizeof(gwb_server), ns) < 0)
		return GWB_NONE;
	for (size_t i = 0; i < ns; i++) {
		gwb_server sv = s[i];
		sv.reserved = 0;
		if (sv.addr >= b_nstr(b)) {
			b_fail(b, "upstream: server string index %u out of range", sv.addr);
			return GWB_NONE;
		}
		vec_push(b, &b->srv, sizeof sv, &sv, 1);
	}
	if (vec_push(b, &b->ups, sizeof c, &c, 1) < 0)
		return GWB_NONE;
	return (uint32_t)b->ups.n - 1;
}

void gwb_b_source_hash(gwb_builder *b, const uint8_t hash[32])
{
	memcpy(b->source_hash, hash, 32);
}

/* ---------------------------------------------------------------- routes */
static gwb_route *cur_route(gwb_builder *b)
{
	return &VEC_AT(b->route, gwb_route, b->route.n - 1);
}

void gwb_b_route_begin(gwb_builder *b, uint32_t name, uint32_t file,
                       uint32_t line, uint32_t col)
{
	if (b->stage != 0) {
		b_fail(b, "builder: route_begin inside a route");
		return;
	}
	if (b->route.n >= GWB_MAX_ROUTES) {
		b_fail(b, "too many routes (limit is %u)", GWB_MAX_ROUTES);
		return;
	}
	if (name >= b_nstr(b) || file >= b_nstr(b)) {
		b_fail(b, "builder: route name/file string index out of range");
		return;
	}
	gwb_route r;
	memset(&r, 0, sizeof r);
	r.name = name;
	r.match_pc = r.match_end = (uint32_t)b->code.n;
	gwb_debug d = { .file = file, .line = line, .col = col, .reserved = 0 };
	gwb_index_key k;
	memset(&k, 0, sizeof k);
	k.host_kind = GWB_HOST_ANY;
	k.path_kind = GWB_PATH_ANY;
	k.methods = GWB_M_ALL;
	if (vec_push(b, &b->route, sizeof r, &r, 1) < 0 ||
	    vec_push(b, &b->debug, sizeof d, &d, 1) < 0 ||
	    vec_push(b, &b->key, sizeof k, &k, 1) < 0)
		return;
	b->stage = 1;
	b->phase = -1;
}

uint32_t gwb_b_pc(const gwb_builder *b)
{
	return (uint32_t)b->code.n;
}

/* the operand checks that can be made at emit time (jumps are patched
 * later; the loader's verifier checks them) */
static int b_operand_ok(gwb_builder *b, enum gwb_op op, unsigned k, uint32_t a)
{
	const gwb_opinfo *oi = &gwb_ops[op];
	switch (oi->kind[k]) {
	case GWB_K_STR:
		return a < b_nstr(b);
	case GWB_K_TPL: {
		if (a >= b_nstr(b))
			return 0;
		uint32_t l;
		const char *s = b_str(b, a, &l);
		char e[128];
		size_t eo;
		if (gwb_tpl_check(s, l, &eo, e, sizeof e) < 0) {
			b_fail(b, "%s: operand %u: %s (at offset %zu)", oi->name, k + 1, e, eo);
			return 0;
		}
		return 1;
	}
	case GWB_K_RE:      return a < b->regex.n;
	case GWB_K_CIDRS:   return a < b->cidrset.n / 2;
	case GWB_K_UPS:     return a < b->ups.n;
	case GWB_K_METHODS: return a != 0 && (a & ~GWB_M_ALL) == 0;
	case GWB_K_STATUS:  return a >= 100 && a <= 599;
	case GWB_K_KEY:     return a < GWB_KEY__COUNT;
	case GWB_K_BOOL:    return a <= 1;
	case GWB_K_ENUM:    return a < 16;
	case GWB_K_U32:
	case GWB_K_JMP:
	default:
		return 1;
	}
}

uint32_t gwb_b_emit(gwb_builder *b, enum gwb_op op, const uint32_t *args)
{
	uint32_t pc = (uint32_t)b->code.n;
	if ((unsigned)op >= GWB_OP__COUNT) {
		b_fail(b, "builder: unknown opcode %u", (unsigned)op);
		return pc;
	}
	const gwb_opinfo *oi = &gwb_ops[op];
	if (b->stage == 1 && oi->phase != GWB_PH_MATCH)
		b_fail(b, "builder: %s in a match program", oi->name);
	else if (b->stage == 2 && (b->phase < 0 || oi->phase != (unsigned)b->phase))
		b_fail(b, "builder: %s outside the %s phase", oi->name, gwb_phase_name(oi->phase));
	else if (b->stage == 0)
		b_fail(b, "builder: %s outside a route", oi->name);
	for (unsigned k = 0; k < oi->nargs; k++)
		if (!b_operand_ok(b, op, k, args[k]))
			b_fail(b, "builder: %s: operand %u (%u) out of range", oi->name, k + 1, args[k]);
	if (b->code.n + 1 + oi->nargs > GWB_MAX_CODE) {
		b_fail(b, "program code too large (limit is %u words)", GWB_MAX_CODE);
		return pc;
	}
	uint32_t w = (uint32_t)op;
	if (vec_push(b, &b->code, 4, &w, 1) == 0 && oi->nargs)
		vec_push(b, &b->code, 4, args, oi->nargs);
	return pc;
}

void gwb_b_patch(gwb_builder *b, uint32_t word, uint32_t value)
{
	if (word >= b->code.n) {
		b_fail(b, "builder: patch at %u beyond the code (%zu words)", word, b->code.n);
		return;
	}
	VEC_AT(b->code, uint32_t, word) = value;
}

void gwb_b_match_done(gwb_builder *b)
{
	if (b->stage != 1) {
		b_fail(b, "builder: match_done outside a match program");
		return;
	}
	gwb_route *r = cur_route(b);
	r->match_end = (uint32_t)b->code.n;
	for (int p = 0; p <= GWB_PH__COUNT; p++)
		r->phase_pc[p] = r->match_end;
	b->stage = 2;
	b->phase = -1;
}

void gwb_b_phase(gwb_builder *b, enum gwb_phase ph)
{
	if (b->stage != 2 || (int)ph < b->phase || (unsigned)ph >= GWB_PH__COUNT) {
		b_fail(b, "builder: phase %s out of order", gwb_phase_name(ph));
		return;
	}
	gwb_route *r = cur_route(b);
	for (int p = b->phase + 1; p <= (int)ph; p++)
		r->phase_pc[p] = (uint32_t)b->code.n;
	b->phase = (int)ph;
}

void gwb_b_route_key(gwb_builder *b, const gwb_index_key *k)
{
	if (b->stage == 0) {
		b_fail(b, "builder: route_key outside a route");
		return;
	}
	if (k->host_kind > GWB_HOST_WILD || k->path_kind > GWB_PATH_PREFIX ||
	    k->methods == 0 || (k->methods & ~GWB_M_ALL) || k->exact > 1 ||
	    (k->host_kind != GWB_HOST_ANY && k->host >= b_nstr(b)) ||
	    (k->path_kind != GWB_PATH_ANY && k->path >= b_nstr(b))) {
		b_fail(b, "builder: invalid index key for route %zu", b->route.n - 1);
		return;
	}
	gwb_index_key c;
	memset(&c, 0, sizeof c);
	c.host_kind = k->host_kind;
	c.path_kind = k->path_kind;
	c.methods = k->methods;
	c.host = k->host_kind == GWB_HOST_ANY ? 0 : k->host;
	c.path = k->path_kind == GWB_PATH_ANY ? 0 : k->path;
	c.exact = k->exact;
	VEC_AT(b->key, gwb_index_key, b->key.n - 1) = c;
}

size_t gwb_regex_prefix(const char *pat, size_t n, uint32_t flags, char *out, size_t cap,
                        int *whole)
{
	size_t len = 0, i = 1;
	if (whole)
		*whole = 0;
	/* only a plain '^' anchors the whole match at the start (no
	 * alternation anywhere, whose other branch might not be anchored) */
	if ((flags & GWB_RE_CASELESS) || n == 0 || pat[0] != '^' || memchr(pat, '|', n))
		return 0;
	while (i < n) {
		unsigned char c = (unsigned char)pat[i];
		size_t adv = 1;
		if (c == '\\') {
			/* an escaped punctuation character is itself; \d, \x41, \Q...
			 * and friends end the literal part */
			if (i + 1 >= n || isalnum((unsigned char)pat[i + 1]) || (unsigned char)pat[i + 1] >= 0x80)
				break;
			c = (unsigned char)pat[i + 1];
			adv = 2;
		} else if (strchr("^$.[]()?*+{}", c) || c == '\0') {
			break;
		}
		/* a quantifier after this character makes it optional */
		if (i + adv < n && strchr("?*{", pat[i + adv]))
			break;
		if (len < cap)
			out[len] = (char)c;
		len++;
		i += adv;
		if (i < n && pat[i] == '+')
			break;          /* at least one: keep it, stop here */
	}
	if (whole)
		*whole = i == n && len <= cap;
	return len < cap ? len : cap;
}

/* 1 if every run of the match program [pc0, end) that ends with the flag
 * true executes the test at t with the result true. Runs are followed over
 * (pc, flag, seen) states; tests may give either result, so correlated
 * tests only make the answer more cautious. */
static int b_necessary(const gwb_builder *b, uint32_t pc0, uint32_t end, uint32_t t)
{
	const uint32_t *code = b->code.v;
	uint32_t n = end - pc0;
	uint8_t *st = calloc((size_t)n + 1, 2);         /* state bits, boundary marks */
	int ok = 0;
	if (!st)
		return 0;
	uint8_t *bound = st + n + 1;
	for (uint32_t pc = pc0; pc < end;) {            /* instruction boundaries */
		if (code[pc] >= GWB_OP__COUNT)
			goto out;
		bound[pc - pc0] = 1;
		pc += 1 + gwb_ops[code[pc]].nargs;
	}
	st[0] = 1;                                      /* flag 0, not seen */
#define ST(f, seen) (1u << ((f) * 2 + (seen)))
	for (uint32_t pc = pc0; pc < end; pc += 1 + gwb_ops[code[pc]].nargs) {
		uint32_t op = code[pc], next = pc + 1 + gwb_ops[op].nargs;
		if (next > end)
			goto out;
		for (int f = 0; f < 2; f++)
			for (int seen = 0; seen < 2; seen++) {
				if (!(st[pc - pc0] & ST(f, seen)))
					continue;
				uint32_t to = next;
				switch (op) {
				case GWB_OP_END:
					if (f && !seen)
						goto out;
					continue;
				case GWB_OP_NOT:
					st[next - pc0] |= ST(!f, seen);
					continue;
				case GWB_OP_JF:
				case GWB_OP_JT:
					if ((op == GWB_OP_JF) == !f)
						to = code[pc + 1];
					if (to <= pc || to > end || (to < end && !bound[to - pc0]))
						goto out;
					st[to - pc0] |= ST(f, seen);
					continue;
				case GWB_OP_ANY:
					st[next - pc0] |= ST(1, seen || pc == t);
					continue;
				default:
					st[next - pc0] |= ST(0, seen);
					st[next - pc0] |= ST(1, seen || pc == t);
					continue;
				}
			}
	}
	ok = !(st[n] & ST(1, 0));                       /* fell off the end */
#undef ST
out:
	free(st);
	return ok;
}

/* A regex anchored at the start with a literal prefix narrows the index
 * key when the regex must match for the route to match: such routes then
 * sit at their prefix in the trie instead of being tried for every path
 * of their host. The narrowed key is still implied by the program. */
static void b_narrow_key(gwb_builder *b)
{
	gwb_route *r = cur_route(b);
	gwb_index_key *k = &VEC_AT(b->key, gwb_index_key, b->key.n - 1);
	const uint32_t *code = b->code.v;
	uint32_t best = GWB_NONE;
	size_t bestlen = 0;
	uint32_t klen = 0;

	if (k->path_kind == GWB_PATH_EXACT)
		return;
	const char *kp = k->path_kind == GWB_PATH_PREFIX ? b_str(b, k->path, &klen) : "";
	for (uint32_t pc = r->match_pc; pc < r->match_end; pc += 1 + gwb_ops[code[pc]].nargs) {
		if (code[pc] >= GWB_OP__COUNT)
			return;
		if (code[pc] != GWB_OP_PATH_RE || pc + 1 >= r->match_end || code[pc + 1] >= b->regex.n)
			continue;
		const gwb_regex *re = &VEC_AT(b->regex, gwb_regex, code[pc + 1]);
		uint32_t pl;
		const char *pat = b_str(b, re->pattern, &pl);
		char tmp[256];
		size_t n = gwb_regex_prefix(pat, pl, re->flags, tmp, sizeof tmp, NULL);
		if (n > bestlen && n > klen && memcmp(tmp, kp, klen) == 0 &&
		    b_necessary(b, r->match_pc, r->match_end, pc)) {
			best = pc;
			bestlen = n;
		}
	}
	if (best == GWB_NONE)
		return;
	const gwb_regex *re = &VEC_AT(b->regex, gwb_regex, code[best + 1]);
	uint32_t pl;
	const char *pat = b_str(b, re->pattern, &pl);
	char tmp[256];
	size_t n = gwb_regex_prefix(pat, pl, re->flags, tmp, sizeof tmp, NULL);
	uint32_t s = gwb_b_str(b, tmp, n);
	if (s == GWB_NONE)
		return;
	k = &VEC_AT(b->key, gwb_index_key, b->key.n - 1);
	k->path_kind = GWB_PATH_PREFIX;
	k->path = s;
	k->exact = 0;
}

void gwb_b_route_end(gwb_builder *b)
{
	if (b->stage != 2) {
		b_fail(b, "builder: route_end before match_done");
		b->stage = 0;
		return;
	}
	gwb_route *r = cur_route(b);
	for (int p = b->phase + 1; p <= GWB_PH__COUNT; p++)
		r->phase_pc[p] = (uint32_t)b->code.n;
	b_narrow_key(b);
	b->stage = 0;
	b->phase = -1;
}

int gwb_builder_finish(gwb_builder *b, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen)
{
	*out = NULL;
	*outlen = 0;
	if (b->stage != 0)
		b_fail(b, "builder: finish inside a route");
	if (b->failed)
		return gwb_errf(err, errlen, "%s", b->err);

	gwb_ix_input in = {
		.keys = b->key.v, .nkeys = (uint32_t)b->key.n,
		.strdata = b->strdata.v, .stridx = b->stridx.v, .nstr = b_nstr(b),
		.routes = b->route.v, .code = b->code.v, .ncode = (uint32_t)b->code.n,
	};
	uint32_t *ix = NULL, nix = 0;
	if (gwb_index_build(&in, &ix, &nix, err, errlen) < 0)
		return -1;

	gwb_wsec sec[] = {
		{ GWB_SEC_STRIDX, b->stridx.v, (uint32_t)(b->stridx.n * 4), b_nstr(b) },
		{ GWB_SEC_STRDATA, b->strdata.v, (uint32_t)b->strdata.n, (uint32_t)b->strdata.n },
		{ GWB_SEC_REGEX, b->regex.v, (uint32_t)(b->regex.n * sizeof(gwb_regex)), (uint32_t)b->regex.n },
		{ GWB_SEC_CIDR, b->cidr.v, (uint32_t)(b->cidr.n * sizeof(gwb_cidr)), (uint32_t)b->cidr.n },
		{ GWB_SEC_CIDRSET, b->cidrset.v, (uint32_t)(b->cidrset.n * 4), (uint32_t)(b->cidrset.n / 2) },
		{ GWB_SEC_UPSTREAM, b->ups.v, (uint32_t)(b->ups.n * sizeof(gwb_upstream)), (uint32_t)b->ups.n },
		{ GWB_SEC_SERVER, b->srv.v, (uint32_t)(b->srv.n * sizeof(gwb_server)), (uint32_t)b->srv.n },
		{ GWB_SEC_ROUTE, b->route.v, (uint32_t)(b->route.n * sizeof(gwb_route)), (uint32_t)b->route.n },
		{ GWB_SEC_CODE, b->code.v, (uint32_t)(b->code.n * 4), (uint32_t)b->code.n },
		{ GWB_SEC_INDEX, ix, nix * 4, nix },
		{ GWB_SEC_DEBUG, b->debug.v, (uint32_t)(b->debug.n * sizeof(gwb_debug)), (uint32_t)b->debug.n },
	};
	/* the sizes above fit: every vector is bounded by a limit checked on
	 * the way in, and gwb_write checks the total against GWB_MAX_FILE */
	int rc = gwb_write(sec, sizeof sec / sizeof sec[0], b->source_hash, out, outlen, err, errlen);
	free(ix);
	return rc;
}

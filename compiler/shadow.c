/*
 * shadow.c — -Wshadowed: a route that can never match because earlier
 * routes match every request it would.
 *
 * Each match is normalised to DNF (an OR of conjunctions of atoms; `not`
 * pushed down to the atoms with De Morgan; a negated method set becomes
 * its complement). Route B is shadowed when every conjunction of B is
 * implied by some conjunction of an earlier route. A conjunction C_A
 * covers C_B when every atom of C_A is implied by C_B:
 *   host == h      B has host == h
 *   host == *.s    B has host == x.s, or *.t where t is s or ends in .s
 *   path == p      B has path == p
 *   path ^= p      B has path == q or path ^= q where q starts with p
 *   path ~ r       B has the identical regex
 *   method in M    B's methods (all methods when B names none) within M
 *   header/query/cookie == v   B has the identical test
 *   header/query/cookie present  B tests it (present or == value)
 *   client_ip in S every CIDR of one of B's client_ip tests lies in S
 *   any            always
 *   not X          B has the identical not X
 * This is sound (never a false warning) and deliberately incomplete: a
 * route covered only by an unusual combination is not reported.
 *
 * Cost: the DNF is capped (give up = no warning), and candidate covering
 * conjunctions are found through a hash on (host key, path key): for a
 * conjunction of B only the buckets whose host key can cover one of B's
 * hosts (the host itself, each of its label suffixes as a wildcard, or
 * none) and whose path key can cover one of B's paths (each prefix of the
 * path, the exact path, the regex, or none) are probed. Path prefixes are
 * hashed incrementally, so a probe costs O(1). The number of coverage
 * tests per conjunction is capped too.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compiler.h"
#include "sema.h"

#define MAX_DISJ   32      /* conjunctions per route */
#define MAX_ATOMS  32      /* atoms per conjunction */
#define MAX_TESTS  1024    /* coverage tests per conjunction */

enum { K_HOST, K_WILD, K_PEQ, K_PPRE, K_PRE, K_METHOD, K_HEQ, K_HHAS, K_QEQ,
       K_QHAS, K_CEQ, K_CHAS, K_IP };

typedef struct atom {
	uint8_t kind, neg;
	uint32_t methods;
	const ast_expr *e;
} atom;

typedef struct conj {
	atom *v; uint32_t n;
	uint32_t route;               /* item index */
} conj;

typedef struct dnf { conj c[MAX_DISJ]; size_t n; } dnf;

/* ---- arena for atoms (all routes' DNFs live until the end) ---- */
typedef struct chunk { struct chunk *next; size_t used, cap; atom v[]; } chunk;
typedef struct arena { chunk *head; } arena;

static atom *arena_alloc(arena *a, size_t n)
{
	if (!a->head || a->head->cap - a->head->used < n) {
		size_t cap = n > 4096 ? n : 4096;
		chunk *c = malloc(sizeof *c + cap * sizeof(atom));
		if (!c) {
			perror("gwc");
			abort();
		}
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
	}
	atom *p = a->head->v + a->head->used;
	a->head->used += n;
	return p;
}

static void arena_free(arena *a)
{
	while (a->head) {
		chunk *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}

/* scratch conjunctions while building one route's DNF */
typedef struct sconj { atom v[MAX_ATOMS]; uint32_t n; } sconj;
typedef struct sdnf { sconj c[MAX_DISJ]; size_t n; } sdnf;

static int atom_kind(const ast_expr *e)
{
	switch (e->kind) {
	case AE_HOST_EQ: return e->s && e->s[0] == '*' && e->s[1] == '.' ? K_WILD : K_HOST;
	case AE_PATH_EQ: return K_PEQ;
	case AE_PATH_PREFIX: return K_PPRE;
	case AE_PATH_RE: return K_PRE;
	case AE_METHOD: return K_METHOD;
	case AE_HEADER_EQ: return K_HEQ;
	case AE_HEADER_HAS: return K_HHAS;
	case AE_QUERY_EQ: return K_QEQ;
	case AE_QUERY_HAS: return K_QHAS;
	case AE_COOKIE_EQ: return K_CEQ;
	case AE_COOKIE_HAS: return K_CHAS;
	case AE_IP_IN: return K_IP;
	default: return -1;
	}
}

/* merge method atoms; 0 when the conjunction is unsatisfiable */
static int normalise(sconj *c)
{
	uint32_t m = GWB_M_ALL;
	int have = 0;
	uint32_t k = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		if (c->v[i].kind == K_METHOD) {
			m &= c->v[i].methods;
			have = 1;
		} else {
			c->v[k++] = c->v[i];
		}
	}
	c->n = k;
	if (have) {
		if (!m)
			return 0;
		if (m != GWB_M_ALL) {
			atom a = { K_METHOD, 0, m, NULL };
			c->v[c->n++] = a;
		}
	}
	return 1;
}

/* e under negation neg, into out; -1 = too big, give up */
static int to_dnf(const ast_expr *e, int neg, sdnf *out)
{
	out->n = 0;
	if (!e)
		return -1;
	int conj_op = (e->kind == AE_AND && !neg) || (e->kind == AE_OR && neg);
	int disj_op = (e->kind == AE_OR && !neg) || (e->kind == AE_AND && neg);
	if (e->kind == AE_ANY) {
		if (!neg) {
			out->n = 1;
			out->c[0].n = 0;
		}
		return 0;
	}
	if (e->kind == AE_NOT)
		return to_dnf(e->a, !neg, out);
	if (conj_op || disj_op) {
		sdnf *l = malloc(sizeof *l), *r = malloc(sizeof *r);
		int rc = -1;
		if (!l || !r || to_dnf(e->a, neg, l) < 0 || to_dnf(e->b, neg, r) < 0)
			goto done;
		if (disj_op) {
			if (l->n + r->n > MAX_DISJ)
				goto done;
			/* copy only the used conjunctions: an sdnf is ~16k */
			for (size_t i = 0; i < l->n; i++)
				out->c[out->n++] = l->c[i];
			for (size_t i = 0; i < r->n; i++)
				out->c[out->n++] = r->c[i];
		} else {
			if (l->n * r->n > MAX_DISJ)
				goto done;
			for (size_t i = 0; i < l->n; i++)
				for (size_t j = 0; j < r->n; j++) {
					sconj *c = &out->c[out->n];
					if (l->c[i].n + r->c[j].n > MAX_ATOMS)
						goto done;
					*c = l->c[i];
					memcpy(c->v + c->n, r->c[j].v, r->c[j].n * sizeof(atom));
					c->n += r->c[j].n;
					if (normalise(c))
						out->n++;
				}
		}
		rc = 0;
	done:
		free(l);
		free(r);
		return rc;
	}
	int k = atom_kind(e);
	if (k < 0)
		return -1;
	atom a = { (uint8_t)k, (uint8_t)neg, 0, e };
	if (k == K_METHOD) {
		a.neg = 0;
		a.methods = neg ? (~e->methods & GWB_M_ALL) : (e->methods & GWB_M_ALL);
		if (!a.methods)
			return 0; /* false */
	}
	out->n = 1;
	out->c[0].n = 1;
	out->c[0].v[0] = a;
	normalise(&out->c[0]);
	return 0;
}

/* ------------------------------------------------------------ coverage */

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int same_atom(const atom *a, const atom *b)
{
	if (a->kind != b->kind || a->neg != b->neg)
		return 0;
	const ast_expr *x = a->e, *y = b->e;
	switch (a->kind) {
	case K_METHOD: return a->methods == b->methods;
	case K_HEQ: return strcasecmp(x->name, y->name) == 0 && x->len == y->len &&
	                   memcmp(x->s, y->s, x->len) == 0;
	case K_HHAS: return strcasecmp(x->name, y->name) == 0;
	case K_QHAS: case K_CHAS: return str_eq(x->name, y->name);
	case K_QEQ: case K_CEQ: return str_eq(x->name, y->name) && x->len == y->len &&
	                               memcmp(x->s, y->s, x->len) == 0;
	case K_IP: {
		if (x->ncidrs != y->ncidrs)
			return 0;
		for (size_t i = 0; i < x->ncidrs; i++)
			if (!str_eq(x->cidrs[i].s, y->cidrs[i].s))
				return 0;
		return 1;
	}
	default: /* host, path: the strings */
		return x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
	}
}

static int ends_with_label(const char *h, size_t hl, const char *suf, size_t sl)
{
	return hl > sl && h[hl - sl - 1] == '.' && memcmp(h + hl - sl, suf, sl) == 0;
}

/* every CIDR of b lies inside one of a's */
static int cidrs_cover(const ast_expr *a, const ast_expr *b)
{
	for (size_t j = 0; j < b->ncidrs; j++) {
		gwb_cidr cb;
		if (!b->cidrs[j].s || sema_parse_cidr(b->cidrs[j].s, &cb) < 0)
			return 0;
		int in = 0;
		for (size_t i = 0; i < a->ncidrs && !in; i++) {
			gwb_cidr ca;
			if (!a->cidrs[i].s || sema_parse_cidr(a->cidrs[i].s, &ca) < 0)
				continue;
			if (ca.family != cb.family || ca.prefix > cb.prefix)
				continue;
			in = 1;
			for (int bit = 0; bit < ca.prefix; bit++) {
				int m = 0x80 >> (bit % 8);
				if ((ca.addr[bit / 8] & m) != (cb.addr[bit / 8] & m)) {
					in = 0;
					break;
				}
			}
		}
		if (!in)
			return 0;
	}
	return b->ncidrs > 0;
}

/* is atom a implied by conjunction b? */
static int implied(const atom *a, const conj *b)
{
	if (a->neg) {
		for (uint32_t i = 0; i < b->n; i++)
			if (same_atom(a, &b->v[i]))
				return 1;
		return 0;
	}
	if (a->kind == K_METHOD) {
		uint32_t mb = GWB_M_ALL;
		for (uint32_t i = 0; i < b->n; i++)
			if (b->v[i].kind == K_METHOD)
				mb &= b->v[i].methods;
		return (mb & ~a->methods) == 0;
	}
	const ast_expr *x = a->e;
	for (uint32_t i = 0; i < b->n; i++) {
		const atom *t = &b->v[i];
		if (t->neg)
			continue;
		const ast_expr *y = t->e;
		switch (a->kind) {
		case K_HOST: case K_PEQ: case K_PRE:
			if (t->kind == a->kind && same_atom(a, t))
				return 1;
			break;
		case K_WILD: {
			const char *suf = x->s + 2;
			size_t sl = x->len - 2;
			if (t->kind == K_HOST && ends_with_label(y->s, y->len, suf, sl))
				return 1;
			if (t->kind == K_WILD && ((y->len - 2 == sl && memcmp(y->s + 2, suf, sl) == 0) ||
			                          ends_with_label(y->s + 2, y->len - 2, suf, sl)))
				return 1;
			break;
		}
		case K_PPRE:
			if ((t->kind == K_PEQ || t->kind == K_PPRE) && y->len >= x->len &&
			    memcmp(y->s, x->s, x->len) == 0)
				return 1;
			break;
		case K_HHAS:
			if ((t->kind == K_HHAS || t->kind == K_HEQ) && strcasecmp(x->name, y->name) == 0)
				return 1;
			break;
		case K_QHAS:
			if ((t->kind == K_QHAS || t->kind == K_QEQ) && str_eq(x->name, y->name))
				return 1;
			break;
		case K_CHAS:
			if ((t->kind == K_CHAS || t->kind == K_CEQ) && str_eq(x->name, y->name))
				return 1;
			break;
		case K_HEQ: case K_QEQ: case K_CEQ:
			if (same_atom(a, t))
				return 1;
			break;
		case K_IP:
			if (t->kind == K_IP && cidrs_cover(x, y))
				return 1;
			break;
		}
	}
	return 0;
}

static int covers(const conj *a, const conj *b)
{
	for (uint32_t i = 0; i < a->n; i++)
		if (!implied(&a->v[i], b))
			return 0;
	return 1;
}

/* ----------------------------------------------------- candidate index */

enum { HK_NONE, HK_EXACT, HK_WILD };
enum { PK_NONE, PK_EXACT, PK_PREFIX, PK_RE };

typedef struct bucket {
	uint8_t hk, pk;
	const char *host; size_t hl;
	const char *path; size_t pl;
	conj **v; size_t n, cap;
} bucket;

/* open addressing over compact slots (hash + bucket number) so that the
 * table probed millions of times stays small; a second set holds the host
 * keys present, so a host suffix nobody filed is skipped with one probe */
typedef struct slot { uint64_t h; uint32_t b; uint32_t used; } slot;

typedef struct index {
	slot *s; size_t cap;
	bucket *b; size_t n, bcap;
	uint64_t *hosts; size_t hcap, hn;    /* host-key hashes, 0 = empty */
} index_t;

static uint64_t mix(uint64_t hh, uint64_t ph)
{
	uint64_t x = hh ^ (ph * 0x9e3779b97f4a7c15ull);
	x ^= x >> 31;
	return x * 0xbf58476d1ce4e5b9ull;
}

static uint64_t hhash(int hk, const char *s, size_t n)
{
	unsigned char k = (unsigned char)hk;
	uint64_t h = sema_hash(s, n, sema_hash(&k, 1, 0));
	return h ? h : 1;
}

/* FNV-1a continued byte by byte for path prefixes */
static uint64_t phash_start(int pk)
{
	unsigned char k = (unsigned char)pk;
	return sema_hash(&k, 1, 0x51);
}

static uint64_t phash_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * 0x100000001b3ull;
}

static uint64_t phash(int pk, const char *s, size_t n)
{
	uint64_t h = phash_start(pk);
	for (size_t i = 0; i < n; i++)
		h = phash_step(h, (unsigned char)s[i]);
	return h;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);
	if (!p) {
		perror("gwc");
		abort();
	}
	return p;
}

static int host_known(const index_t *ix, uint64_t hh)
{
	if (!ix->hcap)
		return 0;
	for (size_t i = hh & (ix->hcap - 1);; i = (i + 1) & (ix->hcap - 1)) {
		if (ix->hosts[i] == hh)
			return 1;
		if (!ix->hosts[i])
			return 0;
	}
}

static void host_add(index_t *ix, uint64_t hh)
{
	if (host_known(ix, hh))
		return;
	if (2 * (ix->hn + 1) > ix->hcap) {
		size_t ncap = ix->hcap ? 2 * ix->hcap : 64;
		uint64_t *nv = xcalloc(ncap, sizeof *nv);
		for (size_t i = 0; i < ix->hcap; i++) {
			if (!ix->hosts[i])
				continue;
			size_t j = ix->hosts[i] & (ncap - 1);
			while (nv[j])
				j = (j + 1) & (ncap - 1);
			nv[j] = ix->hosts[i];
		}
		free(ix->hosts);
		ix->hosts = nv;
		ix->hcap = ncap;
	}
	size_t j = hh & (ix->hcap - 1);
	while (ix->hosts[j])
		j = (j + 1) & (ix->hcap - 1);
	ix->hosts[j] = hh;
	ix->hn++;
}

static bucket *ix_find(index_t *ix, uint64_t h, int hk, const char *host, size_t hl, int pk,
                       const char *path, size_t pl, int create)
{
	if (create && 2 * (ix->n + 1) > ix->cap) {
		size_t ncap = ix->cap ? 2 * ix->cap : 256;
		slot *ns = xcalloc(ncap, sizeof *ns);
		for (size_t i = 0; i < ix->cap; i++) {
			if (!ix->s[i].used)
				continue;
			size_t j = ix->s[i].h & (ncap - 1);
			while (ns[j].used)
				j = (j + 1) & (ncap - 1);
			ns[j] = ix->s[i];
		}
		free(ix->s);
		ix->s = ns;
		ix->cap = ncap;
	}
	if (!ix->cap)
		return NULL;
	size_t mask = ix->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		slot *sl = &ix->s[i];
		if (!sl->used) {
			if (!create)
				return NULL;
			if (ix->n == ix->bcap) {
				ix->bcap = ix->bcap ? 2 * ix->bcap : 256;
				bucket *nb = realloc(ix->b, ix->bcap * sizeof *nb);
				if (!nb) {
					perror("gwc");
					abort();
				}
				ix->b = nb;
			}
			bucket *b = &ix->b[ix->n];
			b->hk = (uint8_t)hk;
			b->pk = (uint8_t)pk;
			b->host = host;
			b->hl = hl;
			b->path = path;
			b->pl = pl;
			b->n = 0;
			b->cap = 4;
			b->v = malloc(b->cap * sizeof *b->v);
			if (!b->v) {
				perror("gwc");
				abort();
			}
			sl->h = h;
			sl->b = (uint32_t)ix->n++;
			sl->used = 1;
			return b;
		}
		if (sl->h != h)
			continue;
		bucket *b = &ix->b[sl->b];
		if (b->hk == hk && b->pk == pk && b->hl == hl && b->pl == pl &&
		    (hl == 0 || memcmp(b->host, host, hl) == 0) &&
		    (pl == 0 || memcmp(b->path, path, pl) == 0))
			return b;
	}
}

static void conj_key(const conj *c, int *hk, const char **h, size_t *hl, int *pk,
                     const char **p, size_t *pl)
{
	*hk = HK_NONE; *pk = PK_NONE;
	*h = *p = "";
	*hl = *pl = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		const atom *a = &c->v[i];
		if (a->neg)
			continue;
		if (*hk == HK_NONE && (a->kind == K_HOST || a->kind == K_WILD)) {
			*hk = a->kind == K_HOST ? HK_EXACT : HK_WILD;
			*h = a->kind == K_HOST ? a->e->s : a->e->s + 2;
			*hl = a->kind == K_HOST ? a->e->len : a->e->len - 2;
		}
		if (*pk == PK_NONE && (a->kind == K_PEQ || a->kind == K_PPRE || a->kind == K_PRE)) {
			*pk = a->kind == K_PEQ ? PK_EXACT : a->kind == K_PPRE ? PK_PREFIX : PK_RE;
			*p = a->e->s;
			*pl = a->e->len;
		}
	}
}

static void ix_add(index_t *ix, conj *c)
{
	int hk, pk;
	const char *h, *p;
	size_t hl, pl;
	conj_key(c, &hk, &h, &hl, &pk, &p, &pl);
	uint64_t hkey = hhash(hk, h, hl);
	host_add(ix, hkey);
	bucket *b = ix_find(ix, mix(hkey, phash(pk, p, pl)), hk, h, hl, pk, p, pl, 1);
	if (b->n == b->cap) {
		b->cap *= 2;
		conj **nv = realloc(b->v, b->cap * sizeof *nv);
		if (!nv) {
			perror("gwc");
			abort();
		}
		b->v = nv;
	}
	b->v[b->n++] = c;
}

typedef struct search {
	const conj *target;
	uint32_t best;            /* lowest covering route, or UINT32_MAX */
	const conj *best_conj;
	size_t tests;
} search;

static void probe(index_t *ix, search *s, int hk, const char *h, size_t hl, uint64_t hh,
                  int pk, const char *p, size_t pl, uint64_t ph)
{
	bucket *b = ix_find(ix, mix(hh, ph), hk, h, hl, pk, p, pl, 0);
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i]->route >= s->best || s->tests >= MAX_TESTS)
			return;
		s->tests++;
		if (covers(b->v[i], s->target)) {
			s->best = b->v[i]->route;
			s->best_conj = b->v[i];
			return;
		}
	}
}

/* all path keys that may cover B's paths, for one host key */
static void probe_paths(index_t *ix, search *s, int hk, const char *h, size_t hl)
{
	const conj *c = s->target;
	uint64_t hh = hhash(hk, h, hl);
	if (!host_known(ix, hh))
		return;
	probe(ix, s, hk, h, hl, hh, PK_NONE, "", 0, phash(PK_NONE, "", 0));
	for (uint32_t i = 0; i < c->n; i++) {
		const atom *a = &c->v[i];
		if (a->neg)
			continue;
		const char *q = a->e ? a->e->s : NULL;
		size_t ql = a->e ? a->e->len : 0;
		if (a->kind == K_PEQ)
			probe(ix, s, hk, h, hl, hh, PK_EXACT, q, ql, phash(PK_EXACT, q, ql));
		if (a->kind == K_PRE)
			probe(ix, s, hk, h, hl, hh, PK_RE, q, ql, phash(PK_RE, q, ql));
		if (a->kind == K_PEQ || a->kind == K_PPRE) {
			uint64_t ph = phash_start(PK_PREFIX);
			probe(ix, s, hk, h, hl, hh, PK_PREFIX, q, 0, ph);
			for (size_t k = 0; k < ql; k++) {
				ph = phash_step(ph, (unsigned char)q[k]);
				probe(ix, s, hk, h, hl, hh, PK_PREFIX, q, k + 1, ph);
			}
		}
	}
}

static void find_cover(index_t *ix, search *s)
{
	const conj *c = s->target;
	probe_paths(ix, s, HK_NONE, "", 0);
	for (uint32_t i = 0; i < c->n; i++) {
		const atom *a = &c->v[i];
		if (a->neg || (a->kind != K_HOST && a->kind != K_WILD))
			continue;
		const char *h = a->e->s;
		size_t hl = a->e->len;
		if (a->kind == K_HOST) {
			probe_paths(ix, s, HK_EXACT, h, hl);
		} else {
			h += 2;
			hl -= 2;
			probe_paths(ix, s, HK_WILD, h, hl);
		}
		/* every label suffix as a wildcard */
		for (size_t k = 0; k < hl; k++)
			if (h[k] == '.' && k + 1 < hl)
				probe_paths(ix, s, HK_WILD, h + k + 1, hl - k - 1);
	}
}

void shadow_check(const ast_file *f, diag_ctx *d)
{
	arena ar = { NULL };
	index_t ix;
	memset(&ix, 0, sizeof ix);
	sdnf *tmp = malloc(sizeof *tmp);
	conj *mine = malloc(MAX_DISJ * sizeof *mine);
	if (!tmp || !mine) {
		perror("gwc");
		abort();
	}
	for (size_t r = 0; r < f->nitems; r++) {
		const ast_item *it = &f->items[r];
		if (it->kind != AI_ROUTE || !it->match || it->nmatch != 1)
			continue;
		if (to_dnf(it->match, 0, tmp) < 0 || tmp->n == 0)
			continue; /* too big to analyse, or never true */
		size_t n = tmp->n;
		for (size_t i = 0; i < n; i++) {
			mine[i].n = tmp->c[i].n;
			mine[i].route = (uint32_t)r;
			mine[i].v = arena_alloc(&ar, tmp->c[i].n ? tmp->c[i].n : 1);
			memcpy(mine[i].v, tmp->c[i].v, tmp->c[i].n * sizeof(atom));
		}
		/* shadowed when every conjunction has an earlier cover */
		uint32_t by[MAX_DISJ];
		int all = 1;
		for (size_t i = 0; i < n && all; i++) {
			search s = { &mine[i], UINT32_MAX, NULL, 0 };
			find_cover(&ix, &s);
			if (s.best == UINT32_MAX)
				all = 0;
			by[i] = s.best;
		}
		if (all) {
			uint32_t span = it->name ? (uint32_t)strlen(it->name) : 1;
			const ast_item *a = &f->items[by[0]];
			int one = 1;
			for (size_t i = 1; i < n; i++)
				one &= by[i] == by[0];
			if (one)
				diag_warning(d, it->name_pos, span, "shadowed",
				             "route '%s' can never match: route '%s' (line %u) before it "
				             "matches every request it would", it->name, a->name,
				             a->name_pos.line);
			else
				diag_warning(d, it->name_pos, span, "shadowed",
				             "route '%s' can never match: earlier routes together match "
				             "every request it would", it->name);
			for (size_t i = 0; i < n; i++) {
				int dup = 0;
				for (size_t j = 0; j < i; j++)
					dup |= by[j] == by[i];
				if (dup)
					continue;
				const ast_item *ci = &f->items[by[i]];
				diag_note(d, ci->name_pos, (uint32_t)strlen(ci->name),
				          "route '%s' covers it", ci->name);
			}
			continue; /* adds nothing new to the index */
		}
		conj *keep = (conj *)arena_alloc(&ar, (n * sizeof(conj) + sizeof(atom) - 1) / sizeof(atom));
		memcpy(keep, mine, n * sizeof(conj));
		for (size_t i = 0; i < n; i++)
			ix_add(&ix, &keep[i]);
	}
	for (size_t i = 0; i < ix.n; i++)
		free(ix.b[i].v);
	free(ix.b);
	free(ix.s);
	free(ix.hosts);
	arena_free(&ar);
	free(tmp);
	free(mine);
}

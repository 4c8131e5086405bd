/*
 * gwb_index.c — the route index: built by the builder, checked by the
 * verifier, walked by the matcher, listed by the dump. All four live here so
 * the word layout below has one home.
 *
 * INDEX section: u32 words; offsets are word offsets from the start of
 * the section unless they say "byte".
 *
 *   header (8 words)
 *     0 nhost      slots in the exact-host table (0 or a power of two)
 *     1 host_off   word offset of those slots
 *     2 nwild      slots in the wildcard-suffix table (0 or a power of two)
 *     3 wild_off   word offset of those slots
 *     4 any_root   trie root of the any-host group, or GWB_NONE
 *     5 nnodes     trie nodes in all groups      (checked, informative)
 *     6 ncand      candidates in all lists       (checked, = routes)
 *     7 label_off  byte offset of the label area (informative)
 *
 *   slot (3 words), open addressing with linear probing, load <= 1/2
 *     hash   gwb_host_hash(host)
 *     str    STR index of the host ("example.com" for "*.example.com")
 *     root   trie root of the group, GWB_NONE = empty slot (hash = str = 0)
 *
 *   trie node (5 words + arrays): a byte-wise radix trie over paths
 *     0 label_off  byte offset (from the section start) of the edge label
 *     1 label_len  bytes of path consumed entering this node (root: 0;
 *                  any other node: >= 1)
 *     2 nchild     0..256
 *     3 npre       candidates of routes with a prefix ending here
 *     4 nexact     candidates of routes with an exact path ending here
 *     then ceil(nchild/4) words: first label byte of each child, packed
 *          little-endian, strictly ascending, unused bytes zero
 *     then nchild words: child node offsets
 *     then npre candidate words, then nexact candidate words
 *
 *   candidate word: bits 0..19 route, 20..29 method mask (GWB_M_*),
 *     bit 30 exact (the route's match is exactly its key: skip the
 *     program), bit 31 zero. Each list is strictly ascending by route.
 *
 *   label area: the edge labels' bytes, padded to a word with zeros.
 *
 * A route is filed once: in the group of its host key (exact host slot,
 * wildcard slot, or any-host), at the node of its path key (PATH_ANY is a
 * prefix ""), in the prefix or exact list.
 *
 * Lookup (first match, exactly): every list that can hold a matching route
 * is visited — the exact-host group, the group of every suffix of the host
 * after a '.', and the any-host group; in each, the prefix lists of the
 * nodes along the request path and the exact list of the node where the
 * path ends. Within a list, candidates are tried in ascending order only
 * while they are below the best route found so far, and the first that
 * matches ends the list. The answer is the lowest route that matches, the
 * same as running every route's program in order. No allocation.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include "gwb_int.h"

#define FNV_SEED  2166136261u
#define FNV_PRIME 16777619u

uint32_t gwb_host_hash(const char *s, size_t n)
{
	uint32_t h = FNV_SEED;
	while (n-- > 0)
		h = (h ^ gwb_lower((unsigned char)s[n])) * FNV_PRIME;
	return h;
}

/* ------------------------------------------------------------ builder */
typedef struct bnode {
	const char *label;
	uint32_t llen;
	uint32_t *kid, nkid, ckid;     /* node numbers, sorted by first byte */
	uint32_t *pre, npre, cpre;
	uint32_t *ex, nex, cex;
	uint32_t off;                  /* word offset once laid out */
} bnode;

typedef struct bgroup {
	uint32_t str;                  /* host STR, unused for any-host */
	uint32_t root;                 /* node number */
} bgroup;

typedef struct ixb {
	bnode *node;
	uint32_t nnode, cnode;
	char *err;
	size_t errlen;
	int failed;
} ixb;

static int grow32(ixb *x, uint32_t **v, uint32_t *cap, uint32_t need)
{
	if (need <= *cap)
		return 0;
	uint32_t nc = *cap ? *cap * 2 : 4;
	while (nc < need)
		nc *= 2;
	uint32_t *p = realloc(*v, (size_t)nc * sizeof *p);
	if (!p) {
		x->failed = 1;
		return gwb_errf(x->err, x->errlen, "out of memory");
	}
	*v = p;
	*cap = nc;
	return 0;
}

static uint32_t node_new(ixb *x, const char *label, uint32_t llen)
{
	if (x->nnode == x->cnode) {
		uint32_t nc = x->cnode ? x->cnode * 2 : 64;
		bnode *p = realloc(x->node, (size_t)nc * sizeof *p);
		if (!p) {
			x->failed = 1;
			gwb_errf(x->err, x->errlen, "out of memory");
			return GWB_NONE;
		}
		x->node = p;
		x->cnode = nc;
	}
	bnode *n = &x->node[x->nnode];
	memset(n, 0, sizeof *n);
	n->label = label;
	n->llen = llen;
	return x->nnode++;
}

/* child of node n whose label starts with byte c: its position in kid[]
 * (or where it would be inserted) */
static uint32_t kid_pos(const ixb *x, const bnode *n, unsigned char c, int *found)
{
	uint32_t lo = 0, hi = n->nkid;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		unsigned char mc = (unsigned char)x->node[n->kid[mid]].label[0];
		if (mc < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < n->nkid && (unsigned char)x->node[n->kid[lo]].label[0] == c;
	return lo;
}

static int kid_insert(ixb *x, uint32_t parent, uint32_t pos, uint32_t child)
{
	bnode *n = &x->node[parent];
	if (grow32(x, &n->kid, &n->ckid, n->nkid + 1) < 0)
		return -1;
	memmove(n->kid + pos + 1, n->kid + pos, (n->nkid - pos) * sizeof *n->kid);
	n->kid[pos] = child;
	n->nkid++;
	return 0;
}

/* the node for path p (created, splitting edges as needed) */
static uint32_t trie_node(ixb *x, uint32_t root, const char *p, uint32_t len)
{
	uint32_t cur = root, d = 0;
	while (d < len) {
		int found;
		uint32_t pos = kid_pos(x, &x->node[cur], (unsigned char)p[d], &found);
		if (!found) {
			uint32_t leaf = node_new(x, p + d, len - d);
			if (leaf == GWB_NONE || kid_insert(x, cur, pos, leaf) < 0)
				return GWB_NONE;
			return leaf;
		}
		uint32_t c = x->node[cur].kid[pos];
		const bnode *cn = &x->node[c];
		uint32_t k = 0, lim = cn->llen < len - d ? cn->llen : len - d;
		while (k < lim && cn->label[k] == p[d + k])
			k++;
		if (k < cn->llen) {
			/* split the edge: cur -> mid(label[0..k)) -> c(label[k..]) */
			uint32_t mid = node_new(x, cn->label, k);
			if (mid == GWB_NONE)
				return GWB_NONE;
			bnode *cc = &x->node[c];        /* node_new may move the array */
			cc->label += k;
			cc->llen -= k;
			x->node[cur].kid[pos] = mid;
			if (kid_insert(x, mid, 0, c) < 0)
				return GWB_NONE;
			c = mid;
		}
		cur = c;
		d += k;
	}
	return cur;
}

static void ixb_free(ixb *x)
{
	for (uint32_t i = 0; i < x->nnode; i++) {
		free(x->node[i].kid);
		free(x->node[i].pre);
		free(x->node[i].ex);
	}
	free(x->node);
}

static uint32_t slots_for(uint32_t n)
{
	if (n == 0)
		return 0;
	uint32_t s = 4;
	while (s < 2 * n)
		s *= 2;
	return s;
}

static void slot_put(uint32_t *w, uint32_t off, uint32_t nslots, uint32_t h,
                     uint32_t str, uint32_t root)
{
	uint32_t i = h & (nslots - 1);
	while (w[off + GWB_IX_SLOT * i + 2] != GWB_NONE)
		i = (i + 1) & (nslots - 1);
	w[off + GWB_IX_SLOT * i] = h;
	w[off + GWB_IX_SLOT * i + 1] = str;
	w[off + GWB_IX_SLOT * i + 2] = root;
}

static uint32_t node_words(const bnode *n)
{
	return GWB_IX_NODE + (n->nkid + 3) / 4 + n->nkid + n->npre + n->nex;
}

int gwb_index_build(const gwb_ix_input *in, uint32_t **words, uint32_t *nwords,
                    char *err, size_t errlen)
{
	ixb x = { .err = err, .errlen = errlen };
	uint32_t *gexact = NULL, *gwild = NULL;   /* STR -> group + 1 */
	bgroup *grp = NULL;                       /* exact groups, then wild, then any */
	uint32_t *ord = NULL, *stack = NULL, *w = NULL;
	uint32_t ngrp = 0, nexact = 0, nwild = 0, anyroot = GWB_NONE;
	int rc = -1;

	*words = NULL;
	*nwords = 0;
	gexact = calloc(in->nstr ? in->nstr : 1, sizeof *gexact);
	gwild = calloc(in->nstr ? in->nstr : 1, sizeof *gwild);
	grp = calloc((size_t)in->nkeys + 1, sizeof *grp);
	uint32_t *kgrp = calloc((size_t)in->nkeys + 1, sizeof *kgrp);
	if (!gexact || !gwild || !grp || !kgrp) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}

	/* 1: group keys by host. Groups are numbered per kind in order of
	 * first appearance, which keeps the output deterministic. */
	for (uint32_t r = 0; r < in->nkeys; r++) {
		const gwb_index_key *k = &in->keys[r];
		uint32_t *map = k->host_kind == GWB_HOST_EXACT ? gexact :
		                k->host_kind == GWB_HOST_WILD ? gwild : NULL;
		if (map) {
			uint32_t hl = in->stridx[2 * k->host + 1];
			const char *hs = in->strdata + in->stridx[2 * k->host];
			for (uint32_t i = 0; i < hl; i++)
				if (gwb_lower((unsigned char)hs[i]) != (unsigned char)hs[i]) {
					gwb_errf(err, errlen, "route %u: index host key \"%.*s\" is not lowercase", r,
					         (int)(hl > 64 ? 64 : hl), hs);
					goto out;
				}
			if (!map[k->host]) {
				map[k->host] = ++ngrp;          /* provisional number */
				grp[ngrp - 1].str = k->host;
				if (k->host_kind == GWB_HOST_EXACT)
					nexact++;
				else
					nwild++;
			}
		}
	}
	/* renumber: exact groups first, then wildcard, then any-host */
	{
		bgroup *g2 = calloc((size_t)ngrp + 1, sizeof *g2);
		uint32_t ie = 0, iw = nexact;
		if (!g2) {
			gwb_errf(err, errlen, "out of memory");
			goto out;
		}
		uint32_t *renum = calloc((size_t)ngrp + 1, sizeof *renum);
		if (!renum) {
			free(g2);
			gwb_errf(err, errlen, "out of memory");
			goto out;
		}
		for (uint32_t g = 0; g < ngrp; g++) {
			int wild = gwild[grp[g].str] == g + 1;
			renum[g] = wild ? iw++ : ie++;
			g2[renum[g]].str = grp[g].str;
		}
		for (uint32_t r = 0; r < in->nkeys; r++) {
			const gwb_index_key *k = &in->keys[r];
			if (k->host_kind == GWB_HOST_EXACT)
				kgrp[r] = renum[gexact[k->host] - 1];
			else if (k->host_kind == GWB_HOST_WILD)
				kgrp[r] = renum[gwild[k->host] - 1];
			else
				kgrp[r] = ngrp;                 /* the any-host group */
		}
		free(renum);
		free(grp);
		grp = g2;
	}
	for (uint32_t g = 0; g <= ngrp; g++) {
		grp[g].root = GWB_NONE;
	}

	/* 2: file every route */
	for (uint32_t r = 0; r < in->nkeys; r++) {
		const gwb_index_key *k = &in->keys[r];
		bgroup *g = &grp[kgrp[r]];
		if (g->root == GWB_NONE && (g->root = node_new(&x, "", 0)) == GWB_NONE)
			goto out;
		const char *ps = "";
		uint32_t pl = 0;
		if (k->path_kind != GWB_PATH_ANY) {
			ps = in->strdata + in->stridx[2 * k->path];
			pl = in->stridx[2 * k->path + 1];
		}
		uint32_t nd = trie_node(&x, g->root, ps, pl);
		if (nd == GWB_NONE)
			goto out;
		uint32_t cand = r | ((uint32_t)k->methods << GWB_CAND_MSHIFT) | (k->exact ? GWB_CAND_EXACT : 0);
		bnode *n = &x.node[nd];
		if (k->path_kind == GWB_PATH_EXACT) {
			if (grow32(&x, &n->ex, &n->cex, n->nex + 1) < 0)
				goto out;
			n->ex[n->nex++] = cand;
		} else {
			if (grow32(&x, &n->pre, &n->cpre, n->npre + 1) < 0)
				goto out;
			n->pre[n->npre++] = cand;
		}
	}
	if (grp[ngrp].root != GWB_NONE)
		anyroot = grp[ngrp].root;

	/* 3: lay out. Labels right after the header, then the two slot
	 * tables, then the nodes group by group in preorder (children in
	 * ascending byte order), so that the same keys give the same words. */
	uint64_t lbytes = 0;
	for (uint32_t i = 0; i < x.nnode; i++)
		lbytes += x.node[i].llen;
	uint64_t off = GWB_IX_HDR + (lbytes + 3) / 4;
	uint32_t nhs = slots_for(nexact), nws = slots_for(nwild);
	uint64_t host_off = off;
	off += (uint64_t)nhs * GWB_IX_SLOT;
	uint64_t wild_off = off;
	off += (uint64_t)nws * GWB_IX_SLOT;

	ord = malloc(((size_t)x.nnode + 1) * sizeof *ord);
	stack = malloc(((size_t)x.nnode + 1) * sizeof *stack);
	if (!ord || !stack) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	uint32_t nord = 0;
	for (uint32_t g = 0; g <= ngrp; g++) {
		if (grp[g].root == GWB_NONE)
			continue;
		uint32_t sp = 0;
		stack[sp++] = grp[g].root;
		while (sp) {
			uint32_t nd = stack[--sp];
			ord[nord++] = nd;
			x.node[nd].off = (uint32_t)off;
			off += node_words(&x.node[nd]);
			if (off > GWB_MAX_FILE / 4) {
				gwb_errf(err, errlen, "route index too large");
				goto out;
			}
			for (uint32_t k = x.node[nd].nkid; k-- > 0;)
				stack[sp++] = x.node[nd].kid[k];
		}
	}
	uint32_t total = (uint32_t)off;
	w = calloc(total, sizeof *w);
	if (!w) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	w[GWB_IX_NHOST] = nhs;
	w[GWB_IX_HOSTOFF] = (uint32_t)host_off;
	w[GWB_IX_NWILD] = nws;
	w[GWB_IX_WILDOFF] = (uint32_t)wild_off;
	w[GWB_IX_ANYROOT] = anyroot == GWB_NONE ? GWB_NONE : x.node[anyroot].off;
	w[GWB_IX_NNODES] = x.nnode;
	w[GWB_IX_NCAND] = in->nkeys;
	w[GWB_IX_LABELOFF] = GWB_IX_HDR * 4;
	for (uint32_t i = 0; i < nhs; i++)
		w[host_off + GWB_IX_SLOT * i + 2] = GWB_NONE;
	for (uint32_t i = 0; i < nws; i++)
		w[wild_off + GWB_IX_SLOT * i + 2] = GWB_NONE;
	for (uint32_t g = 0; g < ngrp; g++) {
		uint32_t s = grp[g].str;
		uint32_t h = gwb_host_hash(in->strdata + in->stridx[2 * s], in->stridx[2 * s + 1]);
		if (g < nexact)
			slot_put(w, (uint32_t)host_off, nhs, h, s, x.node[grp[g].root].off);
		else
			slot_put(w, (uint32_t)wild_off, nws, h, s, x.node[grp[g].root].off);
	}
	uint8_t *lab = (uint8_t *)(w + GWB_IX_HDR);
	uint32_t lpos = 0;
	for (uint32_t i = 0; i < nord; i++) {
		const bnode *n = &x.node[ord[i]];
		uint32_t *o = w + n->off;
		o[0] = GWB_IX_HDR * 4 + lpos;
		o[1] = n->llen;
		o[2] = n->nkid;
		o[3] = n->npre;
		o[4] = n->nex;
		memcpy(lab + lpos, n->label, n->llen);
		lpos += n->llen;
		uint8_t *fb = (uint8_t *)(o + GWB_IX_NODE);
		uint32_t *kids = o + GWB_IX_NODE + (n->nkid + 3) / 4;
		for (uint32_t k = 0; k < n->nkid; k++) {
			fb[k] = (uint8_t)x.node[n->kid[k]].label[0];
			kids[k] = x.node[n->kid[k]].off;
		}
		if (n->npre)
			memcpy(kids + n->nkid, n->pre, (size_t)n->npre * 4);
		if (n->nex)
			memcpy(kids + n->nkid + n->npre, n->ex, (size_t)n->nex * 4);
	}
	*words = w;
	*nwords = total;
	w = NULL;
	rc = 0;
out:
	if (x.failed)
		rc = -1;
	if (rc < 0)
		free(*words), *words = NULL, *nwords = 0;
	free(w);
	free(ord);
	free(stack);
	free(gexact);
	free(gwild);
	free(grp);
	free(kgrp);
	ixb_free(&x);
	return rc;
}

/* ------------------------------------------------------------ lookup */
static int eq_lower(const char *req, const char *tbl, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (gwb_lower((unsigned char)req[i]) != (unsigned char)tbl[i])
			return 0;
	return 1;
}

/* slot number holding host (compared lowercased) or GWB_NONE */
static uint32_t slot_find(const gwb_table *t, uint32_t off, uint32_t nslots,
                          uint32_t h, const char *host, size_t len)
{
	const uint32_t *w = t->index + off;
	uint32_t mask = nslots - 1, i = h & mask;
	for (uint32_t k = 0; k < nslots; k++, i = (i + 1) & mask) {
		const uint32_t *e = w + GWB_IX_SLOT * i;
		if (e[2] == GWB_NONE)
			return GWB_NONE;
		if (e[0] == h && t->stridx[2 * e[1] + 1] == len &&
		    eq_lower(host, t->strdata + t->stridx[2 * e[1]], len))
			return i;
	}
	return GWB_NONE;
}

typedef struct lk {
	const gwb_table *t;
	const gwb_prep *p;
	gwb_match *m;
	gwb_scratch *s;
	uint32_t best;
	int best_exact;
} lk;

static inline void scan(lk *c, const uint32_t *cand, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t w = cand[i], r = w & GWB_CAND_ROUTE;
		if (r >= c->best)
			return;
		if (!((w >> GWB_CAND_MSHIFT) & c->p->mbit))
			continue;
		if (w & GWB_CAND_EXACT) {
			c->best = r;
			c->best_exact = 1;
			return;
		}
		if (gwb_eval_prep(c->t, r, c->p, c->m, c->s, NULL, NULL)) {
			c->best = r;
			c->best_exact = 0;
			return;
		}
	}
}

static void walk(lk *c, uint32_t node)
{
	const uint32_t *ix = c->t->index;
	const uint8_t *ib = (const uint8_t *)ix;
	const char *path = c->p->path;
	size_t plen = c->p->plen, d = 0;

	for (;;) {
		const uint32_t *n = ix + node;
		uint32_t ll = n[1];
		if (ll) {
			if (ll > plen - d || memcmp(path + d, ib + n[0], ll) != 0)
				return;
			d += ll;
		}
		uint32_t nc = n[2], np = n[3];
		const uint32_t *kids = n + GWB_IX_NODE + ((nc + 3) >> 2);
		if (np)
			scan(c, kids + nc, np);
		if (d == plen) {
			if (n[4])
				scan(c, kids + nc + np, n[4]);
			return;
		}
		if (!nc || c->best == 0)
			return;
		const uint8_t *fb = (const uint8_t *)(n + GWB_IX_NODE);
		const uint8_t *hit = memchr(fb, (unsigned char)path[d], nc);
		if (!hit)
			return;
		node = kids[hit - fb];
	}
}

uint32_t gwb_index_lookup(const gwb_table *t, const gwb_prep *p, gwb_match *m,
                          gwb_scratch *s)
{
	const uint32_t *ix = t->index;
	lk c = { .t = t, .p = p, .m = m, .s = s, .best = GWB_NONE, .best_exact = 0 };
	const char *host = p->host;
	size_t hlen = p->hlen;
	uint32_t nwild = ix[GWB_IX_NWILD], h = FNV_SEED;

	/* one right-to-left pass: at each '.', h is the hash of what follows */
	for (size_t i = hlen; i-- > 0;) {
		unsigned char ch = gwb_lower((unsigned char)host[i]);
		if (ch == '.' && nwild) {
			uint32_t sl = slot_find(t, ix[GWB_IX_WILDOFF], nwild, h, host + i + 1, hlen - i - 1);
			if (sl != GWB_NONE)
				walk(&c, ix[ix[GWB_IX_WILDOFF] + GWB_IX_SLOT * sl + 2]);
		}
		h = (h ^ ch) * FNV_PRIME;
	}
	if (ix[GWB_IX_NHOST]) {
		uint32_t sl = slot_find(t, ix[GWB_IX_HOSTOFF], ix[GWB_IX_NHOST], h, host, hlen);
		if (sl != GWB_NONE)
			walk(&c, ix[ix[GWB_IX_HOSTOFF] + GWB_IX_SLOT * sl + 2]);
	}
	if (ix[GWB_IX_ANYROOT] != GWB_NONE && c.best != 0)
		walk(&c, ix[GWB_IX_ANYROOT]);
	if (c.best_exact || c.best == GWB_NONE) {
		m->ncap = 0;
		for (int i = 0; i < 2 * GWB_MAX_CAPTURES; i++)
			m->cap[i] = (size_t)~0;
	}
	m->route = c.best;
	return c.best;
}

/* ------------------------------------------------------------ verifier */
typedef struct ixv {
	const gwb_table *t;
	uint8_t *seen;                 /* per index word: a node starts here */
	uint8_t *filed;                /* per route */
	uint32_t *stack;               /* (offset, expected first byte + 1) pairs */
	size_t sp, cap;
	uint32_t nnodes, ncand;
	char *err;
	size_t errlen;
} ixv;

static int ixv_push(ixv *v, uint32_t off, uint32_t fb)
{
	if (v->sp + 2 > v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 64;
		uint32_t *p = realloc(v->stack, nc * sizeof *p);
		if (!p)
			return gwb_errf(v->err, v->errlen, "out of memory");
		v->stack = p;
		v->cap = nc;
	}
	v->stack[v->sp++] = off;
	v->stack[v->sp++] = fb;
	return 0;
}

static int ixv_cands(ixv *v, uint32_t node, const uint32_t *c, uint32_t n)
{
	const gwb_table *t = v->t;
	uint32_t prev = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t r = c[i] & GWB_CAND_ROUTE, ms = (c[i] >> GWB_CAND_MSHIFT) & 0x3ff;
		if (c[i] & 0x80000000u)
			return gwb_errf(v->err, v->errlen, "index: node %u: bad candidate word 0x%08x", node, c[i]);
		if (r >= t->nroute)
			return gwb_errf(v->err, v->errlen, "index: node %u: route %u out of range (%u routes)", node, r, t->nroute);
		if (ms == 0)
			return gwb_errf(v->err, v->errlen, "index: node %u: route %u has an empty method mask", node, r);
		if (i > 0 && r <= prev)
			return gwb_errf(v->err, v->errlen, "index: node %u: candidates not in ascending order", node);
		if (v->filed[r])
			return gwb_errf(v->err, v->errlen, "index: route %u filed more than once", r);
		v->filed[r] = 1;
		prev = r;
	}
	v->ncand += n;
	return 0;
}

static int ixv_trie(ixv *v, uint32_t root)
{
	const gwb_table *t = v->t;
	const uint32_t *w = t->index;
	uint64_t nw = t->nindex, nbytes = nw * 4;

	v->sp = 0;
	if (ixv_push(v, root, 0) < 0)
		return -1;
	while (v->sp) {
		uint32_t fbx = v->stack[--v->sp];
		uint32_t o = v->stack[--v->sp];
		if ((uint64_t)o + GWB_IX_NODE > nw)
			return gwb_errf(v->err, v->errlen, "index: node %u out of bounds", o);
		if (v->seen[o])
			return gwb_errf(v->err, v->errlen, "index: node %u reached twice", o);
		v->seen[o] = 1;
		v->nnodes++;
		const uint32_t *n = w + o;
		uint32_t lo = n[0], ll = n[1], nc = n[2], np = n[3], ne = n[4];
		if ((uint64_t)lo + ll > nbytes)
			return gwb_errf(v->err, v->errlen, "index: node %u: label out of bounds", o);
		if (fbx) {
			if (ll == 0 || ((const uint8_t *)w)[lo] != fbx - 1)
				return gwb_errf(v->err, v->errlen, "index: node %u: label does not start with its branch byte", o);
		}
		if (nc > 256)
			return gwb_errf(v->err, v->errlen, "index: node %u: %u children", o, nc);
		uint64_t sz = GWB_IX_NODE + (uint64_t)(nc + 3) / 4 + nc + (uint64_t)np + ne;
		if (o + sz > nw)
			return gwb_errf(v->err, v->errlen, "index: node %u: arrays out of bounds", o);
		const uint8_t *fb = (const uint8_t *)(n + GWB_IX_NODE);
		for (uint32_t k = 1; k < nc; k++)
			if (fb[k] <= fb[k - 1])
				return gwb_errf(v->err, v->errlen, "index: node %u: children not in byte order", o);
		for (uint32_t k = nc; k < (nc + 3) / 4 * 4; k++)
			if (fb[k])
				return gwb_errf(v->err, v->errlen, "index: node %u: padding not zero", o);
		const uint32_t *kids = n + GWB_IX_NODE + (nc + 3) / 4;
		if (ixv_cands(v, o, kids + nc, np) < 0 || ixv_cands(v, o, kids + nc + np, ne) < 0)
			return -1;
		for (uint32_t k = nc; k-- > 0;)
			if (ixv_push(v, kids[k], (uint32_t)fb[k] + 1) < 0)
				return -1;
	}
	return 0;
}

static int ixv_table(ixv *v, const char *what, uint32_t off, uint32_t nslots)
{
	const gwb_table *t = v->t;
	const uint32_t *w = t->index;
	if (nslots == 0)
		return 0;
	if ((nslots & (nslots - 1)) != 0 || nslots > (1u << 26))
		return gwb_errf(v->err, v->errlen, "index: %s table size %u is not a power of two", what, nslots);
	if ((uint64_t)off + (uint64_t)nslots * GWB_IX_SLOT > t->nindex)
		return gwb_errf(v->err, v->errlen, "index: %s table out of bounds", what);
	int empty = 0;
	for (uint32_t i = 0; i < nslots; i++) {
		const uint32_t *e = w + off + GWB_IX_SLOT * i;
		if (e[2] == GWB_NONE) {
			if (e[0] || e[1])
				return gwb_errf(v->err, v->errlen, "index: %s slot %u: empty slot not zero", what, i);
			empty = 1;
			continue;
		}
		if (e[1] >= t->nstr)
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: string %u out of range", what, i, e[1]);
		size_t hl;
		const char *hs = gwb_s(t, e[1], &hl);
		if (e[0] != gwb_host_hash(hs, hl))
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: wrong hash", what, i);
		/* the lookup must find this very slot: no gap before it, no
		 * equal key earlier in its probe sequence, lowercase key */
		if (slot_find(t, off, nslots, e[0], hs, hl) != i)
			return gwb_errf(v->err, v->errlen, "index: %s slot %u (\"%.*s\") unreachable", what, i,
			                (int)(hl > 64 ? 64 : hl), hs);
		if (ixv_trie(v, e[2]) < 0)
			return -1;
	}
	if (!empty)
		return gwb_errf(v->err, v->errlen, "index: %s table has no empty slot", what);
	return 0;
}

int gwb_index_verify(const gwb_table *t, char *err, size_t errlen)
{
	const uint32_t *w = t->index;
	ixv v = { .t = t, .err = err, .errlen = errlen };
	int rc = -1;

	if (t->nindex < GWB_IX_HDR)
		return gwb_errf(err, errlen, "index: section too short (%u words)", t->nindex);
	v.seen = calloc(t->nindex, 1);
	v.filed = calloc(t->nroute ? t->nroute : 1, 1);
	if (!v.seen || !v.filed) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	if (ixv_table(&v, "host", w[GWB_IX_HOSTOFF], w[GWB_IX_NHOST]) < 0 ||
	    ixv_table(&v, "wildcard", w[GWB_IX_WILDOFF], w[GWB_IX_NWILD]) < 0)
		goto out;
	if (w[GWB_IX_ANYROOT] != GWB_NONE && ixv_trie(&v, w[GWB_IX_ANYROOT]) < 0)
		goto out;
	for (uint32_t r = 0; r < t->nroute; r++)
		if (!v.filed[r]) {
			gwb_errf(err, errlen, "index: route %u is not filed", r);
			goto out;
		}
	if (v.nnodes != w[GWB_IX_NNODES] || v.ncand != w[GWB_IX_NCAND]) {
		gwb_errf(err, errlen, "index: header counts (%u nodes, %u candidates) do not match (%u, %u)",
		         w[GWB_IX_NNODES], w[GWB_IX_NCAND], v.nnodes, v.ncand);
		goto out;
	}
	rc = 0;
out:
	free(v.seen);
	free(v.filed);
	free(v.stack);
	return rc;
}

/* ------------------------------------------------------------ visit (dump) */
static int visit_trie(const gwb_table *t, uint32_t root, int hk, const char *host, size_t hl,
                      gwb_ix_visit_fn fn, void *ctx, char *pbuf, uint32_t *stack)
{
	const uint32_t *w = t->index;
	const uint8_t *ib = (const uint8_t *)w;
	size_t sp = 0;
	stack[sp++] = root;
	stack[sp++] = 0;
	while (sp) {
		uint32_t d = stack[--sp], o = stack[--sp];
		const uint32_t *n = w + o;
		memcpy(pbuf + d, ib + n[0], n[1]);
		d += n[1];
		uint32_t nc = n[2], np = n[3], ne = n[4];
		const uint32_t *kids = n + GWB_IX_NODE + (nc + 3) / 4;
		for (uint32_t i = 0; i < np + ne; i++) {
			uint32_t c = kids[nc + i];
			int pk = i >= np ? GWB_PATH_EXACT : (d == 0 ? GWB_PATH_ANY : GWB_PATH_PREFIX);
			fn(ctx, c & GWB_CAND_ROUTE, hk, host, hl, pk, pbuf, d,
			   (c >> GWB_CAND_MSHIFT) & 0x3ff, (c & GWB_CAND_EXACT) != 0);
		}
		for (uint32_t k = nc; k-- > 0;) {
			stack[sp++] = kids[k];
			stack[sp++] = d;
		}
	}
	return 0;
}

int gwb_index_visit(const gwb_table *t, gwb_ix_visit_fn fn, void *ctx)
{
	const uint32_t *w = t->index;
	/* a verified index: every node is reached once, so the stack never
	 * holds more than two words per node and no path is longer than the
	 * whole index */
	char *pbuf = malloc((size_t)t->nindex * 4 + 1);
	uint32_t *stack = malloc(((size_t)w[GWB_IX_NNODES] + 1) * 2 * sizeof *stack);
	if (!pbuf || !stack) {
		free(pbuf);
		free(stack);
		return -1;
	}
	static const struct { uint32_t n, off; int kind; } tabs[2] = {
		{ GWB_IX_NHOST, GWB_IX_HOSTOFF, GWB_HOST_EXACT },
		{ GWB_IX_NWILD, GWB_IX_WILDOFF, GWB_HOST_WILD },
	};
	for (int k = 0; k < 2; k++) {
		uint32_t ns = w[tabs[k].n], off = w[tabs[k].off];
		for (uint32_t i = 0; i < ns; i++) {
			const uint32_t *e = w + off + GWB_IX_SLOT * i;
			if (e[2] == GWB_NONE)
				continue;
			size_t hl;
			const char *hs = gwb_s(t, e[1], &hl);
			visit_trie(t, e[2], tabs[k].kind, hs, hl, fn, ctx, pbuf, stack);
		}
	}
	if (w[GWB_IX_ANYROOT] != GWB_NONE)
		visit_trie(t, w[GWB_IX_ANYROOT], GWB_HOST_ANY, "", 0, fn, ctx, pbuf, stack);
	free(pbuf);
	free(stack);
	return 0;
}

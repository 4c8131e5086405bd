/*
 * gwb_index.c — the route index: built by the builder, checked by the
 * verifier, walked by the matcher, listed by the dump. All four live here so
 * the word layout below has one home.
 *
 * INDEX section: u32 words; offsets are word offsets from the start of
 * the section unless they say "byte".
 *
 *   header (10 words)
 *     0 nhost      slots in the exact-host table (0 or a power of two)
 *     1 host_off   word offset of those slots
 *     2 nwild      slots in the wildcard-suffix table (0 or a power of two)
 *     3 wild_off   word offset of those slots
 *     4 any_root   trie root of the any-host group, or GWB_NONE
 *     5 nnodes     trie nodes in all groups      (checked, informative)
 *     6 ncand      candidates in all lists       (checked, = routes)
 *     7 any_min    lowest route in the any-host group (GWB_NONE if none)
 *     8,9 wild_lens  64-bit mask: bit min(len, 63) set for each wildcard
 *                  suffix length; a request suffix of a length not in
 *                  the mask is not looked up at all
 *
 *   slot (4 words), open addressing with linear probing, load <= 1/2
 *     hash   gwb_host_hash(host)
 *     root   trie root of the group; GWB_NONE = empty slot (others 0)
 *     len    length of the host ("example.com" for "*.example.com"),
 *            whose bytes (lowercase) sit right before the root node,
 *            zero padded to a word: comparing them warms the cache line
 *            the walk reads next, and the index never refers to STRDATA
 *     min    lowest route in the group: a group whose min is not below
 *            the best route found so far is not walked
 *
 *   trie node (4 words + arrays): a byte-wise radix trie over paths
 *     0 label_len  bytes of path consumed entering this node (>= 1 but
 *                  for a root, which has the group's common prefix when
 *                  it would otherwise be an empty node with one child)
 *     1 nchild     0..256
 *     2 npre       candidates of routes with a prefix ending here
 *     3 nexact     candidates of routes with an exact path ending here
 *     then ceil(label_len/4) words: the label bytes, zero padded
 *     then ceil(nchild/4) words: first label byte of each child, packed
 *          little-endian, strictly ascending, zero padded
 *     then nchild words: child node offsets
 *     then npre candidate words, then nexact candidate words
 *     (a node and its label share cache lines: one miss per level)
 *
 *   candidate word: bits 0..19 route, 20..29 method mask (GWB_M_*),
 *     bit 30 exact (the route's match is exactly its key: skip the
 *     program), bit 31 zero. Each list is strictly ascending by route.
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

/* Hosts are hashed and compared 8 bytes at a time, lowercased with SWAR
 * arithmetic (ASCII letters only, as HOST_EQ does): a request host is
 * hashed once in full and once per wildcard suffix probed, so this is on
 * the path of every lookup. */
/* n < 8 bytes as a little-endian word, reading nothing beyond them: two
 * overlapping 4-byte loads, or three single bytes */
static inline uint64_t ld_tail(const void *p, size_t n)
{
	const uint8_t *b = p;
	if (n >= 4) {
		uint32_t lo, hi;
		memcpy(&lo, b, 4);
		memcpy(&hi, b + n - 4, 4);
		return lo | (uint64_t)hi << ((n - 4) * 8);
	}
	if (n == 0)
		return 0;
	return b[0] | (uint64_t)b[n / 2] << (8 * (n / 2)) | (uint64_t)b[n - 1] << (8 * (n - 1));
}

static inline uint64_t ld8(const void *p)
{
	uint64_t x;
	memcpy(&x, p, 8);       /* little-endian host, see gwb_int.h */
	return x;
}

static inline uint64_t lower8(uint64_t x)
{
	uint64_t h7 = x & 0x7f7f7f7f7f7f7f7full;
	uint64_t ge_a = h7 + 0x3f3f3f3f3f3f3f3full;     /* high bit: byte >= 'A' */
	uint64_t gt_z = h7 + 0x2525252525252525ull;     /* high bit: byte > 'Z' */
	uint64_t up = ge_a & ~gt_z & ~x & 0x8080808080808080ull;
	return x | (up >> 2);                           /* + 0x20 */
}

static inline uint64_t mix(uint64_t h, uint64_t c)
{
	h = (h ^ c) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

uint32_t gwb_host_hash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	for (; n >= 8; s += 8, n -= 8)
		h = mix(h, lower8(ld8(s)));
	if (n)
		h = mix(h, lower8(ld_tail(s, n)));
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* request bytes, lowercased, equal to table bytes */
static inline int eq_lower(const char *req, const uint8_t *tbl, size_t n)
{
	for (; n >= 8; req += 8, tbl += 8, n -= 8)
		if (lower8(ld8(req)) != ld8(tbl))
			return 0;
	return n == 0 || lower8(ld_tail(req, n)) == ld_tail(tbl, n);
}

static inline int eq_bytes(const char *a, const uint8_t *b, size_t n)
{
	for (; n >= 8; a += 8, b += 8, n -= 8)
		if (ld8(a) != ld8(b))
			return 0;
	return n == 0 || ld_tail(a, n) == ld_tail(b, n);
}

static inline uint32_t len_bit(size_t len)
{
	return len < 63 ? (uint32_t)len : 63;
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
                     uint32_t root, uint32_t len, uint32_t min)
{
	uint32_t i = h & (nslots - 1);
	while (w[off + GWB_IX_SLOT * i + 1] != GWB_NONE)
		i = (i + 1) & (nslots - 1);
	w[off + GWB_IX_SLOT * i] = h;
	w[off + GWB_IX_SLOT * i + 1] = root;
	w[off + GWB_IX_SLOT * i + 2] = len;
	w[off + GWB_IX_SLOT * i + 3] = min;
}

static uint64_t node_words(const bnode *n)
{
	return GWB_IX_NODE + ((uint64_t)n->llen + 3) / 4 + (n->nkid + 3) / 4 + n->nkid +
	       (uint64_t)n->npre + n->nex;
}

int gwb_index_build(const gwb_ix_input *in, uint32_t **words, uint32_t *nwords,
                    char *err, size_t errlen)
{
	ixb x = { .err = err, .errlen = errlen };
	uint32_t *gexact = NULL, *gwild = NULL;   /* STR -> group + 1 */
	bgroup *grp = NULL;                       /* exact groups, then wild, then any */
	uint32_t *ord = NULL, *stack = NULL, *w = NULL, *gstart = NULL, *gmin = NULL;
	uint32_t ngrp = 0, nexact = 0, nwild = 0;
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
	/* a root with nothing filed at it and one child is that child: one
	 * node fewer on every walk of the group */
	for (uint32_t g = 0; g <= ngrp; g++) {
		uint32_t r = grp[g].root;
		while (r != GWB_NONE && !x.node[r].npre && !x.node[r].nex && x.node[r].nkid == 1)
			r = x.node[r].kid[0];
		grp[g].root = r;
	}

	/* 3: lay out: header, the two slot tables, then group by group the
	 * host key bytes and the group's nodes in preorder (children in
	 * ascending byte order), so that the same keys give the same words. */
	uint32_t nhs = slots_for(nexact), nws = slots_for(nwild);
	uint64_t host_off = GWB_IX_HDR;
	uint64_t wild_off = host_off + (uint64_t)nhs * GWB_IX_SLOT;
	uint64_t off = wild_off + (uint64_t)nws * GWB_IX_SLOT;
	ord = malloc(((size_t)x.nnode + 1) * sizeof *ord);
	stack = malloc(((size_t)x.nnode + 1) * sizeof *stack);
	gstart = malloc(((size_t)ngrp + 2) * sizeof *gstart);
	gmin = malloc(((size_t)ngrp + 1) * sizeof *gmin);
	if (!ord || !stack || !gstart || !gmin) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	uint32_t nord = 0;
	for (uint32_t g = 0; g <= ngrp; g++) {
		gstart[g] = nord;
		gmin[g] = GWB_NONE;
		if (grp[g].root == GWB_NONE)
			continue;
		if (g < ngrp)
			off += (in->stridx[2 * grp[g].str + 1] + 3) / 4;
		uint32_t sp = 0;
		stack[sp++] = grp[g].root;
		while (sp) {
			uint32_t nd = stack[--sp];
			const bnode *n = &x.node[nd];
			ord[nord++] = nd;
			x.node[nd].off = (uint32_t)off;
			off += node_words(n);
			if (off > GWB_MAX_FILE / 4) {
				gwb_errf(err, errlen, "route index too large");
				goto out;
			}
			/* lists are ascending: their first entries are their minima */
			if (n->npre && (n->pre[0] & GWB_CAND_ROUTE) < gmin[g])
				gmin[g] = n->pre[0] & GWB_CAND_ROUTE;
			if (n->nex && (n->ex[0] & GWB_CAND_ROUTE) < gmin[g])
				gmin[g] = n->ex[0] & GWB_CAND_ROUTE;
			for (uint32_t k = n->nkid; k-- > 0;)
				stack[sp++] = n->kid[k];
		}
	}
	gstart[ngrp + 1] = nord;
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
	w[GWB_IX_ANYROOT] = grp[ngrp].root == GWB_NONE ? GWB_NONE : x.node[grp[ngrp].root].off;
	w[GWB_IX_NNODES] = nord;
	w[GWB_IX_NCAND] = in->nkeys;
	w[GWB_IX_ANYMIN] = gmin[ngrp];
	uint64_t lens = 0;
	for (uint32_t g = nexact; g < ngrp; g++)
		lens |= 1ull << len_bit(in->stridx[2 * grp[g].str + 1]);
	w[GWB_IX_WILDLENS] = (uint32_t)lens;
	w[GWB_IX_WILDLENS + 1] = (uint32_t)(lens >> 32);
	for (uint32_t i = 0; i < nhs; i++)
		w[host_off + GWB_IX_SLOT * i + 1] = GWB_NONE;
	for (uint32_t i = 0; i < nws; i++)
		w[wild_off + GWB_IX_SLOT * i + 1] = GWB_NONE;
	for (uint32_t g = 0; g < ngrp; g++) {
		uint32_t s = grp[g].str, len = in->stridx[2 * s + 1];
		const char *hs = in->strdata + in->stridx[2 * s];
		uint32_t root = x.node[grp[g].root].off;
		memcpy((uint8_t *)(w + root - (len + 3) / 4), hs, len);
		slot_put(w, (uint32_t)(g < nexact ? host_off : wild_off), g < nexact ? nhs : nws,
		         gwb_host_hash(hs, len), root, len, gmin[g]);
	}
	for (uint32_t i = 0; i < nord; i++) {
		const bnode *n = &x.node[ord[i]];
		uint32_t *o = w + n->off;
		o[0] = n->llen;
		o[1] = n->nkid;
		o[2] = n->npre;
		o[3] = n->nex;
		uint8_t *lab = (uint8_t *)(o + GWB_IX_NODE);
		memcpy(lab, n->label, n->llen);
		uint8_t *fb = (uint8_t *)(o + GWB_IX_NODE + (n->llen + 3) / 4);
		uint32_t *kids = o + GWB_IX_NODE + (n->llen + 3) / 4 + (n->nkid + 3) / 4;
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
	free(gstart);
	free(gmin);
	free(gexact);
	free(gwild);
	free(grp);
	free(kgrp);
	ixb_free(&x);
	return rc;
}

/* ------------------------------------------------------------ lookup */
/* slot number holding host (compared lowercased) or GWB_NONE */
static uint32_t slot_find(const uint32_t *ix, uint32_t off, uint32_t nslots,
                          uint32_t h, const char *host, size_t len)
{
	const uint32_t *w = ix + off;
	uint32_t mask = nslots - 1, i = h & mask;
	for (uint32_t k = 0; k < nslots; k++, i = (i + 1) & mask) {
		const uint32_t *e = w + GWB_IX_SLOT * i;
		if (e[1] == GWB_NONE)
			return GWB_NONE;
		if (e[0] == h && e[2] == len &&
		    eq_lower(host, (const uint8_t *)(ix + e[1] - (len + 3) / 4), len))
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
		if (gwb_eval_residual(c->t, r, c->p, c->m, c->s)) {
			c->best = r;
			c->best_exact = 0;
			return;
		}
	}
}

static void walk(lk *c, uint32_t node)
{
	const uint32_t *ix = c->t->index;
	const char *path = c->p->path;
	size_t plen = c->p->plen, d = 0;

	for (;;) {
		const uint32_t *n = ix + node;
		uint32_t ll = n[0], nc = n[1], np = n[2];
		const uint8_t *lab = (const uint8_t *)(n + GWB_IX_NODE);
		if (ll) {
			if (ll > plen - d || !eq_bytes(path + d, lab, ll))
				return;
			d += ll;
		}
		const uint8_t *fb = lab + ((ll + 3) & ~3u);
		const uint32_t *kids = (const uint32_t *)(fb + ((nc + 3) & ~3u));
		if (np)
			scan(c, kids + nc, np);
		if (d == plen) {
			if (n[3])
				scan(c, kids + nc + np, n[3]);
			return;
		}
		if (!nc || c->best == 0)
			return;
		uint8_t want = (uint8_t)path[d];
		uint32_t k;
		if (nc <= 16) {
			for (k = 0; k < nc && fb[k] != want; k++)
				;
			if (k == nc)
				return;
		} else {
			const uint8_t *hit = memchr(fb, want, nc);
			if (!hit)
				return;
			k = (uint32_t)(hit - fb);
		}
		node = kids[k];
	}
}

static void wild_probe(lk *c, const char *suffix, size_t sl)
{
	const uint32_t *ix = c->t->index;
	uint32_t k = slot_find(ix, ix[GWB_IX_WILDOFF], ix[GWB_IX_NWILD],
	                       gwb_host_hash(suffix, sl), suffix, sl);
	const uint32_t *e = ix + ix[GWB_IX_WILDOFF] + GWB_IX_SLOT * k;
	if (k != GWB_NONE && e[3] < c->best)
		walk(c, e[1]);
}

uint32_t gwb_index_lookup(const gwb_table *t, const gwb_prep *p, gwb_match *m,
                          gwb_scratch *s)
{
	const uint32_t *ix = t->index;
	lk c = { .t = t, .p = p, .m = m, .s = s, .best = GWB_NONE, .best_exact = 0 };
	const char *host = p->host;
	size_t hlen = p->hlen;
	uint32_t nwild = ix[GWB_IX_NWILD];

	if (nwild) {
		/* only the suffix lengths some wildcard has: a host "x.y" has
		 * the suffix of length L iff host[hlen - L - 1] is the dot */
		uint64_t lens = ix[GWB_IX_WILDLENS] | (uint64_t)ix[GWB_IX_WILDLENS + 1] << 32;
		for (uint64_t m63 = lens & ~(1ull << 63); m63; m63 &= m63 - 1) {
			size_t sl = (size_t)__builtin_ctzll(m63);
			if (sl < hlen && host[hlen - sl - 1] == '.')
				wild_probe(&c, host + hlen - sl, sl);
		}
		if ((lens >> 63) && hlen >= 64)         /* suffixes of 63 bytes and more */
			for (size_t i = 0; i + 64 <= hlen; i++)
				if (host[i] == '.')
					wild_probe(&c, host + i + 1, hlen - i - 1);
	}
	if (ix[GWB_IX_NHOST]) {
		uint32_t sl = slot_find(ix, ix[GWB_IX_HOSTOFF], ix[GWB_IX_NHOST],
		                        gwb_host_hash(host, hlen), host, hlen);
		const uint32_t *e = ix + ix[GWB_IX_HOSTOFF] + GWB_IX_SLOT * sl;
		if (sl != GWB_NONE && e[3] < c.best)
			walk(&c, e[1]);
	}
	if (ix[GWB_IX_ANYROOT] != GWB_NONE && ix[GWB_IX_ANYMIN] < c.best)
		walk(&c, ix[GWB_IX_ANYROOT]);
	if (c.best_exact || c.best == GWB_NONE) {
		m->ncap = 0;
		memset(m->cap, 0xff, sizeof m->cap);    /* all (size_t)~0 */
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
	uint32_t gmin;                 /* lowest route of the group being checked */
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
		if (r < v->gmin)
			v->gmin = r;
		prev = r;
	}
	v->ncand += n;
	return 0;
}

static int ixv_trie(ixv *v, uint32_t root)
{
	const gwb_table *t = v->t;
	const uint32_t *w = t->index;
	uint64_t nw = t->nindex;

	v->sp = 0;
	v->gmin = GWB_NONE;
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
		uint32_t ll = n[0], nc = n[1], np = n[2], ne = n[3];
		if (nc > 256)
			return gwb_errf(v->err, v->errlen, "index: node %u: %u children", o, nc);
		uint64_t lw = ((uint64_t)ll + 3) / 4, fw = (nc + 3) / 4;
		uint64_t sz = GWB_IX_NODE + lw + fw + nc + (uint64_t)np + ne;
		if (o + sz > nw)
			return gwb_errf(v->err, v->errlen, "index: node %u: arrays out of bounds", o);
		const uint8_t *lab = (const uint8_t *)(n + GWB_IX_NODE);
		if (fbx && (ll == 0 || lab[0] != fbx - 1))
			return gwb_errf(v->err, v->errlen, "index: node %u: label does not start with its branch byte", o);
		const uint8_t *fb = lab + lw * 4;
		for (uint32_t k = 1; k < nc; k++)
			if (fb[k] <= fb[k - 1])
				return gwb_errf(v->err, v->errlen, "index: node %u: children not in byte order", o);
		for (uint64_t k = ll; k < lw * 4; k++)
			if (lab[k])
				return gwb_errf(v->err, v->errlen, "index: node %u: padding not zero", o);
		for (uint64_t k = nc; k < fw * 4; k++)
			if (fb[k])
				return gwb_errf(v->err, v->errlen, "index: node %u: padding not zero", o);
		const uint32_t *kids = (const uint32_t *)(fb + fw * 4);
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
	const uint8_t *ib = (const uint8_t *)w;
	if (nslots == 0)
		return 0;
	if ((nslots & (nslots - 1)) != 0 || nslots > (1u << 26))
		return gwb_errf(v->err, v->errlen, "index: %s table size %u is not a power of two", what, nslots);
	if ((uint64_t)off + (uint64_t)nslots * GWB_IX_SLOT > t->nindex)
		return gwb_errf(v->err, v->errlen, "index: %s table out of bounds", what);
	int empty = 0;
	for (uint32_t i = 0; i < nslots; i++) {
		const uint32_t *e = w + off + GWB_IX_SLOT * i;
		if (e[1] == GWB_NONE) {
			if (e[0] || e[2] || e[3])
				return gwb_errf(v->err, v->errlen, "index: %s slot %u: empty slot not zero", what, i);
			empty = 1;
			continue;
		}
		uint64_t kw = ((uint64_t)e[2] + 3) / 4;
		if (e[1] < kw || e[1] >= t->nindex)
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: key out of bounds", what, i);
		const char *hs = (const char *)(ib + 4 * (e[1] - kw));
		size_t hl = e[2];
		for (size_t k = hl; k < kw * 4; k++)
			if (hs[k])
				return gwb_errf(v->err, v->errlen, "index: %s slot %u: padding not zero", what, i);
		if (e[0] != gwb_host_hash(hs, hl))
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: wrong hash", what, i);
		/* the lookup must find this very slot: no gap before it, no
		 * equal key earlier in its probe sequence, lowercase key */
		if (slot_find(w, off, nslots, e[0], hs, hl) != i)
			return gwb_errf(v->err, v->errlen, "index: %s slot %u (\"%.*s\") unreachable", what, i,
			                (int)(hl > 64 ? 64 : hl), hs);
		if (ixv_trie(v, e[1]) < 0)
			return -1;
		if (v->gmin != e[3])
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: wrong minimum route", what, i);
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
	uint64_t lens = 0;
	for (uint32_t i = 0; i < w[GWB_IX_NWILD]; i++) {
		const uint32_t *e = w + w[GWB_IX_WILDOFF] + GWB_IX_SLOT * i;
		if (e[1] != GWB_NONE)
			lens |= 1ull << len_bit(e[2]);
	}
	if ((uint32_t)lens != w[GWB_IX_WILDLENS] || (uint32_t)(lens >> 32) != w[GWB_IX_WILDLENS + 1]) {
		gwb_errf(err, errlen, "index: wrong wildcard length mask");
		goto out;
	}
	v.gmin = GWB_NONE;
	if (w[GWB_IX_ANYROOT] != GWB_NONE && ixv_trie(&v, w[GWB_IX_ANYROOT]) < 0)
		goto out;
	if (v.gmin != w[GWB_IX_ANYMIN]) {
		gwb_errf(err, errlen, "index: wrong minimum route of the any-host group");
		goto out;
	}
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
	size_t sp = 0;
	stack[sp++] = root;
	stack[sp++] = 0;
	while (sp) {
		uint32_t d = stack[--sp], o = stack[--sp];
		const uint32_t *n = w + o;
		uint32_t ll = n[0], nc = n[1], np = n[2], ne = n[3];
		const uint8_t *lab = (const uint8_t *)(n + GWB_IX_NODE);
		memcpy(pbuf + d, lab, ll);
		d += ll;
		const uint8_t *fb = lab + ((ll + 3) & ~3u);
		const uint32_t *kids = (const uint32_t *)(fb + ((nc + 3) & ~3u));
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
			if (e[1] == GWB_NONE)
				continue;
			visit_trie(t, e[1], tabs[k].kind, (const char *)(w + e[1] - (e[2] + 3) / 4), e[2],
			           fn, ctx, pbuf, stack);
		}
	}
	if (w[GWB_IX_ANYROOT] != GWB_NONE)
		visit_trie(t, w[GWB_IX_ANYROOT], GWB_HOST_ANY, "", 0, fn, ctx, pbuf, stack);
	free(pbuf);
	free(stack);
	return 0;
}

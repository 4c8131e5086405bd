/*
 * gwb_index.c — the route index: built by the builder, checked by the
 * verifier, walked by the matcher, listed by the dump. All four live here so
 * the layout below has one home.
 *
 * The index is laid out for the cache: a lookup reads a host slot, then
 * one group — everything filed under one host key, contiguous — whose
 * first line holds the host bytes and the root node; a trie node is a few
 * bytes with its children's branch bytes, offsets and candidates inline;
 * a candidate that needs more than its key carries what is left of its
 * match program inline too. So a lookup touches the slot and a handful of
 * neighbouring lines of one group, and nothing else of the table.
 *
 * INDEX section: u32 words; the groups inside are byte-granular (multi-byte
 * fields little-endian, read unaligned). Offsets say "word" or "byte", all
 * from the start of the section.
 *
 *   header (10 words)
 *     0 nhost      slots in the exact-host table (0 or a power of two)
 *     1 host_off   word offset of those slots
 *     2 nwild      slots in the wildcard-suffix table (0 or a power of two)
 *     3 wild_off   word offset of those slots
 *     4 any_group  byte offset of the any-host group, or GWB_NONE
 *     5 nnodes     trie nodes in all groups      (checked, informative)
 *     6 ncand      candidates in all lists       (checked, = routes)
 *     7 reserved   0
 *     8,9 wild_lens  64-bit mask: bit min(len, 63) set for each wildcard
 *                  suffix length; a request suffix of a length not in
 *                  the mask is not looked up at all
 *
 *   slot (2 words), open addressing with linear probing, load <= 1/4
 *     hash   gwb_host_hash(host)
 *     group  byte offset of the group; GWB_NONE = empty slot (hash 0)
 *
 *   group (word aligned, one per host key, referenced once)
 *     word 0  min: lowest route in the group; a group whose min is not
 *             below the best route found so far is not walked
 *     word 1  host length (bits 0..23; "example.com" for "*.example.com",
 *             0 for the any-host group) | GWB_IXG_WIDE (bit 31)
 *     host bytes, lowercase, zero padded to a word: comparing them warms
 *             the line the walk reads next, and the index never refers
 *             to STRDATA
 *     nodes: the root first, then the others in preorder (children in
 *             ascending byte order), so a node's subtree lies right after
 *             it: the walk prefetches the lines after a node it descends
 *             to; zero padding to a word
 *
 *   trie node (byte-granular): a byte-wise radix trie over paths
 *     u8 llen      label bytes
 *     u8 flags     GWB_IXN_KIDS | GWB_IXN_PRE | GWB_IXN_EX
 *     u8 nkids-1   0 without KIDS (so a node may have all 256 children)
 *     label        path bytes consumed at this node (for a child, those
 *                  after its branch byte, which its parent consumed)
 *     first[nk]    branch byte of each child, strictly ascending
 *     off[nk]      child offsets from the group start: u16, u32 when the
 *                  group is WIDE (larger than 64 KiB)
 *     the prefix list (PRE: routes with a prefix ending here), then the
 *     exact list (EX: routes with an exact path ending here)
 *
 *   candidate: a word: bits 0..19 route, 20..29 method mask (GWB_M_*),
 *     bit 30 EXACT (the route's match is exactly its key: nothing to run),
 *     bit 31 LAST (of its list). Without EXACT the word is followed by the
 *     route's residual program: a word, length in words (bits 0..27) |
 *     bit 31 (the flag starts true), and the words of the match program
 *     minus the tests at its head that the key implies (gwb_residual),
 *     jumps relative to the residual's first word. Each list is strictly
 *     ascending by route.
 *
 *   8 zero bytes end the section, so 8-byte loads inside it never overrun.
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
 *
 * The verifier checks every offset and length, that every route is filed
 * exactly once, that each residual program is the one gwb_residual derives
 * from the route's (verified) program and the key it is filed under, and
 * that every byte no record covers is zero.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include "gwb_int.h"

/* ------------------------------------------------------------ bytes */
static inline uint32_t ld16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static inline uint32_t ld32(const uint8_t *p)
{
	uint32_t x;
	memcpy(&x, p, 4);       /* little-endian host, see gwb_int.h */
	return x;
}

static inline void st16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

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
	memcpy(&x, p, 8);
	return x;
}

/* the first n < 8 bytes of an index word: the section's zero tail makes
 * the whole 8-byte load safe */
static inline uint64_t ld_tbl(const uint8_t *p, size_t n)
{
	return ld8(p) & ((1ull << (8 * n)) - 1);
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

/* the hash folds case by setting bit 5 of every byte: that also merges
 * a few non-letters with others ('@' and '`'), which only costs a
 * compare now and then; the compares themselves are exact */
static inline uint64_t fold8(uint64_t x)
{
	return x | 0x2020202020202020ull;
}

static inline uint32_t hash_fin(uint64_t h, size_t n)
{
	h ^= n;
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ull;
	return (uint32_t)(h ^ (h >> 32));
}

#define HASH_SEED 0x9e3779b97f4a7c15ull

uint32_t gwb_host_hash(const char *s, size_t n)
{
	uint64_t h = HASH_SEED;
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		h = mix(h, fold8(ld8(s + i)));
	if (i < n)
		h = mix(h, fold8(ld_tail(s + i, n - i)));
	return hash_fin(h, n);
}

/* bytes of x equal to the byte in every lane of b8: the lowest flagged
 * lane is exact (borrows only run upward) */
static inline uint64_t lanes_eq(uint64_t x, uint64_t b8)
{
	uint64_t v = x ^ b8;
	return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

static inline __attribute__((always_inline)) void prep_host(gwb_prep *p, const char *h,
                                                           size_t n)
{
	if (n && h[0] == '[') {                 /* "[v6]:port": rare */
		p->hlen = gwb_host_key(h, n);
		p->hhash = gwb_host_hash(h, p->hlen);
		return;
	}
	/* gwb_host_key (up to the first ':') and gwb_host_hash of it
	 * together, a word at a time */
	const uint64_t colons = 0x3a3a3a3a3a3a3a3aull;
	uint64_t hh = HASH_SEED, x, z;
	size_t i = 0, k;
	for (; i + 8 <= n; i += 8) {
		x = ld8(h + i);
		if ((z = lanes_eq(x, colons)) != 0)
			goto tail;
		hh = mix(hh, fold8(x));
	}
	x = ld_tail(h + i, n - i);
	z = lanes_eq(x, colons) & ((1ull << (8 * (n - i))) - 1);
	if (!z) {
		k = n - i;
		goto last;
	}
tail:
	k = (size_t)__builtin_ctzll(z) >> 3;
last:
	if (k)
		hh = mix(hh, fold8(x & ((1ull << (8 * k)) - 1)));   /* k < 8 */
	p->hlen = i + k;
	p->hhash = hash_fin(hh, i + k);
	if (p->hlen > 1 && h[p->hlen - 1] == '.') {   /* rare: gwb_host_key's trailing dot */
		p->hlen--;
		p->hhash = gwb_host_hash(h, p->hlen);
	}
}

void gwb_prep_host(gwb_prep *p, const char *h, size_t n)
{
	prep_host(p, h, n);
}

/* request bytes, lowercased, equal to table bytes (zero tail, see above) */
static inline int eq_lower(const char *req, const uint8_t *tbl, size_t n)
{
	for (; n >= 8; req += 8, tbl += 8, n -= 8)
		if (lower8(ld8(req)) != ld8(tbl))
			return 0;
	return n == 0 || lower8(ld_tail(req, n)) == ld_tbl(tbl, n);
}

static inline int eq_bytes(const char *a, const uint8_t *b, size_t n)
{
	for (; n >= 8; a += 8, b += 8, n -= 8)
		if (ld8(a) != ld8(b))
			return 0;
	return n == 0 || ld_tail(a, n) == ld_tbl(b, n);
}

static inline uint32_t len_bit(size_t len)
{
	return len < 63 ? (uint32_t)len : 63;
}

static inline uint32_t pad4(uint32_t n)
{
	return (n + 3) & ~3u;
}

/* --------------------------------------------------------- residuals */
static int str_is(const uint32_t *stridx, const char *strdata, uint32_t nstr, uint32_t s,
                  const char *b, size_t n)
{
	return s < nstr && stridx[2 * s + 1] == n &&
	       (n == 0 || memcmp(strdata + stridx[2 * s], b, n) == 0);
}

uint32_t gwb_residual(const uint32_t *code, uint32_t pc, uint32_t end,
                      const uint32_t *stridx, const char *strdata, uint32_t nstr,
                      const gwb_ixkey *k, int *flag)
{
	int skipped = 0;
	while (pc < end) {
		uint32_t op = code[pc];
		if (op >= GWB_OP__COUNT || pc + gwb_ops[op].nargs >= end)
			break;                  /* only a builder fed bad code gets here */
		uint32_t a = gwb_ops[op].nargs ? code[pc + 1] : 0;
		int implied = 0;
		switch (op) {
		case GWB_OP_ANY:
			implied = 1;
			break;
		case GWB_OP_HOST_EQ:
			implied = k->hk == GWB_HOST_EXACT && str_is(stridx, strdata, nstr, a, k->host, k->hl);
			break;
		case GWB_OP_HOST_WILD:
			implied = k->hk == GWB_HOST_WILD && str_is(stridx, strdata, nstr, a, k->host, k->hl);
			break;
		case GWB_OP_PATH_EQ:
			implied = k->pk == GWB_PATH_EXACT && str_is(stridx, strdata, nstr, a, k->path, k->pl);
			break;
		case GWB_OP_PATH_PREFIX:
			/* "" is a prefix of every path, so a key filed at the root
			 * (any path, or prefix "") implies it too */
			if (a < nstr) {
				uint32_t al = stridx[2 * a + 1];
				implied = al == 0 || (k->pk != GWB_PATH_ANY && al <= k->pl &&
				                      memcmp(strdata + stridx[2 * a], k->path, al) == 0);
			}
			break;
		case GWB_OP_METHOD:
			implied = (k->methods & ~a) == 0;
			break;
		case GWB_OP_JF:
			implied = skipped;       /* the flag is true here: falls through */
			break;
		default:
			break;
		}
		if (!implied)
			break;
		skipped = 1;
		pc += 1 + gwb_ops[op].nargs;
	}
	*flag = skipped;
	return pc;
}

/* copies the residual [pc, end) into out with jumps made relative to pc */
static void residual_copy(const uint32_t *code, uint32_t pc, uint32_t end, uint32_t *out)
{
	for (uint32_t i = pc; i < end;) {
		uint32_t op = code[i], n = op < GWB_OP__COUNT ? gwb_ops[op].nargs : 0;
		out[i - pc] = op;
		for (uint32_t k = 1; k <= n && i + k < end; k++)
			out[i - pc + k] = code[i + k] -
			                  ((op == GWB_OP_JF || op == GWB_OP_JT) ? pc : 0);
		i += 1 + n;
	}
}

/* ------------------------------------------------------------ builder */
typedef struct bnode {
	const char *label;             /* a child's starts with its branch byte */
	uint32_t llen;
	uint32_t *kid, nkid, ckid;     /* node numbers, sorted by first byte */
	uint32_t *pre, npre, cpre;     /* route numbers, ascending */
	uint32_t *ex, nex, cex;
	uint32_t off;                  /* byte offset from the group start */
	int root;
} bnode;

typedef struct bgroup {
	uint32_t str;                  /* host STR, unused for any-host */
	uint32_t root;                 /* node number */
	uint32_t off;                  /* byte offset of the group */
	uint32_t size;                 /* bytes, a multiple of 4 */
	uint32_t min;
	uint32_t first, last;          /* its nodes in ord[] */
	int wide;
} bgroup;

/* what each route's candidate carries */
typedef struct bcand {
	uint32_t word;                 /* route | methods | EXACT */
	uint32_t pc, end;              /* residual, when not EXACT */
	int flag;
} bcand;

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

/* A label longer than a node can say (255 bytes after the branch byte)
 * is cut: the node keeps its head and gets one child with the rest and
 * everything it had. Nodes made here are cut in their turn. */
static int split_labels(ixb *x)
{
	for (uint32_t i = 0; i < x->nnode; i++) {
		uint32_t keep = x->node[i].root ? 255 : 256;
		if (x->node[i].llen <= keep)
			continue;
		uint32_t c = node_new(x, x->node[i].label + keep, x->node[i].llen - keep);
		if (c == GWB_NONE)
			return -1;
		bnode *n = &x->node[i], *cn = &x->node[c];
		cn->kid = n->kid, cn->nkid = n->nkid, cn->ckid = n->ckid;
		cn->pre = n->pre, cn->npre = n->npre, cn->cpre = n->cpre;
		cn->ex = n->ex, cn->nex = n->nex, cn->cex = n->cex;
		n->kid = n->pre = n->ex = NULL;
		n->nkid = n->ckid = n->npre = n->cpre = n->nex = n->cex = 0;
		n->llen = keep;
		if (kid_insert(x, i, 0, c) < 0)
			return -1;
	}
	return 0;
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

/* load <= 1/4: a probe mostly lands on its host or on an empty slot at
 * once (fewer mispredicted branches than at 1/2), for 32 bytes a host */
static uint32_t slots_for(uint32_t n)
{
	if (n == 0)
		return 0;
	uint32_t s = 4;
	while (s < 4 * (uint64_t)n)
		s *= 2;
	return s;
}

static void slot_put(uint32_t *w, uint32_t off, uint32_t nslots, uint32_t h, uint32_t group)
{
	uint32_t i = h & (nslots - 1);
	while (w[off + GWB_IX_SLOT * i + 1] != GWB_NONE)
		i = (i + 1) & (nslots - 1);
	w[off + GWB_IX_SLOT * i] = h;
	w[off + GWB_IX_SLOT * i + 1] = group;
}

static uint64_t list_bytes(const bcand *cd, const uint32_t *v, uint32_t n)
{
	uint64_t b = 0;
	for (uint32_t i = 0; i < n; i++) {
		const bcand *c = &cd[v[i]];
		b += (c->word & GWB_CAND_EXACT) ? 4 : 8 + 4 * (uint64_t)(c->end - c->pc);
	}
	return b;
}

static uint64_t node_bytes(const bnode *n, const bcand *cd, int wide)
{
	uint64_t ll = n->root ? n->llen : n->llen - 1;
	return 3 + ll + (uint64_t)n->nkid * (wide ? 5 : 3) + list_bytes(cd, n->pre, n->npre) +
	       list_bytes(cd, n->ex, n->nex);
}

static uint8_t *put_list(uint8_t *o, const bcand *cd, const uint32_t *v, uint32_t n,
                         const uint32_t *code, uint32_t *res)
{
	for (uint32_t i = 0; i < n; i++) {
		const bcand *c = &cd[v[i]];
		st32(o, c->word | (i + 1 == n ? GWB_CAND_LAST : 0));
		o += 4;
		if (c->word & GWB_CAND_EXACT)
			continue;
		uint32_t len = c->end - c->pc;
		st32(o, len | (c->flag ? GWB_RES_FLAG : 0));
		residual_copy(code, c->pc, c->end, res);
		memcpy(o + 4, res, (size_t)len * 4);
		o += 4 + 4 * (size_t)len;
	}
	return o;
}

int gwb_index_build(const gwb_ix_input *in, uint32_t **words, uint32_t *nwords,
                    char *err, size_t errlen)
{
	ixb x = { .err = err, .errlen = errlen };
	uint32_t *gexact = NULL, *gwild = NULL;   /* STR -> group + 1 */
	bgroup *grp = NULL;                       /* exact groups, then wild, then any */
	uint32_t *ord = NULL, *stack = NULL, *w = NULL, *res = NULL;
	bcand *cd = NULL;
	uint32_t maxres = 1;
	uint32_t ngrp = 0, nexact = 0, nwild = 0;
	int rc = -1;

	*words = NULL;
	*nwords = 0;
	gexact = calloc(in->nstr ? in->nstr : 1, sizeof *gexact);
	gwild = calloc(in->nstr ? in->nstr : 1, sizeof *gwild);
	grp = calloc((size_t)in->nkeys + 1, sizeof *grp);
	uint32_t *kgrp = calloc((size_t)in->nkeys + 1, sizeof *kgrp);
	cd = calloc((size_t)in->nkeys + 1, sizeof *cd);
	if (!gexact || !gwild || !grp || !kgrp || !cd) {
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
			if (hl > GWB_IXG_HLEN) {
				gwb_errf(err, errlen, "route %u: index host key too long (%u bytes)", r, hl);
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
		grp[g].min = GWB_NONE;
	}

	/* 2: file every route, with what its candidate carries: the residual
	 * of its program for the key, or EXACT when nothing is left of it */
	for (uint32_t r = 0; r < in->nkeys; r++) {
		const gwb_index_key *k = &in->keys[r];
		bgroup *g = &grp[kgrp[r]];
		if (g->root == GWB_NONE && (g->root = node_new(&x, "", 0)) == GWB_NONE)
			goto out;
		if (r < g->min)
			g->min = r;
		gwb_ixkey ik = { .hk = k->host_kind, .host = "", .hl = 0, .pk = k->path_kind,
		                 .path = "", .pl = 0, .methods = k->methods };
		if (k->host_kind != GWB_HOST_ANY) {
			ik.host = in->strdata + in->stridx[2 * k->host];
			ik.hl = in->stridx[2 * k->host + 1];
		}
		if (k->path_kind != GWB_PATH_ANY) {
			ik.path = in->strdata + in->stridx[2 * k->path];
			ik.pl = in->stridx[2 * k->path + 1];
		}
		/* what the verifier sees at the root is "any path" */
		if (ik.pk == GWB_PATH_PREFIX && ik.pl == 0)
			ik.pk = GWB_PATH_ANY;
		bcand *c = &cd[r];
		c->word = r | ((uint32_t)k->methods << GWB_CAND_MSHIFT);
		const gwb_route *rt = &in->routes[r];
		if (rt->match_pc >= rt->match_end || rt->match_end > in->ncode) {
			gwb_errf(err, errlen, "route %u: no match program", r);
			goto out;
		}
		c->end = rt->match_end;
		c->pc = gwb_residual(in->code, rt->match_pc, rt->match_end, in->stridx, in->strdata,
		                     in->nstr, &ik, &c->flag);
		if (k->exact || (c->flag && c->end - c->pc == 1 && in->code[c->pc] == GWB_OP_END))
			c->word |= GWB_CAND_EXACT;
		else if (c->end - c->pc > maxres)
			maxres = c->end - c->pc;
		uint32_t nd = trie_node(&x, g->root, ik.path, (uint32_t)ik.pl);
		if (nd == GWB_NONE)
			goto out;
		bnode *n = &x.node[nd];
		if (k->path_kind == GWB_PATH_EXACT) {
			if (grow32(&x, &n->ex, &n->cex, n->nex + 1) < 0)
				goto out;
			n->ex[n->nex++] = r;
		} else {
			if (grow32(&x, &n->pre, &n->cpre, n->npre + 1) < 0)
				goto out;
			n->pre[n->npre++] = r;
		}
	}
	/* a root with nothing filed at it and one child is that child: one
	 * node fewer on every walk of the group */
	for (uint32_t g = 0; g <= ngrp; g++) {
		uint32_t r = grp[g].root;
		while (r != GWB_NONE && !x.node[r].npre && !x.node[r].nex && x.node[r].nkid == 1)
			r = x.node[r].kid[0];
		grp[g].root = r;
		if (r != GWB_NONE)
			x.node[r].root = 1;
	}
	if (split_labels(&x) < 0)
		goto out;

	/* 3: lay out: header, the two slot tables, then group by group the
	 * host key bytes and the group's nodes in preorder (children in
	 * ascending byte order), so that the same keys give the same bytes.
	 * Offsets inside a group are 16-bit unless it outgrows them. */
	uint32_t nhs = slots_for(nexact), nws = slots_for(nwild);
	uint64_t host_off = GWB_IX_HDR;
	uint64_t wild_off = host_off + (uint64_t)nhs * GWB_IX_SLOT;
	uint64_t off = 4 * (wild_off + (uint64_t)nws * GWB_IX_SLOT);   /* bytes */
	ord = malloc(((size_t)x.nnode + 1) * sizeof *ord);
	stack = malloc(((size_t)x.nnode + 1) * sizeof *stack);
	res = malloc((size_t)maxres * sizeof *res);
	if (!ord || !stack || !res) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	uint32_t nord = 0;
	for (uint32_t g = 0; g <= ngrp; g++) {
		bgroup *gp = &grp[g];
		if (gp->root == GWB_NONE)
			continue;
		uint32_t first = nord;
		gp->first = first;
		uint32_t sp = 0;
		stack[sp++] = gp->root;
		while (sp) {
			uint32_t nd = stack[--sp];
			ord[nord++] = nd;
			for (uint32_t k = x.node[nd].nkid; k-- > 0;)
				stack[sp++] = x.node[nd].kid[k];
		}
		gp->last = nord;
		uint32_t hl = g < ngrp ? in->stridx[2 * gp->str + 1] : 0;
		for (int wide = 0; wide < 2; wide++) {
			uint64_t o = 8 + pad4(hl);
			for (uint32_t i = first; i < nord; i++) {
				x.node[ord[i]].off = (uint32_t)o;
				o += node_bytes(&x.node[ord[i]], cd, wide);
				if (o > GWB_MAX_FILE) {
					gwb_errf(err, errlen, "route index too large");
					goto out;
				}
			}
			gp->wide = wide;
			gp->size = pad4((uint32_t)o);
			if (o <= 0x10000)
				break;
		}
		gp->off = (uint32_t)off;
		off += gp->size;
		if (off > GWB_MAX_FILE - 8) {
			gwb_errf(err, errlen, "route index too large");
			goto out;
		}
	}
	uint32_t total = (uint32_t)(off / 4 + 2);          /* + the zero tail */
	w = calloc(total, sizeof *w);
	if (!w) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	uint8_t *B = (uint8_t *)w;
	w[GWB_IX_NHOST] = nhs;
	w[GWB_IX_HOSTOFF] = (uint32_t)host_off;
	w[GWB_IX_NWILD] = nws;
	w[GWB_IX_WILDOFF] = (uint32_t)wild_off;
	w[GWB_IX_ANYGROUP] = grp[ngrp].root == GWB_NONE ? GWB_NONE : grp[ngrp].off;
	w[GWB_IX_NNODES] = nord;
	w[GWB_IX_NCAND] = in->nkeys;
	uint64_t lens = 0;
	for (uint32_t g = nexact; g < ngrp; g++)
		lens |= 1ull << len_bit(in->stridx[2 * grp[g].str + 1]);
	w[GWB_IX_WILDLENS] = (uint32_t)lens;
	w[GWB_IX_WILDLENS + 1] = (uint32_t)(lens >> 32);
	for (uint32_t i = 0; i < nhs; i++)
		w[host_off + GWB_IX_SLOT * i + 1] = GWB_NONE;
	for (uint32_t i = 0; i < nws; i++)
		w[wild_off + GWB_IX_SLOT * i + 1] = GWB_NONE;
	for (uint32_t g = 0; g <= ngrp; g++) {
		const bgroup *gp = &grp[g];
		if (gp->root == GWB_NONE)
			continue;
		uint8_t *G = B + gp->off;
		uint32_t hl = 0;
		if (g < ngrp) {
			hl = in->stridx[2 * gp->str + 1];
			const char *hs = in->strdata + in->stridx[2 * gp->str];
			memcpy(G + 8, hs, hl);
			slot_put(w, (uint32_t)(g < nexact ? host_off : wild_off), g < nexact ? nhs : nws,
			         gwb_host_hash(hs, hl), gp->off);
		}
		st32(G, gp->min);
		st32(G + 4, hl | (gp->wide ? GWB_IXG_WIDE : 0));
	}
	for (uint32_t g = 0; g <= ngrp; g++) {
		const bgroup *gp = &grp[g];
		if (gp->root == GWB_NONE)
			continue;
		for (uint32_t i = gp->first; i < gp->last; i++) {
			const bnode *n = &x.node[ord[i]];
			uint8_t *o = B + gp->off + n->off;
			uint32_t ll = n->root ? n->llen : n->llen - 1;
			o[0] = (uint8_t)ll;
			o[1] = (uint8_t)((n->nkid ? GWB_IXN_KIDS : 0) | (n->npre ? GWB_IXN_PRE : 0) |
			                 (n->nex ? GWB_IXN_EX : 0));
			o[2] = (uint8_t)(n->nkid ? n->nkid - 1 : 0);
			memcpy(o + 3, n->root ? n->label : n->label + 1, ll);
			o += 3 + ll;
			for (uint32_t k = 0; k < n->nkid; k++)
				o[k] = (uint8_t)x.node[n->kid[k]].label[0];
			o += n->nkid;
			for (uint32_t k = 0; k < n->nkid; k++) {
				if (gp->wide)
					st32(o + 4 * k, x.node[n->kid[k]].off);
				else
					st16(o + 2 * k, x.node[n->kid[k]].off);
			}
			o += (size_t)n->nkid * (gp->wide ? 4 : 2);
			o = put_list(o, cd, n->pre, n->npre, in->code, res);
			put_list(o, cd, n->ex, n->nex, in->code, res);
		}
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
	free(res);
	free(gexact);
	free(gwild);
	free(grp);
	free(kgrp);
	free(cd);
	ixb_free(&x);
	return rc;
}

/* ------------------------------------------------------------ lookup */
/* byte offset of the group of host (compared lowercased) or GWB_NONE */
static uint32_t slot_find(const uint32_t *ix, uint32_t off, uint32_t nslots,
                          uint32_t h, const char *host, size_t len)
{
	const uint32_t *w = ix + off;
	const uint8_t *b = (const uint8_t *)ix;
	uint32_t mask = nslots - 1, i = h & mask;
	for (uint32_t k = 0; k < nslots; k++, i = (i + 1) & mask) {
		const uint32_t *e = w + GWB_IX_SLOT * i;
		if (e[1] == GWB_NONE)
			return GWB_NONE;
		if (e[0] == h && (ld32(b + e[1] + 4) & GWB_IXG_HLEN) == len &&
		    eq_lower(host, b + e[1] + 8, len))
			return e[1];
	}
	return GWB_NONE;
}

/* the same for the request's host key: compared as it is first (hosts
 * come lowercase almost always), lowercased only when that fails */
static inline uint32_t slot_find_req(const uint32_t *ix, const gwb_prep *p)
{
	const uint32_t *w = ix + ix[GWB_IX_HOSTOFF];
	const uint8_t *b = (const uint8_t *)ix;
	uint32_t mask = ix[GWB_IX_NHOST] - 1, i = p->hhash & mask;
	size_t len = p->hlen;
	for (;; i = (i + 1) & mask) {            /* a table always has an empty slot */
		const uint32_t *e = w + GWB_IX_SLOT * i;
		if (e[1] == GWB_NONE)
			return GWB_NONE;
		if (e[0] != p->hhash || (ld32(b + e[1] + 4) & GWB_IXG_HLEN) != len)
			continue;
		if (eq_bytes(p->host, b + e[1] + 8, len) || eq_lower(p->host, b + e[1] + 8, len))
			return e[1];
	}
}

typedef struct lk {
	const gwb_table *t;
	const gwb_prep *p;
	gwb_match *m;
	gwb_scratch *s;
	uint32_t best;
	int best_exact;
} lk;

static inline const uint8_t *cand_next(const uint8_t *q, uint32_t w)
{
	return (w & GWB_CAND_EXACT) ? q + 4 : q + 8 + 4 * (size_t)(ld32(q + 4) & GWB_RES_LEN);
}

static inline void scan(lk *c, const uint8_t *q)
{
	uint32_t mbit = c->p->mbit;
	for (;;) {
		uint32_t w = ld32(q), r = w & GWB_CAND_ROUTE;
		if (r >= c->best)
			return;
		if ((w >> GWB_CAND_MSHIFT) & mbit) {
			if (w & GWB_CAND_EXACT) {
				c->best = r;
				c->best_exact = 1;
				return;
			}
			uint32_t rw = ld32(q + 4);
			if (gwb_eval_inline(c->t, r, q + 8, rw & GWB_RES_LEN, (rw & GWB_RES_FLAG) != 0,
			                    c->p, c->m, c->s)) {
				c->best = r;
				c->best_exact = 0;
				return;
			}
		}
		if (w & GWB_CAND_LAST)
			return;
		q = cand_next(q, w);
	}
}

static const uint8_t *skip_list(const uint8_t *q)
{
	for (;;) {
		uint32_t w = ld32(q);
		q = cand_next(q, w);
		if (w & GWB_CAND_LAST)
			return q;
	}
}

/* position of byte c among the n ascending bytes at fb, or -1; reads up
 * to 7 bytes past them, which the section's zero tail allows */
static inline int kid_find(const uint8_t *fb, uint32_t n, uint8_t c)
{
	const uint64_t ones = 0x0101010101010101ull;
	for (uint32_t base = 0; base < n; base += 8) {
		uint64_t v = ld8(fb + base) ^ (ones * c);
		uint64_t z = (v - ones) & ~v & (ones << 7);
		if (z) {
			/* the lowest flagged byte is a real zero (borrows only
			 * run upward) */
			uint32_t k = base + (uint32_t)(__builtin_ctzll(z) >> 3);
			return k < n ? (int)k : -1;
		}
	}
	return -1;
}

/* masks of the last n bytes of a little-endian word, n = 0..8 */
static const uint64_t tailmask[9] = {
	0, 0xff00000000000000ull, 0xffff000000000000ull, 0xffffff0000000000ull,
	0xffffffff00000000ull, 0xffffffffff000000ull, 0xffffffffffff0000ull,
	0xffffffffffffff00ull, 0xffffffffffffffffull,
};

/* ow: bytes of a child offset, 2 or 4 (a constant in each copy) */
static inline __attribute__((always_inline)) void walk_ow(lk *c, const uint8_t *g, const uint32_t ow)
{
	const char *path = c->p->path;
	size_t plen = c->p->plen, d = 0;
	/* 8-byte reads of the path: in place when it has 8 bytes, else from
	 * a zero-padded copy */
	uint64_t head = plen >= 8 ? 0 : ld_tail(path, plen);
	const char *pw = plen >= 8 ? path : (const char *)&head;
	const uint8_t *n = g + 8 + pad4(ld32(g + 4) & GWB_IXG_HLEN);

	for (;;) {
		uint32_t h = ld32(n);                /* llen, flags, nkids - 1, label[0] */
		uint32_t ll = h & 0xff, fl = (h >> 8) & 0xff;
		const uint8_t *lab = n + 3;
		if (ll > plen - d)
			return;
		size_t e = d + ll;
		if (ll <= 8) {
			/* one compare of the word that ends where the label does:
			 * the request's 8 bytes before e (within its first 8, from
			 * pw, shifted up), the table's 8 before the label's end
			 * (node header or the node before: in the section), the
			 * bytes before the label masked off */
			size_t base = e >= 8 ? e - 8 : 0;
			uint64_t w = ld8(pw + base) << ((8 * (8 - (e - base))) & 63);
			if ((w ^ ld8(lab + ll - 8)) & tailmask[ll])
				return;
		} else if (!eq_bytes(path + d, lab, ll)) {
			return;
		}
		d = e;
		const uint8_t *fb = lab + ll;
		uint32_t nk = ((h >> 16) & 0xff) + (fl & GWB_IXN_KIDS);   /* nkids-1 is 0 without */
		if (fl & (GWB_IXN_PRE | GWB_IXN_EX)) {
			const uint8_t *q = fb + nk * (1 + ow);
			if (fl & GWB_IXN_PRE)
				scan(c, q);
			if (d == plen) {
				if (fl & GWB_IXN_EX)
					scan(c, (fl & GWB_IXN_PRE) ? skip_list(q) : q);
				return;
			}
		} else if (d == plen) {
			return;
		}
		int k = kid_find(fb, nk, (uint8_t)path[d]);
		if (k < 0)
			return;
		d++;
		uint32_t off = ow == 2 ? ld16(fb + nk + 2 * (uint32_t)k) : ld32(fb + nk + 4 * (uint32_t)k);
		n = g + off;
		/* the child's subtree follows it (preorder): ask for its next
		 * two lines now, so that the misses on the child and on the
		 * child it leads to overlap instead of coming one after the
		 * other (past a small subtree they are its siblings': a little
		 * bandwidth, no fault; integer arithmetic, as the address may
		 * lie past the table) */
		__builtin_prefetch((const void *)((uintptr_t)n + 64));
		__builtin_prefetch((const void *)((uintptr_t)n + 128));
	}
}

static void walk(lk *c, const uint8_t *g)
{
	if (ld32(g + 4) & GWB_IXG_WIDE)
		walk_ow(c, g, 4);
	else
		walk_ow(c, g, 2);
}

static void walk_group(lk *c, uint32_t goff)
{
	const uint8_t *g = (const uint8_t *)c->t->index + goff;
	if (ld32(g) < c->best)
		walk(c, g);
}

static void wild_probe(lk *c, const char *suffix, size_t sl)
{
	const uint32_t *ix = c->t->index;
	uint32_t g = slot_find(ix, ix[GWB_IX_WILDOFF], ix[GWB_IX_NWILD],
	                       gwb_host_hash(suffix, sl), suffix, sl);
	if (g != GWB_NONE)
		walk_group(c, g);
}

static inline uint32_t lookup(const gwb_table *t, const gwb_prep *p, gwb_match *m,
                              gwb_scratch *s)
{
	const uint32_t *ix = t->index;
	lk c = { .t = t, .p = p, .m = m, .s = s, .best = GWB_NONE, .best_exact = 0 };
	const char *host = p->host;
	size_t hlen = p->hlen;

	if (ix[GWB_IX_NWILD]) {
		/* only the suffix lengths some wildcard has: a host "x.y" has
		 * the suffix of length L iff host[hlen - L - 1] is the dot */
		uint64_t lens = ix[GWB_IX_WILDLENS] | (uint64_t)ix[GWB_IX_WILDLENS + 1] << 32;
		for (uint64_t m63 = lens & ~(1ull << 63); m63; m63 &= m63 - 1) {
			size_t sl = (size_t)__builtin_ctzll(m63);
			if (sl + 1 < hlen && host[hlen - sl - 1] == '.')   /* a label before the dot */
				wild_probe(&c, host + hlen - sl, sl);
		}
		if ((lens >> 63) && hlen >= 64)         /* suffixes of 63 bytes and more */
			for (size_t i = 1; i + 64 <= hlen; i++)
				if (host[i] == '.')
					wild_probe(&c, host + i + 1, hlen - i - 1);
	}
	if (ix[GWB_IX_NHOST]) {
		uint32_t g = slot_find_req(ix, p);
		if (g != GWB_NONE)
			walk_group(&c, g);
	}
	if (ix[GWB_IX_ANYGROUP] != GWB_NONE)
		walk_group(&c, ix[GWB_IX_ANYGROUP]);
	if (c.best_exact || c.best == GWB_NONE) {
		m->ncap = 0;
		memset(m->cap, 0xff, sizeof m->cap);    /* all (size_t)~0 */
	}
	m->route = c.best;
	return c.best;
}

uint32_t gwb_index_match(const gwb_table *t, const gwb_request *rq, gwb_match *m,
                         gwb_scratch *s)
{
	gwb_prep p;
	p.rq = rq;
	p.host = rq->host ? rq->host : "";
	prep_host(&p, p.host, rq->host ? rq->host_len : 0);
	p.path = rq->path ? rq->path : "";
	p.plen = rq->path ? rq->path_len : 0;
	p.mbit = rq->method ? gwb_method_bit(rq->method, rq->method_len) : GWB_M_OTHER;
	return lookup(t, &p, m, s);
}

/* ------------------------------------------------------------ verifier */
typedef struct ixv {
	const gwb_table *t;
	const uint8_t *b;              /* the section's bytes */
	uint32_t lim;                  /* records end before the zero tail */
	uint8_t *cov;                  /* bit per byte: some record covers it */
	uint8_t *filed;                /* per route */
	uint32_t *stack;               /* (offset, depth, branch byte + 1) triples */
	size_t sp, cap;
	char *pbuf;                    /* the path of the node being checked */
	uint32_t *res;                 /* residual scratch */
	uint32_t nres;
	uint32_t nnodes, ncand;
	uint32_t gmin;                 /* lowest route of the group being checked */
	char *err;
	size_t errlen;
} ixv;

/* marks [off, off + n) covered; -1 if out of bounds or already covered */
static int cover(ixv *v, uint64_t off, uint64_t n)
{
	if (off + n > v->lim)
		return -1;
	for (uint64_t i = off; i < off + n; i++) {
		if (v->cov[i >> 3] & (1u << (i & 7)))
			return -1;
		v->cov[i >> 3] |= (uint8_t)(1u << (i & 7));
	}
	return 0;
}

static int ixv_push(ixv *v, uint32_t off, uint32_t depth, uint32_t fb)
{
	if (v->sp + 3 > v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 96;
		uint32_t *p = realloc(v->stack, nc * sizeof *p);
		if (!p)
			return gwb_errf(v->err, v->errlen, "out of memory");
		v->stack = p;
		v->cap = nc;
	}
	v->stack[v->sp++] = off;
	v->stack[v->sp++] = depth;
	v->stack[v->sp++] = fb;
	return 0;
}

/* one candidate list at byte q of node o; *end gets the byte after it */
static int ixv_list(ixv *v, uint32_t o, uint32_t q, gwb_ixkey *k, uint32_t *end)
{
	const gwb_table *t = v->t;
	uint32_t prev = 0;
	for (uint32_t i = 0;; i++) {
		if ((uint64_t)q + 4 > v->lim)
			return gwb_errf(v->err, v->errlen, "index: node %u: candidates out of bounds", o);
		uint32_t c = ld32(v->b + q);
		uint32_t r = c & GWB_CAND_ROUTE, ms = (c >> GWB_CAND_MSHIFT) & GWB_M_ALL;
		if (cover(v, q, 4) < 0)
			return gwb_errf(v->err, v->errlen, "index: node %u: candidates overlap", o);
		if (r >= t->nroute)
			return gwb_errf(v->err, v->errlen, "index: node %u: route %u out of range (%u routes)", o, r, t->nroute);
		if (ms == 0)
			return gwb_errf(v->err, v->errlen, "index: node %u: route %u has an empty method mask", o, r);
		if (i > 0 && r <= prev)
			return gwb_errf(v->err, v->errlen, "index: node %u: candidates not in ascending order", o);
		if (v->filed[r])
			return gwb_errf(v->err, v->errlen, "index: route %u filed more than once", r);
		v->filed[r] = 1;
		v->ncand++;
		if (r < v->gmin)
			v->gmin = r;
		prev = r;
		q += 4;
		if (!(c & GWB_CAND_EXACT)) {
			/* the residual must be the one the loader derives itself */
			if ((uint64_t)q + 4 > v->lim)
				return gwb_errf(v->err, v->errlen, "index: node %u: residual out of bounds", o);
			uint32_t rw = ld32(v->b + q), len = rw & GWB_RES_LEN;
			const gwb_route *rt = &t->route[r];
			k->methods = ms;
			int flag;
			uint32_t s = gwb_residual(t->code, rt->match_pc, rt->match_end, t->stridx,
			                          t->strdata, t->nstr, k, &flag);
			if ((rw & ~(GWB_RES_LEN | GWB_RES_FLAG)) || len != rt->match_end - s ||
			    !(rw & GWB_RES_FLAG) != !flag)
				return gwb_errf(v->err, v->errlen, "index: route %u: wrong residual program", r);
			if (cover(v, q, 4 + 4 * (uint64_t)len) < 0)
				return gwb_errf(v->err, v->errlen, "index: node %u: residual out of bounds", o);
			if (len > v->nres) {
				uint32_t *p = realloc(v->res, (size_t)len * sizeof *p);
				if (!p)
					return gwb_errf(v->err, v->errlen, "out of memory");
				v->res = p;
				v->nres = len;
			}
			residual_copy(t->code, s, rt->match_end, v->res);
			if (memcmp(v->res, v->b + q + 4, (size_t)len * 4) != 0)
				return gwb_errf(v->err, v->errlen, "index: route %u: wrong residual program", r);
			q += 4 + 4 * len;
		}
		if (c & GWB_CAND_LAST)
			break;
	}
	*end = q;
	return 0;
}

/* the trie of the group at g: every node, list and residual */
static int ixv_group(ixv *v, uint32_t g, int hk)
{
	const uint8_t *b = v->b;
	if ((g & 3) || cover(v, g, 8) < 0)
		return gwb_errf(v->err, v->errlen, "index: group %u out of bounds or reached twice", g);
	uint32_t hw = ld32(b + g + 4), hl = hw & GWB_IXG_HLEN;
	uint32_t ow = (hw & GWB_IXG_WIDE) ? 4 : 2;
	if (hw & ~(GWB_IXG_HLEN | GWB_IXG_WIDE))
		return gwb_errf(v->err, v->errlen, "index: group %u: bad header", g);
	if ((hk == GWB_HOST_ANY && hl) || cover(v, g + 8, hl) < 0)
		return gwb_errf(v->err, v->errlen, "index: group %u: bad host key", g);
	gwb_ixkey k = { .hk = hk, .host = (const char *)b + g + 8, .hl = hl };
	v->gmin = GWB_NONE;
	v->sp = 0;
	if (ixv_push(v, g + 8 + pad4(hl), 0, 0) < 0)
		return -1;
	while (v->sp) {
		uint32_t fbx = v->stack[--v->sp];
		uint32_t d = v->stack[--v->sp];
		uint32_t o = v->stack[--v->sp];
		if (cover(v, o, 3) < 0)
			return gwb_errf(v->err, v->errlen, "index: node %u out of bounds or reached twice", o);
		v->nnodes++;
		uint32_t ll = b[o], fl = b[o + 1], nk = (fl & GWB_IXN_KIDS) ? b[o + 2] + 1u : 0;
		if (fl & ~(uint32_t)(GWB_IXN_KIDS | GWB_IXN_PRE | GWB_IXN_EX) || (!nk && b[o + 2]))
			return gwb_errf(v->err, v->errlen, "index: node %u: bad flags", o);
		if (!fl)
			return gwb_errf(v->err, v->errlen, "index: node %u: empty", o);
		if (cover(v, o + 3, ll + (uint64_t)nk * (1 + ow)) < 0)
			return gwb_errf(v->err, v->errlen, "index: node %u: arrays out of bounds", o);
		if (fbx)
			v->pbuf[d - 1] = (char)(fbx - 1);
		memcpy(v->pbuf + d, b + o + 3, ll);
		d += ll;
		const uint8_t *fb = b + o + 3 + ll;
		for (uint32_t i = 1; i < nk; i++)
			if (fb[i] <= fb[i - 1])
				return gwb_errf(v->err, v->errlen, "index: node %u: children not in byte order", o);
		uint32_t q = o + 3 + ll + nk * (1 + ow);
		k.path = v->pbuf;
		k.pl = d;
		if (fl & GWB_IXN_PRE) {
			k.pk = d ? GWB_PATH_PREFIX : GWB_PATH_ANY;
			if (ixv_list(v, o, q, &k, &q) < 0)
				return -1;
		}
		if (fl & GWB_IXN_EX) {
			k.pk = GWB_PATH_EXACT;
			if (ixv_list(v, o, q, &k, &q) < 0)
				return -1;
		}
		for (uint32_t i = nk; i-- > 0;) {
			uint32_t co = ow == 2 ? ld16(fb + nk + 2 * i) : ld32(fb + nk + 4 * i);
			if ((uint64_t)g + co + 3 > v->lim)
				return gwb_errf(v->err, v->errlen, "index: node %u: child out of bounds", o);
			if (ixv_push(v, g + co, d + 1, (uint32_t)fb[i] + 1) < 0)
				return -1;
		}
	}
	if (v->gmin == GWB_NONE || ld32(b + g) != v->gmin)
		return gwb_errf(v->err, v->errlen, "index: group %u: wrong minimum route", g);
	return 0;
}

static int ixv_table(ixv *v, const char *what, uint32_t off, uint32_t nslots, int hk)
{
	const gwb_table *t = v->t;
	const uint32_t *w = t->index;
	if (nslots == 0)
		return 0;
	if ((nslots & (nslots - 1)) != 0 || nslots > (1u << 26))
		return gwb_errf(v->err, v->errlen, "index: %s table size %u is not a power of two", what, nslots);
	if (off < GWB_IX_HDR || cover(v, 4 * (uint64_t)off, 4 * (uint64_t)nslots * GWB_IX_SLOT) < 0)
		return gwb_errf(v->err, v->errlen, "index: %s table out of bounds", what);
	int empty = 0;
	/* every key in bounds first: a probe reads the keys of the slots
	 * before the one it looks for */
	for (uint32_t i = 0; i < nslots; i++) {
		const uint32_t *e = w + off + GWB_IX_SLOT * i;
		if (e[1] == GWB_NONE) {
			if (e[0])
				return gwb_errf(v->err, v->errlen, "index: %s slot %u: empty slot not zero", what, i);
			empty = 1;
			continue;
		}
		if ((uint64_t)e[1] + 8 > v->lim)
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: group out of bounds", what, i);
		uint32_t hl = ld32(v->b + e[1] + 4) & GWB_IXG_HLEN;
		if ((uint64_t)e[1] + 8 + hl > v->lim)
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: key out of bounds", what, i);
	}
	for (uint32_t i = 0; i < nslots; i++) {
		const uint32_t *e = w + off + GWB_IX_SLOT * i;
		if (e[1] == GWB_NONE)
			continue;
		uint32_t hl = ld32(v->b + e[1] + 4) & GWB_IXG_HLEN;
		const char *hs = (const char *)v->b + e[1] + 8;
		if (e[0] != gwb_host_hash(hs, hl))
			return gwb_errf(v->err, v->errlen, "index: %s slot %u: wrong hash", what, i);
		for (uint32_t k = 0; k < hl; k++)
			if (gwb_lower((unsigned char)hs[k]) != (unsigned char)hs[k])
				return gwb_errf(v->err, v->errlen, "index: %s slot %u: key not lowercase", what, i);
		/* the lookup must find this very slot: no gap before it, no
		 * equal key earlier in its probe sequence */
		if (slot_find(w, off, nslots, e[0], hs, hl) != e[1])
			return gwb_errf(v->err, v->errlen, "index: %s slot %u (\"%.*s\") unreachable", what, i,
			                (int)(hl > 64 ? 64 : hl), hs);
		if (ixv_group(v, e[1], hk) < 0)
			return -1;
	}
	if (!empty)
		return gwb_errf(v->err, v->errlen, "index: %s table has no empty slot", what);
	return 0;
}

int gwb_index_verify(const gwb_table *t, char *err, size_t errlen)
{
	const uint32_t *w = t->index;
	ixv v = { .t = t, .b = (const uint8_t *)t->index, .err = err, .errlen = errlen };
	int rc = -1;

	if (t->nindex < GWB_IX_HDR + 2)
		return gwb_errf(err, errlen, "index: section too short (%u words)", t->nindex);
	v.lim = 4 * (t->nindex - 2);
	if (w[t->nindex - 2] || w[t->nindex - 1])
		return gwb_errf(err, errlen, "index: no zero tail");
	v.cov = calloc((size_t)t->nindex / 2 + 1, 1);     /* nindex * 4 bits */
	v.filed = calloc(t->nroute ? t->nroute : 1, 1);
	v.pbuf = malloc((size_t)t->nindex * 4 + 1);
	if (!v.cov || !v.filed || !v.pbuf) {
		gwb_errf(err, errlen, "out of memory");
		goto out;
	}
	memset(v.cov, 0xff, 4 * GWB_IX_HDR / 8);            /* the header */
	if (w[GWB_IX_RESERVED]) {
		gwb_errf(err, errlen, "index: reserved header word not zero");
		goto out;
	}
	if (ixv_table(&v, "host", w[GWB_IX_HOSTOFF], w[GWB_IX_NHOST], GWB_HOST_EXACT) < 0 ||
	    ixv_table(&v, "wildcard", w[GWB_IX_WILDOFF], w[GWB_IX_NWILD], GWB_HOST_WILD) < 0)
		goto out;
	uint64_t lens = 0;
	for (uint32_t i = 0; i < w[GWB_IX_NWILD]; i++) {
		const uint32_t *e = w + w[GWB_IX_WILDOFF] + GWB_IX_SLOT * i;
		if (e[1] != GWB_NONE)
			lens |= 1ull << len_bit(ld32(v.b + e[1] + 4) & GWB_IXG_HLEN);
	}
	if ((uint32_t)lens != w[GWB_IX_WILDLENS] || (uint32_t)(lens >> 32) != w[GWB_IX_WILDLENS + 1]) {
		gwb_errf(err, errlen, "index: wrong wildcard length mask");
		goto out;
	}
	if (w[GWB_IX_ANYGROUP] != GWB_NONE && ixv_group(&v, w[GWB_IX_ANYGROUP], GWB_HOST_ANY) < 0)
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
	/* one encoding per table: what no record covers is padding, zero */
	for (uint32_t i = 0; i < v.lim; i++)
		if (!(v.cov[i >> 3] & (1u << (i & 7))) && v.b[i]) {
			gwb_errf(err, errlen, "index: byte %u: padding not zero", i);
			goto out;
		}
	rc = 0;
out:
	free(v.cov);
	free(v.filed);
	free(v.pbuf);
	free(v.stack);
	free(v.res);
	return rc;
}

/* ------------------------------------------------------------ visit (dump) */
static void visit_list(const uint8_t *q, uint32_t o, int pk, gwb_ixkey *k,
                       gwb_ix_visit_fn fn, void *ctx, const uint8_t **end)
{
	for (;;) {
		uint32_t c = ld32(q);
		fn(ctx, c & GWB_CAND_ROUTE, k->hk, k->host, k->hl, pk, k->path, k->pl,
		   (c >> GWB_CAND_MSHIFT) & GWB_M_ALL, (c & GWB_CAND_EXACT) != 0);
		q = cand_next(q, c);
		if (c & GWB_CAND_LAST)
			break;
	}
	(void)o;
	*end = q;
}

static void visit_group(const gwb_table *t, uint32_t g, int hk, gwb_ix_visit_fn fn, void *ctx,
                        char *pbuf, uint32_t *stack)
{
	const uint8_t *b = (const uint8_t *)t->index;
	uint32_t hw = ld32(b + g + 4), hl = hw & GWB_IXG_HLEN;
	uint32_t ow = (hw & GWB_IXG_WIDE) ? 4 : 2;
	gwb_ixkey k = { .hk = hk, .host = (const char *)b + g + 8, .hl = hl, .path = pbuf };
	size_t sp = 0;
	stack[sp++] = g + 8 + pad4(hl);
	stack[sp++] = 0;
	stack[sp++] = 0;
	while (sp) {
		uint32_t fbx = stack[--sp], d = stack[--sp], o = stack[--sp];
		uint32_t ll = b[o], fl = b[o + 1], nk = (fl & GWB_IXN_KIDS) ? b[o + 2] + 1u : 0;
		if (fbx)
			pbuf[d - 1] = (char)(fbx - 1);
		memcpy(pbuf + d, b + o + 3, ll);
		d += ll;
		const uint8_t *fb = b + o + 3 + ll;
		const uint8_t *q = fb + nk * (1 + ow);
		k.pl = d;
		if (fl & GWB_IXN_PRE)
			visit_list(q, o, d ? GWB_PATH_PREFIX : GWB_PATH_ANY, &k, fn, ctx, &q);
		if (fl & GWB_IXN_EX)
			visit_list(q, o, GWB_PATH_EXACT, &k, fn, ctx, &q);
		for (uint32_t i = nk; i-- > 0;) {
			stack[sp++] = g + (ow == 2 ? ld16(fb + nk + 2 * i) : ld32(fb + nk + 4 * i));
			stack[sp++] = d + 1;
			stack[sp++] = (uint32_t)fb[i] + 1;
		}
	}
}

int gwb_index_visit(const gwb_table *t, gwb_ix_visit_fn fn, void *ctx)
{
	const uint32_t *w = t->index;
	/* a verified index: every node is reached once, so the stack never
	 * holds more than three words per node and no path is longer than
	 * the whole index */
	char *pbuf = malloc((size_t)t->nindex * 4 + 1);
	uint32_t *stack = malloc(((size_t)w[GWB_IX_NNODES] + 1) * 3 * sizeof *stack);
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
			if (e[1] != GWB_NONE)
				visit_group(t, e[1], tabs[k].kind, fn, ctx, pbuf, stack);
		}
	}
	if (w[GWB_IX_ANYGROUP] != GWB_NONE)
		visit_group(t, w[GWB_IX_ANYGROUP], GWB_HOST_ANY, fn, ctx, pbuf, stack);
	free(pbuf);
	free(stack);
	return 0;
}

/*
 * ipset.c — CIDR sets as sorted disjoint ranges (ipset.h).
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <stdlib.h>
#include <string.h>

#include "ipset.h"

/* an IPv6 address as two host-order halves; IPv4 uses lo only */
typedef struct u128 { uint64_t hi, lo; } u128;
typedef struct range { u128 a, b; } range;   /* inclusive */

struct ipset {
	uint32_t *v4lo, *v4hi; size_t n4;
	range *v6; size_t n6;
};

static int cmp128(u128 x, u128 y)
{
	if (x.hi != y.hi)
		return x.hi < y.hi ? -1 : 1;
	return x.lo < y.lo ? -1 : x.lo > y.lo;
}

static u128 load128(const uint8_t *p)
{
	u128 r = { 0, 0 };
	for (int i = 0; i < 8; i++) {
		r.hi = r.hi << 8 | p[i];
		r.lo = r.lo << 8 | p[8 + i];
	}
	return r;
}

static uint32_t load32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* [a, b] of a v6 prefix */
static range range6(const uint8_t *addr, unsigned prefix)
{
	u128 a = load128(addr), m;
	if (prefix == 0)
		m = (u128){ ~0ull, ~0ull };
	else if (prefix < 64)
		m = (u128){ ~0ull >> prefix, ~0ull };
	else if (prefix < 128)
		m = (u128){ 0, ~0ull >> (prefix - 64) };
	else
		m = (u128){ 0, 0 };
	a.hi &= ~m.hi;
	a.lo &= ~m.lo;
	return (range){ a, { a.hi | m.hi, a.lo | m.lo } };
}

static int cmp_range(const void *x, const void *y)
{
	const range *p = x, *q = y;
	int c = cmp128(p->a, q->a);
	return c ? c : cmp128(p->b, q->b);
}

/* sort and merge overlapping or adjacent ranges in place; returns count */
static size_t merge(range *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_range);
	size_t k = 0;
	for (size_t i = 1; i < n; i++) {
		u128 next = v[k].b;         /* b + 1, unless b is the maximum */
		int top = next.hi == ~0ull && next.lo == ~0ull;
		if (!top && ++next.lo == 0)
			next.hi++;
		if (top || cmp128(v[i].a, next) <= 0) {
			if (cmp128(v[i].b, v[k].b) > 0)
				v[k].b = v[i].b;
		} else {
			v[++k] = v[i];
		}
	}
	return k + 1;
}

ipset *ipset_build(const gwb_cidr *v, size_t n)
{
	ipset *s = calloc(1, sizeof *s);
	range *r4 = malloc((n ? n : 1) * sizeof *r4);
	range *r6 = malloc((n ? n : 1) * sizeof *r6);
	if (!s || !r4 || !r6)
		goto fail;
	size_t n4 = 0, n6 = 0;
	static const uint8_t mapped[12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };
	for (size_t i = 0; i < n; i++) {
		const gwb_cidr *c = &v[i];
		if (c->family == 4) {
			unsigned p = c->prefix > 32 ? 32 : c->prefix;
			uint32_t a = load32(c->addr), m = p == 0 ? ~0u : p == 32 ? 0 : ~0u >> p;
			r4[n4++] = (range){ { 0, a & ~m }, { 0, (a & ~m) | m } };
		} else if (c->family == 6) {
			unsigned p = c->prefix > 128 ? 128 : c->prefix;
			r6[n6++] = range6(c->addr, p);
			if (p >= 96 && memcmp(c->addr, mapped, 12) == 0) {
				unsigned p4 = p - 96;
				uint32_t a = load32(c->addr + 12);
				uint32_t m = p4 == 0 ? ~0u : p4 == 32 ? 0 : ~0u >> p4;
				r4[n4++] = (range){ { 0, a & ~m }, { 0, (a & ~m) | m } };
			}
		}
	}
	n4 = merge(r4, n4);
	s->n6 = merge(r6, n6);
	s->v6 = r6;
	r6 = NULL;
	s->v4lo = malloc((n4 ? n4 : 1) * sizeof *s->v4lo);
	s->v4hi = malloc((n4 ? n4 : 1) * sizeof *s->v4hi);
	if (!s->v4lo || !s->v4hi)
		goto fail;
	for (size_t i = 0; i < n4; i++) {
		s->v4lo[i] = (uint32_t)r4[i].a.lo;
		s->v4hi[i] = (uint32_t)r4[i].b.lo;
	}
	s->n4 = n4;
	free(r4);
	return s;
fail:
	free(r4);
	free(r6);
	ipset_free(s);
	return NULL;
}

void ipset_free(ipset *s)
{
	if (!s)
		return;
	free(s->v4lo);
	free(s->v4hi);
	free(s->v6);
	free(s);
}

int ipset_contains(const ipset *s, int family, const uint8_t *addr)
{
	if (family == 4) {
		uint32_t x = load32(addr);
		/* last range starting at or below x */
		size_t lo = 0, hi = s->n4;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (s->v4lo[mid] <= x)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo > 0 && x <= s->v4hi[lo - 1];
	}
	if (family == 6) {
		u128 x = load128(addr);
		size_t lo = 0, hi = s->n6;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (cmp128(s->v6[mid].a, x) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo > 0 && cmp128(x, s->v6[lo - 1].b) <= 0;
	}
	return 0;
}

size_t ipset_nranges(const ipset *s, int family)
{
	return family == 4 ? s->n4 : family == 6 ? s->n6 : 0;
}

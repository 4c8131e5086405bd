/*
 * gwb_cidr.c — CIDR records: containment (the IP_IN, ALLOW and DENY tests),
 * validity (host bits zero), and text conversion for gwc and dumps.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "gwb_int.h"

static unsigned cidr_bytes(int family)
{
	return family == 4 ? 4 : 16;
}

int gwb_cidr_contains(const gwb_cidr *c, int family, const uint8_t *addr)
{
	/* an IPv4-mapped IPv6 client (::ffff:a.b.c.d) is the caller's to
	 * convert: the matcher compares families as given */
	if (c->family != family || (family != 4 && family != 6))
		return 0;
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((addr[full] & mask) != c->addr[full])
			return 0;
	}
	return 1;
}

int gwb_cidrset_contains(const gwb_table *t, uint32_t set, int family, const uint8_t *addr)
{
	uint32_t first = t->cidrset[2 * set], n = t->cidrset[2 * set + 1];
	for (uint32_t i = 0; i < n; i++)
		if (gwb_cidr_contains(&t->cidr[first + i], family, addr))
			return 1;
	return 0;
}

/* family known, prefix in range, host bits and padding zero */
int gwb_cidr_valid(const gwb_cidr *c)
{
	if (c->family != 4 && c->family != 6)
		return 0;
	unsigned nb = cidr_bytes(c->family);
	if (c->prefix > nb * 8 || c->pad[0] || c->pad[1])
		return 0;
	for (unsigned i = 0; i < 16; i++) {
		unsigned lo = i * 8;    /* first bit of this byte */
		uint8_t keep;
		if (i >= nb || lo >= c->prefix)
			keep = 0;
		else if (lo + 8 <= c->prefix)
			keep = 0xff;
		else
			keep = (uint8_t)(0xff << (8 - (c->prefix - lo)));
		if (c->addr[i] & (uint8_t)~keep)
			return 0;
	}
	return 1;
}

int gwb_cidr_parse(const char *s, size_t n, gwb_cidr *out, int strict)
{
	char buf[64];
	const char *slash = memchr(s, '/', n);
	size_t alen = slash ? (size_t)(slash - s) : n;
	unsigned prefix, maxp;

	if (alen == 0 || alen >= sizeof buf)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		maxp = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = 6;
		maxp = 128;
	} else {
		return -1;
	}
	if (slash) {
		size_t i = (size_t)(slash - s) + 1;
		if (i >= n || n - i > 3)
			return -1;
		prefix = 0;
		for (; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			prefix = prefix * 10 + (unsigned)(s[i] - '0');
		}
		if (prefix > maxp)
			return -1;
	} else {
		prefix = maxp;
	}
	out->prefix = (uint8_t)prefix;
	gwb_cidr masked = *out;
	for (unsigned i = 0; i < 16; i++) {
		unsigned lo = i * 8;
		if (lo >= prefix)
			masked.addr[i] = 0;
		else if (lo + 8 > prefix)
			masked.addr[i] &= (uint8_t)(0xff << (8 - (prefix - lo)));
	}
	if (strict && memcmp(&masked, out, sizeof masked) != 0)
		return -1;
	*out = masked;
	return 0;
}

int gwb_cidr_format(const gwb_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	if (!inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof a))
		return snprintf(buf, len, "?/%u", c->prefix);
	return snprintf(buf, len, "%s/%u", a, c->prefix);
}

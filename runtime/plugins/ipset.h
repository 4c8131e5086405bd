/*
 * ipset.h — a set of IPv4 and IPv6 CIDRs with O(log n) membership, for
 * allow/deny lists of thousands of entries.
 *
 * Built once (at table load) from a CIDRSET of the table: each family's
 * CIDRs become address ranges, sorted and merged into disjoint intervals,
 * and a lookup is one binary search. An IPv6 CIDR inside ::ffff:0:0/96
 * (IPv4-mapped) with a prefix of at least 96 also matches the IPv4
 * addresses it maps, because gwd reports a client connecting through a
 * dual-stack socket as IPv4.
 */
#ifndef GWD_IPSET_H
#define GWD_IPSET_H

#include <stddef.h>
#include <stdint.h>

#include "gwb.h"

typedef struct ipset ipset;

/* NULL when out of memory; an empty set is fine */
ipset *ipset_build(const gwb_cidr *v, size_t n);
void ipset_free(ipset *s);
/* family 4 (addr[0..3]) or 6 (addr[0..15]), network order; 1 if in the set */
int ipset_contains(const ipset *s, int family, const uint8_t *addr);
/* disjoint intervals kept per family (for tests) */
size_t ipset_nranges(const ipset *s, int family);

#endif /* GWD_IPSET_H */

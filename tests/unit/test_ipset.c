/*
 * test_ipset.c — the allow/deny CIDR matcher (runtime/plugins/ipset.c):
 * fixed cases (boundaries, /0, /32, /128, IPv4-mapped IPv6, merging) and
 * random sets of thousands of CIDRs checked against a linear scan with
 * gwb_cidr_contains, the matcher the routing table uses.
 */
#include <config.h>

#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gwb.h"
#include "ipset.h"

static gwb_cidr cidr(const char *s)
{
	gwb_cidr c;
	ck_assert_msg(gwb_cidr_parse(s, strlen(s), &c, 0) == 0, "bad test cidr %s", s);
	return c;
}

/* 1 if the text address is in s */
static int has(const ipset *s, const char *addr)
{
	uint8_t a[16];
	if (strchr(addr, ':')) {
		ck_assert_int_eq(inet_pton(AF_INET6, addr, a), 1);
		return ipset_contains(s, 6, a);
	}
	ck_assert_int_eq(inet_pton(AF_INET, addr, a), 1);
	return ipset_contains(s, 4, a);
}

START_TEST(v4_boundaries)
{
	gwb_cidr v[] = { cidr("10.0.0.0/8"), cidr("192.168.1.0/24"), cidr("203.0.113.7") };
	ipset *s = ipset_build(v, 3);
	ck_assert_ptr_nonnull(s);
	ck_assert(has(s, "10.0.0.0"));
	ck_assert(has(s, "10.255.255.255"));
	ck_assert(!has(s, "9.255.255.255"));
	ck_assert(!has(s, "11.0.0.0"));
	ck_assert(has(s, "192.168.1.0"));
	ck_assert(has(s, "192.168.1.255"));
	ck_assert(!has(s, "192.168.0.255"));
	ck_assert(!has(s, "192.168.2.0"));
	ck_assert(has(s, "203.0.113.7"));
	ck_assert(!has(s, "203.0.113.6"));
	ck_assert(!has(s, "203.0.113.8"));
	ck_assert(!has(s, "0.0.0.0"));
	ck_assert(!has(s, "255.255.255.255"));
	/* a v4 set says nothing about v6 */
	ck_assert(!has(s, "::a00:1"));
	ipset_free(s);
}
END_TEST

START_TEST(v6_boundaries)
{
	gwb_cidr v[] = { cidr("2001:db8::/32"), cidr("::1"), cidr("fe80::/10"),
	                 cidr("2001:db8:ffff:ffff:ffff:ffff:ffff:ff00/120") };
	ipset *s = ipset_build(v, 4);
	ck_assert(has(s, "2001:db8::"));
	ck_assert(has(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!has(s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!has(s, "2001:db9::"));
	ck_assert(has(s, "::1"));
	ck_assert(!has(s, "::"));
	ck_assert(!has(s, "::2"));
	ck_assert(has(s, "fe80::1"));
	ck_assert(has(s, "febf:ffff::1"));
	ck_assert(!has(s, "fec0::"));
	ck_assert(!has(s, "127.0.0.1"));
	/* nested ranges merge into one */
	ck_assert_uint_eq(ipset_nranges(s, 6), 3);
	ipset_free(s);
}
END_TEST

START_TEST(all_and_extremes)
{
	/* `all` as the compiler emits it: 0.0.0.0/0 and ::/0 */
	gwb_cidr v[2] = { { .family = 4 }, { .family = 6 } };
	ipset *s = ipset_build(v, 2);
	ck_assert(has(s, "0.0.0.0"));
	ck_assert(has(s, "255.255.255.255"));
	ck_assert(has(s, "::"));
	ck_assert(has(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ipset_free(s);
	gwb_cidr w[] = { cidr("255.255.255.255"), cidr("0.0.0.0"),
	                 cidr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), cidr("::/1") };
	s = ipset_build(w, 4);
	ck_assert(has(s, "255.255.255.255"));
	ck_assert(has(s, "0.0.0.0"));
	ck_assert(!has(s, "255.255.255.254"));
	ck_assert(!has(s, "0.0.0.1"));
	ck_assert(has(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(has(s, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!has(s, "8000::"));
	ipset_free(s);
	/* the empty set */
	s = ipset_build(NULL, 0);
	ck_assert(!has(s, "1.2.3.4"));
	ck_assert(!has(s, "::1"));
	ipset_free(s);
}
END_TEST

START_TEST(v4_mapped)
{
	/* gwd reports a client on a dual-stack socket as IPv4: an IPv4-mapped
	 * IPv6 CIDR matches it */
	gwb_cidr v[] = { cidr("::ffff:10.1.0.0/112"), cidr("::ffff:0:0/95") };
	ipset *s = ipset_build(v, 2);
	ck_assert(has(s, "10.1.2.3"));
	ck_assert(!has(s, "10.2.0.0"));
	ck_assert(has(s, "::ffff:10.1.2.3"));
	ck_assert_uint_eq(ipset_nranges(s, 4), 1);
	ipset_free(s);
}
END_TEST

START_TEST(adjacent_merge)
{
	gwb_cidr v[] = { cidr("10.0.0.0/25"), cidr("10.0.0.128/25"), cidr("10.0.1.0/24"),
	                 cidr("10.0.3.0/24"), cidr("10.0.0.5") };
	ipset *s = ipset_build(v, 5);
	ck_assert_uint_eq(ipset_nranges(s, 4), 2);
	ck_assert(has(s, "10.0.1.255"));
	ck_assert(!has(s, "10.0.2.0"));
	ck_assert(has(s, "10.0.3.0"));
	ipset_free(s);
}
END_TEST

static void rnd_addr(int fam, uint8_t *a)
{
	for (int i = 0; i < (fam == 4 ? 4 : 16); i++)
		a[i] = (uint8_t)(random() & 0xff);
	/* concentrate v6 in a few /16s so random probes hit ranges */
	if (fam == 6) {
		a[0] = 0x20;
		a[1] = (uint8_t)(random() & 3);
	}
}

START_TEST(random_vs_linear)
{
	srandom(12345);
	for (int round = 0; round < 10; round++) {
		size_t n = 100 + (size_t)(random() % 4000);
		gwb_cidr *v = calloc(n, sizeof *v);
		for (size_t i = 0; i < n; i++) {
			int fam = random() % 3 ? 4 : 6;
			v[i].family = (uint8_t)fam;
			rnd_addr(fam, v[i].addr);
			v[i].prefix = (uint8_t)(fam == 4 ? 8 + random() % 25 : 16 + random() % 113);
			/* clear host bits as the compiler does */
			unsigned bits = fam == 4 ? 32 : 128;
			for (unsigned b = v[i].prefix; b < bits; b++)
				v[i].addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
		}
		ipset *s = ipset_build(v, n);
		ck_assert_ptr_nonnull(s);
		for (int probe = 0; probe < 5000; probe++) {
			int fam = random() % 2 ? 4 : 6;
			uint8_t a[16] = { 0 };
			if (probe % 4 == 0) {
				/* an address inside or just outside a listed CIDR */
				const gwb_cidr *c = &v[(size_t)random() % n];
				fam = c->family;
				memcpy(a, c->addr, 16);
				if (probe % 8 == 0) {
					/* last address of the CIDR, and one past it */
					unsigned bits = fam == 4 ? 32 : 128;
					for (unsigned b = c->prefix; b < bits; b++)
						a[b / 8] |= (uint8_t)(0x80u >> (b % 8));
					if (probe % 16 == 0)
						for (int k = (fam == 4 ? 3 : 15); k >= 0 && ++a[k] == 0; k--)
							;
				}
			} else {
				rnd_addr(fam, a);
			}
			int want = 0;
			for (size_t i = 0; i < n && !want; i++)
				want = gwb_cidr_contains(&v[i], fam, a);
			ck_assert_int_eq(ipset_contains(s, fam, a), want);
		}
		ipset_free(s);
		free(v);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ipset");
	TCase *t = tcase_create("match");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, v4_boundaries);
	tcase_add_test(t, v6_boundaries);
	tcase_add_test(t, all_and_extremes);
	tcase_add_test(t, v4_mapped);
	tcase_add_test(t, adjacent_merge);
	tcase_add_test(t, random_vs_linear);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

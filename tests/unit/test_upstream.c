/*
 * test_upstream.c — runtime upstream state (runtime/upstream.c): address
 * parsing, every balancing algorithm's distribution, backups, exclusion,
 * passive ejection and recovery (on the clock we pass in: no sleeping),
 * sync keeping the state of persisting servers, admin overrides, dynamic
 * upstreams, and a multi-threaded stress of picks against swaps. Tables are
 * real ones, made with gwb's builder and loaded by its verifying loader.
 */
#include <config.h>

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwb.h"
#include "runtime/addr.h"
#include "runtime/upstream.h"

/* ------------------------------------------------------ test tables */

typedef struct tsrv {
	const char *addr;
	uint32_t weight, max_fails, fail_timeout_ms, flags;
} tsrv;

typedef struct tups {
	const char *name;
	uint32_t balance, flags;
	const tsrv *srv; size_t n;
} tups;

/* A real table: the upstreams through gwb's builder, one route proxying to
 * each (as gwc emits), finished, then loaded and verified by gwb_load_mem. */
static uint32_t bstr(gwb_builder *b, const char *s)
{
	return gwb_b_str(b, s, strlen(s));
}

static gwb_table *mk_table(const tups *u, size_t n)
{
	gwb_builder *b = gwb_builder_new();
	uint32_t idx[8];
	char err[256] = "";
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_le(n, 8);
	for (size_t i = 0; i < n; i++) {
		gwb_upstream g;
		gwb_server sv[8];
		memset(&g, 0, sizeof g);
		memset(sv, 0, sizeof sv);
		ck_assert_uint_le(u[i].n, 8);
		g.name = bstr(b, u[i].name);
		g.balance = u[i].balance;
		g.flags = u[i].flags;
		g.keepalive = 16;
		g.connect_timeout_ms = 1000;
		g.read_timeout_ms = 5000;
		g.retries = 1;
		g.retry_on = GWB_RETRY_CONNECT;
		for (size_t k = 0; k < u[i].n; k++) {
			sv[k].addr = bstr(b, u[i].srv[k].addr);
			sv[k].weight = u[i].srv[k].weight ? u[i].srv[k].weight : 1;
			sv[k].max_fails = u[i].srv[k].max_fails;
			sv[k].fail_timeout_ms = u[i].srv[k].fail_timeout_ms;
			sv[k].flags = u[i].srv[k].flags;
		}
		idx[i] = gwb_b_upstream(b, &g, sv, u[i].n);
		ck_assert_uint_ne(idx[i], GWB_NONE);
	}
	for (size_t i = 0; i < n; i++) {
		char path[32];
		snprintf(path, sizeof path, "/%zu/", i);
		gwb_b_route_begin(b, bstr(b, u[i].name), bstr(b, "test.gwr"),
		                  (uint32_t)i + 1, 1);
		uint32_t a[2] = { bstr(b, path), 0 };
		gwb_b_emit(b, GWB_OP_PATH_PREFIX, a);
		gwb_b_emit(b, GWB_OP_END, NULL);
		gwb_b_match_done(b);
		gwb_b_phase(b, GWB_PH_CONTENT);
		a[0] = idx[i];
		a[1] = 0;
		gwb_b_emit(b, GWB_OP_PROXY, a);
		gwb_index_key k = { GWB_HOST_ANY, GWB_PATH_PREFIX, GWB_M_ALL, 0,
		                    bstr(b, path), 1 };
		gwb_b_route_key(b, &k);
		gwb_b_route_end(b);
	}
	uint8_t *out = NULL;
	size_t len = 0;
	if (gwb_builder_finish(b, &out, &len, err, sizeof err) != 0)
		ck_abort_msg("builder: %s", err);
	gwb_builder_free(b);
	gwb_table *t = gwb_load_mem(out, len, err, sizeof err);
	free(out);
	if (!t)
		ck_abort_msg("loader: %s", err);
	return t;
}

static void free_table(gwb_table *t)
{
	gwb_free(t);
}

/* a registry synced with one upstream "u" */
static ups_registry *reg1(uint32_t balance, const tsrv *srv, size_t n,
                          ups_upstream **out)
{
	ups_registry *r = ups_registry_new();
	tups u = { "u", balance, 0, srv, n };
	gwb_table *t = mk_table(&u, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(ups_sync(r, t), 0);
	free_table(t);
	*out = ups_find(r, "u");
	ck_assert_ptr_nonnull(*out);
	return r;
}

static int index_of(const ups_snapshot *s, const ups_server *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->servers[i] == v)
			return (int)i;
	return -1;
}

/* n picks; counts[i] per server of the snapshot, counts[s->n] = NULL */
static void pick_n(ups_upstream *u, ups_pick_ctx *c, int n, int *counts)
{
	ups_snapshot *s = ups_acquire(u);
	ck_assert_ptr_nonnull(s);
	memset(counts, 0, (s->n + 1) * sizeof *counts);
	for (int i = 0; i < n; i++) {
		ups_server *v = ups_pick(u, s, c);
		counts[v ? index_of(s, v) : (int)s->n]++;
	}
	ups_release(s);
}

static ups_server *pick1(ups_upstream *u, const ups_pick_ctx *c)
{
	ups_snapshot *s = ups_acquire(u);
	ups_server *v = ups_pick(u, s, c);
	ups_release(s);    /* the registry's ref keeps v alive in these tests */
	return v;
}

static ups_server *srv_at(ups_upstream *u, size_t i)
{
	ups_snapshot *s = ups_acquire(u);
	ck_assert_uint_gt(s->n, i);
	ups_server *v = s->servers[i];
	ups_release(s);
	return v;
}

/* ------------------------------------------------------------- addr */

START_TEST(addr_ok)
{
	addr_parsed a;
	char err[128];
	ck_assert_int_eq(addr_parse("10.0.0.1:8080", 13, &a, err, sizeof err), 0);
	ck_assert_str_eq(a.host, "10.0.0.1");
	ck_assert_int_eq(a.port, 8080);
	ck_assert_int_eq(a.https, 0);
	ck_assert_int_eq(addr_parse("[::1]:9001", 10, &a, err, sizeof err), 0);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_int_eq(a.port, 9001);
	ck_assert_int_eq(a.ipv6, 1);
	ck_assert_int_eq(addr_parse("https://api.example.com", 23, &a, err, sizeof err), 0);
	ck_assert_str_eq(a.host, "api.example.com");
	ck_assert_int_eq(a.port, 443);
	ck_assert_int_eq(a.https, 1);
	ck_assert_int_eq(addr_parse("http://[2001:db8::2]:81", 23, &a, err, sizeof err), 0);
	ck_assert_str_eq(a.host, "2001:db8::2");
	ck_assert_int_eq(a.port, 81);
	ck_assert_int_eq(addr_parse("backend", 7, &a, err, sizeof err), 0);
	ck_assert_int_eq(a.port, 80);
	ck_assert_int_eq(addr_parse("h:65535", 7, &a, err, sizeof err), 0);
	ck_assert_int_eq(a.port, 65535);
}
END_TEST

START_TEST(addr_bad)
{
	static const struct { const char *in, *msg; } v[] = {
		{ "x:", "bad address 'x:' (empty port)" },
		{ "", "bad address '' (empty)" },
		{ ":80", "bad address ':80' (empty host)" },
		{ "h:0", "bad address 'h:0' (port out of range)" },
		{ "h:65536", "bad address 'h:65536' (port out of range)" },
		{ "h:8a", "bad address 'h:8a' (bad port)" },
		{ "h:80;", "bad address 'h:80;' (bad port)" },
		{ "a b:1", "bad address 'a b:1' (bad character in host)" },
		{ "h:80/x", "bad address 'h:80/x' (bad port)" },
		{ "https://h/", "bad address 'https://h/' (a path is not allowed)" },
		{ "[::1:80", "bad address '[::1:80' (missing ']')" },
		{ "[zz]:80", "bad address '[zz]:80' (bad IPv6 address)" },
		{ "[::1]80", "bad address '[::1]80' (expected ':' after ']')" },
		{ "10.0.0.1:\x01", "bad address '10.0.0.1:?' (bad port)" },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		addr_parsed a;
		char err[128] = "";
		ck_assert_int_eq(addr_parse(v[i].in, strlen(v[i].in), &a, err, sizeof err), -1);
		ck_assert_str_eq(err, v[i].msg);
	}
}
END_TEST

/* ------------------------------------------------------- round robin */

START_TEST(rr_smooth_weighted)
{
	static const tsrv s[] = { { "a:1", 3, 0, 0, 0 }, { "b:1", 1, 0, 0, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s, 2, &u);
	ups_pick_ctx c = { .worker = 0, .now_ms = 1000 };
	/* nginx's sequence for 3:1 is a a b a: smooth, not a a a b */
	const char *want[] = { "a:1", "a:1", "b:1", "a:1", "a:1", "a:1", "b:1", "a:1" };
	for (int i = 0; i < 8; i++)
		ck_assert_str_eq(pick1(u, &c)->addr, want[i]);
	int cnt[3];
	pick_n(u, &c, 10000, cnt);
	ck_assert_int_eq(cnt[0], 7500);
	ck_assert_int_eq(cnt[1], 2500);
	ck_assert_int_eq(cnt[2], 0);
	/* another worker has its own cursor and the same exact split */
	c.worker = 7;
	pick_n(u, &c, 4000, cnt);
	ck_assert_int_eq(cnt[0], 3000);
	ck_assert_int_eq(cnt[1], 1000);
	ups_registry_free(r);
}
END_TEST

START_TEST(rr_three_servers)
{
	static const tsrv s[] = { { "a:1", 5, 0, 0, 0 }, { "b:1", 1, 0, 0, 0 },
	                          { "c:1", 1, 0, 0, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s, 3, &u);
	ups_pick_ctx c = { .worker = 3, .now_ms = 1 };
	/* nginx's documented sequence for 5,1,1: a a b a c a a */
	const char *want[] = { "a:1", "a:1", "b:1", "a:1", "c:1", "a:1", "a:1" };
	for (int i = 0; i < 7; i++)
		ck_assert_str_eq(pick1(u, &c)->addr, want[i]);
	int cnt[4];
	pick_n(u, &c, 7000, cnt);
	ck_assert_int_eq(cnt[0], 5000);
	ck_assert_int_eq(cnt[1], 1000);
	ck_assert_int_eq(cnt[2], 1000);
	ups_registry_free(r);
}
END_TEST

/* ------------------------------------------------------- least_conn */

START_TEST(least_conn_follows_active)
{
	static const tsrv s[] = { { "a:1", 1, 0, 0, 0 }, { "b:1", 1, 0, 0, 0 },
	                          { "c:1", 2, 0, 0, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_LEAST_CONN, s, 3, &u);
	ups_pick_ctx c = { .worker = 0, .now_ms = 1 };
	ups_server *a = srv_at(u, 0), *b = srv_at(u, 1), *cc = srv_at(u, 2);

	/* a has 2 in flight, b 0, c 1 (ratio 1/2): b wins */
	ups_conn_begin(a);
	ups_conn_begin(a);
	ups_conn_begin(cc);
	ck_assert_ptr_eq(pick1(u, &c), b);
	ck_assert_ptr_eq(pick1(u, &c), b);
	/* b 1 (ratio 1) vs c 1/2: c */
	ups_conn_begin(b);
	ck_assert_ptr_eq(pick1(u, &c), cc);
	ups_conn_end(a);
	ups_conn_end(a);
	ups_conn_end(b);
	ups_conn_end(cc);

	/* requests that never finish: in-flight counts end in weight ratio */
	for (int i = 0; i < 10000; i++)
		ups_conn_begin(pick1(u, &c));
	ck_assert_int_eq(atomic_load(&a->active), 2500);
	ck_assert_int_eq(atomic_load(&b->active), 2500);
	ck_assert_int_eq(atomic_load(&cc->active), 5000);
	ck_assert_uint_eq(atomic_load(&cc->requests), 5001);   /* +1 above */

	/* all idle: ties go round-robin by weight (1:1:2) */
	for (int i = 0; i < 2500; i++) {
		ups_conn_end(a);
		ups_conn_end(b);
		ups_conn_end(cc);
		ups_conn_end(cc);
	}
	int cnt[4];
	pick_n(u, &c, 4000, cnt);
	ck_assert_int_eq(cnt[0], 1000);
	ck_assert_int_eq(cnt[1], 1000);
	ck_assert_int_eq(cnt[2], 2000);
	ups_registry_free(r);
}
END_TEST

/* ---------------------------------------------------------- ip_hash */

START_TEST(ip_hash_stable_and_spread)
{
	static const tsrv s[] = { { "a:1", 1, 1, 1000, 0 }, { "b:1", 1, 1, 1000, 0 },
	                          { "c:1", 1, 1, 1000, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_IP_HASH, s, 3, &u);
	ups_snapshot *snap = ups_acquire(u);
	int first[1000], cnt[3] = { 0, 0, 0 };
	uint8_t ip[4];
	ups_pick_ctx c = { .worker = 0, .now_ms = 1, .client_ip = ip, .client_ip_len = 4 };

	for (int i = 0; i < 1000; i++) {
		ip[0] = 10; ip[1] = (uint8_t)(i >> 8); ip[2] = (uint8_t)i; ip[3] = 7;
		first[i] = index_of(snap, ups_pick(u, snap, &c));
		cnt[first[i]]++;
		/* same client, and the same /24, always the same server */
		for (int k = 0; k < 5; k++) {
			ip[3] = (uint8_t)(k * 50);
			ck_assert_int_eq(index_of(snap, ups_pick(u, snap, &c)), first[i]);
		}
	}
	for (int k = 0; k < 3; k++)
		ck_assert_int_gt(cnt[k], 250);          /* spread: ~333 each */

	/* b goes down: b's clients move, always to the same place; others stay */
	ups_report(u, snap->servers[1], 0, 1);
	int moved[1000];
	for (int i = 0; i < 1000; i++) {
		ip[0] = 10; ip[1] = (uint8_t)(i >> 8); ip[2] = (uint8_t)i; ip[3] = 7;
		moved[i] = index_of(snap, ups_pick(u, snap, &c));
		ck_assert_int_ne(moved[i], 1);
		if (first[i] != 1)
			ck_assert_int_eq(moved[i], first[i]);
		else
			ck_assert_int_eq(index_of(snap, ups_pick(u, snap, &c)), moved[i]);
	}
	/* b recovers after fail_timeout: everyone is back where they were */
	c.now_ms = 1001;
	for (int i = 0; i < 1000; i++) {
		ip[0] = 10; ip[1] = (uint8_t)(i >> 8); ip[2] = (uint8_t)i; ip[3] = 7;
		ck_assert_int_eq(index_of(snap, ups_pick(u, snap, &c)), first[i]);
	}

	/* IPv6 hashes the whole address; v4-mapped IPv6 is the IPv4 client */
	uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	c.client_ip = ip6;
	c.client_ip_len = 16;
	ups_server *v6 = ups_pick(u, snap, &c);
	for (int k = 0; k < 10; k++)
		ck_assert_ptr_eq(ups_pick(u, snap, &c), v6);
	int cnt6[3] = { 0, 0, 0 };
	for (int i = 0; i < 300; i++) {
		ip6[15] = (uint8_t)i;
		ip6[14] = (uint8_t)(i >> 8);
		cnt6[index_of(snap, ups_pick(u, snap, &c))]++;
	}
	for (int k = 0; k < 3; k++)
		ck_assert_int_gt(cnt6[k], 50);
	uint8_t mapped[16] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff, 10, 0, 5, 9 };
	c.client_ip = mapped;
	ck_assert_int_eq(index_of(snap, ups_pick(u, snap, &c)), first[5]);
	ups_release(snap);
	ups_registry_free(r);
}
END_TEST

/* ------------------------------------------------------------- hash */

static int hash_pick(ups_upstream *u, ups_snapshot *s, const char *key)
{
	ups_pick_ctx c = { .worker = 0, .now_ms = 1, .hash_key = key,
	                   .hash_key_len = strlen(key) };
	const ups_server *v = ups_pick(u, s, &c);
	return v ? index_of(s, v) : -1;
}

START_TEST(hash_consistent)
{
	static const tsrv s[] = { { "a:1", 1, 0, 0, 0 }, { "b:1", 1, 0, 0, 0 },
	                          { "c:1", 1, 0, 0, 0 }, { "d:1", 1, 0, 0, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_HASH, s, 4, &u);
	ups_snapshot *snap = ups_acquire(u);
	static char where[10000][8];
	int cnt[4] = { 0, 0, 0, 0 };
	char key[32];

	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof key, "user-%d", i);
		int k = hash_pick(u, snap, key);
		ck_assert_int_eq(hash_pick(u, snap, key), k);   /* stable */
		cnt[k]++;
		snprintf(where[i], sizeof where[i], "%s", snap->servers[k]->addr);
	}
	for (int k = 0; k < 4; k++) {
		ck_assert_int_gt(cnt[k], 1900);    /* ~2500 each */
		ck_assert_int_lt(cnt[k], 3100);
	}
	ups_release(snap);

	/* drop c: only c's keys move (consistent hashing) */
	const char *addrs[] = { "a:1", "b:1", "d:1" };
	char err[128];
	ck_assert_int_eq(ups_set_servers(u, addrs, NULL, 3, err, sizeof err), 0);
	snap = ups_acquire(u);
	int moved = 0;
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof key, "user-%d", i);
		const char *now = snap->servers[hash_pick(u, snap, key)]->addr;
		if (strcmp(where[i], "c:1") != 0)
			ck_assert_str_eq(now, where[i]);
		else
			moved++;
	}
	ck_assert_int_eq(moved, cnt[2]);
	/* a down server's keys go to the next point, deterministically; the
	 * others stay */
	ups_report(u, snap->servers[0], 0, 1);    /* max_fails 1 (admin default) */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof key, "user-%d", i);
		int k = hash_pick(u, snap, key);
		ck_assert_int_ne(k, 0);
		ck_assert_int_eq(hash_pick(u, snap, key), k);
	}
	ups_release(snap);
	ups_registry_free(r);
}
END_TEST

/* ----------------------------------------------------------- random */

START_TEST(random_weighted)
{
	static const tsrv s[] = { { "a:1", 3, 0, 0, 0 }, { "b:1", 1, 0, 0, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_RANDOM, s, 2, &u);
	ups_pick_ctx c = { .worker = 0, .now_ms = 1 };
	int cnt[3];
	pick_n(u, &c, 10000, cnt);
	ck_assert_int_ge(cnt[0], 7125);            /* 7500 +- 5% */
	ck_assert_int_le(cnt[0], 7875);
	ck_assert_int_eq(cnt[0] + cnt[1], 10000);
	ups_registry_free(r);
}
END_TEST

/* ----------------------------------------- backup, exclusion, health */

START_TEST(backup_only_when_primaries_down)
{
	static const tsrv s[] = { { "a:1", 1, 1, 1000, 0 }, { "b:1", 1, 1, 1000, 0 },
	                          { "z:1", 1, 1, 1000, GWB_SRV_BACKUP } };
	for (uint32_t bal = 0; bal < GWB_BAL__COUNT; bal++) {
		ups_upstream *u;
		ups_registry *r = reg1(bal, s, 3, &u);
		uint8_t ip[4] = { 192, 168, 1, 1 };
		ups_pick_ctx c = { .worker = 0, .now_ms = 100, .client_ip = ip,
		                   .client_ip_len = 4, .hash_key = "k", .hash_key_len = 1 };
		int cnt[4];
		pick_n(u, &c, 1000, cnt);
		ck_assert_int_eq(cnt[2], 0);
		ck_assert_int_eq(cnt[3], 0);
		ups_report(u, srv_at(u, 0), 0, 100);
		pick_n(u, &c, 100, cnt);
		ck_assert_int_eq(cnt[1], 100);
		ups_report(u, srv_at(u, 1), 0, 100);
		pick_n(u, &c, 100, cnt);
		ck_assert_int_eq(cnt[2], 100);             /* only the backup */
		/* health_down (active checks, issue 5) counts as down too */
		atomic_store(&srv_at(u, 2)->health_down, 1);
		pick_n(u, &c, 10, cnt);
		ck_assert_int_eq(cnt[3], 10);              /* all down: NULL -> 503 */
		atomic_store(&srv_at(u, 2)->health_down, 0);
		/* primaries back after fail_timeout: the backup is idle again */
		c.now_ms = 1100;
		pick_n(u, &c, 100, cnt);
		ck_assert_int_eq(cnt[2], 0);
		ck_assert_int_eq(cnt[0] + cnt[1], 100);
		ups_registry_free(r);
	}
}
END_TEST

START_TEST(exclusion)
{
	static const tsrv s[] = { { "a:1", 5, 0, 0, 0 }, { "b:1", 1, 0, 0, 0 },
	                          { "z:1", 1, 0, 0, GWB_SRV_BACKUP } };
	for (uint32_t bal = 0; bal < GWB_BAL__COUNT; bal++) {
		ups_upstream *u;
		ups_registry *r = reg1(bal, s, 3, &u);
		ups_server *a = srv_at(u, 0), *b = srv_at(u, 1), *z = srv_at(u, 2);
		uint8_t ip[4] = { 1, 2, 3, 4 };
		const ups_server *ex[2] = { a, b };
		ups_pick_ctx c = { .worker = 1, .now_ms = 5, .client_ip = ip,
		                   .client_ip_len = 4, .hash_key = "x", .hash_key_len = 1,
		                   .exclude = ex, .nexclude = 1 };
		/* retry after a: never a while b is there */
		for (int i = 0; i < 50; i++)
			ck_assert_ptr_eq(pick1(u, &c), b);
		ex[0] = b;
		for (int i = 0; i < 50; i++)
			ck_assert_ptr_eq(pick1(u, &c), a);
		/* both primaries tried: the backup, before any primary again */
		ex[0] = a;
		c.nexclude = 2;
		ck_assert_ptr_eq(pick1(u, &c), z);
		/* everything tried: the same server again rather than nothing */
		const ups_server *all[3] = { a, b, z };
		c.exclude = all;
		c.nexclude = 3;
		ups_server *v = pick1(u, &c);
		ck_assert(v == a || v == b);
		/* ... but never an ejected one */
		ups_report(u, a, 0, 5);   /* max_fails 0: no ejection */
		ck_assert_ptr_nonnull(pick1(u, &c));
		atomic_store(&a->health_down, 1);
		atomic_store(&b->health_down, 1);
		ck_assert_ptr_eq(pick1(u, &c), z);
		atomic_store(&z->health_down, 1);
		ck_assert_ptr_null(pick1(u, &c));
		ups_registry_free(r);
	}
}
END_TEST

START_TEST(passive_ejection)
{
	/* max_fails=2 fail_timeout=1s; b never ejects (max_fails 0) */
	static const tsrv s[] = { { "a:1", 1, 2, 1000, 0 }, { "b:1", 1, 0, 1000, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s, 2, &u);
	ups_server *a = srv_at(u, 0), *b = srv_at(u, 1);
	ups_pick_ctx c = { .worker = 0 };
	int cnt[3];

	/* two failures further apart than fail_timeout: no ejection */
	ups_report(u, a, 0, 10000);
	ups_report(u, a, 0, 11000);
	c.now_ms = 11000;
	pick_n(u, &c, 100, cnt);
	ck_assert_int_eq(cnt[0], 50);
	/* a success resets the count */
	ups_report(u, a, 1, 11100);
	ups_report(u, a, 0, 11200);
	c.now_ms = 11200;
	pick_n(u, &c, 100, cnt);
	ck_assert_int_eq(cnt[0], 50);
	/* second failure inside the window (opened at 11200): down until 12300 */
	ups_report(u, a, 0, 11300);
	ck_assert_int_eq(atomic_load(&a->down_until_ms), 12300);
	ck_assert_uint_eq(atomic_load(&a->failures), 4);
	for (c.now_ms = 11300; c.now_ms < 12300; c.now_ms += 333) {
		ck_assert_int_eq(ups_server_available(a, c.now_ms), 0);
		pick_n(u, &c, 20, cnt);
		ck_assert_int_eq(cnt[1], 20);
	}
	/* failures of requests that started before don't extend it */
	ups_report(u, a, 0, 12000);
	ck_assert_int_eq(atomic_load(&a->down_until_ms), 12300);
	/* recovered at 12300 */
	c.now_ms = 12300;
	ck_assert_int_eq(ups_server_available(a, c.now_ms), 1);
	pick_n(u, &c, 100, cnt);
	ck_assert_int_eq(cnt[0], 50);
	/* on probation: one failure ejects it again at once */
	ups_report(u, a, 0, 12400);
	ck_assert_int_eq(atomic_load(&a->down_until_ms), 13400);
	c.now_ms = 12400;
	pick_n(u, &c, 10, cnt);
	ck_assert_int_eq(cnt[0], 0);
	/* after it, a success ends probation: two failures needed again */
	ups_report(u, a, 1, 13500);
	ck_assert_int_eq(atomic_load(&a->down_until_ms), 0);
	ups_report(u, a, 0, 13600);
	ck_assert_int_eq(ups_server_available(a, 13600), 1);
	/* max_fails 0: never ejected however often it fails */
	for (int i = 0; i < 100; i++)
		ups_report(u, b, 0, 14000);
	ck_assert_int_eq(ups_server_available(b, 14000), 1);
	ck_assert_uint_eq(atomic_load(&b->failures), 100);
	/* every server down: NULL (the core answers 503) */
	ups_report(u, a, 0, 14000);
	atomic_store(&b->health_down, 1);
	c.now_ms = 14000;
	ck_assert_ptr_null(pick1(u, &c));
	ups_registry_free(r);
}
END_TEST

START_TEST(fail_timeout_default)
{
	/* fail_timeout 0 means nginx's 10 s */
	static const tsrv s[] = { { "a:1", 1, 1, 0, 0 }, { "b:1", 1, 1, 0, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s, 2, &u);
	ups_server *a = srv_at(u, 0);
	ck_assert_uint_eq(a->fail_timeout_ms, 10000);
	ups_report(u, a, 0, 5);
	ck_assert_int_eq(atomic_load(&a->down_until_ms), 10005);
	ups_registry_free(r);
}
END_TEST

START_TEST(single_server_never_ejected)
{
	/* nginx: the only server of a group is not marked down by failures */
	static const tsrv s[] = { { "a:1", 1, 1, 1000, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s, 1, &u);
	ups_server *a = srv_at(u, 0);
	ups_pick_ctx c = { .worker = 0, .now_ms = 10 };
	for (int i = 0; i < 5; i++)
		ups_report(u, a, 0, 5);
	ck_assert_int_eq(atomic_load(&a->down_until_ms), 0);
	ck_assert_uint_eq(atomic_load(&a->failures), 5);
	ck_assert_ptr_eq(pick1(u, &c), a);
	ups_registry_free(r);
}
END_TEST

/* ---------------------------------------------- sync and overrides */

START_TEST(sync_keeps_state)
{
	static const tsrv s1[] = { { "a:1", 1, 3, 1000, 0 }, { "b:1", 1, 3, 1000, 0 },
	                           { "c:1", 1, 3, 1000, 0 } };
	static const tsrv s2[] = { { "b:1", 1, 3, 1000, 0 }, { "a:1", 2, 3, 1000, 0 },
	                           { "d:1", 1, 3, 1000, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s1, 3, &u);
	ups_server *a = srv_at(u, 0), *b = srv_at(u, 1);
	const gwb_upstream *o1 = ups_options(u);
	ck_assert_uint_eq(o1->balance, GWB_BAL_ROUND_ROBIN);

	for (int i = 0; i < 7; i++)
		ups_conn_begin(b);
	ups_report(u, b, 0, 50);
	ups_conn_begin(a);
	ups_report(u, a, 0, 50);
	ups_report(u, a, 0, 60);
	ups_snapshot *inflight = ups_acquire(u);

	/* the same table again: nothing changes, not even the snapshot */
	tups t1u = { "u", GWB_BAL_ROUND_ROBIN, 0, s1, 3 };
	gwb_table *t = mk_table(&t1u, 1);
	ck_assert_int_eq(ups_sync(r, t), 0);
	free_table(t);
	ups_snapshot *same = ups_acquire(u);
	ck_assert_ptr_eq(same, inflight);
	ups_release(same);
	ck_assert_ptr_eq(ups_options(u), o1);

	/* new table: b persists as is, a changes weight, c goes, d comes */
	tups t2u = { "u", GWB_BAL_LEAST_CONN, 0, s2, 3 };
	t = mk_table(&t2u, 1);
	ck_assert_int_eq(ups_sync(r, t), 0);
	free_table(t);
	ck_assert_ptr_eq(ups_find(r, "u"), u);
	ups_snapshot *s = ups_acquire(u);
	ck_assert_ptr_ne(s, inflight);
	ck_assert_uint_eq(s->n, 3);
	ck_assert_ptr_eq(s->servers[0], b);              /* shared object */
	ck_assert_int_eq(atomic_load(&b->active), 7);
	ck_assert_uint_eq(atomic_load(&b->requests), 7);
	ck_assert_uint_eq(atomic_load(&b->fails), 1);
	ck_assert_ptr_ne(s->servers[1], a);              /* new config */
	ck_assert_str_eq(s->servers[1]->addr, "a:1");
	ck_assert_uint_eq(s->servers[1]->weight, 2);
	ck_assert_uint_eq(atomic_load(&s->servers[1]->failures), 2);
	ck_assert_uint_eq(atomic_load(&s->servers[1]->fails), 2);
	ck_assert_uint_eq(atomic_load(&s->servers[1]->requests), 1);
	ck_assert_int_eq(atomic_load(&s->servers[1]->active), 0);
	ck_assert_str_eq(s->servers[2]->addr, "d:1");
	ck_assert_uint_eq(atomic_load(&s->servers[2]->requests), 0);
	/* options changed; the old pointer is still readable */
	ck_assert_ptr_ne(ups_options(u), o1);
	ck_assert_uint_eq(ups_options(u)->balance, GWB_BAL_LEAST_CONN);
	ck_assert_uint_eq(o1->balance, GWB_BAL_ROUND_ROBIN);
	/* the in-flight request still has its list, c included */
	ck_assert_uint_eq(inflight->n, 3);
	ck_assert_str_eq(inflight->servers[2]->addr, "c:1");
	ups_conn_end(inflight->servers[0]);
	ck_assert_int_eq(atomic_load(&a->active), 0);
	ups_release(inflight);
	ups_release(s);
	ups_registry_free(r);
}
END_TEST

static int collect(ups_upstream *u, void *ctx)
{
	char *buf = ctx;
	strcat(buf, ups_name(u));
	strcat(buf, ",");
	return 0;
}

START_TEST(sync_upstreams_come_and_go)
{
	static const tsrv s[] = { { "a:1", 1, 1, 1000, 0 } };
	tups v1[] = { { "zeta", 0, 0, s, 1 }, { "alpha", 0, 0, s, 1 } };
	tups v2[] = { { "beta", 0, 0, s, 1 } };
	ups_registry *r = ups_registry_new();
	gwb_table *t = mk_table(v1, 2);
	ck_assert_int_eq(ups_sync(r, t), 0);
	free_table(t);
	char names[64] = "";
	ck_assert_int_eq(ups_foreach(r, collect, names), 0);
	ck_assert_str_eq(names, "alpha,zeta,");
	ups_upstream *alpha = ups_find(r, "alpha");
	ck_assert_ptr_nonnull(alpha);
	ck_assert_ptr_null(ups_find(r, "beta"));
	ups_report(alpha, srv_at(alpha, 0), 0, 10);   /* one failure counted */

	t = mk_table(v2, 1);
	ck_assert_int_eq(ups_sync(r, t), 0);
	free_table(t);
	names[0] = '\0';
	ups_foreach(r, collect, names);
	ck_assert_str_eq(names, "beta,");
	ck_assert_ptr_null(ups_find(r, "alpha"));
	/* a cached pointer stays valid while the registry lives */
	ck_assert_str_eq(ups_name(alpha), "alpha");

	/* alpha comes back: the same object, its state intact */
	t = mk_table(v1, 2);
	ck_assert_int_eq(ups_sync(r, t), 0);
	free_table(t);
	ck_assert_ptr_eq(ups_find(r, "alpha"), alpha);
	ck_assert_uint_eq(atomic_load(&srv_at(alpha, 0)->failures), 1);

	/* a table with a duplicate name is refused and changes nothing */
	tups dup[] = { { "x", 0, 0, s, 1 }, { "x", 0, 0, s, 1 } };
	t = mk_table(dup, 2);
	ck_assert_int_eq(ups_sync(r, t), -1);
	char err[128];
	ck_assert_int_eq(ups_sync_ex(r, t, err, sizeof err), -1);
	ck_assert_str_eq(err, "duplicate upstream 'x'");
	free_table(t);
	ck_assert_ptr_null(ups_find(r, "x"));
	ck_assert_ptr_eq(ups_find(r, "alpha"), alpha);
	/* so is a table with a server address gwc would not have written */
	static const tsrv bad[] = { { "h:", 1, 1, 1000, 0 } };
	tups b1[] = { { "y", 0, 0, bad, 1 } };
	t = mk_table(b1, 1);
	ck_assert_int_eq(ups_sync_ex(r, t, err, sizeof err), -1);
	ck_assert_str_eq(err, "upstream 'y': bad address 'h:' (empty port)");
	free_table(t);
	ck_assert_ptr_eq(ups_find(r, "alpha"), alpha);
	ck_assert_ptr_null(ups_find(r, "y"));
	t = mk_table(v2, 1);
	ck_assert_int_eq(ups_sync_ex(r, t, err, sizeof err), 0);
	ck_assert_str_eq(err, "");
	free_table(t);
	ck_assert_ptr_null(ups_find(r, "alpha"));
	ck_assert_ptr_nonnull(ups_find(r, "beta"));
	ups_registry_free(r);
}
END_TEST

START_TEST(set_servers_override)
{
	static const tsrv s1[] = { { "a:1", 1, 1, 1000, 0 }, { "b:1", 1, 1, 1000, 0 } };
	static const tsrv s2[] = { { "a:1", 1, 1, 1000, 0 }, { "c:1", 1, 1, 1000, 0 } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s1, 2, &u);
	ups_snapshot *s0 = ups_acquire(u);     /* an in-flight request on b */
	ups_server *b = s0->servers[1];
	char err[128] = "";
	ups_conn_begin(b);

	const char *addrs[] = { "b:1", "[::1]:9002", "https://h:8443" };
	const uint32_t w[] = { 1, 2, 1 };
	ck_assert_int_eq(ups_has_override(u), 0);
	ck_assert_int_eq(ups_set_servers(u, addrs, w, 3, err, sizeof err), 0);
	ck_assert_int_eq(ups_has_override(u), 1);
	ups_snapshot *s = ups_acquire(u);
	ck_assert_uint_eq(s->n, 3);
	ck_assert_ptr_ne(s->servers[0], b);  /* admin defaults differ: new object */
	ck_assert_uint_eq(atomic_load(&s->servers[0]->requests), 1);
	ck_assert_str_eq(s->servers[1]->host, "::1");
	ck_assert_int_eq(s->servers[1]->port, 9002);
	ck_assert_uint_eq(s->servers[1]->weight, 2);
	ck_assert_int_eq(s->servers[2]->https, 1);
	ck_assert_str_eq(s->servers[2]->host, "h");
	ck_assert_uint_eq(s->servers[0]->max_fails, 1);
	ck_assert_uint_eq(s->servers[0]->fail_timeout_ms, 10000);
	ups_release(s);
	ups_conn_end(b);
	ck_assert_int_eq(atomic_load(&b->active), 0);
	ups_release(s0);

	/* bad input is refused with the reason and changes nothing */
	const char *bad1[] = { "b:1", "x:" };
	ck_assert_int_eq(ups_set_servers(u, bad1, NULL, 2, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad address 'x:' (empty port)");
	const uint32_t w0[] = { 1, 0 };
	ck_assert_int_eq(ups_set_servers(u, addrs, w0, 2, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad weight 0 for '[::1]:9002' (must be 1..1000000)");
	ups_server_spec sp = { .addr = "a:1", .weight = 2000000 };
	ck_assert_int_eq(ups_set_servers_ex(u, &sp, 1, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad weight 2000000 for 'a:1' (must be 1..1000000)");
	s = ups_acquire(u);
	ck_assert_uint_eq(s->n, 3);
	ups_release(s);

	/* a reload does not touch the override ... */
	tups t2 = { "u", GWB_BAL_ROUND_ROBIN, 0, s2, 2 };
	gwb_table *t = mk_table(&t2, 1);
	ck_assert_int_eq(ups_sync(r, t), 0);
	free_table(t);
	s = ups_acquire(u);
	ck_assert_uint_eq(s->n, 3);
	ck_assert_str_eq(s->servers[1]->addr, "[::1]:9002");
	ups_release(s);
	/* ... and dropping it returns to the latest table's list */
	ck_assert_int_eq(ups_set_servers(u, NULL, NULL, 0, err, sizeof err), 0);
	ck_assert_int_eq(ups_has_override(u), 0);
	s = ups_acquire(u);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_str_eq(s->servers[0]->addr, "a:1");
	ck_assert_str_eq(s->servers[1]->addr, "c:1");
	ups_release(s);

	/* the _ex form: full server options, backups included */
	ups_server_spec v[] = {
		{ .addr = "p:1", .weight = 1, .max_fails = 0 },
		{ .addr = "q:1", .weight = 1, .backup = 1 },
	};
	ck_assert_int_eq(ups_set_servers_ex(u, v, 2, err, sizeof err), 0);
	ups_pick_ctx c = { .now_ms = 1 };
	for (int i = 0; i < 10; i++)
		ck_assert_str_eq(pick1(u, &c)->addr, "p:1");
	ups_registry_free(r);
}
END_TEST

START_TEST(dynamic_upstream)
{
	tups d = { "dyn", GWB_BAL_ROUND_ROBIN, GWB_UPS_DYNAMIC, NULL, 0 };
	ups_registry *r = ups_registry_new();
	gwb_table *t = mk_table(&d, 1);
	ck_assert_int_eq(ups_sync(r, t), 0);
	ups_upstream *u = ups_find(r, "dyn");
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(ups_options(u)->flags & GWB_UPS_DYNAMIC, GWB_UPS_DYNAMIC);
	ups_pick_ctx c = { .now_ms = 1 };
	ups_snapshot *s = ups_acquire(u);
	ck_assert_uint_eq(s->n, 0);
	ck_assert_ptr_null(ups_pick(u, s, &c));
	ups_release(s);

	char err[128];
	const char *addrs[] = { "10.0.0.1:80", "10.0.0.2:80" };
	const uint32_t w[] = { 3, 1 };
	ck_assert_int_eq(ups_set_servers(u, addrs, w, 2, err, sizeof err), 0);
	int cnt[3];
	pick_n(u, &c, 400, cnt);
	ck_assert_int_eq(cnt[0], 300);
	ck_assert_int_eq(cnt[1], 100);
	/* reloads keep the admin's servers */
	ck_assert_int_eq(ups_sync(r, t), 0);
	pick_n(u, &c, 4, cnt);
	ck_assert_int_eq(cnt[0], 3);
	/* DELETE: empty again */
	ck_assert_int_eq(ups_set_servers(u, NULL, NULL, 0, err, sizeof err), 0);
	ck_assert_ptr_null(pick1(u, &c));
	free_table(t);
	ups_registry_free(r);
}
END_TEST

/* ----------------------------------------------------------- stress */

typedef struct stress {
	ups_registry *r;
	ups_upstream *u;
	atomic_int stop;
	atomic_int *ready;
	int worker;
	long picks, nulls;
} stress;

static void *stress_reader(void *arg)
{
	stress *st = arg;
	uint64_t now = 0;
	uint8_t ip[4] = { 10, 0, 0, 0 };
	while (!atomic_load(&st->stop)) {
		/* the core looks the upstream up per table; do it now and then */
		ups_upstream *u = (st->picks & 63) == 0 ? ups_find(st->r, "u") : st->u;
		ck_assert_ptr_eq(u, st->u);
		ups_snapshot *s = ups_acquire(u);
		ip[2] = (uint8_t)st->picks;
		const ups_server *ex[1];
		ups_pick_ctx c = { .worker = st->worker, .now_ms = ++now,
		                   .client_ip = ip, .client_ip_len = 4,
		                   .hash_key = "k", .hash_key_len = 1,
		                   .exclude = ex, .nexclude = 0 };
		ups_server *v = ups_pick(u, s, &c);
		if (v) {
			ups_conn_begin(v);
			ups_report(u, v, (st->picks % 7) != 0, now);
			ex[0] = v;
			c.nexclude = 1;
			ups_server *v2 = ups_pick(u, s, &c);   /* a retry */
			ups_conn_end(v);
			if (v2) {
				ups_conn_begin(v2);
				ups_report(u, v2, 1, now);
				ups_conn_end(v2);
			}
			(void)v2;
		} else {
			st->nulls++;
		}
		ups_release(s);
		if (++st->picks == 100)
			atomic_fetch_add(st->ready, 1);
	}
	return NULL;
}

START_TEST(stress_swaps)
{
	static const tsrv s[] = { { "a:1", 2, 3, 5, 0 }, { "b:1", 1, 3, 5, 0 },
	                          { "c:1", 1, 3, 5, GWB_SRV_BACKUP } };
	ups_upstream *u;
	ups_registry *r = reg1(GWB_BAL_ROUND_ROBIN, s, 3, &u);
	stress st[4];
	pthread_t th[4];
	atomic_int ready = 0;
	for (int i = 0; i < 4; i++) {
		st[i] = (stress){ .r = r, .u = u, .worker = i, .ready = &ready };
		atomic_init(&st[i].stop, 0);
		ck_assert_int_eq(pthread_create(&th[i], NULL, stress_reader, &st[i]), 0);
	}
	while (atomic_load(&ready) < 4)     /* every reader is busy picking */
		sched_yield();
	const char *lists[3][3] = {
		{ "a:1", "b:1", "d:1" }, { "b:1", "e:1", "f:1" }, { "a:1", "e:1", "g:1" },
	};
	const uint32_t w[3] = { 1, 2, 3 };
	char err[128];
	for (int i = 0; i < 1000; i++) {
		if (i % 100 == 99) {
			/* a reload with another balance, and back to the table */
			tups tu = { "u", (uint32_t)(i / 100) % GWB_BAL__COUNT, 0, s, 3 };
			gwb_table *t = mk_table(&tu, 1);
			ck_assert_int_eq(ups_sync(r, t), 0);
			free_table(t);
			ck_assert_int_eq(ups_set_servers(u, NULL, NULL, 0, err, sizeof err), 0);
		} else {
			ck_assert_int_eq(ups_set_servers(u, lists[i % 3], w, (size_t)(1 + i % 3),
			                                 err, sizeof err), 0);
		}
	}
	for (int i = 0; i < 4; i++)
		atomic_store(&st[i].stop, 1);
	long picks = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		picks += st[i].picks;
	}
	ck_assert_int_gt(picks, 400);
	/* every begin had its end */
	ups_snapshot *sn = ups_acquire(u);
	for (size_t i = 0; i < sn->n; i++)
		ck_assert_int_eq(atomic_load(&sn->servers[i]->active), 0);
	ups_release(sn);
	ups_registry_free(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("upstream");
	TCase *tc = tcase_create("addr");
	tcase_add_test(tc, addr_ok);
	tcase_add_test(tc, addr_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("balance");
	tcase_add_test(tc, rr_smooth_weighted);
	tcase_add_test(tc, rr_three_servers);
	tcase_add_test(tc, least_conn_follows_active);
	tcase_add_test(tc, ip_hash_stable_and_spread);
	tcase_add_test(tc, hash_consistent);
	tcase_add_test(tc, random_weighted);
	tcase_add_test(tc, backup_only_when_primaries_down);
	tcase_add_test(tc, exclusion);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_test(tc, passive_ejection);
	tcase_add_test(tc, fail_timeout_default);
	tcase_add_test(tc, single_server_never_ejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("state");
	tcase_add_test(tc, sync_keeps_state);
	tcase_add_test(tc, sync_upstreams_come_and_go);
	tcase_add_test(tc, set_servers_override);
	tcase_add_test(tc, dynamic_upstream);
	suite_add_tcase(s, tc);

	tc = tcase_create("stress");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, stress_swaps);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

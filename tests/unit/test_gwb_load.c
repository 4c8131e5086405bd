/*
 * test_gwb_load.c — builder -> bytes -> loader round trip, determinism,
 * and the loader/verifier on damaged and crafted tables: every truncation,
 * every byte flip (with and without a fixed checksum), header errors, and
 * one case per verifier rule with its exact message.
 */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>
#include "test_gwb_util.h"

/* a table using every section */
static uint8_t *sample(size_t *n)
{
	gwb_builder *b = gwb_builder_new();
	uint32_t a[8];
	char err[128];
	size_t eo;
	uint8_t hash[32];

	for (int i = 0; i < 32; i++)
		hash[i] = (uint8_t)(i * 7 + 1);
	gwb_b_source_hash(b, hash);

	gwb_upstream u;
	memset(&u, 0, sizeof u);
	u.name = tu_str(b, "users");
	u.balance = GWB_BAL_LEAST_CONN;
	u.keepalive = 64;
	u.connect_timeout_ms = 1000;
	u.read_timeout_ms = 5000;
	u.retries = 2;
	u.retry_on = GWB_RETRY_CONNECT;
	u.retry_status[0] = 502;
	u.flags = GWB_UPS_HEALTH;
	u.hc_path = tu_str(b, "/healthz");
	u.hc_expect_lo = 200;
	u.hc_expect_hi = 399;
	u.server_first = 77;            /* set by the builder */
	gwb_server s[2];
	memset(s, 0, sizeof s);
	s[0].addr = tu_str(b, "10.0.0.11:8080");
	s[0].weight = 3;
	s[1].addr = tu_str(b, "[::1]:8080");
	s[1].weight = 1;
	s[1].flags = GWB_SRV_BACKUP;
	ck_assert_uint_eq(gwb_b_upstream(b, &u, s, 2), 0);

	/* route 0: api host, /v1/users/ prefix, GET|POST, proxy with rewrite */
	gwb_b_route_begin(b, tu_str(b, "users"), tu_str(b, "rules.gwr"), 12, 1);
	a[0] = tu_str(b, "api.example.com");
	gwb_b_emit(b, GWB_OP_HOST_EQ, a);
	a[0] = 0;
	uint32_t j1 = gwb_b_emit(b, GWB_OP_JF, a);
	a[0] = tu_str(b, "/v1/users/");
	gwb_b_emit(b, GWB_OP_PATH_PREFIX, a);
	a[0] = 0;
	uint32_t j2 = gwb_b_emit(b, GWB_OP_JF, a);
	a[0] = GWB_M_GET | GWB_M_POST;
	gwb_b_emit(b, GWB_OP_METHOD, a);
	gwb_b_patch(b, j1 + 1, gwb_b_pc(b));
	gwb_b_patch(b, j2 + 1, gwb_b_pc(b));
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_REWRITE);
	a[0] = tu_str(b, "/v1");
	gwb_b_emit(b, GWB_OP_STRIP_PREFIX, a);
	a[0] = tu_str(b, "X-Src");
	a[1] = tu_str(b, "gw ${host} $1");
	gwb_b_emit(b, GWB_OP_SET_REQ_HDR, a);
	gwb_b_phase(b, GWB_PH_ACCESS);
	a[0] = 100; a[1] = 1000; a[2] = 50; a[3] = GWB_KEY_CLIENT_IP; a[4] = 0;
	gwb_b_emit(b, GWB_OP_RATE_LIMIT, a);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 0; a[1] = 2500;
	gwb_b_emit(b, GWB_OP_PROXY, a);
	gwb_b_phase(b, GWB_PH_LOG);
	a[0] = tu_str(b, "users");
	gwb_b_emit(b, GWB_OP_TAG, a);
	gwb_index_key k = { GWB_HOST_EXACT, GWB_PATH_PREFIX, GWB_M_GET | GWB_M_POST,
	                    tu_str(b, "api.example.com"), tu_str(b, "/v1/users/"), 1 };
	gwb_b_route_key(b, &k);
	gwb_b_route_end(b);

	/* route 1: regex redirect from internal addresses */
	gwb_b_route_begin(b, tu_str(b, "old_docs"), tu_str(b, "rules.gwr"), 20, 3);
	a[0] = gwb_b_regex(b, "^/docs/v1/(.*)$", 15, 0, err, sizeof err, &eo);
	ck_assert_uint_eq(a[0], 0);
	gwb_b_emit(b, GWB_OP_PATH_RE, a);
	a[0] = 0;
	j1 = gwb_b_emit(b, GWB_OP_JF, a);
	a[0] = tu_cidrs(b, "10.0.0.0/8,::1/128");
	gwb_b_emit(b, GWB_OP_IP_IN, a);
	gwb_b_patch(b, j1 + 1, gwb_b_pc(b));
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 301;
	a[1] = tu_str(b, "/docs/v2/$1");
	gwb_b_emit(b, GWB_OP_REDIRECT, a);
	gwb_b_route_end(b);

	/* route 2: fallback */
	gwb_b_route_begin(b, tu_str(b, "fallback"), tu_str(b, "rules.gwr"), 30, 1);
	gwb_b_emit(b, GWB_OP_ANY, NULL);
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 404;
	a[1] = tu_str(b, "{\"error\":\"no route\"}");
	a[2] = tu_str(b, "application/json");
	gwb_b_emit(b, GWB_OP_RESPOND, a);
	k = (gwb_index_key){ GWB_HOST_ANY, GWB_PATH_ANY, GWB_M_ALL, 0, 0, 1 };
	gwb_b_route_key(b, &k);
	gwb_b_route_end(b);
	return tu_finish(b, n);
}

START_TEST(round_trip)
{
	size_t n;
	uint8_t *p = sample(&n);
	gwb_table *t = tu_load(p, n);
	size_t l;

	ck_assert_uint_eq(n % 8, 0);
	ck_assert_uint_eq(gwb_nroutes(t), 3);
	ck_assert_str_eq(gwb_str(t, gwb_route_at(t, 0)->name, &l), "users");
	ck_assert_uint_eq(l, 5);
	ck_assert_str_eq(gwb_str(t, gwb_route_at(t, 2)->name, NULL), "fallback");
	ck_assert_str_eq(gwb_str(t, 0, &l), "");
	ck_assert_uint_eq(l, 0);
	ck_assert_uint_eq(gwb_debug_at(t, 1)->line, 20);
	ck_assert_uint_eq(gwb_debug_at(t, 1)->col, 3);
	ck_assert_str_eq(gwb_str(t, gwb_debug_at(t, 1)->file, NULL), "rules.gwr");

	ck_assert_uint_eq(gwb_nupstreams(t), 1);
	const gwb_upstream *u = gwb_upstream_at(t, 0);
	ck_assert_str_eq(gwb_str(t, u->name, NULL), "users");
	ck_assert_uint_eq(u->balance, GWB_BAL_LEAST_CONN);
	ck_assert_uint_eq(u->server_first, 0);
	ck_assert_uint_eq(u->server_count, 2);
	ck_assert_uint_eq(u->read_timeout_ms, 5000);
	ck_assert_uint_eq(u->retry_status[0], 502);
	ck_assert_str_eq(gwb_str(t, gwb_server_at(t, 1)->addr, NULL), "[::1]:8080");
	ck_assert_uint_eq(gwb_server_at(t, 1)->flags, GWB_SRV_BACKUP);
	ck_assert_uint_eq(gwb_server_at(t, 0)->weight, 3);

	ck_assert_uint_eq(gwb_ncidrsets(t), 1);
	uint32_t nc;
	const gwb_cidr *c = gwb_cidrset(t, 0, &nc);
	ck_assert_uint_eq(nc, 2);
	ck_assert_uint_eq(c[0].family, 4);
	ck_assert_uint_eq(c[0].prefix, 8);
	ck_assert_uint_eq(c[0].addr[0], 10);
	ck_assert_uint_eq(c[1].family, 6);
	ck_assert_uint_eq(c[1].prefix, 128);
	ck_assert_uint_eq(c[1].addr[15], 1);
	ck_assert_ptr_nonnull(gwb_regex_code(t, 0));

	const gwb_route *r = gwb_route_at(t, 0);
	const uint32_t *code = gwb_code(t);
	ck_assert_uint_eq(code[r->match_pc], GWB_OP_HOST_EQ);
	ck_assert_uint_eq(code[r->match_end - 1], GWB_OP_END);
	ck_assert_uint_eq(code[r->phase_pc[GWB_PH_REWRITE]], GWB_OP_STRIP_PREFIX);
	ck_assert_uint_eq(code[r->phase_pc[GWB_PH_ACCESS]], GWB_OP_RATE_LIMIT);
	ck_assert_uint_eq(code[r->phase_pc[GWB_PH_CONTENT]], GWB_OP_PROXY);
	ck_assert_uint_eq(r->phase_pc[GWB_PH_HFILTER], r->phase_pc[GWB_PH_LOG]);
	ck_assert_uint_eq(code[r->phase_pc[GWB_PH_LOG]], GWB_OP_TAG);
	ck_assert_uint_eq(r->phase_pc[GWB_PH__COUNT], r->phase_pc[GWB_PH_LOG] + 2);

	char hex[65];
	gwb_source_hash_hex(t, hex);
	ck_assert_str_eq(hex, "01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da");
	gwb_free(t);
	free(p);
}
END_TEST

START_TEST(deterministic)
{
	size_t n1, n2;
	uint8_t *p1 = sample(&n1), *p2 = sample(&n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert_int_eq(memcmp(p1, p2, n1), 0);
	free(p1);
	free(p2);
}
END_TEST

START_TEST(load_file)
{
	size_t n;
	uint8_t *p = sample(&n);
	char path[] = "/tmp/gwb-test-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	close(fd);
	char err[256] = "";
	gwb_table *t = gwb_load_file(path, err, sizeof err);
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_uint_eq(gwb_nroutes(t), 3);
	gwb_free(t);
	/* a short file */
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, p, 10), 10);
	close(fd);
	ck_assert_ptr_null(gwb_load_file(path, err, sizeof err));
	ck_assert_str_eq(err, "file too short (10 bytes, a table has at least 64)");
	unlink(path);
	ck_assert_ptr_null(gwb_load_file(path, err, sizeof err));
	ck_assert_str_eq(err, "No such file or directory");
	free(p);
}
END_TEST

START_TEST(truncated)
{
	size_t n;
	uint8_t *p = sample(&n);
	char err[256], want[128];
	for (size_t len = 0; len < n; len++) {
		err[0] = '\0';
		gwb_table *t = gwb_load_mem(p, len, err, sizeof err);
		ck_assert_msg(t == NULL, "truncated to %zu bytes: accepted", len);
		if (len < 64)
			snprintf(want, sizeof want, "file too short (%zu bytes, a table has at least 64)", len);
		else
			snprintf(want, sizeof want, "file size mismatch (header says %zu bytes, got %zu)", n, len);
		ck_assert_str_eq(err, want);
	}
	free(p);
}
END_TEST

START_TEST(byte_flips)
{
	size_t n;
	uint8_t *p = sample(&n);
	char err[256];
	for (size_t i = 0; i < n; i++) {
		static const uint8_t xs[] = { 0xff, 0x01, 0x80 };
		for (size_t x = 0; x < sizeof xs; x++) {
			p[i] ^= xs[x];
			err[0] = '\0';
			gwb_table *t = gwb_load_mem(p, n, err, sizeof err);
			ck_assert_msg(t == NULL, "flip of byte %zu (^%02x) accepted", i, xs[x]);
			ck_assert_msg(err[0] != '\0', "flip of byte %zu: no message", i);
			p[i] ^= xs[x];
		}
	}
	free(p);
}
END_TEST

static int no_header(void *ctx, const char *name, const char **v, size_t *vl)
{
	(void)ctx; (void)name; (void)v; (void)vl;
	return 0;
}

/* use an accepted table the way gwd would: match and dump, never crash */
static void exercise(const gwb_table *t, gwb_scratch *s)
{
	static const char *hosts[] = { "api.example.com", "x", "" };
	static const char *paths[] = { "/v1/users/1", "/docs/v1/a", "/" };
	gwb_request rq;
	gwb_match m;
	for (int h = 0; h < 3; h++)
		for (int q = 0; q < 3; q++) {
			memset(&rq, 0, sizeof rq);
			rq.method = "GET";
			rq.method_len = 3;
			rq.host = hosts[h];
			rq.host_len = strlen(hosts[h]);
			rq.path = paths[q];
			rq.path_len = strlen(paths[q]);
			rq.header = no_header;
			rq.ip_family = 4;
			rq.ip[0] = 10;
			gwb_match_request(t, &rq, &m, s);
			for (uint32_t r = 0; r < gwb_nroutes(t); r++)
				gwb_eval_route(t, r, &rq, &m, s, NULL, NULL);
		}
	FILE *f = fopen("/dev/null", "w");
	gwb_dump(t, f);
	fclose(f);
}

START_TEST(byte_flips_fixed_checksum)
{
	size_t n;
	uint8_t *p = sample(&n);
	char err[256];
	unsigned accepted = 0, rejected = 0;
	gwb_scratch *s = gwb_scratch_new();
	for (size_t i = 0; i < n; i++) {
		if (i >= 12 && i < 16)
			continue;               /* the checksum itself */
		static const uint8_t xs[] = { 0xff, 0x01, 0x80, 0x10 };
		for (size_t x = 0; x < sizeof xs; x++) {
			uint8_t *q = malloc(n);
			memcpy(q, p, n);
			q[i] ^= xs[x];
			tu_fix_crc(q, n);
			err[0] = '\0';
			gwb_table *t = gwb_load_mem(q, n, err, sizeof err);
			if (t) {
				accepted++;
				exercise(t, s);
				gwb_free(t);
			} else {
				rejected++;
				ck_assert_msg(err[0] != '\0', "flip of byte %zu: no message", i);
			}
			free(q);
		}
	}
	/* most bytes are meaningful: a flip must be noticed far more often
	 * than not (the accepted ones change names, numbers, padding-free
	 * data the verifier cannot judge) */
	printf("byte flips with fixed checksum: %u rejected, %u accepted (%zu-byte table)\n",
	       rejected, accepted, n);
	ck_assert_uint_gt(rejected, accepted);
	gwb_scratch_free(s);
	free(p);
}
END_TEST

START_TEST(header_errors)
{
	size_t n;
	uint8_t *p = sample(&n);
	char want[128];

	p[0] = 'X';
	tu_load_fail(p, n, "bad magic (not a gw table)");
	p[0] = 'G';
	p[4] = GWB_VERSION_MAJOR + 1;
	snprintf(want, sizeof want, "unsupported format version %d.%d (this gw reads %d.x)",
	         GWB_VERSION_MAJOR + 1, GWB_VERSION_MINOR, GWB_VERSION_MAJOR);
	tu_load_fail(p, n, want);
	p[4] = GWB_VERSION_MAJOR - 1;           /* an older major: a different layout */
	snprintf(want, sizeof want, "unsupported format version %d.%d (this gw reads %d.x)",
	         GWB_VERSION_MAJOR - 1, GWB_VERSION_MINOR, GWB_VERSION_MAJOR);
	tu_load_fail(p, n, want);
	p[4] = GWB_VERSION_MAJOR;
	p[6] = GWB_VERSION_MINOR + 1;
	snprintf(want, sizeof want, "format version %d.%d is newer than this gw (%d.%d)",
	         GWB_VERSION_MAJOR, GWB_VERSION_MINOR + 1, GWB_VERSION_MAJOR, GWB_VERSION_MINOR);
	tu_load_fail(p, n, want);
	p[6] = GWB_VERSION_MINOR;
	tu_put32(p, 8, (uint32_t)n + 8);
	snprintf(want, sizeof want, "file size mismatch (header says %zu bytes, got %zu)", n + 8, n);
	tu_load_fail(p, n, want);
	tu_put32(p, 8, (uint32_t)n);
	uint32_t sum = tu_get32(p, 12);
	tu_put32(p, 12, sum ^ 1);
	snprintf(want, sizeof want, "checksum mismatch (header %08x, computed %08x)", sum ^ 1, sum);
	tu_load_fail(p, n, want);
	tu_put32(p, 12, sum);

	/* directory: overlap, misalignment, bad size, unknown id, duplicate */
	uint8_t *q = malloc(n);
	memcpy(q, p, n);
	tu_put32(q, 64 + 16 * 1 + 4, tu_get32(q, 64 + 4));   /* STRDATA at STRIDX */
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "sections STRIDX and STRDATA overlap");
	memcpy(q, p, n);
	tu_put32(q, 64 + 4, tu_get32(q, 64 + 4) + 4);
	tu_fix_crc(q, n);
	snprintf(want, sizeof want, "section STRIDX: offset %u not 8-byte aligned", tu_get32(q, 64 + 4));
	tu_load_fail(q, n, want);
	memcpy(q, p, n);
	tu_put32(q, 64 + 12, tu_get32(q, 64 + 12) + 1);
	tu_fix_crc(q, n);
	snprintf(want, sizeof want, "section STRIDX: size %u is not %u x 8 bytes", tu_get32(q, 64 + 8), tu_get32(q, 64 + 12));
	tu_load_fail(q, n, want);
	memcpy(q, p, n);
	tu_put32(q, 64 + 16 * 3, 99);
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "section 3: unknown id 99");
	memcpy(q, p, n);
	tu_put32(q, 64 + 16 * 3, GWB_SEC_STRIDX);
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "section STRIDX appears twice");
	memcpy(q, p, n);
	tu_put32(q, 64 + 16 * 10 + 8, 0x10000);
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "section DEBUG out of bounds");
	memcpy(q, p, n);
	tu_put32(q, 48, 10);
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "section DEBUG missing");
	memcpy(q, p, n);
	tu_put32(q, 52, 4);
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "unknown header flags 0x4");
	free(q);
	free(p);
}
END_TEST

/* ---------------------------------------------------------------- verifier */

/* route 0: HOST_EQ "a"(0) JF ->6 (2) PATH_EQ "/x"(4) END(6); rewrite
 * STRIP_PREFIX "/p" (7); content RESPOND (9) */
enum { V_OK, V_TWO, V_CACHE_ONLY, V_CACHE_AFTER, V_JMP_END };
static uint8_t *vtable(size_t *n, int mode)
{
	gwb_builder *b = gwb_builder_new();
	uint32_t a[3];
	gwb_b_route_begin(b, tu_str(b, "r"), tu_str(b, "t.gwr"), 1, 1);
	a[0] = tu_str(b, "a");
	gwb_b_emit(b, GWB_OP_HOST_EQ, a);
	a[0] = mode == V_JMP_END ? 7 : 6;
	gwb_b_emit(b, GWB_OP_JF, a);
	a[0] = tu_str(b, "/x");
	gwb_b_emit(b, GWB_OP_PATH_EQ, a);
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_REWRITE);
	a[0] = tu_str(b, "/p");
	gwb_b_emit(b, GWB_OP_STRIP_PREFIX, a);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 200; a[1] = 0; a[2] = 0;
	if (mode != V_CACHE_ONLY)
		gwb_b_emit(b, GWB_OP_RESPOND, a);
	if (mode == V_TWO)
		gwb_b_emit(b, GWB_OP_RESPOND, a);
	if (mode == V_CACHE_ONLY || mode == V_CACHE_AFTER)
		gwb_b_emit(b, GWB_OP_CACHE, a);
	gwb_b_route_end(b);
	return tu_finish(b, n);
}

START_TEST(verify_program_rules)
{
	size_t n;
	uint8_t *p = vtable(&n, V_OK), *q = malloc(n);
	char want[128];
	gwb_free(tu_load(p, n));

	memcpy(q, p, n);
	tu_patch_code(q, n, 3, 0);
	tu_load_fail(q, n, "route 0: jump at 2 goes backward");
	memcpy(q, p, n);
	tu_patch_code(q, n, 3, 2);
	tu_load_fail(q, n, "route 0: jump at 2 goes backward");
	memcpy(q, p, n);
	tu_patch_code(q, n, 3, 5);
	tu_load_fail(q, n, "route 0: jump at 2 lands inside an instruction");
	size_t nj;
	uint8_t *je = vtable(&nj, V_JMP_END);   /* to the program end: allowed */
	gwb_free(tu_load(je, nj));
	free(je);
	/* the index carries a copy of the program (its residual): a program
	 * changed behind its back no longer agrees with it */
	memcpy(q, p, n);
	tu_patch_code(q, n, 3, 7);
	tu_load_fail(q, n, "index: route 0: wrong residual program");
	memcpy(q, p, n);
	tu_patch_code(q, n, 3, 8);
	tu_load_fail(q, n, "route 0: jump at 2 leaves its program");
	memcpy(q, p, n);
	tu_patch_code(q, n, 0, 200);
	tu_load_fail(q, n, "route 0: unknown opcode 200 at 0");
	memcpy(q, p, n);
	tu_patch_code(q, n, 0, 0x100 | GWB_OP_HOST_EQ);
	tu_load_fail(q, n, "route 0: bad instruction word 0x00000102 at 0");
	memcpy(q, p, n);
	tu_patch_code(q, n, 1, 9999);
	snprintf(want, sizeof want, "route 0: HOST_EQ at 0: string 9999 out of range (%u strings)", 6u);
	tu_load_fail(q, n, want);
	memcpy(q, p, n);
	tu_patch_code(q, n, 7, GWB_OP_DEL_RESP_HDR);
	tu_load_fail(q, n, "route 0: DEL_RESP_HDR at 7 is not a rewrite action");
	memcpy(q, p, n);
	tu_patch_code(q, n, 4, GWB_OP_STRIP_PREFIX);
	tu_load_fail(q, n, "route 0: STRIP_PREFIX at 4 is not a match test");
	memcpy(q, p, n);
	tu_patch_code(q, n, 6, GWB_OP_ANY);
	tu_load_fail(q, n, "route 0: match program does not end with END");
	memcpy(q, p, n);
	tu_patch_code(q, n, 4, GWB_OP_END);
	tu_load_fail(q, n, "route 0: END at 4 before the end of the program");
	memcpy(q, p, n);
	tu_patch_code(q, n, 6, GWB_OP_HOST_EQ);         /* its operand is missing */
	tu_load_fail(q, n, "route 0: HOST_EQ at 6 runs past the end of its program");
	memcpy(q, p, n);
	tu_patch_code(q, n, 9, GWB_OP_CACHE);           /* leaves RESPOND's last operand */
	tu_load_fail(q, n, "route 0: END at 12 is not a content action");
	memcpy(q, p, n);
	tu_patch_code(q, n, 10, 99);
	tu_load_fail(q, n, "route 0: RESPOND at 9: status 99 not in 100..599");
	free(p);

	p = vtable(&n, V_TWO);
	tu_load_fail(p, n, "route 0: two content actions (at 9 and 13)");
	free(p);
	p = vtable(&n, V_CACHE_ONLY);
	tu_load_fail(p, n, "route 0: no content action (proxy, respond or redirect)");
	free(p);
	p = vtable(&n, V_CACHE_AFTER);
	tu_load_fail(p, n, "route 0: CACHE at 13 must come first in the content phase");
	free(p);
	free(q);
}
END_TEST

START_TEST(verify_records)
{
	size_t n;
	uint8_t *p = sample(&n), *q = malloc(n);
	uint32_t cnt;

	/* route 0's match_end past the code */
	memcpy(q, p, n);
	size_t ro = tu_sec(q, GWB_SEC_ROUTE, NULL);
	uint32_t ncode;
	tu_sec(q, GWB_SEC_CODE, &ncode);
	tu_put32(q, ro + 8, ncode + 1);
	tu_fix_crc(q, n);
	char want[128];
	snprintf(want, sizeof want, "route 0: match program [0, %u) out of bounds (%u code words)", ncode + 1, ncode);
	tu_load_fail(q, n, want);

	/* a string that is not NUL-terminated */
	memcpy(q, p, n);
	size_t so = tu_sec(q, GWB_SEC_STRIDX, &cnt);
	tu_put32(q, so + 8 + 4, tu_get32(q, so + 8 + 4) + 1);       /* string 1 one longer */
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "string 1 not NUL-terminated");

	/* upstream server slice out of range */
	memcpy(q, p, n);
	size_t uo = tu_sec(q, GWB_SEC_UPSTREAM, NULL);
	tu_put32(q, uo + 24, 3);
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "upstream 0: servers out of range");

	/* a CIDR with host bits set */
	memcpy(q, p, n);
	size_t co = tu_sec(q, GWB_SEC_CIDR, NULL);
	q[co + 4 + 3] = 1;
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "cidr 0: invalid family, prefix or host bits");

	/* a regex that does not compile */
	memcpy(q, p, n);
	size_t xo = tu_sec(q, GWB_SEC_REGEX, NULL);
	tu_put32(q, xo, 1);                                  /* pattern = string 1 */
	tu_fix_crc(q, n);
	gwb_table *t = gwb_load_mem(q, n, want, sizeof want);
	if (t)
		gwb_free(t);                /* string 1 happens to be a valid regex */

	/* index: candidate route out of range, header counts */
	memcpy(q, p, n);
	size_t io = tu_sec(q, GWB_SEC_INDEX, NULL);
	tu_put32(q, io + 4 * 6, 7);
	tu_fix_crc(q, n);
	tu_load_fail(q, n, "index: header counts (3 nodes, 7 candidates) do not match (3, 3)");
	free(p);
	free(q);
}
END_TEST

START_TEST(verify_template_operand)
{
	/* the builder refuses an invalid template operand */
	gwb_builder *b = gwb_builder_new();
	uint32_t a[3];
	uint8_t *out;
	size_t n;
	char err[256];
	gwb_b_route_begin(b, tu_str(b, "r"), tu_str(b, "t.gwr"), 1, 1);
	gwb_b_emit(b, GWB_OP_ANY, NULL);
	gwb_b_emit(b, GWB_OP_END, NULL);
	gwb_b_match_done(b);
	gwb_b_phase(b, GWB_PH_CONTENT);
	a[0] = 302;
	a[1] = tu_str(b, "/x/${nope}");
	gwb_b_emit(b, GWB_OP_REDIRECT, a);
	gwb_b_route_end(b);
	ck_assert_int_eq(gwb_builder_finish(b, &out, &n, err, sizeof err), -1);
	ck_assert_str_eq(err, "REDIRECT: operand 2: unknown variable '${nope}' in template (at offset 3)");
	gwb_builder_free(b);
}
END_TEST

START_TEST(builder_misuse)
{
	struct { const char *want; int which; } cases[] = {
		{ "builder: PROXY in a match program", 0 },
		{ "builder: phase rewrite out of order", 1 },
		{ "builder: route_end before match_done", 2 },
		{ "builder: invalid index key for route 0", 3 },
		{ "route 0: index host key \"Upper.example\" is not lowercase", 4 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		gwb_builder *b = gwb_builder_new();
		uint32_t a[3] = { 0, 0, 0 };
		uint8_t *out;
		size_t n;
		char err[256];
		gwb_b_upstream(b, &(gwb_upstream){ .name = 0 }, NULL, 0);
		gwb_b_route_begin(b, 0, 0, 1, 1);
		if (cases[i].which == 0)
			gwb_b_emit(b, GWB_OP_PROXY, a);
		gwb_b_emit(b, GWB_OP_END, NULL);
		if (cases[i].which != 2)
			gwb_b_match_done(b);
		if (cases[i].which == 1) {
			gwb_b_phase(b, GWB_PH_CONTENT);
			gwb_b_phase(b, GWB_PH_REWRITE);
		}
		if (cases[i].which == 3) {
			gwb_index_key k = { GWB_HOST_EXACT, GWB_PATH_ANY, 0, 1, 0, 0 };
			gwb_b_route_key(b, &k);
		}
		if (cases[i].which == 4) {
			gwb_index_key k = { GWB_HOST_EXACT, GWB_PATH_ANY, GWB_M_ALL, tu_str(b, "Upper.example"), 0, 0 };
			gwb_b_route_key(b, &k);
		}
		gwb_b_route_end(b);
		ck_assert_int_eq(gwb_builder_finish(b, &out, &n, err, sizeof err), -1);
		ck_assert_str_eq(err, cases[i].want);
		gwb_builder_free(b);
	}
}
END_TEST

START_TEST(regex_error)
{
	gwb_builder *b = gwb_builder_new();
	char err[256];
	size_t eo = 99;
	ck_assert_uint_eq(gwb_b_regex(b, "a(b", 3, 0, err, sizeof err, &eo), GWB_NONE);
	ck_assert_str_eq(err, "missing closing parenthesis");
	ck_assert_uint_eq(eo, 3);
	ck_assert_uint_eq(gwb_b_regex(b, "a(b)", 4, 0, err, sizeof err, &eo), 0);
	ck_assert_uint_eq(gwb_b_regex(b, "a(b)", 4, GWB_RE_CASELESS, err, sizeof err, &eo), 1);
	ck_assert_uint_eq(gwb_b_regex(b, "a(b)", 4, 0, err, sizeof err, &eo), 0);   /* interned */
	gwb_builder_free(b);
}
END_TEST

/* a table of more than 2 MiB: gwb_load_mem puts it in huge-page memory
 * (when the system has them) and gwb_free gives that back */
START_TEST(large_table)
{
	gwb_builder *b = gwb_builder_new();
	size_t big = 1u << 20;                  /* GWB_MAX_STRLEN */
	char *body = malloc(big);
	ck_assert_ptr_nonnull(body);
	for (int r = 0; r < 3; r++) {
		memset(body, 'a' + r, big);
		uint32_t a[3];
		gwb_b_route_begin(b, tu_str(b, "big"), tu_str(b, "big.gwr"), (uint32_t)r + 1, 1);
		a[0] = tu_str(b, r == 0 ? "/a" : r == 1 ? "/b" : "/c");
		gwb_b_emit(b, GWB_OP_PATH_EQ, a);
		gwb_b_emit(b, GWB_OP_END, NULL);
		gwb_b_match_done(b);
		gwb_b_phase(b, GWB_PH_CONTENT);
		a[0] = 200;
		a[1] = gwb_b_str(b, body, big);
		a[2] = 0;
		gwb_b_emit(b, GWB_OP_RESPOND, a);
		gwb_index_key k = { GWB_HOST_ANY, GWB_PATH_EXACT, GWB_M_ALL, 0,
		                    tu_str(b, r == 0 ? "/a" : r == 1 ? "/b" : "/c"), 1 };
		gwb_b_route_key(b, &k);
		gwb_b_route_end(b);
	}
	size_t n;
	uint8_t *p = tu_finish(b, &n);
	ck_assert_uint_gt(n, 3u << 20);
	gwb_table *t = tu_load(p, n);
	free(p);                                /* the table has its own copy */
	gwb_request rq = { .method = "GET", .method_len = 3, .path = "/b", .path_len = 2 };
	gwb_match m;
	ck_assert_uint_eq(gwb_match_request(t, &rq, &m, NULL), 1);
	const gwb_route *rt = gwb_route_at(t, 1);
	size_t l;
	const char *s = gwb_str(t, gwb_code(t)[rt->phase_pc[GWB_PH_CONTENT] + 2], &l);
	ck_assert_uint_eq(l, big);
	ck_assert_int_eq(s[0], 'b');
	ck_assert_int_eq(s[big - 1], 'b');
	gwb_free(t);
	free(body);
}
END_TEST

START_TEST(empty_table)
{
	gwb_builder *b = gwb_builder_new();
	size_t n;
	uint8_t *p = tu_finish(b, &n);
	gwb_table *t = tu_load(p, n);
	ck_assert_uint_eq(gwb_nroutes(t), 0);
	gwb_request rq = { .method = "GET", .method_len = 3, .path = "/", .path_len = 1 };
	gwb_match m;
	ck_assert_uint_eq(gwb_match_request(t, &rq, &m, NULL), GWB_NONE);
	gwb_free(t);
	free(p);
}
END_TEST

/* a table with every kind of match test and index group, for the seeds */
static uint8_t *matchy(size_t *n)
{
	gwb_builder *b = gwb_builder_new();
	tu_route(b, "m0", X_AND(X_HOST("api.example.com"), X_AND(X_PPRE("/v1/"), X_METHOD(GWB_M_GET))), 0);
	tu_route(b, "m1", X_AND(X_WILD("example.com"), X_PEQ("/w")), 0);
	tu_route(b, "m2", X_OR(X_HEQ("X-A", "1"), X_AND(X_QEQ("q", "1"), X_CHAS("c"))), 0);
	tu_route(b, "m3", X_AND(X_RE("^/docs/v1/(.*)$", 0), X_NOT(X_IP("10.0.0.0/8,::1/128"))), 0);
	tu_route(b, "m4", X_AND(X_QHAS("v"), X_CEQ("s", "2")), 1);
	tu_route(b, "m5", X_AND(X_HOST("[::1]"), X_HHAS("X-B")), 0);
	tu_route(b, "m6", X_ANY(), 0);
	return tu_finish(b, n);
}

/* with GWB_CORPUS_DIR set, writes the seeds of tests/fuzz/corpus/load/ */
START_TEST(fuzz_seeds)
{
	const char *dir = getenv("GWB_CORPUS_DIR");
	struct { const char *name; uint8_t *p; size_t n; } seeds[4];
	seeds[0].name = "sample.gwb";
	seeds[0].p = sample(&seeds[0].n);
	seeds[1].name = "small.gwb";
	seeds[1].p = vtable(&seeds[1].n, V_OK);
	seeds[2].name = "matchy.gwb";
	seeds[2].p = matchy(&seeds[2].n);
	seeds[3].name = "empty.gwb";
	seeds[3].p = tu_finish(gwb_builder_new(), &seeds[3].n);
	for (int i = 0; i < 4; i++) {
		gwb_free(tu_load(seeds[i].p, seeds[i].n));
		if (dir) {
			char path[512];
			snprintf(path, sizeof path, "%s/%s", dir, seeds[i].name);
			FILE *f = fopen(path, "wb");
			ck_assert_ptr_nonnull(f);
			ck_assert_uint_eq(fwrite(seeds[i].p, 1, seeds[i].n, f), seeds[i].n);
			fclose(f);
		}
		free(seeds[i].p);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("gwb_load");
	TCase *tc = tcase_create("load");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, deterministic);
	tcase_add_test(tc, load_file);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, byte_flips);
	tcase_add_test(tc, byte_flips_fixed_checksum);
	tcase_add_test(tc, header_errors);
	tcase_add_test(tc, verify_program_rules);
	tcase_add_test(tc, verify_records);
	tcase_add_test(tc, verify_template_operand);
	tcase_add_test(tc, builder_misuse);
	tcase_add_test(tc, regex_error);
	tcase_add_test(tc, empty_table);
	tcase_add_test(tc, large_table);
	tcase_add_test(tc, fuzz_seeds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * fuzz_load.c — libFuzzer target for the table loader: bytes in.
 *
 * Each input is loaded twice: as given (almost always refused by the
 * checksum, which is the point of a checksum) and with its header's
 * file_size and checksum fixed up, so that the fuzzer reaches the section
 * directory and the verifier. A table that loads is then used the way gwd
 * and gwc use one: a few lookups, every route's program with a trace,
 * every instruction disassembled, the whole table dumped. A refusal must
 * come with a message. Everything is freed, so LeakSanitizer checks the
 * error paths too.
 *
 * Built and run by tests/fuzz/run.sh; seeds in tests/fuzz/corpus/load/
 * (written by test_gwb_load when GWB_CORPUS_DIR is set).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;
static gwb_scratch *scratch;

static int fz_header(void *ctx, const char *name, const char **v, size_t *vl)
{
	(void)ctx;
	if (name[0] == 'X' || name[0] == 'C') {   /* X-...: and Cookie */
		*v = "1; c=1; s=2";
		*vl = 11;
		return 1;
	}
	return 0;
}

static void trace(void *ctx, uint32_t pc, int result)
{
	(void)pc;
	(void)result;
	(*(unsigned *)ctx)++;
}

static void use(const gwb_table *t)
{
	static const char *const hosts[] = { "api.example.com", "A.B.Example.COM:8080", "[::1]:80", "", "x" };
	static const char *const paths[] = { "/", "/v1/users/42", "/docs/v1/a", "", "/a/b/c" };
	static const char *const methods[] = { "GET", "POST", "BREW" };
	gwb_match m;
	unsigned steps = 0;
	char buf[256];

	for (int i = 0; i < 5; i++) {
		gwb_request rq = {
			.method = methods[i % 3], .method_len = strlen(methods[i % 3]),
			.host = hosts[i], .host_len = strlen(hosts[i]),
			.path = paths[(i * 2) % 5], .path_len = strlen(paths[(i * 2) % 5]),
			.query = "q=1&v=2", .query_len = 7,
			.header = fz_header, .ip_family = i % 2 ? 6 : 4,
			.ip = { 10, 1, 2, 3 },
		};
		uint32_t r = gwb_match_request(t, &rq, &m, scratch);
		if (r != GWB_NONE && r >= gwb_nroutes(t))
			__builtin_trap();
		for (uint32_t k = 0; k < gwb_nroutes(t) && k < 64; k++)
			gwb_eval_route(t, k, &rq, &m, scratch, trace, &steps);
	}
	for (uint32_t k = 0; k < gwb_nroutes(t) && k < 64; k++) {
		const gwb_route *rt = gwb_route_at(t, k);
		for (uint32_t pc = rt->match_pc; pc < rt->match_end;) {
			int n = gwb_disasm_insn(t, pc, buf, sizeof buf);
			if (n <= 0)
				__builtin_trap();       /* verified programs decode */
			pc += (uint32_t)n;
		}
	}
	if (devnull)
		gwb_dump(t, devnull);
}

static void load(const uint8_t *p, size_t n)
{
	char err[256] = "";
	gwb_table *t = gwb_load_mem(p, n, err, sizeof err);
	if (!t) {
		if (!err[0])
			__builtin_trap();               /* a refusal says why */
		return;
	}
	use(t);
	gwb_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (!scratch)
		scratch = gwb_scratch_new();
	load(data, size);
	if (size >= 16 && size <= GWB_MAX_FILE) {
		uint8_t *p = malloc(size);
		if (!p)
			return 0;
		memcpy(p, data, size);
		uint32_t n = (uint32_t)size, z = 0;
		memcpy(p + 8, &n, 4);                   /* little-endian, as the format */
		memcpy(p + 12, &z, 4);
		uint32_t c = gwb_crc32(0, p, size);
		memcpy(p + 12, &c, 4);
		load(p, size);
		free(p);
	}
	return 0;
}

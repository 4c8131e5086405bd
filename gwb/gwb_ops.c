/*
 * gwb_ops.c — tables generated from the lists in gwb.h (opcodes, methods)
 * and the names the loader, verifier and disassembler print.
 */
#include "config.h"

#include <string.h>
#include "gwb_int.h"

#define GWB_OPINFO_(name, ph, n, a, b, c, d, e, f, g, h, doc) \
	{ #name, GWB_PH_##ph, n, { a, b, c, d, e, f, g, h }, doc },
const gwb_opinfo gwb_ops[GWB_OP__COUNT] = { GWB_OPCODES(GWB_OPINFO_) };
#undef GWB_OPINFO_

/* every opcode's operand count fits the fixed operand array */
#define GWB_NARGS_OK_(name, ph, n, a, b, c, d, e, f, g, h, doc) \
	_Static_assert((n) <= GWB_MAX_ARGS, #name " has too many operands");
GWB_OPCODES(GWB_NARGS_OK_)
#undef GWB_NARGS_OK_

const gwb_opinfo *gwb_opinfo_get(uint32_t op)
{
	return op < GWB_OP__COUNT ? &gwb_ops[op] : NULL;
}

const char *gwb_phase_name(unsigned phase)
{
	static const char *const names[GWB_PH__COUNT] = {
		"rewrite", "access", "content", "header_filter", "log"
	};
	if (phase < GWB_PH__COUNT)
		return names[phase];
	if (phase == GWB_PH_MATCH)
		return "match";
	return "?";
}

#define GWB_MNAME_(name, bit) #name,
static const char *const method_names[] = { GWB_METHOD_LIST(GWB_MNAME_) "OTHER" };
#undef GWB_MNAME_

const char *gwb_method_name(unsigned bit)
{
	return bit < sizeof method_names / sizeof method_names[0] ? method_names[bit] : "?";
}

uint32_t gwb_method_bit(const char *m, size_t n)
{
	/* on every request, so without a branch that depends on the method:
	 * its bytes as a little-endian word, a multiplicative hash that puts
	 * the nine names in nine of 16 slots, one compare. Methods are
	 * case-sensitive (RFC 9110 9.1): "get" is OTHER. */
	static const struct { uint64_t w; uint32_t len, bit; } tab[16] = {
		[12] = { 0x544547ull, 3, GWB_M_GET },
		[13] = { 0x44414548ull, 4, GWB_M_HEAD },
		[9] = { 0x54534f50ull, 4, GWB_M_POST },
		[10] = { 0x545550ull, 3, GWB_M_PUT },
		[15] = { 0x4554454c4544ull, 6, GWB_M_DELETE },
		[7] = { 0x4843544150ull, 5, GWB_M_PATCH },
		[8] = { 0x534e4f4954504full, 7, GWB_M_OPTIONS },
		[6] = { 0x5443454e4e4f43ull, 7, GWB_M_CONNECT },
		[4] = { 0x4543415254ull, 5, GWB_M_TRACE },
	};
	if (n - 1 >= 7)                         /* n == 0 or n > 7 */
		return GWB_M_OTHER;
	/* bytes 0..n-1 as a word: byte i is read at min(i, n - 1) (never
	 * past the method) and the copies past n-1 are masked off */
	const uint8_t *b = (const uint8_t *)m;
	size_t l = n - 1;
	uint64_t w = b[0] | (uint64_t)b[l < 1 ? l : 1] << 8 | (uint64_t)b[l < 2 ? l : 2] << 16 |
	             (uint64_t)b[l < 3 ? l : 3] << 24 | (uint64_t)b[l < 4 ? l : 4] << 32 |
	             (uint64_t)b[l < 5 ? l : 5] << 40 | (uint64_t)b[l < 6 ? l : 6] << 48;
	w &= (1ull << (8 * n)) - 1;
	unsigned i = (unsigned)((w * 0x35bf992dc9e9c617ull) >> 60);
	return tab[i].w == w && tab[i].len == n ? tab[i].bit : GWB_M_OTHER;
}

const char *const gwb_keykind_name[GWB_KEY__COUNT] = {
	"client_ip", "header", "query", "cookie", "consumer", "route", "path"
};

const char *const gwb_balance_name[GWB_BAL__COUNT] = {
	"round_robin", "least_conn", "ip_hash", "hash", "random"
};

const uint32_t gwb_sec_recsize[GWB_SEC__COUNT] = {
	[GWB_SEC_STRIDX] = 8,
	[GWB_SEC_STRDATA] = 1,
	[GWB_SEC_REGEX] = sizeof(gwb_regex),
	[GWB_SEC_CIDR] = sizeof(gwb_cidr),
	[GWB_SEC_CIDRSET] = 8,
	[GWB_SEC_UPSTREAM] = sizeof(gwb_upstream),
	[GWB_SEC_SERVER] = sizeof(gwb_server),
	[GWB_SEC_ROUTE] = sizeof(gwb_route),
	[GWB_SEC_CODE] = 4,
	[GWB_SEC_INDEX] = 4,
	[GWB_SEC_DEBUG] = sizeof(gwb_debug),
};

const char *const gwb_sec_name[GWB_SEC__COUNT] = {
	[0] = "?",
	[GWB_SEC_STRIDX] = "STRIDX", [GWB_SEC_STRDATA] = "STRDATA",
	[GWB_SEC_REGEX] = "REGEX", [GWB_SEC_CIDR] = "CIDR",
	[GWB_SEC_CIDRSET] = "CIDRSET", [GWB_SEC_UPSTREAM] = "UPSTREAM",
	[GWB_SEC_SERVER] = "SERVER", [GWB_SEC_ROUTE] = "ROUTE",
	[GWB_SEC_CODE] = "CODE", [GWB_SEC_INDEX] = "INDEX",
	[GWB_SEC_DEBUG] = "DEBUG",
};

int gwb_errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

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
	/* on every request: dispatch on the length, then one compare.
	 * Methods are case-sensitive (RFC 9110 9.1): "get" is OTHER. */
#define M_(s, bit) (n == sizeof(s) - 1 && memcmp(m, s, sizeof(s) - 1) == 0 ? (bit) : GWB_M_OTHER)
	switch (n) {
	case 3:
		return m[0] == 'G' ? M_("GET", GWB_M_GET) : M_("PUT", GWB_M_PUT);
	case 4:
		return m[0] == 'P' ? M_("POST", GWB_M_POST) : M_("HEAD", GWB_M_HEAD);
	case 5:
		return m[0] == 'P' ? M_("PATCH", GWB_M_PATCH) : M_("TRACE", GWB_M_TRACE);
	case 6:
		return M_("DELETE", GWB_M_DELETE);
	case 7:
		return m[0] == 'O' ? M_("OPTIONS", GWB_M_OPTIONS) : M_("CONNECT", GWB_M_CONNECT);
	default:
		return GWB_M_OTHER;
	}
#undef M_
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

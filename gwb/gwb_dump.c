/*
 * gwb_dump.c — the disassembler: one instruction (gwb_disasm_insn, used by
 * `gwc explain`) or a whole table (gwb_dump, `gwc dump`). Operands are
 * rendered by their kind from the X-macro list. The output depends only on
 * the table's bytes (no addresses, no hash order), so golden tests can
 * compare it.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "gwb_int.h"

/* a growable text buffer; on allocation failure it stops growing and the
 * text is cut (dump output is best effort, never a crash) */
typedef struct sb {
	char *p;
	size_t n, cap;
} sb;

static void sb_putn(sb *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc < b->n + n + 1)
			nc *= 2;
		char *q = realloc(b->p, nc);
		if (!q)
			return;
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* a string literal, its length counted by the compiler */
#define SB_LIT(b, lit) sb_putn((b), (lit), sizeof(lit) - 1)

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_quote(sb *b, const char *s, size_t n)
{
	SB_LIT(b, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"':  SB_LIT(b, "\\\""); break;
		case '\\': SB_LIT(b, "\\\\"); break;
		case '\n': SB_LIT(b, "\\n"); break;
		case '\t': SB_LIT(b, "\\t"); break;
		case '\r': SB_LIT(b, "\\r"); break;
		default:
			if (c < 0x20 || c >= 0x7f)
				sb_printf(b, "\\x%02x", c);
			else
				sb_putn(b, (const char *)&c, 1);
		}
	}
	SB_LIT(b, "\"");
}

static void sb_qstr(sb *b, const gwb_table *t, uint32_t idx)
{
	size_t l;
	const char *s = gwb_s(t, idx, &l);
	sb_quote(b, s, l);
}

static void sb_methods(sb *b, uint32_t mask)
{
	if ((mask & GWB_M_ALL) == GWB_M_ALL) {
		SB_LIT(b, "*");
		return;
	}
	int first = 1;
	for (unsigned i = 0; i < 10; i++)
		if (mask & (1u << i)) {
			if (!first)
				SB_LIT(b, "|");
			sb_printf(b, "%s", gwb_method_name(i));
			first = 0;
		}
}

static void sb_cidrs(sb *b, const gwb_table *t, uint32_t set)
{
	uint32_t n;
	const gwb_cidr *c = gwb_cidrset(t, set, &n);
	SB_LIT(b, "(");
	for (uint32_t i = 0; i < n; i++) {
		char tmp[64];
		gwb_cidr_format(&c[i], tmp, sizeof tmp);
		sb_printf(b, "%s%s", i ? ", " : "", tmp);
	}
	SB_LIT(b, ")");
}

/* renders the instruction at pc; returns its length in words or -1 */
static int disasm(sb *b, const gwb_table *t, uint32_t pc)
{
	if (pc >= t->ncode)
		return -1;
	const gwb_opinfo *oi = gwb_opinfo_get(t->code[pc]);
	if (!oi || (uint64_t)pc + 1 + oi->nargs > t->ncode) {
		sb_printf(b, "?? 0x%08x", t->code[pc]);
		return -1;
	}
	sb_printf(b, "%s", oi->name);
	for (unsigned k = 0; k < oi->nargs; k++) {
		uint32_t a = t->code[pc + 1 + k];
		SB_LIT(b, " ");
		switch (oi->kind[k]) {
		case GWB_K_STR:
		case GWB_K_TPL:
			if (a < t->nstr)
				sb_qstr(b, t, a);
			else
				sb_printf(b, "str#%u?", a);
			break;
		case GWB_K_RE:
			if (a < t->nregex) {
				sb_qstr(b, t, t->regex[a].pattern);
				if (t->regex[a].flags & GWB_RE_CASELESS)
					SB_LIT(b, "i");
			} else {
				sb_printf(b, "re#%u?", a);
			}
			break;
		case GWB_K_CIDRS:
			if (a < t->ncidrset)
				sb_cidrs(b, t, a);
			else
				sb_printf(b, "cidrs#%u?", a);
			break;
		case GWB_K_UPS:
			if (a < t->nups) {
				size_t l;
				const char *s = gwb_s(t, t->ups[a].name, &l);
				SB_LIT(b, "upstream:");
				sb_putn(b, s, l);
			} else {
				sb_printf(b, "ups#%u?", a);
			}
			break;
		case GWB_K_JMP:
			sb_printf(b, "-> %u", a);
			break;
		case GWB_K_METHODS:
			sb_methods(b, a);
			break;
		case GWB_K_KEY:
			sb_printf(b, "%s", a < GWB_KEY__COUNT ? gwb_keykind_name[a] : "?");
			break;
		case GWB_K_BOOL:
			sb_printf(b, "%s", a ? "true" : "false");
			break;
		default:
			sb_printf(b, "%u", a);
		}
	}
	return 1 + oi->nargs;
}

int gwb_disasm_insn(const gwb_table *t, uint32_t pc, char *buf, size_t len)
{
	sb b = { 0 };
	int n = disasm(&b, t, pc);
	if (len) {
		size_t k = b.n < len ? b.n : len - 1;
		if (k)
			memcpy(buf, b.p, k);
		buf[k] = '\0';
	}
	free(b.p);
	return n;
}

/* --------------------------------------------------------------- dump */
typedef struct filing {
	char **line;            /* per route: where the index files it */
	uint32_t n;
} filing;

static void on_filed(void *ctx, uint32_t route, int hk, const char *host, size_t hl,
                     int pk, const char *path, size_t pl, uint32_t methods, int exact)
{
	filing *f = ctx;
	if (route >= f->n || f->line[route])
		return;
	sb b = { 0 };
	SB_LIT(&b, "host ");
	if (hk == GWB_HOST_ANY) {
		SB_LIT(&b, "*");
	} else {
		sb_putn(&b, hk == GWB_HOST_WILD ? "*." : "", hk == GWB_HOST_WILD ? 2 : 0);
		sb_quote(&b, host, hl);
	}
	SB_LIT(&b, "  path ");
	if (pk == GWB_PATH_ANY) {
		SB_LIT(&b, "*");
	} else {
		sb_putn(&b, pk == GWB_PATH_EXACT ? "== " : "^= ", 3);
		sb_quote(&b, path, pl);
	}
	SB_LIT(&b, "  methods ");
	sb_methods(&b, methods);
	if (exact)
		SB_LIT(&b, "  exact");
	f->line[route] = b.p;
}

static void dump_prog(sb *b, const gwb_table *t, const char *title, uint32_t pc, uint32_t end)
{
	if (pc >= end)
		return;
	sb_printf(b, "  %s:\n", title);
	while (pc < end) {
		sb_printf(b, "    %6u  ", pc);
		int n = disasm(b, t, pc);
		SB_LIT(b, "\n");
		if (n <= 0)
			break;
		pc += (uint32_t)n;
	}
}

static void dump_upstream(sb *b, const gwb_table *t, uint32_t i)
{
	const gwb_upstream *u = &t->ups[i];
	sb_printf(b, "upstream %u ", i);
	sb_qstr(b, t, u->name);
	if (u->flags & GWB_UPS_DYNAMIC)
		SB_LIT(b, " dynamic");
	SB_LIT(b, "\n");
	sb_printf(b, "  balance %s", u->balance < GWB_BAL__COUNT ? gwb_balance_name[u->balance] : "?");
	if (u->balance == GWB_BAL_HASH) {
		sb_printf(b, "(%s ", u->hash_key < GWB_KEY__COUNT ? gwb_keykind_name[u->hash_key] : "?");
		sb_qstr(b, t, u->hash_name);
		SB_LIT(b, ")");
	}
	sb_printf(b, "  keepalive %u  connect_timeout %ums  read_timeout %ums\n",
	          u->keepalive, u->connect_timeout_ms, u->read_timeout_ms);
	sb_printf(b, "  retries %u on", u->retries);
	const char *sep = " ";
	if (u->retry_on & GWB_RETRY_CONNECT) {
		sb_printf(b, "%sconnect_error", sep);
		sep = ",";
	}
	if (u->retry_on & GWB_RETRY_TIMEOUT) {
		sb_printf(b, "%stimeout", sep);
		sep = ",";
	}
	for (int k = 0; k < 4; k++)
		if (u->retry_status[k]) {
			sb_printf(b, "%s%u", sep, u->retry_status[k]);
			sep = ",";
		}
	if (sep[0] == ' ')
		SB_LIT(b, " -");
	SB_LIT(b, "\n");
	if (u->flags & GWB_UPS_HEALTH) {
		SB_LIT(b, "  health_check path ");
		sb_qstr(b, t, u->hc_path);
		sb_printf(b, " interval %ums timeout %ums healthy %u unhealthy %u expect %u..%u\n",
		          u->hc_interval_ms, u->hc_timeout_ms, u->hc_healthy, u->hc_unhealthy,
		          u->hc_expect_lo, u->hc_expect_hi);
	}
	if (u->flags & GWB_UPS_BREAKER)
		sb_printf(b, "  circuit_breaker failures %u window %ums cooldown %ums\n",
		          u->cb_failures, u->cb_window_ms, u->cb_cooldown_ms);
	if (u->tls_ca || u->tls_sni || u->tls_cert || u->tls_key || (u->flags & GWB_UPS_TLS_NOVERIFY)) {
		SB_LIT(b, "  tls ca ");
		sb_qstr(b, t, u->tls_ca);
		SB_LIT(b, " sni ");
		sb_qstr(b, t, u->tls_sni);
		SB_LIT(b, " cert ");
		sb_qstr(b, t, u->tls_cert);
		SB_LIT(b, " key ");
		sb_qstr(b, t, u->tls_key);
		sb_printf(b, " verify %s\n", (u->flags & GWB_UPS_TLS_NOVERIFY) ? "off" : "on");
	}
	for (uint32_t k = 0; k < u->server_count; k++) {
		const gwb_server *s = &t->srv[u->server_first + k];
		SB_LIT(b, "  server ");
		sb_qstr(b, t, s->addr);
		sb_printf(b, " weight %u max_fails %u fail_timeout %ums%s%s\n", s->weight, s->max_fails,
		          s->fail_timeout_ms, (s->flags & GWB_SRV_BACKUP) ? " backup" : "",
		          (s->flags & GWB_SRV_HTTPS) ? " https" : "");
	}
}

void gwb_dump(const gwb_table *t, void *file)
{
	FILE *f = file;
	sb b = { 0 };
	char hex[65];
	const uint8_t *h = t->base;
	uint32_t sum = (uint32_t)h[12] | (uint32_t)h[13] << 8 | (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;

	gwb_source_hash_hex(t, hex);
	sb_printf(&b, "gwb %u.%u  %zu bytes  checksum %08x\n", (unsigned)(h[4] | h[5] << 8),
	          (unsigned)(h[6] | h[7] << 8), t->size, sum);
	sb_printf(&b, "source_hash %s\n", hex);
	sb_printf(&b, "strings %u  regexes %u  cidr_sets %u  upstreams %u  servers %u  routes %u  code %u words  index %u words\n",
	          t->nstr, t->nregex, t->ncidrset, t->nups, t->nsrv, t->nroute, t->ncode, t->nindex);
	fputs(b.p ? b.p : "", f);
	b.n = 0;

	for (uint32_t i = 0; i < t->nups; i++) {
		SB_LIT(&b, "\n");
		dump_upstream(&b, t, i);
		fputs(b.p ? b.p : "", f);
		b.n = 0;
	}

	filing fl = { .line = calloc(t->nroute ? t->nroute : 1, sizeof(char *)), .n = t->nroute };
	if (fl.line)
		gwb_index_visit(t, on_filed, &fl);
	for (uint32_t r = 0; r < t->nroute; r++) {
		const gwb_route *rt = &t->route[r];
		const gwb_debug *d = &t->debug[r];
		size_t fl_len;
		const char *fn = gwb_s(t, d->file, &fl_len);
		sb_printf(&b, "\nroute %u ", r);
		sb_qstr(&b, t, rt->name);
		SB_LIT(&b, "  ");
		sb_putn(&b, fn, fl_len);
		sb_printf(&b, ":%u:%u\n", d->line, d->col);
		if (fl.line && fl.line[r]) {
			SB_LIT(&b, "  index: ");
			sb_putn(&b, fl.line[r], strlen(fl.line[r]));
			SB_LIT(&b, "\n");
		}
		dump_prog(&b, t, "match", rt->match_pc, rt->match_end);
		for (unsigned p = 0; p < GWB_PH__COUNT; p++)
			dump_prog(&b, t, gwb_phase_name(p), rt->phase_pc[p], rt->phase_pc[p + 1]);
		fputs(b.p ? b.p : "", f);
		b.n = 0;
	}
	if (fl.line) {
		for (uint32_t r = 0; r < t->nroute; r++)
			free(fl.line[r]);
		free(fl.line);
	}

	const uint32_t *ix = t->index;
	uint32_t nh = 0, nw = 0;
	for (uint32_t i = 0; i < ix[GWB_IX_NHOST]; i++)
		nh += ix[ix[GWB_IX_HOSTOFF] + GWB_IX_SLOT * i + 1] != GWB_NONE;
	for (uint32_t i = 0; i < ix[GWB_IX_NWILD]; i++)
		nw += ix[ix[GWB_IX_WILDOFF] + GWB_IX_SLOT * i + 1] != GWB_NONE;
	sb_printf(&b, "\nindex: %u exact hosts (%u slots), %u wildcard suffixes (%u slots), any-host group %s, %u trie nodes, %u candidates\n",
	          nh, ix[GWB_IX_NHOST], nw, ix[GWB_IX_NWILD],
	          ix[GWB_IX_ANYGROUP] != GWB_NONE ? "yes" : "no", ix[GWB_IX_NNODES], ix[GWB_IX_NCAND]);
	fputs(b.p ? b.p : "", f);
	free(b.p);
}

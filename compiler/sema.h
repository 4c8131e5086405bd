/*
 * sema.h — internals shared by sema.c, shadow.c, emit.c and the gwc
 * subcommands. Not a contract between areas: compiler.h is.
 *
 * The one place that knows what a directive means is the decoder in
 * sema.c: it turns an ast_directive into exactly the operands of its
 * opcode (sema_insn). sema_check() runs it with a diag_ctx to find every
 * error; emit_table() runs it again on the checked tree and only encodes,
 * so the checker and the emitter can never disagree about a directive.
 */
#ifndef GW_SEMA_H
#define GW_SEMA_H

#include <stddef.h>
#include <stdint.h>
#include "ast.h"
#include "diag.h"
#include "gwb.h"

/* where a directive may stand */
enum sema_place {
	SP_ROUTE = 1u << 0, SP_POLICY = 1u << 1, SP_UPSTREAM = 1u << 2,
	SP_HEALTH = 1u << 3, SP_BREAKER = 1u << 4
};

/* one operand of an opcode, before interning (emit turns it into a word) */
typedef struct sema_opnd {
	uint32_t u;                   /* numbers, enums, masks, status */
	const char *s; size_t len;    /* STR / TPL / RE text; UPS: upstream name */
	const ast_value *cidrs;       /* CIDRS: values (AV_CIDR, AV_LIST of them) */
	size_t ncidrs;
	int all;                      /* CIDRS: `all` (0.0.0.0/0 and ::/0) */
	ast_pos pos;                  /* where it came from */
} sema_opnd;

/* a decoded route/policy directive: an opcode and its operands, or `use` */
typedef struct sema_insn {
	int is_use;                   /* `use NAME`: name in a[0].s */
	enum gwb_op op;
	unsigned phase;               /* enum gwb_phase */
	const ast_directive *dir;
	sema_opnd a[GWB_MAX_ARGS];
	char *owned[4]; int nowned;   /* strings built by the decoder */
} sema_insn;

/* Decode one route/policy directive. With dg, every problem is reported
 * (and the return is -1 if there was any); without dg the directive is
 * trusted to have been checked. place is SP_ROUTE or SP_POLICY. */
int sema_decode(const ast_file *f, const ast_directive *d, unsigned place,
                sema_insn *out, diag_ctx *dg);
void sema_insn_fini(sema_insn *in);

/* a decoded upstream: numbers in u, strings by pointer (emit interns) */
typedef struct sema_server {
	const char *addr; size_t addrlen;
	char *owned;                  /* addr when the decoder built it */
	uint32_t flags, weight, max_fails, fail_timeout_ms;
} sema_server;

typedef struct sema_upstream {
	gwb_upstream u;               /* all numeric fields; STR fields unset */
	const char *hash_name, *hc_path, *tls_ca, *tls_sni, *tls_cert, *tls_key;
	char *owned[4]; int nowned;   /* resolved file paths */
	sema_server *servers; size_t nservers;
} sema_upstream;

int sema_decode_upstream(const ast_file *f, const ast_item *it,
                         sema_upstream *out, diag_ctx *dg);
void sema_upstream_fini(sema_upstream *u);

/* CIDR text ("10.0.0.0/8", "::1", "10.1.2.3") -> record with host bits
 * cleared. Returns 0, or -1 when it is not an address/prefix. */
int sema_parse_cidr(const char *s, gwb_cidr *out);
/* flatten a CIDRS operand into a malloc'ed array; returns count or -1 */
long sema_cidrs(const sema_opnd *o, gwb_cidr **out);

/* the position of byte `off` of the decoded string whose literal starts
 * at vpos (the opening quote): escapes are walked so the caret lands on
 * the offending source byte. Falls back to vpos. */
ast_pos sema_strpos(const ast_file *f, ast_pos vpos, size_t off);

/* a relative path named at pos, made relative to that .gwr's directory
 * and absolute (without resolving symlinks). malloc'ed. */
char *sema_resolve_path(const char *gwr, const char *path);

/* ------------------------------------------------- small string map */
typedef struct sema_map {
	struct sema_slot { const char *k; size_t klen; uint64_t h; long v; } *slot;
	size_t cap, n;
} sema_map;
void sema_map_init(sema_map *m);
void sema_map_fini(sema_map *m);
/* returns the value, or -1 when absent */
long sema_map_get(const sema_map *m, const char *k, size_t klen);
/* inserts when absent; returns the previous value or -1. k is borrowed. */
long sema_map_put(sema_map *m, const char *k, size_t klen, long v);
uint64_t sema_hash(const void *p, size_t n, uint64_t seed);

/* shadow.c: -Wshadowed over the routes of f (matches already checked) */
void shadow_check(const ast_file *f, diag_ctx *d);

/* the top-level conjunction of a match, as the index key (emit.c) */
typedef struct sema_key {
	int host_kind, path_kind;     /* enum gwb_hostkind / gwb_pathkind */
	const char *host; size_t hostlen;  /* exact host or suffix after "*." */
	const char *path; size_t pathlen;
	uint32_t methods;
	int exact;
} sema_key;
void sema_index_key(const ast_expr *e, sema_key *k);

#endif /* GW_SEMA_H */

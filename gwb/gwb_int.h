/*
 * gwb_int.h — private to gwb/: the in-memory form of a loaded table and
 * the seams between the gwb_*.c files. Nothing outside gwb/ includes it
 * (the unit tests do, to reach the internals they check).
 */
#ifndef GWB_INT_H
#define GWB_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include "gwb.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gwb tables are little-endian and used in place; port gwb_load.c first"
#endif

/* The records are written and read as raw structs: their sizes are part of
 * the format. */
_Static_assert(sizeof(gwb_regex) == 16, "gwb_regex is 16 bytes");
_Static_assert(sizeof(gwb_cidr) == 20, "gwb_cidr is 20 bytes");
_Static_assert(sizeof(gwb_upstream) == 132, "gwb_upstream is 132 bytes");
_Static_assert(sizeof(gwb_server) == 24, "gwb_server is 24 bytes");
_Static_assert(sizeof(gwb_route) == 40, "gwb_route is 40 bytes");
_Static_assert(sizeof(gwb_debug) == 16, "gwb_debug is 16 bytes");

#define GWB_MAX_SECTIONS 64       /* directory entries a loader accepts */

/* record size of each section (1 for byte sections), indexed by id */
extern const uint32_t gwb_sec_recsize[GWB_SEC__COUNT];
extern const char *const gwb_sec_name[GWB_SEC__COUNT];

/* a loaded, verified table. Every pointer points into `base`. */
struct gwb_table {
	const uint8_t *base;
	size_t size;
	void *map;                  /* mmap'ed region or NULL */
	size_t maplen;              /* its length */
	void *copy;                 /* malloc'ed copy or NULL */

	const uint32_t *stridx;     uint32_t nstr;
	const char *strdata;        uint32_t nstrdata;
	const gwb_regex *regex;     uint32_t nregex;
	const gwb_cidr *cidr;       uint32_t ncidr;
	const uint32_t *cidrset;    uint32_t ncidrset;   /* pairs */
	const gwb_upstream *ups;    uint32_t nups;
	const gwb_server *srv;      uint32_t nsrv;
	const gwb_route *route;     uint32_t nroute;
	const uint32_t *code;       uint32_t ncode;
	const uint32_t *index;      uint32_t nindex;     /* words */
	const gwb_debug *debug;     uint32_t ndebug;

	pcre2_code **re;            /* nregex compiled patterns */
};

struct gwb_scratch {
	pcre2_match_data *md;
	pcre2_match_context *mc;
	pcre2_jit_stack *js;
};

/* A request prepared once per lookup: the host reduced to its key form
 * (port stripped; compared case-insensitively, never copied). */
typedef struct gwb_prep {
	const gwb_request *rq;
	const char *host;
	size_t hlen;
	const char *path;           /* never NULL */
	size_t plen;
	uint32_t mbit;              /* method bit */
	uint32_t hhash;             /* gwb_host_hash of the host key */
} gwb_prep;

/* ------------------------------------------------------------ gwb_ops.c */
/* the phase an opcode may appear in, its name; NULL-safe wrappers */
const char *gwb_method_name(unsigned bit);
extern const char *const gwb_keykind_name[GWB_KEY__COUNT];
extern const char *const gwb_balance_name[GWB_BAL__COUNT];

/* --------------------------------------------------------- gwb_match.c */
void gwb_prep_init(gwb_prep *p, const gwb_request *rq);
/* evaluate route r's match program; captures into m only when it matches */
int gwb_eval_prep(const gwb_table *t, uint32_t r, const gwb_prep *p,
                  gwb_match *m, gwb_scratch *s, gwb_trace_fn trace, void *tctx);
/* run a residual program (len words at prog, jumps relative to prog, as
 * the index carries it) of route r for a request that meets its key */
int gwb_eval_inline(const gwb_table *t, uint32_t r, const uint8_t *prog, uint32_t len,
                    int flag, const gwb_prep *p, gwb_match *m, gwb_scratch *s);

/* --------------------------------------------------------- gwb_index.c */
/*
 * Index layout constants, see gwb_index.c for the picture.
 */
#define GWB_IX_HDR        10u     /* header words */
#define GWB_IX_NHOST      0u
#define GWB_IX_HOSTOFF    1u
#define GWB_IX_NWILD      2u
#define GWB_IX_WILDOFF    3u
#define GWB_IX_ANYGROUP   4u
#define GWB_IX_NNODES     5u
#define GWB_IX_NCAND      6u
#define GWB_IX_RESERVED   7u
#define GWB_IX_WILDLENS   8u      /* and 9 */
#define GWB_IX_SLOT       2u      /* words per hash slot: hash, group */
#define GWB_IXG_HLEN      0x00ffffffu   /* group word 1: host length */
#define GWB_IXG_WIDE      0x80000000u   /* group word 1: u32 child offsets */
#define GWB_IXN_KIDS      1u      /* node flags */
#define GWB_IXN_PRE       2u
#define GWB_IXN_EX        4u
#define GWB_CAND_ROUTE    0x000fffffu
#define GWB_CAND_MSHIFT   20
#define GWB_CAND_EXACT    (1u << 30)
#define GWB_CAND_LAST     (1u << 31)
#define GWB_RES_LEN       0x0fffffffu   /* residual word: length */
#define GWB_RES_FLAG      (1u << 31)    /* residual word: flag starts true */

/* host hash over the lowercased bytes (gwb_index.c) */
uint32_t gwb_host_hash(const char *s, size_t n);
/* p->hlen (gwb_host_key) and p->hhash (gwb_host_hash of the key), in
 * one pass over the host */
void gwb_prep_host(gwb_prep *p, const char *h, size_t n);

typedef struct gwb_ix_input {
	const gwb_index_key *keys;
	uint32_t nkeys;
	const char *strdata;         /* builder's strings */
	const uint32_t *stridx;      /* off, len pairs */
	uint32_t nstr;
	const gwb_route *routes;     /* nkeys of them: their match programs */
	const uint32_t *code;
	uint32_t ncode;
} gwb_ix_input;

/* a route's index key as the index files it (bytes, not string numbers) */
typedef struct gwb_ixkey {
	int hk;                      /* enum gwb_hostkind */
	const char *host;
	size_t hl;
	int pk;                      /* enum gwb_pathkind; a prefix "" is ANY */
	const char *path;
	size_t pl;
	uint32_t methods;
} gwb_ixkey;
/* The residual of match program [pc, end) for a request known to meet
 * key k: the tests at its head that k implies (and the JFs after them)
 * need not run. Returns the first pc that must, *flag the flag to start
 * with (1 when something was skipped). The builder stores the residual
 * with each candidate; the verifier derives it again and compares. */
uint32_t gwb_residual(const uint32_t *code, uint32_t pc, uint32_t end,
                      const uint32_t *stridx, const char *strdata, uint32_t nstr,
                      const gwb_ixkey *k, int *flag);
/* builds the INDEX words (malloc'ed). 0 or -1 with err. */
int gwb_index_build(const gwb_ix_input *in, uint32_t **words, uint32_t *nwords,
                    char *err, size_t errlen);
/* structural check of a loaded table's index. 0 or -1 with err. */
int gwb_index_verify(const gwb_table *t, char *err, size_t errlen);
/* the lookup (gwb_match_request): lowest matching route or GWB_NONE;
 * m filled for the winner */
uint32_t gwb_index_match(const gwb_table *t, const gwb_request *rq, gwb_match *m,
                         gwb_scratch *s);
/* for gwb_dump: calls fn for every filed route with the key it is filed
 * under (path as reconstructed bytes) */
typedef void (*gwb_ix_visit_fn)(void *ctx, uint32_t route, int host_kind,
                                const char *host, size_t hlen, int path_kind,
                                const char *path, size_t plen,
                                uint32_t methods, int exact);
int gwb_index_visit(const gwb_table *t, gwb_ix_visit_fn fn, void *ctx);

/* -------------------------------------------------------- gwb_write.c */
typedef struct gwb_wsec {
	uint32_t id;
	const void *data;
	uint32_t size;               /* bytes */
	uint32_t count;
} gwb_wsec;
/* lays out header + directory + sections; malloc'ed result */
int gwb_write(const gwb_wsec *sec, uint32_t nsec, const uint8_t hash[32],
              uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* ------------------------------------------------------- gwb_verify.c */
int gwb_verify(gwb_table *t, char *err, size_t errlen);

/* -------------------------------------------------------------- misc */
int gwb_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline unsigned char gwb_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}
static inline const char *gwb_s(const gwb_table *t, uint32_t i, size_t *len)
{
	if (len)
		*len = t->stridx[2 * i + 1];
	return t->strdata + t->stridx[2 * i];
}
/* path-independent checks shared by builder and verifier */
int gwb_cidr_valid(const gwb_cidr *c);

#endif /* GWB_INT_H */

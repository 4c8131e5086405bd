/*
 * gwb.h — the compiled routing table (.gwb): the one format gwc writes and
 * gwd loads. Everything both sides must agree on is defined here, once:
 * layout, limits, opcodes (an X-macro list expanded by the emitter, the
 * verifier, the disassembler and the interpreter), and the APIs of the
 * builder (gwc side) and of the loader/matcher (gwd side).
 *
 * ------------------------------------------------------------------------
 * File layout. All integers little-endian. Every offset is from the start of
 * the file; every section starts 8-byte aligned. The file is position
 * independent (only offsets and indexes, no pointers), so gwd can mmap it
 * read-only and use it in place.
 *
 *   0       4     6     8          12         16                 48      52      56       64
 *   +-------+-----+-----+----------+----------+------------------+-------+-------+--------+
 *   | magic |major|minor| file_size| checksum | source_hash (32) | nsect | flags | rsvd   |
 *   +-------+-----+-----+----------+----------+------------------+-------+-------+--------+
 *   64: section directory, nsect x { u32 id; u32 offset; u32 size; u32 count; }
 *   then the sections, in directory order, 8-byte aligned, zero padded.
 *
 *   magic      "GWB\x01"
 *   major      GWB_VERSION_MAJOR: a loader refuses any other major
 *   minor      GWB_VERSION_MINOR: a loader refuses a minor newer than its own
 *   file_size  must equal the number of bytes read
 *   checksum   CRC-32 (IEEE, as zlib's crc32) of the whole file with these
 *              four bytes taken as zero
 *   source_hash SHA-256 of the sources, in include order, each as
 *              path "\0" contents "\0"; shown by gwd in logs and /status
 *
 * Sections (id: record, count = number of records):
 *   STRIDX   { u32 off; u32 len; }       off into STRDATA; STRDATA[off+len]=='\0'
 *                                        string 0 is always "" (means "absent")
 *   STRDATA  bytes
 *   REGEX    gwb_regex                   compiled by the loader with PCRE2 + JIT
 *   CIDR     gwb_cidr
 *   CIDRSET  { u32 first; u32 count; }   a slice of CIDR
 *   UPSTREAM gwb_upstream
 *   SERVER   gwb_server
 *   ROUTE    gwb_route                   in file order: first match wins
 *   CODE     u32 words: all match and action programs
 *   INDEX    u32 words: host hash + path tries + candidate lists (see below)
 *   DEBUG    gwb_debug, one per route    route -> file:line:col
 *
 * Programs. An instruction is one word (opcode in the low 8 bits, the rest
 * zero) followed by exactly GWB_NARGS(op) operand words. Each operand has a
 * kind (GWB_K_*) that the verifier checks. Jumps are absolute word offsets
 * into CODE and must point *forward* inside the same program, onto an
 * instruction boundary or onto the program end, so every program ends.
 *
 *   match program [match_pc, match_end): one boolean register, the flag,
 *     initially false. Tests set it; JF/JT skip forward on it; NOT flips
 *     it; the last instruction is END and the route matches iff flag is true.
 *   action program: the directives in phase order (rewrite, access,
 *     content, header_filter, log), declaration order inside a phase,
 *     policies spliced where `use` stands; phase p is
 *     [phase_pc[p], phase_pc[p+1]). Every op is of the phase it is in; the
 *     content phase has exactly one action (PROXY, RESPOND or REDIRECT),
 *     optionally preceded by CACHE.
 *
 * Index (INDEX section). Semantics: gwb_match() returns the *lowest* route
 * number whose match program is true, exactly as walking ROUTE in order
 * would; the index only narrows which programs are run. Each route is filed
 * under one index key (gwb_index_key: host exact / wildcard suffix / any,
 * path exact / prefix / any, method mask) derived by the compiler from the
 * top-level conjunction of its match; routes whose match has no usable
 * conjunct are filed under (any host, prefix ""). With each route the
 * index carries what is left of its match program once the tests its key
 * implies are dropped (its residual; nothing when the match is exactly the
 * key), so that a lookup reads the index and nothing else. The detailed
 * layout is documented in gwb_index.c next to the code that writes and
 * walks it; the verifier checks every offset, every route number, that
 * each route is filed exactly once and that each residual is the one its
 * route's program and key give.
 *
 * Version history: 2.0 (byte-granular trie nodes grouped per host key,
 * residual programs in the index); 1.0 (word-aligned trie nodes).
 *
 * Limits a user can hit are errors from gwc ("too many routes (limit is
 * %u)"), never asserts.
 */
#ifndef GWB_H
#define GWB_H

#include <stddef.h>
#include <stdint.h>

#define GWB_MAGIC          "GWB\x01"
#define GWB_VERSION_MAJOR  2
#define GWB_VERSION_MINOR  0
#define GWB_HEADER_SIZE    64
#define GWB_NONE           0xffffffffu   /* "no such index" */

/* limits */
#define GWB_MAX_ROUTES     1000000u
#define GWB_MAX_STRINGS    (1u << 24)
#define GWB_MAX_STRLEN     (1u << 20)
#define GWB_MAX_REGEXES    65536u
#define GWB_MAX_UPSTREAMS  65536u
#define GWB_MAX_SERVERS    65536u      /* per upstream */
#define GWB_MAX_CODE       (1u << 28)  /* words */
#define GWB_MAX_ARGS       8
#define GWB_MAX_CAPTURES   10          /* $0..$9 */
#define GWB_MAX_FILE       (1u << 30)

enum gwb_section {
	GWB_SEC_STRIDX = 1, GWB_SEC_STRDATA, GWB_SEC_REGEX, GWB_SEC_CIDR,
	GWB_SEC_CIDRSET, GWB_SEC_UPSTREAM, GWB_SEC_SERVER, GWB_SEC_ROUTE,
	GWB_SEC_CODE, GWB_SEC_INDEX, GWB_SEC_DEBUG,
	GWB_SEC__COUNT
};

/* request phases, in execution order; MATCH is the predicate program */
enum gwb_phase {
	GWB_PH_REWRITE, GWB_PH_ACCESS, GWB_PH_CONTENT, GWB_PH_HFILTER,
	GWB_PH_LOG, GWB_PH__COUNT,
	GWB_PH_MATCH = 15
};

/* HTTP methods as bits (OTHER = any method not listed) */
#define GWB_METHOD_LIST(M) \
	M(GET, 0) M(HEAD, 1) M(POST, 2) M(PUT, 3) M(DELETE, 4) \
	M(PATCH, 5) M(OPTIONS, 6) M(CONNECT, 7) M(TRACE, 8)
#define GWB_M_OTHER   (1u << 9)
#define GWB_M_ALL     0x3ffu
#define GWB_M_(name, bit) GWB_M_##name = 1u << (bit),
enum { GWB_METHOD_LIST(GWB_M_) GWB_M__DUMMY };
#undef GWB_M_
/* method bit of a request method (GWB_M_OTHER if not one of the nine) */
uint32_t gwb_method_bit(const char *m, size_t n);

/* operand kinds: what the verifier checks for each operand word */
enum gwb_kind {
	GWB_K_U32,      /* any value */
	GWB_K_STR,      /* string index */
	GWB_K_TPL,      /* string index; text is a valid template (gwb_tpl_check) */
	GWB_K_RE,       /* regex index */
	GWB_K_CIDRS,    /* cidrset index */
	GWB_K_UPS,      /* upstream index */
	GWB_K_JMP,      /* forward jump target, see above */
	GWB_K_METHODS,  /* nonzero subset of GWB_M_ALL */
	GWB_K_STATUS,   /* 100..599 */
	GWB_K_KEY,      /* enum gwb_keykind */
	GWB_K_BOOL,     /* 0 or 1 */
	GWB_K_ENUM      /* small enum, < 16; meaning given per opcode */
};

/* what rate_limit / conn_limit / hash() key on */
enum gwb_keykind {
	GWB_KEY_CLIENT_IP, GWB_KEY_HEADER, GWB_KEY_QUERY, GWB_KEY_COOKIE,
	GWB_KEY_CONSUMER, GWB_KEY_ROUTE, GWB_KEY_PATH, GWB_KEY__COUNT
};

/* waf classes (bit mask) and modes */
#define GWB_WAF_SQLI      (1u << 0)
#define GWB_WAF_XSS       (1u << 1)
#define GWB_WAF_TRAVERSAL (1u << 2)
#define GWB_WAF_SCANNER   (1u << 3)
#define GWB_WAF_PROTOCOL  (1u << 4)
#define GWB_WAF_ALL       0x1fu
enum { GWB_WAF_BLOCK = 0, GWB_WAF_DETECT = 1 };
/* waf rule "in=" parts (bit mask) */
#define GWB_IN_ARGS    (1u << 0)
#define GWB_IN_HEADERS (1u << 1)
#define GWB_IN_BODY    (1u << 2)
#define GWB_IN_PATH    (1u << 3)

/* auth key source; jwt secret source; jwt algorithms (bit mask) */
enum { GWB_SRC_HEADER = 0, GWB_SRC_QUERY = 1, GWB_SRC_COOKIE = 2 };
enum { GWB_SECRET_LITERAL = 0, GWB_SECRET_ENV = 1, GWB_SECRET_FILE = 2 };
#define GWB_JWT_HS256 (1u << 0)
#define GWB_JWT_HS384 (1u << 1)
#define GWB_JWT_HS512 (1u << 2)
#define GWB_JWT_RS256 (1u << 3)
#define GWB_JWT_ES256 (1u << 4)

/*
 * The opcodes. OP(name, phase, nargs, k1, k2, k3, k4, k5, k6, k7, k8, doc)
 * Unused kinds are GWB_K_U32 and are not read (nargs says how many count).
 */
#define GWB_U GWB_K_U32   /* unused operand slot */
#define GWB_OPCODES(OP) \
/* ---- match programs ---- */ \
OP(END,        MATCH, 0, GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "end of program") \
OP(ANY,        MATCH, 0, GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = true") \
OP(HOST_EQ,    MATCH, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = host (lowercased, port stripped) == s") \
OP(HOST_WILD,  MATCH, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = host ends with \".\" s (s = suffix after \"*.\")") \
OP(PATH_EQ,    MATCH, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = path == s") \
OP(PATH_PREFIX,MATCH, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = path starts with s") \
OP(PATH_RE,    MATCH, 1, GWB_K_RE,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = regex matches path; captures kept for $1..$9") \
OP(METHOD,     MATCH, 1, GWB_K_METHODS,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = method bit in mask") \
OP(HEADER_EQ,  MATCH, 2, GWB_K_STR,GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = header a (any case) present with value b") \
OP(HEADER_HAS, MATCH, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = header a present") \
OP(QUERY_EQ,   MATCH, 2, GWB_K_STR,GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = query argument a (decoded) == b") \
OP(QUERY_HAS,  MATCH, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = query argument a present") \
OP(COOKIE_EQ,  MATCH, 2, GWB_K_STR,GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = cookie a == b") \
OP(COOKIE_HAS, MATCH, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = cookie a present") \
OP(IP_IN,      MATCH, 1, GWB_K_CIDRS,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = client address in cidr set") \
OP(NOT,        MATCH, 0, GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "flag = !flag") \
OP(JF,         MATCH, 1, GWB_K_JMP,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "if !flag goto a") \
OP(JT,         MATCH, 1, GWB_K_JMP,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "if flag goto a") \
/* ---- rewrite ---- */ \
OP(STRIP_PREFIX, REWRITE, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "rewrite path strip_prefix s") \
OP(REWRITE_RE,   REWRITE, 2, GWB_K_RE,GWB_K_TPL,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "rewrite path regex re tpl") \
OP(SET_REQ_HDR,  REWRITE, 2, GWB_K_STR,GWB_K_TPL,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "set_header request name tpl") \
OP(DEL_REQ_HDR,  REWRITE, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "remove_header request name") \
/* ---- access ---- */ \
OP(ALLOW,      ACCESS, 1, GWB_K_CIDRS,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "allow cidrs: first allow/deny that matches decides") \
OP(DENY,       ACCESS, 1, GWB_K_CIDRS,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "deny cidrs -> 403") \
OP(AUTH_KEY,   ACCESS, 3, GWB_K_ENUM,GWB_K_STR,GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "auth key: src(GWB_SRC_*), name, keys file") \
OP(AUTH_BASIC, ACCESS, 2, GWB_K_STR,GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "auth basic: htpasswd file, realm") \
OP(AUTH_JWT,   ACCESS, 8, GWB_K_ENUM,GWB_K_STR,GWB_K_U32,GWB_K_ENUM,GWB_K_STR,GWB_K_U32,GWB_K_STR,GWB_K_STR, \
   "auth jwt: secret src(GWB_SECRET_*), secret, alg mask, token src(GWB_SRC_*), token name (\"\"=Authorization Bearer), leeway s, \"iss\\naud\", claims \"claim:Header,...\"") \
OP(RATE_LIMIT, ACCESS, 5, GWB_K_U32,GWB_K_U32,GWB_K_U32,GWB_K_KEY,GWB_K_STR,GWB_U,GWB_U,GWB_U, "rate_limit: count per period_ms, burst, key, key name") \
OP(CONN_LIMIT, ACCESS, 3, GWB_K_U32,GWB_K_KEY,GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "conn_limit n key name") \
OP(WAF,        ACCESS, 3, GWB_K_U32,GWB_K_ENUM,GWB_K_U32,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "waf: classes mask, mode (GWB_WAF_BLOCK/DETECT), body bytes inspected") \
OP(WAF_RULE,   ACCESS, 3, GWB_K_STR,GWB_K_U32,GWB_K_RE,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "waf rule name in-mask regex -> 403") \
OP(BODY_LIMIT, ACCESS, 1, GWB_K_U32,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "body_limit bytes -> 413") \
/* ---- content ---- */ \
OP(CACHE,      CONTENT, 2, GWB_K_U32,GWB_K_TPL,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "cache ttl_ms key tpl (\"\" = method host path query)") \
OP(PROXY,      CONTENT, 2, GWB_K_UPS,GWB_K_U32,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "proxy upstream timeout_ms (0 = upstream's read_timeout)") \
OP(RESPOND,    CONTENT, 3, GWB_K_STATUS,GWB_K_TPL,GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "respond status body content_type") \
OP(REDIRECT,   CONTENT, 2, GWB_K_STATUS,GWB_K_TPL,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "redirect status location") \
/* ---- header_filter ---- */ \
OP(SET_RESP_HDR, HFILTER, 2, GWB_K_STR,GWB_K_TPL,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "set_header response name tpl") \
OP(DEL_RESP_HDR, HFILTER, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "remove_header response name") \
OP(CORS,       HFILTER, 5, GWB_K_STR,GWB_K_STR,GWB_K_STR,GWB_K_U32,GWB_K_BOOL,GWB_U,GWB_U,GWB_U, "cors origins methods headers max_age_s credentials") \
/* ---- log ---- */ \
OP(LOG_OFF,    LOG, 0, GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "no access log line") \
OP(LOG_SAMPLE, LOG, 1, GWB_K_U32,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "log a fraction: parts per million") \
OP(TAG,        LOG, 1, GWB_K_STR,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U,GWB_U, "label for metrics and access log")

#define GWB_OP_ENUM_(name, ph, n, a, b, c, d, e, f, g, h, doc) GWB_OP_##name,
enum gwb_op { GWB_OPCODES(GWB_OP_ENUM_) GWB_OP__COUNT, GWB_OP_INVALID = 255 };
#undef GWB_OP_ENUM_

/* opcode metadata, generated from the list (gwb_ops.c) */
typedef struct gwb_opinfo {
	const char *name;      /* "PATH_PREFIX" */
	uint8_t phase;         /* enum gwb_phase or GWB_PH_MATCH */
	uint8_t nargs;
	uint8_t kind[GWB_MAX_ARGS];
	const char *doc;
} gwb_opinfo;
extern const gwb_opinfo gwb_ops[GWB_OP__COUNT];
/* NULL for an opcode that is not in the list (never undefined behaviour) */
const gwb_opinfo *gwb_opinfo_get(uint32_t op);
const char *gwb_phase_name(unsigned phase);

/* ---------------------------------------------------------------- records */
typedef struct gwb_regex {
	uint32_t pattern;      /* STR */
	uint32_t flags;        /* GWB_RE_CASELESS */
	uint32_t ncap;         /* capture groups (informative; loader recomputes) */
	uint32_t reserved;
} gwb_regex;
#define GWB_RE_CASELESS 1u

typedef struct gwb_cidr {
	uint8_t family;        /* 4 or 6 */
	uint8_t prefix;        /* 0..32 or 0..128 */
	uint8_t pad[2];
	uint8_t addr[16];      /* network order; host bits zero; v4 in addr[0..3] */
} gwb_cidr;

enum gwb_balance {
	GWB_BAL_ROUND_ROBIN, GWB_BAL_LEAST_CONN, GWB_BAL_IP_HASH,
	GWB_BAL_HASH, GWB_BAL_RANDOM, GWB_BAL__COUNT
};

#define GWB_UPS_DYNAMIC     (1u << 0)  /* declared `dynamic`: servers come from the admin API */
#define GWB_UPS_HEALTH      (1u << 1)  /* health_check block present */
#define GWB_UPS_BREAKER     (1u << 2)  /* circuit_breaker block present */
#define GWB_UPS_TLS_NOVERIFY (1u << 3) /* tls_verify off */

/* retry_on bits; statuses are listed in retry_status[] */
#define GWB_RETRY_CONNECT   (1u << 0)
#define GWB_RETRY_TIMEOUT   (1u << 1)

typedef struct gwb_upstream {
	uint32_t name;                 /* STR */
	uint32_t flags;                /* GWB_UPS_* */
	uint32_t balance;              /* enum gwb_balance */
	uint32_t hash_key, hash_name;  /* for GWB_BAL_HASH: enum gwb_keykind, STR */
	uint32_t server_first, server_count; /* slice of SERVER */
	uint32_t keepalive;            /* idle connections kept per worker */
	uint32_t connect_timeout_ms, read_timeout_ms;
	uint32_t retries, retry_on;    /* default: 1, GWB_RETRY_CONNECT */
	uint32_t retry_status[4];      /* 0 = unused */
	/* health_check */
	uint32_t hc_path;              /* STR */
	uint32_t hc_interval_ms, hc_timeout_ms, hc_healthy, hc_unhealthy;
	uint32_t hc_expect_lo, hc_expect_hi;
	/* circuit_breaker */
	uint32_t cb_failures, cb_window_ms, cb_cooldown_ms;
	/* TLS to servers (https://) */
	uint32_t tls_ca, tls_sni, tls_cert, tls_key; /* STR, "" = none */
	uint32_t reserved[3];
} gwb_upstream;

#define GWB_SRV_BACKUP (1u << 0)
#define GWB_SRV_HTTPS  (1u << 1)

typedef struct gwb_server {
	uint32_t addr;                 /* STR "host:port" or "[v6]:port" */
	uint32_t flags;                /* GWB_SRV_* */
	uint32_t weight;               /* >= 1 */
	uint32_t max_fails;            /* 0 = never eject passively */
	uint32_t fail_timeout_ms;
	uint32_t reserved;
} gwb_server;

typedef struct gwb_route {
	uint32_t name;                 /* STR */
	uint32_t match_pc, match_end;  /* CODE words */
	uint32_t phase_pc[GWB_PH__COUNT + 1];
	uint32_t flags;                /* reserved, 0 */
} gwb_route;

typedef struct gwb_debug {
	uint32_t file;                 /* STR, path as given to gwc */
	uint32_t line, col;
	uint32_t reserved;
} gwb_debug;

/* ------------------------------------------------------- builder (gwc) */
typedef struct gwb_builder gwb_builder;

enum gwb_hostkind { GWB_HOST_ANY, GWB_HOST_EXACT, GWB_HOST_WILD };
enum gwb_pathkind { GWB_PATH_ANY, GWB_PATH_EXACT, GWB_PATH_PREFIX };

typedef struct gwb_index_key {
	uint8_t host_kind;     /* enum gwb_hostkind */
	uint8_t path_kind;     /* enum gwb_pathkind */
	uint16_t methods;      /* GWB_M_ALL when unconstrained */
	uint32_t host;         /* STR: lowercase host, or suffix after "*." */
	uint32_t path;         /* STR */
	uint32_t exact;        /* 1: the match is exactly these keys, the
	                          matcher may skip the match program */
} gwb_index_key;
/* The key must be implied by the match program (a request that fails the
 * key cannot match the route): the matcher only runs programs of routes
 * whose key the request meets. host is lowercase (the builder refuses
 * anything else); an unset key is (any host, any path, GWB_M_ALL). */

gwb_builder *gwb_builder_new(void);
void gwb_builder_free(gwb_builder *b);
uint32_t gwb_b_str(gwb_builder *b, const char *s, size_t len);   /* interned */
/* compiles the pattern with PCRE2 to check it: on error returns GWB_NONE
 * and fills err (PCRE2's message) and *erroff (offset in the pattern) */
uint32_t gwb_b_regex(gwb_builder *b, const char *pat, size_t len, uint32_t flags,
                     char *err, size_t errlen, size_t *erroff);
/* The literal text every match of pat starts with, when pat is anchored
 * with a leading '^', has no '|' and is not caseless ("^/docs/v1/(.*)$"
 * gives "/docs/v1/"); 0 when there is none. *whole (if non-NULL) is set
 * when pat is nothing but "^" and that literal, i.e. `path ~ pat` is
 * `path ^= literal`. Returns the length (at most cap). The builder uses it
 * to narrow a route's index key when the regex must match for the route
 * to match (gwb_b_route_end). */
size_t gwb_regex_prefix(const char *pat, size_t n, uint32_t flags, char *out, size_t cap,
                        int *whole);
uint32_t gwb_b_cidrset(gwb_builder *b, const gwb_cidr *v, size_t n);
/* u->server_first/count are set by the builder */
uint32_t gwb_b_upstream(gwb_builder *b, const gwb_upstream *u,
                        const gwb_server *s, size_t ns);
void gwb_b_source_hash(gwb_builder *b, const uint8_t hash[32]);

/* one route: begin, match code (ending with END), then for each phase in
 * order gwb_b_phase() + its actions, then the index key, then end.
 * Action programs have no END: phase_pc[] bounds them. Phases with no
 * action may be skipped; gwb_b_route_end() closes the remaining ones. */
void gwb_b_route_begin(gwb_builder *b, uint32_t name, uint32_t file,
                       uint32_t line, uint32_t col);
uint32_t gwb_b_pc(const gwb_builder *b);            /* next word offset */
/* appends op + operands (GWB_NARGS(op) words); returns its pc */
uint32_t gwb_b_emit(gwb_builder *b, enum gwb_op op, const uint32_t *args);
void gwb_b_patch(gwb_builder *b, uint32_t word, uint32_t value);
void gwb_b_match_done(gwb_builder *b);   /* match program ends here */
void gwb_b_phase(gwb_builder *b, enum gwb_phase ph);
void gwb_b_route_key(gwb_builder *b, const gwb_index_key *k);
void gwb_b_route_end(gwb_builder *b);
/* builds index and debug sections, lays out, checksums. Returns 0, or -1
 * with err filled (a limit was exceeded). *out is malloc'ed. */
int gwb_builder_finish(gwb_builder *b, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen);

/* ------------------------------------------------ loader + matcher (gwd) */
typedef struct gwb_table gwb_table;

/* Load and verify. On failure returns NULL and a one-line reason in err
 * ("bad magic", "checksum mismatch", "route 3: jump at 120 goes backward").
 * gwb_load_file mmaps read-only; gwb_load_mem copies the bytes. */
gwb_table *gwb_load_file(const char *path, char *err, size_t errlen);
gwb_table *gwb_load_mem(const void *buf, size_t len, char *err, size_t errlen);
void gwb_free(gwb_table *t);

/* accessors (indexes already verified; no bounds checks needed by users) */
uint32_t gwb_nroutes(const gwb_table *t);
const gwb_route *gwb_route_at(const gwb_table *t, uint32_t i);
const gwb_debug *gwb_debug_at(const gwb_table *t, uint32_t route);
uint32_t gwb_nupstreams(const gwb_table *t);
const gwb_upstream *gwb_upstream_at(const gwb_table *t, uint32_t i);
const gwb_server *gwb_server_at(const gwb_table *t, uint32_t i);
const char *gwb_str(const gwb_table *t, uint32_t idx, size_t *len); /* NUL-terminated */
const uint32_t *gwb_code(const gwb_table *t);
uint32_t gwb_ncidrsets(const gwb_table *t);
const gwb_cidr *gwb_cidrset(const gwb_table *t, uint32_t idx, uint32_t *count);
const void *gwb_regex_code(const gwb_table *t, uint32_t idx); /* pcre2_code* */
const uint8_t *gwb_source_hash(const gwb_table *t);          /* 32 bytes */
void gwb_source_hash_hex(const gwb_table *t, char out[65]);
int gwb_cidr_contains(const gwb_cidr *c, int family, const uint8_t *addr);
int gwb_cidrset_contains(const gwb_table *t, uint32_t set, int family, const uint8_t *addr);

/* A request as the matcher sees it. Strings need not be NUL-terminated. */
typedef struct gwb_request {
	const char *method; size_t method_len;
	const char *host;   size_t host_len;   /* as sent; matcher lowercases, strips :port */
	const char *path;   size_t path_len;   /* decoded + dot-segment normalised */
	const char *query;  size_t query_len;  /* raw, without '?' */
	/* header lookup, any case; returns 1 and sets *v,*vlen when present */
	int (*header)(void *ctx, const char *name, const char **v, size_t *vlen);
	void *ctx;
	int ip_family;                          /* 4 or 6, 0 = unknown */
	uint8_t ip[16];
} gwb_request;

typedef struct gwb_match {
	uint32_t route;                         /* GWB_NONE: no route matched */
	int ncap;                               /* captures of the last PATH_RE that matched */
	size_t cap[2 * GWB_MAX_CAPTURES];       /* offsets into request path; ~0 unset */
} gwb_match;

/* per-thread scratch (PCRE2 match data); independent of any table */
typedef struct gwb_scratch gwb_scratch;
gwb_scratch *gwb_scratch_new(void);
void gwb_scratch_free(gwb_scratch *s);

/* first route whose match is true (via the index); returns m->route */
uint32_t gwb_match_request(const gwb_table *t, const gwb_request *rq,
                           gwb_match *m, gwb_scratch *s);
/* run one route's match program; 1 if it matches. If trace is non-NULL it
 * is called for every test executed with its pc and result (gwc explain). */
typedef void (*gwb_trace_fn)(void *ctx, uint32_t pc, int result);
int gwb_eval_route(const gwb_table *t, uint32_t route, const gwb_request *rq,
                   gwb_match *m, gwb_scratch *s, gwb_trace_fn trace, void *tctx);

/* one instruction as text ("PATH_PREFIX \"/v1/\""), for dump and explain.
 * Returns the instruction's length in words (1 + operands), or -1 when pc
 * is not an instruction of the table (buf then says "??"). */
int gwb_disasm_insn(const gwb_table *t, uint32_t pc, char *buf, size_t len);
/* whole readable disassembly (gwc dump) */
void gwb_dump(const gwb_table *t, void *file /* FILE* */);

/* ---------------------------------------------------------- templates
 * Strings in actions: literal text with $1..$9 (captures), $$ (a dollar),
 * ${host} ${path} ${query} ${method} ${scheme} ${uri} ${client_ip}
 * ${request_id} ${header.NAME} ${tls.client_subject}. */
enum gwb_tplvar {
	GWB_V_HOST, GWB_V_PATH, GWB_V_QUERY, GWB_V_METHOD, GWB_V_SCHEME,
	GWB_V_URI, GWB_V_CLIENT_IP, GWB_V_REQUEST_ID, GWB_V_HEADER,
	GWB_V_TLS_CLIENT_SUBJECT, GWB_V__COUNT
};
/* 0 if valid; else -1 with *erroff = offset of the bad '$' and err text */
int gwb_tpl_check(const char *s, size_t n, size_t *erroff, char *err, size_t errlen);
/* variable lookup: return 1 and set *v,*vlen; name/namelen only for HEADER */
typedef int (*gwb_tpl_lookup)(void *ctx, enum gwb_tplvar var, const char *name,
                              size_t namelen, const char **v, size_t *vlen);
/* expands into out (at most cap bytes, always NUL-terminated when cap > 0);
 * returns the full length needed (like snprintf). subject/m give $1..$9. */
size_t gwb_tpl_expand(const char *s, size_t n, const char *subject,
                      const gwb_match *m, gwb_tpl_lookup lookup, void *ctx,
                      char *out, size_t cap);

/* Request path normalisation shared by gwd and gwc test/explain: percent-
 * decoding (%2F stays decoded: the matcher sees one canonical path), "//"
 * collapsed, "." and ".." segments resolved per RFC 3986 5.2.4. Returns 0,
 * or -1 for a path that must be refused with 400 (no leading '/', bad or
 * truncated %-escape, %00, ".." above the root, longer than cap). */
int gwb_path_normalize(const char *in, size_t n, char *out, size_t cap, size_t *outlen);
/* The same, except that a ".." above the root is dropped (as RFC 3986
 * 5.2.4 does) instead of refusing the path: returns 1 when that happened,
 * 0 when the path is as gwb_path_normalize has it, -1 for the other
 * refusals. gwd routes such a path on this form so the route's access
 * directives (waf traversal) can refuse it, and answers 400 if they pass. */
int gwb_path_normalize_clamped(const char *in, size_t n, char *out, size_t cap, size_t *outlen);

/* CRC-32 (IEEE) */
uint32_t gwb_crc32(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------------ reading a request
 * (additions: the matcher reads requests through these, and gwd's plugins
 * and gwc's reference evaluator should too, so that all agree.) */
/* length of the host key: the Host value minus ":port" and minus the
 * trailing dot of a fully qualified name ("a.example.com." is
 * "a.example.com", as in nginx); "[v6]:port" keeps "[v6]". Matching
 * compares it case-insensitively with lowercase keys. */
size_t gwb_host_key(const char *host, size_t n);
/* the same, lowercased into out (NUL-terminated when cap > 0); returns
 * the full length like snprintf */
size_t gwb_host_normalize(const char *in, size_t n, char *out, size_t cap);
/* first query argument whose name, form-decoded ('+' is a space, %XX a
 * byte, a bad '%' itself), equals name; *val is its raw (still encoded)
 * value, "" for an argument without '='. Arguments split on '&'. */
int gwb_query_find(const char *q, size_t qn, const char *name, size_t nn,
                   const char **val, size_t *vlen);
/* 1 if raw, form-decoded, equals s */
int gwb_form_eq(const char *raw, size_t rn, const char *s, size_t sn);
/* form-decodes into out (NUL-terminated when cap > 0); returns full length */
size_t gwb_form_decode(const char *in, size_t n, char *out, size_t cap);
/* first cookie named name (exact case) in a Cookie header value: pairs
 * split on ';', blanks around names and values trimmed, one pair of
 * surrounding double quotes removed from the value */
int gwb_cookie_find(const char *h, size_t n, const char *name, size_t nn,
                    const char **val, size_t *vlen);
/* "10.0.0.0/8", "::1/128", or an address alone (/32, /128). With strict,
 * host bits set are an error; otherwise they are cleared. 0 or -1. */
int gwb_cidr_parse(const char *s, size_t n, gwb_cidr *out, int strict);
/* "10.0.0.0/8"; returns snprintf's result */
int gwb_cidr_format(const gwb_cidr *c, char *buf, size_t len);

#endif /* GWB_H */

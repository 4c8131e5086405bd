/*
 * ast.h — the syntax tree of a .gwr rule set, as the parser builds it and
 * sema/emit/fmt/explain read it. Every node carries its source position.
 *
 * Directives are kept generic (name, positional values, key=value options,
 * optional nested block) so that the parser knows only the grammar and the
 * directive table in sema.c knows what each directive accepts: that is
 * where "unknown option, did you mean" and "wrong value type" come from.
 * The match expression is the one construct parsed into its own node type.
 *
 * Memory: every node and string of one ast_file is allocated from its arena
 * (ast_file.arena) and freed at once by ast_free().
 */
#ifndef GW_AST_H
#define GW_AST_H

#include <stddef.h>
#include <stdint.h>

typedef struct ast_pos {
	const char *file;      /* path as named (owned by the source list) */
	uint32_t line, col;    /* 1-based; col counts bytes */
	uint32_t src;          /* index into ast_file.sources */
} ast_pos;

/* ------------------------------------------------------------- values */
enum ast_vkind {
	AV_IDENT,     /* round_robin, GET, on, client_ip          -> s */
	AV_STRING,    /* "..." with escapes resolved              -> s, len */
	AV_INT,       /* 42                                       -> i */
	AV_DURATION,  /* 250ms 5s 2m 1h                           -> i (milliseconds) */
	              /* "Nm" is also the size N MiB (`body_limit 8m`): for a
	               * raw ending in "m" (not "ms") i2 = N << 20 so sema can
	               * accept it where a size is expected */
	AV_SIZE,      /* 16k 8m 1g (plain ints are AV_INT)        -> i (bytes) */
	AV_RATE,      /* 100r/s 6000r/m 1000r/h                   -> i (count), i2 (period ms) */
	AV_ADDR,      /* 10.0.0.7:8080 [::1]:8080 host:80, https://host:port -> s (as written) */
	AV_CIDR,      /* 10.0.0.0/8 ::1/128 (also a bare IP)      -> s (as written) */
	AV_RANGE,     /* 200..399                                 -> i, i2 */
	AV_CALL,      /* file("x") env("X") header("X") query("x") cookie("x") -> s = function name, args/nargs */
	AV_LIST,      /* ( v, v, ... )                            -> args/nargs */
	AV_FLOAT      /* 0.1 1.5 (`log sample=0.1`)               -> f */
};

typedef struct ast_value {
	enum ast_vkind kind;
	ast_pos pos;
	const char *s;  size_t len;   /* text (NUL-terminated too) */
	int64_t i, i2;
	struct ast_value *args; size_t nargs;
	const char *raw;              /* the token as written in the source (for fmt) */
	double f;                     /* AV_FLOAT */
} ast_value;

typedef struct ast_option {     /* key=value */
	const char *key;
	ast_pos pos;                 /* of the key */
	ast_value val;
} ast_option;

typedef struct ast_directive {
	const char *name;            /* "rate_limit", "server", "health_check" ... */
	ast_pos pos;
	ast_value *args; size_t nargs;          /* positional values, in order */
	ast_option *opts; size_t nopts;         /* key=value, in order */
	struct ast_directive *block; size_t nblock; /* nested { ... } if any */
	int has_block;
	/* `retries 2 on connect_error, 502;` — words after a keyword are kept
	 * as positional values; sema gives them meaning. */
} ast_directive;

/* ---------------------------------------------------- match expressions */
enum ast_ekind {
	AE_ANY, AE_AND, AE_OR, AE_NOT,
	AE_HOST_EQ,       /* s (lowercased); wildcard when it starts with "*." */
	AE_PATH_EQ, AE_PATH_PREFIX, AE_PATH_RE,  /* s */
	AE_METHOD,        /* methods: GWB_M_* mask (from `==` or `in (...)`) */
	AE_HEADER_EQ, AE_HEADER_HAS,  /* name, s */
	AE_QUERY_EQ, AE_QUERY_HAS,    /* name, s */
	AE_COOKIE_EQ, AE_COOKIE_HAS,  /* name, s */
	AE_IP_IN          /* cidrs/ncidrs: values of kind AV_CIDR */
};

typedef struct ast_expr {
	enum ast_ekind kind;
	ast_pos pos;                 /* of the operator's left operand / keyword */
	ast_pos vpos;                /* of the string operand (for regex errors) */
	struct ast_expr *a, *b;      /* AND/OR: a, b; NOT: a */
	const char *name;            /* header/query/cookie name */
	const char *s; size_t len;   /* compared value / pattern */
	uint32_t methods;
	ast_value *cidrs; size_t ncidrs;
} ast_expr;

/* ----------------------------------------------------------- top level */
enum ast_ikind { AI_UPSTREAM, AI_POLICY, AI_ROUTE };

typedef struct ast_item {
	enum ast_ikind kind;
	const char *name;
	ast_pos pos;                 /* of the keyword */
	ast_pos name_pos;
	int dynamic;                 /* upstream NAME dynamic */
	ast_expr *match;             /* routes: NULL when missing */
	ast_pos match_pos;
	int nmatch;                  /* how many `match` statements were seen */
	ast_directive *dirs; size_t ndirs;  /* body, in order (`use` is a directive) */
	const char *comment;         /* leading comment lines, for fmt (may be NULL) */
} ast_item;

typedef struct ast_source {
	const char *path;            /* as named (include paths resolved relative to includer) */
	const char *text; size_t len;
} ast_source;

typedef struct ast_file {
	ast_item *items; size_t nitems;   /* includes spliced in place */
	ast_source *sources; size_t nsources;
	void *arena;
} ast_file;

void ast_free(ast_file *f);

#endif /* GW_AST_H */

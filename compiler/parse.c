/*
 * parse.c — recursive-descent parser for .gwr files: tokens from the re2c
 * lexer (grammar/lexer.re) -> ast_file (compiler/ast.h). grammar/grammar.md
 * has the EBNF this file follows, function by function.
 *
 * The parser knows the grammar, not the directives: any NAME value* key=v*
 * ( ';' | block ) is accepted and sema.c decides what it means. Only the
 * match expression has its own syntax here.
 *
 * Errors never stop the parse. After one, the statement is skipped up to
 * the next ';' at its level or to the end of its block, and parsing goes
 * on, so a file with five mistakes reports five errors. A TK_ERROR token
 * has been reported by the lexer already: the statement holding it is
 * skipped without a second message.
 *
 * Allocation: every node lives in the file's arena. Arrays whose length is
 * unknown until their end (values, options, directives, items) are built
 * on scratch stacks owned by the parser and copied into the arena once
 * complete, so a 100k-route file costs no per-node malloc.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler.h"
#include "gwb.h"
#include "lex.h"

#define MAX_INCLUDE_DEPTH 64
#define MAX_SOURCE_SIZE   ((size_t)256 << 20)
/* blocks, parentheses, calls and `not`s nested deeper than this are an
 * error: the parser recurses on them and must not run out of stack on
 * hostile input (real rule files nest 2 or 3 deep) */
#define MAX_NEST          200
/* nodes in one match expression: `a or b or ...` is parsed by a loop but
 * makes a left-deep tree that later passes walk recursively */
#define MAX_EXPR_NODES    1000

/* ------------------------------------------------------- scratch stacks */
typedef struct stack {
	char *v;
	size_t n, cap, esz;
} stack;

static void *st_push(stack *s, const void *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char *v = realloc(s->v, cap * s->esz);
		if (!v) {
			fputs("gwc: out of memory\n", stderr);
			abort();
		}
		s->v = v;
		s->cap = cap;
	}
	memcpy(s->v + s->n * s->esz, e, s->esz);
	return s->v + s->n++ * s->esz;
}

/* move elements [from, n) into the arena and pop them */
static void *st_take(arena *A, stack *s, size_t from, size_t *count)
{
	void *p = NULL;

	*count = s->n - from;
	if (*count)
		p = arena_memdup(A, s->v + from * s->esz, *count * s->esz);
	s->n = from;
	return p;
}

/* --------------------------------------------------------------- parser */
struct incl {           /* a file on the include stack */
	dev_t dev;
	ino_t ino;
	uint32_t src;
};

typedef struct parser {
	ast_file *f;
	arena *A;
	diag_ctx *d;
	unsigned flags;
	lex_state L;
	lex_token tok;          /* current token */
	lex_token nxt;          /* one token of lookahead, when have_nxt */
	int have_nxt;
	lex_token prev;         /* the last token consumed */
	stack vals, opts, dirs, items, srcs;
	struct incl inc[MAX_INCLUDE_DEPTH];
	size_t ninc;
	int string_root;        /* parse_string: root includes resolve from cwd */
	int unterminated;       /* an unclosed block was reported; outer blocks stay quiet */
	int nest;               /* current recursion depth, against MAX_NEST */
	int nest_reported;
	size_t nexpr;           /* nodes of the current match expression */
	/* the run of whole-line comments just above the current token */
	const char *cmt_start, *cmt_end;
	uint32_t cmt_first, cmt_last;
	uint32_t last_line;     /* line of the last non-comment token */
} parser;

/* the block being parsed: which item, how deep (1 = item body) */
struct ctx {
	ast_item *item;
	int depth;
};

static const char *const top_keywords[] = { "include", "upstream", "policy", "route" };

static void lex_one(parser *P, lex_token *t)
{
	for (;;) {
		lex_next(&P->L, t);
		if (t->kind != TK_COMMENT)
			break;
		/* a comment alone on its line, continuing the run above it? */
		if (t->pos.line != P->last_line || P->last_line == 0) {
			if (P->cmt_start && t->pos.line == P->cmt_last + 1) {
				P->cmt_end = t->text + t->len;
			} else {
				P->cmt_start = t->text;
				P->cmt_end = t->text + t->len;
				P->cmt_first = t->pos.line;
			}
			P->cmt_last = t->pos.line;
		}
	}
	P->last_line = t->pos.line;
}

static void next(parser *P)
{
	P->prev = P->tok;
	if (P->have_nxt) {
		P->tok = P->nxt;
		P->have_nxt = 0;
	} else {
		lex_one(P, &P->tok);
	}
}

static const lex_token *peek(parser *P)
{
	if (!P->have_nxt) {
		lex_one(P, &P->nxt);
		P->have_nxt = 1;
	}
	return &P->nxt;
}

static int is_word(const lex_token *t, const char *w)
{
	size_t n = strlen(w);
	return t->kind == TK_IDENT && t->len == n && memcmp(t->text, w, n) == 0;
}

static char *tok_dup(parser *P, const lex_token *t)
{
	return arena_strndup(P->A, t->text, t->len);
}

/* every diagnostic carries a class for [-Wname] and JSON/SARIF ruleId:
 * "syntax" unless said otherwise (ERRC) */
#define ERR(P, pos, span, ...) diag_error((P)->d, pos, span, "syntax", __VA_ARGS__)
#define ERRC(P, cls, pos, span, ...) diag_error((P)->d, pos, span, cls, __VA_ARGS__)

/* "found 'name'", "found string", "found end of file" */
static const char *found(const lex_token *t, char *buf, size_t n)
{
	if (t->kind == TK_IDENT || t->kind == TK_INT || t->kind == TK_ADDR ||
	    t->kind == TK_CIDR || t->kind == TK_DURATION || t->kind == TK_SIZE)
		snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->text);
	else
		snprintf(buf, n, "%s", lex_kind_name(t->kind));
	return buf;
}

/* "expected WHAT, found X" at the current token, unless the lexer has
 * reported it already */
static void expected(parser *P, const char *what)
{
	char b[64];

	if (P->tok.kind == TK_ERROR)
		return;
	ERR(P, P->tok.pos, P->tok.kind == TK_EOF ? 1 : P->tok.len,
	    "expected %s, found %s", what, found(&P->tok, b, sizeof b));
}

/* the position just after the previous token, where a missing ';' goes */
static ast_pos after_prev(const parser *P)
{
	ast_pos p = P->prev.pos;
	p.col += P->prev.len;
	return p;
}

/* enter one level of nesting; 0 (reported once) when too deep */
static int nest_in(parser *P, const lex_token *t)
{
	if (P->nest >= MAX_NEST) {
		if (!P->nest_reported)
			ERR(P, t->pos, t->len ? t->len : 1,
			    "nested too deeply (the limit is %d levels)", MAX_NEST);
		P->nest_reported = 1;
		return 0;
	}
	P->nest++;
	return 1;
}

/* Recovery: skip to the end of the current statement — a ';' at this
 * level (consumed), a block (consumed), or the '}' closing the enclosing
 * block (left for it). */
static void skip_stmt(parser *P)
{
	int depth = 0;

	for (;;) {
		switch (P->tok.kind) {
		case TK_EOF:
			return;
		case TK_SEMI:
			next(P);
			if (depth == 0)
				return;
			break;
		case TK_LBRACE:
			depth++;
			next(P);
			break;
		case TK_RBRACE:
			if (depth == 0)
				return;
			next(P);
			if (--depth == 0)
				return;
			break;
		default:
			next(P);
		}
	}
}

/* A new top-level item inside a block means the block was never closed:
 * `route NAME`, `upstream NAME`, `policy NAME` or `include "..."`, not
 * indented past the item whose block is open (an indented one is a
 * misplaced statement, reported as such). */
static int starts_item(parser *P, const struct ctx *c)
{
	const lex_token *n;

	if (P->tok.kind != TK_IDENT || !c->item || P->tok.pos.col > c->item->pos.col)
		return 0;
	if (is_word(&P->tok, "route") || is_word(&P->tok, "upstream") ||
	    is_word(&P->tok, "policy")) {
		n = peek(P);
		return n->kind == TK_IDENT;
	}
	if (is_word(&P->tok, "include"))
		return peek(P)->kind == TK_STRING;
	return 0;
}

/* A directive's words normally stay on its line or continue indented. An
 * identifier at the start of a line, not indented past the directive and
 * not a key=, is the next statement: the ';' before it is missing. */
static int missing_semi(parser *P, const ast_pos *start)
{
	if (P->tok.kind != TK_IDENT || P->tok.pos.line <= P->prev.pos.line ||
	    P->tok.pos.col > start->col || peek(P)->kind == TK_ASSIGN)
		return 0;
	ERR(P, after_prev(P), 1, "expected ';' at the end of the statement");
	return 1;
}

/* --------------------------------------------------------------- values */
static int parse_value(parser *P, ast_value *v);

/* '(' already consumed: v, v, ... ')' into args */
static int parse_list(parser *P, ast_pos open, ast_value **args, size_t *nargs)
{
	size_t base = P->vals.n;
	ast_value v;

	if (!nest_in(P, &P->prev))
		return 0;
	if (P->tok.kind != TK_RPAREN) {
		for (;;) {
			if (!parse_value(P, &v))
				goto fail;
			st_push(&P->vals, &v);
			if (P->tok.kind == TK_COMMA) {
				next(P);
				continue;
			}
			if (P->tok.kind == TK_RPAREN)
				break;
			if (P->tok.kind == TK_EOF || P->tok.kind == TK_SEMI ||
			    P->tok.kind == TK_LBRACE || P->tok.kind == TK_RBRACE) {
				if (P->tok.kind != TK_ERROR)
					ERR(P, open, 1, "'(' is never closed");
			} else {
				expected(P, "',' or ')'");
			}
			goto fail;
		}
	}
	next(P);
	*args = st_take(P->A, &P->vals, base, nargs);
	P->nest--;
	return 1;
fail:
	P->vals.n = base;
	P->nest--;
	return 0;
}

static int parse_value(parser *P, ast_value *v)
{
	const lex_token *t = &P->tok;

	memset(v, 0, sizeof *v);
	v->pos = t->pos;
	switch (t->kind) {
	case TK_IDENT:
		v->s = v->raw = tok_dup(P, t);
		v->len = t->len;
		if (peek(P)->kind == TK_LPAREN) {
			ast_pos open = P->nxt.pos;
			v->kind = AV_CALL;
			next(P);
			next(P);
			return parse_list(P, open, &v->args, &v->nargs);
		}
		v->kind = AV_IDENT;
		break;
	case TK_STRING:
		v->kind = AV_STRING;
		v->s = t->s;
		v->len = t->slen;
		v->raw = tok_dup(P, t);
		break;
	case TK_LPAREN: {
		ast_pos open = t->pos;
		v->kind = AV_LIST;
		v->raw = "(";
		next(P);
		return parse_list(P, open, &v->args, &v->nargs);
	}
	case TK_INT:      v->kind = AV_INT; goto num;
	case TK_DURATION: v->kind = AV_DURATION; goto num;
	case TK_SIZE:     v->kind = AV_SIZE; goto num;
	case TK_RATE:     v->kind = AV_RATE; goto num;
	case TK_RANGE:    v->kind = AV_RANGE; goto num;
	case TK_ADDR:     v->kind = AV_ADDR; goto num;
	case TK_CIDR:     v->kind = AV_CIDR; goto num;
	case TK_FLOAT:    v->kind = AV_FLOAT; goto num;
	num:
		v->s = v->raw = tok_dup(P, t);
		v->len = t->len;
		v->i = t->i;
		v->i2 = t->i2;
		v->f = t->f;
		break;
	default:
		expected(P, "a value");
		return 0;
	}
	next(P);
	return 1;
}

/* ---------------------------------------------------- match expressions */
#define METHOD_NAME_(name, bit) #name,
static const char *const method_names[] = { GWB_METHOD_LIST(METHOD_NAME_) };
#undef METHOD_NAME_
#define NMETHODS (sizeof method_names / sizeof method_names[0])

static const char *const match_words[] = {
	"host", "path", "method", "header", "query", "cookie", "client_ip", "any", "not"
};

static ast_expr *new_expr(parser *P, enum ast_ekind k, ast_pos pos)
{
	ast_expr *e = arena_alloc(P->A, sizeof *e);
	P->nexpr++;
	e->kind = k;
	e->pos = pos;
	return e;
}

static ast_expr *parse_or(parser *P);

/* the current token must be a string: fill e->s/len/vpos */
static int expr_string(parser *P, ast_expr *e, const char *after)
{
	char what[80];

	if (P->tok.kind != TK_STRING) {
		snprintf(what, sizeof what, "a string after %s", after);
		expected(P, what);
		return 0;
	}
	e->s = P->tok.s;
	e->len = P->tok.slen;
	e->vpos = P->tok.pos;
	next(P);
	return 1;
}

/* one method name -> its bit, or 0 after reporting */
static uint32_t method_bit(parser *P)
{
	const char *sug;
	char *w;

	if (P->tok.kind == TK_STRING) {
		ERR(P, P->tok.pos, P->tok.len,
		    "method names are not quoted: write %s without the quotes", P->tok.s);
		return 0;
	}
	if (P->tok.kind != TK_IDENT) {
		expected(P, "a method name (GET, POST, ...)");
		return 0;
	}
	for (size_t i = 0; i < NMETHODS; i++)
		if (is_word(&P->tok, method_names[i])) {
			next(P);
			return 1u << i;
		}
	w = tok_dup(P, &P->tok);
	sug = diag_suggest(w, method_names, NMETHODS);
	if (sug)
		ERR(P, P->tok.pos, P->tok.len, "unknown method '%s'; did you mean '%s'?", w, sug);
	else
		ERR(P, P->tok.pos, P->tok.len,
		    "unknown method '%s' (GET HEAD POST PUT DELETE PATCH OPTIONS CONNECT TRACE)", w);
	return 0;
}

/* host == "a.example.com" | "*.example.com": lowercased and checked. The
 * string is the lexer's private copy of the token, lowercased in place. */
static int check_host(parser *P, ast_expr *e, uint32_t span)
{
	char *h = (char *)e->s;
	const char *star;

	for (char *c = h; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c | 0x20);
	if (e->len == 0) {
		ERR(P, e->vpos, span, "empty host");
		return 0;
	}
	star = strchr(h, '*');
	if (star && (star != h || h[1] != '.' || h[2] == '\0' || h[2] == '.' ||
	             strchr(h + 1, '*'))) {
		ERR(P, e->vpos, span,
		    "invalid host wildcard \"%s\": only a leading '*.' followed by a domain "
		    "is allowed (e.g. \"*.example.com\")", h);
		return 0;
	}
	if (h[0] != '[' && strchr(h, ':')) {
		ERR(P, e->vpos, span,
		    "host \"%s\" has a port; hosts are matched without the port", h);
		return 0;
	}
	return 1;
}

/* header("X") [== "v"], query(...), cookie(...) */
static ast_expr *parse_keyed(parser *P, enum ast_ekind eq, enum ast_ekind has,
                             const char *fn)
{
	ast_expr *e = new_expr(P, has, P->tok.pos);
	char what[64];

	next(P);
	if (P->tok.kind != TK_LPAREN) {
		snprintf(what, sizeof what, "'(' after '%s'", fn);
		expected(P, what);
		return NULL;
	}
	next(P);
	if (P->tok.kind != TK_STRING) {
		snprintf(what, sizeof what, "a quoted name in %s(...)", fn);
		expected(P, what);
		return NULL;
	}
	if (P->tok.slen == 0) {
		ERR(P, P->tok.pos, P->tok.len, "empty name in %s(...)", fn);
		return NULL;
	}
	e->name = P->tok.s;
	next(P);
	if (P->tok.kind != TK_RPAREN) {
		expected(P, "')'");
		return NULL;
	}
	next(P);
	if (P->tok.kind == TK_EQ) {
		next(P);
		e->kind = eq;
		snprintf(what, sizeof what, "'%s(...) =='", fn);
		if (!expr_string(P, e, what))
			return NULL;
	} else if (P->tok.kind == TK_PREFIX || P->tok.kind == TK_TILDE) {
		ERR(P, P->tok.pos, P->tok.len, "%s(...) supports '==' or presence only", fn);
		return NULL;
	}
	return e;
}

static ast_expr *parse_primary(parser *P)
{
	const lex_token *t = &P->tok;
	ast_expr *e;
	char b[64];

	if (t->kind == TK_LPAREN) {
		ast_pos open = t->pos;
		if (!nest_in(P, t))
			return NULL;
		next(P);
		e = parse_or(P);
		P->nest--;
		if (!e)
			return NULL;
		if (P->tok.kind != TK_RPAREN) {
			if (P->tok.kind == TK_ERROR)
				return NULL;
			ERR(P, P->tok.pos, P->tok.kind == TK_EOF ? 1 : P->tok.len,
			    "expected ')' to close the '(' at %u:%u, found %s",
			    open.line, open.col, found(&P->tok, b, sizeof b));
			return NULL;
		}
		next(P);
		return e;
	}
	if (t->kind != TK_IDENT) {
		expected(P, "a match condition (host, path, method, header, query, cookie, client_ip, any)");
		return NULL;
	}
	if (is_word(t, "any")) {
		e = new_expr(P, AE_ANY, t->pos);
		next(P);
		return e;
	}
	if (is_word(t, "host")) {
		e = new_expr(P, AE_HOST_EQ, t->pos);
		next(P);
		if (P->tok.kind != TK_EQ) {
			if (P->tok.kind == TK_PREFIX || P->tok.kind == TK_TILDE)
				ERR(P, P->tok.pos, P->tok.len,
				    "host supports only '==' (use \"*.example.com\" for a wildcard)");
			else
				expected(P, "'==' after 'host'");
			return NULL;
		}
		next(P);
		if (!expr_string(P, e, "'host =='"))
			return NULL;
		return check_host(P, e, P->prev.len) ? e : NULL;
	}
	if (is_word(t, "path")) {
		e = new_expr(P, AE_PATH_EQ, t->pos);
		next(P);
		switch (P->tok.kind) {
		case TK_EQ: e->kind = AE_PATH_EQ; break;
		case TK_PREFIX: e->kind = AE_PATH_PREFIX; break;
		case TK_TILDE: e->kind = AE_PATH_RE; break;
		default:
			expected(P, "'==', '^=' or '~' after 'path'");
			return NULL;
		}
		next(P);
		return expr_string(P, e, "the 'path' operator") ? e : NULL;
	}
	if (is_word(t, "method")) {
		uint32_t bit;
		e = new_expr(P, AE_METHOD, t->pos);
		next(P);
		if (P->tok.kind == TK_EQ) {
			next(P);
			if (!(bit = method_bit(P)))
				return NULL;
			e->methods = bit;
			return e;
		}
		if (!is_word(&P->tok, "in")) {
			expected(P, "'==' or 'in' after 'method'");
			return NULL;
		}
		next(P);
		if (P->tok.kind != TK_LPAREN) {
			expected(P, "'(' after 'method in'");
			return NULL;
		}
		next(P);
		for (;;) {
			if (!(bit = method_bit(P)))
				return NULL;
			e->methods |= bit;
			if (P->tok.kind == TK_COMMA) {
				next(P);
				continue;
			}
			if (P->tok.kind == TK_RPAREN)
				break;
			expected(P, "',' or ')' in the method list");
			return NULL;
		}
		next(P);
		return e;
	}
	if (is_word(t, "header"))
		return parse_keyed(P, AE_HEADER_EQ, AE_HEADER_HAS, "header");
	if (is_word(t, "query"))
		return parse_keyed(P, AE_QUERY_EQ, AE_QUERY_HAS, "query");
	if (is_word(t, "cookie"))
		return parse_keyed(P, AE_COOKIE_EQ, AE_COOKIE_HAS, "cookie");
	if (is_word(t, "client_ip")) {
		size_t base = P->vals.n;
		ast_value v;
		e = new_expr(P, AE_IP_IN, t->pos);
		next(P);
		if (!is_word(&P->tok, "in")) {
			expected(P, "'in' after 'client_ip'");
			return NULL;
		}
		next(P);
		if (P->tok.kind == TK_CIDR) {
			parse_value(P, &v);
			e->cidrs = arena_memdup(P->A, &v, sizeof v);
			e->ncidrs = 1;
			return e;
		}
		if (P->tok.kind != TK_LPAREN) {
			expected(P, "a CIDR or a list of CIDRs after 'client_ip in'");
			return NULL;
		}
		next(P);
		for (;;) {
			if (P->tok.kind != TK_CIDR) {
				expected(P, "a CIDR (10.0.0.0/8, ::1/128, 10.0.0.1)");
				P->vals.n = base;
				return NULL;
			}
			parse_value(P, &v);
			st_push(&P->vals, &v);
			if (P->tok.kind == TK_COMMA) {
				next(P);
				continue;
			}
			if (P->tok.kind == TK_RPAREN)
				break;
			expected(P, "',' or ')' in the CIDR list");
			P->vals.n = base;
			return NULL;
		}
		next(P);
		e->cidrs = st_take(P->A, &P->vals, base, &e->ncidrs);
		return e;
	}
	{
		char *w = tok_dup(P, t);
		const char *sug = diag_suggest(w, match_words, sizeof match_words / sizeof *match_words);
		if (sug)
			ERR(P, t->pos, t->len, "unknown match condition '%s'; did you mean '%s'?", w, sug);
		else
			ERR(P, t->pos, t->len,
			    "unknown match condition '%s' (host, path, method, header, query, cookie, client_ip, any)", w);
	}
	return NULL;
}

static ast_expr *parse_not(parser *P)
{
	if (is_word(&P->tok, "not")) {
		ast_expr *e = new_expr(P, AE_NOT, P->tok.pos);
		if (!nest_in(P, &P->tok))
			return NULL;
		next(P);
		e->a = parse_not(P);
		P->nest--;
		return e->a ? e : NULL;
	}
	return parse_primary(P);
}

static ast_expr *parse_and(parser *P)
{
	ast_expr *a = parse_not(P), *e;

	while (a && is_word(&P->tok, "and")) {
		next(P);
		e = new_expr(P, AE_AND, a->pos);
		e->a = a;
		if (!(e->b = parse_not(P)))
			return NULL;
		a = e;
	}
	return a;
}

static ast_expr *parse_or(parser *P)
{
	ast_expr *a = parse_and(P), *e;

	while (a && is_word(&P->tok, "or")) {
		next(P);
		e = new_expr(P, AE_OR, a->pos);
		e->a = a;
		if (!(e->b = parse_and(P)))
			return NULL;
		a = e;
	}
	return a;
}

/* match EXPR ; — the current token is `match` */
static void parse_match(parser *P, struct ctx *c)
{
	ast_pos pos = P->tok.pos;
	ast_item *it = c->item;
	int in_route = it && it->kind == AI_ROUTE && c->depth == 1;
	ast_expr *e;
	char b[64];

	if (!in_route)
		ERR(P, pos, 5, "'match' is only allowed directly inside a route");
	else if (++it->nmatch == 2)
		ERR(P, pos, 5, "route '%s' has two match statements", it->name);
	else if (it->nmatch > 2)
		ERR(P, pos, 5, "route '%s' has %d match statements", it->name, it->nmatch);
	if (in_route && it->nmatch == 2)
		diag_note(P->d, it->match_pos, 5, "the first match statement is here");
	if (in_route && it->nmatch == 1)
		it->match_pos = pos;
	next(P);
	P->nexpr = 0;
	if (!(e = parse_or(P))) {
		skip_stmt(P);
		return;
	}
	if (P->nexpr > MAX_EXPR_NODES) {
		ERRC(P, "limit", pos, 5, "match expression too long (the limit is %d conditions and operators)",
		    MAX_EXPR_NODES);
		skip_stmt(P);
		return;
	}
	if (P->tok.kind == TK_SEMI) {
		next(P);
	} else if (!missing_semi(P, &pos)) {
		if (P->tok.kind != TK_ERROR)
			ERR(P, P->tok.pos, P->tok.kind == TK_EOF ? 1 : P->tok.len,
			    "expected 'and', 'or' or ';' after the match condition, found %s",
			    found(&P->tok, b, sizeof b));
		skip_stmt(P);
		return;
	}
	if (in_route && it->nmatch == 1)
		it->match = e;
}

/* ----------------------------------------------------------- directives */
static void parse_block(parser *P, struct ctx *c, ast_directive **dirs, size_t *ndirs);

/* key=a, b, c (the current token is the ','): the list (a, b, c), as an
 * nginx/Kong operator writes `cors methods=GET,POST`; a ',' before the
 * next key=value is still refused */
static int option_list(parser *P, ast_value *v)
{
	size_t base = P->vals.n;
	ast_value first = *v, e;
	st_push(&P->vals, &first);
	while (P->tok.kind == TK_COMMA) {
		ast_pos comma = P->tok.pos;
		next(P);
		if (P->tok.kind == TK_IDENT && peek(P)->kind == TK_ASSIGN) {
			ERR(P, comma, 1, "unexpected ',' after key=value (commas separate values)");
			goto fail;
		}
		if (!parse_value(P, &e))
			goto fail;
		st_push(&P->vals, &e);
	}
	memset(v, 0, sizeof *v);
	v->kind = AV_LIST;
	v->raw = "(";
	v->pos = first.pos;
	v->args = st_take(P->A, &P->vals, base, &v->nargs);
	return 1;
fail:
	P->vals.n = base;
	return 0;
}

/* NAME value* (key=value)* ( ';' | '{' directive* '}' ), values and
 * options in any order, commas allowed between positional values */
static void parse_directive(parser *P, struct ctx *c)
{
	enum { NONE, VALUE, OPTION, COMMA } last = NONE;
	size_t vbase = P->vals.n, obase = P->opts.n;
	ast_directive dr;

	if (P->tok.kind != TK_IDENT) {
		expected(P, "a directive name");
		skip_stmt(P);
		return;
	}
	if (is_word(&P->tok, "match")) {
		parse_match(P, c);
		return;
	}
	if (is_word(&P->tok, "include")) {
		ERR(P, P->tok.pos, P->tok.len, "'include' is only allowed at the top level");
		skip_stmt(P);
		return;
	}
	memset(&dr, 0, sizeof dr);
	dr.name = tok_dup(P, &P->tok);
	dr.pos = P->tok.pos;
	next(P);
	for (;;) {
		enum tok_kind k = P->tok.kind;
		if (k == TK_SEMI || k == TK_LBRACE || k == TK_RBRACE || k == TK_EOF)
			break;
		if (last != COMMA && missing_semi(P, &dr.pos))
			goto done;
		if (k == TK_IDENT && peek(P)->kind == TK_ASSIGN) {
			ast_option o;
			if (last == COMMA) {
				expected(P, "a value after ','");
				goto fail;
			}
			o.key = tok_dup(P, &P->tok);
			o.pos = P->tok.pos;
			next(P);
			next(P);
			if (!parse_value(P, &o.val))
				goto fail;
			if (P->tok.kind == TK_COMMA && !option_list(P, &o.val))
				goto fail;
			st_push(&P->opts, &o);
			last = OPTION;
			continue;
		}
		if (k == TK_COMMA) {
			if (last != VALUE) {
				ERR(P, P->tok.pos, 1, "unexpected ','%s",
				    last == OPTION ? " after key=value (commas separate values)" : "");
				goto fail;
			}
			next(P);
			last = COMMA;
			continue;
		}
		{
			ast_value v;
			if (!parse_value(P, &v))
				goto fail;
			st_push(&P->vals, &v);
			last = VALUE;
		}
	}
	if (last == COMMA) {
		expected(P, "a value after ','");
		goto fail;
	}
	if (P->tok.kind == TK_SEMI) {
		next(P);
	} else if (P->tok.kind == TK_LBRACE) {
		struct ctx inner = { c->item, c->depth + 1 };
		if (!nest_in(P, &P->tok))
			goto fail;
		dr.args = st_take(P->A, &P->vals, vbase, &dr.nargs);
		dr.opts = st_take(P->A, &P->opts, obase, &dr.nopts);
		dr.has_block = 1;
		parse_block(P, &inner, &dr.block, &dr.nblock);
		P->nest--;
		st_push(&P->dirs, &dr);
		return;
	} else {
		/* '}' or end of file: keep the directive, it is complete but for
		 * the ';' */
		ERR(P, after_prev(P), 1, "expected ';' after '%s'", dr.name);
	}
done:
	dr.args = st_take(P->A, &P->vals, vbase, &dr.nargs);
	dr.opts = st_take(P->A, &P->opts, obase, &dr.nopts);
	st_push(&P->dirs, &dr);
	return;
fail:
	P->vals.n = vbase;
	P->opts.n = obase;
	skip_stmt(P);
}

/* '{' directive* '}' — the current token is '{' */
static void parse_block(parser *P, struct ctx *c, ast_directive **dirs, size_t *ndirs)
{
	ast_pos open = P->tok.pos;
	size_t base = P->dirs.n;
	size_t open_strings = P->L.nopen_strings;

	next(P);
	for (;;) {
		if (P->tok.kind == TK_RBRACE) {
			next(P);
			break;
		}
		if (P->tok.kind == TK_EOF || starts_item(P, c)) {
			/* an unterminated string inside swallowed the '}' of its
			 * line: that error is the one to fix, not a second one */
			if (!P->unterminated && P->L.nopen_strings == open_strings) {
				if (P->tok.kind == TK_EOF)
					ERR(P, open, 1, "unterminated block: '{' opened here is never closed");
				else
					ERR(P, open, 1,
					    "unterminated block: '{' opened here is never closed "
					    "('%.*s' on line %u starts a new item)",
					    (int)P->tok.len, P->tok.text, P->tok.pos.line);
			}
			P->unterminated = 1;
			break;
		}
		parse_directive(P, c);
	}
	*dirs = st_take(P->A, &P->dirs, base, ndirs);
}

/* ------------------------------------------------------------ top level */
static void parse_include(parser *P);

/* the comment lines right above line `line`, or NULL */
static const char *leading_comment(parser *P, uint32_t line)
{
	if (!P->cmt_start || P->cmt_last + 1 != line)
		return NULL;
	return arena_strndup(P->A, P->cmt_start, (size_t)(P->cmt_end - P->cmt_start));
}

/* upstream NAME [dynamic] ( '{' ... '}' | ';' ), policy NAME {...}, route NAME {...} */
static void parse_item(parser *P, enum ast_ikind kind)
{
	ast_item it;
	struct ctx c;
	char what[64];
	const char *kw = kind == AI_ROUTE ? "route" : kind == AI_POLICY ? "policy" : "upstream";

	memset(&it, 0, sizeof it);
	it.kind = kind;
	it.pos = P->tok.pos;
	it.comment = leading_comment(P, P->tok.pos.line);
	next(P);
	if (P->tok.kind != TK_IDENT) {
		snprintf(what, sizeof what, "a name after '%s'", kw);
		expected(P, what);
		skip_stmt(P);
		return;
	}
	it.name = tok_dup(P, &P->tok);
	it.name_pos = P->tok.pos;
	next(P);
	if (kind == AI_UPSTREAM && is_word(&P->tok, "dynamic")) {
		it.dynamic = 1;
		next(P);
	}
	if (P->tok.kind == TK_SEMI && it.dynamic) {
		next(P);
		st_push(&P->items, &it);
		return;
	}
	if (P->tok.kind != TK_LBRACE) {
		snprintf(what, sizeof what, kind == AI_UPSTREAM && !it.dynamic ?
		         "'{' or 'dynamic' after '%s %s'" : "'{' after '%s %s'", kw, it.name);
		expected(P, what);
		skip_stmt(P);
		return;
	}
	c.item = &it;
	c.depth = 1;
	parse_block(P, &c, &it.dirs, &it.ndirs);
	st_push(&P->items, &it);
}

static void parse_top(parser *P)
{
	while (P->tok.kind != TK_EOF) {
		P->unterminated = 0;
		if (is_word(&P->tok, "include")) {
			parse_include(P);
		} else if (is_word(&P->tok, "upstream")) {
			parse_item(P, AI_UPSTREAM);
		} else if (is_word(&P->tok, "policy")) {
			parse_item(P, AI_POLICY);
		} else if (is_word(&P->tok, "route")) {
			parse_item(P, AI_ROUTE);
		} else if (P->tok.kind == TK_IDENT) {
			char *w = tok_dup(P, &P->tok);
			const char *sug = diag_suggest(w, top_keywords, 4);
			if (sug)
				ERR(P, P->tok.pos, P->tok.len,
				    "unknown top-level keyword '%s'; did you mean '%s'?", w, sug);
			else
				ERR(P, P->tok.pos, P->tok.len,
				    "unknown top-level keyword '%s' (expected include, upstream, policy or route)", w);
			skip_stmt(P);
		} else if (P->tok.kind == TK_RBRACE) {
			ERR(P, P->tok.pos, 1, "unexpected '}' (no block is open)");
			next(P);
		} else {
			expected(P, "'include', 'upstream', 'policy' or 'route'");
			skip_stmt(P);
		}
	}
}

/* ------------------------------------------------------------- includes */
static uint32_t add_source(parser *P, const char *path, const char *text, size_t len)
{
	ast_source s = { path, text, len };

	st_push(&P->srcs, &s);
	return (uint32_t)(P->srcs.n - 1);
}

static const ast_source *source(parser *P, uint32_t i)
{
	return (const ast_source *)P->srcs.v + i;
}

/* read a whole file into the arena, NUL-terminated (the lexer's sentinel) */
static int read_file(parser *P, int fd, const struct stat *st, char **text, size_t *len)
{
	size_t n = 0, size = (size_t)st->st_size;
	char *buf;

	if (size > MAX_SOURCE_SIZE) {
		errno = EFBIG;
		return -1;
	}
	buf = arena_raw(P->A, size + 1);
	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

/* lex and parse source `src` from the top; the caller saved its own state */
static void parse_source(parser *P, uint32_t src)
{
	const ast_source *s = source(P, src);

	lex_init(&P->L, s->text, s->len, s->path, src, P->d, P->A);
	P->L.comments = 1;
	P->have_nxt = 0;
	P->cmt_start = NULL;
	P->last_line = 0;
	memset(&P->prev, 0, sizeof P->prev);
	next(P);
	parse_top(P);
}

static void include_one(parser *P, const char *path, ast_pos pos, uint32_t span)
{
	struct stat st;
	char *text;
	size_t len;
	uint32_t src;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ERRC(P, "include", pos, span, "cannot open included file '%s': %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ERRC(P, "include", pos, span, "included file '%s' is not a regular file", path);
		close(fd);
		return;
	}
	for (size_t i = 0; i < P->ninc; i++) {
		if (P->inc[i].dev != st.st_dev || P->inc[i].ino != st.st_ino)
			continue;
		/* the chain from the file that comes back to the top of the stack */
		{
			size_t cap = 64, n = 0;
			char *msg;
			for (size_t j = i; j < P->ninc; j++)
				cap += strlen(source(P, P->inc[j].src)->path) + 4;
			cap += strlen(path);
			msg = malloc(cap);
			if (!msg)
				abort();
			for (size_t j = i; j < P->ninc; j++)
				n += (size_t)snprintf(msg + n, cap - n, "%s -> ",
				                      source(P, P->inc[j].src)->path);
			snprintf(msg + n, cap - n, "%s", path);
			ERRC(P, "cycle", pos, span, "include cycle: %s", msg);
			free(msg);
		}
		close(fd);
		return;
	}
	if (P->ninc == MAX_INCLUDE_DEPTH) {
		ERRC(P, "limit", pos, span, "includes nested more than %d deep", MAX_INCLUDE_DEPTH);
		close(fd);
		return;
	}
	if (read_file(P, fd, &st, &text, &len) < 0) {
		ERRC(P, "include", pos, span, "cannot read included file '%s': %s", path, strerror(errno));
		close(fd);
		return;
	}
	close(fd);
	src = add_source(P, arena_strndup(P->A, path, strlen(path)), text, len);
	P->inc[P->ninc].dev = st.st_dev;
	P->inc[P->ninc].ino = st.st_ino;
	P->inc[P->ninc].src = src;
	P->ninc++;
	{
		/* the includer's lexer and lookahead, restored afterwards */
		lex_state L = P->L;
		lex_token tok = P->tok, nxt = P->nxt, prev = P->prev;
		int have_nxt = P->have_nxt;
		uint32_t last_line = P->last_line;

		parse_source(P, src);
		P->L = L;
		P->tok = tok;
		P->nxt = nxt;
		P->prev = prev;
		P->have_nxt = have_nxt;
		P->last_line = last_line;
		P->cmt_start = NULL;
	}
	P->ninc--;
}

static int strptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* include "glob"; — the current token is `include` */
static void parse_include(parser *P)
{
	ast_pos pos;
	uint32_t span;
	const char *pat, *inc_path;
	const char *slash;
	char *full;
	size_t dirlen;

	next(P);
	if (P->tok.kind != TK_STRING) {
		expected(P, "a quoted file name or glob after 'include'");
		skip_stmt(P);
		return;
	}
	pos = P->tok.pos;
	span = P->tok.len;
	pat = P->tok.s;
	next(P);
	if (P->tok.kind == TK_SEMI)
		next(P);
	else
		ERR(P, after_prev(P), 1, "expected ';' after include \"%s\"", pat);
	if (P->flags & PARSE_NO_INCLUDE)
		return;
	if (pat[0] == '\0') {
		ERRC(P, "include", pos, span, "empty include path");
		return;
	}
	/* relative to the including file's directory (to the current
	 * directory for text given to parse_string) */
	inc_path = source(P, P->L.src)->path;
	slash = strrchr(inc_path, '/');
	dirlen = pat[0] == '/' || (P->string_root && P->L.src == 0) || !slash
	         ? 0 : (size_t)(slash - inc_path) + 1;
	full = malloc(dirlen + strlen(pat) + 1);
	if (!full)
		abort();
	memcpy(full, inc_path, dirlen);
	strcpy(full + dirlen, pat);
	if (strpbrk(pat, "*?[")) {
		glob_t g;
		int r = glob(full, GLOB_NOSORT, NULL, &g);
		if (r == GLOB_NOMATCH) {
			/* nothing to splice, as nginx's include of a glob in an empty
			 * directory (the design's own example starts with an include of
			 * policies/ files); a plain path that is missing stays an error */
		} else if (r != 0) {
			ERRC(P, "include", pos, span, "cannot expand '%s': %s", full,
			    r == GLOB_NOSPACE ? "out of memory" : "read error");
		} else {
			/* byte order, whatever the locale: the same rules compile
			 * to the same table everywhere */
			qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, strptr_cmp);
			for (size_t i = 0; i < g.gl_pathc; i++)
				include_one(P, g.gl_pathv[i], pos, span);
		}
		if (r == 0)
			globfree(&g);
	} else {
		include_one(P, full, pos, span);
	}
	free(full);
}

/* ---------------------------------------------------------------- entry */
static void parser_init(parser *P, ast_file *out, diag_ctx *d, unsigned flags)
{
	memset(out, 0, sizeof *out);
	memset(P, 0, sizeof *P);
	out->arena = P->A = arena_new();
	P->f = out;
	P->d = d;
	P->flags = flags;
	P->vals.esz = sizeof(ast_value);
	P->opts.esz = sizeof(ast_option);
	P->dirs.esz = sizeof(ast_directive);
	P->items.esz = sizeof(ast_item);
	P->srcs.esz = sizeof(ast_source);
}

static void parser_finish(parser *P)
{
	ast_file *f = P->f;

	f->items = st_take(P->A, &P->items, 0, &f->nitems);
	f->sources = st_take(P->A, &P->srcs, 0, &f->nsources);
	free(P->vals.v);
	free(P->opts.v);
	free(P->dirs.v);
	free(P->items.v);
	free(P->srcs.v);
	P->d->sources = f->sources;
	P->d->nsources = f->nsources;
}

int parse_text(const char *name, const char *text, size_t len, ast_file *out,
               diag_ctx *d, unsigned flags)
{
	parser P;
	size_t before = d->nerrors;
	char *copy;
	const char *path;

	parser_init(&P, out, d, flags);
	P.string_root = 1;
	copy = arena_raw(P.A, len + 1);
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	path = flags & PARSE_BORROW_NAME ? name : arena_strndup(P.A, name, strlen(name));
	add_source(&P, path, copy, len);
	parse_source(&P, 0);
	parser_finish(&P);
	return (int)(d->nerrors - before);
}

int parse_string(const char *name, const char *text, size_t len,
                 ast_file *out, diag_ctx *d)
{
	return parse_text(name, text, len, out, d, 0);
}

int parse_file(const char *path, ast_file *out, diag_ctx *d)
{
	parser P;
	size_t before = d->nerrors;
	struct stat st;
	char *text;
	size_t len;
	const char *name;
	int fd;

	parser_init(&P, out, d, 0);
	errno = 0;
	name = arena_strndup(P.A, path, strlen(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    read_file(&P, fd, &st, &text, &len) < 0) {
		ast_pos pos = { name, 0, 0, 0 };
		const char *why = fd >= 0 && errno == 0 ? "not a regular file" : strerror(errno);
		diag_error(d, pos, 1, "file", "cannot read '%s': %s", path, why);
		if (fd >= 0)
			close(fd);
		parser_finish(&P);
		return (int)(d->nerrors - before);
	}
	close(fd);
	add_source(&P, name, text, len);
	P.inc[0].dev = st.st_dev;
	P.inc[0].ino = st.st_ino;
	P.inc[0].src = 0;
	P.ninc = 1;
	parse_source(&P, 0);
	parser_finish(&P);
	return (int)(d->nerrors - before);
}

/*
 * fmt.c — `gwc fmt`: the canonical layout of a .gwr file, made from its
 * token stream (comments included), so nothing but whitespace changes.
 *
 *   - 4 spaces per block level, one statement per line, `{` at the end of
 *     the statement's line, `}` on a line of its own;
 *   - one space between tokens, none before `;` `,` `)`, none after `(`,
 *     none around the `=` of key=value, none between a function name and
 *     its `(` (`file("x")`, `header("X")`);
 *   - a comment stays on the line it was on: after its statement when it
 *     trailed the statement's last token, on its own line otherwise; a
 *     comment inside a statement split over lines moves above it;
 *   - exactly one blank line between top-level items (a comment block
 *     directly above an item belongs to it; consecutive includes keep
 *     their own spacing), at most one blank line inside blocks and none
 *     right after `{` or before `}`; a final newline.
 *
 * The text must parse (includes are not opened): otherwise fmt_source
 * returns -1 with the parser's diagnostics. Those diagnostics point at
 * `name` (the caller's string); their caret lines need the text, which
 * the tree held and is freed here, so d->sources is left NULL: a caller
 * wanting carets sets it to { name, text, len } itself.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "lex.h"

typedef struct buf {
	char *p;
	size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;
		while (cap < b->n + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			fputs("gwc: out of memory\n", stderr);
			abort();
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void indent(buf *b, int depth)
{
	for (int i = 0; i < depth; i++)
		put(b, "    ", 4);
}

/* what the last top-level line was, for the blank-line rules */
enum last { L_NONE, L_COMMENT, L_INCLUDE, L_ITEM, L_OPEN, L_INNER };

struct fmt {
	const lex_token *t;
	size_t n;
	buf out;
	int depth;
	enum last last;
	uint32_t last_line;   /* source line of the last thing written */
};

static int is_word(const lex_token *t, const char *w)
{
	size_t n = strlen(w);
	return t->kind == TK_IDENT && t->len == n && memcmp(t->text, w, n) == 0;
}

/* blank line (0 or 1) before a line starting at source line `line` */
static int blank_before(const struct fmt *F, uint32_t line, int is_close,
                        int is_include_unit)
{
	int src_blank = F->last == L_NONE ? 0 : line > F->last_line + 1;

	if (F->last == L_NONE || F->last == L_OPEN || is_close)
		return 0;
	if (F->depth > 0)
		return src_blank;
	switch (F->last) {
	case L_COMMENT:
		return src_blank;
	case L_INCLUDE:
		return is_include_unit ? src_blank : 1;
	default:
		return 1;
	}
}

/* does the comment run starting at i lead, without a blank line, to an
 * include statement? (then it is part of that include's unit) */
static int comments_lead_to_include(const struct fmt *F, size_t i)
{
	uint32_t line = F->t[i].pos.line;

	for (; i < F->n && F->t[i].kind == TK_COMMENT; i++) {
		if (F->t[i].pos.line > line + 1)
			return 0;
		line = F->t[i].pos.line;
	}
	return i < F->n && F->t[i].pos.line == line + 1 && is_word(&F->t[i], "include");
}

static void comment_line(struct fmt *F, const lex_token *c, int blank)
{
	if (blank)
		put(&F->out, "\n", 1);
	indent(&F->out, F->depth);
	put(&F->out, c->text, c->len);
	put(&F->out, "\n", 1);
}

/* is there a space between tokens a and b of one statement? */
static int space_between(const lex_token *a, const lex_token *b, int in_match)
{
	if (b->kind == TK_SEMI || b->kind == TK_COMMA || b->kind == TK_RPAREN)
		return 0;
	if (a->kind == TK_LPAREN)
		return 0;
	if (a->kind == TK_ASSIGN || b->kind == TK_ASSIGN)
		return 0;
	if (b->kind == TK_LPAREN && a->kind == TK_IDENT) {
		/* a call: the parser reads NAME( as one in a directive; in a
		 * match only header/query/cookie are functions */
		if (!in_match)
			return 0;
		return !(is_word(a, "header") || is_word(a, "query") || is_word(a, "cookie"));
	}
	return 1;
}

/* one statement: tokens [i, end] where end is its ';' or '{' (or the '}'
 * itself); comments inside it are written above it. Returns the index
 * after it. */
static size_t statement(struct fmt *F, size_t i)
{
	const lex_token *first = &F->t[i], *prev = NULL;
	int is_close = first->kind == TK_RBRACE;
	int in_match = is_word(first, "match");
	int include = F->depth == 0 && is_word(first, "include");
	size_t j, end;
	enum tok_kind k;

	if (is_close)
		F->depth--;
	/* the extent of the statement */
	for (end = i; end < F->n; end++) {
		k = F->t[end].kind;
		if (k == TK_EOF || (end == i && is_close) || k == TK_SEMI || k == TK_LBRACE)
			break;
	}
	if (blank_before(F, first->pos.line, is_close, include))
		put(&F->out, "\n", 1);
	/* comments inside the statement go above it */
	for (j = i; j < end && j < F->n; j++)
		if (F->t[j].kind == TK_COMMENT)
			comment_line(F, &F->t[j], 0);
	indent(&F->out, F->depth);
	for (j = i; j <= end && j < F->n && F->t[j].kind != TK_EOF; j++) {
		const lex_token *t = &F->t[j];
		if (t->kind == TK_COMMENT)
			continue;
		if (prev && space_between(prev, t, in_match))
			put(&F->out, " ", 1);
		put(&F->out, t->text, t->len);
		prev = t;
	}
	F->last_line = prev ? prev->pos.line : first->pos.line;
	j = end + 1;
	/* a comment trailing the statement's last token stays on its line */
	if (j < F->n && F->t[j].kind == TK_COMMENT && prev && F->t[j].pos.line == prev->pos.line) {
		put(&F->out, " ", 1);
		put(&F->out, F->t[j].text, F->t[j].len);
		j++;
	}
	put(&F->out, "\n", 1);
	if (end < F->n && F->t[end].kind == TK_LBRACE) {
		F->depth++;
		F->last = L_OPEN;
	} else if (F->depth > 0) {
		F->last = L_INNER;
	} else {
		F->last = include ? L_INCLUDE : L_ITEM;
	}
	return j;
}

static void format(struct fmt *F)
{
	size_t i = 0;

	while (i < F->n && F->t[i].kind != TK_EOF) {
		const lex_token *t = &F->t[i];
		if (t->kind == TK_COMMENT) {
			int blank;
			if (F->depth == 0 && F->last == L_INCLUDE && comments_lead_to_include(F, i))
				blank = t->pos.line > F->last_line + 1;
			else
				blank = blank_before(F, t->pos.line, 0, 0);
			comment_line(F, t, blank);
			F->last_line = t->pos.line;
			F->last = F->depth == 0 ? L_COMMENT : L_INNER;
			i++;
			continue;
		}
		i = statement(F, i);
	}
}

int fmt_source(const char *name, const char *text, size_t len,
               char **out, size_t *outlen, diag_ctx *d)
{
	ast_file f;
	lex_state L;
	struct fmt F;
	lex_token *toks = NULL;
	size_t n = 0, cap = 0;
	const ast_source *src;

	*out = NULL;
	*outlen = 0;
	if (parse_text(name, text, len, &f, d, PARSE_NO_INCLUDE | PARSE_BORROW_NAME) > 0) {
		ast_free(&f);
		d->sources = NULL;
		d->nsources = 0;
		return -1;
	}
	/* the text parses: lex it again, comments included, from the tree's
	 * NUL-terminated copy */
	src = &f.sources[0];
	lex_init(&L, src->text, src->len, name, 0, d, f.arena);
	L.comments = 1;
	do {
		if (n == cap) {
			lex_token *p;
			cap = cap ? cap * 2 : 256;
			p = realloc(toks, cap * sizeof *toks);
			if (!p) {
				fputs("gwc: out of memory\n", stderr);
				abort();
			}
			toks = p;
		}
		lex_next(&L, &toks[n]);
	} while (toks[n++].kind != TK_EOF);

	memset(&F, 0, sizeof F);
	F.t = toks;
	F.n = n;
	format(&F);
	if (!F.out.p)
		put(&F.out, "", 0);
	free(toks);
	ast_free(&f);
	d->sources = NULL;
	d->nsources = 0;
	*out = F.out.p;
	*outlen = F.out.n;
	return 0;
}

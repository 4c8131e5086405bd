/*
 * diag.h — diagnostics for gwc: collected (not printed at once) so that every
 * error of a file is reported together, and so that `gwc check` can write
 * them as text (GCC style with the source line and a caret), JSON or SARIF.
 *
 *   rules.gwr:12:9: error: unknown directive 'rate_limt'; did you mean 'rate_limit'? [-Wunknown]
 *       rate_limt 100r/s;
 *       ^~~~~~~~~
 */
#ifndef GW_DIAG_H
#define GW_DIAG_H

#include <stdio.h>
#include "ast.h"

enum diag_level { DIAG_NOTE, DIAG_WARNING, DIAG_ERROR };

typedef struct diag {
	enum diag_level level;
	ast_pos pos;
	uint32_t span;        /* caret length in bytes (>= 1) */
	const char *name;     /* warning/error class for [-Wname], may be NULL */
	char *msg;
} diag;

typedef struct diag_ctx {
	diag *v; size_t n, cap;
	size_t nerrors, nwarnings;
	int strict;                    /* warnings count as errors */
	const ast_source *sources;     /* for caret lines; may be set late */
	size_t nsources;
} diag_ctx;

void diag_init(diag_ctx *d);
void diag_fini(diag_ctx *d);
void diag_add(diag_ctx *d, enum diag_level lv, ast_pos pos, uint32_t span,
              const char *name, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
#define diag_error(d, pos, span, name, ...)   diag_add(d, DIAG_ERROR, pos, span, name, __VA_ARGS__)
#define diag_warning(d, pos, span, name, ...) diag_add(d, DIAG_WARNING, pos, span, name, __VA_ARGS__)
#define diag_note(d, pos, span, ...)          diag_add(d, DIAG_NOTE, pos, span, NULL, __VA_ARGS__)
/* errors, plus warnings when strict */
int diag_failed(const diag_ctx *d);
/* sort by file order (source index, line, col), keep insertion order for ties */
void diag_sort(diag_ctx *d);
void diag_print_text(const diag_ctx *d, FILE *out);
void diag_print_json(const diag_ctx *d, FILE *out);
void diag_print_sarif(const diag_ctx *d, FILE *out);

/* Levenshtein-based suggestion: the closest of cands[] to word, or NULL
 * when none is close enough to be a plausible typo. */
const char *diag_suggest(const char *word, const char *const *cands, size_t n);

#endif /* GW_DIAG_H */

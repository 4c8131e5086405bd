/*
 * compiler.h — the stages of gwc, in pipeline order. Each stage reports
 * into one diag_ctx and goes on after errors where it can, so a user sees
 * every problem of a rule set at once.
 */
#ifndef GW_COMPILER_H
#define GW_COMPILER_H

#include <stdint.h>
#include "ast.h"
#include "diag.h"

/* parse.c: lex (re2c, grammar/lexer.re) + parse a root file, splicing
 * `include` (globs, relative to the including file, cycles are errors).
 * Builds as much of the tree as it can even when there are errors.
 * Returns the number of errors added. */
int parse_file(const char *path, ast_file *out, diag_ctx *d);
/* same on text in memory (name is used in diagnostics; includes are
 * resolved relative to the current directory) */
int parse_string(const char *name, const char *text, size_t len,
                 ast_file *out, diag_ctx *d);

/* sema.c: names, types, directive table, shadowed routes, unused things.
 * Returns the number of errors added. */
int sema_check(ast_file *f, diag_ctx *d);

/* emit.c: AST (after a clean sema_check) -> .gwb bytes (malloc'ed). */
int emit_table(const ast_file *f, diag_ctx *d, uint8_t **out, size_t *len);

/* fmt.c: canonical formatting of one file's text (comments kept). Returns
 * 0 and a malloc'ed result, or -1 with diagnostics when it does not parse. */
int fmt_source(const char *name, const char *text, size_t len,
               char **out, size_t *outlen, diag_ctx *d);

#endif /* GW_COMPILER_H */

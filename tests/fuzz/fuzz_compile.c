/*
 * fuzz_compile.c — libFuzzer target for the compiler: source text in.
 *
 * The bytes are parsed as a .gwr file; a clean parse goes through sema and
 * the emitter; the diagnostics are printed (to /dev/null) in all three
 * formats; fmt must either refuse the text or be idempotent on it. Every
 * object is freed, so LeakSanitizer checks the error paths too.
 *
 * `include` statements are parsed but not opened (PARSE_NO_INCLUDE): a
 * glob in the input would otherwise walk the file system.
 * Built and run by tests/fuzz/run.sh; seeds in tests/fuzz/corpus/compile/.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "lex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

static void check_fmt(const char *text, size_t len)
{
	diag_ctx d;
	char *once = NULL, *twice = NULL;
	size_t n1 = 0, n2 = 0;

	diag_init(&d);
	if (fmt_source("fuzz.gwr", text, len, &once, &n1, &d) == 0) {
		/* formatted text must parse again and be a fixed point */
		if (fmt_source("fuzz.gwr", once, n1, &twice, &n2, &d) != 0 ||
		    n1 != n2 || memcmp(once, twice, n1) != 0)
			__builtin_trap();
	}
	free(once);
	free(twice);
	diag_fini(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ast_file f;
	diag_ctx d;
	uint8_t *table = NULL;
	size_t len = 0;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	diag_init(&d);
	if (parse_text("fuzz.gwr", (const char *)data, size, &f, &d, PARSE_NO_INCLUDE) == 0 &&
	    sema_check(&f, &d) == 0)
		emit_table(&f, &d, &table, &len);
	free(table);
	if (devnull) {
		diag_sort(&d);
		diag_print_text(&d, devnull);
		diag_print_json(&d, devnull);
		diag_print_sarif(&d, devnull);
	}
	ast_free(&f);
	diag_fini(&d);
	check_fmt((const char *)data, size);
	return 0;
}

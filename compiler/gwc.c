/*
 * gwc.c — the gw rule compiler's command line (interfaces.md):
 *
 *   gwc compile RULES.gwr [-o OUT.gwb]
 *   gwc check [--strict] [--format=text|json|sarif] FILE.gwr...
 *   gwc dump TABLE.gwb
 *   gwc test RULES.gwr|TABLE.gwb CASES.yaml [--coverage] [--min-coverage=N]
 *   gwc explain RULES.gwr|TABLE.gwb METHOD URL [-H 'Name: v']... [--ip A]
 *   gwc fmt [--check] FILE.gwr...
 *   gwc --version | --help
 *
 * Exit codes: 0 ok (warnings allowed unless --strict), 1 errors in the
 * input or failed tests, 2 usage or I/O error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler.h"
#include "gwc.h"

static const char usage_text[] =
	"usage: gwc COMMAND [ARGS]\n"
	"\n"
	"  compile RULES.gwr [-o OUT.gwb]     compile to a table (default OUT: RULES.gwb)\n"
	"  check [--strict] [--format=text|json|sarif] FILE.gwr...\n"
	"                                     lint: report errors and warnings, write nothing\n"
	"  dump TABLE.gwb                     readable disassembly of a compiled table\n"
	"  test RULES.gwr|TABLE.gwb CASES.yaml [--coverage] [--min-coverage=N]\n"
	"                                     check which route/upstream requests hit\n"
	"  explain RULES.gwr|TABLE.gwb METHOD URL [-H 'Name: value']... [--ip ADDR]\n"
	"                                     show which route matches a request and why\n"
	"                                     the routes before it do not\n"
	"  fmt [--check] FILE.gwr...          canonical formatting, in place\n"
	"  --version, --help\n"
	"\n"
	"Exit status: 0 ok, 1 errors in the input or failed tests, 2 usage or I/O error.\n"
	"Warnings (-Wshadowed, -Wunused-upstream, -Wunused-policy, -Wempty-upstream,\n"
	"-Wredirect-target, -Wregex-prefix) are errors with --strict.\n";

static int usage_err(const char *fmt, const char *arg)
{
	fputs("gwc: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'gwc --help'.\n", stderr);
	return GWC_EUSAGE;
}

/* ------------------------------------------------------- atomic write */

/* temp file in the same directory + fsync + rename: readers (gwd's
 * inotify) see either the old table or the whole new one */
static int write_atomic(const char *path, const void *buf, size_t len, mode_t mode,
                        int keep_mode)
{
	char *dcopy = strdup(path), *bcopy = strdup(path);
	if (!dcopy || !bcopy) {
		free(dcopy);
		free(bcopy);
		return -1;
	}
	const char *dir = dirname(dcopy), *base = basename(bcopy);
	size_t n = strlen(dir) + strlen(base) + 32;
	char *tmp = malloc(n);
	int fd = -1, saved = 0;
	if (!tmp)
		goto fail;
	snprintf(tmp, n, "%s/.%s.tmp-XXXXXX", dir, base);
	fd = mkstemp(tmp);
	if (fd < 0) {
		saved = errno;
		free(tmp);
		tmp = NULL;
		goto fail;
	}
	if (!keep_mode) {
		mode_t um = umask(0);
		umask(um);
		mode = 0666 & ~um;
	}
	const char *p = buf;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail_errno;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
		goto fail_errno;
	if (close(fd) < 0) {
		fd = -1;
		goto fail_errno;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail_errno;
	/* make the rename itself durable */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(tmp);
	free(dcopy);
	free(bcopy);
	return 0;
fail_errno:
	saved = errno;
fail:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dcopy);
	free(bcopy);
	errno = saved ? saved : ENOMEM;
	return -1;
}

/* -------------------------------------------------------------- front */

/* parse + check (+ emit when out != NULL or for check); diagnostics in d */
static int build(const char *path, ast_file *f, diag_ctx *d, uint8_t **out, size_t *len)
{
	memset(f, 0, sizeof *f);
	parse_file(path, f, d);
	d->sources = f->sources;
	d->nsources = f->nsources;
	if (d->nerrors == 0)
		sema_check(f, d);
	if (d->nerrors == 0 && out)
		emit_table(f, d, out, len);
	diag_sort(d);
	return d->nerrors ? -1 : 0;
}

static int readable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "gwc: cannot open '%s': %s\n", path, strerror(errno));
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		fprintf(stderr, "gwc: '%s' is a directory\n", path);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ compile */

static int cmd_compile(int argc, char **argv)
{
	const char *in = NULL, *outp = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
			if (++i >= argc)
				return usage_err("%s needs a file name", a);
			outp = argv[i];
		} else if (strncmp(a, "--output=", 9) == 0) {
			outp = a + 9;
		} else if (strncmp(a, "-o", 2) == 0 && a[2]) {
			outp = a + 2;
		} else if (a[0] == '-' && a[1]) {
			return usage_err("compile: unknown option '%s'", a);
		} else if (in) {
			return usage_err("compile takes one rules file (got also '%s')", a);
		} else {
			in = a;
		}
	}
	if (!in)
		return usage_err("%s", "compile needs a rules file: gwc compile RULES.gwr [-o OUT.gwb]");
	if (!readable(in))
		return GWC_EUSAGE;
	char *def = NULL;
	if (!outp) {
		size_t n = strlen(in);
		def = malloc(n + 5);
		if (!def)
			return GWC_EUSAGE;
		memcpy(def, in, n + 1);
		if (n > 4 && strcmp(in + n - 4, ".gwr") == 0)
			strcpy(def + n - 4, ".gwb");
		else
			strcat(def, ".gwb");
		outp = def;
	}
	diag_ctx d;
	ast_file f;
	diag_init(&d);
	uint8_t *tb = NULL;
	size_t tl = 0;
	int rc = GWC_OK;
	build(in, &f, &d, &tb, &tl);
	diag_print_text(&d, stderr);
	if (d.nerrors || !tb) {
		rc = GWC_EINPUT;
	} else if (write_atomic(outp, tb, tl, 0, 0) < 0) {
		fprintf(stderr, "gwc: cannot write '%s': %s\n", outp, strerror(errno));
		rc = GWC_EUSAGE;
	}
	free(tb);
	ast_free(&f);
	diag_fini(&d);
	free(def);
	return rc;
}

/* -------------------------------------------------------------- check */

static int cmd_check(int argc, char **argv)
{
	int strict = 0;
	enum { F_TEXT, F_JSON, F_SARIF } fmt = F_TEXT;
	const char **files = calloc((size_t)argc + 1, sizeof *files);
	size_t nf = 0;
	if (!files)
		return GWC_EUSAGE;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *fv = NULL;
		if (strcmp(a, "--strict") == 0) {
			strict = 1;
			continue;
		}
		if (strncmp(a, "--format=", 9) == 0) {
			fv = a + 9;
		} else if (strcmp(a, "--format") == 0) {
			if (++i >= argc) {
				free(files);
				return usage_err("%s", "--format needs text, json or sarif");
			}
			fv = argv[i];
		} else if (a[0] == '-' && a[1]) {
			free(files);
			return usage_err("check: unknown option '%s'", a);
		} else {
			files[nf++] = a;
			continue;
		}
		if (strcmp(fv, "text") == 0)
			fmt = F_TEXT;
		else if (strcmp(fv, "json") == 0)
			fmt = F_JSON;
		else if (strcmp(fv, "sarif") == 0)
			fmt = F_SARIF;
		else {
			free(files);
			return usage_err("unknown format '%s' (text, json or sarif)", fv);
		}
	}
	if (!nf) {
		free(files);
		return usage_err("%s", "check needs at least one rules file");
	}
	for (size_t i = 0; i < nf; i++)
		if (!readable(files[i])) {
			free(files);
			return GWC_EUSAGE;
		}
	/* one context per file (caret lines need that file's sources); the
	 * JSON/SARIF document gathers them all */
	ast_file *fs = calloc(nf, sizeof *fs);
	diag_ctx *ds = calloc(nf, sizeof *ds);
	diag_ctx all;
	diag_init(&all);
	all.strict = strict;
	int failed = 0;
	if (!fs || !ds) {
		free(files);
		free(fs);
		free(ds);
		return GWC_EUSAGE;
	}
	for (size_t i = 0; i < nf; i++) {
		diag_init(&ds[i]);
		ds[i].strict = strict;
		uint8_t *tb = NULL;
		size_t tl = 0;
		/* emit too: limits a user can hit are only found there */
		build(files[i], &fs[i], &ds[i], &tb, &tl);
		free(tb);
		if (diag_failed(&ds[i]))
			failed = 1;
		if (fmt == F_TEXT)
			diag_print_text(&ds[i], stderr);
		for (size_t j = 0; j < ds[i].n; j++) {
			const diag *g = &ds[i].v[j];
			diag_add(&all, g->level, g->pos, g->span, g->name, "%s", g->msg);
		}
	}
	if (fmt == F_JSON)
		diag_print_json(&all, stdout);
	else if (fmt == F_SARIF)
		diag_print_sarif(&all, stdout);
	fflush(stdout);
	for (size_t i = 0; i < nf; i++) {
		ast_free(&fs[i]);
		diag_fini(&ds[i]);
	}
	diag_fini(&all);
	free(fs);
	free(ds);
	free(files);
	return failed ? GWC_EINPUT : GWC_OK;
}

/* --------------------------------------------------------------- dump */

static int cmd_dump(int argc, char **argv)
{
	if (argc != 1 || (argv[0][0] == '-' && argv[0][1]))
		return usage_err("%s", "usage: gwc dump TABLE.gwb");
	if (!readable(argv[0]))
		return GWC_EUSAGE;
	char err[256] = "";
	gwb_table *t = gwb_load_file(argv[0], err, sizeof err);
	if (!t) {
		fprintf(stderr, "gwc: %s: %s\n", argv[0], err);
		return GWC_EINPUT;
	}
	gwb_dump(t, stdout);
	gwb_free(t);
	return fflush(stdout) == 0 ? GWC_OK : GWC_EUSAGE;
}

/* ---------------------------------------------------------------- fmt */

static int cmd_fmt(int argc, char **argv)
{
	int check = 0, rc = GWC_OK;
	int nfiles = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (argv[i][0] == '-' && argv[i][1])
			return usage_err("fmt: unknown option '%s'", argv[i]);
		else
			nfiles++;
	}
	if (!nfiles)
		return usage_err("%s", "fmt needs at least one rules file");
	for (int i = 0; i < argc; i++) {
		const char *p = argv[i];
		if (strcmp(p, "--check") == 0)
			continue;
		char *text;
		size_t len;
		struct stat st;
		if (stat(p, &st) < 0 || gwc_read_file(p, &text, &len) < 0) {
			fprintf(stderr, "gwc: cannot read '%s': %s\n", p, strerror(errno));
			return GWC_EUSAGE;
		}
		diag_ctx d;
		diag_init(&d);
		char *out = NULL;
		size_t outlen = 0;
		if (fmt_source(p, text, len, &out, &outlen, &d) < 0) {
			diag_sort(&d);
			/* caret lines: the diagnostics point into this one text */
			ast_source src = { p, text, len };
			if (!d.sources) {
				d.sources = &src;
				d.nsources = 1;
			}
			diag_print_text(&d, stderr);
			if (d.sources == &src)
				d.sources = NULL;
			rc = rc == GWC_EUSAGE ? rc : GWC_EINPUT;
		} else if (outlen != len || memcmp(out, text, len) != 0) {
			if (check) {
				printf("%s\n", p);
				rc = rc == GWC_EUSAGE ? rc : GWC_EINPUT;
			} else if (write_atomic(p, out, outlen, st.st_mode & 07777, 1) < 0) {
				fprintf(stderr, "gwc: cannot write '%s': %s\n", p, strerror(errno));
				rc = GWC_EUSAGE;
			}
		}
		free(out);
		free(text);
		diag_fini(&d);
	}
	return rc;
}

/* --------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage_err("%s", "missing command (compile, check, dump, test, explain, fmt)");
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return GWC_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("gwc (%s) %s\ntable format %d.%d\n", PACKAGE_NAME, PACKAGE_VERSION,
		       GWB_VERSION_MAJOR, GWB_VERSION_MINOR);
		return GWC_OK;
	}
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return GWC_OK;
		}
	if (strcmp(cmd, "compile") == 0)
		return cmd_compile(argc - 2, argv + 2);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc - 2, argv + 2);
	if (strcmp(cmd, "dump") == 0)
		return cmd_dump(argc - 2, argv + 2);
	if (strcmp(cmd, "test") == 0)
		return gwc_cmd_test(argc - 2, argv + 2);
	if (strcmp(cmd, "explain") == 0)
		return gwc_cmd_explain(argc - 2, argv + 2);
	if (strcmp(cmd, "fmt") == 0)
		return cmd_fmt(argc - 2, argv + 2);
	return usage_err("unknown command '%s' (compile, check, dump, test, explain, fmt)", cmd);
}

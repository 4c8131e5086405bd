/*
 * test_waf_corpus.c — runs the labelled corpus of tests/waf/ through
 * waf_inspect and fails below the targets: >= 95% detection, <= 1% false
 * positives.
 *
 * attacks.tsv and benign.tsv hold one case per line:
 *
 *   class <TAB> part <TAB> payload
 *
 * class: sqli xss traversal scanner protocol (attacks) or benign. part says
 * where the payload goes (as raw, on-the-wire bytes):
 *   path            the request path
 *   query           the whole raw query string
 *   arg:NAME        a query argument NAME=payload
 *   argname         a query argument named payload
 *   cookie:NAME     Cookie: NAME=payload
 *   header:NAME     User-Agent and Referer go to their slots, others to headers
 *   form            the whole application/x-www-form-urlencoded body
 *   json            the whole application/json body
 *   body:NAME       a form body NAME=payload
 * In the payload \t \n \r \\ are escapes; any other backslash is literal.
 * Lines starting with # and empty lines are skipped.
 *
 * An attack counts as detected when its own class, enabled alone, fires
 * (a sqli payload caught only as "protocol" is not a sqli detection); the
 * all-classes result is printed too. A benign value is a false positive
 * when anything fires with all classes enabled.
 *
 * The last lines are machine-readable: waf_detection_pct=, waf_fp_pct=.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "waf.h"

#define MAXLINE 8192
#define NCLASS 5

typedef struct tcase {
	char cls[16];
	char part[128];
	char payload[MAXLINE];
	size_t len;
	int line;
} tcase;

static void unescape(char *s, size_t *len)
{
	size_t o = 0;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '\\' && s[i + 1]) {
			char c = s[i + 1];
			if (c == 't' || c == 'n' || c == 'r' || c == '\\') {
				s[o++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : '\\';
				i++;
				continue;
			}
		}
		s[o++] = s[i];
	}
	s[o] = 0;
	*len = o;
}

/* next case of f; 0 at EOF; -1 on a malformed line (reported) */
static int read_case(FILE *f, const char *fname, int *lineno, tcase *c)
{
	char buf[MAXLINE];
	while (fgets(buf, sizeof buf, f)) {
		(*lineno)++;
		size_t l = strlen(buf);
		while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
			buf[--l] = 0;
		if (l == 0 || buf[0] == '#')
			continue;
		char *t1 = strchr(buf, '\t');
		char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (!t1 || !t2 || (size_t)(t1 - buf) >= sizeof c->cls ||
		    (size_t)(t2 - t1 - 1) >= sizeof c->part) {
			fprintf(stderr, "%s:%d: malformed line\n", fname, *lineno);
			return -1;
		}
		*t1 = *t2 = 0;
		snprintf(c->cls, sizeof c->cls, "%s", buf);
		snprintf(c->part, sizeof c->part, "%s", t1 + 1);
		snprintf(c->payload, sizeof c->payload, "%s", t2 + 1);
		unescape(c->payload, &c->len);
		c->line = *lineno;
		return 1;
	}
	return 0;
}

/* place the payload in a request and inspect it */
static unsigned run(const tcase *c, waf_scratch *sc, unsigned classes, waf_hit *hit)
{
	waf_input in = {0};
	waf_pair arg, hdr;
	char buf[MAXLINE + 160];
	const char *p = c->payload;
	size_t n = c->len;

	in.scratch = sc;
	in.path = "/search";
	in.path_len = 7;
	if (!strcmp(c->part, "path")) {
		in.path = p;
		in.path_len = n;
	} else if (!strcmp(c->part, "query")) {
		in.query = p;
		in.query_len = n;
	} else if (!strncmp(c->part, "arg:", 4)) {
		arg.name = c->part + 4;
		arg.name_len = strlen(arg.name);
		arg.value = p;
		arg.value_len = n;
		in.args = &arg;
		in.nargs = 1;
	} else if (!strcmp(c->part, "argname")) {
		arg.name = p;
		arg.name_len = n;
		arg.value = "1";
		arg.value_len = 1;
		in.args = &arg;
		in.nargs = 1;
	} else if (!strncmp(c->part, "cookie:", 7)) {
		int k = snprintf(buf, sizeof buf, "%s=%.*s", c->part + 7, (int)n, p);
		in.cookie = buf;
		in.cookie_len = (size_t)k;
	} else if (!strcmp(c->part, "header:User-Agent")) {
		in.user_agent = p;
		in.user_agent_len = n;
	} else if (!strcmp(c->part, "header:Referer")) {
		in.referer = p;
		in.referer_len = n;
	} else if (!strncmp(c->part, "header:", 7)) {
		hdr.name = c->part + 7;
		hdr.name_len = strlen(hdr.name);
		hdr.value = p;
		hdr.value_len = n;
		in.headers = &hdr;
		in.nheaders = 1;
	} else if (!strcmp(c->part, "form") || !strcmp(c->part, "json")) {
		in.body = p;
		in.body_len = n;
		in.body_type = c->part[0] == 'f' ? WAF_BODY_FORM : WAF_BODY_JSON;
	} else if (!strncmp(c->part, "body:", 5)) {
		int k = snprintf(buf, sizeof buf, "%s=%.*s", c->part + 5, (int)n, p);
		in.body = buf;
		in.body_len = (size_t)k;
		in.body_type = WAF_BODY_FORM;
	} else {
		fprintf(stderr, "unknown part %s (line %d)\n", c->part, c->line);
		return ~0u;
	}
	return waf_inspect(&in, classes, hit);
}

typedef struct totals {
	int total[NCLASS], det[NCLASS], det_any[NCLASS];
	int nbenign, nfp, bad;
} totals;

/* Run one corpus file: attack lines count for their class, "benign" lines
 * are false positives when anything fires. Adds to *t; prints misses and
 * false positives (and, with verbose, every detection). */
static void run_file(const char *path, const char *shown, waf_scratch *sc, int verbose, totals *t)
{
	static tcase c;
	waf_hit hit;
	int lineno = 0, r;
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		t->bad++;
		return;
	}
	while ((r = read_case(f, path, &lineno, &c)) != 0) {
		if (r < 0) {
			t->bad++;
			continue;
		}
		if (!strcmp(c.cls, "benign")) {
			unsigned got = run(&c, sc, WAF_ALL, &hit);
			if (got == ~0u) {
				t->bad++;
				continue;
			}
			t->nbenign++;
			if (got) {
				t->nfp++;
				printf("  FP    %s:%d %-18s %s  -> %s %s [%s] at \"%s\"\n", shown, c.line, c.part,
				       c.payload, hit.class_name, hit.rule_id, hit.detail, hit.excerpt);
			}
			continue;
		}
		unsigned cls = waf_class_from_name(c.cls, strlen(c.cls));
		if (!cls) {
			fprintf(stderr, "%s:%d: unknown class %s\n", path, c.line, c.cls);
			t->bad++;
			continue;
		}
		unsigned own = run(&c, sc, cls, &hit);
		if (own == ~0u) {
			t->bad++;
			continue;
		}
		int ci = __builtin_ctz(cls);
		t->total[ci]++;
		unsigned any = run(&c, sc, WAF_ALL, &hit);
		if (any)
			t->det_any[ci]++;
		if (own) {
			t->det[ci]++;
			if (verbose) {
				run(&c, sc, cls, &hit);
				printf("   ok   %-9s %-22s %-20s %s\n", c.cls, hit.rule_id, hit.part, c.payload);
			}
		} else {
			printf("  MISS  %s:%d %-9s %-18s %s", shown, c.line, c.cls, c.part, c.payload);
			if (any)
				printf("   (caught as %s %s)", hit.class_name, hit.rule_id);
			printf("\n");
		}
	}
	fclose(f);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* one line of the per-file table; returns the file's false positive rate */
static double print_file_line(const char *shown, const totals *before, const totals *after)
{
	int n = 0, d = 0;
	for (int i = 0; i < NCLASS; i++) {
		n += after->total[i] - before->total[i];
		d += after->det[i] - before->det[i];
	}
	int nb = after->nbenign - before->nbenign, fp = after->nfp - before->nfp;
	printf("  %-34s", shown);
	if (n)
		printf(" detected %4d/%-4d %6.2f%%", d, n, 100.0 * d / n);
	if (nb)
		printf(" false positives %3d/%-4d %5.2f%%", fp, nb, 100.0 * fp / nb);
	printf("\n");
	return nb ? 100.0 * fp / nb : 0.0;
}

int main(int argc, char **argv)
{
	char path[1024];
	int verbose = argc > 1 && !strcmp(argv[1], "-v");
	const char *srcdir = getenv("srcdir");
	totals t = {0};
	/* per-file snapshots for the table at the end */
	enum { MAXFILES = 64 };
	char *names[MAXFILES];
	totals snap[MAXFILES + 1];
	int nfiles = 0;
	waf_scratch *sc = waf_scratch_new(0);

	if (!sc)
		return 99;
	if (!srcdir)
		srcdir = ".";

	/* the hand-written corpus, then every public batch (sorted, so the
	 * output is stable) */
	names[nfiles++] = strdup("attacks.tsv");
	names[nfiles++] = strdup("benign.tsv");
	snprintf(path, sizeof path, "%s/tests/waf/public", srcdir);
	DIR *d = opendir(path);
	int npublic = 0;
	if (d) {
		struct dirent *e;
		int first = nfiles;
		while ((e = readdir(d)) != NULL && nfiles < MAXFILES) {
			size_t l = strlen(e->d_name);
			if (l > 4 && !strcmp(e->d_name + l - 4, ".tsv") && e->d_name[0] != '.') {
				char buf[512];
				snprintf(buf, sizeof buf, "public/%s", e->d_name);
				names[nfiles++] = strdup(buf);
				npublic++;
			}
		}
		closedir(d);
		qsort(names + first, (size_t)(nfiles - first), sizeof *names, by_name);
	}
	printf("== misses (attacks not detected by their own class) and false positives\n");
	for (int i = 0; i < nfiles; i++) {
		if (!names[i])
			return 99;
		snap[i] = t;
		snprintf(path, sizeof path, "%s/tests/waf/%s", srcdir, names[i]);
		run_file(path, names[i], sc, verbose, &t);
	}
	snap[nfiles] = t;
	waf_scratch_free(sc);

	printf("== per file\n");
	int fpfile = 0;
	for (int i = 0; i < nfiles; i++)
		if (print_file_line(names[i], &snap[i], &snap[i + 1]) > 1.0) {
			printf("FAIL: %s: false positives above 1%%\n", names[i]);
			fpfile = 1;
		}
	if (npublic == 0)
		printf("  (no public batches found under %s/tests/waf/public)\n", srcdir);

	int *total = t.total, *det = t.det, *det_any = t.det_any;
	int nbenign = t.nbenign, nfp = t.nfp, bad = t.bad;
	int all = 0, alldet = 0, allany = 0;
	printf("== detection per class (own class enabled alone; all classes in brackets)\n");
	for (int i = 0; i < NCLASS; i++) {
		all += total[i];
		alldet += det[i];
		allany += det_any[i];
		printf("  %-10s %4d/%-4d %6.2f%%   [%6.2f%%]\n", waf_class_name(1u << i), det[i], total[i],
		       total[i] ? 100.0 * det[i] / total[i] : 0.0,
		       total[i] ? 100.0 * det_any[i] / total[i] : 0.0);
	}
	double dpct = all ? 100.0 * alldet / all : 0.0;
	double fpct = nbenign ? 100.0 * nfp / nbenign : 100.0;
	printf("  %-10s %4d/%-4d %6.2f%%   [%6.2f%%]\n", "overall", alldet, all, dpct,
	       all ? 100.0 * allany / all : 0.0);
	printf("== false positives: %d/%d = %.2f%%\n", nfp, nbenign, fpct);
	printf("waf_detection_pct=%.2f\nwaf_fp_pct=%.2f\n", dpct, fpct);

	int fail = fpfile;
	if (bad) {
		printf("FAIL: %d malformed corpus lines\n", bad);
		fail = 1;
	}
	if (all < 300 || nbenign < 300) {
		printf("FAIL: corpus too small (%d attacks, %d benign; 300 of each needed)\n", all, nbenign);
		fail = 1;
	}
	if (dpct < 95.0) {
		printf("FAIL: detection %.2f%% below 95%%\n", dpct);
		fail = 1;
	}
	if (fpct > 1.0) {
		printf("FAIL: false positives %.2f%% above 1%%\n", fpct);
		fail = 1;
	}
	for (int i = 0; i < nfiles; i++)
		free(names[i]);
	return fail;
}

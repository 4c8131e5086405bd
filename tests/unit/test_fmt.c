/*
 * test_fmt.c — `gwc fmt`: the canonical form of messy input, exact
 * layout rules, refusal of text that does not parse, and idempotence
 * (fmt(fmt(x)) == fmt(x)) on every .gwr file of the test data and of
 * examples/.
 */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *p;
	long n;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(p, 1, (size_t)n, fp), (size_t)n);
	p[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return p;
}

/* fmt text; fails the test unless it formats */
static char *fmt_ok(const char *name, const char *text, size_t len)
{
	diag_ctx d;
	char *out;
	size_t outlen;
	int r;

	diag_init(&d);
	r = fmt_source(name, text, len, &out, &outlen, &d);
	if (r != 0)
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "%s:%u:%u: %s\n", d.v[i].pos.file, d.v[i].pos.line,
			        d.v[i].pos.col, d.v[i].msg);
	ck_assert_msg(r == 0, "fmt of %s failed", name);
	ck_assert_uint_eq(strlen(out), outlen);
	diag_fini(&d);
	return out;
}

START_TEST(t_messy_canonical)
{
	size_t n, m;
	char *in = slurp(FRONT_DATA_DIR "/fmt/messy.gwr", &n);
	char *want = slurp(FRONT_DATA_DIR "/fmt/messy.expected.gwr", &m);
	char *out = fmt_ok("messy.gwr", in, n);

	ck_assert_str_eq(out, want);
	free(out);
	/* the canonical form is a fixed point */
	out = fmt_ok("messy.expected.gwr", want, m);
	ck_assert_str_eq(out, want);
	free(out);
	free(in);
	free(want);
}
END_TEST

static const struct { const char *in, *out; } cases[] = {
	/* 0: empty stays empty */
	{ "", "" },
	/* 1: one statement per line, 4-space indent, '{' on the line, final newline */
	{ "route a{match any;respond 200;}",
	  "route a {\n    match any;\n    respond 200;\n}\n" },
	/* 2: blank lines in blocks: at most one, none after '{' or before '}' */
	{ "route a {\n\n\n  match any;\n\n\n\n  respond 200;\n\n}\n",
	  "route a {\n    match any;\n\n    respond 200;\n}\n" },
	/* 3: exactly one blank line between top-level items */
	{ "route a { match any; }\nroute b { match any; }\n\n\n\nupstream u dynamic;\nroute c {match any;}",
	  "route a {\n    match any;\n}\n\nroute b {\n    match any;\n}\n\nupstream u dynamic;\n\nroute c {\n    match any;\n}\n" },
	/* 4: consecutive includes keep their (collapsed) spacing; a comment
	 * block belongs to the item below it */
	{ "include \"a\";\ninclude \"b\";\n\n\ninclude \"c\";\n# the x route\nroute x {match any;}",
	  "include \"a\";\ninclude \"b\";\n\ninclude \"c\";\n\n# the x route\nroute x {\n    match any;\n}\n" },
	/* 5: CRLF line ends, a trailing comment stays on its line */
	{ "route a {\r\n  match any;   # c\r\n}\r\n",
	  "route a {\n    match any; # c\n}\n" },
	/* 6: comments only */
	{ "# x\n\n\n# y", "# x\n\n# y\n" },
	/* 7: calls hug their '(' ; lists and key=value */
	{ "policy p { balance hash (header (\"X\")); cors methods = ( GET , POST ) origins=\"*\" ; allow 10.0.0.0/8 ,::1; }",
	  "policy p {\n    balance hash(header(\"X\"));\n    cors methods=(GET, POST) origins=\"*\";\n    allow 10.0.0.0/8, ::1;\n}\n" },
	/* 8: match: operators spaced, only header/query/cookie are calls */
	{ "route r { match not(any) or(header (\"a\")and method in(GET,HEAD))or query(\"v\")==\"2\"; }",
	  "route r {\n    match not (any) or (header(\"a\") and method in (GET, HEAD)) or query(\"v\") == \"2\";\n}\n" },
	/* 9: includes are not opened by fmt */
	{ "include \"does/not/exist/*.gwr\" ;", "include \"does/not/exist/*.gwr\";\n" },
	/* 10: nested blocks and a statement split over lines; its inner comment moves above it */
	{ "upstream u {\nhealth_check { path \"/\" ;\n}\nserver 1.2.3.4:80\n  # heavy\n  weight=3 ; }",
	  "upstream u {\n    health_check {\n        path \"/\";\n    }\n    # heavy\n    server 1.2.3.4:80 weight=3;\n}\n" },
	/* 11: comments at every level; '}' with a trailing comment */
	{ "# top\nroute a { # open\n# inside\nmatch any;\n# last\n} # close\n# tail\n",
	  "# top\nroute a { # open\n    # inside\n    match any;\n    # last\n} # close\n\n# tail\n" },
	/* 12: raw tokens are kept exactly: escapes, case, units */
	{ "route a{match host==\"A.Example.com\";respond 200 \"a\\x41\\n\" content_type=\"t\";timeout 2m;}",
	  "route a {\n    match host == \"A.Example.com\";\n    respond 200 \"a\\x41\\n\" content_type=\"t\";\n    timeout 2m;\n}\n" },
};

START_TEST(t_cases)
{
	char *out = fmt_ok("case.gwr", cases[_i].in, strlen(cases[_i].in));
	char *again;

	ck_assert_msg(strcmp(out, cases[_i].out) == 0, "case %d:\n--- got\n%s--- want\n%s",
	              _i, out, cases[_i].out);
	again = fmt_ok("case.gwr", out, strlen(out));
	ck_assert_str_eq(again, out);
	free(again);
	free(out);
}
END_TEST

START_TEST(t_refuses_bad_input)
{
	static const char *const bad[] = {
		"route a { match any;",
		"route a { respond 200 \"x\\q\"; }",
		"rout a { }",
		"route a { match host == ; }",
	};
	static const unsigned line_col[][2] = { { 1, 9 }, { 1, 25 }, { 1, 1 }, { 1, 25 } };

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		diag_ctx d;
		char *out = (char *)"x";
		size_t outlen = 7;
		const char *name = "bad.gwr";

		diag_init(&d);
		ck_assert_int_eq(fmt_source(name, bad[i], strlen(bad[i]), &out, &outlen, &d), -1);
		ck_assert_ptr_null(out);
		ck_assert_uint_eq(outlen, 0);
		ck_assert_uint_eq(d.nerrors, 1);
		ck_assert_ptr_eq(d.v[0].pos.file, name);   /* outlives the tree */
		ck_assert_uint_eq(d.v[0].pos.line, line_col[i][0]);
		ck_assert_uint_eq(d.v[0].pos.col, line_col[i][1]);
		ck_assert_ptr_null(d.sources);
		diag_fini(&d);
	}
}
END_TEST

/* ------------------------------------------------ idempotence on files */
static const char *const known_bad[] = {   /* test data that must not parse */
	"/errors4.gwr", "/include/sub/2.gwr",
};
static size_t nfiles, nchecked;

static int idem_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	size_t len, n = strlen(path), skip = 0;
	char *text, *once, *twice, *out;
	diag_ctx d;
	size_t outlen;

	(void)st;
	(void)ftw;
	if (type != FTW_F || n < 4 || strcmp(path + n - 4, ".gwr") != 0)
		return 0;
	nfiles++;
	text = slurp(path, &len);
	diag_init(&d);
	if (fmt_source(path, text, len, &out, &outlen, &d) != 0) {
		for (size_t i = 0; i < sizeof known_bad / sizeof *known_bad; i++) {
			size_t k = strlen(known_bad[i]);
			skip |= n >= k && strcmp(path + n - k, known_bad[i]) == 0;
		}
		ck_assert_msg(skip, "%s does not parse: %s", path, d.n ? d.v[0].msg : "?");
		diag_fini(&d);
		free(text);
		return 0;
	}
	diag_fini(&d);
	once = out;
	twice = fmt_ok(path, once, outlen);
	ck_assert_msg(strcmp(once, twice) == 0, "fmt is not idempotent on %s", path);
	nchecked++;
	free(twice);
	free(once);
	free(text);
	return 0;
}

START_TEST(t_idempotent_on_test_data)
{
	nfiles = nchecked = 0;
	ck_assert_int_eq(nftw(FRONT_DATA_DIR, idem_one, 16, FTW_PHYS), 0);
	ck_assert_uint_ge(nchecked, 11);
	ck_assert_uint_eq(nchecked + 2, nfiles);
}
END_TEST

START_TEST(t_idempotent_on_examples)
{
	nfiles = nchecked = 0;
	/* examples/ may not exist yet in a partial tree; all present must pass */
	if (nftw(EXAMPLES_DIR, idem_one, 16, FTW_PHYS) != 0)
		return;
	ck_assert_uint_eq(nchecked, nfiles);
}
END_TEST

static Suite *fmt_suite(void)
{
	Suite *s = suite_create("fmt");
	TCase *t = tcase_create("fmt");

	tcase_add_test(t, t_messy_canonical);
	tcase_add_loop_test(t, t_cases, 0, (int)(sizeof cases / sizeof *cases));
	tcase_add_test(t, t_refuses_bad_input);
	tcase_add_test(t, t_idempotent_on_test_data);
	tcase_add_test(t, t_idempotent_on_examples);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(fmt_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

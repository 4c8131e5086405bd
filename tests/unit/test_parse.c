/*
 * test_parse.c — the parser: the tree it builds, every syntactic error of
 * gwr-language.md §5 with its exact file:line:col, recovery (several
 * errors in one file all reported), includes (globs in order, relative
 * paths, cycles, missing files) and the diagnostic printers.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "gwb.h"
#include "lex.h"

#define DATA FRONT_DATA_DIR

struct parsed {
	ast_file f;
	diag_ctx d;
	int nerr;
};

static struct parsed *parse_s(const char *src)
{
	struct parsed *x = calloc(1, sizeof *x);

	diag_init(&x->d);
	x->nerr = parse_string("t.gwr", src, strlen(src), &x->f, &x->d);
	ck_assert_int_eq((size_t)x->nerr, x->d.nerrors);
	return x;
}

static struct parsed *parse_f(const char *rel)
{
	struct parsed *x = calloc(1, sizeof *x);
	char path[1024];

	snprintf(path, sizeof path, "%s/%s", DATA, rel);
	diag_init(&x->d);
	x->nerr = parse_file(path, &x->f, &x->d);
	return x;
}

static void parsed_free(struct parsed *x)
{
	ast_free(&x->f);
	diag_fini(&x->d);
	free(x);
}

static void dump(const struct parsed *x)
{
	for (size_t i = 0; i < x->d.n; i++)
		fprintf(stderr, "  %s:%u:%u: %s\n", x->d.v[i].pos.file, x->d.v[i].pos.line,
		        x->d.v[i].pos.col, x->d.v[i].msg);
}

/* diagnostic k is an error at file (suffix) line:col with frag in it */
static void err_at(const struct parsed *x, size_t k, const char *file,
                   unsigned line, unsigned col, const char *frag)
{
	const diag *g;
	size_t fl = strlen(file), pl;

	if (k >= x->d.n)
		dump(x);
	ck_assert_uint_gt(x->d.n, k);
	g = &x->d.v[k];
	pl = strlen(g->pos.file);
	ck_assert_msg(g->level == DIAG_ERROR, "diag %zu '%s' is not an error", k, g->msg);
	ck_assert_msg(pl >= fl && strcmp(g->pos.file + pl - fl, file) == 0,
	              "diag %zu in %s, expected %s", k, g->pos.file, file);
	ck_assert_msg(g->pos.line == line && g->pos.col == col,
	              "diag %zu '%s' at %u:%u, expected %u:%u", k, g->msg,
	              g->pos.line, g->pos.col, line, col);
	ck_assert_msg(strstr(g->msg, frag), "diag %zu '%s' lacks '%s'", k, g->msg, frag);
}

static void only_error(const struct parsed *x, unsigned line, unsigned col, const char *frag)
{
	if (x->d.n != 1)
		dump(x);
	ck_assert_uint_eq(x->d.n, 1);
	ck_assert_int_eq(x->nerr, 1);
	err_at(x, 0, "t.gwr", line, col, frag);
}

static const ast_item *item(const struct parsed *x, const char *name)
{
	for (size_t i = 0; i < x->f.nitems; i++)
		if (strcmp(x->f.items[i].name, name) == 0)
			return &x->f.items[i];
	ck_abort_msg("no item %s", name);
	return NULL;
}

/* ------------------------------------------------------------ the tree */
START_TEST(t_example_parses)
{
	struct parsed *x = parse_f("example.gwr");
	const ast_item *u, *r;
	const ast_directive *d;
	const ast_expr *e;

	if (x->nerr)
		dump(x);
	ck_assert_int_eq(x->nerr, 0);
	ck_assert_uint_eq(x->d.n, 0);
	/* include splices policies/a_internal.gwr and b_partner.gwr first */
	ck_assert_uint_eq(x->f.nitems, 8);
	ck_assert_str_eq(x->f.items[0].name, "internal_only");
	ck_assert_str_eq(x->f.items[1].name, "partner");
	ck_assert_str_eq(x->f.items[2].name, "users");
	ck_assert_int_eq(x->f.items[2].kind, AI_UPSTREAM);
	ck_assert_uint_eq(x->f.nsources, 3);
	ck_assert(strstr(x->f.items[0].pos.file, "policies/a_internal.gwr"));
	ck_assert_uint_eq(x->f.items[0].pos.src, 1);
	ck_assert_str_eq(x->f.items[0].comment,
	                 "# spliced where example.gwr includes \"policies/*.gwr\"");

	u = &x->f.items[2];
	ck_assert_uint_eq(u->pos.line, 3);
	ck_assert_uint_eq(u->name_pos.col, 10);
	ck_assert_uint_eq(u->ndirs, 10);
	d = &u->dirs[0];
	ck_assert_str_eq(d->name, "server");
	ck_assert_uint_eq(d->nargs, 1);
	ck_assert_int_eq(d->args[0].kind, AV_ADDR);
	ck_assert_str_eq(d->args[0].s, "10.0.0.11:8080");
	ck_assert_uint_eq(d->nopts, 1);
	ck_assert_str_eq(d->opts[0].key, "weight");
	ck_assert_int_eq(d->opts[0].val.i, 3);
	ck_assert_str_eq(u->dirs[2].args[1].s, "backup");
	d = &u->dirs[7];                         /* retries 2 on connect_error, 502, 503; */
	ck_assert_str_eq(d->name, "retries");
	ck_assert_uint_eq(d->nargs, 5);
	ck_assert_int_eq(d->args[4].i, 503);
	d = &u->dirs[8];                         /* health_check { ... } */
	ck_assert_int_eq(d->has_block, 1);
	ck_assert_uint_eq(d->nblock, 6);
	ck_assert_str_eq(d->block[5].name, "expect");
	ck_assert_int_eq(d->block[5].args[0].kind, AV_RANGE);
	ck_assert_int_eq(d->block[5].args[0].i2, 399);

	r = item(x, "users");
	r = &x->f.items[4];
	ck_assert_int_eq(r->kind, AI_ROUTE);
	ck_assert_int_eq(r->nmatch, 1);
	ck_assert_uint_eq(r->match_pos.line, 22);
	ck_assert_uint_eq(r->match_pos.col, 5);
	e = r->match;                            /* (host and path) and method */
	ck_assert_int_eq(e->kind, AE_AND);
	ck_assert_int_eq(e->a->kind, AE_AND);
	ck_assert_int_eq(e->a->a->kind, AE_HOST_EQ);
	ck_assert_str_eq(e->a->a->s, "api.example.com");
	ck_assert_int_eq(e->a->b->kind, AE_PATH_PREFIX);
	ck_assert_str_eq(e->a->b->s, "/v1/users/");
	ck_assert_uint_eq(e->a->b->vpos.col, 49);
	ck_assert_int_eq(e->b->kind, AE_METHOD);
	ck_assert_uint_eq(e->b->methods, GWB_M_GET | GWB_M_POST);
	d = &r->dirs[1];                          /* auth key header=... keys=file("keys.txt") */
	ck_assert_str_eq(d->name, "auth");
	ck_assert_int_eq(d->opts[1].val.kind, AV_CALL);
	ck_assert_str_eq(d->opts[1].val.s, "file");
	ck_assert_uint_eq(d->opts[1].val.nargs, 1);
	ck_assert_str_eq(d->opts[1].val.args[0].s, "keys.txt");

	r = item(x, "health");
	ck_assert_str_eq(r->dirs[0].args[1].s, "ok\n");
	ck_assert_str_eq(r->dirs[0].args[1].raw, "\"ok\\n\"");
	r = item(x, "old_docs");
	ck_assert_int_eq(r->match->kind, AE_PATH_RE);
	ck_assert_str_eq(r->match->s, "^/docs/v1/(.*)$");
	r = item(x, "fallback");
	ck_assert_int_eq(r->match->kind, AE_ANY);
	ck_assert_str_eq(r->dirs[0].args[1].s, "{\"error\":\"no route\"}");
	/* the diag context can print caret lines from the sources */
	ck_assert_ptr_eq(x->d.sources, x->f.sources);
	parsed_free(x);
}
END_TEST

START_TEST(t_values)
{
	struct parsed *x = parse_s(
		"upstream u dynamic;\n"
		"upstream v dynamic { server https://h.example:8443 tls_sni=\"h\"; }\n"
		"policy p {\n"
		"    balance hash(header(\"X-User\"));\n"
		"    cors origins=\"*\" methods=(GET, POST) max_age=1h;\n"
		"    log sample=0.25;\n"
		"    body_limit 8m;\n"
		"    allow 10.0.0.0/8 192.168.0.0/16, ::1;\n"
		"    cors methods=GET, POST headers=X-A,X-B credentials=on;\n"
		"}\n");
	const ast_item *p;
	const ast_directive *d;

	ck_assert_int_eq(x->nerr, 0);
	ck_assert_uint_eq(x->f.nitems, 3);
	ck_assert_int_eq(x->f.items[0].dynamic, 1);
	ck_assert_uint_eq(x->f.items[0].ndirs, 0);
	ck_assert_int_eq(x->f.items[1].dynamic, 1);
	ck_assert_int_eq(x->f.items[1].dirs[0].args[0].kind, AV_ADDR);
	p = &x->f.items[2];
	d = &p->dirs[0];
	ck_assert_int_eq(d->args[0].kind, AV_CALL);
	ck_assert_str_eq(d->args[0].s, "hash");
	ck_assert_int_eq(d->args[0].args[0].kind, AV_CALL);
	ck_assert_str_eq(d->args[0].args[0].s, "header");
	ck_assert_str_eq(d->args[0].args[0].args[0].s, "X-User");
	d = &p->dirs[1];
	ck_assert_uint_eq(d->nargs, 0);
	ck_assert_uint_eq(d->nopts, 3);
	ck_assert_int_eq(d->opts[1].val.kind, AV_LIST);
	ck_assert_uint_eq(d->opts[1].val.nargs, 2);
	ck_assert_str_eq(d->opts[1].val.args[1].s, "POST");
	ck_assert_int_eq(d->opts[2].val.i, 3600000);
	d = &p->dirs[2];
	ck_assert_int_eq(d->opts[0].val.kind, AV_FLOAT);
	ck_assert_double_eq_tol(d->opts[0].val.f, 0.25, 1e-12);
	d = &p->dirs[3];
	ck_assert_int_eq(d->args[0].kind, AV_DURATION);
	ck_assert_int_eq(d->args[0].i2, 8 << 20);
	d = &p->dirs[4];
	ck_assert_uint_eq(d->nargs, 3);
	ck_assert_int_eq(d->args[2].kind, AV_CIDR);
	ck_assert_str_eq(d->args[2].s, "::1");
	ck_assert_uint_eq(d->args[2].pos.col, 38);
	/* key=a, b: the list (a, b), as key=(a, b) */
	d = &p->dirs[5];
	ck_assert_uint_eq(d->nargs, 0);
	ck_assert_uint_eq(d->nopts, 3);
	ck_assert_int_eq(d->opts[0].val.kind, AV_LIST);
	ck_assert_uint_eq(d->opts[0].val.nargs, 2);
	ck_assert_str_eq(d->opts[0].val.args[1].s, "POST");
	ck_assert_int_eq(d->opts[1].val.kind, AV_LIST);
	ck_assert_str_eq(d->opts[1].val.args[0].s, "X-A");
	ck_assert_int_eq(d->opts[2].val.kind, AV_IDENT);
	parsed_free(x);
}
END_TEST

START_TEST(t_match_forms)
{
	struct parsed *x = parse_s(
		"route r {\n"
		"  match not host == \"*.Example.COM\" or header(\"X-Env\") == \"canary\" and query(\"v\")\n"
		"        or (cookie(\"b\") == \"1\" or cookie(\"c\")) and client_ip in (10.0.0.0/8, ::1/128)\n"
		"        or client_ip in 127.0.0.1 or method == DELETE or not not any;\n"
		"  respond 200;\n"
		"}\n");
	const ast_expr *e, *o;

	if (x->nerr)
		dump(x);
	ck_assert_int_eq(x->nerr, 0);
	e = x->f.items[0].match;
	/* or is left-associative: ((((A or B) or C) or D) or E) or F */
	ck_assert_int_eq(e->kind, AE_OR);
	ck_assert_int_eq(e->b->kind, AE_NOT);
	ck_assert_int_eq(e->b->a->kind, AE_NOT);
	ck_assert_int_eq(e->b->a->a->kind, AE_ANY);
	o = e->a;
	ck_assert_int_eq(o->b->kind, AE_METHOD);
	ck_assert_uint_eq(o->b->methods, GWB_M_DELETE);
	o = o->a;
	ck_assert_int_eq(o->b->kind, AE_IP_IN);
	ck_assert_uint_eq(o->b->ncidrs, 1);
	ck_assert_str_eq(o->b->cidrs[0].s, "127.0.0.1");
	o = o->a;
	ck_assert_int_eq(o->b->kind, AE_AND);    /* (cookie or cookie) and client_ip */
	ck_assert_int_eq(o->b->a->kind, AE_OR);
	ck_assert_int_eq(o->b->a->a->kind, AE_COOKIE_EQ);
	ck_assert_str_eq(o->b->a->a->name, "b");
	ck_assert_int_eq(o->b->a->b->kind, AE_COOKIE_HAS);
	ck_assert_int_eq(o->b->b->kind, AE_IP_IN);
	ck_assert_uint_eq(o->b->b->ncidrs, 2);
	ck_assert_str_eq(o->b->b->cidrs[1].s, "::1/128");
	o = o->a;                                /* not host or (header and query) */
	ck_assert_int_eq(o->kind, AE_OR);
	ck_assert_int_eq(o->a->kind, AE_NOT);
	ck_assert_int_eq(o->a->a->kind, AE_HOST_EQ);
	ck_assert_str_eq(o->a->a->s, "*.example.com");   /* lowercased */
	ck_assert_int_eq(o->b->kind, AE_AND);
	ck_assert_int_eq(o->b->a->kind, AE_HEADER_EQ);
	ck_assert_str_eq(o->b->a->name, "X-Env");
	ck_assert_str_eq(o->b->a->s, "canary");
	ck_assert_int_eq(o->b->b->kind, AE_QUERY_HAS);
	ck_assert_uint_eq(o->b->b->pos.line, 2);
	ck_assert_uint_eq(o->b->b->pos.col, 72);
	parsed_free(x);
}
END_TEST

/* ------------------------------------------------- errors of §5, exact */
START_TEST(t_err_unterminated_string)
{
	struct parsed *x = parse_s("route a {\n    match any;\n    respond 200 \"ok;\n}\n");

	only_error(x, 3, 17, "unterminated string");
	ck_assert_uint_eq(x->f.nitems, 1);       /* the route survives */
	parsed_free(x);
}
END_TEST

START_TEST(t_err_unterminated_string_eats_brace)
{
	/* the string swallows the '}' of its line: one error, the string's,
	 * not also "unterminated block" at the route's '{' (which would come
	 * first in the output) */
	struct parsed *x = parse_s("route r { match any; respond 200 \"abc; }\n"
	                           "route s { match any; respond 200 \"ok\"; }\n");

	only_error(x, 1, 34, "unterminated string");
	parsed_free(x);
}
END_TEST

START_TEST(t_err_unterminated_block)
{
	struct parsed *x = parse_s("route a {\n    match any;\n    health_check { path \"/h\"; }\n    proxy u;\n");

	only_error(x, 1, 9, "unterminated block: '{' opened here is never closed");
	ck_assert_uint_eq(x->d.v[0].span, 1);
	ck_assert_uint_eq(x->f.nitems, 1);
	ck_assert_uint_eq(x->f.items[0].ndirs, 2);
	parsed_free(x);
}
END_TEST

START_TEST(t_err_unterminated_block_before_item)
{
	struct parsed *x = parse_s("route a {\n    match any;\n    proxy u;\n\n"
	                           "route b {\n    match any;\n    proxy v;\n}\n");

	only_error(x, 1, 9, "'route' on line 5 starts a new item");
	ck_assert_uint_eq(x->f.nitems, 2);       /* b is parsed as its own route */
	ck_assert_str_eq(x->f.items[1].name, "b");
	ck_assert_uint_eq(x->f.items[1].ndirs, 1);
	parsed_free(x);
}
END_TEST

START_TEST(t_err_bad_escape)
{
	struct parsed *x = parse_s("route a {\n  match any;\n  respond 200 \"x\\zy\";\n}");

	only_error(x, 3, 17, "bad escape '\\z'");
	parsed_free(x);
}
END_TEST

START_TEST(t_err_invalid_cidr)
{
	struct parsed *x = parse_s("route a {\n  match client_ip in (10.0.0.0/8, 192.168.1.1/16);\n  respond 200;\n}");

	only_error(x, 2, 35, "invalid CIDR '192.168.1.1/16': host bits set; did you mean 192.168.0.0/16?");
	ck_assert_ptr_nonnull(x->f.items[0].match);
	parsed_free(x);
}
END_TEST

START_TEST(t_err_bad_byte)
{
	struct parsed *x = parse_s("route a {\n  match any;\n  proxy up`stream;\n  tag \"x\";\n}");

	only_error(x, 3, 11, "unexpected character '`'");
	ck_assert_uint_eq(x->f.items[0].ndirs, 1);   /* the statement is skipped, tag kept */
	ck_assert_str_eq(x->f.items[0].dirs[0].name, "tag");
	parsed_free(x);
}
END_TEST

START_TEST(t_err_unknown_top_keyword)
{
	struct parsed *x = parse_s("rout a {\n  match any;\n}\nupstrem u { }\nfoo;\nroute b { match any; }\n");

	ck_assert_int_eq(x->nerr, 3);
	err_at(x, 0, "t.gwr", 1, 1, "unknown top-level keyword 'rout'; did you mean 'route'?");
	ck_assert_uint_eq(x->d.v[0].span, 4);
	err_at(x, 1, "t.gwr", 4, 1, "unknown top-level keyword 'upstrem'; did you mean 'upstream'?");
	err_at(x, 2, "t.gwr", 5, 1, "unknown top-level keyword 'foo' (expected include, upstream, policy or route)");
	ck_assert_uint_eq(x->f.nitems, 1);
	ck_assert_str_eq(x->f.items[0].name, "b");
	parsed_free(x);
}
END_TEST

START_TEST(t_err_include_cycle)
{
	struct parsed *x = parse_f("cycle/a.gwr");

	if (x->nerr != 1)
		dump(x);
	ck_assert_int_eq(x->nerr, 1);
	err_at(x, 0, "cycle/b.gwr", 2, 9, "include cycle: ");
	ck_assert(strstr(x->d.v[0].msg, "cycle/a.gwr -> "));
	ck_assert(strstr(x->d.v[0].msg, "cycle/b.gwr -> "));
	ck_assert_msg(strlen(x->d.v[0].msg) > 12 &&
	              strcmp(x->d.v[0].msg + strlen(x->d.v[0].msg) - 12, "/cycle/a.gwr") == 0,
	              "%s", x->d.v[0].msg);
	/* both routes are there, b first: it is spliced before a's route */
	ck_assert_uint_eq(x->f.nitems, 2);
	ck_assert_str_eq(x->f.items[0].name, "b");
	ck_assert_str_eq(x->f.items[1].name, "a");
	parsed_free(x);
}
END_TEST

START_TEST(t_err_missing_include)
{
	struct parsed *x = parse_f("missing/main.gwr");

	/* a plain path that is missing is an error; a glob matching nothing
	 * (line 2) includes nothing, as nginx's include */
	ck_assert_int_eq(x->nerr, 1);
	err_at(x, 0, "missing/main.gwr", 1, 9, "cannot open included file '");
	ck_assert(strstr(x->d.v[0].msg, "missing/nope.gwr': No such file or directory"));
	ck_assert_uint_eq(x->f.nitems, 1);
	parsed_free(x);
}
END_TEST

START_TEST(t_err_missing_root)
{
	struct parsed *x = parse_f("no-such-file.gwr");

	ck_assert_int_eq(x->nerr, 1);
	ck_assert(strstr(x->d.v[0].msg, "No such file or directory"));
	ck_assert_uint_eq(x->d.v[0].pos.line, 0);
	ck_assert_uint_eq(x->f.nitems, 0);
	parsed_free(x);
}
END_TEST

START_TEST(t_err_match_expressions)
{
	struct parsed *x = parse_s(
		"route a {\n"
		"  match hots == \"x\";\n"                      /* 2: unknown, did you mean */
		"}\n"
		"route b { match host == \"a.com\" and; }\n"    /* 4: missing operand */
		"route c { match method == get; }\n"           /* 5: method case */
		"route d { match method in (GET, FETCH); }\n"  /* 6: unknown method */
		"route e { match host == \"a.*.com\"; }\n"     /* 7: bad wildcard */
		"route f { match host ^= \"a\"; }\n"           /* 8: host takes == only */
		"route g { match (path == \"/\" or any; }\n"   /* 9: unclosed ( */
		"route h { match path == \"/\" any; }\n"       /* 10: junk after expr */
		"route i { match header(X) == \"1\"; }\n"      /* 11: unquoted name */
		"route j { match client_ip in 10.0.0.0; }\n"   /* 12: ok (bare address) */
		"route k { match client_ip == 10.0.0.0/8; }\n" /* 13: needs in */
		"route l { match path == \"/\"; match any; }\n"/* 14: two matches */
		"policy p { match any; }\n"                    /* 15: match outside route */
		"route m { match host == \"*\"; }\n"           /* 16: bare star */
		"route n { match method == \"GET\"; }\n");     /* 17: quoted method */

	if (x->nerr != 14)
		dump(x);
	ck_assert_int_eq(x->nerr, 14);
	ck_assert_uint_eq(x->d.n, 15);
	err_at(x, 0, "t.gwr", 2, 9, "unknown match condition 'hots'; did you mean 'host'?");
	err_at(x, 1, "t.gwr", 4, 36, "expected a match condition");
	err_at(x, 2, "t.gwr", 5, 27, "unknown method 'get'; did you mean 'GET'?");
	err_at(x, 3, "t.gwr", 6, 33, "unknown method 'FETCH'");
	err_at(x, 4, "t.gwr", 7, 25, "invalid host wildcard \"a.*.com\"");
	err_at(x, 5, "t.gwr", 8, 22, "host supports only '=='");
	err_at(x, 6, "t.gwr", 9, 36, "expected ')' to close the '(' at 9:17, found ';'");
	err_at(x, 7, "t.gwr", 10, 29, "expected 'and', 'or' or ';' after the match condition, found 'any'");
	err_at(x, 8, "t.gwr", 11, 24, "expected a quoted name in header(...), found 'X'");
	err_at(x, 9, "t.gwr", 13, 27, "expected 'in' after 'client_ip', found '=='");
	err_at(x, 10, "t.gwr", 14, 30, "route 'l' has two match statements");
	ck_assert_int_eq(x->d.v[11].level, DIAG_NOTE);
	ck_assert_uint_eq(x->d.v[11].pos.col, 11);
	err_at(x, 12, "t.gwr", 15, 12, "'match' is only allowed directly inside a route");
	err_at(x, 13, "t.gwr", 16, 25, "invalid host wildcard \"*\"");
	err_at(x, 14, "t.gwr", 17, 27, "method names are not quoted");
	ck_assert_int_eq(item(x, "l")->nmatch, 2);
	ck_assert_str_eq(item(x, "l")->match->s, "/");
	ck_assert_int_eq(item(x, "j")->match->kind, AE_IP_IN);
	ck_assert_ptr_null(item(x, "a")->match);
	parsed_free(x);
}
END_TEST

/* ---------------------------------------------------- recovery, syntax */
START_TEST(t_four_errors_in_one_file)
{
	struct parsed *x = parse_f("errors4.gwr");

	if (x->d.n != 4)
		dump(x);
	ck_assert_int_eq(x->nerr, 4);
	ck_assert_uint_eq(x->d.n, 4);
	diag_sort(&x->d);
	err_at(x, 0, "errors4.gwr", 3, 38, "expected a match condition");
	err_at(x, 1, "errors4.gwr", 7, 1, "unknown top-level keyword 'rout'; did you mean 'route'?");
	err_at(x, 2, "errors4.gwr", 13, 22, "bad escape '\\q'");
	err_at(x, 3, "errors4.gwr", 14, 11, "invalid CIDR '10.0.0.1/8': host bits set; did you mean 10.0.0.0/8?");
	/* a and c are there (b was skipped with its block) */
	ck_assert_uint_eq(x->f.nitems, 2);
	ck_assert_uint_eq(item(x, "a")->ndirs, 1);
	ck_assert_uint_eq(item(x, "c")->ndirs, 2);
	parsed_free(x);
}
END_TEST

START_TEST(t_err_missing_semicolons)
{
	struct parsed *x = parse_s(
		"route a {\n"
		"    match any\n"
		"    proxy u\n"
		"    tag \"x\"\n"
		"}\n"
		"route b { match any; respond 200 }\n");

	ck_assert_int_eq(x->nerr, 4);
	err_at(x, 0, "t.gwr", 2, 14, "expected ';' at the end of the statement");
	err_at(x, 1, "t.gwr", 3, 12, "expected ';' at the end of the statement");
	err_at(x, 2, "t.gwr", 4, 12, "expected ';' after 'tag'");
	err_at(x, 3, "t.gwr", 6, 33, "expected ';' after 'respond'");
	/* every statement survives */
	ck_assert_ptr_nonnull(item(x, "a")->match);
	ck_assert_uint_eq(item(x, "a")->ndirs, 2);
	ck_assert_uint_eq(item(x, "b")->ndirs, 1);
	parsed_free(x);
}
END_TEST

START_TEST(t_err_syntax_misc)
{
	struct parsed *x = parse_s(
		"route { match any; }\n"                        /* 1: no name */
		"upstream u server 1.2.3.4:80;\n"               /* 2: no { */
		"}\n"                                          /* 3: stray } */
		"route a {\n"
		"  allow , 10.0.0.0/8;\n"                       /* 5: leading comma */
		"  allow 10.0.0.0/8,;\n"                        /* 6: trailing comma */
		"  cors origins=\"*\", x=1;\n"                  /* 7: comma before an option */
		"  set_header request (\"a\" \"b\");\n"         /* 8: bad list */
		"  include \"x.gwr\";\n"                        /* 9: include in a block */
		"  = 3;\n"                                     /* 10: no directive name */
		"  file(\"a\";\n"                               /* 11: unclosed call */
		"}\n"
		"include x;\n");                               /* 13: unquoted include */

	if (x->nerr != 11)
		dump(x);
	ck_assert_int_eq(x->nerr, 11);
	err_at(x, 0, "t.gwr", 1, 7, "expected a name after 'route', found '{'");
	err_at(x, 1, "t.gwr", 2, 12, "expected '{' or 'dynamic' after 'upstream u', found 'server'");
	err_at(x, 2, "t.gwr", 3, 1, "unexpected '}' (no block is open)");
	err_at(x, 3, "t.gwr", 5, 9, "unexpected ','");
	err_at(x, 4, "t.gwr", 6, 20, "expected a value after ',', found ';'");
	err_at(x, 5, "t.gwr", 7, 19, "unexpected ',' after key=value");
	err_at(x, 6, "t.gwr", 8, 27, "expected ',' or ')', found string");
	err_at(x, 7, "t.gwr", 9, 3, "'include' is only allowed at the top level");
	err_at(x, 8, "t.gwr", 10, 3, "expected a directive name, found '='");
	err_at(x, 9, "t.gwr", 11, 7, "'(' is never closed");
	err_at(x, 10, "t.gwr", 13, 9, "expected a quoted file name or glob after 'include', found 'x'");
	parsed_free(x);
}
END_TEST

START_TEST(t_lexer_error_no_cascade)
{
	/* one lexical error per statement, and no parse error on top of it */
	struct parsed *x = parse_s("route a {\n  match path == \"/a\" and host == \"b\\q\";\n  proxy 5sec;\n  respond 200;\n}\n");

	ck_assert_int_eq(x->nerr, 2);
	err_at(x, 0, "t.gwr", 2, 36, "bad escape");
	err_at(x, 1, "t.gwr", 3, 10, "unknown unit 'sec'");
	ck_assert_ptr_nonnull(item(x, "a")->match);
	ck_assert_uint_eq(item(x, "a")->ndirs, 1);
	parsed_free(x);
}
END_TEST

/* hostile nesting is an error, not a stack overflow */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p = s;

	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

START_TEST(t_err_limits)
{
	static const struct { const char *head, *unit, *tail, *msg; unsigned col; } c[] = {
		{ "route a { match ", "(", "any", "nested too deeply", 217 },
		{ "route a { match ", "not ", "any;", "nested too deeply", 817 },
		{ "route a { x ", "f(", "1", "nested too deeply", 414 },
		{ "route a { ", "x { ", "", "nested too deeply", 813 },
		{ "route a { match any", " or any", "; }", "match expression too long", 11 },
	};

	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		char *src = repeat(c[i].head, c[i].unit, i == 4 ? 600 : 100000, c[i].tail);
		struct parsed *x = parse_s(src);
		ck_assert_int_ge(x->nerr, 1);
		err_at(x, 0, "t.gwr", 1, c[i].col, c[i].msg);
		parsed_free(x);
		free(src);
	}
}
END_TEST

/* -------------------------------------------------------------- include */
START_TEST(t_include_glob_order)
{
	struct parsed *x = parse_f("include/main.gwr");
	static const char *const order[] = { "first", "ten", "inner", "two", "last" };

	/* the glob sub/ *.gwr is sorted bytewise: 10.gwr before 2.gwr; 2.gwr includes
	 * deeper/inner.gwr relative to itself, before its own route */
	ck_assert_uint_eq(x->f.nitems, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_str_eq(x->f.items[i].name, order[i]);
	ck_assert(strstr(x->f.items[2].pos.file, "include/sub/deeper/inner.gwr"));
	ck_assert_uint_eq(x->f.nsources, 4);
	/* an error inside an included file carries that file's path */
	ck_assert_int_eq(x->nerr, 1);
	err_at(x, 0, "include/sub/2.gwr", 5, 22, "bad escape");
	ck_assert_uint_eq(x->d.v[0].pos.src, 2);
	ck_assert_str_eq(x->f.sources[2].path, x->d.v[0].pos.file);
	parsed_free(x);
}
END_TEST

START_TEST(t_include_from_string_uses_cwd)
{
	struct parsed *x;
	char cwd[1024];
	const char *src = "include \"include/sub/10.gwr\";\n";

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_int_eq(chdir(DATA), 0);
	x = parse_s(src);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(x->nerr, 0);
	ck_assert_uint_eq(x->f.nitems, 1);
	ck_assert_str_eq(x->f.items[0].name, "ten");
	ck_assert_str_eq(x->f.items[0].pos.file, "include/sub/10.gwr");
	parsed_free(x);
}
END_TEST

/* ---------------------------------------------------------- diagnostics */
static char *capture(void (*print)(const diag_ctx *, FILE *), const diag_ctx *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	print(d, m);
	fclose(m);
	return buf;
}

START_TEST(t_diag_text_format)
{
	struct parsed *x = parse_s("route a {\n\tmatch any;\n\trate_limt 100r/s;\n\tallow 10.0.0.1/8;\n}\n");
	char *out;

	ck_assert_int_eq(x->nerr, 1);
	diag_warning(&x->d, x->f.items[0].dirs[0].pos, 9, "unknown", "unknown directive '%s'; did you mean '%s'?",
	             "rate_limt", "rate_limit");
	diag_note(&x->d, x->f.items[0].pos, 5, "in route '%s'", "a");
	diag_sort(&x->d);
	out = capture(diag_print_text, &x->d);
	ck_assert_str_eq(out,
		"t.gwr:3:2: warning: unknown directive 'rate_limt'; did you mean 'rate_limit'? [-Wunknown]\n"
		"\trate_limt 100r/s;\n"
		"\t^~~~~~~~~\n"
		"t.gwr:1:1: note: in route 'a'\n"
		"route a {\n"
		"^~~~~\n"
		"t.gwr:4:8: error: invalid CIDR '10.0.0.1/8': host bits set; did you mean 10.0.0.0/8? [-Wcidr]\n"
		"\tallow 10.0.0.1/8;\n"
		"\t      ^~~~~~~~~~\n");
	free(out);
	x->d.strict = 1;
	ck_assert_int_eq(diag_failed(&x->d), 1);
	out = capture(diag_print_text, &x->d);
	ck_assert(strncmp(out, "t.gwr:3:2: error: unknown directive", 35) == 0);
	free(out);
	parsed_free(x);
}
END_TEST

START_TEST(t_diag_json_sarif)
{
	struct parsed *x = parse_s("route a {\n  match any;\n  respond 200 \"a\\qb\";\n}\n");
	char *out;

	diag_warning(&x->d, x->f.items[0].pos, 5, "unused", "route \"%s\"\tunused", "a");
	out = capture(diag_print_json, &x->d);
	ck_assert_str_eq(out,
		"{\"diagnostics\":["
		"{\"file\":\"t.gwr\",\"line\":3,\"column\":17,\"level\":\"error\","
		"\"message\":\"bad escape '\\\\q' in string (known: \\\\\\\" \\\\\\\\ \\\\n \\\\t \\\\xHH)\",\"name\":\"syntax\"},"
		"{\"file\":\"t.gwr\",\"line\":1,\"column\":1,\"level\":\"warning\","
		"\"message\":\"route \\\"a\\\"\\tunused\",\"name\":\"unused\"}"
		"],\"errors\":1,\"warnings\":1}\n");
	free(out);
	out = capture(diag_print_sarif, &x->d);
	ck_assert(strstr(out, "\"version\":\"2.1.0\""));
	ck_assert(strstr(out, "\"tool\":{\"driver\":{\"name\":\"gwc\""));
	ck_assert(strstr(out, "{\"ruleId\":\"syntax\",\"level\":\"error\",\"message\":{\"text\":\"bad escape"));
	ck_assert(strstr(out, "\"artifactLocation\":{\"uri\":\"t.gwr\"},\"region\":{\"startLine\":3,\"startColumn\":17,\"endColumn\":19}"));
	ck_assert(strstr(out, "{\"ruleId\":\"unused\",\"level\":\"warning\""));
	free(out);
	parsed_free(x);
}
END_TEST

START_TEST(t_diag_suggest)
{
	static const char *const c[] = { "rate_limit", "conn_limit", "body_limit", "route", "GET" };

	ck_assert_str_eq(diag_suggest("rate_limt", c, 5), "rate_limit");
	ck_assert_str_eq(diag_suggest("conn_limits", c, 5), "conn_limit");
	ck_assert_str_eq(diag_suggest("rout", c, 5), "route");
	ck_assert_str_eq(diag_suggest("get", c, 5), "GET");
	ck_assert_ptr_null(diag_suggest("proxy", c, 5));
	ck_assert_ptr_null(diag_suggest("x", c, 5));
	ck_assert_ptr_null(diag_suggest("route", c, 5));   /* itself is no suggestion */
}
END_TEST

START_TEST(t_diag_sort_keeps_notes)
{
	diag_ctx d;
	ast_pos a = { "f", 9, 1, 0 }, b = { "f", 2, 1, 0 }, c = { "g", 1, 1, 1 };

	diag_init(&d);
	diag_error(&d, a, 1, NULL, "late");
	diag_note(&d, b, 1, "note of late");       /* points earlier, stays with 'late' */
	diag_error(&d, c, 1, NULL, "other file");
	diag_error(&d, b, 1, NULL, "early");
	diag_error(&d, b, 1, NULL, "early 2");    /* ties keep insertion order */
	diag_sort(&d);
	ck_assert_str_eq(d.v[0].msg, "early");
	ck_assert_str_eq(d.v[1].msg, "early 2");
	ck_assert_str_eq(d.v[2].msg, "late");
	ck_assert_str_eq(d.v[3].msg, "note of late");
	ck_assert_str_eq(d.v[4].msg, "other file");
	ck_assert_uint_eq(d.nerrors, 4);
	ck_assert_int_eq(diag_failed(&d), 1);
	diag_fini(&d);
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *t = tcase_create("tree"), *e = tcase_create("errors"),
	      *i = tcase_create("include"), *g = tcase_create("diag");

	tcase_add_test(t, t_example_parses);
	tcase_add_test(t, t_values);
	tcase_add_test(t, t_match_forms);
	tcase_add_test(e, t_err_unterminated_string);
	tcase_add_test(e, t_err_unterminated_string_eats_brace);
	tcase_add_test(e, t_err_unterminated_block);
	tcase_add_test(e, t_err_unterminated_block_before_item);
	tcase_add_test(e, t_err_bad_escape);
	tcase_add_test(e, t_err_invalid_cidr);
	tcase_add_test(e, t_err_bad_byte);
	tcase_add_test(e, t_err_unknown_top_keyword);
	tcase_add_test(e, t_err_include_cycle);
	tcase_add_test(e, t_err_missing_include);
	tcase_add_test(e, t_err_missing_root);
	tcase_add_test(e, t_err_match_expressions);
	tcase_add_test(e, t_four_errors_in_one_file);
	tcase_add_test(e, t_err_missing_semicolons);
	tcase_add_test(e, t_err_syntax_misc);
	tcase_add_test(e, t_lexer_error_no_cascade);
	tcase_add_test(e, t_err_limits);
	tcase_add_test(i, t_include_glob_order);
	tcase_add_test(i, t_include_from_string_uses_cwd);
	tcase_add_test(g, t_diag_text_format);
	tcase_add_test(g, t_diag_json_sarif);
	tcase_add_test(g, t_diag_suggest);
	tcase_add_test(g, t_diag_sort_keeps_notes);
	suite_add_tcase(s, t);
	suite_add_tcase(s, e);
	suite_add_tcase(s, i);
	suite_add_tcase(s, g);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(parse_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

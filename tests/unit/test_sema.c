/*
 * test_sema.c — semantic checks: every error and warning of sema.c with
 * its exact line:col and message, the shadowed-route analysis (what it
 * must catch and what it must leave alone), and the decoder's defaults.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gwb.h"
#include "sema.h"

#define DATA SEMA_DATA_DIR

typedef struct run {
	ast_file f;
	diag_ctx d;
	int nerr;
} run;

static void dump(const run *x)
{
	for (size_t i = 0; i < x->d.n; i++)
		fprintf(stderr, "  %u:%u: %s: %s [%s]\n", x->d.v[i].pos.line, x->d.v[i].pos.col,
		        x->d.v[i].level == DIAG_ERROR ? "error" :
		        x->d.v[i].level == DIAG_WARNING ? "warning" : "note",
		        x->d.v[i].msg, x->d.v[i].name ? x->d.v[i].name : "");
}

/* parse (must be clean) + sema; the file is named inside the data dir so
 * that file("keys.txt") resolves there */
static run *sema_s(const char *src)
{
	run *x = calloc(1, sizeof *x);
	diag_init(&x->d);
	int pe = parse_string(DATA "/t.gwr", src, strlen(src), &x->f, &x->d);
	if (pe)
		dump(x);
	ck_assert_int_eq(pe, 0);
	x->d.sources = x->f.sources;
	x->d.nsources = x->f.nsources;
	x->nerr = sema_check(&x->f, &x->d);
	ck_assert_uint_eq((size_t)x->nerr, x->d.nerrors);
	diag_sort(&x->d);
	return x;
}

static void run_free(run *x)
{
	ast_free(&x->f);
	diag_fini(&x->d);
	free(x);
}

/* a diagnostic of that level at line:col, of class name, with frag */
static const diag *has(const run *x, enum diag_level lv, unsigned line, unsigned col,
                       const char *name, const char *frag)
{
	for (size_t i = 0; i < x->d.n; i++) {
		const diag *g = &x->d.v[i];
		if (g->level == lv && g->pos.line == line && g->pos.col == col &&
		    (!name || (g->name && strcmp(g->name, name) == 0)) && strstr(g->msg, frag))
			return g;
	}
	dump(x);
	ck_abort_msg("no %s at %u:%u [%s] with '%s'",
	             lv == DIAG_ERROR ? "error" : lv == DIAG_WARNING ? "warning" : "note",
	             line, col, name ? name : "-", frag);
	return NULL;
}

static size_t count(const run *x, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < x->d.n; i++)
		if (x->d.v[i].name && strcmp(x->d.v[i].name, name) == 0)
			n++;
	return n;
}

static void clean(const run *x)
{
	if (x->d.n)
		dump(x);
	ck_assert_uint_eq(x->d.n, 0);
}

/* ================================================================ errors */

START_TEST(t_unknown_directive)
{
	run *x = sema_s("route r {\n"
	                "    match any;\n"
	                "    rate_limt 10r/s;\n"
	                "    respond 200;\n"
	                "}\n");
	const diag *g = has(x, DIAG_ERROR, 3, 5, "unknown",
	                    "unknown directive 'rate_limt'; did you mean 'rate_limit'?");
	ck_assert_uint_eq(g->span, 9);
	ck_assert_int_eq(x->nerr, 1);
	run_free(x);

	/* suggestions only from the names valid at that place */
	x = sema_s("upstream u {\n"
	           "    server 10.0.0.1:80;\n"
	           "    keepalve 10;\n"
	           "}\n"
	           "route r { match any; proxy u; }\n");
	has(x, DIAG_ERROR, 3, 5, "unknown", "did you mean 'keepalive'?");
	run_free(x);

	x = sema_s("route r { match any; respond 200; frobnicate 1; }\n");
	has(x, DIAG_ERROR, 1, 35, "unknown", "unknown directive 'frobnicate' in a route");
	run_free(x);

	/* a misspelt action is one error, not also "route has no action" */
	x = sema_s("route r { match any; respnd 200; }\n");
	has(x, DIAG_ERROR, 1, 22, "unknown", "unknown directive 'respnd'; did you mean 'respond'?");
	ck_assert_int_eq(x->nerr, 1);
	run_free(x);
}
END_TEST

START_TEST(t_unknown_option)
{
	run *x = sema_s("route r {\n"
	                "    match any;\n"
	                "    rate_limit 10r/s brust=5;\n"
	                "    respond 200;\n"
	                "}\n");
	has(x, DIAG_ERROR, 3, 22, "unknown",
	    "unknown option 'brust' for 'rate_limit'; did you mean 'burst'?");
	run_free(x);

	x = sema_s("upstream u {\n"
	           "    server 10.0.0.1:80 wieght=3;\n"
	           "}\n"
	           "route r { match any; proxy u; }\n");
	has(x, DIAG_ERROR, 2, 24, "unknown", "did you mean 'weight'?");
	run_free(x);

	x = sema_s("route r { match any; body_limit 1k max=2; respond 200; }\n");
	has(x, DIAG_ERROR, 1, 36, "unknown", "'body_limit' takes no options");
	run_free(x);
}
END_TEST

START_TEST(t_wrong_type)
{
	run *x = sema_s("route r {\n"
	                "    match any;\n"
	                "    rate_limit fast;\n"
	                "    respond 200;\n"
	                "}\n");
	has(x, DIAG_ERROR, 3, 16, "type",
	    "rate_limit expects a rate like 100r/s, got identifier 'fast'");
	run_free(x);

	x = sema_s("route r {\n"
	           "    match any;\n"
	           "    rate_limit 10r/s burst=lots;\n"
	           "    body_limit \"big\";\n"
	           "    proxy 42;\n"
	           "}\n");
	has(x, DIAG_ERROR, 3, 28, "type", "burst=... expects an integer, got identifier 'lots'");
	has(x, DIAG_ERROR, 4, 16, "type", "body_limit expects a size like 16k, got string \"big\"");
	has(x, DIAG_ERROR, 5, 11, "type", "proxy expects an upstream name, got integer '42'");
	run_free(x);

	/* arity and blocks */
	x = sema_s("upstream u {\n"
	           "    server 10.0.0.1:80;\n"
	           "    keepalive 1 2;\n"
	           "    connect_timeout;\n"
	           "    health_check;\n"
	           "}\n"
	           "route r { match any; proxy u; }\n");
	has(x, DIAG_ERROR, 3, 17, "type", "too many arguments to 'keepalive' (usage: keepalive N)");
	has(x, DIAG_ERROR, 4, 5, "type", "'connect_timeout' needs more arguments");
	has(x, DIAG_ERROR, 5, 5, "type", "'health_check' needs a { } block");
	run_free(x);
}
END_TEST

START_TEST(t_undefined)
{
	run *x = sema_s("upstream users { server 10.0.0.1:80; }\n"
	                "policy public { tag \"p\"; }\n"
	                "route r {\n"
	                "    match any;\n"
	                "    use publik;\n"
	                "    proxy userz;\n"
	                "}\n"
	                "route s { match path == \"/\"; use nothing_like_it; proxy users; }\n");
	has(x, DIAG_ERROR, 5, 9, "undefined", "undefined policy 'publik'; did you mean 'public'?");
	has(x, DIAG_ERROR, 6, 11, "undefined", "undefined upstream 'userz'; did you mean 'users'?");
	const diag *g = has(x, DIAG_ERROR, 8, 34, "undefined", "undefined policy 'nothing_like_it'");
	ck_assert_ptr_null(strstr(g->msg, "did you mean"));
	run_free(x);
}
END_TEST

START_TEST(t_duplicate)
{
	run *x = sema_s("upstream u { server 10.0.0.1:80; }\n"
	                "route a { match path == \"/a\"; proxy u; }\n"
	                "route a { match path == \"/b\"; proxy u; }\n"
	                "upstream u { server 10.0.0.2:80; }\n"
	                "route u { match path == \"/u\"; proxy u; }\n");
	has(x, DIAG_ERROR, 3, 7, "duplicate", "duplicate route name 'a'");
	has(x, DIAG_NOTE, 2, 7, NULL, "'a' first defined here");
	has(x, DIAG_ERROR, 4, 10, "duplicate", "duplicate upstream name 'u'");
	has(x, DIAG_NOTE, 1, 10, NULL, "'u' first defined here");
	/* names are per kind: route u next to upstream u is fine */
	ck_assert_int_eq(x->nerr, 2);
	run_free(x);

	/* singletons inside an upstream */
	x = sema_s("upstream u {\n"
	           "    server 10.0.0.1:80;\n"
	           "    balance random;\n"
	           "    balance least_conn;\n"
	           "}\n"
	           "route r { match any; proxy u; }\n");
	has(x, DIAG_ERROR, 4, 5, "duplicate", "'balance' given twice in one upstream");
	has(x, DIAG_NOTE, 3, 5, NULL, "first given here");
	run_free(x);
}
END_TEST

START_TEST(t_actions)
{
	run *x = sema_s("upstream u { server 10.0.0.1:80; }\n"
	                "route x {\n"
	                "    match any;\n"
	                "    respond 200;\n"
	                "    proxy u;\n"
	                "}\n"
	                "route y {\n"
	                "    match path == \"/y\";\n"
	                "    tag \"t\";\n"
	                "}\n");
	has(x, DIAG_ERROR, 5, 5, "action", "route 'x' has two actions: respond at 4:5 and proxy at 5:5");
	has(x, DIAG_ERROR, 7, 7, "action", "route 'y' has no action (proxy, respond or redirect)");
	ck_assert_int_eq(x->nerr, 2);
	run_free(x);

	/* an action spliced from a policy counts */
	x = sema_s("policy maint {\n"
	           "    respond 503;\n"
	           "}\n"
	           "route r {\n"
	           "    match any;\n"
	           "    use maint;\n"
	           "    redirect 302 \"/x\";\n"
	           "}\n");
	has(x, DIAG_ERROR, 7, 5, "action", "route 'r' has two actions: respond at 2:5 and redirect at 7:5");
	run_free(x);

	/* cache belongs with proxy */
	x = sema_s("route r { match any; cache ttl=1s; respond 200; }\n");
	has(x, DIAG_ERROR, 1, 22, "action", "cache only applies to proxy");
	run_free(x);
}
END_TEST

START_TEST(t_no_match)
{
	run *x = sema_s("route nomatch {\n"
	                "    respond 200;\n"
	                "}\n");
	has(x, DIAG_ERROR, 1, 7, "match", "route 'nomatch' has no match");
	run_free(x);
}
END_TEST

START_TEST(t_regex)
{
	/* PCRE2's message; the caret on the offending byte of the literal */
	run *x = sema_s("route r {\n"
	                "    match path ~ \"a)b\";\n"
	                "    respond 200;\n"
	                "}\n"
	                "route s {\n"
	                "    match path ~ \"\\x41)b\";\n"
	                "    respond 200;\n"
	                "}\n"
	                "route t {\n"
	                "    match any;\n"
	                "    rewrite path regex \"[a\" \"/x\";\n"
	                "    waf rule \"r1\" in=(args, body) regex \"(?<\";\n"
	                "    respond 200;\n"
	                "}\n");
	has(x, DIAG_ERROR, 2, 20, "regex", "unmatched closing parenthesis");
	/* \x41 is one byte of the pattern but four of the source */
	has(x, DIAG_ERROR, 6, 23, "regex", "unmatched closing parenthesis");
	has(x, DIAG_ERROR, 11, 27, "regex", "missing terminating ]");
	has(x, DIAG_ERROR, 12, 45, "regex", "subpattern name expected");
	run_free(x);
}
END_TEST

START_TEST(t_template)
{
	run *x = sema_s("route r {\n"
	                "    match any;\n"
	                "    set_header request X-A \"v=$x\";\n"
	                "    set_header response X-B \"${nope}\";\n"
	                "    respond 200 \"a ${host} $1 $$ ${header.X-Y}\";\n"
	                "}\n");
	has(x, DIAG_ERROR, 3, 31, "template", "invalid '$x'");
	has(x, DIAG_ERROR, 4, 30, "template", "unknown variable '${nope}'");
	ck_assert_int_eq(x->nerr, 2);
	run_free(x);
}
END_TEST

START_TEST(t_status)
{
	run *x = sema_s("route r {\n"
	                "    match path == \"/r\";\n"
	                "    respond 700;\n"
	                "}\n"
	                "route s {\n"
	                "    match path == \"/s\";\n"
	                "    redirect 303 \"/x\";\n"
	                "}\n"
	                "upstream u {\n"
	                "    server 10.0.0.1:80;\n"
	                "    retries 2 on 404;\n"
	                "    health_check { expect 50..700; }\n"
	                "}\n"
	                "route t { match path == \"/t\"; proxy u; }\n");
	has(x, DIAG_ERROR, 3, 13, "value", "respond: 700 is out of range (200..599)");
	has(x, DIAG_ERROR, 7, 14, "status", "redirect status must be 301, 302, 307 or 308, got 303");
	has(x, DIAG_ERROR, 11, 18, "status", "only 500..599 and 429 can be retried, got 404");
	has(x, DIAG_ERROR, 12, 27, "status", "status range must lie in 100..599");
	run_free(x);

	x = sema_s("upstream u {\n"
	           "    server 10.0.0.1:80;\n"
	           "    retries 2 on 500, 502, 503, 504, 429;\n"
	           "}\n"
	           "route t { match any; proxy u; }\n");
	has(x, DIAG_ERROR, 3, 38, "value", "at most 4 statuses");
	run_free(x);
}
END_TEST

START_TEST(t_files)
{
	run *x = sema_s("route r {\n"
	                "    match path ^= \"/k\";\n"
	                "    auth key keys=file(\"missing.txt\");\n"
	                "    respond 200;\n"
	                "}\n"
	                "route s {\n"
	                "    match path ^= \"/s\";\n"
	                "    auth basic users=file(\"htpasswd\") realm=\"staff\";\n"
	                "    auth key query=\"k\" keys=file(\"keys.txt\");\n"
	                "    respond 200;\n"
	                "}\n");
	has(x, DIAG_ERROR, 3, 24, "file", "cannot open file 'missing.txt' (" DATA "/missing.txt)");
	ck_assert_int_eq(x->nerr, 1);
	run_free(x);
}
END_TEST

START_TEST(t_cycle)
{
	run *x = sema_s("policy a {\n"
	                "    use b;\n"
	                "}\n"
	                "policy b {\n"
	                "    use a;\n"
	                "}\n"
	                "policy s { use s; }\n"
	                "route r { match any; use a; use s; respond 200; }\n");
	has(x, DIAG_ERROR, 5, 5, "cycle", "policy cycle: a -> b -> a");
	has(x, DIAG_ERROR, 7, 12, "cycle", "policy cycle: s -> s");
	ck_assert_int_eq(x->nerr, 2);
	run_free(x);

	/* a policy using a policy is fine, its directives are spliced */
	x = sema_s("policy inner { tag \"in\"; }\n"
	           "policy outer { use inner; body_limit 1k; }\n"
	           "route r { match any; use outer; respond 200; }\n");
	clean(x);
	run_free(x);
}
END_TEST

START_TEST(t_place)
{
	run *x = sema_s("upstream u {\n"
	                "    server 10.0.0.1:80;\n"
	                "    proxy u;\n"
	                "    interval 2s;\n"
	                "}\n"
	                "route r {\n"
	                "    match any;\n"
	                "    server 1.2.3.4:80;\n"
	                "    proxy u;\n"
	                "}\n");
	has(x, DIAG_ERROR, 3, 5, "place", "'proxy' is not allowed in an upstream; it belongs in a route or policy");
	has(x, DIAG_ERROR, 4, 5, "place", "'interval' is not allowed in an upstream; it belongs in a health_check block");
	has(x, DIAG_ERROR, 8, 5, "place", "'server' is not allowed in a route; it belongs in an upstream");
	ck_assert_int_eq(x->nerr, 3);
	run_free(x);
}
END_TEST

START_TEST(t_values)
{
	run *x = sema_s("upstream u {\n"
	                "    server 10.0.0.1:80;\n"
	                "    server 10.0.0.2:80 weight=0;\n"
	                "    server 10.0.0.3:80 slow;\n"
	                "    balance hash;\n"
	                "}\n"
	                "route r {\n"
	                "    match path ^= \"x\";\n"
	                "    waf sqli xsss;\n"
	                "    rate_limit 5r/s burst=0;\n"
	                "    log sample=1.5;\n"
	                "    auth jwt key=file(\"pub.pem\") alg=HS256;\n"
	                "    set_header request \"Bad Name\" \"v\";\n"
	                "    proxy u;\n"
	                "}\n");
	/* addresses themselves are checked by the lexer */
	has(x, DIAG_ERROR, 3, 31, "value", "weight must be 1..1000000");
	has(x, DIAG_ERROR, 4, 24, "type", "got identifier 'slow'");
	has(x, DIAG_ERROR, 5, 13, "value", "balance hash needs a key");
	has(x, DIAG_ERROR, 8, 19, "match", "path must start with '/'");
	has(x, DIAG_ERROR, 9, 14, "value", "unknown waf class 'xsss'; did you mean 'xss'?");
	has(x, DIAG_ERROR, 10, 27, "value", "burst must be at least 1");
	has(x, DIAG_ERROR, 11, 16, "type", "sample=... expects a number between 0 and 1");
	has(x, DIAG_ERROR, 12, 38, "value", "use secret=, not key=");
	has(x, DIAG_ERROR, 13, 24, "value", "'Bad Name' is not a valid header name");
	run_free(x);
}
END_TEST

START_TEST(t_many_errors_together)
{
	/* every error of the file is reported, not only the first */
	run *x = sema_s("route a { match any; rate_limit fast; respond 200; }\n"
	                "route b { match path == \"/b\"; proxy nowhere; }\n"
	                "route c { match path == \"/c\"; redirect 303 \"/\"; }\n"
	                "route d { match path == \"/d\"; }\n");
	ck_assert_int_eq(x->nerr, 4);
	has(x, DIAG_ERROR, 1, 33, "type", "rate_limit expects");
	has(x, DIAG_ERROR, 2, 37, "undefined", "undefined upstream 'nowhere'");
	has(x, DIAG_ERROR, 3, 40, "status", "redirect status");
	has(x, DIAG_ERROR, 4, 7, "action", "no action");
	run_free(x);
}
END_TEST

/* ============================================================== warnings */

/* the route on line `line` is shadowed by the route named `by` on line bl */
static void shadowed(const char *src, unsigned line, const char *by, unsigned bl)
{
	run *x = sema_s(src);
	char frag[128];
	snprintf(frag, sizeof frag, "route '%s' (line %u) before it", by, bl);
	has(x, DIAG_WARNING, line, 7, "shadowed", frag);
	snprintf(frag, sizeof frag, "route '%s' covers it", by);
	has(x, DIAG_NOTE, bl, 7, NULL, frag);
	ck_assert_uint_eq(count(x, "shadowed"), 1);
	run_free(x);
}

static void not_shadowed(const char *src)
{
	run *x = sema_s(src);
	if (count(x, "shadowed"))
		dump(x);
	ck_assert_uint_eq(count(x, "shadowed"), 0);
	run_free(x);
}

START_TEST(t_shadow_caught)
{
	/* wider prefix */
	shadowed("route a { match path ^= \"/api/\"; respond 200; }\n"
	         "route b { match path ^= \"/api/v1/\"; respond 201; }\n", 2, "a", 1);
	/* exact path under a prefix, same host */
	shadowed("route a { match host == \"x.com\" and path ^= \"/\"; respond 200; }\n"
	         "route b { match host == \"x.com\" and path == \"/z\"; respond 201; }\n", 2, "a", 1);
	/* wildcard host covers a host under it, and a narrower wildcard */
	shadowed("route a { match host == \"*.example.com\"; respond 200; }\n"
	         "route b { match host == \"a.example.com\" and path == \"/x\"; respond 201; }\n",
	         2, "a", 1);
	shadowed("route a { match host == \"*.example.com\"; respond 200; }\n"
	         "route b { match host == \"*.eu.example.com\"; respond 201; }\n", 2, "a", 1);
	/* no host atom covers any host */
	shadowed("route a { match path ^= \"/s\"; respond 200; }\n"
	         "route b { match host == \"h.com\" and path ^= \"/static\"; respond 201; }\n",
	         2, "a", 1);
	/* superset of methods; no method atom = all methods */
	shadowed("route a { match path ^= \"/x\" and method in (GET, POST); respond 200; }\n"
	         "route b { match path ^= \"/x/y\" and method == GET; respond 201; }\n", 2, "a", 1);
	shadowed("route a { match path ^= \"/x\"; respond 200; }\n"
	         "route b { match path ^= \"/x\" and method in (PUT, DELETE); respond 201; }\n",
	         2, "a", 1);
	/* `any` falls through to nothing */
	shadowed("route a { match any; respond 404; }\n"
	         "route b { match path == \"/q\" and header(\"X\") == \"1\"; respond 200; }\n",
	         2, "a", 1);
	/* extra predicates on the later route only make it narrower */
	shadowed("route a { match path ^= \"/api\" and header(\"X-Env\") == \"canary\"; respond 200; }\n"
	         "route b { match path ^= \"/api/v2\" and header(\"x-env\") == \"canary\" and "
	         "query(\"q\"); respond 201; }\n", 2, "a", 1);
	/* header present is implied by header equals */
	shadowed("route a { match header(\"X-T\"); respond 200; }\n"
	         "route b { match header(\"X-T\") == \"1\"; respond 201; }\n", 2, "a", 1);
	/* identical regex, CIDR inside CIDR, identical negation */
	shadowed("route a { match path ~ \"^/r[0-9]+$\"; respond 200; }\n"
	         "route b { match path ~ \"^/r[0-9]+$\" and method == GET; respond 201; }\n",
	         2, "a", 1);
	shadowed("route a { match client_ip in (10.0.0.0/8, 192.168.0.0/16); respond 200; }\n"
	         "route b { match client_ip in 10.1.0.0/16 and path == \"/i\"; respond 201; }\n",
	         2, "a", 1);
	shadowed("route a { match not header(\"X-Beta\"); respond 200; }\n"
	         "route b { match not header(\"X-Beta\") and path == \"/n\"; respond 201; }\n",
	         2, "a", 1);
	/* an `or` in the covering route: one of its branches suffices */
	shadowed("route a { match path ^= \"/a/\" or path ^= \"/b/\"; respond 200; }\n"
	         "route b { match path == \"/b/c\"; respond 201; }\n", 2, "a", 1);
	/* not (method in (PUT)) = every other method */
	shadowed("route a { match not method == PUT and path ^= \"/m\"; respond 200; }\n"
	         "route b { match path == \"/m/1\" and method in (GET, HEAD); respond 201; }\n",
	         2, "a", 1);

	/* a route covered by two earlier ones together */
	run *x = sema_s("route a { match path ^= \"/a\"; respond 200; }\n"
	                "route b { match path ^= \"/b\"; respond 200; }\n"
	                "route c { match path ^= \"/a/x\" or path ^= \"/b/y\"; respond 201; }\n");
	has(x, DIAG_WARNING, 3, 7, "shadowed", "earlier routes together");
	has(x, DIAG_NOTE, 1, 7, NULL, "route 'a' covers it");
	has(x, DIAG_NOTE, 2, 7, NULL, "route 'b' covers it");
	run_free(x);

	/* the first covering route is named, across includes-in-place order */
	x = sema_s("route a { match path ^= \"/\"; respond 200; }\n"
	           "route b { match path ^= \"/x\"; respond 200; }\n"
	           "route c { match path == \"/x/1\"; respond 201; }\n");
	has(x, DIAG_WARNING, 3, 7, "shadowed", "route 'a' (line 1)");
	run_free(x);
}
END_TEST

START_TEST(t_shadow_left_alone)
{
	/* differ by header */
	not_shadowed("route a { match path ^= \"/api\" and header(\"X-Env\") == \"canary\"; respond 200; }\n"
	             "route b { match path ^= \"/api\"; respond 201; }\n");
	not_shadowed("route a { match header(\"X-Env\") == \"1\"; respond 200; }\n"
	             "route b { match header(\"X-Env\") == \"2\"; respond 201; }\n");
	/* differ by query / cookie */
	not_shadowed("route a { match path ^= \"/s\" and query(\"q\"); respond 200; }\n"
	             "route b { match path ^= \"/s\"; respond 201; }\n");
	not_shadowed("route a { match path ^= \"/s\" and query(\"v\") == \"2\"; respond 200; }\n"
	             "route b { match path ^= \"/s\" and query(\"v\") == \"3\"; respond 201; }\n");
	not_shadowed("route a { match cookie(\"beta\") == \"1\"; respond 200; }\n"
	             "route b { match any; respond 201; }\n");
	/* differ by method */
	not_shadowed("route a { match path ^= \"/x\" and method == GET; respond 200; }\n"
	             "route b { match path ^= \"/x\" and method == POST; respond 201; }\n");
	not_shadowed("route a { match path ^= \"/x\" and method == GET; respond 200; }\n"
	             "route b { match path ^= \"/x\" and method in (GET, POST); respond 201; }\n");
	not_shadowed("route a { match path ^= \"/x\" and method == GET; respond 200; }\n"
	             "route b { match path ^= \"/x/y\"; respond 201; }\n");
	/* narrower first is the right order */
	not_shadowed("route a { match path ^= \"/api/v1/\"; respond 200; }\n"
	             "route b { match path ^= \"/api/\"; respond 201; }\n");
	/* hosts */
	not_shadowed("route a { match host == \"a.com\"; respond 200; }\n"
	             "route b { match host == \"b.com\"; respond 201; }\n");
	not_shadowed("route a { match host == \"*.example.com\"; respond 200; }\n"
	             "route b { match host == \"example.com\"; respond 201; }\n");
	not_shadowed("route a { match host == \"*.example.com\"; respond 200; }\n"
	             "route b { match host == \"xexample.com\"; respond 201; }\n");
	not_shadowed("route a { match host == \"a.example.com\"; respond 200; }\n"
	             "route b { match host == \"*.example.com\"; respond 201; }\n");
	/* paths */
	not_shadowed("route a { match path ^= \"/ab\"; respond 200; }\n"
	             "route b { match path ^= \"/a\"; respond 201; }\n");
	not_shadowed("route a { match path == \"/a\"; respond 200; }\n"
	             "route b { match path ^= \"/a\"; respond 201; }\n");
	not_shadowed("route a { match path ~ \"^/a[0-9]\"; respond 200; }\n"
	             "route b { match path ~ \"^/b[0-9]\"; respond 201; }\n");
	not_shadowed("route a { match path ~ \"^/a[0-9]\"; respond 200; }\n"
	             "route b { match path == \"/a1\"; respond 201; }\n");
	/* client addresses */
	not_shadowed("route a { match client_ip in 10.0.0.0/16; respond 200; }\n"
	             "route b { match client_ip in 10.0.0.0/8; respond 201; }\n");
	not_shadowed("route a { match client_ip in 10.0.0.0/8; respond 200; }\n"
	             "route b { match client_ip in ::1/128; respond 201; }\n");
	/* negations are not guessed at */
	not_shadowed("route a { match not path ^= \"/a\"; respond 200; }\n"
	             "route b { match path ^= \"/b\"; respond 201; }\n");
	/* `or` in the later route: one branch uncovered is enough */
	not_shadowed("route a { match path ^= \"/a\"; respond 200; }\n"
	             "route b { match path ^= \"/a/x\" or path ^= \"/c\"; respond 201; }\n");
}
END_TEST

START_TEST(t_unused_and_empty)
{
	run *x = sema_s("upstream used { server 10.0.0.1:80; }\n"
	                "upstream idle { server 10.0.0.2:80; }\n"
	                "upstream none { }\n"
	                "upstream later dynamic;\n"
	                "policy p_used { tag \"a\"; }\n"
	                "policy p_idle { tag \"b\"; }\n"
	                "policy p_via { use p_deep; }\n"
	                "policy p_deep { tag \"c\"; }\n"
	                "route r { match any; use p_used; use p_via; proxy used; }\n");
	has(x, DIAG_WARNING, 2, 10, "unused-upstream", "upstream 'idle' is never used by a proxy");
	has(x, DIAG_WARNING, 3, 10, "empty-upstream", "upstream 'none' has no servers");
	has(x, DIAG_WARNING, 3, 10, "unused-upstream", "'none'");
	has(x, DIAG_WARNING, 4, 10, "unused-upstream", "'later'");
	has(x, DIAG_WARNING, 6, 8, "unused-policy", "policy 'p_idle' is never used");
	ck_assert_uint_eq(count(x, "unused-upstream"), 3);
	ck_assert_uint_eq(count(x, "empty-upstream"), 1);  /* not the dynamic one */
	ck_assert_uint_eq(count(x, "unused-policy"), 1);
	ck_assert_int_eq(x->nerr, 0);
	run_free(x);
}
END_TEST

START_TEST(t_redirect_target)
{
	run *x = sema_s("route a { match path == \"/a\"; redirect 301 \"docs/new\"; }\n"
	                "route b { match path == \"/b\"; redirect 301 \"/docs\"; }\n"
	                "route c { match path == \"/c\"; redirect 302 \"//cdn.example.com/x\"; }\n"
	                "route d { match path == \"/d\"; redirect 307 \"https://example.com/\"; }\n"
	                "route e { match path ~ \"^/e(.*)\"; redirect 308 \"$1\"; }\n"
	                "route f { match path == \"/f\"; redirect 308 \"${host}/x\"; }\n"
	                "route g { match path == \"/g\"; redirect 301 \"example.com/x\"; }\n");
	has(x, DIAG_WARNING, 1, 44, "redirect-target", "redirect target 'docs/new' is neither absolute");
	has(x, DIAG_WARNING, 7, 44, "redirect-target", "'example.com/x'");
	ck_assert_uint_eq(count(x, "redirect-target"), 2);
	run_free(x);
}
END_TEST

START_TEST(t_regex_prefix)
{
	run *x = sema_s("route a { match path ~ \"^/api/\"; respond 200; }\n"
	                "route b { match path ~ \"^/v2/.*\"; respond 200; }\n"
	                "route c { match path ~ \"^/a\\\\.html$\"; respond 200; }\n"
	                "route d { match path ~ \"^/d/(.*)$\"; respond 200; }\n"
	                "route e { match path ~ \"/e\"; respond 200; }\n"
	                "route f { match path ~ \"^/f+\"; respond 200; }\n"
	                "route g { match path ~ \"^/g\\\\d\"; respond 200; }\n");
	has(x, DIAG_WARNING, 1, 24, "regex-prefix", "write path ^= \"/api/\"");
	has(x, DIAG_WARNING, 2, 24, "regex-prefix", "write path ^= \"/v2/\"");
	has(x, DIAG_WARNING, 3, 24, "regex-prefix", "write path == \"/a.html\"");
	ck_assert_uint_eq(count(x, "regex-prefix"), 3);
	run_free(x);
}
END_TEST

START_TEST(t_strict)
{
	run *x = sema_s("upstream idle { server 10.0.0.1:80; }\n"
	                "route r { match any; respond 200; }\n");
	ck_assert_int_eq(x->nerr, 0);
	ck_assert_uint_eq(x->d.nwarnings, 1);
	ck_assert_int_eq(diag_failed(&x->d), 0);
	x->d.strict = 1;
	ck_assert_int_eq(diag_failed(&x->d), 1);
	run_free(x);
}
END_TEST

/* ============================================================== decoder */

static const ast_directive *dir_of(const run *x, size_t item, size_t k)
{
	ck_assert_uint_gt(x->f.nitems, item);
	ck_assert_uint_gt(x->f.items[item].ndirs, k);
	return &x->f.items[item].dirs[k];
}

START_TEST(t_decode_defaults)
{
	run *x = sema_s("upstream u { server 10.0.0.1; server https://b.internal; }\n"
	                "route hi { match path == \"/hi\"; respond 200 \"hi\"; }\n"
	                "route r {\n"
	                "    match any;\n"
	                "    rate_limit 100r/s;\n"
	                "    waf all mode=detect;\n"
	                "    cors;\n"
	                "    log sample=0.25;\n"
	                "    auth jwt secret=env(\"K\") iss=\"me\" aud=\"you\" leeway=1500ms;\n"
	                "    conn_limit 3 key=header(\"X-User\");\n"
	                "    proxy u;\n"
	                "}\n");
	sema_insn in;
	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 2, 0), SP_ROUTE, &in, NULL), 0);
	ck_assert_int_eq(in.op, GWB_OP_RATE_LIMIT);
	ck_assert_uint_eq(in.a[0].u, 100);
	ck_assert_uint_eq(in.a[1].u, 1000);
	ck_assert_uint_eq(in.a[2].u, 100);          /* burst = the rate's count */
	ck_assert_uint_eq(in.a[3].u, GWB_KEY_CLIENT_IP);
	sema_insn_fini(&in);

	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 2, 1), SP_ROUTE, &in, NULL), 0);
	ck_assert_int_eq(in.op, GWB_OP_WAF);
	ck_assert_uint_eq(in.a[0].u, GWB_WAF_ALL);
	ck_assert_uint_eq(in.a[1].u, GWB_WAF_DETECT);
	ck_assert_uint_eq(in.a[2].u, 65536);
	sema_insn_fini(&in);

	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 1, 0), SP_ROUTE, &in, NULL), 0);
	ck_assert_int_eq(in.op, GWB_OP_RESPOND);
	ck_assert_str_eq(in.a[2].s, "text/plain");
	sema_insn_fini(&in);

	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 2, 2), SP_ROUTE, &in, NULL), 0);
	ck_assert_int_eq(in.op, GWB_OP_CORS);
	ck_assert_str_eq(in.a[0].s, "*");
	ck_assert_uint_eq(in.a[4].u, 0);
	ck_assert_uint_eq(in.phase, GWB_PH_HFILTER);
	sema_insn_fini(&in);

	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 2, 3), SP_ROUTE, &in, NULL), 0);
	ck_assert_int_eq(in.op, GWB_OP_LOG_SAMPLE);
	ck_assert_uint_eq(in.a[0].u, 250000);
	sema_insn_fini(&in);

	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 2, 4), SP_ROUTE, &in, NULL), 0);
	ck_assert_int_eq(in.op, GWB_OP_AUTH_JWT);
	ck_assert_uint_eq(in.a[0].u, GWB_SECRET_ENV);
	ck_assert_str_eq(in.a[1].s, "K");
	ck_assert_uint_eq(in.a[2].u, GWB_JWT_HS256);
	ck_assert_uint_eq(in.a[3].u, GWB_SRC_HEADER);
	ck_assert_str_eq(in.a[4].s, "");
	ck_assert_uint_eq(in.a[5].u, 2);            /* 1500ms rounded up */
	ck_assert_str_eq(in.a[6].s, "me\nyou");
	sema_insn_fini(&in);

	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 2, 5), SP_ROUTE, &in, NULL), 0);
	ck_assert_int_eq(in.op, GWB_OP_CONN_LIMIT);
	ck_assert_uint_eq(in.a[1].u, GWB_KEY_HEADER);
	ck_assert_str_eq(in.a[2].s, "X-User");
	sema_insn_fini(&in);

	sema_upstream u;
	ck_assert_int_eq(sema_decode_upstream(&x->f, &x->f.items[0], &u, NULL), 0);
	ck_assert_uint_eq(u.u.balance, GWB_BAL_ROUND_ROBIN);
	ck_assert_uint_eq(u.u.keepalive, 64);
	ck_assert_uint_eq(u.u.connect_timeout_ms, 5000);
	ck_assert_uint_eq(u.u.read_timeout_ms, 60000);
	ck_assert_uint_eq(u.u.retries, 1);
	ck_assert_uint_eq(u.u.retry_on, GWB_RETRY_CONNECT);
	ck_assert_uint_eq(u.nservers, 2);
	ck_assert_str_eq(u.servers[0].addr, "10.0.0.1:80");
	ck_assert_uint_eq(u.servers[0].weight, 1);
	ck_assert_uint_eq(u.servers[0].max_fails, 1);
	ck_assert_uint_eq(u.servers[0].fail_timeout_ms, 10000);
	ck_assert_str_eq(u.servers[1].addr, "b.internal:443");
	ck_assert_uint_eq(u.servers[1].flags, GWB_SRV_HTTPS);
	sema_upstream_fini(&u);
	clean(x);
	run_free(x);
}
END_TEST

START_TEST(t_decode_files_absolute)
{
	run *x = sema_s("route r { match any; auth basic users=file(\"htpasswd\"); "
	                "auth jwt key=file(\"pub.pem\") alg=(RS256, ES256) cookie=\"tok\"; respond 200; }\n");
	clean(x);
	sema_insn in;
	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 0, 0), SP_ROUTE, &in, NULL), 0);
	ck_assert_str_eq(in.a[0].s, DATA "/htpasswd");
	sema_insn_fini(&in);
	ck_assert_int_eq(sema_decode(&x->f, dir_of(x, 0, 1), SP_ROUTE, &in, NULL), 0);
	ck_assert_uint_eq(in.a[0].u, GWB_SECRET_FILE);
	ck_assert_str_eq(in.a[1].s, DATA "/pub.pem");
	ck_assert_uint_eq(in.a[2].u, GWB_JWT_RS256 | GWB_JWT_ES256);
	ck_assert_uint_eq(in.a[3].u, GWB_SRC_COOKIE);
	ck_assert_str_eq(in.a[4].s, "tok");
	sema_insn_fini(&in);
	run_free(x);
}
END_TEST

START_TEST(t_strpos_and_cidr)
{
	gwb_cidr c;
	ck_assert_int_eq(sema_parse_cidr("10.1.2.3/8", &c), 0);
	ck_assert_uint_eq(c.family, 4);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_uint_eq(c.addr[0], 10);
	ck_assert_uint_eq(c.addr[1], 0);      /* host bits cleared */
	ck_assert_int_eq(sema_parse_cidr("::1", &c), 0);
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_int_eq(sema_parse_cidr("10.0.0.0/33", &c), -1);
	ck_assert_int_eq(sema_parse_cidr("bogus", &c), -1);

	char *p = sema_resolve_path("/etc/gw/rules.gwr", "keys.txt");
	ck_assert_str_eq(p, "/etc/gw/keys.txt");
	free(p);
	p = sema_resolve_path("/etc/gw/rules.gwr", "/abs/k");
	ck_assert_str_eq(p, "/abs/k");
	free(p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sema");
	TCase *e = tcase_create("errors");
	tcase_add_test(e, t_unknown_directive);
	tcase_add_test(e, t_unknown_option);
	tcase_add_test(e, t_wrong_type);
	tcase_add_test(e, t_undefined);
	tcase_add_test(e, t_duplicate);
	tcase_add_test(e, t_actions);
	tcase_add_test(e, t_no_match);
	tcase_add_test(e, t_regex);
	tcase_add_test(e, t_template);
	tcase_add_test(e, t_status);
	tcase_add_test(e, t_files);
	tcase_add_test(e, t_cycle);
	tcase_add_test(e, t_place);
	tcase_add_test(e, t_values);
	tcase_add_test(e, t_many_errors_together);
	suite_add_tcase(s, e);
	TCase *w = tcase_create("warnings");
	tcase_add_test(w, t_shadow_caught);
	tcase_add_test(w, t_shadow_left_alone);
	tcase_add_test(w, t_unused_and_empty);
	tcase_add_test(w, t_redirect_target);
	tcase_add_test(w, t_regex_prefix);
	tcase_add_test(w, t_strict);
	suite_add_tcase(s, w);
	TCase *d = tcase_create("decoder");
	tcase_add_test(d, t_decode_defaults);
	tcase_add_test(d, t_decode_files_absolute);
	tcase_add_test(d, t_strpos_and_cidr);
	suite_add_tcase(s, d);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}

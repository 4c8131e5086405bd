/*
 * test_config.c — `gwd -t -c FILE` on real files: exit 0 for a good
 * configuration and table; exit 1, with the message naming FILE:LINE:COL,
 * for broken YAML, bad values, unknown keys, a non-loopback admin without
 * a token, and a missing or garbage table. Also checks that the shipped
 * examples (examples/gateway.yaml, examples/demo.yaml) pass `gwd -t`, and
 * that gwd runs (answers, proxies, stops on TERM) with a checked config.
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char rules[] =
	"route hello {\n"
	"    match any;\n"
	"    respond 200 \"hello\\n\";\n"
	"}\n";

/* gwd -t -c gwt_path(yaml): exit status, with stdout/stderr */
static int gwd_t(const char *yaml, const char **out, const char **err)
{
	const char *argv[] = { gwt_bin("gwd"), "-t", "-c", gwt_path(yaml), NULL };
	return gwt_run("gwd-t", argv, NULL, 20000, out, err);
}

/* a table next to the config, as most tests need one */
static void with_table(void)
{
	gwt_writef("rules.gwr", "%s", rules);
	gwt_compile("rules.gwr");
}

/* exit 1 and stderr holds "PATH:msg" (msg starts with LINE:COL) */
static void expect_error(const char *yaml, const char *text, const char *msg)
{
	const char *out, *err;
	gwt_writef(yaml, "%s", text);
	int st = gwd_t(yaml, &out, &err);
	const char *want = gwt_strf("%s:%s", gwt_path(yaml), msg);
	ck_assert_msg(st == 1, "gwd -t exit %d for\n%s\nstderr: %s", st, text, err);
	ck_assert_msg(strstr(err, want) != NULL, "stderr lacks '%s':\n%s", want, err);
	ck_assert_str_eq(out, "");
}

START_TEST(good_config_and_table)
{
	with_table();
	int port = gwt_free_port();
	const char *yaml = gwt_writef("gw.yaml",
		"listen: 127.0.0.1:%d\n"
		"rules: rules.gwb          # relative to this file, not to the cwd\n"
		"threads: 2\n"
		"admin:\n  listen: 127.0.0.1:%d\n"
		"limits: {max_header_size: 8k, max_body_size: 1m, client_timeout: 5s}\n",
		port, gwt_free_port());
	const char *out, *err;
	ck_assert_int_eq(gwd_t("gw.yaml", &out, &err), 0);
	ck_assert_msg(strstr(out, gwt_strf("configuration %s ok", yaml)) != NULL, "%s", out);
	ck_assert_msg(strstr(out, gwt_strf("table %s ok", gwt_path("rules.gwb"))) != NULL, "%s", out);
	/* -t checks, it does not serve */
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", port, 100), -1);
}
END_TEST

START_TEST(broken_yaml)
{
	with_table();
	expect_error("gw.yaml", "rules: rules.gwb\n  listen: 8080\n",
	             "2:9: YAML syntax error: mapping values are not allowed in this context");
	expect_error("gw.yaml", "rules: rules.gwb\nlisten: [8080\n",
	             "3:1: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence");
}
END_TEST

START_TEST(bad_values)
{
	with_table();
	expect_error("gw.yaml", "rules: rules.gwb\nthreads: lots\n",
	             "2:10: threads: expected 'auto' or a number from 1 to 1024, not 'lots'");
	expect_error("gw.yaml", "rules: rules.gwb\nlisten: 127.0.0.1:70000\n",
	             "2:9: listen '127.0.0.1:70000': bad port '70000' (expected 0-65535)");
	expect_error("gw.yaml", "rules: rules.gwb\nlimits:\n  client_timeout: 3 days\n",
	             "3:19: limits.client_timeout: bad duration '3 days' (expected e.g. 500ms, 30s, 5m, 1h)");
	expect_error("gw.yaml", "rules: rules.gwb\naccess_log: {format: xml}\n",
	             "2:22: access_log.format: expected json or combined, not 'xml'");
}
END_TEST

START_TEST(unknown_key)
{
	with_table();
	expect_error("gw.yaml", "rules: rules.gwb\nlimits:\n  max_body: 1m\n",
	             "3:3: unknown key 'max_body' in limits");
	expect_error("gw.yaml", "rulez: rules.gwb\n",
	             "1:1: unknown key 'rulez' (did you mean 'rules'?)");
	expect_error("gw.yaml", "listen: 127.0.0.1:1\n",
	             "1:1: missing required key 'rules' (the compiled table, e.g. rules: rules.gwb)");
}
END_TEST

START_TEST(admin_needs_token_off_loopback)
{
	with_table();
	expect_error("gw.yaml", "rules: rules.gwb\nadmin:\n  listen: 0.0.0.0:9901\n",
	             "3:11: admin.listen 0.0.0.0:9901 is not loopback: set admin.token_file");
	/* with a token file it is accepted */
	gwt_writef("admin.token", "  s3cret \n");
	gwt_writef("gw.yaml", "rules: rules.gwb\nadmin:\n  listen: 0.0.0.0:%d\n"
	           "  token_file: admin.token\n", gwt_free_port());
	const char *out, *err;
	ck_assert_msg(gwd_t("gw.yaml", &out, &err) == 0, "%s", err);
	/* a token file that does not exist is an error */
	expect_error("gw.yaml", "rules: rules.gwb\nadmin:\n  listen: 0.0.0.0:1\n"
	             "  token_file: nope.token\n",
	             gwt_strf("4:15: admin.token_file %s: No such file or directory",
	                      gwt_path("nope.token")));
}
END_TEST

START_TEST(missing_table)
{
	gwt_writef("gw.yaml", "rules: missing.gwb\n");
	const char *out, *err;
	ck_assert_int_eq(gwd_t("gw.yaml", &out, &err), 1);
	ck_assert_msg(strstr(err, gwt_path("missing.gwb")) != NULL, "%s", err);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(garbage_table)
{
	const char *out, *err;
	gwt_writef("garbage.gwb", "this is not a table, just some text that is long enough "
	           "to cover the header of a real one, and more: 0123456789abcdef\n");
	gwt_writef("gw.yaml", "rules: garbage.gwb\n");
	ck_assert_int_eq(gwd_t("gw.yaml", &out, &err), 1);
	ck_assert_msg(strstr(err, gwt_path("garbage.gwb")) != NULL, "%s", err);
	/* a real table cut short */
	with_table();
	size_t len;
	const char *t = gwt_read("rules.gwb", &len);
	ck_assert_ptr_nonnull(t);
	gwt_write("short.gwb", t, len / 2);
	gwt_writef("gw.yaml", "rules: short.gwb\n");
	ck_assert_int_eq(gwd_t("gw.yaml", &out, &err), 1);
	ck_assert_msg(strstr(err, gwt_path("short.gwb")) != NULL, "%s", err);
	/* one flipped byte (the checksum catches it) */
	char *copy = malloc(len);
	memcpy(copy, t, len);
	copy[len - 1] ^= 0x55;
	gwt_write("flipped.gwb", copy, len);
	free(copy);
	gwt_writef("gw.yaml", "rules: flipped.gwb\n");
	ck_assert_int_eq(gwd_t("gw.yaml", &out, &err), 1);
	ck_assert_msg(strstr(err, gwt_path("flipped.gwb")) != NULL, "%s", err);
	/* the rules source instead of the table */
	gwt_writef("gw.yaml", "rules: rules.gwr\n");
	ck_assert_int_eq(gwd_t("gw.yaml", &out, &err), 1);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(missing_config)
{
	const char *out, *err;
	ck_assert_int_eq(gwd_t("nope.yaml", &out, &err), 1);
	ck_assert_msg(strstr(err, gwt_strf("%s: cannot open: No such file or directory",
	                                   gwt_path("nope.yaml"))) != NULL, "%s", err);
}
END_TEST

/* The configuration checked by -t is the one gwd runs with: start it with
 * the harness, answer from the table and proxy to an origin, stop. */
START_TEST(runs_what_it_checked)
{
	origin *o = gwt_origin("a");
	int port = gwt_free_port();
	gwt_writef("rules.gwr",
		"upstream a {\n    server 127.0.0.1:%d;\n}\n\n"
		"route api {\n    match path ^= \"/echo\";\n    proxy a;\n}\n\n%s",
		origin_port(o), rules);
	gwt_compile("rules.gwr");
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n"
	           "admin: {listen: 'off'}\ndrain_timeout: 2s\n", port);
	const char *out, *err;
	ck_assert_msg(gwd_t("gw.yaml", &out, &err) == 0, "%s", err);
	gwt_proc *gwd = gwt_gwd("gw.yaml", port);
	gwt_resp *r = gwt_get(gwt_url(port, "/hello"));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "hello\n");
	r = gwt_get(gwt_url(port, "/echo/x?q=1"));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "a");
	ck_assert_str_eq(gwt_echo_str(r, "path"), "/echo/x");
	ck_assert_str_eq(gwt_echo_str(r, "query"), "q=1");
	ck_assert_uint_eq(origin_count(o), 1);
	ck_assert_int_eq(gwt_stop(gwd, SIGTERM, 5000), 0);
}
END_TEST

/* ------------------------------------------------------------ examples */

static const char *src_file(const char *rel, size_t *len)
{
	const char *p = gwt_strf("%s/%s", gwt_srcdir(), rel);
	const char *s = gwt_read(p, len);
	ck_assert_msg(s != NULL, "cannot read %s (is GW_SRCDIR set?)", p);
	return s;
}

/* replace every occurrence of from with to */
static const char *subst(const char *s, const char *from, const char *to)
{
	const char *out = "";
	for (const char *p; (p = strstr(s, from)); s = p + strlen(from))
		out = gwt_strf("%s%.*s%s", out, (int)(p - s), s, to);
	return gwt_strf("%s%s", out, s);
}

START_TEST(example_demo_yaml)
{
	/* demo.yaml names demo.gwb next to it: copy both sources and compile */
	size_t n;
	const char *yaml = src_file("examples/demo.yaml", &n);
	const char *gwr = src_file("examples/demo.gwr", &n);
	gwt_write("demo.yaml", yaml, strlen(yaml));
	gwt_write("demo.gwr", gwr, strlen(gwr));
	gwt_compile("demo.gwr");
	const char *out, *err;
	ck_assert_msg(gwd_t("demo.yaml", &out, &err) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(out, gwt_strf("table %s ok", gwt_path("demo.gwb"))));
}
END_TEST

START_TEST(example_gateway_yaml)
{
	/* the production example uses /etc/gw, /var/lib/gw and /var/log/gw:
	 * move them into the test directory, keep everything else */
	size_t n;
	const char *yaml = src_file("examples/gateway.yaml", &n);
	yaml = subst(yaml, "/etc/gw/", gwt_strf("%s/etc/", gwt_dir()));
	yaml = subst(yaml, "/var/lib/gw", gwt_strf("%s/state", gwt_dir()));
	yaml = subst(yaml, "/var/log/gw/", gwt_strf("%s/log/", gwt_dir()));
	gwt_write("gateway.yaml", yaml, strlen(yaml));
	gwt_writef("etc/admin.token", "not-a-real-token\n");
	gwt_writef("log/.keep", "%s", "");
	gwt_writef("state/.keep", "%s", "");
	gwt_writef("etc/rules.gwr", "%s", rules);
	gwt_compile("etc/rules.gwr");
	const char *out, *err;
	ck_assert_msg(gwd_t("gateway.yaml", &out, &err) == 0, "%s\n%s", err, yaml);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gwd -t");
	TCase *t = tcase_create("check");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, good_config_and_table);
	tcase_add_test(t, broken_yaml);
	tcase_add_test(t, bad_values);
	tcase_add_test(t, unknown_key);
	tcase_add_test(t, admin_needs_token_off_loopback);
	tcase_add_test(t, missing_table);
	tcase_add_test(t, garbage_table);
	tcase_add_test(t, missing_config);
	tcase_add_test(t, runs_what_it_checked);
	tcase_add_test(t, example_demo_yaml);
	tcase_add_test(t, example_gateway_yaml);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

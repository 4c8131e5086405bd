/*
 * test_admin_persist.c — the admin API's changes on disk: written to
 * state_dir before the 200, re-applied at restart and after every table
 * reload; upstreams that leave the table keep their override (inactive);
 * a failed write (a full disk on a tiny tmpfs, a read-only bind mount, a
 * temp path that cannot be created) answers 500 and changes nothing, on
 * disk or in effect; a corrupt state file stops gwd at start-up.
 *
 * The mount tests run in a private mount namespace of the test process
 * (unshare(CLONE_NEWNS)): the gwd it starts shares it, nothing leaks to
 * the host, and the mounts vanish with the processes. Without the
 * privilege for that they are skipped (said on stderr); the temp-path test
 * covers a failed write everywhere.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_common.h"

/* the table `app` on origin o plus `dyn`; without app when o is NULL
 * (then `app2` on origin a takes the traffic) */
static void write_table(const origin *o, const char *extra)
{
	const char *rules = o
		? gwt_strf("upstream app { server 127.0.0.1:%d; }\nupstream dyn dynamic;\n%s"
		           "route main { match any; proxy app; }\n", origin_port(o), extra ? extra : "")
		: gwt_strf("upstream app2 { server 127.0.0.1:%d; }\nupstream dyn dynamic;\n%s"
		           "route main { match any; proxy app2; }\n", origin_port(at_a),
		           extra ? extra : "");
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
}

static void reload_ok(void)
{
	gwt_resp *r = at_call("POST", "/reload", NULL);
	ck_assert_msg(r->status == 200, "reload: %ld %s", r->status, r->body);
}

/* servers[i].address of upstream name in the state file ("" if absent) */
static const char *state_addr(const char *name, size_t i)
{
	const char *s = at_state();
	ck_assert_ptr_nonnull(s);
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	ck_assert_msg(j != NULL, "state file: %s", je.text);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 1);
	json_t *a = json_object_get(json_array_get(json_object_get(json_object_get(
		json_object_get(j, "upstreams"), name), "servers"), i), "address");
	const char *v = gwt_strf("%s", a ? json_string_value(a) : "");
	json_decref(j);
	return v;
}

START_TEST(persist_across_restart)
{
	at_start();
	ck_assert_ptr_null(at_state());
	gwt_resp *r = at_curl_d("/upstream/app", gwt_strf("server %s weight=2;server %s backup;",
	                                                  at_addr(at_b), at_addr(at_c)));
	ck_assert_int_eq(r->status, 200);
	/* on disk before the 200 */
	ck_assert_str_eq(state_addr("app", 0), at_addr(at_b));
	ck_assert_str_eq(state_addr("app", 1), at_addr(at_c));
	ck_assert_int_eq(access(gwt_path("state/upstreams.json.tmp"), F_OK), -1);
	r = at_curl_d("/upstream/dyn", gwt_strf("server %s;", at_addr(at_c)));
	ck_assert_int_eq(r->status, 200);
	const char *detail = at_call("GET", "/detail", NULL)->body;
	at_stop();
	at_run();
	/* the first request after the restart already uses the override */
	ck_assert_str_eq(at_name("/name"), "b");
	ck_assert_str_eq(at_name("/api/name"), "c");
	ck_assert_str_eq(at_call("GET", "/detail", NULL)->body, detail);
	ck_assert_int_eq(gwt_wait_output(at_gwd, "admin state: 2 override(s) applied, 0 inactive",
	                                 2000), 0);
	/* a DELETE is persisted too */
	ck_assert_int_eq(at_call("DELETE", "/upstream/app", NULL)->status, 200);
	ck_assert_str_eq(state_addr("app", 0), "");
	at_stop();
	at_run();
	ck_assert_str_eq(at_name("/name"), "a");
	ck_assert_str_eq(at_name("/api/name"), "c");
}
END_TEST

START_TEST(drain_persists)
{
	at_start();
	ck_assert_int_eq(at_call("PUT", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_b)),
	                         NULL)->status, 200);
	ck_assert_int_eq(at_call("POST", gwt_strf("/api/upstreams/app/servers/%s/drain",
	                                          at_addr(at_a)), NULL)->status, 200);
	at_stop();
	at_run();
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body,
	                 gwt_strf("%s%s", at_line(at_a, 1, 0, 1), at_line(at_b, 1, 0, 0)));
	ck_assert_str_eq(at_spread("/name", 4), "a=0 b=4 c=0");
}
END_TEST

START_TEST(override_survives_reload)
{
	at_start();
	ck_assert_int_eq(at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)))->status,
	                 200);
	/* the table moves app to c: the override still wins, by POST /reload
	 * and by SIGHUP */
	write_table(at_c, NULL);
	reload_ok();
	ck_assert_str_eq(at_name("/name"), "b");
	ck_assert_int_eq(gwt_signal(at_gwd, SIGHUP), 0);
	gwt_sleep_ms(300);
	ck_assert_str_eq(at_name("/name"), "b");
	/* dropped: the new table's server */
	ck_assert_int_eq(at_call("DELETE", "/upstream/app", NULL)->status, 200);
	ck_assert_str_eq(at_name("/name"), "c");
}
END_TEST

START_TEST(vanished_upstream_kept_inactive)
{
	at_start();
	ck_assert_int_eq(at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)))->status,
	                 200);
	write_table(NULL, NULL);                /* app leaves the table */
	reload_ok();
	ck_assert_str_eq(at_name("/name"), "a");
	gwt_resp *r = at_call("GET", "/api/upstreams/app", NULL);
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	ck_assert(json_is_false(json_object_get(j, "active")));
	ck_assert(json_is_true(json_object_get(j, "override")));
	ck_assert_str_eq(at_call("GET", "/list", NULL)->body, "app2\ndyn\napp\n");
	j = gwt_json(at_call("GET", "/status", NULL));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "state"),
	                                                    "inactive")), 1);
	ck_assert_str_eq(state_addr("app", 0), at_addr(at_b));
	ck_assert_int_eq(gwt_wait_output(at_gwd, "upstream 'app' is not in the table: its "
	                                 "override is kept but inactive", 2000), 0);
	/* kept across a restart too, and active again when app comes back */
	at_stop();
	at_run();
	ck_assert_str_eq(at_name("/name"), "a");
	write_table(at_c, NULL);
	reload_ok();
	ck_assert_str_eq(at_name("/name"), "b");
}
END_TEST

START_TEST(pending_becomes_active)
{
	at_start();
	ck_assert_int_eq(at_curl_d("/upstream/later", gwt_strf("server %s;", at_addr(at_c)))->status,
	                 200);
	ck_assert_str_eq(state_addr("later", 0), at_addr(at_c));
	/* a table that declares it (dynamic) and routes to it */
	const char *rules = gwt_strf("upstream app { server 127.0.0.1:%d; }\n"
	                             "upstream later dynamic;\n"
	                             "route l { match path ^= \"/api/\"; proxy later; }\n"
	                             "route main { match any; proxy app; }\n", origin_port(at_a));
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	reload_ok();
	ck_assert_str_eq(at_name("/api/name"), "c");
	ck_assert(json_is_true(json_object_get(gwt_json(at_call("GET", "/api/upstreams/later", NULL)),
	                                       "active")));
	at_stop();
	at_run();
	ck_assert_str_eq(at_name("/api/name"), "c");
}
END_TEST

/* DELETE of an override while its upstream is out of the table: when the
 * upstream comes back it has the table's servers, not the stale override */
START_TEST(delete_while_vanished)
{
	at_start();
	ck_assert_int_eq(at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)))->status,
	                 200);
	write_table(NULL, NULL);
	reload_ok();
	ck_assert_int_eq(at_call("DELETE", "/upstream/app", NULL)->status, 200);
	at_assert_error(at_call("GET", "/upstream/app", NULL), 404, "no upstream 'app'");
	write_table(at_c, NULL);
	reload_ok();
	ck_assert_str_eq(at_name("/name"), "c");
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body, at_line(at_c, 1, 0, 0));
}
END_TEST

START_TEST(no_state_dir)
{
	at_ports();
	at_start_with(NULL, gwt_strf("admin: {listen: 127.0.0.1:%d}\n", at_admin), NULL);
	ck_assert_int_eq(at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)))->status,
	                 200);
	ck_assert_str_eq(at_name("/name"), "b");
	json_t *st = json_object_get(gwt_json(at_call("GET", "/status", NULL)), "state");
	ck_assert(json_is_false(json_object_get(st, "persisted")));
	ck_assert(json_is_null(json_object_get(st, "dir")));
	at_stop();
	at_run();
	ck_assert_str_eq(at_name("/name"), "a");
}
END_TEST

/* one failed change: 500 naming the cause, and nothing changed */
static void assert_write_fails(const char *cause)
{
	const char *before = at_state();
	ck_assert_ptr_nonnull(before);
	const char *body = gwt_strf("server %s;", at_addr(at_c));
	gwt_resp *r = at_curl_d("/upstream/app", body);
	ck_assert_int_eq(r->status, 500);
	const char *e = json_string_value(json_object_get(gwt_json(r), "error"));
	ck_assert_msg(e && !strncmp(e, "state not saved: ", 17) && strstr(e, cause),
	              "error '%s', want '%s'", e ? e : "(none)", cause);
	/* the other kinds of change fail the same way */
	ck_assert_int_eq(at_call("DELETE", "/upstream/app", NULL)->status, 500);
	ck_assert_int_eq(at_call("PUT", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_c)),
	                         NULL)->status, 500);
	ck_assert_int_eq(at_call("POST", gwt_strf("/api/upstreams/app/servers/%s/drain",
	                                          at_addr(at_b)), NULL)->status, 500);
	ck_assert_int_eq(at_curl_d("/upstream/newone", body)->status, 500);
	/* old state intact: on disk, in effect, in the views */
	ck_assert_str_eq(at_state(), before);
	ck_assert_str_eq(at_spread("/name", 3), "a=0 b=3 c=0");
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body, at_line(at_b, 1, 0, 0));
	ck_assert_str_eq(at_call("GET", "/list", NULL)->body, "app\ndyn\n");
	/* no temp file left behind (but the directory that is in its way) */
	if (!strstr(cause, "directory"))
		ck_assert_int_eq(access(gwt_path("state/upstreams.json.tmp"), F_OK), -1);
}

static void assert_write_works_again(void)
{
	gwt_resp *r = at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_c)));
	ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
	ck_assert_str_eq(at_name("/name"), "c");
	ck_assert_str_eq(state_addr("app", 0), at_addr(at_c));
}

START_TEST(temp_path_unwritable)
{
	at_start();
	ck_assert_int_eq(at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)))->status,
	                 200);
	/* the temp file's name taken by a directory: open() fails, for root too */
	ck_assert_int_eq(mkdir(gwt_path("state/upstreams.json.tmp"), 0700), 0);
	assert_write_fails("Is a directory");
	ck_assert_int_eq(rmdir(gwt_path("state/upstreams.json.tmp")), 0);
	assert_write_works_again();
}
END_TEST

/* a private mount namespace, or skip */
static int private_mounts(const char *test)
{
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		fprintf(stderr, "%s: skipped: no private mount namespace (%s)\n", test, strerror(errno));
		return -1;
	}
	return 0;
}

START_TEST(disk_full_tmpfs)
{
	/* before any thread exists (the origins start threads) */
	if (private_mounts("disk_full_tmpfs") < 0)
		return;
	const char *dir = gwt_path("state");
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=8k,mode=0700") != 0) {
		fprintf(stderr, "disk_full_tmpfs: skipped: mount tmpfs: %s\n", strerror(errno));
		return;
	}
	at_start();
	ck_assert_int_eq(at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)))->status,
	                 200);
	/* fill the file system */
	int fd = open(gwt_path("state/filler"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	char page[4096];
	memset(page, 'x', sizeof page);
	int full = 0;
	for (int i = 0; i < 64 && !full; i++)
		if (write(fd, page, sizeof page) < 0)
			full = errno == ENOSPC;
	close(fd);
	ck_assert_msg(full, "the tmpfs did not fill up");
	assert_write_fails("No space left on device");
	ck_assert_int_eq(unlink(gwt_path("state/filler")), 0);
	assert_write_works_again();
}
END_TEST

START_TEST(read_only_state_dir)
{
	if (private_mounts("read_only_state_dir") < 0)
		return;
	at_start();
	ck_assert_int_eq(at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)))->status,
	                 200);
	/* chmod does not stop root; a read-only bind mount does */
	const char *dir = gwt_path("state");
	ck_assert_int_eq(mount(dir, dir, NULL, MS_BIND, NULL), 0);
	ck_assert_int_eq(mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL), 0);
	assert_write_fails("Read-only file system");
	ck_assert_int_eq(umount(dir), 0);
	assert_write_works_again();
}
END_TEST

START_TEST(corrupt_state_refuses_start)
{
	at_origins();
	at_ports();
	const char *rules = at_rules();
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	at_write_yaml(at_default_admin(), NULL);
	const char *argv[] = { gwt_bin("gwd"), "-c", gwt_path("gw.yaml"), NULL };
	struct { const char *text, *msg; } cases[] = {
		{ "{\"version\":1,\"upstreams\":{\"app\":{\"servers\":[{\"address\":\"x:1\",}]}}}",
		  "upstreams.json: line 1, column 62: string or '}' expected near '}'" },
		{ "{\"version\":2,\"upstreams\":{}}",
		  "upstreams.json: expected {\"version\": 1, \"upstreams\": {...}}" },
		{ "{\"version\":1,\"upstreams\":{\"app\":{\"servers\":[{\"address\":\"x:\"}]}}}",
		  "upstreams.json: app: servers[0].address: bad address 'x:' (empty port)" },
		{ "{\"version\":1,\"upstreams\":{\"a b\":{\"servers\":[{\"address\":\"x:1\"}]}}}",
		  "upstreams.json: 'a b' is not a valid upstream name" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		gwt_write("state/upstreams.json", cases[i].text, strlen(cases[i].text));
		const char *out, *err;
		ck_assert_int_eq(gwt_run(gwt_strf("gwd%zu", i), argv, NULL, 10000, &out, &err), 1);
		ck_assert_msg(strstr(err, gwt_strf("state file %s", gwt_path("state/upstreams.json"))) &&
		              strstr(err, cases[i].msg), "case %zu: stderr:\n%s", i, err);
	}
	/* a good file starts */
	gwt_writef("state/upstreams.json", "{\"version\":1,\"upstreams\":{\"app\":{\"servers\":"
	           "[{\"address\":\"%s\"}]}}}", at_addr(at_c));
	at_run();
	ck_assert_str_eq(at_name("/name"), "c");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("admin_persist");
	TCase *t = tcase_create("persist");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, persist_across_restart);
	tcase_add_test(t, drain_persists);
	tcase_add_test(t, override_survives_reload);
	tcase_add_test(t, vanished_upstream_kept_inactive);
	tcase_add_test(t, pending_becomes_active);
	tcase_add_test(t, delete_while_vanished);
	tcase_add_test(t, no_state_dir);
	tcase_add_test(t, corrupt_state_refuses_start);
	suite_add_tcase(s, t);
	t = tcase_create("failed_writes");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, temp_path_unwritable);
	tcase_add_test(t, disk_full_tmpfs);
	tcase_add_test(t, read_only_state_dir);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

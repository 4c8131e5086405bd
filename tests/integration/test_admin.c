/*
 * test_admin.c — gwd's admin API, black box: a real gwd with its admin
 * listener in front of in-process origins "a", "b", "c". Every endpoint:
 * the dyups ones called with the bytes `curl -d` sends (and once with the
 * real curl binary), the JSON ones, /api/routes, /reload with a good and a
 * garbage table, /status; traffic moves to the servers set (checked with
 * the origins' /name); malformed bodies answer 400 with the position and
 * change nothing; tokens; listeners. Persistence: test_admin_persist.c.
 */
#include <config.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "admin_common.h"

/* ----------------------------------------------------------- dyups */

START_TEST(dyups_post_moves_traffic)
{
	at_start();
	ck_assert_str_eq(at_name("/name"), "a");
	/* exactly what `curl -d "server 127.0.0.1:B;" ADMIN/upstream/app` sends */
	gwt_resp *r = at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "success");
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "text/plain");
	/* new requests go to b at once */
	ck_assert_str_eq(at_spread("/name", 4), "a=0 b=4 c=0");
	r = at_call("GET", "/upstream/app", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, at_line(at_b, 1, 0, 0));
	/* weights: the smooth round robin of one worker gives exactly 1:3 */
	r = at_curl_d("/upstream/app", gwt_strf("server %s;server %s weight=3;",
	                                        at_addr(at_a), at_addr(at_c)));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_spread("/name", 8), "a=2 b=0 c=6");
	r = at_call("GET", "/upstream/app", NULL);
	ck_assert_str_eq(r->body, gwt_strf("%s%s", at_line(at_a, 1, 0, 0), at_line(at_c, 3, 0, 0)));
}
END_TEST

START_TEST(dyups_parameters_and_whitespace)
{
	at_start();
	/* newlines, tabs, comments, every parameter, no ';' after the last */
	const char *body = gwt_strf("  server %s  weight=2 max_fails=3 fail_timeout=30 ;\n"
	                            "\t# the spare\n"
	                            "server %s\n   backup\n", at_addr(at_a), at_addr(at_b));
	gwt_resp *r = at_curl_d("/upstream/app", body);
	ck_assert_int_eq(r->status, 200);
	r = at_call("GET", "/upstream/app", NULL);
	ck_assert_str_eq(r->body, gwt_strf(
		"server %s weight=2 max_fails=3 fail_timeout=30 backup=0 down=0\n%s",
		at_addr(at_a), at_line(at_b, 1, 1, 0)));
	/* a backup only gets traffic when the primaries are gone */
	ck_assert_str_eq(at_spread("/name", 3), "a=3 b=0 c=0");
	/* fail_timeout in ms, `down` (drained), and GET's own lines posted back */
	r = at_curl_d("/upstream/app", gwt_strf("server %s fail_timeout=500ms down;"
	                                        "server %s weight=1 max_fails=0 fail_timeout=10 "
	                                        "backup=0 down=0;", at_addr(at_a), at_addr(at_c)));
	ck_assert_int_eq(r->status, 200);
	r = at_call("GET", "/upstream/app", NULL);
	ck_assert_str_eq(r->body, gwt_strf(
		"server %s weight=1 max_fails=1 fail_timeout=500ms backup=0 down=1\n"
		"server %s weight=1 max_fails=0 fail_timeout=10 backup=0 down=0\n",
		at_addr(at_a), at_addr(at_c)));
	ck_assert_str_eq(at_spread("/name", 3), "a=0 b=0 c=3");
}
END_TEST

START_TEST(dyups_list_detail_get)
{
	at_start();
	gwt_resp *r = at_call("GET", "/list", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "app\ndyn\n");
	r = at_call("GET", "/detail", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, gwt_strf("app\n%s\ndyn\n\n", at_line(at_a, 1, 0, 0)));
	/* a dynamic upstream starts empty: dyups answers an empty list with 204 */
	r = at_call("GET", "/upstream/dyn", NULL);
	ck_assert_int_eq(r->status, 204);
	ck_assert_str_eq(r->body, "");
	at_assert_error(at_call("GET", "/upstream/nope", NULL), 404, "no upstream 'nope'");
	at_assert_error(at_call("DELETE", "/upstream/nope", NULL), 404, "no upstream 'nope'");
	at_assert_error(at_call("PUT", "/upstream/app", "x"), 405,
	                "method not allowed (allowed: GET, POST, DELETE)");
	at_assert_error(at_call("POST", "/list", ""), 405, "method not allowed (allowed: GET)");
	at_assert_error(at_call("GET", "/nothing/here", NULL), 404, "no such endpoint: /nothing/here");
	/* a down server shows down=1 in /detail (passive ejection) */
	int dead = gwt_free_port();
	r = at_curl_d("/upstream/app", gwt_strf("server 127.0.0.1:%d;server %s;", dead, at_addr(at_b)));
	ck_assert_int_eq(r->status, 200);
	for (int i = 0; i < 4; i++)
		ck_assert_str_eq(at_name("/name"), "b");   /* the dead one is retried on b */
	r = at_call("GET", "/detail", NULL);
	ck_assert_str_eq(r->body, gwt_strf("app\nserver 127.0.0.1:%d weight=1 max_fails=1 "
	                                   "fail_timeout=10 backup=0 down=1\n%s\ndyn\n\n",
	                                   dead, at_line(at_b, 1, 0, 0)));
}
END_TEST

START_TEST(dyups_delete_and_dynamic)
{
	at_start();
	/* no servers yet: 503 */
	gwt_resp *r = gwt_get(gwt_url(at_port, "/api/name"));
	ck_assert_int_eq(r->status, 503);
	r = at_curl_d("/upstream/dyn", gwt_strf("server %s", at_addr(at_b)));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_name("/api/name"), "b");
	r = at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_c)));
	ck_assert_str_eq(at_name("/name"), "c");
	/* DELETE: app back to the table's server, dyn empty again */
	r = at_call("DELETE", "/upstream/app", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "success");
	ck_assert_str_eq(at_name("/name"), "a");
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body, at_line(at_a, 1, 0, 0));
	r = at_call("DELETE", "/upstream/dyn", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(gwt_get(gwt_url(at_port, "/api/name"))->status, 503);
	ck_assert_int_eq(at_call("GET", "/upstream/dyn", NULL)->status, 204);
	/* deleting what has no override is a no-op that succeeds */
	ck_assert_int_eq(at_call("DELETE", "/upstream/app", NULL)->status, 200);
	ck_assert_str_eq(at_name("/name"), "a");
}
END_TEST

START_TEST(dyups_create_inactive)
{
	at_start();
	/* dyups creates upstreams; the compiled table cannot route to one it
	 * does not declare, so it is kept, inactive */
	gwt_resp *r = at_curl_d("/upstream/later", gwt_strf("server %s;", at_addr(at_b)));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "success");
	ck_assert_str_eq(at_call("GET", "/list", NULL)->body, "app\ndyn\nlater\n");
	ck_assert_str_eq(at_call("GET", "/upstream/later", NULL)->body, at_line(at_b, 1, 0, 0));
	r = at_call("GET", "/api/upstreams/later", NULL);
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	ck_assert(json_is_false(json_object_get(j, "active")));
	ck_assert(json_is_true(json_object_get(j, "override")));
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(json_object_get(j, "servers"), 0), "state")), "inactive");
	/* a name no table could declare is refused */
	at_assert_error(at_curl_d("/upstream/9bad", "server 127.0.0.1:1;"), 400,
	                "'9bad' is not a valid upstream name");
	r = at_call("DELETE", "/upstream/later", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_call("GET", "/list", NULL)->body, "app\ndyn\n");
	at_assert_error(at_call("GET", "/upstream/later", NULL), 404, "no upstream 'later'");
}
END_TEST

/* each malformed body: 400 with the position, nothing changed */
START_TEST(dyups_malformed_bodies)
{
	at_start();
	gwt_resp *r = at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)));
	ck_assert_int_eq(r->status, 200);
	const char *state = at_state();
	ck_assert_ptr_nonnull(state);
	const char *pb = at_addr(at_b);
	int lb = (int)strlen(pb);
	struct { const char *body, *err; } cases[] = {
		{ gwt_strf("server %s weight=0;", pb),
		  gwt_strf("line 1, column %d: bad weight '0' (expected 1..1000000)", 7 + lb + 9) },
		{ gwt_strf("server %s weight=x;", pb),
		  gwt_strf("line 1, column %d: bad weight 'x' (expected 1..1000000)", 7 + lb + 9) },
		{ gwt_strf("server %s server %s", pb, pb),
		  gwt_strf("line 1, column %d: expected ';'", 7 + lb + 2) },
		{ gwt_strf("server %s;\n  srever %s;", pb, pb),
		  "line 2, column 3: expected 'server', found 'srever'" },
		{ "", "line 1, column 1: no servers (expected 'server ADDR;')" },
		{ " \n ;", "line 2, column 2: unexpected ';', expected 'server'" },
		{ "server ;", "line 1, column 8: unexpected ';', expected an address after 'server'" },
		{ "server", "line 1, column 7: unexpected end of body, expected an address after 'server'" },
		{ gwt_strf("server %s;;", pb),
		  gwt_strf("line 1, column %d: unexpected ';', expected 'server'", 7 + lb + 2) },
		{ gwt_strf("server %s wieght=2;", pb),
		  gwt_strf("line 1, column %d: unknown parameter 'wieght=2' (expected weight=, "
		           "max_fails=, fail_timeout=, backup, down or ';')", 7 + lb + 2) },
		{ gwt_strf("server %s max_fails=-1;", pb),
		  gwt_strf("line 1, column %d: bad max_fails '-1' (expected 0..1000000)", 7 + lb + 12) },
		{ gwt_strf("server %s fail_timeout=soon;", pb),
		  gwt_strf("line 1, column %d: bad fail_timeout 'soon' (expected e.g. 10, 10s, "
		           "500ms; at most 24h)", 7 + lb + 15) },
		{ gwt_strf("server %s backup=2;", pb),
		  gwt_strf("line 1, column %d: bad backup '2' (expected 0 or 1)", 7 + lb + 9) },
		{ "ip_hash; server 127.0.0.1:1;",
		  "line 1, column 1: 'ip_hash' is not supported here: balancing and upstream "
		  "options come from the rules" },
		{ "server 127.0.0.1:1 \x01;", "line 1, column 20: unexpected byte 0x01, expected "
		  "a server parameter or ';'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		r = at_curl_d("/upstream/app", cases[i].body);
		ck_assert_msg(r->status == 400, "case %zu: status %ld", i, r->status);
		ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
		json_t *j = gwt_json(r);
		ck_assert_msg(!strcmp(json_string_value(json_object_get(j, "error")), cases[i].err),
		              "case %zu: error '%s', want '%s'", i,
		              json_string_value(json_object_get(j, "error")), cases[i].err);
	}
	/* a bad address: the position of the address, addr.h's message */
	r = at_curl_d("/upstream/app", "server 127.0.0.1:99999;");
	ck_assert_int_eq(r->status, 400);
	const char *e = json_string_value(json_object_get(gwt_json(r), "error"));
	ck_assert_msg(!strncmp(e, "line 1, column 8: bad address '127.0.0.1:99999'", 47), "%s", e);
	/* nothing changed: in effect, listed, on disk */
	ck_assert_str_eq(at_spread("/name", 3), "a=0 b=3 c=0");
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body, at_line(at_b, 1, 0, 0));
	ck_assert_str_eq(at_state(), state);
}
END_TEST

/* the real curl binary, as a dyups user runs it */
START_TEST(dyups_real_curl)
{
	if (access("/usr/bin/curl", X_OK) != 0) {
		fprintf(stderr, "dyups_real_curl: no /usr/bin/curl, skipped\n");
		return;
	}
	at_start();
	const char *url = gwt_strf("127.0.0.1:%d/upstream/app", at_admin);
	const char *body = gwt_strf("server %s;", at_addr(at_b));
	const char *argv[] = { "/usr/bin/curl", "-s", "-d", body, url, NULL };
	const char *out = NULL, *err = NULL;
	ck_assert_int_eq(gwt_run("curl", argv, NULL, 10000, &out, &err), 0);
	ck_assert_str_eq(out, "success");
	ck_assert_str_eq(at_name("/name"), "b");
	const char *argv2[] = { "/usr/bin/curl", "-s", gwt_strf("127.0.0.1:%d/detail", at_admin), NULL };
	ck_assert_int_eq(gwt_run("curl2", argv2, NULL, 10000, &out, &err), 0);
	ck_assert_str_eq(out, gwt_strf("app\n%s\ndyn\n\n", at_line(at_b, 1, 0, 0)));
	const char *argv3[] = { "/usr/bin/curl", "-s", "-X", "DELETE", url, NULL };
	ck_assert_int_eq(gwt_run("curl3", argv3, NULL, 10000, &out, &err), 0);
	ck_assert_str_eq(out, "success");
	ck_assert_str_eq(at_name("/name"), "a");
	/* a malformed body through curl: 400, the position in JSON */
	const char *argv4[] = { "/usr/bin/curl", "-s", "-w", " %{http_code}", "-d",
	                        "server 127.0.0.1:1 weight=;", url, NULL };
	ck_assert_int_eq(gwt_run("curl4", argv4, NULL, 10000, &out, &err), 0);
	ck_assert_str_eq(out, "{\"error\":\"line 1, column 27: bad weight '' (expected 1..1000000)\"} 400");
}
END_TEST

/* ------------------------------------------------------------ JSON */

static json_t *server_at(json_t *up, size_t i)
{
	return json_array_get(json_object_get(up, "servers"), i);
}

START_TEST(api_get_upstreams)
{
	at_start();
	ck_assert_str_eq(at_name("/name"), "a");
	gwt_resp *r = at_call("GET", "/api/upstreams", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	json_t *ups = json_object_get(gwt_json(r), "upstreams");
	ck_assert_uint_eq(json_array_size(ups), 2);
	json_t *app = json_array_get(ups, 0), *dyn = json_array_get(ups, 1);
	ck_assert_str_eq(json_string_value(json_object_get(app, "name")), "app");
	ck_assert(json_is_true(json_object_get(app, "active")));
	ck_assert(json_is_false(json_object_get(app, "override")));
	ck_assert(json_is_false(json_object_get(app, "dynamic")));
	ck_assert_str_eq(json_string_value(json_object_get(app, "balance")), "round_robin");
	json_t *s = server_at(app, 0);
	ck_assert_str_eq(json_string_value(json_object_get(s, "address")), at_addr(at_a));
	ck_assert_int_eq(json_integer_value(json_object_get(s, "weight")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "max_fails")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "fail_timeout")), 10);
	ck_assert(json_is_false(json_object_get(s, "backup")));
	ck_assert(json_is_false(json_object_get(s, "drain")));
	ck_assert_str_eq(json_string_value(json_object_get(s, "state")), "up");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "requests")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "failures")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "active")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(dyn, "name")), "dyn");
	ck_assert(json_is_true(json_object_get(dyn, "dynamic")));
	ck_assert_uint_eq(json_array_size(json_object_get(dyn, "servers")), 0);
	r = at_call("GET", "/api/upstreams/dyn", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "{\"name\":\"dyn\",\"active\":true,\"override\":false,"
	                 "\"dynamic\":true,\"balance\":\"round_robin\",\"servers\":[]}");
	at_assert_error(at_call("GET", "/api/upstreams/nope", NULL), 404, "no upstream 'nope'");
	at_assert_error(at_call("POST", "/api/upstreams", "{}"), 405,
	                "method not allowed (allowed: GET)");
}
END_TEST

START_TEST(api_put_delete_upstream)
{
	at_start();
	const char *body = gwt_strf("{\"servers\":[{\"address\":\"%s\",\"weight\":3},"
	                            "{\"address\":\"%s\",\"fail_timeout\":\"500ms\",\"max_fails\":0}]}",
	                            at_addr(at_b), at_addr(at_c));
	gwt_resp *r = at_call("PUT", "/api/upstreams/app", body);
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	ck_assert(json_is_true(json_object_get(j, "override")));
	ck_assert_int_eq(json_integer_value(json_object_get(server_at(j, 0), "weight")), 3);
	ck_assert(json_real_value(json_object_get(server_at(j, 1), "fail_timeout")) == 0.5);
	ck_assert_int_eq(json_integer_value(json_object_get(server_at(j, 1), "max_fails")), 0);
	ck_assert_str_eq(at_spread("/name", 8), "a=0 b=6 c=2");
	/* the bare array works too, and a GET answer can be PUT back */
	r = at_call("GET", "/api/upstreams/app", NULL);
	const char *again = json_dumps(json_object_get(gwt_json(r), "servers"), JSON_COMPACT);
	r = at_call("PUT", "/api/upstreams/app", again);
	ck_assert_int_eq(r->status, 200);
	free((void *)again);
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body, gwt_strf(
		"%sserver %s weight=1 max_fails=0 fail_timeout=500ms backup=0 down=0\n",
		at_line(at_b, 3, 0, 0), at_addr(at_c)));
	/* malformed JSON: the position; bad values: the path; nothing changes */
	const char *before = at_state();
	at_assert_error(at_call("PUT", "/api/upstreams/app", "{\"servers\": [1,]}"), 400,
	                "line 1, column 16: unexpected token near ']'");
	at_assert_error(at_call("PUT", "/api/upstreams/app", ""), 400,
	                "line 1, column 1: '[' or '{' expected near end of file");
	at_assert_error(at_call("PUT", "/api/upstreams/app", "{\"servers\":[{\"address\":\"x:1\","
	                        "\"wieght\":2}]}"), 400, "servers[0]: unknown key 'wieght' "
	                "(expected address, weight, max_fails, fail_timeout, backup, drain)");
	at_assert_error(at_call("PUT", "/api/upstreams/app", "{\"servers\":[{\"address\":\"x:1\"},"
	                        "{\"address\":\"y:1\",\"weight\":0}]}"), 400,
	                "servers[1].weight: expected an integer 1..1000000");
	at_assert_error(at_call("PUT", "/api/upstreams/app", "{\"servers\":[{\"weight\":2}]}"), 400,
	                "servers[0]: \"address\" is required");
	at_assert_error(at_call("PUT", "/api/upstreams/app", "{\"servers\":[]}"), 400,
	                "no servers (DELETE the upstream to drop its override)");
	at_assert_error(at_call("PUT", "/api/upstreams/app", "{\"srvs\":[]}"), 400,
	                "expected {\"servers\": [...]} or an array of servers");
	ck_assert_str_eq(at_state(), before);
	ck_assert_str_eq(at_spread("/name", 4), "a=0 b=3 c=1");
	/* DELETE: back to the table */
	r = at_call("DELETE", "/api/upstreams/app", NULL);
	ck_assert_int_eq(r->status, 200);
	j = gwt_json(r);
	ck_assert(json_is_false(json_object_get(j, "override")));
	ck_assert_str_eq(json_string_value(json_object_get(server_at(j, 0), "address")), at_addr(at_a));
	ck_assert_str_eq(at_name("/name"), "a");
}
END_TEST

START_TEST(api_servers_add_remove)
{
	at_start();
	/* add b (weight 2) to the table's list: an override {a, b} */
	gwt_resp *r = at_call("PUT", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_b)),
	                      "{\"weight\":2}");
	ck_assert_int_eq(r->status, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(gwt_json(r), "servers")), 2);
	ck_assert_str_eq(at_spread("/name", 6), "a=2 b=4 c=0");
	/* replace b's parameters (empty body: defaults) */
	r = at_call("PUT", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_b)), "");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body,
	                 gwt_strf("%s%s", at_line(at_a, 1, 0, 0), at_line(at_b, 1, 0, 0)));
	/* remove a: only b */
	r = at_call("DELETE", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_a)), NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_spread("/name", 3), "a=0 b=3 c=0");
	/* the last server of a table upstream: refused */
	at_assert_error(at_call("DELETE", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_b)),
	                        NULL), 409,
	                gwt_strf("'%s' is its last server: DELETE /api/upstreams/app drops the "
	                         "override (back to the table's servers)", at_addr(at_b)));
	at_assert_error(at_call("DELETE", "/api/upstreams/app/servers/127.0.0.1:1", NULL), 404,
	                "upstream 'app' has no server '127.0.0.1:1'");
	at_assert_error(at_call("PUT", "/api/upstreams/nope/servers/127.0.0.1:1", ""), 404,
	                "no upstream 'nope'");
	at_assert_error(at_call("PUT", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_b)),
	                        "{\"address\":\"127.0.0.1:2\"}"), 400,
	                gwt_strf("server.address: '127.0.0.1:2' differs from the address in the "
	                         "path '%s'", at_addr(at_b)));
	at_assert_error(at_call("PUT", "/api/upstreams/app/servers/127.0.0.1:", ""), 400,
	                "server.address: bad address '127.0.0.1:' (empty port)");
	/* a dynamic upstream: servers one by one, the last one may go */
	r = at_call("PUT", gwt_strf("/api/upstreams/dyn/servers/%s", at_addr(at_c)), NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_name("/api/name"), "c");
	r = at_call("DELETE", gwt_strf("/api/upstreams/dyn/servers/%s", at_addr(at_c)), NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(gwt_get(gwt_url(at_port, "/api/name"))->status, 503);
	/* an address with '/' in it, percent-encoded in the path */
	r = at_call("PUT", "/api/upstreams/dyn/servers/https%3A%2F%2Fexample.test%3A8443", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(server_at(gwt_json(r), 0), "address")),
	                 "https://example.test:8443");
	r = at_call("DELETE", "/api/upstreams/dyn/servers/https:%2F%2Fexample.test:8443", NULL);
	ck_assert_int_eq(r->status, 200);
}
END_TEST

START_TEST(api_drain)
{
	at_start();
	gwt_resp *r = at_call("PUT", gwt_strf("/api/upstreams/app/servers/%s", at_addr(at_b)), NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_spread("/name", 4), "a=2 b=2 c=0");
	/* a request in flight on a ... */
	int fd = gwt_connect("127.0.0.1", at_port, 2000);
	ck_assert_int_ge(fd, 0);
	uint64_t served = origin_count(at_a);
	ck_assert_int_eq(gwt_sendf(fd, "GET /slow/1500 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	/* (the round robin's next pick is a) */
	uint64_t end = gwt_now_ms() + 3000;
	while (origin_count(at_a) == served && gwt_now_ms() < end)
		gwt_sleep_ms(10);
	ck_assert_uint_eq(origin_count(at_a), served + 1);
	/* ... then a drained: new requests avoid it at once */
	r = at_call("POST", gwt_strf("/api/upstreams/app/servers/%s/drain", at_addr(at_a)), NULL);
	ck_assert_int_eq(r->status, 200);
	json_t *s = server_at(gwt_json(r), 0);
	ck_assert(json_is_true(json_object_get(s, "drain")));
	ck_assert_str_eq(json_string_value(json_object_get(s, "state")), "drained");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "active")), 1);
	ck_assert_str_eq(at_spread("/name", 4), "a=0 b=4 c=0");
	ck_assert_str_eq(at_call("GET", "/upstream/app", NULL)->body,
	                 gwt_strf("%s%s", at_line(at_a, 1, 0, 1), at_line(at_b, 1, 0, 0)));
	/* the in-flight one finishes on a */
	const char *resp = gwt_recv_response(fd, 0, 5000, NULL);
	ck_assert_ptr_nonnull(resp);
	ck_assert_int_eq(gwt_raw_status(resp), 200);
	ck_assert_str_eq(gwt_raw_hdr(resp, "X-Origin-Name"), "a");
	ck_assert_str_eq(gwt_raw_body(resp), "slept 1500\n");
	/* undrain */
	r = at_call("DELETE", gwt_strf("/api/upstreams/app/servers/%s/drain", at_addr(at_a)), NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(server_at(gwt_json(r), 0), "state")), "up");
	ck_assert_str_eq(at_spread("/name", 4), "a=2 b=2 c=0");
	/* every server drained: 503 */
	at_call("POST", gwt_strf("/api/upstreams/app/servers/%s/drain", at_addr(at_a)), NULL);
	at_call("POST", gwt_strf("/api/upstreams/app/servers/%s/drain", at_addr(at_b)), NULL);
	ck_assert_int_eq(gwt_get(gwt_url(at_port, "/name"))->status, 503);
	at_assert_error(at_call("POST", "/api/upstreams/app/servers/127.0.0.1:1/drain", NULL), 404,
	                "upstream 'app' has no server '127.0.0.1:1'");
	at_assert_error(at_call("GET", gwt_strf("/api/upstreams/app/servers/%s/drain",
	                                        at_addr(at_a)), NULL), 405,
	                "method not allowed (allowed: POST, DELETE)");
}
END_TEST

/* ---------------------------------------------------- other endpoints */

/* the counters of one route in /api/routes */
static json_t *route_counters_of(json_t *routes, const char *name)
{
	for (size_t i = 0; i < json_array_size(routes); i++) {
		json_t *o = json_array_get(routes, i);
		if (!strcmp(json_string_value(json_object_get(o, "name")), name))
			return json_object_get(o, "counters");
	}
	ck_abort_msg("no route %s", name);
	return NULL;
}

/* an integer member of o; "a.b" looks into the object a */
static json_int_t jint(json_t *o, const char *key)
{
	const char *dot = strchr(key, '.');
	if (dot) {
		o = json_object_get(o, gwt_strf("%.*s", (int)(dot - key), key));
		key = dot + 1;
	}
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

START_TEST(api_routes)
{
	at_start();
	gwt_resp *r = at_call("GET", "/api/routes", NULL);
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "generation")), 1);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "source_sha256"))), 64);
	json_t *routes = json_object_get(j, "routes");
	ck_assert_uint_eq(json_array_size(routes), 2);
	/* file: the path gwc was given (the harness gives it absolute); no
	 * request yet: every counter 0 */
	const char *f = gwt_path("rules.gwr");
	const char *zero = "\"counters\":{\"requests\":0,\"responses\":{\"1xx\":0,\"2xx\":0,"
	                   "\"3xx\":0,\"4xx\":0,\"5xx\":0},\"bytes_in\":0,\"bytes_out\":0,"
	                   "\"duration_sum_s\":0.0}";
	char *r0 = json_dumps(json_array_get(routes, 0), JSON_COMPACT);
	char *r1 = json_dumps(json_array_get(routes, 1), JSON_COMPACT);
	const char *s0 = gwt_strf("%s", r0), *s1 = gwt_strf("%s", r1);
	free(r0);
	free(r1);
	ck_assert_str_eq(s0, gwt_strf(
		"{\"index\":0,\"name\":\"dynr\",\"file\":\"%s\",\"line\":3,\"col\":1,%s}", f, zero));
	ck_assert_str_eq(s1, gwt_strf(
		"{\"index\":1,\"name\":\"main\",\"file\":\"%s\",\"line\":4,\"col\":1,%s}", f, zero));

	/* per-route counters move by exactly the requests sent: main 3 x 200
	 * (body "a"), 1 x 404 from the origin; dynr (dynamic, empty) 2 x 503 */
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(at_name("/name"), "a");
	ck_assert_int_eq(gwt_get(gwt_url(at_port, "/nope"))->status, 404);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(gwt_get(gwt_url(at_port, "/api/name"))->status, 503);
	/* a client has its answer a little before gwd counts the request */
	uint64_t t0 = gwt_now_ms();
	while (json_integer_value(json_object_get(gwt_json(at_call("GET", "/status", NULL)),
	                                          "in_flight")) != 0 && gwt_now_ms() - t0 < 3000)
		gwt_sleep_ms(10);
	r = at_call("GET", "/api/routes", NULL);
	ck_assert_int_eq(r->status, 200);
	routes = json_object_get(gwt_json(r), "routes");
	json_t *m = route_counters_of(routes, "main"), *d = route_counters_of(routes, "dynr");
	ck_assert_int_eq(jint(m, "requests"), 4);
	ck_assert_int_eq(jint(m, "responses.2xx"), 3);
	ck_assert_int_eq(jint(m, "responses.4xx"), 1);
	ck_assert_int_eq(jint(m, "responses.5xx"), 0);
	ck_assert_int_gt(jint(m, "bytes_in"), 4 * (json_int_t)strlen("GET /name HTTP/1.1\r\n\r\n"));
	ck_assert_int_eq(jint(d, "requests"), 2);
	ck_assert_int_eq(jint(d, "responses.5xx"), 2);
	ck_assert_int_eq(jint(d, "responses.2xx"), 0);
	ck_assert(json_is_real(json_object_get(m, "duration_sum_s")));
	ck_assert_double_lt(json_real_value(json_object_get(m, "duration_sum_s")), 4.0);
	/* bytes_out: the three bodies "a" and the origin's 404 body */
	json_int_t out = jint(m, "bytes_out");
	ck_assert_int_gt(out, 3);
	ck_assert_int_eq(out - 3, (json_int_t)strlen(gwt_get(gwt_url(at_port, "/nope"))->body));

	/* metrics: {enabled: false}: nothing is counted, and it says so */
	at_stop();
	at_start_with(NULL, NULL, "metrics: {enabled: false}\n");
	ck_assert_str_eq(at_name("/name"), "a");
	r = at_call("GET", "/api/routes", NULL);
	ck_assert_int_eq(r->status, 200);
	routes = json_object_get(gwt_json(r), "routes");
	ck_assert_uint_eq(json_array_size(routes), 2);
	ck_assert(json_is_null(route_counters_of(routes, "main")));
	ck_assert(json_is_null(route_counters_of(routes, "dynr")));
}
END_TEST

static int64_t status_generation(void)
{
	gwt_resp *r = at_call("GET", "/status", NULL);
	ck_assert_int_eq(r->status, 200);
	return json_integer_value(json_object_get(json_object_get(gwt_json(r), "table"),
	                                          "generation"));
}

START_TEST(reload_good_and_garbage)
{
	at_start();
	ck_assert_int_eq(status_generation(), 1);
	/* a new table: app on c */
	const char *rules = gwt_strf("upstream app { server 127.0.0.1:%d; }\n"
	                             "upstream dyn dynamic;\n"
	                             "route main { match any; proxy app; }\n", origin_port(at_c));
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	gwt_resp *r = at_call("POST", "/reload", "");
	ck_assert_int_eq(r->status, 200);
	json_t *j = gwt_json(r);
	int64_t gen = json_integer_value(json_object_get(j, "generation"));
	ck_assert_int_ge(gen, 2);   /* inotify may have loaded it first */
	ck_assert_int_eq(json_integer_value(json_object_get(j, "routes")), 1);
	ck_assert_int_eq(status_generation(), gen);
	ck_assert_str_eq(at_name("/name"), "c");
	/* garbage: refused with the loader's message, the old table stays */
	gwt_writef("rules.gwb", "this is not a table\n");
	r = at_call("POST", "/reload", NULL);
	ck_assert_int_eq(r->status, 409);
	j = gwt_json(r);
	const char *e = json_string_value(json_object_get(j, "error"));
	ck_assert_msg(strstr(e, "rules.gwb") != NULL, "error: %s", e);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "generation")), gen);
	ck_assert_int_eq(status_generation(), gen);
	ck_assert_str_eq(at_name("/name"), "c");
	/* a broken gateway.yaml: refused too */
	gwt_compile("rules.gwr");
	at_write_yaml(at_default_admin(), "bogus_key: 1\n");
	r = at_call("POST", "/reload", NULL);
	ck_assert_int_eq(r->status, 409);
	e = json_string_value(json_object_get(gwt_json(r), "error"));
	ck_assert_msg(strstr(e, "bogus_key") != NULL, "error: %s", e);
	ck_assert_str_eq(at_name("/name"), "c");
	at_assert_error(at_call("GET", "/reload", NULL), 405, "method not allowed (allowed: POST)");
}
END_TEST

START_TEST(status_document)
{
	at_start();
	ck_assert_str_eq(at_name("/name"), "a");
	at_curl_d("/upstream/dyn", gwt_strf("server %s;", at_addr(at_b)));
	gwt_resp *r = at_call("GET", "/status", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	json_t *j = gwt_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "version")), PACKAGE_VERSION);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "pid")), gwt_pid(at_gwd));
	ck_assert_int_ge(json_integer_value(json_object_get(j, "uptime_s")), 0);
	json_t *t = json_object_get(j, "table");
	ck_assert_int_eq(json_integer_value(json_object_get(t, "generation")), 1);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(t, "source_sha256"))), 64);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "routes")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "upstreams")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "reloads_ok")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "reloads_failed")), 0);
	/* the design's words at the top level too */
	ck_assert_int_eq(json_integer_value(json_object_get(j, "generation")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(j, "source_hash")),
	                 json_string_value(json_object_get(t, "source_sha256")));
	ck_assert(json_is_integer(json_object_get(j, "uptime")));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "requests")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "proxied")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "workers")), 1);
	ck_assert_ptr_nonnull(json_object_get(j, "connections"));
	ck_assert_ptr_nonnull(json_object_get(j, "in_flight"));
	json_t *st = json_object_get(j, "state");
	ck_assert_str_eq(json_string_value(json_object_get(st, "dir")), gwt_path("state"));
	ck_assert(json_is_true(json_object_get(st, "persisted")));
	ck_assert_int_eq(json_integer_value(json_object_get(st, "overrides")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "inactive")), 0);
	json_t *ups = json_object_get(j, "upstreams");
	ck_assert_uint_eq(json_array_size(ups), 2);
	json_t *s = server_at(json_array_get(ups, 0), 0);
	ck_assert_str_eq(json_string_value(json_object_get(s, "state")), "up");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "requests")), 1);
	s = server_at(json_array_get(ups, 1), 0);
	ck_assert_str_eq(json_string_value(json_object_get(s, "address")), at_addr(at_b));
}
END_TEST

START_TEST(body_too_large)
{
	at_start();
	gwt_req q = { .method = "POST", .url = gwt_url(at_admin, "/upstream/app"),
	              .gen_len = (1u << 20) + 1 };
	gwt_resp *r = gwt_http(&q);
	at_assert_error(r, 413, "request body over 1048576 bytes");
	ck_assert_str_eq(at_name("/name"), "a");
}
END_TEST

/* -------------------------------------------------------- security */

START_TEST(token_required)
{
	at_origins();
	/* surrounding whitespace in the file is not part of the token */
	gwt_writef("admin.token", "  \t s3cret-token_42 \n\n");
	at_ports();
	at_start_with(NULL, gwt_strf("admin: {listen: 127.0.0.1:%d, token_file: admin.token}\n"
	                             "state_dir: state\n", at_admin), NULL);
	gwt_resp *r = at_call("GET", "/list", NULL);
	at_assert_error(r, 401, "unauthorized: Authorization: Bearer required");
	ck_assert_str_eq(gwt_hdr(r, "WWW-Authenticate"), "Bearer");
	/* X-Request-Id on every response gwd sends, the admin port's too */
	ck_assert_uint_eq(strlen(gwt_hdr(r, "X-Request-Id")), 32);
	const char *const wrong[][2] = {
		{ "Authorization: Bearer s3cret-token_4", "prefix" },
		{ "Authorization: Bearer s3cret-token_421", "longer" },
		{ "Authorization: Bearer S3CRET-TOKEN_42", "case" },
		{ "Authorization: Basic czNjcmV0LXRva2VuXzQy", "scheme" },
		{ "Authorization: s3cret-token_42", "no scheme" },
		{ "Authorization: Bearer", "empty" },
	};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		const char *h[] = { wrong[i][0], NULL };
		r = at_call_h("GET", "/list", NULL, h);
		ck_assert_msg(r->status == 401, "%s: status %ld", wrong[i][1], r->status);
		ck_assert_str_eq(r->body, "{\"error\":\"unauthorized: wrong token\"}");
	}
	/* a change without the token: refused, nothing changed */
	r = at_curl_d("/upstream/app", gwt_strf("server %s;", at_addr(at_b)));
	ck_assert_int_eq(r->status, 401);
	ck_assert_str_eq(at_name("/name"), "a");
	ck_assert_ptr_null(at_state());
	/* the right token (scheme in any case, spaces around) */
	const char *ok[] = { "Authorization: Bearer s3cret-token_42", NULL };
	r = at_call_h("GET", "/list", NULL, ok);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "app\ndyn\n");
	const char *ok2[] = { "Authorization: bearer   s3cret-token_42  ",
	                      "Content-Type: application/x-www-form-urlencoded", NULL };
	r = at_call_h("POST", "/upstream/app", gwt_strf("server %s;", at_addr(at_b)), ok2);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(at_name("/name"), "b");
	r = at_call_h("GET", "/status", NULL, ok);
	ck_assert_int_eq(r->status, 200);
	const char *mine[] = { "Authorization: Bearer s3cret-token_42", "X-Request-Id: ops-42",
	                       NULL };
	r = at_call_h("GET", "/list", NULL, mine);
	ck_assert_str_eq(gwt_hdr(r, "X-Request-Id"), "ops-42");
}
END_TEST

START_TEST(non_loopback_needs_token)
{
	at_origins();
	const char *rules = at_rules();
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	at_ports();
	at_write_yaml(gwt_strf("admin: {listen: 0.0.0.0:%d}\n", at_admin), NULL);
	/* gwd -t and gwd itself refuse it */
	const char *argv[] = { gwt_bin("gwd"), "-t", "-c", gwt_path("gw.yaml"), NULL };
	const char *out, *err;
	ck_assert_int_eq(gwt_run("gwd-t", argv, NULL, 10000, &out, &err), 1);
	ck_assert_msg(strstr(err, "is not loopback: set admin.token_file") != NULL, "%s", err);
	const char *argv2[] = { gwt_bin("gwd"), "-c", gwt_path("gw.yaml"), NULL };
	ck_assert_int_eq(gwt_run("gwd-run", argv2, NULL, 10000, &out, &err), 1);
	ck_assert_msg(strstr(err, "is not loopback: set admin.token_file") != NULL, "%s", err);
	ck_assert_int_ne(gwt_wait_port("127.0.0.1", at_port, 100), 0);
	/* with a token it starts, and wants the token */
	gwt_writef("admin.token", "tok\n");
	at_write_yaml(gwt_strf("admin: {listen: 0.0.0.0:%d, token_file: admin.token}\n",
	                       at_admin), NULL);
	at_run();
	ck_assert_int_eq(at_call("GET", "/list", NULL)->status, 401);
	const char *h[] = { "Authorization: Bearer tok", NULL };
	ck_assert_int_eq(at_call_h("GET", "/list", NULL, h)->status, 200);
}
END_TEST

START_TEST(admin_off)
{
	at_origins();
	const char *rules = at_rules();
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	at_ports();
	at_write_yaml("admin: {listen: 'off'}\n", NULL);
	at_gwd = gwt_gwd("gw.yaml", at_port);
	ck_assert_str_eq(at_name("/name"), "a");
	ck_assert_int_eq(gwt_wait_output(at_gwd, "admin API off", 2000), 0);
	ck_assert_ptr_null(strstr(gwt_stderr(at_gwd), "admin API on"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("admin");
	TCase *t = tcase_create("dyups");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, dyups_post_moves_traffic);
	tcase_add_test(t, dyups_parameters_and_whitespace);
	tcase_add_test(t, dyups_list_detail_get);
	tcase_add_test(t, dyups_delete_and_dynamic);
	tcase_add_test(t, dyups_create_inactive);
	tcase_add_test(t, dyups_malformed_bodies);
	tcase_add_test(t, dyups_real_curl);
	suite_add_tcase(s, t);
	t = tcase_create("json");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, api_get_upstreams);
	tcase_add_test(t, api_put_delete_upstream);
	tcase_add_test(t, api_servers_add_remove);
	tcase_add_test(t, api_drain);
	tcase_add_test(t, api_routes);
	tcase_add_test(t, reload_good_and_garbage);
	tcase_add_test(t, status_document);
	tcase_add_test(t, body_too_large);
	suite_add_tcase(s, t);
	t = tcase_create("security");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, token_required);
	tcase_add_test(t, non_loopback_needs_token);
	tcase_add_test(t, admin_off);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

/*
 * admin_common.h — helpers of the admin API tests (test_admin,
 * test_admin_persist): a real gwd with its admin listener, in front of
 * in-process origins; HTTP calls to the admin port sent with the bytes
 * dyups users send (`curl -d BODY URL`: POST, Content-Type
 * application/x-www-form-urlencoded).
 */
#ifndef ADMIN_COMMON_H
#define ADMIN_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int at_port, at_admin;          /* gwd's traffic and admin ports */
static gwt_proc *at_gwd;
static origin *at_a, *at_b, *at_c;     /* origins named "a", "b", "c" */

/* the default rules: `app` on origin a, `dyn` dynamic (reached under
 * /api/: the origin ignores that prefix, so /api/name answers its name) */
static inline const char *at_rules(void)
{
	return gwt_strf("upstream app { server 127.0.0.1:%d; }\n"
	                "upstream dyn dynamic;\n"
	                "route dynr { match path ^= \"/api/\"; proxy dyn; }\n"
	                "route main { match any; proxy app; }\n",
	                origin_port(at_a));
}

static inline void at_origins(void)
{
	if (!at_a) {
		at_a = gwt_origin("a");
		at_b = gwt_origin("b");
		at_c = gwt_origin("c");
	}
}

/* gw.yaml with the admin API on at_admin, one worker, state_dir "state"
 * (unless extra_yaml sets its own admin/state_dir: then admin_yaml NULL) */
static inline void at_write_yaml(const char *admin_yaml, const char *extra_yaml)
{
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n%s%s",
	           at_port, admin_yaml ? admin_yaml : "", extra_yaml ? extra_yaml : "");
}

static inline const char *at_default_admin(void)
{
	return gwt_strf("admin: {listen: 127.0.0.1:%d}\nstate_dir: state\n", at_admin);
}

/* start (or restart) gwd on the current gw.yaml; waits for both ports */
static inline void at_run(void)
{
	at_gwd = gwt_gwd("gw.yaml", at_port);
	ck_assert_msg(gwt_wait_port("127.0.0.1", at_admin, 5000) == 0,
	              "admin API not listening on %d; stderr:\n%s", at_admin, gwt_stderr(at_gwd));
}

static inline void at_stop(void)
{
	ck_assert_int_eq(gwt_stop(at_gwd, SIGTERM, 5000), 0);
}

/* pick the two ports (once per test) */
static inline void at_ports(void)
{
	if (at_port)
		return;
	at_port = gwt_free_port();
	do
		at_admin = gwt_free_port();
	while (at_admin == at_port);
}

/* origins, rules (NULL: at_rules()), config, gwd */
static inline void at_start_with(const char *rules, const char *admin_yaml, const char *extra_yaml)
{
	at_origins();
	at_ports();
	if (!rules)
		rules = at_rules();
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	at_write_yaml(admin_yaml ? admin_yaml : at_default_admin(), extra_yaml);
	at_run();
}

static inline void at_start(void)
{
	at_start_with(NULL, NULL, NULL);
}

/* a call to the admin API; body NULL = none; hdrs NULL-terminated or NULL */
static inline gwt_resp *at_call_h(const char *method, const char *path, const char *body,
                           const char *const *hdrs)
{
	gwt_req q = { .method = method, .url = gwt_url(at_admin, path), .headers = hdrs };
	if (body) {
		q.body = body;
		q.body_len = strlen(body);
		q.has_body = 1;
	}
	gwt_resp *r = gwt_http(&q);
	ck_assert_msg(r->curl_code == 0, "%s %s: %s", method, path, r->error);
	return r;
}

static inline gwt_resp *at_call(const char *method, const char *path, const char *body)
{
	return at_call_h(method, path, body, NULL);
}

/* what `curl -d BODY http://ADMIN/PATH` sends */
static inline gwt_resp *at_curl_d(const char *path, const char *body)
{
	static const char *const h[] = { "Content-Type: application/x-www-form-urlencoded", NULL };
	return at_call_h("POST", path, body, h);
}

/* the JSON error body {"error": msg} with status */
static inline void at_assert_error(const gwt_resp *r, long status, const char *msg)
{
	ck_assert_msg(r->status == status, "status %ld, want %ld; body %s", r->status, status,
	              r->body);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	json_t *j = gwt_json(r);
	ck_assert_msg(json_object_size(j) == 1, "body %s", r->body);
	ck_assert_str_eq(json_string_value(json_object_get(j, "error")), msg);
}

/* the origin name that answers a request for path through gwd */
static inline const char *at_name(const char *path)
{
	gwt_resp *r = gwt_get(gwt_url(at_port, path));
	ck_assert_msg(r->curl_code == 0, "GET %s: %s", path, r->error);
	if (r->status != 200)
		return gwt_strf("status %ld", r->status);
	return r->body;
}

/* n requests to path: how many each origin answered, as "a=N b=N c=N" */
static inline const char *at_spread(const char *path, int n)
{
	int ca = 0, cb = 0, cc = 0, other = 0;
	for (int i = 0; i < n; i++) {
		const char *who = at_name(path);
		if (!strcmp(who, "a"))
			ca++;
		else if (!strcmp(who, "b"))
			cb++;
		else if (!strcmp(who, "c"))
			cc++;
		else
			other++;
	}
	return gwt_strf("a=%d b=%d c=%d%s", ca, cb, cc, other ? gwt_strf(" other=%d", other) : "");
}

/* "server 127.0.0.1:PORT weight=1 max_fails=1 fail_timeout=10 backup=0 down=0\n" */
static inline const char *at_line(const origin *o, int weight, int backup, int down)
{
	return gwt_strf("server 127.0.0.1:%d weight=%d max_fails=1 fail_timeout=10 backup=%d down=%d\n",
	                origin_port(o), weight, backup, down);
}

static inline const char *at_addr(const origin *o)
{
	return gwt_strf("127.0.0.1:%d", origin_port(o));
}

/* the state file, or NULL when there is none */
static inline const char *at_state(void)
{
	return gwt_read("state/upstreams.json", NULL);
}

#endif /* ADMIN_COMMON_H */

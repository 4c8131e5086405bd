/*
 * gwd_common.h — small helpers shared by the gwd integration tests
 * (test_proxy, test_routing, test_reload, test_signals): write a rule set,
 * compile it, write gateway.yaml and start a real gwd on a free port.
 */
#ifndef GWD_COMMON_H
#define GWD_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static gwt_proc *g_gwd __attribute__((unused));
static int g_port __attribute__((unused));

/* rules.gwr <- rules, compiled; gw.yaml with one worker thread (unless
 * extra_yaml sets threads), no admin API, plus extra YAML lines; gwd
 * started. Returns the port. */
static inline int gwdt_start(const char *extra_yaml, const char *rules)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	const char *x = extra_yaml ? extra_yaml : "";
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n"
	           "%s%s", g_port, strstr(x, "threads:") ? "" : "threads: 1\n", x);
	g_gwd = gwt_gwd("gw.yaml", g_port);
	return g_port;
}

static inline gwt_resp *gwdt_get(const char *path)
{
	return gwt_get(gwt_url(g_port, path));
}

/* a GET with extra headers (NULL-terminated list) */
static inline gwt_resp *gwdt_get_h(const char *path, const char *const *headers)
{
	gwt_req q = { .url = gwt_url(g_port, path), .headers = headers };
	return gwt_http(&q);
}

/* gwd's own error answers: JSON {"error": msg, "request_id": X-Request-Id} */
static inline void gwdt_assert_error(const gwt_resp *r, long status, const char *msg)
{
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, status);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_ptr_nonnull(id);
	const char *want = gwt_strf("{\"error\":\"%s\",\"request_id\":\"%s\"}", msg, id);
	ck_assert_str_eq(r->body, want);
}

/* 1 if s is n lowercase hex digits */
static inline int gwdt_is_hex(const char *s, size_t n)
{
	if (!s || strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

#endif /* GWD_COMMON_H */

/*
 * test_cors.c — `cors` with a real gwd and origin: preflights answered by
 * the gateway with exact headers (never proxied, answered before access
 * directives), disallowed origins (403 on preflight, no CORS headers on
 * actual requests), actual requests (origin echoed or *, credentials,
 * Vary: Origin, the upstream's own CORS headers replaced), wildcards, and
 * cached responses getting the headers of each request.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

static int g_port;

static void start(const char *rules)
{
	gwt_write("rules.gwr", rules, strlen(rules));
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n"
	           "threads: 1\n", g_port);
	gwt_gwd("gw.yaml", g_port);
}

static gwt_resp *req(const char *method, const char *path, const char *const *h)
{
	gwt_req q = { .method = method, .url = gwt_url(g_port, path), .headers = h };
	gwt_resp *r = gwt_http(&q);
	ck_assert_msg(r->curl_code == 0, "%s %s: %s", method ? method : "GET", path, r->error);
	return r;
}

/* the response has exactly these headers (names, any order, any case),
 * plus Date and X-Request-Id */
static void exact_headers(const gwt_resp *r, const char *const *names)
{
	size_t n = 0;
	for (; names[n]; n++)
		ck_assert_msg(gwt_hdr_count(r, names[n]) == 1, "header %s: %zu times", names[n],
		              gwt_hdr_count(r, names[n]));
	for (size_t i = 0; i < r->nhdr; i++) {
		int known = !strcasecmp(r->hname[i], "Date") || !strcasecmp(r->hname[i], "X-Request-Id");
		for (size_t k = 0; k < n && !known; k++)
			known = !strcasecmp(r->hname[i], names[k]);
		ck_assert_msg(known, "unexpected header %s: %s", r->hname[i], r->hvalue[i]);
	}
	ck_assert_uint_eq(gwt_hdr_count(r, "X-Request-Id"), 1);
}

static const char *rules_with(origin *o, const char *cors)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                "route r { match any; %s proxy a; }\n", origin_port(o), cors);
}

START_TEST(preflight_exact)
{
	origin *o = gwt_origin("a");
	start(rules_with(o, "cors origins=\"https://app.example\" methods=(\"GET\", \"POST\")"
	                    " headers=\"X-Token, Content-Type\" max_age=10m credentials=on;"));
	const char *h[] = { "Origin: https://app.example", "Access-Control-Request-Method: POST",
	                    "Access-Control-Request-Headers: x-token", NULL };
	gwt_resp *r = req("OPTIONS", "/echo", h);
	ck_assert_int_eq(r->status, 204);
	ck_assert_uint_eq(r->body_len, 0);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Credentials"), "true");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Methods"), "GET, POST");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Headers"), "X-Token, Content-Type");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Max-Age"), "600");
	ck_assert_str_eq(gwt_hdr(r, "Vary"), "Origin");
	const char *names[] = { "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
	                        "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	                        "Access-Control-Max-Age", "Vary", NULL };
	exact_headers(r, names);
	/* answered by the gateway: the origin saw nothing */
	ck_assert_uint_eq(origin_count(o), 0);
	/* raw: a 204 has no body and no Content-Length, and keep-alive holds */
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	for (int i = 0; i < 2; i++) {
		gwt_sendf(fd, "OPTIONS /x HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
		              "Access-Control-Request-Method: GET\r\n\r\n");
		const char *a = gwt_recv_response(fd, 0, 3000, NULL);
		ck_assert_ptr_nonnull(a);
		ck_assert_int_eq(gwt_raw_status(a), 204);
		ck_assert_ptr_null(gwt_raw_hdr(a, "Content-Length"));
		ck_assert_str_eq(gwt_raw_body(a), "");
	}
	ck_assert_uint_eq(origin_count(o), 0);
}
END_TEST

/* nginx/Kong-style unquoted lists: methods=GET,POST headers=X-Token */
START_TEST(preflight_unquoted_lists)
{
	origin *o = gwt_origin("a");
	start(rules_with(o, "cors origins=\"https://app.example\" methods=GET,POST headers=X-Token;"));
	const char *h[] = { "Origin: https://app.example", "Access-Control-Request-Method: POST",
	                    NULL };
	gwt_resp *r = req("OPTIONS", "/echo", h);
	ck_assert_int_eq(r->status, 204);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Methods"), "GET, POST");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Headers"), "X-Token");
}
END_TEST

START_TEST(preflight_defaults)
{
	/* cors with no options: any origin, the default methods, requested
	 * headers echoed, no Max-Age, no credentials */
	origin *o = gwt_origin("a");
	start(rules_with(o, "cors;"));
	const char *h[] = { "Origin: https://any.example", "Access-Control-Request-Method: DELETE",
	                    "Access-Control-Request-Headers: X-A, X-B", NULL };
	gwt_resp *r = req("OPTIONS", "/echo", h);
	ck_assert_int_eq(r->status, 204);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "*");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Methods"),
	                 "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Headers"), "X-A, X-B");
	const char *names[] = { "Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
	                        "Access-Control-Allow-Headers", "Vary", NULL };
	exact_headers(r, names);
	/* no requested headers: no Allow-Headers */
	const char *h2[] = { "Origin: https://any.example", "Access-Control-Request-Method: GET", NULL };
	r = req("OPTIONS", "/echo", h2);
	ck_assert_int_eq(r->status, 204);
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Headers"));
	/* actual requests: * on every response, no Vary */
	r = req(NULL, "/name", h2);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "*");
	ck_assert_ptr_null(gwt_hdr(r, "Vary"));
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Credentials"));
	r = req(NULL, "/name", NULL);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "*");
	ck_assert_uint_eq(origin_count(o), 2);
}
END_TEST

START_TEST(preflight_disallowed)
{
	origin *o = gwt_origin("a");
	start(rules_with(o, "cors origins=\"https://app.example\";"));
	const char *h[] = { "Origin: https://evil.example", "Access-Control-Request-Method: GET", NULL };
	gwt_resp *r = req("OPTIONS", "/echo", h);
	ck_assert_int_eq(r->status, 403);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"forbidden\",\"request_id\":\"%s\"}",
	                                   gwt_hdr(r, "X-Request-Id")));
	const char *names[] = { "Vary", "Content-Type", "Content-Length", NULL };
	exact_headers(r, names);
	ck_assert_str_eq(gwt_hdr(r, "Vary"), "Origin");
	ck_assert_uint_eq(origin_count(o), 0);
	/* OPTIONS without Access-Control-Request-Method is not a preflight:
	 * proxied like any request */
	const char *h2[] = { "Origin: https://app.example", NULL };
	r = req("OPTIONS", "/echo", h2);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_str(r, "method"), "OPTIONS");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_uint_eq(origin_count(o), 1);
}
END_TEST

START_TEST(preflight_before_access)
{
	/* a browser's preflight carries no credentials: answered before deny,
	 * auth, rate limits; the refusal of the actual request still carries
	 * the CORS headers so the page can read it */
	origin *o = gwt_origin("a");
	start(gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	               "route r { match any; deny all; cors origins=\"https://app.example\"; proxy a; }\n",
	               origin_port(o)));
	const char *h[] = { "Origin: https://app.example", "Access-Control-Request-Method: PUT", NULL };
	gwt_resp *r = req("OPTIONS", "/echo", h);
	ck_assert_int_eq(r->status, 204);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	const char *g[] = { "Origin: https://app.example", NULL };
	r = req(NULL, "/echo", g);
	ck_assert_int_eq(r->status, 403);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_str_eq(gwt_hdr(r, "Vary"), "Origin");
	ck_assert_uint_eq(origin_count(o), 0);
}
END_TEST

START_TEST(actual_requests)
{
	origin *o = gwt_origin("a");
	start(rules_with(o, "cors origins=(\"https://app.example\", \"https://*.corp.example\") "
	                    "credentials=on;"));
	const char *ok[] = { "Origin: https://app.example", NULL };
	gwt_resp *r = req(NULL, "/echo", ok);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Credentials"), "true");
	ck_assert_str_eq(gwt_hdr(r, "Vary"), "Origin");
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Methods"));
	ck_assert_str_eq(gwt_echo_hdr(r, "Origin"), "https://app.example");   /* forwarded */
	/* wildcard subdomains */
	const char *w[] = { "Origin: https://a.b.corp.example", NULL };
	r = req("POST", "/echo", w);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://a.b.corp.example");
	const char *bad[] = { "Origin: https://corp.example", NULL };
	r = req(NULL, "/echo", bad);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Origin"));
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Credentials"));
	ck_assert_str_eq(gwt_hdr(r, "Vary"), "Origin");
	/* no Origin: no CORS headers, still Vary */
	r = req(NULL, "/echo", NULL);
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Origin"));
	ck_assert_str_eq(gwt_hdr(r, "Vary"), "Origin");
	/* an upstream that sends its own: the route's policy replaces it, and
	 * Vary is added to the upstream's */
	const char *up = "/headers?h=Access-Control-Allow-Origin:*&h=Vary:Accept-Encoding"
	                 "&h=Access-Control-Allow-Credentials:true";
	r = req(NULL, up, ok);
	ck_assert_uint_eq(gwt_hdr_count(r, "Access-Control-Allow-Origin"), 1);
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_uint_eq(gwt_hdr_count(r, "Vary"), 2);
	ck_assert_str_eq(gwt_hdr_nth(r, "Vary", 0), "Accept-Encoding");
	ck_assert_str_eq(gwt_hdr_nth(r, "Vary", 1), "Origin");
	r = req(NULL, up, bad);
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Origin"));
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Credentials"));
}
END_TEST

START_TEST(cached_responses)
{
	/* the header filter runs on every answer, hits included */
	origin *o = gwt_origin("a");
	start(rules_with(o, "cache ttl=60s; cors origins=\"https://app.example\";"));
	const char *a[] = { "Origin: https://app.example", NULL };
	const char *b[] = { "Origin: https://other.example", NULL };
	gwt_resp *r = req(NULL, "/name", a);
	ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "MISS");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	r = req(NULL, "/name", b);
	ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "HIT");
	ck_assert_ptr_null(gwt_hdr(r, "Access-Control-Allow-Origin"));
	ck_assert_uint_eq(gwt_hdr_count(r, "Vary"), 1);
	r = req(NULL, "/name", a);
	ck_assert_str_eq(gwt_hdr(r, "X-Cache"), "HIT");
	ck_assert_str_eq(gwt_hdr(r, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_uint_eq(origin_count(o), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cors");
	TCase *t = tcase_create("cors");
	tcase_set_timeout(t, 30);
	tcase_add_test(t, preflight_exact);
	tcase_add_test(t, preflight_unquoted_lists);
	tcase_add_test(t, preflight_defaults);
	tcase_add_test(t, preflight_disallowed);
	tcase_add_test(t, preflight_before_access);
	tcase_add_test(t, actual_requests);
	tcase_add_test(t, cached_responses);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

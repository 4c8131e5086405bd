/*
 * test_routing.c — every routing form of the language served by a real
 * gwd (host exact/wildcard, path exact/prefix/regex with captures, method,
 * header, query, cookie, client_ip, boolean structure, first match wins,
 * no route), and the directives that need no plugin: respond, redirect,
 * rewrite (strip_prefix, regex), set_header / remove_header on the
 * request and the response.
 */
#include <config.h>

#include <string.h>

#include "gwd_common.h"

static origin *g_o;

static void setup_routes(void)
{
	g_o = gwt_origin("a");
	gwdt_start(NULL, gwt_strf(
		"upstream a { server 127.0.0.1:%d; }\n"
		"route host_exact { match host == \"exact.example.com\"; respond 200 \"host_exact\"; }\n"
		"route host_wild { match host == \"*.wild.example.com\"; respond 200 \"host_wild ${host}\"; }\n"
		"route path_exact { match path == \"/exact\"; respond 200 \"path_exact\"; }\n"
		"route re { match path ~ \"^/re/([a-z]+)/([0-9]+)$\";"
		"  respond 200 \"re $1 $2 ${path}\" content_type=\"text/x-test\"; }\n"
		"route prefix { match path ^= \"/prefix/\"; respond 200 \"prefix ${path} ${query}\"; }\n"
		"route methods { match path == \"/m\" and method in (POST, PUT); respond 201 \"methods ${method}\"; }\n"
		"route m_other { match path == \"/m\"; respond 200 \"other ${method}\"; }\n"
		"route hdr_eq { match path == \"/h\" and header(\"X-Env\") == \"canary\"; respond 200 \"canary\"; }\n"
		"route hdr_has { match path == \"/h\" and header(\"X-Env\"); respond 200 \"env ${header.X-Env}\"; }\n"
		"route query { match path == \"/q\" and query(\"v\") == \"2\"; respond 200 \"v2\"; }\n"
		"route cookie { match path == \"/q\" and cookie(\"beta\") == \"1\"; respond 200 \"beta\"; }\n"
		"route ip_in { match path == \"/ip\" and client_ip in 127.0.0.0/8; respond 200 \"loopback ${client_ip}\"; }\n"
		"route ip_out { match path == \"/ip2\" and client_ip in (10.0.0.0/8, ::1/128); respond 200 \"never\"; }\n"
		"route boolean { match path == \"/b\" and (header(\"X-A\") or header(\"X-B\")) and not header(\"X-C\");"
		"  respond 200 \"bool\"; }\n"
		"route old_docs { match path ~ \"^/docs/v1/(.*)$\"; redirect 301 \"/docs/v2/$1\"; }\n"
		"route away { match path == \"/away\"; redirect 302 \"https://example.org/x?${query}\"; }\n"
		"route api { match path ^= \"/api/\"; rewrite path strip_prefix \"/api\";"
		"  set_header request \"X-From\" \"gw ${client_ip} ${request_id}\";"
		"  remove_header request \"X-Drop\"; proxy a;"
		"  set_header response \"X-Route\" \"api\"; remove_header response \"X-Origin-Name\"; }\n"
		"route r2 { match path ^= \"/r2/\"; rewrite path regex \"^/r2/([a-z]+)/(.*)$\" \"/echo/$2/$1\"; proxy a; }\n"
		"route teapot { match host == \"fallback.test\"; respond 418 \"teapot\\n\"; }\n",
		origin_port(g_o)));
}

static const char *body_for(const char *path, const char *const *h)
{
	gwt_resp *r = gwdt_get_h(path, h);
	ck_assert_msg(r->curl_code == 0, "%s: %s", path, r->error);
	return gwt_strf("%ld %s", r->status, r->body);
}

START_TEST(hosts)
{
	const char *h1[] = { "Host: exact.example.com", NULL };
	ck_assert_str_eq(body_for("/exact", h1), "200 host_exact");      /* first match wins */
	const char *h2[] = { "Host: EXACT.example.com:8080", NULL };   /* case, port */
	ck_assert_str_eq(body_for("/anything", h2), "200 host_exact");
	const char *h3[] = { "Host: a.wild.example.com", NULL };
	ck_assert_str_eq(body_for("/x", h3), "200 host_wild a.wild.example.com");
	const char *h4[] = { "Host: b.c.wild.example.com", NULL };
	ck_assert_str_eq(body_for("/x", h4), "200 host_wild b.c.wild.example.com");
	/* ${host} is nginx's $host: lower-cased, port stripped (as gwc test) */
	const char *h4p[] = { "Host: A.Wild.Example.com:8080", NULL };
	ck_assert_str_eq(body_for("/x", h4p), "200 host_wild a.wild.example.com");
	/* a fully qualified name's trailing dot is the same host (nginx) */
	const char *h4d[] = { "Host: EXACT.example.com.:8080", NULL };
	ck_assert_str_eq(body_for("/anything", h4d), "200 host_exact");
	const char *h4w[] = { "Host: a.wild.example.com.", NULL };
	ck_assert_str_eq(body_for("/x", h4w), "200 host_wild a.wild.example.com");
	const char *h5[] = { "Host: wild.example.com", NULL };
	gwdt_assert_error(gwdt_get_h("/x", h5), 404, "no route");
	const char *h6[] = { "Host: fallback.test", NULL };
	gwt_resp *r = gwdt_get_h("/whatever", h6);
	ck_assert_int_eq(r->status, 418);
	ck_assert_str_eq(r->body, "teapot\n");
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "text/plain");
}
END_TEST

START_TEST(paths)
{
	ck_assert_str_eq(body_for("/exact", NULL), "200 path_exact");
	gwdt_assert_error(gwdt_get("/exact/"), 404, "no route");
	/* matched after percent-decoding and dot-segment normalisation */
	ck_assert_str_eq(body_for("/a/../ex%61ct", NULL), "200 path_exact");
	ck_assert_str_eq(body_for("//exact", NULL), "200 path_exact");
	gwt_resp *r = gwdt_get("/re/abc/42");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "re abc 42 /re/abc/42");
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "text/x-test");
	gwdt_assert_error(gwdt_get("/re/abc/x42"), 404, "no route");
	ck_assert_str_eq(body_for("/prefix/a/b?x=1&y", NULL), "200 prefix /prefix/a/b x=1&y");
	gwdt_assert_error(gwdt_get("/prefix"), 404, "no route");
}
END_TEST

START_TEST(methods)
{
	gwt_req q = { .method = "PUT", .url = gwt_url(g_port, "/m"), .body = "x", .body_len = 1 };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 201);
	ck_assert_str_eq(r->body, "methods PUT");
	q.method = "POST";
	ck_assert_str_eq(gwt_http(&q)->body, "methods POST");
	ck_assert_str_eq(body_for("/m", NULL), "200 other GET");
	gwt_req d = { .method = "DELETE", .url = gwt_url(g_port, "/m") };
	ck_assert_str_eq(gwt_http(&d)->body, "other DELETE");
	gwt_req h = { .method = "HEAD", .url = gwt_url(g_port, "/m") };
	r = gwt_http(&h);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "Content-Length"), "10");   /* "other HEAD", not sent */
	ck_assert_uint_eq(r->body_len, 0);
}
END_TEST

START_TEST(headers_query_cookie_ip)
{
	const char *c[] = { "X-Env: canary", NULL };
	ck_assert_str_eq(body_for("/h", c), "200 canary");
	const char *s[] = { "x-env: stable", NULL };
	ck_assert_str_eq(body_for("/h", s), "200 env stable");
	gwdt_assert_error(gwdt_get("/h"), 404, "no route");
	ck_assert_str_eq(body_for("/q?a=1&v=2", NULL), "200 v2");
	ck_assert_str_eq(body_for("/q?v=%32", NULL), "200 v2");     /* decoded */
	const char *k[] = { "Cookie: a=b; beta=1", NULL };
	ck_assert_str_eq(body_for("/q?v=3", k), "200 beta");
	gwdt_assert_error(gwdt_get("/q?v=3"), 404, "no route");
	/* several Cookie lines read as one (nginx's $cookie_NAME) */
	const char *ck = gwt_raw(g_port, "GET /q?v=3 HTTP/1.1\r\nHost: x\r\nCookie: a=x\r\n"
	                         "Cookie: beta=1\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(ck), 200);
	ck_assert_ptr_nonnull(strstr(ck, "\r\n\r\nbeta"));
	ck_assert_str_eq(body_for("/ip", NULL), "200 loopback 127.0.0.1");
	gwdt_assert_error(gwdt_get("/ip2"), 404, "no route");
	const char *a[] = { "X-A: 1", NULL };
	ck_assert_str_eq(body_for("/b", a), "200 bool");
	const char *b[] = { "X-B: 1", NULL };
	ck_assert_str_eq(body_for("/b", b), "200 bool");
	const char *ac[] = { "X-A: 1", "X-C: 1", NULL };
	gwdt_assert_error(gwdt_get_h("/b", ac), 404, "no route");
	gwdt_assert_error(gwdt_get("/b"), 404, "no route");
	/* trailing whitespace is not part of a value (RFC 9110 5.5; nginx):
	 * matched and forwarded without it */
	const char *a1 = gwt_raw(g_port, "GET /h HTTP/1.1\r\nHost: x\r\nX-Env: canary \t\r\n"
	                         "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a1), 200);
	ck_assert_str_eq(gwt_raw_body(a1), "canary");
	a1 = gwt_raw(g_port, "GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Keep: 2  \r\n"
	             "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a1), 200);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(a1), "\"X-Keep\": \"2\""));
}
END_TEST

START_TEST(redirects)
{
	gwt_resp *r = gwdt_get("/docs/v1/a/b%20c");
	ck_assert_int_eq(r->status, 301);
	/* a capture's space is percent-encoded (nginx; a raw space is no URI) */
	ck_assert_str_eq(gwt_hdr(r, "Location"), "/docs/v2/a/b%20c");
	ck_assert_ptr_nonnull(gwt_hdr(r, "X-Request-Id"));
	r = gwdt_get("/away?p=1&q=%41");
	ck_assert_int_eq(r->status, 302);
	ck_assert_str_eq(gwt_hdr(r, "Location"), "https://example.org/x?p=1&q=%41");
}
END_TEST

START_TEST(rewrites_and_headers)
{
	const char *h[] = { "X-Drop: 1", "X-Keep: 2", NULL };
	gwt_resp *r = gwdt_get_h("/api/echo/x?k=v", h);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_str(r, "path"), "/echo/x");
	ck_assert_str_eq(gwt_echo_str(r, "uri"), "/echo/x?k=v");
	ck_assert_ptr_null(gwt_echo_hdr(r, "X-Drop"));
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Keep"), "2");
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-From"), gwt_strf("gw 127.0.0.1 %s", id));
	ck_assert_str_eq(gwt_hdr(r, "X-Route"), "api");
	ck_assert_ptr_null(gwt_hdr(r, "X-Origin-Name"));
	/* strip_prefix of the whole path leaves "/" */
	r = gwdt_get("/api/");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "gw demo origin"));     /* the origin's "/" */
	r = gwdt_get("/r2/abc/d/e?z=%2F");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_str(r, "path"), "/echo/d/e/abc");
	ck_assert_str_eq(gwt_echo_str(r, "query"), "z=%2F");
	/* a rewritten path is sent re-encoded */
	r = gwdt_get("/r2/abc/a%20b");
	ck_assert_str_eq(gwt_echo_str(r, "path"), "/echo/a%20b/abc");
}
END_TEST

START_TEST(no_route_and_bad_requests)
{
	gwt_resp *r = gwdt_get("/nothing/here");
	gwdt_assert_error(r, 404, "no route");
	ck_assert_msg(gwdt_is_hex(gwt_hdr(r, "X-Request-Id"), 32), "id");
	const char *a = gwt_raw(g_port, "GET /../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(a), "\"error\":\"bad path\""));
	a = gwt_raw(g_port, "GET /a%2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
	/* absolute-form request target: host and path taken from it */
	a = gwt_raw(g_port, "GET http://exact.example.com/zzz HTTP/1.1\r\nHost: other\r\n"
	            "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 200);
	ck_assert_str_eq(gwt_raw_body(a), "host_exact");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gwd routing");
	TCase *t = tcase_create("routing");
	tcase_set_timeout(t, 60);
	tcase_add_checked_fixture(t, setup_routes, NULL);
	tcase_add_test(t, hosts);
	tcase_add_test(t, paths);
	tcase_add_test(t, methods);
	tcase_add_test(t, headers_query_cookie_ip);
	tcase_add_test(t, redirects);
	tcase_add_test(t, rewrites_and_headers);
	tcase_add_test(t, no_route_and_bad_requests);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

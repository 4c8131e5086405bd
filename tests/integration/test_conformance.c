/*
 * test_conformance.c — a black-box audit of gwd against the reference
 * design (interfaces.md, gwr-language.md, architecture.md), written the way
 * an outside tester who only read those documents would: real gwd, real
 * origin, curl and raw sockets, exact statuses, bodies and headers. Each
 * test quotes the sentence of the design it checks.
 *
 * (Deviations found and not fixed yet would run only with
 * GW_AUDIT_PENDING=1; there are none now.)
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static int g_port, g_admin;
static gwt_proc *g_gwd;

/* One rule set with a route for each kind of answer gwd makes itself. */
static const char rules_fmt[] =
	"upstream a { server 127.0.0.1:%d; }\n"
	"upstream dead { server 127.0.0.1:1; retries 0 on connect_error; }\n"
	"upstream slow { server 127.0.0.1:%d; read_timeout 300ms; }\n"
	"upstream dyn dynamic;\n"
	"route auth { match path ^= \"/auth/\"; auth key header=\"X-API-Key\" keys=file(\"keys.txt\"); respond 200 \"in\\n\"; }\n"
	"route deny { match path ^= \"/deny/\"; deny all; respond 200 \"x\\n\"; }\n"
	"route waf { match path ^= \"/waf/\"; waf sqli xss traversal scanner; proxy a; }\n"
	"route rl { match path ^= \"/rl/\"; rate_limit 7r/m burst=1 key=client_ip; respond 200 \"rl\\n\"; }\n"
	"route bl { match path ^= \"/bl/\"; body_limit 10; proxy a; }\n"
	"route dead { match path ^= \"/dead/\"; proxy dead; }\n"
	"route slow { match path ^= \"/slow/\"; proxy slow; }\n"
	"route dyn { match path ^= \"/dyn/\"; rewrite path strip_prefix \"/dyn\"; proxy dyn; }\n"
	"route old_docs { match path ~ \"^/docs/v1/(.*)$\"; redirect 301 \"/docs/v2/$1\"; }\n"
	"route abs { match path == \"/abs\"; redirect 308 \"https://other.example/x?y=${query}\"; }\n"
	"route crlf { match path ~ \"^/crlf/([^/]*)$\"; redirect 302 \"/to/$1\"; }\n"
	"route resp { match path == \"/resp\"; respond 200 \"ok\\n\" content_type=\"text/plain\"; }\n"
	"route echo { match path ^= \"/echo\"; proxy a; }\n";

/* gw-origin (a process, as an outside tester would run it) + gwd with an
 * admin API on another port; limits small enough to reach. */
static void start(void)
{
	int oport;
	gwt_origin_proc("a", &oport);
	gwt_writef("keys.txt", "k1\n");
	gwt_writef("rules.gwr", rules_fmt, oport, oport);
	gwt_compile("rules.gwr");
	g_port = gwt_free_port();
	g_admin = gwt_free_port();
	gwt_writef("gw.yaml",
		"listen: [\"127.0.0.1:%d\"]\n"
		"rules: rules.gwb\n"
		"threads: 2\n"
		"admin:\n  listen: 127.0.0.1:%d\n"
		"state_dir: state\n"
		"access_log: {path: \"off\"}\n"
		"limits:\n  max_header_size: 4k\n  max_body_size: 1m\n"
		"  client_timeout: 5s\n  max_connections: 100\n",
		g_port, g_admin);
	mkdir(gwt_path("state"), 0755);
	g_gwd = gwt_gwd("gw.yaml", g_port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", g_admin, 5000), 0);
}

static int is_hex32(const char *s)
{
	if (!s || strlen(s) != 32)
		return 0;
	for (int i = 0; i < 32; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return 0;
	return 1;
}

/* "each with a short JSON body {"error":"...","request_id":"..."} and an
 * X-Request-Id header (kept from the client if present, generated
 * otherwise)" */
static void assert_own_error(const gwt_resp *r, long status, const char *msg)
{
	ck_assert_msg(r->curl_code == 0, "curl: %s", r->error);
	ck_assert_int_eq(r->status, status);
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_msg(is_hex32(id), "X-Request-Id '%s'", id ? id : "(none)");
	ck_assert_int_eq(gwt_hdr_count(r, "X-Request-Id"), 1);
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"%s\",\"request_id\":\"%s\"}", msg, id));
}

/* the same on a raw response */
static void assert_raw_error(const char *raw, int status, const char *msg)
{
	ck_assert_msg(gwt_raw_status(raw) == status, "want %d:\n%s", status, raw);
	ck_assert_str_eq(gwt_raw_hdr(raw, "Content-Type"), "application/json");
	const char *id = gwt_raw_hdr(raw, "X-Request-Id");
	ck_assert_msg(is_hex32(id), "X-Request-Id in\n%s", raw);
	ck_assert_str_eq(gwt_raw_body(raw),
	                 gwt_strf("{\"error\":\"%s\",\"request_id\":\"%s\"}", msg, id));
}

static gwt_resp *get(const char *path)
{
	return gwt_get(gwt_url(g_port, path));
}

static gwt_resp *get_h(const char *path, const char *h1, const char *h2)
{
	const char *h[] = { h1, h2, NULL };
	gwt_req q = { .url = gwt_url(g_port, path), .headers = h };
	return gwt_http(&q);
}

/* "Responses gwd makes itself: 400 bad request, 401 auth, 403 deny/waf,
 * 404 no route, 405/413/414/431 limits, 429 rate limited (with
 * Retry-After), 502 upstream connect/protocol error, 503 no healthy
 * upstream / breaker open, 504 upstream timeout — each with a short JSON
 * body {"error":"...","request_id":"..."} and an X-Request-Id header" */
START_TEST(own_errors_are_json_with_request_id)
{
	start();
	assert_own_error(get("/auth/x"), 401, "unauthorized");
	assert_own_error(get("/deny/x"), 403, "forbidden");
	assert_own_error(get("/waf/x?id=1%27%20OR%201=1--"), 403, "forbidden");
	assert_own_error(get("/nothing/here"), 404, "no route");
	assert_own_error(get("/dead/x"), 502, "upstream connect error");
	assert_own_error(get("/dyn/x"), 503, "no healthy upstream");
	assert_own_error(get("/slow/3000"), 504, "upstream timeout");

	/* 413: Content-Length over limits.max_body_size, and over body_limit */
	/* (the head alone: a client streaming the body races the early answer) */
	assert_raw_error(gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\n"
	                         "Content-Length: 2097152\r\n\r\n", 3000),
	                 413, "request body too large");
	gwt_req q2 = { .url = gwt_url(g_port, "/bl/x"), .body = "0123456789AB", .body_len = 12 };
	assert_own_error(gwt_http(&q2), 413, "request body too large");

	/* 414 / 431: request target / header over limits.max_header_size */
	char big[5001];
	memset(big, 'a', 5000);
	big[5000] = '\0';
	assert_own_error(get(gwt_strf("/echo/%s", big)), 414, "uri too long");
	assert_own_error(get_h("/echo", gwt_strf("X-Big: %s", big), NULL), 431,
	                 "request header fields too large");

	/* 400: HTTP/1.1 without Host */
	assert_raw_error(gwt_raw(g_port, "GET /resp HTTP/1.1\r\nConnection: close\r\n\r\n", 3000),
	                 400, "missing Host header");
	/* 400: a path that climbs above the root */
	assert_raw_error(gwt_raw(g_port, "GET /echo/../../etc/passwd HTTP/1.1\r\nHost: a\r\n"
	                         "Connection: close\r\n\r\n", 3000), 400, "bad path");
}
END_TEST

/* "429 rate limited (with Retry-After)"; "a request finding no token gets
 * 429 immediately (no queueing, no delaying), with Retry-After in whole
 * seconds (rounded up)" — 7r/m refills a token every 8.57 s: 9. */
START_TEST(rate_limit_429_retry_after_rounded_up)
{
	start();
	gwt_resp *r = get("/rl/x");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "rl\n");
	r = get("/rl/x");
	assert_own_error(r, 429, "rate limited");
	ck_assert_str_eq(gwt_hdr(r, "Retry-After"), "9");
	ck_assert_msg(r->time_total < 1.0, "429 took %.3f s", r->time_total);
}
END_TEST

/* "X-Request-Id is on every response gwd sends, proxied or its own; the
 * JSON error body's request_id equals it; a client's own id is kept." */
START_TEST(request_id_kept_everywhere)
{
	start();
	const char *h = "X-Request-Id: client-42";
	gwt_resp *r = get_h("/nothing", h, NULL);
	ck_assert_int_eq(r->status, 404);
	ck_assert_str_eq(gwt_hdr(r, "X-Request-Id"), "client-42");
	ck_assert_str_eq(r->body, "{\"error\":\"no route\",\"request_id\":\"client-42\"}");

	r = get_h("/echo", h, NULL);                     /* proxied */
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "X-Request-Id"), "client-42");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Request-Id"), "client-42");

	r = get_h("/resp", h, NULL);                     /* respond */
	ck_assert_str_eq(gwt_hdr(r, "X-Request-Id"), "client-42");
	r = get_h("/docs/v1/a", h, NULL);                /* redirect */
	ck_assert_int_eq(r->status, 301);
	ck_assert_str_eq(gwt_hdr(r, "X-Request-Id"), "client-42");

	/* generated when absent, on a proxied answer too, and passed upstream */
	r = get("/echo");
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert(is_hex32(id));
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Request-Id"), id);
	ck_assert(is_hex32(gwt_hdr(get("/resp"), "X-Request-Id")));
	ck_assert(is_hex32(gwt_hdr(get("/docs/v1/a"), "X-Request-Id")));
}
END_TEST

/* "Forwarding: X-Forwarded-For appends the client address to any value the
 * client sent (nginx style); the query string reaches the origin byte for
 * byte; the client's Host is passed through unless the route rewrites it." */
START_TEST(forwarding_xff_query_host)
{
	start();
	const char *h[] = { "X-Forwarded-For: 1.2.3.4, 5.6.7.8", "X-Forwarded-For: 9.9.9.9",
	                    "Host: Example.COM:8080", NULL };
	gwt_req q = { .url = gwt_url(g_port, "/echo?a=%2F&b=%C3%A9&&c=%zz&d=a+b&e"), .headers = h };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-For"), "1.2.3.4, 5.6.7.8, 9.9.9.9, 127.0.0.1");
	ck_assert_str_eq(gwt_echo_str(r, "query"), "a=%2F&b=%C3%A9&&c=%zz&d=a+b&e");
	ck_assert_str_eq(gwt_echo_hdr(r, "Host"), "Example.COM:8080");
	/* no client value: just the client address */
	r = get("/echo");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-For"), "127.0.0.1");
}
END_TEST

/* "redirect sends Location exactly as the expanded string (no host
 * added)." */
START_TEST(redirect_location_exact)
{
	start();
	gwt_resp *r = get("/docs/v1/a/b.html");
	ck_assert_int_eq(r->status, 301);
	ck_assert_str_eq(gwt_hdr(r, "Location"), "/docs/v2/a/b.html");
	r = get("/abs?k=v&w");
	ck_assert_int_eq(r->status, 308);
	ck_assert_str_eq(gwt_hdr(r, "Location"), "https://other.example/x?y=k=v&w");
	/* the design's own example: expect {status: 301, location: /docs/v2/a} */
	r = get("/docs/v1/a");
	ck_assert_str_eq(gwt_hdr(r, "Location"), "/docs/v2/a");
}
END_TEST

/* HEAD on every kind of route: the head GET would get, no body (RFC 9110
 * 9.3.2); what any nginx user checks with `curl -I`. */
START_TEST(head_on_every_kind_of_route)
{
	start();
	static const struct { const char *path; int status; } k[] = {
		{ "/resp", 200 }, { "/echo", 200 }, { "/nothing", 404 }, { "/auth/x", 401 },
		{ "/deny/x", 403 }, { "/docs/v1/a", 301 }, { "/dyn/x", 503 }, { "/dead/x", 502 },
	};
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		const char *raw = gwt_raw(g_port, gwt_strf("HEAD %s HTTP/1.1\r\nHost: a\r\n"
		                          "Connection: close\r\n\r\n", k[i].path), 3000);
		ck_assert_msg(gwt_raw_status(raw) == k[i].status, "HEAD %s:\n%s", k[i].path, raw);
		ck_assert_msg(gwt_raw_hdr(raw, "X-Request-Id") != NULL, "HEAD %s", k[i].path);
		const char *body = gwt_raw_body(raw);
		ck_assert_msg(body && !*body, "HEAD %s has a body:\n%s", k[i].path, raw);
	}
	/* a respond route: the same Content-Length as its GET */
	const char *raw = gwt_raw(g_port, "HEAD /resp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_str_eq(gwt_raw_hdr(raw, "Content-Length"), "3");
}
END_TEST

/* Pipelining, HTTP/1.0 and absolute-form targets (RFC 9112; every proxy
 * serves them): answers in order on one connection. */
START_TEST(pipelining_http10_absolute_form)
{
	start();
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gwt_sendf(fd, "GET /resp HTTP/1.1\r\nHost: a\r\n\r\n"
	                               "GET /echo/p2 HTTP/1.1\r\nHost: a\r\n\r\n"
	                               "GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	const char *r1 = gwt_recv_response(fd, 0, 3000, NULL);
	const char *r2 = gwt_recv_response(fd, 0, 3000, NULL);
	const char *r3 = gwt_recv_response(fd, 0, 3000, NULL);
	ck_assert(r1 && r2 && r3);
	ck_assert_int_eq(gwt_raw_status(r1), 200);
	ck_assert_str_eq(gwt_raw_body(r1), "ok\n");
	ck_assert_int_eq(gwt_raw_status(r2), 200);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(r2), "\"path\": \"/echo/p2\""));
	assert_raw_error(r3, 404, "no route");

	/* HTTP/1.0 without Host: served, then closed */
	const char *raw = gwt_raw(g_port, "GET /resp HTTP/1.0\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
	ck_assert_str_eq(gwt_raw_body(raw), "ok\n");

	/* absolute-form: host and path from the target */
	raw = gwt_raw(g_port, "GET http://foo.example/echo/abs?q=1 HTTP/1.1\r\nHost: bar\r\n"
	              "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(raw), "\"path\": \"/echo/abs\""));
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(raw), "\"query\": \"q=1\""));
}
END_TEST

/* "path == "/x": exact path (after percent-decoding and dot-segment
 * normalisation)"; "waf refusals are 403 for every class, path traversal
 * included." */
START_TEST(path_normalisation_and_traversal)
{
	start();
	const char *raw = gwt_raw(g_port, "GET /echo/a/./b/../c HTTP/1.1\r\nHost: a\r\n"
	                          "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(raw), "\"path\": \"/echo/a/c\""));
	/* %72%65%73%70 = "resp" reaches the exact-path route */
	ck_assert_int_eq(get("/%72%65%73%70")->status, 200);
	/* traversal that stays below the root, in the path or the query: waf 403 */
	static const char *const t[] = {
		"/waf/....//....//etc/passwd", "/waf/..%252f..%252fetc%252fpasswd",
		"/waf/x?f=..%2f..%2fetc%2fpasswd", "/waf/x?f=%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		"/waf/etc/passwd",
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		raw = gwt_raw(g_port, gwt_strf("GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		              t[i]), 3000);
		assert_raw_error(raw, 403, "forbidden");
	}
}
END_TEST

/* ------------------------------------------------------- admin API */

static gwt_resp *admin(const char *method, const char *path, const char *body)
{
	gwt_req q = { .method = method, .url = gwt_url(g_admin, path), .body = body,
	              .body_len = body ? strlen(body) : 0, .has_body = body != NULL };
	return gwt_http(&q);
}

/* "POST /upstream/NAME body: "server 127.0.0.1:9001;server 127.0.0.1:9002
 * weight=2;" # create/replace servers ... DELETE /upstream/NAME ... GET
 * /upstream/NAME # its servers, one per line; GET /list # upstream names,
 * one per line; GET /detail # every upstream with its servers"; "a
 * malformed POST body answers 400 and changes nothing"; "Changes are
 * persisted to state_dir before the call returns 200"; "An upstream
 * declared upstream NAME dynamic; ... has no servers until the admin API
 * gives it some; routes to an upstream with no healthy server get 503." */
START_TEST(dyups_admin_api)
{
	start();
	gwt_resp *r = admin("GET", "/list", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "a\ndead\ndyn\nslow\n");

	assert_own_error(get("/dyn/echo"), 503, "no healthy upstream");
	int op2;
	gwt_origin_proc("b", &op2);
	r = admin("POST", "/upstream/dyn",
	          gwt_strf("server 127.0.0.1:%d;server 127.0.0.1:1 weight=2 down;", op2));
	ck_assert_int_eq(r->status, 200);
	/* persisted before the 200 */
	const char *st = gwt_read("state/upstreams.json", NULL);
	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_nonnull(strstr(st, gwt_strf("127.0.0.1:%d", op2)));

	r = admin("GET", "/upstream/dyn", NULL);
	ck_assert_int_eq(r->status, 200);
	const char *l1 = gwt_strf("server 127.0.0.1:%d ", op2);
	ck_assert_msg(!strncmp(r->body, l1, strlen(l1)), "%s", r->body);
	const char *nl = strchr(r->body, '\n');
	ck_assert_msg(nl && !strncmp(nl + 1, "server 127.0.0.1:1 weight=2", 27), "%s", r->body);
	ck_assert_msg(strchr(nl + 1, '\n') && strchr(nl + 1, '\n')[1] == '\0', "%s", r->body);

	r = admin("GET", "/detail", NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, gwt_strf("dyn\nserver 127.0.0.1:%d ", op2)));

	r = get("/dyn/echo");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "b");

	/* malformed: 400, nothing changes */
	const char *before = admin("GET", "/upstream/dyn", NULL)->body;
	static const char *const bad[] = { "garbage", "server ;", "server 1.2.3.4:99999;",
	                                   "server 1.2.3.4:80 weight=abc;", "server 1.2.3.4:80 wieght=2;" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = admin("POST", "/upstream/dyn", bad[i]);
		ck_assert_msg(r->status == 400, "'%s': %ld", bad[i], r->status);
	}
	ck_assert_str_eq(admin("GET", "/upstream/dyn", NULL)->body, before);
	ck_assert_int_eq(get("/dyn/echo")->status, 200);

	/* DELETE empties a dynamic upstream: 503 again */
	ck_assert_int_eq(admin("DELETE", "/upstream/dyn", NULL)->status, 200);
	assert_own_error(get("/dyn/echo"), 503, "no healthy upstream");
	ck_assert_int_eq(admin("GET", "/upstream/nosuch", NULL)->status, 404);
}
END_TEST

/* "Changes are persisted to state_dir before the call returns 200, and
 * survive reload and restart." */
START_TEST(dyups_survives_reload_and_restart)
{
	start();
	int op2;
	gwt_origin_proc("b", &op2);
	ck_assert_int_eq(admin("POST", "/upstream/a", gwt_strf("server 127.0.0.1:%d;", op2))->status, 200);
	ck_assert_str_eq(gwt_hdr(get("/echo"), "X-Origin-Name"), "b");
	ck_assert_int_eq(admin("POST", "/reload", NULL)->status, 200);
	ck_assert_str_eq(gwt_hdr(get("/echo"), "X-Origin-Name"), "b");
	/* restart: a new gwd on the same config and state_dir */
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 10000), 0);
	g_gwd = gwt_gwd("gw.yaml", g_port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", g_admin, 5000), 0);
	ck_assert_str_eq(gwt_hdr(get("/echo"), "X-Origin-Name"), "b");
	gwt_resp *r = admin("GET", "/upstream/a", NULL);
	ck_assert_ptr_nonnull(strstr(r->body, gwt_strf("server 127.0.0.1:%d ", op2)));
}
END_TEST

/* "the token file's surrounding whitespace is ignored"; "if set:
 * Authorization: Bearer <token> required" */
START_TEST(admin_token_whitespace)
{
	gwt_writef("rules.gwr", "route r { match any; respond 200 \"x\\n\"; }\n");
	gwt_compile("rules.gwr");
	gwt_writef("tok", "  \t tok123 \n\n");
	int port = gwt_free_port(), ap = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\n"
	           "admin: {listen: 127.0.0.1:%d, token_file: tok}\nstate_dir: .\n", port, ap);
	gwt_gwd("gw.yaml", port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", ap, 5000), 0);
	ck_assert_int_eq(gwt_get(gwt_url(ap, "/list"))->status, 401);
	const char *ok[] = { "Authorization: Bearer tok123", NULL };
	gwt_req q = { .url = gwt_url(ap, "/list"), .headers = ok };
	long st = gwt_http(&q)->status;
	ck_assert_msg(st == 200 || st == 204, "%ld", st);
	const char *bad[] = { "Authorization: Bearer tok12", NULL };
	gwt_req q2 = { .url = gwt_url(ap, "/list"), .headers = bad };
	ck_assert_int_eq(gwt_http(&q2)->status, 401);
}
END_TEST

/* "gwd -t -c gateway.yaml # load config and table, verify, print result,
 * exit 0/1"; "gwd -t exits 1 for broken YAML, bad values, and a
 * non-loopback admin.listen without token_file"; "every key optional but
 * rules"; the full example of gateway.yaml from interfaces.md passes. */
static int gwd_t(const char *yaml, const char **err)
{
	const char *argv[] = { gwt_bin("gwd"), "-t", "-c", gwt_path(yaml), NULL };
	return gwt_run("gwd-t", argv, NULL, 20000, NULL, err);
}

START_TEST(gwd_t_exit_codes)
{
	gwt_writef("rules.gwr", "route r { match any; respond 200 \"x\\n\"; }\n");
	gwt_compile("rules.gwr");
	const char *err;
	/* the design's example, verbatim but for the paths */
	gwt_writef("a.yaml",
		"listen: [\"0.0.0.0:8080\"]          # one string or a list\n"
		"rules: rules.gwb\n"
		"threads: auto\n"
		"admin:\n"
		"  listen: 127.0.0.1:9901\n"
		"state_dir: state\n"
		"access_log:\n"
		"  path: \"-\"\n"
		"  format: json\n"
		"limits:\n"
		"  max_header_size: 16k\n"
		"  max_body_size: 10m\n"
		"  client_timeout: 30s\n"
		"  max_connections: 10000\n"
		"redis:\n"
		"  url: redis://127.0.0.1:6379/0\n");
	ck_assert_int_eq(gwd_t("a.yaml", &err), 0);
	gwt_writef("b.yaml", "listen: \"127.0.0.1:8080\"\nrules: rules.gwb\n"
	           "access_log: {path: \"off\", format: combined}\n");
	ck_assert_int_eq(gwd_t("b.yaml", &err), 0);
	gwt_writef("c.yaml", "rules: rules.gwb\n");
	ck_assert_int_eq(gwd_t("c.yaml", &err), 0);

	static const char *const bad[] = {
		"rules: rules.gwb\n  listen: 8080\n",               /* broken YAML */
		"rules: rules.gwb\nlisten: [8080\n",
		"listen: 127.0.0.1:8080\n",                          /* no rules */
		"rules: rules.gwb\nthreads: many\n",                 /* bad values */
		"rules: rules.gwb\nlimits: {max_body_size: 10q}\n",
		"rules: rules.gwb\naccess_log: {format: xml}\n",
		"rules: rules.gwb\nlisten: 127.0.0.1:99999\n",
		"rules: rules.gwb\nredis: {url: \"http://x\"}\n",
		"rules: rules.gwb\nadmin: {listen: 0.0.0.0:9901}\n", /* non-loopback, no token */
		"rules: nonexistent.gwb\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		gwt_writef("bad.yaml", "%s", bad[i]);
		int st = gwd_t("bad.yaml", &err);
		ck_assert_msg(st == 1, "exit %d for\n%s", st, bad[i]);
		ck_assert_msg(strstr(err, "bad.yaml") || strstr(err, "nonexistent.gwb"),
		              "the message names the file: %s", err);
	}
	/* what gwd -c refuses at start, -t refuses too: a token file that is
	 * only whitespace, logs that cannot be opened (as nginx -t) */
	gwt_writef("blank.token", " \n\t\n");
	static const char *const refused[] = {
		"rules: rules.gwb\nadmin: {listen: 0.0.0.0:9901, token_file: blank.token}\n",
		"rules: rules.gwb\naccess_log: {path: /nonexistent-dir/access.log}\n",
		"rules: rules.gwb\nerror_log: {path: /nonexistent-dir/error.log}\n",
	};
	static const char *const why[] = { "is empty", "access_log.path", "error_log.path" };
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		gwt_writef("bad.yaml", "%s", refused[i]);
		int st = gwd_t("bad.yaml", &err);
		ck_assert_msg(st == 1, "exit %d for\n%s", st, refused[i]);
		ck_assert_msg(strstr(err, why[i]), "%s: %s", why[i], err);
	}
	/* a log file not there yet is fine when its directory is writable
	 * (and -t does not create it) */
	gwt_writef("d.yaml", "rules: rules.gwb\naccess_log: {path: new-access.log}\n");
	ck_assert_int_eq(gwd_t("d.yaml", &err), 0);
	ck_assert_int_ne(access(gwt_path("new-access.log"), F_OK), 0);
	/* usage errors: 2 (the gwc convention; nginx's -t style otherwise) */
	const char *argv[] = { gwt_bin("gwd"), "--bogus", NULL };
	ck_assert_int_eq(gwt_run("gwd-bogus", argv, NULL, 5000, NULL, NULL), 2);
	const char *argv2[] = { gwt_bin("gwd"), "--version", NULL };
	const char *out;
	ck_assert_int_eq(gwt_run("gwd-version", argv2, NULL, 5000, &out, NULL), 0);
	ck_assert_msg(!strncmp(out, "gwd ", 4), "%s", out);
	const char *argv3[] = { gwt_bin("gwd"), "--help", NULL };
	ck_assert_int_eq(gwt_run("gwd-help", argv3, NULL, 5000, &out, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "-t -c"));
}
END_TEST

/* ------------------------------------- request-handling deviations */

/* RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code
 * to ... any request message that contains more than one Host header field
 * line"; nginx: "client sent duplicate host header" -> 400 (gwd used to
 * answer 200, routing on the first Host). Closed after, as nginx does. */
START_TEST(duplicate_host_400)
{
	start();
	const char *raw = gwt_raw(g_port, "GET /resp HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 3000);
	assert_raw_error(raw, 400, "bad request");
	ck_assert_str_eq(gwt_raw_hdr(raw, "Connection"), "close");
	raw = gwt_raw(g_port, "GET /resp HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 3000);
	assert_raw_error(raw, 400, "bad request");
	/* one Host is still fine */
	raw = gwt_raw(g_port, "GET /resp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
}
END_TEST

/* Bytes libmicrohttpd 0.9.75 lets through and nginx refuses, each a 400
 * with gwd's JSON body, and the connection closed (RFC 9112): a bare CR or
 * a control byte in a field value (an upstream may end the line there), a
 * space in the request target ("GET /a b": gwd passed "/a b" to curl and
 * answered 502), a Transfer-Encoding whose last coding is not chunked (the
 * body's end is unknown: MHD waited for the close, no answer for the
 * client timeout), two Transfer-Encoding lines. A coding gwd does not
 * implement before a final chunked is 501, as nginx answers. */
START_TEST(malformed_head_bytes_400)
{
	start();
	static const char *const bad[] = {
		"GET /resp HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
		"GET /resp HTTP/1.1\r\nHost: a\r\nX: a\x01\" \"b\r\n\r\n",
		"GET /resp HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n",
		"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a\x01\" \"b HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *raw = gwt_raw(g_port, bad[i], 3000);
		assert_raw_error(raw, 400, "bad request");
		ck_assert_str_eq(gwt_raw_hdr(raw, "Connection"), "close");
	}
	const char *raw = gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\n"
	                          "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 3000);
	assert_raw_error(raw, 501, "not implemented");
	/* a tab inside a value, %20 in the target, plain chunked: all fine */
	raw = gwt_raw(g_port, "GET /resp?a=%20b HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n"
	              "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
	raw = gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
	              "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
}
END_TEST

/* RFC 9112 6.3: differing Content-Length values are unrecoverable: 400 and
 * close; nginx: "client sent duplicate header line" -> 400. gwd used to
 * take the first and parse the rest of the body as the next request (a
 * desync). Content-Length with Transfer-Encoding: libmicrohttpd frames the
 * body as chunked; nginx refuses the pair with 400, and so does gwd. */
START_TEST(conflicting_content_length_400)
{
	start();
	const char *raw = gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	                          "Content-Length: 5\r\n\r\nabcdeGET /resp HTTP/1.1\r\nHost: a\r\n"
	                          "Connection: close\r\n\r\n", 3000);
	assert_raw_error(raw, 400, "bad request");
	ck_assert_str_eq(gwt_raw_hdr(raw, "Connection"), "close");
	ck_assert_msg(strstr(raw + 5, "HTTP/1.1 ") == NULL, "a second answer:\n%s", raw);

	raw = gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	              "GET /resp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3000);
	assert_raw_error(raw, 400, "bad request");
	ck_assert_str_eq(gwt_raw_hdr(raw, "Connection"), "close");
	ck_assert_msg(strstr(raw + 5, "HTTP/1.1 ") == NULL, "a second answer:\n%s", raw);
	raw = gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	              "Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 3000);
	assert_raw_error(raw, 400, "bad request");

	/* the same value twice frames the body one way only (RFC 9112 6.3
	 * allows it): proxied */
	raw = gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	              "Content-Length: 3\r\nConnection: close\r\n\r\nabc", 3000);
	ck_assert_msg(gwt_raw_status(raw) == 200, "%s", raw);
	ck_assert_ptr_nonnull(strstr(raw, "\"body_len\": 3"));
}
END_TEST

/* "405/413/414/431 limits": nginx refuses TRACE (cross-site tracing) and
 * CONNECT with 405 itself; gwd used to proxy TRACE to the origin. Other
 * well-formed method tokens are routed as before; a method nginx's parser
 * refuses (lower case) is 400. */
START_TEST(trace_connect_405_bad_method_400)
{
	start();
	gwt_req q = { .method = "TRACE", .url = gwt_url(g_port, "/echo") };
	gwt_resp *r = gwt_http(&q);
	assert_own_error(r, 405, "method not allowed");
	ck_assert_str_eq(gwt_hdr(r, "Allow"), "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");
	q.url = gwt_url(g_port, "/resp");
	assert_own_error(gwt_http(&q), 405, "method not allowed");

	const char *raw = gwt_raw(g_port, "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n"
	                          "Connection: close\r\n\r\n", 3000);
	assert_raw_error(raw, 405, "method not allowed");
	ck_assert_str_eq(gwt_raw_hdr(raw, "Allow"), "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");

	raw = gwt_raw(g_port, "get /resp HTTP/1.1\r\nHost: a\r\n\r\n", 3000);
	assert_raw_error(raw, 400, "bad request");
	ck_assert_str_eq(gwt_raw_hdr(raw, "Connection"), "close");

	raw = gwt_raw(g_port, "PROPFIND /resp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_msg(gwt_raw_status(raw) == 200, "%s", raw);
	ck_assert_str_eq(gwt_raw_body(raw), "ok\n");
	gwt_req q2 = { .method = "PATCH", .url = gwt_url(g_port, "/echo"), .body = "x", .body_len = 1 };
	r = gwt_http(&q2);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "\"method\": \"PATCH\""));
}
END_TEST

/* "every malformed request gets the right 4xx", with gwd's JSON error and
 * X-Request-Id. libmicrohttpd 0.9.75 answered these with its own HTML page
 * (and "garbage" with nothing); gwd now looks at a new connection's first
 * head before handing the socket over (runtime/door.c). */
START_TEST(malformed_heads_json)
{
	start();
	static const struct { const char *req; int status; const char *msg; } k[] = {
		{ "GET /resp HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", 400, "bad request" },
		{ "GET /resp HTTP/1.1\r\nHost : a\r\n\r\n", 400, "bad request" },
		{ "GET /resp HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n", 400, "bad request" },
		{ "GET /resp\r\n\r\n", 400, "bad request" },
		{ "garbage\r\n\r\n", 400, "bad request" },
		{ "GET /resp FOO/1.1\r\nHost: a\r\n\r\n", 400, "bad request" },
		{ "GET /resp HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "bad request" },
		{ "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400, "bad request" },
		{ "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "bad request" },
		{ "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
		  413, "request body too large" },
		{ "GET /resp HTTP/9.9\r\nHost: a\r\n\r\n", 505, "http version not supported" },
		{ "GET /resp HTTP/2.0\r\nHost: a\r\n\r\n", 505, "http version not supported" },
	};
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		const char *raw = gwt_raw(g_port, k[i].req, 3000);
		ck_assert_msg(gwt_raw_status(raw) == k[i].status, "%s:\n%s", k[i].req, raw);
		assert_raw_error(raw, k[i].status, k[i].msg);
		ck_assert_str_eq(gwt_raw_hdr(raw, "Connection"), "close");
	}
	/* a NUL in a header value (sent by length: gwt_raw stops at a NUL) */
	int fd = gwt_connect("127.0.0.1", g_port, 3000);
	ck_assert_int_ge(fd, 0);
	static const char nul[] = "GET /resp HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n";
	ck_assert_int_eq(write(fd, nul, sizeof nul - 1), (ssize_t)(sizeof nul - 1));
	size_t len;
	int eof;
	assert_raw_error(gwt_recv_all(fd, 3000, &len, &eof), 400, "bad request");
	close(fd);
	/* a head that arrives in pieces is waited for, then served */
	fd = gwt_connect("127.0.0.1", g_port, 3000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gwt_sendf(fd, "GET /re"), 0);
	gwt_sleep_ms(150);
	ck_assert_int_eq(gwt_sendf(fd, "sp HTTP/1.1\r\nHo"), 0);
	gwt_sleep_ms(150);
	ck_assert_int_eq(gwt_sendf(fd, "st: a\r\nConnection: close\r\n\r\n"), 0);
	const char *raw = gwt_recv_all(fd, 3000, &len, &eof);
	close(fd);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
	ck_assert_str_eq(gwt_raw_body(raw), "ok\n");
	/* a head far over the connection buffer (max_header_size + a quarter
	 * + 8 KiB): libmicrohttpd waited for the head timeout without an
	 * answer; now 414 for the request line, 431 for the fields */
	size_t bn = 64 * 1024;
	char *big = malloc(bn + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', bn);
	big[bn] = '\0';
	raw = gwt_raw(g_port, gwt_strf("GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", big), 3000);
	assert_raw_error(raw, 414, "uri too long");
	raw = gwt_raw(g_port, gwt_strf("GET /resp HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n", big), 3000);
	assert_raw_error(raw, 431, "request header fields too large");
	free(big);
	/* empty lines before the request line are allowed (RFC 9112 2.2) */
	raw = gwt_raw(g_port, "\r\nGET /resp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 200);
	/* a malformed chunk in a body is still libmicrohttpd's HTML 400
	 * (docs/gwd.md): only the head is looked at first */
	raw = gwt_raw(g_port, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "zz\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(raw), 400);
	/* gwd still serves */
	ck_assert_int_eq(get("/resp")->status, 200);
}
END_TEST

/* A capture holding CR LF or a space in a redirect: percent-encoded into
 * the Location as nginx does (%0D%0A, %20); gwd used to answer 500. */
START_TEST(redirect_capture_escaped)
{
	start();
	gwt_resp *r = get("/crlf/a%0d%0aSet-Cookie:%20x=1");
	ck_assert_int_eq(r->status, 302);
	ck_assert_str_eq(gwt_hdr(r, "Location"), "/to/a%0D%0ASet-Cookie:%20x=1");
	ck_assert_ptr_null(gwt_hdr(r, "Set-Cookie"));
	r = get("/crlf/a%0d%0aX:1");
	ck_assert_int_eq(r->status, 302);
	ck_assert_str_eq(gwt_hdr(r, "Location"), "/to/a%0D%0AX:1");
	ck_assert_ptr_null(gwt_hdr(r, "X"));
	r = get("/crlf/a%20b%25c%22%7f%c3%a9");
	ck_assert_int_eq(r->status, 302);
	ck_assert_str_eq(gwt_hdr(r, "Location"), "/to/a%20b%25c%22%7F%C3%A9");
	/* plain captures and ${...} are unchanged (redirect_location_exact) */
	r = get("/crlf/a-b_c.d~e:f@g!h$i&j'k(l)m*n+o,p;q=r");
	ck_assert_str_eq(gwt_hdr(r, "Location"), "/to/a-b_c.d~e:f@g!h$i&j'k(l)m*n+o,p;q=r");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conformance");
	TCase *t = tcase_create("design");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, own_errors_are_json_with_request_id);
	tcase_add_test(t, rate_limit_429_retry_after_rounded_up);
	tcase_add_test(t, request_id_kept_everywhere);
	tcase_add_test(t, forwarding_xff_query_host);
	tcase_add_test(t, redirect_location_exact);
	tcase_add_test(t, head_on_every_kind_of_route);
	tcase_add_test(t, pipelining_http10_absolute_form);
	tcase_add_test(t, path_normalisation_and_traversal);
	tcase_add_test(t, dyups_admin_api);
	tcase_add_test(t, dyups_survives_reload_and_restart);
	tcase_add_test(t, admin_token_whitespace);
	tcase_add_test(t, gwd_t_exit_codes);
	tcase_add_test(t, duplicate_host_400);
	tcase_add_test(t, malformed_head_bytes_400);
	tcase_add_test(t, conflicting_content_length_400);
	tcase_add_test(t, trace_connect_405_bad_method_400);
	tcase_add_test(t, malformed_heads_json);
	tcase_add_test(t, redirect_capture_escaped);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc gw-origin");
}

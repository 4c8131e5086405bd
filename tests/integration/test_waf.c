/*
 * test_waf.c — the waf plugin in a real gwd in front of a real origin:
 * every class refused with gwd's 403 JSON body from every part (path, raw
 * path, query, Cookie, User-Agent, Referer, form and JSON bodies, encoded
 * and evasive variants), benign values let through untouched, mode=detect
 * logging without refusing, custom rules per part, the raw path's
 * traversal (403, not 400/404), bodies past body_limit proxied uninspected
 * and intact (Content-Length and chunked, larger than the proxy's ring),
 * keep-alive connections across inspected bodies, the log lines that name
 * the rule, class, part and route with its file:line, and the decisions
 * counted in GET /metrics.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int port, admin_port;
static gwt_proc *gwd;
static origin *orig;

static const char rules_fmt[] =
	"upstream o {\n    server 127.0.0.1:%d;\n}\n"                      /* 1-3 */
	"route detect {\n"                                                   /* 4 */
	"    match path ^= \"/detect/\";\n"
	"    rewrite path strip_prefix \"/detect\";\n"
	"    waf all mode=detect;\n"
	"    proxy o;\n}\n"
	"route r_args {\n"                                                   /* 10 */
	"    match path ^= \"/rargs/\";\n"
	"    rewrite path strip_prefix \"/rargs\";\n"
	"    waf rule \"no-widgets\" in=args regex \"(?i)widget-[0-9]+\";\n"
	"    proxy o;\n}\n"
	"route r_headers {\n"                                                /* 16 */
	"    match path ^= \"/rhdr/\";\n"
	"    rewrite path strip_prefix \"/rhdr\";\n"
	"    waf rule \"no-widgets-hdr\" in=headers regex \"(?i)widget-[0-9]+\";\n"
	"    proxy o;\n}\n"
	"route r_body {\n"                                                   /* 22 */
	"    match path ^= \"/rbody/\";\n"
	"    rewrite path strip_prefix \"/rbody\";\n"
	"    waf rule \"no-widgets-body\" in=body regex \"(?i)widget-[0-9]+\";\n"
	"    proxy o;\n}\n"
	"route r_path {\n"                                                   /* 28 */
	"    match path ^= \"/rpath/\";\n"
	"    rewrite path strip_prefix \"/rpath\";\n"
	"    waf rule \"no-secret-paths\" in=path regex \"/secret-[0-9]+\";\n"
	"    proxy o;\n}\n"
	"route small {\n"                                                    /* 34 */
	"    match path ^= \"/small/\";\n"
	"    rewrite path strip_prefix \"/small\";\n"
	"    waf sqli xss traversal body_limit=1k;\n"
	"    proxy o;\n}\n"
	"route big {\n"                                                      /* 40 */
	"    match path ^= \"/big/\";\n"
	"    rewrite path strip_prefix \"/big\";\n"
	"    waf sqli xss body_limit=300k;\n"
	"    waf rule \"no-marker\" in=body regex \"zz-marker-zz\";\n"
	"    proxy o;\n}\n"
	"route nobody {\n"                                                   /* 47 */
	"    match path ^= \"/nobody/\";\n"
	"    rewrite path strip_prefix \"/nobody\";\n"
	"    waf sqli xss body_limit=0;\n"
	"    proxy o;\n}\n"
	"route all {\n"                                                      /* 53 */
	"    match any;\n"
	"    waf sqli xss traversal scanner protocol;\n"
	"    proxy o;\n}\n";

static void start(void)
{
	orig = gwt_origin("o");
	gwt_writef("rules.gwr", rules_fmt, origin_port(orig));
	gwt_compile("rules.gwr");
	port = gwt_free_port();
	admin_port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\n"
	           "admin: {listen: '127.0.0.1:%d'}\nthreads: 2\n", port, admin_port);
	gwd = gwt_gwd("gw.yaml", port);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", admin_port, 5000), 0);
}

/* a request: GET without body, else POST with ctype (NULL: form) */
typedef struct rq {
	const char *path;
	const char *h1, *h2;          /* extra header lines */
	const char *body;             /* NUL-terminated */
	size_t body_len;              /* 0: strlen(body) */
	const char *ctype;
	int chunked;
	gwt_client *client;
} rq;

static gwt_resp *send_rq(const rq *q)
{
	const char *h[5];
	size_t n = 0;
	if (q->h1)
		h[n++] = q->h1;
	if (q->h2)
		h[n++] = q->h2;
	if (q->body)
		h[n++] = gwt_strf("Content-Type: %s",
		                  q->ctype ? q->ctype : "application/x-www-form-urlencoded");
	h[n] = NULL;
	gwt_req r = {
		.url = gwt_url(port, q->path), .headers = h,
		.body = q->body, .body_len = q->body ? (q->body_len ? q->body_len : strlen(q->body)) : 0,
		.has_body = q->body != NULL, .chunked = q->chunked, .client = q->client,
	};
	gwt_resp *resp = gwt_http(&r);
	ck_assert_msg(resp->curl_code == 0, "%s: %s", q->path, resp->error);
	return resp;
}

/* the gwd error-log line about request id (waits for it) */
static const char *log_line(const char *id)
{
	const char *needle = gwt_strf("request %s:", id);
	ck_assert_msg(gwt_wait_output(gwd, needle, 3000) == 0, "no log line for %s:\n%s", id,
	              gwt_stderr(gwd));
	const char *all = gwt_stderr(gwd);
	const char *p = strstr(all, needle);
	while (p > all && p[-1] != '\n')
		p--;
	const char *e = strchr(p, '\n');
	return gwt_strf("%.*s", (int)(e ? e - p : (long)strlen(p)), p);
}

/* the log line names "route NAME (FILE:LINE)"; FILE is the absolute
 * path gwc was given, so want is "route NAME (rules.gwr:LINE)" */
static void assert_route(const char *line, const char *want)
{
	const char *paren = strchr(want, '(');
	ck_assert_ptr_nonnull(paren);
	const char *head = gwt_strf("%.*s", (int)(paren - want + 1), want);
	const char *h = strstr(line, head);
	ck_assert_msg(h != NULL, "want %s: %s", want, line);
	const char *tail = gwt_strf("/%s", paren + 1);
	ck_assert_msg(strstr(h, tail) != NULL, "want %s: %s", want, line);
}

/* 403 with gwd's JSON body, the origin not reached, and a warn line saying
 * class, part (a prefix is enough) and route */
static void blocked_as(const rq *q, const char *cls, const char *part, const char *route)
{
	uint64_t before = origin_count(orig);
	gwt_resp *r = send_rq(q);
	ck_assert_msg(r->status == 403, "%s: status %ld, want 403 (%s)", q->path, r->status,
	              r->body ? r->body : "");
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_msg(id && strlen(id) == 32, "X-Request-Id");
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"forbidden\",\"request_id\":\"%s\"}", id));
	ck_assert_uint_eq(origin_count(orig), before);
	const char *l = log_line(id);
	ck_assert_msg(strstr(l, " warn: waf blocked request "), "%s", l);
	ck_assert_msg(strstr(l, gwt_strf(" class=%s ", cls)), "want class %s: %s", cls, l);
	ck_assert_msg(strstr(l, gwt_strf(" part=%s", part)), "want part %s: %s", part, l);
	ck_assert_msg(strstr(l, gwt_strf(" rule=")), "%s", l);
	if (route)
		assert_route(l, route);
}

/* proxied: 200 from the origin, which got exactly this query and body */
static gwt_resp *passed(const rq *q)
{
	gwt_resp *r = send_rq(q);
	ck_assert_msg(r->status == 200, "%s: status %ld, want 200 (%s)", q->path, r->status,
	              r->body ? r->body : "");
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "o");
	if (q->body) {
		size_t n = q->body_len ? q->body_len : strlen(q->body);
		char sha[65];
		gwt_sha256_hex(q->body, n, sha);
		json_t *j = gwt_json(r);
		ck_assert_int_eq(json_integer_value(json_object_get(j, "body_len")), (json_int_t)n);
		ck_assert_str_eq(json_string_value(json_object_get(j, "body_sha256")), sha);
	}
	return r;
}

#define GET(p) (&(rq){ .path = (p) })
#define GETH(p, h) (&(rq){ .path = (p), .h1 = (h) })
#define POST(p, b, ct) (&(rq){ .path = (p), .body = (b), .ctype = (ct) })

START_TEST(classes_in_every_part)
{
	start();
	const char *all = "route all (rules.gwr:53)";
	/* query arguments: plain, double-encoded, %u, '+' spaces, entities */
	blocked_as(GET("/echo?id=1%27%20or%201%3D1--"), "sqli", "arg:id", all);
	blocked_as(GET("/echo?id=1%2527%2520or%25201%253D1--"), "sqli", "arg:id", all);
	blocked_as(GET("/echo?q=x%u0027%u0020union%u0020select%u0020password%u0020from%u0020users"),
	           "sqli", "arg:q", all);
	blocked_as(GET("/echo?a=1&q=1+union+all+select+null,version()--"), "sqli", "arg:q", all);
	blocked_as(GET("/echo?q=%3Cscript%3Ealert(1)%3C/script%3E"), "xss", "arg:q", all);
	blocked_as(GET("/echo?q=%26lt;img%20src=x%20onerror=alert(1)%26gt;"), "xss", "arg:q", all);
	blocked_as(GET("/echo?q=%253Csvg%2520onload%253Dalert(1)%253E"), "xss", "arg:q", all);
	blocked_as(GET("/echo?file=..%2f..%2f..%2fetc%2fpasswd"), "traversal", "arg:file", all);
	blocked_as(GET("/echo?file=%252e%252e%252f%252e%252e%252fetc%252fpasswd"), "traversal",
	           "arg:file", all);
	blocked_as(GET("/echo?file=%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd"), "traversal", "arg:file",
	           all);
	/* the argument's name is inspected too */
	blocked_as(GET("/echo?%3Cscript%3Ealert(1)%3C/script%3E=1"), "xss", "arg:", all);
	/* path: the raw one (encoded traversal that normalisation would have
	 * resolved), an encoded script in a segment, a scanner's probe */
	blocked_as(GET("/echo/x/..%252f..%252f..%252fetc%252fpasswd"), "traversal", "path", all);
	blocked_as(GET("/echo/%3Cscript%3Ealert(1)%3C%2Fscript%3E"), "xss", "path", all);
	blocked_as(GET("/echo/1%27%20union%20select%20password%20from%20users--"), "sqli", "path",
	           all);
	/* headers: Cookie pairs, User-Agent, Referer */
	blocked_as(GETH("/echo", "Cookie: session=abc123; pref=1' or '1'='1"), "sqli",
	           "cookie:pref", all);
	blocked_as(GETH("/echo", "Cookie: theme=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"),
	           "xss", "cookie:theme", all);
	blocked_as(GETH("/echo", "User-Agent: sqlmap/1.7.2#stable (https://sqlmap.org)"), "scanner",
	           "header:User-Agent", all);
	blocked_as(GETH("/echo", "User-Agent: Mozilla/5.0 (compatible; Nikto/2.1.6)"), "scanner",
	           "header:User-Agent", all);
	blocked_as(GETH("/echo", "Referer: http://example.com/?q=<script>alert(1)</script>"), "xss",
	           "header:Referer", all);
	/* protocol: a NUL in an argument, overlong UTF-8 */
	blocked_as(GET("/echo?name=abc%00def"), "protocol", "arg:name", all);
	/* form body */
	blocked_as(POST("/echo", "user=bob&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E", NULL), "xss",
	           "body:comment", all);
	blocked_as(POST("/echo", "user=admin'--&pass=x", NULL), "sqli", "body:user", all);
	blocked_as(POST("/echo", "q=1+and+1%3D1+union+select+1,2,3--", NULL), "sqli", "body:q", all);
	/* JSON body: nested keys, arrays, \u escapes */
	blocked_as(POST("/echo", "{\"user\":{\"name\":\"x\",\"bio\":[\"ok\",\"<svg onload=alert(1)>\"]}}",
	                "application/json"), "xss", "body:bio", all);
	blocked_as(POST("/echo", "{\"q\":\"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\"}",
	                "application/json; charset=utf-8"), "xss", "body:q", all);
	blocked_as(POST("/echo", "{\"id\":\"1 union select password from users\"}",
	                "application/vnd.api+json"), "sqli", "body:id", all);
	blocked_as(POST("/echo", "{\"path\":\"../../../../etc/shadow\"}", "application/json"),
	           "traversal", "body:path", all);
	/* text body */
	blocked_as(POST("/echo", "<script>alert(1)</script>", "text/plain"), "xss", "body", all);
	/* chunked body */
	blocked_as(&(rq){ .path = "/echo", .body = "a=1&b=<script>alert(1)</script>", .chunked = 1 },
	           "xss", "body:b", all);
}
END_TEST

START_TEST(benign_values_pass)
{
	start();
	passed(GET("/echo?name=O%27Brien&city=Coeur+d%27Alene"));
	passed(GET("/echo?q=it%27s+a+%22test%22+--+really&page=2"));
	passed(GET("/echo?q=select+the+best+option+from+the+list"));
	passed(GET("/echo?q=Tom+%26+Jerry%3A+cats+%3C+dogs%3F"));
	passed(GET("/echo?email=jane.o%27neil%40example.com&tags=a,b,c"));
	passed(GET("/echo?redirect=%2Fdocs%2Fguide%2Finstall.html"));
	passed(GET("/echo/products/123/reviews?sort=-date"));
	passed(GETH("/echo", "Cookie: session=3b1f0c9e; theme=dark; lang=en-GB"));
	passed(GETH("/echo", "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
	            "(KHTML, like Gecko) Chrome/120.0 Safari/537.36"));
	passed(GETH("/echo", "Referer: https://www.example.com/search?q=o%27reilly+books"));
	passed(POST("/echo", "name=D%27Angelo&comment=I+don%27t+think+1+%3D+2%2C+do+you%3F", NULL));
	passed(POST("/echo", "{\"name\":\"Miles O'Brien\",\"bio\":\"Engineer; likes \\\"select\\\" "
	            "wines & cheese. Don't drop by unannounced!\",\"age\":42,\"tags\":[\"a\",\"b\"],"
	            "\"ok\":true,\"x\":null}", "application/json"));
	passed(POST("/echo", "We met at 5 o'clock -- then we left; the rest is history.",
	            "text/plain"));
	/* not inspected: binary and multipart bodies */
	passed(POST("/echo", "<script>alert(1)</script>", "application/octet-stream"));
	passed(POST("/echo", "--b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n"
	            "<script>alert(1)</script>\r\n--b--\r\n", "multipart/form-data; boundary=b"));
	/* one keep-alive connection: inspected bodies do not disturb the next
	 * request on it */
	gwt_client *c = gwt_client_new();
	for (int i = 0; i < 5; i++) {
		gwt_resp *r = passed(&(rq){ .path = "/echo", .body = "a=1&b=two+words", .client = c });
		ck_assert_int_eq(r->num_connects, i == 0 ? 1 : 0);
	}
	gwt_resp *r = send_rq(&(rq){ .path = "/echo", .body = "b=<script>alert(1)</script>",
	                             .client = c });
	ck_assert_int_eq(r->status, 403);
}
END_TEST

START_TEST(detect_mode_logs_and_passes)
{
	start();
	gwt_resp *r = passed(GET("/detect/echo?id=1%27%20or%201%3D1--"));
	ck_assert_str_eq(gwt_echo_str(r, "query"), "id=1%27%20or%201%3D1--");
	const char *l = log_line(gwt_hdr(r, "X-Request-Id"));
	ck_assert_msg(strstr(l, " warn: waf detected (mode=detect, let through) request "), "%s", l);
	ck_assert_msg(strstr(l, " class=sqli rule=sqli-tautology part=arg:id "), "%s", l);
	ck_assert_msg(strstr(l, "excerpt=\"or 1=1--\""), "%s", l);
	assert_route(l, "route detect (rules.gwr:4)");
	/* a body hit too, after a URL hit of the same request: both logged */
	r = passed(&(rq){ .path = "/detect/echo?q=%3Cscript%3E", .body = "c=../../etc/passwd" });
	const char *id = gwt_hdr(r, "X-Request-Id");
	ck_assert_int_eq(gwt_wait_output(gwd, "part=body:c", 3000), 0);
	const char *all = gwt_stderr(gwd);
	const char *first = strstr(all, gwt_strf("request %s: class=xss", id));
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_nonnull(strstr(first, gwt_strf("request %s: class=traversal", id)));
	/* clean requests log nothing */
	r = passed(GET("/detect/echo?q=hello"));
	gwt_sleep_ms(200);
	ck_assert_ptr_null(strstr(gwt_stderr(gwd), gwt_hdr(r, "X-Request-Id")));
}
END_TEST

START_TEST(custom_rules_per_part)
{
	start();
	/* in=args */
	blocked_as(GET("/rargs/echo?item=Widget-42"), "rule", "arg:item", "route r_args (rules.gwr:10)");
	blocked_as(GET("/rargs/echo?item=widget%2D7"), "rule", "arg:item", NULL);
	passed(GETH("/rargs/echo?item=gadget", "User-Agent: widget-1"));
	passed(POST("/rargs/echo", "item=widget-1", NULL));
	passed(GET("/rargs/echo/widget-1"));
	/* in=headers */
	blocked_as(GETH("/rhdr/echo", "User-Agent: widget-99 crawler"), "rule", "header:User-Agent",
	           "route r_headers (rules.gwr:16)");
	blocked_as(GETH("/rhdr/echo", "Cookie: a=1; b=WIDGET-3"), "rule", "cookie:b", NULL);
	blocked_as(GETH("/rhdr/echo", "Referer: http://x/widget-5"), "rule", "header:Referer", NULL);
	passed(GET("/rhdr/echo?item=widget-1"));
	/* in=body: form, JSON, text */
	blocked_as(POST("/rbody/echo", "a=1&item=widget-8", NULL), "rule", "body:item",
	           "route r_body (rules.gwr:22)");
	blocked_as(POST("/rbody/echo", "{\"x\":{\"y\":\"Widget-9\"}}", "application/json"), "rule",
	           "body:y", NULL);
	blocked_as(POST("/rbody/echo", "buy widget-10 now", "text/plain"), "rule", "body", NULL);
	passed(GET("/rbody/echo?item=widget-1"));
	passed(POST("/rbody/echo", "item=gadget-1", NULL));
	/* in=path: the raw path, decoded */
	blocked_as(GET("/rpath/secret-1/echo"), "rule", "path", "route r_path (rules.gwr:28)");
	blocked_as(GET("/rpath/%73ecret-2/echo"), "rule", "path", NULL);
	passed(GET("/rpath/echo?p=/secret-1"));
	/* the rule name is the rule id in the log */
	gwt_resp *r = send_rq(GET("/rargs/echo?item=widget-5"));
	ck_assert_int_eq(r->status, 403);
	const char *l = log_line(gwt_hdr(r, "X-Request-Id"));
	ck_assert_msg(strstr(l, " class=rule rule=no-widgets part=arg:item excerpt=\"widget-5\" "),
	              "%s", l);
}
END_TEST

START_TEST(raw_path_traversal)
{
	start();
	/* "/a/../../etc/passwd" climbs above the root: no route matches it as
	 * sent, so it is routed on its clamped form "/etc/passwd" (route all),
	 * refused by its waf with 403 */
	const char *a = gwt_raw(port, "GET /a/..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n"
	                        "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 403);
	const char *id = gwt_raw_hdr(a, "X-Request-Id");
	ck_assert_ptr_nonnull(id);
	ck_assert_str_eq(gwt_raw_body(a),
	                 gwt_strf("{\"error\":\"forbidden\",\"request_id\":\"%s\"}", id));
	const char *l = log_line(id);
	ck_assert_msg(strstr(l, " class=traversal ") && strstr(l, " part=path "), "%s", l);
	a = gwt_raw(port, "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	            3000);
	ck_assert_int_eq(gwt_raw_status(a), 403);
	a = gwt_raw(port, "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n"
	            "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 403);
	/* resolved inside the root: normalised "/etc/passwd" reaches route all,
	 * the raw path shows the traversal */
	a = gwt_raw(port, "GET /a/b/..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n"
	            "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 403);
	/* a route whose waf has no traversal class lets it through access:
	 * then the core's 400 stands */
	a = gwt_raw(port, "GET /small/..%2f..%2f..%2fsmall/echo HTTP/1.1\r\nHost: x\r\n"
	            "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 403);   /* small has traversal */
	a = gwt_raw(port, "GET /nobody/../../nobody/echo HTTP/1.1\r\nHost: x\r\n"
	            "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(a), "\"error\":\"bad path\""));
	/* above the root, the route of the path as sent judges: small (which
	 * has traversal), not nobody (where the clamped "/nobody/x" goes) */
	a = gwt_raw(port, "GET /small/../../nobody/x HTTP/1.1\r\nHost: x\r\n"
	            "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 403);
	l = log_line(gwt_raw_hdr(a, "X-Request-Id"));
	ck_assert_msg(strstr(l, " class=traversal ") && strstr(l, " route small ("),
	              "%s", l);
	ck_assert_uint_eq(origin_count(orig), 0);
}
END_TEST

/* a route without any waf: ".." above the root is the core's 400, and a
 * clamped path that matches no route too (not 404) */
START_TEST(bad_path_without_waf)
{
	origin *o = gwt_origin("o");
	gwt_writef("rules.gwr", "upstream o {\n    server 127.0.0.1:%d;\n}\n"
	           "route p {\n    match path ^= \"/echo\";\n    proxy o;\n}\n", origin_port(o));
	gwt_compile("rules.gwr");
	port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n"
	           "threads: 1\n", port);
	gwd = gwt_gwd("gw.yaml", port);
	const char *a = gwt_raw(port, "GET /a/..%2f..%2fecho HTTP/1.1\r\nHost: x\r\n"
	                        "Connection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(a), "\"error\":\"bad path\""));
	a = gwt_raw(port, "GET /../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
	ck_assert_int_eq(gwt_raw_status(a), 400);
	ck_assert_ptr_nonnull(strstr(gwt_raw_body(a), "\"error\":\"bad path\""));
	ck_assert_uint_eq(origin_count(o), 0);
	gwt_resp *r = gwt_get(gwt_url(port, "/echo/a/../b"));
	ck_assert_int_eq(r->status, 200);
}
END_TEST

/* the value of one sample line of GET /metrics, -1 if absent */
static double metric(const char *text, const char *series)
{
	const char *needle = gwt_strf("\n%s ", series);
	const char *p = strstr(text, needle);
	return p ? atof(p + strlen(needle)) : -1;
}

START_TEST(metrics_count_decisions)
{
	start();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(send_rq(GET("/echo?id=1%27%20or%201%3D1--"))->status, 403);
	ck_assert_int_eq(send_rq(GET("/echo?q=%3Cscript%3Ealert(1)%3C/script%3E"))->status, 403);
	ck_assert_int_eq(send_rq(GET("/rargs/echo?item=widget-1"))->status, 403);
	ck_assert_int_eq(send_rq(GET("/detect/echo?id=1%27%20or%201%3D1--"))->status, 200);
	ck_assert_int_eq(send_rq(GET("/echo?q=fine"))->status, 200);
	gwt_resp *r = gwt_get(gwt_url(admin_port, "/metrics"));
	ck_assert_int_eq(r->status, 200);
	const char *m = r->body;
	ck_assert_double_eq(metric(m, "gw_waf_blocks_total{route=\"all\",rule=\"sqli-tautology\","
	                           "class=\"sqli\"}"), 3);
	ck_assert_double_eq(metric(m, "gw_waf_blocks_total{route=\"all\",rule=\"xss-script-tag\","
	                           "class=\"xss\"}"), 1);
	ck_assert_double_eq(metric(m, "gw_waf_blocks_total{route=\"r_args\",rule=\"no-widgets\","
	                           "class=\"rule\"}"), 1);
	ck_assert_double_eq(metric(m, "gw_waf_detections_total{route=\"detect\","
	                           "rule=\"sqli-tautology\",class=\"sqli\"}"), 1);
	ck_assert_double_eq(metric(m, "gw_waf_blocks_total{route=\"detect\","
	                           "rule=\"sqli-tautology\",class=\"sqli\"}"), -1);
}
END_TEST

/* n bytes: "a=xxxx...", then tail */
static char *filler(size_t n, const char *tail)
{
	size_t t = strlen(tail);
	char *b = malloc(n + t + 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, "a=", 2);
	memset(b + 2, 'x', n - 2);
	memcpy(b + n, tail, t + 1);
	return b;
}

START_TEST(body_limit_and_streaming)
{
	start();
	/* route small inspects 1 KiB: an attack after it is proxied intact */
	char *late = filler(2000, "&q=1%27%20or%201%3D1--");
	passed(&(rq){ .path = "/small/echo", .body = late });
	passed(&(rq){ .path = "/small/echo", .body = late, .chunked = 1 });
	/* ... one inside it is refused */
	char *early = filler(900, "&q=1%27%20or%201%3D1--&b=");
	char *early2 = malloc(3000);
	snprintf(early2, 3000, "%s%s", early, late);
	blocked_as(&(rq){ .path = "/small/echo", .body = early2 }, "sqli", "body:q",
	           "route small (rules.gwr:34)");
	blocked_as(&(rq){ .path = "/small/echo", .body = early2, .chunked = 1 }, "sqli", "body:q",
	           NULL);
	/* a body shorter than the limit, chunked: inspected when it ends */
	blocked_as(&(rq){ .path = "/small/echo", .body = "q=<script>x</script>", .chunked = 1 },
	           "xss", "body:q", NULL);
	/* body_limit=0: bodies are not inspected at all */
	passed(POST("/nobody/echo", "q=<script>alert(1)</script>", NULL));
	blocked_as(GET("/nobody/echo?q=<script>alert(1)</script>"), "xss", "arg:q", NULL);
	/* route big buffers 300 KiB (more than the proxy's 64 KiB ring) before
	 * proxying: 1 MiB bodies, with the rule's marker past the limit, go
	 * through intact, either way they are sent */
	char *mb = filler(1 << 20, "&m=zz-marker-zz");
	passed(&(rq){ .path = "/big/echo", .body = mb });
	passed(&(rq){ .path = "/big/echo", .body = mb, .chunked = 1 });
	gwt_client *c = gwt_client_new();
	for (int i = 0; i < 3; i++)
		passed(&(rq){ .path = "/big/echo", .body = mb, .client = c });
	/* the marker inside the first 300 KiB: refused */
	memcpy(mb + 200000, "&m=zz-marker-zz&", 16);
	blocked_as(&(rq){ .path = "/big/echo", .body = mb }, "rule", "body:m",
	           "route big (rules.gwr:40)");
	blocked_as(&(rq){ .path = "/big/echo", .body = mb, .chunked = 1 }, "rule", "body:m", NULL);
	free(late);
	free(early);
	free(early2);
	free(mb);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("waf");
	TCase *t = tcase_create("waf");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, classes_in_every_part);
	tcase_add_test(t, benign_values_pass);
	tcase_add_test(t, detect_mode_logs_and_passes);
	tcase_add_test(t, custom_rules_per_part);
	tcase_add_test(t, raw_path_traversal);
	tcase_add_test(t, bad_path_without_waf);
	tcase_add_test(t, body_limit_and_streaming);
	tcase_add_test(t, metrics_count_decisions);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

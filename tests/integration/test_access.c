/*
 * test_access.c — allow / deny in a real gwd: the first directive whose list
 * holds the client decides (deny: 403 with the JSON body; allow: the later
 * allow/deny lines are skipped), a client no list holds passes; lists from
 * policies; lists of thousands of CIDRs; how allow/deny and auth key
 * combine; IPv6 clients on [::1] and IPv4-mapped CIDRs for IPv4 clients.
 * The client is 127.0.0.1 (and ::1 for the IPv6 cases).
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static gwt_proc *start(int *port, int v6, const char *rules)
{
	origin *o = gwt_origin("o");
	gwt_writef("rules.gwr", "upstream o {\n    server 127.0.0.1:%d;\n}\n\n%s",
	           origin_port(o), rules);
	gwt_compile("rules.gwr");
	*port = gwt_free_port();
	if (v6)
		gwt_writef("gw.yaml", "listen: [\"127.0.0.1:%d\", \"[::1]:%d\"]\nrules: rules.gwb\n"
		           "threads: 1\nadmin: {listen: 'off'}\n", *port, *port);
	else
		gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n"
		           "admin: {listen: 'off'}\n", *port);
	return gwt_gwd("gw.yaml", *port);
}

static long status_of(const char *url)
{
	gwt_resp *r = gwt_get(url);
	ck_assert_msg(r->curl_code == 0, "%s: %s", url, r->error);
	if (r->status == 403) {
		ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
		json_t *j = gwt_json(r);
		ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "forbidden");
		ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")),
		                 gwt_hdr(r, "X-Request-Id"));
	}
	return r->status;
}

#define V4(port, path) status_of(gwt_url(port, path))
#define V6(port, path) status_of(gwt_strf("http://[::1]:%d%s", port, path))

static const char order_rules[] =
	/* first match decides */
	"route a1 {\n    match path == \"/a1\";\n    deny 127.0.0.1;\n    allow all;\n"
	"    respond 200 \"a1\";\n}\n"
	"route a2 {\n    match path == \"/a2\";\n    allow 127.0.0.0/8;\n    deny all;\n"
	"    respond 200 \"a2\";\n}\n"
	"route a3 {\n    match path == \"/a3\";\n    allow 10.0.0.0/8, 192.168.0.0/16 172.16.0.0/12;\n"
	"    deny all;\n    respond 200 \"a3\";\n}\n"
	/* no list holds the client: it passes */
	"route a4 {\n    match path == \"/a4\";\n    deny 10.0.0.0/8 ::1;\n    respond 200 \"a4\";\n}\n"
	/* allow first, then a deny that would match: the allow decided */
	"route a5 {\n    match path == \"/a5\";\n    allow 127.0.0.1;\n    deny 127.0.0.1;\n"
	"    respond 200 \"a5\";\n}\n"
	/* misses, then a hit */
	"route a6 {\n    match path == \"/a6\";\n    deny 127.0.0.2, 127.0.1.0/24;\n"
	"    allow 127.0.0.1/32;\n    deny all;\n    respond 200 \"a6\";\n}\n"
	/* a policy's list, spliced where `use` stands */
	"policy block_local {\n    deny 127.0.0.0/24;\n}\n"
	"route a7 {\n    match path == \"/a7\";\n    use block_local;\n    allow all;\n"
	"    respond 200 \"a7\";\n}\n"
	"route a8 {\n    match path == \"/a8\";\n    allow 127.0.0.1;\n    use block_local;\n"
	"    respond 200 \"a8\";\n}\n"
	"route a9 {\n    match path == \"/a9\";\n    deny all;\n    respond 200 \"a9\";\n}\n"
	/* proxied routes too */
	"route p1 {\n    match path ^= \"/echo/p1\";\n    deny 127.0.0.0/30;\n    proxy o;\n}\n"
	"route p2 {\n    match path ^= \"/echo/p2\";\n    allow 127.0.0.0/30;\n    deny all;\n"
	"    proxy o;\n}\n";

START_TEST(first_match_decides_v4)
{
	int port;
	start(&port, 0, order_rules);
	ck_assert_int_eq(V4(port, "/a1"), 403);
	ck_assert_int_eq(V4(port, "/a2"), 200);
	ck_assert_int_eq(V4(port, "/a3"), 403);
	ck_assert_int_eq(V4(port, "/a4"), 200);
	ck_assert_int_eq(V4(port, "/a5"), 200);
	ck_assert_int_eq(V4(port, "/a6"), 200);
	ck_assert_int_eq(V4(port, "/a7"), 403);
	ck_assert_int_eq(V4(port, "/a8"), 200);
	ck_assert_int_eq(V4(port, "/a9"), 403);
	ck_assert_int_eq(V4(port, "/echo/p1"), 403);
	gwt_resp *r = gwt_get(gwt_url(port, "/echo/p2/x"));
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "o");
	/* a denied request never reaches the origin */
	ck_assert_int_eq(V4(port, "/echo/p1/y"), 403);
	r = gwt_get(gwt_url(port, "/a9"));
	ck_assert_str_eq(r->body, gwt_strf("{\"error\":\"forbidden\",\"request_id\":\"%s\"}",
	                                   gwt_hdr(r, "X-Request-Id")));
}
END_TEST

START_TEST(v6_clients)
{
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int ok = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0;
	if (s >= 0)
		close(s);
	if (!ok) {
		fprintf(stderr, "test_access: no ::1 here, IPv6 cases skipped\n");
		return;
	}
	int port;
	start(&port, 1, order_rules);
	/* the same rules seen from ::1: the v4 lists do not hold it */
	ck_assert_int_eq(V6(port, "/a1"), 200);
	ck_assert_int_eq(V6(port, "/a2"), 403);
	ck_assert_int_eq(V6(port, "/a4"), 403);          /* deny ... ::1 */
	ck_assert_int_eq(V6(port, "/a5"), 200);          /* nothing matched */
	ck_assert_int_eq(V6(port, "/a9"), 403);          /* all is v6 too */
	ck_assert_int_eq(V4(port, "/a4"), 200);
}
END_TEST

START_TEST(v6_lists)
{
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int ok = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0;
	if (s >= 0)
		close(s);
	if (!ok) {
		fprintf(stderr, "test_access: no ::1 here, IPv6 cases skipped\n");
		return;
	}
	int port;
	start(&port, 1,
		"route b1 {\n    match path == \"/b1\";\n    allow ::1/128 2001:db8::/32;\n"
		"    deny all;\n    respond 200 \"b1\";\n}\n"
		"route b2 {\n    match path == \"/b2\";\n    deny ::/0;\n    respond 200 \"b2\";\n}\n"
		"route b3 {\n    match path == \"/b3\";\n    deny ::/127;\n    allow ::1;\n"
		"    respond 200 \"b3\";\n}\n"
		"route b4 {\n    match path == \"/b4\";\n    deny 2001:db8::/32, fe80::/10;\n"
		"    respond 200 \"b4\";\n}\n"
		/* IPv4-mapped IPv6 CIDRs match IPv4 clients */
		"route b5 {\n    match path == \"/b5\";\n    deny ::ffff:127.0.0.0/104;\n"
		"    respond 200 \"b5\";\n}\n");
	ck_assert_int_eq(V6(port, "/b1"), 200);
	ck_assert_int_eq(V4(port, "/b1"), 403);
	ck_assert_int_eq(V6(port, "/b2"), 403);
	ck_assert_int_eq(V4(port, "/b2"), 200);          /* ::/0 is IPv6 only */
	ck_assert_int_eq(V6(port, "/b3"), 403);
	ck_assert_int_eq(V6(port, "/b4"), 200);
	ck_assert_int_eq(V4(port, "/b5"), 403);
	ck_assert_int_eq(V6(port, "/b5"), 200);
}
END_TEST

/* thousands of CIDRs per list: built once at load, looked up quickly */
START_TEST(big_lists)
{
	size_t cap = 1 << 20, n = 0;
	char *big = malloc(cap);
	n += (size_t)snprintf(big + n, cap - n, "policy big {\n    deny");
	unsigned seed = 7;
	for (int i = 0; i < 5000; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned a = 1 + (seed >> 8) % 126;     /* never 127/8 */
		seed = seed * 1103515245u + 12345u;
		n += (size_t)snprintf(big + n, cap - n, " %u.%u.%u.0/24", a, (seed >> 8) & 255,
		                      (seed >> 16) & 255);
		if (i % 2) {
			seed = seed * 1103515245u + 12345u;
			n += (size_t)snprintf(big + n, cap - n, " 2001:db8:%x::/48", (seed >> 8) & 0xffff);
		}
	}
	n += (size_t)snprintf(big + n, cap - n, ";\n}\n"
		"route miss {\n    match path == \"/miss\";\n    use big;\n    respond 200 \"m\";\n}\n"
		"route hit {\n    match path == \"/hit\";\n    use big;\n    deny 127.0.0.1;\n"
		"    respond 200 \"h\";\n}\n"
		"route hit2 {\n    match path == \"/hit2\";\n    deny 126.0.0.0/8");
	for (int i = 0; i < 3000; i++)
		n += (size_t)snprintf(big + n, cap - n, " 10.%d.%d.0/24", i / 256, i % 256);
	n += (size_t)snprintf(big + n, cap - n, " 127.0.0.1 200.0.0.0/8;\n"
		"    respond 200 \"h2\";\n}\n");
	int port;
	start(&port, 0, big);
	free(big);
	uint64_t t0 = gwt_now_ms();
	gwt_client *c = gwt_client_new();
	for (int i = 0; i < 200; i++) {
		gwt_req rq = { .url = gwt_url(port, i % 2 ? "/miss" : "/hit2"), .client = c };
		ck_assert_int_eq(gwt_http(&rq)->status, i % 2 ? 200 : 403);
	}
	ck_assert_int_eq(V4(port, "/hit"), 403);
	ck_assert_msg(gwt_now_ms() - t0 < 5000, "200 requests took %llu ms",
	              (unsigned long long)(gwt_now_ms() - t0));
}
END_TEST

/* allow/deny with auth key: directives run in order */
START_TEST(with_auth)
{
	gwt_writef("keys.txt", "k1\n");
	int port;
	start(&port, 0,
		"route c1 {\n    match path == \"/c1\";\n    deny 127.0.0.1;\n"
		"    auth key keys=file(\"keys.txt\");\n    respond 200 \"c1\";\n}\n"
		"route c2 {\n    match path == \"/c2\";\n    allow 127.0.0.1;\n    deny all;\n"
		"    auth key keys=file(\"keys.txt\");\n    respond 200 \"c2\";\n}\n"
		"route c3 {\n    match path == \"/c3\";\n    auth key keys=file(\"keys.txt\");\n"
		"    deny all;\n    respond 200 \"c3\";\n}\n");
	/* denied before the key is even looked at */
	ck_assert_int_eq(V4(port, "/c1"), 403);
	/* allowed by the list, but the key is still required */
	gwt_resp *r = gwt_get(gwt_url(port, "/c2"));
	ck_assert_int_eq(r->status, 401);
	const char *h[] = { "X-API-Key: k1", NULL };
	gwt_req rq = { .url = gwt_url(port, "/c2"), .headers = h };
	ck_assert_int_eq(gwt_http(&rq)->status, 200);
	/* the key first: a missing key is 401, a good key meets the deny */
	ck_assert_int_eq(gwt_get(gwt_url(port, "/c3"))->status, 401);
	rq.url = gwt_url(port, "/c3");
	ck_assert_int_eq(gwt_http(&rq)->status, 403);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("access");
	TCase *t = tcase_create("allow_deny");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, first_match_decides_v4);
	tcase_add_test(t, v6_clients);
	tcase_add_test(t, v6_lists);
	tcase_add_test(t, big_lists);
	tcase_add_test(t, with_auth);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

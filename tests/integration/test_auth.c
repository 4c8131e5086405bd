/*
 * test_auth.c — auth key, auth basic and auth jwt in a real gwd in front of
 * a real origin: exact statuses, WWW-Authenticate challenges, JSON error
 * bodies and what reaches the origin (its /echo).
 *
 *  key:   header, query and cookie sources; `name:key` and bare keys as
 *         consumers (gwd's debug log); missing and wrong keys; the key
 *         file edited in place, renamed over and emptied while gwd runs
 *         (no reload); a key file gone at load refuses the table.
 *  basic: bcrypt ($2y$, $2b$), SHA-256- and SHA-512-crypt users from an htpasswd
 *         written here with crypt_rn; wrong passwords, unknown and
 *         legacy-hash users; the worker keeps answering while a slow bcrypt
 *         verification runs; a password change in the file takes effect.
 *  jwt:   HS256 from env() with iss/aud/leeway and claims forwarded as
 *         headers (client-sent copies replaced or removed), RS256 and
 *         ES256 with keys made by `openssl genpkey` and tokens signed here,
 *         expired / not yet valid / wrong iss / wrong aud / alg none /
 *         HS256 signed with the RS256 public key / tampered payload; token
 *         from a cookie, a header and the query; a secret file changed at
 *         run time; a missing or empty env secret, an empty secret file and
 *         a key of the wrong type refuse the table.
 */
#include <config.h>

#include <crypt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "harness.h"

/* ------------------------------------------------------------ helpers */

static origin *g_origin;

/* rules (after the upstream block, written here) -> table; gateway.yaml
 * with the debug log (consumers are logged there); gwd started with env */
static gwt_proc *start_env(int *port, const char *const env[], const char *rules_fmt, ...)
	__attribute__((format(printf, 3, 4)));

static gwt_proc *start_env(int *port, const char *const env[], const char *rules_fmt, ...)
{
	g_origin = gwt_origin("o");
	va_list ap;
	va_start(ap, rules_fmt);
	char *rules;
	ck_assert_int_ge(vasprintf(&rules, rules_fmt, ap), 0);
	va_end(ap);
	gwt_writef("rules.gwr", "upstream o {\n    server 127.0.0.1:%d;\n}\n\n%s",
	           origin_port(g_origin), rules);
	free(rules);
	gwt_compile("rules.gwr");
	*port = gwt_free_port();
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nthreads: 1\n"
	           "admin: {listen: 'off'}\nerror_log: {level: debug}\n", *port);
	const char *argv[] = { gwt_bin("gwd"), "-c", gwt_path("gw.yaml"), NULL };
	gwt_proc *p = gwt_spawn("gwd", argv, env);
	uint64_t end = gwt_now_ms() + 10000;
	while (gwt_now_ms() < end && gwt_running(p))
		if (gwt_wait_port("127.0.0.1", *port, 50) == 0)
			return p;
	ck_abort_msg("gwd did not start: %s", gwt_stderr(p));
	return NULL;
}

/* GET path with up to 3 header lines */
static gwt_resp *get(int port, const char *path, const char *h1, const char *h2,
                     const char *h3)
{
	const char *hdrs[4] = { h1, h2, h3, NULL };
	gwt_req rq = { .url = gwt_url(port, path), .headers = hdrs };
	return gwt_http(&rq);
}

/* a refusal as interfaces.md says: status, challenge, JSON body whose
 * request_id is the X-Request-Id header */
static void expect_refusal(const gwt_resp *r, int status, const char *challenge)
{
	ck_assert_msg(r->status == status, "status %ld, want %d; body %s", r->status, status,
	              r->body);
	if (challenge)
		ck_assert_str_eq(gwt_hdr(r, "WWW-Authenticate"), challenge);
	else
		ck_assert_ptr_null(gwt_hdr(r, "WWW-Authenticate"));
	ck_assert_str_eq(gwt_hdr(r, "Content-Type"), "application/json");
	json_t *j = gwt_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "error")),
	                 status == 401 ? "unauthorized" : status == 403 ? "forbidden"
	                                                                : "no healthy upstream");
	ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")),
	                 gwt_hdr(r, "X-Request-Id"));
	ck_assert_uint_eq(json_object_size(j), 2);
}

static void expect_pass(const gwt_resp *r)
{
	ck_assert_msg(r->status == 200, "status %ld, want 200; WWW-Authenticate: %s; body %s",
	              r->status, gwt_hdr(r, "WWW-Authenticate"), r->body);
	ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "o");
}

static void expect_log(gwt_proc *gwd, const char *needle)
{
	ck_assert_msg(gwt_wait_output(gwd, needle, 3000) == 0, "gwd's log lacks '%s':\n%s",
	              needle, gwt_stderr(gwd));
}

/* poll until path with header h answers want (a watched file changed) */
static int eventually(int port, const char *path, const char *h, long want, int ms)
{
	uint64_t end = gwt_now_ms() + (uint64_t)ms;
	do {
		if (get(port, path, h, NULL, NULL)->status == want)
			return 1;
		gwt_sleep_ms(50);
	} while (gwt_now_ms() < end);
	return 0;
}

/* ============================================================ auth key */

static const char key_rules[] =
	"route kh {\n    match path ^= \"/echo/kh\";\n"
	"    auth key keys=file(\"keys.txt\");\n    proxy o;\n}\n"
	"route kq {\n    match path ^= \"/echo/kq\";\n"
	"    auth key query=\"api_key\" keys=file(\"keys.txt\");\n    proxy o;\n}\n"
	"route kc {\n    match path ^= \"/echo/kc\";\n"
	"    auth key cookie=\"k\" keys=file(\"keys.txt\");\n    proxy o;\n}\n"
	"route kx {\n    match path ^= \"/echo/kx\";\n"
	"    auth key header=\"Authorization\" keys=file(\"keys.txt\");\n    proxy o;\n}\n";

static const char keys_txt[] =
	"# API keys\n"
	"\n"
	"alice:k-alice-0001\n"
	"  bob : k-bob-0002  \n"
	"plain-key-0003\n"
	"   # indented comment\n";

static const char *const K_HDR = "Key realm=\"gw\", header=\"X-API-Key\"";

START_TEST(key_header)
{
	gwt_writef("keys.txt", "%s", keys_txt);
	int port;
	gwt_proc *gwd = start_env(&port, NULL, "%s", key_rules);

	expect_refusal(get(port, "/echo/kh", NULL, NULL, NULL), 401, K_HDR);
	expect_refusal(get(port, "/echo/kh", "X-API-Key: nope", NULL, NULL), 401, K_HDR);
	expect_refusal(get(port, "/echo/kh", "X-API-Key:", NULL, NULL), 401, K_HDR);
	/* a key is the whole value: a prefix, a longer value, another case */
	expect_refusal(get(port, "/echo/kh", "X-API-Key: k-alice-000", NULL, NULL), 401, K_HDR);
	expect_refusal(get(port, "/echo/kh", "X-API-Key: k-alice-00011", NULL, NULL), 401, K_HDR);
	expect_refusal(get(port, "/echo/kh", "X-API-Key: K-ALICE-0001", NULL, NULL), 401, K_HDR);
	/* the name is not a key */
	expect_refusal(get(port, "/echo/kh", "X-API-Key: alice", NULL, NULL), 401, K_HDR);
	expect_refusal(get(port, "/echo/kh", "X-API-Key: # API keys", NULL, NULL), 401, K_HDR);

	gwt_resp *r = get(port, "/echo/kh/x?q=1", "x-api-key: k-alice-0001", NULL, NULL);
	expect_pass(r);
	ck_assert_str_eq(gwt_echo_str(r, "path"), "/echo/kh/x");
	ck_assert_str_eq(gwt_echo_str(r, "query"), "q=1");
	expect_log(gwd, "auth key: consumer alice (route kh)");
	/* blanks around name and key are not part of them */
	expect_pass(get(port, "/echo/kh", "X-API-Key: k-bob-0002", NULL, NULL));
	expect_log(gwd, "auth key: consumer bob (route kh)");
	/* a key without a name: "key-" + the first 8 hex digits of its sha256 */
	expect_pass(get(port, "/echo/kh", "X-API-Key: plain-key-0003", NULL, NULL));
	char hex[65];
	gwt_sha256_hex("plain-key-0003", 14, hex);
	expect_log(gwd, gwt_strf("auth key: consumer key-%.8s (route kh)", hex));
	/* keys are per route source: a header key is not a query key */
	expect_refusal(get(port, "/echo/kq", "X-API-Key: k-alice-0001", NULL, NULL), 401,
	               "Key realm=\"gw\", query=\"api_key\"");
	/* any header can carry it */
	expect_pass(get(port, "/echo/kx", "Authorization: k-bob-0002", NULL, NULL));
	expect_refusal(get(port, "/echo/kx", "Authorization: Bearer k-bob-0002", NULL, NULL),
	               401, "Key realm=\"gw\", header=\"Authorization\"");
}
END_TEST

START_TEST(key_query_and_cookie)
{
	gwt_writef("keys.txt", "%s", keys_txt);
	int port;
	gwt_proc *gwd = start_env(&port, NULL, "%s", key_rules);
	const char *QC = "Key realm=\"gw\", query=\"api_key\"";
	expect_refusal(get(port, "/echo/kq", NULL, NULL, NULL), 401, QC);
	expect_refusal(get(port, "/echo/kq?api_key=", NULL, NULL, NULL), 401, QC);
	expect_refusal(get(port, "/echo/kq?api_key=wrong", NULL, NULL, NULL), 401, QC);
	expect_refusal(get(port, "/echo/kq?apikey=k-bob-0002", NULL, NULL, NULL), 401, QC);
	gwt_resp *r = get(port, "/echo/kq?x=1&api_key=k-bob-0002&y=%20", NULL, NULL, NULL);
	expect_pass(r);
	/* the query reaches the origin byte for byte */
	ck_assert_str_eq(gwt_echo_str(r, "query"), "x=1&api_key=k-bob-0002&y=%20");
	expect_log(gwd, "auth key: consumer bob (route kq)");
	/* the argument is form-decoded before the comparison */
	expect_pass(get(port, "/echo/kq?api_key=k%2Dalice-0001", NULL, NULL, NULL));
	expect_log(gwd, "auth key: consumer alice (route kq)");
	/* the first argument of that name is the one */
	expect_refusal(get(port, "/echo/kq?api_key=bad&api_key=k-bob-0002", NULL, NULL, NULL),
	               401, QC);

	const char *CC = "Key realm=\"gw\", cookie=\"k\"";
	expect_refusal(get(port, "/echo/kc", NULL, NULL, NULL), 401, CC);
	expect_refusal(get(port, "/echo/kc", "Cookie: a=1; kk=k-bob-0002", NULL, NULL), 401, CC);
	expect_pass(get(port, "/echo/kc", "Cookie: a=1; k=k-bob-0002; z=2", NULL, NULL));
	expect_pass(get(port, "/echo/kc", "Cookie: k=\"plain-key-0003\"", NULL, NULL));
}
END_TEST

START_TEST(key_file_changes_without_reload)
{
	gwt_writef("keys.txt", "alice:k-alice-0001\n");
	int port;
	gwt_proc *gwd = start_env(&port, NULL, "%s", key_rules);
	expect_pass(get(port, "/echo/kh", "X-API-Key: k-alice-0001", NULL, NULL));
	expect_refusal(get(port, "/echo/kh", "X-API-Key: k-carol-0004", NULL, NULL), 401, K_HDR);

	/* renamed over (gwt_write writes a temp file and renames it) */
	gwt_writef("keys.txt", "alice:k-alice-0001\ncarol:k-carol-0004\n");
	ck_assert_msg(eventually(port, "/echo/kh", "X-API-Key: k-carol-0004", 200, 5000),
	              "new key not accepted after the file was renamed over:\n%s",
	              gwt_stderr(gwd));
	expect_log(gwd, "auth key: consumer carol (route kh)");

	/* edited in place: a key removed */
	FILE *f = fopen(gwt_path("keys.txt"), "w");
	ck_assert_ptr_nonnull(f);
	fputs("carol:k-carol-0004\n", f);
	fclose(f);
	ck_assert_msg(eventually(port, "/echo/kh", "X-API-Key: k-alice-0001", 401, 5000),
	              "removed key still accepted:\n%s", gwt_stderr(gwd));
	expect_pass(get(port, "/echo/kh", "X-API-Key: k-carol-0004", NULL, NULL));

	/* the file removed: what was read stays in force (and is logged) */
	ck_assert_int_eq(unlink(gwt_path("keys.txt")), 0);
	expect_log(gwd, "keeping what was read before");
	expect_pass(get(port, "/echo/kh", "X-API-Key: k-carol-0004", NULL, NULL));
	/* emptied: nobody */
	gwt_writef("keys.txt", "# nobody\n");
	ck_assert_msg(eventually(port, "/echo/kh", "X-API-Key: k-carol-0004", 401, 5000),
	              "emptied key file still lets carol in");

	/* all of this without a table reload */
	const char *err = gwt_stderr(gwd);
	const char *first = strstr(err, "table loaded");
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_null(strstr(first + 1, "table loaded"));
	ck_assert_int_eq(gwt_stop(gwd, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(key_file_missing_refuses_table)
{
	gwt_writef("keys.txt", "a:b\n");
	gwt_writef("rules.gwr", "route kh {\n    match any;\n    auth key keys=file(\"keys.txt\");\n"
	           "    proxy o;\n}\nupstream o {\n    server 127.0.0.1:1;\n}\n");
	gwt_compile("rules.gwr");
	ck_assert_int_eq(unlink(gwt_path("keys.txt")), 0);
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n",
	           gwt_free_port());
	const char *argv[] = { gwt_bin("gwd"), "-t", "-c", gwt_path("gw.yaml"), NULL };
	const char *out, *err;
	ck_assert_int_eq(gwt_run("gwd-t", argv, NULL, 10000, &out, &err), 1);
	const char *want = gwt_strf("plugin auth_key: route kh (%s:1): auth key: %s: "
	                            "No such file or directory", gwt_path("rules.gwr"),
	                            gwt_path("keys.txt"));
	ck_assert_msg(strstr(err, want) != NULL, "stderr lacks\n%s\n:\n%s", want, err);
}
END_TEST

/* ========================================================== auth basic */

static const char *hash_of(const char *prefix, unsigned long cost, const char *pw)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	ck_assert_ptr_nonnull(crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof salt));
	struct crypt_data *cd = calloc(1, sizeof *cd);
	const char *h = crypt_rn(pw, salt, cd, (int)sizeof *cd);
	ck_assert_msg(h && h[0] != '*', "crypt_rn(%s) failed", salt);
	const char *out = gwt_strf("%s", h);
	free(cd);
	return out;
}

static const char *basic(const char *user, const char *pw)
{
	const char *cred = gwt_strf("%s:%s", user, pw);
	unsigned char b64[256];
	int n = EVP_EncodeBlock(b64, (const unsigned char *)cred, (int)strlen(cred));
	return gwt_strf("Authorization: Basic %.*s", n, b64);
}

static const char basic_rules[] =
	"route b {\n    match path ^= \"/echo/b\";\n"
	"    auth basic users=file(\"htpasswd\") realm=\"staff \\\"only\\\"\";\n    proxy o;\n}\n"
	"route d {\n    match path ^= \"/echo/d\";\n"
	"    auth basic users=file(\"htpasswd\");\n    proxy o;\n}\n"
	"route fast {\n    match path == \"/fast\";\n    respond 200 \"fast\\n\";\n}\n";

START_TEST(basic_bcrypt_and_sha_crypt)
{
	gwt_writef("htpasswd",
	           "# users\n"
	           "alice:%s\n"
	           "bob:%s\n"
	           "carol:%s:extra field\n"
	           "dave:%s\n"
	           "erin:plaintext\n"
	           "frank:%s\n"
	           "\n",
	           hash_of("$2y$", 5, "alice pw: with colon"), hash_of("$2b$", 5, "bobpw"),
	           hash_of("$6$", 5000, "carol-sha512"), hash_of("$1$", 0, "davepw"),
	           hash_of("$5$", 5000, "frank-sha256"));
	int port;
	gwt_proc *gwd = start_env(&port, NULL, "%s", basic_rules);
	const char *BC = "Basic realm=\"staff \\\"only\\\"\", charset=\"UTF-8\"";

	gwt_resp *r = get(port, "/echo/b/x", basic("alice", "alice pw: with colon"), NULL, NULL);
	expect_pass(r);
	/* the credentials reach the origin unchanged */
	ck_assert_str_eq(gwt_echo_hdr(r, "Authorization"),
	                 basic("alice", "alice pw: with colon") + 15);
	expect_log(gwd, "auth basic: consumer alice (route b)");
	expect_pass(get(port, "/echo/b", basic("bob", "bobpw"), NULL, NULL));
	expect_pass(get(port, "/echo/b", basic("carol", "carol-sha512"), NULL, NULL));
	expect_log(gwd, "auth basic: consumer carol (route b)");
	/* SHA-256-crypt, which libxcrypt calls legacy, is accepted too */
	expect_pass(get(port, "/echo/b", basic("frank", "frank-sha256"), NULL, NULL));
	/* again: from the cache this time, same answer */
	expect_pass(get(port, "/echo/b", basic("bob", "bobpw"), NULL, NULL));
	expect_pass(get(port, "/echo/b", basic("carol", "carol-sha512"), NULL, NULL));

	expect_refusal(get(port, "/echo/b", NULL, NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", basic("alice", "alice pw"), NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", basic("bob", "BOBPW"), NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", basic("bob", ""), NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", basic("carol", "bobpw"), NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", basic("mallory", "bobpw"), NULL, NULL), 401, BC);
	/* another user's password is not this user's */
	expect_refusal(get(port, "/echo/b", basic("alice", "bobpw"), NULL, NULL), 401, BC);
	/* legacy MD5-crypt and plain text lines are not usable (and logged) */
	expect_refusal(get(port, "/echo/b", basic("dave", "davepw"), NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", basic("erin", "plaintext"), NULL, NULL), 401, BC);
	expect_log(gwd, gwt_strf("%s:5: user 'dave': legacy or disabled hash method",
	                         gwt_path("htpasswd")));
	expect_log(gwd, gwt_strf("%s:6: user 'erin': not a hash gwd can verify",
	                         gwt_path("htpasswd")));
	/* malformed Authorization values */
	expect_refusal(get(port, "/echo/b", "Authorization: Basic !!!", NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", "Authorization: Basic Ym9i", NULL, NULL), 401, BC);
	expect_refusal(get(port, "/echo/b", "Authorization: Bearer Ym9iOmJvYnB3", NULL, NULL),
	               401, BC);
	/* "Basic" in any case */
	expect_pass(get(port, "/echo/b", "Authorization: basic Ym9iOmJvYnB3", NULL, NULL));
	/* the default realm */
	expect_refusal(get(port, "/echo/d", NULL, NULL, NULL), 401,
	               "Basic realm=\"gw\", charset=\"UTF-8\"");
}
END_TEST

/* A bcrypt verification runs on a verifier thread: the (single) worker
 * answers other requests meanwhile. */
START_TEST(basic_does_not_block_the_worker)
{
	/* cost 13: ~0.5 s here */
	gwt_writef("htpasswd", "slow:%s\n", hash_of("$2b$", 13, "slowpw"));
	int port;
	start_env(&port, NULL, "%s", basic_rules);
	int fd = gwt_connect("127.0.0.1", port, 2000);
	ck_assert_int_ge(fd, 0);
	uint64_t t0 = gwt_now_ms();
	ck_assert_int_eq(gwt_sendf(fd, "GET /echo/b HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
	                           basic("slow", "slowpw")), 0);
	gwt_sleep_ms(30);
	gwt_resp *f = gwt_get(gwt_url(port, "/fast"));
	uint64_t t_fast = gwt_now_ms() - t0;
	ck_assert_int_eq(f->status, 200);
	/* the slow answer is not there yet */
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int pending = poll(&p, 1, 0) == 0;
	size_t len;
	const char *slow = gwt_recv_response(fd, 0, 10000, &len);
	uint64_t t_slow = gwt_now_ms() - t0;
	ck_assert_ptr_nonnull(slow);
	ck_assert_int_eq(gwt_raw_status(slow), 200);
	ck_assert_msg(pending && t_fast < t_slow, "fast answered after %llu ms, slow after %llu ms",
	              (unsigned long long)t_fast, (unsigned long long)t_slow);
	/* and once verified, the same credentials are let in from the cache */
	uint64_t t1 = gwt_now_ms();
	expect_pass(get(port, "/echo/b", basic("slow", "slowpw"), NULL, NULL));
	ck_assert_msg(gwt_now_ms() - t1 < t_slow, "cached verification as slow as bcrypt");
}
END_TEST

START_TEST(basic_file_change)
{
	gwt_writef("htpasswd", "bob:%s\n", hash_of("$2b$", 5, "old-pw"));
	int port;
	start_env(&port, NULL, "%s", basic_rules);
	expect_pass(get(port, "/echo/b", basic("bob", "old-pw"), NULL, NULL));
	gwt_writef("htpasswd", "bob:%s\n", hash_of("$6$", 5000, "new-pw"));
	/* the old password was cached: the new hash must invalidate it */
	ck_assert(eventually(port, "/echo/b", basic("bob", "new-pw"), 200, 5000));
	expect_refusal(get(port, "/echo/b", basic("bob", "old-pw"), NULL, NULL), 401,
	               "Basic realm=\"staff \\\"only\\\"\", charset=\"UTF-8\"");
}
END_TEST

/* ============================================================ auth jwt */

static char *b64url(const void *data, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = malloc(n / 3 * 4 + 5), *o = out;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
	}
	if (n - i == 1) {
		*o++ = tab[p[i] >> 2]; *o++ = tab[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		*o++ = tab[p[i] >> 2]; *o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tab[(p[i + 1] & 15) << 2];
	}
	*o = '\0';
	const char *s = gwt_strf("%s", out);
	free(out);
	return (char *)s;
}

static EVP_PKEY *load_priv(const char *name)
{
	FILE *f = fopen(gwt_path(name), "r");
	ck_assert_ptr_nonnull(f);
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(k);
	return k;
}

/* a JWS: header {"alg":alg_name}, payload as given, signed with alg
 * ("HS256"/"HS384"/"HS512" with secret, "RS256"/"ES256" with the private
 * key file, "" for no signature) */
static const char *jwt(const char *alg_name, const char *alg, const char *payload,
                       const char *secret, const char *keyfile)
{
	const char *hdr = gwt_strf("{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg_name);
	const char *input = gwt_strf("%s.%s", b64url(hdr, strlen(hdr)),
	                             b64url(payload, strlen(payload)));
	unsigned char sig[1024];
	size_t sl = 0;
	if (!strncmp(alg, "HS", 2)) {
		const EVP_MD *md = !strcmp(alg, "HS256") ? EVP_sha256()
		                 : !strcmp(alg, "HS384") ? EVP_sha384() : EVP_sha512();
		unsigned int l;
		HMAC(md, secret, (int)strlen(secret), (const unsigned char *)input, strlen(input),
		     sig, &l);
		sl = l;
	} else if (*alg) {
		EVP_PKEY *k = load_priv(keyfile);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		sl = sizeof sig;
		ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
		ck_assert_int_eq(EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)input,
		                                strlen(input)), 1);
		EVP_MD_CTX_free(ctx);
		EVP_PKEY_free(k);
		if (!strcmp(alg, "ES256")) {
			const unsigned char *p = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
			ck_assert_ptr_nonnull(es);
			unsigned char raw[64];
			BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
			ECDSA_SIG_free(es);
			memcpy(sig, raw, 64);
			sl = 64;
		}
	}
	return gwt_strf("%s.%s", input, b64url(sig, sl));
}

static const char *bearer(const char *tok) { return gwt_strf("Authorization: Bearer %s", tok); }

static void openssl(const char *const argv[])
{
	const char *out, *err;
	int st = gwt_run("openssl", argv, NULL, 30000, &out, &err);
	ck_assert_msg(st == 0, "openssl %s: exit %d: %s", argv[1], st, err);
}

static void make_keys(void)
{
	const char *rsa[] = { "/usr/bin/openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
	                      "rsa_keygen_bits:2048", "-out", gwt_path("rsa.key"), NULL };
	const char *rsapub[] = { "/usr/bin/openssl", "pkey", "-in", gwt_path("rsa.key"), "-pubout",
	                         "-out", gwt_path("rsa.pem"), NULL };
	const char *ec[] = { "/usr/bin/openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
	                     "ec_paramgen_curve:P-256", "-out", gwt_path("ec.key"), NULL };
	const char *ecpub[] = { "/usr/bin/openssl", "pkey", "-in", gwt_path("ec.key"), "-pubout",
	                        "-out", gwt_path("ec.pem"), NULL };
	openssl(rsa);
	openssl(rsapub);
	openssl(ec);
	openssl(ecpub);
}

static const char jwt_rules[] =
	"route jh {\n    match path ^= \"/echo/jh\";\n"
	"    auth jwt secret=env(\"GW_TEST_JWT_SECRET\") leeway=30s iss=\"https://id.test\" "
	"aud=\"api\"\n        claims=\"sub:X-User, role:X-Role,n:X-N, groups:X-Groups\";\n"
	"    proxy o;\n}\n"
	"route jr {\n    match path ^= \"/echo/jr\";\n"
	"    auth jwt key=file(\"rsa.pem\") alg=RS256;\n    proxy o;\n}\n"
	"route je {\n    match path ^= \"/echo/je\";\n"
	"    auth jwt key=file(\"ec.pem\") alg=ES256 cookie=\"tok\";\n    proxy o;\n}\n"
	"route js {\n    match path ^= \"/echo/js\";\n"
	"    auth jwt secret=file(\"hs.secret\") alg=(HS384, HS512) header=\"X-Token\";\n"
	"    proxy o;\n}\n"
	"route jq {\n    match path ^= \"/echo/jq\";\n"
	"    auth jwt secret=\"literal-secret\" query=\"access_token\";\n    proxy o;\n}\n";

static const char *const SECRET = "s3cret-for-hs256-tests-0123456789";
static const char *const NO_TOKEN = "Bearer realm=\"gw\"";

static const char *invalid(const char *why)
{
	return gwt_strf("Bearer realm=\"gw\", error=\"invalid_token\", error_description=\"%s\"",
	                why);
}

static gwt_proc *start_jwt(int *port)
{
	make_keys();
	gwt_writef("hs.secret", "file-secret-1\n");
	const char *env[] = { gwt_strf("GW_TEST_JWT_SECRET=%s", SECRET), NULL };
	return start_env(port, env, "%s", jwt_rules);
}

START_TEST(jwt_hs256_claims)
{
	int port;
	gwt_proc *gwd = start_jwt(&port);
	long now = (long)time(NULL);
	const char *tok = jwt("HS256", "HS256", gwt_strf(
		"{\"sub\":\"alice\",\"role\":\"admin\",\"n\":42,\"groups\":[\"a\",\"b\"],"
		"\"iss\":\"https://id.test\",\"aud\":[\"web\",\"api\"],\"exp\":%ld}", now + 60),
		SECRET, NULL);
	/* the client's own X-Role and X-N are replaced, X-User too */
	gwt_resp *r = get(port, "/echo/jh", bearer(tok), "X-Role: root", "X-N: 0");
	expect_pass(r);
	ck_assert_str_eq(gwt_echo_hdr(r, "X-User"), "alice");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Role"), "admin");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-N"), "42");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Groups"), "[\"a\",\"b\"]");
	expect_log(gwd, "auth jwt: consumer alice (route jh)");
	/* a claim the token lacks: the client's header does not get through */
	tok = jwt("HS256", "HS256", gwt_strf("{\"sub\":\"bob\",\"iss\":\"https://id.test\","
	          "\"aud\":\"api\",\"exp\":%ld}", now + 60), SECRET, NULL);
	r = get(port, "/echo/jh", bearer(tok), "X-Role: admin", NULL);
	expect_pass(r);
	ck_assert_str_eq(gwt_echo_hdr(r, "X-User"), "bob");
	ck_assert_ptr_null(gwt_echo_hdr(r, "X-Role"));
	ck_assert_ptr_null(gwt_echo_hdr(r, "X-N"));
	/* "bearer" in any case, blanks around the token */
	expect_pass(get(port, "/echo/jh", gwt_strf("Authorization: bearer   %s ", tok), NULL, NULL));

	/* exp within the 30 s leeway passes, beyond it does not; exp and nbf */
	const char *base = "\"sub\":\"a\",\"iss\":\"https://id.test\",\"aud\":\"api\"";
	expect_pass(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		gwt_strf("{%s,\"exp\":%ld}", base, now - 10), SECRET, NULL)), NULL, NULL));
	expect_refusal(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		gwt_strf("{%s,\"exp\":%ld}", base, now - 100), SECRET, NULL)), NULL, NULL),
		401, invalid("token expired"));
	expect_refusal(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		gwt_strf("{%s,\"nbf\":%ld}", base, now + 300), SECRET, NULL)), NULL, NULL),
		401, invalid("token not yet valid"));
	expect_pass(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		gwt_strf("{%s,\"nbf\":%ld}", base, now + 10), SECRET, NULL)), NULL, NULL));
	/* iss and aud */
	expect_refusal(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		"{\"sub\":\"a\",\"iss\":\"https://evil.test\",\"aud\":\"api\"}", SECRET, NULL)),
		NULL, NULL), 401, invalid("wrong issuer"));
	expect_refusal(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		"{\"sub\":\"a\",\"iss\":\"https://id.test\",\"aud\":[\"web\"]}", SECRET, NULL)),
		NULL, NULL), 401, invalid("wrong audience"));
	expect_refusal(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		"{\"sub\":\"a\",\"iss\":\"https://id.test\"}", SECRET, NULL)),
		NULL, NULL), 401, invalid("wrong audience"));
	/* signed with another secret; HS512 where only HS256 is allowed */
	expect_refusal(get(port, "/echo/jh", bearer(jwt("HS256", "HS256",
		gwt_strf("{%s}", base), "not-the-secret", NULL)), NULL, NULL),
		401, invalid("bad signature"));
	expect_refusal(get(port, "/echo/jh", bearer(jwt("HS512", "HS512",
		gwt_strf("{%s}", base), SECRET, NULL)), NULL, NULL),
		401, invalid("algorithm not allowed"));
	/* no token, another scheme, garbage */
	expect_refusal(get(port, "/echo/jh", NULL, NULL, NULL), 401, NO_TOKEN);
	expect_refusal(get(port, "/echo/jh", "Authorization: Basic YTpi", NULL, NULL), 401, NO_TOKEN);
	expect_refusal(get(port, "/echo/jh", "Authorization: Bearer", NULL, NULL), 401, NO_TOKEN);
	expect_refusal(get(port, "/echo/jh", "Authorization: Bearer a.b.c", NULL, NULL), 401,
	               invalid("malformed token"));
}
END_TEST

START_TEST(jwt_attacks)
{
	int port;
	start_jwt(&port);
	const char *payload = "{\"sub\":\"admin\"}";
	/* alg none, with and without a signature */
	expect_refusal(get(port, "/echo/jr", bearer(jwt("none", "", payload, NULL, NULL)),
	                   NULL, NULL), 401, invalid("algorithm not allowed"));
	expect_refusal(get(port, "/echo/jh", bearer(jwt("none", "", payload, NULL, NULL)),
	                   NULL, NULL), 401, invalid("algorithm not allowed"));
	expect_refusal(get(port, "/echo/jh", bearer(jwt("none", "HS256", payload, SECRET, NULL)),
	                   NULL, NULL), 401, invalid("algorithm not allowed"));
	/* key confusion: HS256 signed with the RS256 public key as the secret */
	const char *pem = gwt_read("rsa.pem", NULL);
	ck_assert_ptr_nonnull(pem);
	expect_refusal(get(port, "/echo/jr", bearer(jwt("HS256", "HS256", payload, pem, NULL)),
	                   NULL, NULL), 401, invalid("algorithm not allowed"));
	/* a valid RS256 token passes; its payload swapped does not */
	const char *good = jwt("RS256", "RS256", "{\"sub\":\"user\",\"admin\":false}", NULL,
	                       "rsa.key");
	expect_pass(get(port, "/echo/jr", bearer(good), NULL, NULL));
	const char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
	const char *evil = b64url("{\"sub\":\"user\",\"admin\":true}", 28);
	const char *tampered = gwt_strf("%.*s.%s%s", (int)(d1 - good), good, evil, d2);
	expect_refusal(get(port, "/echo/jr", bearer(tampered), NULL, NULL), 401,
	               invalid("bad signature"));
	/* an ES256 token where RS256 is configured */
	expect_refusal(get(port, "/echo/jr", bearer(jwt("ES256", "ES256", payload, NULL,
	                   "ec.key")), NULL, NULL), 401, invalid("algorithm not allowed"));
	/* an RS256 token signed with another key */
	const char *other[] = { "/usr/bin/openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
	                        "rsa_keygen_bits:2048", "-out", gwt_path("other.key"), NULL };
	openssl(other);
	expect_refusal(get(port, "/echo/jr", bearer(jwt("RS256", "RS256", payload, NULL,
	                   "other.key")), NULL, NULL), 401, invalid("bad signature"));
}
END_TEST

START_TEST(jwt_es256_sources_and_secret_file)
{
	int port;
	gwt_proc *gwd = start_jwt(&port);
	/* ES256 from a cookie */
	const char *es = jwt("ES256", "ES256", "{\"sub\":\"eve\"}", NULL, "ec.key");
	expect_pass(get(port, "/echo/je", gwt_strf("Cookie: a=1; tok=%s", es), NULL, NULL));
	expect_log(gwd, "auth jwt: consumer eve (route je)");
	expect_refusal(get(port, "/echo/je", bearer(es), NULL, NULL), 401, NO_TOKEN);
	/* a tampered ES256 signature */
	char *bad = strdup(es);
	char *last = bad + strlen(bad) - 3;
	*last = *last == 'Q' ? 'R' : 'Q';
	expect_refusal(get(port, "/echo/je", gwt_strf("Cookie: tok=%s", bad), NULL, NULL), 401,
	               invalid("bad signature"));
	free(bad);
	/* from the query */
	const char *lt = jwt("HS256", "HS256", "{\"sub\":\"q\"}", "literal-secret", NULL);
	gwt_resp *r = get(port, gwt_strf("/echo/jq?access_token=%s&x=1", lt), NULL, NULL, NULL);
	expect_pass(r);
	ck_assert_str_eq(gwt_echo_str(r, "query"), gwt_strf("access_token=%s&x=1", lt));
	expect_refusal(get(port, "/echo/jq", bearer(lt), NULL, NULL), 401, NO_TOKEN);
	/* from a header, HS384 and HS512 allowed, secret from a file */
	const char *h384 = jwt("HS384", "HS384", "{\"sub\":\"f\"}", "file-secret-1", NULL);
	const char *h512 = jwt("HS512", "HS512", "{\"sub\":\"f\"}", "file-secret-1", NULL);
	expect_pass(get(port, "/echo/js", gwt_strf("X-Token: %s", h384), NULL, NULL));
	expect_pass(get(port, "/echo/js", gwt_strf("X-Token: Bearer %s", h512), NULL, NULL));
	expect_refusal(get(port, "/echo/js", gwt_strf("X-Token: %s", jwt("HS256", "HS256",
		"{\"sub\":\"f\"}", "file-secret-1", NULL)), NULL, NULL), 401,
		invalid("algorithm not allowed"));
	/* the secret file changes: old tokens stop working, new ones work */
	gwt_writef("hs.secret", "file-secret-2\n");
	const char *n384 = jwt("HS384", "HS384", "{\"sub\":\"f\"}", "file-secret-2", NULL);
	ck_assert_msg(eventually(port, "/echo/js", gwt_strf("X-Token: %s", n384), 200, 5000),
	              "new secret not picked up:\n%s", gwt_stderr(gwd));
	expect_refusal(get(port, "/echo/js", gwt_strf("X-Token: %s", h384), NULL, NULL), 401,
	               invalid("bad signature"));
}
END_TEST

START_TEST(jwt_bad_secrets_and_keys_refuse_table)
{
	make_keys();
	gwt_writef("hs.secret", "x\n");
	gwt_writef("rules.gwr", "upstream o {\n    server 127.0.0.1:1;\n}\n%s", jwt_rules);
	gwt_compile("rules.gwr");
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\nadmin: {listen: 'off'}\n",
	           gwt_free_port());
	const char *argv[] = { gwt_bin("gwd"), "-t", "-c", gwt_path("gw.yaml"), NULL };
	const char *out, *err;
	const char *env[] = { "GW_TEST_JWT_SECRET=", NULL };
	/* unset (the harness's environment does not have it) */
	unsetenv("GW_TEST_JWT_SECRET");
	ck_assert_int_eq(gwt_run("gwd-t", argv, NULL, 10000, &out, &err), 1);
	const char *want = gwt_strf("plugin auth_jwt: route jh (%s:4): auth jwt: environment "
	                            "variable GW_TEST_JWT_SECRET is not set", gwt_path("rules.gwr"));
	ck_assert_msg(strstr(err, want) != NULL, "stderr lacks\n%s\n:\n%s", want, err);
	/* set but empty */
	ck_assert_int_eq(gwt_run("gwd-t", argv, env, 10000, &out, &err), 1);
	ck_assert_msg(strstr(err, "environment variable GW_TEST_JWT_SECRET is empty") != NULL,
	              "%s", err);
	/* set: fine */
	const char *env2[] = { "GW_TEST_JWT_SECRET=abc", NULL };
	ck_assert_msg(gwt_run("gwd-t", argv, env2, 10000, &out, &err) == 0, "%s", err);

	/* a key that cannot verify the algorithm; an empty secret file */
	gwt_writef("rules.gwr", "upstream o {\n    server 127.0.0.1:1;\n}\n"
	           "route e {\n    match any;\n    auth jwt key=file(\"rsa.pem\") alg=ES256;\n"
	           "    proxy o;\n}\n");
	gwt_compile("rules.gwr");
	ck_assert_int_eq(gwt_run("gwd-t", argv, NULL, 10000, &out, &err), 1);
	want = gwt_strf("plugin auth_jwt: route e (%s:4): auth jwt: %s holds an RSA key, which "
	                "cannot verify ES256", gwt_path("rules.gwr"), gwt_path("rsa.pem"));
	ck_assert_msg(strstr(err, want) != NULL, "stderr lacks\n%s\n:\n%s", want, err);
	gwt_writef("hs.secret", "\n");
	gwt_writef("rules.gwr", "upstream o {\n    server 127.0.0.1:1;\n}\n"
	           "route s {\n    match any;\n    auth jwt secret=file(\"hs.secret\");\n"
	           "    proxy o;\n}\n");
	gwt_compile("rules.gwr");
	ck_assert_int_eq(gwt_run("gwd-t", argv, NULL, 10000, &out, &err), 1);
	want = gwt_strf("plugin auth_jwt: route s (%s:4): auth jwt: %s: the secret is empty",
	                gwt_path("rules.gwr"), gwt_path("hs.secret"));
	ck_assert_msg(strstr(err, want) != NULL, "stderr lacks\n%s\n:\n%s", want, err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth");
	TCase *k = tcase_create("key");
	tcase_set_timeout(k, 60);
	tcase_add_test(k, key_header);
	tcase_add_test(k, key_query_and_cookie);
	tcase_add_test(k, key_file_changes_without_reload);
	tcase_add_test(k, key_file_missing_refuses_table);
	suite_add_tcase(s, k);
	TCase *b = tcase_create("basic");
	tcase_set_timeout(b, 60);
	tcase_add_test(b, basic_bcrypt_and_sha_crypt);
	tcase_add_test(b, basic_does_not_block_the_worker);
	tcase_add_test(b, basic_file_change);
	suite_add_tcase(s, b);
	TCase *j = tcase_create("jwt");
	tcase_set_timeout(j, 90);
	tcase_add_test(j, jwt_hs256_claims);
	tcase_add_test(j, jwt_attacks);
	tcase_add_test(j, jwt_es256_sources_and_secret_file);
	tcase_add_test(j, jwt_bad_secrets_and_keys_refuse_table);
	suite_add_tcase(s, j);
	return gwt_main(s, "gwd gwc");
}

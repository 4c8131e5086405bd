/*
 * test_tls.c — TLS in gwd with real processes on 127.0.0.1 and
 * certificates made by each test with `openssl req` / `openssl x509` in
 * its temp directory (a CA, server certificates for a.test and b.test +
 * *.b.test, a client certificate; a second CA for "wrong" cases):
 *
 *   - HTTPS through gwd (libcurl with CAINFO, and the real curl with
 *     --cacert); X-Forwarded-Proto and ${scheme} say https on the TLS
 *     listener and http on the plain one
 *   - SNI picks the certificate (openssl s_client -servername): exact,
 *     wildcard, default for an unknown name and for no SNI
 *   - TLS 1.0 / 1.1 refused (a client that can speak them: checked
 *     against openssl s_server), min_version 1.3 refuses 1.2
 *   - mutual TLS: a good client certificate passes and its subject
 *     reaches the origin through set_header "${tls.client_subject}"; no
 *     certificate, or one from another CA, is refused
 *   - https:// upstreams (a second gwd with TLS in front of the origin):
 *     tls_ca good -> 200, wrong CA -> 502, tls_verify off -> 200, no
 *     tls_sni (certificate does not name 127.0.0.1) -> 502, client
 *     certificate for upstream mTLS, and pooled connections never cross
 *     upstreams with different TLS settings
 *   - reload: new certificates on SIGHUP, a bad certificate keeps the old
 *     one (logged; POST /reload says why), connections made before a
 *     reload keep working
 *   - gwd -t names the file that is wrong (key not matching, not PEM)
 */
#include <config.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* ------------------------------------------------------------ tools */
static const char *tool(const char *name)
{
	static const char *const dirs[] = { "/usr/bin", "/usr/local/bin", "/bin", NULL };
	for (int i = 0; dirs[i]; i++) {
		const char *p = gwt_strf("%s/%s", dirs[i], name);
		if (access(p, X_OK) == 0)
			return p;
	}
	ck_abort_msg("%s not found", name);
	return NULL;
}

/* run openssl with the given arguments (NULL-terminated); asserts exit 0 */
static void ossl(const char *first, ...)
{
	const char *argv[40];
	size_t n = 0;
	argv[n++] = tool("openssl");
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a && n < 39; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	const char *out, *err;
	int st = gwt_run("openssl", argv, NULL, 20000, &out, &err);
	ck_assert_msg(st == 0, "openssl %s: exit %d\n%s", first, st, err);
}

/* ------------------------------------------------------------- PKI */
/* a self-signed CA: NAME.pem, NAME.key */
static void make_ca(const char *name, const char *cn)
{
	ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
	     "-keyout", gwt_path(gwt_strf("%s.key", name)), "-out", gwt_path(gwt_strf("%s.pem", name)),
	     "-days", "2", "-subj", gwt_strf("/CN=%s", cn), NULL);
}

/* a certificate signed by CA: server (SAN = the DNS names in san,
 * "DNS:a,DNS:b"), client (san NULL: clientAuth), or with the extension
 * line after "ext:" */
static void make_leaf(const char *name, const char *ca, const char *subj, const char *san,
                      int serial)
{
	const char *key = gwt_path(gwt_strf("%s.key", name));
	const char *csr = gwt_path(gwt_strf("%s.csr", name));
	const char *ext = gwt_writef(gwt_strf("%s.ext", name), "%s\n",
	                             !san ? "extendedKeyUsage=clientAuth"
	                             : !strncmp(san, "ext:", 4) ? san + 4
	                             : gwt_strf("subjectAltName=%s", san));
	ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
	     "-keyout", key, "-out", csr, "-subj", subj, NULL);
	ossl("x509", "-req", "-in", csr, "-CA", gwt_path(gwt_strf("%s.pem", ca)),
	     "-CAkey", gwt_path(gwt_strf("%s.key", ca)), "-set_serial", gwt_strf("%d", serial),
	     "-days", "2", "-extfile", ext, "-out", gwt_path(gwt_strf("%s.pem", name)), NULL);
}

/* ca, a (a.test), b (b.test, *.b.test), client; ca2 and intruder (a
 * client certificate from ca2), b2 (b.test from ca2) */
static void make_pki(void)
{
	make_ca("ca", "gw test CA");
	make_leaf("a", "ca", "/CN=a.test", "DNS:a.test", 101);
	make_leaf("b", "ca", "/CN=b.test", "DNS:b.test,DNS:*.b.test", 102);
	make_leaf("client", "ca", "/CN=client one/O=gw test", NULL, 103);
	make_ca("ca2", "other CA");
	make_leaf("intruder", "ca2", "/CN=intruder", NULL, 201);
}

/* -------------------------------------------------------- HTTPS client */
typedef struct hres {
	int code;                  /* CURLcode */
	long status;
	char body[16384];
	size_t len;
	long connects;
	char err[CURL_ERROR_SIZE];
} hres;

static size_t hwrite(char *p, size_t sz, size_t nm, void *ud)
{
	hres *r = ud;
	size_t n = sz * nm, room = sizeof r->body - 1 - r->len;
	memcpy(r->body + r->len, p, n < room ? n : room);
	r->len += n < room ? n : room;
	r->body[r->len] = '\0';
	return n;
}

typedef struct hopt {
	const char *ca;            /* --cacert (gwt_path name); NULL: curl's default store */
	const char *cert, *key;    /* client certificate */
	long max_tls;              /* CURL_SSLVERSION_MAX_* or 0 */
	CURL *keep;                /* reuse this handle (keep-alive) */
} hopt;

/* GET https://HOST:port/path, HOST resolved to 127.0.0.1 */
static hres *hget(const char *host, int port, const char *path, const hopt *o)
{
	hres *r = calloc(1, sizeof *r);
	ck_assert_ptr_nonnull(r);
	CURL *e = o && o->keep ? o->keep : curl_easy_init();
	struct curl_slist *res = curl_slist_append(NULL, gwt_strf("%s:%d:127.0.0.1", host, port));
	curl_easy_setopt(e, CURLOPT_URL, gwt_strf("https://%s:%d%s", host, port, path));
	curl_easy_setopt(e, CURLOPT_RESOLVE, res);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, hwrite);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->err);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (o && o->ca)
		curl_easy_setopt(e, CURLOPT_CAINFO, gwt_path(o->ca));
	curl_easy_setopt(e, CURLOPT_SSLCERT, o && o->cert ? gwt_path(o->cert) : NULL);
	curl_easy_setopt(e, CURLOPT_SSLKEY, o && o->key ? gwt_path(o->key) : NULL);
	if (o && o->max_tls)
		curl_easy_setopt(e, CURLOPT_SSLVERSION, o->max_tls);
	r->code = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->connects);
	curl_easy_setopt(e, CURLOPT_RESOLVE, NULL);
	curl_slist_free_all(res);
	if (!(o && o->keep))
		curl_easy_cleanup(e);
	return r;
}

/* a request header as the origin's /echo saw it (NULL if absent) */
static const char *echo_hdr(const hres *r, const char *name)
{
	gwt_resp tmp = { .status = r->status, .body = (char *)r->body, .body_len = r->len };
	return gwt_echo_hdr(&tmp, name);
}

/* --------------------------------------------------------- s_client */
/* openssl s_client -connect 127.0.0.1:port + args; exit status, output */
static int sclient(int port, const char *out_name, const char *a1, const char *a2,
                   const char *a3, const char *a4, const char **out)
{
	const char *argv[16];
	size_t n = 0;
	argv[n++] = tool("openssl");
	argv[n++] = "s_client";
	argv[n++] = "-connect";
	argv[n++] = gwt_strf("127.0.0.1:%d", port);
	argv[n++] = "-nameopt";
	argv[n++] = "RFC2253";
	const char *extra[] = { a1, a2, a3, a4 };
	for (int i = 0; i < 4 && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	const char *err;
	int st = gwt_run(out_name, argv, NULL, 10000, out, &err);
	*out = gwt_strf("%s\n%s", *out ? *out : "", err ? err : "");
	return st;
}

/* the subject of the certificate gwd presents for sni (NULL: no SNI) */
static const char *served_subject(int port, const char *sni)
{
	const char *out;
	int st = sni ? sclient(port, "sclient", "-servername", sni, NULL, NULL, &out)
	             : sclient(port, "sclient", "-noservername", NULL, NULL, NULL, &out);
	ck_assert_msg(st == 0, "s_client exit %d:\n%s", st, out);
	const char *s = strstr(out, "\nsubject=");
	ck_assert_msg(s != NULL, "no subject in:\n%s", out);
	s += 9;
	size_t n = strcspn(s, "\r\n");
	return gwt_strf("%.*s", (int)n, s);
}

/* ------------------------------------------------------------- gwd */
static const char rules_echo[] =
	"upstream o { server 127.0.0.1:%d max_fails=0; }\n"
	"route r { match any;"
	" set_header request \"X-Subject\" \"${tls.client_subject}\";"
	" set_header request \"X-Scheme\" \"${scheme}\";"
	" proxy o; }\n";

/* rules NAME.gwr (printf with the origin port), NAME.yaml with a plain
 * listener on *plain (if plain != NULL) and tls: with the given body
 * (listen is added); returns the started gwd */
static gwt_proc *start_gwd(const char *name, const char *rules, int oport, const char *tls_body,
                           int *tls_port, int *plain, const char *extra_yaml)
{
	gwt_writef(gwt_strf("%s.gwr", name), rules, oport);
	gwt_compile(gwt_strf("%s.gwr", name));
	*tls_port = gwt_free_port();
	const char *pl = "";
	if (plain) {
		*plain = gwt_free_port();
		pl = gwt_strf("listen: 127.0.0.1:%d\n", *plain);
	}
	gwt_writef(gwt_strf("%s.yaml", name),
	           "%srules: %s.gwb\nthreads: 1\n%s"
	           "tls:\n  listen: 127.0.0.1:%d\n%s",
	           pl, name, extra_yaml ? extra_yaml : "admin: {listen: 'off'}\n", *tls_port,
	           tls_body);
	return gwt_gwd(gwt_strf("%s.yaml", name), *tls_port);
}

static const char tls_ab[] =
	"  cert: a.pem\n  key: a.key\n"
	"  certificates:\n    - {cert: b.pem, key: b.key}\n";

/* times needle occurs in p's stderr */
static int err_count(gwt_proc *p, const char *needle)
{
	int n = 0;
	for (const char *s = gwt_stderr(p); (s = strstr(s, needle)); s++)
		n++;
	return n;
}

static void wait_err_count(gwt_proc *p, const char *needle, int n)
{
	uint64_t end = gwt_now_ms() + 5000;
	while (err_count(p, needle) < n && gwt_now_ms() < end)
		gwt_sleep_ms(10);
	ck_assert_msg(err_count(p, needle) >= n, "'%s' not seen %d times in gwd's stderr:\n%s",
	              needle, n, gwt_stderr(p));
}

/* ============================================================== tests */

START_TEST(https_through_gwd)
{
	make_pki();
	origin *o = gwt_origin("o");
	int tport, pport;
	gwt_proc *g = start_gwd("gw", rules_echo, origin_port(o), tls_ab, &tport, &pport, NULL);

	hopt ho = { .ca = "ca.pem" };
	hres *r = hget("a.test", tport, "/echo?x=1", &ho);
	ck_assert_msg(r->code == 0, "curl %d: %s", r->code, r->err);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(echo_hdr(r, "X-Forwarded-Proto"), "https");
	ck_assert_str_eq(echo_hdr(r, "X-Scheme"), "https");
	ck_assert_str_eq(echo_hdr(r, "X-Subject"), "");      /* no client_ca */
	ck_assert_str_eq(echo_hdr(r, "Host"), gwt_strf("a.test:%d", tport));
	free(r);

	/* the same gwd, plain listener */
	gwt_resp *p = gwt_get(gwt_url(pport, "/echo"));
	ck_assert_int_eq(p->status, 200);
	ck_assert_str_eq(gwt_echo_hdr(p, "X-Forwarded-Proto"), "http");
	ck_assert_str_eq(gwt_echo_hdr(p, "X-Scheme"), "http");
	/* plain HTTP to the TLS port is not answered as HTTP */
	gwt_resp *x = gwt_get(gwt_url(tport, "/echo"));
	ck_assert_int_eq(x->status, 0);

	/* the real curl, once: verifies against --cacert, fails without it */
	const char *out, *err;
	const char *argv[] = { tool("curl"), "-sS", "--cacert", gwt_path("ca.pem"), "--resolve",
	                       gwt_strf("a.test:%d:127.0.0.1", tport),
	                       gwt_strf("https://a.test:%d/name", tport), NULL };
	ck_assert_int_eq(gwt_run("curl", argv, NULL, 10000, &out, &err), 0);
	ck_assert_str_eq(out, "o");
	const char *argv2[] = { tool("curl"), "-sS", "--resolve",
	                        gwt_strf("a.test:%d:127.0.0.1", tport),
	                        gwt_strf("https://a.test:%d/name", tport), NULL };
	ck_assert_int_eq(gwt_run("curl2", argv2, NULL, 10000, &out, &err), 60);  /* not trusted */
	/* the default certificate does not name b.test's siblings */
	const char *argv3[] = { tool("curl"), "-sS", "--cacert", gwt_path("ca.pem"), "--resolve",
	                        gwt_strf("c.test:%d:127.0.0.1", tport),
	                        gwt_strf("https://c.test:%d/name", tport), NULL };
	ck_assert_int_eq(gwt_run("curl3", argv3, NULL, 10000, &out, &err), 60);  /* name mismatch */

	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(sni_picks_the_certificate)
{
	make_pki();
	origin *o = gwt_origin("o");
	int tport;
	gwt_proc *g = start_gwd("gw", rules_echo, origin_port(o), tls_ab, &tport, NULL, NULL);
	ck_assert_str_eq(served_subject(tport, "a.test"), "CN=a.test");
	ck_assert_str_eq(served_subject(tport, "b.test"), "CN=b.test");
	ck_assert_str_eq(served_subject(tport, "B.Test"), "CN=b.test");     /* any case */
	ck_assert_str_eq(served_subject(tport, "x.b.test"), "CN=b.test");   /* *.b.test */
	ck_assert_str_eq(served_subject(tport, "y.x.b.test"), "CN=a.test"); /* one label only */
	ck_assert_str_eq(served_subject(tport, "other.test"), "CN=a.test"); /* default */
	ck_assert_str_eq(served_subject(tport, NULL), "CN=a.test");         /* no SNI */

	/* and HTTPS by name verifies with each */
	hopt ho = { .ca = "ca.pem" };
	hres *r = hget("x.b.test", tport, "/name", &ho);
	ck_assert_msg(r->code == 0, "curl %d: %s", r->code, r->err);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "o");
	free(r);
	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(old_tls_versions_refused)
{
	make_pki();
	origin *o = gwt_origin("o");
	int tport;
	gwt_proc *g = start_gwd("gw", rules_echo, origin_port(o), tls_ab, &tport, NULL, NULL);
	const char *out;
	/* this client can speak TLS 1.1 and 1.0: s_server accepts it */
	int sport = gwt_free_port();
	const char *sargv[] = { tool("openssl"), "s_server", "-accept", gwt_strf("%d", sport),
	                        "-cert", gwt_path("a.pem"), "-key", gwt_path("a.key"),
	                        "-cipher", "DEFAULT@SECLEVEL=0", "-www", NULL };
	gwt_proc *ss = gwt_spawn("s_server", sargv, NULL);
	ck_assert_int_eq(gwt_wait_port("127.0.0.1", sport, 5000), 0);
	int st = sclient(sport, "sc-ctl", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", NULL, &out);
	ck_assert_msg(st == 0 && strstr(out, "Protocol  : TLSv1.1") && !strstr(out, "(NONE)"),
	              "control: %d\n%s", st, out);
	gwt_stop(ss, SIGKILL, 1000);

	/* gwd refuses 1.1 and 1.0 from the same client, takes 1.2 and 1.3 */
	st = sclient(tport, "sc11", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", NULL, &out);
	ck_assert_msg(st != 0 && strstr(out, "New, (NONE), Cipher is (NONE)"), "TLS 1.1: %d\n%s", st, out);
	st = sclient(tport, "sc10", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0", NULL, &out);
	ck_assert_msg(st != 0 && strstr(out, "New, (NONE), Cipher is (NONE)"), "TLS 1.0: %d\n%s", st, out);
	st = sclient(tport, "sc12", "-tls1_2", NULL, NULL, NULL, &out);
	ck_assert_msg(st == 0 && strstr(out, "New, TLSv1.2, Cipher is "), "TLS 1.2: %d\n%s", st, out);
	st = sclient(tport, "sc13", "-tls1_3", NULL, NULL, NULL, &out);
	ck_assert_msg(st == 0 && strstr(out, "New, TLSv1.3, Cipher is "), "TLS 1.3: %d\n%s", st, out);
	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);

	/* min_version 1.3: 1.2 refused too */
	g = start_gwd("gw13", rules_echo, origin_port(o),
	              gwt_strf("%s  min_version: \"1.3\"\n", tls_ab), &tport, NULL, NULL);
	st = sclient(tport, "sc12b", "-tls1_2", NULL, NULL, NULL, &out);
	ck_assert_msg(st != 0 && strstr(out, "New, (NONE), Cipher is (NONE)"), "TLS 1.2: %d\n%s", st, out);
	st = sclient(tport, "sc13b", "-tls1_3", NULL, NULL, NULL, &out);
	ck_assert_msg(st == 0 && strstr(out, "New, TLSv1.3, Cipher is "), "TLS 1.3: %d\n%s", st, out);
	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(mutual_tls)
{
	make_pki();
	origin *o = gwt_origin("o");
	int tport, pport;
	gwt_proc *g = start_gwd("gw", rules_echo, origin_port(o),
	                        gwt_strf("%s  client_ca: ca.pem\n", tls_ab), &tport, &pport, NULL);
	/* a good client certificate: accepted, its subject reaches the origin */
	hopt good = { .ca = "ca.pem", .cert = "client.pem", .key = "client.key" };
	for (int v = 0; v < 2; v++) {
		good.max_tls = v ? CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2 : 0;
		hres *r = hget("a.test", tport, "/echo", &good);
		ck_assert_msg(r->code == 0, "curl %d: %s", r->code, r->err);
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(echo_hdr(r, "X-Subject"), "O=gw test,CN=client one");
		free(r);
	}
	/* exactly what openssl prints in RFC 2253 form */
	const char *argv[] = { tool("openssl"), "x509", "-in", gwt_path("client.pem"), "-noout",
	                       "-subject", "-nameopt", "RFC2253", NULL };
	const char *out, *err;
	ck_assert_int_eq(gwt_run("x509", argv, NULL, 5000, &out, &err), 0);
	ck_assert_str_eq(out, "subject=O=gw test,CN=client one\n");

	/* no client certificate: refused (TLS 1.3 and 1.2) */
	hopt none = { .ca = "ca.pem" };
	for (int v = 0; v < 2; v++) {
		none.max_tls = v ? CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2 : 0;
		hres *r = hget("a.test", tport, "/echo", &none);
		ck_assert_msg(r->code != 0 && r->status == 0, "no certificate: curl %d status %ld",
		              r->code, r->status);
		free(r);
	}
	/* a client certificate from another CA: refused, and logged */
	hopt bad = { .ca = "ca.pem", .cert = "intruder.pem", .key = "intruder.key" };
	hres *r = hget("a.test", tport, "/echo", &bad);
	ck_assert_msg(r->code != 0 && r->status == 0, "intruder: curl %d status %ld", r->code,
	              r->status);
	free(r);
	wait_err_count(g, "TLS client certificate refused (client 127.0.0.1, subject CN=intruder)", 1);
	/* from the right CA, but only for servers (extended key usage) */
	make_leaf("srvonly", "ca", "/CN=server only", "ext:extendedKeyUsage=serverAuth", 104);
	hopt so = { .ca = "ca.pem", .cert = "srvonly.pem", .key = "srvonly.key" };
	r = hget("a.test", tport, "/echo", &so);
	ck_assert_msg(r->code != 0 && r->status == 0, "server-only: curl %d status %ld", r->code,
	              r->status);
	free(r);
	wait_err_count(g, "TLS client certificate refused (client 127.0.0.1, subject CN=server only)",
	               1);
	ck_assert_int_eq(origin_count(o), 2);

	/* the plain listener has no client certificate: the subject is empty */
	gwt_resp *p = gwt_get(gwt_url(pport, "/echo"));
	ck_assert_int_eq(p->status, 200);
	ck_assert_str_eq(gwt_echo_hdr(p, "X-Subject"), "");
	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);
}
END_TEST

/* gwd B: TLS (certificate b.test, client_ca ca) in front of the origin;
 * gwd A: plain, with https:// upstreams to B */
START_TEST(upstream_https)
{
	make_pki();
	origin *o = gwt_origin("o");
	int bport, aport;
	gwt_proc *gb = start_gwd("b", rules_echo, origin_port(o),
	                         "  cert: b.pem\n  key: b.key\n  client_ca: ca.pem\n", &bport, NULL,
	                         NULL);
	const char *ups = gwt_strf("server https://127.0.0.1:%d max_fails=0;", bport);
	const char *mtls = "tls_cert \"client.pem\"; tls_key \"client.key\";";
	gwt_writef("a.gwr",
	           "upstream good { %s tls_ca \"ca.pem\"; tls_sni \"b.test\"; %s }\n"
	           "upstream wrongca { %s tls_ca \"ca2.pem\"; tls_sni \"b.test\"; %s }\n"
	           "upstream noverify { %s tls_ca \"ca2.pem\"; tls_verify off; %s }\n"
	           "upstream nosni { %s tls_ca \"ca.pem\"; %s }\n"
	           "upstream nocert { %s tls_ca \"ca.pem\"; tls_sni \"x.b.test\"; }\n"
	           "upstream wild { %s tls_ca \"ca.pem\"; tls_sni \"x.b.test\"; %s }\n"
	           "upstream retry { server https://127.0.0.1:%d max_fails=0; %s"
	           " tls_ca \"ca.pem\"; tls_sni \"b.test\"; %s }\n"
	           "route good { match path ^= \"/good/\"; rewrite path strip_prefix \"/good\"; proxy good; }\n"
	           "route wrongca { match path ^= \"/wrongca/\"; rewrite path strip_prefix \"/wrongca\"; proxy wrongca; }\n"
	           "route noverify { match path ^= \"/noverify/\"; rewrite path strip_prefix \"/noverify\"; proxy noverify; }\n"
	           "route nosni { match path ^= \"/nosni/\"; rewrite path strip_prefix \"/nosni\"; proxy nosni; }\n"
	           "route nocert { match path ^= \"/nocert/\"; rewrite path strip_prefix \"/nocert\"; proxy nocert; }\n"
	           "route wild { match path ^= \"/wild/\"; rewrite path strip_prefix \"/wild\"; proxy wild; }\n"
	           "route retry { match path ^= \"/retry/\"; rewrite path strip_prefix \"/retry\"; proxy retry; }\n",
	           ups, mtls, ups, mtls, ups, mtls, ups, mtls, ups, ups, mtls, origin_port(o), ups, mtls);
	gwt_compile("a.gwr");
	aport = gwt_free_port();
	gwt_writef("a.yaml", "listen: 127.0.0.1:%d\nrules: a.gwb\nthreads: 1\nadmin: {listen: 'off'}\n",
	           aport);
	gwt_proc *ga = gwt_gwd("a.yaml", aport);

	/* verified, SNI b.test, client certificate: B's origin sees it all */
	gwt_client *cl = gwt_client_new();
	gwt_req q = { .url = gwt_url(aport, "/good/echo"), .client = cl };
	gwt_resp *r = gwt_http(&q);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Subject"), "O=gw test,CN=client one");
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-Proto"), "https");   /* set by B */
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Forwarded-For"), "127.0.0.1, 127.0.0.1");
	r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/wild/echo"), .client = cl });
	ck_assert_int_eq(r->status, 200);                   /* *.b.test */
	/* verification fails: 502 */
	r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/wrongca/echo"), .client = cl });
	ck_assert_int_eq(r->status, 502);
	ck_assert_msg(strstr(r->body, "\"upstream connect error\""), "%s", r->body);
	/* a failed handshake (the first server speaks plain HTTP) is a connect
	 * error: retried on the next server, as nginx's proxy_next_upstream */
	for (int i = 0; i < 4; i++) {
		r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/retry/echo"), .client = cl });
		ck_assert_int_eq(r->status, 200);
	}
	r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/nosni/echo"), .client = cl });
	ck_assert_int_eq(r->status, 502);                   /* b.test's certificate, asked 127.0.0.1 */
	/* tls_verify off: the wrong CA does not matter */
	r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/noverify/echo"), .client = cl });
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(gwt_echo_hdr(r, "X-Subject"), "O=gw test,CN=client one");
	/* B requires a client certificate */
	r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/nocert/echo"), .client = cl });
	ck_assert_int_eq(r->status, 502);

	/* pooled connections: alternating, the good one's kept-alive
	 * connection must never serve the others (their settings differ) */
	uint64_t before = origin_count(o);
	for (int i = 0; i < 6; i++) {
		r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/good/echo"), .client = cl });
		ck_assert_int_eq(r->status, 200);
		r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/wrongca/echo"), .client = cl });
		ck_assert_int_eq(r->status, 502);
		r = gwt_http(&(gwt_req){ .url = gwt_url(aport, "/nocert/echo"), .client = cl });
		ck_assert_int_eq(r->status, 502);
	}
	ck_assert_int_eq(origin_count(o) - before, 6);
	ck_assert_int_eq(gwt_stop(ga, SIGTERM, 5000), 0);
	ck_assert_int_eq(gwt_stop(gb, SIGTERM, 5000), 0);
}
END_TEST

START_TEST(reload_certificates)
{
	make_pki();
	origin *o = gwt_origin("o");
	int tport, aport = gwt_free_port();
	gwt_proc *g = start_gwd("gw", rules_echo, origin_port(o), tls_ab, &tport, NULL,
	                        gwt_strf("admin: {listen: 127.0.0.1:%d}\n", aport));
	const char *fp0 = served_subject(tport, "a.test");
	ck_assert_str_eq(fp0, "CN=a.test");

	/* a keep-alive HTTPS connection made before any reload */
	CURL *keep = curl_easy_init();
	hopt ho = { .ca = "ca.pem", .keep = keep };
	hres *r = hget("a.test", tport, "/name", &ho);
	ck_assert_msg(r->code == 0 && r->status == 200, "curl %d: %s", r->code, r->err);
	free(r);

	/* a new certificate for a.test (another subject, same name): served
	 * after SIGHUP */
	make_leaf("a", "ca", "/CN=a.test/O=renewed", "DNS:a.test", 301);
	gwt_signal(g, SIGHUP);
	wait_err_count(g, "TLS certificates reloaded", 1);
	ck_assert_str_eq(served_subject(tport, "a.test"), "O=renewed,CN=a.test");
	ck_assert_str_eq(served_subject(tport, "b.test"), "CN=b.test");

	/* the old connection still works (its handshake's certificates live
	 * until it closes) */
	r = hget("a.test", tport, "/name", &ho);
	ck_assert_msg(r->code == 0 && r->status == 200, "curl %d: %s", r->code, r->err);
	ck_assert_int_eq(r->connects, 0);
	free(r);

	/* a bad certificate: logged, the old one stays */
	gwt_writef("a.pem", "not a certificate\n");
	gwt_signal(g, SIGHUP);
	wait_err_count(g, "reload failed, keeping generation", 1);
	ck_assert_msg(strstr(gwt_stderr(g), gwt_strf("tls.cert %s: not a PEM certificate",
	                                             gwt_path("a.pem"))), "%s", gwt_stderr(g));
	ck_assert_str_eq(served_subject(tport, "a.test"), "O=renewed,CN=a.test");
	r = hget("a.test", tport, "/name", &(hopt){ .ca = "ca.pem" });
	ck_assert_msg(r->code == 0 && r->status == 200, "curl %d: %s", r->code, r->err);
	free(r);
	/* the admin API's reload says why */
	gwt_resp *ar = gwt_http(&(gwt_req){ .method = "POST",
	                                    .url = gwt_url(aport, "/reload"), .has_body = 1 });
	ck_assert_msg(ar->status == 409 && strstr(ar->body, "not a PEM certificate"),
	              "%ld %s", ar->status, ar->body);

	/* a key that is not the certificate's: the same */
	make_leaf("a", "ca", "/CN=a.test/O=third", "DNS:a.test", 302);
	gwt_write("a.key", gwt_read("b.key", NULL), strlen(gwt_read("b.key", NULL)));
	gwt_signal(g, SIGHUP);
	wait_err_count(g, "reload failed, keeping generation", 3);
	ck_assert_msg(strstr(gwt_stderr(g), gwt_strf("tls.key %s does not match the certificate "
	                                             "tls.cert %s", gwt_path("a.key"),
	                                             gwt_path("a.pem"))), "%s", gwt_stderr(g));
	ck_assert_str_eq(served_subject(tport, "a.test"), "O=renewed,CN=a.test");

	/* many reloads with the kept connection in use */
	make_leaf("a", "ca", "/CN=a.test/O=fourth", "DNS:a.test", 303);
	for (int i = 0; i < 20; i++) {
		gwt_signal(g, SIGHUP);
		wait_err_count(g, "TLS certificates reloaded", 2 + i);
		r = hget("a.test", tport, "/name", &ho);
		ck_assert_msg(r->code == 0 && r->status == 200, "curl %d: %s", r->code, r->err);
		ck_assert_int_eq(r->connects, 0);
		free(r);
	}
	ck_assert_str_eq(served_subject(tport, "a.test"), "O=fourth,CN=a.test");
	curl_easy_cleanup(keep);
	ck_assert_int_eq(gwt_stop(g, SIGTERM, 5000), 0);
}
END_TEST

/* gwd -t: exit status and stderr */
static int gwd_t(const char *yaml, const char **err)
{
	const char *argv[] = { gwt_bin("gwd"), "-t", "-c", gwt_path(yaml), NULL };
	const char *out;
	return gwt_run("gwd-t", argv, NULL, 20000, &out, err);
}

START_TEST(check_names_the_wrong_file)
{
	make_pki();
	gwt_writef("r.gwr", "route r { match any; respond 200 \"ok\"; }\n");
	gwt_compile("r.gwr");
	const char *head = "listen: 127.0.0.1:1\nrules: r.gwb\ntls:\n  listen: 127.0.0.1:2\n";
	const char *err;
	gwt_writef("ok.yaml", "%s%s  client_ca: ca.pem\n", head, tls_ab);
	ck_assert_msg(gwd_t("ok.yaml", &err) == 0, "%s", err);

	gwt_writef("k.yaml", "%s  cert: a.pem\n  key: b.key\n", head);
	ck_assert_int_eq(gwd_t("k.yaml", &err), 1);
	ck_assert_str_eq(err, gwt_strf("gwd: tls.key %s does not match the certificate tls.cert %s\n",
	                               gwt_path("b.key"), gwt_path("a.pem")));

	gwt_writef("k2.yaml", "%s  cert: a.pem\n  key: a.key\n  certificates:\n"
	           "    - {cert: b.pem, key: b.key}\n    - {cert: client.pem, key: a.key}\n", head);
	ck_assert_int_eq(gwd_t("k2.yaml", &err), 1);
	ck_assert_str_eq(err, gwt_strf("gwd: tls.certificates[1].key %s does not match the "
	                               "certificate tls.certificates[1].cert %s\n",
	                               gwt_path("a.key"), gwt_path("client.pem")));

	gwt_writef("junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
	gwt_writef("c.yaml", "%s  cert: junk.pem\n  key: a.key\n", head);
	ck_assert_int_eq(gwd_t("c.yaml", &err), 1);
	ck_assert_msg(strstr(err, gwt_strf("gwd: tls.cert %s: not a PEM certificate",
	                                   gwt_path("junk.pem"))), "%s", err);

	gwt_writef("pk.yaml", "%s  cert: a.pem\n  key: a.pem\n", head);
	ck_assert_int_eq(gwd_t("pk.yaml", &err), 1);
	ck_assert_msg(strstr(err, gwt_strf("gwd: tls.key %s: not a PEM private key",
	                                   gwt_path("a.pem"))), "%s", err);

	gwt_writef("ca.yaml", "%s%s  client_ca: a.key\n", head, tls_ab);
	ck_assert_int_eq(gwd_t("ca.yaml", &err), 1);
	ck_assert_msg(strstr(err, gwt_strf("gwd: tls.client_ca %s:", gwt_path("a.key"))), "%s", err);

	/* configuration errors, with their position */
	gwt_writef("v.yaml", "%s%s  min_version: \"1.1\"\n", head, tls_ab);
	ck_assert_int_eq(gwd_t("v.yaml", &err), 1);
	ck_assert_msg(strstr(err, gwt_strf("%s:9:16: tls.min_version: TLS 1.0 and 1.1 are not "
	                                   "supported (use 1.2 or 1.3)", gwt_path("v.yaml"))),
	              "%s", err);
	gwt_writef("m.yaml", "%s  cert: missing.pem\n  key: a.key\n", head);
	ck_assert_int_eq(gwd_t("m.yaml", &err), 1);
	ck_assert_msg(strstr(err, gwt_strf("%s:5:9: tls.cert %s: No such file or directory",
	                                   gwt_path("m.yaml"), gwt_path("missing.pem"))), "%s", err);
	gwt_writef("n.yaml", "%s", head);
	ck_assert_int_eq(gwd_t("n.yaml", &err), 1);
	ck_assert_msg(strstr(err, "tls: 'cert' and 'key' are required"), "%s", err);
	gwt_writef("d.yaml", "listen: 127.0.0.1:2\nrules: r.gwb\ntls:\n  listen: 127.0.0.1:2\n%s",
	           tls_ab);
	ck_assert_int_eq(gwd_t("d.yaml", &err), 1);
	ck_assert_msg(strstr(err, "tls.listen 127.0.0.1:2 is also in listen"), "%s", err);
}
END_TEST

int main(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	Suite *s = suite_create("tls");
	TCase *t = tcase_create("tls");
	tcase_set_timeout(t, 90);
	tcase_add_test(t, https_through_gwd);
	tcase_add_test(t, sni_picks_the_certificate);
	tcase_add_test(t, old_tls_versions_refused);
	tcase_add_test(t, mutual_tls);
	tcase_add_test(t, upstream_https);
	tcase_add_test(t, reload_certificates);
	tcase_add_test(t, check_names_the_wrong_file);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

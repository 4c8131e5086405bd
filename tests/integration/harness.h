/*
 * harness.h — black-box integration tests of gw, written in C with Check.
 *
 * A test starts real programs (gwd, gwc, gw-origin) or in-process origins on
 * 127.0.0.1, writes its rules and gateway.yaml into a temp directory of its
 * own, talks HTTP to them with libcurl or raw sockets, and asserts exact
 * statuses, headers and bodies.
 *
 * Skeleton:
 *
 *   #include <config.h>
 *   #include "harness.h"
 *
 *   START_TEST(proxies_get)
 *   {
 *       origin *o = gwt_origin("a");                    // stopped at exit
 *       int port = gwt_free_port();
 *       gwt_writef("rules.gwr", "upstream a { server 127.0.0.1:%d; }\n"
 *                  "route r { match any; proxy a; }\n", origin_port(o));
 *       gwt_compile("rules.gwr");                       // -> rules.gwb
 *       gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: rules.gwb\n"
 *                  "admin: {listen: 'off'}\n", port);
 *       gwt_proc *gwd = gwt_gwd("gw.yaml", port);       // waits for the port
 *       gwt_resp *r = gwt_get(gwt_url(port, "/echo?x=1"));
 *       ck_assert_int_eq(r->status, 200);
 *       ck_assert_str_eq(gwt_hdr(r, "X-Origin-Name"), "a");
 *       ck_assert_int_eq(gwt_stop(gwd, SIGTERM, 5000), 0);
 *   }
 *   END_TEST
 *
 *   int main(void)
 *   {
 *       Suite *s = suite_create("proxy");
 *       TCase *t = tcase_create("basic");
 *       tcase_set_timeout(t, 30);
 *       tcase_add_test(t, proxies_get);
 *       suite_add_tcase(s, t);
 *       return gwt_main(s, "gwd");     // exit 77 (skip) if gwd is not built
 *   }
 *
 * Build (in a tests/AREA.am fragment):
 *   check_PROGRAMS += tests/integration/test_foo
 *   TESTS += tests/integration/test_foo
 *   tests_integration_test_foo_CFLAGS = $(GWT_CFLAGS)
 *   tests_integration_test_foo_LDADD = $(GWT_LIBS)
 * `make check` sets GW_BUILDDIR and GW_SRCDIR (AM_TESTS_ENVIRONMENT in
 * tests/integration.am); run by hand, a test falls back to the current
 * directory and $(srcdir) of the build (GW_SRCDIR should then be set).
 *
 * Isolation and cleanup. gwt_main runs every test in a forked child
 * (CK_FORK, whatever the environment says). Each test gets its own temp
 * directory under one base directory per program; the base is removed when
 * every test passed, kept (and its path printed) when one failed, or always
 * kept with GWT_KEEP=1. Processes started by the harness are killed when the
 * test process ends, however it ends: at exit (passed or failed assertion)
 * the harness SIGKILLs their process groups and reaps them, and each child is
 * started with PR_SET_PDEATHSIG=SIGKILL, so even a test killed by Check's
 * timeout leaves nothing running.
 *
 * Ownership. Strings, responses and JSON values the harness returns are
 * owned by the harness and freed when the test ends, unless said otherwise;
 * tests do not free them (and leak-checking builds stay clean).
 *
 * Failures inside the helpers that "assert" abort the test with a message
 * that names what failed and includes the tail of the program's stderr.
 */
#ifndef GW_HARNESS_H
#define GW_HARNESS_H

#include <check.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "origin.h"

/* ----------------------------------------------------------- runner */

/* Run the suite (fork mode), manage the temp directories; returns the exit
 * status for main: 0 all passed, 1 a test failed, 77 (automake's SKIP) when
 * one of the programs named in `needs` (space-separated, e.g. "gwd gwc") is
 * not built in GW_BUILDDIR. needs may be NULL. */
int gwt_main(Suite *s, const char *needs);

/* ------------------------------------------------- files and paths */

const char *gwt_builddir(void);          /* $GW_BUILDDIR or "." */
const char *gwt_srcdir(void);            /* $GW_SRCDIR or "." */
const char *gwt_bin(const char *prog);   /* GW_BUILDDIR/prog */
int gwt_have_bin(const char *prog);      /* 1 if GW_BUILDDIR/prog is executable */
const char *gwt_dir(void);               /* this test's temp directory */
const char *gwt_path(const char *name);  /* gwt_dir()/name (absolute names kept) */
/* printf into a harness-owned string */
const char *gwt_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write a file (name relative to gwt_dir(), missing directories created) by
 * writing a temp file and renaming it over the name (atomic, like gwc);
 * asserts; returns the absolute path. */
const char *gwt_write(const char *name, const void *data, size_t len);
const char *gwt_writef(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* the whole file, NUL-terminated (len may be NULL); NULL if unreadable */
const char *gwt_read(const char *name, size_t *len);

/* ------------------------------------------------------- processes */

typedef struct gwt_proc gwt_proc;

/* Start argv[0] (a path) with argv, in its own process group, stdin from
 * /dev/null, stdout and stderr to gwt_dir()/NAME.out and NAME.err. env: extra
 * "NAME=value" entries (NULL-terminated; may be NULL) added to the
 * environment. Asserts that the fork/exec worked (an exec failure shows as
 * exit status 127). */
gwt_proc *gwt_spawn(const char *name, const char *const argv[], const char *const env[]);
pid_t gwt_pid(const gwt_proc *p);
/* output so far (snapshot, valid until the next call for the same stream) */
const char *gwt_stdout(gwt_proc *p);
const char *gwt_stderr(gwt_proc *p);
/* Wait until stdout or stderr contains needle: 0, or -1 on timeout or when
 * the process exited without printing it. */
int gwt_wait_output(gwt_proc *p, const char *needle, int timeout_ms);
/* Wait for a stdout line starting with prefix; copies the rest of that line
 * into rest. 0 or -1 (timeout / exited). */
int gwt_wait_line(gwt_proc *p, const char *prefix, char *rest, size_t restlen,
                  int timeout_ms);
/* "listening HOST:PORT" on stdout (gw-origin; gwd if it prints one):
 * returns PORT, or -1 */
int gwt_wait_listening(gwt_proc *p, int timeout_ms);
/* signal the process group */
int gwt_signal(gwt_proc *p, int sig);
/* Wait for exit: the exit code (0..255), 128+N when killed by signal N, or
 * -1 if still running after timeout_ms. Repeated calls return the same. */
int gwt_wait(gwt_proc *p, int timeout_ms);
int gwt_running(gwt_proc *p);
/* Send sig, wait up to timeout_ms; if still running, SIGKILL the group and
 * return -1; otherwise the status as gwt_wait. */
int gwt_stop(gwt_proc *p, int sig, int timeout_ms);
/* Run to completion: the status as gwt_wait, -1 if it had to be killed
 * after timeout_ms. out/err (may be NULL) get its output. */
int gwt_run(const char *name, const char *const argv[], const char *const env[],
            int timeout_ms, const char **out, const char **err);

/* ----------------------------------------------------- gw programs */

/* gwc compile gwt_path(gwr) -o (the same name with .gwb); asserts exit 0
 * and returns the .gwb path. */
const char *gwt_compile(const char *gwr);
/* the same without asserting: the exit status; stderr in *err (may be NULL) */
int gwt_compile_status(const char *gwr, const char *gwb, const char **err);
/* Start GW_BUILDDIR/gwd -c gwt_path(yaml) and wait until 127.0.0.1:port
 * accepts (10 s); asserts (with gwd's stderr) if it exits or never listens.
 * The process is named "gwd" (gwd.out/gwd.err), "gwd2" for a second one... */
gwt_proc *gwt_gwd(const char *yaml, int port);
/* the same with extra arguments after -c FILE (NULL-terminated, may be NULL) */
gwt_proc *gwt_gwd_args(const char *yaml, int port, const char *const extra[]);
/* An origin (origin.h) in this process on 127.0.0.1, free port; asserts;
 * stopped at exit (or earlier with origin_stop — then call gwt_forget_origin
 * first, so it is not stopped twice). */
origin *gwt_origin(const char *name);
void gwt_forget_origin(origin *o);
/* gw-origin as a process of its own; *port gets its port; asserts */
gwt_proc *gwt_origin_proc(const char *name, int *port);

/* --------------------------------------------------------- network */

/* A port that is free now, outside the ephemeral range (so an outgoing
 * connection cannot take it before the server binds it), random per call. */
int gwt_free_port(void);
/* 0 once host:port accepts a TCP connection, -1 after timeout_ms */
int gwt_wait_port(const char *host, int port, int timeout_ms);
/* "http://127.0.0.1:PORT" + path */
const char *gwt_url(int port, const char *path);

/* ------------------------------------------------ HTTP (libcurl) */

typedef struct gwt_client gwt_client;   /* keeps connections alive between requests */
gwt_client *gwt_client_new(void);       /* freed at exit */

typedef struct gwt_req {
	const char *method;          /* NULL: GET, or POST when there is a body;
	                              * "HEAD" sends a HEAD and expects no body */
	const char *url;
	const char *const *headers;  /* NULL-terminated "Name: value" lines;
	                              * "Name:" removes a header curl would send */
	const void *body;            /* request body: a buffer of body_len bytes, */
	size_t body_len;
	uint64_t gen_len;            /* or (body == NULL) gen_len bytes of origin_pattern */
	int has_body;                /* send a body even when it is empty */
	int chunked;                 /* Transfer-Encoding: chunked instead of Content-Length */
	int http10;                  /* HTTP/1.0 */
	int hash_only;               /* do not keep the response body, only its length + sha256 */
	int timeout_ms;              /* whole transfer; default 10000 */
	int connect_timeout_ms;      /* default 3000 */
	long max_recv_speed;         /* bytes/s; 0 = unlimited (slow-reader tests) */
	gwt_client *client;          /* NULL: a fresh connection */
} gwt_req;

typedef struct gwt_resp {
	int curl_code;               /* CURLE_OK (0) or the transfer error */
	char error[256];             /* curl's message when curl_code != 0 */
	long status;                 /* 0 if no response */
	char **hname, **hvalue;      /* headers of the final response, in order, */
	size_t nhdr;                 /* names as sent */
	char *body;                  /* NUL-terminated; NULL with hash_only */
	uint64_t body_len;           /* bytes received (also with hash_only) */
	char sha256[65];             /* of the body received */
	long num_connects;           /* new connections made for this request */
	double time_total, time_starttransfer;   /* seconds */
} gwt_resp;

/* Perform the request; never asserts (transport errors are in curl_code).
 * The response is harness-owned. */
gwt_resp *gwt_http(const gwt_req *req);
gwt_resp *gwt_get(const char *url);
/* first value of a header (name case-insensitive), NULL if absent */
const char *gwt_hdr(const gwt_resp *r, const char *name);
size_t gwt_hdr_count(const gwt_resp *r, const char *name);
/* the i-th value (0-based) of a repeated header, NULL past the end */
const char *gwt_hdr_nth(const gwt_resp *r, const char *name, size_t i);
/* The body parsed as JSON (asserts it is JSON); harness-owned. */
json_t *gwt_json(const gwt_resp *r);
/* For origin /echo responses: a request header as the origin received it
 * (values of a repeated header joined with ", "), NULL if absent; the name
 * is matched case-insensitively. */
const char *gwt_echo_hdr(const gwt_resp *r, const char *name);
const char *gwt_echo_str(const gwt_resp *r, const char *key);   /* "path", "query"... */

/* ------------------------------------------------------ raw sockets */

/* a connected TCP socket, or -1 (closed at exit if still open) */
int gwt_connect(const char *host, int port, int timeout_ms);
int gwt_send(int fd, const void *buf, size_t len);     /* 0 or -1 */
int gwt_sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Read until EOF or timeout: everything received (NUL-terminated,
 * harness-owned). *eof (may be NULL) = 1 if the peer closed. */
const char *gwt_recv_all(int fd, int timeout_ms, size_t *len, int *eof);
/* Read exactly one HTTP response (head + body per Content-Length or
 * chunked, none for HEAD/1xx/204/304, else until EOF) from a keep-alive
 * connection: the raw bytes (harness-owned), NULL on timeout or malformed. */
const char *gwt_recv_response(int fd, int head_request, int timeout_ms, size_t *len);
/* connect + send + read until the server closes or timeout */
const char *gwt_raw(int port, const char *request, int timeout_ms);
/* "HTTP/1.1 404 ..." -> 404; -1 if not a status line */
int gwt_raw_status(const char *response);
/* a header value from a raw response head (case-insensitive), harness-owned */
const char *gwt_raw_hdr(const char *response, const char *name);
/* the body of a raw response (after the blank line), or NULL */
const char *gwt_raw_body(const char *response);

/* ------------------------------------------------------------ misc */

void gwt_sha256_hex(const void *data, size_t len, char out[65]);
/* sha256 of origin_pattern bytes [0, len) — /bytes/N's body */
void gwt_pattern_sha256(uint64_t len, char out[65]);
uint64_t gwt_now_ms(void);                 /* monotonic */
void gwt_sleep_ms(int ms);

#endif /* GW_HARNESS_H */

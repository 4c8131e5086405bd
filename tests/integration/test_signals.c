/*
 * test_signals.c — gwd's process interface: TERM/INT graceful stop (stop
 * accepting, finish what is in flight), the drain timeout, QUIT at once,
 * USR1 reopening the log, -t, --version, --help.
 */
#include <config.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "gwd_common.h"

static const char *rules_slow(origin *o)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; read_timeout 20s; }\n"
	                "route own { match path == \"/own\"; respond 200 \"own\"; }\n"
	                "route r { match any; proxy a; }\n", origin_port(o));
}

/* a raw request that will be in flight; returns the socket */
static int send_slow(int ms)
{
	int fd = gwt_connect("127.0.0.1", g_port, 2000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gwt_sendf(fd, "GET /slow/%d HTTP/1.1\r\nHost: x\r\n\r\n", ms), 0);
	gwt_sleep_ms(200);      /* it reached the origin */
	return fd;
}

static void graceful(int sig)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, rules_slow(o));
	/* an idle keep-alive connection: closed at once by the stop */
	int idle = gwt_connect("127.0.0.1", g_port, 2000);
	gwt_sendf(idle, "GET /own HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_ptr_nonnull(gwt_recv_response(idle, 0, 2000, NULL));
	int fd = send_slow(1500);
	uint64_t t0 = gwt_now_ms();
	gwt_signal(g_gwd, sig);
	gwt_sleep_ms(200);
	/* no longer accepting */
	ck_assert_int_lt(gwt_connect("127.0.0.1", g_port, 500), 0);
	int eof = 0;
	gwt_recv_all(idle, 2000, NULL, &eof);
	ck_assert_int_eq(eof, 1);
	/* the request in flight completes, whole */
	const char *a = gwt_recv_response(fd, 0, 5000, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(gwt_raw_status(a), 200);
	ck_assert_str_eq(gwt_raw_body(a), "slept 1500\n");
	ck_assert_str_eq(gwt_raw_hdr(a, "Connection"), "close");
	ck_assert_int_eq(gwt_wait(g_gwd, 3000), 0);
	uint64_t el = gwt_now_ms() - t0;
	ck_assert_msg(el >= 1200 && el < 4000, "stopped after %llu ms", (unsigned long long)el);
	ck_assert_ptr_nonnull(strstr(gwt_stderr(g_gwd), "graceful stop"));
}

START_TEST(term_drains)
{
	graceful(SIGTERM);
}
END_TEST

START_TEST(int_drains)
{
	graceful(SIGINT);
}
END_TEST

START_TEST(drain_timeout_cuts)
{
	origin *o = gwt_origin("a");
	gwdt_start("drain_timeout: 500ms\n", rules_slow(o));
	int fd = send_slow(8000);
	uint64_t t0 = gwt_now_ms();
	gwt_signal(g_gwd, SIGTERM);
	ck_assert_int_eq(gwt_wait(g_gwd, 5000), 0);
	uint64_t el = gwt_now_ms() - t0;
	ck_assert_msg(el >= 400 && el < 2500, "stopped after %llu ms", (unsigned long long)el);
	int eof = 0;
	size_t len = 0;
	gwt_recv_all(fd, 2000, &len, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_ptr_nonnull(strstr(gwt_stderr(g_gwd), "drain timeout"));
}
END_TEST

START_TEST(quit_now)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, rules_slow(o));
	int fd = send_slow(8000);
	uint64_t t0 = gwt_now_ms();
	gwt_signal(g_gwd, SIGQUIT);
	ck_assert_int_eq(gwt_wait(g_gwd, 3000), 0);
	ck_assert_uint_lt(gwt_now_ms() - t0, 1000);
	int eof = 0;
	gwt_recv_all(fd, 2000, NULL, &eof);
	ck_assert_int_eq(eof, 1);
}
END_TEST

START_TEST(usr1_reopens_log)
{
	origin *o = gwt_origin("a");
	gwdt_start("error_log: {path: gwd.log}\n", rules_slow(o));
	const char *log = gwt_read("gwd.log", NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_nonnull(strstr(log, "generation 1"));
	ck_assert_int_eq(rename(gwt_path("gwd.log"), gwt_path("gwd.log.1")), 0);
	gwt_signal(g_gwd, SIGUSR1);
	uint64_t t0 = gwt_now_ms();
	while (!gwt_read("gwd.log", NULL) && gwt_now_ms() - t0 < 2000)
		gwt_sleep_ms(20);
	gwt_signal(g_gwd, SIGHUP);
	t0 = gwt_now_ms();
	while (gwt_now_ms() - t0 < 2000) {
		log = gwt_read("gwd.log", NULL);
		if (log && strstr(log, "generation 2"))
			break;
		gwt_sleep_ms(20);
	}
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_nonnull(strstr(log, "logs reopened"));
	ck_assert_ptr_nonnull(strstr(log, "generation 2"));
	ck_assert_ptr_null(strstr(gwt_read("gwd.log.1", NULL), "generation 2"));
	ck_assert_str_eq(gwdt_get("/own")->body, "own");
}
END_TEST

START_TEST(check_version_help)
{
	origin *o = gwt_origin("a");
	const char *r = rules_slow(o);
	gwt_write("rules.gwr", r, strlen(r));
	gwt_compile("rules.gwr");
	gwt_writef("gw.yaml", "listen: 127.0.0.1:1\nrules: rules.gwb\nadmin: {listen: 'off'}\n");
	const char *out, *err;
	const char *argv[] = { gwt_bin("gwd"), "-t", "-c", gwt_path("gw.yaml"), NULL };
	ck_assert_int_eq(gwt_run("gwd-t", argv, NULL, 10000, &out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "gwd: configuration"));
	ck_assert_ptr_nonnull(strstr(out, "ok: 2 routes, 1 upstreams, source sha256 "));
	gwt_writef("rules.gwb", "junk");
	ck_assert_int_eq(gwt_run("gwd-t2", argv, NULL, 10000, &out, &err), 1);
	ck_assert_ptr_nonnull(strstr(err, "rules.gwb"));
	const char *v[] = { gwt_bin("gwd"), "--version", NULL };
	ck_assert_int_eq(gwt_run("gwd-v", v, NULL, 10000, &out, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "gwd " PACKAGE_VERSION));
	const char *h[] = { gwt_bin("gwd"), "--help", NULL };
	ck_assert_int_eq(gwt_run("gwd-h", h, NULL, 10000, &out, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "usage: gwd -c gateway.yaml"));
	const char *bad[] = { gwt_bin("gwd"), "--bogus", NULL };
	ck_assert_int_eq(gwt_run("gwd-b", bad, NULL, 10000, NULL, NULL), 2);
}
END_TEST

START_TEST(port_in_use_refused)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, rules_slow(o));
	/* a second gwd on the same port must fail, not share it quietly */
	const char *argv[] = { gwt_bin("gwd"), "-c", gwt_path("gw.yaml"), NULL };
	const char *err;
	ck_assert_int_eq(gwt_run("gwd-second", argv, NULL, 5000, NULL, &err), 1);
	ck_assert_ptr_nonnull(strstr(err, "Address already in use"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gwd signals");
	TCase *t = tcase_create("signals");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, term_drains);
	tcase_add_test(t, int_drains);
	tcase_add_test(t, drain_timeout_cuts);
	tcase_add_test(t, quit_now);
	tcase_add_test(t, usr1_reopens_log);
	tcase_add_test(t, check_version_help);
	tcase_add_test(t, port_in_use_refused);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

/*
 * test_reload.c — gwd swaps tables while serving: by rename over the file
 * (what gwc does), by an in-place write, after delete-and-recreate, on
 * SIGHUP (config and table); a garbage or truncated table keeps the old
 * one; and under load from 4 client threads, 50 reloads fail no request.
 */
#include <config.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gwd_common.h"

static const char *rules_v(int v, int oport)
{
	return gwt_strf("upstream a { server 127.0.0.1:%d; }\n"
	                "route ver { match path == \"/v\"; respond 200 \"v%d\"; }\n"
	                "route p { match path ^= \"/p/\"; rewrite path strip_prefix \"/p\";"
	                " set_header response \"X-V\" \"%d\"; proxy a; }\n", oport, v, v);
}

/* compile version v into NAME (a .gwb in the test dir), not touching rules.gwb */
static const char *compile_v(const char *name, int v, int oport)
{
	const char *src = gwt_strf("%s.gwr", name);
	const char *r = rules_v(v, oport);
	gwt_write(src, r, strlen(r));
	const char *out = gwt_path(gwt_strf("%s.gwb", name));
	ck_assert_int_eq(gwt_compile_status(src, out, NULL), 0);
	return out;
}

/* poll /v until it answers want; returns ms waited, or -1 after 10 s.
 * How fast a new table becomes visible is measured by bench/ops-bench.sh
 * (reload_visible_ms); here only that it happens, so a loaded CI machine
 * cannot fail the test. */
static long wait_body(const char *want)
{
	uint64_t t0 = gwt_now_ms();
	while (gwt_now_ms() - t0 < 10000) {
		gwt_resp *r = gwdt_get("/v");
		if (r->status == 200 && !strcmp(r->body, want))
			return (long)(gwt_now_ms() - t0);
		gwt_sleep_ms(2);
	}
	return -1;
}

static void must_stay(const char *want, int ms)
{
	uint64_t t0 = gwt_now_ms();
	while (gwt_now_ms() - t0 < (uint64_t)ms) {
		gwt_resp *r = gwdt_get("/v");
		ck_assert_int_eq(r->status, 200);
		ck_assert_str_eq(r->body, want);
		gwt_sleep_ms(20);
	}
}

static origin *start_v1(void)
{
	origin *o = gwt_origin("a");
	gwdt_start(NULL, rules_v(1, origin_port(o)));
	ck_assert_str_eq(gwdt_get("/v")->body, "v1");
	return o;
}

START_TEST(reload_by_rename)
{
	origin *o = start_v1();
	const char *v2 = compile_v("v2", 2, origin_port(o));
	ck_assert_int_eq(rename(v2, gwt_path("rules.gwb")), 0);
	long ms = wait_body("v2");
	ck_assert_msg(ms >= 0, "new table not visible after 10 s");
	gwt_resp *r = gwdt_get("/p/name");
	ck_assert_str_eq(r->body, "a");
	ck_assert_str_eq(gwt_hdr(r, "X-V"), "2");
	ck_assert_int_eq(gwt_wait_output(g_gwd, "generation 2, source sha256 ", 2000), 0);
}
END_TEST

START_TEST(reload_in_place_write)
{
	origin *o = start_v1();
	const char *v2 = compile_v("v2", 2, origin_port(o));
	size_t len;
	const char *bytes = gwt_read(v2, &len);
	ck_assert_ptr_nonnull(bytes);
	/* like an editor that truncates and rewrites the same inode */
	int fd = open(gwt_path("rules.gwb"), O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, bytes, len / 2), (ssize_t)(len / 2));
	gwt_sleep_ms(30);   /* half a table on disk for a while: must not be used */
	ck_assert_int_eq(write(fd, bytes + len / 2, len - len / 2), (ssize_t)(len - len / 2));
	close(fd);
	long ms = wait_body("v2");
	ck_assert_msg(ms >= 0, "in-place write not visible after 10 s");
}
END_TEST

START_TEST(reload_delete_recreate)
{
	origin *o = start_v1();
	ck_assert_int_eq(unlink(gwt_path("rules.gwb")), 0);
	must_stay("v1", 300);
	const char *v3 = compile_v("v3", 3, origin_port(o));
	size_t len;
	const char *bytes = gwt_read(v3, &len);
	gwt_write("rules.gwb", bytes, len);
	long ms = wait_body("v3");
	ck_assert_msg(ms >= 0, "recreated table not picked up");
}
END_TEST

START_TEST(garbage_keeps_old)
{
	origin *o = start_v1();
	gwt_writef("rules.gwb", "this is not a table\n");
	must_stay("v1", 300);
	ck_assert_int_eq(gwt_wait_output(g_gwd, "table not reloaded, keeping generation 1", 2000), 0);
	/* a truncated good table */
	const char *v2 = compile_v("v2", 2, origin_port(o));
	size_t len;
	const char *bytes = gwt_read(v2, &len);
	gwt_write("rules.gwb", bytes, len - 8);
	must_stay("v1", 300);
	/* one flipped byte in the middle (checksum) */
	char *copy = malloc(len);
	memcpy(copy, bytes, len);
	copy[len / 2] ^= 0x40;
	gwt_write("rules.gwb", copy, len);
	free(copy);
	must_stay("v1", 300);
	/* and then a good one */
	gwt_write("rules.gwb", bytes, len);
	ck_assert_int_ge(wait_body("v2"), 0);
	ck_assert_int_eq(gwt_wait_output(g_gwd, "generation 2,", 2000), 0);
}
END_TEST

START_TEST(reload_by_hup)
{
	origin *o = start_v1();
	/* the config now names another table: only SIGHUP re-reads it */
	compile_v("other", 4, origin_port(o));
	gwt_writef("gw.yaml", "listen: 127.0.0.1:%d\nrules: other.gwb\nadmin: {listen: 'off'}\n"
	           "threads: 1\nlimits: {max_body_size: 10}\n", g_port);
	must_stay("v1", 200);
	gwt_signal(g_gwd, SIGHUP);
	ck_assert_int_ge(wait_body("v4"), 0);
	/* the new limits came with it */
	gwt_req q = { .url = gwt_url(g_port, "/p/echo"), .gen_len = 11 };
	gwdt_assert_error(gwt_http(&q), 413, "request body too large");
	/* a broken config: logged, everything stays */
	gwt_writef("gw.yaml", "listen: [oops\n");
	gwt_signal(g_gwd, SIGHUP);
	ck_assert_int_eq(gwt_wait_output(g_gwd, "configuration not reloaded", 2000), 0);
	must_stay("v4", 200);
	/* inotify now watches other.gwb */
	const char *v5 = compile_v("v5", 5, origin_port(o));
	ck_assert_int_eq(rename(v5, gwt_path("other.gwb")), 0);
	ck_assert_int_ge(wait_body("v5"), 0);
}
END_TEST

/* ------------------------------------------------------- under load */
typedef struct load {
	int port;
	atomic_int stop;
	atomic_long ok, failed;
	char last_error[256];
} load;

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	char *buf = ud;
	size_t len = strlen(buf), k = s * n;
	if (len + k < 64) {
		memcpy(buf + len, p, k);
		buf[len + k] = '\0';
	}
	return k;
}

static void *client(void *arg)
{
	load *l = arg;
	CURL *e = curl_easy_init();
	char url_v[64], url_p[64];
	snprintf(url_v, sizeof url_v, "http://127.0.0.1:%d/v", l->port);
	snprintf(url_p, sizeof url_p, "http://127.0.0.1:%d/p/name", l->port);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	for (unsigned i = 0; !atomic_load(&l->stop); i++) {
		char body[64] = "";
		curl_easy_setopt(e, CURLOPT_URL, i % 2 ? url_p : url_v);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
		CURLcode rc = curl_easy_perform(e);
		long st = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
		int good = rc == CURLE_OK && st == 200 &&
		           (i % 2 ? !strcmp(body, "a") : (body[0] == 'v' && body[1] >= '1' && body[1] <= '2'));
		if (good) {
			atomic_fetch_add(&l->ok, 1);
		} else {
			atomic_fetch_add(&l->failed, 1);
			snprintf(l->last_error, sizeof l->last_error, "%s: curl %d status %ld body '%s'",
			         i % 2 ? url_p : url_v, (int)rc, st, body);
		}
	}
	curl_easy_cleanup(e);
	return NULL;
}

START_TEST(reloads_under_load)
{
	origin *o = gwt_origin("a");
	gwdt_start("threads: 2\n", rules_v(1, origin_port(o)));
	const char *t1 = compile_v("t1", 1, origin_port(o));
	const char *t2 = compile_v("t2", 2, origin_port(o));
	size_t l1, l2;
	const char *b1 = gwt_read(t1, &l1), *b2 = gwt_read(t2, &l2);
	load L = { .port = g_port };
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, client, &L), 0);
	uint64_t t0 = gwt_now_ms();
	for (int k = 0; k < 50; k++) {
		/* wait for gwd to take each table before writing the next: two
		 * renames inside one inotify read are one reload (t1 -> t2 -> t1
		 * reads as "unchanged"), and a starved CI machine can do that */
		/* alternate the two tables, as gwc writes them (temp + rename) */
		int fd = open(gwt_path("next.tmp"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ck_assert_int_ge(fd, 0);
		const char *b = k % 2 ? b1 : b2;
		size_t n = k % 2 ? l1 : l2;
		ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
		close(fd);
		ck_assert_int_eq(rename(gwt_path("next.tmp"), gwt_path("rules.gwb")), 0);
		ck_assert_msg(gwt_wait_output(g_gwd, gwt_strf("generation %d,", k + 2), 10000) == 0,
		              "reload %d not logged", k + 1);
		gwt_sleep_ms(100);
	}
	while (gwt_now_ms() - t0 < 10000)
		gwt_sleep_ms(50);
	atomic_store(&L.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(atomic_load(&L.failed) == 0, "%ld of %ld requests failed; last: %s",
	              atomic_load(&L.failed), atomic_load(&L.failed) + atomic_load(&L.ok),
	              L.last_error);
	/* requests really ran across the reloads (a floor, not a speed) */
	ck_assert_int_gt(atomic_load(&L.ok), 200);
	ck_assert_int_eq(gwt_wait_output(g_gwd, "generation 51,", 3000), 0);
	ck_assert_ptr_null(strstr(gwt_stderr(g_gwd), "not reloaded"));
	/* still healthy and serving the last table (k = 49: t1) */
	ck_assert_str_eq(gwdt_get("/v")->body, "v1");
	ck_assert_int_eq(gwt_stop(g_gwd, SIGTERM, 5000), 0);
}
END_TEST

int main(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	Suite *s = suite_create("gwd reload");
	TCase *t = tcase_create("reload");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, reload_by_rename);
	tcase_add_test(t, reload_in_place_write);
	tcase_add_test(t, reload_delete_recreate);
	tcase_add_test(t, garbage_keeps_old);
	tcase_add_test(t, reload_by_hup);
	tcase_add_test(t, reloads_under_load);
	suite_add_tcase(s, t);
	return gwt_main(s, "gwd gwc");
}

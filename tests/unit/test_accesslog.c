/*
 * test_accesslog.c — the access log's pieces without a gwd: the SPSC ring
 * (whole lines, wrap-around, drop-and-count when full, one producer and one
 * consumer thread), the JSON and combined formatters (exact lines, escaping,
 * shortening), and the writer thread behind a reader that stops reading (a
 * disk that is too slow): the request side never blocks, lines are dropped
 * and counted, and every line accepted arrives whole.
 *
 * accesslog.c is linked with log.c and three stubs of the request API.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "core.h"

/* ------------------------------------------------- request API stubs */
static const char *stub_ua;
int srv_header_raw_n(gw_req *r, const char *name, size_t nlen, const char **v, size_t *vlen)
{
	(void)r;
	if (nlen == 10 && !strncmp(name, "User-Agent", 10) && stub_ua) {
		*v = stub_ua;
		*vlen = strlen(stub_ua);
		return 1;
	}
	return 0;
}
const char *gw_req_consumer(gw_req *r, size_t *len)
{
	(void)r;
	if (len)
		*len = 0;
	return NULL;
}
size_t gw_req_tags(gw_req *r, const char *const **tags)
{
	(void)r;
	*tags = NULL;
	return 0;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------- ring */
START_TEST(ring_rejects_bad_sizes)
{
	ck_assert_ptr_null(alog_ring_new(1000));
	ck_assert_ptr_null(alog_ring_new(32));
	alog_ring *g = alog_ring_new(64);
	ck_assert_ptr_nonnull(g);
	alog_ring_free(g);
}
END_TEST

START_TEST(ring_drops_and_counts_when_full)
{
	alog_ring *g = alog_ring_new(64);
	char line[20];
	memset(line, 'a', sizeof line - 1);
	line[19] = '\n';
	/* 3 x 20 = 60 bytes fit, the 4th does not: dropped, counted, and
	 * nothing of it is in the ring */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(alog_ring_put(g, line, 20), 1);
	ck_assert_int_eq(alog_ring_put(g, line, 20), 0);
	ck_assert_int_eq(alog_ring_put(g, line, 20), 0);
	ck_assert_uint_eq(alog_ring_used(g), 60);
	ck_assert_uint_eq(alog_ring_lines(g), 3);
	ck_assert_uint_eq(alog_ring_dropped(g), 2);
	/* a 4-byte line still fits exactly */
	ck_assert_int_eq(alog_ring_put(g, "xyz\n", 4), 1);
	ck_assert_int_eq(alog_ring_put(g, "\n", 1), 0);
	ck_assert_uint_eq(alog_ring_dropped(g), 3);
	/* a line longer than the ring never fits */
	char big[100] = { 0 };
	ck_assert_int_eq(alog_ring_put(g, big, sizeof big), 0);
	struct iovec iov[2];
	ck_assert_uint_eq(alog_ring_peek(g, iov), 64);
	ck_assert_uint_eq(iov[0].iov_len, 64);
	ck_assert_uint_eq(iov[1].iov_len, 0);
	ck_assert_int_eq(memcmp((char *)iov[0].iov_base + 60, "xyz\n", 4), 0);
	/* consumed: room again */
	alog_ring_consume(g, 40);
	ck_assert_uint_eq(alog_ring_used(g), 24);
	ck_assert_int_eq(alog_ring_put(g, line, 20), 1);
	ck_assert_uint_eq(alog_ring_lines(g), 5);
	ck_assert_uint_eq(alog_ring_dropped(g), 4);
	alog_ring_free(g);
}
END_TEST

START_TEST(ring_wraps_in_two_pieces)
{
	alog_ring *g = alog_ring_new(64);
	struct iovec iov[2];
	ck_assert_int_eq(alog_ring_put(g, "0123456789012345678901234567890123456789\n", 41), 1);
	alog_ring_consume(g, 41);
	ck_assert_uint_eq(alog_ring_peek(g, iov), 0);
	/* 30 bytes from offset 41: 23 at the end, 7 at the start */
	const char *l = "abcdefghijklmnopqrstuvwxyz012\n";
	ck_assert_int_eq(alog_ring_put(g, l, 30), 1);
	ck_assert_uint_eq(alog_ring_peek(g, iov), 30);
	ck_assert_uint_eq(iov[0].iov_len, 23);
	ck_assert_uint_eq(iov[1].iov_len, 7);
	char out[31];
	memcpy(out, iov[0].iov_base, 23);
	memcpy(out + 23, iov[1].iov_base, 7);
	out[30] = '\0';
	ck_assert_str_eq(out, l);
	alog_ring_consume(g, 30);
	ck_assert_uint_eq(alog_ring_used(g), 0);
	alog_ring_free(g);
}
END_TEST

/* one producer, one consumer, a small ring: every accepted line arrives
 * whole and in order; accepted + dropped = produced */
typedef struct pc { alog_ring *g; int n; volatile int done; } pc;

static void *producer(void *arg)
{
	pc *p = arg;
	char line[64];
	for (int i = 0; i < p->n; i++) {
		int len = snprintf(line, sizeof line, "line %d %.*s\n", i, i % 37, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		alog_ring_put(p->g, line, (size_t)len);
	}
	p->done = 1;
	return NULL;
}

START_TEST(ring_spsc_threads)
{
	pc p = { alog_ring_new(1024), 50000, 0 };
	pthread_t th;
	pthread_create(&th, NULL, producer, &p);
	char cur[128];
	size_t cl = 0;
	long last = -1, got = 0;
	for (;;) {
		int fin = p.done;
		struct iovec iov[2];
		size_t n = alog_ring_peek(p.g, iov);
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; i < iov[k].iov_len; i++) {
				char c = ((char *)iov[k].iov_base)[i];
				ck_assert_uint_lt(cl, sizeof cur - 1);
				cur[cl++] = c;
				if (c != '\n')
					continue;
				cur[cl] = '\0';
				long num;
				ck_assert_msg(sscanf(cur, "line %ld ", &num) == 1, "torn: %s", cur);
				ck_assert_msg(num > last, "order: %ld after %ld", num, last);
				const char *x = strchr(cur + 5, ' ');
				ck_assert_ptr_nonnull(x);
				ck_assert_uint_eq(strspn(x + 1, "x"), (size_t)(num % 37));
				ck_assert_uint_eq(strlen(x + 1), (size_t)(num % 37) + 1);
				last = num;
				got++;
				cl = 0;
			}
		alog_ring_consume(p.g, n);
		if (fin && !n)
			break;
	}
	pthread_join(th, NULL);
	ck_assert_uint_eq(cl, 0);
	ck_assert_int_eq(got, (long)alog_ring_lines(p.g));
	ck_assert_uint_eq(alog_ring_lines(p.g) + alog_ring_dropped(p.g), (uint64_t)p.n);
	alog_ring_free(p.g);
}
END_TEST

/* -------------------------------------------------------- formatting */
static alog_entry sample_entry(void)
{
	static const char *const tags[] = { "t1", "t\"2" };
	alog_entry e = {
		.time_ms = 1700000000123LL,        /* 2023-11-14T22:13:20.123Z */
		.client_ip = "10.1.2.3", .method = "GET", .uri = "/a?b=1", .protocol = "HTTP/1.1",
		.status = 200, .bytes_in = 78, .bytes_out = 5, .duration_ms = 1234,
		.upstream_us = 1000567, .route = "api", .upstream = "users",
		.upstream_server = "127.0.0.1:9001", .upstream_status = 201, .attempts = 2,
		.request_id = "abc", .user_agent = "ua \"1\"", .referer = NULL, .consumer = "alice",
		.tags = tags, .ntags = 2, .waf_action = "detect", .waf_rule = "sqli-tautology",
		.waf_class = "sqli", .ratelimit = "allowed", .connlimit = NULL, .cache = "hit",
	};
	return e;
}

START_TEST(json_exact_line)
{
	char buf[ALOG_LINE_MAX];
	alog_entry e = sample_entry();
	size_t n = alog_format_json(buf, sizeof buf, &e);
	buf[n] = '\0';
	ck_assert_str_eq(buf,
		"{\"time\":\"2023-11-14T22:13:20.123Z\",\"client_ip\":\"10.1.2.3\",\"method\":\"GET\","
		"\"uri\":\"/a?b=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":78,"
		"\"bytes_out\":5,\"duration\":1.234,\"upstream_duration\":1.000567,\"route\":\"api\","
		"\"upstream\":\"users\",\"upstream_server\":\"127.0.0.1:9001\",\"upstream_status\":201,"
		"\"attempts\":2,\"request_id\":\"abc\",\"user_agent\":\"ua \\\"1\\\"\",\"referer\":null,"
		"\"consumer\":\"alice\",\"tags\":[\"t1\",\"t\\\"2\"],\"waf\":{\"action\":\"detect\","
		"\"rule\":\"sqli-tautology\",\"class\":\"sqli\"},\"ratelimit\":\"allowed\","
		"\"connlimit\":null,\"cache\":\"hit\"}\n");
	/* nothing applies */
	alog_entry z = { .time_ms = 0, .upstream_us = -1, .status = 404 };
	n = alog_format_json(buf, sizeof buf, &z);
	buf[n] = '\0';
	ck_assert_str_eq(buf,
		"{\"time\":\"1970-01-01T00:00:00.000Z\",\"client_ip\":null,\"method\":null,\"uri\":null,"
		"\"protocol\":null,\"status\":404,\"bytes_in\":0,\"bytes_out\":0,\"duration\":0.000,"
		"\"upstream_duration\":null,\"route\":null,\"upstream\":null,\"upstream_server\":null,"
		"\"upstream_status\":null,\"attempts\":0,\"request_id\":null,\"user_agent\":null,"
		"\"referer\":null,\"consumer\":null,\"tags\":[],\"waf\":null,\"ratelimit\":null,"
		"\"connlimit\":null,\"cache\":null}\n");
}
END_TEST

START_TEST(json_escapes_and_stays_valid)
{
	char buf[ALOG_LINE_MAX];
	alog_entry e = sample_entry();
	/* control bytes, DEL, an invalid UTF-8 byte, a truncated sequence, an
	 * overlong encoding and a surrogate, next to valid UTF-8 */
	e.uri = "/\x01\x1f\x7f\xff\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xc0\xaf\xed\xa0\x80\n\r\t\\";
	size_t n = alog_format_json(buf, sizeof buf, &e);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "\"uri\":\"/\\u0001\\u001f\\u007f\\u00ff\xc3\xa9\xe2\x82\xac"
	                                  "\xf0\x9f\x98\x80\\u00c3\\u00c0\\u00af\\u00ed\\u00a0\\u0080"
	                                  "\\n\\r\\t\\\\\""));
	json_error_t err;
	json_t *j = json_loads(buf, 0, &err);
	ck_assert_msg(j != NULL, "%s: %s", err.text, buf);
	json_decref(j);
}
END_TEST

START_TEST(json_long_fields_are_shortened)
{
	static char uri[200000], ua[50000];
	memset(uri, '"', sizeof uri - 1);      /* each takes 2 bytes escaped */
	uri[0] = '/';
	memset(ua, 'u', sizeof ua - 1);
	alog_entry e = sample_entry();
	e.uri = uri;
	e.user_agent = ua;
	e.referer = ua;
	char buf[ALOG_LINE_MAX];
	size_t n = alog_format_json(buf, sizeof buf, &e);
	ck_assert_uint_le(n, sizeof buf);
	ck_assert_int_eq(buf[n - 1], '\n');
	ck_assert_int_eq(buf[n - 2], '}');
	buf[n] = '\0';
	json_error_t err;
	json_t *j = json_loads(buf, 0, &err);
	ck_assert_msg(j != NULL, "%s", err.text);
	/* 4096 output bytes: "/" and 2047 escaped quotes (never half an escape) */
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "uri"))), 2048);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "user_agent"))), 1024);
	ck_assert_str_eq(json_string_value(json_object_get(j, "cache")), "hit");
	json_decref(j);
	/* a small buffer: cut, but still one line that ends */
	char small[1024];
	n = alog_format_json(small, sizeof small, &e);
	ck_assert_uint_le(n, sizeof small);
	ck_assert_int_eq(small[n - 1], '\n');
	ck_assert_ptr_null(memchr(small, '\n', n - 1));
}
END_TEST

START_TEST(combined_exact_line)
{
	char buf[ALOG_LINE_MAX];
	alog_entry e = sample_entry();
	e.referer = "http://r/\"q\"";
	e.consumer = "bob smith";
	size_t n = alog_format_combined(buf, sizeof buf, &e);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "10.1.2.3 - bob\\x20smith [14/Nov/2023:22:13:20 +0000] "
	                      "\"GET /a?b=1 HTTP/1.1\" 200 5 \"http://r/\\x22q\\x22\" "
	                      "\"ua \\x221\\x22\"\n");
	alog_entry z = { .time_ms = 0, .status = 400 };
	n = alog_format_combined(buf, sizeof buf, &z);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "- - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 0 \"-\" \"-\"\n");
	e.uri = "/\xff\x01\\";
	e.user_agent = NULL;
	e.referer = NULL;
	e.consumer = NULL;
	n = alog_format_combined(buf, sizeof buf, &e);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "10.1.2.3 - - [14/Nov/2023:22:13:20 +0000] "
	                      "\"GET /\\xFF\\x01\\x5C HTTP/1.1\" 200 5 \"-\" \"-\"\n");
}
END_TEST

/* ------------------------------------------------- the writer thread */
static char tmpdir[] = "/tmp/test_accesslog.XXXXXX";

static gw_req *fake_req(gw_worker *w, const char *uri)
{
	gw_req *r = calloc(1, sizeof *r);
	r->w = w;
	r->state = RQ_QUEUED;
	r->method = "GET";
	r->uri = (char *)uri;
	strcpy(r->ipstr, "192.0.2.1");
	strcpy(r->id, "rid");
	return r;
}

static metrics_rec fake_rec(void)
{
	metrics_rec m = { .status = 200, .bytes_out = 3, .upstream_us = -1, .route = "r" };
	return m;
}

static size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

START_TEST(writer_file_and_reopen)
{
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	char path[256], moved[256];
	snprintf(path, sizeof path, "%s/access.log", tmpdir);
	snprintf(moved, sizeof moved, "%s/access.log.1", tmpdir);
	gwd_config cfg = { .access_log_path = path, .access_log_format = CFG_LOG_COMBINED };
	char err[256];
	ck_assert_int_eq(accesslog_open(&cfg, err, sizeof err), 0);
	ck_assert_int_eq(accesslog_enabled(), 1);
	gw_worker w = { .idx = 3 };
	gw_req *r = fake_req(&w, "/one");
	metrics_rec m = fake_rec();
	stub_ua = "ua";
	accesslog_request(r, &m);
	/* within the flush interval */
	for (int i = 0; i < 100 && count_lines(path) < 1; i++)
		usleep(10000);
	ck_assert_uint_eq(count_lines(path), 1);
	ck_assert_int_eq(rename(path, moved), 0);
	accesslog_reopen();
	usleep(300000);
	r->uri = "/two";
	accesslog_request(r, &m);
	accesslog_close();           /* writes out what is queued */
	ck_assert_int_eq(accesslog_enabled(), 0);
	ck_assert_uint_eq(count_lines(moved), 1);
	ck_assert_uint_eq(count_lines(path), 1);
	FILE *f = fopen(path, "r");
	char line[512];
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	fclose(f);
	ck_assert_ptr_nonnull(strstr(line, "192.0.2.1 - - ["));
	ck_assert_ptr_nonnull(strstr(line, "] \"GET /two HTTP/1.1\" 200 3 \"-\" \"ua\"\n"));
	uint64_t lines, dropped;
	accesslog_counts(&lines, &dropped);
	ck_assert_uint_eq(lines, 0);     /* the rings went with close */
	unlink(path);
	unlink(moved);
	rmdir(tmpdir);
	free(r);
}
END_TEST

/* the "disk" is a pipe nobody reads: the writer blocks in writev, the
 * ring fills, requests go on at full speed and their lines are dropped */
typedef struct drain_arg { int fd; size_t lines; } drain_arg;

static void *drain_pipe(void *arg)
{
	drain_arg *d = arg;
	char buf[65536];
	for (;;) {
		ssize_t k = read(d->fd, buf, sizeof buf);
		if (k > 0) {
			for (ssize_t i = 0; i < k; i++)
				d->lines += buf[i] == '\n';
		} else if (k == 0 || errno != EINTR) {
			return NULL;
		}
	}
}

START_TEST(slow_disk_never_blocks_requests)
{
	char dir[] = "/tmp/test_accesslog.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof path, "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	int rfd = open(path, O_RDONLY | O_NONBLOCK);   /* a reader exists: open for write works */
	ck_assert_int_ge(rfd, 0);
	gwd_config cfg = { .access_log_path = path, .access_log_format = CFG_LOG_JSON };
	char err[256];
	ck_assert_int_eq(accesslog_open(&cfg, err, sizeof err), 0);
	gw_worker w = { .idx = 0 };
	gw_req *r = fake_req(&w, "/a/fairly/long/path/to/make/the/lines/longer?with=a&query=string");
	metrics_rec m = fake_rec();
	stub_ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)";
	enum { N = 30000 };               /* ~14 MB of lines: far over 1 MiB + a pipe */
	uint64_t worst = 0, t0 = now_us();
	for (int i = 0; i < N; i++) {
		uint64_t a = now_us();
		accesslog_request(r, &m);
		uint64_t d = now_us() - a;
		if (d > worst)
			worst = d;
	}
	uint64_t total = now_us() - t0;
	uint64_t lines, dropped;
	accesslog_counts(&lines, &dropped);
	ck_assert_uint_eq(lines + dropped, N);
	ck_assert_uint_gt(dropped, N / 2);
	ck_assert_uint_gt(lines, 1000);
	/* no request waited for the disk: the worst single line is far below
	 * a blocking write (which would last until the reader comes, never) */
	ck_assert_msg(worst < 100000, "a request took %llu us", (unsigned long long)worst);
	ck_assert_msg(total < 5000000, "%d requests took %llu us", N, (unsigned long long)total);
	/* now read: everything accepted arrives, whole */
	int fl = fcntl(rfd, F_GETFL);
	fcntl(rfd, F_SETFL, fl & ~O_NONBLOCK);
	drain_arg d = { rfd, 0 };
	pthread_t th;
	pthread_create(&th, NULL, drain_pipe, &d);
	accesslog_close();             /* flushes into the pipe, closes it */
	pthread_join(th, NULL);
	ck_assert_uint_eq(d.lines, lines);
	close(rfd);
	unlink(path);
	rmdir(dir);
	free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("accesslog");
	TCase *t = tcase_create("ring");
	tcase_set_timeout(t, 30);      /* sanitizer builds are slow */
	tcase_add_test(t, ring_rejects_bad_sizes);
	tcase_add_test(t, ring_drops_and_counts_when_full);
	tcase_add_test(t, ring_wraps_in_two_pieces);
	tcase_add_test(t, ring_spsc_threads);
	suite_add_tcase(s, t);
	t = tcase_create("format");
	tcase_add_test(t, json_exact_line);
	tcase_add_test(t, json_escapes_and_stays_valid);
	tcase_add_test(t, json_long_fields_are_shortened);
	tcase_add_test(t, combined_exact_line);
	suite_add_tcase(s, t);
	t = tcase_create("writer");
	tcase_set_timeout(t, 30);
	tcase_add_test(t, writer_file_and_reopen);
	tcase_add_test(t, slow_disk_never_blocks_requests);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

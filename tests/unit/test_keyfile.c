/*
 * test_keyfile.c — watched files (runtime/plugins/keyfile.c): read at
 * open, shared per (path, kind), re-read by the watcher thread after an
 * in-place write, a rename over the file and a symlink swap (Kubernetes
 * ConfigMap style), old contents kept when the new ones cannot be read or
 * parsed, and readers that never see a freed object while the contents are
 * replaced under them as fast as possible. Also the small map.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keyfile.h"
#include "log.h"

#define MAGIC 0x6b66746573740a01ull

/* the "parsed" object: the text, with a magic number readers check */
typedef struct obj { uint64_t magic; size_t len; char text[]; } obj;

static atomic_int nfreed;

static void *parse(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
	if (len >= 3 && !memcmp(data, "BAD", 3)) {
		snprintf(err, errlen, "bad contents");
		return NULL;
	}
	obj *o = malloc(sizeof *o + len + 1);
	o->magic = MAGIC;
	o->len = len;
	memcpy(o->text, data, len + 1);
	return o;
}

static void obj_free(void *p)
{
	obj *o = p;
	/* poison it: a reader that still used it would see a bad magic */
	memset(o, 0xdd, sizeof *o + o->len + 1);
	free(o);
	atomic_fetch_add(&nfreed, 1);
}

static const kf_kind kind = { "test file", parse, obj_free };
static const kf_kind kind2 = { "other test file", parse, obj_free };

static char dir[256];

static const char *path(const char *name)
{
	static char buf[4][512];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

static void put(const char *name, const char *text)
{
	FILE *f = fopen(path(name), "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/test_keyfile.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* the current text (copied out of the read section) */
static char *text(kf_file *f)
{
	kf_ref ref;
	const obj *o = kf_enter(f, 0, &ref);
	ck_assert(o->magic == MAGIC);
	char *s = strdup(o->text);
	kf_leave(&ref);
	return s;
}

/* wait up to ms for the text to become want */
static int wait_text(kf_file *f, const char *want, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		char *s = text(f);
		int eq = !strcmp(s, want);
		free(s);
		if (eq)
			return 1;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

START_TEST(open_missing_and_bad)
{
	char err[512];
	ck_assert_ptr_null(kf_open(path("nope"), &kind, err, sizeof err));
	char want[600];
	snprintf(want, sizeof want, "%s: No such file or directory", path("nope"));
	ck_assert_str_eq(err, want);
	put("bad", "BAD stuff\n");
	ck_assert_ptr_null(kf_open(path("bad"), &kind, err, sizeof err));
	snprintf(want, sizeof want, "%s: bad contents", path("bad"));
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(shared_per_path_and_kind)
{
	char err[512];
	put("a", "one\n");
	kf_file *f = kf_open(path("a"), &kind, err, sizeof err);
	ck_assert_ptr_nonnull(f);
	kf_file *g = kf_open(path("a"), &kind, err, sizeof err);
	ck_assert_ptr_eq(f, g);
	kf_file *h = kf_open(path("a"), &kind2, err, sizeof err);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_ne(f, h);
	/* a second open re-reads a file that changed since */
	put("a", "two\n");
	kf_file *i = kf_open(path("a"), &kind, err, sizeof err);
	ck_assert_ptr_eq(f, i);
	char *s = text(f);
	ck_assert_str_eq(s, "two\n");
	free(s);
	kf_close(f); kf_close(g); kf_close(h); kf_close(i);
}
END_TEST

START_TEST(reread_on_change)
{
	char err[512];
	put("keys", "v1\n");
	kf_file *f = kf_open(path("keys"), &kind, err, sizeof err);
	ck_assert_ptr_nonnull(f);
	uint64_t g0 = kf_generation(f);
	/* in place */
	put("keys", "v2\n");
	ck_assert_msg(wait_text(f, "v2\n", 1500), "in-place write not seen");
	ck_assert_uint_eq(kf_generation(f), g0 + 1);
	/* renamed over */
	put("keys.tmp", "v3\n");
	ck_assert_int_eq(rename(path("keys.tmp"), path("keys")), 0);
	ck_assert_msg(wait_text(f, "v3\n", 1500), "rename-over not seen");
	/* contents that do not parse: the old ones stay */
	put("keys", "BAD\n");
	ck_assert_int_eq(kf_check(f, 1), -1);
	char *s = text(f);
	ck_assert_str_eq(s, "v3\n");
	free(s);
	/* removed: still the old ones; back: read */
	ck_assert_int_eq(unlink(path("keys")), 0);
	ck_assert_int_eq(kf_check(f, 1), -1);
	put("keys", "v4\n");
	ck_assert_msg(wait_text(f, "v4\n", 1500), "re-created file not seen");
	/* the same bytes again: not a new generation */
	uint64_t g = kf_generation(f);
	put("keys", "v4\n");
	ck_assert_int_eq(kf_check(f, 1), 0);
	ck_assert_uint_eq(kf_generation(f), g);
	kf_close(f);
}
END_TEST

START_TEST(symlink_swap)
{
	/* ConfigMap layout: keys -> ..data/keys, ..data -> ..v1; an update
	 * makes ..v2 and renames a new ..data link over the old one */
	char err[512];
	ck_assert_int_eq(mkdir(path("..v1"), 0755), 0);
	put("..v1/keys", "old\n");
	ck_assert_int_eq(symlink("..v1", path("..data")), 0);
	ck_assert_int_eq(symlink("..data/keys", path("keys")), 0);
	kf_file *f = kf_open(path("keys"), &kind, err, sizeof err);
	ck_assert_msg(f != NULL, "%s", err);
	ck_assert_int_eq(mkdir(path("..v2"), 0755), 0);
	put("..v2/keys", "new\n");
	ck_assert_int_eq(symlink("..v2", path("..data_tmp")), 0);
	ck_assert_int_eq(rename(path("..data_tmp"), path("..data")), 0);
	ck_assert_msg(wait_text(f, "new\n", 1500), "symlink swap not seen");
	kf_close(f);
}
END_TEST

/* readers check every object they see while it is replaced under them */
static atomic_int stop;
static atomic_long reads;

static void *reader(void *arg)
{
	kf_file *f = arg;
	unsigned slot = (unsigned)(uintptr_t)pthread_self();
	while (!atomic_load(&stop)) {
		kf_ref ref;
		const obj *o = kf_enter(f, slot, &ref);
		uint64_t m = o->magic;
		size_t n = strlen(o->text);
		for (volatile int spin = 0; spin < 50; spin++)
			;
		int ok = m == MAGIC && o->magic == MAGIC && n == o->len;
		kf_leave(&ref);
		if (!ok)
			return (void *)1;
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

START_TEST(readers_never_see_freed)
{
	char err[512];
	put("hot", "x\n");
	kf_file *f = kf_open(path("hot"), &kind, err, sizeof err);
	ck_assert_ptr_nonnull(f);
	pthread_t th[3];
	atomic_store(&stop, 0);
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, reader, f);
	int before = atomic_load(&nfreed);
	for (int i = 0; i < 300; i++) {
		char buf[64];
		snprintf(buf, sizeof buf, "contents %d %s\n", i, i % 2 ? "odd" : "even, longer");
		put("hot", buf);
		/* 1, or 0 when the watcher thread was quicker */
		ck_assert_int_ge(kf_check(f, 1), 0);
		char *s = text(f);
		ck_assert_str_eq(s, buf);
		free(s);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		void *rv;
		pthread_join(th[i], &rv);
		ck_assert_msg(rv == NULL, "a reader saw a freed or torn object");
	}
	ck_assert_int_ge(atomic_load(&nfreed) - before, 300);
	ck_assert_int_gt(atomic_load(&reads), 0);
	kf_close(f);
}
END_TEST

START_TEST(map)
{
	kf_map m = { 0 };
	for (uint64_t k = 1; k <= 10000; k++)
		ck_assert_int_eq(kf_map_put(&m, k * 7919, (void *)(uintptr_t)k), 0);
	for (uint64_t k = 1; k <= 10000; k++)
		ck_assert_ptr_eq(kf_map_get(&m, k * 7919), (void *)(uintptr_t)k);
	ck_assert_ptr_null(kf_map_get(&m, 3));
	/* an existing key keeps its value */
	kf_map_put(&m, 7919, (void *)99);
	ck_assert_ptr_eq(kf_map_get(&m, 7919), (void *)1);
	ck_assert_uint_eq(m.n, 10000);
	kf_map_free(&m);
	ck_assert_ptr_null(kf_map_get(&m, 7919));
	uint32_t a[3] = { 1, 2, 3 }, b[3] = { 1, 2, 4 };
	ck_assert(kf_words_key(a, 3) != kf_words_key(b, 3));
	ck_assert(kf_words_key(a, 3) == kf_words_key(a, 3));
}
END_TEST

int main(void)
{
	log_open("/dev/null", LOG_DEBUG);   /* re-reads are logged: not here */
	Suite *s = suite_create("keyfile");
	TCase *t = tcase_create("watch");
	tcase_set_timeout(t, 60);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, open_missing_and_bad);
	tcase_add_test(t, shared_per_path_and_kind);
	tcase_add_test(t, reread_on_change);
	tcase_add_test(t, symlink_swap);
	tcase_add_test(t, readers_never_see_freed);
	tcase_add_test(t, map);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

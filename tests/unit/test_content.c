/*
 * test_content.c — unit tests of the content plugins' parts that do not
 * need a running gwd: the cache store (hits, expiry, coalescing waiters,
 * pass objects, cancel, Vary variants, LRU eviction across shards,
 * references kept across eviction, per-entry limit, threads), the HTTP
 * caching rules (Cache-Control, HTTP-dates, freshness), the cors origin
 * matcher and handlers, body_limit, and the log directives (sampling
 * math, log off, tags — nothing reads them in gwd yet, so this is where
 * they are checked).
 *
 * The plugin files are included (h2o style) and run against a fake
 * request: the gw_* accessors below implement plugin.h over struct
 * gw_req as this file defines it.
 */
#include <config.h>

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../runtime/plugins/cache_store.c"
#include "../../runtime/plugins/cors.c"
#include "../../runtime/plugins/logctl.c"
#include "../../runtime/plugins/bodylimit.c"

/* ============================================================ fakes */
enum { F_SET, F_ADD, F_DEL };
struct gw_req {
	const char *method;
	const char *hn[8], *hv[8];
	int nh;
	struct { int op; char name[64]; char val[256]; } ed[32];
	int ned;
	int status;                  /* gw_req_respond */
	void *ctx[CTP_ID__COUNT];
	int64_t cl;
	uint64_t limit;
	char arena[8192];
	size_t used;
};

static const char *g_strs[16];   /* the fake table's strings */

const char *gwb_str(const gwb_table *t, uint32_t idx, size_t *len)
{
	(void)t;
	const char *s = idx < 16 && g_strs[idx] ? g_strs[idx] : "";
	if (len)
		*len = strlen(s);
	return s;
}

const gwb_table *gw_req_table(const gw_req *r) { (void)r; return NULL; }
const char *gw_req_id(const gw_req *r) { (void)r; return "test"; }
void **gw_req_ctx(gw_req *r, unsigned id) { return &r->ctx[id]; }
int64_t gw_req_content_length(const gw_req *r) { return r->cl; }

const char *gw_req_method(const gw_req *r, size_t *len)
{
	*len = strlen(r->method);
	return r->method;
}

int gw_req_header(gw_req *r, const char *name, const char **v, size_t *vlen)
{
	for (int i = 0; i < r->nh; i++)
		if (!strcasecmp(r->hn[i], name)) {
			*v = r->hv[i];
			*vlen = strlen(r->hv[i]);
			return 1;
		}
	return 0;
}

void *gw_req_alloc(gw_req *r, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (r->used + n > sizeof r->arena)
		return NULL;
	void *p = r->arena + r->used;
	r->used += n;
	return p;
}

static int edit(gw_req *r, int op, const char *name, const char *val, size_t vlen)
{
	ck_assert_int_lt(r->ned, 32);
	r->ed[r->ned].op = op;
	snprintf(r->ed[r->ned].name, sizeof r->ed[0].name, "%s", name);
	snprintf(r->ed[r->ned].val, sizeof r->ed[0].val, "%.*s", (int)vlen, val ? val : "");
	r->ned++;
	return 0;
}

int gw_resp_set_header(gw_req *r, const char *n, const char *v, size_t l) { return edit(r, F_SET, n, v, l); }
int gw_resp_add_header(gw_req *r, const char *n, const char *v, size_t l) { return edit(r, F_ADD, n, v, l); }
void gw_resp_del_header(gw_req *r, const char *n) { edit(r, F_DEL, n, NULL, 0); }

void gw_req_respond(gw_req *r, int status, const char *body, size_t len)
{
	(void)body; (void)len;
	r->status = status;
}

void gw_req_set_body_limit(gw_req *r, uint64_t bytes)
{
	if (bytes && (!r->limit || bytes < r->limit))
		r->limit = bytes;
}

void log_msg(int level, const char *fmt, ...) { (void)level; (void)fmt; }
int log_level(void) { return 0; }

/* the response headers the edits make, applied like srv.c does to an
 * upstream response that had `base` (NULL-terminated name, value pairs):
 * values of one name joined with "|", NULL if none */
static const char *resp_hdr_on(gw_req *r, const char *const *base, const char *name)
{
	static char out[1024];
	const char *vals[64];
	const char *names[64];
	int n = 0;
	for (int i = 0; base && base[i]; i += 2) {
		names[n] = base[i];
		vals[n++] = base[i + 1];
	}
	for (int i = 0; i < r->ned; i++) {
		if (r->ed[i].op != F_ADD)
			for (int k = 0; k < n; k++)
				if (names[k] && !strcasecmp(names[k], r->ed[i].name))
					names[k] = NULL;
		if (r->ed[i].op != F_DEL) {
			names[n] = r->ed[i].name;
			vals[n++] = r->ed[i].val;
		}
	}
	out[0] = '\0';
	int any = 0;
	for (int k = 0; k < n; k++)
		if (names[k] && !strcasecmp(names[k], name)) {
			if (any)
				strcat(out, "|");
			strcat(out, vals[k]);
			any = 1;
		}
	return any ? out : NULL;
}

static const char *resp_hdr(gw_req *r, const char *name)
{
	return resp_hdr_on(r, NULL, name);
}

static gw_req *fake(const char *method, ...)
{
	gw_req *r = calloc(1, sizeof *r);
	r->method = method;
	va_list ap;
	va_start(ap, method);
	const char *n;
	while ((n = va_arg(ap, const char *))) {
		r->hn[r->nh] = n;
		r->hv[r->nh++] = va_arg(ap, const char *);
	}
	va_end(ap);
	return r;
}

/* ====================================================== cache store */
typedef struct twaiter { cs_waiter cw; int woken; int pass; } twaiter;

static void twake(cs_waiter *w)
{
	twaiter *t = (twaiter *)w;
	t->woken++;
	t->pass = w->pass;
}

static twaiter *g_next_waiter;
static cs_waiter *mk(void *ctx)
{
	(void)ctx;
	twaiter *t = g_next_waiter;
	if (!t)
		return NULL;
	memset(t, 0, sizeof *t);
	t->cw.wake = twake;
	return &t->cw;
}

static const char *g_ae;         /* the request's Accept-Encoding (NULL: none) */
static int thdr(void *ctx, const char *name, const char **v, size_t *vlen)
{
	(void)ctx;
	if (strcmp(name, "accept-encoding") || !g_ae)
		return 0;
	*v = g_ae;
	*vlen = strlen(g_ae);
	return 1;
}

static int lookup(cs_store *s, const char *key, uint64_t now, int may_fill, cs_entry **e,
                  cs_fill **f)
{
	return cs_lookup(s, key, strlen(key), thdr, NULL, now, may_fill, mk, NULL, e, f);
}

/* store body under the fill, fresh until expires */
static void fill(cs_store *s, cs_fill *f, const char *body, uint64_t now, uint64_t expires,
                 const char *vary, size_t vary_len)
{
	static const cs_hdr h[] = { { "Content-Type", "text/plain", 12, 10 },
	                            { "ETag", "\"x\"", 4, 3 } };
	cs_put p = { .status = 200, .age0_s = 3, .expires_ms = expires, .hdr = h, .nhdr = 2,
	             .body = strdup(body), .body_len = strlen(body),
	             .vary = vary, .vary_len = vary_len };
	cs_fill_done(s, f, &p, thdr, NULL, now, 0);
	ck_assert_ptr_null(p.body);
}

static void put_key(cs_store *s, const char *key, size_t body_len, uint64_t now)
{
	cs_entry *e;
	cs_fill *f;
	ck_assert_int_eq(lookup(s, key, now, 1, &e, &f), CS_MISS);
	ck_assert_ptr_nonnull(f);
	char *b = malloc(body_len);
	memset(b, 'x', body_len);
	cs_put p = { .status = 200, .expires_ms = now + 100000, .body = b, .body_len = body_len };
	cs_fill_done(s, f, &p, thdr, NULL, now, 0);
}

static int is_hit(cs_store *s, const char *key, uint64_t now)
{
	cs_entry *e;
	cs_fill *f;
	g_next_waiter = NULL;
	int rc = lookup(s, key, now, 0, &e, &f);
	if (rc == CS_HIT)
		cs_release(e);
	return rc == CS_HIT;
}

START_TEST(store_miss_fill_hit_expire)
{
	cs_store *s = cs_new(1 << 20, 4);
	cs_entry *e;
	cs_fill *f;
	g_next_waiter = NULL;
	ck_assert_int_eq(lookup(s, "k1", 1000, 1, &e, &f), CS_MISS);
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_null(e);
	size_t kl;
	ck_assert_str_eq(cs_fill_key(f, &kl), "k1");
	fill(s, f, "hello", 1000, 2000, NULL, 0);
	ck_assert_int_eq(lookup(s, "k1", 1500, 1, &e, &f), CS_HIT);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(e->status, 200);
	ck_assert_uint_eq(e->body_len, 5);
	ck_assert_int_eq(memcmp(e->body, "hello", 5), 0);
	ck_assert_uint_eq(e->nhdr, 2);
	ck_assert_str_eq(e->hdr[0].name, "Content-Type");
	ck_assert_str_eq(e->hdr[0].val, "text/plain");
	ck_assert_str_eq(e->hdr[1].val, "\"x\"");
	ck_assert_uint_eq(e->age0_s, 3);
	ck_assert_uint_eq(e->stored_ms, 1000);
	cs_release(e);
	ck_assert_uint_eq(cs_count(s), 1);
	/* expired: a miss, and the caller fills again */
	ck_assert_int_eq(lookup(s, "k1", 2000, 1, &e, &f), CS_MISS);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(cs_count(s), 0);
	ck_assert_uint_eq(cs_bytes(s), 0);
	cs_fill_done(s, f, NULL, NULL, NULL, 2000, 0);
	/* without may_fill a miss fills nothing */
	ck_assert_int_eq(lookup(s, "k1", 2000, 0, &e, &f), CS_MISS);
	ck_assert_ptr_null(f);
	cs_free(s);
}
END_TEST

START_TEST(store_coalescing)
{
	cs_store *s = cs_new(1 << 20, 4);
	cs_entry *e;
	cs_fill *f, *f2;
	twaiter w[3];
	g_next_waiter = NULL;
	ck_assert_int_eq(lookup(s, "k", 0, 1, &e, &f), CS_MISS);
	ck_assert_ptr_nonnull(f);
	/* later misses wait (with or without may_fill: a HEAD waits too) */
	for (int i = 0; i < 3; i++) {
		g_next_waiter = &w[i];
		ck_assert_int_eq(lookup(s, "k", 0, i != 1, &e, &f2), CS_WAIT);
		ck_assert_ptr_null(f2);
	}
	/* no waiter to give: a plain miss, not a second fill */
	g_next_waiter = NULL;
	ck_assert_int_eq(lookup(s, "k", 0, 1, &e, &f2), CS_MISS);
	ck_assert_ptr_null(f2);
	/* one leaves early */
	ck_assert_int_eq(cs_wait_cancel(s, &w[1].cw), 1);
	ck_assert_int_eq(cs_wait_cancel(s, &w[1].cw), 0);
	fill(s, f, "body", 0, 100, NULL, 0);
	ck_assert_int_eq(w[0].woken, 1);
	ck_assert_int_eq(w[0].pass, 0);
	ck_assert_int_eq(w[2].woken, 1);
	ck_assert_int_eq(w[1].woken, 0);
	/* woken: cancelling is too late */
	ck_assert_int_eq(cs_wait_cancel(s, &w[0].cw), 0);
	ck_assert(is_hit(s, "k", 50));
	cs_free(s);
}
END_TEST

START_TEST(store_pass_objects)
{
	cs_store *s = cs_new(1 << 20, 2);
	cs_entry *e;
	cs_fill *f, *f2;
	twaiter w;
	g_next_waiter = NULL;
	ck_assert_int_eq(lookup(s, "p", 0, 1, &e, &f), CS_MISS);
	g_next_waiter = &w;
	ck_assert_int_eq(lookup(s, "p", 0, 1, &e, &f2), CS_WAIT);
	/* nothing stored, a pass object until 1000 */
	cs_fill_done(s, f, NULL, NULL, NULL, 10, 1000);
	ck_assert_int_eq(w.woken, 1);
	ck_assert_int_eq(w.pass, 1);
	g_next_waiter = &w;
	ck_assert_int_eq(lookup(s, "p", 999, 1, &e, &f2), CS_PASS);
	ck_assert_ptr_null(f2);
	ck_assert_int_eq(lookup(s, "p", 1000, 1, &e, &f2), CS_MISS);
	ck_assert_ptr_nonnull(f2);
	/* a failed fill: waiters pass, no pass object */
	g_next_waiter = &w;
	ck_assert_int_eq(lookup(s, "p", 1000, 1, &e, &f), CS_WAIT);
	cs_fill_done(s, f2, NULL, NULL, NULL, 1000, 0);
	ck_assert_int_eq(w.woken, 1);
	ck_assert_int_eq(w.pass, 1);
	g_next_waiter = NULL;
	ck_assert_int_eq(lookup(s, "p", 1000, 1, &e, &f), CS_MISS);
	ck_assert_ptr_nonnull(f);
	/* a body over the per-entry limit is not stored: waiters pass */
	ck_assert_uint_eq(cs_entry_max(s), 131072);
	g_next_waiter = &w;
	ck_assert_int_eq(lookup(s, "p", 1000, 1, &e, &f2), CS_WAIT);
	char *big = malloc(131073);
	memset(big, 'b', 131073);
	cs_put p = { .status = 200, .expires_ms = 5000, .body = big, .body_len = 131073 };
	cs_fill_done(s, f, &p, thdr, NULL, 1000, 0);
	ck_assert_ptr_null(p.body);
	ck_assert_int_eq(w.pass, 1);
	ck_assert(!is_hit(s, "p", 1001));
	ck_assert_uint_eq(cs_bytes(s), 0);
	cs_free(s);
	/* the absolute per-entry limit: 1 MiB */
	s = cs_new((size_t)64 << 20, 16);
	ck_assert_uint_eq(cs_entry_max(s), 1048576);
	ck_assert_uint_eq(cs_cap(s), (size_t)64 << 20);
	cs_free(s);
}
END_TEST

START_TEST(store_vary)
{
	cs_store *s = cs_new(1 << 20, 4);
	cs_entry *e;
	cs_fill *f;
	static const char vary[] = "accept-encoding";     /* with its NUL */
	g_next_waiter = NULL;
	g_ae = "gzip";
	ck_assert_int_eq(lookup(s, "v", 0, 1, &e, &f), CS_MISS);
	fill(s, f, "gzipped", 0, 1000, vary, sizeof vary);
	ck_assert_uint_eq(cs_count(s), 2);            /* the vary object + the variant */
	ck_assert_int_eq(lookup(s, "v", 1, 1, &e, &f), CS_HIT);
	ck_assert_int_eq(memcmp(e->body, "gzipped", 7), 0);
	cs_release(e);
	/* whitespace around the value does not make another variant */
	g_ae = "  gzip ";
	ck_assert(is_hit(s, "v", 1));
	/* another value: a miss whose fill is the variant key */
	g_ae = "br";
	ck_assert_int_eq(lookup(s, "v", 1, 1, &e, &f), CS_MISS);
	size_t kl;
	const char *k = cs_fill_key(f, &kl);
	ck_assert_uint_eq(kl, 4);
	ck_assert_int_eq(memcmp(k, "v\x01" "br", 4), 0);
	fill(s, f, "brotli", 1, 1000, vary, sizeof vary);
	ck_assert_int_eq(lookup(s, "v", 2, 1, &e, &f), CS_HIT);
	ck_assert_int_eq(memcmp(e->body, "brotli", 6), 0);
	cs_release(e);
	g_ae = "gzip";
	ck_assert_int_eq(lookup(s, "v", 2, 1, &e, &f), CS_HIT);
	ck_assert_int_eq(memcmp(e->body, "gzipped", 7), 0);
	cs_release(e);
	/* no header at all is a variant of its own */
	g_ae = NULL;
	ck_assert_int_eq(lookup(s, "v", 2, 1, &e, &f), CS_MISS);
	k = cs_fill_key(f, &kl);
	ck_assert_int_eq(memcmp(k, "v\x02", 2), 0);
	/* the upstream stops varying: the plain response replaces the vary object */
	fill(s, f, "plain", 2, 1000, NULL, 0);
	g_ae = "gzip";
	ck_assert_int_eq(lookup(s, "v", 3, 1, &e, &f), CS_HIT);
	ck_assert_int_eq(memcmp(e->body, "plain", 5), 0);
	cs_release(e);
	g_ae = NULL;
	cs_free(s);
}
END_TEST

START_TEST(store_lru_eviction)
{
	/* small entries (the per-entry limit is cap / 8), a cap that holds
	 * three; 4 shards, so the order has to be kept across shards */
	size_t one;
	{
		cs_store *p = cs_new(1 << 20, 1);
		put_key(p, "a", 50, 0);
		one = cs_bytes(p);
		cs_free(p);
	}
	ck_assert_uint_gt(one, 50);
	ck_assert_uint_lt(one, 400);
	cs_store *s = cs_new(one * 3 + one / 2, 4);
	put_key(s, "a", 50, 0);
	put_key(s, "b", 50, 1);
	put_key(s, "c", 50, 2);
	ck_assert_uint_eq(cs_count(s), 3);
	ck_assert(is_hit(s, "a", 3));        /* a is now the most recent */
	put_key(s, "d", 50, 4);            /* evicts b, the least recent */
	ck_assert_uint_eq(cs_evictions(s), 1);
	ck_assert(!is_hit(s, "b", 5));
	ck_assert(is_hit(s, "a", 5));
	ck_assert(is_hit(s, "c", 5));
	ck_assert(is_hit(s, "d", 5));
	ck_assert_uint_le(cs_bytes(s), cs_cap(s));
	/* a, c, d used in that order: e evicts a, then f evicts c */
	put_key(s, "e", 50, 6);
	ck_assert(!is_hit(s, "a", 7));
	put_key(s, "f", 50, 8);
	ck_assert(!is_hit(s, "c", 9));
	ck_assert(is_hit(s, "d", 9) && is_hit(s, "e", 9) && is_hit(s, "f", 9));
	ck_assert_uint_eq(cs_evictions(s), 3);
	ck_assert_uint_eq(cs_count(s), 3);
	cs_free(s);
}
END_TEST

START_TEST(store_reference_outlives_entry)
{
	cs_store *s = cs_new(4096, 1);
	put_key(s, "a", 400, 0);               /* fresh until 100000 */
	cs_entry *e;
	cs_fill *f;
	g_next_waiter = NULL;
	ck_assert_int_eq(lookup(s, "a", 1, 0, &e, &f), CS_HIT);
	/* expired (dropped by the lookup) and replaced, then evicted, while
	 * the hit is in use */
	put_key(s, "a", 400, 100000);
	for (char k = 'b'; k <= 'k'; k++)
		put_key(s, (char[]){ k, 0 }, 400, 100001);
	ck_assert(!is_hit(s, "a", 100002));
	ck_assert_uint_eq(e->body_len, 400);
	for (size_t i = 0; i < e->body_len; i++)
		ck_assert_int_eq(e->body[i], 'x');    /* still readable (ASan would say) */
	cs_release(e);
	cs_free(s);
}
END_TEST

/* several threads on few keys with a small cap: lookups, fills, waits,
 * evictions racing; the store must stay consistent */
typedef struct tctx { cs_store *s; unsigned seed; int hits; } tctx;
typedef struct hwaiter { cs_waiter cw; atomic_int woken; } hwaiter;

static void hwake(cs_waiter *w)
{
	atomic_store(&((hwaiter *)w)->woken, 1);
}

static cs_waiter *mk_heap(void *ctx)
{
	hwaiter *t = calloc(1, sizeof *t);
	t->cw.wake = hwake;
	*(hwaiter **)ctx = t;
	return &t->cw;
}

static void *hammer(void *arg)
{
	tctx *t = arg;
	for (int i = 0; i < 20000; i++) {
		char key[16];
		t->seed = t->seed * 1103515245u + 12345u;
		snprintf(key, sizeof key, "k%u", (t->seed >> 16) % 40);
		cs_entry *e;
		cs_fill *f;
		hwaiter *w = NULL;
		int rc = cs_lookup(t->s, key, strlen(key), thdr, NULL, (uint64_t)i, 1,
		                   (t->seed & 0x100) ? mk_heap : NULL, &w, &e, &f);
		if (rc == CS_HIT) {
			t->hits++;
			ck_assert_uint_eq(e->body_len, 700);
			cs_release(e);
		} else if (rc == CS_WAIT) {
			/* leave at once; if the fill ended meanwhile, the waiter is
			 * ours again only once wake() has run (as in cache.c, it is
			 * never freed by the waking thread) */
			if (!cs_wait_cancel(t->s, &w->cw))
				while (!atomic_load(&w->woken))
					sched_yield();
			free(w);
		} else if (f) {
			char *b = malloc(700);
			memset(b, 'y', 700);
			cs_put p = { .status = 200, .expires_ms = (uint64_t)i + 500, .body = b,
			             .body_len = 700 };
			cs_fill_done(t->s, f, &p, thdr, NULL, (uint64_t)i, 0);
		}
	}
	return NULL;
}

START_TEST(store_threads)
{
	cs_store *s = cs_new(20000, 8);
	pthread_t th[4];
	tctx c[4];
	for (int i = 0; i < 4; i++) {
		c[i].s = s;
		c[i].seed = (unsigned)i * 7919u + 1;
		c[i].hits = 0;
		pthread_create(&th[i], NULL, hammer, &c[i]);
	}
	int hits = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		hits += c[i].hits;
	}
	ck_assert_int_gt(hits, 1000);
	ck_assert_uint_le(cs_bytes(s), cs_cap(s));
	/* every fill was ended: a lookup of each key now finds no fill */
	for (int k = 0; k < 40; k++) {
		char key[16];
		snprintf(key, sizeof key, "k%d", k);
		cs_entry *e;
		cs_fill *f;
		int rc = cs_lookup(s, key, strlen(key), thdr, NULL, 1u << 30, 1, NULL, NULL, &e, &f);
		ck_assert_int_eq(rc, CS_MISS);
		ck_assert_ptr_nonnull(f);
		cs_fill_done(s, f, NULL, NULL, NULL, 1u << 30, 0);
	}
	ck_assert_uint_eq(cs_count(s), 0);
	ck_assert_uint_eq(cs_bytes(s), 0);
	cs_free(s);
}
END_TEST

/* ===================================================== caching rules */
static cs_cc cc_of(const char *v)
{
	cs_cc cc;
	cs_cc_init(&cc);
	cs_cc_parse(&cc, v, strlen(v));
	return cc;
}

START_TEST(cache_control_parse)
{
	cs_cc cc = cc_of("public, max-age=60, s-maxage=\"10\"");
	ck_assert_uint_eq(cc.flags, CS_CC_PUBLIC);
	ck_assert_int_eq(cc.max_age, 60);
	ck_assert_int_eq(cc.s_maxage, 10);
	cc = cc_of("No-Store");
	ck_assert_uint_eq(cc.flags, CS_CC_NO_STORE);
	ck_assert_int_eq(cc.max_age, -1);
	cc = cc_of("private=\"Set-Cookie, X-A\", max-age=5");
	ck_assert_uint_eq(cc.flags, CS_CC_PRIVATE);
	ck_assert_int_eq(cc.max_age, 5);
	cc = cc_of("no-cache=\"x\",must-revalidate");
	ck_assert_uint_eq(cc.flags, CS_CC_NO_CACHE | CS_CC_MUST_REVALIDATE);
	cc = cc_of("max-age=abc");           /* malformed: stale */
	ck_assert_int_eq(cc.max_age, 0);
	cc = cc_of("max-age=100, max-age=20");   /* conflicting: the smaller */
	ck_assert_int_eq(cc.max_age, 20);
	cc = cc_of("max-agex=5, x-max-age=7, no-storex");
	ck_assert_uint_eq(cc.flags, 0);
	ck_assert_int_eq(cc.max_age, -1);
	/* several header lines accumulate */
	cs_cc_init(&cc);
	cs_cc_parse(&cc, "max-age=30", 10);
	cs_cc_parse(&cc, "no-store", 8);
	ck_assert_int_eq(cc.max_age, 30);
	ck_assert_uint_eq(cc.flags, CS_CC_NO_STORE);
}
END_TEST

START_TEST(http_dates)
{
	int64_t t;
	const char *a = "Sun, 06 Nov 1994 08:49:37 GMT";
	ck_assert_int_eq(cs_http_date(a, strlen(a), &t), 0);
	ck_assert_int_eq(t, 784111777);
	const char *b = "Sunday, 06-Nov-94 08:49:37 GMT";
	ck_assert_int_eq(cs_http_date(b, strlen(b), &t), 0);
	ck_assert_int_eq(t, 784111777);
	const char *c = "Sun Nov  6 08:49:37 1994";
	ck_assert_int_eq(cs_http_date(c, strlen(c), &t), 0);
	ck_assert_int_eq(t, 784111777);
	const char *bad[] = { "0", "", "-1", "Sun, 06 Nov 1994 08:49:37", "tomorrow" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_int_eq(cs_http_date(bad[i], strlen(bad[i]), &t), -1);
}
END_TEST

static cs_policy pol(int status, const char *cc)
{
	cs_policy p;
	memset(&p, 0, sizeof p);
	cs_cc_init(&p.cc);
	if (cc)
		cs_cc_parse(&p.cc, cc, strlen(cc));
	p.status = status;
	p.now_s = 1000000;
	p.default_ttl_ms = 30000;
	return p;
}

START_TEST(freshness)
{
	const char *why;
	int in;
	cs_policy p = pol(200, NULL);
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 30000);      /* the directive's ttl */
	p = pol(200, "max-age=60");
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 60000);
	p = pol(200, "max-age=60, s-maxage=5");
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 5000);       /* s-maxage wins */
	p = pol(200, "max-age=60");
	p.has_expires = 1;
	p.expires_s = p.now_s + 500;
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 60000);      /* max-age beats Expires */
	p = pol(200, NULL);
	p.has_expires = 1;
	p.expires_s = p.now_s + 500;
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 500000);
	p.has_date = 1;                                           /* Expires - Date */
	p.date_s = p.now_s + 100;
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 400000);
	p.expires_s = 0;                                          /* invalid: expired */
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 0);
	ck_assert_str_eq(why, "stale");
	ck_assert_int_eq(in, 1);
	p = pol(200, "max-age=10");
	p.age_s = 4;                                              /* minus Age */
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 6000);
	p.age_s = 10;
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 0);
	p = pol(200, "max-age=0");
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 0);
	/* refusals */
	static const struct { int st; const char *cc; int cookie, star; const char *why; } no[] = {
		{ 200, "no-store", 0, 0, "no-store" }, { 200, "private", 0, 0, "private" },
		{ 200, "no-cache", 0, 0, "no-cache" }, { 200, NULL, 1, 0, "Set-Cookie" },
		{ 200, NULL, 0, 1, "Vary: *" }, { 500, NULL, 0, 0, "status" },
		{ 302, "max-age=60", 0, 0, "status" }, { 206, NULL, 0, 0, "status" },
		{ 204, NULL, 0, 0, "status" }, { 304, NULL, 0, 0, "status" },
	};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		p = pol(no[i].st, no[i].cc);
		p.set_cookie = no[i].cookie;
		p.vary_star = no[i].star;
		ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 0);
		ck_assert_str_eq(why, no[i].why);
		ck_assert_int_eq(in, 1);
	}
	static const int yes[] = { 200, 203, 301, 404, 410 };
	for (size_t i = 0; i < 5; i++) {
		p = pol(yes[i], NULL);
		ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 30000);
	}
	/* Authorization: only public / s-maxage / must-revalidate; request-specific */
	p = pol(200, "max-age=60");
	p.authorization = 1;
	ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 0);
	ck_assert_str_eq(why, "Authorization");
	ck_assert_int_eq(in, 0);
	const char *ok[] = { "public, max-age=60", "s-maxage=60", "must-revalidate, max-age=60" };
	for (size_t i = 0; i < 3; i++) {
		p = pol(200, ok[i]);
		p.authorization = 1;
		ck_assert_int_eq(cs_fresh_ms(&p, &why, &in), 60000);
	}
}
END_TEST

/* ============================================================= cors */
START_TEST(cors_origins)
{
	const char *l = "https://a.example, http://b.example:8080 https://*.c.example";
	struct { const char *o; int ok; } t[] = {
		{ "https://a.example", 1 }, { "HTTPS://A.EXAMPLE", 1 }, { "http://a.example", 0 },
		{ "https://a.example.evil", 0 }, { "https://xa.example", 0 },
		{ "http://b.example:8080", 1 }, { "http://b.example", 0 },
		{ "https://x.c.example", 1 }, { "https://x.y.c.example", 1 },
		{ "https://c.example", 0 }, { "https://.c.example", 0 }, { "http://x.c.example", 0 },
		{ "https://evil.com/.c.example", 0 }, { "https://x.c.example:444", 0 },
		{ "null", 0 }, { "", 0 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		ck_assert_msg(cors_origin_allowed(l, strlen(l), t[i].o, strlen(t[i].o)) == t[i].ok,
		              "%s", t[i].o);
	ck_assert(cors_origin_allowed("*", 1, "https://anything", 16));
	ck_assert(cors_origin_allowed("null", 4, "null", 4));
	ck_assert(!cors_origin_allowed("", 0, "https://a.example", 17));
}
END_TEST

/* insn: CORS origins(1) methods(2) headers(3) max_age credentials */
static uint32_t cors_insn[6] = { GWB_OP_CORS, 1, 2, 3, 600, 0 };

static void cors_table(const char *origins, const char *methods, const char *headers, int cred)
{
	g_strs[1] = origins;
	g_strs[2] = methods;
	g_strs[3] = headers;
	cors_insn[5] = (uint32_t)cred;
}

START_TEST(cors_preflight)
{
	cors_table("https://a.example", "GET, PUT", "", 1);
	gw_req *r = fake("OPTIONS", "Origin", "https://a.example",
	                 "Access-Control-Request-Method", "PUT",
	                 "Access-Control-Request-Headers", "X-A, Content-Type", NULL);
	ck_assert_int_eq(cors_early(r, cors_insn, NULL), GW_DONE);
	ck_assert_int_eq(r->status, 204);
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Origin"), "https://a.example");
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Credentials"), "true");
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Methods"), "GET, PUT");
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Headers"), "X-A, Content-Type");
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Max-Age"), "600");
	ck_assert_str_eq(resp_hdr(r, "Vary"), "Origin");
	/* the header filter then leaves the answer alone */
	int ned = r->ned;
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_int_eq(r->ned, ned);
	free(r);
	/* configured headers win over the echo; "*" without credentials */
	cors_table("*", "GET", "X-Only", 0);
	r = fake("OPTIONS", "Origin", "https://z.example", "Access-Control-Request-Method", "GET",
	         "Access-Control-Request-Headers", "X-Other", NULL);
	ck_assert_int_eq(cors_early(r, cors_insn, NULL), GW_DONE);
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Origin"), "*");
	ck_assert_ptr_null(resp_hdr(r, "Access-Control-Allow-Credentials"));
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Headers"), "X-Only");
	free(r);
	/* "*" with credentials echoes the origin */
	cors_table("*", "GET", "", 1);
	r = fake("OPTIONS", "Origin", "https://z.example", "Access-Control-Request-Method", "GET", NULL);
	ck_assert_int_eq(cors_early(r, cors_insn, NULL), GW_DONE);
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Origin"), "https://z.example");
	ck_assert_ptr_null(resp_hdr(r, "Access-Control-Allow-Headers"));
	free(r);
	/* a disallowed origin: 403, no CORS headers */
	cors_table("https://a.example", "GET", "", 0);
	r = fake("OPTIONS", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET", NULL);
	ck_assert_int_eq(cors_early(r, cors_insn, NULL), 403);
	ck_assert_ptr_null(resp_hdr(r, "Access-Control-Allow-Origin"));
	ck_assert_ptr_null(resp_hdr(r, "Access-Control-Allow-Methods"));
	ck_assert_str_eq(resp_hdr(r, "Vary"), "Origin");
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_ptr_null(resp_hdr(r, "Access-Control-Allow-Origin"));
	free(r);
	/* not preflights: OPTIONS without Access-Control-Request-Method, or
	 * without Origin, or another method */
	r = fake("OPTIONS", "Origin", "https://a.example", NULL);
	ck_assert_int_eq(cors_early(r, cors_insn, NULL), GW_OK);
	ck_assert_int_eq(r->ned, 0);
	free(r);
	r = fake("OPTIONS", "Access-Control-Request-Method", "GET", NULL);
	ck_assert_int_eq(cors_early(r, cors_insn, NULL), GW_OK);
	free(r);
	r = fake("GET", "Origin", "https://a.example", "Access-Control-Request-Method", "GET", NULL);
	ck_assert_int_eq(cors_early(r, cors_insn, NULL), GW_OK);
	ck_assert_int_eq(r->status, 0);
	free(r);
}
END_TEST

START_TEST(cors_actual)
{
	/* an upstream that does CORS itself: the route's policy replaces it */
	static const char *const up[] = { "Access-Control-Allow-Origin", "*",
	                                   "Access-Control-Allow-Credentials", "true",
	                                   "Vary", "Accept-Encoding", NULL };
	cors_table("https://a.example", "GET", "", 1);
	gw_req *r = fake("GET", "Origin", "https://a.example", NULL);
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_str_eq(resp_hdr_on(r, up, "Access-Control-Allow-Origin"), "https://a.example");
	ck_assert_str_eq(resp_hdr_on(r, up, "Access-Control-Allow-Credentials"), "true");
	ck_assert_str_eq(resp_hdr_on(r, up, "Vary"), "Accept-Encoding|Origin");
	free(r);
	r = fake("GET", "Origin", "https://evil.example", NULL);
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_ptr_null(resp_hdr_on(r, up, "Access-Control-Allow-Origin"));
	ck_assert_ptr_null(resp_hdr_on(r, up, "Access-Control-Allow-Credentials"));
	ck_assert_str_eq(resp_hdr_on(r, up, "Vary"), "Accept-Encoding|Origin");
	free(r);
	r = fake("GET", NULL);                 /* no Origin: same as disallowed */
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_ptr_null(resp_hdr_on(r, up, "Access-Control-Allow-Origin"));
	ck_assert_str_eq(resp_hdr(r, "Vary"), "Origin");
	free(r);
	/* without credentials no -Allow-Credentials, even the upstream's */
	cors_table("https://a.example", "GET", "", 0);
	r = fake("POST", "Origin", "https://a.example", NULL);
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_ptr_null(resp_hdr_on(r, up, "Access-Control-Allow-Credentials"));
	free(r);
	/* "*" without credentials: always *, no Vary needed */
	cors_table("*", "GET", "", 0);
	r = fake("GET", NULL);
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_str_eq(resp_hdr(r, "Access-Control-Allow-Origin"), "*");
	ck_assert_ptr_null(resp_hdr(r, "Vary"));
	/* a second cors directive does nothing more */
	int ned = r->ned;
	ck_assert_int_eq(cors_handler(r, cors_insn, NULL), GW_OK);
	ck_assert_int_eq(r->ned, ned);
	free(r);
}
END_TEST

/* ======================================================= body_limit */
START_TEST(body_limit)
{
	uint32_t insn[2] = { GWB_OP_BODY_LIMIT, 1000 };
	gw_req *r = fake("POST", NULL);
	r->cl = 1000;
	ck_assert_int_eq(bl_handler(r, insn, NULL), GW_OK);
	ck_assert_uint_eq(r->limit, 1000);
	r->cl = 1001;
	r->limit = 0;
	ck_assert_int_eq(bl_handler(r, insn, NULL), 413);
	r->cl = -1;                            /* chunked: enforced while streaming */
	r->limit = 0;
	ck_assert_int_eq(bl_handler(r, insn, NULL), GW_OK);
	ck_assert_uint_eq(r->limit, 1000);
	/* two limits: the smaller applies */
	uint32_t big[2] = { GWB_OP_BODY_LIMIT, 5000 };
	ck_assert_int_eq(bl_handler(r, big, NULL), GW_OK);
	ck_assert_uint_eq(r->limit, 1000);
	/* body_limit 0: no body at all */
	uint32_t zero[2] = { GWB_OP_BODY_LIMIT, 0 };
	r->cl = 0;
	ck_assert_int_eq(bl_handler(r, zero, NULL), GW_OK);
	r->cl = 1;
	ck_assert_int_eq(bl_handler(r, zero, NULL), 413);
	r->cl = -1;
	ck_assert_int_eq(bl_handler(r, zero, NULL), 413);
	free(r);
}
END_TEST

/* ============================================================= logs */
START_TEST(log_sampling_math)
{
	ck_assert(!logctl_sampled(0, 0));
	ck_assert(logctl_sampled(0, 1));
	ck_assert(logctl_sampled(UINT64_MAX, 1000000));
	ck_assert(!logctl_sampled(UINT64_MAX, 999999));
	/* the threshold: rnd at the boundary of ppm/1e6 */
	uint64_t half = (uint64_t)1 << 63;
	ck_assert(!logctl_sampled(half, 500000));
	ck_assert(logctl_sampled(half - 4096, 500000));
	/* the generator: 10% over a million draws within 1% of it, and no
	 * short cycle */
	int kept = 0;
	uint64_t first = logctl_rand(), same = 0;
	for (int i = 0; i < 1000000; i++) {
		uint64_t x = logctl_rand();
		same += x == first;
		kept += logctl_sampled(x, 100000);
	}
	ck_assert_msg(kept > 99000 && kept < 101000, "kept %d of 1000000 at 10%%", kept);
	ck_assert_uint_eq(same, 0);
	kept = 0;
	for (int i = 0; i < 100000; i++)
		kept += logctl_sampled(logctl_rand(), 0);
	ck_assert_int_eq(kept, 0);
}
END_TEST

START_TEST(log_flags_and_tags)
{
	uint32_t off[1] = { GWB_OP_LOG_OFF };
	uint32_t all[2] = { GWB_OP_LOG_SAMPLE, 1000000 }, none[2] = { GWB_OP_LOG_SAMPLE, 0 };
	uint32_t t1[2] = { GWB_OP_TAG, 4 }, t2[2] = { GWB_OP_TAG, 5 };
	g_strs[4] = "payments";
	g_strs[5] = "beta";
	gw_req *r = fake("GET", NULL);
	ck_assert_int_eq(gw_req_log_off(r), 0);
	ck_assert_uint_eq(gw_req_tags(r, NULL), 0);
	ck_assert_int_eq(logctl_handler(r, all, NULL), GW_OK);
	ck_assert_int_eq(gw_req_log_off(r), 0);
	ck_assert_int_eq(logctl_handler(r, t1, NULL), GW_OK);
	ck_assert_int_eq(logctl_handler(r, t2, NULL), GW_OK);
	ck_assert_int_eq(logctl_handler(r, t1, NULL), GW_OK);   /* once */
	const char *const *tags;
	ck_assert_uint_eq(gw_req_tags(r, &tags), 2);
	ck_assert_str_eq(tags[0], "payments");
	ck_assert_str_eq(tags[1], "beta");
	ck_assert_int_eq(logctl_handler(r, none, NULL), GW_OK);
	ck_assert_int_eq(gw_req_log_off(r), 1);
	free(r);
	r = fake("GET", NULL);
	ck_assert_int_eq(logctl_handler(r, off, NULL), GW_OK);
	ck_assert_int_eq(gw_req_log_off(r), 1);
	free(r);
	/* sample=0.25 over many requests */
	uint32_t q[2] = { GWB_OP_LOG_SAMPLE, 250000 };
	int logged = 0;
	for (int i = 0; i < 20000; i++) {
		r = fake("GET", NULL);
		logctl_handler(r, q, NULL);
		logged += !gw_req_log_off(r);
		free(r);
	}
	ck_assert_msg(logged > 4700 && logged < 5300, "logged %d of 20000 at 25%%", logged);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("content plugins");
	TCase *t = tcase_create("store");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, store_miss_fill_hit_expire);
	tcase_add_test(t, store_coalescing);
	tcase_add_test(t, store_pass_objects);
	tcase_add_test(t, store_vary);
	tcase_add_test(t, store_lru_eviction);
	tcase_add_test(t, store_reference_outlives_entry);
	tcase_add_test(t, store_threads);
	suite_add_tcase(s, t);
	t = tcase_create("rules");
	tcase_add_test(t, cache_control_parse);
	tcase_add_test(t, http_dates);
	tcase_add_test(t, freshness);
	suite_add_tcase(s, t);
	t = tcase_create("plugins");
	tcase_set_timeout(t, 30);
	tcase_add_test(t, cors_origins);
	tcase_add_test(t, cors_preflight);
	tcase_add_test(t, cors_actual);
	tcase_add_test(t, body_limit);
	tcase_add_test(t, log_sampling_math);
	tcase_add_test(t, log_flags_and_tags);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

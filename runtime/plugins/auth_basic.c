/*
 * auth_basic.c — `auth basic users=file("htpasswd") [realm="..."]`.
 *
 * htpasswd file: `user:hash` per line (anything after a further ':' is
 * ignored), '#' comments and blank lines skipped. Hashes are verified by
 * libxcrypt's crypt_rn: bcrypt ($2y$, $2b$, $2a$), SHA-crypt ($5$, $6$)
 * and the other methods libxcrypt considers current (yescrypt $y$...).
 * Lines with legacy (DES, MD5-crypt), unknown or plain-text "hashes" are
 * logged and skipped: those users cannot log in. A duplicate user keeps
 * its first line. The file is re-read when it changes (keyfile.h).
 *
 * bcrypt is slow on purpose (cost 10 is ~60 ms here), so it never runs
 * on the event loop:
 *  - a verification that succeeded is remembered in a bounded cache keyed
 *    by SHA-256(user NUL password NUL stored-hash) — a client that sends
 *    the same credentials again is let in at the cost of one SHA-256, and
 *    changing the user's hash in the file invalidates its entries;
 *  - otherwise the request waits (GW_AGAIN) while one of a few verifier
 *    threads runs crypt_rn; the result comes back to the request's worker
 *    through an eventfd watched by its loop (gw_loop_watch) and the
 *    request resumes there (gw_req_resume). A request that ends while its
 *    verification runs is noticed in request_done and its result dropped.
 *    When AB_MAX_QUEUE verifications are already waiting, the request is
 *    answered 503 with Retry-After: 1 rather than queued behind them.
 * An unknown user is refused at once, without a hash computation (which
 * tells a prober that the user does not exist; the price of not letting
 * anyone burn a verifier thread for free).
 *
 * Refusal: 401 with the JSON error body and
 *   WWW-Authenticate: Basic realm="REALM", charset="UTF-8"
 * (REALM defaults to "gw"). The consumer of a request let in is the user.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "keyfile.h"
#include "log.h"

#define AB_MAX_WORKERS 1024       /* gateway.yaml's threads limit */
#define AB_MAX_THREADS 4          /* verifier threads */
#define AB_MAX_QUEUE   256        /* verifications waiting for a thread */
#define AB_CACHE_SHARDS 16
#define AB_CACHE_WAYS   512       /* entries per shard */

/* --------------------------------------------------------- htpasswd */
typedef struct ab_user { char *name, *hash; } ab_user;
typedef struct ab_users { size_t cap, n; ab_user *slot; } ab_users;

static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static const ab_user *ab_find(const ab_users *u, const char *name, size_t n)
{
	if (!u->cap)
		return NULL;
	for (size_t i = (size_t)fnv(name, n) & (u->cap - 1);; i = (i + 1) & (u->cap - 1)) {
		const ab_user *e = &u->slot[i];
		if (!e->name)
			return NULL;
		if (strlen(e->name) == n && memcmp(e->name, name, n) == 0)
			return e;
	}
}

static void ab_users_free(void *obj)
{
	ab_users *u = obj;
	if (!u)
		return;
	for (size_t i = 0; i < u->cap; i++) {
		free(u->slot[i].name);
		free(u->slot[i].hash);
	}
	free(u->slot);
	free(u);
}

static void *ab_parse(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += data[i] == '\n';
	size_t cap = 16;
	while (cap < 2 * lines)
		cap *= 2;
	ab_users *u = calloc(1, sizeof *u);
	if (u)
		u->slot = calloc(cap, sizeof *u->slot);
	if (!u || !u->slot)
		goto oom;
	u->cap = cap;
	unsigned lineno = 0;
	for (const char *p = data, *end = data + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line = p;
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		p = nl ? nl + 1 : end;
		lineno++;
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		while (n && (*line == ' ' || *line == '\t')) {
			line++;
			n--;
		}
		if (n == 0 || line[0] == '#')
			continue;
		const char *c1 = memchr(line, ':', n);
		if (!c1 || c1 == line) {
			log_warn("%s:%u: not user:hash, line ignored", path, lineno);
			continue;
		}
		size_t un = (size_t)(c1 - line);
		const char *h = c1 + 1;
		const char *c2 = memchr(h, ':', n - un - 1);
		size_t hn = c2 ? (size_t)(c2 - h) : n - un - 1;
		char *hash = strndup(h, hn);
		if (!hash)
			goto oom;
		int cs = crypt_checksalt(hash);
		/* libxcrypt calls SHA-256-crypt legacy (its strong set is
		 * yescrypt, bcrypt, SHA-512-crypt), but the design names
		 * $5$ among the htpasswd hashes to accept (htpasswd -2) */
		if (cs == CRYPT_SALT_METHOD_LEGACY && !strncmp(hash, "$5$", 3))
			cs = CRYPT_SALT_OK;
		if (hn == 0 || hash[0] != '$' || (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_TOO_CHEAP)) {
			log_warn("%s:%u: user '%.*s': %s, line ignored", path, lineno, (int)un, line,
			         hash[0] != '$' || cs == CRYPT_SALT_INVALID
			             ? "not a hash gwd can verify (use bcrypt $2y$/$2b$ or SHA-crypt $5$/$6$)"
			             : "legacy or disabled hash method (use bcrypt or SHA-crypt)");
			free(hash);
			continue;
		}
		if (ab_find(u, line, un)) {
			log_warn("%s:%u: duplicate user '%.*s', line ignored", path, lineno, (int)un, line);
			free(hash);
			continue;
		}
		size_t i = (size_t)fnv(line, un) & (u->cap - 1);
		while (u->slot[i].name)
			i = (i + 1) & (u->cap - 1);
		if (!(u->slot[i].name = strndup(line, un))) {
			free(hash);
			goto oom;
		}
		u->slot[i].hash = hash;
		u->n++;
	}
	return u;
oom:
	ab_users_free(u);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

static const kf_kind ab_kind = { "htpasswd file", ab_parse, ab_users_free };

/* ------------------------------------------------ verification cache */
typedef struct ab_shard {
	pthread_mutex_t mu;
	unsigned char d[AB_CACHE_WAYS][32];
} ab_shard;

static ab_shard ab_cache[AB_CACHE_SHARDS];
static pthread_once_t ab_once = PTHREAD_ONCE_INIT;

static void ab_cache_init(void)
{
	for (int i = 0; i < AB_CACHE_SHARDS; i++)
		pthread_mutex_init(&ab_cache[i].mu, NULL);
}

static int ab_cache_has(const unsigned char d[32])
{
	ab_shard *s = &ab_cache[d[0] % AB_CACHE_SHARDS];
	size_t i = ((size_t)d[1] << 8 | d[2]) % AB_CACHE_WAYS;
	pthread_mutex_lock(&s->mu);
	int hit = CRYPTO_memcmp(s->d[i], d, 32) == 0;
	pthread_mutex_unlock(&s->mu);
	return hit;
}

static void ab_cache_put(const unsigned char d[32])
{
	ab_shard *s = &ab_cache[d[0] % AB_CACHE_SHARDS];
	size_t i = ((size_t)d[1] << 8 | d[2]) % AB_CACHE_WAYS;
	pthread_mutex_lock(&s->mu);
	memcpy(s->d[i], d, 32);
	pthread_mutex_unlock(&s->mu);
}

/* crypt_rn(pass, hash) == hash, compared in constant time */
static int ab_crypt_ok(const char *pass, const char *hash, struct crypt_data *cd)
{
	memset(cd, 0, sizeof *cd);
	const char *out = crypt_rn(pass, hash, cd, (int)sizeof *cd);
	size_t n = strlen(hash);
	int ok = out && out[0] != '*' && strlen(out) == n && CRYPTO_memcmp(out, hash, n) == 0;
	OPENSSL_cleanse(cd, sizeof *cd);
	return ok;
}

/* ---------------------------------------------------- verifier threads */
typedef struct ab_job {
	struct ab_job *next;
	gw_req *r;
	int done;                 /* worker thread: result is in */
	int cancelled;            /* worker thread: the request is gone */
	int ok;                   /* set by the verifier thread */
	unsigned worker;
	unsigned char digest[32];
	char *user, *pass, *hash;
} ab_job;

typedef struct ab_worker {
	int efd;
	pthread_mutex_t mu;
	ab_job *done;             /* finished jobs for this worker (mu) */
} ab_worker;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ab_job *head, *tail;
	unsigned queued;
	int nthreads;
} ab_pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0 };

static ab_worker *ab_workers[AB_MAX_WORKERS];   /* written by their worker only */

static void ab_job_free(ab_job *j)
{
	if (!j)
		return;
	if (j->pass)
		OPENSSL_cleanse(j->pass, strlen(j->pass));
	free(j->pass);
	free(j->user);
	free(j->hash);
	free(j);
}

static void *ab_thread(void *arg)
{
	(void)arg;
	struct crypt_data *cd = malloc(sizeof *cd);
	for (;;) {
		pthread_mutex_lock(&ab_pool.mu);
		while (!ab_pool.head)
			pthread_cond_wait(&ab_pool.cv, &ab_pool.mu);
		ab_job *j = ab_pool.head;
		ab_pool.head = j->next;
		if (!ab_pool.head)
			ab_pool.tail = NULL;
		ab_pool.queued--;
		pthread_mutex_unlock(&ab_pool.mu);

		j->ok = cd && ab_crypt_ok(j->pass, j->hash, cd);
		ab_worker *w = ab_workers[j->worker];
		pthread_mutex_lock(&w->mu);
		j->next = w->done;
		w->done = j;
		pthread_mutex_unlock(&w->mu);
		uint64_t one = 1;
		ssize_t k = write(w->efd, &one, sizeof one);
		(void)k;                  /* a full counter still wakes the loop */
	}
	return NULL;
}

/* the worker's loop says its eventfd is readable: resume the requests */
static void ab_on_done(int fd, unsigned events, void *arg)
{
	ab_worker *w = arg;
	uint64_t v;
	ssize_t k = read(fd, &v, sizeof v);
	(void)k;
	pthread_mutex_lock(&w->mu);
	ab_job *j = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->mu);
	while (j) {
		ab_job *next = j->next;
		if (j->cancelled) {
			ab_job_free(j);
		} else {
			j->done = 1;
			gw_req_resume(j->r);      /* runs ab_handler again, which frees j */
		}
		j = next;
	}
}

/* this worker's completion channel; created on the worker thread */
static ab_worker *ab_worker_get(unsigned idx)
{
	if (idx >= AB_MAX_WORKERS)
		return NULL;
	if (ab_workers[idx])
		return ab_workers[idx];
	ab_worker *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&w->mu, NULL);
	if (w->efd < 0 || gw_loop_watch(w->efd, GW_IO_READ, ab_on_done, w) != 0) {
		log_warn("auth basic: no completion channel for worker %u (%s): verifying on "
		         "the worker", idx, strerror(errno));
		if (w->efd >= 0)
			close(w->efd);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	ab_workers[idx] = w;
	return w;
}

/* 0 queued, -1 no verifier (do it here), -2 queue full */
static int ab_submit(ab_job *j)
{
	pthread_mutex_lock(&ab_pool.mu);
	if (ab_pool.nthreads == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		int want = ncpu < 1 ? 1 : ncpu > AB_MAX_THREADS ? AB_MAX_THREADS : (int)ncpu;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		for (int i = 0; i < want; i++) {
			pthread_t th;
			if (pthread_create(&th, &at, ab_thread, NULL) == 0)
				ab_pool.nthreads++;
		}
		pthread_attr_destroy(&at);
		if (ab_pool.nthreads == 0) {
			pthread_mutex_unlock(&ab_pool.mu);
			return -1;
		}
	}
	if (ab_pool.queued >= AB_MAX_QUEUE) {
		pthread_mutex_unlock(&ab_pool.mu);
		return -2;
	}
	j->next = NULL;
	if (ab_pool.tail)
		ab_pool.tail->next = j;
	else
		ab_pool.head = j;
	ab_pool.tail = j;
	ab_pool.queued++;
	pthread_cond_signal(&ab_pool.cv);
	pthread_mutex_unlock(&ab_pool.mu);
	return 0;
}

/* ----------------------------------------------------------- directives */
typedef struct ab_dir {
	kf_file *f;
	char *challenge;
	size_t clen;
} ab_dir;

typedef struct ab_state { kf_map dirs; } ab_state;

static void ab_dispose(void *state)
{
	ab_state *st = state;
	if (!st)
		return;
	for (size_t i = 0; i < st->dirs.cap; i++) {
		ab_dir *d = st->dirs.val[i];
		if (d) {
			kf_close(d->f);
			free(d->challenge);
			free(d);
		}
	}
	kf_map_free(&st->dirs);
	free(st);
}

typedef struct ab_build { ab_state *st; char *err; size_t errlen; } ab_build;

static int ab_add(const gwb_table *t, uint32_t route, const uint32_t *insn, void *arg)
{
	ab_build *b = arg;
	uint64_t key = kf_words_key(insn + 1, 2);
	if (kf_map_get(&b->st->dirs, key))
		return 0;
	char where[256], ferr[400];
	kf_route_where(t, route, where, sizeof where);
	ab_dir *d = calloc(1, sizeof *d);
	if (!d)
		goto oom;
	d->f = kf_open(gwb_str(t, insn[1], NULL), &ab_kind, ferr, sizeof ferr);
	if (!d->f) {
		snprintf(b->err, b->errlen, "%s: auth basic: %s", where, ferr);
		free(d);
		return -1;
	}
	const char *realm = gwb_str(t, insn[2], NULL);
	size_t qn = auth_quote(*realm ? realm : "gw", NULL, 0);
	char *q = malloc(qn + 1);
	if (!q)
		goto oom;
	auth_quote(*realm ? realm : "gw", q, qn + 1);
	d->clen = (size_t)snprintf(NULL, 0, "Basic realm=%s, charset=\"UTF-8\"", q);
	d->challenge = malloc(d->clen + 1);
	if (d->challenge)
		snprintf(d->challenge, d->clen + 1, "Basic realm=%s, charset=\"UTF-8\"", q);
	free(q);
	if (!d->challenge || kf_map_put(&b->st->dirs, key, d) < 0)
		goto oom;
	return 0;
oom:
	if (d) {
		kf_close(d->f);
		free(d->challenge);
		free(d);
	}
	snprintf(b->err, b->errlen, "%s: out of memory", where);
	return -1;
}

static int ab_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	pthread_once(&ab_once, ab_cache_init);
	ab_state *st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ab_build b = { st, err, errlen };
	if (kf_each_op(t, GWB_OP_AUTH_BASIC, ab_add, &b)) {
		ab_dispose(st);
		return -1;
	}
	*state = st;
	return 0;
}

/* ------------------------------------------------------------- requests */
static int b64v(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* standard base64 with optional padding into out (NUL-terminated);
 * returns the length or -1 */
static long b64_decode(const char *in, size_t n, char *out)
{
	while (n && in[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	uint32_t acc = 0;
	unsigned bits = 0;
	long k = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64v((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	out[k] = '\0';
	return k;
}

/* user and password from Authorization: Basic; 0 if absent or malformed */
static int ab_credentials(gw_req *r, char **user, size_t *un, char **pass)
{
	const char *h;
	size_t hn;
	if (!gw_req_header(r, "Authorization", &h, &hn) || hn < 6 || strncasecmp(h, "Basic ", 6))
		return 0;
	h += 6;
	hn -= 6;
	while (hn && *h == ' ') {
		h++;
		hn--;
	}
	while (hn && h[hn - 1] == ' ')
		hn--;
	if (hn == 0 || hn > 4096)
		return 0;
	char *buf = gw_req_alloc(r, hn);
	long n = buf ? b64_decode(h, hn, buf) : -1;
	if (n <= 0 || memchr(buf, '\0', (size_t)n))
		return 0;
	char *colon = memchr(buf, ':', (size_t)n);
	if (!colon || colon == buf)
		return 0;
	*colon = '\0';
	*user = buf;
	*un = (size_t)(colon - buf);
	*pass = colon + 1;
	return 1;
}

static int ab_pass(gw_req *r, const char *user, size_t un)
{
	if (gw_req_set_consumer(r, user, un) < 0)
		return 500;
	log_debug("request %s: auth basic: consumer %s (route %s)", gw_req_id(r),
	          gw_req_consumer(r, NULL), auth_route_name(r));
	return GW_OK;
}

static int ab_refuse(gw_req *r, const ab_dir *d, const char *why)
{
	log_debug("request %s: auth basic: %s (route %s)", gw_req_id(r), why, auth_route_name(r));
	gw_resp_set_header(r, "WWW-Authenticate", d->challenge, d->clen);
	return 401;
}

static int ab_handler(gw_req *r, const uint32_t *insn, void *state)
{
	ab_state *st = state;
	const ab_dir *d = kf_map_get(&st->dirs, kf_words_key(insn + 1, 2));
	if (!d)
		return 500;      /* init saw every AUTH_BASIC of the table */
	void **slot = gw_req_ctx(r, GWP_ID_auth_basic);
	ab_job *j = *slot;
	if (j && j->done) {
		/* resumed: the verifier thread has answered */
		*slot = NULL;
		int ok = j->ok, rc = GW_OK;
		if (ok) {
			ab_cache_put(j->digest);
			rc = ab_pass(r, j->user, strlen(j->user));
		}
		ab_job_free(j);
		return ok ? rc : ab_refuse(r, d, "wrong password");
	}
	char *user, *pass;
	size_t un;
	if (!ab_credentials(r, &user, &un, &pass))
		return ab_refuse(r, d, "no credentials");

	/* the user's hash, copied out of the read section */
	kf_ref ref;
	const ab_users *us = kf_enter(d->f, (unsigned)gw_req_worker(r), &ref);
	const ab_user *u = ab_find(us, user, un);
	char *hash = u ? strdup(u->hash) : NULL;
	kf_leave(&ref);
	if (!u)
		return ab_refuse(r, d, "unknown user");
	if (!hash)
		return 500;

	unsigned char dg[32];
	{
		size_t pn = strlen(pass), hn = strlen(hash);
		size_t tot = un + 1 + pn + 1 + hn;
		unsigned char *m = gw_req_alloc(r, tot);
		if (!m) {
			free(hash);
			return 500;
		}
		memcpy(m, user, un + 1);
		memcpy(m + un + 1, pass, pn + 1);
		memcpy(m + un + 1 + pn + 1, hash, hn);
		kf_sha256(m, tot, dg);
		OPENSSL_cleanse(m, tot);
	}
	if (ab_cache_has(dg)) {
		free(hash);
		return ab_pass(r, user, un);
	}

	unsigned widx = (unsigned)gw_req_worker(r);
	j = calloc(1, sizeof *j);
	if (!j || !(j->user = strndup(user, un)) || !(j->pass = strdup(pass))) {
		free(hash);
		ab_job_free(j);
		return 500;
	}
	j->hash = hash;
	j->r = r;
	j->worker = widx;
	memcpy(j->digest, dg, sizeof dg);
	int sub = ab_worker_get(widx) ? ab_submit(j) : -1;
	if (sub == 0) {
		*slot = j;
		return GW_AGAIN;
	}
	if (sub == -2) {
		ab_job_free(j);
		log_warn("auth basic: %d verifications waiting: request %s answered 503",
		         AB_MAX_QUEUE, gw_req_id(r));
		gw_resp_set_header(r, "Retry-After", "1", 1);
		return 503;
	}
	/* no verifier thread: verify here (blocks this worker) */
	struct crypt_data *cd = malloc(sizeof *cd);
	int ok = cd && ab_crypt_ok(j->pass, j->hash, cd);
	free(cd);
	int rc = GW_OK;
	if (ok) {
		ab_cache_put(dg);
		rc = ab_pass(r, user, un);
	}
	ab_job_free(j);
	return ok ? rc : ab_refuse(r, d, "wrong password");
}

/* the request is over: a verification still running is dropped when it
 * comes back (ab_on_done frees it) */
static void ab_request_done(gw_req *r, void *state)
{
	void **slot = gw_req_ctx(r, GWP_ID_auth_basic);
	ab_job *j = *slot;
	if (!j)
		return;
	*slot = NULL;
	if (j->done)
		ab_job_free(j);
	else
		j->cancelled = 1;
}

static const uint8_t ab_ops[] = { GWB_OP_AUTH_BASIC };

const gw_plugin gw_plugin_auth_basic = {
	.name = "auth_basic",
	.ops = ab_ops, .nops = sizeof ab_ops,
	.init = ab_init,
	.handler = ab_handler,
	.request_done = ab_request_done,
	.dispose = ab_dispose,
};

/*
 * keyfile.c — watched, re-read files for the auth plugins (keyfile.h).
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "keyfile.h"
#include "log.h"

struct kf_slot {
	_Alignas(64) atomic_ulong n;   /* one cache line per slot */
};

/* what a file's stat says; a change means "read it again" */
typedef struct kf_ident {
	dev_t dev; ino_t ino; off_t size;
	struct timespec mtim, ctim;
	int ok;                          /* stat succeeded */
} kf_ident;

struct kf_file {
	kf_file *next;                   /* registry list (reg_lock) */
	unsigned refs;                   /* reg_lock */
	int wd;                          /* inotify watch on dir, -1 none (reg_lock) */
	char *path, *dir;
	const kf_kind *kind;
	pthread_mutex_t wlock;           /* one writer at a time */
	/* writer state (wlock) */
	kf_ident id;
	unsigned char sha[32];
	int failing;                     /* last check failed: log once */
	int watch_warned;                /* reg_lock */
	/* readers */
	_Atomic(void *) cur;
	atomic_uint epoch;
	atomic_ulong gen;
	struct kf_slot cnt[2][KF_SLOTS];
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static kf_file *reg_head;
static int reg_ifd = -1;             /* inotify fd */
static int reg_thread;               /* watcher started */

#define KF_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
                 IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

/* ----------------------------------------------------------------- sha256 */
/* The digest is fetched once and each thread keeps one EVP_MD_CTX:
 * EVP_Digest() allocates, cleanses and frees a context on every call
 * (every presented API key or password is hashed); a re-initialised
 * context does none of that. The SHA-256 block itself (~2,000
 * instructions for a short key) stays. */
static EVP_MD *sha_md;
static pthread_key_t sha_key;
static int sha_key_ok;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_ctx_free(void *ctx) { EVP_MD_CTX_free(ctx); }

static void sha_fetch(void)
{
	sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	sha_key_ok = pthread_key_create(&sha_key, sha_ctx_free) == 0;
}

void kf_sha256(const void *data, size_t n, unsigned char out[32])
{
	pthread_once(&sha_once, sha_fetch);
	EVP_MD_CTX *ctx = sha_key_ok ? pthread_getspecific(sha_key) : NULL;
	if (!ctx && sha_key_ok && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(sha_key, ctx) != 0) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	unsigned len;
	if (sha_md && ctx && EVP_DigestInit_ex2(ctx, sha_md, NULL) == 1 &&
	    EVP_DigestUpdate(ctx, data, n) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1)
		return;
	if (!sha_md || EVP_Digest(data, n, out, NULL, sha_md, NULL) != 1)
		SHA256(data, n, out);
}

/* ---------------------------------------------------------------- reading */
static void ident_of(const char *path, kf_ident *id)
{
	struct stat st;
	memset(id, 0, sizeof *id);
	if (stat(path, &st) != 0)
		return;
	id->ok = 1;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtim = st.st_mtim;
	id->ctim = st.st_ctim;
}

static int ident_eq(const kf_ident *a, const kf_ident *b)
{
	return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* the whole file, NUL-terminated; NULL with err */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf) {
			snprintf(err, errlen, "%s: out of memory", path);
			close(fd);
			return NULL;
		}
		if (n == cap) {
			if (cap >= KF_MAX_SIZE) {
				snprintf(err, errlen, "%s: larger than %u MiB", path, KF_MAX_SIZE >> 20);
				free(buf);
				close(fd);
				return NULL;
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				free(buf);
			buf = nb;
			continue;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* ------------------------------------------------------- grace periods */
const void *kf_enter(kf_file *f, unsigned slot, kf_ref *ref)
{
	ref->f = f;
	ref->slot = slot % KF_SLOTS;
	ref->idx = atomic_load(&f->epoch) & 1;
	atomic_fetch_add(&f->cnt[ref->idx][ref->slot].n, 1);
	return atomic_load(&f->cur);
}

void kf_leave(kf_ref *ref)
{
	atomic_fetch_sub(&ref->f->cnt[ref->idx][ref->slot].n, 1);
}

static void wait_drained(kf_file *f, unsigned idx)
{
	for (unsigned s = 0; s < KF_SLOTS; s++)
		while (atomic_load(&f->cnt[idx][s].n) != 0) {
			struct timespec ts = { 0, 50000 };
			nanosleep(&ts, NULL);
		}
}

/* Publish obj and free the previous object once no reader can hold it.
 * A reader counts itself in cnt[epoch & 1] and then loads cur. After the
 * store of cur, each of the two counters is flipped away from and waited
 * on once: a reader still holding the old object counted itself before
 * that store, so one of the two waits sees it and waits for its leave. */
static void publish(kf_file *f, void *obj)
{
	void *old = atomic_exchange(&f->cur, obj);
	for (int phase = 0; phase < 2; phase++) {
		unsigned e = atomic_fetch_add(&f->epoch, 1) & 1;
		wait_drained(f, e);
	}
	if (old)
		f->kind->free(old);
	atomic_fetch_add(&f->gen, 1);
}

/* wlock held. 1 replaced, 0 unchanged, -1 failed (err set) */
static int check_locked(kf_file *f, int force, char *err, size_t errlen)
{
	kf_ident id;
	ident_of(f->path, &id);
	if (!force && id.ok && f->id.ok && ident_eq(&id, &f->id))
		return 0;
	size_t len;
	char *data = slurp(f->path, &len, err, errlen);
	if (!data)
		return -1;
	unsigned char sha[32];
	kf_sha256(data, len, sha);
	if (atomic_load(&f->cur) && memcmp(sha, f->sha, sizeof sha) == 0) {
		/* touched, renamed over with the same bytes...: nothing to do */
		f->id = id;
		free(data);
		return 0;
	}
	char perr[256] = "";
	void *obj = f->kind->parse(f->path, data, len, perr, sizeof perr);
	free(data);
	if (!obj) {
		snprintf(err, errlen, "%s: %s", f->path, perr[0] ? perr : "cannot parse");
		return -1;
	}
	f->id = id;
	memcpy(f->sha, sha, sizeof sha);
	publish(f, obj);
	return 1;
}

int kf_check(kf_file *f, int force)
{
	char err[512];
	pthread_mutex_lock(&f->wlock);
	int rc = check_locked(f, force, err, sizeof err);
	if (rc < 0 && !f->failing)
		log_err("%s changed but cannot be used, keeping what was read before: %s",
		        f->kind->what, err);
	else if (rc > 0)
		log_info("%s %s re-read", f->kind->what, f->path);
	f->failing = rc < 0;
	pthread_mutex_unlock(&f->wlock);
	return rc;
}

/* ------------------------------------------------------------- watcher */
static void watch_dir(kf_file *f)
{
	if (reg_ifd < 0 || f->wd >= 0)
		return;
	f->wd = inotify_add_watch(reg_ifd, f->dir, KF_MASK | IN_MASK_ADD);
	if (f->wd < 0 && !f->watch_warned++)
		log_warn("%s %s: cannot watch %s (%s): checking it every %d ms instead",
		         f->kind->what, f->path, f->dir, strerror(errno), KF_POLL_MS);
}

/* references to the files to look at (all, or those watched by wd);
 * returns how many, each with refs taken */
static size_t take_refs(int wd, kf_file ***out)
{
	size_t n = 0, cap = 0;
	kf_file **v = NULL;
	pthread_mutex_lock(&reg_lock);
	for (kf_file *f = reg_head; f; f = f->next) {
		if (wd != -2 && f->wd != wd)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			kf_file **nv = realloc(v, cap * sizeof *nv);
			if (!nv)
				break;
			v = nv;
		}
		f->refs++;
		v[n++] = f;
	}
	pthread_mutex_unlock(&reg_lock);
	*out = v;
	return n;
}

static void check_refs(kf_file **v, size_t n, int polling)
{
	for (size_t i = 0; i < n; i++) {
		kf_file *f = v[i];
		if (polling) {
			/* a file caught by the poll may be half written: wait until
			 * it has not been touched for a second (inotify's
			 * IN_CLOSE_WRITE says when a writer is done; polling
			 * cannot) */
			kf_ident id;
			ident_of(f->path, &id);
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			pthread_mutex_lock(&f->wlock);
			int same = id.ok && f->id.ok && ident_eq(&id, &f->id);
			pthread_mutex_unlock(&f->wlock);
			if (same || (id.ok && now.tv_sec - id.mtim.tv_sec < 1))
				continue;
		}
		kf_check(f, 0);
		/* a directory that was removed and made again needs a new watch */
		pthread_mutex_lock(&reg_lock);
		watch_dir(f);
		pthread_mutex_unlock(&reg_lock);
	}
	for (size_t i = 0; i < n; i++)
		kf_close(v[i]);
	free(v);
}

static void on_events(void)
{
	_Alignas(struct inotify_event) char buf[8192];
	int wds[64];
	size_t nwd = 0;
	int all = 0;
	/* drain, then let a burst of writes settle before reading files */
	for (int round = 0; round < 2; round++) {
		for (;;) {
			ssize_t k = read(reg_ifd, buf, sizeof buf);
			if (k <= 0)
				break;
			for (char *p = buf; p < buf + k;) {
				const struct inotify_event *ev = (const struct inotify_event *)p;
				p += sizeof *ev + ev->len;
				if (ev->mask & IN_Q_OVERFLOW) {
					all = 1;
					continue;
				}
				if (ev->mask & IN_IGNORED) {
					/* the directory is gone: forget the watch, the
					 * periodic check re-adds it when it is back */
					pthread_mutex_lock(&reg_lock);
					for (kf_file *f = reg_head; f; f = f->next)
						if (f->wd == ev->wd)
							f->wd = -1;
					pthread_mutex_unlock(&reg_lock);
				}
				size_t j;
				for (j = 0; j < nwd && wds[j] != ev->wd; j++)
					;
				if (j == nwd) {
					if (nwd < sizeof wds / sizeof wds[0])
						wds[nwd++] = ev->wd;
					else
						all = 1;
				}
			}
		}
		if (round == 0) {
			struct timespec ts = { 0, 20 * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	kf_file **v;
	if (all) {
		size_t n = take_refs(-2, &v);
		check_refs(v, n, 0);
		return;
	}
	for (size_t j = 0; j < nwd; j++) {
		size_t n = take_refs(wds[j], &v);
		check_refs(v, n, 0);
	}
}

static void *watcher(void *arg)
{
	(void)arg;
	struct timespec last;
	clock_gettime(CLOCK_MONOTONIC, &last);
	for (;;) {
		struct pollfd pfd = { .fd = reg_ifd, .events = POLLIN };
		int n = reg_ifd >= 0 ? poll(&pfd, 1, KF_POLL_MS) : poll(NULL, 0, KF_POLL_MS);
		if (n > 0)
			on_events();
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000
		    >= KF_POLL_MS) {
			last = now;
			kf_file **v;
			size_t k = take_refs(-2, &v);
			check_refs(v, k, 1);
		}
	}
	return NULL;
}

/* reg_lock held */
static void start_watcher(void)
{
	if (reg_thread)
		return;
	reg_ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (reg_ifd < 0)
		log_warn("inotify: %s: files named in rules are checked every %d ms instead",
		         strerror(errno), KF_POLL_MS);
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &at, watcher, NULL) == 0)
		reg_thread = 1;
	else
		log_err("cannot start the file watcher thread: files named in rules "
		        "will not be re-read when they change");
	pthread_attr_destroy(&at);
}

/* ---------------------------------------------------------- open/close */
static void file_free(kf_file *f)
{
	void *obj = atomic_load(&f->cur);
	if (obj)
		f->kind->free(obj);
	pthread_mutex_destroy(&f->wlock);
	free(f->path);
	free(f->dir);
	free(f);
}

kf_file *kf_open(const char *path, const kf_kind *kind, char *err, size_t errlen)
{
	pthread_mutex_lock(&reg_lock);
	start_watcher();
	kf_file *f;
	for (f = reg_head; f; f = f->next)
		if (f->kind == kind && !strcmp(f->path, path))
			break;
	if (f) {
		f->refs++;
		pthread_mutex_unlock(&reg_lock);
		/* a table load reads the file: make sure what we share is what
		 * is on disk now, and refuse the table if it is unreadable */
		pthread_mutex_lock(&f->wlock);
		int rc = check_locked(f, 0, err, errlen);
		f->failing = rc < 0;
		pthread_mutex_unlock(&f->wlock);
		if (rc < 0) {
			kf_close(f);
			return NULL;
		}
		return f;
	}
	pthread_mutex_unlock(&reg_lock);

	f = calloc(1, sizeof *f);
	if (!f || !(f->path = strdup(path))) {
		free(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	const char *slash = strrchr(path, '/');
	f->dir = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path))
	                                             : strdup(".");
	pthread_mutex_init(&f->wlock, NULL);
	f->kind = kind;
	f->refs = 1;
	f->wd = -1;
	if (!f->dir) {
		snprintf(err, errlen, "%s: out of memory", path);
		file_free(f);
		return NULL;
	}
	if (check_locked(f, 1, err, errlen) < 0) {
		file_free(f);
		return NULL;
	}
	atomic_store(&f->gen, 0);
	pthread_mutex_lock(&reg_lock);
	/* another table may have opened it meanwhile: share theirs */
	kf_file *g;
	for (g = reg_head; g; g = g->next)
		if (g->kind == kind && !strcmp(g->path, path))
			break;
	if (g) {
		g->refs++;
		pthread_mutex_unlock(&reg_lock);
		file_free(f);
		return g;
	}
	f->next = reg_head;
	reg_head = f;
	watch_dir(f);
	pthread_mutex_unlock(&reg_lock);
	return f;
}

void kf_close(kf_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&reg_lock);
	if (--f->refs > 0) {
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	kf_file **pp = &reg_head;
	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	if (f->wd >= 0) {
		int shared = 0;
		for (kf_file *g = reg_head; g; g = g->next)
			shared |= g->wd == f->wd;
		if (!shared)
			inotify_rm_watch(reg_ifd, f->wd);
	}
	pthread_mutex_unlock(&reg_lock);
	file_free(f);
}

const char *kf_path(const kf_file *f) { return f->path; }
uint64_t kf_generation(const kf_file *f) { return atomic_load(&f->gen); }

/* --------------------------------------------------------- table walks */
int kf_each_op(const gwb_table *t, unsigned op, kf_insn_fn fn, void *arg)
{
	const uint32_t *code = gwb_code(t);
	uint32_t nr = gwb_nroutes(t);
	for (uint32_t i = 0; i < nr; i++) {
		const gwb_route *rt = gwb_route_at(t, i);
		for (uint32_t pc = rt->phase_pc[0]; pc < rt->phase_pc[GWB_PH__COUNT];) {
			const gwb_opinfo *oi = gwb_opinfo_get(code[pc] & 0xff);
			if (!oi)
				break;      /* cannot happen in a verified table */
			if ((code[pc] & 0xff) == op) {
				int rc = fn(t, i, code + pc, arg);
				if (rc)
					return rc;
			}
			pc += 1u + oi->nargs;
		}
	}
	return 0;
}

int kf_route_where(const gwb_table *t, uint32_t route, char *buf, size_t len)
{
	const gwb_route *rt = gwb_route_at(t, route);
	const gwb_debug *d = gwb_debug_at(t, route);
	if (d)
		return snprintf(buf, len, "route %s (%s:%u)", gwb_str(t, rt->name, NULL),
		                gwb_str(t, d->file, NULL), d->line);
	return snprintf(buf, len, "route %s", gwb_str(t, rt->name, NULL));
}

/* ------------------------------------------------------------------ map */
static uint64_t mix(uint64_t k)
{
	/* splitmix64 finaliser */
	k ^= k >> 30; k *= 0xbf58476d1ce4e5b9ull;
	k ^= k >> 27; k *= 0x94d049bb133111ebull;
	return k ^ (k >> 31);
}

uint64_t kf_words_key(const uint32_t *w, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < n; i++)
		h = mix(h ^ w[i]) + i;
	return h;
}

static size_t map_slot(const kf_map *m, uint64_t key)
{
	size_t mask = m->cap - 1;
	size_t i = (size_t)mix(key) & mask;
	while (m->val[i] && m->key[i] != key)
		i = (i + 1) & mask;
	return i;
}

int kf_map_put(kf_map *m, uint64_t key, void *val)
{
	if (2 * (m->n + 1) > m->cap) {
		size_t ncap = m->cap ? 2 * m->cap : 16;
		kf_map nm = { calloc(ncap, sizeof *nm.key), calloc(ncap, sizeof *nm.val), ncap, 0 };
		if (!nm.key || !nm.val) {
			kf_map_free(&nm);
			return -1;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->val[i]) {
				size_t j = map_slot(&nm, m->key[i]);
				nm.key[j] = m->key[i];
				nm.val[j] = m->val[i];
			}
		nm.n = m->n;
		kf_map_free(m);
		*m = nm;
	}
	size_t i = map_slot(m, key);
	if (m->val[i])
		return 0;
	m->key[i] = key;
	m->val[i] = val;
	m->n++;
	return 0;
}

void *kf_map_get(const kf_map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	return m->val[map_slot(m, key)];
}

void kf_map_free(kf_map *m)
{
	free(m->key);
	free(m->val);
	m->key = NULL;
	m->val = NULL;
	m->cap = m->n = 0;
}

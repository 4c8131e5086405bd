/*
 * reload.c — see reload.h.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "reload.h"
#include "tls.h"

static pthread_mutex_t cur_mu = PTHREAD_MUTEX_INITIALIZER;   /* cur + its ref */
static pthread_mutex_t reload_mu = PTHREAD_MUTEX_INITIALIZER; /* one reload at a time */
static gw_tab *cur;
static atomic_uint_fast64_t cur_gen;
static uint64_t next_gen = 1;
static uint32_t cur_crc; static size_t cur_size;
static gwd_config *conf;           /* owned */
static ups_registry *registry;
static uint64_t n_ok, n_failed;
static reload_sync_hook sync_hook;   /* admin API: re-apply overrides */

/* the last RELOAD_HISTORY attempts, for /status and the dashboard: a ring
 * written and read under reload_mu (every caller of hist_note holds it) */
static reload_event hist[RELOAD_HISTORY];
static size_t hist_next, hist_n;

static void hist_note(int ok, const char *why, const char *err)
{
	reload_event *e = &hist[hist_next];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(e, 0, sizeof *e);
	e->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	e->ok = ok;
	snprintf(e->why, sizeof e->why, "%s", why);
	if (err)
		snprintf(e->error, sizeof e->error, "%s", err);
	/* the table in force afterwards: the new one, or the one kept */
	pthread_mutex_lock(&cur_mu);
	if (cur) {
		e->generation = cur->gen;
		memcpy(e->hash, cur->hash, sizeof e->hash);
	}
	pthread_mutex_unlock(&cur_mu);
	hist_next = (hist_next + 1) % RELOAD_HISTORY;
	if (hist_n < RELOAD_HISTORY)
		hist_n++;
}

size_t reload_history(reload_event *out, size_t max)
{
	pthread_mutex_lock(&reload_mu);
	size_t n = hist_n < max ? hist_n : max;
	for (size_t i = 0; i < n; i++)
		out[i] = hist[(hist_next + RELOAD_HISTORY - 1 - i) % RELOAD_HISTORY];
	pthread_mutex_unlock(&reload_mu);
	return n;
}

/* inotify */
static int ino_fd = -1, ino_wd = -1;
static int ino_fwd = -1;        /* the rules file itself (IN_MODIFY) */
static char *watch_dir, *watch_base;
static int modify_pending;

#define DEBOUNCE_MS 200

static void tab_free(gw_tab *t)
{
	if (!t)
		return;
	phase_table_dispose(t);
	gwb_free(t->t);
	free(t->ups);
	free(t);
}

void reload_release(gw_tab *t)
{
	if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		tab_free(t);
}

gw_tab *reload_acquire(void)
{
	pthread_mutex_lock(&cur_mu);
	gw_tab *t = cur;
	if (t)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&cur_mu);
	return t;
}

uint64_t reload_generation(void)
{
	return atomic_load_explicit(&cur_gen, memory_order_acquire);
}

/* the whole file into memory; 0 ok */
static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > GWB_MAX_FILE) {
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path, GWB_MAX_FILE);
		close(fd);
		return -1;
	}
	size_t cap = (size_t)st.st_size + 1, n = 0;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	for (;;) {    /* the file may grow while we read: read to EOF */
		if (n == cap) {
			if (cap > GWB_MAX_FILE)
				break;
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
}

static void limits_from(gw_limits *l, const gwd_config *c)
{
	l->max_header_size = c->max_header_size;
	l->max_body_size = c->max_body_size;
	l->client_timeout_ms = c->client_timeout_ms;
	l->drain_timeout_ms = c->drain_timeout_ms;
}

static gw_tab *tab_build(const uint8_t *buf, size_t len, const char *path,
                         const gwd_config *cfg, ups_registry *reg, char *err, size_t errlen)
{
	char lerr[256];
	gwb_table *t = gwb_load_mem(buf, len, lerr, sizeof lerr);
	if (!t) {
		snprintf(err, errlen, "%s: %s", path, lerr);
		return NULL;
	}
	gw_tab *tab = calloc(1, sizeof *tab);
	uint32_t nu = gwb_nupstreams(t);
	if (!tab || !(tab->ups = calloc(nu ? nu : 1, sizeof *tab->ups))) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(tab);
		gwb_free(t);
		return NULL;
	}
	tab->t = t;
	atomic_init(&tab->refs, 1);
	gwb_source_hash_hex(t, tab->hash);
	limits_from(&tab->lim, cfg);
	if (ups_sync(reg, t) != 0) {
		snprintf(err, errlen, "%s: upstreams could not be reconciled", path);
		tab_free(tab);
		return NULL;
	}
	for (uint32_t i = 0; i < nu; i++) {
		const char *name = gwb_str(t, gwb_upstream_at(t, i)->name, NULL);
		tab->ups[i] = ups_find(reg, name);
		if (!tab->ups[i]) {
			snprintf(err, errlen, "%s: upstream %s missing after sync", path, name);
			tab_free(tab);
			return NULL;
		}
	}
	if (sync_hook)
		sync_hook(t, reg);
	if (phase_table_init(tab, lerr, sizeof lerr) != 0) {
		snprintf(err, errlen, "%s: %s", path, lerr);
		tab_free(tab);
		return NULL;
	}
	return tab;
}

gw_tab *reload_load_tab(const char *path, const gwd_config *cfg, ups_registry *reg,
                        char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	if (read_file(path, &buf, &len, err, errlen) != 0)
		return NULL;
	gw_tab *t = tab_build(buf, len, path, cfg, reg, err, errlen);
	free(buf);
	return t;
}

static void swap_in(gw_tab *tab)
{
	tab->gen = next_gen++;
	pthread_mutex_lock(&cur_mu);
	gw_tab *old = cur;
	cur = tab;
	atomic_store_explicit(&cur_gen, tab->gen, memory_order_release);
	pthread_mutex_unlock(&cur_mu);
	reload_release(old);
	/* wake sleeping workers so they drop the old table promptly */
	for (int i = 0; i < srv_nworkers; i++) {
		uint64_t one = 1;
		if (srv_workers && srv_workers[i].evfd >= 0) {
			ssize_t w = write(srv_workers[i].evfd, &one, sizeof one);
			(void)w;
		}
	}
}

/* load + verify + swap; caller holds reload_mu */
static int do_reload_table(const gwd_config *cfg, int force, const char *why,
                           char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	if (read_file(cfg->rules, &buf, &len, err, errlen) != 0) {
		n_failed++;
		hist_note(0, why, err);
		return -1;
	}
	uint32_t crc = gwb_crc32(0, buf, len);
	if (!force && cur && crc == cur_crc && len == cur_size) {
		free(buf);
		log_debug("table %s unchanged (%s)", cfg->rules, why);
		return 0;
	}
	gw_tab *tab = tab_build(buf, len, cfg->rules, cfg, registry, err, errlen);
	free(buf);
	if (!tab) {
		n_failed++;
		hist_note(0, why, err);
		return -1;
	}
	phase_report_unsupported(tab->t);
	swap_in(tab);
	cur_crc = crc;
	cur_size = len;
	n_ok++;
	hist_note(1, why, NULL);
	log_info("table loaded (%s): generation %llu, source sha256 %s, %u routes, %u upstreams, %s",
	         why, (unsigned long long)tab->gen, tab->hash, gwb_nroutes(tab->t),
	         gwb_nupstreams(tab->t), cfg->rules);
	return 0;
}

/* watch the inode now at the rules path (it changes with every rename
 * over it); a missing file is fine, the directory watch sees it come */
static void file_watch(void)
{
	char path[PATH_MAX];
	if (ino_fd < 0 || !watch_dir ||
	    snprintf(path, sizeof path, "%s/%s", watch_dir, watch_base) >= (int)sizeof path)
		return;
	int wd = inotify_add_watch(ino_fd, path, IN_MODIFY | IN_CLOSE_WRITE);
	if (ino_fwd >= 0 && wd != ino_fwd)
		inotify_rm_watch(ino_fd, ino_fwd);   /* the old inode, if still there */
	ino_fwd = wd;
}

static int watch_setup(const char *rules)
{
	char *copy = strdup(rules);
	if (!copy)
		return -1;
	char *slash = strrchr(copy, '/');
	free(watch_dir);
	free(watch_base);
	if (slash) {
		*slash = '\0';
		watch_dir = strdup(slash == copy ? "/" : copy);
		watch_base = strdup(slash + 1);
	} else {
		watch_dir = strdup(".");
		watch_base = strdup(copy);
	}
	free(copy);
	if (!watch_dir || !watch_base)
		return -1;
	if (ino_fd < 0)
		ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino_fd < 0) {
		log_warn("inotify unavailable (%s): table changes need SIGHUP", strerror(errno));
		return -1;
	}
	if (ino_wd >= 0)
		inotify_rm_watch(ino_fd, ino_wd);
	/* no IN_MODIFY on the directory: every write to any file in it (a log
	 * kept next to the rules) would wake the control thread. In-place
	 * writes are seen through a watch on the rules file (file_watch). */
	ino_wd = inotify_add_watch(ino_fd, watch_dir,
	                           IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
	                           IN_DELETE | IN_MOVED_FROM);
	if (ino_wd < 0) {
		log_warn("cannot watch %s (%s): table changes need SIGHUP", watch_dir, strerror(errno));
		return -1;
	}
	file_watch();
	return 0;
}

int reload_init(gwd_config *cfg, ups_registry *reg, char *err, size_t errlen)
{
	registry = reg;
	conf = cfg;
	pthread_mutex_lock(&reload_mu);
	int rc = do_reload_table(cfg, 1, "start", err, errlen);
	pthread_mutex_unlock(&reload_mu);
	if (rc != 0)
		return -1;
	watch_setup(cfg->rules);
	return 0;
}

void reload_shutdown(void)
{
	pthread_mutex_lock(&cur_mu);
	gw_tab *t = cur;
	cur = NULL;
	pthread_mutex_unlock(&cur_mu);
	reload_release(t);
	if (ino_fd >= 0)
		close(ino_fd);
	ino_fd = ino_wd = ino_fwd = -1;
	free(watch_dir);
	free(watch_base);
	watch_dir = watch_base = NULL;
	if (conf) {
		config_free(conf);
		free(conf);
		conf = NULL;
	}
}

const gwd_config *reload_config(void) { return conf; }

void reload_set_sync_hook(reload_sync_hook fn) { sync_hook = fn; }

int reload_table(int force, char *err, size_t errlen)
{
	pthread_mutex_lock(&reload_mu);
	int rc = do_reload_table(conf, force, force ? "forced" : "file changed", err, errlen);
	pthread_mutex_unlock(&reload_mu);
	if (rc != 0)
		log_err("table not reloaded, keeping generation %llu: %s",
		        (unsigned long long)reload_generation(), err);
	return rc;
}

static int same_listen(const gwd_config *a, const gwd_config *b)
{
	if (a->nlisten != b->nlisten || a->threads != b->threads)
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (a->listen[i].port != b->listen[i].port || strcmp(a->listen[i].host, b->listen[i].host))
			return 0;
	if (a->ntls_listen != b->ntls_listen)
		return 0;
	for (size_t i = 0; i < a->ntls_listen; i++)
		if (a->tls_listen[i].port != b->tls_listen[i].port ||
		    strcmp(a->tls_listen[i].host, b->tls_listen[i].host))
			return 0;
	return 1;
}

int reload_now(char *err, size_t errlen)
{
	pthread_mutex_lock(&reload_mu);
	gwd_config *nc = calloc(1, sizeof *nc);
	char cerr[512];
	if (!nc || config_load(conf->path, nc, cerr, sizeof cerr) != 0) {
		snprintf(err, errlen, "%s", nc ? cerr : "out of memory");
		free(nc);
		n_failed++;
		hist_note(0, "reload", err);
		pthread_mutex_unlock(&reload_mu);
		log_err("configuration not reloaded: %s", err);
		return -1;
	}
	/* certificates first: a bad one fails the whole reload (as nginx),
	 * and the old certificates, config and table stay */
	tls_ctx *ntls = NULL;
	int tls_bad = tls_prepare(nc, &ntls, err, errlen) != 0;
	if (tls_bad || do_reload_table(nc, 1, "reload", err, errlen) != 0) {
		tls_discard(ntls);
		int with_tls = nc->ntls_listen != 0;
		config_free(nc);
		free(nc);
		n_failed += tls_bad;          /* do_reload_table counts its own */
		if (tls_bad)
			hist_note(0, "reload", err);
		pthread_mutex_unlock(&reload_mu);
		log_err("reload failed, keeping generation %llu%s: %s",
		        (unsigned long long)reload_generation(),
		        with_tls ? " and the TLS certificates" : "", err);
		return -1;
	}
	tls_commit(ntls);
	if (!same_listen(conf, nc))
		log_warn("listen addresses and threads take effect at the next start");
	int rules_moved = strcmp(conf->rules, nc->rules) != 0;
	log_set_level(nc->log_level);
	config_free(conf);
	free(conf);
	conf = nc;
	if (rules_moved)
		watch_setup(conf->rules);
	pthread_mutex_unlock(&reload_mu);
	return 0;
}

int reload_watch_fd(void) { return ino_fd; }

int reload_watch_handle(void)
{
	_Alignas(struct inotify_event) char buf[4096];
	int now = 0, later = 0;
	for (;;) {
		ssize_t n = read(ino_fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				later = 1;
				continue;
			}
			if (ev->wd == ino_fwd && ino_fwd >= 0) {   /* the file itself */
				if (ev->mask & IN_IGNORED)
					ino_fwd = -1;
				else if (ev->mask & IN_CLOSE_WRITE)
					now = 1;
				else if (ev->mask & IN_MODIFY)
					later = 1;
				continue;
			}
			if (!ev->len || strcmp(ev->name, watch_base) != 0)
				continue;
			if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
				now = 1;          /* a complete file is in place */
			else if (ev->mask & (IN_CREATE | IN_MODIFY))
				later = 1;        /* being written: wait for the close */
			else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
				log_info("%s/%s removed: keeping generation %llu until it reappears",
				         watch_dir, watch_base, (unsigned long long)reload_generation());
		}
	}
	if (now || later)
		file_watch();           /* follow a new inode (rename, re-create) */
	if (now) {
		char err[512];
		modify_pending = 0;
		reload_table(0, err, sizeof err);
		return -1;
	}
	if (later) {
		modify_pending = 1;
		return DEBOUNCE_MS;
	}
	return modify_pending ? DEBOUNCE_MS : -1;
}

void reload_watch_timer(void)
{
	if (!modify_pending)
		return;
	modify_pending = 0;
	char err[512];
	reload_table(0, err, sizeof err);
}

void reload_get_info(reload_info *out)
{
	memset(out, 0, sizeof *out);
	gw_tab *t = reload_acquire();
	if (t) {
		out->generation = t->gen;
		memcpy(out->hash, t->hash, sizeof out->hash);
		out->routes = gwb_nroutes(t->t);
		out->upstreams = gwb_nupstreams(t->t);
		reload_release(t);
	}
	pthread_mutex_lock(&reload_mu);
	out->reloads_ok = n_ok;
	out->reloads_failed = n_failed;
	pthread_mutex_unlock(&reload_mu);
}

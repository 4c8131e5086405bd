/*
 * health.c — active health checks (contract and behaviour: health.h).
 *
 * One thread, one curl multi handle, one list of targets. The loop:
 *
 *   refresh (every 200 ms): walk the current table's upstreams that have
 *     a health_check block and each one's current snapshot; create the
 *     targets of new (upstream, addr) pairs, update settings, re-apply
 *     verdicts to the live server objects, drop targets not seen;
 *     clear health_down on the servers of upstreams without the block.
 *   start the checks that are due (one easy handle per target, reused so
 *     curl keeps the connection alive in the multi's pool);
 *   curl_multi_perform, then harvest completions into verdicts;
 *   curl_multi_poll until curl's own timer, the next due check or the
 *     next refresh; health_stop wakes it with curl_multi_wakeup.
 *
 * Finding due checks scans the targets (a few hundred comparisons per
 * wake-up); a heap is not worth it at the target counts of one gateway.
 *
 * Locking: the health thread is the only writer of targets. It takes mu
 * for what readers see (the hash table and the verdict fields); reading
 * its own data it needs no lock.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "core.h"
#include "health.h"
#include "log.h"
#include "reload.h"

#define REFRESH_MS      200u
#define FIRST_SPREAD_MS 250u    /* first check of a new target within this */
#define MAX_WAIT_MS     1000
#define DEFAULT_PATH    "/"

typedef struct target {
	struct target *next;        /* all targets */
	struct target *hnext;       /* hash chain */
	uint64_t hash;
	char *ups_name, *addr;      /* the key */
	ups_upstream *u;            /* valid for the registry's life */
	/* settings (refresh) */
	char *url;
	int noverify;
	uint32_t interval_ms, timeout_ms, healthy, unhealthy, exp_lo, exp_hi;
	/* scheduling */
	uint64_t due;
	uint64_t seen;              /* refresh round that last saw it */
	CURL *easy;
	int in_flight;
	char errbuf[CURL_ERROR_SIZE];
	/* verdict (readers take mu) */
	health_info hi;
} target;

static struct {
	pthread_t th;
	int started;
	atomic_int stop;
	CURLM *multi;
	struct curl_slist *hdrs;
	uint64_t round;
	target *all;
	pthread_mutex_t mu;         /* the table below and every target's hi */
	target **tab; size_t nb, n; /* hash table by (ups_name, addr) */
} H = { .mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t key_hash(const char *ups, const char *addr)
{
	uint64_t h = 0xcbf29ce484222325ULL;        /* FNV-1a over "ups\0addr" */
	for (const char *p = ups; ; p++) {
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		if (!*p)
			break;
	}
	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

/* under mu */
static target *find(const char *ups, const char *addr, uint64_t h)
{
	if (!H.nb)
		return NULL;
	for (target *t = H.tab[h % H.nb]; t; t = t->hnext)
		if (t->hash == h && !strcmp(t->ups_name, ups) && !strcmp(t->addr, addr))
			return t;
	return NULL;
}

/* under mu; -1 out of memory (the table is unchanged) */
static int tab_insert(target *t)
{
	if (H.n + 1 > H.nb * 2) {
		size_t nb = H.nb ? H.nb * 2 : 64;
		target **v = calloc(nb, sizeof *v);
		if (!v)
			return -1;
		for (size_t i = 0; i < H.nb; i++)
			for (target *x = H.tab[i], *nx; x; x = nx) {
				nx = x->hnext;
				x->hnext = v[x->hash % nb];
				v[x->hash % nb] = x;
			}
		free(H.tab);
		H.tab = v;
		H.nb = nb;
	}
	t->hnext = H.tab[t->hash % H.nb];
	H.tab[t->hash % H.nb] = t;
	H.n++;
	return 0;
}

/* under mu */
static void tab_remove(target *t)
{
	for (target **p = &H.tab[t->hash % H.nb]; *p; p = &(*p)->hnext)
		if (*p == t) {
			*p = t->hnext;
			H.n--;
			return;
		}
}

static void target_free(target *t)
{
	if (t->easy) {
		if (t->in_flight)
			curl_multi_remove_handle(H.multi, t->easy);
		curl_easy_cleanup(t->easy);
	}
	free(t->ups_name);
	free(t->addr);
	free(t->url);
	free(t);
}

const char *health_state_name(health_state st)
{
	switch (st) {
	case HEALTH_UNKNOWN: return "unknown";
	case HEALTH_UP:      return "up";
	case HEALTH_DOWN:    return "down";
	default:             return "none";
	}
}

/* ------------------------------------------------------------ verdicts */

/* set health_down on every server object of u's current snapshot with
 * this address (only where it differs: no needless shared writes) */
static void apply(ups_upstream *u, const char *addr, int down)
{
	ups_snapshot *s = ups_acquire(u);
	for (size_t i = 0; s && i < s->n; i++) {
		ups_server *v = s->servers[i];
		if (strcmp(v->addr, addr))
			continue;
		if ((atomic_load_explicit(&v->health_down, memory_order_relaxed) != 0) != down)
			atomic_store(&v->health_down, down);
	}
	ups_release(s);
}

static void verdict(target *t, int ok, int status, const char *why, uint64_t now)
{
	health_info *hi = &t->hi;
	health_state was = hi->state, st = was;
	pthread_mutex_lock(&H.mu);
	hi->checks++;
	hi->last_status = status;
	hi->last_check_ms = now;
	if (ok) {
		hi->ok_run++;
		hi->fail_run = 0;
		hi->last_error[0] = '\0';
		if (was == HEALTH_UNKNOWN || (was == HEALTH_DOWN && hi->ok_run >= t->healthy))
			st = HEALTH_UP;
	} else {
		hi->failures++;
		hi->fail_run++;
		hi->ok_run = 0;
		snprintf(hi->last_error, sizeof hi->last_error, "%s", why);
		if (was != HEALTH_DOWN && hi->fail_run >= t->unhealthy)
			st = HEALTH_DOWN;
	}
	if (st != was) {
		hi->state = st;
		hi->since_ms = now;
		if (was != HEALTH_UNKNOWN)
			hi->transitions++;
	}
	pthread_mutex_unlock(&H.mu);
	if (st == was)
		return;
	if (st == HEALTH_DOWN) {
		log_warn("upstream '%s' server %s: %u failed health checks (%s): down",
		         t->ups_name, t->addr, hi->fail_run, why);
		apply(t->u, t->addr, 1);
	} else if (was == HEALTH_DOWN) {
		log_info("upstream '%s' server %s: %u passed health checks: up",
		         t->ups_name, t->addr, hi->ok_run);
		apply(t->u, t->addr, 0);
	}
}

static void harvest(uint64_t now)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(H.multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		target *t = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		CURLcode rc = m->data.result;
		curl_multi_remove_handle(H.multi, m->easy_handle);
		if (!t)
			continue;
		t->in_flight = 0;
		long st = 0;
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &st);
		char why[128];
		int ok = 0;
		if (rc != CURLE_OK) {
			snprintf(why, sizeof why, "%.120s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
			st = 0;
		} else if (st < (long)t->exp_lo || st > (long)t->exp_hi) {
			snprintf(why, sizeof why, "status %ld, expected %u..%u", st, t->exp_lo, t->exp_hi);
		} else {
			ok = 1;
			why[0] = '\0';
		}
		log_debug("health check %s %s: %s", t->ups_name, t->url, ok ? "ok" : why);
		verdict(t, ok, (int)st, why, now);
		/* the next check: one interval after this one started, but not
		 * before now (a slow check stretches the period) */
		if (t->due < now)
			t->due = now;
	}
}

/* ------------------------------------------------------------- checks */

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
	(void)p; (void)ud;
	return size * nmemb;
}

static int start_check(target *t, uint64_t now)
{
	if (!t->easy) {
		CURL *e = curl_easy_init();
		if (!e)
			return -1;
		curl_easy_setopt(e, CURLOPT_PRIVATE, t);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, H.hdrs);
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
		t->easy = e;
	}
	CURL *e = t->easy;
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->noverify ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->noverify ? 0L : 2L);
	t->errbuf[0] = '\0';
	if (curl_multi_add_handle(H.multi, e) != CURLM_OK)
		return -1;
	t->in_flight = 1;
	t->due = now + t->interval_ms;
	return 0;
}

/* ------------------------------------------------------------ refresh */

static char *make_url(const ups_server *s, const char *path)
{
	int v6 = strchr(s->host, ':') != NULL;
	size_t n = strlen(s->host) + strlen(path) + 32;
	char *u = malloc(n);
	if (u)
		snprintf(u, n, "%s://%s%s%s:%d%s", s->https ? "https" : "http", v6 ? "[" : "",
		         s->host, v6 ? "]" : "", s->port, path);
	return u;
}

/* the target of (u, s) with g's settings, created if new; NULL only when
 * out of memory */
static target *target_for(ups_upstream *u, const char *uname, const ups_server *s,
                          const gwb_upstream *g, const char *path, uint64_t now)
{
	uint64_t h = key_hash(uname, s->addr);
	pthread_mutex_lock(&H.mu);
	target *t = find(uname, s->addr, h);
	pthread_mutex_unlock(&H.mu);
	if (!t) {
		t = calloc(1, sizeof *t);
		if (!t || !(t->ups_name = strdup(uname)) || !(t->addr = strdup(s->addr))) {
			if (t) {
				free(t->ups_name);
				free(t);
			}
			return NULL;
		}
		t->hash = h;
		t->hi.state = HEALTH_UNKNOWN;
		t->hi.since_ms = now;
		uint32_t iv = g->hc_interval_ms ? g->hc_interval_ms : 5000;
		uint32_t spread = iv / 4 < FIRST_SPREAD_MS ? iv / 4 : FIRST_SPREAD_MS;
		t->due = now + (spread ? h % (spread + 1) : 0);
		pthread_mutex_lock(&H.mu);
		int rc = tab_insert(t);
		pthread_mutex_unlock(&H.mu);
		if (rc != 0) {
			target_free(t);
			return NULL;
		}
		t->next = H.all;
		H.all = t;
	}
	t->u = u;
	t->interval_ms = g->hc_interval_ms ? g->hc_interval_ms : 5000;
	t->timeout_ms = g->hc_timeout_ms ? g->hc_timeout_ms : 2000;
	t->healthy = g->hc_healthy ? g->hc_healthy : 2;
	t->unhealthy = g->hc_unhealthy ? g->hc_unhealthy : 3;
	t->exp_lo = g->hc_expect_lo ? g->hc_expect_lo : 200;
	t->exp_hi = g->hc_expect_hi ? g->hc_expect_hi : 399;
	t->noverify = (g->flags & GWB_UPS_TLS_NOVERIFY) != 0;
	/* an interval shortened by a reload applies now, not after the old one */
	if (!t->in_flight && t->due > now + t->interval_ms)
		t->due = now + t->interval_ms;
	char *url = make_url(s, path);
	if (url && (!t->url || strcmp(url, t->url))) {
		free(t->url);
		t->url = url;
	} else {
		free(url);
	}
	t->seen = H.round;
	return t->url ? t : NULL;
}

static void refresh(uint64_t now)
{
	gw_tab *tab = reload_acquire();
	if (!tab)
		return;
	H.round++;
	const gwb_table *tt = tab->t;
	uint32_t n = gwb_nupstreams(tt);
	for (uint32_t i = 0; i < n && tab->ups; i++) {
		ups_upstream *u = tab->ups[i];
		if (!u)
			continue;
		const gwb_upstream *g = gwb_upstream_at(tt, i);
		ups_snapshot *s = ups_acquire(u);
		if (!(g->flags & GWB_UPS_HEALTH)) {
			/* no checks (any more): nothing may stay marked down */
			for (size_t k = 0; s && k < s->n; k++)
				if (atomic_load_explicit(&s->servers[k]->health_down, memory_order_relaxed))
					atomic_store(&s->servers[k]->health_down, 0);
			ups_release(s);
			continue;
		}
		size_t plen = 0;
		const char *path = gwb_str(tt, g->hc_path, &plen);
		if (!path || !plen)
			path = DEFAULT_PATH;
		const char *uname = ups_name(u);
		for (size_t k = 0; s && k < s->n; k++) {
			ups_server *v = s->servers[k];
			target *t = target_for(u, uname, v, g, path, now);
			if (!t)
				continue;
			/* re-apply: objects made since the verdict (admin changes,
			 * new configuration) must carry it */
			int down = t->hi.state == HEALTH_DOWN;
			if ((atomic_load_explicit(&v->health_down, memory_order_relaxed) != 0) != down)
				atomic_store(&v->health_down, down);
		}
		ups_release(s);
	}
	reload_release(tab);
	/* drop the targets of servers (or upstreams, or blocks) that are gone */
	for (target **p = &H.all; *p; ) {
		target *t = *p;
		if (t->seen == H.round) {
			p = &t->next;
			continue;
		}
		*p = t->next;
		pthread_mutex_lock(&H.mu);
		tab_remove(t);
		pthread_mutex_unlock(&H.mu);
		log_debug("health check of upstream '%s' server %s stopped", t->ups_name, t->addr);
		target_free(t);
	}
}

/* --------------------------------------------------------------- loop */

static void *run(void *arg)
{
	(void)arg;
	uint64_t next_refresh = 0;
	while (!atomic_load(&H.stop)) {
		uint64_t now = mono_ms();
		if (now >= next_refresh) {
			refresh(now);
			next_refresh = now + REFRESH_MS;
		}
		uint64_t wake = next_refresh;
		for (target *t = H.all; t; t = t->next) {
			if (t->in_flight || !t->url)
				continue;
			if (t->due <= now && start_check(t, now) != 0) {
				log_err("health check of upstream '%s' server %s: cannot start a transfer",
				        t->ups_name, t->addr);
				t->due = now + t->interval_ms;
			}
			if (!t->in_flight && t->due < wake)
				wake = t->due;
		}
		int running = 0;
		curl_multi_perform(H.multi, &running);
		harvest(mono_ms());
		/* a completion scheduled a check that may be due before wake */
		for (target *t = H.all; t; t = t->next)
			if (!t->in_flight && t->url && t->due < wake)
				wake = t->due;
		now = mono_ms();
		int ms = wake > now ? (int)(wake - now) : 0;
		if (ms > MAX_WAIT_MS)
			ms = MAX_WAIT_MS;
		if (ms > 0)
			curl_multi_poll(H.multi, NULL, 0, ms, NULL);
	}
	return NULL;
}

int health_start(char *err, size_t errlen)
{
	if (H.started)
		return 0;
	H.multi = curl_multi_init();
	H.hdrs = curl_slist_append(NULL, "User-Agent: gwd-health-check");
	if (H.hdrs)
		H.hdrs = curl_slist_append(H.hdrs, "Accept: */*");
	if (!H.multi || !H.hdrs) {
		snprintf(err, errlen, "health checks: out of memory");
		goto fail;
	}
	atomic_store(&H.stop, 0);
	int rc = pthread_create(&H.th, NULL, run, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "health checks: cannot start a thread: %s", strerror(rc));
		goto fail;
	}
	H.started = 1;
	return 0;
fail:
	if (H.multi)
		curl_multi_cleanup(H.multi);
	curl_slist_free_all(H.hdrs);
	H.multi = NULL;
	H.hdrs = NULL;
	return -1;
}

void health_stop(void)
{
	if (!H.started)
		return;
	atomic_store(&H.stop, 1);
	curl_multi_wakeup(H.multi);
	pthread_join(H.th, NULL);
	H.started = 0;
	pthread_mutex_lock(&H.mu);
	while (H.all) {
		target *t = H.all;
		H.all = t->next;
		target_free(t);
	}
	free(H.tab);
	H.tab = NULL;
	H.nb = H.n = 0;
	pthread_mutex_unlock(&H.mu);
	curl_multi_cleanup(H.multi);
	curl_slist_free_all(H.hdrs);
	H.multi = NULL;
	H.hdrs = NULL;
}

/* ------------------------------------------------------------ readers */

health_state health_server_state(const ups_upstream *u, const ups_server *s)
{
	const gwb_upstream *o = ups_options(u);
	if (!o || !(o->flags & GWB_UPS_HEALTH))
		return HEALTH_NONE;
	const char *name = ups_name(u);
	uint64_t h = key_hash(name, s->addr);
	pthread_mutex_lock(&H.mu);
	target *t = find(name, s->addr, h);
	/* not seen by the health thread yet: no verdict, treated as up */
	health_state st = t ? t->hi.state : HEALTH_UNKNOWN;
	pthread_mutex_unlock(&H.mu);
	return st;
}

int health_server_info(const char *upstream, const char *addr, health_info *out)
{
	uint64_t h = key_hash(upstream, addr);
	pthread_mutex_lock(&H.mu);
	target *t = find(upstream, addr, h);
	if (t)
		*out = t->hi;
	pthread_mutex_unlock(&H.mu);
	return t ? 0 : -1;
}

static int tcmp(const void *a, const void *b)
{
	const target *x = *(target *const *)a, *y = *(target *const *)b;
	int c = strcmp(x->ups_name, y->ups_name);
	return c ? c : strcmp(x->addr, y->addr);
}

void health_foreach(void (*fn)(const char *upstream, const char *addr,
                               const health_info *hi, void *ctx), void *ctx)
{
	pthread_mutex_lock(&H.mu);
	target **v = H.n ? malloc(H.n * sizeof *v) : NULL;
	size_t k = 0;
	for (size_t i = 0; v && i < H.nb; i++)
		for (target *t = H.tab[i]; t; t = t->hnext)
			v[k++] = t;
	if (k > 1)
		qsort(v, k, sizeof *v, tcmp);
	for (size_t i = 0; i < k; i++)
		fn(v[i]->ups_name, v[i]->addr, &v[i]->hi, ctx);
	pthread_mutex_unlock(&H.mu);
	free(v);
}

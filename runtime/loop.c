/*
 * loop.c — one worker's event loop: its own epoll holding its
 * libmicrohttpd daemons' epoll fds, libcurl's sockets and a wake-up
 * eventfd. One iteration:
 *
 *   epoll_wait (timeout: curl's timer, MHD's timeout, our sweeps)
 *   -> curl_multi_socket_action for each ready curl socket
 *   -> completions (curl_multi_info_read)
 *   -> MHD_run (only if MHD has something: its fd ready, a connection
 *      resumed, or a timeout due)
 *   -> deferred curl unpauses
 *   -> curl_multi_socket_action(CURL_SOCKET_TIMEOUT) if handles were added
 *      during MHD_run, so requests started in this iteration go out now in
 *      one batch
 *   -> sweeps (head timeouts, upstream read timeouts) a few times a second
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "door.h"
#include "linger.h"
#include "log.h"
#include "reload.h"

#define TAG_MHD  1ull
#define TAG_CURL 2ull
#define TAG_WAKE 3ull
#define SWEEP_MS 100
#define TAG_PLUG 4ull   /* a plugin's fd (gw_loop_watch) */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void update_table(gw_worker *w)
{
	if (reload_generation() == w->gen)
		return;
	gw_tab *t = reload_acquire();
	if (!t)
		return;
	gw_wtab *nw = calloc(1, sizeof *nw);
	if (!nw) {
		reload_release(t);
		return;        /* try again next iteration */
	}
	nw->tab = t;
	gw_wtab *old = w->wt;
	w->wt = nw;
	w->gen = t->gen;
	if (old) {
		if (old->inflight == 0) {
			reload_release(old->tab);
			free(old);
		} else {
			old->next = w->retired;
			w->retired = old;
		}
	}
}

/* ------------------------------------------------------ gw_worker_post
 * Callbacks other threads hand to a worker (plugin.h; a cache fill waking
 * requests that wait on other workers): a locked list per worker, and the
 * worker's wake-up eventfd; the worker runs them after its events. */
typedef struct post_item { struct post_item *next; void (*fn)(void *); void *arg; } post_item;
#define POST_MAX_WORKERS 256          /* srv_start's limit */
static struct post_box {
	pthread_mutex_t mu;
	post_item *head, **tail;
	int ready;
} post_box[POST_MAX_WORKERS];

int gw_worker_post(int worker, void (*fn)(void *arg), void *arg)
{
	if (worker < 0 || worker >= srv_nworkers || worker >= POST_MAX_WORKERS ||
	    !post_box[worker].ready)
		return -1;
	post_item *it = malloc(sizeof *it);
	if (!it)
		return -1;
	it->next = NULL;
	it->fn = fn;
	it->arg = arg;
	struct post_box *b = &post_box[worker];
	pthread_mutex_lock(&b->mu);
	*b->tail = it;
	b->tail = &it->next;
	pthread_mutex_unlock(&b->mu);
	uint64_t one = 1;
	ssize_t k = write(srv_workers[worker].evfd, &one, sizeof one);
	(void)k;
	return 0;
}

static void post_run(gw_worker *w)
{
	if (w->idx >= POST_MAX_WORKERS)
		return;
	struct post_box *b = &post_box[w->idx];
	pthread_mutex_lock(&b->mu);
	post_item *it = b->head;
	b->head = NULL;
	b->tail = &b->head;
	pthread_mutex_unlock(&b->mu);
	while (it) {
		post_item *nx = it->next;
		it->fn(it->arg);
		free(it);
		it = nx;
	}
}

int loop_worker_init(gw_worker *w, const int *lfds, size_t nl, const gwd_config *cfg,
                     int nworkers, char *err, size_t errlen)
{
	if (w->idx < POST_MAX_WORKERS && !post_box[w->idx].ready) {
		pthread_mutex_init(&post_box[w->idx].mu, NULL);
		post_box[w->idx].tail = &post_box[w->idx].head;
		post_box[w->idx].ready = 1;
	}
	w->conns.next = w->conns.prev = &w->conns;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->scratch = gwb_scratch_new();
	w->md = pcre2_match_data_create(GWB_MAX_CAPTURES, NULL);
	w->mhd = calloc(nl ? nl : 1, sizeof *w->mhd);
	w->mhd_fd = calloc(nl ? nl : 1, sizeof *w->mhd_fd);
	if (w->epfd < 0 || w->evfd < 0 || !w->scratch || !w->md || !w->mhd || !w->mhd_fd ||
	    proxy_worker_init(w) != 0) {
		snprintf(err, errlen, "worker %d: cannot set up its event loop", w->idx);
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_WAKE << 32 };
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev);
	gw_tl_now = now_ms();
	update_table(w);
	if (!w->wt) {
		snprintf(err, errlen, "worker %d: no table loaded", w->idx);
		return -1;
	}
	for (size_t i = 0; i < nl; i++) {
		int tls;
		const cfg_listen *l = srv_listen_addr(cfg, i, &tls);
		/* plain: gwd accepts and looks at the first head (door.c) */
		w->mhd[i] = tls ? srv_daemon_start_tls(w, lfds[i], cfg, nworkers)
		                : srv_daemon_start(w, -1, cfg, nworkers);
		if (!tls && w->mhd[i] &&
		    door_listen(w, i, nl, lfds[i], srv_head_room(cfg), srv_conn_limit(cfg, nworkers)) != 0) {
			snprintf(err, errlen, "worker %d: cannot accept on %s:%d", w->idx, l->host, l->port);
			close(lfds[i]);
			return -1;
		}
		if (!w->mhd[i]) {
			snprintf(err, errlen, "worker %d: libmicrohttpd did not start on %s:%d%s", w->idx,
			         l->host, l->port, tls ? " (TLS)" : "");
			close(lfds[i]);
			return -1;
		}
		w->nmhd = i + 1;
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->mhd[i], MHD_DAEMON_INFO_EPOLL_FD);
		w->mhd_fd[i] = di ? di->epoll_fd : -1;
		ev.events = EPOLLIN;
		ev.data.u64 = (TAG_MHD << 32) | (uint32_t)i;
		if (w->mhd_fd[i] < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->mhd_fd[i], &ev) != 0) {
			snprintf(err, errlen, "worker %d: cannot watch libmicrohttpd's epoll", w->idx);
			return -1;
		}
	}
	return 0;
}

static void start_drain(gw_worker *w)
{
	if (w->draining)
		return;
	w->draining = 1;
	w->drain_deadline = gw_tl_now + w->wt->tab->lim.drain_timeout_ms;
	for (size_t i = 0; i < w->nmhd; i++) {
		MHD_socket l = MHD_quiesce_daemon(w->mhd[i]);
		if (l != MHD_INVALID_SOCKET)
			close(l);
	}
	door_close(w);
	/* idle connections go now, busy ones after their response
	 * (queue() adds "Connection: close" while draining) */
	srv_sweep(w, gw_tl_now, w->wt->tab->lim.client_timeout_ms);
}

/* ----------------------------------------- plugin watches and timers
 * plugin.h's gw_loop_watch / gw_timer_*: fds and one-shot timers of
 * plugins (the rate limiter's Redis connections). Thread-local: a worker
 * is a thread, and these are only touched on it. */
static _Thread_local gw_worker *plug_w;
typedef struct plug_watch { gw_io_cb cb; void *arg; } plug_watch;
static _Thread_local plug_watch *plug_fds;      /* by fd */
static _Thread_local size_t plug_nfds;
struct gw_timer { gw_timer *next; uint64_t due; int firing; gw_timer_cb cb; void *arg; };
static _Thread_local gw_timer *plug_timers;

int gw_loop_watch(int fd, unsigned events, gw_io_cb cb, void *arg)
{
	if (!plug_w || fd < 0 || !cb) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)fd >= plug_nfds) {
		size_t n = (size_t)fd + 16;
		plug_watch *v = realloc(plug_fds, n * sizeof *v);
		if (!v)
			return -1;
		memset(v + plug_nfds, 0, (n - plug_nfds) * sizeof *v);
		plug_fds = v;
		plug_nfds = n;
	}
	struct epoll_event ev = {
		.events = (events & GW_IO_READ ? EPOLLIN : 0u) | (events & GW_IO_WRITE ? EPOLLOUT : 0u),
		.data.u64 = (TAG_PLUG << 32) | (uint32_t)fd,
	};
	int op = plug_fds[fd].cb ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(plug_w->epfd, op, fd, &ev) != 0)
		return -1;
	plug_fds[fd].cb = cb;
	plug_fds[fd].arg = arg;
	return 0;
}

void gw_loop_unwatch(int fd)
{
	if (!plug_w || fd < 0 || (size_t)fd >= plug_nfds || !plug_fds[fd].cb)
		return;
	epoll_ctl(plug_w->epfd, EPOLL_CTL_DEL, fd, NULL);
	plug_fds[fd].cb = NULL;
}

static void plug_io(int fd, uint32_t events)
{
	/* an earlier callback of this batch may have unwatched it */
	if ((size_t)fd >= plug_nfds || !plug_fds[fd].cb)
		return;
	unsigned e = (events & EPOLLIN ? GW_IO_READ : 0u) | (events & EPOLLOUT ? GW_IO_WRITE : 0u) |
	             (events & (EPOLLERR | EPOLLHUP) ? GW_IO_ERROR : 0u);
	plug_fds[fd].cb(fd, e, plug_fds[fd].arg);
}

gw_timer *gw_timer_new(gw_timer_cb cb, void *arg)
{
	gw_timer *t = plug_w && cb ? calloc(1, sizeof *t) : NULL;
	if (!t)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	t->next = plug_timers;
	plug_timers = t;
	return t;
}

void gw_timer_set(gw_timer *t, uint64_t due_ms)
{
	if (t) {
		t->due = due_ms;
		t->firing = 0;
	}
}

void gw_timer_free(gw_timer *t)
{
	for (gw_timer **p = &plug_timers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			free(t);
			return;
		}
}

/* run the due timers; a callback may set or free any timer, so the list
 * is walked again after each one, and a timer re-armed for "now" by its
 * own callback waits for the next iteration */
static void plug_timers_run(void)
{
	int any = 0;
	for (gw_timer *t = plug_timers; t; t = t->next)
		if (t->due && t->due <= gw_tl_now)
			any = t->firing = 1;
	while (any) {
		any = 0;
		for (gw_timer *t = plug_timers; t; t = t->next)
			if (t->firing) {
				t->firing = 0;
				t->due = 0;
				t->cb(t->arg);
				any = 1;
				break;
			}
	}
}

static uint64_t plug_timeout(uint64_t t)
{
	for (const gw_timer *p = plug_timers; p; p = p->next)
		if (p->due) {
			uint64_t d = p->due > gw_tl_now ? p->due - gw_tl_now : 0;
			if (d < t)
				t = d;
		}
	return t;
}

static int compute_timeout(gw_worker *w)
{
	if (w->mhd_dirty || w->unpause || w->curl_timeout == 0)
		return 0;
	uint64_t t = w->next_sweep > gw_tl_now ? w->next_sweep - gw_tl_now : 0;
	if (w->curl_timeout > 0) {
		uint64_t c = w->curl_deadline > gw_tl_now ? w->curl_deadline - gw_tl_now : 0;
		if (c < t)
			t = c;
	}
	for (size_t i = 0; i < w->nmhd; i++) {
		MHD_UNSIGNED_LONG_LONG mt;
		if (MHD_get_timeout(w->mhd[i], &mt) == MHD_YES && mt < t) {
			t = mt;
			/* 0: MHD has work without an fd event (a resumed connection
			 * still on its ready list after its response: it re-arms its
			 * epoll only after one more read). Run it, or the loop spins
			 * on a zero timeout until the next sweep. */
			if (mt == 0)
				w->mhd_dirty = 1;
		}
	}
	t = plug_timeout(t);
	if (w->draining && t > 50)
		t = 50;
	return (int)t;
}

void *loop_run(void *arg)
{
	gw_worker *w = arg;
	struct epoll_event evs[128];
	gw_tl_now = now_ms();
	w->next_sweep = gw_tl_now + SWEEP_MS;
	plug_w = w;
	proxy_thread_enter(w);
	for (;;) {
		int n = epoll_wait(w->epfd, evs, 128, compute_timeout(w));
		if (n < 0 && errno != EINTR) {
			log_err("worker %d: epoll_wait: %s", w->idx, strerror(errno));
			break;
		}
		gw_tl_now = now_ms();
		update_table(w);
		int mhd_ready = 0;
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64 >> 32;
			int fd = (int)(uint32_t)evs[i].data.u64;
			if (tag == TAG_CURL) {
				proxy_socket_event(w, fd, evs[i].events);
			} else if (tag == TAG_MHD) {
				mhd_ready = 1;
			} else if (tag == TAG_PLUG) {
				plug_io(fd, evs[i].events);
			} else if (tag == DOOR_TAG_LISTEN) {
				door_listen_event(w, (uint32_t)fd);
			} else if (tag == DOOR_TAG_CONN) {
				door_conn_event(w, fd, evs[i].events);
			} else if (tag == LINGER_TAG) {
				linger_event(w, fd);
			} else {
				uint64_t v;
				ssize_t k = read(w->evfd, &v, sizeof v);
				(void)k;
				post_run(w);
			}
		}
		plug_timers_run();
		int stop = atomic_load(&w->stop);
		if (stop == 2)
			break;
		if (stop == 1 && !w->draining)
			start_drain(w);
		if (w->curl_timeout >= 0 && gw_tl_now >= w->curl_deadline)
			proxy_timeout_event(w);
		proxy_drain_done(w);
		if (mhd_ready || w->mhd_dirty || gw_tl_now >= w->next_sweep) {
			w->mhd_dirty = 0;
			for (size_t i = 0; i < w->nmhd; i++)
				MHD_run(w->mhd[i]);
		}
		proxy_unpause_pending(w);
		if (w->curl_timeout == 0)
			proxy_timeout_event(w);
		proxy_drain_done(w);
		if (gw_tl_now >= w->next_sweep) {
			w->next_sweep = gw_tl_now + SWEEP_MS;
			const gw_limits *lim = &w->wt->tab->lim;
			srv_sweep(w, gw_tl_now, lim->client_timeout_ms);
			door_sweep(w, gw_tl_now, lim->client_timeout_ms);
			linger_sweep(w, gw_tl_now);
			proxy_sweep(w, gw_tl_now);
		}
		if (w->draining) {
			if (w->nconn == 0 && w->nreq == 0)
				break;
			if (gw_tl_now >= w->drain_deadline) {
				log_warn("worker %d: drain timeout: %u requests cut", w->idx, w->nreq);
				break;
			}
		}
	}
	/* plugins' fds and timers die with the process (their owners do not
	 * outlive the workers); the watch table is ours */
	free(plug_fds);
	plug_fds = NULL;
	plug_nfds = 0;
	plug_w = NULL;
	return NULL;
}

void loop_worker_free(gw_worker *w)
{
	/* MHD must not be stopped with suspended connections (its API rule):
	 * after a cut drain or QUIT some may be; then leave the daemons to
	 * process exit */
	int clean = w->nreq == 0;
	for (size_t i = 0; i < w->nmhd; i++)
		if (clean && w->mhd[i])
			MHD_stop_daemon(w->mhd[i]);
	if (!clean)
		return;
	proxy_worker_free(w);
	door_free(w);
	linger_free(w);
	while (w->free_req) {
		gw_req *r = w->free_req;
		w->free_req = r->next;
		free(r);
	}
	while (w->free_conn) {
		gw_conn *c = w->free_conn;
		w->free_conn = c->next;
		free(c);
	}
	if (w->wt) {
		reload_release(w->wt->tab);
		free(w->wt);
		w->wt = NULL;
	}
	while (w->retired) {
		gw_wtab *t = w->retired;
		w->retired = t->next;
		reload_release(t->tab);
		free(t);
	}
	gwb_scratch_free(w->scratch);
	pcre2_match_data_free(w->md);
	free(w->mhd);
	free(w->mhd_fd);
	close(w->epfd);
	close(w->evfd);
}

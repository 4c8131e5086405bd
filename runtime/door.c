/*
 * door.c — gwd's own accept() for plain listeners (door.h says why).
 *
 * A new connection is peeked at once (the head is usually there already:
 * one recv, nothing else); if it is not complete yet the socket waits in
 * the worker's epoll until it is, or until the client timeout. A
 * well-formed head goes to libmicrohttpd with MHD_add_connection, which
 * reads the same bytes; a malformed one gets gwd's JSON error.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "door.h"
#include "linger.h"
#include "log.h"
#include "reqid.h"
#include "respond.h"

typedef struct door_conn {
	struct door_conn *next, *prev;
	int fd;
	uint32_t li;                 /* listener: index into w->mhd */
	uint64_t since;
	struct sockaddr_storage addr;
	socklen_t alen;
} door_conn;

struct door_state {
	int *lfd;                    /* by listener; -1: libmicrohttpd accepts */
	size_t nl;
	door_conn waiting;           /* sentinel */
	unsigned n;
	door_conn **by_fd;
	size_t nby;
	char *buf;                   /* peek buffer */
	size_t cap;
	unsigned climit;             /* connections per worker (max_connections) */
};

/* ------------------------------------------------------ the connections */

int door_send_error(int fd, int status, const char *msg, const char *reqid)
{
	char out[768];
	size_t n = respond_raw_error(out, sizeof out, status,
	                             MHD_get_reason_phrase_for((unsigned)status), msg, reqid);
	return n < sizeof out && send(fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n;
}

/* gwd's JSON error, then a lingering close: the head was only peeked
 * at, and a close on unread bytes sends a reset that can destroy the
 * answer before the client reads it */
static void answer(gw_worker *w, door_conn *c, int status, const char *why)
{
	char id[REQID_LEN + 1];
	reqid_gen(id);
	door_send_error(c->fd, status, why, id);
	linger_start(w, c->fd);
	w->errors++;
	log_debug("worker %d: malformed request head refused with %d (%s)", w->idx, status, why);
}

static void detach(gw_worker *w, door_conn *c)
{
	struct door_state *d = w->door;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	d->by_fd[c->fd] = NULL;
	d->n--;
}

/* look at c's bytes: 1 decided (the socket handed over or closed; c is
 * out of the waiting list, the caller frees it), 0 wait */
static int look(gw_worker *w, door_conn *c, int registered, int peer_closed)
{
	struct door_state *d = w->door;
	ssize_t n = recv(c->fd, d->buf, d->cap, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !peer_closed)
		return 0;
	int status = 0, v = DOOR_MORE;
	const char *why = NULL;
	if (n > 0)
		v = door_check(d->buf, (size_t)n, d->cap, &status, &why);
	if (v == DOOR_MORE && !peer_closed && n > 0)
		return 0;
	/* decided: out of our epoll first (libmicrohttpd adds the socket to
	 * its own; ours must not keep reporting it) */
	if (registered)
		detach(w, c);
	if (v == DOOR_MORE) {
		close(c->fd);   /* gone before a whole head: nothing to answer */
	} else if (v == DOOR_REFUSE) {
		answer(w, c, status, why);
	} else {
		/* the socket is libmicrohttpd's now (it closes it on failure) */
		MHD_add_connection(w->mhd[c->li], c->fd, (const struct sockaddr *)&c->addr, c->alen);
		w->mhd_dirty = 1;
	}
	return 1;
}

static int wait_for_head(gw_worker *w, door_conn *c)
{
	struct door_state *d = w->door;
	if ((size_t)c->fd >= d->nby) {
		size_t nn = d->nby ? d->nby : 256;
		while (nn <= (size_t)c->fd)
			nn *= 2;
		door_conn **nb = realloc(d->by_fd, nn * sizeof *nb);
		if (!nb)
			return -1;
		memset(nb + d->nby, 0, (nn - d->nby) * sizeof *nb);
		d->by_fd = nb;
		d->nby = nn;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
	                          .data.u64 = (DOOR_TAG_CONN << 32) | (uint32_t)c->fd };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		return -1;
	d->by_fd[c->fd] = c;
	c->prev = &d->waiting;
	c->next = d->waiting.next;
	d->waiting.next->prev = c;
	d->waiting.next = c;
	d->n++;
	return 0;
}

void door_listen_event(gw_worker *w, uint32_t i)
{
	struct door_state *d = w->door;
	if (!d || i >= d->nl || d->lfd[i] < 0)
		return;
	/* a bounded batch: the listen socket stays ready for the next round */
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(d->lfd[i], (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				log_warn("worker %d: accept: %s", w->idx, strerror(errno));
			return;
		}
		if (w->nconn + d->n >= d->climit) {
			close(fd);     /* max_connections: as libmicrohttpd's own accept */
			continue;
		}
		door_conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->li = i;
		c->since = gw_tl_now;
		memcpy(&c->addr, &ss, sl);
		c->alen = sl;
		if (look(w, c, 0, 0)) {
			free(c);
		} else if (wait_for_head(w, c) != 0) {
			close(fd);
			free(c);
		}
	}
}

void door_conn_event(gw_worker *w, int fd, uint32_t events)
{
	struct door_state *d = w->door;
	if (!d || fd < 0 || (size_t)fd >= d->nby || !d->by_fd[fd])
		return;
	door_conn *c = d->by_fd[fd];
	if (look(w, c, 1, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0))
		free(c);
}

void door_sweep(gw_worker *w, uint64_t now, uint32_t timeout_ms)
{
	struct door_state *d = w->door;
	if (!d)
		return;
	for (door_conn *c = d->waiting.next, *nx; c != &d->waiting; c = nx) {
		nx = c->next;
		if (now - c->since >= timeout_ms) {
			detach(w, c);
			close(c->fd);
			free(c);
		}
	}
}

void door_close(gw_worker *w)
{
	struct door_state *d = w->door;
	if (!d)
		return;
	for (size_t i = 0; i < d->nl; i++)
		if (d->lfd[i] >= 0) {
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, d->lfd[i], NULL);
			close(d->lfd[i]);
			d->lfd[i] = -1;
		}
	while (d->waiting.next != &d->waiting) {
		door_conn *c = d->waiting.next;
		detach(w, c);
		close(c->fd);
		free(c);
	}
}

void door_free(gw_worker *w)
{
	struct door_state *d = w->door;
	if (!d)
		return;
	door_close(w);
	free(d->lfd);
	free(d->by_fd);
	free(d->buf);
	free(d);
	w->door = NULL;
}

unsigned door_waiting(const gw_worker *w) { return w->door ? w->door->n : 0; }

int door_listen(gw_worker *w, size_t i, size_t nl, int lfd, size_t cap, unsigned climit)
{
	struct door_state *d = w->door;
	if (!d) {
		if (!(d = calloc(1, sizeof *d)))
			return -1;
		d->waiting.next = d->waiting.prev = &d->waiting;
		d->lfd = malloc(nl * sizeof *d->lfd);
		d->buf = malloc(cap);
		if (!d->lfd || !d->buf) {
			free(d->lfd);
			free(d->buf);
			free(d);
			return -1;
		}
		for (size_t k = 0; k < nl; k++)
			d->lfd[k] = -1;
		d->nl = nl;
		d->cap = cap;
		d->climit = climit;
		w->door = d;
	}
	if (i >= d->nl)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (DOOR_TAG_LISTEN << 32) | (uint32_t)i };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, lfd, &ev) != 0)
		return -1;
	d->lfd[i] = lfd;
	return 0;
}

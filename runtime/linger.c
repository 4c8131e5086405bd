/*
 * linger.c — lingering close (linger.h says why).
 *
 * Each worker keeps its lingering sockets in a small list (at most
 * LINGER_MAX_FDS, usually none) with an index by fd for the epoll events;
 * the sweep that already runs every SWEEP_MS closes the expired ones.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "linger.h"

typedef struct linger_fd {
	int fd;
	uint64_t start, last;        /* ms: lingering since, last byte read */
} linger_fd;

struct linger_state {
	linger_fd *v;                /* unordered; n in use */
	unsigned n;
	int *slot;                   /* by fd: index into v, -1 none */
	size_t nslot;
};

/* the worker's state, made on first use */
static struct linger_state *state(gw_worker *w)
{
	if (!w->linger)
		w->linger = calloc(1, sizeof *w->linger);
	struct linger_state *s = w->linger;
	if (s && !s->v && !(s->v = malloc(LINGER_MAX_FDS * sizeof *s->v))) {
		free(s);
		w->linger = s = NULL;
	}
	return s;
}

static int slot_room(struct linger_state *s, int fd)
{
	if ((size_t)fd < s->nslot)
		return 0;
	size_t nn = s->nslot ? s->nslot : 256;
	while (nn <= (size_t)fd)
		nn *= 2;
	int *ns = realloc(s->slot, nn * sizeof *ns);
	if (!ns)
		return -1;
	for (size_t i = s->nslot; i < nn; i++)
		ns[i] = -1;
	s->slot = ns;
	s->nslot = nn;
	return 0;
}

/* close v[i] and move the last entry into its place */
static void drop(gw_worker *w, struct linger_state *s, unsigned i)
{
	int fd = s->v[i].fd;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	s->slot[fd] = -1;
	if (i != --s->n) {
		s->v[i] = s->v[s->n];
		s->slot[s->v[i].fd] = (int)i;
	}
}

void linger_start(gw_worker *w, int fd)
{
	struct linger_state *s = state(w);
	shutdown(fd, SHUT_WR);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
	                          .data.u64 = (LINGER_TAG << 32) | (uint32_t)fd };
	if (!s || s->n >= LINGER_MAX_FDS || slot_room(s, fd) != 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return;
	}
	s->v[s->n] = (linger_fd){ .fd = fd, .start = gw_tl_now, .last = gw_tl_now };
	s->slot[fd] = (int)s->n++;
}

void linger_event(gw_worker *w, int fd)
{
	struct linger_state *s = w->linger;
	if (!s || fd < 0 || (size_t)fd >= s->nslot || s->slot[fd] < 0)
		return;
	unsigned i = (unsigned)s->slot[fd];
	char buf[16384];
	/* a bounded batch: a client that keeps sending fast gets another
	 * turn at the next event, the other connections theirs meanwhile */
	for (int k = 0; k < 16; k++) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0) {
			s->v[i].last = gw_tl_now;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		drop(w, s, i);     /* the client closed its side (0), or an error */
		return;
	}
}

void linger_sweep(gw_worker *w, uint64_t now)
{
	struct linger_state *s = w->linger;
	if (!s)
		return;
	for (unsigned i = 0; i < s->n;) {
		if (now - s->v[i].last >= LINGER_IDLE_MS || now - s->v[i].start >= LINGER_MAX_MS)
			drop(w, s, i);     /* moves the last entry to i: look again */
		else
			i++;
	}
}

void linger_free(gw_worker *w)
{
	struct linger_state *s = w->linger;
	if (!s)
		return;
	while (s->n)
		drop(w, s, s->n - 1);
	free(s->v);
	free(s->slot);
	free(s);
	w->linger = NULL;
}

unsigned linger_count(const gw_worker *w) { return w->linger ? w->linger->n : 0; }

/* floor-curl: the cheapest use of libcurl a proxy can make, measured.
 *
 * N easy handles, options set once, each re-added as soon as its transfer
 * ends, so every request reuses a pooled keep-alive connection; curl's
 * sockets stay registered in one epoll driven through the socket API
 * (runtime-notes.md's best architecture, minus everything a gateway adds:
 * no server side, no header copying, the body is thrown away). What it
 * costs per request is a floor under gwd's upstream side: gwd makes the
 * same libcurl calls and more.
 *
 *   floor-curl URL CONNECTIONS SECONDS
 *
 * Prints one line: requests, req/s, user and system CPU per request (after
 * one second of warm-up). Exits 1 on any transfer error. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

static int ep;
static long timer_ms = -1;

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *u, void *sp)
{
	struct epoll_event ev = { 0 };

	(void)e;
	(void)u;
	(void)sp;
	if (what == CURL_POLL_REMOVE)
		return epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), 0;
	ev.data.fd = s;
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
	if (epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) != 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

static int on_timer(CURLM *m, long ms, void *u)
{
	(void)m;
	(void)u;
	timer_ms = ms;
	return 0;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double us(struct timeval a, struct timeval b)
{
	return (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_usec - a.tv_usec);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: floor-curl URL CONNECTIONS SECONDS\n");
		return 2;
	}
	int n = atoi(argv[2]), running;
	double secs = atof(argv[3]), t0, tw = 0;
	long done = 0, warm = 0;
	struct rusage r0 = { 0 }, r1;
	CURLM *m;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ep = epoll_create1(0);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)n * 2);
	for (int i = 0; i < n; i++) {
		CURL *e = curl_easy_init();
		curl_easy_setopt(e, CURLOPT_URL, argv[1]);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_PROXY, "");      /* as gwd: no proxy getenv */
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);    /* as gwd: no SIGPIPE dance */
		curl_multi_add_handle(m, e);
	}
	t0 = now();
	curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
	for (;;) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, timer_ms < 0 ? 100 : (int)timer_ms);
		CURLMsg *msg;
		int left;

		for (int i = 0; i < k; i++)
			curl_multi_socket_action(m, evs[i].data.fd,
			                         (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			                                 (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0),
			                         &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			if (msg->data.result != CURLE_OK) {
				fprintf(stderr, "floor-curl: %s\n", curl_easy_strerror(msg->data.result));
				return 1;
			}
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_multi_add_handle(m, msg->easy_handle);
			done++;
		}
		/* one batch for the handles re-added above (add only arms a timer) */
		curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
		double t = now();
		if (tw == 0 && t - t0 > 1.0) {
			tw = t;
			warm = done;
			getrusage(RUSAGE_SELF, &r0);
		} else if (tw != 0 && t - tw >= secs) {
			break;
		}
	}
	getrusage(RUSAGE_SELF, &r1);
	long req = done - warm;
	printf("floor-curl requests=%ld rps=%.0f user_us_per_req=%.2f sys_us_per_req=%.2f\n", req,
	       (double)req / secs, us(r0.ru_utime, r1.ru_utime) / (double)req,
	       us(r0.ru_stime, r1.ru_stime) / (double)req);
	return 0;
}

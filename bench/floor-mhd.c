/* floor-mhd: the cheapest use of libmicrohttpd a gateway can make.
 *
 * One thread, MHD_USE_EPOLL driven from our own epoll (as gwd's workers),
 * the connection memory pool gwd uses at default limits, and one
 * persistent 64-byte response queued in the handler's second call (a
 * response queued in the first call costs keep-alive). No suspend, no
 * upstream: what it costs per request is a floor under gwd's client side.
 *
 *   floor-mhd PORT
 *
 * Serves until killed; the benchmark reads its CPU time from /proc. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static struct MHD_Response *resp;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_size;
	if (*state == NULL) {
		*state = c;
		return MHD_YES;
	}
	return MHD_queue_response(c, 200, resp);
}

int main(int argc, char **argv)
{
	static char body[64];
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *di;
	struct epoll_event ev = { .events = EPOLLIN };
	int ep;

	if (argc != 2) {
		fprintf(stderr, "usage: floor-mhd PORT\n");
		return 2;
	}
	memset(body, '.', sizeof body - 1);
	body[sizeof body - 1] = '\n';
	resp = MHD_create_response_from_buffer(sizeof body, body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)atoi(argv[1]), NULL,
	                     NULL, on_request, NULL,
	                     /* srv_head_room() at the default max_header_size 16k */
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16384 + 4096 + 8192),
	                     MHD_OPTION_CONNECTION_LIMIT, 20000u, MHD_OPTION_END);
	if (d == NULL || (di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
		fprintf(stderr, "floor-mhd: cannot start on port %s\n", argv[1]);
		return 1;
	}
	ep = epoll_create1(0);
	epoll_ctl(ep, EPOLL_CTL_ADD, di->epoll_fd, &ev);
	for (;;) {
		struct epoll_event evs[8];
		MHD_UNSIGNED_LONG_LONG tmo;
		int ms = MHD_get_timeout(d, &tmo) == MHD_YES && tmo < 1000 ? (int)tmo : 1000;

		epoll_wait(ep, evs, 8, ms);
		MHD_run(d);
	}
}

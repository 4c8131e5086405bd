/*
 * gwd.c — the gateway daemon's main: options, start-up, and the control
 * thread (signals, inotify, reload debounce). Serving happens in the
 * worker threads (srv.c, loop.c).
 *
 *   gwd -c gateway.yaml        run in the foreground, log to stderr
 *   gwd -t -c gateway.yaml     load config and table, verify, exit 0/1
 *   gwd --demo -c FILE         also start the demo origin on 127.0.0.1:8081
 *   gwd --version | --help
 *
 * Signals: HUP reload config + table, USR1 reopen logs, TERM/INT graceful
 * stop (stop accepting, drain in-flight requests up to drain_timeout),
 * QUIT stop now.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "accesslog.h"
#include "admin.h"
#include "config.h"
#include "core.h"
#include "dashboard.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "origin.h"
#include "reload.h"
#include "srv.h"
#include "tls.h"

#define DEMO_ORIGIN_PORT 8081

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: gwd -c gateway.yaml [--demo]   run in the foreground\n"
	        "       gwd -t -c gateway.yaml          check config and table, exit 0/1\n"
	        "       gwd --version | --help\n"
	        "\n"
	        "  -c FILE    configuration (gateway.yaml)\n"
	        "  -t         load and verify the configuration and the table, print the result\n"
	        "  --demo     also start the demo origin on 127.0.0.1:%d (for examples/demo.yaml)\n"
	        "\n"
	        "signals: HUP reload, USR1 reopen logs, TERM/INT graceful stop, QUIT stop now\n",
	        DEMO_ORIGIN_PORT);
}

/* -t: can gwd open PATH for appending, as it will at start (nginx -t opens
 * its logs too)? A file not there yet is not created: its directory must
 * let gwd create it. */
static int check_writable(const char *what, const char *path)
{
	if (!path || !strcmp(path, "-") || !strcmp(path, "off") || access(path, W_OK) == 0)
		return 0;
	int e = errno;
	if (e == ENOENT) {
		char *d = strdup(path);
		if (d && access(dirname(d), W_OK | X_OK) == 0) {
			free(d);
			return 0;
		}
		e = d ? errno : ENOMEM;
		free(d);
	}
	fprintf(stderr, "gwd: %s %s: %s\n", what, path, strerror(e));
	return -1;
}

/* -t: what start-up reads besides config_load (the token file's content,
 * the log files), so that -t fails whenever gwd -c would refuse to start */
static int check_startup_files(const gwd_config *cfg)
{
	char err[1024];
	if (cfg->admin_token_file && admin_check_token(cfg->admin_token_file, err, sizeof err) < 0) {
		fprintf(stderr, "gwd: %s\n", err);
		return -1;
	}
	if (check_writable("access_log.path", cfg->access_log_path) < 0 ||
	    check_writable("error_log.path", cfg->error_log_path) < 0)
		return -1;
	return 0;
}

static int check_only(gwd_config *cfg)
{
	char err[1024];
	if (check_startup_files(cfg) < 0)
		return 1;
	ups_registry *reg = ups_registry_new();
	if (!reg || phase_init() != 0) {
		fprintf(stderr, "gwd: initialisation failed\n");
		return 1;
	}
	/* every certificate and key of tls: (which file is wrong, if one is) */
	if (tls_check(cfg, err, sizeof err) != 0) {
		fprintf(stderr, "gwd: %s\n", err);
		ups_registry_free(reg);
		return 1;
	}
	gw_tab *t = reload_load_tab(cfg->rules, cfg, reg, err, sizeof err);
	if (!t) {
		fprintf(stderr, "gwd: %s\n", err);
		ups_registry_free(reg);
		return 1;
	}
	log_open(NULL, LOG_WARN);
	phase_report_unsupported(t->t);
	printf("gwd: configuration %s ok\n", cfg->path);
	printf("gwd: table %s ok: %u routes, %u upstreams, source sha256 %s\n", cfg->rules,
	       gwb_nroutes(t->t), gwb_nupstreams(t->t), t->hash);
	reload_release(t);
	ups_registry_free(reg);
	return 0;
}

static void print_demo(const gwd_config *cfg, int oport)
{
	const char *h = cfg->nlisten ? cfg->listen[0].host : "127.0.0.1";
	int p = cfg->nlisten ? cfg->listen[0].port : 8080;
	if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !*h)
		h = "127.0.0.1";
	printf("gwd demo: gateway on http://%s:%d, demo origin on http://127.0.0.1:%d\n"
	       "try:\n"
	       "  curl -i http://%s:%d/\n"
	       "  curl -i http://%s:%d/api/echo?hello=world\n"
	       "  curl -i -X POST --data-binary 'some body' http://%s:%d/api/echo\n"
	       "  curl -i http://%s:%d/healthz\n"
	       "  curl -i http://%s:%d/no/such/route\n"
	       "edit the rules, run gwc compile, and gwd picks the new table up at once\n",
	       h, p, oport, h, p, h, p, h, p, h, p, h, p);
	fflush(stdout);
}

/* a start-up failure before reload_init owns the config: free what was
 * taken so far (a refused start must not look like a leak) */
static int early_fail(gwd_config *cfg, ups_registry *reg)
{
	if (reg)
		ups_registry_free(reg);
	config_free(cfg);
	free(cfg);
	return 1;
}

int main(int argc, char **argv)
{
	const char *cpath = NULL;
	int test = 0, demo = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			cpath = argv[++i];
		} else if (!strncmp(argv[i], "-c", 2) && argv[i][2]) {
			cpath = argv[i] + 2;
		} else if (!strcmp(argv[i], "-t")) {
			test = 1;
		} else if (!strcmp(argv[i], "--demo")) {
			demo = 1;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-v")) {
			printf("gwd %s (table format %d.%d, libmicrohttpd %s, %s)\n", PACKAGE_VERSION,
			       GWB_VERSION_MAJOR, GWB_VERSION_MINOR, MHD_get_version(), curl_version());
			return 0;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "gwd: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!cpath) {
		fprintf(stderr, "gwd: -c gateway.yaml is required\n");
		usage(stderr);
		return 2;
	}

	gwd_config *cfg = calloc(1, sizeof *cfg);
	char err[1024];
	if (!cfg || config_load(cpath, cfg, err, sizeof err) != 0) {
		fprintf(stderr, "gwd: %s\n", cfg ? err : "out of memory");
		free(cfg);
		return 1;
	}
	if (test) {
		int rc = check_only(cfg);
		config_free(cfg);
		free(cfg);
		return rc;
	}
	if (log_open(cfg->error_log_path, cfg->log_level) != 0) {
		fprintf(stderr, "gwd: cannot open error log %s: %s\n", cfg->error_log_path,
		        strerror(errno));
		return 1;
	}

	/* signals: blocked in every thread (workers inherit the mask), read
	 * by the control loop through a signalfd */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGUSR1);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);

	ups_registry *reg = ups_registry_new();
	if (!reg || phase_init() != 0 || sfd < 0) {
		log_err("initialisation failed");
		return early_fail(cfg, reg);
	}
	/* before reload_init: the first table load applies the persisted state */
	if (admin_init(cfg, reg, err, sizeof err) != 0) {
		log_err("%s", err);
		return early_fail(cfg, reg);
	}
	/* GET /metrics (registered before admin_start), the access log writer */
	if (metrics_init(reg, cfg, err, sizeof err) != 0 || accesslog_open(cfg, err, sizeof err) != 0) {
		log_err("%s", err);
		return early_fail(cfg, reg);
	}
	/* GET /: the live dashboard page (dashboard.h) */
	if (dashboard_init(err, sizeof err) != 0) {
		log_err("%s", err);
		return early_fail(cfg, reg);
	}
	if (reload_init(cfg, reg, err, sizeof err) != 0) {
		log_err("%s", err);
		return 1;
	}
	origin *demo_origin = NULL;
	if (demo) {
		demo_origin = origin_start("demo", "127.0.0.1", DEMO_ORIGIN_PORT, 1, err, sizeof err);
		if (!demo_origin) {
			log_err("demo origin: %s", err);
			return 1;
		}
	}
	if (tls_init(reload_config(), err, sizeof err) != 0 ||
	    srv_start(reload_config(), err, sizeof err) != 0) {
		log_err("%s", err);
		return 1;
	}
	if (admin_start(err, sizeof err) != 0) {
		log_err("%s", err);
		return 1;
	}
	if (health_start(err, sizeof err) != 0) {
		log_err("%s", err);
		return 1;
	}
	if (demo)
		print_demo(reload_config(), origin_port(demo_origin));

	int ep = epoll_create1(EPOLL_CLOEXEC);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = sfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	int ifd = reload_watch_fd();
	if (ifd >= 0) {
		ev.data.fd = ifd;
		epoll_ctl(ep, EPOLL_CTL_ADD, ifd, &ev);
	}
	int stopping = 0;
	while (stopping < 3) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, stopping ? 50 : -1);
		if (n < 0 && errno != EINTR)
			break;
		/* the inotify fd is created anew when the rules path moves */
		if (reload_watch_fd() != ifd && (ifd = reload_watch_fd()) >= 0) {
			ev.data.fd = ifd;
			epoll_ctl(ep, EPOLL_CTL_ADD, ifd, &ev);
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
					switch (si.ssi_signo) {
					case SIGHUP:
						log_info("SIGHUP: reloading configuration and table");
						reload_now(err, sizeof err);
						break;
					case SIGUSR1:
						log_reopen();
						accesslog_reopen();
						log_info("SIGUSR1: logs reopened");
						break;
					case SIGTERM:
					case SIGINT:
						if (!stopping) {
							log_info("%s: graceful stop (drain up to %u ms)",
							         si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
							         reload_config()->drain_timeout_ms);
							srv_stop(1);
							stopping = 1;
						}
						break;
					case SIGQUIT:
						log_info("SIGQUIT: stopping now");
						srv_stop(2);
						stopping = 2;
						break;
					}
				}
			} else if (fd == tfd) {
				uint64_t x;
				ssize_t k = read(tfd, &x, sizeof x);
				(void)k;
				reload_watch_timer();
			} else if (fd == ifd) {
				int ms = reload_watch_handle();
				if (ms >= 0) {
					struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000L } };
					timerfd_settime(tfd, 0, &its, NULL);
				}
			}
		}
		if (stopping) {
			int alive = 0;
			for (int i = 0; i < srv_nworkers; i++) {
				if (srv_workers[i].joined)
					continue;
				if (pthread_tryjoin_np(srv_workers[i].th, NULL) == 0)
					srv_workers[i].joined = 1;
				else
					alive = 1;
			}
			if (!alive)
				break;
		}
	}
	admin_stop();
	health_stop();
	/* every worker has returned (or is being told to): collect them */
	for (int i = 0; i < srv_nworkers; i++)
		if (!srv_workers[i].joined) {
			pthread_join(srv_workers[i].th, NULL);
			srv_workers[i].joined = 1;
		}
	accesslog_close();           /* workers gone: write out what they logged */
	metrics_shutdown();
	int cut = 0;
	for (int i = 0; i < srv_nworkers; i++)
		cut += srv_workers[i].nreq != 0;
	if (!cut) {
		for (int i = 0; i < srv_nworkers; i++)
			loop_worker_free(&srv_workers[i]);
		free(srv_workers);
		srv_workers = NULL;
		srv_nworkers = 0;
		origin_stop(demo_origin);
		tls_shutdown();
		reload_shutdown();
		ups_registry_free(reg);
		curl_global_cleanup();
	}
	log_info("stopped");
	close(ep);
	close(tfd);
	close(sfd);
	return 0;
}

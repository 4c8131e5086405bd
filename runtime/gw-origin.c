/*
 * gw-origin — the test/demo origin (origin.h) as a program of its own:
 *
 *   gw-origin --listen 127.0.0.1:PORT [--name NAME] [--threads N]
 *
 * Prints "listening HOST:PORT" on stdout once it accepts connections (with
 * the port chosen by the system for port 0), runs until SIGTERM or SIGINT.
 * Exit codes: 0 stopped by a signal, 1 cannot listen, 2 usage.
 */
#include <config.h>   /* <>: autoconf's, not runtime/config.h */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"   /* gwd's: config_parse_listen */
#include "origin.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: gw-origin --listen HOST:PORT [--name NAME] [--threads N]\n"
	           "  an HTTP origin for gw's tests and demo; endpoints: GET / lists them\n");
}

int main(int argc, char **argv)
{
	const char *listen = NULL, *name = "origin";
	int threads = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (!strcmp(a, "--listen"))
			listen = argv[++i];
		else if (!strcmp(a, "--name"))
			name = argv[++i];
		else if (!strcmp(a, "--threads")) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*end || n < 1 || n > 256) {
				fprintf(stderr, "gw-origin: --threads: expected 1..256\n");
				return 2;
			}
			threads = (int)n;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!listen) {
		usage(stderr);
		return 2;
	}
	cfg_listen l;
	char err[256];
	if (config_parse_listen(listen, &l, err, sizeof err) < 0) {
		fprintf(stderr, "gw-origin: --listen %s: %s\n", listen, err);
		return 2;
	}
	/* block the stop signals before any thread starts, so that all threads
	 * inherit the mask and only sigwait() below receives them */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	origin *o = origin_start(name, l.host, l.port, threads, err, sizeof err);
	if (!o) {
		fprintf(stderr, "gw-origin: %s\n", err);
		free(l.host);
		return 1;
	}
	int v6 = strchr(l.host, ':') != NULL;
	printf("listening %s%s%s:%d\n", v6 ? "[" : "", l.host, v6 ? "]" : "", origin_port(o));
	fflush(stdout);
	int sig = 0;
	sigwait(&set, &sig);
	origin_stop(o);
	free(l.host);
	return 0;
}

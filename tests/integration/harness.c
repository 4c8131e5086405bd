/*
 * harness.c — see harness.h. Everything a test creates is recorded in
 * per-process registries and released by one atexit handler in the test's
 * (forked) process: processes are SIGKILLed by group and reaped, origins
 * stopped, sockets closed, memory freed.
 */
#include <config.h>

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

/* ------------------------------------------------------- registries */

struct gwt_proc {
	char *name;
	pid_t pid;
	int exited, status;          /* status: as gwt_wait returns it */
	char *out_path, *err_path;
	char *out_snap, *err_snap;
};

struct gwt_client { CURL *easy; };

typedef struct vec { void **v; size_t n, cap; } vec;

static pid_t g_owner;                    /* the process the registries belong to */
static char *g_dir;
static vec g_mem, g_procs, g_origins, g_clients, g_json, g_fds;
static int g_curl_init;
static int g_nproc_named[8];             /* how many "gwd", "gw-origin"... started */

static void vec_push(vec *v, void *p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		void **n = realloc(v->v, cap * sizeof *n);
		ck_assert_msg(n != NULL, "out of memory");
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = p;
}

static void gwt_cleanup(void);

/* The registries of a forked child start empty: what the parent recorded
 * is the parent's to clean up. */
static void gwt_init(void)
{
	if (g_owner == getpid())
		return;
	memset(&g_mem, 0, sizeof g_mem);
	memset(&g_procs, 0, sizeof g_procs);
	memset(&g_origins, 0, sizeof g_origins);
	memset(&g_clients, 0, sizeof g_clients);
	memset(&g_json, 0, sizeof g_json);
	memset(&g_fds, 0, sizeof g_fds);
	memset(g_nproc_named, 0, sizeof g_nproc_named);
	g_dir = NULL;
	g_curl_init = 0;
	g_owner = getpid();
	atexit(gwt_cleanup);
	signal(SIGPIPE, SIG_IGN);
}

static void *own(void *p)
{
	gwt_init();
	ck_assert_msg(p != NULL, "out of memory");
	vec_push(&g_mem, p);
	return p;
}

static char *own_strdup(const char *s)
{
	return own(strdup(s));
}

static void gwt_cleanup(void)
{
	if (g_owner != getpid())
		return;
	for (size_t i = 0; i < g_procs.n; i++) {
		gwt_proc *p = g_procs.v[i];
		if (!p->exited) {
			kill(-p->pid, SIGKILL);
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
		free(p->name);
		free(p->out_path);
		free(p->err_path);
		free(p->out_snap);
		free(p->err_snap);
		free(p);
	}
	for (size_t i = 0; i < g_origins.n; i++)
		origin_stop(g_origins.v[i]);
	for (size_t i = 0; i < g_fds.n; i++)
		close((int)(intptr_t)g_fds.v[i]);
	for (size_t i = 0; i < g_clients.n; i++) {
		gwt_client *c = g_clients.v[i];
		curl_easy_cleanup(c->easy);
		free(c);
	}
	for (size_t i = 0; i < g_json.n; i++)
		json_decref(g_json.v[i]);
	for (size_t i = 0; i < g_mem.n; i++)
		free(g_mem.v[i]);
	free(g_procs.v);
	free(g_origins.v);
	free(g_fds.v);
	free(g_clients.v);
	free(g_json.v);
	free(g_mem.v);
	free(g_dir);
	memset(&g_procs, 0, sizeof g_procs);
	memset(&g_mem, 0, sizeof g_mem);
	g_dir = NULL;
	if (g_curl_init)
		curl_global_cleanup();
	g_owner = 0;
}

/* ----------------------------------------------------------- runner */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

int gwt_main(Suite *s, const char *needs)
{
	if (needs) {
		char *copy = strdup(needs), *save = NULL;
		for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", gwt_builddir(), w);
			if (access(path, X_OK) < 0) {
				printf("SKIP: %s is not built (%s)\n", w, path);
				free(copy);
				srunner_free(srunner_create(s));
				return 77;
			}
		}
		free(copy);
	}
	const char *tmpdir = getenv("TMPDIR");
	char base[4096];
	snprintf(base, sizeof base, "%s/gwt-%s-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp",
	         program_invocation_short_name);
	if (!mkdtemp(base)) {
		fprintf(stderr, "gwt: mkdtemp %s: %s\n", base, strerror(errno));
		return 1;
	}
	setenv("GWT_BASE", base, 1);
	SRunner *r = srunner_create(s);
	/* GWT_NOFORK=1 (debugging with gdb or sanitizers): one process, and no
	 * cleanup promise between tests */
	const char *nofork = getenv("GWT_NOFORK");
	srunner_set_fork_status(r, nofork && !strcmp(nofork, "1") ? CK_NOFORK : CK_FORK);
	srunner_run_all(r, CK_ENV);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	const char *keep = getenv("GWT_KEEP");
	if (failed || (keep && *keep && strcmp(keep, "0")))
		fprintf(stderr, "gwt: test files kept in %s\n", base);
	else
		nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}

/* ------------------------------------------------- files and paths */

const char *gwt_builddir(void)
{
	const char *d = getenv("GW_BUILDDIR");
	return d && *d ? d : ".";
}

const char *gwt_srcdir(void)
{
	const char *d = getenv("GW_SRCDIR");
	return d && *d ? d : ".";
}

const char *gwt_strf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0, "out of memory");
	return own(s);
}

const char *gwt_bin(const char *prog)
{
	return gwt_strf("%s/%s", gwt_builddir(), prog);
}

int gwt_have_bin(const char *prog)
{
	return access(gwt_bin(prog), X_OK) == 0;
}

const char *gwt_dir(void)
{
	gwt_init();
	if (g_dir)
		return g_dir;
	const char *base = getenv("GWT_BASE");
	char t[4096];
	snprintf(t, sizeof t, "%s/t-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_msg(mkdtemp(t) != NULL, "mkdtemp %s: %s", t, strerror(errno));
	g_dir = strdup(t);
	ck_assert_msg(g_dir != NULL, "out of memory");
	return g_dir;
}

const char *gwt_path(const char *name)
{
	if (name[0] == '/')
		return own_strdup(name);
	return gwt_strf("%s/%s", gwt_dir(), name);
}

static void mkdirs_for(const char *path)
{
	char *p = strdup(path);
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	free(p);
}

const char *gwt_write(const char *name, const void *data, size_t len)
{
	const char *path = gwt_path(name);
	const char *tmp = gwt_strf("%s.tmp-%d", path, (int)getpid());
	mkdirs_for(path);
	FILE *f = fopen(tmp, "wb");
	ck_assert_msg(f != NULL, "cannot write %s: %s", tmp, strerror(errno));
	ck_assert_msg(fwrite(data, 1, len, f) == len, "short write to %s", tmp);
	ck_assert_msg(fclose(f) == 0, "cannot write %s", tmp);
	ck_assert_msg(rename(tmp, path) == 0, "rename %s: %s", path, strerror(errno));
	return path;
}

const char *gwt_writef(const char *name, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0, "out of memory");
	const char *path = gwt_write(name, s, (size_t)n);
	free(s);
	return path;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			break;
		if (n + 1 >= cap) {
			char *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - 1 - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

const char *gwt_read(const char *name, size_t *len)
{
	char *s = slurp(gwt_path(name), len);
	return s ? own(s) : NULL;
}

/* ------------------------------------------------------- processes */

gwt_proc *gwt_spawn(const char *name, const char *const argv[], const char *const env[])
{
	gwt_init();
	gwt_proc *p = calloc(1, sizeof *p);
	ck_assert_msg(p != NULL, "out of memory");
	p->name = strdup(name);
	p->out_path = strdup(gwt_strf("%s/%s.out", gwt_dir(), name));
	p->err_path = strdup(gwt_strf("%s/%s.err", gwt_dir(), name));
	/* everything the child needs is built before fork: the test process
	 * has threads (origins, curl), so the child only calls async-signal-
	 * safe functions until exec */
	size_t nenv = 0, nextra = 0;
	while (environ[nenv])
		nenv++;
	while (env && env[nextra])
		nextra++;
	char **envp = own(calloc(nenv + nextra + 1, sizeof *envp));
	size_t k = 0;
	for (size_t i = 0; i < nextra; i++)
		envp[k++] = (char *)env[i];
	for (size_t i = 0; i < nenv; i++) {
		/* an extra entry replaces the inherited one of the same name */
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		int dup = 0;
		for (size_t j = 0; j < nextra && !dup; j++)
			dup = !strncmp(env[j], environ[i], nl) && env[j][nl] == '=';
		if (!dup)
			envp[k++] = environ[i];
	}
	envp[k] = NULL;
	int out = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_msg(out >= 0 && err >= 0 && devnull >= 0, "cannot create output files in %s",
	              gwt_dir());
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		setpgid(0, 0);
		/* die with the test process, even when Check SIGKILLs it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(devnull, 0);
		dup2(out, 1);
		dup2(err, 2);
		close_range(3, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execve(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	setpgid(pid, pid);               /* also here: no race with an early signal */
	close(out);
	close(err);
	close(devnull);
	p->pid = pid;
	vec_push(&g_procs, p);
	return p;
}

pid_t gwt_pid(const gwt_proc *p) { return p->pid; }

static int reap(gwt_proc *p, int flags)
{
	if (p->exited)
		return 1;
	int st;
	pid_t r = waitpid(p->pid, &st, flags);
	if (r == p->pid) {
		p->exited = 1;
		p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		return 1;
	}
	return 0;
}

const char *gwt_stdout(gwt_proc *p)
{
	free(p->out_snap);
	p->out_snap = slurp(p->out_path, NULL);
	return p->out_snap ? p->out_snap : "";
}

const char *gwt_stderr(gwt_proc *p)
{
	free(p->err_snap);
	p->err_snap = slurp(p->err_path, NULL);
	return p->err_snap ? p->err_snap : "";
}

uint64_t gwt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void gwt_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int gwt_wait_output(gwt_proc *p, const char *needle, int timeout_ms)
{
	uint64_t end = gwt_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int gone = reap(p, WNOHANG);
		if (strstr(gwt_stdout(p), needle) || strstr(gwt_stderr(p), needle))
			return 0;
		if (gone || gwt_now_ms() >= end)
			return -1;
		gwt_sleep_ms(5);
	}
}

int gwt_wait_line(gwt_proc *p, const char *prefix, char *rest, size_t restlen,
                  int timeout_ms)
{
	uint64_t end = gwt_now_ms() + (uint64_t)timeout_ms;
	size_t pl = strlen(prefix);
	for (;;) {
		int gone = reap(p, WNOHANG);
		const char *out = gwt_stdout(p);
		for (const char *line = out; *line;) {
			const char *nl = strchr(line, '\n');
			if (!nl)
				break;                  /* only complete lines */
			if (!strncmp(line, prefix, pl)) {
				snprintf(rest, restlen, "%.*s", (int)(nl - line - (ptrdiff_t)pl), line + pl);
				return 0;
			}
			line = nl + 1;
		}
		if (gone || gwt_now_ms() >= end)
			return -1;
		gwt_sleep_ms(5);
	}
}

int gwt_wait_listening(gwt_proc *p, int timeout_ms)
{
	char rest[256];
	if (gwt_wait_line(p, "listening ", rest, sizeof rest, timeout_ms) < 0)
		return -1;
	const char *colon = strrchr(rest, ':');
	return colon ? atoi(colon + 1) : -1;
}

int gwt_signal(gwt_proc *p, int sig)
{
	if (reap(p, WNOHANG))
		return -1;
	return kill(-p->pid, sig);
}

int gwt_wait(gwt_proc *p, int timeout_ms)
{
	uint64_t end = gwt_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		if (reap(p, WNOHANG))
			return p->status;
		if (gwt_now_ms() >= end)
			return -1;
		gwt_sleep_ms(2);
	}
}

int gwt_running(gwt_proc *p)
{
	return !reap(p, WNOHANG);
}

int gwt_stop(gwt_proc *p, int sig, int timeout_ms)
{
	if (reap(p, WNOHANG))
		return p->status;
	kill(-p->pid, sig);
	int st = gwt_wait(p, timeout_ms);
	if (st >= 0)
		return st;
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	reap(p, 0);
	return -1;
}

int gwt_run(const char *name, const char *const argv[], const char *const env[],
            int timeout_ms, const char **out, const char **err)
{
	gwt_proc *p = gwt_spawn(name, argv, env);
	int st = gwt_wait(p, timeout_ms);
	if (st < 0)
		gwt_stop(p, SIGKILL, 1000);
	if (out)
		*out = own_strdup(gwt_stdout(p));
	if (err)
		*err = own_strdup(gwt_stderr(p));
	return st;
}

/* ----------------------------------------------------- gw programs */

/* the last lines of a text, for failure messages */
static const char *tail(const char *s, int lines)
{
	const char *p = s + strlen(s);
	while (p > s && lines >= 0) {
		p--;
		if (*p == '\n')
			lines--;
	}
	return p == s ? s : p + 1;
}

int gwt_compile_status(const char *gwr, const char *gwb, const char **err)
{
	const char *src = gwt_path(gwr);
	const char *dst;
	if (gwb) {
		dst = gwt_path(gwb);
	} else {
		const char *dot = strrchr(src, '.');
		dst = dot ? gwt_strf("%.*s.gwb", (int)(dot - src), src) : gwt_strf("%s.gwb", src);
	}
	const char *argv[] = { gwt_bin("gwc"), "compile", src, "-o", dst, NULL };
	return gwt_run("gwc", argv, NULL, 30000, NULL, err);
}

const char *gwt_compile(const char *gwr)
{
	const char *err = "";
	int st = gwt_compile_status(gwr, NULL, &err);
	ck_assert_msg(st == 0, "gwc compile %s: exit %d\n%s", gwt_path(gwr), st, tail(err, 20));
	const char *src = gwt_path(gwr);
	const char *dot = strrchr(src, '.');
	return dot ? gwt_strf("%.*s.gwb", (int)(dot - src), src) : gwt_strf("%s.gwb", src);
}

static const char *proc_name(const char *base, int slot)
{
	int n = ++g_nproc_named[slot];
	return n == 1 ? gwt_strf("%s", base) : gwt_strf("%s%d", base, n);
}

/* Is a socket listening on port one of p's own file descriptors? Only
 * that proves the port is gwd's: a port found free a moment before can be
 * taken by another test program in between, and then gwd exits with
 * "Address already in use" while the port answers (another program's
 * 404s: a CI failure that looked like a routing bug). /proc/net/tcp{,6}
 * gives the listening sockets' inodes, /proc/PID/fd the process's. */
static int proc_listens(pid_t pid, int port)
{
	unsigned long inodes[16];
	size_t ni = 0;
	static const char *const tabs[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	for (size_t t = 0; t < 2; t++) {
		FILE *f = fopen(tabs[t], "r");
		if (!f)
			continue;
		char line[512];
		while (fgets(line, sizeof line, f) && ni < 16) {
			char local[128];
			unsigned st;
			unsigned long ino;
			/* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(line, " %*s %127s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &ino) != 3)
				continue;
			const char *c = strrchr(local, ':');
			if (st == 0x0A && c && strtol(c + 1, NULL, 16) == port)
				inodes[ni++] = ino;
		}
		fclose(f);
	}
	if (!ni)
		return 0;
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));) {
		char path[320], link[64];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		unsigned long ino;
		if (sscanf(link, "socket:[%lu]", &ino) == 1)
			for (size_t i = 0; i < ni; i++)
				if (inodes[i] == ino)
					found = 1;
	}
	closedir(d);
	return found;
}

gwt_proc *gwt_gwd_args(const char *yaml, int port, const char *const extra[])
{
	gwt_init();
	const char *argv[32];
	size_t n = 0;
	argv[n++] = gwt_bin("gwd");
	argv[n++] = "-c";
	argv[n++] = gwt_path(yaml);
	for (size_t i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	gwt_proc *p = gwt_spawn(proc_name("gwd", 0), argv, NULL);
	uint64_t end = gwt_now_ms() + 10000;
	while (gwt_now_ms() < end) {
		if (!gwt_running(p))
			break;
		if (proc_listens(p->pid, port) && gwt_wait_port("127.0.0.1", port, 50) == 0)
			return p;
		gwt_sleep_ms(5);
	}
	int st = gwt_stop(p, SIGKILL, 1000);
	ck_abort_msg("gwd -c %s did not listen on 127.0.0.1:%d (status %d); stderr:\n%s",
	             gwt_path(yaml), port, st, tail(gwt_stderr(p), 30));
	return NULL;
}

gwt_proc *gwt_gwd(const char *yaml, int port)
{
	return gwt_gwd_args(yaml, port, NULL);
}

origin *gwt_origin(const char *name)
{
	gwt_init();
	char err[256];
	origin *o = origin_start(name, "127.0.0.1", 0, 1, err, sizeof err);
	ck_assert_msg(o != NULL, "origin_start: %s", err);
	vec_push(&g_origins, o);
	return o;
}

void gwt_forget_origin(origin *o)
{
	for (size_t i = 0; i < g_origins.n; i++)
		if (g_origins.v[i] == o) {
			g_origins.v[i] = g_origins.v[--g_origins.n];
			return;
		}
}

gwt_proc *gwt_origin_proc(const char *name, int *port)
{
	gwt_init();
	const char *argv[] = { gwt_bin("gw-origin"), "--listen", "127.0.0.1:0", "--name", name, NULL };
	gwt_proc *p = gwt_spawn(proc_name("gw-origin", 1), argv, NULL);
	int pt = gwt_wait_listening(p, 10000);
	ck_assert_msg(pt > 0, "gw-origin did not start; stderr:\n%s", tail(gwt_stderr(p), 20));
	*port = pt;
	return p;
}

/* --------------------------------------------------------- network */

int gwt_free_port(void)
{
	/* below the usual ephemeral range (32768-60999), above the well-known
	 * ports; random so parallel test programs rarely meet */
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid() ^ (unsigned)gwt_now_ms();
	for (int tries = 0; tries < 200; tries++) {
		int port = 20000 + (int)(rand_r(&seed) % 12000);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
			close(fd);
			continue;
		}
		/* The port stays reserved until this test program ends: the
		 * socket stays bound (never listening) with SO_REUSEADDR, so gwd,
		 * libmicrohttpd and redis-server (which set SO_REUSEADDR) can
		 * still bind and listen on it, while another test program's bind
		 * here (without it) fails and moves on. Closing it at once let a
		 * parallel test take the port before gwd did (CI failed so). */
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		return port;
	}
	ck_abort_msg("no free port found");
	return -1;
}

static int connect_once(const char *host, int port, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		sl = sizeof *a4;
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		sl = sizeof *a6;
	} else {
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		if (errno != EINPROGRESS) {
			close(fd);
			return -1;
		}
		struct pollfd pfd = { fd, POLLOUT, 0 };
		int e = 0;
		socklen_t el = sizeof e;
		if (poll(&pfd, 1, timeout_ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
			close(fd);
			return -1;
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

int gwt_wait_port(const char *host, int port, int timeout_ms)
{
	uint64_t end = gwt_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int fd = connect_once(host, port, 200);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (gwt_now_ms() >= end)
			return -1;
		gwt_sleep_ms(10);
	}
}

const char *gwt_url(int port, const char *path)
{
	return gwt_strf("http://127.0.0.1:%d%s", port, path);
}

/* ------------------------------------------------ HTTP (libcurl) */

static void curl_once(void)
{
	gwt_init();
	if (!g_curl_init) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		g_curl_init = 1;
	}
}

gwt_client *gwt_client_new(void)
{
	curl_once();
	gwt_client *c = calloc(1, sizeof *c);
	ck_assert_msg(c != NULL, "out of memory");
	c->easy = curl_easy_init();
	ck_assert_msg(c->easy != NULL, "curl_easy_init failed");
	vec_push(&g_clients, c);
	return c;
}

typedef struct xfer {
	const gwt_req *req;
	gwt_resp *resp;
	uint64_t sent;
	size_t bodycap;
	EVP_MD_CTX *sha;
	vec names, values;
} xfer;

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	const gwt_req *q = x->req;
	uint64_t total = q->body ? q->body_len : q->gen_len;
	size_t n = size * nmemb;
	if (total - x->sent < n)
		n = (size_t)(total - x->sent);
	if (q->body)
		memcpy(buf, (const char *)q->body + x->sent, n);
	else
		origin_pattern_fill(buf, x->sent, n);
	x->sent += n;
	return n;
}

static void clear_headers(xfer *x)
{
	for (size_t i = 0; i < x->names.n; i++) {
		free(x->names.v[i]);
		free(x->values.v[i]);
	}
	x->names.n = x->values.n = 0;
}

static size_t on_header(char *buf, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t n = size * nmemb;
	size_t len = n;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		clear_headers(x);               /* a new response (after 100 Continue) */
		return n;
	}
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return n;
	const char *v = colon + 1;
	while (v < buf + len && (*v == ' ' || *v == '\t'))
		v++;
	size_t vl = (size_t)(buf + len - v);
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	vec_push(&x->names, strndup(buf, (size_t)(colon - buf)));
	vec_push(&x->values, strndup(v, vl));
	return n;
}

static size_t on_write(char *buf, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t n = size * nmemb;
	gwt_resp *r = x->resp;
	EVP_DigestUpdate(x->sha, buf, n);
	if (!x->req->hash_only) {
		if (r->body_len + n + 1 > x->bodycap) {
			size_t cap = x->bodycap ? x->bodycap : 4096;
			while (cap < r->body_len + n + 1)
				cap *= 2;
			char *b = realloc(r->body, cap);
			if (!b)
				return 0;
			r->body = b;
			x->bodycap = cap;
		}
		memcpy(r->body + r->body_len, buf, n);
		r->body[r->body_len + n] = '\0';
	}
	r->body_len += n;
	return n;
}

static void hex(const unsigned char *md, unsigned len, char *out)
{
	for (unsigned i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[2 * len] = '\0';
}

gwt_resp *gwt_http(const gwt_req *q)
{
	curl_once();
	gwt_resp *r = own(calloc(1, sizeof *r));
	xfer x = { .req = q, .resp = r };
	x.sha = EVP_MD_CTX_new();
	ck_assert_msg(x.sha && EVP_DigestInit_ex(x.sha, EVP_sha256(), NULL), "EVP init failed");
	CURL *e = q->client ? q->client->easy : curl_easy_init();
	ck_assert_msg(e != NULL, "curl_easy_init failed");
	if (q->client)
		curl_easy_reset(e);             /* keeps its connection cache */
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hl = NULL;
	int has_expect = 0;
	for (size_t i = 0; q->headers && q->headers[i]; i++) {
		hl = curl_slist_append(hl, q->headers[i]);
		if (!strncasecmp(q->headers[i], "Expect:", 7))
			has_expect = 1;
	}
	int body = q->body != NULL || q->gen_len > 0 || q->has_body;
	const char *method = q->method ? q->method : body ? "POST" : "GET";
	curl_easy_setopt(e, CURLOPT_URL, q->url);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(q->timeout_ms ? q->timeout_ms : 10000));
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(q->connect_timeout_ms ? q->connect_timeout_ms : 3000));
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
	if (q->http10)
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_0);
	else
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (q->max_recv_speed)
		curl_easy_setopt(e, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)q->max_recv_speed);
	if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (body) {
		uint64_t total = q->body ? q->body_len : q->gen_len;
		/* UPLOAD streams from on_read; the method string is ours */
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, &x);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		if (q->chunked)
			hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
		else
			curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)total);
		if (!has_expect)
			hl = curl_slist_append(hl, "Expect:");   /* no 1 s wait for 100 */
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	if (hl)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);

	r->curl_code = (int)curl_easy_perform(e);
	if (r->curl_code)
		snprintf(r->error, sizeof r->error, "%s", errbuf[0] ? errbuf
		         : curl_easy_strerror((CURLcode)r->curl_code));
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->num_connects);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &r->time_total);
	curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME, &r->time_starttransfer);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	if (!q->client)
		curl_easy_cleanup(e);
	curl_slist_free_all(hl);

	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_DigestFinal_ex(x.sha, md, &mdlen);
	EVP_MD_CTX_free(x.sha);
	hex(md, mdlen, r->sha256);
	if (r->body)
		own(r->body);
	else if (!q->hash_only)
		r->body = own_strdup("");
	r->nhdr = x.names.n;
	r->hname = own(calloc(x.names.n + 1, sizeof *r->hname));
	r->hvalue = own(calloc(x.names.n + 1, sizeof *r->hvalue));
	for (size_t i = 0; i < x.names.n; i++) {
		r->hname[i] = own(x.names.v[i]);
		r->hvalue[i] = own(x.values.v[i]);
	}
	free(x.names.v);
	free(x.values.v);
	return r;
}

gwt_resp *gwt_get(const char *url)
{
	gwt_req q = { .url = url };
	return gwt_http(&q);
}

const char *gwt_hdr_nth(const gwt_resp *r, const char *name, size_t i)
{
	for (size_t k = 0; k < r->nhdr; k++)
		if (!strcasecmp(r->hname[k], name) && i-- == 0)
			return r->hvalue[k];
	return NULL;
}

const char *gwt_hdr(const gwt_resp *r, const char *name)
{
	return gwt_hdr_nth(r, name, 0);
}

size_t gwt_hdr_count(const gwt_resp *r, const char *name)
{
	size_t n = 0;
	for (size_t k = 0; k < r->nhdr; k++)
		n += !strcasecmp(r->hname[k], name);
	return n;
}

json_t *gwt_json(const gwt_resp *r)
{
	json_error_t je;
	ck_assert_msg(r->body != NULL, "no body kept (hash_only?)");
	json_t *j = json_loadb(r->body, r->body_len, 0, &je);
	ck_assert_msg(j != NULL, "body is not JSON (%s at %d:%d): %.200s", je.text, je.line,
	              je.column, r->body);
	gwt_init();
	vec_push(&g_json, j);
	return j;
}

const char *gwt_echo_hdr(const gwt_resp *r, const char *name)
{
	json_t *list = json_object_get(gwt_json(r), "header_list");
	ck_assert_msg(json_is_array(list), "not an /echo response: %.200s", r->body);
	const char *joined = NULL;
	size_t i;
	json_t *pair;
	json_array_foreach(list, i, pair) {
		const char *n = json_string_value(json_array_get(pair, 0));
		const char *v = json_string_value(json_array_get(pair, 1));
		if (!n || !v || strcasecmp(n, name))
			continue;
		joined = joined ? gwt_strf("%s, %s", joined, v) : gwt_strf("%s", v);
	}
	return joined;
}

const char *gwt_echo_str(const gwt_resp *r, const char *key)
{
	json_t *v = json_object_get(gwt_json(r), key);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		return gwt_strf("%lld", (long long)json_integer_value(v));
	return NULL;
}

/* ------------------------------------------------------ raw sockets */

int gwt_connect(const char *host, int port, int timeout_ms)
{
	gwt_init();
	int fd = connect_once(host, port, timeout_ms);
	if (fd >= 0)
		vec_push(&g_fds, (void *)(intptr_t)fd);
	return fd;
}

int gwt_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int gwt_sendf(int fd, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	int rc = gwt_send(fd, s, (size_t)n);
	free(s);
	return rc;
}

/* append what arrives within the deadline; 1 read something, 0 EOF,
 * -1 timeout or error */
static int recv_some(int fd, char **buf, size_t *len, size_t *cap, uint64_t end)
{
	uint64_t now = gwt_now_ms();
	if (now >= end)
		return -1;
	struct pollfd pfd = { fd, POLLIN, 0 };
	int pr = poll(&pfd, 1, (int)(end - now));
	if (pr <= 0)
		return -1;
	if (*len + 65536 + 1 > *cap) {
		size_t c = *cap ? *cap * 2 : 65536 * 2;
		while (c < *len + 65536 + 1)
			c *= 2;
		char *b = realloc(*buf, c);
		if (!b)
			return -1;
		*buf = b;
		*cap = c;
		b[*len] = '\0';
	}
	ssize_t n = recv(fd, *buf + *len, 65536, 0);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	if (n == 0)
		return 0;
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return 1;
}

const char *gwt_recv_all(int fd, int timeout_ms, size_t *len, int *eof)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;
	uint64_t end = gwt_now_ms() + (uint64_t)timeout_ms;
	int r;
	while ((r = recv_some(fd, &buf, &n, &cap, end)) == 1)
		;
	if (eof)
		*eof = r == 0;
	if (len)
		*len = n;
	if (!buf)
		return own_strdup("");
	return own(buf);
}

/* How many bytes of buf[0..n) make up one complete response: 0 = need
 * more, (size_t)-1 = malformed, (size_t)-2 = body runs until EOF. */
static size_t response_len(const char *buf, size_t n, int head)
{
	const char *eoh = memmem(buf, n, "\r\n\r\n", 4);
	if (!eoh)
		return 0;
	size_t hl = (size_t)(eoh - buf) + 4;
	int status = gwt_raw_status(buf);
	if (status < 0)
		return (size_t)-1;
	if (head || status < 200 || status == 204 || status == 304)
		return hl;
	char *headtext = strndup(buf, hl);
	const char *te = gwt_raw_hdr(headtext, "Transfer-Encoding");
	const char *cl = gwt_raw_hdr(headtext, "Content-Length");
	free(headtext);
	if (te && strcasestr(te, "chunked")) {
		size_t pos = hl;
		for (;;) {
			const char *crlf = memmem(buf + pos, n - pos, "\r\n", 2);
			if (!crlf)
				return 0;
			char *end;
			unsigned long long sz = strtoull(buf + pos, &end, 16);
			if (end == buf + pos)
				return (size_t)-1;
			pos = (size_t)(crlf - buf) + 2;
			if (sz == 0) {
				/* trailers, then an empty line */
				for (;;) {
					const char *l = memmem(buf + pos, n - pos, "\r\n", 2);
					if (!l)
						return 0;
					size_t ll = (size_t)(l - (buf + pos));
					pos += ll + 2;
					if (ll == 0)
						return pos;
				}
			}
			if (n - pos < sz + 2)
				return 0;
			pos += sz + 2;
		}
	}
	if (cl) {
		unsigned long long c = strtoull(cl, NULL, 10);
		return n - hl >= c ? hl + c : 0;
	}
	return (size_t)-2;
}

const char *gwt_recv_response(int fd, int head_request, int timeout_ms, size_t *len)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;
	uint64_t end = gwt_now_ms() + (uint64_t)timeout_ms;
	/* read byte-exact: a second pipelined response must stay in the socket,
	 * so peek first and consume only what belongs to this one */
	for (;;) {
		uint64_t now = gwt_now_ms();
		if (now >= end)
			break;
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			break;
		if (n + 65536 + 1 > cap) {
			cap = cap ? cap * 2 : 65536 * 2;
			char *b = realloc(buf, cap);
			if (!b)
				break;
			buf = b;
		}
		ssize_t got = recv(fd, buf + n, 65536, MSG_PEEK);
		if (got <= 0) {
			size_t rl = buf ? response_len(buf, n, head_request) : 0;
			if (rl == (size_t)-2) {         /* body until EOF: this is it */
				if (len)
					*len = n;
				return own(buf);
			}
			break;
		}
		size_t total = n + (size_t)got;
		buf[total] = '\0';
		size_t rl = response_len(buf, total, head_request);
		size_t take = (size_t)got;
		if (rl != 0 && rl != (size_t)-1 && rl != (size_t)-2)
			take = rl - n;
		ssize_t r = recv(fd, buf + n, take, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (rl == (size_t)-1)
			break;
		if (rl != 0 && rl != (size_t)-2 && n >= rl) {
			if (len)
				*len = n;
			return own(buf);
		}
	}
	free(buf);
	return NULL;
}

const char *gwt_raw(int port, const char *request, int timeout_ms)
{
	int fd = gwt_connect("127.0.0.1", port, 2000);
	ck_assert_msg(fd >= 0, "cannot connect to 127.0.0.1:%d", port);
	gwt_send(fd, request, strlen(request));
	return gwt_recv_all(fd, timeout_ms, NULL, NULL);
}

int gwt_raw_status(const char *resp)
{
	if (!resp || strncmp(resp, "HTTP/", 5))
		return -1;
	const char *sp = strchr(resp, ' ');
	if (!sp || sp[1] < '1' || sp[1] > '9' || sp[2] < '0' || sp[2] > '9' || sp[3] < '0' ||
	    sp[3] > '9')
		return -1;
	return (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

const char *gwt_raw_hdr(const char *resp, const char *name)
{
	size_t nl = strlen(name);
	const char *line = strstr(resp, "\r\n");
	while (line) {
		line += 2;
		if (!strncmp(line, "\r\n", 2) || !*line)
			return NULL;
		const char *eol = strstr(line, "\r\n");
		if (!eol)
			eol = line + strlen(line);
		if (!strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = (size_t)(eol - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			char *s = strndup(v, vl);
			return s ? own(s) : NULL;
		}
		line = *eol ? eol : NULL;
	}
	return NULL;
}

const char *gwt_raw_body(const char *resp)
{
	const char *p = resp ? strstr(resp, "\r\n\r\n") : NULL;
	return p ? p + 4 : NULL;
}

/* ------------------------------------------------------------ misc */

void gwt_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex(md, mdlen, out);
}

void gwt_pattern_sha256(uint64_t len, char out[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char buf[65536];
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	for (uint64_t off = 0; off < len;) {
		size_t n = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
		origin_pattern_fill(buf, off, n);
		EVP_DigestUpdate(c, buf, n);
		off += n;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	hex(md, mdlen, out);
}

#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_lvl = LOG_INFO;
/* The fd lines go to. For a file it stays the same number for the life of
 * the process: log_reopen() dup2()s the new file onto it, so a writer in
 * another thread never sees a closed or reused descriptor. */
static int log_fd = 2;
static char *log_path;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_open(const char *path, int level)
{
	log_set_level(level);
	if (!path || !strcmp(path, "-"))
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	char *p = strdup(path);
	if (!p) {
		close(fd);
		return -1;
	}
	free(log_path);
	log_path = p;
	if (log_fd != 2) {
		dup2(fd, log_fd);
		close(fd);
	} else {
		log_fd = fd;
	}
	return 0;
}

void log_set_level(int level)
{
	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	atomic_store_explicit(&log_lvl, level, memory_order_relaxed);
}

int log_level(void)
{
	return atomic_load_explicit(&log_lvl, memory_order_relaxed);
}

int log_reopen(void)
{
	if (!log_path)
		return 0;
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_err("cannot reopen log %s: %s", log_path, strerror(errno));
		return -1;
	}
	dup2(fd, log_fd);
	close(fd);
	return 0;
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > log_level())
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ gwd[%ld] %s: ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, (long)getpid(),
	                 level_names[level < 0 ? 0 : level > 3 ? 3 : level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;   /* truncated: keep the newline */
	line[len++] = '\n';
	ssize_t w = write(log_fd, line, len);
	(void)w;    /* nowhere to report a failing log */
}

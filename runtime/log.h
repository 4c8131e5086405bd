/*
 * log.h — gwd's error log: one line per event, levels, reopen on SIGUSR1.
 * Lines are formatted on the caller's stack and written with one write(2),
 * so lines from different threads never interleave and no lock is taken.
 */
#ifndef GWD_LOG_H
#define GWD_LOG_H

enum { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* path NULL or "-" = stderr. 0 ok, -1 (errno) if the file cannot be opened */
int log_open(const char *path, int level);
void log_set_level(int level);
int log_level(void);
/* reopen the file (log rotation); a no-op for stderr. 0 ok, -1 keeps the old */
int log_reopen(void);
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif /* GWD_LOG_H */

/*
 * config.h — gateway.yaml (interfaces.md), parsed with libyaml. Unknown keys
 * and bad values are errors reported as "FILE:LINE:COL: message".
 * Relative paths (rules, state_dir, token_file, log paths) are relative to
 * the directory of the config file.
 */
#ifndef GWD_CONFIG_H
#define GWD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum { CFG_LOG_JSON, CFG_LOG_COMBINED };

typedef struct cfg_listen {
	char *host;                /* "0.0.0.0", "::1", "localhost" */
	int port;
} cfg_listen;

typedef struct gwd_config {
	char *path;                /* the config file itself */
	cfg_listen *listen; size_t nlisten;  /* default 0.0.0.0:8080 */
	char *rules;               /* required; absolute after load */
	int threads;               /* 0 = auto (number of cores) */
	cfg_listen admin_listen;   /* default 127.0.0.1:9901; port 0 = off */
	char *admin_token_file;    /* NULL = none (then admin must be loopback) */
	char *state_dir;           /* NULL = none: admin changes not persisted */
	char *access_log_path;     /* NULL or "off" = off, "-" = stdout */
	int access_log_format;     /* CFG_LOG_* (default json) */
	char *error_log_path;      /* NULL = stderr */
	int log_level;             /* 0 error, 1 warn, 2 info (default), 3 debug */
	uint64_t max_header_size;  /* default 16k */
	uint64_t max_body_size;    /* default 10m; 0 = no limit */
	uint32_t client_timeout_ms;/* default 30s */
	uint32_t max_connections;  /* default 10000 */
	uint32_t drain_timeout_ms; /* graceful stop; default 10s (gw extension) */
	char *redis_url;           /* NULL = local only */
	uint32_t redis_timeout_ms; /* default 5ms */
	/* tls: (gw extension; runtime/tls.c). TLS is on when tls_listen is
	 * non-empty; then cert and key are set. When `tls:` has a listen and
	 * the top-level `listen` is absent, gwd listens on TLS only. Paths are
	 * absolute after load; the files are read by tls.c (gwd -t checks
	 * that each key matches its certificate). */
	cfg_listen *tls_listen; size_t ntls_listen;
	char *tls_cert, *tls_key;  /* the default certificate (no SNI match) */
	struct cfg_tls_cert { char *cert, *key; } *tls_certs; size_t ntls_certs;
	int tls_min_version;       /* 12 (default) or 13: TLS 1.2 / 1.3 */
	char *tls_client_ca;       /* NULL = client certificates not asked for */
	/* metrics: {enabled: false} (gw extension; metrics.h): requests are not
	 * counted and GET /metrics answers 404; the access log is unaffected.
	 * Read at start. Default 1. */
	int metrics_enabled;
	/* cache: {max_size: 64m} (gw extension; plugins/cache.c): the byte
	 * cap of the response cache, shared by every route. Read when the
	 * first table is loaded (the store outlives reloads). Default 64 MiB. */
	uint64_t cache_max_size;
} gwd_config;

/* 0 ok; -1 with err = "FILE:LINE:COL: message" */
int config_load(const char *path, gwd_config *out, char *err, size_t errlen);
void config_free(gwd_config *c);
/* 1 if host is a loopback address or "localhost" */
int config_is_loopback(const char *host);

/* The value parsers behind config_load, for other readers of the same
 * notations (gw-origin --listen, the admin API). 0 ok, -1 bad. */
/* "host:port", "[v6]:port", ":port", "*:port" or "port" (host 0.0.0.0);
 * port 0..65535; out->host is malloc'd, without brackets */
int config_parse_listen(const char *s, cfg_listen *out, char *err, size_t errlen);
/* "1048576", "16k", "10m", "1g" (also kb/mb/gb; any case), in bytes */
int config_parse_size(const char *s, uint64_t *out);
/* "500ms", "30s", "5m", "1h"; a bare number is seconds (as nginx) */
int config_parse_duration_ms(const char *s, uint32_t *out);

#endif /* GWD_CONFIG_H */

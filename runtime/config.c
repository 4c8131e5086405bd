/*
 * config.c — gateway.yaml, parsed with libyaml's document API (which keeps
 * a start mark, i.e. line and column, on every node, so every error can
 * point at the exact key or value that caused it).
 *
 * The schema is a set of small key tables, one per mapping; each key has a
 * handler that validates its value and stores it. Unknown keys, duplicate
 * keys, wrong node kinds and bad values are all errors: a typo in a gateway
 * config must stop `gwd -t`, not be ignored.
 *
 * Keys of interfaces.md plus three gw extensions:
 *   drain_timeout: 10s        graceful stop: how long in-flight requests may
 *                             finish after TERM/INT
 *   error_log.path: FILE      "-" or "stderr" = stderr (the default)
 *   error_log.level: info     error | warn | info | debug
 *   redis.timeout: 5ms        per-command timeout of the optional Redis
 *   metrics.enabled: true     false: no request counting, no GET /metrics
 *   cache.max_size: 64m       byte cap of the response cache
 * and `admin.listen: off` to disable the admin API, and the `tls:` section
 * (listen, cert, key, certificates: [{cert, key}], min_version, client_ca;
 * see config.h and runtime/tls.c).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's (below) */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"

/* Limits of the values we accept. A user can hit them, so they are errors
 * with a message, never asserts. */
#define CFG_MAX_FILE          (1u << 20)     /* a config is small; refuse a 1 MB one */
#define CFG_MAX_THREADS       1024
#define CFG_MIN_HEADER_SIZE   1024ull
#define CFG_MAX_HEADER_SIZE   (1024ull * 1024)
#define CFG_MAX_CONNECTIONS   1000000u
#define CFG_MIN_CACHE_SIZE    (64ull * 1024)  /* 16 shards of 4 KiB */
#define CFG_MAX_CACHE_SIZE    (1ull << 40)

typedef struct cfg_ctx {
	const char *file;           /* as the caller named it, for messages */
	char *dir;                  /* absolute directory of the file */
	yaml_document_t *doc;
	gwd_config *c;
	char *err; size_t errlen;
	yaml_node_t *admin_listen;  /* for the loopback check after admin */
	int have_listen;            /* the top-level `listen` was given */
	yaml_node_t *tls;           /* the `tls:` node, for checks after the walk */
	struct cfg_tls_cert *pair;  /* the tls.certificates entry being read */
} cfg_ctx;

typedef int (*cfg_handler)(cfg_ctx *x, yaml_node_t *v);
typedef struct cfg_key { const char *name; cfg_handler fn; } cfg_key;

/* ---------------------------------------------------------------- errors */

static int cfg_error_at(cfg_ctx *x, yaml_mark_t m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cfg_error_at(cfg_ctx *x, yaml_mark_t m, const char *fmt, ...)
{
	int n = snprintf(x->err, x->errlen, "%s:%zu:%zu: ", x->file,
	                 m.line + 1, m.column + 1);
	if (n >= 0 && (size_t)n < x->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

#define cfg_error(x, node, ...) cfg_error_at((x), (node)->start_mark, __VA_ARGS__)

/* Levenshtein distance, for "did you mean". Keys are short (< 32). */
static size_t cfg_lev(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[64];
	if (la >= 63 || lb >= 63)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			/* case-insensitive: "URL" is a typo of "url" */
			size_t cost = tolower((unsigned char)a[i - 1]) ==
			              tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = diag + cost;
			if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
			if (up + 1 < best) best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const char *cfg_suggest(const char *word, const cfg_key *keys)
{
	const char *best = NULL;
	size_t bestd = (size_t)-1;
	/* a plausible typo: at most a third of the word, at least one edit */
	size_t limit = strlen(word) / 3 > 0 ? strlen(word) / 3 : 1;
	for (const cfg_key *k = keys; k->name; k++) {
		size_t d = cfg_lev(word, k->name);
		if (d < bestd) { bestd = d; best = k->name; }
	}
	return bestd <= limit ? best : NULL;
}

/* ----------------------------------------------------------- node access */

static int cfg_is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *s = (const char *)n->data.scalar.value;
	return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") ||
	       !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* A scalar value for key `what`; NUL bytes inside ("\0" escapes) refused. */
static int cfg_scalar(cfg_ctx *x, yaml_node_t *n, const char *what, const char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return cfg_error(x, n, "%s: expected a single value, not a %s", what,
		                 n->type == YAML_MAPPING_NODE ? "mapping" : "list");
	if (cfg_is_null(n))
		return cfg_error(x, n, "%s: missing value", what);
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return cfg_error(x, n, "%s: value contains a NUL byte", what);
	*out = (const char *)n->data.scalar.value;
	return 0;
}

static int cfg_strdup(cfg_ctx *x, yaml_node_t *n, const char *s, char **dst)
{
	char *p = strdup(s);
	if (!p)
		return cfg_error(x, n, "out of memory");
	free(*dst);
	*dst = p;
	return 0;
}

/* A path relative to the config file's directory becomes absolute. */
static int cfg_path(cfg_ctx *x, yaml_node_t *n, const char *what, char **dst)
{
	const char *s;
	if (cfg_scalar(x, n, what, &s) < 0)
		return -1;
	if (s[0] == '/')
		return cfg_strdup(x, n, s, dst);
	size_t len = strlen(x->dir) + 1 + strlen(s) + 1;
	char *p = malloc(len);
	if (!p)
		return cfg_error(x, n, "out of memory");
	snprintf(p, len, "%s/%s", x->dir, s);
	free(*dst);
	*dst = p;
	return 0;
}

/* Walk a mapping against a key table: unknown and duplicate keys are errors.
 * A null value (`admin:` with nothing under it) counts as an empty mapping. */
static int cfg_mapping(cfg_ctx *x, yaml_node_t *m, const cfg_key *keys, const char *section)
{
	if (cfg_is_null(m))
		return 0;
	if (m->type != YAML_MAPPING_NODE)
		return cfg_error(x, m, "%s%sexpected a mapping (key: value lines)",
		                 section ? section : "", section ? ": " : "");
	uint64_t seen = 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		if (k->type != YAML_SCALAR_NODE)
			return cfg_error(x, k, "keys must be plain names");
		const char *name = (const char *)k->data.scalar.value;
		size_t i;
		for (i = 0; keys[i].name && strcmp(keys[i].name, name); i++)
			;
		if (!keys[i].name) {
			const char *sug = cfg_suggest(name, keys);
			char where[64] = "";
			if (section)
				snprintf(where, sizeof where, " in %s", section);
			if (sug)
				return cfg_error(x, k, "unknown key '%s'%s (did you mean '%s'?)", name, where, sug);
			return cfg_error(x, k, "unknown key '%s'%s", name, where);
		}
		if (seen & (1ull << i))
			return cfg_error(x, k, "duplicate key '%s%s%s'", section ? section : "",
			                 section ? "." : "", name);
		seen |= 1ull << i;
		if (keys[i].fn(x, v) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------ value parsers */

static int cfg_digits(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* decimal digits only (no sign, no spaces), <= max */
static int cfg_parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	if (!cfg_digits(s, n))
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
	size_t n = strlen(s), digits = 0;
	while (digits < n && isdigit((unsigned char)s[digits]))
		digits++;
	uint64_t mult = 1;
	const char *suf = s + digits;
	if (!*suf) mult = 1;
	else if (!strcasecmp(suf, "k") || !strcasecmp(suf, "kb")) mult = 1ull << 10;
	else if (!strcasecmp(suf, "m") || !strcasecmp(suf, "mb")) mult = 1ull << 20;
	else if (!strcasecmp(suf, "g") || !strcasecmp(suf, "gb")) mult = 1ull << 30;
	else return -1;
	uint64_t v;
	if (cfg_parse_uint(s, digits, UINT64_MAX / mult, &v) < 0)
		return -1;
	*out = v * mult;
	return 0;
}

int config_parse_duration_ms(const char *s, uint32_t *out)
{
	size_t n = strlen(s), digits = 0;
	while (digits < n && isdigit((unsigned char)s[digits]))
		digits++;
	const char *suf = s + digits;
	uint64_t mult;
	if (!*suf || !strcmp(suf, "s")) mult = 1000;    /* bare number: seconds, as nginx */
	else if (!strcmp(suf, "ms")) mult = 1;
	else if (!strcmp(suf, "m")) mult = 60 * 1000;
	else if (!strcmp(suf, "h")) mult = 3600 * 1000;
	else return -1;
	uint64_t v;
	if (cfg_parse_uint(s, digits, UINT32_MAX / mult, &v) < 0)
		return -1;
	*out = (uint32_t)(v * mult);
	return 0;
}

static int cfg_host_ok(const char *h, size_t n, int v6)
{
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];
		if (isalnum(ch) || ch == '.' || ch == '-' || ch == '_')
			continue;
		if (v6 && (ch == ':' || ch == '%'))
			continue;
		return 0;
	}
	return 1;
}

int config_parse_listen(const char *s, cfg_listen *out, char *err, size_t errlen)
{
	const char *host = "0.0.0.0";
	size_t hlen = strlen(host);
	const char *port;
	if (cfg_digits(s, strlen(s))) {                 /* "8080" */
		port = s;
	} else if (s[0] == '[') {                       /* "[::1]:8080" */
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "expected [IPv6]:PORT, e.g. [::1]:8080");
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		if (!cfg_host_ok(host, hlen, 1)) {
			snprintf(err, errlen, "bad IPv6 address '%.*s'", (int)hlen, host);
			return -1;
		}
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon) {
			snprintf(err, errlen, "expected HOST:PORT, :PORT or PORT");
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			snprintf(err, errlen, "an IPv6 address needs brackets, e.g. [::1]:8080");
			return -1;
		}
		if (colon != s) {                           /* ":8080" keeps the default host */
			host = s;
			hlen = (size_t)(colon - s);
			if (hlen == 1 && host[0] == '*') {  /* nginx's "*:80" */
				host = "0.0.0.0";
				hlen = 7;
			} else if (!cfg_host_ok(host, hlen, 0)) {
				snprintf(err, errlen, "bad host '%.*s'", (int)hlen, host);
				return -1;
			}
		}
		port = colon + 1;
	}
	uint64_t p;
	if (cfg_parse_uint(port, strlen(port), 65535, &p) < 0) {
		snprintf(err, errlen, "bad port '%s' (expected 0-65535)", port);
		return -1;
	}
	char *h = strndup(host, hlen);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	out->host = h;
	out->port = (int)p;
	return 0;
}

int config_is_loopback(const char *host)
{
	if (!host)
		return 0;
	if (!strcasecmp(host, "localhost"))
		return 1;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(&a6))
			return a6.s6_addr[12] == 127;
	}
	return 0;
}

/* ------------------------------------------------------------ handlers */

static int cfg_listen_one(cfg_ctx *x, yaml_node_t *n, const char *what, cfg_listen *out)
{
	const char *s;
	char e[128];
	if (cfg_scalar(x, n, what, &s) < 0)
		return -1;
	if (config_parse_listen(s, out, e, sizeof e) < 0)
		return cfg_error(x, n, "%s '%s': %s", what, s, e);
	return 0;
}

static void cfg_free_listen(gwd_config *c)
{
	for (size_t i = 0; i < c->nlisten; i++)
		free(c->listen[i].host);
	free(c->listen);
	c->listen = NULL;
	c->nlisten = 0;
}

static int h_listen(cfg_ctx *x, yaml_node_t *v)
{
	gwd_config *c = x->c;
	x->have_listen = 1;
	yaml_node_t *one[1] = { v };
	yaml_node_t **items = one;
	size_t n = 1;
	yaml_node_t **seq = NULL;
	if (v->type == YAML_SEQUENCE_NODE) {
		n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		if (n == 0)
			return cfg_error(x, v, "listen: the list is empty (give at least one address)");
		seq = calloc(n, sizeof *seq);
		if (!seq)
			return cfg_error(x, v, "out of memory");
		for (size_t i = 0; i < n; i++)
			seq[i] = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
		items = seq;
	}
	cfg_free_listen(c);
	c->listen = calloc(n, sizeof *c->listen);
	if (!c->listen) {
		free(seq);
		return cfg_error(x, v, "out of memory");
	}
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		cfg_listen l;
		if (cfg_listen_one(x, items[i], "listen", &l) < 0) {
			rc = -1;
			break;
		}
		if (l.port == 0) {
			free(l.host);
			rc = cfg_error(x, items[i], "listen: port 0 is not allowed");
			break;
		}
		for (size_t j = 0; j < c->nlisten; j++)
			if (c->listen[j].port == l.port && !strcmp(c->listen[j].host, l.host)) {
				rc = cfg_error(x, items[i], "listen: duplicate address %s:%d", l.host, l.port);
				break;
			}
		if (rc < 0) {
			free(l.host);
			break;
		}
		c->listen[c->nlisten++] = l;
	}
	free(seq);
	return rc;
}

static int h_rules(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_path(x, v, "rules", &x->c->rules);
}

static int h_threads(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	uint64_t n;
	if (cfg_scalar(x, v, "threads", &s) < 0)
		return -1;
	if (!strcmp(s, "auto")) {
		x->c->threads = 0;
		return 0;
	}
	if (cfg_parse_uint(s, strlen(s), CFG_MAX_THREADS, &n) < 0 || n == 0)
		return cfg_error(x, v, "threads: expected 'auto' or a number from 1 to %d, not '%s'",
		                 CFG_MAX_THREADS, s);
	x->c->threads = (int)n;
	return 0;
}

static int h_admin_listen(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	if (cfg_scalar(x, v, "admin.listen", &s) < 0)
		return -1;
	free(x->c->admin_listen.host);
	x->c->admin_listen.host = NULL;
	if (!strcmp(s, "off")) {
		x->c->admin_listen.host = strdup("127.0.0.1");
		x->c->admin_listen.port = 0;
		if (!x->c->admin_listen.host)
			return cfg_error(x, v, "out of memory");
		return 0;
	}
	if (cfg_listen_one(x, v, "admin.listen", &x->c->admin_listen) < 0)
		return -1;
	if (x->c->admin_listen.port == 0)
		return cfg_error(x, v, "admin.listen: port 0 is not allowed (use 'off' to disable the admin API)");
	x->admin_listen = v;
	return 0;
}

static int h_admin_token_file(cfg_ctx *x, yaml_node_t *v)
{
	if (cfg_path(x, v, "admin.token_file", &x->c->admin_token_file) < 0)
		return -1;
	/* the admin API reads it at start; say now if it cannot */
	if (access(x->c->admin_token_file, R_OK) < 0)
		return cfg_error(x, v, "admin.token_file %s: %s", x->c->admin_token_file,
		                 strerror(errno));
	return 0;
}

static const cfg_key admin_keys[] = {
	{ "listen", h_admin_listen },
	{ "token_file", h_admin_token_file },
	{ NULL, NULL }
};

static int h_admin(cfg_ctx *x, yaml_node_t *v)
{
	if (cfg_mapping(x, v, admin_keys, "admin") < 0)
		return -1;
	cfg_listen *a = &x->c->admin_listen;
	if (x->admin_listen && a->port != 0 && !config_is_loopback(a->host) &&
	    !x->c->admin_token_file) {
		int v6 = strchr(a->host, ':') != NULL;
		return cfg_error(x, x->admin_listen,
		                 "admin.listen %s%s%s:%d is not loopback: set admin.token_file",
		                 v6 ? "[" : "", a->host, v6 ? "]" : "", a->port);
	}
	return 0;
}

static int h_state_dir(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_path(x, v, "state_dir", &x->c->state_dir);
}

static int h_access_log_path(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	if (cfg_scalar(x, v, "access_log.path", &s) < 0)
		return -1;
	if (!strcmp(s, "off")) {
		free(x->c->access_log_path);
		x->c->access_log_path = NULL;
		return 0;
	}
	if (!strcmp(s, "-"))
		return cfg_strdup(x, v, "-", &x->c->access_log_path);
	return cfg_path(x, v, "access_log.path", &x->c->access_log_path);
}

static int h_access_log_format(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	if (cfg_scalar(x, v, "access_log.format", &s) < 0)
		return -1;
	if (!strcmp(s, "json"))
		x->c->access_log_format = CFG_LOG_JSON;
	else if (!strcmp(s, "combined"))
		x->c->access_log_format = CFG_LOG_COMBINED;
	else
		return cfg_error(x, v, "access_log.format: expected json or combined, not '%s'", s);
	return 0;
}

static const cfg_key access_log_keys[] = {
	{ "path", h_access_log_path },
	{ "format", h_access_log_format },
	{ NULL, NULL }
};

static int h_access_log(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_mapping(x, v, access_log_keys, "access_log");
}

static int h_error_log_path(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	if (cfg_scalar(x, v, "error_log.path", &s) < 0)
		return -1;
	if (!strcmp(s, "-") || !strcmp(s, "stderr")) {
		free(x->c->error_log_path);
		x->c->error_log_path = NULL;
		return 0;
	}
	return cfg_path(x, v, "error_log.path", &x->c->error_log_path);
}

static int h_error_log_level(cfg_ctx *x, yaml_node_t *v)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	const char *s;
	if (cfg_scalar(x, v, "error_log.level", &s) < 0)
		return -1;
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			x->c->log_level = i;
			return 0;
		}
	if (!strcmp(s, "warning")) {
		x->c->log_level = 1;
		return 0;
	}
	return cfg_error(x, v, "error_log.level: expected error, warn, info or debug, not '%s'", s);
}

static const cfg_key error_log_keys[] = {
	{ "path", h_error_log_path },
	{ "level", h_error_log_level },
	{ NULL, NULL }
};

static int h_error_log(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_mapping(x, v, error_log_keys, "error_log");
}

static int cfg_size(cfg_ctx *x, yaml_node_t *v, const char *what, uint64_t min, uint64_t max,
                    uint64_t *out)
{
	const char *s;
	uint64_t n;
	if (cfg_scalar(x, v, what, &s) < 0)
		return -1;
	if (config_parse_size(s, &n) < 0)
		return cfg_error(x, v, "%s: bad size '%s' (expected a byte count or e.g. 16k, 10m, 1g)",
		                 what, s);
	if (n < min || n > max)
		return cfg_error(x, v, "%s: %s is out of range (%llu to %llu bytes)", what, s,
		                 (unsigned long long)min, (unsigned long long)max);
	*out = n;
	return 0;
}

static int cfg_duration(cfg_ctx *x, yaml_node_t *v, const char *what, uint32_t min,
                        uint32_t *out)
{
	const char *s;
	uint32_t ms;
	if (cfg_scalar(x, v, what, &s) < 0)
		return -1;
	if (config_parse_duration_ms(s, &ms) < 0)
		return cfg_error(x, v, "%s: bad duration '%s' (expected e.g. 500ms, 30s, 5m, 1h)",
		                 what, s);
	if (ms < min)
		return cfg_error(x, v, "%s: must be at least %ums", what, min);
	*out = ms;
	return 0;
}

static int h_max_header_size(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_size(x, v, "limits.max_header_size", CFG_MIN_HEADER_SIZE, CFG_MAX_HEADER_SIZE,
	                &x->c->max_header_size);
}

static int h_max_body_size(cfg_ctx *x, yaml_node_t *v)
{
	/* 0 = no limit, as nginx's client_max_body_size 0 */
	return cfg_size(x, v, "limits.max_body_size", 0, UINT64_MAX, &x->c->max_body_size);
}

static int h_client_timeout(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_duration(x, v, "limits.client_timeout", 1, &x->c->client_timeout_ms);
}

static int h_max_connections(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	uint64_t n;
	if (cfg_scalar(x, v, "limits.max_connections", &s) < 0)
		return -1;
	if (cfg_parse_uint(s, strlen(s), CFG_MAX_CONNECTIONS, &n) < 0 || n == 0)
		return cfg_error(x, v, "limits.max_connections: expected a number from 1 to %u, not '%s'",
		                 CFG_MAX_CONNECTIONS, s);
	x->c->max_connections = (uint32_t)n;
	return 0;
}

static const cfg_key limits_keys[] = {
	{ "max_header_size", h_max_header_size },
	{ "max_body_size", h_max_body_size },
	{ "client_timeout", h_client_timeout },
	{ "max_connections", h_max_connections },
	{ NULL, NULL }
};

static int h_limits(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_mapping(x, v, limits_keys, "limits");
}

static int h_redis_url(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	if (cfg_scalar(x, v, "redis.url", &s) < 0)
		return -1;
	if (strncmp(s, "redis://", 8) && strncmp(s, "unix://", 7))
		return cfg_error(x, v, "redis.url: expected redis://HOST[:PORT][/DB] or unix:///PATH, not '%s'", s);
	return cfg_strdup(x, v, s, &x->c->redis_url);
}

static int h_redis_timeout(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_duration(x, v, "redis.timeout", 1, &x->c->redis_timeout_ms);
}

static const cfg_key redis_keys[] = {
	{ "url", h_redis_url },
	{ "timeout", h_redis_timeout },
	{ NULL, NULL }
};

static int h_redis(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_mapping(x, v, redis_keys, "redis");
}

static int h_drain_timeout(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_duration(x, v, "drain_timeout", 0, &x->c->drain_timeout_ms);
}

/* YAML 1.1's booleans (what a user of other YAML tools expects), any case */
static int cfg_bool(cfg_ctx *x, yaml_node_t *v, const char *what, int *out)
{
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
	const char *s;
	if (cfg_scalar(x, v, what, &s) < 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return cfg_error(x, v, "%s: expected true or false, not '%s'", what, s);
}

static int h_metrics_enabled(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_bool(x, v, "metrics.enabled", &x->c->metrics_enabled);
}

static const cfg_key metrics_keys[] = {
	{ "enabled", h_metrics_enabled },
	{ NULL, NULL }
};

static int h_metrics(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_mapping(x, v, metrics_keys, "metrics");
}

static int h_cache_max_size(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_size(x, v, "cache.max_size", CFG_MIN_CACHE_SIZE, CFG_MAX_CACHE_SIZE,
	                &x->c->cache_max_size);
}

static const cfg_key cache_keys[] = {
	{ "max_size", h_cache_max_size },
	{ NULL, NULL }
};

static int h_cache(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_mapping(x, v, cache_keys, "cache");
}

/* ------------------------------------------------------------ tls: */

static int h_tls_listen(cfg_ctx *x, yaml_node_t *v)
{
	gwd_config *c = x->c;
	size_t n = v->type == YAML_SEQUENCE_NODE
	         ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start) : 1;
	if (n == 0)
		return cfg_error(x, v, "tls.listen: the list is empty (give at least one address)");
	c->tls_listen = calloc(n, sizeof *c->tls_listen);
	if (!c->tls_listen)
		return cfg_error(x, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = v->type == YAML_SEQUENCE_NODE
		                ? yaml_document_get_node(x->doc, v->data.sequence.items.start[i]) : v;
		cfg_listen l;
		if (cfg_listen_one(x, it, "tls.listen", &l) < 0)
			return -1;
		int dup = 0;
		for (size_t j = 0; j < c->ntls_listen; j++)
			dup |= c->tls_listen[j].port == l.port && !strcmp(c->tls_listen[j].host, l.host);
		if (l.port == 0 || dup) {
			if (l.port == 0)
				cfg_error(x, it, "tls.listen: port 0 is not allowed");
			else
				cfg_error(x, it, "tls.listen: duplicate address %s:%d", l.host, l.port);
			free(l.host);
			return -1;
		}
		c->tls_listen[c->ntls_listen++] = l;
	}
	return 0;
}

/* a certificate or key file: absolute path, readable now (tls.c reads and
 * checks its content) */
static int cfg_tls_file(cfg_ctx *x, yaml_node_t *v, const char *what, char **dst)
{
	if (cfg_path(x, v, what, dst) < 0)
		return -1;
	if (access(*dst, R_OK) < 0)
		return cfg_error(x, v, "%s %s: %s", what, *dst, strerror(errno));
	return 0;
}

static int h_tls_cert(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_tls_file(x, v, "tls.cert", &x->c->tls_cert);
}

static int h_tls_key(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_tls_file(x, v, "tls.key", &x->c->tls_key);
}

static int h_tls_client_ca(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_tls_file(x, v, "tls.client_ca", &x->c->tls_client_ca);
}

static int h_tls_min_version(cfg_ctx *x, yaml_node_t *v)
{
	const char *s;
	if (cfg_scalar(x, v, "tls.min_version", &s) < 0)
		return -1;
	const char *p = s;
	if (!strncasecmp(p, "tlsv", 4))
		p += 4;
	else if (!strncasecmp(p, "tls", 3))
		p += 3;
	if (!strcmp(p, "1.2"))
		x->c->tls_min_version = 12;
	else if (!strcmp(p, "1.3"))
		x->c->tls_min_version = 13;
	else if (!strcmp(p, "1") || !strcmp(p, "1.0") || !strcmp(p, "1.1"))
		return cfg_error(x, v, "tls.min_version: TLS 1.0 and 1.1 are not supported "
		                 "(use 1.2 or 1.3)");
	else
		return cfg_error(x, v, "tls.min_version: expected 1.2 or 1.3, not '%s'", s);
	return 0;
}

static int h_pair_cert(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_tls_file(x, v, "tls.certificates.cert", &x->pair->cert);
}

static int h_pair_key(cfg_ctx *x, yaml_node_t *v)
{
	return cfg_tls_file(x, v, "tls.certificates.key", &x->pair->key);
}

static const cfg_key tls_pair_keys[] = {
	{ "cert", h_pair_cert },
	{ "key", h_pair_key },
	{ NULL, NULL }
};

static int h_tls_certificates(cfg_ctx *x, yaml_node_t *v)
{
	gwd_config *c = x->c;
	if (v->type != YAML_SEQUENCE_NODE)
		return cfg_error(x, v, "tls.certificates: expected a list of {cert: FILE, key: FILE}");
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	c->tls_certs = calloc(n ? n : 1, sizeof *c->tls_certs);
	if (!c->tls_certs)
		return cfg_error(x, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
		if (it->type != YAML_MAPPING_NODE)
			return cfg_error(x, it, "tls.certificates: expected {cert: FILE, key: FILE}");
		x->pair = &c->tls_certs[c->ntls_certs++];
		int rc = cfg_mapping(x, it, tls_pair_keys, "tls.certificates");
		x->pair = NULL;
		if (rc < 0)
			return -1;
		if (!c->tls_certs[i].cert || !c->tls_certs[i].key)
			return cfg_error(x, it, "tls.certificates: each entry needs both cert and key");
	}
	return 0;
}

static const cfg_key tls_keys[] = {
	{ "listen", h_tls_listen },
	{ "cert", h_tls_cert },
	{ "key", h_tls_key },
	{ "certificates", h_tls_certificates },
	{ "min_version", h_tls_min_version },
	{ "client_ca", h_tls_client_ca },
	{ NULL, NULL }
};

static int h_tls(cfg_ctx *x, yaml_node_t *v)
{
	gwd_config *c = x->c;
	x->tls = v;
	if (cfg_mapping(x, v, tls_keys, "tls") < 0)
		return -1;
	if (!c->ntls_listen)
		return cfg_error(x, v, "tls: 'listen' is required (the address(es) to serve HTTPS on)");
	if (!c->tls_cert || !c->tls_key)
		return cfg_error(x, v, "tls: 'cert' and 'key' are required (the default certificate)");
	return 0;
}

/* after the walk: TLS-only when `listen` was not given; an address is
 * either plain or TLS */
static int cfg_tls_finish(cfg_ctx *x)
{
	gwd_config *c = x->c;
	if (!c->ntls_listen)
		return 0;
	if (!x->have_listen)
		cfg_free_listen(c);
	for (size_t i = 0; i < c->ntls_listen; i++)
		for (size_t j = 0; j < c->nlisten; j++)
			if (c->tls_listen[i].port == c->listen[j].port &&
			    !strcmp(c->tls_listen[i].host, c->listen[j].host))
				return cfg_error(x, x->tls, "tls.listen %s:%d is also in listen",
				                 c->listen[j].host, c->listen[j].port);
	return 0;
}

static const cfg_key top_keys[] = {
	{ "listen", h_listen },
	{ "rules", h_rules },
	{ "threads", h_threads },
	{ "admin", h_admin },
	{ "state_dir", h_state_dir },
	{ "access_log", h_access_log },
	{ "error_log", h_error_log },
	{ "limits", h_limits },
	{ "redis", h_redis },
	{ "drain_timeout", h_drain_timeout },
	{ "tls", h_tls },
	{ "metrics", h_metrics },
	{ "cache", h_cache },
	{ NULL, NULL }
};

/* ---------------------------------------------------------------- load */

static int cfg_defaults(gwd_config *c)
{
	memset(c, 0, sizeof *c);
	c->listen = calloc(1, sizeof *c->listen);
	c->admin_listen.host = strdup("127.0.0.1");
	if (!c->listen || !c->admin_listen.host)
		return -1;
	c->listen[0].host = strdup("0.0.0.0");
	if (!c->listen[0].host)
		return -1;
	c->listen[0].port = 8080;
	c->nlisten = 1;
	c->threads = 0;
	c->admin_listen.port = 9901;
	c->access_log_format = CFG_LOG_JSON;
	c->log_level = 2;
	c->max_header_size = 16 * 1024;
	c->max_body_size = 10 * 1024 * 1024;
	c->client_timeout_ms = 30 * 1000;
	c->max_connections = 10000;
	c->drain_timeout_ms = 10 * 1000;
	c->redis_timeout_ms = 5;
	c->tls_min_version = 12;
	c->metrics_enabled = 1;
	c->cache_max_size = (uint64_t)64 << 20;
	return 0;
}

/* The absolute directory of path, without resolving the file itself (a
 * symlinked gateway.yaml keeps relative paths next to the link). */
static char *cfg_absdir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return NULL;
	char *slash = strrchr(copy, '/');
	const char *dir = ".";
	if (slash == copy)
		dir = "/";
	else if (slash) {
		*slash = '\0';
		dir = copy;
	}
	char *abs = realpath(dir, NULL);
	free(copy);
	return abs;
}

static char *cfg_abspath(const char *dir, const char *path)
{
	if (path[0] == '/')
		return strdup(path);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t len = strlen(dir) + 1 + strlen(base) + 1;
	char *p = malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", dir, base);
	return p;
}

static char *cfg_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(CFG_MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	size_t n = fread(buf, 1, CFG_MAX_FILE + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s: read error", path);
		free(buf);
		return NULL;
	}
	if (n > CFG_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %u bytes; is this a configuration file?",
		         path, CFG_MAX_FILE);
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int cfg_yaml_error(cfg_ctx *x, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";
	if (p->context)
		return cfg_error_at(x, p->problem_mark, "YAML syntax error: %s %s", problem, p->context);
	return cfg_error_at(x, p->problem_mark, "YAML syntax error: %s", problem);
}

void config_free(gwd_config *c)
{
	if (!c)
		return;
	cfg_free_listen(c);
	free(c->path);
	free(c->rules);
	free(c->admin_listen.host);
	free(c->admin_token_file);
	free(c->state_dir);
	free(c->access_log_path);
	free(c->error_log_path);
	free(c->redis_url);
	for (size_t i = 0; i < c->ntls_listen; i++)
		free(c->tls_listen[i].host);
	free(c->tls_listen);
	free(c->tls_cert);
	free(c->tls_key);
	for (size_t i = 0; i < c->ntls_certs; i++) {
		free(c->tls_certs[i].cert);
		free(c->tls_certs[i].key);
	}
	free(c->tls_certs);
	free(c->tls_client_ca);
	memset(c, 0, sizeof *c);
}

int config_load(const char *path, gwd_config *out, char *err, size_t errlen)
{
	gwd_config c;
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int have_parser = 0, have_doc = 0, rc = -1;
	size_t len = 0;
	char *text = NULL;
	cfg_ctx x = { .file = path, .doc = &doc, .c = &c, .err = err, .errlen = errlen };

	memset(out, 0, sizeof *out);
	if (errlen)
		err[0] = '\0';
	if (cfg_defaults(&c) < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if (!(text = cfg_read_file(path, &len, err, errlen)))
		goto out;
	if (!(x.dir = cfg_absdir(path))) {
		snprintf(err, errlen, "%s: cannot resolve its directory: %s", path, strerror(errno));
		goto out;
	}
	if (!(c.path = cfg_abspath(x.dir, path))) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	have_parser = 1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		cfg_yaml_error(&x, &parser);
		goto out;
	}
	have_doc = 1;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		snprintf(err, errlen, "%s:1:1: the configuration is empty (the key 'rules' is required)", path);
		goto out;
	}
	/* a second document would be silently ignored: refuse it */
	if (!yaml_parser_load(&parser, &extra)) {
		cfg_yaml_error(&x, &parser);
		goto out;
	}
	yaml_node_t *second = yaml_document_get_root_node(&extra);
	if (second) {
		cfg_error(&x, second, "only one YAML document is allowed");
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	if (root->type != YAML_MAPPING_NODE) {
		cfg_error(&x, root, "expected a mapping of settings (listen:, rules:, ...) at the top level");
		goto out;
	}
	if (cfg_mapping(&x, root, top_keys, NULL) < 0 || cfg_tls_finish(&x) < 0)
		goto out;
	if (!c.rules) {
		cfg_error(&x, root, "missing required key 'rules' (the compiled table, e.g. rules: rules.gwb)");
		goto out;
	}
	rc = 0;
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	free(text);
	free(x.dir);
	if (rc == 0)
		*out = c;
	else
		config_free(&c);
	return rc;
}

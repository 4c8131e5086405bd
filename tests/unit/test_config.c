/*
 * test_config.c — gateway.yaml: defaults, every key, list vs string for
 * listen, relative paths, the metrics/cache switches, and every error
 * with its exact FILE:LINE:COL.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/config.h"

static char tmp[256];      /* realpath'd per-test directory */

static void setup(void)
{
	char t[] = "/tmp/gw-test-config-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(t));
	char *r = realpath(t, NULL);   /* /tmp may be a symlink */
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_lt(strlen(r), 200);
	snprintf(tmp, sizeof tmp, "%s", r);
	free(r);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void teardown(void)
{
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp/name with content; returns the path (static buffer per slot) */
static const char *put(const char *name, const char *text)
{
	static char paths[4][1024];
	static int slot;
	char *p = paths[slot++ % 4];
	snprintf(p, 1024, "%s/%s", tmp, name);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	mkdir(p, 0755);                 /* one level of subdirectory is enough */
	*slash = '/';
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static char *join(const char *a, const char *b)
{
	static char buf[2][1024];
	static int slot;
	char *p = buf[slot++ % 2];
	snprintf(p, 1024, "%s/%s", a, b);
	return p;
}

/* ------------------------------------------------------------- defaults */

START_TEST(defaults)
{
	gwd_config c;
	char err[512];
	const char *p = put("gateway.yaml", "rules: rules.gwb\n");
	ck_assert_int_eq(config_load(p, &c, err, sizeof err), 0);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(c.path, p);
	ck_assert_str_eq(c.rules, join(tmp, "rules.gwb"));
	ck_assert_uint_eq(c.nlisten, 1);
	ck_assert_str_eq(c.listen[0].host, "0.0.0.0");
	ck_assert_int_eq(c.listen[0].port, 8080);
	ck_assert_int_eq(c.threads, 0);
	ck_assert_str_eq(c.admin_listen.host, "127.0.0.1");
	ck_assert_int_eq(c.admin_listen.port, 9901);
	ck_assert_ptr_null(c.admin_token_file);
	ck_assert_ptr_null(c.state_dir);
	ck_assert_ptr_null(c.access_log_path);
	ck_assert_int_eq(c.access_log_format, CFG_LOG_JSON);
	ck_assert_ptr_null(c.error_log_path);
	ck_assert_int_eq(c.log_level, 2);
	ck_assert_uint_eq(c.max_header_size, 16384);
	ck_assert_uint_eq(c.max_body_size, 10485760);
	ck_assert_uint_eq(c.client_timeout_ms, 30000);
	ck_assert_uint_eq(c.max_connections, 10000);
	ck_assert_uint_eq(c.drain_timeout_ms, 10000);
	ck_assert_ptr_null(c.redis_url);
	ck_assert_uint_eq(c.redis_timeout_ms, 5);
	ck_assert_int_eq(c.metrics_enabled, 1);
	ck_assert_uint_eq(c.cache_max_size, 67108864);
	config_free(&c);
	ck_assert_ptr_null(c.path);
	config_free(&c);                /* twice is harmless */
}
END_TEST

START_TEST(every_key)
{
	gwd_config c;
	char err[512];
	put("admin.token", "secret\n");
	const char *p = put("gateway.yaml",
		"# every key\n"
		"listen: [\"127.0.0.1:8081\", \"[::1]:8082\", \":8083\", 8084]\n"
		"rules: /etc/gw/rules.gwb\n"
		"threads: 3\n"
		"admin:\n"
		"  listen: 0.0.0.0:9999\n"
		"  token_file: admin.token\n"
		"state_dir: state\n"
		"access_log:\n"
		"  path: logs/access.log\n"
		"  format: combined\n"
		"error_log:\n"
		"  path: /var/log/gw/error.log\n"
		"  level: debug\n"
		"limits:\n"
		"  max_header_size: 32k\n"
		"  max_body_size: 1g\n"
		"  client_timeout: 500ms\n"
		"  max_connections: 20000\n"
		"redis:\n"
		"  url: redis://127.0.0.1:6379/2\n"
		"  timeout: 20ms\n"
		"drain_timeout: 2m\n"
		"metrics:\n"
		"  enabled: false\n"
		"cache:\n"
		"  max_size: 16m\n");
	ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(c.nlisten, 4);
	ck_assert_str_eq(c.listen[0].host, "127.0.0.1");
	ck_assert_int_eq(c.listen[0].port, 8081);
	ck_assert_str_eq(c.listen[1].host, "::1");
	ck_assert_int_eq(c.listen[1].port, 8082);
	ck_assert_str_eq(c.listen[2].host, "0.0.0.0");
	ck_assert_int_eq(c.listen[2].port, 8083);
	ck_assert_str_eq(c.listen[3].host, "0.0.0.0");
	ck_assert_int_eq(c.listen[3].port, 8084);
	ck_assert_str_eq(c.rules, "/etc/gw/rules.gwb");
	ck_assert_int_eq(c.threads, 3);
	ck_assert_str_eq(c.admin_listen.host, "0.0.0.0");
	ck_assert_int_eq(c.admin_listen.port, 9999);
	ck_assert_str_eq(c.admin_token_file, join(tmp, "admin.token"));
	ck_assert_str_eq(c.state_dir, join(tmp, "state"));
	ck_assert_str_eq(c.access_log_path, join(tmp, "logs/access.log"));
	ck_assert_int_eq(c.access_log_format, CFG_LOG_COMBINED);
	ck_assert_str_eq(c.error_log_path, "/var/log/gw/error.log");
	ck_assert_int_eq(c.log_level, 3);
	ck_assert_uint_eq(c.max_header_size, 32768);
	ck_assert_uint_eq(c.max_body_size, 1073741824ull);
	ck_assert_uint_eq(c.client_timeout_ms, 500);
	ck_assert_uint_eq(c.max_connections, 20000);
	ck_assert_str_eq(c.redis_url, "redis://127.0.0.1:6379/2");
	ck_assert_uint_eq(c.redis_timeout_ms, 20);
	ck_assert_uint_eq(c.drain_timeout_ms, 120000);
	ck_assert_int_eq(c.metrics_enabled, 0);
	ck_assert_uint_eq(c.cache_max_size, 16777216);
	config_free(&c);
}
END_TEST

/* one string, a one-element list and a block list give the same thing */
START_TEST(listen_string_or_list)
{
	static const char *const texts[] = {
		"listen: 127.0.0.1:9000\nrules: r.gwb\n",
		"listen: [127.0.0.1:9000]\nrules: r.gwb\n",
		"listen:\n  - 127.0.0.1:9000\nrules: r.gwb\n",
		"listen: \"127.0.0.1:9000\"\nrules: r.gwb\n",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		gwd_config c;
		char err[512];
		const char *p = put("g.yaml", texts[i]);
		ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%zu: %s", i, err);
		ck_assert_uint_eq(c.nlisten, 1);
		ck_assert_str_eq(c.listen[0].host, "127.0.0.1");
		ck_assert_int_eq(c.listen[0].port, 9000);
		config_free(&c);
	}
	gwd_config c;
	char err[512];
	const char *p = put("g.yaml", "listen:\n  - localhost:1\n  - '*:65535'\n  - 9001\nrules: r.gwb\n");
	ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(c.nlisten, 3);
	ck_assert_str_eq(c.listen[0].host, "localhost");
	ck_assert_int_eq(c.listen[0].port, 1);
	ck_assert_str_eq(c.listen[1].host, "0.0.0.0");
	ck_assert_int_eq(c.listen[1].port, 65535);
	ck_assert_str_eq(c.listen[2].host, "0.0.0.0");
	ck_assert_int_eq(c.listen[2].port, 9001);
	config_free(&c);
}
END_TEST

/* relative paths resolve against the directory of the config file, also
 * when the config file itself is named relative to the working directory */
START_TEST(relative_paths)
{
	gwd_config c;
	char err[512];
	put("etc/g.yaml",
	    "rules: ../tables/r.gwb\nstate_dir: ./state\n"
	    "access_log: {path: '-'}\nerror_log: {path: err.log}\n");
	ck_assert_int_eq(chdir(tmp), 0);
	ck_assert_msg(config_load("etc/g.yaml", &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c.path, join(tmp, "etc/g.yaml"));
	char want[PATH_MAX];
	snprintf(want, sizeof want, "%s/etc/../tables/r.gwb", tmp);
	ck_assert_str_eq(c.rules, want);
	snprintf(want, sizeof want, "%s/etc/./state", tmp);
	ck_assert_str_eq(c.state_dir, want);
	ck_assert_str_eq(c.access_log_path, "-");
	snprintf(want, sizeof want, "%s/etc/err.log", tmp);
	ck_assert_str_eq(c.error_log_path, want);
	config_free(&c);

	/* a bare file name: relative to the working directory */
	ck_assert_int_eq(chdir(join(tmp, "etc")), 0);
	ck_assert_msg(config_load("g.yaml", &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c.path, join(tmp, "etc/g.yaml"));
	snprintf(want, sizeof want, "%s/etc/../tables/r.gwb", tmp);
	ck_assert_str_eq(c.rules, want);
	config_free(&c);
}
END_TEST

START_TEST(special_values)
{
	gwd_config c;
	char err[512];
	const char *p = put("g.yaml",
		"rules: r.gwb\nthreads: auto\nadmin:\n  listen: 'off'\n"
		"access_log:\n  path: 'off'\nerror_log:\n  path: stderr\n  level: warning\n"
		"limits:\n  max_body_size: 0\n  max_header_size: 1024\n  client_timeout: 7\n"
		"drain_timeout: 0s\nredis:\n  url: unix:///run/redis.sock\n");
	ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(c.threads, 0);
	ck_assert_int_eq(c.admin_listen.port, 0);
	ck_assert_ptr_null(c.access_log_path);
	ck_assert_ptr_null(c.error_log_path);
	ck_assert_int_eq(c.log_level, 1);
	ck_assert_uint_eq(c.max_body_size, 0);
	ck_assert_uint_eq(c.max_header_size, 1024);
	ck_assert_uint_eq(c.client_timeout_ms, 7000);
	ck_assert_uint_eq(c.drain_timeout_ms, 0);
	ck_assert_str_eq(c.redis_url, "unix:///run/redis.sock");
	config_free(&c);

	/* empty sections keep their defaults; loopback admin needs no token */
	p = put("g.yaml", "rules: r.gwb\nadmin:\nlimits:\nredis:\nadmin_x: 1\n");
	ck_assert_int_eq(config_load(p, &c, err, sizeof err), -1);
	p = put("g.yaml", "rules: r.gwb\nadmin:\nlimits:\nredis:\n");
	ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(c.max_header_size, 16384);
	config_free(&c);
	p = put("g.yaml", "rules: r.gwb\nadmin: {listen: '[::1]:9000'}\n");
	ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c.admin_listen.host, "::1");
	config_free(&c);
	p = put("g.yaml", "rules: r.gwb\nadmin: {listen: 'localhost:9000'}\n");
	ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%s", err);
	config_free(&c);

	/* metrics.enabled takes YAML 1.1's booleans in any case; an empty
	 * metrics: or cache: keeps the defaults; sizes at both ends */
	static const struct { const char *yaml; int on; uint64_t cache; } sw[] = {
		{ "metrics: {enabled: off}\n", 0, 64ull << 20 },
		{ "metrics: {enabled: No}\n", 0, 64ull << 20 },
		{ "metrics: {enabled: 'FALSE'}\n", 0, 64ull << 20 },
		{ "metrics: {enabled: yes}\n", 1, 64ull << 20 },
		{ "metrics: {enabled: On}\n", 1, 64ull << 20 },
		{ "metrics: {enabled: True}\n", 1, 64ull << 20 },
		{ "metrics:\ncache:\n", 1, 64ull << 20 },
		{ "cache: {max_size: 64k}\n", 1, 65536 },
		{ "cache: {max_size: 1g}\n", 1, 1ull << 30 },
		{ "cache: {max_size: 1099511627776}\n", 1, 1ull << 40 },
	};
	for (size_t i = 0; i < sizeof sw / sizeof sw[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, "rules: r.gwb\n%s", sw[i].yaml);
		p = put("g.yaml", text);
		ck_assert_msg(config_load(p, &c, err, sizeof err) == 0, "%zu: %s", i, err);
		ck_assert_msg(c.metrics_enabled == sw[i].on, "%zu", i);
		ck_assert_msg(c.cache_max_size == sw[i].cache, "%zu: %llu", i,
		              (unsigned long long)c.cache_max_size);
		config_free(&c);
	}
}
END_TEST

/* ---------------------------------------------------------------- errors */

typedef struct bad_case { const char *yaml; const char *msg; } bad_case;

/* msg is what follows "PATH:" */
static const bad_case bad[] = {
	/* unknown keys, with and without a suggestion */
	{ "rules: r.gwb\nlistn: 8080\n", "2:1: unknown key 'listn' (did you mean 'listen'?)" },
	{ "rules: r.gwb\nfoo: 1\n", "2:1: unknown key 'foo'" },
	{ "rules: r.gwb\nlimits:\n  max_body_sise: 1m\n",
	  "3:3: unknown key 'max_body_sise' in limits (did you mean 'max_body_size'?)" },
	{ "rules: r.gwb\nadmin:\n  token: x\n", "3:3: unknown key 'token' in admin" },
	{ "rules: r.gwb\naccess_log: {formt: json}\n",
	  "2:14: unknown key 'formt' in access_log (did you mean 'format'?)" },
	{ "rules: r.gwb\nredis:\n  URL: redis://x\n", "3:3: unknown key 'URL' in redis (did you mean 'url'?)" },
	{ "rules: r.gwb\nerror_log:\n  lvl: info\n", "3:3: unknown key 'lvl' in error_log" },
	/* structure */
	{ "rules: r.gwb\nrules: s.gwb\n", "2:1: duplicate key 'rules'" },
	{ "rules: r.gwb\nlimits:\n  max_connections: 5\n  max_connections: 6\n",
	  "4:3: duplicate key 'limits.max_connections'" },
	{ "threads: 2\n", "1:1: missing required key 'rules' (the compiled table, e.g. rules: rules.gwb)" },
	{ "# nothing\n", "1:1: the configuration is empty (the key 'rules' is required)" },
	{ "- rules: r.gwb\n", "1:1: expected a mapping of settings (listen:, rules:, ...) at the top level" },
	{ "rules: r.gwb\n---\nrules: s.gwb\n", "3:1: only one YAML document is allowed" },
	{ "rules:\n", "1:7: rules: missing value" },
	{ "rules: [a, b]\n", "1:8: rules: expected a single value, not a list" },
	{ "rules: r.gwb\nlimits: 5\n", "2:9: limits: expected a mapping (key: value lines)" },
	{ "rules: r.gwb\n? [a]\n: 1\n", "2:3: keys must be plain names" },
	{ "rules: \"r\\0.gwb\"\n", "1:8: rules: value contains a NUL byte" },
	/* listen */
	{ "rules: r.gwb\nlisten: []\n", "2:9: listen: the list is empty (give at least one address)" },
	{ "rules: r.gwb\nlisten: [127.0.0.1:80, 'nope']\n", "2:24: listen 'nope': expected HOST:PORT, :PORT or PORT" },
	{ "rules: r.gwb\nlisten: 127.0.0.1:99999\n", "2:9: listen '127.0.0.1:99999': bad port '99999' (expected 0-65535)" },
	{ "rules: r.gwb\nlisten: '127.0.0.1:'\n", "2:9: listen '127.0.0.1:': bad port '' (expected 0-65535)" },
	{ "rules: r.gwb\nlisten: ::1:80\n", "2:9: listen '::1:80': an IPv6 address needs brackets, e.g. [::1]:8080" },
	{ "rules: r.gwb\nlisten: '[::1]'\n", "2:9: listen '[::1]': expected [IPv6]:PORT, e.g. [::1]:8080" },
	{ "rules: r.gwb\nlisten: 'a b:80'\n", "2:9: listen 'a b:80': bad host 'a b'" },
	{ "rules: r.gwb\nlisten: 0\n", "2:9: listen: port 0 is not allowed" },
	{ "rules: r.gwb\nlisten:\n  - 80\n  - 0.0.0.0:80\n", "4:5: listen: duplicate address 0.0.0.0:80" },
	{ "rules: r.gwb\nlisten: {a: 1}\n", "2:9: listen: expected a single value, not a mapping" },
	/* threads */
	{ "rules: r.gwb\nthreads: 0\n", "2:10: threads: expected 'auto' or a number from 1 to 1024, not '0'" },
	{ "rules: r.gwb\nthreads: many\n", "2:10: threads: expected 'auto' or a number from 1 to 1024, not 'many'" },
	{ "rules: r.gwb\nthreads: -2\n", "2:10: threads: expected 'auto' or a number from 1 to 1024, not '-2'" },
	{ "rules: r.gwb\nthreads: 1025\n", "2:10: threads: expected 'auto' or a number from 1 to 1024, not '1025'" },
	/* admin */
	{ "rules: r.gwb\nadmin:\n  listen: 0.0.0.0:9901\n",
	  "3:11: admin.listen 0.0.0.0:9901 is not loopback: set admin.token_file" },
	{ "rules: r.gwb\nadmin:\n  listen: '[::]:9901'\n",
	  "3:11: admin.listen [::]:9901 is not loopback: set admin.token_file" },
	{ "rules: r.gwb\nadmin:\n  listen: 10.1.2.3:1\n  token_file: missing.token\n",
	  "4:15: admin.token_file @TMP@/missing.token: No such file or directory" },
	{ "rules: r.gwb\nadmin:\n  listen: 127.0.0.1:0\n",
	  "3:11: admin.listen: port 0 is not allowed (use 'off' to disable the admin API)" },
	/* access_log / error_log */
	{ "rules: r.gwb\naccess_log:\n  format: xml\n", "3:11: access_log.format: expected json or combined, not 'xml'" },
	{ "rules: r.gwb\nerror_log:\n  level: loud\n",
	  "3:10: error_log.level: expected error, warn, info or debug, not 'loud'" },
	/* limits */
	{ "rules: r.gwb\nlimits:\n  max_header_size: 16q\n",
	  "3:20: limits.max_header_size: bad size '16q' (expected a byte count or e.g. 16k, 10m, 1g)" },
	{ "rules: r.gwb\nlimits:\n  max_header_size: 100\n",
	  "3:20: limits.max_header_size: 100 is out of range (1024 to 1048576 bytes)" },
	{ "rules: r.gwb\nlimits:\n  max_header_size: 2m\n",
	  "3:20: limits.max_header_size: 2m is out of range (1024 to 1048576 bytes)" },
	{ "rules: r.gwb\nlimits:\n  max_body_size: -1\n",
	  "3:18: limits.max_body_size: bad size '-1' (expected a byte count or e.g. 16k, 10m, 1g)" },
	{ "rules: r.gwb\nlimits:\n  max_body_size: 99999999999999999999\n",
	  "3:18: limits.max_body_size: bad size '99999999999999999999' (expected a byte count or e.g. 16k, 10m, 1g)" },
	{ "rules: r.gwb\nlimits:\n  max_body_size: 20000000000g\n",
	  "3:18: limits.max_body_size: bad size '20000000000g' (expected a byte count or e.g. 16k, 10m, 1g)" },
	{ "rules: r.gwb\nlimits:\n  client_timeout: 30 s\n",
	  "3:19: limits.client_timeout: bad duration '30 s' (expected e.g. 500ms, 30s, 5m, 1h)" },
	{ "rules: r.gwb\nlimits:\n  client_timeout: 0ms\n", "3:19: limits.client_timeout: must be at least 1ms" },
	{ "rules: r.gwb\nlimits:\n  client_timeout: 50d\n",
	  "3:19: limits.client_timeout: bad duration '50d' (expected e.g. 500ms, 30s, 5m, 1h)" },
	{ "rules: r.gwb\nlimits:\n  client_timeout: 5000000s\n",
	  "3:19: limits.client_timeout: bad duration '5000000s' (expected e.g. 500ms, 30s, 5m, 1h)" },
	{ "rules: r.gwb\nlimits:\n  max_connections: 0\n",
	  "3:20: limits.max_connections: expected a number from 1 to 1000000, not '0'" },
	{ "rules: r.gwb\nlimits:\n  max_connections: 1e4\n",
	  "3:20: limits.max_connections: expected a number from 1 to 1000000, not '1e4'" },
	/* redis, drain */
	{ "rules: r.gwb\nredis:\n  url: http://x\n",
	  "3:8: redis.url: expected redis://HOST[:PORT][/DB] or unix:///PATH, not 'http://x'" },
	{ "rules: r.gwb\nredis:\n  timeout: fast\n",
	  "3:12: redis.timeout: bad duration 'fast' (expected e.g. 500ms, 30s, 5m, 1h)" },
	{ "rules: r.gwb\ndrain_timeout: soon\n",
	  "2:16: drain_timeout: bad duration 'soon' (expected e.g. 500ms, 30s, 5m, 1h)" },
	/* metrics, cache */
	{ "rules: r.gwb\nmetrics: {enabled: 0}\n", "2:20: metrics.enabled: expected true or false, not '0'" },
	{ "rules: r.gwb\nmetrics: {enabled: [true]}\n",
	  "2:20: metrics.enabled: expected a single value, not a list" },
	{ "rules: r.gwb\nmetrics: {enable: true}\n",
	  "2:11: unknown key 'enable' in metrics (did you mean 'enabled'?)" },
	{ "rules: r.gwb\nmetrics: true\n", "2:10: metrics: expected a mapping (key: value lines)" },
	{ "rules: r.gwb\ncache:\n  max_size: 32k\n",
	  "3:13: cache.max_size: 32k is out of range (65536 to 1099511627776 bytes)" },
	{ "rules: r.gwb\ncache:\n  max_size: 2t\n",
	  "3:13: cache.max_size: bad size '2t' (expected a byte count or e.g. 16k, 10m, 1g)" },
	{ "rules: r.gwb\ncache:\n  max_size: 2048g\n",
	  "3:13: cache.max_size: 2048g is out of range (65536 to 1099511627776 bytes)" },
	{ "rules: r.gwb\ncache:\n  max-size: 1m\n",
	  "3:3: unknown key 'max-size' in cache (did you mean 'max_size'?)" },
	/* broken YAML: libyaml's problem and its mark */
	{ "rules: r.gwb\nlisten: [a, b\n",
	  "3:1: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence" },
	{ "rules: r.gwb\n  listen: 1\n",
	  "2:9: YAML syntax error: mapping values are not allowed in this context" },
	{ "rules: r.gwb\n\tlisten: 1\n",
	  "2:1: YAML syntax error: found a tab character that violates indentation while scanning a plain scalar" },
	{ "rules: r.gwb\nlisten: @x\n",
	  "2:9: YAML syntax error: found character that cannot start any token while scanning for the next token" },
	{ "rules: 'r.gwb\n",
	  "2:1: YAML syntax error: found unexpected end of stream while scanning a quoted scalar" },
	{ "rules: *nope\n", "1:8: YAML syntax error: found undefined alias" },
};

START_TEST(errors)
{
	const bad_case *b = &bad[_i];
	gwd_config c;
	char err[512], want[1024], msg[512];
	const char *p = put("bad.yaml", b->yaml);
	/* @TMP@ in a message stands for the test directory */
	const char *at = strstr(b->msg, "@TMP@");
	if (at)
		snprintf(msg, sizeof msg, "%.*s%s%s", (int)(at - b->msg), b->msg, tmp, at + 5);
	else
		snprintf(msg, sizeof msg, "%s", b->msg);
	snprintf(want, sizeof want, "%s:%s", p, msg);
	memset(&c, 0xAB, sizeof c);
	ck_assert_int_eq(config_load(p, &c, err, sizeof err), -1);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(c.rules);     /* left zeroed on error */
	ck_assert_ptr_null(c.listen);
}
END_TEST

START_TEST(missing_file)
{
	gwd_config c;
	char err[512], want[1024];
	const char *p = join(tmp, "nope.yaml");
	ck_assert_int_eq(config_load(p, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(small_error_buffer)
{
	gwd_config c;
	char err[8];
	const char *p = put("g.yaml", "foo: 1\n");
	ck_assert_int_eq(config_load(p, &c, err, sizeof err), -1);
	ck_assert_uint_eq(strlen(err), 7);   /* truncated, still terminated */
}
END_TEST

/* ------------------------------------------------------- value parsers */

START_TEST(parse_listen)
{
	cfg_listen l;
	char err[128];
	ck_assert_int_eq(config_parse_listen("[fe80::1%eth0]:443", &l, err, sizeof err), 0);
	ck_assert_str_eq(l.host, "fe80::1%eth0");
	ck_assert_int_eq(l.port, 443);
	free(l.host);
	ck_assert_int_eq(config_parse_listen(":0", &l, err, sizeof err), 0);
	ck_assert_str_eq(l.host, "0.0.0.0");
	ck_assert_int_eq(l.port, 0);
	free(l.host);
	ck_assert_int_eq(config_parse_listen("", &l, err, sizeof err), -1);
	ck_assert_str_eq(err, "expected HOST:PORT, :PORT or PORT");
	ck_assert_int_eq(config_parse_listen("h:+80", &l, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad port '+80' (expected 0-65535)");
	ck_assert_int_eq(config_parse_listen("[]:80", &l, err, sizeof err), -1);
	ck_assert_str_eq(err, "bad IPv6 address ''");
}
END_TEST

START_TEST(parse_size_duration)
{
	uint64_t n;
	uint32_t ms;
	ck_assert_int_eq(config_parse_size("0", &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(config_parse_size("16K", &n), 0);
	ck_assert_uint_eq(n, 16384);
	ck_assert_int_eq(config_parse_size("10mb", &n), 0);
	ck_assert_uint_eq(n, 10485760);
	ck_assert_int_eq(config_parse_size("2G", &n), 0);
	ck_assert_uint_eq(n, 2147483648ull);
	ck_assert_int_eq(config_parse_size("18446744073709551615", &n), 0);
	ck_assert_uint_eq(n, UINT64_MAX);
	ck_assert_int_eq(config_parse_size("18446744073709551616", &n), -1);
	ck_assert_int_eq(config_parse_size("k", &n), -1);
	ck_assert_int_eq(config_parse_size("", &n), -1);
	ck_assert_int_eq(config_parse_size("1.5m", &n), -1);
	ck_assert_int_eq(config_parse_size(" 1", &n), -1);
	ck_assert_int_eq(config_parse_duration_ms("250ms", &ms), 0);
	ck_assert_uint_eq(ms, 250);
	ck_assert_int_eq(config_parse_duration_ms("30s", &ms), 0);
	ck_assert_uint_eq(ms, 30000);
	ck_assert_int_eq(config_parse_duration_ms("5m", &ms), 0);
	ck_assert_uint_eq(ms, 300000);
	ck_assert_int_eq(config_parse_duration_ms("2h", &ms), 0);
	ck_assert_uint_eq(ms, 7200000);
	ck_assert_int_eq(config_parse_duration_ms("12", &ms), 0);
	ck_assert_uint_eq(ms, 12000);
	ck_assert_int_eq(config_parse_duration_ms("4294967295ms", &ms), 0);
	ck_assert_uint_eq(ms, 4294967295u);
	ck_assert_int_eq(config_parse_duration_ms("4294968s", &ms), -1);
	ck_assert_int_eq(config_parse_duration_ms("1S", &ms), -1);
	ck_assert_int_eq(config_parse_duration_ms("ms", &ms), -1);
}
END_TEST

START_TEST(loopback)
{
	ck_assert_int_eq(config_is_loopback("127.0.0.1"), 1);
	ck_assert_int_eq(config_is_loopback("127.255.0.9"), 1);
	ck_assert_int_eq(config_is_loopback("localhost"), 1);
	ck_assert_int_eq(config_is_loopback("LocalHost"), 1);
	ck_assert_int_eq(config_is_loopback("::1"), 1);
	ck_assert_int_eq(config_is_loopback("::ffff:127.0.0.1"), 1);
	ck_assert_int_eq(config_is_loopback("0.0.0.0"), 0);
	ck_assert_int_eq(config_is_loopback("::"), 0);
	ck_assert_int_eq(config_is_loopback("128.0.0.1"), 0);
	ck_assert_int_eq(config_is_loopback("10.0.0.1"), 0);
	ck_assert_int_eq(config_is_loopback("example.com"), 0);
	ck_assert_int_eq(config_is_loopback("localhost.example.com"), 0);
	ck_assert_int_eq(config_is_loopback(NULL), 0);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *t = tcase_create("load");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, defaults);
	tcase_add_test(t, every_key);
	tcase_add_test(t, listen_string_or_list);
	tcase_add_test(t, relative_paths);
	tcase_add_test(t, special_values);
	tcase_add_loop_test(t, errors, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_test(t, missing_file);
	tcase_add_test(t, small_error_buffer);
	suite_add_tcase(s, t);
	TCase *v = tcase_create("values");
	tcase_add_test(v, parse_listen);
	tcase_add_test(v, parse_size_duration);
	tcase_add_test(v, loopback);
	suite_add_tcase(s, v);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(config_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

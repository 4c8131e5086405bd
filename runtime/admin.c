/*
 * admin.c — the admin API's listener, authentication, dispatch, and the
 * endpoints that are not about upstream state (/status, /reload,
 * /api/routes). Contract and endpoint list: admin.h. Upstream state and
 * its persistence: admin_state.c; formats: admin_dyups.c, admin_json.c.
 *
 * One libmicrohttpd daemon with its own internal polling thread: admin
 * calls are rare and may block (fsync, a reload), so they must never run
 * on a worker's event loop. All handlers therefore run on that one thread,
 * one at a time; the state they change is shared with reloads (control
 * thread) and readers (workers) through admin_state.c's lock and the
 * upstream registry's snapshots.
 *
 * Answers: the dyups endpoints answer as dyups does (text/plain "success",
 * server lines, 204 for an empty list); errors everywhere are JSON
 * {"error": "..."} with 400 (malformed body: with its position), 401 (no or
 * wrong token), 404 (unknown upstream, server or endpoint), 405, 409
 * (refused: a bad table on /reload, removing an upstream's last server),
 * 413 (body over 1 MiB), 500 (a change could not be persisted).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin.h"
#include "admin_int.h"
#include "core.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "reqid.h"
#include "srv.h"

#define ADMIN_BODY_MAX   (1u << 20)
#define TOKEN_FILE_MAX   4096

typedef struct ext_route {
	char *method, *path;
	int prefix;
	admin_handler fn;
	void *ctx;
	int pub;                          /* GET/HEAD without the token */
} ext_route;

static struct MHD_Daemon *daemon_;
static cfg_listen listen_;            /* copy; port 0 = off */
static int have_token;
static unsigned char token_md[32];    /* sha256 of the token */
static ext_route *ext_routes; static size_t next_routes;
static uint64_t start_mono_ms;
static time_t start_wall;

/* per request */
typedef struct areq {
	char *body; size_t len, cap;
	int too_big;
	int denied;                       /* checked once, on the first call */
} areq;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --------------------------------------------------------------- auth */

static int sha256(const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 0;
	return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

static int load_token(const char *path, char *err, size_t errlen)
{
	char buf[TOKEN_FILE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "admin.token_file %s: %s", path, strerror(errno));
		return -1;
	}
	size_t n = 0;
	for (;;) {
		ssize_t k = read(fd, buf + n, sizeof buf - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "admin.token_file %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == sizeof buf) {
			snprintf(err, errlen, "admin.token_file %s: longer than %d bytes", path,
			         TOKEN_FILE_MAX);
			close(fd);
			return -1;
		}
	}
	close(fd);
	/* surrounding whitespace (the newline an editor adds) is not part of it */
	size_t b = 0, e = n;
	while (b < e && isspace((unsigned char)buf[b]))
		b++;
	while (e > b && isspace((unsigned char)buf[e - 1]))
		e--;
	if (b == e) {
		snprintf(err, errlen, "admin.token_file %s is empty", path);
		return -1;
	}
	for (size_t i = b; i < e; i++)
		if (buf[i] < 0x20 || buf[i] == 0x7f) {
			snprintf(err, errlen, "admin.token_file %s: the token must be one line "
			         "of printable characters", path);
			return -1;
		}
	int rc = sha256(buf + b, e - b, token_md);
	explicit_bzero(buf, sizeof buf);
	if (rc < 0) {
		snprintf(err, errlen, "admin.token_file %s: sha256 failed", path);
		return -1;
	}
	have_token = 1;
	return 0;
}

int admin_check_token(const char *path, char *err, size_t errlen)
{
	int rc = load_token(path, err, errlen);
	explicit_bzero(token_md, sizeof token_md);
	have_token = 0;
	return rc;
}

/* "Authorization: Bearer TOKEN". Both sides are hashed first, so the
 * comparison is of equal-length digests in constant time and leaks neither
 * the token's bytes nor its length. */
static int authorized(struct MHD_Connection *c)
{
	if (!have_token)
		return 1;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                            MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h)
		return 0;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return 0;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	size_t n = strlen(h);
	while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	unsigned char md[32];
	if (n == 0 || sha256(h, n, md) < 0)
		return 0;
	return CRYPTO_memcmp(md, token_md, sizeof md) == 0;
}

/* ------------------------------------------------------------- replies */

static void reply_text(admin_reply *out, int status, adm_buf *b)
{
	if (b->oom) {
		free(b->p);
		out->status = 500;
		out->ctype = "application/json";
		out->body = strdup("{\"error\":\"out of memory\"}");
		out->len = out->body ? strlen(out->body) : 0;
		return;
	}
	out->status = b->len ? status : (status == 200 ? 204 : status);
	out->ctype = "text/plain";
	out->body = b->p;
	out->len = b->len;
}

/* takes the reference j */
static void reply_json(admin_reply *out, int status, json_t *j)
{
	/* reals (seconds, ratios) with 9 significant digits: "2.007", not
	 * jansson's round-trip "2.0070000000000001" */
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
	json_decref(j);
	out->ctype = "application/json";
	if (!s) {
		out->status = 500;
		out->body = strdup("{\"error\":\"out of memory\"}");
	} else {
		out->status = status;
		out->body = s;
	}
	out->len = out->body ? strlen(out->body) : 0;
}

static void reply_error(admin_reply *out, int status, const char *msg)
{
	reply_json(out, status, json_pack("{s:s}", "error", msg));
}

/* ----------------------------------------------------------- upstreams */

static const char *balance_name(int b)
{
	switch (b) {
	case GWB_BAL_ROUND_ROBIN: return "round_robin";
	case GWB_BAL_LEAST_CONN:  return "least_conn";
	case GWB_BAL_IP_HASH:     return "ip_hash";
	case GWB_BAL_HASH:        return "hash";
	case GWB_BAL_RANDOM:      return "random";
	default:                  return NULL;
	}
}

static const char *server_state(const adm_view_server *w)
{
	if (!w->live)
		return "inactive";
	if (w->s.drain)
		return "drained";
	if (w->health_down)
		return "health_down";
	if (w->ejected)
		return "ejected";
	return "up";
}

/* "health" / "health_check" and "breaker" / "circuit_breaker" of a live
 * server: the state as a string (what the dashboard shows), the details in
 * an object named after the rules' block. 0 ok, -1 out of memory. */
static int server_checks_json(json_t *o, const adm_view_server *w)
{
	if (json_object_set_new(o, "health", json_string(health_state_name(w->health))) < 0)
		return -1;
	if (w->has_hinfo) {
		const health_info *h = &w->hinfo;
		if (json_object_set_new(o, "health_check",
		                        json_pack("{s:I, s:I, s:i, s:s}",
		                                  "checks", (json_int_t)h->checks,
		                                  "failures", (json_int_t)h->failures,
		                                  "last_status", h->last_status,
		                                  "last_error", h->last_error)) < 0)
			return -1;
	}
	if (w->has_breaker) {
		const brk_info *b = &w->brk;
		if (json_object_set_new(o, "breaker", json_string(brk_phase_name(b->phase))) < 0 ||
		    json_object_set_new(o, "circuit_breaker",
		                        json_pack("{s:I, s:I, s:I}",
		                                  "failures", (json_int_t)b->failures,
		                                  "opened", (json_int_t)b->opened,
		                                  "retry_in_ms", (json_int_t)b->retry_in_ms)) < 0)
			return -1;
	}
	return 0;
}

static json_t *view_json(const adm_view *v)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < v->n; i++) {
		const adm_view_server *w = &v->v[i];
		json_t *o = adm_server_json(&w->s);
		if (o && json_object_set_new(o, "state", json_string(server_state(w))) < 0) {
			json_decref(o);
			o = NULL;
		}
		if (o && w->live &&
		    (json_object_set_new(o, "active", json_integer(w->active)) < 0 ||
		     json_object_set_new(o, "requests", json_integer((json_int_t)w->requests)) < 0 ||
		     json_object_set_new(o, "failures", json_integer((json_int_t)w->failures)) < 0 ||
		     json_object_set_new(o, "fails", json_integer(w->fails)) < 0 ||
		     server_checks_json(o, w) < 0)) {
			json_decref(o);
			o = NULL;
		}
		if (json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	const char *bal = balance_name(v->balance);
	return json_pack("{s:s, s:b, s:b, s:b, s:o?, s:o}", "name", v->name,
	                 "active", v->in_table, "override", v->override,
	                 "dynamic", v->dynamic, "balance", bal ? json_string(bal) : NULL,
	                 "servers", arr);
}

static void cb_json_one(const adm_view *v, void *ctx)
{
	*(json_t **)ctx = view_json(v);
}

static void cb_json_all(const adm_view *v, void *ctx)
{
	json_t *arr = ctx;
	json_array_append_new(arr, view_json(v));
}

static void view_lines(const adm_view *v, adm_buf *b)
{
	for (size_t i = 0; i < v->n; i++) {
		const adm_view_server *w = &v->v[i];
		adm_dyups_line(b, &w->s, w->s.drain || (w->live && !w->available));
	}
}

static void cb_lines(const adm_view *v, void *ctx)
{
	view_lines(v, ctx);
}

static void cb_list(const adm_view *v, void *ctx)
{
	adm_buf_printf(ctx, "%s\n", v->name);
}

/* /detail: dyups' server lines, plus " health=STATE" for upstreams with
 * a health_check block and " breaker=STATE" for those with a
 * circuit_breaker block (plain upstreams keep dyups' exact lines) */
static void cb_detail(const adm_view *v, void *ctx)
{
	adm_buf *b = ctx;
	adm_buf_printf(b, "%s\n", v->name);
	for (size_t i = 0; i < v->n; i++) {
		const adm_view_server *w = &v->v[i];
		size_t at = b->len;
		adm_dyups_line(b, &w->s, w->s.drain || (w->live && !w->available));
		if (b->oom || b->len == at || b->p[b->len - 1] != '\n' ||
		    (w->health == HEALTH_NONE && !w->has_breaker))
			continue;
		b->len--;                          /* the line's '\n' */
		if (w->health != HEALTH_NONE)
			adm_buf_printf(b, " health=%s", health_state_name(w->health));
		if (w->has_breaker)
			adm_buf_printf(b, " breaker=%s", brk_phase_name(w->brk.phase));
		adm_buf_printf(b, "\n");
	}
	adm_buf_printf(b, "\n");
}

/* the upstream after a change, as GET /api/upstreams/NAME shows it */
static void reply_upstream(admin_reply *out, const char *name)
{
	json_t *j = NULL;
	if (adm_state_view(name, cb_json_one, &j) != 0) {
		/* dropped and not in the table */
		reply_json(out, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
		return;
	}
	reply_json(out, 200, j);
}

/* PUT /api/upstreams/NAME: {"servers": [...]} or [...] */
static void api_put_upstream(admin_reply *out, const char *name, const char *body, size_t len)
{
	json_error_t je;
	char err[512];
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		adm_json_error(&je, err, sizeof err);
		reply_error(out, 400, err);
		return;
	}
	json_t *arr = json_is_object(j) ? json_object_get(j, "servers") : j;
	if (json_is_object(j) && json_object_size(j) != (arr ? 1u : 0u)) {
		json_decref(j);
		reply_error(out, 400, "expected {\"servers\": [...]} or an array of servers");
		return;
	}
	adm_list l = { NULL, 0 };
	if (!arr || adm_list_from_json(arr, &l, err, sizeof err) < 0) {
		json_decref(j);
		reply_error(out, 400, arr ? err : "expected {\"servers\": [...]} or an array of servers");
		return;
	}
	json_decref(j);
	int rc = adm_state_set(name, &l, err, sizeof err);
	adm_list_free(&l);
	if (rc != 200)
		reply_error(out, rc, err);
	else
		reply_upstream(out, name);
}

/* PUT /api/upstreams/NAME/servers/ADDR: optional object body */
static void api_put_server(admin_reply *out, const char *name, const char *addr,
                           const char *body, size_t len)
{
	char err[512];
	json_t *j;
	json_error_t je;
	size_t k = 0;
	while (k < len && isspace((unsigned char)body[k]))
		k++;
	if (k == len) {
		j = json_object();
	} else if (!(j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je))) {
		adm_json_error(&je, err, sizeof err);
		reply_error(out, 400, err);
		return;
	}
	adm_server s;
	if (adm_server_from_json(j, addr, "server", &s, err, sizeof err) < 0) {
		json_decref(j);
		reply_error(out, 400, err);
		return;
	}
	json_decref(j);
	int rc = adm_state_server_put(name, &s, err, sizeof err);
	free(s.addr);
	if (rc != 200)
		reply_error(out, rc, err);
	else
		reply_upstream(out, name);
}

/* ------------------------------------------------------ other endpoints */

/* a route's counters (metrics.h, summed over the workers, kept by name
 * across reloads); null when metrics are off (metrics: {enabled: false}) */
static json_t *route_counters(const char *name)
{
	metrics_route_stats st;
	if (!metrics_enabled())
		return json_null();
	if (metrics_route_stats_get(name, &st) != 0)
		memset(&st, 0, sizeof st);          /* not registered: never counted */
	return json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:f}",
	                 "requests", (json_int_t)st.requests,
	                 "responses", "1xx", (json_int_t)st.by_class[0],
	                 "2xx", (json_int_t)st.by_class[1], "3xx", (json_int_t)st.by_class[2],
	                 "4xx", (json_int_t)st.by_class[3], "5xx", (json_int_t)st.by_class[4],
	                 "bytes_in", (json_int_t)st.bytes_in, "bytes_out", (json_int_t)st.bytes_out,
	                 "duration_sum_s", st.duration_sum_s);
}

static void api_routes(admin_reply *out)
{
	gw_tab *t = reload_acquire();
	if (!t) {
		reply_error(out, 503, "no table loaded");
		return;
	}
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < gwb_nroutes(t->t); i++) {
		const gwb_route *rt = gwb_route_at(t->t, i);
		const gwb_debug *d = gwb_debug_at(t->t, i);
		const char *name = gwb_str(t->t, rt->name, NULL);
		json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:I, s:o}", "index", (json_int_t)i,
		                      "name", name,
		                      "file", d ? gwb_str(t->t, d->file, NULL) : "",
		                      "line", (json_int_t)(d ? d->line : 0),
		                      "col", (json_int_t)(d ? d->col : 0),
		                      "counters", route_counters(name));
		if (json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	json_t *j = json_pack("{s:I, s:s, s:o}", "generation", (json_int_t)t->gen,
	                      "source_sha256", t->hash, "routes", arr);
	reload_release(t);
	reply_json(out, 200, j);
}

static void do_reload(admin_reply *out)
{
	char err[1024];
	if (reload_now(err, sizeof err) != 0) {
		reply_json(out, 409, json_pack("{s:s, s:I}", "error", err, "generation",
		                               (json_int_t)reload_generation()));
		return;
	}
	reload_info ri;
	reload_get_info(&ri);
	reply_json(out, 200, json_pack("{s:I, s:s, s:I, s:I}", "generation",
	                               (json_int_t)ri.generation, "source_sha256", ri.hash,
	                               "routes", (json_int_t)ri.routes,
	                               "upstreams", (json_int_t)ri.upstreams));
}

/* "reload_history": the last reload attempts, newest first (reload.h);
 * "uptime_ms": a monotonic clock, so the dashboard computes rates over the
 * time between two scrapes as the server saw it */
static int status_add_extra(json_t *j, const reload_info *ri)
{
	uint64_t up = mono_ms() - start_mono_ms;
	if (json_object_set_new(j, "uptime_ms", json_integer((json_int_t)up)) < 0)
		return -1;
	/* the design's own words for them ("table generation and source hash,
	 * uptime") at the top level too, for scripts written from it */
	if (json_object_set_new(j, "uptime", json_integer((json_int_t)(up / 1000))) < 0 ||
	    json_object_set_new(j, "generation", json_integer((json_int_t)ri->generation)) < 0 ||
	    json_object_set_new(j, "source_hash", json_string(ri->hash)) < 0)
		return -1;
	reload_event ev[RELOAD_HISTORY];
	size_t n = reload_history(ev, RELOAD_HISTORY);
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		json_t *o = json_pack("{s:I, s:I, s:s, s:b, s:s, s:s}",
		                      "time_ms", (json_int_t)ev[i].time_ms,
		                      "generation", (json_int_t)ev[i].generation,
		                      "source_sha256", ev[i].hash, "ok", ev[i].ok,
		                      "trigger", ev[i].why, "error", ev[i].error);
		if (json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return json_object_set_new(j, "reload_history", arr);
}

static void status(admin_reply *out)
{
	reload_info ri;
	srv_stats st;
	size_t novr, ninact;
	int persisted;
	const char *dir;
	reload_get_info(&ri);
	srv_get_stats(&st);
	adm_state_counts(&novr, &ninact, &persisted, &dir);
	json_t *ups = json_array();
	if (ups)
		adm_state_view_all(cb_json_all, ups);
	json_t *j = json_pack(
		"{s:s, s:i, s:I, s:I,"
		" s:{s:I, s:s, s:I, s:I, s:I, s:I},"
		" s:I, s:I, s:I, s:I, s:I, s:i,"
		" s:{s:s?, s:b, s:I, s:I},"
		" s:o}",
		"version", PACKAGE_VERSION, "pid", (int)getpid(),
		"started_at", (json_int_t)start_wall,
		"uptime_s", (json_int_t)((mono_ms() - start_mono_ms) / 1000),
		"table", "generation", (json_int_t)ri.generation, "source_sha256", ri.hash,
		"routes", (json_int_t)ri.routes, "upstreams", (json_int_t)ri.upstreams,
		"reloads_ok", (json_int_t)ri.reloads_ok, "reloads_failed", (json_int_t)ri.reloads_failed,
		"connections", (json_int_t)st.connections, "in_flight", (json_int_t)st.in_flight,
		"requests", (json_int_t)st.requests, "proxied", (json_int_t)st.proxied,
		"errors", (json_int_t)st.errors, "workers", srv_nworkers,
		"state", "dir", dir, "persisted", persisted, "overrides", (json_int_t)novr,
		"inactive", (json_int_t)ninact,
		"upstreams", ups);
	if (j && status_add_extra(j, &ri) < 0) {
		json_decref(j);
		j = NULL;
	}
	reply_json(out, 200, j);
}

/* ------------------------------------------------------------ dispatch */

static int method_is(const char *m, const char *want)
{
	return strcmp(m, want) == 0;
}

static void not_allowed(admin_reply *out, const char *allow)
{
	char msg[96];
	snprintf(msg, sizeof msg, "method not allowed (allowed: %s)", allow);
	reply_error(out, 405, msg);
}

/* NAME of "/prefix/NAME" (no further '/'), or NULL */
static const char *tail_name(const char *url, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(url, prefix, n) != 0 || !url[n] || strchr(url + n, '/'))
		return NULL;
	return url + n;
}

static void dyups_upstream(admin_reply *out, const char *m, const char *name,
                           const char *body, size_t len)
{
	char err[512];
	if (method_is(m, "GET")) {
		adm_buf b = { 0 };
		if (adm_state_view(name, cb_lines, &b) != 0) {
			free(b.p);
			snprintf(err, sizeof err, "no upstream '%s'", name);
			reply_error(out, 404, err);
			return;
		}
		reply_text(out, 200, &b);
	} else if (method_is(m, "POST")) {
		adm_list l = { NULL, 0 };
		if (adm_dyups_parse(body, len, &l, err, sizeof err) < 0) {
			reply_error(out, 400, err);
			return;
		}
		int rc = adm_state_set(name, &l, err, sizeof err);
		adm_list_free(&l);
		if (rc != 200) {
			reply_error(out, rc, err);
			return;
		}
		adm_buf b = { 0 };
		adm_buf_printf(&b, "success");
		reply_text(out, 200, &b);
	} else if (method_is(m, "DELETE")) {
		int rc = adm_state_drop(name, err, sizeof err);
		if (rc != 200) {
			reply_error(out, rc, err);
			return;
		}
		adm_buf b = { 0 };
		adm_buf_printf(&b, "success");
		reply_text(out, 200, &b);
	} else {
		not_allowed(out, "GET, POST, DELETE");
	}
}

static void api_upstream(admin_reply *out, const char *m, const char *rest,
                         const char *body, size_t len)
{
	char err[512];
	char name[256];
	const char *slash = strchr(rest, '/');
	size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
	if (nl == 0 || nl >= sizeof name) {
		reply_error(out, 404, "no such endpoint");
		return;
	}
	memcpy(name, rest, nl);
	name[nl] = '\0';

	if (!slash) {                       /* /api/upstreams/NAME */
		if (method_is(m, "GET")) {
			json_t *j = NULL;
			if (adm_state_view(name, cb_json_one, &j) != 0) {
				snprintf(err, sizeof err, "no upstream '%s'", name);
				reply_error(out, 404, err);
			} else {
				reply_json(out, 200, j);
			}
		} else if (method_is(m, "PUT")) {
			api_put_upstream(out, name, body, len);
		} else if (method_is(m, "DELETE")) {
			int rc = adm_state_drop(name, err, sizeof err);
			if (rc != 200)
				reply_error(out, rc, err);
			else
				reply_upstream(out, name);
		} else {
			not_allowed(out, "GET, PUT, DELETE");
		}
		return;
	}
	/* /api/upstreams/NAME/servers/ADDR[/drain]; ADDR may hold '/'
	 * (https://h:443, sent percent-encoded or not) */
	const char *p = slash + 1;
	if (strncmp(p, "servers/", 8) != 0 || !p[8]) {
		reply_error(out, 404, "no such endpoint");
		return;
	}
	char addr[512];
	snprintf(addr, sizeof addr, "%s", p + 8);
	size_t al = strlen(addr);
	int drain = al > 6 && !strcmp(addr + al - 6, "/drain");
	if (drain)
		addr[al - 6] = '\0';
	int rc;
	if (drain) {
		if (!method_is(m, "POST") && !method_is(m, "DELETE")) {
			not_allowed(out, "POST, DELETE");
			return;
		}
		rc = adm_state_server_drain(name, addr, method_is(m, "POST"), err, sizeof err);
	} else if (method_is(m, "PUT")) {
		api_put_server(out, name, addr, body, len);
		return;
	} else if (method_is(m, "DELETE")) {
		rc = adm_state_server_del(name, addr, err, sizeof err);
	} else {
		not_allowed(out, "PUT, DELETE");
		return;
	}
	if (rc != 200)
		reply_error(out, rc, err);
	else
		reply_upstream(out, name);
}

static void dispatch(const char *m, const char *url, const char *body, size_t len,
                     admin_reply *out)
{
	const char *name;
	for (size_t i = 0; i < next_routes; i++) {
		const ext_route *r = &ext_routes[i];
		if ((r->method && strcmp(r->method, m)) ||
		    (r->prefix ? strncmp(url, r->path, strlen(r->path)) : strcmp(url, r->path)))
			continue;
		r->fn(m, url, body, len, out, r->ctx);
		return;
	}
	if (!strcmp(url, "/list") || !strcmp(url, "/detail")) {
		if (!method_is(m, "GET")) {
			not_allowed(out, "GET");
			return;
		}
		adm_buf b = { 0 };
		adm_state_view_all(url[1] == 'l' ? cb_list : cb_detail, &b);
		reply_text(out, 200, &b);
	} else if ((name = tail_name(url, "/upstream/"))) {
		dyups_upstream(out, m, name, body, len);
	} else if (!strcmp(url, "/api/upstreams")) {
		if (!method_is(m, "GET")) {
			not_allowed(out, "GET");
			return;
		}
		json_t *arr = json_array();
		if (arr)
			adm_state_view_all(cb_json_all, arr);
		reply_json(out, 200, json_pack("{s:o}", "upstreams", arr));
	} else if (!strncmp(url, "/api/upstreams/", 15)) {
		api_upstream(out, m, url + 15, body, len);
	} else if (!strcmp(url, "/api/routes")) {
		if (method_is(m, "GET"))
			api_routes(out);
		else
			not_allowed(out, "GET");
	} else if (!strcmp(url, "/reload")) {
		if (method_is(m, "POST"))
			do_reload(out);
		else
			not_allowed(out, "POST");
	} else if (!strcmp(url, "/status")) {
		if (method_is(m, "GET"))
			status(out);
		else
			not_allowed(out, "GET");
	} else {
		char msg[300];
		snprintf(msg, sizeof msg, "no such endpoint: %.200s", url);
		reply_error(out, 404, msg);
	}
}

/* ---------------------------------------------------------- the daemon */

static enum MHD_Result send_reply(struct MHD_Connection *c, admin_reply *out)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		out->len, out->body ? out->body : (void *)"", out->body ? MHD_RESPMEM_MUST_FREE
		                                                        : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(out->body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        out->ctype ? out->ctype : "text/plain");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (out->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	/* "X-Request-Id is on every response gwd sends": the admin port's too
	 * (the client's own kept, as on the request listeners) */
	char id[REQID_MAX + 1];
	const char *cid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
	size_t cn = cid ? srv_value_len(cid, strlen(cid)) : 0;
	if (cid && reqid_valid(cid, cn)) {
		memcpy(id, cid, cn);
		id[cn] = '\0';
	} else {
		reqid_gen(id);
	}
	MHD_add_response_header(resp, "X-Request-Id", id);
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)out->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* a page registered with admin_route_add_public */
static int public_route(const char *method, const char *url)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return 0;
	for (size_t i = 0; i < next_routes; i++)
		if (ext_routes[i].pub && !strcmp(ext_routes[i].path, url))
			return 1;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
	areq *r = *con_cls;
	if (!r) {
		if (!(r = calloc(1, sizeof *r)))
			return MHD_NO;
		r->denied = !authorized(c) && !public_route(method, url);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (r->denied || r->too_big)
			return MHD_YES;
		if (r->len + n > ADMIN_BODY_MAX) {
			r->too_big = 1;
			return MHD_YES;
		}
		if (r->len + n + 1 > r->cap) {
			size_t cap = r->cap ? r->cap : 1024;
			while (cap < r->len + n + 1)
				cap *= 2;
			char *b = realloc(r->body, cap);
			if (!b)
				return MHD_NO;
			r->body = b;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload, n);
		r->len += n;
		return MHD_YES;
	}
	admin_reply out = { 0 };
	if (r->denied) {
		reply_json(&out, 401, json_pack("{s:s}", "error", have_token &&
		           MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                       MHD_HTTP_HEADER_AUTHORIZATION)
		           ? "unauthorized: wrong token" : "unauthorized: Authorization: Bearer required"));
	} else if (r->too_big) {
		char msg[64];
		snprintf(msg, sizeof msg, "request body over %u bytes", ADMIN_BODY_MAX);
		reply_error(&out, 413, msg);
	} else {
		if (!r->body && !(r->body = malloc(1)))
			return MHD_NO;
		r->body[r->len] = '\0';
		dispatch(method, url, r->body, r->len, &out);
		if (!out.status)
			reply_error(&out, 500, "endpoint gave no answer");
	}
	return send_reply(c, &out);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	areq *r = *con_cls;
	if (r) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof buf, fmt, ap);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("admin: %s", buf);
}

int admin_init(const gwd_config *cfg, ups_registry *reg, char *err, size_t errlen)
{
	start_mono_ms = mono_ms();
	start_wall = time(NULL);
	listen_.port = cfg->admin_listen.port;
	if (!(listen_.host = strdup(cfg->admin_listen.host ? cfg->admin_listen.host : "127.0.0.1"))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (cfg->admin_token_file && load_token(cfg->admin_token_file, err, errlen) < 0)
		return -1;
	if (adm_state_init(cfg->state_dir, reg, err, errlen) < 0)
		return -1;
	reload_set_sync_hook(adm_state_reapply);
	return 0;
}

int admin_start(char *err, size_t errlen)
{
	if (listen_.port == 0) {
		log_info("admin API off");
		return 0;
	}
	/* config_load refuses this already; a second check costs nothing and
	 * keeps an unauthenticated API off the network whatever the caller */
	if (!have_token && !config_is_loopback(listen_.host)) {
		snprintf(err, errlen, "admin.listen %s:%d is not loopback: set admin.token_file",
		         listen_.host, listen_.port);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char port[8];
	snprintf(port, sizeof port, "%d", listen_.port);
	int g = getaddrinfo(listen_.host, port, &hints, &ai);
	if (g != 0 || !ai) {
		snprintf(err, errlen, "admin.listen %s: %s", listen_.host, gai_strerror(g));
		return -1;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	daemon_ = MHD_start_daemon(flags, (uint16_t)listen_.port, NULL, NULL, on_request, NULL,
	                           MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,  /* first */
	                           MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	                           MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
	                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	                           MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!daemon_) {
		snprintf(err, errlen, "admin API: cannot listen on %s:%d (address in use?)",
		         listen_.host, listen_.port);
		return -1;
	}
	log_info("admin API on http://%s%s%s:%d%s", strchr(listen_.host, ':') ? "[" : "",
	         listen_.host, strchr(listen_.host, ':') ? "]" : "", listen_.port,
	         have_token ? " (token required)" : "");
	return 0;
}

void admin_stop(void)
{
	if (daemon_) {
		MHD_stop_daemon(daemon_);
		daemon_ = NULL;
	}
	reload_set_sync_hook(NULL);
	adm_state_free();
	for (size_t i = 0; i < next_routes; i++) {
		free(ext_routes[i].method);
		free(ext_routes[i].path);
	}
	free(ext_routes);
	ext_routes = NULL;
	next_routes = 0;
	free(listen_.host);
	listen_.host = NULL;
	explicit_bzero(token_md, sizeof token_md);
	have_token = 0;
}

int admin_route_add(const char *method, const char *path, int prefix,
                    admin_handler fn, void *ctx)
{
	ext_route *v = realloc(ext_routes, (next_routes + 1) * sizeof *v);
	if (!v)
		return -1;
	ext_routes = v;
	ext_route r = { method ? strdup(method) : NULL, strdup(path), prefix != 0, fn, ctx, 0 };
	if ((method && !r.method) || !r.path) {
		free(r.method);
		free(r.path);
		return -1;
	}
	ext_routes[next_routes++] = r;
	return 0;
}

int admin_route_add_public(const char *path, admin_handler fn, void *ctx)
{
	if (admin_route_add(NULL, path, 0, fn, ctx) != 0)
		return -1;
	ext_routes[next_routes - 1].pub = 1;
	return 0;
}

/*
 * origin.c — the test/demo origin server (endpoints in origin.h).
 *
 * libmicrohttpd with its own epoll thread (or a thread pool), suspend/resume
 * allowed. Waiting endpoints (/slow, /delay-body) suspend the connection and
 * hand it to one timer thread, which resumes it when its deadline passes:
 * no server thread ever sleeps, so a slow request never delays the others.
 *
 * Per request, the state lives in *req_cls: created by the URI-log callback
 * (the only place MHD shows the raw URI with its query string) and freed by
 * the request-completed callback.
 */
#include <config.h>   /* <>: autoconf's, not runtime/config.h */

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "origin.h"

#define OR_MAX_WAIT_MS   600000      /* /slow and /delay-body */
#define OR_BLOCK         (64 * 1024) /* callback block size for /bytes */

typedef struct or_timer {            /* a suspended connection to resume */
	uint64_t due_ms;
	struct MHD_Connection *conn;
} or_timer;

struct origin {
	char *name;
	int port;
	struct MHD_Daemon *d;
	atomic_ullong count;
	atomic_int health;
	/* timer thread: resumes suspended connections when they are due */
	pthread_t timer_thread;
	int timer_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	or_timer *timers; size_t ntimers, captimers;
	atomic_int stopping;         /* set under mu; read without it */
};

enum or_ep {
	EP_HOME, EP_ECHO, EP_BYTES, EP_CHUNKED, EP_STATUS, EP_SLOW, EP_DELAY,
	EP_CLOSE, EP_HEADERS, EP_NAME, EP_COUNT, EP_RESET, EP_HEALTH, EP_NOTFOUND
};

typedef struct or_req {
	origin *o;
	char *uri;                   /* raw, as received */
	int calls;                   /* access-handler calls so far */
	enum or_ep ep;
	uint64_t arg;                /* N, CODE or MS of the endpoint */
	int bad_arg;
	EVP_MD_CTX *sha;             /* /echo: body hash */
	uint64_t body_len;
	uint64_t due_ms;             /* /slow: when to answer (0 = not waiting yet) */
} or_req;

static uint64_t or_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- timers */

/* Called right after MHD_suspend_connection (resuming a connection that is
 * not suspended is undefined behaviour, so suspend comes first). When the
 * origin is stopping, the caller resumes at once instead. */
static int or_timer_add(origin *o, struct MHD_Connection *c, uint64_t due_ms)
{
	int rc = 0;
	pthread_mutex_lock(&o->mu);
	if (o->stopping) {
		rc = -1;
	} else if (o->ntimers == o->captimers) {
		size_t cap = o->captimers ? o->captimers * 2 : 16;
		or_timer *t = realloc(o->timers, cap * sizeof *t);
		if (!t)
			rc = -1;
		else {
			o->timers = t;
			o->captimers = cap;
		}
	}
	if (rc == 0) {
		o->timers[o->ntimers++] = (or_timer){ due_ms, c };
		pthread_cond_signal(&o->cv);
	}
	pthread_mutex_unlock(&o->mu);
	return rc;
}

/* 0 suspended; -1 when the origin is stopping: then the caller must not
 * wait (answer or cut now), or a resumed connection would suspend again */
static int or_suspend_until(origin *o, struct MHD_Connection *c, uint64_t due_ms)
{
	if (atomic_load(&o->stopping))
		return -1;
	MHD_suspend_connection(c);
	if (or_timer_add(o, c, due_ms) < 0) {
		MHD_resume_connection(c);
		return -1;
	}
	return 0;
}

static void *or_timer_main(void *arg)
{
	origin *o = arg;
	struct MHD_Connection **due = NULL;
	size_t capdue = 0;
	pthread_mutex_lock(&o->mu);
	for (;;) {
		uint64_t now = or_now_ms(), next = UINT64_MAX;
		size_t ndue = 0;
		for (size_t i = 0; i < o->ntimers;) {
			if (o->stopping || o->timers[i].due_ms <= now) {
				if (ndue == capdue) {
					size_t cap = capdue ? capdue * 2 : 16;
					struct MHD_Connection **d = realloc(due, cap * sizeof *d);
					if (!d)
						break;      /* try again on the next round */
					due = d;
					capdue = cap;
				}
				due[ndue++] = o->timers[i].conn;
				o->timers[i] = o->timers[--o->ntimers];
				continue;
			}
			if (o->timers[i].due_ms < next)
				next = o->timers[i].due_ms;
			i++;
		}
		if (ndue) {
			/* resume outside our lock: MHD takes its own locks */
			pthread_mutex_unlock(&o->mu);
			for (size_t i = 0; i < ndue; i++)
				MHD_resume_connection(due[i]);
			pthread_mutex_lock(&o->mu);
			continue;
		}
		if (o->stopping)
			break;
		if (next == UINT64_MAX) {
			pthread_cond_wait(&o->cv, &o->mu);
		} else {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t wait = next - now;
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&o->cv, &o->mu, &ts);
		}
	}
	pthread_mutex_unlock(&o->mu);
	free(due);
	return NULL;
}

/* ---------------------------------------------------------- responses */

static enum MHD_Result or_send(or_req *r, struct MHD_Connection *c, unsigned status,
                               const char *ctype, const void *body, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, "X-Origin-Name", r->o->name);
	enum MHD_Result rc = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result or_text(or_req *r, struct MHD_Connection *c, unsigned status,
                               const char *text)
{
	return or_send(r, c, status, "text/plain", text, strlen(text));
}

/* /bytes/N and /chunked/N */
typedef struct or_stream { uint64_t size; } or_stream;

static ssize_t or_bytes_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	const or_stream *s = cls;
	if (pos >= s->size)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t n = s->size - pos < max ? (size_t)(s->size - pos) : max;
	origin_pattern_fill(buf, pos, n);
	return (ssize_t)n;
}

static enum MHD_Result or_bytes(or_req *r, struct MHD_Connection *c, int chunked)
{
	or_stream *s = malloc(sizeof *s);
	if (!s)
		return MHD_NO;
	s->size = r->arg;
	struct MHD_Response *resp = MHD_create_response_from_callback(
		chunked ? MHD_SIZE_UNKNOWN : r->arg, OR_BLOCK, or_bytes_cb, s, free);
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(resp, "X-Origin-Name", r->o->name);
	enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* /delay-body/MS: "first\n" at once, then the connection is suspended from
 * inside the content reader (allowed there, see MHD_suspend_connection)
 * until the timer resumes it, then "second\n". */
typedef struct or_delay {
	origin *o;
	struct MHD_Connection *conn;
	uint64_t ms, due_ms;
} or_delay;

static const char or_delay_body[] = "first\nsecond\n";
#define OR_DELAY_SPLIT 6

static ssize_t or_delay_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	or_delay *d = cls;
	size_t total = sizeof or_delay_body - 1;
	if (pos >= total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t end = total;
	if (pos < OR_DELAY_SPLIT) {
		end = OR_DELAY_SPLIT;
	} else {
		if (!d->due_ms)
			d->due_ms = or_now_ms() + d->ms;
		if (or_now_ms() < d->due_ms)
			return or_suspend_until(d->o, d->conn, d->due_ms) == 0
			       ? 0 : MHD_CONTENT_READER_END_WITH_ERROR;
	}
	size_t n = end - (size_t)pos < max ? end - (size_t)pos : max;
	memcpy(buf, or_delay_body + pos, n);
	return (ssize_t)n;
}

static enum MHD_Result or_delay_body_resp(or_req *r, struct MHD_Connection *c)
{
	or_delay *d = calloc(1, sizeof *d);
	if (!d)
		return MHD_NO;
	d->o = r->o;
	d->conn = c;
	d->ms = r->arg;
	struct MHD_Response *resp = MHD_create_response_from_callback(
		sizeof or_delay_body - 1, 1024, or_delay_cb, d, free);
	if (!resp) {
		free(d);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	MHD_add_response_header(resp, "X-Origin-Name", r->o->name);
	enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* /echo */

/* A JSON string of raw bytes: as is when they are UTF-8, else with every
 * byte >= 0x80 written as the text \xHH (JSON strings must be UTF-8). */
static json_t *or_jstr(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	char *t = malloc(4 * n + 1);
	if (!t)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x80 || ch == 0) {
			snprintf(t + o, 5, "\\x%02X", ch);
			o += 4;
		} else {
			t[o++] = (char)ch;
		}
	}
	j = json_stringn(t, o);
	free(t);
	return j;
}

typedef struct or_hdrs { json_t *obj, *list; } or_hdrs;

static enum MHD_Result or_hdr_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	or_hdrs *h = cls;
	(void)kind;
	const char *v = value ? value : "";
	json_t *jv = or_jstr(v, strlen(v));
	if (!jv)
		return MHD_YES;
	json_t *pair = json_array();
	json_array_append_new(pair, or_jstr(key, strlen(key)));
	json_array_append(pair, jv);
	json_array_append_new(h->list, pair);
	json_t *old = json_object_get(h->obj, key);
	if (old) {
		const char *a = json_string_value(old), *b = json_string_value(jv);
		size_t n = strlen(a) + 2 + strlen(b) + 1;
		char *joined = malloc(n);
		if (joined) {
			snprintf(joined, n, "%s, %s", a, b);
			json_object_set_new(h->obj, key, json_string(joined));
			free(joined);
		}
		json_decref(jv);
	} else {
		json_object_set_new(h->obj, key, jv);
	}
	return MHD_YES;
}

static enum MHD_Result or_echo(or_req *r, struct MHD_Connection *c, const char *method,
                               const char *version)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	EVP_DigestFinal_ex(r->sha, md, &mdlen);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * mdlen] = '\0';

	const char *q = strchr(r->uri, '?');
	size_t plen = q ? (size_t)(q - r->uri) : strlen(r->uri);
	or_hdrs h = { json_object(), json_array() };
	MHD_get_connection_values(c, MHD_HEADER_KIND, or_hdr_iter, &h);
	json_t *doc = json_object();
	json_object_set_new(doc, "name", json_string(r->o->name));
	json_object_set_new(doc, "method", json_string(method));
	json_object_set_new(doc, "uri", or_jstr(r->uri, strlen(r->uri)));
	json_object_set_new(doc, "path", or_jstr(r->uri, plen));
	json_object_set_new(doc, "query", q ? or_jstr(q + 1, strlen(q + 1)) : json_string(""));
	json_object_set_new(doc, "version", json_string(version));
	json_object_set_new(doc, "headers", h.obj);
	json_object_set_new(doc, "header_list", h.list);
	json_object_set_new(doc, "body_len", json_integer((json_int_t)r->body_len));
	json_object_set_new(doc, "body_sha256", json_string(hex));
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return MHD_NO;
	size_t n = strlen(text);
	char *body = malloc(n + 2);
	if (!body) {
		free(text);
		return MHD_NO;
	}
	memcpy(body, text, n);
	body[n] = '\n';
	free(text);
	enum MHD_Result rc = or_send(r, c, MHD_HTTP_OK, "application/json", body, n + 1);
	free(body);
	return rc;
}

static int or_hexval(char ch)
{
	if (ch >= '0' && ch <= '9') return ch - '0';
	if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

/* percent-decode [s, s+n) into out (room for n+1 bytes) */
static void or_unescape(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    or_hexval(s[i + 1]) >= 0 && or_hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(or_hexval(s[i + 1]) * 16 + or_hexval(s[i + 2]));
			i += 2;
		} else if (s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
}

/* /headers?h=Name:value&h=... */
static enum MHD_Result or_headers(or_req *r, struct MHD_Connection *c)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	MHD_add_response_header(resp, "X-Origin-Name", r->o->name);
	const char *q = strchr(r->uri, '?');
	int bad = 0;
	for (const char *p = q ? q + 1 : NULL; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t n = amp ? (size_t)(amp - p) : strlen(p);
		if (n > 2 && !strncmp(p, "h=", 2)) {
			char *v = malloc(n);
			if (!v)
				break;
			or_unescape(p + 2, n - 2, v);
			char *colon = strchr(v, ':');
			if (colon && colon != v) {
				*colon = '\0';
				const char *val = colon + 1;
				while (*val == ' ')
					val++;
				if (MHD_add_response_header(resp, v, val) != MHD_YES)
					bad = 1;
			} else {
				bad = 1;
			}
			free(v);
		}
		p = amp ? amp + 1 : NULL;
	}
	enum MHD_Result rc;
	if (bad) {
		MHD_destroy_response(resp);
		return or_text(r, c, MHD_HTTP_BAD_REQUEST, "bad h=NAME:VALUE parameter\n");
	}
	rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return rc;
}

static const char or_home[] =
	"gw demo origin \"%s\". Endpoints:\n"
	"  /echo[/...]        the request as JSON (method, path, query, headers, body hash)\n"
	"  /bytes/N           N bytes (Content-Length)\n"
	"  /chunked/N         N bytes, chunked\n"
	"  /status/CODE       that status\n"
	"  /slow/MS           answer after MS milliseconds\n"
	"  /delay-body/MS     headers now, the rest of the body after MS milliseconds\n"
	"  /close             close the connection without answering\n"
	"  /headers?h=N:V     respond with header N: V\n"
	"  /name /count /reset /healthz\n";

static enum MHD_Result or_respond(or_req *r, struct MHD_Connection *c, const char *method,
                                  const char *version)
{
	origin *o = r->o;
	char buf[1024];
	if (r->bad_arg)
		return or_text(r, c, MHD_HTTP_BAD_REQUEST, "bad number in path\n");
	switch (r->ep) {
	case EP_HOME:
		snprintf(buf, sizeof buf, or_home, o->name);
		return or_text(r, c, MHD_HTTP_OK, buf);
	case EP_ECHO:
		return or_echo(r, c, method, version);
	case EP_BYTES:
	case EP_CHUNKED:
		return or_bytes(r, c, r->ep == EP_CHUNKED);
	case EP_STATUS:
		if (r->arg < 200 || r->arg > 599)
			return or_text(r, c, MHD_HTTP_BAD_REQUEST, "status must be 200..599\n");
		if (r->arg == 204 || r->arg == 304)
			return or_send(r, c, (unsigned)r->arg, NULL, "", 0);
		snprintf(buf, sizeof buf, "status %u\n", (unsigned)r->arg);
		return or_text(r, c, (unsigned)r->arg, buf);
	case EP_SLOW:
		snprintf(buf, sizeof buf, "slept %llu\n", (unsigned long long)r->arg);
		return or_text(r, c, MHD_HTTP_OK, buf);
	case EP_DELAY:
		return or_delay_body_resp(r, c);
	case EP_CLOSE:
		return MHD_NO;
	case EP_HEADERS:
		return or_headers(r, c);
	case EP_NAME:
		return or_text(r, c, MHD_HTTP_OK, o->name);
	case EP_COUNT:
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)atomic_load(&o->count));
		return or_text(r, c, MHD_HTTP_OK, buf);
	case EP_RESET:
		atomic_store(&o->count, 0);
		return or_text(r, c, MHD_HTTP_OK, "ok\n");
	case EP_HEALTH: {
		const char *q = strchr(r->uri, '?');
		if (q && !strncmp(q + 1, "set=", 4)) {
			char *end;
			unsigned long v = strtoul(q + 5, &end, 10);
			if (*end || v < 200 || v > 599)
				return or_text(r, c, MHD_HTTP_BAD_REQUEST, "set=CODE: 200..599\n");
			atomic_store(&o->health, (int)v);
			return or_text(r, c, MHD_HTTP_OK, "ok\n");
		}
		int h = atomic_load(&o->health);
		return or_text(r, c, (unsigned)h, h < 300 ? "ok\n" : "unhealthy\n");
	}
	case EP_NOTFOUND:
		break;
	}
	const char *q = strchr(r->uri, '?');
	snprintf(buf, sizeof buf, "no such endpoint: %.*s\n",
	         (int)(q ? (size_t)(q - r->uri) : strlen(r->uri)), r->uri);
	return or_text(r, c, MHD_HTTP_NOT_FOUND, buf);
}

/* "/bytes/123" with prefix "/bytes/" -> 123; anything else after it is bad */
static int or_num(const char *url, const char *prefix, uint64_t *out, int *bad)
{
	size_t n = strlen(prefix);
	if (strncmp(url, prefix, n))
		return 0;
	const char *s = url + n;
	uint64_t v = 0;
	if (!*s)
		*bad = 1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10) {
			*bad = 1;
			break;
		}
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 1;
}

static void or_route(or_req *r, const char *url)
{
	/* the quick-start rules forward /api/... unchanged */
	if (!strncmp(url, "/api", 4) && (url[4] == '/' || url[4] == '\0'))
		url = url[4] ? url + 4 : "/";
	if (!strcmp(url, "/")) r->ep = EP_HOME;
	else if (!strcmp(url, "/echo") || !strncmp(url, "/echo/", 6)) r->ep = EP_ECHO;
	else if (or_num(url, "/bytes/", &r->arg, &r->bad_arg)) r->ep = EP_BYTES;
	else if (or_num(url, "/chunked/", &r->arg, &r->bad_arg)) r->ep = EP_CHUNKED;
	else if (or_num(url, "/status/", &r->arg, &r->bad_arg)) r->ep = EP_STATUS;
	else if (or_num(url, "/slow/", &r->arg, &r->bad_arg)) r->ep = EP_SLOW;
	else if (or_num(url, "/delay-body/", &r->arg, &r->bad_arg)) r->ep = EP_DELAY;
	else if (!strcmp(url, "/close")) r->ep = EP_CLOSE;
	else if (!strcmp(url, "/headers")) r->ep = EP_HEADERS;
	else if (!strcmp(url, "/name")) r->ep = EP_NAME;
	else if (!strcmp(url, "/count")) r->ep = EP_COUNT;
	else if (!strcmp(url, "/reset")) r->ep = EP_RESET;
	else if (!strcmp(url, "/healthz")) r->ep = EP_HEALTH;
	else r->ep = EP_NOTFOUND;
	if ((r->ep == EP_SLOW || r->ep == EP_DELAY) && r->arg > OR_MAX_WAIT_MS)
		r->bad_arg = 1;
}

/* ------------------------------------------------------ MHD callbacks */

static void *or_uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)c;
	or_req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->o = cls;
	r->uri = strdup(uri ? uri : "");
	if (!r->uri) {
		free(r);
		return NULL;
	}
	return r;
}

static void or_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls; (void)c; (void)toe;
	or_req *r = *req_cls;
	if (!r)
		return;
	if (r->sha)
		EVP_MD_CTX_free(r->sha);
	free(r->uri);
	free(r);
	*req_cls = NULL;
}

static enum MHD_Result or_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
	origin *o = cls;
	or_req *r = *req_cls;
	if (!r)
		return MHD_NO;      /* out of memory in or_uri_log */
	if (r->calls++ == 0) {
		/* Never queue in the first call: MHD would answer Connection: close. */
		or_route(r, url);
		if (r->ep != EP_COUNT && r->ep != EP_RESET && r->ep != EP_HEALTH)
			atomic_fetch_add(&o->count, 1);
		if (r->ep == EP_CLOSE)
			return MHD_NO;
		if (r->ep == EP_ECHO) {
			r->sha = EVP_MD_CTX_new();
			if (!r->sha || !EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL))
				return MHD_NO;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* the body streams through: hash it (for /echo) and drop it */
		if (r->sha)
			EVP_DigestUpdate(r->sha, upload_data, *upload_data_size);
		r->body_len += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->ep == EP_SLOW && !r->bad_arg) {
		if (!r->due_ms)
			r->due_ms = or_now_ms() + r->arg;
		if (or_now_ms() < r->due_ms && or_suspend_until(o, c, r->due_ms) == 0)
			return MHD_YES;
	}
	return or_respond(r, c, method, version);
}

/* ------------------------------------------------------------- start/stop */

static int or_listen_socket(const char *host, int port, int *out_port, int *v6,
                            char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	int e = getaddrinfo(host, portstr, &hints, &ai);
	if (e) {
		snprintf(err, errlen, "origin: %s: %s", host, gai_strerror(e));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "origin: socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "origin: bind %s:%d: %s", host, port, strerror(errno));
		close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	*v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*out_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                           : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void or_free(origin *o)
{
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	free(o->timers);
	free(o->name);
	free(o);
}

origin *origin_start(const char *name, const char *host, int port, int threads,
                     char *err, size_t errlen)
{
	origin *o = calloc(1, sizeof *o);
	if (!o) {
		snprintf(err, errlen, "origin: out of memory");
		return NULL;
	}
	o->name = strdup(name ? name : "origin");
	atomic_init(&o->count, 0);
	atomic_init(&o->health, 200);
	atomic_init(&o->stopping, 0);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!o->name) {
		snprintf(err, errlen, "origin: out of memory");
		or_free(o);
		return NULL;
	}
	int v6 = 0;
	int fd = or_listen_socket(host ? host : "127.0.0.1", port, &o->port, &v6, err, errlen);
	if (fd < 0) {
		or_free(o);
		return NULL;
	}
	if (pthread_create(&o->timer_thread, NULL, or_timer_main, o)) {
		snprintf(err, errlen, "origin: cannot start the timer thread");
		close(fd);
		or_free(o);
		return NULL;
	}
	o->timer_started = 1;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                 MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0);
	o->d = MHD_start_daemon(flags, 0, NULL, NULL, or_handler, o,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
		MHD_OPTION_URI_LOG_CALLBACK, or_uri_log, o,
		MHD_OPTION_NOTIFY_COMPLETED, or_completed, o,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 1),
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
		MHD_OPTION_END);
	if (!o->d) {
		snprintf(err, errlen, "origin: MHD_start_daemon failed on %s:%d", host, o->port);
		close(fd);
		origin_stop(o);
		return NULL;
	}
	return o;
}

int origin_port(const origin *o) { return o->port; }
const char *origin_name(const origin *o) { return o->name; }
uint64_t origin_count(const origin *o) { return atomic_load(&o->count); }
void origin_reset(origin *o) { atomic_store(&o->count, 0); }
void origin_set_health(origin *o, int status) { atomic_store(&o->health, status); }

void origin_stop(origin *o)
{
	if (!o)
		return;
	MHD_socket lfd = MHD_INVALID_SOCKET;
	if (o->d)   /* stop accepting; we own the listen socket again */
		lfd = MHD_quiesce_daemon(o->d);
	/* every suspended connection must be resumed before MHD_stop_daemon:
	 * the timer thread resumes all it holds; later suspends resume at once */
	pthread_mutex_lock(&o->mu);
	atomic_store(&o->stopping, 1);
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	if (o->timer_started)
		pthread_join(o->timer_thread, NULL);
	if (o->d)
		MHD_stop_daemon(o->d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	or_free(o);
}

/*
 * accesslog.c — the access log: line formatting on the worker, per-worker
 * SPSC rings, one writer thread (accesslog.h).
 *
 * Ring positions are byte counts since start (64-bit, never wrap in
 * practice); the producer owns `tail`, the consumer owns `head`, each
 * publishes its own with a release store and reads the other's with an
 * acquire load. A line is copied in whole before `tail` moves past it, so
 * the writer only ever sees whole lines.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "core.h"
#include "log.h"

/* ---------------------------------------------------------------- ring */
struct alog_ring {
	_Alignas(64) _Atomic uint64_t tail;      /* producer */
	_Atomic uint64_t lines, dropped;         /* producer-written counters */
	_Atomic int wake_sent;                   /* producer asked the writer to hurry */
	_Alignas(64) _Atomic uint64_t head;      /* consumer */
	_Atomic uint64_t lost;                   /* consumer: lines a failed write lost */
	_Alignas(64) size_t cap;
	char *buf;
};

alog_ring *alog_ring_new(size_t cap)
{
	if (cap < 64 || (cap & (cap - 1)))
		return NULL;
	alog_ring *g = aligned_alloc(64, sizeof *g);
	if (!g)
		return NULL;
	memset(g, 0, sizeof *g);
	g->cap = cap;
	if (!(g->buf = malloc(cap))) {
		free(g);
		return NULL;
	}
	return g;
}

void alog_ring_free(alog_ring *g)
{
	if (g) {
		free(g->buf);
		free(g);
	}
}

/* each counter has one writing thread: no read-modify-write needed */
static void ctr_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}
#define ctr_inc(c) ctr_add((c), 1)

int alog_ring_put(alog_ring *g, const char *line, size_t n)
{
	uint64_t t = atomic_load_explicit(&g->tail, memory_order_relaxed);
	uint64_t h = atomic_load_explicit(&g->head, memory_order_acquire);
	if (n > g->cap - (size_t)(t - h)) {
		ctr_inc(&g->dropped);
		return 0;
	}
	size_t off = (size_t)t & (g->cap - 1), first = g->cap - off;
	if (first > n)
		first = n;
	memcpy(g->buf + off, line, first);
	memcpy(g->buf, line + first, n - first);
	atomic_store_explicit(&g->tail, t + n, memory_order_release);
	ctr_inc(&g->lines);
	return 1;
}

size_t alog_ring_peek(alog_ring *g, struct iovec iov[2])
{
	uint64_t h = atomic_load_explicit(&g->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&g->tail, memory_order_acquire);
	size_t n = (size_t)(t - h), off = (size_t)h & (g->cap - 1), first = g->cap - off;
	if (first > n)
		first = n;
	iov[0].iov_base = g->buf + off;
	iov[0].iov_len = first;
	iov[1].iov_base = g->buf;
	iov[1].iov_len = n - first;
	return n;
}

void alog_ring_consume(alog_ring *g, size_t n)
{
	uint64_t h = atomic_load_explicit(&g->head, memory_order_relaxed);
	atomic_store_explicit(&g->head, h + n, memory_order_release);
}

size_t alog_ring_used(alog_ring *g)
{
	return (size_t)(atomic_load_explicit(&g->tail, memory_order_acquire) -
	                atomic_load_explicit(&g->head, memory_order_acquire));
}

uint64_t alog_ring_lines(alog_ring *g) { return atomic_load_explicit(&g->lines, memory_order_relaxed); }
uint64_t alog_ring_dropped(alog_ring *g)
{
	return atomic_load_explicit(&g->dropped, memory_order_relaxed) +
	       atomic_load_explicit(&g->lost, memory_order_relaxed);
}

/* ---------------------------------------------------------- formatting */
typedef struct ob { char *p; size_t len, cap; } ob;

/* room is kept for the line's closing bytes: every put stops at cap - 8 */
#define OB_RESERVE 8

static void ob_raw(ob *o, const char *s, size_t n)
{
	if (o->len + OB_RESERVE >= o->cap)
		return;
	size_t room = o->cap - OB_RESERVE - o->len;
	if (n > room)
		n = room;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void ob_str(ob *o, const char *s) { ob_raw(o, s, strlen(s)); }

static void ob_u64(ob *o, uint64_t v)
{
	char t[24];
	size_t i = sizeof t;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	ob_raw(o, t + i, sizeof t - i);
}

/* v / 10^dec with dec decimals: 1234 ms, 3 -> "1.234" */
static void ob_fixed(ob *o, uint64_t v, int dec)
{
	uint64_t p = 1;
	for (int i = 0; i < dec; i++)
		p *= 10;
	ob_u64(o, v / p);
	char t[8];
	uint64_t f = v % p;
	for (int i = dec - 1; i >= 0; i--) {
		t[i] = (char)('0' + f % 10);
		f /= 10;
	}
	ob_raw(o, ".", 1);
	ob_raw(o, t, (size_t)dec);
}

/* length of a valid UTF-8 sequence at s (max n bytes), 0 if invalid */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
	else return 0;
	if (len > n)
		return 0;
	unsigned cp = c & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* bytes that go into a JSON string as they are: printable ASCII except
 * '"' and '\\' (NUL is 0: it ends the scan) */
static const unsigned char json_plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* a JSON string (quotes included) of at most max output bytes: control
 * characters and bytes that are not valid UTF-8 become \u00XX, so the
 * line is valid JSON whatever the client sent; NULL is null */
static void ob_json(ob *o, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	if (!s) {
		ob_raw(o, "null", 4);
		return;
	}
	/* the common case, nearly every field of nearly every line: plain
	 * text that fits, found with one table lookup a byte and copied with
	 * its quotes in one go (this path was ~2,400 instructions a line
	 * through the general loop below) */
	const unsigned char *u = (const unsigned char *)s;
	size_t n = 0;
	while (json_plain[u[n]])
		n++;
	if (!u[n] && n <= max && o->len + n + 2 + OB_RESERVE < o->cap) {
		char *d = o->p + o->len;
		d[0] = '"';
		memcpy(d + 1, s, n);
		d[n + 1] = '"';
		o->len += n + 2;
		return;
	}
	ob_raw(o, "\"", 1);
	size_t used = 0;
	n += strlen(s + n);
	for (size_t i = 0; i < n;) {
		/* a run of printable ASCII that needs no escape (most of a
		 * line) goes in with one copy instead of one per byte */
		size_t j = i;
		while (j < n && u[j] >= 0x20 && u[j] < 0x7f && u[j] != '"' && u[j] != '\\')
			j++;
		if (j > i) {
			size_t take = j - i < max - used ? j - i : max - used;
			ob_raw(o, s + i, take);
			used += take;
			i += take;
			if (i < j)
				break;       /* shortened */
			continue;
		}
		char e[8];
		size_t el, adv = 1;
		const char *src = e;
		unsigned c = u[i];
		if (c == '"' || c == '\\') {
			e[0] = '\\'; e[1] = (char)c; el = 2;
		} else if (c == '\n') {
			memcpy(e, "\\n", 2); el = 2;
		} else if (c == '\r') {
			memcpy(e, "\\r", 2); el = 2;
		} else if (c == '\t') {
			memcpy(e, "\\t", 2); el = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(e, "\\u00", 4); e[4] = hex[c >> 4]; e[5] = hex[c & 15]; el = 6;
		} else if (c < 0x80) {
			src = s + i; el = 1;
		} else if ((adv = utf8_len(u + i, n - i))) {
			src = s + i; el = adv;
		} else {
			memcpy(e, "\\u00", 4); e[4] = hex[c >> 4]; e[5] = hex[c & 15]; el = 6;
			adv = 1;
		}
		if (used + el > max)
			break;           /* shortened, never inside an escape */
		ob_raw(o, src, el);
		used += el;
		i += adv;
	}
	ob_raw(o, "\"", 1);
}

/* nginx's default log escaping: '"', '\\', control and non-ASCII bytes as
 * \xHH; NULL or "" is "-" */
static void ob_clf(ob *o, const char *s, size_t max, int space_too)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!s || !*s) {
		ob_raw(o, "-", 1);
		return;
	}
	size_t used = 0;
	for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
		char e[4];
		size_t el;
		if (*u == '"' || *u == '\\' || *u < 0x20 || *u >= 0x7f || (space_too && *u == ' ')) {
			e[0] = '\\'; e[1] = 'x'; e[2] = hex[*u >> 4]; e[3] = hex[*u & 15];
			el = 4;
		} else {
			e[0] = (char)*u;
			el = 1;
		}
		if (used + el > max)
			break;
		ob_raw(o, e, el);
		used += el;
	}
}

static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* the second's text is computed once per second per thread */
typedef struct tcache { int64_t sec; char iso[64]; char clf[64]; } tcache;
static _Thread_local tcache tc = { .sec = -1 };

static const tcache *time_text(int64_t ms)
{
	int64_t sec = ms / 1000;
	if (sec != tc.sec) {
		struct tm tm;
		time_t t = (time_t)sec;
		gmtime_r(&t, &tm);
		snprintf(tc.iso, sizeof tc.iso, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		snprintf(tc.clf, sizeof tc.clf, "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
		         mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		tc.sec = sec;
	}
	return &tc;
}

/* longest output of each string field: the worst case stays < ALOG_LINE_MAX */
#define MAX_URI 4096
#define MAX_UA 1024
#define MAX_REF 1024
#define MAX_NAME 512
#define MAX_TAG 128
#define MAX_TAGS 16

/* a literal piece of the line (a key and its punctuation): its length is
 * known at compile time ("" k refuses anything but a string literal) */
#define key(o, k) ob_raw((o), "" k, sizeof(k) - 1)

size_t alog_format_json(char *buf, size_t cap, const alog_entry *e)
{
	ob o = { buf, 0, cap };
	const tcache *t = time_text(e->time_ms);
	key(&o, "{\"time\":\"");
	ob_str(&o, t->iso);
	ob_raw(&o, ".", 1);
	char ms[3] = { (char)('0' + e->time_ms % 1000 / 100), (char)('0' + e->time_ms % 100 / 10),
	               (char)('0' + e->time_ms % 10) };
	ob_raw(&o, ms, 3);
	key(&o, "Z\",\"client_ip\":");
	ob_json(&o, e->client_ip, 64);
	key(&o, ",\"method\":");
	ob_json(&o, e->method, 64);
	key(&o, ",\"uri\":");
	ob_json(&o, e->uri, MAX_URI);
	key(&o, ",\"protocol\":");
	ob_json(&o, e->protocol, 16);
	key(&o, ",\"status\":");
	ob_u64(&o, (uint64_t)(e->status > 0 ? e->status : 0));
	key(&o, ",\"bytes_in\":");
	ob_u64(&o, e->bytes_in);
	key(&o, ",\"bytes_out\":");
	ob_u64(&o, e->bytes_out);
	key(&o, ",\"duration\":");
	ob_fixed(&o, e->duration_ms, 3);
	key(&o, ",\"upstream_duration\":");
	if (e->upstream_us >= 0)
		ob_fixed(&o, (uint64_t)e->upstream_us, 6);
	else
		ob_raw(&o, "null", 4);
	key(&o, ",\"route\":");
	ob_json(&o, e->route, MAX_NAME);
	key(&o, ",\"upstream\":");
	ob_json(&o, e->upstream, MAX_NAME);
	key(&o, ",\"upstream_server\":");
	ob_json(&o, e->upstream_server, MAX_NAME);
	key(&o, ",\"upstream_status\":");
	if (e->upstream_status > 0)
		ob_u64(&o, (uint64_t)e->upstream_status);
	else
		ob_raw(&o, "null", 4);
	key(&o, ",\"attempts\":");
	ob_u64(&o, e->attempts);
	key(&o, ",\"request_id\":");
	ob_json(&o, e->request_id, 256);
	key(&o, ",\"user_agent\":");
	ob_json(&o, e->user_agent, MAX_UA);
	key(&o, ",\"referer\":");
	ob_json(&o, e->referer, MAX_REF);
	key(&o, ",\"consumer\":");
	ob_json(&o, e->consumer, MAX_NAME);
	key(&o, ",\"tags\":[");
	for (size_t i = 0; i < e->ntags && i < MAX_TAGS; i++) {
		if (i)
			ob_raw(&o, ",", 1);
		ob_json(&o, e->tags[i], MAX_TAG);
	}
	key(&o, "],\"waf\":");
	if (e->waf_action) {
		key(&o, "{\"action\":");
		ob_json(&o, e->waf_action, 16);
		key(&o, ",\"rule\":");
		ob_json(&o, e->waf_rule, MAX_NAME);
		key(&o, ",\"class\":");
		ob_json(&o, e->waf_class, 64);
		ob_raw(&o, "}", 1);
	} else {
		ob_raw(&o, "null", 4);
	}
	key(&o, ",\"ratelimit\":");
	ob_json(&o, e->ratelimit, 16);
	key(&o, ",\"connlimit\":");
	ob_json(&o, e->connlimit, 16);
	key(&o, ",\"cache\":");
	ob_json(&o, e->cache, 16);
	/* the reserve is for these two bytes: the line always closes */
	o.p[o.len++] = '}';
	o.p[o.len++] = '\n';
	return o.len;
}

size_t alog_format_combined(char *buf, size_t cap, const alog_entry *e)
{
	ob o = { buf, 0, cap };
	const tcache *t = time_text(e->time_ms);
	ob_clf(&o, e->client_ip, 64, 1);
	ob_raw(&o, " - ", 3);
	ob_clf(&o, e->consumer, MAX_NAME, 1);
	ob_raw(&o, " [", 2);
	ob_str(&o, t->clf);
	ob_raw(&o, "] \"", 3);
	if (e->method) {
		ob_clf(&o, e->method, 64, 0);
		ob_raw(&o, " ", 1);
		ob_clf(&o, e->uri, MAX_URI, 0);
		ob_raw(&o, " ", 1);
		ob_clf(&o, e->protocol, 16, 0);
	} else {
		ob_raw(&o, "-", 1);      /* nginx: no request line */
	}
	ob_raw(&o, "\" ", 2);
	ob_u64(&o, (uint64_t)(e->status > 0 ? e->status : 0));
	ob_raw(&o, " ", 1);
	ob_u64(&o, e->bytes_out);
	ob_raw(&o, " \"", 2);
	ob_clf(&o, e->referer, MAX_REF, 0);
	ob_raw(&o, "\" \"", 3);
	ob_clf(&o, e->user_agent, MAX_UA, 0);
	o.p[o.len++] = '"';
	o.p[o.len++] = '\n';
	return o.len;
}

/* -------------------------------------------------------------- writer */
#define ALOG_MAX_RINGS 256      /* srv_start's worker cap */

static atomic_int alog_on;
static int alog_fmt;
static char *alog_path;        /* NULL: stdout */
static int alog_fd = -1;       /* the writer thread's (and close's) only */
static int alog_efd = -1;
static pthread_t alog_th;
static int alog_th_started;
static atomic_int reopen_req, stop_req;
static atomic_uint reopen_done;  /* reopens the writer has carried out */
static _Atomic(alog_ring *) rings[ALOG_MAX_RINGS];
static uint64_t write_errors;  /* writer thread only */
static uint64_t last_err_log_ms;

int accesslog_enabled(void)
{
	return atomic_load_explicit(&alog_on, memory_order_relaxed);
}

void accesslog_counts(uint64_t *lines, uint64_t *dropped)
{
	*lines = *dropped = 0;
	for (int i = 0; i < ALOG_MAX_RINGS; i++) {
		alog_ring *g = atomic_load_explicit(&rings[i], memory_order_acquire);
		if (g) {
			*lines += alog_ring_lines(g);
			*dropped += alog_ring_dropped(g);
		}
	}
}

static void wake_writer(void)
{
	uint64_t one = 1;
	ssize_t k = write(alog_efd, &one, sizeof one);
	(void)k;            /* the counter is full only if the writer is gone */
}

static uint64_t count_lines(const struct iovec *iov, size_t n)
{
	uint64_t k = 0;
	for (size_t i = 0; i < 2 && n; i++) {
		size_t m = iov[i].iov_len < n ? iov[i].iov_len : n;
		for (const char *p = iov[i].iov_base, *e = p + m; (p = memchr(p, '\n', (size_t)(e - p)));
		     p++)
			k++;
		n -= m;
	}
	return k;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* write out everything ring g holds; on a write error the bytes are
 * dropped (and counted as dropped lines) so a full disk cannot stop the
 * writer from draining the rings */
static void drain(alog_ring *g)
{
	for (;;) {
		struct iovec iov[2];
		size_t n = alog_ring_peek(g, iov);
		if (!n)
			return;
		ssize_t w = writev(alog_fd, iov, iov[1].iov_len ? 2 : 1);
		if (w > 0) {
			alog_ring_consume(g, (size_t)w);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;         /* a non-blocking stdout: try at the next tick */
		uint64_t lost = count_lines(iov, n);
		ctr_add(&g->lost, lost);
		alog_ring_consume(g, n);
		write_errors++;
		uint64_t now = mono_ms();
		if (!last_err_log_ms || now - last_err_log_ms >= 60000) {
			last_err_log_ms = now;
			log_err("access log %s: write failed (%s): %llu line(s) dropped",
			        alog_path ? alog_path : "stdout", w < 0 ? strerror(errno) : "no progress",
			        (unsigned long long)lost);
		}
		return;
	}
}

static void drain_all(void)
{
	for (int i = 0; i < ALOG_MAX_RINGS; i++) {
		alog_ring *g = atomic_load_explicit(&rings[i], memory_order_acquire);
		if (!g)
			continue;
		drain(g);
		atomic_store_explicit(&g->wake_sent, 0, memory_order_relaxed);
	}
}

static int open_path(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void do_reopen(void)
{
	if (!alog_path)
		return;
	/* what the rings hold was produced before the signal: it belongs to
	 * the old file (logrotate may compress it next) */
	drain_all();
	int fd = open_path(alog_path);
	if (fd < 0) {
		log_err("access log: cannot reopen %s: %s (still writing to the old file)", alog_path,
		        strerror(errno));
		return;
	}
	close(alog_fd);
	alog_fd = fd;
}

static void *writer_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = { .fd = alog_efd, .events = POLLIN };
		int n = poll(&p, 1, ALOG_FLUSH_MS);
		if (n > 0) {
			uint64_t x;
			ssize_t k = read(alog_efd, &x, sizeof x);
			(void)k;
		}
		if (atomic_exchange(&reopen_req, 0)) {
			do_reopen();
			atomic_fetch_add(&reopen_done, 1);
		}
		drain_all();
		if (atomic_load(&stop_req)) {
			drain_all();
			return NULL;
		}
	}
}

int accesslog_open(const gwd_config *cfg, char *err, size_t errlen)
{
	const char *path = cfg->access_log_path;
	if (!path || !strcmp(path, "off"))
		return 0;
	alog_fmt = cfg->access_log_format;
	if (!strcmp(path, "-")) {
		alog_fd = 1;
	} else {
		alog_fd = open_path(path);
		if (alog_fd < 0) {
			snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
			return -1;
		}
		if (!(alog_path = strdup(path))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	alog_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (alog_efd < 0) {
		snprintf(err, errlen, "access log: eventfd: %s", strerror(errno));
		return -1;
	}
	/* the writer blocks no signal of its own: gwd.c blocked them all in
	 * this thread before, and the new thread inherits the mask */
	if (pthread_create(&alog_th, NULL, writer_main, NULL) != 0) {
		snprintf(err, errlen, "access log: cannot start the writer thread");
		return -1;
	}
	alog_th_started = 1;
	atomic_store(&alog_on, 1);
	return 0;
}

void accesslog_reopen(void)
{
	if (!alog_th_started)
		return;
	/* wait (up to a second) until the writer has the new file, so that
	 * "logs reopened" is true when it is logged and every line of a
	 * request that starts after it goes to the new file; the caller is
	 * the signal thread, never a worker */
	unsigned before = atomic_load(&reopen_done);
	atomic_store(&reopen_req, 1);
	wake_writer();
	for (int i = 0; i < 1000 && atomic_load(&reopen_done) == before; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
}

void accesslog_close(void)
{
	atomic_store(&alog_on, 0);
	if (alog_th_started) {
		atomic_store(&stop_req, 1);
		wake_writer();
		pthread_join(alog_th, NULL);
		alog_th_started = 0;
	}
	if (alog_fd > 2)
		close(alog_fd);
	alog_fd = -1;
	if (alog_efd >= 0)
		close(alog_efd);
	alog_efd = -1;
	for (int i = 0; i < ALOG_MAX_RINGS; i++)
		alog_ring_free(atomic_exchange(&rings[i], NULL));
	free(alog_path);
	alog_path = NULL;
	atomic_store(&stop_req, 0);
	atomic_store(&reopen_req, 0);
}

/* -------------------------------------------------------- request side */
static _Thread_local char line_buf[ALOG_LINE_MAX];

void accesslog_request(gw_req *r, const metrics_rec *m)
{
	int idx = r->w->idx;
	if (idx < 0 || idx >= ALOG_MAX_RINGS)
		return;
	alog_ring *g = atomic_load_explicit(&rings[idx], memory_order_relaxed);
	if (!g) {
		/* the worker's first line: its ring (only this thread stores it) */
		if (!(g = alog_ring_new(ALOG_RING_SIZE)))
			return;
		atomic_store_explicit(&rings[idx], g, memory_order_release);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	alog_entry e = {
		.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
		.client_ip = r->ipstr[0] ? r->ipstr : NULL,
		.method = r->state == RQ_NEW ? NULL : r->method,
		.uri = r->uri,
		.protocol = r->http10 ? "HTTP/1.0" : "HTTP/1.1",
		.status = m->status,
		.bytes_in = m->bytes_in, .bytes_out = m->bytes_out,
		.duration_ms = m->duration_ms, .upstream_us = m->upstream_us,
		.route = m->route, .upstream = m->upstream, .upstream_server = m->upstream_server,
		.upstream_status = m->upstream_status, .attempts = m->attempts,
		.request_id = r->id[0] ? r->id : NULL,
		.waf_action = m->waf_action, .waf_rule = m->waf_rule, .waf_class = m->waf_class,
		.ratelimit = m->ratelimit, .connlimit = m->connlimit, .cache = m->cache,
	};
	const char *v;
	size_t vl;
	if (r->state != RQ_NEW) {
		if (srv_header_raw_n(r, "User-Agent", 10, &v, &vl))
			e.user_agent = v;
		if (srv_header_raw_n(r, "Referer", 7, &v, &vl))
			e.referer = v;
	}
	e.consumer = gw_req_consumer(r, NULL);
	e.ntags = gw_req_tags(r, &e.tags);
	size_t n = alog_fmt == CFG_LOG_COMBINED ? alog_format_combined(line_buf, sizeof line_buf, &e)
	                                        : alog_format_json(line_buf, sizeof line_buf, &e);
	alog_ring_put(g, line_buf, n);
	/* half full: the writer's tick may be too slow for this traffic */
	if (alog_ring_used(g) > g->cap / 2 &&
	    !atomic_exchange_explicit(&g->wake_sent, 1, memory_order_relaxed))
		wake_writer();
}

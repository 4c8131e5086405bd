/*
 * ratelimit_redis.c — rate_limit's cluster mode: buckets in Redis, so N
 * gwd instances enforce one limit.
 *
 * One decision is one atomic Lua script (GCRA on the Redis server's own
 * clock, TIME, so the gateways' clocks do not matter), sent with EVALSHA
 * and re-sent with EVAL when the server answers NOSCRIPT (restarted,
 * SCRIPT FLUSH, failover).
 *
 * No thread ever blocks on Redis. Each worker has its own connection,
 * driven by hiredis's async API inside the worker's event loop: hiredis's
 * event hooks become gw_loop_watch() calls (plugin.h), the handler sends
 * the command and returns GW_AGAIN, the reply callback stores the
 * decision and resumes the request (gw_req_resume) on the same thread.
 *
 * Redis must not make gwd slow or stuck. A command not answered within
 * redis.timeout (gateway.yaml, default 5 ms) is decided locally (the
 * in-process store) and counted in gw_rl_redis_fallbacks; its late reply
 * is dropped. After three timeouts in a row the worker stops asking for a
 * while (100 ms doubling to 5 s) and decides locally; a connection with a
 * command unanswered for a second is dropped. A lost connection fails its
 * pending commands at once (decided locally) and is re-made on demand with
 * the same backoff. Host names are resolved once, at start, on the
 * control thread (hiredis would resolve them with a blocking call).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "plugin.h"
#include "log.h"
#include "ratelimit.h"

#define MAX_WORKERS 256            /* srv.c's limit */
#define MAX_PENDING 4096           /* commands in flight per connection */
#define SLOW_STREAK 3              /* timeouts in a row that mean "slow" */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define HUNG_MS_MIN 1000           /* an unanswered command this old: reconnect */

/* GCRA in µs on the server's clock. ARGV: T, L (µs, may be fractional),
 * burst. Returns {allowed, remaining, retry_us, reset_us}. The key expires
 * a second after its bucket is full again: idle keys cost Redis nothing. */
static const char script[] =
	"if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
	"local T = tonumber(ARGV[1])\n"
	"local L = tonumber(ARGV[2])\n"
	"local burst = tonumber(ARGV[3])\n"
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1]))\n"
	"if not tat or tat < now then tat = now end\n"
	"local nt = tat + T\n"
	"if nt - now > L then\n"
	"  return {0, 0, math.ceil(nt - L - now), math.ceil(tat - now)}\n"
	"end\n"
	"redis.call('SET', KEYS[1], string.format('%.3f', nt), 'PX', math.ceil((nt - now) / 1000) + 1000)\n"
	"local rem = math.floor((L - (nt - now)) / T)\n"
	"if rem > burst then rem = burst end\n"
	"return {1, rem, 0, math.ceil(nt - now)}\n";
static char script_sha[41];

/* settings (control thread, before the workers use them) */
static int r_enabled;
static char r_host[64];            /* numeric address */
static int r_port = 6379;
static char *r_unix;
static int r_db;
static char *r_pass;
static uint32_t r_timeout_ms = 5;
static uint32_t r_hung_ms = HUNG_MS_MIN;

typedef struct rconn rconn;

struct rl_redis_op {
	struct rl_redis_op *next, *prev;   /* connection's list, oldest first */
	rconn *c;
	rl_wait *w;                        /* NULL once the request left */
	uint64_t sent_ms, deadline;
	int retried;                       /* EVAL after NOSCRIPT */
	uint32_t nburst;
	char T[32], L[32], burst[16];
	size_t klen;
	char key[];
};
typedef struct rl_redis_op rl_redis_op;

struct rconn {
	int worker;
	redisAsyncContext *ac;
	int fd;
	unsigned ev;                       /* GW_IO_* hiredis wants */
	int connected;
	rl_redis_op *head, *tail;
	unsigned npending;
	gw_timer *timer;
	uint64_t timer_due;
	uint64_t retry_at;                 /* no new connection before */
	uint32_t backoff_ms;               /* next reconnect / slow pause */
	uint32_t slow_ms;
	unsigned streak;                   /* timeouts in a row */
	uint64_t local_until;              /* slow: decide locally until */
	int down_logged;
};

static rconn *conns[MAX_WORKERS];      /* each touched by its worker only */

/* ------------------------------------------------------------ settings */
static int sha1_hex(const char *s, size_t n, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(s, n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return -1;
	for (unsigned i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N] */
void rl_redis_configure(const char *url, uint32_t timeout_ms)
{
	r_enabled = 0;
	r_timeout_ms = timeout_ms ? timeout_ms : 5;
	r_hung_ms = r_timeout_ms * 50 > HUNG_MS_MIN ? r_timeout_ms * 50 : HUNG_MS_MIN;
	if (sha1_hex(script, sizeof script - 1, script_sha) != 0) {
		log_err("redis: cannot hash the rate-limit script; limiting locally");
		return;
	}
	if (!strncmp(url, "unix://", 7)) {
		const char *p = url + 7, *q = strchr(p, '?');
		r_unix = q ? strndup(p, (size_t)(q - p)) : strdup(p);
		if (q && !strncmp(q, "?db=", 4))
			r_db = atoi(q + 4);
		r_enabled = r_unix != NULL;
	} else if (!strncmp(url, "redis://", 8)) {
		const char *p = url + 8, *at = strrchr(p, '@');
		if (at) {
			const char *colon = memchr(p, ':', (size_t)(at - p));
			const char *pw = colon ? colon + 1 : p;
			r_pass = strndup(pw, (size_t)(at - pw));
			p = at + 1;
		}
		const char *end = p + strcspn(p, "/");
		char host[256];
		const char *hs = p, *he;
		if (*p == '[') {               /* [v6]:port */
			hs = p + 1;
			he = memchr(hs, ']', (size_t)(end - hs));
			if (!he)
				he = end;
			p = he < end ? he + 1 : end;
		} else {
			he = memchr(p, ':', (size_t)(end - p));
			if (!he)
				he = end;
			p = he;
		}
		if (p < end && *p == ':')
			r_port = atoi(p + 1);
		if (*end == '/' && end[1])
			r_db = atoi(end + 1);
		snprintf(host, sizeof host, "%.*s", (int)(he - hs), hs);
		if (!*host)
			snprintf(host, sizeof host, "127.0.0.1");
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
		int rc = getaddrinfo(host, NULL, &hints, &ai);
		if (rc != 0 || !ai) {
			log_err("redis: cannot resolve %s (%s); rate limits stay local", host,
			        gai_strerror(rc));
			return;
		}
		const void *a = ai->ai_family == AF_INET6
			? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
			: (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		inet_ntop(ai->ai_family, a, r_host, sizeof r_host);
		freeaddrinfo(ai);
		r_enabled = 1;
	}
	if (r_enabled && r_unix)
		log_info("rate limits are cluster-wide through Redis at %s (db %d, timeout %ums)",
		         r_unix, r_db, r_timeout_ms);
	else if (r_enabled)
		log_info("rate limits are cluster-wide through Redis at %s port %d (db %d, timeout %ums)",
		         r_host, r_port, r_db, r_timeout_ms);
}

int rl_redis_enabled(void) { return r_enabled; }

/* ---------------------------------------------------- hiredis event hooks */
static void io_cb(int fd, unsigned events, void *arg)
{
	rconn *c = arg;
	redisAsyncContext *ac = c->ac;
	(void)fd;
	if (!ac)
		return;
	if (events & (GW_IO_READ | GW_IO_ERROR))
		redisAsyncHandleRead(ac);
	/* the read may have freed the context (error, EOF) */
	if (c->ac == ac && (events & (GW_IO_WRITE | GW_IO_ERROR)) && (c->ev & GW_IO_WRITE))
		redisAsyncHandleWrite(ac);
}

static void ev_set(rconn *c, unsigned ev)
{
	c->ev = ev;
	if (c->fd >= 0 && gw_loop_watch(c->fd, ev, io_cb, c) != 0)
		log_warn("redis: cannot watch its socket: %m");
}

static void ev_add_read(void *p)  { rconn *c = p; ev_set(c, c->ev | GW_IO_READ); }
static void ev_del_read(void *p)  { rconn *c = p; ev_set(c, c->ev & ~GW_IO_READ); }
static void ev_add_write(void *p) { rconn *c = p; ev_set(c, c->ev | GW_IO_WRITE); }
static void ev_del_write(void *p) { rconn *c = p; ev_set(c, c->ev & ~GW_IO_WRITE); }

static void backoff_next(rconn *c)
{
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
}

/* the context is being freed (error, EOF, refused, or by us): its pending
 * callbacks have already run with a NULL reply */
static void ev_cleanup(void *p)
{
	rconn *c = p;
	if (c->fd >= 0)
		gw_loop_unwatch(c->fd);
	c->fd = -1;
	c->ev = 0;
	c->ac = NULL;
	backoff_next(c);
	c->retry_at = gw_now_ms() + c->backoff_ms;
	if (!c->down_logged) {
		log_warn("redis: worker %d lost its connection; rate limits are local until it is "
		         "back (next try in %ums)", c->worker, c->backoff_ms);
		c->down_logged = 1;
	}
	c->connected = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	rconn *c = ac->ev.data;
	if (status != REDIS_OK) {
		atomic_fetch_add_explicit(&gw_rl_redis_errors, 1, memory_order_relaxed);
		log_debug("redis: worker %d cannot connect: %s", c->worker, ac->errstr);
		return;                         /* hiredis frees it: ev_cleanup */
	}
	c->connected = 1;
	c->backoff_ms = 0;
	if (c->down_logged)
		log_info("redis: worker %d connected again", c->worker);
	c->down_logged = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	rconn *c = ac->ev.data;
	if (status != REDIS_OK) {
		atomic_fetch_add_explicit(&gw_rl_redis_errors, 1, memory_order_relaxed);
		log_debug("redis: worker %d disconnected: %s", c->worker, ac->errstr);
	}
}

static void setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *rp = reply;
	(void)ac;
	if (rp && rp->type == REDIS_REPLY_ERROR)
		log_err("redis: %s failed: %s", (const char *)priv, rp->str);
}

/* ------------------------------------------------------------- commands */
static void timer_cb(void *arg);
static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

static rconn *conn_get(int worker)
{
	if (worker < 0 || worker >= MAX_WORKERS)
		return NULL;
	rconn *c = conns[worker];
	if (!c) {
		c = calloc(1, sizeof *c);
		if (!c)
			return NULL;
		c->worker = worker;
		c->fd = -1;
		c->timer = gw_timer_new(timer_cb, c);
		if (!c->timer) {
			free(c);
			return NULL;
		}
		conns[worker] = c;
	}
	return c;
}

static int conn_open(rconn *c)
{
	redisAsyncContext *ac = r_unix ? redisAsyncConnectUnix(r_unix)
	                               : redisAsyncConnect(r_host, r_port);
	if (!ac || ac->err) {
		if (ac) {
			log_debug("redis: worker %d cannot connect: %s", c->worker, ac->errstr);
			redisAsyncFree(ac);
		}
		atomic_fetch_add_explicit(&gw_rl_redis_errors, 1, memory_order_relaxed);
		backoff_next(c);
		c->retry_at = gw_now_ms() + c->backoff_ms;
		if (!c->down_logged) {
			log_warn("redis: worker %d cannot connect; rate limits are local until it can "
			         "(next try in %ums)", c->worker, c->backoff_ms);
			c->down_logged = 1;
		}
		return -1;
	}
	c->ac = ac;
	c->fd = ac->c.fd;
	c->ev = 0;
	ac->ev.data = c;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* queued before the first decision; Redis runs them in order */
	if (r_pass)
		redisAsyncCommand(ac, setup_reply, (void *)"AUTH", "AUTH %s", r_pass);
	if (r_db)
		redisAsyncCommand(ac, setup_reply, (void *)"SELECT", "SELECT %d", r_db);
	redisAsyncCommand(ac, setup_reply, (void *)"SCRIPT LOAD", "SCRIPT LOAD %s", script);
	return 0;
}

static int send_op(rconn *c, rl_redis_op *op)
{
	if (op->retried)
		return redisAsyncCommand(c->ac, reply_cb, op, "EVAL %s 1 %b %s %s %s", script, op->key,
		                         op->klen, op->T, op->L, op->burst);
	return redisAsyncCommand(c->ac, reply_cb, op, "EVALSHA %s 1 %b %s %s %s", script_sha,
	                         op->key, op->klen, op->T, op->L, op->burst);
}

static void arm(rconn *c, uint64_t due)
{
	if (!c->timer_due || due < c->timer_due) {
		c->timer_due = due;
		gw_timer_set(c->timer, due);
	}
}

static void unlink_op(rconn *c, rl_redis_op *op)
{
	if (op->prev) op->prev->next = op->next; else c->head = op->next;
	if (op->next) op->next->prev = op->prev; else c->tail = op->prev;
	c->npending--;
}

/* hiredis calls this exactly once per command: with the reply, or with
 * NULL when the connection goes away */
static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	rl_redis_op *op = priv;
	rconn *c = op->c;
	redisReply *rp = reply;
	(void)ac;
	if (rp && rp->type == REDIS_REPLY_ERROR && !op->retried && !strncmp(rp->str, "NOSCRIPT", 8)
	    && c->ac) {
		op->retried = 1;
		if (send_op(c, op) == REDIS_OK)
			return;                    /* the EVAL's reply comes here again */
	}
	unlink_op(c, op);
	int ok = rp && rp->type == REDIS_REPLY_ARRAY && rp->elements == 4;
	for (size_t i = 0; ok && i < 4; i++)
		ok = rp->element[i]->type == REDIS_REPLY_INTEGER && rp->element[i]->integer >= 0;
	if (!ok && rp) {
		atomic_fetch_add_explicit(&gw_rl_redis_errors, 1, memory_order_relaxed);
		log_warn("redis: unexpected reply to the rate-limit script%s%s",
		         rp->type == REDIS_REPLY_ERROR ? ": " : "",
		         rp->type == REDIS_REPLY_ERROR ? rp->str : "");
	}
	if (ok)
		c->streak = 0;                 /* answered, even if late */
	rl_wait *w = op->w;
	uint32_t op_burst = op->nburst;
	free(op);
	if (!w)
		return;                        /* timed out or the request left */
	w->op = NULL;
	if (ok) {
		w->res.limit = op_burst;
		w->res.allowed = rp->element[0]->integer != 0;
		w->res.remaining = (uint32_t)rp->element[1]->integer;
		w->res.retry_ns = (uint64_t)rp->element[2]->integer * 1000u;
		w->res.reset_ns = (uint64_t)rp->element[3]->integer * 1000u;
		w->state = RLW_DONE;
		c->slow_ms = 0;
	} else {
		w->state = RLW_LOCAL;
	}
	gw_req_resume(w->r);
}

/* timeouts: decide locally for every waiting request past its deadline;
 * a streak of them pauses asking; a command unanswered far too long means
 * the connection is dead in a way TCP has not noticed (server stopped) */
static void timer_cb(void *arg)
{
	rconn *c = arg;
	uint64_t now = gw_now_ms();
	gw_req *resume[64];
	size_t nres = 0;
	c->timer_due = 0;
	for (rl_redis_op *op = c->head; op && op->deadline <= now && nres < 64; op = op->next) {
		if (!op->w)
			continue;
		rl_wait *w = op->w;
		op->w = NULL;
		w->op = NULL;
		w->state = RLW_LOCAL;
		resume[nres++] = w->r;
		if (++c->streak == SLOW_STREAK) {
			c->slow_ms = c->slow_ms ? c->slow_ms * 2 : BACKOFF_MIN_MS;
			if (c->slow_ms > BACKOFF_MAX_MS)
				c->slow_ms = BACKOFF_MAX_MS;
			c->local_until = now + c->slow_ms;
			log_warn("redis: worker %d: %u commands in a row took more than %ums; rate "
			         "limits are local for %ums", c->worker, c->streak, r_timeout_ms,
			         c->slow_ms);
			c->streak = 0;
		}
	}
	if (c->ac && c->head && c->head->sent_ms + r_hung_ms <= now) {
		log_warn("redis: worker %d: no answer for %ums; reconnecting", c->worker, r_hung_ms);
		redisAsyncFree(c->ac);         /* pending callbacks run, then ev_cleanup */
	}
	/* next: the first op still waited for, or the hung check */
	for (rl_redis_op *op = c->head; op; op = op->next)
		if (op->w) {
			arm(c, op->deadline);
			break;
		}
	if (c->head)
		arm(c, c->head->sent_ms + r_hung_ms);
	if (nres == 64)
		arm(c, now);                   /* more due: next iteration */
	for (size_t i = 0; i < nres; i++)
		gw_req_resume(resume[i]);
}

int rl_redis_take(rl_wait *w, gw_req *r, const char *key, size_t klen, uint64_t T,
                  uint64_t L, uint32_t burst)
{
	if (!r_enabled)
		return -1;
	rconn *c = conn_get(gw_req_worker(r));
	if (!c)
		return -1;
	uint64_t now = gw_now_ms();
	if (c->local_until > now)
		return -1;                     /* slow lately: not asking for a while */
	if (!c->ac && (now < c->retry_at || conn_open(c) != 0))
		return -1;
	if (c->npending >= MAX_PENDING)
		return -1;
	rl_redis_op *op = malloc(sizeof *op + klen);
	if (!op)
		return -1;
	memset(op, 0, sizeof *op);
	op->c = c;
	op->klen = klen;
	memcpy(op->key, key, klen);
	snprintf(op->T, sizeof op->T, "%.3f", (double)T / 1000.0);
	snprintf(op->L, sizeof op->L, "%.3f", (double)L / 1000.0);
	snprintf(op->burst, sizeof op->burst, "%u", burst);
	op->nburst = burst;
	if (send_op(c, op) != REDIS_OK) {
		free(op);
		return -1;
	}
	op->sent_ms = now;
	op->deadline = now + r_timeout_ms;
	op->w = w;
	op->prev = c->tail;
	if (c->tail) c->tail->next = op; else c->head = op;
	c->tail = op;
	c->npending++;
	w->r = r;
	w->op = op;
	w->state = RLW_PENDING;
	arm(c, op->deadline);
	return 0;
}

void rl_redis_detach(rl_wait *w)
{
	if (w->op) {
		w->op->w = NULL;
		w->op = NULL;
	}
	w->state = 0;
}

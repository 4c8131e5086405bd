/*
 * ratelimit.c — the rate_limit plugin (ratelimit.h for the algorithm).
 *
 *   rate_limit C/P [burst=N] [key=...]   (RATE_LIMIT count period_ms burst
 *                                        keykind keyname)
 *
 * Each request takes one token from the bucket of its key; a request that
 * finds none is refused at once with 429, `Retry-After` (whole seconds,
 * rounded up) and gwd's JSON error body. Every response of a limited
 * route carries `RateLimit-Limit` (the bucket size N), `RateLimit-Remaining`
 * (tokens left) and `RateLimit-Reset` (seconds until the bucket is full
 * again), the IETF draft's headers; with several rate_limit directives on
 * one route the headers describe the one with the fewest tokens left.
 *
 * Where buckets live: in the process-wide store (ratelimit_store.c), or,
 * when gateway.yaml has `redis:`, in Redis (ratelimit_redis.c): the
 * handler asks, returns GW_AGAIN, and runs again when the answer (or a
 * timeout: then the local store decides) resumes the request.
 *
 * A limit's identity — what its buckets are filed under, locally and in
 * Redis — is its route's name, its position among the route's
 * rate_limit directives, its numbers and its key: a reload that leaves a
 * limit as it was keeps every bucket; editing a limit's numbers starts it
 * afresh.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"
#include "plugin_list.h"
#include "reload.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"

/* our id for gw_req_ctx(): the position in plugin_list.h */
#define PID_(n) RL_PID_##n,
enum { GW_PLUGIN_LIST(PID_) RL_PID__COUNT };
#undef PID_

/* -------------------------------------------------------------- stores */
#define BUCKET_BYTES (16u << 20)   /* 1M buckets */
#define CONN_BYTES   (4u << 20)    /* 256k keys with requests in flight */

static rl_store *buckets, *conns;
static pthread_once_t stores_once = PTHREAD_ONCE_INIT;

static void stores_make(void)
{
	buckets = rl_store_new(BUCKET_BYTES);
	conns = rl_store_new(CONN_BYTES);
}

int rl_stores_init(char *err, size_t errlen)
{
	pthread_once(&stores_once, stores_make);
	if (!buckets || !conns) {
		snprintf(err, errlen, "out of memory for the rate-limit stores");
		return -1;
	}
	return 0;
}

rl_store *rl_buckets(void) { return buckets; }
rl_store *rl_conns(void) { return conns; }

/* ---------------------------------------------------------- request key */
static const char *put_key(gw_req *r, char kind, const char *v, size_t n, char *buf,
                           size_t cap, size_t *len)
{
	char *out = n + 1 <= cap ? buf : gw_req_alloc(r, n + 1);
	if (!out) {                    /* out of memory: count under the kind alone */
		buf[0] = kind;
		*len = 1;
		return buf;
	}
	out[0] = kind;
	memcpy(out + 1, v, n);
	*len = n + 1;
	return out;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* the decoded value of query argument name (first occurrence); 1 found */
static int query_arg(gw_req *r, const char *name, char **val, size_t *vlen)
{
	size_t qn, nn = strlen(name);
	const char *q = gw_req_query(r, &qn), *end = q + qn;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(pe - q));
		const char *ne = eq ? eq : pe;
		if ((size_t)(ne - q) == nn && memcmp(q, name, nn) == 0) {
			const char *v = eq ? eq + 1 : pe;
			size_t n = (size_t)(pe - v), k = 0;
			char *o = gw_req_alloc(r, n + 1);
			if (!o)
				return 0;
			/* decoded, so "a%20b" and "a+b" are one key, not two */
			for (size_t i = 0; i < n; i++) {
				int h1, h2;
				if (v[i] == '+') {
					o[k++] = ' ';
				} else if (v[i] == '%' && i + 2 < n && (h1 = hexval(v[i + 1])) >= 0 &&
				           (h2 = hexval(v[i + 2])) >= 0) {
					o[k++] = (char)(h1 * 16 + h2);
					i += 2;
				} else {
					o[k++] = v[i];
				}
			}
			*val = o;
			*vlen = k;
			return 1;
		}
		q = pe + 1;
	}
	return 0;
}

/* cookie name's value from the Cookie header ("a=1; b=2"); 1 found */
static int cookie_val(gw_req *r, const char *name, const char **val, size_t *vlen)
{
	const char *h;
	size_t hn, nn = strlen(name);
	if (!gw_req_header(r, "Cookie", &h, &hn))
		return 0;
	const char *p = h, *end = h + hn;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *pe = semi ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		if (eq && (size_t)(eq - p) == nn && memcmp(p, name, nn) == 0) {
			const char *v = eq + 1;
			size_t n = (size_t)(pe - v);
			while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
				v++;
				n -= 2;
			}
			*val = v;
			*vlen = n;
			return 1;
		}
		p = pe;
	}
	return 0;
}

const char *rl_req_key(gw_req *r, uint32_t kind, const char *name, char *buf, size_t cap,
                       size_t *len)
{
	const char *v;
	size_t n;
	char *dv;
	switch (kind) {
	case GWB_KEY_ROUTE:
		return put_key(r, 'r', "", 0, buf, cap, len);
	case GWB_KEY_PATH:
		v = gw_req_path(r, &n);
		return put_key(r, 'p', v, n, buf, cap, len);
	case GWB_KEY_HEADER:
		if (gw_req_header(r, name, &v, &n))
			return put_key(r, 'h', v, n, buf, cap, len);
		break;
	case GWB_KEY_QUERY:
		if (query_arg(r, name, &dv, &n))
			return put_key(r, 'q', dv, n, buf, cap, len);
		break;
	case GWB_KEY_COOKIE:
		if (cookie_val(r, name, &v, &n))
			return put_key(r, 'c', v, n, buf, cap, len);
		break;
	case GWB_KEY_CONSUMER:
		/* set by an auth directive that ran before this one; without
		 * one the request counts by client address */
		if ((v = gw_req_consumer(r, &n)) != NULL)
			return put_key(r, 'u', v, n, buf, cap, len);
		break;
	default:
		break;
	}
	v = gw_req_client_ip_str(r);
	return put_key(r, 'i', v, strlen(v), buf, cap, len);
}

/* ------------------------------------------------------------- limits */
static const char *const kind_name[GWB_KEY__COUNT] = {
	[GWB_KEY_CLIENT_IP] = "client_ip", [GWB_KEY_HEADER] = "header",
	[GWB_KEY_QUERY] = "query", [GWB_KEY_COOKIE] = "cookie",
	[GWB_KEY_CONSUMER] = "consumer", [GWB_KEY_ROUTE] = "route", [GWB_KEY_PATH] = "path",
};

static int cmp_pc(const void *a, const void *b)
{
	const rl_limit *x = a, *y = b;
	return x->pc < y->pc ? -1 : x->pc > y->pc;
}

int rl_limits_build(const gwb_table *t, unsigned op, rl_limits **out, char *err, size_t errlen)
{
	const uint32_t *code = gwb_code(t);
	uint32_t nr = gwb_nroutes(t);
	size_t n = 0, cap = 0;
	rl_limits *ls = NULL;
	for (uint32_t ri = 0; ri < nr; ri++) {
		const gwb_route *rt = gwb_route_at(t, ri);
		const char *rname = gwb_str(t, rt->name, NULL);
		uint32_t idx = 0;
		for (uint32_t pc = rt->phase_pc[0]; pc < rt->phase_pc[GWB_PH__COUNT];) {
			const uint32_t *in = code + pc;
			uint32_t o = in[0] & 0xff;
			const gwb_opinfo *oi = gwb_opinfo_get(o);
			if (!oi)
				break;                  /* cannot happen in a verified table */
			if (o == op) {
				if (n == cap) {
					cap = cap ? cap * 2 : 8;
					rl_limits *nl = realloc(ls, sizeof *ls + cap * sizeof ls->v[0]);
					if (!nl)
						goto oom;
					ls = nl;
				}
				rl_limit *l = &ls->v[n];
				memset(l, 0, sizeof *l);
				l->pc = pc;
				if (op == GWB_OP_RATE_LIMIT) {
					l->count = in[1];
					l->period_ms = in[2];
					l->burst = in[3];
					l->kind = in[4] < GWB_KEY__COUNT ? in[4] : GWB_KEY_CLIENT_IP;
					l->kname = gwb_str(t, in[5], NULL);
					rl_gcra_params(l->count, l->period_ms, l->burst, &l->T, &l->L);
				} else {
					/* conn_limit: N is not part of the identity, so a
					 * reload that changes N keeps the requests in flight
					 * counted */
					l->count = in[1];
					l->kind = in[2] < GWB_KEY__COUNT ? in[2] : GWB_KEY_CLIENT_IP;
					l->kname = gwb_str(t, in[3], NULL);
				}
				n++;
				char id[512];
				int k = snprintf(id, sizeof id, "gwrl:%s:%u:%u/%ums:%u:%s%s%s:", rname, idx,
				                 l->count, l->period_ms, l->burst, kind_name[l->kind],
				                 *l->kname ? "=" : "", l->kname);
				if (op != GWB_OP_RATE_LIMIT)
					k = snprintf(id, sizeof id, "gwcl:%s:%u:%s%s%s:", rname, idx,
					             kind_name[l->kind], *l->kname ? "=" : "", l->kname);
				if (k < 0 || (size_t)k >= sizeof id) {
					/* a route name or key name this long is unusual: name
					 * the limit by a stable hash of the full text */
					size_t rn = strlen(rname), kn = strlen(l->kname);
					uint64_t h = rl_hash_stable(rname, rn) ^ rl_hash_stable(l->kname, kn) * 31;
					k = snprintf(id, sizeof id, "gw%cl:#%016llx:%u:%u/%ums:%u:%u:",
					             op == GWB_OP_RATE_LIMIT ? 'r' : 'c', (unsigned long long)h,
					             idx, l->count, l->period_ms, l->burst, l->kind);
				}
				l->id = rl_hash(0, id, (size_t)k);
				l->rkey = malloc((size_t)k);
				if (!l->rkey)
					goto oom;
				memcpy(l->rkey, id, (size_t)k);
				l->rklen = (size_t)k;
				idx++;
			}
			pc += 1 + oi->nargs;
		}
	}
	if (!ls && !(ls = malloc(sizeof *ls)))
		goto oom;
	ls->n = n;
	qsort(ls->v, n, sizeof ls->v[0], cmp_pc);
	*out = ls;
	return 0;
oom:
	if (ls) {
		ls->n = n;
		rl_limits_free(ls);
	}
	snprintf(err, errlen, "out of memory");
	return -1;
}

const rl_limit *rl_limits_find(const rl_limits *ls, uint32_t pc)
{
	size_t lo = 0, hi = ls ? ls->n : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ls->v[mid].pc == pc)
			return &ls->v[mid];
		if (ls->v[mid].pc < pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void rl_limits_free(rl_limits *ls)
{
	if (!ls)
		return;
	for (size_t i = 0; i < ls->n; i++)
		free(ls->v[i].rkey);
	free(ls);
}

/* the Redis key of a request's bucket: the limit's prefix and the request
 * key, readable (redis-cli --scan --pattern 'gwrl:*'); a long value (a
 * header of kilobytes) is replaced by a stable hash of it */
static char *rl_redis_key(gw_req *r, const rl_limit *lim, const char *key, size_t klen,
                          size_t *len)
{
	char hb[24];
	if (klen > 128) {
		int k = snprintf(hb, sizeof hb, "%c#%016llx", key[0],
		                 (unsigned long long)rl_hash_stable(key, klen));
		key = hb;
		klen = (size_t)k;
	}
	char *rk = gw_req_alloc(r, lim->rklen + klen);
	if (!rk)
		return NULL;
	memcpy(rk, lim->rkey, lim->rklen);
	memcpy(rk + lim->rklen, key, klen);
	*len = lim->rklen + klen;
	return rk;
}

/* ------------------------------------------------------ per-table state */
typedef struct rl_ctx {
	uint32_t pc;               /* the instruction waiting for Redis */
	rl_wait w;
	int hdr_set;               /* RateLimit-* headers already set ... */
	uint32_t hdr_remaining;    /* ... for a limit with this many left */
} rl_ctx;

static int rl_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	static int redis_done;
	if (rl_stores_init(err, errlen) != 0)
		return -1;
	if (!redis_done) {
		/* cluster mode is set up once, from the configuration gwd
		 * started with (reload_config() is NULL under gwd -t) */
		const gwd_config *cfg = reload_config();
		if (cfg && cfg->redis_url)
			rl_redis_configure(cfg->redis_url, cfg->redis_timeout_ms);
		redis_done = cfg != NULL;
	}
	rl_limits *ls;
	if (rl_limits_build(t, GWB_OP_RATE_LIMIT, &ls, err, errlen) != 0)
		return -1;
	*state = ls;
	return 0;
}

static void rl_dispose(void *state)
{
	rl_limits_free(state);
}

/* v in decimal at the end of b[20]; returns where it starts (the headers
 * below are on every rate-limited request: snprintf was ~270
 * instructions each) */
static const char *dec(char b[20], uint64_t v, size_t *n)
{
	char *p = b + 20;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	*n = (size_t)(b + 20 - p);
	return p;
}

static void set_headers(gw_req *r, rl_ctx *cx, const rl_result *res)
{
	if (cx && cx->hdr_set && res->allowed && res->remaining >= cx->hdr_remaining)
		return;
	char b[20];
	size_t n;
	const char *v = dec(b, res->limit, &n);
	gw_resp_set_header(r, "RateLimit-Limit", v, n);
	v = dec(b, res->remaining, &n);
	gw_resp_set_header(r, "RateLimit-Remaining", v, n);
	v = dec(b, rl_ceil_s(res->reset_ns), &n);
	gw_resp_set_header(r, "RateLimit-Reset", v, n);
	if (!res->allowed) {
		v = dec(b, rl_ceil_s(res->retry_ns), &n);
		gw_resp_set_header(r, "Retry-After", v, n);
	}
	if (cx) {
		cx->hdr_set = 1;
		cx->hdr_remaining = res->remaining;
	}
}

static rl_ctx *get_ctx(gw_req *r)
{
	void **slot = gw_req_ctx(r, RL_PID_ratelimit);
	if (!*slot) {
		rl_ctx *cx = gw_req_alloc(r, sizeof *cx);
		if (cx)
			memset(cx, 0, sizeof *cx);
		*slot = cx;
	}
	return *slot;
}

static int rl_handler(gw_req *r, const uint32_t *insn, void *state)
{
	const rl_limits *ls = state;
	uint32_t pc = (uint32_t)(insn - gwb_code(gw_req_table(r)));
	const rl_limit *lim = rl_limits_find(ls, pc);
	if (!lim)
		return GW_OK;                /* cannot happen: init saw every one */
	rl_ctx *cx = get_ctx(r);
	rl_result res;
	int asked = 0;
	if (cx && cx->w.state && cx->pc == pc) {
		/* run again: Redis answered (DONE), or could not (LOCAL) */
		if (cx->w.state == RLW_PENDING)
			return GW_AGAIN;
		asked = cx->w.state;
		res = cx->w.res;
		cx->w.state = 0;
	}
	if (asked != RLW_DONE) {
		char kbuf[256];
		size_t klen;
		const char *key = rl_req_key(r, lim->kind, lim->kname, kbuf, sizeof kbuf, &klen);
		if (rl_redis_enabled()) {
			if (!asked && cx) {
				size_t rklen;
				char *rk = rl_redis_key(r, lim, key, klen, &rklen);
				cx->pc = pc;
				if (rk && rl_redis_take(&cx->w, r, rk, rklen, lim->T, lim->L, lim->burst) == 0)
					return GW_AGAIN;
			}
			atomic_fetch_add_explicit(&gw_rl_redis_fallbacks, 1, memory_order_relaxed);
		}
		uint64_t h = rl_hash(lim->id, key, klen);
		rl_store_take(buckets, h, gw_now_ms() * 1000000ull, lim->T, lim->L, lim->burst, &res);
	}
	set_headers(r, cx, &res);
	metrics_count_ratelimit(r, res.allowed);
	if (!res.allowed) {
		atomic_fetch_add_explicit(&gw_rl_limited, 1, memory_order_relaxed);
		return 429;
	}
	return GW_OK;
}

static void rl_request_done(gw_req *r, void *state)
{
	(void)state;
	rl_ctx *cx = *gw_req_ctx(r, RL_PID_ratelimit);
	if (cx && cx->w.state == RLW_PENDING)
		rl_redis_detach(&cx->w);
}

static const uint8_t rl_ops[] = { GWB_OP_RATE_LIMIT };

const gw_plugin gw_plugin_ratelimit = {
	.name = "rate_limit",
	.ops = rl_ops, .nops = sizeof rl_ops,
	.init = rl_init,
	.handler = rl_handler,
	.request_done = rl_request_done,
	.dispose = rl_dispose,
};

/*
 * logctl.c — the log-phase directives `log off`, `log sample=F` (operand:
 * parts per million) and `tag "name"`. They decide nothing about the
 * answer; they leave flags and labels on the request for the access log
 * and metrics (plugin.h: gw_req_log_off, gw_req_tags), which read them
 * after the log phase (in their request_done hooks).
 *
 *  - `log off`: no access-log line; metrics still count the request.
 *  - `log sample=F`: each request is kept with probability F, drawn from a
 *    per-thread xorshift64* generator — not from the request id, which a
 *    client may choose (and so choose not to be logged). Several sample
 *    directives on one route each draw (probabilities multiply).
 *  - `tag`: labels in declaration order, a repeated one once. The strings
 *    belong to the table: a reader that keeps them past the request must
 *    copy them.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "content.h"

#define LOGCTL_MAX_TAGS 16

typedef struct logctx {
	int off;
	size_t ntags;
	const char *tags[LOGCTL_MAX_TAGS];
} logctx;

static _Thread_local uint64_t rng_state;

uint64_t logctl_rand(void)
{
	uint64_t x = rng_state;
	if (!x) {                     /* seed once per thread */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&rng_state;
		x = x ? x : 0x9e3779b97f4a7c15ull;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

int logctl_sampled(uint64_t rnd, uint32_t ppm)
{
	if (ppm >= 1000000u)
		return 1;
	/* the top 53 bits scaled to [0, 1e6): no modulo bias worth naming */
	uint64_t v = (uint64_t)((double)(rnd >> 11) * (1e6 / 9007199254740992.0));
	return v < ppm;
}

static logctx *ctx(gw_req *r)
{
	void **slot = gw_req_ctx(r, CTP_ID_logctl);
	if (!*slot) {
		logctx *c = gw_req_alloc(r, sizeof *c);
		if (!c)
			return NULL;
		memset(c, 0, sizeof *c);
		*slot = c;
	}
	return *slot;
}

static int logctl_handler(gw_req *r, const uint32_t *insn, void *state)
{
	(void)state;
	logctx *c = ctx(r);
	if (!c)
		return GW_OK;                 /* out of memory: log as usual */
	switch (insn[0] & 0xff) {
	case GWB_OP_LOG_OFF:
		c->off = 1;
		break;
	case GWB_OP_LOG_SAMPLE:
		if (!logctl_sampled(logctl_rand(), insn[1]))
			c->off = 1;
		break;
	case GWB_OP_TAG: {
		const char *t = gwb_str(gw_req_table(r), insn[1], NULL);
		for (size_t i = 0; i < c->ntags; i++)
			if (!strcmp(c->tags[i], t))
				return GW_OK;
		if (c->ntags < LOGCTL_MAX_TAGS)
			c->tags[c->ntags++] = t;
		break;
	}
	default:
		return GW_DECLINED;
	}
	return GW_OK;
}

int gw_req_log_off(gw_req *r)
{
	const logctx *c = *gw_req_ctx(r, CTP_ID_logctl);
	return c && c->off;
}

size_t gw_req_tags(gw_req *r, const char *const **tags)
{
	const logctx *c = *gw_req_ctx(r, CTP_ID_logctl);
	if (tags)
		*tags = c ? c->tags : NULL;
	return c ? c->ntags : 0;
}

static const uint8_t logctl_ops[] = { GWB_OP_LOG_OFF, GWB_OP_LOG_SAMPLE, GWB_OP_TAG };

const gw_plugin gw_plugin_logctl = {
	.name = "logctl",
	.ops = logctl_ops, .nops = sizeof logctl_ops,
	.handler = logctl_handler,
};

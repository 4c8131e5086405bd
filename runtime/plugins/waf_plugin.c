/*
 * waf_plugin.c — `waf CLASS... [mode=block|detect] [body_limit=SIZE]` and
 * `waf rule "name" [in=args|headers|body|path] regex "re"` (access phase),
 * on the detection engine of waf.h.
 *
 * What is inspected, from the plugin API:
 *   path      the raw request path (gw_req_raw_path: still encoded, its
 *             "../" not resolved yet, which is what traversal detection
 *             needs), and the current path too when normalisation or a
 *             rewrite made it differ;
 *   args      every query argument, names and values;
 *   headers   Cookie (each pair), User-Agent, Referer;
 *   body      form (x-www-form-urlencoded), JSON and text bodies: the
 *             first body_limit bytes (64 KiB unless the directive says
 *             otherwise), read before anything is proxied through
 *             gw_req_body_peek (the handler waits with GW_AGAIN while gwd
 *             buffers them); bytes past the limit are proxied uninspected.
 *             Multipart and binary bodies are not inspected.
 * Parts other than the body are inspected first, so a request whose URL
 * is an attack is refused before its body is read.
 *
 * A hit answers 403 (gwd's JSON error body) whatever the class
 * (interfaces.md), or with mode=detect is only logged. Each hit is logged
 * at warn level with the rule id, the class, the part, an excerpt of the
 * normalised text and the route with its file:line, and counted in
 * metrics (gw_waf_blocks_total / gw_waf_detections_total, metrics.h).
 * Custom rules always block; their hits are logged with the rule's name.
 *
 * Per worker thread: one waf_scratch (the engine allocates nothing per
 * request) and one PCRE2 match data for the rules, made on first use and
 * freed when the thread exits.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "keyfile.h"
#include "log.h"
#include "metrics.h"
#include "waf.h"

#define WAFP_RULE_BODY_DEFAULT 65536u   /* body bytes rules see without a waf directive */
#define WAFP_VALUE_MAX_CAP (1u << 20)   /* longest value inspected whole */
#define WAFP_ERR_MAX 256
#define WAFP_UNSET UINT32_MAX           /* rule_body: the route has no waf directive */

/* -------------------------------------------------- per-thread scratch */
typedef struct wafp_tls {
	waf_scratch *sc;
	size_t value_max;
	pcre2_match_data *md;
} wafp_tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;
static _Thread_local wafp_tls *tls;

static void tls_free(void *p)
{
	wafp_tls *t = p;
	if (!t)
		return;
	waf_scratch_free(t->sc);
	pcre2_match_data_free(t->md);
	free(t);
}

static void tls_key_init(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

/* this thread's scratch, large enough for value_max; NULL out of memory */
static wafp_tls *tls_get(size_t value_max)
{
	wafp_tls *t = tls;
	if (t && t->value_max >= value_max)
		return t;
	pthread_once(&tls_once, tls_key_init);
	if (!tls_key_ok)
		return NULL;
	if (!t) {
		t = calloc(1, sizeof *t);
		/* one pair: a rule only needs where its match starts */
		if (!t || !(t->md = pcre2_match_data_create(1, NULL))) {
			free(t);
			return NULL;
		}
		if (pthread_setspecific(tls_key, t) != 0) {
			tls_free(t);
			return NULL;
		}
		tls = t;
	}
	waf_scratch *sc = waf_scratch_new(value_max);
	if (!sc)
		return NULL;
	waf_scratch_free(t->sc);
	t->sc = sc;
	t->value_max = value_max;
	return t;
}

/* ---------------------------------------------------------------- state */
typedef struct wafp_state {
	uint32_t nroutes;
	uint32_t *rule_body;   /* per route: body bytes `waf rule ... in=body` sees
	                        * (the largest body_limit of its waf directives) */
	size_t value_max;      /* scratch size for this table */
} wafp_state;

static void wafp_dispose(void *state)
{
	wafp_state *st = state;
	if (!st)
		return;
	free(st->rule_body);
	free(st);
}

/* a route's rules see as much body as its largest waf directive inspects */
static int note_waf(const gwb_table *t, uint32_t route, const uint32_t *insn, void *arg)
{
	wafp_state *st = arg;
	(void)t;
	uint32_t lim = insn[3];
	if (st->rule_body[route] == WAFP_UNSET || lim > st->rule_body[route])
		st->rule_body[route] = lim;
	if (lim > st->value_max)
		st->value_max = lim < WAFP_VALUE_MAX_CAP ? lim : WAFP_VALUE_MAX_CAP;
	return 0;
}

static int check_rule(const gwb_table *t, uint32_t route, const uint32_t *insn, void *arg)
{
	char *err = arg;
	if (gwb_regex_code(t, insn[3]))
		return 0;
	int n = kf_route_where(t, route, err, WAFP_ERR_MAX);
	if (n >= 0 && n < WAFP_ERR_MAX)
		snprintf(err + n, WAFP_ERR_MAX - (size_t)n, ": waf rule %s: regex not compiled",
		         gwb_str(t, insn[1], NULL));
	return -1;
}

static int wafp_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	wafp_state *st = calloc(1, sizeof *st);
	if (!st)
		goto oom;
	st->nroutes = gwb_nroutes(t);
	st->rule_body = malloc((st->nroutes ? st->nroutes : 1) * sizeof *st->rule_body);
	if (!st->rule_body)
		goto oom;
	for (uint32_t i = 0; i < st->nroutes; i++)
		st->rule_body[i] = WAFP_UNSET;
	st->value_max = WAF_VALUE_MAX_DEFAULT;
	kf_each_op(t, GWB_OP_WAF, note_waf, st);
	char rerr[WAFP_ERR_MAX];
	if (kf_each_op(t, GWB_OP_WAF_RULE, check_rule, rerr)) {
		snprintf(err, errlen, "%s", rerr);
		wafp_dispose(st);
		return -1;
	}
	*state = st;
	return 0;
oom:
	wafp_dispose(st);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ------------------------------------------------------------- requests */
/* path, query and the selected headers; the body is added separately */
static void fill_input(gw_req *r, waf_input *in, waf_scratch *sc)
{
	memset(in, 0, sizeof *in);
	in->scratch = sc;
	in->path = gw_req_raw_path(r, &in->path_len);
	in->query = gw_req_query(r, &in->query_len);
	if (!gw_req_header(r, "Cookie", &in->cookie, &in->cookie_len))
		in->cookie_len = 0;
	if (!gw_req_header(r, "User-Agent", &in->user_agent, &in->user_agent_len))
		in->user_agent_len = 0;
	if (!gw_req_header(r, "Referer", &in->referer, &in->referer_len))
		in->referer_len = 0;
}

/* the current path, when it is not the raw one (decoded, dot segments
 * resolved, rewritten): inspected too */
static int other_path(gw_req *r, const waf_input *in, waf_input *p)
{
	size_t n;
	const char *s = gw_req_path(r, &n);
	if (n == in->path_len && !memcmp(s, in->path, n))
		return 0;
	memset(p, 0, sizeof *p);
	p->scratch = in->scratch;
	p->path = s;
	p->path_len = n;
	return 1;
}

static enum waf_body_type body_type(gw_req *r)
{
	const char *ct;
	size_t n;
	if (!gw_req_header(r, "Content-Type", &ct, &n))
		return WAF_BODY_NONE;
	return waf_body_type_of(ct, n);
}

/* log (and count) a hit; the answer: 403, or GW_OK in detect mode */
static int verdict(gw_req *r, const waf_hit *h, int detect)
{
	char where[256];
	kf_route_where(gw_req_table(r), gw_req_route(r), where, sizeof where);
	/* rule_id and class_name are static strings or table strings (a
	 * custom rule's name): they outlive the request, as metrics needs */
	metrics_count_waf(r, h->rule_id, h->class_name, !detect);
	log_warn("waf %s request %s: class=%s rule=%s part=%s%s%s excerpt=\"%s\" %s",
	         detect ? "detected (mode=detect, let through)" : "blocked", gw_req_id(r),
	         h->class_name, h->rule_id, h->part, h->detail[0] ? " fingerprint=" : "",
	         h->detail, h->excerpt, where);
	return detect ? GW_OK : 403;
}

/* The body's first `limit` bytes into in (body type already set).
 * 1 ready (in->body set, maybe empty), 0 wait (GW_AGAIN), -1 OOM */
static int get_body(gw_req *r, const uint32_t *insn, size_t limit, waf_input *in)
{
	const char *b;
	size_t n;
	int rc = gw_req_body_peek(r, limit, &b, &n);
	void **slot = gw_req_ctx(r, GWP_ID_waf);
	if (rc == 0) {
		*slot = (void *)insn;     /* re-run: only the body is left to see */
		return 0;
	}
	*slot = NULL;
	if (rc < 0)
		return -1;
	in->body = b;
	in->body_len = n;
	return 1;
}

static int oom(gw_req *r)
{
	log_err("waf: request %s: out of memory (refused)", gw_req_id(r));
	return 500;
}

/* WAF classes mode body_limit */
static int waf_directive(gw_req *r, const uint32_t *insn, const wafp_state *st)
{
	unsigned classes = insn[1] & WAF_ALL;
	int detect = insn[2] == GWB_WAF_DETECT;
	size_t limit = insn[3];
	wafp_tls *t = tls_get(st->value_max);
	if (!t)
		return oom(r);
	void **slot = gw_req_ctx(r, GWP_ID_waf);
	waf_input in;
	waf_hit hit;
	int rc;
	fill_input(r, &in, t->sc);
	if (*slot != insn) {          /* else: back for the body, the rest was seen */
		if (waf_inspect(&in, classes, &hit) && (rc = verdict(r, &hit, detect)) != GW_OK)
			return rc;
		waf_input p;
		if (other_path(r, &in, &p) && waf_inspect(&p, classes, &hit) &&
		    (rc = verdict(r, &hit, detect)) != GW_OK)
			return rc;
	}
	if (!limit || !gw_req_content_length(r))
		return GW_OK;
	enum waf_body_type bt = body_type(r);
	if (bt == WAF_BODY_NONE)
		return GW_OK;
	waf_input b = { .scratch = t->sc, .body_type = bt };
	if ((rc = get_body(r, insn, limit, &b)) <= 0)
		return rc ? oom(r) : GW_AGAIN;
	if (b.body_len && waf_inspect(&b, classes, &hit))
		return verdict(r, &hit, detect);
	return GW_OK;
}

/* WAF_RULE name in-mask regex */
static int waf_rule(gw_req *r, const uint32_t *insn, const wafp_state *st)
{
	const gwb_table *tab = gw_req_table(r);
	const char *name = gwb_str(tab, insn[1], NULL);
	uint32_t in_mask = insn[2];
	const void *code = gwb_regex_code(tab, insn[3]);
	wafp_tls *t = tls_get(st->value_max);
	if (!t)
		return oom(r);
	void **slot = gw_req_ctx(r, GWP_ID_waf);
	unsigned where = ((in_mask & GWB_IN_PATH) ? WAF_IN_PATH : 0) |
	                 ((in_mask & GWB_IN_ARGS) ? WAF_IN_ARGS : 0) |
	                 ((in_mask & GWB_IN_HEADERS) ? WAF_IN_HEADERS : 0);
	waf_input in;
	waf_hit hit;
	fill_input(r, &in, t->sc);
	if (*slot != insn && where) {
		if (waf_rule_match(&in, where, code, t->md, name, &hit))
			return verdict(r, &hit, 0);
		waf_input p;
		if ((where & WAF_IN_PATH) && other_path(r, &in, &p) &&
		    waf_rule_match(&p, WAF_IN_PATH, code, t->md, name, &hit))
			return verdict(r, &hit, 0);
	}
	uint32_t route = gw_req_route(r);
	size_t limit = route < st->nroutes && st->rule_body[route] != WAFP_UNSET
	               ? st->rule_body[route] : WAFP_RULE_BODY_DEFAULT;
	if (!(in_mask & GWB_IN_BODY) || !limit || !gw_req_content_length(r))
		return GW_OK;
	enum waf_body_type bt = body_type(r);
	if (bt == WAF_BODY_NONE)
		return GW_OK;
	waf_input b = { .scratch = t->sc, .body_type = bt };
	int rc = get_body(r, insn, limit, &b);
	if (rc <= 0)
		return rc ? oom(r) : GW_AGAIN;
	if (b.body_len && waf_rule_match(&b, WAF_IN_BODY, code, t->md, name, &hit))
		return verdict(r, &hit, 0);
	return GW_OK;
}

static int wafp_handler(gw_req *r, const uint32_t *insn, void *state)
{
	if ((insn[0] & 0xff) == GWB_OP_WAF)
		return waf_directive(r, insn, state);
	return waf_rule(r, insn, state);
}

static const uint8_t wafp_ops[] = { GWB_OP_WAF, GWB_OP_WAF_RULE };

const gw_plugin gw_plugin_waf = {
	.name = "waf",
	.ops = wafp_ops, .nops = sizeof wafp_ops,
	.init = wafp_init,
	.handler = wafp_handler,
	.dispose = wafp_dispose,
};

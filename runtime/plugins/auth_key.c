/*
 * auth_key.c — `auth key [header="X-API-Key"|query="k"|cookie="c"]
 * keys=file("keys.txt")`: the request must present one of the keys.
 *
 * Key file: one key per line, or `name:key` (split at the first ':', so a
 * key that contains ':' needs a name); blanks around both are trimmed;
 * lines whose first non-blank character is '#' and blank lines are
 * ignored; a duplicate key is logged and the first one kept. The consumer
 * (gw_req_consumer) of a request let in is the key's name, or for a key
 * without one "key-" and the first 8 hex digits of the key's SHA-256
 * (names something to rate-limit and log without showing the key).
 *
 * Keys are never compared with an early-exit compare: the set is a hash
 * table of the keys' SHA-256 digests, the presented key is hashed, and the
 * slot's digest is compared with CRYPTO_memcmp; which slots are probed
 * depends only on the presented key's digest, which tells an attacker
 * nothing about the stored keys.
 *
 * The file is re-read when it changes (keyfile.h: inotify + a watcher
 * thread; the new set replaces the old one atomically, requests in flight
 * keep the set they started with).
 *
 * Refusal: 401 with the JSON error body and
 *   WWW-Authenticate: Key realm="gw", header="X-API-Key"
 * (query="k" / cookie="c" for the other sources), whether the key was
 * missing or wrong.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "keyfile.h"
#include "log.h"

/* ------------------------------------------------------------- key set */
typedef struct ak_key {
	unsigned char sha[32];
	char *name;              /* consumer; NULL marks an empty slot */
	size_t nlen;
} ak_key;

typedef struct ak_set {
	size_t cap, n;           /* cap: power of two */
	ak_key *slot;
} ak_set;

static void ak_set_free(void *obj)
{
	ak_set *s = obj;
	if (!s)
		return;
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i].name);
	free(s->slot);
	free(s);
}

static size_t ak_home(const ak_set *s, const unsigned char *sha)
{
	uint64_t h;
	memcpy(&h, sha, sizeof h);
	return (size_t)h & (s->cap - 1);
}

/* the key with this digest, or NULL */
static const ak_key *ak_find(const ak_set *s, const unsigned char sha[32])
{
	if (!s->cap)
		return NULL;
	for (size_t i = ak_home(s, sha);; i = (i + 1) & (s->cap - 1)) {
		const ak_key *k = &s->slot[i];
		if (!k->name)
			return NULL;
		if (CRYPTO_memcmp(k->sha, sha, 32) == 0)
			return k;
	}
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

static void *ak_parse(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
	/* count lines first: the table is sized once, at most half full */
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += data[i] == '\n';
	ak_set *s = calloc(1, sizeof *s);
	size_t cap = 16;
	while (cap < 2 * lines)
		cap *= 2;
	if (s)
		s->slot = calloc(cap, sizeof *s->slot);
	if (!s || !s->slot) {
		ak_set_free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cap = cap;
	unsigned lineno = 0;
	for (const char *p = data, *end = data + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line = p;
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		p = nl ? nl + 1 : end;
		lineno++;
		trim(&line, &n);
		if (n == 0 || line[0] == '#')
			continue;
		const char *name = NULL, *key = line;
		size_t nn = 0, kn = n;
		const char *colon = memchr(line, ':', n);
		if (colon) {
			name = line;
			nn = (size_t)(colon - line);
			key = colon + 1;
			kn = n - nn - 1;
			trim(&name, &nn);
			trim(&key, &kn);
		}
		if (kn == 0) {
			log_warn("%s:%u: a name without a key, line ignored", path, lineno);
			continue;
		}
		unsigned char sha[32];
		kf_sha256(key, kn, sha);
		if (ak_find(s, sha)) {
			log_warn("%s:%u: duplicate key, line ignored", path, lineno);
			continue;
		}
		char *cn;
		if (nn) {
			cn = strndup(name, nn);
		} else {
			cn = malloc(13);
			if (cn)
				snprintf(cn, 13, "key-%02x%02x%02x%02x", sha[0], sha[1], sha[2], sha[3]);
		}
		if (!cn) {
			ak_set_free(s);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		size_t i = ak_home(s, sha);
		while (s->slot[i].name)
			i = (i + 1) & (s->cap - 1);
		memcpy(s->slot[i].sha, sha, 32);
		s->slot[i].name = cn;
		s->slot[i].nlen = strlen(cn);
		s->n++;
	}
	if (s->n == 0)
		log_warn("%s: no keys: every request to the routes using it gets 401", path);
	return s;
}

static const kf_kind ak_kind = { "key file", ak_parse, ak_set_free };

/* ----------------------------------------------------------- directives */
typedef struct ak_dir {
	kf_file *f;
	int src;                 /* GWB_SRC_* */
	const char *name;        /* header / query argument / cookie name */
	size_t nlen;
	char *challenge;         /* WWW-Authenticate value */
	size_t clen;
} ak_dir;

typedef struct ak_state {
	kf_map dirs;             /* operands -> ak_dir */
} ak_state;

static void ak_dispose(void *state)
{
	ak_state *st = state;
	if (!st)
		return;
	for (size_t i = 0; i < st->dirs.cap; i++) {
		ak_dir *d = st->dirs.val[i];
		if (d) {
			kf_close(d->f);
			free(d->challenge);
			free(d);
		}
	}
	kf_map_free(&st->dirs);
	free(st);
}

typedef struct ak_build {
	ak_state *st;
	char *err; size_t errlen;
} ak_build;

static int ak_add(const gwb_table *t, uint32_t route, const uint32_t *insn, void *arg)
{
	ak_build *b = arg;
	uint64_t key = kf_words_key(insn + 1, 3);
	if (kf_map_get(&b->st->dirs, key))
		return 0;
	char where[256];
	kf_route_where(t, route, where, sizeof where);
	ak_dir *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(b->err, b->errlen, "%s: out of memory", where);
		return -1;
	}
	d->src = (int)insn[1];
	d->name = gwb_str(t, insn[2], &d->nlen);
	char ferr[400];
	d->f = kf_open(gwb_str(t, insn[3], NULL), &ak_kind, ferr, sizeof ferr);
	if (!d->f) {
		snprintf(b->err, b->errlen, "%s: auth key: %s", where, ferr);
		free(d);
		return -1;
	}
	static const char *const srcname[] = { "header", "query", "cookie" };
	char q[300];
	auth_quote(d->name, q, sizeof q);
	d->clen = (size_t)snprintf(NULL, 0, "Key realm=\"gw\", %s=%s",
	                           srcname[d->src <= 2 ? d->src : 0], q);
	d->challenge = malloc(d->clen + 1);
	if (!d->challenge || kf_map_put(&b->st->dirs, key, d) < 0) {
		kf_close(d->f);
		free(d->challenge);
		free(d);
		snprintf(b->err, b->errlen, "%s: out of memory", where);
		return -1;
	}
	snprintf(d->challenge, d->clen + 1, "Key realm=\"gw\", %s=%s",
	         srcname[d->src <= 2 ? d->src : 0], q);
	return 0;
}

static int ak_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	ak_state *st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ak_build b = { st, err, errlen };
	if (kf_each_op(t, GWB_OP_AUTH_KEY, ak_add, &b)) {
		ak_dispose(st);
		return -1;
	}
	*state = st;
	return 0;
}

/* the presented key: 1 and *v,*n, or 0 when there is none */
static int ak_presented(gw_req *r, const ak_dir *d, const char **v, size_t *n)
{
	const char *h;
	size_t hn;
	switch (d->src) {
	case GWB_SRC_QUERY: {
		size_t qn;
		const char *q = gw_req_query(r, &qn);
		if (!gwb_query_find(q, qn, d->name, d->nlen, &h, &hn))
			return 0;
		size_t need = gwb_form_decode(h, hn, NULL, 0);
		char *out = gw_req_alloc(r, need + 1);
		if (!out)
			return 0;
		gwb_form_decode(h, hn, out, need + 1);
		*v = out;
		*n = need;
		return 1;
	}
	case GWB_SRC_COOKIE:
		if (!gw_req_header(r, "Cookie", &h, &hn))
			return 0;
		return gwb_cookie_find(h, hn, d->name, d->nlen, v, n);
	default:
		return gw_req_header(r, d->name, v, n);
	}
}

static int ak_handler(gw_req *r, const uint32_t *insn, void *state)
{
	ak_state *st = state;
	const ak_dir *d = kf_map_get(&st->dirs, kf_words_key(insn + 1, 3));
	if (!d)
		return 500;      /* init saw every AUTH_KEY of the table */
	const char *v;
	size_t n;
	const char *why = "missing key";
	if (ak_presented(r, d, &v, &n) && n > 0) {
		unsigned char sha[32];
		kf_sha256(v, n, sha);
		kf_ref ref;
		const ak_set *s = kf_enter(d->f, (unsigned)gw_req_worker(r), &ref);
		const ak_key *k = ak_find(s, sha);
		int rc = 0;
		if (k)
			rc = gw_req_set_consumer(r, k->name, k->nlen);
		kf_leave(&ref);
		if (k) {
			log_debug("request %s: auth key: consumer %s (route %s)", gw_req_id(r),
			          gw_req_consumer(r, NULL), auth_route_name(r));
			return rc == 0 ? GW_OK : 500;
		}
		why = "unknown key";
	}
	log_debug("request %s: auth key: %s (route %s)", gw_req_id(r), why, auth_route_name(r));
	gw_resp_set_header(r, "WWW-Authenticate", d->challenge, d->clen);
	return 401;
}

static const uint8_t ak_ops[] = { GWB_OP_AUTH_KEY };

const gw_plugin gw_plugin_auth_key = {
	.name = "auth_key",
	.ops = ak_ops, .nops = sizeof ak_ops,
	.init = ak_init,
	.handler = ak_handler,
	.dispose = ak_dispose,
};

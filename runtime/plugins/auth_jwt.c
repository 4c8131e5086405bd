/*
 * auth_jwt.c — `auth jwt secret=env("N")|file("f")|"literal" |
 * key=file("pub.pem") [alg=...] [header=|cookie=|query=] [leeway=]
 * [iss=] [aud=] [claims="sub:X-User,..."]` (verification: jwt.h).
 *
 * The token: `Authorization: Bearer TOKEN` (scheme any case) by default;
 * header="X": that header's value (a "Bearer " prefix is accepted);
 * cookie="c" / query="q": that cookie / query argument.
 *
 * Secrets and keys:
 *  - secret="literal": as written in the rules.
 *  - secret=env("NAME"): read from gwd's environment when the table is
 *    loaded. An unset or empty variable refuses the table (the old table
 *    stays, the log names the route and the variable): a gateway must not
 *    start accepting tokens signed with an empty key, and a mistake found
 *    at reload is better than 500s for every request.
 *  - secret=file("f") and key=file("pub.pem"): read at table load and
 *    again when they change (keyfile.h). A secret file's trailing
 *    whitespace (the newline an editor adds) is not part of the secret. A
 *    key file holds a PEM public key (SPKI or PKCS#1) or a certificate;
 *    its type must suit the allowed algorithms (RSA for RS256, EC P-256 for
 *    ES256) or the table is refused.
 *
 * A token that verifies: its `sub` (when a string) becomes the consumer,
 * and each claim named in claims= is set as its request header (strings
 * as they are, other values as compact JSON). The headers named in
 * claims= are removed from the request first, so a client cannot supply
 * them itself when its token lacks the claim.
 *
 * Refusals are 401 with the JSON error body and
 *   no token:       WWW-Authenticate: Bearer realm="gw"
 *   a bad token:    WWW-Authenticate: Bearer realm="gw", error="invalid_token",
 *                   error_description="token expired"   (jwt_strerror)
 * (RFC 6750 3).
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "jwt.h"
#include "keyfile.h"
#include "log.h"

/* ------------------------------------------------------- watched files */
/* a secret file's contents: the prepared HMAC key */
static void *aj_secret_parse(const char *path, const char *data, size_t len, char *err,
                             size_t errlen)
{
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' ||
	               data[len - 1] == ' ' || data[len - 1] == '\t'))
		len--;
	if (len == 0) {
		snprintf(err, errlen, "the secret is empty");
		return NULL;
	}
	jwt_hmac *h = jwt_hmac_new((const unsigned char *)data, len);
	if (!h)
		snprintf(err, errlen, "cannot set up HMAC with this secret");
	return h;
}

static void aj_secret_free(void *obj) { jwt_hmac_free(obj); }

static void *aj_pem_parse(const char *path, const char *data, size_t len, char *err,
                          size_t errlen)
{
	return jwt_pkey_from_pem(data, len, err, errlen);
}

static void aj_pem_free(void *obj) { EVP_PKEY_free(obj); }

static const kf_kind aj_secret_kind = { "jwt secret file", aj_secret_parse, aj_secret_free };
static const kf_kind aj_pem_kind = { "jwt key file", aj_pem_parse, aj_pem_free };

/* ----------------------------------------------------------- directives */
typedef struct aj_claim { char *claim, *header; } aj_claim;

typedef struct aj_dir {
	uint32_t algs;
	jwt_hmac *hmac;           /* literal / env secret */
	kf_file *f;               /* secret file or PEM key */
	int pem;
	int tok_src;              /* GWB_SRC_* */
	const char *tok_name;     /* "" = Authorization: Bearer */
	size_t tok_nlen;
	uint32_t leeway;
	char *iss, *aud;          /* NULL: not checked */
	aj_claim *claims;
	size_t nclaims;
} aj_dir;

typedef struct aj_state { kf_map dirs; } aj_state;

static void aj_dir_free(aj_dir *d)
{
	if (!d)
		return;
	jwt_hmac_free(d->hmac);
	kf_close(d->f);
	free(d->iss);
	free(d->aud);
	for (size_t i = 0; i < d->nclaims; i++) {
		free(d->claims[i].claim);
		free(d->claims[i].header);
	}
	free(d->claims);
	free(d);
}

static void aj_dispose(void *state)
{
	aj_state *st = state;
	if (!st)
		return;
	for (size_t i = 0; i < st->dirs.cap; i++)
		aj_dir_free(st->dirs.val[i]);
	kf_map_free(&st->dirs);
	free(st);
}

static char *trimdup(const char *s, size_t n)
{
	while (n && *s == ' ') { s++; n--; }
	while (n && s[n - 1] == ' ')
		n--;
	return strndup(s, n);
}

/* "claim:Header,claim:Header" (sema checked the shape) */
static int parse_claims(aj_dir *d, const char *s)
{
	size_t n = 1;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	d->claims = calloc(n, sizeof *d->claims);
	if (!d->claims)
		return -1;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *colon = memchr(s, ':', len);
		if (colon) {
			aj_claim *c = &d->claims[d->nclaims];
			c->claim = trimdup(s, (size_t)(colon - s));
			c->header = trimdup(colon + 1, len - (size_t)(colon - s) - 1);
			if (!c->claim || !c->header) {
				free(c->claim);
				free(c->header);
				return -1;
			}
			d->nclaims++;
		}
		s += len;
		if (*s == ',')
			s++;
	}
	return 0;
}

typedef struct aj_build { aj_state *st; char *err; size_t errlen; } aj_build;

static int aj_add(const gwb_table *t, uint32_t route, const uint32_t *insn, void *arg)
{
	aj_build *b = arg;
	uint64_t key = kf_words_key(insn + 1, 8);
	if (kf_map_get(&b->st->dirs, key))
		return 0;
	char where[256], ferr[400];
	kf_route_where(t, route, where, sizeof where);
	aj_dir *d = calloc(1, sizeof *d);
	if (!d)
		goto oom;
	d->algs = insn[3];
	d->tok_src = (int)insn[4];
	d->tok_name = gwb_str(t, insn[5], &d->tok_nlen);
	d->leeway = insn[6];
	size_t sl;
	const char *sv = gwb_str(t, insn[2], &sl);
	switch (insn[1]) {
	case GWB_SECRET_ENV: {
		const char *e = getenv(sv);
		if (!e || !*e) {
			snprintf(b->err, b->errlen, "%s: auth jwt: environment variable %s is %s",
			         where, sv, e ? "empty" : "not set");
			aj_dir_free(d);
			return -1;
		}
		sv = e;
		sl = strlen(e);
	}
		/* fall through */
	case GWB_SECRET_LITERAL:
		if (sl == 0) {
			snprintf(b->err, b->errlen, "%s: auth jwt: the secret is empty", where);
			aj_dir_free(d);
			return -1;
		}
		if (!(d->hmac = jwt_hmac_new((const unsigned char *)sv, sl)))
			goto oom;
		break;
	default:
		d->pem = !(d->algs & (GWB_JWT_HS256 | GWB_JWT_HS384 | GWB_JWT_HS512));
		d->f = kf_open(sv, d->pem ? &aj_pem_kind : &aj_secret_kind, ferr, sizeof ferr);
		if (!d->f) {
			snprintf(b->err, b->errlen, "%s: auth jwt: %s", where, ferr);
			aj_dir_free(d);
			return -1;
		}
		if (d->pem) {
			kf_ref ref;
			EVP_PKEY *pk = (EVP_PKEY *)kf_enter(d->f, 0, &ref);
			uint32_t can = jwt_pkey_algs(pk);
			kf_leave(&ref);
			if (!(can & d->algs)) {
				snprintf(b->err, b->errlen, "%s: auth jwt: %s holds %s key, which cannot "
				         "verify %s", where, sv, can == GWB_JWT_RS256 ? "an RSA" : "an EC P-256",
				         d->algs & GWB_JWT_RS256 ? "RS256" : "ES256");
				aj_dir_free(d);
				return -1;
			}
		}
		break;
	}
	const char *ia = gwb_str(t, insn[7], NULL);
	if (*ia) {
		const char *nl = strchr(ia, '\n');
		size_t il = nl ? (size_t)(nl - ia) : strlen(ia);
		if (il && !(d->iss = strndup(ia, il)))
			goto oom;
		if (nl && nl[1] && !(d->aud = strdup(nl + 1)))
			goto oom;
	}
	if (parse_claims(d, gwb_str(t, insn[8], NULL)) < 0)
		goto oom;
	if (kf_map_put(&b->st->dirs, key, d) < 0)
		goto oom;
	return 0;
oom:
	aj_dir_free(d);
	snprintf(b->err, b->errlen, "%s: out of memory", where);
	return -1;
}

static int aj_init(const gwb_table *t, void **state, char *err, size_t errlen)
{
	aj_state *st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	aj_build b = { st, err, errlen };
	if (kf_each_op(t, GWB_OP_AUTH_JWT, aj_add, &b)) {
		aj_dispose(st);
		return -1;
	}
	*state = st;
	return 0;
}

/* ------------------------------------------------------------- requests */
static int aj_token(gw_req *r, const aj_dir *d, const char **v, size_t *n)
{
	const char *h;
	size_t hn;
	switch (d->tok_src) {
	case GWB_SRC_COOKIE:
		if (!gw_req_header(r, "Cookie", &h, &hn))
			return 0;
		return gwb_cookie_find(h, hn, d->tok_name, d->tok_nlen, v, n) && *n > 0;
	case GWB_SRC_QUERY: {
		size_t qn;
		const char *q = gw_req_query(r, &qn);
		if (!gwb_query_find(q, qn, d->tok_name, d->tok_nlen, &h, &hn) || hn == 0)
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
	default:
		break;
	}
	int authz = d->tok_nlen == 0;
	if (!gw_req_header(r, authz ? "Authorization" : d->tok_name, &h, &hn))
		return 0;
	if (hn >= 7 && !strncasecmp(h, "Bearer ", 7)) {
		h += 7;
		hn -= 7;
	} else if (authz) {
		return 0;        /* another scheme: no bearer token */
	}
	while (hn && (*h == ' ' || *h == '\t')) { h++; hn--; }
	while (hn && (h[hn - 1] == ' ' || h[hn - 1] == '\t'))
		hn--;
	*v = h;
	*n = hn;
	return hn > 0;
}

static int aj_refuse(gw_req *r, int status)
{
	char buf[160];
	int n;
	if (status < 0)
		n = snprintf(buf, sizeof buf, "Bearer realm=\"gw\"");
	else
		n = snprintf(buf, sizeof buf, "Bearer realm=\"gw\", error=\"invalid_token\", "
		             "error_description=\"%s\"", jwt_strerror(status));
	log_debug("request %s: auth jwt: %s (route %s)", gw_req_id(r),
	          status < 0 ? "no token" : jwt_strerror(status), auth_route_name(r));
	gw_resp_set_header(r, "WWW-Authenticate", buf, (size_t)n);
	return 401;
}

static int aj_pass(gw_req *r, const aj_dir *d, json_t *claims)
{
	json_t *sub = json_object_get(claims, "sub");
	if (json_is_string(sub) &&
	    gw_req_set_consumer(r, json_string_value(sub), json_string_length(sub)) < 0)
		return 500;
	log_debug("request %s: auth jwt: consumer %s (route %s)", gw_req_id(r),
	          json_is_string(sub) ? json_string_value(sub) : "-", auth_route_name(r));
	for (size_t i = 0; i < d->nclaims; i++) {
		json_t *v = json_object_get(claims, d->claims[i].claim);
		const char *hn = d->claims[i].header;
		if (!v || json_is_null(v)) {
			gw_req_del_header(r, hn);
		} else if (json_is_string(v)) {
			if (gw_req_set_header(r, hn, json_string_value(v), json_string_length(v)) < 0)
				return 500;
		} else {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			int rc = s ? gw_req_set_header(r, hn, s, strlen(s)) : -1;
			free(s);
			if (rc < 0)
				return 500;
		}
	}
	return GW_OK;
}

static int aj_handler(gw_req *r, const uint32_t *insn, void *state)
{
	aj_state *st = state;
	const aj_dir *d = kf_map_get(&st->dirs, kf_words_key(insn + 1, 8));
	if (!d)
		return 500;      /* init saw every AUTH_JWT of the table */
	const char *tok;
	size_t tn;
	if (!aj_token(r, d, &tok, &tn))
		return aj_refuse(r, -1);
	jwt_key k = { .algs = d->algs, .hmac = d->hmac };
	jwt_check c = { .now = (int64_t)time(NULL), .leeway = d->leeway,
	                .iss = d->iss, .aud = d->aud };
	json_t *claims;
	int rc;
	if (d->f) {
		kf_ref ref;
		const void *obj = kf_enter(d->f, (unsigned)gw_req_worker(r), &ref);
		if (d->pem)
			k.pkey = (EVP_PKEY *)obj;
		else
			k.hmac = obj;
		rc = jwt_verify(&k, &c, tok, tn, &claims);
		kf_leave(&ref);
	} else {
		rc = jwt_verify(&k, &c, tok, tn, &claims);
	}
	if (rc == JWT_NOMEM)
		return 500;
	if (rc != JWT_OK)
		return aj_refuse(r, rc);
	rc = aj_pass(r, d, claims);
	json_decref(claims);
	return rc;
}

static const uint8_t aj_ops[] = { GWB_OP_AUTH_JWT };

const gw_plugin gw_plugin_auth_jwt = {
	.name = "auth_jwt",
	.ops = aj_ops, .nops = sizeof aj_ops,
	.init = aj_init,
	.handler = aj_handler,
	.dispose = aj_dispose,
};

/*
 * sema.c — semantic checks of a parsed rule set, and the one decoder that
 * turns a directive into its opcode's operands (see sema.h).
 *
 * Decisions where gwr-language.md is silent (the README documents these):
 *
 *  Values
 *  - A duration written as plain 0 is accepted (`leeway=0`); sizes accept
 *    plain integers (bytes). Durations must fit in 32 bits of
 *    milliseconds (~49 days), sizes in 32 bits of bytes (< 4g).
 *  - Header names (set_header, remove_header, header(...)) are HTTP
 *    tokens; they may be written as a string or a bare identifier.
 *  - `allow`/`deny`: CIDRs or `all`, separated by spaces or commas; a bare
 *    address is a /32 (/128). Host bits set in a CIDR are cleared.
 *  - Files (`keys=file(...)`, `users=file(...)`, `key=file(...)`,
 *    `secret=file(...)`, `tls_ca/tls_cert/tls_key "..."`) are resolved
 *    relative to the directory of the .gwr that names them, made absolute
 *    (symlinks are not resolved: gwd must follow e.g. a Kubernetes
 *    ConfigMap's ..data link when it re-reads them), must exist at compile
 *    time, and that absolute path is what the table carries.
 *
 *  Route and policy directives (defaults in brackets)
 *  - `rewrite path strip_prefix "/p"` / `rewrite path regex "re" "tpl"`.
 *  - `set_header request|response NAME "tpl"`, `remove_header request|response NAME`.
 *  - `auth key [header="X-API-Key"|query="k"|cookie="c"] keys=file("f")`.
 *  - `auth basic users=file("htpasswd") [realm=""]` ("" = gwd's default).
 *  - `auth jwt secret=env("N")|file("f")|"literal" | key=file("pub.pem")
 *    [alg=HS256] [header="X"|cookie="c"|query="q"] [leeway=0] [iss=] [aud=]
 *    [claims="sub:X-User,..."]`. alg may be a list `(HS256, HS384)`;
 *    HS* needs secret=, RS256/ES256 need key=file(...) (mapped to
 *    GWB_SECRET_FILE); mixing the two families is an error. alg defaults
 *    to HS256 with secret= and is required with key=. leeway is rounded up
 *    to whole seconds. iss/aud travel as "iss\naud" ("" when neither is
 *    given; an empty half is not checked).
 *  - `rate_limit RATE [burst=N] [key=client_ip]`: burst defaults to the
 *    rate's count (100r/s -> a bucket of 100 tokens, i.e. one period's
 *    worth); burst must be >= 1 because a bucket of 0 tokens would refuse
 *    every request. key: client_ip | consumer | route | path |
 *    header("X") | query("x") | cookie("x").
 *  - `conn_limit N [key=client_ip]`, N >= 1.
 *  - `waf CLASS... [mode=block] [body_limit=64k]`: classes sqli xss
 *    traversal scanner protocol, or `all`. `waf rule "name" [in=args]
 *    regex "re"`: in= is args|headers|body|path or a list `(args, body)`.
 *  - `body_limit SIZE`.
 *  - `proxy UPSTREAM [timeout=0]` (0 = the upstream's read_timeout).
 *  - `respond STATUS ["BODY"] [content_type=...]`: STATUS 200..599; the
 *    content type defaults to "text/plain" when there is a body, "" when
 *    not. The body is a template (write `$$` for a literal dollar).
 *  - `redirect 301|302|307|308 "URL"`.
 *  - `cache ttl=DUR [key=""]` ("" = method host path query); only with
 *    `proxy` (wherever it is written, it is emitted before the proxy).
 *  - `cors [origins="*"] [methods="GET, POST, PUT, PATCH, DELETE, HEAD,
 *    OPTIONS"] [headers=""] [max_age=0] [credentials=off]`; headers ""
 *    means gwd echoes Access-Control-Request-Headers; max_age 0 sends no
 *    Access-Control-Max-Age. Lists `("a", "b")` are joined with ", ".
 *  - `log off` | `log sample=F` (0 <= F <= 1, stored as parts per million).
 *  - `tag "name"`.
 *  - `use POLICY` splices the policy's directives in place. A policy may
 *    `use` another; a cycle is an error. Policies may hold any route
 *    directive, actions included; a route's actions are counted after
 *    splicing, so "two actions" also catches one from a policy.
 *
 *  Upstream directives (defaults are nginx's where nginx has one)
 *  - `server ADDR [weight=1] [max_fails=1] [fail_timeout=10s] [backup]`;
 *    ADDR is host:port, [v6]:port, http://host:port or https://host:port
 *    (https sets GWB_SRV_HTTPS; the scheme is dropped from the stored
 *    address); without a port: 80, or 443 for https.
 *  - `balance round_robin|least_conn|ip_hash|random|hash(KEY)` [round_robin],
 *    KEY = header("X") | query("x") | cookie("x") | client_ip | path.
 *  - `keepalive N` [64], `connect_timeout DUR` [5s], `read_timeout DUR` [60s].
 *  - `retries N [on COND, ...]` [1 on connect_error]; COND is
 *    connect_error, timeout, or a status 500..599 or 429 (at most 4
 *    statuses). Without `on`, the conditions stay connect_error.
 *  - `health_check { path "/"; interval 5s; timeout 2s; healthy 2;
 *    unhealthy 3; expect 200..399; }` (the values shown are the defaults;
 *    expect also takes a single status).
 *  - `circuit_breaker { failures 5; window 10s; cooldown 30s; }` (defaults).
 *  - `tls_verify on|off` [on], `tls_ca "f"`, `tls_sni "name"`,
 *    `tls_cert "f"`, `tls_key "f"`. Each upstream directive except
 *    `server` may appear once.
 *
 *  Match
 *  - host: "" is an error; `*` only as a whole leading label ("*.x.y").
 *  - path == / ^= values must start with '/'.
 *  - regexes are PCRE2 (no options; gwb compiles them the same way).
 *
 *  Driver (gwc): sema runs only on a clean parse (a half-parsed tree would
 *  add cascades such as "undefined upstream" for an upstream whose block
 *  did not parse); `gwc check` also runs the emitter, so table limits are
 *  reported by check too.
 *
 *  Errors carry a class shown as [-Wname]: unknown, place, type, value,
 *  undefined, duplicate, action, match, regex, template, file, cycle, cidr.
 *  Warnings: shadowed, unused-upstream, unused-policy, empty-upstream,
 *  redirect-target, regex-prefix.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "compiler.h"
#include "sema.h"

/* ================================================================ helpers */

uint64_t sema_hash(const void *p, size_t n, uint64_t seed)
{
	/* FNV-1a, 64 bit */
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void sema_map_init(sema_map *m)
{
	m->slot = NULL;
	m->cap = m->n = 0;
}

void sema_map_fini(sema_map *m)
{
	free(m->slot);
	sema_map_init(m);
}

static struct sema_slot *map_find(const sema_map *m, const char *k, size_t klen,
                                  uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct sema_slot *s = &m->slot[i];
		if (!s->k || (s->h == h && s->klen == klen && memcmp(s->k, k, klen) == 0))
			return s;
	}
}

long sema_map_get(const sema_map *m, const char *k, size_t klen)
{
	if (!m->cap)
		return -1;
	struct sema_slot *s = map_find(m, k, klen, sema_hash(k, klen, 0));
	return s->k ? s->v : -1;
}

long sema_map_put(sema_map *m, const char *k, size_t klen, long v)
{
	if (2 * (m->n + 1) > m->cap) {
		size_t ncap = m->cap ? 2 * m->cap : 16;
		struct sema_slot *old = m->slot;
		size_t ocap = m->cap;
		m->slot = calloc(ncap, sizeof *m->slot);
		if (!m->slot) {
			perror("gwc");
			abort();
		}
		m->cap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].k)
				*map_find(m, old[i].k, old[i].klen, old[i].h) = old[i];
		free(old);
	}
	uint64_t h = sema_hash(k, klen, 0);
	struct sema_slot *s = map_find(m, k, klen, h);
	if (s->k)
		return s->v;
	s->k = k;
	s->klen = klen;
	s->h = h;
	s->v = v;
	m->n++;
	return -1;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		perror("gwc");
		abort();
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s);
	char *p = xmalloc(n + 1);
	memcpy(p, s, n + 1);
	return p;
}

char *sema_resolve_path(const char *gwr, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	const char *slash = gwr ? strrchr(gwr, '/') : NULL;
	size_t dlen = slash ? (size_t)(slash - gwr) : 0;
	char cwd[PATH_MAX];
	const char *pre = "";
	if (!(slash && gwr[0] == '/')) {
		if (!getcwd(cwd, sizeof cwd))
			strcpy(cwd, ".");
		pre = cwd;
	}
	size_t n = strlen(pre) + 1 + dlen + 1 + strlen(path) + 1;
	char *r = xmalloc(n);
	if (slash && gwr[0] == '/')
		snprintf(r, n, "%.*s/%s", (int)dlen, gwr, path);
	else if (slash)
		snprintf(r, n, "%s/%.*s/%s", pre, (int)dlen, gwr, path);
	else
		snprintf(r, n, "%s/%s", pre, path);
	return r;
}

int sema_parse_cidr(const char *s, gwb_cidr *out)
{
	char buf[64];
	const char *sl = strchr(s, '/');
	size_t alen = sl ? (size_t)(sl - s) : strlen(s);
	if (alen == 0 || alen >= sizeof buf)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(out, 0, sizeof *out);
	int max;
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = 6;
		max = 128;
	} else {
		return -1;
	}
	int pfx = max;
	if (sl) {
		const char *p = sl + 1;
		if (!*p || strlen(p) > 3)
			return -1;
		pfx = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			pfx = pfx * 10 + (*p - '0');
		}
		if (pfx > max)
			return -1;
	}
	out->prefix = (uint8_t)pfx;
	/* clear host bits so equal networks compare equal */
	for (int bit = pfx; bit < max; bit++)
		out->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	return 0;
}

/* visit the values of a list-ish argument run, lists flattened */
static size_t flatten(const ast_value *v, size_t n, const ast_value **out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].kind == AV_LIST) {
			k += flatten(v[i].args, v[i].nargs, out ? out + k : NULL,
			             cap > k ? cap - k : 0);
		} else {
			if (out && k < cap)
				out[k] = &v[i];
			k++;
		}
	}
	return k;
}

long sema_cidrs(const sema_opnd *o, gwb_cidr **out)
{
	size_t n = flatten(o->cidrs, o->ncidrs, NULL, 0);
	const ast_value **vs = xmalloc(n * sizeof *vs);
	flatten(o->cidrs, o->ncidrs, vs, n);
	gwb_cidr *c = xmalloc((n + 2) * sizeof *c);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (vs[i]->kind == AV_IDENT && strcmp(vs[i]->s, "all") == 0)
			continue;
		if (sema_parse_cidr(vs[i]->s, &c[k]) < 0) {
			free(vs);
			free(c);
			return -1;
		}
		k++;
	}
	free(vs);
	if (o->all) {
		/* `all`: every v4 and every v6 address */
		k = 0;
		memset(c, 0, 2 * sizeof *c);
		c[0].family = 4;
		c[1].family = 6;
		k = 2;
	}
	*out = c;
	return (long)k;
}

ast_pos sema_strpos(const ast_file *f, ast_pos vpos, size_t off)
{
	if (!f || vpos.src >= f->nsources || vpos.line == 0 || vpos.col == 0)
		return vpos;
	const ast_source *src = &f->sources[vpos.src];
	const char *p = src->text, *end = src->text + src->len;
	uint32_t line = 1;
	while (line < vpos.line && p < end)
		if (*p++ == '\n')
			line++;
	if (line != vpos.line || (size_t)(end - p) < vpos.col)
		return vpos;
	p += vpos.col - 1;
	if (*p != '"')
		return vpos;
	const char *q = p + 1;
	size_t n = 0;
	while (q < end && *q != '"' && *q != '\n' && n < off) {
		if (*q == '\\' && q + 1 < end)
			q += (q[1] == 'x') ? 4 : 2;
		else
			q++;
		n++;
	}
	if (q > end)
		return vpos;
	ast_pos r = vpos;
	r.col = vpos.col + (uint32_t)(q - p);
	return r;
}

static int is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_token(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* "identifier 'fast'", "string \"x\"", "integer 42" ... for messages */
static const char *vdesc(const ast_value *v, char *buf, size_t n)
{
	static const char *const kname[] = {
		[AV_IDENT] = "identifier", [AV_STRING] = "string", [AV_INT] = "integer",
		[AV_DURATION] = "duration", [AV_SIZE] = "size", [AV_RATE] = "rate",
		[AV_ADDR] = "address", [AV_CIDR] = "address", [AV_RANGE] = "range",
		[AV_CALL] = "call", [AV_LIST] = "list", [AV_FLOAT] = "number"
	};
	const char *k = (unsigned)v->kind <= AV_FLOAT ? kname[v->kind] : "value";
	if (v->kind == AV_LIST) {
		snprintf(buf, n, "a list");
	} else if (v->kind == AV_CALL) {
		snprintf(buf, n, "%s(...)", v->s ? v->s : "");
	} else if (v->raw) {
		snprintf(buf, n, v->kind == AV_STRING ? "%s %.60s" : "%s '%.60s'", k, v->raw);
	} else if (v->kind == AV_STRING) {
		snprintf(buf, n, "%s \"%.60s\"", k, v->s ? v->s : "");
	} else if (v->kind == AV_INT) {
		snprintf(buf, n, "%s %lld", k, (long long)v->i);
	} else {
		snprintf(buf, n, "%s '%.60s'", k, v->s ? v->s : "?");
	}
	return buf;
}

static uint32_t vspan(const ast_value *v)
{
	if (v->raw && *v->raw)
		return (uint32_t)strlen(v->raw);
	if (v->kind == AV_STRING)
		return (uint32_t)v->len + 2;
	if (v->s && *v->s)
		return (uint32_t)strlen(v->s);
	return 1;
}

static int is_ident(const ast_value *v, const char *w)
{
	return v && v->kind == AV_IDENT && v->s && strcmp(v->s, w) == 0;
}

/* a call like file("x"): 1 string argument */
static const ast_value *call_arg(const ast_value *v, const char *fn)
{
	if (v->kind != AV_CALL || !v->s || strcmp(v->s, fn) != 0 || v->nargs != 1 ||
	    v->args[0].kind != AV_STRING)
		return NULL;
	return &v->args[0];
}

/* ======================================================= directive table */

enum did {
	D_USE, D_REWRITE, D_SET_HEADER, D_REMOVE_HEADER, D_ALLOW, D_DENY,
	D_AUTH_KEY, D_AUTH_BASIC, D_AUTH_JWT, D_RATE_LIMIT, D_CONN_LIMIT,
	D_WAF, D_WAF_RULE, D_BODY_LIMIT, D_PROXY, D_RESPOND, D_REDIRECT,
	D_CACHE, D_CORS, D_LOG, D_TAG,
	/* upstream */
	D_SERVER, D_BALANCE, D_KEEPALIVE, D_CONNECT_TIMEOUT, D_READ_TIMEOUT,
	D_RETRIES, D_HEALTH_CHECK, D_CIRCUIT_BREAKER, D_TLS_VERIFY, D_TLS_CA,
	D_TLS_SNI, D_TLS_CERT, D_TLS_KEY,
	/* health_check { } */
	D_HC_PATH, D_HC_INTERVAL, D_HC_TIMEOUT, D_HC_HEALTHY, D_HC_UNHEALTHY,
	D_HC_EXPECT,
	/* circuit_breaker { } */
	D_CB_FAILURES, D_CB_WINDOW, D_CB_COOLDOWN,
	D__COUNT
};

/* option value kinds */
enum okind {
	OK_INT, OK_DUR, OK_SIZE, OK_STR, OK_FILE, OK_SECRET, OK_KEY, OK_ONOFF,
	OK_FRACTION, OK_IDENTS, OK_STRS
};

static const char *const okind_text[] = {
	[OK_INT] = "an integer",
	[OK_DUR] = "a duration like 5s",
	[OK_SIZE] = "a size like 16k",
	[OK_STR] = "a string",
	[OK_FILE] = "file(\"path\")",
	[OK_SECRET] = "env(\"NAME\"), file(\"path\") or a string",
	[OK_KEY] = "client_ip, consumer, route, path, header(\"X\"), query(\"x\") or cookie(\"x\")",
	[OK_ONOFF] = "on or off",
	[OK_FRACTION] = "a number between 0 and 1",
	[OK_IDENTS] = "a name or a list of names",
	[OK_STRS] = "a string or a list of strings",
};

struct optspec { const char *name; enum okind kind; };

#define RP (SP_ROUTE | SP_POLICY)
#define NOPH (-1)          /* no phase (use, upstream directives) */
#define DEPPH (-2)         /* phase depends on the arguments */
#define MANY 255

struct dirspec {
	const char *name;
	const char *sub;             /* first positional word selecting a form */
	enum did id;
	unsigned places;
	int phase;
	uint8_t minargs, maxargs;    /* positional values, sub included */
	uint8_t block;               /* takes a { } block */
	const char *usage;
	struct optspec opts[10];
};

static const struct dirspec dirs[] = {
	{ "use", NULL, D_USE, RP, NOPH, 1, 1, 0, "use POLICY", { { 0 } } },
	{ "rewrite", NULL, D_REWRITE, RP, GWB_PH_REWRITE, 3, 4, 0,
	  "rewrite path strip_prefix \"/p\" | rewrite path regex \"re\" \"replacement\"", { { 0 } } },
	{ "set_header", NULL, D_SET_HEADER, RP, DEPPH, 3, 3, 0,
	  "set_header request|response NAME \"VALUE\"", { { 0 } } },
	{ "remove_header", NULL, D_REMOVE_HEADER, RP, DEPPH, 2, 2, 0,
	  "remove_header request|response NAME", { { 0 } } },
	{ "allow", NULL, D_ALLOW, RP, GWB_PH_ACCESS, 1, MANY, 0, "allow CIDR... | allow all", { { 0 } } },
	{ "deny", NULL, D_DENY, RP, GWB_PH_ACCESS, 1, MANY, 0, "deny CIDR... | deny all", { { 0 } } },
	{ "auth", "key", D_AUTH_KEY, RP, GWB_PH_ACCESS, 1, 1, 0,
	  "auth key [header=\"X\"|query=\"k\"|cookie=\"c\"] keys=file(\"path\")",
	  { { "header", OK_STR }, { "query", OK_STR }, { "cookie", OK_STR }, { "keys", OK_FILE } } },
	{ "auth", "basic", D_AUTH_BASIC, RP, GWB_PH_ACCESS, 1, 1, 0,
	  "auth basic users=file(\"htpasswd\") [realm=\"...\"]",
	  { { "users", OK_FILE }, { "realm", OK_STR } } },
	{ "auth", "jwt", D_AUTH_JWT, RP, GWB_PH_ACCESS, 1, 1, 0,
	  "auth jwt secret=env(\"NAME\")|file(\"path\")|\"literal\" | key=file(\"pub.pem\") "
	  "[alg=HS256|HS384|HS512|RS256|ES256] [header=\"X\"|cookie=\"c\"] [leeway=DUR] "
	  "[iss=\"...\"] [aud=\"...\"] [claims=\"claim:Header,...\"]",
	  { { "secret", OK_SECRET }, { "key", OK_FILE }, { "alg", OK_IDENTS },
	    { "header", OK_STR }, { "cookie", OK_STR }, { "query", OK_STR },
	    { "leeway", OK_DUR }, { "iss", OK_STR }, { "aud", OK_STR }, { "claims", OK_STR } } },
	{ "rate_limit", NULL, D_RATE_LIMIT, RP, GWB_PH_ACCESS, 1, 1, 0,
	  "rate_limit RATE [burst=N] [key=client_ip|header(\"X\")|query(\"x\")|cookie(\"x\")|consumer|route]",
	  { { "burst", OK_INT }, { "key", OK_KEY } } },
	{ "conn_limit", NULL, D_CONN_LIMIT, RP, GWB_PH_ACCESS, 1, 1, 0,
	  "conn_limit N [key=client_ip|header(\"X\")|...]", { { "key", OK_KEY } } },
	{ "waf", "rule", D_WAF_RULE, RP, GWB_PH_ACCESS, 4, 4, 0,
	  "waf rule \"name\" [in=args|headers|body|path|(args, body)] regex \"re\"",
	  { { "in", OK_IDENTS } } },
	{ "waf", NULL, D_WAF, RP, GWB_PH_ACCESS, 1, MANY, 0,
	  "waf sqli|xss|traversal|scanner|protocol|all... [mode=block|detect] [body_limit=SIZE]",
	  { { "mode", OK_IDENTS }, { "body_limit", OK_SIZE } } },
	{ "body_limit", NULL, D_BODY_LIMIT, RP, GWB_PH_ACCESS, 1, 1, 0, "body_limit SIZE", { { 0 } } },
	{ "proxy", NULL, D_PROXY, RP, GWB_PH_CONTENT, 1, 1, 0, "proxy UPSTREAM [timeout=DUR]",
	  { { "timeout", OK_DUR } } },
	{ "respond", NULL, D_RESPOND, RP, GWB_PH_CONTENT, 1, 2, 0,
	  "respond STATUS [\"BODY\"] [content_type=\"...\"]", { { "content_type", OK_STR } } },
	{ "redirect", NULL, D_REDIRECT, RP, GWB_PH_CONTENT, 2, 2, 0,
	  "redirect 301|302|307|308 \"URL\"", { { 0 } } },
	{ "cache", NULL, D_CACHE, RP, GWB_PH_CONTENT, 0, 0, 0, "cache ttl=DUR [key=\"template\"]",
	  { { "ttl", OK_DUR }, { "key", OK_STR } } },
	{ "cors", NULL, D_CORS, RP, GWB_PH_HFILTER, 0, 0, 0,
	  "cors [origins=\"...\"] [methods=\"...\"] [headers=\"...\"] [max_age=DUR] [credentials=on|off]",
	  { { "origins", OK_STRS }, { "methods", OK_STRS }, { "headers", OK_STRS },
	    { "max_age", OK_DUR }, { "credentials", OK_ONOFF } } },
	{ "log", NULL, D_LOG, RP, GWB_PH_LOG, 0, 1, 0, "log off | log sample=FRACTION",
	  { { "sample", OK_FRACTION } } },
	{ "tag", NULL, D_TAG, RP, GWB_PH_LOG, 1, 1, 0, "tag \"name\"", { { 0 } } },

	{ "server", NULL, D_SERVER, SP_UPSTREAM, NOPH, 1, 2, 0,
	  "server ADDR [weight=N] [max_fails=N] [fail_timeout=DUR] [backup]",
	  { { "weight", OK_INT }, { "max_fails", OK_INT }, { "fail_timeout", OK_DUR } } },
	{ "balance", NULL, D_BALANCE, SP_UPSTREAM, NOPH, 1, 1, 0,
	  "balance round_robin|least_conn|ip_hash|random|hash(header(\"X\")|query(\"x\")|cookie(\"x\")|client_ip|path)",
	  { { 0 } } },
	{ "keepalive", NULL, D_KEEPALIVE, SP_UPSTREAM, NOPH, 1, 1, 0, "keepalive N", { { 0 } } },
	{ "connect_timeout", NULL, D_CONNECT_TIMEOUT, SP_UPSTREAM, NOPH, 1, 1, 0,
	  "connect_timeout DUR", { { 0 } } },
	{ "read_timeout", NULL, D_READ_TIMEOUT, SP_UPSTREAM, NOPH, 1, 1, 0, "read_timeout DUR", { { 0 } } },
	{ "retries", NULL, D_RETRIES, SP_UPSTREAM, NOPH, 1, MANY, 0,
	  "retries N [on connect_error|timeout|STATUS, ...]", { { 0 } } },
	{ "health_check", NULL, D_HEALTH_CHECK, SP_UPSTREAM, NOPH, 0, 0, 1,
	  "health_check { path \"/\"; interval DUR; timeout DUR; healthy N; unhealthy N; expect 200..399; }",
	  { { 0 } } },
	{ "circuit_breaker", NULL, D_CIRCUIT_BREAKER, SP_UPSTREAM, NOPH, 0, 0, 1,
	  "circuit_breaker { failures N; window DUR; cooldown DUR; }", { { 0 } } },
	{ "tls_verify", NULL, D_TLS_VERIFY, SP_UPSTREAM, NOPH, 1, 1, 0, "tls_verify on|off", { { 0 } } },
	{ "tls_ca", NULL, D_TLS_CA, SP_UPSTREAM, NOPH, 1, 1, 0, "tls_ca \"file\"", { { 0 } } },
	{ "tls_sni", NULL, D_TLS_SNI, SP_UPSTREAM, NOPH, 1, 1, 0, "tls_sni \"name\"", { { 0 } } },
	{ "tls_cert", NULL, D_TLS_CERT, SP_UPSTREAM, NOPH, 1, 1, 0, "tls_cert \"file\"", { { 0 } } },
	{ "tls_key", NULL, D_TLS_KEY, SP_UPSTREAM, NOPH, 1, 1, 0, "tls_key \"file\"", { { 0 } } },

	{ "path", NULL, D_HC_PATH, SP_HEALTH, NOPH, 1, 1, 0, "path \"/healthz\"", { { 0 } } },
	{ "interval", NULL, D_HC_INTERVAL, SP_HEALTH, NOPH, 1, 1, 0, "interval DUR", { { 0 } } },
	{ "timeout", NULL, D_HC_TIMEOUT, SP_HEALTH, NOPH, 1, 1, 0, "timeout DUR", { { 0 } } },
	{ "healthy", NULL, D_HC_HEALTHY, SP_HEALTH, NOPH, 1, 1, 0, "healthy N", { { 0 } } },
	{ "unhealthy", NULL, D_HC_UNHEALTHY, SP_HEALTH, NOPH, 1, 1, 0, "unhealthy N", { { 0 } } },
	{ "expect", NULL, D_HC_EXPECT, SP_HEALTH, NOPH, 1, 1, 0, "expect STATUS | expect LO..HI", { { 0 } } },

	{ "failures", NULL, D_CB_FAILURES, SP_BREAKER, NOPH, 1, 1, 0, "failures N", { { 0 } } },
	{ "window", NULL, D_CB_WINDOW, SP_BREAKER, NOPH, 1, 1, 0, "window DUR", { { 0 } } },
	{ "cooldown", NULL, D_CB_COOLDOWN, SP_BREAKER, NOPH, 1, 1, 0, "cooldown DUR", { { 0 } } },
};
#define NDIRS (sizeof dirs / sizeof dirs[0])

static const char *place_name(unsigned p)
{
	switch (p) {
	case SP_ROUTE: return "a route";
	case SP_POLICY: return "a policy";
	case SP_UPSTREAM: return "an upstream";
	case SP_HEALTH: return "a health_check block";
	case SP_BREAKER: return "a circuit_breaker block";
	default: return "this place";
	}
}

static const char *places_text(unsigned p)
{
	if ((p & RP) == RP)
		return "a route or policy";
	if (p & SP_UPSTREAM)
		return "an upstream";
	if (p & SP_HEALTH)
		return "a health_check block";
	if (p & SP_BREAKER)
		return "a circuit_breaker block";
	return "?";
}

/* ========================================================== decode ctx */

typedef struct dctx {
	const ast_file *f;
	diag_ctx *dg;
	const ast_directive *d;
	const struct dirspec *sp;
	int bad;
} dctx;

static void derr(dctx *dc, ast_pos pos, uint32_t span, const char *cls,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void derr(dctx *dc, ast_pos pos, uint32_t span, const char *cls,
                 const char *fmt, ...)
{
	dc->bad = 1;
	if (!dc->dg)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag_add(dc->dg, DIAG_ERROR, pos, span ? span : 1, cls, "%s", msg);
}

static void dwarn(dctx *dc, ast_pos pos, uint32_t span, const char *cls,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void dwarn(dctx *dc, ast_pos pos, uint32_t span, const char *cls,
                  const char *fmt, ...)
{
	if (!dc->dg)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag_add(dc->dg, DIAG_WARNING, pos, span ? span : 1, cls, "%s", msg);
}

static void expect_err(dctx *dc, const ast_value *v, const char *what)
{
	char b[128];
	derr(dc, v->pos, vspan(v), "type", "%s expects %s, got %s", dc->d->name, what,
	     vdesc(v, b, sizeof b));
}

static const ast_value *opt(const dctx *dc, const char *key)
{
	for (size_t i = 0; i < dc->d->nopts; i++)
		if (strcmp(dc->d->opts[i].key, key) == 0)
			return &dc->d->opts[i].val;
	return NULL;
}

static const ast_value *arg(const dctx *dc, size_t i)
{
	return i < dc->d->nargs ? &dc->d->args[i] : NULL;
}

static double fraction_of(const ast_value *v, int *ok)
{
	*ok = 0;
	const char *t = NULL;
	if (v->kind == AV_INT) {
		*ok = v->i == 0 || v->i == 1;
		return (double)v->i;
	}
	if (v->kind == AV_FLOAT) {
		*ok = v->f >= 0.0 && v->f <= 1.0;
		return v->f;
	}
	if (v->kind == AV_STRING || v->kind == AV_IDENT)
		t = v->s;
	else
		t = v->raw ? v->raw : v->s;
	if (!t || !*t)
		return 0;
	char *end;
	errno = 0;
	double x = strtod(t, &end);
	if (errno || *end || !(x >= 0.0 && x <= 1.0))
		return 0;
	*ok = 1;
	return x;
}

/* `8m` lexes as a duration (minutes); the lexer keeps its MiB reading in
 * i2 so that it is also a size */
static int dur_is_mib(const ast_value *v)
{
	size_t n = v->raw ? strlen(v->raw) : 0;
	return v->kind == AV_DURATION && n >= 2 && v->raw[n - 1] == 'm' && v->raw[n - 2] != 'm' &&
	       v->i2 > 0;
}

static int okind_ok(const ast_value *v, enum okind k)
{
	switch (k) {
	case OK_INT: return v->kind == AV_INT && v->i >= 0;
	case OK_DUR: return v->kind == AV_DURATION || (v->kind == AV_INT && v->i == 0);
	case OK_SIZE: return v->kind == AV_SIZE || (v->kind == AV_INT && v->i >= 0) ||
	                     dur_is_mib(v);
	case OK_STR: return v->kind == AV_STRING;
	case OK_FILE: return call_arg(v, "file") != NULL;
	case OK_SECRET:
		return v->kind == AV_STRING || call_arg(v, "env") || call_arg(v, "file");
	case OK_KEY:
		if (v->kind == AV_IDENT)
			return is_ident(v, "client_ip") || is_ident(v, "consumer") ||
			       is_ident(v, "route") || is_ident(v, "path");
		return call_arg(v, "header") || call_arg(v, "query") || call_arg(v, "cookie");
	case OK_ONOFF: return is_ident(v, "on") || is_ident(v, "off");
	case OK_FRACTION: {
		int ok;
		fraction_of(v, &ok);
		return ok;
	}
	case OK_IDENTS:
		if (v->kind == AV_IDENT)
			return 1;
		if (v->kind != AV_LIST || v->nargs == 0)
			return 0;
		for (size_t i = 0; i < v->nargs; i++)
			if (v->args[i].kind != AV_IDENT)
				return 0;
		return 1;
	case OK_STRS:
		if (v->kind == AV_STRING || v->kind == AV_IDENT)   /* methods=GET */
			return 1;
		if (v->kind != AV_LIST || v->nargs == 0)
			return 0;
		for (size_t i = 0; i < v->nargs; i++)
			if (v->args[i].kind != AV_STRING && v->args[i].kind != AV_IDENT)
				return 0;
		return 1;
	}
	return 0;
}

/* options: known, once each, of the right kind */
static void check_opts(dctx *dc)
{
	const struct dirspec *sp = dc->sp;
	const char *names[12];
	size_t nn = 0;
	for (size_t j = 0; j < 10 && sp->opts[j].name; j++)
		names[nn++] = sp->opts[j].name;
	for (size_t i = 0; i < dc->d->nopts; i++) {
		const ast_option *o = &dc->d->opts[i];
		const struct optspec *os = NULL;
		for (size_t j = 0; j < nn; j++)
			if (strcmp(sp->opts[j].name, o->key) == 0)
				os = &sp->opts[j];
		uint32_t span = (uint32_t)strlen(o->key);
		if (!os) {
			const char *sug = nn ? diag_suggest(o->key, names, nn) : NULL;
			if (sug)
				derr(dc, o->pos, span, "unknown",
				     "unknown option '%s' for '%s'; did you mean '%s'?",
				     o->key, dc->d->name, sug);
			else if (nn)
				derr(dc, o->pos, span, "unknown", "unknown option '%s' for '%s' (usage: %s)",
				     o->key, dc->d->name, sp->usage);
			else
				derr(dc, o->pos, span, "unknown", "'%s' takes no options (usage: %s)",
				     dc->d->name, sp->usage);
			continue;
		}
		int dup = 0;
		for (size_t k = 0; k < i; k++)
			if (strcmp(dc->d->opts[k].key, o->key) == 0)
				dup = 1;
		if (dup) {
			derr(dc, o->pos, span, "duplicate", "option '%s' given twice", o->key);
			continue;
		}
		if (!okind_ok(&o->val, os->kind)) {
			char b[128];
			derr(dc, o->val.pos, vspan(&o->val), "type", "%s=... expects %s, got %s",
			     o->key, okind_text[os->kind], vdesc(&o->val, b, sizeof b));
		}
	}
}

/* ---- typed positional getters; each reports its own error ---- */

static int get_u32(dctx *dc, const ast_value *v, int64_t lo, int64_t hi, uint32_t *out,
                   const char *what)
{
	if (!v || v->kind != AV_INT) {
		if (v)
			expect_err(dc, v, what);
		return -1;
	}
	if (v->i < lo || v->i > hi) {
		derr(dc, v->pos, vspan(v), "value", "%s: %lld is out of range (%lld..%lld)",
		     dc->d->name, (long long)v->i, (long long)lo, (long long)hi);
		return -1;
	}
	*out = (uint32_t)v->i;
	return 0;
}

static int dur_ms(dctx *dc, const ast_value *v, uint32_t *out)
{
	if (!v || !okind_ok(v, OK_DUR)) {
		if (v)
			expect_err(dc, v, okind_text[OK_DUR]);
		return -1;
	}
	if (v->i < 0 || v->i > (int64_t)UINT32_MAX) {
		derr(dc, v->pos, vspan(v), "value",
		     "duration too large (limit is 4294967295ms, about 49 days)");
		return -1;
	}
	*out = (uint32_t)v->i;
	return 0;
}

static int size_bytes(dctx *dc, const ast_value *v, uint32_t *out)
{
	if (!v || !okind_ok(v, OK_SIZE)) {
		if (v)
			expect_err(dc, v, okind_text[OK_SIZE]);
		return -1;
	}
	int64_t n = v->kind == AV_DURATION ? v->i2 : v->i;
	if (n > (int64_t)UINT32_MAX) {
		derr(dc, v->pos, vspan(v), "value", "size too large (limit is 4294967295 bytes)");
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

static int get_str(dctx *dc, const ast_value *v, int ident_ok, sema_opnd *o,
                   const char *what)
{
	if (!v || !(v->kind == AV_STRING || (ident_ok && v->kind == AV_IDENT))) {
		if (v)
			expect_err(dc, v, what);
		return -1;
	}
	if (v->kind == AV_STRING && v->len >= GWB_MAX_STRLEN) {
		derr(dc, v->pos, 1, "value", "string too long (limit is %u bytes)", GWB_MAX_STRLEN - 1);
		return -1;
	}
	o->s = v->s;
	o->len = v->kind == AV_STRING ? v->len : strlen(v->s);
	o->pos = v->pos;
	return 0;
}

static void own(sema_insn *in, char *s)
{
	if (in->nowned >= 4) {
		/* no decoder builds more than 4 strings: a bug, not an input */
		fputs("gwc: internal error: sema_insn owns too many strings\n", stderr);
		abort();
	}
	in->owned[in->nowned++] = s;
}

/* file("x") -> resolved absolute path into o (owned by in) */
static int get_file(dctx *dc, const ast_value *v, sema_opnd *o, sema_insn *in)
{
	const ast_value *a = call_arg(v, "file");
	if (!a) {
		expect_err(dc, v, okind_text[OK_FILE]);
		return -1;
	}
	char *p = sema_resolve_path(a->pos.file ? a->pos.file : v->pos.file, a->s);
	if (dc->dg) {
		struct stat st;
		if (stat(p, &st) != 0) {
			derr(dc, a->pos, vspan(a), "file", "cannot open file '%s' (%s): %s", a->s, p,
			     strerror(errno));
			free(p);
			return -1;
		}
	}
	own(in, p);
	o->s = p;
	o->len = strlen(p);
	o->pos = a->pos;
	return 0;
}

/* header name: a string or an identifier that is an HTTP token */
static int get_hname(dctx *dc, const ast_value *v, sema_opnd *o)
{
	if (get_str(dc, v, 1, o, "a header name") < 0)
		return -1;
	if (!is_token(o->s, o->len)) {
		derr(dc, v->pos, vspan(v), "value", "'%s' is not a valid header name", o->s);
		return -1;
	}
	return 0;
}

/* a template operand: checked with the table's own template checker */
static int check_tpl(dctx *dc, const ast_value *v, const sema_opnd *o)
{
	if (!dc->dg)
		return 0;
	size_t off = 0;
	char err[160] = "";
	if (gwb_tpl_check(o->s, o->len, &off, err, sizeof err) != 0) {
		ast_pos p = v->kind == AV_STRING ? sema_strpos(dc->f, v->pos, off) : v->pos;
		derr(dc, p, 1, "template", "invalid template: %s", err);
		return -1;
	}
	return 0;
}

/* compile a regex to check it; caret on the offending source byte */
static int check_regex(dctx *dc, const ast_value *v, const char *pat, size_t len)
{
	if (!dc->dg)
		return 0;
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, 0, &ec, &eo, NULL);
	if (re) {
		pcre2_code_free(re);
		return 0;
	}
	PCRE2_UCHAR msg[256];
	pcre2_get_error_message(ec, msg, sizeof msg);
	ast_pos p = sema_strpos(dc->f, v->pos, eo);
	derr(dc, p, 1, "regex", "invalid regex: %s (at offset %zu)", (const char *)msg, (size_t)eo);
	return -1;
}

/* key=client_ip|consumer|route|path|header("X")|query("x")|cookie("x") */
static void get_key(const ast_value *v, uint32_t *kind, const char **name, size_t *nlen)
{
	*name = "";
	*nlen = 0;
	if (!v || is_ident(v, "client_ip")) {
		*kind = GWB_KEY_CLIENT_IP;
		return;
	}
	if (is_ident(v, "consumer")) { *kind = GWB_KEY_CONSUMER; return; }
	if (is_ident(v, "route")) { *kind = GWB_KEY_ROUTE; return; }
	if (is_ident(v, "path")) { *kind = GWB_KEY_PATH; return; }
	const ast_value *a;
	if ((a = call_arg(v, "header")))
		*kind = GWB_KEY_HEADER;
	else if ((a = call_arg(v, "query")))
		*kind = GWB_KEY_QUERY;
	else if ((a = call_arg(v, "cookie")))
		*kind = GWB_KEY_COOKIE;
	else {
		*kind = GWB_KEY_CLIENT_IP;
		return;
	}
	*name = a->s;
	*nlen = a->len;
}

/* join a string or list of strings/idents with ", " */
static int get_strs(dctx *dc, const ast_value *v, sema_opnd *o, sema_insn *in)
{
	if (v->kind == AV_STRING || v->kind == AV_IDENT) {
		o->s = v->s;
		o->len = v->len;
		o->pos = v->pos;
		return 0;
	}
	size_t n = 1;
	for (size_t i = 0; i < v->nargs; i++)
		n += strlen(v->args[i].s) + 2;
	char *s = xmalloc(n);
	s[0] = '\0';
	for (size_t i = 0; i < v->nargs; i++) {
		if (i)
			strcat(s, ", ");
		strcat(s, v->args[i].s);
	}
	own(in, s);
	o->s = s;
	o->len = strlen(s);
	o->pos = v->pos;
	(void)dc;
	return 0;
}

/* ============================================================ decoders */

static const struct dirspec *find_spec(const ast_directive *d, unsigned place,
                                       const struct dirspec **other)
{
	/* a form selected by its first word, else the plain form, else any
	 * form of that name (lookup() then reports the unknown word) */
	const struct dirspec *plain = NULL, *anysub = NULL;
	*other = NULL;
	for (size_t i = 0; i < NDIRS; i++) {
		const struct dirspec *sp = &dirs[i];
		/* first byte first: this runs for every directive of 100k routes */
		if (sp->name[0] != d->name[0] || strcmp(sp->name, d->name) != 0)
			continue;
		if (!(sp->places & place)) {
			if (!*other)
				*other = sp;
			continue;
		}
		if (!sp->sub) {
			if (!plain)
				plain = sp;
		} else if (d->nargs > 0 && is_ident(&d->args[0], sp->sub)) {
			return sp;
		} else if (!anysub) {
			anysub = sp;
		}
	}
	return plain ? plain : anysub;
}

/* the names valid at a place, for "did you mean" */
static size_t place_names(unsigned place, const char **out)
{
	size_t n = 0;
	for (size_t i = 0; i < NDIRS; i++) {
		if (!(dirs[i].places & place))
			continue;
		int seen = 0;
		for (size_t j = 0; j < n; j++)
			if (strcmp(out[j], dirs[i].name) == 0)
				seen = 1;
		if (!seen)
			out[n++] = dirs[i].name;
	}
	return n;
}

/* common part: which spec, placement, arity, block, options */
static const struct dirspec *lookup(dctx *dc, unsigned place)
{
	const ast_directive *d = dc->d;
	uint32_t span = (uint32_t)strlen(d->name);
	const struct dirspec *other, *sp = find_spec(d, place, &other);
	if (!sp) {
		if (other) {
			derr(dc, d->pos, span, "place", "'%s' is not allowed in %s; it belongs in %s",
			     d->name, place_name(place), places_text(other->places));
			return NULL;
		}
		const char *names[NDIRS];
		size_t n = place_names(place, names);
		const char *sug = diag_suggest(d->name, names, n);
		if (sug)
			derr(dc, d->pos, span, "unknown", "unknown directive '%s'; did you mean '%s'?",
			     d->name, sug);
		else
			derr(dc, d->pos, span, "unknown", "unknown directive '%s' in %s", d->name,
			     place_name(place));
		return NULL;
	}
	dc->sp = sp;
	/* forms with a sub-word: the word must be one we know */
	if (sp->sub && !(d->nargs > 0 && is_ident(&d->args[0], sp->sub))) {
		const char *subs[8];
		size_t ns = 0;
		for (size_t i = 0; i < NDIRS && ns < 8; i++)
			if (dirs[i].sub && strcmp(dirs[i].name, d->name) == 0)
				subs[ns++] = dirs[i].sub;
		if (d->nargs == 0) {
			derr(dc, d->pos, span, "type", "'%s' needs a kind: %s%s%s%s%s", d->name,
			     subs[0], ns > 1 ? ", " : "", ns > 1 ? subs[1] : "",
			     ns > 2 ? " or " : "", ns > 2 ? subs[2] : "");
		} else {
			const ast_value *a0 = &d->args[0];
			const char *sug = a0->kind == AV_IDENT ? diag_suggest(a0->s, subs, ns) : NULL;
			char b[128];
			if (sug)
				derr(dc, a0->pos, vspan(a0), "unknown", "unknown %s kind '%s'; did you mean '%s'?",
				     d->name, a0->s, sug);
			else
				derr(dc, a0->pos, vspan(a0), "type", "%s expects one of %s, %s%s%s, got %s",
				     d->name, subs[0], ns > 1 ? subs[1] : "", ns > 2 ? " or " : "",
				     ns > 2 ? subs[2] : "", vdesc(a0, b, sizeof b));
		}
		return NULL;
	}
	if (d->nargs < sp->minargs) {
		derr(dc, d->pos, span, "type", "'%s' needs more arguments (usage: %s)", d->name,
		     sp->usage);
		return NULL;
	}
	if (sp->maxargs != MANY && d->nargs > sp->maxargs) {
		const ast_value *x = &d->args[sp->maxargs];
		derr(dc, x->pos, vspan(x), "type", "too many arguments to '%s' (usage: %s)", d->name,
		     sp->usage);
		return NULL;
	}
	if (d->has_block && !sp->block) {
		derr(dc, d->pos, span, "type", "'%s' takes no { } block (usage: %s)", d->name, sp->usage);
		return NULL;
	}
	if (!d->has_block && sp->block) {
		derr(dc, d->pos, span, "type", "'%s' needs a { } block (usage: %s)", d->name, sp->usage);
		return NULL;
	}
	check_opts(dc);
	return sp;
}

static int dec_rewrite(dctx *dc, sema_insn *in)
{
	const ast_directive *d = dc->d;
	if (!is_ident(arg(dc, 0), "path")) {
		expect_err(dc, arg(dc, 0), "'path' (only the path can be rewritten)");
		return -1;
	}
	const ast_value *mode = arg(dc, 1);
	if (is_ident(mode, "strip_prefix")) {
		if (d->nargs != 3) {
			derr(dc, d->args[d->nargs - 1].pos, 1, "type",
			     "rewrite path strip_prefix takes one string (usage: %s)", dc->sp->usage);
			return -1;
		}
		in->op = GWB_OP_STRIP_PREFIX;
		if (get_str(dc, arg(dc, 2), 0, &in->a[0], "a path prefix string") < 0)
			return -1;
		if (in->a[0].s[0] != '/') {
			derr(dc, arg(dc, 2)->pos, vspan(arg(dc, 2)), "value",
			     "strip_prefix must start with '/'");
			return -1;
		}
		return 0;
	}
	if (is_ident(mode, "regex")) {
		if (d->nargs != 4) {
			derr(dc, d->pos, (uint32_t)strlen(d->name), "type",
			     "rewrite path regex takes a regex and a replacement (usage: %s)", dc->sp->usage);
			return -1;
		}
		in->op = GWB_OP_REWRITE_RE;
		if (get_str(dc, arg(dc, 2), 0, &in->a[0], "a regex string") < 0 ||
		    get_str(dc, arg(dc, 3), 0, &in->a[1], "a replacement string") < 0)
			return -1;
		int r = check_regex(dc, arg(dc, 2), in->a[0].s, in->a[0].len);
		if (check_tpl(dc, arg(dc, 3), &in->a[1]) < 0 || r < 0)
			return -1;
		return 0;
	}
	expect_err(dc, mode, "strip_prefix or regex");
	return -1;
}

static int req_or_resp(dctx *dc, int *resp)
{
	const ast_value *v = arg(dc, 0);
	if (is_ident(v, "request")) { *resp = 0; return 0; }
	if (is_ident(v, "response")) { *resp = 1; return 0; }
	expect_err(dc, v, "request or response");
	return -1;
}

static int dec_set_header(dctx *dc, sema_insn *in)
{
	int resp;
	if (req_or_resp(dc, &resp) < 0)
		return -1;
	in->op = resp ? GWB_OP_SET_RESP_HDR : GWB_OP_SET_REQ_HDR;
	in->phase = resp ? GWB_PH_HFILTER : GWB_PH_REWRITE;
	if (get_hname(dc, arg(dc, 1), &in->a[0]) < 0)
		return -1;
	if (get_str(dc, arg(dc, 2), 0, &in->a[1], "a string value") < 0)
		return -1;
	return check_tpl(dc, arg(dc, 2), &in->a[1]);
}

static int dec_remove_header(dctx *dc, sema_insn *in)
{
	int resp;
	if (req_or_resp(dc, &resp) < 0)
		return -1;
	in->op = resp ? GWB_OP_DEL_RESP_HDR : GWB_OP_DEL_REQ_HDR;
	in->phase = resp ? GWB_PH_HFILTER : GWB_PH_REWRITE;
	return get_hname(dc, arg(dc, 1), &in->a[0]);
}

static int dec_allow_deny(dctx *dc, sema_insn *in, enum gwb_op op)
{
	const ast_directive *d = dc->d;
	in->op = op;
	sema_opnd *o = &in->a[0];
	o->cidrs = d->args;
	o->ncidrs = d->nargs;
	o->pos = d->args[0].pos;
	size_t n = flatten(d->args, d->nargs, NULL, 0);
	const ast_value **vs = xmalloc(n * sizeof *vs);
	flatten(d->args, d->nargs, vs, n);
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		gwb_cidr c;
		if (is_ident(vs[i], "all")) {
			o->all = 1;
		} else if ((vs[i]->kind != AV_CIDR && vs[i]->kind != AV_STRING) || !vs[i]->s) {
			expect_err(dc, vs[i], "CIDRs like 10.0.0.0/8 or 'all'");
			bad = 1;
		} else if (sema_parse_cidr(vs[i]->s, &c) < 0) {
			derr(dc, vs[i]->pos, vspan(vs[i]), "cidr", "invalid CIDR '%s'", vs[i]->s);
			bad = 1;
		}
	}
	if (n == 0) {
		derr(dc, d->pos, (uint32_t)strlen(d->name), "type", "'%s' needs CIDRs or 'all'", d->name);
		bad = 1;
	}
	free(vs);
	return bad ? -1 : 0;
}

static int dec_auth_key(dctx *dc, sema_insn *in)
{
	in->op = GWB_OP_AUTH_KEY;
	const ast_value *h = opt(dc, "header"), *q = opt(dc, "query"), *c = opt(dc, "cookie");
	int nsrc = !!h + !!q + !!c;
	if (nsrc > 1) {
		const ast_value *second = (h && q) ? q : c;
		derr(dc, second->pos, vspan(second), "value",
		     "auth key reads the key from one place: give one of header=, query= or cookie=");
		return -1;
	}
	if (q) {
		in->a[0].u = GWB_SRC_QUERY;
		get_str(dc, q, 0, &in->a[1], "a string");
	} else if (c) {
		in->a[0].u = GWB_SRC_COOKIE;
		get_str(dc, c, 0, &in->a[1], "a string");
	} else if (h) {
		in->a[0].u = GWB_SRC_HEADER;
		if (get_str(dc, h, 0, &in->a[1], "a string") == 0 && !is_token(h->s, h->len))
			derr(dc, h->pos, vspan(h), "value", "'%s' is not a valid header name", h->s);
	} else {
		in->a[0].u = GWB_SRC_HEADER;
		in->a[1].s = "X-API-Key";
		in->a[1].len = 9;
	}
	const ast_value *keys = opt(dc, "keys");
	if (!keys) {
		derr(dc, dc->d->pos, 4, "value", "auth key needs keys=file(\"...\") (usage: %s)",
		     dc->sp->usage);
		return -1;
	}
	if (!okind_ok(keys, OK_FILE))
		return -1;
	return get_file(dc, keys, &in->a[2], in);
}

static int dec_auth_basic(dctx *dc, sema_insn *in)
{
	in->op = GWB_OP_AUTH_BASIC;
	const ast_value *u = opt(dc, "users"), *r = opt(dc, "realm");
	in->a[1].s = "";
	if (r && okind_ok(r, OK_STR))
		get_str(dc, r, 0, &in->a[1], "a string");
	if (!u) {
		derr(dc, dc->d->pos, 4, "value", "auth basic needs users=file(\"htpasswd\")");
		return -1;
	}
	if (!okind_ok(u, OK_FILE))
		return -1;
	return get_file(dc, u, &in->a[0], in);
}

static int jwt_alg(dctx *dc, const ast_value *v, uint32_t *mask)
{
	static const struct { const char *n; uint32_t bit; } algs[] = {
		{ "HS256", GWB_JWT_HS256 }, { "HS384", GWB_JWT_HS384 }, { "HS512", GWB_JWT_HS512 },
		{ "RS256", GWB_JWT_RS256 }, { "ES256", GWB_JWT_ES256 },
	};
	const char *names[5];
	for (int i = 0; i < 5; i++)
		names[i] = algs[i].n;
	const ast_value *vs[16];
	size_t n = flatten(v, 1, vs, 16);
	*mask = 0;
	for (size_t i = 0; i < n && i < 16; i++) {
		uint32_t bit = 0;
		for (int j = 0; j < 5; j++)
			if (strcmp(vs[i]->s, algs[j].n) == 0)
				bit = algs[j].bit;
		if (!bit) {
			const char *sug = diag_suggest(vs[i]->s, names, 5);
			derr(dc, vs[i]->pos, vspan(vs[i]), "value",
			     "unknown jwt algorithm '%s'%s%s%s (HS256, HS384, HS512, RS256, ES256)",
			     vs[i]->s, sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
			return -1;
		}
		*mask |= bit;
	}
	return 0;
}

static int dec_auth_jwt(dctx *dc, sema_insn *in)
{
	in->op = GWB_OP_AUTH_JWT;
	const ast_directive *d = dc->d;
	const ast_value *secret = opt(dc, "secret"), *key = opt(dc, "key"), *alg = opt(dc, "alg");
	uint32_t mask = 0;
	if (alg && okind_ok(alg, OK_IDENTS) && jwt_alg(dc, alg, &mask) < 0)
		return -1;
	const uint32_t hs = GWB_JWT_HS256 | GWB_JWT_HS384 | GWB_JWT_HS512;
	const uint32_t pk = GWB_JWT_RS256 | GWB_JWT_ES256;
	if (secret && key) {
		derr(dc, key->pos, vspan(key), "value",
		     "auth jwt takes secret= (HS*) or key=file(...) (RS256/ES256), not both");
		return -1;
	}
	if (!secret && !key) {
		derr(dc, d->pos, 4, "value", "auth jwt needs secret=... or key=file(\"pub.pem\")");
		return -1;
	}
	if ((mask & hs) && (mask & pk)) {
		derr(dc, alg->pos, vspan(alg), "value",
		     "auth jwt cannot mix HMAC (HS*) and public-key (RS256/ES256) algorithms");
		return -1;
	}
	if (secret) {
		if (!mask)
			mask = GWB_JWT_HS256;
		if (mask & pk) {
			derr(dc, alg->pos, vspan(alg), "value",
			     "RS256/ES256 verify with a public key: use key=file(\"pub.pem\"), not secret=");
			return -1;
		}
		const ast_value *a;
		if (!okind_ok(secret, OK_SECRET))
			return -1;
		if ((a = call_arg(secret, "env"))) {
			in->a[0].u = GWB_SECRET_ENV;
			get_str(dc, a, 0, &in->a[1], "a string");
		} else if (call_arg(secret, "file")) {
			in->a[0].u = GWB_SECRET_FILE;
			if (get_file(dc, secret, &in->a[1], in) < 0)
				return -1;
		} else {
			in->a[0].u = GWB_SECRET_LITERAL;
			get_str(dc, secret, 0, &in->a[1], "a string");
		}
	} else {
		if (!mask) {
			derr(dc, key->pos, vspan(key), "value",
			     "auth jwt with key= needs alg=RS256 or alg=ES256");
			return -1;
		}
		if (mask & hs) {
			derr(dc, alg->pos, vspan(alg), "value",
			     "HS256/HS384/HS512 verify with a shared secret: use secret=, not key=");
			return -1;
		}
		if (!okind_ok(key, OK_FILE))
			return -1;
		in->a[0].u = GWB_SECRET_FILE;
		if (get_file(dc, key, &in->a[1], in) < 0)
			return -1;
	}
	in->a[2].u = mask;
	const ast_value *h = opt(dc, "header"), *c = opt(dc, "cookie"), *q = opt(dc, "query");
	if (!!h + !!c + !!q > 1) {
		derr(dc, d->pos, 4, "value", "auth jwt reads the token from one place: "
		     "give at most one of header=, cookie= or query=");
		return -1;
	}
	in->a[3].u = GWB_SRC_HEADER;
	in->a[4].s = "";
	if (h) {
		get_str(dc, h, 0, &in->a[4], "a string");
		if (!is_token(h->s, h->len))
			derr(dc, h->pos, vspan(h), "value", "'%s' is not a valid header name", h->s);
	} else if (c) {
		in->a[3].u = GWB_SRC_COOKIE;
		get_str(dc, c, 0, &in->a[4], "a string");
	} else if (q) {
		in->a[3].u = GWB_SRC_QUERY;
		get_str(dc, q, 0, &in->a[4], "a string");
	}
	const ast_value *lw = opt(dc, "leeway");
	uint32_t ms = 0;
	if (lw && dur_ms(dc, lw, &ms) < 0)
		return -1;
	in->a[5].u = (uint32_t)(((uint64_t)ms + 999) / 1000);
	const ast_value *iss = opt(dc, "iss"), *aud = opt(dc, "aud");
	in->a[6].s = "";
	if ((iss && iss->kind == AV_STRING) || (aud && aud->kind == AV_STRING)) {
		const char *is = iss && iss->kind == AV_STRING ? iss->s : "";
		const char *as = aud && aud->kind == AV_STRING ? aud->s : "";
		if (strchr(is, '\n') || strchr(as, '\n')) {
			derr(dc, d->pos, 4, "value", "iss= and aud= cannot contain a newline");
			return -1;
		}
		size_t n = strlen(is) + strlen(as) + 2;
		char *s = xmalloc(n);
		snprintf(s, n, "%s\n%s", is, as);
		own(in, s);
		in->a[6].s = s;
		in->a[6].len = n - 1;
	}
	const ast_value *cl = opt(dc, "claims");
	in->a[7].s = "";
	if (cl && cl->kind == AV_STRING) {
		/* claim:Header,claim:Header */
		const char *p = cl->s;
		while (*p) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			while (n && (*p == ' ')) { p++; n--; }
			const char *colon = memchr(p, ':', n);
			size_t hl = colon ? n - (size_t)(colon - p) - 1 : 0;
			const char *hn = colon ? colon + 1 : NULL;
			while (hl && hn[hl - 1] == ' ')
				hl--;
			if (!colon || colon == p || !is_token(hn, hl)) {
				derr(dc, sema_strpos(dc->f, cl->pos, (size_t)(p - cl->s)), 1, "value",
				     "claims= is a list of claim:Header-Name, separated by commas");
				return -1;
			}
			p += n;
			if (*p == ',')
				p++;
		}
		get_str(dc, cl, 0, &in->a[7], "a string");
	}
	return dc->bad ? -1 : 0;
}

static int dec_rate_limit(dctx *dc, sema_insn *in)
{
	in->op = GWB_OP_RATE_LIMIT;
	const ast_value *r = arg(dc, 0);
	if (r->kind != AV_RATE) {
		expect_err(dc, r, "a rate like 100r/s");
		return -1;
	}
	if (r->i <= 0 || r->i > (int64_t)UINT32_MAX || r->i2 <= 0 || r->i2 > (int64_t)UINT32_MAX) {
		derr(dc, r->pos, vspan(r), "value", "rate out of range (1..4294967295 per period)");
		return -1;
	}
	in->a[0].u = (uint32_t)r->i;
	in->a[1].u = (uint32_t)r->i2;
	in->a[2].u = (uint32_t)r->i;
	const ast_value *b = opt(dc, "burst");
	if (b && b->kind == AV_INT) {
		if (b->i < 1 || b->i > (int64_t)UINT32_MAX) {
			derr(dc, b->pos, vspan(b), "value",
			     "burst must be at least 1 (it is the bucket size; 0 would refuse every request)");
			return -1;
		}
		in->a[2].u = (uint32_t)b->i;
	}
	get_key(opt(dc, "key"), &in->a[3].u, &in->a[4].s, &in->a[4].len);
	return dc->bad ? -1 : 0;
}

static int dec_conn_limit(dctx *dc, sema_insn *in)
{
	in->op = GWB_OP_CONN_LIMIT;
	if (get_u32(dc, arg(dc, 0), 1, UINT32_MAX, &in->a[0].u, "a connection count") < 0)
		return -1;
	get_key(opt(dc, "key"), &in->a[1].u, &in->a[2].s, &in->a[2].len);
	return dc->bad ? -1 : 0;
}

static int dec_waf(dctx *dc, sema_insn *in)
{
	static const struct { const char *n; uint32_t bit; } cls[] = {
		{ "sqli", GWB_WAF_SQLI }, { "xss", GWB_WAF_XSS }, { "traversal", GWB_WAF_TRAVERSAL },
		{ "scanner", GWB_WAF_SCANNER }, { "protocol", GWB_WAF_PROTOCOL }, { "all", GWB_WAF_ALL },
	};
	const char *names[6];
	for (int i = 0; i < 6; i++)
		names[i] = cls[i].n;
	in->op = GWB_OP_WAF;
	const ast_directive *d = dc->d;
	size_t n = flatten(d->args, d->nargs, NULL, 0);
	const ast_value **vs = xmalloc(n * sizeof *vs);
	flatten(d->args, d->nargs, vs, n);
	uint32_t mask = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t bit = 0;
		if (vs[i]->kind == AV_IDENT)
			for (int j = 0; j < 6; j++)
				if (strcmp(vs[i]->s, cls[j].n) == 0)
					bit = cls[j].bit;
		if (!bit) {
			const char *sug = vs[i]->kind == AV_IDENT ? diag_suggest(vs[i]->s, names, 6) : NULL;
			char b[128];
			if (sug)
				derr(dc, vs[i]->pos, vspan(vs[i]), "value",
				     "unknown waf class '%s'; did you mean '%s'?", vs[i]->s, sug);
			else
				derr(dc, vs[i]->pos, vspan(vs[i]), "value",
				     "waf expects sqli, xss, traversal, scanner, protocol or all, got %s",
				     vdesc(vs[i], b, sizeof b));
		}
		mask |= bit;
	}
	free(vs);
	in->a[0].u = mask;
	in->a[1].u = GWB_WAF_BLOCK;
	const ast_value *m = opt(dc, "mode");
	if (m) {
		if (is_ident(m, "detect"))
			in->a[1].u = GWB_WAF_DETECT;
		else if (!is_ident(m, "block"))
			expect_err(dc, m, "mode=block or mode=detect");
	}
	in->a[2].u = 65536;
	const ast_value *bl = opt(dc, "body_limit");
	if (bl)
		size_bytes(dc, bl, &in->a[2].u);
	return dc->bad ? -1 : 0;
}

static int dec_waf_rule(dctx *dc, sema_insn *in)
{
	static const struct { const char *n; uint32_t bit; } parts[] = {
		{ "args", GWB_IN_ARGS }, { "headers", GWB_IN_HEADERS }, { "body", GWB_IN_BODY },
		{ "path", GWB_IN_PATH },
	};
	in->op = GWB_OP_WAF_RULE;
	if (get_str(dc, arg(dc, 1), 0, &in->a[0], "a rule name string") < 0)
		return -1;
	if (!is_ident(arg(dc, 2), "regex")) {
		expect_err(dc, arg(dc, 2), "'regex' (usage: waf rule \"name\" in=... regex \"re\")");
		return -1;
	}
	if (get_str(dc, arg(dc, 3), 0, &in->a[2], "a regex string") < 0)
		return -1;
	if (check_regex(dc, arg(dc, 3), in->a[2].s, in->a[2].len) < 0)
		return -1;
	in->a[1].u = GWB_IN_ARGS;
	const ast_value *iv = opt(dc, "in");
	if (iv && okind_ok(iv, OK_IDENTS)) {
		const ast_value *vs[8];
		size_t n = flatten(iv, 1, vs, 8);
		uint32_t mask = 0;
		for (size_t i = 0; i < n && i < 8; i++) {
			uint32_t bit = 0;
			for (int j = 0; j < 4; j++)
				if (strcmp(vs[i]->s, parts[j].n) == 0)
					bit = parts[j].bit;
			if (!bit)
				derr(dc, vs[i]->pos, vspan(vs[i]), "value",
				     "in= expects args, headers, body or path, got '%s'", vs[i]->s);
			mask |= bit;
		}
		in->a[1].u = mask;
	}
	return dc->bad ? -1 : 0;
}

static int redirect_target_ok(const char *s)
{
	if (s[0] == '/')
		return 1; /* path-absolute or scheme-relative */
	if (s[0] == '$' && (isdigit((unsigned char)s[1]) || s[1] == '{'))
		return 1; /* computed: cannot tell */
	const char *p = s;
	if (!isalpha((unsigned char)*p))
		return 0;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return p[0] == ':' && p[1] == '/' && p[2] == '/';
}

static int dec_content(dctx *dc, sema_insn *in, enum did id)
{
	const ast_value *v;
	switch (id) {
	case D_PROXY:
		in->op = GWB_OP_PROXY;
		v = arg(dc, 0);
		if (get_str(dc, v, 1, &in->a[0], "an upstream name") < 0)
			return -1;
		if ((v = opt(dc, "timeout")))
			dur_ms(dc, v, &in->a[1].u);
		return dc->bad ? -1 : 0;
	case D_RESPOND:
		in->op = GWB_OP_RESPOND;
		if (get_u32(dc, arg(dc, 0), 200, 599, &in->a[0].u, "a status code") < 0)
			return -1;
		in->a[1].s = "";
		in->a[2].s = "";
		if ((v = arg(dc, 1))) {
			if (get_str(dc, v, 0, &in->a[1], "a body string") < 0 ||
			    check_tpl(dc, v, &in->a[1]) < 0)
				return -1;
			in->a[2].s = "text/plain";
			in->a[2].len = 10;
		}
		if ((v = opt(dc, "content_type")) && v->kind == AV_STRING)
			get_str(dc, v, 0, &in->a[2], "a string");
		return dc->bad ? -1 : 0;
	case D_REDIRECT:
		in->op = GWB_OP_REDIRECT;
		v = arg(dc, 0);
		if (get_u32(dc, v, 300, 399, &in->a[0].u, "a redirect status (301, 302, 307 or 308)") < 0)
			return -1;
		if (v->i != 301 && v->i != 302 && v->i != 307 && v->i != 308) {
			derr(dc, v->pos, vspan(v), "status",
			     "redirect status must be 301, 302, 307 or 308, got %lld", (long long)v->i);
			return -1;
		}
		v = arg(dc, 1);
		if (get_str(dc, v, 0, &in->a[1], "a target URL string") < 0 ||
		    check_tpl(dc, v, &in->a[1]) < 0)
			return -1;
		if (!redirect_target_ok(in->a[1].s))
			dwarn(dc, v->pos, vspan(v), "redirect-target",
			      "redirect target '%s' is neither absolute (https://...), scheme-relative "
			      "(//...) nor path-absolute (/...); browsers resolve it against the "
			      "request's path", in->a[1].s);
		return 0;
	case D_CACHE:
		in->op = GWB_OP_CACHE;
		if (!(v = opt(dc, "ttl"))) {
			derr(dc, dc->d->pos, 5, "value", "cache needs ttl=DUR (usage: %s)", dc->sp->usage);
			return -1;
		}
		if (dur_ms(dc, v, &in->a[0].u) < 0)
			return -1;
		if (in->a[0].u == 0)
			derr(dc, v->pos, vspan(v), "value", "cache ttl must be more than 0");
		in->a[1].s = "";
		if ((v = opt(dc, "key")) && v->kind == AV_STRING &&
		    get_str(dc, v, 0, &in->a[1], "a string") == 0)
			check_tpl(dc, v, &in->a[1]);
		return dc->bad ? -1 : 0;
	default:
		return -1;
	}
}

static int dec_cors(dctx *dc, sema_insn *in)
{
	in->op = GWB_OP_CORS;
	static const char defmeth[] = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";
	in->a[0].s = "*"; in->a[0].len = 1;
	in->a[1].s = defmeth; in->a[1].len = sizeof defmeth - 1;
	in->a[2].s = ""; in->a[2].len = 0;
	const char *keys[3] = { "origins", "methods", "headers" };
	for (int i = 0; i < 3; i++) {
		const ast_value *v = opt(dc, keys[i]);
		if (v && okind_ok(v, OK_STRS))
			get_strs(dc, v, &in->a[i], in);
	}
	const ast_value *v;
	uint32_t ms = 0;
	if ((v = opt(dc, "max_age")) && dur_ms(dc, v, &ms) == 0)
		in->a[3].u = ms / 1000;
	if ((v = opt(dc, "credentials")))
		in->a[4].u = is_ident(v, "on");
	return dc->bad ? -1 : 0;
}

static int dec_log(dctx *dc, sema_insn *in)
{
	const ast_value *s = opt(dc, "sample"), *a0 = arg(dc, 0);
	if (a0 && s) {
		derr(dc, a0->pos, vspan(a0), "value", "log takes 'off' or sample=F, not both");
		return -1;
	}
	if (a0) {
		if (!is_ident(a0, "off")) {
			expect_err(dc, a0, "'off' or sample=FRACTION");
			return -1;
		}
		in->op = GWB_OP_LOG_OFF;
		return 0;
	}
	if (!s) {
		derr(dc, dc->d->pos, 3, "value", "log needs 'off' or sample=FRACTION");
		return -1;
	}
	int ok;
	double x = fraction_of(s, &ok);
	if (!ok)
		return -1; /* reported by check_opts */
	in->op = GWB_OP_LOG_SAMPLE;
	in->a[0].u = (uint32_t)llround(x * 1e6);
	return 0;
}

int sema_decode(const ast_file *f, const ast_directive *d, unsigned place,
                sema_insn *in, diag_ctx *dg)
{
	memset(in, 0, sizeof *in);
	in->dir = d;
	in->op = GWB_OP_INVALID;
	for (int i = 0; i < GWB_MAX_ARGS; i++) {
		in->a[i].s = "";
		in->a[i].pos = d->pos;
	}
	dctx dc = { f, dg, d, NULL, 0 };
	const struct dirspec *sp = lookup(&dc, place);
	if (!sp)
		return -1;
	in->phase = sp->phase >= 0 ? (unsigned)sp->phase : 0;
	int r = 0;
	switch (sp->id) {
	case D_USE:
		in->is_use = 1;
		r = get_str(&dc, arg(&dc, 0), 1, &in->a[0], "a policy name");
		break;
	case D_REWRITE: r = dec_rewrite(&dc, in); break;
	case D_SET_HEADER: r = dec_set_header(&dc, in); break;
	case D_REMOVE_HEADER: r = dec_remove_header(&dc, in); break;
	case D_ALLOW: r = dec_allow_deny(&dc, in, GWB_OP_ALLOW); break;
	case D_DENY: r = dec_allow_deny(&dc, in, GWB_OP_DENY); break;
	case D_AUTH_KEY: r = dec_auth_key(&dc, in); break;
	case D_AUTH_BASIC: r = dec_auth_basic(&dc, in); break;
	case D_AUTH_JWT: r = dec_auth_jwt(&dc, in); break;
	case D_RATE_LIMIT: r = dec_rate_limit(&dc, in); break;
	case D_CONN_LIMIT: r = dec_conn_limit(&dc, in); break;
	case D_WAF: r = dec_waf(&dc, in); break;
	case D_WAF_RULE: r = dec_waf_rule(&dc, in); break;
	case D_BODY_LIMIT:
		in->op = GWB_OP_BODY_LIMIT;
		r = size_bytes(&dc, arg(&dc, 0), &in->a[0].u);
		break;
	case D_PROXY: case D_RESPOND: case D_REDIRECT: case D_CACHE:
		r = dec_content(&dc, in, sp->id);
		break;
	case D_CORS: r = dec_cors(&dc, in); break;
	case D_LOG: r = dec_log(&dc, in); break;
	case D_TAG:
		in->op = GWB_OP_TAG;
		r = get_str(&dc, arg(&dc, 0), 1, &in->a[0], "a tag string");
		break;
	default:
		derr(&dc, d->pos, 1, "place", "'%s' is not allowed in %s", d->name, place_name(place));
		r = -1;
	}
	if (r < 0 || dc.bad) {
		sema_insn_fini(in);
		return -1;
	}
	return 0;
}

void sema_insn_fini(sema_insn *in)
{
	for (int i = 0; i < in->nowned; i++)
		free(in->owned[i]);
	in->nowned = 0;
}

/* ============================================================ upstreams */

static int dec_server(dctx *dc, sema_upstream *u)
{
	const ast_directive *d = dc->d;
	const ast_value *a = arg(dc, 0);
	sema_server s = { 0 };
	s.weight = 1;
	s.max_fails = 1;
	s.fail_timeout_ms = 10000;
	const char *t = NULL;
	if (a->kind == AV_ADDR || a->kind == AV_STRING || a->kind == AV_IDENT ||
	    (a->kind == AV_CIDR && a->s && !strchr(a->s, '/')))
		t = a->s;
	if (!t || !*t) {
		expect_err(dc, a, "an address like 10.0.0.7:8080 or https://host:443");
		return -1;
	}
	int https = 0;
	if (strncasecmp(t, "https://", 8) == 0) {
		https = 1;
		t += 8;
	} else if (strncasecmp(t, "http://", 7) == 0) {
		t += 7;
	} else if (strstr(t, "://")) {
		derr(dc, a->pos, vspan(a), "value", "server address '%s': only http:// and https:// "
		     "are supported", a->s);
		return -1;
	}
	size_t tl = strlen(t);
	if (tl && t[tl - 1] == '/')
		tl--; /* https://host:443/ */
	/* host part and port */
	const char *port = NULL;
	size_t hl;
	if (t[0] == '[') {
		const char *rb = memchr(t, ']', tl);
		if (!rb || rb == t + 1) {
			derr(dc, a->pos, vspan(a), "value", "server address '%s': bad IPv6 literal", a->s);
			return -1;
		}
		hl = (size_t)(rb - t) + 1;
		if (hl < tl) {
			if (t[hl] != ':') {
				derr(dc, a->pos, vspan(a), "value", "server address '%s': expected ':' after ']'", a->s);
				return -1;
			}
			port = t + hl + 1;
		}
	} else {
		const char *colon = memchr(t, ':', tl);
		if (colon && memchr(colon + 1, ':', tl - (size_t)(colon + 1 - t))) {
			derr(dc, a->pos, vspan(a), "value",
			     "server address '%s': write IPv6 addresses as [addr]:port", a->s);
			return -1;
		}
		hl = colon ? (size_t)(colon - t) : tl;
		if (colon)
			port = colon + 1;
	}
	if (hl == 0 || memchr(t, '/', tl)) {
		derr(dc, a->pos, vspan(a), "value", "server address '%s' is not host:port", a->s);
		return -1;
	}
	long pn = https ? 443 : 80;
	if (port) {
		size_t pl = tl - (size_t)(port - t);
		pn = 0;
		if (pl == 0 || pl > 5)
			pn = -1;
		for (size_t i = 0; i < pl && pn >= 0; i++)
			pn = (port[i] >= '0' && port[i] <= '9') ? pn * 10 + (port[i] - '0') : -1;
		if (pn < 1 || pn > 65535) {
			derr(dc, a->pos, vspan(a), "value", "server address '%s': bad port", a->s);
			return -1;
		}
	}
	size_t n = hl + 8;
	s.owned = xmalloc(n);
	snprintf(s.owned, n, "%.*s:%ld", (int)hl, t, pn);
	s.addr = s.owned;
	s.addrlen = strlen(s.owned);
	if (https)
		s.flags |= GWB_SRV_HTTPS;
	if (d->nargs > 1) {
		if (is_ident(&d->args[1], "backup"))
			s.flags |= GWB_SRV_BACKUP;
		else
			expect_err(dc, &d->args[1], "'backup' or options (usage: server ADDR [weight=N] "
			           "[max_fails=N] [fail_timeout=DUR] [backup])");
	}
	const ast_value *v;
	if ((v = opt(dc, "weight")) && v->kind == AV_INT) {
		if (v->i < 1 || v->i > 1000000)
			derr(dc, v->pos, vspan(v), "value", "weight must be 1..1000000");
		else
			s.weight = (uint32_t)v->i;
	}
	if ((v = opt(dc, "max_fails")) && v->kind == AV_INT) {
		if (v->i > (int64_t)UINT32_MAX)
			derr(dc, v->pos, vspan(v), "value", "max_fails too large");
		else
			s.max_fails = (uint32_t)v->i;
	}
	if ((v = opt(dc, "fail_timeout")))
		dur_ms(dc, v, &s.fail_timeout_ms);
	if (dc->bad) {
		free(s.owned);
		return -1;
	}
	if (u->nservers >= GWB_MAX_SERVERS) {
		derr(dc, d->pos, 6, "value", "too many servers in one upstream (limit is %u)",
		     GWB_MAX_SERVERS);
		free(s.owned);
		return -1;
	}
	if ((u->nservers & (u->nservers - 1)) == 0) {
		size_t ncap = u->nservers ? 2 * u->nservers : 1;
		sema_server *ns = realloc(u->servers, ncap * sizeof *ns);
		if (!ns) {
			perror("gwc");
			abort();
		}
		u->servers = ns;
	}
	u->servers[u->nservers++] = s;
	return 0;
}

static int dec_balance(dctx *dc, sema_upstream *u)
{
	static const struct { const char *n; uint32_t b; } bal[] = {
		{ "round_robin", GWB_BAL_ROUND_ROBIN }, { "least_conn", GWB_BAL_LEAST_CONN },
		{ "ip_hash", GWB_BAL_IP_HASH }, { "random", GWB_BAL_RANDOM }, { "hash", GWB_BAL_HASH },
	};
	const char *names[5];
	for (int i = 0; i < 5; i++)
		names[i] = bal[i].n;
	const ast_value *v = arg(dc, 0);
	if (v->kind == AV_IDENT) {
		for (int i = 0; i < 4; i++)
			if (strcmp(v->s, bal[i].n) == 0) {
				u->u.balance = bal[i].b;
				return 0;
			}
		if (strcmp(v->s, "hash") == 0) {
			derr(dc, v->pos, vspan(v), "value",
			     "balance hash needs a key: hash(header(\"X\")), hash(client_ip), ...");
			return -1;
		}
		const char *sug = diag_suggest(v->s, names, 5);
		if (sug) {
			derr(dc, v->pos, vspan(v), "value", "unknown balance method '%s'; did you mean '%s'?",
			     v->s, sug);
			return -1;
		}
	}
	if (v->kind == AV_CALL && v->s && strcmp(v->s, "hash") == 0 && v->nargs == 1) {
		const ast_value *k = &v->args[0];
		const ast_value *a;
		u->u.balance = GWB_BAL_HASH;
		u->hash_name = "";
		if (is_ident(k, "client_ip")) {
			u->u.hash_key = GWB_KEY_CLIENT_IP;
		} else if (is_ident(k, "path")) {
			u->u.hash_key = GWB_KEY_PATH;
		} else if ((a = call_arg(k, "header"))) {
			u->u.hash_key = GWB_KEY_HEADER;
			u->hash_name = a->s;
		} else if ((a = call_arg(k, "query"))) {
			u->u.hash_key = GWB_KEY_QUERY;
			u->hash_name = a->s;
		} else if ((a = call_arg(k, "cookie"))) {
			u->u.hash_key = GWB_KEY_COOKIE;
			u->hash_name = a->s;
		} else {
			expect_err(dc, k, "a hash key: header(\"X\"), query(\"x\"), cookie(\"x\"), "
			           "client_ip or path");
			return -1;
		}
		return 0;
	}
	expect_err(dc, v, "round_robin, least_conn, ip_hash, random or hash(KEY)");
	return -1;
}

static int dec_retries(dctx *dc, sema_upstream *u)
{
	const ast_directive *d = dc->d;
	uint32_t n;
	if (get_u32(dc, arg(dc, 0), 0, 100, &n, "a retry count") < 0)
		return -1;
	u->u.retries = n;
	if (d->nargs == 1)
		return 0;
	if (!is_ident(&d->args[1], "on")) {
		expect_err(dc, &d->args[1], "'on' followed by conditions (usage: retries N on "
		           "connect_error, timeout, 502, ...)");
		return -1;
	}
	size_t nv = flatten(d->args + 2, d->nargs - 2, NULL, 0);
	if (nv == 0) {
		derr(dc, d->args[1].pos, 2, "value", "retries ... on needs at least one condition");
		return -1;
	}
	const ast_value **vs = xmalloc(nv * sizeof *vs);
	flatten(d->args + 2, d->nargs - 2, vs, nv);
	uint32_t on = 0, ns = 0;
	memset(u->u.retry_status, 0, sizeof u->u.retry_status);
	for (size_t i = 0; i < nv; i++) {
		const ast_value *v = vs[i];
		if (is_ident(v, "connect_error")) {
			on |= GWB_RETRY_CONNECT;
		} else if (is_ident(v, "timeout")) {
			on |= GWB_RETRY_TIMEOUT;
		} else if (v->kind == AV_INT) {
			if (!((v->i >= 500 && v->i <= 599) || v->i == 429)) {
				derr(dc, v->pos, vspan(v), "status",
				     "retries on a status: only 500..599 and 429 can be retried, got %lld",
				     (long long)v->i);
			} else if (ns == 4) {
				derr(dc, v->pos, vspan(v), "value", "retries on: at most 4 statuses");
			} else {
				int dup = 0;
				for (uint32_t k = 0; k < ns; k++)
					dup |= u->u.retry_status[k] == (uint32_t)v->i;
				if (!dup)
					u->u.retry_status[ns++] = (uint32_t)v->i;
			}
		} else {
			expect_err(dc, v, "connect_error, timeout or a status (500..599, 429)");
		}
	}
	free(vs);
	u->u.retry_on = on;
	return dc->bad ? -1 : 0;
}

/* a plain string naming a file (tls_ca "ca.pem"); also accepts file("...") */
static int ups_file(dctx *dc, sema_upstream *u, const char **out)
{
	const ast_value *v = arg(dc, 0);
	const ast_value *a = v->kind == AV_STRING ? v : call_arg(v, "file");
	if (!a) {
		expect_err(dc, v, "a file name string");
		return -1;
	}
	char *p = sema_resolve_path(a->pos.file ? a->pos.file : dc->d->pos.file, a->s);
	struct stat st;
	if (dc->dg && stat(p, &st) != 0) {
		derr(dc, a->pos, vspan(a), "file", "cannot open file '%s' (%s): %s", a->s, p,
		     strerror(errno));
		free(p);
		return -1;
	}
	if (u->nowned < 4) {
		u->owned[u->nowned++] = p;
		*out = p;
	} else {
		free(p);
	}
	return 0;
}

static int dec_block(dctx *dc, sema_upstream *u, unsigned place);

static int dec_ups_dir(dctx *dc, sema_upstream *u, const struct dirspec *sp)
{
	const ast_value *v = arg(dc, 0);
	uint32_t x;
	switch (sp->id) {
	case D_SERVER: return dec_server(dc, u);
	case D_BALANCE: return dec_balance(dc, u);
	case D_KEEPALIVE:
		return get_u32(dc, v, 0, 1000000, &u->u.keepalive, "a connection count");
	case D_CONNECT_TIMEOUT:
		if (dur_ms(dc, v, &x) < 0)
			return -1;
		if (x == 0)
			derr(dc, v->pos, vspan(v), "value", "connect_timeout must be more than 0");
		u->u.connect_timeout_ms = x;
		return 0;
	case D_READ_TIMEOUT:
		if (dur_ms(dc, v, &x) < 0)
			return -1;
		if (x == 0)
			derr(dc, v->pos, vspan(v), "value", "read_timeout must be more than 0");
		u->u.read_timeout_ms = x;
		return 0;
	case D_RETRIES: return dec_retries(dc, u);
	case D_HEALTH_CHECK:
		u->u.flags |= GWB_UPS_HEALTH;
		return dec_block(dc, u, SP_HEALTH);
	case D_CIRCUIT_BREAKER:
		u->u.flags |= GWB_UPS_BREAKER;
		return dec_block(dc, u, SP_BREAKER);
	case D_TLS_VERIFY:
		if (is_ident(v, "off"))
			u->u.flags |= GWB_UPS_TLS_NOVERIFY;
		else if (!is_ident(v, "on"))
			expect_err(dc, v, "on or off");
		return 0;
	case D_TLS_CA: return ups_file(dc, u, &u->tls_ca);
	case D_TLS_CERT: return ups_file(dc, u, &u->tls_cert);
	case D_TLS_KEY: return ups_file(dc, u, &u->tls_key);
	case D_TLS_SNI: {
		sema_opnd o;
		if (get_str(dc, v, 1, &o, "a host name string") < 0)
			return -1;
		u->tls_sni = o.s;
		return 0;
	}
	case D_HC_PATH: {
		sema_opnd o;
		if (get_str(dc, v, 0, &o, "a path string") < 0)
			return -1;
		if (o.s[0] != '/')
			derr(dc, v->pos, vspan(v), "value", "health_check path must start with '/'");
		u->hc_path = o.s;
		return 0;
	}
	case D_HC_INTERVAL:
		if (dur_ms(dc, v, &x) == 0 && x == 0)
			derr(dc, v->pos, vspan(v), "value", "interval must be more than 0");
		u->u.hc_interval_ms = x;
		return 0;
	case D_HC_TIMEOUT:
		if (dur_ms(dc, v, &x) == 0 && x == 0)
			derr(dc, v->pos, vspan(v), "value", "timeout must be more than 0");
		u->u.hc_timeout_ms = x;
		return 0;
	case D_HC_HEALTHY:
		return get_u32(dc, v, 1, 1000, &u->u.hc_healthy, "a count");
	case D_HC_UNHEALTHY:
		return get_u32(dc, v, 1, 1000, &u->u.hc_unhealthy, "a count");
	case D_HC_EXPECT:
		if (v->kind == AV_RANGE) {
			if (v->i < 100 || v->i2 > 599 || v->i > v->i2) {
				derr(dc, v->pos, vspan(v), "status", "expect: status range must lie in 100..599");
				return -1;
			}
			u->u.hc_expect_lo = (uint32_t)v->i;
			u->u.hc_expect_hi = (uint32_t)v->i2;
			return 0;
		}
		if (v->kind == AV_INT) {
			if (get_u32(dc, v, 100, 599, &x, "a status") < 0)
				return -1;
			u->u.hc_expect_lo = u->u.hc_expect_hi = x;
			return 0;
		}
		expect_err(dc, v, "a status like 200 or a range like 200..399");
		return -1;
	case D_CB_FAILURES:
		return get_u32(dc, v, 1, 1000000, &u->u.cb_failures, "a count");
	case D_CB_WINDOW:
		if (dur_ms(dc, v, &x) == 0 && x == 0)
			derr(dc, v->pos, vspan(v), "value", "window must be more than 0");
		u->u.cb_window_ms = x;
		return 0;
	case D_CB_COOLDOWN:
		if (dur_ms(dc, v, &x) == 0 && x == 0)
			derr(dc, v->pos, vspan(v), "value", "cooldown must be more than 0");
		u->u.cb_cooldown_ms = x;
		return 0;
	default:
		return -1;
	}
}

/* the directives of an upstream or of one of its blocks */
static int dec_list(const ast_file *f, diag_ctx *dg, const ast_directive *v, size_t n,
                    unsigned place, sema_upstream *u)
{
	const ast_directive *seen[D__COUNT] = { 0 };
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		dctx dc = { f, dg, &v[i], NULL, 0 };
		const struct dirspec *sp = lookup(&dc, place);
		if (!sp) {
			bad = 1;
			continue;
		}
		if (sp->id != D_SERVER && seen[sp->id]) {
			derr(&dc, v[i].pos, (uint32_t)strlen(v[i].name), "duplicate",
			     "'%s' given twice in one %s", v[i].name,
			     place == SP_UPSTREAM ? "upstream" : place == SP_HEALTH ?
			     "health_check block" : "circuit_breaker block");
			if (dg)
				diag_note(dg, seen[sp->id]->pos, (uint32_t)strlen(v[i].name),
				          "first given here");
			bad = 1;
			continue;
		}
		seen[sp->id] = &v[i];
		if (dc.bad || dec_ups_dir(&dc, u, sp) < 0 || dc.bad)
			bad = 1;
	}
	return bad ? -1 : 0;
}

static int dec_block(dctx *dc, sema_upstream *u, unsigned place)
{
	return dec_list(dc->f, dc->dg, dc->d->block, dc->d->nblock, place, u);
}

int sema_decode_upstream(const ast_file *f, const ast_item *it, sema_upstream *u,
                         diag_ctx *dg)
{
	memset(u, 0, sizeof *u);
	u->u.flags = it->dynamic ? GWB_UPS_DYNAMIC : 0;
	u->u.balance = GWB_BAL_ROUND_ROBIN;
	u->u.keepalive = 64;
	u->u.connect_timeout_ms = 5000;
	u->u.read_timeout_ms = 60000;
	u->u.retries = 1;
	u->u.retry_on = GWB_RETRY_CONNECT;
	u->u.hc_interval_ms = 5000;
	u->u.hc_timeout_ms = 2000;
	u->u.hc_healthy = 2;
	u->u.hc_unhealthy = 3;
	u->u.hc_expect_lo = 200;
	u->u.hc_expect_hi = 399;
	u->u.cb_failures = 5;
	u->u.cb_window_ms = 10000;
	u->u.cb_cooldown_ms = 30000;
	u->hash_name = u->hc_path = u->tls_ca = u->tls_sni = u->tls_cert = u->tls_key = "";
	u->hc_path = "/";
	return dec_list(f, dg, it->dirs, it->ndirs, SP_UPSTREAM, u);
}

void sema_upstream_fini(sema_upstream *u)
{
	for (size_t i = 0; i < u->nservers; i++)
		free(u->servers[i].owned);
	free(u->servers);
	for (int i = 0; i < u->nowned; i++)
		free(u->owned[i]);
	memset(u, 0, sizeof *u);
}

/* ================================================================ match */

typedef struct sctx {
	ast_file *f;
	diag_ctx *d;
	sema_map ups, pol, rts;          /* name -> item index */
	uint8_t *ups_used, *pol_used;    /* per item index */
	int8_t *pol_state;               /* cycle search: 0 new, 1 on stack, 2 done */
} sctx;

/* -Wregex-prefix: "^" literal [".*"] ["$"] */
static void regex_prefix(sctx *c, const ast_expr *e)
{
	const char *p = e->s, *end = e->s + e->len;
	if (p == end || *p != '^')
		return;
	p++;
	char lit[256];
	size_t n = 0;
	int anchored_end = 0, dotstar = 0;
	while (p < end) {
		if (end - p >= 2 && p[0] == '.' && p[1] == '*' &&
		    (p + 2 == end || (p + 3 == end && p[2] == '$'))) {
			dotstar = 1;
			p = end;
			break;
		}
		if (*p == '$' && p + 1 == end) {
			anchored_end = 1;
			p++;
			break;
		}
		char ch;
		if (*p == '\\') {
			if (p + 1 >= end || isalnum((unsigned char)p[1]))
				return; /* \d, \w, \1 ... are not literal */
			ch = p[1];
			p += 2;
		} else if (strchr(".^$|?*+()[]{}", *p)) {
			return;
		} else {
			ch = *p++;
		}
		/* a quantifier after a literal makes it not literal */
		if (p < end && strchr("?*+{", *p))
			return;
		if (n + 1 >= sizeof lit)
			return;
		lit[n++] = ch;
	}
	lit[n] = '\0';
	if (n == 0 || lit[0] != '/')
		return;
	if (anchored_end && !dotstar)
		diag_warning(c->d, e->vpos, (uint32_t)e->len + 2, "regex-prefix",
		             "regex matches one fixed path; write path == \"%s\" (faster, indexed)", lit);
	else
		diag_warning(c->d, e->vpos, (uint32_t)e->len + 2, "regex-prefix",
		             "regex is a plain prefix; write path ^= \"%s\" (faster, indexed)", lit);
}

static void check_expr(sctx *c, const ast_expr *e)
{
	if (!e)
		return;
	dctx dc = { c->f, c->d, NULL, NULL, 0 };
	switch (e->kind) {
	case AE_AND: case AE_OR:
		check_expr(c, e->a);
		check_expr(c, e->b);
		return;
	case AE_NOT:
		check_expr(c, e->a);
		return;
	case AE_HOST_EQ: /* empty, wildcard placement, port: checked by the parser */
		if (e->s && strpbrk(e->s, "/ \t"))
			diag_error(c->d, e->vpos, (uint32_t)e->len + 2, "match",
			           "invalid host \"%s\"", e->s);
		return;
	case AE_PATH_EQ: case AE_PATH_PREFIX:
		if (!e->s || e->s[0] != '/')
			diag_error(c->d, e->vpos, (uint32_t)e->len + 2, "match",
			           "path must start with '/'");
		return;
	case AE_PATH_RE: {
		ast_value v = { 0 };
		v.kind = AV_STRING;
		v.pos = e->vpos;
		if (check_regex(&dc, &v, e->s, e->len) == 0)
			regex_prefix(c, e);
		return;
	}
	case AE_METHOD:
		if ((e->methods & GWB_M_ALL) == 0)
			diag_error(c->d, e->pos, 6, "match", "empty method set");
		return;
	case AE_HEADER_EQ: case AE_HEADER_HAS:
		if (!e->name || !is_token(e->name, strlen(e->name)))
			diag_error(c->d, e->pos, 6, "match", "'%s' is not a valid header name",
			           e->name ? e->name : "");
		return;
	case AE_QUERY_EQ: case AE_QUERY_HAS: case AE_COOKIE_EQ: case AE_COOKIE_HAS:
		if (!e->name || !*e->name)
			diag_error(c->d, e->pos, 5, "match", "empty name");
		return;
	case AE_IP_IN: {
		size_t n = flatten(e->cidrs, e->ncidrs, NULL, 0);
		const ast_value **vs = xmalloc(n * sizeof *vs);
		flatten(e->cidrs, e->ncidrs, vs, n);
		for (size_t i = 0; i < n; i++) {
			gwb_cidr cd;
			if (!vs[i]->s || sema_parse_cidr(vs[i]->s, &cd) < 0)
				diag_error(c->d, vs[i]->pos, vspan(vs[i]), "cidr", "invalid CIDR '%s'",
				           vs[i]->s ? vs[i]->s : "");
		}
		free(vs);
		return;
	}
	case AE_ANY:
		return;
	}
}

/* ================================================================ names */

static const char *kind_word(enum ast_ikind k)
{
	return k == AI_UPSTREAM ? "upstream" : k == AI_POLICY ? "policy" : "route";
}

static void collect_names(sctx *c)
{
	for (size_t i = 0; i < c->f->nitems; i++) {
		const ast_item *it = &c->f->items[i];
		if (!it->name)
			continue;
		sema_map *m = it->kind == AI_UPSTREAM ? &c->ups : it->kind == AI_POLICY ? &c->pol : &c->rts;
		long prev = sema_map_put(m, it->name, strlen(it->name), (long)i);
		if (prev >= 0) {
			const ast_item *first = &c->f->items[prev];
			uint32_t span = (uint32_t)strlen(it->name);
			diag_error(c->d, it->name_pos, span, "duplicate", "duplicate %s name '%s'",
			           kind_word(it->kind), it->name);
			diag_note(c->d, first->name_pos, span, "'%s' first defined here", it->name);
		}
	}
}

/* names of one kind, for "did you mean" */
static const char *suggest_name(sctx *c, enum ast_ikind k, const char *w)
{
	size_t n = 0;
	for (size_t i = 0; i < c->f->nitems; i++)
		if (c->f->items[i].kind == k && c->f->items[i].name)
			n++;
	if (!n)
		return NULL;
	const char **v = xmalloc(n * sizeof *v);
	n = 0;
	for (size_t i = 0; i < c->f->nitems; i++)
		if (c->f->items[i].kind == k && c->f->items[i].name)
			v[n++] = c->f->items[i].name;
	const char *s = diag_suggest(w, v, n);
	free(v);
	return s;
}

static long resolve(sctx *c, enum ast_ikind k, const sema_opnd *o)
{
	sema_map *m = k == AI_UPSTREAM ? &c->ups : &c->pol;
	long ix = sema_map_get(m, o->s, o->len);
	if (ix >= 0)
		return ix;
	const char *sug = suggest_name(c, k, o->s);
	uint32_t span = (uint32_t)o->len;
	if (sug)
		diag_error(c->d, o->pos, span, "undefined", "undefined %s '%s'; did you mean '%s'?",
		           kind_word(k), o->s, sug);
	else
		diag_error(c->d, o->pos, span, "undefined", "undefined %s '%s'", kind_word(k), o->s);
	return -1;
}

/* decode a route/policy body with diagnostics; mark uses */
static void check_body(sctx *c, const ast_item *it, unsigned place)
{
	for (size_t i = 0; i < it->ndirs; i++) {
		sema_insn in;
		if (sema_decode(c->f, &it->dirs[i], place, &in, c->d) < 0)
			continue;
		if (in.is_use) {
			long p = resolve(c, AI_POLICY, &in.a[0]);
			if (p >= 0)
				c->pol_used[p] = 1;
		} else if (in.op == GWB_OP_PROXY) {
			long u = resolve(c, AI_UPSTREAM, &in.a[0]);
			if (u >= 0)
				c->ups_used[u] = 1;
		}
		sema_insn_fini(&in);
	}
}

/* policy `use` graph: a cycle is an error, reported at the use closing it */
static void policy_dfs(sctx *c, size_t pi, size_t *stack, size_t depth)
{
	c->pol_state[pi] = 1;
	stack[depth] = pi;
	const ast_item *it = &c->f->items[pi];
	for (size_t i = 0; i < it->ndirs; i++) {
		const ast_directive *d = &it->dirs[i];
		if (strcmp(d->name, "use") != 0 || d->nargs != 1 || !d->args[0].s)
			continue;
		long q = sema_map_get(&c->pol, d->args[0].s, strlen(d->args[0].s));
		if (q < 0 || c->f->items[q].kind != AI_POLICY)
			continue;
		if (c->pol_state[q] == 1) {
			char chain[1024] = "";
			size_t k = 0;
			while (k < depth && stack[k] != (size_t)q)
				k++;
			for (size_t j = k; j <= depth; j++) {
				strncat(chain, c->f->items[stack[j]].name, sizeof chain - strlen(chain) - 1);
				strncat(chain, " -> ", sizeof chain - strlen(chain) - 1);
			}
			strncat(chain, c->f->items[q].name, sizeof chain - strlen(chain) - 1);
			diag_error(c->d, d->pos, 3, "cycle", "policy cycle: %s", chain);
		} else if (c->pol_state[q] == 0) {
			policy_dfs(c, (size_t)q, stack, depth + 1);
		}
	}
	c->pol_state[pi] = 2;
}

/* content actions of a route, policies spliced; guard against cycles */
typedef struct actlist {
	const ast_directive *act[8]; size_t nact;
	const ast_directive *cache;
	int unknown;     /* a directive no spec names: maybe a misspelt action */
} actlist;

static int known_directive(const char *name)
{
	for (size_t i = 0; i < NDIRS; i++)
		if (strcmp(dirs[i].name, name) == 0)
			return 1;
	return 0;
}

static void route_actions(sctx *c, const ast_item *it, actlist *al, uint8_t *onstack)
{
	for (size_t i = 0; i < it->ndirs; i++) {
		const ast_directive *d = &it->dirs[i];
		if (strcmp(d->name, "use") == 0) {
			if (d->nargs != 1 || !d->args[0].s)
				continue;
			long q = sema_map_get(&c->pol, d->args[0].s, strlen(d->args[0].s));
			if (q < 0 || onstack[q])
				continue;
			onstack[q] = 1;
			route_actions(c, &c->f->items[q], al, onstack);
			onstack[q] = 0;
		} else if (strcmp(d->name, "proxy") == 0 || strcmp(d->name, "respond") == 0 ||
		           strcmp(d->name, "redirect") == 0) {
			if (al->nact < 8)
				al->act[al->nact] = d;
			al->nact++;
		} else if (strcmp(d->name, "cache") == 0) {
			if (!al->cache)
				al->cache = d;
		} else if (!known_directive(d->name)) {
			al->unknown = 1;
		}
	}
}

static void check_route(sctx *c, size_t ri, uint8_t *onstack)
{
	const ast_item *it = &c->f->items[ri];
	uint32_t nspan = it->name ? (uint32_t)strlen(it->name) : 1;
	const char *name = it->name ? it->name : "?";
	/* two match statements and bad match syntax are the parser's to report */
	if (it->nmatch == 0)
		diag_error(c->d, it->name_pos, nspan, "match",
		           "route '%s' has no match (add e.g. `match path ^= \"/\";` or `match any;`)",
		           name);
	check_expr(c, it->match);
	check_body(c, it, SP_ROUTE);

	actlist al = { { 0 }, 0, NULL, 0 };
	route_actions(c, it, &al, onstack);
	/* `respnd 200;` is reported as unknown (did you mean 'respond'?);
	 * "no action" on top of it would only repeat the same mistake */
	if (al.nact == 0 && !al.unknown) {
		diag_error(c->d, it->name_pos, nspan, "action",
		           "route '%s' has no action (proxy, respond or redirect)", name);
	} else if (al.nact > 1) {
		const ast_directive *a = al.act[0], *b = al.act[1];
		const ast_directive *at = b;
		char more[64] = "";
		if (al.nact > 2)
			snprintf(more, sizeof more, " (and %zu more)", al.nact - 2);
		diag_error(c->d, at->pos, (uint32_t)strlen(at->name), "action",
		           "route '%s' has two actions: %s at %u:%u and %s at %u:%u%s", name,
		           a->name, a->pos.line, a->pos.col, b->name, b->pos.line, b->pos.col, more);
	}
	if (al.cache && al.nact >= 1 && strcmp(al.act[0]->name, "proxy") != 0)
		diag_error(c->d, al.cache->pos, 5, "action",
		           "cache only applies to proxy; route '%s' uses %s", name, al.act[0]->name);
	else if (al.cache && al.nact == 0)
		diag_error(c->d, al.cache->pos, 5, "action", "cache needs a proxy action");
}

int sema_check(ast_file *f, diag_ctx *d)
{
	size_t e0 = d->nerrors;
	if (!d->sources) {
		d->sources = f->sources;
		d->nsources = f->nsources;
	}
	sctx c;
	memset(&c, 0, sizeof c);
	c.f = f;
	c.d = d;
	sema_map_init(&c.ups);
	sema_map_init(&c.pol);
	sema_map_init(&c.rts);
	size_t n = f->nitems;
	c.ups_used = calloc(n + 1, 1);
	c.pol_used = calloc(n + 1, 1);
	c.pol_state = calloc(n + 1, 1);
	uint8_t *onstack = calloc(n + 1, 1);
	size_t *stack = calloc(n + 1, sizeof *stack);
	if (!c.ups_used || !c.pol_used || !c.pol_state || !onstack || !stack) {
		perror("gwc");
		abort();
	}
	collect_names(&c);

	size_t nroutes = 0;
	for (size_t i = 0; i < n; i++) {
		const ast_item *it = &f->items[i];
		if (it->kind == AI_UPSTREAM) {
			sema_upstream u;
			sema_decode_upstream(f, it, &u, d);
			int empty = u.nservers == 0 && !it->dynamic;
			sema_upstream_fini(&u);
			if (empty)
				diag_warning(d, it->name_pos, (uint32_t)strlen(it->name), "empty-upstream",
				             "upstream '%s' has no servers (declare it `upstream %s dynamic;` "
				             "if the admin API fills it)", it->name, it->name);
		} else if (it->kind == AI_POLICY) {
			check_body(&c, it, SP_POLICY);
			if (c.pol_state[i] == 0)
				policy_dfs(&c, i, stack, 0);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (f->items[i].kind == AI_ROUTE) {
			check_route(&c, i, onstack);
			if (++nroutes == GWB_MAX_ROUTES + 1)
				diag_error(d, f->items[i].pos, 5, "limit", "too many routes (limit is %u)",
				           GWB_MAX_ROUTES);
		}
	for (size_t i = 0; i < n; i++) {
		const ast_item *it = &f->items[i];
		if (!it->name)
			continue;
		/* only the first of duplicates counts as declared */
		sema_map *m = it->kind == AI_UPSTREAM ? &c.ups : &c.pol;
		if (it->kind == AI_ROUTE || sema_map_get(m, it->name, strlen(it->name)) != (long)i)
			continue;
		if (it->kind == AI_UPSTREAM && !c.ups_used[i])
			diag_warning(d, it->name_pos, (uint32_t)strlen(it->name), "unused-upstream",
			             "upstream '%s' is never used by a proxy", it->name);
		if (it->kind == AI_POLICY && !c.pol_used[i])
			diag_warning(d, it->name_pos, (uint32_t)strlen(it->name), "unused-policy",
			             "policy '%s' is never used", it->name);
	}
	shadow_check(f, d);

	sema_map_fini(&c.ups);
	sema_map_fini(&c.pol);
	sema_map_fini(&c.rts);
	free(c.ups_used);
	free(c.pol_used);
	free(c.pol_state);
	free(onstack);
	free(stack);
	return (int)(d->nerrors - e0);
}

/*
 * waf_inspect.c — splitting a request into parts and running the detectors.
 *
 * One walker visits the parts (path, query args, pre-split args, cookie
 * pairs, User-Agent, Referer, extra headers, form or JSON body) and hands
 * each raw value with its part label ("arg:id") to a visitor; waf_inspect's
 * visitor normalises and runs the classes, waf_foreach's normalises and
 * calls the caller (custom rules). Names are inspected as well as values.
 *
 * The JSON body is walked by a small streaming tokenizer rather than a DOM
 * parser: no allocation per request, linear, and it still sees every key
 * and every string (unescaped: \uXXXX and surrogate pairs) with the name
 * of the key it belongs to, nested arrays inheriting their key. Numbers,
 * booleans and null cannot carry an injection and are skipped. A body that
 * does not start like JSON is inspected as raw text.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "waf.h"

#define WAF_JSON_DEPTH 32
#define WAF_KEY_MAX    64

struct waf_scratch {
	size_t cap;                 /* size of norm and raw */
	char *norm;                 /* normalised value */
	char *raw;                  /* unescaped JSON string */
	char part[WAF_PART_MAX];    /* label of the part being visited */
	char keys[WAF_JSON_DEPTH][WAF_KEY_MAX];
};

waf_scratch *waf_scratch_new(size_t value_max)
{
	if (value_max == 0)
		value_max = WAF_VALUE_MAX_DEFAULT;
	waf_scratch *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->cap = value_max + 1;
	s->norm = malloc(s->cap);
	s->raw = malloc(s->cap);
	if (!s->norm || !s->raw) {
		waf_scratch_free(s);
		return NULL;
	}
	return s;
}

void waf_scratch_free(waf_scratch *s)
{
	if (!s)
		return;
	free(s->norm);
	free(s->raw);
	free(s);
}

enum waf_body_type waf_body_type_of(const char *ct, size_t len)
{
	size_t e = 0;
	while (e < len && ct[e] != ';' && ct[e] != ' ')
		e++;
	if (e == 33 && !strncasecmp(ct, "application/x-www-form-urlencoded", 33))
		return WAF_BODY_FORM;
	if ((e == 16 && !strncasecmp(ct, "application/json", 16)) ||
	    (e == 9 && !strncasecmp(ct, "text/json", 9)) ||
	    (e > 5 && !strncasecmp(ct + e - 5, "+json", 5)))
		return WAF_BODY_JSON;
	if ((e > 5 && !strncasecmp(ct, "text/", 5)) ||
	    (e == 15 && !strncasecmp(ct, "application/xml", 15)) ||
	    (e > 4 && !strncasecmp(ct + e - 4, "+xml", 4)))
		return WAF_BODY_RAW;
	return WAF_BODY_NONE;
}

/* ---- part labels ------------------------------------------------------ */
static int hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* label = prefix + name (percent-decoded when dec, '+' as space when plus,
 * non-printables as '?'), truncated to the buffer */
static const char *label(waf_scratch *sc, const char *prefix, const char *name, size_t len,
			 int dec)
{
	size_t o = strlen(prefix);
	memcpy(sc->part, prefix, o);
	for (size_t i = 0; i < len && o + 1 < sizeof sc->part; i++) {
		unsigned char c = (unsigned char)name[i];
		if (dec && c == '%' && i + 2 < len && hexv((unsigned char)name[i + 1]) >= 0 &&
		    hexv((unsigned char)name[i + 2]) >= 0) {
			c = (unsigned char)(hexv((unsigned char)name[i + 1]) << 4 | hexv((unsigned char)name[i + 2]));
			i += 2;
		} else if (dec && c == '+') {
			c = ' ';
		}
		sc->part[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	sc->part[o] = 0;
	return sc->part;
}

/* ---- the walker ------------------------------------------------------- */
enum vkind { V_PATH, V_ARG, V_NAME, V_FORM, V_COOKIE, V_UA, V_REFERER, V_HEADER, V_BODY };

/* a part's label, built only when needed (a hit, or waf_foreach) */
typedef struct pname {
	const char *prefix;
	const char *name;
	size_t len;
	int dec;           /* percent-decode the name */
} pname;

static const char *pname_str(waf_scratch *sc, const pname *p)
{
	return label(sc, p->prefix, p->name, p->len, p->dec);
}

typedef int (*visit_fn)(void *ctx, enum vkind kind, const pname *part, const char *raw,
			size_t len);

/* name=value pairs separated by sep */
static int walk_pairs(const char *s, size_t n, char sep,
		      const char *prefix, enum vkind kind, int trim, visit_fn visit, void *ctx)
{
	size_t i = 0;
	while (i < n) {
		size_t b = i;
		const char *x = memchr(s + i, sep, n - i);
		i = x ? (size_t)(x - s) : n;
		size_t e = i++;
		if (trim)
			while (b < e && (s[b] == ' ' || s[b] == '\t'))
				b++;
		if (b == e)
			continue;
		const char *eq = memchr(s + b, '=', e - b);
		size_t nl = eq ? (size_t)(eq - (s + b)) : e - b;
		int r;
		pname pn = {prefix, s + b, nl, kind != V_COOKIE};
		if (nl && (r = visit(ctx, kind == V_COOKIE ? V_COOKIE : V_NAME, &pn, s + b, nl)))
			return r;
		if (eq) {
			if ((r = visit(ctx, kind, &pn, eq + 1, e - nl - 1 - b)))
				return r;
		}
	}
	return 0;
}

static size_t utf8_put(unsigned long cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static long hex4(const unsigned char *p, const unsigned char *e)
{
	if (e - p < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexv(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* JSON string at s[i] == '"': unescape into out (cap); returns the index
 * after the closing quote (n if unterminated) and the length in *olen */
static size_t json_string(const unsigned char *s, size_t n, size_t i, char *out, size_t cap,
			  size_t *olen)
{
	size_t o = 0;
	char u[4];
	for (i++; i < n && s[i] != '"'; i++) {
		size_t ul = 1;
		u[0] = (char)s[i];
		if (s[i] == '\\' && i + 1 < n) {
			unsigned char c = s[++i];
			switch (c) {
			case 'n': u[0] = '\n'; break;
			case 't': u[0] = '\t'; break;
			case 'r': u[0] = '\r'; break;
			case 'b': u[0] = '\b'; break;
			case 'f': u[0] = '\f'; break;
			case 'u': {
				long cp = hex4(s + i + 1, s + n);
				if (cp < 0) {
					u[0] = 'u';
					break;
				}
				i += 4;
				if (cp >= 0xd800 && cp <= 0xdbff && i + 6 < n && s[i + 1] == '\\' &&
				    s[i + 2] == 'u') {
					long lo = hex4(s + i + 3, s + n);
					if (lo >= 0xdc00 && lo <= 0xdfff) {
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						i += 6;
					}
				}
				ul = utf8_put((unsigned long)cp, u);
				break;
			}
			default: u[0] = (char)c; break;
			}
		}
		if (o + ul < cap) {
			memcpy(out + o, u, ul);
			o += ul;
		}
	}
	*olen = o;
	return i < n ? i + 1 : n;
}

static int walk_json(waf_scratch *sc, const char *body, size_t n, visit_fn visit, void *ctx)
{
	const unsigned char *s = (const unsigned char *)body;
	char kind[WAF_JSON_DEPTH];
	int depth = 0;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		if (c == '{' || c == '[') {
			if (depth < WAF_JSON_DEPTH) {
				kind[depth] = (char)c;
				/* values of an array belong to the array's key */
				if (depth > 0)
					memcpy(sc->keys[depth], sc->keys[depth - 1], WAF_KEY_MAX);
				else
					sc->keys[0][0] = 0;
			}
			depth++;
			i++;
			continue;
		}
		if (c == '}' || c == ']') {
			if (depth > 0)
				depth--;
			i++;
			continue;
		}
		if (c != '"') {
			i++;
			continue;
		}
		size_t len;
		i = json_string(s, n, i, sc->raw, sc->cap, &len);
		size_t j = i;
		while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
			j++;
		int d = depth > WAF_JSON_DEPTH ? WAF_JSON_DEPTH - 1 : depth - 1;
		int is_key = d >= 0 && kind[d] == '{' && j < n && s[j] == ':';
		if (is_key) {
			size_t k = len < WAF_KEY_MAX - 1 ? len : WAF_KEY_MAX - 1;
			memcpy(sc->keys[d], sc->raw, k);
			sc->keys[d][k] = 0;
		}
		const char *key = d >= 0 ? sc->keys[d] : "";
		pname pn = {"body:", key, strlen(key), 0};
		int r = visit(ctx, V_BODY, &pn, sc->raw, len);
		if (r)
			return r;
	}
	return 0;
}

static int walk(const waf_input *in, unsigned where, visit_fn visit, void *ctx)
{
	waf_scratch *sc = in->scratch;
	int r;

	static const pname p_path = {"path", "", 0, 0}, p_ua = {"header:User-Agent", "", 0, 0},
			    p_ref = {"header:Referer", "", 0, 0}, p_body = {"body", "", 0, 0};

	if ((where & WAF_IN_PATH) && in->path_len &&
	    (r = visit(ctx, V_PATH, &p_path, in->path, in->path_len)))
		return r;
	if (where & WAF_IN_ARGS) {
		if (in->query_len &&
		    (r = walk_pairs(in->query, in->query_len, '&', "arg:", V_ARG, 0, visit, ctx)))
			return r;
		for (size_t k = 0; k < in->nargs; k++) {
			const waf_pair *a = &in->args[k];
			pname pn = {"arg:", a->name, a->name_len, 1};
			if (a->name_len && (r = visit(ctx, V_NAME, &pn, a->name, a->name_len)))
				return r;
			if (a->value_len && (r = visit(ctx, V_ARG, &pn, a->value, a->value_len)))
				return r;
		}
	}
	if (where & WAF_IN_HEADERS) {
		if (in->cookie_len &&
		    (r = walk_pairs(in->cookie, in->cookie_len, ';', "cookie:", V_COOKIE, 1, visit, ctx)))
			return r;
		if (in->user_agent_len &&
		    (r = visit(ctx, V_UA, &p_ua, in->user_agent, in->user_agent_len)))
			return r;
		if (in->referer_len &&
		    (r = visit(ctx, V_REFERER, &p_ref, in->referer, in->referer_len)))
			return r;
		for (size_t k = 0; k < in->nheaders; k++) {
			const waf_pair *h = &in->headers[k];
			pname pn = {"header:", h->name, h->name_len, 0};
			if (h->value_len && (r = visit(ctx, V_HEADER, &pn, h->value, h->value_len)))
				return r;
		}
	}
	if ((where & WAF_IN_BODY) && in->body_len) {
		enum waf_body_type t = in->body_type;
		if (t == WAF_BODY_JSON) {
			size_t i = 0;
			while (i < in->body_len && strchr(" \t\r\n", in->body[i]))
				i++;
			if (i == in->body_len || (in->body[i] != '{' && in->body[i] != '['))
				t = WAF_BODY_RAW;  /* not JSON after all: look at it whole */
		}
		switch (t) {
		case WAF_BODY_FORM:
			return walk_pairs(in->body, in->body_len, '&', "body:", V_FORM, 0, visit, ctx);
		case WAF_BODY_JSON:
			return walk_json(sc, in->body, in->body_len, visit, ctx);
		case WAF_BODY_RAW:
			return visit(ctx, V_BODY, &p_body, in->body, in->body_len);
		default:
			break;
		}
	}
	return 0;
}

/* ---- inspection ------------------------------------------------------- */
typedef struct ictx {
	const waf_input *in;
	unsigned classes;
	waf_hit *hit;
} ictx;

static unsigned flags_for(enum vkind k)
{
	switch (k) {
	case V_ARG: case V_NAME: case V_FORM: case V_REFERER:
		return WAF_N_DEFAULT | WAF_N_PLUS;
	default:
		return WAF_N_DEFAULT;
	}
}

static void excerpt(char *out, size_t cap, const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f) {
			out[o++] = (char)c;
		} else {
			if (o + 5 >= cap)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hx[c >> 4];
			out[o++] = hx[c & 15];
		}
	}
	out[o] = 0;
}

/* header names whose appearance after a line break is response splitting */
static const char *const split_headers[] = {
	"set-cookie", "location", "content-type", "content-length", "refresh",
	"x-xss-protection", "access-control-allow-origin", "transfer-encoding",
	"content-security-policy", "cache-control", "http/1.", NULL
};

static const char *crlf_injection(const char *s, size_t n, size_t *pos)
{
	for (const char *p = memchr(s, '\n', n); p; p = memchr(p + 1, '\n', (size_t)(s + n - p - 1))) {
		const char *q = p + 1;
		while (q < s + n && *q == ' ')
			q++;
		for (int k = 0; split_headers[k]; k++) {
			size_t l = strlen(split_headers[k]);
			if ((size_t)(s + n - q) >= l && !memcmp(q, split_headers[k], l)) {
				*pos = (size_t)(p - s);
				return "protocol-crlf-injection";
			}
		}
	}
	return NULL;
}

static unsigned fire(ictx *c, unsigned cls, const char *rule, const pname *part, const char *s,
		     size_t n, size_t pos, const char *fp)
{
	waf_hit *h = c->hit;
	if (h) {
		h->cls = cls;
		h->class_name = waf_class_name(cls);
		h->rule_id = rule;
		snprintf(h->part, sizeof h->part, "%s", pname_str(c->in->scratch, part));
		excerpt(h->excerpt, sizeof h->excerpt, s + pos, pos < n ? n - pos : 0);
		snprintf(h->detail, sizeof h->detail, "%s", fp ? fp : "");
	}
	return cls;
}

static int inspect_visit(void *vctx, enum vkind kind, const pname *part, const char *raw, size_t len)
{
	ictx *c = vctx;
	waf_scratch *sc = c->in->scratch;
	unsigned anom = 0;
	size_t n = waf_normalize(raw, len, flags_for(kind), sc->norm, sc->cap, &anom);
	const char *s = sc->norm;
	const char *rule;
	size_t pos = 0;

	if (c->classes & WAF_SQLI) {
		char fp[24];
		if (kind == V_PATH) {
			/* REST paths carry values in their segments */
			for (size_t i = 0; i < n;) {
				while (i < n && s[i] == '/')
					i++;
				size_t b = i;
				while (i < n && s[i] != '/')
					i++;
				if (i > b && (rule = waf_sqli_check(s + b, i - b, &pos, fp, sizeof fp)))
					return (int)fire(c, WAF_SQLI, rule, part, s, n, b + pos, fp);
			}
		} else if ((rule = waf_sqli_check(s, n, &pos, fp, sizeof fp))) {
			return (int)fire(c, WAF_SQLI, rule, part, s, n, pos, fp);
		}
	}
	if ((c->classes & WAF_XSS) && (rule = waf_xss_check(s, n, &pos)))
		return (int)fire(c, WAF_XSS, rule, part, s, n, pos, NULL);
	if (c->classes & WAF_TRAVERSAL) {
		if ((rule = waf_traversal_check(s, n, &pos)))
			return (int)fire(c, WAF_TRAVERSAL, rule, part, s, n, pos, NULL);
		/* NUL truncation of a file name: page.php%00.jpg */
		if ((anom & WAF_A_NUL) && kind != V_UA && kind != V_HEADER && memchr(s, '.', n))
			return (int)fire(c, WAF_TRAVERSAL, "traversal-nul", part, s, n, 0, NULL);
	}
	if (c->classes & WAF_SCANNER) {
		if (kind == V_PATH && (rule = waf_scanner_path(s, n, &pos)))
			return (int)fire(c, WAF_SCANNER, rule, part, s, n, pos, NULL);
		if (kind == V_UA && (rule = waf_scanner_ua(s, n, &pos)))
			return (int)fire(c, WAF_SCANNER, rule, part, s, n, pos, NULL);
	}
	if (c->classes & WAF_PROTOCOL) {
		if (anom & WAF_A_NUL)
			rule = "protocol-nul";
		else if (anom & WAF_A_OVERLONG)
			rule = "protocol-overlong-utf8";
		else if (kind == V_PATH && (anom & WAF_A_BADESC))
			rule = "protocol-bad-escape";
		else if (kind == V_PATH && (anom & WAF_A_CTRL))
			rule = "protocol-control-char";
		else if (kind == V_PATH && (anom & WAF_A_DEEP))
			rule = "protocol-deep-encoding";
		else
			rule = NULL;
		if (!rule && (kind == V_UA || kind == V_REFERER || kind == V_HEADER || kind == V_COOKIE)) {
			for (size_t i = 0; i < len; i++) {
				unsigned char ch = (unsigned char)raw[i];
				if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
					rule = "protocol-control-char";
					break;
				}
			}
		}
		if (rule)
			return (int)fire(c, WAF_PROTOCOL, rule, part, s, n, 0, NULL);
		if (kind != V_PATH && (rule = crlf_injection(s, n, &pos)))
			return (int)fire(c, WAF_PROTOCOL, rule, part, s, n, pos, NULL);
	}
	return 0;
}

unsigned waf_inspect(const waf_input *in, unsigned classes, waf_hit *hit)
{
	if (!in || !in->scratch || !(classes & WAF_ALL))
		return 0;
	ictx c = {in, classes & WAF_ALL, hit};
	return (unsigned)walk(in, WAF_IN_ALL, inspect_visit, &c);
}

/* ---- waf_foreach ------------------------------------------------------ */
typedef struct fctx {
	const waf_input *in;
	unsigned flags;
	waf_part_fn fn;
	void *ctx;
} fctx;

static int foreach_visit(void *vctx, enum vkind kind, const pname *part, const char *raw, size_t len)
{
	fctx *f = vctx;
	waf_scratch *sc = f->in->scratch;
	unsigned fl = f->flags;
	if (kind == V_ARG || kind == V_NAME || kind == V_FORM)
		fl |= WAF_N_PLUS;
	size_t n = waf_normalize(raw, len, fl, sc->norm, sc->cap, NULL);
	return f->fn(f->ctx, pname_str(sc, part), sc->norm, n);
}

int waf_foreach(const waf_input *in, unsigned where, unsigned flags, waf_part_fn fn, void *ctx)
{
	if (!in || !in->scratch || !fn)
		return 0;
	fctx f = {in, flags, fn, ctx};
	return walk(in, where, foreach_visit, &f);
}

/* ---- excerpt helper for waf_rule.c ---------------------------------- */
void waf__fill_hit(waf_hit *h, const char *rule, const char *part, const char *s, size_t n,
		   size_t pos);
void waf__fill_hit(waf_hit *h, const char *rule, const char *part, const char *s, size_t n,
		   size_t pos)
{
	h->cls = 0;
	h->class_name = "rule";
	h->rule_id = rule;
	snprintf(h->part, sizeof h->part, "%s", part);
	excerpt(h->excerpt, sizeof h->excerpt, s + pos, pos < n ? n - pos : 0);
	h->detail[0] = 0;
}

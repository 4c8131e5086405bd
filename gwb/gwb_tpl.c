/*
 * gwb_tpl.c — templates in action strings: literal text with $0..$9 (regex
 * captures; $0 is the whole match), $$ (a dollar) and ${var}. gwc checks
 * them (gwb_tpl_check) so that gwd can expand them without surprises.
 */
#include "config.h"

#include <string.h>
#include "gwb_int.h"

static const struct {
	const char *name;
	enum gwb_tplvar var;
} tpl_vars[] = {
	{ "host", GWB_V_HOST }, { "path", GWB_V_PATH }, { "query", GWB_V_QUERY },
	{ "method", GWB_V_METHOD }, { "scheme", GWB_V_SCHEME }, { "uri", GWB_V_URI },
	{ "client_ip", GWB_V_CLIENT_IP }, { "request_id", GWB_V_REQUEST_ID },
	{ "tls.client_subject", GWB_V_TLS_CLIENT_SUBJECT },
};

#define TPL_HEADER "header."

/* RFC 9110 tchar: what a header name may be made of */
static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* parses the name between "${" and "}": 0 and the variable, or -1 */
static int tpl_var(const char *nm, size_t n, enum gwb_tplvar *var,
                   const char **hname, size_t *hlen)
{
	size_t hp = sizeof TPL_HEADER - 1;
	if (n > hp && memcmp(nm, TPL_HEADER, hp) == 0) {
		for (size_t i = hp; i < n; i++)
			if (!is_tchar((unsigned char)nm[i]))
				return -1;
		*var = GWB_V_HEADER;
		*hname = nm + hp;
		*hlen = n - hp;
		return 0;
	}
	for (size_t i = 0; i < sizeof tpl_vars / sizeof tpl_vars[0]; i++)
		if (strlen(tpl_vars[i].name) == n && memcmp(tpl_vars[i].name, nm, n) == 0) {
			*var = tpl_vars[i].var;
			*hname = NULL;
			*hlen = 0;
			return 0;
		}
	return -1;
}

int gwb_tpl_check(const char *s, size_t n, size_t *erroff, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '$')
			continue;
		if (erroff)
			*erroff = i;
		if (i + 1 == n)
			return gwb_errf(err, errlen, "'$' at end of template (write '$$' for a dollar)");
		char c = s[i + 1];
		if (c == '$' || (c >= '0' && c <= '9')) {
			i++;
			continue;
		}
		if (c != '{') {
			if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
				return gwb_errf(err, errlen, "invalid '$%c' in template (write '$$' for a dollar)", c);
			return gwb_errf(err, errlen, "invalid '$' in template (write '$$' for a dollar)");
		}
		const char *end = memchr(s + i + 2, '}', n - i - 2);
		if (!end)
			return gwb_errf(err, errlen, "unterminated '${' in template");
		size_t nl = (size_t)(end - (s + i + 2));
		enum gwb_tplvar v;
		const char *hn;
		size_t hl;
		if (tpl_var(s + i + 2, nl, &v, &hn, &hl) < 0)
			return gwb_errf(err, errlen, "unknown variable '${%.*s}' in template", (int)(nl > 64 ? 64 : nl), s + i + 2);
		i = (size_t)(end - s);
	}
	return 0;
}

/* copies what fits, counts everything */
static void out_put(char *out, size_t cap, size_t *len, const char *p, size_t n)
{
	if (*len < cap) {
		size_t room = cap - *len;
		memcpy(out + *len, p, n < room ? n : room);
	}
	*len += n;
}

size_t gwb_tpl_expand(const char *s, size_t n, const char *subject,
                      const gwb_match *m, gwb_tpl_lookup lookup, void *ctx,
                      char *out, size_t cap)
{
	size_t len = 0, i = 0;

	while (i < n) {
		const char *d = memchr(s + i, '$', n - i);
		size_t lit = d ? (size_t)(d - (s + i)) : n - i;
		out_put(out, cap, &len, s + i, lit);
		i += lit;
		if (i >= n)
			break;
		/* s[i] == '$'; unchecked templates degrade to literal text */
		if (i + 1 == n) {
			out_put(out, cap, &len, "$", 1);
			break;
		}
		char c = s[i + 1];
		if (c == '$') {
			out_put(out, cap, &len, "$", 1);
			i += 2;
		} else if (c >= '0' && c <= '9') {
			int k = c - '0';
			if (m && subject && k < m->ncap && k < GWB_MAX_CAPTURES &&
			    m->cap[2 * k] != (size_t)~0 && m->cap[2 * k + 1] >= m->cap[2 * k])
				out_put(out, cap, &len, subject + m->cap[2 * k],
				        m->cap[2 * k + 1] - m->cap[2 * k]);
			i += 2;
		} else if (c == '{') {
			const char *end = memchr(s + i + 2, '}', n - i - 2);
			enum gwb_tplvar v;
			const char *hn, *val;
			size_t hl, vl;
			if (!end || tpl_var(s + i + 2, (size_t)(end - (s + i + 2)), &v, &hn, &hl) < 0) {
				out_put(out, cap, &len, "$", 1);
				i++;
				continue;
			}
			if (lookup && lookup(ctx, v, hn, hl, &val, &vl))
				out_put(out, cap, &len, val, vl);
			i = (size_t)(end - s) + 1;
		} else {
			out_put(out, cap, &len, "$", 1);
			i++;
		}
	}
	if (cap)
		out[len < cap ? len : cap - 1] = '\0';
	return len;
}

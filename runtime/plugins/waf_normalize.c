/*
 * waf_normalize.c — canonical text for the detectors.
 *
 * Decoding runs in rounds: round 1 reads the input and writes the output
 * buffer, later rounds decode the output in place. That is safe because
 * every decoding shrinks the text (%HH: 3 bytes -> 1, %uHHHH: 6 -> at most
 * 3, &#x10ffff; 10 -> 4, a named entity is longer than its UTF-8), so the
 * write position never passes the read position. Rounds repeat while the
 * text changes (double and triple encoding) up to WAF_DECODE_ROUNDS; a last
 * pass then folds Unicode tricks, whitespace variants, NULs and case.
 */
#include "config.h"

#include <string.h>

#include "waf.h"

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int hex2(const unsigned char *p)
{
	int a = hexval(p[0]), b = hexval(p[1]);
	return (a < 0 || b < 0) ? -1 : (a << 4 | b);
}

static long hexn(const unsigned char *p, int k)
{
	long v = 0;
	for (int i = 0; i < k; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* UTF-8 encoding of cp into o (at most 4 bytes); returns the length */
static int utf8_put(unsigned long cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Named entities worth knowing: the ones filter-evasion lists use to spell
 * script URLs and markup (&colon; &lpar; &Tab; ...) plus everyday ones.
 * Matched case-insensitively; all need the ';' except lt, gt and quot,
 * which browsers accept bare. */
static const struct entity {
	const char *name;
	unsigned short cp;
} entities[] = {
	{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
	{"nbsp", 0xa0}, {"colon", ':'}, {"lpar", '('}, {"rpar", ')'},
	{"sol", '/'}, {"bsol", '\\'}, {"tab", '\t'}, {"newline", '\n'},
	{"semi", ';'}, {"equals", '='}, {"excl", '!'}, {"num", '#'},
	{"percnt", '%'}, {"plus", '+'}, {"comma", ','}, {"period", '.'},
	{"lowbar", '_'}, {"grave", '`'}, {"lsqb", '['}, {"rsqb", ']'},
	{"lbrack", '['}, {"rbrack", ']'}, {"lcub", '{'}, {"rcub", '}'},
	{"lbrace", '{'}, {"rbrace", '}'}, {"quest", '?'}, {"commat", '@'},
	{"ast", '*'}, {"midast", '*'}, {"dollar", '$'}, {"hat", '^'},
	{"verbar", '|'}, {"vert", '|'}, {"hyphen", '-'}, {"dash", 0x2010},
	{"copy", 0xa9}, {"reg", 0xae}, {"shy", 0xad}, {"zwsp", 0x200b},
};

/* entity at p (p[0] == '&'), end e: code point and consumed length, or -1 */
static long entity_at(const unsigned char *p, const unsigned char *e, size_t *used)
{
	const unsigned char *q = p + 1;
	if (q < e && *q == '#') {
		q++;
		int hex = 0;
		if (q < e && (*q | 0x20) == 'x') {
			hex = 1;
			q++;
		}
		const unsigned char *d = q;
		unsigned long cp = 0;
		/* leading zeros are legal (&#0000106;) and common in evasions */
		while (q < e && (hex ? hexval(*q) >= 0 : (*q >= '0' && *q <= '9'))) {
			cp = hex ? cp * 16 + (unsigned long)hexval(*q) : cp * 10 + (unsigned long)(*q - '0');
			if (cp > 0x10ffff)
				return -1;
			q++;
		}
		if (q == d)
			return -1;
		if (q < e && *q == ';')
			q++;
		*used = (size_t)(q - p);
		return (long)cp;
	}
	const unsigned char *n = q;
	while (q < e && q - n < 8 && (((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z')))
		q++;
	size_t len = (size_t)(q - n);
	if (len < 2)
		return -1;
	for (size_t i = 0; i < sizeof entities / sizeof entities[0]; i++) {
		const char *en = entities[i].name;
		if (strlen(en) != len)
			continue;
		size_t k = 0;
		while (k < len && (n[k] | 0x20) == (unsigned char)en[k])
			k++;
		if (k != len)
			continue;
		if (q < e && *q == ';') {
			*used = (size_t)(q + 1 - p);
			return entities[i].cp;
		}
		if (!strcmp(en, "lt") || !strcmp(en, "gt") || !strcmp(en, "quot")) {
			*used = (size_t)(q - p);
			return entities[i].cp;
		}
		return -1;
	}
	return -1;
}

/* bytes a decoding round may act on */
static const unsigned char dec_special[256] = {['%'] = 1, ['+'] = 1, ['&'] = 1, ['\\'] = 1};

/* One decoding round from src[0..n) to dst (dst may equal src). Returns the
 * output length; *changed is set when anything was decoded. */
static size_t decode_round(const unsigned char *src, size_t n, unsigned char *dst, size_t cap,
			   unsigned flags, int first, unsigned *anom, int *changed)
{
	const unsigned char *p = src, *e = src + n;
	size_t o = 0;
	unsigned char u[4];

	while (p < e) {
		/* copy the run of ordinary bytes at once */
		const unsigned char *q = p;
		while (q < e && !dec_special[*q])
			q++;
		if (q > p) {
			size_t run = (size_t)(q - p);
			if (o + run >= cap) {
				run = cap - 1 - o;
				*anom |= WAF_A_TRUNC;
				memmove(dst + o, p, run);
				o += run;
				break;
			}
			memmove(dst + o, p, run);
			o += run;
			p = q;
			continue;
		}
		unsigned char c = *p;
		int ulen = -1;        /* bytes in u to emit, -1: copy c */
		size_t used = 1;

		if (c == '%' && (flags & WAF_N_PERCENT)) {
			int v;
			long cp;
			if (e - p >= 3 && (v = hex2(p + 1)) >= 0) {
				u[0] = (unsigned char)v;
				ulen = 1;
				used = 3;
			} else if (e - p >= 6 && (p[1] | 0x20) == 'u' && (cp = hexn(p + 2, 4)) >= 0) {
				ulen = utf8_put((unsigned long)cp, u);
				used = 6;
			} else if (first) {
				*anom |= WAF_A_BADESC;
			}
		} else if (c == '+' && first && (flags & WAF_N_PLUS)) {
			u[0] = ' ';
			ulen = 1;
		} else if (c == '&' && (flags & WAF_N_HTML)) {
			long cp = entity_at(p, e, &used);
			if (cp >= 0)
				ulen = utf8_put((unsigned long)cp, u);
			else
				used = 1;
		} else if (c == '\\' && (flags & WAF_N_JSESC) && e - p >= 4) {
			long cp = -1;
			if ((p[1] == 'u' || p[1] == 'U') && e - p >= 6 && (cp = hexn(p + 2, 4)) >= 0)
				used = 6;
			else if ((p[1] == 'x' || p[1] == 'X') && (cp = hex2(p + 2)) >= 0)
				used = 4;
			if (cp >= 0)
				ulen = utf8_put((unsigned long)cp, u);
		}

		if (ulen < 0) {
			if (o + 1 >= cap) {
				*anom |= WAF_A_TRUNC;
				break;
			}
			dst[o++] = c;
			p++;
			continue;
		}
		if (o + (size_t)ulen >= cap) {
			*anom |= WAF_A_TRUNC;
			break;
		}
		for (int i = 0; i < ulen; i++) {
			if (u[i] == 0)
				*anom |= WAF_A_NUL;
			dst[o++] = u[i];
		}
		p += used;
		*changed = 1;
	}
	return o;
}

/* Would one more round change anything? (a decodable sequence is left) */
static int has_decodable(const unsigned char *s, size_t n, unsigned flags)
{
	for (size_t i = 0; i < n; i++) {
		size_t used;
		if (s[i] == '%' && (flags & WAF_N_PERCENT) &&
		    ((n - i >= 3 && hex2(s + i + 1) >= 0) ||
		     (n - i >= 6 && (s[i + 1] | 0x20) == 'u' && hexn(s + i + 2, 4) >= 0)))
			return 1;
		if (s[i] == '&' && (flags & WAF_N_HTML) && entity_at(s + i, s + n, &used) >= 0)
			return 1;
	}
	return 0;
}

/* Length of a valid UTF-8 sequence at p (2..4) and its code point, with
 * overlong forms accepted (and reported) so they can be folded; 0 if the
 * bytes are not a sequence. */
static int utf8_get(const unsigned char *p, const unsigned char *e, unsigned long *cp, int *overlong)
{
	unsigned char c = p[0];
	int len;
	unsigned long v;
	if (c >= 0xc0 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (e - p < len)
		return 0;
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	*overlong = (len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000);
	*cp = v;
	return len;
}

static int is_unicode_space(unsigned long cp)
{
	return cp == 0xa0 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0x1680 || cp == 0x85;
}

static int is_zero_width(unsigned long cp)
{
	return (cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 || cp == 0xfeff || cp == 0xad;
}

/* Skip a C comment at p ("/ *" ... "* /"); returns the position after it. */
static size_t skip_sql_comment(const unsigned char *s, size_t i, size_t n)
{
	for (i += 2; i + 1 < n; i++)
		if (s[i] == '*' && s[i + 1] == '/')
			return i + 2;
	return n;
}

/* fold_pass: 0 copy, 1 ASCII upper case, 2 may start or end an SQL
 * comment, 3 control, NUL or non-ASCII */
static const unsigned char fold_kind[256] = {
	[0 ... 0x1f] = 3, ['A' ... 'Z'] = 1, ['/'] = 2, ['*'] = 2, [0x7f ... 0xff] = 3,
};

/* Last pass, in place: Unicode folding, whitespace, NUL, control chars,
 * SQL comments, case. */
static size_t fold_pass(unsigned char *s, size_t n, unsigned flags, unsigned *anom)
{
	size_t o = 0;
	int in_exec = 0;   /* inside a MySQL executable comment / *! ... * / */

	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		unsigned char k = fold_kind[c];

		if (k == 0 || (k == 2 && !(flags & WAF_N_SQLCMT) && !in_exec)) {
			s[o++] = c;  /* the common case: nothing to fold */
			i++;
			continue;
		}
		if (k == 1) {
			s[o++] = (flags & WAF_N_LOWER) ? (unsigned char)(c | 0x20) : c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			unsigned long cp;
			int ol = 0;
			int len = utf8_get(s + i, s + n, &cp, &ol);
			if (len == 0) {
				/* a lone 0xa0 is Latin-1 NBSP (%a0) */
				s[o++] = (c == 0xa0 && (flags & WAF_N_SPACE)) ? ' ' : c;
				i++;
				continue;
			}
			if (ol)
				*anom |= WAF_A_OVERLONG;
			if (flags & WAF_N_OVERLONG) {
				if (cp == 0x2215 || cp == 0x2044)
					cp = 0xff0f;  /* division and fraction slash */
				else if (cp == 0x2216 || cp == 0xfe68)
					cp = 0xff3c;  /* set minus, small reverse solidus */
				if (ol || (cp >= 0xff01 && cp <= 0xff5e)) {
					/* overlong or fullwidth form of an ASCII char
					 * (%c0%af, %uff0f): what IIS-style best-fit
					 * mapping and lax decoders turn it into */
					if (cp >= 0xff01)
						cp -= 0xfee0;
					if (cp < 0x80) {
						s[i + len - 1] = (unsigned char)cp;
						i += len - 1;  /* reprocess as ASCII */
						continue;
					}
				}
				if (is_zero_width(cp)) {
					i += len;
					continue;
				}
			}
			if ((flags & WAF_N_SPACE) && is_unicode_space(cp)) {
				s[o++] = ' ';
				i += len;
				continue;
			}
			memmove(s + o, s + i, (size_t)len);
			o += (size_t)len;
			i += len;
			continue;
		}
		if (c == 0) {
			*anom |= WAF_A_NUL;
			if (flags & WAF_N_NUL) {
				i++;
				continue;
			}
		} else if (c < 0x20 || c == 0x7f) {
			*anom |= WAF_A_CTRL;
			/* line breaks stay one '\n': SQL line comments (#, --)
			 * end there and header injection needs them */
			if ((flags & WAF_N_SPACE) && (c == '\n' || c == '\r'))
				c = '\n';
			else if ((flags & WAF_N_SPACE) && (c == '\t' || c == '\v' || c == '\f'))
				c = ' ';
		} else if ((flags & WAF_N_SQLCMT) && c == '/' && i + 1 < n && s[i + 1] == '*') {
			if (i + 2 < n && s[i + 2] == '!') {
				/* MySQL runs the body of / *!NNNNN ... * / as code */
				i += 3;
				for (int d = 0; d < 5 && i < n && s[i] >= '0' && s[i] <= '9'; d++)
					i++;
				in_exec = 1;
				s[o++] = ' ';
				continue;
			}
			i = skip_sql_comment(s, i, n);
			s[o++] = ' ';
			continue;
		} else if ((flags & WAF_N_SQLCMT) && in_exec && c == '*' && i + 1 < n && s[i + 1] == '/') {
			in_exec = 0;
			i += 2;
			s[o++] = ' ';
			continue;
		} else if ((flags & WAF_N_LOWER) && c >= 'A' && c <= 'Z') {
			c |= 0x20;
		}
		s[o++] = c;
		i++;
	}
	return o;
}

size_t waf_normalize(const char *in, size_t n, unsigned flags, char *out, size_t cap,
		     unsigned *anomalies)
{
	unsigned anom = 0;
	size_t len = 0;

	if (cap == 0) {
		if (anomalies)
			*anomalies = n ? WAF_A_TRUNC : 0;
		return 0;
	}
	unsigned char *o = (unsigned char *)out;
	int changed = 0;
	if (flags & (WAF_N_PERCENT | WAF_N_PLUS | WAF_N_HTML | WAF_N_JSESC)) {
		len = decode_round((const unsigned char *)in, n, o, cap, flags, 1, &anom, &changed);
		int round = 1;
		while (changed && round < WAF_DECODE_ROUNDS) {
			changed = 0;
			len = decode_round(o, len, o, cap, flags, 0, &anom, &changed);
			round++;
		}
		if (changed && has_decodable(o, len, flags))
			anom |= WAF_A_DEEP;
	} else {
		len = n < cap - 1 ? n : cap - 1;
		if (len < n)
			anom |= WAF_A_TRUNC;
		memcpy(o, in, len);
	}
	len = fold_pass(o, len, flags, &anom);
	o[len] = 0;
	if (anomalies)
		*anomalies = anom;
	return len;
}

/*
 * gwb_req.c — reading the parts of a request the match programs test:
 * the host key, query arguments and cookies. Exported (gwb.h) so that gwd's
 * plugins and gwc's reference evaluator read requests exactly as the
 * matcher does.
 */
#include "config.h"

#include <string.h>
#include "gwb_int.h"

size_t gwb_host_key(const char *h, size_t n)
{
	if (n > 0 && h[0] == '[') {             /* "[v6]" or "[v6]:port" */
		const char *e = memchr(h, ']', n);
		return e ? (size_t)(e - h) + 1 : n;
	}
	const char *c = memchr(h, ':', n);
	size_t k = c ? (size_t)(c - h) : n;
	/* "api.example.com." is the same name, fully qualified (nginx drops
	 * the dot too) */
	return k > 1 && h[k - 1] == '.' ? k - 1 : k;
}

size_t gwb_host_normalize(const char *in, size_t n, char *out, size_t cap)
{
	size_t k = gwb_host_key(in, n);
	for (size_t i = 0; i < k && i + 1 < cap; i++)
		out[i] = (char)gwb_lower((unsigned char)in[i]);
	if (cap)
		out[k < cap ? k : cap - 1] = '\0';
	return k;
}

static int hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = gwb_lower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* next decoded byte of an application/x-www-form-urlencoded part; a '%'
 * that does not start a valid escape stands for itself */
static unsigned char form_next(const char *s, size_t n, size_t *i)
{
	unsigned char c = (unsigned char)s[*i];
	if (c == '+') {
		(*i)++;
		return ' ';
	}
	if (c == '%' && *i + 2 < n) {
		int hi = hexv((unsigned char)s[*i + 1]), lo = hexv((unsigned char)s[*i + 2]);
		if (hi >= 0 && lo >= 0) {
			*i += 3;
			return (unsigned char)(hi * 16 + lo);
		}
	}
	(*i)++;
	return c;
}

int gwb_form_eq(const char *raw, size_t rn, const char *s, size_t sn)
{
	size_t i = 0, j = 0;
	while (i < rn) {
		if (j == sn || form_next(raw, rn, &i) != (unsigned char)s[j])
			return 0;
		j++;
	}
	return j == sn;
}

size_t gwb_form_decode(const char *in, size_t n, char *out, size_t cap)
{
	size_t i = 0, len = 0;
	while (i < n) {
		unsigned char c = form_next(in, n, &i);
		if (len + 1 < cap)
			out[len] = (char)c;
		len++;
	}
	if (cap)
		out[len < cap ? len : cap - 1] = '\0';
	return len;
}

int gwb_query_find(const char *q, size_t qn, const char *name, size_t nn,
                   const char **val, size_t *vlen)
{
	size_t i = 0;
	if (qn == 0)
		return 0;
	while (i < qn) {
		const char *a = q + i;
		const char *amp = memchr(a, '&', qn - i);
		size_t al = amp ? (size_t)(amp - a) : qn - i;
		if (al > 0) {
			const char *eq = memchr(a, '=', al);
			size_t kl = eq ? (size_t)(eq - a) : al;
			if (gwb_form_eq(a, kl, name, nn)) {
				if (val) {
					*val = eq ? eq + 1 : a + al;
					*vlen = eq ? al - kl - 1 : 0;
				}
				return 1;
			}
		}
		if (!amp)
			break;
		i += al + 1;
	}
	return 0;
}

static int ows(char c)
{
	return c == ' ' || c == '\t';
}

int gwb_cookie_find(const char *h, size_t n, const char *name, size_t nn,
                    const char **val, size_t *vlen)
{
	size_t i = 0;
	if (!h)
		return 0;
	while (i < n) {
		const char *semi = memchr(h + i, ';', n - i);
		size_t e = semi ? (size_t)(semi - h) : n;
		size_t a = i, b = e;
		while (a < b && ows(h[a]))
			a++;
		while (b > a && ows(h[b - 1]))
			b--;
		const char *eq = memchr(h + a, '=', b - a);
		if (eq) {
			size_t ke = (size_t)(eq - h), vs = ke + 1;
			while (ke > a && ows(h[ke - 1]))
				ke--;
			while (vs < b && ows(h[vs]))
				vs++;
			if (ke - a == nn && memcmp(h + a, name, nn) == 0) {
				size_t ve = b;
				if (ve - vs >= 2 && h[vs] == '"' && h[ve - 1] == '"') {
					vs++;
					ve--;
				}
				if (val) {
					*val = h + vs;
					*vlen = ve - vs;
				}
				return 1;
			}
		}
		i = e + 1;
	}
	return 0;
}

/*
 * door_check.c — is the first request head on a connection well-formed
 * enough to give to libmicrohttpd (door.h)? A pure function of the bytes,
 * so the fuzzer (tests/fuzz/fuzz_door.c) runs it alone.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <string.h>
#include <strings.h>

#include "door.h"
#include "respond.h"

/* RFC 9110 token characters (method, field name) */
static int tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

int door_value_bad(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 1;
	}
	return 0;
}

int door_target_bad(const char *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c <= 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

static int refuse(int st, int *status, const char **why)
{
	*status = st;
	*why = respond_error_text(st);
	return DOOR_REFUSE;
}

/* the request line [p, e) without its CR LF */
static int check_line(const unsigned char *p, const unsigned char *e, int *status,
                      const char **why)
{
	const unsigned char *m = p;
	while (p < e && tchar(*p))
		p++;
	if (p == m || p == e || *p != ' ')
		return refuse(400, status, why);
	while (p < e && *p == ' ')
		p++;
	const unsigned char *t = p;
	while (p < e && *p > 0x20 && *p != 0x7f)
		p++;
	if (p == t || p == e || *p != ' ')
		return refuse(400, status, why);   /* no version (HTTP/0.9), or a control byte */
	while (p < e && *p == ' ')
		p++;
	if (e - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
	    p[7] < '0' || p[7] > '9')
		return refuse(400, status, why);
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
		return refuse(505, status, why);
	return DOOR_PASS;
}

/* one header line [p, e) without its CR LF */
static int check_field(const unsigned char *p, const unsigned char *e, int *status,
                       const char **why)
{
	const unsigned char *n = p;
	while (p < e && tchar(*p))
		p++;
	/* obs-fold (a line starting with a space), a space before ':', no ':'
	 * at all ("Bad Header"): RFC 9112 section 5 says reject */
	if (p == n || p == e || *p != ':')
		return refuse(400, status, why);
	size_t nlen = (size_t)(p - n);
	p++;
	const unsigned char *v = p;
	if (door_value_bad((const char *)v, (size_t)(e - v)))
		return refuse(400, status, why);   /* NUL, bare CR, controls */
	if (nlen == 14 && !strncasecmp((const char *)n, "Content-Length", 14)) {
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (v == e)
			return refuse(400, status, why);
		for (const unsigned char *q = v; q < e; q++)
			if (*q < '0' || *q > '9')
				return refuse(400, status, why);
		if (e - v > 18)
			return refuse(413, status, why);
	}
	return DOOR_PASS;
}

int door_check(const char *buf, size_t n, size_t cap, int *status, const char **why)
{
	const unsigned char *p = (const unsigned char *)buf, *end = p + n;
	/* empty lines before the request line are ignored (RFC 9112 2.2) */
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	/* a head that does not fit the buffer (libmicrohttpd's connection
	 * pool: it would wait for the rest of it until the head timeout,
	 * without an answer) is refused as nginx refuses it: 414 for a
	 * request line longer than that, 431 for the fields */
	const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		return n >= cap ? refuse(414, status, why) : DOOR_MORE;
	const unsigned char *le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
	int v = check_line(p, le, status, why);
	if (v != DOOR_PASS)
		return v;
	/* the fields: each line is checked as it is found; the first fault
	 * is the answer once the whole head is here */
	int fault = DOOR_PASS, fst = 0;
	const char *fwhy = NULL;
	for (const unsigned char *q = nl + 1; q < end; q = nl + 1) {
		nl = memchr(q, '\n', (size_t)(end - q));
		if (!nl)
			break;
		le = nl > q && nl[-1] == '\r' ? nl - 1 : nl;
		if (le == q) {   /* the empty line: the head is complete */
			*status = fst;
			*why = fwhy;
			return fault;
		}
		if (fault == DOOR_PASS)
			fault = check_field(q, le, &fst, &fwhy);
	}
	/* no empty line yet: wait, unless the buffer is full */
	return n >= cap ? refuse(431, status, why) : DOOR_MORE;
}

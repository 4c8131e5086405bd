/*
 * addr.c — "host:port", "[v6]:port", "http(s)://host[:port]" (see addr.h).
 * Strict on purpose: the admin API feeds us operator input, and a typo
 * such as "10.0.0.1:80;" or "10.0.0.1:" must be refused with a message
 * that names it, not turned into a server nobody can reach.
 */
#include <config.h>   /* <>: runtime/config.h is gwd's config, not autoconf's */

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

static int bad(const char *s, size_t n, char *err, size_t errlen,
               const char *why)
{
	if (err && errlen) {
		/* quote at most 64 bytes, non-printable bytes as '?' */
		char q[65];
		size_t k = n < 64 ? n : 64;
		for (size_t i = 0; i < k; i++) {
			unsigned char c = (unsigned char)s[i];
			q[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		}
		q[k] = '\0';
		snprintf(err, errlen, "bad address '%s%s' (%s)", q,
		         n > 64 ? "..." : "", why);
	}
	return -1;
}

static int hostchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

int addr_parse(const char *s, size_t n, addr_parsed *out, char *err, size_t errlen)
{
	const char *p = s, *end = s + n;
	int defport = 80;

	memset(out, 0, sizeof *out);
	if (n == 0)
		return bad(s, n, err, errlen, "empty");
	if (n >= 8 && strncmp(p, "https://", 8) == 0) {
		out->https = 1;
		defport = 443;
		p += 8;
	} else if (n >= 7 && strncmp(p, "http://", 7) == 0) {
		p += 7;
	}

	const char *h, *hend;
	if (p < end && *p == '[') {
		h = ++p;
		while (p < end && *p != ']')
			p++;
		if (p == end)
			return bad(s, n, err, errlen, "missing ']'");
		hend = p++;
		char tmp[64];
		unsigned char bin[16];
		if ((size_t)(hend - h) >= sizeof tmp || hend == h)
			return bad(s, n, err, errlen, "bad IPv6 address");
		memcpy(tmp, h, (size_t)(hend - h));
		tmp[hend - h] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) != 1)
			return bad(s, n, err, errlen, "bad IPv6 address");
		out->ipv6 = 1;
	} else {
		h = p;
		while (p < end && hostchar((unsigned char)*p))
			p++;
		hend = p;
		if (hend == h)
			return bad(s, n, err, errlen, "empty host");
		if (p < end && *p != ':')
			return bad(s, n, err, errlen, *p == '/' ?
			           "a path is not allowed" : "bad character in host");
	}
	if ((size_t)(hend - h) > ADDR_HOST_MAX)
		return bad(s, n, err, errlen, "host too long");

	int port = defport;
	if (p < end) {
		if (*p != ':')
			return bad(s, n, err, errlen, "expected ':' after ']'");
		p++;
		if (p == end)
			return bad(s, n, err, errlen, "empty port");
		port = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return bad(s, n, err, errlen, "bad port");
			port = port * 10 + (*p - '0');
			if (port > 65535)
				return bad(s, n, err, errlen, "port out of range");
		}
		if (port == 0)
			return bad(s, n, err, errlen, "port out of range");
	}
	memcpy(out->host, h, (size_t)(hend - h));
	out->host[hend - h] = '\0';
	out->port = port;
	return 0;
}

/*
 * addr.h — parsing of upstream server addresses as they appear in rules and
 * in admin API bodies: "host:port", "[v6]:port", "http://host:port",
 * "https://host:port" (a missing port defaults to 80, or 443 for https://,
 * as nginx does for `server host;`). Nothing is resolved here: host names
 * stay names; libcurl resolves them when it connects.
 */
#ifndef GWD_ADDR_H
#define GWD_ADDR_H

#include <stddef.h>

#define ADDR_HOST_MAX 253           /* longest DNS name */

typedef struct addr_parsed {
	char host[ADDR_HOST_MAX + 1];   /* without brackets, NUL-terminated */
	int port;                       /* 1..65535 */
	int https;                      /* "https://" was given */
	int ipv6;                       /* host is an IPv6 literal */
} addr_parsed;

/* 0 ok; -1 with err = "bad address 'x:' (empty port)" */
int addr_parse(const char *s, size_t n, addr_parsed *out, char *err, size_t errlen);

#endif /* GWD_ADDR_H */

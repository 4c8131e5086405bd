#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "respond.h"

const char *respond_error_text(int status)
{
	switch (status) {
	case 400: return "bad request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "no route";
	case 405: return "method not allowed";
	case 408: return "request timeout";
	case 413: return "request body too large";
	case 414: return "uri too long";
	case 429: return "rate limited";
	case 431: return "request header fields too large";
	case 500: return "internal error";
	case 501: return "not implemented";
	case 505: return "http version not supported";
	case 502: return "upstream connect error";
	case 503: return "no healthy upstream";
	case 504: return "upstream timeout";
	default:  return status >= 500 ? "server error" : "client error";
	}
}

/* appends s JSON-escaped; returns the new length (may exceed cap) */
static size_t put_esc(char *buf, size_t cap, size_t len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[6];
		size_t n = 0;
		if (c == '"' || c == '\\') {
			tmp[n++] = '\\'; tmp[n++] = (char)c;
		} else if (c < 0x20) {
			tmp[n++] = '\\'; tmp[n++] = 'u'; tmp[n++] = '0'; tmp[n++] = '0';
			tmp[n++] = hex[c >> 4]; tmp[n++] = hex[c & 15];
		} else {
			tmp[n++] = (char)c;
		}
		for (size_t i = 0; i < n; i++, len++)
			if (len + 1 < cap)
				buf[len] = tmp[i];
	}
	return len;
}

static size_t put(char *buf, size_t cap, size_t len, const char *s)
{
	for (; *s; s++, len++)
		if (len + 1 < cap)
			buf[len] = *s;
	return len;
}

size_t respond_json_error(char *buf, size_t cap, const char *msg, const char *reqid)
{
	size_t len = 0;
	len = put(buf, cap, len, "{\"error\":\"");
	len = put_esc(buf, cap, len, msg ? msg : "");
	len = put(buf, cap, len, "\",\"request_id\":\"");
	len = put_esc(buf, cap, len, reqid ? reqid : "");
	len = put(buf, cap, len, "\"}");
	if (cap)
		buf[len < cap ? len : cap - 1] = '\0';
	return len;
}

size_t respond_raw_error(char *out, size_t cap, int status, const char *reason, const char *msg,
                         const char *reqid)
{
	char date[40], body[320];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	size_t bl = respond_json_error(body, sizeof body, msg, reqid);
	if (bl >= sizeof body)
		return cap;              /* cannot happen with gwd's own texts */
	int n = snprintf(out, cap,
	                 "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
	                 "X-Request-Id: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
	                 status, reason && *reason ? reason : "Error", date, reqid, bl, body);
	return n < 0 ? cap : (size_t)n;
}

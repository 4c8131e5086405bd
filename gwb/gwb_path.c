/*
 * gwb_path.c — the one canonical form of a request path that the matcher,
 * gwd and `gwc test/explain` all see. Decoding happens before dot-segment
 * removal on purpose: "%2F", "%2e%2e" and their plain forms must reach the
 * same route, or a rule on "/admin/" could be walked around.
 */
#include "config.h"

#include <string.h>
#include "gwb_int.h"

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = gwb_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* clamped: 1 drops a ".." at the root instead of refusing the path, and
 * the result is then 1 (0 when no ".." climbed) */
static int path_norm(const char *in, size_t n, char *out, size_t cap, size_t *outlen,
                     int clamp)
{
	size_t L = 0;
	int climbed = 0;

	if (n == 0 || in[0] != '/')
		return -1;
	/* 1: percent-decode into out (never longer than the input) */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;              /* truncated escape */
			int hi = hexval((unsigned char)in[i + 1]), lo = hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0')
			return -1;
		if (L >= cap)
			return -1;
		out[L++] = (char)c;
	}
	/* 2: collapse "//", resolve "." and ".." (RFC 3986 5.2.4), in place:
	 * the write position never passes the read position. The output is
	 * "/seg/seg" plus a trailing '/' when the input ends in a directory. */
	size_t r = 0, w = 0;
	while (r < L) {
		while (r < L && out[r] == '/')
			r++;
		size_t s = r;
		while (r < L && out[r] != '/')
			r++;
		size_t sl = r - s;
		if (sl == 0) {                          /* ended with '/' */
			out[w++] = '/';
			break;
		}
		if (sl == 1 && out[s] == '.') {
			if (r == L)
				out[w++] = '/';
			continue;
		}
		if (sl == 2 && out[s] == '.' && out[s + 1] == '.') {
			if (w == 0) {                   /* above the root */
				if (!clamp)
					return -1;
				climbed = 1;
				if (r == L)
					out[w++] = '/';
				continue;
			}
			while (w > 0 && out[w - 1] != '/')
				w--;
			w--;                            /* drop the '/' too */
			if (r == L)
				out[w++] = '/';
			continue;
		}
		out[w++] = '/';
		memmove(out + w, out + s, sl);
		w += sl;
	}
	if (w == 0)
		out[w++] = '/';
	if (w >= cap)
		return -1;                              /* no room for the NUL */
	out[w] = '\0';
	if (outlen)
		*outlen = w;
	return climbed;
}

int gwb_path_normalize(const char *in, size_t n, char *out, size_t cap, size_t *outlen)
{
	return path_norm(in, n, out, cap, outlen, 0);
}

int gwb_path_normalize_clamped(const char *in, size_t n, char *out, size_t cap, size_t *outlen)
{
	return path_norm(in, n, out, cap, outlen, 1);
}

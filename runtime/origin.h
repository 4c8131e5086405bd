/*
 * origin.h — a small HTTP origin server on libmicrohttpd, running in its own
 * thread(s). `gwd --demo` starts one in-process as the quick start's
 * upstream; the integration tests start it in-process or as the standalone
 * program gw-origin, and the proxy benchmark uses it as the backend.
 *
 * Endpoints (any method unless said; an optional "/api" prefix is ignored so
 * the quick-start rules, which forward /api/... unchanged, reach them):
 *
 *   GET /              a short text page listing these endpoints
 *   /echo[/anything]   200 JSON: {"name","method","uri","path","query",
 *                      "version","headers":{name: value},"header_list":
 *                      [[name, value], ...],"body_len","body_sha256"}.
 *                      uri/path/query are raw bytes as received ("query"
 *                      without '?', "" when absent); "headers" joins repeated
 *                      names with ", ", "header_list" keeps order, case and
 *                      repeats. The request body (any size, chunked or not)
 *                      is hashed while it streams in: memory stays bounded.
 *   /bytes/N           N bytes of origin_pattern, with Content-Length,
 *                      streamed from a callback (100 MB costs no memory)
 *   /chunked/N         the same without Content-Length (chunked in HTTP/1.1)
 *   /status/CODE       that status (200..599) with body "status CODE\n";
 *                      204 and 304 without body
 *   /slow/MS           200 "slept MS\n" after MS ms (<= 600000); the
 *                      connection is suspended meanwhile, other requests
 *                      are served
 *   /delay-body/MS     200 with Content-Length 13: headers and "first\n" at
 *                      once, "second\n" after MS ms
 *   /close             closes the connection without any response
 *   /headers?h=N:V&h=..  200 "ok\n" with each N: V as a response header
 *                      (values percent-decoded)
 *   /name              the origin's name (no newline)
 *   /count             number of requests served, except /count, /reset and
 *                      /healthz (decimal, no newline); /reset sets it to 0
 *   /healthz           the health status (200 "ok\n" by default);
 *                      /healthz?set=CODE changes it (e.g. 503) and answers 200
 *   anything else      404 "no such endpoint: PATH\n"
 *
 * Every response carries "X-Origin-Name: NAME". Responses are queued in a
 * later access-handler call than the first, so keep-alive stays on (see
 * runtime-notes.md). Request bodies are read on every endpoint.
 */
#ifndef GWD_ORIGIN_H
#define GWD_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct origin origin;

/* Listen on host:port (port 0 = a free port, see origin_port) with
 * `threads` server threads (<= 1: one). name NULL = "origin".
 * NULL with err set on failure. */
origin *origin_start(const char *name, const char *host, int port, int threads,
                     char *err, size_t errlen);
int origin_port(const origin *o);
const char *origin_name(const origin *o);
/* the /count counter, and /reset */
uint64_t origin_count(const origin *o);
void origin_reset(origin *o);
/* the status /healthz answers (as /healthz?set=CODE) */
void origin_set_health(origin *o, int status);
/* stop accepting, finish or cut what is in flight, free; NULL is a no-op */
void origin_stop(origin *o);

/* The body of /bytes/N and /chunked/N: byte i of an endless stream that is
 * printable and not periodic (a chunk repeated, dropped or reordered by a
 * proxy changes the hash). Tests compute the same bytes to check bodies. */
static inline char origin_pattern_byte(uint64_t i)
{
	static const char alphabet[64] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	return alphabet[(i * 0x9E3779B97F4A7C15ull) >> 58];
}

static inline void origin_pattern_fill(char *buf, uint64_t offset, size_t len)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = origin_pattern_byte(offset + k);
}

#endif /* GWD_ORIGIN_H */

/*
 * admin_dyups.c — the text format of the nginx dyups module, which scripts
 * talk to (`curl -d "server 127.0.0.1:8089;" 127.0.0.1:9901/upstream/foo`).
 *
 * Body grammar (nginx's upstream-block syntax for `server`; whitespace and
 * newlines anywhere between tokens, `#` comments to the end of a line):
 *
 *   body   := stmt (';' stmt)* [';']          the last ';' is optional
 *   stmt   := 'server' ADDR param*
 *   param  := 'weight=' N (1..1000000)        default 1
 *           | 'max_fails=' N (0..1000000)     default 1 (0: never eject)
 *           | 'fail_timeout=' DURATION        default 10s ("30", "30s", "500ms")
 *           | 'backup' | 'backup=' (0|1)
 *           | 'down'   | 'down=' (0|1)       gw: the server is drained
 *
 * ADDR is checked as the upstream layer will (addr.h): "host:port",
 * "[v6]:port", "http(s)://host:port"; a missing port is 80 (443 for
 * https://), as nginx. `backup=0 down=0` are accepted so that the lines
 * GET prints (with ';' added) can be posted back.
 *
 * Not accepted, unlike dyups: other upstream directives (ip_hash,
 * keepalive, ...): balancing and options come from the rules; an empty
 * body or a stray ';' (dyups answers an empty body with 204 and changes
 * nothing; we answer 400 so a script notices).
 *
 * Errors name the position: "line 1, column 23: unknown parameter 'wieght=2'".
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "config.h"

typedef struct lexer {
	const char *p, *end;
	const char *line_start;
	unsigned line;
} lexer;

typedef struct tok {
	const char *s; size_t n;
} tok;

static unsigned col_of(const lexer *L, const char *at)
{
	return (unsigned)(at - L->line_start) + 1;
}

static int fail(const lexer *L, const char *at, char *err, size_t errlen,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(const lexer *L, const char *at, char *err, size_t errlen,
                const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "line %u, column %u: %s", L->line, col_of(L, at), msg);
	return -1;
}

static void skip_ws(lexer *L)
{
	while (L->p < L->end) {
		char c = *L->p;
		if (c == '\n') {
			L->p++;
			L->line++;
			L->line_start = L->p;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			L->p++;
		} else if (c == '#') {
			while (L->p < L->end && *L->p != '\n')
				L->p++;
		} else {
			break;
		}
	}
}

static int tok_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != ';';
}

/* a token of printable non-space bytes; n == 0 when the next byte is not
 * one (end, ';', or a control/non-ASCII byte) */
static tok next_tok(lexer *L)
{
	tok t = { L->p, 0 };
	while (L->p < L->end && tok_char((unsigned char)*L->p))
		L->p++;
	t.n = (size_t)(L->p - t.s);
	return t;
}

static int tok_is(tok t, const char *w)
{
	return t.n == strlen(w) && memcmp(t.s, w, t.n) == 0;
}

/* N in [lo, hi] written as plain decimal digits */
static int parse_u32(const char *s, size_t n, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_bool01(const char *s, size_t n, int *out)
{
	if (n != 1 || (s[0] != '0' && s[0] != '1'))
		return -1;
	*out = s[0] == '1';
	return 0;
}

/* upstream-block directives of nginx/dyups that gw takes from the rules */
static int is_upstream_directive(tok t)
{
	static const char *const names[] = {
		"ip_hash", "least_conn", "hash", "random", "keepalive",
		"keepalive_timeout", "keepalive_requests", "zone", "check",
		"check_http_send", "check_http_expect_alive", "consistent_hash",
		"session_sticky", "ntlm", "sticky", "queue", "resolver", NULL
	};
	for (int i = 0; names[i]; i++)
		if (tok_is(t, names[i]))
			return 1;
	return 0;
}

static int parse_param(lexer *L, tok k, adm_server *s, char *err, size_t errlen)
{
	const char *eq = memchr(k.s, '=', k.n);
	size_t kn = eq ? (size_t)(eq - k.s) : k.n;
	const char *v = eq ? eq + 1 : NULL;
	size_t vn = eq ? k.n - kn - 1 : 0;

#define KEY(w) (kn == sizeof(w) - 1 && memcmp(k.s, w, kn) == 0)
	if (KEY("weight") && eq) {
		if (parse_u32(v, vn, 1, UPS_MAX_WEIGHT, &s->weight) < 0)
			return fail(L, v, err, errlen, "bad weight '%.*s' (expected 1..%u)",
			            (int)vn, v, UPS_MAX_WEIGHT);
		return 0;
	}
	if (KEY("max_fails") && eq) {
		if (parse_u32(v, vn, 0, ADM_MAX_FAILS_MAX, &s->max_fails) < 0)
			return fail(L, v, err, errlen, "bad max_fails '%.*s' (expected 0..%u)",
			            (int)vn, v, ADM_MAX_FAILS_MAX);
		return 0;
	}
	if (KEY("fail_timeout") && eq) {
		char buf[32];
		uint32_t ms;
		if (vn == 0 || vn >= sizeof buf)
			goto bad_ft;
		memcpy(buf, v, vn);
		buf[vn] = '\0';
		if (config_parse_duration_ms(buf, &ms) < 0 || ms > ADM_FAIL_TIMEOUT_MAX_MS)
			goto bad_ft;
		s->fail_timeout_ms = ms;
		return 0;
bad_ft:
		return fail(L, v, err, errlen,
		            "bad fail_timeout '%.*s' (expected e.g. 10, 10s, 500ms; at most 24h)",
		            (int)vn, v);
	}
	if (KEY("backup")) {
		if (!eq) {
			s->backup = 1;
			return 0;
		}
		if (parse_bool01(v, vn, &s->backup) < 0)
			return fail(L, v, err, errlen, "bad backup '%.*s' (expected 0 or 1)",
			            (int)vn, v);
		return 0;
	}
	if (KEY("down")) {
		if (!eq) {
			s->drain = 1;
			return 0;
		}
		if (parse_bool01(v, vn, &s->drain) < 0)
			return fail(L, v, err, errlen, "bad down '%.*s' (expected 0 or 1)",
			            (int)vn, v);
		return 0;
	}
#undef KEY
	if (tok_is(k, "server"))
		return fail(L, k.s, err, errlen, "expected ';'");
	return fail(L, k.s, err, errlen, "unknown parameter '%.*s' (expected weight=, "
	            "max_fails=, fail_timeout=, backup, down or ';')", (int)k.n, k.s);
}

/* the byte at L->p, which is not a token byte, as a message */
static int unexpected(lexer *L, const char *what, char *err, size_t errlen)
{
	if (L->p >= L->end)
		return fail(L, L->p, err, errlen, "unexpected end of body, expected %s", what);
	unsigned char c = (unsigned char)*L->p;
	if (c == ';')
		return fail(L, L->p, err, errlen, "unexpected ';', expected %s", what);
	return fail(L, L->p, err, errlen, "unexpected byte 0x%02x, expected %s", c, what);
}

int adm_dyups_parse(const char *body, size_t len, adm_list *out,
                    char *err, size_t errlen)
{
	lexer L = { body, body + len, body, 1 };
	adm_list l = { NULL, 0 };
	adm_server s = { 0 };

	for (;;) {
		skip_ws(&L);
		if (L.p == L.end)
			break;
		tok t = next_tok(&L);
		if (t.n == 0) {
			unexpected(&L, "'server'", err, errlen);
			goto fail;
		}
		if (!tok_is(t, "server")) {
			if (is_upstream_directive(t))
				fail(&L, t.s, err, errlen, "'%.*s' is not supported here: balancing "
				     "and upstream options come from the rules", (int)t.n, t.s);
			else
				fail(&L, t.s, err, errlen, "expected 'server', found '%.*s'",
				     (int)t.n, t.s);
			goto fail;
		}
		if (l.n >= GWB_MAX_SERVERS) {
			fail(&L, t.s, err, errlen, "too many servers (limit is %u)", GWB_MAX_SERVERS);
			goto fail;
		}
		skip_ws(&L);
		tok a = next_tok(&L);
		if (a.n == 0) {
			unexpected(&L, "an address after 'server'", err, errlen);
			goto fail;
		}
		memset(&s, 0, sizeof s);
		if (!(s.addr = strndup(a.s, a.n))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		char aerr[200];
		if (adm_check_addr(s.addr, aerr, sizeof aerr) < 0) {
			fail(&L, a.s, err, errlen, "%s", aerr);
			goto fail;
		}
		s.weight = 1;
		s.max_fails = ADM_DEFAULT_MAX_FAILS;
		s.fail_timeout_ms = ADM_DEFAULT_FAIL_TIMEOUT_MS;
		int last = 0;
		for (;;) {
			skip_ws(&L);
			if (L.p == L.end) {
				last = 1;
				break;
			}
			if (*L.p == ';') {
				L.p++;
				break;
			}
			tok k = next_tok(&L);
			if (k.n == 0) {
				unexpected(&L, "a server parameter or ';'", err, errlen);
				goto fail;
			}
			if (parse_param(&L, k, &s, err, errlen) < 0)
				goto fail;
		}
		if (adm_list_push(&l, &s) < 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		free(s.addr);
		s.addr = NULL;
		if (last)
			break;
	}
	if (l.n == 0) {
		fail(&L, L.p, err, errlen, "no servers (expected 'server ADDR;')");
		goto fail;
	}
	*out = l;
	return 0;
fail:
	free(s.addr);
	adm_list_free(&l);
	return -1;
}

/* ------------------------------------------------------------- output */

void adm_buf_printf(adm_buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void adm_dyups_line(adm_buf *b, const adm_server *s, int down)
{
	/* tengine dyups prints fail_timeout in whole seconds; keep ms when
	 * the value is not whole (our parser reads both back) */
	char ft[24];
	if (s->fail_timeout_ms % 1000 == 0)
		snprintf(ft, sizeof ft, "%u", s->fail_timeout_ms / 1000);
	else
		snprintf(ft, sizeof ft, "%ums", s->fail_timeout_ms);
	adm_buf_printf(b, "server %s weight=%u max_fails=%u fail_timeout=%s backup=%d down=%d\n",
	               s->addr, s->weight, s->max_fails, ft, s->backup ? 1 : 0, down ? 1 : 0);
}

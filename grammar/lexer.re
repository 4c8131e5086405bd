/*
 * lexer.re — the .gwr lexer. re2c turns this file into grammar/lexer.c in
 * the build tree (see grammar/local.am); the token kinds are in
 * grammar/tokens.h and the language in grammar/grammar.md.
 *
 * End of input: "sentinel with bounds checks" (re2c:eof). The text must be
 * followed by a NUL; a NUL before the limit is an ordinary bad byte.
 *
 * The regular expressions only find where a token ends; its value is
 * computed and checked by the small functions above the rules (ports,
 * address syntax through inet_pton, CIDR host bits, overflow). A token
 * whose kind is clear but whose value is wrong is reported and returned
 * with its kind; text that is no token at all is reported and returned as
 * TK_ERROR so that the parser skips the statement without a second error.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lex.h"

#define DESC_(name, desc) desc,
static const char *const kind_desc[] = { GW_TOKEN_LIST(DESC_) };
#undef DESC_

const char *lex_kind_name(enum tok_kind k)
{
	return (unsigned)k < TK__COUNT ? kind_desc[k] : "?";
}

void lex_init(lex_state *L, const char *text, size_t len, const char *file,
              uint32_t src, diag_ctx *d, arena *a)
{
	memset(L, 0, sizeof *L);
	L->cur = L->tok = L->mark = L->line_start = (const unsigned char *)text;
	L->lim = (const unsigned char *)text + len;
	L->line = 1;
	L->file = file;
	L->src = src;
	L->d = d;
	L->a = a;
}

static ast_pos pos_at(const lex_state *L, const unsigned char *p)
{
	ast_pos pos;
	pos.file = L->file;
	pos.line = L->line;
	pos.col = (uint32_t)(p - L->line_start) + 1;
	pos.src = L->src;
	return pos;
}

static void err_at(lex_state *L, const unsigned char *p, size_t span,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void err_at(lex_state *L, const unsigned char *p, size_t span,
                   const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (span == 0)
		span = 1;
	if (span > UINT32_MAX)
		span = UINT32_MAX;
	/* every diagnostic carries a class for [-Wname] and JSON/SARIF ruleId */
	const char *cls = strstr(msg, "CIDR") || strstr(msg, "IPv") ? "cidr" : "syntax";
	diag_error(L->d, pos_at(L, p), (uint32_t)span, cls, "%s", msg);
	L->nerrors++;
}

/* the current token's text, for messages (truncated, never unbounded) */
#define TOKFMT "%.*s"
#define TOKARG(L) (int)((L)->cur - (L)->tok > 80 ? 80 : (L)->cur - (L)->tok), \
                  (const char *)(L)->tok

static void token(lex_state *L, lex_token *t, enum tok_kind k)
{
	memset(t, 0, sizeof *t);
	t->kind = k;
	t->pos = pos_at(L, L->tok);
	t->text = (const char *)L->tok;
	t->len = (uint32_t)(L->cur - L->tok);
}

/* decimal digits [p, e) -> v; -1 on overflow of int64 */
static int dec(const unsigned char *p, const unsigned char *e, int64_t *v)
{
	int64_t x = 0;

	for (; p < e; p++) {
		int dgt = *p - '0';
		if (x > (INT64_MAX - dgt) / 10)
			return -1;
		x = x * 10 + dgt;
	}
	*v = x;
	return 0;
}

static const unsigned char *skip_digits(const unsigned char *p, const unsigned char *e)
{
	while (p < e && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* digits then a unit: v = digits * mul, with overflow reported */
static void number_unit(lex_state *L, lex_token *t, enum tok_kind k,
                        int64_t mul, const char *what)
{
	const unsigned char *e = skip_digits(L->tok, L->cur);
	int64_t v;

	token(L, t, k);
	if (dec(L->tok, e, &v) < 0 || v > INT64_MAX / mul) {
		err_at(L, L->tok, t->len, "%s '" TOKFMT "' is too large", what, TOKARG(L));
		t->i = INT64_MAX;
		return;
	}
	t->i = v * mul;
}

static void lex_minutes(lex_state *L, lex_token *t)
{
	number_unit(L, t, TK_DURATION, 60000, "duration");
	/* "8m" is also 8 MiB: keep that reading for sizes (see lex.h) */
	t->i2 = t->i == INT64_MAX || t->i / 60000 > (INT64_MAX >> 20)
	        ? INT64_MAX : (t->i / 60000) << 20;
}

static void lex_rate(lex_state *L, lex_token *t)
{
	const unsigned char *e = skip_digits(L->tok, L->cur);

	token(L, t, TK_RATE);
	if (dec(L->tok, e, &t->i) < 0) {
		err_at(L, L->tok, t->len, "rate '" TOKFMT "' is too large", TOKARG(L));
		t->i = INT64_MAX;
	}
	switch (L->cur[-1]) {
	case 's': t->i2 = 1000; break;
	case 'm': t->i2 = 60000; break;
	default:  t->i2 = 3600000; break;
	}
}

static void lex_range(lex_state *L, lex_token *t)
{
	const unsigned char *e = skip_digits(L->tok, L->cur);

	token(L, t, TK_RANGE);
	if (dec(L->tok, e, &t->i) < 0 || dec(e + 2, L->cur, &t->i2) < 0) {
		err_at(L, L->tok, t->len, "range '" TOKFMT "' is too large", TOKARG(L));
		return;
	}
	if (t->i > t->i2)
		err_at(L, L->tok, t->len,
		       "empty range '" TOKFMT "': the start is greater than the end",
		       TOKARG(L));
}

/* locale-independent (strtod follows LC_NUMERIC) */
static void lex_float(lex_state *L, lex_token *t)
{
	const unsigned char *p = L->tok;
	double v = 0, scale = 1;

	token(L, t, TK_FLOAT);
	for (; *p != '.'; p++)
		v = v * 10 + (*p - '0');
	for (p++; p < L->cur; p++) {
		scale /= 10;
		v += (*p - '0') * scale;
	}
	t->f = v;
}

/* copy [p, p+n) to a NUL-terminated buffer and inet_pton it */
static int ip_parse(const unsigned char *p, size_t n, int fam, unsigned char out[16])
{
	char buf[64];

	if (n >= sizeof buf)
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return inet_pton(fam, buf, out) == 1 ? 0 : -1;
}

/* ":PORT" digits [p, e) -> port; reports and returns -1 when out of range */
static int lex_port(lex_state *L, const unsigned char *p, const unsigned char *e,
                    int64_t *port)
{
	int64_t v;

	if (dec(p, e, &v) < 0 || v < 1 || v > 65535) {
		err_at(L, p, (size_t)(e - p), "invalid port '%.*s' (1-65535)",
		       (int)(e - p > 20 ? 20 : e - p), (const char *)p);
		*port = 0;
		return -1;
	}
	*port = v;
	return 0;
}

/* 10.0.0.7:8080, [::1]:8080, host.name:80 */
static void lex_hostport(lex_state *L, lex_token *t, int fam)
{
	const unsigned char *colon = L->cur - 1;
	unsigned char ip[16];

	token(L, t, TK_ADDR);
	while (*colon != ':')
		colon--;
	lex_port(L, colon + 1, L->cur, &t->i);
	if (fam == AF_INET && ip_parse(L->tok, (size_t)(colon - L->tok), AF_INET, ip) < 0)
		err_at(L, L->tok, (size_t)(colon - L->tok), "invalid IPv4 address '%.*s'",
		       (int)(colon - L->tok), (const char *)L->tok);
	if (fam == AF_INET6 &&
	    ip_parse(L->tok + 1, (size_t)(colon - L->tok - 2), AF_INET6, ip) < 0)
		err_at(L, L->tok + 1, (size_t)(colon - L->tok - 2),
		       "invalid IPv6 address '%.*s'",
		       (int)(colon - L->tok - 2), (const char *)L->tok + 1);
}

/* http://host[:port], https://[v6][:port] */
static void lex_url(lex_state *L, lex_token *t)
{
	const unsigned char *h = L->tok + (L->tok[4] == 's' ? 8 : 7), *e = L->cur, *q;
	unsigned char ip[16];

	token(L, t, TK_ADDR);
	if (*h == '[') {
		q = (const unsigned char *)memchr(h, ']', (size_t)(e - h));
		if (ip_parse(h + 1, (size_t)(q - h - 1), AF_INET6, ip) < 0)
			err_at(L, h + 1, (size_t)(q - h - 1), "invalid IPv6 address '%.*s'",
			       (int)(q - h - 1), (const char *)h + 1);
		q++;
	} else {
		q = h;
		while (q < e && *q != ':')
			q++;
	}
	if (q < e && *q == ':')
		lex_port(L, q + 1, e, &t->i);
}

static int host_bits_set(const unsigned char *a, int bits, int64_t prefix)
{
	for (int b = (int)prefix; b < bits; b++)
		if (a[b / 8] & (0x80 >> (b % 8)))
			return 1;
	return 0;
}

/* 10.0.0.0/8, ::1/128, or a bare address (fam AF_INET / AF_INET6) */
static void lex_cidr(lex_state *L, lex_token *t, int fam)
{
	const unsigned char *slash = memchr(L->tok, '/', (size_t)(L->cur - L->tok));
	const unsigned char *ae = slash ? slash : L->cur;
	int bits = fam == AF_INET ? 32 : 128;
	unsigned char ip[16] = { 0 };

	token(L, t, TK_CIDR);
	t->i2 = fam == AF_INET ? 4 : 6;
	t->i = bits;
	if (ip_parse(L->tok, (size_t)(ae - L->tok), fam, ip) < 0) {
		err_at(L, L->tok, t->len, "invalid %s '" TOKFMT "': bad %s address",
		       slash ? "CIDR" : "address", TOKARG(L),
		       fam == AF_INET ? "IPv4" : "IPv6");
		return;
	}
	if (!slash)
		return;
	if (dec(slash + 1, L->cur, &t->i) < 0 || t->i > bits) {
		err_at(L, L->tok, t->len, "invalid CIDR '" TOKFMT "': prefix length must be 0-%d",
		       TOKARG(L), bits);
		t->i = bits;
		return;
	}
	if (host_bits_set(ip, bits, t->i)) {
		char net[64];
		for (int b = (int)t->i; b < bits; b++)
			ip[b / 8] &= (unsigned char)~(0x80 >> (b % 8));
		inet_ntop(fam, ip, net, sizeof net);
		err_at(L, L->tok, t->len,
		       "invalid CIDR '" TOKFMT "': host bits set; did you mean %s/%d?",
		       TOKARG(L), net, (int)t->i);
	}
}

/* the length of the well-formed UTF-8 character at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if there is
 * none before e */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
	unsigned char c = *p, lo = 0x80, hi = 0xbf;
	size_t n;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* "..." — scanned by hand for exact error positions: a bad escape is
 * reported at its backslash, an unterminated string at its opening quote. */
static void lex_string(lex_state *L, lex_token *t)
{
	const unsigned char *p = L->cur, *end;
	char *out, *o;

	while (p < L->lim && *p != '"' && *p != '\n') {
		if (*p == '\\' && p + 1 < L->lim && p[1] != '\n')
			p++;
		p++;
	}
	if (p >= L->lim || *p != '"') {
		L->cur = p;
		token(L, t, TK_ERROR);
		err_at(L, L->tok, 1, "unterminated string (a string must end on the line it starts)");
		L->nopen_strings++;
		return;
	}
	end = p;
	L->cur = end + 1;
	token(L, t, TK_STRING);
	o = out = arena_raw(L->a, (size_t)(end - L->tok));
	int bad_utf8 = 0;
	for (p = L->tok + 1; p < end; p++) {
		unsigned char c = *p;
		if (c == '\\') {
			unsigned char e = p[1];
			int hi, lo;
			switch (e) {
			case '"': case '\\': *o++ = (char)e; p++; continue;
			case 'n': *o++ = '\n'; p++; continue;
			case 't': *o++ = '\t'; p++; continue;
			case 'x':
				hi = p + 2 < end ? (p[2] >= '0' && p[2] <= '9' ? p[2] - '0' :
				     (p[2] | 0x20) >= 'a' && (p[2] | 0x20) <= 'f' ? (p[2] | 0x20) - 'a' + 10 : -1) : -1;
				lo = p + 3 < end ? (p[3] >= '0' && p[3] <= '9' ? p[3] - '0' :
				     (p[3] | 0x20) >= 'a' && (p[3] | 0x20) <= 'f' ? (p[3] | 0x20) - 'a' + 10 : -1) : -1;
				if (hi < 0 || lo < 0) {
					err_at(L, p, 2, "bad escape '\\x' in string: expected two hex digits");
					p++;
					continue;
				}
				if (hi == 0 && lo == 0)
					err_at(L, p, 4, "'\\x00' is not allowed in a string");
				else
					*o++ = (char)(hi << 4 | lo);
				p += 3;
				continue;
			default:
				if (e >= 0x20 && e < 0x7f)
					err_at(L, p, 2, "bad escape '\\%c' in string (known: \\\" \\\\ \\n \\t \\xHH)", e);
				else
					err_at(L, p, 2, "bad escape in string (known: \\\" \\\\ \\n \\t \\xHH)");
				continue;   /* keep the escaped byte as it is */
			}
		}
		if (c < 0x20 && c != '\t') {
			err_at(L, p, 1, "control character 0x%02x in string; write it as \\x%02x", c, c);
			continue;
		}
		if (c >= 0x80) {
			/* the file is UTF-8 text, and a string's bytes end up in
			 * headers, bodies and logs: a byte that is not part of a
			 * well-formed UTF-8 character is an error at its column
			 * (\xHH writes any byte on purpose) */
			size_t n = utf8_len(p, end);
			if (!n) {
				if (!bad_utf8++)   /* the first one: the rest would be noise */
					err_at(L, p, 1, "invalid UTF-8 byte 0x%02x in string; write it as \\x%02x",
					       c, c);
				continue;
			}
			memcpy(o, p, n);
			o += n;
			p += n - 1;
			continue;
		}
		*o++ = (char)c;
	}
	*o = '\0';
	t->s = out;
	t->slen = (size_t)(o - out);
}

/* text that starts like a value but is none: say what is wrong with it */
static void lex_junk(lex_state *L, lex_token *t)
{
	const unsigned char *p = L->tok, *e = L->cur;
	const unsigned char *d = skip_digits(p, e);
	int has_dot = memchr(p, '.', (size_t)(e - p)) != NULL;
	int has_colon = memchr(p, ':', (size_t)(e - p)) != NULL;
	int has_slash = memchr(p, '/', (size_t)(e - p)) != NULL;

	token(L, t, TK_ERROR);
	if (d > p && d < e) {
		const unsigned char *u = d;
		while (u < e && ((*u | 0x20) >= 'a' && (*u | 0x20) <= 'z'))
			u++;
		if (u == e) {
			err_at(L, d, (size_t)(e - d),
			       "unknown unit '%.*s' in '" TOKFMT "' (durations: ms s m h; sizes: k m g; rates: r/s r/m r/h)",
			       (int)(e - d > 20 ? 20 : e - d), (const char *)d, TOKARG(L));
			return;
		}
	}
	if ((t->len > 7 && memcmp(p, "http://", 7) == 0) ||
	    (t->len > 8 && memcmp(p, "https://", 8) == 0)) {
		err_at(L, p, t->len, "invalid URL '" TOKFMT "': expected scheme://host[:port] with no path",
		       TOKARG(L));
		return;
	}
	if (has_dot && !has_colon && !has_slash && d == p) {
		err_at(L, p, t->len, "host name '" TOKFMT "' needs a port, e.g. '" TOKFMT ":80'",
		       TOKARG(L), TOKARG(L));
		return;
	}
	err_at(L, p, t->len, "invalid value '" TOKFMT "'", TOKARG(L));
}

/* bytes that can never start a token: report a run of them once */
static int never_starts(unsigned char c)
{
	return c != 0 && c < 0x80 && strchr("!$%&*+-./:<>?@\\`|'^]", c) != NULL;
}

static void lex_bad(lex_state *L, lex_token *t)
{
	const unsigned char *p = L->tok;

	if (*p >= 0x80) {
		/* one error per UTF-8 character, not per byte */
		while (L->cur < L->lim && (*L->cur & 0xc0) == 0x80)
			L->cur++;
		token(L, t, TK_ERROR);
		err_at(L, p, t->len, "non-ASCII character outside a string");
		return;
	}
	if (*p == '!' && L->cur < L->lim && *L->cur == '=') {
		L->cur++;
		token(L, t, TK_ERROR);
		err_at(L, p, 2, "'!=' is not an operator; write 'not (A == B)'");
		return;
	}
	if (never_starts(*p))
		while (L->cur < L->lim && never_starts(*L->cur) &&
		       !(*L->cur == '^' && L->cur + 1 < L->lim && L->cur[1] == '='))
			L->cur++;
	token(L, t, TK_ERROR);
	if (*p >= 0x20 && *p < 0x7f)
		err_at(L, p, t->len, "unexpected character%s '" TOKFMT "'",
		       t->len > 1 ? "s" : "", TOKARG(L));
	else
		err_at(L, p, 1, "unexpected byte 0x%02x", *p);
}

void lex_next(lex_state *L, lex_token *t)
{
	for (;;) {
		L->tok = L->cur;
	/*!re2c
		re2c:define:YYCTYPE = "unsigned char";
		re2c:define:YYCURSOR = "L->cur";
		re2c:define:YYLIMIT = "L->lim";
		re2c:define:YYMARKER = "L->mark";
		re2c:yyfill:enable = 0;
		re2c:eof = 0;

		dec   = [0-9];
		hex   = [0-9a-fA-F];
		ident = [A-Za-z_][A-Za-z0-9_-]*;
		octet = dec{1,3};
		ipv4  = octet "." octet "." octet "." octet;
		ipv6  = hex{0,4} (":" hex{0,4}){2,7} ("." dec{1,3}){0,3};
		label = [A-Za-z0-9_][A-Za-z0-9_-]*;
		host  = label ("." label)*;
		port  = dec+;

		$                       { token(L, t, TK_EOF); return; }
		"\n"                    { L->line++; L->line_start = L->cur; continue; }
		[ \t\r\f\v]+            { continue; }
		"#" [^\n]*              {
			if (!L->comments)
				continue;
			while (L->cur > L->tok + 1 && (L->cur[-1] == '\r' || L->cur[-1] == ' ' ||
			       L->cur[-1] == '\t'))
				L->cur--;
			token(L, t, TK_COMMENT);
			return;
		}

		";"  { token(L, t, TK_SEMI);   return; }
		"{"  { token(L, t, TK_LBRACE); return; }
		"}"  { token(L, t, TK_RBRACE); return; }
		"("  { token(L, t, TK_LPAREN); return; }
		")"  { token(L, t, TK_RPAREN); return; }
		","  { token(L, t, TK_COMMA);  return; }
		"="  { token(L, t, TK_ASSIGN); return; }
		"==" { token(L, t, TK_EQ);     return; }
		"^=" { token(L, t, TK_PREFIX); return; }
		"~"  { token(L, t, TK_TILDE);  return; }
		"\"" { lex_string(L, t); return; }

		ident                   { token(L, t, TK_IDENT); return; }

		dec+                    { number_unit(L, t, TK_INT, 1, "number"); return; }
		dec+ "ms"               { number_unit(L, t, TK_DURATION, 1, "duration"); return; }
		dec+ "s"                { number_unit(L, t, TK_DURATION, 1000, "duration"); return; }
		dec+ "m"                { lex_minutes(L, t); return; }
		dec+ "h"                { number_unit(L, t, TK_DURATION, 3600000, "duration"); return; }
		dec+ [kK]               { number_unit(L, t, TK_SIZE, (int64_t)1 << 10, "size"); return; }
		dec+ "M"                { number_unit(L, t, TK_SIZE, (int64_t)1 << 20, "size"); return; }
		dec+ [gG]               { number_unit(L, t, TK_SIZE, (int64_t)1 << 30, "size"); return; }
		dec+ "r/" [smh]         { lex_rate(L, t); return; }
		dec+ "." dec+           { lex_float(L, t); return; }
		dec+ ".." dec+          { lex_range(L, t); return; }

		ipv4                    { lex_cidr(L, t, AF_INET); return; }
		ipv4 "/" dec+           { lex_cidr(L, t, AF_INET); return; }
		ipv6                    { lex_cidr(L, t, AF_INET6); return; }
		ipv6 "/" dec+           { lex_cidr(L, t, AF_INET6); return; }

		ipv4 ":" port           { lex_hostport(L, t, AF_INET); return; }
		"[" ipv6 "]" ":" port   { lex_hostport(L, t, AF_INET6); return; }
		host ":" port           { lex_hostport(L, t, 0); return; }
		"http" "s"? "://" (host | "[" ipv6 "]") (":" port)? { lex_url(L, t); return; }
		"[" ipv6 "]"            {
			token(L, t, TK_ERROR);
			err_at(L, L->tok, t->len, "expected ':PORT' after '" TOKFMT "'", TOKARG(L));
			return;
		}

		/* after the valid forms: on equal length the earlier rule wins */
		dec [A-Za-z0-9_.:/-]*         { lex_junk(L, t); return; }
		[A-Za-z_] [A-Za-z0-9_.:/-]*   { lex_junk(L, t); return; }

		*                       { lex_bad(L, t); return; }
	*/
	}
}

/*
 * test_lexer.c — every token kind with its exact value, every lexical
 * error with its exact line:col.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

#define MAXTOK 64

struct lexed {
	lex_token t[MAXTOK];
	size_t n;
	diag_ctx d;
	arena *a;
	char *text;
};

static struct lexed *lex_str(const char *src, size_t len, int comments)
{
	struct lexed *x = calloc(1, sizeof *x);
	lex_state L;

	x->text = malloc(len + 1);
	memcpy(x->text, src, len);
	x->text[len] = '\0';
	x->a = arena_new();
	diag_init(&x->d);
	lex_init(&L, x->text, len, "t.gwr", 0, &x->d, x->a);
	L.comments = comments;
	do {
		ck_assert_uint_lt(x->n, MAXTOK);
		lex_next(&L, &x->t[x->n]);
	} while (x->t[x->n++].kind != TK_EOF);
	return x;
}

static struct lexed *lex_s(const char *src)
{
	return lex_str(src, strlen(src), 0);
}

static void lexed_free(struct lexed *x)
{
	diag_fini(&x->d);
	arena_free(x->a);
	free(x->text);
	free(x);
}

static void tok_is(const lex_token *t, enum tok_kind k, const char *text,
                   unsigned line, unsigned col)
{
	ck_assert_msg(t->kind == k, "token '%.*s': kind %s, expected %s",
	              (int)t->len, t->text, lex_kind_name(t->kind), lex_kind_name(k));
	ck_assert_uint_eq(t->len, strlen(text));
	ck_assert(memcmp(t->text, text, t->len) == 0);
	ck_assert_uint_eq(t->pos.line, line);
	ck_assert_uint_eq(t->pos.col, col);
}

/* the one error of x is at line:col and its message contains frag */
static void err_is(const struct lexed *x, size_t k, unsigned line, unsigned col,
                   unsigned span, const char *frag)
{
	ck_assert_uint_gt(x->d.n, k);
	ck_assert_int_eq(x->d.v[k].level, DIAG_ERROR);
	ck_assert_msg(x->d.v[k].pos.line == line && x->d.v[k].pos.col == col,
	              "error '%s' at %u:%u, expected %u:%u", x->d.v[k].msg,
	              x->d.v[k].pos.line, x->d.v[k].pos.col, line, col);
	ck_assert_uint_eq(x->d.v[k].span, span);
	ck_assert_msg(strstr(x->d.v[k].msg, frag), "message '%s' lacks '%s'",
	              x->d.v[k].msg, frag);
	ck_assert_str_eq(x->d.v[k].pos.file, "t.gwr");
}

/* ---------------------------------------------------------- token kinds */
START_TEST(t_punct)
{
	struct lexed *x = lex_s("; { } ( ) , = == ^= ~");
	static const enum tok_kind k[] = { TK_SEMI, TK_LBRACE, TK_RBRACE, TK_LPAREN,
		TK_RPAREN, TK_COMMA, TK_ASSIGN, TK_EQ, TK_PREFIX, TK_TILDE, TK_EOF };

	ck_assert_uint_eq(x->n, 11);
	for (size_t i = 0; i < 11; i++)
		ck_assert_int_eq(x->t[i].kind, k[i]);
	ck_assert_uint_eq(x->t[8].pos.col, 18);
	ck_assert_uint_eq(x->t[8].len, 2);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_ident)
{
	struct lexed *x = lex_s("round_robin X-User _a9 GET");

	tok_is(&x->t[0], TK_IDENT, "round_robin", 1, 1);
	tok_is(&x->t[1], TK_IDENT, "X-User", 1, 13);
	tok_is(&x->t[2], TK_IDENT, "_a9", 1, 20);
	tok_is(&x->t[3], TK_IDENT, "GET", 1, 24);
	ck_assert_int_eq(x->t[4].kind, TK_EOF);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_string)
{
	struct lexed *x = lex_s("\"a\\\"b\\\\c\\n\\t\\x41\\x7e\" \"\" \"caf\xc3\xa9\"");

	tok_is(&x->t[0], TK_STRING, "\"a\\\"b\\\\c\\n\\t\\x41\\x7e\"", 1, 1);
	ck_assert_str_eq(x->t[0].s, "a\"b\\c\n\tA~");
	ck_assert_uint_eq(x->t[0].slen, 9);
	ck_assert_int_eq(x->t[1].kind, TK_STRING);
	ck_assert_str_eq(x->t[1].s, "");
	ck_assert_uint_eq(x->t[1].slen, 0);
	ck_assert_str_eq(x->t[2].s, "caf\xc3\xa9");
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_numbers)
{
	struct lexed *x = lex_s("42 0 9223372036854775807 0.1 12.75");

	tok_is(&x->t[0], TK_INT, "42", 1, 1);
	ck_assert_int_eq(x->t[0].i, 42);
	ck_assert_int_eq(x->t[1].kind, TK_INT);
	ck_assert_int_eq(x->t[1].i, 0);
	ck_assert_int_eq(x->t[2].i, INT64_MAX);
	tok_is(&x->t[3], TK_FLOAT, "0.1", 1, 26);
	ck_assert_double_eq_tol(x->t[3].f, 0.1, 1e-12);
	ck_assert_double_eq_tol(x->t[4].f, 12.75, 1e-12);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_durations)
{
	struct lexed *x = lex_s("250ms 5s 2m 1h 0s");

	tok_is(&x->t[0], TK_DURATION, "250ms", 1, 1);
	ck_assert_int_eq(x->t[0].i, 250);
	tok_is(&x->t[1], TK_DURATION, "5s", 1, 7);
	ck_assert_int_eq(x->t[1].i, 5000);
	tok_is(&x->t[2], TK_DURATION, "2m", 1, 10);
	ck_assert_int_eq(x->t[2].i, 120000);
	ck_assert_int_eq(x->t[2].i2, 2 << 20);   /* the size reading */
	tok_is(&x->t[3], TK_DURATION, "1h", 1, 13);
	ck_assert_int_eq(x->t[3].i, 3600000);
	ck_assert_int_eq(x->t[4].i, 0);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_sizes)
{
	struct lexed *x = lex_s("16k 1g 8M 3K 2G");

	tok_is(&x->t[0], TK_SIZE, "16k", 1, 1);
	ck_assert_int_eq(x->t[0].i, 16384);
	tok_is(&x->t[1], TK_SIZE, "1g", 1, 5);
	ck_assert_int_eq(x->t[1].i, 1073741824);
	ck_assert_int_eq(x->t[2].kind, TK_SIZE);
	ck_assert_int_eq(x->t[2].i, 8 << 20);
	ck_assert_int_eq(x->t[3].i, 3072);
	ck_assert_int_eq(x->t[4].i, (int64_t)2 << 30);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_rates)
{
	struct lexed *x = lex_s("100r/s 6000r/m 1000r/h");

	tok_is(&x->t[0], TK_RATE, "100r/s", 1, 1);
	ck_assert_int_eq(x->t[0].i, 100);
	ck_assert_int_eq(x->t[0].i2, 1000);
	tok_is(&x->t[1], TK_RATE, "6000r/m", 1, 8);
	ck_assert_int_eq(x->t[1].i, 6000);
	ck_assert_int_eq(x->t[1].i2, 60000);
	tok_is(&x->t[2], TK_RATE, "1000r/h", 1, 16);
	ck_assert_int_eq(x->t[2].i, 1000);
	ck_assert_int_eq(x->t[2].i2, 3600000);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_addresses)
{
	struct lexed *x = lex_s("10.0.0.7:8080 [::1]:8080 backend.internal:80 localhost:9000\n"
	                        "https://api.example.com:8443 http://10.0.0.1 https://[::1]:443");

	tok_is(&x->t[0], TK_ADDR, "10.0.0.7:8080", 1, 1);
	ck_assert_int_eq(x->t[0].i, 8080);
	tok_is(&x->t[1], TK_ADDR, "[::1]:8080", 1, 15);
	ck_assert_int_eq(x->t[1].i, 8080);
	tok_is(&x->t[2], TK_ADDR, "backend.internal:80", 1, 26);
	ck_assert_int_eq(x->t[2].i, 80);
	tok_is(&x->t[3], TK_ADDR, "localhost:9000", 1, 46);
	tok_is(&x->t[4], TK_ADDR, "https://api.example.com:8443", 2, 1);
	ck_assert_int_eq(x->t[4].i, 8443);
	tok_is(&x->t[5], TK_ADDR, "http://10.0.0.1", 2, 30);
	ck_assert_int_eq(x->t[5].i, 0);
	tok_is(&x->t[6], TK_ADDR, "https://[::1]:443", 2, 46);
	ck_assert_int_eq(x->t[6].i, 443);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_cidrs)
{
	struct lexed *x = lex_s("10.0.0.0/8 ::1/128 fe80::/10 10.0.0.1 ::1 2001:db8::/32 ::ffff:10.0.0.0/104 0.0.0.0/0");

	tok_is(&x->t[0], TK_CIDR, "10.0.0.0/8", 1, 1);
	ck_assert_int_eq(x->t[0].i, 8);
	ck_assert_int_eq(x->t[0].i2, 4);
	tok_is(&x->t[1], TK_CIDR, "::1/128", 1, 12);
	ck_assert_int_eq(x->t[1].i, 128);
	ck_assert_int_eq(x->t[1].i2, 6);
	tok_is(&x->t[2], TK_CIDR, "fe80::/10", 1, 20);
	ck_assert_int_eq(x->t[2].i, 10);
	tok_is(&x->t[3], TK_CIDR, "10.0.0.1", 1, 30);   /* a bare address is a /32 */
	ck_assert_int_eq(x->t[3].i, 32);
	tok_is(&x->t[4], TK_CIDR, "::1", 1, 39);
	ck_assert_int_eq(x->t[4].i, 128);
	tok_is(&x->t[5], TK_CIDR, "2001:db8::/32", 1, 43);
	tok_is(&x->t[6], TK_CIDR, "::ffff:10.0.0.0/104", 1, 57);
	ck_assert_int_eq(x->t[6].i, 104);
	tok_is(&x->t[7], TK_CIDR, "0.0.0.0/0", 1, 77);
	ck_assert_int_eq(x->t[7].i, 0);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_ranges)
{
	struct lexed *x = lex_s("expect 200..399;");

	tok_is(&x->t[1], TK_RANGE, "200..399", 1, 8);
	ck_assert_int_eq(x->t[1].i, 200);
	ck_assert_int_eq(x->t[1].i2, 399);
	ck_assert_int_eq(x->t[2].kind, TK_SEMI);
	ck_assert_uint_eq(x->d.n, 0);
	lexed_free(x);
}
END_TEST

START_TEST(t_comments_and_lines)
{
	const char *src = "# head\r\nroute a { # trailing  \n\tproxy b;\n}\n";
	struct lexed *x = lex_s(src), *c;

	tok_is(&x->t[0], TK_IDENT, "route", 2, 1);
	tok_is(&x->t[2], TK_LBRACE, "{", 2, 9);
	tok_is(&x->t[3], TK_IDENT, "proxy", 3, 2);
	tok_is(&x->t[5], TK_SEMI, ";", 3, 9);
	tok_is(&x->t[6], TK_RBRACE, "}", 4, 1);
	ck_assert_int_eq(x->t[7].kind, TK_EOF);
	lexed_free(x);

	c = lex_str(src, strlen(src), 1);
	tok_is(&c->t[0], TK_COMMENT, "# head", 1, 1);   /* \r and trailing blanks dropped */
	tok_is(&c->t[4], TK_COMMENT, "# trailing", 2, 11);
	ck_assert_uint_eq(c->d.n, 0);
	lexed_free(c);
}
END_TEST

/* fe80::1/64 is one token (a CIDR), never an identifier plus junk */
START_TEST(t_ipv6_longest_match)
{
	struct lexed *x = lex_s("allow fe80::1/64;");

	ck_assert_uint_eq(x->n, 4);
	tok_is(&x->t[1], TK_CIDR, "fe80::1/64", 1, 7);
	ck_assert_int_eq(x->t[2].kind, TK_SEMI);
	err_is(x, 0, 1, 7, 10, "host bits set; did you mean fe80::/64?");
	lexed_free(x);
}
END_TEST

/* ------------------------------------------------------- lexical errors */
START_TEST(t_err_bad_byte)
{
	struct lexed *x = lex_s("route a {\n    proxy @b;\n}");

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 2, 11, 1, "unexpected character '@'");
	ck_assert_int_eq(x->t[4].kind, TK_ERROR);
	tok_is(&x->t[5], TK_IDENT, "b", 2, 12);
	lexed_free(x);
}
END_TEST

START_TEST(t_err_bad_byte_run_and_utf8)
{
	struct lexed *x = lex_s("a $%& b\n  \xc3\xa9 c");

	ck_assert_uint_eq(x->d.n, 2);
	err_is(x, 0, 1, 3, 3, "unexpected characters '$%&'");
	err_is(x, 1, 2, 3, 2, "non-ASCII character outside a string");
	tok_is(&x->t[2], TK_IDENT, "b", 1, 7);
	tok_is(&x->t[4], TK_IDENT, "c", 2, 6);
	lexed_free(x);
}
END_TEST

START_TEST(t_err_nul_byte)
{
	struct lexed *x = lex_str("a\0b", 3, 0);

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 1, 2, 1, "unexpected byte 0x00");
	tok_is(&x->t[2], TK_IDENT, "b", 1, 3);
	ck_assert_int_eq(x->t[3].kind, TK_EOF);
	lexed_free(x);
}
END_TEST

START_TEST(t_err_not_equal)
{
	struct lexed *x = lex_s("match host != \"a\";");

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 1, 12, 2, "'!=' is not an operator");
	lexed_free(x);
}
END_TEST

START_TEST(t_err_bad_escape)
{
	struct lexed *x = lex_s("x;\n  respond 200 \"a\\qb\";");

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 2, 17, 2, "bad escape '\\q'");
	ck_assert_int_eq(x->t[4].kind, TK_STRING);  /* recovered: still a string */
	ck_assert_str_eq(x->t[4].s, "aqb");
	ck_assert_int_eq(x->t[5].kind, TK_SEMI);
	lexed_free(x);
}
END_TEST

START_TEST(t_err_bad_hex_escape)
{
	struct lexed *x = lex_s("\"\\x4g\" \"\\x00\"");

	ck_assert_uint_eq(x->d.n, 2);
	err_is(x, 0, 1, 2, 2, "expected two hex digits");
	err_is(x, 1, 1, 9, 4, "'\\x00' is not allowed");
	lexed_free(x);
}
END_TEST

START_TEST(t_err_unterminated_string)
{
	struct lexed *x = lex_s("route a {\n  respond 200 \"ok;\n}\n");

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 2, 15, 1, "unterminated string");
	ck_assert_int_eq(x->t[5].kind, TK_ERROR);
	tok_is(&x->t[6], TK_RBRACE, "}", 3, 1);   /* lexing goes on on the next line */
	lexed_free(x);
}
END_TEST

START_TEST(t_err_unterminated_string_eof)
{
	struct lexed *x = lex_s("a \"abc\\\"");

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 1, 3, 1, "unterminated string");
	ck_assert_int_eq(x->t[2].kind, TK_EOF);
	lexed_free(x);
}
END_TEST

START_TEST(t_err_invalid_utf8_in_string)
{
	/* well-formed UTF-8 (2, 3 and 4 bytes) is kept as is; the first byte
	 * that is not part of a well-formed character is one error per
	 * string (a lone 0xff, an overlong 0xc0 0xaf, a surrogate 0xed 0xa0) */
	struct lexed *x = lex_s("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\" \"a\xff" "b\" "
	                        "\"\xc0\xaf\" \"x\xed\xa0\x80\"");

	ck_assert_uint_eq(x->d.n, 3);
	ck_assert_str_eq(x->t[0].s, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	err_is(x, 0, 1, 20, 1, "invalid UTF-8 byte 0xff in string");
	err_is(x, 1, 1, 25, 1, "invalid UTF-8 byte 0xc0");
	err_is(x, 2, 1, 31, 1, "invalid UTF-8 byte 0xed");
	lexed_free(x);
}
END_TEST

START_TEST(t_err_control_char_in_string)
{
	struct lexed *x = lex_s("\"a\x01\"");

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 1, 3, 1, "control character 0x01");
	lexed_free(x);
}
END_TEST

START_TEST(t_err_cidr)
{
	struct lexed *x = lex_s("allow 10.0.0.1/8;\n"
	                        "allow 10.0.0.0/33, ::/129;\n"
	                        "allow 300.1.2.3, 1.2.3.4/99999999999999999999999;");

	ck_assert_uint_eq(x->d.n, 5);
	err_is(x, 0, 1, 7, 10, "invalid CIDR '10.0.0.1/8': host bits set; did you mean 10.0.0.0/8?");
	err_is(x, 1, 2, 7, 11, "invalid CIDR '10.0.0.0/33': prefix length must be 0-32");
	err_is(x, 2, 2, 20, 6, "prefix length must be 0-128");
	err_is(x, 3, 3, 7, 9, "invalid address '300.1.2.3': bad IPv4 address");
	err_is(x, 4, 3, 18, 31, "prefix length must be 0-32");
	ck_assert_int_eq(x->t[1].kind, TK_CIDR);   /* kind kept: no cascade */
	lexed_free(x);
}
END_TEST

START_TEST(t_err_overflow)
{
	struct lexed *x = lex_s("keepalive 99999999999999999999;\ntimeout 9999999999999999h;");

	ck_assert_uint_eq(x->d.n, 2);
	err_is(x, 0, 1, 11, 20, "number '99999999999999999999' is too large");
	err_is(x, 1, 2, 9, 17, "duration '9999999999999999h' is too large");
	ck_assert_int_eq(x->t[1].kind, TK_INT);
	lexed_free(x);
}
END_TEST

START_TEST(t_err_port)
{
	struct lexed *x = lex_s("server 10.0.0.1:70000;\nserver h:0;\nserver 10.0.0.256:80;");

	ck_assert_uint_eq(x->d.n, 3);
	err_is(x, 0, 1, 17, 5, "invalid port '70000'");
	err_is(x, 1, 2, 10, 1, "invalid port '0'");
	err_is(x, 2, 3, 8, 10, "invalid IPv4 address '10.0.0.256'");
	lexed_free(x);
}
END_TEST

START_TEST(t_err_junk)
{
	struct lexed *x = lex_s("timeout 5sec;\nserver backend.internal;\nproxy https://a.example/x;\nx 1.2.3.4.5;\ny [::1];");

	ck_assert_uint_eq(x->d.n, 5);
	err_is(x, 0, 1, 10, 3, "unknown unit 'sec' in '5sec'");
	err_is(x, 1, 2, 8, 16, "host name 'backend.internal' needs a port");
	err_is(x, 2, 3, 7, 19, "invalid URL 'https://a.example/x'");
	err_is(x, 3, 4, 3, 9, "invalid value '1.2.3.4.5'");
	err_is(x, 4, 5, 3, 5, "expected ':PORT' after '[::1]'");
	ck_assert_int_eq(x->t[1].kind, TK_ERROR);
	ck_assert_int_eq(x->t[2].kind, TK_SEMI);
	lexed_free(x);
}
END_TEST

START_TEST(t_err_range)
{
	struct lexed *x = lex_s("expect 399..200;");

	ck_assert_uint_eq(x->d.n, 1);
	err_is(x, 0, 1, 8, 8, "empty range '399..200'");
	lexed_free(x);
}
END_TEST

static Suite *lexer_suite(void)
{
	Suite *s = suite_create("lexer");
	TCase *k = tcase_create("kinds"), *e = tcase_create("errors");

	tcase_add_test(k, t_punct);
	tcase_add_test(k, t_ident);
	tcase_add_test(k, t_string);
	tcase_add_test(k, t_numbers);
	tcase_add_test(k, t_durations);
	tcase_add_test(k, t_sizes);
	tcase_add_test(k, t_rates);
	tcase_add_test(k, t_addresses);
	tcase_add_test(k, t_cidrs);
	tcase_add_test(k, t_ranges);
	tcase_add_test(k, t_comments_and_lines);
	tcase_add_test(k, t_ipv6_longest_match);
	tcase_add_test(e, t_err_bad_byte);
	tcase_add_test(e, t_err_bad_byte_run_and_utf8);
	tcase_add_test(e, t_err_nul_byte);
	tcase_add_test(e, t_err_not_equal);
	tcase_add_test(e, t_err_bad_escape);
	tcase_add_test(e, t_err_bad_hex_escape);
	tcase_add_test(e, t_err_unterminated_string);
	tcase_add_test(e, t_err_unterminated_string_eof);
	tcase_add_test(e, t_err_invalid_utf8_in_string);
	tcase_add_test(e, t_err_control_char_in_string);
	tcase_add_test(e, t_err_cidr);
	tcase_add_test(e, t_err_overflow);
	tcase_add_test(e, t_err_port);
	tcase_add_test(e, t_err_junk);
	tcase_add_test(e, t_err_range);
	suite_add_tcase(s, k);
	suite_add_tcase(s, e);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(lexer_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

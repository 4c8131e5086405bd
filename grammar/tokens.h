/*
 * tokens.h — the token kinds of the .gwr language, defined once.
 *
 * GW_TOKEN_LIST(T) expands T(NAME, "description") for every kind; the
 * description is what diagnostics print ("expected ';', found string").
 * The lexer (grammar/lexer.re) produces them, the parser (compiler/parse.c)
 * and the formatter (compiler/fmt.c) consume them. grammar/grammar.md gives
 * the regular expression of each kind.
 */
#ifndef GW_TOKENS_H
#define GW_TOKENS_H

#define GW_TOKEN_LIST(T) \
	T(EOF,      "end of file") \
	T(IDENT,    "identifier") \
	T(STRING,   "string") \
	T(INT,      "integer") \
	T(FLOAT,    "number") \
	T(DURATION, "duration") \
	T(SIZE,     "size") \
	T(RATE,     "rate") \
	T(ADDR,     "address") \
	T(CIDR,     "CIDR") \
	T(RANGE,    "range") \
	T(SEMI,     "';'") \
	T(LBRACE,   "'{'") \
	T(RBRACE,   "'}'") \
	T(LPAREN,   "'('") \
	T(RPAREN,   "')'") \
	T(COMMA,    "','") \
	T(ASSIGN,   "'='") \
	T(EQ,       "'=='") \
	T(PREFIX,   "'^='") \
	T(TILDE,    "'~'") \
	T(COMMENT,  "comment") \
	T(ERROR,    "invalid token")

#define GW_TOK_ENUM_(name, desc) TK_##name,
enum tok_kind { GW_TOKEN_LIST(GW_TOK_ENUM_) TK__COUNT };
#undef GW_TOK_ENUM_

#endif /* GW_TOKENS_H */

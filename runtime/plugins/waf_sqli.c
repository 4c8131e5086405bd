/*
 * waf_sqli.c — SQL injection detection by tokenizing, not by regexes.
 *
 * An injected value starts in one of three places of the query it lands in:
 * as is (a number, a column, a whole statement), inside a '...' string, or
 * inside a "..." string. For each context that is possible (a quote context
 * only when the value contains that quote) the value is tokenized as SQL —
 * in a quote context the first token is the rest of the string the value
 * starts in, up to its closing quote — and the tokens are folded into a
 * short stream of typed tokens. The letters are the fingerprint:
 *
 *   s string     n number/literal (null, true)   v variable (@x, @@version)
 *   b bareword   f known function + '('          k keyword (from, order by)
 *   E statement  U union                         & and/or/xor/&&/||
 *   o operator   c comment at the end            ; ( ) , .   ? other
 *
 * Folding drops inner comments (they act as blanks), unary signs and NOT,
 * joins dotted names (information_schema.tables) and multi-word keywords
 * (order by, union all). Grammar rules then look at the stream:
 *
 *   break-out rules, at the start of the stream: after the context string
 *   (or a leading number in the as-is context) comes a comment (admin'--),
 *   a boolean operator with a comparison, call or comment after it
 *   (' or 1=1--), a comparison or concatenation (' = ', '||version()||'),
 *   a clause (' order by 3--);
 *   anywhere rules: union [all] select, ; + a statement of the right shape
 *   (; drop table, ; insert into x), waitfor delay, sleep(5) and the other
 *   time/error/file functions with a literal argument, into outfile,
 *   from information_schema, a sub-select as an operand, @@variables.
 *
 * Prose has apostrophes and "or", "select", "union" words, but rarely an
 * apostrophe directly followed by "or" and a comparison: requiring a break
 * out right at the value's first quote is what keeps the precision up.
 *
 * The lexer also runs once more in "join" mode when the value contains a
 * C comment: comments inside words are skipped (UN/ * * /ION), the form
 * that fools filters which delete comments before the SQL parser sees it.
 * Values longer than a window of tokens are scanned in overlapping windows;
 * the break-out rules only apply to the first.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "waf.h"

/* ---- keywords --------------------------------------------------------- */
enum kw_id {
	K_NONE,
	/* statements (E) */
	K_SELECT, K_INSERT, K_UPDATE, K_DELETE, K_DROP, K_CREATE, K_ALTER, K_TRUNCATE,
	K_RENAME, K_EXEC, K_DECLARE, K_SHUTDOWN, K_WAITFOR, K_SHOW, K_GRANT, K_REPLACE, K_COPY,
	/* keywords (k) */
	K_SET, K_FROM, K_WHERE, K_INTO, K_OUTFILE, K_DUMPFILE, K_VALUES, K_TABLE,
	K_TABLES, K_DATABASE, K_DATABASES, K_SCHEMA, K_VIEW, K_INDEX, K_PROCEDURE,
	K_FUNCTION, K_TRIGGER, K_USER, K_LOGIN, K_COLUMN, K_COLUMNS, K_ORDERBY,
	K_GROUPBY, K_HAVING, K_LIMIT, K_DELAY, K_TIME, K_NOWAIT, K_ALL, K_DISTINCT,
	K_CASE, K_WHEN, K_THEN, K_ELSE, K_END, K_AS, K_VARIABLES, K_GRANTS,
	/* barewords with a role in folding */
	K_ORDER, K_GROUP, K_BY,
	/* functions with a role in the rules */
	K_IF
};

/* token flags */
#define F_CMP    0x01  /* comparison operator */
#define F_DANGER 0x02  /* function that sleeps, raises data in errors, reads files */
#define F_TIME   0x04  /* ... of which the time-based ones */
#define F_UNTERM 0x08  /* string running to the end of the value */
#define F_SYS    0x10  /* system catalog / procedure / @@variable */
#define F_FN     0x20  /* keyword table: becomes 'f' when '(' follows */
#define F_PAREN  0x40  /* lexer: '(' follows this word */
#define F_CTX    0x80  /* the context string (first token of a quote context) */
#define F_BOOL   0x100 /* true/false/null, xor: boolean words prose does not use */
#define F_SOFT   0x200 /* comment that may be prose: #word ("#include") */

typedef struct kw {
	const char *w;
	char t;
	uint8_t id;
	uint16_t fl;
} kw;

static const kw kwtab[] = {
	{"union", 'U', 0, 0},
	{"select", 'E', K_SELECT, 0}, {"insert", 'E', K_INSERT, F_FN},
	{"update", 'E', K_UPDATE, 0}, {"delete", 'E', K_DELETE, 0},
	{"drop", 'E', K_DROP, 0}, {"create", 'E', K_CREATE, 0},
	{"alter", 'E', K_ALTER, 0}, {"truncate", 'E', K_TRUNCATE, F_FN},
	{"rename", 'E', K_RENAME, 0}, {"exec", 'E', K_EXEC, 0},
	{"execute", 'E', K_EXEC, 0}, {"declare", 'E', K_DECLARE, 0},
	{"shutdown", 'E', K_SHUTDOWN, 0}, {"waitfor", 'E', K_WAITFOR, 0},
	{"show", 'E', K_SHOW, 0}, {"grant", 'E', K_GRANT, 0}, {"copy", 'E', K_COPY, 0},
	{"replace", 'E', K_REPLACE, F_FN},

	{"set", 'k', K_SET, 0}, {"from", 'k', K_FROM, 0}, {"where", 'k', K_WHERE, 0},
	{"into", 'k', K_INTO, 0}, {"outfile", 'k', K_OUTFILE, 0},
	{"dumpfile", 'k', K_DUMPFILE, 0}, {"values", 'k', K_VALUES, 0},
	{"table", 'k', K_TABLE, 0}, {"tables", 'k', K_TABLES, 0},
	{"database", 'k', K_DATABASE, F_FN}, {"databases", 'k', K_DATABASES, 0},
	{"schema", 'k', K_SCHEMA, F_FN}, {"view", 'k', K_VIEW, 0},
	{"index", 'k', K_INDEX, 0}, {"procedure", 'k', K_PROCEDURE, 0},
	{"function", 'k', K_FUNCTION, 0}, {"trigger", 'k', K_TRIGGER, 0},
	{"user", 'k', K_USER, F_FN}, {"login", 'k', K_LOGIN, 0},
	{"column", 'k', K_COLUMN, 0}, {"columns", 'k', K_COLUMNS, 0},
	{"having", 'k', K_HAVING, 0}, {"limit", 'k', K_LIMIT, 0},
	{"delay", 'k', K_DELAY, 0}, {"time", 'k', K_TIME, 0},
	{"nowait", 'k', K_NOWAIT, 0}, {"all", 'k', K_ALL, 0},
	{"distinct", 'k', K_DISTINCT, 0}, {"case", 'k', K_CASE, 0},
	{"when", 'k', K_WHEN, 0}, {"then", 'k', K_THEN, 0}, {"else", 'k', K_ELSE, 0},
	{"end", 'k', K_END, 0}, {"as", 'k', K_AS, 0},
	{"variables", 'k', K_VARIABLES, 0}, {"grants", 'k', K_GRANTS, 0},
	{"order", 'b', K_ORDER, 0}, {"group", 'b', K_GROUP, 0}, {"by", 'b', K_BY, 0},

	{"null", 'n', 0, F_BOOL}, {"true", 'n', 0, F_BOOL}, {"false", 'n', 0, F_BOOL},
	{"and", '&', 0, 0}, {"or", '&', 0, 0}, {"xor", '&', 0, F_BOOL},
	{"not", '!', 0, 0},
	{"like", 'o', 'L', F_CMP}, {"rlike", 'o', 'L', F_CMP}, {"ilike", 'o', 'L', F_CMP},
	{"regexp", 'o', 'L', F_CMP}, {"is", 'o', 'S', F_CMP}, {"in", 'o', 'I', F_CMP},
	{"between", 'o', 'B', F_CMP}, {"sounds", 'o', 'L', F_CMP},
	{"div", 'o', 0, 0}, {"mod", 'o', 0, 0},

	/* functions that make an injection observable */
	{"sleep", 'b', 0, F_FN | F_DANGER | F_TIME},
	{"benchmark", 'b', 0, F_FN | F_DANGER | F_TIME},
	{"pg_sleep", 'b', 0, F_FN | F_DANGER | F_TIME},
	{"randomblob", 'b', 0, F_FN | F_DANGER | F_TIME},
	{"receive_message", 'b', 0, F_FN | F_DANGER | F_TIME},
	{"extractvalue", 'b', 0, F_FN | F_DANGER},
	{"updatexml", 'b', 0, F_FN | F_DANGER},
	{"load_file", 'b', 0, F_FN | F_DANGER},
	{"xp_cmdshell", 'b', 0, F_FN | F_DANGER | F_SYS},
	{"sys_eval", 'b', 0, F_FN | F_DANGER}, {"sys_exec", 'b', 0, F_FN | F_DANGER},
	{"get_host_name", 'b', 0, F_FN | F_DANGER},
	{"get_host_address", 'b', 0, F_FN | F_DANGER},
	{"pg_read_file", 'b', 0, F_FN | F_DANGER}, {"pg_ls_dir", 'b', 0, F_FN | F_DANGER},
	{"lo_import", 'b', 0, F_FN | F_DANGER}, {"name_const", 'b', 0, F_FN | F_DANGER},
	{"analyse", 'b', 0, F_FN},
	{"dbms_xmlgen", 'b', 0, F_FN | F_DANGER},
	/* ordinary functions (f only before '(') */
	{"concat", 'b', 0, F_FN}, {"concat_ws", 'b', 0, F_FN}, {"group_concat", 'b', 0, F_FN},
	{"char", 'b', 0, F_FN}, {"chr", 'b', 0, F_FN}, {"ascii", 'b', 0, F_FN},
	{"ord", 'b', 0, F_FN}, {"substring", 'b', 0, F_FN}, {"substr", 'b', 0, F_FN},
	{"mid", 'b', 0, F_FN}, {"length", 'b', 0, F_FN}, {"len", 'b', 0, F_FN},
	{"version", 'b', 0, F_FN}, {"current_user", 'b', 0, F_FN},
	{"system_user", 'b', 0, F_FN}, {"session_user", 'b', 0, F_FN},
	{"count", 'b', 0, F_FN}, {"if", 'b', K_IF, F_FN}, {"iif", 'b', K_IF, F_FN},
	{"ifnull", 'b', 0, F_FN}, {"isnull", 'b', 0, F_FN}, {"nullif", 'b', 0, F_FN},
	{"coalesce", 'b', 0, F_FN}, {"cast", 'b', 0, F_FN}, {"convert", 'b', 0, F_FN},
	{"hex", 'b', 0, F_FN}, {"unhex", 'b', 0, F_FN}, {"md5", 'b', 0, F_FN},
	{"sha1", 'b', 0, F_FN}, {"rand", 'b', 0, F_FN}, {"floor", 'b', 0, F_FN},
	{"exp", 'b', 0, F_FN}, {"make_set", 'b', 0, F_FN}, {"elt", 'b', 0, F_FN},
	{"db_name", 'b', 0, F_FN}, {"host_name", 'b', 0, F_FN}, {"user_name", 'b', 0, F_FN},
	{"suser_name", 'b', 0, F_FN}, {"is_srvrolemember", 'b', 0, F_FN},
	{"sqlite_version", 'b', 0, F_FN}, {"current_database", 'b', 0, F_FN},
	{"now", 'b', 0, F_FN}, {"sysdate", 'b', 0, F_FN}, {"getdate", 'b', 0, F_FN},
	{"instr", 'b', 0, F_FN}, {"locate", 'b', 0, F_FN}, {"strcmp", 'b', 0, F_FN},
	{"json_extract", 'b', 0, F_FN}, {"xmltype", 'b', 0, F_FN},
	{"to_char", 'b', 0, F_FN}, {"nvl", 'b', 0, F_FN}, {"exists", 'k', 0, F_FN},
	{"row", 'b', 0, F_FN}, {"bin", 'b', 0, F_FN}, {"conv", 'b', 0, F_FN},
	{"lower", 'b', 0, F_FN}, {"upper", 'b', 0, F_FN}, {"reverse", 'b', 0, F_FN},
	{"left", 'b', 0, F_FN}, {"right", 'b', 0, F_FN}, {"sn", 'b', 0, F_FN},
	{"utl_http", 'b', 0, F_SYS}, {"utl_inaddr", 'b', 0, F_SYS},
	{"dbms_pipe", 'b', 0, F_SYS}, {"dbms_lock", 'b', 0, F_SYS},

	/* system catalogs */
	{"information_schema", 'b', 0, F_SYS}, {"sysobjects", 'b', 0, F_SYS},
	{"syscolumns", 'b', 0, F_SYS}, {"sysdatabases", 'b', 0, F_SYS},
	{"sysusers", 'b', 0, F_SYS}, {"pg_catalog", 'b', 0, F_SYS},
	{"pg_shadow", 'b', 0, F_SYS}, {"pg_user", 'b', 0, F_SYS},
	{"pg_database", 'b', 0, F_SYS}, {"all_tables", 'b', 0, F_SYS},
	{"all_users", 'b', 0, F_SYS}, {"user_tables", 'b', 0, F_SYS},
	{"dba_users", 'b', 0, F_SYS}, {"sqlite_master", 'b', 0, F_SYS},
	{"sqlite_schema", 'b', 0, F_SYS}, {"msysobjects", 'b', 0, F_SYS},
	{"sp_executesql", 'b', 0, F_SYS}, {"sp_oacreate", 'b', 0, F_SYS},
	{"sp_configure", 'b', 0, F_SYS}, {"sp_makewebtask", 'b', 0, F_SYS},
	{"sp_password", 'b', 0, F_SYS}, {"xp_regread", 'b', 0, F_SYS},
	{"xp_dirtree", 'b', 0, F_SYS},
};
#define NKW (sizeof kwtab / sizeof kwtab[0])

/* The keyword table is looked up for every word of every value: an open
 * addressing hash built once (FNV-1a on the lowercased word). */
#define KW_HASH 1024
static uint16_t kw_slot[KW_HASH];   /* index + 1; 0 = empty */
static pthread_once_t kw_once = PTHREAD_ONCE_INIT;

static uint32_t kw_hashof(const char *w, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)w[i]) * 16777619u;
	return h;
}

static void kw_build(void)
{
	for (size_t i = 0; i < NKW; i++) {
		uint32_t h = kw_hashof(kwtab[i].w, strlen(kwtab[i].w)) & (KW_HASH - 1);
		while (kw_slot[h])
			h = (h + 1) & (KW_HASH - 1);
		kw_slot[h] = (uint16_t)(i + 1);
	}
}

static const kw *kw_find(const char *w, size_t len)
{
	if (len < 2 || len > 20)
		return NULL;  /* no keyword is shorter or longer */
	uint32_t h = kw_hashof(w, len) & (KW_HASH - 1);
	while (kw_slot[h]) {
		const kw *k = &kwtab[kw_slot[h] - 1];
		if (!strncmp(k->w, w, len) && k->w[len] == 0)
			return k;
		h = (h + 1) & (KW_HASH - 1);
	}
	return NULL;
}

/* ---- lexer ------------------------------------------------------------ */
typedef struct stok {
	char t;
	uint8_t id;
	uint8_t op;        /* first char of an operator */
	uint16_t fl;
	uint32_t pos, len;
} stok;

typedef struct lexer {
	const unsigned char *s;
	size_t n, i;
	char q;            /* context quote, 0 once the context string is read */
	int join;          /* skip comments inside words */
	int in_exec;       /* inside a MySQL / *! ... * / */
	int has_peek;
	stok peek;
} lexer;

static int is_space(unsigned char c)
{
	return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0;
}

static int is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '$' || c >= 0x80;
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* position after a C comment starting at i (s[i..i+1] == "/ *") */
static size_t c_comment_end(const lexer *L, size_t i)
{
	for (i += 2; i + 1 < L->n; i++)
		if (L->s[i] == '*' && L->s[i + 1] == '/')
			return i + 2;
	return L->n;
}

/* skip blanks (and, in join mode, plain C comments); returns new i */
static size_t skip_blank(const lexer *L, size_t i)
{
	while (i < L->n && is_space(L->s[i]))
		i++;
	return i;
}

/* a quoted string starting at i (s[i] is the quote); sets end and unterm */
static size_t string_end(const lexer *L, size_t i, unsigned char q, int *unterm)
{
	for (i++; i < L->n; i++) {
		if (L->s[i] == '\\' && q != '`') {
			i++;
			continue;
		}
		if (L->s[i] == q) {
			if (i + 1 < L->n && L->s[i + 1] == q) {
				i++;
				continue;
			}
			*unterm = 0;
			return i + 1;
		}
	}
	*unterm = 1;
	return L->n;
}

static void set_tok(stok *t, char type, size_t pos, size_t end)
{
	t->t = type;
	t->id = 0;
	t->fl = 0;
	t->op = 0;
	t->pos = (uint32_t)pos;
	t->len = (uint32_t)(end - pos);
}

/* read a word at i into wbuf (lowercased, comments skipped in join mode);
 * returns the end position */
static size_t read_word(const lexer *L, size_t i, char *wbuf, size_t *wlen)
{
	size_t k = 0;
	while (i < L->n) {
		unsigned char c = L->s[i];
		if (is_word(c)) {
			if (k < 31)
				wbuf[k] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
			k++;
			i++;
			continue;
		}
		if (L->join && c == '/' && i + 1 < L->n && L->s[i + 1] == '*' &&
		    !(i + 2 < L->n && L->s[i + 2] == '!')) {
			size_t e = c_comment_end(L, i);
			if (e < L->n && is_word(L->s[e])) {
				i = e;
				continue;
			}
		}
		break;
	}
	*wlen = k < 31 ? k : 31;
	wbuf[*wlen] = 0;
	return i;
}

/* next raw token; 0 at the end */
static int lex_raw(lexer *L, stok *t)
{
	const unsigned char *s = L->s;
	size_t n = L->n;

	if (L->q) {
		/* the value starts inside a string quoted with q: the rest of that
		 * string is the first token (a doubled quote does not end it) */
		size_t i = 0;
		unsigned char q = (unsigned char)L->q;
		L->q = 0;
		for (; i < n; i++) {
			if (s[i] == q) {
				if (i + 1 < n && s[i + 1] == q) {
					i++;
					continue;
				}
				break;
			}
		}
		set_tok(t, 's', 0, i < n ? i + 1 : n);
		t->fl = F_CTX | (i < n ? 0 : F_UNTERM);
		L->i = i < n ? i + 1 : n;
		return 1;
	}

again:
	L->i = skip_blank(L, L->i);
	if (L->i >= n)
		return 0;
	size_t i = L->i;
	unsigned char c = s[i], d = i + 1 < n ? s[i + 1] : 0;

	/* comments */
	if (c == '/' && d == '*') {
		if (i + 2 < n && s[i + 2] == '!') {
			/* MySQL executable comment: its body is code */
			i += 3;
			for (int k = 0; k < 5 && i < n && is_digit(s[i]); k++)
				i++;
			L->in_exec = 1;
			L->i = i;
			goto again;
		}
		size_t e = c_comment_end(L, i);
		set_tok(t, 'c', i, e);
		L->i = e;
		return 1;
	}
	if (c == '*' && d == '/' && L->in_exec) {
		L->in_exec = 0;
		L->i = i + 2;
		goto again;
	}
	/* "--" is a comment before a blank or the end (MySQL's rule, which
	 * "-- -" and "--+" follow); "--squash", "--->" and "--" in quotes are
	 * prose about command lines, lexed as minus signs */
	unsigned char d2 = i + 2 < n ? s[i + 2] : 0;
	if (c == '#' || (c == '-' && d == '-' && (i + 2 >= n || d2 <= 0x20 || d2 == 0x7f))) {
		size_t e = i;
		while (e < n && s[e] != '\n')
			e++;
		set_tok(t, 'c', i, e);
		/* "#include", "#!/bin/sh", "#1": a comment, but not a truncation */
		if (c == '#' && d > 0x20 && d != '-' && d != '#' && d != '+' && d != 0x7f)
			t->fl |= F_SOFT;
		L->i = e;
		return 1;
	}

	/* strings and quoted identifiers */
	if (c == '\'' || c == '"' || c == '`') {
		int unterm = 0;
		size_t e = string_end(L, i, c, &unterm);
		set_tok(t, c == '`' ? 'b' : 's', i, e);
		if (unterm)
			t->fl |= F_UNTERM;
		L->i = e;
		return 1;
	}
	if (c == '[') {
		size_t e = i + 1;
		while (e < n && s[e] != ']' && is_word(s[e]))
			e++;
		if (e < n && s[e] == ']' && e > i + 1) {
			set_tok(t, 'b', i, e + 1);
			L->i = e + 1;
			return 1;
		}
	}

	/* numbers */
	if (is_digit(c) || (c == '.' && is_digit(d))) {
		size_t e = i;
		if (c == '0' && (d == 'x' || d == 'X' || d == 'b' || d == 'B') && i + 2 < n &&
		    is_word(s[i + 2])) {
			e = i + 2;
			while (e < n && (is_digit(s[e]) || ((s[e] | 0x20) >= 'a' && (s[e] | 0x20) <= 'f')))
				e++;
		} else {
			while (e < n && is_digit(s[e]))
				e++;
			if (e < n && s[e] == '.') {
				e++;
				while (e < n && is_digit(s[e]))
					e++;
			}
			if (e < n && (s[e] | 0x20) == 'e' && e > i) {
				size_t f = e + 1;
				if (f < n && (s[f] == '+' || s[f] == '-'))
					f++;
				if (f < n && is_digit(s[f])) {
					e = f;
					while (e < n && is_digit(s[e]))
						e++;
				}
			}
		}
		set_tok(t, 'n', i, e);
		L->i = e;
		return 1;
	}

	/* \N is MySQL's NULL */
	if (c == '\\' && (d == 'n' || d == 'N')) {
		set_tok(t, 'n', i, i + 2);
		L->i = i + 2;
		return 1;
	}

	/* variables */
	if (c == '@') {
		size_t e = i + 1;
		int sys = 0;
		if (e < n && s[e] == '@') {
			e++;
			sys = 1;
		}
		size_t w = e;
		while (e < n && (is_word(s[e]) || s[e] == '.'))
			e++;
		if (e == w) {
			set_tok(t, '?', i, i + 1);
			L->i = i + 1;
			return 1;
		}
		set_tok(t, 'v', i, e);
		if (sys)
			t->fl |= F_SYS;
		L->i = e;
		return 1;
	}

	/* words */
	if (is_word(c)) {
		char wbuf[32];
		size_t wlen;
		/* x'..' b'..' n'..': string literals */
		if ((c | 0x20) == 'x' || (c | 0x20) == 'b' || (c | 0x20) == 'n') {
			if (d == '\'') {
				int unterm = 0;
				size_t e = string_end(L, i + 1, '\'', &unterm);
				set_tok(t, 's', i, e);
				if (unterm)
					t->fl |= F_UNTERM;
				L->i = e;
				return 1;
			}
		}
		size_t e = read_word(L, i, wbuf, &wlen);
		set_tok(t, 'b', i, e);
		const kw *k = kw_find(wbuf, wlen);
		size_t j = skip_blank(L, e);
		while (j + 1 < n && s[j] == '/' && s[j + 1] == '*' && !(j + 2 < n && s[j + 2] == '!'))
			j = skip_blank(L, c_comment_end(L, j));
		int paren = j < n && s[j] == '(';
		if (paren)
			t->fl |= F_PAREN;
		if (k) {
			t->t = k->t;
			t->id = k->id;
			t->fl |= k->fl & (F_CMP | F_DANGER | F_TIME | F_SYS | F_BOOL);
			if (k->t == 'o') {
				t->op = k->id;  /* word operator: L(ike) I(n) S (is) B(etween) */
				t->id = 0;
			}
			if ((k->fl & F_FN) && paren)
				t->t = 'f';
		} else if (wlen > 3 && wbuf[2] == '_' && (wbuf[0] == 'x' || wbuf[0] == 's') &&
			   wbuf[1] == 'p') {
			t->fl |= F_SYS;  /* xp_... and sp_... procedures */
		}
		L->i = e;
		return 1;
	}

	/* operators and punctuation */
	static const char *const ops3[] = {"<=>"};
	static const char *const ops2[] = {"<=", ">=", "<>", "!=", "!<", "!>", "==", "||",
					   "&&", ":=", "::", "<<", ">>"};
	for (size_t k = 0; k < sizeof ops3 / sizeof ops3[0]; k++) {
		if (i + 2 < n && !memcmp(s + i, ops3[k], 3)) {
			set_tok(t, 'o', i, i + 3);
			t->fl = F_CMP;
			t->op = '<';
			L->i = i + 3;
			return 1;
		}
	}
	for (size_t k = 0; k < sizeof ops2 / sizeof ops2[0]; k++) {
		if (d && c == (unsigned char)ops2[k][0] && d == (unsigned char)ops2[k][1]) {
			set_tok(t, 'o', i, i + 2);
			t->op = c;
			if (c == '|' || c == '&')
				t->t = '&';
			else if (c == '<' || c == '>' || c == '!' || c == '=')
				t->fl = (c == '<' || c == '>') && c == d ? 0 : F_CMP;
			L->i = i + 2;
			return 1;
		}
	}
	set_tok(t, '?', i, i + 1);
	L->i = i + 1;
	switch (c) {
	case '=': case '<': case '>':
		t->t = 'o';
		t->fl = F_CMP;
		break;
	case '+': case '-': case '*': case '/': case '%': case '^': case '|': case '&': case '~':
		t->t = 'o';
		break;
	case '!':
		t->t = '!';
		break;
	case '(': case ')': case ',': case ';': case '.':
		t->t = (char)c;
		break;
	default:
		break;
	}
	t->op = c;
	return 1;
}

static int lex_next(lexer *L, stok *t)
{
	if (L->has_peek) {
		*t = L->peek;
		L->has_peek = 0;
		return 1;
	}
	return lex_raw(L, t);
}

static const stok *lex_peek(lexer *L)
{
	if (!L->has_peek) {
		if (!lex_raw(L, &L->peek))
			return NULL;
		L->has_peek = 1;
	}
	return &L->peek;
}

/* ---- folding ---------------------------------------------------------- */
#define SQL_WIN     160  /* tokens per window */
#define SQL_OVERLAP 12   /* tokens kept from one window to the next */

static int is_operand(char t)
{
	return t == 'n' || t == 's' || t == 'v' || t == 'b' || t == 'f';
}

/* Append the next folded token to T (n tokens so far); returns the new
 * count, or -1 at the end of the value. */
static int fold_next(lexer *L, stok *T, int n)
{
	stok t;
	for (;;) {
		if (!lex_next(L, &t))
			return -1;
		stok *prev = n > 0 ? &T[n - 1] : NULL;

		if (t.t == 'c') {
			/* a comment is a blank unless it ends the value */
			if (lex_peek(L))
				continue;
			T[n] = t;
			return n + 1;
		}
		if (t.t == '!')
			continue;
		if (t.t == 'o' && (t.op == '-' || t.op == '+' || t.op == '~') &&
		    (!prev || prev->t == '&' || prev->t == 'o' || prev->t == '(' || prev->t == ',' ||
		     prev->t == ';' || prev->t == 'E' || prev->t == 'k' || prev->t == 'U')) {
			const stok *nx = lex_peek(L);
			if (nx && (is_operand(nx->t) || nx->t == '(' || nx->t == 'o'))
				continue;  /* unary sign */
		}
		if (prev && prev->t == 'b' && (prev->id == K_ORDER || prev->id == K_GROUP) &&
		    t.t == 'b' && t.id == K_BY) {
			prev->t = 'k';
			prev->id = prev->id == K_ORDER ? K_ORDERBY : K_GROUPBY;
			prev->len = t.pos + t.len - prev->pos;
			continue;
		}
		if (prev && prev->t == 'U' && t.t == 'k' && (t.id == K_ALL || t.id == K_DISTINCT))
			continue;
		if (prev && prev->t == 'o' && (prev->fl & F_CMP) && t.t == 'o' && (t.fl & F_CMP) &&
		    t.op != '=' && t.op != '<' && t.op != '>' && t.op != '!')
			continue;  /* "sounds like", "is not" -> one comparison */
		if (t.t == '.' && prev && (prev->t == 'b' || prev->t == 'k') &&
		    prev->pos + prev->len == t.pos) {
			/* dotted name (information_schema.tables, master..xp_cmdshell):
			 * absorb the dot, the next word joins below */
			const stok *nx = lex_peek(L);
			if (nx && nx->pos == t.pos + 1 && strchr(".bkfEnU", nx->t)) {
				prev->len = t.pos + t.len - prev->pos;
				prev->t = 'b';
				continue;
			}
		}
		if (prev && prev->t == 'b' && prev->len > 0 && prev->pos + prev->len == t.pos &&
		    L->s[t.pos - 1] == '.' && strchr("bkfEnU", t.t)) {
			prev->len = t.pos + t.len - prev->pos;
			prev->fl |= t.fl & (F_SYS | F_DANGER | F_TIME | F_PAREN);
			if (t.t == 'f')
				prev->t = 'f';
			continue;
		}
		T[n] = t;
		return n + 1;
	}
}

/* ---- rules ------------------------------------------------------------ */
typedef struct verdict {
	const char *rule;
	uint32_t pos;
} verdict;

static int is_t(const stok *T, int n, int i, char t)
{
	return i >= 0 && i < n && T[i].t == t;
}

static int is_kw(const stok *T, int n, int i, char t, int id)
{
	return i >= 0 && i < n && T[i].t == t && T[i].id == id;
}

static int at_end(const stok *T, int n, int i, int final)
{
	return final ? (i >= n || T[i].t == 'c' || T[i].t == ';') : 0;
}

/* ; followed by a statement of a recognisable shape */
static int stacked_shape(const stok *T, int n, int i, int final)
{
	const stok *e = &T[i];
	int j = i + 1;
	if (e->t == 'k' && e->id == K_SET)
		return is_t(T, n, j, 'v');
	if (e->t != 'E')
		return 0;
	switch (e->id) {
	case K_DROP: case K_CREATE: case K_ALTER: case K_RENAME:
		return j < n && T[j].t == 'k' &&
		       (T[j].id == K_TABLE || T[j].id == K_DATABASE || T[j].id == K_SCHEMA ||
			T[j].id == K_VIEW || T[j].id == K_INDEX || T[j].id == K_PROCEDURE ||
			T[j].id == K_FUNCTION || T[j].id == K_TRIGGER || T[j].id == K_USER ||
			T[j].id == K_LOGIN || T[j].id == K_COLUMN);
	case K_TRUNCATE:
		return is_kw(T, n, j, 'k', K_TABLE) || (is_t(T, n, j, 'b') && at_end(T, n, j + 1, final));
	case K_DELETE:
		return is_kw(T, n, j, 'k', K_FROM);
	case K_INSERT: case K_REPLACE:
		/* the table is 'f' when a name that is also a function
		 * (mysql.user) meets its column list */
		return is_kw(T, n, j, 'k', K_INTO) && (is_t(T, n, j + 1, 'b') || is_t(T, n, j + 1, 'f')) &&
		       (is_t(T, n, j + 2, '(') || is_kw(T, n, j + 2, 'k', K_VALUES) ||
			is_kw(T, n, j + 2, 'E', K_SELECT));
	case K_UPDATE:
		return is_t(T, n, j, 'b') && is_kw(T, n, j + 1, 'k', K_SET);
	case K_SELECT:
		for (int k = j; k < n && k < j + 8; k++)
			if (is_kw(T, n, k, 'k', K_FROM))
				return 1;
		if (j < n && (T[j].t == 'f' || T[j].t == 'v' || T[j].t == '('))
			return 1;
		return j < n && (T[j].t == 'n' || (T[j].t == 'o' && T[j].op == '*')) &&
		       (at_end(T, n, j + 1, final) || is_t(T, n, j + 1, ','));
	case K_EXEC:
		return j < n && ((T[j].t == 'b' && (T[j].fl & F_SYS)) || T[j].t == '(' ||
				 T[j].t == 's' || T[j].t == 'v' || T[j].t == 'f');
	case K_DECLARE:
		return is_t(T, n, j, 'v');
	case K_SHUTDOWN:
		return at_end(T, n, j, final) || is_kw(T, n, j, 'k', K_NOWAIT);
	case K_WAITFOR:
		return is_kw(T, n, j, 'k', K_DELAY) || is_kw(T, n, j, 'k', K_TIME);
	case K_COPY:
		/* copy (select ...) to program / copy t from '/file' */
		return (is_t(T, n, j, '(') && is_kw(T, n, j + 1, 'E', K_SELECT)) ||
		       (is_t(T, n, j, 'b') && is_kw(T, n, j + 1, 'k', K_FROM) && is_t(T, n, j + 2, 's'));
	case K_SHOW:
		return j < n && T[j].t == 'k' &&
		       (T[j].id == K_TABLES || T[j].id == K_DATABASES || T[j].id == K_COLUMNS ||
			T[j].id == K_VARIABLES || T[j].id == K_GRANTS);
	default:
		return 0;
	}
}

/* patterns that are an attack wherever they appear */
/* Is T[j] a comparison whose operands make sense? 0 no, 1 yes, 2 yes with
 * a literal operand, 3 with literals on both sides. "10 or so people like this" has a comparison word
 * between barewords: prose, not SQL. */
static int cmp_ok(const stok *T, int n, int j, char q)
{
	if (T[j].t != 'o' || !(T[j].fl & F_CMP) || j == 0 || j + 1 >= n)
		return 0;
	char l = T[j - 1].t, r = T[j + 1].t;
	switch (T[j].op) {
	case 'I':
		if (r != '(')
			return 0;
		break;
	case 'S':
		if (r != 'n')
			return 0;
		break;
	case 'B':
		if (!strchr("nsfv", r))
			return 0;
		break;
	default:
		break;
	}
	int llit = strchr("nsvf)", l) != NULL, rlit = strchr("nsvf(", r) != NULL;
	if (!(llit || l == 'b') || !(rlit || r == 'b'))
		return 0;
	if (llit && rlit)
		return 3;
	if (llit || rlit)
		return 2;
	/* bareword = bareword: only after a quote break-out (' or x=x--) */
	int word_op = T[j].op == 'L' || T[j].op == 'I' || T[j].op == 'S' || T[j].op == 'B';
	return (q && !word_op) ? 1 : 0;
}

/* Does a select list start at T[j]? Literals, variables, calls, '*' or a
 * column followed by ',', from, into or the end: "union select 1,2",
 * "union select password from users", but not the prose "union select
 * committee meets" or the query "union select meaning&ia=web". */
static int select_list(const stok *T, int n, int j, int final)
{
	if (j >= n)
		return final;
	switch (T[j].t) {
	case 'n': case 's': case 'v': case 'f': case '(':
		return 1;
	case 'o':
		return T[j].op == '*';
	case 'k':
		return T[j].id == K_ALL || T[j].id == K_DISTINCT;
	case 'b':
		if (j + 1 >= n)
			return final;
		return T[j + 1].t == ',' || T[j + 1].t == 'c' || T[j + 1].t == ')' ||
		       T[j + 1].t == ';' || is_kw(T, n, j + 1, 'k', K_FROM) ||
		       is_kw(T, n, j + 1, 'k', K_INTO);
	default:
		return 0;
	}
}

static int same_text(const unsigned char *src, const stok *a, const stok *b)
{
	return a->len == b->len && !memcmp(src + a->pos, src + b->pos, a->len);
}

/* is the word token t one of the words in list (NULL-terminated)? */
static int word_in(const unsigned char *src, const stok *t, const char *const *list)
{
	for (int k = 0; list[k]; k++)
		if (strlen(list[k]) == t->len && !memcmp(src + t->pos, list[k], t->len))
			return 1;
	return 0;
}

/* SQL Server's declared types: "declare @s varchar(200)" */
static const char *const sql_types[] = {
	"varchar", "nvarchar", "char", "nchar", "int", "bigint", "sysname", "table",
	"cursor", "varbinary", "binary", "text", "ntext", NULL
};

/* a FROM within the next few tokens: the statement a sub-select needs */
static int from_within(const stok *T, int n, int j, int span)
{
	for (int k = j; k < n && k < j + span; k++)
		if (is_kw(T, n, k, 'k', K_FROM))
			return 1;
	return 0;
}

/* a number with a method called on it, closed at once: the 20.to_i of
 * sleep(20.to_i), how a Ruby or template expression spells a literal */
static int member_call(const unsigned char *src, const stok *T, int n, int j)
{
	return T[j].t == 'n' && T[j].len > 1 && src[T[j].pos + T[j].len - 1] == '.' &&
	       is_t(T, n, j + 1, 'b') && T[j + 1].pos == T[j].pos + T[j].len && is_t(T, n, j + 2, ')');
}

static int rules_anywhere(const unsigned char *src, const stok *T, int n, int final, verdict *v)
{
	for (int i = 0; i < n; i++) {
		const stok *t = &T[i];
		switch (t->t) {
		case 'U': {
			int j = i + 1;
			while (is_t(T, n, j, '('))
				j++;
			if (is_kw(T, n, j, 'E', K_SELECT) && select_list(T, n, j + 1, final)) {
				v->rule = "sqli-union";
				v->pos = t->pos;
				return 1;
			}
			break;
		}
		case ';':
			/* ;if(1=1) select ... : a conditional statement of T-SQL */
			if ((i + 1 < n && stacked_shape(T, n, i + 1, final)) ||
			    (is_t(T, n, i + 1, 'f') && T[i + 1].id == K_IF && is_t(T, n, i + 2, '(') &&
			     i + 4 < n && cmp_ok(T, n, i + 4, 0) == 3)) {
				v->rule = "sqli-stacked";
				v->pos = t->pos;
				return 1;
			}
			break;
		case 'E':
			if (t->id == K_WAITFOR && (is_kw(T, n, i + 1, 'k', K_DELAY) || is_kw(T, n, i + 1, 'k', K_TIME))) {
				v->rule = "sqli-time";
				v->pos = t->pos;
				return 1;
			}
			if (t->id == K_EXEC && is_t(T, n, i + 1, 'b') && (T[i + 1].fl & F_SYS)) {
				v->rule = "sqli-exec";
				v->pos = t->pos;
				return 1;
			}
			if (t->id == K_SELECT && is_t(T, n, i + 1, 'v') && (T[i + 1].fl & F_SYS)) {
				v->rule = "sqli-sysvar";
				v->pos = t->pos;
				return 1;
			}
			/* select 1,2,3 from : the column probe of a union, also
			 * sent on its own */
			if (t->id == K_SELECT && is_t(T, n, i + 1, 'n') && is_t(T, n, i + 2, ',') &&
			    is_t(T, n, i + 3, 'n') && from_within(T, n, i + 4, 16)) {
				v->rule = "sqli-union";
				v->pos = t->pos;
				return 1;
			}
			/* declare @s varchar(200) ... ; exec(@s) : T-SQL's dynamic
			 * statement, the carrier of hex-encoded payloads */
			if ((t->id == K_DECLARE && is_t(T, n, i + 1, 'v') && i + 2 < n &&
			     T[i + 2].t == 'b' && word_in(src, &T[i + 2], sql_types)) ||
			    (t->id == K_EXEC && is_t(T, n, i + 1, '(') && is_t(T, n, i + 2, 'v'))) {
				v->rule = "sqli-exec";
				v->pos = t->pos;
				return 1;
			}
			break;
		case 'f':
			/* if(1=1,a,b): a condition on constants only probes */
			if (t->id == K_IF && is_t(T, n, i + 1, '(') && i + 5 < n &&
			    (T[i + 2].t == 'n' || T[i + 2].t == 's') && T[i + 3].t == 'o' &&
			    (T[i + 3].fl & F_CMP) && (T[i + 4].t == 'n' || T[i + 4].t == 's') &&
			    T[i + 5].t == ',') {  /* SQL's IF(cond, a, b), not C's if (0 == 1) */
				v->rule = "sqli-case";
				v->pos = t->pos;
				return 1;
			}
			/* if(7423=7424) select 7423 else drop ... : T-SQL's IF on
			 * constants, then a statement, as the whole injected text */
			if (t->id == K_IF && is_t(T, n, i + 1, '(') && i + 6 < n &&
			    cmp_ok(T, n, i + 3, 0) == 3 && T[i + 5].t == ')' && T[i + 6].t == 'E') {
				v->rule = "sqli-stacked";
				v->pos = t->pos;
				return 1;
			}
			/* sleep(5), benchmark(1e7,md5(1)), extractvalue(rand(),...):
			 * a literal argument closed at once, or a nested call; not
			 * "sleep (8 hours)" */
			if ((t->fl & F_DANGER) && is_t(T, n, i + 1, '(') && i + 2 < n &&
			    (strchr("f(E", T[i + 2].t) ||
			     (strchr("nsv", T[i + 2].t) && (i + 3 >= n || T[i + 3].t == ')' ||
							    T[i + 3].t == ',' || T[i + 3].t == 'o' ||
							    member_call(src, T, n, i + 2))))) {
				v->rule = (t->fl & F_TIME) ? "sqli-time" : "sqli-func";
				v->pos = t->pos;
				return 1;
			}
			break;
		case 'k':
			if (t->id == K_INTO && i + 1 < n && T[i + 1].t == 'k' &&
			    (T[i + 1].id == K_OUTFILE || T[i + 1].id == K_DUMPFILE)) {
				v->rule = "sqli-file";
				v->pos = t->pos;
				return 1;
			}
			/* case when <comparison> then: a conditional probe; also a
			 * constant condition: case when 1 then */
			if (t->id == K_CASE && is_kw(T, n, i + 1, 'k', K_WHEN) &&
			    (is_t(T, n, i + 2, 'n') || is_t(T, n, i + 2, 's')) &&
			    is_kw(T, n, i + 3, 'k', K_THEN)) {
				v->rule = "sqli-case";
				v->pos = t->pos;
				return 1;
			}
			if (t->id == K_CASE && is_kw(T, n, i + 1, 'k', K_WHEN)) {
				for (int j = i + 2; j < n && j < i + 10 && !is_kw(T, n, j, 'k', K_THEN); j++) {
					if (cmp_ok(T, n, j, 0) >= 2) {
						v->rule = "sqli-case";
						v->pos = t->pos;
						return 1;
					}
				}
			}
			/* having 1=1 : the error probe of GROUP BY injection */
			if (t->id == K_HAVING && i + 3 < n && T[i + 1].t == 'n' && cmp_ok(T, n, i + 2, 0) == 3 &&
			    T[i + 3].t == 'n' && same_text(src, &T[i + 1], &T[i + 3])) {
				v->rule = "sqli-tautology";
				v->pos = t->pos;
				return 1;
			}
			if (t->id == K_FROM && is_t(T, n, i + 1, 'b') && (T[i + 1].fl & F_SYS)) {
				v->rule = "sqli-schema";
				v->pos = t->pos;
				return 1;
			}
			break;
		case '(':
			if (is_kw(T, n, i + 1, 'E', K_SELECT) && i > 0 && strchr("&o(f,", T[i - 1].t) &&
			    (T[i - 1].t != ',' || i + 2 < n)) {
				v->rule = "sqli-subquery";
				v->pos = t->pos;
				return 1;
			}
			/* a whole sub-select as the value, or after a number:
			 * "(select id from users limit 1,1)", "-1 (select ...)".
			 * It must read as a query (a FROM, a call), not as the
			 * prose "(select all that apply)" */
			if (is_kw(T, n, i + 1, 'E', K_SELECT) && (i == 0 || T[i - 1].t == 'n') &&
			    i + 2 < n && (strchr("fv", T[i + 2].t) ||
					  (from_within(T, n, i + 2, 12) &&
					   (select_list(T, n, i + 2, final) ||
					    (T[i + 2].t == 'b' && is_t(T, n, i + 3, 'o')))))) {
				v->rule = "sqli-subquery";
				v->pos = t->pos;
				return 1;
			}
			/* elt(1=1,...), make_set(1=1,...), (1=1)*2 : the same
			 * constant compared with itself, as an argument */
			if (i + 4 < n && T[i + 1].t == 'n' && T[i + 2].t == 'o' && T[i + 2].op == '=' &&
			    T[i + 3].t == 'n' && same_text(src, &T[i + 1], &T[i + 3]) &&
			    (T[i + 4].t == ',' || T[i + 4].t == ')')) {
				v->rule = "sqli-tautology";
				v->pos = t->pos;
				return 1;
			}
			break;
		case '&':
			/* or 1=1 / or 'a'='a' / or 2>1 anywhere in the value */
			if (i + 3 < n && (T[i + 1].t == 'n' || T[i + 1].t == 's') &&
			    T[i + 2].t == 'o' && (T[i + 2].fl & F_CMP) && T[i + 3].t == T[i + 1].t &&
			    !(T[i + 3].fl & F_UNTERM) &&
			    (T[i + 1].t == 'n' ? T[i + 2].op != 'I' && T[i + 2].op != 'S'
					       : same_text(src, &T[i + 1], &T[i + 3]))) {
				v->rule = "sqli-tautology";
				v->pos = t->pos;
				return 1;
			}
			if (is_t(T, n, i + 1, 'v') && (T[i + 1].fl & F_SYS)) {
				v->rule = "sqli-sysvar";
				v->pos = t->pos;
				return 1;
			}
			/* or a=a , or (x=x : a column equal to itself */
			{
				int j = i + 1 + is_t(T, n, i + 1, '(');
				if (j + 2 < n && T[j].t == 'b' && T[j + 1].t == 'o' && T[j + 1].op == '=' &&
				    (T[j + 1].fl & F_CMP) && T[j + 2].t == 'b' &&
				    same_text(src, &T[j], &T[j + 2])) {
					v->rule = "sqli-tautology";
					v->pos = t->pos;
					return 1;
				}
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

static int balanced_expr(const unsigned char *src, const stok *T, int n, int b, char q, int final,
			 verdict *v)
{
	const stok *t = &T[b];
	/* '-0||' : an expression between the quote the value closes and the
	 * one it reopens for the query's own, with a logical or comparison
	 * operator and a literal that is not a string ("or" and "and" in
	 * quotes is prose) */
	/* the reopened string is the value's last character (the quote the
	 * query closes), and a lone word or/and before a number is prose:
	 * 16" or 18" */
	if (q && final && n >= b + 3 && (t->t == 'o' || t->t == '&') &&
	    T[n - 1].t == 's' && (T[n - 1].fl & F_UNTERM) && T[n - 1].len == 1 &&
	    !(n == b + 3 && t->t == '&' && T[b + 1].t == 'n' && src[t->pos] >= 'a' && src[t->pos] <= 'z')) {
		int logic = 0, lit = 0, ok = 1;
		for (int j = b; j < n - 1 && ok; j++) {
			if (!strchr("nsvo&()f", T[j].t))
				ok = 0;
			if (T[j].t == '&' || (T[j].t == 'o' && (T[j].fl & F_CMP)))
				logic = 1;
			if (T[j].t == 'n' || T[j].t == 'v' || T[j].t == 'f')
				lit = 1;
		}
		if (ok && logic && lit) {
			v->rule = "sqli-expression";
			v->pos = t->pos;
			return 1;
		}
	}

	/* ' or ''-' , " or "" " : the whole value is the quote that closes
	 * the query's string, or/and over empty strings and operators, and
	 * the quote it reopens. It needs the or/and and something more: a
	 * lone symbol in quotes ("*", '-') is how people search for it, and
	 * 'and' alone a quoted word. */
	if (q && final && T[0].len == 1 && src[T[0].pos] == (unsigned char)q && n >= b + 3 &&
	    T[n - 1].t == 's' && (T[n - 1].fl & F_UNTERM) && T[n - 1].len == 1) {
		int sym = 0, logic = 0, ok = 1;
		for (int j = b; j < n - 1 && ok; j++) {
			if (!strchr("o&s", T[j].t))
				ok = 0;
			if (T[j].t == '&')
				logic = 1;
			if (T[j].t == 's' || (T[j].t == 'o' && !(src[T[j].pos] >= 'a' && src[T[j].pos] <= 'z')))
				sym = 1;
		}
		if (ok && logic && sym) {
			v->rule = "sqli-expression";
			v->pos = t->pos;
			return 1;
		}
	}
	return 0;
}

/* The value is only a clause, as appended to a numeric query: " order by
 * 3--", " group by 2", " having 1=0#". A column number and then the end or
 * a comment; constants compared after having. */
static int clause_alone(const stok *T, int n, int final, verdict *v)
{
	v->pos = T[0].pos;
	if ((T[0].id == K_ORDERBY || T[0].id == K_GROUPBY) && is_t(T, n, 1, 'n') && at_end(T, n, 2, final)) {
		v->rule = "sqli-clause";
		return 1;
	}
	if (T[0].id == K_HAVING && is_t(T, n, 1, 'n') && cmp_ok(T, n, 2, 0) == 3 && is_t(T, n, 3, 'n') &&
	    at_end(T, n, 4, final)) {
		v->rule = "sqli-tautology";
		return 1;
	}
	return 0;
}

/* ' insert into users(login, pw) values (...), 'create user x identified
 * by 'p' -- : a statement right after the quote, of the shape a stacked
 * one has. Insert needs its values (or select); the others must end the
 * value with a comment or ';', as an injection silences the rest of the
 * query: a quoted "Create user account" or "Delete from list" is a title.
 * Select is left to the union and sub-select rules. */
static int statement_breakout(const stok *T, int n, int b, int final)
{
	const stok *t = &T[b];
	if (t->t != 'E' || t->id == K_SELECT || !stacked_shape(T, n, b, final))
		return 0;
	if (t->id == K_INSERT || t->id == K_REPLACE) {
		for (int j = b + 3; j < n && j < b + 16; j++)
			if (is_kw(T, n, j, 'k', K_VALUES) || is_kw(T, n, j, 'E', K_SELECT))
				return 1;
	}
	return final && (T[n - 1].t == 'c' || T[n - 1].t == ';');
}

/* the start of the stream: does the value break out of its context? */
static int has_blank(const unsigned char *src, const stok *t)
{
	for (uint32_t i = 0; i < t->len; i++)
		if (src[t->pos + i] == ' ' || src[t->pos + i] == '\n' || src[t->pos + i] == '\t')
			return 1;
	return 0;
}

static int rules_breakout(const unsigned char *src, const stok *T, int n, char q, int final,
			  verdict *v)
{
	int b;
	if (n == 0)
		return 0;
	if (q) {
		if (!(T[0].t == 's' && (T[0].fl & F_CTX)) || (T[0].fl & F_UNTERM))
			return 0;
		b = 1;
	} else if (T[0].t == 'n' || T[0].t == 'v' || T[0].t == 's') {
		b = 1;
	} else if (T[0].t == '&' || T[0].t == ')') {
		b = 0;
	} else if (!q && T[0].t == 'k') {
		return clause_alone(T, n, final, v);
	} else {
		return 0;
	}
	while (is_t(T, n, b, ')'))
		b++;
	if (b >= n)
		return 0;
	const stok *t = &T[b];
	v->pos = t->pos;

	/* admin'-- , admin')# ; a '#' after a quoted phrase of several words is
	 * a number sign in prose ("soap 1 '#", "foo bar'# blah") */
	if (t->t == 'c' && q && !(t->fl & F_SOFT) && !(src[t->pos] == '#' && has_blank(src, &T[0]))) {
		v->rule = "sqli-comment";
		return 1;
	}
	/* '; <statement> and ';-- */
	if (t->t == ';' && q) {
		if (is_t(T, n, b + 1, 'c') || is_t(T, n, b + 1, 'E')) {
			v->rule = is_t(T, n, b + 1, 'c') ? "sqli-comment" : "sqli-stacked";
			return 1;
		}
		return 0;
	}
	if (q && statement_breakout(T, n, b, final)) {
		v->rule = "sqli-stacked";
		return 1;
	}
	if (t->t == '&') {
		int cmp = 0, lit = 0, call = 0, sub = 0;
		int j;
		for (j = b + 1; j < n && T[j].t != 'c' && T[j].t != ';'; j++) {
			int c = cmp_ok(T, n, j, q);
			if (c)
				cmp = 1;
			if (c == 3)
				lit = 1;
			if (T[j].t == 'f')
				call = 1;
			if ((T[j].t == '(' && is_kw(T, n, j + 1, 'E', K_SELECT)) ||
			    (T[j].t == 'v' && (T[j].fl & F_SYS)))
				sub = 1;
		}
		int comment = j < n && (T[j].t == 'c' || T[j].t == ';');
		if (b == 0) {
			/* the value starts with or/and: no context to close, a
			 * comparison of constants is needed ("and the return
			 * status is 0" is prose) */
			if (lit || sub || (call && (cmp || comment))) {
				v->rule = "sqli-tautology";
				return 1;
			}
			/* " or x=y--", "or true--": the whole value is one
			 * condition, on two columns or a boolean word, and ends
			 * there or in a comment */
			if ((n >= 4 && T[1].t == 'b' && T[2].t == 'o' && T[2].op == '=' &&
			     (T[2].fl & F_CMP) && T[3].t == 'b' && at_end(T, n, 4, final)) ||
			    (n >= 3 && T[1].t == 'n' && (T[1].fl & F_BOOL) && (T[2].t == 'c' || T[2].t == ';'))) {
				v->rule = "sqli-tautology";
				return 1;
			}
			return 0;
		}
		/* as is, only a comparison right after the operator counts:
		 * "1 or x=1", not the pipes of "5685587||order=||page=2" */
		if (!q && cmp && !(lit || call || sub)) {
			int k = b + 1 + is_t(T, n, b + 1, '(');
			cmp = k + 1 < n && cmp_ok(T, n, k + 1, q) != 0;
		}
		if (cmp || call || sub) {
			v->rule = "sqli-tautology";
			return 1;
		}
		/* 1 and true , 1 xor 1 , ' or null-- : boolean words */
		if (b + 1 < n && (t->fl & F_BOOL ? is_operand(T[b + 1].t) : (T[b + 1].fl & F_BOOL) != 0) &&
		    (b + 2 == n ? final : (T[b + 2].t == 'c' || T[b + 2].t == ';'))) {
			v->rule = "sqli-tautology";
			return 1;
		}
		if (comment && q && b + 1 < n && is_operand(T[b + 1].t)) {
			v->rule = "sqli-tautology";
			return 1;
		}
		return balanced_expr(src, T, n, b, q, final, v);
	}
	if (t->t == 'o' && b > 0) {
		/* '=' , admin'='  , '=0-- , ' like '% : an equality, true for
		 * empty strings; ending right there it needs a one-word context
		 * (a user name), not a sentence ("the '=' character") */
		if ((t->fl & F_CMP) && (t->op == '=' || t->op == 'L') && q && b + 1 < n &&
		    /* like needs a pattern: ' like '% , not "like" stamp */
		    (t->op != 'L' || T[b + 1].t != 's' ||
		     memchr(src + T[b + 1].pos, '%', T[b + 1].len) || memchr(src + T[b + 1].pos, '_', T[b + 1].len)) &&
		    strchr("nsvfb", T[b + 1].t) &&
		    ((b + 2 == n && final && !has_blank(src, &T[0])) || is_t(T, n, b + 2, 'c') ||
		     is_t(T, n, b + 2, '&')) &&
		    (T[b + 1].t != 'b' || b + 2 < n)) {
			v->rule = "sqli-tautology";
			return 1;
		}
		/* '||version()||' , '+(select 1)+' , 1-sleep(5) */
		for (int j = b + 1; j < n && j <= b + 4; j++) {
			if (T[j].t == 'f' || (T[j].t == '(' && is_kw(T, n, j + 1, 'E', K_SELECT)) ||
			    (T[j].t == 'v' && (T[j].fl & F_SYS))) {
				if (!q && T[j].t == 'f' && !(T[j].fl & F_DANGER) && j != b + 1)
					continue;
				v->rule = "sqli-concat";
				return 1;
			}
		}
		return balanced_expr(src, T, n, b, q, final, v);
	}
	if (t->t == 'k' && (t->id == K_ORDERBY || t->id == K_GROUPBY || t->id == K_HAVING ||
			    t->id == K_LIMIT || t->id == K_PROCEDURE || t->id == K_INTO) && b > 0) {
		/* into only before a variable (into @a); "into the wild" is a
		 * title (into outfile is its own rule) */
		if (b + 1 < n && strchr("nbfvs(", T[b + 1].t) && (t->id != K_INTO || T[b + 1].t == 'v')) {
			/* as-is context: "3 order by price" is prose, 3 order by 1 is not */
			if (!q && !(T[b + 1].t == 'n' || T[b + 1].t == 'f' || is_t(T, n, b + 2, 'c')))
				return 0;
			v->rule = "sqli-clause";
			return 1;
		}
	}
	return balanced_expr(src, T, n, b, q, final, v);
}

/* tokenize s in context q (0, '\'', '"'); 1 and v when a rule fires */
static int scan(const char *s, size_t n, char q, int join, verdict *v, char *fp, size_t fpcap)
{
	stok T[SQL_WIN];
	lexer L = {(const unsigned char *)s, n, 0, q, join, 0, 0, {0}};
	int cnt = 0, first = 1, fpn = 0;

	for (;;) {
		int r = fold_next(&L, T, cnt);
		int final = r < 0;
		if (!final) {
			if (fp && first && (size_t)fpn + 1 < fpcap) {
				/* folding may have retyped the previous token */
				if (fpn > 0 && r >= 2)
					fp[fpn - 1] = T[r - 2].t;
				fp[fpn++] = T[r - 1].t;
			}
			cnt = r;
			if (cnt < SQL_WIN)
				continue;
		}
		/* the specific patterns first, so the rule id says what it is */
		if (rules_anywhere(L.s, T, cnt, final, v))
			goto hit;
		if (first && rules_breakout(L.s, T, cnt, q, final, v))
			goto hit;
		if (final)
			break;
		memmove(T, T + cnt - SQL_OVERLAP, SQL_OVERLAP * sizeof T[0]);
		cnt = SQL_OVERLAP;
		first = 0;
	}
	if (fp && fpcap)
		fp[fpn < (int)fpcap ? fpn : (int)fpcap - 1] = 0;
	return 0;
hit:
	if (fp && fpcap)
		fp[fpn < (int)fpcap ? fpn : (int)fpcap - 1] = 0;
	return 1;
}

int waf_sql_fingerprint(const char *s, size_t n, char q, char *out, size_t cap)
{
	stok T[SQL_WIN];
	pthread_once(&kw_once, kw_build);
	lexer L = {(const unsigned char *)s, n, 0, q, 0, 0, 0, {0}};
	int cnt = 0, total = 0;
	size_t o = 0;
	for (;;) {
		int r = fold_next(&L, T, cnt);
		if (r < 0)
			break;
		if (o > 0 && r >= 2 && o <= (size_t)total)
			out[o - 1] = T[r - 2].t;  /* folding may have retyped it */
		if (o + 1 < cap)
			out[o++] = T[r - 1].t;
		total++;
		cnt = r;
		if (cnt == SQL_WIN) {
			memmove(T, T + cnt - SQL_OVERLAP, SQL_OVERLAP * sizeof T[0]);
			cnt = SQL_OVERLAP;
		}
	}
	if (cap)
		out[o] = 0;
	return total;
}

const char *waf_sqli_check(const char *s, size_t n, size_t *pos, char *fp, size_t fpcap)
{
	static const char ctxs[3] = {0, '\'', '"'};
	verdict v = {0};

	pthread_once(&kw_once, kw_build);

	/* One pass to see what the value can be. A value made only of letters,
	 * digits, '_', '-' and '.' is one token or words glued by '-' and '.':
	 * no rule can fire on it (they need blanks, quotes, parentheses,
	 * operators or comments between tokens). Most names and values of a
	 * clean request are like that. */
	static const unsigned char kind[256] = {
		/* 0: plain, 1: other, 2: ', 3: ", 4: / */
		[0 ... 0x21] = 1, ['"'] = 3, [0x23 ... 0x26] = 1, ['\''] = 2, [0x28 ... 0x2c] = 1,
		['/'] = 4, [':' ... '@'] = 1, ['['] = 1, ['\\'] = 1, [']'] = 1, ['^'] = 1,
		['`'] = 1, ['{' ... 0x7f] = 1,
	};
	int plain = 1, has_cmt = 0, q1 = 0, q2 = 0;
	for (size_t i = 0; i < n; i++) {
		switch (kind[(unsigned char)s[i]]) {
		case 0:
			continue;
		case 2:
			q1 = 1;
			break;
		case 3:
			q2 = 1;
			break;
		case 4:
			if (i + 1 < n && s[i + 1] == '*')
				has_cmt = 1;
			break;
		default:
			break;
		}
		plain = 0;
	}
	if (fp && fpcap)
		fp[0] = 0;
	if (plain)
		return NULL;
	char *fpo = fp;
	if (!fp || !fpcap)
		fpo = NULL;
	const int has_q[3] = {1, q1, q2};
	for (int join = 0; join <= has_cmt; join++) {
		for (int c = 0; c < 3; c++) {
			if (!has_q[c])
				continue;
			if (scan(s, n, ctxs[c], join, &v, fpo, fpcap)) {
				if (pos)
					*pos = v.pos;
				return v.rule;
			}
		}
	}
	if (fpo)
		fpo[0] = 0;  /* a fingerprint only comes with a hit */
	return NULL;
}

/*
 * waf.h — the detection engine behind the `waf` plugin, independent of the
 * HTTP plumbing so it can be tested and benchmarked on its own.
 *
 *   request parts ──split──> raw values ──waf_normalize──> canonical text
 *        path, query args (names and values), Cookie pairs, User-Agent,
 *        Referer, extra headers, form or JSON body
 *   canonical text ──> detectors, in class order:
 *        sqli       SQL tokenizer run in three contexts (as is, after ',
 *                   after "), folded into typed tokens, judged by grammar
 *                   rules (tautology, union, stacked query, truncation...)
 *        xss        HTML tokenizer: dangerous tags, event handlers inside
 *                   tags, script URLs, CSS expressions, attribute and JS
 *                   string break-outs
 *        traversal  ../ after full decoding, sensitive absolute paths,
 *                   stream wrappers, NUL truncation
 *        scanner    User-Agent of known scanners, probe paths
 *        protocol   malformed encodings reported by the normaliser
 *
 * Nothing here allocates per request: every buffer is in a waf_scratch the
 * caller creates once per worker thread. Every pass is linear in the input
 * (no backtracking regexes); values longer than the scratch are inspected
 * up to its size.
 */
#ifndef GW_WAF_H
#define GW_WAF_H

#include <stddef.h>
#include <stdint.h>

/* ---- classes (bits of the `classes` mask and of waf_inspect's result) */
#define WAF_SQLI      0x01u
#define WAF_XSS       0x02u
#define WAF_TRAVERSAL 0x04u
#define WAF_SCANNER   0x08u
#define WAF_PROTOCOL  0x10u
#define WAF_ALL       0x1fu

/* "sqli", "xss", ... for one class bit; "?" otherwise */
const char *waf_class_name(unsigned cls);
/* class bit for a name ("sqli"...), 0 if unknown */
unsigned waf_class_from_name(const char *name, size_t len);

/* ---- normalisation -------------------------------------------------- */
/* flags */
#define WAF_N_PERCENT  0x001u /* %HH and %uHHHH, repeated while it changes (bounded) */
#define WAF_N_PLUS     0x002u /* '+' is a space (query and form values; first round only) */
#define WAF_N_HTML     0x004u /* &lt; &#NN; &#xHH; (also without ';'), common names */
#define WAF_N_JSESC    0x008u /* \uHHHH and \xHH JavaScript escapes */
#define WAF_N_OVERLONG 0x010u /* overlong UTF-8 (%c0%af) decoded to its ASCII char */
#define WAF_N_SPACE    0x020u /* \t \v \f, NBSP (c2 a0 or a lone a0), Unicode spaces
				 * -> ' '; \r and \n -> '\n' (kept: SQL line comments
				 * end there, header injection needs them) */
#define WAF_N_NUL      0x040u /* NUL bytes dropped */
#define WAF_N_LOWER    0x080u /* ASCII case folding */
#define WAF_N_SQLCMT   0x100u /* SQL comments / * ... * / -> ' ' (MySQL / *! kept as code);
				 * not in the default: the SQL tokenizer reads comments
				 * itself, and also reads UN / * * / ION as one word */
#define WAF_N_DEFAULT  (WAF_N_PERCENT | WAF_N_HTML | WAF_N_JSESC | WAF_N_OVERLONG | \
			WAF_N_SPACE | WAF_N_NUL | WAF_N_LOWER)

/* anomalies found while normalising (input to the protocol class) */
#define WAF_A_BADESC   0x01u  /* '%' not followed by two hex digits / %u + 4 hex */
#define WAF_A_OVERLONG 0x02u  /* an overlong UTF-8 sequence was present */
#define WAF_A_NUL      0x04u  /* a NUL byte (raw or encoded) */
#define WAF_A_CTRL     0x08u  /* another control character (0x01-0x1f, 0x7f) */
#define WAF_A_DEEP     0x10u  /* still changing after the last decoding round */
#define WAF_A_TRUNC    0x20u  /* output truncated at cap */

/* Maximum percent/entity decoding rounds (double, triple encoding...). */
#define WAF_DECODE_ROUNDS 4

/* Normalise in[0..n) into out (at most cap bytes, NUL-terminated when
 * cap > 0, so the text is at most cap-1 bytes). Every transformation only
 * shrinks the text, so rounds run in place in out. Returns the length;
 * *anomalies (may be NULL) receives WAF_A_* bits. */
size_t waf_normalize(const char *in, size_t n, unsigned flags, char *out, size_t cap,
		     unsigned *anomalies);

/* ---- scratch (one per worker thread) -------------------------------- */
typedef struct waf_scratch waf_scratch;
#define WAF_VALUE_MAX_DEFAULT 65536
/* value_max: longest normalised value inspected (0 = default). NULL on OOM */
waf_scratch *waf_scratch_new(size_t value_max);
void waf_scratch_free(waf_scratch *s);

/* ---- one request ----------------------------------------------------- */
typedef struct waf_pair {
	const char *name;  size_t name_len;
	const char *value; size_t value_len;
} waf_pair;

enum waf_body_type { WAF_BODY_NONE = 0, WAF_BODY_FORM, WAF_BODY_JSON, WAF_BODY_RAW };

/* from a Content-Type value: form for application/x-www-form-urlencoded,
 * JSON for application/json and +json, RAW for text/...; NONE otherwise
 * (multipart and binary types are not inspected) */
enum waf_body_type waf_body_type_of(const char *ctype, size_t len);

/* All strings are raw (as on the wire) and need not be NUL-terminated;
 * unset parts are NULL/0. From the plugin API (plugin.h): path and query
 * from gw_req_path/gw_req_query (the raw request path is better when the
 * core keeps it: the normalised one has resolved "../" already, though
 * double-encoded traversal still shows), cookie/user_agent/referer from
 * gw_req_header, body with waf_body_type_of(Content-Type), truncated to the
 * configured size limit. */
typedef struct waf_input {
	const char *path;  size_t path_len;   /* request path; raw is best, the
					       * gwb-normalised one works too */
	const char *query; size_t query_len;  /* raw query without '?', split on '&' (not ';':
					       * most frameworks keep it in the value) */
	const waf_pair *args; size_t nargs;   /* more query-style args, already split */
	const char *cookie; size_t cookie_len;          /* Cookie header, split on ';' */
	const char *user_agent; size_t user_agent_len;
	const char *referer; size_t referer_len;
	const waf_pair *headers; size_t nheaders;       /* other headers to inspect */
	const char *body; size_t body_len;              /* up to the plugin's limit */
	enum waf_body_type body_type;
	waf_scratch *scratch;                           /* required */
} waf_input;

#define WAF_PART_MAX    96
#define WAF_EXCERPT_MAX 64

typedef struct waf_hit {
	unsigned cls;                   /* the class bit that fired */
	const char *class_name;         /* "sqli" ... (static) */
	const char *rule_id;            /* "sqli-tautology" ... (static, stable) */
	char part[WAF_PART_MAX];        /* "path", "arg:NAME", "header:User-Agent",
					 * "cookie:NAME", "body:NAME", "body"; a
					 * name that is itself the attack gives the
					 * same label (the excerpt shows which) */
	char excerpt[WAF_EXCERPT_MAX];  /* normalised text from the match on,
					 * non-printables as \xHH */
	char detail[24];                /* sqli: token fingerprint; else "" */
} waf_hit;

/* Inspect every part of the request with the enabled classes. Returns 0
 * when clean, else the class bit that fired (hit filled in). Parts are
 * visited path, args, cookies, user-agent, referer, headers, body; within
 * a part the classes are tried sqli, xss, traversal, scanner, protocol. */
unsigned waf_inspect(const waf_input *in, unsigned classes, waf_hit *hit);

/* ---- visiting the parts (custom rules) -------------------------------- */
#define WAF_IN_PATH    0x1u
#define WAF_IN_ARGS    0x2u   /* query args and pre-split args, names and values */
#define WAF_IN_HEADERS 0x4u   /* cookie pairs, user-agent, referer, extra headers */
#define WAF_IN_BODY    0x8u   /* form pairs, JSON keys and strings, raw text */
#define WAF_IN_ALL     0xfu

/* one part: text is normalised with `flags` (NUL-terminated, in scratch);
 * return non-zero to stop the walk (that value is returned by waf_foreach) */
typedef int (*waf_part_fn)(void *ctx, const char *part, const char *text, size_t len);
int waf_foreach(const waf_input *in, unsigned where, unsigned flags, waf_part_fn fn, void *ctx);

/* Custom rule: match the PCRE2 pattern (a pcre2_code_8 *) against every part
 * in `where`, decoded (percent, entities, whitespace) but case preserved.
 * md is a pcre2_match_data_8 * of the caller (per thread). Returns 1 and
 * fills hit (rule_id = name, cls = 0, class_name = "rule") on the first
 * match, 0 otherwise. */
int waf_rule_match(const waf_input *in, unsigned where, const void *code, void *md,
		   const char *name, waf_hit *hit);

/* ---- the detectors on one canonical (normalised, lowercased) value ----
 * Each returns a static rule id, or NULL when clean; *pos (may be NULL) is
 * the offset of the match in s. waf_sqli_check fills fp (may be NULL) with
 * the token fingerprint of the context that fired, "" when clean. Exposed
 * for the unit tests and the benchmark. */
const char *waf_sqli_check(const char *s, size_t n, size_t *pos, char *fp, size_t fpcap);
const char *waf_xss_check(const char *s, size_t n, size_t *pos);
const char *waf_traversal_check(const char *s, size_t n, size_t *pos);
const char *waf_scanner_ua(const char *s, size_t n, size_t *pos);
const char *waf_scanner_path(const char *s, size_t n, size_t *pos);

/* SQL token fingerprint of s read in context q (0 = as is, '\'' or '"' =
 * the value starts inside a string quoted with q): one letter per folded
 * token, see waf_sqli.c. Returns the number of tokens. */
int waf_sql_fingerprint(const char *s, size_t n, char q, char *out, size_t cap);

#endif /* GW_WAF_H */

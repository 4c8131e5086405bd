/*
 * refeval.h — the naive reference evaluator: the oracle of the differential
 * test (tests/unit/test_diff.c) and the "naive" baseline of
 * bench/route-bench.c. Test and bench code only; not part of libgwc.a.
 *
 * It walks the routes of a parsed ast_file in file order and evaluates each
 * match expression directly on the AST, sharing no code with gwb/ (its own
 * host lowercasing and port stripping, wildcard test, query and cookie
 * parsing, CIDR test; PCRE2 without JIT for regexes). It must stay simple
 * enough to be obviously right: no index, no shortcuts, no cleverness.
 *
 * Request semantics (kept in step with gwb_match.c; see refeval.c):
 *   host    lowercased; ":port" stripped from the first ':' ("[v6]:port"
 *           keeps the bracketed part); a trailing '.' is NOT removed.
 *   wildcard "*.sfx" matches a host that ends with ".sfx" and has at least
 *           one character before that dot (one or more labels: the host
 *           ".sfx" does not match).
 *   path    compared byte for byte (it is already decoded and normalised).
 *   regex   PCRE2, default options, unanchored search on the path.
 *   method  case-sensitive; the nine of GWB_METHOD_LIST, anything else is
 *           "other" and matches no `method` test.
 *   header  name case-insensitive, first header of that name, value
 *           compared byte for byte.
 *   query   split on '&'; each part "name[=value]"; name and value
 *           percent-decoded, '+' decoded as a space; the first part with
 *           that name counts; a part without '=' has the value "".
 *   cookie  the first "Cookie" header, split on ';', spaces/tabs around
 *           each pair and around '=' trimmed, "name=value" (a part without
 *           '=' is no cookie); first of that name counts; a value in
 *           double quotes is compared without them; no decoding.
 *   ip      family 4 or 6 must equal the CIDR's family (no v4-mapped v6).
 */
#ifndef GW_REFEVAL_H
#define GW_REFEVAL_H

#include <stddef.h>
#include <stdint.h>
#include "ast.h"

typedef struct refeval_hdr {
	const char *name, *value;        /* NUL-terminated */
} refeval_hdr;

typedef struct refeval_req {
	const char *method;              /* NUL-terminated */
	const char *host;                /* as sent, may carry :port; NULL = "" */
	const char *path;                /* decoded + normalised */
	const char *query;               /* raw, without '?'; NULL = none */
	const refeval_hdr *headers; size_t nheaders;
	int ip_family;                   /* 4 or 6; 0 = unknown */
	uint8_t ip[16];
} refeval_req;

/* Prepared evaluator: the regexes (compiled without JIT) and CIDRs of a
 * file, parsed once so that repeated evaluation costs only the walk. */
typedef struct refeval refeval;

/* NULL on failure with a reason in err (a regex or CIDR that does not
 * compile — which sema should have refused). f must outlive the result. */
refeval *refeval_new(const ast_file *f, char *err, size_t errlen);
void refeval_free(refeval *r);
/* number of the first route (0-based, routes only, file order) whose
 * match is true, or -1 */
int refeval_run(const refeval *r, const refeval_req *rq);
/* value of one expression of the prepared file */
int refeval_expr(const refeval *r, const ast_expr *e, const refeval_req *rq);

/* match the AE_PATH_RE node e of the prepared file against path: -1 when
 * it does not match, else the number of leading capture pairs PCRE2 set;
 * cap[0..2*GWB_MAX_CAPTURES) gets the offsets, (size_t)-1 for unset */
int refeval_regex_caps(const refeval *r, const ast_expr *e, const char *path,
                       size_t *cap);

/* one-shot convenience: refeval_new + refeval_run + refeval_free;
 * -2 if the file cannot be prepared */
int refeval_first(const ast_file *f, const refeval_req *rq);

#endif /* GW_REFEVAL_H */

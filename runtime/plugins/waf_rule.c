/*
 * waf_rule.c — custom rules (`waf rule "name" in=args regex "..."`): the
 * plugin compiles the pattern once per table with PCRE2; this matches it
 * against the same parts the detectors see, decoded but with case kept
 * (a rule can say (?i) itself).
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "waf.h"

void waf__fill_hit(waf_hit *h, const char *rule, const char *part, const char *s, size_t n,
		   size_t pos);

typedef struct rctx {
	const pcre2_code *code;
	pcre2_match_data *md;
	const char *name;
	waf_hit *hit;
} rctx;

static int rule_visit(void *vctx, const char *part, const char *text, size_t len)
{
	rctx *r = vctx;
	int rc = pcre2_match(r->code, (PCRE2_SPTR)text, len, 0, 0, r->md, NULL);
	if (rc < 0)
		return 0;  /* no match, or a match limit hit: not a match */
	if (r->hit) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
		waf__fill_hit(r->hit, r->name, part, text, len, ov[0] <= len ? ov[0] : 0);
	}
	return 1;
}

int waf_rule_match(const waf_input *in, unsigned where, const void *code, void *md,
		   const char *name, waf_hit *hit)
{
	if (!code || !md)
		return 0;
	rctx r = {code, md, name, hit};
	return waf_foreach(in, where, WAF_N_DEFAULT & ~WAF_N_LOWER, rule_visit, &r) ? 1 : 0;
}

/*
 * fuzz_waf.c — libFuzzer target for the WAF engine (runtime/plugins/waf_*).
 *
 * The input is split into request parts at the first bytes: byte 0 picks
 * the enabled classes and the body type, the rest is cut at 0x00 bytes
 * into path, query, cookie, user-agent, referer, one extra header and the
 * body (missing pieces stay unset). Every detector also runs alone on the
 * normalised whole input, as does waf_sql_fingerprint in its three
 * contexts, so the lexers see arbitrary bytes and not only what
 * waf_inspect's splitting lets through. A small scratch (value_max 512)
 * exercises truncation. Crashes, sanitizer reports and leaks are the
 * findings; the verdicts are not checked.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "waf.h"

static waf_scratch *small, *big;

static const char *piece(const uint8_t **p, const uint8_t *end, size_t *len)
{
	if (*p >= end) {
		*len = 0;
		return NULL;
	}
	const uint8_t *b = *p, *z = memchr(b, 0, (size_t)(end - b));
	if (!z)
		z = end;
	*len = (size_t)(z - b);
	*p = z < end ? z + 1 : end;
	return (const char *)b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char norm[4096];
	char fp[32];
	waf_hit hit;

	if (!small) {
		small = waf_scratch_new(512);
		big = waf_scratch_new(0);
		if (!small || !big)
			return 0;
	}
	if (size == 0)
		return 0;

	/* the detectors on their own, on the normalised input */
	unsigned anom = 0;
	size_t n = waf_normalize((const char *)data + 1, size - 1, WAF_N_DEFAULT | WAF_N_PLUS, norm,
				 sizeof norm, &anom);
	size_t pos;
	(void)waf_sqli_check(norm, n, &pos, fp, sizeof fp);
	(void)waf_xss_check(norm, n, &pos);
	(void)waf_traversal_check(norm, n, &pos);
	(void)waf_scanner_ua(norm, n, &pos);
	(void)waf_scanner_path(norm, n, &pos);
	(void)waf_sql_fingerprint(norm, n, 0, fp, sizeof fp);
	(void)waf_sql_fingerprint(norm, n, '\'', fp, sizeof fp);
	(void)waf_sql_fingerprint(norm, n, '"', fp, sizeof fp);
	(void)waf_normalize((const char *)data, size, WAF_N_DEFAULT | WAF_N_SQLCMT, norm, 64, &anom);

	/* a whole request */
	const uint8_t *p = data + 1, *end = data + size;
	waf_input in = {0};
	waf_pair hdr;
	in.scratch = (data[0] & 0x80) ? small : big;
	in.path = piece(&p, end, &in.path_len);
	in.query = piece(&p, end, &in.query_len);
	in.cookie = piece(&p, end, &in.cookie_len);
	in.user_agent = piece(&p, end, &in.user_agent_len);
	in.referer = piece(&p, end, &in.referer_len);
	hdr.name = "X-Test";
	hdr.name_len = 6;
	hdr.value = piece(&p, end, &hdr.value_len);
	if (hdr.value) {
		in.headers = &hdr;
		in.nheaders = 1;
	}
	in.body = piece(&p, end, &in.body_len);
	in.body_type = (enum waf_body_type)((data[0] >> 5) & 3);
	(void)waf_inspect(&in, data[0] & WAF_ALL, &hit);
	return 0;
}

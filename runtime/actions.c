/*
 * actions.c — the "core" plugin: the directives that need no plugin
 * machinery: rewrite (strip_prefix, regex), set_header / remove_header on
 * the request and the response, respond, redirect, and proxy (which only
 * records the upstream here; srv.c starts the transfer once the phases
 * have decided).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "core.h"

/* a path must start with '/': "strip_prefix /v1" on "/v1" leaves "/" */
static int set_path(gw_req *r, const char *p, size_t n)
{
	char *np = srv_alloc(r, n + 2);
	if (!np)
		return 500;
	size_t k = 0;
	if (n == 0 || p[0] != '/')
		np[k++] = '/';
	memcpy(np + k, p, n);
	k += n;
	np[k] = '\0';
	r->path = np;
	r->path_len = k;
	r->path_changed = 1;
	return GW_OK;
}

static int strip_prefix(gw_req *r, const uint32_t *insn)
{
	size_t n;
	const char *pre = gwb_str(r->t, insn[1], &n);
	if (n == 0 || r->path_len < n || memcmp(r->path, pre, n) != 0)
		return GW_OK;
	return set_path(r, r->path + n, r->path_len - n);
}

/* rewrite path regex RE TPL: on a match the path becomes the expansion of
 * TPL with RE's captures; a '?' in the result starts a new query string
 * (replacing the client's). No match: the path stays. */
static int rewrite_re(gw_req *r, const uint32_t *insn)
{
	const pcre2_code *re = gwb_regex_code(r->t, insn[1]);
	pcre2_match_data *md = r->w->md;
	int rc = pcre2_match(re, (PCRE2_SPTR)r->path, r->path_len, 0, 0, md, NULL);
	if (rc < 0)
		return GW_OK;
	gwb_match m;
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
	uint32_t novec = pcre2_get_ovector_count(md);
	if (rc == 0)
		rc = (int)novec;
	if (rc > GWB_MAX_CAPTURES)
		rc = GWB_MAX_CAPTURES;
	m.route = r->route;
	m.ncap = rc;
	for (int i = 0; i < GWB_MAX_CAPTURES; i++) {
		m.cap[2 * i] = i < rc && ov[2 * i] != PCRE2_UNSET ? ov[2 * i] : (size_t)~0;
		m.cap[2 * i + 1] = i < rc && ov[2 * i] != PCRE2_UNSET ? ov[2 * i + 1] : (size_t)~0;
	}
	size_t tn, len;
	const char *tpl = gwb_str(r->t, insn[2], &tn);
	const char *out = req_expand_with(r, tpl, tn, r->path, &m, &len);
	if (!out)
		return 500;
	const char *q = memchr(out, '?', len);
	if (q) {
		r->query = q + 1;
		r->query_len = len - (size_t)(q + 1 - out);
		r->has_query = 1;
		len = (size_t)(q - out);
	}
	return set_path(r, out, len);
}

static int set_hdr(gw_req *r, const uint32_t *insn, int resp)
{
	size_t vlen;
	const char *name = gwb_str(r->t, insn[1], NULL);
	const char *v = gw_req_expand(r, insn[2], &vlen);
	if (!v)
		return 500;
	int rc = resp ? gw_resp_set_header(r, name, v, vlen) : gw_req_set_header(r, name, v, vlen);
	return rc ? 500 : GW_OK;
}

static int respond(gw_req *r, const uint32_t *insn)
{
	size_t blen;
	const char *body = gw_req_expand(r, insn[2], &blen);
	if (!body)
		return 500;
	size_t clen;
	const char *ct = gwb_str(r->t, insn[3], &clen);
	r->kind = K_OWN;
	r->own_status = (int)insn[1];
	r->own_body = body;
	r->own_body_len = blen;
	r->own_ctype = clen ? ct : (blen ? "text/plain" : NULL);
	return GW_DONE;
}

/* a byte a capture may not carry into a Location as is: controls (CR LF
 * would split the header), space, non-ASCII, characters RFC 3986 never
 * allows in a URI, and '%' (the capture comes from the decoded path: a
 * client's "%25" must stay "%25", not become the start of an escape) */
static int loc_escape(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || strchr("\"%<>\\^`{|}", c) != NULL;
}

/* the route's captures percent-encoded, as nginx escapes captures in the
 * URI it builds for return/rewrite: an escaped copy of each capture ($0
 * too) into one arena buffer, with a match that points into it. Only $N:
 * ${...} variables and the template's literal text stay as written. */
static int escaped_captures(gw_req *r, gwb_match *em, const char **subject)
{
	static const char hex[] = "0123456789ABCDEF";
	const gwb_match *m = &r->m;
	size_t need = 0;
	*em = *m;
	for (int i = 0; i < m->ncap && i < GWB_MAX_CAPTURES; i++)
		if (m->cap[2 * i] != (size_t)~0 && m->cap[2 * i + 1] >= m->cap[2 * i])
			for (size_t k = m->cap[2 * i]; k < m->cap[2 * i + 1]; k++)
				need += loc_escape((unsigned char)r->match_path[k]) ? 3 : 1;
	char *buf = srv_alloc(r, need + 1);
	if (!buf)
		return -1;
	size_t o = 0;
	for (int i = 0; i < m->ncap && i < GWB_MAX_CAPTURES; i++) {
		if (m->cap[2 * i] == (size_t)~0 || m->cap[2 * i + 1] < m->cap[2 * i])
			continue;
		em->cap[2 * i] = o;
		for (size_t k = m->cap[2 * i]; k < m->cap[2 * i + 1]; k++) {
			unsigned char c = (unsigned char)r->match_path[k];
			if (loc_escape(c)) {
				buf[o++] = '%';
				buf[o++] = hex[c >> 4];
				buf[o++] = hex[c & 15];
			} else {
				buf[o++] = (char)c;
			}
		}
		em->cap[2 * i + 1] = o;
	}
	buf[o] = '\0';
	*subject = buf;
	return 0;
}

static int redirect(gw_req *r, const uint32_t *insn)
{
	size_t llen, tn;
	gwb_match em;
	const char *subject;
	if (escaped_captures(r, &em, &subject) != 0)
		return 500;
	const char *tpl = gwb_str(r->t, insn[2], &tn);
	const char *loc = req_expand_with(r, tpl, tn, subject, &em, &llen);
	if (!loc)
		return 500;
	for (size_t i = 0; i < llen; i++)    /* never split the header */
		if (loc[i] == '\r' || loc[i] == '\n')
			return 500;
	r->kind = K_OWN;
	r->own_status = (int)insn[1];
	r->own_location = loc;
	r->own_body = "";
	r->own_body_len = 0;
	return GW_DONE;
}

static int core_handler(gw_req *r, const uint32_t *insn, void *state)
{
	(void)state;
	switch (insn[0] & 0xff) {
	case GWB_OP_STRIP_PREFIX: return strip_prefix(r, insn);
	case GWB_OP_REWRITE_RE:   return rewrite_re(r, insn);
	case GWB_OP_SET_REQ_HDR:  return set_hdr(r, insn, 0);
	case GWB_OP_DEL_REQ_HDR:
		gw_req_del_header(r, gwb_str(r->t, insn[1], NULL));
		return GW_OK;
	case GWB_OP_SET_RESP_HDR: return set_hdr(r, insn, 1);
	case GWB_OP_DEL_RESP_HDR:
		gw_resp_del_header(r, gwb_str(r->t, insn[1], NULL));
		return GW_OK;
	case GWB_OP_RESPOND:      return respond(r, insn);
	case GWB_OP_REDIRECT:     return redirect(r, insn);
	case GWB_OP_PROXY:
		r->kind = K_PROXY;
		r->proxy_ups = insn[1];
		r->proxy_timeout_ms = insn[2];
		return GW_DONE;
	default:
		return GW_DECLINED;
	}
}

static const uint8_t core_ops[] = {
	GWB_OP_STRIP_PREFIX, GWB_OP_REWRITE_RE, GWB_OP_SET_REQ_HDR, GWB_OP_DEL_REQ_HDR,
	GWB_OP_SET_RESP_HDR, GWB_OP_DEL_RESP_HDR, GWB_OP_RESPOND, GWB_OP_REDIRECT,
	GWB_OP_PROXY,
};

const gw_plugin gw_plugin_core = {
	.name = "core",
	.ops = core_ops,
	.nops = sizeof core_ops,
	.handler = core_handler,
};

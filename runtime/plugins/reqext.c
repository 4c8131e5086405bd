/*
 * reqext.c — the request API that the content plugins added to plugin.h:
 * answering with a full response (cache hits, cors preflights), the
 * request's Content-Length and per-route body limit (body_limit), and the
 * response tap with the upstream head it exposes (cache fills). These
 * reach into gw_req / gw_proxy (core.h), so they sit next to the core
 * rather than in a plugin; gw_worker_post is in loop.c.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include "core.h"

void gw_req_respond(gw_req *r, int status, const char *body, size_t len)
{
	r->kind = K_OWN;
	r->own_status = status;
	r->own_body = body ? body : "";
	r->own_body_len = body ? len : 0;
	r->own_ctype = NULL;
	r->own_location = NULL;
	r->err_msg = NULL;
}

int64_t gw_req_content_length(const gw_req *r)
{
	return r->has_body ? r->content_length : 0;
}

void gw_req_set_body_limit(gw_req *r, uint64_t bytes)
{
	if (bytes && (!r->body_limit || bytes < r->body_limit))
		r->body_limit = bytes;
}

void gw_req_tap_response(gw_req *r, const gw_resp_tap *tap, void *arg)
{
	r->tap = tap;
	r->tap_arg = arg;
}

int gw_up_status(const gw_req *r)
{
	return r->px ? r->px->status : 0;
}

int64_t gw_up_content_length(const gw_req *r)
{
	return r->px ? r->px->clen : -1;
}

int gw_up_header(const gw_req *r, size_t i, const char **name, size_t *nlen,
                 const char **val, size_t *vlen)
{
	if (!r->px || i >= r->px->rh.n)
		return 0;
	const gw_hdr *h = &r->px->rh.v[i];
	*name = h->name;
	*nlen = h->nlen;
	*val = h->val;
	*vlen = h->vlen;
	return 1;
}

/*
 * gwc_util.c — inputs, requests and route actions shared by the gwc
 * subcommands.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compiler.h"
#include "gwc.h"

int gwc_read_file(const char *path, char **buf, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return -1;
	size_t cap = 8192, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (!b) {
			fclose(fp);
			errno = ENOMEM;
			return -1;
		}
		n += fread(b + n, 1, cap - n - 1, fp);
		if (n < cap - 1)
			break;
		cap *= 2;
		char *nb = realloc(b, cap);
		if (!nb)
			free(b);
		b = nb;
	}
	int bad = ferror(fp);
	fclose(fp);
	if (bad) {
		free(b);
		errno = EIO;
		return -1;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int gwc_open_table(const char *path, gwb_table **out)
{
	char *buf;
	size_t len;
	char err[256];
	*out = NULL;
	if (gwc_read_file(path, &buf, &len) < 0) {
		fprintf(stderr, "gwc: cannot read '%s': %s\n", path, strerror(errno));
		return GWC_EUSAGE;
	}
	if (len >= 4 && memcmp(buf, GWB_MAGIC, 4) == 0) {
		*out = gwb_load_mem(buf, len, err, sizeof err);
		free(buf);
		if (!*out) {
			fprintf(stderr, "gwc: %s: %s\n", path, err);
			return GWC_EINPUT;
		}
		return GWC_OK;
	}
	free(buf);
	/* rules: compile in memory */
	diag_ctx d;
	ast_file f;
	diag_init(&d);
	memset(&f, 0, sizeof f);
	parse_file(path, &f, &d);
	d.sources = f.sources;
	d.nsources = f.nsources;
	uint8_t *tb = NULL;
	size_t tl = 0;
	if (d.nerrors == 0)
		sema_check(&f, &d);
	if (d.nerrors == 0)
		emit_table(&f, &d, &tb, &tl);
	diag_sort(&d);
	diag_print_text(&d, stderr);
	int rc = GWC_OK;
	if (d.nerrors || !tb) {
		rc = GWC_EINPUT;
	} else {
		*out = gwb_load_mem(tb, tl, err, sizeof err);
		if (!*out) {
			/* the emitter wrote something the verifier refuses: a bug */
			fprintf(stderr, "gwc: internal error: the compiled table does not load: %s\n", err);
			rc = GWC_EINPUT;
		}
	}
	free(tb);
	ast_free(&f);
	diag_fini(&d);
	return rc;
}

/* ------------------------------------------------------------ requests */

static int hdr_lookup(void *ctx, const char *name, const char **v, size_t *vlen)
{
	const gwc_req *r = ctx;
	for (size_t i = 0; i < r->nh; i++)
		if (strcasecmp(r->h[i].name, name) == 0) {
			*v = r->h[i].value;
			*vlen = strlen(r->h[i].value);
			return 1;
		}
	return 0;
}

int gwc_req_init(gwc_req *r, const char *method, const char *host, const char *path,
                 const char *query, const gwc_hdr *h, size_t nh, const char *ip,
                 char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->method = method && *method ? method : "GET";
	r->h = h;
	r->nh = nh;
	if (!host)
		for (size_t i = 0; i < nh; i++)
			if (strcasecmp(h[i].name, "Host") == 0)
				host = h[i].value;
	r->host = host ? host : "";
	/* split path?query */
	size_t pl = strlen(path);
	r->owned = malloc(pl + 2 + (query ? strlen(query) : 0));
	if (!r->owned) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *q = strchr(path, '?');
	size_t rawl = q ? (size_t)(q - path) : pl;
	memcpy(r->owned, path, rawl);
	r->owned[rawl] = '\0';
	r->rawpath = r->owned;
	char *qs = r->owned + rawl + 1;
	strcpy(qs, q ? q + 1 : query ? query : "");
	r->query = qs;
	/* normalise like gwd */
	r->path = malloc(rawl + 16);
	if (!r->path || gwb_path_normalize(r->rawpath, rawl, r->path, rawl + 16, &r->plen) < 0) {
		snprintf(err, errlen, "path '%s' is refused by gwd (400): it must start with '/' and "
		         "have valid %%-escapes, no %%00 and no '..' above the root", r->rawpath);
		gwc_req_fini(r);
		return -1;
	}
	r->path[r->plen] = '\0';
	/* ${host}: lowercased, port stripped */
	size_t hl = strlen(r->host);
	r->hostlc = malloc(hl + 1);
	r->uri = malloc(rawl + strlen(qs) + 2);
	if (!r->hostlc || !r->uri) {
		snprintf(err, errlen, "out of memory");
		gwc_req_fini(r);
		return -1;
	}
	const char *end = r->host + hl;
	if (r->host[0] == '[') {
		const char *rb = strchr(r->host, ']');
		if (rb)
			end = rb + 1;
	} else {
		const char *c = strchr(r->host, ':');
		if (c)
			end = c;
	}
	r->hostlclen = (size_t)(end - r->host);
	for (size_t i = 0; i < r->hostlclen; i++)
		r->hostlc[i] = (char)((r->host[i] >= 'A' && r->host[i] <= 'Z') ? r->host[i] | 0x20 : r->host[i]);
	r->hostlc[r->hostlclen] = '\0';
	sprintf(r->uri, "%s%s%s", r->rawpath, *qs ? "?" : "", qs);

	r->ip_text = ip ? ip : "";
	if (ip && *ip) {
		if (inet_pton(AF_INET, ip, r->rq.ip) == 1) {
			r->rq.ip_family = 4;
		} else if (inet_pton(AF_INET6, ip, r->rq.ip) == 1) {
			r->rq.ip_family = 6;
		} else {
			snprintf(err, errlen, "client_ip '%s' is not an IPv4 or IPv6 address", ip);
			gwc_req_fini(r);
			return -1;
		}
	}
	r->rq.method = r->method;
	r->rq.method_len = strlen(r->method);
	r->rq.host = r->host;
	r->rq.host_len = strlen(r->host);
	r->rq.path = r->path;
	r->rq.path_len = r->plen;
	r->rq.query = r->query;
	r->rq.query_len = strlen(r->query);
	r->rq.header = hdr_lookup;
	r->rq.ctx = r;
	return 0;
}

void gwc_req_fini(gwc_req *r)
{
	free(r->owned);
	free(r->path);
	free(r->hostlc);
	free(r->uri);
	r->owned = r->path = r->hostlc = r->uri = NULL;
}

/* ----------------------------------------------------------- templates */

static int tpl_var(void *ctx, enum gwb_tplvar var, const char *name, size_t namelen,
                   const char **v, size_t *vlen)
{
	const gwc_req *r = ctx;
	switch (var) {
	case GWB_V_HOST: *v = r->hostlc; *vlen = r->hostlclen; return 1;
	case GWB_V_PATH: *v = r->path; *vlen = r->plen; return 1;
	case GWB_V_QUERY: *v = r->query; *vlen = strlen(r->query); return 1;
	case GWB_V_METHOD: *v = r->method; *vlen = strlen(r->method); return 1;
	case GWB_V_SCHEME: *v = "http"; *vlen = 4; return 1;
	case GWB_V_URI: *v = r->uri; *vlen = strlen(r->uri); return 1;
	case GWB_V_CLIENT_IP: *v = r->ip_text; *vlen = strlen(r->ip_text); return 1;
	case GWB_V_REQUEST_ID: *v = "gwc-test"; *vlen = 8; return 1;
	case GWB_V_HEADER: {
		char nm[256];
		if (namelen >= sizeof nm)
			return 0;
		memcpy(nm, name, namelen);
		nm[namelen] = '\0';
		return hdr_lookup((void *)r, nm, v, vlen);
	}
	default:
		return 0;
	}
}

char *gwc_expand(const gwc_req *r, const gwb_match *m, const char *tpl, size_t n)
{
	size_t need = gwb_tpl_expand(tpl, n, r->path, m, tpl_var, (void *)r, NULL, 0);
	char *out = malloc(need + 1);
	if (!out) {
		perror("gwc");
		abort();
	}
	gwb_tpl_expand(tpl, n, r->path, m, tpl_var, (void *)r, out, need + 1);
	return out;
}

/* -------------------------------------------------------------- routes */

void gwc_route_action(const gwb_table *t, uint32_t route, gwc_action *a)
{
	memset(a, 0, sizeof *a);
	a->op = GWB_OP_INVALID;
	const gwb_route *rt = gwb_route_at(t, route);
	const uint32_t *code = gwb_code(t);
	uint32_t pc = rt->phase_pc[GWB_PH_CONTENT], end = rt->phase_pc[GWB_PH_CONTENT + 1];
	while (pc < end) {
		uint32_t op = code[pc];
		const gwb_opinfo *oi = gwb_opinfo_get(op);
		if (!oi)
			return;
		if (op == GWB_OP_PROXY) {
			a->op = GWB_OP_PROXY;
			a->upstream = gwb_str(t, gwb_upstream_at(t, code[pc + 1])->name, NULL);
		} else if (op == GWB_OP_RESPOND || op == GWB_OP_REDIRECT) {
			a->op = (enum gwb_op)op;
			a->status = code[pc + 1];
			a->tpl = gwb_str(t, code[pc + 2], &a->tpllen);
		}
		pc += 1 + oi->nargs;
	}
}

/* an allow/deny list holds the client: as runtime/plugins/ipset.c, an
 * IPv6 CIDR inside ::ffff:0:0/96 also holds the IPv4 client it maps */
static int acc_holds(const gwb_table *t, uint32_t set, const gwb_request *rq)
{
	if (gwb_cidrset_contains(t, set, rq->ip_family, rq->ip))
		return 1;
	if (rq->ip_family != 4)
		return 0;
	uint8_t v6[16] = { [10] = 0xff, [11] = 0xff };
	memcpy(v6 + 12, rq->ip, 4);
	return gwb_cidrset_contains(t, set, 6, v6);
}

int gwc_access_status(const gwb_table *t, uint32_t route, const gwb_request *rq)
{
	if (rq->ip_family == 0)
		return 0;
	const gwb_route *rt = gwb_route_at(t, route);
	const uint32_t *code = gwb_code(t);
	uint32_t pc = rt->phase_pc[GWB_PH_ACCESS], end = rt->phase_pc[GWB_PH_ACCESS + 1];
	while (pc < end) {
		uint32_t op = code[pc];
		const gwb_opinfo *oi = gwb_opinfo_get(op);
		if (!oi)
			return 0;
		if ((op == GWB_OP_ALLOW || op == GWB_OP_DENY) && acc_holds(t, code[pc + 1], rq))
			return op == GWB_OP_DENY ? 403 : 0;   /* the first that holds it decides */
		pc += 1 + oi->nargs;
	}
	return 0;
}

const char *gwc_route_name(const gwb_table *t, uint32_t route)
{
	return gwb_str(t, gwb_route_at(t, route)->name, NULL);
}

void gwc_route_where(const gwb_table *t, uint32_t route, char *buf, size_t n)
{
	const gwb_debug *d = gwb_debug_at(t, route);
	if (!d) {
		snprintf(buf, n, "?");
		return;
	}
	snprintf(buf, n, "%s:%u:%u", gwb_str(t, d->file, NULL), d->line, d->col);
}

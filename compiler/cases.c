/*
 * cases.c — read CASES.yaml for `gwc test` with libyaml's document API.
 * Every mistake names FILE:LINE:COL; unknown keys get a "did you mean".
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cases.h"
#include "diag.h"

typedef struct rd {
	const char *path;
	yaml_document_t doc;
	char *err; size_t errlen;
	int bad;
} rd;

static void rerr(rd *r, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void rerr(rd *r, const yaml_node_t *n, const char *fmt, ...)
{
	if (r->bad)
		return; /* the first problem is the one to fix */
	r->bad = 1;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n)
		snprintf(r->err, r->errlen, "%s:%zu:%zu: %s", r->path, n->start_mark.line + 1,
		         n->start_mark.column + 1, msg);
	else
		snprintf(r->err, r->errlen, "%s: %s", r->path, msg);
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		perror("gwc");
		abort();
	}
	return p;
}

static const char *scalar(rd *r, yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_SCALAR_NODE) {
		rerr(r, n, "%s must be a plain value", what);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

/* a plain YAML null: null, Null, NULL, ~ or an empty value */
static int yaml_null(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

static void set_str(rd *r, char **dst, yaml_node_t *n, const char *what)
{
	const char *s = scalar(r, n, what);
	if (!s)
		return;
	free(*dst);
	*dst = xstrdup(s);
}

/* key lookup with "did you mean" */
static int which(rd *r, yaml_node_t *k, const char *const *keys, size_t nk, const char *in)
{
	const char *s = scalar(r, k, "a key");
	if (!s)
		return -1;
	for (size_t i = 0; i < nk; i++)
		if (strcmp(s, keys[i]) == 0)
			return (int)i;
	const char *sug = diag_suggest(s, keys, nk);
	if (sug)
		rerr(r, k, "unknown key '%s' in %s; did you mean '%s'?", s, in, sug);
	else
		rerr(r, k, "unknown key '%s' in %s", s, in);
	return -1;
}

static void read_headers(rd *r, gwc_case *c, yaml_node_t *m)
{
	if (m->type != YAML_MAPPING_NODE) {
		rerr(r, m, "headers must be a mapping {Name: value, ...}");
		return;
	}
	size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
	c->headers = calloc(n ? n : 1, sizeof *c->headers);
	if (!c->headers) {
		perror("gwc");
		abort();
	}
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		const char *k = scalar(r, yaml_document_get_node(&r->doc, p->key), "a header name");
		const char *v = scalar(r, yaml_document_get_node(&r->doc, p->value), "a header value");
		if (!k || !v)
			return;
		c->headers[c->nheaders].name = xstrdup(k);
		c->headers[c->nheaders].value = xstrdup(v);
		c->nheaders++;
	}
}

static void read_request(rd *r, gwc_case *c, yaml_node_t *m)
{
	static const char *const keys[] = { "method", "host", "path", "query", "headers", "client_ip" };
	if (m->type != YAML_MAPPING_NODE) {
		rerr(r, m, "request must be a mapping {method: GET, host: ..., path: ...}");
		return;
	}
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&r->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&r->doc, p->value);
		switch (which(r, k, keys, 6, "request")) {
		case 0: set_str(r, &c->method, v, "method"); break;
		case 1: set_str(r, &c->host, v, "host"); break;
		case 2: set_str(r, &c->path, v, "path"); break;
		case 3: set_str(r, &c->query, v, "query"); break;
		case 4: read_headers(r, c, v); break;
		case 5: set_str(r, &c->client_ip, v, "client_ip"); break;
		default: return;
		}
	}
	if (!c->path && !r->bad)
		rerr(r, m, "request needs a path");
	if (c->path && c->query && strchr(c->path, '?') && !r->bad)
		rerr(r, m, "give the query either in path (after '?') or as query:, not both");
}

static void read_expect(rd *r, gwc_case *c, yaml_node_t *m)
{
	static const char *const keys[] = { "route", "upstream", "status", "location" };
	if (m->type != YAML_MAPPING_NODE) {
		rerr(r, m, "expect must be a mapping {route: NAME, upstream: NAME, status: N, location: URL}");
		return;
	}
	int any = 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&r->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&r->doc, p->value);
		any = 1;
		switch (which(r, k, keys, 4, "expect")) {
		case 0:
			/* `route: null` (or ~, or nothing) says "no route", as none does */
			if (v && v->type == YAML_SCALAR_NODE && yaml_null(v)) {
				free(c->route);
				c->route = xstrdup("none");
				break;
			}
			set_str(r, &c->route, v, "route");
			break;
		case 1: set_str(r, &c->upstream, v, "upstream"); break;
		case 2: {
			const char *s = scalar(r, v, "status");
			char *end;
			long st = s ? strtol(s, &end, 10) : 0;
			if (s && (*end || st < 100 || st > 599))
				rerr(r, v, "status must be a number 100..599, got '%s'", s);
			c->status = (int)st;
			break;
		}
		case 3: set_str(r, &c->location, v, "location"); break;
		default: return;
		}
	}
	if (!any)
		rerr(r, m, "expect is empty: give route, upstream, status or location");
}

static void read_case(rd *r, gwc_case *c, yaml_node_t *m)
{
	static const char *const keys[] = { "name", "request", "expect" };
	c->line = (unsigned)m->start_mark.line + 1;
	if (m->type != YAML_MAPPING_NODE) {
		rerr(r, m, "a case must be a mapping {name: ..., request: {...}, expect: {...}}");
		return;
	}
	int have_req = 0, have_exp = 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&r->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&r->doc, p->value);
		switch (which(r, k, keys, 3, "a case")) {
		case 0: set_str(r, &c->name, v, "name"); break;
		case 1: have_req = 1; read_request(r, c, v); break;
		case 2: have_exp = 1; read_expect(r, c, v); break;
		default: return;
		}
	}
	if (!have_req)
		rerr(r, m, "case has no request");
	else if (!have_exp)
		rerr(r, m, "case has no expect");
	if (!c->method)
		c->method = xstrdup("GET");
}

int cases_load(const char *path, gwc_case **out, size_t *n, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		return -2;
	}
	rd r;
	memset(&r, 0, sizeof r);
	r.path = path;
	r.err = err;
	r.errlen = errlen;
	yaml_parser_t ps;
	yaml_parser_initialize(&ps);
	yaml_parser_set_input_file(&ps, fp);
	if (!yaml_parser_load(&ps, &r.doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", path, ps.problem_mark.line + 1,
		         ps.problem_mark.column + 1, ps.problem ? ps.problem : "invalid YAML");
		yaml_parser_delete(&ps);
		fclose(fp);
		return -1;
	}
	yaml_parser_delete(&ps);
	fclose(fp);
	yaml_node_t *root = yaml_document_get_root_node(&r.doc);
	gwc_case *v = NULL;
	size_t k = 0;
	if (root && root->type != YAML_SEQUENCE_NODE) {
		rerr(&r, root, "CASES.yaml must be a list of cases (- name: ...)");
	} else if (root) {
		size_t cnt = (size_t)(root->data.sequence.items.top - root->data.sequence.items.start);
		v = calloc(cnt ? cnt : 1, sizeof *v);
		if (!v) {
			perror("gwc");
			abort();
		}
		for (yaml_node_item_t *it = root->data.sequence.items.start;
		     it < root->data.sequence.items.top && !r.bad; it++)
			read_case(&r, &v[k++], yaml_document_get_node(&r.doc, *it));
	}
	yaml_document_delete(&r.doc);
	if (r.bad) {
		cases_free(v, k);
		return -1;
	}
	*out = v;
	*n = k;
	return 0;
}

void cases_free(gwc_case *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		gwc_case *c = &v[i];
		free(c->name); free(c->method); free(c->host); free(c->path);
		free(c->query); free(c->client_ip); free(c->route); free(c->upstream);
		free(c->location);
		for (size_t j = 0; j < c->nheaders; j++) {
			free(c->headers[j].name);
			free(c->headers[j].value);
		}
		free(c->headers);
	}
	free(v);
}

/*
 * gwc.h — what the gwc subcommands (gwc.c, gwc_test.c, gwc_explain.c)
 * share: reading inputs, building a request the way gwd would, and what a
 * route does (for test expectations and explain).
 */
#ifndef GW_GWC_H
#define GW_GWC_H

#include <stddef.h>
#include <stdint.h>
#include "cases.h"
#include "gwb.h"

/* exit codes of interfaces.md */
enum { GWC_OK = 0, GWC_EINPUT = 1, GWC_EUSAGE = 2 };

/* whole file into a malloc'ed, NUL-terminated buffer; -1 with errno */
int gwc_read_file(const char *path, char **buf, size_t *len);

/* RULES.gwr (compiled in memory; diagnostics to stderr) or TABLE.gwb
 * (recognised by its magic). Returns GWC_OK with *out, or an exit code. */
int gwc_open_table(const char *path, gwb_table **out);

/* a request as gwd would see it */
typedef struct gwc_req {
	const char *method;
	const char *host;             /* as sent (may carry :port) */
	char *path; size_t plen;      /* normalised */
	const char *rawpath;          /* as given, without the query */
	const char *query;            /* without '?', "" when none */
	const gwc_hdr *h; size_t nh;
	const char *ip_text;          /* "" when unknown */
	char *hostlc; size_t hostlclen; /* ${host}: lowercased, port stripped */
	char *uri;                    /* ${uri}: rawpath ["?" query] */
	gwb_request rq;
	char *owned;                  /* rawpath/query storage */
} gwc_req;

/* 0, or -1 with a reason (bad path, bad client_ip) */
int gwc_req_init(gwc_req *r, const char *method, const char *host, const char *path,
                 const char *query, const gwc_hdr *h, size_t nh, const char *ip,
                 char *err, size_t errlen);
void gwc_req_fini(gwc_req *r);

/* the content action of a route */
typedef struct gwc_action {
	enum gwb_op op;               /* PROXY, RESPOND, REDIRECT (GWB_OP_INVALID: none) */
	const char *upstream;         /* PROXY */
	uint32_t status;              /* RESPOND, REDIRECT */
	const char *tpl; size_t tpllen; /* RESPOND body, REDIRECT location */
} gwc_action;
void gwc_route_action(const gwb_table *t, uint32_t route, gwc_action *a);

/* 403 if the route's allow/deny directives refuse the request's client
 * (first that holds it decides, as gwd); 0 if they let it through or the
 * request has no client_ip */
int gwc_access_status(const gwb_table *t, uint32_t route, const gwb_request *rq);

/* expand a template for a matched request (malloc'ed) */
char *gwc_expand(const gwc_req *r, const gwb_match *m, const char *tpl, size_t n);

const char *gwc_route_name(const gwb_table *t, uint32_t route);
/* "file:line:col" of a route */
void gwc_route_where(const gwb_table *t, uint32_t route, char *buf, size_t n);

int gwc_cmd_test(int argc, char **argv);
int gwc_cmd_explain(int argc, char **argv);

#endif /* GW_GWC_H */

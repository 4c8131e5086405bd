/*
 * gwc_explain.c — `gwc explain RULES.gwr|TABLE.gwb METHOD URL
 * [-H 'Name: value']... [--ip ADDR]`: walk the routes in file order as the
 * first-match semantics define, and for every route before the winner say
 * which condition failed first (from the match program's trace). The
 * indexed lookup gwd uses is run too and must agree.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwc.h"

static int usage(const char *msg)
{
	fprintf(stderr, "gwc: %s\nusage: gwc explain RULES.gwr|TABLE.gwb METHOD URL "
	        "[-H 'Name: value']... [--ip ADDR]\n", msg);
	return GWC_EUSAGE;
}

typedef struct trace {
	uint32_t first_false; int have_false;
	uint32_t last; int last_result; int any;
} trace;

static void on_test(void *ctx, uint32_t pc, int result)
{
	trace *t = ctx;
	if (!result && !t->have_false) {
		t->first_false = pc;
		t->have_false = 1;
	}
	t->last = pc;
	t->last_result = result;
	t->any = 1;
}

int gwc_cmd_explain(int argc, char **argv)
{
	const char *pos[3] = { NULL, NULL, NULL };
	int np = 0;
	const char *ip = NULL;
	gwc_hdr *h = calloc((size_t)argc + 1, sizeof *h);
	size_t nh = 0;
	int rc = GWC_EUSAGE;
	if (!h)
		return GWC_EUSAGE;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-H") == 0 || strcmp(a, "--header") == 0 || strncmp(a, "-H", 2) == 0) {
			const char *v = a[1] == 'H' && a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
			const char *colon = v ? strchr(v, ':') : NULL;
			if (!colon || colon == v) {
				rc = usage("-H takes 'Name: value'");
				goto out;
			}
			h[nh].name = strndup(v, (size_t)(colon - v));
			const char *val = colon + 1;
			while (*val == ' ' || *val == '\t')
				val++;
			h[nh].value = strdup(val);
			nh++;
		} else if (strcmp(a, "--ip") == 0) {
			if (++i >= argc) {
				rc = usage("--ip needs an address");
				goto out;
			}
			ip = argv[i];
		} else if (strncmp(a, "--ip=", 5) == 0) {
			ip = a + 5;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "gwc: explain: unknown option '%s'\n", a);
			goto out;
		} else if (np < 3) {
			pos[np++] = a;
		} else {
			rc = usage("too many arguments");
			goto out;
		}
	}
	if (np != 3) {
		rc = usage("explain needs a rules (or table) file, a method and a URL");
		goto out;
	}
	/* URL: http[s]://host/path?query or /path?query (host from -H Host) */
	const char *url = pos[2], *host = NULL, *path = url;
	char *hostbuf = NULL, *pathbuf = NULL;
	const char *sch = strstr(url, "://");
	if (sch) {
		const char *hs = sch + 3;
		size_t hl = strcspn(hs, "/?#");
		hostbuf = strndup(hs, hl);
		host = hostbuf;
		path = hs + hl;
		if (*path != '/') {
			/* "http://host" or "http://host?q": the path is "/" */
			pathbuf = malloc(strlen(path) + 2);
			if (!pathbuf)
				goto out_host;
			sprintf(pathbuf, "/%s", path);
			path = pathbuf;
		}
	}
	gwb_table *t;
	rc = gwc_open_table(pos[0], &t);
	if (rc != GWC_OK)
		goto out_host;
	char err[512];
	gwc_req r;
	if (gwc_req_init(&r, pos[1], host, path, NULL, h, nh, ip, err, sizeof err) < 0) {
		fprintf(stderr, "gwc: %s\n", err);
		rc = GWC_EINPUT;
		gwb_free(t);
		goto out_host;
	}
	gwb_scratch *scr = gwb_scratch_new();
	printf("request: %s %s%s%s%s\n", r.method, *r.host ? r.host : "(no host)", r.uri,
	       *r.ip_text ? " from " : "", r.ip_text);
	if (r.plen != strlen(r.rawpath) || memcmp(r.path, r.rawpath, r.plen) != 0)
		printf("path after normalisation: %s\n", r.path);
	uint32_t nr = gwb_nroutes(t), won = GWB_NONE;
	gwb_match m;
	char where[512], insn[512];
	for (uint32_t i = 0; i < nr && won == GWB_NONE; i++) {
		trace tr = { 0, 0, 0, 0, 0 };
		gwb_match mi;
		int ok = gwb_eval_route(t, i, &r.rq, &mi, scr, on_test, &tr);
		gwc_route_where(t, i, where, sizeof where);
		if (ok) {
			won = i;
			m = mi;
			printf("  route %s (%s): matches\n", gwc_route_name(t, i), where);
			break;
		}
		if (tr.have_false) {
			gwb_disasm_insn(t, tr.first_false, insn, sizeof insn);
			printf("  route %s (%s): no, %s is false\n", gwc_route_name(t, i), where, insn);
		} else if (tr.any) {
			/* every test was true: a `not` turned the result around */
			gwb_disasm_insn(t, tr.last, insn, sizeof insn);
			printf("  route %s (%s): no, %s is true under 'not'\n", gwc_route_name(t, i),
			       where, insn);
		} else {
			printf("  route %s (%s): no\n", gwc_route_name(t, i), where);
		}
	}
	gwb_match mx;
	uint32_t idx = gwb_match_request(t, &r.rq, &mx, scr);
	if (won == GWB_NONE) {
		printf("=> no route matches: gwd answers 404\n");
	} else {
		gwc_action a;
		gwc_route_action(t, won, &a);
		uint32_t later = nr - won - 1;
		if (gwc_access_status(t, won, &r.rq) == 403) {
			printf("=> route %s: refused 403 by its allow/deny for %s\n", gwc_route_name(t, won),
			       r.ip_text);
		} else if (a.op == GWB_OP_PROXY) {
			printf("=> route %s: proxy to upstream %s\n", gwc_route_name(t, won), a.upstream);
		} else if (a.op == GWB_OP_REDIRECT) {
			char *loc = gwc_expand(&r, &m, a.tpl, a.tpllen);
			printf("=> route %s: redirect %u to %s\n", gwc_route_name(t, won), a.status, loc);
			free(loc);
		} else if (a.op == GWB_OP_RESPOND) {
			printf("=> route %s: respond %u\n", gwc_route_name(t, won), a.status);
		} else {
			printf("=> route %s\n", gwc_route_name(t, won));
		}
		if (later)
			printf("   (%u later route%s not tried)\n", later, later == 1 ? "" : "s");
	}
	rc = GWC_OK;
	if (idx != won) {
		fprintf(stderr, "gwc: internal error: the indexed lookup chose %s%s but file order "
		        "chose %s%s\n", idx == GWB_NONE ? "no route" : "route ",
		        idx == GWB_NONE ? "" : gwc_route_name(t, idx),
		        won == GWB_NONE ? "no route" : "route ",
		        won == GWB_NONE ? "" : gwc_route_name(t, won));
		rc = GWC_EINPUT;
	}
	gwb_scratch_free(scr);
	gwc_req_fini(&r);
	gwb_free(t);
out_host:
	free(hostbuf);
	free(pathbuf);
out:
	for (size_t i = 0; i < nh; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
	return rc;
}

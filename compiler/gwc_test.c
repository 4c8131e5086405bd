/*
 * gwc_test.c — `gwc test RULES.gwr|TABLE.gwb CASES.yaml [--coverage]
 * [--min-coverage=N]`: run each case's request through the matcher (the
 * index, as gwd does) and compare with what it expects.
 *
 *   route      the matched route's name; `none` = no route (gwd's 404)
 *   upstream   the upstream of the route's proxy action
 *   status     respond/redirect status of the route, 404 when none matches
 *   location   the redirect target, expanded with the request and captures
 *
 * Routing only: access directives (allow/deny, auth, rate limits, waf) are
 * not evaluated, so a status is the one the route's action would send.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwc.h"

static int usage(const char *msg)
{
	fprintf(stderr, "gwc: %s\nusage: gwc test RULES.gwr|TABLE.gwb CASES.yaml [--coverage] "
	        "[--min-coverage=N]\n", msg);
	return GWC_EUSAGE;
}

int gwc_cmd_test(int argc, char **argv)
{
	const char *files[2] = { NULL, NULL };
	int nf = 0, coverage = 0;
	double min_cov = -1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--coverage") == 0) {
			coverage = 1;
		} else if (strncmp(a, "--min-coverage=", 15) == 0 || strcmp(a, "--min-coverage") == 0) {
			const char *v = a[14] == '=' ? a + 15 : (++i < argc ? argv[i] : NULL);
			char *end;
			if (!v)
				return usage("--min-coverage needs a percentage");
			min_cov = strtod(v, &end);
			if (end == v || *end || min_cov < 0 || min_cov > 100)
				return usage("--min-coverage takes a percentage 0..100");
			coverage = 1;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "gwc: test: unknown option '%s'\n", a);
			return GWC_EUSAGE;
		} else if (nf < 2) {
			files[nf++] = a;
		} else {
			return usage("too many files");
		}
	}
	if (nf != 2)
		return usage("test needs a rules (or table) file and a CASES.yaml");

	char err[1024];
	gwc_case *cs;
	size_t ncs;
	int lr = cases_load(files[1], &cs, &ncs, err, sizeof err);
	if (lr < 0) {
		fprintf(stderr, "gwc: %s\n", err);
		/* a file we cannot open is an I/O error; a bad one is bad input */
		return lr == -2 ? GWC_EUSAGE : GWC_EINPUT;
	}
	gwb_table *t;
	int rc = gwc_open_table(files[0], &t);
	if (rc != GWC_OK) {
		cases_free(cs, ncs);
		return rc;
	}
	gwb_scratch *scr = gwb_scratch_new();
	uint32_t nr = gwb_nroutes(t);
	unsigned char *hit = calloc(nr ? nr : 1, 1);
	size_t pass = 0, fail = 0;
	for (size_t i = 0; i < ncs; i++) {
		const gwc_case *c = &cs[i];
		char label[512];
		if (c->name)
			snprintf(label, sizeof label, "%s", c->name);
		else
			snprintf(label, sizeof label, "case %zu", i + 1);
		gwc_req r;
		if (gwc_req_init(&r, c->method, c->host, c->path, c->query, c->headers, c->nheaders,
		                 c->client_ip, err, sizeof err) < 0) {
			printf("FAIL: %s (%s:%u)\n  %s\n", label, files[1], c->line, err);
			fail++;
			continue;
		}
		gwb_match m;
		uint32_t rt = gwb_match_request(t, &r.rq, &m, scr);
		if (rt != GWB_NONE && rt < nr)
			hit[rt] = 1;
		gwc_action act = { GWB_OP_INVALID, NULL, 0, NULL, 0 };
		if (rt != GWB_NONE)
			gwc_route_action(t, rt, &act);
		const char *got_route = rt == GWB_NONE ? "none" : gwc_route_name(t, rt);
		/* allow/deny is decided by client_ip alone, so it is evaluated;
		 * other access directives (auth, limits, waf) are not */
		int denied = rt == GWB_NONE ? 0 : gwc_access_status(t, rt, &r.rq);
		char *loc = NULL;
		if (act.op == GWB_OP_REDIRECT && !denied)
			loc = gwc_expand(&r, &m, act.tpl, act.tpllen);
		int got_status = rt == GWB_NONE ? 404 : denied ? denied :
		                 act.op == GWB_OP_RESPOND || act.op == GWB_OP_REDIRECT ? (int)act.status : 0;

		char why[4][600];
		int nwhy = 0;
		if (c->route && strcmp(c->route, got_route) != 0)
			snprintf(why[nwhy++], sizeof why[0], "route:    expected %s, got %s", c->route,
			         got_route);
		if (c->upstream) {
			const char *gu = act.op == GWB_OP_PROXY ? act.upstream : NULL;
			if (!gu || strcmp(gu, c->upstream) != 0)
				snprintf(why[nwhy++], sizeof why[0], "upstream: expected %s, got %s", c->upstream,
				         gu ? gu : act.op == GWB_OP_INVALID ? "(no route)" :
				         act.op == GWB_OP_RESPOND ? "(the route responds itself)" :
				         "(the route redirects)");
		}
		if (c->status && c->status != got_status) {
			if (got_status)
				snprintf(why[nwhy++], sizeof why[0], "status:   expected %d, got %d",
				         c->status, got_status);
			else
				snprintf(why[nwhy++], sizeof why[0],
				         "status:   expected %d, got none (the route proxies to %s)", c->status,
				         act.upstream ? act.upstream : "?");
		}
		if (c->location && (!loc || strcmp(loc, c->location) != 0))
			snprintf(why[nwhy++], sizeof why[0], "location: expected %s, got %s", c->location,
			         loc ? loc : "(not a redirect)");
		if (nwhy == 0) {
			pass++;
		} else {
			fail++;
			printf("FAIL: %s (%s:%u)\n", label, files[1], c->line);
			printf("  request:  %s %s%s%s%s\n", r.method, r.host, r.uri,
			       *r.ip_text ? " from " : "", r.ip_text);
			for (int k = 0; k < nwhy; k++)
				printf("  %s\n", why[k]);
			if (rt != GWB_NONE) {
				char where[512];
				gwc_route_where(t, rt, where, sizeof where);
				printf("  matched:  route %s at %s\n", got_route, where);
			}
		}
		free(loc);
		gwc_req_fini(&r);
	}
	printf("%zu passed, %zu failed\n", pass, fail);
	rc = fail ? GWC_EINPUT : GWC_OK;
	if (coverage) {
		uint32_t nhit = 0;
		for (uint32_t i = 0; i < nr; i++)
			nhit += hit[i];
		double pct = nr ? 100.0 * nhit / nr : 100.0;
		printf("coverage: %u of %u routes hit (%.1f%%)\n", nhit, nr, pct);
		for (uint32_t i = 0; i < nr; i++)
			if (!hit[i]) {
				char where[512];
				gwc_route_where(t, i, where, sizeof where);
				printf("  not hit: route %s at %s\n", gwc_route_name(t, i), where);
			}
		if (min_cov >= 0 && pct + 1e-9 < min_cov) {
			printf("coverage %.1f%% is below --min-coverage=%g\n", pct, min_cov);
			rc = GWC_EINPUT;
		}
	}
	free(hit);
	gwb_scratch_free(scr);
	gwb_free(t);
	cases_free(cs, ncs);
	return rc;
}

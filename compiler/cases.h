/*
 * cases.h — the CASES.yaml file of `gwc test` (read with libyaml):
 *
 *   - name: users list goes to users
 *     request: {method: GET, host: api.example.com, path: /v1/users/42,
 *               query: "a=1", headers: {X-Env: canary}, client_ip: 10.1.2.3}
 *     expect: {route: users, upstream: users, status: 301, location: /x}
 *
 * method defaults to GET; path may carry ?query (then `query:` must not be
 * given too); `route: none` expects no route to match (gwd's 404).
 */
#ifndef GW_CASES_H
#define GW_CASES_H

#include <stddef.h>

typedef struct gwc_hdr { char *name, *value; } gwc_hdr;

typedef struct gwc_case {
	char *name;                 /* NULL: "case N" */
	unsigned line;              /* of the case in the YAML file */
	/* request */
	char *method, *host, *path, *query, *client_ip;
	gwc_hdr *headers; size_t nheaders;
	/* expect (NULL / 0 when not given) */
	char *route, *upstream, *location;
	int status;
} gwc_case;

/* 0; -1 for a bad file, with "FILE:LINE:COL: message" in err; -2 when
 * the file cannot be read */
int cases_load(const char *path, gwc_case **out, size_t *n, char *err, size_t errlen);
void cases_free(gwc_case *v, size_t n);

#endif /* GW_CASES_H */

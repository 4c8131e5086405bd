/*
 * dashboard.c — see dashboard.h. The page is runtime/dashboard.html; the
 * build turns it into runtime/dashboard_html.h (a byte array, dash.am).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "dashboard.h"
#include "runtime/dashboard_html.h"   /* dash_html[], generated */

const unsigned char *dashboard_page(size_t *len)
{
	*len = sizeof dash_html;
	return dash_html;
}

static void serve(const char *method, const char *path, const char *body, size_t len,
                  admin_reply *out, void *ctx)
{
	(void)path, (void)body, (void)len, (void)ctx;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		static const char msg[] = "{\"error\":\"method not allowed (allowed: GET)\"}";
		out->status = 405;
		out->ctype = "application/json";
		out->body = malloc(sizeof msg - 1);
		out->len = out->body ? sizeof msg - 1 : 0;
		if (out->body)
			memcpy(out->body, msg, sizeof msg - 1);
		return;
	}
	/* a copy: the admin API frees the body it is given */
	out->body = malloc(sizeof dash_html);
	if (!out->body) {
		out->status = 500;
		return;
	}
	memcpy(out->body, dash_html, sizeof dash_html);
	out->len = sizeof dash_html;
	out->status = 200;
	out->ctype = "text/html; charset=utf-8";
}

int dashboard_init(char *err, size_t errlen)
{
	if (admin_route_add_public("/", serve, NULL) != 0) {
		snprintf(err, errlen, "dashboard: out of memory");
		return -1;
	}
	return 0;
}

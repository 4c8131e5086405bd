/*
 * admin_json.c — servers as JSON, for the /api/ endpoints and the state
 * file (one codec for both, so what the API shows is what is stored):
 *
 *   {"address": "127.0.0.1:9001", "weight": 1, "max_fails": 1,
 *    "fail_timeout": 10, "backup": false, "drain": false}
 *
 * fail_timeout is in seconds as in nginx: a number (10, 0.5) or a duration
 * string ("10s", "500ms"). Everything but address is optional (defaults:
 * weight 1, max_fails 1, fail_timeout 10, backup and drain false). Unknown
 * keys are errors, except the runtime keys GET adds (state, active,
 * requests, failures, fails, health, health_check, breaker,
 * circuit_breaker), so a GET answer can be PUT back.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "config.h"

json_t *adm_server_json(const adm_server *s)
{
	json_t *ft = s->fail_timeout_ms % 1000 == 0
	             ? json_integer(s->fail_timeout_ms / 1000)
	             : json_real(s->fail_timeout_ms / 1000.0);
	return json_pack("{s:s, s:I, s:I, s:o, s:b, s:b}",
	                 "address", s->addr,
	                 "weight", (json_int_t)s->weight,
	                 "max_fails", (json_int_t)s->max_fails,
	                 "fail_timeout", ft,
	                 "backup", s->backup != 0,
	                 "drain", s->drain != 0);
}

static int get_uint(const json_t *v, const char *where, const char *key,
                    uint32_t lo, uint32_t hi, uint32_t *out, char *err, size_t errlen)
{
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
	    json_integer_value(v) > (json_int_t)hi) {
		snprintf(err, errlen, "%s.%s: expected an integer %u..%u", where, key, lo, hi);
		return -1;
	}
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int get_bool(const json_t *v, const char *where, const char *key, int *out,
                    char *err, size_t errlen)
{
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "%s.%s: expected true or false", where, key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static int get_timeout(const json_t *v, const char *where, uint32_t *out,
                       char *err, size_t errlen)
{
	double ms = -1;
	if (json_is_integer(v)) {
		json_int_t s = json_integer_value(v);
		if (s >= 0 && s <= ADM_FAIL_TIMEOUT_MAX_MS / 1000)
			ms = (double)s * 1000;
	} else if (json_is_real(v)) {
		double s = json_real_value(v);
		if (s >= 0 && s * 1000 <= ADM_FAIL_TIMEOUT_MAX_MS && s * 1000 == floor(s * 1000))
			ms = s * 1000;
	} else if (json_is_string(v)) {
		uint32_t m;
		if (config_parse_duration_ms(json_string_value(v), &m) == 0 &&
		    m <= ADM_FAIL_TIMEOUT_MAX_MS)
			ms = m;
	}
	if (ms < 0) {
		snprintf(err, errlen, "%s.fail_timeout: expected seconds (a number, whole "
		         "milliseconds) or a duration such as \"500ms\", at most 24h", where);
		return -1;
	}
	*out = (uint32_t)ms;
	return 0;
}

int adm_server_from_json(const json_t *o, const char *addr, const char *where,
                         adm_server *out, char *err, size_t errlen)
{
	adm_server s = { 0 };
	const char *key;
	json_t *v;
	const char *a = addr;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "%s: expected an object", where);
		return -1;
	}
	s.weight = 1;
	s.max_fails = ADM_DEFAULT_MAX_FAILS;
	s.fail_timeout_ms = ADM_DEFAULT_FAIL_TIMEOUT_MS;
	json_object_foreach((json_t *)o, key, v) {
		if (!strcmp(key, "address")) {
			if (!json_is_string(v)) {
				snprintf(err, errlen, "%s.address: expected a string", where);
				return -1;
			}
			if (addr && strcmp(addr, json_string_value(v)) != 0) {
				snprintf(err, errlen, "%s.address: '%s' differs from the address "
				         "in the path '%s'", where, json_string_value(v), addr);
				return -1;
			}
			a = json_string_value(v);
		} else if (!strcmp(key, "weight")) {
			if (get_uint(v, where, key, 1, UPS_MAX_WEIGHT, &s.weight, err, errlen) < 0)
				return -1;
		} else if (!strcmp(key, "max_fails")) {
			if (get_uint(v, where, key, 0, ADM_MAX_FAILS_MAX, &s.max_fails, err, errlen) < 0)
				return -1;
		} else if (!strcmp(key, "fail_timeout")) {
			if (get_timeout(v, where, &s.fail_timeout_ms, err, errlen) < 0)
				return -1;
		} else if (!strcmp(key, "backup")) {
			if (get_bool(v, where, key, &s.backup, err, errlen) < 0)
				return -1;
		} else if (!strcmp(key, "drain")) {
			if (get_bool(v, where, key, &s.drain, err, errlen) < 0)
				return -1;
		} else if (strcmp(key, "state") && strcmp(key, "active") &&
		           strcmp(key, "requests") && strcmp(key, "failures") &&
		           strcmp(key, "fails") && strcmp(key, "health") &&
		           strcmp(key, "health_check") && strcmp(key, "breaker") &&
		           strcmp(key, "circuit_breaker")) {
			snprintf(err, errlen, "%s: unknown key '%s' (expected address, weight, "
			         "max_fails, fail_timeout, backup, drain)", where, key);
			return -1;
		}
	}
	if (!a) {
		snprintf(err, errlen, "%s: \"address\" is required", where);
		return -1;
	}
	char aerr[200];
	if (adm_check_addr(a, aerr, sizeof aerr) < 0) {
		snprintf(err, errlen, "%s.address: %s", where, aerr);
		return -1;
	}
	if (!(s.addr = strdup(a))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out = s;
	return 0;
}

int adm_list_from_json(const json_t *a, adm_list *out, char *err, size_t errlen)
{
	adm_list l = { NULL, 0 };
	if (!json_is_array(a)) {
		snprintf(err, errlen, "servers: expected an array");
		return -1;
	}
	if (json_array_size(a) > GWB_MAX_SERVERS) {
		snprintf(err, errlen, "servers: too many servers (limit is %u)", GWB_MAX_SERVERS);
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		char where[32];
		adm_server s;
		snprintf(where, sizeof where, "servers[%zu]", i);
		if (adm_server_from_json(v, NULL, where, &s, err, errlen) < 0) {
			adm_list_free(&l);
			return -1;
		}
		int rc = adm_list_push(&l, &s);
		free(s.addr);
		if (rc < 0) {
			snprintf(err, errlen, "out of memory");
			adm_list_free(&l);
			return -1;
		}
	}
	*out = l;
	return 0;
}

void adm_json_error(const json_error_t *je, char *err, size_t errlen)
{
	/* jansson counts columns from 1 except at the very start of the input
	 * (an empty body gives line 1, column 0) */
	snprintf(err, errlen, "line %d, column %d: %s", je->line > 0 ? je->line : 1,
	         je->column > 0 ? je->column : 1, je->text);
}

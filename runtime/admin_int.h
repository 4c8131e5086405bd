/*
 * admin_int.h — what the admin API's files share (admin.c: listener,
 * dispatch, auth, status; admin_dyups.c: the dyups text format;
 * admin_json.c: the JSON codec of server lists; admin_state.c: state,
 * persistence and applying it). Not used outside runtime/admin*.c.
 */
#ifndef GWD_ADMIN_INT_H
#define GWD_ADMIN_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "breaker.h"
#include "health.h"
#include "upstream.h"

/* defaults of a server given without parameters (nginx's) */
#define ADM_DEFAULT_MAX_FAILS       1u
#define ADM_DEFAULT_FAIL_TIMEOUT_MS 10000u
#define ADM_MAX_FAILS_MAX           1000000u
#define ADM_FAIL_TIMEOUT_MAX_MS     (24u * 3600u * 1000u)

/* one server as the admin API keeps it (owned addr) */
typedef struct adm_server {
	char *addr;
	uint32_t weight, max_fails, fail_timeout_ms;
	int backup, drain;
} adm_server;

typedef struct adm_list {
	adm_server *v; size_t n;
} adm_list;

void adm_list_free(adm_list *l);
/* deep copy; 0 ok, -1 out of memory (out then empty) */
int adm_list_copy(adm_list *out, const adm_list *in);
/* append a copy of s; 0 ok, -1 out of memory */
int adm_list_push(adm_list *l, const adm_server *s);
/* the list as ups_server_spec[] pointing into l (free the array only) */
ups_server_spec *adm_list_specs(const adm_list *l);
/* check an address as the upstream layer will ("bad address ..."); 0 ok */
int adm_check_addr(const char *addr, char *err, size_t errlen);
/* 1 if name is a gwr identifier [A-Za-z_][A-Za-z0-9_-]* (at most 255) */
int adm_valid_name(const char *name);

/* ------------------------------------------------------ text buffer */
typedef struct adm_buf {
	char *p; size_t len, cap;
	int oom;
} adm_buf;
void adm_buf_printf(adm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* -------------------------------------------------- dyups format */
/* Parse a dyups body ("server ADDR [weight=N] [max_fails=N]
 * [fail_timeout=T] [backup] [down];..."). 0 ok; -1 with err =
 * "line L, column C: message" (1-based, columns in bytes). */
int adm_dyups_parse(const char *body, size_t len, adm_list *out,
                    char *err, size_t errlen);
/* "server ADDR weight=W max_fails=F fail_timeout=T backup=B down=D\n" */
void adm_dyups_line(adm_buf *b, const adm_server *s, int down);

/* ------------------------------------------------------- JSON codec */
/* {"address", "weight", "max_fails", "fail_timeout" (seconds), "backup",
 * "drain"} (new reference) */
json_t *adm_server_json(const adm_server *s);
/* one server object; addr (may be NULL) is the address when the object
 * has none (PUT .../servers/ADDR). Runtime keys of GET answers (state,
 * active, requests, failures, fails) are ignored so a GET can be PUT back.
 * where names the object in messages ("servers[2]"). 0 ok; -1 with err */
int adm_server_from_json(const json_t *o, const char *addr, const char *where,
                         adm_server *out, char *err, size_t errlen);
/* an array of server objects; 0 ok; -1 with err */
int adm_list_from_json(const json_t *a, adm_list *out, char *err, size_t errlen);
/* "line L, column C: TEXT" of a jansson parse error */
void adm_json_error(const json_error_t *je, char *err, size_t errlen);

/* ------------------------------------------------------------ state */
int adm_state_init(const char *state_dir, ups_registry *reg, char *err, size_t errlen);
void adm_state_free(void);
/* reload_sync_hook: make every upstream of t carry exactly its state */
void adm_state_reapply(const gwb_table *t, ups_registry *reg);

/* Mutations. Each returns an HTTP status (200 ok, else err says why):
 * 400 bad input, 404 unknown upstream/server, 409 refused, 500 not
 * persisted (nothing changed). */
int adm_state_set(const char *name, const adm_list *servers, char *err, size_t errlen);
int adm_state_drop(const char *name, char *err, size_t errlen);
int adm_state_server_put(const char *name, const adm_server *s, char *err, size_t errlen);
int adm_state_server_del(const char *name, const char *addr, char *err, size_t errlen);
int adm_state_server_drain(const char *name, const char *addr, int on,
                           char *err, size_t errlen);

/* Views (under the state lock, consistent with the mutations). */
typedef struct adm_view_server {
	adm_server s;               /* configuration (addr borrowed) */
	int live;                   /* the fields below are valid */
	int available, ejected, health_down;
	int active;
	uint64_t requests, failures;
	unsigned fails;
	/* active health checks (health.h): HEALTH_NONE without a health_check
	 * block; hinfo valid when has_hinfo (the health thread saw it) */
	health_state health;
	int has_hinfo;
	health_info hinfo;
	/* circuit breaker (breaker.h): brk valid when has_breaker (the
	 * upstream has a circuit_breaker block) */
	int has_breaker;
	brk_info brk;
} adm_view_server;

typedef struct adm_view {
	const char *name;           /* borrowed for the callback's duration */
	int in_table;               /* the current table names it */
	int override;               /* an admin override is in force/kept */
	int dynamic;
	int balance;                /* enum gwb_balance; -1 when not in table */
	adm_view_server *v; size_t n;
} adm_view;

/* one upstream: 0 found (fn called), 404 unknown */
int adm_state_view(const char *name, void (*fn)(const adm_view *v, void *ctx), void *ctx);
/* every upstream: the table's, then those only in the state (inactive),
 * each sorted by name */
void adm_state_view_all(void (*fn)(const adm_view *v, void *ctx), void *ctx);
/* counts for /status */
void adm_state_counts(size_t *overrides, size_t *inactive, int *persisted,
                      const char **dir);

#endif /* GWD_ADMIN_INT_H */

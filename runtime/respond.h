/*
 * respond.h — the responses gwd makes itself (interfaces.md): a short JSON
 * body {"error":"...","request_id":"..."} with X-Request-Id.
 */
#ifndef GWD_RESPOND_H
#define GWD_RESPOND_H

#include <stddef.h>

/* the default error text for a status gwd answers itself ("no route") */
const char *respond_error_text(int status);
/* writes the JSON body into buf (NUL-terminated); returns its length, or
 * the length needed when cap is too small (like snprintf). Both strings
 * are escaped. */
size_t respond_json_error(char *buf, size_t cap, const char *msg, const char *reqid);
/* the whole error answer, for a socket gwd writes to itself (door.c, and
 * a body over its limit): status line with its reason phrase, Date,
 * X-Request-Id, Connection: close and the JSON body, sent on fd without
 * blocking; 1 when all of it went out */
int respond_raw_send(int fd, int status, const char *msg, const char *reqid);

#endif /* GWD_RESPOND_H */

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
/* the whole error answer, for a socket gwd writes to itself
 * (door_send_error): status line with reason, Date, X-Request-Id,
 * Connection: close and the JSON body; returns its length, >= cap when it
 * did not fit. No libmicrohttpd here: fuzz_door links this file alone. */
size_t respond_raw_error(char *out, size_t cap, int status, const char *reason, const char *msg,
                         const char *reqid);

#endif /* GWD_RESPOND_H */

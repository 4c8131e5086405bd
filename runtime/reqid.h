/*
 * reqid.h — X-Request-Id: generated ids, and the check on a client's own.
 */
#ifndef GWD_REQID_H
#define GWD_REQID_H

#include <stddef.h>

#define REQID_LEN 32        /* generated: 32 lowercase hex digits (128 bits) */
#define REQID_MAX 128       /* longest client id kept */

/* writes REQID_LEN hex digits + NUL; per-thread generator, no lock */
void reqid_gen(char out[REQID_LEN + 1]);
/* 1 if a client-supplied id is kept as is: 1..REQID_MAX visible ASCII
 * characters (no spaces, quotes or backslashes, so it is also safe
 * inside a JSON string and a log line) */
int reqid_valid(const char *s, size_t n);

#endif /* GWD_REQID_H */

/*
 * fuzz_door.c — libFuzzer target for door_check (runtime/door_check.c),
 * the check of a connection's first request head that runs on bytes
 * straight from the network before libmicrohttpd sees them.
 *
 * The whole input is the peeked head, checked with the input's own length
 * as the buffer size and with a small one (a head larger than the buffer
 * must be decided, never read past). Findings: crashes, sanitizer reports,
 * and a verdict outside the contract (a refusal without a
 * 400/413/414/431/505 and its text, a full buffer left undecided).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "door.h"

static void one(const char *buf, size_t n, size_t cap)
{
	int status = 0;
	const char *why = NULL;
	int v = door_check(buf, n, cap, &status, &why);
	if (v == DOOR_REFUSE) {
		if ((status != 400 && status != 413 && status != 414 && status != 431 &&
		     status != 505) || !why || !*why)
			abort();
	} else if (v != DOOR_MORE && v != DOOR_PASS) {
		abort();
	} else if (v == DOOR_MORE && n >= cap) {
		abort();              /* a full buffer must be decided */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: ASan sees any read past the peeked bytes */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	one(buf, size, size + 1);
	one(buf, size, size ? size : 1);
	if (size > 32)
		one(buf, 32, 32);
	free(buf);
	return 0;
}

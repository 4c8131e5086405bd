#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "reqid.h"

/* xoshiro256** per thread, seeded once from getrandom(): ids must be unique,
 * not secret, and a syscall per request would cost more than the request */
static _Thread_local uint64_t rs[4];
static _Thread_local int rs_init;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next(void)
{
	uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
	rs[2] ^= rs[0]; rs[3] ^= rs[1]; rs[1] ^= rs[2]; rs[0] ^= rs[3];
	rs[2] ^= t; rs[3] = rotl(rs[3], 45);
	return r;
}

static void seed(void)
{
	if (getrandom(rs, sizeof rs, 0) != (ssize_t)sizeof rs) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rs[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		rs[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ull;
		rs[2] = (uint64_t)(uintptr_t)&rs_init;
		rs[3] = 0x2545f4914f6cdd1dull;
	}
	if (!(rs[0] | rs[1] | rs[2] | rs[3]))
		rs[0] = 1;
	rs_init = 1;
}

void reqid_gen(char out[REQID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	if (!rs_init)
		seed();
	for (int i = 0; i < 2; i++) {
		uint64_t v = next();
		for (int j = 0; j < 16; j++, v >>= 4)
			out[i * 16 + j] = hex[v & 15];
	}
	out[REQID_LEN] = '\0';
}

int reqid_valid(const char *s, size_t n)
{
	if (n == 0 || n > REQID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 127 || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

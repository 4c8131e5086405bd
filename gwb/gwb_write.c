/*
 * gwb_write.c — lays a table out: header, section directory, sections in
 * directory order, each 8-byte aligned and zero padded, then the CRC-32 of
 * the whole with the checksum field taken as zero (see gwb.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include "gwb_int.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint64_t align8(uint64_t x)
{
	return (x + 7) & ~(uint64_t)7;
}

int gwb_write(const gwb_wsec *sec, uint32_t nsec, const uint8_t hash[32],
              uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	uint64_t size = align8(GWB_HEADER_SIZE + (uint64_t)nsec * 16);
	for (uint32_t i = 0; i < nsec; i++)
		size = align8(size + sec[i].size);
	if (size > GWB_MAX_FILE)
		return gwb_errf(err, errlen, "table too large (%llu bytes, limit is %u)",
		                (unsigned long long)size, GWB_MAX_FILE);
	uint8_t *p = calloc(1, (size_t)size);   /* zero: padding and reserved */
	if (!p)
		return gwb_errf(err, errlen, "out of memory");
	memcpy(p, GWB_MAGIC, 4);
	put16(p + 4, GWB_VERSION_MAJOR);
	put16(p + 6, GWB_VERSION_MINOR);
	put32(p + 8, (uint32_t)size);
	memcpy(p + 16, hash, 32);
	put32(p + 48, nsec);
	put32(p + 52, 0);                       /* flags */
	uint64_t off = align8(GWB_HEADER_SIZE + (uint64_t)nsec * 16);
	for (uint32_t i = 0; i < nsec; i++) {
		uint8_t *d = p + GWB_HEADER_SIZE + 16 * i;
		put32(d, sec[i].id);
		put32(d + 4, (uint32_t)off);
		put32(d + 8, sec[i].size);
		put32(d + 12, sec[i].count);
		if (sec[i].size)
			memcpy(p + off, sec[i].data, sec[i].size);
		off = align8(off + sec[i].size);
	}
	put32(p + 12, gwb_crc32(0, p, (size_t)size));
	*out = p;
	*outlen = (size_t)size;
	return 0;
}

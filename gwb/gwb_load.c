/*
 * gwb_load.c — reading a table from untrusted bytes. Like Lua's lundump.c,
 * every read of the file goes through bounds-checked primitives on one
 * state struct, and the header is checked in order: size, magic, version,
 * file size, checksum, then the section directory (every section inside
 * the file, aligned, not overlapping, size = count x record size). Only
 * then does gwb_verify() (gwb_verify.c) look inside the sections.
 *
 * gwb_load_file mmaps the file read-only and uses it in place; gwd replaces
 * tables by rename(2), never by rewriting a file it may have mapped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gwb_int.h"

typedef struct ld {
	const uint8_t *p;
	size_t n;
	char *err;
	size_t errlen;
} ld;

static int ld_u16(const ld *s, size_t off, uint32_t *v)
{
	if (off > s->n || s->n - off < 2)
		return gwb_errf(s->err, s->errlen, "truncated at byte %zu", off);
	*v = (uint32_t)s->p[off] | (uint32_t)s->p[off + 1] << 8;
	return 0;
}

static int ld_u32(const ld *s, size_t off, uint32_t *v)
{
	if (off > s->n || s->n - off < 4)
		return gwb_errf(s->err, s->errlen, "truncated at byte %zu", off);
	*v = (uint32_t)s->p[off] | (uint32_t)s->p[off + 1] << 8 |
	     (uint32_t)s->p[off + 2] << 16 | (uint32_t)s->p[off + 3] << 24;
	return 0;
}

typedef struct sec {
	uint32_t id, off, size, count;
} sec;

static int ld_header(ld *s, sec dir[GWB_SEC__COUNT])
{
	uint32_t major, minor, fsize, sum, nsect, flags;

	if (s->n < GWB_HEADER_SIZE)
		return gwb_errf(s->err, s->errlen, "file too short (%zu bytes, a table has at least %u)",
		                s->n, GWB_HEADER_SIZE);
	if (memcmp(s->p, GWB_MAGIC, 4) != 0)
		return gwb_errf(s->err, s->errlen, "bad magic (not a gw table)");
	if (ld_u16(s, 4, &major) < 0 || ld_u16(s, 6, &minor) < 0 || ld_u32(s, 8, &fsize) < 0 ||
	    ld_u32(s, 12, &sum) < 0 || ld_u32(s, 48, &nsect) < 0 || ld_u32(s, 52, &flags) < 0)
		return -1;
	if (major != GWB_VERSION_MAJOR)
		return gwb_errf(s->err, s->errlen, "unsupported format version %u.%u (this gw reads %u.x)",
		                major, minor, GWB_VERSION_MAJOR);
	if (minor > GWB_VERSION_MINOR)
		return gwb_errf(s->err, s->errlen, "format version %u.%u is newer than this gw (%u.%u)",
		                major, minor, GWB_VERSION_MAJOR, GWB_VERSION_MINOR);
	if (fsize != s->n)
		return gwb_errf(s->err, s->errlen, "file size mismatch (header says %u bytes, got %zu)",
		                fsize, s->n);
	/* CRC over the file with the checksum field as zero */
	static const uint8_t zero[4];
	uint32_t c = gwb_crc32(0, s->p, 12);
	c = gwb_crc32(c, zero, 4);
	c = gwb_crc32(c, s->p + 16, s->n - 16);
	if (c != sum)
		return gwb_errf(s->err, s->errlen, "checksum mismatch (header %08x, computed %08x)", sum, c);
	if (flags != 0)
		return gwb_errf(s->err, s->errlen, "unknown header flags 0x%x", flags);
	if (nsect > GWB_MAX_SECTIONS)
		return gwb_errf(s->err, s->errlen, "too many sections (%u)", nsect);
	uint64_t dirend = GWB_HEADER_SIZE + (uint64_t)nsect * 16;
	if (dirend > s->n)
		return gwb_errf(s->err, s->errlen, "section directory out of bounds");

	sec all[GWB_MAX_SECTIONS];
	memset(dir, 0, sizeof(sec) * GWB_SEC__COUNT);
	for (uint32_t i = 0; i < nsect; i++) {
		sec *e = &all[i];
		size_t at = GWB_HEADER_SIZE + 16 * (size_t)i;
		if (ld_u32(s, at, &e->id) < 0 || ld_u32(s, at + 4, &e->off) < 0 ||
		    ld_u32(s, at + 8, &e->size) < 0 || ld_u32(s, at + 12, &e->count) < 0)
			return -1;
		if (e->id == 0 || e->id >= GWB_SEC__COUNT)
			return gwb_errf(s->err, s->errlen, "section %u: unknown id %u", i, e->id);
		const char *nm = gwb_sec_name[e->id];
		if (dir[e->id].id)
			return gwb_errf(s->err, s->errlen, "section %s appears twice", nm);
		if (e->off % 8)
			return gwb_errf(s->err, s->errlen, "section %s: offset %u not 8-byte aligned", nm, e->off);
		if (e->off < dirend)
			return gwb_errf(s->err, s->errlen, "section %s overlaps the header", nm);
		if ((uint64_t)e->off + e->size > s->n)
			return gwb_errf(s->err, s->errlen, "section %s out of bounds", nm);
		if ((uint64_t)e->count * gwb_sec_recsize[e->id] != e->size)
			return gwb_errf(s->err, s->errlen, "section %s: size %u is not %u x %u bytes",
			                nm, e->size, e->count, gwb_sec_recsize[e->id]);
		for (uint32_t j = 0; j < i; j++) {
			const sec *o = &all[j];
			if (e->size && o->size && e->off < (uint64_t)o->off + o->size &&
			    o->off < (uint64_t)e->off + e->size)
				return gwb_errf(s->err, s->errlen, "sections %s and %s overlap",
				                gwb_sec_name[o->id], nm);
		}
		dir[e->id] = *e;
	}
	for (uint32_t id = 1; id < GWB_SEC__COUNT; id++)
		if (!dir[id].id)
			return gwb_errf(s->err, s->errlen, "section %s missing", gwb_sec_name[id]);
	return 0;
}

static gwb_table *load(const uint8_t *p, size_t n, void *map, void *copy,
                       char *err, size_t errlen)
{
	ld s = { .p = p, .n = n, .err = err, .errlen = errlen };
	sec dir[GWB_SEC__COUNT];
	gwb_table *t;

	if (ld_header(&s, dir) < 0)
		return NULL;
	t = calloc(1, sizeof *t);
	if (!t) {
		gwb_errf(err, errlen, "out of memory");
		return NULL;
	}
	t->base = p;
	t->size = n;
#define SEC_(field, cnt, id, T) \
	t->field = (T)(const void *)(p + dir[id].off), t->cnt = dir[id].count
	SEC_(stridx, nstr, GWB_SEC_STRIDX, const uint32_t *);
	SEC_(strdata, nstrdata, GWB_SEC_STRDATA, const char *);
	SEC_(regex, nregex, GWB_SEC_REGEX, const gwb_regex *);
	SEC_(cidr, ncidr, GWB_SEC_CIDR, const gwb_cidr *);
	SEC_(cidrset, ncidrset, GWB_SEC_CIDRSET, const uint32_t *);
	SEC_(ups, nups, GWB_SEC_UPSTREAM, const gwb_upstream *);
	SEC_(srv, nsrv, GWB_SEC_SERVER, const gwb_server *);
	SEC_(route, nroute, GWB_SEC_ROUTE, const gwb_route *);
	SEC_(code, ncode, GWB_SEC_CODE, const uint32_t *);
	SEC_(index, nindex, GWB_SEC_INDEX, const uint32_t *);
	SEC_(debug, ndebug, GWB_SEC_DEBUG, const gwb_debug *);
#undef SEC_
	if (gwb_verify(t, err, errlen) < 0) {
		gwb_free(t);            /* frees regexes compiled so far, not p */
		return NULL;
	}
	t->map = map;
	t->maplen = n;                /* gwb_load_mem says otherwise for its own maps */
	t->copy = copy;
	return t;
}

/* A large table is copied into memory backed by 2 MiB pages where the
 * kernel gives them (transparent huge pages, madvise mode): a lookup
 * reads a few lines at random places of the index, and with 4 KiB pages
 * most of those reads would also miss the TLB. NULL when not possible. */
#define HUGE_PAGE (2u << 20)
static void *huge_copy(const void *buf, size_t len, size_t *maplen)
{
#ifdef MADV_HUGEPAGE
	if (len < HUGE_PAGE)
		return NULL;
	size_t want = (len + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
	uint8_t *m = mmap(NULL, want + HUGE_PAGE, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	/* keep the 2 MiB-aligned part, give back the rest */
	size_t head = (HUGE_PAGE - ((uintptr_t)m & (HUGE_PAGE - 1))) & (HUGE_PAGE - 1);
	if (head)
		munmap(m, head);
	if (HUGE_PAGE - head)
		munmap(m + head + want, HUGE_PAGE - head);
	m += head;
	(void)madvise(m, want, MADV_HUGEPAGE);      /* advice: fine if refused */
	memcpy(m, buf, len);
	(void)mprotect(m, want, PROT_READ);        /* read-only, as a mapped file is */
	*maplen = want;
	return m;
#else
	(void)buf, (void)len, (void)maplen;
	return NULL;
#endif
}

gwb_table *gwb_load_mem(const void *buf, size_t len, char *err, size_t errlen)
{
	size_t maplen = 0;
	void *huge = huge_copy(buf, len, &maplen);
	if (huge) {
		gwb_table *t = load(huge, len, huge, NULL, err, errlen);
		if (!t)
			munmap(huge, maplen);
		else
			t->maplen = maplen;
		return t;
	}
	/* a copy: the caller's buffer may be unaligned or short-lived */
	void *copy = malloc(len ? len : 1);
	if (!copy) {
		gwb_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (len)
		memcpy(copy, buf, len);
	gwb_table *t = load(copy, len, NULL, copy, err, errlen);
	if (!t)
		free(copy);
	return t;
}

gwb_table *gwb_load_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		gwb_errf(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		gwb_errf(err, errlen, "%s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		gwb_errf(err, errlen, "not a regular file");
		close(fd);
		return NULL;
	}
	if (st.st_size > (off_t)GWB_MAX_FILE) {
		gwb_errf(err, errlen, "file too large (%lld bytes, limit is %u)", (long long)st.st_size, GWB_MAX_FILE);
		close(fd);
		return NULL;
	}
	if (st.st_size < GWB_HEADER_SIZE) {
		gwb_errf(err, errlen, "file too short (%lld bytes, a table has at least %u)",
		         (long long)st.st_size, GWB_HEADER_SIZE);
		close(fd);
		return NULL;
	}
	size_t n = (size_t)st.st_size;
	void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		gwb_errf(err, errlen, "mmap: %s", strerror(errno));
		return NULL;
	}
	gwb_table *t = load(m, n, m, NULL, err, errlen);
	if (!t)
		munmap(m, n);
	return t;
}

void gwb_free(gwb_table *t)
{
	if (!t)
		return;
	if (t->re) {
		for (uint32_t i = 0; i < t->nregex; i++)
			pcre2_code_free(t->re[i]);
		free(t->re);
	}
	if (t->map)
		munmap(t->map, t->maplen);
	free(t->copy);
	free(t);
}

/* ---------------------------------------------------------------- accessors */
uint32_t gwb_nroutes(const gwb_table *t) { return t->nroute; }
const gwb_route *gwb_route_at(const gwb_table *t, uint32_t i) { return &t->route[i]; }
const gwb_debug *gwb_debug_at(const gwb_table *t, uint32_t route) { return &t->debug[route]; }
uint32_t gwb_nupstreams(const gwb_table *t) { return t->nups; }
const gwb_upstream *gwb_upstream_at(const gwb_table *t, uint32_t i) { return &t->ups[i]; }
const gwb_server *gwb_server_at(const gwb_table *t, uint32_t i) { return &t->srv[i]; }
const uint32_t *gwb_code(const gwb_table *t) { return t->code; }
uint32_t gwb_ncidrsets(const gwb_table *t) { return t->ncidrset; }
const uint8_t *gwb_source_hash(const gwb_table *t) { return t->base + 16; }

const char *gwb_str(const gwb_table *t, uint32_t idx, size_t *len)
{
	return gwb_s(t, idx, len);
}

const gwb_cidr *gwb_cidrset(const gwb_table *t, uint32_t idx, uint32_t *count)
{
	if (count)
		*count = t->cidrset[2 * idx + 1];
	return t->cidr + t->cidrset[2 * idx];
}

const void *gwb_regex_code(const gwb_table *t, uint32_t idx)
{
	return t->re[idx];
}

void gwb_source_hash_hex(const gwb_table *t, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	const uint8_t *h = gwb_source_hash(t);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hx[h[i] >> 4];
		out[2 * i + 1] = hx[h[i] & 15];
	}
	out[64] = '\0';
}

/*
 * keyfile.h — files named in rules (API key files, htpasswd files, JWT
 * secrets and public keys): read and parsed when a table is loaded, and
 * read again whenever they change, without a table reload.
 *
 * One kf_file per (path, kind), shared by every directive and every table
 * that names it (refcounted by kf_open/kf_close). A single watcher thread
 * (started by the first kf_open) watches each file's directory with
 * inotify — so an editor's rename-over and a Kubernetes ConfigMap's
 * "..data" symlink swap are seen as well as an in-place write — and also
 * stat()s every file every KF_POLL_MS in case inotify misses something
 * (network file systems). A change is re-read and parsed on that thread;
 * if the file cannot be read or parsed, the previous contents stay in use
 * and the reason is logged.
 *
 * Readers never block and never take a lock: the parsed object is
 * published with one atomic store, and a reader brackets its use with
 * kf_enter/kf_leave, which count it in one of two per-slot counters
 * (grace periods as in userspace RCU). The writer frees the old object
 * only after both counters have drained since the swap, so a reader never
 * sees a freed object. A read section must be short: copy out what must
 * outlive it (e.g. into the request's arena).
 *
 * Also here: the tiny hash map the auth plugins use to find their
 * per-table state from an instruction's operands.
 */
#ifndef GWD_KEYFILE_H
#define GWD_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "gwb.h"

#define KF_SLOTS   16        /* reader counter slots (worker index % KF_SLOTS) */
#define KF_POLL_MS 2000      /* stat() fallback period */
#define KF_MAX_SIZE (64u << 20)  /* larger files are refused */

typedef struct kf_kind {
	const char *what;        /* "key file", "htpasswd file", ... (messages) */
	/* Parse the whole file (data[len] == '\0'). Returns the object, or
	 * NULL with err set. May log warnings about single lines. */
	void *(*parse)(const char *path, const char *data, size_t len,
	               char *err, size_t errlen);
	void (*free)(void *obj);
} kf_kind;

typedef struct kf_file kf_file;

/* The file at path parsed as kind, read now (a table is being loaded, so
 * this may block). Shared with earlier openers of the same (path, kind);
 * an already open file is re-checked and re-read if it changed. NULL with
 * err ("PATH: No such file or directory", the parser's message). */
kf_file *kf_open(const char *path, const kf_kind *kind, char *err, size_t errlen);
void kf_close(kf_file *f);
const char *kf_path(const kf_file *f);

/* read side: wait-free; slot is any small number that differs between
 * threads running at once (the worker index); ref is the reader's token */
typedef struct kf_ref { kf_file *f; unsigned idx, slot; } kf_ref;
const void *kf_enter(kf_file *f, unsigned slot, kf_ref *ref);
void kf_leave(kf_ref *ref);

/* how many times the contents were replaced since kf_open created it */
uint64_t kf_generation(const kf_file *f);
/* check now (what the watcher does on an event): 1 replaced, 0 unchanged,
 * -1 the file could not be read or parsed (old contents kept) */
int kf_check(kf_file *f, int force);

/* SHA-256 with the digest fetched once (OpenSSL 3's SHA256() looks the
 * implementation up on every call: 0.8 us instead of 0.2 us here) */
void kf_sha256(const void *data, size_t n, unsigned char out[32]);

/* ---- walking a table's action programs (plugins' init) */
/* calls fn for every instruction with opcode op in every route's action
 * program, in route order; stops at and returns fn's first nonzero result */
typedef int (*kf_insn_fn)(const gwb_table *t, uint32_t route, const uint32_t *insn,
                          void *arg);
int kf_each_op(const gwb_table *t, unsigned op, kf_insn_fn fn, void *arg);
/* "route NAME (FILE:LINE)" for messages; returns snprintf's result */
int kf_route_where(const gwb_table *t, uint32_t route, char *buf, size_t len);

/* ---- u64 -> pointer map, open addressing (build once, read-only after) */
/* values must not be NULL (NULL marks an empty slot) */
typedef struct kf_map {
	uint64_t *key;
	void **val;
	size_t cap, n;           /* cap: power of two, 0 when empty */
} kf_map;
/* 0, or -1 out of memory; an existing key keeps its value */
int kf_map_put(kf_map *m, uint64_t key, void *val);
void *kf_map_get(const kf_map *m, uint64_t key);
void kf_map_free(kf_map *m);
/* mixes n operand words into a map key */
uint64_t kf_words_key(const uint32_t *w, size_t n);

#endif /* GWD_KEYFILE_H */

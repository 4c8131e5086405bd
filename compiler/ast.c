/*
 * ast.c — the arena that holds a parsed rule set, and ast_free().
 *
 * A 100k-route file makes millions of small objects (values, strings,
 * directives) that all die together, so they come from large chunks with a
 * bump pointer instead of malloc: allocation is a compare and an add, and
 * freeing is one pass over the chunk list.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

#define ARENA_CHUNK (256 * 1024)

struct chunk {
	struct chunk *next;
	size_t size, used;
	max_align_t data[];  /* aligned storage follows */
};

struct arena {
	struct chunk *head;  /* the chunk being filled */
	size_t total;        /* bytes handed out */
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fputs("gwc: out of memory\n", stderr);
		abort();
	}
	return p;
}

arena *arena_new(void)
{
	arena *a = xmalloc(sizeof *a);

	a->head = NULL;
	a->total = 0;
	return a;
}

void arena_free(arena *a)
{
	struct chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void *arena_raw(arena *a, size_t n)
{
	struct chunk *c = a->head;
	void *p;

	n = (n + 7) & ~(size_t)7;
	if (n == 0)
		n = 8;
	if (!c || c->size - c->used < n) {
		size_t size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
		struct chunk *nc = xmalloc(sizeof *nc + size);
		nc->size = size;
		nc->used = 0;
		if (c && size != ARENA_CHUNK) {
			/* a big block goes behind the current chunk, which keeps
			 * serving small requests */
			nc->next = c->next;
			c->next = nc;
			c = nc;
		} else {
			nc->next = c;
			a->head = c = nc;
		}
	}
	p = (char *)c->data + c->used;
	c->used += n;
	a->total += n;
	return p;
}

void *arena_alloc(arena *a, size_t n)
{
	void *p = arena_raw(a, n);

	memset(p, 0, n);
	return p;
}

void *arena_memdup(arena *a, const void *src, size_t n)
{
	void *p = arena_raw(a, n);

	if (n)
		memcpy(p, src, n);
	return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
	char *p = arena_raw(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

size_t arena_used(const arena *a)
{
	return a ? a->total : 0;
}

void ast_free(ast_file *f)
{
	if (!f)
		return;
	arena_free(f->arena);
	memset(f, 0, sizeof *f);
}

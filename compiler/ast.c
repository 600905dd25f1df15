/* ast.c - the syntax tree's arena.
 *
 * A bump allocator over a singly linked list of chunks. Chunks grow geometrically (1 MiB, doubling
 * up to 64 MiB) so a huge file costs few chunks; chunks of 4 MiB and more are mapped directly with
 * mmap() (MADV_HUGEPAGE was measured slower: synchronous compaction on fault). All chunk memory
 * comes zeroed from the kernel (calloc/mmap), so allocations need no memset. Mapped chunks are
 * prefaulted ahead of the bump pointer, POPULATE bytes at a time (MADV_POPULATE_WRITE): one
 * system call instead of one page fault per 4 KiB page, which dominates the system time of a
 * big compile.
 * Requests larger than a quarter chunk get a chunk of their own. The tree is freed at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ast.h"

#define CHUNK_MIN ((size_t)1 << 20)
#define CHUNK_MAX ((size_t)64 << 20)
#define CHUNK_MMAP ((size_t)4 << 20)
#define POPULATE ((size_t)2 << 20)

struct chunk {
	struct chunk *next;
	size_t size, used;
	size_t populated; /* mapped chunks: bytes of data[] prefaulted so far */
	int mapped;
	_Alignas(16) unsigned char data[];
};

struct ast_arena {
	struct chunk *head;
	unsigned char *cur; /* the head chunk's next free byte */
	size_t room;        /* bytes usable at cur without the slow path (prefaulted ones) */
	size_t next_size;
	size_t total;
};

struct ast_arena *ast_arena_new(void)
{
	struct ast_arena *a = calloc(1, sizeof *a);

	if (a)
		a->next_size = CHUNK_MIN;
	return a;
}

static void chunk_free(struct chunk *c)
{
	if (c->mapped)
		munmap(c, sizeof *c + c->size);
	else
		free(c);
}

void ast_arena_free(struct ast_arena *a)
{
	struct chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		chunk_free(c);
	}
	free(a);
}

/* Returns a new zeroed chunk with SIZE usable bytes, or NULL. */
static struct chunk *chunk_new(size_t size)
{
	struct chunk *c;

	if (size > SIZE_MAX / 2)
		return NULL;
	if (size >= CHUNK_MMAP) {
		void *p = mmap(NULL, sizeof *c + size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return NULL;
		c = p;
		c->mapped = 1;
	} else if (!(c = calloc(1, sizeof *c + size))) {
		return NULL;
	}
	c->size = size;
	c->used = 0;
	return c;
}

/* Prefaults C's data up to at least END (best effort: without MADV_POPULATE_WRITE the pages
 * fault in one by one as before). */
static void populate(struct chunk *c, size_t end)
{
#ifdef MADV_POPULATE_WRITE
	size_t base = (size_t)(c->data - (unsigned char *)c);
	size_t from = (base + c->populated) & ~(size_t)4095;
	size_t to = base + end + POPULATE;

	if (to > base + c->size)
		to = base + c->size;
	to = (to + 4095) & ~(size_t)4095;
	if (to > from)
		(void)madvise((unsigned char *)c + from, to - from, MADV_POPULATE_WRITE);
	c->populated = to - base;
#else
	c->populated = end;
#endif
}

/* ast_alloc() beyond the room of the head chunk: new chunks, big blocks, prefaulting. */
static void *alloc_slow(struct ast_arena *a, size_t n)
{
	struct chunk *c = a->head;
	void *p;

	if (c)
		c->used = (size_t)(a->cur - c->data);
	if (n > SIZE_MAX - 16)
		return NULL;
	n = (n + 7) & ~(size_t)7;
	if (n == 0)
		n = 8;
	if (!c || c->size - c->used < n) {
		if (n > a->next_size / 4) {
			/* a big block: its own chunk, behind the current one */
			if (!(c = chunk_new(n)))
				return NULL;
			if (a->head) {
				c->next = a->head->next;
				a->head->next = c;
			} else {
				c->next = NULL;
				a->head = c;
			}
		} else {
			if (!(c = chunk_new(a->next_size)))
				return NULL;
			c->next = a->head;
			a->head = c;
			if (a->next_size < CHUNK_MAX)
				a->next_size *= 2;
		}
	}
	if (c->mapped && c->used + n > c->populated)
		populate(c, c->used + n);
	p = c->data + c->used;
	c->used += n;
	a->total += n;
	c = a->head;
	a->cur = c->data + c->used;
	a->room = (c->mapped && c->populated < c->size ? c->populated : c->size) - c->used;
	return p;
}

void *ast_alloc(struct ast_arena *a, size_t n)
{
	size_t r = (n + 7) & ~(size_t)7;

	if (r - 1 < a->room) { /* 0 < r <= room: the common case */
		void *p = a->cur;

		a->cur += r;
		a->room -= r;
		a->total += r;
		return p;
	}
	return alloc_slow(a, n);
}

char *ast_strndup(struct ast_arena *a, const char *s, size_t n)
{
	char *p;

	if (n >= SIZE_MAX - 16 || !(p = ast_alloc(a, n + 1)))
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

size_t ast_arena_used(const struct ast_arena *a)
{
	return a->total;
}

const char *ast_op_name(enum ast_op op)
{
	switch (op) {
	case AST_OP_EQ: return "==";
	case AST_OP_NE: return "!=";
	case AST_OP_LT: return "<";
	case AST_OP_LE: return "<=";
	case AST_OP_GT: return ">";
	case AST_OP_GE: return ">=";
	case AST_OP_AND: return "and";
	case AST_OP_OR: return "or";
	case AST_OP_NOT: return "not";
	case AST_OP_MATCHES: return "matches";
	}
	return "?";
}

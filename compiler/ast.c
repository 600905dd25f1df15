/* ast.c - the syntax tree's arena.
 *
 * A bump allocator over a singly linked list of chunks. Chunks grow geometrically (1 MiB, doubling
 * up to 64 MiB) so a huge file costs few chunks; chunks of 4 MiB and more are mapped directly with
 * mmap(), aligned to and sized in 2 MiB units and advised MADV_HUGEPAGE: with transparent huge
 * pages a 2 MiB page costs one fault and one accounting step instead of 512, which about halved
 * the system time of a 100k-step compile on a quiet machine (without THP, or when the kernel has
 * no free huge page, they are ordinary pages; a helper thread prefaulting them on the other core
 * was tried and measured slower). All chunk memory comes zeroed from the kernel
 * (calloc/mmap), so allocations need no memset. Mapped chunks are prefaulted ahead of the bump
 * pointer, POPULATE bytes at a time (MADV_POPULATE_WRITE): one system call instead of one page
 * fault per page.
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
#define HUGE ((size_t)2 << 20) /* alignment and size unit of mapped chunks */

struct chunk {
	struct chunk *next;
	size_t size, used;
	size_t maplen;    /* mapped chunks: bytes mapped at the chunk */
	size_t populated; /* mapped chunks: bytes of data[] prefaulted so far */
	int mapped;
	_Alignas(16) unsigned char data[];
};

/* One entry of the intern cache: a string the arena handed out, its length and its bytes
 * (zero-padded: compared and mixed into a slot number as two words). */
struct interned {
	uint64_t w[2];
	const char *s;
	size_t n;
};

#define INTERN_SLOTS 1024 /* direct-mapped: a newer string replaces an older one */

struct ast_arena {
	struct interned *intern; /* INTERN_SLOTS entries, allocated on first use */
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
		munmap(c, c->maplen);
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
	free(a->intern);
	free(a);
}

/* Returns a new zeroed chunk with SIZE usable bytes, or NULL. */
static struct chunk *chunk_new(size_t size)
{
	struct chunk *c;

	if (size > SIZE_MAX / 2)
		return NULL;
	if (size >= CHUNK_MMAP) {
		/* map one extra unit and trim to a 2 MiB-aligned start and length */
		size_t len = (sizeof *c + size + HUGE - 1) & ~(HUGE - 1);
		unsigned char *p = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		unsigned char *q;

		if (p == MAP_FAILED)
			return NULL;
		q = (unsigned char *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
		if (q > p)
			munmap(p, (size_t)(q - p));
		if (p + len + HUGE > q + len)
			munmap(q + len, (size_t)(p + len + HUGE - (q + len)));
#ifdef MADV_HUGEPAGE
		(void)madvise(q, len, MADV_HUGEPAGE); /* best effort */
#endif
		c = (struct chunk *)q;
		c->mapped = 1;
		c->maplen = len;
		size = len - sizeof *c; /* the rounding is usable too */
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

const char *ast_intern(struct ast_arena *a, const char *s, size_t n)
{
	uint64_t w[2] = {0, 0};
	struct interned *e;
	size_t slot;
	char *p;

	_Static_assert(AST_INTERN_MAX <= sizeof w, "a short string fits in two words");
	if (n > AST_INTERN_MAX)
		return ast_strndup(a, s, n);
	if (!a->intern && !(a->intern = calloc(INTERN_SLOTS, sizeof *a->intern)))
		return ast_strndup(a, s, n);
	memcpy(w, s, n);
	/* multiplicative mixing of the two words (only picks a slot: equality is checked) */
	slot = (size_t)(((w[0] + n) * 0x9E3779B97F4A7C15ull ^ w[1] * 0xC2B2AE3D27D4EB4Full) >> 54);
	e = &a->intern[slot & (INTERN_SLOTS - 1)];
	if (e->s && e->n == n && e->w[0] == w[0] && e->w[1] == w[1])
		return e->s;
	if (!(p = ast_strndup(a, s, n)))
		return NULL;
	e->w[0] = w[0];
	e->w[1] = w[1];
	e->s = p;
	e->n = n;
	return p;
}

void ast_advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	uintptr_t from = ((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
	uintptr_t to = ((uintptr_t)p + n) & ~(uintptr_t)(HUGE - 1);

	if (p && n >= 2 * HUGE && to > from)
		(void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
	(void)p;
	(void)n;
#endif
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

/* sema.c - the semantic analysis driver and its small utilities (arena helpers, hash tables).
 *
 * sema_check() runs the stages in order: declarations, pipeline bodies, graph (edges, cycles,
 * topological order), lints; then picks the entry pipeline. See sema.h for the design. */
#include "sema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hash table ---------------------------------------------------------------------------- */

/* One slot: the key's hash is kept next to it so a probe rarely touches a key's text and a hit
 * finds its value in the same cache line. */
struct slot {
	const char *key; /* NULL: empty */
	void *val;
	uint64_t hash;
};

struct stab {
	struct slot *slots;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

struct stab *stab_new(void)
{
	return calloc(1, sizeof(struct stab));
}

void stab_free(struct stab *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t);
}

void *stab_get(const struct stab *t, const char *key)
{
	uint64_t h;
	size_t i;

	if (!t || !t->cap)
		return NULL;
	h = hash_str(key);
	for (i = h & (t->cap - 1); t->slots[i].key; i = (i + 1) & (t->cap - 1))
		if (t->slots[i].hash == h && !strcmp(t->slots[i].key, key))
			return t->slots[i].val;
	return NULL;
}

/* Rehashes T into NCAP slots (a power of two larger than its count). */
static int stab_resize(struct stab *t, size_t ncap)
{
	struct slot *ns = calloc(ncap, sizeof *ns);

	if (!ns)
		return -1;
	ast_advise_huge(ns, ncap * sizeof *ns); /* a 100k-step pipeline's table is 6 MiB */
	for (size_t j = 0; j < t->cap; j++) {
		size_t i;
		if (!t->slots[j].key)
			continue;
		for (i = t->slots[j].hash & (ncap - 1); ns[i].key; i = (i + 1) & (ncap - 1))
			;
		ns[i] = t->slots[j];
	}
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

int stab_reserve(struct stab *t, size_t n)
{
	size_t ncap = t->cap ? t->cap : 16;

	if (n > SIZE_MAX / 4)
		return -1;
	while ((n + 1) * 2 > ncap)
		ncap *= 2;
	return ncap == t->cap ? 0 : stab_resize(t, ncap);
}

int stab_put(struct stab *t, const char *key, void *val)
{
	uint64_t h;
	size_t i;

	if ((t->n + 1) * 2 > t->cap && stab_resize(t, t->cap ? t->cap * 2 : 16) < 0)
		return -1;
	h = hash_str(key);
	for (i = h & (t->cap - 1); t->slots[i].key; i = (i + 1) & (t->cap - 1))
		if (t->slots[i].hash == h && !strcmp(t->slots[i].key, key)) {
			t->slots[i].val = val;
			return 0;
		}
	t->slots[i].key = key;
	t->slots[i].val = val;
	t->slots[i].hash = h;
	t->n++;
	return 0;
}

/* ---- arena helpers --------------------------------------------------------------------------- */

void *sema_alloc(struct sema *s, size_t n)
{
	void *p = ast_alloc(s->arena, n ? n : 1);

	if (!p)
		s->oom = 1;
	return p;
}

struct stab *sema_tab(struct sema *s)
{
	struct stab *t;

	if (s->ntabs == s->captabs) {
		int ncap = s->captabs ? s->captabs * 2 : 32;
		struct stab **nt = realloc(s->tabs, (size_t)ncap * sizeof *nt);
		if (!nt) {
			s->oom = 1;
			return NULL;
		}
		s->tabs = nt;
		s->captabs = ncap;
	}
	if (!(t = stab_new())) {
		s->oom = 1;
		return NULL;
	}
	s->tabs[s->ntabs++] = t;
	return t;
}

void *sema_push(struct sema *s, void **arr, int *n, int *cap, size_t elem)
{
	char *p;

	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 4;
		char *na = sema_alloc(s, (size_t)ncap * elem);
		if (!na)
			return NULL;
		if (*n)
			memcpy(na, *arr, (size_t)*n * elem);
		*arr = na;
		*cap = ncap;
	}
	p = (char *)*arr + (size_t)*n * elem;
	memset(p, 0, elem);
	(*n)++;
	return p;
}

char *sema_fmt(struct sema *s, const char *fmt, ...)
{
	va_list ap;
	int len;
	char *p;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0 || !(p = sema_alloc(s, (size_t)len + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return p;
}

struct snode *sema_find_var(struct sbody *b, const char *name)
{
	for (; b; b = b->parent)
		if (b->owner && b->owner->var && !strcmp(b->owner->var, name))
			return b->owner;
	return NULL;
}

int sema_body_encloses(const struct sbody *a, const struct sbody *b)
{
	while (b && b->depth > a->depth)
		b = b->parent;
	return a == b;
}

/* ---- driver ------------------------------------------------------------------------------- */

static struct spipe *choose_entry(struct sema *s, const char *name)
{
	struct sfile *root = s->nfiles ? s->files[0] : NULL;
	const struct ast_file *af;

	if (!root)
		return NULL;
	af = root->src->ast;
	if (name) {
		struct spipe *p = stab_get(root->pipes, name);
		if (!p)
			diag_error(s->d, "E101", (struct loc){root->src->file, 0, 0, 0, 0},
				   "no pipeline named '%s' in this file", name);
		return p;
	}
	if (!af->npipelines) {
		diag_error(s->d, "E101", (struct loc){root->src->file, 0, 0, 0, 0},
			   "no pipeline in this file");
		return NULL;
	}
	return stab_get(root->pipes, af->pipelines[af->npipelines - 1]->name.s);
}

struct sema *sema_check(struct src_program *prog, struct diag *d, const char *entry_name)
{
	struct sema *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->d = d;
	s->prog = prog;
	if (!(s->arena = ast_arena_new())) {
		free(s);
		return NULL;
	}
	sema_decl(s);
	if (s->oom)
		goto oom;
	s->entry = choose_entry(s, entry_name);
	sema_pipes(s);
	if (s->oom)
		goto oom;
	sema_graph(s);
	if (s->oom)
		goto oom;
	sema_lint(s);
	if (s->oom)
		goto oom;
	return s;
oom:
	sema_free(s);
	return NULL;
}

void sema_free(struct sema *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->ntabs; i++)
		stab_free(s->tabs[i]);
	free(s->tabs);
	ast_arena_free(s->arena);
	free(s);
}

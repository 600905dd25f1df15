/* sema_graph.c - dependency edges, cycles and topological order (SPEC §4.6, §4.10).
 *
 * An edge is made by a reference to another step's output (in an input, argument, condition or
 * loop items) and by `after`. Edges live between nodes of the same body: a reference across
 * bodies becomes an edge between the two ancestors that sit in the deepest common body (a step
 * in a loop that uses a top-level step makes the loop depend on it).
 *
 * Each body is sorted with Kahn's algorithm and a min-heap on source order, so ties keep source
 * order; nodes left over are on or behind a cycle, which is reported once per cycle with every
 * hop's location (E301). Recursive sub-pipelines are found by a DFS over the pipeline call
 * graph. Everything is iterative or bounded by the loop nesting depth: a 1M-step chain is fine. */
#include "sema.h"

#include <stdlib.h>
#include <string.h>

/* The ancestor of N (or N) whose parent is body C. */
static struct snode *ancestor_in(struct snode *n, const struct sbody *c)
{
	while (n && n->parent != c)
		n = n->parent ? n->parent->owner : NULL;
	return n;
}

static struct sbody *common_body(struct sbody *a, struct sbody *b)
{
	while (a && b && a->depth > b->depth)
		a = a->parent;
	while (a && b && b->depth > a->depth)
		b = b->parent;
	while (a && b && a != b) {
		a = a->parent;
		b = b->parent;
	}
	return a == b ? a : NULL;
}

static void add_edge(struct sema *s, struct snode *n, struct snode *target, struct loc loc,
		     int after)
{
	struct sbody *c = common_body(n->parent, target->parent);
	struct snode *an, *at;
	struct sdep *d;

	if (!c)
		return;
	an = ancestor_in(n, c);
	at = ancestor_in(target, c);
	if (!an || !at)
		return;
	if (an == at) {
		if (n == target)
			diag_error(s->d, "E301", loc, "dependency cycle: step '%s' uses itself", n->name);
		else
			diag_error(s->d, "E301", loc, "dependency cycle: the items of a loop cannot "
				   "depend on a step inside that loop ('%s')", target->name);
		n->error = 1;
		return;
	}
	/* duplicates are removed once all edges are in (dedup_deps): no quadratic scans */
	if (an->ndeps && an->deps[an->ndeps - 1].node == at) {
		if (!after)
			an->deps[an->ndeps - 1].after = 0;
		return;
	}
	if (!(d = sema_push(s, (void **)&an->deps, &an->ndeps, &an->capdeps, sizeof *d)))
		return;
	d->node = at;
	d->loc = loc;
	d->after = after;
	d->seq = an->ndeps - 1;
}

static int dep_cmp(const void *a, const void *b)
{
	const struct sdep *x = a, *y = b;

	if (x->node != y->node)
		return x->node->order < y->node->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts N's dependencies by source order of the target and removes duplicates (the first
 * reference's location is kept; the edge carries data if any reference does). */
static void dedup_deps(struct snode *n)
{
	int j = 0;

	if (n->ndeps > 1) {
		if (n->ndeps <= 16) {
			/* a step has a few dependencies: insertion sort (dep_cmp is a total order,
			 * so the result is qsort's) */
			for (int i = 1; i < n->ndeps; i++) {
				struct sdep d = n->deps[i];
				int k = i;

				while (k > 0 && dep_cmp(&n->deps[k - 1], &d) > 0) {
					n->deps[k] = n->deps[k - 1];
					k--;
				}
				n->deps[k] = d;
			}
		} else {
			qsort(n->deps, (size_t)n->ndeps, sizeof *n->deps, dep_cmp);
		}
		for (int i = 0; i < n->ndeps; i++) {
			if (j && n->deps[j - 1].node == n->deps[i].node) {
				n->deps[j - 1].after &= n->deps[i].after;
				continue;
			}
			n->deps[j++] = n->deps[i];
		}
		n->ndeps = j;
	}
	if (n->kind == SN_LOOP)
		for (int i = 0; i < n->body->n; i++)
			dedup_deps(n->body->nodes[i]);
}

static void edges_of(struct sema *s, struct snode *n, const struct sval *v)
{
	if (!v)
		return;
	if ((v->kind == SV_OUTPUT || v->kind == SV_COLLECT) && v->node)
		add_edge(s, n, v->node, v->loc, 0);
	for (int i = 0; i < v->nitems; i++)
		edges_of(s, n, v->items[i]);
}

/* Returns the number of step references in V: at most that many edges come from it. */
static int count_refs(const struct sval *v)
{
	int k;

	if (!v)
		return 0;
	k = (v->kind == SV_OUTPUT || v->kind == SV_COLLECT) && v->node;
	for (int i = 0; i < v->nitems; i++)
		k += count_refs(v->items[i]);
	return k;
}

static void node_edges(struct sema *s, struct snode *n)
{
	if (!n->parent->owner && !n->capdeps) {
		/* A top-level node gets its own edges only (add_edge's ancestor is the node):
		 * size its list once instead of growing it from 4 (memory of a big pipeline). */
		int k = count_refs(n->when) + count_refs(n->items);

		for (int i = 0; i < n->nbranches; i++)
			if (n->branches[i].c)
				k += count_refs(n->branches[i].c->v);
		for (int i = 0; i < n->ninputs; i++)
			k += count_refs(n->inputs[i].value);
		if (n->kind != SN_LOOP && n->own)
			k += n->own->nafter;
		if (k && (n->deps = sema_alloc(s, (size_t)k * sizeof *n->deps)))
			n->capdeps = k;
	}
	for (int i = 0; i < n->nbranches; i++)
		if (n->branches[i].c)
			edges_of(s, n, n->branches[i].c->v);
	edges_of(s, n, n->when);
	edges_of(s, n, n->items);
	for (int i = 0; i < n->ninputs; i++)
		edges_of(s, n, n->inputs[i].value);
	if (n->kind != SN_LOOP && n->own)
		for (int i = 0; i < n->own->nafter; i++) {
			const struct safter *a = &n->own->after[i];
			struct snode *t = stab_get(n->pipe->steps, a->name);
			if (!t || t->kind == SN_LOOP) {
				diag_error(s->d, "E101", a->loc, "undefined step '%s'", a->name);
				continue;
			}
			if (t->error)
				continue;
			if (t->is_finally != n->is_finally) {
				diag_error(s->d, "E305", a->loc, n->is_finally ?
					   "a finally step runs after every other step; 'after %s' is "
					   "not needed" : "'%s' is a finally step: nothing can run after it",
					   a->name);
				continue;
			}
			add_edge(s, n, t, a->loc, 1);
		}
	if (n->kind == SN_LOOP)
		for (int i = 0; i < n->body->n; i++)
			node_edges(s, n->body->nodes[i]);
}

/* ---- topological sort ------------------------------------------------------------------------ */

struct heap {
	int *v;
	int n;
	struct snode **nodes;
};

static int less(const struct heap *h, int a, int b)
{
	return h->nodes[a]->order < h->nodes[b]->order;
}

static void heap_push(struct heap *h, int x)
{
	int i = h->n++;

	h->v[i] = x;
	while (i > 0) {
		int p = (i - 1) / 2;
		if (!less(h, h->v[i], h->v[p]))
			break;
		int t = h->v[i];
		h->v[i] = h->v[p];
		h->v[p] = t;
		i = p;
	}
}

static int heap_pop(struct heap *h)
{
	int top = h->v[0], i = 0;

	h->v[0] = h->v[--h->n];
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && less(h, h->v[l], h->v[m]))
			m = l;
		if (r < h->n && less(h, h->v[r], h->v[m]))
			m = r;
		if (m == i)
			break;
		int t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
	return top;
}

static void report_cycle(struct sema *s, struct sbody *b, int start, const char *done)
{
	int n = b->n, len = 0, x = start, first, best;
	int *pos = malloc((size_t)n * sizeof *pos), *path = malloc((size_t)n * sizeof *path);
	struct snode *const *nodes = b->nodes;
	char *text = NULL;
	size_t tlen = 0;

	if (!pos || !path)
		goto out;
	for (int i = 0; i < n; i++)
		pos[i] = -1;
	for (;;) {
		struct snode *nd = nodes[x];
		int next = -1;
		pos[x] = len;
		path[len++] = x;
		for (int i = 0; i < nd->ndeps; i++)
			if (!done[nd->deps[i].node->idx]) {
				next = nd->deps[i].node->idx;
				break;
			}
		if (next < 0)
			goto out; /* cannot happen: a leftover node has a leftover dependency */
		if (pos[next] >= 0) {
			first = pos[next];
			break;
		}
		x = next;
	}
	/* the cycle is path[first..len); start it at its earliest node */
	best = first;
	for (int i = first; i < len; i++)
		if (nodes[path[i]]->order < nodes[path[best]]->order)
			best = i;
	{
		int clen = len - first;
		FILE *m = open_memstream(&text, &tlen);
		if (!m)
			goto out;
		for (int k = 0; k <= clen; k++) {
			int i = first + (best - first + k) % clen;
			fprintf(m, "%s%s", k ? " -> " : "", nodes[path[i]]->name);
		}
		fclose(m);
		diag_error(s->d, "E301", nodes[path[best]]->name_loc, "dependency cycle: %s", text);
		for (int k = 0; k < clen; k++) {
			int i = first + (best - first + k) % clen;
			int j = first + (best - first + k + 1) % clen;
			struct snode *from = nodes[path[i]], *to = nodes[path[j]];
			for (int d = 0; d < from->ndeps; d++)
				if (from->deps[d].node == to) {
					diag_note(s->d, from->deps[d].loc, "'%s' %s '%s' here", from->name,
						  from->deps[d].after ? "runs after" : "uses", to->name);
					break;
				}
		}
		for (int k = 0; k < clen; k++)
			nodes[path[first + k]]->error = 1;
	}
out:
	free(text);
	free(pos);
	free(path);
}

static void sort_body(struct sema *s, struct sbody *b)
{
	int n = b->n, nout = 0, *cnt = NULL, *off = NULL, *users = NULL;
	struct snode **out = NULL;
	char *done = NULL;
	struct heap h = {NULL, 0, b->nodes};
	size_t nedges = 0;

	for (int i = 0; i < n; i++)
		if (b->nodes[i]->kind == SN_LOOP)
			sort_body(s, b->nodes[i]->body);
	if (n <= 0)
		return;
	for (int i = 0; i < n; i++) {
		b->nodes[i]->idx = i;
		b->nodes[i]->indeg = b->nodes[i]->ndeps;
		nedges += (size_t)b->nodes[i]->ndeps;
	}
	cnt = calloc((size_t)(unsigned)n + 1, sizeof *cnt);
	off = calloc((size_t)(unsigned)n + 1, sizeof *off);
	users = malloc((nedges ? nedges : 1) * sizeof *users);
	h.v = malloc((size_t)n * sizeof *h.v);
	out = sema_alloc(s, (size_t)n * sizeof *out);
	done = calloc((size_t)n, 1);
	if (!cnt || !off || !users || !h.v || !out || !done) {
		s->oom = 1;
		goto out;
	}
	for (int i = 0; i < n; i++)
		for (int d = 0; d < b->nodes[i]->ndeps; d++)
			cnt[b->nodes[i]->deps[d].node->idx]++;
	for (int i = 0; i < n; i++)
		off[i + 1] = off[i] + cnt[i];
	memset(cnt, 0, (size_t)n * sizeof *cnt);
	for (int i = 0; i < n; i++)
		for (int d = 0; d < b->nodes[i]->ndeps; d++) {
			int t = b->nodes[i]->deps[d].node->idx;
			users[off[t] + cnt[t]++] = i;
		}
	for (int i = 0; i < n; i++)
		if (!b->nodes[i]->indeg)
			heap_push(&h, i);
	for (;;) {
		while (h.n) {
			int x = heap_pop(&h);
			done[x] = 1;
			out[nout++] = b->nodes[x];
			for (int u = off[x]; u < off[x + 1]; u++)
				if (--b->nodes[users[u]]->indeg == 0)
					heap_push(&h, users[u]);
		}
		if (nout == n)
			break;
		/* a cycle: report the one reachable from the earliest leftover node, then remove
		 * its nodes and continue */
		{
			int start = -1;
			for (int i = 0; i < n; i++)
				if (!done[i] && (start < 0 || b->nodes[i]->order < b->nodes[start]->order))
					start = i;
			report_cycle(s, b, start, done);
			for (int i = 0; i < n; i++)
				if (!done[i] && b->nodes[i]->error && b->nodes[i]->indeg > 0) {
					b->nodes[i]->indeg = 0;
					heap_push(&h, i);
				}
			if (!h.n) { /* defensive: never loop forever */
				for (int i = 0; i < n; i++)
					if (!done[i]) {
						done[i] = 1;
						out[nout++] = b->nodes[i];
					}
			}
		}
	}
	memcpy(b->nodes, out, (size_t)n * sizeof *out);
out:
	free(cnt);
	free(off);
	free(users);
	free(h.v);
	free(done);
}

/* ---- recursive sub-pipelines ---------------------------------------------------------------- */

struct callpath {
	struct spipe *pipe;
	struct snode *step; /* the step in pipe that calls the next one */
};

static void find_calls(struct sema *s, struct spipe *p, struct sbody *b, struct callpath *path,
		       int depth);

static void visit(struct sema *s, struct spipe *p, struct callpath *path, int depth)
{
	if (p->visit == 2 || depth >= 64)
		return;
	p->visit = 1;
	path[depth].pipe = p;
	find_calls(s, p, &p->body, path, depth);
	p->visit = 2;
}

static void find_calls(struct sema *s, struct spipe *p, struct sbody *b, struct callpath *path,
		       int depth)
{
	for (int i = 0; i < b->n; i++) {
		struct snode *n = b->nodes[i];
		if (n->kind == SN_LOOP) {
			find_calls(s, p, n->body, path, depth);
			continue;
		}
		if (n->kind != SN_SUB || !n->sub)
			continue;
		path[depth].step = n;
		if (n->sub->visit == 1) {
			int from = depth;
			char *text = NULL;
			size_t tlen = 0;
			FILE *m;
			while (from > 0 && path[from].pipe != n->sub)
				from--;
			if (!(m = open_memstream(&text, &tlen)))
				return;
			for (int k = from; k <= depth; k++)
				fprintf(m, "%s -> ", path[k].pipe->name);
			fprintf(m, "%s", n->sub->name);
			fclose(m);
			diag_error(s->d, "E301", n->ast->callee.loc, "recursive sub-pipeline: %s", text);
			free(text);
			for (int k = from; k <= depth; k++)
				diag_note(s->d, path[k].step->ast->callee.loc,
					  "pipeline '%s' uses '%s' here (step '%s')", path[k].pipe->name,
					  path[k].step->sub->name, path[k].step->name);
			n->error = 1;
			n->sub->error = 1;
			p->error = 1;
			continue;
		}
		visit(s, n->sub, path, depth + 1);
		if (n->sub->error)
			p->error = 1;
	}
}

/* Nodes of P's IR with its sub-pipelines expanded, saturating above SEMA_MAX_NODES. Only called
 * when there is no recursion. */
static int64_t body_size(const struct sbody *b, int depth);

static int64_t pipe_size(struct spipe *p, int depth)
{
	if (p->size)
		return p->size;
	if (depth > 64)
		return SEMA_MAX_NODES + 1;
	p->size = body_size(&p->body, depth) + body_size(&p->fin, depth) + 1;
	return p->size;
}

static int64_t body_size(const struct sbody *b, int depth)
{
	int64_t n = 0;

	for (int i = 0; i < b->n && n <= SEMA_MAX_NODES; i++) {
		const struct snode *x = b->nodes[i];
		n++;
		if (x->kind == SN_LOOP)
			n += body_size(x->body, depth);
		else if (x->kind == SN_SUB && x->sub)
			n += pipe_size(x->sub, depth + 1);
	}
	return n > SEMA_MAX_NODES ? SEMA_MAX_NODES + 1 : n;
}

void sema_graph(struct sema *s)
{
	struct callpath path[65];

	for (int fi = 0; fi < s->nfiles && !s->oom; fi++) {
		struct sfile *f = s->files[fi];
		const struct ast_file *af = f->src->ast;
		for (int i = 0; i < af->npipelines; i++) {
			struct spipe *p = af->pipelines[i]->name.s ?
				stab_get(f->pipes, af->pipelines[i]->name.s) : NULL;
			if (!p || p->ast != af->pipelines[i] || p->state != 2)
				continue;
			for (int j = 0; j < p->body.n; j++)
				node_edges(s, p->body.nodes[j]);
			for (int j = 0; j < p->fin.n; j++)
				node_edges(s, p->fin.nodes[j]);
			for (int j = 0; j < p->body.n; j++)
				dedup_deps(p->body.nodes[j]);
			for (int j = 0; j < p->fin.n; j++)
				dedup_deps(p->fin.nodes[j]);
			sort_body(s, &p->body);
			sort_body(s, &p->fin);
		}
	}
	for (int fi = 0; fi < s->nfiles && !s->oom; fi++) {
		struct sfile *f = s->files[fi];
		const struct ast_file *af = f->src->ast;
		for (int i = 0; i < af->npipelines; i++) {
			struct spipe *p = af->pipelines[i]->name.s ?
				stab_get(f->pipes, af->pipelines[i]->name.s) : NULL;
			if (p && p->ast == af->pipelines[i] && p->state == 2 && !p->visit)
				visit(s, p, path, 0);
		}
	}
	if (s->entry && s->entry->state == 2 && !s->entry->error) {
		s->expanded = pipe_size(s->entry, 0);
		if (s->expanded > SEMA_MAX_NODES)
			diag_error(s->d, "E406", s->entry->ast->name.loc, "pipeline '%s' expands to more "
				   "than %lld nodes through its sub-pipelines", s->entry->name,
				   (long long)SEMA_MAX_NODES);
	}
}

/* graph.c - `kfpc graph`: the entry pipeline as Graphviz DOT (SPEC §10).
 *
 * Steps are boxes; loops and sub-pipelines are clusters labelled with what they iterate over or
 * call; a conditional node has a dashed border and its condition in its label; finally steps sit
 * in their own dotted cluster with dotted edges from a "run" node. Edges go from the step whose
 * output is used to the step that uses it (references into a loop or sub-pipeline point at the
 * cluster); `after` edges are dashed. Output order follows the IR's node order: deterministic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

struct gw {
	struct sema *s;
	FILE *f;
	char prefix[1024];
	int err;
	const struct snode *seen[64]; /* sources already drawn into the current node */
	int nseen;
	const struct snode *covered[64]; /* sources already drawn into an enclosing loop cluster */
	int ncovered;
};

/* Writes S escaped for a DOT double-quoted string. */
static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* Appends the source-like text of V to M. */
static void vtext(FILE *m, const struct sval *v, int top)
{
	switch (v->kind) {
	case SV_CONST: {
		const struct ast_expr *e = v->lit;
		if (e->kind == AST_EXPR_STRING)
			fprintf(m, "\"%s\"", e->u.str.s);
		else if (e->kind == AST_EXPR_INT)
			fprintf(m, "%lld", (long long)e->u.i);
		else if (e->kind == AST_EXPR_FLOAT)
			fprintf(m, "%g", e->u.f);
		else if (e->kind == AST_EXPR_BOOL)
			fputs(e->u.b ? "true" : "false", m);
		else if (e->kind == AST_EXPR_LIST) {
			fputc('[', m);
			for (int i = 0; i < e->u.list.nitems; i++) {
				struct sval it = {.kind = SV_CONST, .lit = e->u.list.items[i]};
				if (i)
					fputs(", ", m);
				vtext(m, &it, 0);
			}
			fputc(']', m);
		} else
			fputs("{...}", m);
		break;
	}
	case SV_PARAM:
	case SV_VAR:
		fputs(v->name, m);
		break;
	case SV_OUTPUT:
		fprintf(m, "%s.%s", v->node->name, v->name);
		break;
	case SV_COLLECT:
		fprintf(m, "collect(%s.%s)", v->node->name, v->name);
		break;
	case SV_RANGE:
		fprintf(m, "%lld..%lld", (long long)v->lo, (long long)v->hi);
		break;
	case SV_LIST:
		fputc('[', m);
		for (int i = 0; i < v->nitems; i++) {
			if (i)
				fputs(", ", m);
			vtext(m, v->items[i], 0);
		}
		fputc(']', m);
		break;
	case SV_OP:
		if (!strcmp(v->op, "len")) {
			fputs("len(", m);
			vtext(m, v->items[0], 1);
			fputc(')', m);
		} else if (!strcmp(v->op, "not")) {
			fputs("not ", m);
			vtext(m, v->items[0], 0);
		} else {
			if (!top)
				fputc('(', m);
			vtext(m, v->items[0], 0);
			fprintf(m, " %s ", v->op);
			vtext(m, v->items[1], 0);
			if (!top)
				fputc(')', m);
		}
		break;
	default:
		fputc('?', m);
	}
}

/* The condition of N as text, or NULL (caller frees). */
static char *cond_text(const struct snode *n)
{
	char *t = NULL;
	size_t len = 0;
	FILE *m;
	int k = 0;

	if (!n->nbranches && !n->when)
		return NULL;
	if (!(m = open_memstream(&t, &len)))
		return NULL;
	for (int i = 0; i < n->nbranches; i++) {
		const struct sval *c = n->branches[i].c ? n->branches[i].c->v : NULL;
		if (!c)
			continue;
		if (k++)
			fputs(" and ", m);
		if (n->branches[i].negated) {
			fputs("not ", m);
			vtext(m, c, 0);
		} else {
			vtext(m, c, n->nbranches == 1 && !n->when);
		}
	}
	if (n->when) {
		if (k++)
			fputs(" and ", m);
		vtext(m, n->when, k == 1);
	}
	fclose(m);
	return t;
}

/* The DOT node that stands for N when an edge points at it: a step itself, or the first step
 * inside a loop / sub-pipeline cluster (with lhead/ltail set). */
static const struct snode *rep(const struct snode *n, const char *out, char *pre, size_t presz)
{
	for (int guard = 0; n && guard < 256; guard++) {
		if (n->kind == SN_STEP)
			return n;
		if (n->kind == SN_SUB && out) {
			/* an edge out of a sub-pipeline leaves from the step producing that output */
			const struct sval *v = NULL;
			for (int i = 0; i < n->sub->noutputs; i++)
				if (!strcmp(n->sub->outputs[i].name, out))
					v = n->sub->outputs[i].value;
			if (v && (v->kind == SV_OUTPUT || v->kind == SV_COLLECT) && v->node) {
				size_t l = strlen(pre);
				snprintf(pre + l, presz - l, "%s/", n->name);
				out = v->name;
				n = v->node;
				continue;
			}
		}
		out = NULL;
		if (n->kind == SN_LOOP) {
			if (!n->body->n)
				return NULL;
			n = n->body->nodes[0];
		} else {
			size_t l = strlen(pre);
			if (!n->sub->body.n)
				return NULL;
			snprintf(pre + l, presz - l, "%s/", n->name);
			n = n->sub->body.nodes[0];
		}
	}
	return NULL;
}

static void cluster_name(FILE *f, const char *prefix, const struct snode *n)
{
	fputs("\"cluster_", f);
	esc(f, prefix);
	esc(f, n->name);
	fputc('"', f);
}

/* One edge from FROM (a node of the same pipeline instance) to TO. */
static void edge(struct gw *w, const struct snode *from, const char *out, const struct snode *to,
		 const char *style)
{
	char fp[1024], tp[1024];
	const struct snode *a, *b;

	snprintf(fp, sizeof fp, "%s", w->prefix);
	snprintf(tp, sizeof tp, "%s", w->prefix);
	a = rep(from, out, fp, sizeof fp);
	b = rep(to, NULL, tp, sizeof tp);
	if (!a || !b)
		return;
	fputs("  \"", w->f);
	esc(w->f, fp);
	esc(w->f, a->name);
	fputs("\" -> \"", w->f);
	esc(w->f, tp);
	esc(w->f, b->name);
	fputc('"', w->f);
	if (from != a || to != b || style) {
		int first = 1;
		fputs(" [", w->f);
		if (from != a) {
			fputs("ltail=", w->f);
			cluster_name(w->f, w->prefix, from);
			first = 0;
		}
		if (to != b) {
			fputs(first ? "lhead=" : ", lhead=", w->f);
			cluster_name(w->f, w->prefix, to);
			first = 0;
		}
		if (style)
			fprintf(w->f, "%sstyle=%s", first ? "" : ", ", style);
		fputc(']', w->f);
	}
	fputs(";\n", w->f);
}

static void body(struct gw *w, const struct sbody *b, int depth);

static void node(struct gw *w, const struct snode *n, int depth)
{
	char *cond = cond_text(n);
	char ind[64];

	snprintf(ind, sizeof ind, "%*s", 2 * depth, "");
	if (n->kind == SN_STEP) {
		fprintf(w->f, "%s\"", ind);
		esc(w->f, w->prefix);
		esc(w->f, n->name);
		fputs("\" [label=\"", w->f);
		esc(w->f, n->name);
		if (n->comp) {
			fputs("\\n", w->f);
			esc(w->f, n->sub_display);
		}
		if (cond) {
			fputs("\\nwhen ", w->f);
			esc(w->f, cond);
		}
		fputs(cond ? "\", style=dashed];\n" : "\"];\n", w->f);
	} else {
		char *items = NULL;
		size_t ilen = 0;
		FILE *m = open_memstream(&items, &ilen);
		if (!m) {
			free(cond);
			w->err = 1;
			return;
		}
		if (n->kind == SN_LOOP) {
			fprintf(m, "for %s in ", n->var);
			vtext(m, n->items, 1);
			if (n->parallel)
				fprintf(m, " parallel %lld", (long long)n->parallel);
		} else {
			fprintf(m, "%s = %s(...)", n->name, n->sub_display);
		}
		if (cond)
			fprintf(m, "\nwhen %s", cond);
		fclose(m);
		fprintf(w->f, "%ssubgraph ", ind);
		cluster_name(w->f, w->prefix, n);
		fputs(" {\n", w->f);
		fprintf(w->f, "%s  label=\"", ind);
		esc(w->f, items ? items : "");
		fprintf(w->f, "\";\n%s  style=%s;\n", ind, cond ? "dashed" : "rounded");
		free(items);
		if (n->kind == SN_LOOP) {
			body(w, n->body, depth + 1);
		} else {
			size_t l = strlen(w->prefix);
			snprintf(w->prefix + l, sizeof w->prefix - l, "%s/", n->name);
			body(w, &n->sub->body, depth + 1);
			body(w, &n->sub->fin, depth + 1);
			w->prefix[l] = 0;
		}
		fprintf(w->f, "%s}\n", ind);
	}
	free(cond);
}

static void body(struct gw *w, const struct sbody *b, int depth)
{
	for (int i = 0; i < b->n; i++)
		node(w, b->nodes[i], depth);
}

/* Edges: one per referenced step output, per distinct pair. */
static void edges_val(struct gw *w, const struct snode *to, const struct sval *v)
{
	if (!v)
		return;
	if (v->kind == SV_OUTPUT || v->kind == SV_COLLECT) {
		int dup = 0;
		for (int i = 0; i < w->nseen; i++)
			dup |= w->seen[i] == v->node;
		for (int i = 0; i < w->ncovered; i++) /* the loop cluster has that edge */
			dup |= w->covered[i] == v->node;
		if (!dup) {
			if (w->nseen < 64)
				w->seen[w->nseen++] = v->node;
			edge(w, v->node, v->name, to, v->kind == SV_COLLECT ? "bold" : NULL);
		}
	}
	for (int i = 0; i < v->nitems; i++)
		edges_val(w, to, v->items[i]);
}

static void edges(struct gw *w, const struct sbody *b)
{
	for (int i = 0; i < b->n; i++) {
		const struct snode *n = b->nodes[i];
		w->nseen = 0;
		for (int j = 0; j < n->nbranches; j++)
			if (n->branches[j].c)
				edges_val(w, n, n->branches[j].c->v);
		edges_val(w, n, n->when);
		edges_val(w, n, n->items);
		for (int j = 0; j < n->ninputs; j++)
			edges_val(w, n, n->inputs[j].value);
		if (n->kind != SN_LOOP && n->own)
			for (int j = 0; j < n->own->nafter; j++) {
				const struct snode *t = stab_get(n->pipe->steps, n->own->after[j].name);
				if (t)
					edge(w, t, NULL, n, "dashed");
			}
		if (n->kind == SN_LOOP) {
			int saved = w->ncovered;
			for (int j = 0; j < w->nseen && w->ncovered < 64; j++)
				w->covered[w->ncovered++] = w->seen[j];
			edges(w, n->body);
			w->ncovered = saved;
		} else if (n->kind == SN_SUB) {
			size_t l = strlen(w->prefix);
			snprintf(w->prefix + l, sizeof w->prefix - l, "%s/", n->name);
			edges(w, &n->sub->body);
			edges(w, &n->sub->fin);
			w->prefix[l] = 0;
		}
	}
}

int graph_dot(struct sema *s, FILE *f)
{
	struct gw w;
	const struct spipe *p = s->entry;

	if (!p)
		return -1;
	memset(&w, 0, sizeof w);
	w.s = s;
	w.f = f;
	fputs("digraph \"", f);
	esc(f, p->name);
	fputs("\" {\n  compound=true;\n  rankdir=TB;\n  graph [fontname=\"Helvetica\"];\n"
	      "  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\"];\n", f);
	body(&w, &p->body, 1);
	if (p->fin.n) {
		fputs("  subgraph \"cluster_finally\" {\n    label=\"finally\";\n    style=dotted;\n", f);
		body(&w, &p->fin, 2);
		fputs("  }\n  \"kfpc:run\" [shape=ellipse, label=\"", f);
		esc(f, p->name);
		fputs(" ends\"];\n", f);
	}
	edges(&w, &p->body);
	edges(&w, &p->fin);
	for (int i = 0; p->fin.n && i < p->body.n; i++) {
		/* the run ends after its body: keep the exit handlers below it */
		char pre[1024] = "";
		const struct snode *a = rep(p->body.nodes[i], NULL, pre, sizeof pre);
		if (!a)
			continue;
		fputs("  \"", f);
		esc(f, pre);
		esc(f, a->name);
		fputs("\" -> \"kfpc:run\" [style=invis];\n", f);
	}
	for (int i = 0; i < p->fin.n; i++) {
		fputs("  \"kfpc:run\" -> \"", f);
		esc(f, p->fin.nodes[i]->name);
		fputs("\" [style=dotted];\n", f);
	}
	fputs("}\n", f);
	return w.err || ferror(f) ? -1 : 0;
}

/* lower.c - the IR (SPEC §9): the checked entry pipeline as one JSON document, streamed.
 *
 * The document is never built as one json-c tree: every value (a parameter, a step node, a
 * loop's header) is built as a small json-c object, serialized with
 * json_object_to_json_string_ext() and freed, and only the punctuation between them (the
 * top-level member names, array brackets, commas and newlines) is written here. Memory stays
 * proportional to one node, time is linear in the number of nodes.
 *
 * Layout (stable, part of the golden tests): the top-level object has one member per line;
 * "params", "nodes", "finally" and "outputs" have one element per line; a loop's or
 * sub-pipeline's body is nested the same way, two more spaces in. Everything else is compact
 * json-c output. Node order is the topological order computed by sema_graph.c.
 *
 * Template strings (command, script text, env values, workdir) are written as templates:
 * `{{NS.FIELD}}` placeholders are kept and a literal `{` is written `\{` (SPEC §9). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

#define JFLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct lw {
	struct sema *s;
	FILE *f;
	int err;
	char *prefix;     /* id prefix of the current sub-pipeline instance ("" or "a/b/") */
	size_t plen, pcap;
	char *idbuf;
	size_t idcap;
	json_object *retry_default;
};

/* ---- small builders -------------------------------------------------------------------------- */

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *jdouble(double d)
{
	char buf[64];

	if (!isfinite(d))
		return json_object_new_int(0);
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		strcat(buf, ".0");
	return json_object_new_double_s(d, buf);
}

static json_object *jseconds(int64_t ms)
{
	if (ms % 1000 == 0)
		return json_object_new_int64(ms / 1000);
	return jdouble((double)ms / 1000.0);
}

static json_object *jloc(struct lw *w, struct loc l)
{
	json_object *o = json_object_new_object();
	const char *p = diag_file_path(w->s->d, l.file);

	json_object_object_add(o, "file", json_object_new_string(p ? p : ""));
	json_object_object_add(o, "line", json_object_new_int(l.line));
	json_object_object_add(o, "col", json_object_new_int(l.col));
	return o;
}

static json_object *jtype(const struct type *t)
{
	char buf[256];

	return json_object_new_string(type_name(t, buf, sizeof buf));
}

static json_object *jkind(const struct type *t)
{
	return json_object_new_string(type_is_artifact(t) ? "artifact" : "param");
}

/* A literal as JSON, converted to type T where T asks for floats. */
static json_object *jlit(const struct ast_expr *e, const struct type *t)
{
	json_object *o;

	switch (e->kind) {
	case AST_EXPR_STRING:
		return json_object_new_string_len(e->u.str.s, (int)e->u.str.len);
	case AST_EXPR_INT:
		if (t && t->kind == TYPE_FLOAT)
			return jdouble((double)e->u.i);
		return json_object_new_int64(e->u.i);
	case AST_EXPR_FLOAT:
		return jdouble(e->u.f);
	case AST_EXPR_BOOL:
		return json_object_new_boolean(e->u.b);
	case AST_EXPR_LIST:
		o = json_object_new_array_ext(e->u.list.nitems);
		for (int i = 0; i < e->u.list.nitems; i++)
			json_object_array_add(o, jlit(e->u.list.items[i],
						      t && t->kind == TYPE_LIST ? t->elem : NULL));
		return o;
	case AST_EXPR_MAP:
		o = json_object_new_object();
		for (int i = 0; i < e->u.map.nentries; i++)
			json_object_object_add(o, e->u.map.entries[i].key->u.str.s,
					       jlit(e->u.map.entries[i].value,
						    t && t->kind == TYPE_MAP ? t->elem : NULL));
		return o;
	default:
		return NULL;
	}
}

static const char *node_id(struct lw *w, const struct snode *n)
{
	size_t len = strlen(n->name);

	if (w->plen + len + 1 > w->idcap) {
		size_t ncap = (w->plen + len + 1) * 2;
		char *nb = realloc(w->idbuf, ncap);
		if (!nb) {
			w->err = 1;
			return n->name;
		}
		w->idbuf = nb;
		w->idcap = ncap;
	}
	memcpy(w->idbuf, w->prefix, w->plen);
	memcpy(w->idbuf + w->plen, n->name, len + 1);
	return w->idbuf;
}

static json_object *jvalue(struct lw *w, const struct sval *v)
{
	json_object *o = json_object_new_object(), *r, *a;

	switch (v->kind) {
	case SV_CONST:
		json_object_object_add(o, "const", jlit(v->lit, v->type));
		break;
	case SV_PARAM:
		json_object_object_add(o, "param", json_object_new_string(v->name));
		break;
	case SV_VAR:
		json_object_object_add(o, "var", json_object_new_string(v->name));
		break;
	case SV_OUTPUT:
	case SV_COLLECT:
		r = json_object_new_object();
		json_object_object_add(r, "node", json_object_new_string(node_id(w, v->node)));
		json_object_object_add(r, "name", json_object_new_string(v->name));
		json_object_object_add(o, v->kind == SV_OUTPUT ? "output" : "collect", r);
		break;
	case SV_RANGE:
		a = json_object_new_array_ext(2);
		json_object_array_add(a, json_object_new_int64(v->lo));
		json_object_array_add(a, json_object_new_int64(v->hi));
		json_object_object_add(o, "range", a);
		break;
	case SV_LIST:
		a = json_object_new_array_ext(v->nitems);
		for (int i = 0; i < v->nitems; i++)
			json_object_array_add(a, jvalue(w, v->items[i]));
		json_object_object_add(o, "list", a);
		break;
	case SV_OP:
		json_object_object_add(o, "op", json_object_new_string(v->op));
		a = json_object_new_array_ext(v->nitems);
		for (int i = 0; i < v->nitems; i++)
			json_object_array_add(a, jvalue(w, v->items[i]));
		json_object_object_add(o, "args", a);
		break;
	default: /* SV_ERROR, SV_INPUT: never reach lowering */
		json_object_object_add(o, "const", NULL);
		break;
	}
	return o;
}

static json_object *jnot(struct lw *w, const struct sval *v)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array_ext(1);

	json_object_object_add(o, "op", json_object_new_string("not"));
	json_object_array_add(a, jvalue(w, v));
	json_object_object_add(o, "args", a);
	return o;
}

static json_object *jwhen(struct lw *w, const struct snode *n)
{
	json_object *parts[258];
	int np = 0;

	for (int i = 0; i < n->nbranches && np < 256; i++) {
		const struct sval *c = n->branches[i].c ? n->branches[i].c->v : NULL;
		if (c)
			parts[np++] = n->branches[i].negated ? jnot(w, c) : jvalue(w, c);
	}
	if (n->when)
		parts[np++] = jvalue(w, n->when);
	if (!np)
		return NULL;
	if (np == 1)
		return parts[0];
	{
		json_object *o = json_object_new_object(), *a = json_object_new_array_ext(np);
		json_object_object_add(o, "op", json_object_new_string("and"));
		for (int i = 0; i < np; i++)
			json_object_array_add(a, parts[i]);
		json_object_object_add(o, "args", a);
		return o;
	}
}

static json_object *jdeps(struct lw *w, const struct snode *n)
{
	json_object *a = json_object_new_array_ext(n->ndeps);

	for (int i = 0; i < n->ndeps; i++)
		json_object_array_add(a, json_object_new_string(node_id(w, n->deps[i].node)));
	return a;
}

/* A template string for the engine (engine/subst.h): `\{` stays (a literal brace), an escaped
 * backslash becomes one backslash; everything else is literal. */
static json_object *jtmpl(const struct ast_expr *e)
{
	const char *t;
	size_t n, j = 0;
	char *buf;
	json_object *o;

	if (!e)
		return NULL;
	t = e->u.str.tmpl;
	n = e->u.str.tmpl_len;
	if (!memchr(t, '\\', n))
		return json_object_new_string_len(t, (int)n);
	if (!(buf = malloc(n + 1)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '\\' && i + 1 < n && t[i + 1] == '\\') {
			buf[j++] = '\\';
			i++;
		} else {
			buf[j++] = t[i];
		}
	}
	o = json_object_new_string_len(buf, (int)j);
	free(buf);
	return o;
}

static json_object *jinputs(struct lw *w, const struct sport *p, int n)
{
	json_object *a = json_object_new_array_ext(n);

	for (int i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(p[i].name));
		json_object_object_add(o, "type", jtype(p[i].type));
		json_object_object_add(o, "kind", jkind(p[i].type));
		json_object_object_add(o, "value", jvalue(w, p[i].value));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *jkv(const struct skv *kv, int n)
{
	json_object *o = json_object_new_object();

	for (int i = 0; i < n; i++)
		json_object_object_add(o, kv[i].key, json_object_new_string(kv[i].value->u.str.s));
	return o;
}

/* ---- writing ---------------------------------------------------------------------------------- */

static void put(struct lw *w, const char *s)
{
	if (fputs(s, w->f) == EOF)
		w->err = 1;
}

static void put_json(struct lw *w, json_object *o)
{
	put(w, o ? json_object_to_json_string_ext(o, JFLAGS) : "null");
	json_object_put(o);
}

static void indent(struct lw *w, int depth)
{
	for (int i = 0; i < depth; i++)
		put(w, "  ");
}

static json_object *step_object(struct lw *w, const struct snode *n)
{
	const struct sprops *p = n->props;
	json_object *o = json_object_new_object(), *x, *a;

	json_object_object_add(o, "id", json_object_new_string(node_id(w, n)));
	json_object_object_add(o, "kind", json_object_new_string("step"));
	json_object_object_add(o, "loc", jloc(w, n->loc));
	json_object_object_add(o, "deps", jdeps(w, n));
	json_object_object_add(o, "when", jwhen(w, n));
	json_object_object_add(o, "doc", jstr(n->doc));
	json_object_object_add(o, "component", n->comp ? jstr(n->sub_display) : NULL);
	json_object_object_add(o, "image", jstr(p->image));
	if (p->cmd == CMD_RUN) {
		a = json_object_new_array_ext(p->nrun);
		for (int i = 0; i < p->nrun; i++)
			json_object_array_add(a, jtmpl(p->run[i]));
		json_object_object_add(o, "command", a);
		json_object_object_add(o, "script", NULL);
	} else {
		json_object_object_add(o, "command", NULL);
		x = json_object_new_object();
		a = json_object_new_array_ext(p->ninterp);
		for (int i = 0; i < p->ninterp; i++)
			json_object_array_add(a, json_object_new_string(p->interp[i]));
		json_object_object_add(x, "interpreter", a);
		json_object_object_add(x, "text", jtmpl(p->script));
		json_object_object_add(o, "script", x);
	}
	a = json_object_new_array_ext(p->nenv);
	for (int i = 0; i < p->nenv; i++) {
		x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(p->env[i].key));
		if (p->env[i].secret)
			json_object_object_add(x, "secret", json_object_new_string(p->env[i].secret));
		else
			json_object_object_add(x, "value", jtmpl(p->env[i].value));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "env", a);
	json_object_object_add(o, "workdir", p->has_workdir ? jtmpl(p->workdir) : NULL);
	x = json_object_new_object();
	json_object_object_add(x, "cpu", p->has_cpu ? jstr(p->cpu) : NULL);
	json_object_object_add(x, "cpu_milli", json_object_new_int64(p->has_cpu ? p->cpu_milli : 0));
	json_object_object_add(x, "memory", p->has_memory ? jstr(p->memory) : NULL);
	json_object_object_add(x, "memory_bytes",
			       json_object_new_int64(p->has_memory ? p->memory_bytes : 0));
	json_object_object_add(x, "gpu", json_object_new_int64(p->has_gpu ? p->gpu : 0));
	json_object_object_add(o, "resources", x);
	if (p->has_retry) {
		static const char *const kinds[] = {"error", "timeout", "oom", "infra"};
		x = json_object_new_object();
		json_object_object_add(x, "limit", json_object_new_int64(p->retry_limit));
		json_object_object_add(x, "backoff", jseconds(p->backoff_ms));
		json_object_object_add(x, "factor", jdouble(p->factor));
		json_object_object_add(x, "max_backoff", jseconds(p->max_backoff_ms));
		a = json_object_new_array();
		for (int i = 0; i < 4; i++)
			if (p->retry_on & (1u << i))
				json_object_array_add(a, json_object_new_string(kinds[i]));
		json_object_object_add(x, "on", a);
		json_object_object_add(o, "retry", x);
	} else {
		json_object_object_add(o, "retry", json_object_get(w->retry_default));
	}
	json_object_object_add(o, "timeout", jseconds(p->has_timeout ? p->timeout_ms : 0));
	x = json_object_new_object();
	json_object_object_add(x, "enabled",
			       json_object_new_boolean(p->has_cache ? p->cache_enabled : 1));
	json_object_object_add(x, "max_age", jseconds(p->has_cache ? p->cache_max_age_ms : 0));
	json_object_object_add(o, "cache", x);
	x = json_object_new_object();
	json_object_object_add(x, "node_selector", jkv(p->node_selector, p->nnode_selector));
	a = json_object_new_array_ext(p->ntolerations);
	for (int i = 0; i < p->ntolerations; i++) {
		json_object *t = json_object_new_object();
		json_object_object_add(t, "key", jstr(p->tolerations[i].key));
		json_object_object_add(t, "operator", jstr(p->tolerations[i].op));
		json_object_object_add(t, "value", jstr(p->tolerations[i].value));
		json_object_object_add(t, "effect", jstr(p->tolerations[i].effect));
		json_object_array_add(a, t);
	}
	json_object_object_add(x, "tolerations", a);
	json_object_object_add(x, "labels", jkv(p->labels, p->nlabels));
	json_object_object_add(o, "placement", x);
	a = json_object_new_array_ext(p->nvolumes);
	for (int i = 0; i < p->nvolumes; i++) {
		json_object *v = json_object_new_object();
		json_object_object_add(v, "name", jstr(p->volumes[i].name));
		json_object_object_add(v, "mount", jstr(p->volumes[i].mount));
		json_object_object_add(v, "readonly", json_object_new_boolean(p->volumes[i].readonly));
		json_object_array_add(a, v);
	}
	json_object_object_add(o, "volumes", a);
	json_object_object_add(o, "inputs", jinputs(w, n->inputs, n->ninputs));
	a = json_object_new_array_ext(n->noutputs);
	for (int i = 0; i < n->noutputs; i++) {
		static const char *const from[] = {"path", "file", "stdout"};
		const struct sport *op = &n->outputs[i];
		x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(op->name));
		json_object_object_add(x, "type", jtype(op->type));
		json_object_object_add(x, "kind", jkind(op->type));
		json_object_object_add(x, "from", json_object_new_string(from[op->from]));
		json_object_object_add(x, "path", op->from == FROM_FILE ? jstr(op->path) : NULL);
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "outputs", a);
	return o;
}

/* Writes O without its closing brace (the caller continues the object). */
static void put_open(struct lw *w, json_object *o)
{
	const char *t = json_object_to_json_string_ext(o, JFLAGS);
	size_t len = strlen(t);

	if (len && fwrite(t, 1, len - 1, w->f) != len - 1)
		w->err = 1;
	json_object_put(o);
}

static void put_nodes(struct lw *w, const struct sbody *b, int depth);

static int push_prefix(struct lw *w, const char *name)
{
	size_t len = strlen(name);

	if (w->plen + len + 2 > w->pcap) {
		size_t ncap = (w->plen + len + 2) * 2;
		char *np = realloc(w->prefix, ncap);
		if (!np) {
			w->err = 1;
			return -1;
		}
		w->prefix = np;
		w->pcap = ncap;
	}
	memcpy(w->prefix + w->plen, name, len);
	w->plen += len;
	w->prefix[w->plen++] = '/';
	w->prefix[w->plen] = 0;
	return 0;
}

static void put_node(struct lw *w, const struct snode *n, int depth)
{
	json_object *o;

	indent(w, depth);
	if (n->kind == SN_STEP) {
		put_json(w, step_object(w, n));
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(node_id(w, n)));
	json_object_object_add(o, "kind", json_object_new_string(n->kind == SN_LOOP ? "loop" :
								   "pipeline"));
	json_object_object_add(o, "loc", jloc(w, n->loc));
	json_object_object_add(o, "deps", jdeps(w, n));
	json_object_object_add(o, "when", jwhen(w, n));
	if (n->kind == SN_LOOP) {
		json_object_object_add(o, "var", json_object_new_string(n->var));
		json_object_object_add(o, "items", jvalue(w, n->items));
		json_object_object_add(o, "parallelism", json_object_new_int64(n->parallel));
		put_open(w, o);
		put(w, ",\"body\":[");
		put_nodes(w, n->body, depth);
		put(w, "]}");
		return;
	}
	/* sub-pipeline instance: its inputs are evaluated here, its body under the prefix */
	{
		size_t saved = w->plen;
		const struct spipe *sub = n->sub;
		json_object_object_add(o, "pipeline", json_object_new_string(sub->name));
		json_object_object_add(o, "inputs", jinputs(w, n->inputs, n->ninputs));
		put_open(w, o);
		if (push_prefix(w, node_id(w, n)) < 0)
			return;
		put(w, ",\"body\":[");
		put_nodes(w, &sub->body, depth);
		put(w, "],\"finally\":[");
		put_nodes(w, &sub->fin, depth);
		put(w, "],\"outputs\":");
		{
			json_object *a = json_object_new_array_ext(sub->noutputs);
			for (int i = 0; i < sub->noutputs; i++) {
				json_object *x = json_object_new_object();
				json_object_object_add(x, "name", json_object_new_string(sub->outputs[i].name));
				json_object_object_add(x, "type", jtype(sub->outputs[i].type));
				json_object_object_add(x, "kind", jkind(sub->outputs[i].type));
				json_object_object_add(x, "value", jvalue(w, sub->outputs[i].value));
				json_object_array_add(a, x);
			}
			put_json(w, a);
		}
		put(w, "}");
		w->plen = saved;
		w->prefix[w->plen] = 0;
	}
}

static void put_nodes(struct lw *w, const struct sbody *b, int depth)
{
	if (!b->n)
		return;
	put(w, "\n");
	for (int i = 0; i < b->n && !w->err; i++) {
		put_node(w, b->nodes[i], depth + 1);
		put(w, i + 1 < b->n ? ",\n" : "\n");
	}
	indent(w, depth);
}

/* ---- used user types -------------------------------------------------------------------------- */

static void mark_type(const struct type *t)
{
	while (t && (t->kind == TYPE_LIST || t->kind == TYPE_MAP))
		t = t->elem;
	if (t && t->kind == TYPE_ARTIFACT)
		for (const struct arttype *a = t->art; a && !a->builtin; a = a->base)
			((struct arttype *)a)->used = 1;
}

static void mark_body(const struct sbody *b, int depth);

static void mark_pipe(const struct spipe *p, int depth)
{
	if (depth > 64)
		return;
	for (int i = 0; i < p->noutputs; i++)
		mark_type(p->outputs[i].type);
	mark_body(&p->body, depth);
	mark_body(&p->fin, depth);
}

static void mark_body(const struct sbody *b, int depth)
{
	for (int i = 0; i < b->n; i++) {
		const struct snode *n = b->nodes[i];
		for (int j = 0; j < n->ninputs; j++)
			mark_type(n->inputs[j].type);
		for (int j = 0; j < n->noutputs; j++)
			mark_type(n->outputs[j].type);
		if (n->kind == SN_LOOP)
			mark_body(n->body, depth);
		else if (n->kind == SN_SUB)
			mark_pipe(n->sub, depth + 1);
	}
}

/* ---- document -------------------------------------------------------------------------------- */

static json_object *jparam(struct lw *w, const struct sparam *p)
{
	json_object *o = json_object_new_object(), *c = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "type", jtype(p->type));
	json_object_object_add(o, "default", p->def ? jlit(p->def, p->type) : NULL);
	json_object_object_add(o, "required", json_object_new_boolean(!p->def));
	json_object_object_add(o, "doc", jstr(p->doc));
	if (p->has_min)
		json_object_object_add(c, "min", jlit(p->min, p->type));
	if (p->has_max)
		json_object_object_add(c, "max", jlit(p->max, p->type));
	if (p->one_of)
		json_object_object_add(c, "one_of", jlit(p->one_of, NULL));
	if (p->regex)
		json_object_object_add(c, "regex", json_object_new_string(p->regex));
	json_object_object_add(o, "constraints", c);
	json_object_object_add(o, "loc", jloc(w, p->loc));
	return o;
}

static void member(struct lw *w, const char *name, json_object *v)
{
	put(w, "  \"");
	put(w, name);
	put(w, "\": ");
	put_json(w, v);
	put(w, ",\n");
}

int lower_ir(struct sema *s, FILE *f)
{
	struct lw w;
	const struct spipe *p = s->entry;
	json_object *a;
	int rc;

	if (!p)
		return -1;
	memset(&w, 0, sizeof w);
	w.s = s;
	w.f = f;
	if (!(w.prefix = calloc(1, 64)))
		return -1;
	w.pcap = 64;
	w.retry_default = json_object_new_object();
	json_object_object_add(w.retry_default, "limit", json_object_new_int(0));
	json_object_object_add(w.retry_default, "backoff", json_object_new_int(1));
	json_object_object_add(w.retry_default, "factor", jdouble(2));
	json_object_object_add(w.retry_default, "max_backoff", json_object_new_int(300));
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("error"));
	json_object_array_add(a, json_object_new_string("timeout"));
	json_object_array_add(a, json_object_new_string("oom"));
	json_object_array_add(a, json_object_new_string("infra"));
	json_object_object_add(w.retry_default, "on", a);

	mark_pipe(p, 0);
	for (int i = 0; i < p->nparams; i++)
		mark_type(p->params[i].type);

	put(&w, "{\n");
	member(&w, "kfpc_ir", json_object_new_int(1));
	member(&w, "name", json_object_new_string(p->name));
	member(&w, "doc", jstr(p->ast->doc));
	member(&w, "loc", jloc(&w, p->ast->name.loc));
	a = json_object_new_array();
	for (int i = 0; i < s->nusertypes; i++) {
		const struct arttype *t = s->usertypes[i];
		if (t->used || t->loc.file == s->files[0]->src->file) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(t->name));
			json_object_object_add(o, "base", json_object_new_string(t->base ? t->base->name :
										"Artifact"));
			json_object_array_add(a, o);
		}
	}
	member(&w, "types", a);
	put(&w, "  \"params\": [");
	for (int i = 0; i < p->nparams; i++) {
		put(&w, i ? ",\n    " : "\n    ");
		put_json(&w, jparam(&w, &p->params[i]));
	}
	put(&w, p->nparams ? "\n  ],\n" : "],\n");
	member(&w, "parallelism", json_object_new_int64(p->parallelism));
	member(&w, "timeout", jseconds(p->timeout_ms));
	a = json_object_new_array();
	for (int i = 0; i < p->nschedules; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "cron", json_object_new_string(p->schedules[i].cron));
		json_object_object_add(o, "tz", json_object_new_string(p->schedules[i].tz));
		json_object_object_add(o, "loc", jloc(&w, p->schedules[i].loc));
		json_object_array_add(a, o);
	}
	member(&w, "schedules", a);
	put(&w, "  \"nodes\": [");
	put_nodes(&w, &p->body, 1);
	put(&w, "],\n  \"finally\": [");
	put_nodes(&w, &p->fin, 1);
	put(&w, "],\n  \"outputs\": [");
	for (int i = 0; i < p->noutputs; i++) {
		const struct sport *o = &p->outputs[i];
		json_object *x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(o->name));
		json_object_object_add(x, "type", jtype(o->type));
		json_object_object_add(x, "kind", jkind(o->type));
		json_object_object_add(x, "value", jvalue(&w, o->value));
		json_object_object_add(x, "doc", jstr(o->doc));
		json_object_object_add(x, "loc", jloc(&w, o->loc));
		put(&w, i ? ",\n    " : "\n    ");
		put_json(&w, x);
	}
	put(&w, p->noutputs ? "\n  ]\n}\n" : "]\n}\n");
	rc = w.err || ferror(f) ? -1 : 0;
	json_object_put(w.retry_default);
	free(w.prefix);
	free(w.idbuf);
	return rc;
}

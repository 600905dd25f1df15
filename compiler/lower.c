/* lower.c - the IR (SPEC §9): the checked entry pipeline as one JSON document, streamed.
 *
 * The document is never built as one json-c tree: every value (a parameter, a step node, a
 * loop's header) is built as a small json-c object, serialized with
 * json_object_to_json_string_ext() and freed, and only the punctuation between them (the
 * top-level member names, array brackets, commas and newlines) is written here, through one
 * output buffer (OUT_CAP) rather than many small stdio calls. Memory stays proportional to one
 * node (plus each node's serialized id, kept because dependencies repeat it), time is linear in
 * the number of nodes.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

#define JFLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The members of a step that depend only on its properties, shared with the previous step when
 * equal (consecutive steps usually share defaults). */
struct propkey {
	const char *image;
	const struct skv *env;
	int nenv;
	int has_cpu, has_memory, has_gpu;
	const char *cpu, *memory;
	int64_t gpu;
	int has_retry;
	int64_t limit, backoff, maxb;
	double factor;
	unsigned on;
	int64_t timeout;
	int has_cache, enabled;
	int64_t max_age;
};


/* A serialized JSON value (json-c output) kept for reuse. */
struct jtext {
	char *t;
	size_t n;
};

struct lw {
	struct sema *s;
	FILE *f;
	int err;
	char *out;        /* output buffer, written to f when full and at the end */
	size_t olen, ocap;
	char *prefix;     /* id prefix of the current sub-pipeline instance ("" or "a/b/") */
	size_t plen, pcap;
	char *idbuf;
	size_t idcap;
	json_object *retry_default;
	/* caches: json-c objects shared (by reference count) between the nodes that need the same
	 * value; every one is put once at the end */
	struct stab *strings;       /* short strings (names, types, kinds) -> json string */
	json_object **owned;        /* every object in the caches, for freeing */
	int nowned, capowned;
	json_object *empty_array, *empty_object;
	struct propkey last;        /* the key of the cached member texts below */
	int have_last;
	struct jtext image_str, env_str, res_str, retry_str, timeout_str, cache_str;
	struct jtext place_empty;   /* {"node_selector":{},"tolerations":[],"labels":{}} */
	struct jtext empty_str;     /* "" */
	struct jtext *file_strs;    /* per diag file id: the path, serialized */
	struct jtext *ids;          /* per node of the entry pipeline (by snode.order): its id,
				     * serialized on first use (ids are unique per step, but every
				     * dependency and reference repeats them) */
	int nids;
	struct stab *names;         /* short recurring strings (port names, types) -> struct jtext */
	struct jtext **names_owned; /* every entry of names, for freeing */
	int nnames, capnames;
	const struct type *tkeys[64]; /* direct-mapped cache: type -> its name in names */
	struct jtext *tvals[64];
	const char *nkeys[256];     /* direct-mapped cache: put_name()'s string (by address: the
				     * parser shares equal short names, ast_intern()) -> names */
	struct jtext *nvals[256];
	const char *skeys[256];     /* the same for put_tmpl()'s short strings ("sh", "-c") */
	struct jtext *svals[256];
	struct jtext smallint[1024]; /* 0..1023 serialized (columns, small line numbers) */
	json_object *sstr, *sint;   /* scratch scalars, re-set for each value */
	json_object **file_objs;    /* per diag file id: the path as a json string */
	int nfile_objs;
};

/* ---- small builders -------------------------------------------------------------------------- */

static void own(struct lw *w, json_object *o)
{
	if (w->nowned == w->capowned) {
		int ncap = w->capowned ? w->capowned * 2 : 64;
		json_object **n = realloc(w->owned, (size_t)ncap * sizeof *n);
		if (!n) {
			w->err = 1;
			return;
		}
		w->owned = n;
		w->capowned = ncap;
	}
	w->owned[w->nowned++] = o;
}

/* A new reference to the json string S, shared between all users of the same text. Used for
 * the small set of recurring strings (names, types, kinds, "step"). */
static json_object *jconst(struct lw *w, const char *s)
{
	json_object *o = w->strings ? stab_get(w->strings, s) : NULL;

	if (!o) {
		o = json_object_new_string(s);
		if (!o)
			return NULL;
		own(w, o);
		if (w->strings && stab_put(w->strings, json_object_get_string(o), o) < 0)
			w->err = 1;
	}
	return json_object_get(o);
}

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
	json_object *o = json_object_new_object(), *fo = NULL;

	if (l.file >= 0 && l.file < w->nfile_objs) {
		if (!w->file_objs[l.file]) {
			const char *p = diag_file_path(w->s->d, l.file);
			w->file_objs[l.file] = json_object_new_string(p ? p : "");
		}
		fo = json_object_get(w->file_objs[l.file]);
	}
	json_object_object_add(o, "file", fo ? fo : json_object_new_string(""));
	json_object_object_add(o, "line", json_object_new_int(l.line));
	json_object_object_add(o, "col", json_object_new_int(l.col));
	return o;
}

static json_object *jtype(struct lw *w, const struct type *t)
{
	char buf[256];

	return jconst(w, type_name(t, buf, sizeof buf));
}

static json_object *jkind(struct lw *w, const struct type *t)
{
	return jconst(w, type_is_artifact(t) ? "artifact" : "param");
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
		json_object_object_add(o, "param", jconst(w, v->name));
		break;
	case SV_VAR:
		json_object_object_add(o, "var", jconst(w, v->name));
		break;
	case SV_OUTPUT:
	case SV_COLLECT:
		r = json_object_new_object();
		json_object_object_add(r, "node", json_object_new_string(node_id(w, v->node)));
		json_object_object_add(r, "name", jconst(w, v->name));
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

/* A template string for the engine (SPEC §9, engine/subst.h): the lexer's template text as is:
 * `\\` is a literal backslash, `\{` a literal brace, `{{NS.FIELD}}` a placeholder. */
static json_object *jtmpl(const struct ast_expr *e)
{
	if (!e)
		return NULL;
	return json_object_new_string_len(e->u.str.tmpl, (int)e->u.str.tmpl_len);
}

static json_object *jinputs(struct lw *w, const struct sport *p, int n)
{
	json_object *a = json_object_new_array_ext(n);

	for (int i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", jconst(w, p[i].name));
		json_object_object_add(o, "type", jtype(w, p[i].type));
		json_object_object_add(o, "kind", jkind(w, p[i].type));
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

#define OUT_CAP ((size_t)1 << 20)

/* Writes the buffered output to the file. */
static void flush_out(struct lw *w)
{
	if (w->olen && fwrite(w->out, 1, w->olen, w->f) != w->olen)
		w->err = 1;
	w->olen = 0;
}

/* Appends S[0..N) to the output. */
static inline void put_n(struct lw *w, const char *s, size_t n)
{
	if (n > w->ocap - w->olen) {
		flush_out(w);
		if (n > w->ocap) {
			if (fwrite(s, 1, n, w->f) != n)
				w->err = 1;
			return;
		}
	}
	memcpy(w->out + w->olen, s, n);
	w->olen += n;
}

/* Appends S (the length of a literal is folded at compile time). */
static inline void put(struct lw *w, const char *s)
{
	put_n(w, s, strlen(s));
}

static inline void put_text(struct lw *w, const struct jtext *t)
{
	put_n(w, t->t, t->n);
}

static void put_json(struct lw *w, json_object *o)
{
	if (o) {
		size_t n;
		const char *t = json_object_to_json_string_length(o, JFLAGS, &n);

		if (t)
			put_n(w, t, n);
		else
			w->err = 1;
	} else {
		put(w, "null");
	}
	json_object_put(o);
}

static void indent(struct lw *w, int depth)
{
	for (int i = 0; i < depth; i++)
		put(w, "  ");
}

/* ---- streaming a step ------------------------------------------------------------------------
 *
 * Steps are the bulk of an IR, so a step is written member by member into one output buffer:
 * the member names and punctuation are written here, every value is encoded by json-c (scalars
 * through reusable scratch objects, everything else as small objects). Members that depend only
 * on the step's properties are serialized once and reused while consecutive steps share them;
 * node ids and short recurring strings (port names, types) are serialized once per document. */

/* Strings up to this length go through name_text(). */
#define SHORT_STR 8

/* A short recurring string, serialized once (below). */
static struct jtext *name_text(struct lw *w, const char *s);

static void put_jstr_len(struct lw *w, const char *s, size_t len)
{
	const char *t;
	size_t n;

	if (!s) {
		put(w, "null");
		return;
	}
	if (!len) { /* json-c 0.16 leaks when a string is set to "" (tests/compile: valgrind) */
		put_text(w, &w->empty_str);
		return;
	}
	if (len <= SHORT_STR && !memchr(s, 0, len)) {
		/* short strings recur ("sh", "-c"): serialized once, like names */
		char key[SHORT_STR + 1];
		struct jtext *c;

		memcpy(key, s, len);
		key[len] = 0;
		if ((c = name_text(w, key)))
			put_text(w, c);
		return;
	}
	if (json_object_set_string_len(w->sstr, s, (int)len) != 1 ||
	    !(t = json_object_to_json_string_length(w->sstr, JFLAGS, &n))) {
		w->err = 1;
		return;
	}
	put_n(w, t, n);
}

static void put_jstr(struct lw *w, const char *s)
{
	put_jstr_len(w, s, s ? strlen(s) : 0);
}

static void put_jint(struct lw *w, int64_t v)
{
	struct jtext *c = v >= 0 && v < 1024 ? &w->smallint[v] : NULL;
	const char *t;
	size_t n;

	if (c && c->t) {
		put_text(w, c);
		return;
	}
	if (v >= 0) {
		/* a non-negative integer is its decimal digits (what json-c prints with "%" PRId64,
		 * without a snprintf per source line number) */
		char d[24];
		size_t k = sizeof d;
		uint64_t u = (uint64_t)v;

		do {
			d[--k] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (!c) {
			put_n(w, d + k, sizeof d - k);
			return;
		}
	}
	json_object_set_int64(w->sint, v);
	if (!(t = json_object_to_json_string_length(w->sint, JFLAGS, &n))) {
		w->err = 1;
		return;
	}
	if (c && (c->t = malloc(n + 1))) {
		memcpy(c->t, t, n + 1);
		c->n = n;
	}
	put_n(w, t, n);
}

/* Sets *T to the serialized text of O (consumed, may be NULL: "null"). Returns 0, or -1 when out
 * of memory (*T empty). */
static int jtext(struct jtext *t, json_object *o)
{
	size_t n = 4;
	const char *s = o ? json_object_to_json_string_length(o, JFLAGS, &n) : "null";

	t->t = s ? malloc(n + 1) : NULL;
	t->n = t->t ? n : 0;
	if (t->t)
		memcpy(t->t, s, n + 1);
	json_object_put(o);
	return t->t ? 0 : -1;
}

static void put_cached(struct lw *w, struct jtext *slot, json_object *fresh)
{
	free(slot->t);
	if (jtext(slot, fresh) < 0)
		w->err = 1;
	else
		put_text(w, slot);
}

/* A short recurring string S (a port name, a type name), serialized once: the cached text, or
 * NULL when out of memory. */
static struct jtext *name_text(struct lw *w, const char *s)
{
	struct jtext *t = stab_get(w->names, s);

	if (!t) {
		size_t len = strlen(s);
		char *key;

		if (w->nnames == w->capnames) {
			int ncap = w->capnames ? w->capnames * 2 : 64;
			struct jtext **nn = realloc(w->names_owned, (size_t)ncap * sizeof *nn);
			if (!nn) {
				w->err = 1;
				return NULL;
			}
			w->names_owned = nn;
			w->capnames = ncap;
		}
		/* the entry and a copy of its key in one block */
		if (!(t = malloc(sizeof *t + len + 1))) {
			w->err = 1;
			return NULL;
		}
		key = (char *)(t + 1);
		memcpy(key, s, len + 1);
		if (jtext(t, json_object_new_string_len(s, (int)len)) < 0 ||
		    stab_put(w->names, key, t) < 0) {
			free(t->t);
			free(t);
			w->err = 1;
			return NULL;
		}
		w->names_owned[w->nnames++] = t;
	}
	return t;
}

static void put_name(struct lw *w, const char *s)
{
	size_t h = ((uintptr_t)s >> 3) & 255;
	struct jtext *t;

	if (!s) {
		put(w, "null");
		return;
	}
	if (w->nkeys[h] == s) { /* names live as long as the tree: an address is never reused */
		put_text(w, w->nvals[h]);
		return;
	}
	t = name_text(w, s);
	if (t) {
		w->nkeys[h] = s;
		w->nvals[h] = t;
		put_text(w, t);
	}
}

/* The name of type T, serialized (cached by T's address: types never change). */
static void put_type(struct lw *w, const struct type *t)
{
	size_t h = ((uintptr_t)t >> 4) & 63;

	if (w->tkeys[h] != t || !w->tvals[h]) {
		char tn[256];
		struct jtext *j = name_text(w, type_name(t, tn, sizeof tn));

		if (!j)
			return;
		w->tkeys[h] = t;
		w->tvals[h] = j;
	}
	put_text(w, w->tvals[h]);
}

static const char *node_id(struct lw *w, const struct snode *n);

/* The id of node N, serialized (cached for the entry pipeline's own nodes). */
static void put_id(struct lw *w, const struct snode *n)
{
	struct jtext *t;
	const char *id;
	const char *s;
	size_t len;

	if (w->plen || n->pipe != w->s->entry || n->order < 0 || n->order >= w->nids) {
		put_jstr(w, node_id(w, n));
		return;
	}
	t = &w->ids[n->order];
	if (!t->t) {
		id = node_id(w, n);
		if (json_object_set_string_len(w->sstr, id, (int)strlen(id)) != 1 ||
		    !(s = json_object_to_json_string_length(w->sstr, JFLAGS, &len)) ||
		    !(t->t = ast_alloc(w->s->arena, len + 1))) {
			w->err = 1;
			return;
		}
		memcpy(t->t, s, len + 1);
		t->n = len;
	}
	put_text(w, t);
}

static void put_loc(struct lw *w, struct loc l)
{
	put(w, "{\"file\":");
	if (l.file >= 0 && l.file < w->nfile_objs) {
		if (!w->file_strs[l.file].t) {
			const char *p = diag_file_path(w->s->d, l.file);
			json_object *o = json_object_new_string(p ? p : "");
			if (jtext(&w->file_strs[l.file], o) < 0) {
				w->err = 1;
				return;
			}
		}
		put_text(w, &w->file_strs[l.file]);
	} else {
		put(w, "\"\"");
	}
	put(w, ",\"line\":");
	put_jint(w, l.line);
	put(w, ",\"col\":");
	put_jint(w, l.col);
	put(w, "}");
}

/* A template string (see jtmpl) straight to the output. */
static void put_tmpl(struct lw *w, const struct ast_expr *e)
{
	const char *s;
	size_t len, h;
	struct jtext *t;

	if (!e) {
		put(w, "null");
		return;
	}
	s = e->u.str.tmpl;
	len = e->u.str.tmpl_len;
	h = ((uintptr_t)s >> 3) & 255;
	if (s && w->skeys[h] == s) { /* a short string seen before ("sh", "-c"): see put_name() */
		put_text(w, w->svals[h]);
		return;
	}
	if (!s || !len || len > SHORT_STR || memchr(s, 0, len) || s[len]) {
		put_jstr_len(w, s, len);
		return;
	}
	if ((t = name_text(w, s))) {
		w->skeys[h] = s;
		w->svals[h] = t;
		put_text(w, t);
	}
}

static void put_value(struct lw *w, const struct sval *v)
{
	switch (v->kind) {
	case SV_PARAM:
		put(w, "{\"param\":");
		put_name(w, v->name);
		put(w, "}");
		return;
	case SV_VAR:
		put(w, "{\"var\":");
		put_name(w, v->name);
		put(w, "}");
		return;
	case SV_OUTPUT:
	case SV_COLLECT:
		put(w, v->kind == SV_OUTPUT ? "{\"output\":{\"node\":" : "{\"collect\":{\"node\":");
		put_id(w, v->node);
		put(w, ",\"name\":");
		put_name(w, v->name);
		put(w, "}}");
		return;
	case SV_CONST:
		if (v->lit->kind == AST_EXPR_STRING) {
			put(w, "{\"const\":");
			put_jstr_len(w, v->lit->u.str.s, v->lit->u.str.len);
			put(w, "}");
			return;
		}
		if (v->lit->kind == AST_EXPR_INT && !(v->type && v->type->kind == TYPE_FLOAT)) {
			put(w, "{\"const\":");
			put_jint(w, v->lit->u.i);
			put(w, "}");
			return;
		}
		/* fall through */
	default:
		put_json(w, jvalue(w, v));
	}
}

static void put_inputs(struct lw *w, const struct sport *p, int n)
{
	put(w, "[");
	for (int i = 0; i < n; i++) {
		put(w, i ? ",{\"name\":" : "{\"name\":");
		put_name(w, p[i].name);
		put(w, ",\"type\":");
		put_type(w, p[i].type);
		put(w, type_is_artifact(p[i].type) ? ",\"kind\":\"artifact\",\"value\":" :
						     ",\"kind\":\"param\",\"value\":");
		put_value(w, p[i].value);
		put(w, "}");
	}
	put(w, "]");
}

static void put_step(struct lw *w, const struct snode *n)
{
	struct sprops buf;
	const struct sprops *p = sema_node_props(w->s, n, &buf);
	struct propkey k, last = w->last;
	int have = w->have_last;
	json_object *x, *a;

	memset(&k, 0, sizeof k);
	k.image = p->image;
	k.env = p->env;
	k.nenv = p->nenv;
	k.has_cpu = p->has_cpu;
	k.cpu = p->has_cpu ? p->cpu : NULL;
	k.has_memory = p->has_memory;
	k.memory = p->has_memory ? p->memory : NULL;
	k.has_gpu = p->has_gpu;
	k.gpu = p->has_gpu ? p->gpu : 0;
	k.has_retry = p->has_retry;
	if (p->has_retry) {
		k.limit = p->retry_limit;
		k.backoff = p->backoff_ms;
		k.maxb = p->max_backoff_ms;
		k.factor = p->factor;
		k.on = p->retry_on;
	}
	k.timeout = p->has_timeout ? p->timeout_ms : 0;
	k.has_cache = p->has_cache;
	k.enabled = p->has_cache ? p->cache_enabled : 1;
	k.max_age = p->has_cache ? p->cache_max_age_ms : 0;

	put(w, "{\"id\":");
	put_id(w, n);
	put(w, ",\"kind\":\"step\",\"loc\":");
	put_loc(w, n->loc);
	put(w, ",\"deps\":[");
	for (int i = 0; i < n->ndeps; i++) {
		if (i)
			put(w, ",");
		put_id(w, n->deps[i].node);
	}
	put(w, "],\"when\":");
	put_json(w, jwhen(w, n));
	put(w, ",\"doc\":");
	put_jstr(w, n->doc);
	put(w, ",\"component\":");
	put_jstr(w, n->comp ? n->sub_display : NULL);
	put(w, ",\"image\":");
	if (have && k.image == last.image && w->image_str.t)
		put_text(w, &w->image_str);
	else
		put_cached(w, &w->image_str, jstr(p->image));
	if (p->cmd == CMD_RUN) {
		put(w, ",\"command\":[");
		for (int i = 0; i < p->nrun; i++) {
			if (i)
				put(w, ",");
			put_tmpl(w, p->run[i]);
		}
		put(w, "],\"script\":null");
	} else {
		put(w, ",\"command\":null,\"script\":{\"interpreter\":[");
		for (int i = 0; i < p->ninterp; i++) {
			if (i)
				put(w, ",");
			put_jstr(w, p->interp[i]);
		}
		put(w, "],\"text\":");
		put_tmpl(w, p->script);
		put(w, "}");
	}
	put(w, ",\"env\":");
	if (have && k.env == last.env && k.nenv == last.nenv && w->env_str.t) {
		put_text(w, &w->env_str);
	} else {
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
		put_cached(w, &w->env_str, a);
	}
	put(w, ",\"workdir\":");
	if (p->has_workdir)
		put_tmpl(w, p->workdir);
	else
		put(w, "null");
	put(w, ",\"resources\":");
	if (have && k.has_cpu == last.has_cpu && k.cpu == last.cpu &&
	    k.has_memory == last.has_memory && k.memory == last.memory && k.has_gpu == last.has_gpu &&
	    k.gpu == last.gpu && w->res_str.t) {
		put_text(w, &w->res_str);
	} else {
		x = json_object_new_object();
		json_object_object_add(x, "cpu", p->has_cpu ? jstr(p->cpu) : NULL);
		json_object_object_add(x, "cpu_milli", json_object_new_int64(p->has_cpu ? p->cpu_milli : 0));
		json_object_object_add(x, "memory", p->has_memory ? jstr(p->memory) : NULL);
		json_object_object_add(x, "memory_bytes",
				       json_object_new_int64(p->has_memory ? p->memory_bytes : 0));
		json_object_object_add(x, "gpu", json_object_new_int64(p->has_gpu ? p->gpu : 0));
		put_cached(w, &w->res_str, x);
	}
	put(w, ",\"retry\":");
	if (have && k.has_retry == last.has_retry && k.limit == last.limit &&
	    k.backoff == last.backoff && k.maxb == last.maxb && k.factor == last.factor &&
	    k.on == last.on && w->retry_str.t) {
		put_text(w, &w->retry_str);
	} else if (!p->has_retry) {
		put_cached(w, &w->retry_str, json_object_get(w->retry_default));
	} else {
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
		put_cached(w, &w->retry_str, x);
	}
	put(w, ",\"timeout\":");
	if (have && k.timeout == last.timeout && w->timeout_str.t)
		put_text(w, &w->timeout_str);
	else
		put_cached(w, &w->timeout_str, jseconds(k.timeout));
	put(w, ",\"cache\":");
	if (have && k.enabled == last.enabled && k.max_age == last.max_age && w->cache_str.t) {
		put_text(w, &w->cache_str);
	} else {
		x = json_object_new_object();
		json_object_object_add(x, "enabled", json_object_new_boolean(k.enabled));
		json_object_object_add(x, "max_age", jseconds(k.max_age));
		put_cached(w, &w->cache_str, x);
	}
	put(w, ",\"placement\":");
	if (!p->nnode_selector && !p->ntolerations && !p->nlabels) {
		put_text(w, &w->place_empty);
		goto volumes;
	}
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
	put_json(w, x);
volumes:
	put(w, ",\"volumes\":");
	if (!p->nvolumes) {
		put(w, "[]");
	} else {
		x = json_object_new_array_ext(p->nvolumes);
		for (int i = 0; i < p->nvolumes; i++) {
			json_object *v = json_object_new_object();
			json_object_object_add(v, "name", jstr(p->volumes[i].name));
			json_object_object_add(v, "mount", jstr(p->volumes[i].mount));
			json_object_object_add(v, "readonly",
					       json_object_new_boolean(p->volumes[i].readonly));
			json_object_array_add(x, v);
		}
		put_json(w, x);
	}
	put(w, ",\"inputs\":");
	put_inputs(w, n->inputs, n->ninputs);
	put(w, ",\"outputs\":[");
	for (int i = 0; i < n->noutputs; i++) {
		static const char *const from[] = {"path", "file", "stdout"};
		const struct sport *op = &n->outputs[i];
		put(w, i ? ",{\"name\":" : "{\"name\":");
		put_name(w, op->name);
		put(w, ",\"type\":");
		put_type(w, op->type);
		put(w, type_is_artifact(op->type) ? ",\"kind\":\"artifact\",\"from\":" :
						    ",\"kind\":\"param\",\"from\":");
		put_name(w, from[op->from]);
		put(w, ",\"path\":");
		put_jstr(w, op->from == FROM_FILE ? op->path : NULL);
		put(w, "}");
	}
	put(w, "]}");
	w->last = k;
	w->have_last = 1;
}

/* Writes O without its closing brace (the caller continues the object). */
static void put_open(struct lw *w, json_object *o)
{
	size_t len = 0;
	const char *t = json_object_to_json_string_length(o, JFLAGS, &len);

	if (!t)
		w->err = 1;
	else if (len)
		put_n(w, t, len - 1);
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
		put_step(w, n);
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
				json_object_object_add(x, "type", jtype(w, sub->outputs[i].type));
				json_object_object_add(x, "kind", jkind(w, sub->outputs[i].type));
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
	json_object_object_add(o, "type", jtype(w, p->type));
	json_object_object_add(o, "default", p->def ? jlit(p->def, p->type) : NULL);
	json_object_object_add(o, "required", json_object_new_boolean(!p->def));
	json_object_object_add(o, "doc", jstr(p->doc));
	if (p->has_min)
		json_object_object_add(c, "min", jlit(p->min, p->type));
	if (p->has_max)
		json_object_object_add(c, "max", jlit(p->max, p->type));
	if (p->one_of) {
		struct type lt = {TYPE_LIST, p->type, NULL};
		json_object_object_add(c, "one_of", jlit(p->one_of, &lt));
	}
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

	w.strings = stab_new();
	w.empty_array = json_object_new_array();
	w.nfile_objs = diag_nfiles(s->d);
	w.file_objs = calloc((size_t)(w.nfile_objs + 1), sizeof *w.file_objs);
	w.file_strs = calloc((size_t)(w.nfile_objs + 1), sizeof *w.file_strs);
	w.names = stab_new();
	w.out = malloc(OUT_CAP);
	w.ocap = w.out ? OUT_CAP : 0;
	w.nids = p->nnodes;
	w.ids = calloc((size_t)w.nids + 1, sizeof *w.ids);
	ast_advise_huge(w.ids, ((size_t)w.nids + 1) * sizeof *w.ids);
	w.sstr = json_object_new_string("");
	w.sint = json_object_new_int64(0);
	{
		json_object *pe = json_object_new_object();
		json_object_object_add(pe, "node_selector", json_object_new_object());
		json_object_object_add(pe, "tolerations", json_object_new_array());
		json_object_object_add(pe, "labels", json_object_new_object());
		if (jtext(&w.place_empty, pe) < 0 ||
		    jtext(&w.empty_str, json_object_new_string("")) < 0)
			w.err = 1;
	}
	if (!w.strings || !w.file_objs || !w.file_strs || !w.sstr || !w.sint || !w.names ||
	    !w.out || !w.ids)
		w.err = 1;
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
		json_object_object_add(x, "type", jtype(&w, o->type));
		json_object_object_add(x, "kind", jkind(&w, o->type));
		json_object_object_add(x, "value", jvalue(&w, o->value));
		json_object_object_add(x, "doc", jstr(o->doc));
		json_object_object_add(x, "loc", jloc(&w, o->loc));
		put(&w, i ? ",\n    " : "\n    ");
		put_json(&w, x);
	}
	put(&w, p->noutputs ? "\n  ]\n}\n" : "]\n}\n");
	if (w.out)
		flush_out(&w);
	rc = w.err || ferror(f) ? -1 : 0;
	json_object_put(w.retry_default);
	json_object_put(w.empty_array);
	for (int i = 0; i < w.nowned; i++)
		json_object_put(w.owned[i]);
	free(w.owned);
	for (int i = 0; i < w.nfile_objs; i++)
		json_object_put(w.file_objs[i]);
	free(w.file_objs);
	stab_free(w.strings);
	for (int i = 0; i < w.nfile_objs; i++)
		free(w.file_strs[i].t);
	free(w.file_strs);
	free(w.image_str.t);
	free(w.env_str.t);
	free(w.res_str.t);
	free(w.retry_str.t);
	free(w.timeout_str.t);
	free(w.cache_str.t);
	free(w.place_empty.t);
	free(w.empty_str.t);
	for (int i = 0; i < w.nnames; i++) {
		free(w.names_owned[i]->t);
		free(w.names_owned[i]);
	}
	free(w.names_owned);
	for (int i = 0; i < 1024; i++)
		free(w.smallint[i].t);
	stab_free(w.names);
	free(w.ids);
	free(w.out);
	json_object_put(w.sstr);
	json_object_put(w.sint);
	free(w.prefix);
	free(w.idbuf);
	return rc;
}

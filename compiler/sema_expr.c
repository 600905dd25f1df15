/* sema_expr.c - expressions: name lookup, types, values (SPEC §5).
 *
 * Names resolve innermost first: loop variables, pipeline parameters, steps (`step.output`),
 * then import aliases. A reference to a step inside a loop from outside it needs collect()
 * (E302); collect() of a step that is already in scope is E303; finally steps may not use step
 * outputs (E305). The result of every expression is a struct sval carrying its type; operators
 * are only allowed in conditions (EX_COND). */
#include "sema.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "builtins.h"
#include "validate.h"

static struct sval error_value = {.kind = SV_ERROR, .type = &type_error};

struct sval *sema_error_value(void)
{
	return &error_value;
}

static struct sval *mkval(struct sctx *cx, enum sval_kind k, const struct type *t, struct loc loc)
{
	struct sval *v = sema_alloc(cx->s, sizeof *v);

	if (!v)
		return &error_value;
	v->kind = k;
	v->type = t;
	v->loc = loc;
	return v;
}

/* ---- suggestions -------------------------------------------------------------------------- */

static int edit_distance(const char *a, const char *b)
{
	int la = (int)strlen(a), lb = (int)strlen(b), row[64], prev, tmp;

	if (la > 60 || lb > 60)
		return 99;
	for (int j = 0; j <= lb; j++)
		row[j] = j;
	for (int i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (int j = 1; j <= lb; j++) {
			int cost = a[i - 1] != b[j - 1], best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

struct suggest {
	const char *best;
	int dist;
	const char *want;
};

static void consider(struct suggest *sg, const char *cand)
{
	int d;

	if (!cand)
		return;
	d = edit_distance(sg->want, cand);
	if (d < sg->dist || (d == sg->dist && sg->best && strcmp(cand, sg->best) < 0)) {
		sg->dist = d;
		sg->best = cand;
	}
}

static void suggest_note(struct sctx *cx, struct suggest *sg, struct loc loc)
{
	int limit = (int)strlen(sg->want) / 3 + 1;

	if (sg->best && sg->dist <= limit && sg->dist <= 2)
		diag_note(cx->s->d, loc, "did you mean '%s'?", sg->best);
}

/* Suggests among every name visible in CX (used after E101). */
static void suggest_name(struct sctx *cx, const char *name, struct loc loc, int steps_only)
{
	struct suggest sg = {NULL, 99, name};

	if (cx->pipe) {
		if (!steps_only) {
			for (struct sbody *b = cx->body; b; b = b->parent)
				if (b->owner)
					consider(&sg, b->owner->var);
			for (int i = 0; i < cx->pipe->nparams; i++)
				consider(&sg, cx->pipe->params[i].name);
		}
		/* steps: walk every node of the pipeline (error path only) */
		struct sbody *stack[64];
		int sp = 0;
		stack[sp++] = &cx->pipe->body;
		stack[sp++] = &cx->pipe->fin;
		while (sp) {
			struct sbody *b = stack[--sp];
			for (int i = 0; i < b->n; i++) {
				if (b->nodes[i]->kind == SN_LOOP) {
					if (sp < 64)
						stack[sp++] = b->nodes[i]->body;
				} else {
					consider(&sg, b->nodes[i]->name);
				}
			}
		}
	} else if (cx->comp) {
		for (int i = 0; i < cx->comp->ninputs; i++)
			consider(&sg, cx->comp->inputs[i].name);
	}
	suggest_note(cx, &sg, loc);
}

/* ---- references --------------------------------------------------------------------------- */

static struct sport *find_port(struct sport *ports, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (ports[i].name && !strcmp(ports[i].name, name))
			return &ports[i];
	return NULL;
}

/* Looks up STEP.OUTPUT for a bare reference (collect 0) or collect() (collect 1). */
static struct sval *step_output(struct sctx *cx, struct snode *n, const struct ast_expr *e,
				int collect)
{
	struct sema *s = cx->s;
	const struct ast_name *parts = e->u.ref.parts;
	struct sport *port;
	struct sval *v;

	if (e->u.ref.nparts == 1) {
		diag_error(s->d, "E101", parts[0].loc,
			   "'%s' is a step, not a value; use one of its outputs: %s.OUTPUT",
			   parts[0].s, parts[0].s);
		return &error_value;
	}
	if (e->u.ref.nparts > 2) {
		diag_error(s->d, "E201", parts[2].loc, "'%s.%s' is a value and has no field '%s'",
			   parts[0].s, parts[1].s, parts[2].s);
		return &error_value;
	}
	if (n->error)
		return &error_value;
	if (cx->is_finally) {
		diag_error(s->d, "E305", e->loc,
			   "a finally step cannot use the output of step '%s' (finally steps may use "
			   "parameters and {{run.status}})", n->name);
		return &error_value;
	}
	if (n->is_finally) {
		diag_error(s->d, "E305", e->loc,
			   "'%s' is a finally step: it runs after every other step, so its outputs "
			   "cannot be used", n->name);
		return &error_value;
	}
	if (!(port = find_port(n->outputs, n->noutputs, parts[1].s))) {
		struct suggest sg = {NULL, 99, parts[1].s};
		diag_error(s->d, "E101", parts[1].loc, "step '%s' has no output '%s'", n->name,
			   parts[1].s);
		for (int i = 0; i < n->noutputs; i++)
			consider(&sg, n->outputs[i].name);
		suggest_note(cx, &sg, parts[1].loc);
		return &error_value;
	}
	if (!port->type || port->type->kind == TYPE_ERROR)
		return &error_value;
	if (cx->body) {
		int inscope = sema_body_encloses(n->parent, cx->body);
		if (!collect && !inscope) {
			diag_error(s->d, "E302", e->loc,
				   "step '%s' is inside a loop that does not enclose this reference; use "
				   "collect(%s.%s) to gather its outputs", n->name, n->name, port->name);
			for (struct sbody *b = n->parent; b && b->owner; b = b->parent)
				if (sema_body_encloses(b, cx->body))
					break;
				else if (!b->parent || sema_body_encloses(b->parent, cx->body)) {
					diag_note(s->d, b->owner->loop_ast->loc, "the loop is here");
					break;
				}
			return &error_value;
		}
		if (collect && inscope) {
			diag_error(s->d, "E303", e->loc,
				   "collect(%s.%s) gathers nothing: '%s' is not inside a loop relative "
				   "to this reference; use %s.%s", n->name, port->name, n->name, n->name,
				   port->name);
			return &error_value;
		}
	}
	port->used = 1;
	if (collect) {
		const struct type *lt = type_new_list(s->arena, port->type);
		if (!lt) {
			s->oom = 1;
			return &error_value;
		}
		v = mkval(cx, SV_COLLECT, lt, e->loc);
	} else {
		v = mkval(cx, SV_OUTPUT, port->type, e->loc);
	}
	v->node = n;
	v->name = port->name;
	return v;
}

static struct sval *resolve_ref(struct sctx *cx, const struct ast_expr *e, int collect)
{
	struct sema *s = cx->s;
	const struct ast_name *parts = e->u.ref.parts;
	const char *name = parts[0].s;
	struct snode *n;
	struct sparam *p;
	struct sval *v;

	if (cx->flags & EX_CONST) {
		diag_error(s->d, "E201", e->loc, "a default value must be a literal, not '%s'", name);
		return &error_value;
	}
	if (cx->flags & EX_COMPONENT) {
		struct sport *in = cx->comp ? find_port(cx->comp->inputs, cx->comp->ninputs, name) : NULL;
		if (!in) {
			diag_error(s->d, "E101", parts[0].loc, "undefined name '%s' (a component's "
				   "condition may use the component's inputs)", name);
			suggest_name(cx, name, parts[0].loc, 0);
			return &error_value;
		}
		if (e->u.ref.nparts > 1) {
			diag_error(s->d, "E201", parts[1].loc, "input '%s' has no field '%s'", name,
				   parts[1].s);
			return &error_value;
		}
		if (!in->type || in->type->kind == TYPE_ERROR)
			return &error_value;
		v = mkval(cx, SV_INPUT, in->type, e->loc);
		v->name = in->name;
		return v;
	}
	if (!collect && (n = sema_find_var(cx->body, name))) {
		if (e->u.ref.nparts > 1) {
			diag_error(s->d, "E201", parts[1].loc, "loop variable '%s' has no field '%s'",
				   name, parts[1].s);
			return &error_value;
		}
		if (!n->var_type || n->var_type->kind == TYPE_ERROR)
			return &error_value;
		v = mkval(cx, SV_VAR, n->var_type, e->loc);
		v->name = n->var;
		return v;
	}
	if (!collect && cx->pipe && (p = stab_get(cx->pipe->param_tab, name))) {
		p->used = 1;
		if (e->u.ref.nparts > 1) {
			diag_error(s->d, "E201", parts[1].loc, "parameter '%s' has no field '%s'", name,
				   parts[1].s);
			return &error_value;
		}
		if (p->error)
			return &error_value;
		v = mkval(cx, SV_PARAM, p->type, e->loc);
		v->name = p->name;
		return v;
	}
	if (cx->pipe && (n = stab_get(cx->pipe->steps, name)))
		return step_output(cx, n, e, collect);
	if (sema_import(cx->file, name)) {
		diag_error(s->d, "E201", parts[0].loc, "'%s' is an import alias, not a value", name);
		return &error_value;
	}
	if (e->u.ref.nparts > 1 || collect)
		diag_error(s->d, "E101", parts[0].loc, "undefined step '%s'", name);
	else
		diag_error(s->d, "E101", parts[0].loc, "undefined name '%s'", name);
	suggest_name(cx, name, parts[0].loc, e->u.ref.nparts > 1 || collect);
	return &error_value;
}

/* ---- calls --------------------------------------------------------------------------------- */

static struct sval *call(struct sctx *cx, const struct ast_expr *e)
{
	struct sema *s = cx->s;
	const struct builtin *b = builtin_find(e->u.call.name->s);
	struct sval *arg, *v;

	if (!b) {
		diag_error(s->d, "E101", e->u.call.name->loc,
			   "undefined function '%s' (builtins: collect, len, secret)", e->u.call.name->s);
		for (int i = 0; i < e->u.call.nargs; i++)
			(void)sema_expr(cx, e->u.call.args[i]);
		return &error_value;
	}
	if (e->u.call.nargs != b->nargs) {
		diag_error(s->d, "E201", e->loc, "%s() takes %d argument%s, got %d", b->name, b->nargs,
			   b->nargs == 1 ? "" : "s", e->u.call.nargs);
		return &error_value;
	}
	switch (b->id) {
	case BUILTIN_COLLECT:
		if (cx->flags & (EX_CONST | EX_COMPONENT)) {
			diag_error(s->d, "E201", e->loc, "collect() is not allowed here");
			return &error_value;
		}
		if (e->u.call.args[0]->kind != AST_EXPR_REF || e->u.call.args[0]->u.ref.nparts != 2) {
			diag_error(s->d, "E201", e->u.call.args[0]->loc,
				   "collect() takes a step output: collect(STEP.OUTPUT)");
			return &error_value;
		}
		return resolve_ref(cx, e->u.call.args[0], 1);
	case BUILTIN_LEN:
		arg = sema_expr(cx, e->u.call.args[0]);
		if (!(cx->flags & EX_COND)) {
			diag_error(s->d, "E201", e->loc,
				   "len() can only be used in a condition (when, if)");
			return &error_value;
		}
		if (arg->kind == SV_ERROR)
			return &error_value;
		if (arg->type->kind != TYPE_LIST && arg->type->kind != TYPE_MAP &&
		    arg->type->kind != TYPE_STRING) {
			char tn[128];
			diag_error(s->d, "E201", arg->loc, "len() needs a list, map or string, got %s",
				   type_name(arg->type, tn, sizeof tn));
			return &error_value;
		}
		if (type_is_artifact(arg->type)) {
			diag_error(s->d, "E201", arg->loc, "a condition cannot use artifacts");
			return &error_value;
		}
		v = mkval(cx, SV_OP, &type_int, e->loc);
		v->op = "len";
		v->items = sema_alloc(s, sizeof *v->items);
		if (!v->items)
			return &error_value;
		v->items[0] = arg;
		v->nitems = 1;
		return v;
	default:
		diag_error(s->d, "E201", e->loc, "secret() can only be used as an env value");
		return &error_value;
	}
}

/* ---- literals -------------------------------------------------------------------------------- */

/* Unifies element types for list literals: returns the common type, or NULL when incompatible. */
static const struct type *unify(const struct type *a, const struct type *b)
{
	if (!a)
		return b;
	if (a->kind == TYPE_ERROR)
		return b;
	if (b->kind == TYPE_ERROR)
		return a;
	if (type_assignable(a, b))
		return a;
	if (type_assignable(b, a))
		return b;
	return NULL;
}

static struct sval *list_lit(struct sctx *cx, const struct ast_expr *e)
{
	struct sema *s = cx->s;
	const struct type *elem = NULL, *lt;
	int allconst = 1, bad = 0;
	struct sval **items = NULL, *v;

	if (e->u.list.nitems && !(items = sema_alloc(s, (size_t)e->u.list.nitems * sizeof *items)))
		return &error_value;
	for (int i = 0; i < e->u.list.nitems; i++) {
		struct sval *it = sema_expr(cx, e->u.list.items[i]);
		const struct type *u;
		items[i] = it;
		if (it->kind == SV_ERROR) {
			bad = 1;
			continue;
		}
		if (it->kind != SV_CONST)
			allconst = 0;
		if (it->kind == SV_RANGE || it->kind == SV_OP) {
			bad = 1;
			continue;
		}
		if (!(u = unify(elem, it->type))) {
			char t1[128], t2[128];
			diag_error(s->d, "E201", it->loc,
				   "list elements must have one type: %s here, %s before",
				   type_name(it->type, t1, sizeof t1), type_name(elem, t2, sizeof t2));
			bad = 1;
			continue;
		}
		elem = u;
	}
	if (bad)
		return &error_value;
	if (elem && type_is_artifact(elem)) {
		diag_error(s->d, "E201", e->loc,
			   "a list of artifacts can only be built with collect()");
		return &error_value;
	}
	if (!(lt = type_new_list(s->arena, elem)))
		return &error_value;
	if (allconst) {
		v = mkval(cx, SV_CONST, lt, e->loc);
		v->lit = e;
		return v;
	}
	v = mkval(cx, SV_LIST, lt, e->loc);
	v->items = items;
	v->nitems = e->u.list.nitems;
	return v;
}

static struct sval *map_lit(struct sctx *cx, const struct ast_expr *e)
{
	struct sema *s = cx->s;
	const struct type *elem = NULL, *mt;
	int bad = 0;
	struct sval *v;

	for (int i = 0; i < e->u.map.nentries; i++) {
		struct sval *it = sema_expr(cx, e->u.map.entries[i].value);
		const struct type *u;
		for (int j = 0; j < i; j++)
			if (e->u.map.entries[j].key->u.str.len == e->u.map.entries[i].key->u.str.len &&
			    !memcmp(e->u.map.entries[j].key->u.str.s, e->u.map.entries[i].key->u.str.s,
				    e->u.map.entries[i].key->u.str.len)) {
				diag_error(s->d, "E102", e->u.map.entries[i].key->loc,
					   "duplicate map key \"%s\"", e->u.map.entries[i].key->u.str.s);
				bad = 1;
				break;
			}
		if (it->kind == SV_ERROR) {
			bad = 1;
			continue;
		}
		if (it->kind != SV_CONST) {
			diag_error(s->d, "E201", it->loc, "map values must be literals");
			bad = 1;
			continue;
		}
		if (!(u = unify(elem, it->type))) {
			char t1[128], t2[128];
			diag_error(s->d, "E201", it->loc, "map values must have one type: %s here, %s "
				   "before", type_name(it->type, t1, sizeof t1),
				   type_name(elem, t2, sizeof t2));
			bad = 1;
			continue;
		}
		elem = u;
	}
	if (bad)
		return &error_value;
	if (!(mt = type_new_map(s->arena, elem)))
		return &error_value;
	v = mkval(cx, SV_CONST, mt, e->loc);
	v->lit = e;
	return v;
}

/* ---- operators ------------------------------------------------------------------------------- */

static int no_artifact(struct sctx *cx, struct sval *v)
{
	if (v->kind != SV_ERROR && type_is_artifact(v->type)) {
		diag_error(cx->s->d, "E201", v->loc,
			   "a condition cannot use artifacts (only parameters, loop variables and "
			   "value outputs)");
		return -1;
	}
	return 0;
}

static struct sval *binary(struct sctx *cx, const struct ast_expr *e)
{
	struct sema *s = cx->s;
	enum ast_op op = e->u.op.op;
	const char *opname = ast_op_name(op);
	struct sval *l, *r = NULL, *v;
	char t1[128], t2[128];
	int bad = 0;

	l = sema_expr(cx, e->u.op.lhs);
	if (e->u.op.rhs && op != AST_OP_MATCHES)
		r = sema_expr(cx, e->u.op.rhs);
	if (!(cx->flags & EX_COND)) {
		diag_error(s->d, "E201", *e->u.op.op_loc,
			   "operator '%s' can only be used in a condition (when, if)", opname);
		return &error_value;
	}
	if (no_artifact(cx, l) < 0 || (r && no_artifact(cx, r) < 0))
		return &error_value;
	switch (op) {
	case AST_OP_NOT:
		if (l->kind != SV_ERROR && l->type->kind != TYPE_BOOL) {
			diag_error(s->d, "E201", l->loc, "'not' needs a bool, got %s",
				   type_name(l->type, t1, sizeof t1));
			bad = 1;
		}
		break;
	case AST_OP_AND:
	case AST_OP_OR:
		if (l->kind != SV_ERROR && l->type->kind != TYPE_BOOL) {
			diag_error(s->d, "E201", l->loc, "'%s' needs bools, got %s", opname,
				   type_name(l->type, t1, sizeof t1));
			bad = 1;
		}
		if (r->kind != SV_ERROR && r->type->kind != TYPE_BOOL) {
			diag_error(s->d, "E201", r->loc, "'%s' needs bools, got %s", opname,
				   type_name(r->type, t1, sizeof t1));
			bad = 1;
		}
		break;
	case AST_OP_MATCHES: {
		const struct ast_expr *re = e->u.op.rhs;
		if (l->kind != SV_ERROR && l->type->kind != TYPE_STRING) {
			diag_error(s->d, "E201", l->loc, "'matches' needs a string on its left, got %s",
				   type_name(l->type, t1, sizeof t1));
			bad = 1;
		}
		if (!re || re->kind != AST_EXPR_STRING) {
			diag_error(s->d, "E201", re ? re->loc : e->loc,
				   "'matches' needs a string literal pattern");
			return &error_value;
		}
		char msg[256];
		size_t off = 0;
		if (validate_regex(re->u.str.s, re->u.str.len, &off, msg, sizeof msg)) {
			diag_error(s->d, "E401", sema_string_loc(s, re, off, 1, 0),
				   "invalid regular expression: %s", msg);
			bad = 1;
		}
		r = mkval(cx, SV_CONST, &type_string, re->loc);
		r->lit = re;
		break;
	}
	case AST_OP_EQ:
	case AST_OP_NE:
		if (l->kind != SV_ERROR && r->kind != SV_ERROR &&
		    !(type_is_number(l->type) && type_is_number(r->type)) &&
		    !type_assignable(l->type, r->type) && !type_assignable(r->type, l->type)) {
			diag_error(s->d, "E201", *e->u.op.op_loc, "cannot compare %s with %s",
				   type_name(l->type, t1, sizeof t1), type_name(r->type, t2, sizeof t2));
			bad = 1;
		}
		break;
	default: /* < <= > >= */
		if (l->kind != SV_ERROR && r->kind != SV_ERROR &&
		    !(type_is_number(l->type) && type_is_number(r->type)) &&
		    !(l->type->kind == TYPE_STRING && r->type->kind == TYPE_STRING)) {
			diag_error(s->d, "E201", *e->u.op.op_loc,
				   "'%s' needs two numbers or two strings, got %s and %s", opname,
				   type_name(l->type, t1, sizeof t1), type_name(r->type, t2, sizeof t2));
			bad = 1;
		}
		break;
	}
	if (bad || l->kind == SV_ERROR || (r && r->kind == SV_ERROR))
		return &error_value;
	v = mkval(cx, SV_OP, &type_bool, e->loc);
	v->op = opname;
	v->nitems = r ? 2 : 1;
	if (!(v->items = sema_alloc(s, 2 * sizeof *v->items)))
		return &error_value;
	v->items[0] = l;
	v->items[1] = r;
	return v;
}

/* ---- entry ------------------------------------------------------------------------------------ */

struct sval *sema_expr(struct sctx *cx, const struct ast_expr *e)
{
	struct sval *v;

	if (!e)
		return &error_value;
	switch (e->kind) {
	case AST_EXPR_STRING:
		v = mkval(cx, SV_CONST, &type_string, e->loc);
		v->lit = e;
		return v;
	case AST_EXPR_INT:
		v = mkval(cx, SV_CONST, &type_int, e->loc);
		v->lit = e;
		return v;
	case AST_EXPR_FLOAT:
		v = mkval(cx, SV_CONST, &type_float, e->loc);
		v->lit = e;
		return v;
	case AST_EXPR_BOOL:
		v = mkval(cx, SV_CONST, &type_bool, e->loc);
		v->lit = e;
		return v;
	case AST_EXPR_DURATION:
		diag_error(cx->s->d, "E201", e->loc,
			   "a duration is not a value (durations are for timeout, retry and cache)");
		return &error_value;
	case AST_EXPR_REF:
		return resolve_ref(cx, e, 0);
	case AST_EXPR_CALL:
		return call(cx, e);
	case AST_EXPR_LIST:
		return list_lit(cx, e);
	case AST_EXPR_MAP:
		return map_lit(cx, e);
	case AST_EXPR_UNARY:
	case AST_EXPR_BINARY:
		return binary(cx, e);
	}
	return &error_value;
}

int sema_expect(struct sctx *cx, struct sval *v, const struct type *want, const char *what)
{
	char t1[128], t2[128];

	if (!v || v->kind == SV_ERROR || !want || want->kind == TYPE_ERROR)
		return 0;
	if (!type_assignable(want, v->type)) {
		diag_error(cx->s->d, "E201", v->loc, "type mismatch: %s is %s, got %s", what,
			   type_name(want, t1, sizeof t1), type_name(v->type, t2, sizeof t2));
		return -1;
	}
	if (v->kind == SV_CONST)
		v->type = want;
	return 0;
}

int sema_expectf(struct sctx *cx, struct sval *v, const struct type *want, const char *fmt, ...)
{
	char what[160]; /* as the callers had: messages truncate where they did */
	va_list ap;

	if (!v || v->kind == SV_ERROR || !want || want->kind == TYPE_ERROR)
		return 0;
	if (type_assignable(want, v->type)) {
		if (v->kind == SV_CONST)
			v->type = want;
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return sema_expect(cx, v, want, what);
}

/* sema_pipe.c - pipeline bodies: steps, loops, branches, outputs and pipeline properties.
 *
 * Two passes per pipeline. Pass 1 walks the statements, creates one snode per step and loop
 * (with its body tree and inherited `if` conditions), registers step names (unique across the
 * whole pipeline) and declares every step's outputs, so that pass 2 can resolve references to
 * steps written later. Pass 2 checks each node in tree order: arguments or inputs, conditions,
 * loop items, properties (merged with the component's and the pipeline's defaults) and
 * placeholders. */
#include "sema.h"

#include <stdio.h>
#include <string.h>

#include "validate.h"

struct walk {
	struct sema *s;
	struct spipe *p;
	struct sctx cx;
	const struct ast_output **outs; /* pipeline output statements, checked in pass 2 */
	int nouts, capouts;
	struct propseen seen; /* pipeline-level properties */
	int nsched_cap;
};

static struct sbody *new_body(struct sema *s, struct sbody *parent, struct snode *owner)
{
	struct sbody *b = sema_alloc(s, sizeof *b);

	if (!b)
		return NULL;
	b->parent = parent;
	b->owner = owner;
	b->depth = parent ? parent->depth + 1 : 0;
	return b;
}

static int body_add(struct sema *s, struct sbody *b, struct snode *n)
{
	struct snode **slot = sema_push(s, (void **)&b->nodes, &b->n, &b->cap, sizeof *slot);

	if (!slot)
		return -1;
	*slot = n;
	n->parent = b;
	return 0;
}

/* ---- pass 1 -------------------------------------------------------------------------------- */

static void pipeline_prop(struct walk *w, const struct ast_prop *pr)
{
	struct sema *s = w->s;
	struct spipe *p = w->p;
	const char *n = pr->name.s;
	unsigned bit;
	int id;

	if (!strcmp(n, "defaults"))
		id = 0;
	else if (!strcmp(n, "parallelism"))
		id = 1;
	else if (!strcmp(n, "timeout"))
		id = 2;
	else if (!strcmp(n, "schedule"))
		id = 3;
	else {
		const char *sp[] = {"image", "run", "script", "env", "workdir", "resources", "retry",
				    "cache", "after", "node_selector", "toleration", "labels",
				    "volume"};
		for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
			if (!strcmp(sp[i], n)) {
				diag_error(s->d, "E103", pr->name.loc, "'%s' is a step property; set it "
					   "on a step, in its component, or in defaults { }", n);
				return;
			}
		diag_error(s->d, "E103", pr->name.loc, "unknown pipeline property '%s' (expected "
			   "defaults, parallelism, timeout or schedule)", n);
		return;
	}
	bit = 1u << id;
	if (id != 3 && (w->seen.mask & bit)) {
		diag_error(s->d, "E104", pr->name.loc, "'%s' is set more than once", n);
		diag_note(s->d, w->seen.loc[id], "first set here");
		return;
	}
	w->seen.mask |= bit;
	w->seen.loc[id] = pr->name.loc;
	switch (id) {
	case 0: {
		struct propseen seen;
		const struct ast_block *b;
		memset(&seen, 0, sizeof seen);
		if (pr->nargs != 1 || pr->args[0]->kind != AST_PARG_BLOCK) {
			diag_error(s->d, "E103", pr->loc, "usage: defaults { PROPERTY ... }");
			return;
		}
		if (!(p->defaults = sema_alloc(s, sizeof *p->defaults)))
			return;
		b = pr->args[0]->block;
		for (int i = 0; i < b->nitems; i++) {
			if (b->items[i].kind != AST_BITEM_PROP) {
				diag_error(s->d, "E103", b->items[i].entry->loc,
					   "defaults holds properties, not KEY = VALUE entries");
				continue;
			}
			sema_prop(&w->cx, p->defaults, &seen, b->items[i].prop, PW_DEFAULTS);
		}
		break;
	}
	case 1: {
		const struct ast_expr *e = pr->nargs == 1 && pr->args[0]->kind == AST_PARG_EXPR ?
			pr->args[0]->expr : NULL;
		if (!e || e->kind != AST_EXPR_INT) {
			diag_error(s->d, "E103", pr->loc, "usage: parallelism N");
			return;
		}
		if (e->u.i < 1) {
			diag_error(s->d, "E406", e->loc, "parallelism must be at least 1");
			return;
		}
		p->parallelism = e->u.i;
		break;
	}
	case 2: {
		const struct ast_expr *e = pr->nargs == 1 && pr->args[0]->kind == AST_PARG_EXPR ?
			pr->args[0]->expr : NULL;
		if (!e || e->kind != AST_EXPR_DURATION) {
			diag_error(s->d, "E103", pr->loc, "usage: timeout DURATION (e.g. 2h)");
			return;
		}
		p->timeout_ms = e->u.dur.ms;
		break;
	}
	default: {
		const struct ast_expr *c = pr->nargs >= 1 && pr->args[0]->kind == AST_PARG_EXPR ?
			pr->args[0]->expr : NULL;
		const struct ast_expr *tz = NULL;
		struct sschedule *sc;
		char msg[256];
		const char *err;
		if (!c || c->kind != AST_EXPR_STRING) {
			diag_error(s->d, "E103", pr->loc, "usage: schedule \"CRON\" [tz \"ZONE\"]");
			return;
		}
		if (pr->nargs == 3 && pr->args[1]->kind == AST_PARG_EXPR &&
		    pr->args[1]->expr->kind == AST_EXPR_REF && pr->args[1]->expr->u.ref.nparts == 1 &&
		    !strcmp(pr->args[1]->expr->u.ref.parts[0].s, "tz") &&
		    pr->args[2]->kind == AST_PARG_EXPR && pr->args[2]->expr->kind == AST_EXPR_STRING) {
			tz = pr->args[2]->expr;
		} else if (pr->nargs != 1) {
			diag_error(s->d, "E103", pr->args[1]->loc,
				   "usage: schedule \"CRON\" [tz \"ZONE\"]");
			return;
		}
		{ /* report both a bad expression and a bad zone */
			int bad = 0;
			if ((err = validate_cron(c->u.str.s, NULL, msg, sizeof msg))) {
				diag_error(s->d, "E402", c->loc, "invalid cron expression: %s", err);
				bad = 1;
			}
			if (tz && (err = validate_tz(tz->u.str.s))) {
				diag_error(s->d, "E403", tz->loc, "unknown time zone '%s': %s",
					   tz->u.str.s, err);
				bad = 1;
			}
			if (bad)
				return;
		}
		if (!(sc = sema_push(s, (void **)&p->schedules, &p->nschedules, &w->nsched_cap,
				     sizeof *sc)))
			return;
		sc->cron = c->u.str.s;
		sc->tz = tz ? tz->u.str.s : "UTC";
		sc->loc = pr->loc;
		break;
	}
	}
}

static struct snode *new_node(struct walk *w, enum snode_kind k, struct sbody *b,
			      struct sbranch *br, int nbr)
{
	struct snode *n = sema_alloc(w->s, sizeof *n);

	if (!n)
		return NULL;
	n->kind = k;
	n->pipe = w->p;
	n->order = w->p->nnodes++;
	n->branches = br;
	n->nbranches = nbr;
	if (body_add(w->s, b, n) < 0)
		return NULL;
	return n;
}

static void declare_step(struct walk *w, const struct ast_step *st, struct sbody *b,
			 struct sbranch *br, int nbr)
{
	struct sema *s = w->s;
	struct spipe *p = w->p;
	struct snode *n, *old;
	struct sfile *f = p->file;
	struct scomp *comp = NULL;
	struct spipe *sub = NULL;

	if (!st->name.s)
		return;
	if (st->is_finally) {
		if (b != &p->body || nbr) {
			diag_error(s->d, "E103", st->loc,
				   "a finally step must be at the top level of its pipeline");
			return;
		}
		b = &p->fin;
	}
	if (st->is_call) {
		struct sfile *tf = f;
		if (st->callee_alias) {
			struct simport *im = sema_import(f, st->callee_alias->s);
			if (!im) {
				diag_error(s->d, "E101", st->callee_alias->loc,
					   "undefined import alias '%s'", st->callee_alias->s);
				tf = NULL;
			} else {
				tf = im->target;
			}
		}
		if (tf) {
			comp = stab_get(tf->comps, st->callee.s);
			sub = comp ? NULL : stab_get(tf->pipes, st->callee.s);
			if (!comp && !sub) {
				if (st->callee_alias)
					diag_error(s->d, "E101", st->callee.loc,
						   "undefined component '%s.%s'", st->callee_alias->s,
						   st->callee.s);
				else
					diag_error(s->d, "E101", st->callee.loc,
						   "undefined component '%s'", st->callee.s);
			}
		}
		if (sub && st->is_finally) {
			diag_error(s->d, "E103", st->callee.loc,
				   "a finally step cannot be a sub-pipeline");
			sub = NULL;
		}
	}
	if (!(n = new_node(w, sub ? SN_SUB : SN_STEP, b, br, nbr)))
		return;
	n->name = st->name.s;
	n->name_loc = st->name.loc;
	n->loc = st->loc;
	n->doc = st->doc;
	n->ast = st;
	n->is_finally = st->is_finally;
	if ((old = stab_get(p->steps, n->name))) {
		diag_error(s->d, "E102", st->name.loc, "duplicate step '%s'", n->name);
		diag_note(s->d, old->name_loc, "first defined here");
		n->error = 1;
	} else if (stab_put(p->steps, n->name, n) < 0) {
		s->oom = 1;
		return;
	}
	if (st->is_call) {
		const char *disp = st->callee_alias ?
			sema_fmt(s, "%s.%s", st->callee_alias->s, st->callee.s) : st->callee.s;
		if (comp) {
			n->comp = comp;
			n->outputs = comp->outputs;
			n->noutputs = comp->noutputs;
			n->sub_display = disp;
			if (comp->error)
				n->error = 1;
		} else if (sub) {
			n->sub = sub;
			n->sub_display = disp;
			n->outputs = sub->outputs;
			n->noutputs = sub->noutputs;
		} else {
			n->error = 1;
		}
		return;
	}
	/* inline: declare outputs now */
	{
		int nout = 0;
		struct sctx cx = w->cx;
		for (int i = 0; i < st->nbody; i++)
			nout += st->body[i]->kind == AST_STMT_OUTPUT;
		if (nout && !(n->outputs = sema_alloc(s, (size_t)nout * sizeof *n->outputs)))
			return;
		for (int i = 0; i < st->nbody; i++) {
			const struct ast_output *ao;
			int isdup = 0;
			if (st->body[i]->kind != AST_STMT_OUTPUT)
				continue;
			ao = st->body[i]->u.output;
			for (int j = 0; j < n->noutputs; j++)
				if (!strcmp(n->outputs[j].name, ao->name.s)) {
					diag_error(s->d, "E102", ao->name.loc, "duplicate output '%s'",
						   ao->name.s);
					diag_note(s->d, n->outputs[j].loc, "first defined here");
					isdup = 1;
				}
			if (!isdup)
				sema_output_decl(&cx, &n->outputs[n->noutputs++], ao);
		}
	}
}

static void walk1(struct walk *w, struct ast_stmt **body, int nbody, struct sbody *b,
		  struct sbranch *br, int nbr);

static struct sbranch *branches_plus(struct walk *w, struct sbranch *br, int nbr,
				     struct scond **conds, int nconds, int last_positive)
{
	struct sbranch *nb = sema_alloc(w->s, (size_t)(nbr + nconds) * sizeof *nb);

	if (!nb)
		return NULL;
	if (nbr)
		memcpy(nb, br, (size_t)nbr * sizeof *nb);
	for (int i = 0; i < nconds; i++) {
		nb[nbr + i].c = conds[i];
		nb[nbr + i].negated = !(last_positive && i == nconds - 1);
	}
	return nb;
}

static void walk_if(struct walk *w, const struct ast_if *top, struct sbody *b, struct sbranch *br,
		    int nbr)
{
	struct scond *conds[256];
	int nc = 0;

	for (const struct ast_if *c = top; c; c = c->else_if) {
		struct scond *sc = sema_alloc(w->s, sizeof *sc);
		struct sbranch *nb;
		if (!sc || nc == 256)
			return;
		sc->expr = c->cond;
		sc->body = b;
		conds[nc++] = sc;
		if (!(nb = branches_plus(w, br, nbr, conds, nc, 1)))
			return;
		walk1(w, c->then_body, c->nthen, b, nb, nbr + nc);
		if (c->has_else) {
			if (!(nb = branches_plus(w, br, nbr, conds, nc, 0)))
				return;
			walk1(w, c->else_body, c->nelse, b, nb, nbr + nc);
		}
	}
}

static void walk1(struct walk *w, struct ast_stmt **body, int nbody, struct sbody *b,
		  struct sbranch *br, int nbr)
{
	struct sema *s = w->s;
	struct spipe *p = w->p;

	for (int i = 0; i < nbody && !s->oom; i++) {
		const struct ast_stmt *st = body[i];
		switch (st->kind) {
		case AST_STMT_STEP:
			declare_step(w, st->u.step, b, br, nbr);
			break;
		case AST_STMT_FOR: {
			const struct ast_for *f = st->u.loop;
			struct snode *n = new_node(w, SN_LOOP, b, br, nbr);
			char *id;
			if (!n)
				return;
			n->loop_ast = f;
			n->loc = f->loc;
			n->name_loc = f->var.loc;
			n->var = f->var.s ? f->var.s : "_";
			id = sema_fmt(s, "for.%s@%d", n->var, f->loc.line);
			if (!id)
				return;
			if (stab_get(p->steps, id))
				id = sema_fmt(s, "for.%s@%d:%d", n->var, f->loc.line, f->loc.col);
			if (!id || stab_put(p->steps, id, n) < 0) {
				s->oom = 1;
				return;
			}
			n->name = id;
			if (!(n->body = new_body(s, b, n)))
				return;
			walk1(w, f->body, f->nbody, n->body, NULL, 0);
			break;
		}
		case AST_STMT_IF:
			walk_if(w, st->u.cond, b, br, nbr);
			break;
		case AST_STMT_OUTPUT: {
			const struct ast_output **slot;
			if (b != &p->body) {
				diag_error(s->d, "E103", st->loc,
					   "a pipeline output cannot be inside a loop");
				break;
			}
			if (!(slot = sema_push(s, (void **)&w->outs, &w->nouts, &w->capouts,
					       sizeof *slot)))
				return;
			*slot = st->u.output;
			break;
		}
		case AST_STMT_PROP:
			if (b != &p->body || nbr) {
				diag_error(s->d, "E103", st->u.prop->name.loc,
					   "'%s' must be at the top level of the pipeline",
					   st->u.prop->name.s);
				break;
			}
			pipeline_prop(w, st->u.prop);
			break;
		default:
			diag_error(s->d, "E001", st->loc, "not allowed in a pipeline body");
			break;
		}
	}
}

/* ---- pass 2 -------------------------------------------------------------------------------- */

static struct sval *and_of(struct sema *s, struct sval *a, struct sval *b)
{
	struct sval *v;

	if (!a)
		return b;
	if (!b)
		return a;
	if (!(v = sema_alloc(s, sizeof *v)))
		return a;
	v->kind = SV_OP;
	v->type = &type_bool;
	v->op = "and";
	v->loc = b->loc;
	if (!(v->items = sema_alloc(s, 2 * sizeof *v->items)))
		return a;
	v->items[0] = a;
	v->items[1] = b;
	v->nitems = 2;
	return v;
}

static struct sval *when_expr(struct walk *w, struct sctx *cx, const struct ast_expr *e)
{
	struct sctx c = *cx;
	struct sval *v;

	c.flags = EX_COND;
	v = sema_expr(&c, e);
	if (sema_expect(&c, v, &type_bool, "a condition") < 0 || v->kind == SV_ERROR)
		return NULL;
	(void)w;
	return v;
}

/* Replaces SV_INPUT references of a component condition by the step's input values. */
static struct sval *subst_inputs(struct sema *s, struct sval *v, struct snode *n)
{
	struct sval *c;

	if (v->kind == SV_INPUT) {
		for (int i = 0; i < n->ninputs; i++)
			if (!strcmp(n->inputs[i].name, v->name))
				return n->inputs[i].value ? n->inputs[i].value : sema_error_value();
		return sema_error_value();
	}
	if (v->kind != SV_OP && v->kind != SV_LIST)
		return v;
	if (!(c = sema_alloc(s, sizeof *c)))
		return v;
	*c = *v;
	if (!(c->items = sema_alloc(s, (size_t)(v->nitems ? v->nitems : 1) * sizeof *c->items)))
		return v;
	for (int i = 0; i < v->nitems; i++)
		c->items[i] = v->items[i] ? subst_inputs(s, v->items[i], n) : NULL;
	return c;
}

static int has_error(const struct sval *v)
{
	if (!v || v->kind == SV_ERROR)
		return 1;
	for (int i = 0; i < v->nitems; i++)
		if (v->items[i] && has_error(v->items[i]))
			return 1;
	return 0;
}

static void check_conditions(struct walk *w, struct snode *n, struct sctx *cx)
{
	for (int i = 0; i < n->nbranches; i++) {
		struct scond *c = n->nbranches ? n->branches[i].c : NULL;
		if (c && !c->done) {
			struct sctx ccx = *cx;
			ccx.body = c->body;
			c->done = 1;
			c->v = when_expr(w, &ccx, c->expr);
		}
	}
	if (n->ast) {
		if (n->ast->when)
			n->when = and_of(w->s, n->when, when_expr(w, cx, n->ast->when));
		for (int i = 0; i < n->ast->nbody; i++)
			if (n->ast->body[i]->kind == AST_STMT_WHEN)
				n->when = and_of(w->s, n->when,
						 when_expr(w, cx, n->ast->body[i]->u.when));
	}
}

static void check_inline(struct walk *w, struct snode *n, struct sctx *cx)
{
	struct sema *s = w->s;
	const struct ast_step *st = n->ast;
	struct propseen seen;
	int nin = 0;

	memset(&seen, 0, sizeof seen);
	for (int i = 0; i < st->nbody; i++)
		nin += st->body[i]->kind == AST_STMT_INPUT;
	if (nin && !(n->inputs = sema_alloc(s, (size_t)nin * sizeof *n->inputs)))
		return;
	for (int i = 0; i < st->nbody; i++) {
		const struct ast_stmt *b = st->body[i];
		if (b->kind == AST_STMT_INPUT) {
			const struct ast_input *ai = b->u.input;
			struct sport *in;
			int isdup = 0;
			for (int j = 0; j < n->ninputs; j++)
				if (!strcmp(n->inputs[j].name, ai->name.s)) {
					diag_error(s->d, "E102", ai->name.loc, "duplicate input '%s'",
						   ai->name.s);
					diag_note(s->d, n->inputs[j].loc, "first defined here");
					isdup = 1;
				}
			if (isdup)
				continue;
			in = &n->inputs[n->ninputs++];
			in->name = ai->name.s;
			in->loc = ai->name.loc;
			in->doc = ai->doc;
			in->type = sema_type(s, w->p->file, ai->type);
			if (in->type->kind == TYPE_MAP && type_is_artifact(in->type)) {
				diag_error(s->d, "E201", ai->type->loc, "a map cannot hold artifacts");
				in->type = &type_error;
			}
			if (!ai->value) {
				diag_error(s->d, "E202", ai->loc, "input '%s' of step '%s' has no value: "
					   "write in %s: TYPE = EXPR", in->name, n->name, in->name);
				in->value = sema_error_value();
				continue;
			}
			in->value = sema_expr(cx, ai->value);
			sema_expectf(cx, in->value, in->type, "input '%s'", in->name);
		} else if (b->kind == AST_STMT_PROP) {
			if (!n->own && !(n->own = sema_alloc(s, sizeof *n->own)))
				return;
			sema_prop(cx, n->own, &seen, b->u.prop, PW_STEP);
		}
	}
}

/* Arguments of a component or sub-pipeline call. */
static void check_args(struct walk *w, struct snode *n, struct sctx *cx)
{
	struct sema *s = w->s;
	const struct ast_step *st = n->ast;
	int nports;
	struct sport *ports = NULL;
	const char *what = n->comp ? "component" : "pipeline";
	const char *callee = n->sub_display;

	if (n->comp) {
		nports = n->comp->ninputs;
	} else {
		nports = n->sub->nparams;
	}
	if (nports && !(ports = sema_alloc(s, (size_t)nports * sizeof *ports)))
		return;
	for (int i = 0; i < nports; i++) {
		if (n->comp) {
			ports[i] = n->comp->inputs[i];
			ports[i].value = NULL;
		} else {
			struct sparam *pp = &n->sub->params[i];
			ports[i].name = pp->name;
			ports[i].loc = pp->loc;
			ports[i].type = pp->type;
			ports[i].doc = pp->doc;
		}
	}
	for (int i = 0; i < st->nargs; i++) {
		const struct ast_arg *a = &st->args[i];
		struct sport *port = NULL;
		struct sval *v;
		int isdup = 0;
		for (int j = 0; j < i; j++)
			if (!strcmp(st->args[j].name.s, a->name.s)) {
				diag_error(s->d, "E102", a->name.loc, "argument '%s' is given twice",
					   a->name.s);
				diag_note(s->d, st->args[j].name.loc, "first given here");
				isdup = 1;
			}
		v = sema_expr(cx, a->value);
		if (isdup)
			continue;
		for (int j = 0; j < nports; j++)
			if (!strcmp(ports[j].name, a->name.s))
				port = &ports[j];
		if (!port) {
			diag_error(s->d, "E203", a->name.loc, "%s '%s' has no input '%s'", what, callee,
				   a->name.s);
			{
				const char *best = NULL;
				int bd = 99;
				for (int j = 0; j < nports; j++) {
					size_t la = strlen(a->name.s), lb = strlen(ports[j].name);
					int d = 0;
					for (size_t k = 0; k < la || k < lb; k++)
						d += k >= la || k >= lb || a->name.s[k] != ports[j].name[k];
					if (d < bd) {
						bd = d;
						best = ports[j].name;
					}
				}
				if (best && bd <= 2)
					diag_note(s->d, a->name.loc, "did you mean '%s'?", best);
			}
			continue;
		}
		sema_expectf(cx, v, port->type, "input '%s' of %s '%s'", port->name, what, callee);
		port->value = v;
	}
	for (int i = 0; i < nports; i++) {
		int has_def = n->comp ? n->comp->inputs[i].has_default : n->sub->params[i].def != NULL;
		if (ports[i].value)
			continue;
		if (has_def) {
			if (n->comp) {
				ports[i].value = n->comp->inputs[i].value;
			} else {
				struct sval *dv = sema_alloc(s, sizeof *dv);
				if (!dv)
					return;
				dv->kind = SV_CONST;
				dv->type = ports[i].type;
				dv->lit = n->sub->params[i].def;
				dv->loc = dv->lit->loc;
				ports[i].value = dv;
			}
			continue;
		}
		if ((n->comp && n->comp->inputs[i].type->kind == TYPE_ERROR) ||
		    (n->sub && n->sub->params[i].error)) {
			ports[i].value = sema_error_value();
			continue;
		}
		diag_error(s->d, "E202", st->callee.loc, "missing argument '%s' for %s '%s'",
			   ports[i].name, what, callee);
		diag_note(s->d, ports[i].loc, "'%s' is declared here without a default", ports[i].name);
		ports[i].value = sema_error_value();
	}
	n->inputs = ports;
	n->ninputs = nports;
}

static void check_call(struct walk *w, struct snode *n, struct sctx *cx)
{
	struct sema *s = w->s;
	const struct ast_step *st = n->ast;
	struct propseen seen;

	memset(&seen, 0, sizeof seen);
	if (!n->error)
		check_args(w, n, cx);
	else
		for (int i = 0; i < st->nargs; i++)
			(void)sema_expr(cx, st->args[i].value);
	for (int i = 0; i < st->nbody; i++) {
		const struct ast_stmt *b = st->body[i];
		if (b->kind == AST_STMT_PROP) {
			if (!n->own && !(n->own = sema_alloc(s, sizeof *n->own)))
				return;
			sema_prop(cx, n->own, &seen, b->u.prop, n->kind == SN_SUB ? PW_SUB : PW_OVERRIDE);
		} else if (b->kind == AST_STMT_INPUT || b->kind == AST_STMT_OUTPUT) {
			diag_error(s->d, "E103", b->loc, "a step that calls a %s cannot declare %s; "
				   "pass arguments in the call", n->kind == SN_SUB ? "pipeline" : "component",
				   b->kind == AST_STMT_INPUT ? "inputs" : "outputs");
		}
	}
	if (n->comp && !n->error)
		for (int i = 0; i < n->comp->nwhens; i++) {
			struct sval *v = subst_inputs(s, n->comp->whens[i], n);
			if (!has_error(v))
				n->when = and_of(s, n->when, v);
		}
}

static void check_node(struct walk *w, struct snode *n);

static void check_loop(struct walk *w, struct snode *n, struct sctx *cx)
{
	struct sema *s = w->s;
	const struct ast_for *f = n->loop_ast;
	char tn[128];

	if (f->is_range) {
		if (!f->lo || !f->hi || f->lo->kind != AST_EXPR_INT || f->hi->kind != AST_EXPR_INT) {
			diag_error(s->d, "E201", f->lo ? f->lo->loc : f->loc,
				   "a loop range needs int bounds: for i in 1..4");
			n->var_type = &type_error;
		} else {
			struct sval *v = sema_alloc(s, sizeof *v);
			if (!v)
				return;
			v->kind = SV_RANGE;
			v->type = &type_int;
			v->lo = f->lo->u.i;
			v->hi = f->hi->u.i;
			v->loc = loc_span(f->lo->loc, f->hi->loc);
			n->items = v;
			n->var_type = &type_int;
		}
	} else {
		struct sval *v = sema_expr(cx, f->items);
		n->items = v;
		if (v->kind == SV_ERROR) {
			n->var_type = &type_error;
		} else if (v->type->kind != TYPE_LIST) {
			diag_error(s->d, "E201", v->loc, "a loop needs a list to iterate over, got %s",
				   type_name(v->type, tn, sizeof tn));
			n->var_type = &type_error;
			n->items = sema_error_value();
		} else {
			n->var_type = v->type->elem ? v->type->elem : &type_error;
		}
	}
	if (f->has_parallel && f->parallel < 1) {
		diag_error(s->d, "E406", f->parallel_loc, "parallel must be at least 1");
	} else {
		n->parallel = f->has_parallel ? f->parallel : 0;
	}
	for (int i = 0; i < n->body->n; i++)
		check_node(w, n->body->nodes[i]);
}

static void check_node(struct walk *w, struct snode *n)
{
	struct sema *s = w->s;
	struct sctx cx = w->cx;
	unsigned set;

	cx.body = n->parent;
	cx.is_finally = n->is_finally;
	cx.flags = 0;
	if (n->kind == SN_LOOP) {
		check_conditions(w, n, &cx);
		check_loop(w, n, &cx);
		return;
	}
	if (n->ast->is_call)
		check_call(w, n, &cx);
	else
		check_inline(w, n, &cx);
	check_conditions(w, n, &cx);
	if (n->kind != SN_STEP || n->error) {
		n->checked = 1;
		return;
	}
	n->checked = 1;
	set = sema_node_props_set(n);
	if (!(set & SP_IMAGE))
		diag_error(s->d, "E204", n->name_loc, "step '%s' has no image (set image \"...\" on "
			   "the step, its component, or in the pipeline's defaults)", n->name);
	if (!(set & SP_CMD))
		diag_error(s->d, "E204", n->name_loc, "step '%s' has nothing to run (add run [...] "
			   "or script ...)", n->name);
	sema_interp_step(s, n);
}

static void check_outputs(struct walk *w)
{
	struct sema *s = w->s;
	struct spipe *p = w->p;
	struct sctx cx = w->cx;

	cx.body = &p->body;
	cx.flags = 0;
	for (int i = 0; i < w->nouts; i++) {
		const struct ast_output *ao = w->outs[i];
		struct sport *o = NULL;
		char what[160];
		for (int j = 0; j < p->noutputs; j++)
			if (p->outputs[j].loc.line == ao->name.loc.line &&
			    p->outputs[j].loc.col == ao->name.loc.col &&
			    p->outputs[j].loc.file == ao->name.loc.file)
				o = &p->outputs[j];
		if (!o || !ao->value)
			continue;
		o->value = sema_expr(&cx, ao->value);
		snprintf(what, sizeof what, "pipeline output '%s'", o->name);
		sema_expect(&cx, o->value, o->type, what);
		if (o->value->kind == SV_LIST || o->value->kind == SV_VAR) {
			diag_error(s->d, "E201", o->value->loc, "a pipeline output must be a parameter, "
				   "a literal or a step output");
			o->value = sema_error_value();
		}
	}
}

static void check_pipeline(struct sema *s, struct spipe *p)
{
	struct walk w;

	memset(&w, 0, sizeof w);
	w.s = s;
	w.p = p;
	w.cx.s = s;
	w.cx.file = p->file;
	w.cx.pipe = p;
	if (!p->steps)
		return;
	p->body.depth = 0;
	p->fin.depth = 0;
	p->fin.is_finally = 1;
	walk1(&w, p->ast->body, p->ast->nbody, &p->body, NULL, 0);
	if (s->oom)
		return;
	sema_interp_defaults(s, p);
	for (int i = 0; i < p->body.n && !s->oom; i++)
		check_node(&w, p->body.nodes[i]);
	for (int i = 0; i < p->fin.n && !s->oom; i++)
		check_node(&w, p->fin.nodes[i]);
	check_outputs(&w);
	p->state = 2;
}

void sema_pipes(struct sema *s)
{
	for (int fi = 0; fi < s->nfiles && !s->oom; fi++) {
		struct sfile *f = s->files[fi];
		const struct ast_file *af = f->src->ast;
		for (int i = 0; i < af->npipelines; i++) {
			struct spipe *p = af->pipelines[i]->name.s ?
				stab_get(f->pipes, af->pipelines[i]->name.s) : NULL;
			if (p && p->ast == af->pipelines[i])
				check_pipeline(s, p);
		}
	}
}

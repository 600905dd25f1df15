/* sema_decl.c - declarations: per-file symbol tables (imports, types, components, pipelines),
 * artifact type hierarchy, components, and pipeline signatures (parameters with their defaults
 * and constraints, output declarations).
 *
 * All tables are built for every file before anything is resolved, so declaration order does
 * not matter and imports can be followed in any direction. */
#include "sema.h"

#include <stdio.h>
#include <string.h>

#include "validate.h"

struct simport *sema_import(struct sfile *f, const char *alias)
{
	struct simport *im = f ? stab_get(f->imports, alias) : NULL;

	if (im)
		im->used = 1;
	return im;
}

static const char *module_name(struct sema *s, const char *path)
{
	const char *b = strrchr(path, '/');
	size_t n;

	b = b ? b + 1 : path;
	n = strlen(b);
	if (n > 4 && !strcmp(b + n - 4, ".kfp"))
		n -= 4;
	return ast_strndup(s->arena, b, n);
}

static int is_value_type_name(const char *n)
{
	return !strcmp(n, "string") || !strcmp(n, "int") || !strcmp(n, "float") ||
	       !strcmp(n, "bool") || !strcmp(n, "list") || !strcmp(n, "map");
}

const struct type *sema_type(struct sema *s, struct sfile *f, const struct ast_type *t)
{
	const char *n;
	struct arttype *ut;
	const struct arttype *bt;
	const struct type *r;

	if (!t || !t->name.s)
		return &type_error;
	n = t->name.s;
	if (t->kind == AST_TYPE_GENERIC) {
		const struct type *elem = sema_type(s, f, t->arg);
		if (strcmp(n, "list") && strcmp(n, "map")) {
			diag_error(s->d, "E101", t->name.loc,
				   "undefined generic type '%s' (expected list<T> or map<T>)", n);
			return &type_error;
		}
		if (elem->kind == TYPE_ERROR)
			return &type_error;
		r = n[0] == 'l' ? type_new_list(s->arena, elem) : type_new_map(s->arena, elem);
		if (!r) {
			s->oom = 1;
			return &type_error;
		}
		return r;
	}
	if (t->alias) {
		struct simport *im = sema_import(f, t->alias->s);
		if (!im) {
			diag_error(s->d, "E101", t->alias->loc, "undefined import alias '%s'", t->alias->s);
			return &type_error;
		}
		if (!im->target)
			return &type_error;
		if (!(ut = stab_get(im->target->types, n))) {
			diag_error(s->d, "E101", t->name.loc, "undefined type '%s.%s'", t->alias->s, n);
			return &type_error;
		}
		bt = ut;
	} else if (!strcmp(n, "string")) {
		return &type_string;
	} else if (!strcmp(n, "int")) {
		return &type_int;
	} else if (!strcmp(n, "float")) {
		return &type_float;
	} else if (!strcmp(n, "bool")) {
		return &type_bool;
	} else if (!strcmp(n, "list") || !strcmp(n, "map")) {
		diag_error(s->d, "E201", t->name.loc, "'%s' needs an element type: %s<T>", n, n);
		return &type_error;
	} else if ((bt = type_builtin_artifact(n))) {
		/* built-in artifact type */
	} else if ((ut = stab_get(f->types, n))) {
		bt = ut;
	} else {
		diag_error(s->d, "E101", t->name.loc, "undefined type '%s'", n);
		return &type_error;
	}
	if (!(r = type_new_artifact(s->arena, bt))) {
		s->oom = 1;
		return &type_error;
	}
	return r;
}

/* ---- tables ------------------------------------------------------------------------------- */

static void dup(struct sema *s, const char *what, const char *name, struct loc here,
		struct loc first)
{
	diag_error(s->d, "E102", here, "duplicate %s '%s'", what, name);
	diag_note(s->d, first, "first defined here");
}

static void build_tables(struct sema *s, struct sfile *f)
{
	const struct src_file *sf = f->src;
	const struct ast_file *af = sf->ast;

	if (!(f->imports = sema_tab(s)) || !(f->types = sema_tab(s)) || !(f->comps = sema_tab(s)) ||
	    !(f->pipes = sema_tab(s)))
		return;
	if (sf->nimports && !(f->importv = sema_alloc(s, (size_t)sf->nimports * sizeof *f->importv)))
		return;
	for (int i = 0; i < sf->nimports; i++) {
		const struct src_import *si = &sf->imports[i];
		struct simport *im, *old;
		if (!si->alias)
			continue;
		if (!(im = sema_alloc(s, sizeof *im)))
			return;
		im->alias = si->alias;
		im->loc = si->alias_loc;
		im->target = si->target >= 0 && si->target < s->nfiles ? s->files[si->target] : NULL;
		if ((old = stab_get(f->imports, im->alias))) {
			dup(s, "import alias", im->alias, im->loc, old->loc);
			continue;
		}
		f->importv[f->nimports++] = im;
		if (stab_put(f->imports, im->alias, im) < 0)
			s->oom = 1;
	}
	for (int i = 0; i < af->ntypes; i++) {
		const struct ast_typedecl *td = af->types[i];
		struct arttype *t, *old;
		if (!td->name.s)
			continue;
		if (is_value_type_name(td->name.s) || type_builtin_artifact(td->name.s)) {
			diag_error(s->d, "E102", td->name.loc, "'%s' is a built-in type", td->name.s);
			continue;
		}
		if ((old = stab_get(f->types, td->name.s))) {
			dup(s, "type", td->name.s, td->name.loc, old->loc);
			continue;
		}
		if (!(t = sema_alloc(s, sizeof *t)))
			return;
		t->name = f->index == 0 ? td->name.s : sema_fmt(s, "%s.%s", f->module, td->name.s);
		t->loc = td->name.loc;
		t->order = s->nusertypes;
		if (stab_put(f->types, td->name.s, t) < 0)
			s->oom = 1;
		{
			int cap = s->nusertypes; /* grow by one; types are few */
			struct arttype **nv = sema_alloc(s, (size_t)(cap + 1) * sizeof *nv);
			if (!nv)
				return;
			if (cap)
				memcpy(nv, s->usertypes, (size_t)cap * sizeof *nv);
			nv[cap] = t;
			s->usertypes = nv;
			s->nusertypes = cap + 1;
		}
	}
	for (int i = 0; i < af->ncomponents; i++) {
		const struct ast_component *ac = af->components[i];
		struct scomp *c, *old;
		if (!ac->name.s)
			continue;
		if ((old = stab_get(f->comps, ac->name.s))) {
			dup(s, "component", ac->name.s, ac->name.loc, old->ast->name.loc);
			continue;
		}
		if (!(c = sema_alloc(s, sizeof *c)))
			return;
		c->name = ac->name.s;
		c->display = f->index == 0 ? c->name : sema_fmt(s, "%s.%s", f->module, c->name);
		c->file = f;
		c->ast = ac;
		if (stab_put(f->comps, c->name, c) < 0)
			s->oom = 1;
	}
	for (int i = 0; i < af->npipelines; i++) {
		const struct ast_pipeline *ap = af->pipelines[i];
		struct spipe *p, *old;
		struct scomp *c;
		if (!ap->name.s)
			continue;
		if ((old = stab_get(f->pipes, ap->name.s))) {
			dup(s, "pipeline", ap->name.s, ap->name.loc, old->ast->name.loc);
			continue;
		}
		if ((c = stab_get(f->comps, ap->name.s))) {
			diag_error(s->d, "E102", ap->name.loc,
				   "pipeline '%s' has the name of a component", ap->name.s);
			diag_note(s->d, c->ast->name.loc, "the component is defined here");
			continue;
		}
		if (!(p = sema_alloc(s, sizeof *p)))
			return;
		p->name = ap->name.s;
		p->file = f;
		p->ast = ap;
		if (stab_put(f->pipes, p->name, p) < 0)
			s->oom = 1;
	}
}

static void resolve_type_bases(struct sema *s)
{
	for (int fi = 0; fi < s->nfiles; fi++) {
		struct sfile *f = s->files[fi];
		const struct ast_file *af = f->src->ast;
		for (int i = 0; i < af->ntypes; i++) {
			const struct ast_typedecl *td = af->types[i];
			struct arttype *t = td->name.s ? stab_get(f->types, td->name.s) : NULL;
			const struct type *bt;
			if (!t || t->loc.line != td->name.loc.line || t->loc.col != td->name.loc.col)
				continue;
			t->base = type_builtin_artifact("Artifact");
			if (!td->base)
				continue;
			bt = sema_type(s, f, td->base);
			if (bt->kind == TYPE_ERROR)
				continue;
			if (bt->kind != TYPE_ARTIFACT) {
				diag_error(s->d, "E201", td->base->loc,
					   "the base of an artifact type must be an artifact type");
				continue;
			}
			t->base = bt->art;
		}
	}
	/* cycles: a chain longer than the number of user types loops */
	for (int i = 0; i < s->nusertypes; i++) {
		const struct arttype *t = s->usertypes[i];
		int steps = 0;
		while (t && steps <= s->nusertypes + 1) {
			t = t->base;
			steps++;
			if (t == s->usertypes[i])
				break;
		}
		if (t == s->usertypes[i]) {
			diag_error(s->d, "E301", s->usertypes[i]->loc,
				   "artifact type '%s' is its own ancestor", s->usertypes[i]->name);
			s->usertypes[i]->base = type_builtin_artifact("Artifact");
		}
	}
}

/* ---- outputs shared by components and inline steps -------------------------------------------- */

void sema_output_decl(struct sctx *cx, struct sport *o, const struct ast_output *ao)
{
	struct sema *s = cx->s;

	o->name = ao->name.s;
	o->loc = ao->name.loc;
	o->doc = ao->doc;
	o->type = sema_type(s, cx->file, ao->type);
	if (o->type->kind == TYPE_LIST && type_is_artifact(o->type)) {
		diag_error(s->d, "E201", ao->type->loc, "a step output cannot be a list of artifacts "
			   "(lists of artifacts come from collect())");
		o->type = &type_error;
	} else if (o->type->kind == TYPE_MAP && type_is_artifact(o->type)) {
		diag_error(s->d, "E201", ao->type->loc, "a map cannot hold artifacts");
		o->type = &type_error;
	}
	o->from = FROM_PATH;
	if (ao->from) {
		if (type_is_artifact(o->type)) {
			diag_error(s->d, "E103", ao->from->loc, "an artifact output is always the file or "
				   "directory at {{outputs.%s}}; 'from' is for value outputs", o->name);
		} else if (!strcmp(ao->from->s, "file")) {
			if (!ao->from_arg || ao->from_arg->kind != AST_EXPR_STRING ||
			    !ao->from_arg->u.str.len) {
				diag_error(s->d, "E103", ao->from->loc,
					   "'from file' needs a relative path: from file \"out.txt\"");
			} else if (ao->from_arg->u.str.s[0] == '/') {
				diag_error(s->d, "E406", ao->from_arg->loc,
					   "'from file' takes a path relative to the working directory");
			} else {
				o->from = FROM_FILE;
				o->path = ao->from_arg->u.str.s;
			}
		} else if (!strcmp(ao->from->s, "stdout")) {
			if (ao->from_arg)
				diag_error(s->d, "E103", ao->from_arg->loc,
					   "'from stdout' takes no argument");
			o->from = FROM_STDOUT;
		} else {
			diag_error(s->d, "E103", ao->from->loc,
				   "unknown output source '%s' (expected 'from file \"PATH\"' or "
				   "'from stdout')", ao->from->s);
		}
	}
	if (ao->value)
		diag_error(s->d, "E103", ao->value->loc,
			   "a step output gets its value when the step runs; '= EXPR' is only for "
			   "pipeline outputs");
}

/* ---- components ---------------------------------------------------------------------------- */

static void check_component(struct sema *s, struct scomp *c)
{
	struct sctx cx = {s, c->file, NULL, c, NULL, 0, 0};
	const struct ast_component *ac = c->ast;
	struct propseen seen;
	int nin = 0, nout = 0, nwhen = 0;

	memset(&seen, 0, sizeof seen);
	for (int i = 0; i < ac->nbody; i++) {
		nin += ac->body[i]->kind == AST_STMT_INPUT;
		nout += ac->body[i]->kind == AST_STMT_OUTPUT;
		nwhen += ac->body[i]->kind == AST_STMT_WHEN;
	}
	c->inputs = sema_alloc(s, (size_t)(nin + 1) * sizeof *c->inputs);
	c->outputs = sema_alloc(s, (size_t)(nout + 1) * sizeof *c->outputs);
	c->whens = sema_alloc(s, (size_t)(nwhen + 1) * sizeof *c->whens);
	if (!c->inputs || !c->outputs || !c->whens)
		return;
	for (int i = 0; i < ac->nbody; i++) {
		const struct ast_stmt *st = ac->body[i];
		if (st->kind == AST_STMT_INPUT) {
			const struct ast_input *ai = st->u.input;
			struct sport *in;
			int isdup = 0;
			for (int j = 0; j < c->ninputs; j++)
				if (!strcmp(c->inputs[j].name, ai->name.s)) {
					dup(s, "input", ai->name.s, ai->name.loc, c->inputs[j].loc);
					isdup = 1;
				}
			if (isdup)
				continue;
			in = &c->inputs[c->ninputs++];
			in->name = ai->name.s;
			in->loc = ai->name.loc;
			in->doc = ai->doc;
			in->type = sema_type(s, c->file, ai->type);
			if (in->type->kind == TYPE_MAP && type_is_artifact(in->type)) {
				diag_error(s->d, "E201", ai->type->loc, "a map cannot hold artifacts");
				in->type = &type_error;
			}
			if (ai->value) {
				struct sctx dcx = {s, c->file, NULL, NULL, NULL, 0, EX_CONST};
				in->value = sema_expr(&dcx, ai->value);
				in->has_default = 1;
				if (type_is_artifact(in->type) && in->value->kind != SV_ERROR) {
					diag_error(s->d, "E201", ai->value->loc,
						   "an artifact input cannot have a default value");
					in->value = sema_error_value();
				} else {
					char what[160];
					snprintf(what, sizeof what, "the default of input '%s'", in->name);
					sema_expect(&dcx, in->value, in->type, what);
				}
			}
		} else if (st->kind == AST_STMT_OUTPUT) {
			const struct ast_output *ao = st->u.output;
			int isdup = 0;
			for (int j = 0; j < c->noutputs; j++)
				if (!strcmp(c->outputs[j].name, ao->name.s)) {
					dup(s, "output", ao->name.s, ao->name.loc, c->outputs[j].loc);
					isdup = 1;
				}
			if (!isdup)
				sema_output_decl(&cx, &c->outputs[c->noutputs++], ao);
		} else if (st->kind == AST_STMT_PROP) {
			sema_prop(&cx, &c->props, &seen, st->u.prop, PW_COMPONENT);
		}
	}
	cx.flags = EX_COND | EX_COMPONENT;
	for (int i = 0; i < ac->nbody; i++) {
		const struct ast_stmt *st = ac->body[i];
		if (st->kind == AST_STMT_WHEN) {
			struct sval *v = sema_expr(&cx, st->u.when);
			if (sema_expect(&cx, v, &type_bool, "a condition") == 0 && v->kind != SV_ERROR)
				c->whens[c->nwhens++] = v;
		} else if (st->kind != AST_STMT_INPUT && st->kind != AST_STMT_OUTPUT &&
			   st->kind != AST_STMT_PROP) {
			diag_error(s->d, "E001", st->loc, "not allowed in a component");
		}
	}
	sema_interp_component(s, c);
}

/* ---- parameters ----------------------------------------------------------------------------- */

static double num(const struct ast_expr *e)
{
	return e->kind == AST_EXPR_INT ? (double)e->u.i : e->u.f;
}

static int lit_equal(const struct ast_expr *a, const struct ast_expr *b)
{
	if ((a->kind == AST_EXPR_INT || a->kind == AST_EXPR_FLOAT) &&
	    (b->kind == AST_EXPR_INT || b->kind == AST_EXPR_FLOAT))
		return num(a) == num(b);
	if (a->kind != b->kind)
		return 0;
	switch (a->kind) {
	case AST_EXPR_STRING:
		return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
	case AST_EXPR_BOOL:
		return a->u.b == b->u.b;
	case AST_EXPR_LIST:
		if (a->u.list.nitems != b->u.list.nitems)
			return 0;
		for (int i = 0; i < a->u.list.nitems; i++)
			if (!lit_equal(a->u.list.items[i], b->u.list.items[i]))
				return 0;
		return 1;
	default:
		return 0;
	}
}

static void check_param(struct sema *s, struct spipe *p, struct sparam *sp,
			const struct ast_param *ap)
{
	struct sctx cx = {s, p->file, NULL, NULL, NULL, 0, EX_CONST};
	struct sval *dv = NULL;
	char tn[128];

	sp->name = ap->name.s;
	sp->loc = ap->name.loc;
	sp->doc = ap->doc;
	sp->type = sema_type(s, p->file, ap->type);
	if (type_is_artifact(sp->type)) {
		diag_error(s->d, "E201", ap->type->loc, "a parameter is a value; artifact type '%s' "
			   "is not allowed (artifacts are produced by steps)",
			   type_name(sp->type, tn, sizeof tn));
		sp->type = &type_error;
	}
	if (sp->type->kind == TYPE_ERROR)
		sp->error = 1;
	if (ap->def) {
		char what[160];
		dv = sema_expr(&cx, ap->def);
		snprintf(what, sizeof what, "parameter '%s'", sp->name);
		if (dv->kind == SV_ERROR || sema_expect(&cx, dv, sp->type, what) < 0)
			dv = NULL;
		else
			sp->def = ap->def;
	}
	for (int i = 0; i < ap->nconstraints; i++) {
		const struct ast_constraint *c = &ap->constraints[i];
		switch (c->kind) {
		case AST_CONSTRAINT_RANGE:
			if (!sp->error && !type_is_number(sp->type)) {
				diag_error(s->d, "E201", c->loc, "a range constraint needs an int or "
					   "float parameter, '%s' is %s", sp->name,
					   type_name(sp->type, tn, sizeof tn));
				break;
			}
			if (!c->lo || !c->hi || (c->lo->kind != AST_EXPR_INT && c->lo->kind != AST_EXPR_FLOAT) ||
			    (c->hi->kind != AST_EXPR_INT && c->hi->kind != AST_EXPR_FLOAT))
				break;
			if (sp->type->kind == TYPE_INT &&
			    (c->lo->kind == AST_EXPR_FLOAT || c->hi->kind == AST_EXPR_FLOAT)) {
				diag_error(s->d, "E201", c->loc,
					   "the range of int parameter '%s' must have int bounds", sp->name);
				break;
			}
			if (num(c->lo) > num(c->hi)) {
				diag_error(s->d, "E406", c->loc, "empty range: %g is greater than %g",
					   num(c->lo), num(c->hi));
				break;
			}
			sp->has_min = sp->has_max = 1;
			sp->min = c->lo;
			sp->max = c->hi;
			if (dv && (num(ap->def) < num(c->lo) || num(ap->def) > num(c->hi)))
				diag_error(s->d, "E406", ap->def->loc, "default %s of '%s' is outside its "
					   "range %g..%g", ap->def->kind == AST_EXPR_INT ?
					   sema_fmt(s, "%lld", (long long)ap->def->u.i) :
					   sema_fmt(s, "%g", ap->def->u.f), sp->name, num(c->lo), num(c->hi));
			break;
		case AST_CONSTRAINT_ONE_OF: {
			int ok = 1, found = 0;
			if (!c->list || c->list->kind != AST_EXPR_LIST)
				break;
			if (!c->list->u.list.nitems) {
				diag_error(s->d, "E406", c->loc, "'in []' allows no value at all");
				break;
			}
			for (int j = 0; j < c->list->u.list.nitems; j++) {
				struct sval *v = sema_expr(&cx, c->list->u.list.items[j]);
				if (v->kind == SV_ERROR ||
				    sema_expect(&cx, v, sp->type, "every allowed value") < 0)
					ok = 0;
				else if (dv && lit_equal(ap->def, c->list->u.list.items[j]))
					found = 1;
			}
			if (!ok)
				break;
			sp->one_of = c->list;
			if (dv && !found)
				diag_error(s->d, "E406", ap->def->loc,
					   "default of '%s' is not one of the allowed values", sp->name);
			break;
		}
		case AST_CONSTRAINT_MATCHES: {
			char msg[256];
			size_t off = 0;
			if (!c->regex || c->regex->kind != AST_EXPR_STRING)
				break;
			if (!sp->error && sp->type->kind != TYPE_STRING) {
				diag_error(s->d, "E201", c->loc, "'matches' needs a string parameter, '%s' "
					   "is %s", sp->name, type_name(sp->type, tn, sizeof tn));
				break;
			}
			if (validate_regex(c->regex->u.str.s, c->regex->u.str.len, &off, msg,
					   sizeof msg)) {
				diag_error(s->d, "E401", sema_string_loc(s, c->regex, off, 1, 0),
					   "invalid regular expression: %s", msg);
				break;
			}
			sp->regex = c->regex->u.str.s;
			if (dv && ap->def->kind == AST_EXPR_STRING &&
			    validate_regex_match(sp->regex, ap->def->u.str.s, 1) == 0)
				diag_error(s->d, "E406", ap->def->loc, "default \"%s\" of '%s' does not "
					   "match /%s/", ap->def->u.str.s, sp->name, sp->regex);
			break;
		}
		}
	}
}

static void check_signature(struct sema *s, struct spipe *p)
{
	const struct ast_pipeline *ap = p->ast;

	if (!(p->param_tab = sema_tab(s)) || !(p->steps = sema_tab(s)))
		return;
	/* one entry per top-level statement at most (most are steps): no rehashing as it fills;
	 * a failure here only means the table grows as it goes */
	(void)stab_reserve(p->steps, (size_t)ap->nbody);
	if (ap->nparams && !(p->params = sema_alloc(s, (size_t)ap->nparams * sizeof *p->params)))
		return;
	for (int i = 0; i < ap->nparams; i++) {
		struct sparam *sp = &p->params[p->nparams], *old;
		if (!ap->params[i]->name.s)
			continue;
		if ((old = stab_get(p->param_tab, ap->params[i]->name.s))) {
			dup(s, "parameter", ap->params[i]->name.s, ap->params[i]->name.loc, old->loc);
			continue;
		}
		check_param(s, p, sp, ap->params[i]);
		if (stab_put(p->param_tab, sp->name, sp) < 0)
			s->oom = 1;
		p->nparams++;
	}
}

/* Pipeline output declarations (types only), so that other pipelines can use this one as a
 * step before its body is checked. Outputs inside `if` count; inside `for` they are errors. */
static void collect_outputs(struct sema *s, struct spipe *p, struct ast_stmt **body, int n, int *cap)
{
	for (int i = 0; i < n; i++) {
		const struct ast_stmt *st = body[i];
		if (st->kind == AST_STMT_OUTPUT) {
			const struct ast_output *ao = st->u.output;
			struct sport *o;
			int isdup = 0;
			for (int j = 0; j < p->noutputs; j++)
				if (!strcmp(p->outputs[j].name, ao->name.s)) {
					dup(s, "pipeline output", ao->name.s, ao->name.loc,
					    p->outputs[j].loc);
					isdup = 1;
				}
			if (isdup)
				continue;
			if (!(o = sema_push(s, (void **)&p->outputs, &p->noutputs, cap, sizeof *o)))
				return;
			o->name = ao->name.s;
			o->loc = ao->name.loc;
			o->doc = ao->doc;
			o->type = sema_type(s, p->file, ao->type);
			if (ao->from)
				diag_error(s->d, "E103", ao->from->loc,
					   "a pipeline output takes its value with '= EXPR', not 'from'");
			if (!ao->value)
				diag_error(s->d, "E202", ao->loc, "pipeline output '%s' needs a value: "
					   "out %s: TYPE = STEP.OUTPUT", o->name, o->name);
		} else if (st->kind == AST_STMT_IF) {
			for (const struct ast_if *c = st->u.cond; c; c = c->else_if) {
				collect_outputs(s, p, c->then_body, c->nthen, cap);
				if (c->has_else)
					collect_outputs(s, p, c->else_body, c->nelse, cap);
			}
		}
	}
}

void sema_decl(struct sema *s)
{
	struct src_program *prog = s->prog;

	s->nfiles = prog->nfiles;
	if (!(s->files = sema_alloc(s, (size_t)(prog->nfiles + 1) * sizeof *s->files)))
		return;
	for (int i = 0; i < prog->nfiles; i++) {
		struct sfile *f = sema_alloc(s, sizeof *f);
		if (!f)
			return;
		f->src = prog->files[i];
		f->index = i;
		f->is_std = prog->files[i]->is_std;
		f->lint = !f->is_std;
		f->module = module_name(s, prog->files[i]->path);
		s->files[i] = f;
	}
	for (int i = 0; i < s->nfiles && !s->oom; i++)
		build_tables(s, s->files[i]);
	if (s->oom)
		return;
	resolve_type_bases(s);
	for (int fi = 0; fi < s->nfiles && !s->oom; fi++) {
		struct sfile *f = s->files[fi];
		const struct ast_file *af = f->src->ast;
		for (int i = 0; i < af->ncomponents; i++) {
			struct scomp *c = af->components[i]->name.s ?
				stab_get(f->comps, af->components[i]->name.s) : NULL;
			if (c && c->ast == af->components[i])
				check_component(s, c);
		}
		for (int i = 0; i < af->npipelines; i++) {
			struct spipe *p = af->pipelines[i]->name.s ?
				stab_get(f->pipes, af->pipelines[i]->name.s) : NULL;
			int cap = 0;
			if (p && p->ast == af->pipelines[i]) {
				check_signature(s, p);
				collect_outputs(s, p, p->ast->body, p->ast->nbody, &cap);
			}
		}
	}
}

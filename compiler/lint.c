/* lint.c - warnings W001-W005 (SPEC §8) over the files that are not the standard library.
 *
 * W003 (image tags) is reported where the image property is checked (sema_props.c); the rest
 * need the whole program's usage marks and run here, after every pipeline has been checked.
 * `// kfpc:ignore CODE` suppression and -Werror are handled by diag. */
#include "sema.h"

static void lint_body(struct sema *s, struct spipe *p, struct sbody *b)
{
	for (int i = 0; i < b->n; i++) {
		struct snode *n = b->nodes[i];
		if (n->kind == SN_LOOP) {
			lint_body(s, p, n->body);
			continue;
		}
		if (n->error || n->kind != SN_STEP)
			continue;
		if (!n->comp)
			for (int j = 0; j < n->noutputs; j++)
				if (!n->outputs[j].used && n->outputs[j].type &&
				    n->outputs[j].type->kind != TYPE_ERROR)
					diag_warning(s->d, "W002", n->outputs[j].loc,
						     "output '%s' of step '%s' is never used",
						     n->outputs[j].name, n->name);
		if (n->checked && !(sema_node_props_set(n) & SP_TIMEOUT) && !p->timeout_ms)
			diag_warning(s->d, "W004", n->name_loc,
				     "step '%s' has no timeout (set one on the step, its component, in "
				     "defaults, or for the pipeline)", n->name);
	}
}

void sema_lint(struct sema *s)
{
	for (int fi = 0; fi < s->nfiles; fi++) {
		struct sfile *f = s->files[fi];
		const struct ast_file *af = f->src->ast;
		if (!f->lint)
			continue;
		for (int i = 0; i < f->nimports; i++)
			if (!f->importv[i]->used && f->importv[i]->target)
				diag_warning(s->d, "W005", f->importv[i]->loc,
					     "import '%s' is never used", f->importv[i]->alias);
		for (int i = 0; i < af->npipelines; i++) {
			struct spipe *p = af->pipelines[i]->name.s ?
				stab_get(f->pipes, af->pipelines[i]->name.s) : NULL;
			if (!p || p->ast != af->pipelines[i] || p->state != 2)
				continue;
			for (int j = 0; j < p->nparams; j++)
				if (!p->params[j].used && !p->params[j].error)
					diag_warning(s->d, "W001", p->params[j].loc,
						     "parameter '%s' is never used", p->params[j].name);
			lint_body(s, p, &p->body);
			lint_body(s, p, &p->fin);
		}
	}
}

/* interp.c - placeholder scanning and checking (SPEC §5 interpolation; E304, E601).
 *
 * interp_scan() is the pure scanner; the sema_interp_* functions check the placeholders of a
 * step's strings (run, script, env, workdir) against what the step has: its inputs and outputs,
 * the pipeline's parameters, run.{id,name,status} (status only in finally steps) and
 * step.{name,attempt}. */
#include "interp.h"

#include <stdio.h>
#include <string.h>

#include "sema.h"

static int is_ident_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

int interp_scan(const char *t, size_t len, void (*cb)(void *ctx, const struct interp_ph *ph),
		void *ctx)
{
	int count = 0;

	for (size_t i = 0; i < len; i++) {
		struct interp_ph ph;
		size_t j, a, b;
		if (t[i] == '\\') {
			i++;
			continue;
		}
		if (t[i] != '{' || i + 1 >= len || t[i + 1] != '{')
			continue;
		memset(&ph, 0, sizeof ph);
		ph.off = i;
		for (j = i + 2; j + 1 < len && !(t[j] == '}' && t[j + 1] == '}'); j++)
			if (t[j] == '\n' || (t[j] == '{' && t[j + 1] == '{'))
				break;
		if (j + 1 >= len || t[j] != '}') {
			ph.len = 2;
			ph.malformed = 1;
			count++;
			cb(ctx, &ph);
			i++;
			continue;
		}
		ph.len = j + 2 - i;
		a = i + 2;
		b = j;
		while (a < b && (t[a] == ' ' || t[a] == '\t'))
			a++;
		while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t'))
			b--;
		ph.ns = t + a;
		while (a < b && is_ident_char(t[a], t + a == ph.ns))
			a++;
		ph.nslen = (size_t)(t + a - ph.ns);
		if (a < b && t[a] == '.' && ph.nslen) {
			ph.field = t + ++a;
			while (a < b && is_ident_char(t[a], t + a == ph.field))
				a++;
			ph.fieldlen = (size_t)(t + a - ph.field);
		}
		ph.malformed = !ph.nslen || !ph.fieldlen || a != b;
		count++;
		cb(ctx, &ph);
		i = j + 1;
	}
	return count;
}

/* ---- checking ------------------------------------------------------------------------------ */

enum { CHK_ALL, CHK_LOCAL, CHK_PIPE };

struct chk {
	struct sema *s;
	const struct ast_expr *e;   /* the string being scanned */
	struct sport *inputs, *outputs;
	int ninputs, noutputs;
	int know_ports;             /* inputs/outputs are known (not defaults) */
	struct spipe *pipe;         /* params; NULL in components */
	int is_finally;
	int mode;                   /* CHK_ALL; CHK_LOCAL: component pass (skip params, run.status);
				     * CHK_PIPE: component strings at a call (only params, run.status) */
	struct snode *step;         /* CHK_PIPE: the calling step */
	struct scomp *comp;         /* the component being checked (CHK_LOCAL) */
	int status_reported;        /* CHK_PIPE: E304 said once per calling step */
};

/* "step 'x'" or "component 'c'": what has the inputs and outputs, for messages. */
static const char *where(const struct chk *c, char *buf, size_t n)
{
	if (c->comp)
		snprintf(buf, n, "component '%s'", c->comp->name);
	else if (c->step)
		snprintf(buf, n, "step '%s'", c->step->name);
	else
		snprintf(buf, n, "defaults");
	return buf;
}

static int eq(const char *a, size_t n, const char *lit)
{
	return strlen(lit) == n && !memcmp(a, lit, n);
}

static int has_port(const struct sport *p, int n, const char *name, size_t len)
{
	for (int i = 0; i < n; i++)
		if (p[i].name && eq(name, len, p[i].name))
			return 1;
	return 0;
}

static void check_ph(void *ctx, const struct interp_ph *ph)
{
	struct chk *c = ctx;
	struct sema *s = c->s;
#define PHLOC sema_string_loc(s, c->e, ph->off, ph->len, 1) /* computed only when reporting */
	const char *tmpl = c->e->u.str.tmpl;
	int plen = (int)ph->len;
	const char *ptext = tmpl + ph->off;

	if (ph->malformed) {
		if (c->mode == CHK_PIPE)
			return;
		diag_error(s->d, "E601", PHLOC, "malformed placeholder '%.*s' (expected {{NAME.FIELD}}; "
			   "write \\{ for a literal brace)", plen > 60 ? 60 : plen, ptext);
		return;
	}
	if (eq(ph->ns, ph->nslen, "inputs") || eq(ph->ns, ph->nslen, "outputs")) {
		int in = ph->ns[0] == 'i';
		if (c->mode == CHK_PIPE || !c->know_ports)
			return;
		if (!has_port(in ? c->inputs : c->outputs, in ? c->ninputs : c->noutputs, ph->field,
			      ph->fieldlen)) {
			char wb[300];
			diag_error(s->d, "E601", PHLOC, "unknown placeholder '%.*s': %s has no %s '%.*s'",
				   plen, ptext, where(c, wb, sizeof wb), in ? "input" : "output",
				   (int)ph->fieldlen, ph->field);
		}
		return;
	}
	if (eq(ph->ns, ph->nslen, "params")) {
		struct sparam *p;
		char name[256];
		if (c->mode == CHK_LOCAL)
			return;
		snprintf(name, sizeof name, "%.*s", (int)ph->fieldlen, ph->field);
		p = c->pipe ? stab_get(c->pipe->param_tab, name) : NULL;
		if (p) {
			p->used = 1;
			return;
		}
		if (c->mode == CHK_PIPE) {
			diag_error(s->d, "E601", c->step->ast->callee.loc,
				   "component '%s' uses '%.*s', but pipeline '%s' has no parameter '%s'",
				   c->step->comp->name, plen, ptext, c->pipe->name, name);
			diag_note(s->d, PHLOC, "the placeholder is here");
		} else {
			diag_error(s->d, "E601", PHLOC, "unknown placeholder '%.*s': pipeline '%s' has no "
				   "parameter '%s'", plen, ptext, c->pipe ? c->pipe->name : "?", name);
		}
		return;
	}
	if (eq(ph->ns, ph->nslen, "run")) {
		if (eq(ph->field, ph->fieldlen, "status")) {
			if (c->mode == CHK_LOCAL || c->is_finally)
				return;
			if (c->mode == CHK_PIPE) {
				if (c->status_reported++) /* one error per step, not per use */
					return;
				diag_error(s->d, "E304", c->step->ast->callee.loc,
					   "component '%s' uses {{run.status}}, which only a finally step "
					   "can use; '%s' is not a finally step", c->step->comp->name,
					   c->step->name);
				diag_note(s->d, PHLOC, "{{run.status}} is used here");
			} else {
				diag_error(s->d, "E304", PHLOC, "{{run.status}} can only be used in a "
					   "finally step");
			}
			return;
		}
		if (c->mode != CHK_PIPE && !eq(ph->field, ph->fieldlen, "id") &&
		    !eq(ph->field, ph->fieldlen, "name"))
			diag_error(s->d, "E601", PHLOC, "unknown placeholder '%.*s' (run has id, name and "
				   "status)", plen, ptext);
		return;
	}
	if (eq(ph->ns, ph->nslen, "step")) {
		if (c->mode != CHK_PIPE && !eq(ph->field, ph->fieldlen, "name") &&
		    !eq(ph->field, ph->fieldlen, "attempt"))
			diag_error(s->d, "E601", PHLOC, "unknown placeholder '%.*s' (step has name and "
				   "attempt)", plen, ptext);
		return;
	}
	if (c->mode != CHK_PIPE)
		diag_error(s->d, "E601", PHLOC, "unknown placeholder '%.*s' (expected inputs.X, "
			   "outputs.X, params.X, run.id, run.name, run.status, step.name or "
			   "step.attempt)", plen, ptext);
#undef PHLOC
}

static void scan_expr(struct chk *c, const struct ast_expr *e)
{
	if (!e || e->kind != AST_EXPR_STRING || !e->u.str.tmpl)
		return;
	c->e = e;
	interp_scan(e->u.str.tmpl, e->u.str.tmpl_len, check_ph, c);
}

static void scan_props(struct chk *c, const struct sprops *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nrun && p->cmd == CMD_RUN; i++)
		scan_expr(c, p->run[i]);
	if (p->cmd == CMD_SCRIPT)
		scan_expr(c, p->script);
	for (int i = 0; i < p->nenv; i++)
		scan_expr(c, p->env[i].value);
	if (p->has_workdir)
		scan_expr(c, p->workdir);
}

void sema_interp_component(struct sema *s, struct scomp *comp)
{
	struct chk c;

	memset(&c, 0, sizeof c);
	c.s = s;
	c.inputs = comp->inputs;
	c.ninputs = comp->ninputs;
	c.outputs = comp->outputs;
	c.noutputs = comp->noutputs;
	c.know_ports = 1;
	c.mode = CHK_LOCAL;
	c.comp = comp;
	scan_props(&c, &comp->props);
}

void sema_interp_defaults(struct sema *s, struct spipe *p)
{
	struct chk c;

	if (!p->defaults)
		return;
	memset(&c, 0, sizeof c);
	c.s = s;
	c.pipe = p;
	c.mode = CHK_ALL;
	scan_props(&c, p->defaults);
}

void sema_interp_step(struct sema *s, struct snode *n)
{
	struct chk c;

	memset(&c, 0, sizeof c);
	c.s = s;
	c.inputs = n->inputs;
	c.ninputs = n->ninputs;
	c.outputs = n->outputs;
	c.noutputs = n->noutputs;
	c.know_ports = 1;
	c.pipe = n->pipe;
	c.is_finally = n->is_finally;
	c.step = n;
	c.mode = CHK_ALL;
	scan_props(&c, n->own);
	if (n->comp) {
		c.mode = CHK_PIPE;
		scan_props(&c, &n->comp->props);
	}
}

/* ---- locations inside string literals ----------------------------------------------------------- */

/* Byte offset of LINE:COL in TEXT, or -1. */
static long offset_of(const char *text, size_t len, int line, int col)
{
	size_t i = 0;
	int l = 1;

	while (l < line && i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		if (!nl)
			return -1;
		i = (size_t)(nl - text) + 1;
		l++;
	}
	if (l != line || (size_t)col - 1 > len - i)
		return -1;
	return (long)(i + (size_t)col - 1);
}

static struct loc loc_at(const char *text, long start, long off, long len, struct loc base)
{
	struct loc r = base;
	int line = base.line, col = base.col;

	for (long i = start; i < off; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	r.line = r.end_line = line;
	r.col = col;
	r.end_col = col + (int)len;
	return r;
}

struct loc sema_string_loc(struct sema *s, const struct ast_expr *e, size_t off, size_t len,
			   int tmpl)
{
	size_t flen = 0;
	const char *text = diag_file_text(s->d, e->loc.file, &flen);
	long a, b, q, inner, inner_end;
	const char *want;
	size_t wlen;

	if (!text || e->kind != AST_EXPR_STRING)
		return e->loc;
	a = offset_of(text, flen, e->loc.line, e->loc.col);
	b = offset_of(text, flen, e->loc.end_line, e->loc.end_col);
	if (a < 0 || b < 0 || b <= a)
		return e->loc;
	q = (b - a >= 6 && !strncmp(text + a, "\"\"\"", 3)) ? 3 : 1;
	inner = a + q;
	inner_end = b - q;
	if (inner_end < inner)
		return e->loc;
	if (tmpl) {
		int k = 0;
		want = e->u.str.tmpl + off;
		wlen = len;
		if (off + len > e->u.str.tmpl_len)
			return e->loc;
		/* which occurrence of this text in the template is it? */
		for (size_t i = 0; i + wlen <= off; i++)
			if (!memcmp(e->u.str.tmpl + i, want, wlen))
				k++;
		for (long i = inner; i + (long)wlen <= inner_end; i++)
			if (!memcmp(text + i, want, wlen) && k-- == 0)
				return loc_at(text, a, i, (long)wlen, e->loc);
		return e->loc;
	}
	/* a decoded offset maps 1:1 only when the source spells the value literally */
	if ((size_t)(inner_end - inner) != e->u.str.len || memcmp(text + inner, e->u.str.s, e->u.str.len))
		return e->loc;
	if (off > e->u.str.len)
		off = e->u.str.len;
	if (off + len > e->u.str.len)
		len = e->u.str.len - off ? e->u.str.len - off : 1;
	return loc_at(text, a, inner + (long)off, (long)len, e->loc);
}

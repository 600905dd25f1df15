/* sema_props.c - step properties (SPEC §4.5): shapes, values and precedence.
 *
 * A property statement is `NAME parg*`; each property's arguments are positional values followed
 * by `keyword value` pairs (`retry 3 backoff 5s on [error]`). Wrong shapes are E103, repeated
 * properties E104, bad values E404 (quantities), E405 (images), E406 (other values). Merging
 * gives step > component > defaults, per key for env, labels and node_selector. */
#include "sema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "validate.h"

static const struct sprops empty_props;

int sema_is_string(const struct ast_expr *e)
{
	return e && e->kind == AST_EXPR_STRING;
}

/* The keyword name of a parg (a bare one-part reference), or NULL. */
static const char *keyword(const struct ast_parg *a)
{
	if (a->kind == AST_PARG_EXPR && a->expr && a->expr->kind == AST_EXPR_REF &&
	    a->expr->u.ref.nparts == 1)
		return a->expr->u.ref.parts[0].s;
	return NULL;
}

static const struct ast_expr *pexpr(const struct ast_parg *a)
{
	return a->kind == AST_PARG_EXPR ? a->expr : NULL;
}

static void shape(struct sctx *cx, const struct ast_prop *p, struct loc loc, const char *why)
{
	const struct propdef *d = prop_find(p->name.s);

	diag_error(cx->s->d, "E103", loc, "%s%s%s", why, d ? "; usage: " : "", d ? d->usage : "");
}

static int want_string(struct sctx *cx, const struct ast_prop *p, const struct ast_parg *a,
		       const char *what)
{
	if (!pexpr(a) || a->expr->kind != AST_EXPR_STRING) {
		char buf[128];
		snprintf(buf, sizeof buf, "'%s' needs %s", p->name.s, what);
		shape(cx, p, a->loc, buf);
		return -1;
	}
	return 0;
}

static int want_duration(struct sctx *cx, const struct ast_prop *p, const struct ast_parg *a,
			 const char *what, int64_t *ms)
{
	if (!pexpr(a) || a->expr->kind != AST_EXPR_DURATION) {
		char buf[160];
		snprintf(buf, sizeof buf, "'%s' needs a duration for %s (e.g. 30s, 10m, 1h30m)",
			 p->name.s, what);
		shape(cx, p, a->loc, buf);
		return -1;
	}
	*ms = a->expr->u.dur.ms;
	return 0;
}

static const char *cstr(const struct ast_parg *a)
{
	return a->expr->u.str.s;
}

/* Key of a block entry as text. */
static const char *entry_key(const struct ast_entry *e)
{
	return e->key.s ? e->key.s : "";
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct skv *)a)->key, ((const struct skv *)b)->key);
}

static int valid_env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* A block of KEY = "value" entries (env, labels, node_selector) into KV and N, sorted. */
static void kv_block(struct sctx *cx, const struct ast_prop *p, struct skv **kv, int *n, int env)
{
	struct sema *s = cx->s;
	const struct ast_block *b;
	struct skv *arr;
	int cnt = 0;

	if (p->nargs != 1 || p->args[0]->kind != AST_PARG_BLOCK) {
		shape(cx, p, p->nargs ? p->args[0]->loc : p->name.loc, "expected a { } block");
		return;
	}
	b = p->args[0]->block;
	if (!(arr = sema_alloc(s, (size_t)(b->nitems + 1) * sizeof *arr)))
		return;
	for (int i = 0; i < b->nitems; i++) {
		const struct ast_bitem *it = &b->items[i];
		const struct ast_entry *e = it->entry;
		struct skv *kv1;
		if (it->kind != AST_BITEM_ENTRY) {
			shape(cx, p, it->prop->loc, "expected KEY = \"VALUE\" entries");
			continue;
		}
		if (env && !valid_env_name(entry_key(e))) {
			diag_error(s->d, "E103", e->key.loc, "invalid environment variable name '%s'",
				   entry_key(e));
			continue;
		}
		if (!*entry_key(e)) {
			diag_error(s->d, "E103", e->key.loc, "empty key");
			continue;
		}
		for (int j = 0; j < cnt; j++)
			if (!strcmp(arr[j].key, entry_key(e))) {
				diag_error(s->d, "E102", e->key.loc, "duplicate key '%s'", entry_key(e));
				diag_note(s->d, arr[j].loc, "first set here");
				goto next;
			}
		kv1 = &arr[cnt];
		kv1->key = entry_key(e);
		kv1->loc = e->key.loc;
		if (e->value && e->value->kind == AST_EXPR_STRING) {
			kv1->value = e->value;
		} else if (env && e->value && e->value->kind == AST_EXPR_CALL &&
			   !strcmp(e->value->u.call.name->s, "secret")) {
			if (e->value->u.call.nargs != 1 ||
			    e->value->u.call.args[0]->kind != AST_EXPR_STRING ||
			    !e->value->u.call.args[0]->u.str.len) {
				diag_error(s->d, "E103", e->value->loc,
					   "secret() takes the secret's name as a string: secret(\"NAME\")");
				continue;
			}
			kv1->secret = e->value->u.call.args[0]->u.str.s;
		} else {
			diag_error(s->d, "E103", e->value ? e->value->loc : e->loc,
				   "the value of '%s' must be a string%s", entry_key(e),
				   env ? " or secret(\"NAME\")" : "");
			continue;
		}
		cnt++;
	next:;
	}
	qsort(arr, (size_t)cnt, sizeof *arr, kv_cmp);
	*kv = arr;
	*n = cnt;
}

static void resources(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	const struct ast_block *b;
	char msg[256];

	if (p->nargs != 1 || p->args[0]->kind != AST_PARG_BLOCK) {
		shape(cx, p, p->nargs ? p->args[0]->loc : p->name.loc, "expected a { } block");
		return;
	}
	b = p->args[0]->block;
	for (int i = 0; i < b->nitems; i++) {
		const struct ast_bitem *it = &b->items[i];
		const char *name;
		const struct ast_expr *v;
		struct loc nloc;
		if (it->kind == AST_BITEM_PROP) {
			name = it->prop->name.s;
			nloc = it->prop->name.loc;
			if (it->prop->nargs != 1 || it->prop->args[0]->kind != AST_PARG_EXPR) {
				diag_error(s->d, "E103", it->prop->loc, "'%s' takes one value", name);
				continue;
			}
			v = it->prop->args[0]->expr;
		} else {
			name = entry_key(it->entry);
			nloc = it->entry->key.loc;
			v = it->entry->value;
		}
		if (!strcmp(name, "cpu") || !strcmp(name, "memory")) {
			int cpu = name[0] == 'c';
			const char *text;
			int64_t val;
			if (v->kind == AST_EXPR_STRING)
				text = v->u.str.s;
			else if (v->kind == AST_EXPR_INT)
				text = sema_fmt(s, "%lld", (long long)v->u.i);
			else if (v->kind == AST_EXPR_FLOAT && cpu)
				text = sema_fmt(s, "%.15g", v->u.f);
			else {
				diag_error(s->d, "E103", v->loc, "'%s' needs a quantity such as %s", name,
					   cpu ? "\"500m\" or 2" : "\"512Mi\"");
				continue;
			}
			if (!text)
				return;
			if (validate_quantity(text, cpu ? QUANTITY_CPU : QUANTITY_MEMORY, &val, msg,
					      sizeof msg)) {
				diag_error(s->d, "E404", v->loc, "invalid %s quantity: %s", name, msg);
				continue;
			}
			if (cpu) {
				if (o->has_cpu)
					diag_error(s->d, "E104", nloc, "'cpu' is set twice");
				o->has_cpu = 1;
				o->cpu = text;
				o->cpu_milli = val;
			} else {
				if (o->has_memory)
					diag_error(s->d, "E104", nloc, "'memory' is set twice");
				o->has_memory = 1;
				o->memory = text;
				o->memory_bytes = val;
			}
		} else if (!strcmp(name, "gpu")) {
			if (v->kind != AST_EXPR_INT || v->u.i < 0) {
				diag_error(s->d, "E404", v->loc, "'gpu' needs a non-negative integer");
				continue;
			}
			if (o->has_gpu)
				diag_error(s->d, "E104", nloc, "'gpu' is set twice");
			o->has_gpu = 1;
			o->gpu = v->u.i;
		} else {
			diag_error(s->d, "E103", nloc,
				   "unknown resource '%s' (expected cpu, memory or gpu)", name);
		}
	}
}

static void retry(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	const struct ast_expr *e;

	if (!p->nargs || !(e = pexpr(p->args[0])) || e->kind != AST_EXPR_INT) {
		shape(cx, p, p->nargs ? p->args[0]->loc : p->name.loc,
		      "'retry' needs the number of retries first");
		return;
	}
	if (e->u.i < 0 || e->u.i > 1000) {
		diag_error(s->d, "E406", e->loc, "retry count must be between 0 and 1000");
		return;
	}
	o->has_retry = 1;
	o->retry_limit = e->u.i;
	o->backoff_ms = 1000;
	o->factor = 2;
	o->max_backoff_ms = 300000;
	o->retry_on = RETRY_ERROR | RETRY_TIMEOUT | RETRY_OOM | RETRY_INFRA;
	for (int i = 1; i < p->nargs; i++) {
		const char *kw = keyword(p->args[i]);
		const struct ast_parg *a = i + 1 < p->nargs ? p->args[i + 1] : NULL;
		if (!kw || !(!strcmp(kw, "backoff") || !strcmp(kw, "factor") || !strcmp(kw, "max") ||
			     !strcmp(kw, "on"))) {
			shape(cx, p, p->args[i]->loc, "unexpected argument to 'retry'");
			return;
		}
		if (!a) {
			char buf[96];
			snprintf(buf, sizeof buf, "'%s' needs a value", kw);
			shape(cx, p, p->args[i]->loc, buf);
			return;
		}
		i++;
		if (!strcmp(kw, "backoff")) {
			if (want_duration(cx, p, a, "backoff", &o->backoff_ms) < 0)
				return;
		} else if (!strcmp(kw, "max")) {
			if (want_duration(cx, p, a, "max", &o->max_backoff_ms) < 0)
				return;
		} else if (!strcmp(kw, "factor")) {
			const struct ast_expr *f = pexpr(a);
			double x;
			if (!f || (f->kind != AST_EXPR_INT && f->kind != AST_EXPR_FLOAT)) {
				shape(cx, p, a->loc, "'factor' needs a number");
				return;
			}
			x = f->kind == AST_EXPR_INT ? (double)f->u.i : f->u.f;
			if (!(x >= 1 && x <= 100)) {
				diag_error(s->d, "E406", f->loc, "backoff factor must be between 1 and 100");
				return;
			}
			o->factor = x;
		} else {
			const struct ast_expr *l = pexpr(a);
			unsigned mask = 0;
			if (!l || l->kind != AST_EXPR_LIST || !l->u.list.nitems) {
				shape(cx, p, a->loc, "'on' needs a list of failure kinds");
				return;
			}
			for (int j = 0; j < l->u.list.nitems; j++) {
				const struct ast_expr *k = l->u.list.items[j];
				const char *name = k->kind == AST_EXPR_REF && k->u.ref.nparts == 1 ?
					k->u.ref.parts[0].s : k->kind == AST_EXPR_STRING ? k->u.str.s : "";
				if (!strcmp(name, "error"))
					mask |= RETRY_ERROR;
				else if (!strcmp(name, "timeout"))
					mask |= RETRY_TIMEOUT;
				else if (!strcmp(name, "oom"))
					mask |= RETRY_OOM;
				else if (!strcmp(name, "infra"))
					mask |= RETRY_INFRA;
				else {
					diag_error(s->d, "E103", k->loc, "unknown failure kind (expected "
						   "error, timeout, oom or infra)");
					return;
				}
			}
			o->retry_on = mask;
		}
	}
}

static void toleration(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	struct stoleration t = {NULL, "Equal", NULL, NULL};
	struct stoleration *arr;
	struct loc vloc = p->loc;

	if (!p->nargs || want_string(cx, p, p->args[0], "the taint key as a string") < 0)
		return;
	t.key = cstr(p->args[0]);
	for (int i = 1; i < p->nargs; i += 2) {
		const char *kw = keyword(p->args[i]);
		if (!kw || (strcmp(kw, "operator") && strcmp(kw, "value") && strcmp(kw, "effect"))) {
			shape(cx, p, p->args[i]->loc, "unexpected argument to 'toleration'");
			return;
		}
		if (i + 1 >= p->nargs) {
			shape(cx, p, p->args[i]->loc, "missing value");
			return;
		}
		if (want_string(cx, p, p->args[i + 1], "a string") < 0)
			return;
		if (!strcmp(kw, "operator")) {
			t.op = cstr(p->args[i + 1]);
			if (strcmp(t.op, "Equal") && strcmp(t.op, "Exists")) {
				diag_error(s->d, "E103", p->args[i + 1]->loc,
					   "toleration operator must be \"Equal\" or \"Exists\"");
				return;
			}
		} else if (!strcmp(kw, "value")) {
			t.value = cstr(p->args[i + 1]);
			vloc = p->args[i + 1]->loc;
		} else {
			t.effect = cstr(p->args[i + 1]);
			if (strcmp(t.effect, "NoSchedule") && strcmp(t.effect, "PreferNoSchedule") &&
			    strcmp(t.effect, "NoExecute")) {
				diag_error(s->d, "E103", p->args[i + 1]->loc, "toleration effect must be "
					   "\"NoSchedule\", \"PreferNoSchedule\" or \"NoExecute\"");
				return;
			}
		}
	}
	if (!strcmp(t.op, "Exists") && t.value) {
		diag_error(s->d, "E103", vloc, "a toleration with operator \"Exists\" takes no value");
		return;
	}
	arr = sema_alloc(s, (size_t)(o->ntolerations + 1) * sizeof *arr);
	if (!arr)
		return;
	if (o->ntolerations)
		memcpy(arr, o->tolerations, (size_t)o->ntolerations * sizeof *arr);
	arr[o->ntolerations++] = t;
	o->tolerations = arr;
}

static void volume(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	struct svolume v = {NULL, NULL, 0};
	struct svolume *arr;

	if (!p->nargs || want_string(cx, p, p->args[0], "the volume's name as a string") < 0)
		return;
	v.name = cstr(p->args[0]);
	if (!*v.name) {
		diag_error(s->d, "E406", p->args[0]->loc, "empty volume name");
		return;
	}
	for (int i = 1; i < p->nargs; i++) {
		const char *kw = keyword(p->args[i]);
		if (kw && !strcmp(kw, "readonly")) {
			v.readonly = 1;
		} else if (kw && !strcmp(kw, "mount") && i + 1 < p->nargs) {
			if (want_string(cx, p, p->args[i + 1], "a mount path") < 0)
				return;
			v.mount = cstr(p->args[++i]);
			if (v.mount[0] != '/') {
				diag_error(s->d, "E406", p->args[i]->loc,
					   "a mount path must be absolute");
				return;
			}
		} else {
			shape(cx, p, p->args[i]->loc, "unexpected argument to 'volume'");
			return;
		}
	}
	if (!v.mount) {
		shape(cx, p, p->loc, "'volume' needs a mount path");
		return;
	}
	for (int i = 0; i < o->nvolumes; i++)
		if (!strcmp(o->volumes[i].mount, v.mount)) {
			diag_error(s->d, "E104", p->loc, "two volumes are mounted at '%s'", v.mount);
			return;
		}
	arr = sema_alloc(s, (size_t)(o->nvolumes + 1) * sizeof *arr);
	if (!arr)
		return;
	if (o->nvolumes)
		memcpy(arr, o->volumes, (size_t)o->nvolumes * sizeof *arr);
	arr[o->nvolumes++] = v;
	o->volumes = arr;
}

static void image(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	struct image_ref ref;
	char msg[256];
	const char *img;

	o->has_image = 1; /* even when invalid: no follow-on "no image" error */
	o->image_loc = p->loc;
	if (p->nargs != 1 || want_string(cx, p, p->args[0], "one string") < 0)
		return;
	img = cstr(p->args[0]);
	if (validate_image(img, &ref, msg, sizeof msg)) {
		diag_error(s->d, "E405", p->args[0]->loc, "malformed image reference '%s': %s", img,
			   msg);
		return;
	}
	o->has_image = 1;
	o->image = img;
	o->image_loc = p->args[0]->loc;
	if (cx->file && cx->file->lint) {
		if (ref.tag_len == 6 && !memcmp(img + ref.tag_off, "latest", 6) && !ref.digest_len)
			diag_warning(s->d, "W003", p->args[0]->loc,
				     "image '%s' uses the 'latest' tag: pin a version or a digest", img);
		else if (!ref.tag_len && !ref.digest_len)
			diag_warning(s->d, "W003", p->args[0]->loc,
				     "image '%s' has no tag or digest: pin a version (e.g. '%s:1.0')",
				     img, img);
	}
}

static void run(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	const struct ast_expr *l;

	o->cmd = CMD_RUN; /* even when invalid: no follow-on "nothing to run" error */
	o->nrun = 0;
	if (p->nargs != 1 || !(l = pexpr(p->args[0])) || l->kind != AST_EXPR_LIST) {
		shape(cx, p, p->nargs ? p->args[0]->loc : p->name.loc,
		      "'run' needs a list of strings (the argv; no implicit shell)");
		return;
	}
	if (!l->u.list.nitems) {
		diag_error(s->d, "E103", l->loc, "'run' needs at least the program to run");
		return;
	}
	for (int i = 0; i < l->u.list.nitems; i++)
		if (l->u.list.items[i]->kind != AST_EXPR_STRING) {
			diag_error(s->d, "E103", l->u.list.items[i]->loc,
				   "'run' arguments must be strings (use \"{{inputs.NAME}}\" for values)");
			return;
		}
	o->cmd = CMD_RUN;
	o->cmd_loc = p->loc;
	o->run = (const struct ast_expr **)l->u.list.items;
	o->nrun = l->u.list.nitems;
}

static void script(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	const char *kw;
	const char **argv;
	int n = 0;

	o->cmd = CMD_SCRIPT; /* even when invalid */
	o->script = NULL;
	o->ninterp = 0;
	if (p->nargs != 2) {
		shape(cx, p, p->loc, "'script' needs an interpreter and the script text");
		return;
	}
	if (want_string(cx, p, p->args[1], "the script text as a string") < 0)
		return;
	kw = keyword(p->args[0]);
	if (kw) {
		if (!(argv = sema_alloc(s, sizeof *argv)))
			return;
		if (!strcmp(kw, "sh") || !strcmp(kw, "bash") || !strcmp(kw, "python3"))
			argv[0] = kw;
		else if (!strcmp(kw, "python"))
			argv[0] = "python3";
		else {
			diag_error(s->d, "E103", p->args[0]->loc, "unknown interpreter '%s' (expected sh, "
				   "bash, python, python3 or a string like \"/usr/bin/env node\")", kw);
			return;
		}
		n = 1;
	} else if (pexpr(p->args[0]) && p->args[0]->expr->kind == AST_EXPR_STRING) {
		const char *t = cstr(p->args[0]);
		int cnt = 0;
		for (const char *q = t; *q;) {
			while (*q == ' ' || *q == '\t')
				q++;
			if (!*q)
				break;
			cnt++;
			while (*q && *q != ' ' && *q != '\t')
				q++;
		}
		if (!cnt) {
			diag_error(s->d, "E103", p->args[0]->loc, "empty interpreter");
			return;
		}
		if (!(argv = sema_alloc(s, (size_t)cnt * sizeof *argv)))
			return;
		for (const char *q = t; *q;) {
			const char *st;
			while (*q == ' ' || *q == '\t')
				q++;
			if (!*q)
				break;
			st = q;
			while (*q && *q != ' ' && *q != '\t')
				q++;
			if (!(argv[n++] = ast_strndup(s->arena, st, (size_t)(q - st)))) {
				s->oom = 1;
				return;
			}
		}
	} else {
		shape(cx, p, p->args[0]->loc, "'script' needs an interpreter first");
		return;
	}
	o->cmd = CMD_SCRIPT;
	o->cmd_loc = p->loc;
	o->interp = argv;
	o->ninterp = n;
	o->script = p->args[1]->expr;
}

static void cache(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	const char *kw = p->nargs ? keyword(p->args[0]) : NULL;
	const struct ast_expr *e = p->nargs ? pexpr(p->args[0]) : NULL;
	int on;

	if (kw && (!strcmp(kw, "on") || !strcmp(kw, "off")))
		on = kw[1] == 'n';
	else if (e && e->kind == AST_EXPR_BOOL)
		on = e->u.b;
	else {
		shape(cx, p, p->nargs ? p->args[0]->loc : p->name.loc, "'cache' needs on or off");
		return;
	}
	o->cache_max_age_ms = 0;
	if (p->nargs == 3 && on && keyword(p->args[1]) && !strcmp(keyword(p->args[1]), "max_age")) {
		if (want_duration(cx, p, p->args[2], "max_age", &o->cache_max_age_ms) < 0)
			return;
	} else if (p->nargs != 1) {
		shape(cx, p, p->args[1]->loc, "unexpected argument to 'cache'");
		return;
	}
	o->has_cache = 1;
	o->cache_enabled = on;
}

static void after(struct sctx *cx, struct sprops *o, const struct ast_prop *p)
{
	struct sema *s = cx->s;
	struct safter *arr;
	int n = o->nafter;

	if (!p->nargs) {
		shape(cx, p, p->loc, "'after' needs step names");
		return;
	}
	if (!(arr = sema_alloc(s, (size_t)(n + p->nargs) * sizeof *arr)))
		return;
	if (n)
		memcpy(arr, o->after, (size_t)n * sizeof *arr);
	for (int i = 0; i < p->nargs; i++) {
		const char *kw = keyword(p->args[i]);
		if (!kw) {
			shape(cx, p, p->args[i]->loc, "'after' takes step names");
			continue;
		}
		arr[n].name = kw;
		arr[n].loc = p->args[i]->loc;
		n++;
	}
	o->after = arr;
	o->nafter = n;
}

void sema_prop(struct sctx *cx, struct sprops *o, struct propseen *seen, const struct ast_prop *p,
	       enum prop_where where)
{
	struct sema *s = cx->s;
	const struct propdef *d = prop_find(p->name.s);
	static const unsigned wbit[] = {
		[PW_STEP] = PROP_IN_STEP,           [PW_OVERRIDE] = PROP_IN_OVERRIDE,
		[PW_SUB] = PROP_IN_SUB,             [PW_COMPONENT] = PROP_IN_COMPONENT,
		[PW_DEFAULTS] = PROP_IN_DEFAULTS,
	};
	static const char *const wname[] = {
		[PW_STEP] = "a step",
		[PW_OVERRIDE] = "the override block of a component step",
		[PW_SUB] = "a sub-pipeline step (only after and when are)",
		[PW_COMPONENT] = "a component",
		[PW_DEFAULTS] = "defaults (image, retry, timeout, resources, cache, env, workdir)",
	};

	if (!d) {
		static const char *const names[] = {
			"image", "run", "script", "env", "workdir", "resources", "retry", "timeout",
			"cache", "after", "node_selector", "toleration", "labels", "volume", "when"};
		const char *best = NULL;
		size_t bl = strlen(p->name.s);
		diag_error(s->d, "E103", p->name.loc, "unknown property '%s'", p->name.s);
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			size_t nl = strlen(names[i]), common = 0;
			for (size_t j = 0; j < nl && j < bl; j++)
				common += names[i][j] == p->name.s[j];
			if (common + 1 >= (nl > bl ? nl : bl) && (nl > 2)) {
				best = names[i];
				break;
			}
		}
		if (best)
			diag_note(s->d, p->name.loc, "did you mean '%s'?", best);
		return;
	}
	if (!(d->where & wbit[where])) {
		diag_error(s->d, "E103", p->name.loc, "'%s' is not allowed in %s", p->name.s,
			   wname[where]);
		return;
	}
	if (seen) {
		unsigned bit = 1u << d->id;
		/* run and script share one slot */
		if (d->id == PROP_SCRIPT || d->id == PROP_RUN) {
			unsigned other = 1u << (d->id == PROP_RUN ? PROP_SCRIPT : PROP_RUN);
			if (seen->mask & other) {
				diag_error(s->d, "E104", p->name.loc, "a step has either 'run' or "
					   "'script', not both");
				diag_note(s->d, seen->loc[d->id == PROP_RUN ? PROP_SCRIPT : PROP_RUN],
					  "'%s' is set here", d->id == PROP_RUN ? "script" : "run");
				return;
			}
		}
		if ((seen->mask & bit) && !(d->where & PROP_REPEATABLE)) {
			diag_error(s->d, "E104", p->name.loc, "'%s' is set more than once", p->name.s);
			diag_note(s->d, seen->loc[d->id], "first set here");
			return;
		}
		if (!(seen->mask & bit)) {
			seen->mask |= bit;
			seen->loc[d->id] = p->name.loc;
		}
	}
	switch (d->id) {
	case PROP_IMAGE: image(cx, o, p); break;
	case PROP_RUN: run(cx, o, p); break;
	case PROP_SCRIPT: script(cx, o, p); break;
	case PROP_ENV: kv_block(cx, p, &o->env, &o->nenv, 1); break;
	case PROP_WORKDIR:
		if (p->nargs != 1 || want_string(cx, p, p->args[0], "a path string") < 0)
			break;
		if (!p->args[0]->expr->u.str.len) {
			diag_error(s->d, "E406", p->args[0]->loc, "empty workdir");
			break;
		}
		o->has_workdir = 1;
		o->workdir = p->args[0]->expr;
		break;
	case PROP_RESOURCES: resources(cx, o, p); break;
	case PROP_RETRY: retry(cx, o, p); break;
	case PROP_TIMEOUT:
		if (p->nargs != 1) {
			shape(cx, p, p->loc, "'timeout' takes one duration");
			break;
		}
		if (want_duration(cx, p, p->args[0], "the timeout", &o->timeout_ms) == 0) {
			o->has_timeout = 1;
			o->timeout_loc = p->loc;
		}
		break;
	case PROP_CACHE: cache(cx, o, p); break;
	case PROP_AFTER: after(cx, o, p); break;
	case PROP_NODE_SELECTOR: kv_block(cx, p, &o->node_selector, &o->nnode_selector, 0); break;
	case PROP_TOLERATION: toleration(cx, o, p); break;
	case PROP_LABELS: kv_block(cx, p, &o->labels, &o->nlabels, 0); break;
	case PROP_VOLUME: volume(cx, o, p); break;
	default:
		/* pipeline-level properties are handled by sema_pipe.c */
		diag_error(s->d, "E103", p->name.loc, "'%s' is not allowed in %s", p->name.s,
			   wname[where]);
		break;
	}
}

/* Per-key union of key/value lists, higher level winning; result sorted. */
static void kv_merge(struct sema *s, struct skv **out, int *nout, const struct skv *a, int na,
		     const struct skv *b, int nb, const struct skv *c, int nc)
{
	const struct skv *lv[3] = {c, b, a}; /* highest precedence first */
	int ln[3] = {nc, nb, na}, used = 0, total = na + nb + nc;
	struct skv *arr;

	if (!total) {
		*out = NULL;
		*nout = 0;
		return;
	}
	if ((na != 0) + (nb != 0) + (nc != 0) == 1) {
		*out = (struct skv *)(na ? a : nb ? b : c);
		*nout = na ? na : nb ? nb : nc;
		return;
	}
	if (!(arr = sema_alloc(s, (size_t)total * sizeof *arr)))
		return;
	for (int l = 0; l < 3; l++)
		for (int i = 0; i < ln[l]; i++) {
			int dup = 0;
			for (int j = 0; j < used; j++)
				if (!strcmp(arr[j].key, lv[l][i].key)) {
					dup = 1;
					break;
				}
			if (!dup)
				arr[used++] = lv[l][i];
		}
	qsort(arr, (size_t)used, sizeof *arr, kv_cmp);
	*out = arr;
	*nout = used;
}

const struct sprops *sema_node_props(struct sema *s, const struct snode *n, struct sprops *buf)
{
	if (n->kind == SN_SUB)
		return n->own ? n->own : &empty_props;
	return sema_props_merge(s, buf, n->pipe->defaults, n->comp ? &n->comp->props : NULL, n->own);
}

unsigned sema_node_props_set(const struct snode *n)
{
	const struct sprops *lv[3] = {n->own, NULL, NULL};
	unsigned set = 0;

	if (n->kind != SN_SUB) {
		lv[1] = n->comp ? &n->comp->props : NULL;
		lv[2] = n->pipe->defaults;
	}
	for (int l = 0; l < 3; l++) {
		if (!lv[l])
			continue;
		set |= (lv[l]->has_image ? SP_IMAGE : 0) | (lv[l]->cmd != CMD_NONE ? SP_CMD : 0) |
		       (lv[l]->has_timeout ? SP_TIMEOUT : 0);
	}
	return set;
}

const struct sprops *sema_props_merge(struct sema *s, struct sprops *buf, const struct sprops *defs,
				      const struct sprops *comp, const struct sprops *step)
{
	const struct sprops *lv[3] = {step, comp, defs}; /* highest precedence first */
	struct sprops *o = buf;
	int nset = (defs != NULL) + (comp != NULL) + (step != NULL);

	if (nset == 0)
		return &empty_props;
	if (nset == 1)
		return step ? step : comp ? comp : defs;
	memset(o, 0, sizeof *o);
#define PICK(flag, ...)                                                                        \
	for (int l = 0; l < 3; l++)                                                           \
		if (lv[l] && lv[l]->flag) {                                                   \
			__VA_ARGS__;                                                          \
			break;                                                                \
		}
	PICK(has_image, o->has_image = 1; o->image = lv[l]->image; o->image_loc = lv[l]->image_loc)
	PICK(cmd, o->cmd = lv[l]->cmd; o->cmd_loc = lv[l]->cmd_loc; o->run = lv[l]->run;
	     o->nrun = lv[l]->nrun; o->interp = lv[l]->interp; o->ninterp = lv[l]->ninterp;
	     o->script = lv[l]->script)
	PICK(has_workdir, o->has_workdir = 1; o->workdir = lv[l]->workdir)
	PICK(has_cpu, o->has_cpu = 1; o->cpu = lv[l]->cpu; o->cpu_milli = lv[l]->cpu_milli)
	PICK(has_memory, o->has_memory = 1; o->memory = lv[l]->memory;
	     o->memory_bytes = lv[l]->memory_bytes)
	PICK(has_gpu, o->has_gpu = 1; o->gpu = lv[l]->gpu)
	PICK(has_retry, o->has_retry = 1; o->retry_limit = lv[l]->retry_limit;
	     o->backoff_ms = lv[l]->backoff_ms; o->max_backoff_ms = lv[l]->max_backoff_ms;
	     o->factor = lv[l]->factor; o->retry_on = lv[l]->retry_on)
	PICK(has_timeout, o->has_timeout = 1; o->timeout_ms = lv[l]->timeout_ms;
	     o->timeout_loc = lv[l]->timeout_loc)
	PICK(has_cache, o->has_cache = 1; o->cache_enabled = lv[l]->cache_enabled;
	     o->cache_max_age_ms = lv[l]->cache_max_age_ms)
	PICK(nafter, o->after = lv[l]->after; o->nafter = lv[l]->nafter)
	PICK(ntolerations, o->tolerations = lv[l]->tolerations;
	     o->ntolerations = lv[l]->ntolerations)
	PICK(nvolumes, o->volumes = lv[l]->volumes; o->nvolumes = lv[l]->nvolumes)
#undef PICK
	kv_merge(s, &o->env, &o->nenv, defs ? defs->env : NULL, defs ? defs->nenv : 0,
		 comp ? comp->env : NULL, comp ? comp->nenv : 0, step ? step->env : NULL,
		 step ? step->nenv : 0);
	kv_merge(s, &o->labels, &o->nlabels, defs ? defs->labels : NULL, defs ? defs->nlabels : 0,
		 comp ? comp->labels : NULL, comp ? comp->nlabels : 0, step ? step->labels : NULL,
		 step ? step->nlabels : 0);
	kv_merge(s, &o->node_selector, &o->nnode_selector, defs ? defs->node_selector : NULL,
		 defs ? defs->nnode_selector : 0, comp ? comp->node_selector : NULL,
		 comp ? comp->nnode_selector : 0, step ? step->node_selector : NULL,
		 step ? step->nnode_selector : 0);
	return o;
}

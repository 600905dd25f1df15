/* types.c - value and artifact types (SPEC §3). */
#include "types.h"

#include <stdio.h>
#include <string.h>

const struct type type_error = {TYPE_ERROR, NULL, NULL};
const struct type type_string = {TYPE_STRING, NULL, NULL};
const struct type type_int = {TYPE_INT, NULL, NULL};
const struct type type_float = {TYPE_FLOAT, NULL, NULL};
const struct type type_bool = {TYPE_BOOL, NULL, NULL};

static const struct arttype art_root = {"Artifact", NULL, {-1, 0, 0, 0, 0}, 1, 0, 0};
static const struct arttype art_builtin[] = {
	{"Dataset", &art_root, {-1, 0, 0, 0, 0}, 1, 0, 0},
	{"Model", &art_root, {-1, 0, 0, 0, 0}, 1, 0, 0},
	{"Metrics", &art_root, {-1, 0, 0, 0, 0}, 1, 0, 0},
	{"HTML", &art_root, {-1, 0, 0, 0, 0}, 1, 0, 0},
	{"Markdown", &art_root, {-1, 0, 0, 0, 0}, 1, 0, 0},
};

const struct arttype *type_builtin_artifact(const char *name)
{
	if (!strcmp(name, art_root.name))
		return &art_root;
	for (size_t i = 0; i < sizeof art_builtin / sizeof art_builtin[0]; i++)
		if (!strcmp(name, art_builtin[i].name))
			return &art_builtin[i];
	return NULL;
}

static const struct type *mk(struct ast_arena *a, enum type_kind k, const struct type *elem,
			     const struct arttype *art)
{
	struct type *t = ast_alloc(a, sizeof *t);

	if (!t)
		return NULL;
	t->kind = k;
	t->elem = elem;
	t->art = art;
	return t;
}

const struct type *type_new_list(struct ast_arena *a, const struct type *elem)
{
	return mk(a, TYPE_LIST, elem, NULL);
}

const struct type *type_new_map(struct ast_arena *a, const struct type *elem)
{
	return mk(a, TYPE_MAP, elem, NULL);
}

const struct type *type_new_artifact(struct ast_arena *a, const struct arttype *art)
{
	return mk(a, TYPE_ARTIFACT, NULL, art);
}

int type_art_isa(const struct arttype *s, const struct arttype *t)
{
	for (int guard = 0; s && guard < 1000; s = s->base, guard++)
		if (s == t || !strcmp(s->name, t->name))
			return 1;
	return 0;
}

int type_assignable(const struct type *to, const struct type *from)
{
	if (!to || !from || to->kind == TYPE_ERROR || from->kind == TYPE_ERROR)
		return 1;
	switch (to->kind) {
	case TYPE_FLOAT:
		return from->kind == TYPE_FLOAT || from->kind == TYPE_INT;
	case TYPE_LIST:
	case TYPE_MAP:
		if (from->kind != to->kind)
			return 0;
		if (!from->elem || !to->elem)
			return 1;
		return type_assignable(to->elem, from->elem);
	case TYPE_ARTIFACT:
		return from->kind == TYPE_ARTIFACT && type_art_isa(from->art, to->art);
	default:
		return from->kind == to->kind;
	}
}

int type_is_artifact(const struct type *t)
{
	while (t && (t->kind == TYPE_LIST || t->kind == TYPE_MAP))
		t = t->elem;
	return t && t->kind == TYPE_ARTIFACT;
}

int type_is_number(const struct type *t)
{
	return t && (t->kind == TYPE_INT || t->kind == TYPE_FLOAT || t->kind == TYPE_ERROR);
}

char *type_name(const struct type *t, char *buf, size_t n)
{
	char inner[256];

	if (!n)
		return buf;
	if (!t) {
		snprintf(buf, n, "?");
		return buf;
	}
	switch (t->kind) {
	case TYPE_ERROR: snprintf(buf, n, "<error>"); break;
	case TYPE_STRING: snprintf(buf, n, "string"); break;
	case TYPE_INT: snprintf(buf, n, "int"); break;
	case TYPE_FLOAT: snprintf(buf, n, "float"); break;
	case TYPE_BOOL: snprintf(buf, n, "bool"); break;
	case TYPE_LIST:
	case TYPE_MAP:
		if (t->elem)
			type_name(t->elem, inner, sizeof inner);
		else
			snprintf(inner, sizeof inner, "?");
		snprintf(buf, n, "%s<%s>", t->kind == TYPE_LIST ? "list" : "map", inner);
		break;
	case TYPE_ARTIFACT: snprintf(buf, n, "%s", t->art->name); break;
	}
	return buf;
}

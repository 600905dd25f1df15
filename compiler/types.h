/* types.h - the types of SPEC §3: value types (string int float bool list<T> map<T>) and artifact
 * types (a tree rooted at Artifact; user types `type X : Base` hang below their base).
 *
 * Ownership: the scalar types and built-in artifact types are static; composite types and user
 * artifact types are allocated from the compilation's arena and live as long as it. Types are
 * compared structurally (type_equal), never by pointer. TYPE_ERROR stands for "already reported":
 * it is compatible with everything so one mistake does not cascade into more diagnostics. */
#ifndef KFPC_TYPES_H
#define KFPC_TYPES_H
#include <stddef.h>

#include "ast.h"

enum type_kind {
	TYPE_ERROR,    /* unknown after an error: compatible with everything */
	TYPE_STRING,
	TYPE_INT,
	TYPE_FLOAT,
	TYPE_BOOL,
	TYPE_LIST,     /* elem; elem == NULL: the empty list literal (any element type) */
	TYPE_MAP,      /* elem (string keys) */
	TYPE_ARTIFACT, /* art */
};

/* An artifact type: a built-in (Artifact, Dataset, Model, Metrics, HTML, Markdown) or a user
 * declaration. name is how it appears in the IR; base is NULL only for Artifact. */
struct arttype {
	const char *name;
	const struct arttype *base;
	struct loc loc;      /* of the declaration (LOC_NONE for built-ins) */
	int builtin;
	int used;            /* set when the IR mentions it (user types listed in "types") */
	int order;           /* declaration order for the IR's "types" list */
};

struct type {
	enum type_kind kind;
	const struct type *elem;
	const struct arttype *art;
};

/* Static singletons. */
extern const struct type type_error, type_string, type_int, type_float, type_bool;

/* Returns the built-in artifact type NAME ("Dataset"), or NULL. Static storage. */
const struct arttype *type_builtin_artifact(const char *name);

/* Returns a new type owned by arena A (NULL when out of memory). */
const struct type *type_new_list(struct ast_arena *a, const struct type *elem);
const struct type *type_new_map(struct ast_arena *a, const struct type *elem);
const struct type *type_new_artifact(struct ast_arena *a, const struct arttype *art);

/* Returns 1 when a value of type FROM is accepted where TO is expected (SPEC §3: int -> float,
 * artifact subtypes, element-wise for lists and maps; TYPE_ERROR on either side is accepted). */
int type_assignable(const struct type *to, const struct type *from);

/* Returns 1 when T is (or contains, as list<A>) an artifact type: the IR's kind "artifact". */
int type_is_artifact(const struct type *t);

/* Returns 1 when T is a numeric scalar (int or float). */
int type_is_number(const struct type *t);

/* Writes the type's name as in the IR ("list<float>", "Model") into BUF (N bytes); returns BUF. */
char *type_name(const struct type *t, char *buf, size_t n);

/* Returns 1 when artifact type S is T or a descendant of T. */
int type_art_isa(const struct arttype *s, const struct arttype *t);

#endif

/* ast.h - the syntax tree of one .kfp file (SPEC §2), as the parser builds it.
 *
 * Ownership: every node, array and string of a tree lives in one struct ast_arena, created per
 * compilation and freed once with ast_arena_free(). Nothing in a tree is freed on its own.
 *
 * Shape: plain structs with arrays of pointers and counts (`items`/`nitems`); the back end walks
 * them directly. Every node has a `loc` (struct loc from diag.h) covering the whole construct, and
 * every name has its own loc (struct ast_name) so diagnostics can point at the name.
 * Strings are NUL-terminated (they may also contain NUL bytes from `\u{0}`: use the length).
 * `doc` members are the text of the `///` comments directly before a declaration (lines joined with
 * '\n', the `///` and one following space removed), or NULL.
 *
 * Statements of every body (pipeline, component, step, for, if, block) share one tagged struct,
 * struct ast_stmt; which kinds the grammar allows where is in SPEC §2, and the parser only builds
 * allowed kinds in each body. */
#ifndef KFPC_AST_H
#define KFPC_AST_H
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

struct ast_arena;

/* Returns a new arena, or NULL when out of memory. Free with ast_arena_free(). */
struct ast_arena *ast_arena_new(void);

/* Frees A and everything allocated from it. NULL is allowed. */
void ast_arena_free(struct ast_arena *a);

/* Returns N zeroed bytes (8-byte aligned) owned by A, or NULL when out of memory. */
void *ast_alloc(struct ast_arena *a, size_t n);

/* Returns a NUL-terminated copy of S[0..N) owned by A, or NULL when out of memory. */
char *ast_strndup(struct ast_arena *a, const char *s, size_t n);

/* Returns a NUL-terminated string equal to S[0..N) owned by A, like ast_strndup(), but short
 * strings (AST_INTERN_MAX bytes or fewer; compared by length and bytes) that A handed out recently
 * are
 * returned again instead of copied: names and short literals recur on every line of a big file
 * ("in", "int", "v"), and equal pointers let later stages cache by address. Never modify the
 * result. NULL when out of memory. */
const char *ast_intern(struct ast_arena *a, const char *s, size_t n);

#define AST_INTERN_MAX 16

/* Asks for transparent huge pages on the 2 MiB-aligned part of the big, not yet touched heap
 * block P of N bytes (as glibc's malloc.hugetlb tunable does): big tables and buffers then cost a
 * few page faults instead of one per 4 KiB. Best effort; does nothing below 4 MiB. */
void ast_advise_huge(void *p, size_t n);

/* Returns the number of bytes A has handed out (for statistics). */
size_t ast_arena_used(const struct ast_arena *a);

/* An identifier with its location. s is NULL when the name is absent. */
struct ast_name {
	const char *s;
	struct loc loc;
};

/* ---- types -------------------------------------------------------------------------------- */

enum ast_type_kind {
	AST_TYPE_NAME,    /* `string`, `Dataset`, `Embeddings`; or `alias.Type` (alias.s != NULL) */
	AST_TYPE_GENERIC, /* `list<T>`, `map<T>`: name is "list"/"map" (or any IDENT: sema checks) */
};

struct ast_type {
	enum ast_type_kind kind;
	struct loc loc;
	struct ast_name name;  /* the type name, or the generic's name */
	union {                /* (by kind: one per port of every step) */
		struct ast_name *alias; /* AST_TYPE_NAME: `alias` of `alias.Type`, else NULL */
		struct ast_type *arg;   /* AST_TYPE_GENERIC: T */
	};
};

/* ---- expressions -------------------------------------------------------------------------- */

enum ast_expr_kind {
	AST_EXPR_STRING,   /* "..." or """...""" (str) */
	AST_EXPR_INT,      /* i */
	AST_EXPR_FLOAT,    /* f */
	AST_EXPR_BOOL,     /* b */
	AST_EXPR_DURATION, /* dur */
	AST_EXPR_REF,      /* a.b.c (ref) */
	AST_EXPR_CALL,     /* f(x, y) (call) */
	AST_EXPR_LIST,     /* [x, y] (list) */
	AST_EXPR_MAP,      /* {"k": v} (map) */
	AST_EXPR_UNARY,    /* not x (op, lhs) */
	AST_EXPR_BINARY,   /* x OP y, x matches "re" (op, lhs, rhs) */
};

enum ast_op {
	AST_OP_EQ,      /* == */
	AST_OP_NE,      /* != */
	AST_OP_LT,      /* < */
	AST_OP_LE,      /* <= */
	AST_OP_GT,      /* > */
	AST_OP_GE,      /* >= */
	AST_OP_AND,     /* and */
	AST_OP_OR,      /* or */
	AST_OP_NOT,     /* not (unary) */
	AST_OP_MATCHES, /* matches (rhs is an AST_EXPR_STRING) */
};

struct ast_expr;

/* One `"key": value` of a map literal. */
struct ast_map_entry {
	struct ast_expr *key; /* an AST_EXPR_STRING */
	struct ast_expr *value;
	struct loc loc;
};

/* (56 bytes: the most numerous node of a big file; lengths fit in 32 bits because a parsed file
 * is shorter than 2^31 bytes, see struct tok in parser.y) */
struct ast_expr {
	enum ast_expr_kind kind;
	struct loc loc;
	union {
		/* AST_EXPR_STRING. s/len: the value with every escape decoded.
		 * tmpl/tmpl_len: the same text for interpolation (SPEC §5): escapes decoded except that
		 * a literal backslash is written `\\` and an escaped brace `\{`, so `{{` in tmpl is
		 * always a placeholder. For raw strings tmpl doubles every backslash.
		 * raw: a raw string, """...""". */
		struct {
			const char *s;
			const char *tmpl;
			uint32_t len;
			uint32_t tmpl_len;
			int raw;
		} str;
		int64_t i;  /* AST_EXPR_INT */
		double f;   /* AST_EXPR_FLOAT */
		int b;      /* AST_EXPR_BOOL: 0 or 1 */
		struct {    /* AST_EXPR_DURATION */
			int64_t ms;       /* value in milliseconds */
			const char *text; /* as written: "1h30m" */
		} dur;
		struct { /* AST_EXPR_REF: a.b.c */
			struct ast_name *parts;
			int nparts;
		} ref;
		/* The composite kinds below also record their nesting depth (the parser's limit, see
		 * parse.h): 0 or 1 for one without nested composites; a literal is depth 1. */
		struct { /* AST_EXPR_CALL */
			struct ast_name *name; /* its own allocation: calls are rare */
			struct ast_expr **args;
			int nargs;
			int depth;
		} call;
		struct { /* AST_EXPR_LIST */
			struct ast_expr **items;
			int nitems;
			int depth;
		} list;
		struct { /* AST_EXPR_MAP */
			struct ast_map_entry *entries;
			int nentries;
			int depth;
		} map;
		struct {                  /* AST_EXPR_UNARY, AST_EXPR_BINARY */
			enum ast_op op;
			int depth;
			const struct loc *op_loc; /* the operator token (its own allocation) */
			struct ast_expr *lhs;  /* operand (unary) or left operand */
			struct ast_expr *rhs;  /* NULL for unary */
		} op;
	} u;
};

/* ---- properties and blocks ---------------------------------------------------------------- */

struct ast_block;
struct ast_stmt;

enum ast_parg_kind {
	AST_PARG_EXPR,  /* an expression (durations are AST_EXPR_DURATION expressions) */
	AST_PARG_BLOCK, /* { property | key = expr ... } */
};

/* One argument of a property: `retry 3 backoff 5s on [error]` has 6 pargs. */
struct ast_parg {
	enum ast_parg_kind kind;
	struct loc loc;
	struct ast_expr *expr;   /* AST_PARG_EXPR */
	struct ast_block *block; /* AST_PARG_BLOCK */
	int comma_after;         /* a ',' was written after this argument */
};

/* A generic property statement: IDENT parg*. Examples: `image "x"`, `defaults { ... }`,
 * `timeout 10m`, `schedule "0 3 * * *" tz "UTC"`, `parallelism 4`. */
struct ast_prop {
	struct ast_name name;
	struct ast_parg **args;
	int nargs;
	struct loc loc;
};

/* `key = expr` inside a block: key is an IDENT (key_is_string 0) or a STRING (1). */
struct ast_entry {
	struct ast_name key; /* for a STRING key: decoded value, loc of the string literal */
	int key_is_string;
	struct ast_expr *value;
	struct loc loc;
};

enum ast_bitem_kind {
	AST_BITEM_PROP,  /* prop */
	AST_BITEM_ENTRY, /* entry */
};

/* One item of a block. */
struct ast_bitem {
	enum ast_bitem_kind kind;
	struct ast_prop *prop;
	struct ast_entry *entry;
};

struct ast_block {
	struct ast_bitem *items;
	int nitems;
	struct loc loc; /* from '{' to '}' */
};

/* ---- inputs, outputs, steps, control flow ------------------------------------------------- */

/* `in NAME: TYPE [= EXPR]` */
struct ast_input {
	struct ast_name name;
	struct ast_type *type;
	struct ast_expr *value; /* NULL when absent */
	const char *doc;
	struct loc loc;
};

/* `out NAME: TYPE [from SOURCE [STRING]] [= EXPR]` */
struct ast_output {
	struct ast_name name;
	struct ast_type *type;
	struct ast_name *from;     /* `file`, `stdout`, ...: NULL when there is no `from` */
	struct ast_expr *from_arg; /* the STRING after `from IDENT`, or NULL */
	struct ast_expr *value;    /* `= EXPR` (pipeline outputs), or NULL */
	const char *doc;
	struct loc loc;
};

/* `NAME: EXPR` in a step call. */
struct ast_arg {
	struct ast_name name;
	struct ast_expr *value;
	struct loc loc;
};

/* `[finally] step NAME [= callee(args)] [when EXPR] [{ body }]` */
struct ast_step {
	struct ast_name name;
	int is_finally;
	int is_call;               /* `= callee(args)` present */
	struct ast_name *callee_alias; /* `alias` of `alias.name(...)`, NULL when unqualified */
	struct ast_name callee;    /* component or pipeline name (is_call) */
	struct ast_arg *args;
	struct ast_expr *when; /* header condition, or NULL (a body `when` is an AST_STMT_WHEN) */
	struct ast_stmt **body;
	const char *doc;
	struct loc loc; /* from `step` (or `finally`) to the end of the step */
	int nargs;
	int has_body;          /* `{ ... }` written (an override block for calls) */
	int nbody;
};

/* `for VAR in (A..B | EXPR) [parallel N] { body }` */
struct ast_for {
	struct ast_name var;
	int is_range;
	struct ast_expr *lo, *hi; /* is_range: the bounds (INT or FLOAT literals) */
	struct ast_expr *items;   /* !is_range: the expression */
	int has_parallel;
	int64_t parallel; /* parallel N, 0 when absent */
	struct loc parallel_loc;
	struct ast_stmt **body;
	int nbody;
	struct loc loc;
};

/* `if C { } else if C2 { } else { }`: one struct per `if`; else_if chains. */
struct ast_if {
	struct ast_expr *cond;
	struct ast_stmt **then_body;
	int nthen;
	struct ast_if *else_if;   /* `else if ...`, or NULL */
	int has_else;             /* a final `else { }` */
	struct ast_stmt **else_body;
	int nelse;
	struct loc loc;
};

enum ast_stmt_kind {
	AST_STMT_STEP,   /* step (pipelines; is_finally for `finally step`) */
	AST_STMT_FOR,    /* loop (pipelines) */
	AST_STMT_IF,     /* cond (pipelines) */
	AST_STMT_INPUT,  /* input (components, steps) */
	AST_STMT_OUTPUT, /* output (pipelines, components, steps) */
	AST_STMT_PROP,   /* prop (everywhere; `defaults { }` is a prop with a block parg) */
	AST_STMT_WHEN,   /* when (components, step bodies) */
};

struct ast_stmt {
	enum ast_stmt_kind kind;
	struct loc loc;
	union {
		struct ast_step *step;
		struct ast_for *loop;
		struct ast_if *cond;
		struct ast_input *input;
		struct ast_output *output;
		struct ast_prop *prop;
		struct ast_expr *when;
	} u;
};

/* ---- declarations ------------------------------------------------------------------------- */

/* `in A..B` / `in [..]` / `matches "RE"` after a parameter. */
enum ast_constraint_kind {
	AST_CONSTRAINT_RANGE,   /* lo, hi: INT or FLOAT literals */
	AST_CONSTRAINT_ONE_OF,  /* list: an AST_EXPR_LIST */
	AST_CONSTRAINT_MATCHES, /* regex: an AST_EXPR_STRING */
};

struct ast_constraint {
	enum ast_constraint_kind kind;
	struct ast_expr *lo, *hi;
	struct ast_expr *list;
	struct ast_expr *regex;
	struct loc loc;
};

/* `NAME: TYPE [= EXPR] constraint*` */
struct ast_param {
	struct ast_name name;
	struct ast_type *type;
	struct ast_expr *def; /* NULL: required */
	struct ast_constraint *constraints;
	int nconstraints;
	const char *doc;
	struct loc loc;
};

/* `import "PATH" [as ALIAS]` */
struct ast_import {
	struct ast_expr *path; /* the STRING literal (loc: where E501 points) */
	struct ast_name alias; /* explicit alias, or s NULL (src_ fills resolved data) */
	struct loc loc;
};

/* `type NAME [: BASE]` */
struct ast_typedecl {
	struct ast_name name;
	struct ast_type *base; /* NULL: Artifact */
	const char *doc;
	struct loc loc;
};

/* `component NAME { body }`: body has INPUT, OUTPUT, PROP and WHEN statements. */
struct ast_component {
	struct ast_name name;
	struct ast_stmt **body;
	int nbody;
	const char *doc;
	struct loc loc;
};

/* `pipeline NAME(params) { body }`: body has STEP, FOR, IF, OUTPUT and PROP statements. */
struct ast_pipeline {
	struct ast_name name;
	struct ast_param **params;
	int nparams;
	struct ast_stmt **body;
	int nbody;
	const char *doc;
	struct loc loc;
};

/* One parsed file. Declarations are also kept in source order in `items`. */
enum ast_item_kind {
	AST_ITEM_IMPORT,
	AST_ITEM_TYPE,
	AST_ITEM_COMPONENT,
	AST_ITEM_PIPELINE,
};

struct ast_item {
	enum ast_item_kind kind;
	union {
		struct ast_import *import;
		struct ast_typedecl *type;
		struct ast_component *component;
		struct ast_pipeline *pipeline;
	} u;
};

struct ast_file {
	int file; /* diag file id */
	const char *path; /* as registered with diag (owned by the arena) */
	struct ast_import **imports;
	int nimports;
	struct ast_typedecl **types;
	int ntypes;
	struct ast_component **components;
	int ncomponents;
	struct ast_pipeline **pipelines;
	int npipelines;
	struct ast_item *items;
	int nitems;
};

/* Returns the source text of OP ("==", "and", "not", "matches"). Static storage. */
const char *ast_op_name(enum ast_op op);

#endif

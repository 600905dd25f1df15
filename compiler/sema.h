/* sema.h - semantic analysis: the checked program that lower.c and graph.c walk.
 *
 * Stages (one file each), run by sema_check():
 *   sema_decl.c   symbol tables per file: imports, artifact types, components, pipelines (E101,
 *                 E102); component and parameter declarations (types, defaults, constraints)
 *   sema_pipe.c   pipeline bodies: steps, loops, ifs, outputs, pipeline properties; one snode per
 *                 step/loop, arguments and inputs type-checked (E2xx), scoping (E30x)
 *   sema_expr.c   expressions: name lookup (SPEC §5 order), types, values and conditions
 *   sema_props.c  properties (SPEC §4.5 table): shapes, values (E103 E104 E40x), merging
 *   sema_graph.c  dependency edges, cycles (E301, also recursive sub-pipelines), topological order
 *   interp.c      {{placeholders}} in run/script/env/workdir strings (E304, E601)
 *   lint.c        W001-W005
 *
 * Error containment: a node, port or value that failed to check is marked (error flag,
 * TYPE_ERROR, SV_ERROR) and every later check skips it silently, so one mistake gives one
 * diagnostic.
 *
 * Memory: every struct here is allocated from the sema arena (struct sema.arena) and freed with
 * sema_free(); AST pointers are borrowed from the source program, which must outlive the sema. */
#ifndef KFPC_SEMA_H
#define KFPC_SEMA_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "source.h"
#include "types.h"

/* ---- string hash table (open addressing; keys borrowed, not copied) ---------------------- */

struct stab;

/* Returns a new empty table, or NULL when out of memory. Free with stab_free(). */
struct stab *stab_new(void);

/* Frees T (not the keys or values). NULL is allowed. */
void stab_free(struct stab *t);

/* Returns the value stored under KEY, or NULL. */
void *stab_get(const struct stab *t, const char *key);

/* Stores VAL under KEY (KEY must outlive T), replacing any previous value. Returns 0, or -1 when
 * out of memory. */
int stab_put(struct stab *t, const char *key, void *val);

/* Makes room for N keys in all (no rehashing until then). Returns 0, or -1 when out of memory
 * (T unchanged). */
int stab_reserve(struct stab *t, size_t n);

/* ---- values ---------------------------------------------------------------------------- */

enum sval_kind {
	SV_ERROR,   /* already reported */
	SV_CONST,   /* lit: a literal AST (string, number, bool, list or map of literals) */
	SV_PARAM,   /* name */
	SV_VAR,     /* name */
	SV_INPUT,   /* name: a component input (only inside a component's `when`) */
	SV_OUTPUT,  /* node, name */
	SV_COLLECT, /* node, name */
	SV_RANGE,   /* lo, hi */
	SV_LIST,    /* items */
	SV_OP,      /* op ("==", "and", "len", ...), items = args */
};

struct snode;

struct sval {
	enum sval_kind kind;
	struct loc loc;
	int nitems;
	const struct type *type;
	const struct ast_expr *lit;
	const char *name;
	struct snode *node;
	int64_t lo, hi;
	const char *op;
	struct sval **items;
};

/* ---- properties ---------------------------------------------------------------------------- */

/* Retry failure kinds (bits). */
enum {
	RETRY_ERROR = 1 << 0,   /* non-zero exit */
	RETRY_TIMEOUT = 1 << 1, /* the attempt timed out */
	RETRY_OOM = 1 << 2,     /* killed for memory */
	RETRY_INFRA = 1 << 3,   /* executor or system error */
};

/* One `KEY = value` of env, labels or node_selector. */
struct skv {
	const char *key;
	const struct ast_expr *value; /* a string literal; NULL for a secret */
	const char *secret;           /* env only: secret("NAME") */
	struct loc loc;
};

struct stoleration {
	const char *key, *op, *value, *effect;
};

struct svolume {
	const char *name, *mount;
	int readonly;
};

struct safter {
	const char *name;
	struct loc loc;
};

enum cmd_kind { CMD_NONE, CMD_RUN, CMD_SCRIPT };

/* The properties set at one level (defaults, component, step) or merged. A member is meaningful
 * only when its has_ flag (or count) is set. Pointers are borrowed from the AST or the arena. */
struct sprops {
	/* (members grouped by size so the struct has no padding: one per step with properties) */
	const char *image;
	const struct ast_expr **run; /* CMD_RUN: string literals */
	const char **interp; /* CMD_SCRIPT: interpreter argv */
	const struct ast_expr *script; /* CMD_SCRIPT: the text (a string literal) */
	struct skv *env;
	const struct ast_expr *workdir;
	const char *cpu, *memory;
	int64_t cpu_milli, memory_bytes, gpu;
	int64_t retry_limit, backoff_ms, max_backoff_ms;
	double factor;
	int64_t timeout_ms;
	int64_t cache_max_age_ms;
	struct safter *after;
	struct skv *node_selector;
	struct stoleration *tolerations;
	struct skv *labels;
	struct svolume *volumes;

	struct loc image_loc;
	struct loc cmd_loc;
	struct loc timeout_loc;

	int has_image;
	enum cmd_kind cmd;
	int nrun;
	int ninterp;
	int nenv;
	int has_workdir;
	int has_cpu, has_memory, has_gpu;
	int has_retry;
	unsigned retry_on;
	int has_timeout;
	int has_cache;
	int cache_enabled;
	int nafter;
	int nnode_selector;
	int ntolerations;
	int nlabels;
	int nvolumes;
};

/* ---- declarations ---------------------------------------------------------------------------- */

struct sfile;
struct spipe;

struct simport {
	const char *alias;
	struct loc loc;
	struct sfile *target; /* NULL: missing (already reported) */
	int used;
};

struct sfile {
	struct src_file *src;
	int index;
	int is_std;
	int lint;              /* lints apply to this file (not the standard library) */
	const char *module;    /* the file's base name, for qualified type names */
	struct stab *imports;  /* alias -> struct simport */
	struct stab *types;    /* name -> struct arttype */
	struct stab *comps;    /* name -> struct scomp */
	struct stab *pipes;    /* name -> struct spipe */
	struct simport **importv;
	int nimports;
};

/* Output sources of value outputs. */
enum out_from { FROM_PATH, FROM_FILE, FROM_STDOUT };

/* An input or output of a component, inline step, sub-pipeline or pipeline. */
struct sport {
	const char *name;
	struct loc loc;
	int used;                    /* outputs: referenced somewhere (W002) */
	const struct type *type;
	const char *doc;
	struct sval *value;          /* input value (or pipeline output value); component input
				      * default; NULL when absent */
	const char *path;            /* FROM_FILE */
	int has_default;
	enum out_from from;
};

struct scomp {
	const char *name;
	const char *display;         /* "data.split_csv" as written at the first use, or name */
	struct sfile *file;
	const struct ast_component *ast;
	struct sport *inputs;
	int ninputs;
	struct sport *outputs;
	int noutputs;
	struct sprops props;
	struct sval **whens;         /* conditions over SV_INPUTs */
	int nwhens;
	int error;
};

struct sparam {
	const char *name;
	struct loc loc;
	const struct type *type;
	const struct ast_expr *def;  /* literal default, or NULL */
	const char *doc;
	int has_min, has_max;
	const struct ast_expr *min, *max;
	const struct ast_expr *one_of; /* an AST list */
	const char *regex;
	int used;
	int error;
};

struct sschedule {
	const char *cron, *tz;
	struct loc loc;
};

/* ---- pipeline bodies --------------------------------------------------------------------- */

enum snode_kind { SN_STEP, SN_LOOP, SN_SUB };

struct sbody {
	struct snode **nodes; /* in source order until sema_graph sorts them topologically */
	int n, cap;
	struct snode *owner;  /* the loop; NULL for a pipeline's top level and finally list */
	struct sbody *parent;
	int depth;
	int is_finally;
};

struct sdep {
	struct snode *node;   /* a node of the same body */
	struct loc loc;       /* the reference that made the edge */
	int after;            /* from `after` (no data) */
	int seq;              /* insertion order (stable sorting) */
};

/* One `if` condition, resolved once in the body where the `if` stands. */
struct scond {
	const struct ast_expr *expr;
	struct sbody *body;
	struct sval *v;
	int done;
};

/* A branch condition inherited from an enclosing `if`: c, negated for else branches. */
struct sbranch {
	struct scond *c;
	int negated;
};

struct snode {
	/* (ints are paired so the struct has no holes: one per step) */
	enum snode_kind kind;
	int order;                   /* source order in the pipeline */
	const char *name;            /* step name, or generated loop id "for.VAR@LINE" */
	struct loc loc, name_loc;
	const char *doc;
	struct sbody *parent;
	struct spipe *pipe;
	int is_finally;
	int error;                   /* failed to check: references to it are not reported */
	const struct ast_step *ast;  /* steps and sub-pipelines */
	const struct ast_for *loop_ast;

	struct sbranch *branches;    /* enclosing if conditions (outermost first) */
	struct sval *when;           /* the node's own `when` (and its component's), or NULL */
	struct sdep *deps;
	int nbranches;
	int ndeps, capdeps;

	/* steps */
	int checked;                 /* steps: passed pass 2 (sema_node_props() is meaningful) */
	struct scomp *comp;
	struct sprops *own;          /* the step's own properties (body or override block), or NULL */
	struct sport *inputs;
	struct sport *outputs;       /* also a sub-pipeline's outputs (borrowed from the spipe) */
	int ninputs;
	int noutputs;

	/* loops */
	const char *var;
	const struct type *var_type;
	struct sval *items;
	int64_t parallel;
	struct sbody *body;

	/* sub-pipelines */
	struct spipe *sub;
	const char *sub_display;

	/* sema_graph scratch */
	int topo_mark, indeg, low, idx;
};

struct spipe {
	const char *name;
	struct sfile *file;
	const struct ast_pipeline *ast;
	struct sparam *params;
	int nparams;
	struct stab *param_tab;      /* name -> struct sparam */
	struct stab *steps;          /* name -> struct snode (all steps, loops excluded) */
	struct sbody body;
	struct sbody fin;
	struct sport *outputs;
	int noutputs;
	struct sprops *defaults;     /* NULL when the pipeline has no defaults block */
	int64_t parallelism;
	int64_t timeout_ms;
	struct sschedule *schedules;
	int nschedules;
	int nnodes;
	int state;                   /* 0 unchecked, 1 checking, 2 checked (bodies) */
	int visit;                   /* recursion detection */
	int64_t size;                /* nodes when instantiated, sub-pipelines expanded (0: unknown) */
	int error;
};

/* The whole checked program. */
struct sema {
	struct ast_arena *arena;
	struct diag *d;
	struct src_program *prog;
	struct sfile **files;        /* same order as prog->files */
	int nfiles;
	struct stab **tabs;          /* every table, for freeing */
	int ntabs, captabs;
	struct arttype **usertypes;  /* every user artifact type, declaration order */
	int nusertypes;
	struct spipe *entry;         /* chosen entry pipeline, or NULL */
	int64_t expanded;            /* nodes in the entry's IR (sub-pipelines expanded) */
	int oom;
};

/* Checks PROG (already loaded; syntax errors may be present) and chooses the entry pipeline
 * (ENTRY_NAME or the root file's last pipeline). Diagnostics go to D. Returns a new sema (free
 * with sema_free) even when there were errors, or NULL when out of memory. */
struct sema *sema_check(struct src_program *prog, struct diag *d, const char *entry_name);

/* Frees S and everything it allocated. NULL is allowed. */
void sema_free(struct sema *s);

/* ---- internal to the sema_*.c files ------------------------------------------------------- */

/* Returns zeroed memory from the sema arena; sets s->oom and returns NULL when out of memory. */
void *sema_alloc(struct sema *s, size_t n);

/* Returns a new table registered for freeing, or NULL (s->oom set). */
struct stab *sema_tab(struct sema *s);

/* Adds P to the growable array *ARR of *N elements (capacity *CAP) of ELEM bytes each,
 * reallocating from the arena. Returns the new element (zeroed), or NULL when out of memory. */
void *sema_push(struct sema *s, void **arr, int *n, int *cap, size_t elem);

/* Returns a printf-formatted string owned by the arena (NULL when out of memory). */
char *sema_fmt(struct sema *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resolves an AST type in FILE: value types, built-in and user artifact types, alias.Type.
 * Reports E101 and returns &type_error for unknown names. */
const struct type *sema_type(struct sema *s, struct sfile *f, const struct ast_type *t);

/* Declarations: builds every file's tables and checks components and parameters. */
void sema_decl(struct sema *s);

/* Looks up ALIAS in FILE's imports; marks it used. Returns NULL when unknown. */
struct simport *sema_import(struct sfile *f, const char *alias);

/* Checks every pipeline body of every file. */
void sema_pipes(struct sema *s);

/* Expression contexts. */
enum {
	EX_COND = 1 << 0,     /* operators allowed: a condition */
	EX_CONST = 1 << 1,    /* literals only (defaults) */
	EX_COMPONENT = 1 << 2 /* names are the component's inputs */
};

/* Where an expression is evaluated. */
struct sctx {
	struct sema *s;
	struct sfile *file;
	struct spipe *pipe;          /* NULL in components */
	struct scomp *comp;          /* EX_COMPONENT */
	struct sbody *body;          /* for loop variables and loop scoping */
	int is_finally;
	int flags;
};

/* Resolves and types expression E in CX. Returns a value (kind SV_ERROR after an error), or
 * NULL only when out of memory. */
struct sval *sema_expr(struct sctx *cx, const struct ast_expr *e);

/* Checks that V (of an expression at LOC) can be used as type WANT; reports E201 with WHAT
 * ("input 'lr'") otherwise. Returns 0 ok, -1 mismatch. On success constants are retyped to WANT
 * (int -> float). */
int sema_expect(struct sctx *cx, struct sval *v, const struct type *want, const char *what);

/* Same as sema_expect(), WHAT formatted from FMT only when a mismatch is reported (the common,
 * well-typed case formats nothing). */
int sema_expectf(struct sctx *cx, struct sval *v, const struct type *want, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Returns the error value (a static SV_ERROR). */
struct sval *sema_error_value(void);

/* Properties. Where a property statement appears. */
enum prop_where {
	PW_STEP,      /* inline step body */
	PW_OVERRIDE,  /* override block of a component step */
	PW_SUB,       /* override block of a sub-pipeline step */
	PW_COMPONENT, /* component body */
	PW_DEFAULTS,  /* pipeline `defaults { }` */
};

/* Which properties one level (one body) has set so far, for E104. Zero-initialise per body. */
struct propseen {
	unsigned mask;
	struct loc loc[24];
};

/* Applies property P to *OUT (reporting E103/E104/E40x; W003 when cx->file lints). */
void sema_prop(struct sctx *cx, struct sprops *out, struct propseen *seen,
	       const struct ast_prop *p, enum prop_where where);

/* Returns STEP over COMP over DEFS (any may be NULL): one of them when only one is non-NULL,
 * else the merge written into *BUF. Never NULL (an empty static set when all are NULL). Merged
 * key/value lists are allocated from the arena. */
const struct sprops *sema_props_merge(struct sema *s, struct sprops *buf, const struct sprops *defs,
				      const struct sprops *comp, const struct sprops *step);

/* The effective properties of step N (own > component > pipeline defaults), computed on demand
 * into *BUF (merged properties are not stored per step: a 1M-step pipeline stays small). */
const struct sprops *sema_node_props(struct sema *s, const struct snode *n, struct sprops *buf);

/* Which of image, command and timeout step N's effective properties have (what
 * sema_node_props() would report, without merging all of them): SP_* bits. */
enum {
	SP_IMAGE = 1 << 0,   /* has_image */
	SP_CMD = 1 << 1,     /* cmd != CMD_NONE */
	SP_TIMEOUT = 1 << 2, /* has_timeout */
};
unsigned sema_node_props_set(const struct snode *n);

/* Declares output AO of a component or inline step into *O (type, from, path). */
void sema_output_decl(struct sctx *cx, struct sport *o, const struct ast_output *ao);

/* Returns 1 when the string literal E is a duration-free string literal; helpers for props. */
int sema_is_string(const struct ast_expr *e);

/* Largest IR the compiler emits, counting nodes with sub-pipelines expanded (E406 beyond). */
#define SEMA_MAX_NODES ((int64_t)5000000)

/* Builds dependency edges, detects cycles (E301) and sorts every body topologically (ties in
 * source order). Also detects recursive sub-pipelines and sets s->expanded (E406 when it
 * exceeds SEMA_MAX_NODES). */
void sema_graph(struct sema *s);

/* Checks {{placeholders}} of the step strings of node N (E304, E601), marking params used. */
void sema_interp_step(struct sema *s, struct snode *n);

/* Checks placeholders in a component's strings (inputs/outputs known). */
void sema_interp_component(struct sema *s, struct scomp *c);

/* Checks placeholders in a pipeline's `defaults` strings. */
void sema_interp_defaults(struct sema *s, struct spipe *p);

/* Lints W001-W005 over every non-std file. */
void sema_lint(struct sema *s);

/* The location inside string literal E of its template bytes [OFF, OFF+LEN) (tmpl offsets when
 * TMPL, decoded value offsets otherwise), or E's location when it cannot be mapped exactly. */
struct loc sema_string_loc(struct sema *s, const struct ast_expr *e, size_t off, size_t len,
			   int tmpl);

/* Returns the innermost loop variable NAME visible from body B (the loop node), or NULL. */
struct snode *sema_find_var(struct sbody *b, const char *name);

/* Returns 1 when body A is B or an ancestor of B. */
int sema_body_encloses(const struct sbody *a, const struct sbody *b);

/* ---- back ends ------------------------------------------------------------------------------ */

/* Writes the IR (SPEC §9) of s->entry to F. Returns 0, or -1 on an output error or when there
 * is no entry pipeline. Only call when diag_errors() is 0. */
int lower_ir(struct sema *s, FILE *f);

/* Writes Graphviz DOT of s->entry to F. Returns 0, or -1 (same conditions as lower_ir). */
int graph_dot(struct sema *s, FILE *f);

#endif

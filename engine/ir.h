/* ir.h - the IR loader: SPEC §9 JSON into the structs the scheduler walks.
 *
 * ir_load() parses and validates the whole document up front (every required member, its JSON
 * type, every reference: deps, output/collect nodes, loop variables, parameter names), so the
 * scheduler never meets a malformed IR at run time. A failure says what and where, with a
 * JSON path: "IR $.nodes[3].inputs[0].value: unknown node 'splt'".
 *
 * Memory: struct ir owns the parsed json-c document and an arena; every pointer inside it
 * (strings, nodes, values, json_object constants) is borrowed from those and lives until
 * ir_free. Nothing in it is modified after ir_load, so the IR may be shared read-only.
 *
 * Dependencies: a node's `deps` (from the IR) are extended by the loader with the nodes that
 * its values reference through enclosing bodies (hoisted to the ancestor in the same body), so
 * that readiness only ever looks at siblings. Each dep records whether it carries data (an
 * input, condition, loop item or output value refers to it) or is order-only (`after`). */
#ifndef KFPC_IR_H
#define KFPC_IR_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* The IR versions this engine understands. */
#define IR_VERSION 1

struct ir_loc {
	const char *file; /* "" if unknown */
	int line, col;
};

/* VALUE and EXPR kinds (SPEC §9). */
enum ir_vkind {
	IR_V_CONST,
	IR_V_PARAM,
	IR_V_VAR,
	IR_V_OUTPUT,
	IR_V_COLLECT,
	IR_V_RANGE,
	IR_V_LIST,
	IR_V_OP,
};

/* EXPR operators, in the order of ir_op_names. */
enum ir_op {
	IR_OP_EQ,
	IR_OP_NE,
	IR_OP_LT,
	IR_OP_LE,
	IR_OP_GT,
	IR_OP_GE,
	IR_OP_AND,
	IR_OP_OR,
	IR_OP_NOT,
	IR_OP_MATCHES,
	IR_OP_LEN,
};

struct ir_node;
struct ir_body;

struct ir_value {
	enum ir_vkind kind;
	enum ir_op op;            /* IR_V_OP */
	json_object *cst;         /* IR_V_CONST (borrowed from the document) */
	const char *name;         /* PARAM / VAR name; OUTPUT / COLLECT output name */
	struct ir_node *node;     /* OUTPUT / COLLECT: the referenced node */
	struct ir_node *loop;     /* VAR: the loop node that binds it */
	struct ir_node *owner;    /* the node whose value this is (NULL: pipeline outputs) */
	int64_t lo, hi;           /* RANGE (inclusive) */
	struct ir_value **args;   /* LIST items, OP arguments */
	size_t nargs;
	pcre2_code *re;           /* MATCHES: the compiled pattern (freed by ir_free) */
};

enum ir_kind {
	IR_STEP,
	IR_LOOP,
	IR_PIPELINE,
};

/* Where a value output is read from. */
enum ir_from {
	IR_FROM_PATH,   /* the file at {{outputs.NAME}} (default) */
	IR_FROM_FILE,   /* `from file "REL"`: relative to the working directory */
	IR_FROM_STDOUT, /* `from stdout` */
};

/* An input or output of a step, sub-pipeline or pipeline. */
struct ir_io {
	const char *name;
	const char *type;        /* "int", "list<float>", "Model" ... */
	int artifact;            /* kind "artifact" */
	struct ir_value *value;  /* inputs and pipeline outputs; NULL for step outputs */
	enum ir_from from;       /* step outputs */
	const char *path;        /* IR_FROM_FILE */
	struct ir_loc loc;
};

struct ir_env {
	const char *name;
	const char *value;  /* NULL when secret */
	const char *secret; /* secret name, or NULL */
};

/* Retry failure-kind bits. */
enum {
	IR_RETRY_ERROR = 1 << 0,
	IR_RETRY_TIMEOUT = 1 << 1,
	IR_RETRY_OOM = 1 << 2,
	IR_RETRY_INFRA = 1 << 3,
};

struct ir_volume {
	const char *name, *mount;
	int readonly;
};

struct ir_kv {
	const char *key, *value;
};

/* A list of nodes: a pipeline's body or finally list, a loop's body. */
struct ir_body {
	struct ir_node **nodes;
	size_t n;
	struct ir_node *owner;   /* loop or pipeline node; NULL for the entry pipeline */
	struct ir_body *parent;  /* the body that contains owner; NULL for the entry pipeline */
	int is_finally;
};

struct ir_node {
	enum ir_kind kind;
	const char *id;
	struct ir_loc loc;
	struct ir_body *in;      /* the body this node belongs to */
	size_t index;            /* its position in in->nodes */
	size_t *deps;            /* indices into in->nodes, deduplicated, each < index or not */
	unsigned char *dep_data; /* per dep: 1 data edge, 0 order-only */
	size_t ndeps;
	size_t *users;           /* reverse edges: nodes of the same body depending on this one */
	size_t nusers;
	struct ir_value *when;   /* NULL: unconditional */
	json_object *json;       /* the node's JSON object (borrowed) */

	/* IR_STEP */
	const char *component;
	const char *image;
	const char **command;    /* argv templates (NULL if script) */
	size_t ncommand;
	const char **interp;     /* script interpreter argv (NULL if command) */
	size_t ninterp;
	const char *script;
	struct ir_env *env;
	size_t nenv;
	const char *workdir;
	int64_t cpu_milli, memory_bytes, gpu;
	int retry_limit;
	double backoff, factor, max_backoff;
	unsigned retry_on;       /* IR_RETRY_* bits */
	double timeout;          /* seconds, 0 none */
	int cache;               /* 1 enabled */
	double max_age;          /* seconds, 0 none */
	struct ir_volume *volumes;
	size_t nvolumes;
	struct ir_kv *labels;
	size_t nlabels;

	/* IR_STEP and IR_PIPELINE inputs; outputs of all three kinds (loops: none) */
	struct ir_io *inputs;
	size_t ninputs;
	struct ir_io *outputs;
	size_t noutputs;

	/* IR_LOOP */
	const char *var;
	struct ir_value *items;
	int parallel;            /* 0 unlimited */
	struct ir_body body;     /* IR_LOOP and IR_PIPELINE */

	/* IR_PIPELINE */
	const char *pipeline;
	struct ir_body fin;      /* the sub-pipeline's finally nodes */
};

struct ir_param {
	const char *name;
	const char *type;
	json_object *def;        /* default or NULL */
	int required;
	const char *doc;
	json_object *min, *max;  /* NULL when not declared */
	json_object *one_of;     /* array or NULL */
	const char *regex;       /* or NULL */
	pcre2_code *re;          /* compiled (anchored full match is done by the matcher) */
	struct ir_loc loc;
};

struct ir {
	json_object *root;
	int version;
	const char *name;
	const char *doc;
	struct ir_loc loc;
	struct ir_param *params;
	size_t nparams;
	int parallelism;
	double timeout;
	struct ir_body body;
	struct ir_body fin;
	struct ir_io *outputs;
	size_t noutputs;
	size_t nnodes;           /* all nodes, all bodies */
	void *arena;             /* private */
};

/* Parse and validate IR JSON TEXT (LEN bytes). Returns the IR (free with ir_free), or NULL
 * with a one-line message in err[errlen] ("IR $.nodes[2].kind: unknown node kind 'stp'"). */
struct ir *ir_load(const char *text, size_t len, char *err, size_t errlen);

/* Free an IR and everything in it. NULL is ok. */
void ir_free(struct ir *ir);

/* Find the parameter NAME of IR's entry pipeline, or NULL. Borrowed. */
const struct ir_param *ir_param_find(const struct ir *ir, const char *name);

/* The JSON name of an operator ("==", "matches"). Static. */
const char *ir_op_name(enum ir_op op);

/* Format LOC as "file:line:col" into buf[len]; returns buf. */
char *ir_loc_str(const struct ir_loc *loc, char *buf, size_t len);

/* The output NAME of NODE, or NULL. */
const struct ir_io *ir_node_output(const struct ir_node *node, const char *name);

#endif

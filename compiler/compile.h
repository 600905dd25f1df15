/* compile.h - the compiler driver: load, parse, check, lower, emit.
 *
 * compile_file() runs the whole front end and back end on one root .kfp file (and its imports) and
 * streams the IR (SPEC §9) to OUT; compile_graph() does the same but writes Graphviz DOT (SPEC §10).
 * Diagnostics go into D (owned by the caller, created with diag_new()); nothing is printed here. */
#ifndef KFPC_COMPILE_H
#define KFPC_COMPILE_H
#include <stdio.h>

struct diag;

/* Options of one compilation. pipeline: entry pipeline name, NULL = the last pipeline of the
 * root file. werror: nonzero turns warnings into errors (exit 1). */
struct compile_opts {
	const char *pipeline;
	int werror;
};

/* Compile PATH and write the IR JSON to OUT. Returns 0 ok, 1 errors (in d), 2 I/O/usage.
 * On a return other than 0 nothing, or a partial document, may have been written to OUT: callers
 * that write files must write to a temporary and rename on success. */
int compile_file(const char *path, const struct compile_opts *o, struct diag *d, FILE *out);

/* Same, writing Graphviz DOT. */
int compile_graph(const char *path, const struct compile_opts *o, struct diag *d, FILE *out);

#endif

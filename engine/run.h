/* run.h - `kfpc run`: load (compile a .kfp or read IR JSON), bind parameters, open the state
 * store, the artifact store and the executor, schedule, record, and report.
 *
 * Output: the run id first on OUT ("run RUN"), the pipeline outputs last on OUT
 * ("NAME = VALUE", in the IR's order, absent outputs omitted), everything else (progress,
 * diagnostics, errors) on ERR. */
#ifndef KFPC_RUN_H
#define KFPC_RUN_H

#include <stddef.h>
#include <stdio.h>

struct run_opts {
	const char *file;          /* FILE.kfp or IR.json; may be NULL with resume */
	const char *const *params; /* "NAME=VALUE" strings */
	size_t nparams;
	const char *pipeline;      /* entry pipeline of a .kfp (NULL: the last one) */
	const char *executor;      /* "local" (default when NULL), "docker" */
	const char *state_dir;     /* --state, or NULL ($KFPC_STATE, else .kfpc) */
	int parallelism;           /* 0: the number of CPUs */
	int no_cache;
	int explain;
	const char *resume;        /* run id (or unique prefix) to finish, or NULL */
};

/* Exit codes of run_main. */
enum {
	RUN_EXIT_OK = 0,     /* the run succeeded */
	RUN_EXIT_FAILED = 1, /* the run failed or was cancelled, or the pipeline has errors */
	RUN_EXIT_USAGE = 2,  /* usage, I/O, IR or parameter error; nothing ran */
};

/* Run a pipeline as described by O, writing to OUT and ERR. Returns a RUN_EXIT_* code. */
int run_main(const struct run_opts *o, FILE *out, FILE *err);

/* Parse parameter assignments NAME=VALUE (the CLI's -p) against IR's parameters, apply
 * defaults and check types and constraints. Returns a new object (name -> value; caller owns)
 * or NULL with a message in msg[len] ("missing required parameter 'n' (int)"). */
struct ir;
struct json_object;
struct json_object *run_bind_params(const struct ir *ir, const char *const *assign, size_t n,
				    char *msg, size_t len);

#endif

/* compile.c - the compiler driver: load, parse, check, lower, emit (SPEC §7, §9, §10).
 *
 *   src_load    read the root file and its imports, parse them (FRONT: source.c, parser.y)
 *   sema_check  names, types, properties, edges, cycles, lints (sema_*.c, lint.c)
 *   lower_ir    stream the IR JSON        | graph_dot   write Graphviz DOT
 *
 * Nothing is printed here: diagnostics stay in the caller's struct diag. */
#include "compile.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "diag.h"
#include "sema.h"
#include "source.h"

enum backend { BACKEND_IR, BACKEND_DOT };

/* KFPC_TIMING=1 prints the CPU time of each stage on stderr, and the size of the tree and of the
 * checked program (for bench/compile_bench.sh and profiling). */
static void stage(const char *name, struct timespec *t0)
{
	struct timespec t1;
	struct rusage ru;

	if (!getenv("KFPC_TIMING"))
		return;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "kfpc: %-6s %8.3f s cpu, max rss %ld MB\n", name,
		(double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9,
		ru.ru_maxrss / 1024);
	*t0 = t1;
}

static int run(const char *path, const struct compile_opts *o, struct diag *d, FILE *out,
	       enum backend be)
{
	struct src_program *prog = NULL;
	struct sema *s = NULL;
	int rc, lrc;
	struct timespec t0;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	diag_set_werror(d, o && o->werror);
	rc = src_load(path, d, &prog);
	stage("parse", &t0);
	if (getenv("KFPC_TIMING") && prog)
		fprintf(stderr, "kfpc: syntax tree %zu MB\n", ast_arena_used(prog->arena) >> 20);
	if (rc == 2 || rc < 0 || !prog) {
		src_free(prog);
		return 2;
	}
	if (rc == 1) {
		/* Syntax or import errors: a partial tree would only produce follow-on errors, so
		 * these are reported alone. */
		src_free(prog);
		return 1;
	}
	if (!(s = sema_check(prog, d, o ? o->pipeline : NULL))) {
		src_free(prog);
		return 2;
	}
	stage("check", &t0);
	if (getenv("KFPC_TIMING"))
		fprintf(stderr, "kfpc: checked program %zu MB\n", ast_arena_used(s->arena) >> 20);
	if (diag_errors(d) || !s->entry) {
		rc = 1;
		goto out;
	}
	lrc = be == BACKEND_IR ? lower_ir(s, out) : graph_dot(s, out);
	if (lrc < 0 || fflush(out) == EOF)
		rc = 2;
	else
		rc = 0;
	stage("emit", &t0);
out:
	sema_free(s);
	src_free(prog);
	return rc;
}

int compile_file(const char *path, const struct compile_opts *o, struct diag *d, FILE *out)
{
	return run(path, o, d, out, BACKEND_IR);
}

int compile_graph(const char *path, const struct compile_opts *o, struct diag *d, FILE *out)
{
	return run(path, o, d, out, BACKEND_DOT);
}

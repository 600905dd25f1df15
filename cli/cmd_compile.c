/* cmd_compile.c - `kfpc compile` and `kfpc graph` (SPEC §10).
 *
 *   compile FILE [-o OUT] [--pipeline NAME] [-Werror] [--diagnostics-format=text|json]
 *   graph   FILE [-o OUT] [--pipeline NAME]
 *
 * Exit codes: 0 compiled (warnings allowed), 1 the pipeline has errors (or warnings with
 * -Werror), 2 usage or I/O error. With -o the output is written to a temporary file next to OUT
 * and renamed into place only on success, so OUT is never left partial. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "compile.h"
#include "diag.h"

static const char compile_usage[] =
	"usage: kfpc compile FILE [-o OUT] [--pipeline NAME] [-Werror]\n"
	"                    [--diagnostics-format=text|json]\n"
	"\n"
	"Check a pipeline and write its DAG IR (JSON, SPEC.md §9) to OUT or standard output.\n"
	"\n"
	"  -o OUT                 write the IR to OUT (atomically: nothing is written on error)\n"
	"  --pipeline NAME        the entry pipeline (default: the last pipeline in FILE)\n"
	"  -Werror                treat warnings as errors\n"
	"  --diagnostics-format=F text (default) or json, on standard error\n"
	"\n"
	"Exit status: 0 compiled, 1 errors in the pipeline, 2 usage or I/O error.\n";

static const char graph_usage[] =
	"usage: kfpc graph FILE [-o OUT] [--pipeline NAME]\n"
	"\n"
	"Draw a pipeline's DAG as Graphviz DOT (render with: dot -Tsvg).\n"
	"\n"
	"  -o OUT                 write the DOT text to OUT instead of standard output\n"
	"  --pipeline NAME        the entry pipeline (default: the last pipeline in FILE)\n"
	"\n"
	"Exit status: 0 ok, 1 errors in the pipeline, 2 usage or I/O error.\n";

struct args {
	const char *file, *out, *pipeline;
	int werror;
	enum diag_format format;
};

/* Returns 0 ok, 1 --help printed, 2 usage error (message printed). */
static int parse_args(int argc, char **argv, int is_graph, struct args *a)
{
	const char *usage = is_graph ? graph_usage : compile_usage;

	int i;

	memset(a, 0, sizeof *a);
	a->format = DIAG_FORMAT_TEXT;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			fputs(usage, stdout);
			return 1;
		} else if (!strcmp(arg, "-o") || !strcmp(arg, "--output")) {
			if (++i >= argc)
				goto missing;
			a->out = argv[i];
		} else if (!strncmp(arg, "-o", 2) && arg[2]) {
			a->out = arg + 2;
		} else if (!strncmp(arg, "--output=", 9)) {
			a->out = arg + 9;
		} else if (!strcmp(arg, "--pipeline")) {
			if (++i >= argc)
				goto missing;
			a->pipeline = argv[i];
		} else if (!strncmp(arg, "--pipeline=", 11)) {
			a->pipeline = arg + 11;
		} else if (!is_graph && !strcmp(arg, "-Werror")) {
			a->werror = 1;
		} else if (!is_graph && !strcmp(arg, "--diagnostics-format") && i + 1 < argc) {
			arg = argv[++i];
			goto format;
		} else if (!is_graph && !strncmp(arg, "--diagnostics-format=", 21)) {
			arg += 21;
		format:
			if (!strcmp(arg, "text"))
				a->format = DIAG_FORMAT_TEXT;
			else if (!strcmp(arg, "json"))
				a->format = DIAG_FORMAT_JSON;
			else {
				fprintf(stderr, "kfpc %s: unknown diagnostics format '%s' (text or "
					"json)\n", argv[0], arg);
				return 2;
			}
		} else if (arg[0] == '-' && arg[1]) {
			fprintf(stderr, "kfpc %s: unknown option '%s'\n%s", argv[0], arg, usage);
			return 2;
		} else if (!a->file) {
			a->file = arg;
		} else {
			fprintf(stderr, "kfpc %s: more than one input file ('%s' and '%s')\n%s",
				argv[0], a->file, arg, usage);
			return 2;
		}
	}
	if (!a->file) {
		fprintf(stderr, "kfpc %s: no input file\n%s", argv[0], usage);
		return 2;
	}
	if (a->pipeline && !*a->pipeline) {
		fprintf(stderr, "kfpc %s: --pipeline needs a name\n", argv[0]);
		return 2;
	}
	return 0;
missing:
	fprintf(stderr, "kfpc %s: option '%s' needs an argument\n%s", argv[0], argv[i - 1], usage);
	return 2;
}

static int use_color(void)
{
	const char *term = getenv("TERM");

	if (getenv("NO_COLOR"))
		return 0;
	if (term && !strcmp(term, "dumb"))
		return 0;
	return isatty(STDERR_FILENO);
}

/* Opens a temporary file next to OUT; *TMP receives its malloc'd name. */
static FILE *open_temp(const char *out, char **tmp)
{
	size_t n = strlen(out) + 32;
	char *name = malloc(n);
	int fd;
	FILE *f;

	if (!name)
		return NULL;
	snprintf(name, n, "%s.tmp.XXXXXX", out);
	fd = mkostemp(name, O_CLOEXEC);
	if (fd < 0) {
		free(name);
		return NULL;
	}
	if (fchmod(fd, 0644) < 0 || !(f = fdopen(fd, "w"))) {
		close(fd);
		unlink(name);
		free(name);
		return NULL;
	}
	*tmp = name;
	return f;
}

static int run(int argc, char **argv, int is_graph)
{
	struct args a;
	struct compile_opts o;
	struct diag *d;
	FILE *out = stdout;
	char *tmp = NULL;
	int rc;

	if ((rc = parse_args(argc, argv, is_graph, &a)))
		return rc == 1 ? 0 : 2;
	if (!(d = diag_new())) {
		fprintf(stderr, "kfpc: out of memory\n");
		return 2;
	}
	o.pipeline = a.pipeline;
	o.werror = a.werror;
	if (a.out && strcmp(a.out, "-") && !(out = open_temp(a.out, &tmp))) {
		fprintf(stderr, "kfpc %s: cannot write '%s': %s\n", argv[0], a.out, strerror(errno));
		diag_free(d);
		return 2;
	}
	rc = is_graph ? compile_graph(a.file, &o, d, out) : compile_file(a.file, &o, d, out);
	if (tmp) {
		if (fclose(out) == EOF && rc == 0)
			rc = 2;
		if (rc == 0 && rename(tmp, a.out) < 0) {
			fprintf(stderr, "kfpc %s: cannot write '%s': %s\n", argv[0], a.out,
				strerror(errno));
			rc = 2;
		}
		if (rc != 0)
			unlink(tmp);
		free(tmp);
	} else if (rc == 0 && fflush(stdout) == EOF) {
		fprintf(stderr, "kfpc %s: cannot write the output: %s\n", argv[0], strerror(errno));
		rc = 2;
	}
	if (a.format == DIAG_FORMAT_JSON || diag_errors(d) || diag_warnings(d) || rc)
		diag_print(d, stderr, a.format, a.format == DIAG_FORMAT_TEXT && use_color());
	diag_free(d);
	return rc;
}

int cmd_compile(int argc, char **argv)
{
	return run(argc, argv, 0);
}

int cmd_graph(int argc, char **argv)
{
	return run(argc, argv, 1);
}

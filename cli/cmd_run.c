/* cmd_run.c - `kfpc run`: parse the command line, hand over to run_main (engine/run.c). */
#include <errno.h>
#include <unistd.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "run.h"

static const char usage_text[] =
	"usage: kfpc run FILE.kfp|IR.json [-p NAME=VALUE]... [--executor local|docker]\n"
	"                [--state DIR] [--parallelism N] [--no-cache] [--explain] [--resume RUN]\n"
	"\n"
	"Execute a pipeline on this machine, with durable state, caching and resume.\n"
	"\n"
	"  -p, --param NAME=VALUE  set a pipeline parameter; the value is parsed by the\n"
	"                          parameter's type (lists and maps as JSON: -p 'rates=[0.1,0.2]')\n"
	"  --executor NAME         local (default: steps run as processes on this host) or docker\n"
	"  --state DIR             state directory (default: $KFPC_STATE, else .kfpc here)\n"
	"  --parallelism N         run at most N steps at once (default: the number of CPUs)\n"
	"  --no-cache              do not use cached results (results are still recorded)\n"
	"  --explain               say on stderr why each step ran or was cached\n"
	"  --resume RUN            finish an interrupted run (id or unique prefix; FILE optional)\n"
	"                          with the executor it was started with (a different\n"
	"                          --executor is refused)\n"
	"  --pipeline NAME         the entry pipeline of FILE.kfp (default: the last one)\n"
	"  -h, --help              show this help\n"
	"\n"
	"stdout: the run id first (\"run RUN\"), the pipeline outputs last (\"NAME = VALUE\").\n"
	"stderr: progress (live on a terminal, else one line per step), errors.\n"
	"Secrets: secret(\"NAME\") in env reads $KFPC_SECRET_NAME (upper case, '-' as '_').\n"
	"Exit status: 0 succeeded, 1 failed or cancelled or the pipeline has errors, 2 usage, I/O, IR or parameter error.\n"
	"Bad input found before anything runs (IR, compile, parameters) is also recorded as a failed run.\n";

/* Option value: "--opt=V" or "--opt V". Returns the value or NULL (and advances *i). */
static const char *optval(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (!strcmp(argv[*i], name)) {
		if (*i + 1 >= argc)
			return NULL;
		return argv[++*i];
	}
	return NULL;
}

static int is_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return !strcmp(arg, name) || (!strncmp(arg, name, n) && arg[n] == '=');
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {0};
	const char **params = NULL;
	int i, code;

	params = calloc((size_t)argc + 1, sizeof *params);
	if (!params) {
		fprintf(stderr, "kfpc run: out of memory\n");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			free(params);
			return 0;
		} else if (!strcmp(a, "-p") || is_opt(a, "--param")) {
			v = !strcmp(a, "-p") ? (i + 1 < argc ? argv[++i] : NULL)
					     : optval(argc, argv, &i, "--param");
			if (!v)
				goto missing;
			params[o.nparams++] = v;
		} else if (!strncmp(a, "-p", 2) && a[2]) {
			params[o.nparams++] = a + 2;
		} else if (is_opt(a, "--executor")) {
			if (!(o.executor = optval(argc, argv, &i, "--executor")))
				goto missing;
		} else if (is_opt(a, "--state")) {
			if (!(o.state_dir = optval(argc, argv, &i, "--state")))
				goto missing;
		} else if (is_opt(a, "--pipeline")) {
			if (!(o.pipeline = optval(argc, argv, &i, "--pipeline")))
				goto missing;
		} else if (is_opt(a, "--resume")) {
			if (!(o.resume = optval(argc, argv, &i, "--resume")))
				goto missing;
		} else if (is_opt(a, "--parallelism") || !strcmp(a, "-j")) {
			char *end;
			long n;
			v = !strcmp(a, "-j") ? (i + 1 < argc ? argv[++i] : NULL)
					     : optval(argc, argv, &i, "--parallelism");
			if (!v)
				goto missing;
			errno = 0;
			n = strtol(v, &end, 10);
			if (*end || !*v || n < 1 || n > 100000 || errno) {
				fprintf(stderr, "kfpc run: --parallelism expects a number from 1 to "
						"100000, got '%s'\n", v);
				free(params);
				return 2;
			}
			o.parallelism = (int)n;
		} else if (!strcmp(a, "--no-cache")) {
			o.no_cache = 1;
		} else if (!strcmp(a, "--explain")) {
			o.explain = 1;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "kfpc run: unknown option '%s'\n%s", a, usage_text);
			free(params);
			return 2;
		} else if (!o.file) {
			o.file = a;
		} else {
			fprintf(stderr, "kfpc run: unexpected argument '%s' (one FILE only)\n", a);
			free(params);
			return 2;
		}
	}
	if (!o.file && !o.resume) {
		fprintf(stderr, "kfpc run: missing FILE\n%s", usage_text);
		free(params);
		return 2;
	}
	o.params = params;
	signal(SIGPIPE, SIG_IGN);
	/* progress lines are written a batch at a time (the scheduler flushes after each commit's
	 * reports); messages flush themselves */
	setvbuf(stderr, NULL, _IOFBF, 1 << 16);
	code = run_main(&o, stdout, stderr);
	free(params);
	return code;
missing:
	fprintf(stderr, "kfpc run: option '%s' needs a value\n", argv[i]);
	free(params);
	return 2;
}

/* main.c - kfpc: pipelines as code, checked before they run.
 *
 * The whole program is a table of subcommands; each one reads like the pipeline it runs
 * (compile: load, parse, check, lower, emit; run: load, schedule, execute, record). */
#include <stdio.h>
#include <string.h>

#include "cmds.h"

/* Subcommands: name, handler, one-line usage, one-line summary. */
static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *usage;
	const char *summary;
} commands[] = {
	{"compile", cmd_compile,
	 "compile FILE [-o OUT] [--pipeline NAME] [-Werror] [--diagnostics-format=text|json]",
	 "check a pipeline and write its DAG IR (JSON)"},
	{"graph", cmd_graph, "graph FILE [-o OUT] [--pipeline NAME]",
	 "draw a pipeline's DAG as Graphviz DOT"},
	{"run", cmd_run,
	 "run FILE.kfp|IR.json [-p NAME=VALUE]... [--executor local|docker] [--state DIR]\n"
	 "              [--parallelism N] [--no-cache] [--explain] [--resume RUN]",
	 "execute a pipeline here, with durable state"},
	{"runs", cmd_runs, "runs [--state DIR]", "list the runs in the local store"},
	{"show", cmd_show, "show RUN [--state DIR]", "a run's steps with status, timings and outputs"},
	{"logs", cmd_logs, "logs RUN STEP [--state DIR]", "print a step's log"},
	{"artifact", cmd_artifact, "artifact get RUN/STEP/OUTPUT -o PATH [--state DIR]",
	 "copy an artifact out of the store"},
	{"lineage", cmd_lineage, "lineage ARTIFACT [--state DIR]",
	 "what produced an artifact, and from which inputs"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: kfpc COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-10s %s\n", "help", "help [COMMAND]: show a command's usage");
	fprintf(f, "\nThe language is described in SPEC.md; `kfpc help COMMAND` shows a command's options.\n");
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	const struct command *cmd;

	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("kfpc %s\n", KFPC_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		if (argc < 3)
			return usage(stdout);
		if (!(cmd = find(argv[2]))) {
			fprintf(stderr, "kfpc: unknown command '%s'\n", argv[2]);
			return 2;
		}
		printf("usage: kfpc %s\n%s\n", cmd->usage, cmd->summary);
		return 0;
	}
	if (!(cmd = find(argv[1]))) {
		fprintf(stderr, "kfpc: unknown command '%s' (try 'kfpc help')\n", argv[1]);
		return 2;
	}
	return cmd->fn(argc - 1, argv + 1);
}

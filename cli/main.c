/* main.c - kfpc: pipelines as code, checked before they run.
 *
 * The whole program is a table of subcommands; each one reads like the pipeline it runs
 * (compile: load, parse, check, lower, emit; run: load, schedule, execute, record). */
#include <stdio.h>
#include <stdlib.h>
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
	{"runs", cmd_runs, "runs [--state DIR] [--json]", "list the runs in the local store"},
	{"show", cmd_show, "show RUN [--state DIR] [--json]   (RUN may be a unique prefix)", "a run's steps with status, timings and outputs"},
	{"logs", cmd_logs, "logs RUN STEP [--attempt N] [--stdout|--stderr] [--state DIR]", "print a step's log"},
	{"artifact", cmd_artifact, "artifact get RUN/STEP/OUTPUT|DIGEST -o PATH|- [--state DIR]",
	 "copy an artifact out of the store"},
	{"lineage", cmd_lineage, "lineage RUN/STEP/OUTPUT|DIGEST [--state DIR]",
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
	fprintf(f, "\nWith --server URL (anywhere on the line) commands go to a kfpd daemon instead of the\n"
		   "local store; submit, cancel, retry, schedule, pipelines and whoami are kfpd-only.\n"
		   "Without --server, runs/show/logs/artifact/lineage go to $KFPC_SERVER or the config\n"
		   "file's 'server = URL' when one is set (unless --state DIR is given).\n"
		   "The token comes from $KFPC_TOKEN or the config file ($KFPC_CONFIG, ~/.config/kfpc/config).\n");
	fprintf(f, "\nThe language is described in SPEC.md; `kfpc help COMMAND` shows a command's options.\n");
	return f == stdout ? 0 : 2;
}

/* Removes `--server URL` / `--server=URL` from anywhere in argv into *URL (NULL: none).
 * Returns 0, or 2 after a message when --server has no URL. */
static int take_server(int *argc, char **argv, const char **url)
{
	int i, j, skip;

	*url = NULL;
	for (i = 1; i < *argc; i += skip) {
		skip = 1;
		if (!strcmp(argv[i], "--")) /* everything after -- is an argument */
			break;
		if (!strcmp(argv[i], "--server") || !strcmp(argv[i], "--server=")) {
			if (argv[i][8] || i + 1 >= *argc || !argv[i + 1][0] || argv[i + 1][0] == '-') {
				fprintf(stderr, "kfpc: --server needs a URL (--server http://HOST:PORT)\n");
				return 2;
			}
			*url = argv[i + 1];
			skip = 2;
		} else if (!strncmp(argv[i], "--server=", 9)) {
			*url = argv[i] + 9;
		} else {
			continue;
		}
		for (j = i; j + skip <= *argc; j++)
			argv[j] = argv[j + skip];
		*argc -= skip;
		skip = 0;
	}
	return 0;
}

/* Returns 1 if ARGV names a local store (--state DIR): that command stays local. */
static int has_state(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--state") || !strncmp(argv[i], "--state=", 8))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *cmd;
	const char *server;
	char *conf;
	int rc;

	if (take_server(&argc, argv, &server))
		return 2;
	if (argc < 2)
		return usage(stderr);
	if (server) /* every command goes to kfpd */
		return cmd_remote(argc - 1, argv + 1, server);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("kfpc %s\n", KFPC_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		if (argc < 3)
			return usage(stdout);
		if (!(cmd = find(argv[2])) && cmd_remote_wants(argv[2])) { /* submit, schedule... */
			cmd_remote_usage(argv[2], stdout);
			return 0;
		}
		if (!cmd) {
			fprintf(stderr, "kfpc: unknown command '%s'\n", argv[2]);
			return 2;
		}
		printf("usage: kfpc %s\n%s\n", cmd->usage, cmd->summary);
		return 0;
	}
	if (!(cmd = find(argv[1]))) {
		if (cmd_remote_wants(argv[1])) /* submit, cancel, schedule...: kfpd only */
			return cmd_remote(argc - 1, argv + 1, NULL);
		fprintf(stderr, "kfpc: unknown command '%s' (try 'kfpc help')\n", argv[1]);
		return 2;
	}
	/* runs, show, logs, artifact, lineage: to the server named by $KFPC_SERVER or the config
	 * file, unless --state names a local store */
	if (cmd_remote_wants(argv[1]) && !has_state(argc, argv) &&
	    (conf = cmd_remote_configured_server())) {
		rc = cmd_remote(argc - 1, argv + 1, conf);
		free(conf);
		return rc;
	}
	return cmd->fn(argc - 1, argv + 1);
}

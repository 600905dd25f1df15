/* cmds.h - the kfpc subcommands. One table (cli/main.c) maps names to these.
 *
 * Each command takes argv with argv[0] = the subcommand name and returns the process exit code:
 * 0 success, 1 the pipeline/run failed (or had errors), 2 usage or I/O error.
 * Commands print their own diagnostics; library code underneath only returns status codes. */
#ifndef KFPC_CMDS_H
#define KFPC_CMDS_H

#include <stdio.h>

int cmd_compile(int argc, char **argv); /* cli/cmd_compile.c */
int cmd_graph(int argc, char **argv);   /* cli/cmd_compile.c */
int cmd_run(int argc, char **argv);     /* cli/cmd_run.c */
int cmd_runs(int argc, char **argv);    /* cli/cmd_inspect.c */
int cmd_show(int argc, char **argv);    /* cli/cmd_inspect.c */
int cmd_logs(int argc, char **argv);    /* cli/cmd_inspect.c */
int cmd_artifact(int argc, char **argv);/* cli/cmd_inspect.c */
int cmd_lineage(int argc, char **argv); /* cli/cmd_inspect.c */
/* Writes duration D seconds as `kfpc show` prints it ("850ms", "12.3s", "4m05s", "2h03m") into
 * BUF and returns BUF (cli/cmd_inspect.c; also used by the kfpd client). */
const char *cmd_fmt_dur(double d, char buf[32]);

/* The kfpd client (cli/cmd_remote.c). cmd_remote runs ARGV[0] against SERVER (NULL: $KFPC_SERVER
 * or the config file); cmd_remote_wants says whether NAME is a remote command. */
int cmd_remote(int argc, char **argv, const char *server);
int cmd_remote_wants(const char *name);
/* Returns the server named without --server ($KFPC_SERVER, else the config file's
 * "server = URL"), malloc'd (the caller frees it), or NULL. */
char *cmd_remote_configured_server(void);
/* Prints the usage of remote command NAME (every command when NAME is NULL or unknown) to F. */
void cmd_remote_usage(const char *name, FILE *f);

#endif

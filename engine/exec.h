/* exec.h - the executor interface: how one attempt of one step instance runs.
 *
 * The scheduler (sched.c) never knows whether a step is a process or a container. It fills a
 * struct exec_spec per attempt, calls ops->start, waits for ops->fd to become readable (or for a
 * timer), calls ops->reap until it returns 0, and calls ops->release on every job it got back.
 *
 *   open      once per `kfpc run` process (also on --resume)
 *   capacity  what the machine offers (cpu, memory, gpu) for the scheduler's resource slots
 *   path_in_step  how a host path (scratch dir, output dir, an input artifact) appears inside
 *             the step: local: identical; docker: the scratch dir is mounted at /kfpc and
 *             inputs are bound read-only below it
 *   start     launch an attempt; returns a job whose `handle` is persisted in the store
 *             BEFORE the scheduler reports the attempt as running
 *   fd/reap   completion: reap is non-blocking and returns finished jobs one at a time
 *   cancel    EXEC_CANCEL_TERM (graceful: SIGTERM / docker stop) or EXEC_CANCEL_KILL
 *             (SIGKILL / docker kill); the job is still reaped afterwards
 *   reattach  after a restart (--resume): from the persisted handle and labels, either
 *             re-attach to a live attempt (reaped later like any job) or kill what is left
 *             of it (never a reused pid: local handles carry the process start time) and say
 *             the attempt is gone, so the scheduler runs a new attempt
 *   release   free a reaped job and whatever the executor keeps for it (containers removed)
 *   sweep     (optional) after a restart: stop everything of the run an earlier process left
 *   close     end of the process; running jobs are NOT killed by close (resume needs them)
 *
 * Timeouts: the scheduler enforces spec->timeout itself (cancel TERM at the deadline, cancel
 * KILL 5 s later, and it then reports the failure kind `timeout`); executors may ignore the
 * field or use it as a hint. Output parsing, artifact ingestion and caching are the scheduler's:
 * the executor only has to leave files where the spec says (scratch dir, output dir, logs).
 *
 * Registry: exec_find("local") / exec_find("docker"). The table is in exec_local.c. */
#ifndef KFPC_EXEC_H
#define KFPC_EXEC_H

#include <stddef.h>
#include <stdint.h>

/* One environment variable. `secret` is 1 when the value came from secret(): executors must
 * never log or store such a value (docker: pass it, never print the container's config). */
struct exec_env {
	const char *name;
	const char *value;
	int secret;
};

/* An input artifact: `host_path` is a file or directory in (or materialised from) the
 * artifact store; it must be made visible read-only inside the step. */
struct exec_input {
	const char *name;      /* the step input's name */
	const char *host_path; /* absolute host path */
};

/* A named volume shared by the run's steps (`volume "scratch" mount "/data" [readonly]`).
 * The local executor cannot mount and ignores them (with a note); docker creates one volume
 * per run and name (labelled with the run id). */
struct exec_volume {
	const char *name;
	const char *mount;
	int readonly;
};

/* Resource requests (0: unset). */
struct exec_resources {
	int64_t cpu_milli;
	int64_t memory_bytes;
	int64_t gpu;
};

/* Identity of an attempt: executors put these on the process env (KFPC_RUN_ID, KFPC_STEP,
 * KFPC_ATTEMPT) or as container labels (kfpc.run, kfpc.step, kfpc.attempt) so that a restart
 * can find them again. */
struct exec_labels {
	const char *run_id;   /* e.g. "r20261129-080102-3f2a" */
	const char *pipeline; /* the run's pipeline name */
	const char *step;     /* the step instance name, e.g. "fit[2]" or "sub/clean[0,1]" */
	int attempt;          /* 1-based */
};

/* A string map entry (container labels from `labels { ... }`). */
struct exec_kv {
	const char *key;
	const char *value;
};

/* Everything needed to run one attempt. All strings and arrays are owned by the caller and
 * stay valid until ops->start (or ops->reattach) returns; executors copy what they keep. */
struct exec_spec {
	const char *image;       /* container image reference (local: recorded only) */
	const char *pull_policy; /* "missing" (default if NULL), "always", "never" */
	char *const *argv;       /* NULL-terminated, already interpolated, paths as seen inside */
	size_t argc;
	const struct exec_env *env; /* step env only (executors add their own + KFPC_* vars) */
	size_t nenv;
	const char *workdir;     /* cwd inside the step; NULL: the scratch dir (as seen inside) */
	const char *scratch_dir; /* host: fresh per-attempt dir; script files and outputs live here */
	const char *output_dir;  /* host: where outputs are written; below scratch_dir */
	const struct exec_input *inputs;
	size_t ninputs;
	const struct exec_volume *volumes;
	size_t nvolumes;
	const struct exec_kv *labels; /* user labels (placement.labels) */
	size_t nlabels;
	struct exec_resources res;
	double timeout;          /* seconds, 0: none (the scheduler enforces it, see above) */
	struct exec_labels id;
	const char *stdout_path; /* host log files, written by the executor; a missing file means
				    the step wrote nothing (the local executor creates them at the
				    first byte) */
	const char *stderr_path;
	size_t stdout_limit;     /* 0: none; else stdout is a value output: once it passes this many
				    bytes the executor stops the attempt (local: SIGTERM to its group,
				    SIGKILL 5 s later), keeps the first stdout_limit bytes in the log
				    plus a note, and sets result.stdout_cut */
};

/* How an attempt ended. Exactly one of the classes applies, checked in this order:
 * infra (the executor could not run it or lost it: msg says why), timeout, oom, signal,
 * exit code. Timing is wall-clock seconds since the epoch. */
struct exec_result {
	int exit_code;  /* valid when signal == 0 and infra == 0 */
	int signal;     /* terminating signal, 0 if exited */
	int oom;        /* 1: killed for memory (docker OOMKilled) */
	int timeout;    /* 1: the executor itself enforced a timeout */
	int infra;      /* 1: executor/system error; msg says what */
	double started;
	double finished;
	char msg[256];  /* human-readable detail ("" if none); never contains secrets */
	int stdout_cut; /* 1: stdout passed spec->stdout_limit and the attempt was stopped */
};

/* A running attempt. Executors allocate a larger struct with this as its FIRST member. */
struct exec_job {
	void *udata;      /* the scheduler's pointer, given to start/reattach, returned by reap */
	char handle[128]; /* persistable: local "pid:pgid:starttime", docker the container id */
};

enum exec_cancel {
	EXEC_CANCEL_TERM = 1, /* graceful: SIGTERM to the process group / docker stop */
	EXEC_CANCEL_KILL = 2, /* at once: SIGKILL to the process group / docker kill */
};

/* Options for ops->open. Strings are borrowed for the duration of open only. */
struct exec_config {
	const char *state_dir; /* absolute path of the state dir (.kfpc) */
	const char *run_id;
	int quiet;             /* 1: do not print notices */
};

struct exec; /* an open executor (opaque, the executor's own) */

/* The vtable. Every function returning int returns 0 on success and -1 on error with a
 * message in err[errlen] (NUL-terminated) unless documented otherwise. */
struct exec_ops {
	const char *name; /* "local", "docker" */

	/* Open an executor; *out is freed by close. The local executor prints, once, on stderr
	 * that it runs commands on the host (unless cfg->quiet). */
	int (*open)(const struct exec_config *cfg, struct exec **out, char *err, size_t errlen);

	/* What the machine offers: cpu in millicores, memory in bytes, gpu count (0 if none). */
	int (*capacity)(struct exec *x, struct exec_resources *out, char *err, size_t errlen);

	/* Write to buf[len] how HOST_PATH (spec->scratch_dir or below it, or an input's host_path)
	 * appears inside the step started with SPEC. Local: a copy of host_path. Returns 0, or -1
	 * when the path is not visible inside the step or buf is too small. */
	int (*path_in_step)(struct exec *x, const struct exec_spec *spec, const char *host_path,
			    char *buf, size_t len);

	/* Start an attempt. On success *job is set (owned by the executor until release) with
	 * job->udata = udata and job->handle filled. On error nothing runs and err says why
	 * (the scheduler records an `infra` failure). */
	int (*start)(struct exec *x, const struct exec_spec *spec, void *udata,
		     struct exec_job **job, char *err, size_t errlen);

	/* A descriptor that becomes readable when reap may return a job, or -1 if the executor
	 * has none (then the scheduler calls reap at least every 50 ms). Owned by the executor. */
	int (*fd)(struct exec *x);

	/* Non-blocking: returns 1 and sets *job and *res for one finished job, 0 when none is
	 * finished now, -1 on an executor error (err). Drains fd's readiness when it returns 0. */
	int (*reap)(struct exec *x, struct exec_job **job, struct exec_result *res,
		    char *err, size_t errlen);

	/* Ask a running job to stop. The job is still reaped afterwards. */
	int (*cancel)(struct exec *x, struct exec_job *job, enum exec_cancel how,
		      char *err, size_t errlen);

	/* After a restart: HANDLE is what a previous process persisted for the attempt SPEC->id.
	 * Returns 1 and sets *job (to be reaped later; it may be finished already) when the
	 * executor re-attached to it; 0 when nothing of it is running any more (anything left was
	 * killed, and never a process that merely reuses the pid: the scheduler then runs a new
	 * attempt); -1 on error (err). */
	int (*reattach)(struct exec *x, const char *handle, const struct exec_spec *spec,
			void *udata, struct exec_job **job, char *err, size_t errlen);

	/* Free a reaped job (docker: remove the container). */
	void (*release)(struct exec *x, struct exec_job *job);

	/* After a restart (--resume), before anything starts: stop everything an earlier process
	 * started for run RUN_ID, recorded in the store or not, and return once it is gone (at
	 * most a few seconds). An executor that has it lets the scheduler spawn an attempt before
	 * the record that says it runs is committed (sched.c, "Durability"). NULL: none, and
	 * every attempt is committed as running before it is spawned. Returns 0 or -1 (err). */
	int (*sweep)(struct exec *x, const char *run_id, char *err, size_t errlen);

	/* Close the executor. Jobs still running are left running (see reattach). NULL is ok. */
	void (*close)(struct exec *x);
};

extern const struct exec_ops exec_local_ops;  /* engine/exec_local.c */
extern const struct exec_ops exec_docker_ops; /* engine/exec_docker.c */

/* The executor registered under NAME ("local", "docker"), or NULL. Static storage. */
const struct exec_ops *exec_find(const char *name);

/* The registered names, comma-separated ("local, docker"), for usage messages. Static. */
const char *exec_names(void);

#endif

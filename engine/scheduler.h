/* scheduler.h - the scheduler (engine/sched.c; not "sched.h", which would shadow the system header): runs an IR's DAG to completion (SPEC §6).
 *
 * samurai's build loop is the model: dependency counters, a FIFO ready queue, a bounded set of
 * job slots, and one poll() that waits for whichever comes first of a child finishing (the
 * executor's descriptor), a signal (SIGINT/SIGTERM/SIGHUP through a signalfd) or a timer
 * (step timeouts, the SIGKILL grace period, retry backoff, the pipeline timeout, progress
 * redraws). On top of samurai: loops expanded at run time (scopes), sub-pipelines, conditions
 * and skip propagation, exit handlers, retries, caching and durable recording of every state
 * change through store.h before it is acted upon (spawned) or reported (printed).
 *
 * Resume: with cfg->resume the instances recorded by an earlier process are adopted when they
 * become ready (terminal ones keep their state and outputs; in-flight attempts are re-attached
 * through the executor or killed and run again). */
#ifndef KFPC_SCHED_H
#define KFPC_SCHED_H

#include <stdio.h>

#include <json-c/json.h>

#include "art.h"
#include "exec.h"
#include "ir.h"
#include "progress.h"
#include "store.h"

struct sched_config {
	const struct ir *ir;
	struct store *st;
	struct art *art;
	const struct exec_ops *ops;
	struct exec *x;
	struct progress *prog;      /* may be NULL */
	const char *run_id;
	const char *state_dir;      /* absolute path of the state directory */
	const char *executor;       /* name recorded in attempts */
	json_object *params;        /* borrowed: every entry parameter -> its value */
	int parallelism;            /* --parallelism (>= 1) */
	int no_cache;               /* --no-cache */
	int resume;                 /* adopt recorded instances */
	FILE *explain;              /* --explain: where to write why each step ran; NULL: off */
	const char *prev_run;       /* --explain: the previous run of this pipeline, or NULL */
	double run_started;         /* wall-clock start of the run (pipeline timeout) */
};

struct sched_result {
	enum store_run_status status;
	char reason[1024];          /* why it failed or was cancelled ("" if it succeeded) */
	json_object *outputs;       /* pipeline outputs (name -> value); caller owns */
	int store_error;            /* 1: stopped because the state store failed */
};

/* Run the DAG of CFG->ir to completion. Returns 0 (R filled: the run's final status), or -1
 * when the scheduler could not start at all (R->reason says why). Never exits the process;
 * restores the signal mask it changed. */
int sched_run(const struct sched_config *cfg, struct sched_result *r);

#endif

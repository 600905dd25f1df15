/* progress.h - what `kfpc run` shows while it runs.
 *
 * Without a TTY: one plain line per event, e.g.
 *     [12:00:01] fit[2] succeeded (1.2s)
 *     [12:00:02] deploy skipped (condition false)
 *     [12:00:03] train failed (exit code 3) at examples/train.kfp:14:3
 *       | last lines of the step's stderr
 * On a TTY: the same lines scroll above a live block (counts per state, running steps with
 * their elapsed time, total elapsed), redrawn at most 10 times a second.
 * All output goes to the FILE given to progress_new (stderr for `kfpc run`). */
#ifndef KFPC_PROGRESS_H
#define KFPC_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

/* Step states for counting, in the order of store.h's enum store_step_state. */
#define PROGRESS_NSTATES 7

struct progress;

/* A new display writing to F. TTY: live mode (else plain lines). COLOR: ANSI colour.
 * Returns NULL when out of memory. Free with progress_free. */
struct progress *progress_new(FILE *f, int tty, int color);

/* Clears the live block (if any) and frees P. NULL is ok. */
void progress_free(struct progress *p);

/* Set the header (run id and pipeline name; copied). */
void progress_header(struct progress *p, const char *run_id, const char *pipeline);

/* A step instance started an attempt (live mode lists it as running). */
void progress_started(struct progress *p, const char *name, int attempt);

/* A step instance's attempt failed and it waits to retry (live mode stops listing it). */
void progress_waiting(struct progress *p, const char *name);

/* A step instance reached STATE ("succeeded", "failed" ...) after SECS seconds (<0: no
 * duration). DETAIL (may be NULL) goes in parentheses; LOC ("file:line:col", may be NULL) is
 * printed for failures; LOGPATH (may be NULL): its last lines are shown for failures. */
void progress_done(struct progress *p, const char *name, const char *state, double secs,
		   const char *detail, const char *loc, const char *logpath);

/* Write out what the calls above printed (plain mode writes a batch of lines at once: the
 * caller flushes after each batch of reports; the live display flushes itself). */
void progress_flush(struct progress *p);

/* Print a free-form line (above the live block). */
void progress_message(struct progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Set the per-state counts shown in live mode (COUNTS[PROGRESS_NSTATES]). */
void progress_counts(struct progress *p, const size_t *counts);

/* Redraw the live block if something changed and 100 ms have passed. Returns the number of
 * milliseconds after which it wants to be called again (-1: not needed). */
int progress_tick(struct progress *p);

/* Remove the live block (before the final summary). */
void progress_end(struct progress *p);

#endif

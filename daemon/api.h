/* api.h - the REST API handlers (routes in http.c) and the run/schedule machinery they share. */
#ifndef KFPD_API_H
#define KFPD_API_H
#include "http.h"

/* api_admin.c: health, metrics, namespaces, tokens */
int api_healthz(struct req *r);
int api_readyz(struct req *r);
int api_metrics(struct req *r);
int api_whoami(struct req *r);
int api_ns_create(struct req *r);
int api_ns_list(struct req *r);
int api_ns_delete(struct req *r);
int api_token_create(struct req *r);
int api_token_list(struct req *r);
int api_token_delete(struct req *r);

/* api_secrets.c: a namespace's secret values, for secret("NAME") in its steps */
int api_secret_put(struct req *r);
int api_secret_list(struct req *r);
int api_secret_delete(struct req *r);

/* Returns a new environment for a worker of namespace NS: the daemon's own minus KFPC_SECRET_*,
 * plus KFPC_SECRET_<NAME> for each of NS's secrets. NULL-terminated; free with
 * secrets_env_free. NULL when out of memory. */
char **secrets_env(struct kfpd *k, const char *ns);
void secrets_env_free(char **env);

/* api_pipelines.c */
int api_pl_create(struct req *r);
int api_pl_list(struct req *r);
int api_pl_get(struct req *r);
int api_pl_delete(struct req *r);
int api_pl_version(struct req *r);
int api_pl_ir(struct req *r);

/* Loads version V ("latest" or NULL: the latest) of pipeline NAME in NS into *OUT (a versions
 * record, caller puts). Returns 0, DB_NOTFOUND or negative. */
int api_pl_load_version(struct kfpd *k, const char *ns, const char *name, const char *v,
			json_object **out);

/* api_runs.c */
int api_run_create(struct req *r);
int api_run_list(struct req *r);
int api_run_get(struct req *r);
int api_run_cancel(struct req *r);
int api_run_retry(struct req *r);
int api_run_delete(struct req *r);
int api_run_logs(struct req *r);
int api_run_artifacts(struct req *r);
int api_art_get(struct req *r);
int api_art_content(struct req *r);
int api_art_lineage(struct req *r);

/* Frees the GET /runs/ID answer cache (at exit). */
void api_runs_cache_free(void);

/* api_schedules.c */

/* Makes the schedules declared in IR (its "schedules") exist for pipeline NAME of NS: created
 * (enabled, policy skip, max_concurrent 1, the latest version), their cron/tz updated, those no
 * longer declared deleted. A schedule the team paused stays paused. Returns 0 or -1. */
int sched_sync_pipeline(struct kfpd *k, const char *ns, const char *name, json_object *ir);

/* Deletes every schedule of pipeline NAME of NS. */
void sched_delete_pipeline(struct kfpd *k, const char *ns, const char *name);

int api_sched_create(struct req *r);
int api_sched_list(struct req *r);
int api_sched_get(struct req *r);
int api_sched_update(struct req *r);
int api_sched_pause(struct req *r);
int api_sched_resume(struct req *r);
int api_sched_delete(struct req *r);

/* ---- runs.c: the run records and their workers ------------------------------------------------ */

/* Creates a durable run of pipeline version PV (a versions record: {"version","ir",...}) of
 * pipeline NAME in namespace NS with PARAMS (object, not consumed; validated here against the IR:
 * unknown, missing or ill-typed values give -EINVAL with a message in ERR). SCHEDULE: the schedule
 * id or NULL; FIRE: its fire time. On success *OUT is the new run record (caller puts) and the
 * loop is woken. Returns 0, -EINVAL (bad params), or another negative error. */
int runs_create(struct kfpd *k, const char *ns, const char *name, json_object *pv,
		json_object *params, const char *schedule, time_t fire, json_object **out,
		char *err, size_t n);

/* Checks PARAMS (object or NULL, not consumed) against IR's parameters as runs_create() does.
 * Returns 0, or -EINVAL with a message in ERR. */
int runs_check_params(json_object *ir, json_object *params, char *err, size_t n);

/* A run being created whose commit is pending (runs_create_async). */
struct new_run;

/* runs_create() for an HTTP request, without blocking its thread behind another request's commit:
 * when a group commit is in progress, PARK(ARG) is called (from this thread, while the creation
 * is queued; it suspends the request and returns 0, or nonzero to wait instead) and the committing
 * thread calls WAKE(ARG) once the run is durable or failed. Returns 0 (committed: call
 * runs_create_finish(*PENDING) now), 1 (parked: call it after WAKE), or a negative error as
 * runs_create with a message in ERR (*PENDING is NULL). PV and PARAMS are not consumed. */
int runs_create_async(struct kfpd *k, const char *ns, const char *name, json_object *pv,
		      json_object *params, int (*park)(void *), void (*wake)(void *), void *arg,
		      struct new_run **pending, char *err, size_t n);

/* Result of a committed creation: 0 with the run record in *OUT (caller puts), or a negative error
 * with a message in ERR. Frees P. */
int runs_create_finish(struct new_run *p, json_object **out, char *err, size_t n);

/* Frees a committed creation whose request went away (its run stays accepted). */
void runs_create_abandon(void *p);

/* At shutdown, before the HTTP server stops: waits for the group commit in progress, and from
 * now on no creation is parked (so no request stays suspended). */
void runs_commits_close(void);

/* Loop thread: reaps finished workers, starts queued runs (up to k->max_workers), applies cancels.
 * Returns the number of runs still active. */
int runs_tick(struct kfpd *k);

/* Loop thread, at start: re-queues every accepted run that is not terminal (kill -9 recovery). */
int runs_recover(struct kfpd *k);

/* Loop thread, at SIGTERM: leaves the workers running for the next start to adopt (or kills
 * them with --stop-workers: their runs resume at the next start); frees the run machinery. */
void runs_shutdown(struct kfpd *k);

/* Sets the runs-by-state gauges from counters kept by every state change (no scan): called
 * when /metrics is scraped. */
void runs_update_metrics(struct kfpd *k);

/* Returns 1 if run ID has a record that is not terminal (queued or running). */
int runs_active(struct kfpd *k, const char *id);

/* Returns 1 if STATE is terminal (succeeded, failed, cancelled). */
int runs_terminal(const char *state);

/* Adds the engine's view of RUN (a daemon run record) to it: "outputs" (the pipeline's outputs,
 * null until the end) and "duration" (seconds, once finished). */
void runs_engine_run(json_object *run);

/* Returns 1 if STATE names a run state: queued, running, succeeded, failed, cancelled. */
int runs_state_ok(const char *state);

/* Counts non-terminal runs of schedule SCHED (kept in memory: no scan). */
int runs_active_for_schedule(struct kfpd *k, const char *sched);

/* Engine view of a run: an object {"steps":[...]} read from the engine state, or NULL when the
 * engine has nothing (yet). Caller puts. */
json_object *runs_engine_steps(struct kfpd *k, json_object *run);

/* Cancels run ID: a queued run becomes cancelled at once, a running one is signalled by the loop.
 * BY (who asked: "namespace alpha") goes into the run's reason ("cancelled through the API by
 * BY"). Returns 0, 404, or 409 when already terminal; *OUT is the record (caller puts; NULL on
 * 404). */
int runs_cancel(struct kfpd *k, const char *id, const char *by, json_object **out);

/* Queues failed/cancelled run ID again (resumed: finished steps are kept). Returns 0, 404, 409
 * when not failed/cancelled, 500; *OUT as for runs_cancel. */
int runs_retry(struct kfpd *k, const char *id, json_object **out);

/* Deletes terminal run ID of namespace NS (record, index, DATA/runs/ID). Returns 0, 404, 409
 * (not terminal) or 500. The engine store keeps its history of the run. */
int runs_delete(struct kfpd *k, const char *ns, const char *id);

/* Live step counts of an active run ({"total":N,"succeeded":N,...}, refreshed by the loop every
 * 0.5 s), or NULL. Caller puts. */
json_object *runs_progress(const char *id);

/* Returns a counter that changes whenever any run record or live progress changes. */
unsigned long runs_generation(void);

struct store;
/* Returns the engine store locked for the caller's thread (release with runs_estore_unlock), or
 * NULL (nothing locked) when it is not open. */
struct store *runs_estore_lock(void);
void runs_estore_unlock(void);

/* ---- cron.c: schedules ------------------------------------------------------------------------- */

/* Returns NULL if CRON (SPEC §7) and TZ (IANA name or "UTC") are valid, else a message (static
 * or in BUF of N bytes). */
const char *cron_check(const char *cron, const char *tz, char *buf, size_t n);

/* Returns the first fire time strictly after AFTER, (time_t)-1 when none. Serialised. */
time_t cron_next(const char *cron, const char *tz, time_t after);

/* Held around every read-modify-write of a schedule record (HTTP threads and the loop). */
extern pthread_mutex_t cron_sched_lock;

/* Deletes the fires records of schedule ID older than BEFORE (0: all). */
void cron_forget_fires(struct kfpd *k, const char *id, time_t before);

/* Loop thread: fires every enabled schedule whose next time has come (policy catchup/skip,
 * max_concurrent). */
void cron_tick(struct kfpd *k);

#endif

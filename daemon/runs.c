/* runs.c - run records and their worker processes.
 *
 * A run's life, and who writes what:
 *   POST /runs (HTTP thread)  writes the daemon record {"state":"queued"}, the nsruns index and
 *                             the IR (runir) in one synced commit, then answers 201: from here
 *                             on the run survives kill -9 (and power loss).
 *   loop: start               creates the engine's run record (store_run_create: IR + resolved
 *                             params, same id) if absent, then posix_spawns the worker (output
 *                             to DATA/runs/ID/worker.log)
 *                             `kfpc run --resume ID --state DATA/state --executor X` in its own
 *                             process group; daemon record -> "running" with "pid".
 *   loop: worker exits        reads the engine's run status: terminal -> the daemon record takes
 *                             it (with the step summary); still "running" (worker died) -> the
 *                             run is queued again (resume), at most MAX_SPAWNS times.
 *   cancel                    queued: the record becomes "cancelled" at once; running: the
 *                             worker gets SIGINT (the engine cancels gracefully: SPEC §6.10,
 *                             exit handlers run), a second SIGINT 30 s later (cancel at once);
 *                             the record gets the engine's final status.
 *   retry                     a failed/cancelled run goes back to "queued" and is resumed: the
 *                             engine re-runs failed, cancelled and skipped steps and the
 *                             finally steps, and keeps the other finished ones.
 *   restart (recovery)        every record not terminal is queued again; a worker that
 *                             survived the daemon (kill -9) is adopted through a pidfd instead.
 *
 * Daemon run record (table runs, key ID):
 *   {"id","namespace","pipeline","version","params":{..},"state":"queued|running|succeeded|
 *    failed|cancelled","reason","created","started","finished" (ISO 8601 or null),
 *    "schedule": SCHEDID|null,"fire_time": ISO|null,"spawns": N,"pid": N|null,
 *    "cancel": bool,"progress": {STATE: count} (set when terminal)}
 *
 * Locking: runs_lock serialises every read-modify-write of a run record (HTTP threads and the
 * loop); estore_lock guards the one engine store handle. Neither is held across a spawn or a
 * wait. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "db.h"
#include "store.h"
#include "validate.h"

#define MAX_SPAWNS 5       /* worker launches per run before it is failed */
#define CANCEL_GRACE 30    /* seconds between the two SIGINTs of a cancel */

struct worker {
	char id[STORE_ID_MAX + 1];
	pid_t pid;
	int pidfd;          /* adopted (not our child): readable when it exits; else -1 */
	time_t cancel_at;   /* when SIGINT was sent (0: not cancelling) */
	int cancel_hard;    /* the second SIGINT was sent */
};

static pthread_mutex_t runs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t estore_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *estore;

/* shared with HTTP threads under runs_lock: ids to start, ids to cancel */
static json_object *pending_start, *pending_cancel;

/* under runs_lock: schedule id -> its runs that are not terminal (max_concurrent) */
static json_object *sched_active;

static void sched_active_add(const char *sched, int delta)
{
	int64_t n;

	if (!sched || !*sched)
		return;
	if (!sched_active)
		sched_active = json_object_new_object();
	n = js_int(sched_active, sched, 0) + delta;
	if (n > 0)
		json_object_object_add(sched_active, sched, json_object_new_int64(n));
	else
		json_object_object_del(sched_active, sched);
}

/* loop thread only */
static struct worker *workers;
static size_t nworkers, capworkers;
static json_object *queue; /* ids waiting for a worker slot, in order */

int runs_terminal(const char *s)
{
	return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

int runs_state_ok(const char *s)
{
	return runs_terminal(s) || !strcmp(s, "queued") || !strcmp(s, "running");
}

static const char *iso_now(struct kfpd *k, char buf[32])
{
	return util_iso8601(util_now(k), buf);
}

/* ---- the engine store ------------------------------------------------------------------------ */

static int estore_open(struct kfpd *k)
{
	char dir[4200], err[256];

	snprintf(dir, sizeof dir, "%s/state", k->data_dir);
	if (store_open(dir, STORE_OPEN_CREATE, &estore, err, sizeof err)) {
		log_kv("error", "cannot open the engine state", "detail", err, NULL);
		return -1;
	}
	return 0;
}

static json_object *step_view(const struct store_step *s)
{
	json_object *o = json_object_new_object(), *atts = json_object_new_array();
	size_t i;

	json_object_object_add(o, "id", json_object_new_string(s->id));
	json_object_object_add(o, "node", json_object_new_string(s->node ? s->node : s->id));
	json_object_object_add(o, "state", json_object_new_string(store_step_state_name(s->state)));
	json_object_object_add(o, "reason", s->reason ? json_object_new_string(s->reason) : NULL);
	json_object_object_add(o, "started", json_object_new_double(s->started));
	json_object_object_add(o, "finished", json_object_new_double(s->finished));
	for (i = 0; i < s->nattempts; i++) {
		const struct store_attempt *a = &s->attempts[i];
		json_object *ao = json_object_new_object();
		json_object_object_add(ao, "number", json_object_new_int(a->number));
		json_object_object_add(ao, "started", json_object_new_double(a->started));
		json_object_object_add(ao, "finished", json_object_new_double(a->finished));
		json_object_object_add(ao, "exit_code", json_object_new_int(a->exit_code));
		json_object_object_add(ao, "signal", json_object_new_int(a->signal));
		json_object_object_add(ao, "fail", json_object_new_string(store_fail_kind_name(a->fail)));
		json_object_object_add(ao, "reason", a->reason ? json_object_new_string(a->reason) : NULL);
		json_object_array_add(atts, ao);
	}
	json_object_object_add(o, "attempts", atts);
	json_object_object_add(o, "inputs", s->inputs ? json_object_get(s->inputs) : NULL);
	json_object *ins = json_object_new_array();
	for (i = 0; i < s->nin_arts; i++) {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "name", json_object_new_string(s->in_arts[i].name));
		json_object_object_add(a, "digest", json_object_new_string(s->in_arts[i].digest));
		json_object_array_add(ins, a);
	}
	json_object_object_add(o, "input_artifacts", ins);
	json_object_object_add(o, "outputs", s->outputs ? json_object_get(s->outputs) : NULL);
	json_object *arts = json_object_new_array();
	for (i = 0; i < s->nout_arts; i++) {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "name", json_object_new_string(s->out_arts[i].name));
		json_object_object_add(a, "digest", json_object_new_string(s->out_arts[i].digest));
		json_object_array_add(arts, a);
	}
	json_object_object_add(o, "artifacts", arts);
	json_object_object_add(o, "cached_from",
			       s->cached_from ? json_object_new_string(s->cached_from) : NULL);
	return o;
}

json_object *runs_engine_steps(struct kfpd *k, json_object *run)
{
	struct store_step **steps = NULL;
	size_t n = 0, i;
	json_object *arr;

	(void)k;
	pthread_mutex_lock(&estore_lock);
	if (!estore || store_step_list(estore, js_str(run, "id", ""), &steps, &n)) {
		pthread_mutex_unlock(&estore_lock);
		return NULL;
	}
	pthread_mutex_unlock(&estore_lock);
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(arr, step_view(steps[i]));
	store_step_list_free(steps, n);
	return arr;
}

void runs_engine_run(json_object *run)
{
	struct store_run *er = NULL;

	pthread_mutex_lock(&estore_lock);
	if (!estore || store_run_get(estore, js_str(run, "id", ""), 0, &er)) {
		pthread_mutex_unlock(&estore_lock);
		return;
	}
	pthread_mutex_unlock(&estore_lock);
	json_object_object_add(run, "outputs", er->outputs ? json_object_get(er->outputs) : NULL);
	if (er->started > 0 && er->finished >= er->started)
		json_object_object_add(run, "duration",
				       json_object_new_double(er->finished - er->started));
	store_run_free(er);
}

/* Counts step states of run ID into a new object; observes durations when OBSERVE. */
static json_object *engine_progress(const char *id, int observe)
{
	struct store_step **steps = NULL;
	size_t n = 0, i;
	long counts[7] = {0};
	json_object *o;

	pthread_mutex_lock(&estore_lock);
	if (!estore || store_step_list(estore, id, &steps, &n)) {
		pthread_mutex_unlock(&estore_lock);
		return NULL;
	}
	pthread_mutex_unlock(&estore_lock);
	for (i = 0; i < n; i++) {
		if ((unsigned)steps[i]->state < 7)
			counts[steps[i]->state]++;
		if (observe && steps[i]->finished > 0 && steps[i]->started > 0 &&
		    (steps[i]->state == STORE_STEP_SUCCEEDED || steps[i]->state == STORE_STEP_FAILED))
			metrics_step_duration(steps[i]->finished - steps[i]->started);
	}
	store_step_list_free(steps, n);
	o = json_object_new_object();
	json_object_object_add(o, "total", json_object_new_int64((int64_t)n));
	for (i = 0; i < 7; i++)
		json_object_object_add(o, store_step_state_name((enum store_step_state)i),
				       json_object_new_int64(counts[i]));
	return o;
}

/* ---- live progress cache (runs the loop refreshes; read by GET /runs/ID) --------------------- */

static pthread_mutex_t prog_lock = PTHREAD_MUTEX_INITIALIZER;
static json_object *prog_cache; /* id -> progress object */

/* bumped by every change of a run record or of the live progress (GET /runs/ID answer cache) */
static volatile unsigned long runs_gen = 1;

unsigned long runs_generation(void)
{
	return __atomic_load_n(&runs_gen, __ATOMIC_ACQUIRE);
}

static void runs_changed(void)
{
	__atomic_add_fetch(&runs_gen, 1, __ATOMIC_RELEASE);
}

json_object *runs_progress(const char *id)
{
	json_object *p = NULL;

	pthread_mutex_lock(&prog_lock);
	if (prog_cache && json_object_object_get_ex(prog_cache, id, &p))
		json_object_get(p);
	else
		p = NULL;
	pthread_mutex_unlock(&prog_lock);
	return p;
}

static void progress_set(const char *id, json_object *p)
{
	pthread_mutex_lock(&prog_lock);
	if (!prog_cache)
		prog_cache = json_object_new_object();
	if (p)
		json_object_object_add(prog_cache, id, p);
	else
		json_object_object_del(prog_cache, id);
	pthread_mutex_unlock(&prog_lock);
	runs_changed();
}

/* ---- metrics: runs by state ------------------------------------------------------------------ */

static int count_state(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	long *c = ctx;
	static const char *const st[] = {"queued", "running", "succeeded", "failed", "cancelled"};
	char buf[64];
	const char *p = memmem(val, vlen, "\"state\":\"", 9);
	size_t i, l;

	(void)key, (void)klen;
	if (!p)
		return 0;
	p += 9;
	for (l = 0; l < sizeof buf - 1 && p + l < val + vlen && p[l] != '"'; l++)
		buf[l] = p[l];
	buf[l] = 0;
	for (i = 0; i < 5; i++)
		if (!strcmp(buf, st[i]))
			c[i]++;
	return 0;
}

/* Runs by state: counted once at recovery (a scan), then kept by every state change. */
static const char *const state_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};
static long state_n[5];

/* Counts a run leaving state FROM and entering TO (either may be NULL or unknown). */
static void state_count(const char *from, const char *to)
{
	int i;

	for (i = 0; i < 5; i++) {
		if (from && !strcmp(from, state_names[i]))
			__atomic_sub_fetch(&state_n[i], 1, __ATOMIC_RELAXED);
		if (to && !strcmp(to, state_names[i]))
			__atomic_add_fetch(&state_n[i], 1, __ATOMIC_RELAXED);
	}
}

void runs_update_metrics(struct kfpd *k)
{
	int i;

	(void)k;
	for (i = 0; i < 5; i++)
		metrics_runs_set(state_names[i], __atomic_load_n(&state_n[i], __ATOMIC_RELAXED));
}

/* ---- parameters ------------------------------------------------------------------------------ */

/* Converts V to TYPE (a string from a CLI "-p" may stand for any scalar or JSON value). Returns
 * a new reference or NULL with a message in ERR. */
static json_object *coerce(const char *name, const char *type, json_object *v, char *err, size_t n)
{
	enum json_type t = json_object_get_type(v);
	const char *s = t == json_type_string ? json_object_get_string(v) : NULL;
	char *end;

	if (!strcmp(type, "string")) {
		if (s)
			return json_object_get(v);
	} else if (!strcmp(type, "int")) {
		if (t == json_type_int)
			return json_object_get(v);
		if (s && *s) {
			errno = 0;
			long long x = strtoll(s, &end, 10);
			if (!*end && !errno)
				return json_object_new_int64(x);
		}
	} else if (!strcmp(type, "float")) {
		if (t == json_type_double || t == json_type_int)
			return json_object_new_double(json_object_get_double(v));
		if (s && *s) {
			double x = strtod(s, &end);
			if (!*end)
				return json_object_new_double(x);
		}
	} else if (!strcmp(type, "bool")) {
		if (t == json_type_boolean)
			return json_object_get(v);
		if (s && (!strcmp(s, "true") || !strcmp(s, "false")))
			return json_object_new_boolean(!strcmp(s, "true"));
	} else if (!strncmp(type, "list<", 5) || !strncmp(type, "map<", 4)) {
		json_object *p = s ? json_tokener_parse(s) : json_object_get(v);
		int want_list = type[0] == 'l';
		if (p && json_object_is_type(p, want_list ? json_type_array : json_type_object))
			return p;
		json_object_put(p);
	}
	snprintf(err, n, "parameter '%s': want a value of type %s", name, type);
	return NULL;
}

/* Validates PARAMS against the IR's parameter list and fills defaults. Returns the resolved
 * object (new reference) or NULL with a message in ERR. */
static json_object *resolve_params(json_object *ir, json_object *params, char *err, size_t n)
{
	json_object *decl, *out = json_object_new_object();
	size_t i, j;

	if (!json_object_object_get_ex(ir, "params", &decl) ||
	    !json_object_is_type(decl, json_type_array))
		decl = NULL;
	if (params) {
		json_object_object_foreach(params, key, val) {
			int found = 0;
			(void)val;
			for (i = 0; decl && i < json_object_array_length(decl); i++)
				if (!strcmp(js_str(json_object_array_get_idx(decl, i), "name", ""), key))
					found = 1;
			if (!found) {
				snprintf(err, n, "unknown parameter '%s'", key);
				goto err;
			}
		}
	}
	for (i = 0; decl && i < json_object_array_length(decl); i++) {
		json_object *p = json_object_array_get_idx(decl, i), *v = NULL, *c, *x;
		const char *name = js_str(p, "name", ""), *type = js_str(p, "type", "string");
		if (params && json_object_object_get_ex(params, name, &v)) {
			if (!(v = coerce(name, type, v, err, n)))
				goto err;
		} else if (json_object_object_get_ex(p, "default", &v) && v) {
			json_object_get(v);
		} else {
			snprintf(err, n, "missing required parameter '%s' (%s)", name, type);
			goto err;
		}
		if (json_object_object_get_ex(p, "constraints", &c) && c) {
			if (json_object_object_get_ex(c, "min", &x) && x &&
			    json_object_get_double(v) < json_object_get_double(x)) {
				snprintf(err, n, "parameter '%s': %s is below the minimum %s", name,
					 json_object_to_json_string(v), json_object_to_json_string(x));
				json_object_put(v);
				goto err;
			}
			if (json_object_object_get_ex(c, "max", &x) && x &&
			    json_object_get_double(v) > json_object_get_double(x)) {
				snprintf(err, n, "parameter '%s': %s is above the maximum %s", name,
					 json_object_to_json_string(v), json_object_to_json_string(x));
				json_object_put(v);
				goto err;
			}
			if (json_object_object_get_ex(c, "one_of", &x) &&
			    json_object_is_type(x, json_type_array)) {
				int ok = 0;
				for (j = 0; j < json_object_array_length(x); j++)
					if (json_object_equal(v, json_object_array_get_idx(x, j)))
						ok = 1;
				if (!ok) {
					snprintf(err, n, "parameter '%s': %s is not one of %s", name,
						 json_object_to_json_string(v),
						 json_object_to_json_string(x));
					json_object_put(v);
					goto err;
				}
			}
			if (json_object_object_get_ex(c, "regex", &x) && x &&
			    json_object_is_type(v, json_type_string) &&
			    validate_regex_match(json_object_get_string(x), json_object_get_string(v),
						 1) != 1) {
				snprintf(err, n, "parameter '%s': \"%s\" does not match \"%s\"", name,
					 json_object_get_string(v), json_object_get_string(x));
				json_object_put(v);
				goto err;
			}
		}
		json_object_object_add(out, name, v);
	}
	return out;
err:
	json_object_put(out);
	return NULL;
}

int runs_check_params(json_object *ir, json_object *params, char *err, size_t n)
{
	json_object *o = resolve_params(ir, params, err, n);

	if (!o)
		return -EINVAL;
	json_object_put(o);
	return 0;
}

/* ---- create ---------------------------------------------------------------------------------- */

/* Group commit: concurrent creations share one write transaction (and its fsync). The first
 * thread to find no commit in progress becomes the committer: it commits everything queued, batch
 * after batch, until the queue is empty. A creation queued while a commit is in progress either
 * waits for it (runs_create: the cron loop, http_inproc) or is parked (runs_create_async: an HTTP
 * request whose connection is suspended, so that the HTTP thread serves other connections and
 * the next batch grows with every concurrent client); the committer then calls its wake function.
 * Batches written back to back share one meta-page sync (GC_PIPELINE). Either way nothing is
 * answered before the sync that makes its commit durable: a 201 means durable. */
struct new_run {
	struct new_run *next;  /* in the queue, then in the batch being committed */
	struct new_run *wnext; /* parked runs of a batch, to wake */
	char id[STORE_RUN_ID_SIZE];
	char *ns, *name, *schedule; /* owned */
	json_object *run, *ir;      /* owned references */
	time_t fire;
	int rc, done;
	int parked;                   /* left to the committer: WAKE(ARG) when done */
	int (*park)(void *arg);       /* NULL: wait (runs_create) */
	void (*wake)(void *arg);
	void *arg;
};

static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gc_cond = PTHREAD_COND_INITIALIZER;
static struct new_run *gc_head, **gc_tail = &gc_head;
static int gc_busy;    /* a committer is at work */
static int gc_closing; /* runs_commits_close(): nothing is parked any more */

static void new_run_free(struct new_run *p)
{
	if (!p)
		return;
	json_object_put(p->run);
	json_object_put(p->ir);
	free(p->ns);
	free(p->name);
	free(p->schedule);
	free(p);
}

/* Creation order (GET /runs is newest first): a number above every earlier run's, the wall
 * clock in microseconds when that is larger. runs_recover() raises it past the stored ones. */
static int64_t seq_last;

static int64_t next_seq(void)
{
	struct timespec ts;
	int64_t cur = __atomic_load_n(&seq_last, __ATOMIC_RELAXED), nxt;

	clock_gettime(CLOCK_REALTIME, &ts);
	do {
		nxt = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		if (nxt <= cur)
			nxt = cur + 1;
	} while (!__atomic_compare_exchange_n(&seq_last, &cur, nxt, 0, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return nxt;
}

/* The DB_NSRUNS key of a run by creation order: "NS/#SEQ" (20 digits), value {"id": ID}; the
 * key "NS/ID" (value {}) finds a run by id prefix. */
static void seq_key(char *key, size_t n, const char *ns, int64_t seq)
{
	snprintf(key, n, "%s/#%020lld", ns, (long long)seq);
}

/* Puts one new run's records into TXN. Returns 0, -EEXIST (its fire time already fired: nothing
 * put) or a negative database error. */
static int put_new_run(struct kfpd *k, MDB_txn *txn, struct new_run *p)
{
	char key[300], fkey[128];
	json_object *o;
	int rc;

	if (p->schedule) {
		snprintf(fkey, sizeof fkey, "%.64s/%012lld", p->schedule, (long long)p->fire);
		if (db_get(k->db, txn, DB_FIRES, fkey, &o) == 0) {
			json_object_put(o);
			return -EEXIST;
		}
	}
	snprintf(key, sizeof key, "%s/%s", p->ns, p->id);
	o = json_object_new_object();
	rc = db_put(k->db, txn, DB_RUNS, p->id, p->run);
	if (!rc)
		rc = db_put(k->db, txn, DB_NSRUNS, key, o);
	json_object_put(o);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(p->id));
	seq_key(key, sizeof key, p->ns, js_int(p->run, "seq", 0));
	if (!rc)
		rc = db_put(k->db, txn, DB_NSRUNS, key, o);
	if (!rc)
		rc = db_put(k->db, txn, DB_RUNIR, p->id, p->ir);
	json_object_put(o);
	if (!rc && p->schedule) {
		o = json_object_new_string(p->id);
		rc = db_put(k->db, txn, DB_FIRES, fkey, o);
		json_object_put(o);
	}
	return rc;
}

/* Committer: a durable run enters the books (counted, handed to the loop, logged). */
static void accepted(struct new_run *p)
{
	state_count(NULL, "queued");
	pthread_mutex_lock(&runs_lock);
	if (!pending_start)
		pending_start = json_object_new_array();
	json_object_array_add(pending_start, json_object_new_string(p->id));
	sched_active_add(p->schedule, 1);
	pthread_mutex_unlock(&runs_lock);
	log_kv("info", "run accepted", "ns", p->ns, "run", p->id, "pipeline", p->name, "schedule",
	       p->schedule, NULL);
}

/* Writes one batch in one transaction, committed with its pages synced but not its meta page
 * (db_commit_lazy): the batch is durable after the next db_sync(). gc_lock not held, gc_busy
 * set: the batch is the committer's alone until it is marked done. Returns 0 or a negative
 * error (then nothing of the batch is stored). */
static int write_batch(struct kfpd *k, struct new_run *batch)
{
	struct new_run *q;
	MDB_txn *txn = NULL;
	int rc;

	rc = db_begin(k->db, 1, &txn);
	for (q = batch; q && !rc; q = q->next) {
		q->rc = put_new_run(k, txn, q);
		if (q->rc && q->rc != -EEXIST)
			rc = q->rc;
	}
	if (rc)
		db_abort(txn);
	else
		rc = db_commit_lazy(txn);
	return rc;
}

/* Completes a written batch once its durability is known: RC 0 (synced) or an error. */
static void complete_batch(struct kfpd *k, struct new_run *batch, int rc)
{
	struct new_run *q, *nx, *wl = NULL;
	int any = 0;

	for (q = batch; q; q = q->next) {
		if (rc)
			q->rc = rc;
		if (!q->rc)
			accepted(q), any = 1;
	}
	if (any)
		util_wake(k);
	pthread_mutex_lock(&gc_lock);
	for (q = batch; q; q = nx) { /* a waiter may free its run once done and the lock is free */
		nx = q->next;
		q->done = 1;
		if (q->parked)
			q->wnext = wl, wl = q;
	}
	pthread_cond_broadcast(&gc_cond);
	pthread_mutex_unlock(&gc_lock);
	for (q = wl; q; q = nx) { /* woken, a parked run belongs to its request again */
		nx = q->wnext;
		q->wake(q->arg);
	}
}

/* Batches written back to back before one db_sync() makes them all durable: a batch queued
 * while the previous one was written shares its meta-page sync (one fsync per batch, plus one,
 * instead of two per batch), at the cost of waiting for the next batch's write. */
#define GC_PIPELINE 4

/* Queues P for the group commit. Returns 0 once P is committed (P->rc set), or 1 when P was
 * parked (P->park returned 0) and the committer will call P->wake. */
static int commit_new_run(struct kfpd *k, struct new_run *p)
{
	pthread_mutex_lock(&gc_lock);
	*gc_tail = p;
	gc_tail = &p->next;
	while (!p->done) {
		if (gc_busy) {
			if (p->park && !gc_closing && !p->park(p->arg)) {
				p->parked = 1; /* before the unlock: the committer wakes it */
				pthread_mutex_unlock(&gc_lock);
				return 1;
			}
			pthread_cond_wait(&gc_cond, &gc_lock);
			continue;
		}
		gc_busy = 1;
		while (gc_head) { /* until the queue is empty: parked runs rely on us */
			struct new_run *batch[GC_PIPELINE];
			int rcs[GC_PIPELINE], nb = 0, i, src;
			do {
				batch[nb] = gc_head;
				gc_head = NULL;
				gc_tail = &gc_head;
				pthread_mutex_unlock(&gc_lock);
				rcs[nb] = write_batch(k, batch[nb]);
				nb++;
				pthread_mutex_lock(&gc_lock);
			} while (gc_head && nb < GC_PIPELINE);
			pthread_mutex_unlock(&gc_lock);
			src = db_sync(k->db);
			for (i = 0; i < nb; i++)
				complete_batch(k, batch[i], rcs[i] ? rcs[i] : src);
			pthread_mutex_lock(&gc_lock);
		}
		gc_busy = 0;
		pthread_cond_broadcast(&gc_cond);
	}
	pthread_mutex_unlock(&gc_lock);
	return 0;
}

void runs_commits_close(void)
{
	pthread_mutex_lock(&gc_lock);
	gc_closing = 1;
	while (gc_busy || gc_head)
		pthread_cond_wait(&gc_cond, &gc_lock);
	pthread_mutex_unlock(&gc_lock);
}

/* Validates and builds a new run; NULL with a message in ERR (*RC: -EAGAIN, -EINVAL, -EIO). */
static struct new_run *new_run_make(struct kfpd *k, const char *ns, const char *name,
				    json_object *pv, json_object *params, const char *schedule,
				    time_t fire, int *rc, char *err, size_t n)
{
	char ts[32];
	json_object *ir, *resolved, *run;
	struct new_run *p;

	*rc = -EIO;
	if (!k->ready) {
		snprintf(err, n, "kfpd is starting (recovering its runs): try again in a moment");
		*rc = -EAGAIN;
		return NULL;
	}
	if (!json_object_object_get_ex(pv, "ir", &ir)) {
		snprintf(err, n, "pipeline version has no IR");
		return NULL;
	}
	if (!(resolved = resolve_params(ir, params, err, n))) {
		*rc = -EINVAL;
		return NULL;
	}
	if (!(p = calloc(1, sizeof *p)) || !(p->ns = strdup(ns)) || !(p->name = strdup(name)) ||
	    (schedule && !(p->schedule = strdup(schedule)))) {
		json_object_put(resolved);
		new_run_free(p);
		snprintf(err, n, "out of memory");
		return NULL;
	}
	if (store_run_id_new(p->id)) {
		json_object_put(resolved);
		new_run_free(p);
		snprintf(err, n, "no randomness");
		return NULL;
	}
	p->ir = json_object_get(ir);
	p->fire = fire;
	p->run = run = json_object_new_object();
	json_object_object_add(run, "id", json_object_new_string(p->id));
	json_object_object_add(run, "namespace", json_object_new_string(ns));
	json_object_object_add(run, "pipeline", json_object_new_string(name));
	json_object_object_add(run, "version", json_object_new_int64(js_int(pv, "version", 0)));
	json_object_object_add(run, "params", resolved);
	json_object_object_add(run, "state", json_object_new_string("queued"));
	json_object_object_add(run, "reason", NULL);
	json_object_object_add(run, "created", json_object_new_string(iso_now(k, ts)));
	json_object_object_add(run, "seq", json_object_new_int64(next_seq()));
	json_object_object_add(run, "started", NULL);
	json_object_object_add(run, "finished", NULL);
	json_object_object_add(run, "schedule", schedule ? json_object_new_string(schedule) : NULL);
	json_object_object_add(run, "fire_time",
			       schedule ? json_object_new_string(util_iso8601(fire, ts)) : NULL);
	json_object_object_add(run, "executor", json_object_new_string(k->executor));
	json_object_object_add(run, "spawns", json_object_new_int(0));
	return p;
}

int runs_create_finish(struct new_run *p, json_object **out, char *err, size_t n)
{
	int rc = p->rc;

	*out = NULL;
	if (!rc) {
		*out = p->run;
		p->run = NULL;
	} else if (rc == -EEXIST) {
		snprintf(err, n, "fire time already fired");
	} else {
		snprintf(err, n, "database error");
		rc = rc < 0 ? rc : -EIO;
	}
	new_run_free(p);
	return rc;
}

void runs_create_abandon(void *p)
{
	new_run_free(p);
}

int runs_create_async(struct kfpd *k, const char *ns, const char *name, json_object *pv,
		      json_object *params, int (*park)(void *), void (*wake)(void *), void *arg,
		      struct new_run **pending, char *err, size_t n)
{
	int rc;
	struct new_run *p = new_run_make(k, ns, name, pv, params, NULL, 0, &rc, err, n);

	*pending = p;
	if (!p)
		return rc;
	p->park = park;
	p->wake = wake;
	p->arg = arg;
	return commit_new_run(k, p);
}

int runs_create(struct kfpd *k, const char *ns, const char *name, json_object *pv,
		json_object *params, const char *schedule, time_t fire, json_object **out,
		char *err, size_t n)
{
	int rc;
	struct new_run *p = new_run_make(k, ns, name, pv, params, schedule, fire, &rc, err, n);

	*out = NULL;
	if (!p)
		return rc;
	commit_new_run(k, p);
	return runs_create_finish(p, out, err, n);
}

/* ---- record helpers (callers hold runs_lock) --------------------------------------------------- */

/* Run records the loop changed in this tick (id -> record), written by flush_dirty() in one
 * lazily committed transaction at the end of the tick (db.h: a run's only durable commit is the
 * one before its 201). load_run() sees them first. */
static json_object *dirty;

static json_object *load_run(struct kfpd *k, const char *id)
{
	json_object *r;

	if (dirty && json_object_object_get_ex(dirty, id, &r))
		return json_object_get(r);
	return db_get(k->db, NULL, DB_RUNS, id, &r) ? NULL : r;
}

/* Durably saves R (HTTP threads: cancel, retry). */
static int save_run(struct kfpd *k, json_object *r)
{
	int rc = db_put(k->db, NULL, DB_RUNS, js_str(r, "id", ""), r);
	runs_changed();
	if (rc)
		log_kv("error", "cannot save a run record", "run", js_str(r, "id", ""), NULL);
	return rc;
}

/* Loop thread: queues R for the tick's group commit. Returns 0, -ENOMEM. */
static int save_run_lazy(struct kfpd *k, json_object *r)
{
	if (!dirty && !(dirty = json_object_new_object()))
		return save_run(k, r);
	if (json_object_object_add(dirty, js_str(r, "id", ""), json_object_get(r)))
		return save_run(k, r);
	return 0;
}

/* Loop thread, runs_lock held: writes the queued run records in one transaction. */
static void flush_dirty(struct kfpd *k)
{
	MDB_txn *txn = NULL;
	int rc;

	if (!dirty || !json_object_object_length(dirty))
		return;
	if (!(rc = db_begin(k->db, 1, &txn))) {
		json_object_object_foreach(dirty, id, rec) {
			if ((rc = db_put(k->db, txn, DB_RUNS, id, rec)))
				break;
		}
		rc = rc ? (db_abort(txn), rc) : db_commit_lazy(txn);
	}
	if (rc) {
		log_kv("error", "cannot save the run records (retrying)", NULL);
		return;
	}
	json_object_put(dirty);
	dirty = NULL;
	runs_changed(); /* after the commit: GET /runs/ID caches what the database has */
}

static void set_str(json_object *o, const char *k, const char *v)
{
	if (!strcmp(k, "state"))
		state_count(js_str(o, "state", NULL), v);
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* ---- workers (loop thread) --------------------------------------------------------------------- */

static struct worker *find_worker(const char *id, pid_t pid)
{
	size_t i;
	for (i = 0; i < nworkers; i++)
		if ((id && !strcmp(workers[i].id, id)) || (!id && workers[i].pid == pid))
			return &workers[i];
	return NULL;
}

static struct worker *add_worker(const char *id, pid_t pid, int pidfd)
{
	if (nworkers == capworkers) {
		size_t nc = capworkers ? capworkers * 2 : 8;
		struct worker *n = realloc(workers, nc * sizeof *n);
		if (!n)
			return NULL;
		workers = n, capworkers = nc;
	}
	struct worker *w = &workers[nworkers++];
	memset(w, 0, sizeof *w);
	snprintf(w->id, sizeof w->id, "%s", id);
	w->pid = pid;
	w->pidfd = pidfd;
	return w;
}

static void remove_worker(struct worker *w)
{
	if (w->pidfd >= 0)
		close(w->pidfd);
	*w = workers[--nworkers];
}

/* Makes sure the engine has run ID (creating it from DATA/runs/ID/ir.json and the record), and
 * that it is marked running. Returns 0 or -1 with a message in ERR. */
static int engine_prepare(struct kfpd *k, json_object *rec, char *err, size_t n)
{
	const char *id = js_str(rec, "id", "");
	struct store_run *er = NULL, nr;
	char src[300];
	json_object *params;
	char *ir = NULL;
	int rc;

	pthread_mutex_lock(&estore_lock);
	rc = store_run_get(estore, id, 0, &er);
	if (rc == 0) {
		if (er->status != STORE_RUN_RUNNING &&
		    (rc = store_run_set_status(estore, id, STORE_RUN_RUNNING, NULL, 0)))
			snprintf(err, n, "%s", store_errmsg(estore));
		store_run_free(er);
		pthread_mutex_unlock(&estore_lock);
		return rc ? -1 : 0;
	}
	if (rc != STORE_ENOENT) {
		snprintf(err, n, "%s", store_errmsg(estore));
		pthread_mutex_unlock(&estore_lock);
		return -1;
	}
	json_object *iro;
	if (db_get(k->db, NULL, DB_RUNIR, id, &iro) ||
	    !(ir = strdup(json_object_to_json_string_ext(iro, JSON_C_TO_STRING_PLAIN)))) {
		json_object_put(iro);
		snprintf(err, n, "run %s: its IR is missing from the daemon's database", id);
		pthread_mutex_unlock(&estore_lock);
		return -1;
	}
	json_object_put(iro);
	memset(&nr, 0, sizeof nr);
	snprintf(src, sizeof src, "kfpd:%s/%s@%lld", js_str(rec, "namespace", ""),
		 js_str(rec, "pipeline", ""), (long long)js_int(rec, "version", 0));
	nr.id = (char *)id;
	nr.pipeline = (char *)js_str(rec, "pipeline", "");
	nr.ir_json = ir;
	nr.source = src;
	json_object_object_get_ex(rec, "params", &params);
	nr.params = params;
	nr.status = STORE_RUN_RUNNING;
	nr.created = nr.started = store_now(); /* the worker's "succeeded (Ns)" counts from here */
	nr.executor = (char *)k->executor;
	rc = store_run_create(estore, &nr);
	if (rc)
		snprintf(err, n, "%s", store_errmsg(estore));
	pthread_mutex_unlock(&estore_lock);
	free(ir);
	return rc ? -1 : 0;
}

static int spawn_worker(struct kfpd *k, const char *id, const char *ns, pid_t *pid)
{
	char **env;
	char state[4200], log[4300];
	char *argv[] = {k->kfpc, "run", "--resume", (char *)id, "--state", state,
			"--executor", (char *)k->executor, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	int rc;

	snprintf(state, sizeof state, "%s/state", k->data_dir);
	snprintf(log, sizeof log, "%s/runs/%s", k->data_dir, id);
	if (util_mkdirs(log))
		return errno;
	snprintf(log, sizeof log, "%s/runs/%s/worker.log", k->data_dir, id);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGCHLD);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					      POSIX_SPAWN_SETPGROUP);
	pthread_mutex_lock(&util_env_lock);
	if (!(env = secrets_env(k, ns))) {
		pthread_mutex_unlock(&util_env_lock);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
		return ENOMEM;
	}
	rc = posix_spawnp(pid, k->kfpc, &fa, &at, argv, env);
	pthread_mutex_unlock(&util_env_lock);
	secrets_env_free(env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return rc;
}

/* Marks run ID terminal in the daemon (and, when ENGINE_TOO, in the engine store). */
static void finish_run(struct kfpd *k, json_object *rec, const char *state, const char *reason,
		       int engine_too)
{
	char ts[32];
	const char *id = js_str(rec, "id", "");
	json_object *p;

	if (engine_too) {
		pthread_mutex_lock(&estore_lock);
		if (estore)
			store_run_set_status(estore, id, store_run_status_parse(state), reason,
					     store_now());
		pthread_mutex_unlock(&estore_lock);
	}
	if (!runs_terminal(js_str(rec, "state", "")))
		sched_active_add(js_str(rec, "schedule", NULL), -1);
	set_str(rec, "state", state);
	set_str(rec, "reason", reason);
	set_str(rec, "finished", iso_now(k, ts));
	json_object_object_add(rec, "pid", NULL);
	if ((p = engine_progress(id, 1)))
		json_object_object_add(rec, "progress", p);
	progress_set(id, NULL);
	log_kv("info", "run finished", "run", id, "ns", js_str(rec, "namespace", ""), "state", state,
	       "reason", reason, NULL);
}

/* A worker of run ID ended (EXIT: wait status, -1 unknown). */
static void worker_ended(struct kfpd *k, const char *id, int wstatus)
{
	struct store_run *er = NULL;
	json_object *rec;
	char why[200];
	int st = -1;

	pthread_mutex_lock(&estore_lock);
	if (store_run_get(estore, id, 0, &er) == 0)
		st = (int)er->status;
	pthread_mutex_unlock(&estore_lock);
	pthread_mutex_lock(&runs_lock);
	if (!(rec = load_run(k, id)))
		goto out;
	if (st == STORE_RUN_CANCELLED && json_object_get_boolean(json_object_object_get(rec, "cancel"))) {
		/* the worker saw a SIGINT: say who cancelled (the engine's record too) */
		finish_run(k, rec, "cancelled", js_str(rec, "cancel_reason", "cancelled through the API"),
			   1);
	} else if (st > STORE_RUN_RUNNING) {
		finish_run(k, rec, store_run_status_name((enum store_run_status)st),
			   er->reason, 0);
	} else if (json_object_get_boolean(json_object_object_get(rec, "cancel"))) {
		finish_run(k, rec, "cancelled", js_str(rec, "cancel_reason", "cancelled through the API"),
			   1);
	} else {
		if (wstatus == -1)
			snprintf(why, sizeof why, "worker ended");
		else if (WIFEXITED(wstatus))
			snprintf(why, sizeof why, "worker exited with code %d", WEXITSTATUS(wstatus));
		else
			snprintf(why, sizeof why, "worker killed by signal %d",
				 WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
		if (js_int(rec, "spawns", 0) >= MAX_SPAWNS) {
			char reason[300];
			snprintf(reason, sizeof reason, "%s before the run ended, %d times (see %s/runs/%s/worker.log)",
				 why, MAX_SPAWNS, k->data_dir, id);
			finish_run(k, rec, "failed", reason, 1);
		} else {
			log_kv("warn", "worker ended early; resuming the run", "run", id, "detail", why,
			       NULL);
			set_str(rec, "state", "queued");
			json_object_object_add(rec, "pid", NULL);
			json_object_array_add(queue, json_object_new_string(id));
		}
	}
	save_run_lazy(k, rec);
	json_object_put(rec);
out:
	pthread_mutex_unlock(&runs_lock);
	store_run_free(er);
}

/* Starts run ID if it is still queued. Returns 0 when started or dropped, -1 to retry later. */
static int start_run(struct kfpd *k, const char *id)
{
	json_object *rec;
	char err[300], ts[32];
	pid_t pid;
	int rc;

	pthread_mutex_lock(&runs_lock);
	rec = load_run(k, id);
	if (!rec || strcmp(js_str(rec, "state", ""), "queued")) {
		pthread_mutex_unlock(&runs_lock);
		json_object_put(rec);
		return 0;
	}
	if (engine_prepare(k, rec, err, sizeof err)) {
		finish_run(k, rec, "failed", err, 0);
		save_run_lazy(k, rec);
		pthread_mutex_unlock(&runs_lock);
		json_object_put(rec);
		return 0;
	}
	if ((rc = spawn_worker(k, id, js_str(rec, "namespace", ""), &pid))) {
		snprintf(err, sizeof err, "cannot start %s: %s", k->kfpc, strerror(rc));
		finish_run(k, rec, "failed", err, 1);
		save_run_lazy(k, rec);
		pthread_mutex_unlock(&runs_lock);
		json_object_put(rec);
		return 0;
	}
	set_str(rec, "state", "running");
	if (!js_str(rec, "started", NULL))
		set_str(rec, "started", iso_now(k, ts));
	json_object_object_add(rec, "pid", json_object_new_int(pid));
	json_object_object_add(rec, "spawns", json_object_new_int64(js_int(rec, "spawns", 0) + 1));
	save_run_lazy(k, rec);
	pthread_mutex_unlock(&runs_lock);
	json_object_put(rec);
	if (!add_worker(id, pid, -1)) {
		kill(-pid, SIGKILL); /* no room to track it: the next reap requeues the run */
		return -1;
	}
	log_kv("info", "run started", "run", id, NULL);
	return 0;
}

int runs_tick(struct kfpd *k)
{
	static int64_t last_prog;
	json_object *starts = NULL, *cancels = NULL;
	int64_t now = util_now_ms();
	size_t i;
	pid_t pid;
	int ws;

	if (!queue)
		queue = json_object_new_array();
	pthread_mutex_lock(&runs_lock);
	starts = pending_start, pending_start = NULL;
	cancels = pending_cancel, pending_cancel = NULL;
	pthread_mutex_unlock(&runs_lock);
	for (i = 0; starts && i < json_object_array_length(starts); i++)
		json_object_array_add(queue, json_object_get(json_object_array_get_idx(starts, i)));
	for (i = 0; cancels && i < json_object_array_length(cancels); i++) {
		struct worker *w =
			find_worker(json_object_get_string(json_object_array_get_idx(cancels, i)), 0);
		if (w && !w->cancel_at) {
			kill(w->pid, SIGINT); /* `kfpc run` cancels: SPEC §6.10 */
			w->cancel_at = time(NULL);
		}
	}
	json_object_put(starts);
	json_object_put(cancels);

	/* reap our children, then adopted workers */
	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		struct worker *w = find_worker(NULL, pid);
		if (w) {
			char id[sizeof w->id];
			memcpy(id, w->id, sizeof id);
			remove_worker(w);
			worker_ended(k, id, ws);
		}
	}
	for (i = 0; i < nworkers;) {
		struct worker *w = &workers[i];
		if (w->pidfd >= 0) {
			struct pollfd p = {w->pidfd, POLLIN, 0};
			if (poll(&p, 1, 0) == 1) {
				char id[sizeof w->id];
				memcpy(id, w->id, sizeof id);
				remove_worker(w);
				worker_ended(k, id, -1);
				continue;
			}
		}
		if (w->cancel_at && time(NULL) - w->cancel_at > CANCEL_GRACE && !w->cancel_hard) {
			kill(w->pid, SIGINT); /* a second signal: the engine cancels at once */
			w->cancel_hard = 1;
		}
		i++;
	}

	/* start queued runs */
	while ((int)nworkers < k->max_workers && json_object_array_length(queue)) {
		json_object *id = json_object_get(json_object_array_get_idx(queue, 0));
		json_object_array_del_idx(queue, 0, 1);
		if (start_run(k, json_object_get_string(id))) {
			json_object_array_add(queue, id);
			break;
		}
		json_object_put(id);
	}

	if (now - last_prog >= 500) {
		last_prog = now;
		for (i = 0; i < nworkers; i++)
			progress_set(workers[i].id, engine_progress(workers[i].id, 0));
	}
	pthread_mutex_lock(&runs_lock);
	flush_dirty(k);
	pthread_mutex_unlock(&runs_lock);
	metrics_queue_set((long)json_object_array_length(queue));
	return (int)(nworkers + json_object_array_length(queue));
}

/* ---- recovery and shutdown --------------------------------------------------------------------- */

struct recover_ctx {
	struct kfpd *k;
	json_object *ids;
};

static int collect_active(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct recover_ctx *c = ctx;
	(void)val, (void)vlen;
	if (!memmem(val, vlen, "\"state\":\"succeeded\"", 19) &&
	    !memmem(val, vlen, "\"state\":\"failed\"", 16) &&
	    !memmem(val, vlen, "\"state\":\"cancelled\"", 19))
		json_object_array_add(c->ids, json_object_new_string_len(key, (int)klen));
	return 0;
}

/* Returns a pidfd for PID if it is alive and is the worker of run ID, else -1. */
static int adopt(pid_t pid, const char *id)
{
	char path[64], *cmd;
	size_t len, i;
	int fd, ok = 0;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	if (!(cmd = util_read_file(path, &len)))
		return -1;
	for (i = 0; i + 1 < len; i++)
		if (cmd[i] == 0 && !strcmp(cmd + i + 1, "--resume") && i + 10 < len &&
		    !strcmp(cmd + i + 10, id))
			ok = 1;
	free(cmd);
	if (!ok)
		return -1;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

struct seq_ctx {
	json_object *has;  /* ids that have a "NS/#SEQ" key */
	json_object *ids;  /* ids found by "NS/ID" keys */
};

static int seq_scan(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct seq_ctx *c = ctx;
	const char *slash = memchr(key, '/', klen);
	json_object *o;

	if (!slash || slash + 1 >= key + klen)
		return 0;
	if (slash[1] == '#') {
		long long seq = strtoll(slash + 2, NULL, 10);
		if (seq > seq_last)
			seq_last = seq;
		json_tokener *t = json_tokener_new();
		if (t && (o = json_tokener_parse_ex(t, val, (int)vlen))) {
			json_object_object_add(c->has, js_str(o, "id", ""), NULL);
			json_object_put(o);
		}
		json_tokener_free(t);
	} else {
		json_object_array_add(c->ids, json_object_new_string_len(slash + 1,
									 (int)(key + klen - slash - 1)));
	}
	return 0;
}

/* Gives every run without a creation-order key (recorded by an older kfpd) one, in id order,
 * and raises seq_last past every stored sequence. */
static void seq_migrate(struct kfpd *k)
{
	struct seq_ctx c = {json_object_new_object(), json_object_new_array()};
	char key[300];
	MDB_txn *txn = NULL;
	size_t i;

	db_scan(k->db, NULL, DB_NSRUNS, "", NULL, 0, seq_scan, &c);
	for (i = 0; i < json_object_array_length(c.ids); i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(c.ids, i));
		json_object *rec, *o;
		if (json_object_object_get_ex(c.has, id, NULL) ||
		    db_get(k->db, txn, DB_RUNS, id, &rec))
			continue;
		if (!txn && db_begin(k->db, 1, &txn)) {
			json_object_put(rec);
			break;
		}
		json_object_object_add(rec, "seq", json_object_new_int64(next_seq()));
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(id));
		seq_key(key, sizeof key, js_str(rec, "namespace", ""), js_int(rec, "seq", 0));
		db_put(k->db, txn, DB_NSRUNS, key, o);
		db_put(k->db, txn, DB_RUNS, id, rec);
		json_object_put(o);
		json_object_put(rec);
	}
	if (txn && db_commit(txn))
		log_kv("error", "cannot index the runs by creation order", NULL);
	json_object_put(c.has);
	json_object_put(c.ids);
}

int runs_recover(struct kfpd *k)
{
	struct recover_ctx c = {k, json_object_new_array()};
	size_t i;
	int nq = 0, na = 0;

	if (!queue)
		queue = json_object_new_array();
	if (estore_open(k))
		return -1;
	seq_migrate(k);
	long cnt[5] = {0};
	db_scan(k->db, NULL, DB_RUNS, "", NULL, 0, count_state, cnt);
	for (i = 0; i < 5; i++)
		__atomic_store_n(&state_n[i], cnt[i], __ATOMIC_RELAXED);
	db_scan(k->db, NULL, DB_RUNS, "", NULL, 0, collect_active, &c);
	for (i = 0; i < json_object_array_length(c.ids); i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(c.ids, i));
		json_object *rec;
		pthread_mutex_lock(&runs_lock);
		if ((rec = load_run(k, id))) {
			pid_t pid = (pid_t)js_int(rec, "pid", 0);
			sched_active_add(js_str(rec, "schedule", NULL), 1);
			int fd = !strcmp(js_str(rec, "state", ""), "running") ? adopt(pid, id) : -1;
			if (fd >= 0 && add_worker(id, pid, fd)) {
				na++;
			} else {
				if (fd >= 0)
					close(fd);
				set_str(rec, "state", "queued");
				json_object_object_add(rec, "pid", NULL);
				save_run(k, rec);
				json_object_array_add(queue, json_object_new_string(id));
				nq++;
			}
			json_object_put(rec);
		}
		pthread_mutex_unlock(&runs_lock);
	}
	json_object_put(c.ids);
	char a[16], q[16];
	snprintf(a, sizeof a, "%d", na);
	snprintf(q, sizeof q, "%d", nq);
	log_kv("info", "recovery done", "adopted_workers", a, "requeued_runs", q, NULL);
	return 0;
}

void runs_shutdown(struct kfpd *k)
{
	size_t i;

	/* SIGTERM/SIGINT to `kfpc run` cancels the run, so the workers are left alone: they go on
	 * in their own process groups and the next kfpd adopts them (or, if they ended meanwhile,
	 * records how the run ended). With --stop-workers they are killed instead (SIGKILL to each
	 * worker's group; their steps are reattached or re-run when the run resumes). */
	for (i = 0; i < nworkers; i++) {
		if (k->stop_workers) {
			kill(-workers[i].pid, SIGKILL);
			if (workers[i].pidfd < 0)
				waitpid(workers[i].pid, NULL, 0);
		}
		if (workers[i].pidfd >= 0)
			close(workers[i].pidfd);
	}
	if (nworkers) {
		char n[24];
		snprintf(n, sizeof n, "%zu", nworkers);
		log_kv("info", k->stop_workers ? "workers killed; their runs resume at the next start"
					       : "workers left running; the next start adopts them",
		       "workers", n, NULL);
	}
	pthread_mutex_lock(&runs_lock);
	flush_dirty(k);
	json_object_put(dirty);
	dirty = NULL;
	pthread_mutex_unlock(&runs_lock);
	nworkers = 0;
	free(workers);
	workers = NULL;
	json_object_put(queue);
	queue = NULL;
	json_object_put(pending_start);
	json_object_put(pending_cancel);
	pending_start = pending_cancel = NULL;
	pthread_mutex_lock(&runs_lock);
	json_object_put(sched_active);
	sched_active = NULL;
	pthread_mutex_unlock(&runs_lock);
	pthread_mutex_lock(&prog_lock);
	json_object_put(prog_cache);
	prog_cache = NULL;
	pthread_mutex_unlock(&prog_lock);
	pthread_mutex_lock(&estore_lock);
	store_close(estore);
	estore = NULL;
	pthread_mutex_unlock(&estore_lock);
}

/* Resets the failed, skipped and cancelled step instances of engine run ID, and its exit handlers
 * (finally steps, whatever their state), to pending (attempts kept), so that the resumed run executes them again and adopts the finished ones. Returns the
 * number reset, or negative. */
static int engine_reset_failed(const char *id)
{
	struct store_step **steps = NULL;
	struct store_run *run = NULL;
	json_object *ir = NULL, *fin, *fins = json_object_new_object();
	size_t n = 0, i;
	int rc = 0, nreset = 0;

	pthread_mutex_lock(&estore_lock);
	if (!estore) {
		pthread_mutex_unlock(&estore_lock);
		json_object_put(fins);
		return 0;
	}
	if (store_step_list(estore, id, &steps, &n)) {
		pthread_mutex_unlock(&estore_lock);
		json_object_put(fins);
		return -1;
	}
	/* the exit handlers (IR "finally") run again whatever they ended as (SPEC §6.9): they see
	 * the run's status at the end of the retried run */
	if (store_run_get(estore, id, 1, &run) == 0 && run->ir_json &&
	    (ir = json_tokener_parse(run->ir_json)) &&
	    json_object_object_get_ex(ir, "finally", &fin) &&
	    json_object_is_type(fin, json_type_array))
		for (i = 0; i < json_object_array_length(fin); i++)
			json_object_object_add(fins,
					       js_str(json_object_array_get_idx(fin, i), "id", ""),
					       NULL);
	store_run_free(run);
	json_object_put(ir);
	store_batch_begin(estore);
	for (i = 0; i < n; i++) {
		struct store_step *s = steps[i];
		const char *node = s->node ? s->node : s->id;
		if (s->state != STORE_STEP_FAILED && s->state != STORE_STEP_SKIPPED &&
		    s->state != STORE_STEP_CANCELLED &&
		    !json_object_object_get_ex(fins, node, NULL))
			continue;
		s->state = STORE_STEP_PENDING;
		free(s->reason);
		s->reason = NULL;
		s->started = 0; /* its duration: from its next attempt, not across the wait */
		s->finished = 0;
		nreset++;
		if ((rc = store_step_put(estore, s)))
			break;
	}
	if (store_batch_end(estore) && !rc)
		rc = -1;
	pthread_mutex_unlock(&estore_lock);
	store_step_list_free(steps, n);
	json_object_put(fins);
	return rc ? -1 : nreset;
}

/* ---- requests from HTTP threads ---------------------------------------------------------------- */

int runs_active_for_schedule(struct kfpd *k, const char *sched)
{
	int n;

	(void)k;
	pthread_mutex_lock(&runs_lock);
	n = (int)js_int(sched_active, sched, 0);
	pthread_mutex_unlock(&runs_lock);
	return n;
}

int runs_cancel(struct kfpd *k, const char *id, const char *by, json_object **out)
{
	json_object *rec;
	char why[200];
	int rc = 0;

	snprintf(why, sizeof why, "cancelled through the API by %s", by);
	*out = NULL;
	pthread_mutex_lock(&runs_lock);
	if (!(rec = load_run(k, id))) {
		pthread_mutex_unlock(&runs_lock);
		return 404;
	}
	if (runs_terminal(js_str(rec, "state", ""))) {
		rc = 409;
	} else if (!strcmp(js_str(rec, "state", ""), "queued")) {
		json_object_object_add(rec, "cancel", json_object_new_boolean(1));
		set_str(rec, "cancel_reason", why);
		snprintf(why + strlen(why), sizeof why - strlen(why), " before it started");
		finish_run(k, rec, "cancelled", why, estore != NULL);
		save_run(k, rec);
	} else {
		json_object_object_add(rec, "cancel", json_object_new_boolean(1));
		set_str(rec, "cancel_reason", why);
		save_run(k, rec);
		if (!pending_cancel)
			pending_cancel = json_object_new_array();
		json_object_array_add(pending_cancel, json_object_new_string(id));
	}
	pthread_mutex_unlock(&runs_lock);
	util_wake(k);
	*out = rec;
	return rc;
}

int runs_retry(struct kfpd *k, const char *id, json_object **out)
{
	json_object *rec;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&runs_lock);
	if (!(rec = load_run(k, id))) {
		pthread_mutex_unlock(&runs_lock);
		return 404;
	}
	if (strcmp(js_str(rec, "state", ""), "failed") &&
	    strcmp(js_str(rec, "state", ""), "cancelled")) {
		rc = 409;
	} else if (engine_reset_failed(id) < 0) {
		rc = 500;
	} else {
		set_str(rec, "state", "queued");
		set_str(rec, "reason", NULL);
		set_str(rec, "finished", NULL);
		json_object_object_add(rec, "cancel", json_object_new_boolean(0));
		json_object_object_del(rec, "cancel_reason");
		json_object_object_add(rec, "spawns", json_object_new_int(0));
		json_object_object_add(rec, "retries",
				       json_object_new_int64(js_int(rec, "retries", 0) + 1));
		json_object_object_del(rec, "progress");
		if (save_run(k, rec)) {
			rc = 500;
		} else {
			if (!pending_start)
				pending_start = json_object_new_array();
			json_object_array_add(pending_start, json_object_new_string(id));
			sched_active_add(js_str(rec, "schedule", NULL), 1);
		}
	}
	pthread_mutex_unlock(&runs_lock);
	util_wake(k);
	*out = rec;
	return rc;
}

int runs_delete(struct kfpd *k, const char *ns, const char *id)
{
	json_object *rec;
	char key[300], dir[4200], path[4400];
	MDB_txn *txn;
	int rc = 0;

	pthread_mutex_lock(&runs_lock);
	if (!(rec = load_run(k, id))) {
		pthread_mutex_unlock(&runs_lock);
		return 404;
	}
	if (!runs_terminal(js_str(rec, "state", ""))) {
		rc = 409;
	} else if (db_begin(k->db, 1, &txn) == 0) {
		snprintf(key, sizeof key, "%s/%s", ns, id);
		db_del(k->db, txn, DB_RUNS, id);
		db_del(k->db, txn, DB_NSRUNS, key);
		seq_key(key, sizeof key, ns, js_int(rec, "seq", 0));
		db_del(k->db, txn, DB_NSRUNS, key);
		db_del(k->db, txn, DB_RUNIR, id);
		rc = db_commit(txn) ? 500 : 0;
		if (!rc && dirty)
			json_object_object_del(dirty, id);
		if (!rc)
			state_count(js_str(rec, "state", NULL), NULL);
		runs_changed();
	} else {
		rc = 500;
	}
	pthread_mutex_unlock(&runs_lock);
	json_object_put(rec);
	if (!rc) {
		snprintf(dir, sizeof dir, "%s/runs/%s", k->data_dir, id);
		snprintf(path, sizeof path, "%s/worker.log", dir);
		unlink(path);
		rmdir(dir);
	}
	return rc;
}

struct store *runs_estore_lock(void)
{
	pthread_mutex_lock(&estore_lock);
	if (!estore) {
		pthread_mutex_unlock(&estore_lock);
		return NULL;
	}
	return estore;
}

void runs_estore_unlock(void)
{
	pthread_mutex_unlock(&estore_lock);
}

int runs_active(struct kfpd *k, const char *id)
{
	json_object *rec;
	int a;

	if (db_get(k->db, NULL, DB_RUNS, id, &rec))
		return 0;
	a = !runs_terminal(js_str(rec, "state", ""));
	json_object_put(rec);
	return a;
}

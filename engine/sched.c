/* sched.c - the scheduler (see scheduler.h for the model).
 *
 * Run-time structure
 * ------------------
 * A *scope* is one instance of an IR body: the entry pipeline's body, one loop iteration, one
 * sub-pipeline call, or a finally list. It holds one *instance* per node of its body (an array,
 * allocated once). Scopes form a tree through `parent`; values are resolved by walking up it
 * (loop variables: the iteration scope of that loop; parameters: the nearest scope with
 * `params`; outputs: the nearest scope whose body holds the node).
 *
 * Instance life: WAIT (dependencies not terminal) -> READY (in the ready queue) -> decided:
 * skipped / cancelled / cached / failed at once, or RUNNABLE (a step waiting for a job slot),
 * RUNNING (an attempt is out), RETRY (backoff timer), or ACTIVE (a loop or sub-pipeline whose
 * scopes run) -> DONE. On DONE the users in the same scope have their counters decremented;
 * when every instance of a scope is DONE the scope is complete and tells its owner.
 *
 * Durability: every loop round is one store batch (group commit), committed before anything
 * of the round is printed: nothing is reported (a step finished, an attempt started) before
 * the record that says so is committed. An attempt is recorded as running (without its
 * handle) in the round that prepares it; its exec handle is written with the attempt's next
 * record, which for a short step is the one that ends it, or at the latest HANDLE_DELAY after
 * the spawn, so a step costs one commit, not two. The attempt is reported as started only
 * once its handle is committed (exec.h).
 * Spawn and commit: with an executor that can sweep (ops->sweep: local), the round's attempts
 * are spawned first and the round is committed right after, so that a chain of steps does not
 * wait for a commit between one step's end and the next one's start. A crash in between
 * leaves processes the store does not know (or knows as not started); resume sweeps every
 * process of the run before it starts anything, so they never race the attempts that replace
 * them, and a step whose end was not committed runs again. Executors without a sweep
 * (docker) get each round committed before its spawns. Resume also finds a recorded
 * attempt's processes by their KFPC_RUN_ID/KFPC_STEP environment (docker: by labels), so a
 * handle lost with a crash is harmless. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <json-c/linkhash.h>

#include "cache.h"
#include "scheduler.h"
#include "subst.h"
#include "value.h"

#define VALUE_OUTPUT_MAX (1 << 20) /* 1 MiB, SPEC §4.5 */
#define KILL_GRACE 5.0              /* SIGTERM -> SIGKILL, SPEC §6.6 */
#define MAX_ITEMS 10000000          /* loop items */
#define LOOP_WINDOW 256             /* active iterations of a loop without `parallel N` */
#define HANDLE_DELAY 0.1            /* s: longest wait before a lone handle record commits */
#define COMMIT_WINDOW 0.01          /* s: with early spawns, how long a round's records may wait
				     * for the next rounds' to share a commit (long enough that
				     * the commit mostly follows a spawn rather than a timer,
				     * which could hold up the reaping of a step that ends) */

enum phase {
	PH_WAIT,
	PH_READY,
	PH_RUNNABLE,
	PH_RUNNING,
	PH_RETRY,
	PH_ACTIVE,
	PH_DONE,
};

struct attempt_rt {
	struct exec_job *job;
	char *work, *outdir, *cwd_host, *out_path, *err_path;
	double t0, deadline, kill_at; /* monotonic */
	int user_cancel, timed_out;
	size_t ridx;                  /* index in S->running */
	struct exec_resources res;
	/* the spec, alive from prepare until the spawn */
	struct exec_spec spec;
	char **argv;
	size_t argc;
	struct exec_env *env;
	size_t nenv;
	struct exec_input *inputs;
	size_t ninputs;
	struct exec_volume *vols;
	struct exec_kv *labels;
	char *workdir;
};

struct scope;

struct inst {
	const struct ir_node *node;
	struct scope *scope;
	char *name;
	unsigned char state;   /* enum store_step_state */
	unsigned char phase;   /* enum phase */
	unsigned char counted; /* a step: counted in S->counts */
	unsigned char from_cache;
	unsigned char hpending; /* spawned; handle not recorded, 's' not reported yet */
	unsigned ndeps_left;
	int attempt, nfail;
	char *reason;
	json_object *outs;     /* name -> value or artifact value */
	json_object *inputs;   /* name -> value or artifact value (steps) */
	struct store_attempt *atts;
	size_t natts;
	char *cache_key, *cached_from;
	double started, finished; /* wall clock */
	double retry_at;          /* monotonic */
	struct inst *qnext;
	struct attempt_rt *rt;
	char *prewarm;            /* the next attempt's work dir, made ahead (see prewarm_users) */
	/* loop */
	json_object *items;
	struct scope **iters;
	size_t niters, nstarted, ndone;
	/* sub-pipeline */
	struct scope *sub, *fin;
};

struct scope {
	struct scope *parent;
	const struct ir_body *body;
	struct inst *owner;
	struct inst *insts;
	json_object *item;
	json_object *params;
	char *suffix;
	size_t ndone, nfailed, ncancelled;
	int is_fin;
	const char *fin_status;
};

struct report {
	struct inst *i;
	char kind;   /* 's' started, 'd' done, 'r' retry */
	int attempt; /* I->attempt when reported */
};

struct sched {
	const struct sched_config *c;
	struct scope *root, *rootfin;
	struct scope **scopes;
	size_t nscopes, capscopes;
	struct inst *rq_head, *rq_tail; /* ready */
	struct inst *xq_head, *xq_tail; /* runnable */
	struct inst **running;
	size_t nrunning, caprunning;
	struct inst **retrying;
	size_t nretrying, capretrying;
	struct inst **starting;
	size_t nstarting, capstarting;
	struct inst **spawned;    /* spawned this round: their users' work dirs are made ahead */
	size_t nspawned, capspawned;
	struct inst **settled;    /* steps finished this round: compacted after the commit */
	size_t nsettled, capsettled;
	struct inst **hq;         /* spawned attempts whose handle is still to be recorded */
	size_t nhq, caphq;
	double hq_since;          /* monotonic time of the oldest entry of hq */
	struct report *reports;
	size_t nreports, capreports;
	size_t ncommitted;        /* reports[0..ncommitted) are committed: publish prints them */
	size_t nsettled_committed; /* likewise settled[0..) */
	size_t limit;
	struct exec_resources cap, used;
	size_t counts[PROGRESS_NSTATES];
	int cancel;          /* 0, 1 graceful, 2 at once */
	int timed_out;       /* the pipeline timeout fired */
	const char *cancel_why;
	double run_deadline; /* monotonic, 0 none */
	int sfd;
	sigset_t oldmask;
	int store_failed;
	char store_msg[600];
	int done;
	enum store_run_status status;
	char reason[512];
	char *first_failed;
	char *first_failed_why; /* " (REASON) at FILE:LINE:COL" of first_failed, or NULL */
	struct cleaner *cleaner;  /* removes finished attempts' work dirs off the hot path */
	int cleaner_tried;        /* cleaner_start was called (it is started when first needed) */
	char **spare;             /* empty work dirs of finished attempts, reused by rename */
	size_t nspare, capspare;
	char **useddirs;          /* work dirs of attempts that ended, looked at after the spawns */
	size_t nuseddirs, capuseddirs;
	struct lh_table *resume; /* name -> struct store_step * */
	struct store_step **rsteps;
	size_t nrsteps;
	int batch_open;
	double committed_at;      /* monotonic time of the last commit (early spawns) */
};

/* ---- small helpers --------------------------------------------------------------------- */

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t nc;
	void *p;

	if (n < *cap)
		return 0;
	nc = *cap ? 2 * *cap : 16;
	p = realloc(*arr, nc * size);
	if (!p)
		return -1;
	*arr = p;
	*cap = nc;
	return 0;
}

static void store_fail(struct sched *S, const char *what)
{
	if (S->store_failed)
		return;
	S->store_failed = 1;
	snprintf(S->store_msg, sizeof S->store_msg, "state store: %s%s%s", what,
		 *store_errmsg(S->c->st) ? ": " : "", store_errmsg(S->c->st));
}

static void oom(struct sched *S)
{
	if (!S->store_failed) {
		S->store_failed = 1;
		snprintf(S->store_msg, sizeof S->store_msg, "out of memory");
	}
}

static void report(struct sched *S, struct inst *I, char kind)
{
	if (!S->c->prog)
		return;
	if (grow((void **)&S->reports, &S->capreports, S->nreports, sizeof *S->reports) < 0)
		return;
	S->reports[S->nreports].i = I;
	S->reports[S->nreports].kind = kind;
	S->reports[S->nreports].attempt = I->attempt;
	S->nreports++;
}

/* " (REASON) at FILE:LINE:COL" for a failed instance, for the run's reason; caller frees. */
static char *fail_detail(const struct inst *I)
{
	char loc[512], *out = NULL;

	ir_loc_str(&I->node->loc, loc, sizeof loc);
	if (I->reason && I->reason[0]) {
		if (asprintf(&out, " (%.400s) at %s", I->reason, loc) < 0)
			out = NULL;
	} else if (asprintf(&out, " at %s", loc) < 0) {
		out = NULL;
	}
	return out;
}

static void set_reason(struct inst *I, char *r)
{
	free(I->reason);
	I->reason = r;
}

static void explain(struct sched *S, struct inst *I, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void explain(struct sched *S, struct inst *I, const char *fmt, ...)
{
	va_list ap;

	if (!S->c->explain)
		return;
	fprintf(S->c->explain, "explain: %s: ", I->name);
	va_start(ap, fmt);
	vfprintf(S->c->explain, fmt, ap);
	va_end(ap);
	fputc('\n', S->c->explain);
}

static void set_state(struct sched *S, struct inst *I, int state)
{
	if (I->counted) {
		S->counts[I->state]--;
		S->counts[state]++;
	}
	I->state = (unsigned char)state;
}

/* ---- recording ------------------------------------------------------------------------- */

/* Write instance I's whole record (in the open batch). */
static void rec(struct sched *S, struct inst *I)
{
	struct store_step s = {0};
	json_object *outs = NULL, *ins = NULL;
	struct store_artref *oa = NULL, *ia = NULL;
	size_t noa = 0, nia = 0, i;

	if (S->store_failed)
		return;
	if (I->hpending) {
		/* this record carries the handle: the start is reported after its commit */
		I->hpending = 0;
		report(S, I, 's');
	}
	s.run = (char *)S->c->run_id;
	s.id = I->name;
	s.node = (char *)I->node->id;
	s.state = I->state;
	s.reason = I->reason;
	s.started = I->started;
	s.finished = I->finished;
	s.attempts = I->atts;
	s.nattempts = I->natts;
	s.cache_key = I->cache_key;
	s.from_cache = I->from_cache;
	s.cached_from = I->cached_from;
	/* values and artifacts apart */
	if (I->inputs) {
		size_t capia = 0;
		ins = json_object_new_object();
		for (i = 0; ins && i < I->node->ninputs; i++) {
			const struct ir_io *io = &I->node->inputs[i];
			json_object *val, *e;
			size_t n, k;
			if (!json_object_object_get_ex(I->inputs, io->name, &val))
				continue;
			if (!io->artifact) {
				json_object_object_add(ins, io->name, json_object_get(val));
				continue;
			}
			n = value_artifact_digest(val, NULL) ? 1
			    : json_object_is_type(val, json_type_array) ? json_object_array_length(val)
									: 0;
			for (k = 0; k < n; k++) {
				const char *dd;
				e = value_artifact_digest(val, NULL) ? val : json_object_array_get_idx(val, k);
				if (!(dd = value_artifact_digest(e, NULL)))
					continue;
				if (nia == capia) {
					size_t nc = capia ? 2 * capia : 8;
					struct store_artref *na = realloc(ia, nc * sizeof *na);
					if (!na)
						break;
					ia = na;
					capia = nc;
				}
				ia[nia].name = (char *)io->name;
				ia[nia].digest = (char *)dd;
				nia++;
			}
		}
		s.inputs = ins;
		s.in_arts = ia;
		s.nin_arts = nia;
	}
	if (I->outs && I->node->kind != IR_LOOP) {
		outs = json_object_new_object();
		oa = calloc(I->node->noutputs ? I->node->noutputs : 1, sizeof *oa);
		for (i = 0; i < I->node->noutputs; i++) {
			const struct ir_io *io = &I->node->outputs[i];
			json_object *v;
			if (!json_object_object_get_ex(I->outs, io->name, &v))
				continue;
			if (io->artifact) {
				const char *d = value_artifact_digest(v, NULL);
				if (d && oa) {
					oa[noa].name = (char *)io->name;
					oa[noa].digest = (char *)d;
					noa++;
				}
			} else if (outs) {
				json_object_object_add(outs, io->name, json_object_get(v));
			}
		}
		s.outputs = outs;
		s.out_arts = oa;
		s.nout_arts = noa;
	}
	if (store_step_put(S->c->st, &s) < 0)
		store_fail(S, "recording a step");
	json_object_put(ins);
	json_object_put(outs);
	free(ia);
	free(oa);
}

static void batch_begin(struct sched *S)
{
	if (!S->batch_open) {
		store_batch_begin(S->c->st);
		S->batch_open = 1;
	}
}

static void attempts_free(struct store_attempt *a, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		free(a[k].reason);
		free(a[k].stdout_path);
		free(a[k].stderr_path);
		free(a[k].executor);
		free(a[k].handle);
	}
	free(a);
}

/* Step I finished (not failed), and its record is committed and reported: drop what nothing
 * reads any more (its inputs, attempts and cache key are in the store; values flow on through
 * its outputs only), so that a run keeps little memory per finished step. */
static void compact(struct inst *I)
{
	json_object_put(I->inputs);
	I->inputs = NULL;
	attempts_free(I->atts, I->natts);
	I->atts = NULL;
	I->natts = 0;
	free(I->cache_key);
	I->cache_key = NULL;
	free(I->cached_from);
	I->cached_from = NULL;
	if (!I->node->noutputs) {
		json_object_put(I->outs);
		I->outs = NULL;
	}
}

/* Commit the round's batch; what it recorded is printed by publish (after the spawns, so that
 * printing is off the path from one step's end to the next step's start). */
static void batch_commit(struct sched *S)
{
	if (S->batch_open) {
		S->batch_open = 0;
		if (store_batch_end(S->c->st) < 0)
			store_fail(S, "committing state");
	}
	if (S->store_failed) {
		S->nreports = S->ncommitted = 0;
		S->nsettled = S->nsettled_committed = 0;
		return;
	}
	S->ncommitted = S->nreports;
	S->nsettled_committed = S->nsettled;
}

/* Print the committed reports and compact the committed settled steps; what was recorded
 * since the commit waits for the next one. */
static void publish(struct sched *S)
{
	size_t k, printed = S->ncommitted;

	for (k = 0; k < S->ncommitted; k++) {
		struct inst *I = S->reports[k].i;
		char loc[512];
		if (S->reports[k].kind == 's') {
			progress_started(S->c->prog, I->name, S->reports[k].attempt);
		} else if (S->reports[k].kind == 'r') {
			progress_waiting(S->c->prog, I->name);
			progress_message(S->c->prog, "%s attempt %d failed (%s), retrying", I->name,
					 S->reports[k].attempt,
					 I->natts >= (size_t)S->reports[k].attempt &&
						 I->atts[S->reports[k].attempt - 1].reason
					 ? I->atts[S->reports[k].attempt - 1].reason : "?");
		} else {
			const char *st = store_step_state_name(I->state);
			const char *logp = NULL;
			double secs = -1;
			if (I->natts && I->state == STORE_STEP_FAILED)
				logp = I->atts[I->natts - 1].stderr_path;
			if (I->node->kind == IR_STEP && I->natts && I->state != STORE_STEP_SKIPPED &&
			    I->state != STORE_STEP_CACHED && I->finished > 0 && I->started > 0)
				secs = I->finished - I->started;
			ir_loc_str(&I->node->loc, loc, sizeof loc);
			progress_done(S->c->prog, I->name, st, secs, I->reason, loc, logp);
		}
	}
	if (S->ncommitted) {
		memmove(S->reports, S->reports + S->ncommitted,
			(S->nreports - S->ncommitted) * sizeof *S->reports);
		S->nreports -= S->ncommitted;
		S->ncommitted = 0;
	}
	for (k = 0; k < S->nsettled_committed; k++)
		compact(S->settled[k]);
	if (S->nsettled_committed) {
		memmove(S->settled, S->settled + S->nsettled_committed,
			(S->nsettled - S->nsettled_committed) * sizeof *S->settled);
		S->nsettled -= S->nsettled_committed;
		S->nsettled_committed = 0;
	}
	progress_counts(S->c->prog, S->counts);
	if (printed)
		progress_flush(S->c->prog);
}

/* ---- scopes and instances -------------------------------------------------------------- */

static void inst_done(struct sched *S, struct inst *I, int state, char *reason);
static void scope_complete(struct sched *S, struct scope *sc);
static void recycle_later(struct sched *S, const char *path);

static void enqueue_ready(struct sched *S, struct inst *I)
{
	I->phase = PH_READY;
	I->qnext = NULL;
	if (S->rq_tail)
		S->rq_tail->qnext = I;
	else
		S->rq_head = I;
	S->rq_tail = I;
}

static void enqueue_runnable(struct sched *S, struct inst *I)
{
	I->phase = PH_RUNNABLE;
	I->qnext = NULL;
	if (S->xq_tail)
		S->xq_tail->qnext = I;
	else
		S->xq_head = I;
	S->xq_tail = I;
}

static struct scope *scope_new(struct sched *S, struct scope *parent, const struct ir_body *body,
			       struct inst *owner, char *suffix, json_object *params,
			       json_object *item, int is_fin)
{
	struct scope *sc = calloc(1, sizeof *sc);
	size_t i, idlen;

	if (!sc || !suffix ||
	    grow((void **)&S->scopes, &S->capscopes, S->nscopes, sizeof *S->scopes) < 0) {
		free(sc);
		free(suffix);
		json_object_put(params);
		json_object_put(item);
		oom(S);
		return NULL;
	}
	S->scopes[S->nscopes++] = sc;
	sc->parent = parent;
	sc->body = body;
	sc->owner = owner;
	sc->suffix = suffix;
	sc->params = params;
	sc->item = item;
	sc->is_fin = is_fin;
	sc->insts = calloc(body->n ? body->n : 1, sizeof *sc->insts);
	if (!sc->insts) {
		oom(S);
		return sc;
	}
	for (i = 0; i < body->n; i++) {
		struct inst *I = &sc->insts[i];
		const struct ir_node *n = body->nodes[i];
		I->node = n;
		I->scope = sc;
		idlen = strlen(n->id);
		I->name = malloc(idlen + strlen(suffix) + 1);
		if (!I->name) {
			oom(S);
			return sc;
		}
		memcpy(I->name, n->id, idlen);
		strcpy(I->name + idlen, suffix);
		I->state = STORE_STEP_PENDING;
		I->phase = PH_WAIT;
		I->ndeps_left = (unsigned)n->ndeps;
		if (n->kind == IR_STEP) {
			I->counted = 1;
			S->counts[STORE_STEP_PENDING]++;
		}
	}
	for (i = 0; i < body->n; i++)
		if (!sc->insts[i].ndeps_left)
			enqueue_ready(S, &sc->insts[i]);
	return sc;
}

static void rt_free(struct attempt_rt *rt);

static void scope_free(struct scope *sc)
{
	size_t i;

	if (!sc)
		return;
	for (i = 0; sc->insts && i < sc->body->n; i++) {
		struct inst *I = &sc->insts[i];
		free(I->name);
		free(I->reason);
		json_object_put(I->outs);
		json_object_put(I->inputs);
		attempts_free(I->atts, I->natts);
		free(I->cache_key);
		free(I->cached_from);
		json_object_put(I->items);
		free(I->iters);
		rt_free(I->rt); /* jobs still out (store failure) stay the executor's */
		free(I->prewarm);
	}
	free(sc->insts);
	free(sc->suffix);
	json_object_put(sc->params);
	json_object_put(sc->item);
	free(sc);
}

/* ---- value evaluation ------------------------------------------------------------------ */

enum { EV_OK = 0, EV_ABSENT = 1, EV_ERROR = 2 };

static const struct ir_node *ancestor_in(const struct ir_node *n, const struct ir_body *b)
{
	while (n && n->in != b)
		n = n->in->owner;
	return n;
}

static int done_ok(const struct inst *I)
{
	return I->phase == PH_DONE &&
	       (I->state == STORE_STEP_SUCCEEDED || I->state == STORE_STEP_CACHED);
}

static void collect_from(struct scope *s, const struct ir_node *loop, const struct ir_node *t,
			 const char *name, json_object *arr)
{
	struct inst *L = &s->insts[loop->index];
	size_t k;

	for (k = 0; k < L->nstarted; k++) {
		struct scope *it = L->iters[k];
		if (!it || !it->insts)
			continue;
		if (t->in == it->body) {
			struct inst *T = &it->insts[t->index];
			json_object *v;
			if (done_ok(T) && T->outs && json_object_object_get_ex(T->outs, name, &v))
				json_object_array_add(arr, json_object_get(v));
		} else {
			const struct ir_node *y = ancestor_in(t, it->body);
			if (y && y->kind == IR_LOOP)
				collect_from(it, y, t, name, arr);
		}
	}
}

static size_t utf8_len(const char *s, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			k++;
	return k;
}

static json_object *eval(struct sched *S, struct scope *sc, const struct ir_value *v, int *st,
			 char *err, size_t errlen)
{
	struct scope *s;
	json_object *r, *a, *b;
	size_t i;
	int c;

	*st = EV_OK;
	switch (v->kind) {
	case IR_V_CONST:
		return json_object_get(v->cst);
	case IR_V_PARAM:
		for (s = sc; s && !s->params; s = s->parent)
			;
		if (s && json_object_object_get_ex(s->params, v->name, &r))
			return json_object_get(r);
		if (s && s != S->root && s->owner) {
			/* a sub-pipeline input whose value was absent */
			*st = EV_ABSENT;
			return NULL;
		}
		snprintf(err, errlen, "parameter '%s' has no value", v->name);
		*st = EV_ERROR;
		return NULL;
	case IR_V_VAR:
		for (s = sc; s; s = s->parent)
			if (s->owner && s->owner->node == v->loop && s->item)
				return json_object_get(s->item);
		snprintf(err, errlen, "loop variable '%s' has no value", v->name);
		*st = EV_ERROR;
		return NULL;
	case IR_V_OUTPUT:
		for (s = sc; s && s->body != v->node->in; s = s->parent)
			;
		if (!s) {
			snprintf(err, errlen, "output %s.%s is not reachable", v->node->id, v->name);
			*st = EV_ERROR;
			return NULL;
		}
		{
			struct inst *T = &s->insts[v->node->index];
			if (done_ok(T) && T->outs && json_object_object_get_ex(T->outs, v->name, &r))
				return json_object_get(r);
		}
		*st = EV_ABSENT;
		return NULL;
	case IR_V_COLLECT: {
		const struct ir_node *x = NULL;
		for (s = sc; s; s = s->parent)
			if ((x = ancestor_in(v->node, s->body)))
				break;
		r = json_object_new_array();
		if (!r) {
			snprintf(err, errlen, "out of memory");
			*st = EV_ERROR;
			return NULL;
		}
		if (s && x && x->kind == IR_LOOP)
			collect_from(s, x, v->node, v->name, r);
		return r;
	}
	case IR_V_RANGE:
		if (v->hi >= v->lo && (uint64_t)(v->hi - v->lo) >= MAX_ITEMS) {
			snprintf(err, errlen, "range %lld..%lld has more than %d items",
				 (long long)v->lo, (long long)v->hi, MAX_ITEMS);
			*st = EV_ERROR;
			return NULL;
		}
		r = json_object_new_array_ext(v->hi >= v->lo ? (int)(v->hi - v->lo + 1) : 0);
		if (!r) {
			snprintf(err, errlen, "out of memory");
			*st = EV_ERROR;
			return NULL;
		}
		for (int64_t k = v->lo; k <= v->hi; k++) {
			json_object_array_add(r, json_object_new_int64(k));
			if (k == INT64_MAX)
				break;
		}
		return r;
	case IR_V_LIST:
		r = json_object_new_array_ext((int)v->nargs);
		for (i = 0; r && i < v->nargs; i++) {
			a = eval(S, sc, v->args[i], st, err, errlen);
			if (*st) {
				json_object_put(r);
				return NULL;
			}
			json_object_array_add(r, a);
		}
		if (!r) {
			snprintf(err, errlen, "out of memory");
			*st = EV_ERROR;
		}
		return r;
	case IR_V_OP:
		break;
	}
	/* operators */
	if (v->op == IR_OP_AND || v->op == IR_OP_OR) {
		for (i = 0; i < v->nargs; i++) {
			a = eval(S, sc, v->args[i], st, err, errlen);
			if (*st)
				return NULL;
			if (!json_object_is_type(a, json_type_boolean)) {
				json_object_put(a);
				snprintf(err, errlen, "'%s' needs bool operands", ir_op_name(v->op));
				*st = EV_ERROR;
				return NULL;
			}
			c = json_object_get_boolean(a);
			json_object_put(a);
			if (v->op == IR_OP_AND && !c)
				return json_object_new_boolean(0);
			if (v->op == IR_OP_OR && c)
				return json_object_new_boolean(1);
		}
		return json_object_new_boolean(v->op == IR_OP_AND);
	}
	a = eval(S, sc, v->args[0], st, err, errlen);
	if (*st)
		return NULL;
	if (v->op == IR_OP_NOT) {
		if (!json_object_is_type(a, json_type_boolean)) {
			json_object_put(a);
			snprintf(err, errlen, "'not' needs a bool operand");
			*st = EV_ERROR;
			return NULL;
		}
		r = json_object_new_boolean(!json_object_get_boolean(a));
		json_object_put(a);
		return r;
	}
	if (v->op == IR_OP_LEN) {
		int64_t n = -1;
		if (json_object_is_type(a, json_type_array))
			n = (int64_t)json_object_array_length(a);
		else if (json_object_is_type(a, json_type_object))
			n = json_object_object_length(a);
		else if (json_object_is_type(a, json_type_string))
			n = (int64_t)utf8_len(json_object_get_string(a), json_object_get_string_len(a));
		json_object_put(a);
		if (n < 0) {
			snprintf(err, errlen, "len() needs a list, map or string");
			*st = EV_ERROR;
			return NULL;
		}
		return json_object_new_int64(n);
	}
	b = eval(S, sc, v->args[1], st, err, errlen);
	if (*st) {
		json_object_put(a);
		return NULL;
	}
	if (v->op == IR_OP_MATCHES) {
		pcre2_match_data *md;
		int rc;
		if (!json_object_is_type(a, json_type_string) || !v->re) {
			json_object_put(a);
			json_object_put(b);
			snprintf(err, errlen, "'matches' needs a string");
			*st = EV_ERROR;
			return NULL;
		}
		md = pcre2_match_data_create_from_pattern(v->re, NULL);
		rc = md ? pcre2_match(v->re, (PCRE2_SPTR)json_object_get_string(a),
				      json_object_get_string_len(a), 0, 0, md, NULL)
			: PCRE2_ERROR_NOMEMORY;
		pcre2_match_data_free(md);
		json_object_put(a);
		json_object_put(b);
		if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
			snprintf(err, errlen, "regular expression match failed (PCRE2 error %d)", rc);
			*st = EV_ERROR;
			return NULL;
		}
		return json_object_new_boolean(rc >= 0);
	}
	if (v->op == IR_OP_EQ || v->op == IR_OP_NE) {
		c = value_equal(a, b);
		json_object_put(a);
		json_object_put(b);
		return json_object_new_boolean(v->op == IR_OP_EQ ? c : !c);
	}
	if (value_compare(a, b, &c) < 0 || json_object_is_type(a, json_type_boolean)) {
		json_object_put(a);
		json_object_put(b);
		snprintf(err, errlen, "'%s' cannot compare these values", ir_op_name(v->op));
		*st = EV_ERROR;
		return NULL;
	}
	json_object_put(a);
	json_object_put(b);
	switch (v->op) {
	case IR_OP_LT: return json_object_new_boolean(c < 0);
	case IR_OP_LE: return json_object_new_boolean(c <= 0);
	case IR_OP_GT: return json_object_new_boolean(c > 0);
	case IR_OP_GE: return json_object_new_boolean(c >= 0);
	default: break;
	}
	snprintf(err, errlen, "unknown operator");
	*st = EV_ERROR;
	return NULL;
}

/* Evaluate the inputs of I into a new object (name -> value). Returns EV_*. */
static int eval_inputs(struct sched *S, struct inst *I, json_object **out, char *err,
		       size_t errlen)
{
	json_object *o = json_object_new_object(), *v;
	size_t i;
	int st = EV_OK;

	if (!o) {
		snprintf(err, errlen, "out of memory");
		return EV_ERROR;
	}
	for (i = 0; i < I->node->ninputs; i++) {
		const struct ir_io *io = &I->node->inputs[i];
		v = eval(S, I->scope, io->value, &st, err, errlen);
		if (st == EV_ABSENT) {
			snprintf(err, errlen, "input '%s' has no value", io->name);
			break;
		}
		if (st) {
			char tmp[256];
			snprintf(tmp, sizeof tmp, "%s", err);
			snprintf(err, errlen, "input '%s': %s", io->name, tmp);
			break;
		}
		/* an int given where a float is expected stays numerically the same */
		json_object_object_add(o, io->name, v);
	}
	if (st) {
		json_object_put(o);
		return st;
	}
	*out = o;
	return EV_OK;
}

/* ---- instance completion ----------------------------------------------------------------- */

static void inst_done(struct sched *S, struct inst *I, int state, char *reason)
{
	struct scope *sc = I->scope;
	size_t k;

	if (I->phase == PH_DONE) {
		free(reason);
		return;
	}
	if (reason)
		set_reason(I, reason);
	if (I->prewarm) {
		recycle_later(S, I->prewarm); /* not needed after all (skipped, cached ...) */
		free(I->prewarm);
		I->prewarm = NULL;
	}
	set_state(S, I, state);
	I->phase = PH_DONE;
	I->finished = store_now();
	if (!I->started)
		I->started = I->finished;
	if (state == STORE_STEP_FAILED) {
		sc->nfailed++;
		if (!S->first_failed && I->node->kind == IR_STEP) {
			S->first_failed = strdup(I->name);
			S->first_failed_why = fail_detail(I);
		}
	} else if (state == STORE_STEP_CANCELLED) {
		sc->ncancelled++;
	}
	rec(S, I);
	if (I->node->kind == IR_STEP || state == STORE_STEP_SKIPPED || state == STORE_STEP_FAILED)
		report(S, I, 'd');
	if (I->node->kind == IR_STEP && state != STORE_STEP_FAILED && !S->store_failed &&
	    grow((void **)&S->settled, &S->capsettled, S->nsettled, sizeof *S->settled) == 0)
		S->settled[S->nsettled++] = I;
	for (k = 0; k < I->node->nusers; k++) {
		struct inst *U = &sc->insts[I->node->users[k]];
		if (U->ndeps_left && --U->ndeps_left == 0 && U->phase == PH_WAIT)
			enqueue_ready(S, U);
	}
	if (++sc->ndone == sc->body->n)
		scope_complete(S, sc);
}

static void iter_start(struct sched *S, struct inst *L, size_t k);

static void loop_finish(struct sched *S, struct inst *L)
{
	size_t k, nf = 0, nc = 0;

	for (k = 0; k < L->nstarted; k++) {
		if (!L->iters[k])
			continue;
		nf += L->iters[k]->nfailed;
		nc += L->iters[k]->ncancelled;
	}
	if (nf)
		inst_done(S, L, STORE_STEP_FAILED, xasprintf("%zu failed in its iterations", nf));
	else if (nc || L->nstarted < L->niters)
		inst_done(S, L, STORE_STEP_CANCELLED, strdup("cancelled"));
	else
		inst_done(S, L, STORE_STEP_SUCCEEDED, NULL);
}

static void pipe_finish(struct sched *S, struct inst *P)
{
	size_t i, nf = 0, nc = 0;
	char err[512];
	int st;

	nf = (P->sub ? P->sub->nfailed : 0) + (P->fin ? P->fin->nfailed : 0);
	nc = (P->sub ? P->sub->ncancelled : 0) + (P->fin ? P->fin->ncancelled : 0);
	P->outs = json_object_new_object();
	for (i = 0; P->sub && P->outs && i < P->node->noutputs; i++) {
		const struct ir_io *io = &P->node->outputs[i];
		json_object *v = eval(S, P->sub, io->value, &st, err, sizeof err);
		if (!st && v)
			json_object_object_add(P->outs, io->name, v);
	}
	if (nf)
		inst_done(S, P, STORE_STEP_FAILED, xasprintf("%zu failed inside", nf));
	else if (nc)
		inst_done(S, P, STORE_STEP_CANCELLED, strdup("cancelled"));
	else
		inst_done(S, P, STORE_STEP_SUCCEEDED, NULL);
}

static const char *status_now(struct sched *S, struct scope *body)
{
	if (S->timed_out)
		return "failed";
	if (S->cancel)
		return "cancelled";
	return body->nfailed ? "failed" : "succeeded";
}

static void scope_complete(struct sched *S, struct scope *sc)
{
	struct inst *O = sc->owner;

	if (sc == S->root) {
		if (S->timed_out) {
			S->status = STORE_RUN_FAILED;
			snprintf(S->reason, sizeof S->reason, "timeout");
		} else if (S->cancel) {
			S->status = STORE_RUN_CANCELLED;
			snprintf(S->reason, sizeof S->reason, "%s", S->cancel_why ? S->cancel_why
										: "cancelled");
		} else if (sc->nfailed) {
			S->status = STORE_RUN_FAILED;
			snprintf(S->reason, sizeof S->reason, "step %s failed%s",
				 S->first_failed ? S->first_failed : "?",
				 S->first_failed_why ? S->first_failed_why : "");
		} else {
			S->status = STORE_RUN_SUCCEEDED;
			S->reason[0] = 0;
		}
		if (S->c->ir->fin.n && S->cancel < 2) {
			S->rootfin = scope_new(S, NULL, &S->c->ir->fin, NULL, strdup(""),
					       json_object_get(S->c->params), NULL, 1);
			if (S->rootfin)
				S->rootfin->fin_status = store_run_status_name(S->status);
		} else {
			S->done = 1;
		}
		return;
	}
	if (sc == S->rootfin) {
		if (sc->nfailed && S->status != STORE_RUN_CANCELLED) {
			size_t i;
			S->status = STORE_RUN_FAILED;
			for (i = 0; i < sc->body->n; i++)
				if (sc->insts[i].state == STORE_STEP_FAILED)
					break;
			{
				char *why = i < sc->body->n ? fail_detail(&sc->insts[i]) : NULL;
				snprintf(S->reason, sizeof S->reason, "exit handler %s failed%s",
					 i < sc->body->n ? sc->insts[i].name : "?", why ? why : "");
				free(why);
			}
		}
		if (S->cancel >= 2)
			S->status = STORE_RUN_CANCELLED;
		S->done = 1;
		return;
	}
	if (!O)
		return;
	if (O->node->kind == IR_LOOP) {
		O->ndone++;
		if (!S->cancel && O->nstarted < O->niters)
			iter_start(S, O, O->nstarted);
		else if (O->ndone == O->nstarted)
			loop_finish(S, O);
		return;
	}
	if (O->node->kind == IR_PIPELINE) {
		if (sc == O->sub && O->node->fin.n && S->cancel < 2) {
			O->fin = scope_new(S, O->scope, &O->node->fin, O, strdup(O->scope->suffix),
					   json_object_get(O->sub->params), NULL, 1);
			if (O->fin)
				O->fin->fin_status = status_now(S, O->sub);
			return;
		}
		pipe_finish(S, O);
	}
}

static void iter_start(struct sched *S, struct inst *L, size_t k)
{
	const char *ps = L->scope->suffix;
	char *suffix;
	struct scope *it;

	if (*ps)
		suffix = xasprintf("%.*s,%zu]", (int)strlen(ps) - 1, ps, k);
	else
		suffix = xasprintf("[%zu]", k);
	if (!suffix) {
		oom(S);
		return;
	}
	L->nstarted++;
	it = scope_new(S, L->scope, &L->node->body, L, suffix, NULL,
		       json_object_get(json_object_array_get_idx(L->items, k)), 0);
	L->iters[k] = it;
}

/* ---- deciding a ready instance -------------------------------------------------------- */

static int res_exceeds(const struct exec_resources *r, const struct exec_resources *cap)
{
	return (r->cpu_milli && r->cpu_milli > cap->cpu_milli) ||
	       (r->memory_bytes && cap->memory_bytes && r->memory_bytes > cap->memory_bytes) ||
	       (r->gpu && r->gpu > cap->gpu);
}

static int res_fits(struct sched *S, const struct exec_resources *r)
{
	return (!r->cpu_milli || S->used.cpu_milli + r->cpu_milli <= S->cap.cpu_milli) &&
	       (!r->memory_bytes || !S->cap.memory_bytes ||
		S->used.memory_bytes + r->memory_bytes <= S->cap.memory_bytes) &&
	       (!r->gpu || S->used.gpu + r->gpu <= S->cap.gpu);
}

/* Interpolation context for a step's templates. */
struct sctx {
	struct sched *S;
	struct inst *I;
	int view;            /* cache view: attempt-specific paths stay placeholders */
	const char *outdir;  /* as seen inside the step */
	json_object *paths;  /* artifact input name -> path inside the step */
};

static char *lookup(void *u, const char *ns, size_t nsl, const char *f, size_t fl, char *err,
		    size_t errlen)
{
	struct sctx *c = u;
	struct inst *I = c->I;
	char field[160];
	json_object *v;
	size_t i;
	struct scope *s;

	if (fl >= sizeof field) {
		snprintf(err, errlen, "placeholder name too long");
		return NULL;
	}
	memcpy(field, f, fl);
	field[fl] = 0;
#define NS(x) (nsl == strlen(x) && !memcmp(ns, x, nsl))
	if (NS("inputs")) {
		for (i = 0; i < I->node->ninputs; i++)
			if (!strcmp(I->node->inputs[i].name, field))
				break;
		if (i == I->node->ninputs)
			goto unknown;
		if (I->node->inputs[i].artifact) {
			if (c->view)
				return xasprintf("{{inputs.%s}}", field);
			if (c->paths && json_object_object_get_ex(c->paths, field, &v))
				return strdup(json_object_get_string(v));
			snprintf(err, errlen, "artifact input '%s' is not available", field);
			return NULL;
		}
		if (I->inputs && json_object_object_get_ex(I->inputs, field, &v))
			return value_to_text(v);
		snprintf(err, errlen, "input '%s' has no value", field);
		return NULL;
	}
	if (NS("outputs")) {
		if (!ir_node_output(I->node, field))
			goto unknown;
		if (c->view || !c->outdir)
			return xasprintf("{{outputs.%s}}", field);
		return xasprintf("%s/%s", c->outdir, field);
	}
	if (NS("params")) {
		for (s = I->scope; s && !s->params; s = s->parent)
			;
		if (s && json_object_object_get_ex(s->params, field, &v))
			return value_to_text(v);
		goto unknown;
	}
	if (NS("run")) {
		if (!strcmp(field, "id"))
			return strdup(c->S->c->run_id);
		if (!strcmp(field, "name"))
			return strdup(c->S->c->ir->name);
		if (!strcmp(field, "status")) {
			if (I->scope->is_fin && I->scope->fin_status)
				return strdup(I->scope->fin_status);
			snprintf(err, errlen, "{{run.status}} is only available in finally steps");
			return NULL;
		}
		goto unknown;
	}
	if (NS("step")) {
		if (!strcmp(field, "name"))
			return strdup(I->name);
		if (!strcmp(field, "attempt"))
			return c->view ? strdup("{{step.attempt}}") : xasprintf("%d", I->attempt);
		goto unknown;
	}
#undef NS
unknown:
	snprintf(err, errlen, "unknown placeholder {{%.*s.%s}}", (int)nsl, ns, field);
	return NULL;
}

static char *expand(struct sctx *c, const char *t, char *err, size_t errlen)
{
	if (!subst_has_placeholder(t))
		return strdup(t);
	return subst_expand(t, lookup, c, err, errlen);
}

/* Secret NAME from the environment: KFPC_SECRET_<NAME uppercased, '-' and '.' as '_'>. */
static const char *secret_value(const char *name, char *var, size_t len)
{
	size_t i, n = (size_t)snprintf(var, len, "KFPC_SECRET_");

	for (i = 0; name[i] && n + 1 < len; i++) {
		char ch = name[i];
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
			ch = '_';
		var[n++] = ch;
	}
	var[n] = 0;
	return getenv(var);
}

/* Build the cache view of step I (its inputs are evaluated). NULL + err on a template error. */
static json_object *cache_view(struct sched *S, struct inst *I, char *err, size_t errlen)
{
	const struct ir_node *n = I->node;
	struct sctx c = {S, I, 1, NULL, NULL};
	json_object *v = json_object_new_object(), *cmd = NULL, *interp = NULL, *script = NULL,
		    *env = NULL, *outs = NULL, *wd = NULL;
	size_t i;
	char *t;

	/* members are added in key order, so that the view is canonical as built (cache_key
	 * then hashes it without a sorted copy; the key is the same either way) */
	if (!v)
		goto nomem;
	if (n->command) {
		cmd = json_object_new_array();
		for (i = 0; i < n->ncommand; i++) {
			if (!(t = expand(&c, n->command[i], err, errlen)))
				goto fail;
			json_object_array_add(cmd, json_object_new_string(t));
			free(t);
		}
	} else {
		interp = json_object_new_array();
		for (i = 0; i < n->ninterp; i++)
			json_object_array_add(interp, json_object_new_string(n->interp[i]));
		if (!(t = expand(&c, n->script ? n->script : "", err, errlen)))
			goto fail;
		script = json_object_new_string(t);
		free(t);
	}
	env = json_object_new_array();
	for (i = 0; i < n->nenv; i++) {
		json_object *e = json_object_new_array();
		json_object_array_add(env, e);
		json_object_array_add(e, json_object_new_string(n->env[i].name));
		if (n->env[i].secret) {
			t = xasprintf("secret:%s", n->env[i].secret);
		} else if (!(t = expand(&c, n->env[i].value, err, errlen))) {
			goto fail;
		}
		json_object_array_add(e, json_object_new_string(t ? t : ""));
		free(t);
	}
	if (n->workdir) {
		if (!(t = expand(&c, n->workdir, err, errlen)))
			goto fail;
		wd = json_object_new_string(t);
		free(t);
	}
	outs = json_object_new_array();
	for (i = 0; i < n->noutputs; i++) {
		const struct ir_io *o = &n->outputs[i];
		json_object *e = json_object_new_array();
		json_object_array_add(outs, e);
		json_object_array_add(e, json_object_new_string(o->name));
		json_object_array_add(e, json_object_new_string(o->type));
		json_object_array_add(e, json_object_new_string(o->artifact ? "artifact" : "param"));
		json_object_array_add(e, json_object_new_int(o->from));
		json_object_array_add(e, o->path ? json_object_new_string(o->path) : NULL);
	}
	if (cmd)
		json_object_object_add(v, "argv", cmd);
	json_object_object_add(v, "env", env);
	json_object_object_add(v, "image", json_object_new_string(n->image));
	json_object_object_add(v, "inputs", json_object_get(I->inputs));
	if (interp)
		json_object_object_add(v, "interpreter", interp);
	json_object_object_add(v, "outputs", outs);
	if (script)
		json_object_object_add(v, "script", script);
	json_object_object_add(v, "v", json_object_new_int(1));
	if (wd)
		json_object_object_add(v, "workdir", wd);
	return v;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	json_object_put(cmd);
	json_object_put(interp);
	json_object_put(script);
	json_object_put(env);
	json_object_put(outs);
	json_object_put(wd);
	json_object_put(v);
	return NULL;
}

/* Outputs of a cache entry as instance outputs. */
static json_object *outs_from_cache(struct sched *S, struct inst *I, struct store_cache *c)
{
	json_object *o = json_object_new_object(), *v;
	size_t i, k;

	for (i = 0; o && i < I->node->noutputs; i++) {
		const struct ir_io *io = &I->node->outputs[i];
		if (!io->artifact) {
			if (c->outputs && json_object_object_get_ex(c->outputs, io->name, &v))
				json_object_object_add(o, io->name, json_object_get(v));
			continue;
		}
		for (k = 0; k < c->narts; k++)
			if (c->arts[k].name && !strcmp(c->arts[k].name, io->name)) {
				enum art_kind kind = ART_FILE;
				art_kind_of(S->c->art, c->arts[k].digest, &kind);
				json_object_object_add(o, io->name,
						       value_new_artifact(c->arts[k].digest,
									  art_kind_name(kind), io->type));
				break;
			}
	}
	return o;
}

static struct store_step *resume_rec(struct sched *S, const char *name)
{
	struct lh_entry *e;

	if (!S->resume)
		return NULL;
	e = lh_table_lookup_entry(S->resume, name);
	return e ? (struct store_step *)lh_entry_v(e) : NULL;
}

static int copy_attempts(struct inst *I, const struct store_step *r)
{
	size_t k;

	if (!r->nattempts)
		return 0;
	I->atts = calloc(r->nattempts, sizeof *I->atts);
	if (!I->atts)
		return -1;
	for (k = 0; k < r->nattempts; k++) {
		const struct store_attempt *a = &r->attempts[k];
		struct store_attempt *b = &I->atts[k];
		*b = *a;
		b->reason = a->reason ? strdup(a->reason) : NULL;
		b->stdout_path = a->stdout_path ? strdup(a->stdout_path) : NULL;
		b->stderr_path = a->stderr_path ? strdup(a->stderr_path) : NULL;
		b->executor = a->executor ? strdup(a->executor) : NULL;
		b->handle = a->handle ? strdup(a->handle) : NULL;
		if (a->fail != STORE_FAIL_NONE &&
		    !(a->reason && !strncmp(a->reason, "interrupted", 11)))
			I->nfail++;
	}
	I->natts = r->nattempts;
	I->attempt = r->attempts[r->nattempts - 1].number;
	return 0;
}

/* Adopt a terminal record: outputs rebuilt from the stored values and artifact digests. */
static void adopt_terminal(struct sched *S, struct inst *I, const struct store_step *r)
{
	size_t i, k;

	json_object_put(I->outs);
	I->outs = json_object_new_object();
	for (i = 0; I->outs && i < I->node->noutputs; i++) {
		const struct ir_io *io = &I->node->outputs[i];
		json_object *v;
		if (!io->artifact) {
			if (r->outputs && json_object_object_get_ex(r->outputs, io->name, &v))
				json_object_object_add(I->outs, io->name, json_object_get(v));
			continue;
		}
		for (k = 0; k < r->nout_arts; k++)
			if (r->out_arts[k].name && !strcmp(r->out_arts[k].name, io->name)) {
				enum art_kind kind = ART_FILE;
				art_kind_of(S->c->art, r->out_arts[k].digest, &kind);
				json_object_object_add(I->outs, io->name,
						       value_new_artifact(r->out_arts[k].digest,
									  art_kind_name(kind), io->type));
				break;
			}
	}
	if (r->inputs)
		I->inputs = json_object_get(r->inputs);
	copy_attempts(I, r);
	I->from_cache = (unsigned char)r->from_cache;
	I->cache_key = r->cache_key ? strdup(r->cache_key) : NULL;
	I->cached_from = r->cached_from ? strdup(r->cached_from) : NULL;
	set_reason(I, r->reason ? strdup(r->reason) : NULL);
	set_state(S, I, r->state);
	I->phase = PH_DONE;
	I->started = r->started;
	I->finished = r->finished;
	if (r->state == STORE_STEP_FAILED) {
		I->scope->nfailed++;
		if (!S->first_failed) {
			S->first_failed = strdup(I->name);
			S->first_failed_why = fail_detail(I);
		}
	} else if (r->state == STORE_STEP_CANCELLED) {
		I->scope->ncancelled++;
	}
	for (k = 0; k < I->node->nusers; k++) {
		struct inst *U = &I->scope->insts[I->node->users[k]];
		if (U->ndeps_left && --U->ndeps_left == 0 && U->phase == PH_WAIT)
			enqueue_ready(S, U);
	}
	if (++I->scope->ndone == I->scope->body->n)
		scope_complete(S, I->scope);
}

static void attempt_end(struct sched *S, struct inst *I, const struct exec_result *res);
static char *attempt_path(struct sched *S, const char *kind, const char *step, int attempt,
			  const char *suffix);

/* A running attempt recorded by an earlier process: re-attach or kill it; returns 1 if
 * re-attached (the instance is RUNNING again). */
static int resume_running(struct sched *S, struct inst *I)
{
	struct store_attempt *a = &I->atts[I->natts - 1];
	struct exec_spec spec = {0};
	struct exec_job *job = NULL;
	char err[512];
	int rc;

	spec.image = I->node->image;
	spec.id.run_id = S->c->run_id;
	spec.id.pipeline = S->c->ir->name;
	spec.id.step = I->name;
	spec.id.attempt = a->number;
	spec.stdout_path = a->stdout_path;
	spec.stderr_path = a->stderr_path;
	rc = S->c->ops->reattach(S->c->x, a->handle, &spec, I, &job, err, sizeof err);
	if (rc == 1 && job) {
		struct attempt_rt *rt = calloc(1, sizeof *rt);
		if (!rt || grow((void **)&S->running, &S->caprunning, S->nrunning,
				sizeof *S->running) < 0) {
			free(rt);
			oom(S);
			return 0;
		}
		rt->job = job;
		rt->work = attempt_path(S, "work", I->name, a->number, "");
		rt->outdir = rt->work ? xasprintf("%s/out", rt->work) : NULL;
		rt->cwd_host = rt->work ? strdup(rt->work) : NULL;
		rt->out_path = a->stdout_path ? strdup(a->stdout_path) : NULL;
		rt->err_path = a->stderr_path ? strdup(a->stderr_path) : NULL;
		rt->t0 = mono();
		if (I->node->timeout > 0)
			rt->deadline = rt->t0 + I->node->timeout;
		rt->ridx = S->nrunning;
		S->running[S->nrunning++] = I;
		I->rt = rt;
		I->phase = PH_RUNNING;
		set_state(S, I, STORE_STEP_RUNNING);
		report(S, I, 's');
		return 1;
	}
	/* gone: close the old attempt without counting it as a failure */
	if (!a->finished)
		a->finished = store_now();
	a->fail = STORE_FAIL_INFRA;
	free(a->reason);
	a->reason = strdup("interrupted: kfpc stopped while the attempt ran");
	return 0;
}

static void step_ready(struct sched *S, struct inst *I)
{
	const struct ir_node *n = I->node;
	char err[512];
	json_object *view;
	struct exec_resources r = {n->cpu_milli, n->memory_bytes, n->gpu};
	int st;

	st = eval_inputs(S, I, &I->inputs, err, sizeof err);
	if (st == EV_ABSENT) {
		inst_done(S, I, STORE_STEP_SKIPPED, xasprintf("upstream skipped: %s", err));
		return;
	}
	if (st) {
		inst_done(S, I, STORE_STEP_FAILED, strdup(err));
		return;
	}
	if (res_exceeds(&r, &S->cap)) {
		inst_done(S, I, STORE_STEP_FAILED,
			  xasprintf("resources exceed machine (requests cpu %lldm, memory %lld "
				    "bytes, gpu %lld; the machine has cpu %lldm, memory %lld bytes, "
				    "gpu %lld)",
				    (long long)r.cpu_milli, (long long)r.memory_bytes, (long long)r.gpu,
				    (long long)S->cap.cpu_milli, (long long)S->cap.memory_bytes,
				    (long long)S->cap.gpu));
		return;
	}
	if (!I->scope->is_fin) {
		char key[CACHE_KEY_SIZE];
		view = cache_view(S, I, err, sizeof err);
		if (!view) {
			inst_done(S, I, STORE_STEP_FAILED, strdup(err));
			return;
		}
		if (cache_key(view, key) == 0) {
			free(I->cache_key);
			I->cache_key = strdup(key);
		}
		json_object_put(view);
	}
	/* a step that declares no outputs exists for its side effects: it always runs */
	if (I->cache_key && n->cache && n->noutputs && !S->c->no_cache && !I->natts) {
		struct store_cache *hit = NULL;
		int m = cache_lookup(S->c->st, S->c->art, I->cache_key, n->max_age, store_now(), &hit);
		if (m == CACHE_HIT) {
			json_object_put(I->outs);
			I->outs = outs_from_cache(S, I, hit);
			I->from_cache = 1;
			I->cached_from = hit->run && hit->step ? xasprintf("%s/%s", hit->run, hit->step)
							      : NULL;
			explain(S, I, "cached: key %.12s (from %s)", I->cache_key,
				I->cached_from ? I->cached_from : "?");
			store_cache_free(hit);
			inst_done(S, I, STORE_STEP_CACHED, NULL);
			return;
		}
		if (S->c->explain) {
			struct store_step *prev = NULL;
			if (m == CACHE_MISS_NONE && S->c->prev_run &&
			    store_step_get(S->c->st, S->c->prev_run, I->name, &prev) == 0 &&
			    prev->cache_key && strcmp(prev->cache_key, I->cache_key))
				explain(S, I, "ran: input changed since run %s (key %.12s, was %.12s)",
					S->c->prev_run, I->cache_key, prev->cache_key);
			else
				explain(S, I, "ran: %s (key %.12s)",
					m < 0 ? "cache lookup failed" : cache_miss_name(m),
					I->cache_key);
			store_step_free(prev);
		}
	} else if (S->c->explain) {
		if (I->scope->is_fin)
			explain(S, I, "ran: exit handlers are never cached");
		else if (!n->cache)
			explain(S, I, "ran: cache disabled (cache off)");
		else if (!n->noutputs)
			explain(S, I, "ran: a step with no outputs runs for its side effects");
		else if (S->c->no_cache)
			explain(S, I, "ran: cache disabled (--no-cache)");
		else
			explain(S, I, "ran: retrying an earlier attempt");
	}
	enqueue_runnable(S, I);
}

static void loop_start(struct sched *S, struct inst *L)
{
	char err[512];
	int st;
	size_t k, n;
	json_object *items = eval(S, L->scope, L->node->items, &st, err, sizeof err);

	if (st == EV_ABSENT) {
		inst_done(S, L, STORE_STEP_SKIPPED, strdup("upstream skipped: loop items"));
		return;
	}
	if (st) {
		inst_done(S, L, STORE_STEP_FAILED, xasprintf("loop items: %s", err));
		return;
	}
	if (!json_object_is_type(items, json_type_array)) {
		json_object_put(items);
		inst_done(S, L, STORE_STEP_FAILED, strdup("loop items are not a list"));
		return;
	}
	n = json_object_array_length(items);
	if (n > MAX_ITEMS) {
		json_object_put(items);
		inst_done(S, L, STORE_STEP_FAILED, xasprintf("loop has more than %d items", MAX_ITEMS));
		return;
	}
	L->items = items;
	L->niters = n;
	L->iters = calloc(n ? n : 1, sizeof *L->iters);
	if (!L->iters) {
		oom(S);
		return;
	}
	if (n == 0 || L->node->body.n == 0) {
		L->nstarted = 0;
		L->niters = 0;
		inst_done(S, L, STORE_STEP_SUCCEEDED, NULL);
		return;
	}
	L->phase = PH_ACTIVE;
	set_state(S, L, STORE_STEP_RUNNING);
	L->started = store_now();
	rec(S, L);
	/* Iterations are created lazily: at most `parallel N` (or LOOP_WINDOW when the loop has no
	 * limit) are active, and each one that finishes starts the next (scope_complete). A loop
	 * over a million items costs memory for its items only, and the event loop (signals,
	 * timers, finished steps) keeps running while it expands. */
	k = L->node->parallel > 0 ? (size_t)L->node->parallel : LOOP_WINDOW;
	if (k > n)
		k = n;
	for (size_t i = 0; i < k && !S->store_failed; i++)
		iter_start(S, L, i);
}

static void pipe_start(struct sched *S, struct inst *P)
{
	char err[512];
	json_object *params = NULL;
	int st = eval_inputs(S, P, &params, err, sizeof err);

	if (st == EV_ABSENT) {
		inst_done(S, P, STORE_STEP_SKIPPED, xasprintf("upstream skipped: %s", err));
		return;
	}
	if (st) {
		inst_done(S, P, STORE_STEP_FAILED, strdup(err));
		return;
	}
	P->phase = PH_ACTIVE;
	set_state(S, P, STORE_STEP_RUNNING);
	P->started = store_now();
	rec(S, P);
	P->sub = scope_new(S, P->scope, &P->node->body, P, strdup(P->scope->suffix), params, NULL,
			   0);
	if (P->sub && P->node->body.n == 0)
		scope_complete(S, P->sub);
}

static void decide(struct sched *S, struct inst *I)
{
	const struct ir_node *n = I->node;
	struct scope *sc = I->scope;
	size_t k;
	int st;
	char err[512];
	json_object *w;
	struct store_step *r;

	if (S->cancel >= 2 || (S->cancel && !sc->is_fin)) {
		inst_done(S, I, STORE_STEP_CANCELLED, strdup("run cancelled"));
		return;
	}
	if (n->kind == IR_STEP && (r = resume_rec(S, I->name))) {
		if (r->state != STORE_STEP_PENDING && r->state != STORE_STEP_RUNNING) {
			adopt_terminal(S, I, r);
			return;
		}
		if (copy_attempts(I, r) < 0) {
			oom(S);
			return;
		}
		if (r->state == STORE_STEP_RUNNING && I->natts && !I->atts[I->natts - 1].finished) {
			/* evaluate inputs first: outputs are collected when it ends; a
			 * re-attached attempt keeps the step's recorded start */
			I->started = r->started;
			if (eval_inputs(S, I, &I->inputs, err, sizeof err) == EV_OK &&
			    resume_running(S, I))
				return;
			json_object_put(I->inputs);
			I->inputs = NULL;
		}
		/* a new attempt starts after the downtime: prepare() sets the start */
		I->started = 0;
	}
	for (k = 0; k < n->ndeps; k++) {
		struct inst *D = &sc->insts[n->deps[k]];
		if (D->state == STORE_STEP_FAILED || D->state == STORE_STEP_CANCELLED) {
			inst_done(S, I, STORE_STEP_SKIPPED, xasprintf("upstream failed: %s", D->name));
			return;
		}
	}
	for (k = 0; k < n->ndeps; k++) {
		struct inst *D = &sc->insts[n->deps[k]];
		if (n->dep_data[k] && D->state == STORE_STEP_SKIPPED) {
			inst_done(S, I, STORE_STEP_SKIPPED,
				  xasprintf("upstream skipped: %s", D->name));
			return;
		}
	}
	if (n->when) {
		w = eval(S, sc, n->when, &st, err, sizeof err);
		if (st == EV_ABSENT) {
			inst_done(S, I, STORE_STEP_SKIPPED, strdup("upstream skipped: condition"));
			return;
		}
		if (st || !json_object_is_type(w, json_type_boolean)) {
			json_object_put(w);
			inst_done(S, I, STORE_STEP_FAILED,
				  xasprintf("condition: %s", st ? err : "not a bool"));
			return;
		}
		st = json_object_get_boolean(w);
		json_object_put(w);
		if (!st) {
			inst_done(S, I, STORE_STEP_SKIPPED, strdup("condition false"));
			return;
		}
	}
	switch (n->kind) {
	case IR_STEP:
		step_ready(S, I);
		break;
	case IR_LOOP:
		loop_start(S, I);
		break;
	case IR_PIPELINE:
		pipe_start(S, I);
		break;
	}
}

/* ---- attempts -------------------------------------------------------------------------- */

/* Per-attempt paths, flat per run so that an attempt costs one mkdir (SCHED's layout; the
 * paths are recorded in the attempt, which is how `kfpc logs` finds them):
 *   STATE/work/RUN/STEP.N/        the attempt's scratch dir (cwd; out/ and in/ below it)
 *   STATE/logs/RUN/STEP.N.stdout  and .stderr
 * STEP is escaped like store_attempt_dir does: bytes outside [A-Za-z0-9._,=+[]-] as %XX. */
static char *attempt_path(struct sched *S, const char *kind, const char *step, int attempt,
			  const char *suffix)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *sd = S->c->state_dir, *rid = S->c->run_id;
	size_t n = strlen(step), lsd = strlen(sd), lk = strlen(kind), lr = strlen(rid),
	       ls = strlen(suffix), i;
	char num[24], *r, *p;
	int ln = snprintf(num, sizeof num, ".%d", attempt);

	/* STATE/KIND/RUN/STEP.N SUFFIX, the step name escaped (built by hand: one per file of
	 * every attempt) */
	r = malloc(lsd + lk + lr + 3 * n + (size_t)ln + ls + 4);
	if (!r)
		return NULL;
	memcpy(r, sd, lsd);
	p = r + lsd;
	*p++ = '/';
	memcpy(p, kind, lk);
	p += lk;
	*p++ = '/';
	memcpy(p, rid, lr);
	p += lr;
	*p++ = '/';
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)step[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    (ch && strchr("._,=+[]-", ch))) {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	memcpy(p, num, (size_t)ln);
	memcpy(p + ln, suffix, ls + 1);
	return r;
}

/* Create STATE/work/RUN and STATE/logs/RUN (once per process). */
static int make_run_dirs(struct sched *S, char *err, size_t errlen)
{
	const char *kinds[] = {"work", "logs"};
	char path[4096];

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", S->c->state_dir, kinds[i]);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			goto fail;
		snprintf(path, sizeof path, "%s/%s/%s", S->c->state_dir, kinds[i], S->c->run_id);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "mkdir %.900s: %s", path, strerror(errno));
	return -1;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_tree(const char *path)
{
	if (rmdir(path) == 0 || errno == ENOENT)
		return;
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The cleaner: a thread that removes work directories of finished attempts, so that the
 * scheduler's loop does not wait for file-system metadata updates. Paths are queued; the
 * queue is drained before sched_run returns. Without the thread, removal is inline. */
struct cleaner {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char **q;
	size_t n, cap;
	int stop;
};

static void *cleaner_main(void *arg)
{
	struct cleaner *c = arg;
	char **batch = NULL;
	size_t n, i;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->n && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (!c->n && c->stop) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		batch = c->q;
		n = c->n;
		c->q = NULL;
		c->n = c->cap = 0;
		pthread_mutex_unlock(&c->mu);
		for (i = 0; i < n; i++) {
			rm_tree(batch[i]);
			free(batch[i]);
		}
		free(batch);
	}
	return NULL;
}

static struct cleaner *cleaner_start(void)
{
	struct cleaner *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->th, NULL, cleaner_main, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		free(c);
		return NULL;
	}
	return c;
}

static void cleanup(struct sched *S, const char *path);

/* 1 if directory PATH holds nothing, or only an empty "out" directory. */
static int dir_empty(const char *path, int depth)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), empty = 1;
	long n, off;

	if (fd < 0)
		return 0;
	while (empty && (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
		for (off = 0; off < n && empty;) {
			struct {
				unsigned long long ino;
				long long off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(buf + off);
			if (strcmp(d->name, ".") && strcmp(d->name, "..")) {
				if (depth == 0 && !strcmp(d->name, "out")) {
					char sub[4200];
					snprintf(sub, sizeof sub, "%s/out", path);
					empty = dir_empty(sub, 1);
				} else {
					empty = 0;
				}
			}
			off += d->reclen;
		}
	}
	close(fd);
	return empty;
}

/* A finished attempt's work dir: kept for reuse when empty (removing a directory can cost a
 * synchronous discard on the device, and holds the parent's lock while it does), else removed
 * by the cleaner. Takes P (malloc'd). */
static void recycle(struct sched *S, char *p)
{
	if (S->nspare < 64 && dir_empty(p, 0) &&
	    grow((void **)&S->spare, &S->capspare, S->nspare, sizeof *S->spare) == 0) {
		S->spare[S->nspare++] = p;
		return;
	}
	cleanup(S, p);
	free(p);
}

/* Queue PATH (copied) for recycle: finished work dirs are looked at after the round's spawns,
 * off the path from one step's end to the next one's start. */
static void recycle_later(struct sched *S, const char *path)
{
	char *p = strdup(path);

	if (!p || grow((void **)&S->useddirs, &S->capuseddirs, S->nuseddirs,
			sizeof *S->useddirs) < 0) {
		free(p);
		cleanup(S, path);
		return;
	}
	S->useddirs[S->nuseddirs++] = p;
}

static void recycle_all(struct sched *S)
{
	for (size_t k = 0; k < S->nuseddirs; k++)
		recycle(S, S->useddirs[k]);
	S->nuseddirs = 0;
}

/* Make PATH a fresh empty directory: a spare one renamed, or mkdir. */
static int make_work_dir(struct sched *S, const char *path)
{
	while (S->nspare) {
		char *sp = S->spare[--S->nspare];
		int rc = rename(sp, path);
		free(sp);
		if (rc == 0)
			return 0;
	}
	return mkdir(path, 0755);
}

/* The steps waiting for nothing but the attempts spawned this round get their next attempt's
 * work dir now, from the spare ones (a rename), while those attempts run: in a chain, the
 * next step then starts without waiting for a directory. A dir made ahead for a step that
 * then does not run (cached, skipped, failed upstream) goes back to the spares. */
static void prewarm_users(struct sched *S)
{
	for (size_t k = 0; k < S->nspawned; k++) {
		struct inst *I = S->spawned[k];
		struct scope *sc = I->scope;
		for (size_t u = 0; u < I->node->nusers && S->nspare; u++) {
			struct inst *U = &sc->insts[I->node->users[u]];
			char *path, *sp;
			if (U->node->kind != IR_STEP || U->phase != PH_WAIT || U->ndeps_left != 1 ||
			    U->prewarm)
				continue;
			path = attempt_path(S, "work", U->name, U->attempt + 1, "");
			sp = S->spare[--S->nspare];
			if (path && rename(sp, path) == 0) {
				U->prewarm = path;
			} else {
				free(path);
				cleanup(S, sp);
			}
			free(sp);
		}
	}
	S->nspawned = 0;
}

/* Remove PATH (a work dir) soon: queued to the cleaner, or now. */
static void cleanup(struct sched *S, const char *path)
{
	struct cleaner *c;
	char *p;

	if (!S->cleaner && !S->cleaner_tried) {
		/* started at the first dir to remove: a run whose steps leave nothing behind
		 * stays one thread (its spawns' stack unmaps then need no cross-CPU flush) */
		S->cleaner_tried = 1;
		S->cleaner = cleaner_start(); /* signals are blocked: the thread inherits that */
	}
	c = S->cleaner;

	if (c && (p = strdup(path))) {
		pthread_mutex_lock(&c->mu);
		if (c->n == c->cap) {
			size_t nc = c->cap ? 2 * c->cap : 64;
			char **nq = realloc(c->q, nc * sizeof *nq);
			if (!nq) {
				pthread_mutex_unlock(&c->mu);
				free(p);
				rm_tree(path);
				return;
			}
			c->q = nq;
			c->cap = nc;
		}
		c->q[c->n++] = p;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	rm_tree(path);
}

/* Drain the queue and stop the thread. */
static void cleaner_stop(struct cleaner *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->q);
	free(c);
}

static void rt_free_spec(struct attempt_rt *rt)
{
	size_t i;

	for (i = 0; rt->argv && i < rt->argc; i++)
		free(rt->argv[i]);
	free(rt->argv);
	rt->argv = NULL;
	for (i = 0; rt->env && i < rt->nenv; i++)
		free((char *)rt->env[i].value);
	free(rt->env);
	rt->env = NULL;
	for (i = 0; rt->inputs && i < rt->ninputs; i++)
		free((char *)rt->inputs[i].host_path);
	free(rt->inputs);
	rt->inputs = NULL;
	free(rt->vols);
	rt->vols = NULL;
	free(rt->labels);
	rt->labels = NULL;
	free(rt->workdir);
	rt->workdir = NULL;
}

static void rt_free(struct attempt_rt *rt)
{
	if (!rt)
		return;
	rt_free_spec(rt);
	free(rt->work);
	free(rt->outdir);
	free(rt->cwd_host);
	free(rt->out_path);
	free(rt->err_path);
	free(rt);
}

/* Materialise artifact value V (or a list of them) at DEST. */
static int materialize(struct sched *S, json_object *v, const char *dest, char *err,
		       size_t errlen)
{
	const char *kind, *d = value_artifact_digest(v, &kind);
	size_t i, n;

	if (d) {
		if (art_materialize(S->c->art, d, art_kind_parse(kind), dest, 0) != ART_OK) {
			snprintf(err, errlen, "cannot materialise input artifact %.12s: %s", d,
				 art_errmsg(S->c->art));
			return -1;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_array)) {
		snprintf(err, errlen, "input is not an artifact");
		return -1;
	}
	if (mkdir(dest, 0755) < 0) {
		snprintf(err, errlen, "mkdir %s: %s", dest, strerror(errno));
		return -1;
	}
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		char *p = xasprintf("%s/%zu", dest, i);
		int rc = p ? materialize(S, json_object_array_get_idx(v, i), p, err, errlen) : -1;
		free(p);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int write_file(const char *path, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text), off = 0;
	ssize_t w;

	if (fd < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	while (off < len) {
		w = write(fd, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Prepare attempt I->attempt + 1: directories, inputs, the spec. Returns 0, or -1 with the
 * failure already handled (*infra says whether it was a system error). */
static int prepare(struct sched *S, struct inst *I, char *err, size_t errlen, int *infra)
{
	const struct ir_node *n = I->node;
	struct attempt_rt *rt;
	struct store_attempt a = {0};
	struct sctx c = {S, I, 0, NULL, NULL};
	char buf[4096], *indir = NULL;
	size_t i;
	json_object *paths = NULL;
	int rc = -1, ready = 0;

	*infra = 1;
	rt = calloc(1, sizeof *rt);
	if (!rt) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	I->rt = rt;
	I->attempt++;
	rt->work = attempt_path(S, "work", I->name, I->attempt, "");
	rt->out_path = attempt_path(S, "logs", I->name, I->attempt, ".stdout");
	rt->err_path = attempt_path(S, "logs", I->name, I->attempt, ".stderr");
	rt->outdir = rt->work ? xasprintf("%s/out", rt->work) : NULL;
	if (!rt->work || !rt->outdir || !rt->out_path || !rt->err_path) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (I->prewarm) {
		/* made ahead (empty: nothing else writes there), for this attempt or not */
		ready = !strcmp(I->prewarm, rt->work);
		if (!ready)
			recycle_later(S, I->prewarm);
		free(I->prewarm);
		I->prewarm = NULL;
	}
	if (!ready && make_work_dir(S, rt->work) < 0) {
		if (errno == ENOENT && make_run_dirs(S, err, errlen) < 0)
			return -1;
		if (errno == EEXIST)
			rm_tree(rt->work); /* left by an interrupted earlier process */
		if (mkdir(rt->work, 0755) < 0) {
			snprintf(err, errlen, "mkdir %s: %s", rt->work, strerror(errno));
			return -1;
		}
	}
	if (n->noutputs && mkdir(rt->outdir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", rt->outdir, strerror(errno));
		return -1;
	}
	rt->res.cpu_milli = n->cpu_milli;
	rt->res.memory_bytes = n->memory_bytes;
	rt->res.gpu = n->gpu;
	/* the spec's fixed parts first: path_in_step may look at them */
	rt->spec.image = n->image;
	rt->spec.scratch_dir = rt->work;
	rt->spec.output_dir = rt->outdir;
	rt->spec.res = rt->res;
	rt->spec.timeout = n->timeout;
	rt->spec.id.run_id = S->c->run_id;
	rt->spec.id.pipeline = S->c->ir->name;
	rt->spec.id.step = I->name;
	rt->spec.id.attempt = I->attempt;
	rt->spec.stdout_path = rt->out_path;
	rt->spec.stderr_path = rt->err_path;
	for (i = 0; i < n->noutputs; i++)
		if (!n->outputs[i].artifact && n->outputs[i].from == IR_FROM_STDOUT)
			rt->spec.stdout_limit = VALUE_OUTPUT_MAX;
	/* artifact inputs */
	for (i = 0; i < n->ninputs; i++)
		if (n->inputs[i].artifact)
			rt->ninputs++;
	if (rt->ninputs) {
		rt->inputs = calloc(rt->ninputs, sizeof *rt->inputs);
		indir = xasprintf("%s/in", rt->work);
		paths = json_object_new_object();
		if (!rt->inputs || !indir || !paths) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		if (mkdir(indir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", indir, strerror(errno));
			goto out;
		}
		rt->ninputs = 0;
		for (i = 0; i < n->ninputs; i++) {
			json_object *v;
			char *p;
			if (!n->inputs[i].artifact)
				continue;
			if (!json_object_object_get_ex(I->inputs, n->inputs[i].name, &v)) {
				snprintf(err, errlen, "artifact input '%s' has no value",
					 n->inputs[i].name);
				goto out;
			}
			p = xasprintf("%s/%s", indir, n->inputs[i].name);
			if (!p) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			rt->inputs[rt->ninputs].name = n->inputs[i].name;
			rt->inputs[rt->ninputs].host_path = p;
			rt->ninputs++;
			rm_tree(p); /* a previous attempt's leftovers */
			if (materialize(S, v, p, err, errlen) < 0)
				goto out;
		}
		rt->spec.inputs = rt->inputs;
		rt->spec.ninputs = rt->ninputs;
		for (i = 0; i < rt->ninputs; i++) {
			json_object *v = NULL, *list;
			size_t k, nk;
			if (S->c->ops->path_in_step(S->c->x, &rt->spec, rt->inputs[i].host_path, buf,
						    sizeof buf) < 0) {
				snprintf(err, errlen, "the executor cannot show %s to the step",
					 rt->inputs[i].host_path);
				goto out;
			}
			json_object_object_get_ex(I->inputs, rt->inputs[i].name, &v);
			if (!json_object_is_type(v, json_type_array)) {
				json_object_object_add(paths, rt->inputs[i].name,
						       json_object_new_string(buf));
				continue;
			}
			/* a collected list of artifacts: {{inputs.X}} is a JSON list of paths */
			list = json_object_new_array();
			nk = json_object_array_length(v);
			for (k = 0; list && k < nk; k++) {
				char *hp = xasprintf("%s/%zu", rt->inputs[i].host_path, k);
				if (!hp || S->c->ops->path_in_step(S->c->x, &rt->spec, hp, buf,
								   sizeof buf) < 0) {
					snprintf(err, errlen, "the executor cannot show %s to the step",
						 hp ? hp : "?");
					free(hp);
					json_object_put(list);
					goto out;
				}
				free(hp);
				json_object_array_add(list, json_object_new_string(buf));
			}
			json_object_object_add(paths, rt->inputs[i].name,
					       json_object_new_string(json_object_to_json_string_ext(
						       list, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE)));
			json_object_put(list);
		}
	}
	c.paths = paths;
	if (S->c->ops->path_in_step(S->c->x, &rt->spec, rt->outdir, buf, sizeof buf) < 0) {
		snprintf(err, errlen, "the executor cannot show %s to the step", rt->outdir);
		goto out;
	}
	c.outdir = buf;
	*infra = 0; /* from here on a failure is the step's own (a template problem) */
	if (n->command) {
		rt->argv = calloc(n->ncommand + 1, sizeof *rt->argv);
		if (!rt->argv) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		for (i = 0; i < n->ncommand; i++) {
			if (!(rt->argv[i] = expand(&c, n->command[i], err, errlen)))
				goto out;
			rt->argc++;
		}
	} else {
		char *text, *host, inside[4096];
		host = xasprintf("%s/script", rt->work);
		text = expand(&c, n->script ? n->script : "", err, errlen);
		if (!host || !text) {
			free(host);
			free(text);
			goto out;
		}
		*infra = 1;
		if (write_file(host, text, err, errlen) < 0 ||
		    S->c->ops->path_in_step(S->c->x, &rt->spec, host, inside, sizeof inside) < 0) {
			if (!*err)
				snprintf(err, errlen, "cannot place the script");
			free(host);
			free(text);
			goto out;
		}
		free(host);
		free(text);
		rt->argv = calloc(n->ninterp + 2, sizeof *rt->argv);
		if (!rt->argv) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		for (i = 0; i < n->ninterp; i++)
			rt->argv[rt->argc++] = strdup(!strcmp(n->interp[i], "python") && i == 0
							      ? "python3"
							      : n->interp[i]);
		rt->argv[rt->argc++] = strdup(inside);
		*infra = 0;
	}
	rt->spec.argv = rt->argv;
	rt->spec.argc = rt->argc;
	if (n->nenv) {
		rt->env = calloc(n->nenv, sizeof *rt->env);
		if (!rt->env) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		for (i = 0; i < n->nenv; i++) {
			rt->env[i].name = n->env[i].name;
			if (n->env[i].secret) {
				char var[256];
				const char *sv = secret_value(n->env[i].secret, var, sizeof var);
				if (!sv) {
					snprintf(err, errlen, "secret '%s' is not set (set %s in the "
						 "environment of kfpc)", n->env[i].secret, var);
					goto out;
				}
				rt->env[i].value = strdup(sv);
				rt->env[i].secret = 1;
			} else if (!(rt->env[i].value = expand(&c, n->env[i].value, err, errlen))) {
				goto out;
			}
			rt->nenv++;
		}
		rt->spec.env = rt->env;
		rt->spec.nenv = rt->nenv;
	}
	if (n->workdir) {
		if (!(rt->workdir = expand(&c, n->workdir, err, errlen)))
			goto out;
		rt->spec.workdir = rt->workdir;
		rt->cwd_host = strdup(rt->workdir);
	} else {
		rt->cwd_host = strdup(rt->work);
	}
	if (n->nvolumes) {
		rt->vols = calloc(n->nvolumes, sizeof *rt->vols);
		for (i = 0; rt->vols && i < n->nvolumes; i++) {
			rt->vols[i].name = n->volumes[i].name;
			rt->vols[i].mount = n->volumes[i].mount;
			rt->vols[i].readonly = n->volumes[i].readonly;
		}
		rt->spec.volumes = rt->vols;
		rt->spec.nvolumes = rt->vols ? n->nvolumes : 0;
	}
	if (n->nlabels) {
		rt->labels = calloc(n->nlabels, sizeof *rt->labels);
		for (i = 0; rt->labels && i < n->nlabels; i++) {
			rt->labels[i].key = n->labels[i].key;
			rt->labels[i].value = n->labels[i].value;
		}
		rt->spec.labels = rt->labels;
		rt->spec.nlabels = rt->labels ? n->nlabels : 0;
	}
	/* the attempt, recorded as running before it is spawned */
	a.number = I->attempt;
	a.started = store_now();
	a.exit_code = -1;
	a.stdout_path = rt->out_path;
	a.stderr_path = rt->err_path;
	a.executor = (char *)S->c->executor;
	{
		struct store_attempt *na = realloc(I->atts, (I->natts + 1) * sizeof *na);
		if (!na) {
			snprintf(err, errlen, "out of memory");
			*infra = 1;
			goto out;
		}
		I->atts = na;
		na[I->natts] = a;
		na[I->natts].stdout_path = strdup(rt->out_path);
		na[I->natts].stderr_path = strdup(rt->err_path);
		na[I->natts].executor = strdup(S->c->executor);
		I->natts++;
	}
	if (!I->started)
		I->started = a.started;
	set_state(S, I, STORE_STEP_RUNNING);
	I->phase = PH_RUNNING;
	rec(S, I);
	rc = 0;
out:
	free(indir);
	json_object_put(paths);
	return rc;
}

/* Reads a value output of at most VALUE_OUTPUT_MAX bytes. Returns a malloc'd buffer and its
 * length, or NULL with the reason in err. */
static char *read_value(const char *path, const char *what, int missing_ok, size_t *len,
			char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *buf;
	size_t off = 0;
	ssize_t r;

	if (fd < 0 && errno == ENOENT && missing_ok) {
		*len = 0;
		return strdup(""); /* a log file is created at the first byte: none means empty */
	}
	if (fd < 0) {
		if (errno == ENOENT)
			snprintf(err, errlen, "the step did not write %s (expected at %s)", what, path);
		else
			snprintf(err, errlen, "cannot read %s at %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s at %s is not a regular file", what, path);
		close(fd);
		return NULL;
	}
	if (st.st_size > VALUE_OUTPUT_MAX) {
		snprintf(err, errlen, "%s is %lld bytes, more than the 1 MiB limit of a value output",
			 what, (long long)st.st_size);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 2);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	for (;;) {
		r = read(fd, buf + off, (size_t)st.st_size + 1 - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
		if (off > (size_t)st.st_size)
			break;
	}
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s at %s: %s", what, path, strerror(errno));
		free(buf);
		return NULL;
	}
	if (off > VALUE_OUTPUT_MAX) {
		snprintf(err, errlen, "%s is more than the 1 MiB limit of a value output", what);
		free(buf);
		return NULL;
	}
	buf[off] = 0;
	*len = off;
	return buf;
}

/* Collect I's outputs after a successful exit. Returns 0, or a fail kind with the reason. */
static int collect_outputs(struct sched *S, struct inst *I, char *err, size_t errlen)
{
	const struct ir_node *n = I->node;
	struct attempt_rt *rt = I->rt;
	json_object *outs = json_object_new_object();
	struct stat st;
	size_t i;
	int need_outdir = 0;

	if (!outs) {
		snprintf(err, errlen, "out of memory");
		return STORE_FAIL_INFRA;
	}
	for (i = 0; i < n->noutputs; i++)
		if (n->outputs[i].artifact || n->outputs[i].from == IR_FROM_PATH)
			need_outdir = 1;
	if (need_outdir && (stat(rt->outdir, &st) < 0 || !S_ISDIR(st.st_mode))) {
		snprintf(err, errlen, "the step deleted its output directory %s", rt->outdir);
		json_object_put(outs);
		return STORE_FAIL_ERROR;
	}
	for (i = 0; i < n->noutputs; i++) {
		const struct ir_io *io = &n->outputs[i];
		char what[256], *path, *text, e2[300];
		size_t len = 0;
		json_object *v;

		snprintf(what, sizeof what, "output '%s'", io->name);
		if (io->artifact) {
			char digest[ART_DIGEST_SIZE];
			enum art_kind kind;
			uint64_t size = 0;
			int rc;
			struct store_art a = {0};

			path = xasprintf("%s/%s", rt->outdir, io->name);
			if (!path)
				goto nomem;
			rc = art_ingest(S->c->art, path, 0, digest, &kind, &size);
			if (rc == ART_ENOENT) {
				snprintf(err, errlen, "the step did not produce artifact output '%s' "
					 "(expected at %s)", io->name, path);
				free(path);
				json_object_put(outs);
				return STORE_FAIL_ERROR;
			}
			free(path);
			if (rc != ART_OK) {
				snprintf(err, errlen, "artifact output '%s': %s", io->name,
					 art_errmsg(S->c->art));
				json_object_put(outs);
				return rc == ART_EINVAL ? STORE_FAIL_ERROR : STORE_FAIL_INFRA;
			}
			a.digest = digest;
			a.kind = (char *)art_kind_name(kind);
			a.type = (char *)io->type;
			a.size = size;
			a.run = (char *)S->c->run_id;
			a.step = I->name;
			a.output = (char *)io->name;
			a.created = store_now();
			if (store_art_put(S->c->st, &a) < 0)
				store_fail(S, "recording an artifact");
			json_object_object_add(outs, io->name,
					       value_new_artifact(digest, art_kind_name(kind), io->type));
			continue;
		}
		if (io->from == IR_FROM_STDOUT)
			path = strdup(rt->out_path);
		else if (io->from == IR_FROM_FILE)
			path = xasprintf("%s/%s", rt->cwd_host, io->path);
		else
			path = xasprintf("%s/%s", rt->outdir, io->name);
		if (!path)
			goto nomem;
		text = read_value(path, what, io->from == IR_FROM_STDOUT, &len, err, errlen);
		free(path);
		if (!text) {
			json_object_put(outs);
			return STORE_FAIL_ERROR;
		}
		v = value_parse(text, len, io->type, 1, e2, sizeof e2);
		free(text);
		if (!v) {
			snprintf(err, errlen, "output '%s': %s", io->name, e2);
			json_object_put(outs);
			return STORE_FAIL_ERROR;
		}
		json_object_object_add(outs, io->name, v);
	}
	json_object_put(I->outs);
	I->outs = outs;
	return STORE_FAIL_NONE;
nomem:
	snprintf(err, errlen, "out of memory");
	json_object_put(outs);
	return STORE_FAIL_INFRA;
}

static void running_remove(struct sched *S, struct inst *I)
{
	struct attempt_rt *rt = I->rt;
	size_t k = rt->ridx;

	if (k < S->nrunning && S->running[k] == I) {
		S->running[k] = S->running[--S->nrunning];
		if (k < S->nrunning)
			S->running[k]->rt->ridx = k;
	}
	S->used.cpu_milli -= rt->res.cpu_milli;
	S->used.memory_bytes -= rt->res.memory_bytes;
	S->used.gpu -= rt->res.gpu;
}

static const unsigned kind_bits[] = {
	[STORE_FAIL_ERROR] = IR_RETRY_ERROR, [STORE_FAIL_TIMEOUT] = IR_RETRY_TIMEOUT,
	[STORE_FAIL_OOM] = IR_RETRY_OOM, [STORE_FAIL_INFRA] = IR_RETRY_INFRA,
};

/* The end of an attempt (also a failed prepare or spawn, with rt->job NULL). */
static void attempt_end(struct sched *S, struct inst *I, const struct exec_result *res)
{
	struct attempt_rt *rt = I->rt;
	struct store_attempt *a = I->natts ? &I->atts[I->natts - 1] : NULL;
	char reason[1024] = "";
	int kind = STORE_FAIL_NONE, cancelled = 0;

	if (rt->user_cancel && !rt->timed_out) {
		cancelled = 1;
		snprintf(reason, sizeof reason, "cancelled");
	} else if (rt->timed_out) {
		kind = STORE_FAIL_TIMEOUT;
		snprintf(reason, sizeof reason, "timed out after %gs", I->node->timeout);
	} else if (res->infra) {
		kind = STORE_FAIL_INFRA;
		snprintf(reason, sizeof reason, "%s", res->msg[0] ? res->msg : "executor error");
	} else if (res->oom) {
		kind = STORE_FAIL_OOM;
		snprintf(reason, sizeof reason, "out of memory");
	} else if (res->timeout) {
		kind = STORE_FAIL_TIMEOUT;
		snprintf(reason, sizeof reason, "timed out");
	} else if (res->stdout_cut) {
		size_t i;
		const char *name = "?";
		for (i = 0; i < I->node->noutputs; i++)
			if (!I->node->outputs[i].artifact &&
			    I->node->outputs[i].from == IR_FROM_STDOUT)
				name = I->node->outputs[i].name;
		kind = STORE_FAIL_ERROR;
		snprintf(reason, sizeof reason, "output '%s' is more than the 1 MiB limit of a value "
			 "output (from stdout): the step was stopped", name);
	} else if (res->signal) {
		kind = STORE_FAIL_ERROR;
		snprintf(reason, sizeof reason, "killed by signal %d (%s)", res->signal,
			 strsignal(res->signal));
	} else if (res->exit_code != 0) {
		kind = STORE_FAIL_ERROR;
		snprintf(reason, sizeof reason, "exit code %d", res->exit_code);
	} else {
		kind = collect_outputs(S, I, reason, sizeof reason);
	}
	if (a) {
		a->finished = res->finished > 0 ? res->finished : store_now();
		if (res->started > 0)
			a->started = res->started;
		a->exit_code = res->infra || res->signal ? -1 : res->exit_code;
		a->signal = res->signal;
		a->fail = kind;
		free(a->reason);
		a->reason = reason[0] ? strdup(reason) : NULL;
	}
	if (rt->job)
		S->c->ops->release(S->c->x, rt->job);
	rt->job = NULL;
	if (I->phase == PH_RUNNING)
		running_remove(S, I);
	if (kind == STORE_FAIL_NONE && !cancelled && rt->work)
		recycle_later(S, rt->work);
	else if (rt->outdir)
		rm_tree(rt->outdir); /* partial outputs are useless (and may fill the disk); the
					rest of the work dir and the logs stay for debugging */
	rt_free(rt);
	I->rt = NULL;
	if (cancelled) {
		inst_done(S, I, STORE_STEP_CANCELLED, strdup(reason));
		return;
	}
	if (kind != STORE_FAIL_NONE) {
		if ((I->node->retry_on & kind_bits[kind]) && I->nfail < I->node->retry_limit &&
		    !S->cancel) {
			double delay = I->node->backoff * pow(I->node->factor > 0 ? I->node->factor : 1,
							      I->nfail);
			if (I->node->max_backoff > 0 && delay > I->node->max_backoff)
				delay = I->node->max_backoff;
			I->nfail++;
			I->phase = PH_RETRY;
			set_state(S, I, STORE_STEP_PENDING);
			I->retry_at = mono() + delay;
			set_reason(I, strdup(reason));
			if (grow((void **)&S->retrying, &S->capretrying, S->nretrying,
				 sizeof *S->retrying) < 0) {
				oom(S);
				return;
			}
			S->retrying[S->nretrying++] = I;
			rec(S, I);
			report(S, I, 'r');
			return;
		}
		inst_done(S, I, STORE_STEP_FAILED, strdup(reason));
		return;
	}
	set_reason(I, NULL);
	inst_done(S, I, STORE_STEP_SUCCEEDED, NULL);
	/* a step without outputs is never served from the cache (step_ready): no entry */
	if (I->cache_key && I->node->noutputs) {
		struct store_cache c = {0};
		struct store_artref arts[64];
		json_object *vals = json_object_new_object();
		size_t i;
		c.key = I->cache_key;
		c.created = store_now();
		c.run = (char *)S->c->run_id;
		c.step = I->name;
		for (i = 0; i < I->node->noutputs && c.narts < 64; i++) {
			const struct ir_io *io = &I->node->outputs[i];
			json_object *v;
			if (!I->outs || !json_object_object_get_ex(I->outs, io->name, &v))
				continue;
			if (io->artifact) {
				arts[c.narts].name = (char *)io->name;
				arts[c.narts].digest = (char *)value_artifact_digest(v, NULL);
				c.narts++;
			} else if (vals) {
				json_object_object_add(vals, io->name, json_object_get(v));
			}
		}
		c.arts = arts;
		c.outputs = vals;
		if (store_cache_put(S->c->st, &c) < 0)
			store_fail(S, "recording a cache entry");
		json_object_put(vals);
	}
}

/* Start what fits into the free slots: prepare and record now, spawn after the commit. */
static void schedule(struct sched *S)
{
	struct inst **pp = &S->xq_head, *I, *prev = NULL;
	char err[1024];
	int infra;

	while ((I = *pp) && S->nrunning < S->limit && !S->store_failed) {
		struct exec_resources r = {I->node->cpu_milli, I->node->memory_bytes, I->node->gpu};
		if (!res_fits(S, &r)) {
			prev = I;
			pp = &I->qnext;
			continue;
		}
		*pp = I->qnext;
		if (S->xq_tail == I)
			S->xq_tail = prev;
		I->qnext = NULL;
		if (grow((void **)&S->running, &S->caprunning, S->nrunning, sizeof *S->running) < 0 ||
		    grow((void **)&S->starting, &S->capstarting, S->nstarting,
			 sizeof *S->starting) < 0) {
			oom(S);
			return;
		}
		err[0] = 0;
		if (prepare(S, I, err, sizeof err, &infra) < 0) {
			/* nothing was spawned: the step fails with the reason (no retry) */
			rt_free(I->rt);
			I->rt = NULL;
			if (infra && !S->store_failed)
				progress_message(S->c->prog, "%s: cannot start: %s", I->name, err);
			inst_done(S, I, STORE_STEP_FAILED, strdup(err));
			continue;
		}
		I->rt->ridx = S->nrunning;
		S->running[S->nrunning++] = I;
		S->used.cpu_milli += r.cpu_milli;
		S->used.memory_bytes += r.memory_bytes;
		S->used.gpu += r.gpu;
		S->starting[S->nstarting++] = I;
	}
}

static void spawn_all(struct sched *S)
{
	size_t k;
	char err[512];

	for (k = 0; k < S->nstarting; k++) {
		struct inst *I = S->starting[k];
		struct attempt_rt *rt = I->rt;
		struct exec_job *job = NULL;

		if (!rt || I->phase != PH_RUNNING)
			continue;
		err[0] = 0;
		if (S->c->ops->start(S->c->x, &rt->spec, I, &job, err, sizeof err) < 0 || !job) {
			struct exec_result res = {0};
			res.infra = 1;
			res.exit_code = -1;
			snprintf(res.msg, sizeof res.msg, "%.*s", (int)sizeof res.msg - 1, err[0] ? err : "the executor failed");
			rt_free_spec(rt);
			attempt_end(S, I, &res);
			continue;
		}
		rt_free_spec(rt);
		rt->job = job;
		rt->t0 = mono();
		if (I->node->timeout > 0)
			rt->deadline = rt->t0 + I->node->timeout;
		if ((S->cancel >= 2 || (S->cancel && !I->scope->is_fin)) && !rt->user_cancel) {
			/* cancelled between prepare and spawn */
			rt->user_cancel = 1;
			rt->kill_at = rt->t0 + KILL_GRACE;
			S->c->ops->cancel(S->c->x, job, S->cancel >= 2 ? EXEC_CANCEL_KILL
								       : EXEC_CANCEL_TERM,
					  err, sizeof err);
		}
		if (I->natts) {
			free(I->atts[I->natts - 1].handle);
			I->atts[I->natts - 1].handle = strdup(job->handle);
		}
		if (I->node->nusers && grow((void **)&S->spawned, &S->capspawned, S->nspawned,
					    sizeof *S->spawned) == 0)
			S->spawned[S->nspawned++] = I;
		/* the handle is recorded with the attempt's next record (see the top) */
		if (grow((void **)&S->hq, &S->caphq, S->nhq, sizeof *S->hq) < 0) {
			rec(S, I);
			report(S, I, 's');
			continue;
		}
		if (!S->nhq)
			S->hq_since = mono();
		S->hq[S->nhq++] = I;
		I->hpending = 1;
	}
	S->nstarting = 0;
}

/* Record the handles still pending (in the open batch). */
static void flush_handles(struct sched *S)
{
	for (size_t k = 0; k < S->nhq; k++)
		if (S->hq[k]->hpending)
			rec(S, S->hq[k]);
	S->nhq = 0;
}

/* ---- cancel, timers, signals ---------------------------------------------------------- */

/* Stop running attempts: all of them with EXEC_CANCEL_KILL, else all but exit handlers
 * (a graceful cancel lets running exit handlers finish). */
static void cancel_running(struct sched *S, int how)
{
	size_t k;
	char err[256];
	double now = mono();

	for (k = 0; k < S->nrunning; k++) {
		struct attempt_rt *rt = S->running[k]->rt;
		if (!rt || !rt->job)
			continue;
		if (how != EXEC_CANCEL_KILL && S->running[k]->scope->is_fin)
			continue;
		if (!rt->timed_out)
			rt->user_cancel = 1;
		if (!rt->kill_at || how == EXEC_CANCEL_KILL)
			rt->kill_at = how == EXEC_CANCEL_KILL ? 0 : now + KILL_GRACE;
		S->c->ops->cancel(S->c->x, rt->job, (enum exec_cancel)how, err, sizeof err);
	}
}

static void start_cancel(struct sched *S, int level, const char *why)
{
	size_t s, i;

	if (level <= S->cancel)
		return;
	S->cancel = level;
	if (!S->cancel_why)
		S->cancel_why = why;
	progress_message(S->c->prog, level >= 2 ? "%s: stopping at once" :
						 "%s: cancelling (running steps are stopped, exit "
						 "handlers still run; press Ctrl-C again to stop at once)",
			 why);
	cancel_running(S, level >= 2 ? EXEC_CANCEL_KILL : EXEC_CANCEL_TERM);
	/* pending work is cancelled now (finally scopes keep theirs unless stopping at once) */
	for (s = 0; s < S->nscopes; s++) {
		struct scope *sc = S->scopes[s];
		if (sc->is_fin && level < 2)
			continue;
		for (i = 0; sc->insts && i < sc->body->n; i++) {
			struct inst *I = &sc->insts[i];
			if (I->phase == PH_WAIT)
				inst_done(S, I, STORE_STEP_CANCELLED, strdup("run cancelled"));
		}
	}
	/* queued ones are cancelled when they are taken off the ready queue (decide) */
	{
		struct inst *I = S->xq_head, *nx;
		S->xq_head = S->xq_tail = NULL;
		for (; I; I = nx) {
			nx = I->qnext;
			I->qnext = NULL;
			if (I->scope->is_fin && level < 2)
				enqueue_runnable(S, I);
			else
				inst_done(S, I, STORE_STEP_CANCELLED, strdup("run cancelled"));
		}
	}
	for (i = 0; i < S->nretrying;) {
		struct inst *I = S->retrying[i];
		if (I->scope->is_fin && level < 2) {
			i++;
			continue;
		}
		S->retrying[i] = S->retrying[--S->nretrying];
		inst_done(S, I, STORE_STEP_CANCELLED, strdup("run cancelled"));
	}
}

/* Fire due timers; returns the ms until the next one (-1: none). */
static int timers(struct sched *S)
{
	double now = mono(), next = -1;
	size_t k;
	char err[256];

#define NEXT(t) do { if ((t) > 0 && (next < 0 || (t) < next)) next = (t); } while (0)
	if (S->run_deadline > 0 && !S->timed_out) {
		if (now >= S->run_deadline) {
			S->timed_out = 1;
			start_cancel(S, 1, "pipeline timeout");
		} else {
			NEXT(S->run_deadline);
		}
	}
	for (k = 0; k < S->nrunning; k++) {
		struct inst *I = S->running[k];
		struct attempt_rt *rt = I->rt;
		if (!rt || !rt->job)
			continue;
		if (rt->deadline > 0 && !rt->timed_out && !rt->user_cancel) {
			if (now >= rt->deadline) {
				rt->timed_out = 1;
				rt->kill_at = now + KILL_GRACE;
				S->c->ops->cancel(S->c->x, rt->job, EXEC_CANCEL_TERM, err, sizeof err);
			} else {
				NEXT(rt->deadline);
			}
		}
		if (rt->kill_at > 0) {
			if (now >= rt->kill_at) {
				rt->kill_at = -1; /* sent */
				S->c->ops->cancel(S->c->x, rt->job, EXEC_CANCEL_KILL, err, sizeof err);
			} else {
				NEXT(rt->kill_at);
			}
		}
	}
	for (k = 0; k < S->nretrying;) {
		struct inst *I = S->retrying[k];
		if (now >= I->retry_at) {
			S->retrying[k] = S->retrying[--S->nretrying];
			enqueue_runnable(S, I);
			continue;
		}
		NEXT(I->retry_at);
		k++;
	}
#undef NEXT
	if (next < 0)
		return -1;
	return (int)((next - now) * 1000) + 1;
}

static int reap_all(struct sched *S)
{
	struct exec_job *job;
	struct exec_result res;
	char err[512];
	int n = 0, rc;

	for (;;) {
		memset(&res, 0, sizeof res);
		rc = S->c->ops->reap(S->c->x, &job, &res, err, sizeof err);
		if (rc <= 0)
			break;
		n++;
		attempt_end(S, (struct inst *)job->udata, &res);
	}
	return n;
}

static void read_signals(struct sched *S)
{
	struct signalfd_siginfo si;

	while (read(S->sfd, &si, sizeof si) == sizeof si) {
		const char *why = si.ssi_signo == SIGINT ? "interrupted (SIGINT)"
				  : si.ssi_signo == SIGTERM ? "terminated (SIGTERM)"
							      : "hung up (SIGHUP)";
		start_cancel(S, S->cancel ? 2 : 1, why);
	}
}

/* ---- the loop -------------------------------------------------------------------------- */

static int process_ready(struct sched *S)
{
	struct inst *I;
	int n = 0;

	while ((I = S->rq_head) && !S->store_failed) {
		S->rq_head = I->qnext;
		if (!S->rq_head)
			S->rq_tail = NULL;
		I->qnext = NULL;
		decide(S, I);
		n++;
	}
	return n;
}

static void load_resume(struct sched *S)
{
	size_t i;

	if (store_step_list(S->c->st, S->c->run_id, &S->rsteps, &S->nrsteps) < 0) {
		store_fail(S, "loading the run's steps");
		return;
	}
	S->resume = lh_kchar_table_new((int)(S->nrsteps * 2 + 16), NULL);
	if (!S->resume) {
		oom(S);
		return;
	}
	for (i = 0; i < S->nrsteps; i++)
		lh_table_insert(S->resume, S->rsteps[i]->id, S->rsteps[i]);
}

int sched_run(const struct sched_config *cfg, struct sched_result *r)
{
	struct sched S0 = {0}, *S = &S0;
	sigset_t set;
	struct pollfd pfd[2];
	char err[512];
	int xfd, progress_made = 1, timeout, t, early = cfg->ops->sweep != NULL;
	size_t k;

	memset(r, 0, sizeof *r);
	S->c = cfg;
	S->limit = cfg->parallelism > 0 ? (size_t)cfg->parallelism : 1;
	if (cfg->ir->parallelism > 0 && (size_t)cfg->ir->parallelism < S->limit)
		S->limit = (size_t)cfg->ir->parallelism;
	if (cfg->ops->capacity(cfg->x, &S->cap, err, sizeof err) < 0) {
		snprintf(r->reason, sizeof r->reason, "executor: %.500s", err);
		return -1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, &S->oldmask) < 0) {
		snprintf(r->reason, sizeof r->reason, "sigprocmask: %s", strerror(errno));
		return -1;
	}
	S->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (S->sfd < 0) {
		snprintf(r->reason, sizeof r->reason, "signalfd: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &S->oldmask, NULL);
		return -1;
	}
	if (cfg->ir->timeout > 0) {
		double elapsed = cfg->run_started > 0 ? store_now() - cfg->run_started : 0;
		S->run_deadline = mono() + (cfg->ir->timeout - (elapsed > 0 ? elapsed : 0));
	}
	if (cfg->resume && early && cfg->ops->sweep(cfg->x, cfg->run_id, err, sizeof err) < 0) {
		snprintf(r->reason, sizeof r->reason, "executor: %.500s", err);
		close(S->sfd);
		sigprocmask(SIG_SETMASK, &S->oldmask, NULL);
		return -1;
	}
	if (cfg->resume)
		load_resume(S);

	batch_begin(S);
	S->root = scope_new(S, NULL, &cfg->ir->body, NULL, strdup(""), json_object_get(cfg->params),
			    NULL, 0);
	if (S->root && cfg->ir->body.n == 0)
		scope_complete(S, S->root);

	while (!S->store_failed) {
		read_signals(S);
		progress_made = reap_all(S);
		timeout = timers(S);
		if (S->nhq) {
			double due = S->hq_since + HANDLE_DELAY - mono();
			if (due <= 0) {
				flush_handles(S);
			} else {
				int ms = (int)(due * 1000) + 1;
				if (timeout < 0 || ms < timeout)
					timeout = ms;
			}
		}
		progress_made += process_ready(S);
		schedule(S);
		if (early) {
			/* spawn, then commit what the round recorded (the attempts included), or
			 * what the last COMMIT_WINDOW of rounds recorded */
			progress_made += (int)S->nstarting;
			spawn_all(S);
		}
		if (!early || S->done || mono() - S->committed_at >= COMMIT_WINDOW) {
			batch_commit(S);
			if (S->store_failed)
				break;
			batch_begin(S);
			S->committed_at = mono();
		} else {
			/* the round is a part of the batch: a full store still takes the rounds
			 * before the one that does not fit */
			store_batch_mark(cfg->st);
		}
		if (!early) {
			progress_made += (int)S->nstarting;
			spawn_all(S);
		}
		publish(S);
		recycle_all(S);
		prewarm_users(S);
		if (S->done && !S->nrunning)
			break;
		if (progress_made || S->rq_head)
			continue;
		/* nothing to do until a child ends, a timer fires or a signal comes */
		t = progress_tick(cfg->prog);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		if (early && store_batch_pending(cfg->st)) {
			/* records wait for company at most COMMIT_WINDOW */
			double due = S->committed_at + COMMIT_WINDOW - mono();
			int ms = due > 0 ? (int)(due * 1000) + 1 : 0;
			if (ms == 0)
				continue;
			if (timeout < 0 || ms < timeout)
				timeout = ms;
		}
		if (store_sync_if_due(cfg->st) == 0 && S->nrunning) {
			if (timeout < 0 || timeout > 1100)
				timeout = 1100; /* keep the sync window about a second */
		}
		xfd = cfg->ops->fd(cfg->x);
		pfd[0].fd = xfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = S->sfd;
		pfd[1].events = POLLIN;
		if (xfd < 0 && S->nrunning && (timeout < 0 || timeout > 50))
			timeout = 50;
		if (!S->nrunning && !S->nretrying && !S->xq_head && !S->rq_head && !S->done &&
		    timeout < 0) {
			/* cannot happen with a valid IR: report instead of hanging */
			S->store_failed = 1;
			snprintf(S->store_msg, sizeof S->store_msg,
				 "internal error: the scheduler has nothing to wait for");
			break;
		}
		poll(pfd, 2, timeout);
	}
	flush_handles(S);
	batch_commit(S);
	publish(S);
	recycle_all(S);
	if (S->store_failed) {
		/* stop everything we started, collect it, and report the store failure */
		double until = mono() + 10;
		cancel_running(S, EXEC_CANCEL_KILL);
		while (S->nrunning && mono() < until) {
			if (!reap_all(S)) {
				pfd[0].fd = cfg->ops->fd(cfg->x);
				pfd[0].events = POLLIN;
				poll(pfd, 1, 100);
			}
		}
		r->store_error = 1;
		r->status = STORE_RUN_FAILED;
		snprintf(r->reason, sizeof r->reason, "%.1000s", S->store_msg);
	} else {
		r->status = S->status;
		snprintf(r->reason, sizeof r->reason, "%.1000s", S->reason);
		/* pipeline outputs: absent when their source did not succeed */
		r->outputs = json_object_new_object();
		for (k = 0; r->outputs && k < cfg->ir->noutputs; k++) {
			int st;
			json_object *v = eval(S, S->root, cfg->ir->outputs[k].value, &st, err,
					      sizeof err);
			if (!st && v)
				json_object_object_add(r->outputs, cfg->ir->outputs[k].name, v);
		}
	}
	progress_end(cfg->prog);
	recycle_all(S);
	for (k = 0; k < S->nspare; k++) {
		cleanup(S, S->spare[k]);
		free(S->spare[k]);
	}
	free(S->spare);
	free(S->useddirs);
	for (k = 0; k < S->nscopes; k++)
		for (size_t i = 0; S->scopes[k]->insts && i < S->scopes[k]->body->n; i++)
			if (S->scopes[k]->insts[i].prewarm)
				cleanup(S, S->scopes[k]->insts[i].prewarm);
	free(S->spawned);
	cleaner_stop(S->cleaner);
	close(S->sfd);
	sigprocmask(SIG_SETMASK, &S->oldmask, NULL);
	for (k = 0; k < S->nscopes; k++)
		scope_free(S->scopes[k]);
	free(S->scopes);
	free(S->running);
	free(S->retrying);
	free(S->starting);
	free(S->hq);
	free(S->settled);
	free(S->reports);
	free(S->first_failed);
	free(S->first_failed_why);
	if (S->resume)
		lh_table_free(S->resume);
	store_step_list_free(S->rsteps, S->nrsteps);
	return 0;
}

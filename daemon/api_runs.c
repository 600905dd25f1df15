/* api_runs.c - runs, step logs, artifacts and lineage of a namespace.
 *
 * A run of another namespace is answered exactly like a run that does not exist (404). An
 * artifact is visible to a namespace when one of the namespace's runs produced or consumed it;
 * lineage answers list only the namespace's own runs. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "art.h"
#include "db.h"
#include "store.h"

extern char **environ;

/* the artifact store (art.h handles are not thread-safe: one, under art_lock) */
static pthread_mutex_t art_lock = PTHREAD_MUTEX_INITIALIZER;
static struct art *cas;

/* Returns 1 if run RUN belongs to namespace NS. */
static int run_in_ns(struct kfpd *k, const char *run, const char *ns);

struct prefix_ctx {
	char id[256];
	int n;
};

static int prefix_one(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct prefix_ctx *c = ctx;
	const char *slash = memchr(key, '/', klen);

	(void)val, (void)vlen;
	if (!slash || (size_t)(key + klen - slash - 1) >= sizeof c->id)
		return 0;
	if (c->n++ == 0)
		snprintf(c->id, sizeof c->id, "%.*s", (int)(key + klen - slash - 1), slash + 1);
	return c->n > 1; /* two are enough to be ambiguous */
}

/* Loads run ID (r->arg[0], or a unique prefix of a run id of the caller's namespace, like the
 * local CLI accepts: r->arg[0] then names the full id) of the caller's namespace, or replies
 * 404 (400 for an ambiguous prefix) and returns NULL. */
static json_object *load_own(struct req *r, const char *id)
{
	json_object *run;
	struct prefix_ctx pc = {"", 0};
	char prefix[400];

	if (strlen(id) > STORE_ID_MAX)
		goto nf;
	if (db_get(r->k->db, NULL, DB_RUNS, id, &run)) {
		if (strlen(id) < 2 || strchr(id, '/') || id[0] == '#' || id != r->arg[0])
			goto nf;
		snprintf(prefix, sizeof prefix, "%s/%s", r->ns, id);
		if (db_scan(r->k->db, NULL, DB_NSRUNS, prefix, NULL, 0, prefix_one, &pc) || !pc.n)
			goto nf;
		if (pc.n > 1) {
			http_reply_error(r, 400, "run id prefix '%s' is ambiguous", id);
			return NULL;
		}
		if (db_get(r->k->db, NULL, DB_RUNS, pc.id, &run))
			goto nf;
		snprintf(r->idbuf, sizeof r->idbuf, "%s", pc.id);
		r->arg[0] = r->idbuf;
	}
	if (strcmp(js_str(run, "namespace", ""), r->ns)) {
		json_object_put(run);
		goto nf;
	}
	return run;
nf:
	http_reply_error(r, 404, "no run '%s'", id);
	return NULL;
}

/* The public view of a run record: internal members removed (in place). */
static json_object *run_view(json_object *run)
{
	json_object *c;

	if (json_object_object_get_ex(run, "cancel", &c)) {
		json_object_object_add(run, "cancel_requested",
				       json_object_new_boolean(json_object_get_boolean(c)));
		json_object_object_del(run, "cancel");
	}
	json_object_object_del(run, "pid");
	json_object_object_del(run, "spawns");
	json_object_object_del(run, "cancel_reason");
	json_object_object_del(run, "seq");
	return run;
}

/* Answers a committed creation P (consumed): 201 with the run. */
static int create_reply(struct req *r, struct new_run *p)
{
	json_object *run;
	char err[512];
	int rc = runs_create_finish(p, &run, err, sizeof err);

	if (rc)
		return http_reply_error(r, 500, "%s", err);
	return http_reply_json(r, 201, run_view(run));
}

/* A parked creation, resumed once its commit finished. */
static int create_resumed(struct req *r)
{
	struct new_run *p = r->stream;

	r->stream = NULL;
	r->stream_free = NULL;
	return create_reply(r, p);
}

/* runs_create_async()'s PARK: suspends the request ARG until unpark_create(). */
static int park_create(void *arg)
{
	return http_park(arg, create_resumed);
}

/* runs_create_async()'s WAKE (the committing thread): create_resumed() then answers. */
static void unpark_create(void *arg)
{
	http_unpark(arg);
}

int api_run_create(struct req *r)
{
	json_object *body, *pv, *params = NULL;
	struct new_run *p;
	const char *pl;
	char ver[32], err[512];
	int rc;

	if (http_body_object(r, &body))
		return http_done(r);
	pl = js_str(body, "pipeline", NULL);
	if (!json_object_object_get_ex(body, "pipeline", &pv) || !pv) {
		json_object_put(body);
		return http_reply_error(r, 400, "\"pipeline\": required");
	}
	if (!json_object_is_type(pv, json_type_string)) {
		json_object_put(body);
		return http_reply_error(r, 400, "\"pipeline\": must be a string (a pipeline name)");
	}
	if (json_object_object_get_ex(body, "version", &pv) && pv &&
	    (!json_object_is_type(pv, json_type_int) || json_object_get_int64(pv) < 1)) {
		json_object_put(body);
		return http_reply_error(r, 400, "\"version\": must be a version number (1, 2, ...) "
					"or absent for the latest");
	}
	if (json_object_object_get_ex(body, "params", &params) && params &&
	    !json_object_is_type(params, json_type_object)) {
		json_object_put(body);
		return http_reply_error(r, 400, "\"params\": want an object");
	}
	snprintf(ver, sizeof ver, "%lld", (long long)js_int(body, "version", 0));
	if (api_pl_load_version(r->k, r->ns, pl, js_int(body, "version", 0) ? ver : NULL, &pv)) {
		rc = http_reply_error(r, 404, "no pipeline '%s'%s%s", pl,
				      js_int(body, "version", 0) ? " version " : "",
				      js_int(body, "version", 0) ? ver : "");
		json_object_put(body);
		return rc;
	}
	rc = runs_create_async(r->k, r->ns, pl, pv, params, park_create, unpark_create, r, &p, err,
			       sizeof err);
	json_object_put(pv);
	json_object_put(body);
	if (rc == 1) { /* parked behind a group commit in progress: create_resumed() answers (in
			* this connection's thread, after this call returns) */
		r->stream = p;
		r->stream_free = runs_create_abandon;
		return MHD_YES;
	}
	if (rc == -EINVAL)
		return http_reply_error(r, 400, "%s", err);
	if (rc == -EAGAIN)
		return http_reply_error(r, 503, "%s", err);
	if (rc)
		return http_reply_error(r, 500, "%s", err);
	return create_reply(r, p);
}

struct list_ctx {
	struct req *r;
	MDB_txn *txn;
	json_object *arr;
	const char *pipeline, *state, *schedule;
	int limit;
	int more;
	char last[256];
};

static int list_one(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct list_ctx *c = ctx;
	char id[256], seq[32];
	json_object *run, *ix;
	json_tokener *t;
	size_t nsl = strlen(c->r->ns) + 2; /* "NS/#" */

	if (klen <= nsl || klen - nsl >= sizeof seq || !(t = json_tokener_new()))
		return 0;
	ix = json_tokener_parse_ex(t, val, (int)vlen);
	json_tokener_free(t);
	snprintf(id, sizeof id, "%s", js_str(ix, "id", ""));
	json_object_put(ix);
	memcpy(seq, key + nsl, klen - nsl);
	seq[klen - nsl] = 0;
	if (!id[0] || db_get(c->r->k->db, c->txn, DB_RUNS, id, &run))
		return 0;
	if ((c->pipeline && strcmp(js_str(run, "pipeline", ""), c->pipeline)) ||
	    (c->state && strcmp(js_str(run, "state", ""), c->state)) ||
	    (c->schedule && strcmp(js_str(run, "schedule", ""), c->schedule))) {
		json_object_put(run);
		return 0;
	}
	if ((int)json_object_array_length(c->arr) == c->limit) {
		c->more = 1;
		json_object_put(run);
		return 1;
	}
	snprintf(c->last, sizeof c->last, "%s", seq);
	json_object_object_del(run, "params");
	json_object_array_add(c->arr, run_view(run));
	return 0;
}

int api_run_list(struct req *r)
{
	struct list_ctx c = {r, NULL, NULL, http_query(r, "pipeline"), http_query(r, "state"),
			     http_query(r, "schedule"), 50, 0, ""};
	const char *lim = http_query(r, "limit"), *cur = http_query(r, "cursor");
	char prefix[80], after[400];
	json_object *o;
	int rc;

	if (lim) {
		char *end;
		long l = strtol(lim, &end, 10);
		if (*end || l < 1 || l > 1000)
			return http_reply_error(r, 400, "\"limit\": want 1 to 1000");
		c.limit = (int)l;
	}
	if (cur && (strlen(cur) != 20 || strspn(cur, "0123456789") != 20))
		return http_reply_error(r, 400, "\"cursor\": not a cursor this server gave "
					"(next_cursor of a previous page)");
	if (c.state && !runs_state_ok(c.state))
		return http_reply_error(r, 400, "\"state\": want queued, running, succeeded, "
					"failed or cancelled, not '%.40s'", c.state);
	snprintf(prefix, sizeof prefix, "%s/#", r->ns);
	snprintf(after, sizeof after, "%s/#%s", r->ns, cur ? cur : "");
	if (db_begin(r->k->db, 0, &c.txn))
		return http_reply_error(r, 500, "database error");
	c.arr = json_object_new_array();
	rc = db_scan(r->k->db, c.txn, DB_NSRUNS, prefix, cur ? after : NULL, 1, list_one, &c);
	db_abort(c.txn);
	if (rc) {
		json_object_put(c.arr);
		return http_reply_error(r, 500, "database error");
	}
	o = json_object_new_object();
	json_object_object_add(o, "runs", c.arr);
	json_object_object_add(o, "next_cursor", c.more ? json_object_new_string(c.last) : NULL);
	return http_reply_json(r, 200, o);
}

/* Answers of GET /runs/ID (without steps), valid while runs_generation() is unchanged: a
 * poll loop (a dashboard, `kfpc show` in a watch) costs no LMDB read and no JSON work. */
#define RCACHE 256
static struct rcache_entry {
	char id[STORE_ID_MAX + 1];
	char ns[64];
	unsigned long gen;
	struct MHD_Response *resp; /* the answer, replied as is (http_reply_shared) */
} rcache[RCACHE];
static pthread_mutex_t rcache_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned rcache_slot(const char *id)
{
	unsigned h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % RCACHE;
}

int api_run_get(struct req *r)
{
	const char *steps = http_query(r, "steps");
	int with_steps = steps && strcmp(steps, "0") && strcmp(steps, "false");
	unsigned long gen = runs_generation();
	struct rcache_entry *e = &rcache[rcache_slot(r->arg[0])];
	json_object *run, *p;
	const char *s;
	size_t len;
	int ret;

	if (!with_steps) {
		pthread_mutex_lock(&rcache_lock);
		if (e->gen == gen && e->resp && !strcmp(e->id, r->arg[0])) {
			if (strcmp(e->ns, r->ns)) {
				pthread_mutex_unlock(&rcache_lock);
				return http_reply_error(r, 404, "no run '%s'", r->arg[0]);
			}
			ret = http_reply_shared(r, 200, e->resp);
			pthread_mutex_unlock(&rcache_lock);
			return ret;
		}
		pthread_mutex_unlock(&rcache_lock);
	}
	if (!(run = load_own(r, r->arg[0])))
		return http_done(r);
	if (!runs_terminal(js_str(run, "state", "")) && (p = runs_progress(r->arg[0])))
		json_object_object_add(run, "progress", p);
	if (with_steps) {
		json_object *st = runs_engine_steps(r->k, run);
		runs_engine_run(run);
		json_object_object_add(run, "steps", st ? st : json_object_new_array());
		return http_reply_json(r, 200, run_view(run));
	}
	if (runs_terminal(js_str(run, "state", "")))
		runs_engine_run(run); /* outputs, duration (the answer is cached) */
	run_view(run);
	s = json_object_to_json_string_length(run, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
					       &len);
	if (!s) {
		json_object_put(run);
		return http_reply_error(r, 500, "out of memory");
	}
	char *nb = malloc(len + 1);
	struct MHD_Response *resp = NULL;
	if (nb) {
		memcpy(nb, s, len);
		nb[len] = '\n';
		resp = http_response_new("application/json", nb, len + 1);
		free(nb);
	}
	json_object_put(run);
	if (!resp)
		return http_reply_error(r, 500, "out of memory");
	pthread_mutex_lock(&rcache_lock);
	if (e->resp)
		MHD_destroy_response(e->resp);
	e->resp = resp;
	e->gen = gen;
	snprintf(e->id, sizeof e->id, "%s", r->arg[0]);
	snprintf(e->ns, sizeof e->ns, "%s", r->ns);
	ret = http_reply_shared(r, 200, resp);
	pthread_mutex_unlock(&rcache_lock);
	return ret;
}

void api_runs_cache_free(void)
{
	size_t i;

	pthread_mutex_lock(&art_lock);
	art_close(cas);
	cas = NULL;
	pthread_mutex_unlock(&art_lock);
	pthread_mutex_lock(&rcache_lock);
	for (i = 0; i < RCACHE; i++) {
		if (rcache[i].resp)
			MHD_destroy_response(rcache[i].resp);
		rcache[i].resp = NULL;
		rcache[i].gen = 0;
	}
	pthread_mutex_unlock(&rcache_lock);
}

int api_run_cancel(struct req *r)
{
	json_object *run = load_own(r, r->arg[0]);
	int rc;

	if (!run)
		return http_done(r);
	json_object_put(run);
	char by[100];
	snprintf(by, sizeof by, "namespace %s (a %s token)", r->ns, r->role);
	rc = runs_cancel(r->k, r->arg[0], by, &run);
	if (rc == 409) {
		rc = http_reply_error(r, 409, "run '%s' already %s", r->arg[0], js_str(run, "state", ""));
		json_object_put(run);
		return rc;
	}
	if (rc)
		return http_reply_error(r, 404, "no run '%s'", r->arg[0]);
	log_kv("info", "run cancel requested", "ns", r->ns, "run", r->arg[0], NULL);
	return http_reply_json(r, 202, run_view(run));
}

int api_run_retry(struct req *r)
{
	json_object *run = load_own(r, r->arg[0]);
	int rc;

	if (!run)
		return http_done(r);
	json_object_put(run);
	rc = runs_retry(r->k, r->arg[0], &run);
	if (rc == 409) {
		rc = http_reply_error(r, 409, "run '%s' is %s: only failed or cancelled runs are retried",
				      r->arg[0], js_str(run, "state", ""));
		json_object_put(run);
		return rc;
	}
	if (rc) {
		json_object_put(run);
		return http_reply_error(r, rc == 404 ? 404 : 500, "cannot retry run '%s'", r->arg[0]);
	}
	log_kv("info", "run retry requested", "ns", r->ns, "run", r->arg[0], NULL);
	return http_reply_json(r, 202, run_view(run));
}

int api_run_delete(struct req *r)
{
	json_object *run = load_own(r, r->arg[0]);
	int rc;

	if (!run)
		return http_done(r);
	json_object_put(run);
	rc = runs_delete(r->k, r->ns, r->arg[0]);
	if (rc == 409)
		return http_reply_error(r, 409, "run '%s' is not finished: cancel it first", r->arg[0]);
	if (rc == 404)
		return http_reply_error(r, 404, "no run '%s'", r->arg[0]);
	if (rc)
		return http_reply_error(r, 500, "database error");
	log_kv("info", "run deleted", "ns", r->ns, "run", r->arg[0], NULL);
	return http_reply_json(r, 200, json_object_new_object());
}

/* ---- logs -------------------------------------------------------------------------------------- */

/* Finds the log file of STEP's attempt ATTEMPT (0: the last) of RUN. Returns a malloc'd path,
 * NULL when none yet; *DONE is set when the step instance is terminal; *FOUND when it exists. */
static char *log_path(const char *run, const char *step, int attempt, int err, int *done,
		      int *found)
{
	struct store *st = runs_estore_lock();
	struct store_step *s = NULL;
	char *p = NULL;

	*done = 0;
	*found = 0;
	if (!st)
		return NULL;
	if (store_step_get(st, run, step, &s) == 0) {
		*found = 1;
		*done = s->state != STORE_STEP_PENDING && s->state != STORE_STEP_RUNNING;
		if (s->nattempts) {
			size_t i = attempt > 0 && (size_t)attempt <= s->nattempts ? (size_t)attempt - 1
										  : s->nattempts - 1;
			const char *f = err ? s->attempts[i].stderr_path : s->attempts[i].stdout_path;
			if (f)
				p = strdup(f);
			if (attempt > 0 && (size_t)attempt < s->nattempts)
				*done = 1;
		}
	}
	runs_estore_unlock();
	store_step_free(s);
	return p;
}

/* Returns 1 if step instance STEP of RUN exists, with its number of attempts in *NATT and
 * "RUN/STEP" of the run that produced a cached result in CACHED (else ""). */
static int step_info(const char *run, const char *step, size_t *natt, char *cached, size_t n)
{
	struct store *st = runs_estore_lock();
	struct store_step *s = NULL;
	int found = 0;

	*natt = 0;
	cached[0] = 0;
	if (!st)
		return 0;
	if (store_step_get(st, run, step, &s) == 0) {
		found = 1;
		*natt = s->nattempts;
		if (s->cached_from)
			snprintf(cached, n, "%s", s->cached_from);
	}
	runs_estore_unlock();
	store_step_free(s);
	return found;
}

/* A followed log: read what is there, suspend until the loop resumes us, end when the step is.
 * SSE (Accept: text/event-stream): every line becomes an event "data: LINE", and a final
 * "event: end" closes the stream. */
struct follow {
	struct kfpd *k;
	struct MHD_Connection *conn;
	char run[STORE_ID_MAX + 1], step[STORE_ID_MAX + 1];
	int err, attempt, sse;
	char *path;
	int fd;
	off_t off;         /* file offset read so far */
	int ending;        /* the step ended: drain the file, then end */
	int ended;         /* SSE: the end event was sent */
	char pend[4096];   /* SSE: a line read but not yet ended by '\n' */
	size_t npend;
};

static void follow_free(void *cls)
{
	struct follow *f = cls;
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f);
}

/* SSE: formats the complete lines of IN (N bytes) into OUT (room for N * 8 + 8), keeping an
 * unfinished line in f->pend. FLUSH: emit the unfinished line too. Returns the bytes written. */
static size_t sse_format(struct follow *f, const char *in, size_t n, char *out, int flush)
{
	size_t o = 0, i;

	for (i = 0; i < n; i++) {
		if (in[i] != '\n' && f->npend < sizeof f->pend) {
			f->pend[f->npend++] = in[i];
			continue;
		}
		memcpy(out + o, "data: ", 6);
		memcpy(out + o + 6, f->pend, f->npend);
		o += 6 + f->npend;
		memcpy(out + o, "\n\n", 2);
		o += 2;
		f->npend = 0;
		if (in[i] != '\n')
			f->pend[f->npend++] = in[i];
	}
	if (flush && f->npend) {
		memcpy(out + o, "data: ", 6);
		memcpy(out + o + 6, f->pend, f->npend);
		o += 6 + f->npend;
		memcpy(out + o, "\n\n", 2);
		o += 2;
		f->npend = 0;
	}
	return o;
}

/* Reads new log bytes into BUF (at most MAX, formatted for SSE when asked). Returns the count,
 * 0 when nothing is new, -1 on a read error. */
static ssize_t follow_bytes(struct follow *f, char *buf, size_t max, int flush)
{
	char tmp[4096];
	ssize_t n;

	if (!f->sse) {
		n = pread(f->fd, buf, max, f->off);
		if (n > 0)
			f->off += n;
		return n;
	}
	size_t want = (max - 8 - sizeof f->pend) / 8;
	if (want > sizeof tmp)
		want = sizeof tmp;
	if (want == 0)
		return 0;
	n = pread(f->fd, tmp, want, f->off);
	if (n < 0)
		return -1;
	f->off += n;
	return (ssize_t)sse_format(f, tmp, (size_t)n, buf, flush && n == 0);
}

static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct follow *f = cls;
	ssize_t n;
	int done, found;

	(void)pos;
	if (f->ended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (f->fd < 0) {
		char *p = log_path(f->run, f->step, f->attempt, f->err, &done, &found);
		if (p) {
			free(f->path);
			f->path = p;
			f->fd = open(p, O_RDONLY | O_CLOEXEC);
		}
		if (f->fd < 0) {
			if (done || (!found && !runs_active(f->k, f->run)))
				goto end;
			goto wait;
		}
	}
	n = follow_bytes(f, buf, max, f->ending);
	if (n > 0)
		return n;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (f->ending)
		goto end;
	free(log_path(f->run, f->step, f->attempt, f->err, &done, &found));
	if (done || !runs_active(f->k, f->run)) {
		f->ending = 1; /* one more read: bytes written just before the end */
		n = follow_bytes(f, buf, max, 1);
		if (n > 0)
			return n;
		goto end;
	}
wait: {
	struct req tmp;
	memset(&tmp, 0, sizeof tmp);
	tmp.conn = f->conn;
	http_suspend(&tmp);
	return 0;
}
end:
	if (f->sse && max >= 32) {
		f->ended = 1;
		static const char end_event[] = "event: end\ndata: \n\n";
		memcpy(buf, end_event, sizeof end_event - 1);
		return (ssize_t)(sizeof end_event - 1);
	}
	return MHD_CONTENT_READER_END_OF_STREAM;
}

int api_run_logs(struct req *r)
{
	json_object *run = load_own(r, r->arg[0]);
	const char *fq = http_query(r, "follow"), *sq = http_query(r, "stream"),
		   *aq = http_query(r, "attempt");
	int follow = fq && strcmp(fq, "0") && strcmp(fq, "false");
	int err = sq && !strcmp(sq, "stderr"), attempt = 0, done, found;
	char *path, *end, erun[STORE_ID_MAX + 1], estep[STORE_ID_MAX + 1], cached[600];
	const char *via = NULL;
	size_t natt;

	if (!run)
		return http_done(r);
	json_object_put(run);
	if (sq && strcmp(sq, "stdout") && strcmp(sq, "stderr"))
		return http_reply_error(r, 400, "\"stream\": want stdout or stderr");
	if (aq) {
		long a = strtol(aq, &end, 10);
		if (!*aq || *end || a < 1 || a > 100000)
			return http_reply_error(r, 400, "\"attempt\": want an attempt number (1, 2, ...), "
						"not '%.40s'", aq);
		attempt = (int)a;
	}
	if (strlen(r->arg[1]) > STORE_ID_MAX)
		return http_reply_error(r, 404, "no step '%s' in run '%s'", r->arg[1], r->arg[0]);
	snprintf(erun, sizeof erun, "%s", r->arg[0]);
	snprintf(estep, sizeof estep, "%s", r->arg[1]);
	found = step_info(erun, estep, &natt, cached, sizeof cached);
	if (!found && (!follow || !runs_active(r->k, erun)))
		return http_reply_error(r, 404, "no step '%s' in run '%s'%s", estep, erun,
					runs_active(r->k, erun) ? " (yet)" : "");
	if (found && !natt && cached[0] && !attempt) {
		/* a cached step ran nothing: the logs of the run that produced its result (when that
		 * run is the caller's), named in X-Kfpc-Cached-From */
		char *slash = strchr(cached, '/');
		if (slash && (size_t)(slash - cached) < sizeof erun && strlen(slash + 1) < sizeof estep) {
			*slash = 0;
			if (run_in_ns(r->k, cached, r->ns)) {
				memcpy(erun, cached, strlen(cached) + 1);
				memcpy(estep, slash + 1, strlen(slash + 1) + 1);
				step_info(erun, estep, &natt, cached, sizeof cached);
				via = cached;
				snprintf(cached, sizeof cached, "%s/%s", erun, estep);
			}
		}
	}
	if (found && attempt && (size_t)attempt > natt &&
	    (!follow || !runs_active(r->k, erun)))
		return http_reply_error(r, 404, "step '%s' of run '%s' has no attempt %d (it has %zu)",
					estep, erun, attempt, natt);
	if (follow) {
		struct follow *f = calloc(1, sizeof *f);
		struct MHD_Response *resp;
		if (!f)
			return http_reply_error(r, 500, "out of memory");
		f->k = r->k;
		f->conn = r->conn;
		snprintf(f->run, sizeof f->run, "%s", erun);
		snprintf(f->step, sizeof f->step, "%s", estep);
		f->err = err;
		f->attempt = attempt;
		f->fd = -1;
		const char *acc = r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept") : NULL;
		f->sse = acc && strstr(acc, "text/event-stream") != NULL;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, follow_read, f,
							 follow_free);
		if (!resp) {
			follow_free(f);
			return http_reply_error(r, 500, "out of memory");
		}
		MHD_add_response_header(resp, "Content-Type", f->sse ? "text/event-stream"
								      : "text/plain; charset=utf-8");
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
		if (via)
			MHD_add_response_header(resp, "X-Kfpc-Cached-From", via);
		return http_reply_response(r, 200, resp);
	}
	path = log_path(erun, estep, attempt, err, &done, &found);
	if (!found) {
		free(path);
		return http_reply_error(r, 404, "no step '%s' in run '%s' (yet)", estep, erun);
	}
	/* the file as it is now, sent from the descriptor (no copy in memory) */
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	struct stat sb;
	struct MHD_Response *resp;
	free(path);
	if (fd < 0 || fstat(fd, &sb)) {
		if (fd >= 0)
			close(fd);
		if ((resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT)))
			MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	} else if (!(resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd))) {
		close(fd);
	} else {
		MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	}
	if (!resp)
		return http_reply_error(r, 500, "out of memory");
	if (via)
		MHD_add_response_header(resp, "X-Kfpc-Cached-From", via);
	return http_reply_response(r, 200, resp);
}

/* ---- artifacts --------------------------------------------------------------------------------- */


/* Returns 1 if run RUN belongs to namespace NS. */
static int run_in_ns(struct kfpd *k, const char *run, const char *ns)
{
	json_object *o;
	int ok;

	if (db_get(k->db, NULL, DB_RUNS, run, &o))
		return 0;
	ok = !strcmp(js_str(o, "namespace", ""), ns);
	json_object_put(o);
	return ok;
}

static json_object *edges_view(struct kfpd *k, const char *ns, struct store_edge *e, size_t n,
			       int *any)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++) {
		if (!run_in_ns(k, e[i].run, ns))
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "run", json_object_new_string(e[i].run));
		json_object_object_add(o, "step", json_object_new_string(e[i].step));
		json_object_object_add(o, "name", json_object_new_string(e[i].name));
		json_object_array_add(arr, o);
		*any = 1;
	}
	return arr;
}

/* Resolves artifact PREFIX visible to the caller: the artifact record view with "produced_by" and
 * "consumed_by", or NULL after replying 404. */
static json_object *load_art(struct req *r, const char *prefix, char **digest_out)
{
	struct store *st;
	struct store_art *a = NULL;
	struct store_edge *pe = NULL, *ce = NULL;
	size_t np = 0, nc = 0;
	char *digest = NULL;
	json_object *o = NULL;
	int any = 0;

	if (!(st = runs_estore_lock()))
		goto nf;
	if (store_art_resolve(st, prefix, &digest) || store_art_get(st, digest, &a) ||
	    store_lineage_producers(st, digest, &pe, &np) ||
	    store_lineage_consumers(st, digest, &ce, &nc)) {
		runs_estore_unlock();
		goto nf;
	}
	runs_estore_unlock();
	o = json_object_new_object();
	json_object_object_add(o, "digest", json_object_new_string(a->digest));
	json_object_object_add(o, "kind", json_object_new_string(a->kind ? a->kind : "file"));
	json_object_object_add(o, "type", a->type ? json_object_new_string(a->type) : NULL);
	json_object_object_add(o, "size", json_object_new_int64((int64_t)a->size));
	json_object_object_add(o, "created", json_object_new_double(a->created));
	json_object_object_add(o, "produced_by", edges_view(r->k, r->ns, pe, np, &any));
	json_object_object_add(o, "consumed_by", edges_view(r->k, r->ns, ce, nc, &any));
	if (!any) {
		json_object_put(o);
		o = NULL;
		goto nf;
	}
	store_art_free(a);
	store_edges_free(pe, np);
	store_edges_free(ce, nc);
	if (digest_out)
		*digest_out = digest;
	else
		free(digest);
	return o;
nf:
	store_art_free(a);
	store_edges_free(pe, np);
	store_edges_free(ce, nc);
	free(digest);
	http_reply_error(r, 404, "no artifact '%s'", prefix);
	return NULL;
}

int api_art_get(struct req *r)
{
	json_object *o = load_art(r, r->arg[0], NULL);
	return o ? http_reply_json(r, 200, o) : http_done(r);
}


static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	chmod(path, 0700); /* exported files may be read-only */
	return remove(path);
}

/* Request cleanup of a directory download: removes its temporary export. */
static void remove_export(void *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Answers a directory artifact as a tar stream: the tree is exported from the CAS to a temporary
 * directory and `tar -c` writes it into a pipe that MHD sends (the loop reaps tar). */
static int send_dir(struct req *r, const char *digest)
{
	char tmpl[4200], out[4300], err[256];
	char *argv[] = {"tar", "-C", out, "-cf", "-", ".", NULL};
	posix_spawn_file_actions_t fa;
	struct MHD_Response *resp;
	int p[2], rc;
	pid_t pid;

	snprintf(tmpl, sizeof tmpl, "%s/tmp/a-XXXXXX", r->k->data_dir);
	if (!mkdtemp(tmpl))
		return http_reply_error(r, 500, "cannot export the artifact: %s", strerror(errno));
	snprintf(out, sizeof out, "%s/out", tmpl);
	pthread_mutex_lock(&art_lock);
	rc = cas ? art_export(cas, digest, ART_DIR, out) : -1;
	if (rc)
		snprintf(err, sizeof err, "%s", cas ? art_errmsg(cas) : "no artifact store");
	pthread_mutex_unlock(&art_lock);
	r->stream = strdup(tmpl);
	r->stream_free = remove_export;
	if (rc)
		return http_reply_error(r, 410, "artifact content is no longer stored: %s", err);
	if (pipe2(p, O_CLOEXEC))
		return http_reply_error(r, 500, "cannot stream the artifact: %s", strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pthread_mutex_lock(&util_env_lock);
	rc = posix_spawnp(&pid, "tar", &fa, NULL, argv, environ);
	pthread_mutex_unlock(&util_env_lock);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc) {
		close(p[0]);
		return http_reply_error(r, 500, "cannot run tar: %s", strerror(rc));
	}
	if (!(resp = MHD_create_response_from_pipe(p[0]))) {
		close(p[0]);
		return http_reply_error(r, 500, "out of memory");
	}
	char disp[128];
	snprintf(disp, sizeof disp, "attachment; filename=\"%.16s.tar\"", digest);
	MHD_add_response_header(resp, "Content-Type", "application/x-tar");
	MHD_add_response_header(resp, "Content-Disposition", disp);
	return http_reply_response(r, 200, resp);
}

int api_art_content(struct req *r)
{
	char *digest = NULL, *path = NULL, state[4200], err[256];
	json_object *o = load_art(r, r->arg[0], &digest);
	struct MHD_Response *resp;
	struct stat sb;
	int fd;

	if (!o)
		return http_done(r);
	pthread_mutex_lock(&art_lock);
	snprintf(state, sizeof state, "%s/state", r->k->data_dir);
	if (!cas && art_open(state, &cas, err, sizeof err))
		cas = NULL;
	pthread_mutex_unlock(&art_lock);
	if (strcmp(js_str(o, "kind", "file"), "file")) {
		json_object_put(o);
		fd = send_dir(r, digest);
		free(digest);
		return fd;
	}
	json_object_put(o);
	pthread_mutex_lock(&art_lock);
	if (cas)
		path = art_object_path(cas, digest, ART_FILE);
	pthread_mutex_unlock(&art_lock);
	free(digest);
	if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		free(path);
		return http_reply_error(r, 410, "artifact content is no longer stored");
	}
	free(path);
	if (fstat(fd, &sb)) {
		close(fd);
		return http_reply_error(r, 500, "cannot read the artifact");
	}
	if (!(resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd))) {
		close(fd);
		return http_reply_error(r, 500, "out of memory");
	}
	MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
	return http_reply_response(r, 200, resp);
}

int api_art_lineage(struct req *r)
{
	json_object *o = load_art(r, r->arg[0], NULL), *prod, *inputs = json_object_new_array();
	struct store *st;
	size_t i, j;

	if (!o) {
		json_object_put(inputs);
		return http_done(r);
	}
	/* one level up: the inputs of each producing step instance */
	json_object_object_get_ex(o, "produced_by", &prod);
	for (i = 0; i < json_object_array_length(prod); i++) {
		json_object *e = json_object_array_get_idx(prod, i);
		struct store_step *s = NULL;
		if (!(st = runs_estore_lock()))
			break;
		if (store_step_get(st, js_str(e, "run", ""), js_str(e, "step", ""), &s) == 0) {
			for (j = 0; j < s->nin_arts; j++) {
				json_object *x = json_object_new_object();
				json_object_object_add(x, "run", json_object_new_string(s->run));
				json_object_object_add(x, "step", json_object_new_string(s->id));
				json_object_object_add(x, "input", json_object_new_string(s->in_arts[j].name));
				json_object_object_add(x, "digest",
						       json_object_new_string(s->in_arts[j].digest));
				json_object_array_add(inputs, x);
			}
			if (s->inputs)
				json_object_object_add(e, "params", json_object_get(s->inputs));
			json_object_object_add(e, "state",
					       json_object_new_string(store_step_state_name(s->state)));
			json_object_object_add(e, "finished", json_object_new_double(s->finished));
		}
		runs_estore_unlock();
		store_step_free(s);
	}
	json_object_object_add(o, "inputs", inputs);
	return http_reply_json(r, 200, o);
}

int api_run_artifacts(struct req *r)
{
	json_object *run = load_own(r, r->arg[0]), *steps, *arr, *o;
	size_t i, j;

	if (!run)
		return http_done(r);
	steps = runs_engine_steps(r->k, run);
	json_object_put(run);
	arr = json_object_new_array();
	for (i = 0; steps && i < json_object_array_length(steps); i++) {
		json_object *s = json_object_array_get_idx(steps, i), *arts;
		if (!json_object_object_get_ex(s, "artifacts", &arts))
			continue;
		for (j = 0; j < json_object_array_length(arts); j++) {
			json_object *a = json_object_array_get_idx(arts, j), *x = json_object_new_object();
			json_object_object_add(x, "step", json_object_new_string(js_str(s, "id", "")));
			json_object_object_add(x, "output", json_object_new_string(js_str(a, "name", "")));
			json_object_object_add(x, "digest", json_object_new_string(js_str(a, "digest", "")));
			json_object_array_add(arr, x);
		}
	}
	json_object_put(steps);
	o = json_object_new_object();
	json_object_object_add(o, "artifacts", arr);
	return http_reply_json(r, 200, o);
}

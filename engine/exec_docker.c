/* exec_docker.c - the docker executor: each attempt is one container, through the Docker
 * Engine REST API (engine/docker.c); works with Docker and with Podman's compatible service.
 *
 * Per attempt:
 *   create   image = spec->image; Entrypoint = argv[0], Cmd = argv[1..]; labels kfpc.managed=1,
 *            kfpc.run, kfpc.step, kfpc.attempt, kfpc.pipeline (+ the step's labels); name
 *            kfpc-RUN-STEP-aN; no restart policy and no AutoRemove (we need logs and the exit
 *            code; removal is explicit); HostConfig: the scratch dir bound read-write at /kfpc,
 *            input artifacts bound read-only (below /kfpc when they live in the scratch dir,
 *            else at /kfpc-inputs/NAME), run volumes kfpc-RUN-NAME, NanoCpus/Memory (swap
 *            limited to the memory: no swap), NetworkMode "none" (KFPC_DOCKER_NETWORK
 *            overrides), User = the invoking uid:gid so outputs belong to the user
 *            (KFPC_DOCKER_USER overrides; empty: the image's user), Init: a tiny init as PID 1
 *            forwards SIGTERM to the command (KFPC_DOCKER_INIT=0 turns it off; dropped by
 *            itself when the engine has no init binary); on Podman, ulimits nofile/nproc no
 *            higher than ours (Podman's defaults fail where CAP_SYS_RESOURCE is missing).
 *   pull     policy spec->pull_policy, else $KFPC_PULL_POLICY, else "missing":
 *            missing|IfNotPresent: pull when create says the image is absent;
 *            always|Always: pull before every create; never|Never: fail naming the image.
 *   start    then follow the log stream (docker_watch_logs): frames go to the step's stdout
 *            and stderr log files as they arrive, so `kfpc logs` shows progress.
 *   reap     when the stream ends (the container stopped): inspect for ExitCode, OOMKilled,
 *            StartedAt/FinishedAt. A signal is reported only for one we sent (cancel):
 *            exit code 128+N after our signal N.
 *   watch    the stream is not trusted to end: Podman 4.3's logs?follow=1 ends on a "died"
 *            event that it misses when the container dies while the request starts (its
 *            events-file reader opens at the end of the file after it saw the container
 *            running), and then stays open forever, even after a kill. So a followed
 *            container is inspected CHECK_FIRST s after its stream opened, then at doubling
 *            intervals up to CHECK_MAX (docker_alarm wakes the scheduler); a stream still
 *            open STOP_GRACE s after a look saw its container stopped is dropped, the whole
 *            log is read again (GET logs without follow) into the truncated log files, and
 *            the attempt is reaped from that look. CHECK_FAILS failed looks in a row end it
 *            as `infra`. On Docker the stream ends by itself, so a short step is never
 *            looked at.
 *   cut      a step whose stdout is a value output (spec->stdout_limit): the demultiplexer
 *            keeps the first stdout_limit bytes of stdout and the local executor's note
 *            (docker_watch_limit); past them the container is sent SIGTERM at once and
 *            SIGKILL CUT_GRACE s later (the grace of a timeout), its stream is dropped (the
 *            engine may hold a large backlog; stderr written after the cut is lost), it is
 *            inspected until it stopped, and the result says stdout_cut.
 *   release  DELETE ?force=1 (removal is retried later, and at close, if the engine is away).
 *
 * Every request has a deadline (docker.c); the log stream is bounded by the watch above.
 *
 * Failures of the engine (unreachable, API errors, a lost stream, a container stopped by a
 * SIGTERM/SIGKILL that we did not send, as when the engine shuts down) are `infra` results
 * with a message naming the image or container. A command that cannot be executed (start
 * fails and the container records exit code 126/127, or the init reports it) finishes like on
 * the local executor: exit code 127 and the reason in the stderr log.
 *
 * Restarts: open lists the run's containers (label kfpc.run=RUN). reattach claims the one
 * named by the persisted handle (after checking its labels): running ones are followed again
 * (logs rewritten from the start), finished ones are collected; without a handle (lost with
 * a crash) the container is found by its labels. Whatever of the run is still unclaimed at
 * close is killed and removed (not earlier: the scheduler re-attaches lazily, when an
 * instance becomes ready).
 *
 * Volumes (`volume "NAME" mount "/path"`): one per run and name, kfpc-RUN-NAME, labelled
 * kfpc.run; removed at close when no attempt of the run is left running. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "docker.h"
#include "exec.h"

#define IN_ROOT "/kfpc"            /* where the scratch dir appears */
#define INPUTS_ROOT "/kfpc-inputs" /* inputs that do not live in the scratch dir */
#define MAX_REFOLLOW 3
#define CHECK_FIRST 1.0  /* first look at a followed container, s after its stream opened */
#define CHECK_MAX 10.0   /* then twice as long each time, at most this */
#define STOP_GRACE 2.0   /* how long a log stream may stay open after its container stopped */
#define CHECK_FAILS 3    /* inspect failures in a row that end the attempt (`infra`) */
#define CUT_GRACE 5.0    /* a stdout cut: docker kill SIGTERM, then SIGKILL this long after */
#define CUT_CHECK 0.1    /* after a cut, first look at the container this long after SIGTERM */

struct djob {
	struct exec_job pub;   /* first member */
	char id[72];           /* container id */
	char name[200];
	int outfd, errfd;
	struct docker_watch *w;
	int cancel_sig;        /* last signal we sent (15, 9), 0 none */
	int refollows;
	int64_t memory;        /* the memory limit, 0 none */
	int starting;          /* 1: the start request is in flight (w is it) */
	int kill_after_start;  /* an exec_cancel that came while starting */
	char argv0[256];       /* for messages */
	char image[256];
	int done;              /* 1: res is valid, waiting in x->ready */
	int reaped;
	double started;        /* local clock at start */
	double check_at;       /* monotonic time of the next look at the container (0: none) */
	double check_every;    /* the current interval between looks */
	double stopped_at;     /* monotonic time a look first saw it stopped (0: not yet) */
	int check_fails;       /* failed looks in a row */
	uint64_t out_limit;    /* spec->stdout_limit (0: none) */
	int cut;               /* 1: stdout passed out_limit (the log was cut) */
	int cut_stopped;       /* 1: the container was sent SIGTERM for the cut */
	double kill_at;        /* monotonic time of the SIGKILL after a cut (0: none) */
	struct exec_result res;
	struct djob *next;     /* x->jobs */
};

struct exec {
	struct docker *d;
	char *run_id;
	struct djob *jobs;
	int podman;
	int init;
	char *network;
	char *user;            /* "uid:gid" or NULL */
	char **orphans;        /* container ids of this run found at open, not yet claimed */
	size_t norphans;
	int reconciled;
	int nvolumes_made;     /* volumes created for the run (removed at close) */
	char **pending_rm;     /* removals that failed (engine away), retried later */
	size_t npending;
};

static double now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int push_str(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof **v);

	if (!nv)
		return -1;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -1;
	(*n)++;
	return 0;
}

static void drop_str(char **v, size_t *n, size_t i)
{
	free(v[i]);
	v[i] = v[--*n];
}

/* Retries removals that failed earlier; keeps those that fail again. */
static void retry_pending(struct exec *x)
{
	for (size_t i = 0; i < x->npending;) {
		if (docker_container_remove(x->d, x->pending_rm[i]) == 0)
			drop_str(x->pending_rm, &x->npending, i);
		else
			i++;
	}
}

/* Removes container ID; remembers it for later when the engine is away. */
static void remove_container(struct exec *x, const char *id)
{
	int st = docker_container_remove(x->d, id);

	if (st == DOCKER_EUNREACH || st == DOCKER_ETIMEDOUT)
		push_str(&x->pending_rm, &x->npending, id);
}

/* Kills and removes every container of the run found at open that nobody re-attached to. */
static void reconcile(struct exec *x)
{
	if (x->reconciled)
		return;
	x->reconciled = 1;
	while (x->norphans) {
		remove_container(x, x->orphans[x->norphans - 1]);
		drop_str(x->orphans, &x->norphans, x->norphans - 1);
	}
}

static int env_flag(const char *name, int dflt)
{
	const char *v = getenv(name);

	if (!v || !*v)
		return dflt;
	return !(v[0] == '0' || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"));
}

static int docker_open_op(const struct exec_config *cfg, struct exec **out, char *err,
			  size_t errlen)
{
	struct exec *x = calloc(1, sizeof *x);
	const char *net = getenv("KFPC_DOCKER_NETWORK"), *user = getenv("KFPC_DOCKER_USER");
	char label[256], ub[64];
	struct docker_summary *l = NULL;
	size_t n = 0;
	int st;

	*out = NULL;
	if (!x) {
		snprintf(err, errlen, "docker: out of memory");
		return -1;
	}
	x->d = docker_open(NULL, err, errlen);
	if (!x->d)
		goto fail;
	if (docker_ping(x->d)) {
		snprintf(err, errlen, "%s", docker_errmsg(x->d));
		goto fail;
	}
	x->podman = strstr(docker_engine_name(x->d), "Podman") != NULL;
	x->init = env_flag("KFPC_DOCKER_INIT", 1);
	x->network = strdup(net && *net ? net : "none");
	if (user)
		x->user = *user ? strdup(user) : NULL;
	else {
		snprintf(ub, sizeof ub, "%u:%u", (unsigned)getuid(), (unsigned)getgid());
		x->user = strdup(ub);
	}
	x->run_id = strdup(cfg->run_id ? cfg->run_id : "");
	if (!x->network || !x->run_id || ((!user || *user) && !x->user))
		goto nomem;
	if (cfg->run_id && *cfg->run_id) {
		snprintf(label, sizeof label, "kfpc.run=%s", cfg->run_id);
		st = docker_container_list(x->d, label, &l, &n);
		if (st) {
			snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
			goto fail;
		}
		for (size_t i = 0; i < n; i++)
			if (push_str(&x->orphans, &x->norphans, l[i].id) < 0) {
				free(l);
				goto nomem;
			}
		free(l);
	}
	*out = x;
	return 0;
nomem:
	snprintf(err, errlen, "docker: out of memory");
fail:
	if (x->d) {
		docker_close(x->d);
		x->d = NULL;
	}
	for (size_t i = 0; i < x->norphans; i++)
		free(x->orphans[i]);
	free(x->orphans);
	free(x->network);
	free(x->user);
	free(x->run_id);
	free(x);
	return -1;
}

static int docker_capacity_op(struct exec *x, struct exec_resources *out, char *err,
			      size_t errlen)
{
	int64_t ncpu = 0, mem = 0;

	memset(out, 0, sizeof *out);
	if (docker_info(x->d, &ncpu, &mem)) {
		snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
		return -1;
	}
	out->cpu_milli = ncpu * 1000;
	out->memory_bytes = mem;
	return 0;
}

/* 1 when PATH is ROOT or below it; *rest points at what follows ROOT ("" or "/..."). */
static int under(const char *path, const char *root, const char **rest)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (strncmp(path, root, n) || (path[n] && path[n] != '/'))
		return 0;
	*rest = path + n;
	return 1;
}

/* Where input I of SPEC appears inside the container, into buf[len]. */
static int input_target(const struct exec_spec *spec, size_t i, char *buf, size_t len)
{
	const char *rest;
	int n;

	if (spec->scratch_dir && under(spec->inputs[i].host_path, spec->scratch_dir, &rest))
		n = snprintf(buf, len, "%s%s", IN_ROOT, rest);
	else
		n = snprintf(buf, len, "%s/%s", INPUTS_ROOT, spec->inputs[i].name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int docker_path_in_step_op(struct exec *x, const struct exec_spec *spec,
				  const char *host_path, char *buf, size_t len)
{
	const char *rest;
	int n;

	(void)x;
	for (size_t i = 0; i < spec->ninputs; i++)
		if (!strcmp(spec->inputs[i].host_path, host_path))
			return input_target(spec, i, buf, len);
	if (!spec->scratch_dir || !under(host_path, spec->scratch_dir, &rest))
		return -1;
	n = snprintf(buf, len, "%s%s", IN_ROOT, rest);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A container name for the attempt: kfpc-RUN-STEP-aN with anything outside [A-Za-z0-9_.-]
 * replaced by '_' and, when something was replaced, a hash of the real step name appended. */
static void container_name(const struct exec_labels *id, char *out, size_t len)
{
	char step[80];
	const char *s = id->step ? id->step : "step", *r = id->run_id ? id->run_id : "run";
	size_t k = 0;
	int changed = strlen(s) >= sizeof step;
	unsigned char md[SHA256_DIGEST_LENGTH];
	char rn[64];

	for (size_t i = 0; s[i] && k + 1 < sizeof step; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 c == '_' || c == '.' || c == '-';

		step[k++] = ok ? c : '_';
		changed |= !ok;
	}
	step[k] = 0;
	k = 0;
	for (size_t i = 0; r[i] && k + 1 < sizeof rn; i++) {
		char c = r[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 c == '_' || c == '.' || c == '-';

		rn[k++] = ok ? c : '_';
	}
	rn[k] = 0;
	if (changed) {
		SHA256((const unsigned char *)s, strlen(s), md);
		snprintf(out, len, "kfpc-%s-%s-%02x%02x%02x%02x-a%d", rn, step, md[0], md[1], md[2],
			 md[3], id->attempt);
	} else {
		snprintf(out, len, "kfpc-%s-%s-a%d", rn, step, id->attempt);
	}
}

static const char *pull_policy(const struct exec_spec *spec, char *err, size_t errlen)
{
	const char *p = spec->pull_policy;

	if (!p || !*p)
		p = getenv("KFPC_PULL_POLICY");
	if (!p || !*p)
		return "missing";
	if (!strcasecmp(p, "missing") || !strcasecmp(p, "ifnotpresent"))
		return "missing";
	if (!strcasecmp(p, "always"))
		return "always";
	if (!strcasecmp(p, "never"))
		return "never";
	snprintf(err, errlen, "docker: unknown pull policy '%s' (use IfNotPresent, Always "
		 "or Never)", p);
	return NULL;
}

static int open_log(const char *path, int trunc, char *err, size_t errlen)
{
	int fd;

	if (!path)
		return open("/dev/null", O_WRONLY | O_CLOEXEC);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0644);
	if (fd < 0)
		snprintf(err, errlen, "docker: cannot open log file %s: %s", path,
			 strerror(errno));
	return fd;
}

struct strv {
	char **v;
	size_t n;
};

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int strv_addf(struct strv *s, const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *t = malloc(n), **nv;

	if (!t)
		return -1;
	snprintf(t, n, "%s=%s", a, b);
	nv = realloc(s->v, (s->n + 1) * sizeof *nv);
	if (!nv) {
		free(t);
		return -1;
	}
	s->v = nv;
	s->v[s->n++] = t;
	return 0;
}

/* 1 when container state S carries the labels of SPEC's attempt (run, step, attempt). */
static int same_attempt(const struct docker_state *s, const struct exec_spec *spec)
{
	return !strcmp(s->run, spec->id.run_id ? spec->id.run_id : "") &&
	       !strcmp(s->step, spec->id.step ? spec->id.step : "") &&
	       s->attempt == spec->id.attempt;
}

/* Creates the container for SPEC into id[idlen], pulling per the policy. */
static int create_container(struct exec *x, const struct exec_spec *spec,
			    struct docker_create *c, char *id, size_t idlen, char *err,
			    size_t errlen)
{
	const char *policy = pull_policy(spec, err, errlen);
	int st, tries = 0;

	if (!policy)
		return -1;
	if (!strcmp(policy, "always") && docker_image_pull(x->d, spec->image)) {
		snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
		return -1;
	}
again:
	st = docker_container_create(x->d, c, id, idlen);
	if (st && c->init && (strstr(docker_errmsg(x->d), "init binary") ||
			      strstr(docker_errmsg(x->d), "catatonit"))) {
		/* Podman without an init binary: run without one from now on */
		x->init = 0;
		c->init = 0;
		goto again;
	}
	if (st == DOCKER_ENOTFOUND && !strcmp(policy, "never")) {
		snprintf(err, errlen,
			 "docker: image '%s' is not present and the pull policy is Never",
			 spec->image);
		return -1;
	}
	if (st == DOCKER_ENOTFOUND && !strcmp(policy, "missing") && tries++ == 0) {
		if (docker_image_pull(x->d, spec->image)) {
			snprintf(err, errlen, "docker: image '%s' is not present and cannot "
				 "be pulled: %s", spec->image, docker_errmsg(x->d));
			return -1;
		}
		goto again;
	}
	if (st == DOCKER_ECONFLICT && c->name && tries++ < 2) {
		/* a container of this very attempt is left from a process that died before it
		 * could persist the handle: it is ours (same run, step, attempt); replace it */
		struct docker_state s;

		snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
		if (docker_container_inspect(x->d, c->name, &s) == 0 && same_attempt(&s, spec) &&
		    docker_container_remove(x->d, s.id) == 0)
			goto again;
		return -1; /* err: the conflict */
	}
	if (st) {
		snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
		return -1;
	}
	return 0;
}

static void job_link(struct exec *x, struct djob *j)
{
	j->next = x->jobs;
	x->jobs = j;
}

static void job_unlink(struct exec *x, struct djob *j)
{
	for (struct djob **pp = &x->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			return;
		}
}

/* Marks J finished with its result already in j->res, and wakes the scheduler. */
static void job_ready(struct exec *x, struct djob *j)
{
	j->done = 1;
	docker_notify(x->d);
}

static int docker_start_op(struct exec *x, const struct exec_spec *spec, void *udata,
			   struct exec_job **out, char *err, size_t errlen)
{
	struct djob *j = calloc(1, sizeof *j);
	struct strv env = {0}, vols = {0};
	struct docker_mount *mounts = NULL;
	size_t nmounts = 0, nlab = 0;
	const char **lab = NULL;
	char attempt[16], target[4096];
	struct docker_create c;

	*out = NULL;
	if (!j) {
		snprintf(err, errlen, "docker: out of memory");
		return -1;
	}
	j->outfd = j->errfd = -1;
	retry_pending(x);
	if (!spec->image || !*spec->image) {
		snprintf(err, errlen, "docker: step %s has no image",
			 spec->id.step ? spec->id.step : "?");
		goto fail;
	}

	/* environment: the step's, then ours */
	for (size_t i = 0; i < spec->nenv; i++)
		if (strv_addf(&env, spec->env[i].name, spec->env[i].value ? spec->env[i].value : ""))
			goto nomem;
	snprintf(attempt, sizeof attempt, "%d", spec->id.attempt);
	if (strv_addf(&env, "KFPC_RUN_ID", spec->id.run_id ? spec->id.run_id : "") ||
	    strv_addf(&env, "KFPC_STEP", spec->id.step ? spec->id.step : "") ||
	    strv_addf(&env, "KFPC_ATTEMPT", attempt))
		goto nomem;

	/* mounts: scratch dir, inputs, volumes */
	mounts = calloc(1 + spec->ninputs + spec->nvolumes, sizeof *mounts);
	if (!mounts)
		goto nomem;
	if (spec->scratch_dir)
		mounts[nmounts++] = (struct docker_mount){spec->scratch_dir, IN_ROOT, 0};
	for (size_t i = 0; i < spec->ninputs; i++) {
		char *t;

		if (input_target(spec, i, target, sizeof target) < 0) {
			snprintf(err, errlen, "docker: input '%s': path too long",
				 spec->inputs[i].name);
			goto fail;
		}
		if (push_str(&vols.v, &vols.n, target) < 0)
			goto nomem;
		t = vols.v[vols.n - 1];
		mounts[nmounts++] = (struct docker_mount){spec->inputs[i].host_path, t, 1};
	}
	for (size_t i = 0; i < spec->nvolumes; i++) {
		char vname[300];
		const char *vl[6] = {"kfpc.managed", "1", "kfpc.run", spec->id.run_id ? spec->id.run_id : "",
				     "kfpc.volume", spec->volumes[i].name};

		snprintf(vname, sizeof vname, "kfpc-%s-%s", spec->id.run_id ? spec->id.run_id : "run",
			 spec->volumes[i].name);
		if (docker_volume_create(x->d, vname, vl, 3)) {
			snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
			goto fail;
		}
		x->nvolumes_made++;
		if (push_str(&vols.v, &vols.n, vname) < 0)
			goto nomem;
		mounts[nmounts++] = (struct docker_mount){vols.v[vols.n - 1], spec->volumes[i].mount,
							 spec->volumes[i].readonly};
	}

	/* labels: ours first, then the step's (never overriding ours) */
	lab = calloc(2 * (5 + spec->nlabels), sizeof *lab);
	if (!lab)
		goto nomem;
	lab[2 * nlab] = "kfpc.managed", lab[2 * nlab++ + 1] = "1";
	lab[2 * nlab] = "kfpc.run", lab[2 * nlab++ + 1] = spec->id.run_id ? spec->id.run_id : "";
	lab[2 * nlab] = "kfpc.step", lab[2 * nlab++ + 1] = spec->id.step ? spec->id.step : "";
	lab[2 * nlab] = "kfpc.attempt", lab[2 * nlab++ + 1] = attempt;
	lab[2 * nlab] = "kfpc.pipeline", lab[2 * nlab++ + 1] = spec->id.pipeline ? spec->id.pipeline : "";
	for (size_t i = 0; i < spec->nlabels; i++) {
		if (!strncmp(spec->labels[i].key, "kfpc.", 5))
			continue;
		lab[2 * nlab] = spec->labels[i].key;
		lab[2 * nlab++ + 1] = spec->labels[i].value ? spec->labels[i].value : "";
	}

	container_name(&spec->id, j->name, sizeof j->name);
	memset(&c, 0, sizeof c);
	c.name = j->name;
	c.image = spec->image;
	c.argv = spec->argv;
	c.argc = spec->argc;
	c.env = env.v;
	c.nenv = env.n;
	c.workdir = spec->workdir ? spec->workdir : IN_ROOT;
	c.user = x->user;
	c.mounts = mounts;
	c.nmounts = nmounts;
	c.labels = lab;
	c.nlabels = nlab;
	c.nano_cpus = spec->res.cpu_milli > 0 ? spec->res.cpu_milli * 1000000 : 0;
	c.memory_bytes = spec->res.memory_bytes;
	c.gpus = spec->res.gpu;
	c.network_mode = x->network;
	c.init = x->init;
	if (x->podman) {
		/* Podman raises nofile/nproc to 1048576/4194304, beyond what a host without
		 * CAP_SYS_RESOURCE grants (runc then fails: "error setting rlimit"): ask for our own
		 * limits, and for nproc at most 32768 (Podman's own limit is often lower than ours) */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
			c.nofile = (int64_t)rl.rlim_max;
		if (getrlimit(RLIMIT_NPROC, &rl) == 0)
			c.nproc = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 32768 ?
					  (int64_t)rl.rlim_max : 32768;
	}

	j->outfd = open_log(spec->stdout_path, 1, err, errlen);
	if (j->outfd < 0)
		goto fail;
	j->errfd = open_log(spec->stderr_path, 1, err, errlen);
	if (j->errfd < 0)
		goto fail;
	if (create_container(x, spec, &c, j->id, sizeof j->id, err, errlen) < 0)
		goto fail;
	j->started = now_wall();
	j->memory = spec->res.memory_bytes;
	j->out_limit = spec->stdout_limit;
	snprintf(j->argv0, sizeof j->argv0, "%s", spec->argc ? spec->argv[0] : "the image's command");
	snprintf(j->image, sizeof j->image, "%s", spec->image);
	/* start without waiting: the engine takes a while (runc), the scheduler goes on */
	j->w = docker_start_async(x->d, j->id, j);
	if (!j->w) {
		snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
		docker_container_remove(x->d, j->id);
		goto fail;
	}
	j->starting = 1;
	snprintf(j->pub.handle, sizeof j->pub.handle, "%s", j->id);
	j->pub.udata = udata;
	job_link(x, j);
	*out = &j->pub;
	strv_free(&env);
	strv_free(&vols);
	free(mounts);
	free(lab);
	return 0;
nomem:
	snprintf(err, errlen, "docker: out of memory");
fail:
	if (j->outfd >= 0)
		close(j->outfd);
	if (j->errfd >= 0)
		close(j->errfd);
	free(j);
	strv_free(&env);
	strv_free(&vols);
	free(mounts);
	free(lab);
	return -1;
}

static int docker_fd_op(struct exec *x)
{
	return docker_fd(x->d);
}

/* Empties the log files of J (for a log read again from its beginning). Returns 0, or -1
 * with a message in err[errlen]. */
static int truncate_logs(struct djob *j, char *err, size_t errlen)
{
	if ((ftruncate(j->outfd, 0) < 0 && errno != EINVAL) || /* EINVAL: /dev/null */
	    (ftruncate(j->errfd, 0) < 0 && errno != EINVAL)) {
		snprintf(err, errlen, "container %.12s: cannot truncate its log files: %s", j->id,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* The note appended to J's stdout log at a cut (the local executor's words), in buf[len]. */
static void cut_note(const struct djob *j, char *buf, size_t len)
{
	snprintf(buf, len, "\n[kfpc: output cut at %llu bytes, the limit of a value output; the "
		 "step was stopped]\n", (unsigned long long)j->out_limit);
}

/* Follows the logs of J from their beginning into its (emptied) log files, and plans the
 * first look at the container. Returns 0, or -1 with a message in err[errlen]. */
static int follow(struct exec *x, struct djob *j, char *err, size_t errlen)
{
	if (truncate_logs(j, err, errlen) < 0)
		return -1;
	j->w = docker_watch_logs(x->d, j->id, j->outfd, j->errfd, 0, j);
	if (!j->w) {
		snprintf(err, errlen, "%s", docker_errmsg(x->d));
		return -1;
	}
	if (j->out_limit) {
		char note[200];

		cut_note(j, note, sizeof note);
		docker_watch_limit(j->w, j->out_limit, note);
	}
	j->check_every = CHECK_FIRST;
	j->check_at = mono() + CHECK_FIRST;
	j->stopped_at = 0;
	j->check_fails = 0;
	return 0;
}

/* J ended as `infra` with MSG. */
static void fail_infra(struct djob *j, const char *msg)
{
	j->res.infra = 1;
	snprintf(j->res.msg, sizeof j->res.msg, "%.250s", msg);
	j->res.started = j->started;
	j->res.finished = now_wall();
}

/* Fills j->res from the state S of J's stopped container. */
static void fill_result(struct djob *j, const struct docker_state *s)
{
	j->res.started = s->started > 0 ? s->started : j->started;
	j->res.finished = s->finished > 0 ? s->finished : now_wall();
	if (s->oom_killed && s->exit_code != 0) {
		j->res.oom = 1;
		snprintf(j->res.msg, sizeof j->res.msg, "container %.12s was killed for memory (OOM)",
			 j->id);
	} else if (s->exit_code == 137 && j->memory > 0 && !j->cancel_sig) {
		/* SIGKILL under a memory limit that we did not send: engines that cannot see the
		 * kernel's OOM kill (Podman on cgroup v1) do not set OOMKilled */
		j->res.oom = 1;
		snprintf(j->res.msg, sizeof j->res.msg, "container %.12s was killed (SIGKILL) under its "
			 "memory limit of %lld bytes: out of memory", j->id, (long long)j->memory);
	} else if (j->cancel_sig && s->exit_code == 128 + j->cancel_sig) {
		j->res.signal = j->cancel_sig;
	} else if (!j->cancel_sig && (s->exit_code == 143 || s->exit_code == 137)) {
		/* SIGTERM/SIGKILL that we did not send: the engine stopped it (shutdown or
		 * restart: containers have no restart policy) or someone ran `docker stop`; not
		 * the step's own failure */
		j->res.infra = 1;
		snprintf(j->res.msg, sizeof j->res.msg, "container %.12s was stopped from outside "
			 "(SIG%s, not sent by kfpc): the Docker engine stopped or restarted, or "
			 "someone stopped the container", j->id, s->exit_code == 143 ? "TERM" : "KILL");
	} else {
		j->res.exit_code = s->exit_code;
		if (s->error[0])
			snprintf(j->res.msg, sizeof j->res.msg, "%s", s->error);
	}
}

/* The stream of J ended (ST, MSG): inspect the container and fill j->res, or follow again
 * when it still runs. Returns 1 when J is finished. */
static int collect(struct exec *x, struct djob *j, int st, const char *msg)
{
	struct docker_state s;
	char m[300], why[300];
	int rc;

	if (docker_watch_cut(j->w))
		j->cut = 1;
	docker_watch_free(j->w);
	j->w = NULL;
	j->check_at = 0;
	rc = docker_container_inspect(x->d, j->id, &s);
	if (rc) {
		fail_infra(j, st && msg ? msg : docker_errmsg(x->d));
		return 1;
	}
	if (s.running && j->refollows++ < MAX_REFOLLOW) {
		/* the stream ended early (a log driver hiccup): follow again, from the start (the
		 * log files are rewritten, so that nothing is lost in between) */
		if (follow(x, j, why, sizeof why) == 0)
			return 0;
		msg = why;
	}
	if (s.running) {
		snprintf(m, sizeof m, "lost the log stream of container %.12s (%.200s)", j->id,
			 msg ? msg : "it kept ending while the container ran");
		fail_infra(j, m);
		return 1;
	}
	fill_result(j, &s);
	return 1;
}

/* Looks at the container of J (its log stream is open, see "watch" at the top; or dropped after
 * a stdout cut). Returns 1 when J is finished. */
static int check(struct exec *x, struct djob *j, double now)
{
	struct docker_state s;
	char m[300], note[200];
	int rc = docker_container_inspect(x->d, j->id, &s), cut = 0;

	if (rc) {
		if (rc != DOCKER_ENOTFOUND && ++j->check_fails < CHECK_FAILS) {
			j->check_at = now + j->check_every;
			return 0;
		}
		docker_watch_free(j->w);
		j->w = NULL;
		j->check_at = 0;
		fail_infra(j, docker_errmsg(x->d));
		return 1;
	}
	j->check_fails = 0;
	if (s.running) {
		j->stopped_at = 0;
		j->check_every = j->check_every * 2 < CHECK_MAX ? j->check_every * 2 : CHECK_MAX;
		j->check_at = now + j->check_every;
		return 0;
	}
	if (!j->w) { /* stopped after a stdout cut: its stream was dropped (see stop_cuts) */
		j->check_at = 0;
		fill_result(j, &s);
		return 1;
	}
	if (!j->stopped_at)
		j->stopped_at = now;
	if (now < j->stopped_at + STOP_GRACE) {
		j->check_at = j->stopped_at + STOP_GRACE;
		return 0;
	}
	/* the engine keeps the stream open after the container stopped: read the whole log */
	if (docker_watch_cut(j->w))
		j->cut = 1;
	docker_watch_free(j->w);
	j->w = NULL;
	j->check_at = 0;
	if (truncate_logs(j, m, sizeof m) < 0) {
		fail_infra(j, m);
		return 1;
	}
	cut_note(j, note, sizeof note);
	if (docker_container_logs_limit(x->d, j->id, j->outfd, j->errfd, j->out_limit, note,
					&cut)) {
		snprintf(m, sizeof m, "the log stream of container %.12s stayed open after it "
			 "stopped, and reading its log failed: %.180s", j->id, docker_errmsg(x->d));
		fail_infra(j, m);
		return 1;
	}
	if (cut)
		j->cut = 1;
	fill_result(j, &s);
	return 1;
}

/* Sends signal HOW to the container of J, as exec_cancel does (defined below). */
static int docker_cancel_op(struct exec *x, struct exec_job *job, enum exec_cancel how,
			    char *err, size_t errlen);

/* Stops the containers whose stdout passed its limit: SIGTERM at once (the local executor's
 * group SIGTERM), SIGKILL CUT_GRACE s later (the grace of a timeout); the scheduler removes
 * them when it releases the attempt. */
static void stop_cuts(struct exec *x, double now)
{
	char err[300];

	for (struct djob *j = x->jobs; j; j = j->next) {
		if (j->done || j->starting)
			continue;
		if (j->w && docker_watch_cut(j->w))
			j->cut = 1;
		if (j->cut && !j->cut_stopped) {
			j->cut_stopped = 1;
			j->kill_at = now + CUT_GRACE;
			docker_cancel_op(x, &j->pub, EXEC_CANCEL_TERM, err, sizeof err);
			if (j->done)
				continue;
			/* the rest of the stream is not wanted (the engine may hold a large backlog
			 * of it): drop it, and look at the container until it stopped */
			docker_watch_free(j->w);
			j->w = NULL;
			j->stopped_at = 0;
			j->check_fails = 0;
			j->check_every = CUT_CHECK;
			j->check_at = now + CUT_CHECK;
		} else if (j->kill_at && now >= j->kill_at) {
			j->kill_at = 0;
			docker_cancel_op(x, &j->pub, EXEC_CANCEL_KILL, err, sizeof err);
		}
	}
}

/* Looks at the containers that are due, and sets the alarm for the next look. */
static void check_all(struct exec *x)
{
	double now = mono(), next = 0;

	stop_cuts(x, now);
	for (struct djob *j = x->jobs; j; j = j->next) {
		if (!j->done && j->kill_at && (!next || j->kill_at < next))
			next = j->kill_at;
		if (j->done || j->starting || (!j->w && !j->cut_stopped) || !j->check_at)
			continue;
		if (now >= j->check_at && check(x, j, now)) {
			j->done = 1;
			continue;
		}
		if (j->check_at && (!next || j->check_at < next))
			next = j->check_at;
	}
	if (next)
		docker_alarm(x->d, next > now ? next - now : 0);
	else
		docker_alarm(x->d, -1);
}

/* The start request of J ended with ST (MSG): follow its logs, or finish it. Returns 1 when
 * J is finished. */
static int started(struct exec *x, struct djob *j, int st, const char *msg)
{
	struct docker_state s;
	char m[300];

	docker_watch_free(j->w);
	j->w = NULL;
	j->starting = 0;
	if (st == 0) {
		if (j->kill_after_start)
			docker_container_kill(x->d, j->id,
					      j->kill_after_start == EXEC_CANCEL_KILL ? "KILL" : "TERM");
		if (follow(x, j, m, sizeof m) == 0)
			return 0;
		msg = m;
	} else if ((st == DOCKER_EAPI || st == DOCKER_ECONFLICT) &&
		   docker_container_inspect(x->d, j->id, &s) == 0 && !s.running &&
		   (s.exit_code == 126 || s.exit_code == 127 ||
		    (msg && (strstr(msg, "executable file not found") ||
			     strstr(msg, "no such file or directory"))))) {
		/* the command cannot be executed: like a shell, exit 127 with the reason */
		dprintf(j->errfd, "kfpc: cannot execute %s in image '%s': %s\n", j->argv0, j->image,
			msg ? msg : "");
		j->res.exit_code = 127;
		j->res.started = j->res.finished = j->started;
		return 1;
	}
	j->res.infra = 1;
	snprintf(j->res.msg, sizeof j->res.msg, "%.250s", msg ? msg : "cannot start the container");
	j->res.started = j->started;
	j->res.finished = now_wall();
	return 1;
}

static int docker_reap_op(struct exec *x, struct exec_job **job, struct exec_result *res,
			  char *err, size_t errlen)
{
	struct docker_watch *w;

	(void)err;
	(void)errlen;
	docker_pump(x->d);
	while ((w = docker_watch_done(x->d))) {
		struct djob *j = docker_watch_udata(w);
		const char *msg = NULL;
		int st = docker_watch_status(w, &msg), fin;
		char m[600];

		snprintf(m, sizeof m, "%s", msg ? msg : "");
		if (docker_watch_kind(w) == DOCKER_WATCH_REMOVE) {
			if (st == DOCKER_EUNREACH || st == DOCKER_ETIMEDOUT)
				push_str(&x->pending_rm, &x->npending, docker_watch_id(w));
			docker_watch_free(w);
			continue;
		}
		if (docker_watch_kind(w) == DOCKER_WATCH_START)
			fin = started(x, j, st, m[0] ? m : NULL);
		else
			fin = collect(x, j, st, m[0] ? m : NULL);
		if (fin)
			j->done = 1;
	}
	check_all(x);
	for (struct djob *j = x->jobs; j; j = j->next)
		if (j->done && !j->reaped) {
			j->reaped = 1;
			j->res.stdout_cut = j->cut;
			*job = &j->pub;
			*res = j->res;
			docker_notify(x->d); /* there may be more: come back */
			return 1;
		}
	return 0;
}

static int docker_cancel_op(struct exec *x, struct exec_job *job, enum exec_cancel how,
			    char *err, size_t errlen)
{
	struct djob *j = (struct djob *)job;
	int st;

	if (j->done)
		return 0;
	j->cancel_sig = how == EXEC_CANCEL_KILL ? 9 : 15;
	if (j->starting) { /* signalled as soon as it runs */
		j->kill_after_start = how;
		if (how == EXEC_CANCEL_TERM)
			return 0;
	}
	st = docker_container_kill(x->d, j->id, how == EXEC_CANCEL_KILL ? "KILL" : "TERM");
	if (st == 0 || st == 1) {
		/* its stream should end now: look at the container soon (at once when it was not
		 * running: the stream may be one that never ends, see "watch" at the top) */
		double at = mono() + (st == 1 ? 0 : CHECK_FIRST);

		if (j->w && !j->starting && (!j->check_at || j->check_at > at)) {
			j->check_at = at;
			docker_notify(x->d); /* reap re-arms the alarm */
		}
		return 0;
	}
	if (st == DOCKER_ENOTFOUND || (how == EXEC_CANCEL_KILL &&
				       (st == DOCKER_EUNREACH || st == DOCKER_ETIMEDOUT))) {
		/* gone, or the engine is away and we must not wait for it forever */
		docker_watch_free(j->w);
		j->w = NULL;
		j->res.infra = 1;
		snprintf(j->res.msg, sizeof j->res.msg, "%s", docker_errmsg(x->d));
		j->res.started = j->started;
		j->res.finished = now_wall();
		job_ready(x, j);
		return 0;
	}
	snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
	return -1;
}

static int find_by_labels(struct exec *x, const struct exec_spec *spec, struct docker_state *s)
{
	for (size_t i = 0; i < x->norphans; i++)
		if (docker_container_inspect(x->d, x->orphans[i], s) == 0 && same_attempt(s, spec))
			return 1;
	return 0;
}

static int docker_reattach_op(struct exec *x, const char *handle, const struct exec_spec *spec,
			      void *udata, struct exec_job **out, char *err, size_t errlen)
{
	struct docker_state s;
	struct djob *j;
	char m[300];
	int st;

	*out = NULL;
	st = handle && *handle ? docker_container_inspect(x->d, handle, &s) : DOCKER_ENOTFOUND;
	if (st == DOCKER_ENOTFOUND) {
		/* no handle (lost with a crash before it was recorded): find it by its labels */
		if (!find_by_labels(x, spec, &s))
			return 0;
		st = 0;
	}
	if (st) {
		snprintf(err, errlen, "docker: %s", docker_errmsg(x->d));
		return -1;
	}
	if (!same_attempt(&s, spec))
		return 0; /* not this attempt's container: never touch it */
	for (size_t i = 0; i < x->norphans; i++)
		if (!strcmp(x->orphans[i], s.id)) {
			drop_str(x->orphans, &x->norphans, i);
			break;
		}
	if (!strcmp(s.status, "created")) { /* never started: nothing to collect */
		remove_container(x, s.id);
		return 0;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		snprintf(err, errlen, "docker: out of memory");
		return -1;
	}
	snprintf(j->id, sizeof j->id, "%s", s.id);
	j->started = s.started > 0 ? s.started : now_wall();
	j->outfd = open_log(spec->stdout_path, 1, err, errlen);
	j->errfd = j->outfd >= 0 ? open_log(spec->stderr_path, 1, err, errlen) : -1;
	j->memory = spec->res.memory_bytes;
	j->out_limit = spec->stdout_limit;
	if (j->errfd >= 0 && follow(x, j, m, sizeof m) < 0)
		snprintf(err, errlen, "docker: %s", m);
	if (!j->w) {
		if (j->outfd >= 0)
			close(j->outfd);
		if (j->errfd >= 0)
			close(j->errfd);
		free(j);
		return -1;
	}
	snprintf(j->pub.handle, sizeof j->pub.handle, "%s", j->id);
	j->pub.udata = udata;
	job_link(x, j);
	docker_notify(x->d); /* reap sets the alarm for its first look */
	*out = &j->pub;
	return 1;
}

static void docker_release_op(struct exec *x, struct exec_job *job)
{
	struct djob *j = (struct djob *)job;

	if (!j)
		return;
	job_unlink(x, j);
	docker_watch_free(j->w);
	if (j->outfd >= 0)
		close(j->outfd);
	if (j->errfd >= 0)
		close(j->errfd);
	if (j->id[0] && !docker_remove_async(x->d, j->id, NULL))
		remove_container(x, j->id);
	free(j);
}

/* Waits (at most 30 s) for the removals in flight; those that fail go to pending_rm. Log
 * streams of jobs left running are dropped first (they are not waited for). */
static void drain_removals(struct exec *x)
{
	struct docker_watch *w;
	double deadline = now_wall() + 30;

	for (struct djob *j = x->jobs; j; j = j->next)
		if (!j->starting) { /* a start in flight is let finish: resume finds it running */
			docker_watch_free(j->w);
			j->w = NULL;
		}
	while (docker_pending(x->d) && now_wall() < deadline) {
		struct pollfd p = {docker_fd(x->d), POLLIN, 0};

		poll(&p, 1, 100);
		docker_pump(x->d);
		while ((w = docker_watch_done(x->d))) {
			int st = docker_watch_status(w, NULL);

			if (docker_watch_kind(w) == DOCKER_WATCH_REMOVE &&
			    (st == DOCKER_EUNREACH || st == DOCKER_ETIMEDOUT))
				push_str(&x->pending_rm, &x->npending, docker_watch_id(w));
			if (docker_watch_kind(w) == DOCKER_WATCH_START) {
				struct djob *j = docker_watch_udata(w);

				j->w = NULL;
				j->starting = 0;
			}
			docker_watch_free(w);
		}
	}
}

static void docker_close_op(struct exec *x)
{
	if (!x)
		return;
	reconcile(x);
	drain_removals(x);
	/* the engine may be restarting: give removals a little while */
	for (int i = 0; x->npending && i < 20; i++) {
		retry_pending(x);
		if (x->npending)
			usleep(500000);
	}
	if (!x->jobs && x->nvolumes_made) {
		/* nothing of the run runs any more: its volumes go (those still in use stay) */
		char label[256];

		snprintf(label, sizeof label, "kfpc.run=%s", x->run_id);
		docker_volume_prune_label(x->d, label);
	}
	while (x->jobs) { /* still running: left for --resume, only our memory goes */
		struct djob *j = x->jobs;

		x->jobs = j->next;
		docker_watch_free(j->w);
		if (j->outfd >= 0)
			close(j->outfd);
		if (j->errfd >= 0)
			close(j->errfd);
		free(j);
	}
	for (size_t i = 0; i < x->norphans; i++)
		free(x->orphans[i]);
	for (size_t i = 0; i < x->npending; i++)
		free(x->pending_rm[i]);
	free(x->orphans);
	free(x->pending_rm);
	docker_close(x->d);
	free(x->network);
	free(x->user);
	free(x->run_id);
	free(x);
}

const struct exec_ops exec_docker_ops = {
	.name = "docker",
	.open = docker_open_op,
	.capacity = docker_capacity_op,
	.path_in_step = docker_path_in_step_op,
	.start = docker_start_op,
	.fd = docker_fd_op,
	.reap = docker_reap_op,
	.cancel = docker_cancel_op,
	.reattach = docker_reattach_op,
	.release = docker_release_op,
	.close = docker_close_op,
};

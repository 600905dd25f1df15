/* exec_local.c - the local executor: each attempt is a process group on this host.
 *
 * Design:
 *   - posix_spawnp, argv directly (no shell), POSIX_SPAWN_SETPGROUP (the attempt is its own
 *     process group, so a timeout or cancel signals everything it started), an empty signal
 *     mask and default dispositions in the child, stdin from /dev/null, cwd = the workdir.
 *   - stdout and stderr are pipes (as in samurai): reap copies what arrives into the spec's
 *     log files, which are created at the first byte, so a silent step costs no files (file
 *     creation dominates the cost of a no-op step). A missing log file means "no output".
 *     When the step's process exits its group is killed and the pipes are drained and closed
 *     (output of a process that escaped the group after that is dropped).
 *   - SIGCHLD is blocked and read from a signalfd; the signalfd and every pipe are in one
 *     epoll set, whose descriptor is what the scheduler polls. No busy polling.
 *   - The environment is ours minus KFPC_SECRET_* (secrets reach a step only when it asks for
 *     them with secret()), plus the step's env, plus KFPC_RUN_ID, KFPC_STEP, KFPC_ATTEMPT.
 *   - Handles are "pid:pgid:starttime" (starttime: field 22 of /proc/PID/stat, in clock
 *     ticks since boot; known without reading /proc when CLOCK_BOOTTIME shows the same tick
 *     before and after the spawn), so a restarted engine never kills a process that merely
 *     reuses the pid. Local attempts cannot be re-attached (they are not our children any more): reattach
 *     kills what is left of them and says they are gone.
 *   - A command that cannot be executed (not found, not executable) finishes at once with
 *     exit code 127 and the reason in its stderr log, like a shell would.
 *
 * The executor registry (exec_find) lives at the end of this file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"

extern char **environ;

struct ljob;

/* One output pipe of a job. */
struct stream {
	struct ljob *job;
	int fd;              /* read end, -1 when closed */
	int epfd;            /* the epoll set fd is in */
	int logfd;           /* log file, -1 until the first byte */
	char *path;          /* log file path */
	int failed;          /* writing the log failed: drop further output */
	size_t limit;        /* 0: none; else stop the job once more than this arrived */
	size_t written;      /* bytes that arrived so far */
	int cut;             /* 1: passed the limit: the job was stopped, the log was cut */
};

struct ljob {
	struct exec_job pub; /* first member */
	pid_t pid;
	pid_t pgid;
	double started;
	int done;            /* 1: finished (res valid) */
	struct exec_result res;
	struct stream out[2];
	double kill_at;      /* stdout passed its limit: SIGKILL the group at this time, 0: none */
	struct ljob *next;   /* in x->running or x->finished */
	struct exec *x;
};

struct exec {
	int sfd;             /* signalfd for SIGCHLD */
	int epfd;            /* epoll: sfd and every job's pipes (and tfd) */
	int tfd;             /* timerfd for SIGKILL after a stdout cut, -1 until needed */
	int nkill;           /* jobs with kill_at set */
	int chld;            /* a SIGCHLD was read: call wait4 until it returns 0 */
	sigset_t oldmask;
	struct ljob *running;
	struct ljob *finished; /* synthetic completions (spawn failures), reaped first */
	char **baseenv;      /* inherited environment minus KFPC_SECRET_* and KFPC_RUN_ID/... */
	size_t nbaseenv;
	/* argv[0] -> absolute path, resolved once along our PATH like posix_spawnp does, so that a
	 * spawn does not try every PATH entry in the (vfork'd) child each time */
	struct pathent {
		char *name, *path;
	} paths[16];
	size_t npaths;
	unsigned long long ns_per_tick; /* 1e9 / sysconf(_SC_CLK_TCK), 0 if unknown */
	int devnull;         /* /dev/null, read-only: every child's stdin (dup2'd) */
	int pool[4][2];      /* pipes made ahead (read end non-blocking, both close-on-exec) */
	int npool;
};

static double now_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CLOCK_BOOTTIME in clock ticks, the unit of a process's start time in /proc/PID/stat (which
 * the kernel takes from the same clock when it creates the process), or 0 if unknown. */
static unsigned long long boot_ticks(const struct exec *x)
{
	struct timespec ts;

	if (!x->ns_per_tick || clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
		return 0;
	return ((unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec) /
	       x->ns_per_tick;
}

/* Reads the start time (clock ticks since boot) and process group of PID from /proc.
 * Returns 0, or -1 if the process does not exist. */
static int proc_stat_ex(pid_t pid, unsigned long long *start, pid_t *pgrp, char *state)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;
	char *p;
	int field;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* comm may contain spaces and parentheses: fields resume after the LAST ')' */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	/* p points at " S ppid pgrp ..." : field 3 is state */
	if (state)
		*state = p[0] == ' ' ? p[1] : p[0];
	field = 2;
	while (*p && field < 22) {
		while (*p == ' ')
			p++;
		field++;
		if (field == 5 && pgrp)
			*pgrp = (pid_t)strtol(p, NULL, 10);
		if (field == 22) {
			if (start)
				*start = strtoull(p, NULL, 10);
			return 0;
		}
		while (*p && *p != ' ')
			p++;
	}
	return -1;
}

/* Like proc_stat_ex, but a zombie (dead, not yet reaped by its new parent) counts as gone. */
static int proc_stat(pid_t pid, unsigned long long *start, pid_t *pgrp)
{
	char st = 0;

	if (proc_stat_ex(pid, start, pgrp, &st) < 0 || st == 'Z' || st == 'X')
		return -1;
	return 0;
}

static int is_filtered_env(const char *e)
{
	return !strncmp(e, "KFPC_SECRET_", 12) || !strncmp(e, "KFPC_RUN_ID=", 12) ||
	       !strncmp(e, "KFPC_STEP=", 10) || !strncmp(e, "KFPC_ATTEMPT=", 13);
}

static int local_open(const struct exec_config *cfg, struct exec **out, char *err, size_t errlen)
{
	struct exec *x;
	sigset_t set;
	size_t n = 0, i;

	x = calloc(1, sizeof *x);
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	x->tfd = -1;
	x->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (x->devnull < 0) {
		snprintf(err, errlen, "/dev/null: %s", strerror(errno));
		free(x);
		return -1;
	}
	{
		long hz = sysconf(_SC_CLK_TCK);
		if (hz > 0 && 1000000000L % hz == 0)
			x->ns_per_tick = (unsigned long long)(1000000000L / hz);
	}
	for (i = 0; environ && environ[i]; i++)
		n++;
	x->baseenv = calloc(n + 1, sizeof *x->baseenv);
	if (!x->baseenv) {
		snprintf(err, errlen, "out of memory");
		goto err1;
	}
	for (i = 0; i < n; i++)
		if (!is_filtered_env(environ[i]))
			x->baseenv[x->nbaseenv++] = environ[i];
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, &x->oldmask) < 0) {
		snprintf(err, errlen, "cannot block SIGCHLD: %s", strerror(errno));
		goto err2;
	}
	x->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (x->sfd < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		goto err3;
	}
	x->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (x->epfd < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		close(x->sfd);
		goto err3;
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &x->sfd};
		if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, x->sfd, &ev) < 0) {
			snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
			close(x->epfd);
			close(x->sfd);
			goto err3;
		}
	}
	if (!cfg || !cfg->quiet)
		fprintf(stderr, "kfpc: the local executor runs step commands directly on this host "
				"(images are recorded, not used; use --executor docker for containers)\n");
	*out = x;
	return 0;
err3:
	sigprocmask(SIG_SETMASK, &x->oldmask, NULL);
err2:
	free(x->baseenv);
err1:
	close(x->devnull);
	free(x);
	return -1;
}

/* Close ST's read end. It leaves the epoll set first: closing alone is not enough, as a child
 * being spawned holds a copy of every descriptor until its exec closes them, after posix_spawn
 * has returned, and epoll reports events for a file while any copy is open (here, with ST's
 * pointer after the job is freed). */
static void stream_close_fd(struct stream *st)
{
	if (st->fd < 0)
		return;
	epoll_ctl(st->epfd, EPOLL_CTL_DEL, st->fd, NULL);
	close(st->fd);
	st->fd = -1;
}

static void stream_close(struct stream *st)
{
	stream_close_fd(st);
	if (st->logfd >= 0)
		close(st->logfd);
	st->fd = st->logfd = -1;
	free(st->path);
	st->path = NULL;
}

static void job_free(struct ljob *j)
{
	if (!j)
		return;
	stream_close(&j->out[0]);
	stream_close(&j->out[1]);
	free(j);
}

/* Write N bytes to ST's log (created at the first byte); a failure drops further output. */
static void stream_write(struct stream *st, const char *buf, size_t n)
{
	ssize_t w;
	size_t off;

	if (st->failed || !n)
		return;
	if (st->logfd < 0) {
		st->logfd = open(st->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (st->logfd < 0) {
			st->failed = 1;
			return;
		}
	}
	for (off = 0; off < n; off += (size_t)w) {
		w = write(st->logfd, buf + off, n - off);
		if (w < 0 && errno == EINTR) {
			w = 0;
			continue;
		}
		if (w <= 0) {
			st->failed = 1; /* disk full: the step goes on, its log is cut */
			return;
		}
	}
}

/* ST passed its limit with the N bytes in BUF: keep what fits and a note, stop reading (a
 * further write gets EPIPE/SIGPIPE), SIGTERM the job's group and arm the SIGKILL timer. */
static void stream_cut(struct stream *st, const char *buf, size_t n)
{
	struct ljob *j = st->job;
	struct exec *x = j->x;
	char note[200];
	int len;

	stream_write(st, buf, st->limit - st->written);
	st->written = st->limit;
	len = snprintf(note, sizeof note, "\n[kfpc: output cut at %zu bytes, the limit of a value "
			   "output; the step was stopped]\n", st->limit);
	stream_write(st, note, (size_t)len);
	(void)n;
	st->cut = 1;
	stream_close_fd(st);
	if (j->done || j->pgid <= 0 || j->kill_at > 0)
		return;
	kill(-j->pgid, SIGTERM);
	j->kill_at = now_wall() + 5.0;
	x->nkill++;
	if (x->tfd < 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &x->tfd};
		x->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (x->tfd >= 0 && epoll_ctl(x->epfd, EPOLL_CTL_ADD, x->tfd, &ev) < 0) {
			close(x->tfd);
			x->tfd = -1;
		}
	}
	if (x->tfd >= 0) {
		struct itimerspec its = {{0, 0}, {5, 0}};
		timerfd_settime(x->tfd, 0, &its, NULL);
	} else {
		kill(-j->pgid, SIGKILL); /* no timer: no grace either */
		j->kill_at = 0;
		x->nkill--;
	}
}

/* SIGKILL the groups whose grace after a stdout cut is over; re-arm the timer for the rest. */
static void kill_due(struct exec *x)
{
	double now = now_wall(), next = 0;
	struct ljob *j;

	for (j = x->running; j; j = j->next) {
		if (j->kill_at <= 0)
			continue;
		if (j->kill_at <= now) {
			kill(-j->pgid, SIGKILL);
			j->kill_at = 0;
			x->nkill--;
		} else if (!next || j->kill_at < next) {
			next = j->kill_at;
		}
	}
	if (next > 0) {
		double d = next - now;
		struct itimerspec its = {{0, 0}, {(time_t)d, (long)((d - (time_t)d) * 1e9) + 1}};
		if (its.it_value.tv_nsec >= 1000000000L)
			its.it_value.tv_nsec = 999999999L;
		timerfd_settime(x->tfd, 0, &its, NULL);
	}
}

/* Copy what is available on ST into its log (created at the first byte). */
static void stream_drain(struct stream *st)
{
	char buf[65536];
	ssize_t r;

	while (st->fd >= 0) {
		r = read(st->fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			stream_close_fd(st); /* EOF (or an error) */
			return;
		}
		if (st->limit && st->written + (size_t)r > st->limit) {
			stream_cut(st, buf, (size_t)r);
			return;
		}
		st->written += (size_t)r;
		stream_write(st, buf, (size_t)r);
	}
}

static void local_close(struct exec *x)
{
	struct ljob *j, *nx;

	if (!x)
		return;
	for (j = x->running; j; j = nx) {
		nx = j->next;
		job_free(j);
	}
	for (j = x->finished; j; j = nx) {
		nx = j->next;
		job_free(j);
	}
	if (x->tfd >= 0)
		close(x->tfd);
	close(x->epfd);
	close(x->sfd);
	close(x->devnull);
	while (x->npool > 0) {
		x->npool--;
		close(x->pool[x->npool][0]);
		close(x->pool[x->npool][1]);
	}
	sigprocmask(SIG_SETMASK, &x->oldmask, NULL);
	for (size_t i = 0; i < x->npaths; i++) {
		free(x->paths[i].name);
		free(x->paths[i].path);
	}
	free(x->baseenv);
	free(x);
}

static int local_capacity(struct exec *x, struct exec_resources *out, char *err, size_t errlen)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	int gpu = 0;
	char path[32];

	(void)x;
	(void)err;
	(void)errlen;
	if (ncpu < 1)
		ncpu = 1;
	out->cpu_milli = (int64_t)ncpu * 1000;
	out->memory_bytes = (pages > 0 && psz > 0) ? (int64_t)pages * psz : 0;
	for (gpu = 0; gpu < 64; gpu++) {
		snprintf(path, sizeof path, "/dev/nvidia%d", gpu);
		if (access(path, F_OK) != 0)
			break;
	}
	out->gpu = gpu;
	return 0;
}

static int local_path_in_step(struct exec *x, const struct exec_spec *spec, const char *host_path,
			      char *buf, size_t len)
{
	(void)x;
	(void)spec;
	if (strlen(host_path) >= len)
		return -1;
	strcpy(buf, host_path);
	return 0;
}

/* Builds the child's environment: base env, then the step env and KFPC_* (later entries
 * override earlier ones by removing them). Returns a malloc'ed array of pointers into *strs
 * (also malloc'ed), or NULL on allocation failure. */
static char **build_env(struct exec *x, const struct exec_spec *s, char **strs)
{
	size_t cap = x->nbaseenv + s->nenv + 4, n = 0, i, k, bytes = 0;
	char **env, *p;
	char attempt[32];

	snprintf(attempt, sizeof attempt, "%d", s->id.attempt);
	for (i = 0; i < s->nenv; i++)
		bytes += strlen(s->env[i].name) + strlen(s->env[i].value ? s->env[i].value : "") + 2;
	bytes += strlen(s->id.run_id ? s->id.run_id : "") + strlen(s->id.step ? s->id.step : "") +
		 strlen(attempt) + 64;
	env = malloc(cap * sizeof *env);
	p = malloc(bytes);
	if (!env || !p) {
		free(env);
		free(p);
		return NULL;
	}
	*strs = p;
	for (i = 0; i < x->nbaseenv; i++) {
		const char *e = x->baseenv[i];
		size_t nl = strcspn(e, "=");
		for (k = 0; k < s->nenv; k++)
			if (strlen(s->env[k].name) == nl && !strncmp(s->env[k].name, e, nl))
				break;
		if (k == s->nenv)
			env[n++] = (char *)e;
	}
	for (i = 0; i < s->nenv; i++) {
		env[n++] = p;
		p += sprintf(p, "%s=%s", s->env[i].name, s->env[i].value ? s->env[i].value : "") + 1;
	}
	env[n++] = p;
	p += sprintf(p, "KFPC_RUN_ID=%s", s->id.run_id ? s->id.run_id : "") + 1;
	env[n++] = p;
	p += sprintf(p, "KFPC_STEP=%s", s->id.step ? s->id.step : "") + 1;
	env[n++] = p;
	sprintf(p, "KFPC_ATTEMPT=%s", attempt);
	env[n] = NULL;
	return env;
}

/* Set up stream ST with a new pipe; *wfd gets the write end (for the child). */
/* A pipe for a job's output: one made ahead if there is one, else a new one. */
static int pipe_get(struct exec *x, int p[2])
{
	if (x->npool > 0) {
		x->npool--;
		p[0] = x->pool[x->npool][0];
		p[1] = x->pool[x->npool][1];
		return 0;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Make the next job's two pipes ahead, once this one is spawned: creating a pipe costs more
 * than the rest of a spawn's set-up, and this takes it off the path from one step's end to
 * the next one's start. A failure here is not one: pipe_get tries again at the spawn. */
static void pipe_refill(struct exec *x)
{
	while (x->npool < 2) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return;
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		x->pool[x->npool][0] = p[0];
		x->pool[x->npool][1] = p[1];
		x->npool++;
	}
}

static int stream_open(struct exec *x, struct ljob *j, struct stream *st, const char *path,
		       int *wfd, char *err, size_t errlen)
{
	int p[2];
	struct epoll_event ev;

	st->job = j;
	st->fd = st->logfd = -1;
	st->epfd = x->epfd;
	st->path = strdup(path ? path : "/dev/null");
	if (!st->path) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pipe_get(x, p) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	st->fd = p[0];
	*wfd = p[1];
	ev.events = EPOLLIN;
	ev.data.ptr = st;
	if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, p[0], &ev) < 0) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The cached absolute path of command NAME (no '/'), resolving it along our PATH the way
 * posix_spawnp would, or NULL (not found, relative PATH entries, cache full): then the caller
 * uses posix_spawnp. The string is owned by X. */
static const char *path_lookup(struct exec *x, const char *name)
{
	const char *pathv = getenv("PATH"), *p, *e;
	char buf[PATH_MAX];
	struct stat sb;
	size_t i, nl = strlen(name);

	for (i = 0; i < x->npaths; i++)
		if (!strcmp(x->paths[i].name, name))
			return x->paths[i].path;
	if (x->npaths == sizeof x->paths / sizeof *x->paths || !nl)
		return NULL;
	if (!pathv)
		pathv = "/bin:/usr/bin"; /* glibc's default */
	for (p = pathv; ; p = e + 1) {
		size_t dl;
		e = strchrnul(p, ':');
		dl = (size_t)(e - p);
		if (!dl || p[0] != '/')
			return NULL; /* relative entry: it depends on the child's cwd */
		if (dl + 1 + nl < sizeof buf) {
			memcpy(buf, p, dl);
			buf[dl] = '/';
			memcpy(buf + dl + 1, name, nl + 1);
			if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode) && access(buf, X_OK) == 0) {
				char *n = strdup(name), *q = strdup(buf);
				if (!n || !q) {
					free(n);
					free(q);
					return NULL;
				}
				x->paths[x->npaths].name = n;
				x->paths[x->npaths].path = q;
				return x->paths[x->npaths++].path;
			}
		}
		if (!*e)
			return NULL;
	}
}

/* Forget the cached path of NAME (it failed to run). */
static void path_forget(struct exec *x, const char *name)
{
	for (size_t i = 0; i < x->npaths; i++)
		if (!strcmp(x->paths[i].name, name)) {
			free(x->paths[i].name);
			free(x->paths[i].path);
			x->paths[i] = x->paths[--x->npaths];
			return;
		}
}

static int local_start(struct exec *x, const struct exec_spec *s, void *udata,
		       struct exec_job **out, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t empty, all;
	struct ljob *j;
	char **env = NULL, *strs = NULL;
	int ofd = -1, efd = -1, rc = -1, e;
	unsigned long long st = 0, tick0, tick1;
	const char *cwd = s->workdir ? s->workdir : s->scratch_dir;

	if (!s->argv || !s->argv[0]) {
		snprintf(err, errlen, "empty command");
		return -1;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->pub.udata = udata;
	j->x = x;
	j->out[0].fd = j->out[0].logfd = j->out[1].fd = j->out[1].logfd = -1;
	if (stream_open(x, j, &j->out[0], s->stdout_path, &ofd, err, errlen) < 0 ||
	    stream_open(x, j, &j->out[1], s->stderr_path, &efd, err, errlen) < 0)
		goto out0;
	j->out[0].limit = s->stdout_limit;
	env = build_env(x, s, &strs);
	if (!env) {
		snprintf(err, errlen, "out of memory");
		goto out0;
	}
	if ((e = posix_spawn_file_actions_init(&fa))) {
		snprintf(err, errlen, "posix_spawn_file_actions_init: %s", strerror(e));
		goto out0;
	}
	if ((e = posix_spawnattr_init(&attr))) {
		snprintf(err, errlen, "posix_spawnattr_init: %s", strerror(e));
		goto out1;
	}
	sigemptyset(&empty);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	if ((e = posix_spawn_file_actions_adddup2(&fa, x->devnull, 0)) ||
	    (e = posix_spawn_file_actions_adddup2(&fa, ofd, 1)) ||
	    (e = posix_spawn_file_actions_adddup2(&fa, efd, 2)) ||
	    (cwd && (e = posix_spawn_file_actions_addchdir_np(&fa, cwd))) ||
	    (e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
							 POSIX_SPAWN_SETSIGDEF)) ||
	    (e = posix_spawnattr_setpgroup(&attr, 0)) ||
	    (e = posix_spawnattr_setsigmask(&attr, &empty)) ||
	    (e = posix_spawnattr_setsigdefault(&attr, &all))) {
		snprintf(err, errlen, "posix_spawn setup: %s", strerror(e));
		goto out2;
	}
	j->started = now_wall();
	tick0 = boot_ticks(x);
	{
		const char *full = strchr(s->argv[0], '/') ? NULL : path_lookup(x, s->argv[0]);
		e = full ? posix_spawn(&j->pid, full, &fa, &attr, s->argv, env) : -1;
		if (e) {
			/* not cached, or it no longer runs (gone, ENOEXEC script...): the slow way */
			if (full)
				path_forget(x, s->argv[0]);
			e = posix_spawnp(&j->pid, s->argv[0], &fa, &attr, s->argv, env);
		}
	}
	tick1 = boot_ticks(x);
	if (e) {
		/* like a shell: the step fails with 127 and says why in its log */
		dprintf(efd, "kfpc: cannot execute '%s'%s%s: %s\n", s->argv[0],
			cwd ? " in " : "", cwd ? cwd : "", strerror(e));
		close(efd);
		efd = -1;
		close(ofd);
		ofd = -1;
		stream_drain(&j->out[0]);
		stream_drain(&j->out[1]);
		j->done = 1;
		j->res.exit_code = 127;
		j->res.started = j->started;
		j->res.finished = now_wall();
		snprintf(j->res.msg, sizeof j->res.msg, "cannot execute '%.100s': %s", s->argv[0],
			 strerror(e));
		snprintf(j->pub.handle, sizeof j->pub.handle, "none");
		j->next = x->finished;
		x->finished = j;
	} else {
		j->pgid = j->pid;
		/* the child's start time lies between tick0 and tick1: when they are the same
		 * tick, that is it, and /proc need not be read (most spawns take well under a
		 * tick); else read it */
		if (tick0 && tick0 == tick1)
			st = tick0;
		else if (proc_stat(j->pid, &st, NULL) < 0)
			st = 0;
		snprintf(j->pub.handle, sizeof j->pub.handle, "%d:%d:%llu", (int)j->pid,
			 (int)j->pgid, st);
		j->next = x->running;
		x->running = j;
		pipe_refill(x);
	}
	*out = &j->pub;
	j = NULL;
	rc = 0;
out2:
	posix_spawnattr_destroy(&attr);
out1:
	posix_spawn_file_actions_destroy(&fa);
out0:
	if (ofd >= 0)
		close(ofd);
	if (efd >= 0)
		close(efd);
	free(env);
	free(strs);
	job_free(j);
	return rc;
}

static int local_fd(struct exec *x)
{
	return x->epfd;
}

static int local_reap(struct exec *x, struct exec_job **job, struct exec_result *res, char *err,
		      size_t errlen)
{
	struct signalfd_siginfo si;
	struct ljob *j, **pp;
	struct rusage ru;
	int status;
	pid_t pid;

	struct epoll_event evs[64];
	int nev, k;

	if (x->finished) {
		j = x->finished;
		x->finished = j->next;
		j->next = NULL;
		*job = &j->pub;
		*res = j->res;
		return 1;
	}
	/* Once per round (not per reaped job): copy what the pipes hold, and learn from the
	 * signalfd whether a child ended; wait4 is called only then, until it says no more. */
	if (!x->chld) {
		while ((nev = epoll_wait(x->epfd, evs, 64, 0)) > 0) {
			for (k = 0; k < nev; k++) {
				if (evs[k].data.ptr == &x->sfd) {
					if (read(x->sfd, &si, sizeof si) == sizeof si)
						x->chld = 1;
				} else if (evs[k].data.ptr == &x->tfd) {
					uint64_t ticks;
					if (read(x->tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
						continue; /* kill_due below looks at the deadlines */
				} else {
					stream_drain(evs[k].data.ptr);
				}
			}
			if (nev < 64)
				break;
		}
		if (x->nkill > 0)
			kill_due(x);
		if (!x->chld)
			return 0;
	}
	for (;;) {
		pid = wait4(-1, &status, WNOHANG, &ru);
		if (pid == 0) {
			x->chld = 0;
			return 0;
		}
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD) {
				x->chld = 0;
				return 0;
			}
			snprintf(err, errlen, "wait: %s", strerror(errno));
			return -1;
		}
		for (pp = &x->running; (j = *pp); pp = &j->next)
			if (j->pid == pid)
				break;
		if (!j)
			continue; /* not ours (should not happen) */
		*pp = j->next;
		j->next = NULL;
		if (!x->running)
			x->chld = 0; /* no child left: the next wait4 would only say ECHILD */
		/* whatever the step left behind in its group goes with it; its output is taken */
		kill(-j->pgid, SIGKILL);
		if (j->kill_at > 0) {
			j->kill_at = 0;
			x->nkill--;
		}
		j->done = 1; /* a cut found by the last drains signals nothing (the group is gone) */
		stream_drain(&j->out[0]);
		stream_drain(&j->out[1]);
		stream_close(&j->out[0]);
		stream_close(&j->out[1]);
		memset(res, 0, sizeof *res);
		res->stdout_cut = j->out[0].cut;
		res->started = j->started;
		res->finished = now_wall();
		if (WIFEXITED(status)) {
			res->exit_code = WEXITSTATUS(status);
		} else if (WIFSIGNALED(status)) {
			res->signal = WTERMSIG(status);
			res->exit_code = 128 + res->signal;
			snprintf(res->msg, sizeof res->msg, "killed by signal %d (%s)", res->signal,
				 strsignal(res->signal));
		}
		*job = &j->pub;
		return 1;
	}
}

static int local_cancel(struct exec *x, struct exec_job *job, enum exec_cancel how, char *err,
			size_t errlen)
{
	struct ljob *j = (struct ljob *)job;

	(void)x;
	if (j->done || j->pgid <= 0)
		return 0;
	if (kill(-j->pgid, how == EXEC_CANCEL_KILL ? SIGKILL : SIGTERM) < 0 && errno != ESRCH) {
		snprintf(err, errlen, "kill: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Does /proc/PID/environ contain exactly the string KV? */
static int environ_has(pid_t pid, const char *kv)
{
	char path[64], *buf = NULL, *p;
	size_t cap = 0, len = 0, kl = strlen(kv);
	ssize_t n;
	int fd, found = 0;

	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += n;
		if (len > (1u << 24))
			break;
	}
	close(fd);
	if (!buf)
		return 0;
	buf[len] = 0;
	for (p = buf; p < buf + len; p += strlen(p) + 1)
		if (strlen(p) == kl && !memcmp(p, kv, kl)) {
			found = 1;
			break;
		}
	free(buf);
	return found;
}

/* Kills every live process that carries our run id, step and attempt in its environment
 * (the labels local_start puts there): the way to find an attempt whose handle was lost, or
 * processes that left its group. ID->step NULL: every process of the run. Returns the number
 * of processes signalled; their pids are written to pids[max]. */
static int kill_labelled(const struct exec_labels *id, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char kv1[256], kv2[512], kv3[64];
	int n = 0;

	if (!d)
		return 0;
	snprintf(kv1, sizeof kv1, "KFPC_RUN_ID=%s", id->run_id ? id->run_id : "");
	snprintf(kv2, sizeof kv2, "KFPC_STEP=%s", id->step ? id->step : "");
	snprintf(kv3, sizeof kv3, "KFPC_ATTEMPT=%d", id->attempt);
	while ((de = readdir(d))) {
		pid_t pid;
		char *end;

		pid = (pid_t)strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		if (proc_stat(pid, NULL, NULL) < 0)
			continue;
		if (!environ_has(pid, kv1) ||
		    (id->step && (!environ_has(pid, kv2) || !environ_has(pid, kv3))))
			continue;
		if (kill(pid, SIGKILL) == 0 && n < max)
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

/* Wait (up to 2 s) until the killed processes are gone, so that a new attempt never races an
 * old one: LEADER (0: none) while it still has start time START, and PIDS[N]. */
static void wait_gone(pid_t leader, unsigned long long start, const pid_t *pids, int n)
{
	unsigned long long st;
	int i, k, alive;

	for (i = 0; i < 200; i++) {
		alive = leader > 0 && proc_stat(leader, &st, NULL) == 0 && st == start;
		for (k = 0; k < n && !alive; k++)
			alive = proc_stat(pids[k], NULL, NULL) == 0;
		if (!alive)
			return;
		poll(NULL, 0, 10);
	}
}

static int local_reattach(struct exec *x, const char *handle, const struct exec_spec *spec,
			  void *udata, struct exec_job **job, char *err, size_t errlen)
{
	int pid = 0, pgid = 0, n;
	unsigned long long start = 0, st;
	pid_t pids[256];

	(void)x;
	(void)udata;
	(void)job;
	(void)err;
	(void)errlen;
	if (handle && sscanf(handle, "%d:%d:%llu", &pid, &pgid, &start) == 3 && pid > 0 &&
	    pgid > 0 && proc_stat(pid, &st, NULL) == 0 && st == start)
		kill(-pgid, SIGKILL); /* the same leader, still alive: its whole group goes */
	else
		pid = 0;
	/* by label: an attempt whose handle was never recorded, and stragglers */
	n = kill_labelled(&spec->id, pids, 256);
	wait_gone(pid, start, pids, n);
	return 0;
}

/* Every process of run RUN_ID is killed, whichever attempt it belongs to and whether or not
 * the store knows it (an attempt spawned just before a crash, whose record never committed):
 * found by the KFPC_RUN_ID in its environment. Waits up to 2 s for them to be gone; a process
 * that takes longer (uninterruptible I/O) dies on its own, its attempt's files are replaced. */
static int local_sweep(struct exec *x, const char *run_id, char *err, size_t errlen)
{
	struct exec_labels id = {0};
	pid_t pids[1024];

	(void)x;
	(void)err;
	(void)errlen;
	id.run_id = run_id;
	wait_gone(0, 0, pids, kill_labelled(&id, pids, 1024));
	return 0;
}

static void local_release(struct exec *x, struct exec_job *job)
{
	(void)x;
	job_free((struct ljob *)job);
}

const struct exec_ops exec_local_ops = {
	.name = "local",
	.open = local_open,
	.capacity = local_capacity,
	.path_in_step = local_path_in_step,
	.start = local_start,
	.fd = local_fd,
	.reap = local_reap,
	.cancel = local_cancel,
	.reattach = local_reattach,
	.release = local_release,
	.sweep = local_sweep,
	.close = local_close,
};

/* ---- registry ------------------------------------------------------------------------- */

#if defined(__has_include)
#if __has_include("exec_docker.c")
#define KFPC_HAVE_DOCKER 1
#endif
#endif

static const struct exec_ops *const executors[] = {
	&exec_local_ops,
#ifdef KFPC_HAVE_DOCKER
	&exec_docker_ops,
#endif
};

const struct exec_ops *exec_find(const char *name)
{
	for (size_t i = 0; i < sizeof executors / sizeof executors[0]; i++)
		if (!strcmp(executors[i]->name, name))
			return executors[i];
	return NULL;
}

const char *exec_names(void)
{
#ifdef KFPC_HAVE_DOCKER
	return "local, docker";
#else
	return "local";
#endif
}

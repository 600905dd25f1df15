/* docker.h - a small client for the Docker Engine REST API (also Podman's Docker-compatible
 * service), over its unix socket or TCP, with libcurl and json-c. It never runs the docker CLI.
 *
 * Endpoint: docker_open(NULL) honours DOCKER_HOST ("unix:///path/docker.sock" or
 * "tcp://host:port"), default unix:///var/run/docker.sock. Every path is versioned
 * (/v1.41/..., lowered to the engine's own version when that is older; KFPC_DOCKER_API_VERSION
 * overrides). Every synchronous request has a timeout (KFPC_DOCKER_TIMEOUT seconds, default
 * 60; connect 5 s; image pulls 30 min with a stall limit of 120 s; reading a whole log 30 min
 * with a stall limit of the timeout), so no call hangs.
 *
 * Errors: every call returns 0 (or a documented count/flag) or one of the negative DOCKER_E*
 * codes below, and leaves a one-line message naming the image or container in
 * docker_errmsg(), e.g. "image 'busybox:9' not found (HTTP 404: No such image: busybox:9)".
 *
 * Asynchronous requests ("watches"): docker_watch_logs follows one container's log stream
 * (GET .../logs?follow=1), demultiplexes its 8-byte-header frames into two descriptors, and
 * ends when the container stops; docker_start_async and docker_remove_async start or remove
 * a container without waiting. All watches share one curl multi handle driven through an
 * epoll descriptor (docker_fd): when it is readable, call docker_pump, then take finished
 * watches with docker_watch_done. Nothing blocks and no thread is used. A log stream has no
 * total timeout (a step may run for days) and an engine may keep it open after the container
 * stopped (Podman 4's follow ends on a "died" event it can miss): callers check the
 * container with docker_container_inspect from time to time (docker_alarm wakes them) and
 * drop a stream that outlives its container, reading the whole log with
 * docker_container_logs instead.
 *
 * A struct docker is not thread-safe: one thread uses it at a time. */
#ifndef KFPC_DOCKER_H
#define KFPC_DOCKER_H

#include <stddef.h>
#include <stdint.h>

enum docker_status {
	DOCKER_OK = 0,
	DOCKER_EUNREACH = -1,   /* the engine cannot be reached, or it dropped the connection */
	DOCKER_ETIMEDOUT = -2,  /* the request exceeded its timeout */
	DOCKER_ENOTFOUND = -3,  /* HTTP 404: no such image / container */
	DOCKER_ECONFLICT = -4,  /* HTTP 409: name in use, container not running, ... */
	DOCKER_EAPI = -5,       /* any other HTTP error status (400, 500, ...) */
	DOCKER_EPROTO = -6,     /* a response we could not understand */
	DOCKER_ENOMEM = -7,     /* out of memory */
	DOCKER_EINVAL = -8,     /* a bad argument (malformed DOCKER_HOST, image reference, ...) */
	DOCKER_EIO = -9,        /* writing a log file failed */
};

struct docker;       /* a client (opaque) */
struct docker_watch; /* one asynchronous request: a followed log stream, a start, a removal */

enum docker_watch_kind {
	DOCKER_WATCH_LOGS = 1,   /* GET /containers/ID/logs?follow=1 */
	DOCKER_WATCH_START = 2,  /* POST /containers/ID/start */
	DOCKER_WATCH_REMOVE = 3, /* DELETE /containers/ID?force=1&v=1 */
};

/* A bind mount: HOST path at CONTAINER path, read-only when READONLY. For a named volume,
 * HOST is the volume's name. */
struct docker_mount {
	const char *host;
	const char *container;
	int readonly;
};

/* A container to create. All pointers are borrowed for the call. */
struct docker_create {
	const char *name;          /* container name, or NULL for a generated one */
	const char *image;
	char *const *argv;         /* argv[0] becomes the Entrypoint, the rest the Cmd; NULL or
				      argc 0: the image's own */
	size_t argc;
	char *const *env;          /* "NAME=VALUE" strings */
	size_t nenv;
	const char *workdir;       /* NULL: the image's */
	const char *user;          /* "uid:gid", or NULL for the image's */
	const struct docker_mount *mounts;
	size_t nmounts;
	const char *const *labels; /* key, value, key, value, ... */
	size_t nlabels;            /* number of key/value PAIRS */
	int64_t nano_cpus;         /* 0: no limit */
	int64_t memory_bytes;      /* 0: no limit; else swap is limited to the same (no swap) */
	int64_t gpus;              /* 0: none; else a DeviceRequest for that many GPUs */
	const char *network_mode;  /* NULL: "none" */
	int init;                  /* 1: HostConfig.Init (a tiny init forwards signals) */
	int64_t nofile;            /* > 0: ulimit nofile (soft = hard); 0: the engine's default */
	int64_t nproc;             /* > 0: ulimit nproc (soft = hard); 0: the engine's default */
};

/* What inspect tells about a container. Strings are NUL-terminated copies (truncated). */
struct docker_state {
	char id[72];
	char status[16];  /* created running paused restarting removing exited dead */
	int running;      /* State.Running */
	int exit_code;    /* State.ExitCode */
	int oom_killed;   /* State.OOMKilled */
	double started;   /* State.StartedAt, seconds since the epoch (0: unknown) */
	double finished;  /* State.FinishedAt (0: unknown) */
	char error[256];  /* State.Error ("" if none) */
	char run[128];    /* label kfpc.run ("" if absent) */
	char step[512];   /* label kfpc.step */
	int attempt;      /* label kfpc.attempt (0 if absent) */
};

/* One container of a list. */
struct docker_summary {
	char id[72];
	char state[16];   /* created running exited ... */
	char run[128];    /* labels, "" if absent */
	char step[512];
	int attempt;
};

/* Creates a client for HOST ("unix:///path", "tcp://host:port"; NULL: $DOCKER_HOST, else
 * unix:///var/run/docker.sock). Does not contact the engine. Returns NULL with a message in
 * err[errlen] for a malformed host or when out of memory. The caller frees it with
 * docker_close. */
struct docker *docker_open(const char *host, char *err, size_t errlen);

/* Frees D, its connections and every watch still attached (their descriptors are not
 * closed: they belong to the caller). NULL is ok. */
void docker_close(struct docker *d);

/* The endpoint D talks to, as the user wrote it ("unix:///var/run/docker.sock"). Owned by D. */
const char *docker_host(const struct docker *d);

/* The message of the last failed call on D ("" if none). Owned by D; valid until the next
 * call on D. */
const char *docker_errmsg(const struct docker *d);

/* Sets the timeout, in seconds, of every later synchronous request (> 0). */
void docker_set_timeout(struct docker *d, double seconds);

/* Checks that the engine answers (GET /_ping) and picks the API version (GET /version).
 * Returns 0 or a DOCKER_E* code. */
int docker_ping(struct docker *d);

/* The engine's product name ("Docker Engine", "Podman Engine") and version after a
 * successful docker_ping, else "". Owned by D. */
const char *docker_engine_name(const struct docker *d);

/* The machine as the engine sees it (GET /info): CPUs and memory in bytes. */
int docker_info(struct docker *d, int64_t *ncpu, int64_t *mem_bytes);

/* 1 when IMAGE is present in the engine, 0 when it is not, or a DOCKER_E* code. */
int docker_image_present(struct docker *d, const char *image);

/* Pulls IMAGE ("name[:tag][@digest]"; no tag means ":latest"), with credentials from
 * $DOCKER_CONFIG/config.json or ~/.docker/config.json ("auths" entries) when there are any.
 * Blocks until done. Returns 0 or a DOCKER_E* code (the message names the image). */
int docker_image_pull(struct docker *d, const char *image);

/* Creates a container. On success writes its id to id[idlen] (at least 65 bytes) and
 * returns 0; DOCKER_ENOTFOUND means the image is not present, DOCKER_ECONFLICT that the
 * name is taken. */
int docker_container_create(struct docker *d, const struct docker_create *c, char *id,
			    size_t idlen);

/* Starts container ID (a container that already runs is not an error). */
int docker_container_start(struct docker *d, const char *id);

/* Inspects container ID into *st. DOCKER_ENOTFOUND: no such container. */
int docker_container_inspect(struct docker *d, const char *id, struct docker_state *st);

/* Sends signal SIG ("TERM", "KILL") to container ID. Returns 0 (sent), 1 when the container
 * was not running (Docker's 409, Podman's 409 or 500 "can only kill running containers"), or
 * a DOCKER_E* code. */
int docker_container_kill(struct docker *d, const char *id, const char *sig);

/* Removes container ID, killing it first if it runs, with its anonymous volumes. A container
 * that no longer exists is not an error. */
int docker_container_remove(struct docker *d, const char *id);

/* Writes the whole log of container ID so far (GET .../logs without follow), demultiplexed:
 * stdout to OUT_FD, stderr to ERR_FD (the descriptors stay the caller's). Blocks; bounded by
 * a stall limit of the usual timeout. Returns 0 or a DOCKER_E* code (DOCKER_EIO: a write
 * failed). */
int docker_container_logs(struct docker *d, const char *id, int out_fd, int err_fd);

/* docker_container_logs keeping at most LIMIT bytes of stdout (0: no limit): past it, NOTE
 * (NULL: none) is written once after the first LIMIT bytes, the rest of stdout is dropped
 * (stderr is not limited) and *cut (when CUT is not NULL) is set to 1, else to 0. */
int docker_container_logs_limit(struct docker *d, const char *id, int out_fd, int err_fd,
				uint64_t limit, const char *note, int *cut);

/* Lists every container (running or not) that carries label LABEL ("key" or "key=value").
 * On success *out is a malloc'ed array of *n entries that the caller frees with free(). */
int docker_container_list(struct docker *d, const char *label, struct docker_summary **out,
			  size_t *n);

/* Creates the named volume NAME with labels (key, value pairs) unless it exists. */
int docker_volume_create(struct docker *d, const char *name, const char *const *labels,
			 size_t nlabels);

/* Removes every volume that carries label LABEL ("key=value"); volumes in use are left.
 * Returns the number removed or a DOCKER_E* code. */
int docker_volume_prune_label(struct docker *d, const char *label);

/* ---- log streams ---------------------------------------------------------------------- */

/* A descriptor that becomes readable when docker_pump has work (socket data, a curl timer,
 * a docker_notify). Owned by D, FD_CLOEXEC. */
int docker_fd(struct docker *d);

/* Makes docker_fd readable (so that a caller polling it comes back soon). */
void docker_notify(struct docker *d);

/* Makes docker_fd readable SECONDS from now (0: at once), replacing the previous alarm;
 * SECONDS < 0 disarms it. docker_pump consumes it. For callers that must look at something
 * later (a container whose log stream should have ended). */
void docker_alarm(struct docker *d, double seconds);

/* Starts following the logs of container ID from its beginning (or from SINCE, seconds since
 * the epoch, when > 0): stdout frames are written to OUT_FD and stderr frames to ERR_FD as
 * they arrive. The descriptors stay the caller's. The watch ends when the container stops
 * (or the stream breaks). Returns NULL on error (docker_errmsg). Free with
 * docker_watch_free. */
struct docker_watch *docker_watch_logs(struct docker *d, const char *id, int out_fd,
				       int err_fd, double since, void *udata);

/* Starts container ID without waiting: the watch ends when the engine answered (status 0:
 * started; a DOCKER_E* code and message otherwise). Free with docker_watch_free. */
struct docker_watch *docker_start_async(struct docker *d, const char *id, void *udata);

/* Removes container ID (force, with its anonymous volumes) without waiting: the watch ends
 * when the engine answered (a container that no longer exists counts as removed). */
struct docker_watch *docker_remove_async(struct docker *d, const char *id, void *udata);

/* What W does. */
enum docker_watch_kind docker_watch_kind(const struct docker_watch *w);

/* The container W is about. Owned by W. */
const char *docker_watch_id(const struct docker_watch *w);

/* How many watches of D have not ended yet. */
int docker_pending(const struct docker *d);

/* Drives every watch without blocking. Returns 0, or a DOCKER_E* code when curl itself
 * fails (watches then end with an error). */
int docker_pump(struct docker *d);

/* The next watch that has ended, or NULL. Each ended watch is returned once. */
struct docker_watch *docker_watch_done(struct docker *d);

/* How watch W ended: 0 when the stream closed normally (the container stopped), else a
 * DOCKER_E* code with a message in *msg (owned by W; may be NULL). 1 while still running. */
int docker_watch_status(const struct docker_watch *w, const char **msg);

/* The udata given to docker_watch_logs. */
void *docker_watch_udata(const struct docker_watch *w);

/* Bytes of log payload W has written so far. */
uint64_t docker_watch_bytes(const struct docker_watch *w);

/* Keeps at most LIMIT bytes of the stdout of log stream W (0: no limit): past it, NOTE (copied;
 * NULL: none; at most 255 bytes) is written once after the first LIMIT bytes, the rest of
 * stdout is dropped (stderr goes on) and docker_watch_cut turns 1. The stream itself goes on
 * until the container stops: stopping it is the caller's. Call before the next docker_pump. */
void docker_watch_limit(struct docker_watch *w, uint64_t limit, const char *note);

/* 1 when the stdout of W passed its docker_watch_limit, else 0. */
int docker_watch_cut(const struct docker_watch *w);

/* Stops (if needed) and frees W. NULL is ok. */
void docker_watch_free(struct docker_watch *w);

#endif

/* kfpd.h - the engine daemon's shared state and the small modules around it.
 *
 * kfpd is one process: libmicrohttpd threads answer the REST API (http.c routes to api_*.c
 * handlers), and the main thread is the "loop" (loop.c): it reaps and starts run workers, fires
 * cron schedules, resumes suspended log-follow connections and notices SIGTERM. All durable state
 * lives in DATA/daemon.mdb (db.c); a run is executed by a `kfpc run` worker process (runner.c).
 *
 * Threads: every function here may be called from any thread unless its comment says otherwise. */
#ifndef KFPD_H
#define KFPD_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

struct db;
struct MHD_Daemon;

/* Limits on what a client may send. */
#define KFPD_MAX_BODY (4u << 20)    /* request bodies: 4 MiB */
#define KFPD_MAX_HEADERS (12u << 10) /* per-connection header memory: 12 KiB */

/* Daemon configuration and shared state. One per process, owned by main(). */
struct kfpd {
	/* configuration (read-only after start) */
	const char *listen;   /* "127.0.0.1:8080" */
	char *data_dir;       /* absolute */
	const char *executor; /* "local" | "docker" */
	char *kfpc;           /* path of the kfpc binary used for workers */
	char admin_hash[65];  /* SHA-256 hex of the admin token, "" = no admin token */
	int threads;          /* HTTP thread pool size */
	int max_workers;      /* run worker processes at once */
	int stop_workers;     /* --stop-workers: SIGKILL workers at shutdown (default: leave them) */
	time_t fake_now;      /* KFPD_FAKE_NOW (tests): 0 = real clock */
	/* state */
	struct db *db;
	struct MHD_Daemon *mhd;
	volatile int ready;   /* set once recovery finished: /readyz answers 200 */
	int wake_fd[2];       /* pipe: HTTP threads wake the loop (new run, cancel) */
};

/* ---- log.c: structured logs, one JSON object per line on stderr ---------------------------- */

/* Writes {"ts":..., "level":LEVEL, "msg":MSG, ...FIELDS} as one line. Takes ownership of FIELDS
 * (may be NULL). Never prints secret values: callers pass none. */
void log_json(const char *level, const char *msg, json_object *fields);

/* Nonzero: log_json() writes nothing (fuzz/fuzz_api.c). */
extern int log_quiet;

/* Same with FIELDS built from "key", "value" string pairs ending with NULL. */
void log_kv(const char *level, const char *msg, ...);

/* ---- metrics.c: Prometheus counters --------------------------------------------------------- */

/* Counts one HTTP request with its method and status code. */
void metrics_http(const char *method, unsigned status);

/* Observes one finished step's duration in seconds. */
void metrics_step_duration(double seconds);

/* Sets the number of runs in STATE (gauge). */
void metrics_runs_set(const char *state, long n);

/* Sets the queue depth (runs accepted, no worker yet). */
void metrics_queue_set(long n);

/* Returns the Prometheus text exposition in a malloc'd string (caller frees), NULL on ENOMEM. */
char *metrics_render(void);

/* ---- util.c ----------------------------------------------------------------------------------- */

/* Writes the lowercase SHA-256 hex of BUF (LEN bytes) into OUT (65 bytes). Returns 0, -1 on error. */
int util_sha256_hex(const void *buf, size_t len, char out[65]);

/* Fills OUT with N random bytes as 2N hex chars + NUL. Returns 0, -1 on error. */
int util_random_hex(char *out, size_t n);

/* Returns the current time (KFPD_FAKE_NOW + elapsed when set, for tests). */
time_t util_now(const struct kfpd *k);

/* Returns wall-clock milliseconds since the epoch. */
int64_t util_now_ms(void);

/* Writes T as "2026-11-29T07:56:05Z" into OUT (32 bytes); returns OUT. */
char *util_iso8601(time_t t, char out[32]);

/* Returns 1 if S is a safe name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}, else 0. */
int util_name_ok(const char *s);

/* mkdir -p for DIR (mode 0700 for new components). Returns 0 or -1 (errno set). */
int util_mkdirs(const char *dir);

/* Writes LEN bytes of BUF to PATH atomically (temp + fsync + rename). Returns 0 or -1. */
int util_write_file(const char *path, const void *buf, size_t len);

/* Reads the whole file PATH into a malloc'd NUL-terminated buffer (caller frees), length in *LEN
 * (may be NULL). Returns NULL on error (errno set). */
char *util_read_file(const char *path, size_t *len);

/* Held around everything that reads or changes the process environment: validate_cron_next()
 * (sets TZ), the compiler (reads KFPC_STDLIB_PATH), posix_spawnp (reads PATH). */
extern pthread_mutex_t util_env_lock;

/* Wakes the loop thread (writes a byte to k->wake_fd). */
void util_wake(struct kfpd *k);

#endif

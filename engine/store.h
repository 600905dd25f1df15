/* store.h - the engine's durable state: runs, step instances, artifacts, lineage, cache index.
 *
 * One state directory (default `.kfpc` in the cwd, else `--state DIR`, else $KFPC_STATE) holds
 *
 *   STATE/store.mdb/   the LMDB environment (this module)
 *   STATE/cas/         content-addressed artifacts (art.h)
 *   STATE/logs/        per-attempt stdout/stderr files (paths from store_attempt_dir)
 *   STATE/work/        per-attempt scratch directories (paths from store_attempt_dir)
 *
 * The key schema and value encoding are documented at the top of store.c.
 *
 * Durability policy
 * -----------------
 * Every write function below commits before it returns (or, between store_batch_begin and
 * store_batch_end, when the batch ends). Commits use MDB_NOSYNC: a committed write is in the
 * OS page cache, so once a write function has returned 0 the fact survives kill -9 of the
 * process (and of every other kfpc process). It survives an OS crash or power loss only up to
 * the last sync: the store syncs (fdatasync) on a commit when the previous sync is 1 s old or
 * more, in store_sync_if_due (call it from an idle loop to bound the window to about a second
 * even when no commit follows), in store_sync, and in store_close. An OS crash can therefore
 * lose the state changes of the last second or so. LMDB documents one more risk of
 * MDB_NOSYNC: on a file system that does not preserve write order, a system crash in that
 * window can also damage the store. $KFPC_STORE_SYNC=1 removes both risks by flushing every
 * commit (no MDB_NOSYNC: one fdatasync per commit, much slower on real disks).
 *
 * Write transactions are short: each commit writes a handful of records built in memory
 * beforehand. No read transaction is held between calls: every read function opens and
 * closes its own, so a long run never pins old pages and `kfpc show` can read while a run
 * writes. Several processes (kfpc run, kfpc show, another kfpc run) may open the same state
 * directory at once; LMDB serialises writers with its lock file (MDB_NOLOCK is never used).
 *
 * Map size: the LMDB map starts at cap/4 (at least 256 KiB, at most 64 MiB, never above the
 * cap; an existing store keeps its larger size) and doubles whenever a commit hits
 * MDB_MAP_FULL, up to a cap (default 64 GiB; $KFPC_STORE_MAX_MAP=BYTES lowers it, e.g. for
 * tests; suffixes K, M, G are accepted). The failed transaction is aborted and replayed in the
 * larger map transparently. Beyond the cap the write fails with STORE_EFULL and the message
 * "state store is full (map size N bytes): ..."; nothing of that write is stored and the
 * store stays consistent. A write that ends a run (store_run_put with a terminal status) may
 * use a reserve above the cap (cap/8, at least 256 KiB) so that the caller can still mark the
 * run failed after STORE_EFULL. A full disk or quota (ENOSPC, EDQUOT) gives STORE_ENOSPC.
 *
 * Processes and threads: open the store after any fork (never use a handle in a forked child;
 * executors spawn with posix_spawn). A handle is not thread-safe: use one per thread or a lock
 * (MDB_NOTLS is set, so read transactions are not tied to threads). Stale reader slots of
 * killed processes are cleared at open (mdb_reader_check). LMDB forbids opening the same
 * environment twice in one process: open the state store once per process and share it.
 *
 * Errors: functions return 0 (STORE_OK) or a negative STORE_E* code; store_errmsg() then
 * says what failed in one line without a trailing newline (e.g. "run 'r2026' not found").
 *
 * Ownership: structs passed to *_put functions are borrowed (the store copies what it writes,
 * json-c objects are serialised, no reference is taken). Structs returned by *_get/_list
 * functions are owned by the caller and freed with the matching *_free function; their
 * json_object members hold one reference owned by the struct (json_object_get one to keep it
 * past the free). Timestamps are seconds since the Unix epoch as doubles (µs resolution),
 * 0 meaning "not yet". */
#ifndef KFPC_STORE_H
#define KFPC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Status codes. */
enum {
	STORE_OK = 0,
	STORE_ENOENT = -1,   /* no such run, step, artifact, cache key (or no state dir) */
	STORE_EAMBIG = -2,   /* a prefix matches more than one run or artifact */
	STORE_EFULL = -3,    /* the LMDB map reached its cap (KFPC_STORE_MAX_MAP) */
	STORE_ENOSPC = -4,   /* the disk or quota is full */
	STORE_EVERSION = -5, /* the store was written by a newer kfpc (schema version too high) */
	STORE_EINVAL = -6,   /* bad argument: empty/oversized id or key, NUL byte in an id */
	STORE_ECORRUPT = -7, /* a record could not be decoded */
	STORE_EIO = -8,      /* any other system or LMDB error (message says which) */
	STORE_ENOMEM = -9,   /* out of memory */
	STORE_EEXIST = -10,  /* store_run_create: the run id exists */
};

/* The schema version this build writes (see store.c). */
#define STORE_SCHEMA_VERSION 2

/* Longest id (run id, step instance id, output name) the store accepts, in bytes. Keys are
 * built from ids joined by NUL bytes and LMDB keys are at most 511 bytes. */
#define STORE_ID_MAX 200

/* Size of a buffer for store_run_id_new (including the NUL). */
#define STORE_RUN_ID_SIZE 32

/* store_open flags. */
enum {
	STORE_OPEN_CREATE = 1 << 0, /* create STATE/ and its subdirectories if missing */
	STORE_OPEN_RDONLY = 1 << 1, /* read-only: every write function returns STORE_EINVAL */
};

/* Run status (SPEC §6). */
enum store_run_status {
	STORE_RUN_RUNNING = 0,
	STORE_RUN_SUCCEEDED,
	STORE_RUN_FAILED,
	STORE_RUN_CANCELLED,
};

/* Step instance state (SPEC §6). */
enum store_step_state {
	STORE_STEP_PENDING = 0,
	STORE_STEP_RUNNING,
	STORE_STEP_SUCCEEDED,
	STORE_STEP_CACHED,
	STORE_STEP_FAILED,
	STORE_STEP_SKIPPED,
	STORE_STEP_CANCELLED,
};

/* Why an attempt failed (SPEC §4.5 retry kinds); STORE_FAIL_NONE for a successful attempt or
 * one still running. */
enum store_fail_kind {
	STORE_FAIL_NONE = 0,
	STORE_FAIL_ERROR,   /* non-zero exit or killed by a signal */
	STORE_FAIL_TIMEOUT,
	STORE_FAIL_OOM,
	STORE_FAIL_INFRA,   /* executor/system error */
};

/* A run. In store_run_put every pointer may be NULL (stored as null / empty). */
struct store_run {
	char *id;                     /* from store_run_id_new; sortable, unique */
	char *pipeline;               /* the IR's "name" */
	char *ir_json;                /* the IR text, exactly as compiled (NULL: not loaded/written) */
	char *source;                 /* the file given to `kfpc run` (for display), or NULL */
	json_object *params;          /* object: parameter name -> value (after defaults) */
	enum store_run_status status;
	char *reason;                 /* why it failed/was cancelled ("timeout", "step fit failed") */
	double created, started, finished;
	char *executor;               /* "local", "docker" */
	json_object *outputs;         /* object: pipeline output name -> value, at the end */
	int64_t nsteps;               /* store_run_get/list: step instances recorded (read only) */
};

/* A (name, artifact digest) pair: an artifact input or output of a step instance, or an
 * artifact output of a cache entry. For a `list<Model>` input (collect), the same name appears
 * once per element, in order. */
struct store_artref {
	char *name;
	char *digest;  /* 64 lowercase hex chars (SHA-256, see art.h) */
};

/* One attempt of a step instance. */
struct store_attempt {
	int number;                 /* 1-based */
	double started, finished;   /* finished 0: still running */
	int exit_code;              /* -1 when unknown (signal, infra, still running) */
	int signal;                 /* terminating signal, 0 if none */
	enum store_fail_kind fail;  /* STORE_FAIL_NONE if it succeeded or is running */
	char *reason;               /* human-readable detail, or NULL */
	char *stdout_path;          /* log files (absolute), or NULL */
	char *stderr_path;
	char *executor;             /* "local", "docker" */
	char *handle;               /* the executor's persisted job handle (exec_job.handle) */
};

/* A step instance within a run (key: run id + instance id). */
struct store_step {
	char *run;                  /* run id */
	char *id;                   /* instance id: "fit", "fit[2]", "prep/clean[0,1]" */
	char *node;                 /* the IR node id: "fit", "prep/clean" (NULL: same as id) */
	int64_t seq;                /* display order; 0 in store_step_put: keep the existing
				       record's, or append after the run's last step */
	enum store_step_state state;
	char *reason;               /* "upstream failed", "condition false", "exit code 3" ... */
	double started, finished;   /* of the instance as a whole */
	struct store_attempt *attempts;
	size_t nattempts;
	json_object *inputs;        /* object: param input name -> value (as passed to the step) */
	struct store_artref *in_arts;
	size_t nin_arts;
	json_object *outputs;       /* object: value output name -> value */
	struct store_artref *out_arts;
	size_t nout_arts;
	char *cache_key;            /* 64 hex chars, or NULL (cache off / not computed) */
	int from_cache;             /* 1: state cached, outputs came from the cache index */
	char *cached_from;          /* "RUN/INSTANCE" that produced the cached result, or NULL */
};

/* An artifact record (the bytes are in the CAS, art.h). */
struct store_art {
	char *digest;
	char *kind;                 /* "file" or "dir" */
	char *type;                 /* artifact type: "Dataset", "Model", a user type */
	uint64_t size;              /* logical size in bytes (sum of file sizes for a dir) */
	char *run, *step, *output;  /* first producer */
	double created;
};

/* A lineage edge: step instance RUN/STEP consumed or produced artifact DIGEST as input or
 * output NAME. */
struct store_edge {
	char *run;
	char *step;
	char *name;
	char *digest;
};

/* A cache index entry (SPEC §6.7). */
struct store_cache {
	char *key;                  /* 64 hex chars */
	json_object *outputs;       /* object: value output name -> value */
	struct store_artref *arts;
	size_t narts;
	double created;             /* for max_age */
	char *run, *step;           /* who produced it */
};

struct store; /* an open state store (opaque) */

/* --- the state directory ---------------------------------------------------------------- */

/* The state directory to use: EXPLICIT if non-NULL (from --state), else $KFPC_STATE if set
 * and non-empty, else ".kfpc". Returns EXPLICIT, getenv's string or a static string. */
const char *store_default_dir(const char *explicit_dir);

/* Open (with STORE_OPEN_CREATE: create) the state directory DIR and its LMDB environment.
 * On success *out is a handle freed by store_close and 0 is returned. On failure *out is NULL,
 * a code is returned and err[errlen] holds a one-line message: STORE_ENOENT (DIR or its store
 * does not exist and CREATE was not given: "no kfpc state in DIR"), STORE_EVERSION (schema
 * too new: "state store DIR was written by a newer kfpc (schema N > 1); upgrade kfpc"),
 * STORE_ENOSPC, STORE_EIO. */
int store_open(const char *dir, unsigned flags, struct store **out, char *err, size_t errlen);

/* Sync (unless read-only) and close. NULL is ok. Every pointer the store returned stays
 * valid (they are all caller-owned copies). */
void store_close(struct store *st);

/* The message of the last failed call on ST ("" if none). Valid until the next call on ST. */
const char *store_errmsg(const struct store *st);

/* The state directory, as given to store_open. Owned by ST. */
const char *store_dir(const struct store *st);

/* Flush committed writes to disk (fdatasync). Returns 0, STORE_EIO or STORE_ENOSPC. */
int store_sync(struct store *st);

/* store_sync if the last sync is 1 s old or more and something was committed since; else 0.
 * Cheap: call it from the scheduler's loop. */
int store_sync_if_due(struct store *st);

/* Group commit: writes between store_batch_begin and store_batch_end are kept in memory and
 * committed in one transaction by store_batch_end (which returns the commit's status; on
 * error none of the batch is stored). Batches nest (only the outermost end commits). Reads
 * inside a batch do not see its uncommitted writes. Returns 0. */
int store_batch_begin(struct store *st);
int store_batch_end(struct store *st);

/* The number of writes waiting for the open batch's commit (0 outside a batch). */
size_t store_batch_pending(const struct store *st);

/* End a part of the open batch: when the batch's commit finds the store full (at its cap),
 * the whole parts before the one that does not fit are still committed (each part stays
 * atomic), and the commit returns STORE_EFULL for the rest. Returns 0 (or STORE_ENOMEM, and
 * the batch stays one part). */
int store_batch_mark(struct store *st);

/* --- names ---------------------------------------------------------------------------------- */

/* Static lower-case names ("running", "succeeded", ...; "error", "timeout", "oom", "infra",
 * "" for STORE_FAIL_NONE) and their inverses (-1 if unknown). */
const char *store_run_status_name(enum store_run_status s);
const char *store_step_state_name(enum store_step_state s);
const char *store_fail_kind_name(enum store_fail_kind k);
int store_run_status_parse(const char *name);
int store_step_state_parse(const char *name);
int store_fail_kind_parse(const char *name);

/* Current time, seconds since the epoch (CLOCK_REALTIME, µs resolution). */
double store_now(void);

/* Write a new run id to buf[STORE_RUN_ID_SIZE]: "rYYYYMMDD-HHMMSS-xxxxxx" (UTC time, then
 * 24 random bits from getrandom). Ids sort by creation time to the second. Returns 0, or
 * STORE_EIO if no randomness is available. */
int store_run_id_new(char buf[STORE_RUN_ID_SIZE]);

/* Malloc'd absolute path STATE/SUBDIR/RUN/STEP/ATTEMPT for SUBDIR "logs" or "work", created
 * with its parents (mode 0755). STEP is escaped for the file system ('/' and bytes outside
 * [A-Za-z0-9._,=+[]-] become %XX), so "prep/clean[0,1]" gives "prep%2Fclean[0,1]". The caller
 * frees it. Logs conventionally go to that directory's "stdout" and "stderr" files.
 * Returns NULL on error (store_errmsg). */
char *store_attempt_dir(struct store *st, const char *subdir, const char *run,
			const char *step, int attempt);

/* --- runs ------------------------------------------------------------------------------- */

/* Record a new run R (all fields, including ir_json). STORE_EEXIST if R->id exists. */
int store_run_create(struct store *st, const struct store_run *r);

/* Replace run R->id's record with R (status, reason, times, outputs, params ...). The IR text
 * is kept unless R->ir_json is non-NULL. A terminal status may use the map reserve (see the
 * durability policy). STORE_ENOENT if the run does not exist. */
int store_run_put(struct store *st, const struct store_run *r);

/* Set only status, reason (may be NULL) and finished (0: keep) of run ID. */
int store_run_set_status(struct store *st, const char *id, enum store_run_status status,
			 const char *reason, double finished);

/* Load run ID into *out (caller frees with store_run_free). With WITH_IR non-zero ir_json is
 * loaded too, else it is NULL. STORE_ENOENT if absent. */
int store_run_get(struct store *st, const char *id, int with_ir, struct store_run **out);

/* Resolve a run id or a unique prefix of one (like git) into *id (malloc'd, caller frees).
 * An exact id always wins. STORE_ENOENT if none matches, STORE_EAMBIG if several do (the
 * message lists up to five). */
int store_run_resolve(struct store *st, const char *prefix, char **id);

/* All runs without their IR, newest first (by created time, then id), into *out[*n]: an
 * array of owned pointers freed with store_run_list_free. */
int store_run_list(struct store *st, struct store_run ***out, size_t *n);

/* Free a run (NULL is ok) / a list from store_run_list. */
void store_run_free(struct store_run *r);
void store_run_list_free(struct store_run **runs, size_t n);

/* --- step instances --------------------------------------------------------------------- */

/* Insert or replace step instance S->run/S->id with S (whole record, attempts included).
 * Lineage edges for S's in_arts ("consumed") and out_arts ("produced") are added in the same
 * transaction (idempotent). The run must exist (STORE_ENOENT). */
int store_step_put(struct store *st, const struct store_step *s);

/* Load step instance RUN/ID into *out (free with store_step_free). STORE_ENOENT if absent. */
int store_step_get(struct store *st, const char *run, const char *id, struct store_step **out);

/* All step instances of RUN ordered by seq into *out[*n] (free with store_step_list_free).
 * An unknown run gives 0 and *n = 0: check the run with store_run_get first. */
int store_step_list(struct store *st, const char *run, struct store_step ***out, size_t *n);

/* Free a step (NULL is ok) / a list from store_step_list. */
void store_step_free(struct store_step *s);
void store_step_list_free(struct store_step **steps, size_t n);

/* Append a copy of attempt A to S->attempts (realloc). Returns 0 or STORE_ENOMEM (S is then
 * unchanged). For callers that build a store_step with malloc'd fields: all string fields of
 * a store_step are freed by store_step_free with free(). */
int store_step_add_attempt(struct store_step *s, const struct store_attempt *a);

/* --- artifacts and lineage -------------------------------------------------------------- */

/* Record artifact A unless A->digest is already recorded (the first producer is kept;
 * every producer is in the lineage edges). Returns 0. */
int store_art_put(struct store *st, const struct store_art *a);

/* Load artifact DIGEST (full 64 hex chars) into *out (free with store_art_free). */
int store_art_get(struct store *st, const char *digest, struct store_art **out);

/* Resolve a digest or a unique prefix (at least 4 hex chars; a leading "sha256:" is
 * ignored) into *digest (malloc'd). STORE_ENOENT, STORE_EAMBIG, STORE_EINVAL (too short). */
int store_art_resolve(struct store *st, const char *prefix, char **digest);

/* Free an artifact record (NULL is ok). */
void store_art_free(struct store_art *a);

/* Lineage queries: the (run, step, name) that produced / consumed artifact DIGEST, in key
 * order (run id, step id, name), into *out[*n] (free with store_edges_free). Zero edges is
 * not an error. */
int store_lineage_producers(struct store *st, const char *digest, struct store_edge **out,
			    size_t *n);
int store_lineage_consumers(struct store *st, const char *digest, struct store_edge **out,
			    size_t *n);

/* Free N edges (NULL is ok). */
void store_edges_free(struct store_edge *e, size_t n);

/* --- the cache index -------------------------------------------------------------------- */

/* Insert or replace cache entry C->key. */
int store_cache_put(struct store *st, const struct store_cache *c);

/* Load cache entry KEY into *out (free with store_cache_free). STORE_ENOENT if absent. The
 * caller checks max_age against (*out)->created and that the artifacts are still stored. */
int store_cache_get(struct store *st, const char *key, struct store_cache **out);

/* Remove cache entry KEY (0 also when absent). */
int store_cache_del(struct store *st, const char *key);

/* Free a cache entry (NULL is ok). */
void store_cache_free(struct store_cache *c);

/* --- statistics ------------------------------------------------------------------------- */

/* Map size now, the cap, and bytes used by the LMDB data (pages in use x page size). Any
 * pointer may be NULL. */
int store_stat(struct store *st, uint64_t *map_size, uint64_t *map_cap, uint64_t *used);

#endif

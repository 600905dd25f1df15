/* store.c - the engine's durable state in LMDB.
 *
 * On-disk format (STATE/store.mdb/, an LMDB environment: data.mdb + lock.mdb)
 * ---------------------------------------------------------------------------
 * Seven named databases. Keys are byte strings; "\0" below is a NUL byte separating ids (no
 * id may contain a NUL byte, and no id is longer than STORE_ID_MAX). Values are JSON text
 * (json-c, UTF-8, no trailing NUL) unless said otherwise. Readers ignore members they do not
 * know and default members that are missing, so members can be added without a new version.
 *
 *   meta     "schema"              -> ASCII decimal schema version, "2"
 *            "created"             -> ASCII decimal seconds since the epoch (store creation)
 *   runs     RUNID                 -> {"id","pipeline","source","params":{..},"status":
 *                                      "running|succeeded|failed|cancelled","reason",
 *                                      "created","started","finished" (float seconds, 0: not
 *                                      yet),"executor","outputs":{..}}
 *   run_ir   RUNID                 -> the IR JSON text, byte for byte as compiled (kept apart
 *                                      so that status updates never rewrite it)
 *   steps    RUNID \0 INSTANCE     -> a binary step record (below; written once or more per
 *                                      step, so it is compact and cheap to build). All
 *                                      instances of a run are adjacent; "seq" (1, 2, ... in
 *                                      order of first record) gives the display order.
 *   arts     DIGEST                -> {"digest","kind":"file|dir","type","size","run","step",
 *                                      "output","created"}  (first producer; never replaced)
 *   edges    "p" \0 DIGEST \0 RUNID \0 INSTANCE \0 NAME -> "" (INSTANCE produced DIGEST as
 *                                      its output NAME)
 *            "c" \0 DIGEST \0 RUNID \0 INSTANCE \0 NAME -> "" (INSTANCE consumed DIGEST as
 *                                      its input NAME)
 *                                      artifact -> executions is a prefix scan here;
 *                                      execution -> artifacts is the step record's
 *                                      in_arts/out_arts.
 *   cache    CACHEKEY (64 hex)     -> {"key","outputs":{..},"arts":[[NAME,DIGEST]..],
 *                                      "created","run","step"}
 *
 * DIGEST is 64 lowercase hex characters (SHA-256, art.h).
 *
 * The binary step record (schema 2). Integers are little-endian; "uvar" is an unsigned LEB128
 * varint, "svar" a zigzag-encoded signed one; "f64" an IEEE-754 double in 8 bytes; "str" is a
 * uvar L then L-1 bytes (L = 0: null; no NUL byte inside); "json" is a str holding JSON text
 * (json-c); "u8" one byte.
 *
 *   u8 0xB2 (tag: a JSON text never starts with it), 8-byte seq (fixed size, so that it can be
 *   read and resolved in place at commit), str run, str id, str node, u8 state (enum
 *   store_step_state), str reason, f64 started, f64 finished, uvar nattempts, then per attempt
 *   {svar number, f64 started, f64 finished, svar exit_code, svar signal, u8 fail (enum
 *   store_fail_kind), str reason, str stdout, str stderr, str executor, str handle}, json
 *   inputs, uvar n + n x (str name, str digest) in_arts, json outputs, uvar n + n x (str name,
 *   str digest) out_arts, str cache_key, u8 from_cache, str cached_from.
 *
 * Readers ignore bytes after the last member they know, so members can be appended at the end
 * without a new version. Schema 1 wrote step records as JSON text {"run","id","node","seq",
 * "state":"pending|running|...","reason","started","finished","attempts":[{"number",
 * "started","finished","exit_code","signal","fail","reason","stdout","stderr","executor",
 * "handle"}],"inputs","in_arts":[[NAME,DIGEST]..],"outputs","out_arts","cache_key",
 * "from_cache","cached_from"}; readers still accept it (told apart by the first byte).
 *
 * Schema version and migration: a new store gets meta "schema" = STORE_SCHEMA_VERSION (2). At
 * open, a store whose version is higher than this build's is refused (STORE_EVERSION: "written
 * by a newer kfpc ... upgrade kfpc"), and never modified. A lower version is migrated in place,
 * in the open's write transaction, one version step at a time, before anything else reads it
 * (a read-only open migrates nothing and reads the old format). Steps: 1 -> 2 (step records
 * become binary): the old JSON step records stay readable, so only the version is rewritten;
 * each record takes the new encoding when it is next written. Additive changes (new members,
 * new databases) do not change the version; a change in a key layout, an encoding or the
 * meaning of a member does.
 *
 * Writes are queued as "ops" and applied in one write transaction by commit(): outside a
 * batch each write function commits its own ops before returning; in a batch, store_batch_end
 * commits them all. Keeping ops in memory until the commit is what makes MDB_MAP_FULL
 * transparent: the transaction is aborted, the map doubled, and the same ops replayed. A
 * batch may be made of parts (store_batch_mark: the scheduler marks each loop round it lets
 * share a commit): when the map is at its cap, the whole parts before the one that does not
 * fit are committed on their own, so earlier rounds' records survive a full store.
 * Read-modify-write ops (a step's seq, a run's status) are resolved inside the write
 * transaction, so they see the batch's earlier ops. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "store.h"

#define MIB (1024ULL * 1024ULL)
#define GIB (1024ULL * MIB)
#define INITIAL_MAP (64ULL * MIB)
#define DEFAULT_CAP (64ULL * GIB)
#define MIN_CAP (64ULL * 1024ULL)
#define SYNC_INTERVAL 1.0

enum op_kind {
	OP_PUT,        /* put key -> val */
	OP_DEL,        /* delete key (absent is fine) */
	OP_STEP,       /* put a step record (rec), resolving "seq" */
	OP_RUN_STATUS, /* read-modify-write a run's status/reason/finished */
};

enum {
	OPF_EXCL = 1 << 0,      /* fail with STORE_EEXIST if the key exists */
	OPF_KEEP = 1 << 1,      /* keep an existing value (no error) */
	OPF_MUSTEXIST = 1 << 2, /* fail with STORE_ENOENT unless the key exists */
	OPF_RESERVE = 1 << 3,   /* may grow the map into the reserve above the cap */
};

struct op {
	enum op_kind kind;
	MDB_dbi dbi;
	unsigned flags;
	char *key;
	size_t klen;
	char *val;      /* OP_PUT */
	size_t vlen;
	int64_t seq0;     /* OP_STEP: the caller's seq (0: resolve at commit; kept for replays) */
	char *run;        /* OP_STEP: run id (checked to exist); OP_RUN_STATUS: run id */
	int status;       /* OP_RUN_STATUS */
	char *reason;
	int has_reason;
	double finished;
	const char *what; /* for messages: "run", "step" ... (static) */
};

struct store {
	char *dir;     /* as given */
	char *absdir;  /* absolute */
	MDB_env *env;
	MDB_dbi meta, runs, run_ir, steps, arts, edges, cache;
	int rdonly;
	int sync_each; /* KFPC_STORE_SYNC=1: every commit is flushed (no MDB_NOSYNC) */
	uint64_t cap;
	struct op *ops;
	size_t nops, cops;
	size_t *marks;    /* store_batch_mark: op counts at the ends of the batch's parts */
	size_t nmarks, cmarks;
	int batch;
	int dirty;
	double last_sync;
	char *seq_run; /* step seq cache: run id and next seq to hand out */
	int64_t seq_next;
	char err[512];
};

/* --- small helpers --------------------------------------------------------------------- */

static int seterr(struct store *st, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int seterr(struct store *st, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof st->err, fmt, ap);
	va_end(ap);
	return code;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double store_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Map an LMDB/system error to a store code and message. */
static int mdberr(struct store *st, int rc, const char *what)
{
	if (rc == ENOSPC || rc == EDQUOT)
		return seterr(st, STORE_ENOSPC, "disk full while writing the state store in %s: %s",
			      st->dir, strerror(rc));
	if (rc == ENOMEM)
		return seterr(st, STORE_ENOMEM, "%s: out of memory", what);
	return seterr(st, STORE_EIO, "state store %s: %s: %s", st->dir, what, mdb_strerror(rc));
}

static int check_id(struct store *st, const char *what, const char *id)
{
	if (!id || !*id)
		return seterr(st, STORE_EINVAL, "empty %s id", what);
	if (strlen(id) > STORE_ID_MAX)
		return seterr(st, STORE_EINVAL, "%s id too long (%zu bytes, at most %d): %.40s...",
			      what, strlen(id), STORE_ID_MAX, id);
	return 0;
}

/* Build a key of N ids joined by NUL bytes into a malloc'd buffer. */
static char *mkkey(size_t *len, int n, ...)
{
	va_list ap;
	size_t total = 0;
	char *k, *p;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		total += strlen(va_arg(ap, const char *)) + 1;
	va_end(ap);
	if (!(k = malloc(total ? total : 1)))
		return NULL;
	p = k;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *s = va_arg(ap, const char *);
		size_t l = strlen(s);
		memcpy(p, s, l);
		p += l;
		if (i < n - 1)
			*p++ = '\0';
	}
	va_end(ap);
	*len = total ? total - 1 : 0;
	return k;
}

/* Parse JSON text of LEN bytes; NULL if it is not one complete JSON value. */
static json_object *parse_json(const char *s, size_t len)
{
	json_tokener *tok;
	json_object *o;

	if (len > INT_MAX || !(tok = json_tokener_new_ex(256)))
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		  json_tokener_get_parse_end(tok) != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static double jdbl(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_double(v);
}

static int64_t jint(json_object *o, const char *key, int64_t dflt)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return dflt;
	return json_object_get_int64(v);
}

/* A new reference to member KEY (any type but null), or NULL. */
static json_object *jobj(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get(v);
}

/* Add KEY: string S (or null). Returns -1 on no memory. */
static int addstr(json_object *o, const char *key, const char *s)
{
	json_object *v = NULL;

	if (s && !(v = json_object_new_string(s)))
		return -1;
	return json_object_object_add(o, key, v) ? -1 : 0;
}

static int adddbl(json_object *o, const char *key, double d)
{
	json_object *v = json_object_new_double(d);

	return !v || json_object_object_add(o, key, v) ? -1 : 0;
}

static int addint(json_object *o, const char *key, int64_t i)
{
	json_object *v = json_object_new_int64(i);

	return !v || json_object_object_add(o, key, v) ? -1 : 0;
}

/* Add KEY: a new reference to V (borrowed), or null. */
static int addobj(json_object *o, const char *key, json_object *v)
{
	if (json_object_object_add(o, key, v ? json_object_get(v) : NULL)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static json_object *artrefs_to_json(const struct store_artref *a, size_t n)
{
	json_object *arr = json_object_new_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_object *pair = json_object_new_array();
		if (!pair || json_object_array_add(arr, pair)) {
			json_object_put(pair);
			goto err;
		}
		if (json_object_array_add(pair, json_object_new_string(a[i].name ? a[i].name : "")) ||
		    json_object_array_add(pair,
					  json_object_new_string(a[i].digest ? a[i].digest : "")))
			goto err;
	}
	return arr;
err:
	json_object_put(arr);
	return NULL;
}

/* Decode [[name, digest]...] into a malloc'd array; returns -1 on no memory. */
static int artrefs_from_json(json_object *o, const char *key, struct store_artref **out,
			     size_t *n)
{
	json_object *arr;
	size_t len;

	*out = NULL;
	*n = 0;
	if (!json_object_object_get_ex(o, key, &arr) || !json_object_is_type(arr, json_type_array))
		return 0;
	len = json_object_array_length(arr);
	if (!len)
		return 0;
	if (!(*out = calloc(len, sizeof **out)))
		return -1;
	for (size_t i = 0; i < len; i++) {
		json_object *pair = json_object_array_get_idx(arr, i);
		const char *name = json_object_get_string(json_object_array_get_idx(pair, 0));
		const char *dig = json_object_get_string(json_object_array_get_idx(pair, 1));
		(*out)[i].name = strdup(name ? name : "");
		(*out)[i].digest = strdup(dig ? dig : "");
		*n = i + 1;
		if (!(*out)[i].name || !(*out)[i].digest)
			return -1;
	}
	return 0;
}

static void artrefs_free(struct store_artref *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].digest);
	}
	free(a);
}

#define STEP_TAG 0xB2 /* first byte of a binary step record; JSON text never starts with it */
#define STEP_SEQ_OFF 1 /* the fixed 8-byte seq follows the tag */
#define STEP_HDR (1 + 8)

/* 64-bit little-endian integers in records. */
static void put_le64(unsigned char *q, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		q[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *q)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)q[i] << (8 * i);
	return v;
}

/* Serialise O into a malloc'd buffer. */
static char *dump_json(json_object *o, size_t *len)
{
	const char *s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
	char *c;

	if (!s || !(c = malloc(*len + 1)))
		return NULL;
	memcpy(c, s, *len + 1);
	return c;
}

/* --- names ------------------------------------------------------------------------------ */

static const char *const run_status_names[] = {"running", "succeeded", "failed", "cancelled"};
static const char *const step_state_names[] = {"pending", "running", "succeeded", "cached",
					       "failed",  "skipped", "cancelled"};
static const char *const fail_kind_names[] = {"", "error", "timeout", "oom", "infra"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *store_run_status_name(enum store_run_status s)
{
	return (unsigned)s < NELEM(run_status_names) ? run_status_names[s] : "unknown";
}

const char *store_step_state_name(enum store_step_state s)
{
	return (unsigned)s < NELEM(step_state_names) ? step_state_names[s] : "unknown";
}

const char *store_fail_kind_name(enum store_fail_kind k)
{
	return (unsigned)k < NELEM(fail_kind_names) ? fail_kind_names[k] : "unknown";
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

int store_run_status_parse(const char *name)
{
	return lookup(run_status_names, NELEM(run_status_names), name);
}

int store_step_state_parse(const char *name)
{
	return lookup(step_state_names, NELEM(step_state_names), name);
}

int store_fail_kind_parse(const char *name)
{
	return lookup(fail_kind_names, NELEM(fail_kind_names), name);
}

int store_run_id_new(char buf[STORE_RUN_ID_SIZE])
{
	unsigned char rnd[3];
	struct tm tm;
	time_t now = time(NULL);
	ssize_t got;
	size_t n;
	static const char hex[] = "0123456789abcdef";

	do
		got = getrandom(rnd, sizeof rnd, 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof rnd)
		return STORE_EIO;
	gmtime_r(&now, &tm);
	n = strftime(buf, STORE_RUN_ID_SIZE - 7, "r%Y%m%d-%H%M%S-", &tm);
	if (!n)
		return STORE_EIO;
	for (int i = 0; i < 3; i++) {
		buf[n++] = hex[rnd[i] >> 4];
		buf[n++] = hex[rnd[i] & 15];
	}
	buf[n] = '\0';
	return 0;
}

const char *store_default_dir(const char *explicit_dir)
{
	const char *e;

	if (explicit_dir)
		return explicit_dir;
	e = getenv("KFPC_STATE");
	if (e && *e)
		return e;
	return ".kfpc";
}

/* --- open / close ------------------------------------------------------------------------ */

/* mkdir -p PATH (mode 0755). Returns 0 or an errno. */
static int mkdirs(const char *path)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p)
		return ENOMEM;
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				rc = errno;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return rc;
}

/* Parse a byte size with an optional K/M/G/T suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static uint64_t map_size(struct store *st)
{
	MDB_envinfo info;

	if (mdb_env_info(st->env, &info))
		return 0;
	return info.me_mapsize;
}

static int dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
	return mdb_dbi_open(txn, name, flags, dbi);
}

/* LMDB maps its lock file and writes the reader table through the mapping: on a full disk
 * (tmpfs, sparse files) that is a SIGBUS inside mdb_env_open. Reserve the blocks first, so a
 * full disk is an error (ENOSPC) instead. The size is LMDB's own for 256 readers
 * (sizeof(MDB_txninfo) 192 + 255 * sizeof(MDB_reader) 64); a file that already has that size
 * (or more) keeps it, so no reader table ever changes size under another process. */
#define LOCK_FILE_BYTES (192 + 255 * 64)
static int lock_file_reserve(const char *dbdir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat sb;
	int fd, e;

	snprintf(path, sizeof path, "%s/lock.mdb", dbdir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return 0; /* mdb_env_open says why */
	if (fstat(fd, &sb) == 0 && (sb.st_size == 0 || sb.st_size == LOCK_FILE_BYTES) &&
	    (e = posix_fallocate(fd, 0, LOCK_FILE_BYTES)) != 0 && (e == ENOSPC || e == EDQUOT)) {
		snprintf(err, errlen, "cannot open the state store %s: disk full (%s)", dbdir,
			 strerror(e));
		close(fd);
		return STORE_ENOSPC;
	}
	close(fd);
	return 0;
}

/* Open the named databases and check (or write) the schema version. */
static int open_dbs(struct store *st, char *err, size_t errlen)
{
	MDB_txn *txn;
	unsigned dflags = st->rdonly ? 0 : MDB_CREATE;
	MDB_val k = {6, "schema"}, v;
	int rc;

	for (;;) {
		rc = mdb_txn_begin(st->env, NULL, st->rdonly ? MDB_RDONLY : 0, &txn);
		if (rc != MDB_MAP_RESIZED)
			break;
		mdb_env_set_mapsize(st->env, 0);
	}
	if (rc) {
		snprintf(err, errlen, "cannot open the state store in %s: %s", st->dir,
			 mdb_strerror(rc));
		return rc == ENOSPC || rc == EDQUOT ? STORE_ENOSPC : STORE_EIO;
	}
	if ((rc = dbi_open(txn, "meta", dflags, &st->meta))) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND) {
			snprintf(err, errlen, "no kfpc state in %s (nothing has run here yet)",
				 st->dir);
			return STORE_ENOENT;
		}
		snprintf(err, errlen, "cannot open the state store in %s: %s", st->dir,
			 mdb_strerror(rc));
		return STORE_EIO;
	}
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0) {
		char buf[32];
		long ver;
		size_t n = v.mv_size < sizeof buf - 1 ? v.mv_size : sizeof buf - 1;

		memcpy(buf, v.mv_data, n);
		buf[n] = '\0';
		ver = strtol(buf, NULL, 10);
		if (ver > STORE_SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			snprintf(err, errlen,
				 "state store %s was written by a newer kfpc (schema %ld > %d); "
				 "upgrade kfpc or use another --state directory",
				 st->dir, ver, STORE_SCHEMA_VERSION);
			return STORE_EVERSION;
		}
		if (ver < 1) {
			mdb_txn_abort(txn);
			snprintf(err, errlen, "state store %s has a bad schema version '%s'", st->dir,
				 buf);
			return STORE_ECORRUPT;
		}
		if (ver < STORE_SCHEMA_VERSION && !st->rdonly) {
			/* 1 -> 2: step records become binary. Schema-1 records (JSON text) stay
			 * readable (step_from_val tells them apart by their first byte) and are
			 * rewritten in the new encoding when next written, so the migration only
			 * records the new version, in this transaction, before anything is read. */
			n = snprintf(buf, sizeof buf, "%d", STORE_SCHEMA_VERSION);
			v.mv_size = n;
			v.mv_data = buf;
			if ((rc = mdb_put(txn, st->meta, &k, &v, 0)))
				goto fail;
		}
	} else if (rc == MDB_NOTFOUND && !st->rdonly) {
		char buf[32];
		MDB_val ck = {7, "created"}, cv;
		int n;

		n = snprintf(buf, sizeof buf, "%d", STORE_SCHEMA_VERSION);
		v.mv_size = (size_t)n;
		v.mv_data = buf;
		if ((rc = mdb_put(txn, st->meta, &k, &v, 0)))
			goto fail;
		n = snprintf(buf, sizeof buf, "%lld", (long long)time(NULL));
		cv.mv_size = (size_t)n;
		cv.mv_data = buf;
		if ((rc = mdb_put(txn, st->meta, &ck, &cv, 0)))
			goto fail;
	} else if (rc != MDB_NOTFOUND) {
		goto fail;
	}
	if ((rc = dbi_open(txn, "runs", dflags, &st->runs)) ||
	    (rc = dbi_open(txn, "run_ir", dflags, &st->run_ir)) ||
	    (rc = dbi_open(txn, "steps", dflags, &st->steps)) ||
	    (rc = dbi_open(txn, "arts", dflags, &st->arts)) ||
	    (rc = dbi_open(txn, "edges", dflags, &st->edges)) ||
	    (rc = dbi_open(txn, "cache", dflags, &st->cache)))
		goto fail;
	if ((rc = mdb_txn_commit(txn))) {
		snprintf(err, errlen, "cannot initialise the state store in %s: %s", st->dir,
			 mdb_strerror(rc));
		return rc == ENOSPC || rc == EDQUOT || rc == MDB_MAP_FULL ? STORE_ENOSPC : STORE_EIO;
	}
	return 0;
fail:
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND) {
		snprintf(err, errlen, "no kfpc state in %s (the store is incomplete)", st->dir);
		return STORE_ENOENT;
	}
	snprintf(err, errlen, "cannot initialise the state store in %s: %s", st->dir,
		 mdb_strerror(rc));
	return rc == ENOSPC || rc == EDQUOT ? STORE_ENOSPC : STORE_EIO;
}

int store_open(const char *dir, unsigned flags, struct store **out, char *err, size_t errlen)
{
	struct store *st;
	char *dbdir = NULL, *path = NULL;
	const char *capenv;
	struct stat sb;
	uint64_t initial;
	int rc, fd;
	static const char *const subdirs[] = {"store.mdb", "cas", "logs", "work"};

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!dir || !*dir) {
		snprintf(err, errlen, "empty state directory");
		return STORE_EINVAL;
	}
	if (!(st = calloc(1, sizeof *st)) || !(st->dir = strdup(dir))) {
		free(st);
		snprintf(err, errlen, "out of memory");
		return STORE_ENOMEM;
	}
	st->rdonly = !!(flags & STORE_OPEN_RDONLY);
	st->cap = DEFAULT_CAP;
	if ((capenv = getenv("KFPC_STORE_MAX_MAP")) && *capenv) {
		if (parse_size(capenv, &st->cap) < 0) {
			snprintf(err, errlen, "KFPC_STORE_MAX_MAP: bad size '%s' (bytes, or with a "
				 "K, M or G suffix)", capenv);
			rc = STORE_EINVAL;
			goto err1;
		}
		if (st->cap < MIN_CAP)
			st->cap = MIN_CAP;
	}
	if (flags & STORE_OPEN_CREATE) {
		for (size_t i = 0; i < NELEM(subdirs); i++) {
			char *p;
			if (asprintf(&p, "%s/%s", dir, subdirs[i]) < 0) {
				rc = STORE_ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto err1;
			}
			int e = mkdirs(p);
			if (e) {
				snprintf(err, errlen, "cannot create %s: %s", p, strerror(e));
				free(p);
				rc = e == ENOSPC || e == EDQUOT ? STORE_ENOSPC : STORE_EIO;
				goto err1;
			}
			free(p);
		}
	}
	if (!(st->absdir = realpath(dir, NULL))) {
		rc = errno == ENOENT ? STORE_ENOENT : STORE_EIO;
		if (rc == STORE_ENOENT)
			snprintf(err, errlen, "no kfpc state in %s (nothing has run here yet; see "
				 "--state DIR or KFPC_STATE)", dir);
		else
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto err1;
	}
	if (asprintf(&dbdir, "%s/store.mdb", st->absdir) < 0 ||
	    asprintf(&path, "%s/data.mdb", dbdir) < 0) {
		dbdir = NULL;
		rc = STORE_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto err2;
	}
	if (!(flags & STORE_OPEN_CREATE) && stat(path, &sb) < 0) {
		rc = STORE_ENOENT;
		snprintf(err, errlen, "no kfpc state in %s (nothing has run here yet; see --state "
			 "DIR or KFPC_STATE)", dir);
		goto err2;
	}
	if ((rc = mdb_env_create(&st->env))) {
		snprintf(err, errlen, "cannot create an LMDB environment: %s", mdb_strerror(rc));
		rc = STORE_EIO;
		goto err2;
	}
	mdb_env_set_maxdbs(st->env, 16);
	mdb_env_set_maxreaders(st->env, 256);
	/* start at a quarter of the cap (at least 256 KiB), at most 64 MiB: a small cap (tests)
	 * then exercises the doubling path before it reaches the cap */
	initial = st->cap / 4 > 256 * 1024 ? st->cap / 4 : 256 * 1024;
	if (initial > INITIAL_MAP)
		initial = INITIAL_MAP;
	if (initial > st->cap)
		initial = st->cap;
	mdb_env_set_mapsize(st->env, (size_t)initial);
	{
		const char *sync = getenv("KFPC_STORE_SYNC");
		st->sync_each = sync && !strcmp(sync, "1");
	}
	if (!st->rdonly && (rc = lock_file_reserve(dbdir, err, errlen)))
		goto err3;
	rc = mdb_env_open(st->env, dbdir,
			  (st->sync_each ? 0 : MDB_NOSYNC) | MDB_NOTLS |
				  (st->rdonly ? MDB_RDONLY : 0),
			  0644);
	if (rc) {
		snprintf(err, errlen, "cannot open the state store %s: %s", dbdir,
			 mdb_strerror(rc));
		rc = rc == ENOENT ? STORE_ENOENT
		     : rc == ENOSPC || rc == EDQUOT ? STORE_ENOSPC : STORE_EIO;
		goto err3;
	}
	if (mdb_env_get_fd(st->env, &fd) == 0 && fd >= 0)
		fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	{
		int dead = 0;
		mdb_reader_check(st->env, &dead);
	}
	if ((rc = open_dbs(st, err, errlen)))
		goto err3;
	st->last_sync = mono_now();
	free(path);
	free(dbdir);
	*out = st;
	return 0;
err3:
	mdb_env_close(st->env);
err2:
	free(path);
	free(dbdir);
err1:
	free(st->absdir);
	free(st->dir);
	free(st);
	return rc;
}

static void ops_clear(struct store *st)
{
	for (size_t i = 0; i < st->nops; i++) {
		struct op *o = &st->ops[i];
		free(o->key);
		free(o->val);
		free(o->run);
		free(o->reason);
	}
	st->nops = 0;
	st->nmarks = 0;
}

static int commit(struct store *st);

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->nops)
		commit(st);
	ops_clear(st);
	free(st->ops);
	free(st->marks);
	if (!st->rdonly)
		mdb_env_sync(st->env, 1);
	mdb_env_close(st->env);
	free(st->seq_run);
	free(st->absdir);
	free(st->dir);
	free(st);
}

const char *store_errmsg(const struct store *st)
{
	return st ? st->err : "no store";
}

const char *store_dir(const struct store *st)
{
	return st->dir;
}

int store_sync(struct store *st)
{
	int rc;

	if (st->rdonly)
		return 0;
	if ((rc = mdb_env_sync(st->env, 1)))
		return mdberr(st, rc, "sync");
	st->dirty = 0;
	st->last_sync = mono_now();
	return 0;
}

int store_sync_if_due(struct store *st)
{
	if (!st->dirty || mono_now() - st->last_sync < SYNC_INTERVAL)
		return 0;
	return store_sync(st);
}

int store_stat(struct store *st, uint64_t *map, uint64_t *cap, uint64_t *used)
{
	MDB_envinfo info;
	MDB_stat ms;

	if (mdb_env_info(st->env, &info) || mdb_env_stat(st->env, &ms))
		return seterr(st, STORE_EIO, "cannot read the store's statistics");
	if (map)
		*map = info.me_mapsize;
	if (cap)
		*cap = st->cap;
	if (used)
		*used = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
	return 0;
}

/* --- transactions ----------------------------------------------------------------------- */

static int rd_begin(struct store *st, MDB_txn **txn)
{
	int rc;

	for (;;) {
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
		if (rc != MDB_MAP_RESIZED)
			break;
		mdb_env_set_mapsize(st->env, 0);
	}
	return rc ? mdberr(st, rc, "read") : 0;
}

static struct op *op_new(struct store *st, enum op_kind kind, MDB_dbi dbi, unsigned flags,
			 const char *what)
{
	struct op *o;

	if (st->nops == st->cops) {
		size_t n = st->cops ? st->cops * 2 : 16;
		struct op *p = realloc(st->ops, n * sizeof *p);
		if (!p)
			return NULL;
		st->ops = p;
		st->cops = n;
	}
	o = &st->ops[st->nops++];
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->dbi = dbi;
	o->flags = flags;
	o->what = what;
	return o;
}

/* Drop the last op (after a failure to fill it). */
static void op_drop(struct store *st)
{
	struct op *o = &st->ops[--st->nops];

	free(o->key);
	free(o->val);
	free(o->run);
	free(o->reason);
}

/* Queue a put of KEY[klen] -> VAL[vlen] (both copied). */
static int q_put(struct store *st, MDB_dbi dbi, unsigned flags, const char *what,
		 const char *key, size_t klen, const char *val, size_t vlen)
{
	struct op *o = op_new(st, OP_PUT, dbi, flags, what);

	if (!o)
		return seterr(st, STORE_ENOMEM, "out of memory");
	if (!(o->key = malloc(klen ? klen : 1)) || !(o->val = malloc(vlen ? vlen : 1))) {
		op_drop(st);
		return seterr(st, STORE_ENOMEM, "out of memory");
	}
	memcpy(o->key, key, klen);
	o->klen = klen;
	if (vlen)
		memcpy(o->val, val, vlen);
	o->vlen = vlen;
	return 0;
}

/* Queue a put of KEY -> JSON REC (serialised now; REC stays the caller's). */
static int q_putjson(struct store *st, MDB_dbi dbi, unsigned flags, const char *what,
		     const char *key, size_t klen, json_object *rec)
{
	size_t len;
	char *s = dump_json(rec, &len);
	int rc;

	if (!s)
		return seterr(st, STORE_ENOMEM, "out of memory");
	rc = q_put(st, dbi, flags, what, key, klen, s, len);
	free(s);
	return rc;
}

/* The "seq" of the step record in V. Records are written with "seq" as their fourth member
 * (after "run", "id", "node", see step_to_json), so the first `,"seq":` in the text is the
 * top-level one (a '"' inside a JSON string is always escaped); the full parse is the fallback. */
static int64_t rec_seq(const MDB_val *v)
{
	const char *p;
	json_object *o;
	int64_t seq;

	if (v->mv_size >= STEP_HDR && *(const unsigned char *)v->mv_data == STEP_TAG)
		return (int64_t)get_le64((const unsigned char *)v->mv_data + STEP_SEQ_OFF);
	p = memmem(v->mv_data, v->mv_size, ",\"seq\":", 7);

	if (p) {
		const char *end = (const char *)v->mv_data + v->mv_size;
		int64_t n = 0;
		int digits = 0;

		for (p += 7; p < end && *p >= '0' && *p <= '9' && digits < 18; p++, digits++)
			n = n * 10 + (*p - '0');
		if (digits && p < end && (*p == ',' || *p == '}'))
			return n;
	}
	o = parse_json(v->mv_data, v->mv_size);
	seq = o ? jint(o, "seq", 0) : 0;
	json_object_put(o);
	return seq;
}

/* The next seq for a new step of RUN, inside write txn TXN. */
static int next_seq(struct store *st, MDB_txn *txn, const char *run, int64_t *seq)
{
	MDB_cursor *c;
	MDB_val k, v;
	size_t plen = strlen(run) + 1;
	int64_t max = 0;
	int rc;

	if (st->seq_run && !strcmp(st->seq_run, run)) {
		*seq = st->seq_next++;
		return 0;
	}
	if ((rc = mdb_cursor_open(txn, st->steps, &c)))
		return rc;
	k.mv_size = plen;
	k.mv_data = (void *)run; /* "RUN\0" is a prefix of every key of the run */
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, run, plen))
			break;
		int64_t s = rec_seq(&v);
		if (s > max)
			max = s;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	free(st->seq_run);
	if (!(st->seq_run = strdup(run)))
		return ENOMEM;
	*seq = max + 1;
	st->seq_next = max + 2;
	return 0;
}

/* Apply op O in TXN. Returns 0, an LMDB/errno code, or (for the checks) a negative store
 * code with st->err set. */
static int apply(struct store *st, MDB_txn *txn, struct op *o)
{
	MDB_val k = {o->klen, o->key}, v = {o->vlen, o->val}, old;
	int rc;

	switch (o->kind) {
	case OP_PUT:
		if (o->flags & OPF_MUSTEXIST) {
			rc = mdb_get(txn, o->dbi, &k, &old);
			if (rc == MDB_NOTFOUND)
				return seterr(st, STORE_ENOENT, "%s '%.*s' not found", o->what,
					      (int)strnlen(o->key, o->klen), o->key);
			if (rc)
				return rc;
		}
		rc = mdb_put(txn, o->dbi, &k, &v,
			     (o->flags & (OPF_EXCL | OPF_KEEP)) ? MDB_NOOVERWRITE : 0);
		if (rc == MDB_KEYEXIST) {
			if (o->flags & OPF_KEEP)
				return 0;
			return seterr(st, STORE_EEXIST, "%s '%.*s' exists already", o->what,
				      (int)strnlen(o->key, o->klen), o->key);
		}
		return rc;
	case OP_DEL:
		rc = mdb_del(txn, o->dbi, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	case OP_STEP: {
		MDB_val rk = {strlen(o->run), o->run};
		int64_t seq = o->seq0;

		rc = mdb_get(txn, st->runs, &rk, &old);
		if (rc == MDB_NOTFOUND)
			return seterr(st, STORE_ENOENT, "run '%s' not found", o->run);
		if (rc)
			return rc;
		if (seq <= 0) {
			rc = mdb_get(txn, st->steps, &k, &old);
			if (rc == 0)
				seq = rec_seq(&old);
			else if (rc != MDB_NOTFOUND)
				return rc;
			if (seq <= 0 && (rc = next_seq(st, txn, o->run, &seq)))
				return rc;
		}
		/* the record was encoded with seq0; the resolved seq is patched in place */
		put_le64((unsigned char *)o->val + STEP_SEQ_OFF, (uint64_t)seq);
		return mdb_put(txn, st->steps, &k, &v, 0);
	}
	case OP_RUN_STATUS: {
		json_object *rec;
		char *s;
		size_t len;

		rc = mdb_get(txn, st->runs, &k, &old);
		if (rc == MDB_NOTFOUND)
			return seterr(st, STORE_ENOENT, "run '%s' not found", o->run);
		if (rc)
			return rc;
		if (!(rec = parse_json(old.mv_data, old.mv_size)))
			return seterr(st, STORE_ECORRUPT, "run '%s': undecodable record", o->run);
		if (addstr(rec, "status", store_run_status_name(o->status)) ||
		    (o->has_reason && addstr(rec, "reason", o->reason)) ||
		    (o->finished > 0 && adddbl(rec, "finished", o->finished)) ||
		    !(s = dump_json(rec, &len))) {
			json_object_put(rec);
			return ENOMEM;
		}
		json_object_put(rec);
		v.mv_size = len;
		v.mv_data = s;
		rc = mdb_put(txn, st->runs, &k, &v, 0);
		free(s);
		return rc;
	}
	}
	return EINVAL;
}

/* Apply and commit the queued ops, growing the map on MDB_MAP_FULL. On any failure nothing
 * of them is stored. The ops are cleared either way. */
static int commit(struct store *st)
{
	MDB_txn *txn;
	uint64_t limit = st->cap;
	char *seq_run0 = NULL;
	int64_t seq_next0 = 0;
	int rc = 0, result = 0;
	const char *cut_what = NULL; /* the first op dropped to commit the parts that fit */

	if (!st->nops)
		return 0;
	for (size_t i = 0; i < st->nops; i++)
		if (st->ops[i].flags & OPF_RESERVE) {
			uint64_t r = st->cap / 8 > 256 * 1024 ? st->cap / 8 : 256 * 1024;
			limit = st->cap + r;
		}
	if (st->seq_run && !(seq_run0 = strdup(st->seq_run))) {
		result = seterr(st, STORE_ENOMEM, "out of memory");
		goto out;
	}
	seq_next0 = st->seq_next;
	for (;;) {
		size_t i;

		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (rc == MDB_MAP_RESIZED) {
			mdb_env_set_mapsize(st->env, 0);
			continue;
		}
		if (rc) {
			result = mdberr(st, rc, "begin a write");
			goto out;
		}
		for (i = 0; i < st->nops; i++)
			if ((rc = apply(st, txn, &st->ops[i])))
				break;
		/* (i: the op that failed, or nops when the commit itself did) */
		if (rc) {
			mdb_txn_abort(txn);
		} else {
			rc = mdb_txn_commit(txn); /* frees txn whatever happens */
			if (!rc)
				break;
		}
		/* failed: restore the seq cache to what it was before this attempt */
		free(st->seq_run);
		st->seq_run = seq_run0 ? strdup(seq_run0) : NULL;
		st->seq_next = seq_next0;
		if (rc < 0 && rc > -100) { /* a store code from a check */
			result = rc;
			goto out;
		}
		if (rc == MDB_MAP_FULL) {
			uint64_t cur = map_size(st), next;

			if (cur >= limit) {
				/* a batch made of parts (store_batch_mark): keep the whole parts
				 * before the one that did not fit */
				size_t keep = 0;
				for (size_t m = 0; m < st->nmarks; m++)
					if (st->marks[m] <= i && st->marks[m] < st->nops &&
					    st->marks[m] > keep)
						keep = st->marks[m];
				if (keep > 0) {
					if (!cut_what)
						cut_what = st->ops[keep].what;
					while (st->nops > keep)
						op_drop(st);
					continue;
				}
				result = seterr(st, STORE_EFULL,
						"state store is full (map size %llu bytes): cannot "
						"record %s; raise KFPC_STORE_MAX_MAP or use another "
						"--state directory",
						(unsigned long long)cur, st->ops[0].what);
				goto out;
			}
			next = cur * 2 > limit ? limit : cur * 2;
			next = (next + 4095) & ~4095ULL;
			if ((rc = mdb_env_set_mapsize(st->env, (size_t)next))) {
				result = mdberr(st, rc, "grow the map");
				goto out;
			}
			continue;
		}
		result = mdberr(st, rc, "write");
		goto out;
	}
	st->dirty = 1;
	if (mono_now() - st->last_sync >= SYNC_INTERVAL)
		result = store_sync(st);
	if (cut_what)
		result = seterr(st, STORE_EFULL,
				"state store is full (map size %llu bytes): cannot record %s; raise "
				"KFPC_STORE_MAX_MAP or use another --state directory",
				(unsigned long long)map_size(st), cut_what);
out:
	free(seq_run0);
	ops_clear(st);
	return result;
}

/* End a write function: on error drop the ops it queued (those after MARK) and return RC;
 * else commit now unless inside a batch. */
static int finish(struct store *st, size_t mark, int rc)
{
	if (rc) {
		while (st->nops > mark)
			op_drop(st);
		return rc;
	}
	return st->batch ? 0 : commit(st);
}

int store_batch_begin(struct store *st)
{
	st->batch++;
	return 0;
}

int store_batch_end(struct store *st)
{
	if (st->batch > 0 && --st->batch > 0)
		return 0;
	return commit(st);
}

size_t store_batch_pending(const struct store *st)
{
	return st->nops;
}

int store_batch_mark(struct store *st)
{
	if (!st->batch || !st->nops || (st->nmarks && st->marks[st->nmarks - 1] == st->nops))
		return 0;
	if (st->nmarks == st->cmarks) {
		size_t nc = st->cmarks ? 2 * st->cmarks : 16;
		size_t *m = realloc(st->marks, nc * sizeof *m);
		if (!m)
			return STORE_ENOMEM; /* the batch stays one part: still correct */
		st->marks = m;
		st->cmarks = nc;
	}
	st->marks[st->nmarks++] = st->nops;
	return 0;
}

static int wcheck(struct store *st)
{
	if (st->rdonly)
		return seterr(st, STORE_EINVAL, "the state store was opened read-only");
	return 0;
}

/* --- paths ------------------------------------------------------------------------------ */

char *store_attempt_dir(struct store *st, const char *subdir, const char *run,
			const char *step, int attempt)
{
	size_t n = strlen(step), j = 0;
	char *esc, *path = NULL;
	int e;

	if (check_id(st, "run", run) || check_id(st, "step", step))
		return NULL;
	if (strcmp(subdir, "logs") && strcmp(subdir, "work")) {
		seterr(st, STORE_EINVAL, "bad attempt subdirectory '%s'", subdir);
		return NULL;
	}
	if (strchr(run, '/') || !strcmp(run, ".") || !strcmp(run, "..")) {
		seterr(st, STORE_EINVAL, "bad run id '%s'", run);
		return NULL;
	}
	if (!(esc = malloc(3 * n + 1))) {
		seterr(st, STORE_ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)step[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("._,=+[]-", c))
			esc[j++] = (char)c;
		else
			j += (size_t)sprintf(esc + j, "%%%02X", c);
	}
	esc[j] = '\0';
	if (esc[0] == '.' && (esc[1] == '\0' || (esc[1] == '.' && esc[2] == '\0'))) {
		seterr(st, STORE_EINVAL, "bad step id '%s'", step);
		free(esc);
		return NULL;
	}
	if (asprintf(&path, "%s/%s/%s/%s/%d", st->absdir, subdir, run, esc, attempt) < 0) {
		path = NULL;
		seterr(st, STORE_ENOMEM, "out of memory");
	} else if ((e = mkdirs(path))) {
		seterr(st, e == ENOSPC || e == EDQUOT ? STORE_ENOSPC : STORE_EIO,
		       "cannot create %s: %s", path, strerror(e));
		free(path);
		path = NULL;
	}
	free(esc);
	return path;
}

/* --- runs ------------------------------------------------------------------------------- */

static json_object *run_to_json(const struct store_run *r)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (addstr(o, "id", r->id) || addstr(o, "pipeline", r->pipeline) ||
	    addstr(o, "source", r->source) || addobj(o, "params", r->params) ||
	    addstr(o, "status", store_run_status_name(r->status)) ||
	    addstr(o, "reason", r->reason) || adddbl(o, "created", r->created) ||
	    adddbl(o, "started", r->started) || adddbl(o, "finished", r->finished) ||
	    addstr(o, "executor", r->executor) || addobj(o, "outputs", r->outputs)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct store_run *run_from_json(json_object *o)
{
	struct store_run *r = calloc(1, sizeof *r);
	const char *s;
	int status;

	if (!r)
		return NULL;
	r->id = xstrdup(jstr(o, "id"));
	r->pipeline = xstrdup(jstr(o, "pipeline"));
	r->source = xstrdup(jstr(o, "source"));
	r->params = jobj(o, "params");
	s = jstr(o, "status");
	status = store_run_status_parse(s);
	r->status = status < 0 ? STORE_RUN_FAILED : (enum store_run_status)status;
	r->reason = xstrdup(jstr(o, "reason"));
	r->created = jdbl(o, "created");
	r->started = jdbl(o, "started");
	r->finished = jdbl(o, "finished");
	r->executor = xstrdup(jstr(o, "executor"));
	r->outputs = jobj(o, "outputs");
	if (!r->id) {
		store_run_free(r);
		return NULL;
	}
	return r;
}

static int put_run(struct store *st, const struct store_run *r, unsigned flags)
{
	size_t mark = st->nops;
	json_object *o;
	int rc;

	if ((rc = wcheck(st)) || (rc = check_id(st, "run", r->id)))
		return finish(st, mark, rc);
	if (!(o = run_to_json(r)))
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	if (r->status != STORE_RUN_RUNNING)
		flags |= OPF_RESERVE;
	rc = q_putjson(st, st->runs, flags, "run", r->id, strlen(r->id), o);
	json_object_put(o);
	if (!rc && r->ir_json)
		rc = q_put(st, st->run_ir, OPF_RESERVE & flags, "run IR", r->id, strlen(r->id),
			   r->ir_json, strlen(r->ir_json));
	return finish(st, mark, rc);
}

int store_run_create(struct store *st, const struct store_run *r)
{
	return put_run(st, r, OPF_EXCL);
}

int store_run_put(struct store *st, const struct store_run *r)
{
	return put_run(st, r, OPF_MUSTEXIST);
}

int store_run_set_status(struct store *st, const char *id, enum store_run_status status,
			 const char *reason, double finished)
{
	size_t mark = st->nops;
	struct op *o;
	int rc;

	if ((rc = wcheck(st)) || (rc = check_id(st, "run", id)))
		return finish(st, mark, rc);
	if (!(o = op_new(st, OP_RUN_STATUS, st->runs,
			 status != STORE_RUN_RUNNING ? OPF_RESERVE : 0, "run status")))
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	o->status = status;
	o->has_reason = 1;
	o->finished = finished;
	if (!(o->key = strdup(id)) || !(o->run = strdup(id)) ||
	    (reason && !(o->reason = strdup(reason)))) {
		op_drop(st);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	o->klen = strlen(id);
	return finish(st, mark, 0);
}

/* Count the step records of RUN in TXN. */
static int64_t count_steps(struct store *st, MDB_txn *txn, const char *run)
{
	MDB_cursor *c;
	MDB_val k, v;
	size_t plen = strlen(run) + 1;
	int64_t n = 0;

	if (mdb_cursor_open(txn, st->steps, &c))
		return 0;
	k.mv_size = plen;
	k.mv_data = (void *)run;
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, run, plen))
			break;
		n++;
	}
	mdb_cursor_close(c);
	return n;
}

int store_run_get(struct store *st, const char *id, int with_ir, struct store_run **out)
{
	MDB_txn *txn;
	MDB_val k, v;
	json_object *o;
	int rc;

	*out = NULL;
	if ((rc = check_id(st, "run", id)) || (rc = rd_begin(st, &txn)))
		return rc;
	k.mv_size = strlen(id);
	k.mv_data = (void *)id;
	if ((rc = mdb_get(txn, st->runs, &k, &v))) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return seterr(st, STORE_ENOENT, "run '%s' not found", id);
		return mdberr(st, rc, "read a run");
	}
	if (!(o = parse_json(v.mv_data, v.mv_size)) || !(*out = run_from_json(o))) {
		json_object_put(o);
		mdb_txn_abort(txn);
		return seterr(st, STORE_ECORRUPT, "run '%s': undecodable record", id);
	}
	json_object_put(o);
	(*out)->nsteps = count_steps(st, txn, id);
	if (with_ir && mdb_get(txn, st->run_ir, &k, &v) == 0) {
		if (!((*out)->ir_json = malloc(v.mv_size + 1))) {
			mdb_txn_abort(txn);
			store_run_free(*out);
			*out = NULL;
			return seterr(st, STORE_ENOMEM, "out of memory");
		}
		memcpy((*out)->ir_json, v.mv_data, v.mv_size);
		(*out)->ir_json[v.mv_size] = '\0';
	}
	mdb_txn_abort(txn);
	return 0;
}

int store_run_resolve(struct store *st, const char *prefix, char **id)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t plen;
	int rc, n = 0;
	char *first = NULL;
	char list[256] = "";

	*id = NULL;
	if ((rc = check_id(st, "run", prefix)) || (rc = rd_begin(st, &txn)))
		return rc;
	plen = strlen(prefix);
	k.mv_size = plen;
	k.mv_data = (void *)prefix;
	if (mdb_get(txn, st->runs, &k, &v) == 0) {
		mdb_txn_abort(txn);
		if (!(*id = strdup(prefix)))
			return seterr(st, STORE_ENOMEM, "out of memory");
		return 0;
	}
	if ((rc = mdb_cursor_open(txn, st->runs, &c))) {
		mdb_txn_abort(txn);
		return mdberr(st, rc, "read runs");
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen))
			break;
		if (n == 0 && !(first = strndup(k.mv_data, k.mv_size)))
			break;
		if (n < 5) {
			size_t l = strlen(list);
			snprintf(list + l, sizeof list - l, "%s%.*s", n ? ", " : "", (int)k.mv_size,
				 (char *)k.mv_data);
		}
		n++;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (n == 0)
		return seterr(st, STORE_ENOENT, "run '%s' not found", prefix);
	if (!first)
		return seterr(st, STORE_ENOMEM, "out of memory");
	if (n > 1) {
		free(first);
		return seterr(st, STORE_EAMBIG, "run prefix '%s' is ambiguous: %s%s", prefix, list,
			      n > 5 ? ", ..." : "");
	}
	*id = first;
	return 0;
}

static int run_cmp(const void *a, const void *b)
{
	const struct store_run *x = *(struct store_run *const *)a;
	const struct store_run *y = *(struct store_run *const *)b;

	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return -strcmp(x->id, y->id);
}

int store_run_list(struct store *st, struct store_run ***out, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	struct store_run **runs = NULL;
	size_t nr = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = rd_begin(st, &txn)))
		return rc;
	if ((rc = mdb_cursor_open(txn, st->runs, &c))) {
		mdb_txn_abort(txn);
		return mdberr(st, rc, "read runs");
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		json_object *o = parse_json(v.mv_data, v.mv_size);
		struct store_run *r = o ? run_from_json(o) : NULL;

		json_object_put(o);
		if (!r) /* skip an undecodable record rather than hiding every other run */
			continue;
		if (nr == cap) {
			size_t nc = cap ? cap * 2 : 32;
			struct store_run **p = realloc(runs, nc * sizeof *p);
			if (!p) {
				store_run_free(r);
				rc = ENOMEM;
				break;
			}
			runs = p;
			cap = nc;
		}
		runs[nr++] = r;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		store_run_list_free(runs, nr);
		return mdberr(st, rc, "read runs");
	}
	for (size_t i = 0; i < nr; i++)
		runs[i]->nsteps = count_steps(st, txn, runs[i]->id);
	mdb_txn_abort(txn);
	if (nr)
		qsort(runs, nr, sizeof *runs, run_cmp);
	*out = runs;
	*n = nr;
	return 0;
}

void store_run_free(struct store_run *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->pipeline);
	free(r->ir_json);
	free(r->source);
	json_object_put(r->params);
	free(r->reason);
	free(r->executor);
	json_object_put(r->outputs);
	free(r);
}

void store_run_list_free(struct store_run **runs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_run_free(runs[i]);
	free(runs);
}

/* --- steps ------------------------------------------------------------------------------ */

/* Decode a schema-1 step record (JSON text, still read: see the migration rule). */
static struct store_step *step_from_json(json_object *o)
{
	struct store_step *s = calloc(1, sizeof *s);
	json_object *arr, *v;
	int state;

	if (!s)
		return NULL;
	s->run = xstrdup(jstr(o, "run"));
	s->id = xstrdup(jstr(o, "id"));
	s->node = xstrdup(jstr(o, "node"));
	s->seq = jint(o, "seq", 0);
	state = store_step_state_parse(jstr(o, "state"));
	s->state = state < 0 ? STORE_STEP_FAILED : (enum store_step_state)state;
	s->reason = xstrdup(jstr(o, "reason"));
	s->started = jdbl(o, "started");
	s->finished = jdbl(o, "finished");
	if (json_object_object_get_ex(o, "attempts", &arr) &&
	    json_object_is_type(arr, json_type_array) && json_object_array_length(arr)) {
		size_t n = json_object_array_length(arr);
		if (!(s->attempts = calloc(n, sizeof *s->attempts)))
			goto err;
		for (size_t i = 0; i < n; i++) {
			json_object *a = json_object_array_get_idx(arr, i);
			struct store_attempt *t = &s->attempts[i];
			int k;

			s->nattempts = i + 1;
			t->number = (int)jint(a, "number", (int64_t)i + 1);
			t->started = jdbl(a, "started");
			t->finished = jdbl(a, "finished");
			t->exit_code = (int)jint(a, "exit_code", -1);
			t->signal = (int)jint(a, "signal", 0);
			k = store_fail_kind_parse(jstr(a, "fail"));
			t->fail = k < 0 ? STORE_FAIL_INFRA : (enum store_fail_kind)k;
			t->reason = xstrdup(jstr(a, "reason"));
			t->stdout_path = xstrdup(jstr(a, "stdout"));
			t->stderr_path = xstrdup(jstr(a, "stderr"));
			t->executor = xstrdup(jstr(a, "executor"));
			t->handle = xstrdup(jstr(a, "handle"));
		}
	}
	s->inputs = jobj(o, "inputs");
	s->outputs = jobj(o, "outputs");
	if (artrefs_from_json(o, "in_arts", &s->in_arts, &s->nin_arts) ||
	    artrefs_from_json(o, "out_arts", &s->out_arts, &s->nout_arts))
		goto err;
	s->cache_key = xstrdup(jstr(o, "cache_key"));
	s->from_cache = json_object_object_get_ex(o, "from_cache", &v) && json_object_get_boolean(v);
	s->cached_from = xstrdup(jstr(o, "cached_from"));
	if (!s->run || !s->id)
		goto err;
	return s;
err:
	store_step_free(s);
	return NULL;
}

/* --- the binary step record (schema 2, see the top of this file) --------------------------- */


/* A growable output buffer; `failed` is set when an allocation failed. */
struct wbuf {
	unsigned char *p;
	size_t len, cap;
	int failed;
};

static unsigned char *wb_room(struct wbuf *b, size_t n)
{
	if (b->failed)
		return NULL;
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		unsigned char *q;
		while (nc < b->len + n)
			nc *= 2;
		if (!(q = realloc(b->p, nc))) {
			b->failed = 1;
			return NULL;
		}
		b->p = q;
		b->cap = nc;
	}
	return b->p + b->len;
}

static void wb_bytes(struct wbuf *b, const void *s, size_t n)
{
	unsigned char *q = wb_room(b, n);

	if (q) {
		if (n)
			memcpy(q, s, n);
		b->len += n;
	}
}

static void wb_u8(struct wbuf *b, unsigned v)
{
	unsigned char c = (unsigned char)v;

	wb_bytes(b, &c, 1);
}

static void wb_uvar(struct wbuf *b, uint64_t v)
{
	unsigned char t[10];
	size_t n = 0;

	do {
		t[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			t[n] |= 0x80;
		n++;
	} while (v);
	wb_bytes(b, t, n);
}

static void wb_svar(struct wbuf *b, int64_t v)
{
	wb_uvar(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); /* zigzag */
}

static void wb_f64(struct wbuf *b, double d)
{
	uint64_t u;
	unsigned char t[8];

	memcpy(&u, &d, sizeof u);
	put_le64(t, u);
	wb_bytes(b, t, 8);
}

/* A string: uvarint length + 1 (0: NULL), then the bytes without a NUL. */
static void wb_str(struct wbuf *b, const char *s)
{
	size_t n;

	if (!s) {
		wb_uvar(b, 0);
		return;
	}
	n = strlen(s);
	wb_uvar(b, (uint64_t)n + 1);
	wb_bytes(b, s, n);
}

/* A JSON value as its json-c text (a string), or NULL. */
static void wb_json(struct wbuf *b, json_object *o)
{
	const char *s;
	size_t n;

	if (!o) {
		wb_uvar(b, 0);
		return;
	}
	s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (!s) {
		b->failed = 1;
		return;
	}
	wb_uvar(b, (uint64_t)n + 1);
	wb_bytes(b, s, n);
}

static void wb_artrefs(struct wbuf *b, const struct store_artref *a, size_t n)
{
	wb_uvar(b, n);
	for (size_t i = 0; i < n; i++) {
		wb_str(b, a[i].name ? a[i].name : "");
		wb_str(b, a[i].digest ? a[i].digest : "");
	}
}

/* Encode step S into a malloc'd buffer (*len bytes); the seq field holds S->seq (0 when it is
 * to be resolved at commit). NULL when out of memory. */
static unsigned char *step_encode(const struct store_step *s, size_t *len)
{
	struct wbuf b = {0};
	unsigned char *q;

	if ((q = wb_room(&b, STEP_HDR))) {
		q[0] = STEP_TAG;
		put_le64(q + STEP_SEQ_OFF, (uint64_t)(s->seq > 0 ? s->seq : 0));
		b.len = STEP_HDR;
	}
	wb_str(&b, s->run);
	wb_str(&b, s->id);
	wb_str(&b, s->node ? s->node : s->id);
	wb_u8(&b, s->state);
	wb_str(&b, s->reason);
	wb_f64(&b, s->started);
	wb_f64(&b, s->finished);
	wb_uvar(&b, s->nattempts);
	for (size_t i = 0; i < s->nattempts; i++) {
		const struct store_attempt *a = &s->attempts[i];
		wb_svar(&b, a->number);
		wb_f64(&b, a->started);
		wb_f64(&b, a->finished);
		wb_svar(&b, a->exit_code);
		wb_svar(&b, a->signal);
		wb_u8(&b, a->fail);
		wb_str(&b, a->reason);
		wb_str(&b, a->stdout_path);
		wb_str(&b, a->stderr_path);
		wb_str(&b, a->executor);
		wb_str(&b, a->handle);
	}
	wb_json(&b, s->inputs);
	wb_artrefs(&b, s->in_arts, s->nin_arts);
	wb_json(&b, s->outputs);
	wb_artrefs(&b, s->out_arts, s->nout_arts);
	wb_str(&b, s->cache_key);
	wb_u8(&b, s->from_cache ? 1 : 0);
	wb_str(&b, s->cached_from);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* A reader over one record; `bad` is set at the first overrun or malformed field. */
struct rbuf {
	const unsigned char *p, *end;
	int bad;
	int nomem;
};

static const unsigned char *rb_take(struct rbuf *r, size_t n)
{
	const unsigned char *q = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	return q;
}

static unsigned rb_u8(struct rbuf *r)
{
	const unsigned char *q = rb_take(r, 1);

	return q ? *q : 0;
}

static uint64_t rb_uvar(struct rbuf *r)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		const unsigned char *q = rb_take(r, 1);
		if (!q)
			return 0;
		v |= (uint64_t)(*q & 0x7f) << shift;
		if (!(*q & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static int64_t rb_svar(struct rbuf *r)
{
	uint64_t u = rb_uvar(r);

	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static double rb_f64(struct rbuf *r)
{
	const unsigned char *q = rb_take(r, 8);
	uint64_t u;
	double d;

	if (!q)
		return 0;
	u = get_le64(q);
	memcpy(&d, &u, sizeof d);
	return d;
}

/* A malloc'd copy of the next string (NULL for a NULL string or on error). */
static char *rb_str(struct rbuf *r)
{
	uint64_t n = rb_uvar(r);
	const unsigned char *q;
	char *s;

	if (!n || r->bad)
		return NULL;
	if (!(q = rb_take(r, (size_t)(n - 1))))
		return NULL;
	if (memchr(q, 0, (size_t)(n - 1))) {
		r->bad = 1;
		return NULL;
	}
	if (!(s = malloc((size_t)n))) {
		r->nomem = r->bad = 1;
		return NULL;
	}
	memcpy(s, q, (size_t)(n - 1));
	s[n - 1] = 0;
	return s;
}

static json_object *rb_json(struct rbuf *r)
{
	uint64_t n = rb_uvar(r);
	const unsigned char *q;
	json_object *o;

	if (!n || r->bad)
		return NULL;
	if (!(q = rb_take(r, (size_t)(n - 1))))
		return NULL;
	if (!(o = parse_json((const char *)q, (size_t)(n - 1))))
		r->bad = 1;
	return o;
}

static int rb_artrefs(struct rbuf *r, struct store_artref **out, size_t *n)
{
	uint64_t len = rb_uvar(r);

	*out = NULL;
	*n = 0;
	if (r->bad || !len)
		return 0;
	if (len > (uint64_t)(r->end - r->p) / 2) { /* each pair takes 2 bytes at least */
		r->bad = 1;
		return -1;
	}
	if (!(*out = calloc((size_t)len, sizeof **out))) {
		r->nomem = r->bad = 1;
		return -1;
	}
	for (size_t i = 0; i < len && !r->bad; i++) {
		(*out)[i].name = rb_str(r);
		(*out)[i].digest = rb_str(r);
		*n = i + 1;
		if (!(*out)[i].name || !(*out)[i].digest)
			r->bad = 1;
	}
	return r->bad ? -1 : 0;
}

/* Decode a binary step record; NULL if it is malformed or memory ran out. Bytes after the
 * known members are ignored (members a later build appended). */
static struct store_step *step_decode(const unsigned char *p, size_t len)
{
	struct rbuf r = {p, p + len, 0, 0};
	struct store_step *s;
	uint64_t n;

	if (len < STEP_HDR || p[0] != STEP_TAG || !(s = calloc(1, sizeof *s)))
		return NULL;
	s->seq = (int64_t)get_le64(p + STEP_SEQ_OFF);
	r.p += STEP_HDR;
	s->run = rb_str(&r);
	s->id = rb_str(&r);
	s->node = rb_str(&r);
	s->state = (enum store_step_state)rb_u8(&r);
	if ((unsigned)s->state > STORE_STEP_CANCELLED)
		s->state = STORE_STEP_FAILED;
	s->reason = rb_str(&r);
	s->started = rb_f64(&r);
	s->finished = rb_f64(&r);
	n = rb_uvar(&r);
	if (!r.bad && n) {
		/* an attempt takes 25 bytes at least */
		if (n > (uint64_t)(r.end - r.p) / 25 ||
		    !(s->attempts = calloc((size_t)n, sizeof *s->attempts)))
			goto err;
		for (size_t i = 0; i < n && !r.bad; i++) {
			struct store_attempt *t = &s->attempts[i];
			unsigned k;

			s->nattempts = i + 1;
			t->number = (int)rb_svar(&r);
			t->started = rb_f64(&r);
			t->finished = rb_f64(&r);
			t->exit_code = (int)rb_svar(&r);
			t->signal = (int)rb_svar(&r);
			k = rb_u8(&r);
			t->fail = k > STORE_FAIL_INFRA ? STORE_FAIL_INFRA : (enum store_fail_kind)k;
			t->reason = rb_str(&r);
			t->stdout_path = rb_str(&r);
			t->stderr_path = rb_str(&r);
			t->executor = rb_str(&r);
			t->handle = rb_str(&r);
		}
	}
	s->inputs = rb_json(&r);
	rb_artrefs(&r, &s->in_arts, &s->nin_arts);
	s->outputs = rb_json(&r);
	rb_artrefs(&r, &s->out_arts, &s->nout_arts);
	s->cache_key = rb_str(&r);
	s->from_cache = rb_u8(&r) ? 1 : 0;
	s->cached_from = rb_str(&r);
	if (r.bad || !s->run || !s->id)
		goto err;
	return s;
err:
	store_step_free(s);
	return NULL;
}

/* Decode a step record of either encoding (binary, or JSON text from schema 1). */
static struct store_step *step_from_val(const MDB_val *v)
{
	json_object *o;
	struct store_step *s;

	if (v->mv_size && *(const unsigned char *)v->mv_data == STEP_TAG)
		return step_decode(v->mv_data, v->mv_size);
	if (!(o = parse_json(v->mv_data, v->mv_size)))
		return NULL;
	s = step_from_json(o);
	json_object_put(o);
	return s;
}

static int q_edge(struct store *st, const char *kind, const char *digest, const char *run,
		  const char *step, const char *name)
{
	size_t klen;
	char *k;
	int rc;

	if (!digest || !*digest)
		return 0;
	if (strlen(digest) > 128 || (name && strlen(name) > STORE_ID_MAX))
		return seterr(st, STORE_EINVAL, "bad artifact reference '%.70s'", digest);
	if (!(k = mkkey(&klen, 5, kind, digest, run, step, name ? name : "")))
		return seterr(st, STORE_ENOMEM, "out of memory");
	rc = q_put(st, st->edges, OPF_KEEP, "lineage edge", k, klen, "", 0);
	free(k);
	return rc;
}

int store_step_put(struct store *st, const struct store_step *s)
{
	size_t mark = st->nops;
	struct op *o;
	unsigned char *val;
	size_t klen, vlen;
	int rc;

	if ((rc = wcheck(st)) || (rc = check_id(st, "run", s->run)) ||
	    (rc = check_id(st, "step", s->id)))
		return finish(st, mark, rc);
	if (!(val = step_encode(s, &vlen)))
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	if (!(o = op_new(st, OP_STEP, st->steps, 0, "step"))) {
		free(val);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	o->val = (char *)val;
	o->vlen = vlen;
	o->seq0 = s->seq > 0 ? s->seq : 0;
	if (!(o->key = mkkey(&klen, 2, s->run, s->id)) || !(o->run = strdup(s->run))) {
		op_drop(st);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	o->klen = klen;
	for (size_t i = 0; !rc && i < s->nin_arts; i++)
		rc = q_edge(st, "c", s->in_arts[i].digest, s->run, s->id, s->in_arts[i].name);
	for (size_t i = 0; !rc && i < s->nout_arts; i++)
		rc = q_edge(st, "p", s->out_arts[i].digest, s->run, s->id, s->out_arts[i].name);
	return finish(st, mark, rc);
}

int store_step_get(struct store *st, const char *run, const char *id, struct store_step **out)
{
	MDB_txn *txn;
	MDB_val k, v;
	size_t klen;
	char *key;
	int rc;

	*out = NULL;
	if ((rc = check_id(st, "run", run)) || (rc = check_id(st, "step", id)))
		return rc;
	if (!(key = mkkey(&klen, 2, run, id)))
		return seterr(st, STORE_ENOMEM, "out of memory");
	if ((rc = rd_begin(st, &txn))) {
		free(key);
		return rc;
	}
	k.mv_size = klen;
	k.mv_data = key;
	rc = mdb_get(txn, st->steps, &k, &v);
	if (rc) {
		mdb_txn_abort(txn);
		free(key);
		if (rc == MDB_NOTFOUND)
			return seterr(st, STORE_ENOENT, "run '%s' has no step '%s'", run, id);
		return mdberr(st, rc, "read a step");
	}
	*out = step_from_val(&v);
	mdb_txn_abort(txn);
	free(key);
	if (!*out)
		return seterr(st, STORE_ECORRUPT, "step '%s' of run '%s': undecodable record", id,
			      run);
	return 0;
}

static int step_cmp(const void *a, const void *b)
{
	const struct store_step *x = *(struct store_step *const *)a;
	const struct store_step *y = *(struct store_step *const *)b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->id, y->id);
}

int store_step_list(struct store *st, const char *run, struct store_step ***out, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	struct store_step **steps = NULL;
	size_t ns = 0, cap = 0, plen;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = check_id(st, "run", run)) || (rc = rd_begin(st, &txn)))
		return rc;
	if ((rc = mdb_cursor_open(txn, st->steps, &c))) {
		mdb_txn_abort(txn);
		return mdberr(st, rc, "read steps");
	}
	plen = strlen(run) + 1;
	k.mv_size = plen;
	k.mv_data = (void *)run;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct store_step *s;

		if (k.mv_size < plen || memcmp(k.mv_data, run, plen))
			break;
		s = step_from_val(&v);
		if (!s)
			continue;
		if (ns == cap) {
			size_t nc = cap ? cap * 2 : 32;
			struct store_step **p = realloc(steps, nc * sizeof *p);
			if (!p) {
				store_step_free(s);
				rc = ENOMEM;
				break;
			}
			steps = p;
			cap = nc;
		}
		steps[ns++] = s;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc && rc != MDB_NOTFOUND) {
		store_step_list_free(steps, ns);
		return mdberr(st, rc, "read steps");
	}
	if (ns)
		qsort(steps, ns, sizeof *steps, step_cmp);
	*out = steps;
	*n = ns;
	return 0;
}

static void attempt_clear(struct store_attempt *a)
{
	free(a->reason);
	free(a->stdout_path);
	free(a->stderr_path);
	free(a->executor);
	free(a->handle);
}

void store_step_free(struct store_step *s)
{
	if (!s)
		return;
	free(s->run);
	free(s->id);
	free(s->node);
	free(s->reason);
	for (size_t i = 0; i < s->nattempts; i++)
		attempt_clear(&s->attempts[i]);
	free(s->attempts);
	json_object_put(s->inputs);
	artrefs_free(s->in_arts, s->nin_arts);
	json_object_put(s->outputs);
	artrefs_free(s->out_arts, s->nout_arts);
	free(s->cache_key);
	free(s->cached_from);
	free(s);
}

void store_step_list_free(struct store_step **steps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_step_free(steps[i]);
	free(steps);
}

int store_step_add_attempt(struct store_step *s, const struct store_attempt *a)
{
	struct store_attempt *p, t = *a;

	t.reason = xstrdup(a->reason);
	t.stdout_path = xstrdup(a->stdout_path);
	t.stderr_path = xstrdup(a->stderr_path);
	t.executor = xstrdup(a->executor);
	t.handle = xstrdup(a->handle);
	if ((a->reason && !t.reason) || (a->stdout_path && !t.stdout_path) ||
	    (a->stderr_path && !t.stderr_path) || (a->executor && !t.executor) ||
	    (a->handle && !t.handle) ||
	    !(p = realloc(s->attempts, (s->nattempts + 1) * sizeof *p))) {
		attempt_clear(&t);
		return STORE_ENOMEM;
	}
	s->attempts = p;
	s->attempts[s->nattempts++] = t;
	return 0;
}

/* --- artifacts and lineage -------------------------------------------------------------- */

static int digest_ok(const char *d)
{
	size_t n = d ? strlen(d) : 0;

	if (n < 1 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return 0;
	return 1;
}

int store_art_put(struct store *st, const struct store_art *a)
{
	size_t mark = st->nops;
	json_object *o;
	int rc;

	if ((rc = wcheck(st)))
		return finish(st, mark, rc);
	if (!digest_ok(a->digest))
		return finish(st, mark, seterr(st, STORE_EINVAL, "bad artifact digest '%.70s'",
					       a->digest ? a->digest : ""));
	if (!(o = json_object_new_object()) || addstr(o, "digest", a->digest) ||
	    addstr(o, "kind", a->kind) || addstr(o, "type", a->type) ||
	    addint(o, "size", (int64_t)a->size) || addstr(o, "run", a->run) ||
	    addstr(o, "step", a->step) || addstr(o, "output", a->output) ||
	    adddbl(o, "created", a->created)) {
		json_object_put(o);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	rc = q_putjson(st, st->arts, OPF_KEEP, "artifact", a->digest, strlen(a->digest), o);
	json_object_put(o);
	return finish(st, mark, rc);
}

int store_art_get(struct store *st, const char *digest, struct store_art **out)
{
	MDB_txn *txn;
	MDB_val k, v;
	json_object *o;
	struct store_art *a;
	int rc;

	*out = NULL;
	if (!digest_ok(digest))
		return seterr(st, STORE_EINVAL, "bad artifact digest '%.70s'", digest ? digest : "");
	if ((rc = rd_begin(st, &txn)))
		return rc;
	k.mv_size = strlen(digest);
	k.mv_data = (void *)digest;
	if ((rc = mdb_get(txn, st->arts, &k, &v))) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return seterr(st, STORE_ENOENT, "artifact %s not found", digest);
		return mdberr(st, rc, "read an artifact");
	}
	o = parse_json(v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	if (!o || !(a = calloc(1, sizeof *a))) {
		json_object_put(o);
		return seterr(st, o ? STORE_ENOMEM : STORE_ECORRUPT,
			      "artifact %s: cannot decode its record", digest);
	}
	a->digest = strdup(digest);
	a->kind = xstrdup(jstr(o, "kind"));
	a->type = xstrdup(jstr(o, "type"));
	a->size = (uint64_t)jint(o, "size", 0);
	a->run = xstrdup(jstr(o, "run"));
	a->step = xstrdup(jstr(o, "step"));
	a->output = xstrdup(jstr(o, "output"));
	a->created = jdbl(o, "created");
	json_object_put(o);
	if (!a->digest) {
		store_art_free(a);
		return seterr(st, STORE_ENOMEM, "out of memory");
	}
	*out = a;
	return 0;
}

int store_art_resolve(struct store *st, const char *prefix, char **digest)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	char p[130];
	size_t plen;
	int rc, n = 0;
	char *first = NULL;

	*digest = NULL;
	if (!strncmp(prefix, "sha256:", 7))
		prefix += 7;
	plen = strlen(prefix);
	if (plen < 4 || plen > 128)
		return seterr(st, STORE_EINVAL,
			      "artifact digest prefix '%s' is too %s (4 to 64 hex digits)", prefix,
			      plen < 4 ? "short" : "long");
	for (size_t i = 0; i <= plen; i++)
		p[i] = (char)((prefix[i] >= 'A' && prefix[i] <= 'F') ? prefix[i] - 'A' + 'a'
								   : prefix[i]);
	if (!digest_ok(p))
		return seterr(st, STORE_EINVAL, "'%s' is not a hex digest", prefix);
	if ((rc = rd_begin(st, &txn)))
		return rc;
	if ((rc = mdb_cursor_open(txn, st->arts, &c))) {
		mdb_txn_abort(txn);
		return mdberr(st, rc, "read artifacts");
	}
	k.mv_size = plen;
	k.mv_data = p;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < 2;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, p, plen))
			break;
		if (n++ == 0 && !(first = strndup(k.mv_data, k.mv_size)))
			break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (n == 0)
		return seterr(st, STORE_ENOENT, "no artifact %s", p);
	if (!first)
		return seterr(st, STORE_ENOMEM, "out of memory");
	if (n > 1) {
		free(first);
		return seterr(st, STORE_EAMBIG, "artifact prefix %s is ambiguous", p);
	}
	*digest = first;
	return 0;
}

void store_art_free(struct store_art *a)
{
	if (!a)
		return;
	free(a->digest);
	free(a->kind);
	free(a->type);
	free(a->run);
	free(a->step);
	free(a->output);
	free(a);
}

static int edges(struct store *st, const char *kind, const char *digest,
		 struct store_edge **out, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	struct store_edge *e = NULL;
	size_t ne = 0, cap = 0, plen;
	char *pfx;
	int rc;

	*out = NULL;
	*n = 0;
	if (!digest_ok(digest))
		return seterr(st, STORE_EINVAL, "bad artifact digest '%.70s'", digest ? digest : "");
	if (!(pfx = mkkey(&plen, 3, kind, digest, "")))
		return seterr(st, STORE_ENOMEM, "out of memory");
	if ((rc = rd_begin(st, &txn))) {
		free(pfx);
		return rc;
	}
	if ((rc = mdb_cursor_open(txn, st->edges, &c))) {
		mdb_txn_abort(txn);
		free(pfx);
		return mdberr(st, rc, "read lineage");
	}
	k.mv_size = plen;
	k.mv_data = pfx;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const char *p = k.mv_data, *end = p + k.mv_size;
		const char *f[3];
		size_t fl[3];

		if (k.mv_size < plen || memcmp(k.mv_data, pfx, plen))
			break;
		p += plen;
		for (int i = 0; i < 3; i++) {
			const char *z = memchr(p, '\0', (size_t)(end - p));
			f[i] = p;
			fl[i] = z ? (size_t)(z - p) : (size_t)(end - p);
			p = z ? z + 1 : end;
		}
		if (ne == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct store_edge *q = realloc(e, nc * sizeof *q);
			if (!q) {
				rc = ENOMEM;
				break;
			}
			e = q;
			cap = nc;
		}
		e[ne].run = strndup(f[0], fl[0]);
		e[ne].step = strndup(f[1], fl[1]);
		e[ne].name = strndup(f[2], fl[2]);
		e[ne].digest = strdup(digest);
		ne++;
		if (!e[ne - 1].run || !e[ne - 1].step || !e[ne - 1].name || !e[ne - 1].digest) {
			rc = ENOMEM;
			break;
		}
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	free(pfx);
	if (rc && rc != MDB_NOTFOUND) {
		store_edges_free(e, ne);
		return mdberr(st, rc, "read lineage");
	}
	*out = e;
	*n = ne;
	return 0;
}

int store_lineage_producers(struct store *st, const char *digest, struct store_edge **out,
			    size_t *n)
{
	return edges(st, "p", digest, out, n);
}

int store_lineage_consumers(struct store *st, const char *digest, struct store_edge **out,
			    size_t *n)
{
	return edges(st, "c", digest, out, n);
}

void store_edges_free(struct store_edge *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].run);
		free(e[i].step);
		free(e[i].name);
		free(e[i].digest);
	}
	free(e);
}

/* --- cache index ------------------------------------------------------------------------ */

int store_cache_put(struct store *st, const struct store_cache *c)
{
	size_t mark = st->nops;
	json_object *o, *arts;
	int rc;

	if ((rc = wcheck(st)))
		return finish(st, mark, rc);
	if (!digest_ok(c->key))
		return finish(st, mark, seterr(st, STORE_EINVAL, "bad cache key '%.70s'",
					       c->key ? c->key : ""));
	if (!(o = json_object_new_object()) || addstr(o, "key", c->key) ||
	    addobj(o, "outputs", c->outputs) ||
	    !(arts = artrefs_to_json(c->arts, c->narts))) {
		json_object_put(o);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	if (json_object_object_add(o, "arts", arts)) {
		json_object_put(arts);
		json_object_put(o);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	if (adddbl(o, "created", c->created) || addstr(o, "run", c->run) ||
	    addstr(o, "step", c->step)) {
		json_object_put(o);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	rc = q_putjson(st, st->cache, 0, "cache entry", c->key, strlen(c->key), o);
	json_object_put(o);
	return finish(st, mark, rc);
}

int store_cache_get(struct store *st, const char *key, struct store_cache **out)
{
	MDB_txn *txn;
	MDB_val k, v;
	json_object *o;
	struct store_cache *c;
	int rc;

	*out = NULL;
	if (!digest_ok(key))
		return seterr(st, STORE_EINVAL, "bad cache key '%.70s'", key ? key : "");
	if ((rc = rd_begin(st, &txn)))
		return rc;
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	if ((rc = mdb_get(txn, st->cache, &k, &v))) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return seterr(st, STORE_ENOENT, "no cache entry %s", key);
		return mdberr(st, rc, "read the cache index");
	}
	o = parse_json(v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	if (!o)
		return seterr(st, STORE_ECORRUPT, "cache entry %s: undecodable record", key);
	if (!(c = calloc(1, sizeof *c))) {
		json_object_put(o);
		return seterr(st, STORE_ENOMEM, "out of memory");
	}
	c->key = strdup(key);
	c->outputs = jobj(o, "outputs");
	c->created = jdbl(o, "created");
	c->run = xstrdup(jstr(o, "run"));
	c->step = xstrdup(jstr(o, "step"));
	rc = artrefs_from_json(o, "arts", &c->arts, &c->narts);
	json_object_put(o);
	if (rc || !c->key) {
		store_cache_free(c);
		return seterr(st, STORE_ENOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

int store_cache_del(struct store *st, const char *key)
{
	size_t mark = st->nops;
	struct op *o;
	int rc;

	if ((rc = wcheck(st)))
		return finish(st, mark, rc);
	if (!digest_ok(key))
		return finish(st, mark, seterr(st, STORE_EINVAL, "bad cache key '%.70s'",
					       key ? key : ""));
	if (!(o = op_new(st, OP_DEL, st->cache, 0, "cache entry")))
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	if (!(o->key = strdup(key))) {
		op_drop(st);
		return finish(st, mark, seterr(st, STORE_ENOMEM, "out of memory"));
	}
	o->klen = strlen(key);
	return finish(st, mark, 0);
}

void store_cache_free(struct store_cache *c)
{
	if (!c)
		return;
	free(c->key);
	json_object_put(c->outputs);
	artrefs_free(c->arts, c->narts);
	free(c->run);
	free(c->step);
	free(c);
}

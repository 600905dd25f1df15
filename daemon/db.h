/* db.h - the daemon's own LMDB environment (DATA/daemon.mdb).
 *
 * Key schema (keys are bytes without a NUL; values are JSON text, one object each):
 *   ns         NS                     {"name","created"}
 *   tokens     SHA256HEX(token)       {"id","ns","role":"member|viewer","name","created"}
 *   pipelines  NS "/" NAME            {"name","latest":N,"created","updated"}
 *   versions   NS "/" NAME "/" %08u   {"version","filename","source","ir":{...},"created"}
 *   runs       RUNID                  the run record (api_runs.c documents its members)
 *   nsruns     NS "/" RUNID           "" (index: a namespace's runs in id = time order)
 *   runir      RUNID                  the IR the run executes (copied from its pipeline version in
 *                                     the run's first commit: deleting the pipeline keeps it)
 *   schedules  SCHEDID                the schedule record (api_schedules.c)
 *   secrets    NS "/" NAME            {"name","value","updated"} (the value leaves the daemon only
 *                                     in a run worker's environment, as KFPC_SECRET_<NAME>)
 *   fires      SCHEDID "/" %012lld    RUNID (the run a schedule's fire time created: written in
 *                                     the run's own commit, so a fire time fires exactly once)
 * Names and ids never contain "/" (util_name_ok), so a prefix scan of "NS/" is exact.
 * Run ids are 12 hex digits of milliseconds then 6 random hex digits: they sort by creation.
 *
 * Every write is its own short transaction committed durably (db_commit: its pages and the meta
 * page synced), so a value whose write returned 0 survives kill -9 and a power loss. New runs
 * are group-committed (runs.c): concurrent ones share a transaction, and transactions written
 * back to back with db_commit_lazy share one db_sync(), before any of them is answered. The loop's
 * own run state changes after a run's acceptance are group-committed once per loop tick with
 * db_commit_lazy (pages synced, meta page not: a machine crash may undo the last of them, and
 * recovery then re-queues the run, which resumes; kill -9 of kfpd loses none of them). Read transactions are short and never held across
 * anything slow. MDB_NOTLS: a transaction may be used by one thread at a time, any thread. */
#ifndef KFPD_DB_H
#define KFPD_DB_H
#include <lmdb.h>
#include <json-c/json.h>

enum db_table { DB_NS, DB_TOKENS, DB_PIPELINES, DB_VERSIONS, DB_RUNS, DB_NSRUNS, DB_SCHEDULES,
		DB_FIRES, DB_SECRETS, DB_RUNIR, DB_NTABLES };

#define DB_NOTFOUND 1

struct db;

/* Opens (creating) the environment in directory DIR. Returns NULL with a message in ERR (N bytes)
 * on failure. Free with db_close(). */
struct db *db_open(const char *dir, char *err, size_t n);

/* Closes DB; no transaction may be open. NULL is ignored. */
void db_close(struct db *db);

/* Begins a transaction in *TXN (read-only unless WRITE). Returns 0 or a negative LMDB error. The
 * caller ends it with db_commit() or db_abort(). */
int db_begin(struct db *db, int write, MDB_txn **txn);

/* Commits TXN (and frees it). Returns 0 or a negative error; on error the data is not stored. */
int db_commit(MDB_txn *txn);

/* Commits TXN (and frees it) without syncing the meta page: survives kill -9, a machine crash
 * may undo it (never corrupts). Returns 0 or a negative error. */
int db_commit_lazy(MDB_txn *txn);

/* Syncs the meta page of every commit so far (db_commit_lazy ones included): they are durable
 * once it returns 0. Returns 0 or a negative error. */
int db_sync(struct db *db);

/* Aborts TXN (and frees it). NULL is ignored. */
void db_abort(MDB_txn *txn);

/* Reads KEY from table T into *OUT (a new json object the caller puts). TXN NULL: a read
 * transaction of its own. Returns 0, DB_NOTFOUND, or negative on error / unparseable value. */
int db_get(struct db *db, MDB_txn *txn, enum db_table t, const char *key, json_object **out);

/* Stores VAL (not consumed) under KEY in table T. TXN NULL: a write transaction of its own.
 * Returns 0 or negative. */
int db_put(struct db *db, MDB_txn *txn, enum db_table t, const char *key, json_object *val);

/* Deletes KEY from table T. TXN NULL: its own transaction. Returns 0, DB_NOTFOUND or negative. */
int db_del(struct db *db, MDB_txn *txn, enum db_table t, const char *key);

/* Calls FN for each entry of T whose key starts with PREFIX ("" = all), in key order (descending
 * when REVERSE), starting strictly after key AFTER when AFTER is not NULL. KEY/VAL point into the
 * map and live until FN returns. FN returns 0 to go on, nonzero to stop. TXN NULL: its own read
 * transaction. Returns 0 or negative. */
int db_scan(struct db *db, MDB_txn *txn, enum db_table t, const char *prefix, const char *after,
	    int reverse,
	    int (*fn)(void *ctx, const char *key, size_t klen, const char *val, size_t vlen),
	    void *ctx);

#endif

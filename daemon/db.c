/* db.c - the daemon's LMDB environment: named tables of JSON values (key schema in db.h). */
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct db {
	MDB_env *env;
	MDB_dbi dbi[DB_NTABLES];
};

static const char *const table_names[DB_NTABLES] = {
	"ns", "tokens", "pipelines", "versions", "runs", "nsruns", "schedules", "fires", "secrets", "runir",
};

struct db *db_open(const char *dir, char *err, size_t n)
{
	struct db *db;
	MDB_txn *txn;
	int rc, i;

	if (!(db = calloc(1, sizeof *db))) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	if ((rc = mdb_env_create(&db->env)))
		goto err1;
	mdb_env_set_maxdbs(db->env, DB_NTABLES + 2);
	mdb_env_set_mapsize(db->env, (size_t)4 << 30);
	mdb_env_set_maxreaders(db->env, 254);
	/* MDB_NOMETASYNC: a commit writes and syncs its pages but not the meta page that makes it
	 * visible after a crash of the machine (database integrity is kept: the last such commits
	 * may be undone). db_commit() then syncs the meta page too; db_commit_lazy() does not. A
	 * commit survives kill -9 of the process either way. */
	if ((rc = mdb_env_open(db->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0600)))
		goto err2;
	if ((rc = mdb_txn_begin(db->env, NULL, 0, &txn)))
		goto err2;
	for (i = 0; i < DB_NTABLES; i++)
		if ((rc = mdb_dbi_open(txn, table_names[i], MDB_CREATE, &db->dbi[i]))) {
			mdb_txn_abort(txn);
			goto err2;
		}
	if ((rc = mdb_txn_commit(txn)))
		goto err2;
	return db;
err2:
	mdb_env_close(db->env);
err1:
	snprintf(err, n, "%s: %s", dir, mdb_strerror(rc));
	free(db);
	return NULL;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	mdb_env_close(db->env);
	free(db);
}

int db_begin(struct db *db, int write, MDB_txn **txn)
{
	int rc = mdb_txn_begin(db->env, NULL, write ? 0 : MDB_RDONLY, txn);
	return rc ? -abs(rc) : 0;
}

int db_commit(MDB_txn *txn)
{
	MDB_env *env = mdb_txn_env(txn);
	int rc = mdb_txn_commit(txn);

	if (!rc)
		rc = mdb_env_sync(env, 1);
	return rc ? -abs(rc) : 0;
}

int db_commit_lazy(MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);
	return rc ? -abs(rc) : 0;
}

int db_sync(struct db *db)
{
	int rc = mdb_env_sync(db->env, 1);
	return rc ? -abs(rc) : 0;
}

void db_abort(MDB_txn *txn)
{
	if (txn)
		mdb_txn_abort(txn);
}

int db_get(struct db *db, MDB_txn *txn, enum db_table t, const char *key, json_object **out)
{
	MDB_txn *own = NULL;
	MDB_val k = {strlen(key), (void *)key}, v;
	json_tokener *tok;
	int rc;

	*out = NULL;
	if (!txn) {
		if ((rc = db_begin(db, 0, &own)))
			return rc;
		txn = own;
	}
	rc = mdb_get(txn, db->dbi[t], &k, &v);
	if (rc == MDB_NOTFOUND) {
		rc = DB_NOTFOUND;
		goto out;
	}
	if (rc) {
		rc = -abs(rc);
		goto out;
	}
	if (!(tok = json_tokener_new())) {
		rc = -ENOMEM;
		goto out;
	}
	*out = json_tokener_parse_ex(tok, v.mv_data, (int)v.mv_size);
	json_tokener_free(tok);
	rc = *out ? 0 : -EINVAL;
out:
	if (own)
		mdb_txn_abort(own);
	return rc;
}

int db_put(struct db *db, MDB_txn *txn, enum db_table t, const char *key, json_object *val)
{
	MDB_txn *own = NULL;
	size_t len;
	const char *s = json_object_to_json_string_length(val, JSON_C_TO_STRING_PLAIN, &len);
	MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)s};
	int rc;

	if (!s)
		return -ENOMEM;
	if (!txn) {
		if ((rc = db_begin(db, 1, &own)))
			return rc;
		txn = own;
	}
	rc = mdb_put(txn, db->dbi[t], &k, &v, 0);
	if (own) {
		if (rc)
			mdb_txn_abort(own);
		else
			rc = db_commit(own);
	}
	return rc ? -abs(rc) : 0;
}

int db_del(struct db *db, MDB_txn *txn, enum db_table t, const char *key)
{
	MDB_txn *own = NULL;
	MDB_val k = {strlen(key), (void *)key};
	int rc;

	if (!txn) {
		if ((rc = db_begin(db, 1, &own)))
			return rc;
		txn = own;
	}
	rc = mdb_del(txn, db->dbi[t], &k, NULL);
	if (own) {
		if (rc)
			mdb_txn_abort(own);
		else
			rc = db_commit(own);
	}
	if (rc == MDB_NOTFOUND)
		return DB_NOTFOUND;
	return rc ? -abs(rc) : 0;
}

static int has_prefix(const MDB_val *k, const char *p, size_t plen)
{
	return k->mv_size >= plen && memcmp(k->mv_data, p, plen) == 0;
}

int db_scan(struct db *db, MDB_txn *txn, enum db_table t, const char *prefix, const char *after,
	    int reverse,
	    int (*fn)(void *ctx, const char *key, size_t klen, const char *val, size_t vlen),
	    void *ctx)
{
	MDB_txn *own = NULL;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t plen = strlen(prefix);
	char *hi = NULL;
	int rc;

	if (!txn) {
		if ((rc = db_begin(db, 0, &own)))
			return rc;
		txn = own;
	}
	if ((rc = mdb_cursor_open(txn, db->dbi[t], &cur)))
		goto out;
	if (after) {
		k.mv_data = (void *)after;
		k.mv_size = strlen(after);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (reverse) {
			rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, MDB_LAST)
						: mdb_cursor_get(cur, &k, &v, MDB_PREV);
		} else if (!rc && k.mv_size == strlen(after) && !memcmp(k.mv_data, after, k.mv_size)) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
	} else if (reverse) {
		if (!(hi = malloc(plen + 2))) {
			rc = ENOMEM;
			goto out2;
		}
		memcpy(hi, prefix, plen);
		hi[plen] = (char)0xff;
		k.mv_data = hi;
		k.mv_size = plen + 1;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, MDB_LAST)
					: mdb_cursor_get(cur, &k, &v, MDB_PREV);
	} else {
		k.mv_data = (void *)prefix;
		k.mv_size = plen;
		rc = plen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
			  : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	while (!rc) {
		if (!has_prefix(&k, prefix, plen)) {
			/* forward: past the prefix range; reverse: below it (or above, when AFTER was
			 * outside the range: skip down to it) */
			if (reverse && plen && memcmp(k.mv_data, prefix,
						       k.mv_size < plen ? k.mv_size : plen) > 0) {
				rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
				continue;
			}
			break;
		}
		if (fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size))
			break;
		rc = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out2:
	mdb_cursor_close(cur);
out:
	free(hi);
	if (own)
		mdb_txn_abort(own);
	return rc ? -abs(rc) : 0;
}

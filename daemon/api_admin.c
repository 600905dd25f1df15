/* api_admin.c - health, readiness, metrics, whoami, namespaces and tokens (admin API).
 *
 * Tokens are "kfp_" + 64 hex digits from RAND_bytes. The daemon keeps only their SHA-256; the
 * token itself is in the 201 answer of POST .../tokens and nowhere else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "db.h"

int api_healthz(struct req *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	return http_reply_json(r, 200, o);
}

int api_readyz(struct req *r)
{
	json_object *o = json_object_new_object();
	int ready = r->k->ready;
	json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "starting"));
	return http_reply_json(r, ready ? 200 : 503, o);
}

int api_metrics(struct req *r)
{
	char *s;
	int ret;

	runs_update_metrics(r->k);
	s = metrics_render();
	if (!s)
		return http_reply_error(r, 500, "out of memory");
	ret = http_reply_bytes(r, 200, "text/plain; version=0.0.4", s, strlen(s));
	free(s);
	return ret;
}

int api_whoami(struct req *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "namespace", r->ns[0] ? json_object_new_string(r->ns) : NULL);
	json_object_object_add(o, "role", json_object_new_string(r->role));
	return http_reply_json(r, 200, o);
}

int api_ns_create(struct req *r)
{
	json_object *body, *o, *old = NULL;
	const char *name;
	char ts[32];
	MDB_txn *txn;
	int rc;

	if (http_body_object(r, &body))
		return http_done(r);
	name = js_str(body, "name", NULL);
	if (!util_name_ok(name)) {
		json_object_put(body);
		return http_reply_error(r, 400, "\"name\": want 1-63 of [A-Za-z0-9_.-], "
						"starting with a letter or digit");
	}
	if ((rc = db_begin(r->k->db, 1, &txn)))
		goto dberr;
	if (db_get(r->k->db, txn, DB_NS, name, &old) == 0) {
		db_abort(txn);
		json_object_put(old);
		rc = http_reply_error(r, 409, "namespace '%s' exists", name);
		json_object_put(body);
		return rc;
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "created", json_object_new_string(util_iso8601(util_now(r->k), ts)));
	if ((rc = db_put(r->k->db, txn, DB_NS, name, o))) {
		db_abort(txn);
		json_object_put(o);
		goto dberr;
	}
	if ((rc = db_commit(txn))) {
		json_object_put(o);
		goto dberr;
	}
	log_kv("info", "namespace created", "ns", name, NULL);
	json_object_put(body);
	return http_reply_json(r, 201, o);
dberr:
	json_object_put(body);
	return http_reply_error(r, 500, "database error");
}

static int collect_values(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	json_object *arr = ctx, *v;
	json_tokener *tok = json_tokener_new();

	(void)key, (void)klen;
	if (!tok)
		return 1;
	v = json_tokener_parse_ex(tok, val, (int)vlen);
	json_tokener_free(tok);
	if (v)
		json_object_array_add(arr, v);
	return 0;
}

int api_ns_list(struct req *r)
{
	json_object *arr = json_object_new_array(), *o = json_object_new_object();

	if (db_scan(r->k->db, NULL, DB_NS, "", NULL, 0, collect_values, arr)) {
		json_object_put(arr);
		json_object_put(o);
		return http_reply_error(r, 500, "database error");
	}
	json_object_object_add(o, "namespaces", arr);
	return http_reply_json(r, 200, o);
}

struct token_scan {
	const char *ns;
	const char *id;       /* delete: the id looked for */
	json_object *list;    /* list: public views */
	json_object *keys;    /* hashes to delete */
};

static int scan_tokens(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct token_scan *s = ctx;
	json_tokener *tok = json_tokener_new();
	json_object *t;

	if (!tok)
		return 1;
	t = json_tokener_parse_ex(tok, val, (int)vlen);
	json_tokener_free(tok);
	if (!t)
		return 0;
	if (!strcmp(js_str(t, "ns", ""), s->ns) && (!s->id || !strcmp(js_str(t, "id", ""), s->id))) {
		if (s->list) {
			json_object *v = json_object_new_object();
			json_object_object_add(v, "id", json_object_new_string(js_str(t, "id", "")));
			json_object_object_add(v, "name", json_object_new_string(js_str(t, "name", "")));
			json_object_object_add(v, "role", json_object_new_string(js_str(t, "role", "")));
			json_object_object_add(v, "created",
					       json_object_new_string(js_str(t, "created", "")));
			json_object_array_add(s->list, v);
		}
		if (s->keys)
			json_object_array_add(s->keys, json_object_new_string_len(key, (int)klen));
	}
	json_object_put(t);
	return 0;
}

/* Deletes the tokens of NS (all when ID is NULL) inside TXN. Returns the count or negative. */
static int delete_tokens(struct kfpd *k, MDB_txn *txn, const char *ns, const char *id)
{
	struct token_scan s = {ns, id, NULL, json_object_new_array()};
	size_t i;
	int rc, n = 0;

	if ((rc = db_scan(k->db, txn, DB_TOKENS, "", NULL, 0, scan_tokens, &s)))
		goto out;
	for (i = 0; i < json_object_array_length(s.keys); i++) {
		const char *h = json_object_get_string(json_object_array_get_idx(s.keys, i));
		if ((rc = db_del(k->db, txn, DB_TOKENS, h)) < 0)
			goto out;
		n++;
	}
	rc = n;
out:
	json_object_put(s.keys);
	return rc;
}

static int collect_key(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	(void)val, (void)vlen;
	json_object_array_add(ctx, json_object_new_string_len(key, (int)klen));
	return 0;
}

/* Deletes every key of table T starting with PREFIX inside TXN. Returns the count or negative. */
static int delete_prefix(struct kfpd *k, MDB_txn *txn, enum db_table t, const char *prefix)
{
	json_object *keys = json_object_new_array();
	size_t i;
	int rc;

	if ((rc = db_scan(k->db, txn, t, prefix, NULL, 0, collect_key, keys)) == 0) {
		for (i = 0; i < json_object_array_length(keys) && rc >= 0; i++)
			if (db_del(k->db, txn, t, json_object_get_string(json_object_array_get_idx(keys, i))) < 0)
				rc = -1;
		if (rc >= 0)
			rc = (int)i;
	}
	json_object_put(keys);
	return rc;
}

static int ns_has(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	(void)key, (void)klen, (void)val, (void)vlen;
	*(int *)ctx = 1;
	return 1;
}

int api_ns_delete(struct req *r)
{
	const char *ns = r->arg[0];
	char prefix[80];
	json_object *old;
	MDB_txn *txn;
	int busy = 0, rc;

	if ((rc = db_begin(r->k->db, 1, &txn)))
		return http_reply_error(r, 500, "database error");
	if (db_get(r->k->db, txn, DB_NS, ns, &old)) {
		db_abort(txn);
		return http_reply_error(r, 404, "no namespace '%s'", ns);
	}
	json_object_put(old);
	snprintf(prefix, sizeof prefix, "%s/", ns);
	db_scan(r->k->db, txn, DB_PIPELINES, prefix, NULL, 0, ns_has, &busy);
	db_scan(r->k->db, txn, DB_NSRUNS, prefix, NULL, 0, ns_has, &busy);
	if (busy) {
		db_abort(txn);
		return http_reply_error(r, 409, "namespace '%s' still has pipelines or runs", ns);
	}
	if (delete_tokens(r->k, txn, ns, NULL) < 0 || delete_prefix(r->k, txn, DB_SECRETS, prefix) < 0 ||
	    db_del(r->k->db, txn, DB_NS, ns) < 0) {
		db_abort(txn);
		return http_reply_error(r, 500, "database error");
	}
	if (db_commit(txn))
		return http_reply_error(r, 500, "database error");
	http_tokens_changed();
	log_kv("info", "namespace deleted", "ns", ns, NULL);
	return http_reply_json(r, 200, json_object_new_object());
}

int api_token_create(struct req *r)
{
	const char *ns = r->arg[0], *role, *name;
	json_object *body, *nso, *t, *o;
	char token[80], hash[65], id[17], ts[32];
	int rc;

	if (http_body_object(r, &body))
		return http_done(r);
	if (db_get(r->k->db, NULL, DB_NS, ns, &nso)) {
		json_object_put(body);
		return http_reply_error(r, 404, "no namespace '%s'", ns);
	}
	json_object_put(nso);
	role = js_str(body, "role", "member");
	name = js_str(body, "name", "");
	if (strcmp(role, "member") && strcmp(role, "viewer")) {
		json_object_put(body);
		return http_reply_error(r, 400, "\"role\": want \"member\" or \"viewer\"");
	}
	memcpy(token, "kfp_", 4);
	if (util_random_hex(token + 4, 32) || util_random_hex(id, 8) ||
	    util_sha256_hex(token, strlen(token), hash)) {
		json_object_put(body);
		return http_reply_error(r, 500, "no randomness");
	}
	t = json_object_new_object();
	json_object_object_add(t, "id", json_object_new_string(id));
	json_object_object_add(t, "ns", json_object_new_string(ns));
	json_object_object_add(t, "role", json_object_new_string(role));
	json_object_object_add(t, "name", json_object_new_string(name));
	json_object_object_add(t, "created", json_object_new_string(util_iso8601(util_now(r->k), ts)));
	rc = db_put(r->k->db, NULL, DB_TOKENS, hash, t);
	if (rc) {
		json_object_put(body);
		json_object_put(t);
		return http_reply_error(r, 500, "database error");
	}
	log_kv("info", "token created", "ns", ns, "token_id", id, "role", role, NULL);
	json_object_put(body);
	o = t; /* the record plus the token itself, this once */
	json_object_object_del(o, "ns");
	json_object_object_add(o, "namespace", json_object_new_string(ns));
	json_object_object_add(o, "token", json_object_new_string(token));
	return http_reply_json(r, 201, o);
}

int api_token_list(struct req *r)
{
	struct token_scan s = {r->arg[0], NULL, json_object_new_array(), NULL};
	json_object *o;

	if (db_scan(r->k->db, NULL, DB_TOKENS, "", NULL, 0, scan_tokens, &s)) {
		json_object_put(s.list);
		return http_reply_error(r, 500, "database error");
	}
	o = json_object_new_object();
	json_object_object_add(o, "tokens", s.list);
	return http_reply_json(r, 200, o);
}

int api_token_delete(struct req *r)
{
	MDB_txn *txn;
	int n;

	if (db_begin(r->k->db, 1, &txn))
		return http_reply_error(r, 500, "database error");
	n = delete_tokens(r->k, txn, r->arg[0], r->arg[1]);
	if (n < 0 || db_commit(txn)) {
		if (n < 0)
			db_abort(txn);
		return http_reply_error(r, 500, "database error");
	}
	http_tokens_changed();
	if (!n)
		return http_reply_error(r, 404, "no token '%s' in namespace '%s'", r->arg[1], r->arg[0]);
	log_kv("info", "token revoked", "ns", r->arg[0], "token_id", r->arg[1], NULL);
	return http_reply_json(r, 200, json_object_new_object());
}

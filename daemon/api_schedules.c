/* api_schedules.c - cron schedules of a namespace's pipelines.
 *
 * Schedule record (table schedules, key ID = "s" + 16 hex):
 *   {"id","namespace","pipeline","version": N|0 (0: the latest at each fire),"cron","tz",
 *    "params":{..},"enabled":bool,"max_concurrent":N (0: no limit),"policy":"skip|catchup",
 *    "created","next": epoch (first fire time not yet handled, 0: compute),"last_fire","fired",
 *    "skipped"}
 * Answers add "next_fire_times": the next N (?n=, default 5, at most 100) as ISO 8601 UTC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"

static const char no_pipeline[] = "\"pipeline\": no such pipeline";

/* Returns the public view of schedule S with N upcoming fire times (new object). */
static json_object *sched_view(struct kfpd *k, json_object *s, int n)
{
	json_object *o = json_object_get(s), *times = json_object_new_array();
	const char *cron = js_str(s, "cron", ""), *tz = js_str(s, "tz", "UTC");
	time_t t = util_now(k), nx = (time_t)js_int(s, "next", 0);
	char ts[32];
	int i;

	if (nx && nx - 1 > t)
		t = nx - 1;
	for (i = 0; i < n; i++) {
		if ((t = cron_next(cron, tz, t)) == (time_t)-1)
			break;
		json_object_array_add(times, json_object_new_string(util_iso8601(t, ts)));
	}
	json_object_object_add(o, "next_fire_times", times);
	if (js_int(s, "last_fire", 0))
		json_object_object_add(o, "last_fire_time",
				       json_object_new_string(util_iso8601((time_t)js_int(s, "last_fire", 0), ts)));
	return o;
}

static int nview(struct req *r)
{
	const char *q = http_query(r, "n");
	int n = q ? atoi(q) : 5;
	return n < 0 ? 0 : n > 100 ? 100 : n;
}

/* Applies the members of BODY to schedule S (create: CREATE set). Returns NULL or a message. */
static const char *apply(struct req *r, json_object *s, json_object *body, int create, char *buf,
			 size_t n)
{
	json_object *v;
	const char *e;

	if (create || json_object_object_get_ex(body, "pipeline", &v)) {
		const char *pl = js_str(body, "pipeline", NULL);
		json_object *pv;
		if (!util_name_ok(pl))
			return "\"pipeline\": required, a pipeline name";
		if (api_pl_load_version(r->k, r->ns, pl, NULL, &pv))
			return no_pipeline;
		json_object_put(pv);
		json_object_object_add(s, "pipeline", json_object_new_string(pl));
	}
	if (json_object_object_get_ex(body, "version", &v)) {
		if (v && (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0))
			return "\"version\": want a version number, or 0/null for the latest";
		json_object_object_add(s, "version", json_object_new_int64(v ? json_object_get_int64(v) : 0));
	} else if (create) {
		json_object_object_add(s, "version", json_object_new_int64(0));
	}
	if (create || json_object_object_get_ex(body, "cron", &v) ||
	    json_object_object_get_ex(body, "tz", &v)) {
		const char *cron = js_str(body, "cron", js_str(s, "cron", NULL));
		const char *tz = js_str(body, "tz", js_str(s, "tz", "UTC"));
		if ((json_object_object_get_ex(body, "cron", &v) && !json_object_is_type(v, json_type_string)) ||
		    (json_object_object_get_ex(body, "tz", &v) && !json_object_is_type(v, json_type_string)))
			return "\"cron\" and \"tz\" are strings";
		if ((e = cron_check(cron, tz, buf, n)))
			return e;
		json_object_object_add(s, "cron", json_object_new_string(cron));
		json_object_object_add(s, "tz", json_object_new_string(tz));
		json_object_object_add(s, "next", json_object_new_int64(0));
	}
	if (json_object_object_get_ex(body, "params", &v)) {
		if (v && !json_object_is_type(v, json_type_object))
			return "\"params\": want an object";
		json_object_object_add(s, "params", v ? json_object_get(v) : json_object_new_object());
	} else if (create) {
		json_object_object_add(s, "params", json_object_new_object());
	}
	if (json_object_object_get_ex(body, "enabled", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return "\"enabled\": want true or false";
		if (json_object_get_boolean(v) &&
		    !json_object_get_boolean(json_object_object_get(s, "enabled")))
			json_object_object_add(s, "next", json_object_new_int64(0));
		json_object_object_add(s, "enabled", json_object_new_boolean(json_object_get_boolean(v)));
	} else if (create) {
		json_object_object_add(s, "enabled", json_object_new_boolean(1));
	}
	if (json_object_object_get_ex(body, "max_concurrent", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) > 10000)
			return "\"max_concurrent\": want 0 (no limit) to 10000";
		json_object_object_add(s, "max_concurrent", json_object_new_int64(json_object_get_int64(v)));
	} else if (create) {
		json_object_object_add(s, "max_concurrent", json_object_new_int64(1));
	}
	if (json_object_object_get_ex(body, "policy", &v)) {
		const char *p = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) || (strcmp(p, "skip") && strcmp(p, "catchup")))
			return "\"policy\": want \"skip\" or \"catchup\"";
		json_object_object_add(s, "policy", json_object_new_string(p));
	} else if (create) {
		json_object_object_add(s, "policy", json_object_new_string("skip"));
	}
	json_object_object_foreach(body, key, val) {
		static const char *const known[] = {"pipeline", "version", "cron", "tz", "params",
						    "enabled", "max_concurrent", "policy", NULL};
		int i, ok = 0;
		(void)val;
		for (i = 0; known[i]; i++)
			if (!strcmp(known[i], key))
				ok = 1;
		if (!ok) {
			snprintf(buf, n, "unknown member \"%s\"", key);
			return buf;
		}
	}
	{ /* the checks of POST /runs, now rather than at every fire */
		json_object *pv, *ir;
		char ver[32], err[512] = "";
		int64_t vn = js_int(s, "version", 0);

		snprintf(ver, sizeof ver, "%lld", (long long)vn);
		if (api_pl_load_version(r->k, r->ns, js_str(s, "pipeline", ""), vn ? ver : NULL, &pv)) {
			snprintf(buf, n, "\"version\": pipeline '%.64s' has no version %s",
				 js_str(s, "pipeline", ""), ver);
			return buf;
		}
		if (!json_object_object_get_ex(pv, "ir", &ir) ||
		    runs_check_params(ir, json_object_object_get(s, "params"), err, sizeof err)) {
			snprintf(buf, n, "\"params\": %.200s", err);
			json_object_put(pv);
			return buf;
		}
		json_object_put(pv);
	}
	return NULL;
}

int api_sched_create(struct req *r)
{
	json_object *body, *s;
	char buf[256], id[18], ts[32];
	const char *e;
	int rc;

	if (http_body_object(r, &body))
		return http_done(r);
	s = json_object_new_object();
	id[0] = 's';
	util_random_hex(id + 1, 8);
	json_object_object_add(s, "id", json_object_new_string(id));
	json_object_object_add(s, "namespace", json_object_new_string(r->ns));
	if ((e = apply(r, s, body, 1, buf, sizeof buf))) {
		json_object_put(body);
		json_object_put(s);
		return http_reply_error(r, e == no_pipeline ? 404 : 400, "%s", e);
	}
	json_object_object_add(s, "created", json_object_new_string(util_iso8601(util_now(r->k), ts)));
	json_object_object_add(s, "fired", json_object_new_int64(0));
	json_object_object_add(s, "skipped", json_object_new_int64(0));
	json_object_put(body);
	pthread_mutex_lock(&cron_sched_lock);
	rc = db_put(r->k->db, NULL, DB_SCHEDULES, id, s);
	pthread_mutex_unlock(&cron_sched_lock);
	if (rc) {
		json_object_put(s);
		return http_reply_error(r, 500, "database error");
	}
	log_kv("info", "schedule created", "ns", r->ns, "schedule", id, "cron", js_str(s, "cron", ""),
	       NULL);
	rc = http_reply_json(r, 201, sched_view(r->k, s, nview(r)));
	json_object_put(s);
	return rc;
}

/* Loads schedule r->arg[0] of the caller's namespace; NULL after replying 404. */
static json_object *load(struct req *r)
{
	json_object *s;

	if (db_get(r->k->db, NULL, DB_SCHEDULES, r->arg[0], &s))
		goto nf;
	if (strcmp(js_str(s, "namespace", ""), r->ns)) {
		json_object_put(s);
		goto nf;
	}
	return s;
nf:
	http_reply_error(r, 404, "no schedule '%s'", r->arg[0]);
	return NULL;
}

struct list_ctx {
	struct req *r;
	json_object *arr;
	const char *pipeline;
};

static int list_one(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct list_ctx *c = ctx;
	json_tokener *t = json_tokener_new();
	json_object *s;

	(void)key, (void)klen;
	if (!t)
		return 1;
	s = json_tokener_parse_ex(t, val, (int)vlen);
	json_tokener_free(t);
	if (s && !strcmp(js_str(s, "namespace", ""), c->r->ns) &&
	    (!c->pipeline || !strcmp(js_str(s, "pipeline", ""), c->pipeline)))
		json_object_array_add(c->arr, sched_view(c->r->k, s, 1));
	json_object_put(s);
	return 0;
}

int api_sched_list(struct req *r)
{
	struct list_ctx c = {r, json_object_new_array(), http_query(r, "pipeline")};
	json_object *o;

	if (db_scan(r->k->db, NULL, DB_SCHEDULES, "", NULL, 0, list_one, &c)) {
		json_object_put(c.arr);
		return http_reply_error(r, 500, "database error");
	}
	o = json_object_new_object();
	json_object_object_add(o, "schedules", c.arr);
	return http_reply_json(r, 200, o);
}

int api_sched_get(struct req *r)
{
	json_object *s = load(r), *v;

	if (!s)
		return http_done(r);
	v = sched_view(r->k, s, nview(r));
	json_object_put(s);
	return http_reply_json(r, 200, v);
}

/* PATCH with BODY (NULL: parse the request's body). */
static int update(struct req *r, json_object *body)
{
	json_object *s;
	char buf[256];
	const char *e;
	int rc;

	if (!body && http_body_object(r, &body))
		return http_done(r);
	pthread_mutex_lock(&cron_sched_lock);
	if (!(s = load(r))) {
		pthread_mutex_unlock(&cron_sched_lock);
		json_object_put(body);
		return http_done(r);
	}
	if ((e = apply(r, s, body, 0, buf, sizeof buf))) {
		pthread_mutex_unlock(&cron_sched_lock);
		json_object_put(body);
		json_object_put(s);
		return http_reply_error(r, e == no_pipeline ? 404 : 400, "%s", e);
	}
	rc = db_put(r->k->db, NULL, DB_SCHEDULES, r->arg[0], s);
	pthread_mutex_unlock(&cron_sched_lock);
	json_object_put(body);
	if (rc) {
		json_object_put(s);
		return http_reply_error(r, 500, "database error");
	}
	log_kv("info", "schedule updated", "ns", r->ns, "schedule", r->arg[0], NULL);
	rc = http_reply_json(r, 200, sched_view(r->k, s, nview(r)));
	json_object_put(s);
	return rc;
}

int api_sched_update(struct req *r)
{
	return update(r, NULL);
}

int api_sched_pause(struct req *r)
{
	json_object *b = json_object_new_object();
	json_object_object_add(b, "enabled", json_object_new_boolean(0));
	return update(r, b);
}

int api_sched_resume(struct req *r)
{
	json_object *b = json_object_new_object();
	json_object_object_add(b, "enabled", json_object_new_boolean(1));
	return update(r, b);
}

int api_sched_delete(struct req *r)
{
	json_object *s;
	int rc;

	pthread_mutex_lock(&cron_sched_lock);
	if (!(s = load(r))) {
		pthread_mutex_unlock(&cron_sched_lock);
		return http_done(r);
	}
	json_object_put(s);
	rc = db_del(r->k->db, NULL, DB_SCHEDULES, r->arg[0]);
	cron_forget_fires(r->k, r->arg[0], 0);
	pthread_mutex_unlock(&cron_sched_lock);
	if (rc < 0)
		return http_reply_error(r, 500, "database error");
	log_kv("info", "schedule deleted", "ns", r->ns, "schedule", r->arg[0], NULL);
	return http_reply_json(r, 200, json_object_new_object());
}

/* ---- schedules declared in the pipeline (`schedule "CRON" tz "ZONE"`, IR "schedules") ------- */

struct pl_scan {
	const char *ns, *name;
	int keep;            /* declared schedules: indexes below stay */
	int all;             /* 1: every schedule of the pipeline goes */
	json_object *drop;   /* ids to delete */
};

static int scan_pl(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct pl_scan *p = ctx;
	json_tokener *t = json_tokener_new();
	json_object *s;

	(void)key, (void)klen;
	if (!t)
		return 1;
	s = json_tokener_parse_ex(t, val, (int)vlen);
	json_tokener_free(t);
	if (s && !strcmp(js_str(s, "namespace", ""), p->ns) &&
	    !strcmp(js_str(s, "pipeline", ""), p->name) &&
	    (p->all || (!strcmp(js_str(s, "source", ""), "pipeline") &&
			js_int(s, "index", 0) >= p->keep)))
		json_object_array_add(p->drop, json_object_new_string(js_str(s, "id", "")));
	json_object_put(s);
	return 0;
}

static void drop_ids(struct kfpd *k, json_object *ids)
{
	size_t i;

	for (i = 0; i < json_object_array_length(ids); i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
		db_del(k->db, NULL, DB_SCHEDULES, id);
		cron_forget_fires(k, id, 0);
	}
}

int sched_sync_pipeline(struct kfpd *k, const char *ns, const char *name, json_object *ir)
{
	json_object *decl = NULL, *s;
	struct pl_scan p = {ns, name, 0, 0, json_object_new_array()};
	char key[200], hash[65], id[18], ts[32], buf[256];
	size_t i, n;
	int rc = 0;

	if (!json_object_object_get_ex(ir, "schedules", &decl) ||
	    !json_object_is_type(decl, json_type_array))
		decl = NULL;
	n = decl ? json_object_array_length(decl) : 0;
	pthread_mutex_lock(&cron_sched_lock);
	for (i = 0; i < n; i++) {
		json_object *dcl = json_object_array_get_idx(decl, i);
		const char *cron = js_str(dcl, "cron", ""), *tz = js_str(dcl, "tz", "UTC");
		if (cron_check(cron, tz, buf, sizeof buf)) {
			log_kv("warn", "pipeline schedule refused", "ns", ns, "pipeline", name, "cron",
			       cron, "detail", buf, NULL);
			continue;
		}
		snprintf(key, sizeof key, "%s/%s/%zu", ns, name, i);
		util_sha256_hex(key, strlen(key), hash);
		id[0] = 'p';
		memcpy(id + 1, hash, 16);
		id[17] = 0;
		if (db_get(k->db, NULL, DB_SCHEDULES, id, &s) == 0) {
			if (!strcmp(js_str(s, "cron", ""), cron) && !strcmp(js_str(s, "tz", ""), tz)) {
				json_object_put(s);
				continue;
			}
		} else {
			s = json_object_new_object();
			json_object_object_add(s, "id", json_object_new_string(id));
			json_object_object_add(s, "namespace", json_object_new_string(ns));
			json_object_object_add(s, "pipeline", json_object_new_string(name));
			json_object_object_add(s, "version", json_object_new_int64(0));
			json_object_object_add(s, "params", json_object_new_object());
			json_object_object_add(s, "enabled", json_object_new_boolean(1));
			json_object_object_add(s, "max_concurrent", json_object_new_int64(1));
			json_object_object_add(s, "policy", json_object_new_string("skip"));
			json_object_object_add(s, "source", json_object_new_string("pipeline"));
			json_object_object_add(s, "index", json_object_new_int64((int64_t)i));
			json_object_object_add(s, "created",
					       json_object_new_string(util_iso8601(util_now(k), ts)));
			json_object_object_add(s, "fired", json_object_new_int64(0));
			json_object_object_add(s, "skipped", json_object_new_int64(0));
		}
		json_object_object_add(s, "cron", json_object_new_string(cron));
		json_object_object_add(s, "tz", json_object_new_string(tz));
		json_object_object_add(s, "next", json_object_new_int64(0));
		if (db_put(k->db, NULL, DB_SCHEDULES, id, s))
			rc = -1;
		else
			log_kv("info", "pipeline schedule set", "ns", ns, "pipeline", name, "schedule", id,
			       "cron", cron, NULL);
		json_object_put(s);
	}
	p.keep = (int)n;
	db_scan(k->db, NULL, DB_SCHEDULES, "", NULL, 0, scan_pl, &p);
	drop_ids(k, p.drop);
	pthread_mutex_unlock(&cron_sched_lock);
	json_object_put(p.drop);
	return rc;
}

void sched_delete_pipeline(struct kfpd *k, const char *ns, const char *name)
{
	struct pl_scan p = {ns, name, 0, 1, json_object_new_array()};

	pthread_mutex_lock(&cron_sched_lock);
	db_scan(k->db, NULL, DB_SCHEDULES, "", NULL, 0, scan_pl, &p);
	drop_ids(k, p.drop);
	pthread_mutex_unlock(&cron_sched_lock);
	json_object_put(p.drop);
}

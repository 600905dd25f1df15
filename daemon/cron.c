/* cron.c - schedules: fire times (validate.h's cron parser) and the loop's firing tick.
 *
 * Every enabled schedule keeps "next": the first fire time (epoch seconds) not yet handled. Once
 * a second the loop handles every fire time T <= now, oldest first:
 *   - T before this daemon started (missed while down): policy "catchup" fires it, policy "skip"
 *     counts it in "skipped" and fires nothing;
 *   - otherwise it fires, unless the schedule already has max_concurrent runs that are not
 *     terminal (then "skipped" counts it too).
 * A fire creates a run exactly as POST /runs does (durable first), then "next" moves past T. The
 * run's commit also records (schedule, T) in the fires table, so a kill -9 between the two
 * commits does not fire T again at the next start: exactly once.
 * At most MAX_CATCHUP missed fire times are fired per schedule and start; older ones are skipped.
 *
 * validate_cron_next() changes the process TZ while it computes: every call holds
 * util_env_lock (as do the compiler and posix_spawnp), and the daemon only ever uses gmtime_r. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "validate.h"

#define MAX_CATCHUP 100

static int collect_ids_fn(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	(void)val, (void)vlen;
	json_object_array_add(ctx, json_object_new_string_len(key, (int)klen));
	return 0;
}

pthread_mutex_t cron_sched_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t started_at;

const char *cron_check(const char *cron, const char *tz, char *buf, size_t n)
{
	const char *e;

	if (!cron || !*cron)
		return "\"cron\": required";
	char m[256];

	if ((e = validate_cron(cron, NULL, m, sizeof m))) {
		snprintf(buf, n, "\"cron\": '%.100s': %s", cron, e);
		return buf;
	}
	if (tz && (e = validate_tz(tz))) {
		snprintf(buf, n, "\"tz\": '%.100s': %s", tz, e);
		return buf;
	}
	return NULL;
}

time_t cron_next(const char *cron, const char *tz, time_t after)
{
	struct cron_spec spec;
	char buf[128];
	time_t t;

	if (validate_cron(cron, &spec, buf, sizeof buf))
		return (time_t)-1;
	pthread_mutex_lock(&util_env_lock);
	t = validate_cron_next(&spec, tz && strcmp(tz, "UTC") ? tz : NULL, after);
	pthread_mutex_unlock(&util_env_lock);
	return t;
}

/* Deletes the fires records of schedule ID before time BEFORE (all when BEFORE is 0): once
 * "next" is past them they can no longer be fired again. */
void cron_forget_fires(struct kfpd *k, const char *id, time_t before)
{
	json_object *keys = json_object_new_array();
	char prefix[128], *end;
	size_t i;

	snprintf(prefix, sizeof prefix, "%.64s/", id);
	db_scan(k->db, NULL, DB_FIRES, prefix, NULL, 0, collect_ids_fn, keys);
	for (i = 0; i < json_object_array_length(keys); i++) {
		const char *key = json_object_get_string(json_object_array_get_idx(keys, i));
		long long t = strtoll(key + strlen(prefix), &end, 10);
		if (!before || t < (long long)before)
			db_del(k->db, NULL, DB_FIRES, key);
	}
	json_object_put(keys);
}

static int collect_ids(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	(void)val, (void)vlen;
	json_object_array_add(ctx, json_object_new_string_len(key, (int)klen));
	return 0;
}

/* Fires schedule S at T. Returns 0 when a run was created. */
static int fire(struct kfpd *k, json_object *s, time_t t)
{
	json_object *pv, *params = NULL, *run = NULL;
	const char *ns = js_str(s, "namespace", ""), *pl = js_str(s, "pipeline", "");
	char ver[32], err[300];
	int64_t v = js_int(s, "version", 0);
	int rc;

	snprintf(ver, sizeof ver, "%lld", (long long)v);
	if (api_pl_load_version(k, ns, pl, v ? ver : NULL, &pv)) {
		log_kv("warn", "schedule: pipeline not found", "schedule", js_str(s, "id", ""),
		       "pipeline", pl, NULL);
		return -1;
	}
	json_object_object_get_ex(s, "params", &params);
	rc = runs_create(k, ns, pl, pv, params, js_str(s, "id", ""), t, &run, err, sizeof err);
	json_object_put(pv);
	json_object_put(run);
	if (rc == -EEXIST)
		return 1; /* fired before a kill -9 lost the schedule's "next": not again */
	if (rc) {
		log_kv("warn", "schedule: cannot create the run", "schedule", js_str(s, "id", ""),
		       "detail", err, NULL);
		return -1;
	}
	return 0;
}

void cron_tick(struct kfpd *k)
{
	json_object *ids = json_object_new_array();
	time_t now = util_now(k);
	size_t i;

	if (!started_at)
		started_at = now;
	db_scan(k->db, NULL, DB_SCHEDULES, "", NULL, 0, collect_ids, ids);
	for (i = 0; i < json_object_array_length(ids); i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
		json_object *s;
		time_t t;
		int nfired = 0, ncatch = 0, changed = 0, rc;

		if (db_get(k->db, NULL, DB_SCHEDULES, id, &s))
			continue;
		if (!json_object_get_boolean(json_object_object_get(s, "enabled"))) {
			json_object_put(s);
			continue;
		}
		const char *cron = js_str(s, "cron", ""), *tz = js_str(s, "tz", "UTC");
		int64_t maxc = js_int(s, "max_concurrent", 0);
		int catchup = !strcmp(js_str(s, "policy", "skip"), "catchup");
		t = (time_t)js_int(s, "next", 0);
		if (!t) {
			t = cron_next(cron, tz, now);
			changed = 1;
		}
		while (t != (time_t)-1 && t <= now && nfired < MAX_CATCHUP) {
			int missed = t < started_at;
			if ((missed && (!catchup || ncatch >= MAX_CATCHUP)) ||
			    (maxc > 0 && runs_active_for_schedule(k, id) >= maxc)) {
				json_object_object_add(s, "skipped",
						       json_object_new_int64(js_int(s, "skipped", 0) + 1));
			} else if ((rc = fire(k, s, t)) >= 0) {
				if (rc == 0)
					json_object_object_add(
						s, "fired", json_object_new_int64(js_int(s, "fired", 0) + 1));
				json_object_object_add(s, "last_fire", json_object_new_int64(t));
				nfired++;
				ncatch += missed;
			}
			t = cron_next(cron, tz, t);
			changed = 1;
		}
		if (changed) {
			/* re-read and merge only the members this tick owns: a PATCH may have raced */
			json_object *cur;
			pthread_mutex_lock(&cron_sched_lock);
			if (db_get(k->db, NULL, DB_SCHEDULES, id, &cur) == 0 &&
			    json_object_get_boolean(json_object_object_get(cur, "enabled")) &&
			    !strcmp(js_str(cur, "cron", ""), cron) && !strcmp(js_str(cur, "tz", ""), tz)) {
				json_object_object_add(cur, "next", json_object_new_int64(t));
				json_object_object_add(cur, "fired",
						       json_object_new_int64(js_int(s, "fired", 0)));
				json_object_object_add(cur, "skipped",
						       json_object_new_int64(js_int(s, "skipped", 0)));
				if (js_int(s, "last_fire", 0))
					json_object_object_add(
						cur, "last_fire",
						json_object_new_int64(js_int(s, "last_fire", 0)));
				if (db_put(k->db, NULL, DB_SCHEDULES, id, cur) == 0 && t != (time_t)-1)
					cron_forget_fires(k, id, t);
			}
			json_object_put(cur);
			pthread_mutex_unlock(&cron_sched_lock);
		}
		json_object_put(s);
	}
	json_object_put(ids);
}

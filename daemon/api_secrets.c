/* api_secrets.c - a namespace's secrets: write-only values for secret("NAME") in its steps.
 *
 * PUT /api/v1/secrets/NAME {"value": "..."} stores a value (at most 64 KiB); GET lists names and
 * times, never values; DELETE removes one. A value leaves the daemon only in the environment of a
 * run worker of the same namespace, as KFPC_SECRET_<NAME upper-cased, '-' and '.' as '_'> (the
 * engine's convention, engine/sched.c); the daemon's own KFPC_SECRET_* variables are never passed
 * on, so one team cannot read another's secrets. Values are stored in DATA/daemon.mdb (mode 0600)
 * without encryption. No log line carries a value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"

extern char **environ;

int api_secret_put(struct req *r)
{
	json_object *body, *s;
	const char *v;
	char key[200], ts[32];
	int rc;

	if (!util_name_ok(r->arg[0]))
		return http_reply_error(r, 400, "secret name: want 1-63 of [A-Za-z0-9_.-]");
	if (http_body_object(r, &body))
		return http_done(r);
	v = js_str(body, "value", NULL);
	if (!v || strlen(v) > 65536) {
		json_object_put(body);
		return http_reply_error(r, 400, "\"value\": want a string of at most 64 KiB");
	}
	s = json_object_new_object();
	json_object_object_add(s, "name", json_object_new_string(r->arg[0]));
	json_object_object_add(s, "value", json_object_new_string(v));
	json_object_object_add(s, "updated", json_object_new_string(util_iso8601(util_now(r->k), ts)));
	snprintf(key, sizeof key, "%s/%s", r->ns, r->arg[0]);
	rc = db_put(r->k->db, NULL, DB_SECRETS, key, s);
	json_object_put(body);
	json_object_object_del(s, "value");
	if (rc) {
		json_object_put(s);
		return http_reply_error(r, 500, "database error");
	}
	log_kv("info", "secret set", "ns", r->ns, "secret", r->arg[0], NULL);
	return http_reply_json(r, 200, s);
}

static int list_one(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	json_tokener *t = json_tokener_new();
	json_object *s;

	(void)key, (void)klen;
	if (!t)
		return 1;
	s = json_tokener_parse_ex(t, val, (int)vlen);
	json_tokener_free(t);
	if (s) {
		json_object_object_del(s, "value");
		json_object_array_add(ctx, s);
	}
	return 0;
}

int api_secret_list(struct req *r)
{
	json_object *arr = json_object_new_array(), *o;
	char prefix[80];

	snprintf(prefix, sizeof prefix, "%s/", r->ns);
	if (db_scan(r->k->db, NULL, DB_SECRETS, prefix, NULL, 0, list_one, arr)) {
		json_object_put(arr);
		return http_reply_error(r, 500, "database error");
	}
	o = json_object_new_object();
	json_object_object_add(o, "secrets", arr);
	return http_reply_json(r, 200, o);
}

int api_secret_delete(struct req *r)
{
	char key[200];
	int rc;

	snprintf(key, sizeof key, "%s/%s", r->ns, r->arg[0]);
	rc = db_del(r->k->db, NULL, DB_SECRETS, key);
	if (rc == DB_NOTFOUND)
		return http_reply_error(r, 404, "no secret '%s'", r->arg[0]);
	if (rc)
		return http_reply_error(r, 500, "database error");
	log_kv("info", "secret deleted", "ns", r->ns, "secret", r->arg[0], NULL);
	return http_reply_json(r, 200, json_object_new_object());
}

struct env_ctx {
	char **env;
	size_t n, cap;
	int oom;
};

static int env_add(struct env_ctx *e, char *s)
{
	if (!s) {
		e->oom = 1;
		return -1;
	}
	if (e->n + 2 > e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 64;
		char **ne = realloc(e->env, nc * sizeof *ne);
		if (!ne) {
			free(s);
			e->oom = 1;
			return -1;
		}
		e->env = ne, e->cap = nc;
	}
	e->env[e->n++] = s;
	e->env[e->n] = NULL;
	return 0;
}

static int env_secret(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct env_ctx *e = ctx;
	json_tokener *t = json_tokener_new();
	json_object *s;
	const char *name, *v;
	char *var;
	size_t i, nl;

	(void)key, (void)klen;
	if (!t)
		return 1;
	s = json_tokener_parse_ex(t, val, (int)vlen);
	json_tokener_free(t);
	name = js_str(s, "name", NULL);
	v = js_str(s, "value", NULL);
	if (name && v) {
		nl = strlen(name);
		if ((var = malloc(12 + nl + 1 + strlen(v) + 1))) {
			memcpy(var, "KFPC_SECRET_", 12);
			for (i = 0; i < nl; i++) {
				char c = name[i];
				var[12 + i] = c == '-' || c == '.' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
			}
			var[12 + nl] = '=';
			strcpy(var + 13 + nl, v);
		}
		env_add(e, var);
	}
	if (s) {
		/* do not leave the value in freed heap memory longer than needed */
		json_object *vo;
		if (json_object_object_get_ex(s, "value", &vo) && json_object_get_string_len(vo))
			explicit_bzero((char *)json_object_get_string(vo), (size_t)json_object_get_string_len(vo));
	}
	json_object_put(s);
	return 0;
}

char **secrets_env(struct kfpd *k, const char *ns)
{
	struct env_ctx e = {NULL, 0, 0, 0};
	char prefix[80];
	char **p;

	for (p = environ; *p; p++)
		if (strncmp(*p, "KFPC_SECRET_", 12) && strncmp(*p, "KFPD_ADMIN_TOKEN=", 17))
			env_add(&e, strdup(*p));
	snprintf(prefix, sizeof prefix, "%s/", ns);
	db_scan(k->db, NULL, DB_SECRETS, prefix, NULL, 0, env_secret, &e);
	if (e.oom || !e.env) {
		secrets_env_free(e.env);
		return NULL;
	}
	return e.env;
}

void secrets_env_free(char **env)
{
	char **p;

	for (p = env; p && *p; p++) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
	}
	free(env);
}

/* api_pipelines.c - pipelines: upload source (compiled here), versions, IR.
 *
 * POST /api/v1/pipelines {"source": TEXT, "filename"?: "train.kfp", "name"?: NAME,
 *                         "pipeline"?: ENTRY, "files"?: {"lib/common.kfp": TEXT, ...}}
 * (or {"ir": IR, "name"?}) compiles the source with compile_file(); errors give 422
 * {"error":..., "diagnostics": SPEC §7 JSON}. Imports resolve only among the upload's own "files"
 * and std/ (check_imports(), before compiling: an upload never reads the daemon's disk); every
 * location names the files as uploaded, so the same upload gives the same IR. An optional
 * "params" object (a submit's) is checked against the IR first: bad ones give 400 and record
 * nothing. A new version is recorded unless the IR is byte-identical to the latest version's
 * (then 200 and that version). The sources are written to a private temporary directory only for
 * the compiler, and removed after; only "source" is kept with the version. The pipeline's own
 * `schedule` declarations become schedules (sched_sync_pipeline); deleting a pipeline deletes
 * its schedules. */
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "compile.h"
#include "db.h"
#include "diag.h"
#include "parse.h"

/* Returns S with every "DIR/" removed (malloc'd), or NULL when S has none. */
static char *strip_dir_str(const char *s, const char *dir)
{
	size_t n = strlen(dir);
	const char *p = s, *hit;
	char *o, *w;

	if (!(hit = strstr(s, dir)) || hit[n] != '/')
		return NULL;
	if (!(o = w = malloc(strlen(s) + 1)))
		return NULL;
	while ((hit = strstr(p, dir))) {
		memcpy(w, p, (size_t)(hit - p));
		w += hit - p;
		p = hit + n;
		if (*p == '/')
			p++;
		else {
			memcpy(w, dir, n);
			w += n;
		}
	}
	strcpy(w, p);
	return o;
}

/* Rewrites every string under O (IR or diagnostics) that names the private directory DIR
 * ("DIR/x/y.kfp") to name the file as the client sent it ("x/y.kfp"), recursively: locations
 * and messages never show a server path, and the same upload gives the same IR. */
static void rename_files(json_object *o, const char *dir)
{
	size_t i;

	if (json_object_is_type(o, json_type_array)) {
		for (i = 0; i < json_object_array_length(o); i++) {
			json_object *v = json_object_array_get_idx(o, i);
			char *t;
			if (json_object_is_type(v, json_type_string) &&
			    (t = strip_dir_str(json_object_get_string(v), dir))) {
				json_object_array_put_idx(o, i, json_object_new_string(t));
				free(t);
			} else {
				rename_files(v, dir);
			}
		}
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			char *t;
			if (json_object_is_type(val, json_type_string) &&
			    (t = strip_dir_str(json_object_get_string(val), dir))) {
				json_object_object_add(o, key, json_object_new_string(t));
				free(t);
			} else {
				rename_files(val, dir);
			}
		}
	}
}

/* Returns 1 if P is a safe relative path of a .kfp file: components of [A-Za-z0-9_.-] not
 * starting with '.', at most 8 deep. */
static int relpath_ok(const char *p)
{
	char comp[64];
	int depth = 0;
	size_t l = strlen(p);

	if (l < 5 || l > 400 || strcmp(p + l - 4, ".kfp"))
		return 0;
	while (*p) {
		size_t c = strcspn(p, "/");
		if (c == 0 || c >= sizeof comp || ++depth > 8)
			return 0;
		memcpy(comp, p, c);
		comp[c] = 0;
		if (!util_name_ok(comp))
			return 0;
		p += c;
		if (*p == '/')
			p++;
	}
	return 1;
}

/* Writes FILES (relative path -> text) under DIR. Returns NULL or an error message. */
static const char *write_files(const char *dir, json_object *files, char *buf, size_t n)
{
	char path[4700], *slash;
	int count = 0;

	json_object_object_foreach(files, rel, text) {
		if (++count > 500)
			return "\"files\": at most 500 files";
		if (!relpath_ok(rel) || !json_object_is_type(text, json_type_string)) {
			snprintf(buf, n, "\"files\": '%.200s' is not a relative NAME.kfp path with text",
				 rel);
			return buf;
		}
		snprintf(path, sizeof path, "%s/%s", dir, rel);
		if ((slash = strrchr(path, '/')) && slash > path + strlen(dir)) {
			*slash = 0;
			if (util_mkdirs(path))
				return "cannot write the sources";
			*slash = '/';
		}
		if (util_write_file(path, json_object_get_string(text),
				    (size_t)json_object_get_string_len(text)))
			return "cannot write the sources";
	}
	return NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

/* Removes the temporary directory DIR and everything in it. */
static void remove_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Normalises the import S of the uploaded file FROM ("lib/a.kfp") into OUT ("lib/b.kfp"): the
 * path relative to the upload's root, ".kfp" appended when missing. Returns 0, or -1 when S is
 * absolute, empty, or climbs out of the upload with "..". */
static int import_target(const char *from, const char *s, char *out, size_t n)
{
	char buf[1200], *comp[128], *save = NULL, *t;
	const char *slash = strrchr(from, '/');
	size_t l = strlen(s);
	int depth = 0, i;

	if (!l || s[0] == '/' || l > 400)
		return -1;
	snprintf(buf, sizeof buf, "%.*s%s%s", slash ? (int)(slash - from + 1) : 0, from, s,
		 l >= 4 && !strcmp(s + l - 4, ".kfp") ? "" : ".kfp");
	for (t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (!strcmp(t, "..")) {
			if (depth == 0)
				return -1;
			depth--;
			continue;
		}
		if (depth >= 128)
			return -1;
		comp[depth++] = t;
	}
	if (!depth)
		return -1;
	out[0] = 0;
	for (i = 0; i < depth; i++)
		if ((size_t)snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? "/" : "",
				     comp[i]) >= n - strlen(out))
			return -1;
	return 0;
}

/* Text of the uploaded file REL: SOURCE when REL is FILENAME, else its entry in FILES, or NULL. */
static const char *upload_text(const char *rel, const char *filename, const char *source,
			       json_object *files)
{
	json_object *t;

	if (!strcmp(rel, filename))
		return source;
	if (files && json_object_object_get_ex(files, rel, &t) &&
	    json_object_is_type(t, json_type_string))
		return json_object_get_string(t);
	return NULL;
}

/* Checks, before anything is compiled, that every import reachable from the uploaded root
 * FILENAME names either the standard library ("std/...", no "..") or another uploaded file
 * (SOURCE and FILES): an upload never reads the daemon's disk. Every other import is an E501
 * that names only the import as written, reported in D. Returns 0 (all good), 1 (errors in D),
 * -1 out of memory. Syntax errors are left for the compiler. */
static int check_imports(const char *source, json_object *files, const char *filename,
			 struct diag *d)
{
	struct ast_arena *a = ast_arena_new();
	struct diag *scratch = diag_new();
	json_object *seen = json_object_new_object(), *queue = json_object_new_array();
	char target[512];
	size_t qi;
	int rc = -1, bad = 0, id, i;

	if (!a || !scratch || !seen || !queue)
		goto out;
	json_object_array_add(queue, json_object_new_string(filename));
	json_object_object_add(seen, filename, NULL);
	for (qi = 0; qi < json_object_array_length(queue); qi++) {
		const char *rel = json_object_get_string(json_object_array_get_idx(queue, qi));
		const char *text = upload_text(rel, filename, source, files);
		struct ast_file *f;
		int sid;

		if ((id = diag_add_file(d, rel, text, strlen(text))) < 0 ||
		    (sid = diag_add_file(scratch, rel, text, strlen(text))) < 0 ||
		    !(f = parse_text(a, scratch, sid, text, strlen(text))))
			goto out;
		for (i = 0; i < f->nimports; i++) {
			struct ast_import *im = f->imports[i];
			const char *s = im->path->u.str.s;
			struct loc at = im->path->loc;

			if (!s || strlen(s) != im->path->u.str.len) {
				at.file = id;
				diag_error(d, "E501", at, "import path is empty or invalid");
				bad = 1;
				continue;
			}
			at.file = id;
			if (!strncmp(s, "std/", 4)) {
				if (!strstr(s, "..") && !strstr(s, "//"))
					continue;
				diag_error(d, "E501", at, "import '%s': a standard library path "
					   "may not contain '..'", s);
				bad = 1;
				continue;
			}
			if (import_target(rel, s, target, sizeof target) ||
			    !upload_text(target, filename, source, files)) {
				diag_error(d, "E501", at, "import '%s' not found among the uploaded "
					   "files (an upload imports only its own \"files\" and std/)",
					   s);
				bad = 1;
				continue;
			}
			if (!json_object_object_get_ex(seen, target, NULL)) {
				json_object_object_add(seen, target, NULL);
				json_object_array_add(queue, json_object_new_string(target));
			}
		}
	}
	rc = bad;
out:
	json_object_put(seen);
	json_object_put(queue);
	diag_free(scratch);
	ast_arena_free(a);
	return rc;
}

/* Compiles SOURCE as FILENAME (with FILES, relative path -> text, beside it for imports). Returns 0 with the IR text in *IR (malloc'd), 1 with diagnostics
 * in *DIAGS (json, caller puts), or -1 with a message in ERR. */
static int compile_source(struct kfpd *k, const char *source, json_object *files,
			  const char *filename, const char *entry, char **ir, json_object **diags,
			  char *err, size_t n)
{
	char dir[4096], path[4200], rnd[17];
	struct compile_opts o = {entry, 0};
	struct diag *d = NULL;
	char *out = NULL, *dbuf = NULL;
	size_t outlen = 0, dlen = 0;
	FILE *f = NULL, *df = NULL;
	int rc = -1, crc;

	*ir = NULL;
	*diags = NULL;
	if (util_random_hex(rnd, 8))
		return snprintf(err, n, "no randomness"), -1;
	snprintf(dir, sizeof dir, "%s/tmp/c-%s", k->data_dir, rnd);
	snprintf(path, sizeof path, "%s/%s", dir, filename);
	if (util_mkdirs(dir)) {
		snprintf(err, n, "cannot write the source: %s", strerror(errno));
		goto out;
	}
	if (files) {
		const char *e = write_files(dir, files, err, n);
		if (e) {
			if (e != err)
				snprintf(err, n, "%s", e);
			rc = -2;
			goto out;
		}
	}
	if (util_write_file(path, source, strlen(source))) {
		snprintf(err, n, "cannot write the source: %s", strerror(errno));
		goto out;
	}
	if (!(d = diag_new())) {
		snprintf(err, n, "out of memory");
		goto out;
	}
	if ((crc = check_imports(source, files, filename, d)) < 0) {
		snprintf(err, n, "out of memory");
		goto out;
	}
	if (crc == 0) {
		/* a fresh collector for the compiler: the check registered the files in D */
		diag_free(d);
		if (!(d = diag_new()) || !(f = open_memstream(&out, &outlen))) {
			snprintf(err, n, "out of memory");
			goto out;
		}
		pthread_mutex_lock(&util_env_lock);
		crc = compile_file(path, &o, d, f);
		pthread_mutex_unlock(&util_env_lock);
		if (fclose(f)) {
			f = NULL;
			snprintf(err, n, "out of memory");
			goto out;
		}
		f = NULL;
	}
	if (crc == 0) {
		json_object *j = json_tokener_parse(out);
		if (!j) {
			snprintf(err, n, "the compiler wrote no IR");
			goto out;
		}
		rename_files(j, dir);
		*ir = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		if (!*ir) {
			snprintf(err, n, "out of memory");
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (!(df = open_memstream(&dbuf, &dlen))) {
		snprintf(err, n, "out of memory");
		goto out;
	}
	diag_print(d, df, DIAG_FORMAT_JSON, 0);
	fclose(df);
	*diags = dbuf ? json_tokener_parse(dbuf) : NULL;
	if (!*diags)
		*diags = json_object_new_object();
	rename_files(*diags, dir);
	rc = 1;
out:
	if (f)
		fclose(f);
	free(out);
	free(dbuf);
	diag_free(d);
	remove_tree(dir);
	return rc;
}

static json_object *version_view(json_object *v, int with_source)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int64(js_int(v, "version", 0)));
	json_object_object_add(o, "filename", json_object_new_string(js_str(v, "filename", "")));
	json_object_object_add(o, "digest", json_object_new_string(js_str(v, "digest", "")));
	json_object_object_add(o, "created", json_object_new_string(js_str(v, "created", "")));
	if (with_source) {
		const char *s = js_str(v, "source", NULL);
		json_object_object_add(o, "source", s ? json_object_new_string(s) : NULL);
	}
	return o;
}

int api_pl_create(struct req *r)
{
	json_object *body, *irj = NULL, *diags = NULL, *pl = NULL, *ver, *latest = NULL, *o;
	const char *source, *filename, *name;
	char *irtext = NULL, err[512], key[200], vkey[240], digest[65], ts[32];
	MDB_txn *txn = NULL;
	int64_t version;
	int rc, status;

	if (http_body_object(r, &body))
		return http_done(r);
	source = js_str(body, "source", NULL);
	filename = js_str(body, "filename", "pipeline.kfp");
	if (!util_name_ok(filename) || strlen(filename) < 5 ||
	    strcmp(filename + strlen(filename) - 4, ".kfp")) {
		rc = http_reply_error(r, 400, "\"filename\": want a plain NAME.kfp");
		goto out;
	}
	if (source) {
		json_object *files = NULL;
		if (json_object_object_get_ex(body, "files", &files) && files &&
		    !json_object_is_type(files, json_type_object)) {
			rc = http_reply_error(r, 400, "\"files\": want an object: path -> text");
			goto out;
		}
		rc = compile_source(r->k, source, files, filename, js_str(body, "pipeline", NULL),
				    &irtext, &diags, err, sizeof err);
		if (rc == -2) {
			rc = http_reply_error(r, 400, "%s", err);
			goto out;
		}
		if (rc < 0) {
			rc = http_reply_error(r, 500, "%s", err);
			goto out;
		}
		if (rc == 1) {
			o = json_object_new_object();
			json_object *e = json_object_new_object();
			json_object_object_add(e, "code", json_object_new_int(422));
			json_object_object_add(e, "message",
					       json_object_new_string("the pipeline has errors"));
			json_object_object_add(o, "error", e);
			json_object_object_add(o, "diagnostics", diags);
			diags = NULL;
			rc = http_reply_json(r, 422, o);
			goto out;
		}
		irj = json_tokener_parse(irtext);
	} else if (json_object_object_get_ex(body, "ir", &irj) &&
		   json_object_is_type(irj, json_type_object)) {
		json_object_get(irj);
		irtext = strdup(json_object_to_json_string_ext(irj, JSON_C_TO_STRING_PLAIN));
	} else {
		rc = http_reply_error(r, 400, "want \"source\" (a .kfp text) or \"ir\" (an IR object)");
		goto out;
	}
	if (!irj || !irtext || js_int(irj, "kfpc_ir", 0) != 1) {
		rc = http_reply_error(r, 400, "\"ir\": not a kfpc IR of version 1");
		goto out;
	}
	if (json_object_object_get_ex(body, "params", &o)) {
		/* a submit's parameters: checked before anything is recorded */
		if (o && !json_object_is_type(o, json_type_object)) {
			rc = http_reply_error(r, 400, "\"params\": want an object");
			goto out;
		}
		if (runs_check_params(irj, o, err, sizeof err)) {
			rc = http_reply_error(r, 400, "%s", err);
			goto out;
		}
	}
	name = js_str(body, "name", js_str(irj, "name", NULL));
	if (!util_name_ok(name)) {
		rc = http_reply_error(r, 400, "\"name\": want 1-63 of [A-Za-z0-9_.-]");
		goto out;
	}
	util_sha256_hex(irtext, strlen(irtext), digest);
	snprintf(key, sizeof key, "%s/%s", r->ns, name);
	if ((rc = db_begin(r->k->db, 1, &txn)))
		goto dberr;
	version = 1;
	status = 201;
	if (db_get(r->k->db, txn, DB_PIPELINES, key, &pl) == 0) {
		version = js_int(pl, "latest", 0);
		snprintf(vkey, sizeof vkey, "%s/%08lld", key, (long long)version);
		if (db_get(r->k->db, txn, DB_VERSIONS, vkey, &latest) == 0 &&
		    !strcmp(js_str(latest, "digest", ""), digest) &&
		    !strcmp(js_str(latest, "source", ""), source ? source : "")) {
			db_abort(txn);
			txn = NULL;
			o = version_view(latest, 0);
			json_object_object_add(o, "name", json_object_new_string(name));
			json_object_object_add(o, "unchanged", json_object_new_boolean(1));
			rc = http_reply_json(r, 200, o);
			goto out;
		}
		version++;
	} else {
		pl = json_object_new_object();
		json_object_object_add(pl, "name", json_object_new_string(name));
		json_object_object_add(pl, "created",
				       json_object_new_string(util_iso8601(util_now(r->k), ts)));
	}
	util_iso8601(util_now(r->k), ts);
	json_object_object_add(pl, "latest", json_object_new_int64(version));
	json_object_object_add(pl, "updated", json_object_new_string(ts));
	ver = json_object_new_object();
	json_object_object_add(ver, "version", json_object_new_int64(version));
	json_object_object_add(ver, "filename", json_object_new_string(filename));
	json_object_object_add(ver, "source", source ? json_object_new_string(source) : NULL);
	json_object_object_add(ver, "digest", json_object_new_string(digest));
	json_object_object_add(ver, "created", json_object_new_string(ts));
	json_object_object_add(ver, "ir", json_object_get(irj));
	snprintf(vkey, sizeof vkey, "%s/%08lld", key, (long long)version);
	rc = db_put(r->k->db, txn, DB_VERSIONS, vkey, ver);
	if (!rc)
		rc = db_put(r->k->db, txn, DB_PIPELINES, key, pl);
	if (rc) {
		json_object_put(ver);
		goto dberr;
	}
	rc = db_commit(txn);
	txn = NULL;
	if (rc) {
		json_object_put(ver);
		goto dberr;
	}
	log_kv("info", "pipeline version created", "ns", r->ns, "pipeline", name, "digest", digest,
	       NULL);
	sched_sync_pipeline(r->k, r->ns, name, irj);
	o = version_view(ver, 0);
	json_object_put(ver);
	json_object_object_add(o, "name", json_object_new_string(name));
	rc = http_reply_json(r, status, o);
	goto out;
dberr:
	rc = http_reply_error(r, 500, "database error");
out:
	db_abort(txn);
	json_object_put(body);
	json_object_put(irj);
	json_object_put(diags);
	json_object_put(pl);
	json_object_put(latest);
	free(irtext);
	return rc;
}

struct collect {
	json_object *arr;
	int with_source;
};

/* json_tokener_parse_ex needs a tokener we free: a small wrapper */
static json_object *parse_len(const char *s, size_t len)
{
	json_tokener *t = json_tokener_new();
	json_object *o;

	if (!t)
		return NULL;
	o = json_tokener_parse_ex(t, s, (int)len);
	json_tokener_free(t);
	return o;
}

static int collect_plain(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	json_object *o = parse_len(val, vlen);
	(void)key, (void)klen;
	if (o)
		json_object_array_add(ctx, o);
	return 0;
}

static int collect_versions(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct collect *c = ctx;
	json_object *o = parse_len(val, vlen);
	(void)key, (void)klen;
	if (o) {
		json_object_array_add(c->arr, version_view(o, c->with_source));
		json_object_put(o);
	}
	return 0;
}

int api_pl_list(struct req *r)
{
	char prefix[80];
	json_object *arr = json_object_new_array(), *o;

	snprintf(prefix, sizeof prefix, "%s/", r->ns);
	if (db_scan(r->k->db, NULL, DB_PIPELINES, prefix, NULL, 0, collect_plain, arr)) {
		json_object_put(arr);
		return http_reply_error(r, 500, "database error");
	}
	o = json_object_new_object();
	json_object_object_add(o, "pipelines", arr);
	return http_reply_json(r, 200, o);
}

int api_pl_get(struct req *r)
{
	char key[200], prefix[210];
	json_object *pl;
	struct collect c = {NULL, 0};

	snprintf(key, sizeof key, "%s/%s", r->ns, r->arg[0]);
	if (db_get(r->k->db, NULL, DB_PIPELINES, key, &pl))
		return http_reply_error(r, 404, "no pipeline '%s'", r->arg[0]);
	c.arr = json_object_new_array();
	snprintf(prefix, sizeof prefix, "%s/", key);
	db_scan(r->k->db, NULL, DB_VERSIONS, prefix, NULL, 0, collect_versions, &c);
	json_object_object_add(pl, "versions", c.arr);
	return http_reply_json(r, 200, pl);
}

int api_pl_load_version(struct kfpd *k, const char *ns, const char *name, const char *v,
			json_object **out)
{
	char key[200], vkey[240], *end;
	json_object *pl;
	long long n;
	int rc;

	*out = NULL;
	if (!util_name_ok(name))
		return DB_NOTFOUND;
	snprintf(key, sizeof key, "%s/%s", ns, name);
	if ((rc = db_get(k->db, NULL, DB_PIPELINES, key, &pl)))
		return rc;
	if (!v || !strcmp(v, "latest")) {
		n = js_int(pl, "latest", 0);
	} else {
		n = strtoll(v, &end, 10);
		if (*end || n < 1) {
			json_object_put(pl);
			return DB_NOTFOUND;
		}
	}
	json_object_put(pl);
	snprintf(vkey, sizeof vkey, "%s/%08lld", key, n);
	return db_get(k->db, NULL, DB_VERSIONS, vkey, out);
}

int api_pl_version(struct req *r)
{
	json_object *v, *o;

	if (api_pl_load_version(r->k, r->ns, r->arg[0], r->arg[1], &v))
		return http_reply_error(r, 404, "no version '%s' of pipeline '%s'", r->arg[1], r->arg[0]);
	o = version_view(v, 1);
	json_object_put(v);
	json_object_object_add(o, "name", json_object_new_string(r->arg[0]));
	return http_reply_json(r, 200, o);
}

int api_pl_ir(struct req *r)
{
	json_object *v, *ir;

	if (api_pl_load_version(r->k, r->ns, r->arg[0], r->arg[1], &v))
		return http_reply_error(r, 404, "no version '%s' of pipeline '%s'",
					r->arg[1] ? r->arg[1] : "latest", r->arg[0]);
	if (!json_object_object_get_ex(v, "ir", &ir)) {
		json_object_put(v);
		return http_reply_error(r, 500, "version has no IR");
	}
	json_object_get(ir);
	json_object_put(v);
	return http_reply_json(r, 200, ir);
}

static int collect_keys(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	(void)val, (void)vlen;
	json_object_array_add(ctx, json_object_new_string_len(key, (int)klen));
	return 0;
}

int api_pl_delete(struct req *r)
{
	char key[200], prefix[210];
	json_object *pl, *keys = json_object_new_array();
	MDB_txn *txn;
	size_t i;
	int rc;

	snprintf(key, sizeof key, "%s/%s", r->ns, r->arg[0]);
	if ((rc = db_begin(r->k->db, 1, &txn)))
		goto dberr;
	if (db_get(r->k->db, txn, DB_PIPELINES, key, &pl)) {
		db_abort(txn);
		json_object_put(keys);
		return http_reply_error(r, 404, "no pipeline '%s'", r->arg[0]);
	}
	json_object_put(pl);
	snprintf(prefix, sizeof prefix, "%s/", key);
	db_scan(r->k->db, txn, DB_VERSIONS, prefix, NULL, 0, collect_keys, keys);
	for (i = 0; i < json_object_array_length(keys); i++)
		db_del(r->k->db, txn, DB_VERSIONS,
		       json_object_get_string(json_object_array_get_idx(keys, i)));
	db_del(r->k->db, txn, DB_PIPELINES, key);
	if ((rc = db_commit(txn)))
		goto dberr;
	json_object_put(keys);
	sched_delete_pipeline(r->k, r->ns, r->arg[0]);
	log_kv("info", "pipeline deleted", "ns", r->ns, "pipeline", r->arg[0], NULL);
	return http_reply_json(r, 200, json_object_new_object());
dberr:
	json_object_put(keys);
	return http_reply_error(r, 500, "database error");
}

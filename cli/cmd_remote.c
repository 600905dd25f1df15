/* cmd_remote.c - `kfpc --server URL COMMAND ...`: the kfpd client (libcurl).
 *
 * Commands: submit, runs, show, logs [-f], cancel, retry, delete, pipelines,
 * schedule create|list|pause|resume|delete, artifact get, lineage, whoami.
 * The token is $KFPC_TOKEN, else "token = ..." in the config file ($KFPC_CONFIG, else
 * ~/.config/kfpc/config), which may also hold "server = URL" (used when --server is not given).
 * Exit codes: 0 done, 1 the server refused or the run failed, 2 usage, I/O or connection error. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cmds.h"

/* Runs remote command ARGV[0] against SERVER (NULL: $KFPC_SERVER, else the config file's
 * "server"). Returns the exit code. ARGV is reordered in place (--json removed). */
extern char **environ;

int cmd_remote(int argc, char **argv, const char *server);


static const char remote_usage[] =
	"usage: kfpc --server URL COMMAND [ARGS]   (token: $KFPC_TOKEN or the config file)\n"
	"  submit FILE.kfp|IR.json [-p NAME=VALUE]... [--name NAME] [--pipeline ENTRY] [--no-run]\n"
	"         (also `run`; the .kfp files beside FILE go along for its relative imports)\n"
	"  runs [--pipeline P] [--state S] [--schedule ID] [--limit N] [--cursor C]\n"
	"  show RUN                      a run with its steps, timings and outputs (RUN: an id or\n"
	"                                a unique prefix, for every command)\n"
	"  logs RUN STEP [-f] [--stderr] [--attempt N]\n"
	"  cancel RUN | retry RUN | delete RUN\n"
	"  pipelines\n"
	"  schedule create PIPELINE --cron EXPR [--tz ZONE] [-p NAME=VALUE]... [--max-concurrent N]\n"
	"                  [--policy skip|catchup] [--version N] [--paused]\n"
	"  schedule list | schedule pause ID | schedule resume ID | schedule delete ID\n"
	"  artifact get DIGEST|RUN/STEP/OUTPUT -o PATH|-  (a directory artifact is unpacked into PATH;\n"
	"               with -o - the bytes go to stdout, a directory as a tar stream)\n"
	"  lineage DIGEST|RUN/STEP/OUTPUT   what produced an artifact, and from which inputs\n"
	"  whoami\n"
	"Add --json anywhere to print the server's JSON answer as is.\n";

struct client {
	const char *server;
	char *token;
	int json;       /* --json: print raw answers */
	CURL *curl;
	char ctype[128]; /* Content-Type of the last answer */
	char cached_from[512]; /* X-Kfpc-Cached-From of the last answer (a cached step's logs) */
};

/* libcurl header callback: keeps X-Kfpc-Cached-From in the client UD. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct client *c = ud;
	size_t len = size * n;
	static const char name[] = "x-kfpc-cached-from:";

	if (len > sizeof name && !strncasecmp(p, name, sizeof name - 1)) {
		size_t off = sizeof name - 1, end = len;
		while (off < len && (p[off] == ' ' || p[off] == '\t'))
			off++;
		while (end > off && (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
			end--;
		snprintf(c->cached_from, sizeof c->cached_from, "%.*s", (int)(end - off), p + off);
	}
	return len;
}

struct buf {
	char *p;
	size_t n, cap;
	FILE *stream;   /* when set and the answer is 200, bytes go there instead */
	CURL *curl;
	int decided, use_stream;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	size_t len = size * n;

	if (b->stream && !b->decided) {
		long code = 0;
		curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &code);
		b->decided = 1;
		b->use_stream = code == 200;
	}
	if (b->use_stream) {
		size_t w = fwrite(p, 1, len, b->stream);
		fflush(b->stream);
		return w;
	}
	if (b->n + len + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->n + len + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np)
			return 0;
		b->p = np, b->cap = nc;
	}
	memcpy(b->p + b->n, p, len);
	b->n += len;
	b->p[b->n] = 0;
	return len;
}

/* Performs METHOD PATH with BODY (a JSON object, not consumed, or NULL). On success returns the
 * HTTP status and the parsed answer in *OUT (may be NULL: not JSON); -1 on a connection error
 * (message printed). With STREAM, the body is written there instead. */
static long request(struct client *c, const char *method, const char *path, json_object *body,
		    json_object **out, FILE *stream)
{
	char url[4096], auth[1024];
	struct curl_slist *h = NULL;
	struct buf b = {NULL, 0, 0, stream, c->curl, 0, 0};
	long status = -1;
	CURLcode rc;

	if (out)
		*out = NULL;
	snprintf(url, sizeof url, "%s%s", c->server, path);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
	c->cached_from[0] = 0;
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	if (c->token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
		h = curl_slist_append(h, auth);
	}
	if (body) {
		const char *s = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c->curl, CURLOPT_COPYPOSTFIELDS, s);
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	if (rc != CURLE_OK) {
		fprintf(stderr, "kfpc: %s: %s\n", url, curl_easy_strerror(rc));
		free(b.p);
		return -1;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	char *ct = NULL;
	curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(c->ctype, sizeof c->ctype, "%s", ct ? ct : "");
	if (out && b.p)
		*out = json_tokener_parse(b.p);
	free(b.p);
	return status;
}

static const char *js(json_object *o, const char *k)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !v)
		return "";
	return json_object_get_string(v);
}

/* Prints the server's error answer; returns the exit code for STATUS. */
static int fail(long status, json_object *ans)
{
	json_object *e;

	if (status < 0)
		return 2;
	if (ans && json_object_object_get_ex(ans, "error", &e))
		fprintf(stderr, "kfpc: server: %s (HTTP %ld)\n", js(e, "message"), status);
	else
		fprintf(stderr, "kfpc: server answered HTTP %ld\n", status);
	return status == 401 || status == 403 ? 2 : 1;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Adds "-p NAME=VALUE" to PARAMS; returns 0 or -1 (message printed). */
static int add_param(json_object *params, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char name[256];

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof name) {
		fprintf(stderr, "kfpc: -p wants NAME=VALUE, got '%s'\n", arg);
		return -1;
	}
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = 0;
	json_object_object_add(params, name, json_object_new_string(eq + 1));
	return 0;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t n = 0;
	FILE *m;

	if (!f)
		return NULL;
	if (!(m = open_memstream(&p, &n))) {
		fclose(f);
		return NULL;
	}
	char buf[65536];
	size_t r;
	while ((r = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, r, m);
	fclose(f);
	fclose(m);
	return p;
}

/* The .kfp files beside a submitted file (for its relative imports): collected by nftw. */
static struct {
	json_object *files;  /* relative path -> text */
	size_t rootlen;
	const char *main;    /* the submitted file's path (skipped) */
	size_t n, bytes;
} sib;

static int add_sibling(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	const char *rel = path + sib.rootlen;
	size_t l = strlen(path);
	char *text;

	if (flag == FTW_D && ftw->level > 0 && (path[ftw->base] == '.' || ftw->level > 4))
		return FTW_SKIP_SUBTREE;
	if (flag != FTW_F || l < 5 || strcmp(path + l - 4, ".kfp") || !strcmp(path, sib.main) ||
	    path[ftw->base] == '.')
		return FTW_CONTINUE;
	if (++sib.n > 200 || (sib.bytes += (size_t)sb->st_size) > (3u << 20))
		return FTW_STOP; /* too much beside it: send what we have */
	while (*rel == '/')
		rel++;
	if ((text = read_all(path))) {
		json_object_object_add(sib.files, rel, json_object_new_string(text));
		free(text);
	}
	return FTW_CONTINUE;
}

/* Returns the .kfp files under FILE's directory (relative paths; FILE itself excluded), or NULL
 * if there are none. */
static json_object *siblings(const char *file)
{
	char dir[4096], main_path[4200];
	const char *slash = strrchr(file, '/');

	if (slash) {
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - file), file);
		if (!dir[0])
			snprintf(dir, sizeof dir, "/");
		snprintf(main_path, sizeof main_path, "%s", file);
	} else {
		snprintf(dir, sizeof dir, ".");
		snprintf(main_path, sizeof main_path, "./%s", file); /* nftw's paths start "./" */
	}
	sib.files = json_object_new_object();
	sib.rootlen = strlen(dir);
	sib.main = main_path;
	sib.n = sib.bytes = 0;
	nftw(dir, add_sibling, 16, FTW_PHYS | FTW_ACTIONRETVAL);
	if (!json_object_object_length(sib.files)) {
		json_object_put(sib.files);
		sib.files = NULL;
	}
	return sib.files;
}

static void print_diagnostics(json_object *ans)
{
	json_object *d, *list;
	size_t i;

	if (!json_object_object_get_ex(ans, "diagnostics", &d) ||
	    !json_object_object_get_ex(d, "diagnostics", &list))
		return;
	for (i = 0; i < json_object_array_length(list); i++) {
		json_object *x = json_object_array_get_idx(list, i);
		fprintf(stderr, "%s:%s:%s: %s: %s [%s]\n", js(x, "file"), js(x, "line"), js(x, "col"),
			js(x, "severity"), js(x, "message"), js(x, "code"));
	}
}

static int do_submit(struct client *c, int argc, char **argv)
{
	const char *file = NULL, *name = NULL, *entry = NULL;
	json_object *params = json_object_new_object(), *body = NULL, *ans = NULL, *run = NULL;
	int norun = 0, i, rc = 2;
	char *text = NULL;
	long st;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			if (add_param(params, argv[++i]))
				goto out;
		} else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
			name = argv[++i];
		} else if (!strcmp(argv[i], "--pipeline") && i + 1 < argc) {
			entry = argv[++i];
		} else if (!strcmp(argv[i], "--no-run")) {
			norun = 1;
		} else if (argv[i][0] != '-' && !file) {
			file = argv[i];
		} else {
			fprintf(stderr, "kfpc submit: unexpected '%s'\n%s", argv[i], remote_usage);
			goto out;
		}
	}
	if (!file) {
		fprintf(stderr, "kfpc submit: which file?\n%s", remote_usage);
		goto out;
	}
	if (!(text = read_all(file))) {
		fprintf(stderr, "kfpc: %s: %s\n", file, strerror(errno));
		goto out;
	}
	body = json_object_new_object();
	size_t fl = strlen(file);
	if (fl > 5 && !strcmp(file + fl - 5, ".json")) {
		json_object *ir = json_tokener_parse(text);
		if (!ir) {
			fprintf(stderr, "kfpc: %s: not JSON\n", file);
			goto out;
		}
		json_object_object_add(body, "ir", ir);
	} else {
		const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
		json_object *files = siblings(file);
		json_object_object_add(body, "source", json_object_new_string(text));
		json_object_object_add(body, "filename", json_object_new_string(base));
		if (files)
			json_object_object_add(body, "files", files);
	}
	if (name)
		json_object_object_add(body, "name", json_object_new_string(name));
	if (entry)
		json_object_object_add(body, "pipeline", json_object_new_string(entry));
	if (!norun) /* checked before the version is recorded: a refused submit records nothing */
		json_object_object_add(body, "params", json_object_get(params));
	st = request(c, "POST", "/api/v1/pipelines", body, &ans, NULL);
	if (st == 422) {
		if (c->json)
			print_json(ans);
		else
			print_diagnostics(ans);
		rc = 1;
		goto out;
	}
	if (st != 200 && st != 201) {
		rc = fail(st, ans);
		goto out;
	}
	if (norun) {
		if (c->json)
			print_json(ans);
		else
			printf("pipeline %s version %s\n", js(ans, "name"), js(ans, "version"));
		rc = 0;
		goto out;
	}
	json_object_put(body);
	body = json_object_new_object();
	json_object_object_add(body, "pipeline", json_object_new_string(js(ans, "name")));
	json_object_object_add(body, "version",
			       json_object_new_int64(json_object_get_int64(json_object_object_get(ans, "version"))));
	json_object_object_add(body, "params", json_object_get(params));
	st = request(c, "POST", "/api/v1/runs", body, &run, NULL);
	if (st != 201) {
		rc = fail(st, run);
		goto out;
	}
	if (c->json)
		print_json(run);
	else
		printf("%s\n", js(run, "id"));
	rc = 0;
out:
	free(text);
	json_object_put(params);
	json_object_put(body);
	json_object_put(ans);
	json_object_put(run);
	return rc;
}

/* Appends ?k=v / &k=v (URL-escaped) to URL. */
static void add_query(struct client *c, char *url, size_t n, const char *k, const char *v)
{
	char *e = curl_easy_escape(c->curl, v, 0);
	size_t l = strlen(url);
	snprintf(url + l, n - l, "%c%s=%s", strchr(url, '?') ? '&' : '?', k, e ? e : "");
	curl_free(e);
}

static int do_runs(struct client *c, int argc, char **argv)
{
	char url[2048] = "/api/v1/runs";
	json_object *ans = NULL, *runs;
	size_t i;
	long st;
	int rc;

	for (i = 1; i < (size_t)argc; i++) {
		static const char *const flags[] = {"--pipeline", "--state", "--schedule", "--limit",
						    "--cursor", NULL};
		int j, ok = 0;
		for (j = 0; flags[j]; j++)
			if (!strcmp(argv[i], flags[j]) && i + 1 < (size_t)argc) {
				add_query(c, url, sizeof url, flags[j] + 2, argv[++i]);
				ok = 1;
				break;
			}
		if (!ok) {
			fprintf(stderr, "kfpc runs: unexpected '%s'\n%s", argv[i], remote_usage);
			return 2;
		}
	}
	st = request(c, "GET", url, NULL, &ans, NULL);
	if (st != 200) {
		rc = fail(st, ans);
		json_object_put(ans);
		return rc;
	}
	if (c->json) {
		print_json(ans);
	} else {
		json_object_object_get_ex(ans, "runs", &runs);
		printf("%-26s %-10s %-20s %-21s %s\n", "RUN", "STATE", "PIPELINE", "CREATED", "SCHEDULE");
		for (i = 0; i < json_object_array_length(runs); i++) {
			json_object *r = json_object_array_get_idx(runs, i);
			printf("%-26s %-10s %-20s %-21s %s\n", js(r, "id"), js(r, "state"),
			       js(r, "pipeline"), js(r, "created"), js(r, "schedule"));
		}
		if (*js(ans, "next_cursor"))
			printf("more: --cursor %s\n", js(ans, "next_cursor"));
	}
	json_object_put(ans);
	return 0;
}

static double jd(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) && v ? json_object_get_double(v) : 0;
}

static const char *jtext(json_object *v)
{
	return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE)
		 : "null";
}

/* The exit column of attempt A: "0", "sig 9", or "-". */
static const char *attempt_exit(json_object *a, char buf[32])
{
	if (!a || jd(a, "finished") <= 0)
		return "-";
	if ((int)jd(a, "signal"))
		snprintf(buf, 32, "sig %d", (int)jd(a, "signal"));
	else if ((int)jd(a, "exit_code") >= 0)
		snprintf(buf, 32, "%d", (int)jd(a, "exit_code"));
	else
		return "-";
	return buf;
}

/* Prints the details of step S as the local `kfpc show` does (inputs, outputs, artifacts, cache
 * provenance, attempts when there was more than one or one failed). */
static void show_step_details(json_object *s)
{
	json_object *att = NULL, *ins = NULL, *outs = NULL, *ia = NULL, *oa = NULL;
	char tb[32], db[32];
	size_t k, na;
	int show_att;

	json_object_object_get_ex(s, "attempts", &att);
	json_object_object_get_ex(s, "inputs", &ins);
	json_object_object_get_ex(s, "outputs", &outs);
	json_object_object_get_ex(s, "input_artifacts", &ia);
	json_object_object_get_ex(s, "artifacts", &oa);
	na = att ? json_object_array_length(att) : 0;
	show_att = na > 1 || (na == 1 && strcmp(js(json_object_array_get_idx(att, 0), "fail"), "none"));
	if (!(ins && json_object_object_length(ins)) && !(outs && json_object_object_length(outs)) &&
	    !(ia && json_object_array_length(ia)) && !(oa && json_object_array_length(oa)) &&
	    !show_att && !*js(s, "cached_from"))
		return;
	printf("\n%s\n", js(s, "id"));
	if (*js(s, "cached_from"))
		printf("    cached from %s\n", js(s, "cached_from"));
	if (ins && json_object_is_type(ins, json_type_object)) {
		json_object_object_foreach(ins, key, val)
			printf("    in  %s = %s\n", key, jtext(val));
	}
	for (k = 0; ia && k < json_object_array_length(ia); k++)
		printf("    in  %s = %.12s\n", js(json_object_array_get_idx(ia, k), "name"),
		       js(json_object_array_get_idx(ia, k), "digest"));
	if (outs && json_object_is_type(outs, json_type_object)) {
		json_object_object_foreach(outs, key, val)
			printf("    out %s = %s\n", key, jtext(val));
	}
	for (k = 0; oa && k < json_object_array_length(oa); k++)
		printf("    out %s = %.12s\n", js(json_object_array_get_idx(oa, k), "name"),
		       js(json_object_array_get_idx(oa, k), "digest"));
	for (k = 0; show_att && k < na; k++) {
		json_object *a = json_object_array_get_idx(att, k);
		time_t t0 = (time_t)jd(a, "started");
		struct tm tm;
		int fail = strcmp(js(a, "fail"), "none") != 0;
		if (!localtime_r(&t0, &tm) || !strftime(tb, sizeof tb, "%Y-%m-%d %H:%M:%S", &tm))
			snprintf(tb, sizeof tb, "-");
		printf("    attempt %s  %s  %s  exit %s%s%s%s%s\n", js(a, "number"), tb,
		       jd(a, "finished") > 0 ? cmd_fmt_dur(jd(a, "finished") - jd(a, "started"), db)
					     : "running",
		       attempt_exit(a, db), fail ? "  " : "", fail ? js(a, "fail") : "",
		       *js(a, "reason") ? ": " : "", js(a, "reason"));
	}
}

static int do_show(struct client *c, int argc, char **argv)
{
	char url[1024], db[32], eb[32];
	json_object *ans = NULL, *steps = NULL, *params = NULL, *outs = NULL;
	size_t i, n;
	long st;
	int rc, w = 4;

	if (argc != 2) {
		fprintf(stderr, "usage: kfpc --server URL show RUN   (RUN may be a unique prefix)\n");
		return 2;
	}
	snprintf(url, sizeof url, "/api/v1/runs/%s?steps=1", argv[1]);
	st = request(c, "GET", url, NULL, &ans, NULL);
	if (st != 200) {
		rc = fail(st, ans);
		json_object_put(ans);
		return rc;
	}
	if (c->json) {
		print_json(ans);
		goto done;
	}
	printf("run       %s\npipeline  %s (version %s)\nstatus    %s%s%s\n", js(ans, "id"),
	       js(ans, "pipeline"), js(ans, "version"), js(ans, "state"),
	       *js(ans, "reason") ? ": " : "", js(ans, "reason"));
	if (*js(ans, "executor"))
		printf("executor  %s\n", js(ans, "executor"));
	printf("created   %s\n", js(ans, "created"));
	if (*js(ans, "finished"))
		printf("finished  %s\n", js(ans, "finished"));
	if (json_object_object_get_ex(ans, "duration", NULL))
		printf("duration  %s\n", cmd_fmt_dur(jd(ans, "duration"), db));
	else
		printf("duration  -%s\n", !strcmp(js(ans, "state"), "running") ? " (running)" : "");
	if (json_object_object_get_ex(ans, "params", &params) &&
	    json_object_is_type(params, json_type_object)) {
		const char *lead = "params    ";
		json_object_object_foreach(params, key, val) {
			printf("%s%s = %s\n", lead, key, jtext(val));
			lead = "          ";
		}
	}
	json_object_object_get_ex(ans, "steps", &steps);
	n = steps ? json_object_array_length(steps) : 0;
	for (i = 0; i < n; i++) {
		int l = (int)strlen(js(json_object_array_get_idx(steps, i), "id"));
		w = l > w ? l : w;
	}
	printf("\n%-*s  %-9s  %8s  %8s  %5s  REASON\n", w, "STEP", "STATE", "ATTEMPTS", "DURATION",
	       "EXIT");
	if (!n)
		printf("(no steps recorded)\n");
	for (i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(steps, i), *a = NULL, *last = NULL;
		double t0 = jd(s, "started"), t1 = jd(s, "finished");
		size_t na;
		json_object_object_get_ex(s, "attempts", &a);
		na = a ? json_object_array_length(a) : 0;
		last = na ? json_object_array_get_idx(a, na - 1) : NULL;
		if (t0 <= 0 && last)
			t0 = jd(last, "started"), t1 = jd(last, "finished");
		printf("%-*s  %-9s  %8zu  %8s  %5s%s%s\n", w, js(s, "id"), js(s, "state"), na,
		       t0 > 0 && t1 >= t0 ? cmd_fmt_dur(t1 - t0, db) : "-", attempt_exit(last, eb),
		       *js(s, "reason") ? "  " : "", js(s, "reason"));
	}
	for (i = 0; i < n; i++)
		show_step_details(json_object_array_get_idx(steps, i));
	if (json_object_object_get_ex(ans, "outputs", &outs) && outs &&
	    json_object_is_type(outs, json_type_object) && json_object_object_length(outs)) {
		printf("\noutputs\n");
		json_object_object_foreach(outs, key, val) {
			json_object *dig;
			if (json_object_is_type(val, json_type_object) &&
			    json_object_object_get_ex(val, "artifact", &dig))
				printf("    %s = sha256:%s\n", key, json_object_get_string(dig));
			else
				printf("    %s = %s\n", key, jtext(val));
		}
	}
done:
	rc = !strcmp(js(ans, "state"), "failed") ? 1 : 0;
	json_object_put(ans);
	return rc;
}

static int do_logs(struct client *c, int argc, char **argv)
{
	const char *run = NULL, *step = NULL, *attempt = NULL;
	int follow = 0, err = 0, i;
	char url[2048];
	json_object *ans = NULL;
	long st;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = 1;
		else if (!strcmp(argv[i], "--stderr"))
			err = 1;
		else if (!strcmp(argv[i], "--attempt") && i + 1 < argc)
			attempt = argv[++i];
		else if (!run)
			run = argv[i];
		else if (!step)
			step = argv[i];
		else {
			fprintf(stderr, "kfpc logs: unexpected '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!run || !step) {
		fprintf(stderr, "usage: kfpc --server URL logs RUN STEP [-f] [--stderr] [--attempt N]\n");
		return 2;
	}
	char *es = curl_easy_escape(c->curl, step, 0);
	snprintf(url, sizeof url, "/api/v1/runs/%s/steps/%s/logs", run, es ? es : step);
	curl_free(es);
	if (follow)
		add_query(c, url, sizeof url, "follow", "1");
	if (err)
		add_query(c, url, sizeof url, "stream", "stderr");
	if (attempt)
		add_query(c, url, sizeof url, "attempt", attempt);
	/* a 200 answer streams to stdout as it comes; an error answer is small JSON */
	st = request(c, "GET", url, NULL, &ans, stdout);
	if (st != 200) {
		int rc = fail(st, ans);
		json_object_put(ans);
		return rc;
	}
	if (c->cached_from[0]) /* as the local `kfpc logs` says it */
		fprintf(stderr, "kfpc logs: %s was cached; these are the logs of %s\n", step,
			c->cached_from);
	json_object_put(ans);
	return 0;
}

/* POST/DELETE on one run: cancel, retry, delete. */
static int do_run_action(struct client *c, int argc, char **argv)
{
	char url[1024];
	json_object *ans = NULL;
	long st;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: kfpc --server URL %s RUN\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[0], "delete")) {
		snprintf(url, sizeof url, "/api/v1/runs/%s", argv[1]);
		st = request(c, "DELETE", url, NULL, &ans, NULL);
	} else {
		snprintf(url, sizeof url, "/api/v1/runs/%s/%s", argv[1], argv[0]);
		st = request(c, "POST", url, NULL, &ans, NULL);
	}
	if (st < 200 || st > 299)
		rc = fail(st, ans);
	else if (c->json)
		print_json(ans);
	else
		printf("%s: %s%s\n", argv[1], argv[0][0] == 'd' ? "deleted" : js(ans, "state"),
		       argv[0][0] == 'c' && strcmp(js(ans, "state"), "cancelled") ? " (cancelling)" : "");
	json_object_put(ans);
	return rc;
}

static int do_pipelines(struct client *c)
{
	json_object *ans = NULL, *pl;
	size_t i;
	long st = request(c, "GET", "/api/v1/pipelines", NULL, &ans, NULL);
	int rc = 0;

	if (st != 200) {
		rc = fail(st, ans);
	} else if (c->json) {
		print_json(ans);
	} else {
		json_object_object_get_ex(ans, "pipelines", &pl);
		printf("%-30s %-8s %s\n", "PIPELINE", "LATEST", "UPDATED");
		for (i = 0; i < json_object_array_length(pl); i++) {
			json_object *p = json_object_array_get_idx(pl, i);
			printf("%-30s %-8s %s\n", js(p, "name"), js(p, "latest"), js(p, "updated"));
		}
	}
	json_object_put(ans);
	return rc;
}

static void print_schedule(json_object *s)
{
	json_object *t;
	printf("%-18s %-20s %-18s %-16s %-8s %s\n", js(s, "id"), js(s, "pipeline"), js(s, "cron"),
	       js(s, "tz"), json_object_get_boolean(json_object_object_get(s, "enabled")) ? "active" : "paused",
	       json_object_object_get_ex(s, "next_fire_times", &t) && json_object_array_length(t)
		       ? json_object_get_string(json_object_array_get_idx(t, 0))
		       : "-");
}

static int do_schedule(struct client *c, int argc, char **argv)
{
	json_object *ans = NULL, *body = NULL, *list;
	const char *sub = argc > 1 ? argv[1] : "";
	char url[1024];
	size_t i;
	long st;
	int rc = 0;

	if (!strcmp(sub, "create")) {
		const char *pl = NULL;
		json_object *params = json_object_new_object();
		body = json_object_new_object();
		json_object_object_add(body, "params", params); /* body owns it */
		for (i = 2; i < (size_t)argc; i++) {
			const char *a = argv[i], *v = i + 1 < (size_t)argc ? argv[i + 1] : NULL;
			if (!strcmp(a, "--paused")) {
				json_object_object_add(body, "enabled", json_object_new_boolean(0));
				continue;
			}
			if (a[0] != '-' && !pl) {
				pl = a;
				continue;
			}
			if (!v)
				goto usage;
			i++;
			if (!strcmp(a, "-p")) {
				if (add_param(params, v))
					goto usage;
			} else if (!strcmp(a, "--cron"))
				json_object_object_add(body, "cron", json_object_new_string(v));
			else if (!strcmp(a, "--tz"))
				json_object_object_add(body, "tz", json_object_new_string(v));
			else if (!strcmp(a, "--policy"))
				json_object_object_add(body, "policy", json_object_new_string(v));
			else if (!strcmp(a, "--max-concurrent"))
				json_object_object_add(body, "max_concurrent", json_object_new_int(atoi(v)));
			else if (!strcmp(a, "--version"))
				json_object_object_add(body, "version", json_object_new_int(atoi(v)));
			else
				goto usage;
		}
		if (!pl || !json_object_object_get_ex(body, "cron", NULL)) {
			json_object_put(body);
			fprintf(stderr, "kfpc schedule create: want a PIPELINE and --cron EXPR\n%s",
				remote_usage);
			return 2;
		}
		json_object_object_add(body, "pipeline", json_object_new_string(pl));
		st = request(c, "POST", "/api/v1/schedules", body, &ans, NULL);
		if (st != 201)
			rc = fail(st, ans);
		else if (c->json)
			print_json(ans);
		else
			printf("%s\n", js(ans, "id"));
	} else if (!strcmp(sub, "list") && argc == 2) {
		st = request(c, "GET", "/api/v1/schedules", NULL, &ans, NULL);
		if (st != 200) {
			rc = fail(st, ans);
		} else if (c->json) {
			print_json(ans);
		} else {
			json_object_object_get_ex(ans, "schedules", &list);
			printf("%-18s %-20s %-18s %-16s %-8s %s\n", "SCHEDULE", "PIPELINE", "CRON", "TZ",
			       "STATE", "NEXT");
			for (i = 0; i < json_object_array_length(list); i++)
				print_schedule(json_object_array_get_idx(list, i));
		}
	} else if ((!strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "delete") ||
		    !strcmp(sub, "show")) && argc == 3) {
		if (!strcmp(sub, "delete")) {
			snprintf(url, sizeof url, "/api/v1/schedules/%s", argv[2]);
			st = request(c, "DELETE", url, NULL, &ans, NULL);
		} else if (!strcmp(sub, "show")) {
			snprintf(url, sizeof url, "/api/v1/schedules/%s?n=10", argv[2]);
			st = request(c, "GET", url, NULL, &ans, NULL);
		} else {
			snprintf(url, sizeof url, "/api/v1/schedules/%s/%s", argv[2], sub);
			st = request(c, "POST", url, NULL, &ans, NULL);
		}
		if (st != 200)
			rc = fail(st, ans);
		else if (c->json || !strcmp(sub, "show"))
			print_json(ans);
		else
			printf("%s: %s\n", argv[2], !strcmp(sub, "delete") ? "deleted"
						    : !strcmp(sub, "pause") ? "paused" : "active");
	} else {
		goto usage;
	}
	json_object_put(ans);
	json_object_put(body);
	return rc;
usage:
	json_object_put(body);
	fprintf(stderr, "kfpc schedule: bad arguments\n%s", remote_usage);
	return 2;
}

/* Resolves RUN/STEP/OUTPUT to a digest through the run's artifact list. Malloc'd or NULL. */
static char *resolve_output(struct client *c, const char *ref)
{
	char run[256], url[1024];
	const char *slash = strchr(ref, '/'), *last = strrchr(ref, '/');
	json_object *ans = NULL, *arts;
	char *d = NULL;
	size_t i;

	if (!slash || slash == last || (size_t)(slash - ref) >= sizeof run)
		return NULL;
	memcpy(run, ref, (size_t)(slash - ref));
	run[slash - ref] = 0;
	snprintf(url, sizeof url, "/api/v1/runs/%s/artifacts", run);
	if (request(c, "GET", url, NULL, &ans, NULL) == 200 &&
	    json_object_object_get_ex(ans, "artifacts", &arts)) {
		for (i = 0; i < json_object_array_length(arts) && !d; i++) {
			json_object *a = json_object_array_get_idx(arts, i);
			char full[1024]; /* STEP/OUTPUT (RUN may have been a prefix) */
			snprintf(full, sizeof full, "%s/%s", js(a, "step"), js(a, "output"));
			if (!strcmp(full, slash + 1))
				d = strdup(js(a, "digest"));
		}
	}
	json_object_put(ans);
	return d;
}

static int do_artifact(struct client *c, int argc, char **argv)
{
	const char *ref = NULL, *out = NULL;
	char url[1024], *digest;
	FILE *f;
	long st;
	int i;

	if (argc < 2 || strcmp(argv[1], "get"))
		goto usage;
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (!ref)
			ref = argv[i];
		else
			goto usage;
	}
	if (!ref || !out)
		goto usage;
	digest = strchr(ref, '/') ? resolve_output(c, ref) : strdup(ref);
	if (!digest) {
		fprintf(stderr, "kfpc: no artifact '%s'\n", ref);
		return 1;
	}
	snprintf(url, sizeof url, "/api/v1/artifacts/%s/content", digest);
	free(digest);
	if (!strcmp(out, "-")) { /* to stdout, as it comes (a directory artifact: its tar) */
		json_object *ans = NULL;
		st = request(c, "GET", url, NULL, &ans, stdout);
		if (st != 200) {
			int rc = fail(st, ans);
			json_object_put(ans);
			return rc;
		}
		json_object_put(ans);
		return fflush(stdout) ? 2 : 0;
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.part", out);
	if (!(f = fopen(tmp, "wb"))) {
		fprintf(stderr, "kfpc: %s: %s\n", tmp, strerror(errno));
		return 2;
	}
	json_object *ans = NULL;
	st = request(c, "GET", url, NULL, &ans, f);
	if (fclose(f) || st != 200) {
		unlink(tmp);
		int rc = fail(st, ans);
		json_object_put(ans);
		return rc;
	}
	json_object_put(ans);
	if (!strncmp(c->ctype, "application/x-tar", 17)) {
		/* a directory artifact: unpack it into OUT */
		char *targv[] = {"tar", "-xf", tmp, "-C", (char *)out, NULL};
		pid_t pid;
		int ws = 0;
		if (mkdir(out, 0755)) {
			fprintf(stderr, "kfpc: %s: %s\n", out, strerror(errno));
			unlink(tmp);
			return 2;
		}
		if (posix_spawnp(&pid, "tar", NULL, NULL, targv, environ) ||
		    waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws)) {
			fprintf(stderr, "kfpc: cannot unpack the directory artifact into %s\n", out);
			unlink(tmp);
			return 2;
		}
		unlink(tmp);
		return 0;
	}
	if (rename(tmp, out)) {
		fprintf(stderr, "kfpc: %s: %s\n", out, strerror(errno));
		unlink(tmp);
		return 2;
	}
	return 0;
usage:
	fprintf(stderr, "usage: kfpc --server URL artifact get DIGEST|RUN/STEP/OUTPUT -o PATH|-\n");
	return 2;
}

#define LINEAGE_DEPTH 200

/* Prints "DIGEST12 (Type, kind, size)" of lineage answer O into BUF. */
static const char *art_desc(json_object *o, const char *digest, char *buf, size_t n)
{
	double sz = jd(o, "size");
	char sb[32];

	if (!o) {
		snprintf(buf, n, "%.12s", digest);
		return buf;
	}
	if (sz < 1024)
		snprintf(sb, sizeof sb, "%.0f B", sz);
	else if (sz < 1024.0 * 1024)
		snprintf(sb, sizeof sb, "%.1f KiB", sz / 1024);
	else if (sz < 1024.0 * 1024 * 1024)
		snprintf(sb, sizeof sb, "%.1f MiB", sz / (1024.0 * 1024));
	else
		snprintf(sb, sizeof sb, "%.1f GiB", sz / (1024.0 * 1024 * 1024));
	snprintf(buf, n, "%.12s (%s%s%s, %s)", digest, js(o, "type"), *js(o, "type") ? ", " : "",
		 *js(o, "kind") ? js(o, "kind") : "?", sb);
	return buf;
}

/* Prints the lineage of DIGEST under prefix PFX as the local `kfpc lineage` does: its producer,
 * and under it the producer's inputs, each artifact input followed by its own lineage. O is the
 * artifact's lineage answer (NULL: fetch it). SEEN: digests already shown. */
static void print_lineage(struct client *c, json_object *o, const char *digest, const char *pfx,
			  int depth, json_object *seen, const char *want_run, const char *want_step)
{
	json_object *own = NULL, *prod = NULL, *ins = NULL, *p = NULL, *params = NULL;
	char url[512], desc[256], tb[32], *sub;
	size_t i, nin = 0, k = 0, np;

	if (depth > LINEAGE_DEPTH) {
		printf("%s... (deeper than %d levels)\n", pfx, LINEAGE_DEPTH);
		return;
	}
	if (json_object_object_get_ex(seen, digest, NULL)) {
		printf("%s(lineage shown above)\n", pfx);
		return;
	}
	json_object_object_add(seen, digest, NULL);
	if (!o) {
		snprintf(url, sizeof url, "/api/v1/artifacts/%s/lineage", digest);
		if (request(c, "GET", url, NULL, &own, NULL) != 200) {
			printf("%sno recorded producer\n", pfx);
			json_object_put(own);
			return;
		}
		o = own;
	}
	json_object_object_get_ex(o, "produced_by", &prod);
	json_object_object_get_ex(o, "inputs", &ins);
	np = prod ? json_object_array_length(prod) : 0;
	for (i = 0; i < np && !p; i++) { /* the producer asked for, else one in the consumer's run */
		json_object *e = json_object_array_get_idx(prod, i);
		if (want_run && !strcmp(js(e, "run"), want_run) &&
		    (!want_step || !strcmp(js(e, "step"), want_step)))
			p = e;
	}
	if (!p && np)
		p = json_object_array_get_idx(prod, 0);
	if (!p) {
		printf("%sno recorded producer\n", pfx);
		goto out;
	}
	{
		time_t t = (time_t)jd(p, "finished");
		struct tm tm;
		if (t <= 0 || !localtime_r(&t, &tm) || !strftime(tb, sizeof tb, "%Y-%m-%d %H:%M:%S", &tm))
			snprintf(tb, sizeof tb, "-");
	}
	printf("%sproduced by %s/%s output %s (%s, %s)\n", pfx, js(p, "run"), js(p, "step"),
	       js(p, "name"), *js(p, "state") ? js(p, "state") : "?", tb);
	if (np > 1) {
		size_t shown = 0;
		printf("%salso produced by", pfx);
		for (i = 0; i < np && shown < 3; i++) {
			json_object *e = json_object_array_get_idx(prod, i);
			if (e != p)
				printf("%s %s/%s", shown++ ? "," : "", js(e, "run"), js(e, "step"));
		}
		printf("%s\n", np - 1 > 3 ? ", ..." : "");
	}
	if (json_object_object_get_ex(p, "params", &params) &&
	    json_object_is_type(params, json_type_object))
		nin = (size_t)json_object_object_length(params);
	else
		params = NULL;
	for (i = 0; ins && i < json_object_array_length(ins); i++) {
		json_object *x = json_object_array_get_idx(ins, i);
		if (!strcmp(js(x, "run"), js(p, "run")) && !strcmp(js(x, "step"), js(p, "step")))
			nin++;
	}
	if (params) {
		json_object_object_foreach(params, key, val) {
			k++;
			printf("%s%s in %s = %s\n", pfx, k == nin ? "`-" : "|-", key, jtext(val));
		}
	}
	for (i = 0; ins && i < json_object_array_length(ins); i++) {
		json_object *x = json_object_array_get_idx(ins, i), *xo = NULL;
		int last;
		if (strcmp(js(x, "run"), js(p, "run")) || strcmp(js(x, "step"), js(p, "step")))
			continue;
		last = ++k == nin;
		snprintf(url, sizeof url, "/api/v1/artifacts/%s/lineage", js(x, "digest"));
		if (request(c, "GET", url, NULL, &xo, NULL) != 200) {
			json_object_put(xo);
			xo = NULL;
		}
		printf("%s%s in %s = %s\n", pfx, last ? "`-" : "|-", js(x, "input"),
		       art_desc(xo, js(x, "digest"), desc, sizeof desc));
		if (asprintf(&sub, "%s%s", pfx, last ? "   " : "|  ") >= 0) {
			if (xo)
				print_lineage(c, xo, js(x, "digest"), sub, depth + 1, seen,
					      js(p, "run"), NULL);
			else
				printf("%sno recorded producer\n", sub);
			free(sub);
		}
		json_object_put(xo);
	}
	if (!nin)
		printf("%s(no inputs)\n", pfx);
out:
	json_object_put(own);
}

static int do_lineage(struct client *c, int argc, char **argv)
{
	char url[1024], run[256] = "", step[512] = "", desc[256], *digest;
	const char *ref = argc == 2 ? argv[1] : NULL, *s1, *s2;
	json_object *o = NULL, *used, *seen;
	long st;
	size_t i;
	int rc;

	if (!ref) {
		fprintf(stderr, "usage: kfpc --server URL lineage DIGEST|RUN/STEP/OUTPUT\n");
		return 2;
	}
	if ((s1 = strchr(ref, '/'))) {
		s2 = strrchr(ref, '/');
		if (!(digest = resolve_output(c, ref))) {
			fprintf(stderr, "kfpc: no artifact '%s'\n", ref);
			return 1;
		}
		snprintf(run, sizeof run, "%.*s", (int)(s1 - ref), ref);
		snprintf(step, sizeof step, "%.*s", (int)(s2 - s1 - 1), s1 + 1);
	} else {
		digest = strdup(ref);
	}
	snprintf(url, sizeof url, "/api/v1/artifacts/%s/lineage", digest);
	st = request(c, "GET", url, NULL, &o, NULL);
	if (st != 200) {
		rc = fail(st, o);
		goto out;
	}
	rc = 0;
	if (c->json) {
		print_json(o);
		goto out;
	}
	/* RUN may have been a prefix: the producer's full run id */
	if (run[0]) {
		json_object *prod;
		json_object_object_get_ex(o, "produced_by", &prod);
		for (i = 0; prod && i < json_object_array_length(prod); i++) {
			json_object *e = json_object_array_get_idx(prod, i);
			if (!strncmp(js(e, "run"), run, strlen(run)) && !strcmp(js(e, "step"), step)) {
				snprintf(run, sizeof run, "%s", js(e, "run"));
				break;
			}
		}
	}
	printf("artifact %s\nsha256:%s\n", art_desc(o, js(o, "digest"), desc, sizeof desc),
	       js(o, "digest"));
	seen = json_object_new_object();
	print_lineage(c, o, js(o, "digest"), "", 0, seen, run[0] ? run : NULL,
		      step[0] ? step : NULL);
	json_object_put(seen);
	if (json_object_object_get_ex(o, "consumed_by", &used) && json_object_array_length(used)) {
		printf("used by\n");
		for (i = 0; i < json_object_array_length(used); i++) {
			json_object *e = json_object_array_get_idx(used, i);
			printf("   %s/%s input %s\n", js(e, "run"), js(e, "step"), js(e, "name"));
		}
	}
out:
	free(digest);
	json_object_put(o);
	return rc;
}

static int do_get_print(struct client *c, const char *url)
{
	json_object *ans = NULL;
	long st = request(c, "GET", url, NULL, &ans, NULL);
	int rc = 0;

	if (st != 200)
		rc = fail(st, ans);
	else
		print_json(ans);
	json_object_put(ans);
	return rc;
}

/* Reads "key = value" from the config file into *SERVER / *TOKEN (malloc'd, if not yet set). */
static void read_config(char **server, char **token)
{
	const char *path = getenv("KFPC_CONFIG"), *home = getenv("HOME");
	char def[4096], line[4096];
	FILE *f;

	if (!path) {
		if (!home)
			return;
		snprintf(def, sizeof def, "%s/.config/kfpc/config", home);
		path = def;
	}
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof line, f)) {
		char *eq = strchr(line, '='), *k = line, *v, *e;
		if (!eq || line[0] == '#')
			continue;
		*eq = 0;
		v = eq + 1;
		while (*k == ' ' || *k == '\t')
			k++;
		for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\r\n")] = 0;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = 0;
		if (!strcmp(k, "token") && !*token)
			*token = strdup(v);
		else if (!strcmp(k, "server") && !*server)
			*server = strdup(v);
	}
	fclose(f);
}

int cmd_remote_wants(const char *name)
{
	static const char *const names[] = {"submit", "runs", "show", "logs", "cancel", "retry",
					    "delete", "pipelines", "schedule", "artifact", "lineage",
					    "whoami", NULL};
	int i;
	for (i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return 1;
	return 0;
}

char *cmd_remote_configured_server(void)
{
	char *srv = NULL, *tok = NULL;

	if (getenv("KFPC_SERVER") && *getenv("KFPC_SERVER"))
		return strdup(getenv("KFPC_SERVER"));
	read_config(&srv, &tok);
	if (tok) {
		explicit_bzero(tok, strlen(tok));
		free(tok);
	}
	if (srv && !*srv) {
		free(srv);
		srv = NULL;
	}
	return srv;
}

void cmd_remote_usage(const char *name, FILE *f)
{
	const char *p = remote_usage, *nl;
	size_t n = name ? strlen(name) : 0;
	int on = 0, any = 0;

	if (name && cmd_remote_wants(name)) {
		while (*p) { /* the lines of NAME: "  NAME ..." and their continuation lines */
			nl = strchr(p, '\n');
			if (!nl)
				break;
			if (!strncmp(p, "  ", 2) && p[2] != ' ')
				on = !strncmp(p + 2, name, n) && (p[2 + n] == ' ' || p[2 + n] == '\n');
			if (on || (!strncmp(p, "  cancel RUN", 12) &&
				   (!strcmp(name, "retry") || !strcmp(name, "delete"))) ||
			    (!strcmp(name, "submit") && !strncmp(p, "         (also", 14))) {
				if (!any++)
					fprintf(f, "usage: kfpc [--server URL] %s ...\n", name);
				fwrite(p, 1, (size_t)(nl - p + 1), f);
			}
			p = nl + 1;
		}
		if (any) {
			fputs("(token: $KFPC_TOKEN or the config file; --json prints the server's "
			      "answer as is)\n", f);
			return;
		}
	}
	fputs(remote_usage, f);
}

int cmd_remote(int argc, char **argv, const char *server)
{
	struct client c = {NULL, NULL, 0, NULL, "", ""};
	char *srv = NULL;
	const char *cmd;
	int i, j, rc = 2;

	/* --json may appear anywhere */
	for (i = j = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			c.json = 1;
		else
			argv[j++] = argv[i];
	}
	argc = j;
	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
		cmd_remote_usage(argc > 1 ? argv[1] : NULL, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) /* COMMAND --help: no server needed */
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cmd_remote_usage(argv[0], stdout);
			return 0;
		}
	if (argc > 1 && !strcmp(argv[0], "schedule") && !strcmp(argv[1], "create")) {
		for (i = 2; i < argc && strcmp(argv[i], "--cron"); i++)
			;
		if (i >= argc - 1) { /* a usage error before any server or token is needed */
			fprintf(stderr, "kfpc schedule create: want a PIPELINE and --cron EXPR\n");
			cmd_remote_usage("schedule", stderr);
			return 2;
		}
	}
	if (getenv("KFPC_TOKEN") && *getenv("KFPC_TOKEN"))
		c.token = strdup(getenv("KFPC_TOKEN"));
	if (server)
		srv = strdup(server);
	else if (getenv("KFPC_SERVER") && *getenv("KFPC_SERVER"))
		srv = strdup(getenv("KFPC_SERVER"));
	read_config(&srv, &c.token);
	if (!srv) {
		fprintf(stderr, "kfpc: no server: give --server URL or 'server = URL' in the config\n");
		goto out;
	}
	while (*srv && srv[strlen(srv) - 1] == '/')
		srv[strlen(srv) - 1] = 0;
	c.server = srv;
	if (!c.token) {
		fprintf(stderr, "kfpc: no token: set KFPC_TOKEN or 'token = ...' in the config file\n");
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(c.curl = curl_easy_init())) {
		fprintf(stderr, "kfpc: cannot initialise libcurl\n");
		goto out;
	}
	cmd = argv[0];
	if (!strcmp(cmd, "submit") || !strcmp(cmd, "run")) /* `run` with --server: submit */
		rc = do_submit(&c, argc, argv);
	else if (!strcmp(cmd, "runs"))
		rc = do_runs(&c, argc, argv);
	else if (!strcmp(cmd, "show"))
		rc = do_show(&c, argc, argv);
	else if (!strcmp(cmd, "logs"))
		rc = do_logs(&c, argc, argv);
	else if (!strcmp(cmd, "cancel") || !strcmp(cmd, "retry") || !strcmp(cmd, "delete"))
		rc = do_run_action(&c, argc, argv);
	else if (!strcmp(cmd, "pipelines"))
		rc = do_pipelines(&c);
	else if (!strcmp(cmd, "schedule"))
		rc = do_schedule(&c, argc, argv);
	else if (!strcmp(cmd, "artifact"))
		rc = do_artifact(&c, argc, argv);
	else if (!strcmp(cmd, "lineage"))
		rc = do_lineage(&c, argc, argv);
	else if (!strcmp(cmd, "whoami"))
		rc = do_get_print(&c, "/api/v1/whoami");
	else
		fprintf(stderr, "kfpc: unknown remote command '%s'\n%s", cmd, remote_usage);
	curl_easy_cleanup(c.curl);
	curl_global_cleanup();
out:
	free(srv);
	if (c.token) {
		explicit_bzero(c.token, strlen(c.token));
		free(c.token);
	}
	return rc;
}

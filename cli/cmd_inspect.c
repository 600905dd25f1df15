/* cmd_inspect.c - the commands that read the engine's state: runs, show, logs, artifact,
 * lineage. Each one: parse arguments, open the state store read-only, look up, print.
 *
 *   kfpc runs [--state DIR] [--json]
 *   kfpc show RUN [--state DIR] [--json]
 *   kfpc logs RUN STEP [--attempt N] [--stdout|--stderr] [--state DIR]
 *   kfpc artifact get RUN/STEP/OUTPUT|DIGEST -o PATH [--state DIR]
 *   kfpc lineage ARTIFACT [--state DIR]          ARTIFACT: RUN/STEP/OUTPUT or a digest prefix
 *
 * RUN may be a unique prefix of a run id (like git). Exit codes: 0 ok, 1 unknown run / step /
 * output / artifact or a damaged store, 2 usage or I/O error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "art.h"
#include "cmds.h"
#include "store.h"

/* Parsed options common to the inspect commands. */
struct opts {
	const char *state;
	int json;
	int attempt;      /* logs --attempt N (0: latest) */
	int only;         /* logs: 1 stdout only, 2 stderr only */
	const char *out;  /* artifact -o */
	const char *pos[4];
	int npos;
};

enum { OPT_JSON = 1 << 0, OPT_ATTEMPT = 1 << 1, OPT_STREAM = 1 << 2, OPT_OUT = 1 << 3 };

static int usage(const char *cmd, const char *text)
{
	fprintf(stderr, "usage: kfpc %s\n", text);
	(void)cmd;
	return 2;
}

/* Parse ARGV (argv[0] is the command) accepting the options in ALLOWED and up to MAXPOS
 * positional arguments. Returns 0, or 2 after printing a usage error. */
static int parse(int argc, char **argv, unsigned allowed, int maxpos, const char *use,
		 struct opts *o)
{
	memset(o, 0, sizeof *o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("usage: kfpc %s\n", use);
			return -1;
		}
		if (!strncmp(a, "--state=", 8)) {
			o->state = a + 8;
			continue;
		}
		if (!strcmp(a, "--state")) {
			if (++i >= argc) {
				fprintf(stderr, "kfpc %s: --state needs a directory\n", argv[0]);
				return usage(argv[0], use);
			}
			o->state = argv[i];
			continue;
		}
		if ((allowed & OPT_JSON) && !strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if ((allowed & OPT_STREAM) && (!strcmp(a, "--stdout") || !strcmp(a, "--stderr"))) {
			o->only = strcmp(a, "--stdout") ? 2 : 1;
			continue;
		}
		if ((allowed & OPT_ATTEMPT) &&
		    (!strcmp(a, "--attempt") || !strncmp(a, "--attempt=", 10))) {
			char *end;
			long n;
			if (a[9] == '=')
				val = a + 10;
			else if (++i < argc)
				val = argv[i];
			if (!val) {
				fprintf(stderr, "kfpc %s: --attempt needs a number\n", argv[0]);
				return usage(argv[0], use);
			}
			n = strtol(val, &end, 10);
			if (*end || end == val || n < 1 || n > 1000000) {
				fprintf(stderr, "kfpc %s: --attempt: '%s' is not an attempt number "
					"(1, 2, ...)\n", argv[0], val);
				return 2;
			}
			o->attempt = (int)n;
			continue;
		}
		if ((allowed & OPT_OUT) && (!strcmp(a, "-o") || !strcmp(a, "--output") ||
					    !strncmp(a, "--output=", 9))) {
			if (a[8] == '=')
				val = a + 9;
			else if (++i < argc)
				val = argv[i];
			if (!val || !*val) {
				fprintf(stderr, "kfpc %s: -o needs a path\n", argv[0]);
				return usage(argv[0], use);
			}
			o->out = val;
			continue;
		}
		if (a[0] == '-' && a[1]) {
			fprintf(stderr, "kfpc %s: unknown option '%s'\n", argv[0], a);
			return usage(argv[0], use);
		}
		if (o->npos >= maxpos) {
			fprintf(stderr, "kfpc %s: unexpected argument '%s'\n", argv[0], a);
			return usage(argv[0], use);
		}
		o->pos[o->npos++] = a;
	}
	return 0;
}

/* Open the state store read-only. Returns 0, or an exit code after printing why. MISSING_OK:
 * a missing store is not an error (returns 0 with *st NULL). */
static int open_store(const char *cmd, const struct opts *o, int missing_ok, struct store **st)
{
	char err[512];
	const char *dir = store_default_dir(o->state);
	int rc = store_open(dir, STORE_OPEN_RDONLY, st, err, sizeof err);

	if (rc == 0)
		return 0;
	if (rc == STORE_ENOENT && missing_ok)
		return 0;
	fprintf(stderr, "kfpc %s: %s\n", cmd, err);
	return rc == STORE_ENOENT || rc == STORE_EVERSION || rc == STORE_ECORRUPT ? 1 : 2;
}

/* Exit code for a failed store call: 1 for "not found"-like answers, 2 for system errors. */
static int fail(const char *cmd, struct store *st, int rc)
{
	fprintf(stderr, "kfpc %s: %s\n", cmd, store_errmsg(st));
	return rc == STORE_ENOENT || rc == STORE_EAMBIG || rc == STORE_EINVAL ||
			       rc == STORE_ECORRUPT
		       ? 1
		       : 2;
}

/* --- formatting ------------------------------------------------------------------------- */

/* Local time "YYYY-MM-DD HH:MM:SS" of T, or "-" for 0. */
static const char *fmt_time(double t, char buf[32])
{
	time_t s = (time_t)t;
	struct tm tm;

	if (t <= 0 || !localtime_r(&s, &tm) || !strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm))
		return "-";
	return buf;
}

const char *cmd_fmt_dur(double d, char buf[32])
{
	if (d < 0)
		d = 0;
	if (d < 1)
		snprintf(buf, 32, "%dms", (int)(d * 1000 + 0.5));
	else if (d < 60)
		snprintf(buf, 32, "%.1fs", d);
	else if (d < 3600)
		snprintf(buf, 32, "%dm%02ds", (int)d / 60, (int)d % 60);
	else
		snprintf(buf, 32, "%dh%02dm", (int)d / 3600, ((int)d % 3600) / 60);
	return buf;
}

static const char *fmt_size(uint64_t n, char buf[32])
{
	if (n < 1024)
		snprintf(buf, 32, "%llu B", (unsigned long long)n);
	else if (n < 1024 * 1024)
		snprintf(buf, 32, "%.1f KiB", n / 1024.0);
	else if (n < 1024ULL * 1024 * 1024)
		snprintf(buf, 32, "%.1f MiB", n / (1024.0 * 1024));
	else
		snprintf(buf, 32, "%.1f GiB", n / (1024.0 * 1024 * 1024));
	return buf;
}

static const char *jtext(json_object *v)
{
	return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE)
		 : "null";
}

/* Duration of a run or a step: finished - started (or created), or up to now if running. */
static double span(double created, double started, double finished)
{
	double from = started > 0 ? started : created;

	if (from <= 0)
		return 0;
	return (finished > 0 ? finished : store_now()) - from;
}

#define SHORT_DIGEST 12

/* --- kfpc runs -------------------------------------------------------------------------- */

static json_object *run_json(const struct store_run *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(r->id));
	json_object_object_add(o, "pipeline",
			       r->pipeline ? json_object_new_string(r->pipeline) : NULL);
	json_object_object_add(o, "source", r->source ? json_object_new_string(r->source) : NULL);
	json_object_object_add(o, "status",
			       json_object_new_string(store_run_status_name(r->status)));
	json_object_object_add(o, "reason", r->reason ? json_object_new_string(r->reason) : NULL);
	json_object_object_add(o, "executor",
			       r->executor ? json_object_new_string(r->executor) : NULL);
	json_object_object_add(o, "created", json_object_new_double(r->created));
	json_object_object_add(o, "started", json_object_new_double(r->started));
	json_object_object_add(o, "finished", json_object_new_double(r->finished));
	json_object_object_add(o, "duration",
			       json_object_new_double(span(r->created, r->started, r->finished)));
	json_object_object_add(o, "steps", json_object_new_int64(r->nsteps));
	json_object_object_add(o, "params", json_object_get(r->params));
	json_object_object_add(o, "outputs", json_object_get(r->outputs));
	return o;
}

int cmd_runs(int argc, char **argv)
{
	const char *use = "runs [--state DIR] [--json]";
	struct opts o;
	struct store *st = NULL;
	struct store_run **runs = NULL;
	size_t n = 0;
	int rc;

	if ((rc = parse(argc, argv, OPT_JSON, 0, use, &o)))
		return rc < 0 ? 0 : rc;
	if ((rc = open_store(argv[0], &o, 1, &st)))
		return rc;
	if (st && (rc = store_run_list(st, &runs, &n))) {
		rc = fail(argv[0], st, rc);
		store_close(st);
		return rc;
	}
	if (o.json && n == 0) {
		printf("[]\n");
	} else if (o.json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, run_json(runs[i]));
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_SPACED |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else if (n == 0) {
		fprintf(stderr, "no runs in %s\n", store_default_dir(o.state));
	} else {
		int wid = 3, wp = 8;
		for (size_t i = 0; i < n; i++) {
			int l = (int)strlen(runs[i]->id);
			int lp = runs[i]->pipeline ? (int)strlen(runs[i]->pipeline) : 1;
			wid = l > wid ? l : wid;
			wp = lp > wp ? lp : wp;
		}
		printf("%-*s  %-*s  %-9s  %-19s  %8s  %5s\n", wid, "RUN", wp, "PIPELINE", "STATUS",
		       "CREATED", "DURATION", "STEPS");
		for (size_t i = 0; i < n; i++) {
			struct store_run *r = runs[i];
			char tb[32], db[32];
			printf("%-*s  %-*s  %-9s  %-19s  %8s  %5lld\n", wid, r->id, wp,
			       r->pipeline ? r->pipeline : "-", store_run_status_name(r->status),
			       fmt_time(r->created, tb),
			       cmd_fmt_dur(span(r->created, r->started, r->finished), db),
			       (long long)r->nsteps);
		}
	}
	store_run_list_free(runs, n);
	store_close(st);
	return 0;
}

/* --- kfpc show -------------------------------------------------------------------------- */

static json_object *artrefs_json(const struct store_artref *a, size_t n)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(a[i].name));
		json_object_object_add(o, "digest", json_object_new_string(a[i].digest));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *step_json(const struct store_step *s)
{
	json_object *o = json_object_new_object(), *att = json_object_new_array();

	json_object_object_add(o, "id", json_object_new_string(s->id));
	json_object_object_add(o, "node", json_object_new_string(s->node ? s->node : s->id));
	json_object_object_add(o, "state", json_object_new_string(store_step_state_name(s->state)));
	json_object_object_add(o, "reason", s->reason ? json_object_new_string(s->reason) : NULL);
	json_object_object_add(o, "started", json_object_new_double(s->started));
	json_object_object_add(o, "finished", json_object_new_double(s->finished));
	for (size_t i = 0; i < s->nattempts; i++) {
		const struct store_attempt *a = &s->attempts[i];
		json_object *t = json_object_new_object();
		json_object_object_add(t, "number", json_object_new_int(a->number));
		json_object_object_add(t, "started", json_object_new_double(a->started));
		json_object_object_add(t, "finished", json_object_new_double(a->finished));
		json_object_object_add(t, "exit_code", json_object_new_int(a->exit_code));
		json_object_object_add(t, "signal", json_object_new_int(a->signal));
		json_object_object_add(t, "fail",
				       a->fail ? json_object_new_string(store_fail_kind_name(a->fail))
					       : NULL);
		json_object_object_add(t, "reason",
				       a->reason ? json_object_new_string(a->reason) : NULL);
		json_object_object_add(t, "stdout",
				       a->stdout_path ? json_object_new_string(a->stdout_path) : NULL);
		json_object_object_add(t, "stderr",
				       a->stderr_path ? json_object_new_string(a->stderr_path) : NULL);
		json_object_object_add(t, "executor",
				       a->executor ? json_object_new_string(a->executor) : NULL);
		json_object_object_add(t, "handle",
				       a->handle ? json_object_new_string(a->handle) : NULL);
		json_object_array_add(att, t);
	}
	json_object_object_add(o, "attempts", att);
	json_object_object_add(o, "inputs", json_object_get(s->inputs));
	json_object_object_add(o, "input_artifacts", artrefs_json(s->in_arts, s->nin_arts));
	json_object_object_add(o, "outputs", json_object_get(s->outputs));
	json_object_object_add(o, "output_artifacts", artrefs_json(s->out_arts, s->nout_arts));
	json_object_object_add(o, "cache_key",
			       s->cache_key ? json_object_new_string(s->cache_key) : NULL);
	json_object_object_add(o, "from_cache", json_object_new_boolean(s->from_cache));
	json_object_object_add(o, "cached_from",
			       s->cached_from ? json_object_new_string(s->cached_from) : NULL);
	return o;
}

/* The attempt to describe in the step table: the last one. */
static const struct store_attempt *last_attempt(const struct store_step *s)
{
	return s->nattempts ? &s->attempts[s->nattempts - 1] : NULL;
}

static void print_exit(const struct store_attempt *a, char buf[32])
{
	if (!a || a->finished <= 0)
		snprintf(buf, 32, "-");
	else if (a->signal)
		snprintf(buf, 32, "sig %d", a->signal);
	else if (a->exit_code >= 0)
		snprintf(buf, 32, "%d", a->exit_code);
	else
		snprintf(buf, 32, "-");
}

/* Print "name: Type digest12 (kind, size)" for an artifact reference. */
static void print_artref(struct store *st, const char *label, const struct store_artref *r)
{
	struct store_art *a = NULL;
	char sb[32];

	if (store_art_get(st, r->digest, &a) == 0)
		printf("    %s %s = %.*s (%s%s%s, %s)\n", label, r->name, SHORT_DIGEST, r->digest,
		       a->type ? a->type : "", a->type ? ", " : "", a->kind ? a->kind : "?",
		       fmt_size(a->size, sb));
	else
		printf("    %s %s = %.*s\n", label, r->name, SHORT_DIGEST, r->digest);
	store_art_free(a);
}

static void show_text(struct store *st, const struct store_run *r, struct store_step **steps,
		      size_t n)
{
	char tb[32], db[32];
	int w = 4;

	printf("run       %s\n", r->id);
	printf("pipeline  %s%s%s%s\n", r->pipeline ? r->pipeline : "-", r->source ? " (" : "",
	       r->source ? r->source : "", r->source ? ")" : "");
	printf("status    %s%s%s\n", store_run_status_name(r->status), r->reason ? ": " : "",
	       r->reason ? r->reason : "");
	if (r->executor)
		printf("executor  %s\n", r->executor);
	printf("created   %s\n", fmt_time(r->created, tb));
	if (r->finished > 0)
		printf("finished  %s\n", fmt_time(r->finished, tb));
	printf("duration  %s%s\n", cmd_fmt_dur(span(r->created, r->started, r->finished), db),
	       r->status == STORE_RUN_RUNNING ? " (running)" : "");
	if (r->params && json_object_is_type(r->params, json_type_object) &&
	    json_object_object_length(r->params)) {
		const char *lead = "params    ";
		json_object_object_foreach(r->params, key, val) {
			printf("%s%s = %s\n", lead, key, jtext(val));
			lead = "          ";
		}
	}

	for (size_t i = 0; i < n; i++) {
		int l = (int)strlen(steps[i]->id);
		w = l > w ? l : w;
	}
	printf("\n%-*s  %-9s  %8s  %8s  %5s  REASON\n", w, "STEP", "STATE", "ATTEMPTS", "DURATION",
	       "EXIT");
	if (!n)
		printf("(no steps recorded)\n");
	for (size_t i = 0; i < n; i++) {
		const struct store_step *s = steps[i];
		const struct store_attempt *a = last_attempt(s);
		char eb[32];
		double d = 0;

		if (s->started > 0)
			d = span(0, s->started, s->finished);
		else if (a && a->started > 0)
			d = span(0, a->started, a->finished);
		print_exit(a, eb);
		printf("%-*s  %-9s  %8zu  %8s  %5s", w, s->id, store_step_state_name(s->state),
		       s->nattempts, d > 0 ? cmd_fmt_dur(d, db) : "-", eb);
		printf("%s%s\n", s->reason ? "  " : "", s->reason ? s->reason : "");
	}

	/* details: outputs, inputs that are artifacts, attempts when there was more than one or
	 * one failed, cache provenance */
	for (size_t i = 0; i < n; i++) {
		const struct store_step *s = steps[i];
		int nout = s->outputs && json_object_is_type(s->outputs, json_type_object)
				   ? json_object_object_length(s->outputs) : 0;
		int show_att = s->nattempts > 1 ||
			       (s->nattempts == 1 && s->attempts[0].fail != STORE_FAIL_NONE);

		if (!nout && !s->nout_arts && !s->nin_arts && !show_att && !s->cached_from &&
		    !(s->inputs && json_object_is_type(s->inputs, json_type_object) &&
		      json_object_object_length(s->inputs)))
			continue;
		printf("\n%s\n", s->id);
		if (s->cached_from)
			printf("    cached from %s\n", s->cached_from);
		if (s->inputs && json_object_is_type(s->inputs, json_type_object)) {
			json_object_object_foreach(s->inputs, key, val)
				printf("    in  %s = %s\n", key, jtext(val));
		}
		for (size_t k = 0; k < s->nin_arts; k++)
			print_artref(st, "in ", &s->in_arts[k]);
		if (nout) {
			json_object_object_foreach(s->outputs, key, val)
				printf("    out %s = %s\n", key, jtext(val));
		}
		for (size_t k = 0; k < s->nout_arts; k++)
			print_artref(st, "out", &s->out_arts[k]);
		if (show_att) {
			for (size_t k = 0; k < s->nattempts; k++) {
				const struct store_attempt *a = &s->attempts[k];
				char eb[32];
				print_exit(a, eb);
				printf("    attempt %d  %s  %s  exit %s%s%s%s%s\n", a->number,
				       fmt_time(a->started, tb),
				       a->finished > 0 ? cmd_fmt_dur(a->finished - a->started, db)
						       : "running",
				       eb, a->fail ? "  " : "",
				       a->fail ? store_fail_kind_name(a->fail) : "",
				       a->reason ? ": " : "", a->reason ? a->reason : "");
			}
		}
	}
	if (r->outputs && json_object_is_type(r->outputs, json_type_object) &&
	    json_object_object_length(r->outputs)) {
		printf("\noutputs\n");
		json_object_object_foreach(r->outputs, key, val) {
			struct json_object *dig;
			/* an artifact output prints as kfpc run prints it: sha256:HEX */
			if (json_object_is_type(val, json_type_object) &&
			    json_object_object_get_ex(val, "artifact", &dig))
				printf("    %s = sha256:%s\n", key, json_object_get_string(dig));
			else
				printf("    %s = %s\n", key, jtext(val));
		}
	}
}

int cmd_show(int argc, char **argv)
{
	const char *use = "show RUN [--state DIR] [--json]";
	struct opts o;
	struct store *st = NULL;
	struct store_run *r = NULL;
	struct store_step **steps = NULL;
	size_t n = 0;
	char *id = NULL;
	int rc;

	if ((rc = parse(argc, argv, OPT_JSON, 1, use, &o)))
		return rc < 0 ? 0 : rc;
	if (o.npos != 1) {
		fprintf(stderr, "kfpc show: which run? (see kfpc runs)\n");
		return usage(argv[0], use);
	}
	if ((rc = open_store(argv[0], &o, 0, &st)))
		return rc;
	if ((rc = store_run_resolve(st, o.pos[0], &id)) || (rc = store_run_get(st, id, 0, &r)) ||
	    (rc = store_step_list(st, id, &steps, &n))) {
		rc = fail(argv[0], st, rc);
		goto out;
	}
	if (o.json) {
		json_object *j = run_json(r), *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, step_json(steps[i]));
		json_object_object_add(j, "step_instances", arr);
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else {
		show_text(st, r, steps, n);
	}
	rc = 0;
out:
	store_step_list_free(steps, n);
	store_run_free(r);
	free(id);
	store_close(st);
	return rc;
}

/* --- finding a step instance ------------------------------------------------------------ */

/* Load step NAME of run ID: an instance id, or a node id with exactly one instance. */
static int find_step(const char *cmd, struct store *st, const char *id, const char *name,
		     struct store_step **out)
{
	struct store_step **steps = NULL;
	size_t n = 0, hits = 0, hit = 0;
	int rc;

	if ((rc = store_step_get(st, id, name, out)) == 0)
		return 0;
	if (rc != STORE_ENOENT)
		return fail(cmd, st, rc);
	if ((rc = store_step_list(st, id, &steps, &n)))
		return fail(cmd, st, rc);
	for (size_t i = 0; i < n; i++)
		if (steps[i]->node && !strcmp(steps[i]->node, name)) {
			hits++;
			hit = i;
		}
	if (hits == 1) {
		*out = steps[hit];
		steps[hit] = NULL;
		rc = 0;
	} else if (hits > 1) {
		fprintf(stderr, "kfpc %s: step '%s' has %zu instances in run %s; name one:", cmd,
			name, hits, id);
		for (size_t i = 0, k = 0; i < n && k < 8; i++)
			if (steps[i] && steps[i]->node && !strcmp(steps[i]->node, name))
				fprintf(stderr, "%s %s", k++ ? "," : "", steps[i]->id);
		fprintf(stderr, "%s\n", hits > 8 ? ", ..." : "");
		rc = 1;
	} else {
		fprintf(stderr, "kfpc %s: run %s has no step '%s'", cmd, id, name);
		if (n) {
			fprintf(stderr, " (steps:");
			for (size_t i = 0; i < n && i < 8; i++)
				fprintf(stderr, "%s %s", i ? "," : "", steps[i]->id);
			fprintf(stderr, "%s)", n > 8 ? ", ..." : "");
		}
		fprintf(stderr, "\n");
		rc = 1;
	}
	store_step_list_free(steps, n);
	return rc;
}

/* --- kfpc logs -------------------------------------------------------------------------- */

/* Copy file PATH to OUT. Returns 0, or 1 if it cannot be read (message printed). */
static int cat_file(const char *cmd, const char *path, FILE *out)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0) {
		if (errno == ENOENT) /* no output at all */
			return 0;
		fprintf(stderr, "kfpc %s: cannot read %s: %s\n", cmd, path, strerror(errno));
		return 1;
	}
	fflush(out);
	while ((r = read(fd, buf, sizeof buf)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "kfpc %s: cannot read %s: %s\n", cmd, path, strerror(errno));
			close(fd);
			return 1;
		}
		if (fwrite(buf, 1, (size_t)r, out) != (size_t)r) {
			close(fd);
			return 2;
		}
	}
	close(fd);
	fflush(out);
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	const char *use = "logs RUN STEP [--attempt N] [--stdout|--stderr] [--state DIR]";
	struct opts o;
	struct store *st = NULL;
	struct store_step *s = NULL, *orig = NULL;
	const struct store_step *src;
	const struct store_attempt *a = NULL;
	char *id = NULL;
	int rc;

	if ((rc = parse(argc, argv, OPT_ATTEMPT | OPT_STREAM, 2, use, &o)))
		return rc < 0 ? 0 : rc;
	if (o.npos != 2) {
		fprintf(stderr, "kfpc logs: need a run and a step\n");
		return usage(argv[0], use);
	}
	if ((rc = open_store(argv[0], &o, 0, &st)))
		return rc;
	if ((rc = store_run_resolve(st, o.pos[0], &id))) {
		rc = fail(argv[0], st, rc);
		goto out;
	}
	if ((rc = find_step(argv[0], st, id, o.pos[1], &s)))
		goto out;
	src = s;
	/* a cached step ran nothing: show the logs of the run that produced the result */
	if (!s->nattempts && s->cached_from) {
		const char *slash = strchr(s->cached_from, '/');
		if (slash) {
			char *orun = strndup(s->cached_from, (size_t)(slash - s->cached_from));
			if (orun && store_step_get(st, orun, slash + 1, &orig) == 0) {
				fprintf(stderr, "kfpc logs: %s was cached; these are the logs of %s\n",
					s->id, s->cached_from);
				src = orig;
			}
			free(orun);
		}
	}
	if (!src->nattempts) {
		fprintf(stderr, "kfpc logs: step %s of run %s has no attempts (%s%s%s)\n", s->id,
			id, store_step_state_name(s->state), s->reason ? ": " : "",
			s->reason ? s->reason : "");
		rc = 1;
		goto out;
	}
	if (o.attempt) {
		for (size_t i = 0; i < src->nattempts; i++)
			if (src->attempts[i].number == o.attempt)
				a = &src->attempts[i];
		if (!a) {
			fprintf(stderr, "kfpc logs: step %s has no attempt %d (it has %zu)\n", s->id,
				o.attempt, src->nattempts);
			rc = 1;
			goto out;
		}
	} else {
		a = &src->attempts[src->nattempts - 1];
	}
	rc = 0;
	if (o.only != 2 && a->stdout_path)
		rc = cat_file(argv[0], a->stdout_path, stdout);
	if (!rc && o.only != 1 && a->stderr_path)
		rc = cat_file(argv[0], a->stderr_path, o.only == 2 ? stdout : stderr);
out:
	store_step_free(orig);
	store_step_free(s);
	free(id);
	store_close(st);
	return rc;
}

/* --- resolving RUN/STEP/OUTPUT ---------------------------------------------------------- */

/* Resolve SPEC (RUN/STEP/OUTPUT, or a digest prefix when it has no '/') into *digest. */
static int resolve_artifact(const char *cmd, struct store *st, const char *spec, char **digest,
			    char **run_out, char **step_out)
{
	const char *first = strchr(spec, '/'), *last = strrchr(spec, '/');
	char *run = NULL, *step = NULL, *id = NULL;
	struct store_step *s = NULL;
	int rc;

	*digest = NULL;
	if (!first) {
		if ((rc = store_art_resolve(st, spec, digest)))
			return fail(cmd, st, rc);
		return 0;
	}
	if (first == last || last[1] == '\0' || first == spec || last == first + 1) {
		fprintf(stderr, "kfpc %s: '%s' is not RUN/STEP/OUTPUT or a digest\n", cmd, spec);
		return 2;
	}
	run = strndup(spec, (size_t)(first - spec));
	step = strndup(first + 1, (size_t)(last - first - 1));
	if (!run || !step) {
		rc = 2;
		goto out;
	}
	if ((rc = store_run_resolve(st, run, &id))) {
		rc = fail(cmd, st, rc);
		goto out;
	}
	if ((rc = find_step(cmd, st, id, step, &s)))
		goto out;
	rc = 1;
	if (run_out && step_out) {
		*run_out = id;
		id = NULL;
		*step_out = strdup(s->id);
	}
	for (size_t i = 0; i < s->nout_arts; i++)
		if (!strcmp(s->out_arts[i].name, last + 1)) {
			if (!(*digest = strdup(s->out_arts[i].digest)))
				rc = 2;
			else
				rc = 0;
			break;
		}
	if (rc == 1) {
		json_object *v;
		if (s->outputs && json_object_object_get_ex(s->outputs, last + 1, &v))
			fprintf(stderr, "kfpc %s: output '%s' of step %s is a value (%s), not an "
				"artifact\n", cmd, last + 1, s->id, jtext(v));
		else if (!s->nout_arts && s->state != STORE_STEP_SUCCEEDED &&
			 s->state != STORE_STEP_CACHED)
			fprintf(stderr, "kfpc %s: step %s of run %s has no outputs (%s%s%s)\n", cmd,
				s->id, s->run, store_step_state_name(s->state), s->reason ? ": " : "",
				s->reason ? s->reason : "");
		else {
			fprintf(stderr, "kfpc %s: step %s has no artifact output '%s'", cmd, s->id,
				last + 1);
			for (size_t i = 0; i < s->nout_arts; i++)
				fprintf(stderr, "%s%s", i ? ", " : " (artifact outputs: ",
					s->out_arts[i].name);
			fprintf(stderr, "%s\n", s->nout_arts ? ")" : "");
		}
	}
out:
	store_step_free(s);
	free(id);
	free(run);
	free(step);
	return rc;
}

/* --- kfpc artifact ---------------------------------------------------------------------- */

int cmd_artifact(int argc, char **argv)
{
	const char *use = "artifact get RUN/STEP/OUTPUT|DIGEST -o PATH [--state DIR]";
	struct opts o;
	struct store *st = NULL;
	struct art *art = NULL;
	struct store_art *rec = NULL;
	enum art_kind kind = 0;
	char *digest = NULL, err[512];
	int rc;

	if ((rc = parse(argc, argv, OPT_OUT, 2, use, &o)))
		return rc < 0 ? 0 : rc;
	if (o.npos < 1 || strcmp(o.pos[0], "get")) {
		if (o.npos >= 1)
			fprintf(stderr, "kfpc artifact: unknown subcommand '%s'\n", o.pos[0]);
		return usage(argv[0], use);
	}
	if (o.npos != 2 || !o.out) {
		fprintf(stderr, "kfpc artifact get: need an artifact and -o PATH\n");
		return usage(argv[0], use);
	}
	if ((rc = open_store(argv[0], &o, 0, &st)))
		return rc;
	if ((rc = resolve_artifact(argv[0], st, o.pos[1], &digest, NULL, NULL)))
		goto out;
	if (art_open(store_dir(st), &art, err, sizeof err)) {
		fprintf(stderr, "kfpc artifact: %s\n", err);
		rc = 2;
		goto out;
	}
	if (store_art_get(st, digest, &rec) == 0 && rec->kind)
		kind = art_kind_parse(rec->kind);
	if (!kind && art_kind_of(art, digest, &kind)) {
		fprintf(stderr, "kfpc artifact: %s\n", art_errmsg(art));
		rc = 1;
		goto out;
	}
	if (!strcmp(o.out, "-")) {
		char *p = art_object_path(art, digest, ART_FILE);
		if (kind != ART_FILE) {
			fprintf(stderr, "kfpc artifact: %.*s is a directory; -o - needs a file\n",
				SHORT_DIGEST, digest);
			rc = 2;
		} else {
			rc = p ? cat_file(argv[0], p, stdout) : 2;
		}
		free(p);
		goto out;
	}
	if ((rc = art_export(art, digest, kind, o.out))) {
		fprintf(stderr, "kfpc artifact: %s\n", art_errmsg(art));
		rc = rc == ART_ENOENT || rc == ART_ECORRUPT ? 1 : 2;
		goto out;
	}
	fprintf(stderr, "wrote %s (%s %.*s)\n", o.out, art_kind_name(kind), SHORT_DIGEST, digest);
	rc = 0;
out:
	store_art_free(rec);
	free(digest);
	art_close(art);
	store_close(st);
	return rc;
}

/* --- kfpc lineage ----------------------------------------------------------------------- */

/* Digests already expanded (the lineage of a DAG is printed once per artifact). */
struct seen {
	char **d;
	size_t n, cap;
};

static int seen_has(struct seen *s, const char *d)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->d[i], d))
			return 1;
	return 0;
}

static void seen_add(struct seen *s, const char *d)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		char **p = realloc(s->d, nc * sizeof *p);
		if (!p)
			return;
		s->d = p;
		s->cap = nc;
	}
	if ((s->d[s->n] = strdup(d)))
		s->n++;
}

static void art_desc(struct store *st, const char *digest, char *buf, size_t len)
{
	struct store_art *a = NULL;
	char sb[32];

	if (store_art_get(st, digest, &a) == 0)
		snprintf(buf, len, "%.*s (%s%s%s, %s)", SHORT_DIGEST, digest, a->type ? a->type : "",
			 a->type ? ", " : "", a->kind ? a->kind : "?", fmt_size(a->size, sb));
	else
		snprintf(buf, len, "%.*s", SHORT_DIGEST, digest);
	store_art_free(a);
}

#define MAX_DEPTH 200

/* Print the producer of DIGEST ("PFX produced by ...") and under it its inputs, each artifact
 * input followed by its own lineage, recursively. */
static void lineage(struct store *st, const char *digest, const char *pfx, int depth,
		    struct seen *seen, const char *want_run, const char *want_step)
{
	struct store_art *a = NULL;
	struct store_edge *e = NULL;
	struct store_step *s = NULL;
	size_t ne = 0, nin = 0, k = 0;
	char desc[256], tb[32];
	const char *prun, *pstep, *pname;

	if (depth > MAX_DEPTH) {
		printf("%s... (deeper than %d levels)\n", pfx, MAX_DEPTH);
		return;
	}
	if (seen_has(seen, digest)) {
		printf("%s(lineage shown above)\n", pfx);
		return;
	}
	seen_add(seen, digest);
	store_art_get(st, digest, &a);
	store_lineage_producers(st, digest, &e, &ne);
	/* the producer asked for (RUN/STEP/OUTPUT), else one in the consumer's run, else the
	 * first producer recorded with the artifact, else the first edge */
	prun = a && a->run ? a->run : ne ? e[0].run : NULL;
	pstep = a && a->run ? a->step : ne ? e[0].step : NULL;
	pname = a && a->run ? a->output : ne ? e[0].name : NULL;
	for (size_t i = 0; want_run && i < ne; i++)
		if (!strcmp(e[i].run, want_run) && (!want_step || !strcmp(e[i].step, want_step))) {
			prun = e[i].run;
			pstep = e[i].step;
			pname = e[i].name;
			break;
		}
	if (!prun || !pstep) {
		printf("%sno recorded producer\n", pfx);
		goto out;
	}
	if (store_step_get(st, prun, pstep, &s)) {
		printf("%sproduced by %s/%s output %s (step record missing)\n", pfx, prun, pstep,
		       pname ? pname : "?");
		goto out;
	}
	printf("%sproduced by %s/%s output %s (%s, %s)\n", pfx, prun, pstep,
	       pname ? pname : "?", store_step_state_name(s->state),
	       fmt_time(s->finished > 0 ? s->finished : (a ? a->created : 0), tb));
	if (ne > 1) {
		size_t others = 0;
		for (size_t i = 0; i < ne; i++)
			if (strcmp(e[i].run, prun) || strcmp(e[i].step, pstep))
				others++;
		if (others) {
			size_t shown = 0;
			printf("%salso produced by", pfx);
			for (size_t i = 0; i < ne && shown < 3; i++)
				if (strcmp(e[i].run, prun) || strcmp(e[i].step, pstep))
					printf("%s %s/%s", shown++ ? "," : "", e[i].run, e[i].step);
			printf("%s\n", others > 3 ? ", ..." : "");
		}
	}
	if (s->inputs && json_object_is_type(s->inputs, json_type_object))
		nin = (size_t)json_object_object_length(s->inputs);
	nin += s->nin_arts;
	if (s->inputs && json_object_is_type(s->inputs, json_type_object)) {
		json_object_object_foreach(s->inputs, key, val) {
			k++;
			printf("%s%s in %s = %s\n", pfx, k == nin ? "`-" : "|-", key, jtext(val));
		}
	}
	for (size_t i = 0; i < s->nin_arts; i++) {
		char *sub;
		int last = ++k == nin;

		art_desc(st, s->in_arts[i].digest, desc, sizeof desc);
		printf("%s%s in %s = %s\n", pfx, last ? "`-" : "|-", s->in_arts[i].name, desc);
		if (asprintf(&sub, "%s%s", pfx, last ? "   " : "|  ") < 0)
			continue;
		lineage(st, s->in_arts[i].digest, sub, depth + 1, seen, s->run, NULL);
		free(sub);
	}
	if (!nin)
		printf("%s(no inputs)\n", pfx);
out:
	store_step_free(s);
	store_edges_free(e, ne);
	store_art_free(a);
}

int cmd_lineage(int argc, char **argv)
{
	const char *use = "lineage ARTIFACT [--state DIR]   (ARTIFACT: RUN/STEP/OUTPUT or a digest)";
	struct opts o;
	struct store *st = NULL;
	struct store_edge *c = NULL;
	struct seen seen = {0};
	size_t nc = 0;
	char *digest = NULL, *run = NULL, *step = NULL, desc[256];
	int rc;

	if ((rc = parse(argc, argv, 0, 1, use, &o)))
		return rc < 0 ? 0 : rc;
	if (o.npos != 1) {
		fprintf(stderr, "kfpc lineage: which artifact?\n");
		return usage(argv[0], use);
	}
	if ((rc = open_store(argv[0], &o, 0, &st)))
		return rc;
	if ((rc = resolve_artifact(argv[0], st, o.pos[0], &digest, &run, &step)))
		goto out;
	art_desc(st, digest, desc, sizeof desc);
	printf("artifact %s\n", desc);
	printf("sha256:%s\n", digest);
	lineage(st, digest, "", 0, &seen, run, step);
	if (store_lineage_consumers(st, digest, &c, &nc) == 0 && nc) {
		printf("used by\n");
		for (size_t i = 0; i < nc; i++)
			printf("   %s/%s input %s\n", c[i].run, c[i].step, c[i].name);
	}
	rc = 0;
out:
	for (size_t i = 0; i < seen.n; i++)
		free(seen.d[i]);
	free(seen.d);
	store_edges_free(c, nc);
	free(digest);
	free(run);
	free(step);
	store_close(st);
	return rc;
}

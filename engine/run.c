/* run.c - `kfpc run`: load, bind, open, schedule, record, report (see run.h).
 *
 * Reads like the pipeline it runs:
 *   load      compile FILE.kfp into memory (open_memstream) or read IR.json; ir_load
 *   bind      -p NAME=VALUE by the parameters' types, defaults, constraints
 *   open      state store (store.h), artifact store (art.h), executor (exec.h)
 *   record    the run (IR text, parameters) before anything runs
 *   schedule  sched_run
 *   report    the final status and outputs, recorded first, printed second
 *
 * A run is executed by one process at a time: STATE/locks/RUN is held with flock while it
 * runs (released by the kernel if the process dies, so --resume after kill -9 just works). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "art.h"
#include "compile.h"
#include "diag.h"
#include "exec.h"
#include "ir.h"
#include "progress.h"
#include "run.h"
#include "scheduler.h"
#include "store.h"
#include "value.h"

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* Read a whole file. Returns malloc'd text (NUL-terminated) or NULL with errno. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 65536) {
			char *nb;
			cap = cap ? 2 * cap : 65536;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

json_object *run_bind_params(const struct ir *ir, const char *const *assign, size_t n, char *msg,
			     size_t len)
{
	json_object *params = json_object_new_object();
	size_t i, k;
	char e[512];

	if (!params) {
		snprintf(msg, len, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const char *eq = strchr(assign[i], '=');
		char name[256];
		const struct ir_param *p;
		json_object *v;

		if (!eq || eq == assign[i] || (size_t)(eq - assign[i]) >= sizeof name) {
			snprintf(msg, len, "-p expects NAME=VALUE, got '%s'", assign[i]);
			goto fail;
		}
		memcpy(name, assign[i], (size_t)(eq - assign[i]));
		name[eq - assign[i]] = 0;
		p = ir_param_find(ir, name);
		if (!p) {
			int w = snprintf(msg, len, "unknown parameter '%s' (pipeline %s has ", name,
					 ir->name);
			if (!ir->nparams) {
				snprintf(msg + w, len - w, "no parameters)");
			} else {
				for (k = 0; k < ir->nparams && w > 0 && (size_t)w < len; k++)
					w += snprintf(msg + w, len - w, "%s%s", k ? ", " : "",
						      ir->params[k].name);
				if (w > 0 && (size_t)w < len)
					snprintf(msg + w, len - w, ")");
			}
			goto fail;
		}
		v = value_parse(eq + 1, strlen(eq + 1), p->type, 0, e, sizeof e);
		if (!v) {
			snprintf(msg, len, "parameter '%s': %s", name, e);
			goto fail;
		}
		if (value_check_param(p, v, e, sizeof e) < 0) {
			snprintf(msg, len, "parameter '%s': %s", name, e);
			json_object_put(v);
			goto fail;
		}
		json_object_object_add(params, name, v);
	}
	for (k = 0; k < ir->nparams; k++) {
		const struct ir_param *p = &ir->params[k];
		if (json_object_object_get_ex(params, p->name, NULL))
			continue;
		if (!p->def) {
			snprintf(msg, len, "missing required parameter '%s' (%s): give it with -p %s=VALUE",
				 p->name, p->type, p->name);
			goto fail;
		}
		if (value_check_param(p, p->def, e, sizeof e) < 0) {
			snprintf(msg, len, "parameter '%s': the default is invalid: %s", p->name, e);
			goto fail;
		}
		json_object_object_add(params, p->name, json_object_get(p->def));
	}
	return params;
fail:
	json_object_put(params);
	return NULL;
}

/* Compile a .kfp into IR text (malloc'd), printing diagnostics. Returns NULL on errors with
 * *code set (1 compile errors, 2 I/O). */
static char *compile_to_ir(const char *path, const char *pipeline, FILE *err, size_t *len,
			   int *code, size_t *nerrors)
{
	struct diag *d = diag_new();
	struct compile_opts co = {pipeline, 0};
	char *buf = NULL;
	size_t n = 0;
	FILE *mem;
	int rc, color = isatty(fileno(err)) && !getenv("NO_COLOR");

	*nerrors = 0;
	if (!d) {
		fprintf(err, "kfpc run: out of memory\n");
		*code = 2;
		return NULL;
	}
	mem = open_memstream(&buf, &n);
	if (!mem) {
		fprintf(err, "kfpc run: %s\n", strerror(errno));
		diag_free(d);
		*code = 2;
		return NULL;
	}
	rc = compile_file(path, &co, d, mem);
	fclose(mem);
	*nerrors = (size_t)diag_errors(d);
	if (diag_errors(d) || diag_warnings(d))
		diag_print(d, err, DIAG_FORMAT_TEXT, color);
	diag_free(d);
	if (rc != 0) {
		free(buf);
		*code = rc;
		if (rc == 2 && !n)
			fprintf(err, "kfpc run: cannot compile %s\n", path);
		return NULL;
	}
	*len = n;
	return buf;
}

static int lock_run(const char *state, const char *run_id, FILE *err)
{
	char path[PATH_MAX + 256];
	int fd;

	snprintf(path, sizeof path, "%s/locks", state);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/locks/%s", state, run_id);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(err, "kfpc run: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(err, "kfpc run: run %s is being executed by another kfpc process\n", run_id);
		close(fd);
		return -2;
	}
	return fd;
}

/* A string output is printed as is unless that would break the one-line format (control
 * characters, leading/trailing space, empty, or a leading quote): then as a JSON string. */
static int needs_quoting(const char *t)
{
	size_t n = strlen(t);

	if (!n || t[0] == ' ' || t[n - 1] == ' ' || t[0] == '"')
		return 1;
	for (; *t; t++)
		if ((unsigned char)*t < 0x20 || *t == 0x7f)
			return 1;
	return 0;
}

/* Properties the local executor cannot apply, found while walking the IR. */
struct ignored {
	int volume, node_selector, toleration;
	const char *steps[3]; /* the first few steps using any of them (borrowed from the IR) */
	size_t nsteps, total;
};

static int placement_nonempty(const struct ir_node *n, const char *key)
{
	json_object *pl, *x;

	if (!n->json || !json_object_object_get_ex(n->json, "placement", &pl) ||
	    !json_object_object_get_ex(pl, key, &x))
		return 0;
	if (json_object_is_type(x, json_type_object))
		return json_object_object_length(x) > 0;
	if (json_object_is_type(x, json_type_array))
		return json_object_array_length(x) > 0;
	return 0;
}

static void find_ignored(const struct ir_body *b, struct ignored *g)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct ir_node *n = b->nodes[i];
		if (n->kind == IR_STEP) {
			int v = n->nvolumes > 0, ns = placement_nonempty(n, "node_selector"),
			    t = placement_nonempty(n, "tolerations");
			g->volume |= v;
			g->node_selector |= ns;
			g->toleration |= t;
			if (!(v || ns || t))
				continue;
			g->total++;
			if (g->nsteps < sizeof g->steps / sizeof *g->steps)
				g->steps[g->nsteps++] = n->id;
		} else {
			find_ignored(&n->body, g);
			if (n->kind == IR_PIPELINE)
				find_ignored(&n->fin, g);
		}
	}
}

/* One note per run naming the step properties the local executor ignores. */
static void note_ignored(const struct ir *ir, FILE *err)
{
	struct ignored g = {0};
	const char *sep = "";

	find_ignored(&ir->body, &g);
	find_ignored(&ir->fin, &g);
	if (!g.nsteps)
		return;
	fputs("kfpc: note: the local executor ignores ", err);
	if (g.volume) {
		fprintf(err, "%svolume", sep);
		sep = ", ";
	}
	if (g.node_selector) {
		fprintf(err, "%snode_selector", sep);
		sep = ", ";
	}
	if (g.toleration)
		fprintf(err, "%stoleration", sep);
	fputs(" (used by step ", err);
	for (size_t i = 0; i < g.nsteps; i++)
		fprintf(err, "%s%s", i ? ", " : "", g.steps[i]);
	fputs(g.total > g.nsteps ? ", ...)\n" : ")\n", err);
}

static void print_outputs(const struct ir *ir, json_object *outputs, FILE *out)
{
	size_t i;

	for (i = 0; outputs && i < ir->noutputs; i++) {
		json_object *v;
		const char *digest;
		char *t;
		if (!json_object_object_get_ex(outputs, ir->outputs[i].name, &v))
			continue;
		if (ir->outputs[i].artifact && (digest = value_artifact_digest(v, NULL))) {
			fprintf(out, "%s = sha256:%s\n", ir->outputs[i].name, digest);
			continue;
		}
		if (ir->outputs[i].artifact && json_object_is_type(v, json_type_array)) {
			size_t k;
			fprintf(out, "%s = [", ir->outputs[i].name);
			for (k = 0; k < json_object_array_length(v); k++) {
				const char *dd = value_artifact_digest(json_object_array_get_idx(v, k),
								       NULL);
				fprintf(out, "%s\"sha256:%s\"", k ? "," : "", dd ? dd : "?");
			}
			fprintf(out, "]\n");
			continue;
		}
		t = value_to_text(v);
		if (t && json_object_is_type(v, json_type_string) && needs_quoting(t))
			fprintf(out, "%s = %s\n", ir->outputs[i].name,
				json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			fprintf(out, "%s = %s\n", ir->outputs[i].name, t ? t : "?");
		free(t);
	}
	fflush(out);
}

/* Bad input found before the run could start (compile errors, invalid IR, a bad parameter):
 * record a run in state failed with REASON, so that `kfpc runs` and `kfpc show` tell it, and
 * print its id ("run RUN") on OUT. What is recorded: the pipeline name (the IR's, else --pipeline,
 * else the file path), the IR text when there is one, the parameters as given (strings), the
 * executor. The exit status stays the caller's (SPEC.md §8: 2 for IR and parameter errors). */
static void record_bad_input(struct store *st, const struct run_opts *o, const struct ir *ir,
			     char *text, const char *executor, const char *reason, FILE *out,
			     FILE *err)
{
	char run_id[STORE_RUN_ID_SIZE];
	struct store_run rr = {0};
	json_object *given = json_object_new_object();
	size_t i;

	for (i = 0; given && i < o->nparams; i++) {
		const char *eq = strchr(o->params[i], '=');
		char name[256];
		if (!eq || eq == o->params[i] || (size_t)(eq - o->params[i]) >= sizeof name)
			continue;
		memcpy(name, o->params[i], (size_t)(eq - o->params[i]));
		name[eq - o->params[i]] = 0;
		json_object_object_add(given, name, json_object_new_string(eq + 1));
	}
	if (store_run_id_new(run_id) < 0) {
		fprintf(err, "kfpc run: cannot make a run id\n");
		json_object_put(given);
		return;
	}
	rr.id = run_id;
	rr.pipeline = (char *)(ir && ir->name ? ir->name : o->pipeline ? o->pipeline : o->file);
	rr.ir_json = ir ? text : NULL;
	rr.source = (char *)o->file;
	rr.params = given;
	rr.status = STORE_RUN_FAILED;
	rr.reason = (char *)reason;
	rr.created = rr.started = rr.finished = store_now();
	rr.executor = (char *)executor;
	if (store_run_create(st, &rr) < 0 || store_sync(st) < 0) {
		fprintf(err, "kfpc run: cannot record the failed run: %s\n", store_errmsg(st));
	} else {
		fprintf(out, "run %s\n", run_id);
		fflush(out);
	}
	json_object_put(given);
}

int run_main(const struct run_opts *o, FILE *out, FILE *err)
{
	char *text = NULL, msg[1024], run_id[STORE_RUN_ID_SIZE], abs_state[PATH_MAX];
	size_t len = 0;
	struct ir *ir = NULL;
	json_object *params = NULL;
	struct store *st = NULL;
	struct art *art = NULL;
	const struct exec_ops *ops;
	struct exec *x = NULL;
	struct store_run *old = NULL, rr = {0};
	struct progress *prog = NULL;
	struct sched_config sc = {0};
	struct sched_result res = {0};
	const char *state, *executor = o->executor ? o->executor : "local";
	char *resume_executor = NULL;
	char *prev_run = NULL;
	int code = RUN_EXIT_USAGE, lockfd = -1, rc;
	long ncpu;
	double t0;

	ops = exec_find(executor);
	if (!ops) {
		fprintf(err, "kfpc run: unknown executor '%s' (available: %s)\n", executor,
			exec_names());
		return RUN_EXIT_USAGE;
	}
	state = store_default_dir(o->state_dir);
	rc = store_open(state, STORE_OPEN_CREATE, &st, msg, sizeof msg);
	if (rc < 0) {
		fprintf(err, "kfpc run: %s\n", msg);
		return RUN_EXIT_USAGE;
	}
	if (!realpath(state, abs_state))
		snprintf(abs_state, sizeof abs_state, "%s", state);

	/* load */
	if (o->resume) {
		char *id = NULL;
		if (store_run_resolve(st, o->resume, &id) < 0) {
			fprintf(err, "kfpc run: --resume: %s\n", store_errmsg(st));
			goto out;
		}
		snprintf(run_id, sizeof run_id, "%s", id);
		free(id);
		if (store_run_get(st, run_id, 1, &old) < 0) {
			fprintf(err, "kfpc run: --resume: cannot load run %s: %s\n", run_id,
				store_errmsg(st));
			goto out;
		}
		/* a resumed run keeps the executor it was started with */
		if (old->executor && old->executor[0]) {
			if (o->executor && strcmp(o->executor, old->executor)) {
				fprintf(err,
					"kfpc run: --resume: run %s was started with executor '%s'; "
					"it cannot be resumed with --executor %s (omit --executor)\n",
					run_id, old->executor, o->executor);
				goto out;
			}
			if (!(resume_executor = strdup(old->executor))) {
				fprintf(err, "kfpc run: out of memory\n");
				goto out;
			}
			executor = resume_executor;
			ops = exec_find(executor);
			if (!ops) {
				fprintf(err, "kfpc run: --resume: run %s uses unknown executor '%s' "
					"(available: %s)\n", run_id, executor, exec_names());
				goto out;
			}
		}
		if (old->status != STORE_RUN_RUNNING) {
			fprintf(out, "run %s\n", run_id);
			fprintf(err, "kfpc run: run %s already ended: %s%s%s%s\n", run_id,
				store_run_status_name(old->status), old->reason ? " (" : "",
				old->reason ? old->reason : "", old->reason ? ")" : "");
			if (old->ir_json &&
			    (ir = ir_load(old->ir_json, strlen(old->ir_json), msg, sizeof msg)))
				print_outputs(ir, old->outputs, out);
			code = old->status == STORE_RUN_SUCCEEDED ? RUN_EXIT_OK : RUN_EXIT_FAILED;
			goto out;
		}
		if (!old->ir_json) {
			fprintf(err, "kfpc run: --resume: run %s has no IR\n", run_id);
			goto out;
		}
		ir = ir_load(old->ir_json, strlen(old->ir_json), msg, sizeof msg);
		if (!ir) {
			fprintf(err, "kfpc run: run %s: %s\n", run_id, msg);
			goto out;
		}
		params = json_object_get(old->params);
		if (!params)
			params = json_object_new_object();
	} else {
		if (!o->file) {
			fprintf(err, "kfpc run: missing FILE (a .kfp pipeline or IR JSON)\n");
			goto out;
		}
		if (ends_with(o->file, ".json")) {
			text = slurp(o->file, &len);
			if (!text) {
				fprintf(err, "kfpc run: cannot read %s: %s\n", o->file, strerror(errno));
				goto out;
			}
		} else {
			int c = 2;
			size_t nerr = 0;
			text = compile_to_ir(o->file, o->pipeline, err, &len, &c, &nerr);
			if (!text) { /* as kfpc compile: 1 the pipeline has errors, 2 I/O */
				code = c == 1 ? RUN_EXIT_FAILED : RUN_EXIT_USAGE;
				if (c == 1) {
					snprintf(msg, sizeof msg, "%s: the pipeline has %zu compile "
						 "error%s", o->file, nerr, nerr == 1 ? "" : "s");
					record_bad_input(st, o, NULL, NULL, executor, msg, out, err);
				}
				goto out;
			}
		}
		ir = ir_load(text, len, msg, sizeof msg);
		if (!ir) {
			char reason[1200];
			fprintf(err, "kfpc run: %s: %s\n", o->file, msg);
			snprintf(reason, sizeof reason, "invalid IR: %s: %s", o->file, msg);
			record_bad_input(st, o, NULL, NULL, executor, reason, out, err);
			goto out;
		}
		params = run_bind_params(ir, o->params, o->nparams, msg, sizeof msg);
		if (!params) {
			fprintf(err, "kfpc run: %s\n", msg);
			record_bad_input(st, o, ir, text, executor, msg, out, err);
			goto out;
		}
		if (store_run_id_new(run_id) < 0) {
			fprintf(err, "kfpc run: cannot make a run id\n");
			goto out;
		}
	}

	/* open the rest */
	rc = art_open(abs_state, &art, msg, sizeof msg);
	if (rc < 0) {
		fprintf(err, "kfpc run: %s\n", msg);
		goto out;
	}
	lockfd = lock_run(abs_state, run_id, err);
	if (lockfd < 0)
		goto out;
	{
		struct exec_config ec = {abs_state, run_id, 0};
		if (ops->open(&ec, &x, msg, sizeof msg) < 0) {
			fprintf(err, "kfpc run: executor %s: %s\n", executor, msg);
			goto out;
		}
		if (!strcmp(executor, "local"))
			note_ignored(ir, err);
	}

	/* record the run before anything runs (failing that is an I/O error: exit 2) */
	t0 = store_now();
	if (!old) {
		rr.id = run_id;
		rr.pipeline = (char *)ir->name;
		rr.ir_json = text;
		rr.source = (char *)o->file;
		rr.params = params;
		rr.status = STORE_RUN_RUNNING;
		rr.created = rr.started = t0;
		rr.executor = (char *)executor;
		if (store_run_create(st, &rr) < 0) {
			fprintf(err, "kfpc run: cannot record the run: %s\n", store_errmsg(st));
			goto out;
		}
	}
	code = RUN_EXIT_FAILED;
	fprintf(out, "run %s\n", run_id);
	fflush(out);
	if (o->explain) {
		struct store_run **runs = NULL;
		size_t n = 0, i;
		if (store_run_list(st, &runs, &n) == 0) {
			for (i = 0; i < n; i++)
				if (runs[i]->pipeline && !strcmp(runs[i]->pipeline, ir->name) &&
				    strcmp(runs[i]->id, run_id)) {
					prev_run = strdup(runs[i]->id);
					break;
				}
			store_run_list_free(runs, n);
		}
	}

	prog = progress_new(err, isatty(fileno(err)), isatty(fileno(err)) && !getenv("NO_COLOR"));
	progress_header(prog, run_id, ir->name);
	if (old)
		progress_message(prog, "resuming run %s", run_id);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	sc.ir = ir;
	sc.st = st;
	sc.art = art;
	sc.ops = ops;
	sc.x = x;
	sc.prog = prog;
	sc.run_id = run_id;
	sc.state_dir = abs_state;
	sc.executor = executor;
	sc.params = params;
	sc.parallelism = o->parallelism > 0 ? o->parallelism : (ncpu > 0 ? (int)ncpu : 1);
	sc.no_cache = o->no_cache;
	sc.resume = old != NULL;
	sc.explain = o->explain ? err : NULL;
	sc.prev_run = prev_run;
	/* a record without a start (0) counts from this process, not from the epoch */
	sc.run_started = old && old->started > 0 ? old->started : t0;
	fflush(err); /* what was said before the run starts comes before its progress */
	if (sched_run(&sc, &res) < 0) {
		fprintf(err, "kfpc run: %s\n", res.reason);
		store_run_set_status(st, run_id, STORE_RUN_FAILED, res.reason, store_now());
		goto out;
	}

	/* record the end, then report it */
	rr = (struct store_run){0};
	{
		struct store_run *cur = NULL;
		if (store_run_get(st, run_id, 0, &cur) == 0) {
			cur->status = res.status;
			free(cur->reason);
			cur->reason = res.reason[0] ? strdup(res.reason) : NULL;
			cur->finished = store_now();
			if (cur->started <= 0)
				cur->started = sc.run_started;
			json_object_put(cur->outputs);
			cur->outputs = json_object_get(res.outputs);
			rc = store_run_put(st, cur);
			store_run_free(cur);
		} else {
			rc = -1;
		}
		if (rc < 0 && store_run_set_status(st, run_id, res.status == STORE_RUN_SUCCEEDED ?
								 STORE_RUN_FAILED : res.status,
						    res.reason[0] ? res.reason : store_errmsg(st),
						    store_now()) < 0) {
			fprintf(err, "kfpc run: cannot record the end of run %s: %s\n", run_id,
				store_errmsg(st));
			res.status = STORE_RUN_FAILED;
		} else if (rc < 0) {
			fprintf(err, "kfpc run: cannot record the outputs of run %s: %s\n", run_id,
				store_errmsg(st));
			res.status = STORE_RUN_FAILED;
		}
	}
	if (store_sync(st) < 0)
		fprintf(err, "kfpc run: warning: %s\n", store_errmsg(st));
	progress_free(prog);
	prog = NULL;
	if (res.status == STORE_RUN_SUCCEEDED) {
		fprintf(err, "run %s succeeded (%.1fs)\n", run_id, store_now() - sc.run_started);
		code = RUN_EXIT_OK;
	} else {
		fprintf(err, "run %s %s%s%s\n", run_id, store_run_status_name(res.status),
			res.reason[0] ? ": " : "", res.reason);
		code = RUN_EXIT_FAILED;
	}
	fflush(err);
	print_outputs(ir, res.outputs, out);
out:
	progress_free(prog);
	json_object_put(res.outputs);
	if (x)
		ops->close(x);
	if (lockfd >= 0)
		close(lockfd);
	art_close(art);
	store_close(st);
	store_run_free(old);
	json_object_put(params);
	ir_free(ir);
	free(text);
	free(prev_run);
	free(resume_executor);
	return code;
}

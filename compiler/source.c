/* source.c - loading a program: the root file and its imports, each parsed once (SPEC §4.1).
 *
 * Files are identified by a key: the realpath() of a file on disk, or "<std>/std/x.kfp" for an
 * embedded standard library file. Loading is a depth-first walk over import statements; a file is
 * "open" while its imports are being loaded, so an import of an open file closes a cycle (E502,
 * with one note per hop). Every file record, tree and string lives in the program's arena; file
 * texts are handed to the diag collector (diag_add_file_owned: no copy), which the parser scans
 * in place.
 *
 * Import resolution:
 *   "std/x" or "std/x.kfp"  KFPC_STDLIB_PATH/std/x.kfp when that variable is set and the file
 *                           exists, else the embedded stdlib_files[] entry "std/x.kfp".
 *   anything else           relative to the importing file's directory (absolute paths as is),
 *                           ".kfp" appended when missing. A relative import inside a standard
 *                           library file names another standard library file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"
#include "source.h"
#include "stdlib_data.h"

#define MAX_IMPORT_DEPTH 200

struct loader {
	struct src_program *prog;
	struct diag *d;
	int cap;
	char *state; /* per file: 0 new, 1 open (loading its imports), 2 done */
	int *stack;  /* open files, outermost first */
	struct ast_import **via; /* via[i]: the import statement in stack[i] that led to stack[i+1] */
	int depth;
	int *post; /* files in post-order (malloc'd) */
	int npost;
};

/* Reads PATH into a malloc'd buffer followed by two NUL bytes (as diag_add_file_owned() takes it).
 * Returns 0, or an errno value (EFBIG: too large, EISDIR: a directory). */
static int read_file(const char *path, char **text, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0, cap;
	int fd, err = 0;

	*text = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno;
	if (fstat(fd, &st) < 0) {
		err = errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		err = EISDIR;
		goto out;
	}
	if (S_ISREG(st.st_mode) && (size_t)st.st_size > SRC_MAX_FILE_SIZE) {
		err = EFBIG;
		goto out;
	}
	/* a regular file: its size, the two NULs and one byte for the read() that sees the end */
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 3 : 4096;
	if (!(buf = malloc(cap))) {
		err = ENOMEM;
		goto out;
	}
	ast_advise_huge(buf, cap); /* a big source: a few huge pages */
	for (;;) {
		ssize_t r;

		if (n + 2 >= cap) {
			char *nb;

			if (cap > SRC_MAX_FILE_SIZE) {
				err = EFBIG;
				goto out;
			}
			if (!(nb = realloc(buf, cap * 2))) {
				err = ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n - 2);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	buf[n + 1] = 0;
	*text = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

static const char *errmsg(int err)
{
	if (err == EFBIG)
		return "file too large (the limit is 512 MiB)";
	return strerror(err);
}

static char *arena_printf(struct src_program *p, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = ast_alloc(p->arena, la + lb + lc + 1);

	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

static int find_key(const struct src_program *p, const char *key)
{
	for (int i = 0; i < p->nfiles; i++)
		if (strcmp(p->files[i]->key, key) == 0)
			return i;
	return -1;
}

/* Adds a file record for TEXT (registered with diag) and parses it. Returns its index, or -1
 * when out of memory. With OWNED, TEXT is a read_file() buffer that diag takes over (*OWNED is
 * cleared once it did); otherwise diag copies TEXT. */
static int add_file(struct loader *ld, const char *path, const char *key, int is_std,
		    const char *text, size_t len, char **owned)
{
	struct src_program *p = ld->prog;
	struct src_file *f;
	int id;

	if (p->nfiles == ld->cap) {
		int cap = ld->cap ? ld->cap * 2 : 8;
		struct src_file **nf = ast_alloc(p->arena, (size_t)cap * sizeof *nf);
		char *ns = realloc(ld->state, (size_t)cap);

		if (!nf || !ns) {
			if (ns)
				ld->state = ns;
			return -1;
		}
		ld->state = ns;
		if (p->nfiles)
			memcpy(nf, p->files, (size_t)p->nfiles * sizeof *nf);
		p->files = nf;
		ld->cap = cap;
	}
	if (!(f = ast_alloc(p->arena, sizeof *f)))
		return -1;
	if (owned) {
		if ((id = diag_add_file_owned(ld->d, path, *owned, len)) < 0)
			return -1;
		*owned = NULL;
	} else if ((id = diag_add_file(ld->d, path, text, len)) < 0) {
		return -1;
	}
	f->file = id;
	f->path = diag_file_path(ld->d, id);
	f->key = ast_strndup(p->arena, key, strlen(key));
	f->is_std = is_std;
	if (!f->key || !(f->ast = parse_file(p->arena, ld->d, id)))
		return -1;
	ld->state[p->nfiles] = 0;
	p->files[p->nfiles] = f;
	return p->nfiles++;
}

/* Returns the embedded standard library entry NAME ("std/x.kfp"), or NULL. */
static const struct stdlib_file *embedded(const char *name)
{
	for (size_t i = 0; i < stdlib_nfiles; i++)
		if (strcmp(stdlib_files[i].path, name) == 0)
			return &stdlib_files[i];
	return NULL;
}

/* Returns 1 if IMPORT text S (LEN bytes) is usable as a path: non-empty, no NUL. */
static int sane_path(const char *s, size_t len)
{
	return len > 0 && len < PATH_MAX / 2 && !memchr(s, 0, len);
}

/* Returns the directory part of PATH ("a/b.kfp" -> "a/", "b.kfp" -> ""), in the arena. */
static char *dir_of(struct src_program *p, const char *path)
{
	const char *slash = strrchr(path, '/');

	return ast_strndup(p->arena, path, slash ? (size_t)(slash - path + 1) : 0);
}

/* Returns the alias an import gets by default: the last path component without ".kfp". */
static const char *default_alias(struct src_program *p, const char *s)
{
	const char *base = strrchr(s, '/');
	size_t n;

	base = base ? base + 1 : s;
	n = strlen(base);
	if (n > 4 && strcmp(base + n - 4, ".kfp") == 0)
		n -= 4;
	return ast_strndup(p->arena, base, n);
}

static int load_imports(struct loader *ld, int fi);

/* Returns P grown to hold N ints, or NULL (P freed) when out of memory. */
static int *realloc_ints(int *p, int n)
{
	int *np = realloc(p, (size_t)n * sizeof *np);

	if (!np)
		free(p);
	return np;
}

/* Resolves and loads the import IM of file FI. Returns the target index, -1 if missing or a
 * cycle (reported), -2 when out of memory. */
static int resolve(struct loader *ld, int fi, struct ast_import *im)
{
	struct src_program *p = ld->prog;
	struct src_file *from = p->files[fi];
	const char *s = im->path->u.str.s;
	size_t slen = im->path->u.str.len;
	const char *ext = slen >= 4 && strcmp(s + slen - 4, ".kfp") == 0 ? "" : ".kfp";
	char *std = NULL, *disk = NULL, *key = NULL;
	char real[PATH_MAX];
	int t;

	if (!sane_path(s, slen)) {
		diag_error(ld->d, "E501", im->path->loc, "import path is empty or invalid");
		return -1;
	}
	if (strncmp(s, "std/", 4) == 0 || (from->is_std && s[0] != '/' && !strstr(s, ".."))) {
		const char *dir = getenv("KFPC_STDLIB_PATH");
		const struct stdlib_file *e;

		if (strncmp(s, "std/", 4) == 0)
			std = arena_printf(p, s, ext, "");
		else
			std = arena_printf(p, "std/", s, ext); /* relative inside the stdlib */
		if (!std)
			return -2;
		if (dir && *dir) {
			char *cand = arena_printf(p, dir, "/", std);
			char *text;
			size_t len;
			int err;

			if (!cand)
				return -2;
			if (realpath(cand, real)) {
				if ((t = find_key(p, real)) >= 0)
					return t;
				if ((err = read_file(cand, &text, &len)) != 0) {
					diag_error(ld->d, "E501", im->path->loc, "cannot read import '%s': %s: %s",
						   s, cand, errmsg(err));
					return -1;
				}
				t = add_file(ld, cand, real, 1, text, len, &text);
				free(text);
				return t < 0 ? -2 : t;
			}
		}
		if (!(key = arena_printf(p, "<std>/", std, "")))
			return -2;
		if ((t = find_key(p, key)) >= 0)
			return t;
		if (!(e = embedded(std))) {
			diag_error(ld->d, "E501", im->path->loc,
				   "import '%s' not found: the standard library has no %s", s, std);
			return -1;
		}
		t = add_file(ld, std, key, 1, e->text, e->len, NULL);
		return t < 0 ? -2 : t;
	}
	if (s[0] == '/')
		disk = arena_printf(p, s, ext, "");
	else
		disk = arena_printf(p, dir_of(p, from->path) ? dir_of(p, from->path) : "", s, ext);
	if (!disk)
		return -2;
	if (!realpath(disk, real)) {
		diag_error(ld->d, "E501", im->path->loc, "import '%s' not found (looked for %s)", s,
			   disk);
		return -1;
	}
	if ((t = find_key(p, real)) >= 0)
		return t;
	{
		char *text;
		size_t len;
		int err = read_file(disk, &text, &len);

		if (err) {
			diag_error(ld->d, "E501", im->path->loc, "cannot read import '%s': %s: %s", s,
				   disk, errmsg(err));
			return -1;
		}
		t = add_file(ld, disk, real, 0, text, len, &text);
		free(text);
	}
	return t < 0 ? -2 : t;
}

/* Reports the cycle closed by import IM of the innermost open file, back to file T. */
static void report_cycle(struct loader *ld, struct ast_import *im, int t)
{
	struct src_program *p = ld->prog;
	int k = 0;
	size_t n = 0;
	char *chain;

	while (k < ld->depth && ld->stack[k] != t)
		k++;
	for (int i = k; i < ld->depth; i++)
		n += strlen(p->files[ld->stack[i]]->path) + 4;
	n += strlen(p->files[t]->path) + 1;
	if (!(chain = malloc(n)))
		return;
	chain[0] = 0;
	for (int i = k; i < ld->depth; i++) {
		strcat(chain, p->files[ld->stack[i]]->path);
		strcat(chain, " -> ");
	}
	strcat(chain, p->files[t]->path);
	diag_error(ld->d, "E502", im->path->loc, "import cycle: %s", chain);
	free(chain);
	for (int i = k; i < ld->depth - 1; i++)
		diag_note(ld->d, ld->via[i]->path->loc, "%s imports %s", p->files[ld->stack[i]]->path,
			  p->files[ld->stack[i + 1]]->path);
	diag_note(ld->d, im->path->loc, "%s imports %s", p->files[ld->stack[ld->depth - 1]]->path,
		  p->files[t]->path);
}

/* Loads every import of file FI (depth-first). Returns 0 or -1 when out of memory. */
static int load_imports(struct loader *ld, int fi)
{
	struct src_program *p = ld->prog;
	struct ast_file *ast = p->files[fi]->ast;
	struct src_import *imps;

	ld->state[fi] = 1;
	ld->stack[ld->depth] = fi;
	ld->depth++;
	imps = ast->nimports ? ast_alloc(p->arena, (size_t)ast->nimports * sizeof *imps) : NULL;
	if (ast->nimports && !imps)
		return -1;
	p->files[fi]->imports = imps;
	p->files[fi]->nimports = ast->nimports;
	for (int i = 0; i < ast->nimports; i++) {
		struct ast_import *im = ast->imports[i];
		struct src_import *si = &imps[i];
		int t;

		si->decl = im;
		if (im->alias.s) {
			si->alias = im->alias.s;
			si->alias_loc = im->alias.loc;
		} else {
			if (!(si->alias = default_alias(p, im->path->u.str.s)))
				return -1;
			si->alias_loc = im->path->loc;
		}
		si->target = -1;
		if ((t = resolve(ld, fi, im)) == -2)
			return -1;
		if (t < 0)
			continue;
		if (ld->state[t] == 1) {
			report_cycle(ld, im, t);
			continue;
		}
		si->target = t;
		if (ld->state[t] == 0) {
			if (ld->depth >= MAX_IMPORT_DEPTH) {
				diag_error(ld->d, "E502", im->path->loc,
					   "imports nested more than %d files deep", MAX_IMPORT_DEPTH);
				si->target = -1;
				continue;
			}
			ld->via[ld->depth - 1] = im;
			if (load_imports(ld, t) < 0)
				return -1;
			/* load_imports may have grown p->files; ast and imps stay valid (arena) */
		}
	}
	ld->depth--;
	ld->state[fi] = 2;
	if (!(ld->post = realloc_ints(ld->post, ld->npost + 1)))
		return -1;
	ld->post[ld->npost++] = fi;
	return 0;
}

/* Shared tail of src_load and src_load_text: the root is file 0. */
static int load_all(struct loader *ld, struct src_program **out)
{
	struct src_program *p = ld->prog;

	ld->stack = calloc(MAX_IMPORT_DEPTH + 1, sizeof *ld->stack);
	ld->via = calloc(MAX_IMPORT_DEPTH + 1, sizeof *ld->via);
	if (!ld->stack || !ld->via || load_imports(ld, 0) < 0)
		goto oom;
	if (!(p->order = ast_alloc(p->arena, (size_t)ld->npost * sizeof *p->order)))
		goto oom;
	memcpy(p->order, ld->post, (size_t)ld->npost * sizeof *p->order);
	free(ld->stack);
	free(ld->via);
	free(ld->state);
	free(ld->post);
	*out = p;
	return diag_errors(ld->d) ? 1 : 0;
oom:
	free(ld->stack);
	free(ld->via);
	free(ld->state);
	free(ld->post);
	src_free(p);
	return -1;
}

static struct src_program *prog_new(void)
{
	struct src_program *p = calloc(1, sizeof *p);

	if (p && !(p->arena = ast_arena_new())) {
		free(p);
		return NULL;
	}
	return p;
}

int src_load(const char *path, struct diag *d, struct src_program **out)
{
	struct loader ld = {0};
	char real[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	int err;

	*out = NULL;
	if ((err = read_file(path, &text, &len)) != 0) {
		int id = diag_add_file(d, path, NULL, 0);

		diag_error(d, NULL, (struct loc){id, 0, 0, 0, 0}, "cannot read: %s", errmsg(err));
		return 2;
	}
	if (!(ld.prog = prog_new())) {
		free(text);
		return -1;
	}
	ld.d = d;
	if (!realpath(path, real))
		snprintf(real, sizeof real, "%s", path);
	if (add_file(&ld, path, real, 0, text, len, &text) < 0) {
		free(text);
		free(ld.state);
		src_free(ld.prog);
		return -1;
	}
	free(text);
	return load_all(&ld, out);
}

int src_load_text(const char *name, const char *text, size_t len, struct diag *d,
		  struct src_program **out)
{
	struct loader ld = {0};
	char key[64];

	*out = NULL;
	if (len > SRC_MAX_FILE_SIZE) {
		int id = diag_add_file(d, name, NULL, 0);

		diag_error(d, NULL, (struct loc){id, 0, 0, 0, 0}, "cannot read: %s", errmsg(EFBIG));
		return 2;
	}
	if (!(ld.prog = prog_new()))
		return -1;
	ld.d = d;
	snprintf(key, sizeof key, "<memory>/%p", (const void *)text);
	if (add_file(&ld, name, key, 0, text, len, NULL) < 0) {
		free(ld.state);
		src_free(ld.prog);
		return -1;
	}
	return load_all(&ld, out);
}

void src_free(struct src_program *p)
{
	if (!p)
		return;
	ast_arena_free(p->arena);
	free(p);
}

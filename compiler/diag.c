/* diag.c - collecting and printing diagnostics (SPEC §7, §8).
 *
 * Diagnostics are appended in report order (seq) and sorted only when printed: by file id
 * (registration order), line, column, then seq. Each registered file keeps a copy of its text;
 * line start offsets are computed on first use when printing, so reporting is O(1) and printing
 * N diagnostics costs one pass over each file that has any.
 *
 * kfpc:ignore comments are stored per file in line order (the lexer registers them while scanning
 * forward) and found by binary search. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "diag.h"

struct ignore {
	int line;
	int standalone;
	char *codes;         /* malloc'd when longer than inl holds, else NULL (see ign_codes()) */
	size_t seq;          /* registration order (diag_rollback) */
	char inl[24];        /* short code lists ("W002"), NUL-terminated: no malloc per comment */
};

/* Returns the code list of IG. */
static const char *ign_codes(const struct ignore *ig)
{
	return ig->codes ? ig->codes : ig->inl;
}

struct file {
	char *path;
	char *text; /* copy followed by two NUL bytes (see diag_file_scanbuf), or NULL */
	size_t len;
	size_t *lines; /* start offset of each line (lazily computed by print) */
	int nlines;
	struct ignore *ign;
	int nign, capign;
};

struct note {
	struct loc loc;
	char *msg;
};

struct entry {
	enum diag_severity sev;
	char code[16];
	struct loc loc;
	char *msg;
	struct note *notes;
	int nnotes;
	size_t seq;
};

struct diag {
	struct file *files;
	int nfiles, capfiles;
	struct entry *ents;
	size_t nents, capents;
	int nerrors, nwarnings;
	int werror;
	int last_dropped; /* the last error/warning was suppressed (or lost): drop its notes */
	size_t ign_seq;   /* kfpc:ignore comments registered so far */
};

struct diag *diag_new(void)
{
	return calloc(1, sizeof(struct diag));
}

void diag_free(struct diag *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->nfiles; i++) {
		struct file *f = &d->files[i];

		free(f->path);
		free(f->text);
		free(f->lines);
		for (int j = 0; j < f->nign; j++)
			free(f->ign[j].codes);
		free(f->ign);
	}
	free(d->files);
	for (size_t i = 0; i < d->nents; i++) {
		free(d->ents[i].msg);
		for (int j = 0; j < d->ents[i].nnotes; j++)
			free(d->ents[i].notes[j].msg);
		free(d->ents[i].notes);
	}
	free(d->ents);
	free(d);
}

int diag_add_file(struct diag *d, const char *path, const char *text, size_t len)
{
	struct file *f;

	if (d->nfiles == d->capfiles) {
		int cap = d->capfiles ? d->capfiles * 2 : 8;
		struct file *nf = realloc(d->files, (size_t)cap * sizeof *nf);

		if (!nf)
			return -1;
		d->files = nf;
		d->capfiles = cap;
	}
	f = &d->files[d->nfiles];
	memset(f, 0, sizeof *f);
	if (!(f->path = strdup(path ? path : "<input>")))
		return -1;
	if (text) {
		if (len >= SIZE_MAX - 2 || !(f->text = malloc(len + 2))) {
			free(f->path);
			return -1;
		}
		if (len)
			memcpy(f->text, text, len);
		f->text[len] = 0;
		f->text[len + 1] = 0;
		f->len = len;
	}
	return d->nfiles++;
}

int diag_add_file_owned(struct diag *d, const char *path, char *text, size_t len)
{
	int id = diag_add_file(d, path, NULL, 0);

	if (id < 0)
		return -1;
	d->files[id].text = text;
	d->files[id].len = len;
	return id;
}

int diag_nfiles(const struct diag *d)
{
	return d->nfiles;
}

const char *diag_file_path(const struct diag *d, int file)
{
	if (file < 0 || file >= d->nfiles)
		return NULL;
	return d->files[file].path;
}

const char *diag_file_text(const struct diag *d, int file, size_t *len)
{
	if (file < 0 || file >= d->nfiles || !d->files[file].text)
		return NULL;
	if (len)
		*len = d->files[file].len;
	return d->files[file].text;
}

char *diag_file_scanbuf(struct diag *d, int file, size_t *len)
{
	if (file < 0 || file >= d->nfiles || !d->files[file].text)
		return NULL;
	if (len)
		*len = d->files[file].len;
	return d->files[file].text;
}

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

static struct entry *add_entry(struct diag *d, enum diag_severity sev, const char *code,
			       struct loc loc, const char *fmt, va_list ap)
{
	struct entry *e;

	if (d->nents == d->capents) {
		size_t cap = d->capents ? d->capents * 2 : 16;
		struct entry *ne = realloc(d->ents, cap * sizeof *ne);

		if (!ne)
			return NULL;
		d->ents = ne;
		d->capents = cap;
	}
	e = &d->ents[d->nents];
	memset(e, 0, sizeof *e);
	e->sev = sev;
	snprintf(e->code, sizeof e->code, "%s", code ? code : "");
	e->loc = loc;
	e->msg = vfmt(fmt, ap);
	e->seq = d->nents++;
	return e;
}

void diag_verror(struct diag *d, const char *code, struct loc loc, const char *fmt, va_list ap)
{
	d->nerrors++;
	d->last_dropped = add_entry(d, DIAG_ERROR, code, loc, fmt, ap) == NULL;
}

void diag_error(struct diag *d, const char *code, struct loc loc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_verror(d, code, loc, fmt, ap);
	va_end(ap);
}

int diag_vwarning(struct diag *d, const char *code, struct loc loc, const char *fmt, va_list ap)
{
	if (diag_is_suppressed(d, code, loc)) {
		d->last_dropped = 1;
		return 0;
	}
	d->nwarnings++;
	d->last_dropped = add_entry(d, DIAG_WARNING, code, loc, fmt, ap) == NULL;
	return 1;
}

int diag_warning(struct diag *d, const char *code, struct loc loc, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = diag_vwarning(d, code, loc, fmt, ap);
	va_end(ap);
	return r;
}

void diag_note(struct diag *d, struct loc loc, const char *fmt, ...)
{
	struct entry *e;
	struct note *nn;
	va_list ap;

	if (d->nents == 0 || d->last_dropped)
		return;
	e = &d->ents[d->nents - 1];
	if (!(nn = realloc(e->notes, (size_t)(e->nnotes + 1) * sizeof *nn)))
		return;
	e->notes = nn;
	nn = &e->notes[e->nnotes];
	nn->loc = loc;
	va_start(ap, fmt);
	nn->msg = vfmt(fmt, ap);
	va_end(ap);
	if (nn->msg)
		e->nnotes++;
}

void diag_ignore_add(struct diag *d, int file, int line, const char *codes, size_t len,
		     int standalone)
{
	struct file *f;
	struct ignore *ig;

	if (file < 0 || file >= d->nfiles)
		return;
	f = &d->files[file];
	if (f->nign == f->capign) {
		int cap = f->capign ? f->capign * 2 : 8;

		if (!(ig = realloc(f->ign, (size_t)cap * sizeof *ig)))
			return;
		f->ign = ig;
		f->capign = cap;
	}
	ig = &f->ign[f->nign];
	if (len < sizeof ig->inl) {
		ig->codes = NULL;
		memcpy(ig->inl, codes, len);
		ig->inl[len] = 0;
	} else if (!(ig->codes = strndup(codes, len))) {
		return;
	}
	ig->line = line;
	ig->standalone = standalone;
	ig->seq = d->ign_seq++;
	/* keep line order even if a caller registers out of order */
	int i = f->nign++;
	while (i > 0 && f->ign[i - 1].line > f->ign[i].line) {
		struct ignore t = f->ign[i - 1];
		f->ign[i - 1] = f->ign[i];
		f->ign[i] = t;
		i--;
	}
}

/* Returns 1 if the comma/space separated list CODES contains CODE. */
static int codes_has(const char *codes, const char *code)
{
	size_t n = strlen(code);
	const char *p = codes;

	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		const char *s = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - s) == n && n && strncmp(s, code, n) == 0)
			return 1;
	}
	return 0;
}

/* Returns the index of the first ignore entry of F with line >= LINE. */
static int ign_lower(const struct file *f, int line)
{
	int lo = 0, hi = f->nign;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (f->ign[mid].line < line)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int diag_is_suppressed(const struct diag *d, const char *code, struct loc loc)
{
	const struct file *f;

	if (!code || loc.file < 0 || loc.file >= d->nfiles || loc.line <= 0)
		return 0;
	f = &d->files[loc.file];
	for (int i = ign_lower(f, loc.line - 1); i < f->nign && f->ign[i].line <= loc.line; i++) {
		const struct ignore *ig = &f->ign[i];

		if (ig->line == loc.line - 1 && !ig->standalone)
			continue;
		if (codes_has(ign_codes(ig), code))
			return 1;
	}
	return 0;
}

struct diag_mark diag_mark(const struct diag *d)
{
	struct diag_mark m;

	m.nents = d->nents;
	m.ign_seq = d->ign_seq;
	m.nerrors = d->nerrors;
	m.nwarnings = d->nwarnings;
	m.last_dropped = d->last_dropped;
	m.last_nnotes = d->nents ? d->ents[d->nents - 1].nnotes : 0;
	return m;
}

void diag_rollback(struct diag *d, const struct diag_mark *m)
{
	while (d->nents > m->nents) {
		struct entry *e = &d->ents[--d->nents];

		free(e->msg);
		for (int j = 0; j < e->nnotes; j++)
			free(e->notes[j].msg);
		free(e->notes);
	}
	if (d->nents) {
		struct entry *e = &d->ents[d->nents - 1];

		while (e->nnotes > m->last_nnotes)
			free(e->notes[--e->nnotes].msg);
	}
	for (int i = 0; i < d->nfiles; i++) {
		struct file *f = &d->files[i];
		int k = 0;

		for (int j = 0; j < f->nign; j++) {
			if (f->ign[j].seq >= m->ign_seq)
				free(f->ign[j].codes);
			else
				f->ign[k++] = f->ign[j];
		}
		f->nign = k;
	}
	d->ign_seq = m->ign_seq;
	d->nerrors = m->nerrors;
	d->nwarnings = m->nwarnings;
	d->last_dropped = m->last_dropped;
}

void diag_set_werror(struct diag *d, int on)
{
	d->werror = on != 0;
}

int diag_errors(const struct diag *d)
{
	return d->nerrors + (d->werror ? d->nwarnings : 0);
}

int diag_warnings(const struct diag *d)
{
	return d->werror ? 0 : d->nwarnings;
}

struct loc loc_span(struct loc a, struct loc b)
{
	struct loc r = a;

	if (b.file != a.file || b.line == 0)
		return a;
	if (a.line == 0)
		return b;
	r.end_line = b.end_line;
	r.end_col = b.end_col;
	return r;
}

/* ---- printing ----------------------------------------------------------------------------- */

static int cmp_entry(const void *pa, const void *pb)
{
	const struct entry *a = *(const struct entry *const *)pa;
	const struct entry *b = *(const struct entry *const *)pb;

	if (a->loc.file != b->loc.file)
		return a->loc.file < b->loc.file ? -1 : 1;
	if (a->loc.line != b->loc.line)
		return a->loc.line < b->loc.line ? -1 : 1;
	if (a->loc.col != b->loc.col)
		return a->loc.col < b->loc.col ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Computes F's line table (cast away const: a cache). Returns 0 or -1. */
static int file_lines(struct file *f)
{
	size_t n = 1, k = 0;

	if (f->lines || !f->text)
		return f->lines ? 0 : -1;
	for (size_t i = 0; i < f->len; i++)
		if (f->text[i] == '\n')
			n++;
	if (n > (size_t)1 << 30 || !(f->lines = malloc(n * sizeof *f->lines)))
		return -1;
	f->lines[k++] = 0;
	for (size_t i = 0; i < f->len; i++)
		if (f->text[i] == '\n')
			f->lines[k++] = i + 1;
	f->nlines = (int)n;
	return 0;
}

/* Returns the text of LINE (1-based) of F and its length without the newline, or NULL. */
static const char *line_text(struct file *f, int line, size_t *len)
{
	size_t s, e;

	if (line <= 0 || file_lines(f) < 0 || line > f->nlines)
		return NULL;
	s = f->lines[line - 1];
	e = line < f->nlines ? f->lines[line] - 1 : f->len;
	if (e > s && f->text[e - 1] == '\r')
		e--;
	*len = e - s;
	return f->text + s;
}

#define C_BOLD "\033[1m"
#define C_RED "\033[1;31m"
#define C_MAGENTA "\033[1;35m"
#define C_CYAN "\033[1;36m"
#define C_GREEN "\033[1;32m"
#define C_RESET "\033[0m"

/* Prints the `   12 | text` and `      |    ^~~~` lines for LOC. */
static void print_source(const struct diag *d, FILE *out, struct loc loc, int color)
{
	struct file *f;
	const char *t;
	size_t len, col, end;

	if (loc.file < 0 || loc.file >= d->nfiles || loc.line <= 0)
		return;
	f = &d->files[loc.file];
	if (!(t = line_text(f, loc.line, &len)))
		return;
	fprintf(out, "%5d | ", loc.line);
	for (size_t i = 0; i < len; i++) /* control characters would garble the terminal */
		fputc((unsigned char)t[i] < 0x20 && t[i] != '\t' ? ' ' : t[i], out);
	fputc('\n', out);
	col = loc.col > 0 ? (size_t)loc.col - 1 : 0;
	if (col > len)
		col = len;
	if (loc.end_line == loc.line && loc.end_col > loc.col)
		end = (size_t)loc.end_col - 1;
	else if (loc.end_line > loc.line)
		end = len;
	else
		end = col + 1;
	if (end > len)
		end = len > col ? len : col + 1;
	fputs("      | ", out);
	for (size_t i = 0; i < col; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c == '\t')
			fputc('\t', out);
		else if ((c & 0xC0) != 0x80)
			fputc(' ', out);
	}
	if (color)
		fputs(C_GREEN, out);
	fputc('^', out);
	for (size_t i = col + 1; i < end; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c == '\t')
			fputc('\t', out);
		else if ((c & 0xC0) != 0x80)
			fputc('~', out);
	}
	if (color)
		fputs(C_RESET, out);
	fputc('\n', out);
}

static void print_head(const struct diag *d, FILE *out, struct loc loc, const char *sev,
		       const char *sevcolor, const char *msg, const char *code, int color)
{
	const char *path = diag_file_path(d, loc.file);

	if (color)
		fputs(C_BOLD, out);
	if (!path)
		fputs("kfpc: ", out);
	else if (loc.line <= 0)
		fprintf(out, "%s: ", path);
	else if (loc.col <= 0)
		fprintf(out, "%s:%d: ", path, loc.line);
	else
		fprintf(out, "%s:%d:%d: ", path, loc.line, loc.col);
	if (color)
		fprintf(out, C_RESET "%s%s:" C_RESET " ", sevcolor, sev);
	else
		fprintf(out, "%s: ", sev);
	fputs(msg ? msg : "(out of memory)", out);
	if (code && *code)
		fprintf(out, " [%s]", code);
	fputc('\n', out);
}

static struct json_object *json_loc(const struct diag *d, struct json_object *o, struct loc loc)
{
	const char *path = diag_file_path(d, loc.file);

	json_object_object_add(o, "file", path ? json_object_new_string(path) : NULL);
	json_object_object_add(o, "line", json_object_new_int(loc.line));
	json_object_object_add(o, "col", json_object_new_int(loc.col));
	json_object_object_add(o, "end_line", json_object_new_int(loc.end_line));
	json_object_object_add(o, "end_col", json_object_new_int(loc.end_col));
	return o;
}

static int print_json(const struct diag *d, FILE *out, const struct entry **v, size_t n)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	int r = 0;

	if (!root || !arr) {
		json_object_put(root);
		json_object_put(arr);
		return -1;
	}
	json_object_object_add(root, "diagnostics", arr);
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = v[i];
		struct json_object *o = json_object_new_object(), *notes = json_object_new_array();
		const char *sev = e->sev == DIAG_ERROR || d->werror ? "error" : "warning";

		if (!o || !notes) {
			json_object_put(o);
			json_object_put(notes);
			r = -1;
			break;
		}
		json_loc(d, o, e->loc);
		json_object_object_add(o, "severity", json_object_new_string(sev));
		json_object_object_add(o, "code", e->code[0] ? json_object_new_string(e->code) : NULL);
		json_object_object_add(o, "message", json_object_new_string(e->msg ? e->msg : ""));
		for (int j = 0; j < e->nnotes; j++) {
			struct json_object *no = json_object_new_object();

			if (!no)
				continue;
			json_loc(d, no, e->notes[j].loc);
			json_object_object_add(no, "message", json_object_new_string(e->notes[j].msg));
			json_object_array_add(notes, no);
		}
		json_object_object_add(o, "notes", notes);
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "errors", json_object_new_int(diag_errors(d)));
	json_object_object_add(root, "warnings", json_object_new_int(diag_warnings(d)));
	if (r == 0) {
		const char *s = json_object_to_json_string_ext(
			root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (!s || fprintf(out, "%s\n", s) < 0)
			r = -1;
	}
	json_object_put(root);
	return r;
}

int diag_print(const struct diag *d, FILE *out, enum diag_format format, int color)
{
	const struct entry **v = NULL;
	int r = 0;

	if (d->nents && !(v = malloc(d->nents * sizeof *v)))
		return -1;
	for (size_t i = 0; i < d->nents; i++)
		v[i] = &d->ents[i];
	if (d->nents)
		qsort(v, d->nents, sizeof *v, cmp_entry);
	if (format == DIAG_FORMAT_JSON) {
		r = print_json(d, out, v, d->nents);
		free(v);
		return r;
	}
	for (size_t i = 0; i < d->nents; i++) {
		const struct entry *e = v[i];
		int err = e->sev == DIAG_ERROR || d->werror;

		print_head(d, out, e->loc, err ? "error" : "warning", err ? C_RED : C_MAGENTA, e->msg,
			   e->code, color);
		print_source(d, out, e->loc, color);
		for (int j = 0; j < e->nnotes; j++) {
			print_head(d, out, e->notes[j].loc, "note", C_CYAN, e->notes[j].msg, NULL,
				   color);
			print_source(d, out, e->notes[j].loc, color);
		}
	}
	free(v);
	if (fflush(out) != 0 || ferror(out))
		r = -1;
	return r;
}

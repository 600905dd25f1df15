/* diag.h - the one diagnostics module every compiler stage reports through.
 *
 * A struct diag collects diagnostics (errors, warnings, each with attached notes) and the source
 * files they point into. Library code only records; the CLI prints once with diag_print(), in a
 * deterministic order (file registration order, line, column, report order) and in the formats of
 * SPEC §7 (gcc-style text with the source line and a `^~~~` underline, or one JSON object).
 *
 * Locations: struct loc. file is the id returned by diag_add_file() (or -1: no file); line and col
 * are 1-based, columns count bytes; end_line/end_col point one past the last byte of the span
 * (a 4-byte token at col 23 has end_col 27). line 0 means "no line" (the whole file).
 *
 * Lint suppression (SPEC §8): the lexer registers `// kfpc:ignore CODE[,CODE]` comments with
 * diag_ignore_add(); diag_warning() drops a warning whose code is listed on the same line, or on
 * the line before when that comment stood alone on its line.
 *
 * werror: when set, warnings count as errors and print as "error:" (keeping their W code). */
#ifndef KFPC_DIAG_H
#define KFPC_DIAG_H
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* A source span. See the header comment for units. */
struct loc {
	int file;
	int line, col;
	int end_line, end_col;
};

/* A location meaning "no location" (file -1, line 0). */
#define LOC_NONE ((struct loc){-1, 0, 0, 0, 0})

enum diag_severity {
	DIAG_ERROR,
	DIAG_WARNING,
	DIAG_NOTE,
};

enum diag_format {
	DIAG_FORMAT_TEXT,
	DIAG_FORMAT_JSON,
};

struct diag;

/* Returns a new empty collector, or NULL when out of memory. Free with diag_free(). */
struct diag *diag_new(void);

/* Frees D, its diagnostics and its copies of file names and texts. NULL is allowed. */
void diag_free(struct diag *d);

/* Registers a source file: copies PATH (as it should be printed) and TEXT (LEN bytes, may be NULL
 * when the file could not be read). Returns the file id (>= 0) for struct loc, or -1 when out of
 * memory. */
int diag_add_file(struct diag *d, const char *path, const char *text, size_t len);

/* Same as diag_add_file(), but D takes TEXT itself instead of a copy: a malloc'd buffer of at
 * least LEN + 2 bytes with TEXT[LEN] and TEXT[LEN + 1] NUL. On success D owns and frees it; on
 * failure (-1) the caller still does. Saves a copy of a big file. */
int diag_add_file_owned(struct diag *d, const char *path, char *text, size_t len);

/* Returns the number of registered files. */
int diag_nfiles(const struct diag *d);

/* Returns the path registered as FILE (owned by D, valid until diag_free), or NULL for a bad id. */
const char *diag_file_path(const struct diag *d, int file);

/* Returns the text registered as FILE (owned by D, NUL-terminated, *LEN bytes when LEN is not
 * NULL), or NULL for a bad id or a file registered without text. */
const char *diag_file_text(const struct diag *d, int file, size_t *len);

/* Returns the same text writable, for the scanner to read in place (flex's yy_scan_buffer): it is
 * followed by two NUL bytes (text[*len] and text[*len + 1]). The scanner writes into it while it
 * runs and must restore it before diagnostics are printed. NULL as for diag_file_text(). */
char *diag_file_scanbuf(struct diag *d, int file, size_t *len);

/* Records an error with CODE ("E101") at LOC; FMT is printf-style. Never fails visibly: when out
 * of memory the diagnostic is counted but its message may be lost. */
void diag_error(struct diag *d, const char *code, struct loc loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Records a warning with CODE ("W003") at LOC unless a kfpc:ignore comment suppresses it there.
 * Returns 1 when recorded, 0 when suppressed (notes added next are then dropped too). */
int diag_warning(struct diag *d, const char *code, struct loc loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* va_list forms of diag_error/diag_warning; same contracts. */
void diag_verror(struct diag *d, const char *code, struct loc loc, const char *fmt, va_list ap);
int diag_vwarning(struct diag *d, const char *code, struct loc loc, const char *fmt, va_list ap);

/* Attaches a note at LOC to the most recent error or warning (dropped when there is none or it
 * was suppressed). */
void diag_note(struct diag *d, struct loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records that FILE's LINE carries `// kfpc:ignore CODES` (CODES: "W001,W003", copied; spaces
 * allowed). STANDALONE: the comment is the only thing on its line, so it also covers LINE + 1. */
void diag_ignore_add(struct diag *d, int file, int line, const char *codes, size_t len,
		     int standalone);

/* Returns 1 when a warning CODE at LOC is suppressed by a kfpc:ignore comment, else 0. */
int diag_is_suppressed(const struct diag *d, const char *code, struct loc loc);

/* A point in a struct diag's history (diag_mark()), to roll back to with diag_rollback(). */
struct diag_mark {
	size_t nents;
	size_t ign_seq;
	int nerrors, nwarnings, last_dropped;
	int last_nnotes; /* notes of the entry that was the last one at the mark */
};

/* Returns the current point of D's history. */
struct diag_mark diag_mark(const struct diag *d);

/* Forgets every diagnostic, note and kfpc:ignore comment D recorded since M (the parser's fast
 * pass rolls back before it parses a file again to report its syntax errors). */
void diag_rollback(struct diag *d, const struct diag_mark *m);

/* Sets the -Werror switch (nonzero: warnings count and print as errors). */
void diag_set_werror(struct diag *d, int on);

/* Returns the number of errors (including warnings when werror is set). */
int diag_errors(const struct diag *d);

/* Returns the number of warnings (0 when werror is set: they count as errors). */
int diag_warnings(const struct diag *d);

/* Prints every diagnostic to F, sorted, in FORMAT (text: SPEC §7 gcc style, with ANSI colour when
 * COLOR is nonzero; JSON: one object and a newline). Returns 0, or -1 on an output error. */
int diag_print(const struct diag *d, FILE *f, enum diag_format format, int color);

/* Returns a span covering A through B (A's file); a convenience for constructs. */
struct loc loc_span(struct loc a, struct loc b);

#endif

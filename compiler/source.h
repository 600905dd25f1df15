/* source.h - loading a program: the root .kfp file and everything it imports (SPEC §4.1).
 *
 * src_load() reads the root file, parses it, and follows its imports depth-first:
 *  - "std/x" is the embedded standard library file "std/x.kfp" (compiler/stdlib_data.h), unless
 *    the environment variable KFPC_STDLIB_PATH=DIR is set and DIR/std/x.kfp exists (file by file);
 *  - any other path is relative to the importing file's directory, ".kfp" appended when missing.
 * Each file is parsed once (keyed by its canonical path). A missing import is E501 (at the import's
 * string); an import cycle is E502 with the chain in notes. Files over SRC_MAX_FILE_SIZE or
 * containing NUL bytes are refused with a clear error.
 *
 * Ownership: the struct src_program owns one ast_arena holding every tree, file record and string;
 * src_free() releases it all at once. Diagnostics go to the caller's struct diag, which must
 * outlive the program (its file ids are used in every loc). */
#ifndef KFPC_SOURCE_H
#define KFPC_SOURCE_H
#include <stddef.h>

#include "ast.h"
#include "diag.h"

#define SRC_MAX_FILE_SIZE ((size_t)512 << 20)

/* One import edge, resolved. */
struct src_import {
	struct ast_import *decl; /* the import statement in the importing file */
	const char *alias;       /* explicit `as` alias, or the path's last component */
	struct loc alias_loc;    /* of the `as` name, or of the path string */
	int target;              /* index into src_program.files, or -1 (missing: E501 reported,
				  * or cycle: E502 reported) */
};

/* One loaded file. */
struct src_file {
	int file;              /* diag file id */
	const char *path;      /* as printed in diagnostics ("examples/x.kfp", "std/data.kfp") */
	const char *key;       /* canonical identity (realpath, or "<std>/std/data.kfp") */
	int is_std;            /* comes from the standard library (embedded or KFPC_STDLIB_PATH) */
	struct ast_file *ast;  /* the parsed tree (never NULL) */
	struct src_import *imports; /* one per import statement, in source order */
	int nimports;
};

struct src_program {
	struct ast_arena *arena; /* owns everything below */
	struct src_file **files; /* files[0] is the root; then in discovery order */
	int nfiles;
	int *order;              /* nfiles indices into files: every file after the files it imports
				  * (cycle edges ignored); the root is last */
};

/* Loads PATH and its imports into *OUT (set on return 0 and 1; free with src_free()).
 * Returns 0 when every file was read and parsed without errors; 1 when there were errors
 * (syntax, E501, E502: in D, but *OUT is still usable for further checks); 2 when the root file
 * cannot be read (an error without line in D, *OUT is NULL); -1 when out of memory. */
int src_load(const char *path, struct diag *d, struct src_program **out);

/* Same as src_load() for a root file given in memory as NAME/TEXT/LEN (NAME is printed in
 * diagnostics; relative imports resolve against NAME's directory). TEXT is copied. */
int src_load_text(const char *name, const char *text, size_t len, struct diag *d,
		  struct src_program **out);

/* Frees P and its arena. NULL is allowed. */
void src_free(struct src_program *p);

#endif

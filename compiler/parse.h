/* parse.h - the parser: one .kfp source text to one struct ast_file (SPEC §1, §2).
 *
 * The lexer (grammar/lexer.l, reentrant flex) and parser (grammar/parser.y, pure bison) keep all
 * state in a struct parse_ctx; there are no globals, so files may be parsed concurrently with
 * separate arenas and diag collectors. Syntax errors (E001) and lexical errors (E002) go to the
 * diag collector; the parser recovers at statement ends, `}` and `)` and always returns a tree
 * (possibly partial). `// kfpc:ignore` comments are registered with diag_ignore_add(). */
#ifndef KFPC_PARSE_H
#define KFPC_PARSE_H
#include <stddef.h>

#include "ast.h"
#include "diag.h"

/* Returns the tree of TEXT (LEN bytes, need not be NUL-terminated; NUL bytes are an E002) which
 * is diag file FILE. The tree and its strings live in A. Returns NULL only when out of memory.
 * Diagnostics go to D; check diag_errors(D) for syntax errors. */
struct ast_file *parse_text(struct ast_arena *a, struct diag *d, int file, const char *text,
			    size_t len);

/* Same as parse_text() on the text registered with diag_add_file() as FILE, scanned in place
 * (diag_file_scanbuf: no copy; the text is intact again on return). */
struct ast_file *parse_file(struct ast_arena *a, struct diag *d, int file);

/* Limits: nesting of ( [ { beyond this many levels is an E001 "nesting too deep" and stops the
 * parse of that file; expressions deeper than PARSE_MAX_EXPR_DEPTH likewise. */
#define PARSE_MAX_NESTING 256
#define PARSE_MAX_EXPR_DEPTH 256

#endif

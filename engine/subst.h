/* subst.h - placeholder substitution in step templates (SPEC §5 interpolation).
 *
 * A template is text with placeholders `{{ NAMESPACE.FIELD }}` (spaces inside the braces are
 * allowed). Templates are the compiler's `tmpl` text (compiler/ast.h): `\{` stands for a
 * literal `{` (so `\{\{x}}` is never a placeholder) and `\\` for a literal backslash; any
 * other backslash is kept as is.
 * The caller supplies a lookup function; subst_expand knows nothing about steps. */
#ifndef KFPC_SUBST_H
#define KFPC_SUBST_H

#include <stddef.h>

/* Lookup of one placeholder: NS[NSLEN] is "inputs", "outputs", "params", "run" or "step",
 * FIELD[FLEN] the name after the dot. Returns a malloc'd replacement text (the caller of
 * subst_expand frees nothing: subst_expand frees it), or NULL with a message in err[errlen]
 * (an unknown placeholder, or a value that is not available). */
typedef char *(*subst_fn)(void *u, const char *ns, size_t nslen, const char *field, size_t flen,
			  char *err, size_t errlen);

/* Expand TMPL. Returns a malloc'd string (caller frees), or NULL with a message in err
 * ("unknown placeholder {{foo.bar}}", "unterminated placeholder", or the lookup's message). */
char *subst_expand(const char *tmpl, subst_fn fn, void *u, char *err, size_t errlen);

/* 1 if TMPL may need expanding (a placeholder or an escape), else 0 (cheap pre-check). */
int subst_has_placeholder(const char *tmpl);

#endif

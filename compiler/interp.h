/* interp.h - scanning `{{ NS.FIELD }}` placeholders in template strings (SPEC §5).
 *
 * Templates are the `tmpl` text of string literals (ast.h): `\\` is a literal backslash, `\{`
 * a literal brace, so every `{{` outside an escape opens a placeholder. */
#ifndef KFPC_INTERP_H
#define KFPC_INTERP_H
#include <stddef.h>

/* One placeholder found by interp_scan(). ns/field point into the template (not terminated);
 * off/len delimit the whole `{{...}}`. malformed: not of the form NS.FIELD (or unterminated). */
struct interp_ph {
	const char *ns, *field;
	size_t nslen, fieldlen;
	size_t off, len;
	int malformed;
};

/* Calls CB(ctx, ph) for every placeholder of T[0..LEN). Returns the number found. */
int interp_scan(const char *t, size_t len, void (*cb)(void *ctx, const struct interp_ph *ph),
		void *ctx);

#endif

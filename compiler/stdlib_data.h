/* stdlib_data.h - the standard library sources embedded at build time (cmake/embed.cmake). */
#ifndef KFPC_STDLIB_DATA_H
#define KFPC_STDLIB_DATA_H
#include <stddef.h>

/* One embedded file: path relative to stdlib/ ("std/data.kfp"), NUL-terminated text of len bytes.
 * Static storage: never freed. */
struct stdlib_file {
	const char *path;
	const char *text;
	size_t len;
};

/* The table ends with a {NULL, NULL, 0} sentinel; stdlib_nfiles excludes it. */
extern const struct stdlib_file stdlib_files[];
extern const size_t stdlib_nfiles;

#endif

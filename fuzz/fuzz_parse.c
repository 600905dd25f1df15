/* fuzz_parse.c - libFuzzer harness for the lexer and parser (grammar/lexer.l, grammar/parser.y).
 *
 * The input bytes are registered as one in-memory source file and parsed; diagnostics are
 * printed (text and JSON, to /dev/null, which exercises the caret rendering over arbitrary
 * bytes) and everything is freed. No file system access: imports are not followed.
 *
 *   CC=clang cmake -S . -B build-fuzz -DKFPC_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *   cmake --build build-fuzz --target fuzz_parse
 *   build-fuzz/fuzz_parse -dict=fuzz/kfp.dict fuzz/corpus/parse */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct diag *d;
	struct ast_arena *a;
	int id;

	if (!devnull && !(devnull = fopen("/dev/null", "we")))
		return 0;
	if (!(d = diag_new()))
		return 0;
	if ((id = diag_add_file(d, "fuzz.kfp", (const char *)data, size)) < 0)
		goto out;
	if (!(a = ast_arena_new()))
		goto out;
	parse_file(a, d, id);
	/* exercise suppression lookups, notes and odd spans over the fuzzed text */
	for (int line = 1; line <= 3; line++) {
		struct loc at = {id, line, 1 + (int)(size % 7), line + (int)(size % 2), 3};

		if (diag_warning(d, line == 1 ? "W001" : "W003", at, "warning on line %d", line))
			diag_note(d, (struct loc){id, line + 1, 2, line + 1, 1}, "note");
	}
	diag_print(d, devnull, DIAG_FORMAT_TEXT, 1);
	diag_set_werror(d, 1);
	diag_print(d, devnull, DIAG_FORMAT_TEXT, 0);
	diag_print(d, devnull, DIAG_FORMAT_JSON, 0);
	ast_arena_free(a);
out:
	diag_free(d);
	return 0;
}

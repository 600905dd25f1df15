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
	diag_warning(d, "W001", (struct loc){id, 1, 1, 1, 2}, "a warning at the start");
	diag_print(d, devnull, DIAG_FORMAT_TEXT, 1);
	diag_print(d, devnull, DIAG_FORMAT_JSON, 0);
	ast_arena_free(a);
out:
	diag_free(d);
	return 0;
}

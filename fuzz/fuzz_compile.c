/* fuzz_compile.c - libFuzzer harness for the whole compiler: parse, check, lower, graph.
 *
 * The input bytes are the root file, given in memory (src_load_text); `std/` imports resolve to
 * the embedded standard library, relative imports to a directory that does not exist (E501).
 * When the program loads cleanly it is checked (sema_check), and when that is clean too the IR
 * and the DOT graph are written to /dev/null; diagnostics are printed to /dev/null in both
 * formats. Everything is freed each time, so leaks show up.
 *
 *   cmake -S . -B build-fuzzb -DKFPC_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *   cmake --build build-fuzzb --target fuzz_compile -j2
 *   mkdir -p fuzz/corpus-run/compile
 *   find tests/compile examples -name '*.kfp' -exec cp {} fuzz/corpus-run/compile/ +
 *   build-fuzzb/fuzz_compile -dict=fuzz/kfp.dict -max_len=8192 fuzz/corpus-run/compile */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "sema.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct diag *d;
	struct src_program *prog = NULL;
	struct sema *s;
	int rc;

	if (!devnull && !(devnull = fopen("/dev/null", "we")))
		return 0;
	if (!(d = diag_new()))
		return 0;
	rc = src_load_text("/nonexistent-kfpc-fuzz/fuzz.kfp", (const char *)data, size, d, &prog);
	if (rc == 0 && prog && (s = sema_check(prog, d, NULL))) {
		/* (an IR of a million nodes is fine, but too slow for a fuzzer's iteration) */
		if (!diag_errors(d) && s->entry && s->expanded < 20000) {
			lower_ir(s, devnull);
			graph_dot(s, devnull);
		}
		sema_free(s);
	}
	src_free(prog);
	diag_print(d, devnull, DIAG_FORMAT_TEXT, 1);
	diag_print(d, devnull, DIAG_FORMAT_JSON, 0);
	diag_free(d);
	return 0;
}

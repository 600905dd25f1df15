/* fuzz_ir.c - libFuzzer harness for the IR loader (engine/ir.c).
 *
 * Feeds arbitrary bytes to ir_load; a valid document is also walked (parameter lookup, node
 * outputs, locations) so that everything the loader promises to have checked is touched.
 * Build: cmake -S . -B build-fuzz -DKFPC_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *        cmake --build build-fuzz --target fuzz_ir
 * Run:   ./build-fuzz/fuzz_ir -max_total_time=600 fuzz/corpus-ir */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ir.h"
#include "value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const struct ir_body *b, int depth)
{
	size_t n = 0, i, k;
	char buf[256];

	if (depth > 64)
		return 0;
	for (i = 0; i < b->n; i++) {
		const struct ir_node *x = b->nodes[i];
		n++;
		ir_loc_str(&x->loc, buf, sizeof buf);
		for (k = 0; k < x->ndeps; k++)
			if (x->deps[k] >= b->n)
				__builtin_trap();
		for (k = 0; k < x->noutputs; k++)
			if (ir_node_output(x, x->outputs[k].name) == NULL)
				__builtin_trap();
		if (x->kind != IR_STEP)
			n += walk(&x->body, depth + 1);
		if (x->kind == IR_PIPELINE)
			n += walk(&x->fin, depth + 1);
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct ir *ir = ir_load((const char *)data, size, err, sizeof err);
	size_t i;

	if (!ir) {
		if (!err[0] || strlen(err) >= sizeof err)
			__builtin_trap(); /* a failure always says why */
		return 0;
	}
	for (i = 0; i < ir->nparams; i++)
		if (ir_param_find(ir, ir->params[i].name) == NULL)
			__builtin_trap();
	if (walk(&ir->body, 0) + walk(&ir->fin, 0) > ir->nnodes)
		__builtin_trap();
	ir_free(ir);
	return 0;
}

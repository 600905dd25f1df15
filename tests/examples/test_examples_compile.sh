#!/bin/bash
# Every example pipeline (examples/*.kfp, examples/lib/*.kfp) and every stdlib smoke pipeline
# (tests/examples/pipelines/*.kfp) compiles with -Werror: exit 0, nothing on stderr.
# The IR validates against schema/ir.schema.json, compiling twice gives identical bytes,
# and `kfpc graph` draws it (exit 0, a DOT digraph, nothing on stderr).
set -u
: "${KFPC:?}" "${KFPC_SRC:?}" "${KFPC_BUILD:?}"
cd "$KFPC_SRC" || exit 2
tmp=$KFPC_BUILD/testtmp/examples_compile
rm -rf "$tmp" && mkdir -p "$tmp" || exit 2
export NO_COLOR=1
unset KFPC_STDLIB_PATH

fail=0
n=0
for f in examples/*.kfp examples/lib/*.kfp tests/examples/pipelines/*.kfp; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	name=$(basename "$f" .kfp)
	out=$tmp/$name
	"$KFPC" compile -Werror "$f" -o "$out.json" 2>"$out.err"
	rc=$?
	if [ $rc -ne 0 ] || [ -s "$out.err" ]; then
		echo "FAIL $f: kfpc compile -Werror exited $rc"
		cat "$out.err"
		fail=1
		continue
	fi
	if ! /usr/bin/python3 - "$KFPC_SRC/schema/ir.schema.json" "$out.json" >"$out.schema" 2>&1 <<'PY'
import json, sys
import jsonschema
with open(sys.argv[1]) as f:
    validator = jsonschema.Draft202012Validator(json.load(f))
with open(sys.argv[2]) as f:
    ir = json.load(f)
errors = sorted(validator.iter_errors(ir), key=lambda e: list(e.absolute_path))
for e in errors[:10]:
    print("  at /%s: %s" % ("/".join(str(p) for p in e.absolute_path), e.message[:300]))
sys.exit(1 if errors else 0)
PY
	then
		echo "FAIL $f: the IR does not validate against schema/ir.schema.json"
		cat "$out.schema"
		fail=1
	fi
	"$KFPC" compile -Werror "$f" -o "$out.2.json" 2>/dev/null
	if ! cmp -s "$out.json" "$out.2.json"; then
		echo "FAIL $f: two compiles gave different IR"
		fail=1
	fi
	"$KFPC" graph "$f" -o "$out.dot" 2>"$out.graph.err"
	rc=$?
	if [ $rc -ne 0 ] || [ -s "$out.graph.err" ] || ! grep -q '^digraph' "$out.dot"; then
		echo "FAIL $f: kfpc graph exited $rc (or wrote no digraph)"
		cat "$out.graph.err"
		fail=1
	fi
done
if [ $n -lt 8 ]; then
	echo "FAIL: expected at least 8 pipelines, found $n"
	fail=1
fi
[ $fail -eq 0 ] && echo "ok: $n pipelines compile with -Werror, validate and draw"
exit $fail

#!/bin/bash
# test_cli.sh - `kfpc compile` / `kfpc graph` as a user runs them: exit codes, -o (atomic),
# --help, colour, JSON diagnostics, the standard library and the examples.
set -u
KFPC=${KFPC:?KFPC must name the kfpc binary}
T=${KFPC_BUILD:-/tmp}/testtmp/compile.test_cli
rm -rf "$T"
mkdir -p "$T"
fails=0
pass=0

check() { # check NAME EXPECTED_EXIT ACTUAL_EXIT
	if [ "$2" = "$3" ]; then
		pass=$((pass + 1))
	else
		echo "FAIL $1: exit $3, want $2"
		[ -s "$T/err" ] && sed 's/^/  stderr: /' "$T/err" | head -20
		fails=$((fails + 1))
	fi
}
expect() { # expect NAME CONDITION...
	local name=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
	else
		echo "FAIL $name"
		fails=$((fails + 1))
	fi
}

ok=tests/compile/ok/params.kfp

# usage and I/O errors exit 2
NO_COLOR=1 "$KFPC" compile "$T/missing.kfp" >"$T/out" 2>"$T/err"
check "missing file" 2 $?
expect "missing file message" grep -q "missing.kfp" "$T/err"
expect "missing file: no stdout" test ! -s "$T/out"
"$KFPC" compile >"$T/out" 2>"$T/err"
check "no file" 2 $?
expect "no file: usage" grep -q "usage: kfpc compile" "$T/err"
"$KFPC" compile "$ok" --bogus >"$T/out" 2>"$T/err"
check "unknown option" 2 $?
"$KFPC" compile "$ok" "$ok" >"$T/out" 2>"$T/err"
check "two files" 2 $?
"$KFPC" compile "$ok" -o >"$T/out" 2>"$T/err"
check "-o without argument" 2 $?
"$KFPC" compile "$ok" --diagnostics-format=xml >"$T/out" 2>"$T/err"
check "bad diagnostics format" 2 $?
"$KFPC" graph "$ok" -Werror >"$T/out" 2>"$T/err"
check "graph has no -Werror" 2 $?
"$KFPC" compile "$ok" -o "$T/no/such/dir/out.json" >"$T/out" 2>"$T/err"
check "unwritable -o" 2 $?
"$KFPC" compile "$T" >"$T/out" 2>"$T/err"
check "directory as input" 2 $?

# --help
"$KFPC" compile --help >"$T/out" 2>"$T/err"
check "compile --help" 0 $?
expect "compile --help text" grep -q -- "--diagnostics-format" "$T/out"
"$KFPC" graph --help >"$T/out" 2>"$T/err"
check "graph --help" 0 $?
expect "graph --help text" grep -q "Graphviz" "$T/out"

# -o writes atomically: same bytes as stdout, and no partial file on error
"$KFPC" compile "$ok" >"$T/stdout.json" 2>"$T/err"
check "compile to stdout" 0 $?
"$KFPC" compile "$ok" -o "$T/out.json" >"$T/out" 2>"$T/err"
check "compile -o" 0 $?
expect "-o same bytes as stdout" cmp -s "$T/stdout.json" "$T/out.json"
expect "-o nothing on stdout" test ! -s "$T/out"
echo previous >"$T/keep.json"
"$KFPC" compile tests/compile/fail/E101_undefined_step.kfp -o "$T/keep.json" >"$T/out" 2>"$T/err"
check "compile -o with errors" 1 $?
expect "-o keeps the old file on error" grep -qx previous "$T/keep.json"
expect "-o leaves no temporary" test -z "$(ls "$T" | grep 'keep.json.tmp')"
"$KFPC" graph "$ok" -o "$T/g.dot" >"$T/out" 2>"$T/err"
check "graph -o" 0 $?
expect "graph -o writes DOT" grep -q '^digraph "params"' "$T/g.dot"

# colour: never when NO_COLOR is set or stderr is not a terminal
NO_COLOR=1 "$KFPC" compile tests/compile/fail/E101_undefined_step.kfp >"$T/out" 2>"$T/err"
check "NO_COLOR exit" 1 $?
expect "NO_COLOR: no escapes" test -z "$(grep -l $'\033' "$T/err")"
env -u NO_COLOR TERM=xterm "$KFPC" compile tests/compile/fail/E101_undefined_step.kfp >"$T/out" 2>"$T/err"
expect "not a tty: no escapes" test -z "$(grep -l $'\033' "$T/err")"
if command -v script >/dev/null 2>&1; then
	env -u NO_COLOR TERM=xterm script -qec "$KFPC compile tests/compile/fail/E101_undefined_step.kfp" /dev/null >"$T/tty" 2>&1
	expect "tty: colour escapes" grep -q $'\033\\[' "$T/tty"
	NO_COLOR=1 TERM=xterm script -qec "$KFPC compile tests/compile/fail/E101_undefined_step.kfp" /dev/null >"$T/tty" 2>&1
	expect "tty + NO_COLOR: no escapes" test -z "$(grep -l $'\033\\[' "$T/tty")"
	env -u NO_COLOR TERM=dumb script -qec "$KFPC compile tests/compile/fail/E101_undefined_step.kfp" /dev/null >"$T/tty" 2>&1
	expect "tty + TERM=dumb: no escapes" test -z "$(grep -l $'\033\\[' "$T/tty")"
fi

# JSON diagnostics on a clean file: an empty list, exit 0
"$KFPC" compile "$ok" --diagnostics-format=json >"$T/out" 2>"$T/err"
check "json clean" 0 $?
expect "json clean output" grep -q '"diagnostics":\[\]' "$T/err"

# warnings: exit 0; -Werror: exit 1
"$KFPC" compile tests/compile/ok/warnings.kfp >"$T/out" 2>"$T/err"
check "warnings exit 0" 0 $?
"$KFPC" compile tests/compile/ok/warnings.kfp -Werror >"$T/out" 2>"$T/err"
check "warnings -Werror exit 1" 1 $?
expect "-Werror prints errors" grep -q "error: .*\[W003\]" "$T/err"
expect "-Werror writes no IR" test ! -s "$T/out"

# every standard library module compiles without errors or warnings when imported
{
	for f in stdlib/std/*.kfp; do
		m=$(basename "$f" .kfp)
		echo "import \"std/$m\" as $m"
	done
	echo 'pipeline all() {'
	echo '  step s {'
	echo '    image "busybox:1.36"'
	echo '    timeout 1m'
	n=0
	for f in stdlib/std/*.kfp; do
		m=$(basename "$f" .kfp)
		echo "    in t$n: string = \"$m\""
		n=$((n + 1))
	done
	echo '    run ["true"]'
	echo '  }'
	echo '}'
} >"$T/stdlib.kfp"
"$KFPC" compile "$T/stdlib.kfp" -o "$T/stdlib.json" 2>"$T/err"
check "stdlib compiles" 0 $?
expect "stdlib: only W005 warnings (unused imports)" test -z "$(grep -E '(error|warning):' "$T/err" | grep -v W005)"

# KFPC_STDLIB_PATH overrides std/ file by file
mkdir -p "$T/lib/std"
cat >"$T/lib/std/util.kfp" <<'EOF'
component echo {
  in message: string
  out text: string from stdout
  image "busybox:1.36"
  timeout 1m
  run ["echo", "overridden {{inputs.message}}"]
}
EOF
cat >"$T/override.kfp" <<'EOF'
import "std/util" as util
pipeline p() {
  step e = util.echo(message: "x")
}
EOF
KFPC_STDLIB_PATH="$T/lib" "$KFPC" compile "$T/override.kfp" >"$T/out" 2>"$T/err"
check "KFPC_STDLIB_PATH" 0 $?
expect "KFPC_STDLIB_PATH is used" grep -q "overridden" "$T/out"

# every example compiles (errors fail; warnings are allowed)
for f in examples/*.kfp; do
	"$KFPC" compile "$f" -o "$T/example.json" 2>"$T/err"
	check "example $f" 0 $?
	"$KFPC" graph "$f" -o "$T/example.dot" 2>"$T/err"
	check "graph of example $f" 0 $?
done

# a big pipeline (10k steps: a tree of some 15 MB, so the arenas map huge-page chunks and the
# parser's intern cache churns): compiles, deterministically, to the right graph; a syntax error on
# its last line is reported alone, at that line (the LAC re-parse of a big file)
python3 - "$T/big.kfp" "$T/bad.kfp" <<'PY'
import sys
n, w = 10000, 100
lines = ["pipeline big() {", "  defaults {", '    image "busybox:1.36"', "    timeout 1m", "  }"]
for i in range(n):
    lines.append("  step s%d {" % i)
    if i >= w:
        r, c = divmod(i, w)
        lines.append("    in a: int = s%d.v" % ((r - 1) * w + c))
        lines.append("    in b: int = s%d.v" % ((r - 1) * w + (c + 1) % w))
    lines.append("    out v: int // kfpc:ignore W002")
    lines.append('    run ["sh", "-c", "echo %d > {{outputs.v}}"]' % i)
    lines.append("  }")
lines.append("  out last: int = s%d.v" % (n - 1))
open(sys.argv[1], "w").write("\n".join(lines + ["}", ""]))
open(sys.argv[2], "w").write("\n".join(lines + ["  step 42 // oops", "}", ""]))
PY
"$KFPC" compile "$T/big.kfp" -o "$T/big1.json" 2>"$T/err"
check "big pipeline" 0 $?
expect "big pipeline: no diagnostics" test ! -s "$T/err"
"$KFPC" compile "$T/big.kfp" -o "$T/big2.json" 2>"$T/err"
expect "big pipeline: same IR twice" cmp -s "$T/big1.json" "$T/big2.json"
expect "big pipeline: 10000 nodes, 19800 edges" python3 -c '
import json, sys
ir = json.load(open(sys.argv[1]))
sys.exit(not (len(ir["nodes"]) == 10000 and sum(len(x["deps"]) for x in ir["nodes"]) == 19800))' \
	"$T/big1.json"
NO_COLOR=1 "$KFPC" compile "$T/bad.kfp" -o "$T/bad.json" 2>"$T/err"
check "big pipeline with a syntax error" 1 $?
expect "big pipeline: the error at its line" grep -q "^$T/bad.kfp:$(grep -n 'oops' "$T/bad.kfp" | cut -d: -f1):" "$T/err"
expect "big pipeline: one error" test "$(grep -c ': error: ' "$T/err")" = 1
expect "big pipeline: nothing written" test ! -e "$T/bad.json"

echo "$pass passed, $fails failed"
[ "$fails" = 0 ]

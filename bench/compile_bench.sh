#!/bin/bash
# compile_bench.sh - how `kfpc compile` scales with the number of steps, next to jq.
#
# Generates pipelines of N literal inline steps in three shapes:
#   chain    s0 <- s1 <- s2 ...            (every step uses the previous one)
#   fanout   one root, N-1 steps using it  (wide)
#   diamond  a lattice of width 100: each step uses two steps of the previous row
# and times `kfpc compile FILE -o IR` (best of 3 for N <= 100k, one run above), printing the time
# per step, the peak RSS (GNU time -f %M) and the ratio against `jq -c . IR >/dev/null` on the
# emitted IR (the peer: reading the same JSON once). Targets: 100k steps < 1 s, linear growth,
# not slower than jq.
#
# Usage: bench/compile_bench.sh [N...]    (default: 10000 100000 1000000)
#        KFPC=path/to/kfpc (default: build/kfpc)   KEEP=1 keeps the generated files
set -euo pipefail
KFPC=${KFPC:-$(dirname "$0")/../build/kfpc}
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(10000 100000 1000000)
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "compile_bench: needs GNU time (apt-get install time)" >&2; exit 2; }
command -v jq >/dev/null || { echo "compile_bench: needs jq" >&2; exit 2; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/kfpc-bench.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$DIR"' EXIT

gen() { # gen SHAPE N FILE
	python3 - "$1" "$2" "$3" <<'PY'
import sys
shape, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
w = 100
with open(path, "w") as f:
    f.write("pipeline bench() {\n  defaults {\n    image \"busybox:1.36\"\n    timeout 1m\n  }\n")
    for i in range(n):
        ins = []
        if shape == "chain" and i > 0:
            ins = ["s%d" % (i - 1)]
        elif shape == "fanout" and i > 0:
            ins = ["s0"]
        elif shape == "diamond" and i >= w:
            r, c = divmod(i, w)
            ins = ["s%d" % ((r - 1) * w + c), "s%d" % ((r - 1) * w + (c + 1) % w)]
        f.write("  step s%d {\n" % i)
        for k, src in enumerate(ins):
            f.write("    in a%d: int = %s.v\n" % (k, src))
        f.write("    out v: int\n    run [\"sh\", \"-c\", \"echo %d > {{outputs.v}}\"]\n  }\n" % i)
    f.write("  out last: int = s%d.v\n}\n" % (n - 1))
PY
}

# best of R runs of "$@": prints "seconds maxrss_kb"
measure() {
	local r=$1 best= rss= t m
	shift
	for _ in $(seq "$r"); do
		"$TIME" -f "%e %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/err" || { cat "$DIR/err" >&2; exit 1; }
		read -r t m <"$DIR/time"
		if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; rss=$m; fi
	done
	echo "$best $rss"
}

printf "%-8s %9s %9s %10s %10s %9s %9s %7s\n" shape steps "kfpc s" "us/step" "RSS MB" "IR MB" "jq s" "ratio"
for n in "${SIZES[@]}"; do
	runs=3
	[ "$n" -gt 100000 ] && runs=1
	for shape in chain fanout diamond; do
		src="$DIR/$shape-$n.kfp"
		ir="$DIR/$shape-$n.json"
		gen "$shape" "$n" "$src"
		read -r kt krss < <(measure "$runs" "$KFPC" compile "$src" -o "$ir")
		read -r jt _ < <(measure "$runs" jq -c . "$ir")
		irmb=$(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$ir")/1048576}")
		printf "%-8s %9d %9.2f %10.2f %10.1f %9s %9.2f %7.2f\n" "$shape" "$n" "$kt" \
			"$(awk "BEGIN{print $kt*1e6/$n}")" "$(awk "BEGIN{print $krss/1024}")" "$irmb" "$jt" \
			"$(awk "BEGIN{print ($jt > 0 ? $kt/$jt : 0)}")"
		rm -f "$src" "$ir"
	done
done
echo "ratio = kfpc compile time / jq -c time on the same IR (lower is better; < 1: faster than jq)"

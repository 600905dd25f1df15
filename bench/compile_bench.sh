#!/bin/bash
# compile_bench.sh - how `kfpc compile` scales with the number of steps, next to jq.
#
# Generates pipelines of N literal inline steps in three shapes:
#   chain    s0 <- s1 <- s2 ...            (every step uses the previous one)
#   fanout   one root, N-1 steps using it  (wide)
#   diamond  a lattice of width 100: each step uses two steps of the previous row
# and times `kfpc compile FILE -o IR` (best of 3 for N <= 100k, one run above), printing the
# wall-clock and CPU (user+sys) time, the CPU time per step, the peak RSS (GNU time -f %M) and the
# ratio against `jq -c . IR >/dev/null` on the emitted IR (the peer: reading the same JSON once),
# by CPU time (meaningful on a shared machine) and by wall-clock time. Targets: 100k steps < 1 s,
# linear growth, not slower than jq. NOJQ=1 skips jq (it needs minutes and GBs at 1M steps).
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
        # (leaves of a fan-out are unused on purpose: no W002 for them)
        f.write("    out v: int // kfpc:ignore W002\n")
        f.write("    run [\"sh\", \"-c\", \"echo %d > {{outputs.v}}\"]\n  }\n" % i)
    f.write("  out last: int = s%d.v\n}\n" % (n - 1))
PY
}

# best (lowest CPU) of R runs of "$@": prints "wall_s cpu_s maxrss_kb"
measure() {
	local r=$1 best= wall= rss= e u sy m c
	shift
	for _ in $(seq "$r"); do
		"$TIME" -f "%e %U %S %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/err" || { cat "$DIR/err" >&2; exit 1; }
		read -r e u sy m <"$DIR/time"
		c=$(awk "BEGIN{print $u + $sy}")
		if [ -z "$best" ] || awk "BEGIN{exit !($c < $best)}"; then best=$c; wall=$e; rss=$m; fi
	done
	echo "$wall $best $rss"
}

printf "%-8s %8s %8s %8s %9s %8s %7s %8s %8s %9s %9s\n" shape steps "wall s" "cpu s" \
	"us/step" "RSS MB" "IR MB" "jq wall" "jq cpu" "cpu ratio" "wall ratio"
for n in "${SIZES[@]}"; do
	echo "# $(uptime)" # the load: timings are only comparable on a quiet machine
	runs=3
	[ "$n" -gt 100000 ] && runs=1
	for shape in chain fanout diamond; do
		src="$DIR/$shape-$n.kfp"
		ir="$DIR/$shape-$n.json"
		gen "$shape" "$n" "$src"
		read -r kw kc krss < <(measure "$runs" "$KFPC" compile "$src" -o "$ir")
		if [ -n "${NOJQ:-}" ]; then
			jw=0 jc=0
		else
			read -r jw jc _ < <(measure "$runs" jq -c . "$ir")
		fi
		printf "%-8s %8d %8.2f %8.2f %9.2f %8.1f %7.1f %8.2f %8.2f %9.2f %9.2f\n" "$shape" "$n" \
			"$kw" "$kc" "$(awk "BEGIN{print $kc*1e6/$n}")" "$(awk "BEGIN{print $krss/1024}")" \
			"$(awk "BEGIN{print $(stat -c %s "$ir")/1048576}")" "$jw" "$jc" \
			"$(awk "BEGIN{print ($jc > 0 ? $kc/$jc : 0)}")" \
			"$(awk "BEGIN{print ($jw > 0 ? $kw/$jw : 0)}")"
		rm -f "$src" "$ir"
	done
done
echo "ratio = kfpc compile time / jq -c time on the same IR (< 1: faster than jq)"

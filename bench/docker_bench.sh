#!/bin/sh
# docker_bench.sh - per-step overhead of `kfpc run --executor docker` against its peer, the
# docker CLI running the same containers: `docker run --rm --network none IMAGE true`.
#
# Usage: bench/docker_bench.sh [N] [ROUNDS]      (default 20 steps, 3 rounds; median printed)
#   serial:   a pipeline of N independent steps `run ["true"]` (busybox:1.36) with
#             --parallelism 1, against a shell loop of N `docker run --rm` one after another
#   parallel: the same pipeline with --parallelism 2, against the serial loop (the throughput
#             a user gets) and against `xargs -P 2` running the same docker run commands
# Both sides create, start, wait for, collect the output of and remove N containers with the
# same settings (no network: kfpc's default, see README). Target: serial ratio <= 1.05,
# parallel faster than the serial loop.
#
# Environment: KFPC (the binary; default: the newest build*/kfpc), DOCKER_HOST (an engine to
# use; default: a private dockerd started with scripts/dockerd.sh under BENCH_DIR and stopped
# at the end), BENCH_DIR (scratch, default /tmp/kfpc-docker-bench). Needs the docker CLI
# (Debian's docker.io) for the peer side.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-20}
ROUNDS=${2:-3}
work=${BENCH_DIR:-/tmp/kfpc-docker-bench}
if [ -z "${KFPC:-}" ]; then
	KFPC=$(ls -t "$root"/build*/kfpc 2>/dev/null | head -n 1 || true)
fi
[ -n "${KFPC:-}" ] && [ -x "$KFPC" ] || { echo "docker_bench: build kfpc first (or set KFPC)" >&2; exit 2; }
command -v docker >/dev/null 2>&1 || { echo "docker_bench: needs the docker CLI (apt-get install docker.io)" >&2; exit 2; }
mkdir -p "$work"

started=""
cleanup() {
	[ -n "$started" ] && "$root/scripts/dockerd.sh" stop "$work/engine" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
if [ -z "${DOCKER_HOST:-}" ] || ! docker version >/dev/null 2>&1; then
	eval "$("$root/scripts/dockerd.sh" start "$work/engine")"
	export DOCKER_HOST
	started=1
fi
"$root/scripts/images.sh" --cache "$work/images" busybox >/dev/null

# the pipeline: N independent steps
gen() {
	echo "pipeline bench() {"
	i=1
	while [ $i -le "$1" ]; do
		printf '  step s%d {\n    image "busybox:1.36"\n    timeout 1m\n    run ["true"]\n  }\n' $i
		i=$((i + 1))
	done
	echo "}"
}
gen "$N" >"$work/bench.kfp"
gen 1 >"$work/warm.kfp"

now() { date +%s.%N; }
# elapsed CMD...: seconds the command took (its output discarded; failure aborts)
elapsed() {
	t0=$(now)
	"$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; echo "docker_bench: failed: $*" >&2; exit 1; }
	t1=$(now)
	echo "$t0 $t1" | awk '{ printf "%.3f", $2 - $1 }'
}
kfpc_run() {
	rm -rf "$work/state"
	"$KFPC" run --executor docker --no-cache --state "$work/state" --parallelism "$1" "$2"
}
docker_serial() {
	i=0
	while [ $i -lt "$N" ]; do
		docker run --rm --network none busybox:1.36 true
		i=$((i + 1))
	done
}
docker_xargs() {
	seq "$N" | xargs -P 2 -I{} docker run --rm --network none busybox:1.36 true
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# warm up both paths (image layers, page cache)
elapsed kfpc_run 1 "$work/warm.kfp" >/dev/null
elapsed docker run --rm --network none busybox:1.36 true >/dev/null

ks="" ds="" kp="" dx=""
r=0
while [ $r -lt "$ROUNDS" ]; do
	ks="$ks $(elapsed kfpc_run 1 "$work/bench.kfp")"
	ds="$ds $(elapsed docker_serial)"
	kp="$kp $(elapsed kfpc_run 2 "$work/bench.kfp")"
	dx="$dx $(elapsed docker_xargs)"
	r=$((r + 1))
done
left=$(docker ps -aq --filter label=kfpc.managed | wc -l)
ks=$(echo "$ks" | median) ds=$(echo "$ds" | median)
kp=$(echo "$kp" | median) dx=$(echo "$dx" | median)

echo "docker_bench: $N steps, median of $ROUNDS rounds, engine $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'), $(nproc) CPUs"
awk -v n="$N" -v ks="$ks" -v ds="$ds" -v kp="$kp" -v dx="$dx" 'BEGIN {
	printf "  %-44s %7.2f s  %6.1f ms/step\n", "kfpc run --executor docker --parallelism 1", ks, ks * 1000 / n
	printf "  %-44s %7.2f s  %6.1f ms/step\n", "docker run --rm (serial shell loop)", ds, ds * 1000 / n
	printf "  %-44s %7.2f s  %6.1f ms/step\n", "kfpc run --executor docker --parallelism 2", kp, kp * 1000 / n
	printf "  %-44s %7.2f s  %6.1f ms/step\n", "docker run --rm (xargs -P 2)", dx, dx * 1000 / n
	printf "  serial ratio   kfpc/docker  = %.3f  (target <= 1.05)\n", ks / ds
	printf "  parallel gain  docker serial / kfpc -j2 = %.2fx  (target > 1)\n", ds / kp
	printf "  parallel ratio kfpc -j2 / docker xargs -P2 = %.3f\n", kp / dx
}'
echo "  containers left with label kfpc.managed: $left"

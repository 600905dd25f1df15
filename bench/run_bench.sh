#!/bin/bash
# run_bench.sh - `kfpc run` (durable LMDB state, logs, caching on) against `ninja -j2` on the same
# DAGs of no-op steps, side by side; prints both times and the ratio, then the peak RSS of a
# 100k-step run.
#
#   bench/run_bench.sh [KFPC] [N] [BIG]     defaults: build/kfpc, 10000, 100000
#
# DAGs: N independent steps (kfpc: one loop of N iterations, --parallelism 2; ninja: N edges,
# -j2), and a chain of N steps (kfpc: N steps linked by `after`; ninja: each edge depends on the
# previous one). The kfpc runs use an IR compiled beforehand (compile time is reported apart).
# Both run the same child: ninja runs every command as `/bin/sh -c "true I"` (posix_spawn of
# /bin/sh; `true` is a shell builtin), so each kfpc step runs ["/bin/sh", "-c", "true I"]
# (argv directly, no shell of kfpc's own). Running /usr/bin/true instead would cost kfpc's
# child more than ninja's (coreutils' true loads the locale files at start).
# Each pair runs REPS times (default 3), alternating, and the best time of each is compared, so
# that a busy machine hurts both alike. Never a test: it only prints numbers.
set -euo pipefail
KFPC=${1:-${KFPC:-build/kfpc}}
N=${2:-10000}
BIG=${3:-100000}
REPS=${REPS:-3}
KFPC=$(readlink -f "$KFPC")
command -v ninja >/dev/null || { echo "ninja is not installed"; exit 2; }
W=$(mktemp -d /tmp/kfpc-run-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
echo "load before: $(uptime)"

now() { date +%s.%N; }
best() { sort -g | head -1; }

# --- the DAGs ----------------------------------------------------------------------------------
cat > ind.kfp <<EOF
pipeline ind() {
  for i in 0..$((N - 1)) {
    step s { image "busybox:1.36"  timeout 1m  in i: int = i  run ["/bin/sh", "-c", "true {{inputs.i}}"] }
  }
}
EOF
{
  echo "pipeline chain() {"
  echo "  defaults { image \"busybox:1.36\"  timeout 1m }"
  echo "  step s0 { run [\"/bin/sh\", \"-c\", \"true 0\"] }"
  for ((i = 1; i < N; i++)); do
    echo "  step s$i { after s$((i - 1))  run [\"/bin/sh\", \"-c\", \"true $i\"] }"
  done
  echo "}"
} > chain.kfp
mkdir ind-ninja chain-ninja
{
  printf 'rule r\n  command = true $i\n'
  for ((i = 0; i < N; i++)); do printf 'build o%d: r\n  i = %d\n' "$i" "$i"; done
} > ind-ninja/build.ninja
{
  printf 'rule r\n  command = true $i\n'
  printf 'build o0: r\n  i = 0\n'
  for ((i = 1; i < N; i++)); do printf 'build o%d: r o%d\n  i = %d\n' "$i" $((i - 1)) "$i"; done
} > chain-ninja/build.ninja

t0=$(now); "$KFPC" compile ind.kfp -o ind.json; t1=$(now)
"$KFPC" compile chain.kfp -o chain.json; t2=$(now)
printf 'compile: %d-step loop %.2fs, %d-step chain %.2fs\n' "$N" "$(echo "$t1 - $t0" | bc)" \
  "$N" "$(echo "$t2 - $t1" | bc)"

run_kfpc() { # IR
  rm -rf state
  local a b
  a=$(now)
  "$KFPC" run "$1" --state state --parallelism 2 > /dev/null 2> kfpc.err || {
    echo "kfpc run $1 failed:"; tail -5 kfpc.err; exit 1; }
  b=$(now)
  echo "$b - $a" | bc
}
run_ninja() { # DIR
  rm -f "$1/.ninja_log" "$1/.ninja_deps"
  local a b
  a=$(now)
  ninja -C "$1" -j2 > /dev/null
  b=$(now)
  echo "$b - $a" | bc
}

ind_k=; ind_n=
for dag in ind chain; do
  k=(); n=()
  for ((r = 0; r < REPS; r++)); do
    k+=("$(run_kfpc $dag.json)")
    n+=("$(run_ninja $dag-ninja)")
  done
  kb=$(printf '%s\n' "${k[@]}" | best)
  nb=$(printf '%s\n' "${n[@]}" | best)
  [ $dag = ind ] && { ind_k=$kb; ind_n=$nb; }
  label=$([ $dag = ind ] && echo "$N independent no-op steps" || echo "$N-step chain")
  printf '%-32s kfpc %7.2fs  ninja -j2 %7.2fs  ratio %.2fx  (kfpc %s; ninja %s)\n' "$label" \
    "$kb" "$nb" "$(echo "$kb / $nb" | bc -l)" "$(echo "${k[@]}")" "$(echo "${n[@]}")"
done
printf 'per step (independent, best): kfpc %.2f ms, ninja %.2f ms\n' \
  "$(echo "$ind_k * 1000 / $N" | bc -l)" "$(echo "$ind_n * 1000 / $N" | bc -l)"

# --- memory of a big run -------------------------------------------------------------------------
sed "s/0\.\.$((N - 1))/0..$((BIG - 1))/" ind.kfp > big.kfp
"$KFPC" compile big.kfp -o big.json
rm -rf state
/usr/bin/time -f '%M %e' -o big.time "$KFPC" run big.json --state state --parallelism 2 \
  > /dev/null 2> big.err || { echo "kfpc run big failed"; tail -5 big.err; exit 1; }
read -r rss secs < big.time
printf '%d-step run: peak RSS %d MB, %.1fs (%.2f ms/step), state dir %s\n' "$BIG" \
  $((rss / 1024)) "$secs" "$(echo "$secs * 1000 / $BIG" | bc -l)" "$(du -sh state | cut -f1)"
echo "load after: $(uptime)"

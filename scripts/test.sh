#!/bin/sh
# Builds kfpc and runs the whole test suite: a -Werror build, the same suite under ASan+UBSan,
# and the libFuzzer harnesses for a bounded time. Usage: scripts/test.sh [quick]
#   quick: only the -Werror build and its tests.
# Environment: KFPC_FUZZ_SECONDS (default 60 per harness), KFPC_TEST_JOBS (default 2).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh test
# Steps run Debian's own python3 and coreutils (a version-manager shim first on PATH costs ~1 s
# per python start and is not what a stock machine has).
PATH=/usr/bin:/bin:$PATH
export PATH
jobs=${KFPC_TEST_JOBS:-2}

echo "== build (warnings are errors)"
cmake -S . -B build-test -DKFPC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j2
echo "== tests"
(cd build-test && ctest --output-on-failure -j"$jobs")
[ "${1:-}" = quick ] && exit 0

echo "== build (ASan+UBSan)"
cmake -S . -B build-asan -DKFPC_WERROR=ON -DKFPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j2
echo "== tests under ASan+UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs")

echo "== fuzz (libFuzzer, ${KFPC_FUZZ_SECONDS:-60}s per harness)"
cmake -S . -B build-fuzz -DKFPC_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j2
for h in build-fuzz/fuzz_*; do
  [ -x "$h" ] || continue
  name=$(basename "$h"); name=${name#fuzz_}
  corpus=build-fuzz/corpus-$name; mkdir -p "$corpus"
  seeds=""; [ -d "fuzz/corpus/$name" ] && seeds="fuzz/corpus/$name"
  dict=""; [ -f fuzz/kfp.dict ] && [ "$name" != ir ] && dict="-dict=fuzz/kfp.dict"
  echo "-- $name"
  if ! "$h" $dict -max_total_time="${KFPC_FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix=build-fuzz/ "$corpus" $seeds >build-fuzz/$name.log 2>&1; then
    tail -n 60 build-fuzz/$name.log
    echo "fuzz_$name found a failure (input saved under build-fuzz/)" >&2
    exit 1
  fi
  tail -n 8 build-fuzz/$name.log
done
echo "== all passed"

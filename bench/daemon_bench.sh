#!/bin/bash
# daemon_bench.sh - kfpd's HTTP throughput, side by side with a peer.
#
#   bench/daemon_bench.sh [BUILD_DIR]      (default: build; needs wrk: apt-get install wrk)
#
# 1. GET /api/v1/runs/{id} with wrk (keep-alive, 2 threads, 64 connections) while two runs of a
#    1,000-step pipeline (50 ms steps) execute: requests/s and p99 latency. The peer (3.) is
#    measured first, then kfpd, both while the runs execute.
# 2. POST /api/v1/runs (each one a durable, fsync'ed commit): runs accepted per second.
# 3. The peer: bench/mhd_floor.c (compiled here), a minimal libmicrohttpd server answering the
#    same JSON bytes from one prebuilt response with kfpd's MHD threading (epoll, turbo, one
#    thread per core), under the same wrk load: the ratio kfpd/libmicrohttpd-floor is printed.
# The machine's load average is printed before each measurement (other builds skew the numbers).
# KFPD=path/to/another/kfpd compares a different build (e.g. before/after).
# Everything listens on 127.0.0.1 only; every load is bounded in time. wrk and the servers share
# the machine's cores, so numbers are lower than on a dedicated client.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
KFPD=${KFPD:-$B/kfpd}
KFPC=${KFPC:-$B/kfpc}
DUR=${KFPD_BENCH_SECONDS:-10}
command -v wrk >/dev/null || { echo "daemon_bench: wrk not found (apt-get install wrk)" >&2; exit 2; }
[ -x "$KFPD" ] && [ -x "$KFPC" ] || { echo "daemon_bench: build $KFPD and $KFPC first" >&2; exit 2; }

T=$(mktemp -d /tmp/kfpd-bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port)
URL=http://127.0.0.1:$P
ADMIN=bench-admin-token-0123456789
KFPD_ADMIN_TOKEN=$ADMIN "$KFPD" --listen 127.0.0.1:$P --data-dir "$T/data" --kfpc "$KFPC" \
	--max-workers 2 --stop-workers 2>"$T/kfpd.log" &
PIDS="$PIDS $!"
for _ in $(seq 100); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.1; done

j() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -sf -H "Authorization: Bearer $ADMIN" -d '{"name":"bench"}' "$URL/api/v1/namespaces" >/dev/null
TOK=$(curl -sf -H "Authorization: Bearer $ADMIN" -d '{}' "$URL/api/v1/namespaces/bench/tokens" | j '["token"]')
H="Authorization: Bearer $TOK"

# a 1,000-step pipeline: a loop of tiny steps
cat >"$T/wide.kfp" <<'KFP'
pipeline wide() {
  parallelism 2
  for i in 1..1000 {
    step work {
      image "busybox:1.36"
      timeout 1m
      run ["sh", "-c", "echo step {{step.name}}; sleep 0.05"]
    }
  }
}
KFP
python3 - "$T/wide.kfp" >"$T/upload.json" <<'PY'
import json, sys
print(json.dumps({"source": open(sys.argv[1]).read(), "filename": "wide.kfp"}))
PY
curl -sf -H "$H" --data-binary @"$T/upload.json" "$URL/api/v1/pipelines" >/dev/null
RUN=$(curl -sf -H "$H" -d '{"pipeline":"wide"}' "$URL/api/v1/runs" | j '["id"]')
# a second run keeps the machine as busy while both servers are measured (the floor first)
curl -sf -H "$H" -d '{"pipeline":"wide"}' "$URL/api/v1/runs" >/dev/null
sleep 1
BODY=$(curl -sf -H "$H" "$URL/api/v1/runs/$RUN")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "run $RUN, body ${#BODY} bytes: $(echo "$BODY" | j '.get("progress")')"

w() { wrk -t2 -c64 -d"${DUR}s" --latency "$@" 2>&1; }
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1 == "99%" {print $2}'; }

echo "== peer: bench/mhd_floor.c, the least a libmicrohttpd server does to answer the same bytes"
printf '%s\n' "$BODY" >"$T/body.json"
cc -O2 -o "$T/mhd_floor" bench/mhd_floor.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread
PP=$(port)
"$T/mhd_floor" "$PP" "$T/body.json" "$(nproc)" &
FLOOR=$!
PIDS="$PIDS $FLOOR"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PP/" >/dev/null && break; sleep 0.1; done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
w "http://127.0.0.1:$PP/" >"$T/peer.txt"
P_RPS=$(rps <"$T/peer.txt"); P_P99=$(p99 <"$T/peer.txt")
echo "libmicrohttpd floor:  $P_RPS req/s, p99 $P_P99"
kill $FLOOR; wait $FLOOR 2>/dev/null || true


echo "== GET /api/v1/runs/{id} during the 1,000-step run (wrk -t2 -c64 -d${DUR}s)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
w -H "$H" "$URL/api/v1/runs/$RUN" >"$T/get.txt"
K_RPS=$(rps <"$T/get.txt"); K_P99=$(p99 <"$T/get.txt")
echo "kfpd:  $K_RPS req/s, p99 $K_P99"
echo "progress after: $(curl -s -H "$H" "$URL/api/v1/runs/$RUN" | j '.get("progress")' 2>/dev/null || true)"

python3 -c "print('ratio kfpd/libmicrohttpd-floor: %.2f (req/s)' % ($K_RPS / max($P_RPS, 1e-9)))"

echo "== POST /api/v1/runs: durable submissions per second (wrk -t1 -c8 -d5s)"
curl -sf -H "$H" -d '{"name":"empty","ir":{"kfpc_ir":1,"name":"empty","doc":null,"loc":{"file":"x","line":1,"col":1},"types":[],"params":[],"parallelism":0,"timeout":0,"schedules":[],"nodes":[],"finally":[],"outputs":[]}}' "$URL/api/v1/pipelines" >/dev/null
cat >"$T/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"pipeline":"empty"}'
wrk.headers["Content-Type"] = "application/json"
LUA
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t1 -c8 -d5s -s "$T/post.lua" -H "$H" "$URL/api/v1/runs" >"$T/post.txt" 2>&1
echo "kfpd:  $(rps <"$T/post.txt") runs accepted/s (each one fsync'ed before its 201)"
echo "runs finished meanwhile: $(curl -s -H "$H" "$URL/metrics" | grep -E '^kfpd_runs\{' | tr '\n' ' ')"
grep -E "Non-2xx|Socket errors" "$T/post.txt" || true

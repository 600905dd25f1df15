#!/bin/bash
# daemon_bench.sh - kfpd's HTTP throughput, side by side with a peer.
#
#   bench/daemon_bench.sh [BUILD_DIR]      (default: build; needs wrk: apt-get install wrk)
#
# 1. GET /api/v1/runs/{id} with wrk (keep-alive, 64 connections) while a 1,000-step run (a loop
#    of 50 ms steps, parallelism 2) executes: requests/s, p99 latency, and the CPU time per
#    request of the server and of wrk (load-independent: the machine is shared, req/s are not).
#    Each server gets a fresh run, started just before its measurement and cancelled after it;
#    its progress is printed before and after (it must still be running after).
#    wrk runs twice per server: -t1 (one client thread: at most one core for the client, so the
#    server and the run keep at least the other one; the headline figure) and -t2 (the client
#    may take both cores; the scheduler then splits 2 cores among 2 client threads, the
#    server's threads and the run).
# 2. The peer, measured first under the same wrk commands while its own run executes:
#    bench/mhd_floor.c (compiled here), a minimal libmicrohttpd server answering the same JSON
#    bytes from one prebuilt response with kfpd's MHD threading (epoll internal thread, turbo, a
#    pool of one thread per core): ratios kfpd / floor are printed.
# 3. POST /api/v1/runs (each one durable, fsync'ed, before its 201; concurrent ones share group
#    commits): runs accepted per second with 8 and 32 concurrent clients, and the number of
#    LMDB commits they took (with mdb_stat from lmdb-utils, when installed).
# `uptime` is printed with every measurement (other builds skew wall-clock numbers).
# KFPD=path/to/another/kfpd compares a different build (e.g. before/after).
# Everything listens on 127.0.0.1 only; every load is bounded in time. wrk, the servers and the
# run share the machine's cores, so numbers are lower than with a dedicated client.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
KFPD=${KFPD:-$B/kfpd}
KFPC=${KFPC:-$B/kfpc}
DUR=${KFPD_BENCH_SECONDS:-5}
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
KPID=$!
PIDS="$PIDS $KPID"
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

TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of process $1, all threads
state() { curl -sf -H "$H" "$URL/api/v1/runs/$1" | python3 -c 'import json,sys; r=json.load(sys.stdin); p=r.get("progress") or {}; print("%s, %s of 1,000 steps done" % (r["state"], p.get("succeeded")))'; }
newrun() {
	local id
	id=$(curl -sf -H "$H" -d '{"pipeline":"wide"}' "$URL/api/v1/runs" | j '["id"]')
	for _ in $(seq 100); do # until its worker runs steps
		curl -sf -H "$H" "$URL/api/v1/runs/$id" | grep -q '"succeeded":[1-9]' && break
		sleep 0.1
	done
	echo "$id"
}

# measure NAME PID THREADS URL [wrk args]: one wrk run against server PID; prints one line
measure() {
	local name=$1 pid=$2 thr=$3 url=$4 c0 c1 wcpu
	shift 4
	c0=$(cpu "$pid")
	wcpu=$( { TIMEFORMAT='%U %S'; time wrk -t"$thr" -c64 -d"${DUR}s" --latency "$@" "$url" >"$T/w.txt" 2>&1; } 2>&1)
	c1=$(cpu "$pid")
	python3 - "$name" "$thr" "$c0" "$c1" "$TCK" "$wcpu" "$T/w.txt" <<'PY'
import re, sys
name, thr, c0, c1, tck, wcpu, path = sys.argv[1:]
out = open(path).read()
n = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
srv = (float(c1) - float(c0)) / float(tck) * 1e6 / n
cli = sum(float(x) for x in wcpu.split()) * 1e6 / n
print("%-6s wrk -t%s -c64: %9.0f req/s  p99 %-8s  CPU/request: server %5.1f us, wrk %5.1f us%s"
      % (name, thr, rps, p99, srv, cli, "  NON-2xx: %s" % bad.group(1) if bad else ""))
open(path + ".%s.%s" % (name, thr), "w").write("%f %f\n" % (rps, srv))
PY
}

echo "kfpd: $KFPD ($(nproc) cores, HTTP threads: one per core)"
echo "== GET /api/v1/runs/{id} while a 1,000-step run executes (${DUR}s per measurement)"
echo "-- peer: bench/mhd_floor.c, the least a libmicrohttpd server does to answer the same bytes"
RUN=$(newrun)
curl -sf -H "$H" "$URL/api/v1/runs/$RUN" >"$T/body.json"
echo "body: $(wc -c <"$T/body.json") bytes; run $RUN: $(state "$RUN")"
cc -O2 -o "$T/mhd_floor" bench/mhd_floor.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread
PP=$(port)
"$T/mhd_floor" "$PP" "$T/body.json" "$(nproc)" &
FLOOR=$!
PIDS="$PIDS $FLOOR"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PP/" >/dev/null && break; sleep 0.1; done
for thr in 1 2; do
	echo "uptime: $(uptime)"
	measure floor "$FLOOR" "$thr" "http://127.0.0.1:$PP/"
done
echo "run $RUN after: $(state "$RUN")"
kill $FLOOR; wait $FLOOR 2>/dev/null || true
curl -sf -X POST -H "$H" "$URL/api/v1/runs/$RUN/cancel" >/dev/null || true

echo "-- kfpd"
RUN=$(newrun)
echo "run $RUN before: $(state "$RUN")"
for thr in 1 2; do
	echo "uptime: $(uptime)"
	measure kfpd "$KPID" "$thr" "$URL/api/v1/runs/$RUN" -H "$H"
done
echo "run $RUN after: $(state "$RUN")"
curl -sf -X POST -H "$H" "$URL/api/v1/runs/$RUN/cancel" >/dev/null || true
for thr in 1 2; do
	python3 - "$T/w.txt.kfpd.$thr" "$T/w.txt.floor.$thr" "$thr" <<'PY'
import sys
k = [float(x) for x in open(sys.argv[1]).read().split()]
f = [float(x) for x in open(sys.argv[2]).read().split()]
print("ratio kfpd/floor (wrk -t%s): %.2f of the req/s, %.2f of the server CPU per request"
      % (sys.argv[3], k[0] / max(f[0], 1e-9), k[1] / max(f[1], 1e-9)))
PY
done

echo "== POST /api/v1/runs: durable submissions per second (wrk -t1 -d${DUR}s)"
curl -sf -H "$H" -d '{"name":"empty","ir":{"kfpc_ir":1,"name":"empty","doc":null,"loc":{"file":"x","line":1,"col":1},"types":[],"params":[],"parallelism":0,"timeout":0,"schedules":[],"nodes":[],"finally":[],"outputs":[]}}' "$URL/api/v1/pipelines" >/dev/null
cat >"$T/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"pipeline":"empty"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# LMDB transactions of daemon.mdb (mdb_stat, from lmdb-utils, when installed): commits per run
txnid() { command -v mdb_stat >/dev/null && mdb_stat -e "$T/data/daemon.mdb" 2>/dev/null |
	awk '/Last transaction ID/ {print $4}' || true; }
for c in 8 32; do
	echo "uptime: $(uptime)"
	t0=$(txnid)
	wrk -t1 -c$c -d"${DUR}s" -s "$T/post.lua" -H "$H" "$URL/api/v1/runs" >"$T/post.txt" 2>&1
	t1=$(txnid)
	n=$(awk '/requests in/ {print $1}' "$T/post.txt")
	extra=""
	[ -z "$t0" ] || extra="; $n runs in $((t1 - t0)) LMDB commits, the loop's included"
	echo "kfpd -c$c: $(awk '/Requests\/sec/ {print $2}' "$T/post.txt") runs accepted/s" \
		"(each 201 once its commit is fsync'ed)$extra"
	grep -E "Non-2xx|Socket errors" "$T/post.txt" || true
done
echo "runs meanwhile: $(curl -s -H "$H" "$URL/metrics" | grep -E '^kfpd_runs\{' | tr '\n' ' ')"

#!/bin/bash
# store_bench.sh - cost of recording one step-state change in kfpc's LMDB store, next to the
# same record written to SQLite (the usual embedded choice; Python's sqlite3 module) with the
# same durability (survives a process crash, not an OS crash: LMDB MDB_NOSYNC vs SQLite WAL +
# synchronous=OFF). Prints microseconds per commit and the ratio. Not a test: no assertion.
#
#   bench/store_bench.sh [N]        N records (default 20000)
#
# The kfpc side is a tiny C driver built here against engine/store.c (the exact code `kfpc run`
# uses); each iteration is one store_step_put = one LMDB write transaction, like the
# scheduler's state changes. A second kfpc line batches 64 changes per commit (group commit),
# a third flushes every commit to disk (KFPC_STORE_SYNC=1, fewer records).
set -euo pipefail
N=${1:-20000}
SRC=${KFPC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
TMP=$(mktemp -d /tmp/kfpc-store-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

cat >"$TMP/drv.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv)
{
	int n = atoi(argv[2]), batch = atoi(argv[3]);
	struct store *st; char err[512], id[STORE_RUN_ID_SIZE], name[64];
	if (store_open(argv[1], STORE_OPEN_CREATE, &st, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
	store_run_id_new(id);
	struct store_run r = {0}; r.id = id; r.pipeline = "bench"; r.ir_json = "{}"; r.created = store_now();
	if (store_run_create(st, &r)) { fprintf(stderr, "%s\n", store_errmsg(st)); return 1; }
	json_object *out = json_tokener_parse("{\"loss\":0.25,\"rows\":150}");
	struct store_attempt a = {1, 0, 0, 0, 0, STORE_FAIL_NONE, NULL, "/x/stdout", "/x/stderr", "local", "1234:1234:99"};
	double t0 = now();
	for (int i = 0; i < n; i++) {
		struct store_step s = {0};
		snprintf(name, sizeof name, "fit[%d]", i);
		s.run = id; s.id = name; s.node = "fit"; s.state = STORE_STEP_SUCCEEDED;
		a.started = store_now(); a.finished = a.started;
		s.attempts = &a; s.nattempts = 1; s.outputs = out;
		if (batch > 1 && i % batch == 0) store_batch_begin(st);
		if (store_step_put(st, &s)) { fprintf(stderr, "%s\n", store_errmsg(st)); return 1; }
		if (batch > 1 && (i % batch == batch - 1 || i == n - 1)) store_batch_end(st);
	}
	double t1 = now();
	printf("%.2f\n", (t1 - t0) / n * 1e6);
	json_object_put(out);
	store_close(st);
	return 0;
}
C
cc -std=c11 -D_GNU_SOURCE -O2 -iquote "$SRC/engine" $(pkg-config --cflags json-c lmdb) \
   -o "$TMP/drv" "$TMP/drv.c" "$SRC/engine/store.c" $(pkg-config --libs json-c lmdb)

kfpc_us=$("$TMP/drv" "$TMP/s1" "$N" 1)
kfpc_batch_us=$("$TMP/drv" "$TMP/s2" "$N" 64)
NSYNC=$(( N / 20 > 200 ? N / 20 : 200 ))
kfpc_sync_us=$(KFPC_STORE_SYNC=1 "$TMP/drv" "$TMP/s3" "$NSYNC" 1)
sqlite_us=$(/usr/bin/python3 - "$TMP/b.sqlite" "$N" <<'PY'
import json, sqlite3, sys, time
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path, isolation_level=None)
db.execute("pragma journal_mode=wal"); db.execute("pragma synchronous=off")
db.execute("create table steps(k text primary key, v text)")
t0 = time.monotonic()
for i in range(n):
    rec = json.dumps({"run": "r1", "id": f"fit[{i}]", "node": "fit", "state": "succeeded",
                      "attempts": [{"number": 1, "started": time.time(), "exit_code": 0,
                                    "stdout": "/x/stdout", "stderr": "/x/stderr",
                                    "executor": "local", "handle": "1234:1234:99"}],
                      "outputs": {"loss": 0.25, "rows": 150}})
    db.execute("begin"); db.execute("insert or replace into steps values(?,?)", (f"r1/fit[{i}]", rec)); db.execute("commit")
print("%.2f" % ((time.monotonic() - t0) / n * 1e6))
PY
)
printf '%-44s %10s\n' "one step-state commit ($N records)" "us/commit"
printf '%-44s %10s\n' "kfpc store (LMDB, 1 txn per change)" "$kfpc_us"
printf '%-44s %10s\n' "kfpc store (LMDB, group commit of 64)" "$kfpc_batch_us"
printf '%-44s %10s\n' "kfpc store (KFPC_STORE_SYNC=1, $NSYNC records)" "$kfpc_sync_us"
printf '%-44s %10s\n' "SQLite via python3 (WAL, synchronous=off)" "$sqlite_us"
awk -v a="$kfpc_us" -v b="$sqlite_us" 'BEGIN { printf "ratio kfpc/sqlite: %.2f (lower is better)\n", a / b }'

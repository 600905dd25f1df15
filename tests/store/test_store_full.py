#!/usr/bin/python3
"""A state store that reaches its map cap (KFPC_STORE_MAX_MAP) fails the run with a clear
error, stays consistent and readable, and keeps working once the cap is raised.

  1. KFPC_STORE_MAX_MAP=1M, tests/store/data/big_value.kfp (a 600 kB value output, also put in
     the cache index): the map starts at 256 KiB, doubles to the 1 MiB cap, then `kfpc run`
     exits 1 and says "state store is full (map size 1048576 bytes)"; no crash, no hang.
  2. `kfpc runs` / `kfpc show` still read the store: the run is recorded, `failed`, with the
     reason; the small step before the big one is recorded as succeeded.
  3. Without the cap, the same state dir runs a pipeline to success (the map grows) and the
     earlier records are intact.
  4. A store whose schema version is newer than this kfpc's is refused with a clear message
     by every command (built with mdb_load from lmdb-utils; skipped without it).

Scratch: $KFPC_BUILD/testtmp/store_full/.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storelib  # noqa: E402
from storelib import DATA, KFPC, check, env, failures, paths, runner  # noqa: E402

TMP, STATE = paths("store_full")
kfpc = runner(TMP, STATE)


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)

    rc, out, err = kfpc("run", os.path.join(DATA, "big_value.kfp"), KFPC_STORE_MAX_MAP="1M")
    check(rc == 1, "run in a full store exits 1 (the run failed), no crash (got %d)" % rc)
    check("state store is full (map size 1048576 bytes)" in err,
          "clear map-full message on stderr:\n" + err)

    rc, out, err = kfpc("runs", "--json")
    check(rc == 0, "runs after map full: exit %d %s" % (rc, err))
    runs = json.loads(out) if rc == 0 else []
    check(len(runs) == 1, "the run is recorded (%d runs)" % len(runs))
    if runs:
        r = runs[0]
        check(r["status"] == "failed", "run marked failed (got %s)" % r["status"])
        check(r["reason"] and "state store is full" in r["reason"],
              "run reason names the full store (got %r)" % r["reason"])
        rc, out, err = kfpc("show", r["id"], "--json")
        check(rc == 0, "show after map full: exit %d %s" % (rc, err))
        if rc == 0:
            st = {s["id"]: s for s in json.loads(out)["step_instances"]}
            check(st.get("small", {}).get("state") == "succeeded",
                  "the step before the full store is recorded: %s" % st.get("small"))
            check(st.get("big", {}).get("state") != "succeeded",
                  "the step whose record did not fit is not succeeded")
        rc, out, err = kfpc("show", r["id"])
        check(rc == 0 and "status    failed: " in out, "show text after map full")
    rc, out, err = kfpc("runs")
    check(rc == 0 and "big_value" in out, "runs table after map full")

    # raise the cap: the same store keeps working
    rc, out, err = kfpc("run", os.path.join(DATA, "big_value.kfp"))
    check(rc == 0, "run with the default cap in the same state dir: exit %d\n%s" % (rc, err))
    rc, out, err = kfpc("runs", "--json")
    runs = json.loads(out) if rc == 0 else []
    check([r["status"] for r in runs] == ["succeeded", "failed"],
          "both runs listed, newest first: %s" % [r["status"] for r in runs])

    # a store from a newer kfpc
    if shutil.which("mdb_load"):
        newer = os.path.join(TMP, "newer")
        os.makedirs(os.path.join(newer, "store.mdb"))
        subprocess.run(["mdb_load", "-T", "-s", "meta", os.path.join(newer, "store.mdb")],
                       input=b"schema\n99\n", check=True)
        for args in (["runs"], ["show", "r1"], ["run", os.path.join(DATA, "big_value.kfp")]):
            p = subprocess.run([KFPC] + args + ["--state", newer], cwd=TMP,
                               capture_output=True, timeout=60)
            err = p.stderr.decode(errors="replace")
            check(p.returncode in (1, 2) and "was written by a newer kfpc (schema 99 > 2)" in err,
                  "kfpc %s refuses a newer store (exit %d): %s" % (args[0], p.returncode, err))
    else:
        print("note: mdb_load not installed; schema version check skipped", file=sys.stderr)


if __name__ == "__main__":
    storelib.run_main(main)

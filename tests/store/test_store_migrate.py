#!/usr/bin/python3
"""A schema-1 state store (step records as JSON text) is read as it is and migrated to schema 2
(binary step records) by the first command that writes, without losing a record.

  1. `kfpc run` makes a store; mdb_load (lmdb-utils) then sets its "schema" back to 1 and adds
     run r1 with two step records in the schema-1 JSON encoding, as kfpc 1 wrote them.
  2. `kfpc show r1 --json`, `kfpc runs` read them (states, attempts, exit codes, outputs,
     artifacts, handles) and leave the version at 1 (reading never migrates).
  3. `kfpc run` writes: the version becomes 2; r1 is still read the same, next to the new
     run's binary records, and `kfpc logs` finds r1's log through the JSON record.

Skipped (exit 77) without mdb_load / mdb_dump. Scratch: $KFPC_BUILD/testtmp/store_migrate/.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storelib  # noqa: E402
from storelib import DATA, KFPC, check, failures, paths, runner  # noqa: E402

TMP, STATE = paths("store_migrate")
kfpc = runner(TMP, STATE)
DB = os.path.join(STATE, "store.mdb")
DIGEST = "ab" * 32

RUN = {"id": "r1", "pipeline": "old", "source": "old.kfp", "params": {"n": 2},
       "status": "succeeded", "reason": None, "created": 1700000000.5,
       "started": 1700000000.5, "finished": 1700000003.25, "executor": "local",
       "outputs": {"count": 2}}


def step(sid, seq, state, exit_code, outputs, out_arts, log):
    return {"run": "r1", "id": sid, "node": sid, "seq": seq, "state": state, "reason": None,
            "started": 1700000001.0 + seq, "finished": 1700000001.5 + seq,
            "attempts": [{"number": 1, "started": 1700000001.0 + seq,
                          "finished": 1700000001.5 + seq, "exit_code": exit_code, "signal": 0,
                          "fail": "", "reason": None, "stdout": log, "stderr": None,
                          "executor": "local", "handle": "123:123:456"}],
            "inputs": {"n": 2}, "in_arts": [], "outputs": outputs, "out_arts": out_arts,
            "cache_key": "cd" * 32, "from_cache": False, "cached_from": None}


def load(db, records):
    """mdb_load -T: keys and values as printable text, other bytes as backslash + 2 hex."""
    def esc(b):
        return "".join(chr(c) if 32 <= c < 127 and c != 92 else "\\%02x" % c for c in b)
    text = "".join(esc(k) + "\n" + esc(v) + "\n" for k, v in records).encode()
    subprocess.run(["mdb_load", "-T", "-s", db, DB], input=text, check=True)


def schema():
    p = subprocess.run(["mdb_dump", "-p", "-s", "meta", DB], capture_output=True, check=True)
    lines = [l.strip() for l in p.stdout.decode().splitlines()]
    return lines[lines.index("schema") + 1] if "schema" in lines else None


def check_r1(when):
    rc, out, err = kfpc("show", "r1", "--json")
    if not check(rc == 0, "%s: show r1 --json: exit %d: %s" % (when, rc, err)):
        return
    doc = json.loads(out)
    st = {s["id"]: s for s in doc["step_instances"]}
    check(doc["status"] == "succeeded" and doc["pipeline"] == "old",
          "%s: r1 run record (got %s %s)" % (when, doc["status"], doc["pipeline"]))
    check(list(st) == ["prep", "fit"], "%s: r1 steps in seq order (got %s)" % (when, list(st)))
    if set(st) != {"prep", "fit"}:
        return
    check(st["prep"]["state"] == "succeeded" and st["fit"]["state"] == "failed",
          "%s: states (got %s, %s)" % (when, st["prep"]["state"], st["fit"]["state"]))
    check(st["prep"]["outputs"] == {"count": 2}, "%s: prep outputs (got %s)"
          % (when, st["prep"]["outputs"]))
    att = st["fit"]["attempts"]
    check(len(att) == 1 and att[0]["exit_code"] == 3 and att[0]["number"] == 1,
          "%s: fit attempt (got %s)" % (when, att))
    check([a["digest"] for a in st["prep"]["output_artifacts"]] == [DIGEST],
          "%s: prep output artifact (got %s)" % (when, st["prep"]["output_artifacts"]))


def main():
    if not shutil.which("mdb_load") or not shutil.which("mdb_dump"):
        print("skipped: mdb_load/mdb_dump (lmdb-utils) not installed")
        sys.exit(77)
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    rc, out, err = kfpc("run", os.path.join(DATA, "store_demo.kfp"))
    if not check(rc == 0, "first run: exit %d: %s" % (rc, err)):
        return
    check(schema() == "2", "a new store has schema 2 (got %s)" % schema())

    # make it a schema-1 store holding run r1 in the old encoding
    log = os.path.join(TMP, "prep.stdout")
    with open(log, "w") as f:
        f.write("old log\n")
    load("meta", [(b"schema", b"1")])
    load("runs", [(b"r1", json.dumps(RUN).encode())])
    load("steps", [
        (b"r1\0prep", json.dumps(step("prep", 1, "succeeded", 0, {"count": 2},
                                      [["data", DIGEST]], log)).encode()),
        (b"r1\0fit", json.dumps(step("fit", 2, "failed", 3, {}, [], None)).encode())])
    check(schema() == "1", "the doctored store has schema 1")

    check_r1("schema 1")
    rc, out, err = kfpc("runs")
    check(rc == 0 and "r1" in out and "old" in out, "runs lists r1: %d %s %s" % (rc, out, err))
    check(schema() == "1", "reading does not migrate (got schema %s)" % schema())

    # the first write migrates
    rc, out, err = kfpc("run", os.path.join(DATA, "store_demo.kfp"))
    check(rc == 0, "run on the schema-1 store: exit %d: %s" % (rc, err))
    check(schema() == "2", "a write migrates the store to schema 2 (got %s)" % schema())
    check_r1("after migration")
    rc, out, err = kfpc("logs", "r1", "prep")
    check(rc == 0 and out == "old log\n", "logs of a schema-1 record: %d %r %s" % (rc, out, err))
    rc, out, err = kfpc("runs", "--json")
    runs = json.loads(out) if rc == 0 else []
    check(len(runs) == 3 and all(r["status"] == "succeeded" for r in runs),
          "three runs, all succeeded: %s" % [(r["id"], r["status"]) for r in runs])


if __name__ == "__main__":
    storelib.run_main(main)

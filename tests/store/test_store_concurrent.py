#!/usr/bin/python3
"""Several kfpc processes share one state directory: three `kfpc run`s of
tests/store/data/store_demo.kfp (rows=5, 6, 7) start at once on the same --state, while
`kfpc runs` reads it in a loop. Every run must succeed with its own outputs, the readers must
never fail, and bytes written by parallel steps are stored once.

Scratch: $KFPC_BUILD/testtmp/store_concurrent/.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storelib  # noqa: E402
from storelib import DATA, KFPC, check, env, failures, paths, runner  # noqa: E402

TMP, STATE = paths("store_concurrent")
kfpc = runner(TMP, STATE)


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    procs = [subprocess.Popen([KFPC, "run", os.path.join(DATA, "store_demo.kfp"), "-p",
                               "rows=%d" % rows, "--state", STATE], cwd=TMP, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for rows in (5, 6, 7)]
    reads = 0
    while any(p.poll() is None for p in procs):
        rc, out, err = kfpc("runs", "--json")
        # the very first reader may find no store yet (no run has created it)
        if rc == 0:
            json.loads(out)
            reads += 1
        else:
            check("no kfpc state" in err, "kfpc runs while runs write: exit %d %s" % (rc, err))
    for rows, p in zip((5, 6, 7), procs):
        out, err = p.communicate(timeout=300)
        check(p.returncode == 0, "run rows=%d: exit %d\n%s" % (rows, p.returncode,
                                                               err.decode(errors="replace")))
    rc, out, err = kfpc("runs", "--json")
    runs = json.loads(out) if rc == 0 else []
    check(len(runs) == 3 and all(r["status"] == "succeeded" for r in runs),
          "three runs succeeded: %s" % [(r["id"], r["status"]) for r in runs])
    counts = sorted(r["outputs"].get("count") for r in runs if r.get("outputs"))
    check(counts == [5, 6, 7], "each run has its own outputs: %s" % counts)
    for r in runs:
        rc, out, err = kfpc("show", r["id"], "--json")
        steps = json.loads(out)["step_instances"] if rc == 0 else []
        # steps that do not depend on the run's parameter may be served from another run's
        # cache entry, depending on which run got there first
        check(len(steps) == 5 and all(s["state"] in ("succeeded", "cached") for s in steps),
              "run %s: 5 steps succeeded or cached: %s" % (r["id"], [(s.get("name"), s["state"]) for s in steps]))
    # prep, twin and fit's sub/copy.txt write the same bytes at the same time (prep and twin
    # run in parallel): each content is stored exactly once, whoever won the race
    contents = {}
    for root, _, files in os.walk(os.path.join(STATE, "cas", "blobs")):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                data = fh.read()
            contents[data] = contents.get(data, 0) + 1
    for rows in (5, 6, 7):
        data = "".join("%d\n" % i for i in range(1, rows + 1)).encode()
        check(contents.get(data) == 1, "rows=%d data stored once (found %s)"
              % (rows, contents.get(data)))
    check(not os.listdir(os.path.join(STATE, "cas", "tmp")), "no partial objects left in cas/tmp")

if __name__ == "__main__":
    storelib.run_main(main)

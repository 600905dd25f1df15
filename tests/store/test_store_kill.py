#!/usr/bin/python3
"""Durability: what `kfpc run` reported survives kill -9 of the engine, and the store is still
readable and resumable.

tests/store/data/wait_go.kfp runs `first` (finishes at once), then `waiter`, which blocks until
a file exists. The test waits (no timing guess: it polls `kfpc show --json` from another
process) until `waiter` is recorded running, kills kfpc with SIGKILL, then checks:
  - `kfpc runs` / `kfpc show` open the store: the run is still `running`; `first` is
    `succeeded` with its output; `waiter` is `running` with its attempt and executor handle;
  - `kfpc run --resume RUN` (no source file: the IR is in the store) finishes the run once the
    file exists, and the run ends `succeeded` with both outputs.

Scratch: $KFPC_BUILD/testtmp/store_kill/.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storelib  # noqa: E402
from storelib import DATA, KFPC, check, env, failures, paths, runner  # noqa: E402

TMP, STATE = paths("store_kill")
kfpc = runner(TMP, STATE)


def show(run):
    rc, out, err = kfpc("show", run, "--json")
    if rc != 0:
        return None
    doc = json.loads(out)
    doc["by_id"] = {s["id"]: s for s in doc["step_instances"]}
    return doc


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    go = os.path.join(TMP, "go")
    p = subprocess.Popen([KFPC, "run", os.path.join(DATA, "wait_go.kfp"), "-p", "go=" + go,
                          "--state", STATE], cwd=TMP, env=env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    run = None
    try:
        for _ in range(2400):
            if p.poll() is not None:
                break
            rc, out, _ = kfpc("runs", "--json")
            runs = json.loads(out) if rc == 0 else []
            if runs:
                d = show(runs[0]["id"])
                w = d["by_id"].get("waiter", {}) if d else {}
                # the handle is written in the scheduler round after the one that started it
                if w.get("state") == "running" and w["attempts"] and w["attempts"][0]["handle"]:
                    run = runs[0]["id"]
                    break
            time.sleep(0.05)
        if not check(run is not None, "waiter seen running, with its handle, before kill -9"):
            return
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()

    rc, out, err = kfpc("runs", "--json")
    check(rc == 0, "runs after kill -9: exit %d %s" % (rc, err))
    runs = json.loads(out) if rc == 0 else []
    check(len(runs) == 1 and runs[0]["status"] == "running",
          "the killed run is recorded, still running: %s" % runs)
    d = show(run)
    if check(d is not None, "show after kill -9"):
        first = d["by_id"].get("first", {})
        check(first.get("state") == "succeeded" and first.get("outputs") == {"word": "first"},
              "a step reported finished before the kill survives it: %s" % first)
        w = d["by_id"].get("waiter", {})
        check(w.get("state") == "running" and len(w.get("attempts", [])) == 1,
              "the in-flight step is recorded running with its attempt: %s" % w)
        if w.get("attempts"):
            check(bool(w["attempts"][0].get("handle")), "the attempt's executor handle survives")
    rc, out, err = kfpc("show", run)
    check(rc == 0 and "status    running" in out, "show text after kill -9")

    open(go, "w").close()  # lets the orphaned waiter (if still alive) and any rerun finish
    rc, out, err = kfpc("run", "--resume", run[:14], timeout=300)
    check(rc == 0, "resume after kill -9: exit %d\n%s\n%s" % (rc, out, err))
    check(out.endswith("first = first\ndone = done\n"),
          "resumed run prints both outputs:\n" + out)
    d = show(run)
    if check(d is not None, "show after resume"):
        check(d["status"] == "succeeded", "resumed run succeeded (got %s)" % d["status"])
        check(d["by_id"].get("waiter", {}).get("state") == "succeeded", "waiter succeeded")
        check(d["outputs"] == {"first": "first", "done": "done"},
              "run outputs after resume: %s" % d["outputs"])
    rc, out, err = kfpc("runs", "--json")
    runs = json.loads(out) if rc == 0 else []
    check(len(runs) == 1, "resume continues the same run (no new run): %d runs" % len(runs))


if __name__ == "__main__":
    storelib.run_main(main)

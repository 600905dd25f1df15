#!/usr/bin/python3
"""`kfpc run --resume RUN` first kills every process the interrupted run left behind, including
one the store never heard of (an attempt spawned just before the crash, whose record did not
commit), so that nothing of the old process races the resumed run.

A run is killed (-9) while its step sleeps. Two stray processes then carry the run's
KFPC_RUN_ID: the killed attempt's own `sleep` (in the store as running) and a process standing
in for an unrecorded attempt of another step (`KFPC_STEP=ghost`, not in the store), started in a
session of its own so that no process group ties it to the run. After the resume:
  - it succeeded and the step ran again;
  - both stray processes are gone (a process of another run id, started the same way, is not);
  - no process with the run id is left.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402


def stray(env, run_id, step):
    e = dict(env)
    e.update({"KFPC_RUN_ID": run_id, "KFPC_STEP": step, "KFPC_ATTEMPT": "1"})
    return subprocess.Popen(["sleep", "300"], env=e, start_new_session=True)


def alive(p):
    if p.poll() is not None:
        return False
    return not runlib.killed(p.pid)


def main():
    c = runlib.Checker("resume_sweep")
    d = runlib.scratch("run_resume_sweep")
    env = runlib.env_for(d)
    _, rid = runlib.run_killed_at_marker(d, env)
    if not rid:
        print("no run id in stdout")
        return 1
    c.check(len(runlib.leftovers(rid)) >= 1, "the killed run left its sleeping step behind")
    ghost = stray(env, rid, "ghost")
    other = stray(env, rid + "-other", "s")
    try:
        r = runlib.kfpc_run(d, ["--resume", rid], env=env, timeout=120)
        c.check(r.returncode == 0, "the resume succeeds", r.stderr)
        with open(os.path.join(d, "log")) as f:
            c.check("attempt" in f.read(), "the step ran again")
        for _ in range(100):  # a killed process may need a moment to be reaped by its parent
            ghost.poll()
            if not alive(ghost):
                break
            time.sleep(0.05)
        c.check(not alive(ghost), "a process of the run the store does not know is killed")
        c.check(alive(other), "a process of another run is left alone")
        left = runlib.leftovers(rid)
        c.check(not left, "no process of the run is left", repr(left))
    finally:
        for q in (ghost, other):
            if q.poll() is None:
                q.kill()
                q.wait()
    c.done()


if __name__ == "__main__":
    sys.exit(main())

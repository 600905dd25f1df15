#!/usr/bin/python3
"""Many short steps in parallel: every one is run once, recorded and logged. Spawns overlap with
other steps' ends, which once left a finished step's pipe in the executor's epoll set (a child
being spawned still held a copy of it) and crashed the engine on a freed job (seen by ASan in
the sanitizer build, and as a crash now and then in a normal one). 3000 iterations, parallelism
4, each writing to stdout and stderr; a step with an output and a step without one."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runlib import KFPC, env_for, kfpc_run, run_id, scratch, states, write  # noqa: E402

N = 3000
d = scratch("many_short")
src = write(d, "many.kfp", """
pipeline many() {
  for i in 0..%d {
    step s { image "busybox:1.36"  timeout 1m  in i: int = i
             run ["/bin/sh", "-c", "echo out {{inputs.i}}; echo err {{inputs.i}} >&2"] }
    step v { image "busybox:1.36"  timeout 1m  in i: int = i  out n: int from stdout
             run ["/bin/sh", "-c", "echo {{inputs.i}}"] }
  }
}
""" % (N // 2 - 1))
failures = []
p = kfpc_run(d, [src, "--parallelism", "4"], timeout=1200)
if p.returncode != 0:
    failures.append("kfpc run: exit %d (a crash is negative): %s" % (p.returncode,
                                                                     p.stderr[-2000:]))
st = states(p.stderr)
ok = sum(1 for v in st.values() if v == "succeeded")
if ok != N:
    failures.append("%d of %d steps reported succeeded" % (ok, N))
rid = run_id(p.stdout)
if rid:
    state = os.path.join(d, "state")
    q = subprocess.run([KFPC, "show", rid, "--json", "--state", state], cwd=d, env=env_for(d),
                       capture_output=True, text=True, timeout=300)
    doc = json.loads(q.stdout) if q.returncode == 0 else {}
    steps = [s for s in doc.get("step_instances", []) if s["id"].startswith(("s[", "v["))]
    if len(steps) != N:
        failures.append("show lists %d step instances, not %d" % (len(steps), N))
    once = [s["id"] for s in steps if s["state"] != "succeeded" or len(s["attempts"]) != 1]
    if once:
        failures.append("not succeeded in exactly one attempt: %s" % once[:5])
    bad = [s["id"] for s in steps if s["id"].startswith("v[")
           and (s.get("outputs") or {}).get("n") != int(s["id"][2:-1])]
    if bad:
        failures.append("wrong value outputs: %s" % bad[:5])
    for k in (0, N // 2 - 1):
        q = subprocess.run([KFPC, "logs", rid, "s[%d]" % k, "--state", state], cwd=d,
                           env=env_for(d), capture_output=True, text=True, timeout=60)
        if q.returncode != 0 or q.stdout != "out %d\n" % k or q.stderr != "err %d\n" % k:
            failures.append("logs s[%d]: %d %r %r" % (k, q.returncode, q.stdout, q.stderr))
else:
    failures.append("no run id on stdout")
for f in failures:
    print("FAIL: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)

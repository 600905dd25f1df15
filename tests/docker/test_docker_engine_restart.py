#!/usr/bin/python3
"""The Docker engine restarts while a step's container runs (scripts/dockerd.sh restart: the
engine stops its containers, which have no restart policy, and comes back with the same data):

  - kfpc does not hang: the lost attempt ends as an `infra` failure naming the container;
  - the step's retry policy (`on [infra]`) runs it again once the engine answers, and the run
    succeeds with the outputs of the new attempt;
  - the lost attempt's container, which could not be removed while the engine was away, is
    removed later: no container labelled kfpc.managed is left.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerlib as dl  # noqa: E402

PIPE = os.path.join("tests", "docker", "pipelines", "engine_restart.kfp")


def main():
    dl.preflight()
    eng = dl.Engine("docker_engine_restart").start()
    eng.images("busybox")
    state = os.path.join(eng.tmp, "state")
    p = subprocess.Popen([dl.KFPC, "run", PIPE, "--executor", "docker", "--state", state,
                          "--no-cache"], cwd=dl.SRC, env=eng.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dl.wait_for(lambda: [c for c in eng.containers("kfpc.step=work")
                         if c.get("State") == "running"], "the step to run")
    eng.restart()
    out, err = p.communicate(timeout=300)
    out, err = out.decode(), err.decode()
    if p.returncode != 0:
        dl.problem("restart", "kfpc run exited %d\nstdout:\n%sstderr:\n%s" % (p.returncode, out, err))
    got = dl.outputs(out)
    m = re.match(r'^w = "?attempt (\d+) then done"?\n$', got)
    if not m or int(m.group(1)) < 2:
        dl.problem("restart", "outputs should come from a later attempt:\n%s\nstderr:\n%s" % (got, err))
    rid = dl.run_id(out)
    _, show, _ = dl.kfpc(["show", rid or "?", "--state", state], eng.env())
    if "infra" not in show:
        dl.problem("restart", "the lost attempt should be an infra failure:\n" + show)
    eng.check_no_leftovers("restart")
    dl.finish()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""kill -9 of `kfpc run --executor docker` while a step runs, then `kfpc run --resume RUN`:

  - the step's container survives the kill (kfpc never uses AutoRemove or restart policies);
  - the resumed run re-attaches to it (its logs are complete, it is not started again),
    finishes the pipeline with the right outputs, and exits 0;
  - a container of the run that nobody knows about (a ghost created here with the run's
    labels, as a kfpc killed between create and recording would leave) is removed;
  - no container labelled kfpc.managed is left.
"""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerlib as dl  # noqa: E402

PIPE = os.path.join("tests", "docker", "pipelines", "resume.kfp")


def main():
    dl.preflight()
    eng = dl.Engine("docker_resume").start()
    eng.images("busybox")
    state = os.path.join(eng.tmp, "state")
    p = subprocess.Popen([dl.KFPC, "run", PIPE, "--executor", "docker", "--state", state,
                          "--no-cache"], cwd=dl.SRC, env=eng.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = dl.wait_for(lambda: [c for c in eng.containers("kfpc.step=first")
                                 if c.get("State") == "running"], "the first step to run")[0]
    rid = first["Labels"]["kfpc.run"]
    p.send_signal(signal.SIGKILL)
    p.wait()
    if not [c for c in eng.containers("kfpc.step=first") if c["Id"] == first["Id"]]:
        dl.problem("kill", "the step's container did not survive kill -9 of kfpc")

    # a ghost of this run that no record knows
    body = json.dumps({"Image": "busybox:1.36", "Cmd": ["sleep", "300"],
                       "Labels": {"kfpc.managed": "1", "kfpc.run": rid, "kfpc.step": "ghost",
                                  "kfpc.attempt": "1"},
                       "HostConfig": {"NetworkMode": "none"}})
    st, r = eng.api("POST", "/containers/create", body)
    if st != 201:
        dl.fail("cannot create the ghost container: HTTP %d %s" % (st, r))
    eng.api("POST", "/containers/%s/start" % r["Id"])

    rc, out, err = dl.kfpc(["run", "--resume", rid, "--executor", "docker", "--state", state],
                           eng.env(), timeout=300)
    if rc != 0:
        dl.problem("resume", "kfpc run --resume exited %d\nstdout:\n%sstderr:\n%s" % (rc, out, err))
    want = 'w = "tick\\nfirst-done then second"\n'
    if dl.outputs(out) != want:
        dl.problem("resume", "outputs:\n%sexpected:\n%s\nstderr:\n%s" % (dl.outputs(out), want, err))
    _, logs, _ = dl.kfpc(["logs", rid, "first", "--state", state], eng.env())
    if logs != "tick\nfirst-done\n":
        dl.problem("resume", "logs of the re-attached step: %r" % logs)
    _, show, _ = dl.kfpc(["show", rid, "--state", state], eng.env())
    row = [l for l in show.splitlines() if l.startswith("first ")]
    if not row or row[0].split()[2] != "1":
        dl.problem("resume", "the first step should have run once (re-attached):\n" + show)
    eng.check_no_leftovers("resume")
    dl.finish()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The docker executor when things go wrong, as a user sees it (exit codes, `kfpc show`,
`kfpc logs`), with no container left behind after each case:

  timeout        a step past its timeout is killed and removed: run failed, "timed out"
  oom            a python step allocating past `resources { memory }`: "out of memory"
  missing_image  an image nobody has: run failed at once, the message names the image
                 (IfNotPresent tries a pull that fails; KFPC_PULL_POLICY=Never says so)
  not_found      a command missing from the image: exit code 127, as with the local executor
  mounts         env, workdir, inputs read-only below /kfpc, no network
  volumes        a named volume shared by two steps, removed when the run ends
  progress       `kfpc logs` shows a running step's output before it ends
  cancel         SIGINT while a step runs: the container is stopped and removed, run cancelled
  unreachable    DOCKER_HOST names a dead socket: exit 2 with a clear message, nothing hangs
  flood          `from stdout` values past the 1 MiB limit (`yes`; one ignoring SIGTERM): the
                 container is stopped, the step fails with the limit's message, the stdout log
                 keeps 1 MiB plus a note

Pipelines are in tests/docker/pipelines/.
"""
import glob
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerlib as dl  # noqa: E402

P = os.path.join("tests", "docker", "pipelines")
LIMIT = 1 << 20  # bytes of a value output (SPEC.md §4.5)


def run(eng, case, pipeline, env=None, expect=1):
    state = os.path.join(eng.tmp, case)
    cmd = ["run", os.path.join(P, pipeline), "--executor", "docker", "--state", state,
           "--no-cache"]
    rc, out, err = dl.kfpc(cmd, env or eng.env())
    if rc != expect:
        dl.problem(case, "kfpc %s exited %d, expected %d\nstdout:\n%sstderr:\n%s"
                   % (" ".join(cmd), rc, expect, out, err))
    rid = dl.run_id(out)
    show = ""
    if rid:
        _, show, _ = dl.kfpc(["show", rid, "--state", state], eng.env())
    return rid, out, err, show, state


def want(case, text, *needles):
    for n in needles:
        if n not in text:
            dl.problem(case, "expected %r in:\n%s" % (n, text))


def main():
    dl.preflight()
    eng = dl.Engine("docker_failures").start()
    eng.images("busybox", "python")
    check_all(eng)
    dl.finish()


def check_all(eng):
    """Every case against ENG (also used by test_podman.py)."""
    rid, out, err, show, state = run(eng, "timeout", "timeout.kfp")
    want("timeout", show, "timed out")
    _, logs, _ = dl.kfpc(["logs", rid or "?", "slow", "--state", state], eng.env())
    want("timeout", logs, "begin")
    eng.check_no_leftovers("timeout")

    rid, out, err, show, state = run(eng, "oom", "oom.kfp")
    want("oom", show, "out of memory")
    eng.check_no_leftovers("oom")

    rid, out, err, show, state = run(eng, "missing_image", "missing_image.kfp")
    want("missing_image", show, "kfpc-test/no-such-image:0.1", "cannot be pulled")
    rid, out, err, show, state = run(eng, "missing_image_never", "missing_image.kfp",
                                     env=eng.env(KFPC_PULL_POLICY="Never"))
    want("missing_image_never", show, "kfpc-test/no-such-image:0.1", "pull policy is Never")
    eng.check_no_leftovers("missing_image")

    rid, out, err, show, state = run(eng, "not_found", "not_found.kfp")
    want("not_found", err, "exit code 127")
    eng.check_no_leftovers("not_found")

    rid, out, err, show, state = run(eng, "mounts", "mounts.kfp", expect=0)
    want("mounts", out, 'seen = "hello\\ninput=read-only\\nmode=fast cwd=/tmp\\n'
                        'input-under-kfpc\\nnetwork=none"')
    eng.check_no_leftovers("mounts")

    rid, out, err, show, state = run(eng, "volumes", "volumes.kfp", expect=0)
    want("volumes", out, "v = from-a")
    eng.check_no_leftovers("volumes")

    rid, out, err, show, state = run(eng, "flood", "flood.kfp")
    for step in ("flood", "stubborn"):
        want("flood", show, "output 'o' is more than the 1 MiB limit of a value output "
                            "(from stdout): the step was stopped")
        if not any(step in line and "failed" in line for line in show.splitlines()):
            dl.problem("flood", "%s is not failed in:\n%s" % (step, show))
        log = os.path.join(state, "logs", rid or "?", "%s.1.stdout" % step)
        size = os.path.getsize(log) if os.path.exists(log) else -1
        if not LIMIT <= size <= LIMIT + 200:
            dl.problem("flood", "%s: stdout log of %d bytes, expected the limit plus a note"
                       % (step, size))
        if size > 0:
            with open(log, "rb") as f:
                f.seek(LIMIT)
                if b"[kfpc: output cut at 1048576 bytes" not in f.read():
                    dl.problem("flood", "%s: the stdout log does not end with the note" % step)
    eng.check_no_leftovers("flood")

    # progress: `kfpc logs` shows what a running step printed so far
    state = os.path.join(eng.tmp, "progress")
    p = subprocess.Popen([dl.KFPC, "run", os.path.join(P, "progress.kfp"), "--executor",
                          "docker", "--state", state, "--no-cache"], cwd=dl.SRC, env=eng.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def logs_so_far():
        runs = glob.glob(os.path.join(state, "logs", "*"))
        if not runs:
            return ""
        return dl.kfpc(["logs", os.path.basename(runs[0]), "p", "--state", state], eng.env())[1]
    dl.wait_for(lambda: "waiting" in logs_so_far(), "`kfpc logs` to show the running step's output")
    if p.poll() is not None:
        dl.problem("progress", "the run ended before the step was released")
    # the host side of /kfpc, as the engine mounted it
    c = dl.wait_for(lambda: eng.containers("kfpc.step=p"), "the step's container")[0]
    st, info = eng.api("GET", "/containers/%s/json" % c["Id"])
    scratch = [m["Source"] for m in (info or {}).get("Mounts", []) if m.get("Destination") == "/kfpc"]
    if not scratch:
        dl.fail("the step's container has no /kfpc mount: %r" % (info or {}).get("Mounts"))
    dl.write(os.path.join(scratch[0], "go"), "")
    out, err = p.communicate(timeout=120)
    if p.returncode != 0:
        dl.problem("progress", "kfpc run exited %d\n%s" % (p.returncode, err.decode()))
    if logs_so_far() != "waiting\ndone\n":
        dl.problem("progress", "final logs: %r" % logs_so_far())
    eng.check_no_leftovers("progress")

    # cancel: SIGINT once the step's container runs
    state = os.path.join(eng.tmp, "cancel")
    p = subprocess.Popen([dl.KFPC, "run", os.path.join(P, "cancel.kfp"), "--executor", "docker",
                          "--state", state, "--no-cache"], cwd=dl.SRC, env=eng.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dl.wait_for(lambda: any(c.get("State") == "running" for c in eng.containers("kfpc.step=slow")),
                "the step's container to run")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    out, err = out.decode(), err.decode()
    if p.returncode == 0:
        dl.problem("cancel", "kfpc run exited 0 after SIGINT\n" + err)
    want("cancel", err, "cancelled")
    rid = dl.run_id(out)
    _, show, _ = dl.kfpc(["show", rid or "?", "--state", state], eng.env())
    want("cancel", show, "cancelled")
    eng.check_no_leftovers("cancel")

    # unreachable: a socket file nobody listens on
    dead = os.path.join(eng.tmp, "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(dead)
    s.close()
    rid, out, err, show, state = run(eng, "unreachable", "timeout.kfp",
                                     env=eng.env(DOCKER_HOST="unix://" + dead), expect=2)
    want("unreachable", err, "cannot reach the Docker engine at unix://" + dead)
    rid, out, err, show, state = run(eng, "bad_host", "timeout.kfp",
                                     env=eng.env(DOCKER_HOST="ssh://example"), expect=2)
    want("bad_host", err, "DOCKER_HOST 'ssh://example' is not supported")
    eng.check_no_leftovers("unreachable")


if __name__ == "__main__":
    main()

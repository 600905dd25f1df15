#!/usr/bin/python3
"""Bad input before anything runs (a value of the wrong type, a missing parameter, a value that
fails its constraint, an invalid IR, a pipeline with compile errors) keeps its clear message and
exit status, and is recorded as a run in state failed with the reason: `kfpc runs` lists it,
`kfpc show RUN` says why, `--resume RUN` says it already ended, and the store stays usable.
A run that cannot be recorded (a full disk under --state) exits 2 (an I/O error)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

P = r'''
pipeline train(epochs: int = 3 in 1..100, mode: string = "fast" in ["fast", "slow"], need: string) {
  step s { image "busybox:1.36"  timeout 1m  in e: int = epochs  out o: string from stdout
           run ["sh", "-c", "echo $1", "s", "{{inputs.e}}"] }
  out o: string = s.o
}
'''

BROKEN = r'''
pipeline broken() {
  step s { image "busybox:1.36"  timeout 1m  run ["true", "{{params.nope}}"] }
}
'''


def kfpc(d, args):
    return subprocess.run([runlib.KFPC] + args + ["--state", os.path.join(d, "state")], cwd=d,
                          env=runlib.env_for(d), capture_output=True, text=True, timeout=120)


def main():
    c = runlib.Checker("test_bad_input_recorded")
    d = runlib.scratch("run_bad_recorded")
    kfp = runlib.write(d, "train.kfp", P)
    bad_kfp = runlib.write(d, "broken.kfp", BROKEN)
    bad_ir = runlib.write(d, "bad.json", '{"kfpc_ir": 1, "name": "x", "nodes": [{"id": "a"}]}')
    cases = [
        ("wrong type", [kfp, "-p", "need=x", "-p", "epochs=abc"], 2,
         "parameter 'epochs': expected int, got 'abc'", "train"),
        ("missing parameter", [kfp], 2, "missing required parameter 'need'", "train"),
        ("constraint", [kfp, "-p", "need=x", "-p", "epochs=0"], 2, "parameter 'epochs'", "train"),
        ("one of", [kfp, "-p", "need=x", "-p", "mode=medium"], 2, "parameter 'mode'", "train"),
        ("invalid IR", [bad_ir], 2, "IR $.nodes[0]: missing member 'kind'", bad_ir),
        ("compile errors", [bad_kfp], 1, "compile error", bad_kfp),
    ]
    ids = []
    for what, args, code, reason, pipeline in cases:
        p = runlib.kfpc_run(d, args)
        rid = runlib.run_id(p.stdout)
        c.check(p.returncode == code, "%s: exit %d" % (what, code), p.stdout + p.stderr)
        c.check(rid is not None, "%s: a run is recorded (its id on stdout)" % what, p.stdout)
        if not rid:
            continue
        ids.append(rid)
        if what != "compile errors":
            c.check(reason in p.stderr, "%s: the clear message is kept" % what, p.stderr)
        q = kfpc(d, ["show", rid])
        c.check(q.returncode == 0 and ("status    failed: ") in q.stdout and reason in q.stdout
                and "(no steps recorded)" in q.stdout,
                "%s: kfpc show says failed with the reason, nothing ran" % what, q.stdout + q.stderr)
        c.check(("pipeline  %s" % pipeline) in q.stdout,
                "%s: the pipeline is named (%s)" % (what, pipeline), q.stdout)
        r = runlib.kfpc_run(d, ["--resume", rid])
        c.check(r.returncode == 1 and "already ended: failed (" in r.stderr and reason in r.stderr,
                "%s: --resume says it already ended, with the reason" % what, r.stderr)
    q = kfpc(d, ["runs"])
    c.check(q.returncode == 0 and all(("%s" % i) in q.stdout for i in ids) and
            sum(1 for l in q.stdout.splitlines() if " failed " in l) == len(ids),
            "kfpc runs lists every bad-input run as failed", q.stdout + q.stderr)
    q = kfpc(d, ["show", ids[0]]) if ids else None
    c.check(q is not None and 'epochs = "abc"' in q.stdout,
            "the parameters are recorded as given", q.stdout if q else "")
    p = runlib.kfpc_run(d, [kfp, "-p", "need=x", "-p", "epochs=7"])
    c.check(p.returncode == 0 and runlib.outputs(p.stdout).get("o") == "7",
            "the store stays usable: a good run succeeds", p.stdout + p.stderr)

    # a full disk when the run itself is recorded: an I/O error before the run exists, exit 2
    with runlib.small_tmpfs(d, "8m") as mnt:
        if mnt:
            st = os.path.join(mnt, "st")
            p = subprocess.run([runlib.KFPC, "run", kfp, "-p", "need=x", "--state", st], cwd=d,
                               env=runlib.env_for(d), capture_output=True, text=True, timeout=120)
            c.check(p.returncode == 0, "full disk: a first run fits", p.stdout + p.stderr)
            try:
                with open(os.path.join(mnt, "fill"), "wb") as f:
                    while True:
                        f.write(b"x" * 4096)
                        f.flush()
            except OSError:
                pass
            p = subprocess.run([runlib.KFPC, "run", kfp, "-p", "need=x", "--state", st], cwd=d,
                               env=runlib.env_for(d), capture_output=True, text=True, timeout=120)
            c.check(p.returncode == 2, "full disk at the run record: exit 2", p.stdout + p.stderr)
            c.check("cannot record the run: disk full" in p.stderr,
                    "full disk at the run record: says the disk is full", p.stderr)
            p = subprocess.run([runlib.KFPC, "run", kfp, "-p", "need=x", "--state",
                                os.path.join(mnt, "new")], cwd=d, env=runlib.env_for(d),
                               capture_output=True, text=True, timeout=120)
            c.check(p.returncode == 2 and "disk full" in p.stderr,
                    "full disk at a new store: exit 2, says the disk is full (no SIGBUS)",
                    "exit %d\n%s" % (p.returncode, p.stderr))
    c.done()


if __name__ == "__main__":
    main()

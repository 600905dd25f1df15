#!/usr/bin/python3
"""Bad input gets a clear message, the run is marked failed with a reason and the store stays
consistent: a full LMDB map (KFPC_STORE_MAX_MAP), a full disk (a 2 MiB tmpfs, when this
user may mount one), unknown executor, unknown run, a run executed twice at once, invalid IR
files. (Parameters, invalid IR and output errors are golden cases in cases/.)"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

MANY = r'''
pipeline many(n: int = 400) {
  defaults { image "busybox:1.36"  timeout 1m }
  step items { in n: int = n  out l: list<int>  run ["sh", "-c", "seq 1 $1 | paste -sd, | sed 's/.*/[&]/' > \"$2\"", "items", "{{inputs.n}}", "{{outputs.l}}"] }
  for i in items.l {
    step s { in i: int = i  out v: string  run ["sh", "-c", "head -c 3000 /dev/zero | tr '\\0' x > \"$1\"", "s", "{{outputs.v}}"] }
  }
  step last { in vs: list<string> = collect(s.v)  run ["true"] }
}
'''

BIG = r'''
pipeline big() {
  defaults { image "busybox:1.36"  timeout 1m }
  step fill { out d: Dataset  run ["sh", "-c", "head -c 4000000 /dev/urandom > \"$1\"", "fill", "{{outputs.d}}"] }
  step after { in d: Dataset = fill.d  run ["true"] }
}
'''

SLOW = r'''
pipeline slow() {
  step wait { image "busybox:1.36"  timeout 1m  run ["sh", "-c", "touch \"$KFPC_CASE_DIR/started\"; sleep 30"] }
}
'''


def main():
    c = runlib.Checker("test_bad_input")

    # a full LMDB map
    d = runlib.scratch("run_bad_map")
    kfp = runlib.write(d, "many.kfp", MANY)
    env = runlib.env_for(d)
    env["KFPC_STORE_MAX_MAP"] = "1M"
    p = runlib.kfpc_run(d, [kfp, "--parallelism", "4"], env=env)
    rid = runlib.run_id(p.stdout)
    c.check(p.returncode == 1, "full map: exit status 1", p.stdout + p.stderr)
    c.check("state store" in p.stderr and "full" in p.stderr,
            "full map: says the state store is full", p.stderr)
    c.check(rid is not None, "full map: the run was created before it filled up", p.stdout)
    if rid:
        q = runlib.kfpc_run(d, ["--resume", rid], env=env)
        c.check(q.returncode == 1 and "already ended: failed" in q.stderr,
                "full map: the run is recorded as failed", q.stderr)
        c.check(not runlib.leftovers(rid), "full map: no process of the run is left")

    # a full disk
    d = runlib.scratch("run_bad_disk")
    with runlib.small_tmpfs(d, "2m") as mnt:
        if mnt:
            kfp = runlib.write(d, "big.kfp", BIG)
            env = runlib.env_for(d)
            p = subprocess.run([runlib.KFPC, "run", kfp, "--state", os.path.join(mnt, "st")],
                               cwd=d, env=env, capture_output=True, text=True, timeout=300)
            st = runlib.states(p.stderr)
            c.check(p.returncode in (1, 2), "full disk: the run fails", p.stdout + p.stderr)
            c.check(st.get("fill") == "failed" and st.get("after") == "skipped",
                    "full disk: the step fails, its consumer is skipped", repr(st))
            rid = runlib.run_id(p.stdout)
            if rid:
                q = subprocess.run([runlib.KFPC, "run", "--resume", rid, "--state",
                                    os.path.join(mnt, "st")], cwd=d, env=env,
                                   capture_output=True, text=True, timeout=60)
                c.check("already ended: failed" in q.stderr,
                        "full disk: the store is readable and says failed", q.stderr)

    # usage errors
    d = runlib.scratch("run_bad_usage")
    kfp = runlib.write(d, "slow.kfp", SLOW)
    p = runlib.kfpc_run(d, [kfp, "--executor", "kubernetes"])
    c.check(p.returncode == 2 and "unknown executor 'kubernetes'" in p.stderr,
            "unknown executor: exit 2 with a message", p.stderr)
    p = runlib.kfpc_run(d, ["--resume", "r2000-nope"])
    c.check(p.returncode == 2 and "--resume" in p.stderr, "unknown run: exit 2", p.stderr)
    p = runlib.kfpc_run(d, [os.path.join(d, "missing.json")])
    c.check(p.returncode == 2 and "cannot read" in p.stderr, "missing file: exit 2", p.stderr)
    p = runlib.kfpc_run(d, [kfp, "--parallelism", "0"])
    c.check(p.returncode == 2 and "--parallelism" in p.stderr, "bad --parallelism: exit 2",
            p.stderr)
    p = runlib.kfpc_run(d, [kfp, "--bogus"])
    c.check(p.returncode == 2 and "unknown option '--bogus'" in p.stderr,
            "unknown option: exit 2", p.stderr)
    for text, what in (("", "empty file"), ("[]", "not an object"), ("{\"kfpc_ir\": \"1\"}",
                                                                       "version not an int"),
                       ("{\"kfpc_ir\": 1, \"name\": \"x\", \"nodes\": [{\"id\": \"a\"}]}",
                        "node without kind")):
        f = runlib.write(d, "bad.json", text)
        p = runlib.kfpc_run(d, [f])
        rid = runlib.run_id(p.stdout)
        c.check(p.returncode == 2 and "IR" in p.stderr and rid is not None,
                "invalid IR (%s): exit 2, a run is recorded" % what, p.stdout + p.stderr)
        if rid:
            q = subprocess.run([runlib.KFPC, "show", rid, "--state", os.path.join(d, "state")],
                               cwd=d, env=runlib.env_for(d), capture_output=True, text=True)
            c.check(q.returncode == 0 and "failed: invalid IR" in q.stdout and
                    "(no steps recorded)" in q.stdout,
                    "invalid IR (%s): the run is failed with its reason, nothing ran" % what,
                    q.stdout + q.stderr)

    # one process per run: a second `--resume` of a live run is refused
    env = runlib.env_for(d)
    proc = subprocess.Popen([runlib.KFPC, "run", kfp, "--state", os.path.join(d, "state")],
                            cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    t = time.time()
    while not os.path.exists(os.path.join(d, "started")) and time.time() - t < 60:
        time.sleep(0.05)
    rid = None
    line = proc.stdout.readline()
    if line.startswith("run "):
        rid = line.split()[1]
    q = runlib.kfpc_run(d, ["--resume", rid or "?"])
    c.check(q.returncode == 2 and "being executed by another kfpc process" in q.stderr,
            "a live run cannot be resumed twice", q.stderr)
    proc.terminate()
    proc.communicate(timeout=60)
    c.check(proc.returncode == 1, "SIGTERM cancels it (exit 1)")
    c.done()


if __name__ == "__main__":
    main()

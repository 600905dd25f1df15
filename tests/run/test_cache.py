#!/usr/bin/python3
"""Caching (SPEC §6.7): hits on a second run, --no-cache, `cache off`, max_age, changed inputs,
artifacts gone from the CAS, and --explain saying why each step ran or was cached."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

PIPE = r'''
pipeline cache_demo(n: int = 2) {
  defaults { image "busybox:1.36"  timeout 1m }
  step make {
    in n: int = n
    out d: Dataset
    out v: int
    run ["sh", "-c", "echo make >> \"$KFPC_CASE_DIR/ran\"; seq 1 $1 > \"$2\"; echo $1 > \"$3\"",
         "make", "{{inputs.n}}", "{{outputs.d}}", "{{outputs.v}}"]
  }
  step fixed {
    out v: string from stdout
    run ["sh", "-c", "echo fixed >> \"$KFPC_CASE_DIR/ran\"; echo constant"]
  }
  step use {
    in d: Dataset = make.d
    in f: string = fixed.v
    out lines: int from stdout
    run ["sh", "-c", "echo use >> \"$KFPC_CASE_DIR/ran\"; wc -l < \"$1\"", "use", "{{inputs.d}}"]
  }
  step always {
    cache off
    run ["sh", "-c", "echo always >> \"$KFPC_CASE_DIR/ran\""]
  }
  step young {
    cache on max_age 1s
    out t: string from stdout
    run ["sh", "-c", "echo young >> \"$KFPC_CASE_DIR/ran\"; echo t"]
  }
  out lines: int = use.lines
  out t: string = young.t
}
'''


def ran(d):
    p = os.path.join(d, "ran")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        out = sorted(f.read().split())
    os.unlink(p)
    return out


def main():
    c = runlib.Checker("test_cache")
    d = runlib.scratch("run_cache")
    kfp = runlib.write(d, "cache_demo.kfp", PIPE)

    p = runlib.kfpc_run(d, [kfp, "--explain"])
    c.check(p.returncode == 0, "first run succeeds", p.stderr)
    c.check(ran(d) == ["always", "fixed", "make", "use", "young"], "first run runs every step")
    c.check("explain: make: ran: no cache entry (key " in p.stderr, "--explain: no cache entry",
            p.stderr)
    c.check("explain: always: ran: cache disabled (cache off)" in p.stderr,
            "--explain: cache off", p.stderr)
    out1 = runlib.outputs(p.stdout)

    p = runlib.kfpc_run(d, [kfp, "--explain"])
    st = runlib.states(p.stderr)
    c.check(p.returncode == 0 and runlib.outputs(p.stdout) == out1,
            "second run succeeds with the same outputs", p.stdout + p.stderr)
    c.check(st.get("make") == "cached" and st.get("use") == "cached" and
            st.get("fixed") == "cached", "second run: cached steps", repr(st))
    c.check(st.get("always") == "succeeded", "cache off: runs every time", repr(st))
    c.check(ran(d) == ["always"], "second run executes only the `cache off` step")
    c.check("explain: make: cached: key " in p.stderr and "(from r" in p.stderr,
            "--explain: cached with key prefix and origin", p.stderr)

    p = runlib.kfpc_run(d, [kfp, "--no-cache"])
    c.check(p.returncode == 0 and sorted(runlib.states(p.stderr).values()) == ["succeeded"] * 5,
            "--no-cache runs every step", p.stderr)
    c.check(ran(d) == ["always", "fixed", "make", "use", "young"], "--no-cache executes all")

    time.sleep(1.2)  # let `young`'s 1 s max_age pass (a behaviour, not a timing assertion)
    p = runlib.kfpc_run(d, [kfp, "--explain"])
    st = runlib.states(p.stderr)
    c.check(st.get("young") == "succeeded" and st.get("make") == "cached",
            "max_age: an expired entry is not used", repr(st))
    c.check("explain: young: ran: cache entry expired" in p.stderr, "--explain: expired",
            p.stderr)
    ran(d)

    p = runlib.kfpc_run(d, [kfp, "-p", "n=3", "--explain"])
    st = runlib.states(p.stderr)
    c.check(st.get("make") == "succeeded" and st.get("use") == "succeeded" and
            st.get("fixed") == "cached", "a changed parameter re-runs what depends on it",
            repr(st))
    c.check(runlib.outputs(p.stdout).get("lines") == "3", "and gives the new output", p.stdout)
    c.check("explain: make: ran: input changed since run r" in p.stderr,
            "--explain: input changed", p.stderr)
    ran(d)

    # artifacts gone from the CAS: the entry is not used
    for root, dirs, files in os.walk(os.path.join(d, "state", "cas", "blobs")):
        for f in files:
            os.unlink(os.path.join(root, f))
    p = runlib.kfpc_run(d, [kfp, "-p", "n=3", "--explain"])
    st = runlib.states(p.stderr)
    c.check(p.returncode == 0 and st.get("make") == "succeeded",
            "a cache entry whose artifacts are gone is not used", p.stderr)
    c.check("explain: make: ran: cached artifacts are no longer stored" in p.stderr,
            "--explain: artifacts gone", p.stderr)

    # a step with no outputs runs for its side effects: never served from the cache, even
    # when another step has the very same spec
    side = runlib.write(d, "side.kfp", """
pipeline side() {
  defaults { image "busybox:1.36"; timeout 1m }
  step a { run ["sh", "-c", "echo x >> ../../side-effects.txt"] }
  step b { run ["sh", "-c", "echo x >> ../../side-effects.txt"]; after a }
}
""")
    for i in range(2):
        p = runlib.kfpc_run(d, [side, "--explain"])
        st = runlib.states(p.stderr)
        c.check(p.returncode == 0 and st == {"a": "succeeded", "b": "succeeded"},
                "steps with no outputs run every time (run %d)" % (i + 1), p.stderr)
    c.check("explain: b: ran: a step with no outputs runs for its side effects" in p.stderr,
            "--explain: no outputs", p.stderr)
    c.done()


if __name__ == "__main__":
    main()

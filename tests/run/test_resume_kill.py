#!/usr/bin/python3
"""kill -9 `kfpc run` at random moments, many times, and finish with `kfpc run --resume RUN`.

Every step appends "start NAME ATTEMPT" when it begins and "done NAME ATTEMPT" when it ends to
a side-effect log. At the end:
  - the run succeeded and its outputs equal those of an uninterrupted run;
  - every step instance has a "done" line, and its last line in the log is the "done" of its
    highest attempt: nothing of an older attempt ran on after a resume (old process groups were
    killed) and nothing ran again after the step last succeeded;
  - no process of the run is left.
Bounded: ITER kills in all (at most 0.8 s apart), over as many runs as that takes; each run is
resumed until it succeeds and is then checked.
"""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

SRC = os.environ.get("KFPC_SRC", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD = os.environ.get("KFPC_BUILD", os.path.join(SRC, "build"))
KFPC = os.environ.get("KFPC", os.path.join(BUILD, "kfpc"))
TMP = os.path.join(BUILD, "testtmp", "run_resume_kill")
ITER = int(os.environ.get("KFPC_RESUME_ITER", "30"))

PIPELINE = r'''
pipeline resume(n: int = 9) {
  defaults { image "busybox:1.36"  timeout 1m }
  step seed {
    in n: int = n
    out items: list<int>
    script sh """
      echo "start {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
      sleep 0.$(( $$ % 3 ))
      seq 1 {{inputs.n}} | paste -sd, | sed 's/.*/[&]/' > "{{outputs.items}}"
      echo "done {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
    """
  }
  for i in seed.items parallel 3 {
    step work {
      in i: int = i
      out sq: int
      out blob: Dataset
      script sh """
        echo "start {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
        sleep 0.$(( ($$ % 4) + 1 ))
        echo $(( {{inputs.i}} * {{inputs.i}} )) > "{{outputs.sq}}"
        mkdir "{{outputs.blob}}"; echo "blob {{inputs.i}}" > "{{outputs.blob}}/data"
        echo "done {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
      """
    }
    step twice {
      in s: int = work.sq
      in b: Dataset = work.blob
      out v: int
      script sh """
        echo "start {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
        sleep 0.$(( $$ % 3 ))
        cat "{{inputs.b}}/data" > /dev/null
        echo $(( {{inputs.s}} * 2 )) > "{{outputs.v}}"
        echo "done {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
      """
    }
  }
  step total {
    in vs: list<int> = collect(twice.v)
    in blobs: list<Dataset> = collect(work.blob)
    out sum: int
    out count: int
    script python3 """
      import json, os
      with open(os.environ["KFPC_CASE_DIR"] + "/log", "a") as f:
          f.write("start {{step.name}} %s\n" % os.environ["KFPC_ATTEMPT"])
      vs = json.loads('{{inputs.vs}}')
      open("{{outputs.sum}}", "w").write(str(sum(vs)))
      open("{{outputs.count}}", "w").write(str(len(json.loads('{{inputs.blobs}}'))))
      with open(os.environ["KFPC_CASE_DIR"] + "/log", "a") as f:
          f.write("done {{step.name}} %s\n" % os.environ["KFPC_ATTEMPT"])
    """
  }
  finally step fin {
    script sh """
      echo "start {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
      echo "done {{step.name}} $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
    """
  }
  out sum: int = total.sum
  out count: int = total.count
  out items: list<int> = seed.items
}
'''


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(args, env, cwd, **kw):
    return subprocess.run([KFPC, "run"] + args, env=env, cwd=cwd, capture_output=True,
                          text=True, **kw)


def leftovers(run_id):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if ("KFPC_RUN_ID=%s" % run_id).encode() in env:
            found.append(int(pid))
    return found


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    kfp = os.path.join(TMP, "resume.kfp")
    with open(kfp, "w") as f:
        f.write(PIPELINE)
    env = dict(os.environ)
    env.pop("KFPC_STATE", None)
    env["NO_COLOR"] = "1"

    # the reference: one uninterrupted run
    ref_dir = os.path.join(TMP, "ref")
    os.makedirs(ref_dir)
    env["KFPC_CASE_DIR"] = ref_dir
    p = run([kfp, "--state", os.path.join(ref_dir, "state"), "--parallelism", "4"], env,
            ref_dir, timeout=300)
    if p.returncode != 0:
        fail("reference run failed:\n" + p.stderr)
    ref_out = [l for l in p.stdout.splitlines() if " = " in l]

    rng = random.Random(int(os.environ.get("KFPC_RESUME_SEED", str(int(time.time())))))
    kills = reruns = runs = 0
    while kills < ITER:
        k, r = one_run(os.path.join(TMP, "killed%d" % runs), kfp, env, rng, ITER - kills,
                       ref_out)
        kills += k
        reruns += r
        runs += 1
    print("ok: %d kills over %d runs, %d re-run attempts, outputs %s" % (kills, runs, reruns,
                                                                         ref_out))
    return 0


def one_run(work, kfp, env, rng, budget, ref_out):
    """Start a run, kill -9 it at random moments (at most BUDGET times), resume until it
    succeeds, and check it. Returns (kills, re-run attempts)."""
    os.makedirs(work)
    env = dict(env)
    env["KFPC_CASE_DIR"] = work
    state = os.path.join(work, "state")
    run_id = None
    kills = 0
    final = None
    for it in range(budget + 1):
        args = ([kfp] if run_id is None else ["--resume", run_id]) + ["--state", state,
                                                                      "--parallelism", "4"]
        proc = subprocess.Popen([KFPC, "run"] + args, env=env, cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kills < budget:
            time.sleep(rng.uniform(0.02, 0.8))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail("kfpc run did not finish (iteration %d)" % it)
        if run_id is None:
            m = re.search(r"^run (\S+)$", out, re.M)
            if m:
                run_id = m.group(1)
        if proc.returncode >= 0:
            final = (proc.returncode, out, err)
            break
    if final is None:
        fail("the last resume was killed")
    code, out, err = final
    if code != 0:
        fail("the resumed run did not succeed (exit %d):\n%s\n%s" % (code, out, err))
    outs = [l for l in out.splitlines() if " = " in l]
    if outs != ref_out:
        fail("outputs %r differ from the uninterrupted run's %r" % (outs, ref_out))

    time.sleep(0.5)
    left = leftovers(run_id)
    if left:
        fail("processes of run %s are still alive: %r" % (run_id, left))
    # exactly once after the last success
    last, maxatt = {}, {}
    with open(os.path.join(work, "log")) as f:
        for line in f:
            what, name, att = line.split()
            att = int(att)
            last[name] = (what, att)
            maxatt[name] = max(maxatt.get(name, 0), att)
    expected = {"seed", "total", "fin"} | {"work[%d]" % i for i in range(9)} | \
        {"twice[%d]" % i for i in range(9)}
    if set(last) != expected:
        fail("steps in the log %r, expected %r" % (sorted(last), sorted(expected)))
    for name, (what, att) in sorted(last.items()):
        if what != "done":
            fail("%s: its last execution (attempt %d) did not finish" % (name, att))
        if att != maxatt[name]:
            fail("%s: attempt %d ran after attempt %d" % (name, att, maxatt[name]))
    return kills, sum(maxatt.values()) - len(maxatt)


if __name__ == "__main__":
    sys.exit(main())

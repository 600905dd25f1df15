#!/usr/bin/python3
"""Every example pipeline runs, prints its golden outputs, and is fully cached the second time.

Cases (data, not code: adding a case adds files):
  examples/NAME.kfp          case NAME: `kfpc run examples/NAME.kfp` with its defaults
  cases/CASE.args            case CASE: first line the pipeline file (relative to the source dir),
                             then one extra `kfpc run` argument per line; {SRC} is replaced by the
                             absolute source dir. A case file named like an example replaces it.
  expected/CASE.out          the pipeline outputs `kfpc run` prints on stdout (after the
                             "run RUN_ID" line), exactly
  cases/CASE.exit            optional expected exit code (default 0); 2 means the run is
                             refused before it starts (a bad parameter): then
                             expected/CASE.err holds the exact stderr and nothing else is checked

For every case, with a fresh state dir $KFPC_BUILD/testtmp/examples/CASE:
  1. `$KFPC run FILE --state DIR ARGS` exits as expected and prints the golden outputs;
  2. the same command again with --explain exits the same, prints the same outputs, and both
     --explain and `kfpc show RUN` say every step instance was `cached` (or skipped), except
     exit handlers and steps whose cache is off in the IR (`cache off`: they run every time).

KFPC_UPDATE_GOLDEN=1 rewrites expected/*.out (review with git diff). Arguments: case name
substrings to select.
"""
import difflib
import glob
import json
import os
import re
import shutil
import subprocess
import sys

SRC = os.environ.get("KFPC_SRC", os.getcwd())
BUILD = os.environ.get("KFPC_BUILD", os.path.join(SRC, "build"))
KFPC = os.environ.get("KFPC", os.path.join(BUILD, "kfpc"))
UPDATE = os.environ.get("KFPC_UPDATE_GOLDEN") == "1"
HERE = os.path.dirname(os.path.abspath(__file__))
TMP = os.path.join(BUILD, "testtmp", "examples")


def env():
    e = dict(os.environ)
    e["NO_COLOR"] = "1"
    e.pop("KFPC_STDLIB_PATH", None)
    return e


def kfpc(args, timeout=600):
    p = subprocess.run([KFPC] + args, cwd=SRC, env=env(), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def cases():
    found = {}
    for path in sorted(glob.glob(os.path.join(SRC, "examples", "*.kfp"))):
        name = os.path.splitext(os.path.basename(path))[0]
        found[name] = (os.path.relpath(path, SRC), [])
    for path in sorted(glob.glob(os.path.join(HERE, "cases", "*.args"))):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        found[name] = (lines[0], [l.replace("{SRC}", SRC) for l in lines[1:]])
    return found


def expected_exit(name):
    path = os.path.join(HERE, "cases", name + ".exit")
    if os.path.exists(path):
        with open(path) as f:
            return int(f.read().strip())
    return 0


# `kfpc run` prints "run RUN_ID" and then the pipeline outputs ("name = value") on stdout; the
# progress, the --explain notes and the final "run RUN_ID STATUS (TIME)" line go to stderr. The
# golden file holds the outputs only (stdout without its first line).
RUN_RE = re.compile(r"^run (\S+)$")
STATUS_RE = re.compile(r"^run (\S+) (succeeded|failed|cancelled)\b", re.M)
EXPLAIN_RE = re.compile(r"^explain: (\S+): (\w+)(?:: (.*))?$", re.M)


def run_id_and_outputs(stdout):
    lines = stdout.splitlines(True)
    if not lines:
        return None, None
    m = RUN_RE.match(lines[0].rstrip("\n"))
    if not m:
        return None, None
    return m.group(1), "".join(lines[1:])


def step_ids(ir_path):
    """(all step node ids, the ids of the steps that may legitimately run again: exit handlers
    and `cache off` steps). Sub-pipeline nodes are prefixed by their parent's id, as in the IR;
    loops and sub-pipelines themselves are not steps."""
    with open(ir_path) as f:
        ir = json.load(f)
    steps, rerun = set(), set()

    def walk(nodes, handlers=False):
        for n in nodes:
            if n["kind"] == "step":
                steps.add(n["id"])
                if handlers or not n["cache"]["enabled"]:
                    rerun.add(n["id"])
            else:
                walk(n.get("body", []))
                walk(n.get("finally", []), True)

    walk(ir["nodes"])
    walk(ir["finally"], True)
    return steps, rerun


def show_states(run_id, state):
    """[(step instance, state)] from the STEP table of `kfpc show RUN`, or (None, why)."""
    rc, out, err = kfpc(["show", run_id, "--state", state])
    if rc != 0:
        return None, "kfpc show %s exited %d: %s" % (run_id, rc, err.strip())
    rows, in_table = [], False
    for line in out.splitlines():
        if re.match(r"^STEP\s+STATE\b", line):
            in_table = True
        elif in_table and not line.strip():
            break
        elif in_table:
            fields = line.split()
            rows.append((fields[0], fields[1]))
    return rows, None


def base_id(instance):
    """fit[2,1] -> fit; prep/gen -> prep/gen; prep[1]/gen[0] -> prep/gen."""
    return re.sub(r"\[[0-9,]*\]", "", instance)


def compare_golden(fname, got):
    golden = os.path.join(HERE, "expected", fname)
    if UPDATE:
        with open(golden, "w") as f:
            f.write(got)
        return []
    if not os.path.exists(golden):
        return ["missing %s; got:\n%s" % (os.path.relpath(golden, SRC), got)]
    with open(golden) as f:
        want = f.read()
    if got == want:
        return []
    diff = difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                "expected/" + fname, "kfpc run")
    return ["%s differs:\n%s" % (fname, "".join(diff))]


def check(name, file, args):
    problems = []
    state = os.path.join(TMP, name)
    shutil.rmtree(state, ignore_errors=True)
    os.makedirs(state)
    ir = os.path.join(state, "ir.json")
    rc, out, err = kfpc(["compile", file, "-o", ir])
    if rc != 0:
        return ["kfpc compile %s exited %d:\n%s" % (file, rc, err)]

    want_rc = expected_exit(name)
    cmd = ["run", file, "--state", state] + args
    rc, out, err = kfpc(cmd)
    if rc != want_rc:
        return ["kfpc %s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                % (" ".join(cmd), rc, want_rc, out, err)]
    if want_rc == 2:
        # refused before running (bad parameter): the message is the golden data
        return problems + compare_golden(name + ".err", err)
    run1, outputs = run_id_and_outputs(out)
    if outputs is None:
        return ["kfpc %s printed no 'run RUN_ID' line\nstdout:\n%s" % (" ".join(cmd), out)]
    problems += compare_golden(name + ".out", outputs)

    rc2, out2, err2 = kfpc(cmd + ["--explain"])
    if rc2 != want_rc:
        return problems + ["second run exited %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                           % (rc2, want_rc, out2, err2)]
    run2, outputs2 = run_id_and_outputs(out2)
    if outputs2 != outputs:
        problems.append("second run printed different outputs:\n%s" % outputs2)
    if run2 is None or run2 == run1:
        problems.append("second run has no new run id (%s, %s)" % (run1, run2))
        return problems
    status = STATUS_RE.findall(err2)
    if not status or status[-1][0] != run2:
        problems.append("second run: no final status line for %s on stderr:\n%s" % (run2, err2))
    steps, allowed = step_ids(ir)
    verdicts = EXPLAIN_RE.findall(err2)
    ran = ["%s (%s)" % (step, why) for step, verdict, why in verdicts
           if verdict == "ran" and base_id(step) not in allowed]
    if not any(verdict == "cached" for _, verdict, _ in verdicts):
        problems.append("second run: --explain reports no cached step:\n%s" % err2)
    if ran:
        problems.append("second run: not served from the cache: %s" % ", ".join(ran))
    states, why = show_states(run2, state)
    if states is None:
        problems.append(why)
    else:
        states = [(step, st) for step, st in states if base_id(step) in steps]
        bad = ["%s (%s)" % (step, st) for step, st in states
               if st not in ("cached", "skipped") and base_id(step) not in allowed]
        if bad or not states:
            problems.append("second run: kfpc show %s lists steps that are not cached: %s"
                            % (run2, ", ".join(bad) or "(no steps)"))
    return problems


def main():
    if not os.access(KFPC, os.X_OK):
        print("no kfpc binary at %s" % KFPC)
        return 1
    selected = sys.argv[1:]
    failed = 0
    total = 0
    for name, (file, args) in sorted(cases().items()):
        if selected and not any(s in name for s in selected):
            continue
        total += 1
        problems = check(name, file, args)
        if problems:
            failed += 1
            print("FAIL %s (%s %s)" % (name, file, " ".join(args)))
            for p in problems:
                print("  " + p.replace("\n", "\n  "))
        else:
            print("ok   %s" % name)
    print("%d/%d cases passed" % (total - failed, total))
    return 1 if failed or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Every example pipeline runs, prints its golden outputs, and is fully cached the second time.

Cases (data, not code: adding a case adds files):
  examples/NAME.kfp          case NAME: `kfpc run examples/NAME.kfp` with its defaults
  cases/CASE.args            case CASE: first line the pipeline file (relative to the source dir),
                             then one extra `kfpc run` argument per line; {SRC} is replaced by the
                             absolute source dir. A case file named like an example replaces it.
  expected/CASE.out          the pipeline outputs `kfpc run` prints on stdout (after the
                             "run RUN_ID" line), exactly
  cases/CASE.exit            optional expected exit code (default 0)

For every case, with a fresh state dir $KFPC_BUILD/testtmp/examples/CASE:
  1. `$KFPC run FILE --state DIR ARGS` exits as expected and prints the golden outputs;
  2. the same command again with --explain exits the same, prints the same outputs, and
     --explain says every step instance was `cached`, except exit handlers and steps whose
     cache is off in the IR (`cache off`: they must run every time).

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


def uncached_allowed(ir_path):
    """Ids of the nodes that may legitimately run again: exit handlers and `cache off` steps
    (sub-pipeline nodes are prefixed by their parent's id, as in the IR)."""
    with open(ir_path) as f:
        ir = json.load(f)
    names = set()

    def walk(nodes, handlers=False):
        for n in nodes:
            if n["kind"] == "step":
                if handlers or not n["cache"]["enabled"]:
                    names.add(n["id"])
            else:
                walk(n.get("body", []))
                walk(n.get("finally", []), True)

    walk(ir["nodes"])
    walk(ir["finally"], True)
    return names


def base_id(instance):
    """fit[2,1] -> fit; prep/gen -> prep/gen; prep[1]/gen[0] -> prep/gen."""
    return re.sub(r"\[[0-9,]*\]", "", instance)


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
    run1, outputs = run_id_and_outputs(out)
    if outputs is None:
        return ["kfpc %s printed no final status line\nstdout:\n%s" % (" ".join(cmd), out)]
    golden = os.path.join(HERE, "expected", name + ".out")
    if UPDATE:
        with open(golden, "w") as f:
            f.write(outputs)
    elif not os.path.exists(golden):
        problems.append("missing %s; got:\n%s" % (os.path.relpath(golden, SRC), outputs))
    else:
        with open(golden) as f:
            want = f.read()
        if outputs != want:
            diff = difflib.unified_diff(want.splitlines(True), outputs.splitlines(True),
                                        "expected/%s.out" % name, "kfpc run")
            problems.append("outputs differ:\n" + "".join(diff))

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
    allowed = uncached_allowed(ir)
    verdicts = EXPLAIN_RE.findall(err2)
    ran = ["%s (%s)" % (step, why) for step, verdict, why in verdicts
           if verdict == "ran" and base_id(step) not in allowed]
    if not any(verdict == "cached" for _, verdict, _ in verdicts):
        problems.append("second run: --explain reports no cached step:\n%s" % err2)
    if ran:
        problems.append("second run: not served from the cache: %s" % ", ".join(ran))
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

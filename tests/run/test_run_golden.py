#!/usr/bin/python3
"""Golden tests for `kfpc run`: tests/run/cases/NAME.kfp (or NAME.json, IR) is run end to end
and what a user sees is compared with NAME.expect.

Optional inputs next to the case:
  NAME.args   extra command-line words (shell syntax, e.g. `-p n=3 --no-cache`)
  NAME.env    KEY=VALUE lines added to kfpc's environment

The case runs with cwd = a fresh scratch directory, whose path is also in $KFPC_CASE_DIR
(steps may write marker files there). Expect file lines:
  exit N                    the exit status
  step NAME STATE           final state of a step instance, from the progress lines
                            (every step line printed must be listed: extra steps fail the test)
  output NAME = VALUE       a pipeline output (the set of outputs must match exactly)
  stderr: TEXT              stderr contains TEXT
  !stderr: TEXT             stderr does not contain TEXT
  file PATH = TEXT          $KFPC_CASE_DIR/PATH exists and holds TEXT (trailing white space
                            ignored; \\n in TEXT is a newline)
  lines PATH = N            $KFPC_CASE_DIR/PATH has N lines
  --- again [ARGS]          what follows is checked on a second run with the same state
                            directory (and ARGS instead of NAME.args, if given)
Loop and sub-pipeline nodes ("for.x@12") are ignored unless listed.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys

SRC = os.environ.get("KFPC_SRC", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD = os.environ.get("KFPC_BUILD", os.path.join(SRC, "build"))
KFPC = os.environ.get("KFPC", os.path.join(BUILD, "kfpc"))
CASES = os.path.join(SRC, "tests", "run", "cases")
TMP = os.path.join(BUILD, "testtmp", "run_golden")

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (\S+) (succeeded|failed|cached|skipped|cancelled)( \(|$| at )")


def parse_expect(path):
    sections = [{"args": None, "lines": []}]
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.startswith("--- again"):
                rest = line[len("--- again"):].strip()
                sections.append({"args": shlex.split(rest) if rest else None, "lines": []})
                continue
            sections[-1]["lines"].append(line)
    return sections


def check(name, sec, proc, casedir):
    errors = []
    out, err = proc.stdout, proc.stderr
    states, outputs = {}, {}
    for l in err.splitlines():
        m = LINE.match(l)
        if m:
            states[m.group(1)] = m.group(2)
    for l in out.splitlines():
        if " = " in l:
            k, v = l.split(" = ", 1)
            outputs[k] = v
    want_states, want_outputs = {}, {}
    saw_exit = False
    for l in sec["lines"]:
        if l.startswith("exit "):
            saw_exit = True
            if proc.returncode != int(l.split()[1]):
                errors.append("exit status %d, expected %s" % (proc.returncode, l.split()[1]))
        elif l.startswith("step "):
            _, inst, st = l.split()
            want_states[inst] = st
        elif l.startswith("output "):
            k, v = l[len("output "):].split(" = ", 1)
            want_outputs[k] = v
        elif l.startswith("stderr: "):
            if l[len("stderr: "):] not in err:
                errors.append("stderr does not contain %r" % l[len("stderr: "):])
        elif l.startswith("!stderr: "):
            if l[len("!stderr: "):] in err:
                errors.append("stderr contains %r" % l[len("!stderr: "):])
        elif l.startswith("file "):
            p, v = l[len("file "):].split(" = ", 1)
            fp = os.path.join(casedir, p)
            if not os.path.exists(fp):
                errors.append("file %s missing" % p)
            else:
                got = open(fp).read().rstrip()
                if got != v.replace("\\n", "\n").rstrip():
                    errors.append("file %s holds %r, expected %r" % (p, got, v))
        elif l.startswith("lines "):
            p, v = l[len("lines "):].split(" = ", 1)
            fp = os.path.join(casedir, p)
            n = len(open(fp).read().splitlines()) if os.path.exists(fp) else -1
            if n != int(v):
                errors.append("file %s has %d lines, expected %s" % (p, n, v))
        else:
            errors.append("bad expect line %r" % l)
    if not saw_exit:
        errors.append("expect file has no exit line")
    for inst, st in want_states.items():
        if states.get(inst) != st:
            errors.append("step %s is %s, expected %s" % (inst, states.get(inst, "(not shown)"), st))
    for inst, st in states.items():
        if inst not in want_states and not inst.startswith("for.") and "@" not in inst:
            errors.append("unexpected step %s %s" % (inst, st))
    if outputs != want_outputs:
        errors.append("outputs %r, expected %r" % (outputs, want_outputs))
    return errors


def run_case(name, src):
    casedir = os.path.join(TMP, name)
    shutil.rmtree(casedir, ignore_errors=True)
    os.makedirs(casedir)
    base = os.path.join(CASES, name)
    args = []
    if os.path.exists(base + ".args"):
        args = shlex.split(open(base + ".args").read())
    env = dict(os.environ)
    env.pop("KFPC_STATE", None)
    env["KFPC_CASE_DIR"] = casedir
    env["NO_COLOR"] = "1"
    if os.path.exists(base + ".env"):
        for l in open(base + ".env"):
            if "=" in l:
                k, v = l.rstrip("\n").split("=", 1)
                env[k] = v
    errors = []
    for i, sec in enumerate(parse_expect(base + ".expect")):
        a = sec["args"] if sec["args"] is not None else args
        cmd = [KFPC, "run", src, "--state", os.path.join(casedir, ".state")] + a
        try:
            p = subprocess.run(cmd, cwd=casedir, env=env, capture_output=True, text=True,
                               timeout=300)
        except subprocess.TimeoutExpired:
            errors.append("run %d timed out" % (i + 1))
            break
        e = check(name, sec, p, casedir)
        if e:
            errors += ["run %d: %s" % (i + 1, x) for x in e]
            errors.append("run %d stdout:\n%s\nstderr:\n%s" % (i + 1, p.stdout, p.stderr))
            break
    return errors


def main():
    only = sys.argv[1:]
    names = sorted({f.rsplit(".", 1)[0] for f in os.listdir(CASES) if f.endswith(".expect")})
    failed = 0
    for name in names:
        if only and name not in only:
            continue
        src = None
        for ext in (".kfp", ".json"):
            if os.path.exists(os.path.join(CASES, name + ext)):
                src = os.path.join(CASES, name + ext)
        if not src:
            print("FAIL %s: no .kfp or .json" % name)
            failed += 1
            continue
        errors = run_case(name, src)
        if errors:
            failed += 1
            print("FAIL %s" % name)
            for e in errors:
                print("   " + e.replace("\n", "\n   "))
        else:
            print("ok   %s" % name)
    print("%d case(s) failed" % failed if failed else "all cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

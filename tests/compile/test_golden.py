#!/usr/bin/python3
"""Golden tests of `kfpc compile` and `kfpc graph` (data, not code: adding a case adds files).

ok/NAME.kfp    `$KFPC compile ok/NAME.kfp` exits 0 and prints exactly ok/NAME.ir.json, which must
               validate against schema/ir.schema.json; compiling twice gives identical bytes.
               Optional ok/NAME.dot: `$KFPC graph ok/NAME.kfp` prints exactly that.
               Optional ok/NAME.args: extra arguments (one per line), e.g. --pipeline NAME.
               Optional ok/NAME.err: expected stderr (warnings), else stderr must be empty.
fail/NAME.kfp  NO_COLOR=1 `$KFPC compile fail/NAME.kfp [ARGS]` exits 1 (or fail/NAME.exit) with
               stderr exactly fail/NAME.err; optional fail/NAME.json is the expected output of the
               same command with --diagnostics-format=json; optional fail/NAME.args holds extra
               arguments (one per line, e.g. -Werror). Nothing may be written to stdout.

Paths are passed relative to the source directory (the cwd), so diagnostics read
"tests/compile/fail/NAME.kfp:3:5: ...".  KFPC_UPDATE_GOLDEN=1 rewrites the expected files (for
authoring; review every rewrite with git diff).  Optional arguments: name substrings to select.
"""
import difflib
import json
import os
import shutil
import subprocess
import sys

SRC = os.environ.get("KFPC_SRC", os.getcwd())
KFPC = os.environ.get("KFPC", os.path.join(SRC, "build", "kfpc"))
UPDATE = os.environ.get("KFPC_UPDATE_GOLDEN") == "1"
HERE = os.path.relpath(os.path.dirname(os.path.abspath(__file__)), SRC)

try:
    import jsonschema
    with open(os.path.join(SRC, "schema", "ir.schema.json")) as f:
        VALIDATOR = jsonschema.Draft202012Validator(json.load(f))
except ImportError:  # pragma: no cover - the test environment has jsonschema
    VALIDATOR = None


def env(extra=None):
    e = dict(os.environ)
    e["NO_COLOR"] = "1"
    e.pop("KFPC_STDLIB_PATH", None)
    if extra:
        e.update(extra)
    return e


def run(args, extra_env=None):
    p = subprocess.run([KFPC] + args, cwd=SRC, env=env(extra_env), capture_output=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def read(path, mode="rb"):
    with open(os.path.join(SRC, path), mode) as f:
        return f.read()


def exists(path):
    return os.path.exists(os.path.join(SRC, path))


def write(path, data):
    with open(os.path.join(SRC, path), "wb") as f:
        f.write(data)


def args_of(base):
    if exists(base + ".args"):
        return [a for a in read(base + ".args", "r").split("\n") if a]
    return []


def diff(expected, got, what):
    e = expected.decode("utf-8", "replace").splitlines(True)
    g = got.decode("utf-8", "replace").splitlines(True)
    lines = list(difflib.unified_diff(e, g, "expected " + what, "got " + what))
    if not lines:
        return "(bytes differ: line endings or trailing newline)\n"
    return "".join(l if l.endswith("\n") else l + "\n" for l in lines[:80])


class Case:
    def __init__(self, name):
        self.name = name
        self.problems = []

    def check_eq(self, path, got, what):
        if UPDATE:
            if not exists(path) or read(path) != got:
                write(path, got)
                print("  updated " + path)
            return
        if not exists(path):
            self.problems.append("missing expected file %s; got %s:\n%s" %
                                 (path, what, got.decode("utf-8", "replace")))
            return
        exp = read(path)
        if exp != got:
            self.problems.append("%s differs from %s:\n%s" % (what, path, diff(exp, got, what)))


def ok_case(base):
    c = Case(base)
    kfp = base + ".kfp"
    args = args_of(base)
    code, out, err = run(["compile", kfp] + args)
    if code != 0:
        c.problems.append("exit %d (want 0); stderr:\n%s" % (code, err.decode("utf-8", "replace")))
        return c
    if exists(base + ".err") or (UPDATE and err):
        c.check_eq(base + ".err", err, "stderr")
    elif err:
        c.problems.append("unexpected stderr:\n" + err.decode("utf-8", "replace"))
    c.check_eq(base + ".ir.json", out, "IR")
    try:
        doc = json.loads(out)
        if VALIDATOR is not None:
            errs = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
            for e in errs[:5]:
                c.problems.append("IR does not match the schema at /%s: %s" %
                                  ("/".join(str(p) for p in e.absolute_path), e.message[:300]))
    except ValueError as e:
        c.problems.append("IR is not JSON: %s" % e)
    code2, out2, _ = run(["compile", kfp] + args)
    if code2 != 0 or out2 != out:
        c.problems.append("second compile is not byte-identical (exit %d)" % code2)
    if exists(base + ".dot"):
        gargs = [a for a in args if a.startswith("--pipeline")]
        if "--pipeline" in args:
            i = args.index("--pipeline")
            gargs = args[i:i + 2]
        code, dot, err = run(["graph", kfp] + gargs)
        if code != 0:
            c.problems.append("graph: exit %d; stderr:\n%s" % (code, err.decode("utf-8", "replace")))
        else:
            c.check_eq(base + ".dot", dot, "DOT")
            if shutil.which("dot"):
                p = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, timeout=60)
                if p.returncode != 0:
                    c.problems.append("graphviz rejects the DOT: " +
                                      p.stderr.decode("utf-8", "replace")[:500])
    return c


def fail_case(base):
    c = Case(base)
    kfp = base + ".kfp"
    args = args_of(base)
    want = int(read(base + ".exit", "r").strip()) if exists(base + ".exit") else 1
    code, out, err = run(["compile", kfp] + args)
    if code != want:
        c.problems.append("exit %d (want %d); stderr:\n%s" %
                          (code, want, err.decode("utf-8", "replace")))
    if out:
        c.problems.append("stdout is not empty:\n" + out.decode("utf-8", "replace")[:2000])
    c.check_eq(base + ".err", err, "stderr")
    if exists(base + ".json"):
        code, out, jerr = run(["compile", kfp, "--diagnostics-format=json"] + args)
        if code != want:
            c.problems.append("json: exit %d (want %d)" % (code, want))
        try:
            json.loads(jerr)
        except ValueError as e:
            c.problems.append("json diagnostics are not JSON: %s" % e)
        c.check_eq(base + ".json", jerr, "JSON diagnostics")
    return c


def main():
    select = sys.argv[1:]
    cases = []
    for sub, fn in (("ok", ok_case), ("fail", fail_case)):
        d = os.path.join(SRC, HERE, sub)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith(".kfp"):
                base = os.path.join(HERE, sub, f[:-4])
                if select and not any(s in base for s in select):
                    continue
                cases.append((base, fn))
    passed = failed = 0
    for base, fn in cases:
        c = fn(base)
        if c.problems:
            failed += 1
            print("FAIL %s" % base)
            for p in c.problems:
                print("  " + p.replace("\n", "\n  "))
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    if not cases:
        print("no cases found")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

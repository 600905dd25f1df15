#!/usr/bin/python3
"""Every example pipeline gives the same result under `--executor docker` as under the local
executor: the same exit code and the same pipeline outputs on stdout (for a run refused before
it starts, exit 2, the same stderr), and no container is left behind.

Cases are the examples test's (data, not code): examples/NAME.kfp with its defaults, and
tests/examples/cases/CASE.args (first line the pipeline file, then one `kfpc run` argument per
line, {SRC} replaced by the source dir). Both runs use --no-cache and fresh state dirs under
$KFPC_BUILD/testtmp/docker_examples/. Cases listed in examples_local_only.txt (with the reason
they cannot run in a container) are skipped. Arguments: case name substrings to select.
"""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerlib as dl  # noqa: E402

EXAMPLES_CASES = os.path.join(dl.SRC, "tests", "examples", "cases")


def local_only():
    skip = {}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples_local_only.txt")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, why = line.partition(" ")
                skip[name] = why.strip()
    return skip


def cases():
    found = {}
    for path in sorted(glob.glob(os.path.join(dl.SRC, "examples", "*.kfp"))):
        name = os.path.splitext(os.path.basename(path))[0]
        found[name] = (os.path.relpath(path, dl.SRC), [])
    for path in sorted(glob.glob(os.path.join(EXAMPLES_CASES, "*.args"))):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        found[name] = (lines[0], [l.replace("{SRC}", dl.SRC) for l in lines[1:]])
    return found


def main():
    dl.preflight()
    eng = dl.Engine("docker_examples").start()
    eng.images("busybox", "python")
    compare_all(eng, sys.argv[1:])
    dl.finish()


def compare_all(eng, selected):
    """Runs the selected cases (all if none) locally and against ENG (also used by
    test_podman.py)."""
    skip = local_only()
    n = 0
    for name, (file, args) in sorted(cases().items()):
        if selected and not any(s in name for s in selected):
            continue
        if name in skip:
            print("skip %s: %s" % (name, skip[name]), flush=True)
            continue
        n += 1
        res = {}
        for executor in ("local", "docker"):
            state = os.path.join(eng.tmp, executor, name)
            cmd = ["run", file, "--state", state, "--no-cache", "--executor", executor] + args
            res[executor] = (cmd,) + dl.kfpc(cmd, eng.env(), timeout=600)
        (lcmd, lrc, lout, lerr), (dcmd, drc, dout, derr) = res["local"], res["docker"]
        if drc < 0 or lrc < 0:
            dl.problem(name, "kfpc was killed by a signal (local %d, docker %d)\n$ kfpc %s\n"
                       "local stderr:\n%s\ndocker stderr:\n%s"
                       % (lrc, drc, " ".join(dcmd), lerr[-3000:], derr[-3000:]))
        elif drc != lrc:
            dl.problem(name, "exit %d under docker, %d under local\n$ kfpc %s\nstdout:\n%s"
                       "stderr:\n%s" % (drc, lrc, " ".join(dcmd), dout, derr))
        elif lrc == 2:
            if derr != lerr:
                dl.problem(name, "different refusal:\nlocal:\n%s\ndocker:\n%s" % (lerr, derr))
        elif dl.outputs(dout) != dl.outputs(lout):
            dl.problem(name, "different outputs\nlocal:\n%sdocker:\n%sdocker stderr:\n%s"
                       % (dl.outputs(lout), dl.outputs(dout), derr))
        else:
            print("ok %s (exit %d)" % (name, drc), flush=True)
        eng.check_no_leftovers(name)
    if n == 0:
        dl.fail("no example cases found")


if __name__ == "__main__":
    main()

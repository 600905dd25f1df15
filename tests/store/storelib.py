"""Shared set-up of the tests/store tests: paths, a failure collector and a `kfpc` runner that
uses the test's own scratch and state directories ($KFPC_BUILD/testtmp/NAME/state)."""
import os
import subprocess
import sys

SRC = os.environ.get("KFPC_SRC", os.getcwd())
BUILD = os.environ.get("KFPC_BUILD", os.path.join(SRC, "build"))
KFPC = os.environ.get("KFPC", os.path.join(BUILD, "kfpc"))
DATA = os.path.join(SRC, "tests", "store", "data")

failures = []


def check(cond, what):
    """Records WHAT as a failure unless COND; returns COND."""
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


def env(**extra):
    """The environment for kfpc: no colour, UTC, no inherited state dir or map cap; EXTRA added."""
    e = dict(os.environ)
    e["NO_COLOR"] = "1"
    e["TZ"] = "UTC"
    e.pop("KFPC_STATE", None)
    e.pop("KFPC_STORE_MAX_MAP", None)
    e.update(extra)
    return e


def paths(name):
    """(TMP, STATE): the test's scratch directory and its state directory."""
    tmp = os.path.join(BUILD, "testtmp", name)
    return tmp, os.path.join(tmp, "state")


def runner(tmp, state_dir):
    """A kfpc(*ARGS, state=STATE, timeout=300, **ENV) -> (rc, stdout, stderr) run in TMP."""
    def kfpc(*args, state=state_dir, timeout=300, **extra):
        argv = [KFPC] + list(args)
        if state is not None:
            argv += ["--state", state]
        p = subprocess.run(argv, cwd=tmp, env=env(**extra), capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    return kfpc


def run_main(main):
    """Runs MAIN as the test: exit 1 if kfpc is missing or any check failed, else print "ok"."""
    if not os.path.exists(KFPC):
        print("kfpc binary not found: %s" % KFPC, file=sys.stderr)
        sys.exit(1)
    main()
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        sys.exit(1)
    print("ok")

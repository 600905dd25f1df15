#!/usr/bin/python3
"""The live progress display on a terminal (run under script(1)) lists each running step
instance once, with its attempt number on a retry, and its running count matches the steps it
lists: a step retried twice (retry 2 on [error], exit 3) never shows twice."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

P = r'''
pipeline flaky() {
  step a { image "busybox:1.36"  timeout 1m  retry 2 backoff 100ms on [error]
           run ["sh", "-c", "sleep 0.3; exit 3"] }
  step b { image "busybox:1.36"  timeout 1m  run ["sh", "-c", "sleep 0.5"] }
}
'''

ESC = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ECHO = re.compile(r"\^[@A-Z\[\\\]^_?]")


def main():
    if not shutil.which("script"):
        print("skip: no script(1)")
        sys.exit(77)
    c = runlib.Checker("test_progress_tty")
    d = runlib.scratch("run_progress_tty")
    kfp = runlib.write(d, "flaky.kfp", P)
    cmd = "%s run --no-cache %s --state %s" % (runlib.KFPC, kfp, os.path.join(d, "state"))
    env = runlib.env_for(d)
    env.pop("NO_COLOR", None)
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], cwd=d, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    # the pty may echo control input (NULs as "^@") into the transcript: drop it
    text = ECHO.sub("", ESC.sub("", p.stdout.replace("\r", "\n").replace("\0", "")))
    c.check(p.returncode == 1, "the run fails (exit 1)", text[-2000:])
    # frames: a header line, a counts line, then "  running NAME ..." lines
    frames, cur = [], None
    for line in text.splitlines():
        if line.startswith("kfpc run r") and "elapsed" in line:
            cur = {"counts": None, "running": []}
            frames.append(cur)
        elif cur is not None and cur["counts"] is None and " running" in line:
            cur["counts"] = line
        elif cur is not None and line.startswith("  running "):
            cur["running"].append(line[len("  running "):])
        elif cur is not None and line.strip():
            cur = None
    c.check(len(frames) >= 2, "live frames were drawn (%d)" % len(frames), text[-2000:])
    dup = [f for f in frames if len({r.split(" ")[0] for r in f["running"]}) != len(f["running"])]
    c.check(not dup, "no frame lists a step twice", repr(dup[:2]))
    bad = []
    for f in frames:
        m = re.search(r"(\d+) running", f["counts"] or "")
        if not m or int(m.group(1)) != len(f["running"]):
            bad.append(f)
    c.check(not bad, "each frame's running count matches the steps it lists", repr(bad[:2]))
    c.check(any(r.startswith("a (attempt 3)") for f in frames for r in f["running"]) or
            "a retrying (attempt 3)" in text,
            "the retry shows its attempt number", text[-2000:])
    c.check(not any("(retry)" in r for f in frames for r in f["running"]),
            "no anonymous '(retry)' entries")
    c.done()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A loop over a million items starts its iterations at once (lazily, a window at a time), and
the first SIGINT cancels the run: exit handlers run and kfpc exits 1 with the run cancelled.
(Before, the engine created every iteration up front: no step started, memory grew by the
gigabyte and signals went unanswered.) No timing is asserted; the waits are generous bounds
that only catch a hang."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runlib import KFPC, LINE, env_for, scratch, write  # noqa: E402

d = scratch("big_loop")
src = write(d, "big.kfp", """
pipeline big() {
  for i in 1..1000000 {
    step s { image "busybox:1.36"  timeout 1m  in i: int = i  run ["true"] }
  }
  finally step bye { image "busybox:1.36"  timeout 1m  run ["sh", "-c", "echo bye {{run.status}}"] }
}
""")
p = subprocess.Popen([KFPC, "run", src, "--state", os.path.join(d, "state")], cwd=d,
                     env=env_for(d), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
ok = 0
deadline = time.time() + 120
while time.time() < deadline:
    line = p.stderr.readline()
    if not line:
        break
    m = LINE.match(line)
    if m and m.group(2) == "succeeded":
        ok += 1
        if ok == 50:
            break
failures = []
if ok < 50:
    failures.append("only %d iterations succeeded before the bound" % ok)
p.send_signal(signal.SIGINT)
try:
    out, err = p.communicate(timeout=120)
except subprocess.TimeoutExpired:
    p.kill()
    out, err = p.communicate()
    failures.append("kfpc did not stop after SIGINT")
if p.returncode != 1:
    failures.append("exit code %s, expected 1 (cancelled)" % p.returncode)
if "cancelled" not in err.splitlines()[-1] if err.strip() else True:
    failures.append("last stderr line does not say cancelled: %r" % err.strip()[-200:])
if "bye succeeded" not in err and not any(l.startswith("[") and " bye succeeded" in l for l in err.splitlines()):
    failures.append("the exit handler did not run")
for f in failures:
    print("FAIL:", f)
print("%d passed, %d failed" % (1 if not failures else 0, 1 if failures else 0))
sys.exit(1 if failures else 0)

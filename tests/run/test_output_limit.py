#!/usr/bin/python3
"""A step whose `from stdout` output passes the 1 MiB limit of a value output is stopped as soon
as it does (`yes` never ends by itself: only the stop ends it), fails with a clear message, and
its stdout log keeps the first MiB plus a note, not what the step went on writing. A step that
ignores SIGTERM is killed (SIGKILL after the grace). A `from file` output too big fails with
the same limit. Steps whose stdout is not an output are not limited."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

P = r'''
pipeline big_out() {
  defaults { image "busybox:1.36"  timeout 10m }
  step flood { out o: string from stdout  run ["yes"] }
  step stubborn { out o: string from stdout
                  run ["sh", "-c", "trap '' TERM; head -c 3000000 /dev/zero; touch \"$KFPC_CASE_DIR/stubborn\"; sleep 600"] }
  step file { out o: string from file "o.txt"  run ["sh", "-c", "head -c 3000000 /dev/zero > o.txt"] }
  step logonly { run ["sh", "-c", "head -c 3000000 /dev/zero"] }
}
'''

LIMIT = 1 << 20


def main():
    c = runlib.Checker("test_output_limit")
    d = runlib.scratch("run_output_limit")
    kfp = runlib.write(d, "big.kfp", P)
    p = runlib.kfpc_run(d, [kfp, "--parallelism", "4"], timeout=600)
    st = runlib.states(p.stderr)
    rid = runlib.run_id(p.stdout)
    c.check(p.returncode == 1, "the run fails (exit 1)", p.stdout + p.stderr[-2000:])
    for step in ("flood", "stubborn"):
        c.check(st.get(step) == "failed", "%s: failed" % step, repr(st))
        c.check(("%s failed (output 'o' is more than the 1 MiB limit of a value output "
                 "(from stdout): the step was stopped" % step) in p.stderr,
                "%s: the clear message" % step, p.stderr[-3000:])
        log = os.path.join(d, "state", "logs", rid or "?", "%s.1.stdout" % step)
        size = os.path.getsize(log) if os.path.exists(log) else -1
        c.check(LIMIT <= size <= LIMIT + 200, "%s: the log keeps the limit plus a note (%d bytes)"
                % (step, size))
        if size > 0:
            with open(log, "rb") as f:
                f.seek(LIMIT)
                c.check(b"[kfpc: output cut at 1048576 bytes" in f.read(),
                        "%s: the log ends with a note" % step)
    c.check(os.path.exists(os.path.join(d, "stubborn")),
            "stubborn: it ignored SIGTERM and was killed anyway")
    c.check(st.get("file") == "failed" and
            "output 'o' is 3000000 bytes, more than the 1 MiB limit of a value output" in p.stderr,
            "from file: fails with the limit", p.stderr[-3000:])
    c.check(st.get("logonly") == "succeeded", "a step whose stdout is only a log is not limited",
            repr(st))
    if rid:
        c.check(not runlib.leftovers(rid), "no process of the run is left")
    c.done()


if __name__ == "__main__":
    main()

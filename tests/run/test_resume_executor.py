#!/usr/bin/python3
"""`kfpc run --resume RUN` keeps the executor RUN was started with.

A run is started with the local executor and killed (-9) while its step sleeps. Then:
  - `--resume RUN --executor docker` is refused: exit 2, a message naming the recorded executor,
    and nothing runs;
  - `--resume RUN` (no --executor) resumes with the recorded executor and succeeds;
  - `--resume RUN --executor local` (the recorded one) is accepted;
  - durations stay sane across the downtime (a pause after the kill): in `kfpc show RUN --json`
    the step lasts less than its last attempt plus a margin (its start is not the killed
    attempt's), and the run's duration, in the record and in the resume's "succeeded (Ns)"
    line, is positive and shorter than this test's own wall time.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

DOWNTIME = 3.0  # seconds between the kill and the resumes
MARGIN = 1.5    # a step's own bookkeeping around its last attempt (less than DOWNTIME)


def check_durations(d, rid, resume_stderr, wall, errors):
    """The durations of the resumed run RID: none counts the downtime or the epoch."""
    m = re.search(r"^run %s succeeded \(([0-9.]+)s\)$" % re.escape(rid), resume_stderr, re.M)
    if not m:
        errors.append("no 'run %s succeeded (Ns)' line:\n%s" % (rid, resume_stderr))
    elif not 0 <= float(m.group(1)) < wall + 0.05:  # printed to 0.1 s: may round up
        errors.append("the resume reports the run took %ss, more than this test's %.1fs"
                      % (m.group(1), wall))
    r = subprocess.run([runlib.KFPC, "show", rid, "--json", "--state", os.path.join(d, "state")],
                       cwd=d, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        errors.append("kfpc show %s --json: exit %d\n%s" % (rid, r.returncode, r.stderr))
        return
    show = json.loads(r.stdout)
    if not 0 < show["duration"] < wall:
        errors.append("kfpc show: run duration %r, expected in (0, %.1f)" % (show["duration"],
                                                                            wall))
    for s in show["step_instances"]:
        last = s["attempts"][-1] if s["attempts"] else None
        if not last or s["state"] != "succeeded":
            errors.append("step %s: state %s, %d attempts" % (s["id"], s["state"],
                                                              len(s["attempts"])))
            continue
        took, own = s["finished"] - s["started"], last["finished"] - last["started"]
        if not 0 <= took < own + MARGIN:
            errors.append("step %s lasted %.2fs, its last attempt %.2fs (started %r, last "
                          "attempt started %r): the downtime is counted"
                          % (s["id"], took, own, s["started"], last["started"]))
    if len(show["step_instances"]) != 1 or len(show["step_instances"][0]["attempts"]) < 2:
        errors.append("expected one step with the killed attempt and a new one:\n" + r.stdout)


def main():
    t_begin = time.time()
    d = runlib.scratch("run_resume_executor")
    env = runlib.env_for(d)
    errors = []
    p, rid = runlib.run_killed_at_marker(d, env, new_session=True)
    if not rid:
        print("no run id in stdout")
        return 1
    time.sleep(DOWNTIME)  # kfpc is down: not part of any step's duration

    r = runlib.kfpc_run(d, ["--resume", rid, "--executor", "docker"], env=env)
    if r.returncode != 2:
        errors.append("--executor docker on a local run: exit %d, expected 2" % r.returncode)
    if "executor 'local'" not in r.stderr:
        errors.append("--executor docker on a local run: stderr does not name the recorded "
                      "executor 'local':\n" + r.stderr)
    if os.path.exists(os.path.join(d, "log")):
        errors.append("a refused resume ran a step")

    r = runlib.kfpc_run(d, ["--resume", rid], env=env)
    if r.returncode != 0:
        errors.append("--resume without --executor: exit %d\n%s" % (r.returncode, r.stderr))
    else:
        with open(os.path.join(d, "log")) as f:
            if "attempt" not in f.read():
                errors.append("--resume without --executor: the step did not run again")
        check_durations(d, rid, r.stderr, time.time() - t_begin, errors)

    r = runlib.kfpc_run(d, ["--resume", rid, "--executor", "local"], env=env)
    if r.returncode != 0:
        errors.append("--resume --executor local (the recorded one): exit %d\n%s"
                      % (r.returncode, r.stderr))

    # the killed run's sleeping step must not outlive the resumes
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for e in errors:
        print("FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

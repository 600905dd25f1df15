#!/usr/bin/python3
"""`kfpc run --resume RUN` keeps the executor RUN was started with.

A run is started with the local executor and killed (-9) while its step sleeps. Then:
  - `--resume RUN --executor docker` is refused: exit 2, a message naming the recorded executor,
    and nothing runs;
  - `--resume RUN` (no --executor) resumes with the recorded executor and succeeds;
  - `--resume RUN --executor local` (the recorded one) is accepted.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

PIPELINE = r'''
pipeline slow() {
  defaults { image "busybox:1.36"  timeout 1m }
  step s {
    out v: int
    script sh """
      if [ ! -e "$KFPC_CASE_DIR/marker" ]; then
        touch "$KFPC_CASE_DIR/marker"
        sleep 60
      fi
      echo "attempt $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
      echo 7 > "{{outputs.v}}"
    """
  }
}
'''


def main():
    d = runlib.scratch("run_resume_executor")
    runlib.write(d, "slow.kfp", PIPELINE)
    env = runlib.env_for(d)
    errors = []
    p = subprocess.Popen([runlib.KFPC, "run", "slow.kfp", "--state", os.path.join(d, "state")],
                         cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(d, "marker")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    out, _ = p.communicate()
    rid = runlib.run_id(out)
    if not rid:
        print("no run id in stdout: %r" % out)
        return 1

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

#!/usr/bin/python3
"""Retries and timeouts (SPEC §4.5, §6.5, §6.6): every attempt is recorded with its own log;
a step that ignores SIGTERM is SIGKILLed after the grace period, with everything in its process
group; the pipeline timeout cancels the running steps, fails the run with reason `timeout` and
still runs the exit handlers with run.status = failed."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

RETRY = r'''
pipeline retry_demo() {
  step flaky {
    image "busybox:1.36"
    timeout 1m
    retry 2 backoff 0s on [error]
    out n: int from stdout
    run ["sh", "-c", "echo attempt $KFPC_ATTEMPT >&2; echo x >> \"$KFPC_CASE_DIR/count\"; [ $(wc -l < \"$KFPC_CASE_DIR/count\") -ge 3 ] || exit 1; echo 3"]
  }
  out n: int = flaky.n
}
'''

STUBBORN = r'''
pipeline stubborn() {
  step hang {
    image "busybox:1.36"
    timeout 1s
    run ["sh", "-c", "trap '' TERM; (trap '' TERM; sleep 60; touch \"$KFPC_CASE_DIR/child-survived\") & touch \"$KFPC_CASE_DIR/started\"; sleep 60"]
  }
}
'''

RUNTIMEOUT = r'''
pipeline run_timeout() {
  timeout 2s
  defaults { image "busybox:1.36" }
  step slow { timeout 1m  run ["sleep", "60"] }
  step next { after slow  timeout 1m  run ["true"] }
  finally step notify {
    timeout 1m
    run ["sh", "-c", "echo \"$1\" > \"$KFPC_CASE_DIR/status\"", "n", "{{run.status}}"]
  }
}
'''


def main():
    c = runlib.Checker("test_retry_timeout")

    d = runlib.scratch("run_retry_attempts")
    kfp = runlib.write(d, "retry.kfp", RETRY)
    p = runlib.kfpc_run(d, [kfp])
    rid = runlib.run_id(p.stdout)
    c.check(p.returncode == 0 and runlib.outputs(p.stdout).get("n") == "3",
            "a step failing twice succeeds on its third attempt", p.stderr)
    logs = os.path.join(d, "state", "logs", rid or "?")
    got = sorted(f for f in os.listdir(logs)) if os.path.isdir(logs) else []
    c.check(got == ["flaky.1.stderr", "flaky.2.stderr", "flaky.3.stderr", "flaky.3.stdout"],
            "each attempt has its own log", repr(got))
    if len(got) == 4:
        c.check(open(os.path.join(logs, "flaky.2.stderr")).read().strip() == "attempt 2",
                "attempt 2's log holds attempt 2's output")

    d = runlib.scratch("run_retry_sigkill")
    kfp = runlib.write(d, "stubborn.kfp", STUBBORN)
    p = runlib.kfpc_run(d, [kfp])
    rid = runlib.run_id(p.stdout)
    st = runlib.states(p.stderr)
    c.check(p.returncode == 1 and st.get("hang") == "failed" and "timed out after 1s" in p.stderr,
            "a step ignoring SIGTERM fails with a timeout", p.stderr)
    time.sleep(0.3)
    c.check(rid and not runlib.leftovers(rid), "nothing of its process group is left")
    c.check(not os.path.exists(os.path.join(d, "child-survived")),
            "its background child did not survive")

    d = runlib.scratch("run_pipeline_timeout")
    kfp = runlib.write(d, "rt.kfp", RUNTIMEOUT)
    p = runlib.kfpc_run(d, [kfp])
    st = runlib.states(p.stderr)
    rid = runlib.run_id(p.stdout)
    c.check(p.returncode == 1 and "run %s failed: timeout" % rid in p.stderr,
            "the pipeline timeout fails the run with reason timeout", p.stderr)
    c.check(st.get("slow") == "cancelled" and st.get("next") == "cancelled",
            "running and pending steps are cancelled", repr(st))
    c.check(st.get("notify") == "succeeded" and os.path.exists(os.path.join(d, "status")) and
            open(os.path.join(d, "status")).read().strip() == "failed",
            "exit handlers run with run.status = failed", p.stderr)
    c.done()


if __name__ == "__main__":
    main()

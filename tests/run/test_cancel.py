#!/usr/bin/python3
"""Cancel (SPEC §6.10): the first SIGINT/SIGTERM stops running steps (SIGTERM to their process
group), cancels pending ones, still runs the exit handlers with {{run.status}} = cancelled and
ends `cancelled` (exit 1); a second SIGINT stops at once (no exit handler starts)."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

PIPE = r'''
pipeline cancel_demo(stubborn: bool = false) {
  defaults { image "busybox:1.36"  timeout 5m }
  step long {
    in stubborn: bool = stubborn
    script sh """
      if [ "{{inputs.stubborn}}" = true ]; then trap '' TERM; else trap 'echo term > "$KFPC_CASE_DIR/term"; exit 143' TERM; fi
      (sleep 60; echo orphan > "$KFPC_CASE_DIR/orphan") &
      touch "$KFPC_CASE_DIR/started"
      sleep 60 & wait
      sleep 60
    """
  }
  step later { after long  run ["sh", "-c", "touch \"$KFPC_CASE_DIR/later\""] }
  finally step notify {
    run ["sh", "-c", "echo \"$1\" > \"$KFPC_CASE_DIR/status\"", "notify", "{{run.status}}"]
  }
}
'''


def start(d, kfp, extra=()):
    env = runlib.env_for(d)
    return subprocess.Popen([runlib.KFPC, "run", kfp, "--state", os.path.join(d, "state")] +
                            list(extra), cwd=d, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, limit=60):
    t = time.time()
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() - t > limit:
            return False
        time.sleep(0.05)
    return True


def main():
    c = runlib.Checker("test_cancel")
    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        d = runlib.scratch("run_cancel_" + name)
        kfp = runlib.write(d, "cancel.kfp", PIPE)
        p = start(d, kfp)
        c.check(wait_for(os.path.join(d, "started"), p), name + ": the long step started")
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        st = runlib.states(err)
        c.check(p.returncode == 1, name + ": exit status 1", err)
        c.check(st.get("long") == "cancelled" and st.get("later") == "cancelled",
                name + ": running and pending steps are cancelled", repr(st))
        c.check(os.path.exists(os.path.join(d, "term")),
                name + ": the running step got SIGTERM")
        c.check(st.get("notify") == "succeeded" and
                open(os.path.join(d, "status")).read().strip() == "cancelled"
                if os.path.exists(os.path.join(d, "status")) else False,
                name + ": the exit handler ran with run.status = cancelled", err)
        c.check("run %s cancelled" % runlib.run_id(out) in err, name + ": run ends cancelled",
                err)
        c.check(not os.path.exists(os.path.join(d, "later")), name + ": `later` never ran")
        rid = runlib.run_id(out)
        c.check(rid and not runlib.leftovers(rid), name + ": no process of the run is left")
        # the store agrees: a resume says the run already ended
        q = runlib.kfpc_run(d, ["--resume", rid])
        c.check(q.returncode == 1 and "already ended: cancelled" in q.stderr,
                name + ": the store records the run as cancelled", q.stderr)

    # a step that ignores SIGTERM: the second SIGINT stops everything at once
    d = runlib.scratch("run_cancel_twice")
    kfp = runlib.write(d, "cancel.kfp", PIPE)
    p = start(d, kfp, ["-p", "stubborn=true"])
    c.check(wait_for(os.path.join(d, "started"), p), "twice: the long step started")
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    c.check(p.poll() is None, "twice: a step ignoring SIGTERM keeps the run waiting")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    st = runlib.states(err)
    c.check(p.returncode == 1 and st.get("long") == "cancelled", "twice: stopped at once",
            err)
    c.check("stopping at once" in err, "twice: says it stops at once", err)
    c.check(not os.path.exists(os.path.join(d, "status")),
            "twice: no exit handler is started after the second signal")
    rid = runlib.run_id(out)
    time.sleep(0.2)
    c.check(rid and not runlib.leftovers(rid), "twice: no process of the run is left")
    c.done()


if __name__ == "__main__":
    main()

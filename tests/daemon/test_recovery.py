"""Reliability: a 201 means durable; kill -9 of the daemon (alone, or with its run workers) in
the middle of a run, then a restart: every accepted run finishes and no finished step runs
again. SIGTERM is graceful and the run goes on. Many concurrent clients."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import EMPTY_IR, Failures, Kfpd  # noqa: E402

F = Failures()
check = F.check
HERE = os.path.dirname(os.path.abspath(__file__))


def start_threads(fn, n):
    """N threads running FN(0) .. FN(N-1), started."""
    ts = [threading.Thread(target=fn, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    return ts


def run_threads(fn, n):
    """FN(0) .. FN(N-1) in N threads at once, until all are done."""
    for t in start_threads(fn, n):
        t.join()


def count(path):
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def wait_file(path, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and not os.path.exists(path):
        time.sleep(0.05)
    return os.path.exists(path)


def workers_of(rid):
    """Pids of `kfpc run --resume RID` processes."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"--resume" in argv and rid.encode() in argv:
            pids.append(int(p))
    return pids


d = Kfpd("daemon_recovery").start()
try:
    tok = d.team("rel")
    with open(os.path.join(HERE, "pipelines", "slow.kfp")) as f:
        st, _ = d.req("POST", "/api/v1/pipelines", {"source": f.read(), "filename": "slow.kfp"}, tok)
    assert st == 201
    st, _ = d.req("POST", "/api/v1/pipelines", {"name": "empty", "ir": EMPTY_IR}, tok)
    assert st == 201

    def start(name, secs=3):
        w = os.path.join(d.dir, name)
        os.makedirs(w)
        st, r = d.req("POST", "/api/v1/runs", {"pipeline": "slow", "params": {"dir": w, "secs": secs}},
                      tok)
        assert st == 201, r
        return r["id"], w

    # 1. kill -9 of the daemon alone, mid-step: the worker goes on, the restarted daemon adopts it
    rid, w = start("alone")
    check(wait_file(w + "/wait.started"), "run 1 reached its sleeping step")
    d.kill9()
    d.start()
    r = d.wait_run(tok, rid, timeout=120)
    check(r["state"] == "succeeded", "run 1 after kill -9 of the daemon: %s" % r)
    check([count(w + "/%s.count" % s) for s in ("first", "wait", "last")] == [1, 1, 1],
          "run 1: every step ran exactly once")

    # 2. kill -9 of the daemon and of the worker (a crash of both): the run resumes, the
    #    finished step is not run again
    rid, w = start("both", secs=8)
    check(wait_file(w + "/wait.started"), "run 2 reached its sleeping step")
    pids = workers_of(rid)
    check(len(pids) == 1, "one worker for run 2: %s" % pids)
    d.kill9()
    for p in pids:
        os.killpg(os.getpgid(p), signal.SIGKILL)
    time.sleep(0.2)
    d.start()
    r = d.wait_run(tok, rid, timeout=180)
    check(r["state"] == "succeeded", "run 2 after kill -9 of daemon and worker: %s" % r)
    check(count(w + "/first.count") == 1, "run 2: the finished step did not run again")
    check(count(w + "/last.count") == 1 and count(w + "/wait.count") >= 1, "run 2 finished its steps")

    # 3. accepted while the daemon dies at once: every 201 finishes
    ids = []
    for i in range(5):
        st, r = d.req("POST", "/api/v1/runs", {"pipeline": "empty"}, tok)
        check(st == 201, "submit %d" % i)
        ids.append(r["id"])
    d.kill9()
    d.start()
    for i in ids:
        r = d.wait_run(tok, i, timeout=120)
        check(r["state"] == "succeeded", "accepted run %s finished: %s" % (i, r["state"]))

    # 4. SIGTERM: graceful exit 0; the run goes on and is recorded at the next start
    rid, w = start("term")
    check(wait_file(w + "/wait.started"), "run 4 reached its sleeping step")
    code = d.term()
    check(code == 0, "SIGTERM exit code: %s" % code)
    check("kfpd stopped" in d.log(), "graceful stop logged")
    d.start()
    r = d.wait_run(tok, rid, timeout=120)
    check(r["state"] == "succeeded", "run 4 after SIGTERM: %s" % r)
    check([count(w + "/%s.count" % s) for s in ("first", "wait", "last")] == [1, 1, 1],
          "run 4: every step ran exactly once")

    # 5. many concurrent clients: 16 threads x 50 requests, all answered
    errors = []

    def client(n):
        for i in range(50):
            try:
                st, _ = d.req("GET", "/api/v1/runs/" + rid, token=tok)
                if st != 200:
                    errors.append(st)
                if i % 10 == 0:
                    st, _ = d.req("POST", "/api/v1/runs", raw=b"{oops", token=tok)
                    if st != 400:
                        errors.append(st)
            except OSError as e:
                errors.append(str(e))
    run_threads(client, 16)
    check(not errors, "concurrent clients: %s" % errors[:5])
    check(d.req("GET", "/healthz")[0] == 200, "still healthy")

    # 6. concurrent submissions share group commits (a request queued behind a commit in
    #    progress is parked, its connection suspended): each one gets its own 201 and its run
    created, errors = [], []

    def submitter(n):
        for i in range(8):
            try:
                st, r = d.req("POST", "/api/v1/runs", {"pipeline": "empty"}, token=tok)
                if st == 201:
                    created.append(r["id"])
                else:
                    errors.append((st, r))
            except OSError as e:
                errors.append(str(e))
    run_threads(submitter, 16)
    check(not errors, "concurrent submissions: %s" % errors[:5])
    check(len(created) == 128 and len(set(created)) == 128,
          "128 distinct runs created: %d (%d distinct)" % (len(created), len(set(created))))
    bad = [i for i in created if d.req("GET", "/api/v1/runs/" + i, token=tok)[0] != 200]
    check(not bad, "every created run is there: missing %s" % bad[:5])

    # 7. SIGTERM while clients submit: kfpd exits 0 (no request left suspended), and after a
    #    restart every run that got its 201 exists
    created, stop_at = [], []

    def submit_until_down(n):
        while True:
            try:
                st, r = d.req("POST", "/api/v1/runs", {"pipeline": "empty"}, token=tok)
            except OSError:
                return
            if st == 201:
                created.append(r["id"])
            elif st != 503:
                stop_at.append((st, r))
                return
    ts = start_threads(submit_until_down, 8)
    while len(created) < 40 and all(t.is_alive() for t in ts):
        time.sleep(0.01)
    code = d.term()
    for t in ts:
        t.join()
    check(code == 0, "SIGTERM during submissions: exit code %s" % code)
    check(not stop_at, "answers during shutdown: %s" % stop_at[:5])
    d.start()
    bad = [i for i in created if d.req("GET", "/api/v1/runs/" + i, token=tok)[0] != 200]
    check(len(created) >= 40 and not bad,
          "%d runs accepted before SIGTERM, all there after the restart: missing %s"
          % (len(created), bad[:5]))
finally:
    d.stop()
F.done()

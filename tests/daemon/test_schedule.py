"""Schedules that really fire (per-second cron), pause/resume, and the catch-up and skip policies
for fire times missed while the daemon was down (kill -9, then restart)."""
import calendar
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import EMPTY_IR, Failures, Kfpd  # noqa: E402

F = Failures()
check = F.check


def fire_times(d, tok, sid):
    st, b = d.req("GET", "/api/v1/runs?limit=1000&schedule=" + sid, token=tok)
    assert st == 200, b
    return sorted(calendar.timegm(time.strptime(r["fire_time"], "%Y-%m-%dT%H:%M:%SZ"))
                  for r in b["runs"])


def wait_for(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


d = Kfpd("daemon_schedule").start()
try:
    tok = d.team("sched")
    st, _ = d.req("POST", "/api/v1/pipelines", {"name": "tick", "ir": EMPTY_IR}, tok)
    assert st == 201
    body = {"pipeline": "tick", "cron": "* * * * * *", "max_concurrent": 0,
            "params": {"n": 2}}
    st, s = d.req("POST", "/api/v1/schedules", dict(body, policy="catchup"), tok)
    check(st == 201, "create: %s %s" % (st, s))
    sc = s["id"]
    st, s = d.req("POST", "/api/v1/schedules", dict(body, policy="skip"), tok)
    ss = s["id"]
    nxt = s["next_fire_times"]
    check(len(nxt) == 5 and all(calendar.timegm(time.strptime(b, "%Y-%m-%dT%H:%M:%SZ")) -
                                calendar.timegm(time.strptime(a, "%Y-%m-%dT%H:%M:%SZ")) == 1
                                for a, b in zip(nxt, nxt[1:])),
          "per-second fire times: %s" % nxt)

    # it really fires, once per second, with the schedule's params
    ft = wait_for(lambda: len(fire_times(d, tok, sc)) >= 3 and fire_times(d, tok, sc))
    check(ft and len(ft) >= 3, "schedule fired: %s" % ft)
    check(ft == list(range(ft[0], ft[0] + len(ft))), "one run per second: %s" % ft)
    st, b = d.req("GET", "/api/v1/runs?limit=1&schedule=" + sc, token=tok)
    check(b["runs"][0]["schedule"] == sc and b["runs"][0]["pipeline"] == "tick",
          "run carries its schedule: %s" % b["runs"][0])
    st, r = d.req("GET", "/api/v1/runs/" + b["runs"][0]["id"], token=tok)
    check(r["params"] == {"n": 2, "mode": "fast"}, "schedule params: %s" % r["params"])
    st, s = d.req("GET", "/api/v1/schedules/" + sc, token=tok)
    check(s["fired"] >= 3 and s.get("last_fire_time"), "fired count: %s" % s)

    # paused: nothing fires
    st, _ = d.req("POST", "/api/v1/schedules/%s/pause" % ss, token=tok)
    check(st == 200, "pause")
    time.sleep(1.2)  # let a tick that was in flight finish
    n0 = len(fire_times(d, tok, ss))
    time.sleep(2.5)
    check(len(fire_times(d, tok, ss)) == n0, "a paused schedule does not fire")
    st, _ = d.req("POST", "/api/v1/schedules/%s/resume" % ss, token=tok)
    check(wait_for(lambda: len(fire_times(d, tok, ss)) > n0), "resumed schedule fires again")

    # kill -9, stay down ~4 s, restart: catchup fires the missed seconds, skip does not
    d.kill9()
    down_from = time.time()
    before_c, before_s = None, None
    time.sleep(4)
    d.start()
    up_at = time.time()
    last_c = wait_for(lambda: (lambda f: f if f and f[-1] >= int(up_at) else None)(fire_times(d, tok, sc)))
    last_s = wait_for(lambda: (lambda f: f if f and f[-1] >= int(up_at) else None)(fire_times(d, tok, ss)))
    check(last_c and last_c == list(range(last_c[0], last_c[-1] + 1)),
          "catchup: every second fired, none missing across the outage: %s" % last_c)
    missed = [t for t in range(int(down_from) + 1, int(up_at))]
    check(last_s and not any(t in last_s for t in missed[1:-1]),
          "skip: nothing fired for the outage %s: %s" % (missed, last_s))
    check(last_s and len(set(last_s)) == len(last_s) and len(set(last_c)) == len(last_c),
          "no fire time twice")
    # the tick stores the schedule's counters after the fires it made (their runs can be seen
    # first): wait for them
    s = wait_for(lambda: (lambda s: s if s.get("skipped", 0) >= 2 else None)(
        d.req("GET", "/api/v1/schedules/" + ss, token=tok)[1]), timeout=10) or \
        d.req("GET", "/api/v1/schedules/" + ss, token=tok)[1]
    check(s["skipped"] >= 2, "skipped count: %s" % s.get("skipped"))
    for sid in (sc, ss):
        d.req("DELETE", "/api/v1/schedules/" + sid, token=tok)

    # max_concurrent: a per-second schedule of a 6-second run keeps one run going at a time
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipelines", "slow.kfp")) as f:
        st, _ = d.req("POST", "/api/v1/pipelines", {"source": f.read(), "filename": "slow.kfp"}, tok)
    check(st == 201, "upload slow")
    w = os.path.join(d.dir, "mc")
    os.makedirs(w)
    st, s = d.req("POST", "/api/v1/schedules", {"pipeline": "slow", "cron": "* * * * * *",
                                                 "max_concurrent": 1,
                                                 "params": {"dir": w, "secs": 6}}, tok)
    check(st == 201, "create max_concurrent schedule: %s %s" % (st, s))
    smc = s["id"]
    time.sleep(4)
    st, b = d.req("GET", "/api/v1/runs?limit=1000&schedule=" + smc, token=tok)
    active = [r for r in b["runs"] if r["state"] in ("queued", "running")]
    check(len(b["runs"]) == 1 and len(active) == 1, "one run at a time: %s" %
          [(r["id"], r["state"]) for r in b["runs"]])
    st, s = d.req("GET", "/api/v1/schedules/" + smc, token=tok)
    check(s["skipped"] >= 2, "fire times skipped while a run was active: %s" % s["skipped"])
    d.req("DELETE", "/api/v1/schedules/" + smc, token=tok)

    # schedules declared in the pipeline source follow its versions
    src = """pipeline decl() {
  schedule "* * * * * *" tz "UTC"
  schedule "0 4 * * *" tz "Asia/Tokyo"
  step s {
    image "busybox:1.36"
    timeout 1m
    run ["true"]
  }
}
"""
    st, b = d.req("POST", "/api/v1/pipelines", {"source": src, "filename": "decl.kfp"}, tok)
    check(st == 201, "upload with schedules: %s %s" % (st, b))
    st, b = d.req("GET", "/api/v1/schedules?pipeline=decl", token=tok)
    decl = sorted(b["schedules"], key=lambda s: s["index"]) if st == 200 else []
    check(len(decl) == 2 and decl[0]["source"] == "pipeline" and decl[1]["tz"] == "Asia/Tokyo"
          and decl[1]["next_fire_times"][0].endswith("19:00:00Z"), "declared schedules: %s" % decl)
    if decl:
        ft = wait_for(lambda: fire_times(d, tok, decl[0]["id"]))
        check(ft, "a declared schedule fires")
    st, b = d.req("POST", "/api/v1/pipelines",
                  {"source": src.replace('  schedule "* * * * * *" tz "UTC"\n', ""),
                   "filename": "decl.kfp"}, tok)
    st, b = d.req("GET", "/api/v1/schedules?pipeline=decl", token=tok)
    check(st == 200 and len(b["schedules"]) == 1 and b["schedules"][0]["cron"] == "0 4 * * *",
          "a schedule no longer declared is gone: %s" % b)
    st, _ = d.req("DELETE", "/api/v1/pipelines/decl", token=tok)
    st, b = d.req("GET", "/api/v1/schedules?pipeline=decl", token=tok)
    check(st == 200 and b["schedules"] == [], "deleting the pipeline deletes its schedules: %s" % b)
finally:
    d.stop()
F.done()

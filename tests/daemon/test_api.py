"""kfpd over real HTTP: every endpoint's happy path and its errors, bad bodies, limits."""
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import ADMIN, EMPTY_IR, Failures, Kfpd  # noqa: E402

F = Failures()
check = F.check
d = Kfpd("daemon_api").start()
try:
    # --- health, readiness, metrics
    st, b = d.req("GET", "/healthz")
    check(st == 200 and b == {"status": "ok"}, "healthz: %s %s" % (st, b))
    st, b = d.req("GET", "/readyz")
    check(st == 200 and b["status"] == "ready", "readyz: %s %s" % (st, b))

    # --- namespaces and tokens (admin)
    st, b = d.req("POST", "/api/v1/namespaces", {"name": "alpha"}, ADMIN)
    check(st == 201 and b["name"] == "alpha", "create ns: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/namespaces", {"name": "alpha"}, ADMIN)
    check(st == 409, "duplicate ns: %s" % st)
    st, b = d.req("POST", "/api/v1/namespaces", {"name": "../x"}, ADMIN)
    check(st == 400 and "name" in b["error"]["message"], "bad ns name: %s %s" % (st, b))
    st, b = d.req("GET", "/api/v1/namespaces", token=ADMIN)
    check(st == 200 and [n["name"] for n in b["namespaces"]] == ["alpha"], "list ns: %s" % b)
    st, t = d.req("POST", "/api/v1/namespaces/alpha/tokens", {"name": "ci"}, ADMIN)
    check(st == 201 and t["token"].startswith("kfp_") and t["role"] == "member", "token: %s" % t)
    tok = t["token"]
    st, b = d.req("POST", "/api/v1/namespaces/alpha/tokens", {"role": "root"}, ADMIN)
    check(st == 400, "bad role: %s" % st)
    st, b = d.req("POST", "/api/v1/namespaces/nope/tokens", {}, ADMIN)
    check(st == 404, "token for missing ns: %s" % st)
    st, b = d.req("GET", "/api/v1/namespaces/alpha/tokens", token=ADMIN)
    check(st == 200 and len(b["tokens"]) == 1 and "token" not in b["tokens"][0]
          and tok not in str(b), "token list hides secrets: %s" % b)
    st, b = d.req("GET", "/api/v1/whoami", token=tok)
    check(st == 200 and b == {"namespace": "alpha", "role": "member"}, "whoami: %s" % b)
    st, b = d.req("GET", "/api/v1/whoami", token=ADMIN)
    check(st == 200 and b["role"] == "admin", "whoami admin: %s" % b)
    # revocation
    st, t2 = d.req("POST", "/api/v1/namespaces/alpha/tokens", {"role": "viewer"}, ADMIN)
    st, b = d.req("DELETE", "/api/v1/namespaces/alpha/tokens/" + t2["id"], token=ADMIN)
    check(st == 200, "revoke: %s" % st)
    st, b = d.req("GET", "/api/v1/whoami", token=t2["token"])
    check(st == 401, "revoked token refused: %s" % st)
    st, b = d.req("DELETE", "/api/v1/namespaces/alpha/tokens/" + t2["id"], token=ADMIN)
    check(st == 404, "revoke twice: %s" % st)

    # --- pipelines
    st, v1 = d.req("POST", "/api/v1/pipelines", {"name": "empty", "ir": EMPTY_IR}, tok)
    check(st == 201 and v1["version"] == 1 and v1["name"] == "empty", "upload ir: %s %s" % (st, v1))
    st, b = d.req("POST", "/api/v1/pipelines", {"name": "empty", "ir": EMPTY_IR}, tok)
    check(st == 200 and b["version"] == 1 and b.get("unchanged"), "same ir again: %s %s" % (st, b))
    ir2 = dict(EMPTY_IR, doc="second")
    st, v2 = d.req("POST", "/api/v1/pipelines", {"name": "empty", "ir": ir2}, tok)
    check(st == 201 and v2["version"] == 2, "new version: %s %s" % (st, v2))
    st, b = d.req("POST", "/api/v1/pipelines", {"ir": {"kfpc_ir": 99}}, tok)
    check(st == 400, "ir of unknown version: %s" % st)
    st, b = d.req("POST", "/api/v1/pipelines", {"nothing": 1}, tok)
    check(st == 400, "upload without source or ir: %s" % st)
    st, b = d.req("GET", "/api/v1/pipelines", token=tok)
    check(st == 200 and [p["name"] for p in b["pipelines"]] == ["empty"]
          and b["pipelines"][0]["latest"] == 2, "list pipelines: %s" % b)
    st, b = d.req("GET", "/api/v1/pipelines/empty", token=tok)
    check(st == 200 and [v["version"] for v in b["versions"]] == [1, 2], "versions: %s" % b)
    st, b = d.req("GET", "/api/v1/pipelines/empty/versions/1", token=tok)
    check(st == 200 and b["version"] == 1, "version 1: %s" % b)
    st, b = d.req("GET", "/api/v1/pipelines/empty/ir", token=tok)
    check(st == 200 and b.get("doc") == "second", "latest ir: %s" % st)
    st, b = d.req("GET", "/api/v1/pipelines/empty/versions/1/ir", token=tok)
    check(st == 200 and b.get("doc") is None and b["kfpc_ir"] == 1, "ir of v1: %s" % st)
    for p in ("/api/v1/pipelines/nope", "/api/v1/pipelines/empty/versions/9",
              "/api/v1/pipelines/empty/versions/x/ir"):
        st, b = d.req("GET", p, token=tok)
        check(st == 404 and "error" in b, "404 for %s: %s" % (p, st))

    # source upload: a syntax error comes back as structured diagnostics
    st, b = d.req("POST", "/api/v1/pipelines",
                  {"source": "pipeline p( {\n  step ?? \n}\n", "filename": "bad.kfp"}, tok)
    check(st == 422 and "diagnostics" in b, "bad source: %s %s" % (st, b))
    if st == 422:
        diags = b["diagnostics"].get("diagnostics", [])
        check(diags and all(x["file"] == "bad.kfp" for x in diags)
              and any(x["line"] >= 1 and x["code"] == "E001" for x in diags),
              "diagnostics name the uploaded file: %s" % diags)
    # relative imports travel in "files"; their diagnostics name them as sent
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipelines", "multi")
    main = open(os.path.join(here, "main.kfp")).read()
    lib = open(os.path.join(here, "lib", "common.kfp")).read()
    st, b = d.req("POST", "/api/v1/pipelines", {"source": main, "filename": "main.kfp"}, tok)
    check(st == 422 and any(x["code"] == "E501" for x in b["diagnostics"]["diagnostics"]),
          "import without its file: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/pipelines", {"source": main, "filename": "main.kfp",
                                                 "files": {"lib/common.kfp": lib}}, tok)
    check(st == 201 and b["name"] == "multi", "import with its file: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/pipelines", {"source": main, "filename": "main.kfp",
                                                 "files": {"lib/common.kfp": lib.replace("in who", "in who who")}}, tok)
    check(st == 422 and any(x["file"] == "lib/common.kfp" for x in b["diagnostics"]["diagnostics"]),
          "an error in an imported file names it: %s" % b)
    for bad in ("../x.kfp", "/etc/x.kfp", "a/../../x.kfp", ".hidden.kfp", "x.txt"):
        st, b = d.req("POST", "/api/v1/pipelines", {"source": main, "filename": "main.kfp",
                                                     "files": {bad: lib}}, tok)
        check(st == 400 and "files" in b["error"]["message"], "files path %r refused: %s" % (bad, st))
    st, b = d.req("POST", "/api/v1/pipelines", {"source": "x", "filename": "../etc/x.kfp"}, tok)
    check(st == 400, "filename with a path: %s" % st)

    # --- runs
    st, r = d.req("POST", "/api/v1/runs", {"pipeline": "empty", "params": {"n": 4}}, tok)
    check(st == 201 and r["state"] == "queued" and r["params"] == {"n": 4, "mode": "fast"}
          and r["version"] == 2, "create run: %s %s" % (st, r))
    run1 = r["id"]
    st, r = d.req("POST", "/api/v1/runs", {"pipeline": "empty", "version": 1,
                                             "params": {"n": "2", "mode": "slow"}}, tok)
    check(st == 201 and r["params"] == {"n": 2, "mode": "slow"} and r["version"] == 1,
          "params from strings: %s %s" % (st, r))
    for params, frag in (({"n": 9}, "maximum"), ({"n": "abc"}, "type int"),
                         ({"mode": "medium"}, "one of"), ({"zzz": 1}, "unknown parameter")):
        st, b = d.req("POST", "/api/v1/runs", {"pipeline": "empty", "params": params}, tok)
        check(st == 400 and frag in b["error"]["message"], "bad params %s: %s %s" % (params, st, b))
    st, b = d.req("POST", "/api/v1/runs", {"pipeline": "nope"}, tok)
    check(st == 404, "run of unknown pipeline: %s" % st)
    st, b = d.req("POST", "/api/v1/runs", {"pipeline": "empty", "params": [1]}, tok)
    check(st == 400, "params not an object: %s" % st)
    st, r = d.req("GET", "/api/v1/runs/" + run1, token=tok)
    check(st == 200 and r["id"] == run1 and r["namespace"] == "alpha" and "pid" not in r,
          "get run: %s %s" % (st, r))
    st, r = d.req("GET", "/api/v1/runs/" + run1 + "?steps=1", token=tok)
    check(st == 200 and isinstance(r.get("steps"), list), "get run with steps: %s" % r)
    st, b = d.req("GET", "/api/v1/runs/rnope", token=tok)
    check(st == 404, "unknown run: %s" % st)

    # pagination: 7 runs in all, pages of 3, newest first, no duplicates
    ids = [run1, r["id"]] if False else []
    for i in range(5):
        st, r = d.req("POST", "/api/v1/runs", {"pipeline": "empty"}, tok)
        check(st == 201, "run %d: %s" % (i, st))
        ids.append(r["id"])
    seen, cursor, pages = [], None, 0
    while True:
        st, b = d.req("GET", "/api/v1/runs?limit=3" + ("&cursor=" + cursor if cursor else ""),
                      token=tok)
        check(st == 200 and len(b["runs"]) <= 3, "page: %s" % st)
        seen += [x["id"] for x in b["runs"]]
        pages += 1
        cursor = b["next_cursor"]
        if not cursor or pages > 10:
            break
    check(len(seen) == 7 and len(set(seen)) == 7 and pages == 3, "pagination: %s" % seen)
    # newest first by creation (not by id: ids made in one second sort by a random suffix)
    check(seen[:5] == ids[::-1], "newest first: %s, created %s" % (seen, ids))
    st, b = d.req("GET", "/api/v1/runs?pipeline=nope", token=tok)
    check(st == 200 and b["runs"] == [], "filter by pipeline: %s" % b)
    st, b = d.req("GET", "/api/v1/runs?limit=0", token=tok)
    check(st == 400, "limit 0: %s" % st)

    # every run ends (the worker runs the empty IR); then delete one
    for rid in seen:
        d.wait_run(tok, rid, timeout=120)
    st, b = d.req("GET", "/api/v1/runs?state=succeeded&limit=1000", token=tok)
    check(st == 200 and len(b["runs"]) == 7, "all 7 runs succeeded: %s" %
          [(x["id"], x["state"], x["reason"]) for x in d.req("GET", "/api/v1/runs", token=tok)[1]["runs"]])
    st, b = d.req("POST", "/api/v1/runs/%s/cancel" % run1, token=tok)
    check(st == 409, "cancel a finished run: %s" % st)
    st, b = d.req("POST", "/api/v1/runs/%s/retry" % run1, token=tok)
    check(st == 409, "retry a succeeded run: %s" % st)
    st, b = d.req("DELETE", "/api/v1/runs/" + run1, token=tok)
    check(st == 200, "delete run: %s" % st)
    st, b = d.req("GET", "/api/v1/runs/" + run1, token=tok)
    check(st == 404, "deleted run is gone: %s" % st)

    # --- schedules
    st, s = d.req("POST", "/api/v1/schedules",
                  {"pipeline": "empty", "cron": "0 3 * * *", "tz": "Europe/Paris", "enabled": False},
                  tok)
    check(st == 201 and s["enabled"] is False and len(s["next_fire_times"]) == 5,
          "create schedule: %s %s" % (st, s))
    times = s.get("next_fire_times", [])
    check(times == sorted(times) and all(t.endswith(("01:00:00Z", "02:00:00Z")) for t in times),
          "03:00 Paris is 01:00 or 02:00 UTC: %s" % times)
    sid = s["id"]
    for body, frag in (({"pipeline": "empty", "cron": "61 * * * *"}, ""),
                       ({"pipeline": "empty", "cron": "* * * * *", "tz": "Mars/Base"}, ""),
                       ({"pipeline": "empty", "cron": "* * * * *", "policy": "maybe"}, "policy"),
                       ({"pipeline": "empty", "cron": "* * * * *", "bogus": 1}, "bogus")):
        st, b = d.req("POST", "/api/v1/schedules", body, tok)
        check(st == 400 and frag in b["error"]["message"], "bad schedule %s: %s %s" % (body, st, b))
    st, b = d.req("POST", "/api/v1/schedules", {"pipeline": "nope", "cron": "* * * * *"}, tok)
    check(st == 404 and "pipeline" in b["error"]["message"], "schedule of unknown pipeline: %s" % st)
    st, b = d.req("GET", "/api/v1/schedules/%s?n=3" % sid, token=tok)
    check(st == 200 and len(b["next_fire_times"]) == 3, "get schedule: %s" % b)
    st, b = d.req("POST", "/api/v1/schedules/%s/resume" % sid, token=tok)
    check(st == 200 and b["enabled"] is True, "resume: %s" % b)
    st, b = d.req("POST", "/api/v1/schedules/%s/pause" % sid, token=tok)
    check(st == 200 and b["enabled"] is False, "pause: %s" % b)
    st, b = d.req("PATCH", "/api/v1/schedules/" + sid,
                  {"cron": "@hourly", "max_concurrent": 2, "policy": "catchup"}, tok)
    check(st == 200 and b["cron"] == "@hourly" and b["max_concurrent"] == 2
          and b["policy"] == "catchup" and b["next_fire_times"][0].endswith(":00:00Z"),
          "patch: %s %s" % (st, b))
    st, b = d.req("GET", "/api/v1/schedules", token=tok)
    check(st == 200 and [x["id"] for x in b["schedules"]] == [sid], "list schedules: %s" % b)
    st, b = d.req("DELETE", "/api/v1/schedules/" + sid, token=tok)
    check(st == 200, "delete schedule: %s" % st)
    st, b = d.req("GET", "/api/v1/schedules/" + sid, token=tok)
    check(st == 404, "deleted schedule: %s" % st)

    # --- bad requests: the daemon answers and keeps serving
    st, b = d.req("POST", "/api/v1/runs", raw=b'{"pipeline": ', token=tok)
    check(st == 400 and "malformed JSON" in b["error"]["message"], "truncated JSON: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/runs", raw=b'[1,2]', token=tok)
    check(st == 400 and "object" in b["error"]["message"], "array body: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/runs", raw=b'', token=tok)
    check(st == 400, "empty body: %s" % st)
    st, b = d.req("POST", "/api/v1/runs", raw=b'{"a":1} x', token=tok)
    check(st == 400 and "byte 8" in b["error"]["message"], "trailing data: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/runs", raw=b'{"a":"\xff\xfe"}', token=tok)
    check(st == 400, "invalid UTF-8 / unknown pipeline: %s" % st)
    st, b = d.req("POST", "/api/v1/pipelines", raw=b"{" + b" " * (5 << 20) + b"}", token=tok)
    check(st == 413, "5 MiB body: %s" % st)
    try:
        st, b = d.req("GET", "/api/v1/runs", token=tok, headers={"X-Big": "a" * (64 << 10)})
        check(st in (413, 431, 400), "64 KiB header: %s" % st)
    except OSError:
        check(True, "64 KiB header: connection closed")
    st, b = d.req("GET", "/api/v1/nothing", token=tok)
    check(st == 404, "unknown endpoint: %s" % st)
    st, b = d.req("PUT", "/api/v1/runs", raw=b"{}", token=tok)
    check(st == 405, "wrong method: %s" % st)
    st, b = d.req("GET", "/healthz")
    check(st == 200, "still serving after bad requests: %s" % st)

    # --- metrics
    with urllib.request.urlopen(d.url + "/metrics") as resp:
        m = resp.read().decode()
    for name in ('kfpd_http_requests_total{method="POST",code="201"}', 'kfpd_runs{state="succeeded"}',
                 "kfpd_queue_depth", 'kfpd_step_duration_seconds_bucket{le="+Inf"}',
                 'kfpd_http_requests_total{method="POST",code="413"}'):
        check(name in m, "metric %s" % name)

    # --- logs: one JSON object per line, no secret anywhere
    time.sleep(0.2)
    import json as _json
    lines = d.log().splitlines()
    ok = True
    for ln in lines:
        try:
            o = _json.loads(ln)
            ok = ok and "ts" in o and "level" in o and "msg" in o
        except ValueError:
            ok = False
    check(lines and ok, "structured log lines")
    check(ADMIN not in d.log() and tok not in d.log(), "no token in the log")
finally:
    d.stop()
F.done()

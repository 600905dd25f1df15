"""The auth matrix: every endpoint x (no token, bad token, another team's token, a viewer token,
the admin token, the right token). 401 missing/bad, 404 another team's object, 403 forbidden."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import ADMIN, EMPTY_IR, Failures, Kfpd  # noqa: E402

F = Failures()
check = F.check
d = Kfpd("daemon_auth").start()
try:
    a = d.team("teama")
    av = d.team("teama", "viewer")
    b = d.team("teamb")
    st, _ = d.req("POST", "/api/v1/pipelines", {"name": "pa", "ir": EMPTY_IR}, a)
    assert st == 201
    st, _ = d.req("POST", "/api/v1/pipelines", {"name": "pb", "ir": EMPTY_IR}, b)
    assert st == 201
    st, run = d.req("POST", "/api/v1/runs", {"pipeline": "pa"}, a)
    assert st == 201, run
    rid = run["id"]
    st, s = d.req("POST", "/api/v1/schedules", {"pipeline": "pa", "cron": "0 0 1 1 *"}, a)
    assert st == 201, s
    sid = s["id"]

    # (method, path, body, kind): kind "obj" = names one of team A's objects (other team: 404),
    # "coll" = a collection (other team: 200 and sees only its own), "create" = POST to a
    # collection (other team: its own namespace; 404 because "pa" is not theirs).
    E = [
        ("GET", "/api/v1/pipelines", None, "coll"),
        ("POST", "/api/v1/pipelines", {"name": "pa2", "ir": EMPTY_IR}, "upload"),
        ("GET", "/api/v1/pipelines/pa", None, "obj"),
        ("GET", "/api/v1/pipelines/pa/ir", None, "obj"),
        ("GET", "/api/v1/pipelines/pa/versions/1", None, "obj"),
        ("GET", "/api/v1/pipelines/pa/versions/1/ir", None, "obj"),
        ("POST", "/api/v1/runs", {"pipeline": "pa"}, "create"),
        ("GET", "/api/v1/runs", None, "coll"),
        ("GET", "/api/v1/runs/" + rid, None, "obj"),
        ("GET", "/api/v1/runs/%s/steps/x/logs" % rid, None, "obj"),
        ("GET", "/api/v1/runs/%s/artifacts" % rid, None, "obj"),
        ("POST", "/api/v1/runs/%s/cancel" % rid, None, "obj"),
        ("POST", "/api/v1/runs/%s/retry" % rid, None, "obj"),
        ("GET", "/api/v1/artifacts/" + "0" * 64, None, "obj"),
        ("GET", "/api/v1/artifacts/%s/content" % ("0" * 64), None, "obj"),
        ("GET", "/api/v1/artifacts/%s/lineage" % ("0" * 64), None, "obj"),
        ("POST", "/api/v1/schedules", {"pipeline": "pa", "cron": "@daily"}, "create"),
        ("GET", "/api/v1/schedules", None, "coll"),
        ("GET", "/api/v1/secrets", None, "coll"),
        ("PUT", "/api/v1/secrets/k1", {"value": "v"}, "own"),
        ("DELETE", "/api/v1/secrets/k1", None, "own"),
        ("GET", "/api/v1/schedules/" + sid, None, "obj"),
        ("PATCH", "/api/v1/schedules/" + sid, {"max_concurrent": 3}, "obj"),
        ("POST", "/api/v1/schedules/%s/pause" % sid, None, "obj"),
        ("POST", "/api/v1/schedules/%s/resume" % sid, None, "obj"),
        ("DELETE", "/api/v1/runs/" + rid, None, "obj"),
        ("DELETE", "/api/v1/schedules/" + sid, None, "obj"),
        ("DELETE", "/api/v1/pipelines/pa", None, "obj"),
    ]
    for method, path, body, kind in E:
        what = "%s %s" % (method, path)
        st, _ = d.req(method, path, body)
        check(st == 401, "%s without token: %s" % (what, st))
        st, _ = d.req(method, path, body, "kfp_" + "0" * 64)
        check(st == 401, "%s with a bad token: %s" % (what, st))
        st, _ = d.req(method, path, body, ADMIN)
        check(st == 403, "%s with the admin token: %s" % (what, st))
        write = method != "GET"
        st, _ = d.req(method, path, body, av)
        if write:
            check(st == 403, "%s with a viewer token: %s" % (what, st))
        else:
            check(st in (200, 404), "%s with a viewer token: %s" % (what, st))
        st, ans = d.req(method, path, body, b)
        if kind in ("obj", "create"):
            check(st == 404, "%s with the other team's token: %s %s" % (what, st, ans))
        elif kind == "coll":
            check(st == 200 and "pa" not in str(ans) and rid not in str(ans) and sid not in str(ans),
                  "%s with the other team's token shows nothing of team A: %s" % (what, ans))
        st, ans = d.req(method, path, body, a)
        if "artifacts/" in path:
            check(st == 404, "%s with the right token (no such artifact): %s" % (what, st))
        elif "/logs" in path:
            check(st in (200, 404), "%s with the right token: %s" % (what, st))
        elif path.endswith(("/cancel", "/retry")) or (method == "DELETE" and "/runs/" in path):
            check(st in (200, 202, 409), "%s with the right token: %s %s" % (what, st, ans))
        else:
            check(200 <= st < 300, "%s with the right token: %s %s" % (what, st, ans))

    # admin endpoints: team tokens get 403, no token 401
    ADM = [("POST", "/api/v1/namespaces", {"name": "zz"}),
           ("GET", "/api/v1/namespaces", None),
           ("POST", "/api/v1/namespaces/teama/tokens", {}),
           ("GET", "/api/v1/namespaces/teama/tokens", None),
           ("DELETE", "/api/v1/namespaces/teama/tokens/nope", None),
           ("DELETE", "/api/v1/namespaces/zz", None)]
    for method, path, body in ADM:
        what = "%s %s" % (method, path)
        check(d.req(method, path, body)[0] == 401, "%s without token" % what)
        check(d.req(method, path, body, "wrong")[0] == 401, "%s with a bad token" % what)
        check(d.req(method, path, body, a)[0] == 403, "%s with a member token" % what)
        check(d.req(method, path, body, av)[0] == 403, "%s with a viewer token" % what)
        st, _ = d.req(method, path, body, ADMIN)
        check(st in (200, 201, 404), "%s with the admin token: %s" % (what, st))
    # a malformed Authorization header is a 401, not a crash
    for h in ("Bearer", "Bearer ", "Basic abc", "bearer " + a, "Bearer " + "x" * 5000):
        st, _ = d.req("GET", "/api/v1/whoami", headers={"Authorization": h})
        check(st == (200 if h == "bearer " + a else 401), "Authorization %r: %s" % (h[:20], st))
    # unauthenticated endpoints
    for p in ("/healthz", "/readyz", "/metrics"):
        check(d.req("GET", p)[0] == 200, "%s needs no token" % p)
    # deleting a namespace that still has objects is refused; an empty one goes with its tokens
    check(d.req("DELETE", "/api/v1/namespaces/teamb", None, ADMIN)[0] == 409, "busy namespace")
    st, _ = d.req("POST", "/api/v1/namespaces", {"name": "gone"}, ADMIN)
    t = d.team("gone")
    check(d.req("DELETE", "/api/v1/namespaces/gone", None, ADMIN)[0] == 200, "delete namespace")
    check(d.req("GET", "/api/v1/whoami", None, t)[0] == 401, "its tokens are revoked")
finally:
    d.stop()
F.done()

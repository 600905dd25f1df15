"""kfpd audit fixes over real HTTP and the real CLI: uploads never read the daemon's disk, stable
IR locations, atomic submits, finally steps on retry, schedule checks, config routing, remote CLI
parity, log attempt checks, run order, API validation and usage errors."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import Failures, Kfpd  # noqa: E402

F = Failures()
check = F.check
SRC = os.environ.get("KFPC_SRC", ".")
KFPC = os.environ.get("KFPC", "build/kfpc")
HELLO = open(os.path.join(SRC, "examples", "hello.kfp")).read()

d = Kfpd("daemon_audit").start()
try:
    tok = d.team("audit")
    env = dict(os.environ, KFPC_TOKEN=tok, HOME=d.dir)
    env.pop("KFPC_CONFIG", None)
    env.pop("KFPC_SERVER", None)

    def kfpc(*args, server=True, extra_env=None, cwd=None):
        e = dict(env)
        e.update(extra_env or {})
        pre = ["--server", d.url] if server else []
        return subprocess.run([KFPC] + pre + list(args), capture_output=True, text=True, env=e,
                              timeout=120, cwd=cwd)

    def versions(name):
        st, b = d.req("GET", "/api/v1/pipelines/" + name, token=tok)
        return len(b["versions"]) if st == 200 else 0

    # --- 1. an upload's imports resolve only among its own files (and std/)
    secret = os.path.join(d.dir, "secretdir")
    os.makedirs(secret)
    with open(os.path.join(secret, "priv.kfp"), "w") as f:
        f.write('component leaked {\n  image "busybox:1.36"\n  run ["echo", "TOPSECRET"]\n}\n')
    rel = "../" * 20 + secret.lstrip("/") + "/priv"
    for imp in (rel, secret + "/priv", "std/../" + rel, "../x"):
        src = 'import "%s" as p\npipeline main() { step s = p.leaked() }\n' % imp
        st, b = d.req("POST", "/api/v1/pipelines", {"source": src, "filename": "x.kfp"}, tok)
        text = json.dumps(b)
        check(st == 422 and "TOPSECRET" not in text and d.data not in text
              and "E501" in text and imp in text,
              "escaping import %r refused: %s %s" % (imp, st, text[:400]))
    st, b = d.req("POST", "/api/v1/pipelines",
                  {"source": 'import "../../etc/passwd" as p\npipeline main() {}\n',
                   "filename": "x.kfp"}, tok)
    text = json.dumps(b)
    check(st == 422 and d.data not in text and "/etc/passwd" not in text.replace("../../etc/passwd", ""),
          "missing import names no server path: %s" % text[:400])
    # imports among the upload's own files and the stdlib still work
    lib = 'component hi {\n  image "busybox:1.36"\n  run ["echo", "hi"]\n}\n'
    main = ('import "lib/common" as c\nimport "std/notify" as n\n'
            'pipeline multi() {\n  step s = c.hi()\n}\n')
    st, b = d.req("POST", "/api/v1/pipelines",
                  {"source": main, "filename": "main.kfp", "files": {"lib/common.kfp": lib}}, tok)
    check(st == 201, "import among the files: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/pipelines",
                  {"source": main.replace("lib/common", "lib/../lib/common"), "filename": "main.kfp",
                   "files": {"lib/common.kfp": lib}}, tok)
    check(st in (200, 201), "a '..' that stays inside the upload: %s %s" % (st, b))
    st, b = d.req("POST", "/api/v1/pipelines",
                  {"source": main, "filename": "main.kfp", "files": {"lib/other.kfp": lib}}, tok)
    check(st == 422 and "lib/common" in json.dumps(b) and d.data not in json.dumps(b),
          "import of a file not uploaded: %s %s" % (st, b))

    # --- 2. locations name the file as uploaded; the same upload twice is "unchanged"
    st, b = d.req("POST", "/api/v1/pipelines", {"source": HELLO, "filename": "hello.kfp"}, tok)
    check(st == 201 and b["version"] == 1, "upload hello: %s %s" % (st, b))
    st, ir = d.req("GET", "/api/v1/pipelines/hello/ir", token=tok)
    check(st == 200 and ir["loc"]["file"] == "hello.kfp"
          and all(n["loc"]["file"] == "hello.kfp" for n in ir["nodes"])
          and d.data not in json.dumps(ir), "IR locs relative: %s" % ir.get("loc"))
    st, b = d.req("POST", "/api/v1/pipelines", {"source": HELLO, "filename": "hello.kfp"}, tok)
    check(st == 200 and b.get("unchanged") is True and b["version"] == 1,
          "same upload again is unchanged: %s %s" % (st, b))
    # a refused submit records no version
    hello = os.path.join(SRC, "examples", "hello.kfp")
    p = kfpc("submit", hello, "-p", "name=BAD!")
    check(p.returncode == 1 and "name" in p.stderr, "bad submit refused: %s %s" % (p.returncode, p.stderr))
    p = kfpc("submit", hello, "-p", "nosuch=1")
    check(p.returncode == 1 and "nosuch" in p.stderr, "unknown param refused: %s" % p.stderr)
    check(versions("hello") == 1, "a refused submit records no version: %d" % versions("hello"))
    st, b = d.req("POST", "/api/v1/pipelines",
                  {"source": HELLO.replace("world", "earth"), "filename": "hello.kfp",
                   "params": {"name": "BAD!"}}, tok)
    check(st == 400 and versions("hello") == 1, "upload with bad params: %s %s" % (st, b))

    # --- 3. a retried run runs its finally steps again, with the run's status at that moment
    fin_src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipelines",
                                "fin.kfp")).read()
    work = os.path.join(d.dir, "work")
    os.makedirs(work)
    st, b = d.req("POST", "/api/v1/pipelines", {"source": fin_src, "filename": "fin.kfp"}, tok)
    check(st == 201, "upload fin: %s %s" % (st, b))
    st, run = d.req("POST", "/api/v1/runs", {"pipeline": "fin", "params": {"dir": work}}, tok)
    rid = run["id"]
    r = d.wait_run(tok, rid)
    check(r["state"] == "failed", "fin run fails first: %s" % r["state"])
    check("at fin.kfp:2:3" in (r["reason"] or "") and d.data not in r["reason"],
          "failure location names the file as uploaded: %s" % r["reason"])
    st, log = d.req("GET", "/api/v1/runs/%s/steps/fin/logs" % rid, token=tok)
    check(st == 200 and "run is failed" in log, "finally sees failed: %s %r" % (st, log))
    open(os.path.join(work, "ok"), "w").close()
    st, b = d.req("POST", "/api/v1/runs/%s/retry" % rid, token=tok)
    check(st in (200, 202), "retry: %s %s" % (st, b))
    r = d.wait_run(tok, rid)
    check(r["state"] == "succeeded", "retried run succeeds: %s" % r)
    st, r = d.req("GET", "/api/v1/runs/%s?steps=1" % rid, token=tok)
    fin = [s for s in r["steps"] if s["id"] == "fin"]
    check(fin and len(fin[0].get("attempts", [])) == 2 and fin[0]["state"] == "succeeded",
          "finally ran again: %s" % fin)
    st, log = d.req("GET", "/api/v1/runs/%s/steps/fin/logs" % rid, token=tok)
    check(st == 200 and "run is succeeded" in log, "finally sees succeeded: %r" % log)

    # --- 4. schedules are checked like POST /runs at creation
    for body, what in (({"params": {"nosuch": 1}}, "nosuch"), ({"params": {"name": "BAD!"}}, "name"),
                       ({"version": 99}, "version"), ({"tz": "Mars/X"}, "Mars/X"),
                       ({"cron": "61 * * * *"}, "cron")):
        req = {"pipeline": "hello", "cron": "0 3 * * *"}
        req.update(body)
        st, b = d.req("POST", "/api/v1/schedules", req, tok)
        check(st == 400 and what in b["error"]["message"], "schedule %s: %s %s" % (body, st, b))
    st, b = d.req("GET", "/api/v1/schedules", token=tok)
    check(st == 200 and b["schedules"] == [], "no schedule recorded: %s" % b)
    st, b = d.req("POST", "/api/v1/schedules",
                  {"pipeline": "hello", "cron": "0 3 * * *", "version": 1,
                   "params": {"name": "ok"}}, tok)
    check(st == 201, "good schedule: %s %s" % (st, b))
    if st == 201:
        d.req("DELETE", "/api/v1/schedules/" + b["id"], token=tok)

    # --- 5. the config file's server (and $KFPC_SERVER) route every shared command
    cfg = os.path.join(d.dir, "config")
    with open(cfg, "w") as f:
        f.write("server = %s\ntoken = %s\n" % (d.url, tok))
    cenv = {"KFPC_CONFIG": cfg, "KFPC_TOKEN": ""}
    for args, want in ((["show", rid], rid), (["runs"], rid), (["logs", rid, "fin"], "run is")):
        p = kfpc(*args, server=False, extra_env=cenv, cwd=d.dir)
        check(p.returncode == 0 and want in p.stdout and "store" not in p.stderr,
              "config server routes %s: %s %s %s" % (args[0], p.returncode, p.stdout[:200], p.stderr))
    p = kfpc("show", rid, server=False, extra_env={"KFPC_SERVER": d.url}, cwd=d.dir)
    check(p.returncode == 0 and rid in p.stdout, "$KFPC_SERVER routes show: %s" % p.stderr)
    p = kfpc("runs", "--state", os.path.join(d.dir, "nostate"), server=False, extra_env=cenv,
             cwd=d.dir)
    check(rid not in p.stdout, "--state stays local: %s %s" % (p.stdout, p.stderr))

    # --- 6. remote parity: show with timings and outputs, prefixes, lineage tree, -o -, cached logs
    st, b = d.req("POST", "/api/v1/runs", {"pipeline": "hello", "params": {"name": "kfpd"}}, tok)
    h1 = b["id"]
    d.wait_run(tok, h1)
    st, b = d.req("POST", "/api/v1/runs", {"pipeline": "hello", "params": {"name": "kfpd"}}, tok)
    h2 = b["id"]
    d.wait_run(tok, h2)
    st, r = d.req("GET", "/api/v1/runs/" + h1, token=tok)
    check(r.get("outputs", {}).get("greeting") == "Hello, kfpd!" and r.get("duration", -1) >= 0,
          "run JSON has outputs and duration: %s" % r)
    p = kfpc("show", h1)
    check(p.returncode == 0 and "DURATION" in p.stdout and "out greeting = \"Hello, kfpd!\"" in p.stdout
          and "\noutputs\n" in p.stdout and "duration  " in p.stdout and "EXIT" in p.stdout,
          "remote show: %s %s" % (p.stdout, p.stderr))
    p = kfpc("show", h2[:-3])
    check(p.returncode == 0 and h2 in p.stdout, "show by prefix: %s %s" % (p.stdout, p.stderr))
    p = kfpc("show", "r2")
    check(p.returncode == 1 and "ambiguous" in p.stderr, "ambiguous prefix: %s" % p.stderr)
    p = kfpc("logs", h2[:-2], "greet")
    check(p.returncode == 0 and "Hello, kfpd!" in p.stdout and "cached" in p.stderr and h1 in p.stderr,
          "logs of a cached step: %r %r" % (p.stdout, p.stderr))
    art = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipelines",
                            "art.kfp")).read()
    st, b = d.req("POST", "/api/v1/pipelines", {"source": art, "filename": "art.kfp"}, tok)
    st, b = d.req("POST", "/api/v1/runs", {"pipeline": "art"}, tok)
    ar = b["id"]
    check(d.wait_run(tok, ar)["state"] == "succeeded", "art run")
    p = kfpc("artifact", "get", "%s/make/data" % ar[:-1], "-o", "-", cwd=d.dir)
    check(p.returncode == 0 and p.stdout == "payload\n" and not os.path.exists(os.path.join(d.dir, "-")),
          "artifact get -o -: %r %s" % (p.stdout, p.stderr))
    p = kfpc("lineage", "%s/make/data" % ar)
    check(p.returncode == 0 and p.stdout.startswith("artifact ") and
          ("produced by %s/make output data (succeeded" % ar) in p.stdout and
          ("used by\n   %s/use input d" % ar) in p.stdout, "lineage RUN/STEP/OUTPUT: %s %s"
          % (p.stdout, p.stderr))
    p = kfpc("lineage", "%s/make/data" % ar, "--json")
    check(p.returncode == 0 and json.loads(p.stdout)["produced_by"][0]["run"] == ar, "lineage --json")

    # --- 7. log attempts are checked
    st, b = d.req("GET", "/api/v1/runs/%s/steps/fin/logs?attempt=9" % rid, token=tok)
    check(st == 404 and "attempt 9" in b["error"]["message"], "no attempt 9: %s %s" % (st, b))
    st, b = d.req("GET", "/api/v1/runs/%s/steps/fin/logs?attempt=2" % rid, token=tok)
    check(st == 200 and "run is succeeded" in b, "attempt 2: %s %r" % (st, b))
    st, b = d.req("GET", "/api/v1/runs/%s/steps/fin/logs?attempt=1" % rid, token=tok)
    check(st == 200 and "run is failed" in b, "attempt 1: %s %r" % (st, b))
    for q in ("abc", "0", "-1", ""):
        st, b = d.req("GET", "/api/v1/runs/%s/steps/fin/logs?attempt=%s" % (rid, q), token=tok)
        check(st == 400 and "attempt" in b["error"]["message"], "attempt=%s: %s %s" % (q, st, b))
    st, b = d.req("GET", "/api/v1/runs/%s/steps/nosuch/logs?follow=1" % rid, token=tok)
    check(st == 404, "follow an unknown step of a finished run: %s %s" % (st, b))

    # --- 8. GET /runs is newest first by creation, also within one second, stable with a cursor
    made = []
    for i in range(6):
        st, b = d.req("POST", "/api/v1/runs", {"pipeline": "hello", "params": {"name": "n%d" % i}}, tok)
        made.append(b["id"])
    seen, cursor = [], None
    while True:
        st, b = d.req("GET", "/api/v1/runs?pipeline=hello&limit=4" +
                      ("&cursor=" + cursor if cursor else ""), token=tok)
        seen += [x["id"] for x in b["runs"]]
        cursor = b["next_cursor"]
        if not cursor:
            break
    check(seen[:6] == made[::-1] and len(seen) == len(set(seen)),
          "newest first by creation: %s vs %s" % (seen, made))
    for m in made:
        d.wait_run(tok, m)

    # --- 9. the worker's run duration is not since the epoch
    wl = open(os.path.join(d.data, "runs", h1, "worker.log")).read()
    import re
    secs = [float(x) for x in re.findall(r"succeeded \(([0-9.]+)s\)", wl)]
    check(secs and all(x < 3600 for x in secs), "worker.log duration: %r" % wl[-200:])
    st, r = d.req("GET", "/api/v1/runs/%s?steps=1" % rid, token=tok)
    w = [s for s in r["steps"] if s["id"] == "work"][0]
    a2 = w["attempts"][-1]
    check(w["started"] >= w["attempts"][0]["finished"] and w["started"] <= a2["started"] + 0.001,
          "a retried step's duration starts at its new attempt: %s" % w)

    # --- 10. API validation
    for body, want in (({"pipeline": "hello", "version": "x"}, "version"),
                       ({"pipeline": "hello", "version": 0}, "version"),
                       ({"pipeline": 5}, "must be a string"), ({}, "required")):
        st, b = d.req("POST", "/api/v1/runs", body, tok)
        check(st == 400 and want in b["error"]["message"], "run %s: %s %s" % (body, st, b))
    for q, want in (("state=bogus", "state"), ("cursor=garbage", "cursor")):
        st, b = d.req("GET", "/api/v1/runs?" + q, token=tok)
        check(st == 400 and want in b["error"]["message"], "%s: %s %s" % (q, st, b))
    slow = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipelines",
                             "slow.kfp")).read()
    st, b = d.req("POST", "/api/v1/pipelines", {"source": slow, "filename": "slow.kfp"}, tok)
    st, b = d.req("POST", "/api/v1/runs", {"pipeline": b["name"]}, tok)
    sr = b["id"]
    deadline = time.time() + 30
    while time.time() < deadline:
        st, r = d.req("GET", "/api/v1/runs/%s?steps=1" % sr, token=tok)
        if any(s["state"] == "running" for s in r["steps"]):
            break
        time.sleep(0.1)
    st, b = d.req("POST", "/api/v1/runs/%s/cancel" % sr, token=tok)
    r = d.wait_run(tok, sr)
    check(r["state"] == "cancelled" and "through the API" in (r["reason"] or "")
          and "audit" in r["reason"] and "SIGINT" not in r["reason"],
          "cancel reason: %s" % r.get("reason"))
    p = kfpc("show", sr)
    check("through the API" in p.stdout, "show says who cancelled: %s" % p.stdout)

    # --- 11. CLI usage
    for args, want in ((["help", "submit"], "submit FILE"), (["help", "schedule"], "schedule create"),
                       (["submit", "--help"], "submit FILE")):
        p = kfpc(*args, server=False, extra_env={"KFPC_TOKEN": ""})
        check(p.returncode == 0 and want in p.stdout and "usage" in p.stdout,
              "%s: %s %s %s" % (args, p.returncode, p.stdout, p.stderr))
    p = kfpc("schedule", "create", "hello", extra_env={"KFPC_TOKEN": ""})
    check(p.returncode == 2 and "--cron" in p.stderr and "no token" not in p.stderr, "schedule create without --cron: %s %s"
          % (p.returncode, p.stderr))
    p = subprocess.run([KFPC, "--server"], capture_output=True, text=True, env=env, timeout=30)
    check(p.returncode == 2 and "--server needs a URL" in p.stderr, "--server without URL: %s"
          % p.stderr)
    p = kfpc("schedule", "create", "hello", "--cron", "0 3 * * *", "--tz", "Mars/X")
    check(p.returncode == 1 and "Mars/X" in p.stderr and "tz" in p.stderr, "--tz Mars/X: %s" % p.stderr)
finally:
    d.stop()
F.done()

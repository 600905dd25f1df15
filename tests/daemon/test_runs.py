"""Real runs through kfpd: steps and their logs (whole and followed), retry from failure (only
failed and skipped steps run again), cancel, artifacts and lineage, namespace isolation of
artifacts, secrets (reach the step, never an answer or a log line)."""
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import Failures, Kfpd  # noqa: E402

F = Failures()
check = F.check
HERE = os.path.dirname(os.path.abspath(__file__))


def upload(d, tok, name):
    with open(os.path.join(HERE, "pipelines", name + ".kfp")) as f:
        st, b = d.req("POST", "/api/v1/pipelines", {"source": f.read(), "filename": name + ".kfp"}, tok)
    assert st == 201, (st, b)


def count(path):
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def steps(d, tok, rid):
    st, r = d.req("GET", "/api/v1/runs/%s?steps=1" % rid, token=tok)
    assert st == 200, r
    return {s["id"]: s for s in r["steps"]}


d = Kfpd("daemon_runs").start()
try:
    tok = d.team("runs")
    other = d.team("others")
    work = os.path.join(d.dir, "work")
    os.makedirs(work)
    for p in ("steps", "art", "slow"):
        upload(d, tok, p)

    # --- a run that fails at b: a succeeded, b failed, c skipped
    st, r = d.req("POST", "/api/v1/runs", {"pipeline": "steps", "params": {"dir": work}}, tok)
    check(st == 201, "submit: %s %s" % (st, r))
    rid = r["id"]
    r = d.wait_run(tok, rid)
    check(r["state"] == "failed" and r["progress"]["failed"] == 1, "run failed at b: %s" % r)
    s = steps(d, tok, rid)
    check(s["a"]["state"] == "succeeded" and s["b"]["state"] == "failed"
          and s["c"]["state"] == "skipped", "step states: %s" % {k: v["state"] for k, v in s.items()})
    st, log = d.req("GET", "/api/v1/runs/%s/steps/a/logs" % rid, token=tok)
    check(st == 200 and "hello hi" in log, "stdout of a: %s %r" % (st, log))
    st, log = d.req("GET", "/api/v1/runs/%s/steps/a/logs?stream=stderr" % rid, token=tok)
    check(st == 200 and "oops" in log, "stderr of a: %s %r" % (st, log))
    st, b = d.req("GET", "/api/v1/runs/%s/steps/zz/logs" % rid, token=tok)
    check(st == 404, "logs of an unknown step: %s" % st)
    check(count(work + "/a.count") == 1 and count(work + "/b.count") == 1
          and count(work + "/c.count") == 0, "each step ran once")

    # --- retry from failure: b and c run, a does not
    open(work + "/ok", "w").close()
    st, r = d.req("POST", "/api/v1/runs/%s/retry" % rid, token=tok)
    check(st == 202 and r["state"] == "queued", "retry: %s %s" % (st, r))
    r = d.wait_run(tok, rid)
    check(r["state"] == "succeeded", "retried run succeeded: %s" % r)
    check(count(work + "/a.count") == 1, "a (succeeded) did not run again: %d" % count(work + "/a.count"))
    check(count(work + "/b.count") == 2 and count(work + "/c.count") == 1,
          "b ran again, c ran: %d %d" % (count(work + "/b.count"), count(work + "/c.count")))
    s = steps(d, tok, rid)
    check(len(s["b"]["attempts"]) >= 2, "b's attempts are kept: %s" % s["b"]["attempts"])

    # --- follow b's log while it runs: every line, and the stream ends with the step
    st, r = d.req("POST", "/api/v1/runs", {"pipeline": "steps", "params": {"dir": work}}, tok)
    rid2 = r["id"]
    got = {}

    def follow():
        req = urllib.request.Request(d.url + "/api/v1/runs/%s/steps/b/logs?follow=1" % rid2,
                                     headers={"Authorization": "Bearer " + tok})
        t0 = time.time()
        with urllib.request.urlopen(req, timeout=60) as resp:
            chunks = []
            while True:
                c = resp.read1(65536)
                if not c:
                    break
                chunks.append((time.time() - t0, c))
            got["chunks"] = chunks
    th = threading.Thread(target=follow)
    th.start()
    th.join(90)
    text = b"".join(c for _, c in got.get("chunks", [])).decode()
    check(all("line %d" % i in text for i in range(1, 6)), "followed log has every line: %r" % text)
    check(len(got.get("chunks", [])) >= 2, "the log came in several chunks while b ran: %d"
          % len(got.get("chunks", [])))
    r = d.wait_run(tok, rid2)
    check(r["state"] == "succeeded", "second run: %s" % r["state"])
    st, log = d.req("GET", "/api/v1/runs/%s/steps/b/logs?follow=1" % rid2, token=tok)
    check(st == 200 and "line 5" in log, "following a finished step returns its whole log")

    # the same as server-sent events: one event per line, then "event: end"
    req = urllib.request.Request(d.url + "/api/v1/runs/%s/steps/b/logs?follow=1" % rid2,
                                 headers={"Authorization": "Bearer " + tok,
                                          "Accept": "text/event-stream"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        ctype = resp.headers.get("Content-Type")
        sse = resp.read().decode()
    check(ctype == "text/event-stream" and "data: line 1\n\n" in sse and "data: line 5\n\n" in sse
          and sse.endswith("event: end\ndata: \n\n"), "SSE: %s %r" % (ctype, sse))

    # --- cancel a running run
    st, r = d.req("POST", "/api/v1/runs", {"pipeline": "slow", "params": {"dir": work, "secs": 60}}, tok)
    rid3 = r["id"]
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(work + "/wait.started"):
        time.sleep(0.1)
    st, r = d.req("POST", "/api/v1/runs/%s/cancel" % rid3, token=tok)
    check(st == 202 and r["cancel_requested"], "cancel: %s %s" % (st, r))
    r = d.wait_run(tok, rid3, timeout=30)
    check(r["state"] == "cancelled", "cancelled: %s" % r)
    s = steps(d, tok, rid3)
    check(s["wait"]["state"] == "cancelled" and s["last"]["state"] in ("cancelled", "skipped"),
          "cancelled steps: %s" % {k: v["state"] for k, v in s.items()})
    check(count(work + "/wait.count") == 0, "the sleeping step was stopped")
    st, r = d.req("POST", "/api/v1/runs/%s/cancel" % rid3, token=tok)
    check(st == 409, "cancel twice: %s" % st)

    # --- artifacts and lineage
    st, r = d.req("POST", "/api/v1/runs", {"pipeline": "art"}, tok)
    rid4 = r["id"]
    r = d.wait_run(tok, rid4)
    check(r["state"] == "succeeded", "art run: %s" % r)
    st, b = d.req("GET", "/api/v1/runs/%s/artifacts" % rid4, token=tok)
    arts = [a for a in b.get("artifacts", []) if a["step"] == "make" and a["output"] == "data"]
    check(st == 200 and len(arts) == 1 and len(arts[0]["digest"]) == 64, "run artifacts: %s" % b)
    if arts:
        dg = arts[0]["digest"]
        st, a = d.req("GET", "/api/v1/artifacts/" + dg, token=tok)
        check(st == 200 and a["kind"] == "file" and a["type"] == "Dataset" and a["size"] == 8
              and a["produced_by"][0]["step"] == "make"
              and any(c["step"] == "use" for c in a["consumed_by"]), "artifact: %s" % a)
        st, a = d.req("GET", "/api/v1/artifacts/" + dg[:12], token=tok)
        check(st == 200 and a["digest"] == dg, "artifact by prefix: %s" % st)
        st, c = d.req("GET", "/api/v1/artifacts/%s/content" % dg, token=tok)
        check(st == 200 and c == "payload\n", "content: %s %r" % (st, c))
        st, l = d.req("GET", "/api/v1/artifacts/%s/lineage" % dg, token=tok)
        check(st == 200 and l["produced_by"][0]["run"] == rid4, "lineage: %s" % l)
        trees = [a for a in b.get("artifacts", []) if a["step"] == "tree"]
        check(len(trees) == 1, "directory artifact listed: %s" % b)
        if trees:
            import io
            import tarfile
            req = urllib.request.Request(d.url + "/api/v1/artifacts/%s/content" % trees[0]["digest"],
                                         headers={"Authorization": "Bearer " + tok})
            with urllib.request.urlopen(req, timeout=60) as resp:
                ctype = resp.headers.get("Content-Type")
                data = resp.read()
            tf = tarfile.open(fileobj=io.BytesIO(data))
            files = {m.name[2:] if m.name.startswith("./") else m.name: tf.extractfile(m).read()
                     for m in tf.getmembers() if m.isfile()}
            check(ctype == "application/x-tar" and files == {"a.txt": b"one\n", "sub/b.txt": b"two\n"},
                  "directory download as tar: %s %s" % (ctype, files))
        for p in ("", "/content", "/lineage"):
            st, _ = d.req("GET", "/api/v1/artifacts/%s%s" % (dg, p), token=other)
            check(st == 404, "another team cannot see the artifact%s: %s" % (p, st))
    st, _ = d.req("GET", "/api/v1/runs/%s/steps/a/logs" % rid, token=other)
    check(st == 404, "another team cannot read the logs: %s" % st)

    # --- secrets: the value reaches the step of its own namespace only, and no answer or log
    SECRET = "s3cr3t-" + "value-42"  # pipelines/secret.kfp knows only its SHA-256
    st, b = d.req("PUT", "/api/v1/secrets/api-token", {"value": SECRET}, tok)
    check(st == 200 and SECRET not in str(b), "put secret: %s %s" % (st, b))
    st, b = d.req("GET", "/api/v1/secrets", token=tok)
    check(st == 200 and [s["name"] for s in b["secrets"]] == ["api-token"] and SECRET not in str(b),
          "list secrets: %s" % b)
    st, b = d.req("GET", "/api/v1/secrets", token=other)
    check(st == 200 and b["secrets"] == [], "another team sees no secret: %s" % b)
    upload(d, tok, "secret")
    upload(d, other, "secret")
    st, r = d.req("POST", "/api/v1/runs", {"pipeline": "secret"}, tok)
    r = d.wait_run(tok, r["id"])
    check(r["state"] == "succeeded", "step saw its secret: %s" % r)
    st, log = d.req("GET", "/api/v1/runs/%s/steps/use/logs" % r["id"], token=tok)
    check("token-ok" in log, "secret step log: %r" % log)
    st, ro = d.req("POST", "/api/v1/runs", {"pipeline": "secret"}, other)
    ro = d.wait_run(other, ro["id"])
    check(ro["state"] == "failed", "another team's run does not get the secret: %s" % ro["state"])
    for path in ("/api/v1/runs/%s?steps=1" % r["id"], "/api/v1/runs", "/api/v1/pipelines/secret/ir"):
        st, b = d.req("GET", path, token=tok)
        check(SECRET not in str(b), "no secret value in %s" % path)
    check(SECRET not in d.log(), "no secret value in the daemon log")
    st, _ = d.req("DELETE", "/api/v1/secrets/api-token", token=tok)
    check(st == 200, "delete secret")
    st, _ = d.req("DELETE", "/api/v1/secrets/api-token", token=tok)
    check(st == 404, "delete secret twice")

    # --- metrics saw the steps
    with urllib.request.urlopen(d.url + "/metrics") as resp:
        m = resp.read().decode()
    cnt = [l for l in m.splitlines() if l.startswith("kfpd_step_duration_seconds_count")]
    check(cnt and int(cnt[0].split()[1]) >= 4, "step duration histogram: %s" % cnt)
finally:
    d.stop()
F.done()

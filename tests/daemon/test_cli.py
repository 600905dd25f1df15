"""The kfpd client: `kfpc --server URL ...` against a real kfpd (submit, runs, show, logs -f,
cancel, retry, delete, pipelines, schedule create|list|pause|resume|delete, artifact get,
lineage, whoami), the token from $KFPC_TOKEN or the config file, and its exit codes."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import Failures, Kfpd  # noqa: E402

F = Failures()
check = F.check
HERE = os.path.dirname(os.path.abspath(__file__))
KFPC = os.environ.get("KFPC", "build/kfpc")

d = Kfpd("daemon_cli").start()
try:
    tok = d.team("cli")
    env = dict(os.environ, KFPC_TOKEN=tok)
    env.pop("KFPC_CONFIG", None)

    def kfpc(*args, token=True, **kw):
        e = dict(env) if token else {k: v for k, v in env.items() if k != "KFPC_TOKEN"}
        e.update(kw.get("extra_env", {}))
        return subprocess.run([KFPC, "--server", d.url] + list(args), capture_output=True,
                              text=True, env=e, timeout=120)

    work = os.path.join(d.dir, "work")
    os.makedirs(work)
    steps = os.path.join(HERE, "pipelines", "steps.kfp")

    p = kfpc("whoami")
    check(p.returncode == 0 and json.loads(p.stdout)["namespace"] == "cli", "whoami: %s %s" % (p.stdout, p.stderr))
    p = kfpc("whoami", token=False, extra_env={"HOME": d.dir})
    check(p.returncode == 2 and "token" in p.stderr, "no token: %s %s" % (p.returncode, p.stderr))
    p = kfpc("whoami", token=False, extra_env={"KFPC_TOKEN": "kfp_bad"})
    check(p.returncode == 2 and "401" in p.stderr, "bad token: %s %s" % (p.returncode, p.stderr))
    # token from the config file
    cfg = os.path.join(d.dir, "config")
    with open(cfg, "w") as f:
        f.write("# kfpc client\nserver = %s\ntoken = %s\n" % (d.url, tok))
    p = kfpc("whoami", token=False, extra_env={"KFPC_CONFIG": cfg})
    check(p.returncode == 0 and "cli" in p.stdout, "token from config: %s %s" % (p.stdout, p.stderr))

    # submit: a run id on stdout; a broken file: diagnostics and exit 1
    p = kfpc("submit", steps, "-p", "dir=" + work)
    rid = p.stdout.strip()
    check(p.returncode == 0 and rid.startswith("r"), "submit: %s %s" % (p.stdout, p.stderr))
    bad = os.path.join(d.dir, "bad.kfp")
    with open(bad, "w") as f:
        f.write("pipeline p() {\n  step s { image 3 }\n}\n")
    p = kfpc("submit", bad)
    check(p.returncode == 1 and "bad.kfp:" in p.stderr and "error" in p.stderr,
          "submit with errors: %s %r" % (p.returncode, p.stderr))
    p = kfpc("run", os.path.join(HERE, "pipelines", "multi", "main.kfp"))
    check(p.returncode == 0 and p.stdout.strip().startswith("r"), "run with --server submits: %s %s"
          % (p.stdout, p.stderr))
    p = kfpc("submit", steps, "-p", "nope=1")
    check(p.returncode == 1 and "unknown parameter" in p.stderr, "bad param: %r" % p.stderr)
    p = kfpc("submit", "/nonexistent.kfp")
    check(p.returncode == 2, "missing file: %s" % p.returncode)

    # submit sends the .kfp files beside the file, for its relative imports
    p = kfpc("submit", os.path.join(HERE, "pipelines", "multi", "main.kfp"))
    rm = p.stdout.strip()
    check(p.returncode == 0 and rm.startswith("r"), "submit with an import: %s %s" % (p.stdout, p.stderr))
    if p.returncode == 0:
        r = d.wait_run(tok, rm)
        p = kfpc("logs", rm, "greet")
        check(r["state"] == "succeeded" and "hello kfpd" in p.stdout, "imported component ran: %s %r"
              % (r["state"], p.stdout))

    # logs -f follows b to its end
    p = kfpc("logs", rid, "b", "-f")
    check(p.returncode == 0 and all("line %d" % i in p.stdout for i in range(1, 6)),
          "logs -f: %s %r %r" % (p.returncode, p.stdout, p.stderr))
    d.wait_run(tok, rid)
    p = kfpc("show", rid)
    check(p.returncode == 1 and "failed" in p.stdout and "b " in p.stdout and "skipped" in p.stdout,
          "show a failed run: %s %s" % (p.returncode, p.stdout))
    p = kfpc("logs", rid, "a")
    check(p.returncode == 0 and "hello hi" in p.stdout, "logs: %r" % p.stdout)
    p = kfpc("logs", rid, "a", "--stderr")
    check(p.returncode == 0 and "oops" in p.stdout, "logs --stderr: %r" % p.stdout)
    p = kfpc("logs", rid, "nostep")
    check(p.returncode == 1 and "404" in p.stderr, "logs of an unknown step: %s" % p.stderr)

    # retry
    open(os.path.join(work, "ok"), "w").close()
    p = kfpc("retry", rid)
    check(p.returncode == 0 and "queued" in p.stdout, "retry: %s %s" % (p.stdout, p.stderr))
    d.wait_run(tok, rid)
    p = kfpc("show", rid)
    check(p.returncode == 0 and "succeeded" in p.stdout, "show after retry: %s" % p.stdout)
    p = kfpc("show", rid, "--json")
    check(p.returncode == 0 and json.loads(p.stdout)["state"] == "succeeded", "show --json")

    # runs
    p = kfpc("runs")
    check(p.returncode == 0 and rid in p.stdout and "STATE" in p.stdout, "runs: %s" % p.stdout)
    p = kfpc("runs", "--state", "failed")
    check(p.returncode == 0 and rid not in p.stdout, "runs --state: %s" % p.stdout)
    p = kfpc("pipelines")
    check(p.returncode == 0 and "steps" in p.stdout, "pipelines: %s" % p.stdout)

    # cancel a slow run
    slow = os.path.join(HERE, "pipelines", "slow.kfp")
    p = kfpc("submit", slow, "-p", "dir=" + work, "-p", "secs=60")
    rid2 = p.stdout.strip()
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(os.path.join(work, "wait.started")):
        time.sleep(0.1)
    p = kfpc("cancel", rid2)
    check(p.returncode == 0 and "cancel" in p.stdout, "cancel: %s %s" % (p.stdout, p.stderr))
    r = d.wait_run(tok, rid2, timeout=30)
    check(r["state"] == "cancelled", "cancelled: %s" % r["state"])
    p = kfpc("cancel", rid2)
    check(p.returncode == 1 and "409" in p.stderr, "cancel twice: %s" % p.stderr)
    p = kfpc("delete", rid2)
    check(p.returncode == 0, "delete: %s" % p.stderr)
    p = kfpc("show", rid2)
    check(p.returncode == 1 and "404" in p.stderr, "show deleted: %s" % p.stderr)

    # artifacts and lineage
    p = kfpc("submit", os.path.join(HERE, "pipelines", "art.kfp"))
    rid3 = p.stdout.strip()
    d.wait_run(tok, rid3)
    out = os.path.join(d.dir, "data.out")
    p = kfpc("artifact", "get", "%s/make/data" % rid3, "-o", out)
    check(p.returncode == 0 and open(out).read() == "payload\n", "artifact get: %s" % p.stderr)
    outdir = os.path.join(d.dir, "tree.out")
    p = kfpc("artifact", "get", "%s/tree/files" % rid3, "-o", outdir)
    check(p.returncode == 0 and os.path.isfile(os.path.join(outdir, "sub", "b.txt"))
          and open(os.path.join(outdir, "sub", "b.txt")).read() == "two\n",
          "directory artifact unpacked: %s" % p.stderr)
    st, b = d.req("GET", "/api/v1/runs/%s/artifacts" % rid3, token=tok)
    dg = [a for a in b["artifacts"] if a["step"] == "make"][0]["digest"]
    p = kfpc("lineage", dg[:16], "--json")
    check(p.returncode == 0 and json.loads(p.stdout)["produced_by"][0]["run"] == rid3,
          "lineage: %s %s" % (p.stdout, p.stderr))
    p = kfpc("artifact", "get", "0" * 64, "-o", out + "2")
    check(p.returncode == 1 and not os.path.exists(out + "2"), "missing artifact: %s" % p.stderr)

    # schedules
    p = kfpc("schedule", "create", "steps", "--cron", "0 3 * * *", "--tz", "Europe/Paris",
             "-p", "dir=" + work, "--paused")
    sid = p.stdout.strip()
    check(p.returncode == 0 and sid.startswith("s"), "schedule create: %s %s" % (p.stdout, p.stderr))
    p = kfpc("schedule", "list")
    check(p.returncode == 0 and sid in p.stdout and "paused" in p.stdout, "schedule list: %s" % p.stdout)
    p = kfpc("schedule", "resume", sid)
    check(p.returncode == 0 and "active" in p.stdout, "resume: %s" % p.stdout)
    p = kfpc("schedule", "pause", sid)
    check(p.returncode == 0 and "paused" in p.stdout, "pause: %s" % p.stdout)
    p = kfpc("schedule", "create", "steps", "--cron", "99 * * * *")
    check(p.returncode == 1 and "400" in p.stderr, "bad cron: %s" % p.stderr)
    p = kfpc("schedule", "delete", sid)
    check(p.returncode == 0, "schedule delete: %s" % p.stderr)
    p = kfpc("schedule", "delete", sid)
    check(p.returncode == 1 and "404" in p.stderr, "delete twice: %s" % p.stderr)
    p = kfpc("schedule", "frobnicate")
    check(p.returncode == 2, "bad subcommand: %s" % p.returncode)

    # an unreachable server is exit 2
    p = subprocess.run([KFPC, "--server", "http://127.0.0.1:9", "runs"], capture_output=True,
                       text=True, env=env)
    check(p.returncode == 2 and "127.0.0.1:9" in p.stderr, "unreachable: %s %s" % (p.returncode, p.stderr))
finally:
    d.stop()
F.done()

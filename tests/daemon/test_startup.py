"""kfpd's command line and start-up errors: usage, a data directory in use, a port in use, a bad
admin token, and readiness."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kfpd_harness import Failures, Kfpd, free_port  # noqa: E402

F = Failures()
check = F.check
KFPD = os.environ.get("KFPD", "build/kfpd")


def run(args, env=None, timeout=20):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([KFPD] + args, capture_output=True, text=True, env=e, timeout=timeout)


p = run(["--help"])
check(p.returncode == 0 and "--listen" in p.stdout and "--data-dir" in p.stdout, "--help: %s" % p.stdout)
p = run(["--version"])
check(p.returncode == 0 and p.stdout.startswith("kfpd "), "--version: %s" % p.stdout)
p = run([])
check(p.returncode == 2 and "usage" in p.stderr, "no arguments: %s %s" % (p.returncode, p.stderr))
p = run(["--listen", "127.0.0.1:1", "--data-dir", "/tmp/x", "--bogus", "1"])
check(p.returncode == 2 and "--bogus" in p.stderr, "unknown option: %s" % p.stderr)
p = run(["--listen", "127.0.0.1:1", "--data-dir", "/tmp/x", "--executor", "k8s"])
check(p.returncode == 2 and "--executor 'k8s'" in p.stderr, "unknown executor: %s %s"
      % (p.returncode, p.stderr))
p = run(["--listen", "127.0.0.1:1", "--data-dir", "/tmp/x"], env={"KFPD_ADMIN_TOKEN": "short"})
check(p.returncode == 2 and "16 characters" in p.stderr, "short admin token: %s" % p.stderr)

d = Kfpd("daemon_startup").start()
try:
    # the same data directory twice
    p = run(["--listen", "127.0.0.1:%d" % free_port(), "--data-dir", d.data])
    check(p.returncode == 1 and "another kfpd" in p.stderr, "data dir in use: %s %s" % (p.returncode, p.stderr))
    # the same port twice
    other = os.path.join(d.dir, "other")
    p = run(["--listen", "127.0.0.1:%d" % d.port, "--data-dir", other])
    check(p.returncode == 1 and "cannot listen" in p.stderr, "port in use: %s %s" % (p.returncode, p.stderr))
    p = run(["--listen", "nowhere", "--data-dir", other])
    check(p.returncode == 2 and "--listen 'nowhere'" in p.stderr, "bad --listen is a usage error: "
          "%s %s" % (p.returncode, p.stderr))
    # the admin token from a file
    tf = os.path.join(d.dir, "admin.token")
    with open(tf, "w") as f:
        f.write("file-admin-token-0123456789\n")
    d2 = Kfpd("daemon_startup2", extra=["--admin-token-file", tf], env={"KFPD_ADMIN_TOKEN": ""}).start()
    try:
        st, b = d2.req("GET", "/api/v1/whoami", token="file-admin-token-0123456789")
        check(st == 200 and b["role"] == "admin", "admin token from a file: %s %s" % (st, b))
        check("file-admin-token" not in d2.log(), "the admin token is not logged")
    finally:
        d2.stop()
    # no admin token at all: the admin API answers 401
    d3 = Kfpd("daemon_startup3", env={"KFPD_ADMIN_TOKEN": ""}).start()
    try:
        st, _ = d3.req("GET", "/api/v1/namespaces", token="anything-at-all-0123")
        check(st == 401, "no admin token configured: %s" % st)
    finally:
        d3.stop()
finally:
    d.stop()
F.done()

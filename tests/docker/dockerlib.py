"""Shared harness of the docker executor tests (tests/docker/test_*.py).

Each test gets a private container engine, started with scripts/dockerd.sh in its own
directory under $KFPC_BUILD/testtmp/<test>/ (Docker by default; Podman for test_podman), the
step images imported once into it by scripts/images.sh (tar files cached in
$KFPC_BUILD/testtmp/docker-images), and the engine stopped and purged at exit.

When the engine cannot start on this machine (no dockerd, no privileges, no kernel support) the
test prints `SKIPPED: <reason>` and exits 77; everything else that goes wrong is a failure.

check_no_leftovers() asserts, through the Engine API (never the docker CLI), that no container
and no volume labelled kfpc.managed is left; tests call it after every case.
"""
import atexit
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

SRC = os.environ.get("KFPC_SRC", os.getcwd())
BUILD = os.environ.get("KFPC_BUILD", os.path.join(SRC, "build"))
KFPC = os.environ.get("KFPC", os.path.join(BUILD, "kfpc"))
IMAGES_CACHE = os.path.join(BUILD, "testtmp", "docker-images")

RUN_RE = re.compile(r"^run (\S+)$", re.M)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Engine:
    """A private Docker (or Podman) engine for one test."""

    def __init__(self, name, kind="docker"):
        self.name = name
        self.kind = kind
        self.tmp = os.path.join(BUILD, "testtmp", name)
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        d = os.path.join(self.tmp, "engine")
        if len(d) > 80:  # unix socket paths are limited to 107 bytes
            d = "/tmp/kfpc-%s" % hashlib.sha256(d.encode()).hexdigest()[:12]
        self.dir = d
        self.host = None
        self.sock = None
        self.failures = 0

    def start(self):
        args = [os.path.join(SRC, "scripts", "dockerd.sh")]
        if self.kind == "podman":
            args.append("--podman")
        p = subprocess.run(args + ["start", self.dir], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            skip("cannot start %s here: %s" % (self.kind, (p.stderr or p.stdout).strip()[-600:]))
        m = re.search(r"export DOCKER_HOST=(\S+)", p.stdout)
        if not m:
            fail("scripts/dockerd.sh printed no DOCKER_HOST:\n%s" % p.stdout)
        self.host = m.group(1)
        self.sock = self.host[len("unix://"):]
        atexit.register(self.stop)
        return self

    def stop(self):
        args = [os.path.join(SRC, "scripts", "dockerd.sh")]
        if self.kind == "podman":
            args.append("--podman")
        subprocess.run(args + ["stop", "--purge", self.dir], capture_output=True, timeout=120)

    def restart(self):
        args = [os.path.join(SRC, "scripts", "dockerd.sh")]
        if self.kind == "podman":
            args.append("--podman")
        p = subprocess.run(args + ["restart", self.dir], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            fail("restarting the engine failed:\n%s" % p.stderr)

    def images(self, *names):
        env = dict(os.environ, DOCKER_HOST=self.host)
        p = subprocess.run([os.path.join(SRC, "scripts", "images.sh"), "--cache", IMAGES_CACHE]
                           + list(names), capture_output=True, text=True, env=env, timeout=900)
        if p.returncode != 0:
            fail("scripts/images.sh failed:\n%s%s" % (p.stdout, p.stderr))

    def api(self, method, path, body=None):
        c = UnixHTTPConnection(self.sock)
        try:
            c.request(method, "/v1.41" + path, body=body,
                      headers={"Content-Type": "application/json"} if body else {})
            r = c.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data.strip() else None
        finally:
            c.close()

    def probe(self):
        """Runs busybox `true` through the API (create, start, wait, remove): None when the
        engine can run a container, else why not."""
        st, r = self.api("POST", "/containers/create?name=kfpc-probe-%d" % os.getpid(),
                         json.dumps({"Image": "busybox:1.36", "Cmd": ["true"],
                                     "HostConfig": {"NetworkMode": "none"}}))
        if st != 201:
            return "creating a container: HTTP %d %s" % (st, r)
        cid = r["Id"]
        try:
            st, r = self.api("POST", "/containers/%s/start" % cid)
            if st not in (204, 304):
                return "starting a container: HTTP %d %s" % (st, r)
            end = time.time() + 120
            while time.time() < end:
                st, r = self.api("GET", "/containers/%s/json" % cid)
                if st != 200:
                    return "inspecting a container: HTTP %d %s" % (st, r)
                if not r["State"]["Running"]:
                    if r["State"]["ExitCode"] != 0:
                        return "busybox `true` exited %d: %s" % (r["State"]["ExitCode"],
                                                                 r["State"].get("Error"))
                    return None
                time.sleep(0.1)
            return "busybox `true` still runs after 120 s"
        finally:
            self.api("DELETE", "/containers/%s?force=1" % cid)

    def containers(self, label="kfpc.managed"):
        q = urllib.parse.quote(json.dumps({"label": [label]}))
        st, lst = self.api("GET", "/containers/json?all=1&filters=" + q)
        if st != 200:
            fail("listing containers failed: HTTP %d %s" % (st, lst))
        return lst

    def volumes(self, label="kfpc.managed"):
        q = urllib.parse.quote(json.dumps({"label": [label]}))
        st, r = self.api("GET", "/volumes?filters=" + q)
        if st != 200:
            fail("listing volumes failed: HTTP %d %s" % (st, r))
        return (r or {}).get("Volumes") or []

    def check_no_leftovers(self, case):
        left = self.containers()
        if left:
            desc = ", ".join("%s %s (%s)" % (c["Id"][:12], c.get("State"),
                                            c.get("Labels", {}).get("kfpc.step")) for c in left)
            problem(case, "containers left with label kfpc.managed: " + desc)
        vols = self.volumes()
        if vols:
            problem(case, "volumes left with label kfpc.managed: " +
                    ", ".join(v["Name"] for v in vols))

    def env(self, **extra):
        e = dict(os.environ)
        e["NO_COLOR"] = "1"
        e["DOCKER_HOST"] = self.host
        e.pop("KFPC_STDLIB_PATH", None)
        e.update(extra)
        return e


_problems = []


def problem(case, msg):
    _problems.append((case, msg))
    print("FAIL %s: %s" % (case, msg.replace("\n", "\n  ")), flush=True)


def skip(reason):
    print("SKIPPED: %s" % reason, flush=True)
    sys.exit(77)  # ctest SKIP_RETURN_CODE: reported as Skipped, never as Passed


def fail(msg):
    print("FAIL: %s" % msg, flush=True)
    sys.exit(1)


def finish():
    if _problems:
        print("%d problem(s)" % len(_problems))
        sys.exit(1)
    print("ok")
    sys.exit(0)


def kfpc(args, env, cwd=None, timeout=300):
    p = subprocess.run([KFPC] + args, cwd=cwd or SRC, env=env, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def run_id(stdout):
    m = RUN_RE.search(stdout)
    return m.group(1) if m else None


def outputs(stdout):
    """The pipeline outputs `kfpc run` prints after its "run RUN_ID" line."""
    lines = stdout.splitlines(True)
    if lines and RUN_RE.match(lines[0].rstrip("\n")):
        lines = lines[1:]
    return "".join(lines)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def wait_for(pred, what, timeout=120):
    """Polls PRED until it is true; a failure (not a timed assertion) after TIMEOUT s."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    fail("gave up waiting for " + what)


def preflight():
    if not os.access(KFPC, os.X_OK):
        fail("no kfpc binary at %s" % KFPC)

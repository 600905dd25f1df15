"""Helpers for the kfpd tests: start a real kfpd on a free 127.0.0.1 port, talk HTTP with urllib.

Not a test itself (no test_ prefix). Environment: KFPD (daemon binary), KFPC (CLI binary),
KFPC_BUILD (scratch under KFPC_BUILD/testtmp/NAME), KFPC_SRC.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ADMIN = "admin-token-for-tests-0123456789"


def scratch(name):
    d = os.path.join(os.environ.get("KFPC_BUILD", "/tmp"), "testtmp", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Kfpd:
    """A running kfpd. start() / kill9() / term() / restart keep the same data dir and port."""

    def __init__(self, name, extra=None, env=None):
        self.dir = scratch(name)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.extra = extra or []
        self.env = dict(os.environ)
        self.env["KFPD_ADMIN_TOKEN"] = ADMIN
        self.env.update(env or {})
        self.proc = None
        self.nlog = 0

    def start(self):
        kfpd = os.environ.get("KFPD", "build/kfpd")
        args = [kfpd, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data]
        if os.environ.get("KFPC"):
            args += ["--kfpc", os.environ["KFPC"]]
        self.nlog += 1
        self.logpath = os.path.join(self.dir, "kfpd-%d.log" % self.nlog)
        self.proc = subprocess.Popen(args + self.extra, stdout=subprocess.DEVNULL,
                                     stderr=open(self.logpath, "w"), env=self.env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kfpd exited %d: %s" % (self.proc.returncode, self.log()))
            try:
                st, _ = self.req("GET", "/readyz")
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("kfpd not ready: " + self.log())

    def log(self):
        with open(self.logpath) as f:
            return f.read()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def term(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def req(self, method, path, body=None, token=None, raw=None, headers=None):
        """Returns (status, parsed JSON or text)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        r = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            r.add_header("Authorization", "Bearer " + token)
        if data is not None:
            r.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            r.add_header(k, v)
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                return resp.status, decode(resp.read(), resp.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as e:
            return e.code, decode(e.read(), e.headers.get("Content-Type", ""))

    # conveniences
    def team(self, ns, role="member"):
        """Creates namespace NS (if needed) and a token of ROLE in it; returns the token."""
        st, _ = self.req("POST", "/api/v1/namespaces", {"name": ns}, ADMIN)
        assert st in (201, 409), st
        st, t = self.req("POST", "/api/v1/namespaces/%s/tokens" % ns, {"role": role, "name": "t"},
                         ADMIN)
        assert st == 201, (st, t)
        return t["token"]

    def wait_run(self, token, run, states=("succeeded", "failed", "cancelled"), timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, r = self.req("GET", "/api/v1/runs/" + run, token=token)
            assert st == 200, (st, r)
            if r["state"] in states:
                return r
            time.sleep(0.1)
        raise AssertionError("run %s not in %s after %ss: %s" % (run, states, timeout, r))


def decode(b, ctype):
    if "json" in ctype:
        try:
            return json.loads(b)
        except ValueError:
            pass
    return b.decode("utf-8", "replace")


# An IR with no steps and typed, constrained parameters (valid without the compiler).
EMPTY_IR = {
    "kfpc_ir": 1, "name": "empty", "doc": None, "loc": {"file": "x.kfp", "line": 1, "col": 1},
    "types": [], "parallelism": 0, "timeout": 0, "schedules": [], "nodes": [], "finally": [],
    "outputs": [],
    "params": [
        {"name": "n", "type": "int", "default": 3, "required": False, "doc": None,
         "constraints": {"min": 1, "max": 5}, "loc": {"file": "x.kfp", "line": 1, "col": 1}},
        {"name": "mode", "type": "string", "default": "fast", "required": False, "doc": None,
         "constraints": {"one_of": ["fast", "slow"]}, "loc": {"file": "x.kfp", "line": 1, "col": 1}},
    ],
}


class Failures:
    """Collects check failures so one test reports all of them."""

    def __init__(self):
        self.errors = []
        self.n = 0

    def check(self, cond, what):
        self.n += 1
        if not cond:
            self.errors.append(what)
            print("FAIL:", what)

    def done(self):
        print("%d checks, %d failed" % (self.n, len(self.errors)))
        sys.exit(1 if self.errors else 0)

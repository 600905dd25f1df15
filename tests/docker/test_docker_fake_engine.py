#!/usr/bin/python3
"""The docker executor against a fake Engine API (a small HTTP server on a unix socket, in
this process), for what a real engine on this offline machine cannot show:

  auth      an image from a private registry is pulled with X-Registry-Auth built from
            $HOME/.docker/config.json ("auths" -> base64 "user:password"), base64url JSON
            {"username", "password", "serveraddress"}; the pull's streamed error is reported
            naming the image
  error500  an engine error on create: run failed, the message names the image and says why
  conflict  the container name is taken by a container that is not this attempt's (409)
  hang      an engine that accepts the connection and never answers: with
            KFPC_DOCKER_TIMEOUT=2 the attempt fails (`infra`, "did not answer in time"), kfpc
            does not hang
  stuck_logs  the container has exited but its logs?follow=1 stream never ends, and a kill
            answers 500 "can only kill running containers" (what Podman 4.3 does when its
            follow misses the container's "died" event): kfpc looks at the container, drops
            the stream, reads the whole log again (the stream had sent only part of it) and
            the run succeeds with the complete output; it does not hang
Needs no Docker. Requests the fake engine saw are checked too (versioned paths, labels).
"""
import base64
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
import http.server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerlib as dl  # noqa: E402

seen = []
lock = threading.Lock()
stop = threading.Event()  # set at the end: a stuck log stream may end then

STUCK_ID = "5f" * 32
STUCK_LOG = [(1, b"hello from "), (1, b"the whole log\n"), (2, b"a warning\n")]


def frames(parts):
    return b"".join(bytes([k, 0, 0, 0]) + len(p).to_bytes(4, "big") + p for k, p in parts)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"

    def reply(self, code, obj=None, raw=None):
        body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n)) if n else None

    def record(self, body=None):
        with lock:
            seen.append((self.command, self.path, dict(self.headers), body))

    def do_GET(self):
        self.record()
        if self.path == "/_ping":
            return self.reply(200, raw=b"OK")
        if self.path == "/version":
            return self.reply(200, {"ApiVersion": "1.41", "Version": "0-fake",
                                    "Components": [{"Name": "Fake Engine", "Version": "0"}]})
        if self.path.startswith("/v1.41/containers/json"):
            return self.reply(200, [])
        if self.path.startswith("/v1.41/info"):
            return self.reply(200, {"NCPU": 2, "MemTotal": 4 << 30})
        if self.path.startswith("/v1.41/containers/%s/logs" % STUCK_ID):
            if "follow=1" not in self.path:
                return self.reply(200, raw=frames(STUCK_LOG))
            # a follow that sends the first frame only and then never ends
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            first = frames(STUCK_LOG[:1])
            self.wfile.write(b"%x\r\n%s\r\n" % (len(first), first))
            self.wfile.flush()
            stop.wait(120)
            self.close_connection = True
            return
        if self.path.startswith("/v1.41/containers/%s/json" % STUCK_ID):
            return self.reply(200, {
                "Id": STUCK_ID,
                "State": {"Status": "exited", "Running": False, "ExitCode": 0,
                          "OOMKilled": False, "Error": "",
                          "StartedAt": "2026-11-29T10:00:00.000000000Z",
                          "FinishedAt": "2026-11-29T10:00:00.100000000Z"},
                "Config": {"Labels": {}}})
        if self.path.startswith("/v1.41/containers/"):
            return self.reply(404, {"message": "No such container: " + self.path.split("/")[3]})
        return self.reply(404, {"message": "page not found"})

    def do_POST(self):
        b = self.body()
        self.record(b)
        if self.path.startswith("/v1.41/containers/create"):
            image = b["Image"]
            if image.startswith("registry.example.com/"):
                return self.reply(404, {"message": "No such image: " + image})
            if image == "fake/error500:1":
                return self.reply(500, {"message": "boom: the disk is on fire"})
            if image == "fake/conflict:1":
                return self.reply(409, {"message": "Conflict. The container name is already in use"})
            if image == "fake/hang:1":
                time.sleep(30)
                return
            if image == "fake/stucklogs:1":
                return self.reply(201, {"Id": STUCK_ID, "Warnings": []})
            return self.reply(404, {"message": "No such image: " + image})
        if self.path == "/v1.41/containers/%s/start" % STUCK_ID:
            return self.reply(204)
        if self.path.startswith("/v1.41/containers/%s/kill" % STUCK_ID):
            return self.reply(500, {"cause": "container state improper", "response": 500,
                                    "message": "can only kill running containers. %s is in "
                                    "state stopped: container state improper" % STUCK_ID})
        if self.path.startswith("/v1.41/images/create"):
            # a pull streams progress lines; failures come as an "error" line with HTTP 200
            lines = [{"status": "Pulling from team/app"},
                     {"errorDetail": {"message": "pull access denied"},
                      "error": "pull access denied for registry.example.com/team/app"}]
            return self.reply(200, raw=b"".join(json.dumps(l).encode() + b"\r\n" for l in lines))
        return self.reply(404, {"message": "page not found"})

    def do_DELETE(self):
        self.record()
        return self.reply(204)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


PIPE = """pipeline fake() {
  step a {
    image "%s"
    timeout 1m
    run ["true"]
  }
}
"""

PIPE_OUT = """pipeline fake() {
  step a {
    image "%s"
    timeout 1m
    out said: string from stdout
    run ["true"]
  }
  out said: string = a.said
}
"""


def main():
    dl.preflight()
    tmp = os.path.join(dl.BUILD, "testtmp", "docker_fake_engine")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    sock = os.path.join(tmp, "fake.sock")
    if len(sock) > 100:
        sock = "/tmp/kfpc-fake-%d.sock" % os.getpid()
    if os.path.exists(sock):
        os.unlink(sock)
    srv = Server(sock, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    home = os.path.join(tmp, "home")
    dl.write(os.path.join(home, ".docker", "config.json"), json.dumps(
        {"auths": {"registry.example.com": {"auth": base64.b64encode(b"alice:s3cr+t/x?").decode()},
                   "https://index.docker.io/v1/": {"auth": base64.b64encode(b"bob:hub").decode()}}}))
    env = dict(os.environ, DOCKER_HOST="unix://" + sock, HOME=home, NO_COLOR="1",
               KFPC_DOCKER_TIMEOUT="2")
    env.pop("DOCKER_CONFIG", None)

    def run(case, image, pipe=PIPE, expect=1):
        f = dl.write(os.path.join(tmp, case + ".kfp"), pipe % image)
        state = os.path.join(tmp, "state-" + case)
        t0 = time.time()
        rc, out, err = dl.kfpc(["run", f, "--executor", "docker", "--state", state], env,
                               timeout=120)
        took = time.time() - t0
        _, show, _ = dl.kfpc(["show", dl.run_id(out) or "?", "--state", state], env)
        if rc != expect:
            dl.problem(case, "exit %d, expected %d\nstdout:\n%sstderr:\n%s"
                       % (rc, expect, out, err))
        return show, took

    show, _ = run("auth", "registry.example.com/team/app:1")
    for needle in ("registry.example.com/team/app:1", "pull access denied"):
        if needle not in show:
            dl.problem("auth", "expected %r in:\n%s" % (needle, show))
    pulls = [s for s in seen if s[0] == "POST" and s[1].startswith("/v1.41/images/create")]
    if not pulls:
        dl.problem("auth", "no pull request reached the engine")
    else:
        m, path, headers, _ = pulls[-1]
        if "fromImage=registry.example.com%2Fteam%2Fapp" not in path or "tag=1" not in path:
            dl.problem("auth", "pull request path: " + path)
        hdr = headers.get("X-Registry-Auth")
        if not hdr:
            dl.problem("auth", "no X-Registry-Auth header on the pull")
        else:
            cred = json.loads(base64.urlsafe_b64decode(hdr + "=" * (-len(hdr) % 4)))
            want = {"username": "alice", "password": "s3cr+t/x?",
                    "serveraddress": "registry.example.com"}
            if cred != want:
                dl.problem("auth", "X-Registry-Auth decodes to %r, expected %r" % (cred, want))

    creates = [s for s in seen if s[0] == "POST" and s[1].startswith("/v1.41/containers/create")]
    if creates:
        labels = creates[0][3].get("Labels", {})
        for k in ("kfpc.managed", "kfpc.run", "kfpc.step", "kfpc.attempt"):
            if k not in labels:
                dl.problem("labels", "container created without label %s: %r" % (k, labels))
        if creates[0][3].get("HostConfig", {}).get("NetworkMode") != "none":
            dl.problem("labels", "default NetworkMode is not none: %r" % creates[0][3])

    show, _ = run("error500", "fake/error500:1")
    for needle in ("fake/error500:1", "HTTP 500", "boom: the disk is on fire"):
        if needle not in show:
            dl.problem("error500", "expected %r in:\n%s" % (needle, show))

    show, _ = run("conflict", "fake/conflict:1")
    for needle in ("fake/conflict:1", "HTTP 409"):
        if needle not in show:
            dl.problem("conflict", "expected %r in:\n%s" % (needle, show))

    show, took = run("hang", "fake/hang:1")
    for needle in ("fake/hang:1", "did not answer in time"):
        if needle not in show:
            dl.problem("hang", "expected %r in:\n%s" % (needle, show))

    # stuck_logs: run with the default timeout (the looks at the container are not requests
    # that time out); kfpc must finish by itself, with the whole log
    env_st = dict(env)
    env_st.pop("KFPC_DOCKER_TIMEOUT")
    f = dl.write(os.path.join(tmp, "stuck_logs.kfp"), PIPE_OUT % "fake/stucklogs:1")
    state = os.path.join(tmp, "state-stuck_logs")
    try:
        rc, out, err = dl.kfpc(["run", f, "--executor", "docker", "--state", state], env_st,
                               timeout=120)
    except subprocess.TimeoutExpired:
        stop.set()
        dl.fail("stuck_logs: `kfpc run` did not finish within 120 s (the step's timeout is "
                "1 min): it hangs on a log stream that never ends")
    if rc != 0 or "said = hello from the whole log\n" not in out:
        dl.problem("stuck_logs", "exit %d (expected 0 and the whole log as the output)\n"
                   "stdout:\n%sstderr:\n%s" % (rc, out, err))
    rid = dl.run_id(out) or "?"
    for which, want in (("--stdout", "hello from the whole log\n"), ("--stderr", "a warning\n")):
        _, logs, _ = dl.kfpc(["logs", rid, "a", which, "--state", state], env_st)
        if logs != want:  # "hello from hello from ...": the files were not emptied first
            dl.problem("stuck_logs", "`kfpc logs %s`: %r, expected %r" % (which, logs, want))
    reads = [s for s in seen if s[0] == "GET" and s[1].startswith(
        "/v1.41/containers/%s/logs" % STUCK_ID) and "follow=1" not in s[1]]
    if not reads:
        dl.problem("stuck_logs", "kfpc never read the whole log (GET logs without follow)")
    stop.set()
    srv.shutdown()
    srv.server_close()
    if os.path.exists(sock):
        os.unlink(sock)
    dl.finish()


if __name__ == "__main__":
    main()

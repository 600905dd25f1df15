"""Shared helpers for the tests/run Python tests (not a test itself: no test_ prefix)."""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

SRC = os.environ.get("KFPC_SRC", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD = os.environ.get("KFPC_BUILD", os.path.join(SRC, "build"))
KFPC = os.environ.get("KFPC", os.path.join(BUILD, "kfpc"))
LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (\S+) (succeeded|failed|cached|skipped|cancelled)( \(|$| at )")


# A one-step pipeline whose first attempt sleeps (long enough to be killed): later attempts,
# finding $KFPC_CASE_DIR/marker, append "attempt N" to $KFPC_CASE_DIR/log and finish.
SLOW_PIPELINE = r'''
pipeline slow() {
  defaults { image "busybox:1.36"  timeout 1m }
  step s {
    out v: int
    script sh """
      if [ ! -e "$KFPC_CASE_DIR/marker" ]; then
        touch "$KFPC_CASE_DIR/marker"
        sleep 120
      fi
      echo "attempt $KFPC_ATTEMPT" >> "$KFPC_CASE_DIR/log"
      echo 7 > "{{outputs.v}}"
    """
  }
}
'''


def run_killed_at_marker(d, env, new_session=False):
    """Start SLOW_PIPELINE (written to D/slow.kfp) in D, wait until its step is running (the
    marker file), kill -9 kfpc and return (its Popen, the run id or None)."""
    write(d, "slow.kfp", SLOW_PIPELINE)
    p = subprocess.Popen([KFPC, "run", "slow.kfp", "--state", os.path.join(d, "state")],
                         cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=new_session)
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(d, "marker")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    out, _ = p.communicate()
    return p, run_id(out)


@contextlib.contextmanager
def small_tmpfs(d, size):
    """A tmpfs of SIZE ("2m") mounted at D/small, unmounted afterwards: the mount point, or
    None (said why) where this machine cannot mount one."""
    mnt = os.path.join(d, "small")
    os.makedirs(mnt)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt],
                       capture_output=True, text=True)
    if m.returncode != 0:
        print("skip full disk: cannot mount a tmpfs here (%s)" % m.stderr.strip())
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def scratch(name):
    d = os.path.join(BUILD, "testtmp", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def env_for(d):
    env = dict(os.environ)
    env.pop("KFPC_STATE", None)
    env["NO_COLOR"] = "1"
    env["KFPC_CASE_DIR"] = d
    return env


def write(d, name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def kfpc_run(d, args, env=None, timeout=300):
    return subprocess.run([KFPC, "run"] + args + ["--state", os.path.join(d, "state")],
                          cwd=d, env=env or env_for(d), capture_output=True, text=True,
                          timeout=timeout)


def states(stderr):
    out = {}
    for l in stderr.splitlines():
        m = LINE.match(l)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def outputs(stdout):
    return dict(l.split(" = ", 1) for l in stdout.splitlines() if " = " in l)


def run_id(stdout):
    m = re.search(r"^run (\S+)$", stdout, re.M)
    return m.group(1) if m else None


def killed(pid):
    """True if PID has a SIGKILL pending: it is gone as soon as it gets a CPU (on a busy machine
    that can be after kfpc has exited)."""
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & 0x100:
                    return True
    except (OSError, ValueError, IndexError):
        pass
    return False


def leftovers(rid):
    """Live processes carrying KFPC_RUN_ID=RID (zombies and killed ones do not count)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if st not in ("Z", "X") and ("KFPC_RUN_ID=%s" % rid).encode() in env and \
                not killed(pid):
            found.append(int(pid))
    return found


class Checker:
    def __init__(self, name):
        self.name = name
        self.failures = 0

    def check(self, cond, what, detail=""):
        if cond:
            print("ok   " + what)
        else:
            self.failures += 1
            print("FAIL " + what)
            if detail:
                print("     " + detail.replace("\n", "\n     "))

    def done(self):
        print("%s: %s" % (self.name, "%d failure(s)" % self.failures if self.failures else "all ok"))
        sys.exit(1 if self.failures else 0)

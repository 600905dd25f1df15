#!/usr/bin/python3
"""The state store and the commands that read it, through the real kfpc binary.

One real run of tests/store/data/store_demo.kfp (local executor) in a fresh state dir, then:
  runs        table and --json (newest first), after a second run
  show        steps, states, attempts, exit codes, outputs, digests; RUN prefixes; --json
  logs        latest attempt, --attempt N, --stdout/--stderr; unknown step/attempt errors
  artifact    get of a file and of a directory (-o PATH, -o -), value outputs refused
  lineage     RUN/STEP/OUTPUT and digest prefix: producer, inputs, upstream producer
  CAS         deduplication (same bytes stored once), directory trees made of blobs,
              read-only objects (mode 0444; writes refused unless we are root), digests of
              every artifact shape checked against an independent implementation of SPEC §6.8
  errors      unknown run / step / output exit 1, usage errors exit 2, no state dir
  concurrency `kfpc runs` / `kfpc show` from another process while a run is in progress

Scratch: $KFPC_BUILD/testtmp/store/. Prints every failed check; exit 1 if any.
"""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storelib  # noqa: E402
from storelib import DATA, KFPC, check, env, failures, paths, runner  # noqa: E402

TMP, STATE = paths("store")
kfpc = runner(TMP, STATE)


def show_json(run):
    rc, out, err = kfpc("show", run, "--json")
    if not check(rc == 0, "show --json %s: exit %d: %s" % (run, rc, err)):
        return None
    return json.loads(out)


def steps_by_id(doc):
    return {s["id"]: s for s in doc["step_instances"]}


def out_art(step, name):
    for a in step["output_artifacts"]:
        if a["name"] == name:
            return a["digest"]
    return None


def blob_path(digest):
    return os.path.join(STATE, "cas", "blobs", digest[:2], digest)


def tree_path(digest):
    return os.path.join(STATE, "cas", "trees", digest[:2], digest)


def parse_tree(digest):
    """The canonical listing: 'T MODE HEX NAME\\0' entries (art.h)."""
    with open(tree_path(digest), "rb") as f:
        raw = f.read()
    entries = []
    for rec in raw.split(b"\0")[:-1]:
        t, mode, hexd, name = rec.decode().split(" ", 3)
        entries.append((t, mode, hexd, name))
    return entries


def spec_digest(path):
    """SPEC §6.8, written independently of engine/art.c."""
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    listing = b""
    for name in sorted(os.listdir(path), key=os.fsencode):
        child = os.path.join(path, name)
        cst = os.lstat(child)
        if stat.S_ISLNK(cst.st_mode):
            t, mode = b"l", b"777"
            d = hashlib.sha256(os.fsencode(os.readlink(child))).hexdigest()
        elif stat.S_ISDIR(cst.st_mode):
            t, mode, d = b"d", b"755", spec_digest(child)
        else:
            t, mode = b"f", (b"755" if cst.st_mode & 0o111 else b"644")
            d = spec_digest(child)
        listing += b"%s %s %s %s\0" % (t, mode, d.encode(), os.fsencode(name))
    if not listing:
        listing = b"kfpc-empty-dir\0"
    return hashlib.sha256(listing).hexdigest()


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    demo = os.path.join(DATA, "store_demo.kfp")

    # ---- no state yet ------------------------------------------------------------------
    rc, out, err = kfpc("runs")
    check(rc == 0 and out == "", "runs without a state dir: exit 0, empty stdout (got %d, %r)"
          % (rc, out))
    rc, out, err = kfpc("show", "r1")
    check(rc == 1 and "no kfpc state" in err, "show without a state dir: exit 1 (got %d: %s)"
          % (rc, err))

    # ---- a real run --------------------------------------------------------------------
    rc, out, err = kfpc("run", demo, "-p", "rows=3")
    if not check(rc == 0, "kfpc run store_demo: exit %d\n%s\n%s" % (rc, out, err)):
        return
    rc, out, err = kfpc("runs", "--json")
    check(rc == 0, "runs --json exit %d: %s" % (rc, err))
    runs = json.loads(out)
    check(len(runs) == 1, "one run recorded (got %d)" % len(runs))
    run = runs[0]["id"]
    check(runs[0]["pipeline"] == "store_demo", "run pipeline name")
    check(runs[0]["status"] == "succeeded", "run status succeeded (got %s)" % runs[0]["status"])
    check(runs[0]["steps"] == 5, "5 step instances (got %s)" % runs[0]["steps"])

    # ---- show --------------------------------------------------------------------------
    doc = show_json(run)
    if doc is None:
        return
    st = steps_by_id(doc)
    check(set(st) == {"prep", "twin", "fit", "flaky", "shapes"}, "step ids: %s" % sorted(st))
    for sid in ("prep", "twin", "fit", "shapes"):
        s = st.get(sid, {})
        check(s.get("state") == "succeeded", "%s succeeded (got %s)" % (sid, s.get("state")))
        check(len(s.get("attempts", [])) == 1, "%s one attempt" % sid)
        check(s.get("attempts") and s["attempts"][0]["exit_code"] == 0, "%s exit 0" % sid)
    fl = st.get("flaky", {})
    att = fl.get("attempts", [])
    check(fl.get("state") == "succeeded", "flaky succeeded on retry")
    check(len(att) == 2, "flaky has 2 attempts (got %d)" % len(att))
    if len(att) == 2:
        check(att[0]["exit_code"] == 1 and att[0]["fail"] == "error",
              "flaky attempt 1: exit 1, failure kind error (got %s)" % att[0])
        check(att[1]["exit_code"] == 0 and att[1]["fail"] is None, "flaky attempt 2 ok")
        check(att[0]["number"] == 1 and att[1]["number"] == 2, "attempt numbers")
        check(0 < att[0]["started"] <= att[0]["finished"] <= att[1]["started"],
              "attempt timings ordered")
    check(st["prep"]["outputs"] == {"count": 3}, "prep value output count=3 (got %s)"
          % st["prep"]["outputs"])
    outs = dict(doc["outputs"])
    model = outs.pop("model", None)
    check(outs == {"count": 3, "flaky_attempt": 2}, "run outputs (got %s)" % doc["outputs"])
    check(isinstance(model, dict) and model.get("type") == "Model" and
          len(model.get("artifact", "")) == 64, "run artifact output model (got %s)" % model)
    d_prep = out_art(st["prep"], "data")
    d_twin = out_art(st["twin"], "data")
    d_model = out_art(st["fit"], "model")
    check(d_prep and len(d_prep) == 64, "prep.data digest recorded")
    check(d_model and len(d_model) == 64, "fit.model digest recorded")
    check([a["digest"] for a in st["fit"]["input_artifacts"]] == [d_prep],
          "fit consumed prep.data")

    rc, out, err = kfpc("show", run)
    check(rc == 0, "show text exit %d: %s" % (rc, err))
    lines = out.splitlines()
    check(lines[0] == "run       " + run, "show header line: %r" % lines[:1])
    check("pipeline  store_demo (" in out, "show pipeline line")
    check("status    succeeded" in out, "show status line")
    check("params    rows = 3" in out, "show params")
    table = [l for l in lines if l.startswith(("STEP", "prep ", "twin ", "fit ", "flaky ",
                                                "shapes "))]
    check(len(table) == 6 and table[0].split() == ["STEP", "STATE", "ATTEMPTS", "DURATION",
                                                    "EXIT", "REASON"], "show table: %s" % table)
    flaky_row = [l.split() for l in table if l.startswith("flaky ")]
    check(flaky_row and flaky_row[0][1:3] == ["succeeded", "2"], "flaky row: %s" % flaky_row)
    check("    out count = 3" in out, "show prep value output")
    check("    out data = %s (Dataset, file, 6 B)" % d_prep[:12] in out,
          "show prep artifact output with type, kind, size")
    check("    in  data = %s (Dataset, file, 6 B)" % d_prep[:12] in out, "show fit input")
    check("    attempt 1  " in out and "exit 1  error" in out, "show flaky attempts")
    check("\noutputs\n    count = 3\n    flaky_attempt = 2\n    model = sha256:" in out,
          "show run outputs (an artifact output as sha256:HEX, as kfpc run prints it)")
    check(all(l == l.rstrip() for l in lines), "show: no trailing white space")
    rc2, out2, _ = kfpc("show", run[:12])
    check(rc2 == 0 and out2 == out, "show with a unique run prefix gives the same output")

    # ---- logs --------------------------------------------------------------------------
    rc, out, err = kfpc("logs", run, "prep")
    check(rc == 0 and out == "3\n" and err == "prep-stderr\n",
          "logs prep: stdout to stdout, stderr to stderr (got %d %r %r)" % (rc, out, err))
    rc, out, err = kfpc("logs", run, "flaky")
    check(rc == 0 and out == "2\n" and err == "flaky attempt 2\n", "logs: latest attempt")
    rc, out, err = kfpc("logs", run, "flaky", "--attempt", "1")
    check(rc == 0 and out == "1\n" and err == "flaky attempt 1\n", "logs --attempt 1")
    rc, out, err = kfpc("logs", run, "flaky", "--attempt", "1", "--stderr")
    check(rc == 0 and out == "flaky attempt 1\n" and err == "", "logs --stderr (to stdout)")
    rc, out, err = kfpc("logs", run, "fit", "--stdout")
    check(rc == 0 and out == "fit-stdout\n" and err == "", "logs --stdout")
    rc, out, err = kfpc("logs", run, "flaky", "--attempt", "3")
    check(rc == 1 and "no attempt 3" in err, "logs unknown attempt: exit 1 (%d %s)" % (rc, err))
    rc, out, err = kfpc("logs", run, "nope")
    check(rc == 1 and "no step 'nope'" in err, "logs unknown step: exit 1 (%d %s)" % (rc, err))
    rc, out, err = kfpc("logs", run)
    check(rc == 2 and "usage:" in err, "logs without a step: exit 2")
    rc, out, err = kfpc("logs", run, "prep", "--attempt", "x")
    check(rc == 2, "logs --attempt x: exit 2")

    # ---- artifact get ------------------------------------------------------------------
    f_out = os.path.join(TMP, "data.txt")
    rc, out, err = kfpc("artifact", "get", run + "/prep/data", "-o", f_out)
    check(rc == 0, "artifact get file: exit %d %s" % (rc, err))
    check(os.path.isfile(f_out) and open(f_out).read() == "1\n2\n3\n", "exported file bytes")
    check(os.access(f_out, os.W_OK) and stat.S_IMODE(os.stat(f_out).st_mode) == 0o644,
          "exported file is writable 0644")
    rc, out, err = kfpc("artifact", "get", run + "/prep/data", "-o", f_out)
    check(rc == 0, "artifact get over an existing file replaces it")
    rc, out, err = kfpc("artifact", "get", run + "/prep/data", "-o", "-")
    check(rc == 0 and out == "1\n2\n3\n", "artifact get -o - prints the file")
    d_out = os.path.join(TMP, "model")
    rc, out, err = kfpc("artifact", "get", run + "/fit/model", "-o", d_out)
    check(rc == 0, "artifact get dir: exit %d %s" % (rc, err))
    check(sorted(os.listdir(d_out)) == ["lines", "sub"] if os.path.isdir(d_out) else False,
          "exported dir entries")
    if os.path.isdir(d_out):
        check(open(os.path.join(d_out, "lines")).read() == "3\n", "exported dir file bytes")
        check(open(os.path.join(d_out, "sub", "copy.txt")).read() == "1\n2\n3\n",
              "exported nested file bytes")
        check(os.access(os.path.join(d_out, "sub", "copy.txt"), os.W_OK),
              "exported dir files are writable")
    rc, out, err = kfpc("artifact", "get", run + "/fit/model", "-o", d_out)
    check(rc == 2 and "exists" in err, "artifact get dir onto an existing path: exit 2")
    rc, out, err = kfpc("artifact", "get", d_model[:10], "-o", os.path.join(TMP, "m2"))
    check(rc == 0 and os.path.isfile(os.path.join(TMP, "m2", "lines")),
          "artifact get by digest prefix")
    rc, out, err = kfpc("artifact", "get", run + "/prep/count", "-o", os.path.join(TMP, "x"))
    check(rc == 1 and "is a value (3), not an artifact" in err, "value output refused: %s" % err)
    rc, out, err = kfpc("artifact", "get", run + "/prep/nope", "-o", os.path.join(TMP, "x"))
    check(rc == 1 and "no artifact output 'nope'" in err, "unknown output: exit 1")
    rc, out, err = kfpc("artifact", "get", "rzzz/prep/data", "-o", os.path.join(TMP, "x"))
    check(rc == 1 and "run 'rzzz' not found" in err, "unknown run: exit 1")
    rc, out, err = kfpc("artifact", "get", run + "/prep/data")
    check(rc == 2 and "usage:" in err, "artifact get without -o: exit 2")
    rc, out, err = kfpc("artifact", "put", "x")
    check(rc == 2, "artifact put: exit 2")

    # ---- lineage -----------------------------------------------------------------------
    rc, out, err = kfpc("lineage", run + "/fit/model")
    check(rc == 0, "lineage exit %d %s" % (rc, err))
    want = ("artifact %s (Model, dir, 8 B)\nsha256:%s\n"
            "produced by %s/fit output model (succeeded, " % (d_model[:12], d_model, run))
    check(out.startswith(want), "lineage head:\n%s\nwanted:\n%s" % (out, want))
    check("|- in lr = 0.5\n" in out, "lineage shows value inputs")
    check("`- in data = %s (Dataset, file, 6 B)\n   produced by %s/prep output data" %
          (d_prep[:12], run) in out, "lineage shows the upstream producer:\n" + out)
    check("   `- in n = 3\n" in out, "lineage shows upstream inputs")
    rc, out, err = kfpc("lineage", "sha256:" + d_prep[:8])
    check(rc == 0 and "used by\n   %s/fit input data\n" % run in out,
          "lineage by digest prefix lists consumers:\n" + out)
    rc, out, err = kfpc("lineage", "ffffffff")
    check(rc == 1 and "no artifact" in err, "lineage unknown digest: exit 1")
    rc, out, err = kfpc("lineage", "ab")
    check(rc == 1 and "too short" in err, "lineage short prefix: exit 1")
    rc, out, err = kfpc("lineage")
    check(rc == 2, "lineage without argument: exit 2")

    # ---- CAS: dedup, trees, read-only --------------------------------------------------
    check(d_prep == d_twin, "same bytes, same digest (prep.data == twin.data)")
    check(os.path.isfile(blob_path(d_prep)), "blob stored under cas/blobs/HH/HEX")
    same = 0
    for root, _, files in os.walk(os.path.join(STATE, "cas", "blobs")):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                if fh.read() == b"1\n2\n3\n":
                    same += 1
    check(same == 1, "bytes produced by prep, twin and fit's copy are stored once (got %d)"
          % same)
    if os.path.isfile(tree_path(d_model)):
        ents = parse_tree(d_model)
        check([e[3] for e in ents] == ["lines", "sub"], "tree entries sorted: %s" % ents)
        check(ents[0][0] == "f" and ents[0][1] == "644" and ents[1][0] == "d",
              "tree entry types and modes: %s" % ents)
        sub = parse_tree(ents[1][2])
        check(sub == [("f", "644", d_prep, "copy.txt")],
              "nested tree points at the shared blob: %s" % sub)
    else:
        check(False, "directory stored as a tree object")
    for sub in ("blobs", "trees"):
        for root, _, files in os.walk(os.path.join(STATE, "cas", sub)):
            for f in files:
                m = stat.S_IMODE(os.lstat(os.path.join(root, f)).st_mode)
                check(m == 0o444, "CAS object %s/%s is read-only (mode %o)" % (sub, f, m))
    if os.geteuid() != 0:
        try:
            open(blob_path(d_prep), "a").close()
            check(False, "writing a CAS object is refused")
        except PermissionError:
            pass

    # digests of every shape, against SPEC §6.8 computed here from exported copies
    shapes = st.get("shapes", {})
    d_ef, d_ed, d_tree = (out_art(shapes, n) for n in ("empty_file", "empty_dir", "tree"))
    check(d_ef == hashlib.sha256(b"").hexdigest(), "empty file digest: %s" % d_ef)
    check(d_ed == hashlib.sha256(b"kfpc-empty-dir\0").hexdigest() and d_ed != d_ef,
          "empty directory digest differs from the empty file's: %s" % d_ed)
    for name, dig in (("empty_file", d_ef), ("empty_dir", d_ed), ("tree", d_tree)):
        dest = os.path.join(TMP, "shape_" + name)
        rc, out, err = kfpc("artifact", "get", "%s/shapes/%s" % (run, name), "-o", dest)
        if check(rc == 0, "artifact get shapes/%s: exit %d %s" % (name, rc, err)):
            check(spec_digest(dest) == dig, "shapes/%s: exported copy hashes to its digest "
                  "(SPEC §6.8)" % name)
    tree = os.path.join(TMP, "shape_tree")
    if os.path.isdir(tree):
        check(os.readlink(os.path.join(tree, "link")) == "run.sh", "symbolic link kept")
        check(os.stat(os.path.join(tree, "run.sh")).st_mode & 0o111, "execute bit kept")
        check(sorted(os.listdir(tree)) == ["link", "run.sh", "sub"], "tree entries")
        check(os.listdir(os.path.join(TMP, "shape_empty_dir")) == [], "empty dir exported")
        rc, out, err = kfpc("show", run)
        check("    out tree = %s (Dataset, dir, 9 B)" % d_tree[:12] in out,
              "show: a dir's size is the sum of its files' (8 + 1 bytes; links count 0)")

    # ---- a second run: runs order, caching ---------------------------------------------
    rc, out, err = kfpc("run", demo, "-p", "rows=3")
    check(rc == 0, "second run exit %d %s" % (rc, err))
    rc, out, err = kfpc("runs", "--json")
    runs = json.loads(out) if rc == 0 else []
    check(len(runs) == 2 and runs[1]["id"] == run, "runs --json newest first")
    run2 = runs[0]["id"] if runs else ""
    rc, out, err = kfpc("runs")
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 3, "runs table: header + 2 rows:\n" + out)
    if len(lines) == 3:
        check(lines[0].split() == ["RUN", "PIPELINE", "STATUS", "CREATED", "DURATION", "STEPS"],
              "runs header: %r" % lines[0])
        check(lines[1].startswith(run2 + "  store_demo  succeeded  ") and
              lines[2].startswith(run + "  store_demo  succeeded  "), "runs rows:\n" + out)
    doc2 = show_json(run2)
    if doc2:
        st2 = steps_by_id(doc2)
        check(st2.get("fit", {}).get("state") == "cached", "fit cached in run 2")
        check(out_art(st2.get("fit", {}), "model") == d_model, "cached step keeps the digest")
    rc, out, err = kfpc("logs", run2, "prep")
    check(rc == 0 and out == "3\n" and err.endswith("prep-stderr\n") and
          ("these are the logs of %s/prep" % run) in err,
          "logs of a cached step: the producing run's logs, said so (%d %r %r)" % (rc, out, err))
    rc, out, err = kfpc("show", run2)
    check(rc == 0 and ("    cached from %s/fit\n" % run) in out, "show: cached from")
    rc, out, err = kfpc("show", "r")
    check(rc == 1 and "ambiguous" in err, "ambiguous run prefix: exit 1 (%d %s)" % (rc, err))
    rc, out, err = kfpc("show", "rnope")
    check(rc == 1 and "run 'rnope' not found" in err, "unknown run: exit 1")
    rc, out, err = kfpc("show")
    check(rc == 2 and "usage:" in err, "show without a run: exit 2")
    rc, out, err = kfpc("runs", "--bogus")
    check(rc == 2 and "unknown option" in err, "runs --bogus: exit 2")
    rc, out, err = kfpc("runs", state=None, KFPC_STATE=STATE)
    check(rc == 0 and run in out, "KFPC_STATE selects the state dir")

    # ---- inspecting a run in progress from another process -----------------------------
    go = os.path.join(TMP, "go")
    p = subprocess.Popen([KFPC, "run", os.path.join(DATA, "wait_go.kfp"), "-p", "go=" + go,
                          "--state", STATE], cwd=TMP, env=env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        seen = None
        for _ in range(1200):  # until the step is recorded as running (or the run ends)
            rc, out, err = kfpc("runs", "--json")
            cur = [r for r in json.loads(out) if r["pipeline"] == "wait_go"] if rc == 0 else []
            if cur:
                d = show_json(cur[0]["id"])
                w = steps_by_id(d).get("waiter") if d else None
                # the scheduler writes an attempt's executor handle in the round after the
                # one that started it: wait for both
                if w and w["state"] == "running" and w["attempts"] and w["attempts"][0]["handle"]:
                    seen = (cur[0], w)
                    break
            if p.poll() is not None:
                break
            time.sleep(0.05)
        check(seen is not None, "a running step (with its executor handle) is visible to kfpc "
              "show from another process")
        if seen:
            check(seen[0]["status"] == "running", "run status running while in progress")
            check(len(seen[1]["attempts"]) == 1 and seen[1]["attempts"][0]["handle"],
                  "the running attempt's executor handle is recorded")
    finally:
        open(go, "w").close()
        try:
            p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
    check(p.returncode == 0, "wait_go run exit %s" % p.returncode)
    rc, out, err = kfpc("runs", "--json")
    cur = [r for r in json.loads(out) if r["pipeline"] == "wait_go"] if rc == 0 else []
    check(cur and cur[0]["status"] == "succeeded", "wait_go succeeded")


if __name__ == "__main__":
    storelib.run_main(main)

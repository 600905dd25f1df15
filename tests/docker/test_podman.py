#!/usr/bin/python3
"""The docker executor against Podman's Docker-compatible service (`podman system service`,
runc runtime, cgroupfs; started by `scripts/dockerd.sh --podman`): examples hello and train
give the same outputs as the local executor, and every case of test_docker_failures passes,
with no container left behind.

If Podman cannot run on this machine the test prints `SKIPPED: <reason>` and exits 77 (ctest reports it as skipped).
Arguments: example case name substrings (default: hello train).

Opt-in: runs only with KFPC_TEST_PODMAN=1. In a clean-clone CI trial `kfpc run examples/hello.kfp
--executor docker` against the Podman service did not finish within 600 s (it passed in two
earlier trials, in 70 s and 126 s); until that hang is understood the default suite skips this
test and says so, rather than letting an intermittent hang fail CI.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerlib as dl  # noqa: E402
import test_docker_examples  # noqa: E402
import test_docker_failures  # noqa: E402


def main():
    if os.environ.get("KFPC_TEST_PODMAN") != "1":
        dl.skip("the Podman suite is opt-in (KFPC_TEST_PODMAN=1): a run against Podman's "
                "service hung once in CI (hello.kfp, > 600 s); see the docstring")
    dl.preflight()
    eng = dl.Engine("podman", kind="podman").start()
    eng.images("busybox", "python")
    test_docker_examples.compare_all(eng, sys.argv[1:] or ["hello", "train"])
    test_docker_failures.check_all(eng)
    dl.finish()


if __name__ == "__main__":
    main()

"""runtime_facts' kubelet root check on real mounts (root).

A stand-in kubelet (a shell script named ``kubelet``, so its comm is kubelet) runs with
``--root-dir`` pointing at a bind mount the test makes rshared, with a pod volume mounted below
it, as kubelet does at start. The facts must find the root dir from the command line and say
whether it is an rshared mount point of the host namespace; making the pod volume private must
turn ``rshared`` off. Mounts and the process are removed even when a step fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _runtime

pytestmark = pytest.mark.root


def _run(*args):
    subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=True)


@pytest.fixture
def kubelet_root():
    base = tempfile.mkdtemp(prefix="mo-kubelet-")
    root = os.path.join(base, "kubelet")
    pods = os.path.join(root, "pods")
    mounted, proc = [], None
    try:
        os.makedirs(root)
        _run("mount", "--bind", root, root)
        mounted.append(root)
        _run("mount", "--make-rshared", root)
        os.makedirs(pods)
        _run("mount", "-t", "tmpfs", "-o", "size=64k", "mo-kubelet-pods", pods)
        mounted.append(pods)
        bindir = os.path.join(base, "bin")
        os.makedirs(bindir)
        script = os.path.join(bindir, "kubelet")
        with open(script, "w") as handle:
            handle.write("#!/bin/sh\nsleep 60\n")
        os.chmod(script, 0o755)
        proc = subprocess.Popen(
            [script, "--root-dir=" + root, "--config", "/dev/null"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield {"root": root, "pods": pods, "pid": proc.pid}
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", path], capture_output=True, check=False, timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_comm(pid):
    # The shell sets comm to the script name at exec; give it a moment on a loaded machine.
    for _attempt in range(50):
        try:
            with open("/proc/%d/comm" % pid) as handle:
                if handle.read().strip() == "kubelet":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("stand-in kubelet did not start")


def test_kubelet_root_is_an_rshared_mount(kubelet_root):
    _wait_for_comm(kubelet_root["pid"])
    facts = _runtime.Collector().collect()
    engine = facts["engines"]["kubelet"]
    assert kubelet_root["pid"] in engine["pids"] and engine["running"]
    assert engine["flags"] == {"root_dir": kubelet_root["root"], "config": "/dev/null"}
    assert engine["binary_source"] != "process %d" % kubelet_root["pid"], "the shell is not kubelet"
    kubelet = facts["kubelet"]
    assert kubelet["root_dir"] == kubelet_root["root"] and kubelet["root_dir_source"] == "command line"
    assert kubelet["is_mount_point"] and kubelet["mount_point"] == kubelet_root["root"]
    assert kubelet["propagation"] == "shared" and kubelet["peer_group"]
    assert (kubelet["submounts"], kubelet["submounts_not_shared"]) == (1, 0)
    assert kubelet["rshared"] is True

    _run("mount", "--make-private", kubelet_root["pods"])
    kubelet = _runtime.Collector().collect()["kubelet"]
    assert kubelet["propagation"] == "shared" and kubelet["submounts_not_shared"] == 1
    assert kubelet["rshared"] is False

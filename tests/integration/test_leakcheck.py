"""The session-wide leak check (tests/leakcheck.py) sees what a careless test would leave."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from tests import leakcheck

pytestmark = pytest.mark.root


def test_a_left_mount_process_and_scratch_dir_are_named_then_gone_once_cleaned():
    before = leakcheck.snapshot()
    target = tempfile.mkdtemp(prefix="mo-leakcheck-")
    sleeper = subprocess.Popen(["sleep", "60"])
    scratch = "/tmp/mountops-lab-cp-leakcheck-%d" % os.getpid()
    os.mkdir(scratch)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "leakcheck", target], check=True)
        try:
            problems = leakcheck.leaks(before, leakcheck.snapshot())
        finally:
            subprocess.run(["umount", target], check=True)
    finally:
        sleeper.kill()
        sleeper.wait()
        os.rmdir(scratch)
        os.rmdir(target)
    assert "mount left behind: %s (tmpfs from leakcheck)" % target in problems
    assert "process left behind: pid %d (sleep)" % sleeper.pid in problems
    assert "scratch path left behind: %s" % scratch in problems
    assert len(problems) == 3, problems
    assert leakcheck.leaks(before, leakcheck.snapshot()) == []


def test_a_second_mount_on_the_same_point_counts_on_its_own():
    target = tempfile.mkdtemp(prefix="mo-leakcheck-")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "leakcheck", target], check=True)
        before = leakcheck.snapshot()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "leakcheck", target], check=True)
        stacked = leakcheck.leaks(before, leakcheck.snapshot())
        subprocess.run(["umount", target], check=True)
        subprocess.run(["umount", target], check=True)
    finally:
        os.rmdir(target)
    assert stacked == ["mount left behind: %s (tmpfs from leakcheck)" % target]

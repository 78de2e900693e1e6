"""What a test session may not leave behind: mounts, processes, bpftrace, scratch paths.

``snapshot()`` records the machine's state as the tests can change it; ``leaks(before, after)``
names everything new. conftest.py takes one snapshot when the session starts and fails the
session when the one taken at its end shows leaks, so a test that forgets to clean up is caught
even when its own assertions pass.
"""

from __future__ import annotations

import glob
import os

# Scratch paths tests and the lab create; none may survive the session.
SCRATCH_GLOBS = (
    "/run/mountops-test",
    "/run/mountops-probe*",
    "/tmp/mountops-lab-cp-*",
    "/opt/mountops-lab",
    "/tmp/mo-runtime-*",
)


def _mounts(proc_root="/proc"):
    """(mount point, fstype, source) of every mount in our namespace, one entry per line."""
    found = []
    with open("%s/self/mountinfo" % proc_root, "rb") as handle:
        for line in handle:
            pre, _sep, post = line.rstrip(b"\n").partition(b" - ")
            fields = pre.split(b" ")
            tail = post.split(b" ")
            found.append(
                (
                    fields[4].decode(errors="replace"),
                    tail[0].decode(errors="replace"),
                    tail[1].decode(errors="replace"),
                )
            )
    return sorted(found)


def _parents(proc_root="/proc"):
    parents, comms = {}, {}
    for name in os.listdir(proc_root):
        if not name.isdigit():
            continue
        try:
            with open("%s/%s/stat" % (proc_root, name), "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # comm is in parentheses and may hold spaces; the fields after the last ')' are fixed.
        close = stat.rfind(b")")
        comms[int(name)] = stat[stat.find(b"(") + 1 : close].decode(errors="replace")
        parents[int(name)] = int(stat[close + 2 :].split(b" ")[1])
    return parents, comms


def _descendants(root_pid, parents, comms):
    """{pid: comm} of every live process below ``root_pid``."""
    found = {}
    for pid in parents:
        seen = set()
        cur = parents.get(pid)
        while cur and cur not in seen:
            if cur == root_pid:
                found[pid] = comms[pid]
                break
            seen.add(cur)
            cur = parents.get(cur)
    return found


def snapshot(root_pid=None, proc_root="/proc"):
    parents, comms = _parents(proc_root)
    return {
        "mounts": _mounts(proc_root),
        "bpftrace": sorted(pid for pid, comm in comms.items() if comm == "bpftrace"),
        "children": _descendants(root_pid or os.getpid(), parents, comms),
        "scratch": sorted(path for pattern in SCRATCH_GLOBS for path in glob.glob(pattern)),
    }


def leaks(before, after):
    """Human-readable lines for everything ``after`` has that ``before`` did not."""
    problems = []
    old = list(before["mounts"])
    for mount in after["mounts"]:
        if mount[1] == "tracefs":
            continue  # contention_probe mounts tracefs when it is missing, on purpose, and says so
        if mount in old:
            old.remove(mount)  # stacked mounts on one point count one by one
        else:
            problems.append("mount left behind: %s (%s from %s)" % mount)
    for pid in sorted(set(after["bpftrace"]) - set(before["bpftrace"])):
        problems.append("bpftrace still running: pid %d" % pid)
    for pid, comm in sorted(after["children"].items()):
        if pid not in before["children"]:
            problems.append("process left behind: pid %d (%s)" % (pid, comm))
    for path in sorted(set(after["scratch"]) - set(before["scratch"])):
        problems.append("scratch path left behind: %s" % path)
    return problems

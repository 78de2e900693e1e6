"""Bounded workloads for the contention probe's tests and benchmark, in private namespaces.

``Host(mode, seconds)`` starts ``unshare --mount --pid --fork --mount-proc python3
tests/probe_workload.py MODE SECONDS ...``: a simulated host whose pid namespace init is this
script. Everything it creates (mounts, mount namespaces, helper processes) lives inside that
pid namespace and private mount namespace and disappears when init exits, so nothing can leak
into the machine. The workload stops by itself after SECONDS; ``Host.stop()`` (also on
``__exit__``) kills the process group anyway.

Modes (all stop at the deadline):
- ``idle``: sleeps.
- ``storm``: WORKERS processes, each in its own mount namespace (unshare(CLONE_NEWNS)), loop
  mount(tmpfs)/umount2 on a private tmpfs, and every ``--unshare-every`` iterations
  unshare(CLONE_NEWNS) again (namespace copies): parallel mount/umount/unshare under the
  global locks.
- ``readers``: a shared tree of MOUNTS tmpfs submounts, PEERS namespaces that joined its peer
  groups (sleepers), and READERS processes in rslave copies reading /proc/self/mountinfo in a
  loop: the get_dominating_id() path of DESIGN.md §1.

The script prints ``ready`` once set up, and, at the end, a JSON line with the number of
operations it completed (the benchmark's throughput).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
CLONE_NEWNS = 0x00020000
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
BASE = "/mnt"  # a private tmpfs is mounted over it inside the scenario's namespace

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def sys_mount(source, target, fstype, flags=0, data=None):
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        "mount %s" % target,
    )


def sys_umount(target):
    _check(_libc.umount2(target.encode(), 0), "umount %s" % target)


def sys_unshare_mnt():
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")


def _fork(body):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            body()
        except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
            code = 1
        os._exit(code)
    return pid


# --- inside the scenario -------------------------------------------------------------------


def storm_worker(index, deadline, unshare_every, result_fd):
    sys_unshare_mnt()
    sys_mount(None, "/", None, MS_REC | MS_PRIVATE)
    base = os.path.join(BASE, "w%d" % index)
    os.mkdir(base)
    target = os.path.join(base, "t")
    os.mkdir(target)
    ops = rounds = 0
    while time.monotonic() < deadline:
        sys_mount("storm", target, "tmpfs", 0, "size=16k")
        sys_umount(target)
        ops += 2
        rounds += 1
        if unshare_every and rounds % unshare_every == 0:
            sys_unshare_mnt()
            ops += 1
    os.write(result_fd, b"%d\n" % ops)


def run_storm(args, deadline):
    read_fd, write_fd = os.pipe()
    pids = [
        _fork(lambda i=i: storm_worker(i, deadline, args.unshare_every, write_fd))
        for i in range(args.workers)
    ]
    os.close(write_fd)
    print("ready", flush=True)
    for pid in pids:
        os.waitpid(pid, 0)
    with os.fdopen(read_fd) as results:
        return sum(int(line) for line in results if line.strip())


def _sleeper_in_new_ns(slave):
    def body():
        sys_unshare_mnt()
        if slave:
            sys_mount(None, BASE, None, MS_REC | MS_SLAVE)
        os.execv("/bin/sleep", ["sleep", "600"])

    return body


def reader(deadline, result_fd):
    sys_unshare_mnt()
    sys_mount(None, BASE, None, MS_REC | MS_SLAVE)
    reads = 0
    while time.monotonic() < deadline:
        with open("/proc/self/mountinfo", "rb") as handle:
            while handle.read(65536):
                pass
        reads += 1
    os.write(result_fd, b"%d\n" % reads)


def run_readers(args, deadline):
    tree = os.path.join(BASE, "tree")
    os.mkdir(tree)
    sys_mount("tree", tree, "tmpfs", 0, "size=64k")
    sys_mount(None, tree, None, MS_SHARED)
    for i in range(args.mounts):
        path = os.path.join(tree, "m%03d" % i)
        os.mkdir(path)
        sys_mount("sub", path, "tmpfs", 0, "size=16k")
    sleepers = [_fork(_sleeper_in_new_ns(slave=False)) for _peer in range(args.peers)]
    time.sleep(0.2)
    read_fd, write_fd = os.pipe()
    pids = [_fork(lambda: reader(deadline, write_fd)) for _reader in range(args.readers)]
    os.close(write_fd)
    print("ready", flush=True)
    for pid in pids:
        os.waitpid(pid, 0)
    for pid in sleepers:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with os.fdopen(read_fd) as results:
        return sum(int(line) for line in results if line.strip())


def scenario_main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["idle", "storm", "readers"])
    parser.add_argument("seconds", type=float)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--unshare-every", type=int, default=50)
    parser.add_argument("--mounts", type=int, default=40)
    parser.add_argument("--peers", type=int, default=60)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.0, help="wait this long after ready")
    args = parser.parse_args(argv)
    sys_mount(None, "/", None, MS_REC | MS_PRIVATE)
    sys_mount("probe-workload", BASE, "tmpfs", 0, "size=1m")
    if args.delay:
        time.sleep(args.delay)
    deadline = time.monotonic() + args.seconds
    if args.mode == "idle":
        print("ready", flush=True)
        time.sleep(max(0.0, deadline - time.monotonic()))
        ops = 0
    elif args.mode == "storm":
        ops = run_storm(args, deadline)
    else:
        ops = run_readers(args, deadline)
    print(json.dumps({"mode": args.mode, "ops": ops, "seconds": args.seconds}), flush=True)
    return 0


# --- outside: the test/bench side ----------------------------------------------------------


class Host:
    """A simulated host running one workload; use as a context manager."""

    def __init__(self, mode, seconds, **options):
        self.mode = mode
        self.seconds = seconds
        self.options = options
        self.proc = None
        self.result = None

    def start(self, ready_timeout=30.0):
        cmd = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", sys.executable, HERE, self.mode]
        cmd.append(str(self.seconds))
        for key, value in self.options.items():
            cmd.extend(["--" + key.replace("_", "-"), str(value)])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        line = self.proc.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError("workload %s did not start: %r" % (self.mode, line))
        return self

    @property
    def pidns_pid(self):
        """A pid inside the scenario's pid namespace (its init), for ``scope_pid``."""
        return init_pid_of(self.proc.pid)

    def wait(self, timeout=None):
        out, _err = self.proc.communicate(timeout=timeout)
        for line in out.splitlines():
            if line.startswith("{"):
                self.result = json.loads(line)
        return self.result

    def stop(self):
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def init_pid_of(unshare_pid, timeout=5.0):
    """The forked child of ``unshare --fork`` (pid 1 of the new pid namespace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == unshare_pid:
                return int(entry)
        time.sleep(0.01)
    raise RuntimeError("no child of unshare %d" % unshare_pid)


if __name__ == "__main__":
    sys.exit(scenario_main(sys.argv[1:]))

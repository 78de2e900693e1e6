"""Build a real mount-namespace scenario inside a private mount+pid namespace and collect it.

Run as root through :func:`run_scenario`: it starts
``unshare --mount --pid --fork --mount-proc python3 tests/nsscenario.py SPEC`` so that the
scenario's /proc holds only its own processes, and everything (mounts, namespaces, sleepers)
disappears when that pid namespace's init exits. Nothing can leak into the machine.

Inside, under a private tmpfs at ``BASE``:
- ``BASE/tree``: a tmpfs made shared, with ``mounts`` shared submounts (optional odd names:
  a space, a newline, non-UTF-8 bytes);
- ``peers`` namespaces cloned with propagation unchanged (they join every peer group);
- ``slaves`` namespaces whose copies are made rslave (receivers of the tree's groups);
- ``privates`` namespaces made rprivate;
- ``pinned``: namespaces kept alive only by an nsfs bind mount under ``BASE/pins``;
- ``runc_state``: a fake runc state dir naming one peer as container ``ctr-test``.

The script prints one JSON object: the ground truth read from the kernel (roles -> namespace
inodes, mount counts) and the collector's results for each requested backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BASE = "/run/mountops-test"
# A throwaway mount+pid namespace: everything in it dies with its init, nothing can leak.
ISOLATED = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
_CHILDREN = []  # Popen objects kept referenced: a collected Popen gets reaped, and zombies must stay
ODD_NAMES = (b"dir with space", b"new\nline", b"bad\xffutf8", b"tab\there", b"back\\slash")


def _mount(*args):
    subprocess.run(("mount",) + args, check=True)


def _ns_inode(pid):
    return os.stat("/proc/%d/ns/mnt" % pid).st_ino


def _wait_unshared(proc, parent_inode, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            inode = _ns_inode(proc.pid)
        except OSError:
            inode = None
        if inode is not None and inode != parent_inode:
            # unshare(1) execs sleep after it changed propagation; wait for the exec too.
            with open("/proc/%d/comm" % proc.pid) as handle:
                if handle.read().strip() == "sleep":
                    return inode
        if proc.poll() is not None:
            raise RuntimeError("namespace helper exited early: %s" % proc.returncode)
        time.sleep(0.002)
    raise RuntimeError("namespace helper did not unshare in time")


def build(spec):
    # /run is shadowed by a tmpfs of this private namespace first, so BASE's mount point is never
    # created on the machine's own /run (where it would outlive the scenario).
    _mount("-t", "tmpfs", "-o", "size=1m", "mountops-run", os.path.dirname(BASE))
    os.makedirs(BASE)
    _mount("-t", "tmpfs", "-o", "size=1m", "mountops-base", BASE)
    _mount("--make-private", BASE)
    tree = os.path.join(BASE, "tree")
    os.mkdir(tree)
    _mount("-t", "tmpfs", "-o", "size=1m", "tree", tree)
    _mount("--make-shared", tree)
    names = [b"m%03d" % i for i in range(spec.get("mounts", 5))]
    if spec.get("odd_paths"):
        names.extend(ODD_NAMES)
    for name in names:
        path = os.path.join(tree.encode(), name)
        os.mkdir(path)
        # mount(8) would mangle the odd names; the libc call takes the bytes as they are.
        _libc_mount(b"sub", path, b"tmpfs", b"size=64k")
    me = _ns_inode(os.getpid())
    roles = {"host": [me], "peer": [], "slave": [], "private": [], "pinned": []}
    procs = []
    for role, propagation in (("peer", "unchanged"), ("slave", "slave"), ("private", "private")):
        for _index in range(spec.get(role + "s", 0)):
            proc = subprocess.Popen(["unshare", "--mount", "--propagation", propagation, "sleep", "600"])
            procs.append(proc)
            roles[role].append(_wait_unshared(proc, me))
    for _index in range(spec.get("zombies", 0)):
        procs.append(subprocess.Popen(["true"]))  # never waited for: a zombie during the scan
    time.sleep(0.05 if spec.get("zombies") else 0)
    pins = os.path.join(BASE, "pins")
    os.mkdir(pins)
    for index in range(spec.get("pinned", 0)):
        pin = os.path.join(pins, "ns%d" % index)
        open(pin, "w").close()
        roles["pinned"].append(_pin_new_namespace(pin, me))
    run_root = os.path.join(BASE, "run")
    if spec.get("runc_state") and procs:
        state_dir = os.path.join(run_root, "runc", "ctr-test")
        os.makedirs(state_dir)
        with open(os.path.join(state_dir, "state.json"), "w") as handle:
            json.dump({"id": "ctr-test", "init_process_pid": procs[0].pid}, handle)
    _CHILDREN.extend(procs)
    # Ground truth for table sizes, read the ordinary way (buffered read to EOF).
    truth = {me: _line_count("/proc/self/mountinfo")}
    for proc in procs:
        try:
            truth[_ns_inode(proc.pid)] = _line_count("/proc/%d/mountinfo" % proc.pid)
        except OSError:
            continue  # zombies
    roles["mount_counts"] = {str(inode): count for inode, count in truth.items()}
    return roles, run_root, names


def _line_count(path):
    with open(path, "rb") as handle:
        return handle.read().count(b"\n")


def _pin_new_namespace(pin, parent_inode, attempts=8):
    """Keep a fresh namespace alive only through an nsfs bind mount on ``pin``.

    The kernel refuses (EINVAL, ``mnt_ns_loop``) to bind a namespace whose id is not above the
    caller's. Since 6.18 namespace ids come from per-CPU batches, so a namespace created later
    on another CPU can get a smaller id than ours: whether the bind works depends on which CPU
    each namespace was born on. Ids from one CPU always grow, so trying each allowed CPU in turn
    succeeds within one round.
    """
    cpus = sorted(os.sched_getaffinity(0))
    for attempt in range(attempts):
        cpu = cpus[attempt % len(cpus)]
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "unchanged", "sleep", "600"],
            preexec_fn=lambda cpu=cpu: os.sched_setaffinity(0, {cpu}),  # noqa: PLW1509 - affinity only
        )
        try:
            _wait_unshared(proc, parent_inode)
            done = subprocess.run(
                ["mount", "--bind", "/proc/%d/ns/mnt" % proc.pid, pin], capture_output=True, check=False
            )
        finally:
            proc.kill()
            proc.wait()
        if done.returncode == 0:
            return os.stat(pin).st_ino
    raise RuntimeError(
        "could not pin a namespace on %s after %d attempts on CPUs %s: %s"
        % (pin, attempts, cpus, done.stderr.decode(errors="replace"))
    )


def _libc_mount(source, target, fstype, data):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source, target, fstype, 0, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "mount %r: %s" % (target, os.strerror(err)))


def collect_all(spec, run_root):
    sys.path.insert(0, os.path.join(REPO, ".collections"))
    from ansible_collections.mountops.fleet.plugins.module_utils import _namespaces, _propagation

    results = {}
    for backend in spec.get("backends", ["mountinfo"]):
        collection = _namespaces.collect(
            proc_root="/proc",
            run_root=run_root,
            backend=backend,
            max_namespaces=spec.get("max_namespaces", 0),
            time_budget_ms=spec.get("time_budget_ms", 0),
        )
        facts = _propagation.analyse(
            collection, mount_max=100000, top_n=spec.get("top_n", 10), detail=spec.get("detail", False)
        )
        facts["raw"] = {
            str(ns.inode): sorted(
                [
                    m.mount_id,
                    m.parent_id,
                    m.mount_point.decode("latin-1"),
                    m.shared,
                    m.master,
                    m.unbindable,
                    m.fstype,
                ]
                for m in ns.mounts
            )
            for ns in collection.namespaces
            if ns.mounts is not None and spec.get("raw")
        }
        results[backend] = facts
    return results


def main():
    spec = json.loads(sys.argv[1])
    roles, run_root, names = build(spec)
    out = {"roles": roles, "tree_mounts": 1 + len(names), "results": collect_all(spec, run_root)}
    json.dump(out, sys.stdout)


def run_scenario(spec, timeout=300, born_on_cpu=None):
    """Run a scenario in a throwaway mount+pid namespace and return its JSON result.

    ``born_on_cpu`` creates the throwaway namespace on that CPU, then lets the scenario run on
    every CPU again: namespace ids come from per-CPU batches, and which CPU a namespace is born
    on decides what the kernel lets the scenario bind (see :func:`_pin_new_namespace`).
    """
    scenario = [sys.executable, os.path.abspath(__file__), json.dumps(spec)]
    widen, preexec = [], None
    if born_on_cpu is not None:
        widen = ["taskset", "--cpu-list", ",".join(map(str, sorted(os.sched_getaffinity(0))))]

        def preexec():
            os.sched_setaffinity(0, {born_on_cpu})

    cmd = ISOLATED + widen + scenario
    done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, preexec_fn=preexec)  # noqa: PLW1509
    if done.returncode != 0:
        raise RuntimeError(
            "scenario failed (%d): %s" % (done.returncode, done.stderr.decode(errors="replace"))
        )
    return json.loads(done.stdout)


if __name__ == "__main__":
    main()

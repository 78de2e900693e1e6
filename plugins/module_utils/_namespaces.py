# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Enumerate every mount namespace under a proc root and read each one's mount table once.

Reading mountinfo takes ``namespace_sem`` shared, so on a contended host the auditor itself is
load: one read per namespace (deduplicated on the nsfs device+inode), in a fixed order (host
first), inside a namespace-count and wall-time budget. Processes come and go during the scan;
those are counted and skipped, never fatal.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import time

from ansible_collections.mountops.fleet.plugins.module_utils._mountinfo import (
    MountinfoError,
    TableScan,
    scan_mountinfo,
)
from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import read_record

_GONE = (errno.ENOENT, errno.ESRCH, errno.EINVAL)  # exited, or a zombie without a mount ns
_DENIED = (errno.EACCES, errno.EPERM)
_READ_ATTEMPTS = 3
CLONE_NEWNS = 0x00020000  # pids of one namespace tried before it counts as skipped

BACKENDS = ("auto", "mountinfo", "statmount")


class CollectorError(Exception):
    """The collection cannot start at all (bad proc_root); the module turns it into fail_json."""


class Owner:
    __slots__ = ("kind", "runtime", "container_id", "unit")

    def __init__(self, kind, runtime=None, container_id=None, unit=None):
        self.kind = kind
        self.runtime = runtime
        self.container_id = container_id
        self.unit = unit

    def to_dict(self):
        return {
            "kind": self.kind,
            "runtime": self.runtime,
            "container_id": self.container_id,
            "unit": self.unit,
        }


class Namespace:
    """One mount namespace: identity, the processes in it, who owns it, and its mounts."""

    __slots__ = ("dev", "inode", "pids", "pid", "comm", "cgroup", "owner", "is_host", "table", "pinned_by")

    def __init__(self, dev, inode, pids=None, is_host=False):
        self.dev = dev
        self.inode = inode
        self.pids = pids if pids is not None else []
        self.pid = None
        self.comm = None
        self.cgroup = None
        self.owner = None
        self.is_host = is_host
        self.table = None  # _mountinfo.TableScan once read
        self.pinned_by = []

    @property
    def mounts(self):
        """Every Mount of the namespace (parsed on demand), or None when it was not read."""
        return self.table.mounts() if self.table is not None else None


class Collection:
    """What a run saw and how it went; the analysis reads only this."""

    def __init__(self, backend):
        self.backend = backend
        self.backend_reason = None
        self.namespaces = []  # Namespace, host first
        self.enumerated = 0  # namespaces found through processes
        self.host_namespace_source = None
        self.processes_scanned = 0
        self.processes_vanished = 0
        self.processes_denied = 0
        self.skipped = []  # namespace inodes that could not be read (all pids gone)
        self.failed = []  # {"namespace": inode, "error": str}
        self.partial = False
        self.partial_reason = None
        self.not_read = 0  # namespaces left unread by the budget
        self.duration_ms = 0.0
        self.calibration = None
        self.warnings = []


# --- owner attribution -------------------------------------------------------------------

_HEX_ID = r"([0-9a-f]{12,64})"
# (runtime, regex on the cgroup path), first match wins. Container IDs are 64 hex chars for
# docker/containerd/CRI-O/podman; cgroupfs and systemd drivers name them differently.
_CGROUP_RUNTIMES = (
    ("docker", re.compile(r"/docker-" + _HEX_ID + r"\.scope")),
    ("docker", re.compile(r"/docker/" + _HEX_ID + r"(?:/|$)")),
    ("containerd", re.compile(r"/cri-containerd-" + _HEX_ID + r"\.scope")),
    ("cri-o", re.compile(r"/crio-(?!conmon-)" + _HEX_ID + r"\.scope")),
    ("podman", re.compile(r"/libpod-(?!conmon-)" + _HEX_ID + r"\.scope")),
    ("kubernetes", re.compile(r"/kubepods[^\n]*/pod[0-9a-f_-]+/" + _HEX_ID + r"(?:/|$)")),
)
# containerd's cgroupfs layout, /<containerd namespace>/<id>, is generic enough that any runc
# container with cgroupsPath /<word>/<hex> matches it: consulted only after runc's state.
_CGROUPFS_CONTAINERD = re.compile(r"^/[A-Za-z0-9._-]+/" + _HEX_ID + r"$")
_SERVICE_RE = re.compile(r"/([^/]+\.service)(?:/|$)")
# System containers name themselves, not by a hex id: LXC/Incus/LXD (lxc.payload.NAME, and
# lxc/NAME in the older layout) and systemd-nspawn (machine-NAME.scope, with \x2d for '-').
_NAMED_CONTAINERS = (
    ("lxc", re.compile(r"/lxc\.payload\.([^/]+)(?:/|$)")),
    ("lxc", re.compile(r"^/lxc/([^/]+)(?:/|$)")),
    ("systemd-nspawn", re.compile(r"/machine\.slice/machine-((?!libpod-)[^/]+)\.scope(?:/|$)")),
)
# Runtime processes caught between unshare() and exec: the init of a container being created
# (runc names its stages runc:[0:PARENT], runc:[1:CHILD], runc:[2:INIT]; crun keeps its name).
_RUNTIME_COMMS = (("runc", re.compile(r"^runc:\[\d:[A-Z]+\]$")), ("crun", re.compile(r"^crun$")))

# runc keeps state.json (with the init pid) under its --root; runtimes pick their own roots.
RUNC_STATE_GLOBS = (
    ("runc", "runc/*/state.json"),
    ("docker", "docker/runtime-runc/*/*/state.json"),
    ("containerd", "containerd/runc/*/*/state.json"),
)


_UNIFIED_RE = re.compile(r"^0::(.*)$", re.M)
_V1_RE = re.compile(r"^\d+:[^:\n]*:(/[^\n]*)$", re.M)


def cgroup_path(text):
    """The unified (v2) path from /proc/PID/cgroup, else the first v1 path naming a hierarchy."""
    match = _UNIFIED_RE.search(text) or _V1_RE.search(text)
    return match.group(1) if match else None


def classify_owner(cgroup, comm, is_host, runc=None):
    """Attribute a namespace to host / container / service / other, from cgroup path and comm.

    ``runc`` is ``(runtime, container_id)`` when a runc state dir names one of the namespace's
    pids as a container init; an engine-specific cgroup name wins over it because it also says
    which engine asked runc to start the container, but runc's state wins over the generic
    cgroupfs ``/<ns>/<id>`` shape.
    """
    if is_host:
        return Owner("host")
    path = cgroup or ""
    for runtime, pattern in _CGROUP_RUNTIMES:
        match = pattern.search(path)
        if match:
            return Owner("container", runtime=runtime, container_id=match.group(1))
    if runc is not None:
        return Owner("container", runtime=runc[0], container_id=runc[1])
    match = _CGROUPFS_CONTAINERD.search(path)
    if match:
        return Owner("container", runtime="containerd", container_id=match.group(1))
    for runtime, pattern in _NAMED_CONTAINERS:
        match = pattern.search(path)
        if match:
            return Owner("container", runtime=runtime, container_id=match.group(1).replace("\\x2d", "-"))
    for runtime, pattern in _RUNTIME_COMMS:
        if comm and pattern.match(comm):
            return Owner("container", runtime=runtime)
    service = _SERVICE_RE.findall(path)
    if service:
        return Owner("service", unit=service[-1])
    return Owner("other")


def runc_init_pids(run_root):
    """Map container init pid -> (runtime, id) from runc state dirs under ``run_root``."""
    found = {}
    for runtime, pattern in RUNC_STATE_GLOBS:
        for path in glob.glob(os.path.join(run_root, pattern)):
            try:
                with open(path, "rb") as handle:
                    state = json.load(handle)
                found.setdefault(int(state["init_process_pid"]), (runtime, state.get("id")))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return found


# --- enumeration and reading -------------------------------------------------------------


def _read_bytes(path, chunk=1 << 17):
    """Whole-file read with plain syscalls: no buffered-reader set-up per file (hot path).

    procfs seq_files return short reads long before the end (a page or a few records at a
    time), so only an empty read means end of file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = []
        while True:
            data = os.read(fd, chunk)
            if not data:
                return b"".join(parts)
            parts.append(data)
    finally:
        os.close(fd)


def namespace_key(proc_root, pid):
    st = os.stat("%s/%s/ns/mnt" % (proc_root, pid))
    return st.st_dev, st.st_ino


def host_namespace(proc_root, key_of):
    """The host mount namespace: PID 1's, else kthreadd's (kernel threads live in the initial one).

    ``key_of(pid)`` returns the namespace key of a pid or raises OSError. PID 1 can be unreadable
    even to root (a non-dumpable init in a sandbox); PID 2 is kthreadd only in the initial PID
    namespace, so its comm is checked before it is trusted. Returns ``(key, source)``; raises
    PID 1's OSError when neither is readable. Shared by every collector that needs the host.
    """
    try:
        return key_of(1), "pid 1"
    except OSError as err:
        first_error = err
    if read_record("%s/2/comm" % proc_root) == "kthreadd":
        try:
            return key_of(2), "kthreadd (pid 1 unreadable: %s)" % first_error.strerror
        except OSError:
            pass
    raise first_error


def _host_key(proc_root, collection):
    """host_namespace(); without root neither PID 1 nor kthreadd is readable, so the caller's
    own namespace is assumed, and a warning says so."""
    try:
        key, source = host_namespace(proc_root, lambda pid: namespace_key(proc_root, pid))
    except OSError as err:
        first_error = err
    else:
        collection.host_namespace_source = source
        if source != "pid 1":
            collection.warnings.append(
                "%s/1/ns/mnt is unreadable; the host namespace is %s" % (proc_root, source)
            )
        return key
    try:
        key = namespace_key(proc_root, "self")
    except OSError:
        raise CollectorError(
            "cannot identify the host mount namespace from %s/1/ns/mnt: %s"
            % (proc_root, first_error.strerror)
        ) from None
    collection.host_namespace_source = "self (assumed; pid 1 unreadable: %s)" % first_error.strerror
    collection.warnings.append(
        "%s/1/ns/mnt is unreadable (%s); assuming this process runs in the host mount namespace"
        % (proc_root, first_error.strerror)
    )
    return key


def enumerate_namespaces(proc_root, collection):
    """Group all pids under proc_root by mount namespace; the host namespace comes first."""
    try:
        names = os.listdir(proc_root)
    except OSError as err:
        raise CollectorError("cannot list proc_root %s: %s" % (proc_root, err.strerror)) from None
    pids = sorted(int(name) for name in names if name.isdigit())
    if not pids:
        raise CollectorError("proc_root %s has no process directories; is it a procfs mount?" % proc_root)
    host_key = _host_key(proc_root, collection)
    by_key = {}
    for pid in pids:
        collection.processes_scanned += 1
        try:
            key = namespace_key(proc_root, pid)
        except OSError as err:
            if err.errno in _DENIED:
                collection.processes_denied += 1
            else:
                collection.processes_vanished += 1
            continue
        ns = by_key.get(key)
        if ns is None:
            ns = by_key[key] = Namespace(key[0], key[1], is_host=key == host_key)
        ns.pids.append(pid)
    ordered = sorted(by_key.values(), key=lambda n: (not n.is_host, n.pids[0]))
    return ordered


def read_mountinfo(proc_root, ns):
    """Read one namespace through the first of its pids that is still in it afterwards."""
    for pid in ns.pids[:_READ_ATTEMPTS]:
        path = "%s/%d/mountinfo" % (proc_root, pid)
        try:
            data = _read_bytes(path)
            if namespace_key(proc_root, pid) != (ns.dev, ns.inode):
                continue  # the pid was reused or setns()-ed away while we read
        except OSError as err:
            if err.errno in _GONE or err.errno in _DENIED:
                continue
            raise
        return pid, scan_mountinfo(data, path)
    return None, None


def read_statmount(reader, proc_root, ns):
    for pid in ns.pids[:_READ_ATTEMPTS]:
        try:
            fd = os.open("%s/%d/ns/mnt" % (proc_root, pid), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            if err.errno in _GONE or err.errno in _DENIED:
                continue
            raise
        try:
            if os.fstat(fd).st_ino != ns.inode:
                continue
            return pid, TableScan.from_mounts(reader.read_namespace(fd))
        finally:
            os.close(fd)
    return None, None


def _attribute(proc_root, ns, runc_pids):
    base = "%s/%d/" % (proc_root, ns.pid if ns.pid is not None else ns.pids[0])
    ns.comm = read_record(base + "comm")
    cgroup_text = read_record(base + "cgroup")
    ns.cgroup = cgroup_path(cgroup_text) if cgroup_text else None
    runc = None
    for pid in ns.pids:
        if pid in runc_pids:
            runc = runc_pids[pid]
            break
    ns.owner = classify_owner(ns.cgroup, ns.comm, ns.is_host, runc)


def _calibrate(reader, proc_root, namespaces):
    """Time both backends on the host namespace and the first other one.

    Returns the faster backend, the timings, and that backend's reads of those namespaces, so
    the collection does not read them a third time.
    """
    timings = {"mountinfo": 0.0, "statmount": 0.0}
    reads = {"mountinfo": {}, "statmount": {}}
    for ns in namespaces[:2]:
        for name in ("statmount", "mountinfo"):
            start = time.perf_counter()
            try:
                if name == "mountinfo":
                    reads[name][ns.inode] = read_mountinfo(proc_root, ns)
                else:
                    reads[name][ns.inode] = read_statmount(reader, proc_root, ns)
            except (OSError, MountinfoError):
                pass  # the collection reads it again and records the failure
            timings[name] += time.perf_counter() - start
    choice = min(timings, key=timings.get)
    return choice, {k: round(v * 1000.0, 3) for k, v in timings.items()}, reads[choice]


def choose_backend(requested, proc_root, namespaces):
    """Resolve ``auto``: statmount when the kernel serves it and it measured cheaper here.

    Returns (backend, statmount reader or None, reason, calibration timings or None, reads
    already made: namespace inode -> (pid, table)).
    """
    from ansible_collections.mountops.fleet.plugins.module_utils import _statmount

    if requested == "mountinfo":
        return "mountinfo", None, "requested", None, {}
    reader, why = _statmount.probe()
    if reader is None:
        if requested == "statmount":
            raise CollectorError("backend=statmount requested but %s" % why)
        return "mountinfo", None, why, None, {}
    if requested == "statmount":
        return "statmount", reader, "requested", None, {}
    choice, timings, reads = _calibrate(reader, proc_root, namespaces)
    reason = "measured cheaper on %d namespace(s): mountinfo %.3f ms, statmount %.3f ms" % (
        min(2, len(namespaces)),
        timings["mountinfo"],
        timings["statmount"],
    )
    return choice, reader if choice == "statmount" else None, reason, timings, reads


def collect(
    proc_root="/proc",
    run_root="/run",
    backend="auto",
    max_namespaces=0,
    time_budget_ms=0,
    clock=time.monotonic,
):
    """Enumerate and read every mount namespace under proc_root within the budget.

    ``max_namespaces``/``time_budget_ms`` of 0 mean unlimited. The host namespace is always read
    first so that a partial collection still answers the most important questions.
    """
    if backend not in BACKENDS:
        raise CollectorError("unknown backend %r (choose from %s)" % (backend, ", ".join(BACKENDS)))
    if not os.path.isdir(proc_root):
        raise CollectorError("proc_root %s does not exist or is not a directory" % proc_root)
    proc_root = proc_root.rstrip("/") or "/"  # paths below are built by formatting (hot path)
    started = clock()
    collection = Collection(backend)
    namespaces = enumerate_namespaces(proc_root, collection)
    collection.enumerated = len(namespaces)
    name, reader, reason, timings, reads = choose_backend(backend, proc_root, namespaces)
    collection.backend, collection.backend_reason, collection.calibration = name, reason, timings
    runc_pids = runc_init_pids(run_root)
    deadline = started + time_budget_ms / 1000.0 if time_budget_ms else None
    for index, ns in enumerate(namespaces):
        over_count = max_namespaces and index >= max_namespaces
        over_time = deadline is not None and index > 0 and clock() >= deadline
        if over_count or over_time:
            collection.partial = True
            collection.partial_reason = "max_namespaces" if over_count else "time_budget_ms"
            collection.not_read = len(namespaces) - index
            break
        try:
            if ns.inode in reads:
                ns.pid, ns.table = reads.pop(ns.inode)
            elif name == "statmount":
                ns.pid, ns.table = read_statmount(reader, proc_root, ns)
            else:
                ns.pid, ns.table = read_mountinfo(proc_root, ns)
        except (OSError, MountinfoError) as err:
            collection.failed.append({"namespace": ns.inode, "error": str(err)})
            continue
        if ns.table is None:
            collection.skipped.append(ns.inode)
            continue
        _attribute(proc_root, ns, runc_pids)
        collection.namespaces.append(ns)
    _find_pinned(proc_root, collection, reader)
    if collection.processes_denied:
        advice = (
            "even as root (protected processes such as a sandbox init)"
            if os.geteuid() == 0
            else "run as root for a complete picture"
        )
        collection.warnings.append(
            "%d processes could not be inspected (permission denied); %s"
            % (collection.processes_denied, advice)
        )
    collection.duration_ms = round((clock() - started) * 1000.0, 3)
    return collection


def _find_pinned(proc_root, collection, reader):
    """Namespaces kept alive only by an nsfs bind mount (``mnt:[INO]`` roots) have no process.

    They are reported with the bind mounts that pin them, and their mount table is read through
    the bind mount: statmount by namespace ID, or mountinfo from a child that setns()-es into it.
    """
    known = {ns.inode for ns in collection.namespaces}
    known.update(collection.skipped)
    pinned = {}
    for ns in collection.namespaces:
        for target, mount_point in ns.table.pins:
            if target in known:
                continue
            holder = pinned.get(target)
            if holder is None:
                holder = pinned[target] = Namespace(ns.dev, target)
                holder.owner = Owner("pinned")
            holder.pinned_by.append((ns.inode, ns.pid, mount_point))
    for holder in pinned.values():
        _read_pinned(reader, proc_root, holder)
        collection.namespaces.append(holder)


def _read_pinned(reader, proc_root, holder):
    for _ns_inode, pid, mount_point in holder.pinned_by:
        path = os.path.join(proc_root, str(pid), "root").encode() + mount_point
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_ino != holder.inode:
                continue  # unmounted or replaced since we read the pinning namespace
            if reader is not None:
                holder.table = TableScan.from_mounts(reader.read_namespace(fd))
            else:
                holder.table = scan_mountinfo(
                    _mountinfo_via_setns(proc_root, fd), "pinned mnt:[%d]" % holder.inode
                )
            return
        except (OSError, MountinfoError):
            continue
        finally:
            os.close(fd)


def _mountinfo_via_setns(proc_root, ns_fd):
    """Read the mountinfo of the namespace behind ``ns_fd`` from a forked child that joins it.

    setns(CLONE_NEWNS) needs a single-threaded caller and changes the caller's root, so it is
    done in a throwaway child; the child reads its own mountinfo through a proc directory fd
    opened before the switch (the target namespace need not have /proc mounted).
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        status = 1
        try:
            os.close(read_end)
            proc_dir = os.open(os.path.join(proc_root, str(os.getpid())), os.O_RDONLY | os.O_DIRECTORY)
            if libc.setns(ns_fd, CLONE_NEWNS) == 0:
                info = os.open("mountinfo", os.O_RDONLY, dir_fd=proc_dir)
                while True:
                    chunk = os.read(info, 1 << 16)
                    if not chunk:
                        break
                    os.write(write_end, chunk)
                status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        chunks.append(pipe.read())
    _pid, status = os.waitpid(pid, 0)
    if status != 0:
        raise OSError(errno.EPERM, "could not enter pinned namespace (setns failed)")
    return b"".join(chunks)

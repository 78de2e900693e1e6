# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the contention probe for a bounded time, then analyse what it printed.

``run_bpftrace`` is the only part that touches the system. ``analyse`` and ``verdict`` are pure
(parsed output + plan + CPU -> node map in, result dict out) and tested on captured output.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import time

from ansible_collections.mountops.fleet.plugins.module_utils import _probe_parse as parse
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_programs as programs

# --------------------------------------------------------------------------------------------
# Running bpftrace
# --------------------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1


class ProbeRun:
    """What one bpftrace run left: raw output, how it stopped, how long it took."""

    def __init__(self, stdout, stderr, returncode, stopped_by, wall_s, pid):
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode
        self.stopped_by = stopped_by
        self.wall_s = wall_s
        self.pid = pid


class ProbeInterrupted(Exception):
    """The module got SIGTERM/SIGHUP while bpftrace ran (Ansible task timeout, ^C on ssh)."""


def _die_with_parent(parent_pid):
    """preexec_fn: let the kernel SIGKILL bpftrace if the module process dies for any reason."""

    def _set():
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:  # noqa: BLE001 - best effort; the in-program exit() still bounds it
            pass
        if os.getppid() != parent_pid:
            os._exit(1)

    return _set


def _raise_terminated(signum, frame):
    raise ProbeInterrupted("signal %d" % signum)


def run_bpftrace(bpftrace, program, timeout, grace=5.0, env=None):
    """Run ``bpftrace -f json -`` with ``program`` on stdin; never leave the process behind.

    Why not ``module.run_command``: a bounded tracer needs (1) SIGINT first, so bpftrace runs END
    and prints the maps it has (a timeout still yields a partial result), then SIGKILL after
    ``grace``; (2) its own process group, so the signal reaches everything it started; (3)
    PR_SET_PDEATHSIG, so even a SIGKILLed module cannot orphan a tracer that keeps programs
    attached. run_command offers none of these. The program also bounds itself (``interval``
    + ``exit()``); this is the outside bound.
    """
    started = time.monotonic()
    run_env = dict(os.environ)
    run_env.update(env or {})
    run_env["LC_ALL"] = "C"
    proc = subprocess.Popen(
        [bpftrace, "-f", "json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=run_env,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - single-threaded module
    )
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        # Outside the main thread (a test runner) signal() raises: keep the default handlers.
        with contextlib.suppress(ValueError, OSError):
            previous[signum] = signal.signal(signum, _raise_terminated)
    stopped_by = "exit"
    stdout = stderr = b""
    try:
        try:
            stdout, stderr = proc.communicate(program.encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            stopped_by = "timeout"
            _signal_group(proc, signal.SIGINT)
            try:
                stdout, stderr = proc.communicate(timeout=grace)
            except subprocess.TimeoutExpired:
                stopped_by = "killed"
                _signal_group(proc, signal.SIGKILL)
                stdout, stderr = proc.communicate()
    except BaseException:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    return ProbeRun(stdout, stderr, proc.returncode, stopped_by, time.monotonic() - started, proc.pid)


def _signal_group(proc, signum):
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------

# Functions of fs/namespace.c and fs/pnode.c (and the mount syscalls' entry stubs) whose presence
# in a lock-wait stack attributes the wait to the mount code (DESIGN.md §4).
MOUNT_FUNCTIONS = frozenset(
    (
        "copy_mnt_ns",
        "copy_tree",
        "clone_mnt",
        "alloc_vfsmnt",
        "free_vfsmnt",
        "delayed_free_vfsmnt",
        "mnt_free_id",
        "mnt_alloc_id",
        "mntput_no_expire",
        "mntput",
        "namespace_unlock",
        "cleanup_mnt",
        "delayed_mntput",
        "attach_recursive_mnt",
        "path_mount",
        "path_umount",
        "do_mount",
        "do_new_mount",
        "do_new_mount_fc",
        "do_loopback",
        "do_move_mount",
        "do_move_mount_old",
        "do_change_type",
        "do_reconfigure_mnt",
        "do_remount",
        "do_umount",
        "umount_tree",
        "graft_tree",
        "lock_mount",
        "do_lock_mount",
        "unlock_mount",
        "mnt_set_mountpoint",
        "commit_tree",
        "put_mnt_ns",
        "free_mnt_ns",
        "mnt_ns_release",
        "show_mountinfo",
        "show_vfsmnt",
        "mounts_open_common",
        "m_start",
        "get_dominating_id",
        "vfs_create_mount",
        "fc_mount",
        "do_mount_setattr",
        "mount_setattr_prepare",
        "open_detached_copy",
        "__do_loopback",
        "drop_collected_mounts",
        "dissolve_on_fput",
        "do_set_group",
        "__legitimize_mnt",
        "legitimize_mnt",
        "mnt_get_count",
        "may_umount_tree",
        "create_new_namespace",
        "do_statmount",
        "do_listmount",
        "grab_requested_mnt_ns",
    )
)
MOUNT_PREFIXES = ("propagate_", "namespace_", "umount_", "__detach_mounts", "detach_mounts")
_SYSCALL_STUB_RE = re.compile(
    r"^__(?:x64|arm64|ia32|se|do|riscv|s390x)_sys_"
    r"(?:mount|umount|oldumount|open_tree|open_tree_attr|move_mount|mount_setattr|fsmount|fspick|"
    r"statmount|listmount)$"
)
_FRAME_RE = re.compile(r"^(?P<name>[^+\s]+)(?:\+(?P<off>\w+))?")
_SYMBOL_SUFFIX_RE = re.compile(r"(?:\.(?:isra|constprop|part|cold|llvm)\.\d+)+$")

# Lock kind from the slow-path frame at the top of the stack (first match wins).
LOCK_KINDS = (
    ("rwsem_down_write_slowpath", "rwsem-write"),
    ("rwsem_down_read_slowpath", "rwsem-read"),
    ("percpu_rwsem", "percpu-rwsem"),
    ("__mutex_lock", "mutex"),
    ("mutex_lock", "mutex"),
    ("rt_mutex", "rt-mutex"),
    ("queued_read_lock_slowpath", "rwlock-read"),
    ("queued_write_lock_slowpath", "rwlock-write"),
    ("queued_spin_lock_slowpath", "spinlock"),
)

# bpftrace's default BPFTRACE_MAP_KEYS_MAX: a map this full has dropped updates.
MAP_KEYS_MAX = 4096

DEFAULT_THRESHOLDS = {
    "mount_ops_per_sec": {"warn": 100.0, "critical": 1000.0},
    "mount_lock_wait_ms_per_sec": {"warn": 5.0, "critical": 50.0},
    "syscall_p99_ms": {"warn": 10.0, "critical": 100.0},
    "mountinfo_read_ms_per_sec": {"warn": 20.0, "critical": 200.0},
    "min_calls_for_latency": 20,
}


def frame_name(frame):
    """``'get_dominating_id.isra.0+0x12'`` / ``'path_mount+1002'`` -> ``'get_dominating_id'``."""
    match = _FRAME_RE.match(frame.strip())
    if not match:
        return ""
    return _SYMBOL_SUFFIX_RE.sub("", match.group("name"))


def is_mount_frame(name):
    return name in MOUNT_FUNCTIONS or name.startswith(MOUNT_PREFIXES) or bool(_SYSCALL_STUB_RE.match(name))


def stack_frames(stack_text):
    return [line.strip() for line in stack_text.splitlines() if line.strip()]


def lock_kind(frames):
    for frame in frames[:4]:
        name = frame_name(frame)
        for needle, kind in LOCK_KINDS:
            if needle in name:
                return kind
    return "other"


def family_of(field, numbers):
    """A syscall map key field (number or probe name) -> family name, or None."""
    field = field.strip()
    if field.lstrip("-").isdigit():
        wanted = int(field)
        for family, number in (numbers or {}).items():
            if number == wanted and family in programs.SYSCALL_FAMILIES:
                return family
        return None
    for prefix in ("tracepoint:syscalls:sys_enter_", "tracepoint:syscalls:sys_exit_"):
        if field.startswith(prefix):
            return field[len(prefix) :]
    return None


def _ms(ns):
    return round(ns / 1e6, 3)


def _us(ns):
    return None if ns is None else round(ns / 1e3, 1)


def _rate(value, seconds):
    return round(value / seconds, 3) if seconds > 0 else None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def analyse_syscalls(out, plan, seconds, top):
    numbers = plan.get("numbers")
    families = {
        f: {"calls": 0, "completed": 0, "errors": 0, "total_ms": 0.0, "p50_us": None, "p99_us": None}
        for f in plan.get("families", [])
    }
    by_comm, by_ns = {}, {}
    for key, count in (out.get("@sc_calls") or {}).items():
        mntns, field, comm = parse.split_key(key, 3)
        family = family_of(field, numbers)
        if family not in families:
            continue
        families[family]["calls"] += _int(count)
        by_comm.setdefault(comm, {}).setdefault(family, 0)
        by_comm[comm][family] += _int(count)
        by_ns[mntns] = by_ns.get(mntns, 0) + _int(count)
    for field, buckets in (out.get("@sc_lat") or {}).items():
        family = family_of(field, numbers)
        if family in families:
            families[family]["completed"] = parse.hist_total(buckets)
            families[family]["p50_us"] = _us(parse.hist_percentile(buckets, 0.50))
            families[family]["p99_us"] = _us(parse.hist_percentile(buckets, 0.99))
    for field, total in (out.get("@sc_ns") or {}).items():
        family = family_of(field, numbers)
        if family in families:
            families[family]["total_ms"] = _ms(_int(total))
    for field, errors in (out.get("@sc_err") or {}).items():
        family = family_of(field, numbers)
        if family in families:
            families[family]["errors"] = _int(errors)
    for info in families.values():
        # The per-namespace/comm map can be full (MAP_KEYS_MAX distinct keys; every unshare
        # makes a namespace) while the per-family histogram is not: never report fewer calls
        # than completed.
        info["calls"] = max(info["calls"], info["completed"])
        info["per_sec"] = _rate(info["calls"], seconds)
    total = sum(f["calls"] for f in families.values())
    comms = sorted(by_comm.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    namespaces = sorted(by_ns.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "calls": total,
        "per_sec": _rate(total, seconds),
        "total_ms": round(sum(f["total_ms"] for f in families.values()), 3),
        "families": families,
        "by_comm": [{"comm": c, "calls": sum(f.values()), "families": f} for c, f in comms[:top]],
        "by_mnt_ns": [{"mnt_ns": int(ns), "calls": n} for ns, n in namespaces[:top]],
        "mnt_namespaces": len(by_ns),
        "breakdown_truncated": len(out.get("@sc_calls") or {}) >= MAP_KEYS_MAX,
    }


# Kinds of lock waits in the sampled program (LOCKS_SAMPLED): the map key's first field.
SAMPLED_KINDS = {1: "mount_syscall", 2: "kernel_thread"}


def _stats(value):
    """(count, total ns) of a bpftrace stats() value (or a plain count)."""
    if isinstance(value, dict):
        return _int(value.get("count")), _int(value.get("total"))
    return _int(value), 0


def _lock_rows(out):
    """Every lock-wait row of the output as (kind, cpu, frames, waits, wait_ns, sampled, mount).

    kind 0: a wait that took its stack (``@lk``, exact). kinds 1 and 2 (``@lk_smp``): the
    sampled waits of the kinds that are counted exactly per CPU in ``@lk_tot``.
    """
    rows = []
    for key, value in (out.get("@lk") or {}).items():
        cpu_text, stack_text = parse.split_key(key, 2)
        waits, wait_ns = _stats(value)
        frames = stack_frames(stack_text)
        rows.append((0, _int(cpu_text), frames, waits, wait_ns, False, _holds_mount_code(frames)))
    for key, value in (out.get("@lk_smp") or {}).items():
        kind_text, cpu_text, stack_text = parse.split_key(key, 3)
        waits, wait_ns = _stats(value)
        frames = stack_frames(stack_text)
        rows.append(
            (_int(kind_text), _int(cpu_text), frames, waits, wait_ns, True, _holds_mount_code(frames))
        )
    return rows


def _holds_mount_code(frames):
    return any(is_mount_frame(frame_name(f)) for f in frames)


def _scale(total, part, whole):
    """``total * part / whole`` (the ratio estimator); 0 when there is nothing to scale by."""
    return total * part / whole if whole else 0.0


def analyse_locks(out, seconds, cpu_nodes, top, sample_every=None):
    """Lock waits: totals, mount-code share, per CPU and node, top stacks, and how it was attributed.

    Waits with their own stack (``@lk``) are attributed exactly: mount code when a frame is one
    of ``MOUNT_FUNCTIONS``. With stack sampling (``sample_every``, LOCKS_SAMPLED) the waits
    inside mount-family syscalls and in kernel threads are counted exactly per (kind, CPU) in
    ``@lk_tot`` and only a sample has stacks (``@lk_smp``); each such exact total is split by
    the share of its sample that is mount code (ratio estimator: waits by sampled waits, wait
    time by sampled wait time), and every sampled stack stands for total/sampled waits of its
    (kind, CPU). A (kind, CPU) without samples (a full stack map) is split by the share of the
    kind's samples on all CPUs; a kind without any sample counts as other (``unattributed_waits``).
    Totals (waits, wait time, per CPU, per node) stay exact; the mount/other split and the top
    stacks of sampled kinds are estimates.
    """
    rows = _lock_rows(out)
    totals_by = {}
    for key, value in (out.get("@lk_tot") or {}).items():
        kind_text, cpu_text = parse.split_key(key, 2)
        totals_by[(_int(kind_text), _int(cpu_text))] = _stats(value)

    # Sampled waits per (kind, CPU) and per kind, all and mount code: [waits, ns, mount waits, mount ns].
    sampled_by, sampled_kind = {}, {}
    for kind, cpu, _frames, waits, wait_ns, sampled, mount in rows:
        if not sampled:
            continue
        for table, key in ((sampled_by, (kind, cpu)), (sampled_kind, kind)):
            acc = table.setdefault(key, [0, 0, 0, 0])
            acc[0] += waits
            acc[1] += wait_ns
            if mount:
                acc[2] += waits
                acc[3] += wait_ns

    per_cpu, stacks = {}, {}
    unattributed = 0

    def cpu_row(cpu):
        return per_cpu.setdefault(cpu, {"waits": 0, "wait_ns": 0, "mount_waits": 0, "mount_wait_ns": 0.0})

    for kind, cpu, frames, waits, wait_ns, sampled, mount in rows:
        if sampled:
            total_waits, total_ns = totals_by.get((kind, cpu), (0, 0))
            acc = sampled_by[(kind, cpu)]
            est_waits = _scale(total_waits, waits, acc[0])
            est_ns = _scale(total_ns, wait_ns, acc[1]) if acc[1] else _scale(total_ns, waits, acc[0])
        else:
            est_waits, est_ns = waits, wait_ns
            row = cpu_row(cpu)
            row["waits"] += waits
            row["wait_ns"] += wait_ns
            if mount:
                row["mount_waits"] += waits
                row["mount_wait_ns"] += wait_ns
        entry = stacks.setdefault(
            "\n".join(frames),
            {"frames": frames, "waits": 0.0, "wait_ns": 0.0, "mount": mount, "cpus": set(), "sampled": 0},
        )
        entry["waits"] += est_waits
        entry["wait_ns"] += est_ns
        entry["cpus"].add(cpu)
        if sampled:
            entry["sampled"] += waits

    for (kind, cpu), (total_waits, total_ns) in totals_by.items():
        row = cpu_row(cpu)
        row["waits"] += total_waits
        row["wait_ns"] += total_ns
        acc = sampled_by.get((kind, cpu)) or sampled_kind.get(kind)
        if not acc or not acc[0]:
            unattributed += total_waits
            continue
        row["mount_waits"] += int(round(_scale(total_waits, acc[2], acc[0])))
        if acc[1]:
            row["mount_wait_ns"] += _scale(total_ns, acc[3], acc[1])
        else:
            row["mount_wait_ns"] += _scale(total_ns, acc[2], acc[0])

    totals = {"waits": 0, "wait_ns": 0, "mount_waits": 0, "mount_wait_ns": 0.0}
    for row in per_cpu.values():
        for key in totals:
            totals[key] += row[key]

    by_cpu = []
    for cpu in sorted(per_cpu):
        row = per_cpu[cpu]
        by_cpu.append(
            {
                "cpu": cpu,
                "node": cpu_nodes.get(cpu),
                "waits": row["waits"],
                "wait_ms": _ms(row["wait_ns"]),
                "mount_waits": row["mount_waits"],
                "mount_wait_ms": _ms(row["mount_wait_ns"]),
            }
        )
    by_node = _by_node(per_cpu, cpu_nodes)
    mount_stacks = sorted(
        (s for s in stacks.values() if s["mount"]), key=lambda s: (-s["wait_ns"], -s["waits"])
    )
    other_stacks = sorted(
        (s for s in stacks.values() if not s["mount"]), key=lambda s: (-s["wait_ns"], -s["waits"])
    )
    sampled_kinds = {}
    for (kind, _cpu), (total_waits, _total_ns) in totals_by.items():
        name = SAMPLED_KINDS.get(kind, "kind_%d" % kind)
        info = sampled_kinds.setdefault(name, {"waits": 0, "sampled": 0})
        info["waits"] += total_waits
    for kind, acc in sampled_kind.items():
        name = SAMPLED_KINDS.get(kind, "kind_%d" % kind)
        sampled_kinds.setdefault(name, {"waits": 0, "sampled": 0})["sampled"] += acc[0]
    sampling = bool(sample_every and sample_every > 1) or bool(totals_by)
    attribution = {
        "method": "sampled_stacks" if sampling else "all_stacks",
        "sample_every": (int(sample_every) if sample_every else None) if sampling else 1,
        "first_per_cpu": programs.STACK_SAMPLE_FIRST if sampling else None,
        "stacked_waits": sum(r[3] for r in rows if not r[5]),
        "sampled_kinds": sampled_kinds,
        "sampled_waits": sum(r[3] for r in rows if r[5]),
        "estimated_waits": sum(t[0] for t in totals_by.values()),
        "unattributed_waits": unattributed,
    }
    stack_maps = (out.get("@lk") or {}, out.get("@lk_smp") or {})
    return {
        "waits": totals["waits"],
        "wait_ms": _ms(totals["wait_ns"]),
        "mount": {
            "waits": totals["mount_waits"],
            "wait_ms": _ms(totals["mount_wait_ns"]),
            "wait_ms_per_sec": _rate(totals["mount_wait_ns"] / 1e6, seconds),
            "waits_per_sec": _rate(totals["mount_waits"], seconds),
        },
        "other": {
            "waits": totals["waits"] - totals["mount_waits"],
            "wait_ms": _ms(totals["wait_ns"] - totals["mount_wait_ns"]),
            "wait_ms_per_sec": _rate((totals["wait_ns"] - totals["mount_wait_ns"]) / 1e6, seconds),
        },
        "mount_share": round(totals["mount_wait_ns"] / totals["wait_ns"], 4) if totals["wait_ns"] else None,
        "by_cpu": by_cpu,
        "by_node": by_node,
        "node_evenness": node_evenness(by_node),
        "top_mount_stacks": [_stack_row(s) for s in mount_stacks[:top]],
        "top_other_stacks": [_stack_row(s) for s in other_stacks[: max(1, top // 2)]],
        "distinct_stacks": len(stacks),
        "truncated": any(len(m) >= MAP_KEYS_MAX for m in stack_maps),
        "attribution": attribution,
    }


def _stack_row(stack):
    return {
        "lock": lock_kind(stack["frames"]),
        "frames": stack["frames"],
        "waits": int(round(stack["waits"])),
        "wait_ms": _ms(stack["wait_ns"]),
        "cpus": sorted(stack["cpus"]),
        "estimated": stack["sampled"] > 0,
        "sampled_waits": stack["sampled"],
    }


def _by_node(per_cpu, cpu_nodes):
    nodes = {}
    for node in cpu_nodes.values():
        nodes.setdefault(
            node, {"node": node, "cpus": 0, "waits": 0, "wait_ns": 0, "mount_waits": 0, "mount_wait_ns": 0}
        )
        nodes[node]["cpus"] += 1
    for cpu, row in per_cpu.items():
        node = cpu_nodes.get(cpu)
        entry = nodes.setdefault(
            node, {"node": node, "cpus": 0, "waits": 0, "wait_ns": 0, "mount_waits": 0, "mount_wait_ns": 0}
        )
        for key in ("waits", "wait_ns", "mount_waits", "mount_wait_ns"):
            entry[key] += row[key]
    total_mount = sum(n["mount_wait_ns"] for n in nodes.values())
    result = []
    for node in sorted(nodes, key=lambda n: (n is None, n if n is not None else 0)):
        entry = nodes[node]
        result.append(
            {
                "node": node,
                "cpus": entry["cpus"],
                "waits": entry["waits"],
                "wait_ms": _ms(entry["wait_ns"]),
                "mount_waits": entry["mount_waits"],
                "mount_wait_ms": _ms(entry["mount_wait_ns"]),
                "mount_wait_share": round(entry["mount_wait_ns"] / total_mount, 4) if total_mount else None,
            }
        )
    return result


def node_evenness(by_node):
    """How evenly mount-code lock waits spread over the NUMA nodes that have CPUs: 0..1.

    Normalised Shannon entropy of each node's mount wait *per CPU* (so a node with twice the
    CPUs is expected to wait twice as long). 1.0 = perfectly even, 0.0 = all on one node. None
    with fewer than two nodes or no mount waits: nothing to compare.
    """
    rows = [n for n in by_node if n["node"] is not None and n["cpus"] > 0]
    if len(rows) < 2:
        return None
    densities = [n["mount_wait_ms"] / n["cpus"] for n in rows]
    total = sum(densities)
    if total <= 0:
        return None
    entropy = -sum((d / total) * math.log(d / total) for d in densities if d > 0)
    return round(entropy / math.log(len(rows)), 4)


def analyse_mountinfo(out, seconds, top):
    opens = out.get("@mi_opens") or {}
    reads = out.get("@mi_read") or {}
    nbytes = out.get("@mi_bytes") or {}
    readers = {}
    for comm, count in opens.items():
        readers.setdefault(comm, {"comm": comm, "opens": 0, "reads": 0, "read_ns": 0, "bytes": 0})[
            "opens"
        ] = _int(count)
    for comm, stats in reads.items():
        row = readers.setdefault(comm, {"comm": comm, "opens": 0, "reads": 0, "read_ns": 0, "bytes": 0})
        row["reads"] = _int(stats.get("count")) if isinstance(stats, dict) else _int(stats)
        row["read_ns"] = _int(stats.get("total")) if isinstance(stats, dict) else 0
    for comm, total in nbytes.items():
        readers.setdefault(comm, {"comm": comm, "opens": 0, "reads": 0, "read_ns": 0, "bytes": 0})[
            "bytes"
        ] = _int(total)
    ordered = sorted(readers.values(), key=lambda r: (-r["read_ns"], -r["opens"], r["comm"]))
    total_ns = sum(r["read_ns"] for r in ordered)
    lat = out.get("@mi_lat") or []
    return {
        "opens": sum(r["opens"] for r in ordered),
        "opens_per_sec": _rate(sum(r["opens"] for r in ordered), seconds),
        "reads": sum(r["reads"] for r in ordered),
        "read_ms": _ms(total_ns),
        "read_ms_per_sec": _rate(total_ns / 1e6, seconds),
        "read_p50_us": _us(parse.hist_percentile(lat, 0.50)),
        "read_p99_us": _us(parse.hist_percentile(lat, 0.99)),
        "top_readers": [
            {
                "comm": r["comm"],
                "opens": r["opens"],
                "reads": r["reads"],
                "read_ms": _ms(r["read_ns"]),
                "bytes": r["bytes"],
            }
            for r in ordered[:top]
        ],
    }


def analyse_kfuncs(out, plan, seconds):
    calls = out.get("@kf_calls") or {}
    return {
        name: {"calls": _int(calls.get(name, 0)), "per_sec": _rate(_int(calls.get(name, 0)), seconds)}
        for name, _attach in plan.get("kfuncs") or []
    }


def analyse(out, plan, cpu_nodes, seconds, top=10):
    """Turn parsed maps into the result sections; sections not in the plan are None."""
    return {
        "syscalls": analyse_syscalls(out, plan, seconds, top) if plan.get("families") else None,
        "contention": (
            analyse_locks(out, seconds, cpu_nodes, top, plan.get("stack_sample_every"))
            if plan.get("locks")
            else None
        ),
        "mountinfo": analyse_mountinfo(out, seconds, top) if plan.get("mountinfo") else None,
        "kernel_functions": analyse_kfuncs(out, plan, seconds) if plan.get("kfuncs") else None,
    }


def measured_seconds(out, wall_s):
    elapsed = out.get("@elapsed_ns")
    if isinstance(elapsed, (int, float)) and elapsed > 0:
        return elapsed / 1e9
    return wall_s


# --------------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------------

LEVELS = ("ok", "warn", "critical")


def merge_thresholds(overrides):
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_THRESHOLDS.items()}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if isinstance(merged.get(key), dict):
            merged[key].update({k: float(v) for k, v in value.items() if v is not None})
        else:
            merged[key] = value
    return merged


def _judge(metric, value, limits, message):
    if value is None:
        return None
    level = "ok"
    if value >= limits["critical"]:
        level = "critical"
    elif value >= limits["warn"]:
        level = "warn"
    if level == "ok":
        return None
    return {
        "level": level,
        "metric": metric,
        "value": value,
        "threshold": limits[level],
        "message": message % {"value": value, "threshold": limits[level]},
    }


def verdict(result, coverage, thresholds):
    """``ok|warn|critical`` with reasons, from the analysed sections and the thresholds."""
    reasons = []
    syscalls = result.get("syscalls")
    if syscalls:
        reasons.append(
            _judge(
                "mount_ops_per_sec",
                syscalls["per_sec"],
                thresholds["mount_ops_per_sec"],
                "mount-family syscalls at %(value).1f/s (threshold %(threshold)g/s)",
            )
        )
        for family, info in syscalls["families"].items():
            if info["completed"] < thresholds["min_calls_for_latency"] or info["p99_us"] is None:
                continue
            reasons.append(
                _judge(
                    "syscall_p99_ms:%s" % family,
                    round(info["p99_us"] / 1000.0, 3),
                    thresholds["syscall_p99_ms"],
                    family + " p99 latency %(value).2f ms (threshold %(threshold)g ms)",
                )
            )
    contention = result.get("contention")
    if contention:
        reasons.append(
            _judge(
                "mount_lock_wait_ms_per_sec",
                contention["mount"]["wait_ms_per_sec"],
                thresholds["mount_lock_wait_ms_per_sec"],
                "lock waits in mount code %(value).1f ms/s (threshold %(threshold)g ms/s)",
            )
        )
    mountinfo = result.get("mountinfo")
    if mountinfo:
        top = mountinfo["top_readers"][0]["comm"] if mountinfo["top_readers"] else "?"
        reasons.append(
            _judge(
                "mountinfo_read_ms_per_sec",
                mountinfo["read_ms_per_sec"],
                thresholds["mountinfo_read_ms_per_sec"],
                "mountinfo reads %(value).1f ms/s (threshold %(threshold)g ms/s), top reader " + top,
            )
        )
    reasons = [r for r in reasons if r]
    level = "ok"
    for reason in reasons:
        if LEVELS.index(reason["level"]) > LEVELS.index(level):
            level = reason["level"]
    reasons.sort(key=lambda r: (-LEVELS.index(r["level"]), r["metric"]))
    unmeasured = [c["item"] for c in coverage if not c["measured"]]
    return {"level": level, "reasons": reasons, "unmeasured": unmeasured, "thresholds": thresholds}

# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capability detection for ``contention_probe``: what can be measured on this host, and how.

Detect before attaching (STYLE.md "Probes"): bpftrace and its version, tracefs (mounted, or
mounted by us when allowed), the tracepoints we need, kprobes (the kprobe PMU, because
``bpftrace --info`` reports kprobes even where the kernel has none), kfunc/BTF, and the real
names (``.isra.0`` suffixes) of the kernel functions we would count with kprobes.

Every path is injectable (``sysfs_root``, ``proc_root``, ``tracefs_candidates``) so that the
decision logic is tested on fixture trees. Only :func:`mount_tracefs` and :func:`bpftrace_info`
touch the system.
"""

from __future__ import annotations

import os
import re

from ansible_collections.mountops.fleet.plugins.module_utils import _probe_programs as programs
from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import read_text

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

_SUFFIX_RE = re.compile(r"^(?P<base>[A-Za-z0-9_]+)(?P<suffix>(?:\.(?:isra|constprop|part|llvm)\.\d+)*)$")


def find_tracefs(candidates=TRACEFS_CANDIDATES):
    """Return the first directory that looks like a mounted tracefs (has ``events/``), or None."""
    for path in candidates:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    return None


def mount_tracefs(path="/sys/kernel/tracing"):
    """Mount tracefs at ``path`` with mount(2); returns None on success or the error text.

    A pseudo filesystem, nothing persistent: it is what ``mount -t tracefs nodev PATH`` does.
    ctypes is stdlib; the mount(8) binary may be absent on minimal hosts.
    """
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    rc = libc.mount(b"nodev", path.encode(), b"tracefs", 0, None)
    if rc != 0:
        err = ctypes.get_errno()
        return "mount -t tracefs %s: %s" % (path, os.strerror(err))
    return None


def tracepoint_exists(tracefs, category, event):
    return os.path.isfile(os.path.join(tracefs, "events", category, event, "format"))


def kprobes_available(sysfs_root="/sys"):
    """The kprobe PMU is registered only when the kernel has CONFIG_KPROBES (DESIGN.md §4)."""
    return os.path.isfile(os.path.join(sysfs_root, "bus/event_source/devices/kprobe/type"))


def btf_available(sysfs_root="/sys"):
    return os.path.isfile(os.path.join(sysfs_root, "kernel/btf/vmlinux"))


def resolve_symbols(names, kallsyms_text, traceable=None):
    """Map each wanted function to the symbol a kprobe must use, or None.

    Compilers rename static functions (``get_dominating_id.isra.0``, ``propagate_mnt.constprop.0``);
    ``.cold`` parts are not entry points. An exact name wins over a suffixed one. With
    ``traceable`` (names from ``available_filter_functions``, when readable) a symbol must also
    be listed there. Text-section symbols only (type t/T).
    """
    wanted = set(names)
    found = {}
    for line in kallsyms_text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[1] not in ("t", "T"):
            continue
        match = _SUFFIX_RE.match(fields[2])
        if not match or match.group("base") not in wanted:
            continue
        symbol = fields[2]
        if traceable is not None and symbol not in traceable:
            continue
        base = match.group("base")
        if base not in found or (symbol == base and found[base] != base):
            found[base] = symbol
    return {name: found.get(name) for name in names}


def parse_bpftrace_version(text):
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return None
    return "%s.%s.%s" % (match.group(1), match.group(2), match.group(3) or "0")


def parse_bpftrace_info(text):
    """``bpftrace --info`` lines ``  kfunc: yes`` -> {"kfunc": True, ...} (features only)."""
    features = {}
    for line in (text or "").splitlines():
        key, sep, value = line.strip().partition(":")
        value = value.strip().lower()
        if sep and value in ("yes", "no"):
            features[key.strip()] = value == "yes"
    return features


def detect(
    bpftrace_path,
    bpftrace_version=None,
    bpftrace_features=None,
    tracefs=None,
    tracefs_mounted_by_probe=False,
    tracefs_error=None,
    sysfs_root="/sys",
    proc_root="/proc",
    machine=None,
    euid=None,
):
    """Assemble the capability record from what the caller found (pure apart from file reads).

    Returns a dict documented as ``capabilities`` in the module's RETURN.
    """
    machine = machine or os.uname().machine
    euid = os.geteuid() if euid is None else euid
    features = bpftrace_features or {}
    caps = {
        "root": euid == 0,
        "machine": machine,
        "bpftrace": {"path": bpftrace_path, "version": bpftrace_version},
        "tracefs": {
            "path": tracefs,
            "mounted_by_probe": bool(tracefs_mounted_by_probe),
            "error": tracefs_error,
        },
        "btf": btf_available(sysfs_root),
        "kprobes": kprobes_available(sysfs_root),
        "kfunc": bool(features.get("kfunc")) and btf_available(sysfs_root),
        "syscall_numbers": machine in programs.SYSCALL_NUMBERS,
        "tracepoints": {},
        "syscall_families": [],
        "missing_syscall_families": [],
        "kernel_functions": {},
    }
    if tracefs:
        tps = caps["tracepoints"]
        tps["raw_syscalls"] = tracepoint_exists(tracefs, "raw_syscalls", "sys_enter") and tracepoint_exists(
            tracefs, "raw_syscalls", "sys_exit"
        )
        tps["lock_contention"] = tracepoint_exists(tracefs, "lock", "contention_begin") and tracepoint_exists(
            tracefs, "lock", "contention_end"
        )
        for name in ("openat", "read", "close"):
            tps["syscalls_" + name] = tracepoint_exists(tracefs, "syscalls", "sys_enter_" + name)
        for family in programs.SYSCALL_FAMILIES:
            # The per-syscall tracepoint exists exactly when the kernel has the syscall
            # (statmount/listmount from 6.8, mount_setattr from 5.12, ...).
            if tracepoint_exists(tracefs, "syscalls", "sys_enter_" + family) and tracepoint_exists(
                tracefs, "syscalls", "sys_exit_" + family
            ):
                caps["syscall_families"].append(family)
            else:
                caps["missing_syscall_families"].append(family)
    if caps["kprobes"] or caps["kfunc"]:
        filter_text = read_text(os.path.join(tracefs, "available_filter_functions"), "") if tracefs else ""
        traceable = {line.split()[0] for line in filter_text.splitlines() if line.strip()} or None
        caps["kernel_functions"] = resolve_symbols(
            programs.KERNEL_FUNCTIONS, read_text(os.path.join(proc_root, "kallsyms"), ""), traceable
        )
    else:
        caps["kernel_functions"] = {name: None for name in programs.KERNEL_FUNCTIONS}
    return caps


def plan_sections(caps, measure, stack_sample_every=programs.STACK_SAMPLE_EVERY):
    """Decide what to attach and produce the coverage list.

    ``measure``: requested sections (``syscalls``, ``locks``, ``mountinfo``, ``kfuncs``).
    ``stack_sample_every``: lock waits inside mount-family syscalls and in kernel threads take a
    kernel stack 1 in N (``plan["stack_sample_every"]``); it needs the syscall section (which
    marks tasks inside mount syscalls), else, or with 1, every wait takes a stack (None).
    Returns ``(plan, coverage)``: plan kwargs for ``_probe_programs.build_program`` and a list
    of ``{"item", "measured", "via", "reason"}`` -- a zero in the result is only meaningful for
    an item with ``measured: true``.
    """
    tps = caps.get("tracepoints", {})
    numbers = programs.SYSCALL_NUMBERS.get(caps.get("machine"))
    raw = bool(numbers) and tps.get("raw_syscalls")
    plan = {
        "families": [],
        "locks": False,
        "mountinfo": False,
        "kfuncs": [],
        "numbers": numbers if raw else None,
        "stack_sample_every": None,
    }
    coverage = []

    def add(item, measured, via=None, reason=None):
        coverage.append({"item": item, "measured": measured, "via": via, "reason": reason})

    if "syscalls" in measure:
        via = "tracepoint:raw_syscalls" if raw else "tracepoint:syscalls"
        for family in caps.get("syscall_families", []):
            plan["families"].append(family)
            add("syscall:%s" % family, True, via)
        for family in caps.get("missing_syscall_families", []):
            add(
                "syscall:%s" % family,
                False,
                reason="no syscalls:sys_enter_%s tracepoint (not in this kernel)" % family,
            )
    else:
        add("syscalls", False, reason="not requested (measure)")
    if "locks" in measure:
        if tps.get("lock_contention"):
            plan["locks"] = True
            if plan["families"] and stack_sample_every and int(stack_sample_every) > 1:
                plan["stack_sample_every"] = int(stack_sample_every)
                via = (
                    "tracepoint:lock:contention_begin/end + kstack (1 in %d inside mount syscalls and "
                    "kernel threads, every other wait)" % plan["stack_sample_every"]
                )
            else:
                via = "tracepoint:lock:contention_begin/end + kstack (every wait)"
            add("lock_contention", True, via)
        else:
            add("lock_contention", False, reason="no lock:contention_begin/end tracepoints (kernel < 5.19?)")
    else:
        add("lock_contention", False, reason="not requested (measure)")
    if "mountinfo" in measure:
        tp_ok = all(tps.get("syscalls_" + n) for n in ("openat", "read", "close"))
        if raw or tp_ok:
            plan["mountinfo"] = True
            add(
                "mountinfo_readers",
                True,
                "tracepoint:raw_syscalls (openat/read/close)"
                if raw
                else "tracepoint:syscalls (openat/read/close)",
            )
        else:
            add("mountinfo_readers", False, reason="no openat/read/close syscall tracepoints")
    else:
        add("mountinfo_readers", False, reason="not requested (measure)")
    functions = caps.get("kernel_functions", {})
    for name in programs.KERNEL_FUNCTIONS:
        item = "kernel_function:%s" % name
        if "kfuncs" not in measure:
            add(item, False, reason="not requested (measure)")
        elif not (caps.get("kprobes") or caps.get("kfunc")):
            add(item, False, reason="kernel has no kprobes (no kprobe PMU) and no kfunc support")
        elif not functions.get(name):
            add(item, False, reason="symbol not found in kallsyms (inlined or renamed)")
        elif caps.get("kprobes"):
            symbol = functions[name]
            plan["kfuncs"].append((name, "kprobe:%s" % symbol))
            add(item, True, "kprobe:%s" % symbol)
        elif functions[name] == name:
            plan["kfuncs"].append((name, "kfunc:%s" % name))
            add(item, True, "kfunc:%s" % name)
        else:
            add(item, False, reason="only a suffixed symbol (%s); kfunc needs BTF names" % functions[name])
    return plan, coverage

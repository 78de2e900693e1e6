# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small, pure helpers for reading sysfs/procfs trees under an injectable root.

Shared by the facts modules and the probe: the kernel's range-list format ("0-3,8,10-11"),
tolerant single-value reads, and the CPU -> NUMA node map.
"""

from __future__ import annotations

import os
import re


class RangeListError(ValueError):
    """A sysfs range list ("0-3,8") that does not parse."""


_RANGE_RE = re.compile(r"^(\d+)(?:-(\d+))?(?::(\d+)/(\d+))?$")


MAX_ID = 1 << 16  # above any CPU or node id a kernel hands out (NR_CPUS <= 8192 today)


def parse_range_list(text, max_id=MAX_ID):
    """Parse the kernel's cpulist/nodelist format into a sorted list of ints.

    Accepts the forms the kernel prints (``bitmap_print_to_pagebuf`` list form) and the
    ``N-M:used/group`` form accepted on input. An empty string is an empty set. Ids at or above
    ``max_id`` are refused: a corrupt ``0-4294967295`` must not be expanded into memory.
    """
    values = set()
    text = text.strip()
    if not text:
        return []
    for part in text.split(","):
        match = _RANGE_RE.match(part.strip())
        if not match:
            raise RangeListError(f"not a range list: {text!r}")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        if end < start:
            raise RangeListError(f"descending range {part!r} in {text!r}")
        if end >= max_id:
            raise RangeListError("id out of range (>= %d) in range list %r" % (max_id, text[:80]))
        if match.group(3) is None:
            values.update(range(start, end + 1))
            continue
        used, group = int(match.group(3)), int(match.group(4))
        if group == 0 or used > group:
            raise RangeListError(f"bad stride {part!r} in range list {text!r}")
        for base in range(start, end + 1, group):
            values.update(v for v in range(base, min(base + used, end + 1)))
    return sorted(values)


def consecutive_runs(values):
    """Sorted distinct ints as (first, last) runs: ``[0, 1, 2, 5]`` -> ``[(0, 2), (5, 5)]``."""
    ordered = sorted(set(values))
    runs = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append((ordered[i], ordered[j]))
        i = j + 1
    return runs


def format_range_list(values):
    """Inverse of parse_range_list: ``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    return ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in consecutive_runs(values))


def read_text(path, default=None):
    """Return the stripped content of a small file, or ``default`` if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return default


_RECORD_MAX = 1 << 16


def read_record(path, default=None):
    """``read_text`` for a single-record file, in one ``read()`` and no EOF read (hot paths).

    Valid where the whole content comes in one read when the buffer is large enough: regular
    files, sysfs attributes and single-record procfs files (``comm``, ``cgroup``, ``stat``,
    whose show() runs once). Not for multi-record seq files (``mountinfo``, ``kallsyms``), where
    a short read is not the end: use ``read_text`` there.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return default
    try:
        data = os.read(fd, _RECORD_MAX)
        if len(data) == _RECORD_MAX:  # larger than one record can be: read on to the end
            parts = [data]
            while data:
                data = os.read(fd, _RECORD_MAX)
                parts.append(data)
            data = b"".join(parts)
    except OSError:
        return default
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace").strip()


def read_int(path, default=None):
    text = read_text(path)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        return default


def node_ids(sysfs_root="/sys", which="online"):
    """NUMA node ids from ``devices/system/node/<which>`` (``online``, ``possible``, ``has_cpu`` ...).

    Falls back to the ``nodeN`` directories when the list file is missing; returns [] when the
    kernel has no NUMA directory at all (CONFIG_NUMA off or a masked /sys).
    """
    base = os.path.join(sysfs_root, "devices/system/node")
    text = read_text(os.path.join(base, which))
    if text is not None:
        try:
            return parse_range_list(text)
        except RangeListError:
            pass
    try:
        names = os.listdir(base)
    except OSError:
        return []
    return sorted(int(n[4:]) for n in names if n.startswith("node") and n[4:].isdigit())


def cpu_node_map(sysfs_root="/sys"):
    """Map each CPU id to its NUMA node id, from ``nodeN/cpulist``.

    Without a NUMA directory every CPU listed in ``cpu/present`` belongs to node 0, which is how
    the kernel behaves with CONFIG_NUMA off.
    """
    mapping = {}
    base = os.path.join(sysfs_root, "devices/system/node")
    for node in node_ids(sysfs_root, "online"):
        text = read_text(os.path.join(base, "node%d" % node, "cpulist"), "")
        try:
            cpus = parse_range_list(text)
        except RangeListError:
            continue
        for cpu in cpus:
            mapping[cpu] = node
    if mapping:
        return mapping
    present = read_text(os.path.join(sysfs_root, "devices/system/cpu/present"), "")
    try:
        return {cpu: 0 for cpu in parse_range_list(present)}
    except RangeListError:
        return {}

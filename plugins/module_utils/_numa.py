# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NUMA and CPU topology facts from sysfs/procfs under injectable roots.

``collect()`` reads a tree into a ``Topology`` (no decisions), the ``classify_*``/``assess_*``
functions analyse it, and ``numa_facts()`` returns the ``ansible_facts.numa`` dictionary.
Nothing here raises on a degraded tree (masked /sys in a container, missing files, garbage):
what could not be read becomes a warning and the facts say so.

Cost matters on 384-CPU hosts: per-CPU files are read once per *group* (a core's thread
siblings, a package, a die, an L3 domain), skipping every CPU the group leader already
covered, and only the first /proc/cpuinfo record is parsed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import (
    RangeListError,
    format_range_list,
    parse_range_list,
    read_text,
)

NODE_DIR = "devices/system/node"
CPU_DIR = "devices/system/cpu"
DMI_DIR = "class/dmi/id"

# Readable by any user; product_serial/product_uuid are root-only and identify the machine.
DMI_KEYS = (
    "sys_vendor",
    "product_name",
    "product_family",
    "product_version",
    "board_vendor",
    "board_name",
    "chassis_vendor",
    "chassis_asset_tag",
    "bios_vendor",
)

# /proc/cpuinfo keys (x86 first, then arm64) -> CpuModel fields
CPUINFO_KEYS = {
    "vendor_id": "vendor",
    "CPU implementer": "vendor",
    "model name": "model_name",
    "cpu family": "family",
    "CPU architecture": "family",
    "model": "model",
    "CPU part": "model",
    "stepping": "stepping",
    "CPU variant": "stepping",
}

AMD_VENDORS = ("AuthenticAMD", "HygonGenuine")
INTEL_VENDORS = ("GenuineIntel",)
SNC_COUNTS = (2, 3, 4, 6)
NPS_COUNTS = (2, 4)

TIERS = ("low", "medium", "high")
MANY_CPUS = 64


class NumaError(Exception):
    """The roots given cannot be analysed at all (not a directory)."""


@dataclass
class NumaNode:
    id: int
    cpus: List[int] = field(default_factory=list)
    memory_total_kb: Optional[int] = None
    memory_free_kb: Optional[int] = None
    distance: Dict[int, int] = field(default_factory=dict)
    has_cpu: Optional[bool] = None
    has_memory: Optional[bool] = None


@dataclass
class CpuModel:
    vendor: Optional[str] = None
    model_name: Optional[str] = None
    family: Optional[str] = None
    model: Optional[str] = None
    stepping: Optional[str] = None


@dataclass
class Topology:
    """Everything read from the tree; ``warnings`` says what was missing or unparsable."""

    numa_dir: bool = False
    node_online: List[int] = field(default_factory=list)
    node_possible: List[int] = field(default_factory=list)
    nodes: List[NumaNode] = field(default_factory=list)
    cpu_possible: List[int] = field(default_factory=list)
    cpu_present: List[int] = field(default_factory=list)
    cpu_online: List[int] = field(default_factory=list)
    cpu_offline: List[int] = field(default_factory=list)
    cores: List[List[int]] = field(default_factory=list)
    packages: Dict[int, List[int]] = field(default_factory=dict)
    dies: Dict[Tuple[int, int], List[int]] = field(default_factory=dict)
    l3_domains: List[List[int]] = field(default_factory=list)
    smt_control: Optional[str] = None
    smt_active: Optional[bool] = None
    cpu: CpuModel = field(default_factory=CpuModel)
    dmi: Dict[str, str] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)

    def cpu_socket(self):
        return {cpu: pkg for pkg, cpus in self.packages.items() for cpu in cpus}

    def node_sockets(self):
        """Node id -> sorted package ids of its CPUs (empty for memory-only nodes)."""
        socket_of = self.cpu_socket()
        return {node.id: sorted({socket_of[c] for c in node.cpus if c in socket_of}) for node in self.nodes}

    def cpu_nodes(self):
        return {cpu: node.id for node in self.nodes for cpu in node.cpus}

    @property
    def threads_per_core(self):
        return max((len(core) for core in self.cores), default=0)


@dataclass
class Clustering:
    mode: str
    description: str
    evidence: Dict[str, object]


@dataclass
class Risk:
    tier: str
    reasons: List[str]


# --------------------------------------------------------------------------- reading


class _Reader:
    """Reads files under one root and records what was missing, once per kind."""

    def __init__(self, root, warnings):
        self.root = root
        self.warnings = warnings

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def text(self, *parts):
        return read_text(self.path(*parts))

    def ids(self, *parts, **kwargs):
        """A range-list file as a list; None (and a warning) when unreadable or malformed."""
        text = self.text(*parts)
        if text is None:
            if kwargs.get("required", True):
                self.warn("cannot read %s" % self.path(*parts))
            return None
        try:
            return parse_range_list(text)
        except RangeListError as exc:
            self.warn("%s: %s" % (self.path(*parts), exc))
            return None

    def warn(self, message):
        if message not in self.warnings:
            self.warnings.append(message)


def _int_or_none(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _parse_meminfo(text):
    """``Node N MemTotal: X kB`` lines -> {"MemTotal": X, ...} (kB)."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        # Node, N, Key:, value, [kB]
        if len(parts) >= 4 and parts[2].endswith(":"):
            value = _int_or_none(parts[3])
            if value is not None:
                values[parts[2][:-1]] = value
    return values


def _parse_cpuinfo_head(handle):
    """CpuModel from the first processor record of /proc/cpuinfo (stops at the blank line)."""
    model = CpuModel()
    seen = False
    for raw in handle:
        line = raw.decode("utf-8", "replace")
        if not line.strip():
            if seen:
                break
            continue
        seen = True
        key, sep, value = line.partition(":")
        attr = CPUINFO_KEYS.get(key.strip())
        if sep and attr and getattr(model, attr) is None:
            setattr(model, attr, value.strip())
    return model


def _read_nodes(reader, topo):
    base = NODE_DIR
    if not os.path.isdir(reader.path(base)):
        reader.warn(
            "%s is missing (CONFIG_NUMA off, or /sys masked in a container): no NUMA node facts"
            % reader.path(base)
        )
        return
    topo.numa_dir = True
    try:
        dirs = sorted(
            int(name[4:])
            for name in os.listdir(reader.path(base))
            if name.startswith("node") and name[4:].isdigit()
        )
    except OSError as exc:
        reader.warn("cannot list %s: %s" % (reader.path(base), exc.strerror))
        dirs = []
    online = reader.ids(base, "online")
    topo.node_online = online if online is not None else dirs
    if not topo.node_online:
        reader.warn("%s lists no NUMA node (masked?): no NUMA node facts" % reader.path(base))
    possible = reader.ids(base, "possible")
    topo.node_possible = possible if possible is not None else list(topo.node_online)
    has_cpu = reader.ids(base, "has_cpu", required=False)
    has_memory = reader.ids(base, "has_memory", required=False)

    for node_id in topo.node_online:
        node = NumaNode(id=node_id)
        node_dir = os.path.join(base, "node%d" % node_id)
        cpus = reader.ids(node_dir, "cpulist")
        node.cpus = cpus or []
        meminfo = reader.text(node_dir, "meminfo")
        if meminfo is None:
            reader.warn(
                "cannot read %s: no memory size for node %d" % (reader.path(node_dir, "meminfo"), node_id)
            )
        else:
            values = _parse_meminfo(meminfo)
            node.memory_total_kb = values.get("MemTotal")
            node.memory_free_kb = values.get("MemFree")
            if node.memory_total_kb is None:
                reader.warn("no MemTotal in %s" % reader.path(node_dir, "meminfo"))
        node.distance = _read_distance(reader, node_dir, topo.node_online)
        node.has_cpu = node_id in has_cpu if has_cpu is not None else bool(node.cpus)
        if has_memory is not None:
            node.has_memory = node_id in has_memory
        elif node.memory_total_kb is not None:
            node.has_memory = node.memory_total_kb > 0
        topo.nodes.append(node)


def _read_distance(reader, node_dir, online):
    """One SLIT value per *online* node, in online order: map them to node ids."""
    text = reader.text(node_dir, "distance")
    if text is None:
        reader.warn("cannot read %s: no distances" % reader.path(node_dir, "distance"))
        return {}
    values = [_int_or_none(v) for v in text.split()]
    if None in values or len(values) != len(online):
        reader.warn(
            "%s has %d values for %d online nodes: distances ignored"
            % (reader.path(node_dir, "distance"), len(values), len(online))
        )
        return {}
    return dict(zip(online, values))


def _read_cpus(reader, topo):
    base = CPU_DIR
    if not os.path.isdir(reader.path(base)):
        reader.warn("%s is missing: no CPU topology facts" % reader.path(base))
        return
    possible = reader.ids(base, "possible")
    present = reader.ids(base, "present")
    online = reader.ids(base, "online")
    topo.cpu_possible = possible or []
    topo.cpu_present = present if present is not None else list(topo.cpu_possible)
    topo.cpu_online = online if online is not None else list(topo.cpu_present)
    offline = reader.ids(base, "offline", required=False)
    if offline is None:
        online_set = set(topo.cpu_online)
        offline = [c for c in topo.cpu_present if c not in online_set]
    topo.cpu_offline = offline

    control = reader.text(base, "smt", "control")
    active = reader.text(base, "smt", "active")
    topo.smt_control = control
    topo.smt_active = None if active is None else active == "1"
    _read_groups(reader, topo)


def _read_group(reader, cpu, names):
    """First readable range list among ``names`` under cpuN/ (newer kernel name first)."""
    for name in names:
        text = reader.text(CPU_DIR, "cpu%d" % cpu, name)
        if text is None:
            continue
        try:
            return parse_range_list(text)
        except RangeListError:
            continue
    return None


def _find_l3_index(reader, cpu):
    cache = reader.path(CPU_DIR, "cpu%d" % cpu, "cache")
    try:
        names = sorted(n for n in os.listdir(cache) if n.startswith("index"))
    except OSError:
        return None
    for name in names:
        if read_text(os.path.join(cache, name, "level")) == "3":
            return name
    return None


def _read_groups(reader, topo):
    """Thread-sibling cores, packages, dies and L3 domains, one read per group."""
    in_core, in_package, in_die, in_l3 = set(), set(), set(), set()
    no_topology, no_l3 = [], []
    l3_index = None
    for cpu in topo.cpu_online:
        if cpu not in in_core:
            siblings = _read_group(reader, cpu, ("topology/thread_siblings_list", "topology/core_cpus_list"))
            if siblings is None:
                no_topology.append(cpu)
                continue
            if cpu not in siblings:
                siblings = sorted(set(siblings) | {cpu})
            topo.cores.append(siblings)
            in_core.update(siblings)
        if cpu not in in_package:
            package_id = _int_or_none(reader.text(CPU_DIR, "cpu%d" % cpu, "topology/physical_package_id"))
            members = _read_group(reader, cpu, ("topology/package_cpus_list", "topology/core_siblings_list"))
            if package_id is None or members is None:
                no_topology.append(cpu)
            else:
                topo.packages.setdefault(package_id, [])
                topo.packages[package_id] = sorted(set(topo.packages[package_id]) | set(members) | {cpu})
                in_package.update(members)
                in_package.add(cpu)
        if cpu not in in_die and cpu in in_package:
            die_id = _int_or_none(reader.text(CPU_DIR, "cpu%d" % cpu, "topology/die_id"))
            members = _read_group(reader, cpu, ("topology/die_cpus_list",))
            package_id = next(p for p, cpus in topo.packages.items() if cpu in cpus)
            if die_id is None or members is None:
                # kernels before 5.2 have no die level: the package is the die
                die_id, members = 0, topo.packages[package_id]
            topo.dies[(package_id, die_id)] = members
            in_die.update(members)
            in_die.add(cpu)
        if cpu not in in_l3:
            if l3_index is None:
                l3_index = _find_l3_index(reader, cpu)
            members = None
            if l3_index is not None:
                members = _read_group(reader, cpu, ("cache/%s/shared_cpu_list" % l3_index,))
            if members is None:
                # another CPU may number its caches differently; look once more
                index = _find_l3_index(reader, cpu)
                if index is not None:
                    members = _read_group(reader, cpu, ("cache/%s/shared_cpu_list" % index,))
            if members is None:
                no_l3.append(cpu)
                continue
            topo.l3_domains.append(sorted(set(members) | {cpu}))
            in_l3.update(members)
            in_l3.add(cpu)
    if no_topology:
        reader.warn(
            "no readable topology for online CPUs %s under %s"
            % (format_range_list(no_topology), reader.path(CPU_DIR))
        )
    if no_l3:
        reader.warn("no L3 cache information for CPUs %s" % format_range_list(no_l3))


def _read_cpu_model(procfs_root, warnings):
    path = os.path.join(procfs_root, "cpuinfo")
    try:
        with open(path, "rb") as handle:
            return _parse_cpuinfo_head(handle)
    except OSError as exc:
        warnings.append("cannot read %s: %s: no CPU model facts" % (path, exc.strerror))
        return CpuModel()


def _read_dmi(reader):
    values = {}
    for key in DMI_KEYS:
        value = reader.text(DMI_DIR, key)
        if value:
            values[key] = value
    return values


def _check_root(path, what):
    if not os.path.isdir(path):
        raise NumaError("%s %s is not a directory" % (what, path))


def collect(sysfs_root="/sys", procfs_root="/proc"):
    """Read the NUMA/CPU topology under ``sysfs_root`` and ``procfs_root`` into a Topology."""
    _check_root(sysfs_root, "sysfs_root")
    _check_root(procfs_root, "procfs_root")
    topo = Topology()
    reader = _Reader(sysfs_root, topo.warnings)
    _read_nodes(reader, topo)
    _read_cpus(reader, topo)
    topo.cpu = _read_cpu_model(procfs_root, topo.warnings)
    topo.dmi = _read_dmi(reader)
    return topo


# --------------------------------------------------------------------------- analysis


def _ratio(a, b):
    return round(float(a) / b, 2) if b else None


def classify_distances(topo):
    """Distance classes: local, same-socket, cross-socket, to/from memory-only nodes."""
    sockets = topo.node_sockets()
    classes = {"local": set(), "same_socket": set(), "cross_socket": set(), "memory_only": set()}
    cpu_pairs = []
    for node in topo.nodes:
        for other, value in node.distance.items():
            if other == node.id:
                classes["local"].add(value)
                continue
            mine, theirs = sockets.get(node.id), sockets.get(other)
            if not mine or not theirs:
                classes["memory_only"].add(value)
                continue
            cpu_pairs.append(value)
            if set(mine) & set(theirs):
                classes["same_socket"].add(value)
            else:
                classes["cross_socket"].add(value)
    result = {key: sorted(values) for key, values in classes.items()}
    local = min(result["local"]) if result["local"] else None
    farthest = max(cpu_pairs + result["local"]) if result["local"] else None
    result["max"] = farthest
    result["max_local_ratio"] = _ratio(farthest, local) if local else None
    return result


def _uniform(values):
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else None


def classify_clustering(topo, distances=None):
    """Name the sub-NUMA clustering mode, with the evidence used."""
    distances = distances if distances is not None else classify_distances(topo)
    cpu_nodes = [n for n in topo.nodes if n.cpus]
    node_sockets = topo.node_sockets()
    cpu_node_of = topo.cpu_nodes()
    per_socket = {
        pkg: len({cpu_node_of[c] for c in cpus if c in cpu_node_of}) for pkg, cpus in topo.packages.items()
    }
    nodes_per_socket = _uniform(per_socket.values())
    node_sizes = [len(n.cpus) for n in cpu_nodes]
    l3_sizes = [len(d) for d in topo.l3_domains]
    l3_spans_nodes = any(len({cpu_node_of.get(c) for c in d}) > 1 for d in topo.l3_domains)
    node_spans_sockets = any(len(node_sockets[n.id]) > 1 for n in cpu_nodes)
    l3_node_ratio = None
    if l3_sizes and node_sizes:
        l3_node_ratio = round(float(max(l3_sizes)) / max(node_sizes), 2)
    vendor = topo.cpu.vendor or ""
    evidence = {
        "sockets": len(topo.packages),
        "nodes_with_cpus": len(cpu_nodes),
        "nodes_per_socket": {str(k): v for k, v in sorted(per_socket.items())},
        "cpus_per_node": sorted(set(node_sizes)),
        "l3_cpus": sorted(set(l3_sizes)),
        "l3_node_ratio": l3_node_ratio,
        "l3_spans_nodes": l3_spans_nodes,
        "node_spans_sockets": node_spans_sockets,
        "distance_classes": {
            k: distances[k] for k in ("local", "same_socket", "cross_socket") if distances.get(k)
        },
        "vendor": vendor or None,
    }

    def result(mode, description):
        return Clustering(mode=mode, description=description, evidence=evidence)

    if not topo.packages or not cpu_nodes:
        return result("unknown", "socket or node topology unreadable")
    sockets = len(topo.packages)
    if len(cpu_nodes) == 1:
        if sockets == 1:
            return result("single_node", "one NUMA node, one socket")
        if vendor in AMD_VENDORS:
            return result("nps0", "AMD NPS0: one NUMA node interleaved over %d sockets" % sockets)
        return result(
            "unknown",
            "one NUMA node over %d sockets (memory interleaving, or a VM's virtual sockets)" % sockets,
        )
    if node_spans_sockets or nodes_per_socket is None:
        return result("unknown", "nodes do not divide the sockets evenly: %s per socket" % per_socket)
    if nodes_per_socket == 1:
        suffix = {"AuthenticAMD": " (AMD NPS1)", "GenuineIntel": " (Intel SNC off)"}.get(vendor, "")
        return result("node_per_socket", "one NUMA node per socket%s" % suffix)
    # several nodes inside each socket: SNC when the L3 spans nodes, NPS when the L3 (CCX) is
    # smaller than a node; the vendor decides only when the caches are unreadable
    if l3_sizes:
        snc = l3_node_ratio is not None and l3_node_ratio > 1 and l3_spans_nodes
        nps = l3_node_ratio is not None and l3_node_ratio < 1
    else:
        snc, nps = vendor in INTEL_VENDORS, vendor in AMD_VENDORS
    if snc and nodes_per_socket in SNC_COUNTS:
        return result(
            "snc%d" % nodes_per_socket,
            "Intel sub-NUMA clustering: %d nodes per socket share one L3" % nodes_per_socket,
        )
    if nps and nodes_per_socket in NPS_COUNTS:
        return result(
            "nps%d" % nodes_per_socket,
            "AMD NPS%d: %d nodes per socket, each holding several L3 (CCX) domains"
            % (nodes_per_socket, nodes_per_socket),
        )
    return result(
        "unknown", "%d nodes per socket, L3/node ratio %s: no known mode" % (nodes_per_socket, l3_node_ratio)
    )


def _risk_rules(topo, clustering, distances):
    """(tier, reason) pairs; the highest tier wins. Documented in docs/numa.md."""
    sockets = len(topo.packages)
    smt = bool(topo.smt_active) if topo.smt_active is not None else topo.threads_per_core > 1
    cpu_nodes = len([n for n in topo.nodes if n.cpus])
    online = len(topo.cpu_online)
    if sockets >= 2 and smt:
        yield (
            "high",
            (
                "%d sockets with SMT active: mount-lock cache lines bounce between sockets and share "
                "cores with siblings (the 2-socket + SMT hosts suffered most)" % sockets
            ),
        )
    elif sockets >= 2:
        yield "medium", "%d sockets: mount-lock cache lines cross the socket interconnect" % sockets
    if sockets == 1 and cpu_nodes >= 2:
        yield (
            "medium",
            "%d NUMA nodes in one socket (%s): lock traffic crosses nodes"
            % (
                cpu_nodes,
                clustering.mode,
            ),
        )
    ratio = distances.get("max_local_ratio")
    if ratio is not None and ratio >= 3:
        yield "medium", "remote/local distance ratio %.1f" % ratio
    if online >= MANY_CPUS:
        yield "medium", "%d online CPUs can contend for the global mount locks at once" % online
    if sockets == 1 and smt:
        yield "low", "SMT active on a single socket"
    if sockets == 1 and cpu_nodes == 1 and online < MANY_CPUS:
        yield "low", "single socket, single NUMA node, %d CPUs" % online
    elif sockets == 1 and cpu_nodes == 0 and online < MANY_CPUS:
        yield "low", "single socket, %d CPUs" % online


def assess_risk(topo, clustering, distances):
    """The topology_risk tier (low/medium/high, or unknown when nothing was readable)."""
    if not topo.packages and not topo.nodes:
        return Risk(tier="unknown", reasons=["neither sockets nor NUMA nodes could be read"])
    rules = list(_risk_rules(topo, clustering, distances))
    tier = max((rule_tier for rule_tier, _reason in rules), key=TIERS.index, default="low")
    reasons = [reason for _tier, reason in sorted(rules, key=lambda rule: -TIERS.index(rule[0]))]
    if not topo.packages:
        reasons.append("socket topology unreadable: tier may be understated")
    if not any(node.cpus for node in topo.nodes):
        reasons.append("NUMA nodes unreadable: tier from sockets, SMT and CPU count only")
    return Risk(tier=tier, reasons=reasons)


# --------------------------------------------------------------------------- facts


def _mb(kb):
    return None if kb is None else kb // 1024


def _cpu_set(cpus):
    return {"cpus": list(cpus), "cpulist": format_range_list(cpus), "cpu_count": len(cpus)}


def to_facts(topo):
    """The ``ansible_facts.numa`` dictionary (JSON-safe: node ids as string keys in distances)."""
    distances = classify_distances(topo)
    clustering = classify_clustering(topo, distances)
    risk = assess_risk(topo, clustering, distances)
    node_sockets = topo.node_sockets()
    cpu_node_of = topo.cpu_nodes()
    socket_of = topo.cpu_socket()

    nodes = []
    for node in topo.nodes:
        entry = {"id": node.id}
        entry.update(_cpu_set(node.cpus))
        entry.update(
            {
                "memory_total_mb": _mb(node.memory_total_kb),
                "memory_free_mb": _mb(node.memory_free_kb),
                "has_cpu": node.has_cpu,
                "has_memory": node.has_memory,
                "sockets": node_sockets.get(node.id, []),
                "distance": {str(k): v for k, v in node.distance.items()},
            }
        )
        nodes.append(entry)

    sockets = []
    for pkg, cpus in sorted(topo.packages.items()):
        cpu_set = set(cpus)
        entry = {"id": pkg}
        entry.update(_cpu_set(cpus))
        entry.update(
            {
                "nodes": sorted({cpu_node_of[c] for c in cpus if c in cpu_node_of}),
                "dies": sorted(die for (p, die) in topo.dies if p == pkg),
                "core_count": len([core for core in topo.cores if core[0] in cpu_set]),
                "l3_count": len([d for d in topo.l3_domains if d[0] in cpu_set]),
            }
        )
        sockets.append(entry)

    l3_domains = []
    for domain in sorted(topo.l3_domains):
        entry = _cpu_set(domain)
        entry["sockets"] = sorted({socket_of[c] for c in domain if c in socket_of})
        entry["nodes"] = sorted({cpu_node_of[c] for c in domain if c in cpu_node_of})
        l3_domains.append(entry)

    socket_count = len(topo.packages)
    threads = topo.threads_per_core
    smt_active = topo.smt_active if topo.smt_active is not None else (threads > 1 if topo.cores else None)
    return {
        "available": bool(topo.nodes),
        "degraded": bool(topo.warnings),
        "warnings": list(topo.warnings),
        "node_count": len(topo.nodes),
        "online": list(topo.node_online),
        "online_list": format_range_list(topo.node_online),
        "possible": list(topo.node_possible),
        "possible_list": format_range_list(topo.node_possible),
        "nodes": nodes,
        "cpuless_nodes": [n.id for n in topo.nodes if not n.cpus],
        "memoryless_nodes": [n.id for n in topo.nodes if n.has_memory is False],
        "cpus": {
            "possible": format_range_list(topo.cpu_possible),
            "present": format_range_list(topo.cpu_present),
            "online": format_range_list(topo.cpu_online),
            "offline": format_range_list(topo.cpu_offline),
            "online_count": len(topo.cpu_online),
            "offline_count": len(topo.cpu_offline),
        },
        "offline_cpus": list(topo.cpu_offline),
        "socket_count": socket_count,
        "sockets": sockets,
        "die_count": len(topo.dies),
        "core_count": len(topo.cores),
        "cores_per_socket": len(topo.cores) // socket_count if socket_count else None,
        "threads_per_core": threads or None,
        "l3_count": len(topo.l3_domains),
        "l3_domains": l3_domains,
        "smt": {"control": topo.smt_control, "active": smt_active, "threads_per_core": threads or None},
        "cpu": {
            "vendor": topo.cpu.vendor,
            "model_name": topo.cpu.model_name,
            "family": topo.cpu.family,
            "model": topo.cpu.model,
            "stepping": topo.cpu.stepping,
        },
        "dmi": dict(topo.dmi),
        "clustering": {
            "mode": clustering.mode,
            "description": clustering.description,
            "evidence": clustering.evidence,
        },
        "distances": distances,
        "topology_risk": {"tier": risk.tier, "reasons": risk.reasons},
    }


def numa_facts(sysfs_root="/sys", procfs_root="/proc"):
    """collect() + to_facts(): the ``ansible_facts.numa`` value for the tree under the roots."""
    return to_facts(collect(sysfs_root, procfs_root))

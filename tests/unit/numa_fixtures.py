"""Build sysfs/procfs trees for real CPU/NUMA layouts from a compact spec.

A tree is ``<root>/sys/...`` plus ``<root>/proc/cpuinfo``, laid out the way the kernel does, so
the collector reads it with ``sysfs_root=<root>/sys, procfs_root=<root>/proc`` and
``lscpu --sysroot <root>`` reads the same files (it wants the hex masks, we want the lists).

CPU numbering follows x86 Linux: first threads of every core, socket by socket, then the
second threads (``cpu = thread * total_cores + core``), which gives the EPYC 9654 NPS2 node
``0-47,192-239`` from DESIGN.md §4.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import format_range_list


@dataclass
class Layout:
    name: str
    vendor: str
    model_name: str
    family: int
    model: int
    sockets: int
    cores_per_socket: int
    threads_per_core: int = 1
    # 0 means one node spanning every socket (AMD NPS0 / node interleaving)
    nodes_per_socket: int = 1
    dies_per_socket: int = 1
    # cores sharing one L3; 0 means the whole socket (Intel mesh LLC)
    l3_cores: int = 0
    local: int = 10
    same_socket: int = 12
    cross_socket: int = 21
    node_ids: Optional[List[int]] = None
    possible_nodes: Optional[str] = None
    # memory-only nodes (CXL/HBM): id -> distance to every other node
    memory_only_nodes: Dict[int, int] = field(default_factory=dict)
    memory_mb_per_node: int = 65536
    smt_control: str = "on"
    offline_cpus: Tuple[int, ...] = ()
    dmi: Dict[str, str] = field(default_factory=dict)

    @property
    def total_cores(self):
        return self.sockets * self.cores_per_socket

    @property
    def cpu_count(self):
        return self.total_cores * self.threads_per_core

    def offline(self):
        off = set(self.offline_cpus)
        if self.smt_control in ("off", "forceoff"):
            off.update(range(self.total_cores, self.cpu_count))
        return off

    def cpu_place(self, cpu):
        """(socket, core index in socket, thread) of a logical CPU."""
        thread, core = divmod(cpu, self.total_cores)
        socket, local_core = divmod(core, self.cores_per_socket)
        return socket, local_core, thread

    def node_index(self, socket, local_core):
        if self.nodes_per_socket == 0:
            return 0
        return socket * self.nodes_per_socket + local_core * self.nodes_per_socket // self.cores_per_socket

    def cpu_node_ids(self):
        count = 1 if self.nodes_per_socket == 0 else self.sockets * self.nodes_per_socket
        return list(self.node_ids or range(count))

    def all_node_ids(self):
        return sorted(self.cpu_node_ids() + list(self.memory_only_nodes))

    def node_sockets(self, node_id):
        index = self.cpu_node_ids().index(node_id)
        if self.nodes_per_socket == 0:
            return set(range(self.sockets))
        return {index // self.nodes_per_socket}

    def distance(self, a, b):
        if a == b:
            return self.local
        for mem in (a, b):
            if mem in self.memory_only_nodes:
                return self.memory_only_nodes[mem]
        if self.node_sockets(a) & self.node_sockets(b):
            return self.same_socket
        return self.cross_socket

    def expected_node_cpus(self):
        """Online CPUs per node id, what the kernel lists in nodeN/cpulist."""
        ids = self.cpu_node_ids()
        result = {node: [] for node in self.all_node_ids()}
        offline = self.offline()
        for cpu in range(self.cpu_count):
            if cpu in offline:
                continue
            socket, core, _thread = self.cpu_place(cpu)
            result[ids[self.node_index(socket, core)]].append(cpu)
        return result


def cpumask(cpus, nbits):
    """The kernel's hex bitmap form: 32-bit words, most significant first, comma separated."""
    value = 0
    for cpu in cpus:
        value |= 1 << cpu
    words = max(1, (nbits + 31) // 32)
    parts = []
    for i in reversed(range(words)):
        parts.append("%08x" % ((value >> (32 * i)) & 0xFFFFFFFF))
    lead_bits = nbits - 32 * (words - 1)
    parts[0] = parts[0][-max(1, (lead_bits + 3) // 4) :]
    return ",".join(parts)


def _write(path, text):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def build_tree(layout, root):
    """Write the sysfs/procfs files for ``layout`` under ``root``; return ``root``."""
    root = str(root)
    cpu_dir = os.path.join(root, "sys/devices/system/cpu")
    node_dir = os.path.join(root, "sys/devices/system/node")
    nbits = layout.cpu_count
    offline = layout.offline()
    online = [c for c in range(nbits) if c not in offline]
    online_set = set(online)

    groups = {"core": {}, "package": {}, "die": {}, "l3": {}}
    for cpu in online:
        socket, core, _thread = layout.cpu_place(cpu)
        die = core * layout.dies_per_socket // layout.cores_per_socket
        l3 = core // layout.l3_cores if layout.l3_cores else 0
        groups["core"].setdefault((socket, core), []).append(cpu)
        groups["package"].setdefault(socket, []).append(cpu)
        groups["die"].setdefault((socket, die), []).append(cpu)
        groups["l3"].setdefault((socket, l3), []).append(cpu)

    def both(base, name, cpus):
        _write(os.path.join(base, name), cpumask(cpus, nbits))
        _write(os.path.join(base, name + "_list"), format_range_list(cpus))

    for cpu in range(nbits):
        base = os.path.join(cpu_dir, "cpu%d" % cpu)
        _write(os.path.join(base, "online"), "0" if cpu in offline else "1")
        if cpu not in online_set:
            continue  # the kernel removes topology/ and cache/ of an offline CPU
        socket, core, _thread = layout.cpu_place(cpu)
        die = core * layout.dies_per_socket // layout.cores_per_socket
        l3 = core // layout.l3_cores if layout.l3_cores else 0
        topo = os.path.join(base, "topology")
        _write(os.path.join(topo, "physical_package_id"), str(socket))
        _write(os.path.join(topo, "die_id"), str(die))
        _write(os.path.join(topo, "core_id"), str(core))
        siblings = groups["core"][(socket, core)]
        both(topo, "thread_siblings", siblings)
        both(topo, "core_cpus", siblings)
        both(topo, "core_siblings", groups["package"][socket])
        both(topo, "package_cpus", groups["package"][socket])
        both(topo, "die_cpus", groups["die"][(socket, die)])
        caches = (
            (1, "Data", "48K", siblings, core),
            (1, "Instruction", "32K", siblings, core),
            (2, "Unified", "2048K", siblings, core),
            (3, "Unified", "32768K", groups["l3"][(socket, l3)], socket * 1000 + l3),
        )
        for index, (level, kind, size, shared, cache_id) in enumerate(caches):
            # L1/L2 only carry what lscpu needs to list them; the L3 is complete.
            cache = os.path.join(base, "cache/index%d" % index)
            _write(os.path.join(cache, "level"), str(level))
            _write(os.path.join(cache, "type"), kind)
            _write(os.path.join(cache, "shared_cpu_map"), cpumask(shared, nbits))
            if level == 3:
                _write(os.path.join(cache, "size"), size)
                _write(os.path.join(cache, "id"), str(cache_id))
                _write(os.path.join(cache, "shared_cpu_list"), format_range_list(shared))

    everything = format_range_list(range(nbits))
    _write(os.path.join(cpu_dir, "possible"), everything)
    _write(os.path.join(cpu_dir, "present"), everything)
    _write(os.path.join(cpu_dir, "online"), format_range_list(online))
    _write(os.path.join(cpu_dir, "offline"), format_range_list(offline))
    smt_active = any(len(cpus) > 1 for cpus in groups["core"].values())
    _write(os.path.join(cpu_dir, "smt/control"), layout.smt_control)
    _write(os.path.join(cpu_dir, "smt/active"), "1" if smt_active else "0")

    node_cpus = layout.expected_node_cpus()
    node_list = layout.all_node_ids()
    for node in node_list:
        base = os.path.join(node_dir, "node%d" % node)
        cpus = node_cpus[node]
        _write(os.path.join(base, "cpulist"), format_range_list(cpus))
        _write(os.path.join(base, "cpumap"), cpumask(cpus, nbits))
        _write(os.path.join(base, "distance"), " ".join(str(layout.distance(node, o)) for o in node_list))
        total_kb = layout.memory_mb_per_node * 1024
        free_kb = total_kb * 3 // 4
        _write(
            os.path.join(base, "meminfo"),
            "\n".join(
                [
                    "Node %d MemTotal:       %d kB" % (node, total_kb),
                    "Node %d MemFree:        %d kB" % (node, free_kb),
                    "Node %d MemUsed:        %d kB" % (node, total_kb - free_kb),
                    "Node %d HugePages_Total:     0" % node,
                ]
            ),
        )
    _write(os.path.join(node_dir, "online"), format_range_list(node_list))
    _write(os.path.join(node_dir, "possible"), layout.possible_nodes or format_range_list(node_list))
    _write(os.path.join(node_dir, "has_cpu"), format_range_list(n for n in node_list if node_cpus[n]))
    _write(os.path.join(node_dir, "has_memory"), format_range_list(node_list))
    _write(os.path.join(node_dir, "has_normal_memory"), format_range_list(node_list))

    for key, value in layout.dmi.items():
        _write(os.path.join(root, "sys/class/dmi/id", key), value)

    blocks = []
    for cpu in online:
        socket, core, _thread = layout.cpu_place(cpu)
        blocks.append(
            "\n".join(
                [
                    "processor\t: %d" % cpu,
                    "vendor_id\t: %s" % layout.vendor,
                    "cpu family\t: %d" % layout.family,
                    "model\t\t: %d" % layout.model,
                    "model name\t: %s" % layout.model_name,
                    "stepping\t: 1",
                    "physical id\t: %d" % socket,
                    "siblings\t: %d" % len(groups["package"][socket]),
                    "core id\t\t: %d" % core,
                    "cpu cores\t: %d" % layout.cores_per_socket,
                    "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep ht lm",
                    "",
                ]
            )
        )
    _write(os.path.join(root, "proc/cpuinfo"), "\n".join(blocks))
    return root


# Real layouts from the issue and DESIGN.md §4 (CPU counts, node splits and SLIT values).
LAYOUTS = {
    "spr_8480_snc4": Layout(
        name="Sapphire Rapids 8480+ 2S SNC4, SMT off in BIOS (8 nodes x 14 CPUs, 10/12/21)",
        vendor="GenuineIntel",
        model_name="Intel(R) Xeon(R) Platinum 8480+",
        family=6,
        model=143,
        sockets=2,
        cores_per_socket=56,
        threads_per_core=1,
        nodes_per_socket=4,
        l3_cores=0,
        smt_control="notsupported",
        dmi={"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R760"},
    ),
    "genoa_9654_nps2": Layout(
        name="EPYC 9654 2S NPS2, SMT on (4 nodes, 10/12/32)",
        vendor="AuthenticAMD",
        model_name="AMD EPYC 9654 96-Core Processor",
        family=25,
        model=17,
        sockets=2,
        cores_per_socket=96,
        threads_per_core=2,
        nodes_per_socket=2,
        l3_cores=8,
        cross_socket=32,
        dmi={"sys_vendor": "Supermicro", "product_name": "AS -2125HS-TNR"},
    ),
    "milan_7763_nps4": Layout(
        name="EPYC 7763 (Milan) 2S NPS4, SMT on (8 nodes, 10/12/32)",
        vendor="AuthenticAMD",
        model_name="AMD EPYC 7763 64-Core Processor",
        family=25,
        model=1,
        sockets=2,
        cores_per_socket=64,
        threads_per_core=2,
        nodes_per_socket=4,
        l3_cores=8,
        cross_socket=32,
    ),
    "turin_9575f_nps1": Layout(
        name="EPYC 9575F (Turin) 2S NPS1, SMT on (2 nodes, 10/32)",
        vendor="AuthenticAMD",
        model_name="AMD EPYC 9575F 64-Core Processor",
        family=26,
        model=2,
        sockets=2,
        cores_per_socket=64,
        threads_per_core=2,
        nodes_per_socket=1,
        l3_cores=8,
        cross_socket=32,
    ),
    "genoa_9124_nps0": Layout(
        name="EPYC 9124 2S NPS0, SMT on (one node over both sockets)",
        vendor="AuthenticAMD",
        model_name="AMD EPYC 9124 16-Core Processor",
        family=25,
        model=17,
        sockets=2,
        cores_per_socket=16,
        threads_per_core=2,
        nodes_per_socket=0,
        l3_cores=4,
        memory_mb_per_node=262144,
    ),
    "vm_m6i_2xlarge": Layout(
        name="Single-node cloud VM (AWS m6i.2xlarge, 4 cores x 2 threads)",
        vendor="GenuineIntel",
        model_name="Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
        family=6,
        model=106,
        sockets=1,
        cores_per_socket=4,
        threads_per_core=2,
        l3_cores=0,
        memory_mb_per_node=32768,
        dmi={"sys_vendor": "Amazon EC2", "product_name": "m6i.2xlarge", "board_vendor": "Amazon EC2"},
    ),
    "sparse_nodes_0_8": Layout(
        name="2S with sparse node ids 0 and 8",
        vendor="GenuineIntel",
        model_name="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        family=6,
        model=106,
        sockets=2,
        cores_per_socket=8,
        threads_per_core=2,
        node_ids=[0, 8],
        possible_nodes="0-15",
        cross_socket=20,
    ),
    "spr_cxl_memory_node": Layout(
        name="1S Sapphire Rapids with a memory-only CXL node 1",
        vendor="GenuineIntel",
        model_name="Intel(R) Xeon(R) Gold 6430",
        family=6,
        model=143,
        sockets=1,
        cores_per_socket=32,
        threads_per_core=2,
        memory_only_nodes={1: 14},
    ),
    "icx_offline_cpus": Layout(
        name="1S Ice Lake, SMT on, CPUs 6-7 and 20 taken offline",
        vendor="GenuineIntel",
        model_name="Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz",
        family=6,
        model=106,
        sockets=1,
        cores_per_socket=16,
        threads_per_core=2,
        offline_cpus=(6, 7, 20),
    ),
    "icx_2s_smt_off": Layout(
        name="2S Ice Lake 8380 with SMT turned off at runtime (siblings offline, 10/20)",
        vendor="GenuineIntel",
        model_name="Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz",
        family=6,
        model=106,
        sockets=2,
        cores_per_socket=40,
        threads_per_core=2,
        cross_socket=20,
        smt_control="off",
    ),
    "gnr_6960p_snc3": Layout(
        name="Granite Rapids 6960P 2S SNC3, SMT off in BIOS (6 nodes x 24 CPUs)",
        vendor="GenuineIntel",
        model_name="Intel(R) Xeon(R) 6960P",
        family=6,
        model=173,
        sockets=2,
        cores_per_socket=72,
        nodes_per_socket=3,
        smt_control="notsupported",
    ),
}

#!/usr/bin/python
# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: numa_facts
short_description: NUMA, socket, cache and SMT topology facts, with a mount-contention risk tier
description:
  - Reads the NUMA nodes (C(devices/system/node)), CPU topology (C(devices/system/cpu)), the L3
    cache domains, SMT state and DMI identity from sysfs, and the CPU model from C(/proc/cpuinfo).
  - Names the sub-NUMA clustering mode (single node, one node per socket, Intel SNC2/3/4/6,
    AMD NPS2/4, AMD NPS0 or unknown) and returns the evidence it used.
  - Groups NUMA distances into local, same-socket and cross-socket classes, and rates the topology
    as a risk factor for mount-lock contention (C(topology_risk)), because the global mount locks'
    cache lines bounce between sockets, NUMA nodes and SMT siblings.
  - A degraded tree (a container with a masked C(/sys), a missing C(node/) directory, unreadable
    files) gives degraded facts and a warning naming what was missing, never a failure.
  - Ansible core has no NUMA facts; this module fills that gap.
version_added: 0.1.0
author:
  - mountops contributors (@mountops)
options:
  sysfs_root:
    description:
      - Root of the sysfs tree to read. Point it at a captured tree to analyse another host offline.
    type: path
    default: /sys
  procfs_root:
    description:
      - Root of the procfs tree to read (only C(cpuinfo) is used).
    type: path
    default: /proc
    aliases: [proc_root]
extends_documentation_fragment:
  - mountops.fleet.attributes.facts
notes:
  - NUMA distances (SLIT values) are ordinal, not latencies; C(distances.max_local_ratio) compares
    them only as the firmware reports them.
  - Offline CPUs have no topology in sysfs, so they are counted in C(offline_cpus) but belong to no
    core, socket, node or L3 domain.
  - Root is not needed; the DMI serial number and UUID are never read.
seealso:
  - name: Kernel documentation for the NUMA sysfs interface
    description: The C(node/) files this module reads.
    link: https://www.kernel.org/doc/html/latest/admin-guide/mm/numaperf.html
"""

EXAMPLES = r"""
- name: Gather NUMA and CPU topology facts
  mountops.fleet.numa_facts:

- name: Warn about hosts where mount contention is amplified by the hardware
  ansible.builtin.debug:
    msg: "{{ ansible_facts.numa.topology_risk.reasons }}"
  when: ansible_facts.numa.topology_risk.tier == 'high'

- name: Analyse a sysfs/procfs tree captured from another host
  mountops.fleet.numa_facts:
    sysfs_root: /srv/captures/db42/sys
    procfs_root: /srv/captures/db42/proc
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(ansible_facts.numa).
  returned: always
  type: dict
  contains:
    numa:
      description: NUMA and CPU topology of the host (or of the tree under O(sysfs_root)).
      returned: always
      type: dict
      contains:
        available:
          description: Whether NUMA node facts could be read (C(devices/system/node) exists and lists a node).
          returned: always
          type: bool
          sample: true
        degraded:
          description: Whether anything expected could not be read; see RV(ansible_facts.numa.warnings).
          returned: always
          type: bool
          sample: false
        warnings:
          description: What was missing or unparsable, by path. Also emitted as task warnings.
          returned: always
          type: list
          elements: str
          sample: ["/sys/devices/system/node is missing (CONFIG_NUMA off, or /sys masked in a container): no NUMA node facts"]
        node_count:
          description: Number of online NUMA nodes, memory-only nodes included.
          returned: always
          type: int
          sample: 4
        online:
          description: Online node ids (from C(node/online)); they can be sparse.
          returned: always
          type: list
          elements: int
          sample: [0, 8]
        online_list:
          description: RV(ansible_facts.numa.online) in range-list form.
          returned: always
          type: str
          sample: "0,8"
        possible:
          description: Possible node ids (from C(node/possible)).
          returned: always
          type: list
          elements: int
          sample: [0, 1, 2, 3]
        possible_list:
          description: RV(ansible_facts.numa.possible) in range-list form.
          returned: always
          type: str
          sample: "0-15"
        nodes:
          description: One entry per online node, by ascending id.
          returned: always
          type: list
          elements: dict
          contains:
            id:
              description: Node id.
              type: int
              sample: 0
            cpus:
              description: Online CPUs of the node.
              type: list
              elements: int
              sample: [0, 1, 2, 3]
            cpulist:
              description: The same CPUs as a range list; empty for a memory-only node.
              type: str
              sample: "0-47,192-239"
            cpu_count:
              description: Number of online CPUs in the node.
              type: int
              sample: 96
            memory_total_mb:
              description: C(MemTotal) of the node in MiB (rounded down, as C(numactl --hardware)); null if unreadable.
              type: int
              sample: 386048
            memory_free_mb:
              description: C(MemFree) of the node in MiB; null if unreadable.
              type: int
              sample: 301233
            has_cpu:
              description: Whether the node is in C(node/has_cpu).
              type: bool
              sample: true
            has_memory:
              description: Whether the node is in C(node/has_memory); null if unknown.
              type: bool
              sample: true
            sockets:
              description: Socket (physical package) ids of the node's CPUs; two or more under AMD NPS0.
              type: list
              elements: int
              sample: [0]
            distance:
              description:
                - The node's SLIT row keyed by node id (a string, as JSON keys are), mapped through the
                  online node list; empty if the row did not match it.
              type: dict
              sample: {"0": 10, "1": 12, "2": 32, "3": 32}
        cpuless_nodes:
          description: Memory-only nodes (CXL or HBM expanders) without CPUs.
          returned: always
          type: list
          elements: int
          sample: [2]
        memoryless_nodes:
          description: Nodes that have CPUs but no memory.
          returned: always
          type: list
          elements: int
          sample: []
        cpus:
          description: CPU sets from C(devices/system/cpu), in range-list form, with counts.
          returned: always
          type: dict
          contains:
            possible:
              description: Possible CPUs.
              type: str
              sample: "0-383"
            present:
              description: Present CPUs.
              type: str
              sample: "0-383"
            online:
              description: Online CPUs.
              type: str
              sample: "0-383"
            offline:
              description: Offline CPUs (empty string if none).
              type: str
              sample: "80-159"
            online_count:
              description: Number of online CPUs.
              type: int
              sample: 384
            offline_count:
              description: Number of offline CPUs.
              type: int
              sample: 0
        offline_cpus:
          description: Offline CPU ids (SMT turned off at runtime takes the siblings offline).
          returned: always
          type: list
          elements: int
          sample: [6, 7, 20]
        socket_count:
          description: Number of sockets (physical packages) with an online CPU.
          returned: always
          type: int
          sample: 2
        sockets:
          description: One entry per socket (physical package), by id.
          returned: always
          type: list
          elements: dict
          contains:
            id:
              description: C(physical_package_id).
              type: int
              sample: 0
            cpus:
              description: Online CPUs of the socket.
              type: list
              elements: int
              sample: [0, 1, 2]
            cpulist:
              description: The same CPUs as a range list.
              type: str
              sample: "0-95,192-287"
            cpu_count:
              description: Number of online CPUs in the socket.
              type: int
              sample: 192
            nodes:
              description: NUMA nodes holding the socket's CPUs.
              type: list
              elements: int
              sample: [0, 1]
            dies:
              description: Die ids in the socket (C(die_id); one die when the kernel has no die level).
              type: list
              elements: int
              sample: [0]
            core_count:
              description: Cores in the socket (distinct thread-sibling sets).
              type: int
              sample: 96
            l3_count:
              description: L3 domains in the socket.
              type: int
              sample: 12
        die_count:
          description: Number of dies over all sockets.
          returned: always
          type: int
          sample: 2
        core_count:
          description: Number of cores with an online CPU (distinct thread-sibling sets, as lscpu counts).
          returned: always
          type: int
          sample: 192
        cores_per_socket:
          description: RV(ansible_facts.numa.core_count) divided by the socket count (lscpu's "Core(s) per socket"); null without sockets.
          returned: always
          type: int
          sample: 96
        threads_per_core:
          description: Largest number of online threads in one core (lscpu's "Thread(s) per core"); null without topology.
          returned: always
          type: int
          sample: 2
        l3_count:
          description: Number of L3 domains.
          returned: always
          type: int
          sample: 24
        l3_domains:
          description: CPU sets sharing one L3 cache (C(cache/index*/) with C(level) 3).
          returned: always
          type: list
          elements: dict
          contains:
            cpus:
              description: Online CPUs sharing the L3.
              type: list
              elements: int
              sample: [0, 1, 2, 3, 4, 5, 6, 7, 192, 193, 194, 195, 196, 197, 198, 199]
            cpulist:
              description: The same CPUs as a range list.
              type: str
              sample: "0-7,192-199"
            cpu_count:
              description: Number of CPUs sharing the L3.
              type: int
              sample: 16
            sockets:
              description: Sockets of those CPUs.
              type: list
              elements: int
              sample: [0]
            nodes:
              description: NUMA nodes of those CPUs; more than one under Intel SNC.
              type: list
              elements: int
              sample: [0]
        smt:
          description: Simultaneous multithreading (hyperthreading) state.
          returned: always
          type: dict
          contains:
            control:
              description: C(cpu/smt/control) (C(on), C(off), C(forceoff), C(notsupported), C(notimplemented)); null if unreadable.
              type: str
              sample: "on"
            active:
              description: C(cpu/smt/active), or whether a core has two online threads when that file is missing.
              type: bool
              sample: true
            threads_per_core:
              description: Same as RV(ansible_facts.numa.threads_per_core).
              type: int
              sample: 2
        cpu:
          description: CPU model from the first record of C(/proc/cpuinfo); values are strings as the kernel prints them, null if absent.
          returned: always
          type: dict
          contains:
            vendor:
              description: C(vendor_id) (x86) or C(CPU implementer) (arm64).
              type: str
              sample: AuthenticAMD
            model_name:
              description: C(model name).
              type: str
              sample: AMD EPYC 9654 96-Core Processor
            family:
              description: C(cpu family) (x86) or C(CPU architecture) (arm64).
              type: str
              sample: "25"
            model:
              description: C(model) (x86) or C(CPU part) (arm64).
              type: str
              sample: "17"
            stepping:
              description: C(stepping) (x86) or C(CPU variant) (arm64).
              type: str
              sample: "1"
        dmi:
          description:
            - Readable DMI identity from C(class/dmi/id) (C(sys_vendor), C(product_name), C(product_family),
              C(product_version), C(board_vendor), C(board_name), C(chassis_vendor), C(chassis_asset_tag),
              C(bios_vendor)); only keys with a value are present. On clouds C(product_name) is often the
              instance type. Empty where there is no DMI (arm64 without SMBIOS, some VMs).
          returned: always
          type: dict
          sample: {"sys_vendor": "Amazon EC2", "product_name": "m6i.2xlarge"}
        clustering:
          description: The sub-NUMA clustering mode and the evidence for it.
          returned: always
          type: dict
          contains:
            mode:
              description:
                - C(single_node) (one socket, one node), C(node_per_socket) (AMD NPS1 or Intel SNC off),
                  C(snc2), C(snc3), C(snc4), C(snc6) (Intel sub-NUMA clustering, several nodes share
                  the socket's L3), C(nps2), C(nps4) (AMD, each node holds several L3/CCX domains),
                  C(nps0) (AMD, one node over several sockets) or C(unknown).
              type: str
              sample: nps2
            description:
              description: One line explaining the mode.
              type: str
              sample: "AMD NPS2: 2 nodes per socket, each holding several L3 (CCX) domains"
            evidence:
              description:
                - What the mode was decided from, C(sockets), C(nodes_with_cpus), C(nodes_per_socket) (by
                  socket id), C(cpus_per_node), C(l3_cpus) (distinct L3 domain sizes), C(l3_node_ratio)
                  (largest L3 over largest node, above 1 means the L3 spans nodes), C(l3_spans_nodes),
                  C(node_spans_sockets), C(distance_classes) and C(vendor).
              type: dict
              sample: {"sockets": 2, "nodes_with_cpus": 4, "nodes_per_socket": {"0": 2, "1": 2}, "cpus_per_node": [96],
                       "l3_cpus": [16], "l3_node_ratio": 0.17, "l3_spans_nodes": false, "node_spans_sockets": false,
                       "distance_classes": {"local": [10], "same_socket": [12], "cross_socket": [32]},
                       "vendor": "AuthenticAMD"}
        distances:
          description: NUMA distance classes.
          returned: always
          type: dict
          contains:
            local:
              description: Distinct distances of each node to itself.
              type: list
              elements: int
              sample: [10]
            same_socket:
              description: Distinct distances between different nodes of the same socket.
              type: list
              elements: int
              sample: [12]
            cross_socket:
              description: Distinct distances between nodes of different sockets.
              type: list
              elements: int
              sample: [32]
            memory_only:
              description: Distinct distances to or from memory-only nodes.
              type: list
              elements: int
              sample: [14]
            max:
              description: Largest distance between nodes with CPUs (where lock cache lines travel); null without distances.
              type: int
              sample: 32
            max_local_ratio:
              description: RV(ansible_facts.numa.distances.max) over the smallest local distance, 2 decimals; null without distances.
              type: float
              sample: 3.2
        topology_risk:
          description:
            - How much the hardware amplifies mount-lock contention. C(high) for two or more sockets with
              SMT active; C(medium) for two or more sockets, several NUMA nodes in one socket, a
              remote/local distance ratio of 3 or more, or 64 or more online CPUs; C(low) otherwise;
              C(unknown) when neither sockets nor nodes could be read. The highest rule wins.
          returned: always
          type: dict
          contains:
            tier:
              description: C(low), C(medium), C(high) or C(unknown).
              type: str
              sample: high
            reasons:
              description: Every rule that matched, highest tier first.
              type: list
              elements: str
              sample:
                - >-
                  2 sockets with SMT active: mount-lock cache lines bounce between sockets and share
                  cores with siblings (the 2-socket + SMT hosts suffered most)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mountops.fleet.plugins.module_utils._gather import argument_spec, run_facts_module


def get_argument_spec():
    return argument_spec("numa")


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    run_facts_module("numa", module)


if __name__ == "__main__":
    main()

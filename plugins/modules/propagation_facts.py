#!/usr/bin/python
# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: propagation_facts
short_description: Mount propagation facts across every mount namespace of a host
description:
  - Enumerates every mount namespace on the host from C(/proc/[0-9]*/ns/mnt), deduplicated on the
    namespace inode, and reads each namespace's mount table exactly once.
  - Attributes each namespace to an owner (host, container with its runtime, systemd service,
    a namespace pinned only by an nsfs bind mount, or other) from its cgroup, comm and runc state.
  - Analyses peer groups across namespaces, slave fan-out, and per namespace the predicted cost
    of reading its mountinfo (the kernel's C(get_dominating_id) walk over the master's peer ring).
  - Reading mount tables takes the kernel's C(namespace_sem); the module bounds its own load with
    O(max_namespaces) and O(time_budget_ms) and reports a C(partial) collection when it stops early.
  - Without root, only the caller's own processes can be inspected; the module then returns
    degraded facts and a warning saying how many processes it could not inspect.
version_added: 0.1.0
author:
  - mountops contributors (@mountops)
options:
  proc_root:
    description:
      - Root of the procfs tree to read. Point it at another mount of procfs (for example a host's
        C(/proc) bind-mounted into a container) or at a captured tree for offline analysis.
    type: path
    default: /proc
  run_root:
    description:
      - Root of the runtime state tree, used to attribute plain runc containers from runc's
        C(state.json) files (C(runc/*), C(docker/runtime-runc/*/*), C(containerd/runc/*/*)).
    type: path
    default: /run
  backend:
    description:
      - How to read mount tables.
      - C(mountinfo) reads C(/proc/PID/mountinfo) text.
      - C(statmount) uses C(listmount(2)) and C(statmount(2)) with the namespace ID (Linux 6.11+),
        without C(STATMOUNT_PROPAGATE_FROM), so slave namespaces cost no peer-ring walk to read;
        it fails when the kernel does not support it.
      - C(auto) uses C(statmount) when the kernel supports it and it measured cheaper on the host
        namespace and one other, otherwise C(mountinfo). The choice and the timings are returned.
    type: str
    choices: [auto, mountinfo, statmount]
    default: auto
  max_namespaces:
    description:
      - Read at most this many namespaces (the host namespace is always first). C(0) means no limit.
    type: int
    default: 0
  time_budget_ms:
    description:
      - Stop reading further namespaces once this much wall time has passed. C(0) means no limit.
    type: int
    default: 10000
  top_n:
    description: How many peer groups and slave fan-out entries to return, largest first.
    type: int
    default: 10
  detail:
    description: Also return every mount of every namespace (C(mount_list)); large on busy hosts.
    type: bool
    default: false
extends_documentation_fragment:
  - mountops.fleet.attributes.facts
notes:
  - Peer group and mount IDs are global and reused after a group empties, so compare them only
    within one collection.
  - Namespaces kept alive only by an open file descriptor (no process, no nsfs bind mount) cannot
    be found cheaply and are not reported.
"""

EXAMPLES = r"""
- name: Gather mount propagation facts
  mountops.fleet.propagation_facts:

- name: Cheap look on a very busy host, at most 200 namespaces or 2 seconds
  mountops.fleet.propagation_facts:
    max_namespaces: 200
    time_budget_ms: 2000

- name: Analyse a host's procfs bind-mounted into this container, with every mount listed
  mountops.fleet.propagation_facts:
    proc_root: /host/proc
    backend: mountinfo
    detail: true

- name: Fail the play when containers sit in host peer groups
  ansible.builtin.assert:
    that: ansible_facts.mount_propagation.summary.container_namespaces_in_host_peer_groups == 0
"""

RETURN = r"""
ansible_facts:
  description: Facts under one key, C(mount_propagation).
  returned: always
  type: complex
  contains:
    mount_propagation:
      description: Propagation picture of the whole host.
      returned: always
      type: complex
      contains:
        summary:
          description: Host-level numbers.
          returned: always
          type: dict
          contains:
            namespaces: {description: Namespaces reported (read or pinned)., type: int, returned: always}
            host_namespace: {description: Inode of the host (PID 1) mount namespace., type: int, returned: always}
            mounts: {description: Mounts summed over all namespaces read., type: int, returned: always}
            host_mounts: {description: Mounts in the host namespace., type: int, returned: always}
            propagation:
              description: Mount counts by propagation type (shared, slave, shared_slave, private, unbindable).
              type: dict
              returned: always
            peer_groups: {description: Distinct peer groups with at least one shared member., type: int, returned: always}
            largest_peer_group:
              description: The peer group with most members (id, members, namespaces); null without groups.
              type: dict
              returned: always
            container_namespaces: {description: Namespaces attributed to containers., type: int, returned: always}
            container_namespaces_in_host_peer_groups:
              description: Container namespaces with at least one mount that is a peer of a host mount.
              type: int
              returned: always
            container_namespaces_slave_to_host:
              description: Container namespaces with at least one mount that receives events from a host group.
              type: int
              returned: always
            pinned_namespaces: {description: Namespaces without a process kept alive by nsfs bind mounts., type: int, returned: always}
            max_predicted_read_cost:
              description: Highest predicted mountinfo read cost (value, namespace inode, owner kind).
              type: dict
              returned: always
            host_predicted_read_cost: {description: Predicted read cost of the host namespace., type: int, returned: always}
            mount_max: {description: The fs.mount-max limit (per namespace)., type: int, returned: always}
            min_mount_headroom:
              description: The namespace closest to fs.mount-max (value, namespace).
              type: dict
              returned: always
            host_shared_subtrees:
              description: >-
                Roots of the host's shared subtrees (shared mounts whose parent is not shared): mount_point,
                peer_group, members, namespaces, slaves.
              type: list
              elements: dict
              returned: always
        peer_groups:
          description: >-
            The top_n largest peer groups: id, members (mounts), namespaces spanned, slaves,
            slave_namespaces, includes_host, sample_mount_points.
          type: list
          elements: dict
          returned: always
        slave_fanout:
          description: >-
            The top_n groups with most slaves: master (group id), slaves, namespaces, master_members.
          type: list
          elements: dict
          returned: always
        namespaces:
          description: >-
            One compact record per namespace, host first. Keys are inode, key (C(mnt:[N])), is_host,
            pid (the one read), processes, comm, cgroup, owner (kind host/container/service/pinned/other,
            runtime, container_id, unit), pinned_by (namespace, pid, mount_point), read, mounts,
            propagation (counts by type), peer_groups, host_peer_mounts, slave_to_host_mounts,
            predicted_read_cost, mount_headroom; and mount_list with O(detail=true). Count fields are
            null for a pinned namespace whose table could not be read.
          type: list
          elements: dict
          returned: always
        collection:
          description: >-
            How the collection went: backend, backend_reason, calibration_ms, namespaces_seen,
            namespaces_read, namespaces_skipped (every process exited mid-scan), namespaces_failed and
            failures, processes_scanned, processes_vanished, processes_denied, partial, partial_reason
            (max_namespaces or time_budget_ms), namespaces_not_read, covered (inodes read, only when
            partial), duration_ms.
          type: dict
          returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mountops.fleet.plugins.module_utils._gather import argument_spec, run_facts_module


def get_argument_spec():
    return argument_spec("propagation")


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    run_facts_module("propagation", module)


if __name__ == "__main__":
    main()

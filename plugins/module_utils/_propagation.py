# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Analysis of a namespace collection: peer groups, slave fan-out and predicted read cost.

Pure: takes a ``_namespaces.Collection`` and returns the ``mount_propagation`` facts dict.

Peer group and mount IDs are global, so ``shared:64`` in two namespaces is one group. Reading
mountinfo in a namespace calls ``get_dominating_id()`` for every slave mount, which walks the
master group's peer ring; the predicted read cost of a namespace is therefore the sum, over its
slave mounts, of the size of the master group (at least 1: the walk visits the master even
when we could not see the rest of its ring).
"""

from __future__ import annotations

from ansible_collections.mountops.fleet.plugins.module_utils._mountinfo import (
    PROPAGATION_KINDS,
    display_path,
)

SAMPLE_MOUNT_POINTS = 3


class _Group:
    __slots__ = ("id", "members", "namespaces", "samples", "slaves", "slave_namespaces")

    def __init__(self, group_id):
        self.id = group_id
        self.members = 0
        self.namespaces = set()
        self.samples = []
        self.slaves = 0
        self.slave_namespaces = set()


def _index_groups(namespaces):
    groups = {}
    for ns in namespaces:
        for mount in ns.mounts or ():
            if mount.shared is not None:
                group = groups.get(mount.shared)
                if group is None:
                    group = groups[mount.shared] = _Group(mount.shared)
                group.members += 1
                group.namespaces.add(ns.inode)
                if len(group.samples) < SAMPLE_MOUNT_POINTS:
                    point = display_path(mount.mount_point)
                    if point not in group.samples:
                        group.samples.append(point)
            if mount.master is not None:
                group = groups.get(mount.master)
                if group is None:
                    group = groups[mount.master] = _Group(mount.master)
                group.slaves += 1
                group.slave_namespaces.add(ns.inode)
    return groups


def _host_shared_subtrees(host, groups):
    """Roots of the host's shared subtrees: shared mounts whose parent is not shared."""
    if host is None or not host.mounts:
        return []
    shared_ids = {m.mount_id for m in host.mounts if m.shared is not None}
    roots = []
    for mount in host.mounts:
        if mount.shared is None or mount.parent_id in shared_ids and mount.parent_id != mount.mount_id:
            continue
        group = groups[mount.shared]
        roots.append(
            {
                "mount_point": display_path(mount.mount_point),
                "peer_group": mount.shared,
                "members": group.members,
                "namespaces": len(group.namespaces),
                "slaves": group.slaves,
            }
        )
    return sorted(roots, key=lambda r: r["mount_point"])


def _namespace_record(ns, groups, host_groups, mount_max, detail):
    record = {
        "inode": ns.inode,
        "key": "mnt:[%d]" % ns.inode,
        "is_host": ns.is_host,
        "pid": ns.pid,
        "processes": len(ns.pids),
        "comm": ns.comm,
        "cgroup": ns.cgroup,
        "owner": ns.owner.to_dict() if ns.owner else None,
        "pinned_by": [
            {"namespace": holder, "pid": pid, "mount_point": display_path(point)}
            for holder, pid, point in ns.pinned_by
        ],
        "read": ns.mounts is not None,
    }
    if ns.mounts is None:
        record.update(
            mounts=None,
            propagation=None,
            peer_groups=None,
            host_peer_mounts=None,
            slave_to_host_mounts=None,
            predicted_read_cost=None,
            mount_headroom=None,
        )
        return record
    counts = dict.fromkeys(PROPAGATION_KINDS, 0)
    own_groups = set()
    host_peer = slave_to_host = cost = 0
    for mount in ns.mounts:
        counts[mount.propagation] += 1
        if mount.shared is not None:
            own_groups.add(mount.shared)
            if not ns.is_host and mount.shared in host_groups:
                host_peer += 1
        if mount.master is not None:
            cost += max(1, groups[mount.master].members)
            if not ns.is_host and mount.master in host_groups:
                slave_to_host += 1
    record.update(
        mounts=len(ns.mounts),
        propagation=counts,
        peer_groups=len(own_groups),
        host_peer_mounts=host_peer,
        slave_to_host_mounts=slave_to_host,
        predicted_read_cost=cost,
        mount_headroom=mount_max - len(ns.mounts) if mount_max is not None else None,
    )
    if detail:
        record["mount_list"] = [m.to_dict() for m in ns.mounts]
    return record


def _group_record(group, host_groups):
    return {
        "id": group.id,
        "members": group.members,
        "namespaces": len(group.namespaces),
        "slaves": group.slaves,
        "slave_namespaces": len(group.slave_namespaces),
        "includes_host": group.id in host_groups,
        "sample_mount_points": group.samples,
    }


def _max_by(records, field):
    best = None
    for record in records:
        value = record.get(field)
        if value is not None and (best is None or value > best[field]):
            best = record
    return best


def analyse(collection, mount_max=None, top_n=10, detail=False):
    namespaces = collection.namespaces
    groups = _index_groups(namespaces)
    host = next((ns for ns in namespaces if ns.is_host), None)
    host_groups = {m.shared for m in host.mounts if m.shared is not None} if host and host.mounts else set()
    records = [_namespace_record(ns, groups, host_groups, mount_max, detail) for ns in namespaces]

    real_groups = [g for g in groups.values() if g.members]
    real_groups.sort(key=lambda g: (-g.members, g.id))
    fanout = [g for g in groups.values() if g.slaves]
    fanout.sort(key=lambda g: (-g.slaves, g.id))

    containers = [r for r in records if r["owner"] and r["owner"]["kind"] == "container"]
    read_records = [r for r in records if r["read"]]
    totals = dict.fromkeys(PROPAGATION_KINDS, 0)
    for record in read_records:
        for kind, count in record["propagation"].items():
            totals[kind] += count
    costliest = _max_by(read_records, "predicted_read_cost")
    tightest = min(
        (r for r in read_records if r["mount_headroom"] is not None),
        key=lambda r: r["mount_headroom"],
        default=None,
    )
    largest = real_groups[0] if real_groups else None
    summary = {
        "namespaces": len(records),
        "host_namespace": host.inode if host else None,
        "mounts": sum(r["mounts"] for r in read_records),
        "host_mounts": len(host.mounts) if host and host.mounts else 0,
        "propagation": totals,
        "peer_groups": len(real_groups),
        "largest_peer_group": (
            {"id": largest.id, "members": largest.members, "namespaces": len(largest.namespaces)}
            if largest
            else None
        ),
        "container_namespaces": len(containers),
        "container_namespaces_in_host_peer_groups": sum(1 for r in containers if r["host_peer_mounts"]),
        "container_namespaces_slave_to_host": sum(1 for r in containers if r["slave_to_host_mounts"]),
        "pinned_namespaces": sum(1 for r in records if r["owner"] and r["owner"]["kind"] == "pinned"),
        "max_predicted_read_cost": (
            {
                "value": costliest["predicted_read_cost"],
                "namespace": costliest["inode"],
                "owner": costliest["owner"]["kind"] if costliest["owner"] else None,
            }
            if costliest
            else None
        ),
        "host_predicted_read_cost": next((r["predicted_read_cost"] for r in records if r["is_host"]), None),
        "mount_max": mount_max,
        "min_mount_headroom": (
            {"value": tightest["mount_headroom"], "namespace": tightest["inode"]} if tightest else None
        ),
        "host_shared_subtrees": _host_shared_subtrees(host, groups),
    }
    return {
        "summary": summary,
        "peer_groups": [_group_record(g, host_groups) for g in real_groups[:top_n]],
        "slave_fanout": [
            {
                "master": g.id,
                "slaves": g.slaves,
                "namespaces": len(g.slave_namespaces),
                "master_members": g.members,
            }
            for g in fanout[:top_n]
        ],
        "namespaces": records,
        "collection": _collection_record(collection),
    }


def _collection_record(collection):
    record = {
        "backend": collection.backend,
        "backend_reason": collection.backend_reason,
        "calibration_ms": collection.calibration,
        "host_namespace_source": collection.host_namespace_source,
        "namespaces_seen": collection.enumerated + sum(1 for ns in collection.namespaces if ns.pinned_by),
        "namespaces_read": sum(1 for ns in collection.namespaces if ns.mounts is not None),
        "namespaces_skipped": len(collection.skipped),
        "namespaces_failed": len(collection.failed),
        "failures": collection.failed,
        "processes_scanned": collection.processes_scanned,
        "processes_vanished": collection.processes_vanished,
        "processes_denied": collection.processes_denied,
        "partial": collection.partial,
        "partial_reason": collection.partial_reason,
        "namespaces_not_read": collection.not_read,
        "duration_ms": collection.duration_ms,
    }
    if collection.partial:
        record["covered"] = [ns.inode for ns in collection.namespaces if ns.mounts is not None]
    return record

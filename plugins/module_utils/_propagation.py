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

from collections import Counter

SAMPLE_MOUNT_POINTS = 3
SAMPLE_SCAN_NAMESPACES = 5  # namespaces looked at for distinct sample mount points of a group


class _Index:
    """Peer groups across namespaces, counted in C (Counter.update) rather than per mount."""

    def __init__(self, namespaces):
        self.namespaces = [ns for ns in namespaces if ns.table is not None]
        self.members = Counter()  # group -> shared mounts in it (the peer ring size)
        self.spans = Counter()  # group -> namespaces holding a member
        self.slaves = Counter()  # group -> mounts that are its slaves
        self.slave_spans = Counter()  # group -> namespaces holding a slave
        for ns in self.namespaces:
            table = ns.table
            self.members.update(table.shared)
            self.spans.update(set(table.shared))
            if table.masters:
                self.slaves.update(table.masters)
                self.slave_spans.update(set(table.masters))

    def samples(self, group):
        """Up to three distinct mount points of the group, from the first namespaces holding it.

        Only the top groups are sampled, so this scans the ID lists (in C) instead of keeping a
        per-group index for every group of the host.
        """
        points = []
        looked = 0
        for ns in self.namespaces:
            if group not in ns.table.shared:
                continue
            for mount in ns.table.mounts():
                if mount.shared == group:
                    point = display_path(mount.mount_point)
                    if point not in points:
                        points.append(point)
                        if len(points) == SAMPLE_MOUNT_POINTS:
                            return points
            looked += 1
            if looked == SAMPLE_SCAN_NAMESPACES:
                break
        return points


def _host_shared_subtrees(host, index):
    """Roots of the host's shared subtrees: shared mounts whose parent is not shared."""
    if host is None or host.table is None or not host.table.shared:
        return []
    mounts = host.table.mounts()
    shared_ids = {m.mount_id for m in mounts if m.shared is not None}
    roots = []
    for mount in mounts:
        if mount.shared is None or (mount.parent_id in shared_ids and mount.parent_id != mount.mount_id):
            continue
        roots.append(
            {
                "mount_point": display_path(mount.mount_point),
                "peer_group": mount.shared,
                "members": index.members[mount.shared],
                "namespaces": index.spans[mount.shared],
                "slaves": index.slaves[mount.shared],
            }
        )
    return sorted(roots, key=lambda r: r["mount_point"])


def _namespace_record(ns, index, host_groups, mount_max, detail):
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
        "read": ns.table is not None,
    }
    table = ns.table
    if table is None:
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
    members = index.members
    if ns.is_host:
        host_peer = slave_to_host = 0
    else:
        host_peer = sum(1 for group in table.shared if group in host_groups)
        slave_to_host = sum(1 for group in table.masters if group in host_groups)
    record.update(
        mounts=table.count,
        propagation=table.propagation_counts(),
        peer_groups=len(set(table.shared)),
        host_peer_mounts=host_peer,
        slave_to_host_mounts=slave_to_host,
        predicted_read_cost=sum(members[group] or 1 for group in table.masters),
        mount_headroom=mount_max - table.count if mount_max is not None else None,
    )
    if detail:
        record["mount_list"] = [m.to_dict() for m in table.mounts()]
    return record


def _group_record(group, index, host_groups):
    return {
        "id": group,
        "members": index.members[group],
        "namespaces": index.spans[group],
        "slaves": index.slaves[group],
        "slave_namespaces": index.slave_spans[group],
        "includes_host": group in host_groups,
        "sample_mount_points": index.samples(group),
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
    index = _Index(namespaces)
    host = next((ns for ns in namespaces if ns.is_host), None)
    host_groups = set(host.table.shared) if host is not None and host.table is not None else set()
    records = [_namespace_record(ns, index, host_groups, mount_max, detail) for ns in namespaces]
    largest_groups = sorted(index.members, key=lambda g: (-index.members[g], g))
    fanout = sorted(index.slaves, key=lambda g: (-index.slaves[g], g))

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
    largest = largest_groups[0] if largest_groups else None
    summary = {
        "namespaces": len(records),
        "host_namespace": host.inode if host else None,
        "mounts": sum(r["mounts"] for r in read_records),
        "host_mounts": host.table.count if host is not None and host.table is not None else 0,
        "propagation": totals,
        "peer_groups": len(largest_groups),
        "largest_peer_group": (
            {"id": largest, "members": index.members[largest], "namespaces": index.spans[largest]}
            if largest is not None
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
        "host_shared_subtrees": _host_shared_subtrees(host, index),
    }
    return {
        "summary": summary,
        "peer_groups": [_group_record(g, index, host_groups) for g in largest_groups[:top_n]],
        "slave_fanout": [
            {
                "master": g,
                "slaves": index.slaves[g],
                "namespaces": index.slave_spans[g],
                "master_members": index.members[g],
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
        "namespaces_read": sum(1 for ns in collection.namespaces if ns.table is not None),
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
        record["covered"] = [ns.inode for ns in collection.namespaces if ns.table is not None]
    return record

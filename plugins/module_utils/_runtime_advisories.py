# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Known-issue advisories for container hosts, as data, and the evaluator that matches them.

Each advisory lists conditions (``all`` must match). A condition has a ``kind`` that names one
of a handful of generic matchers (engine version range, container/mount predicates, systemd
setting, fact comparison); adding an advisory means adding a table row, not code. Matchers
return evidence strings; an empty list means "no match".
"""

from __future__ import annotations

from ansible_collections.mountops.fleet.plugins.module_utils._runtime_config import Version, version_in_range

CIS_DOCKER = (
    "CIS Docker Benchmark 5.19 (v1.2-v1.5) / 5.20 (v1.6+): mount propagation mode is not set to shared"
)

ADVISORIES = (
    {
        "id": "MO-RT-001",
        "severity": "high",
        "title": "containerd idmaps every image layer of user-namespaced pods (mount storm)",
        "all": (
            {
                "kind": "engine_version",
                "engine": "containerd",
                "ranges": (">=2.0.0-alpha.0,<2.0.7", ">=2.1.0-alpha.0,<2.1.5"),
            },
            {
                "kind": "containers",
                "where": {"engine": "containerd", "user_namespace.enabled": True, "alive": True},
            },
        ),
        "why": (
            "For pods with user namespaces, this containerd idmaps each image layer separately "
            "(open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount per layer, twice per start). "
            "100 pods x 50 layers is about 20,000 mount operations on the global namespace_sem and "
            "mount_lock; Netflix measured 30 s node stalls."
        ),
        "fix": "Upgrade containerd to 2.0.7, 2.1.5, 2.2.0 or later (idmaps the common parent once).",
        "references": (
            "https://github.com/containerd/containerd/issues/12048",
            "https://github.com/containerd/containerd/pull/12092",
            "Netflix Tech Blog, 'Mount Mayhem at Netflix: Scaling Containers on Modern CPUs' (2026-02)",
        ),
    },
    {
        "id": "MO-RT-002",
        "severity": "medium",
        "title": "Leaked containerd ovl-idmapped tmpmounts",
        "all": ({"kind": "fact", "path": "host_mounts.ovl_idmapped_tmpmounts", "op": "gt", "value": 0},),
        "why": (
            "containerd mounts idmapped layers under <root>/tmpmounts/ovl-idmapped* while it sets up a "
            "container and should remove them; leaked ones stay in the host mount table, grow it and "
            "every namespace copied from it. Transient ones exist during a start: re-check before acting."
        ),
        "fix": (
            "Upgrade containerd to a release with the fix for #12139; after confirming no container "
            "start is in progress, unmount the leaked tmpmounts (umount -l) and watch the count."
        ),
        "references": ("https://github.com/containerd/containerd/issues/12139",),
    },
    {
        "id": "MO-RT-003",
        "severity": "high",
        "title": "MountFlags= on docker.service breaks container start (Docker >= 18.09)",
        "all": (
            {"kind": "service_setting", "units": ("docker.service",), "key": "MountFlags"},
            {"kind": "engine_version", "engine": "docker", "ranges": (">=18.09.0",), "if_unknown": True},
        ),
        "why": (
            "MountFlags=slave (or private) puts dockerd in its own mount namespace; since Docker 18.09 "
            "containerd runs outside it, so mounts dockerd makes are not visible to containerd and "
            "container start fails or leaks mounts."
        ),
        "fix": (
            "Remove MountFlags= from docker.service and its drop-ins (systemctl edit docker.service), "
            "then daemon-reload and restart docker. Do not use it to limit propagation."
        ),
        "references": (
            "https://github.com/moby/moby/issues/38191",
            "https://github.com/docker/for-linux/issues/479",
        ),
    },
    {
        "id": "MO-RT-004",
        "severity": "high",
        "title": "Container root filesystem has shared propagation",
        "all": (
            {
                "kind": "containers",
                "where": {"rootfs_propagation.effective": {"in": ("shared", "rshared")}, "alive": True},
            },
        ),
        "why": (
            "A container whose root is shared joins the host's peer groups: every mount event on "
            "either side is replicated to all peers under the global mount locks, and mounts made "
            "inside the container reach the host. " + CIS_DOCKER + "."
        ),
        "fix": (
            "Run the container with rootfsPropagation rslave or rprivate (the runtime default when "
            "unset); in Kubernetes keep mountPropagation None/HostToContainer unless a CSI driver "
            "really needs Bidirectional."
        ),
        "references": (
            CIS_DOCKER,
            "https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md",
        ),
    },
    {
        "id": "MO-RT-005",
        "severity": "medium",
        "title": "Container volume mounted with shared propagation",
        "all": (
            {
                "kind": "mounts",
                "where": {"propagation": {"in": ("shared", "rshared")}},
                "container_where": {"alive": True},
            },
        ),
        "why": (
            "A shared (Bidirectional) volume makes the container a peer of the host mount: mounts on "
            "either side propagate both ways, and each event fans out to every peer. " + CIS_DOCKER + "."
        ),
        "fix": (
            "Use rslave (HostToContainer) or private propagation for the volume unless it belongs to "
            "a CSI node plugin or another component that must publish mounts to the host."
        ),
        "references": (CIS_DOCKER,),
    },
    {
        "id": "MO-RT-006",
        "severity": "low",
        "title": "runc containers left with the rslave default receive every host mount event",
        "all": (
            {
                "kind": "containers",
                "where": {"runtime": "runc", "rootfs_propagation.configured": None, "alive": True},
            },
        ),
        "why": (
            "Without linux.rootfsPropagation runc makes the container root rslave: the container stays "
            "a receiver of the host's peer groups, each host mount event is copied into it, and "
            "mountinfo reads inside it walk the master's peer ring (O(mounts x ring size))."
        ),
        "fix": (
            "Set linux.rootfsPropagation to rprivate for containers that need no host mount events "
            "(crun's default), or trim the host's shared subtrees; keep rslave for HostToContainer volumes."
        ),
        "references": (
            "https://github.com/opencontainers/runc/blob/main/libcontainer/rootfs_linux.go",
            "https://github.com/moby/moby/issues/12273",
        ),
    },
    {
        "id": "MO-RT-007",
        "severity": "info",
        "title": "Kernel without statmount/listmount",
        "all": ({"kind": "fact", "path": "kernel.features.statmount.available", "op": "eq", "value": False},),
        "why": (
            "Auditing mount namespaces then means reading every /proc/PID/mountinfo, which takes "
            "namespace_sem and costs O(mounts x peer ring) in slave namespaces."
        ),
        "fix": "Plan a kernel upgrade to 6.8 or later (6.11+ for listing foreign namespaces by mnt_ns_id).",
        "references": ("https://man7.org/linux/man-pages/man2/statmount.2.html",),
    },
)

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_MAX_EVIDENCE = 10


def lookup(data, path):
    """Dotted path lookup in nested dicts: lookup(c, "rootfs_propagation.effective")."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()


def _test(value, expected):
    if isinstance(expected, dict):
        if "in" in expected:
            return value in expected["in"]
        if "ne" in expected:
            return value is not _MISSING and value != expected["ne"]
        raise ValueError("unknown predicate %r" % expected)
    if expected is None:
        return value is None or value is _MISSING
    return value == expected


def _where(item, where):
    return all(_test(lookup(item, path), expected) for path, expected in where.items())


def _container_label(container):
    return "%s container %s (pid %s)" % (
        container.get("engine") or "?",
        container.get("id"),
        container.get("pid"),
    )


def _cap(lines):
    if len(lines) <= _MAX_EVIDENCE:
        return lines
    return lines[:_MAX_EVIDENCE] + ["... and %d more" % (len(lines) - _MAX_EVIDENCE)]


def match_engine_version(facts, cond):
    engine = facts.get("engines", {}).get(cond["engine"])
    version = engine.get("version") if engine else None
    if version is None or Version.parse(version) is None:
        if cond.get("if_unknown") and engine is not None:
            return ["%s version unknown (treated as affected)" % cond["engine"]]
        return []
    for spec in cond["ranges"]:
        if version_in_range(version, spec):
            return ["%s %s is in %s" % (cond["engine"], version, spec)]
    return []


def match_containers(facts, cond):
    hits = [c for c in facts.get("containers", []) if _where(c, cond["where"])]
    described = ", ".join("%s=%r" % item for item in sorted(cond["where"].items(), key=lambda kv: kv[0]))
    return _cap(["%s: %s" % (_container_label(c), described) for c in hits])


def match_mounts(facts, cond):
    lines = []
    for container in facts.get("containers", []):
        if not _where(container, cond.get("container_where", {})):
            continue
        for mount in container.get("mounts", []):
            if _where(mount, cond["where"]):
                lines.append(
                    "%s: %s -> %s is %s"
                    % (
                        _container_label(container),
                        mount.get("source"),
                        mount.get("destination"),
                        mount.get("propagation"),
                    )
                )
    return _cap(lines)


def match_service_setting(facts, cond):
    lines = []
    services = facts.get("services", {})
    for unit in cond["units"]:
        # Unit names contain dots, so no dotted lookup here.
        entry = (services.get(unit) or {}).get("settings", {}).get(cond["key"])
        if not isinstance(entry, dict) or entry.get("value") is None:
            continue
        lines.append(
            "%s: %s=%s (%s:%s)" % (unit, cond["key"], entry["value"], entry.get("source"), entry.get("line"))
        )
    return lines


_OPS = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: isinstance(a, (int, float)) and not isinstance(a, bool) and a > b,
}


def match_fact(facts, cond):
    value = lookup(facts, cond["path"])
    if value is _MISSING or not _OPS[cond["op"]](value, cond["value"]):
        return []
    return ["%s = %r" % (cond["path"], value)]


MATCHERS = {
    "engine_version": match_engine_version,
    "containers": match_containers,
    "mounts": match_mounts,
    "service_setting": match_service_setting,
    "fact": match_fact,
}


def evaluate(facts, advisories=ADVISORIES):
    """Return the advisories that match ``facts`` (the mount_runtime dict), most severe first."""
    found = []
    for advisory in advisories:
        evidence = []
        for cond in advisory["all"]:
            lines = MATCHERS[cond["kind"]](facts, cond)
            if not lines:
                evidence = None
                break
            evidence.extend(lines)
        if evidence is None:
            continue
        found.append(
            {
                "id": advisory["id"],
                "severity": advisory["severity"],
                "title": advisory["title"],
                "evidence": evidence,
                "why": advisory["why"],
                "fix": advisory["fix"],
                "references": list(advisory["references"]),
            }
        )
    found.sort(key=lambda a: (SEVERITY_ORDER.get(a["severity"], 9), a["id"]))
    return found

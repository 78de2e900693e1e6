# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Human summaries of audit results (controller side): one per host, one for the fleet."""

from __future__ import annotations


def _line(label, text):
    return "%-18s %s" % (label, text)


def _propagation_lines(facts):
    s, c = facts["summary"], facts["collection"]
    mix = ", ".join("%s %d" % item for item in s["propagation"].items())
    largest = s["largest_peer_group"]
    cost = s["max_predicted_read_cost"]
    headroom = s["min_mount_headroom"]
    collection = "%s backend, %d/%d namespaces read in %s ms" % (
        c["backend"],
        c["namespaces_read"],
        c["namespaces_seen"],
        c["duration_ms"],
    )
    if c["partial"]:
        collection += ", PARTIAL (%s)" % c["partial_reason"]
    if c["namespaces_failed"]:
        collection += ", %d failed" % c["namespaces_failed"]
    if c.get("namespaces_skipped"):
        collection += ", %d gone mid-scan (their processes exited)" % c["namespaces_skipped"]
    return [
        _line(
            "mount namespaces",
            "%d (%d container, %d pinned); mounts %d (host %d)"
            % (
                s["namespaces"],
                s["container_namespaces"],
                s["pinned_namespaces"],
                s["mounts"],
                s["host_mounts"],
            ),
        ),
        _line("propagation", mix),
        _line(
            "peer groups",
            "%d%s"
            % (
                s["peer_groups"],
                "; largest #%d with %d mounts in %d namespaces"
                % (largest["id"], largest["members"], largest["namespaces"])
                if largest
                else "",
            ),
        ),
        _line(
            "containers",
            "%d in host peer groups, %d receiving host events (slave)"
            % (s["container_namespaces_in_host_peer_groups"], s["container_namespaces_slave_to_host"]),
        ),
        _line(
            "read cost",
            "highest predicted mountinfo read cost %d%s"
            % (cost["value"], " (mnt:[%d], %s)" % (cost["namespace"], cost["owner"]))
            if cost
            else "none",
        ),
        _line(
            "mount-max headroom",
            "%s (fs.mount-max %s)" % (headroom["value"] if headroom else "n/a", s["mount_max"]),
        ),
        _line("host shared roots", ", ".join(r["mount_point"] for r in s["host_shared_subtrees"]) or "none"),
        _line("collection", collection),
    ]


def _numa_lines(numa):
    risk = numa.get("topology_risk") or {}
    cpus = numa.get("cpus") or {}
    return [
        _line(
            "topology",
            "%s socket(s), %s NUMA node(s), %s online CPUs, SMT %s, %s; risk %s (%s)"
            % (
                numa.get("socket_count"),
                numa.get("node_count"),
                cpus.get("online_count", "?"),
                "on" if (numa.get("smt") or {}).get("active") else "off",
                (numa.get("clustering") or {}).get("mode"),
                risk.get("tier"),
                "; ".join(risk.get("reasons") or []),
            ),
        )
    ]


def _runtime_lines(runtime):
    engines = runtime.get("engines") or {}
    names = [
        "%s %s%s" % (name, engine.get("version") or "?", " (running)" if engine.get("running") else "")
        for name, engine in sorted(engines.items())
    ]
    advisories = runtime.get("advisories") or []
    kernel = (runtime.get("kernel") or {}).get("release", "?")
    if advisories:
        advice = "; ".join(
            "%s [%s] %s" % (a.get("id"), a.get("severity"), a.get("title", "")) for a in advisories
        )
    else:
        advice = "none of %d known issues apply" % len(runtime.get("advisories_checked") or [])
    return [
        _line("runtimes", "%s; kernel %s" % (", ".join(names) or "none found", kernel)),
        _line("advisories", advice),
    ]


def _probe_lines(probe):
    verdict = probe.get("verdict") or {}
    reasons = "; ".join(r.get("message", "") for r in verdict.get("reasons") or [])
    return [
        _line("contention probe", "verdict %s%s" % (verdict.get("level"), ": " + reasons if reasons else ""))
    ]


def host_summary(result):
    """The text report of one host's audit result (the JSON report has everything)."""
    lines = ["mountops audit: %s (%s)" % (result["host"], result["generated"])]
    sections = (
        ("mount_propagation", _propagation_lines),
        ("numa", _numa_lines),
        ("mount_runtime", _runtime_lines),
        ("contention", _probe_lines),
    )
    for key, render in sections:
        if result.get(key):
            lines.extend(render(result[key]))
    for name, error in sorted((result.get("errors") or {}).items()):
        lines.append(_line("not gathered", "%s: %s" % (name, error)))
    return "\n".join(lines) + "\n"


def _advisory_count(runtime):
    """``2 (1 high)``-style count of the runtime advisories that apply; ``-`` when not gathered."""
    if not runtime:
        return "-"
    advisories = runtime.get("advisories") or []
    high = sum(1 for a in advisories if a.get("severity") in ("high", "critical"))
    return "%d (%d high)" % (len(advisories), high) if high else str(len(advisories))


def fleet_summary(results, hosts, report_dir):
    """One line per audited host, then the targeted hosts that produced no result."""
    done = {r["host"] for r in results}
    missing = [h for h in hosts if h not in done]
    lines = [
        "mountops fleet audit: %d of %d hosts audited" % (len(done), len(hosts)),
        "%-24s %6s %7s %9s %11s %10s %-10s %-8s %s"
        % (
            "host",
            "ns",
            "mounts",
            "max group",
            "ctr in host",
            "read cost",
            "backend",
            "topology",
            "advisories",
        ),
    ]
    for result in sorted(results, key=lambda r: r["host"]):
        facts = result.get("mount_propagation")
        topology = ((result.get("numa") or {}).get("topology_risk") or {}).get("tier", "-")
        advisories = _advisory_count(result.get("mount_runtime"))
        if not facts:
            lines.append("%-24s %s" % (result["host"], "no propagation facts"))
            continue
        s, c = facts["summary"], facts["collection"]
        lines.append(
            "%-24s %6d %7d %9d %11d %10d %-10s %-8s %s"
            % (
                result["host"],
                s["namespaces"],
                s["mounts"],
                s["largest_peer_group"]["members"] if s["largest_peer_group"] else 0,
                s["container_namespaces_in_host_peer_groups"],
                s["max_predicted_read_cost"]["value"] if s["max_predicted_read_cost"] else 0,
                c["backend"] + ("*" if c["partial"] else ""),
                topology,
                advisories,
            )
        )
    if missing:
        lines.append("MISSING (unreachable or failed, no report): %s" % ", ".join(missing))
    lines.append("reports: %s/<host>.json and <host>.txt  (* = partial collection)" % report_dir)
    return "\n".join(lines) + "\n"

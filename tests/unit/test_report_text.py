"""Text summaries rendered on the controller from audit results."""

from __future__ import annotations

from ansible_collections.mountops.fleet.plugins.module_utils._propagation import analyse
from ansible_collections.mountops.fleet.plugins.module_utils._namespaces import collect
from ansible_collections.mountops.fleet.plugins.plugin_utils._report_text import fleet_summary, host_summary

from .test_namespaces import HOST_TABLE, PEER_TABLE, SLAVE_TABLE, make_proc


def _result(tmp_path, host="web-1"):
    proc = make_proc(
        tmp_path / host,
        {
            1: ("host", HOST_TABLE, "/init.scope", "systemd"),
            7: ("ctr", PEER_TABLE, "/docker/" + "a" * 64, "app"),
            9: ("svc", SLAVE_TABLE, "/system.slice/x.service", "x"),
        },
    )
    facts = analyse(collect(proc_root=proc, backend="mountinfo"), mount_max=1000)
    return {
        "host": host,
        "generated": "2026-12-03T00:00:00Z",
        "mount_propagation": facts,
        "numa": {
            "socket_count": 2,
            "node_count": 4,
            "cpus": {"online_count": 384},
            "smt": {"active": True},
            "clustering": {"mode": "nps2"},
            "topology_risk": {"tier": "high", "reasons": ["2 sockets with SMT on"]},
        },
        "mount_runtime": {
            "engines": {"containerd": {"version": "2.0.5", "running": True}},
            "kernel": {"release": "6.18.0"},
            "advisories": [{"id": "MO-RT-001", "severity": "high", "title": "idmap storm"}],
            "advisories_checked": ["MO-RT-001"],
        },
        "errors": {},
    }


def test_host_summary_lines(tmp_path):
    text = host_summary(_result(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "mountops audit: web-1 (2026-12-03T00:00:00Z)"
    assert "mount namespaces   3 (1 container, 0 pinned); mounts 4 (host 2)" in lines
    assert "containers         1 in host peer groups, 0 receiving host events (slave)" in lines
    assert any(
        line.startswith("read cost          highest predicted mountinfo read cost 2 (mnt:[") for line in lines
    )
    assert (
        "topology           2 socket(s), 4 NUMA node(s), 384 online CPUs, SMT on, nps2; risk high (2 sockets with SMT on)"
        in lines
    )
    assert "runtimes           containerd 2.0.5 (running); kernel 6.18.0" in lines
    assert "advisories         MO-RT-001 [high] idmap storm" in lines


def test_host_summary_names_sets_not_gathered():
    text = host_summary({"host": "h", "generated": "t", "errors": {"numa": "reading NUMA topology: no"}})
    assert text.splitlines()[1] == "not gathered       numa: reading NUMA topology: no"


def test_fleet_summary_lists_missing_hosts(tmp_path):
    text = fleet_summary(
        [_result(tmp_path, "web-2"), _result(tmp_path, "web-1")], ["web-1", "web-2", "db-1"], "/r"
    )
    lines = text.splitlines()
    assert lines[0] == "mountops fleet audit: 2 of 3 hosts audited"
    assert [line.split()[0] for line in lines[2:4]] == ["web-1", "web-2"]
    assert lines[1].split()[-2:] == ["topology", "advisories"]
    assert lines[2].split() == ["web-1", "3", "4", "2", "1", "2", "mountinfo", "high", "1", "(1", "high)"]
    assert lines[4] == "MISSING (unreachable or failed, no report): db-1"
    assert lines[5] == "reports: /r/<host>.json and <host>.txt  (* = partial collection)"


def test_collection_line_says_why_namespaces_were_not_read(tmp_path):
    result = _result(tmp_path)
    collection = result["mount_propagation"]["collection"]
    line = [x for x in host_summary(result).splitlines() if x.startswith("collection")][0]
    assert line.endswith("3/3 namespaces read in %s ms" % collection["duration_ms"])
    collection.update(namespaces_seen=5, namespaces_skipped=2, namespaces_failed=0)
    line = [x for x in host_summary(result).splitlines() if x.startswith("collection")][0]
    assert "3/5 namespaces read" in line and line.endswith(", 2 gone mid-scan (their processes exited)")


def test_fleet_summary_advisories_column(tmp_path):
    quiet = _result(tmp_path, "a")
    quiet["mount_runtime"]["advisories"] = []
    medium = _result(tmp_path, "b")
    medium["mount_runtime"]["advisories"] = [{"id": "MO-RT-005", "severity": "medium"}]
    unknown = _result(tmp_path, "c")
    del unknown["mount_runtime"]
    lines = fleet_summary([quiet, medium, unknown], ["a", "b", "c"], "/r").splitlines()
    assert [line.split()[-1] for line in lines[2:5]] == ["0", "1", "-"]

"""numa_facts: real-layout fixture trees (cross-checked with lscpu), this host (numactl, lscpu),
degraded trees, and the module's success and failure branches."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _numa
from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import parse_range_list
from ansible_collections.mountops.fleet.plugins.modules import numa_facts as numa_module
from tests.unit.numa_fixtures import LAYOUTS, Layout, build_tree

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LSCPU = shutil.which("lscpu")
NUMACTL = shutil.which("numactl")


@pytest.fixture(scope="session")
def tree_root():
    # tmpfs: building the 384-CPU tree on the VM's ext4 costs seconds, on tmpfs ~0.3 s
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    base = tempfile.mkdtemp(prefix="mountops-numa-", dir=shm)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def tree(tree_root):
    """tree(name_or_layout) -> root of a built (and cached) fixture tree."""
    built = {}

    def get(layout):
        if isinstance(layout, str):
            layout = LAYOUTS[layout]
        key = layout.name
        if key not in built:
            built[key] = build_tree(layout, os.path.join(tree_root, "t%d" % len(built)))
        return built[key]

    return get


@pytest.fixture
def scratch(tree_root, request):
    """A private copy of a fixture tree that a test may damage."""
    created = []

    def copy(root):
        dest = tempfile.mkdtemp(dir=tree_root, prefix="scratch-")
        shutil.rmtree(dest)
        shutil.copytree(root, dest, symlinks=True)
        created.append(dest)
        return dest

    yield copy
    for path in created:
        shutil.rmtree(path, ignore_errors=True)


def facts_of(root):
    return _numa.numa_facts(os.path.join(root, "sys"), os.path.join(root, "proc"))


# --------------------------------------------------------------------------- real layouts

# What the issue and DESIGN.md §4 say each layout must come out as.
EXPECTED = {
    "spr_8480_snc4": dict(
        nodes=8,
        sockets=2,
        cores=56,
        threads=1,
        mode="snc4",
        node_cpus=[14],
        same=[12],
        cross=[21],
        tier="medium",
    ),
    "genoa_9654_nps2": dict(
        nodes=4,
        sockets=2,
        cores=96,
        threads=2,
        mode="nps2",
        node_cpus=[96],
        same=[12],
        cross=[32],
        tier="high",
    ),
    "milan_7763_nps4": dict(
        nodes=8,
        sockets=2,
        cores=64,
        threads=2,
        mode="nps4",
        node_cpus=[32],
        same=[12],
        cross=[32],
        tier="high",
    ),
    "turin_9575f_nps1": dict(
        nodes=2,
        sockets=2,
        cores=64,
        threads=2,
        mode="node_per_socket",
        node_cpus=[128],
        same=[],
        cross=[32],
        tier="high",
    ),
    "genoa_9124_nps0": dict(
        nodes=1, sockets=2, cores=16, threads=2, mode="nps0", node_cpus=[64], same=[], cross=[], tier="high"
    ),
    "vm_m6i_2xlarge": dict(
        nodes=1,
        sockets=1,
        cores=4,
        threads=2,
        mode="single_node",
        node_cpus=[8],
        same=[],
        cross=[],
        tier="low",
    ),
    "sparse_nodes_0_8": dict(
        nodes=2,
        sockets=2,
        cores=8,
        threads=2,
        mode="node_per_socket",
        node_cpus=[16],
        same=[],
        cross=[20],
        tier="high",
    ),
    "spr_cxl_memory_node": dict(
        nodes=2,
        sockets=1,
        cores=32,
        threads=2,
        mode="single_node",
        node_cpus=[0, 64],
        same=[],
        cross=[],
        tier="medium",
    ),
    "icx_offline_cpus": dict(
        nodes=1,
        sockets=1,
        cores=16,
        threads=2,
        mode="single_node",
        node_cpus=[29],
        same=[],
        cross=[],
        tier="low",
    ),
    "icx_2s_smt_off": dict(
        nodes=2,
        sockets=2,
        cores=40,
        threads=1,
        mode="node_per_socket",
        node_cpus=[40],
        same=[],
        cross=[20],
        tier="medium",
    ),
    "gnr_6960p_snc3": dict(
        nodes=6,
        sockets=2,
        cores=72,
        threads=1,
        mode="snc3",
        node_cpus=[24],
        same=[12],
        cross=[21],
        tier="medium",
    ),
}


def test_every_layout_has_expectations():
    assert set(EXPECTED) == set(LAYOUTS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_facts(tree, name):
    layout, want = LAYOUTS[name], EXPECTED[name]
    facts = facts_of(tree(name))
    assert facts["warnings"] == []
    assert facts["degraded"] is False
    assert facts["available"] is True
    assert facts["node_count"] == want["nodes"]
    assert facts["socket_count"] == want["sockets"]
    assert facts["cores_per_socket"] == want["cores"]
    assert facts["threads_per_core"] == want["threads"]
    assert facts["clustering"]["mode"] == want["mode"], facts["clustering"]
    assert sorted({n["cpu_count"] for n in facts["nodes"]}) == want["node_cpus"]
    assert facts["distances"]["local"] == [10]
    assert facts["distances"]["same_socket"] == want["same"]
    assert facts["distances"]["cross_socket"] == want["cross"]
    assert facts["topology_risk"]["tier"] == want["tier"], facts["topology_risk"]
    # node CPU lists come from the spec, not from the collector's own reading
    expected_cpus = layout.expected_node_cpus()
    assert {n["id"]: n["cpus"] for n in facts["nodes"]} == expected_cpus
    for node in facts["nodes"]:
        assert parse_range_list(node["cpulist"]) == node["cpus"]
        assert node["memory_total_mb"] == layout.memory_mb_per_node
        assert node["memory_free_mb"] == layout.memory_mb_per_node * 3 // 4
        assert node["distance"] == {str(o): layout.distance(node["id"], o) for o in layout.all_node_ids()}
    assert facts["online"] == layout.all_node_ids()
    assert facts["offline_cpus"] == sorted(layout.offline())
    assert facts["cpu"]["vendor"] == layout.vendor
    assert facts["cpu"]["model_name"] == layout.model_name
    assert facts["cpu"]["family"] == str(layout.family)
    assert facts["dmi"] == layout.dmi
    json.dumps(facts)  # what Ansible will do with it


def _lscpu(root):
    out = subprocess.run(
        [LSCPU, "--sysroot", root, "-J"],
        check=True,
        stdout=subprocess.PIPE,
        env=dict(os.environ, LC_ALL="C"),
    ).stdout
    fields = {}

    def walk(entries):
        for entry in entries:
            fields[entry["field"].rstrip(":")] = entry.get("data") or ""
            walk(entry.get("children", []))

    walk(json.loads(out)["lscpu"])
    return fields


def assert_agrees_with_lscpu(facts, lscpu):
    assert facts["socket_count"] == int(lscpu["Socket(s)"])
    assert facts["cores_per_socket"] == int(lscpu["Core(s) per socket"])
    assert facts["threads_per_core"] == int(lscpu["Thread(s) per core"])
    assert facts["node_count"] == int(lscpu.get("NUMA node(s)", "0"))
    for node in facts["nodes"]:
        assert node["cpus"] == parse_range_list(lscpu["NUMA node%d CPU(s)" % node["id"]])
    assert parse_range_list(facts["cpus"]["online"]) == parse_range_list(lscpu["On-line CPU(s) list"])
    assert facts["offline_cpus"] == parse_range_list(lscpu.get("Off-line CPU(s) list", ""))
    assert facts["cpu"]["vendor"] == lscpu["Vendor ID"]
    assert facts["cpu"]["model_name"] == lscpu["Model name"]
    assert facts["cpu"]["family"] == lscpu["CPU family"]
    assert facts["cpu"]["model"] == lscpu["Model"]


@pytest.mark.skipif(LSCPU is None, reason="lscpu not installed")
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_agrees_with_lscpu_sysroot(tree, name):
    root = tree(name)
    assert_agrees_with_lscpu(facts_of(root), _lscpu(root))


def test_sparse_distance_rows_are_keyed_by_online_node_id(tree):
    facts = facts_of(tree("sparse_nodes_0_8"))
    assert facts["online"] == [0, 8]
    assert facts["online_list"] == "0,8"
    assert facts["possible_list"] == "0-15"
    assert [n["distance"] for n in facts["nodes"]] == [{"0": 10, "8": 20}, {"0": 20, "8": 10}]


def test_memory_only_node(tree):
    facts = facts_of(tree("spr_cxl_memory_node"))
    cxl = facts["nodes"][1]
    assert (cxl["id"], cxl["cpus"], cxl["cpulist"], cxl["has_cpu"], cxl["has_memory"]) == (
        1,
        [],
        "",
        False,
        True,
    )
    assert cxl["sockets"] == []
    assert facts["cpuless_nodes"] == [1]
    assert facts["distances"]["memory_only"] == [14]
    # a memory-only node neither makes a clustering mode nor a cross-node distance class
    assert facts["distances"]["max_local_ratio"] == 1.0


def test_genoa_nps2_details(tree):
    facts = facts_of(tree("genoa_9654_nps2"))
    assert facts["nodes"][0]["cpulist"] == "0-47,192-239"
    assert facts["sockets"][0]["nodes"] == [0, 1]
    assert facts["sockets"][1]["cpulist"] == "96-191,288-383"
    assert facts["sockets"][0]["core_count"] == 96
    assert facts["sockets"][0]["l3_count"] == 12
    assert facts["l3_count"] == 24
    assert facts["l3_domains"][0]["cpulist"] == "0-7,192-199"
    assert facts["l3_domains"][0]["nodes"] == [0]
    assert facts["distances"]["max_local_ratio"] == 3.2
    evidence = facts["clustering"]["evidence"]
    assert evidence["nodes_per_socket"] == {"0": 2, "1": 2}
    assert evidence["l3_spans_nodes"] is False
    assert evidence["l3_node_ratio"] == round(16 / 96, 2)
    assert facts["smt"] == {"control": "on", "active": True, "threads_per_core": 2}
    assert any("2 sockets with SMT active" in r for r in facts["topology_risk"]["reasons"])


def test_snc4_l3_spans_four_nodes(tree):
    facts = facts_of(tree("spr_8480_snc4"))
    assert facts["l3_count"] == 2
    assert [d["nodes"] for d in facts["l3_domains"]] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert facts["clustering"]["evidence"]["l3_node_ratio"] == 4.0
    assert facts["smt"]["active"] is False


def test_smt_off_at_runtime(tree):
    facts = facts_of(tree("icx_2s_smt_off"))
    assert facts["smt"] == {"control": "off", "active": False, "threads_per_core": 1}
    assert facts["cpus"]["offline"] == "80-159"
    assert facts["cpus"]["offline_count"] == 80
    reasons = facts["topology_risk"]["reasons"]
    assert reasons[0].startswith("2 sockets: ")


def test_offline_cpus_leave_the_core_count_alone(tree):
    facts = facts_of(tree("icx_offline_cpus"))
    assert facts["offline_cpus"] == [6, 7, 20]
    assert facts["core_count"] == 16
    assert facts["sockets"][0]["cpu_count"] == 29
    assert 6 not in facts["nodes"][0]["cpus"]


def test_cloud_instance_type_from_dmi(tree):
    facts = facts_of(tree("vm_m6i_2xlarge"))
    assert facts["dmi"]["product_name"] == "m6i.2xlarge"
    assert facts["dmi"]["sys_vendor"] == "Amazon EC2"


def small(name, **overrides):
    """A small synthetic layout (2 sockets x 12 cores, Intel) for classifier and risk cases."""
    spec = dict(vendor="GenuineIntel", model_name="x", family=6, model=1, sockets=2, cores_per_socket=12)
    spec.update(overrides)
    return Layout(name=name, **spec)


@pytest.mark.parametrize(
    "layout, mode",
    [
        (small("snc2", nodes_per_socket=2), "snc2"),
        (small("snc6", nodes_per_socket=6), "snc6"),
        # AMD with one L3 per node ("LLC as NUMA node"): no known name, say so
        (small("llc-node", nodes_per_socket=4, l3_cores=3, vendor="AuthenticAMD"), "unknown"),
        (small("nps4-small", nodes_per_socket=4, l3_cores=1, vendor="AuthenticAMD"), "nps4"),
        # one node over two Intel sockets: interleaving or a VM, not an AMD NPS0
        (small("intel-interleave", nodes_per_socket=0), "unknown"),
        (small("nps1", nodes_per_socket=1, vendor="AuthenticAMD"), "node_per_socket"),
    ],
    ids=lambda v: v.name if isinstance(v, Layout) else v,
)
def test_clustering_modes(tree, layout, mode):
    root = tree(layout)
    facts = facts_of(root)
    assert facts["clustering"]["mode"] == mode, facts["clustering"]
    if LSCPU is not None:
        assert_agrees_with_lscpu(facts, _lscpu(root))


def test_clustering_falls_back_to_vendor_without_caches(tree, scratch):
    root = scratch(tree(small("snc2", nodes_per_socket=2)))
    for cpu in range(24):
        shutil.rmtree(os.path.join(root, "sys/devices/system/cpu/cpu%d/cache" % cpu))
    facts = facts_of(root)
    assert facts["clustering"]["mode"] == "snc2"
    assert facts["l3_count"] == 0
    assert any("no L3 cache information for CPUs 0-23" in w for w in facts["warnings"])


@pytest.mark.parametrize(
    "layout, tier, reason",
    [
        (small("1s-small", sockets=1, cores_per_socket=4), "low", "single socket"),
        (small("1s-big", sockets=1, cores_per_socket=64), "medium", "64 online CPUs"),
        (
            small("1s-snc2", sockets=1, cores_per_socket=8, nodes_per_socket=2),
            "medium",
            "2 NUMA nodes in one socket (snc2)",
        ),
    ],
    ids=lambda v: v.name if isinstance(v, Layout) else None,
)
def test_risk_tiers(tree, layout, tier, reason):
    risk = facts_of(tree(layout))["topology_risk"]
    assert risk["tier"] == tier
    assert any(reason in r for r in risk["reasons"]), risk


# --------------------------------------------------------------------------- this host


def test_host_matches_lscpu():
    if LSCPU is None:
        pytest.skip("lscpu not installed")
    out = subprocess.run(
        [LSCPU, "-J"], check=True, stdout=subprocess.PIPE, env=dict(os.environ, LC_ALL="C")
    ).stdout
    fields = {}
    for entry in json.loads(out)["lscpu"]:
        fields[entry["field"].rstrip(":")] = entry.get("data") or ""
        for child in entry.get("children", []):
            fields[child["field"].rstrip(":")] = child.get("data") or ""
    assert_agrees_with_lscpu(_numa.numa_facts(), fields)


def _numactl_hardware():
    out = subprocess.run([NUMACTL, "--hardware"], check=True, stdout=subprocess.PIPE, text=True).stdout
    parsed = {"cpus": {}, "size": {}, "free": {}, "distance": {}}
    lines = out.splitlines()
    parsed["available"] = parse_range_list(re.search(r"available: \d+ nodes \(([^)]*)\)", out).group(1))
    header = None
    for line in lines:
        match = re.match(r"node (\d+) cpus:(.*)$", line)
        if match:
            parsed["cpus"][int(match.group(1))] = [int(c) for c in match.group(2).split()]
        match = re.match(r"node (\d+) (size|free): (\d+) MB", line)
        if match:
            parsed[match.group(2)][int(match.group(1))] = int(match.group(3))
        if line.startswith("node ") and line.split()[1:] and line.split()[1].isdigit() and ":" not in line:
            header = [int(n) for n in line.split()[1:]]
        match = re.match(r"\s*(\d+):\s+([\d\s]+)$", line)
        if match and header is not None:
            parsed["distance"][int(match.group(1))] = dict(zip(header, map(int, match.group(2).split())))
    return parsed


@pytest.mark.skipif(NUMACTL is None, reason="numactl not installed")
def test_host_matches_numactl_hardware():
    want = _numactl_hardware()
    facts = _numa.numa_facts()
    assert facts["online"] == want["available"]
    assert {n["id"]: n["cpus"] for n in facts["nodes"]} == want["cpus"]
    assert {n["id"]: n["memory_total_mb"] for n in facts["nodes"]} == want["size"]
    for node in facts["nodes"]:
        # free memory moves between the two reads; a unit or parsing error would be far larger
        assert abs(node["memory_free_mb"] - want["free"][node["id"]]) < 256
        assert {int(k): v for k, v in node["distance"].items()} == want["distance"][node["id"]]


def test_host_facts_are_complete():
    facts = _numa.numa_facts()
    assert facts["warnings"] == []
    assert facts["available"] is True
    assert facts["cpus"]["online"]
    assert facts["topology_risk"]["tier"] in ("low", "medium", "high")


# --------------------------------------------------------------------------- degraded trees


def test_masked_sys_gives_degraded_facts(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "proc").mkdir()
    facts = facts_of(str(tmp_path))
    assert facts["available"] is False
    assert facts["degraded"] is True
    assert facts["nodes"] == [] and facts["sockets"] == []
    assert facts["clustering"]["mode"] == "unknown"
    assert facts["topology_risk"]["tier"] == "unknown"
    text = "\n".join(facts["warnings"])
    assert str(tmp_path / "sys/devices/system/node") + " is missing" in text
    assert str(tmp_path / "sys/devices/system/cpu") + " is missing" in text
    assert str(tmp_path / "proc/cpuinfo") in text


CHILD = (
    "import json, sys; sys.path.insert(0, sys.argv[1]);"
    "from ansible_collections.mountops.fleet.plugins.module_utils._numa import numa_facts;"
    "print(json.dumps(numa_facts()))"
)


@pytest.mark.root
def test_really_masked_sysfs_in_a_private_mount_namespace():
    """Like a container that hides the NUMA directory: tmpfs over it, in a throw-away namespace."""
    node_dir = "/sys/devices/system/node"
    script = 'mount -t tmpfs -o size=1M,mode=0555 masked %s && exec "$0" -c "$1" "$2"' % node_dir
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        + [sys.executable, CHILD, os.path.join(REPO, ".collections")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    assert facts["available"] is False  # the directory exists, but it is empty
    assert facts["nodes"] == [] and facts["online"] == []
    assert facts["clustering"]["mode"] == "unknown"
    assert (
        "NUMA nodes unreadable: tier from sockets, SMT and CPU count only"
        in facts["topology_risk"]["reasons"]
    )
    assert facts["socket_count"] >= 1
    assert facts["degraded"] is True
    assert "cannot read %s/online" % node_dir in facts["warnings"]
    assert "%s lists no NUMA node (masked?): no NUMA node facts" % node_dir in facts["warnings"]
    assert os.listdir(node_dir), "the host's node directory must be untouched"


def test_missing_node_dir_keeps_cpu_facts(tree, scratch):
    root = scratch(tree("vm_m6i_2xlarge"))
    shutil.rmtree(os.path.join(root, "sys/devices/system/node"))
    facts = facts_of(root)
    assert facts["available"] is False
    assert facts["node_count"] == 0
    assert facts["socket_count"] == 1 and facts["threads_per_core"] == 2
    assert facts["clustering"]["mode"] == "unknown"
    assert facts["topology_risk"]["tier"] == "low"
    assert [w for w in facts["warnings"] if "devices/system/node is missing" in w]


def _make_unreadable(path):
    """Root reads any mode, so replace the file by a directory: open() fails with EISDIR."""
    os.remove(path)
    os.mkdir(path)


def test_unreadable_files_are_named_in_warnings(tree, scratch):
    nps2 = small("nps2-small", nodes_per_socket=2, l3_cores=2, vendor="AuthenticAMD", cross_socket=32)
    root = scratch(tree(nps2))
    node = os.path.join(root, "sys/devices/system/node")
    cpu = os.path.join(root, "sys/devices/system/cpu")
    _make_unreadable(os.path.join(node, "node1/distance"))
    _make_unreadable(os.path.join(node, "node2/meminfo"))
    _make_unreadable(os.path.join(node, "online"))
    for name in ("thread_siblings_list", "core_cpus_list", "physical_package_id"):
        os.remove(os.path.join(cpu, "cpu5/topology", name))
        os.symlink("/nonexistent", os.path.join(cpu, "cpu5/topology", name))
    facts = facts_of(root)
    warnings = "\n".join(facts["warnings"])
    assert os.path.join(node, "node1/distance") in warnings
    assert os.path.join(node, "node2/meminfo") in warnings
    assert os.path.join(node, "online") in warnings
    assert "no readable topology for online CPUs 5 " in warnings
    assert facts["degraded"] is True
    # everything else is intact: node list falls back to the nodeN directories
    assert facts["online"] == [0, 1, 2, 3]
    assert facts["nodes"][1]["distance"] == {}
    assert facts["nodes"][0]["distance"] == {"0": 10, "1": 12, "2": 32, "3": 32}
    assert facts["nodes"][2]["memory_total_mb"] is None
    assert facts["socket_count"] == 2
    assert facts["clustering"]["mode"] == "nps2"


def test_garbage_is_a_warning_not_a_traceback(tree, scratch):
    root = scratch(tree("sparse_nodes_0_8"))
    node = os.path.join(root, "sys/devices/system/node")
    with open(os.path.join(node, "node0/distance"), "w") as handle:
        handle.write("10 20 30\n")  # three values for two online nodes
    with open(os.path.join(node, "node8/cpulist"), "w") as handle:
        handle.write("eight\n")
    with open(os.path.join(node, "node8/meminfo"), "w") as handle:
        handle.write("Node 8 MemTotal: lots kB\n")
    with open(os.path.join(root, "sys/devices/system/cpu/smt/active"), "w") as handle:
        handle.write("")
    facts = facts_of(root)
    warnings = "\n".join(facts["warnings"])
    assert "node0/distance has 3 values for 2 online nodes" in warnings
    assert "node8/cpulist: not a range list" in warnings
    assert "no MemTotal in %s/node8/meminfo" % node in warnings
    assert facts["nodes"][0]["distance"] == {}
    assert facts["nodes"][1]["cpus"] == []
    assert facts["nodes"][1]["memory_total_mb"] is None
    assert facts["smt"]["active"] is False


def test_missing_cpuinfo_keeps_topology(tree, scratch):
    root = scratch(tree("vm_m6i_2xlarge"))
    os.remove(os.path.join(root, "proc/cpuinfo"))
    facts = facts_of(root)
    assert facts["cpu"] == {
        "vendor": None,
        "model_name": None,
        "family": None,
        "model": None,
        "stepping": None,
    }
    assert facts["socket_count"] == 1
    assert any("proc/cpuinfo" in w for w in facts["warnings"])


def test_old_kernel_without_package_and_die_lists(tree, scratch):
    root = scratch(tree("sparse_nodes_0_8"))
    cpu = os.path.join(root, "sys/devices/system/cpu")
    for n in range(32):
        for name in ("package_cpus_list", "die_cpus_list", "die_id", "thread_siblings_list"):
            os.remove(os.path.join(cpu, "cpu%d/topology" % n, name))
    os.remove(os.path.join(cpu, "smt/active"))
    facts = facts_of(root)
    assert facts["warnings"] == []
    assert facts["socket_count"] == 2 and facts["die_count"] == 2 and facts["threads_per_core"] == 2
    assert facts["sockets"][1]["cpulist"] == "8-15,24-31"
    assert facts["smt"]["active"] is True  # inferred from two threads per core


def test_cpuinfo_arm64_keys(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(
        "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
        "CPU variant\t: 0x3\nCPU part\t: 0xd0c\n\nprocessor\t: 1\nCPU implementer\t: 0x99\n"
    )
    with open(str(path), "rb") as handle:
        model = _numa._parse_cpuinfo_head(handle)
    assert (model.vendor, model.family, model.model, model.stepping, model.model_name) == (
        "0x41",
        "8",
        "0xd0c",
        "0x3",
        None,
    )


# --------------------------------------------------------------------------- the module


@pytest.fixture
def warned(monkeypatch):
    from ansible.module_utils import basic

    messages = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg, **kw: messages.append(msg))
    return messages


def test_module_returns_facts(run_module, tree, warned):
    root = tree("genoa_9654_nps2")
    result = run_module(
        numa_module.main, {"sysfs_root": os.path.join(root, "sys"), "procfs_root": os.path.join(root, "proc")}
    )
    assert result["changed"] is False
    assert result["ansible_facts"]["numa"] == facts_of(root)
    assert warned == []


def test_module_check_mode_and_alias(run_module, tree):
    root = tree("vm_m6i_2xlarge")
    args = {"sysfs_root": os.path.join(root, "sys"), "proc_root": os.path.join(root, "proc")}
    result = run_module(numa_module.main, args, check_mode=True)
    assert result["changed"] is False
    assert result["ansible_facts"]["numa"]["cpu"]["model_name"] == LAYOUTS["vm_m6i_2xlarge"].model_name


def test_module_warns_on_degraded_tree(run_module, tmp_path, warned):
    (tmp_path / "proc").mkdir()
    result = run_module(
        numa_module.main, {"sysfs_root": str(tmp_path), "procfs_root": str(tmp_path / "proc")}
    )
    assert result["ansible_facts"]["numa"]["degraded"] is True
    assert warned == result["ansible_facts"]["numa"]["warnings"]
    assert any("devices/system/node is missing" in w for w in warned)


@pytest.mark.parametrize("option", ["sysfs_root", "procfs_root"])
def test_module_fails_on_a_root_that_is_not_a_directory(run_module, tmp_path, option):
    from tests.conftest import ModuleFail

    args = {option: str(tmp_path / "nope")}
    with pytest.raises(ModuleFail) as failed:
        run_module(numa_module.main, args)
    assert failed.value.result["msg"] == "reading NUMA topology: %s %s is not a directory" % (
        option,
        tmp_path / "nope",
    )


def test_argument_spec():
    spec = numa_module.get_argument_spec()
    assert spec["sysfs_root"] == {"type": "path", "default": "/sys"}
    assert spec["procfs_root"]["default"] == "/proc"


def test_module_through_ansible(tree):
    """The real thing: ansible runs the module from the in-place collection against a fixture."""
    root = tree("sparse_nodes_0_8")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    out = subprocess.run(
        [
            ansible,
            "localhost",
            "-m",
            "mountops.fleet.numa_facts",
            "-a",
            "sysfs_root=%s/sys procfs_root=%s/proc" % (root, root),
        ],
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout.split("=>", 1)[1])
    numa = payload["ansible_facts"]["numa"]
    assert numa["online"] == [0, 8]
    assert numa["clustering"]["mode"] == "node_per_socket"
    assert payload["changed"] is False


def _undocumented(value, doc, path):
    """Keys of ``value`` missing from a RETURN ``contains`` block (dicts without one are leaves)."""
    missing = []
    contains = doc.get("contains")
    if contains is None:
        return missing
    items = value if isinstance(value, list) else [value]
    for item in items:
        for key, sub in item.items():
            where = "%s.%s" % (path, key)
            if key not in contains:
                missing.append(where)
            elif (
                isinstance(sub, (dict, list))
                and sub
                and (not isinstance(sub, list) or isinstance(sub[0], dict))
            ):
                missing.extend(_undocumented(sub, contains[key], where))
    return sorted(set(missing))


@pytest.mark.parametrize("name", ["genoa_9654_nps2", "spr_cxl_memory_node"])
def test_every_fact_is_documented(tree, name):
    import yaml

    doc = yaml.safe_load(numa_module.RETURN)["ansible_facts"]["contains"]["numa"]
    facts = facts_of(tree(name))
    assert _undocumented(facts, doc, "numa") == []
    assert set(doc["contains"]) == set(facts), "documented keys that the module never returns"


def _overwrite(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


DAMAGE = [
    lambda path, rng: os.remove(path),
    lambda path, rng: _make_unreadable(path),
    lambda path, rng: _overwrite(path, b""),
    lambda path, rng: _overwrite(path, bytes(rng.randrange(256) for _byte in range(rng.randrange(1, 40)))),
    lambda path, rng: _overwrite(
        path, rng.choice([b"-1", b"0-4294967295", b"7-3", b"1,,2", b"x y z", b"99999"])
    ),
]


def test_absurd_range_is_refused_not_expanded(tree, scratch):
    root = scratch(tree("vm_m6i_2xlarge"))
    _overwrite(os.path.join(root, "sys/devices/system/node/node0/cpulist"), b"0-4294967295\n")
    facts = facts_of(root)
    assert facts["nodes"][0]["cpus"] == []
    assert any("node0/cpulist: id out of range (>= 65536)" in w for w in facts["warnings"]), facts["warnings"]


@pytest.mark.parametrize("seed", range(6))
def test_random_damage_never_raises(tree, scratch, seed):
    """Damage a growing number of random files (deleted, directories, empty, binary, absurd):
    every collection must still return facts, and name a problem whenever it reports one."""
    import random

    rng = random.Random(seed)
    root = scratch(tree("sparse_nodes_0_8"))
    files = sorted(
        os.path.join(d, f) for d, _dirs, names in os.walk(os.path.join(root, "sys")) for f in names
    ) + [os.path.join(root, "proc/cpuinfo")]
    rng.shuffle(files)
    for round_ in range(8):
        for path in files[round_ * 6 : round_ * 6 + 6]:
            rng.choice(DAMAGE)(path, rng)
        facts = facts_of(root)
        json.dumps(facts)
        assert facts["degraded"] is bool(facts["warnings"])
        assert facts["topology_risk"]["tier"] in ("low", "medium", "high", "unknown")

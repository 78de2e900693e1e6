"""propagation_facts' collector and analysis on real mount namespaces (root).

Each test builds its scenario in a throwaway mount+pid namespace (tests/nsscenario.py): a shared
tree of M mounts, K peer namespaces cloned from it, S slave namespaces, P private ones, pinned
namespaces, odd paths. The expected numbers follow from kernel rules, not from the product.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.nsscenario import BASE, ODD_NAMES, run_scenario

pytestmark = pytest.mark.root

MOUNTS, PEERS, SLAVES, PRIVATES, PINNED = 6, 4, 3, 2, 1


@pytest.fixture(scope="module")
def scenario():
    spec = {
        "mounts": MOUNTS,
        "peers": PEERS,
        "slaves": SLAVES,
        "privates": PRIVATES,
        "pinned": PINNED,
        "odd_paths": True,
        "runc_state": True,
        "zombies": 2,
        "backends": ["mountinfo", "statmount", "auto"],
        "raw": True,
        "detail": True,
        "top_n": 50,
    }
    return run_scenario(spec)


def _by_inode(facts):
    return {ns["inode"]: ns for ns in facts["namespaces"]}


@pytest.fixture(scope="module")
def facts(scenario):
    return scenario["results"]["mountinfo"]


def test_every_namespace_found_once_with_its_role(scenario, facts):
    roles = scenario["roles"]
    namespaces = _by_inode(facts)
    expected = 1 + PEERS + SLAVES + PRIVATES + PINNED
    assert len(facts["namespaces"]) == expected == facts["summary"]["namespaces"]
    assert facts["namespaces"][0]["is_host"] and facts["namespaces"][0]["inode"] == roles["host"][0]
    assert facts["summary"]["host_namespace"] == roles["host"][0]
    for inode in roles["pinned"]:
        assert namespaces[inode]["owner"]["kind"] == "pinned"
        assert namespaces[inode]["processes"] == 0
        assert [p["mount_point"] for p in namespaces[inode]["pinned_by"]] == [BASE + "/pins/ns0"]
    assert facts["summary"]["pinned_namespaces"] == PINNED
    assert facts["collection"]["partial"] is False
    assert facts["collection"]["namespaces_read"] == expected


def test_zombies_are_counted_not_fatal(facts):
    assert facts["collection"]["processes_vanished"] >= 2
    assert facts["collection"]["namespaces_failed"] == 0


def test_peer_groups_span_host_peers_and_pinned(scenario, facts):
    tree = scenario["tree_mounts"]  # the tree root plus its submounts
    members = 1 + PEERS + PINNED  # host + peers + the pinned clone (slaves are not ring members)
    tree_groups = [g for g in facts["peer_groups"] if g["includes_host"]]
    assert len(tree_groups) == tree
    for group in tree_groups:
        assert group["members"] == members
        assert group["namespaces"] == members
        assert group["slaves"] == SLAVES and group["slave_namespaces"] == SLAVES
    assert facts["summary"]["largest_peer_group"]["members"] == members
    fanout = {f["master"]: f for f in facts["slave_fanout"]}
    for group in tree_groups:
        assert fanout[group["id"]]["slaves"] == SLAVES
        assert fanout[group["id"]]["master_members"] == members


def test_predicted_read_cost_and_roles(scenario, facts):
    tree = scenario["tree_mounts"]
    members = 1 + PEERS + PINNED
    namespaces = _by_inode(facts)
    for inode in scenario["roles"]["slave"]:
        ns = namespaces[inode]
        assert ns["propagation"]["slave"] == tree
        assert ns["predicted_read_cost"] == tree * members
        assert ns["slave_to_host_mounts"] == tree and ns["host_peer_mounts"] == 0
    for inode in scenario["roles"]["peer"]:
        ns = namespaces[inode]
        assert ns["propagation"]["shared"] == tree
        assert ns["host_peer_mounts"] == tree and ns["predicted_read_cost"] == 0
    for inode in scenario["roles"]["private"]:
        ns = namespaces[inode]
        assert ns["propagation"]["shared"] == ns["propagation"]["slave"] == 0
        assert ns["predicted_read_cost"] == 0
    worst = facts["summary"]["max_predicted_read_cost"]
    assert worst["value"] == tree * members and worst["namespace"] in scenario["roles"]["slave"]


def test_container_attribution_and_host_groups(scenario, facts):
    namespaces = _by_inode(facts)
    first_peer = namespaces[scenario["roles"]["peer"][0]]
    assert first_peer["owner"] == {
        "kind": "container",
        "runtime": "runc",
        "container_id": "ctr-test",
        "unit": None,
    }
    assert facts["summary"]["container_namespaces"] == 1
    assert facts["summary"]["container_namespaces_in_host_peer_groups"] == 1
    subtrees = facts["summary"]["host_shared_subtrees"]
    assert [s["mount_point"] for s in subtrees] == [BASE + "/tree"]
    assert subtrees[0]["members"] == 1 + PEERS + PINNED


def test_mount_counts_and_headroom(facts):
    for ns in facts["namespaces"]:
        assert ns["mounts"] == len(ns["mount_list"])
        assert ns["mount_headroom"] == 100000 - ns["mounts"]
        assert sum(ns["propagation"].values()) == ns["mounts"]


def test_odd_paths_survive(scenario, facts):
    host = facts["namespaces"][0]
    points = {m["mount_point"] for m in host["mount_list"]}
    assert BASE + "/tree/dir with space" in points
    assert BASE + "/tree/new\nline" in points
    assert BASE + "/tree/tab\there" in points
    assert BASE + "/tree/back\\slash" in points
    assert BASE + "/tree/bad\\377utf8" in points  # non-UTF-8 byte, octal-escaped for JSON
    raw_points = {entry[2] for entry in facts["raw"][str(host["inode"])]}
    for name in ODD_NAMES:
        assert (BASE + "/tree/").encode() + name in {p.encode("latin-1") for p in raw_points}


def test_backends_agree_exactly(scenario):
    results = scenario["results"]
    mountinfo, statmount = results["mountinfo"], results["statmount"]
    assert mountinfo["raw"] == statmount["raw"]
    assert len(mountinfo["raw"]) == 1 + PEERS + SLAVES + PRIVATES + PINNED
    for key in ("summary", "peer_groups", "slave_fanout"):
        assert mountinfo[key] == statmount[key], key


def test_auto_backend_reports_its_choice(scenario):
    collection = scenario["results"]["auto"]["collection"]
    assert collection["backend"] in ("mountinfo", "statmount")
    assert set(collection["calibration_ms"]) == {"mountinfo", "statmount"}
    assert "measured cheaper" in collection["backend_reason"]
    assert scenario["results"]["auto"]["summary"] == scenario["results"]["mountinfo"]["summary"]


@pytest.mark.parametrize("backend", ["mountinfo", "statmount"])
def test_tables_of_many_pages_are_read_whole(backend):
    """procfs returns a page or so per read(); a 300-mount table spans many of them."""
    result = run_scenario({"mounts": 300, "peers": 2, "slaves": 1, "backends": [backend]})
    facts = result["results"][backend]
    truth = result["roles"]["mount_counts"]
    assert len(truth) == 4 and min(truth.values()) > 300
    assert {str(ns["inode"]): ns["mounts"] for ns in facts["namespaces"]} == truth
    assert facts["summary"]["largest_peer_group"]["members"] == 3  # host + 2 peers
    slave = next(ns for ns in facts["namespaces"] if ns["inode"] == result["roles"]["slave"][0])
    assert slave["predicted_read_cost"] == 301 * 3


def test_namespace_budget_makes_a_partial_collection():
    result = run_scenario({"mounts": 2, "peers": 5, "max_namespaces": 3, "backends": ["mountinfo"]})
    facts = result["results"]["mountinfo"]
    collection = facts["collection"]
    assert collection["partial"] is True and collection["partial_reason"] == "max_namespaces"
    assert collection["namespaces_read"] == 3 and collection["namespaces_not_read"] == 3
    assert collection["covered"][0] == result["roles"]["host"][0]
    assert len(collection["covered"]) == 3


def test_unprivileged_run_degrades_with_a_warning():
    """As nobody, other users' processes are unreadable: facts still come, with a warning."""
    collections = os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".collections"
    )
    code = (
        "import json, sys\n"
        "sys.path.insert(0, %r)\n"
        "from ansible_collections.mountops.fleet.plugins.module_utils import _namespaces, _propagation\n"
        "c = _namespaces.collect(backend='mountinfo')\n"
        "print(json.dumps({'warnings': c.warnings, 'facts': _propagation.analyse(c)}))\n" % collections
    )
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-800:]
    out = json.loads(done.stdout)
    assert out["facts"]["collection"]["processes_denied"] > 0
    assert any("permission denied" in w and "run as root" in w for w in out["warnings"])
    assert out["facts"]["namespaces"][0]["is_host"] is True


@pytest.mark.parametrize("cpu", sorted(os.sched_getaffinity(0)))
def test_pinned_namespaces_whichever_cpu_the_scenario_is_born_on(cpu):
    # Since 6.18 mount-namespace ids come from per-CPU batches; a scenario born on the CPU with
    # the higher batch could not bind namespaces created on the other one (EINVAL), which broke
    # CI once. The collector must see every pinned namespace either way.
    result = run_scenario({"mounts": 2, "pinned": 3, "backends": ["statmount"]}, born_on_cpu=cpu)
    facts = result["results"]["statmount"]
    pinned = {ns["inode"] for ns in facts["namespaces"] if ns["owner"]["kind"] == "pinned"}
    assert len(result["roles"]["pinned"]) == 3
    assert pinned == set(result["roles"]["pinned"])

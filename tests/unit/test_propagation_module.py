"""propagation_facts main(): argument handling, facts shape and failure branches."""

from __future__ import annotations

import pytest

from ansible_collections.mountops.fleet.plugins.modules import propagation_facts

from ..conftest import ModuleFail
from .test_namespaces import HOST_TABLE, PEER_TABLE, make_proc


@pytest.fixture
def proc(tmp_path):
    return make_proc(
        tmp_path / "proc",
        {
            1: ("host", HOST_TABLE, "/init.scope", "systemd"),
            7: ("ctr", PEER_TABLE, "/system.slice/docker-" + "a" * 64 + ".scope", "app"),
        },
    )


@pytest.mark.parametrize("check_mode", [False, True])
def test_facts_from_a_captured_tree(run_module, proc, check_mode):
    result = run_module(
        propagation_facts.main, {"proc_root": proc, "backend": "mountinfo"}, check_mode=check_mode
    )
    facts = result["ansible_facts"]["mount_propagation"]
    assert result["changed"] is False
    assert facts["summary"]["mount_max"] == 1000
    assert facts["summary"]["container_namespaces_in_host_peer_groups"] == 1
    assert [g["members"] for g in facts["peer_groups"]] == [2]
    assert "mount_list" not in facts["namespaces"][0]


def test_detail_and_top_n(run_module, proc):
    result = run_module(
        propagation_facts.main, {"proc_root": proc, "backend": "mountinfo", "detail": True, "top_n": 0}
    )
    facts = result["ansible_facts"]["mount_propagation"]
    assert facts["peer_groups"] == [] and facts["slave_fanout"] == []
    assert [m["mount_point"] for m in facts["namespaces"][0]["mount_list"]] == ["/", "/proc"]


def test_partial_collection_warns(run_module, proc):
    result = run_module(
        propagation_facts.main, {"proc_root": proc, "backend": "mountinfo", "max_namespaces": 1}
    )
    assert result["ansible_facts"]["mount_propagation"]["collection"]["partial"] is True
    assert any(
        "partial collection: stopped by max_namespaces after 1 of 2" in w for w in result.get("warnings", [])
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            {"proc_root": "/nonexistent"},
            "collecting mount namespaces: proc_root /nonexistent does not exist or is not a directory",
        ),
        ({"time_budget_ms": -5}, "time_budget_ms must be 0 or more, got -5"),
        ({"top_n": -1}, "top_n must be 0 or more, got -1"),
    ],
)
def test_failures(run_module, args, message):
    with pytest.raises(ModuleFail) as failed:
        run_module(propagation_facts.main, args)
    assert failed.value.result["msg"] == message


def test_argument_spec_matches_documentation():
    import yaml

    documented = yaml.safe_load(propagation_facts.DOCUMENTATION)["options"]
    spec = propagation_facts.get_argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name].get("default") == option.get("default"), name
        assert documented[name]["type"] == option["type"], name

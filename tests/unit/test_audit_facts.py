"""audit_facts main(): several fact sets in one run, per-set option validation, partial failure."""

from __future__ import annotations

import pytest

from ansible_collections.mountops.fleet.plugins.modules import audit_facts

from ..conftest import ModuleFail
from .test_namespaces import HOST_TABLE, PEER_TABLE, make_proc


@pytest.fixture
def proc(tmp_path):
    return make_proc(
        tmp_path / "proc",
        {
            1: ("host", HOST_TABLE, "/init.scope", "systemd"),
            7: ("ctr", PEER_TABLE, "/docker/" + "a" * 64, "app"),
        },
    )


def test_gathers_each_requested_set_once(run_module, proc):
    result = run_module(
        audit_facts.main,
        {"gather": ["propagation", "numa"], "propagation": {"proc_root": proc, "backend": "mountinfo"}},
        check_mode=True,
    )
    facts = result["ansible_facts"]
    assert result["changed"] is False
    assert set(facts) == {"mount_propagation", "numa", "mountops_audit"}
    assert facts["mount_propagation"]["summary"]["container_namespaces_in_host_peer_groups"] == 1
    assert facts["numa"]["node_count"] >= 1
    assert facts["mountops_audit"]["gathered"] == ["propagation", "numa"]
    assert facts["mountops_audit"]["errors"] == {}
    assert set(facts["mountops_audit"]["duration_ms"]) == {"propagation", "numa"}


def test_one_failing_set_does_not_stop_the_others(run_module, proc, tmp_path):
    result = run_module(
        audit_facts.main,
        {
            "gather": ["propagation", "numa"],
            "propagation": {"proc_root": proc, "backend": "mountinfo"},
            "numa": {"sysfs_root": str(tmp_path / "missing")},
        },
    )
    audit = result["ansible_facts"]["mountops_audit"]
    assert audit["gathered"] == ["propagation"]
    assert audit["errors"] == {
        "numa": "reading NUMA topology: sysfs_root %s is not a directory" % (tmp_path / "missing")
    }
    assert any(w.startswith("numa facts not gathered: ") for w in result["warnings"])


def test_all_sets_failing_fails_the_task(run_module, tmp_path):
    with pytest.raises(ModuleFail) as failed:
        run_module(
            audit_facts.main,
            {"gather": ["propagation"], "propagation": {"proc_root": str(tmp_path / "none")}},
        )
    assert failed.value.result["msg"] == (
        "no fact set could be gathered: propagation: collecting mount namespaces: proc_root %s does not exist or is not a directory"
        % (tmp_path / "none")
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            {"propagation": {"backend": "kernel"}},
            "propagation: value of backend must be one of: auto, mountinfo, statmount, got: kernel",
        ),
        (
            {"numa": {"sysfs": "/sys"}},
            "numa: unsupported option(s) sysfs; supported: procfs_root, sysfs_root",
        ),
        (
            {"runtime": {"timeout": "soon"}},
            "runtime: argument 'timeout' is of type str and we were unable to convert to int",
        ),
        ({"propagation": {"time_budget_ms": -5}}, "propagation: time_budget_ms must be 0 or more, got -5"),
        ({"runtime": {"timeout": 0}}, "runtime: timeout must be a positive number of seconds, got 0"),
        (
            {"runtime": {"version_outputs": {"dockerd": "x"}}},
            "runtime: version_outputs: unknown engine(s) dockerd; expected some of",
        ),
    ],
)
def test_invalid_options_name_the_fact_set(run_module, args, message):
    with pytest.raises(ModuleFail) as failed:
        run_module(audit_facts.main, args)
    assert failed.value.result["msg"].startswith(message)


def test_a_bad_value_fails_before_any_fact_set_is_gathered(run_module, proc):
    # A valid propagation set next to a bad runtime option: the task fails on the option instead
    # of gathering propagation and reporting runtime as "not gathered" on this host.
    with pytest.raises(ModuleFail) as failed:
        run_module(
            audit_facts.main,
            {"propagation": {"proc_root": proc, "backend": "mountinfo"}, "runtime": {"timeout": -1}},
        )
    assert failed.value.result["msg"] == "runtime: timeout must be a positive number of seconds, got -1"
    assert "ansible_facts" not in failed.value.result


def test_standalone_modules_share_the_spec():
    from ansible_collections.mountops.fleet.plugins.module_utils._gather import argument_spec
    from ansible_collections.mountops.fleet.plugins.modules import (
        numa_facts,
        propagation_facts,
        runtime_facts,
    )

    assert propagation_facts.get_argument_spec() == argument_spec("propagation")
    assert numa_facts.get_argument_spec() == argument_spec("numa")
    assert runtime_facts.get_argument_spec() == argument_spec("runtime")

"""runtime_facts over real SSH against lab hosts that carry their own runtime configs and state.

Host 1 has every engine's config file, the MountFlags/PrivateMounts drop-ins and leaked
containerd ovl-idmapped tmpmounts; host 2 runs real runc containers, half of them sharing a
peer group with the host. Expectations come from what the lab built (``built.json``), never
from the product.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.lab import fixtures as lab_fixtures
from tests.lab.lab import REPO

# The session-wide lab janitor and factory, registered here by name.
lab_factory = lab_fixtures.lab_factory

pytestmark = [pytest.mark.root, pytest.mark.slow]

CONFIG_HOST = "idmap-leak:4+runtime-configs"
RUNC_HOST = "runc:2"


@pytest.fixture(scope="module")
def lab(lab_factory):  # pylint: disable=redefined-outer-name
    return lab_factory([CONFIG_HOST, RUNC_HOST])


@pytest.fixture(scope="module")
def results(lab):
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    proc = subprocess.run(
        [ansible, "all", "-m", "mountops.fleet.runtime_facts", "-a", '{"gather_versions": false}'],
        env=dict(lab.env(), ANSIBLE_STDOUT_CALLBACK="minimal"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The minimal callback prints "<host> | SUCCESS => {" and then the result as indented JSON.
    found = {}
    starts = list(re.finditer(r"^(\S+) \| SUCCESS => ", proc.stdout, re.MULTILINE))
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(proc.stdout)
        found[match.group(1)] = json.loads(proc.stdout[match.end() : end])["ansible_facts"]["mount_runtime"]
    assert set(found) == set(lab.names)
    return found


def host_with(lab, scenario):
    return next(h for h in lab.state["hosts"] if scenario in h["scenarios"])


def test_config_host_engines_and_services(lab, results):
    facts = results[host_with(lab, "runtime-configs")["name"]]
    engines = facts["engines"]
    assert engines["containerd"]["settings"]["config_version"] == 2
    assert engines["containerd"]["settings"]["default_runtime"] == "runc"
    assert engines["docker"]["settings"]["runtimes"] == {
        "crun": {"path": "/usr/bin/crun", "runtime_type": None, "args": []}
    }
    assert engines["crio"]["settings"]["default_runtime"] == "crun"
    assert engines["crio"]["settings"]["sources"]["default_runtime"] == "/etc/crio/crio.conf.d/10-crun.conf"
    assert engines["podman"]["settings"]["runtime"] == "crun"
    docker = facts["services"]["docker.service"]
    assert docker["mount_flags"] == "slave"
    assert (
        docker["settings"]["MountFlags"]["source"]
        == "/etc/systemd/system/docker.service.d/10-mountflags.conf"
    )
    assert facts["services"]["containerd.service"]["private_mounts"] == "no"
    assert facts["problems"] == []


def test_config_host_leaked_tmpmounts_and_advisories(lab, results):
    host = host_with(lab, "idmap-leak")
    facts = results[host["name"]]
    built = host["built"]["scenarios"]["idmap-leak"]["mounts"]
    assert facts["host_mounts"]["ovl_idmapped_tmpmounts"] == len(built) == 4
    assert set(facts["host_mounts"]["ovl_idmapped_examples"]) <= set(built)
    ids = [a["id"] for a in facts["advisories"]]
    assert "MO-RT-002" in ids and "MO-RT-003" in ids
    mountflags = next(a for a in facts["advisories"] if a["id"] == "MO-RT-003")
    assert mountflags["evidence"][-1] == "docker version unknown (treated as affected)"


def test_runc_host_containers(lab, results):
    host = host_with(lab, "runc")
    facts = results[host["name"]]
    built = {c["id"]: c for c in host["built"]["scenarios"]["runc"]["containers"]}
    found = {c["id"]: c for c in facts["containers"]}
    assert set(found) == set(built)
    for cid, expected in built.items():
        record = found[cid]
        assert record["runtime"] == "runc" and record["alive"]
        assert record["pid"] == expected["pid"] and record["mnt_ns"] == expected["ns"]
        assert record["rootfs_propagation"]["configured"] == expected["rootfs_propagation"]
        assert record["shared_mounts"] == (["/data"] if expected["bind"] else [])
    shared = {c["id"] for c in built.values() if c["rootfs_propagation"] == "shared"}
    (advisory,) = [a for a in facts["advisories"] if a["id"] == "MO-RT-004"]
    assert {line.split()[2] for line in advisory["evidence"]} == shared
    # The other engines are simply absent on this host.
    assert set(facts["engines"]) <= {"runc", "crun"}

"""playbooks/audit.yml over real SSH against lab hosts, each with its own scenario.

Expectations come from what the lab built (``built.json`` per host, kept on the test side) and
from the hosts' own /proc read directly by the test; the product only sees the inventory.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.lab.lab import REPO

pytest_plugins = ["tests.lab.fixtures"]
pytestmark = [pytest.mark.root, pytest.mark.slow]


def host_of(lab, scenario):
    for host in lab.state["hosts"]:
        if scenario in host["scenarios"]:
            return host
    raise LookupError(scenario)


def read_report(report_dir, name):
    with open(os.path.join(report_dir, name + ".json"), encoding="utf-8") as handle:
        return json.load(handle)


def facts_of(report_dir, name):
    return read_report(report_dir, name)["mount_propagation"]


def by_inode(facts):
    return {ns["inode"]: ns for ns in facts["namespaces"]}


def containers(facts):
    return [ns for ns in facts["namespaces"] if ns["owner"]["kind"] == "container"]


def host_mountinfo(host):
    with open("/proc/%d/mountinfo" % host["ns_pid1"], encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


@pytest.fixture(scope="module")
def ssh_audit(fleet_lab, tmp_path_factory):
    report_dir = str(tmp_path_factory.mktemp("fleet-ssh"))
    started = time.monotonic()
    done = fleet_lab.playbook("playbooks/audit.yml", "-e", "audit_report_dir=%s" % report_dir)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return report_dir, done, time.monotonic() - started


def test_every_host_reports_over_openssh(fleet_lab, ssh_audit):
    report_dir, done, _seconds = ssh_audit
    recap = dict(re.findall(r"^(lab-\d+)\s+: (ok=\d+ .*)$", done.stdout, re.M))
    assert sorted(recap) == fleet_lab.names
    for name, line in recap.items():
        assert "unreachable=0" in line and "failed=0" in line, (name, line)
        report = read_report(report_dir, name)
        assert report["host"] == name
        collection = report["mount_propagation"]["collection"]
        assert collection["partial"] is False
        assert collection["namespaces_failed"] == 0
    with open(os.path.join(report_dir, "summary.txt"), encoding="utf-8") as handle:
        summary = handle.read()
    assert "%d of %d hosts audited" % (len(fleet_lab.names), len(fleet_lab.names)) in summary
    assert "MISSING" not in summary
    # Default transport: OpenSSH with ControlPersist sockets in the lab's own control dir; and
    # no temp files left on the hosts.
    assert os.listdir(fleet_lab.control_dir)
    for host in fleet_lab.state["hosts"]:
        # the host's own writes to /root land in its overlay's upper layer
        tmp = "/proc/%d/root/run/.lab-layers/root/upper/.ansible/tmp" % host["ns_pid1"]
        assert not (os.path.isdir(tmp) and os.listdir(tmp)), (host["name"], os.listdir(tmp))


def test_each_host_sees_only_its_own_namespaces(fleet_lab, ssh_audit):
    report_dir, _done, _seconds = ssh_audit
    for host in fleet_lab.state["hosts"]:
        facts = facts_of(report_dir, host["name"])
        assert facts["summary"]["host_namespace"] == host["ns"]
        built = {int(ino) for ino in host["built"]["namespaces"]}
        reported = {ns["inode"] for ns in facts["namespaces"]}
        assert reported == built, host["name"]


def test_healthy_host_keeps_containers_out_of_host_peer_groups(fleet_lab, ssh_audit):
    host = host_of(fleet_lab, "healthy")
    facts = facts_of(ssh_audit[0], host["name"])
    built = host["built"]["scenarios"]["healthy"]["containers"]
    summary = facts["summary"]
    assert summary["container_namespaces"] == len(built) == 6
    assert summary["container_namespaces_in_host_peer_groups"] == 0
    assert summary["container_namespaces_slave_to_host"] == 0
    assert summary["largest_peer_group"]["members"] == 1
    found = {(ns["inode"], ns["owner"]["runtime"], ns["owner"]["container_id"]) for ns in containers(facts)}
    assert found == {(c["ns"], "containerd", c["id"]) for c in built}


def test_shared_storm_host_has_a_peer_group_spanning_every_container(fleet_lab, ssh_audit):
    host = host_of(fleet_lab, "shared-storm")
    facts = facts_of(ssh_audit[0], host["name"])
    built = host["built"]["scenarios"]["shared-storm"]["containers"]
    summary = facts["summary"]
    assert summary["container_namespaces"] == len(built) == 24
    assert summary["container_namespaces_in_host_peer_groups"] == 24
    assert summary["largest_peer_group"]["members"] >= len(built)
    # every host mount's group has the host copy plus one per container
    assert summary["largest_peer_group"]["members"] == len(built) + 1
    assert summary["largest_peer_group"]["namespaces"] == len(built) + 1
    assert {ns["owner"]["runtime"] for ns in containers(facts)} == {"docker"}


def test_slave_readers_host_has_the_highest_predicted_read_cost(fleet_lab, ssh_audit):
    host = host_of(fleet_lab, "slave-readers")
    facts = facts_of(ssh_audit[0], host["name"])
    readers = {s["ns"]: s["unit"] for s in host["built"]["scenarios"]["slave-readers"]["services"]}
    top = facts["summary"]["max_predicted_read_cost"]
    assert top["namespace"] in readers
    assert top["owner"] == "service"
    # Independent prediction from the host's own table: a reader copied every host mount as a
    # slave, and each slave costs the size of its master's peer group (host copies only).
    sizes = collections.Counter()
    for line in host_mountinfo(host):
        match = re.search(r" shared:(\d+)", line)
        if match:
            sizes[match.group(1)] += 1
    expected = sum(size * size for size in sizes.values())
    assert top["value"] == expected
    namespaces = by_inode(facts)
    for inode, unit in readers.items():
        assert (namespaces[inode]["owner"]["kind"], namespaces[inode]["owner"]["unit"]) == ("service", unit)
        assert namespaces[inode]["predicted_read_cost"] == expected
    others = [
        facts_of(ssh_audit[0], other["name"])["summary"]["max_predicted_read_cost"]["value"]
        for other in fleet_lab.state["hosts"]
        if other is not host
    ]
    assert top["value"] > max(others)


def test_pinned_namespace_is_reported(fleet_lab, ssh_audit):
    host = host_of(fleet_lab, "pinned-ns")
    facts = facts_of(ssh_audit[0], host["name"])
    pinned = host["built"]["scenarios"]["pinned-ns"]["pinned"]
    assert facts["summary"]["pinned_namespaces"] == len(pinned) == 1
    reported = {ns["inode"]: ns for ns in facts["namespaces"] if ns["owner"]["kind"] == "pinned"}
    assert set(reported) == {p["ns"] for p in pinned}
    # no process is left in it: only the nsfs bind mount in the host namespace holds it
    record = reported[pinned[0]["ns"]]
    assert record["processes"] == 0
    assert [(p["namespace"], p["mount_point"]) for p in record["pinned_by"]] == [
        (host["ns"], pinned[0]["path"])
    ]


def test_kubelet_and_docker_root_host(fleet_lab, ssh_audit):
    host = host_of(fleet_lab, "kubelet")
    facts = facts_of(ssh_audit[0], host["name"])
    kube = host["built"]["scenarios"]["kubelet"]["containers"]
    docker = host["built"]["scenarios"]["docker-root"]["containers"]
    summary = facts["summary"]
    assert summary["container_namespaces"] == len(kube) + len(docker) == 7
    # Only the Bidirectional pod shares a host peer group; HostToContainer pods and Docker's
    # rslave containers receive host events as slaves.
    assert summary["container_namespaces_in_host_peer_groups"] == 1
    assert summary["container_namespaces_slave_to_host"] == 6
    runtimes = collections.Counter(ns["owner"]["runtime"] for ns in containers(facts))
    assert runtimes == {"containerd": 3, "docker": 4}
    shared_roots = {s["mount_point"] for s in summary["host_shared_subtrees"]}
    assert "/" in shared_roots


def test_runc_host_reports_real_runc_containers(fleet_lab, ssh_audit):
    host = host_of(fleet_lab, "runc")
    facts = facts_of(ssh_audit[0], host["name"])
    built = host["built"]["scenarios"]["runc"]["containers"]
    summary = facts["summary"]
    assert summary["container_namespaces"] == 2
    assert summary["container_namespaces_in_host_peer_groups"] == 1  # rootfsPropagation shared
    assert summary["container_namespaces_slave_to_host"] == 1  # rslave
    found = {(ns["inode"], ns["owner"]["runtime"], ns["owner"]["container_id"]) for ns in containers(facts)}
    assert found == {(c["ns"], "runc", c["id"]) for c in built}


def test_audit_over_paramiko(fleet_lab, tmp_path):
    """ansible-core 2.19 still ships paramiko_ssh (deprecated); it must give the same facts."""
    report_dir = str(tmp_path)
    names = [host_of(fleet_lab, s)["name"] for s in ("healthy", "shared-storm", "pinned-ns")]
    done = fleet_lab.playbook(
        "playbooks/audit.yml",
        "-e",
        "audit_report_dir=%s" % report_dir,
        "-e",
        "target=%s" % ":".join(names),
        transport="paramiko",
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    # ansible-core 2.19 says so itself: paramiko_ssh goes away in 2.21 (use ansible.builtin.ssh)
    assert "The paramiko connection plugin is deprecated" in " ".join((done.stdout + done.stderr).split())
    for name in names:
        facts = facts_of(report_dir, name)
        assert facts["summary"]["host_namespace"] == fleet_lab.host(name)["ns"]
    healthy, storm, pinned = (facts_of(report_dir, n)["summary"] for n in names)
    assert healthy["container_namespaces"] == 6 and healthy["container_namespaces_in_host_peer_groups"] == 0
    assert storm["container_namespaces_in_host_peer_groups"] == 24
    assert pinned["pinned_namespaces"] == 1
    # the paramiko run must not have touched the machine's own known_hosts
    assert os.path.exists(os.path.join(fleet_lab.path, "home", ".ssh", "known_hosts"))


def test_unreachable_host_fails_alone_and_the_report_names_it(lab_factory, tmp_path):
    lab = lab_factory(["healthy:2", "shared-storm:3", "healthy:1"])
    victim = lab.names[1]
    report_dir = str(tmp_path)
    env = lab.env()
    env["PYTHONUNBUFFERED"] = "1"
    argv = [
        os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
        "-i",
        lab.inventory,
        "playbooks/audit.yml",
        "-e",
        "audit_report_dir=%s" % report_dir,
    ]
    # stderr (warnings, deprecations) goes to its own file: merged into the pipe, its writes can
    # land between the parts of a stdout record and break the parsing below.
    stderr = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 - closed after the run
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("PLAY ["):
                # the run has started and resolved its hosts: now the victim's sshd dies
                lab.kill_host(victim)
                break
        lines += proc.stdout.readlines()
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        stderr.close()
    output = "".join(lines)
    output_all = output + "\n--- stderr ---\n" + (tmp_path / "stderr.txt").read_text()
    assert rc == 4, output_all  # ansible-playbook: some hosts unreachable
    recap = dict(re.findall(r"^(lab-\d+)\s+: (ok=\d+ .*)$", output, re.M))
    assert "unreachable=1" in recap[victim]
    for name in lab.names:
        if name != victim:
            assert "unreachable=0" in recap[name] and "failed=0" in recap[name], recap
            assert os.path.exists(os.path.join(report_dir, name + ".json"))
    assert not os.path.exists(os.path.join(report_dir, victim + ".json"))
    marker = "fatal: [%s]: UNREACHABLE! =>" % victim
    assert marker in output, output_all
    # The record is JSON after the marker, on one line or pretty-printed over several.
    record, _end = json.JSONDecoder().raw_decode(output[output.index(marker) + len(marker) :].lstrip())
    message = record["msg"]
    assert "Connection refused" in message and str(lab.host(victim)["port"]) in message
    with open(os.path.join(report_dir, "summary.txt"), encoding="utf-8") as handle:
        summary = handle.read()
    assert "2 of 3 hosts audited" in summary
    assert "MISSING (unreachable or failed, no report): %s" % victim in summary

"""Collector behaviour on captured proc trees (offline analysis) and owner attribution."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _namespaces
from ansible_collections.mountops.fleet.plugins.module_utils._namespaces import (
    CollectorError,
    classify_owner,
    cgroup_path,
    collect,
)
from ansible_collections.mountops.fleet.plugins.module_utils._propagation import analyse

HOST_TABLE = b"1 0 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n2 1 0:5 / /proc rw - proc proc rw\n"
PEER_TABLE = b"10 0 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n"
SLAVE_TABLE = b"20 0 8:1 / / rw master:1 - ext4 /dev/sda1 rw\n"


def make_proc(root, processes):
    """processes: {pid: (namespace name, mountinfo bytes or None, cgroup, comm)}.

    A captured tree keeps one regular file per namespace, hard-linked as each pid's ns/mnt, so
    pids of one namespace share an inode exactly as they do under nsfs.
    """
    ns_dir = root / ".ns"
    ns_dir.mkdir(parents=True)
    for pid, (ns, table, cgroup, comm) in processes.items():
        target = ns_dir / ns
        if not target.exists():
            target.write_text(ns)
        pid_dir = root / str(pid)
        (pid_dir / "ns").mkdir(parents=True)
        os.link(target, pid_dir / "ns" / "mnt")
        if table is not None:
            (pid_dir / "mountinfo").write_bytes(table)
        (pid_dir / "cgroup").write_text("0::%s\n" % cgroup)
        (pid_dir / "comm").write_text(comm + "\n")
    (root / "sys/fs").mkdir(parents=True)
    (root / "sys/fs/mount-max").write_text("1000\n")
    return str(root)


@pytest.fixture
def proc(tmp_path):
    return make_proc(
        tmp_path / "proc",
        {
            1: ("host", HOST_TABLE, "/init.scope", "systemd"),
            50: ("host", HOST_TABLE, "/system.slice/sshd.service", "sshd"),
            100: ("ctr", PEER_TABLE, "/system.slice/docker-" + "a" * 64 + ".scope", "nginx"),
            101: ("ctr", PEER_TABLE, "/system.slice/docker-" + "a" * 64 + ".scope", "worker"),
            200: ("svc", SLAVE_TABLE, "/system.slice/systemd-udevd.service", "systemd-udevd"),
            300: ("gone", None, "/", "ghost"),  # listed, but its mountinfo vanished: skipped
        },
    )


def test_captured_tree_is_analysed_offline(proc):
    collection = collect(proc_root=proc, run_root="/nonexistent", backend="mountinfo")
    facts = analyse(collection, mount_max=1000)
    kinds = [ns["owner"]["kind"] for ns in facts["namespaces"]]
    assert kinds == ["host", "container", "service"]
    container = facts["namespaces"][1]
    assert container["owner"]["runtime"] == "docker" and container["processes"] == 2
    assert facts["namespaces"][2]["owner"]["unit"] == "systemd-udevd.service"
    assert facts["namespaces"][2]["predicted_read_cost"] == 2  # one slave mount, ring of host + container
    assert facts["summary"]["container_namespaces_in_host_peer_groups"] == 1
    assert facts["collection"]["namespaces_skipped"] == 1
    assert facts["summary"]["min_mount_headroom"] == {
        "value": 998,
        "namespace": facts["namespaces"][0]["inode"],
    }


def test_time_budget_stops_after_host(proc):
    ticks = iter(range(0, 1000, 5))  # each clock() call advances 5 ms

    collection = collect(
        proc_root=proc, backend="mountinfo", time_budget_ms=4, clock=lambda: next(ticks) / 1000.0
    )
    assert collection.partial and collection.partial_reason == "time_budget_ms"
    assert [ns.owner.kind for ns in collection.namespaces] == ["host"]
    assert collection.not_read == 3
    facts = analyse(collection)
    assert facts["collection"]["covered"] == [collection.namespaces[0].inode]


def test_max_namespaces(proc):
    collection = collect(proc_root=proc, backend="mountinfo", max_namespaces=2)
    assert collection.partial_reason == "max_namespaces"
    assert len(collection.namespaces) == 2 and collection.not_read == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"proc_root": "/nonexistent/proc"}, "does not exist"),
        ({"backend": "bogus"}, "unknown backend"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(CollectorError, match=message):
        collect(**kwargs)


def test_empty_proc_root(tmp_path):
    with pytest.raises(CollectorError, match="no process directories"):
        collect(proc_root=str(tmp_path), backend="mountinfo")


def test_statmount_on_a_captured_tree_fails_per_namespace(proc):
    # Captured ns/mnt files are not nsfs: each read fails (ENOTTY from NS_GET_MNTNS_ID) and is
    # reported in failures, never raised.
    collection = collect(proc_root=proc, backend="statmount")
    assert collection.backend == "statmount"
    assert len(collection.failed) == 4 and collection.namespaces == []
    assert all("NS_GET_MNTNS_ID" in f["error"] for f in collection.failed)


def test_malformed_mountinfo_is_a_failure_entry(tmp_path):
    proc = make_proc(
        tmp_path / "proc",
        {1: ("host", HOST_TABLE, "/", "init"), 9: ("bad", b"garbage line\n", "/", "x")},
    )
    collection = collect(proc_root=proc, backend="mountinfo")
    assert [f["error"] for f in collection.failed] == [
        "%s/9/mountinfo line 1: no ' - ' separator after the six leading fields" % proc
    ]


@pytest.mark.parametrize(
    "cgroup, expected",
    [
        ("/system.slice/docker-" + "b" * 64 + ".scope", ("container", "docker", "b" * 64, None)),
        ("/docker/" + "c" * 64, ("container", "docker", "c" * 64, None)),
        (
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/cri-containerd-"
            + "d" * 64
            + ".scope",
            ("container", "containerd", "d" * 64, None),
        ),
        (
            "/kubepods.slice/kubepods-pod3.slice/crio-" + "e" * 64 + ".scope",
            ("container", "cri-o", "e" * 64, None),
        ),
        (
            "/kubepods.slice/kubepods-pod3.slice/crio-conmon-" + "e" * 64 + ".scope",
            ("other", None, None, None),
        ),
        ("/machine.slice/libpod-" + "f" * 64 + ".scope/container", ("container", "podman", "f" * 64, None)),
        ("/kubepods/besteffort/pod0a1b-22/" + "1" * 64, ("container", "kubernetes", "1" * 64, None)),
        ("/k8s.io/" + "2" * 64, ("container", "containerd", "2" * 64, None)),
        ("/system.slice/systemd-logind.service", ("service", None, None, "systemd-logind.service")),
        ("/system.slice/foo.service/payload", ("service", None, None, "foo.service")),
        ("/user.slice/user-0.slice/session-1.scope", ("other", None, None, None)),
        (None, ("other", None, None, None)),
        ("/lxc.payload.web01", ("container", "lxc", "web01", None)),
        ("/lxc.payload.web01/system.slice/cron.service", ("container", "lxc", "web01", None)),
        ("/lxc/db", ("container", "lxc", "db", None)),
        (
            "/machine.slice/machine-build\\x2d7.scope/payload",
            ("container", "systemd-nspawn", "build-7", None),
        ),
        (
            "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope",
            ("container", "systemd-nspawn", "qemu-1-vm", None),
        ),
        ("/machine.slice/systemd-machined.service", ("service", None, None, "systemd-machined.service")),
    ],
)
def test_classify_owner(cgroup, expected):
    owner = classify_owner(cgroup, "comm", False)
    assert (owner.kind, owner.runtime, owner.container_id, owner.unit) == expected


@pytest.mark.parametrize(
    "comm, expected",
    [
        ("runc:[2:INIT]", ("container", "runc")),
        ("runc:[1:CHILD]", ("container", "runc")),
        ("crun", ("container", "crun")),
        ("runc", ("service", None)),  # the runc CLI itself is not a container
        ("sleep", ("service", None)),
        (None, ("service", None)),
    ],
)
def test_comm_names_a_container_runtime_the_cgroup_does_not(comm, expected):
    owner = classify_owner("/system.slice/containerd.service", comm, False)
    assert (owner.kind, owner.runtime) == expected
    assert owner.container_id is None


def test_cgroup_wins_over_comm_when_it_names_the_container():
    owner = classify_owner("/system.slice/docker-" + "b" * 64 + ".scope", "runc:[2:INIT]", False)
    assert (owner.runtime, owner.container_id) == ("docker", "b" * 64)


def test_runc_state_names_plain_containers_but_cgroup_names_the_engine():
    assert classify_owner("/mine", "sh", False, ("runc", "web")).to_dict() == {
        "kind": "container",
        "runtime": "runc",
        "container_id": "web",
        "unit": None,
    }
    # runc's state beats the generic cgroupfs /<word>/<hex> shape (a plain runc cgroupsPath)...
    assert classify_owner("/runc/" + "e" * 64, "sh", False, ("runc", "web")).runtime == "runc"
    assert classify_owner("/runc/" + "e" * 64, "sh", False).runtime == "containerd"
    # ...but an engine-specific cgroup name says which engine started it.
    docker = classify_owner("/docker/" + "a" * 64, "sh", False, ("runc", "x"))
    assert docker.runtime == "docker"
    assert classify_owner("/docker/" + "a" * 64, "sh", True).kind == "host"


def test_cgroup_path_v1_and_v2():
    assert cgroup_path("0::/system.slice/a.service\n") == "/system.slice/a.service"
    v1 = "12:pids:/docker/abc\n11:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n"
    assert cgroup_path(v1) == "/"
    assert cgroup_path("12:pids:/docker/abc\n") == "/docker/abc"


def test_runc_state_dirs(tmp_path):
    state = tmp_path / "runc" / "web"
    state.mkdir(parents=True)
    (state / "state.json").write_text('{"id": "web", "init_process_pid": 4242}')
    moby = tmp_path / "docker/runtime-runc/moby/abc"
    moby.mkdir(parents=True)
    (moby / "state.json").write_text('{"id": "abc", "init_process_pid": 77}')
    (tmp_path / "runc" / "broken").mkdir()
    (tmp_path / "runc" / "broken" / "state.json").write_text("{not json")
    assert _namespaces.runc_init_pids(str(tmp_path)) == {4242: ("runc", "web"), 77: ("docker", "abc")}

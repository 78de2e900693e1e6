"""runtime_facts collector and module on captured host trees (etc/run/usr from fixtures, proc built here)."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _gather, _runtime, _runtime_toml
from ansible_collections.mountops.fleet.plugins.modules import runtime_facts

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTS = os.path.join(HERE, "fixtures", "runtime", "hosts")
VERSIONS = os.path.join(HERE, "fixtures", "runtime", "versions")

HOST_NS = 4026531841


@pytest.fixture(autouse=True, params=["tomllib", "subset"])
def toml_backend(request, monkeypatch):
    """Run every collector test with tomllib and with the subset parser Python < 3.11 targets use."""
    if request.param == "subset":
        monkeypatch.setattr(_runtime_toml, "_tomllib", None)
    return request.param


def version_text(name):
    with open(os.path.join(VERSIONS, name + ".txt")) as handle:
        return handle.read()


def add_process(proc, pid, comm, argv=(), mnt_ns=None, starttime=100):
    base = proc / str(pid)
    (base / "ns").mkdir(parents=True)
    (base / "comm").write_text(comm + "\n")
    (base / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))
    # Fields 3..52 of /proc/PID/stat; field 22 (index 19 after the comm) is the start time.
    rest = ["S", "1"] + ["0"] * 17 + [str(starttime)] + ["0"] * 30
    (base / "stat").write_text("%d (%s) %s\n" % (pid, comm, " ".join(rest)))
    if mnt_ns is not None:
        os.symlink("mnt:[%d]" % mnt_ns, str(base / "ns" / "mnt"))


def build_proc(tmp_path, release, mountinfo, processes, sysctls=(100000, 63541)):
    proc = tmp_path / "proc"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/fs").mkdir(parents=True)
    (proc / "sys/user").mkdir(parents=True)
    (proc / "sys/kernel/osrelease").write_text(release + "\n")
    (proc / "sys/fs/mount-max").write_text("%d\n" % sysctls[0])
    (proc / "sys/user/max_mnt_namespaces").write_text("%d\n" % sysctls[1])
    add_process(proc, 1, "systemd", ["/sbin/init"], HOST_NS)
    (proc / "1" / "mountinfo").write_text(mountinfo)
    for args in processes:
        add_process(proc, *args)
    return str(proc)


def host_tree(tmp_path, name):
    """Copy a fixture host (etc, run, usr, lib) so that tests may add to it."""
    root = tmp_path / "host"
    shutil.copytree(os.path.join(HOSTS, name), str(root))
    for sub in ("etc", "run"):
        (root / sub).mkdir(exist_ok=True)
    (tmp_path / "sys").mkdir()
    return root


K8S_MOUNTINFO = """\
21 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
22 21 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 21 254:0 /var/lib/kubelet /var/lib/kubelet rw,relatime shared:5 - ext4 /dev/vda rw
31 30 0:40 / /var/lib/kubelet/pods/p1/volumes/kubernetes.io~projected/kube-api-access rw,relatime shared:6 - tmpfs tmpfs rw
40 21 0:50 / /var/lib/containerd/tmpmounts/ovl-idmapped2840123 rw,relatime shared:7 - overlay overlay rw,lowerdir=/a
41 21 0:51 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/a1userns/rootfs rw,relatime shared:8 - overlay overlay rw
"""


def collect(tmp_path, name, release, mountinfo, processes, versions=None, **kwargs):
    root = host_tree(tmp_path, name)
    proc = build_proc(tmp_path, release, mountinfo, processes)
    collector = _runtime.Collector(
        roots={
            "etc_root": str(root / "etc"),
            "run_root": str(root / "run"),
            "proc_root": proc,
            "sys_root": str(tmp_path / "sys"),
        },
        run_version=None,
        version_outputs=versions or {},
        **kwargs,
    )
    return collector.collect(), root


@pytest.fixture
def k8s(tmp_path):
    facts, root = collect(
        tmp_path,
        "k8s-containerd",
        "5.15.0-105-generic",
        K8S_MOUNTINFO,
        [
            (800, "containerd", ["/usr/bin/containerd"]),
            (
                900,
                "kubelet",
                ["/usr/bin/kubelet", "--root-dir=/var/lib/kubelet", "--config", "/var/lib/kubelet/c.yaml"],
            ),
            (4242, "nginx", [], 4026532601),
            (4243, "pause", [], 4026532602),
            (4244, "csi-node", [], 4026532603),
        ],
        versions={"containerd": version_text("containerd-2.0.5"), "kubelet": version_text("kubelet-1.31.2")},
    )
    return facts, root


def by_id(facts):
    return {c["id"]: c for c in facts["containers"]}


def test_k8s_engines(k8s):
    facts, root = k8s
    engines = facts["engines"]
    assert set(engines) == {"containerd", "kubelet"}, "missing engines are absent"
    ctrd = engines["containerd"]
    assert ctrd["running"] and ctrd["pids"] == [800]
    assert ctrd["version"] == "2.0.5" and ctrd["version_info"]["minor"] == 0
    settings = ctrd["settings"]
    assert settings["config_version"] == 3
    assert settings["cri_plugin"] == "io.containerd.cri.v1.runtime"
    # containerd 2.0.5 merges the drop-in key by key: its default wins, runc keeps its options.
    assert (settings["merge_strategy"], settings["merge_strategy_basis"]) == ("deep", "containerd 2.0.5")
    assert settings["default_runtime"] == "crun"
    assert settings["default_runtime_source"].endswith("conf.d/20-crun.toml")
    assert set(settings["runtimes"]) == {"crun", "runc"}
    assert settings["runtimes"]["crun"]["binary_name"] == "/usr/bin/crun"
    assert settings["runtimes"]["runc"]["binary_name"] == "/usr/bin/runc"
    assert settings["snapshotter"] == "overlayfs"
    assert [os.path.basename(p) for p in settings["imports"]] == ["20-crun.toml"]
    assert settings["unimported_dropins"] == []
    assert [f["loaded"] for f in ctrd["config_files"]] == [True, True]
    assert ctrd["user_namespaces"] == {
        "containers": 3,
        "with_user_namespace": 1,
        "with_idmapped_mounts": 0,
        "idmapped_layers": True,
        "idmapped_layers_basis": "1 ovl-idmapped tmpmounts in the host mount table",
    }
    assert engines["kubelet"]["flags"] == {
        "root_dir": "/var/lib/kubelet",
        "config": "/var/lib/kubelet/c.yaml",
    }
    assert facts["problems"] == []


def test_containerd_1x_replaces_plugin_sections(tmp_path):
    facts, _root = collect(
        tmp_path,
        "k8s-containerd",
        "6.8.0",
        "21 1 254:0 / / rw - ext4 /dev/vda rw\n",
        [],
        versions={"containerd": version_text("containerd-1.7.27")},
    )
    settings = facts["engines"]["containerd"]["settings"]
    assert settings["merge_strategy"] == "replace"
    assert settings["runtimes"]["runc"]["binary_name"] is None, "the drop-in's section replaced config.toml's"
    assert settings["snapshotter"] == "overlayfs"


@pytest.mark.parametrize(
    "version, userns, tmpmounts, expected",
    [
        ("2.1.4", 2, 0, True),
        ("1.7.27", 2, 0, False),
        (None, 2, 0, None),
        ("2.1.4", 0, 0, False),
        (None, 0, 3, True),
    ],
)
def test_containerd_idmapped_layers(version, userns, tmpmounts, expected):
    assert _runtime._containerd_idmapped_layers(version, userns, tmpmounts)[0] is expected


def test_k8s_containers_link_to_namespaces(k8s):
    facts, _root = k8s
    containers = by_id(facts)
    assert set(containers) == {"a1userns", "b2plain", "c3csi", "d4gone"}
    userns = containers["a1userns"]
    assert userns["engine"] == "containerd" and userns["containerd_namespace"] == "k8s.io"
    assert userns["runtime"] == "runc"
    assert userns["pid"] == 4242 and userns["alive"]
    assert userns["mnt_ns"] == 4026532601 and userns["mnt_ns_key"] == "mnt:[4026532601]"
    assert userns["in_host_mnt_ns"] is False
    assert userns["rootfs_propagation"] == {
        "configured": None,
        "effective": "rslave",
        "runtime_default": "rslave",
        "default_applied": True,
    }
    assert userns["user_namespace"]["enabled"]
    assert userns["user_namespace"]["uid_mappings"] == [{"container_id": 0, "host_id": 65536, "size": 65536}]
    assert userns["pod"] == {"name": "web-7d4b9", "namespace": "shop", "container": "nginx"}
    assert containers["b2plain"]["rootfs_propagation"]["effective"] == "rslave"
    assert containers["b2plain"]["rootfs_propagation"]["default_applied"] is False
    csi = containers["c3csi"]
    assert csi["rootfs_propagation"]["effective"] == "rshared"
    assert csi["shared_mounts"] == ["/var/lib/kubelet"]
    gone = containers["d4gone"]
    assert gone["alive"] is False and gone["mnt_ns"] is None
    assert facts["host_mnt_ns"] == HOST_NS and facts["host_mnt_ns_source"] == "pid 1"


def test_k8s_kubelet_kernel_and_mounts(k8s):
    facts, _root = k8s
    kubelet = facts["kubelet"]
    assert kubelet["root_dir"] == "/var/lib/kubelet" and kubelet["root_dir_source"] == "command line"
    assert kubelet["is_mount_point"] and kubelet["propagation"] == "shared" and kubelet["peer_group"] == 5
    assert kubelet["submounts"] == 1 and kubelet["rshared"] is True
    assert facts["host_mounts"]["ovl_idmapped_tmpmounts"] == 1
    kernel = facts["kernel"]
    assert kernel["release"] == "5.15.0-105-generic"
    assert kernel["version"]["major"] == 5
    features = kernel["features"]
    assert features["statmount"] == {
        "available": False,
        "method": "kernel version",
        "detail": "statmount(2) merged in Linux 6.8",
    }
    assert features["kprobes"]["available"] is False
    assert features["tracepoints_syscalls"]["available"] is None
    assert kernel["sysctls"] == {"fs.mount-max": 100000, "user.max_mnt_namespaces": 63541}
    assert facts["services"]["kubelet.service"]["drop_ins"][0].endswith("kubelet.service.d/10-kubeadm.conf")
    assert facts["services"]["containerd.service"]["mount_flags"] is None


def test_k8s_advisories(k8s):
    facts, _root = k8s
    ids = [a["id"] for a in facts["advisories"]]
    assert ids == ["MO-RT-001", "MO-RT-004", "MO-RT-002", "MO-RT-005", "MO-RT-006", "MO-RT-007"]
    storm = facts["advisories"][0]
    assert any("a1userns" in line for line in storm["evidence"])
    assert any("2.0.5" in line for line in storm["evidence"])
    rslave = next(a for a in facts["advisories"] if a["id"] == "MO-RT-006")
    assert len(rslave["evidence"]) == 1 and "a1userns" in rslave["evidence"][0], (
        "dead containers do not count"
    )


def test_daemons_in_other_mount_namespaces_are_not_the_hosts(tmp_path):
    facts, _root = collect(
        tmp_path,
        "k8s-containerd",
        "6.8.0",
        K8S_MOUNTINFO,
        [
            (800, "containerd", ["/usr/bin/containerd"], HOST_NS),
            (801, "containerd", ["/usr/bin/containerd", "--config", "/kind/config.toml"], 4026533000),
            (900, "kubelet", ["/usr/bin/kubelet", "--root-dir=/kind/kubelet"], 4026533000),
        ],
    )
    ctrd = facts["engines"]["containerd"]
    assert ctrd["pids"] == [800] and ctrd["pids_in_other_mnt_ns"] == 1
    assert ctrd["flags"] == {}
    # A kubelet that only runs inside a kind node is not this host's kubelet.
    assert "kubelet" not in facts["engines"] and facts["kubelet"] is None


def test_kubelet_root_not_shared(tmp_path):
    mountinfo = "21 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    facts, _root = collect(
        tmp_path, "k8s-containerd", "6.8.0", mountinfo, [(900, "kubelet", ["/usr/bin/kubelet"])]
    )
    kubelet = facts["kubelet"]
    assert kubelet["root_dir_source"] == "default"
    assert kubelet["is_mount_point"] is False and kubelet["mount_point"] == "/"
    assert kubelet["propagation"] == "private" and kubelet["rshared"] is False


def test_docker_host(tmp_path):
    facts, root = collect(
        tmp_path,
        "docker-mountflags",
        "6.12.1",
        "21 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "22 21 254:1 / /srv/docker rw,relatime shared:9 - xfs /dev/vdb rw\n",
        [
            (700, "dockerd", ["/usr/bin/dockerd", "-H", "fd://", "--exec-root=/run/docker"]),
            (5000, "sh", [], 4026532700, 777),
            (5001, "httpd", [], 4026532701),
        ],
        versions={"docker": version_text("docker-28.3.3")},
    )
    docker = facts["engines"]["docker"]
    assert docker["version"] == "28.3.3" and docker["flags"]["exec_root"] == "/run/docker"
    settings = docker["settings"]
    assert settings["data_root"] == "/srv/docker" and settings["default_runtime"] == "runc"
    assert settings["runtimes"]["runsc"]["args"] == ["--platform=systrap"]
    assert settings["containerd_snapshotter"] is True
    data_root = settings["data_root_mount"]
    assert data_root["mount_point"] == "/srv/docker" and data_root["is_mount_point"]
    assert data_root["propagation"] == "shared" and data_root["rshared"] is True
    service = facts["services"]["docker.service"]
    assert service["unit_file"].endswith("lib/systemd/system/docker.service")
    assert service["mount_flags"] == "slave"
    assert service["settings"]["MountFlags"]["source"].endswith("10-mountflags.conf")
    assert service["settings"]["MountFlags"]["line"] == 3
    assert service["private_mounts"] == "no"
    assert service["own_mount_namespace"] == ["PrivateTmp"]
    assert "docker.socket" in facts["services"]
    containers = by_id(facts)
    legacy = containers["e5legacy"]
    assert legacy["engine"] == "docker" and legacy["config_source"] == "runc state.json"
    assert legacy["rootfs_propagation"]["configured"] == "rshared"
    assert legacy["mounts"][1]["propagation"] == "rslave"
    assert legacy["alive"] and legacy["mnt_ns"] == 4026532700
    web = containers["f6web"]
    assert web["engine"] == "docker" and web["containerd_namespace"] == "moby"
    assert web["shared_mounts"] == ["/srv/www"]
    ids = [a["id"] for a in facts["advisories"]]
    assert ids == ["MO-RT-003", "MO-RT-004", "MO-RT-005", "MO-RT-006"]
    mountflags = facts["advisories"][0]
    assert "docker.service: MountFlags=slave" in mountflags["evidence"][0]
    assert "docker 28.3.3 is in >=18.09.0" in mountflags["evidence"][1]


def test_stale_runc_state_with_reused_pid_is_not_alive(tmp_path):
    facts, _root = collect(
        tmp_path,
        "docker-mountflags",
        "6.12.1",
        "21 1 254:0 / / rw - ext4 /dev/vda rw\n",
        [(5000, "bash", [], 4026532700, 999)],
    )
    legacy = by_id(facts)["e5legacy"]
    assert legacy["pid"] == 5000 and legacy["alive"] is False and legacy["mnt_ns"] is None


def test_crio_podman_host(tmp_path):
    facts, root = collect(
        tmp_path,
        "crio-podman",
        "6.1.0-28-amd64",
        "21 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n",
        [
            (610, "crio", ["/usr/bin/crio"]),
            (6100, "app", [], 4026532800),
            (6200, "sleep", [], 4026532801, 4321),
        ],
        versions={"crio": version_text("crio-1.32.4"), "podman": version_text("podman-5.4.2")},
    )
    crio = facts["engines"]["crio"]
    assert crio["version"] == "1.32.4"
    assert crio["settings"]["default_runtime"] == "crun"
    assert crio["settings"]["sources"]["default_runtime"].endswith("crio.conf.d/10-crun.conf")
    assert crio["settings"]["runtimes"]["runc"]["runtime_root"] == "/run/runc"
    assert crio["settings"]["runtimes"]["crun"]["allowed_annotations"][0] == "io.kubernetes.cri-o.userns-mode"
    assert crio["settings"]["storage_runroot"] == "/run/containers/storage"
    assert len(crio["config_files"]) == 3
    podman = facts["engines"]["podman"]
    assert podman["settings"]["runtime"] == "runc"
    assert podman["settings"]["sources"]["runtime"].endswith("etc/containers/containers.conf")
    assert podman["settings"]["userns"] == "auto"
    assert podman["settings"]["runtimes"]["crun"] == ["/usr/bin/crun", "/usr/local/bin/crun"]
    containers = by_id(facts)
    crio_ctr = containers["g7crio"]
    assert crio_ctr["engine"] == "crio" and crio_ctr["runtime"] == "crun"
    assert crio_ctr["rootfs_propagation"]["effective"] == "rprivate"
    assert crio_ctr["pod"] == {"name": "api-0", "namespace": "prod", "container": "api"}
    assert crio_ctr["user_namespace"]["enabled"] and crio_ctr["mnt_ns"] == 4026532800
    pod_ctr = containers["h8podman"]
    assert pod_ctr["engine"] == "podman" and pod_ctr["runtime"] == "runc"
    assert pod_ctr["rootfs_propagation"]["effective"] == "rprivate"
    assert pod_ctr["idmapped_mounts"] == ["/mnt"]
    assert facts["engines"]["podman"]["user_namespaces"]["with_idmapped_mounts"] == 1
    assert [a["id"] for a in facts["advisories"]] == ["MO-RT-007"], "6.1 has no statmount"
    assert facts["problems"] == []


def test_broken_inputs_are_reported_and_the_rest_is_gathered(tmp_path):
    mountinfo = "21 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\nthis is not mountinfo\n"
    facts, root = collect(
        tmp_path,
        "broken",
        "weird-kernel",
        mountinfo,
        [(7001, "sh", [], 4026532900, 1)],
        versions={"containerd": "containerd: command not found\n"},
    )
    problems = {
        (
            os.path.relpath(p["file"], str(root)) if p["file"].startswith(str(root)) else p["file"],
            p["line"],
        ): p
        for p in facts["problems"]
    }
    ctrd = problems[("etc/containerd/config.toml", 5)]
    assert ctrd["component"] == "containerd" and ctrd["message"].startswith("invalid TOML")
    docker = problems[("etc/docker/daemon.json", 4)]
    assert docker["component"] == "docker" and "invalid JSON" in docker["message"]
    assert problems[("etc/crio/crio.conf", 3)]["message"].startswith("invalid TOML")
    assert problems[("etc/containers/containers.conf", 2)]["component"] == "podman"
    unit = "etc/systemd/system/docker.service"
    assert "malformed section header" in problems[(unit, 5)]["message"]
    assert "not an assignment" in problems[(unit, 7)]["message"]
    state = problems[("run/runc/broken1/state.json", 2)]
    assert state["component"] == "runc" and "invalid JSON" in state["message"]
    assert any("mountinfo" in p["file"] and p["line"] == 2 for p in facts["problems"])
    # The rest is still there.
    ctrd_engine = facts["engines"]["containerd"]
    assert ctrd_engine["config_files"][0]["loaded"] is False
    assert ctrd_engine["config_files"][0]["error"].startswith("line 5: invalid TOML")
    assert ctrd_engine["settings"]["default_runtime"] == "runc"
    assert ctrd_engine["version"] is None and ctrd_engine["version_error"] == "no version in --version output"
    assert facts["engines"]["docker"]["settings"]["default_runtime"] == "runc"
    assert facts["services"]["docker.service"]["mount_flags"] == "private"
    ok2 = by_id(facts)["ok2"]
    assert ok2["alive"] and ok2["rootfs_propagation"]["effective"] == "rslave"
    assert ok2["config_source"] == "runc state.json"
    assert facts["kernel"]["version"] is None
    assert facts["kernel"]["features"]["statmount"]["available"] is None
    assert "MO-RT-007" not in [a["id"] for a in facts["advisories"]], "unknown is not 'missing'"


def test_units_masked_and_dropin_only(tmp_path):
    etc = tmp_path / "etc" / "systemd" / "system"
    (etc / "docker.service.d").mkdir(parents=True)
    (etc / "docker.service.d" / "override.conf").write_text("[Service]\nMountFlags=slave\n")
    (etc / "service.d").mkdir()
    (etc / "service.d" / "00-all.conf").write_text("[Service]\nPrivateTmp=yes\n")
    os.symlink("/dev/null", str(etc / "containerd.service"))
    lib = tmp_path / "usr" / "lib" / "systemd" / "system"
    lib.mkdir(parents=True)
    (lib / "containerd.service").write_text("[Service]\nMountFlags=shared\n")
    collector = _runtime.Collector(
        roots={"etc_root": str(tmp_path / "etc"), "run_root": str(tmp_path / "run")}
    )
    services = collector.collect_services()
    assert set(services) == {"docker.service", "containerd.service"}, "type-wide drop-ins alone list nothing"
    docker = services["docker.service"]
    assert docker["unit_file"] is None and docker["mount_flags"] == "slave"
    assert [os.path.basename(p) for p in docker["drop_ins"]] == ["00-all.conf", "override.conf"]
    assert docker["own_mount_namespace"] == ["PrivateTmp"]
    masked = services["containerd.service"]
    assert masked["masked"] is True and masked["mount_flags"] is None, "a masked unit file is not read"


def test_unreadable_proc_root_is_a_warning(tmp_path):
    collector = _runtime.Collector(
        roots={
            "etc_root": str(tmp_path / "etc"),
            "run_root": str(tmp_path / "run"),
            "proc_root": str(tmp_path / "noproc"),
            "sys_root": str(tmp_path / "sys"),
        }
    )
    facts = collector.collect()
    assert facts["engines"] == {} and facts["containers"] == [] and facts["kubelet"] is None
    assert facts["warnings"] and "cannot list" in facts["warnings"][0]
    assert facts["host_mnt_ns"] is None


def test_containerd_unimported_dropins_and_missing_import(tmp_path):
    root = tmp_path / "etc" / "containerd"
    (root / "conf.d").mkdir(parents=True)
    (root / "config.toml").write_text(
        'version = 2\nimports = ["/etc/containerd/extra/*.toml", "missing.toml"]\n'
    )
    (root / "conf.d" / "10-x.toml").write_text("version = 2\n")
    collector = _runtime.Collector(
        roots={
            "etc_root": str(tmp_path / "etc"),
            "run_root": str(tmp_path / "run"),
            "proc_root": str(tmp_path / "p"),
        }
    )
    facts = collector.collect()
    settings = facts["engines"]["containerd"]["settings"]
    assert settings["imports"] == []
    assert [os.path.basename(p) for p in settings["unimported_dropins"]] == ["10-x.toml"]
    assert settings["config_version"] == 2 and settings["cri_plugin"] == "io.containerd.grpc.v1.cri"


def test_extra_runtime_roots(tmp_path):
    state = tmp_path / "myroot" / "job1"
    state.mkdir(parents=True)
    (state / "state.json").write_text(
        '{"id": "job1", "init_process_pid": 0, "config": {"rootPropagation": 278528}}'
    )
    collector = _runtime.Collector(
        roots={
            "etc_root": str(tmp_path / "etc"),
            "run_root": str(tmp_path / "run"),
            "proc_root": str(tmp_path / "p"),
        },
        runtime_roots=[{"path": str(tmp_path / "myroot"), "runtime": "runc", "engine": "batch"}],
    )
    (container,) = collector.collect()["containers"]
    assert container["engine"] == "batch" and container["alive"] is False
    # 278528 = MS_PRIVATE | MS_REC
    assert container["rootfs_propagation"]["configured"] == "rprivate"


@pytest.mark.parametrize(
    "flags, expected",
    [
        (0, None),
        (None, None),
        (1 << 20, "shared"),
        ((1 << 19) | 0x4000, "rslave"),
        ((1 << 17) | 0x4000, "runbindable"),
    ],
)
def test_propagation_from_flags(flags, expected):
    assert _runtime.propagation_from_flags(flags) == expected


@pytest.mark.parametrize(
    "options, expected",
    [
        ([], None),
        (["rbind", "rw"], None),
        (["rbind", "rprivate"], "rprivate"),
        (["shared", "rslave"], "rslave"),
    ],
)
def test_mount_propagation_takes_the_last_word(options, expected):
    assert _runtime.mount_propagation(options) == expected


def test_flags_parsing():
    argv = ["/usr/bin/containerd", "-c", "/etc/c.toml", "--root=/r", "--state", "/s", "--unrelated"]
    assert _runtime._flags(argv, _runtime.ENGINE_FLAGS["containerd"]) == {
        "config": "/etc/c.toml",
        "root": "/r",
        "state": "/s",
    }


def test_host_path_mapping(tmp_path):
    collector = _runtime.Collector(
        roots={"etc_root": "/cap/etc", "run_root": "/cap/run", "proc_root": "/cap/proc"}
    )
    assert collector.host_path("/etc/containerd/config.toml") == "/cap/etc/containerd/config.toml"
    assert collector.host_path("/var/run/docker") == "/cap/run/docker"
    assert collector.host_path("/run") == "/cap/run/"
    assert collector.host_path("/var/lib/kubelet") == "/cap/var/lib/kubelet"
    assert collector.host_path("/proc/1/mountinfo") == "/cap/proc/1/mountinfo"


# ---- the module -----------------------------------------------------------------------------


def test_module_offline(run_module, tmp_path):
    root = host_tree(tmp_path, "docker-mountflags")
    proc = build_proc(tmp_path, "6.12.1", "21 1 254:0 / / rw - ext4 /dev/vda rw\n", [])
    result = run_module(
        runtime_facts.main,
        {
            "etc_root": str(root / "etc"),
            "run_root": str(root / "run"),
            "proc_root": proc,
            "sys_root": str(tmp_path / "sys"),
            "version_outputs": {"docker": version_text("docker-18.06.1-ce")},
        },
        check_mode=True,
    )
    assert result["changed"] is False
    facts = result["ansible_facts"]["mount_runtime"]
    assert facts["engines"]["docker"]["version"] == "18.06.1-ce"
    assert "MO-RT-003" not in [a["id"] for a in facts["advisories"]], "Docker 18.06 predates the breakage"


def test_module_rejects_unknown_version_output_keys(run_module, tmp_path):
    from tests.conftest import ModuleFail

    with pytest.raises(ModuleFail, match="unknown engine"):
        run_module(runtime_facts.main, {"proc_root": str(tmp_path), "version_outputs": {"dockerd": "x"}})
    with pytest.raises(ModuleFail, match="timeout must be"):
        run_module(runtime_facts.main, {"proc_root": str(tmp_path), "timeout": 0})


def test_get_argument_spec():
    spec = runtime_facts.get_argument_spec()
    assert spec["on_timeout"]["choices"] == ["error", "warn", "ignore"]
    assert spec["runtime_roots"]["options"]["runtime"]["choices"] == ["runc", "crun"]


class FakeModule:
    def __init__(self, rc, out="", err="", on_timeout="warn"):
        self.params = {"timeout": 3, "on_timeout": on_timeout}
        self.result = (rc, out, err)
        self.commands = []
        self.warnings = []
        self.failed = None

    def get_bin_path(self, name):
        return "/usr/bin/" + name

    def run_command(self, command, environ_update=None):
        self.commands.append((command, environ_update))
        return self.result

    def warn(self, message):
        self.warnings.append(message)

    def fail_json(self, msg):
        self.failed = msg
        raise SystemExit(1)


def test_version_runner_wraps_timeout_and_sets_locale():
    module = FakeModule(0, "runc version 1.1.5\n")
    assert _gather.version_runner(module, module.params)("runc", "/usr/sbin/runc").startswith("runc version")
    command, env = module.commands[0]
    assert command == ["/usr/bin/timeout", "-k", "2", "3", "/usr/sbin/runc", "--version"]
    assert env == {"LC_ALL": "C"}


@pytest.mark.parametrize("on_timeout", ["warn", "ignore"])
def test_version_runner_timeout_warn_or_ignore(on_timeout):
    module = FakeModule(124, on_timeout=on_timeout)
    with pytest.raises(_gather.VersionTimeout, match="timed out after 3s"):
        _gather.version_runner(module, module.params)("crio", "/usr/bin/crio")
    assert len(module.warnings) == (1 if on_timeout == "warn" else 0)


def test_version_runner_timeout_error():
    module = FakeModule(124, on_timeout="error")
    with pytest.raises(SystemExit):
        _gather.version_runner(module, module.params)("crio", "/usr/bin/crio")
    assert module.failed.startswith("reading the crio version: ")


def test_version_runner_failure_without_output():
    module = FakeModule(127, "", "exec failed")
    with pytest.raises(_gather.VersionTimeout, match="exited 127: exec failed"):
        _gather.version_runner(module, module.params)("runc", "/x/runc")


def test_version_timeout_recorded_in_facts(tmp_path):
    def slow(engine, binary):
        raise _gather.VersionTimeout("%s --version timed out after 1s" % binary)

    bindir = tmp_path / "usr" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "crun").write_text("#!/bin/sh\n")
    (bindir / "crun").chmod(0o755)
    collector = _runtime.Collector(
        roots={
            "etc_root": str(tmp_path / "etc"),
            "run_root": str(tmp_path / "run"),
            "proc_root": str(tmp_path / "p"),
        },
        run_version=slow,
    )
    collector._may_execute = lambda: True
    crun = collector.collect()["engines"]["crun"]
    assert crun["binary"] == "/usr/bin/crun" and crun["binary_source"] == "search"
    assert crun["version"] is None and "timed out" in crun["version_error"]

"""runtime_facts against real runc containers (root).

The test builds a busybox rootfs, a shared tmpfs "volume" (mount --make-rshared) and four
bundles that differ in linux.rootfsPropagation and in the volume's propagation option, starts
them with runc under a private --root, and checks that the facts report each container's
configuration, its pid and its mount namespace, and that the kernel agrees: the container's
view of the volume (from its own mountinfo) is a slave, private or a peer of the host mount as
the configuration says. Everything is torn down even when a step fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.mountops.fleet.plugins.modules import propagation_facts, runtime_facts

pytestmark = pytest.mark.root

RUNC = shutil.which("runc")
BUSYBOX = shutil.which("busybox")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# id: (rootfsPropagation or None, volume propagation option or None, start it?)
CONTAINERS = {
    "mo-default": (None, None, True),
    "mo-private": ("rprivate", None, True),
    "mo-shared": ("rshared", "rshared", True),
    "mo-created": ("rslave", "rslave", False),
}


def _run(*args, check=True):
    return subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=check
    )


def _start(args, log):
    """runc run -d / create: the container keeps its stdio, so never hand it our pipes."""
    with open(log, "ab") as err:
        subprocess.run(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=30, check=True
        )


def _bundle(base, name, rootfs, volume, rootfs_propagation, volume_propagation):
    bundle = os.path.join(base, "bundles", name)
    os.makedirs(bundle)
    _run(RUNC, "spec", "--bundle", bundle)
    with open(os.path.join(bundle, "config.json")) as handle:
        spec = json.load(handle)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sleep", "120"]
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["hostname"] = name
    options = ["rbind"] + ([volume_propagation] if volume_propagation else [])
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": volume, "options": options})
    if rootfs_propagation:
        spec["linux"]["rootfsPropagation"] = rootfs_propagation
    with open(os.path.join(bundle, "config.json"), "w") as handle:
        json.dump(spec, handle)
    return bundle


def _peer_group(mountinfo_path, mount_point):
    """(shared, master) tags of the topmost mount at mount_point in a mountinfo file."""
    found = None
    with open(mountinfo_path) as handle:
        for line in handle:
            fields = line.split()
            if fields[4] != mount_point:
                continue
            tags = fields[6 : fields.index("-")]
            shared = next((int(t[7:]) for t in tags if t.startswith("shared:")), None)
            master = next((int(t[7:]) for t in tags if t.startswith("master:")), None)
            found = (shared, master)
    return found


@pytest.fixture(scope="module")
def lab():
    if not RUNC or not BUSYBOX:
        pytest.skip("runc and busybox-static are needed (scripts/apt-packages.txt)")
    base = tempfile.mkdtemp(prefix="mo-runtime-")
    state = os.path.join(base, "state")
    volume = os.path.join(base, "volume")
    rootfs = os.path.join(base, "rootfs")
    started, mounted = [], []
    try:
        for sub in ("bin", "data", "proc", "dev", "sys"):
            os.makedirs(os.path.join(rootfs, sub))
        shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in ("sh", "sleep"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        os.makedirs(volume)
        _run("mount", "-t", "tmpfs", "-o", "size=1m", "mo-runtime-vol", volume)
        mounted.append(volume)
        _run("mount", "--make-rshared", volume)
        pids = {}
        for name, (rootfs_prop, volume_prop, start) in CONTAINERS.items():
            bundle = _bundle(base, name, rootfs, volume, rootfs_prop, volume_prop)
            verb = "run" if start else "create"
            args = [RUNC, "--root", state, verb] + (["-d"] if start else []) + ["--bundle", bundle, name]
            started.append(name)
            _start(args, os.path.join(base, "runc.log"))
            with open(os.path.join(state, name, "state.json")) as handle:
                pids[name] = json.load(handle)["init_process_pid"]
        yield {"base": base, "state": state, "volume": volume, "pids": pids}
    finally:
        for name in reversed(started):
            _run(RUNC, "--root", state, "kill", name, "KILL", check=False)
            _run(RUNC, "--root", state, "delete", "-f", name, check=False)
        for path in reversed(mounted):
            _run("umount", "-l", path, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def facts(lab):
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    from tests.conftest import ModuleExit

    def _exit(self, **kwargs):
        raise ModuleExit(kwargs)

    original = basic.AnsibleModule.exit_json
    basic.AnsibleModule.exit_json = _exit
    try:
        with patch_module_args({"runtime_roots": [{"path": lab["state"], "engine": "mountops-test"}]}):
            try:
                runtime_facts.main()
            except ModuleExit as done:
                return done.result["ansible_facts"]["mount_runtime"]
    finally:
        basic.AnsibleModule.exit_json = original
    raise AssertionError("runtime_facts did not exit")


def _mine(facts):
    return {c["id"]: c for c in facts["containers"] if c["id"] in CONTAINERS}


def test_every_container_is_found_with_its_pid_and_namespace(lab, facts):
    containers = _mine(facts)
    assert set(containers) == set(CONTAINERS)
    host_ns = os.stat("/proc/self/ns/mnt").st_ino
    for name, record in containers.items():
        pid = lab["pids"][name]
        assert record["runtime"] == "runc" and record["engine"] == "mountops-test"
        assert record["bundle"] == os.path.join(lab["base"], "bundles", name)
        assert record["config_source"] == os.path.join(record["bundle"], "config.json")
        assert record["pid"] == pid and record["alive"] is True
        st = os.stat("/proc/%d/ns/mnt" % pid)
        assert (record["mnt_ns"], record["mnt_ns_dev"]) == (st.st_ino, st.st_dev)
        assert record["mnt_ns_key"] == "mnt:[%d]" % st.st_ino
        assert record["mnt_ns"] != host_ns and record["in_host_mnt_ns"] is False
    assert len({c["mnt_ns"] for c in containers.values()}) == len(CONTAINERS), "one namespace each"


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_rootfs_and_volume_propagation_as_configured(facts, lab, name):
    rootfs_prop, volume_prop, _start = CONTAINERS[name]
    record = _mine(facts)[name]
    assert record["rootfs_propagation"] == {
        "configured": rootfs_prop,
        "effective": rootfs_prop or "rslave",
        "runtime_default": "rslave",
        "default_applied": rootfs_prop is None,
    }
    (data,) = [m for m in record["mounts"] if m["destination"] == "/data"]
    assert data["source"] == lab["volume"] and data["propagation"] == volume_prop
    assert record["shared_mounts"] == (["/data"] if volume_prop == "rshared" else [])


def test_the_kernel_agrees_with_the_reported_propagation(lab):
    """The volume inside each container: slave of, private to, or peer of the host mount."""
    host_group = _peer_group("/proc/self/mountinfo", lab["volume"])[0]
    assert host_group is not None, "the test volume is shared on the host"
    seen = {name: _peer_group("/proc/%d/mountinfo" % pid, "/data") for name, pid in lab["pids"].items()}
    # No propagation option: the rootfs propagation applies. runc's rslave default keeps the
    # container a receiver of the host peer group; rprivate cuts it off.
    assert seen["mo-default"] == (None, host_group)
    assert seen["mo-private"] == (None, None)
    # rshared joins the host peer group: events propagate both ways.
    assert seen["mo-shared"] == (host_group, None)
    assert seen["mo-created"] == (None, host_group)


def test_advisories_for_the_lab(facts):
    by_id = {a["id"]: a for a in facts["advisories"]}
    assert {"MO-RT-004", "MO-RT-005", "MO-RT-006"} <= set(by_id)
    assert [line.split()[2] for line in by_id["MO-RT-004"]["evidence"] if "mo-" in line] == ["mo-shared"]
    assert [line.split()[2] for line in by_id["MO-RT-005"]["evidence"] if "mo-" in line] == ["mo-shared"]
    assert [line.split()[2] for line in by_id["MO-RT-006"]["evidence"] if "mo-" in line] == ["mo-default"]


def test_runc_itself_and_the_kernel(facts):
    runc = facts["engines"]["runc"]
    assert runc["binary"] == RUNC and runc["version"] and runc["version_error"] is None
    expected = _run(RUNC, "--version").stdout.splitlines()[0]
    assert runc["version_output"] == expected
    kernel = facts["kernel"]
    assert kernel["release"] == os.uname().release
    assert kernel["features"]["statmount"]["method"] == "syscall probe"
    assert kernel["sysctls"]["fs.mount-max"] > 0
    assert facts["problems"] == []


def test_containers_join_propagation_facts_namespaces(run_module, lab, facts):
    """The mnt_ns inode is the key of propagation_facts' namespace records."""
    result = run_module(propagation_facts.main, {"time_budget_ms": 20000})
    propagation = result["ansible_facts"]["mount_propagation"]
    by_inode = {ns["inode"]: ns for ns in propagation["namespaces"]}
    covered = set(propagation["collection"].get("covered") or by_inode)
    for name, record in _mine(facts).items():
        if record["mnt_ns"] not in covered:
            pytest.skip("propagation_facts stopped early (budget) before %s" % name)
        assert by_inode[record["mnt_ns"]]["key"] == record["mnt_ns_key"]


def test_module_through_ansible(lab):
    env = dict(
        os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="minimal"
    )
    args = json.dumps({"runtime_roots": [{"path": lab["state"]}], "gather_versions": False})
    proc = subprocess.run(
        [
            os.path.join(REPO, ".venv", "bin", "ansible"),
            "localhost",
            "-m",
            "mountops.fleet.runtime_facts",
            "-a",
            args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The minimal callback prints "localhost | SUCCESS => {" and the result as indented JSON.
    _head, sep, body = proc.stdout.partition("localhost | SUCCESS => ")
    assert sep, proc.stdout[-2000:]
    result = json.loads(body)
    assert result["changed"] is False
    ids = {c["id"] for c in result["ansible_facts"]["mount_runtime"]["containers"]}
    assert set(CONTAINERS) <= ids

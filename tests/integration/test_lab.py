"""Self-tests of the SSH lab: hosts are separate machines, scenarios build what they claim,
host keys are checked, and teardown leaves nothing behind, also after a crash.

These read the hosts' kernel state directly (``/proc/<host pid 1>/...``), independently of the
product, so a fleet test failure can be told apart from a lab failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.lab import nsutil

from tests.lab.lab import (
    REPO,
    RUN_ROOT,
    Lab,
    LabError,
    down_all,
    known_labs,
    lab_cgroup_dirs,
    listening_ports,
)

pytest_plugins = ["tests.lab.fixtures"]
pytestmark = [pytest.mark.root, pytest.mark.slow]

EVERYTHING = "pinned-ns+idmap-leak:3+runc:2+kubelet:2+docker-root:2+slave-readers:2+shared-storm:2"


def ssh(lab, name, command, known_hosts=None):
    host = lab.host(name)
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        os.path.join(lab.path, "client_key"),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile=%s" % (known_hosts or os.path.join(lab.path, "known_hosts")),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-p",
        str(host["port"]),
        "root@127.0.0.1",
        command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def mountinfo(pid):
    with open("/proc/%d/mountinfo" % pid, encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


def entry(lines, mount_point):
    """The last (topmost) mountinfo line for ``mount_point``, as (fields, tags)."""
    found = None
    for line in lines:
        pre, _sep, _post = line.partition(" - ")
        fields = pre.split(" ")
        if fields[4] == mount_point:
            found = fields
    assert found, mount_point
    return found, {t.split(":")[0]: t.split(":")[-1] for t in found[6:]}


def machine_mounts():
    return set(mountinfo(os.getpid()))


@pytest.fixture(scope="module")
def two_hosts(lab_factory):
    before = machine_mounts()
    lab = lab_factory(["healthy:1+runtime-configs", EVERYTHING])
    return lab, before


def test_hosts_are_separate_machines(two_hosts):
    lab, before = two_hosts
    for host in lab.state["hosts"]:
        done = ssh(
            lab, host["name"], "hostname; cat /proc/1/comm; readlink /proc/1/ns/mnt; cat /etc/hostname"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [host["name"], "sshd", "mnt:[%d]" % host["ns"], host["name"]]
    first, second = lab.names
    assert ssh(lab, first, "echo one > /etc/mountops-lab/marker").returncode == 0
    assert ssh(lab, second, "test -e /etc/mountops-lab/marker").returncode == 1
    assert not os.path.exists("/etc/mountops-lab")
    # Runtime configs exist only in the host that has them.
    assert (
        ssh(
            lab, first, "test -f /etc/containerd/config.toml -a -f /etc/crio/crio.conf.d/10-crun.conf"
        ).returncode
        == 0
    )
    assert ssh(lab, second, "test -e /etc/crio").returncode == 1
    # Nothing the hosts mounted shows up in the machine's own mount table.
    assert machine_mounts() - before == set()


def test_host_keys_are_checked(two_hosts, tmp_path):
    lab, _before = two_hosts
    first, second = lab.names
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    done = ssh(lab, first, "true", known_hosts=str(empty))
    assert done.returncode == 255 and "Host key verification failed" in done.stderr
    # the second host's key recorded under the first host's port: a different machine
    with open(os.path.join(lab.path, "known_hosts"), encoding="ascii") as handle:
        lines = handle.read().splitlines()
    swapped = tmp_path / "swapped_known_hosts"
    swapped.write_text(lines[1].replace(str(lab.host(second)["port"]), str(lab.host(first)["port"])) + "\n")
    done = ssh(lab, first, "true", known_hosts=str(swapped))
    assert done.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in done.stderr


def test_scenarios_build_real_kernel_state(two_hosts):
    lab, _before = two_hosts
    host = lab.host(lab.names[1])
    built = host["built"]["scenarios"]
    pid1 = host["ns_pid1"]
    lines = mountinfo(pid1)
    _fields, root_tags = entry(lines, "/")
    assert "shared" in root_tags  # hostinit made the tree rshared, as systemd does

    # shared-storm: each container's / is a peer of the host's /
    for ctr in built["shared-storm"]["containers"]:
        _fields, tags = entry(mountinfo(_pid_in(pid1, ctr["pid"])), "/")
        assert tags.get("shared") == root_tags["shared"]

    # slave-readers: every mount of a reader is a slave; the tree is replicated
    readers = built["slave-readers"]["services"]
    reader_lines = mountinfo(_pid_in(pid1, readers[0]["pid"]))
    assert not any(" shared:" in line for line in reader_lines)
    # every shared host mount became a slave (the scenarios after it add no host mounts)
    assert sum(" master:" in line for line in reader_lines) == sum(" shared:" in line for line in lines)
    tree_group = entry(lines, "/srv/tree/vol00")[1]["shared"]
    assert (
        sum(1 for line in lines if " shared:%s " % tree_group in line + " ")
        == built["slave-readers"]["ring_size"]
    )
    with open("/proc/%d/cgroup" % _pid_in(pid1, readers[0]["pid"]), encoding="ascii") as handle:
        assert handle.read().rstrip().endswith("/system.slice/%s" % readers[0]["unit"])

    # kubelet: the Bidirectional pod shares the volume's peer group and nothing else
    bidi = next(c for c in built["kubelet"]["containers"] if c["mount_propagation"] == "Bidirectional")
    pod_lines = mountinfo(_pid_in(pid1, bidi["pid"]))
    assert entry(pod_lines, bidi["volume"])[1]["shared"] == entry(lines, bidi["volume"])[1]["shared"]
    assert "shared" not in entry(pod_lines, "/")[1]

    # docker-root: a shared data root with one overlay per container
    assert "shared" in entry(lines, "/var/lib/docker")[1]
    for ctr in built["docker-root"]["containers"]:
        fields, _tags = entry(lines, ctr["rootfs"])
        assert fields[4] == ctr["rootfs"]

    # idmap-leak: idmapped mounts under containerd's tmpmounts
    leaked = [line for line in lines if "/var/lib/containerd/tmpmounts/ovl-idmapped" in line]
    assert len(leaked) == built["idmap-leak"]["idmapped"] == 3
    assert all("idmapped" in line.split(" - ")[0] for line in leaked)

    # pinned-ns: an nsfs bind mount holds a namespace that has no process
    pin = built["pinned-ns"]["pinned"][0]
    nsfs = [line for line in lines if " mnt:[%d] " % pin["ns"] in line]
    assert nsfs and nsfs[0].split(" ")[4] == pin["path"]
    assert not any(os.readlink("/proc/%s/ns/mnt" % p) == "mnt:[%d]" % pin["ns"] for p in _pids_under(pid1))

    # runc: real runc state, and the shared-propagation container is a peer of the host's bind
    for ctr in built["runc"]["containers"]:
        with open("/proc/%d/root/run/runc/%s/state.json" % (pid1, ctr["id"]), encoding="utf-8") as handle:
            state = json.load(handle)
        assert state["init_process_pid"] == ctr["pid"]
        ctr_lines = mountinfo(_pid_in(pid1, ctr["pid"]))
        if ctr["rootfs_propagation"] == "shared":
            assert entry(ctr_lines, "/data")[1]["shared"] == entry(lines, "/srv/runc-shared")[1]["shared"]


def _pids_under(pid1):
    """Our pids of every process in the same PID namespace as ``pid1`` or below it."""
    target = os.readlink("/proc/%d/ns/pid" % pid1)
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/status" % name, encoding="ascii", errors="replace") as handle:
                    status = handle.read()
                if os.readlink("/proc/%s/ns/pid" % name) == target or "\nNSpid:" in status:
                    found.append((int(name), status))
            except OSError:
                continue
    return [pid for pid, status in found if _in_subtree(pid, pid1)]


def _in_subtree(pid, ancestor):
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open("/proc/%d/stat" % pid, "rb") as handle:
                pid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except OSError:
            return False
    return pid == ancestor


def _pid_in(pid1, inner):
    """Our pid for the process that is ``inner`` inside the host whose PID 1 is ``pid1``."""
    for pid in _pids_under(pid1):
        with open("/proc/%d/status" % pid, encoding="ascii", errors="replace") as handle:
            nspid = re.search(r"^NSpid:\s+(.*)$", handle.read(), re.M).group(1).split()
        if len(nspid) >= 2 and nspid[1] == str(inner):
            return pid
    raise LookupError(inner)


def test_teardown_leaves_nothing(lab_factory):
    lab = lab_factory([EVERYTHING])
    state = json.loads(json.dumps(lab.state))
    # An ad-hoc run leaves an ssh ControlPersist master behind on the controller.
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "lab", "-m", "ansible.builtin.ping"],
        env=lab.env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.listdir(lab.control_dir)
    ids = set(state["hosts"][0]["ns_ids"].values())
    assert len(ids) == len(state["hosts"][0]["built"]["namespaces"]) >= 12

    left = lab_factory.down(lab)

    assert left == []
    assert not os.path.exists(state["path"])
    assert not lab_cgroup_dirs(state["cgroup_name"])
    assert state["hosts"][0]["port"] not in listening_ports()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                assert nsutil.mntns_id("/proc/%s/ns/mnt" % name) not in ids
            except OSError:
                continue


CHILD = """
import sys, time
from tests.lab.lab import Lab, parse_host_specs
lab = Lab.up(1, parse_host_specs(["pinned-ns+shared-storm:3+runc:1"]), persistent=False)
print(lab.path, lab.state["hosts"][0]["port"], flush=True)
time.sleep(600)
"""


@pytest.fixture
def own_run_root():
    """A run root of its own (its own checkout tag), so these tests never see other labs."""
    path = os.path.join(RUN_ROOT, "selftest-%d-%d" % (os.getpid(), time.monotonic_ns()))
    yield path
    down_all(run_root=path)
    if os.path.isdir(path):
        os.rmdir(path)
    with contextlib.suppress(OSError):
        os.rmdir(RUN_ROOT)  # only when no other lab of this run still lives there


def test_a_killed_test_run_leaves_strays_that_the_next_run_removes(own_run_root):
    run_root = own_run_root
    env = dict(os.environ, MOUNTOPS_LAB_RUN=run_root)
    children = []
    for _index in range(2):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
        )
        path, port = child.stdout.readline().split()
        children.append((child, path, int(port)))
    try:
        for child, _path, port in children:
            assert int(port) in listening_ports()
            child.send_signal(signal.SIGKILL)  # pytest itself dying, as far as the lab knows
            child.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            port in listening_ports() for _child, _path, port in children
        ):
            time.sleep(0.1)
        # PR_SET_PDEATHSIG took the hosts down with their owner; cgroups and run dirs remain
        assert not any(port in listening_ports() for _child, _path, port in children)
        assert len(known_labs(run_root)) == 2
        # one crash happened before the run dir was written: only its cgroup is left
        kept = Lab.load(children[0][1]).state
        orphan = Lab.load(children[1][1]).state
        subprocess.run(["rm", "-rf", children[1][1]], check=True)
        assert lab_cgroup_dirs(orphan["cgroup_name"])

        results = down_all(run_root=run_root, only_strays=True)

        assert set(results) == {kept["id"], orphan["cgroup_name"]}
        assert all(left == [] for left in results.values()), results
        assert known_labs(run_root) == []
        assert not lab_cgroup_dirs(orphan["cgroup_name"])
    finally:
        for child, _path, _port in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def test_cli_up_status_down(own_run_root):
    run_root = own_run_root
    env = dict(os.environ, MOUNTOPS_LAB_RUN=run_root)

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "tests.lab", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    up = cli("up", "--hosts", "2", "--scenarios", "healthy:1", "shared-storm:2")
    assert up.returncode == 0, up.stderr
    assert re.search(r"2 hosts up", up.stdout)
    labs = known_labs(run_root)
    assert len(labs) == 1 and labs[0].state["persistent"] and labs[0].state["complete"]
    lab = labs[0]
    # persistent: the CLI process is gone, the hosts are not
    assert all(h["port"] in listening_ports() for h in lab.state["hosts"])
    assert [h["spec"] for h in lab.state["hosts"]] == ["healthy:1", "shared-storm:2"]
    # a session janitor must leave a complete persistent lab alone
    assert down_all(run_root=run_root, only_strays=True) == {}
    status = cli("status")
    assert lab.state["id"] in status.stdout and "lab-02" in status.stdout
    down = cli("down")
    assert down.returncode == 0, down.stderr
    assert "all clean" in down.stderr
    assert lab.leftovers() == []
    assert cli("down").stderr.strip() == "lab: no lab of this checkout is running"


def test_lab_down_leaves_labs_of_live_test_runs_alone(own_run_root):
    lab = Lab.up(1, [[("healthy", 1)]], run_root=own_run_root)  # owned by this (live) process
    try:
        assert down_all(run_root=own_run_root) == {}
        assert down_all(run_root=own_run_root, only_strays=True) == {}
        assert lab.host("lab-01")["port"] in listening_ports()
        assert down_all(run_root=own_run_root, include_live=True) == {lab.state["id"]: []}
        assert lab.host("lab-01")["port"] not in listening_ports()
    finally:
        lab.down()


def test_run_dir_under_a_host_private_dir_is_refused():
    with pytest.raises(LabError, match="every lab host replaces with its own"):
        Lab.up(1, run_root="/tmp/mountops-lab-refused")
    assert not os.path.exists("/tmp/mountops-lab-refused")

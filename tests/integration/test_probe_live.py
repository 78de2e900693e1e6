"""contention_probe against the real kernel: real bpftrace, real tracepoints, real namespaces.

Each scenario is a simulated host (``tests/probe_workload.py``: a private mount + pid namespace)
and the probe is scoped to that pid namespace (``scope_pid``), so the other work on this shared
machine does not blur the verdict. Probe runs are 1-3 s. After every test no bpftrace process
started by it may remain, and no workload mount may be visible.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _probe as probe
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_programs as programs
from ansible_collections.mountops.fleet.plugins.modules import contention_probe
from tests.probe_workload import Host

pytestmark = [pytest.mark.root]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIVE = ["syscalls", "locks", "mountinfo"]
X86 = programs.SYSCALL_NUMBERS.get(os.uname().machine)


def bpftrace_pids():
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/comm" % entry) as handle:
                    if handle.read().strip() == "bpftrace":
                        pids.add(int(entry))
            except OSError:
                continue
    return pids


def tracer_of(parent):
    """The measuring ``bpftrace -f json -`` child of ``parent`` (not its --version/--info runs)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    text = handle.read()
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if (
                int(text.rsplit(")", 1)[1].split()[1]) == parent
                and b"json" in argv
                and b"bpftrace" in argv[0]
            ):
                return int(entry)
    return None


@pytest.fixture(autouse=True)
def no_leaks():
    """No new bpftrace process and no workload mount may outlive a test."""
    before = bpftrace_pids()
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and bpftrace_pids() - before:
        time.sleep(0.05)
    assert bpftrace_pids() - before == set(), "bpftrace left running"
    with open("/proc/self/mountinfo") as handle:
        assert "probe-workload" not in handle.read()


@pytest.fixture(scope="module", autouse=True)
def needs_bpftrace():
    if not os.path.exists("/usr/bin/bpftrace"):
        pytest.skip("bpftrace not installed (scripts/apt-packages.txt)")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"families": programs.SYSCALL_FAMILIES, "locks": True, "mountinfo": True, "numbers": X86},
        {
            "families": programs.SYSCALL_FAMILIES,
            "locks": True,
            "mountinfo": True,
            "numbers": X86,
            "stack_sample_every": programs.STACK_SAMPLE_EVERY,
        },
        {"families": programs.SYSCALL_FAMILIES, "locks": True, "mountinfo": True, "pidns_inum": 4026531836},
        {
            "families": programs.SYSCALL_FAMILIES,
            "locks": True,
            "mountinfo": True,
            "pidns_inum": 4026531836,
            "stack_sample_every": 7,
        },
        {"locks": True, "mountinfo": True, "numbers": X86, "stack_sample_every": 32},
        {"kfuncs": [(n, "kprobe:" + n) for n in programs.KERNEL_FUNCTIONS], "pidns_inum": 4026531836},
    ],
    ids=[
        "raw_syscalls",
        "raw_syscalls_sampled_stacks",
        "syscall_tracepoints_scoped",
        "syscall_tracepoints_scoped_sampled_stacks",
        "locks_without_syscalls",
        "kprobes",
    ],
)
def test_every_program_variant_compiles(tmp_path, kwargs):
    """bpftrace --emit-elf is a dry run: full semantic check and codegen, nothing attached."""
    source = tmp_path / "probe.bt"
    source.write_text(programs.build_program(2, **kwargs))
    done = subprocess.run(
        ["bpftrace", "--emit-elf", str(tmp_path / "probe.elf"), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "probe.elf").stat().st_size > 1000
    assert "ERROR" not in done.stderr.replace("ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK", "")


def probe_scenario(run_module, mode, **options):
    # The workload outlives the probe (compile + attach can take seconds on a loaded machine)
    # and is stopped right after it.
    with Host(mode, 30, **options) as host:
        result = run_module(
            contention_probe.main, {"duration": 2, "scope_pid": host.pidns_pid, "measure": LIVE, "top": 5}
        )
        host.stop()
    return result


def _metrics(result):
    return {r["metric"] for r in result["verdict"]["reasons"]}


def test_idle_host_is_ok(run_module):
    result = probe_scenario(run_module, "idle")
    assert result["run"]["complete"] and result["changed"] is False
    assert result["verdict"]["level"] == "ok", result["verdict"]
    assert result["syscalls"]["calls"] == 0
    assert result["contention"]["mount"]["waits"] == 0
    assert result["mountinfo"]["opens"] == 0
    measured = {c["item"] for c in result["coverage"] if c["measured"]}
    assert {"syscall:mount", "syscall:umount", "lock_contention", "mountinfo_readers"} <= measured


def test_mount_storm_is_attributed_to_mount_syscalls_and_mount_locks(run_module):
    result = probe_scenario(run_module, "storm", workers=4)
    assert result["verdict"]["level"] in ("warn", "critical")
    assert {"mount_ops_per_sec", "mount_lock_wait_ms_per_sec"} <= _metrics(result), result["verdict"]
    families = result["syscalls"]["families"]
    assert families["mount"]["calls"] > 100 and families["umount"]["calls"] > 100
    assert families["unshare"]["calls"] > 0
    assert families["mount"]["p99_us"] >= families["mount"]["p50_us"] > 0
    assert result["syscalls"]["mnt_namespaces"] >= 4
    contention = result["contention"]
    assert contention["mount"]["waits"] > 0 and contention["mount_share"] > 0.5
    assert contention["top_mount_stacks"][0]["frames"]
    assert contention["by_node"][0]["mount_waits"] == contention["mount"]["waits"]
    # Waits inside the mount syscalls were counted exactly and only a sample walked its stack;
    # the sampled stacks still show the mount code (the storm's umount -> namespace_unlock).
    attribution = contention["attribution"]
    assert attribution["method"] == "sampled_stacks"
    in_syscalls = attribution["sampled_kinds"]["mount_syscall"]
    assert 0 < in_syscalls["sampled"] < in_syscalls["waits"]
    assert contention["waits"] == attribution["stacked_waits"] + attribution["estimated_waits"]
    top = contention["top_mount_stacks"][0]
    assert top["estimated"] and any(probe.is_mount_frame(probe.frame_name(f)) for f in top["frames"])
    assert result["mountinfo"]["opens"] == 0


def test_mountinfo_readers_are_attributed_to_mountinfo_reads(run_module):
    result = probe_scenario(run_module, "readers", mounts=40, peers=40, readers=2)
    assert "mountinfo_read_ms_per_sec" in _metrics(result), result["verdict"]
    assert "mount_ops_per_sec" not in _metrics(result)
    mountinfo = result["mountinfo"]
    top = mountinfo["top_readers"][0]
    # The readers are this interpreter re-exec'd: comm is its file name, cut to 15 characters.
    assert top["comm"] == os.path.basename(sys.executable)[:15]
    assert top["opens"] > 10 and top["bytes"] > 0
    assert mountinfo["read_p99_us"] >= mountinfo["read_p50_us"] > 0
    assert result["syscalls"]["per_sec"] < 100


def test_timeout_stops_bpftrace_with_sigint_and_keeps_a_partial_result(run_module):
    result = run_module(
        contention_probe.main, {"duration": 60, "timeout": 10, "measure": ["syscalls", "locks"]}
    )
    assert result["run"]["stopped_by"] == "timeout"
    assert result["run"]["complete"] is False and result["run"]["wall_s"] < 20
    assert result["run"]["measured_s"] < 11
    assert result["verdict"]["level"] in ("ok", "warn", "critical")


def _module_process(tmp_path, duration):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"duration": duration, "measure": ["syscalls"]}}))
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, ".collections"))
    cmd = [
        sys.executable,
        "-m",
        "ansible_collections.mountops.fleet.plugins.modules.contention_probe",
        str(args),
    ]
    module = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tracer = tracer_of(module.pid)
        if tracer:
            return module, tracer
        if module.poll() is not None:
            break
        time.sleep(0.05)
    module.kill()
    raise AssertionError("bpftrace did not start: %r" % (module.communicate(),))


@pytest.fixture
def module_process(tmp_path):
    """Start the module as its own process (like AnsiballZ would) with a 30 s probe."""
    started = []

    def start():
        module, tracer = _module_process(tmp_path, duration=30)
        started.append(module)
        return module, tracer

    yield start
    for module in started:
        if module.poll() is None:
            module.kill()
        module.communicate()


def test_module_killed_mid_run_takes_bpftrace_with_it(module_process):
    module, tracer = module_process()
    time.sleep(1.0)
    module.send_signal(signal.SIGKILL)  # no cleanup code runs: PR_SET_PDEATHSIG must do it
    module.communicate()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and tracer in bpftrace_pids():
        time.sleep(0.05)
    assert tracer not in bpftrace_pids()


def test_module_terminated_mid_run_cleans_up_and_reports(module_process):
    module, tracer = module_process()
    time.sleep(1.0)
    module.send_signal(signal.SIGTERM)
    out, _err = module.communicate(timeout=15)
    result = json.loads(out)
    assert result["failed"] is True and "interrupted by signal 15" in result["msg"]
    assert tracer not in bpftrace_pids()


def test_bpftrace_killed_mid_run_fails_the_module_quickly(module_process):
    module, tracer = module_process()
    time.sleep(1.0)
    os.kill(tracer, signal.SIGKILL)
    out, _err = module.communicate(timeout=15)
    result = json.loads(out)
    assert result["failed"] is True
    assert "running bpftrace: no result" in result["msg"] and "-9" in result["msg"]


def test_ansible_runs_the_module_on_localhost():
    """The module and its module_utils survive AnsiballZ packaging; whole host, 1 s."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    done = subprocess.run(
        [
            os.path.join(REPO, ".venv/bin/ansible"),
            "localhost",
            "-m",
            "mountops.fleet.contention_probe",
            "-a",
            "duration=1 measure=syscalls,locks",
            "-o",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.split("=>", 1)[1])
    assert result["changed"] is False and result["run"]["complete"]
    assert result["run"]["scope"] == "host" and result["verdict"]["level"] in ("ok", "warn", "critical")


def test_mount_tracefs_in_a_private_namespace(tmp_path):
    """The module's fallback when no tracefs is mounted, done where it cannot touch the host."""
    target = tmp_path / "tracing"
    target.mkdir()
    code = (
        "import sys; sys.path.insert(0, %r);"
        "from ansible_collections.mountops.fleet.plugins.module_utils import _probe_detect as d;"
        "err = d.mount_tracefs(%r); print(err, d.find_tracefs([%r]),"
        " d.tracepoint_exists(%r, 'lock', 'contention_begin'))"
    ) % (os.path.join(REPO, ".collections"), str(target), str(target), str(target))
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout.split() == ["None", str(target), "True"], done.stderr
    assert not os.path.isdir(target / "events")  # only the namespace saw the mount
    bad = subprocess.run(
        [sys.executable, "-c", code.replace(str(target), str(tmp_path / "missing"))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.stdout.startswith("mount -t tracefs %s: No such file or directory" % (tmp_path / "missing"))

"""contention_probe main() and the bounded runner, with a stand-in bpftrace (no root, no kernel).

The stand-in is a shell script that answers --version/--info and, for a run, saves the program
it got on stdin and prints a captured bpftrace output, so every module branch runs offline.
"""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _probe as probe
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_detect as detect
from ansible_collections.mountops.fleet.plugins.modules import contention_probe
from tests.conftest import ModuleFail
from tests.unit.test_probe_analysis import make_sysfs, make_tracefs

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "probe")

FAKE_BPFTRACE = """#!/bin/sh
case "$1" in
  --version) echo "bpftrace v0.17.0"; exit 0;;
  --info) printf 'Build\\n  version: v0.17.0\\nKernel features\\n  kfunc: no\\n  kprobe: yes\\n'; exit 0;;
esac
cat > "$FAKE_DIR/program.bt"
cat "$FAKE_STDOUT"
cat "$FAKE_STDERR" >&2
exit "${FAKE_RC:-0}"
"""


def _script(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def fake_host(tmp_path, monkeypatch):
    """A root-looking host with tracefs, BTF, no kprobes and the stand-in bpftrace."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    tracefs = make_tracefs(tmp_path / "tracing")
    node0 = tmp_path / "sys/devices/system/node/node0"
    node0.mkdir(parents=True)
    (node0 / "cpulist").write_text("0-1\n")
    (node0.parent / "online").write_text("0\n")
    monkeypatch.setattr(detect, "TRACEFS_CANDIDATES", (tracefs,))
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    monkeypatch.setenv("FAKE_STDOUT", os.path.join(FIXTURES, "storm_sampled.stdout"))
    monkeypatch.setenv("FAKE_STDERR", os.path.join(FIXTURES, "storm_sampled.stderr"))
    return {
        "bpftrace_path": _script(tmp_path / "bpftrace", FAKE_BPFTRACE),
        "sysfs_root": make_sysfs(tmp_path / "sys"),
        "program": tmp_path / "program.bt",
        "tmp": tmp_path,
    }


def _args(host, **extra):
    args = {"bpftrace_path": host["bpftrace_path"], "sysfs_root": host["sysfs_root"], "duration": 2}
    args.update(extra)
    return args


def test_argument_spec_matches_documented_options():
    spec = contention_probe.get_argument_spec()
    assert set(spec) >= {"duration", "timeout", "measure", "on_missing", "scope_pid", "thresholds", "facts"}
    assert spec["on_missing"]["choices"] == ["fail", "warn", "skip"]
    for name in spec:
        assert "\n  %s:\n" % name in contention_probe.DOCUMENTATION


@pytest.mark.parametrize("check_mode", [False, True])
def test_storm_run_end_to_end(run_module, fake_host, check_mode):
    result = run_module(
        contention_probe.main,
        _args(fake_host, facts=True, return_program=True, scope_pid=os.getpid()),
        check_mode=check_mode,
    )
    assert result["changed"] is False
    assert result["verdict"]["level"] == "critical"
    assert result["run"]["complete"] and result["run"]["stopped_by"] == "exit"
    assert result["run"]["scope"].startswith("pidns:")
    assert any("RLIMIT_MEMLOCK" in w for w in result["run"]["warnings"])
    assert result["syscalls"]["families"]["mount"]["calls"] > 1000
    assert result["contention"]["mount"]["waits"] > 0 and result["contention"]["by_node"][0]["node"] == 0
    assert result["capabilities"]["bpftrace"]["version"] == "0.17.0"
    assert result["capabilities"]["kprobes"] is False  # --info says yes; the kprobe PMU decides
    assert "kernel_function:get_dominating_id" in result["verdict"]["unmeasured"]
    assert result["ansible_facts"]["mountops_contention_probe"]["verdict"] == result["verdict"]
    sent = fake_host["program"].read_text()
    assert sent == result["program"] and "interval:s:2" in sent and "pid_ns_for_children" in sent
    assert "rand % 32 != 0" in sent  # the default stack_sample_every
    attribution = result["contention"]["attribution"]
    assert attribution["method"] == "sampled_stacks" and attribution["sample_every"] == 32
    assert 0 < attribution["sampled_waits"] < attribution["estimated_waits"]


def test_stack_sample_every_reaches_program_and_result(run_module, fake_host, monkeypatch):
    result = run_module(contention_probe.main, _args(fake_host, stack_sample_every=5))
    assert "rand % 5 != 0" in fake_host["program"].read_text()
    assert result["contention"]["attribution"]["sample_every"] == 5
    by_item = {c["item"]: c for c in result["coverage"]}
    assert "1 in 5" in by_item["lock_contention"]["via"]
    # every wait takes a stack: replay a capture of that program
    monkeypatch.setenv("FAKE_STDOUT", os.path.join(FIXTURES, "storm.stdout"))
    result = run_module(contention_probe.main, _args(fake_host, stack_sample_every=1))
    sent = fake_host["program"].read_text()
    assert "rand" not in sent and "@lk_tot" not in sent
    assert result["contention"]["attribution"]["method"] == "all_stacks"
    assert "every wait" in {c["item"]: c for c in result["coverage"]}["lock_contention"]["via"]


def test_version_falls_back_to_dash_dash_version(run_module, fake_host, tmp_path):
    old = FAKE_BPFTRACE.replace("version: v0.17.0", "nothing here")
    assert old != FAKE_BPFTRACE
    result = run_module(contention_probe.main, _args(fake_host, bpftrace_path=_script(tmp_path / "old", old)))
    assert result["capabilities"]["bpftrace"]["version"] == "0.17.0"


def test_thresholds_reach_the_verdict(run_module, fake_host):
    huge = {"warn": 1e12, "critical": 1e13}
    result = run_module(
        contention_probe.main,
        _args(
            fake_host,
            thresholds={
                "mount_ops_per_sec": huge,
                "mount_lock_wait_ms_per_sec": huge,
                "syscall_p99_ms": huge,
                "mountinfo_read_ms_per_sec": huge,
            },
        ),
    )
    assert result["verdict"]["level"] == "ok" and result["verdict"]["reasons"] == []
    assert "program" not in result and "ansible_facts" not in result


@pytest.mark.parametrize("on_missing, key", [("warn", "msg"), ("skip", "skipped")])
def test_missing_bpftrace_warn_and_skip(run_module, fake_host, on_missing, key):
    result = run_module(
        contention_probe.main, _args(fake_host, bpftrace_path="/nonexistent/bpftrace", on_missing=on_missing)
    )
    assert key in result and "install it" in result["msg"]
    assert result["verdict"]["level"] == "unknown" and result["changed"] is False
    assert result["capabilities"]["bpftrace"]["path"] is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bpftrace_path": "/nonexistent/bpftrace"}, "bpftrace not found: install it"),
        ({"measure": ["kfuncs"]}, "no usable probe for kfuncs"),
        ({"duration": 0}, "duration must be at least 1"),
        ({"top": 0}, "top must be at least 1"),
        ({"stack_sample_every": 0}, "stack_sample_every must be at least 1"),
        ({"timeout": 0}, "timeout must be at least 1"),
        ({"scope_pid": 2**22 + 12345}, "reading the pid namespace of scope_pid"),
    ],
)
def test_failures(run_module, fake_host, change, message):
    with pytest.raises(ModuleFail, match=message):
        run_module(contention_probe.main, _args(fake_host, **change))


def test_not_root(run_module, fake_host, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ModuleFail, match="not root: bpftrace needs root") as failed:
        run_module(contention_probe.main, _args(fake_host))
    assert failed.value.result["capabilities"]["root"] is False


def test_no_tracefs_and_not_allowed_to_mount(run_module, fake_host, monkeypatch, tmp_path):
    monkeypatch.setattr(detect, "TRACEFS_CANDIDATES", (str(tmp_path / "nothing"),))
    with pytest.raises(ModuleFail, match=r"no tracefs: mount it \(mount -t tracefs"):
        run_module(contention_probe.main, _args(fake_host, mount_tracefs=False))


def test_bpftrace_that_fails_to_attach(run_module, fake_host, monkeypatch, tmp_path):
    errors = tmp_path / "err"
    errors.write_text("stdin:12:1-33: ERROR: tracepoint not found: lock:contention_begin\n")
    monkeypatch.setenv("FAKE_STDOUT", "/dev/null")
    monkeypatch.setenv("FAKE_STDERR", str(errors))
    monkeypatch.setenv("FAKE_RC", "1")
    with pytest.raises(
        ModuleFail, match="no result .exit 1, stopped by exit.: stdin:12:1-33: ERROR"
    ) as failed:
        run_module(contention_probe.main, _args(fake_host))
    assert "tracepoint not found" in failed.value.result["stderr"]


def test_partial_output_is_reported_incomplete(run_module, fake_host, monkeypatch):
    monkeypatch.setenv("FAKE_RC", "1")
    result = run_module(contention_probe.main, _args(fake_host))
    assert result["run"]["complete"] is False and result["verdict"]["level"] == "critical"


# ---- the runner: SIGINT first, SIGKILL after the grace, nothing left behind --------------------

SLOW_BUT_POLITE = """#!/bin/sh
trap 'kill $!; echo "{\\"type\\": \\"map\\", \\"data\\": {\\"@elapsed_ns\\": 5}}"; exit 0' INT
cat > /dev/null
sleep 30 > /dev/null 2>&1 &
wait
"""

DEAF = """#!/bin/sh
trap '' INT
cat > /dev/null
sleep 30
"""


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def test_runner_normal_exit(tmp_path):
    script = _script(tmp_path / "ok", "#!/bin/sh\ncat\n")
    run = probe.run_bpftrace(script, "hello", timeout=5)
    assert (run.stdout, run.stopped_by, run.returncode) == (b"hello", "exit", 0)
    assert not _alive(run.pid)


def test_runner_timeout_sends_sigint_and_keeps_the_output(tmp_path):
    script = _script(tmp_path / "polite", SLOW_BUT_POLITE)
    run = probe.run_bpftrace(script, "program", timeout=1, grace=5)
    assert run.stopped_by == "timeout"
    assert b"@elapsed_ns" in run.stdout
    assert run.wall_s < 5
    assert not _alive(run.pid)
    time.sleep(0.1)
    assert _children_of(run.pid) == []


def test_runner_escalates_to_sigkill_for_the_whole_group(tmp_path):
    script = _script(tmp_path / "deaf", DEAF)
    run = probe.run_bpftrace(script, "program", timeout=0.5, grace=0.5)
    assert run.stopped_by == "killed" and run.returncode == -signal.SIGKILL
    assert not _alive(run.pid)
    # the sleep it started is in bpftrace's process group: killed too (it was reparented)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(_alive(p) for p in _sleepers(tmp_path)):
        time.sleep(0.05)
    assert not any(_alive(p) for p in _sleepers(tmp_path))


def _sleepers(tmp_path):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    cmd = handle.read()
                with open("/proc/%s/environ" % entry, "rb") as handle:
                    env = handle.read()
            except OSError:
                continue
            if cmd.startswith(b"sleep\x0030") and str(tmp_path).encode() in env:
                pids.append(int(entry))
    return pids


def test_runner_kills_bpftrace_when_interrupted(tmp_path, monkeypatch):
    """An exception in the module while waiting (e.g. SIGTERM -> ProbeInterrupted) kills the group."""
    script = _script(tmp_path / "deaf", DEAF)
    started = {}
    real_popen = probe.subprocess.Popen

    class Boom(Exception):
        pass

    class Popen(real_popen):
        def communicate(self, *args, **kwargs):
            started["pid"] = self.pid
            if kwargs.get("timeout"):
                raise Boom()
            return super().communicate(*args, **kwargs)

    monkeypatch.setattr(probe.subprocess, "Popen", Popen)
    with pytest.raises(Boom):
        probe.run_bpftrace(script, "program", timeout=10)
    assert not _alive(started["pid"])


def test_sigterm_handler_raises():
    with pytest.raises(probe.ProbeInterrupted, match="signal 15"):
        probe._raise_terminated(signal.SIGTERM, None)

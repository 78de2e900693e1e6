"""Lock-wait stack sampling: the program variants, the plan, and the attribution arithmetic.

Constructed outputs check the estimator by hand-computed numbers; ``storm_sampled.stdout`` is a
2 s scoped capture of ``probe_workload.py storm`` (4 workers) with the sampled program.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _probe as probe
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_detect as detect
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_parse as parse
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_programs as programs

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "probe")
X86 = programs.SYSCALL_NUMBERS["x86_64"]

MOUNT = "\n    __mutex_lock.constprop.0+533\n    synchronize_rcu_expedited+1\n    namespace_unlock+2\n"
OTHER = "\n    __pv_queued_spin_lock_slowpath+270\n    _raw_spin_lock+59\n    __schedule+189\n"
KTHREAD = "\n    __pv_queued_spin_lock_slowpath+270\n    rcu_exp_wait_wake+169\n    kthread+250\n"


def _stats(count, total):
    return {"count": count, "average": total // count if count else 0, "total": total}


def _output(lk=None, tot=None, smp=None):
    out = parse.ProbeOutput()
    if lk is not None:
        out.maps["@lk"] = lk
    if tot is not None:
        out.maps["@lk_tot"] = tot
    if smp is not None:
        out.maps["@lk_smp"] = smp
    return out


# ---- programs and plan ----------------------------------------------------------------------


def test_sampled_program_counts_every_wait_and_stacks_only_some():
    text = programs.build_program(
        3, ["mount", "umount"], locks=True, numbers=X86, stack_sample_every=16, pidns_inum=4026532255
    )
    assert "locks_sampled.bt" in text and "\n// locks.bt" not in text
    # the mount-family entry marks @start, the lock probe reads the mark, the exit masks it
    assert "@start[tid] = nsecs | 0x4000000000000000;" in text
    assert "if (@start[tid] >= 0x4000000000000000) {" in text
    assert "$ns = nsecs - ($start & 0x3fffffffffffffff);" in text
    assert "else if (rand % 16 != 0) {" in text
    assert "if ($seen < %d) {" % programs.STACK_SAMPLE_FIRST in text
    assert "curtask->flags & 0x00200000" in text
    # one stack walk, guarded; every wait is timed
    assert text.count("kstack(") == 1 and "  if ($stack) {\n    @lk_stack[tid, $addr] = kstack(16);" in text
    for name in ("@lk", "@lk_tot", "@lk_smp"):
        assert "print(%s);" % name in text
    for scratch in ("@lk_seq", "@lk_start", "@lk_stack"):
        assert "clear(%s);" % scratch in text and "print(%s);" % scratch not in text
    assert "/ %s /" % programs.scope_condition(4026532255) in text


def test_sampled_program_on_the_per_syscall_layout_reads_sc_start():
    text = programs.build_program(2, ["mount"], locks=True, stack_sample_every=8)
    assert "if (@sc_start[tid]) {" in text and "raw_syscalls" not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"families": ["mount"], "locks": True, "numbers": X86, "stack_sample_every": 1},
        {"families": ["mount"], "locks": True, "numbers": X86},
        {"locks": True, "numbers": X86, "stack_sample_every": 32},  # nothing marks mount syscalls
    ],
    ids=["every-1", "unset", "no-syscalls"],
)
def test_every_wait_takes_a_stack_without_sampling(kwargs):
    text = programs.build_program(2, **kwargs)
    assert "\n// locks.bt" in text and "locks_sampled.bt" not in text
    assert "@lk_tot" not in text and "rand" not in text


def _caps(tmp_path):
    events = tmp_path / "events"
    for category, event in [("lock", "contention_begin"), ("lock", "contention_end")] + [
        ("raw_syscalls", "sys_enter"),
        ("raw_syscalls", "sys_exit"),
    ]:
        (events / category / event).mkdir(parents=True)
        (events / category / event / "format").write_text("name: x\n")
    for family in programs.SYSCALL_FAMILIES:
        for side in ("enter", "exit"):
            (events / "syscalls" / ("sys_%s_%s" % (side, family))).mkdir(parents=True)
            (events / "syscalls" / ("sys_%s_%s" % (side, family)) / "format").write_text("name: x\n")
    return detect.detect(
        "/b", "0.17.0", {}, tracefs=str(tmp_path), sysfs_root=str(tmp_path), machine="x86_64", euid=0
    )


def test_plan_samples_only_with_the_syscall_section(tmp_path):
    caps = _caps(tmp_path)
    plan, coverage = detect.plan_sections(caps, ["syscalls", "locks"])
    assert plan["stack_sample_every"] == programs.STACK_SAMPLE_EVERY
    via = {c["item"]: c["via"] for c in coverage}["lock_contention"]
    assert "1 in %d" % programs.STACK_SAMPLE_EVERY in via
    text = programs.build_program(2, **plan)
    assert "locks_sampled.bt" in text
    plan, coverage = detect.plan_sections(caps, ["locks"])
    assert plan["stack_sample_every"] is None
    assert "every wait" in {c["item"]: c["via"] for c in coverage}["lock_contention"]
    plan, _coverage = detect.plan_sections(caps, ["syscalls", "locks"], stack_sample_every=1)
    assert plan["stack_sample_every"] is None


# ---- attribution arithmetic -----------------------------------------------------------------


def test_sampled_totals_stay_exact_and_are_split_by_the_sampled_share():
    out = _output(
        lk={"0,%s" % OTHER: _stats(4, 400_000), "1,%s" % MOUNT: _stats(2, 1_000_000)},
        tot={"1,0": _stats(100, 10_000_000), "1,1": _stats(40, 2_000_000), "2,1": _stats(30, 300_000)},
        smp={
            # CPU 0, in mount syscalls: 3 of 4 sampled waits, 90% of the sampled time, are mount code
            "1,0,%s" % MOUNT: _stats(3, 900_000),
            "1,0,%s" % OTHER: _stats(1, 100_000),
            # CPU 1: only mount code sampled
            "1,1,%s" % MOUNT: _stats(2, 100_000),
            # kernel threads on CPU 1: nothing of the mount code
            "2,1,%s" % KTHREAD: _stats(5, 50_000),
        },
    )
    cont = probe.analyse_locks(out, 2.0, {0: 0, 1: 0}, top=5, sample_every=32)
    # exact: 4 + 2 stacked, 100 + 40 + 30 counted
    assert cont["waits"] == 176
    assert cont["wait_ms"] == 13.7  # 0.4 + 1 + 10 + 2 + 0.3 ms
    by_cpu = {row["cpu"]: row for row in cont["by_cpu"]}
    assert by_cpu[0]["waits"] == 104 and by_cpu[1]["waits"] == 72
    # CPU 0: 100 waits * 3/4 = 75 mount waits, 10 ms * 0.9 = 9 ms
    assert by_cpu[0]["mount_waits"] == 75 and by_cpu[0]["mount_wait_ms"] == 9.0
    # CPU 1: 2 stacked mount waits (1 ms) + all 40 sampled-kind waits (2 ms); kernel threads: none
    assert by_cpu[1]["mount_waits"] == 42 and by_cpu[1]["mount_wait_ms"] == 3.0
    assert cont["mount"]["waits"] == 117 and cont["mount"]["wait_ms"] == 12.0
    assert cont["other"]["waits"] == 59
    assert cont["by_node"][0]["mount_waits"] == cont["mount"]["waits"]
    attribution = cont["attribution"]
    assert attribution == {
        "method": "sampled_stacks",
        "sample_every": 32,
        "first_per_cpu": programs.STACK_SAMPLE_FIRST,
        "stacked_waits": 6,
        "sampled_kinds": {
            "mount_syscall": {"waits": 140, "sampled": 6},
            "kernel_thread": {"waits": 30, "sampled": 5},
        },
        "sampled_waits": 11,
        "estimated_waits": 170,
        "unattributed_waits": 0,
    }
    # the mount stack: exact 2 waits on CPU 1 (stacked) + CPU 0 3/4*100 + CPU 1 all 40
    top = cont["top_mount_stacks"][0]
    assert top["waits"] == 117 and top["wait_ms"] == 12.0 and top["cpus"] == [0, 1]
    assert top["estimated"] is True and top["sampled_waits"] == 5
    others = {tuple(s["frames"]): s for s in cont["top_other_stacks"]}
    assert len(cont["top_other_stacks"]) == 2  # top // 2
    assert cont["distinct_stacks"] == 3
    kthread = [s for s in others.values() if "kthread+250" in s["frames"]]
    assert kthread and kthread[0]["waits"] == 30 and kthread[0]["wait_ms"] == 0.3


def test_a_cpu_without_samples_uses_its_kinds_share_and_a_kind_without_any_counts_as_other():
    out = _output(
        tot={"1,0": _stats(10, 1_000_000), "1,3": _stats(20, 4_000_000), "2,0": _stats(7, 700_000)},
        smp={"1,0,%s" % MOUNT: _stats(1, 50_000), "1,0,%s" % OTHER: _stats(1, 150_000)},
    )
    cont = probe.analyse_locks(out, 1.0, {0: 0, 3: 1}, top=3, sample_every=32)
    by_cpu = {row["cpu"]: row for row in cont["by_cpu"]}
    # CPU 0: 10 waits * 1/2, 1 ms * 50/200; CPU 3 has no sample: the kind's share on all CPUs
    assert by_cpu[0]["mount_waits"] == 5 and by_cpu[0]["mount_wait_ms"] == 0.25
    assert by_cpu[3]["mount_waits"] == 10 and by_cpu[3]["mount_wait_ms"] == 1.0
    assert cont["attribution"]["unattributed_waits"] == 7  # kernel threads, never sampled
    assert cont["waits"] == 37 and cont["mount"]["waits"] == 15
    assert [n["mount_waits"] for n in cont["by_node"]] == [5, 10]


def test_zero_time_samples_split_the_time_by_the_wait_share():
    out = _output(
        tot={"1,0": _stats(4, 800_000)}, smp={"1,0,%s" % MOUNT: _stats(1, 0), "1,0,%s" % OTHER: _stats(3, 0)}
    )
    cont = probe.analyse_locks(out, 1.0, {0: 0}, top=3, sample_every=4)
    assert cont["mount"]["waits"] == 1 and cont["mount"]["wait_ms"] == 0.2
    assert cont["top_mount_stacks"][0]["wait_ms"] == 0.2


def test_all_stacks_output_reports_its_method():
    out = _output(lk={"0,%s" % MOUNT: _stats(3, 3000), "1,%s" % OTHER: _stats(1, 10)})
    cont = probe.analyse_locks(out, 1.0, {0: 0, 1: 0}, top=3)
    assert cont["attribution"]["method"] == "all_stacks" and cont["attribution"]["sample_every"] == 1
    assert cont["attribution"]["stacked_waits"] == 4 and cont["attribution"]["sampled_waits"] == 0
    assert cont["mount"]["waits"] == 3 and cont["top_mount_stacks"][0]["estimated"] is False


def test_storm_capture_with_sampled_stacks():
    with open(os.path.join(FIXTURES, "storm_sampled.stdout"), "rb") as handle:
        out = parse.parse_lines(handle.read())
    plan = {
        "families": list(programs.SYSCALL_FAMILIES),
        "locks": True,
        "mountinfo": True,
        "kfuncs": [],
        "numbers": X86,
        "stack_sample_every": 32,
    }
    result = probe.analyse(out, plan, {0: 0, 1: 0}, probe.measured_seconds(out, 99.0), top=5)
    cont = result["contention"]
    attribution = cont["attribution"]
    exact = sum(v["count"] for v in out.get("@lk").values()) + sum(
        v["count"] for v in out.get("@lk_tot").values()
    )
    assert cont["waits"] == exact == attribution["stacked_waits"] + attribution["estimated_waits"]
    assert attribution["method"] == "sampled_stacks" and attribution["unattributed_waits"] == 0
    in_syscalls = attribution["sampled_kinds"]["mount_syscall"]
    assert 0 < in_syscalls["sampled"] < in_syscalls["waits"] / 10  # most waits took no stack
    assert cont["mount_share"] > 0.5 and cont["mount"]["waits"] > cont["other"]["waits"]
    assert cont["top_mount_stacks"][0]["estimated"] is True
    assert any(probe.is_mount_frame(probe.frame_name(f)) for f in cont["top_mount_stacks"][0]["frames"])
    assert sum(row["waits"] for row in cont["by_cpu"]) == cont["waits"]
    assert cont["by_node"][0]["mount_waits"] == cont["mount"]["waits"]
    calls = result["syscalls"]["families"]
    assert calls["mount"]["calls"] > 1000 and calls["umount"]["errors"] == 0
    judged = probe.verdict(result, [], probe.merge_thresholds({}))
    assert {"mount_ops_per_sec", "mount_lock_wait_ms_per_sec"} <= {r["metric"] for r in judged["reasons"]}

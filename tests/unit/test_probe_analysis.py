"""Capability detection on fixture trees, program assembly, analysis and verdict (pure parts)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _probe as probe
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_detect as detect
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_parse as parse
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_programs as programs

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "probe")
X86 = programs.SYSCALL_NUMBERS["x86_64"]
ALL = ["syscalls", "locks", "mountinfo", "kfuncs"]

KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81400010 t get_dominating_id.isra.0
ffffffff81400020 t propagate_mnt.cold
ffffffff81400030 T propagate_mnt
ffffffff81400040 t copy_mnt_ns.constprop.0
ffffffff81400050 T copy_mnt_ns
ffffffff81400060 d show_mountinfo
ffffffff81400070 t show_mountinfo_extra
"""


def _out(name):
    with open(os.path.join(FIXTURES, name + ".stdout"), "rb") as handle:
        return parse.parse_lines(handle.read())


def make_tracefs(root, families=programs.SYSCALL_FAMILIES, lock=True, raw=True, file_syscalls=True):
    events = root / "events"
    wanted = []
    for family in families:
        wanted += [("syscalls", "sys_enter_" + family), ("syscalls", "sys_exit_" + family)]
    if lock:
        wanted += [("lock", "contention_begin"), ("lock", "contention_end")]
    if raw:
        wanted += [("raw_syscalls", "sys_enter"), ("raw_syscalls", "sys_exit")]
    if file_syscalls:
        wanted += [("syscalls", "sys_enter_" + n) for n in ("openat", "read", "close")]
    for category, event in wanted:
        (events / category / event).mkdir(parents=True, exist_ok=True)
        (events / category / event / "format").write_text("name: %s\n" % event)
    return str(root)


def make_sysfs(root, kprobes=False, btf=True):
    if kprobes:
        (root / "bus/event_source/devices/kprobe").mkdir(parents=True)
        (root / "bus/event_source/devices/kprobe/type").write_text("6\n")
    if btf:
        (root / "kernel/btf").mkdir(parents=True)
        (root / "kernel/btf/vmlinux").write_bytes(b"\x9f\xeb")
    return str(root)


def make_proc(root, kallsyms=KALLSYMS):
    root.mkdir(parents=True, exist_ok=True)
    (root / "kallsyms").write_text(kallsyms)
    return str(root)


# ---- detection --------------------------------------------------------------------------------


def test_resolve_symbols_prefers_exact_names_and_skips_cold_and_data():
    found = detect.resolve_symbols(programs.KERNEL_FUNCTIONS, KALLSYMS)
    assert found == {
        "get_dominating_id": "get_dominating_id.isra.0",
        "propagate_mnt": "propagate_mnt",
        "copy_mnt_ns": "copy_mnt_ns",
        "show_mountinfo": None,  # only a data symbol and a different function
    }


def test_resolve_symbols_honours_available_filter_functions():
    found = detect.resolve_symbols(["copy_mnt_ns"], KALLSYMS, traceable={"copy_mnt_ns.constprop.0"})
    assert found == {"copy_mnt_ns": "copy_mnt_ns.constprop.0"}


@pytest.mark.parametrize(
    "text, expected",
    [("bpftrace v0.17.0\n", "0.17.0"), ("bpftrace v0.21.2-12-gabc", "0.21.2"), ("v0.9", "0.9.0"), ("", None)],
)
def test_parse_bpftrace_version(text, expected):
    assert detect.parse_bpftrace_version(text) == expected


def test_parse_bpftrace_info_reads_feature_lines():
    text = "System\n  OS: Linux 6.18\nKernel features\n  btf: yes\n  kprobe: yes\n  kfunc: no\n  version: v0.17.0\n"
    assert detect.parse_bpftrace_info(text) == {"btf": True, "kprobe": True, "kfunc": False}


def test_find_tracefs(tmp_path):
    empty, mounted = tmp_path / "empty", tmp_path / "tracing"
    empty.mkdir()
    (mounted / "events").mkdir(parents=True)
    assert detect.find_tracefs([str(empty), str(mounted)]) == str(mounted)
    assert detect.find_tracefs([str(empty)]) is None


def test_detect_this_kind_of_kernel(tmp_path):
    """Tracepoints and BTF, no kprobes, bpftrace --info claiming kprobes (it lies)."""
    caps = detect.detect(
        "/usr/bin/bpftrace",
        "0.17.0",
        {"kprobe": True, "kfunc": False},
        tracefs=make_tracefs(tmp_path / "tracing", families=programs.SYSCALL_FAMILIES[:-2]),
        sysfs_root=make_sysfs(tmp_path / "sys"),
        proc_root=make_proc(tmp_path / "proc"),
        machine="x86_64",
        euid=0,
    )
    assert caps["kprobes"] is False and caps["kfunc"] is False and caps["btf"] is True
    assert caps["missing_syscall_families"] == ["statmount", "listmount"]
    assert caps["tracepoints"]["lock_contention"] and caps["tracepoints"]["raw_syscalls"]
    assert caps["kernel_functions"] == dict.fromkeys(programs.KERNEL_FUNCTIONS)
    plan, coverage = detect.plan_sections(caps, ALL)
    assert plan["numbers"] == X86 and plan["locks"] and plan["mountinfo"] and plan["kfuncs"] == []
    assert "statmount" not in plan["families"]
    unmeasured = {c["item"]: c["reason"] for c in coverage if not c["measured"]}
    assert "not in this kernel" in unmeasured["syscall:statmount"]
    assert "no kprobes" in unmeasured["kernel_function:get_dominating_id"]
    assert all(c["via"] for c in coverage if c["measured"])


def test_detect_production_kernel_with_kprobes(tmp_path):
    caps = detect.detect(
        "/usr/bin/bpftrace",
        "0.21.0",
        {"kfunc": True},
        tracefs=make_tracefs(tmp_path / "tracing"),
        sysfs_root=make_sysfs(tmp_path / "sys", kprobes=True),
        proc_root=make_proc(tmp_path / "proc"),
        machine="aarch64",
        euid=0,
    )
    plan, coverage = detect.plan_sections(caps, ALL)
    assert plan["numbers"] == programs.SYSCALL_NUMBERS["aarch64"]
    assert plan["kfuncs"] == [
        ("get_dominating_id", "kprobe:get_dominating_id.isra.0"),
        ("propagate_mnt", "kprobe:propagate_mnt"),
        ("copy_mnt_ns", "kprobe:copy_mnt_ns"),
    ]
    by_item = {c["item"]: c for c in coverage}
    assert "kallsyms" in by_item["kernel_function:show_mountinfo"]["reason"]


def test_kfunc_only_kernel_needs_unsuffixed_names(tmp_path):
    caps = detect.detect(
        "/b",
        "0.21.0",
        {"kfunc": True},
        tracefs=make_tracefs(tmp_path / "t"),
        sysfs_root=make_sysfs(tmp_path / "s"),
        proc_root=make_proc(tmp_path / "p"),
        machine="x86_64",
        euid=0,
    )
    plan, coverage = detect.plan_sections(caps, ["kfuncs"])
    assert ("propagate_mnt", "kfunc:propagate_mnt") in plan["kfuncs"]
    reasons = {c["item"]: c["reason"] for c in coverage}
    assert "suffixed" in reasons["kernel_function:get_dominating_id"]
    assert reasons["lock_contention"].startswith("not requested")


def test_unknown_arch_and_old_kernel_fall_back_to_syscall_tracepoints(tmp_path):
    caps = detect.detect(
        "/b",
        None,
        {},
        tracefs=make_tracefs(tmp_path / "t", lock=False, raw=False),
        sysfs_root=make_sysfs(tmp_path / "s", btf=False),
        proc_root=make_proc(tmp_path / "p"),
        machine="riscv64",
        euid=1000,
    )
    assert caps["root"] is False and caps["syscall_numbers"] is False
    plan, coverage = detect.plan_sections(caps, ALL)
    assert plan["numbers"] is None and plan["mountinfo"] and not plan["locks"]
    assert {c["via"] for c in coverage if c["item"].startswith("syscall:")} == {"tracepoint:syscalls"}
    text = programs.build_program(3, **plan)
    assert "tracepoint:syscalls:sys_enter_mount" in text and "raw_syscalls" not in text


def test_no_tracefs_plans_nothing():
    caps = detect.detect("/b", None, {}, tracefs=None, sysfs_root="/nonexistent", machine="x86_64", euid=0)
    plan, coverage = detect.plan_sections(caps, ALL)
    assert not (plan["families"] or plan["locks"] or plan["mountinfo"] or plan["kfuncs"])
    assert not any(c["measured"] for c in coverage)


# ---- programs -------------------------------------------------------------------------------


def test_full_program_is_bounded_and_clears_its_maps():
    text = programs.build_program(7, programs.SYSCALL_FAMILIES, locks=True, mountinfo=True, numbers=X86)
    assert "interval:s:7\n{\n  @elapsed_ns = nsecs - @t0;\n  exit();\n}" in text
    assert "{{" not in text
    for section in ("syscalls", "locks", "mountinfo"):
        for name in programs.SECTION_MAPS[section]:
            assert "print(%s);" % name in text and "clear(%s);" % name in text
    for scratch in ("@start", "@mi_fd", "@lk_start", "@lk_stack"):
        assert "clear(%s);" % scratch in text and "print(%s);" % scratch not in text
    assert text.count("tracepoint:raw_syscalls:sys_enter\n") == 1
    assert "if (($id >= 165 && $id <= 166) || $id == 272 || $id == 308 || ($id >= 428 && $id <= 433)" in text
    assert "kstack(%d)" % programs.STACK_DEPTH in text


@pytest.mark.parametrize(
    "numbers, expected",
    [
        ([5], "$id == 5"),
        ([3, 1, 2, 9], "($id >= 1 && $id <= 3) || $id == 9"),
        ([166, 165, 165], "($id >= 165 && $id <= 166)"),
    ],
)
def test_number_test(numbers, expected):
    assert programs.number_test(numbers) == expected


def test_scope_predicate_walks_nested_pid_namespaces():
    text = programs.build_program(1, ["mount"], locks=True, pidns_inum=4026532255, numbers=X86)
    cond = programs.scope_condition(4026532255)
    assert cond.count("4026532255") == programs.SCOPE_DEPTH
    assert "pid_ns_for_children->parent->parent->ns.inum" in cond
    assert "if ($id == 165) {\n    if (%s) {" % cond in text
    assert "/ %s /" % cond in text  # the lock section's predicate
    assert "if (1)" not in text


def test_kfunc_fragments_use_the_resolved_symbols():
    text = programs.build_program(1, kfuncs=[("get_dominating_id", "kprobe:get_dominating_id.isra.0")])
    assert 'kprobe:get_dominating_id.isra.0\n\n{\n  @kf_calls["get_dominating_id"] = count();' in text


@pytest.mark.parametrize("kwargs", [{"duration": 0, "families": ["mount"]}, {"duration": 5}])
def test_build_program_rejects(kwargs):
    with pytest.raises(ValueError):
        programs.build_program(**kwargs)


def test_programs_main_prints_a_program(capsys):
    assert programs.main(["x", "4", "--kprobes", "--tracepoints"]) == 0
    text = capsys.readouterr().out
    assert "interval:s:4" in text and "kprobe:get_dominating_id" in text and "sys_enter_mount" in text


# ---- analysis -------------------------------------------------------------------------------

PLAN = {
    "families": list(programs.SYSCALL_FAMILIES),
    "locks": True,
    "mountinfo": True,
    "kfuncs": [],
    "numbers": X86,
}


@pytest.mark.parametrize(
    "frame, name, mount",
    [
        ("path_mount+1002", "path_mount", True),
        ("get_dominating_id.isra.0+0x12", "get_dominating_id", True),
        ("propagate_one.constprop.0+8", "propagate_one", True),
        ("__x64_sys_umount+127", "__x64_sys_umount", True),
        ("__arm64_sys_open_tree+20", "__arm64_sys_open_tree", True),
        # the RCU callback that frees unmounted mounts runs in ksoftirqd or rcuc kthreads
        ("delayed_free_vfsmnt+24", "delayed_free_vfsmnt", True),
        ("mnt_free_id.isra.0+9", "mnt_free_id", True),
        ("__x64_sys_mkdir+69", "__x64_sys_mkdir", False),
        ("ext4_mkdir+194", "ext4_mkdir", False),
        ("", "", False),
    ],
)
def test_frame_attribution(frame, name, mount):
    assert probe.frame_name(frame) == name
    assert probe.is_mount_frame(name) is mount


@pytest.mark.parametrize(
    "frames, kind",
    [
        (["rwsem_down_write_slowpath+1", "down_write+2"], "rwsem-write"),
        (["__mutex_lock.constprop.0+630"], "mutex"),
        (["__pv_queued_spin_lock_slowpath+347", "_raw_spin_lock+59"], "spinlock"),
        (["queued_read_lock_slowpath+3"], "rwlock-read"),
        (["schedule+1"], "other"),
    ],
)
def test_lock_kind(frames, kind):
    assert probe.lock_kind(frames) == kind


def test_family_of_numbers_and_probe_names():
    assert probe.family_of("165", X86) == "mount"
    assert probe.family_of("0", X86) is None  # read is not a mount family
    assert probe.family_of("tracepoint:syscalls:sys_exit_fsmount", None) == "fsmount"
    assert probe.family_of("kprobe:x", None) is None


def test_storm_capture_is_attributed_to_mount_syscalls_and_mount_locks():
    out = _out("storm")
    seconds = probe.measured_seconds(out, 99.0)
    assert 1.5 < seconds < 5
    result = probe.analyse(out, PLAN, {0: 0, 1: 0}, seconds, top=5)
    calls = result["syscalls"]
    assert calls["families"]["mount"]["calls"] > 1000 and calls["families"]["unshare"]["calls"] > 10
    assert calls["families"]["umount"]["p99_us"] >= calls["families"]["umount"]["p50_us"] > 0
    assert calls["by_comm"][0]["comm"] == "python" and len(calls["by_mnt_ns"]) == 5
    cont = result["contention"]
    assert cont["mount"]["waits"] > 0 and cont["mount_share"] > 0.5
    assert cont["top_mount_stacks"][0]["lock"] in ("mutex", "rwsem-write", "spinlock")
    assert sum(c["waits"] for c in cont["by_cpu"]) == cont["waits"]
    assert cont["by_node"][0]["cpus"] == 2 and cont["node_evenness"] is None
    assert result["mountinfo"]["opens"] == 0 and result["kernel_functions"] is None
    assert calls["breakdown_truncated"] is False and cont["truncated"] is False
    judged = probe.verdict(result, [], probe.merge_thresholds({}))
    assert judged["level"] == "critical"
    assert {r["metric"] for r in judged["reasons"]} >= {"mount_ops_per_sec", "mount_lock_wait_ms_per_sec"}


def test_readers_capture_is_attributed_to_mountinfo_reads():
    out = _out("readers")
    result = probe.analyse(out, PLAN, {0: 0, 1: 0}, probe.measured_seconds(out, 2.0))
    assert result["syscalls"]["calls"] == 0
    top = result["mountinfo"]["top_readers"][0]
    assert (
        top["comm"] == "python" and top["opens"] > 100 and top["reads"] >= top["opens"] and top["bytes"] > 0
    )
    judged = probe.verdict(result, [], probe.merge_thresholds({}))
    assert judged["reasons"][0]["metric"] == "mountinfo_read_ms_per_sec"
    assert "top reader python" in judged["reasons"][0]["message"]
    assert "mount_ops_per_sec" not in {r["metric"] for r in judged["reasons"]}


def test_locks_by_numa_node_and_evenness():
    stack = "\n    rwsem_down_write_slowpath+1\n    path_mount+2\n"
    other = "\n    __pv_queued_spin_lock_slowpath+1\n    ext4_mkdir+2\n"
    out = parse.ProbeOutput()
    out.maps["@lk"] = {
        "0,%s" % stack: {"count": 2, "total": 4_000_000},
        "2,%s" % stack: {"count": 2, "total": 4_000_000},
        "4,%s" % other: {"count": 1, "total": 1_000_000},
        "9,%s" % stack: {"count": 1, "total": 1_000_000},  # a CPU missing from the map
    }
    nodes = {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2}
    cont = probe.analyse_locks(out, 2.0, nodes, top=3)
    assert cont["mount"] == {"waits": 5, "wait_ms": 9.0, "wait_ms_per_sec": 4.5, "waits_per_sec": 2.5}
    by_node = {n["node"]: n for n in cont["by_node"]}
    assert by_node[0]["mount_wait_ms"] == 4.0 and by_node[2]["mount_wait_ms"] == 0.0
    assert by_node[None]["cpus"] == 0 and by_node[None]["mount_waits"] == 1
    assert 0 < cont["node_evenness"] < 1
    assert cont["top_mount_stacks"][0]["cpus"] == [0, 2, 9]
    assert cont["top_other_stacks"][0]["frames"][-1] == "ext4_mkdir+2"


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([{"node": 0, "cpus": 4, "mount_wait_ms": 1.0}], None),
        ([{"node": 0, "cpus": 4, "mount_wait_ms": 4.0}, {"node": 1, "cpus": 4, "mount_wait_ms": 4.0}], 1.0),
        ([{"node": 0, "cpus": 8, "mount_wait_ms": 8.0}, {"node": 1, "cpus": 4, "mount_wait_ms": 4.0}], 1.0),
        ([{"node": 0, "cpus": 4, "mount_wait_ms": 4.0}, {"node": 1, "cpus": 4, "mount_wait_ms": 0.0}], 0.0),
        ([{"node": 0, "cpus": 4, "mount_wait_ms": 0.0}, {"node": 1, "cpus": 4, "mount_wait_ms": 0.0}], None),
    ],
)
def test_node_evenness(rows, expected):
    assert probe.node_evenness(rows) == expected


def test_full_breakdown_map_never_undercounts_a_family():
    out = parse.ProbeOutput()
    out.maps["@sc_calls"] = {"%d,165,mount" % (4026530000 + i): 1 for i in range(probe.MAP_KEYS_MAX)}
    out.maps["@sc_lat"] = {"165": [{"min": 1024, "max": 2047, "count": probe.MAP_KEYS_MAX + 500}]}
    calls = probe.analyse_syscalls(out, PLAN, 1.0, top=3)
    assert calls["families"]["mount"]["calls"] == probe.MAP_KEYS_MAX + 500
    assert calls["breakdown_truncated"] is True and len(calls["by_mnt_ns"]) == 3


def test_missing_elapsed_falls_back_to_wall_time():
    assert probe.measured_seconds(parse.ProbeOutput(), 3.5) == 3.5


def test_verdict_thresholds_are_tunable_and_latency_needs_samples():
    result = {
        "syscalls": {
            "per_sec": 50.0,
            "families": {
                "umount": {"completed": 30, "p99_us": 12000.0},
                "mount": {"completed": 5, "p99_us": 900000.0},
            },
        },
        "contention": None,
        "mountinfo": None,
    }
    coverage = [{"item": "lock_contention", "measured": False}]
    default = probe.verdict(result, coverage, probe.merge_thresholds({}))
    assert default["level"] == "warn" and [r["metric"] for r in default["reasons"]] == [
        "syscall_p99_ms:umount"
    ]
    assert default["unmeasured"] == ["lock_contention"]
    strict = probe.verdict(
        result,
        coverage,
        probe.merge_thresholds({"mount_ops_per_sec": {"warn": 10, "critical": 40}, "junk": None}),
    )
    assert strict["level"] == "critical" and strict["reasons"][0]["metric"] == "mount_ops_per_sec"
    assert probe.verdict({}, [], probe.merge_thresholds(None)) == {
        "level": "ok",
        "reasons": [],
        "unmeasured": [],
        "thresholds": probe.DEFAULT_THRESHOLDS,
    }

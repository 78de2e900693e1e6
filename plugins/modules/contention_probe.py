#!/usr/bin/python
# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: contention_probe
short_description: Measure mount-code contention on the live host with a bounded bpftrace probe
version_added: 0.1.0
description:
  - Runs one bpftrace program for O(duration) seconds and reports mount-family syscall rates and
    latencies, lock contention waits attributed to the mount code (by CPU and NUMA node), who
    reads C(/proc/*/mountinfo) and how long that takes, and, where the kernel has kprobes or
    kfuncs, call counts of C(get_dominating_id), C(propagate_mnt), C(copy_mnt_ns) and
    C(show_mountinfo).
  - Detects what the host supports first (bpftrace, tracefs, tracepoints, kprobe PMU, BTF/kfunc,
    suffixed symbol names) and reports it in RV(capabilities); what could not be measured is
    listed in RV(coverage) so that a zero is never mistaken for "no contention".
  - Bounded twice, inside the program (an C(interval) probe calls C(exit)) and outside (O(timeout),
    then SIGINT, then SIGKILL); bpftrace runs in its own process group and dies with the module.
  - Baseline probes are tracepoints (C(raw_syscalls), C(lock:contention_begin/end)); they work on
    kernels without kprobes. Lock-wait attribution looks for C(fs/namespace.c) and
    C(fs/pnode.c) functions in the waiter's kernel stack; waits inside mount-family syscalls and
    in kernel threads are all counted but only a sample takes a stack (O(stack_sample_every)),
    see RV(contention.attribution).
  - Needs root. If tracefs is not mounted the module mounts it at C(/sys/kernel/tracing) (see
    O(mount_tracefs)) and says so in RV(capabilities.tracefs.mounted_by_probe).
author:
  - mountops contributors (@mountops)
extends_documentation_fragment:
  - mountops.fleet.attributes.observational
options:
  duration:
    description: Seconds to measure. Enforced inside the bpftrace program.
    type: int
    default: 10
  timeout:
    description:
      - Outer bound in seconds for the whole bpftrace run (compile, attach, measure, print).
      - When it expires bpftrace gets SIGINT (it prints what it has; the result is marked
        incomplete), then SIGKILL after 5 seconds.
      - Default O(duration) + 30.
    type: int
  measure:
    description: What to measure. Items the host cannot measure are listed in RV(coverage).
    type: list
    elements: str
    choices: [syscalls, locks, mountinfo, kfuncs]
    default: [syscalls, locks, mountinfo, kfuncs]
  on_missing:
    description:
      - What to do when nothing can be measured (no bpftrace, not root, no tracefs, no usable
        tracepoint). V(fail) fails the task, V(warn) returns with a warning and
        RV(verdict.level=unknown), V(skip) marks the task skipped.
      - Partial coverage (for example no kprobes) never fails; see RV(coverage).
    type: str
    choices: [fail, warn, skip]
    default: fail
  scope_pid:
    description:
      - Only count tasks in the pid namespace of this process, or in pid namespaces nested up to
        three levels below it (containers in a simulated host, pods in a sandbox).
      - Unset measures the whole host.
    type: int
  thresholds:
    description: Verdict thresholds; unset keys keep their defaults.
    type: dict
    default: {}
    suboptions:
      mount_ops_per_sec:
        description: Mount-family syscalls per second (all families together).
        type: dict
        suboptions:
          warn:
            description: Warn at or above this rate.
            type: float
            default: 100
          critical:
            description: Critical at or above this rate.
            type: float
            default: 1000
      mount_lock_wait_ms_per_sec:
        description: Milliseconds of lock waiting per second in stacks holding mount code.
        type: dict
        suboptions:
          warn:
            description: Warn at or above this value.
            type: float
            default: 5
          critical:
            description: Critical at or above this value.
            type: float
            default: 50
      syscall_p99_ms:
        description: p99 latency of any one syscall family, in milliseconds.
        type: dict
        suboptions:
          warn:
            description: Warn at or above this latency.
            type: float
            default: 10
          critical:
            description: Critical at or above this latency.
            type: float
            default: 100
      mountinfo_read_ms_per_sec:
        description: Milliseconds per second spent in read(2) on mountinfo files.
        type: dict
        suboptions:
          warn:
            description: Warn at or above this value.
            type: float
            default: 20
          critical:
            description: Critical at or above this value.
            type: float
            default: 200
      min_calls_for_latency:
        description: A family's p99 is judged only with at least this many completed calls.
        type: int
        default: 20
  stack_sample_every:
    description:
      - Lock waits inside mount-family syscalls and in kernel threads take a kernel stack 1 in this
        many times (at random), plus the first 8 per CPU and kind; they are still counted and timed
        exactly. Their mount-code share is estimated from the sampled stacks, see
        RV(contention.attribution). Every other wait takes its stack.
      - A stack walk costs several microseconds per contended lock, most of the probe's overhead
        in a mount storm. V(1) takes a stack for every wait (exact attribution, that cost).
      - Sampling needs the C(syscalls) section in O(measure); without it every wait takes a stack.
    type: int
    default: 32
  top:
    description: Length of the top lists (comms, namespaces, stacks, readers).
    type: int
    default: 10
  mount_tracefs:
    description:
      - Mount tracefs at C(/sys/kernel/tracing) when no tracefs is mounted. It stays mounted (a
        concurrent tracer may rely on it); the module warns and says so in
        RV(capabilities.tracefs.mounted_by_probe).
      - Also in check mode, since nothing can be measured without it.
    type: bool
    default: true
  bpftrace_path:
    description: The bpftrace binary. Default is C(bpftrace) from E(PATH) and the sbin directories.
    type: path
  sysfs_root:
    description: Root of sysfs, for the CPU to NUMA node map (tests use fixture trees).
    type: path
    default: /sys
  facts:
    description: Also return the result as the fact C(mountops_contention_probe).
    type: bool
    default: false
  return_program:
    description: Return the generated bpftrace program text in RV(program).
    type: bool
    default: false
attributes:
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
    support: full
    details: Only with O(facts=true).
notes:
  - Latency percentiles are estimated from log2 histograms (within a factor of two).
  - Lock waits come from C(lock:contention_begin/end) (Linux 5.19+); a wait counts as mount code
    when its kernel stack (16 frames) holds an C(fs/namespace.c)/C(fs/pnode.c) function or a
    mount syscall entry. With stack sampling the mount/other split of waits inside mount-family
    syscalls and in kernel threads is estimated per CPU from their sampled stacks; wait counts
    and times stay exact.
  - Mountinfo readers are tracked through C(openat) of C(*/mountinfo) under C(/proc) and the
    C(read)s on that file descriptor; 32-bit compat syscalls are not traced.
  - Never probes C(lock_mount_hash) or C(namespace_lock) (always inline).
seealso:
  - name: bpftrace reference guide
    description: Probe types and output format used here.
    link: https://github.com/bpftrace/bpftrace/blob/master/man/adoc/bpftrace.adoc
"""

EXAMPLES = r"""
- name: Measure mount contention for 10 seconds
  mountops.fleet.contention_probe:
  register: probe

- name: Fail the play when the host is in a mount storm
  ansible.builtin.assert:
    that: probe.verdict.level != 'critical'
    fail_msg: "{{ probe.verdict.reasons | map(attribute='message') | join('; ') }}"

- name: Short probe, stricter thresholds, skip hosts without bpftrace
  mountops.fleet.contention_probe:
    duration: 3
    on_missing: skip
    thresholds:
      mount_ops_per_sec:
        warn: 20
        critical: 200

- name: Only syscalls and lock waits, result as a fact
  mountops.fleet.contention_probe:
    measure: [syscalls, locks]
    facts: true
"""

RETURN = r"""
changed:
  description: Always false; the probe only loads transient tracing programs.
  returned: always
  type: bool
  sample: false
skipped:
  description: True when nothing could be measured and O(on_missing=skip).
  returned: when skipped
  type: bool
msg:
  description: Why nothing could be measured (with O(on_missing=skip) or O(on_missing=warn)).
  returned: when nothing could be measured
  type: str
  sample: "bpftrace not found: install it (apt install bpftrace, dnf install bpftrace)"
capabilities:
  description: What the host supports, detected before attaching anything.
  returned: always
  type: dict
  contains:
    root:
      description: Whether the module runs as root (bpftrace needs it).
      type: bool
    machine:
      description: Architecture (C(uname -m)).
      type: str
    bpftrace:
      description: C(path) and C(version) of bpftrace (null when missing).
      type: dict
    tracefs:
      description: Where tracefs is, and whether the module had to mount it.
      type: dict
      contains:
        path:
          description: The mounted tracefs (null when none).
          type: str
        mounted_by_probe:
          description: The module mounted tracefs because none was mounted (it stays mounted).
          type: bool
        error:
          description: Why mounting tracefs failed, or null.
          type: str
    btf:
      description: Kernel BTF present (C(/sys/kernel/btf/vmlinux)).
      type: bool
    kprobes:
      description: The kprobe PMU exists (kernel built with kprobes).
      type: bool
    kfunc:
      description: kfunc/fentry probes usable (BTF and bpftrace reports kfunc support).
      type: bool
    syscall_numbers:
      description: Whether this architecture's syscall numbers are known (raw_syscalls programs).
      type: bool
    tracepoints:
      description: >-
        Tracepoint availability: C(raw_syscalls), C(lock_contention), C(syscalls_openat),
        C(syscalls_read), C(syscalls_close).
      type: dict
    syscall_families:
      description: Mount-family syscalls this kernel has (a C(syscalls:sys_enter_<name>) tracepoint exists).
      type: list
      elements: str
    missing_syscall_families:
      description: Mount-family syscalls this kernel lacks.
      type: list
      elements: str
    kernel_functions:
      description: Kernel function -> the symbol to probe (suffix included), or null.
      type: dict
      sample: {get_dominating_id: get_dominating_id.isra.0, propagate_mnt: propagate_mnt}
coverage:
  description: One entry per measurable item; C(measured=false) entries say why.
  returned: always
  type: list
  elements: dict
  contains:
    item:
      description: >-
        C(syscall:<family>), C(lock_contention), C(mountinfo_readers),
        C(kernel_function:<name>).
      type: str
    measured:
      description: Whether the item was attached and measured.
      type: bool
    via:
      description: The probe used.
      type: str
    reason:
      description: Why it was not measured.
      type: str
run:
  description: How the bpftrace run went.
  returned: when bpftrace ran
  type: dict
  contains:
    duration:
      description: Requested seconds.
      type: int
    measured_s:
      description: Seconds between the program's BEGIN and END (the rate denominator).
      type: float
    wall_s:
      description: Seconds from starting bpftrace to its exit (compile, attach, measure, print).
      type: float
    stopped_by:
      description: C(exit) (the program's own timer), C(timeout) (SIGINT), C(killed) (SIGKILL).
      type: str
    complete:
      description: The program ran its full duration and printed every map.
      type: bool
    attached_probes:
      description: Number of probes bpftrace attached.
      type: int
    scope:
      description: C(host) or C(pidns:<inode>) (see O(scope_pid)).
      type: str
    warnings:
      description: Harmless bpftrace stderr lines (for example the RLIMIT_MEMLOCK notice).
      type: list
      elements: str
syscalls:
  description: Mount-family syscalls; null when not measured.
  returned: always
  type: dict
  contains:
    calls:
      description: Calls entered during the run, all families.
      type: int
    per_sec:
      description: Calls per second.
      type: float
    total_ms:
      description: Milliseconds spent inside these syscalls, all tasks together.
      type: float
    families:
      description: >-
        Per family (C(mount), C(umount), C(unshare), C(setns), C(open_tree), C(move_mount),
        C(mount_setattr), C(fsopen), C(fsconfig), C(fsmount), C(fspick), C(statmount),
        C(listmount)): C(calls), C(per_sec), C(completed), C(errors), C(total_ms), C(p50_us),
        C(p99_us).
      type: dict
    by_comm:
      description: Top callers, C(comm), C(calls) and C(families) (family -> calls).
      type: list
      elements: dict
    by_mnt_ns:
      description: Top mount namespaces (C(mnt_ns) inode, C(calls)).
      type: list
      elements: dict
    mnt_namespaces:
      description: Distinct mount namespaces seen calling.
      type: int
    breakdown_truncated:
      description: >-
        The per namespace/comm map reached bpftrace's key limit (4096), so RV(syscalls.by_comm)
        and RV(syscalls.by_mnt_ns) are incomplete; per-family counts come from the histograms and stay exact.
      type: bool
contention:
  description: Lock contention waits; null when not measured.
  returned: always
  type: dict
  contains:
    waits:
      description: Contended lock acquisitions (all code).
      type: int
    wait_ms:
      description: Total wait time, all code.
      type: float
    mount:
      description: >-
        C(waits), C(wait_ms), C(waits_per_sec), C(wait_ms_per_sec) for waits attributed to mount code
        (estimates where stacks were sampled, see RV(contention.attribution)).
      type: dict
    other:
      description: C(waits), C(wait_ms), C(wait_ms_per_sec) for all other waits.
      type: dict
    mount_share:
      description: Fraction of wait time attributed to mount code (null without waits).
      type: float
    by_cpu:
      description: Per CPU C(cpu), C(node), C(waits), C(wait_ms), C(mount_waits), C(mount_wait_ms).
      type: list
      elements: dict
    by_node:
      description: >-
        Per NUMA node C(node), C(cpus), C(waits), C(wait_ms), C(mount_waits), C(mount_wait_ms),
        C(mount_wait_share).
      type: list
      elements: dict
    node_evenness:
      description: >-
        0..1, how evenly mount-code waits per CPU spread over the nodes (normalised entropy;
        1 = even). Null with one node or no mount waits.
      type: float
    top_mount_stacks:
      description: >-
        Heaviest mount-code stacks, C(lock) kind, C(frames), C(waits), C(wait_ms), C(cpus),
        C(estimated) (true when sampled stacks stand in for unsampled waits: each sampled wait counts
        for total/sampled waits of its kind and CPU), C(sampled_waits) (sampled waits behind the row).
      type: list
      elements: dict
    top_other_stacks:
      description: Heaviest other stacks, same fields.
      type: list
      elements: dict
    distinct_stacks:
      description: Number of distinct waiting stacks.
      type: int
    truncated:
      description: The (CPU, stack) map reached bpftrace's key limit (4096); later new stacks were not counted.
      type: bool
    attribution:
      description: How waits were attributed to mount code.
      type: dict
      contains:
        method:
          description: >-
            C(all_stacks) (every wait took its kernel stack: exact) or C(sampled_stacks) (waits inside
            mount-family syscalls and in kernel threads are counted and timed exactly per CPU, a
            sample takes stacks, and each such per-CPU total is split by the mount-code share of its
            sample: waits by sampled waits, time by sampled time; every other wait takes its stack).
          type: str
          sample: sampled_stacks
        sample_every:
          description: One in this many waits of the sampled kinds took a stack (O(stack_sample_every)); 1 for C(all_stacks).
          type: int
          sample: 32
        first_per_cpu:
          description: The first this many waits per CPU and kind always took a stack (null for C(all_stacks)).
          type: int
          sample: 8
        stacked_waits:
          description: Waits attributed exactly by their own stack.
          type: int
        sampled_kinds:
          description: >-
            Per sampled kind (C(mount_syscall), C(kernel_thread)) C(waits) (exact) and C(sampled)
            (how many of them took a stack).
          type: dict
          sample: {mount_syscall: {waits: 18858, sampled: 679}}
        sampled_waits:
          description: Sampled waits with a stack, all kinds.
          type: int
        estimated_waits:
          description: Waits whose mount/other split is estimated from samples (exact in RV(contention.waits)).
          type: int
        unattributed_waits:
          description: Waits of a kind that got no sample at all (a full stack map); counted as other.
          type: int
mountinfo:
  description: Readers of C(/proc/*/mountinfo); null when not measured.
  returned: always
  type: dict
  contains:
    opens:
      description: Opens of mountinfo files.
      type: int
    opens_per_sec:
      description: Opens per second.
      type: float
    reads:
      description: read(2) calls on them.
      type: int
    read_ms:
      description: Milliseconds spent in those reads.
      type: float
    read_ms_per_sec:
      description: Read milliseconds per second.
      type: float
    read_p50_us:
      description: Median read latency (microseconds).
      type: float
    read_p99_us:
      description: p99 read latency (microseconds).
      type: float
    top_readers:
      description: Per C(comm), C(opens), C(reads), C(read_ms), C(bytes); heaviest first.
      type: list
      elements: dict
kernel_functions:
  description: Per probed kernel function C(calls) and C(per_sec); null when none could be probed.
  returned: always
  type: dict
verdict:
  description: The judgement and its reasons.
  returned: always
  type: dict
  contains:
    level:
      description: C(ok), C(warn) or C(critical); C(unknown) when nothing was measured.
      type: str
    reasons:
      description: Per crossed threshold C(level), C(metric), C(value), C(threshold), C(message).
      type: list
      elements: dict
    unmeasured:
      description: Coverage items that were not measured.
      type: list
      elements: str
    thresholds:
      description: The thresholds in force.
      type: dict
program:
  description: The generated bpftrace program.
  returned: when O(return_program=true) and a program was built
  type: str
ansible_facts:
  description: The same result under one key.
  returned: when O(facts=true)
  type: dict
  contains:
    mountops_contention_probe:
      description: C(capabilities), C(coverage), C(run), C(syscalls), C(contention), C(mountinfo), C(kernel_functions), C(verdict).
      type: dict
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mountops.fleet.plugins.module_utils import _probe as probe
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_detect as detect
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_parse as parse
from ansible_collections.mountops.fleet.plugins.module_utils import _probe_programs as programs
from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import cpu_node_map

SECTIONS = ["syscalls", "locks", "mountinfo", "kfuncs"]
KILL_GRACE_S = 5.0


def _level_spec(warn, critical):
    return {
        "type": "dict",
        "options": {
            "warn": {"type": "float", "default": warn},
            "critical": {"type": "float", "default": critical},
        },
    }


def get_argument_spec():
    return {
        "duration": {"type": "int", "default": 10},
        "timeout": {"type": "int"},
        "measure": {"type": "list", "elements": "str", "choices": SECTIONS, "default": list(SECTIONS)},
        "on_missing": {"type": "str", "choices": ["fail", "warn", "skip"], "default": "fail"},
        "scope_pid": {"type": "int"},
        "thresholds": {
            "type": "dict",
            "default": {},
            "options": {
                "mount_ops_per_sec": _level_spec(100.0, 1000.0),
                "mount_lock_wait_ms_per_sec": _level_spec(5.0, 50.0),
                "syscall_p99_ms": _level_spec(10.0, 100.0),
                "mountinfo_read_ms_per_sec": _level_spec(20.0, 200.0),
                "min_calls_for_latency": {"type": "int", "default": 20},
            },
        },
        "stack_sample_every": {"type": "int", "default": programs.STACK_SAMPLE_EVERY},
        "top": {"type": "int", "default": 10},
        "mount_tracefs": {"type": "bool", "default": True},
        "bpftrace_path": {"type": "path"},
        "sysfs_root": {"type": "path", "default": "/sys"},
        "facts": {"type": "bool", "default": False},
        "return_program": {"type": "bool", "default": False},
    }


def _bpftrace_facts(module, path):
    """Version and feature list from one ``bpftrace --info`` (only its kfunc line is trusted).

    One process instead of two (--version, --info): every exec here is time before the probe
    starts. Old bpftrace without a version line in --info falls back to --version.
    """
    env = {"LC_ALL": "C"}
    rc, out, err = module.run_command([path, "--info"], environ_update=env)
    features = detect.parse_bpftrace_info(out + err) if rc == 0 else {}
    match = re.search(r"^\s*version:\s*(\S+)", out + err, re.MULTILINE) if rc == 0 else None
    version = detect.parse_bpftrace_version(match.group(1)) if match else None
    if version is None:
        rc, out, err = module.run_command([path, "--version"], environ_update=env)
        version = detect.parse_bpftrace_version(out + err) if rc == 0 else None
    return version, features


def detect_capabilities(module):
    params = module.params
    path = params["bpftrace_path"] or module.get_bin_path(
        "bpftrace", opt_dirs=["/usr/sbin", "/usr/local/sbin"]
    )
    if path and not os.access(path, os.X_OK):
        path = None
    version, features = _bpftrace_facts(module, path) if path else (None, {})
    tracefs = detect.find_tracefs(detect.TRACEFS_CANDIDATES)
    mounted_by_probe, tracefs_error = False, None
    if tracefs is None and params["mount_tracefs"] and os.geteuid() == 0:
        tracefs_error = detect.mount_tracefs(detect.TRACEFS_CANDIDATES[0])
        tracefs = detect.find_tracefs(detect.TRACEFS_CANDIDATES)
        mounted_by_probe = tracefs is not None and tracefs_error is None
        if mounted_by_probe:
            module.warn("tracefs was not mounted; mounted it at %s (it stays mounted)" % tracefs)
    return detect.detect(
        path,
        bpftrace_version=version,
        bpftrace_features=features,
        tracefs=tracefs,
        tracefs_mounted_by_probe=mounted_by_probe,
        tracefs_error=tracefs_error,
        sysfs_root=params["sysfs_root"],
    )


def missing_reasons(caps, plan, measure):
    """Why nothing can be measured, each with what to install or enable; [] when we can probe."""
    reasons = []
    if not caps["bpftrace"]["path"]:
        reasons.append("bpftrace not found: install it (apt install bpftrace / dnf install bpftrace)")
    if not caps["root"]:
        reasons.append("not root: bpftrace needs root (use become: true)")
    if not caps["tracefs"]["path"]:
        reasons.append(
            "no tracefs: mount it (mount -t tracefs nodev /sys/kernel/tracing)%s"
            % (": %s" % caps["tracefs"]["error"] if caps["tracefs"]["error"] else "")
        )
    elif not (plan["families"] or plan["locks"] or plan["mountinfo"] or plan["kfuncs"]):
        reasons.append(
            "no usable probe for %s: the kernel needs CONFIG_FTRACE_SYSCALLS (syscall tracepoints), "
            "lock:contention_* tracepoints (5.19+) or kprobes" % ", ".join(measure)
        )
    return reasons


def scope_inum(module, pid):
    try:
        return os.stat("/proc/%d/ns/pid" % pid).st_ino
    except OSError as err:
        module.fail_json(msg="reading the pid namespace of scope_pid %d: %s" % (pid, err))
        return None


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    params = module.params
    if params["duration"] < 1:
        module.fail_json(msg="duration must be at least 1 second")
    if params["top"] < 1:
        module.fail_json(msg="top must be at least 1")
    if params["stack_sample_every"] < 1:
        module.fail_json(msg="stack_sample_every must be at least 1")
    timeout = params["timeout"] if params["timeout"] is not None else params["duration"] + 30
    if timeout < 1:
        module.fail_json(msg="timeout must be at least 1 second")
    thresholds = probe.merge_thresholds(params["thresholds"])
    pidns = scope_inum(module, params["scope_pid"]) if params["scope_pid"] is not None else None

    caps = detect_capabilities(module)
    plan, coverage = detect.plan_sections(caps, params["measure"], params["stack_sample_every"])
    result = {"changed": False, "capabilities": caps, "coverage": coverage}
    for key in ("syscalls", "contention", "mountinfo", "kernel_functions"):
        result[key] = None

    missing = missing_reasons(caps, plan, params["measure"])
    if missing:
        msg = "cannot measure mount contention: " + "; ".join(missing)
        if params["on_missing"] == "fail":
            module.fail_json(msg=msg, **result)
        result["msg"] = msg
        result["verdict"] = {"level": "unknown", "reasons": [], "unmeasured": [c["item"] for c in coverage]}
        if params["on_missing"] == "skip":
            result["skipped"] = True
        else:
            module.warn(msg)
        module.exit_json(**result)

    gaps = {}
    for item in coverage:
        if not item["measured"] and not (item["reason"] or "").startswith("not requested"):
            gaps.setdefault(item["reason"], []).append(item["item"])
    for reason, items in gaps.items():
        module.warn("not measured: %s (%s)" % (", ".join(items), reason))

    try:
        program = programs.build_program(params["duration"], pidns_inum=pidns, **plan)
    except ValueError as err:
        module.fail_json(msg="building the bpftrace program: %s" % err, **result)
    if params["return_program"]:
        result["program"] = program

    try:
        run = probe.run_bpftrace(caps["bpftrace"]["path"], program, timeout, grace=KILL_GRACE_S)
    except OSError as err:
        module.fail_json(msg="running bpftrace: %s" % err, **result)
    except probe.ProbeInterrupted as err:
        module.fail_json(msg="running bpftrace: interrupted by %s; bpftrace was stopped" % err, **result)
    out = parse.parse_lines(run.stdout)
    warnings, errors = parse.classify_stderr(run.stderr)
    if not out.maps:
        module.fail_json(
            msg="running bpftrace: no result (exit %s, stopped by %s): %s%s"
            % (
                run.returncode,
                run.stopped_by,
                " | ".join(errors[-8:]) or "no error output",
                ""
                if run.stopped_by == "exit"
                else "; the timeout (%d s) may be shorter than compiling and "
                "attaching takes on this host" % timeout,
            ),
            stderr=run.stderr.decode("utf-8", "replace"),
            **result,
        )
    seconds = probe.measured_seconds(out, run.wall_s)
    result.update(probe.analyse(out, plan, cpu_node_map(params["sysfs_root"]), seconds, params["top"]))
    result["run"] = {
        "duration": params["duration"],
        "measured_s": round(seconds, 3),
        "wall_s": round(run.wall_s, 3),
        "stopped_by": run.stopped_by,
        "complete": run.stopped_by == "exit" and run.returncode == 0,
        "attached_probes": out.attached_probes,
        "scope": "pidns:%d" % pidns if pidns else "host",
        "warnings": warnings,
    }
    if errors:
        result["run"]["errors"] = errors
    if not result["run"]["complete"]:
        module.warn("bpftrace %s after %.1fs; the result is partial" % (run.stopped_by, run.wall_s))
    result["verdict"] = probe.verdict(result, coverage, thresholds)
    if params["facts"]:
        keys = (
            "capabilities",
            "coverage",
            "run",
            "syscalls",
            "contention",
            "mountinfo",
            "kernel_functions",
            "verdict",
        )
        result["ansible_facts"] = {"mountops_contention_probe": {k: result[k] for k in keys}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()

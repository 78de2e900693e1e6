# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bpftrace programs of ``contention_probe``, kept as ``.bt`` texts with headers.

Ansible ships only ``.py`` module_utils to targets, so the programs live here as string
constants, one per concern, each a valid ``.bt`` fragment with its own header comment. The
probe joins the fragments that the host supports (see ``_probe_detect``) into one program, run
by one bpftrace process (one compile, one attach, one set of maps):

    HEADER + SYSCALLS + LOCKS + MOUNTINFO + KFUNCS + FOOTER

Placeholders (``{{NAME}}``) are filled by :func:`build_program`; nothing else is generated.
``tests/integration/test_probe_live.py`` compiles every combination with ``bpftrace --emit-elf``
(a dry run: no attach) and attaches them against real workloads.

Print a complete program for hand use (``bpftrace -f json prog.bt``) with::

    python -m ansible_collections.mountops.fleet.plugins.module_utils._probe_programs 5

Map keys put numbers first and at most one free-text field (``comm``, ``kstack``) last, so the
parser can split bpftrace's comma-joined multi-keys safely (``_probe_parse.split_key``).
"""

from __future__ import annotations

import os
import re
import sys

from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import consecutive_runs

# Mount-family syscalls, by tracepoint name (``umount`` is umount2(2); the kernel's
# SYSCALL_DEFINE is called umount). Order is the order of the result.
SYSCALL_FAMILIES = (
    "mount",
    "umount",
    "unshare",
    "setns",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "statmount",
    "listmount",
)

# Kernel functions counted where kprobes or kfuncs exist. Never lock_mount_hash/namespace_lock
# (always inline) nor legitimize_mnt/propagate_one (gone on newer kernels): see DESIGN.md §4.
KERNEL_FUNCTIONS = (
    "get_dominating_id",
    "propagate_mnt",
    "copy_mnt_ns",
    "show_mountinfo",
)

# Kernel stack depth kept per lock wait: deep enough to reach path_mount/do_mount from a
# contended rwsem/spinlock slow path (we saw 5-10 frames during storms), shallow enough to keep
# the number of distinct stacks (map keys) small.
STACK_DEPTH = 16

# Stack sampling for lock waits (locks_sampled.bt). A kstack walk costs ~6 us per contended lock
# here, most of the probe's cost in a mount storm. Waits inside a mount-family syscall and waits
# in kernel threads are counted exactly per CPU, and only 1 in STACK_SAMPLE_EVERY of them (plus
# the first STACK_SAMPLE_FIRST per CPU and kind) takes a stack; the mount-code share of each
# kind is estimated from its sampled stacks. Other waits (user tasks outside mount syscalls:
# exit-time namespace teardown, cleanup_mnt task work, mountinfo reads) keep a stack each.
STACK_SAMPLE_EVERY = 32
STACK_SAMPLE_FIRST = 8

# Bit 62 of @start[tid] marks "inside a mount-family syscall" (raw_syscalls layout): @start is
# shared with the mountinfo reads, and locks_sampled.bt tells them apart with the same lookup.
# nsecs (since boot) stays below 2^62 for 146 years.
IN_MOUNT_SYSCALL_BIT = 1 << 62

HEADER = r"""
// contention_probe.bt -- mountops.fleet.contention_probe, generated from fragments.
// Purpose: measure mount-family syscalls, lock contention waits and mountinfo readers for a
//          bounded time; all output is printed as maps in END (bpftrace -f json).
// Usage:   bpftrace -f json contention_probe.bt        (run as root, stops after {{DURATION}} s)
// Scope:   {{SCOPE_TEXT}}
BEGIN
{
  @t0 = nsecs;
}
"""

# Syscall numbers for the raw_syscalls programs. One raw_syscalls:sys_enter/sys_exit pair
# replaces 26 syscalls:sys_enter_X/sys_exit_X tracepoints: attaching each syscall tracepoint costs
# ~90 ms here (2.4 s for the family), which alone broke the "result within 1.3x the duration"
# target. Any enabled syscall tracepoint already sends every syscall through the tracing slow
# path, so the extra cost of raw_syscalls is one short BPF predicate per syscall.
# Numbers: arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h (arm64
# shares the generic table). From 428 up every architecture uses the same numbers, kept once in
# _GENERIC_NUMBERS. 32-bit compat syscalls are not covered.
_GENERIC_NUMBERS = {
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "statmount": 457,
    "listmount": 458,
}
SYSCALL_NUMBERS = {
    "x86_64": dict(
        _GENERIC_NUMBERS, mount=165, umount=166, unshare=272, setns=308, read=0, open=2, close=3, openat=257
    ),
    "aarch64": dict(
        _GENERIC_NUMBERS, mount=40, umount=39, unshare=97, setns=268, read=63, close=57, openat=56
    ),
}

RAW_SYSCALLS = r"""
// raw_syscalls.bt -- one sys_enter and one sys_exit program carry syscalls.bt and mountinfo.bt:
// two BPF programs run per syscall instead of seven, and two attach instead of 26+. They share
// @start[tid] (entry time of a syscall we time; bit 62 marks a mount-family syscall), so
// sys_exit does one map lookup per syscall.
// The context fields are read once, up front: LLVM otherwise folds a branch's args-> access
// into an offset ctx pointer, which the verifier rejects ("dereference of modified ctx ptr").
tracepoint:raw_syscalls:sys_enter
{
  $id = args->id;
  $arg0 = args->args[0];
  $arg1 = args->args[1];
{{ENTER}}
}

tracepoint:raw_syscalls:sys_exit
{
  $id = args->id;
  $ret = args->ret;
  $start = @start[tid];
  if ($start) {
    $ns = nsecs - ($start & {{TIME_MASK}});
    delete(@start[tid]);
{{EXIT}}
  }
}
"""

SYSCALLS_ENTER = r"""
  // syscalls.bt -- mount-family syscalls: calls by mount namespace and comm, latency, errors.
  // Filter on the family's syscall numbers (SYSCALL_NUMBERS), then the scope.
  // Maps:    @sc_calls[mntns, nr, comm] = count()
  //          @sc_lat[nr] = hist(ns)   @sc_ns[nr] = sum(ns)   @sc_err[nr] = count()
  // Example: {"type": "map", "data": {"@sc_calls": {"4026531841,165,mount": 50}}}
  // @start[tid] carries IN_MOUNT_SYSCALL_BIT ({{IN_MOUNT_BIT}}) next to the entry time: locks.bt
  // reads it to tell waits inside a mount-family syscall from the rest.
  if ({{NR_TEST}}) {
    if ({{SCOPE}}) {
      @start[tid] = nsecs | {{IN_MOUNT_BIT}};
      @sc_calls[curtask->nsproxy->mnt_ns->ns.inum, $id, comm] = count();
    }
  }
"""

SYSCALLS_EXIT = r"""
    if ({{NR_TEST}}) {
      @sc_lat[$id] = hist($ns);
      @sc_ns[$id] = sum($ns);
      if ($ret < 0) {
        @sc_err[$id] = count();
      }
    }
"""

SYSCALLS_TP = r"""
// syscalls_tp.bt -- the same as syscalls.bt through the per-syscall tracepoints, for
// architectures without a number table here. Keys carry the probe name instead of the number.
// Maps:    @sc_calls[mntns, probe, comm] = count()   (probe = tracepoint:syscalls:sys_enter_<family>)
//          @sc_lat[probe] = hist(ns)   @sc_ns[probe] = sum(ns)   @sc_err[probe] = count()
{{ENTER_PROBES}}
{{SCOPE_PRED}}
{
  @sc_start[tid] = nsecs;
  @sc_calls[curtask->nsproxy->mnt_ns->ns.inum, probe, comm] = count();
}

{{EXIT_PROBES}}
/ @sc_start[tid] /
{
  $ns = nsecs - @sc_start[tid];
  @sc_lat[probe] = hist($ns);
  @sc_ns[probe] = sum($ns);
  if (args->ret < 0) {
    @sc_err[probe] = count();
  }
  delete(@sc_start[tid]);
}
"""

LOCKS = r"""
// locks.bt -- lock contention waits (spinlock, rwsem, mutex ...) with kernel stacks, by CPU.
// Probes:  tracepoint:lock:contention_begin / contention_end (paired per task and lock, so a
//          spinlock wait nested in a mutex slow path does not clobber the outer wait).
//          The stack is taken at contention_begin, while the task waits anyway: contention_end
//          runs with the lock held, and a stack walk there would lengthen the very critical
//          section we measure (and the storm's throughput with it).
//          This variant takes a stack for every wait: it runs when the syscall section is not
//          attached (nothing tells waits inside mount syscalls apart) or stack_sample_every=1.
// Maps:    @lk[cpu, kstack] = stats(wait ns) -> {"count", "average", "total"}
//          The mount-code attribution (fs/namespace.c, fs/pnode.c frames) is done on the stacks
//          in Python: bpftrace cannot match symbol names in the kernel.
// Example: {"type": "stats", "data": {"@lk": {"1,\n    rwsem_down_write_slowpath+...\n": {"count": 3, ...}}}}
tracepoint:lock:contention_begin
{{SCOPE_PRED}}
{
  $addr = args->lock_addr;
  @lk_start[tid, $addr] = nsecs;
  @lk_stack[tid, $addr] = kstack({{STACK_DEPTH}});
}

tracepoint:lock:contention_end
{
  $addr = args->lock_addr;
  $start = @lk_start[tid, $addr];
  if ($start) {
    @lk[cpu, @lk_stack[tid, $addr]] = stats(nsecs - $start);
    delete(@lk_start[tid, $addr]);
    delete(@lk_stack[tid, $addr]);
  }
}
"""

LOCKS_SAMPLED = r"""
// locks_sampled.bt -- lock contention waits with exact totals and sampled kernel stacks.
// Probes:  tracepoint:lock:contention_begin / contention_end, paired per (task, lock) as in
//          locks.bt. A kstack walk costs ~6 us here, so only some waits take one. Each wait
//          falls in one kind, decided at contention_begin:
//            1 = the task is inside a mount-family syscall ({{IN_MOUNT_SYSCALL}})
//            2 = a kernel thread (PF_KTHREAD: RCU workers, ksoftirqd, kworkers)
//            0 = anything else: user tasks outside mount syscalls (exit-time namespace
//                teardown, cleanup_mnt task work, mountinfo reads) -- a stack every time.
//          Kinds 1 and 2 are counted exactly per CPU; the first {{FIRST}} per CPU and kind, then
//          1 in {{EVERY}} at random (bpf_get_prandom_u32), also take a stack. Python splits
//          each kind's exact wait on a CPU by the mount-code share of its sampled stacks.
//          @lk_start holds (nsecs << 3) | kind << 1 | has_stack: one lookup at contention_end.
// Maps:    @lk[cpu, kstack] = stats(wait ns)                 kind 0, exact
//          @lk_tot[kind, cpu] = stats(wait ns)               kinds 1-2, exact totals
//          @lk_smp[kind, cpu, kstack] = stats(wait ns)       kinds 1-2, the sampled waits
//          scratch: @lk_start[tid, lock], @lk_stack[tid, lock], @lk_seq[kind, cpu]
// Example: {"type": "stats", "data": {"@lk_tot": {"1,0": {"count": 5100, "average": 180000, ...}}}}
tracepoint:lock:contention_begin
{{SCOPE_PRED}}
{
  $addr = args->lock_addr;
  $kind = (uint64)0;
  if ({{IN_MOUNT_SYSCALL}}) {
    $kind = 1;
  } else if (curtask->flags & {{PF_KTHREAD}}) {
    $kind = 2;
  }
  $stack = (uint64)1;
  if ($kind != 0) {
    $seen = @lk_seq[$kind, cpu];
    if ($seen < {{FIRST}}) {
      @lk_seq[$kind, cpu] = $seen + 1;
    } else if (rand % {{EVERY}} != 0) {
      $stack = 0;
    }
  }
  if ($stack) {
    @lk_stack[tid, $addr] = kstack({{STACK_DEPTH}});
  }
  @lk_start[tid, $addr] = (nsecs << 3) | ($kind << 1) | $stack;
}

tracepoint:lock:contention_end
{
  $addr = args->lock_addr;
  $value = @lk_start[tid, $addr];
  if ($value) {
    $ns = nsecs - ($value >> 3);
    $kind = ($value >> 1) & 3;
    if ($kind == 0) {
      @lk[cpu, @lk_stack[tid, $addr]] = stats($ns);
      delete(@lk_stack[tid, $addr]);
    } else {
      @lk_tot[$kind, cpu] = stats($ns);
      if ($value & 1) {
        @lk_smp[$kind, cpu, @lk_stack[tid, $addr]] = stats($ns);
        delete(@lk_stack[tid, $addr]);
      }
    }
    delete(@lk_start[tid, $addr]);
  }
}
"""

MOUNTINFO_ENTER = r"""
  // mountinfo.bt -- who reads /proc/<pid>/mountinfo, and how long the reads take.
  // openat(2) of "*/mountinfo" under /proc (self, thread-self, <pid>, <pid>/task/<tid>) or of
  // "mountinfo" relative to an open /proc/<pid> directory; then read(2) and close(2) on those
  // fds only (one map lookup per read/close; nothing else is kept).
  // Maps:    @mi_opens[comm] = count()   @mi_read[comm] = stats(ns)   @mi_bytes[comm] = sum(bytes)
  //          @mi_lat = hist(ns per read)
  // Example: {"type": "map", "data": {"@mi_opens": {"findmnt": 40}}}
  if ($id == {{NR_OPENAT}}) {
    if ({{SCOPE}}) {
      $path = uptr($arg1);
      if (strncmp(str($path, 10), "mountinfo", 10) == 0) {
        @start[tid] = nsecs;
      } else if (strncmp(str($path, 7), "/proc/", 6) == 0) {
        // "/proc/" + pid, "self", "thread-self" or "<pid>/task/<tid>" + "/mountinfo"
        $i = (uint64)7;
        while ($i < 27) {
          if (strncmp(str($path + $i, 11), "/mountinfo", 10) == 0) {
            @start[tid] = nsecs;
            break;
          }
          $i++;
        }
      }
    }
  }
  if ($id == {{NR_READ}}) {
    if (@mi_fd[pid, $arg0]) {
      @start[tid] = nsecs;
    }
  }
  if ($id == {{NR_CLOSE}}) {
    if (@mi_fd[pid, $arg0]) {
      delete(@mi_fd[pid, $arg0]);
    }
  }
"""

MOUNTINFO_EXIT = r"""
    if ($id == {{NR_OPENAT}}) {
      if ($ret >= 0) {
        @mi_fd[pid, (uint64)$ret] = 1;
        @mi_opens[comm] = count();
      }
    }
    if ($id == {{NR_READ}}) {
      @mi_read[comm] = stats($ns);
      @mi_lat = hist($ns);
      if ($ret > 0) {
        @mi_bytes[comm] = sum($ret);
      }
    }
"""

MOUNTINFO_TP = r"""
// mountinfo_tp.bt -- mountinfo.bt (MOUNTINFO_ENTER) through the per-syscall tracepoints.
// Probes:  openat(2) of "*/mountinfo" under /proc (self, thread-self, <pid>, <pid>/task/<tid>)
//          or of "mountinfo" relative to an open /proc/<pid> directory; then read(2) and
//          close(2) on those fds only (a map lookup per read/close; nothing else is kept).
// Maps:    @mi_opens[comm] = count()   @mi_read[comm] = stats(ns)   @mi_bytes[comm] = sum(bytes)
//          @mi_lat = hist(ns per read)
// Example: {"type": "map", "data": {"@mi_opens": {"findmnt": 40}}}
tracepoint:syscalls:sys_enter_openat
{{SCOPE_PRED}}
{
  if (strncmp(str(args->filename, 10), "mountinfo", 10) == 0) {
    @mi_pending[tid] = 1;
  } else if (strncmp(str(args->filename, 7), "/proc/", 6) == 0) {
    // "/proc/" + pid, "self", "thread-self" or "<pid>/task/<tid>" + "/mountinfo"
    $i = 7;
    while ($i < 27) {
      if (strncmp(str(args->filename + $i, 11), "/mountinfo", 10) == 0) {
        @mi_pending[tid] = 1;
        break;
      }
      $i++;
    }
  }
}

tracepoint:syscalls:sys_exit_openat
/ @mi_pending[tid] /
{
  if (args->ret >= 0) {
    @mi_fd[pid, (uint64)args->ret] = 1;
    @mi_opens[comm] = count();
  }
  delete(@mi_pending[tid]);
}

tracepoint:syscalls:sys_enter_read
/ @mi_fd[pid, (uint64)args->fd] /
{
  @mi_rstart[tid] = nsecs;
}

tracepoint:syscalls:sys_exit_read
/ @mi_rstart[tid] /
{
  $ns = nsecs - @mi_rstart[tid];
  @mi_read[comm] = stats($ns);
  @mi_lat = hist($ns);
  if (args->ret > 0) {
    @mi_bytes[comm] = sum(args->ret);
  }
  delete(@mi_rstart[tid]);
}

tracepoint:syscalls:sys_enter_close
/ @mi_fd[pid, (uint64)args->fd] /
{
  delete(@mi_fd[pid, (uint64)args->fd]);
}
"""

KFUNC = r"""
// kfuncs.bt -- call counts of propagation/namespace functions (only where kprobes or kfuncs
// exist; the symbol may carry a .isra.N/.constprop.N suffix, resolved from /proc/kallsyms).
// Maps:    @kf_calls[name] = count()
// Example: {"type": "map", "data": {"@kf_calls": {"get_dominating_id": 120331}}}
{{ATTACH}}
{{SCOPE_PRED}}
{
  @kf_calls["{{NAME}}"] = count();
}
"""

FOOTER = r"""
// footer.bt -- bounded inside: exit after {{DURATION}} s; END prints the result maps in a
// fixed order and clears every map, so nothing else is dumped.
interval:s:{{DURATION}}
{
  @elapsed_ns = nsecs - @t0;
  exit();
}

END
{
  // Stopped by SIGINT (the outer timeout) instead of the interval: measure up to now.
  if (@elapsed_ns == 0) {
    @elapsed_ns = nsecs - @t0;
  }
  print(@elapsed_ns);
{{PRINTS}}
{{CLEARS}}
}
"""

# Result maps printed in END, per section, in this order. Every other map the program uses is
# scratch and is cleared without printing.
SECTION_MAPS = {
    "syscalls": ("@sc_calls", "@sc_lat", "@sc_ns", "@sc_err"),
    "locks": ("@lk",),
    "locks_sampled": ("@lk", "@lk_tot", "@lk_smp"),
    "mountinfo": ("@mi_opens", "@mi_read", "@mi_bytes", "@mi_lat"),
    "kfuncs": ("@kf_calls",),
}
_MAP_RE = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*")

# Nested pid namespaces below the scope namespace that still count as "inside" (containers in
# a lab host, pods in a sandbox). bpftrace 0.17 cannot index the flexible upid array, so the
# ancestry is walked through ->parent a fixed number of times.
SCOPE_DEPTH = 4


def scope_condition(pidns_inum):
    """Predicate text: the task's pid namespace is ``pidns_inum`` or nested below it."""
    path = "curtask->nsproxy->pid_ns_for_children"
    terms = []
    for _level in range(SCOPE_DEPTH):
        terms.append("%s->ns.inum == %d" % (path, int(pidns_inum)))
        path += "->parent"
    return " || ".join(terms)


def _predicate(condition):
    return "/ %s /" % condition if condition else ""


def number_test(numbers, variable="$id"):
    """``$id == 272 || ($id >= 428 && $id <= 433) || ...``: consecutive numbers as ranges.

    Shorter than one comparison per number, which matters: bpftrace 0.17's compile time grows
    with the length of a ``||`` chain.
    """
    terms = [
        "%s == %d" % (variable, first)
        if first == last
        else "(%s >= %d && %s <= %d)" % (variable, first, variable, last)
        for first, last in consecutive_runs(numbers)
    ]
    return " || ".join(terms)


def build_program(
    duration,
    families=(),
    locks=False,
    mountinfo=False,
    kfuncs=None,
    pidns_inum=None,
    numbers=None,
    stack_sample_every=None,
):
    """Join the fragments for what the host supports into one bpftrace program.

    ``families``: syscall families to trace; ``numbers``: this architecture's row of
    SYSCALL_NUMBERS (raw_syscalls programs) or None (per-syscall tracepoints); ``kfuncs``: list
    of ``(name, attach_point)`` such as ``("get_dominating_id", "kprobe:get_dominating_id.isra.0")``;
    ``pidns_inum``: restrict every probe to that pid namespace (and nested ones);
    ``stack_sample_every``: N > 1 samples the stacks of lock waits inside mount-family syscalls
    and in kernel threads, 1 in N (LOCKS_SAMPLED; needs ``families``); None or 1: a stack for
    every wait (LOCKS).
    """
    duration = int(duration)
    if duration < 1:
        raise ValueError("duration must be at least 1 second")
    condition = scope_condition(pidns_inum) if pidns_inum else ""
    pred = _predicate(condition)
    sections = []
    parts = [_fill(HEADER, DURATION=str(duration), SCOPE_TEXT=_scope_text(pidns_inum))]
    enter, leave = [], []
    if families and numbers:
        nr_test = number_test([numbers[f] for f in families])
        enter.append(
            _fill(
                SYSCALLS_ENTER,
                NR_TEST=nr_test,
                SCOPE=condition or "1",
                IN_MOUNT_BIT=_hex(IN_MOUNT_SYSCALL_BIT),
            )
        )
        leave.append(_fill(SYSCALLS_EXIT, NR_TEST=nr_test))
        sections.append("syscalls")
    elif families:
        parts.append(
            _fill(
                SYSCALLS_TP,
                ENTER_PROBES=",\n".join("tracepoint:syscalls:sys_enter_%s" % f for f in families),
                EXIT_PROBES=",\n".join("tracepoint:syscalls:sys_exit_%s" % f for f in families),
                SCOPE_PRED=pred,
            )
        )
        sections.append("syscalls")
    if mountinfo and numbers:
        nrs = {
            "NR_OPENAT": str(numbers["openat"]),
            "NR_READ": str(numbers["read"]),
            "NR_CLOSE": str(numbers["close"]),
        }
        enter.append(_fill(MOUNTINFO_ENTER, SCOPE=condition or "1", **nrs))
        leave.append(_fill(MOUNTINFO_EXIT, **nrs))
        sections.append("mountinfo")
    elif mountinfo:
        parts.append(_fill(MOUNTINFO_TP, SCOPE_PRED=pred))
        sections.append("mountinfo")
    if enter:
        parts.append(
            _fill(
                RAW_SYSCALLS,
                ENTER="".join(enter).rstrip("\n"),
                EXIT="".join(leave).rstrip("\n"),
                TIME_MASK=_hex(IN_MOUNT_SYSCALL_BIT - 1),
            )
        )
    if locks and families and stack_sample_every and int(stack_sample_every) > 1:
        # raw_syscalls layout: @start carries the mount-syscall bit; per-syscall layout:
        # @sc_start holds mount-family syscalls only.
        in_mount = "@start[tid] >= %s" % _hex(IN_MOUNT_SYSCALL_BIT) if numbers else "@sc_start[tid]"
        parts.append(
            _fill(
                LOCKS_SAMPLED,
                SCOPE_PRED=pred,
                STACK_DEPTH=str(STACK_DEPTH),
                IN_MOUNT_SYSCALL=in_mount,
                PF_KTHREAD="0x00200000",
                FIRST=str(STACK_SAMPLE_FIRST),
                EVERY=str(int(stack_sample_every)),
            )
        )
        sections.append("locks_sampled")
    elif locks:
        parts.append(_fill(LOCKS, SCOPE_PRED=pred, STACK_DEPTH=str(STACK_DEPTH)))
        sections.append("locks")
    if kfuncs:
        for name, attach in kfuncs:
            parts.append(_fill(KFUNC, ATTACH=attach, NAME=name, SCOPE_PRED=pred))
        sections.append("kfuncs")
    if not sections:
        raise ValueError("nothing to probe: no section is available")
    body = "\n".join(p.strip("\n") + "\n" for p in parts)
    printed = [m for section in sections for m in SECTION_MAPS[section]]
    used = sorted(set(_MAP_RE.findall(_strip_comments(body))) - set(printed) - {"@t0"})
    prints = ["  print(%s);" % m for m in printed]
    clears = ["  clear(%s);" % m for m in ["@t0", "@elapsed_ns"] + printed + used]
    footer = _fill(FOOTER, DURATION=str(duration), PRINTS="\n".join(prints), CLEARS="\n".join(clears))
    return body + "\n" + footer.strip("\n") + "\n"


def _hex(value):
    return "0x%x" % value


def _strip_comments(text):
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def _scope_text(pidns_inum):
    if not pidns_inum:
        return "whole host"
    return "tasks in pid namespace %d or nested up to %d levels below it" % (int(pidns_inum), SCOPE_DEPTH - 1)


def _fill(template, **values):
    text = template
    for key, value in values.items():
        text = text.replace("{{%s}}" % key, value)
    if "{{" in text:
        raise ValueError("unfilled placeholder in program fragment: %s" % text[text.index("{{") :][:40])
    return text


def main(argv):
    """Print the full program (all sections) for hand use: ``[DURATION] [--kprobes] [--tracepoints]``."""
    args = [a for a in argv[1:] if not a.startswith("--")]
    duration = int(args[0]) if args else 10
    kfuncs = [(n, "kprobe:%s" % n) for n in KERNEL_FUNCTIONS] if "--kprobes" in argv else None
    numbers = None if "--tracepoints" in argv else SYSCALL_NUMBERS.get(os.uname().machine)
    sys.stdout.write(
        build_program(
            duration,
            SYSCALL_FAMILIES,
            locks=True,
            mountinfo=True,
            kfuncs=kfuncs,
            numbers=numbers,
            stack_sample_every=STACK_SAMPLE_EVERY,
        )
    )
    return 0


if __name__ == "__main__":
    main(sys.argv)

"""contention_probe: overhead on a mount storm, and time from module start to result.

Two rows, each against a baseline measured in the same run:

- overhead: throughput (mount+umount+unshare operations per second) of a fixed mount storm
  (``tests/probe_workload.py storm``: 4 processes in private namespaces, 2.5 s) with the probe's
  full program attached (whole host, every section this kernel supports, as the module runs it
  by default) vs without. Runs alternate in ABBA order so that load from other processes hits
  both sides alike; the ratio of the medians is reported. Target >= 0.90. A diagnostic row
  gives the storm's CPU time per operation (inverse ratio): BPF runs in the traced task, so
  this is the probe's cost without the share of the CPUs that other jobs take.
- time to result: the module run as its own process (``python -m ...contention_probe ARGS``, as
  AnsiballZ runs it, minus the controller) for a DURATION-second probe, wall time from start to
  its JSON result vs DURATION. Target <= 1.3.

Needs root and bpftrace; exits 1 when it cannot measure, 2 when a row misses its target.

Usage: python bench/bench_probe.py [--pairs N] [--storm-seconds S] [--duration D]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, ".collections"), REPO]

from ansible_collections.mountops.fleet.plugins.module_utils import _probe_programs as programs  # noqa: E402
from tests.probe_workload import Host  # noqa: E402

OVERHEAD_TARGET = 0.90
TTR_TARGET = 1.3
ATTACH_SETTLE_S = 1.5  # after "attached_probes": bpftrace attaches the probes one by one


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def storm_rate(seconds, workers):
    """(ops per second, CPU microseconds per op) of one storm.

    The CPU time is the whole scenario's (its pid namespace is reaped before wait() returns, so
    RUSAGE_CHILDREN holds it). BPF programs run in the context of the task that hits the probe,
    so their cost lands here; what other jobs on the machine take from our share does not.
    """
    host = Host("storm", seconds, workers=workers)
    before = _children_cpu()
    with host:
        result = host.wait(timeout=seconds + 30)
    cpu = _children_cpu() - before
    return result["ops"] / seconds, cpu * 1e6 / max(result["ops"], 1)


BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"
PROG_TYPES = {"5": "tracepoint", "7": "perf_event", "1": "socket_filter", "2": "kprobe", "26": "tracing"}


def bpf_programs(pid):
    """run_time_ns/run_cnt/verified_insns of every BPF program ``pid`` holds, from fdinfo."""
    found = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as handle:
                fields = dict(line.split(":", 1) for line in handle.read().splitlines() if ":" in line)
        except OSError:
            continue
        if "prog_type" in fields:
            found.append(
                {
                    "type": PROG_TYPES.get(fields["prog_type"].strip(), fields["prog_type"].strip()),
                    "insns": fields.get("verified_insns", "?").strip(),
                    "ns": int(fields.get("run_time_ns", "0")),
                    "runs": int(fields.get("run_cnt", "0")),
                }
            )
    return found


def probed_storm_rate(bpftrace, program, seconds, workers, breakdown=None):
    """Like storm_rate with the probe attached; with ``breakdown`` (a list), append per-program
    BPF run time during the storm (needs kernel.bpf_stats_enabled=1)."""
    with tempfile.NamedTemporaryFile("w", suffix=".bt", delete=False) as source:
        source.write(program)
    tracer = subprocess.Popen(
        [bpftrace, "-f", "json", source.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        first = tracer.stdout.readline()
        if b"attached_probes" not in first:
            raise RuntimeError("bpftrace did not start: %r" % first)
        time.sleep(ATTACH_SETTLE_S)
        before = bpf_programs(tracer.pid) if breakdown is not None else []
        rate = storm_rate(seconds, workers)
        if breakdown is not None:
            ops = rate[0] * seconds
            for old, new in zip(before, bpf_programs(tracer.pid)):
                runs = new["runs"] - old["runs"]
                spent = new["ns"] - old["ns"]
                breakdown.append(
                    {
                        "type": new["type"],
                        "insns": new["insns"],
                        "runs_per_op": runs / ops,
                        "ns_per_run": spent / runs if runs else 0.0,
                        "ns_per_op": spent / ops,
                    }
                )
        os.killpg(tracer.pid, signal.SIGINT)
        out, _err = tracer.communicate(timeout=30)
        if b"@sc_calls" not in out:
            raise RuntimeError("the probe measured nothing")
        return rate
    finally:
        os.unlink(source.name)
        if tracer.poll() is None:
            os.killpg(tracer.pid, signal.SIGKILL)
            tracer.communicate()


def full_program(duration):
    """The program the module builds by default on this host (all sections it supports)."""
    numbers = programs.SYSCALL_NUMBERS.get(os.uname().machine)
    return programs.build_program(
        duration,
        programs.SYSCALL_FAMILIES,
        locks=True,
        mountinfo=True,
        numbers=numbers,
        stack_sample_every=programs.STACK_SAMPLE_EVERY,
    )


def time_to_result(duration):
    workdir = tempfile.mkdtemp(prefix="bench-probe-")
    try:
        args = os.path.join(workdir, "args.json")
        with open(args, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": {"duration": duration}}, handle)
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, ".collections"))
        cmd = [
            sys.executable,
            "-m",
            "ansible_collections.mountops.fleet.plugins.modules.contention_probe",
            args,
        ]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=duration + 60, check=False)
        wall = time.perf_counter() - start
        result = json.loads(done.stdout)
        if result.get("failed") or not result["run"]["complete"]:
            raise RuntimeError("module run failed: %s" % result.get("msg"))
        return wall, result["run"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--storm-seconds", type=float, default=2.5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--ttr-runs", type=int, default=1)
    parser.add_argument(
        "--bpf-stats",
        action="store_true",
        help="also run one probed storm with kernel.bpf_stats_enabled=1 (restored after) and print "
        "the BPF time per storm operation, per program",
    )
    args = parser.parse_args()
    bpftrace = shutil.which("bpftrace")
    if os.geteuid() != 0 or bpftrace is None:
        print("needs root and bpftrace: nothing measured")
        return 1

    program = full_program(int(args.storm_seconds + ATTACH_SETTLE_S + 30))
    without, with_probe = [], []
    for pair in range(args.pairs):
        # ABBA order: a drift in the machine's load (other jobs) hits both sides alike.
        for probed in (False, True) if pair % 2 == 0 else (True, False):
            if probed:
                with_probe.append(probed_storm_rate(bpftrace, program, args.storm_seconds, args.workers))
            else:
                without.append(storm_rate(args.storm_seconds, args.workers))
    base = statistics.median(run[0] for run in without)
    probed = statistics.median(run[0] for run in with_probe)
    overhead = probed / base
    base_cpu = statistics.median(run[1] for run in without)
    probed_cpu = statistics.median(run[1] for run in with_probe)

    walls, runs = [], []
    for _run in range(args.ttr_runs):
        wall, run = time_to_result(args.duration)
        walls.append(wall)
        runs.append(run)
    wall = statistics.median(walls)
    ttr = wall / args.duration

    rows = [
        (
            "storm ops/s, probe attached vs not",
            "%.0f" % probed,
            "%.0f" % base,
            overhead,
            ">= %.2f" % OVERHEAD_TARGET,
        ),
        (
            "  (diagnostic) storm CPU us/op, inverse",
            "%.1f" % probed_cpu,
            "%.1f" % base_cpu,
            base_cpu / probed_cpu,
            "",
        ),
        (
            "module start->result, %d s probe" % args.duration,
            "%.2f s" % wall,
            "%d s" % args.duration,
            ttr,
            "<= %.2f" % TTR_TARGET,
        ),
    ]
    print("%-38s %12s %12s %7s %8s" % ("metric", "measured", "baseline", "ratio", "target"))
    for name, measured, baseline, ratio, target in rows:
        print("%-38s %12s %12s %7.3f %8s" % (name, measured, baseline, ratio, target))
    print(
        "storm runs without: %s; with: %s; bpftrace wall %s s (measured %s s)"
        % (
            ", ".join("%.0f" % run[0] for run in without),
            ", ".join("%.0f" % run[0] for run in with_probe),
            ", ".join("%.2f" % r["wall_s"] for r in runs),
            ", ".join("%.2f" % r["measured_s"] for r in runs),
        )
    )
    if args.bpf_stats:
        print_bpf_breakdown(bpftrace, program, args, base_cpu)
    return 0 if overhead >= OVERHEAD_TARGET and ttr <= TTR_TARGET else 2


def print_bpf_breakdown(bpftrace, program, args, base_cpu):
    with open(BPF_STATS) as handle:
        previous = handle.read().strip()
    breakdown = []
    try:
        with open(BPF_STATS, "w") as handle:
            handle.write("1")
        probed_storm_rate(bpftrace, program, args.storm_seconds, args.workers, breakdown)
    finally:
        with open(BPF_STATS, "w") as handle:
            handle.write(previous)
    print("BPF time per storm operation (kernel.bpf_stats_enabled, one probed storm):")
    print("%-12s %6s %12s %12s %12s" % ("program", "insns", "runs/op", "ns/run", "ns/op"))
    for prog in breakdown:
        print(
            "%-12s %6s %12.2f %12.0f %12.0f"
            % (prog["type"], prog["insns"], prog["runs_per_op"], prog["ns_per_run"], prog["ns_per_op"])
        )
    total = sum(p["ns_per_op"] for p in breakdown) / 1000.0
    print(
        "total %.2f us/op on a %.1f us/op (CPU) baseline: expected throughput ratio %.3f"
        % (total, base_cpu, base_cpu / (base_cpu + total))
    )


if __name__ == "__main__":
    sys.exit(main())

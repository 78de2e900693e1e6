"""The SSH lab at scale, and the fleet audit against Ansible's own fact gathering, in one run.

1. Bring up 50 lab hosts (the default scenario mix, round-robin): wall time per host, and
   memory per host from each host's memory cgroup (its processes, tmpfs, kernel mount and
   namespace structures) and from the machine's MemAvailable drop.
2. Over 20 of those hosts with forks=20: ``playbooks/audit.yml`` vs a baseline playbook that
   runs only ``ansible.builtin.setup`` (default fact gathering) on the same hosts. The two are
   interleaved (baseline, audit, baseline, audit, ...) after one warm-up each, so connection
   reuse (ControlPersist) and load from other processes hit both alike; medians are compared.
   Target: audit <= 1.0x the setup baseline. Exits 2 when it misses.

Usage: python bench/bench_lab.py [--hosts 50] [--fleet 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.lab.lab import DEFAULT_MIX, Lab, parse_host_specs  # noqa: E402

TARGET = 1.0
BASELINE = """\
- name: Baseline - Ansible's default fact gathering only
  hosts: "{{ target | default('all') }}"
  gather_facts: false
  tasks:
    - name: Gather default facts
      ansible.builtin.setup:
"""


# Informational: the audit's fact module alone, to separate its cost from the report writing.
MODULE_ONLY = """\
- name: The audit's fact module alone
  hosts: "{{ target | default('all') }}"
  gather_facts: false
  tasks:
    - name: Collect propagation facts
      mountops.fleet.propagation_facts:
"""


def report_namespaces(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["mount_propagation"]["summary"]["namespaces"]


def mem_available():
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def playbook(lab, path, forks, target, extra=()):
    argv = [
        os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        "-i",
        lab.inventory,
        "-f",
        str(forks),
        path,
        "-e",
        "target=%s" % target,
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, env=lab.env(), cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (path, done.returncode, done.stdout[-3000:]))
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--fleet", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_lab: needs root (namespaces, mounts, cgroups); nothing measured")
        return 0

    before = mem_available()
    started = time.perf_counter()
    lab = Lab.up(args.hosts, parse_host_specs(DEFAULT_MIX), persistent=False, timeout=600)
    bringup = time.perf_counter() - started
    try:
        time.sleep(1.0)  # let page cache and slab settle before reading memory
        drop = before - mem_available()
        per_host = [lab.memory_bytes(name) or 0 for name in lab.names]
        by_kind = {}
        for host, mem in zip(lab.state["hosts"], per_host):
            by_kind.setdefault(host["spec"], []).append(mem)

        fleet = lab.names[: args.fleet]
        target = ":".join(fleet)
        baseline_path = os.path.join(lab.path, "setup_baseline.yml")
        with open(baseline_path, "w", encoding="utf-8") as handle:
            handle.write(BASELINE)
        module_path = os.path.join(lab.path, "module_only.yml")
        with open(module_path, "w", encoding="utf-8") as handle:
            handle.write(MODULE_ONLY)
        audit_path = os.path.join(REPO, "playbooks", "audit.yml")
        reports = os.path.join(lab.path, "reports")
        audit_extra = ("-e", "audit_report_dir=%s" % reports)
        forks = args.fleet
        playbook(lab, baseline_path, forks, target)  # warm-up: ControlPersist masters, caches
        playbook(lab, audit_path, forks, target, audit_extra)
        setup_times, audit_times, module_times = [], [], []
        for _run in range(args.runs):
            setup_times.append(playbook(lab, baseline_path, forks, target))
            audit_times.append(playbook(lab, audit_path, forks, target, audit_extra))
            module_times.append(playbook(lab, module_path, forks, target))
        namespaces = sum(report_namespaces(os.path.join(reports, n + ".json")) for n in fleet)
    finally:
        left = lab.down()

    setup_med, audit_med = statistics.median(setup_times), statistics.median(audit_times)
    ratio = audit_med / setup_med
    mib = 2**20
    print("## SSH lab: %d hosts, default mix (%s)" % (args.hosts, ", ".join(DEFAULT_MIX)))
    print()
    print("| measure | value |")
    print("|---|---|")
    print("| bring-up, all hosts | %.1f s |" % bringup)
    print("| bring-up per host | %.0f ms |" % (bringup / args.hosts * 1000))
    print(
        "| memory per host, cgroup (mean / min / max) | %.1f / %.1f / %.1f MiB |"
        % (statistics.mean(per_host) / mib, min(per_host) / mib, max(per_host) / mib)
    )
    print("| memory per host, MemAvailable drop / hosts | %.1f MiB |" % (drop / args.hosts / mib))
    print("| teardown leftovers | %s |" % ("none" if not left else "; ".join(left)))
    print()
    print("| host kind | hosts | memory per host (cgroup, mean) |")
    print("|---|---|---|")
    for kind, values in sorted(by_kind.items()):
        print("| %s | %d | %.1f MiB |" % (kind, len(values), statistics.mean(values) / mib))
    print()
    print(
        "## Fleet audit vs ansible.builtin.setup: %d hosts, forks=%d, median of %d interleaved runs"
        % (len(fleet), forks, args.runs)
    )
    print()
    print("| playbook | median wall time | runs |")
    print("|---|---|---|")
    print(
        "| ansible.builtin.setup (baseline) | %.2f s | %s |"
        % (setup_med, ", ".join("%.2f" % t for t in setup_times))
    )
    print(
        "| playbooks/audit.yml (%d namespaces) | %.2f s | %s |"
        % (namespaces, audit_med, ", ".join("%.2f" % t for t in audit_times))
    )
    print(
        "| propagation_facts task alone (informational) | %.2f s | %s |"
        % (statistics.median(module_times), ", ".join("%.2f" % t for t in module_times))
    )
    print("| **ratio audit / setup** | **%.2fx** (target <= %.1fx) | |" % (ratio, TARGET))
    if left:
        return 1
    return 0 if ratio <= TARGET else 2


if __name__ == "__main__":
    sys.exit(main())

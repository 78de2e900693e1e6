"""numa_facts on a 2-socket 384-CPU tree (EPYC 9654 NPS2, SMT on) vs `lscpu --sysroot <tree> -J`.

Both read the same fixture tree in the same run; runs are interleaved so that load from other
processes hits both sides alike, and the median of N runs is reported. Two rows:

- in-process: the collector and analysis (`numa_facts()`), what the module adds to a run;
- fresh process: a new Python interpreter that imports the core, collects and serialises JSON,
  against one lscpu process: interpreter start-up included on our side (informational).

Exits 2 when the in-process row misses the target.

Usage: python bench/bench_numa.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, ".collections"), REPO]

from ansible_collections.mountops.fleet.plugins.module_utils._numa import numa_facts  # noqa: E402
from tests.unit.numa_fixtures import LAYOUTS, build_tree  # noqa: E402

LAYOUT = "genoa_9654_nps2"
TARGET = 1.0

CHILD = (
    "import json, sys; sys.path.insert(0, sys.argv[1]);"
    "from ansible_collections.mountops.fleet.plugins.module_utils._numa import numa_facts;"
    "json.dumps(numa_facts(sys.argv[2], sys.argv[3]))"
)


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    lscpu = shutil.which("lscpu")
    if lscpu is None:
        print("lscpu not found: no baseline, nothing measured")
        return 1

    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    base = tempfile.mkdtemp(prefix="bench-numa-", dir=shm)
    try:
        root = build_tree(LAYOUTS[LAYOUT], os.path.join(base, LAYOUT))
        sysfs, procfs = os.path.join(root, "sys"), os.path.join(root, "proc")
        facts = numa_facts(sysfs, procfs)
        assert facts["cpus"]["online_count"] == 384 and not facts["warnings"], facts["warnings"]
        collections = os.path.join(REPO, ".collections")

        def ours_inproc():
            numa_facts(sysfs, procfs)

        def ours_process():
            subprocess.run([sys.executable, "-c", CHILD, collections, sysfs, procfs], check=True)

        def baseline():
            subprocess.run([lscpu, "--sysroot", root, "-J"], check=True, stdout=subprocess.DEVNULL)

        samples = {"in": [], "proc": [], "lscpu": []}
        baseline()  # warm the page cache for both sides
        for _run in range(args.runs):
            samples["in"].append(timed(ours_inproc))
            samples["proc"].append(timed(ours_process))
            samples["lscpu"].append(timed(baseline))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    lscpu_ms = statistics.median(samples["lscpu"]) * 1000
    rows = [
        ("numa_facts in-process", statistics.median(samples["in"]) * 1000),
        ("numa_facts fresh process", statistics.median(samples["proc"]) * 1000),
    ]
    print("numa_facts vs lscpu --sysroot -J, %s (384 CPUs, 4 nodes), median of %d" % (LAYOUT, args.runs))
    print("%-26s %10s %10s %7s %8s" % ("measurement", "ours ms", "lscpu ms", "ratio", "target"))
    for label, ours_ms in rows:
        ratio = ours_ms / lscpu_ms
        print("%-26s %10.1f %10.1f %6.2fx %7s" % (label, ours_ms, lscpu_ms, ratio, "<=%.1fx" % TARGET))
    # the exit status follows the in-process row only: the fresh-process row is dominated by
    # interpreter start-up and too close to 1.0x on a loaded 2-core machine to gate `make bench`
    return 0 if rows[0][1] / lscpu_ms <= TARGET else 2


if __name__ == "__main__":
    sys.exit(main())

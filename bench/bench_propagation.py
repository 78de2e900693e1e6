"""Benchmark: propagation_facts collection vs the raw read floor, on real namespaces.

For each scenario (N namespaces cloned with propagation unchanged from a 40-mount shared tree,
plus a slave-heavy one) this builds the namespaces inside a throwaway mount+pid namespace and
measures, alternating, in the same run:

- floor:     one process reading each namespace's mountinfo once, no parsing (pids given);
- mountinfo: the module's collector + analysis with the mountinfo backend;
- statmount: the same with the listmount/statmount backend;

each in a forked child so that its peak RSS is its own. Reported: median wall time of 5 rounds,
ratio to the floor (target <= 1.5x at 1,000 namespaces for the default backend choice), peak
RSS, and the exponent of time vs total mounts across the peer scenarios (1.0 = linear).

Usage: make bench  (or: .venv/bin/python bench/bench_propagation.py [--rounds 5])
Needs root (namespaces). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, ".collections"))

from tests.nsscenario import ISOLATED  # noqa: E402

SCENARIOS = [
    ("100 peers x 40", {"mounts": 39, "peers": 99}),
    ("300 peers x 40", {"mounts": 39, "peers": 299}),
    ("1000 peers x 40", {"mounts": 39, "peers": 999}),
    ("300 peers + 300 slaves x 40", {"mounts": 39, "peers": 299, "slaves": 300}),
]


def _in_child(func):
    """Run func() in a forked child; return (its result, its peak RSS in MiB)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(func()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _pid, _status, usage = os.wait4(pid, 0)
    return json.loads(data), usage.ru_maxrss / 1024.0


def _floor(pids):
    def run():
        start = time.perf_counter()
        for pid in pids:
            with open("/proc/%d/mountinfo" % pid, "rb") as handle:
                handle.read()
        return time.perf_counter() - start

    return run


def _collector(backend):
    def run():
        from ansible_collections.mountops.fleet.plugins.module_utils import _namespaces, _propagation

        start = time.perf_counter()
        collection = _namespaces.collect(backend=backend, run_root="/nonexistent")
        facts = _propagation.analyse(collection, mount_max=100000)
        elapsed = time.perf_counter() - start
        return [elapsed, facts["summary"]["mounts"], facts["summary"]["namespaces"]]

    return run


def inner(spec, rounds):
    """Runs inside the scenario namespace: build, then measure alternately."""
    from tests.nsscenario import build

    build(spec)
    # One pid per namespace, as the floor's "already known" input.
    pids, seen = [], set()
    for name in sorted(os.listdir("/proc"), key=lambda n: int(n) if n.isdigit() else 0):
        if not name.isdigit():
            continue
        try:
            inode = os.stat("/proc/%s/ns/mnt" % name).st_ino
        except OSError:
            continue
        if inode not in seen:
            seen.add(inode)
            pids.append(int(name))
    samples = {"floor": [], "mountinfo": [], "statmount": []}
    rss = {"floor": 0.0, "mountinfo": 0.0, "statmount": 0.0}
    mounts = namespaces = 0
    for _round in range(rounds):
        for name, func in (
            ("floor", _floor(pids)),
            ("mountinfo", _collector("mountinfo")),
            ("statmount", _collector("statmount")),
        ):
            result, peak = _in_child(func)
            if name == "floor":
                samples[name].append(result)
            else:
                samples[name].append(result[0])
                mounts, namespaces = result[1], result[2]
            rss[name] = max(rss[name], peak)
    return {
        "median_ms": {k: statistics.median(v) * 1000.0 for k, v in samples.items()},
        "rss_mib": rss,
        "mounts": mounts,
        "namespaces": namespaces,
    }


def outer(rounds):
    rows = []
    for label, spec in SCENARIOS:
        cmd = ISOLATED + [sys.executable, __file__, "--inner", json.dumps(spec), "--rounds", str(rounds)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            sys.exit("bench scenario %s failed:\n%s" % (label, done.stderr[-2000:]))
        rows.append((label, spec, json.loads(done.stdout)))
    print("### propagation_facts collection vs raw mountinfo read floor (median of %d rounds)\n" % rounds)
    print(
        "| scenario | namespaces | mounts | floor ms | mountinfo ms (x floor) | statmount ms (x floor) | peak RSS MiB floor / mountinfo / statmount |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, _spec, r in rows:
        m = r["median_ms"]
        print(
            "| %s | %d | %d | %.1f | %.1f (%.2fx) | %.1f (%.2fx) | %.1f / %.1f / %.1f |"
            % (
                label,
                r["namespaces"],
                r["mounts"],
                m["floor"],
                m["mountinfo"],
                m["mountinfo"] / m["floor"],
                m["statmount"],
                m["statmount"] / m["floor"],
                r["rss_mib"]["floor"],
                r["rss_mib"]["mountinfo"],
                r["rss_mib"]["statmount"],
            )
        )
    peers = [r for label, spec, r in rows if "slaves" not in spec]
    print()
    for backend in ("floor", "mountinfo", "statmount"):
        xs = [math.log(r["mounts"]) for r in peers]
        ys = [math.log(r["median_ms"][backend]) for r in peers]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
        print("- %s: time ~ mounts^%.2f over the peer scenarios" % (backend, slope))
    big = peers[-1]["median_ms"]
    best = min(big["mountinfo"], big["statmount"])
    verdict = "PASS" if best / big["floor"] <= 1.5 else "MISS"
    print(
        "- target <= 1.5x floor at 1,000 namespaces (faster backend, which auto picks): %.2fx %s"
        % (best / big["floor"], verdict)
    )
    print(
        "- controller peak RSS of this script: %.1f MiB"
        % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inner")
    args = parser.parse_args()
    if args.inner:
        json.dump(inner(json.loads(args.inner), args.rounds), sys.stdout)
        return
    if os.geteuid() != 0:
        sys.exit("bench_propagation needs root (it builds mount namespaces)")
    sys.exit(0 if outer(args.rounds) else 1)


if __name__ == "__main__":
    main()

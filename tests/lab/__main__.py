"""``python -m tests.lab up|down|status|demo`` (``make lab-up``, ``make lab-down``, ``make demo``)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from tests.lab.lab import (
    DEFAULT_MIX,
    REPO,
    Lab,
    LabError,
    down_all,
    known_labs,
    owner_alive,
    parse_host_specs,
)


def log(message):
    print("lab: %s" % message, file=sys.stderr, flush=True)


def cmd_up(args):
    specs = parse_host_specs(args.scenarios or DEFAULT_MIX)
    lab = Lab.up(args.hosts, specs, persistent=True, log=log if args.verbose else None)
    print_lab(lab)
    print("\ninventory: %s" % lab.inventory)
    print(
        "try:      ANSIBLE_CONFIG=%s/ansible.cfg .venv/bin/ansible-playbook -i %s playbooks/audit.yml"
        % (REPO, lab.inventory)
    )
    print("down:     make lab-down")
    return 0


def print_lab(lab):
    state = lab.state
    print(
        "lab %s: %d hosts up in %.1fs (%s)"
        % (state["id"], len(state["hosts"]), state.get("bringup_seconds", 0), lab.path)
    )
    for host in state["hosts"]:
        memory = lab.memory_bytes(host["name"])
        print(
            "  %-7s 127.0.0.1:%-5d %-55s %s"
            % (
                host["name"],
                host["port"],
                host["spec"],
                "%.1f MiB" % (memory / 2**20) if memory else "",
            )
        )


def cmd_down(args):
    results = down_all(include_live=args.all, log=log)
    if not results:
        log("no lab of this checkout is running")
    bad = {lab: left for lab, left in results.items() if left}
    for lab_id, left in bad.items():
        log("lab %s left: %s" % (lab_id, "; ".join(left)))
    if not bad and results:
        log("all clean: no processes, cgroups, ports, namespaces, mounts or run dirs left")
    return 1 if bad else 0


def cmd_status(args):
    labs = known_labs()
    if not labs:
        print("no lab of this checkout")
    for lab in labs:
        owner = "persistent" if lab.state.get("persistent") else "owned by pid %s" % lab.state["owner"]["pid"]
        alive = owner_alive(lab.state)
        print(
            "%s (%s%s)"
            % (lab.state["id"], owner, "" if alive or lab.state.get("persistent") else ", owner gone: stray")
        )
        if args.json:
            print(json.dumps(lab.state, indent=1, sort_keys=True))
        elif lab.state.get("complete"):
            print_lab(lab)
    return 0


def cmd_demo(args):
    """Lab up -> fleet audit over SSH -> report -> lab down, whatever happens in between."""
    report_dir = os.path.join(REPO, "reports", "lab-demo")
    log("bringing up %d lab hosts (%s)" % (args.hosts, ", ".join(DEFAULT_MIX)))
    lab = Lab.up(args.hosts, parse_host_specs(DEFAULT_MIX), persistent=False)
    try:
        print_lab(lab)
        log("auditing the fleet over SSH")
        started = time.monotonic()
        done = subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                "-i",
                lab.inventory,
                os.path.join(REPO, "playbooks", "audit.yml"),
                "-e",
                "audit_report_dir=%s" % report_dir,
            ],
            env=lab.env(),
            cwd=REPO,
            check=False,
        )
        log("audit finished in %.1fs (rc %d)" % (time.monotonic() - started, done.returncode))
        summary = os.path.join(report_dir, "summary.txt")
        if os.path.exists(summary):
            with open(summary, encoding="utf-8") as handle:
                print(handle.read())
        log("report: %s" % report_dir)
        return done.returncode
    finally:
        left = lab.down()
        log("lab down%s" % (": " + "; ".join(left) if left else ", nothing left behind"))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring up N lab hosts and write their inventory")
    up.add_argument("--hosts", type=int, default=5)
    up.add_argument(
        "--scenarios",
        nargs="*",
        help="one item per host, round-robin: scenario[:count][+scenario...] (default: %s)"
        % " ".join(DEFAULT_MIX),
    )
    up.add_argument("-v", "--verbose", action="store_true")
    down = sub.add_parser("down", help="take down this checkout's persistent labs and strays")
    down.add_argument("--all", action="store_true", help="also labs that a running test session owns")
    status = sub.add_parser("status", help="list this checkout's labs")
    status.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="lab up, fleet audit, report, lab down")
    demo.add_argument("--hosts", type=int, default=5)
    args = parser.parse_args(argv)
    handler = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "demo": cmd_demo}[args.command]
    try:
        return handler(args)
    except LabError as err:
        log("error: %s" % err)
        return 2


if __name__ == "__main__":
    sys.exit(main())

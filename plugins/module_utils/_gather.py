# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module-facing side of each fact set: argument spec, parameter checks, collection.

Each facts module (propagation_facts, numa_facts, runtime_facts) is ``AnsibleModule`` plus one
call here; ``audit_facts`` calls several in one round trip. Keeping the glue in one place means
the standalone modules and the combined one cannot drift apart.
"""

from __future__ import annotations

import copy
import os

from ansible_collections.mountops.fleet.plugins.module_utils._namespaces import CollectorError, collect
from ansible_collections.mountops.fleet.plugins.module_utils._numa import NumaError
from ansible_collections.mountops.fleet.plugins.module_utils._numa import collect as collect_numa
from ansible_collections.mountops.fleet.plugins.module_utils._numa import to_facts as numa_to_facts
from ansible_collections.mountops.fleet.plugins.module_utils._propagation import analyse
from ansible_collections.mountops.fleet.plugins.module_utils._runtime import ENGINE_NAMES, Collector
from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import read_int

TIMEOUT_RCS = (124, 137)  # timeout(1): timed out, or killed after -k


class GatherError(Exception):
    """A fact set cannot be gathered with these parameters; the message says what and why."""


class VersionTimeout(RuntimeError):
    """A ``--version`` command did not finish in time."""


_SPECS = {
    "propagation": {
        "proc_root": {"type": "path", "default": "/proc"},
        "run_root": {"type": "path", "default": "/run"},
        "backend": {"type": "str", "default": "auto", "choices": ["auto", "mountinfo", "statmount"]},
        "max_namespaces": {"type": "int", "default": 0},
        "time_budget_ms": {"type": "int", "default": 10000},
        "top_n": {"type": "int", "default": 10},
        "detail": {"type": "bool", "default": False},
    },
    "numa": {
        "sysfs_root": {"type": "path", "default": "/sys"},
        "procfs_root": {"type": "path", "default": "/proc", "aliases": ["proc_root"]},
    },
    "runtime": {
        "etc_root": {"type": "path", "default": "/etc"},
        "run_root": {"type": "path", "default": "/run"},
        "proc_root": {"type": "path", "default": "/proc"},
        "sys_root": {"type": "path", "default": "/sys"},
        "gather_versions": {"type": "bool", "default": True},
        "version_outputs": {"type": "dict", "default": {}},
        "runtime_roots": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "path": {"type": "path", "required": True},
                "runtime": {"type": "str", "choices": ["runc", "crun"], "default": "runc"},
                "engine": {"type": "str"},
            },
        },
        "timeout": {"type": "int", "default": 10},
        "on_timeout": {"type": "str", "choices": ["error", "warn", "ignore"], "default": "warn"},
    },
}

# Fact set -> the key under ansible_facts.
FACT_KEYS = {"propagation": "mount_propagation", "numa": "numa", "runtime": "mount_runtime"}


def argument_spec(fact_set):
    """A fresh copy of the argument spec of one fact set (``propagation``, ``numa``, ``runtime``)."""
    return copy.deepcopy(_SPECS[fact_set])


def _check_propagation(params):
    for name in ("max_namespaces", "time_budget_ms", "top_n"):
        if params[name] < 0:
            return "%s must be 0 or more, got %d" % (name, params[name])
    return None


def _check_runtime(params):
    if params["timeout"] <= 0:
        return "timeout must be a positive number of seconds, got %d" % params["timeout"]
    unknown = sorted(set(params["version_outputs"]) - set(ENGINE_NAMES))
    if unknown:
        return "version_outputs: unknown engine(s) %s; expected some of %s" % (
            ", ".join(unknown),
            ", ".join(ENGINE_NAMES),
        )
    return None


_CHECKS = {"propagation": _check_propagation, "runtime": _check_runtime}


def check_params(fact_set, params):
    """What is wrong with already type-checked options of a fact set (a message), or None.

    Bad options are the caller's mistake, not the host's: callers fail the task on them before
    gathering anything, where a host that cannot be read only loses that fact set.
    """
    check = _CHECKS.get(fact_set)
    return check(params) if check else None


def gather_propagation(module, params):
    problem = _check_propagation(params)
    if problem:
        raise GatherError(problem)
    try:
        collection = collect(
            proc_root=params["proc_root"],
            run_root=params["run_root"],
            backend=params["backend"],
            max_namespaces=params["max_namespaces"],
            time_budget_ms=params["time_budget_ms"],
        )
    except CollectorError as err:
        raise GatherError("collecting mount namespaces: %s" % err) from None
    mount_max = read_int(os.path.join(params["proc_root"], "sys/fs/mount-max"))
    facts = analyse(collection, mount_max=mount_max, top_n=params["top_n"], detail=params["detail"])
    for warning in collection.warnings:
        module.warn(warning)
    if collection.partial:
        module.warn(
            "partial collection: stopped by %s after %d of %d namespaces"
            % (collection.partial_reason, facts["collection"]["namespaces_read"], collection.enumerated)
        )
    return facts


def gather_numa(module, params):
    try:
        topology = collect_numa(params["sysfs_root"], params["procfs_root"])
    except NumaError as err:
        raise GatherError("reading NUMA topology: %s" % err) from None
    for warning in topology.warnings:
        module.warn(warning)
    return numa_to_facts(topology)


def version_runner(module, params):
    """Return run_version(engine, binary) for the collector: ``binary --version`` under timeout(1)."""
    timeout_bin = module.get_bin_path("timeout")
    seconds = params["timeout"]

    def run_version(engine, binary):
        command = [binary, "--version"]
        if timeout_bin:
            command = [timeout_bin, "-k", "2", str(seconds)] + command
        rc, out, err = module.run_command(command, environ_update={"LC_ALL": "C"})
        if timeout_bin and rc in TIMEOUT_RCS:
            message = "%s --version timed out after %ds" % (binary, seconds)
            if params["on_timeout"] == "error":
                module.fail_json(msg="reading the %s version: %s" % (engine, message))
            if params["on_timeout"] == "warn":
                module.warn(message)
            raise VersionTimeout(message)
        if rc != 0 and not out.strip():
            raise VersionTimeout("%s --version exited %d: %s" % (binary, rc, err.strip()[:200]))
        return out if out.strip() else err

    return run_version


def gather_runtime(module, params):
    problem = _check_runtime(params)
    if problem:
        raise GatherError(problem)
    collector = Collector(
        roots={name: params[name] for name in ("etc_root", "run_root", "proc_root", "sys_root")},
        run_version=version_runner(module, params) if params["gather_versions"] else None,
        version_outputs={k: str(v) for k, v in params["version_outputs"].items()},
        runtime_roots=params["runtime_roots"],
    )
    facts = collector.collect()
    for warning in facts["warnings"]:
        module.warn(warning)
    return facts


GATHERERS = {"propagation": gather_propagation, "numa": gather_numa, "runtime": gather_runtime}


def run_facts_module(fact_set, module):
    """main() of a single facts module: gather, then exit_json or fail_json."""
    try:
        facts = GATHERERS[fact_set](module, module.params)
    except GatherError as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=False, ansible_facts={FACT_KEYS[fact_set]: facts})

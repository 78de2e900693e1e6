# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collector for ``mountops.fleet.runtime_facts``: engines, services, containers, kubelet, kernel.

Reads files under injectable roots (``etc_root``, ``run_root``, ``proc_root``, ``sys_root``;
paths outside them, such as /usr/lib/systemd or /var/lib/kubelet, are taken relative to the
parent of ``etc_root``) so that a captured tree can be analysed offline. The only command it
runs is ``<engine> --version``, through a callable the caller injects. Parsing lives in
``_runtime_config``; advisories in ``_runtime_advisories``. Bad input becomes a problem record
(file, line, reason) in the facts and never stops the rest of the collection.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import gzip
import os
import platform
import re

from ansible_collections.mountops.fleet.plugins.module_utils import _runtime_advisories as advisories
from ansible_collections.mountops.fleet.plugins.module_utils import _runtime_config as cfg
from ansible_collections.mountops.fleet.plugins.module_utils._mountinfo import MountinfoError, parse_mountinfo
from ansible_collections.mountops.fleet.plugins.module_utils._namespaces import host_namespace
from ansible_collections.mountops.fleet.plugins.module_utils._sysfs import read_record, read_text

SCHEMA_VERSION = 1

DEFAULT_ROOTS = {"etc_root": "/etc", "run_root": "/run", "proc_root": "/proc", "sys_root": "/sys"}

# Engines we know. ``processes`` are /proc/PID/comm names of the daemon (comm is cut at 15 bytes).
ENGINES = (
    {
        "name": "containerd",
        "binary": "containerd",
        "processes": ("containerd",),
        "units": ("containerd.service",),
    },
    {"name": "crio", "binary": "crio", "processes": ("crio",), "units": ("crio.service",)},
    {
        "name": "docker",
        "binary": "dockerd",
        "processes": ("dockerd",),
        "units": ("docker.service", "docker.socket"),
    },
    {
        "name": "podman",
        "binary": "podman",
        "processes": ("podman",),
        "units": ("podman.service", "podman.socket"),
    },
    {"name": "runc", "binary": "runc", "processes": (), "units": ()},
    {"name": "crun", "binary": "crun", "processes": (), "units": ()},
    {"name": "kubelet", "binary": "kubelet", "processes": ("kubelet",), "units": ("kubelet.service",)},
)
ENGINE_NAMES = tuple(e["name"] for e in ENGINES)

BIN_DIRS = ("usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin")

# Command-line flags that move an engine's config or state (value flags only).
ENGINE_FLAGS = {
    "containerd": {"config": ("--config", "-c"), "root": ("--root",), "state": ("--state",)},
    "docker": {
        "config": ("--config-file",),
        "data_root": ("--data-root",),
        "exec_root": ("--exec-root",),
        "default_runtime": ("--default-runtime",),
    },
    "crio": {
        "config": ("--config",),
        "config_dir": ("--config-dir",),
        "default_runtime": ("--default-runtime",),
    },
    "podman": {},
    "kubelet": {"root_dir": ("--root-dir",), "config": ("--config",)},
}

# The runtimes' own default for linux.rootfsPropagation when the bundle leaves it unset.
RUNTIME_DEFAULT_ROOTFS_PROPAGATION = {"runc": "rslave", "crun": "rprivate"}

PROPAGATION_OPTIONS = (
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
)

# libcontainer (runc state.json) stores propagation as mount(2) flags.
MS_REC = 0x4000
PROPAGATION_FLAGS = ((1 << 20, "shared"), (1 << 19, "slave"), (1 << 18, "private"), (1 << 17, "unbindable"))

# Runtime state roots (``runc --root``), globs relative to run_root: (glob, runtime, engine).
# Each holds one directory per container. containerd and docker keep one root per namespace.
RUNTIME_STATE_ROOTS = (
    ("runc", "runc", None),
    ("containerd/runc/*", "runc", "containerd"),
    ("docker/runtime-runc/*", "runc", "docker"),
    ("crun", "crun", None),
)
CONTAINERD_TASK_DIR = "io.containerd.runtime.v2.task"
DOCKER_CONTAINERD_STATE = "docker/containerd/daemon"
CONTAINERS_STORAGE_GLOB = "containers/storage/overlay-containers/*/userdata"

UNIT_DIRS = (
    ("etc", "systemd/system"),
    ("run", "systemd/system"),
    ("host", "usr/local/lib/systemd/system"),
    ("host", "usr/lib/systemd/system"),
    ("host", "lib/systemd/system"),
)

KUBELET_DEFAULT_ROOT = "/var/lib/kubelet"
OVL_IDMAPPED_MARK = b"/tmpmounts/ovl-idmapped"

# Kernel features decided by release where no cheaper, safer check exists.
KERNEL_VERSION_FEATURES = {
    "listmount": ((6, 8), "listmount(2) merged in Linux 6.8"),
    "statmount": ((6, 8), "statmount(2) merged in Linux 6.8"),
    "mnt_ns_id": ((6, 11), "mnt_id_req.mnt_ns_id (listing foreign namespaces) since Linux 6.11"),
    "fanotify_mount_events": ((6, 15), "fanotify FAN_MNT_ATTACH/FAN_MNT_DETACH since Linux 6.15"),
}
# Generic syscall table numbers (x86_64 and every arch that uses the unified numbering from 424).
MOUNT_SYSCALLS = {"statmount": 457, "listmount": 458}
SYSCALL_PROBE_ARCHES = ("x86_64", "aarch64", "arm64", "riscv64", "loongarch64", "s390x", "ppc64le")

TRACEPOINTS = {
    "syscalls": (
        "syscalls/sys_enter_mount",
        "syscalls/sys_enter_umount",
        "syscalls/sys_enter_unshare",
        "syscalls/sys_enter_setns",
        "syscalls/sys_enter_open_tree",
        "syscalls/sys_enter_move_mount",
        "syscalls/sys_enter_mount_setattr",
        "syscalls/sys_enter_statmount",
        "syscalls/sys_enter_listmount",
    ),
    "lock_contention": ("lock/contention_begin", "lock/contention_end"),
}
KCONFIG_KEYS = (
    "CONFIG_KPROBES",
    "CONFIG_FTRACE_SYSCALLS",
    "CONFIG_FUNCTION_TRACER",
    "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_FANOTIFY",
    "CONFIG_BPF_SYSCALL",
)
SYSCTLS = {"fs.mount-max": "sys/fs/mount-max", "user.max_mnt_namespaces": "sys/user/max_mnt_namespaces"}

_KCONFIG_RE = re.compile(r"^(CONFIG_[A-Z0-9_]+)=(.*)$|^# (CONFIG_[A-Z0-9_]+) is not set$")
_MAX_PIDS = 20


class Collector:
    """Gathers ``mount_runtime`` facts. ``run_version(engine, binary) -> text`` may raise OSError."""

    def __init__(
        self, roots=None, run_version=None, version_outputs=None, runtime_roots=None, probe_syscalls=None
    ):
        roots = dict(DEFAULT_ROOTS, **{k: v for k, v in (roots or {}).items() if v})
        self.etc_root = roots["etc_root"]
        self.run_root = roots["run_root"]
        self.proc_root = roots["proc_root"]
        self.sys_root = roots["sys_root"]
        self.host_root = os.path.dirname(os.path.normpath(self.etc_root)) or "/"
        self.live = os.path.normpath(self.proc_root) == "/proc"
        self.probe_syscalls = self.live if probe_syscalls is None else probe_syscalls
        self.run_version = run_version
        self.version_outputs = version_outputs or {}
        self.runtime_roots = runtime_roots or []
        self.problems = []
        self.warnings = []
        self._processes = None
        self._host_mounts = None
        self._host_mounts_source = None
        self._host_ns = None

    # ---- paths -----------------------------------------------------------------------------
    def host_path(self, path):
        """Map an absolute path on the target host into the (possibly captured) tree we read."""
        path = os.path.normpath(path)
        for prefix, root in (("/etc", self.etc_root), ("/run", self.run_root), ("/var/run", self.run_root)):
            if path == prefix or path.startswith(prefix + "/"):
                return os.path.join(root, path[len(prefix) :].lstrip("/"))
        if path == "/proc" or path.startswith("/proc/"):
            return os.path.join(self.proc_root, path[len("/proc") :].lstrip("/"))
        return os.path.join(self.host_root, path.lstrip("/"))

    def problem(self, file, line, message, component):
        self.problems.append(cfg.Problem(file, line, message, component))

    def read(self, path, component):
        """Text of a file, or None (missing files are normal; other errors are problems)."""
        try:
            with open(path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            self.problem(path, None, "cannot read: %s" % (exc.strerror or exc), component)
            return None

    # ---- processes -------------------------------------------------------------------------
    def processes(self):
        """{comm: [pid, ...]} for the daemons we care about; read once."""
        if self._processes is not None:
            return self._processes
        wanted = {name for e in ENGINES for name in e["processes"]}
        found = {}
        try:
            entries = os.listdir(self.proc_root)
        except OSError as exc:
            self.warnings.append("cannot list %s: %s" % (self.proc_root, exc.strerror))
            entries = []
        for entry in entries:
            if not entry.isdigit():
                continue
            comm = read_record(os.path.join(self.proc_root, entry, "comm"))
            if comm in wanted:
                found.setdefault(comm, []).append(int(entry))
        for pids in found.values():
            pids.sort()
        self._processes = found
        return found

    def cmdline(self, pid):
        try:
            with open(os.path.join(self.proc_root, str(pid), "cmdline"), "rb") as handle:
                raw = handle.read()
        except OSError:
            return []
        return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]

    # ---- engines ---------------------------------------------------------------------------
    def find_binary(self, engine, pids):
        for pid in pids:
            try:
                target = os.readlink(os.path.join(self.proc_root, str(pid), "exe"))
            except OSError:
                continue
            if target.endswith(" (deleted)"):
                target = target[: -len(" (deleted)")]
            # A script or wrapper shows its interpreter here: never take (or run) that.
            if os.path.basename(target).startswith(engine["binary"]):
                return target, "process %d" % pid
        for directory in BIN_DIRS:
            candidate = os.path.join(self.host_root, directory, engine["binary"])
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return "/" + os.path.join(directory, engine["binary"]), "search"
        return None, None

    def version_of(self, engine, binary):
        name = engine["name"]
        result = {"version": None, "version_info": None, "version_output": None, "version_error": None}
        output = self.version_outputs.get(name)
        if output is None and binary and self.run_version is not None:
            try:
                output = self.run_version(name, binary)
            except (OSError, RuntimeError) as exc:
                result["version_error"] = str(exc)
                return result
        if output is None:
            return result
        version, first_line = cfg.parse_version_output(name, output)
        result["version_output"] = first_line
        if version is None:
            result["version_error"] = "no version in --version output"
            return result
        result["version"] = version
        parsed = cfg.Version.parse(version)
        result["version_info"] = parsed.to_dict() if parsed else None
        return result

    def collect_engines(self):
        engines = {}
        host_key = self.host_mnt_ns()[0]
        for engine in ENGINES:
            name = engine["name"]
            found = sorted(pid for comm in engine["processes"] for pid in self.processes().get(comm, []))
            # Daemons in other mount namespaces (kind/dind nodes, sandboxes) are not this host's
            # engine: their configs are not in this /etc. Unknown namespaces count as the host's.
            pids = [pid for pid in found if host_key is None or self.mnt_ns(pid) in (None, host_key)]
            binary, binary_source = self.find_binary(engine, pids)
            record = {
                "binary": binary,
                "binary_source": binary_source,
                "running": bool(pids),
                "pids": pids[:_MAX_PIDS],
                "pids_in_other_mnt_ns": len(found) - len(pids),
                "flags": {},
                "config_files": [],
                "settings": {},
            }
            record.update(self.version_of(engine, binary if self._may_execute() else None))
            argv = self.cmdline(pids[0]) if pids else []
            record["flags"] = _flags(argv, ENGINE_FLAGS.get(name, {}))
            reader = getattr(self, "_config_" + name, None)
            if reader is not None:
                reader(record)
            if binary or pids or record["config_files"] or record["version"] or name in self.version_outputs:
                engines[name] = record
        return engines

    def _may_execute(self):
        # Binaries inside a captured tree belong to another host: never run them.
        return os.path.normpath(self.host_root) == "/"

    def _load(self, record, path, kind, component):
        """Read and parse one config file; note it in record['config_files']. Returns (doc, text)."""
        text = self.read(path, component)
        entry = {"path": path, "loaded": False, "error": None}
        if text is None:
            return None, None
        record["config_files"].append(entry)
        loader = cfg.load_toml if kind == "toml" else cfg.load_json
        doc, problem = loader(path, text, component)
        if problem is not None:
            entry["error"] = "%s%s" % ("line %s: " % problem.line if problem.line else "", problem.message)
            self.problems.append(problem)
            return None, text
        entry["loaded"] = True
        return doc, text

    def _config_containerd(self, record):
        main = record["flags"].get("config") or "/etc/containerd/config.toml"
        main_path = self.host_path(main)
        docs, texts, seen = [], {}, set()
        self._containerd_file(record, main_path, docs, texts, seen)
        dropin_dir = self.host_path("/etc/containerd/conf.d")
        unimported = [
            p
            for p in sorted(glob.glob(os.path.join(dropin_dir, "*.toml")))
            if os.path.realpath(p) not in seen
        ]
        if docs:
            settings, problems = cfg.interpret_containerd(docs, texts, record.get("version"))
            for problem in problems:
                problem.component = "containerd"
            self.problems.extend(problems)
        else:
            settings = cfg.interpret_containerd([])[0]
            settings["default_runtime_source"] = "default (no config file loaded)"
        for key in ("root", "state"):
            if record["flags"].get(key):
                settings[key] = record["flags"][key]
        settings["imports"] = [path for path, _doc in docs[1:]]
        settings["unimported_dropins"] = unimported
        record["settings"] = settings

    def _containerd_file(self, record, path, docs, texts, seen):
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        doc, text = self._load(record, path, "toml", "containerd")
        if doc is None:
            return
        docs.append((path, doc))
        texts[path] = text
        for pattern in cfg.containerd_imports(doc):
            if not os.path.isabs(pattern):
                pattern = os.path.join(os.path.dirname(path), pattern)
            else:
                pattern = self.host_path(pattern)
            for match in sorted(glob.glob(pattern)):
                self._containerd_file(record, match, docs, texts, seen)

    def _config_docker(self, record):
        path = self.host_path(record["flags"].get("config") or "/etc/docker/daemon.json")
        doc, text = self._load(record, path, "json", "docker")
        settings, problems = cfg.interpret_docker(path, doc or {}, text)
        for problem in problems:
            problem.component = "docker"
        self.problems.extend(problems)
        for flag in ("data_root", "exec_root", "default_runtime"):
            if record["flags"].get(flag):
                settings[flag] = record["flags"][flag]
                if flag == "default_runtime":
                    settings["default_runtime_source"] = "command line"
        record["settings"] = settings

    def _config_crio(self, record):
        main = self.host_path(record["flags"].get("config") or "/etc/crio/crio.conf")
        dropin_dir = self.host_path(record["flags"].get("config_dir") or "/etc/crio/crio.conf.d")
        docs, texts = [], {}
        for path in [main] + sorted(glob.glob(os.path.join(dropin_dir, "*.conf"))):
            doc, texts[path] = self._load(record, path, "toml", "crio")
            if doc is not None:
                docs.append((path, doc))
        settings, problems = cfg.interpret_crio(docs, record.get("version"))
        for problem in cfg.locate_lines(problems, texts):
            problem.component = "crio"
        self.problems.extend(problems)
        if record["flags"].get("default_runtime"):
            settings["default_runtime"] = record["flags"]["default_runtime"]
            settings["sources"]["default_runtime"] = "command line"
        record["settings"] = settings

    def _config_podman(self, record):
        paths = [
            self.host_path("/usr/share/containers/containers.conf"),
            self.host_path("/etc/containers/containers.conf"),
        ] + sorted(glob.glob(os.path.join(self.host_path("/etc/containers/containers.conf.d"), "*.conf")))
        docs, texts = [], {}
        for path in paths:
            doc, texts[path] = self._load(record, path, "toml", "podman")
            if doc is not None:
                docs.append((path, doc))
        settings, problems = cfg.interpret_containers_conf(docs)
        for problem in cfg.locate_lines(problems, texts):
            problem.component = "podman"
        self.problems.extend(problems)
        record["settings"] = settings

    # ---- services --------------------------------------------------------------------------
    def unit_dirs(self):
        roots = {"etc": self.etc_root, "run": self.run_root, "host": self.host_root}
        return [os.path.join(roots[base], rel) for base, rel in UNIT_DIRS]

    def collect_services(self):
        services = {}
        for engine in ENGINES:
            for unit in engine["units"]:
                record = self.collect_unit(unit)
                if record is not None:
                    record["engine"] = engine["name"]
                    services[unit] = record
        return services

    def collect_unit(self, unit):
        dirs = self.unit_dirs()
        unit_file = next(
            (os.path.join(d, unit) for d in dirs if os.path.lexists(os.path.join(d, unit))), None
        )
        masked = (
            unit_file is not None and os.path.islink(unit_file) and os.path.realpath(unit_file) == "/dev/null"
        )
        unit_type = unit.rsplit(".", 1)[-1]
        # Drop-ins: <unit>.d/ and the type-wide <type>.d/, sorted by file name; a name in a
        # higher-priority directory hides the same name further down.
        dropins, own = {}, False
        for directory in dirs:
            for sub in (unit + ".d", unit_type + ".d"):
                for path in glob.glob(os.path.join(directory, sub, "*.conf")):
                    dropins.setdefault(os.path.basename(path), path)
                    own = own or sub == unit + ".d"
        if unit_file is None and not own:
            return None
        # Drop-ins without a unit file still matter: they apply as soon as the package is installed.
        ordered = [dropins[name] for name in sorted(dropins)]
        parsed = []
        for path in ([] if masked or unit_file is None else [unit_file]) + ordered:
            text = self.read(path, "systemd")
            if text is None:
                continue
            assignments, problems = cfg.parse_unit(path, text)
            for problem in problems:
                problem.component = "systemd"
            self.problems.extend(problems)
            parsed.append((path, assignments))
        settings = cfg.effective_unit_settings(parsed)
        return {
            "unit_file": unit_file,
            "masked": masked,
            "drop_ins": ordered,
            "settings": settings,
            "mount_flags": (settings.get("MountFlags") or {}).get("value"),
            "private_mounts": (settings.get("PrivateMounts") or {}).get("value"),
            "own_mount_namespace": cfg.implies_mount_namespace(settings),
        }

    # ---- host mount table ------------------------------------------------------------------
    def host_mounts(self):
        """Parsed mount table of the host namespace (PID 1, else our own), read once."""
        if self._host_mounts is not None:
            return self._host_mounts
        self._host_mounts = []
        for pid in ("1", "self"):
            path = os.path.join(self.proc_root, pid, "mountinfo")
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            try:
                self._host_mounts = parse_mountinfo(data, path)
            except MountinfoError as exc:
                self.problem(path, exc.lineno, exc.reason, "mountinfo")
            self._host_mounts_source = path
            break
        return self._host_mounts

    def collect_host_mounts(self):
        mounts = self.host_mounts()
        leaked = [m for m in mounts if OVL_IDMAPPED_MARK in m.mount_point]
        return {
            "source": self._host_mounts_source,
            "count": len(mounts),
            "ovl_idmapped_tmpmounts": len(leaked),
            "ovl_idmapped_examples": [_path(m.mount_point) for m in leaked[:5]],
        }

    # ---- namespaces ------------------------------------------------------------------------
    def mnt_ns(self, pid):
        """(st_dev, inode) of /proc/PID/ns/mnt, from stat or, in captured trees, the link text."""
        path = os.path.join(self.proc_root, str(pid), "ns", "mnt")
        try:
            st = os.stat(path)
            return st.st_dev, st.st_ino
        except OSError:
            pass
        try:
            match = re.match(r"mnt:\[(\d+)\]$", os.readlink(path))
        except OSError:
            return None
        return (None, int(match.group(1))) if match else None

    def host_mnt_ns(self):
        """(key, source) of the host mount namespace by the shared rule; asked once per run."""
        if self._host_ns is None:

            def key_of(pid):
                key = self.mnt_ns(pid)
                if key is None:  # stat and the link both failed: raise stat's reason
                    os.stat(os.path.join(self.proc_root, str(pid), "ns", "mnt"))
                return key

            try:
                self._host_ns = host_namespace(self.proc_root, key_of)
            except OSError:
                self._host_ns = (None, None)
        return self._host_ns

    # ---- containers ------------------------------------------------------------------------
    def collect_containers(self, engines):
        found = {}
        roots = list(self._runtime_state_roots(engines))
        for root, runtime, engine in roots:
            for state_dir in sorted(glob.glob(os.path.join(root, "*"))):
                self._runtime_state(found, state_dir, runtime, engine)
        for task_root, engine in self._containerd_task_roots(engines):
            for bundle in sorted(glob.glob(os.path.join(task_root, "*", "*"))):
                self._containerd_task(found, bundle, engine)
        for userdata in sorted(glob.glob(os.path.join(self.run_root, CONTAINERS_STORAGE_GLOB))):
            self._storage_container(found, userdata)
        host_key, _source = self.host_mnt_ns()
        containers = []
        for record in found.values():
            self._finish_container(record, host_key)
            containers.append(record)
        containers.sort(key=lambda c: (str(c.get("engine")), str(c["id"])))
        return containers

    def _runtime_state_roots(self, engines):
        seen = set()

        def emit(path, runtime, engine):
            real = os.path.realpath(path)
            if real not in seen and os.path.isdir(path):
                seen.add(real)
                yield path, runtime, engine

        for item in self.runtime_roots:
            yield from emit(item["path"], item.get("runtime") or "runc", item.get("engine"))
        for pattern, runtime, engine in RUNTIME_STATE_ROOTS:
            for match in sorted(glob.glob(os.path.join(self.run_root, pattern))):
                yield from emit(match, runtime, engine)
        exec_root = engines.get("docker", {}).get("settings", {}).get("exec_root")
        if exec_root:
            for match in sorted(glob.glob(os.path.join(self.host_path(exec_root), "runtime-runc", "*"))):
                yield from emit(match, "runc", "docker")
        for name, settings_key in (("containerd", "runtimes"), ("crio", "runtimes")):
            runtimes = engines.get(name, {}).get("settings", {}).get(settings_key, {})
            for rt_name, entry in sorted(runtimes.items()):
                root = entry.get("root") or entry.get("runtime_root")
                if isinstance(root, str) and root:
                    runtime = "crun" if "crun" in (rt_name + str(entry.get("runtime_path"))) else "runc"
                    yield from emit(self.host_path(root), runtime, name)

    def _containerd_task_roots(self, engines):
        state = engines.get("containerd", {}).get("settings", {}).get("state") or "/run/containerd"
        roots = [(os.path.join(self.host_path(state), CONTAINERD_TASK_DIR), "containerd")]
        roots.append((os.path.join(self.run_root, DOCKER_CONTAINERD_STATE, CONTAINERD_TASK_DIR), "docker"))
        return [(r, e) for r, e in roots if os.path.isdir(r)]

    def _record(self, found, container_id):
        return found.setdefault(
            container_id,
            {
                "id": container_id,
                "engine": None,
                "runtime": None,
                "containerd_namespace": None,
                "bundle": None,
                "state_dirs": [],
                "config_source": None,
                "pid": None,
                "_spec": None,
                "_libcontainer": None,
                "_start": None,
            },
        )

    def _runtime_state(self, found, state_dir, runtime, engine):
        container_id = os.path.basename(state_dir)
        state_file = os.path.join(state_dir, "state.json" if runtime == "runc" else "status")
        text = self.read(state_file, runtime)
        if text is None:
            return
        doc, problem = cfg.load_json(state_file, text, runtime)
        if problem is not None:
            self.problems.append(problem)
            return
        record = self._record(found, doc.get("id") or container_id)
        record["runtime"] = runtime
        record["state_dirs"].append(state_dir)
        if engine and not record["engine"]:
            record["engine"] = engine
            if engine in ("containerd", "docker"):
                record["containerd_namespace"] = os.path.basename(os.path.dirname(state_dir))
        if runtime == "runc":
            pid = doc.get("init_process_pid")
            record["_start"] = doc.get("init_process_start")
            config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
            record["_libcontainer"] = config
            labels = config.get("labels") if isinstance(config.get("labels"), list) else []
            bundle = next((lab[len("bundle=") :] for lab in labels if str(lab).startswith("bundle=")), None)
        else:
            # crun's status file: pid, process-start-time, bundle; it keeps a copy of config.json.
            pid = doc.get("pid")
            record["_start"] = doc.get("process-start-time")
            bundle = doc.get("bundle")
            self._load_spec(record, os.path.join(state_dir, "config.json"))
        if isinstance(pid, int) and pid > 0:
            record["pid"] = pid
        if isinstance(bundle, str) and bundle:
            record["bundle"] = bundle
            self._load_spec(record, os.path.join(self.host_path(bundle), "config.json"))

    def _containerd_task(self, found, bundle, engine):
        if not os.path.isfile(os.path.join(bundle, "config.json")):
            return
        namespace = os.path.basename(os.path.dirname(bundle))
        record = self._record(found, os.path.basename(bundle))
        record["engine"] = "docker" if namespace == "moby" else engine
        record["containerd_namespace"] = namespace
        record["bundle"] = record["bundle"] or bundle
        self._load_spec(record, os.path.join(bundle, "config.json"))
        if record["pid"] is None:
            pid = read_text(os.path.join(bundle, "init.pid"))
            record["pid"] = int(pid) if pid and pid.isdigit() else None
        if record["runtime"] is None:
            options = self.read(os.path.join(bundle, "options.json"), "containerd") or ""
            record["runtime"] = "crun" if "crun" in options else "runc"

    def _storage_container(self, found, userdata):
        spec_path = os.path.join(userdata, "config.json")
        if not os.path.isfile(spec_path):
            return
        record = self._record(found, os.path.basename(os.path.dirname(userdata)))
        self._load_spec(record, spec_path)
        annotations = (record["_spec"] or {}).get("annotations") or {}
        if record["engine"] is None:
            if any(str(k).startswith("io.kubernetes.cri-o.") for k in annotations):
                record["engine"] = "crio"
            elif annotations.get("io.container.manager") == "libpod":
                record["engine"] = "podman"
        record["bundle"] = record["bundle"] or userdata
        if record["pid"] is None:
            pid = read_text(os.path.join(userdata, "pidfile"))
            record["pid"] = int(pid) if pid and pid.isdigit() else None

    def _load_spec(self, record, path):
        if record["_spec"] is not None:
            return
        text = self.read(path, "containers")
        if text is None:
            return
        doc, problem = cfg.load_json(path, text, "containers")
        if problem is not None:
            self.problems.append(problem)
            return
        record["_spec"] = doc
        record["config_source"] = path

    def _finish_container(self, record, host_key):
        spec = record.pop("_spec")
        libcontainer = record.pop("_libcontainer")
        start = record.pop("_start")
        runtime = record["runtime"] or "runc"
        record["runtime"] = runtime
        if spec is not None:
            view = _spec_view(spec)
        elif libcontainer:
            view = _libcontainer_view(libcontainer)
            record["config_source"] = "runc state.json"
        else:
            view = _spec_view({})
            record["config_source"] = None
        configured = view["rootfs_propagation"]
        default = RUNTIME_DEFAULT_ROOTFS_PROPAGATION.get(runtime)
        record["rootfs_propagation"] = {
            "configured": configured,
            "effective": configured or default,
            "runtime_default": default,
            "default_applied": configured is None,
        }
        record["mounts"] = view["mounts"]
        record["user_namespace"] = view["user_namespace"]
        record["idmapped_mounts"] = [m["destination"] for m in view["mounts"] if m["idmapped"]]
        record["shared_mounts"] = [
            m["destination"] for m in view["mounts"] if m["propagation"] in ("shared", "rshared")
        ]
        record["pod"] = view["pod"]
        record["alive"] = self._alive(record["pid"], start)
        key = self.mnt_ns(record["pid"]) if record["alive"] else None
        record["mnt_ns"] = key[1] if key else None
        record["mnt_ns_key"] = "mnt:[%d]" % key[1] if key else None
        record["mnt_ns_dev"] = key[0] if key else None
        record["in_host_mnt_ns"] = (key == host_key) if key and host_key else None

    def _alive(self, pid, start):
        if not pid:
            return False
        stat = read_record(os.path.join(self.proc_root, str(pid), "stat"))
        if stat is None:
            return False
        if start is not None:
            # Guard against pid reuse: field 22 (starttime) must match runc's init_process_start.
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 19 and fields[19] != str(start):
                return False
        return True

    # ---- kubelet ---------------------------------------------------------------------------
    def collect_kubelet(self, engines):
        kubelet = engines.get("kubelet")
        root_dir = (kubelet or {}).get("flags", {}).get("root_dir")
        source = "command line" if root_dir else "default"
        root_dir = root_dir or KUBELET_DEFAULT_ROOT
        if kubelet is None and not os.path.isdir(self.host_path(root_dir)):
            return None
        record = {"root_dir": root_dir, "root_dir_source": source}
        record.update(self.path_mount(root_dir))
        return record

    def path_mount(self, path):
        """Where ``path`` sits in the host mount table: its mount, propagation and what is below.

        ``rshared`` is true when ``path`` is itself a shared mount point and every mount below it
        is shared too (what kubelet sets up for its root dir and dockerd for its data root).
        """
        mounts = self.host_mounts()
        wanted = path.rstrip("/").encode("utf-8", "surrogateescape") or b"/"
        exact = [m for m in mounts if m.mount_point == wanted]
        containing = covering_mount(mounts, wanted)
        below = [m for m in mounts if m.mount_point.startswith(wanted.rstrip(b"/") + b"/")]
        top = exact[-1] if exact else None
        return {
            "mountinfo": self._host_mounts_source,
            "is_mount_point": top is not None,
            "mount_point": _path(containing.mount_point) if containing else None,
            "propagation": containing.propagation if containing else None,
            "peer_group": containing.shared if containing else None,
            "submounts": len(below),
            "submounts_not_shared": sum(1 for m in below if m.shared is None),
            "rshared": bool(
                top is not None and top.shared is not None and all(m.shared is not None for m in below)
            ),
        }

    # ---- kernel ----------------------------------------------------------------------------
    def kconfig(self):
        path = os.path.join(self.proc_root, "config.gz")
        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except (OSError, EOFError):
            return None, None
        values = {}
        for line in lines:
            match = _KCONFIG_RE.match(line)
            if not match:
                continue
            if match.group(1) in KCONFIG_KEYS:
                values[match.group(1)] = match.group(2)
            elif match.group(3) in KCONFIG_KEYS:
                values[match.group(3)] = "n"
        return values, path

    def collect_kernel(self):
        release = read_text(os.path.join(self.proc_root, "sys/kernel/osrelease"))
        version = cfg.Version.parse(release) if release else None
        kconfig, kconfig_source = self.kconfig()
        features = {}
        for name, (minimum, why) in KERNEL_VERSION_FEATURES.items():
            available = None if version is None else (version.major, version.minor) >= minimum
            features[name] = {"available": available, "method": "kernel version", "detail": why}
        if self.probe_syscalls:
            for name, number in MOUNT_SYSCALLS.items():
                result = probe_syscall(number)
                if result is not None:
                    features[name] = {"available": result[0], "method": "syscall probe", "detail": result[1]}
        if kconfig is not None and kconfig.get("CONFIG_FANOTIFY") == "n":
            features["fanotify_mount_events"] = {
                "available": False,
                "method": "kernel config",
                "detail": "CONFIG_FANOTIFY is not set",
            }
        features.update(self.tracing_features(kconfig))
        sysctls = {}
        for name, rel in SYSCTLS.items():
            value = read_text(os.path.join(self.proc_root, rel))
            sysctls[name] = int(value) if value and value.lstrip("-").isdigit() else None
        return {
            "release": release,
            "version": version.to_dict() if version else None,
            "machine": platform.machine() if self.live else None,
            "config_source": kconfig_source,
            "config": kconfig or {},
            "features": features,
            "sysctls": sysctls,
        }

    def tracefs(self):
        for rel in ("kernel/tracing", "kernel/debug/tracing"):
            path = os.path.join(self.sys_root, rel)
            if os.path.isdir(os.path.join(path, "events")):
                return path
        return None

    def tracing_features(self, kconfig):
        kconfig = kconfig or {}
        tracefs = self.tracefs()
        features = {}
        for group, events in TRACEPOINTS.items():
            if tracefs is None:
                features["tracepoints_" + group] = {
                    "available": None,
                    "method": "tracefs",
                    "detail": "tracefs is not mounted under %s/kernel/tracing" % self.sys_root,
                    "missing": [],
                }
                continue
            missing = [e for e in events if not os.path.exists(os.path.join(tracefs, "events", e, "format"))]
            features["tracepoints_" + group] = {
                "available": len(missing) < len(events),
                "method": "tracefs",
                "detail": "%d of %d present under %s/events"
                % (len(events) - len(missing), len(events), tracefs),
                "missing": missing,
            }
        kprobe_pmu = os.path.exists(os.path.join(self.sys_root, "bus/event_source/devices/kprobe/type"))
        features["kprobes"] = {
            "available": kprobe_pmu,
            "method": "kprobe PMU",
            "detail": "%s/bus/event_source/devices/kprobe/type %s"
            % (self.sys_root, "exists" if kprobe_pmu else "is missing"),
        }
        btf = os.path.exists(os.path.join(self.sys_root, "kernel/btf/vmlinux"))
        features["btf"] = {
            "available": btf,
            "method": "sysfs",
            "detail": "%s/kernel/btf/vmlinux" % self.sys_root,
        }
        features["kfunc"] = self.kfunc_feature(btf, kconfig, tracefs)
        return features

    def kfunc_feature(self, btf, kconfig, tracefs):
        if not btf:
            return {"available": False, "method": "sysfs", "detail": "no kernel BTF"}
        if kconfig.get("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS") == "n":
            return {
                "available": False,
                "method": "kernel config",
                "detail": "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS is not set (no BPF trampolines)",
            }
        if tracefs is None:
            return {"available": None, "method": "tracefs", "detail": "BTF present; tracefs not mounted"}
        path = os.path.join(tracefs, "available_filter_functions")
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            return {
                "available": False,
                "method": "tracefs",
                "detail": "BTF present but %s is not readable (%s): no attach targets" % (path, exc.strerror),
            }
        return {"available": True, "method": "tracefs", "detail": "BTF present and %s readable" % path}

    # ---- everything ------------------------------------------------------------------------
    def collect(self):
        engines = self.collect_engines()
        facts = {
            "schema_version": SCHEMA_VERSION,
            "roots": {
                "etc_root": self.etc_root,
                "run_root": self.run_root,
                "proc_root": self.proc_root,
                "sys_root": self.sys_root,
                "host_root": self.host_root,
            },
            "engines": engines,
            "services": self.collect_services(),
        }
        facts["containers"] = self.collect_containers(engines)
        host_key, host_source = self.host_mnt_ns()
        facts["host_mnt_ns"] = host_key[1] if host_key else None
        facts["host_mnt_ns_source"] = host_source
        facts["host_mounts"] = self.collect_host_mounts()
        facts["kubelet"] = self.collect_kubelet(engines)
        docker = engines.get("docker")
        if docker and docker["settings"].get("data_root"):
            # dockerd makes its data root shared at start: a propagation fix must leave it so.
            docker["settings"]["data_root_mount"] = self.path_mount(docker["settings"]["data_root"])
        facts["kernel"] = self.collect_kernel()
        summarize_user_namespaces(engines, facts["containers"], facts["host_mounts"])
        facts["advisories"] = advisories.evaluate(facts)
        facts["advisories_checked"] = [a["id"] for a in advisories.ADVISORIES]
        facts["problems"] = [p.to_dict() for p in self.problems]
        facts["warnings"] = list(self.warnings)
        return facts


# containerd 2.0 introduced idmapped image layers for user-namespaced containers (the
# per-layer idmap storm of MO-RT-001); 1.x remapped snapshots by chown instead.
CONTAINERD_IDMAPPED_LAYERS_SINCE = "2.0.0-alpha.0"


def summarize_user_namespaces(engines, containers, host_mounts):
    """Per engine: how many live containers use a user namespace or idmapped mounts.

    containerd also gets ``idmapped_layers`` (true, false or null when it cannot be known) and
    the reason, from its version, its user-namespaced containers and leftover tmpmounts.
    """
    for name, record in engines.items():
        mine = [
            c
            for c in containers
            if c["alive"] and (c.get("engine") == name or (c.get("engine") is None and c["runtime"] == name))
        ]
        if not mine and name not in ("containerd", "crio", "docker", "podman"):
            continue
        summary = {
            "containers": len(mine),
            "with_user_namespace": sum(1 for c in mine if c["user_namespace"]["enabled"]),
            "with_idmapped_mounts": sum(1 for c in mine if c["idmapped_mounts"]),
        }
        if name == "containerd":
            summary["idmapped_layers"], summary["idmapped_layers_basis"] = _containerd_idmapped_layers(
                record.get("version"),
                summary["with_user_namespace"],
                host_mounts.get("ovl_idmapped_tmpmounts"),
            )
        record["user_namespaces"] = summary


def _containerd_idmapped_layers(version, userns_containers, tmpmounts):
    if tmpmounts:
        return True, "%d ovl-idmapped tmpmounts in the host mount table" % tmpmounts
    if not userns_containers:
        return False, "no live user-namespaced containerd containers"
    parsed = cfg.Version.parse(version) if version else None
    if parsed is None:
        return None, "%d user-namespaced containers; containerd version unknown" % userns_containers
    if cfg.Version.parse(CONTAINERD_IDMAPPED_LAYERS_SINCE) <= parsed:
        return True, "containerd %s idmaps image layers for %d user-namespaced containers" % (
            version,
            userns_containers,
        )
    return False, "containerd %s does not idmap image layers" % version


# ---------------------------------------------------------------------------------------------
# OCI spec views
# ---------------------------------------------------------------------------------------------


def mount_propagation(options):
    """The last propagation word in a mount's options (the runtime applies them in order)."""
    found = None
    for option in options or ():
        if option in PROPAGATION_OPTIONS:
            found = option
    return found


def _spec_view(spec):
    linux = spec.get("linux") if isinstance(spec.get("linux"), dict) else {}
    rootfs = linux.get("rootfsPropagation")
    mounts = []
    for mount in spec.get("mounts") or ():
        if not isinstance(mount, dict):
            continue
        options = [str(o) for o in mount.get("options") or () if isinstance(o, (str, int))]
        mounts.append(
            {
                "destination": mount.get("destination"),
                "source": mount.get("source"),
                "type": mount.get("type"),
                "options": options,
                "propagation": mount_propagation(options),
                "idmapped": bool(mount.get("uidMappings")) or "idmap" in options or "ridmap" in options,
            }
        )
    namespaces = [n.get("type") for n in linux.get("namespaces") or () if isinstance(n, dict)]
    uid_maps = _mappings(linux.get("uidMappings"))
    gid_maps = _mappings(linux.get("gidMappings"))
    annotations = spec.get("annotations") if isinstance(spec.get("annotations"), dict) else {}
    return {
        "rootfs_propagation": rootfs if isinstance(rootfs, str) and rootfs else None,
        "mounts": mounts,
        "user_namespace": {
            "enabled": "user" in namespaces,
            "uid_mappings": uid_maps,
            "gid_mappings": gid_maps,
        },
        "pod": _pod(annotations),
    }


def _mappings(items):
    result = []
    for item in items or ():
        if isinstance(item, dict):
            result.append(
                {
                    "container_id": item.get("containerID", item.get("container_id")),
                    "host_id": item.get("hostID", item.get("host_id")),
                    "size": item.get("size"),
                }
            )
    return result


POD_ANNOTATIONS = (
    (
        "io.kubernetes.cri.sandbox-name",
        "io.kubernetes.cri.sandbox-namespace",
        "io.kubernetes.cri.container-name",
    ),
    ("io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.container.name"),
)


def _pod(annotations):
    for name_key, namespace_key, container_key in POD_ANNOTATIONS:
        if name_key in annotations:
            return {
                "name": annotations.get(name_key),
                "namespace": annotations.get(namespace_key),
                "container": annotations.get(container_key),
            }
    return None


def propagation_from_flags(flags):
    """Decode mount(2) propagation flags (libcontainer's rootPropagation) into an OCI word."""
    if not isinstance(flags, int) or not flags:
        return None
    for bit, name in PROPAGATION_FLAGS:
        if flags & bit:
            return ("r" + name) if flags & MS_REC else name
    return None


def _libcontainer_view(config):
    mounts = []
    for mount in config.get("mounts") or ():
        if not isinstance(mount, dict):
            continue
        flags = mount.get("propagation_flags") or []
        propagation = None
        for value in flags:
            propagation = propagation_from_flags(value) or propagation
        mounts.append(
            {
                "destination": mount.get("destination"),
                "source": mount.get("source"),
                "type": mount.get("device"),
                "options": [],
                "propagation": propagation,
                "idmapped": bool(mount.get("idmap") or mount.get("uidMappings") or mount.get("uid_mappings")),
            }
        )
    namespaces = [n.get("type") for n in config.get("namespaces") or () if isinstance(n, dict)]
    return {
        "rootfs_propagation": propagation_from_flags(config.get("rootPropagation")),
        "mounts": mounts,
        "user_namespace": {
            "enabled": "NEWUSER" in namespaces,
            "uid_mappings": _mappings(config.get("uid_mappings")),
            "gid_mappings": _mappings(config.get("gid_mappings")),
        },
        "pod": None,
    }


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def covering_mount(mounts, path):
    """The mount that holds ``path`` (bytes): the deepest mount point above it, topmost if stacked."""
    best = None
    for mount in mounts:
        point = mount.mount_point
        inside = path == point or path.startswith(point.rstrip(b"/") + b"/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


def _flags(argv, wanted):
    """Pick value flags out of a command line: ``--x=v``, ``--x v`` and ``-c v``."""
    values = {}
    for index, arg in enumerate(argv[1:], 1):
        for name, spellings in wanted.items():
            for spelling in spellings:
                if arg == spelling and index + 1 < len(argv):
                    values[name] = argv[index + 1]
                elif arg.startswith(spelling + "="):
                    values[name] = arg[len(spelling) + 1 :]
    return values


def _path(raw):
    return raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw


def probe_syscall(number):
    """Call a mount syscall with a NULL request: ENOSYS means absent, EFAULT/EINVAL present.

    A NULL request fails in copy_from_user before the kernel takes any mount lock, so the probe
    is free. Returns (available, detail) or None when the probe cannot be made here.
    """
    if platform.system() != "Linux" or platform.machine() not in SYSCALL_PROBE_ARCHES:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    result = syscall(ctypes.c_long(number), None, None, ctypes.c_size_t(0), ctypes.c_uint(0))
    err = ctypes.get_errno()
    if result == 0:
        return True, "syscall %d returned 0" % number
    if err == errno.ENOSYS:
        return False, "syscall %d: ENOSYS" % number
    if err == errno.EPERM:
        return None
    return True, "syscall %d: %s (present)" % (number, errno.errorcode.get(err, err))

# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for container engine configs, systemd units and ``--version`` outputs.

Nothing here touches the system: callers hand in text (and file names, for error messages) and
get dicts back. Bad input never raises out of the ``interpret_*``/``effective_*`` helpers; it is
returned as ``Problem`` records (file, line, what was wrong) next to whatever could be read.
"""

from __future__ import annotations

import functools
import json
import re

from ansible_collections.mountops.fleet.plugins.module_utils import _runtime_toml


class Problem:
    """Something in an input file we could not use: where it is and what was wrong."""

    __slots__ = ("component", "file", "key", "line", "message")

    def __init__(self, file, line, message, component=None, key=None):
        self.file = file
        self.line = line
        self.message = message
        self.component = component
        # The key the problem is about, so that locate_lines() can find its line later.
        self.key = key

    def to_dict(self):
        return {"component": self.component, "file": self.file, "line": self.line, "message": self.message}

    def __repr__(self):
        return "Problem(%r, %r, %r)" % (self.file, self.line, self.message)


# ---------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------

# First match wins; group 1 is the version token. Outputs are the engines' real `--version` texts.
VERSION_PATTERNS = {
    # "containerd containerd.io 1.7.27 05044ec...", "containerd github.com/containerd/containerd/v2 v2.1.4 ..."
    "containerd": (r"^containerd\s+\S+\s+(v?\d+\.\d+\S*)",),
    # "Docker version 28.3.3, build 980b856"
    "docker": (r"^Docker version\s+(v?\d+\.\d+[^,\s]*)",),
    # "crio version 1.28.1" (first line) or "Version:        1.32.0" (table form)
    "crio": (r"^crio version\s+(v?\d+\.\d+\S*)", r"^Version:\s+(v?\d+\.\d+\S*)"),
    "podman": (r"^podman version\s+(v?\d+\.\d+\S*)",),
    "runc": (r"^runc version\s+(v?\d+\.\d+\S*)",),
    "crun": (r"^crun version\s+(v?\d+\.\d+\S*)",),
    # "Kubernetes v1.31.2"
    "kubelet": (r"^Kubernetes\s+(v?\d+\.\d+\S*)",),
}

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*(.*)$")
_PRERELEASE_RE = re.compile(r"^[-~.]?(alpha|beta|rc|pre|dev)[.\-]?(\d*)", re.IGNORECASE)


@functools.total_ordering
class Version:
    """A comparable release version; ``-rc.1``/``~rc1`` sort before the release, ``+ds1``/``-ce`` don't."""

    __slots__ = ("major", "minor", "patch", "pre", "text")

    def __init__(self, major, minor, patch=0, pre=None, text=None):
        self.major, self.minor, self.patch = major, minor, patch
        self.pre = pre
        self.text = text or "%d.%d.%d" % (major, minor, patch)

    @classmethod
    def parse(cls, text):
        """Parse "2.0.7", "v1.31.2", "1.6.20~ds1", "28.0.0-rc.1"; return None when it is not a version."""
        if not isinstance(text, str):
            return None
        match = _VERSION_RE.match(text.strip())
        if not match:
            return None
        major, minor, patch = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
        pre = None
        suffix = match.group(4)
        pre_match = _PRERELEASE_RE.match(suffix)
        if pre_match:
            pre = (pre_match.group(1).lower(), int(pre_match.group(2) or 0))
        return cls(major, minor, patch, pre, text.strip())

    def key(self):
        # A release sorts after all of its pre-releases.
        pre = (1, "", 0) if self.pre is None else (0, self.pre[0], self.pre[1])
        return (self.major, self.minor, self.patch) + pre

    def __eq__(self, other):
        return isinstance(other, Version) and self.key() == other.key()

    def __lt__(self, other):
        return self.key() < other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        return "Version(%r)" % self.text

    def to_dict(self):
        return {
            "major": self.major,
            "minor": self.minor,
            "patch": self.patch,
            "prerelease": None if self.pre is None else "%s%d" % self.pre,
        }


def parse_version_output(engine, output):
    """Return (version_text, first_line) from an engine's ``--version`` output.

    version_text is the token as printed without a leading "v" (None when nothing matched).
    """
    output = output or ""
    first = next((line.strip() for line in output.splitlines() if line.strip()), None)
    for pattern in VERSION_PATTERNS.get(engine, ()):
        match = re.search(pattern, output, re.MULTILINE)
        if match:
            token = match.group(1)
            return (token[1:] if token.startswith("v") else token), first
    return None, first


_RANGE_PART_RE = re.compile(r"^\s*(>=|<=|>|<|==)\s*(\S+)\s*$")
_COMPARATORS = {
    ">=": lambda a, b: b <= a,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: b < a,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def version_in_range(version, spec):
    """True when ``version`` satisfies every comparison in ``spec`` (">=2.0.0,<2.0.7")."""
    if isinstance(version, str):
        version = Version.parse(version)
    if version is None:
        return False
    for part in spec.split(","):
        match = _RANGE_PART_RE.match(part)
        if not match:
            raise ValueError("bad version range %r" % spec)
        bound = Version.parse(match.group(2))
        if bound is None:
            raise ValueError("bad version in range %r" % spec)
        if not _COMPARATORS[match.group(1)](version, bound):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Loading documents
# ---------------------------------------------------------------------------------------------


def load_toml(path, text, component=None):
    """Return (document, problem); exactly one of them is None."""
    try:
        doc = _runtime_toml.loads(text)
    except _runtime_toml.TomlError as exc:
        return None, Problem(path, exc.line, "invalid TOML: %s" % exc.reason, component)
    return doc, None


def load_json(path, text, component=None):
    """Return (object, problem) for a JSON file that must hold an object."""
    if not text.strip():
        # dockerd accepts an empty daemon.json; so do we.
        return {}, None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, Problem(
            path, exc.lineno, "invalid JSON: %s (column %s)" % (exc.msg, exc.colno), component
        )
    if not isinstance(doc, dict):
        return None, Problem(path, 1, "expected a JSON object, found %s" % type(doc).__name__, component)
    return doc, None


def line_of(text, needle):
    """1-based line of the first occurrence of needle in text (for errors about valid syntax)."""
    if not text:
        return None
    index = text.find(needle)
    return None if index < 0 else text.count("\n", 0, index) + 1


def line_of_key(text, key):
    """1-based line where ``key`` (bare or quoted) is assigned, ignoring comments; None if absent."""
    if not text:
        return None
    pattern = re.compile(r"""^[ \t]*(?:[\w.\-"']*\.)?["']?%s["']?[ \t]*=""" % re.escape(key), re.MULTILINE)
    match = pattern.search(text)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def locate_lines(problems, texts):
    """Fill in the line of problems that name a key, from the text of their file."""
    for problem in problems:
        if problem.line is None and problem.key and problem.file in texts:
            problem.line = line_of_key(texts[problem.file], problem.key)
    return problems


def dig(doc, *path):
    """doc[path[0]][path[1]]... or None when any step is missing or not a table."""
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


# ---------------------------------------------------------------------------------------------
# containerd
# ---------------------------------------------------------------------------------------------

# Where each config version keeps the CRI runtime settings and the snapshotter.
CONTAINERD_CRI_LAYOUT = {
    1: {"runtime": ("plugins", "cri", "containerd"), "images": ("plugins", "cri", "containerd")},
    2: {
        "runtime": ("plugins", "io.containerd.grpc.v1.cri", "containerd"),
        "images": ("plugins", "io.containerd.grpc.v1.cri", "containerd"),
    },
    3: {
        "runtime": ("plugins", "io.containerd.cri.v1.runtime", "containerd"),
        "images": ("plugins", "io.containerd.cri.v1.images"),
    },
}
CONTAINERD_DEFAULTS = {"root": "/var/lib/containerd", "state": "/run/containerd", "default_runtime": "runc"}


# containerd 2.0 (containerd PR #9982) merges imported plugin sections key by key; 1.x replaced
# a plugin's whole section with the one from the later file (containerd issue #5837).
CONTAINERD_DEEP_MERGE_SINCE = "2.0.0-alpha.0"


def containerd_merge_strategy(containerd_version, config_version):
    """("deep"|"replace", why) for merging imports, from the daemon version or the config version."""
    parsed = Version.parse(containerd_version) if containerd_version else None
    if parsed is not None:
        deep = Version.parse(CONTAINERD_DEEP_MERGE_SINCE) <= parsed
        return ("deep" if deep else "replace"), "containerd %s" % containerd_version
    if config_version == 3:
        return "deep", "assumed from config version 3 (only containerd 2.x reads it)"
    return "replace", "assumed (containerd version unknown)"


def _deep_merge(base, overlay):
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = _deep_merge(merged[key], value) if key in merged else value
    return merged


def merge_containerd(docs, strategy="replace"):
    """Merge containerd config documents the way containerd does for ``imports``.

    ``docs`` is [(path, dict)] with the main file first. Top-level keys of later files win;
    ``plugins`` merge per plugin id: with "replace" a later file's section replaces the earlier
    one entirely, with "deep" tables merge key by key and later values win. Returns
    (merged, sources) where sources maps "version"/"root"/"state"/"plugins.<id>" to the last file
    that set it.
    """
    merged, sources = {}, {}
    for path, doc in docs:
        for key, value in doc.items():
            if key == "plugins" and isinstance(value, dict):
                plugins = merged.setdefault("plugins", {})
                for plugin_id, section in value.items():
                    if strategy == "deep" and plugin_id in plugins:
                        plugins[plugin_id] = _deep_merge(plugins[plugin_id], section)
                    else:
                        plugins[plugin_id] = section
                    sources["plugins.%s" % plugin_id] = path
            elif key != "imports":
                merged[key] = value
                sources[key] = path
    return merged, sources


def _last_definer(docs, path, strategy, section_source):
    """File that set the value at ``path`` in the merged result (None: containerd's default)."""
    if strategy == "replace":
        for file, doc in docs:
            if file == section_source:
                return file if dig(doc, *path) is not None else None
        return None
    found = None
    for file, doc in docs:
        if dig(doc, *path) is not None:
            found = file
    return found


def interpret_containerd(docs, texts=None, containerd_version=None):
    """Settings that matter from merged containerd config documents: [(path, dict)], main first.

    Returns (settings, problems). ``texts`` maps path -> text, only used to point problems at
    lines; ``containerd_version`` decides how imports merge.
    """
    texts = texts or {}
    problems = []
    first_version = docs[0][1].get("version", 1) if docs else 1
    strategy, strategy_basis = containerd_merge_strategy(containerd_version, first_version)
    merged, sources = merge_containerd(docs, strategy)
    main_path = docs[0][0] if docs else None
    version = merged.get("version", 1)
    if not isinstance(version, int) or version not in CONTAINERD_CRI_LAYOUT:
        path = sources.get("version", main_path)
        problems.append(
            Problem(path, line_of(texts.get(path), "version"), "unsupported config version %r" % (version,))
        )
        version = 2 if version not in CONTAINERD_CRI_LAYOUT else version
    layout = CONTAINERD_CRI_LAYOUT[version]
    cri = dig(merged, *layout["runtime"])
    plugin_id = layout["runtime"][1]
    cri_source = sources.get("plugins.%s" % plugin_id)
    settings = {
        "config_version": version,
        "root": _str_or_default(merged.get("root"), CONTAINERD_DEFAULTS["root"]),
        "state": _str_or_default(merged.get("state"), CONTAINERD_DEFAULTS["state"]),
        "cri_plugin": plugin_id,
        "cri_plugin_source": cri_source,
        "merge_strategy": strategy,
        "merge_strategy_basis": strategy_basis,
        "default_runtime": CONTAINERD_DEFAULTS["default_runtime"],
        "default_runtime_source": "default",
        "runtimes": {},
        "snapshotter": None,
    }
    if cri is not None and not isinstance(cri, dict):
        problems.append(
            Problem(cri_source, None, "CRI section %s is not a table" % ".".join(layout["runtime"]))
        )
        cri = None
    cri = cri or {}
    name = cri.get("default_runtime_name")
    name_source = _last_definer(docs, layout["runtime"] + ("default_runtime_name",), strategy, cri_source)
    if isinstance(name, str) and name:
        settings["default_runtime"] = name
        settings["default_runtime_source"] = name_source
    elif name is not None:
        problems.append(
            Problem(
                name_source,
                line_of(texts.get(name_source), "default_runtime_name"),
                "default_runtime_name must be a string",
            )
        )
    runtimes = cri.get("runtimes", {})
    if not isinstance(runtimes, dict):
        problems.append(
            Problem(cri_source, line_of(texts.get(cri_source), "runtimes"), "runtimes must be a table")
        )
        runtimes = {}
    for runtime_name, entry in sorted(runtimes.items()):
        if not isinstance(entry, dict):
            problems.append(
                Problem(
                    cri_source,
                    line_of(texts.get(cri_source), runtime_name),
                    "runtime %r is not a table" % runtime_name,
                )
            )
            continue
        options = entry.get("options") if isinstance(entry.get("options"), dict) else {}
        settings["runtimes"][runtime_name] = {
            "runtime_type": entry.get("runtime_type"),
            "runtime_path": entry.get("runtime_path"),
            "binary_name": options.get("BinaryName"),
            "root": options.get("Root"),
            "systemd_cgroup": options.get("SystemdCgroup"),
            "privileged_without_host_devices": entry.get("privileged_without_host_devices"),
        }
    images = dig(merged, *layout["images"]) or {}
    snapshotter = images.get("snapshotter") if isinstance(images, dict) else None
    settings["snapshotter"] = snapshotter if isinstance(snapshotter, str) else "overlayfs"
    return settings, problems


def containerd_imports(doc):
    """The ``imports`` list of one containerd document (strings only), or [] when absent."""
    imports = doc.get("imports") if isinstance(doc, dict) else None
    if not isinstance(imports, list):
        return []
    return [item for item in imports if isinstance(item, str)]


def _str_or_default(value, default):
    return value if isinstance(value, str) and value else default


# ---------------------------------------------------------------------------------------------
# dockerd
# ---------------------------------------------------------------------------------------------

DOCKER_DEFAULTS = {
    "default_runtime": "runc",
    "data_root": "/var/lib/docker",
    "exec_root": "/var/run/docker",
}


def interpret_docker(path, doc, text=None):
    """Settings from /etc/docker/daemon.json (already loaded). Returns (settings, problems)."""
    problems = []
    settings = {
        "default_runtime": DOCKER_DEFAULTS["default_runtime"],
        "default_runtime_source": "default",
        "runtimes": {},
        "data_root": DOCKER_DEFAULTS["data_root"],
        "exec_root": DOCKER_DEFAULTS["exec_root"],
        "userns_remap": None,
        "containerd": None,
        "containerd_snapshotter": None,
    }
    string_keys = {
        "default-runtime": "default_runtime",
        "data-root": "data_root",
        "exec-root": "exec_root",
        "userns-remap": "userns_remap",
        "containerd": "containerd",
    }
    for json_key, name in string_keys.items():
        if json_key not in doc:
            continue
        value = doc[json_key]
        if not isinstance(value, str):
            problems.append(Problem(path, line_of(text, '"%s"' % json_key), "%s must be a string" % json_key))
            continue
        settings[name] = value
        if name == "default_runtime":
            settings["default_runtime_source"] = path
    runtimes = doc.get("runtimes", {})
    if not isinstance(runtimes, dict):
        problems.append(Problem(path, line_of(text, '"runtimes"'), "runtimes must be an object"))
        runtimes = {}
    for name, entry in sorted(runtimes.items()):
        if not isinstance(entry, dict):
            problems.append(
                Problem(path, line_of(text, '"%s"' % name), "runtime %r must be an object" % name)
            )
            continue
        settings["runtimes"][name] = {
            "path": entry.get("path"),
            "runtime_type": entry.get("runtimeType"),
            "args": entry.get("runtimeArgs") if isinstance(entry.get("runtimeArgs"), list) else [],
        }
    features = doc.get("features")
    if isinstance(features, dict) and "containerd-snapshotter" in features:
        settings["containerd_snapshotter"] = bool(features["containerd-snapshotter"])
    return settings, problems


# ---------------------------------------------------------------------------------------------
# CRI-O and Podman (containers.conf): per-key overrides across drop-ins
# ---------------------------------------------------------------------------------------------


def _overlay_keys(docs, section_path, keys, settings, problems, kind):
    """Apply ``keys`` found at section_path of each doc in order: later files win, per key."""
    for path, doc in docs:
        section = dig(doc, *section_path)
        if section is None:
            continue
        if not isinstance(section, dict):
            problems.append(
                Problem(path, None, "[%s] is not a table" % ".".join(section_path), key=section_path[-1])
            )
            continue
        for key, (name, expected) in keys.items():
            if key not in section:
                continue
            value = section[key]
            if not isinstance(value, expected):
                problems.append(
                    Problem(
                        path,
                        None,
                        "%s %s.%s has the wrong type" % (kind, ".".join(section_path), key),
                        key=key,
                    )
                )
                continue
            settings[name] = value
            settings.setdefault("sources", {})[name] = path


def interpret_crio(docs, version=None):
    """CRI-O settings from crio.conf then crio.conf.d/*.conf in lexical order: [(path, dict)]."""
    problems = []
    settings = {"default_runtime": None, "runtimes": {}, "sources": {}}
    keys = {
        "default_runtime": ("default_runtime", str),
        "default_mounts_file": ("default_mounts_file", str),
        "namespaces_dir": ("namespaces_dir", str),
    }
    _overlay_keys(docs, ("crio", "runtime"), keys, settings, problems, "CRI-O")
    _overlay_keys(
        docs,
        ("crio",),
        {"root": ("storage_root", str), "runroot": ("storage_runroot", str)},
        settings,
        problems,
        "CRI-O",
    )
    for path, doc in docs:
        runtimes = dig(doc, "crio", "runtime", "runtimes")
        if runtimes is None:
            continue
        if not isinstance(runtimes, dict):
            problems.append(Problem(path, None, "[crio.runtime.runtimes] is not a table", key="runtimes"))
            continue
        for name, entry in runtimes.items():
            if not isinstance(entry, dict):
                problems.append(Problem(path, None, "runtime %r is not a table" % name, key=name))
                continue
            merged = settings["runtimes"].setdefault(name, {"source": path})
            merged["source"] = path
            for key in (
                "runtime_path",
                "runtime_type",
                "runtime_root",
                "allowed_annotations",
                "monitor_path",
            ):
                if key in entry:
                    merged[key] = entry[key]
    if settings["default_runtime"] is None:
        # CRI-O switched its built-in default from runc to crun in 1.31.
        parsed = Version.parse(version) if version else None
        settings["default_runtime"] = "crun" if parsed and Version(1, 31, 0) <= parsed else "runc"
        settings["sources"]["default_runtime"] = "default" if parsed else "default (assumed; version unknown)"
    return settings, problems


def interpret_containers_conf(docs):
    """Podman settings from containers.conf files in precedence order: [(path, dict)]."""
    problems = []
    settings = {"runtime": None, "runtimes": {}, "userns": None, "sources": {}}
    _overlay_keys(docs, ("engine",), {"runtime": ("runtime", str)}, settings, problems, "containers.conf")
    _overlay_keys(docs, ("containers",), {"userns": ("userns", str)}, settings, problems, "containers.conf")
    for path, doc in docs:
        runtimes = dig(doc, "engine", "runtimes")
        if isinstance(runtimes, dict):
            for name, paths in runtimes.items():
                if isinstance(paths, list):
                    settings["runtimes"][name] = [p for p in paths if isinstance(p, str)]
                else:
                    problems.append(
                        Problem(path, None, "[engine.runtimes] %s must be a list of paths" % name, key=name)
                    )
    if settings["runtime"] is None:
        settings["runtime"] = "crun"
        settings["sources"]["runtime"] = "default (podman prefers crun; distributions may differ)"
    return settings, problems


# ---------------------------------------------------------------------------------------------
# systemd units
# ---------------------------------------------------------------------------------------------

# [Service] settings that make systemd give the service its own mount namespace. With
# MountFlags= they decide whether mounts the service makes are seen by the host.
MOUNT_NAMESPACE_SETTINGS = (
    "PrivateMounts",
    "PrivateTmp",
    "PrivateDevices",
    "ProtectSystem",
    "ProtectHome",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectControlGroups",
    "ReadOnlyPaths",
    "ReadWritePaths",
    "InaccessiblePaths",
    "BindPaths",
    "BindReadOnlyPaths",
    "TemporaryFileSystem",
    "RootDirectory",
    "RootImage",
)
UNIT_SETTINGS_OF_INTEREST = ("MountFlags",) + MOUNT_NAMESPACE_SETTINGS
_FALSE_WORDS = ("0", "no", "false", "off", "")


def parse_unit(path, text):
    """Parse a systemd unit file or drop-in into ([(section, key, value, line)], problems).

    Follows systemd.syntax(7): comments start with # or ;, a trailing backslash continues a line,
    assignments outside a section and lines that are neither are reported (systemd ignores them).
    """
    assignments, problems = [], []
    section = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start = index
        line = lines[index].strip()
        index += 1
        while line.endswith("\\") and index < len(lines):
            following = lines[index].strip()
            index += 1
            if following.startswith(("#", ";")):
                continue
            line = line[:-1] + " " + following
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                problems.append(Problem(path, start + 1, "malformed section header %r" % line))
                section = None
                continue
            section = line[1:-1]
            continue
        if "=" not in line:
            problems.append(Problem(path, start + 1, "not an assignment: %r" % line))
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if not key or " " in key:
            problems.append(Problem(path, start + 1, "invalid key in %r" % line))
            continue
        if section is None:
            problems.append(Problem(path, start + 1, "assignment %s= outside of any section" % key))
            continue
        assignments.append((section, key, value.strip(), start + 1))
    return assignments, problems


def effective_unit_settings(parsed_files, keys=UNIT_SETTINGS_OF_INTEREST, section="Service"):
    """Fold parsed unit + drop-ins (in load order) into {key: {value, source, line}}.

    Later assignments win; an empty assignment resets the setting (systemd semantics for these
    single-value settings), so the result then records where it was reset.
    """
    result = {}
    for path, assignments in parsed_files:
        for sect, key, value, line in assignments:
            if sect != section or key not in keys:
                continue
            result[key] = {"value": value if value != "" else None, "source": path, "line": line}
    return result


def implies_mount_namespace(settings):
    """Names of the settings that give the service its own mount namespace."""
    names = []
    for key in MOUNT_NAMESPACE_SETTINGS:
        entry = settings.get(key)
        if entry is None or entry["value"] is None:
            continue
        if entry["value"].lower() in _FALSE_WORDS:
            continue
        names.append(key)
    return names

"""Pure parsers for runtime_facts: versions, engine configs, systemd units."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _runtime_config as cfg

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "runtime")


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), encoding="utf-8") as handle:
        return handle.read()


# ---- versions ---------------------------------------------------------------------------------

VERSION_CASES = [
    ("containerd", "containerd-1.6.20-debian", "1.6.20~ds1", (1, 6, 20, None)),
    ("containerd", "containerd-1.7.27", "1.7.27", (1, 7, 27, None)),
    ("containerd", "containerd-2.0.5", "2.0.5", (2, 0, 5, None)),
    ("containerd", "containerd-2.0.7", "2.0.7", (2, 0, 7, None)),
    ("containerd", "containerd-2.1.4", "2.1.4", (2, 1, 4, None)),
    ("containerd", "containerd-2.2.0", "2.2.0", (2, 2, 0, None)),
    ("docker", "docker-18.06.1-ce", "18.06.1-ce", (18, 6, 1, None)),
    ("docker", "docker-20.10.24-debian", "20.10.24+dfsg1", (20, 10, 24, None)),
    ("docker", "docker-28.3.3", "28.3.3", (28, 3, 3, None)),
    ("crio", "crio-1.24.6", "1.24.6", (1, 24, 6, None)),
    ("crio", "crio-1.32.4", "1.32.4", (1, 32, 4, None)),
    ("podman", "podman-4.3.1", "4.3.1", (4, 3, 1, None)),
    ("podman", "podman-5.4.2", "5.4.2", (5, 4, 2, None)),
    ("runc", "runc-1.1.5-debian", "1.1.5+ds1", (1, 1, 5, None)),
    ("runc", "runc-1.2.5", "1.2.5", (1, 2, 5, None)),
    ("crun", "crun-1.8.1", "1.8.1", (1, 8, 1, None)),
    ("crun", "crun-1.19.1", "1.19.1", (1, 19, 1, None)),
    ("kubelet", "kubelet-1.31.2", "1.31.2", (1, 31, 2, None)),
    ("kubelet", "kubelet-1.29.0-rc.2", "1.29.0-rc.2", (1, 29, 0, "rc2")),
]


@pytest.mark.parametrize("engine, name, text, parts", VERSION_CASES, ids=[c[1] for c in VERSION_CASES])
def test_version_outputs(engine, name, text, parts):
    output = fixture("versions", name + ".txt")
    version, first_line = cfg.parse_version_output(engine, output)
    assert version == text
    assert first_line == output.splitlines()[0].strip()
    info = cfg.Version.parse(version).to_dict()
    assert (info["major"], info["minor"], info["patch"], info["prerelease"]) == parts


def test_every_version_fixture_is_covered():
    names = {n[:-4] for n in os.listdir(os.path.join(FIXTURES, "versions"))}
    assert names == {c[1] for c in VERSION_CASES}


@pytest.mark.parametrize(
    "engine, output",
    [
        ("containerd", ""),
        ("containerd", "bash: containerd: command not found"),
        ("runc", "Docker version 1.2.3"),
        ("nope", "x 1.2"),
    ],
)
def test_version_outputs_without_a_version(engine, output):
    assert cfg.parse_version_output(engine, output)[0] is None


@pytest.mark.parametrize(
    "lower, higher",
    [
        ("2.0.6", "2.0.7"),
        ("2.0.7-rc.1", "2.0.7"),
        ("2.0.7~rc1", "2.0.7"),
        ("2.0.0-alpha.0", "2.0.0-beta.1"),
        ("2.0.0-beta.2", "2.0.0-rc.0"),
        ("1.9.99", "1.10.0"),
        ("18.06.1-ce", "18.09.0"),
        ("v1.31", "1.31.1"),
    ],
)
def test_version_ordering(lower, higher):
    assert cfg.Version.parse(lower) < cfg.Version.parse(higher)
    assert cfg.Version.parse(higher) > cfg.Version.parse(lower)
    assert cfg.Version.parse(lower) <= cfg.Version.parse(higher)


def test_build_metadata_is_not_a_prerelease():
    assert cfg.Version.parse("1.6.20~ds1") == cfg.Version.parse("1.6.20")
    assert cfg.Version.parse("20.10.24+dfsg1") == cfg.Version.parse("20.10.24")
    assert cfg.Version.parse("not-a-version") is None
    assert cfg.Version.parse(None) is None


@pytest.mark.parametrize(
    "version, spec, inside",
    [
        ("2.0.5", ">=2.0.0-alpha.0,<2.0.7", True),
        ("2.0.7", ">=2.0.0-alpha.0,<2.0.7", False),
        ("2.0.0-rc.3", ">=2.0.0-alpha.0,<2.0.7", True),
        ("1.7.27", ">=2.0.0-alpha.0,<2.0.7", False),
        ("2.1.4", ">=2.1.0-alpha.0,<2.1.5", True),
        ("18.09.0", ">=18.09.0", True),
        ("18.06.3-ce", ">=18.09.0", False),
        ("1.2.3", "==1.2.3", True),
        ("1.2.3", ">1.2.3", False),
        ("1.2.3", "<=1.2.3", True),
        ("garbage", ">=1.0.0", False),
    ],
)
def test_version_in_range(version, spec, inside):
    assert cfg.version_in_range(version, spec) is inside


@pytest.mark.parametrize("spec", ["~1.0", ">=x.y", ""])
def test_bad_ranges_are_programming_errors(spec):
    with pytest.raises(ValueError, match="bad version"):
        cfg.version_in_range("1.0.0", spec)


# ---- loading ----------------------------------------------------------------------------------


def test_load_json_reports_line_and_column():
    doc, problem = cfg.load_json(
        "/etc/docker/daemon.json", fixture("hosts", "broken", "etc", "docker", "daemon.json"), "docker"
    )
    assert doc is None
    assert (problem.file, problem.line, problem.component) == ("/etc/docker/daemon.json", 4, "docker")
    assert problem.message.startswith(
        "invalid JSON: Expecting property name enclosed in double quotes (column"
    )


@pytest.mark.parametrize(
    "text, message", [("[1]", "expected a JSON object, found list"), ('"x"', "found str")]
)
def test_load_json_wants_an_object(text, message):
    _doc, problem = cfg.load_json("f.json", text)
    assert message in problem.message and problem.line == 1


def test_load_json_accepts_an_empty_file():
    assert cfg.load_json("f.json", "  \n") == ({}, None)


def test_load_toml_problem():
    doc, problem = cfg.load_toml("c.toml", fixture("configs", "broken-unterminated.toml"), "podman")
    assert doc is None and problem.line == 3 and problem.message.startswith("invalid TOML")
    assert problem.to_dict() == {
        "component": "podman",
        "file": "c.toml",
        "line": 3,
        "message": problem.message,
    }


# ---- containerd -------------------------------------------------------------------------------


def toml(*parts):
    path = os.path.join(*parts)
    doc, problem = cfg.load_toml(path, fixture(*parts))
    assert problem is None
    return path, doc


def test_containerd_v1_short_plugin_ids():
    settings, problems = cfg.interpret_containerd([toml("configs", "containerd-v1.toml")])
    assert problems == []
    assert settings["config_version"] == 1 and settings["cri_plugin"] == "cri"
    assert settings["default_runtime"] == "runc" and settings["snapshotter"] == "overlayfs"
    assert settings["runtimes"]["runc"]["systemd_cgroup"] is False


def test_containerd_v2_with_an_import_replacing_the_cri_section():
    main = toml("configs", "containerd-v2.toml")
    assert cfg.containerd_imports(main[1]) == ["nvidia.toml"]
    alone = cfg.interpret_containerd([main])[0]
    assert alone["default_runtime"] == "runc" and alone["default_runtime_source"] == main[0]
    assert set(alone["runtimes"]) == {"kata-qemu", "runc"}
    assert alone["runtimes"]["kata-qemu"]["privileged_without_host_devices"] is True
    merged, problems = cfg.interpret_containerd([main, toml("configs", "nvidia.toml")])
    assert problems == []
    assert merged["default_runtime"] == "nvidia"
    assert merged["cri_plugin_source"].endswith("nvidia.toml")
    # containerd merges sections, not keys: the import's CRI section replaced the main one.
    assert set(merged["runtimes"]) == {"nvidia"}
    assert merged["runtimes"]["nvidia"]["root"] == "/run/nvidia/runc"
    assert merged["snapshotter"] == "overlayfs", "snapshotter falls back to the default with the section gone"


@pytest.mark.parametrize(
    "version, strategy, runtimes",
    [
        ("1.7.27", "replace", {"nvidia"}),
        ("2.0.0-rc.1", "deep", {"kata-qemu", "nvidia", "runc"}),
        ("2.1.4", "deep", {"kata-qemu", "nvidia", "runc"}),
    ],
)
def test_containerd_merge_strategy_follows_the_version(version, strategy, runtimes):
    main, nvidia = toml("configs", "containerd-v2.toml"), toml("configs", "nvidia.toml")
    settings, problems = cfg.interpret_containerd([main, nvidia], containerd_version=version)
    assert problems == [] and settings["merge_strategy"] == strategy
    assert set(settings["runtimes"]) == runtimes
    assert settings["default_runtime"] == "nvidia" and settings["default_runtime_source"] == nvidia[0]
    if strategy == "deep":
        assert settings["runtimes"]["runc"]["binary_name"] == "/usr/bin/runc"


def test_containerd_deep_merge_keeps_the_source_of_the_default():
    main = (
        "main.toml",
        {
            "version": 3,
            "plugins": {"io.containerd.cri.v1.runtime": {"containerd": {"default_runtime_name": "runc"}}},
        },
    )
    extra = (
        "extra.toml",
        {"plugins": {"io.containerd.cri.v1.runtime": {"containerd": {"runtimes": {"x": {}}}}}},
    )
    settings = cfg.interpret_containerd([main, extra])[0]
    assert settings["merge_strategy_basis"].startswith("assumed from config version 3")
    assert (settings["default_runtime"], settings["default_runtime_source"]) == ("runc", "main.toml")
    assert set(settings["runtimes"]) == {"x"}


def test_containerd_defaults_without_config():
    settings, problems = cfg.interpret_containerd([])
    assert problems == [] and settings["config_version"] == 1
    assert (settings["root"], settings["state"], settings["default_runtime"]) == (
        "/var/lib/containerd",
        "/run/containerd",
        "runc",
    )


@pytest.mark.parametrize(
    "text, message, line",
    [
        ('version = 9\nroot = "/x"\n', "unsupported config version 9", 1),
        ('version = "2"\n', "unsupported config version '2'", 1),
        (
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\nruntimes = 3\n',
            "runtimes must be a table",
            3,
        ),
        (
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\ndefault_runtime_name = 1\n',
            "default_runtime_name must be a string",
            3,
        ),
        (
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes]\nx = 1\n',
            "runtime 'x' is not a table",
            3,
        ),
        ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncontainerd = 1\n', "is not a table", None),
    ],
)
def test_containerd_semantic_problems(text, message, line):
    doc, problem = cfg.load_toml("c.toml", text)
    assert problem is None
    settings, problems = cfg.interpret_containerd([("c.toml", doc)], {"c.toml": text})
    assert len(problems) == 1 and message in problems[0].message
    assert problems[0].line == line
    assert settings["default_runtime"] == "runc", "the rest still has defaults"


# ---- docker -------------------------------------------------------------------------------------


def test_docker_defaults_and_bad_types():
    text = '{\n  "default-runtime": 5,\n  "runtimes": {"ok": {"path": "/x"}, "bad": "/y"},\n  "userns-remap": "default"\n}\n'
    doc = cfg.load_json("d.json", text)[0]
    settings, problems = cfg.interpret_docker("d.json", doc, text)
    assert settings["default_runtime"] == "runc" and settings["default_runtime_source"] == "default"
    assert settings["runtimes"] == {"ok": {"path": "/x", "runtime_type": None, "args": []}}
    assert settings["userns_remap"] == "default"
    assert [(p.line, p.message) for p in problems] == [
        (2, "default-runtime must be a string"),
        (3, "runtime 'bad' must be an object"),
    ]


def test_docker_runtimes_not_an_object():
    text = '{"runtimes": []}'
    settings, problems = cfg.interpret_docker("d.json", {"runtimes": []}, text)
    assert settings["runtimes"] == {} and problems[0].message == "runtimes must be an object"


# ---- CRI-O and containers.conf --------------------------------------------------------------


@pytest.mark.parametrize("version, expected", [("1.30.2", "runc"), ("1.31.0", "crun"), (None, "runc")])
def test_crio_default_runtime_depends_on_version(version, expected):
    settings, problems = cfg.interpret_crio([("c.conf", {"crio": {"runtime": {}}})], version)
    assert problems == [] and settings["default_runtime"] == expected
    assert settings["sources"]["default_runtime"].startswith("default")


def test_crio_dropins_override_per_key():
    docs = [
        (
            "crio.conf",
            {
                "crio": {
                    "runtime": {
                        "default_runtime": "runc",
                        "runtimes": {"runc": {"runtime_root": "/run/runc"}},
                    }
                }
            },
        ),
        ("10.conf", {"crio": {"runtime": {"runtimes": {"runc": {"runtime_path": "/usr/bin/runc"}}}}}),
        ("20.conf", {"crio": {"runtime": {"default_runtime": 7, "runtimes": "x"}}}),
    ]
    settings, problems = cfg.interpret_crio(docs)
    assert settings["default_runtime"] == "runc" and settings["sources"]["default_runtime"] == "crio.conf"
    assert settings["runtimes"]["runc"] == {
        "source": "10.conf",
        "runtime_root": "/run/runc",
        "runtime_path": "/usr/bin/runc",
    }
    assert sorted(p.message for p in problems) == [
        "CRI-O crio.runtime.default_runtime has the wrong type",
        "[crio.runtime.runtimes] is not a table",
    ]
    assert {p.file for p in problems} == {"20.conf"}


def test_type_problems_point_at_the_assignment_line():
    text = '# default_runtime is a name\n[crio.runtime]\n  "default_runtime" = 7\n[crio.runtime.runtimes.x]\n'
    doc = cfg.load_toml("c.conf", text)[0]
    doc["crio"]["runtime"]["runtimes"]["y"] = "not a table"
    _settings, problems = cfg.interpret_crio([("c.conf", doc)])
    located = cfg.locate_lines(problems, {"c.conf": text})
    assert [(p.line, p.message) for p in located] == [
        (3, "CRI-O crio.runtime.default_runtime has the wrong type"),
        (None, "runtime 'y' is not a table"),
    ]
    assert cfg.line_of_key("a.b = 1\n", "b") == 1 and cfg.line_of_key(None, "b") is None


def test_containers_conf_defaults_and_problems():
    settings, problems = cfg.interpret_containers_conf(
        [("c.conf", {"engine": {"runtimes": {"crun": "/usr/bin/crun"}}})]
    )
    assert settings["runtime"] == "crun" and settings["sources"]["runtime"].startswith("default")
    assert problems[0].message == "[engine.runtimes] crun must be a list of paths"


# ---- systemd ------------------------------------------------------------------------------------


UNIT = """\
# comment
; another comment
[Unit]
Description=x \\
  continued
MountFlags=ignored-outside-service

[Service]
ExecStart=/usr/bin/dockerd \\
# a comment inside a continuation is dropped
  --flag
MountFlags=shared
PrivateTmp=true
ProtectSystem=false
"""


def test_parse_unit_assignments_and_lines():
    assignments, problems = cfg.parse_unit("u.service", UNIT)
    assert problems == []
    assert ("Unit", "Description", "x  continued", 4) in assignments
    assert ("Service", "ExecStart", "/usr/bin/dockerd  --flag", 9) in assignments
    assert ("Service", "MountFlags", "shared", 12) in assignments


def test_effective_settings_later_dropins_win_and_empty_resets():
    unit = cfg.parse_unit("u.service", UNIT)[0]
    first = cfg.parse_unit("10.conf", "[Service]\nMountFlags=slave\nPrivateMounts=yes\n")[0]
    reset = cfg.parse_unit("20.conf", "[Service]\nMountFlags=\n")[0]
    settings = cfg.effective_unit_settings([("u.service", unit), ("10.conf", first)])
    assert settings["MountFlags"] == {"value": "slave", "source": "10.conf", "line": 2}
    assert cfg.implies_mount_namespace(settings) == ["PrivateMounts", "PrivateTmp"]
    settings = cfg.effective_unit_settings([("u.service", unit), ("10.conf", first), ("20.conf", reset)])
    assert settings["MountFlags"] == {"value": None, "source": "20.conf", "line": 2}


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("Key=1\n", 1, "assignment Key= outside of any section"),
        ("[Service]\njust words\n", 2, "not an assignment: 'just words'"),
        ("[Service]\nbad key=1\n", 2, "invalid key in 'bad key=1'"),
        ("[]\n", 1, "malformed section header '[]'"),
    ],
)
def test_parse_unit_problems(text, line, message):
    _assignments, problems = cfg.parse_unit("x.service", text)
    assert [(p.file, p.line, p.message) for p in problems] == [("x.service", line, message)]


def test_assignments_after_a_malformed_header_are_reported_too():
    _assignments, problems = cfg.parse_unit("x.service", "[Service\nA=1\n")
    assert [(p.line, p.message) for p in problems] == [
        (1, "malformed section header '[Service'"),
        (2, "assignment A= outside of any section"),
    ]


def test_dig_and_line_of():
    assert cfg.dig({"a": {"b": 1}}, "a", "b") == 1
    assert cfg.dig({"a": 1}, "a", "b") is None
    assert cfg.line_of("x\ny\nz", "z") == 3
    assert cfg.line_of("x", "q") is None and cfg.line_of(None, "q") is None

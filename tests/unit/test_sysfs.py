from __future__ import annotations

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _sysfs


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("0", [0]),
        ("0-3", [0, 1, 2, 3]),
        ("0-1,8,10-11", [0, 1, 8, 10, 11]),
        ("0-47,192-239", list(range(0, 48)) + list(range(192, 240))),
        ("0-7:2/4", [0, 1, 4, 5]),
        (" 2,1 \n", [1, 2]),
    ],
)
def test_parse_range_list(text, expected):
    assert _sysfs.parse_range_list(text) == expected


@pytest.mark.parametrize("bad", ["a", "3-1", "1,,2", "0-7:5/4", "-1", "0-4294967295", "65536"])
def test_parse_range_list_rejects(bad):
    with pytest.raises(_sysfs.RangeListError, match="range"):
        _sysfs.parse_range_list(bad)


@pytest.mark.parametrize("values", [[], [0], [0, 1, 2, 5], [3, 1, 2, 9, 10]])
def test_format_round_trips(values):
    assert _sysfs.parse_range_list(_sysfs.format_range_list(values)) == sorted(values)


def test_cpu_node_map_sparse_nodes(tmp_path):
    base = tmp_path / "devices/system/node"
    for node, cpus in ((0, "0-1"), (8, "2-3")):
        (base / ("node%d" % node)).mkdir(parents=True)
        (base / ("node%d" % node) / "cpulist").write_text(cpus + "\n")
    (base / "online").write_text("0,8\n")
    assert _sysfs.cpu_node_map(str(tmp_path)) == {0: 0, 1: 0, 2: 8, 3: 8}


def test_cpu_node_map_without_numa_dir(tmp_path):
    cpu = tmp_path / "devices/system/cpu"
    cpu.mkdir(parents=True)
    (cpu / "present").write_text("0-2\n")
    assert _sysfs.cpu_node_map(str(tmp_path)) == {0: 0, 1: 0, 2: 0}


def test_cpu_node_map_this_machine_covers_every_present_cpu():
    present = _sysfs.parse_range_list(_sysfs.read_text("/sys/devices/system/cpu/present"))
    assert sorted(_sysfs.cpu_node_map("/sys")) == present


def test_read_record_matches_read_text_on_single_record_files(tmp_path):
    read_record, read_text = _sysfs.read_record, _sysfs.read_text
    for path in ("/proc/self/comm", "/proc/self/cgroup", "/proc/sys/kernel/osrelease"):
        assert read_record(path) == read_text(path) and read_record(path)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1 << 16) + b"tail\n")  # more than one read's worth: read to the end
    assert read_record(str(big)) == "x" * (1 << 16) + "tail"
    exact = tmp_path / "exact"
    exact.write_bytes(b"y" * (1 << 16))
    assert read_record(str(exact)) == "y" * (1 << 16)
    assert read_record(str(tmp_path / "missing"), "gone") == "gone"

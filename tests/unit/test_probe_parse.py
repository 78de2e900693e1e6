"""bpftrace -f json parsing: synthetic edge cases and output captured on this kernel."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _probe_parse as parse

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "probe")


def _fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read()


MIXED = "\n".join(
    [
        json.dumps({"type": "attached_probes", "data": {"probes": 12}}),
        "",
        "   ",
        json.dumps({"type": "map", "data": {"@elapsed_ns": 2000000000}}),
        json.dumps(
            {"type": "map", "data": {"@sc_calls": {"4026531841,165,mount": 50, "4026531842,166,a,b": 3}}}
        ),
        json.dumps(
            {
                "type": "hist",
                "data": {
                    "@sc_lat": {
                        "165": [
                            {"max": -1, "count": 2},
                            {"min": 0, "max": 0, "count": 0},
                            {"min": 1024, "max": 2047, "count": 6},
                            {"min": 2048, "max": 4095, "count": 2},
                        ]
                    }
                },
            }
        ),
        json.dumps(
            {
                "type": "stats",
                "data": {
                    "@lk": {
                        "1,\n    __mutex_lock+12\n    path_mount+4\n": {
                            "count": 3,
                            "average": 10,
                            "total": 30,
                        }
                    }
                },
            }
        ),
        json.dumps({"type": "printf", "data": "hello\n"}),
        json.dumps({"type": "time", "data": "12:00:00\n"}),
        json.dumps({"type": "new_kind_from_a_future_bpftrace", "data": {"x": 1}}),
        "Attaching 12 probes...",
        '{"type": "map", "data": {"@truncated": {"a": ',
        json.dumps([1, 2, 3]),
    ]
)


def test_mixed_output_keeps_known_and_unknown_types():
    out = parse.parse_lines(MIXED)
    assert out.attached_probes == 12
    assert out.get("@elapsed_ns") == 2000000000
    assert out.kinds == {"@elapsed_ns": "map", "@sc_calls": "map", "@sc_lat": "hist", "@lk": "stats"}
    assert out.printf == ["hello\n"]
    assert [e["type"] for e in out.other] == ["time", "new_kind_from_a_future_bpftrace"]
    # the text line, the truncated last map (SIGKILL mid-print) and the non-object line
    assert out.skipped_lines == 3
    assert out.get("@missing", {}) == {}
    assert set(out.as_dict()) >= {"maps", "skipped_lines", "attached_probes"}


def test_bytes_and_empty_input():
    assert parse.parse_lines(b"").maps == {}
    assert parse.parse_lines(b"\n\n").skipped_lines == 0
    assert parse.parse_lines(MIXED.encode()).get("@elapsed_ns") == 2000000000


@pytest.mark.parametrize(
    "key, arity, expected",
    [
        ("4026531841,165,mount", 3, ["4026531841", "165", "mount"]),
        ("4026531842,166,a,b", 3, ["4026531842", "166", "a,b"]),  # a comm with a comma
        ("1,\n    __mutex_lock+12\n", 2, ["1", "\n    __mutex_lock+12\n"]),
        ("solo", 1, ["solo"]),
    ],
)
def test_split_key(key, arity, expected):
    assert parse.split_key(key, arity) == expected


def test_split_key_rejects_short_keys():
    with pytest.raises(parse.ProbeOutputError, match="fewer than 3"):
        parse.split_key("1,2", 3)


def test_hist_percentiles_with_negative_bucket():
    buckets = parse.parse_lines(MIXED).get("@sc_lat")["165"]
    assert parse.hist_total(buckets) == 10
    # 2 negative samples count as 0; the median falls in [1024, 2047]
    assert parse.hist_percentile(buckets, 0.10) == 0
    assert 1024 <= parse.hist_percentile(buckets, 0.50) <= 2047
    assert 2048 <= parse.hist_percentile(buckets, 0.99) <= 4095
    assert parse.hist_percentile([], 0.5) is None
    assert parse.hist_percentile([{"min": 0, "max": 0, "count": 0}], 0.5) is None


def test_hist_percentile_lhist_without_min():
    assert parse.hist_percentile([{"max": 9, "count": 4}], 0.5) == pytest.approx(4.5)


def test_classify_stderr():
    text = (
        "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not loading\n"
        "stdin:74:29-30: WARNING: arithmetic on integers of different signs\n"
        '      if (strncmp(str($path + $i, 11), "/mountinfo", 10) == 0) {\n'
        "                          ~\n"
        "\n"
        "stdin:3:1-20: ERROR: tracepoint not found: lock:contention_begin\n"
        "tracepoint:lock:contention_begin\n"
        "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
    )
    warnings, errors = parse.classify_stderr(text.encode())
    assert len(warnings) == 4 and "RLIMIT_MEMLOCK" in warnings[0]
    assert errors[0].startswith("stdin:3:1-20: ERROR") and len(errors) == 3


def test_classify_stderr_unlabelled_lines_are_errors():
    assert parse.classify_stderr("Segmentation fault\n") == ([], ["Segmentation fault"])


@pytest.mark.parametrize("name", ["storm", "readers"])
def test_captured_runs_parse_cleanly(name):
    out = parse.parse_lines(_fixture(name + ".stdout"))
    warnings, errors = parse.classify_stderr(_fixture(name + ".stderr"))
    assert out.skipped_lines == 0
    assert out.attached_probes and out.attached_probes > 5
    assert out.get("@elapsed_ns") > 1e9
    assert errors == [] and warnings
    for key in out.get("@lk", {}):
        cpu, stack = parse.split_key(key, 2)
        assert cpu.isdigit() and "+" in stack


def test_captured_storm_has_multikey_maps_and_hists():
    out = parse.parse_lines(_fixture("storm.stdout"))
    keys = [parse.split_key(k, 3) for k in out.get("@sc_calls")]
    assert {key[1] for key in keys} >= {"165", "166", "272"}  # mount, umount2, unshare
    assert len({key[0] for key in keys}) > 10  # the storm unshares often
    assert out.kinds["@sc_lat"] == "hist" and out.kinds["@lk"] == "stats"

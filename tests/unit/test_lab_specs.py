"""`make lab-up SCENARIOS=...` parsing: good specs, and bad ones named clearly."""

from __future__ import annotations

import pytest

from tests.lab.lab import DEFAULTS, LabError, parse_host_specs


def test_hosts_scenarios_and_counts():
    specs = parse_host_specs(["healthy kubelet+docker-root:3", "shared-storm:40,runc"])
    assert specs == [
        [("healthy", DEFAULTS["healthy"])],
        [("kubelet", DEFAULTS["kubelet"]), ("docker-root", 3)],
        [("shared-storm", 40)],
        [("runc", DEFAULTS["runc"])],
    ]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("bogus", "unknown scenario 'bogus' (known: healthy, "),
        (
            "shared-storm:abc",
            "scenario 'shared-storm': count 'abc' is not a whole number (as in shared-storm:3)",
        ),
        ("runc:-1", "scenario 'runc': count '-1' is not a whole number"),
    ],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(LabError) as err:
        parse_host_specs([spec])
    assert str(err.value).startswith(message)

"""Advisory table: integrity, and a positive and a negative case for every advisory."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _runtime_advisories as adv


def container(
    cid="c1", engine="containerd", runtime="runc", rootfs=None, userns=False, mounts=(), alive=True
):
    default = {"runc": "rslave", "crun": "rprivate"}.get(runtime)
    return {
        "id": cid,
        "engine": engine,
        "runtime": runtime,
        "pid": 100,
        "alive": alive,
        "rootfs_propagation": {
            "configured": rootfs,
            "effective": rootfs or default,
            "runtime_default": default,
            "default_applied": rootfs is None,
        },
        "user_namespace": {"enabled": userns, "uid_mappings": [], "gid_mappings": []},
        "mounts": [
            {
                "destination": d,
                "source": s,
                "type": "bind",
                "options": ["rbind", p],
                "propagation": p,
                "idmapped": False,
            }
            for d, s, p in mounts
        ],
    }


def facts(engines=None, containers=(), services=None, tmpmounts=0, statmount=True):
    return {
        "engines": engines or {},
        "containers": list(containers),
        "services": services or {},
        "host_mounts": {"ovl_idmapped_tmpmounts": tmpmounts},
        "kernel": {"features": {"statmount": {"available": statmount}}},
    }


def engine(version):
    return {"version": version}


def docker_unit(mount_flags):
    return {
        "docker.service": {
            "settings": {
                "MountFlags": {
                    "value": mount_flags,
                    "source": "/etc/systemd/system/docker.service.d/x.conf",
                    "line": 2,
                }
            }
        }
    }


# Each advisory: (facts where it must match, facts where it must not). The negative case differs
# in the one thing the advisory is about.
CASES = {
    "MO-RT-001": (
        facts({"containerd": engine("2.0.5")}, [container(userns=True, rootfs="rprivate")]),
        facts({"containerd": engine("2.0.7")}, [container(userns=True, rootfs="rprivate")]),
    ),
    "MO-RT-002": (facts(tmpmounts=3), facts(tmpmounts=0)),
    "MO-RT-003": (
        facts({"docker": engine("24.0.7")}, services=docker_unit("slave")),
        facts({"docker": engine("24.0.7")}, services=docker_unit(None)),
    ),
    "MO-RT-004": (
        facts(containers=[container(engine="docker", rootfs="shared")]),
        facts(containers=[container(engine="docker", rootfs="rslave")]),
    ),
    "MO-RT-005": (
        facts(containers=[container(runtime="crun", mounts=[("/vol", "/srv/vol", "rshared")])]),
        facts(containers=[container(runtime="crun", mounts=[("/vol", "/srv/vol", "rslave")])]),
    ),
    "MO-RT-006": (
        facts(containers=[container(runtime="runc")]),
        facts(containers=[container(runtime="runc", rootfs="rprivate")]),
    ),
    "MO-RT-007": (facts(statmount=False), facts(statmount=True)),
}


def ids(found):
    return [a["id"] for a in found]


def test_every_advisory_has_cases():
    assert set(CASES) == {a["id"] for a in adv.ADVISORIES}


@pytest.mark.parametrize("advisory_id", sorted(CASES))
def test_positive(advisory_id):
    found = adv.evaluate(CASES[advisory_id][0])
    assert advisory_id in ids(found)
    match = next(a for a in found if a["id"] == advisory_id)
    assert match["evidence"] and all(isinstance(line, str) and line for line in match["evidence"])


@pytest.mark.parametrize("advisory_id", sorted(CASES))
def test_negative(advisory_id):
    assert advisory_id not in ids(adv.evaluate(CASES[advisory_id][1]))


def test_table_integrity():
    seen = set()
    for advisory in adv.ADVISORIES:
        assert advisory["id"] not in seen
        seen.add(advisory["id"])
        assert advisory["severity"] in adv.SEVERITY_ORDER
        for key in ("title", "why", "fix"):
            assert advisory[key].strip()
        assert advisory["references"]
        assert advisory["all"]
        for cond in advisory["all"]:
            assert cond["kind"] in adv.MATCHERS


@pytest.mark.parametrize(
    "version, matched",
    [
        ("1.7.27", False),
        ("2.0.0-rc.3", True),
        ("2.0.6", True),
        ("2.0.7", False),
        ("2.1.0", True),
        ("2.1.4", True),
        ("2.1.5", False),
        ("2.2.0", False),
        (None, False),
    ],
)
def test_containerd_storm_version_ranges(version, matched):
    data = facts({"containerd": engine(version)}, [container(userns=True)])
    assert ("MO-RT-001" in ids(adv.evaluate(data))) is matched


def test_containerd_storm_needs_a_live_user_namespaced_containerd_container():
    base = facts({"containerd": engine("2.1.0")}, [container(userns=False)])
    assert "MO-RT-001" not in ids(adv.evaluate(base))
    other_engine = facts({"containerd": engine("2.1.0")}, [container(engine="crio", userns=True)])
    assert "MO-RT-001" not in ids(adv.evaluate(other_engine))
    dead = facts({"containerd": engine("2.1.0")}, [container(userns=True, alive=False)])
    assert "MO-RT-001" not in ids(adv.evaluate(dead))


@pytest.mark.parametrize(
    "docker, matched, evidence",
    [
        (engine("18.06.1-ce"), False, None),
        (engine("18.09.0"), True, "docker 18.09.0 is in >=18.09.0"),
        (engine(None), True, "docker version unknown (treated as affected)"),
        (None, False, None),
    ],
)
def test_docker_mountflags_versions(docker, matched, evidence):
    data = facts({"docker": docker} if docker else {}, services=docker_unit("slave"))
    found = adv.evaluate(data)
    assert ("MO-RT-003" in ids(found)) is matched
    if evidence:
        assert found[0]["evidence"][-1] == evidence


@pytest.mark.parametrize("propagation", ["shared", "rshared"])
def test_cis_matches_shared_and_rshared(propagation):
    data = facts(containers=[container(rootfs=propagation, mounts=[("/v", "/s", propagation)])])
    assert {"MO-RT-004", "MO-RT-005"} <= set(ids(adv.evaluate(data)))


def test_shared_mounts_of_dead_containers_do_not_count():
    data = facts(containers=[container(rootfs="rshared", mounts=[("/v", "/s", "rshared")], alive=False)])
    assert ids(adv.evaluate(data)) == []


def test_crun_default_is_not_the_runc_advisory():
    assert "MO-RT-006" not in ids(adv.evaluate(facts(containers=[container(runtime="crun")])))


def test_unknown_statmount_is_not_reported_as_missing():
    assert ids(adv.evaluate(facts(statmount=None))) == []


def test_results_are_ordered_by_severity_and_carry_the_table_fields():
    data = copy.deepcopy(CASES["MO-RT-007"][0])
    data["host_mounts"]["ovl_idmapped_tmpmounts"] = 1
    data["containers"] = [container(engine="docker", rootfs="rshared")]
    found = adv.evaluate(data)
    assert ids(found) == ["MO-RT-004", "MO-RT-002", "MO-RT-007"]
    assert set(found[0]) == {"id", "severity", "title", "evidence", "why", "fix", "references"}
    assert "CIS Docker Benchmark" in found[0]["why"]


def test_evidence_is_capped():
    many = [container(cid="c%d" % i, engine="docker", rootfs="shared") for i in range(25)]
    (found,) = [a for a in adv.evaluate(facts(containers=many)) if a["id"] == "MO-RT-004"]
    assert len(found["evidence"]) == 11 and found["evidence"][-1] == "... and 15 more"


def test_unknown_predicate_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown predicate"):
        adv._test(1, {"between": (0, 2)})

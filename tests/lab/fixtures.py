"""pytest fixtures for the SSH lab; import them into a test module (or list this as a plugin).

``lab_session`` is the session janitor: it first takes down strays left by a crashed or killed
earlier run of this checkout, and its finalizer takes down every lab the session made and fails
the session if anything (process, cgroup, port, namespace, mount, run dir) was left behind.
Hosts of test labs also die with the test process itself (PR_SET_PDEATHSIG), so even a
``kill -9`` of pytest leaves only cgroups and run dirs, which the next session or
``make lab-down`` removes.
"""

from __future__ import annotations

import os

import pytest

from tests.lab.lab import Lab, down_all, parse_host_specs

FLEET = (
    "healthy",
    "shared-storm",
    "slave-readers",
    "kubelet+docker-root",
    "pinned-ns+idmap-leak+runtime-configs",
    "runc",
)


class LabFactory:
    def __init__(self):
        self.labs = []

    def __call__(self, specs, hosts=None):
        specs = parse_host_specs(specs)
        lab = Lab.up(hosts or len(specs), specs, persistent=False)
        self.labs.append(lab)
        return lab

    def down(self, lab):
        self.labs.remove(lab)
        return lab.down()


@pytest.fixture(scope="session")
def lab_factory(request):
    if os.geteuid() != 0:
        pytest.skip("the SSH lab needs root")
    down_all(only_strays=True)
    factory = LabFactory()

    def finalize():
        left = {lab.state["id"]: lab.down() for lab in list(factory.labs)}
        factory.labs.clear()
        bad = {k: v for k, v in left.items() if v}
        assert not bad, "lab teardown left things behind: %r" % bad

    request.addfinalizer(finalize)
    return factory


@pytest.fixture(scope="session")
def fleet_lab(lab_factory):
    """Six hosts, one per behaviour the fleet audit must tell apart (see FLEET)."""
    return lab_factory(FLEET)

"""Test-wide set-up: import the collection in place and turn module exits into exceptions."""

from __future__ import annotations

import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
if REPO not in sys.path:
    sys.path.insert(0, REPO)


class ModuleExit(Exception):
    """exit_json was called; .result holds the keyword arguments."""

    def __init__(self, result):
        super().__init__(json.dumps(result, default=str)[:500])
        self.result = result


class ModuleFail(Exception):
    """fail_json was called; .result holds the keyword arguments (msg, ...)."""

    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's main() with the given args; returns the exit_json result or raises ModuleFail."""
    from ansible.module_utils import basic
    from ansible.module_utils.common import warnings
    from ansible.module_utils.testing import patch_module_args

    def _exit_json(self, **kwargs):
        # The real exit_json folds module.warn() messages into the result; keep that visible.
        kwargs.setdefault("warnings", list(warnings.get_warning_messages()))
        raise ModuleExit(kwargs)

    def _fail_json(self, **kwargs):
        raise ModuleFail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def _run(main, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        warnings._global_warnings.clear()
        with patch_module_args(args):
            try:
                main()
            except ModuleExit as done:
                return done.result
        raise AssertionError("module returned without exit_json/fail_json")

    return _run


@pytest.fixture(scope="session")
def is_root():
    return os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, tracing)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


# --- the session leaves nothing behind -----------------------------------------------------


def pytest_sessionstart(session):
    from tests import leakcheck

    session.config._mountops_before = leakcheck.snapshot()


def pytest_sessionfinish(session, exitstatus):
    from tests import leakcheck

    before = getattr(session.config, "_mountops_before", None)
    if before is None or exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return
    problems = leakcheck.leaks(before, leakcheck.snapshot())
    if problems:
        sys.stderr.write("\nthe test session left things behind:\n  %s\n" % "\n  ".join(problems))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

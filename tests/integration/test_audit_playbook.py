"""playbooks/audit.yml and propagation_facts through real ansible-playbook runs on localhost."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".venv", "bin")

pytestmark = pytest.mark.root


def ansible(args, cwd=REPO, check=True):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(
            "%s failed (%d):\n%s\n%s" % (args[0], done.returncode, done.stdout[-3000:], done.stderr[-2000:])
        )
    return done


def test_audit_playbook_writes_reports(tmp_path):
    done = ansible(
        [os.path.join(BIN, "ansible-playbook"), "playbooks/audit.yml", "-e", "audit_report_dir=%s" % tmp_path]
    )
    report = json.loads((tmp_path / "localhost.json").read_text())
    facts = report["mount_propagation"]
    assert report["host"] == "localhost"
    assert facts["namespaces"][0]["is_host"] is True
    assert facts["summary"]["namespaces"] == len(facts["namespaces"]) >= 1
    assert facts["collection"]["namespaces_read"] >= 1
    text = (tmp_path / "localhost.txt").read_text()
    assert "mount namespaces" in text and "read cost" in text
    summary = (tmp_path / "summary.txt").read_text()
    assert "1 of 1 hosts audited" in summary and "MISSING" not in summary
    assert "failed=0" in done.stdout


def test_audit_check_mode_reports_no_change_on_the_host(tmp_path):
    """--check runs the facts module (read-only) and still writes the controller-side report."""
    done = ansible(
        [
            os.path.join(BIN, "ansible-playbook"),
            "--check",
            "playbooks/audit.yml",
            "-e",
            "audit_report_dir=%s" % tmp_path,
        ]
    )
    assert (
        json.loads((tmp_path / "localhost.json").read_text())["mount_propagation"]["summary"]["namespaces"]
        >= 1
    )
    task = done.stdout.split("Gather propagation, NUMA and runtime facts in one round trip", 1)[1]
    assert task.split("\n\n", 1)[0].strip().splitlines()[-1].startswith("ok: [localhost]")


def test_module_adhoc_with_budget_and_detail():
    done = ansible(
        [
            os.path.join(BIN, "ansible"),
            "localhost",
            "-m",
            "mountops.fleet.propagation_facts",
            "-a",
            "backend=mountinfo max_namespaces=1 detail=true top_n=2",
            "--check",
        ]
    )
    result = json.loads(done.stdout.split("=>", 1)[1])
    facts = result["ansible_facts"]["mount_propagation"]
    assert result["changed"] is False
    assert facts["collection"]["namespaces_read"] == 1
    assert facts["collection"]["backend"] == "mountinfo"
    assert "mount_list" in facts["namespaces"][0]
    assert len(facts["peer_groups"]) <= 2


@pytest.mark.parametrize(
    "args, message",
    [
        (
            "proc_root=/nonexistent/proc",
            "collecting mount namespaces: proc_root /nonexistent/proc does not exist",
        ),
        ("backend=kernel", "value of backend must be one of: auto, mountinfo, statmount, got: kernel"),
        ("max_namespaces=-1", "max_namespaces must be 0 or more, got -1"),
    ],
)
def test_bad_input_is_a_clear_message(args, message):
    done = ansible(
        [os.path.join(BIN, "ansible"), "localhost", "-m", "mountops.fleet.propagation_facts", "-a", args],
        check=False,
    )
    assert done.returncode != 0
    assert message in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_report_dir_that_is_a_file_fails_clearly(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("not a directory\n")
    done = ansible(
        [os.path.join(BIN, "ansible-playbook"), "playbooks/audit.yml", "-e", "audit_report_dir=%s" % blocker],
        check=False,
    )
    assert done.returncode != 0
    # One plain sentence: not the OSError's own text repeated after it ("[Errno 17] ...").
    assert '"msg": "writing audit reports to %s: File exists"' % blocker in done.stdout
    assert "Errno" not in done.stdout and "Traceback" not in done.stdout
    assert blocker.read_text() == "not a directory\n"


def test_second_run_rewrites_only_what_changed(tmp_path):
    run = [
        os.path.join(BIN, "ansible-playbook"),
        "playbooks/audit.yml",
        "-e",
        "audit_report_dir=%s" % tmp_path,
    ]
    summary = tmp_path / "summary.txt"
    ansible(run)
    # This host is live: a systemd unit with PrivateTmp starting between two runs really changes
    # the namespace count. Whatever happened, the file is rewritten exactly when its text changed,
    # and a quiet host must give at least one unchanged run out of three.
    for _attempt in range(3):
        before_text, before_mtime = summary.read_text(), summary.stat().st_mtime_ns
        ansible(run)
        same_text = summary.read_text() == before_text
        assert same_text == (summary.stat().st_mtime_ns == before_mtime)
        if same_text:
            break
    else:
        pytest.fail("summary.txt changed on each of 3 reruns of an idle host")
    assert not list(tmp_path.glob(".mountops-*"))

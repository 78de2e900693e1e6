# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the audit reports on the controller in one task (see plugins/modules/audit_report.py).

Per-host delegated copy/template tasks cost a local module run each: on a 20-host fleet that
was most of the audit's wall time. Here the controller writes every file directly, atomically
(temp file in the same directory, then rename), and only when the content changed.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mountops.fleet.plugins.plugin_utils._report_text import fleet_summary, host_summary

_ARGS = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "results": {"type": "list", "elements": "dict"},
}

# ansible_facts key -> key in the host result (and its JSON report)
_FACT_SETS = (
    ("mount_propagation", "mount_propagation"),
    ("numa", "numa"),
    ("mount_runtime", "mount_runtime"),
    ("mountops_contention_probe", "contention"),
)


def results_from_hostvars(hosts, hostvars):
    """One result per host that ran audit_facts (``ansible_facts.mountops_audit`` is set)."""
    results = []
    for host in hosts:
        if host not in hostvars:
            continue
        facts = hostvars[host].get("ansible_facts") or {}
        audit = facts.get("mountops_audit")
        if not audit:
            continue  # unreachable or failed before gathering: reported as missing
        result = {
            "host": host,
            "generated": audit.get("generated"),
            "errors": dict(audit.get("errors") or {}),
        }
        for fact_key, result_key in _FACT_SETS:
            result[result_key] = facts.get(fact_key)
        results.append(result)
    return results


def _write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(prefix=".mountops-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=_ARGS)
        dest = os.path.realpath(args["dest"])
        if args["results"] is None:
            args["results"] = results_from_hostvars(args["hosts"], task_vars["hostvars"])
        for entry in args["results"]:
            if not isinstance(entry.get("host"), str) or not entry["host"] or "/" in entry["host"]:
                raise AnsibleActionFail(
                    "results: every entry needs a 'host' name without '/', got %r" % entry.get("host")
                )
        try:
            os.makedirs(dest, exist_ok=True)
            written = []
            for entry in args["results"]:
                base = os.path.join(dest, entry["host"])
                if _write_if_changed(
                    base + ".json", json.dumps(entry, indent=2, sort_keys=True, default=str) + "\n"
                ):
                    written.append(base + ".json")
                if _write_if_changed(base + ".txt", host_summary(entry)):
                    written.append(base + ".txt")
            summary = fleet_summary(args["results"], args["hosts"], dest)
            if _write_if_changed(os.path.join(dest, "summary.txt"), summary):
                written.append(os.path.join(dest, "summary.txt"))
        except OSError as err:
            raise AnsibleActionFail("writing audit reports to %s: %s" % (dest, err.strerror or err)) from None
        done = {entry["host"] for entry in args["results"]}
        result.update(
            changed=bool(written),
            dest=dest,
            written=written,
            missing=[host for host in args["hosts"] if host not in done],
            summary=summary.splitlines(),
        )
        return result

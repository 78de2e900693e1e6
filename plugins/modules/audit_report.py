#!/usr/bin/python
# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_report
short_description: Write mountops audit reports on the controller
description:
  - Writes C(<host>.json) (every fact) and C(<host>.txt) (a short summary) for each audited host,
    and C(summary.txt) for the fleet, naming the targeted hosts that produced no result.
  - Runs entirely on the controller (action plugin); files are replaced atomically and only
    when their content changed.
  - Reports are controller-side artifacts of an audit, so they are written in check mode too.
version_added: 0.1.0
author:
  - mountops contributors (@mountops)
options:
  dest:
    description: Report directory on the controller; created if missing.
    type: path
    required: true
  hosts:
    description: The hosts the audit targeted.
    type: list
    elements: str
    required: true
  results:
    description:
      - One result per audited host, with at least C(host) and C(generated), and the fact sets
        C(mount_propagation), C(numa), C(mount_runtime), C(contention) where gathered.
      - When omitted, the results are taken from the facts of O(hosts) in C(hostvars); every host
        that ran M(mountops.fleet.audit_facts) (and, where run, M(mountops.fleet.contention_probe)
        with C(facts=true)) has one; the others are reported as missing.
    type: list
    elements: dict
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Writes the controller-side reports in check mode too; the audited hosts are never changed.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Write the reports of the hosts audited in this play
  mountops.fleet.audit_report:
    dest: "{{ playbook_dir }}/../reports"
    hosts: "{{ ansible_play_hosts_all }}"
  # results come from the hosts' facts (audit_facts ran on them earlier in the play)
"""

RETURN = r"""
dest:
  description: The report directory (resolved).
  returned: always
  type: str
written:
  description: Files whose content changed and were rewritten.
  returned: always
  type: list
  elements: str
missing:
  description: Targeted hosts without a result.
  returned: always
  type: list
  elements: str
summary:
  description: The fleet summary, one line per element.
  returned: always
  type: list
  elements: str
"""

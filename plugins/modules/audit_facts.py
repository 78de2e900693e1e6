#!/usr/bin/python
# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_facts
short_description: Gather several mountops fact sets in one round trip
description:
  - Runs the collectors of M(mountops.fleet.propagation_facts), M(mountops.fleet.numa_facts) and
    M(mountops.fleet.runtime_facts) in one module execution, so a fleet audit costs one
    connection round trip per host instead of three.
  - Each fact set takes exactly the options of its own module, given as a dictionary; they are
    validated with the same argument spec and value checks before anything is gathered, and an
    invalid option fails the task naming the fact set and the option.
  - A fact set that cannot be gathered on a host (for example a C(sysfs_root) that does not exist) does
    not stop the others; it is reported in RV(ansible_facts.mountops_audit.errors) and as a
    warning. The task fails only when every requested fact set failed.
version_added: 0.1.0
author:
  - mountops contributors (@mountops)
options:
  gather:
    description: Which fact sets to gather.
    type: list
    elements: str
    choices: [propagation, numa, runtime]
    default: [propagation, numa, runtime]
  propagation:
    description: Options of M(mountops.fleet.propagation_facts).
    type: dict
    default: {}
  numa:
    description: Options of M(mountops.fleet.numa_facts).
    type: dict
    default: {}
  runtime:
    description: Options of M(mountops.fleet.runtime_facts).
    type: dict
    default: {}
extends_documentation_fragment:
  - mountops.fleet.attributes.facts
seealso:
  - module: mountops.fleet.propagation_facts
  - module: mountops.fleet.numa_facts
  - module: mountops.fleet.runtime_facts
"""

EXAMPLES = r"""
- name: Everything the audit needs, in one round trip
  mountops.fleet.audit_facts:

- name: Propagation and NUMA only, with a tighter namespace budget
  mountops.fleet.audit_facts:
    gather: [propagation, numa]
    propagation:
      max_namespaces: 500
      time_budget_ms: 3000
"""

RETURN = r"""
ansible_facts:
  description: The facts of each gathered set, under the same keys as the single modules.
  returned: always
  type: complex
  contains:
    mount_propagation:
      description: As returned by M(mountops.fleet.propagation_facts).
      returned: when propagation was gathered
      type: dict
    numa:
      description: As returned by M(mountops.fleet.numa_facts).
      returned: when numa was gathered
      type: dict
    mount_runtime:
      description: As returned by M(mountops.fleet.runtime_facts).
      returned: when runtime was gathered
      type: dict
    mountops_audit:
      description: How the gathering went.
      returned: always
      type: complex
      contains:
        gathered:
          description: The fact sets gathered successfully.
          type: list
          elements: str
          returned: always
        errors:
          description: Fact set name to the reason it could not be gathered.
          type: dict
          returned: always
        duration_ms:
          description: Fact set name to the milliseconds it took.
          type: dict
          returned: always
        generated:
          description: When the facts were gathered (host clock, UTC, ISO 8601).
          type: str
          returned: always
          sample: "2026-12-03T17:05:09Z"
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mountops.fleet.plugins.module_utils._gather import (
    FACT_KEYS,
    GATHERERS,
    GatherError,
    argument_spec,
    check_params,
)

FACT_SETS = ("propagation", "numa", "runtime")


def get_argument_spec():
    spec = {
        "gather": {"type": "list", "elements": "str", "choices": list(FACT_SETS), "default": list(FACT_SETS)}
    }
    spec.update({name: {"type": "dict", "default": {}} for name in FACT_SETS})
    return spec


def validated(module, fact_set):
    spec = argument_spec(fact_set)
    given = module.params[fact_set] or {}
    known = set(spec).union(*(option.get("aliases", ()) for option in spec.values()))
    unknown = sorted(set(given) - known)
    if unknown:
        module.fail_json(
            msg="%s: unsupported option(s) %s; supported: %s"
            % (fact_set, ", ".join(unknown), ", ".join(sorted(spec)))
        )
    result = ArgumentSpecValidator(spec).validate(given)
    if result.error_messages:
        module.fail_json(msg="%s: %s" % (fact_set, "; ".join(result.error_messages)))
    problem = check_params(fact_set, result.validated_parameters)
    if problem:
        module.fail_json(msg="%s: %s" % (fact_set, problem))
    return result.validated_parameters


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    requested = [name for name in FACT_SETS if name in module.params["gather"]]
    params = {name: validated(module, name) for name in requested}
    facts, errors, durations = {}, {}, {}
    for name in requested:
        started = time.monotonic()
        try:
            facts[FACT_KEYS[name]] = GATHERERS[name](module, params[name])
        except GatherError as err:
            errors[name] = str(err)
            module.warn("%s facts not gathered: %s" % (name, err))
        durations[name] = round((time.monotonic() - started) * 1000.0, 3)
    if requested and len(errors) == len(requested):
        module.fail_json(
            msg="no fact set could be gathered: %s" % "; ".join("%s: %s" % item for item in errors.items())
        )
    facts["mountops_audit"] = {
        "gathered": [name for name in requested if name not in errors],
        "errors": errors,
        "duration_ms": durations,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()

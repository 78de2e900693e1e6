"""The mountops SSH lab: real hosts (PID + mount + UTS namespaces running sshd) on one machine.

See docs/lab.md. ``Lab.up()`` / ``lab.down()`` for code, ``python -m tests.lab`` for people.
"""

from tests.lab.lab import DEFAULT_MIX, Lab, LabError, down_all, parse_host_specs

__all__ = ["DEFAULT_MIX", "Lab", "LabError", "down_all", "parse_host_specs"]

# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Read-only facts modules: they observe and never change the host.
    FACTS = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Read-only; the module changes nothing, so check mode returns the same facts.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: linux
"""

    # Modules that load transient kernel programs (bpftrace) but leave nothing behind.
    OBSERVATIONAL = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: >-
      Observational: the module only loads transient tracing programs that are removed when it
      returns, so it runs in check mode too and always reports C(changed=false).
  diff_mode:
    support: none
  platform:
    platforms: linux
"""

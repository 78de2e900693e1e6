# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parser for ``bpftrace -f json`` output (one JSON object per line).

bpftrace prints one object per event: ``attached_probes``, ``map``, ``hist``, ``stats``,
``printf``, ``time``, ``lhist`` ... Unknown types are kept, never fatal (PCP's bpftrace agent
does the same). Blank lines and non-JSON lines (text that slipped through, a truncated last line
after SIGKILL) are counted and skipped. Multi-key map keys arrive joined by ``,``; split them with
:func:`split_key`, knowing the arity, and keep free text (``comm``, ``kstack``) last so that a
comma inside it cannot shift the fields.

Also sorts bpftrace's stderr into warnings (harmless, e.g. the ``RLIMIT_MEMLOCK`` notice of
bpftrace 0.17) and errors (the program did not load or attach).
"""

from __future__ import annotations

import json
import re


class ProbeOutputError(ValueError):
    """bpftrace output that cannot be used at all."""


class ProbeOutput:
    """Everything one bpftrace run printed, keyed by map name (``@calls``)."""

    def __init__(self):
        self.attached_probes = None
        self.maps = {}
        self.kinds = {}
        self.printf = []
        self.other = []
        self.skipped_lines = 0

    def get(self, name, default=None):
        return self.maps.get(name, default)

    def as_dict(self):
        return {
            "attached_probes": self.attached_probes,
            "maps": self.maps,
            "kinds": self.kinds,
            "printf": self.printf,
            "other": self.other,
            "skipped_lines": self.skipped_lines,
        }


_MAP_TYPES = ("map", "hist", "lhist", "stats")


def parse_lines(text):
    """Parse bpftrace ``-f json`` stdout (str or bytes) into a :class:`ProbeOutput`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = ProbeOutput()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            out.skipped_lines += 1
            continue
        if not isinstance(event, dict) or "type" not in event:
            out.skipped_lines += 1
            continue
        _take(out, event)
    return out


def _take(out, event):
    kind = event.get("type")
    data = event.get("data")
    if kind == "attached_probes" and isinstance(data, dict):
        out.attached_probes = data.get("probes")
    elif kind in _MAP_TYPES and isinstance(data, dict):
        for name, value in data.items():
            out.maps[name] = value
            out.kinds[name] = kind
    elif kind == "printf":
        out.printf.append(data)
    else:
        out.other.append(event)


def split_key(key, arity):
    """Split a multi-key map key ``"12,4026531841,mount"`` into ``arity`` strings.

    The last field takes the rest, so it may hold commas (a ``comm`` or a ``kstack``).
    """
    if arity <= 1:
        return [key]
    parts = key.split(",", arity - 1)
    if len(parts) != arity:
        raise ProbeOutputError("map key %r has fewer than %d fields" % (key, arity))
    return parts


def hist_total(buckets):
    return sum(int(b.get("count", 0)) for b in buckets or [])


def hist_percentile(buckets, fraction):
    """Estimate a percentile from bpftrace hist buckets (log2) by linear interpolation.

    Buckets are ``{"min": a, "max": b, "count": n}``; the negative bucket has only ``max`` (-1)
    and the lowest bucket of an lhist may lack ``min``. Values below zero count as 0 (a latency
    cannot be negative; the bucket appears when the clock pairs were mismatched). Returns None
    for an empty histogram. The estimate is within one bucket (a factor of two) of the truth.
    """
    total = hist_total(buckets)
    if total <= 0:
        return None
    rank = fraction * total
    seen = 0
    for bucket in buckets:
        count = int(bucket.get("count", 0))
        if count <= 0:
            continue
        low = bucket.get("min")
        high = bucket.get("max")
        if high is not None and high < 0:
            low = high = 0
        low = 0 if low is None else max(low, 0)
        high = low if high is None else high
        if seen + count >= rank:
            inside = (rank - seen) / count
            return low + (high - low) * inside
        seen += count
    last = buckets[-1]
    return float(last.get("max", last.get("min", 0)) or 0)


_WARNING_RE = re.compile(r"RLIMIT_MEMLOCK|(^|\s)WARNING:|^Attaching \d+ probes?")
_ERROR_RE = re.compile(r"(^|\s)ERROR:")


def classify_stderr(text):
    """Split bpftrace stderr into (warnings, errors); each a list of stripped lines.

    A diagnostic is a line with ``WARNING:``/``ERROR:`` (``stdin:74:29-30: WARNING: ...``) and
    the context lines after it (the source line, the ``~~~`` marker) belong to it. The
    ``RLIMIT_MEMLOCK`` notice says ERROR but is harmless (bpftrace 0.17 on newer kernels, which
    account BPF memory to cgroups). Lines that belong to nothing are errors.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    warnings, errors = [], []
    current = errors
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if _WARNING_RE.search(line):
            current = warnings
        elif _ERROR_RE.search(line):
            current = errors
        current.append(line)
    return warnings, errors

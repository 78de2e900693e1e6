# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parser for /proc/<pid>/mountinfo (proc_pid_mountinfo(5)).

Works on bytes: mount points need not be UTF-8, and the kernel escapes space, tab, newline and
backslash as octal (\\040 \\011 \\012 \\134) in root, mount point, fs type and source. Parsing is
on the hot path of an audit (tens of thousands of lines per host), so the line loop does the
least work it can: one split, escapes only when a backslash is present.
"""

from __future__ import annotations

import re

PROPAGATION_KINDS = ("shared", "slave", "shared_slave", "private", "unbindable")

_ESCAPE_RE = re.compile(rb"\\([0-7]{3})")
_NEEDS_ESCAPE_RE = re.compile(rb"[\\ \t\n]")


class MountinfoError(ValueError):
    """A mountinfo line that does not follow proc_pid_mountinfo(5)."""

    def __init__(self, source, lineno, reason):
        super().__init__("%s line %d: %s" % (source, lineno, reason))
        self.source = source
        self.lineno = lineno
        self.reason = reason


class Mount:
    """One mount as the kernel reports it (mountinfo or statmount)."""

    __slots__ = (
        "mount_id",
        "parent_id",
        "major",
        "minor",
        "root",
        "mount_point",
        "options",
        "shared",
        "master",
        "propagate_from",
        "unbindable",
        "fstype",
        "source",
        "super_options",
    )

    def __init__(
        self,
        mount_id,
        parent_id,
        major=0,
        minor=0,
        root=b"/",
        mount_point=b"/",
        options="",
        shared=None,
        master=None,
        propagate_from=None,
        unbindable=False,
        fstype="",
        source=b"",
        super_options="",
    ):
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.major = major
        self.minor = minor
        self.root = root
        self.mount_point = mount_point
        self.options = options
        self.shared = shared
        self.master = master
        self.propagate_from = propagate_from
        self.unbindable = unbindable
        self.fstype = fstype
        self.source = source
        self.super_options = super_options

    @property
    def propagation(self):
        """One of PROPAGATION_KINDS; ``shared_slave`` is a slave that is also shared."""
        if self.shared is not None:
            return "shared_slave" if self.master is not None else "shared"
        if self.master is not None:
            return "slave"
        return "unbindable" if self.unbindable else "private"

    def propagation_key(self):
        """What both backends must agree on: identity, place in the tree and propagation."""
        return (self.mount_id, self.parent_id, self.mount_point, self.shared, self.master, self.unbindable)

    def to_dict(self):
        return {
            "mount_id": self.mount_id,
            "parent_id": self.parent_id,
            "device": "%d:%d" % (self.major, self.minor),
            "root": display_path(self.root),
            "mount_point": display_path(self.mount_point),
            "fstype": self.fstype,
            "source": display_path(self.source),
            "options": self.options,
            "propagation": self.propagation,
            "peer_group": self.shared,
            "master": self.master,
            "propagate_from": self.propagate_from,
        }

    def __repr__(self):
        return "Mount(%d %s %s)" % (self.mount_id, display_path(self.mount_point), self.propagation)


def unescape(field):
    """Decode the kernel's octal escapes (``\\040`` ...) on bytes."""
    if b"\\" not in field:
        return field
    return _ESCAPE_RE.sub(lambda m: bytes((int(m.group(1), 8) & 0xFF,)), field)


def escape(path):
    """Inverse of unescape, as the kernel writes paths into mountinfo."""
    return _NEEDS_ESCAPE_RE.sub(lambda m: b"\\%03o" % m.group(0)[0], path)


def display_path(path):
    """Text for reports: UTF-8 when it is, otherwise undecodable bytes as ``\\NNN`` octal escapes.

    Octal keeps the output reversible with :func:`unescape` and matches how mountinfo itself
    shows awkward bytes; a surrogate-escaped str would not survive JSON.
    """
    try:
        return path.decode("utf-8")
    except UnicodeDecodeError:
        return _octal_escape_invalid(path)


def _octal_escape_invalid(path):
    out = []
    rest = path
    while rest:
        try:
            out.append(rest.decode("utf-8"))
            break
        except UnicodeDecodeError as err:
            out.append(rest[: err.start].decode("utf-8"))
            out.extend("\\%03o" % b for b in rest[err.start : err.end])
            rest = rest[err.end :]
    return "".join(out)


def _int(value, source, lineno, what):
    try:
        return int(value)
    except ValueError:
        raise MountinfoError(source, lineno, "%s is not a number: %r" % (what, value)) from None


def _parse_tags(tags, source, lineno):
    shared = master = propagate_from = None
    unbindable = False
    for tag in tags:
        name, _sep, number = tag.partition(b":")
        if name == b"shared":
            shared = _int(number, source, lineno, "shared peer group")
        elif name == b"master":
            master = _int(number, source, lineno, "master peer group")
        elif name == b"propagate_from":
            propagate_from = _int(number, source, lineno, "propagate_from peer group")
        elif name == b"unbindable":
            unbindable = True
        # Unknown tags are ignored, as proc_pid_mountinfo(5) asks parsers to do.
    return shared, master, propagate_from, unbindable


def parse_line(line, source="mountinfo", lineno=1):
    fields = line.split(b" ")
    try:
        sep = fields.index(b"-", 6)
    except ValueError:
        raise MountinfoError(source, lineno, "no ' - ' separator after the six leading fields") from None
    if len(fields) - sep < 4:
        raise MountinfoError(source, lineno, "expected fstype, source and super options after ' - '")
    major, colon, minor = fields[2].partition(b":")
    if not colon:
        raise MountinfoError(source, lineno, "device %r is not MAJOR:MINOR" % fields[2])
    shared, master, propagate_from, unbindable = (
        _parse_tags(fields[6:sep], source, lineno) if sep > 6 else (None, None, None, False)
    )
    return Mount(
        _int(fields[0], source, lineno, "mount ID"),
        _int(fields[1], source, lineno, "parent ID"),
        _int(major, source, lineno, "device major"),
        _int(minor, source, lineno, "device minor"),
        unescape(fields[3]),
        unescape(fields[4]),
        fields[5].decode("ascii", "replace"),
        shared,
        master,
        propagate_from,
        unbindable,
        unescape(fields[sep + 1]).decode("utf-8", "replace"),
        unescape(fields[sep + 2]),
        b" ".join(fields[sep + 3 :]).decode("utf-8", "replace"),
    )


def parse_mountinfo(data, source="mountinfo"):
    """Parse a whole mountinfo file (bytes) into a list of Mount; MountinfoError on a bad line."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return [parse_line(line, source, lineno) for lineno, line in enumerate(data.split(b"\n"), 1) if line]


def nsfs_target(mount):
    """For an nsfs bind mount of a mount namespace, the pinned namespace inode; else None."""
    if mount.fstype != "nsfs" or not mount.root.startswith(b"mnt:["):
        return None
    try:
        return int(mount.root[5:-1])
    except ValueError:
        return None


# --- fast scan ---------------------------------------------------------------------------
# An audit reads one table per namespace, tens of thousands of lines per host, and needs only
# counts and peer-group IDs from most of them. The scan gets those with a few regex passes in
# C over the whole table, after a strict structural check; anything the check does not accept
# goes through parse_mountinfo, which either explains the bad line or handles the odd case.

_TABLE_RE = re.compile(rb"(?:\d+ \d+ \d+:\d+ [^\n]* - [^\n]*\n)*")
_SHARED_RE = re.compile(rb" shared:(\d+)")
_MASTER_RE = re.compile(rb" master:(\d+)")
_SHARED_SLAVE_RE = re.compile(rb" shared:\d+ master:\d+")
_PIN_RE = re.compile(rb"^\d+ \d+ \d+:\d+ mnt:\[(\d+)\] ([^ \n]+) [^\n]* - nsfs ", re.M)


class TableScan:
    """What the analysis needs from one namespace's mount table, plus the table for later.

    ``shared`` and ``masters`` list the peer-group ID of every shared tag and master tag, in
    table order (a shared-and-slave mount is in both).
    """

    __slots__ = (
        "count",
        "shared",
        "masters",
        "shared_slave",
        "unbindable",
        "pins",
        "_data",
        "_mounts",
        "_source",
    )

    def __init__(
        self, count, shared, masters, shared_slave, unbindable, pins, data=None, mounts=None, source=""
    ):
        self.count = count
        self.shared = shared
        self.masters = masters
        self.shared_slave = shared_slave
        self.unbindable = unbindable
        self.pins = pins  # [(namespace inode, mount point bytes)] of nsfs binds of mount namespaces
        self._data = data
        self._mounts = mounts
        self._source = source

    @classmethod
    def from_mounts(cls, mounts):
        shared = [m.shared for m in mounts if m.shared is not None]
        masters = [m.master for m in mounts if m.master is not None]
        targets = ((nsfs_target(m), m.mount_point) for m in mounts)
        pins = [(target, point) for target, point in targets if target is not None]
        return cls(
            len(mounts),
            shared,
            masters,
            sum(1 for m in mounts if m.shared is not None and m.master is not None),
            sum(1 for m in mounts if m.unbindable and m.shared is None and m.master is None),
            pins,
            mounts=mounts,
        )

    def mounts(self):
        """The full Mount list (parsed on first use)."""
        if self._mounts is None:
            self._mounts = parse_mountinfo(self._data, self._source)
        return self._mounts

    def propagation_counts(self):
        shared, slave, both = len(self.shared), len(self.masters), self.shared_slave
        return {
            "shared": shared - both,
            "slave": slave - both,
            "shared_slave": both,
            "private": self.count - shared - slave + both - self.unbindable,
            "unbindable": self.unbindable,
        }


def scan_mountinfo(data, source="mountinfo"):
    """Scan a mountinfo table (bytes) into a TableScan; MountinfoError on a bad line."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    shared = _SHARED_RE.findall(data)
    masters = _MASTER_RE.findall(data)
    well_formed = (
        _TABLE_RE.fullmatch(data) is not None
        and data.count(b" shared:") == len(shared)
        and data.count(b" master:") == len(masters)
        and b" unbindable" not in data  # rare; counted exactly by the full parser
    )
    if not well_formed:
        return TableScan.from_mounts(parse_mountinfo(data, source))
    pins = [(int(ino), unescape(point)) for ino, point in _PIN_RE.findall(data)] if b" mnt:[" in data else []
    return TableScan(
        data.count(b"\n"),
        list(map(int, shared)),
        list(map(int, masters)),
        len(_SHARED_SLAVE_RE.findall(data)) if masters and shared else 0,
        0,
        pins,
        data=data,
        source=source,
    )

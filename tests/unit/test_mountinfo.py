from __future__ import annotations

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils._mountinfo import (
    MountinfoError,
    display_path,
    escape,
    nsfs_target,
    parse_line,
    parse_mountinfo,
    scan_mountinfo,
    unescape,
)

from .mountinfo_cases import ESCAPE_CASES, MALFORMED_CASES, TAG_CASES


@pytest.mark.parametrize("line, expected", [c[1:] for c in TAG_CASES], ids=[c[0] for c in TAG_CASES])
def test_tags(line, expected):
    mount = parse_line(line)
    for attribute, value in expected.items():
        assert getattr(mount, attribute) == value, attribute


def test_all_eleven_fields():
    line = b"36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    mount = parse_line(line)
    assert (mount.mount_id, mount.parent_id, mount.major, mount.minor) == (36, 35, 98, 0)
    assert (mount.root, mount.mount_point, mount.options) == (b"/mnt1", b"/mnt/parent", "rw,noatime")
    assert (mount.fstype, mount.source, mount.super_options) == ("ext3", b"/dev/root", "rw,errors=continue")
    assert mount.master == 1


@pytest.mark.parametrize("raw, decoded", [c[1:] for c in ESCAPE_CASES], ids=[c[0] for c in ESCAPE_CASES])
def test_escapes_in_every_escaped_field(raw, decoded):
    line = b"40 29 0:80 " + raw + b" " + raw + b" rw shared:2 - tmpfs " + raw + b" rw"
    mount = parse_line(line)
    assert mount.root == decoded
    assert mount.mount_point == decoded
    assert mount.source == decoded


def test_escaped_fstype():
    mount = parse_line(b"41 29 0:81 / /x rw - fuse\\040odd src rw")
    assert mount.fstype == "fuse odd"


@pytest.mark.parametrize("path", [c[2] for c in ESCAPE_CASES] + [b"/", b"/plain"])
def test_escape_round_trips(path):
    assert unescape(escape(path)) == path
    assert b" " not in escape(path) and b"\n" not in escape(path)


def test_display_path_keeps_utf8_and_octal_escapes_the_rest():
    assert display_path("/mnt/ünï".encode()) == "/mnt/ünï"
    assert display_path(b"/mnt/bad\xffname\xfe") == "/mnt/bad\\377name\\376"
    assert unescape(display_path(b"/a\xffb").encode()) == b"/a\xffb"


@pytest.mark.parametrize(
    "line, message", [c[1:] for c in MALFORMED_CASES], ids=[c[0] for c in MALFORMED_CASES]
)
def test_malformed_line_names_file_and_line(line, message):
    data = b"22 1 0:21 / /proc rw - proc proc rw\n" + line + b"\n"
    with pytest.raises(MountinfoError) as caught:
        parse_mountinfo(data, "/proc/42/mountinfo")
    assert caught.value.lineno == 2
    assert caught.value.source == "/proc/42/mountinfo"
    assert str(caught.value).startswith("/proc/42/mountinfo line 2: ")
    assert message in str(caught.value)


def test_missing_parent_is_not_an_error():
    # Mounts outside the reader's root are skipped, so parents can be absent.
    mounts = parse_mountinfo(
        b"500 499 0:90 / / rw shared:1 - overlay overlay rw\n501 500 0:91 / /proc rw - proc proc rw\n"
    )
    assert [m.parent_id for m in mounts] == [499, 500]
    assert {m.mount_id for m in mounts}.isdisjoint({499})


def test_blank_lines_and_str_input():
    mounts = parse_mountinfo("\n22 1 0:21 / /proc rw - proc proc rw\n\n")
    assert len(mounts) == 1 and mounts[0].mount_point == b"/proc"


def test_extra_super_option_fields_are_kept():
    mount = parse_line(b"23 1 0:22 / /x rw - tmpfs tmpfs rw extra")
    assert mount.super_options == "rw extra"


def test_nsfs_target():
    pinned = parse_line(b"139 114 0:4 mnt:[4026532245] /run/pt/f rw - nsfs nsfs rw")
    net = parse_line(b"140 114 0:4 net:[4026532001] /run/netns/a rw - nsfs nsfs rw")
    plain = parse_line(b"141 114 0:4 / /x rw - tmpfs tmpfs rw")
    assert nsfs_target(pinned) == 4026532245
    assert nsfs_target(net) is None
    assert nsfs_target(plain) is None


def test_large_table_50000_lines():
    lines = [b"1 0 0:1 / / rw shared:1 - tmpfs root rw"]
    for i in range(2, 50001):
        tag = (b"shared:%d" % i) if i % 3 == 0 else (b"master:%d" % (i - 1)) if i % 3 == 1 else b""
        point = b"/c/%d\\040x" % i
        lines.append(b"%d %d 0:%d / %s rw %s - tmpfs t%d rw" % (i, i - 1, i % 256, point, tag, i))
    mounts = parse_mountinfo(b"\n".join(lines) + b"\n")
    assert len(mounts) == 50000
    assert mounts[-1].mount_id == 50000 and mounts[-1].mount_point == b"/c/50000 x"
    kinds = [m.propagation for m in mounts[1:]]
    assert (
        kinds.count("shared") == 16666 and kinds.count("slave") == 16666 and kinds.count("private") == 16667
    )


def _scan_matches_parse(data):
    scan = scan_mountinfo(data)
    mounts = parse_mountinfo(data)
    assert scan.count == len(mounts)
    assert scan.shared == [m.shared for m in mounts if m.shared is not None]
    assert scan.masters == [m.master for m in mounts if m.master is not None]
    kinds = [m.propagation for m in mounts]
    assert scan.propagation_counts() == {k: kinds.count(k) for k in scan.propagation_counts()}
    assert [m.propagation_key() for m in scan.mounts()] == [m.propagation_key() for m in mounts]
    assert scan.pins == [(nsfs_target(m), m.mount_point) for m in mounts if nsfs_target(m) is not None]
    return scan


def test_scan_agrees_with_full_parse_on_every_case():
    lines = [case[1] for case in TAG_CASES]
    lines += [
        b"40 29 0:80 " + raw + b" " + raw + b" rw master:3 - tmpfs " + raw + b" rw"
        for _case, raw, _decoded in ESCAPE_CASES
    ]
    lines.append(b"139 114 0:4 mnt:[4026532245] /run/pins/a\\040b rw - nsfs nsfs rw")
    _scan_matches_parse(b"\n".join(lines) + b"\n")
    _scan_matches_parse(
        b"\n".join(line for line in lines if b"unbindable" not in line)
    )  # fast path, no final newline


@pytest.mark.parametrize(
    "data",
    [
        b"1 0 0:1 / / rw shared:1 - tmpfs - rw\n2 1 0:2 / /x rw master:1 - tmpfs src rw\n",  # source "-"
        b"1 0 0:1 / / rw shared:1 - tmpfs t rw\n\n2 1 0:2 / /x rw - tmpfs src rw\n",  # blank line
        b"",
    ],
    ids=["dash_source", "blank_line", "empty"],
)
def test_scan_falls_back_to_the_parser_for_odd_tables(data):
    _scan_matches_parse(data)


def test_scan_reports_the_bad_line():
    with pytest.raises(MountinfoError, match="/t line 2: shared peer group is not a number"):
        scan_mountinfo(b"1 0 0:1 / / rw - tmpfs t rw\n2 1 0:2 / /x rw shared:x - tmpfs t rw\n", "/t")
    with pytest.raises(MountinfoError, match="/t line 1: no ' - ' separator"):
        scan_mountinfo(b"1 0 0:1 / / rw tmpfs t rw\n", "/t")

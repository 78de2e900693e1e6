"""Captured-style mountinfo lines and what the parser must make of them (kept apart from the tests)."""

from __future__ import annotations

# (case id, line, expected attributes)
TAG_CASES = [
    (
        "private",
        b"22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw",
        {
            "shared": None,
            "master": None,
            "propagate_from": None,
            "unbindable": False,
            "propagation": "private",
        },
    ),
    (
        "shared",
        b"29 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro",
        {"shared": 1, "master": None, "propagation": "shared"},
    ),
    (
        "slave",
        b"612 598 0:52 / /run/user rw,nosuid master:201 - tmpfs tmpfs rw,size=100k",
        {"shared": None, "master": 201, "propagation": "slave"},
    ),
    (
        "shared_and_slave",
        b"700 29 0:60 / /var/lib/kubelet/pods/x rw shared:415 master:77 - tmpfs tmpfs rw",
        {"shared": 415, "master": 77, "propagation": "shared_slave"},
    ),
    (
        "slave_with_propagate_from",
        b"813 800 252:1 /srv /mnt/srv rw master:5 propagate_from:1 - ext4 /dev/vda1 rw",
        {"master": 5, "propagate_from": 1, "propagation": "slave"},
    ),
    (
        "unbindable",
        b"90 29 0:70 / /mnt/jail rw unbindable - tmpfs tmpfs rw",
        {"unbindable": True, "propagation": "unbindable"},
    ),
    (
        "shared_unbindable_is_shared",
        b"91 29 0:71 / /mnt/odd rw shared:9 unbindable - tmpfs tmpfs rw",
        {"shared": 9, "unbindable": True, "propagation": "shared"},
    ),
    (
        "unknown_tags_ignored",
        b"92 29 0:72 / /mnt/new rw shared:3 future:7 weird - tmpfs tmpfs rw",
        {"shared": 3, "master": None, "propagation": "shared"},
    ),
    (
        "all_tags",
        b"93 29 0:73 / /mnt/all rw shared:11 master:12 propagate_from:13 unbindable - tmpfs tmpfs rw",
        {"shared": 11, "master": 12, "propagate_from": 13, "unbindable": True, "propagation": "shared_slave"},
    ),
]

ESCAPE_CASES = [
    ("space", b"/mnt/dir\\040with\\040space", b"/mnt/dir with space"),
    ("tab", b"/mnt/tab\\011here", b"/mnt/tab\there"),
    ("newline", b"/mnt/new\\012line", b"/mnt/new\nline"),
    ("backslash", b"/mnt/back\\134slash", b"/mnt/back\\slash"),
    ("all_four", b"/a\\040b\\011c\\012d\\134e", b"/a b\tc\nd\\e"),
    ("non_utf8", b"/mnt/bad\xffname", b"/mnt/bad\xffname"),
    ("escaped_non_utf8", b"/mnt/\\377x", b"/mnt/\xffx"),
    ("no_escape_plain_digits", b"/mnt/040", b"/mnt/040"),
]

MALFORMED_CASES = [
    ("no_separator", b"22 1 0:21 / /proc rw shared:1 proc proc rw", "separator"),
    ("nothing_after_separator", b"22 1 0:21 / /proc rw - proc", "fstype, source and super options"),
    ("short_line", b"22 1 0:21 / /proc", "separator"),
    ("bad_mount_id", b"x 1 0:21 / /proc rw - proc proc rw", "mount ID is not a number"),
    ("bad_parent_id", b"22 y 0:21 / /proc rw - proc proc rw", "parent ID is not a number"),
    ("bad_device", b"22 1 021 / /proc rw - proc proc rw", "MAJOR:MINOR"),
    ("bad_shared_tag", b"22 1 0:21 / /proc rw shared:x - proc proc rw", "shared peer group is not a number"),
    ("bad_master_tag", b"22 1 0:21 / /proc rw master: - proc proc rw", "master peer group is not a number"),
]

"""Kernel calls the lab needs (mount, unshare, idmapped mounts) and cgroup helpers; stdlib only.

Imported both by the controller (``tests.lab.nsutil``) and by ``hostinit.py`` inside a lab host
(as top-level ``nsutil``), so it has no package-relative imports.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
PROPAGATION = {"private": MS_PRIVATE, "slave": MS_SLAVE, "shared": MS_SHARED}

# x86_64 and the generic (arm64) syscall table agree from 424 up.
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
NS_GET_MNTNS_ID = (2 << 30) | (8 << 16) | (0xB7 << 8) | 5  # _IOR(0xb7, 5, __u64), Linux >= 6.8

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.syscall.restype = ctypes.c_long


class MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return result


def _b(value):
    return None if value is None else os.fsencode(value)


def mount(source, target, fstype, flags, data=None):
    what = "mount %s on %s (%s, flags %#x)" % (source, target, fstype, flags)
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), what)


def umount(target, flags=0):
    _check(_libc.umount2(_b(target), flags), "umount %s" % target)


def unshare(flags):
    _check(_libc.unshare(flags), "unshare(%#x)" % flags)


def set_propagation(path, kind, recursive=True):
    mount(None, path, None, PROPAGATION[kind] | (MS_REC if recursive else 0))


def idmapped_bind(source, target, userns_fd):
    """Clone ``source`` as a detached tree, idmap it through ``userns_fd``, attach at ``target``."""
    fd = _check(
        _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, _b(source), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC),
        "open_tree %s" % source,
    )
    try:
        attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        _check(
            _libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)),
            "mount_setattr(MOUNT_ATTR_IDMAP) %s" % source,
        )
        _check(
            _libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, _b(target), MOVE_MOUNT_F_EMPTY_PATH),
            "move_mount to %s" % target,
        )
    finally:
        os.close(fd)


def mntns_id(path):
    """The never-reused 64-bit id of the mount namespace behind ``path`` (inodes get reused)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return struct.unpack("Q", fcntl.ioctl(fd, NS_GET_MNTNS_ID, b"\0" * 8))[0]
    finally:
        os.close(fd)


def write_file(path, text, mode=None):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    if mode is not None:
        os.chmod(path, mode)


def mountinfo_points(path="/proc/self/mountinfo"):
    """Mount points (decoded) of a mountinfo file, in table order."""
    points = []
    with open(path, "rb") as handle:
        for line in handle:
            field = line.split(b" ")[4]
            for esc, raw in ((b"\\040", b" "), (b"\\011", b"\t"), (b"\\012", b"\n"), (b"\\134", b"\\")):
                field = field.replace(esc, raw)
            points.append(os.fsdecode(field))
    return points


# --- cgroups --------------------------------------------------------------------------------


def cgroup_hierarchies(mountinfo="/proc/self/mountinfo", cgroup_file="/proc/self/cgroup"):
    """Map each mounted cgroup hierarchy's mount point to this process's cgroup in it."""
    mounts = []
    with open(mountinfo, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            pre, _sep, post = line.partition(" - ")
            fstype, _source, superopts = post.split(" ", 2)
            if fstype in ("cgroup", "cgroup2"):
                opts = set(superopts.strip().split(","))
                mounts.append((fstype, opts, pre.split(" ")[4], pre.split(" ")[3]))
    found = {}
    with open(cgroup_file, encoding="utf-8") as handle:
        for line in handle:
            hier_id, controllers, path = line.rstrip("\n").split(":", 2)
            for fstype, opts, point, root in mounts:
                if root != "/":
                    continue
                if hier_id == "0" and not controllers:
                    match = fstype == "cgroup2"
                else:
                    match = fstype == "cgroup" and set(controllers.split(",")) <= opts
                if match and point not in found:
                    found[point] = point + path.rstrip("/") if path != "/" else point
    return found


def cgroup_mkdir(path):
    """mkdir -p a cgroup; v1 cpuset children start empty, so copy cpus/mems down the chain."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        cgroup_mkdir(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    for name in ("cpuset.cpus", "cpuset.mems"):
        mine = os.path.join(path, name)
        if os.path.exists(mine):
            with open(os.path.join(parent, name), encoding="utf-8") as handle:
                value = handle.read().strip()
            with open(mine, "w", encoding="utf-8") as handle:
                handle.write(value)


def cgroup_join(paths, pid=0):
    """Move ``pid`` (0: the caller) into each cgroup directory in ``paths``."""
    for path in paths:
        with open(os.path.join(path, "cgroup.procs"), "w", encoding="utf-8") as handle:
            handle.write(str(pid))


def cgroup_pids(path):
    """All pids in a cgroup subtree (v1 cgroup.procs is per directory)."""
    pids = set()
    for dirpath, _dirs, files in os.walk(path):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(dirpath, "cgroup.procs"), encoding="utf-8") as handle:
                    pids.update(int(x) for x in handle.read().split())
            except OSError:
                continue
    return pids


def cgroup_rmtree(path):
    """rmdir a cgroup subtree bottom-up; returns the directories that could not be removed."""
    left = []
    if not os.path.isdir(path):
        return left
    for dirpath, _dirs, _files in os.walk(path, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError as err:
            if err.errno != errno.ENOENT:
                left.append("%s (%s)" % (dirpath, err.strerror))
    return left

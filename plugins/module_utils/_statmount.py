# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""listmount(2)/statmount(2) backend (Linux >= 6.8; foreign namespaces by ID from 6.11).

Reads another namespace's mount table without entering it and without the text round trip of
mountinfo. It deliberately leaves ``STATMOUNT_PROPAGATE_FROM`` out of the request mask: that is
the part that walks the master's peer ring (``get_dominating_id``), the very cost an audit of
a contended host must not add.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import struct

from ansible_collections.mountops.fleet.plugins.module_utils._mountinfo import Mount

# asm-generic numbers, shared by x86_64, arm64 and the other modern ABIs from syscall 424 up.
_SYSCALLS = {"statmount": 457, "listmount": 458}
_GENERIC_ARCHES = ("x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x", "loongarch64")

STATMOUNT_SB_BASIC = 0x1
STATMOUNT_MNT_BASIC = 0x2
STATMOUNT_PROPAGATE_FROM = 0x4  # never requested, see module docstring
STATMOUNT_MNT_ROOT = 0x8
STATMOUNT_MNT_POINT = 0x10
STATMOUNT_FS_TYPE = 0x20
REQUEST_MASK = (
    STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC | STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE
)

MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20

LSMT_ROOT = 0xFFFFFFFFFFFFFFFF
MNT_ID_REQ_SIZE_VER1 = 32  # with mnt_ns_id (6.11+)
NS_GET_MNTNS_ID = 0x8008B705  # _IOR(0xb7, 0x5, __u64)

# struct mnt_id_req {u32 size; u32 spare/mnt_ns_fd; u64 mnt_id; u64 param; u64 mnt_ns_id}
_REQ = struct.Struct("=IIQQQ")
# struct statmount: the fields we use, at their fixed offsets (header is 512 bytes, then str[]).
_SM_HEAD = struct.Struct("=IIQIIQII")  # size, mnt_opts, mask, dev major/minor, magic, sb_flags, fs_type
_SM_IDS = struct.Struct("=QQIIQQQQQII")  # from offset 40: mnt_id ... mnt_root, mnt_point
_SM_STR_OFFSET = 512
_BUF_SIZE = 16 * 1024  # grows on EOVERFLOW (a mount point near PATH_MAX)
_LIST_BATCH = 4096


class StatmountError(OSError):
    """The statmount backend cannot serve this request (unsupported kernel, arch, or namespace)."""


class StatmountReader:
    """Reads whole mount namespaces with listmount + statmount. One instance per collection run."""

    def __init__(self):
        if platform.machine() not in _GENERIC_ARCHES:
            raise StatmountError(errno.ENOSYS, "no statmount syscall numbers for %s" % platform.machine())
        libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._resize(_BUF_SIZE)
        self._ids = (ctypes.c_uint64 * _LIST_BATCH)()
        self._req = ctypes.create_string_buffer(_REQ.size)

    def _resize(self, size):
        self._buf = ctypes.create_string_buffer(size)
        self._strings = ctypes.addressof(self._buf) + _SM_STR_OFFSET

    @staticmethod
    def namespace_id(ns_fd):
        """The 64-bit mount namespace ID of an open nsfs fd (NS_GET_MNTNS_ID, Linux >= 6.8)."""
        out = bytearray(8)
        try:
            fcntl.ioctl(ns_fd, NS_GET_MNTNS_ID, out, True)
        except OSError as err:
            raise StatmountError(err.errno, "NS_GET_MNTNS_ID: %s" % os.strerror(err.errno)) from None
        return struct.unpack("=Q", out)[0]

    def _call(self, name, *args):
        result = self._syscall(ctypes.c_long(_SYSCALLS[name]), *args)
        if result < 0:
            err = ctypes.get_errno()
            raise StatmountError(err, "%s: %s" % (name, os.strerror(err)))
        return result

    def _set_req(self, mnt_id, param, ns_id):
        _REQ.pack_into(self._req, 0, MNT_ID_REQ_SIZE_VER1, 0, mnt_id, param, ns_id)

    def list_mount_ids(self, ns_id):
        """All unique mount IDs of a namespace, in the kernel's (tree) order."""
        ids = []
        last = 0
        while True:
            self._set_req(LSMT_ROOT, last, ns_id)
            count = self._call(
                "listmount", self._req, self._ids, ctypes.c_size_t(_LIST_BATCH), ctypes.c_uint(0)
            )
            ids.extend(self._ids[:count])
            if count < _LIST_BATCH:
                return ids
            last = ids[-1]

    def stat_mount(self, mnt_id, ns_id):
        self._set_req(mnt_id, REQUEST_MASK, ns_id)
        while True:
            try:
                self._call(
                    "statmount", self._req, self._buf, ctypes.c_size_t(len(self._buf)), ctypes.c_uint(0)
                )
                break
            except StatmountError as err:
                if err.errno != errno.EOVERFLOW or len(self._buf) >= 1 << 20:
                    raise
                self._resize(len(self._buf) * 4)
        # Unpack in place: copying the buffer out per mount would cost more than the syscall.
        buf = self._buf
        _size, _opts, _mask, major, minor, _magic, _sb_flags, fs_type = _SM_HEAD.unpack_from(buf, 0)
        (
            _mnt_id,
            _parent,
            mnt_id_old,
            parent_id_old,
            _attr,
            propagation,
            peer_group,
            master,
            _propagate_from,
            mnt_root,
            mnt_point,
        ) = _SM_IDS.unpack_from(buf, 40)
        strings = self._strings
        return Mount(
            mnt_id_old,
            parent_id_old,
            major,
            minor,
            ctypes.string_at(strings + mnt_root),
            ctypes.string_at(strings + mnt_point),
            "",
            peer_group if propagation & MS_SHARED else None,
            master if propagation & MS_SLAVE else None,
            None,
            bool(propagation & MS_UNBINDABLE),
            ctypes.string_at(strings + fs_type).decode("utf-8", "replace"),
        )

    def read_namespace(self, ns_fd):
        """All mounts of the namespace behind ``ns_fd`` (an open /proc/PID/ns/mnt or nsfs bind)."""
        ns_id = self.namespace_id(ns_fd)
        mounts = []
        for mnt_id in self.list_mount_ids(ns_id):
            try:
                mounts.append(self.stat_mount(mnt_id, ns_id))
            except StatmountError as err:
                if err.errno == errno.ENOENT:  # unmounted between listmount and statmount
                    continue
                raise
        return mounts


def probe():
    """Return (reader, None) when this kernel serves foreign-namespace statmount, else (None, why)."""
    try:
        reader = StatmountReader()
        fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            reader.read_namespace(fd)
        finally:
            os.close(fd)
    except (StatmountError, OSError) as err:
        return None, "statmount unavailable: %s" % (err.strerror or err)
    return reader, None

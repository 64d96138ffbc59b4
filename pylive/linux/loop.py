"""Loop devices through /dev/loop-control and the LOOP_* ioctls (linux/loop.h)."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time

LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_PARTSCAN = 8
LO_NAME_SIZE = 64

# struct loop_info64: u64 device, inode, rdevice, offset, sizelimit; u32 number, encrypt_type,
# encrypt_key_size, flags; u8 file_name[64], crypt_name[64], encrypt_key[32]; u64 init[2]
_INFO64 = struct.Struct("=QQQQQIIII64s64s32s2Q")
# struct loop_config: u32 fd, block_size; struct loop_info64 info; u64 __reserved[8]
_CONFIG = struct.Struct("=II" + _INFO64.format.lstrip("=") + "8Q")


def loop_info64(path: str, flags: int) -> bytes:
    name = os.fsencode(path)[: LO_NAME_SIZE - 1]
    return _INFO64.pack(0, 0, 0, 0, 0, 0, 0, 0, flags, name, b"", b"", 0, 0)


def loop_config(fd: int, path: str, flags: int) -> bytes:
    info = _INFO64.unpack(loop_info64(path, flags))
    return _CONFIG.pack(fd, 0, *info, *([0] * 8))


def attach_loop(path: str, readonly: bool, *, dev_dir: str = "/dev", autoclear: bool = False,
                partscan: bool = False) -> str:
    """Attach `path` to a free loop device and return the device node (e.g. /dev/loop0).

    With `partscan`, the kernel also creates the partitions of a disk image (/dev/loop0p1, …).
    """
    flags = (LO_FLAGS_READ_ONLY if readonly else 0) | (LO_FLAGS_AUTOCLEAR if autoclear else 0)
    backing = os.open(path, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_CLOEXEC)
    try:
        ctl = os.open(f"{dev_dir}/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _attempt in range(20):
                number = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                node = f"{dev_dir}/loop{number}"
                try:
                    _configure(node, backing, path, flags, readonly)
                    if partscan:
                        enable_partscan(node)
                    return node
                except OSError as e:
                    # Another process took this device between GET_FREE and our configure.
                    if e.errno != errno.EBUSY:
                        raise
                    time.sleep(0.01)
            raise OSError(errno.EBUSY, "no free loop device after 20 attempts", path)
        finally:
            os.close(ctl)
    finally:
        os.close(backing)


def _configure(node: str, backing: int, path: str, flags: int, readonly: bool) -> None:
    for _ in range(100):  # devtmpfs creates the node right after GET_FREE; allow a moment
        try:
            fd = os.open(node, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_CLOEXEC)
            break
        except FileNotFoundError:
            time.sleep(0.01)
    else:
        raise FileNotFoundError(errno.ENOENT, "loop device node did not appear", node)
    try:
        try:
            fcntl.ioctl(fd, LOOP_CONFIGURE, loop_config(backing, path, flags))
        except OSError as e:
            # LOOP_CONFIGURE came with Linux 5.8; older kernels answer EINVAL (or ENOTTY).
            if e.errno not in (errno.EINVAL, errno.ENOTTY):
                raise
            fcntl.ioctl(fd, LOOP_SET_FD, backing)
            try:
                fcntl.ioctl(fd, LOOP_SET_STATUS64, loop_info64(path, flags))
            except OSError:
                fcntl.ioctl(fd, LOOP_CLR_FD, 0)
                raise
    finally:
        os.close(fd)


def detach_loop(node: str) -> None:
    fd = os.open(node, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, LOOP_CLR_FD, 0)
    finally:
        os.close(fd)


def enable_partscan(node: str) -> None:
    """Turn on partition scanning of an attached loop device; its partitions exist on return.

    Done after LOOP_CONFIGURE rather than with it: configured with LO_FLAGS_PARTSCAN, the kernel
    announces the device before it reads the partition table, and a udev worker that opens the
    device in between makes the kernel scan twice, the second scan removing and re-adding every
    partition (systemd's loop-util works around it the same way, systemd#41425).
    """
    fd = os.open(node, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = list(_INFO64.unpack(fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_INFO64.size))))
        info[8] |= LO_FLAGS_PARTSCAN  # lo_flags
        fcntl.ioctl(fd, LOOP_SET_STATUS64, _INFO64.pack(*info))
    finally:
        os.close(fd)

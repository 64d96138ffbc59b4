"""Device-mapper through /dev/mapper/control (the only module that issues DM ioctls)."""

from __future__ import annotations

import contextlib
import fcntl
import os

from pylive.dmtable import (
    DM_READONLY_FLAG,
    DM_STATUS_TABLE_FLAG,
    TargetLine,
    ioctl_number,
    pack_control_ioctl,
    pack_dm_ioctl,
    pack_dm_message,
    unpack_dm_ioctl,
    unpack_table_status,
)

CONTROL = "/dev/mapper/control"


def _ioctl(command: str, buf: bytearray) -> bytearray:
    fd = os.open(CONTROL, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, ioctl_number(command), buf, True)
    except OSError as e:
        raise OSError(e.errno, f"{command}: {os.strerror(e.errno or 0)}", CONTROL) from None
    finally:
        os.close(fd)
    return buf


def create_device(name: str, table: tuple[TargetLine, ...], readonly: bool = False,
                  dev_dir: str = "/dev") -> str:
    """DM_DEV_CREATE + DM_TABLE_LOAD + resume, like `dmsetup create`. Returns /dev/mapper/<name>.

    On failure after the create, the half-made device is removed again.
    """
    flags = DM_READONLY_FLAG if readonly else 0
    reply = unpack_dm_ioctl(_ioctl("DM_DEV_CREATE", pack_dm_ioctl(name, flags=flags)))
    try:
        _ioctl("DM_TABLE_LOAD", pack_dm_ioctl(name, flags=flags, targets=table))
        _ioctl("DM_DEV_SUSPEND", pack_dm_ioctl(name, flags=flags))  # no SUSPEND flag: resume
    except OSError:
        _ioctl("DM_DEV_REMOVE", pack_dm_ioctl(name))
        raise
    return ensure_mapper_node(name, reply.dev, dev_dir)


def ensure_mapper_node(name: str, dev: int, dev_dir: str = "/dev") -> str:
    """/dev/mapper/<name> → ../dm-N, made now (devtmpfs made dm-N with the device), as libdevmapper does
    without udev. udev's dm rules may make the same link later and replace this one with theirs; waiting
    for them cost 0.2 s per device in a slow guest (make bench), and without a libdevmapper cookie they
    may not make it at all."""
    link, target = f"{dev_dir}/mapper/{name}", f"../dm-{os.minor(dev)}"
    try:
        os.symlink(target, link)
    except FileExistsError:
        try:
            if os.stat(link).st_rdev == dev:  # udev was first
                return link
        except OSError:
            pass
        # a link left by a device of the same name that was removed (a rollback, an earlier try): replace it
        tmp = f"{dev_dir}/mapper/.{name}.pylive"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.rename(tmp, link)
    return link


def table(name: str, status: bool = False) -> list[TargetLine]:
    """`dmsetup table` (status=False) or `dmsetup status` (status=True) of one device."""
    flags = 0 if status else DM_STATUS_TABLE_FLAG
    return unpack_table_status(_ioctl("DM_TABLE_STATUS", pack_dm_ioctl(name, flags=flags)))


def remove_device(name: str) -> None:
    _ioctl("DM_DEV_REMOVE", pack_dm_ioctl(name))


def message(name: str, text: str, sector: int = 0) -> None:
    """`dmsetup message <name> <sector> <text>` (e.g. "create_thin 0" to a thin pool)."""
    _ioctl("DM_TARGET_MSG", pack_dm_message(name, text, sector))


def open_events() -> int:
    """The control node armed for events: poll(2) on the returned fd reports POLLIN when any
    device-mapper device raises an event (a snapshot invalidated, a thin pool out of space).
    Call arm_events() again after each wake-up."""
    fd = os.open(CONTROL, os.O_RDWR | os.O_CLOEXEC)
    arm_events(fd)
    return fd


def arm_events(fd: int) -> None:
    fcntl.ioctl(fd, ioctl_number("DM_DEV_ARM_POLL"), pack_control_ioctl(), True)

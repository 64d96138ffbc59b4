"""What the overlay tools read from the system, and the few things they write: the file's bytes,
free space, the filesystem a path is on, whether a loop device holds a file, allocated files.
Every reader of system state takes its root, as pylive/probe.py's do."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from pylive import mountinfo
from pylive.errors import LiveError, one_line
from pylive.overlay.cowformat import Read
from pylive.planner.overlay import IDENTITY_SUFFIX

MIB = 1 << 20
FAT_TYPES = ("vfat", "msdos")
FAT_MAX_MIB = 4095  # FAT's largest file is 4 GiB - 1 byte; livecd-iso-to-disk stops at 4095 MiB too
_SIZE = re.compile(r"([0-9]+)([KMGT]?)(?:i?B)?", re.IGNORECASE)
_UNITS = {"": MIB, "k": 1 << 10, "m": MIB, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """--size: a number of MiB (as livecd-iso-to-disk's --overlay-size-mb), or with a unit: 512M, 4G,
    4GiB, 1T, 64K (binary units). Bytes, a whole number of 4 KiB."""
    m = _SIZE.fullmatch(text.strip())
    if not m or int(m[1]) == 0:
        raise LiveError(f"--size {one_line(text)}: not a size", "use e.g. --size 4096 (MiB), --size 512M or --size 4G")
    size = int(m[1]) * _UNITS[m[2].lower()]
    if size % 4096:
        raise LiveError(f"--size {one_line(text)}: not a whole number of 4 KiB", "use e.g. --size 512M")
    return size


def mib(n: int) -> str:
    """n bytes in MiB: whole when it is, else one decimal; in KiB below 1 MiB."""
    if 0 < n < MIB:
        return f"{n >> 10} KiB"
    if n % MIB == 0:
        return f"{n // MIB} MiB"
    if n % MIB < 64 << 10 and n % 1024 == 0:  # a size made one chunk larger (cowformat.safe_size)
        return f"{n // MIB} MiB + {(n % MIB) >> 10} KiB"
    return f"{n / MIB:.1f} MiB"


def open_read(path: str) -> int:
    """A read-only descriptor of a file or block device; LiveError naming it when it cannot be opened."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise LiveError(f"{one_line(path)}: {e.strerror}", "give an existing file") from None


def size_of(fd: int) -> int:
    """A regular file's size, or a block device's."""
    st = os.fstat(fd)
    return st.st_size if stat.S_ISREG(st.st_mode) else os.lseek(fd, 0, os.SEEK_END)


def reader(fd: int) -> Read:
    return lambda offset, size: os.pread(fd, size, offset)


def free_bytes(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def fs_of(root: Path, path: str) -> mountinfo.MountEntry | None:
    """The mount that holds `path` (symbolic links resolved)."""
    return mountinfo.mount_of(root, os.path.realpath(path))


def loop_users(root: Path, path: str) -> list[str]:
    """The loop devices whose backing file is `path`: a live system is using it."""
    real = os.path.realpath(path)
    users = []
    for entry in sorted((root / "sys/block").glob("loop*")):
        try:
            backing = (entry / "loop/backing_file").read_text().strip()
        except OSError:
            continue
        if backing.removesuffix(" (deleted)") == real:
            users.append(f"/dev/{entry.name}")
    return users


def refuse_in_use(root: Path, path: str) -> None:
    users = loop_users(root, path)
    if users:
        raise LiveError(f"{one_line(path)} is in use by {', '.join(users)}",
                        "do this when no live system uses it (shut it down, or boot without the overlay)")


def identity_record(overlay: str) -> str | None:
    """The base image pylive recorded for an overlay (`<overlay>.pylive-base`), or None."""
    try:
        with open(overlay.rstrip("/") + IDENTITY_SUFFIX, encoding="utf-8", errors="replace") as f:
            return f.read(4096).strip() or None
    except OSError:
        return None


def parse_identity(text: str) -> dict[str, str]:
    """"size=N sha256-64k=HEX" → {"size": N, "sha256-64k": HEX}."""
    return dict(word.partition("=")[::2] for word in text.split() if "=" in word)


def allocate(path: str, size: int, mode: int = 0o600) -> None:
    """A new file of `size` bytes that reads as zeros, its blocks allocated (posix_fallocate; glibc writes
    zeros where the filesystem has no fallocate). Never replaces a file; removed again on failure."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.posix_fallocate(fd, 0, size)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)

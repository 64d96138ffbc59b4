"""Reads system state: superblock sniffing, block device lists. Every reader takes its root."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

from pylive.record import record

# (offset, magic, fstype): enough for what a live medium or image can be.
_MAGICS = (
    (0, b"hsqs", "squashfs"),
    (0, b"SnAp", "DM_snapshot_cow"),  # a persistent device-mapper snapshot's COW header
    (1024, struct.pack("<I", 0xE0F5E1E2), "erofs"),
    (1080, struct.pack("<H", 0xEF53), "ext4"),  # ext2/3/4 share it; the kernel's ext4 mounts them all
    (32769, b"CD001", "iso9660"),
    (65536 + 64, b"_BHRfS_M", "btrfs"),
    (0, b"XFSB", "xfs"),
    (3, b"NTFS    ", "ntfs"),
    (3, b"EXFAT   ", "exfat"),
)
SNIFF_BYTES = 65536 + 72


def sniff_fstype(head: bytes) -> str | None:
    """The filesystem type from the first bytes of a device or image (like blkid's superblock probe)."""
    for offset, magic, fstype in _MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return fstype
    # FAT: boot sector signature plus a FAT type string
    if head[510:512] == b"\x55\xaa" and (head[54:59] == b"FAT12" or head[54:59] == b"FAT16" or head[82:87] == b"FAT32"):
        return "vfat"
    return None


def read_fstype(path: str) -> str | None:
    with open(path, "rb") as f:
        return sniff_fstype(f.read(SNIFF_BYTES))


@record
class BlockDevice:
    name: str
    size_sectors: int
    label: str | None = None
    fstype: str | None = None

    def __str__(self) -> str:
        extra = ",".join(x for x in (self.fstype, f'"{self.label}"' if self.label else None) if x)
        return f"{self.name}({extra})" if extra else self.name


def block_devices(root: Path = Path("/")) -> list[BlockDevice]:
    """Block devices from sysfs, with label and fstype from the udev database when it has them."""
    out: list[BlockDevice] = []
    sysblock = root / "sys/class/block"
    if not sysblock.is_dir():
        return out
    for entry in sorted(sysblock.iterdir()):
        try:
            size = int((entry / "size").read_text())
            dev = (entry / "dev").read_text().strip()
        except (OSError, ValueError):
            continue
        if entry.name.startswith(("ram", "loop")) and size == 0:
            continue  # unused ram and loop devices are noise in an error message
        props = _udev_props(root, dev)
        # ID_FS_LABEL has spaces turned into "_"; ID_FS_LABEL_ENC keeps them, \x-escaped.
        label = unescape_udev(props["ID_FS_LABEL_ENC"]) if "ID_FS_LABEL_ENC" in props else props.get("ID_FS_LABEL")
        out.append(BlockDevice(entry.name, size, label, props.get("ID_FS_TYPE")))
    return out


def unescape_udev(text: str) -> str:
    """Undo udev's \\xNN escaping (ID_FS_LABEL_ENC, /dev/disk/by-label names)."""
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")


def _udev_props(root: Path, dev: str) -> dict[str, str]:
    """Properties from /run/udev/data/b<major:minor> (E: lines)."""
    props = {}
    try:
        for line in (root / f"run/udev/data/b{dev}").read_text().splitlines():
            if line.startswith("E:") and "=" in line:
                k, v = line[2:].split("=", 1)
                props[k] = v
    except OSError:
        pass
    return props


def device_sectors(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END) // 512
    finally:
        os.close(fd)


def mem_total_mib(root: Path = Path("/")) -> int | None:
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def label_uuid(root: Path, dev: str) -> tuple[str, str]:
    """LABEL and UUID of a block device from the udev database ("" when unknown), as blkid reports them."""
    try:
        rdev = os.stat(dev).st_rdev
    except OSError:
        return "", ""
    props = _udev_props(root, f"{os.major(rdev)}:{os.minor(rdev)}")
    label = unescape_udev(props["ID_FS_LABEL_ENC"]) if "ID_FS_LABEL_ENC" in props else props.get("ID_FS_LABEL", "")
    return label, props.get("ID_FS_UUID", "")


def image_identity(path: str) -> str:
    """What identifies a base image: its size and a hash of its first 64 KiB (the squashfs or ext4
    superblock with its creation time, UUID and sizes)."""
    import hashlib

    with open(path, "rb") as f:
        head = f.read(65536)
        size = os.fstat(f.fileno()).st_size
    return f"size={size} sha256-64k={hashlib.sha256(head).hexdigest()[:32]}"


def parent_disk(root: Path, dev: str) -> str | None:
    """The whole disk a partition belongs to (/dev/sdb for /dev/sdb1), None for a whole disk."""
    name = os.path.basename(os.path.realpath(dev))
    entry = root / "sys/class/block" / name
    if not (entry / "partition").exists():
        return None
    return "/dev/" + os.path.basename(os.path.dirname(os.path.realpath(entry)))


@record
class MountEntry:
    mountpoint: str
    fstype: str
    options: tuple[str, ...]  # the per-mount options (rw, nosuid, nodev, relatime, …)


def mount_of(root: Path, path: str) -> MountEntry | None:
    """The mount that holds `path`, from /proc/self/mountinfo (the last mount on the deepest point wins)."""
    try:
        text = (root / "proc/self/mountinfo").read_text()
    except OSError:
        return None
    best: MountEntry | None = None
    for line in text.splitlines():
        fields, _, rest = line.partition(" - ")
        f = fields.split()
        if len(f) < 6 or not rest:
            continue
        point = _unoctal(f[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mountpoint)):
            best = MountEntry(point, rest.split()[0], tuple(f[5].split(",")))
    return best


def _unoctal(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)

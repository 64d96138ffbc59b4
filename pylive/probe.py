"""Reads system state: superblock sniffing, block device lists. Every reader takes its root."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

from pylive.linux.meminfo import meminfo_bytes
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
    (1024, struct.pack("<I", 0xF2F52010), "f2fs"),
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
        try:
            head = f.read(SNIFF_BYTES)
        except OSError as e:  # a read error names the file it happened in
            raise OSError(e.errno, e.strerror, path) from e
    return sniff_fstype(head)


# --- the size a medium or an image says it has ----------------------------------------------------------

PVD_END = 32768 + 2048  # the primary volume descriptor is the first at sector 16
SQUASHFS_SUPERBLOCK = 96
# Sectors at the end of an ISO that may be missing without harm: isomd5sum leaves out the last 15 (burned
# discs misread them), and a drive may report a capacity a few sectors short of the volume.
ISO_TAIL_SLACK = 15 * 2048


def iso_volume_bytes(head: bytes) -> int | None:
    """The size an ISO 9660 volume gives itself (volume space size times logical block size, both-endian
    fields read little-endian), from a device's first PVD_END bytes; None when no PVD is at sector 16."""
    pvd = head[32768:PVD_END]
    if len(pvd) < 2048 or pvd[0] != 1 or pvd[1:6] != b"CD001":
        return None
    block = int.from_bytes(pvd[128:130], "little")
    return int.from_bytes(pvd[80:84], "little") * (block if block in (512, 1024, 2048) else 2048)


def iso_shortfall(head: bytes, device_bytes: int) -> int | None:
    """The volume size when the device holding an ISO 9660 volume ends more than ISO_TAIL_SLACK before it
    (a truncated image); None otherwise."""
    want = iso_volume_bytes(head)
    return want if want is not None and device_bytes + ISO_TAIL_SLACK < want else None


def squashfs_shortfall(head: bytes, size: int) -> int | None:
    """The bytes a squashfs superblock says the image uses (bytes_used) when the file or device holding it
    is smaller; None otherwise, or when `head` is no squashfs superblock."""
    if len(head) < SQUASHFS_SUPERBLOCK or head[:4] != b"hsqs":
        return None
    used = int.from_bytes(head[40:48], "little")
    return used if size < used else None


@record
class BlockDevice:
    name: str
    size_sectors: int
    label: str | None = None
    fstype: str | None = None
    parent: str | None = None  # the whole disk of a partition
    partition: int = 0  # the partition number; 0 for a whole device
    removable: bool = False  # the disk's removable flag (CD/DVD drives, most USB sticks)
    partlabel: str | None = None  # a GPT partition's name (/dev/disk/by-partlabel/)
    devnum: str = ""  # major:minor
    uuid: str | None = None  # the filesystem's UUID (ID_FS_UUID)

    def __str__(self) -> str:
        extra = ",".join(x for x in (self.fstype, f'"{self.label}"' if self.label else None) if x)
        return f"{self.name}({extra})" if extra else self.name

    @property
    def node(self) -> str:
        return "/dev/" + self.name.replace("!", "/")  # sysfs writes cciss/c0d0 as cciss!c0d0


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
        number, parent = _partition_of(entry)
        disk = sysblock / (parent or entry.name)
        removable = _read(disk / "removable") == "1"
        partlabel = unescape_udev(props["ID_PART_ENTRY_NAME"]) if "ID_PART_ENTRY_NAME" in props else None
        out.append(BlockDevice(entry.name, size, label, props.get("ID_FS_TYPE"), parent, number, removable, partlabel,
                               dev, props.get("ID_FS_UUID")))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _partition_of(entry: Path) -> tuple[int, str | None]:
    """(number, whole disk) of a partition; (0, None) for a whole device. In sysfs a partition is a
    directory inside its disk's: /sys/class/block/sda1 -> ../../devices/…/block/sda/sda1."""
    number = _read(entry / "partition")
    if not number.isdigit():
        return 0, None
    return int(number), entry.resolve().parent.name


def devnum_key(device: BlockDevice) -> tuple[int, int]:
    """A device's number as (major, minor), for sorting; devices without one last."""
    major, _, minor = device.devnum.partition(":")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else (1 << 32, 0)


def same_filesystem(udev_path: str, devices: list[BlockDevice]) -> list[BlockDevice]:
    """The devices a /dev/disk/by-label/ or by-uuid/ link could point at, in device number order, when they
    lie on more than one disk (a hybrid ISO's disk and its first partition carry the same label: one
    medium); [] when the link names one medium."""
    kind, _, name = udev_path.removeprefix("/dev/disk/").partition("/")
    if not name or kind not in ("by-label", "by-uuid"):
        return []
    value = unescape_udev(name)
    found = [d for d in devices if (d.label if kind == "by-label" else d.uuid) == value]
    disks = {d.parent or d.name for d in found}
    return sorted(found, key=devnum_key) if len(disks) > 1 else []


def partitions(root: Path, node: str) -> list[str]:
    """The partition device nodes of a whole device, in partition order."""
    name = os.path.basename(os.path.realpath(node))
    found = [d for d in block_devices(root) if d.parent == name]
    return [d.node for d in sorted(found, key=lambda d: d.partition)]


def unescape_udev(text: str) -> str:
    """Undo udev's \\xNN escaping (ID_FS_LABEL_ENC, /dev/disk/by-label names)."""
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")


def _udev_props(root: Path, dev: str) -> dict[str, str]:
    """Properties from /run/udev/data/b<major:minor> (E: lines). Bytes that are not UTF-8 (a property
    from a device's own strings, another rule's program) are kept as surrogates, as the command line's are."""
    props = {}
    try:
        text = (root / f"run/udev/data/b{dev}").read_bytes().decode("utf-8", "surrogateescape")
        for line in text.splitlines():
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
    total = meminfo_bytes(str(root), "MemTotal")
    return None if total is None else total >> 20


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


# --- filesystem identity: what blkid would call LABEL and UUID ---------------------------------


@record
class FsIdentity:
    fstype: str | None
    labels: tuple[str, ...] = ()  # blkid's LABEL; an ISO9660 may also carry a (different) Joliet label
    uuid: str = ""


ISO_DESCRIPTORS = 32768 + 2048 * 32  # the system area and the volume descriptors blkid reads


def _uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _text(raw: bytes, encoding: str = "latin-1") -> str:
    return raw.decode(encoding, "replace").rstrip("\0 ")


def iso9660_uuid(pvd: bytes) -> str:
    """blkid's ISO9660 UUID: the volume creation time (or modification time) as YYYY-MM-DD-hh-mm-ss-cc."""
    for date in (pvd[813:829], pvd[830:846]):
        c = date.decode("latin-1")
        if c.strip("0\0 "):
            return f"{c[0:4]}-{c[4:6]}-{c[6:8]}-{c[8:10]}-{c[10:12]}-{c[12:14]}-{c[14:16]}"
    return ""


def _iso9660_labels(head: bytes) -> tuple[str, ...]:
    labels = [_text(head[32768 + 40 : 32768 + 72])]
    for n in range(1, 32):
        vd = head[32768 + 2048 * n : 32768 + 2048 * (n + 1)]
        if len(vd) < 2048 or vd[0] == 255 or vd[1:6] != b"CD001":
            break
        if vd[0] == 2 and vd[88:91] in (b"%/@", b"%/C", b"%/E"):  # Joliet: UCS-2 big-endian
            labels.append(_text(vd[40:72], "utf-16-be"))
    return tuple(dict.fromkeys(x for x in labels if x))


def fs_identity(head: bytes) -> FsIdentity:
    """LABEL and UUID from the first bytes of a device (ISO9660: the first ISO_DESCRIPTORS bytes)."""
    fstype = sniff_fstype(head)
    label, uuid = "", ""
    if fstype == "iso9660":
        return FsIdentity(fstype, _iso9660_labels(head), iso9660_uuid(head[32768:34816]))
    if fstype == "ext4":
        label, uuid = _text(head[1024 + 120 : 1024 + 136], "utf-8"), _uuid(head[1024 + 104 : 1024 + 120])
    elif fstype == "vfat":
        fat32 = head[82:87] == b"FAT32"
        label = _text(head[71:82] if fat32 else head[43:54])
        serial = head[67:71] if fat32 else head[39:43]
        uuid = f"{serial[3]:02X}{serial[2]:02X}-{serial[1]:02X}{serial[0]:02X}"
        label = "" if label == "NO NAME" else label
    elif fstype == "btrfs":
        label, uuid = _text(head[65536 + 0x12B : 65536 + 0x22B], "utf-8"), _uuid(head[65536 + 0x20 : 65536 + 0x30])
    elif fstype == "xfs":
        label, uuid = _text(head[108:120], "utf-8"), _uuid(head[32:48])
    return FsIdentity(fstype, (label,) if label else (), uuid)


def read_identity(path: str) -> FsIdentity:
    with open(path, "rb") as f:
        return fs_identity(f.read(ISO_DESCRIPTORS))


def read_ntfs_unclean(path: str) -> str | None:
    with open(path, "rb") as f:
        return ntfs_unclean(lambda offset, size: os.pread(f.fileno(), size, offset))


# --- NTFS: is it safe to mount read-only? ----------------------------------------------------------

NTFS_VOLUME_DIRTY = 0x0001
RESTART_VOLUME_IS_CLEAN = 0x0002
LOGFILE_NO_CLIENT = 0xFFFF


# What ntfs3 mounts (fs/ntfs3/super.c, ntfs_init_from_boot): sectors of 512 bytes and up, clusters of a power
# of two sectors up to 2 MiB, MFT records of 512 to 4096 bytes. Other numbers are no NTFS pylive reads.
NTFS_MAX_CLUSTER = 2 << 20
NTFS_MAX_RECORD = 4096
MAX_OFFSET = 2**63 - 1 - (1 << 20)  # os.pread takes a signed 64-bit offset


def _pow2(n: int, low: int, high: int) -> bool:
    return low <= n <= high and n & (n - 1) == 0


def _ntfs_geometry(boot: bytes) -> tuple[int, int]:
    """(cluster size, MFT record size) in bytes. A sectors-per-cluster byte above 0x80 stands for
    2**(256 - byte) sectors (clusters of 128 KiB and more)."""
    if boot[3:11] != b"NTFS    ":
        raise ValueError("not an NTFS boot sector")
    sector, per_cluster = struct.unpack_from("<HB", boot, 0x0B)
    cluster = sector * (per_cluster if per_cluster <= 0x80 else 1 << (0x100 - per_cluster))
    per_record = struct.unpack_from("<b", boot, 0x40)[0]
    record = per_record * cluster if per_record > 0 else 1 << -per_record
    if not (_pow2(sector, 512, 4096) and _pow2(cluster, sector, NTFS_MAX_CLUSTER)
            and _pow2(record, 512, NTFS_MAX_RECORD)):
        raise ValueError(f"sectors of {sector}, clusters of {cluster} and MFT records of {record} bytes are no NTFS")
    return cluster, record


def _ntfs_record(read: Callable[[int, int], bytes], boot: bytes, number: int) -> bytes:
    """MFT record `number`, with the update sequence (the per-512-byte fixups) applied."""
    cluster, size = _ntfs_geometry(boot)
    mft_lcn = struct.unpack_from("<Q", boot, 0x30)[0]
    rec = bytearray(read(mft_lcn * cluster + number * size, size))
    if rec[:4] != b"FILE":
        raise ValueError(f"MFT record {number} is not a FILE record")
    usa_ofs, usa_count = struct.unpack_from("<HH", rec, 4)
    if usa_ofs + 2 * usa_count > len(rec) or (usa_count - 1) * 512 > len(rec):
        raise ValueError(f"MFT record {number} has an update sequence beyond its end")
    usn = rec[usa_ofs : usa_ofs + 2]
    for i in range(1, usa_count):
        end = i * 512
        if rec[end - 2 : end] != usn:
            raise ValueError(f"MFT record {number} is torn (update sequence mismatch)")
        rec[end - 2 : end] = rec[usa_ofs + 2 * i : usa_ofs + 2 * i + 2]
    return bytes(rec)


def _ntfs_attribute(rec: bytes, type_: int) -> bytes:
    pos = struct.unpack_from("<H", rec, 0x14)[0]
    while pos + 8 <= len(rec):
        atype, length = struct.unpack_from("<II", rec, pos)
        if atype == 0xFFFFFFFF or length == 0:
            break
        if atype == type_:
            return rec[pos : pos + length]
        pos += length
    raise ValueError(f"no attribute 0x{type_:x}")


def _ntfs_log_start(read: Callable[[int, int], bytes], boot: bytes) -> tuple[bool, int, int]:
    """(dirty flag of $Volume, byte offset of $LogFile's first run, that run's length in bytes)."""
    cluster, _ = _ntfs_geometry(boot)
    volume = _ntfs_attribute(_ntfs_record(read, boot, 3), 0x70)  # $Volume's $VOLUME_INFORMATION, resident
    value = struct.unpack_from("<H", volume, 0x14)[0]
    dirty = bool(struct.unpack_from("<H", volume, value + 0x0A)[0] & NTFS_VOLUME_DIRTY)
    data = _ntfs_attribute(_ntfs_record(read, boot, 2), 0x80)  # $LogFile's $DATA, non-resident
    runs = data[struct.unpack_from("<H", data, 0x20)[0] :]
    len_size, lcn_size = runs[0] & 0x0F, runs[0] >> 4
    run_clusters = int.from_bytes(runs[1 : 1 + len_size], "little")
    lcn = int.from_bytes(runs[1 + len_size : 1 + len_size + lcn_size], "little", signed=True)
    return dirty, lcn * cluster, run_clusters * cluster


def _within_device(read: Callable[[int, int], bytes]) -> Callable[[int, int], bytes]:
    """`read` refusing offsets no device has (a negative run, an LCN of 2**64), which os.pread would
    refuse with OSError or OverflowError."""

    def checked(offset: int, size: int) -> bytes:
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"it points outside the device (byte {offset})")
        return read(offset, size)

    return checked


def ntfs_unclean(read: Callable[[int, int], bytes]) -> str | None:
    """Why an NTFS must not be mounted, even read-only, or None when Windows left it clean.

    Windows marks a volume dirty in $Volume after a crash, and leaves its $LogFile restart area
    without the "clean" flag when it hibernates, which includes Fast Startup's shutdown. The
    kernel's ntfs3 may replay that log on mount, and a resumed Windows would then find a volume
    that changed under it. `read(offset, size)` reads the device. Metadata that cannot be read or
    makes no sense is a reason too: such a volume is not looked at."""
    try:
        return _ntfs_unclean(_within_device(read))
    except OSError as e:
        return f"its metadata could not be read ({e.strerror or e})"
    except (ValueError, struct.error, IndexError) as e:
        return f"its metadata could not be read ({e})"


def _ntfs_unclean(read: Callable[[int, int], bytes]) -> str | None:
    dirty, log_start, log_run = _ntfs_log_start(read, read(0, 512))
    if dirty:
        return "the volume is marked dirty (Windows did not shut down cleanly; run chkdsk in Windows)"
    page = read(log_start, 4096)
    if page[:4] == b"\xff\xff\xff\xff":  # an emptied log, nothing to replay
        return None
    if page[:4] != b"RSTR":
        return f"its log is not in a clean state ({page[:4]!r} instead of a restart page)"
    # Two restart pages alternate; the one with the later LSN is current.
    areas = []
    for start in (0, struct.unpack_from("<I", page, 0x10)[0]):  # system_page_size
        p = page if start == 0 else read(log_start + start, 4096)
        if p[:4] == b"RSTR" and (start == 0 or start + 4096 <= log_run):
            areas.append(p[struct.unpack_from("<H", p, 0x18)[0] :])
    # RESTART_AREA: current_lsn u64, log_clients u16, client_free_list u16, client_in_use_list u16, flags u16
    _lsn, in_use, flags = max(struct.unpack_from("<Q4xHH", a, 0) for a in areas)
    if in_use != LOGFILE_NO_CLIENT and not flags & RESTART_VOLUME_IS_CLEAN:
        return "Windows is hibernated or did not shut down cleanly (Fast Startup does this); its log is open"
    return None


def parent_disk(root: Path, dev: str) -> str | None:
    """The whole disk a partition belongs to (/dev/sdb for /dev/sdb1), None for a whole disk."""
    name = os.path.basename(os.path.realpath(dev))
    entry = root / "sys/class/block" / name
    if not (entry / "partition").exists():
        return None
    return "/dev/" + os.path.basename(os.path.dirname(os.path.realpath(entry)))


# --- Is a filesystem safe to write? ----------------------------------------------------------------

EXT4_SB = 1024
EXT4_VALID_FS, EXT4_ERROR_FS = 0x0001, 0x0002  # s_state
EXT4_COMPAT_HAS_JOURNAL = 0x0004
EXT4_INCOMPAT_RECOVER = 0x0004  # needs_recovery: a journal with transactions the kernel replays on mount
FAT_STATE_DIRTY = 0x01  # the boot sector's state byte (FAT12/16 at 37, FAT32 at 65), as the kernel's fat driver sets it


@record
class FsHealth:
    """Whether a device and its filesystem may be written (the persistent overlay's device, before it is mounted)."""

    read_only: bool = False  # the block device refuses writes: a write-protected stick, a read-only drive
    repair: str = ""  # why the filesystem must be repaired before it is written; "" when it need not be
    fsck: str = ""  # the program that repairs it
    replay: bool = False  # an ext3/4 journal the kernel replays as it mounts the filesystem writable


def fs_health(head: bytes) -> FsHealth:
    """The filesystem's own record of its state (superblock or boot sector), from its first bytes.

    ext2/3/4: errors recorded by the kernel, or a state that is not clean without a journal to replay
    (an unclean ext2, an interrupted e2fsck), need e2fsck; a journal to replay (needs_recovery, left by
    any unclean shutdown) is what the journal is for, and the kernel replays it. vfat: the dirty bit the
    kernel sets while it is mounted and clears on unmount; FAT has no journal, so it needs fsck.vfat."""
    fstype = sniff_fstype(head)
    if fstype == "ext4" and len(head) >= EXT4_SB + 0x64:
        state = struct.unpack_from("<H", head, EXT4_SB + 0x3A)[0]
        compat, incompat = struct.unpack_from("<II", head, EXT4_SB + 0x5C)
        replay = bool(compat & EXT4_COMPAT_HAS_JOURNAL and incompat & EXT4_INCOMPAT_RECOVER)
        if state & EXT4_ERROR_FS:
            return FsHealth(repair="the kernel recorded errors in it", fsck="e2fsck -f", replay=replay)
        if not state & EXT4_VALID_FS and not replay:
            return FsHealth(repair="it is marked as not cleanly unmounted and has no journal to replay",
                            fsck="e2fsck -f")
        return FsHealth(replay=replay)
    if fstype == "vfat":
        state = head[65] if head[82:87] == b"FAT32" else head[37]
        if state & FAT_STATE_DIRTY:
            return FsHealth(repair="it was not cleanly unmounted (its dirty bit is set) and FAT has no journal",
                            fsck="fsck.vfat -a")
    return FsHealth()


def read_health(root: Path, dev: str) -> FsHealth:
    """fs_health of a block device, with its read-only flag (/sys/class/block/<name>/ro)."""
    try:
        health = fs_health(read_head(dev, SNIFF_BYTES))
    except OSError:  # unreadable: its mount says why
        health = FsHealth()
    name = os.path.basename(os.path.realpath(dev))
    if _read(root / "sys/class/block" / name / "ro") == "1":
        return FsHealth(True, health.repair, health.fsck, health.replay)
    return health


def read_head(path: str, size: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)

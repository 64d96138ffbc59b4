"""Device-mapper tables and the `struct dm_ioctl` payloads (pure).

The table strings are those dracut's dmsquash-live-root.sh pipes into `dmsetup create`; the
ioctl encoding follows include/uapi/linux/dm-ioctl.h.
"""

from __future__ import annotations

import struct

from pylive.plan import DmTarget, Ref, SizeOf, Source
from pylive.record import record

# dmsquash-live-root.sh: every snapshot uses 8-sector (4 KiB) chunks; `P` keeps the COW metadata
# persistent and `O` (kernel ≥ 4.3) turns a full COW into the Overflow state instead of Invalid.
SNAPSHOT_CHUNK_SECTORS = 8


def snapshot_table(origin: Source, cow: Source, flags: str = "PO") -> tuple[DmTarget, ...]:
    ref = origin if isinstance(origin, Ref) else Ref(origin)
    return (DmTarget(0, SizeOf(ref), "snapshot", (origin, cow, flags, SNAPSHOT_CHUNK_SECTORS)),)


def linear_table(dev: Source) -> tuple[DmTarget, ...]:
    ref = dev if isinstance(dev, Ref) else Ref(dev)
    return (DmTarget(0, SizeOf(ref), "linear", (dev, 0)),)


# --- struct dm_ioctl ------------------------------------------------------------------------
DM_VERSION = (4, 0, 0)  # the oldest interface version we need (4.x: all the commands below)
DM_NAME_LEN = 128
DM_UUID_LEN = 129
# u32 version[3], data_size, data_start, target_count; s32 open_count; u32 flags, event_nr,
# padding; u64 dev; char name[128], uuid[129], data[7]
_DM_IOCTL = struct.Struct("=3IIIIiIIIQ128s129s7s")
assert _DM_IOCTL.size == 312
# u64 sector_start, length; s32 status; u32 next; char target_type[16]
_DM_TARGET_SPEC = struct.Struct("=QQiI16s")

DM_READONLY_FLAG = 1 << 0
DM_SUSPEND_FLAG = 1 << 1
DM_EXISTS_FLAG = 1 << 2
DM_STATUS_TABLE_FLAG = 1 << 4

_DM_IOCTL_TYPE = 0xFD
_CMD = {
    "DM_VERSION": 0,
    "DM_DEV_CREATE": 3,
    "DM_DEV_REMOVE": 4,
    "DM_DEV_SUSPEND": 6,
    "DM_DEV_STATUS": 7,
    "DM_TABLE_LOAD": 9,
    "DM_TABLE_STATUS": 12,
    "DM_TARGET_MSG": 14,
    "DM_DEV_ARM_POLL": 16,  # kernel ≥ 4.13: poll(2) on the control node wakes on the next dm event
}
# struct dm_target_msg: u64 sector, then the message (NUL-terminated), at data_start
_DM_TARGET_MSG = struct.Struct("=Q")


def ioctl_number(command: str) -> int:
    """_IOWR(DM_IOCTL, nr, struct dm_ioctl)."""
    return (3 << 30) | (_DM_IOCTL.size << 16) | (_DM_IOCTL_TYPE << 8) | _CMD[command]


@record
class TargetLine:
    """One resolved table line: devices as major:minor or paths, sizes as numbers."""

    start: int
    length: int
    target: str
    params: str

    def __str__(self) -> str:
        return f"{self.start} {self.length} {self.target} {self.params}"


def pack_dm_ioctl(name: str, *, flags: int = 0, targets: tuple[TargetLine, ...] = (), dev: int = 0,
                  buffer_size: int = 16384) -> bytearray:
    """A dm_ioctl buffer: the header followed by packed target specs (for DM_TABLE_LOAD)."""
    encoded = name.encode()
    if not encoded or len(encoded) >= DM_NAME_LEN or "/" in name:
        raise ValueError(f"invalid device-mapper name {name!r}")
    body = bytearray()
    for i, t in enumerate(targets):
        params = t.params.encode() + b"\0"
        size = _DM_TARGET_SPEC.size + len(params)
        size += -size % 8  # each spec starts 8-byte aligned; `next` is the offset to the following one
        nxt = size if i + 1 < len(targets) else 0
        spec = _DM_TARGET_SPEC.pack(t.start, t.length, 0, nxt, t.target.encode())
        body += spec + params + b"\0" * (size - _DM_TARGET_SPEC.size - len(params))
    data_size = max(buffer_size, _DM_IOCTL.size + len(body))
    header = _DM_IOCTL.pack(*DM_VERSION, data_size, _DM_IOCTL.size, len(targets), 0, flags, 0, 0, dev,
                            encoded, b"", b"")
    buf = bytearray(data_size)
    buf[: len(header)] = header
    buf[_DM_IOCTL.size : _DM_IOCTL.size + len(body)] = body
    return buf


def pack_control_ioctl() -> bytearray:
    """A dm_ioctl header that names no device (DM_DEV_ARM_POLL, DM_VERSION)."""
    return bytearray(_DM_IOCTL.pack(*DM_VERSION, _DM_IOCTL.size, _DM_IOCTL.size, 0, 0, 0, 0, 0, 0, b"", b"", b""))


def pack_dm_message(name: str, message: str, sector: int = 0) -> bytearray:
    """A DM_TARGET_MSG buffer, like `dmsetup message <name> <sector> <message>`."""
    body = _DM_TARGET_MSG.pack(sector) + message.encode() + b"\0"
    buf = pack_dm_ioctl(name, buffer_size=_DM_IOCTL.size + len(body) + -len(body) % 8)
    buf[_DM_IOCTL.size : _DM_IOCTL.size + len(body)] = body
    return buf


@record
class SnapshotUsage:
    """What `dmsetup status` says of a snapshot target: sectors used of the COW, or its state."""

    allocated: int = 0
    total: int = 0
    metadata: int = 0
    state: str = ""  # "" while usable; "Invalid", "Overflow", "Merge failed", "Unknown"

    @property
    def percent(self) -> int:
        return 100 * self.allocated // self.total if self.total else 0


def parse_snapshot_status(params: str) -> SnapshotUsage:
    """`<allocated>/<total> <metadata>` (dm-snap.c snapshot_status), or a word for a broken snapshot."""
    used, _, meta = params.strip().partition(" ")
    allocated, slash, total = used.partition("/")
    if slash and allocated.isdigit() and total.isdigit():
        return SnapshotUsage(int(allocated), int(total), int(meta) if meta.isdigit() else 0)
    return SnapshotUsage(state=params.strip() or "Unknown")


@record
class DmReply:
    flags: int
    dev: int
    target_count: int
    data_start: int
    data_size: int
    version: tuple[int, int, int]


def unpack_dm_ioctl(buf: bytes | bytearray) -> DmReply:
    v0, v1, v2, data_size, data_start, count, _open, flags, _ev, _pad, dev, _n, _u, _d = _DM_IOCTL.unpack_from(buf)
    return DmReply(flags, dev, count, data_start, data_size, (v0, v1, v2))


def unpack_table_status(buf: bytes | bytearray) -> list[TargetLine]:
    """The target lines of a DM_TABLE_STATUS reply (status or table, depending on the flag)."""
    reply = unpack_dm_ioctl(buf)
    out = []
    offset = reply.data_start
    for _ in range(reply.target_count):
        start, length, _status, nxt, ttype = _DM_TARGET_SPEC.unpack_from(buf, offset)
        params_start = offset + _DM_TARGET_SPEC.size
        end = buf.index(b"\0", params_start)
        out.append(TargetLine(start, length, ttype.rstrip(b"\0").decode(), buf[params_start:end].decode()))
        # In replies `next` is the offset from the start of the data area (dm-ioctl.c retrieve_status).
        offset = reply.data_start + nxt
    return out

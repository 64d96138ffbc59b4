"""Reading the running live system: what the boot built (its record), the device-mapper status of
the overlay, the filesystems and the memory behind it. Everything pure is in status.py."""

from __future__ import annotations

import json
import os

from pylive.dmtable import SnapshotUsage, parse_snapshot_status
from pylive.health.status import (
    FsSpace,
    Limit,
    Reading,
    State,
    filesystem_limits,
    parse_thin_pool,
    snapshot_limits,
    snapshot_state,
    thin_limits,
)
from pylive.linux.meminfo import meminfo_bytes
from pylive.mountinfo import mount_of

STATE_FILE = "run/initramfs/pylive.json"  # what the boot left (boot.STATE_FILE, relative to the root)
RAM_FS = ("tmpfs", "ramfs")

# the boot's mode (planner.Mode names, lower case) → (kind, persistent)
KINDS = {
    "dm_snapshot_temp": ("dm-snapshot", False),
    "dm_snapshot_persistent": ("dm-snapshot", True),
    "dm_snapshot_persistent_ro": ("dm-snapshot", False),  # the writable layer is the temporary one over live-ro
    "dm_thin_temp": ("dm-thin", False),
    "overlayfs_temp": ("overlayfs", False),
    "overlayfs_persistent": ("overlayfs", True),
    "overlayfs_persistent_ro": ("overlayfs", False),
    "dm_linear_rw": ("none", False),
}


class NotALiveSystem(Exception):
    """No record of a pylive boot: this system was not booted by pylive."""


def mem_available(root: str) -> int | None:
    return meminfo_bytes(root, "MemAvailable")


def fs_space(path: str) -> FsSpace | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return FsSpace(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def dm_line(name: str, *, status: bool = True) -> str | None:
    """`dmsetup status <name>` (or `table`) as text: `<start> <length> <target> <params>` of its one target."""
    from pylive.linux import dm

    try:
        lines = dm.table(name, status=status)
    except OSError:
        return None
    return " ".join(f"{t.start} {t.length} {t.target} {t.params}" for t in lines[:1]) if lines else None


def boot_record(root: str) -> dict[str, object]:
    try:
        with open(os.path.join(root, STATE_FILE)) as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise NotALiveSystem(f"/{STATE_FILE} is missing: this system was not booted by pylive, or its boot could "
                             "not write the file (a full /run: see pylive's warnings in dmesg)") from None
    except (OSError, ValueError) as e:
        raise NotALiveSystem(f"/{STATE_FILE} cannot be read ({e})") from None
    if not isinstance(data, dict) or data.get("mode") not in KINDS:
        raise NotALiveSystem(f"/{STATE_FILE} names no overlay mode pylive knows")
    return data


def cow_bytes(table: str | None) -> int | None:
    """The size of a snapshot's COW device, from its table (`<origin> <cow> <P|N> <chunk>`): what an
    Overflow or Invalid status, which has no numbers, is measured against."""
    words = table.split() if table else []
    if len(words) < 5 or ":" not in words[4]:
        return None
    try:
        with open(f"/sys/dev/block/{words[4]}/size") as f:
            return int(f.read()) * 512
    except (OSError, ValueError):
        return None


def read(root: str = "/", record: dict[str, object] | None = None) -> Reading:
    """The overlay's reading now (`record`: the boot's record, read once by a caller that reads often).
    Raises NotALiveSystem outside a pylive boot."""
    record = record if record is not None else boot_record(root)
    mode = str(record["mode"])
    kind, persistent = KINDS[mode]
    avail = mem_available(root)
    state = State.ACTIVE
    limits: tuple[Limit, ...] = ()
    raw: list[str] = []
    if kind == "dm-snapshot":
        line = dm_line("live-rw")
        raw.append(f"live-rw: {line}" if line else "live-rw: (no such device)")
        if mode == "dm_snapshot_persistent_ro" and (ro := dm_line("live-ro")):
            raw.append(f"live-ro: {ro}")
        if line and line.split()[2] == "snapshot":
            usage = parse_snapshot_status(line.split(None, 3)[3] if len(line.split()) > 3 else "")
            state = snapshot_state(usage)
            if usage.total == 0 and (size := cow_bytes(dm_line("live-rw", status=False))):
                usage = SnapshotUsage(size // 512, size // 512, state=usage.state)  # full, as the kernel said
            limits = snapshot_limits(usage, in_ram=not persistent, mem_available=avail)
        else:
            state = State.FAILED
    elif kind == "dm-thin":
        line, table = dm_line("live-overlay-pool"), dm_line("live-overlay-pool", status=False)
        raw.append(f"live-overlay-pool: {line}" if line else "live-overlay-pool: (no such device)")
        pool = parse_thin_pool(line.split(None, 3)[3], table.split(None, 3)[3]) if line and table else None
        if pool is None:
            state = State.FAILED
        else:
            backing = fs_space(os.path.join(root, "run/initramfs/thin-overlay"))
            free = min(x for x in (backing.free if backing else None, avail) if x is not None) \
                if backing or avail is not None else None
            limits = thin_limits(pool, backing_free=free)
            state = State.ACTIVE if pool.mode == "rw" else State.FAILED
    else:
        path = os.path.realpath(os.path.join(root, "run/overlayfs")) if kind == "overlayfs" else root
        what = "the upper layer's filesystem" if kind == "overlayfs" else "the root filesystem"
        space = fs_space(path)
        entry = mount_of(root, path)
        if space is None:
            state = State.FAILED
        else:
            limits = filesystem_limits(what, space, in_ram=entry is not None and entry.fstype in RAM_FS,
                                       mem_available=avail)
    devices = record.get("devices")
    medium = str(devices.get("livedev", "")) if isinstance(devices, dict) else ""
    return Reading(kind, persistent, state, tuple(limits), tuple(raw), medium=medium,
                   image=str(record.get("image_file", "")), mode=str(record.get("mode_text", mode)))

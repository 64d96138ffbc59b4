"""How full the live root's writable layer is, against its effective limit (pure).

The effective limit is whatever runs out first. A temporary device-mapper snapshot has a COW of
32 GiB by default, but it is a sparse file in RAM: RAM runs out long before the COW does, and a
COW that cannot be written invalidates the snapshot (every change lost). So each kind of overlay
is read against every limit that applies to it, and the tightest one is the headline.
"""

from __future__ import annotations

import enum

from pylive.dmtable import SnapshotUsage
from pylive.record import record

SCHEMA_VERSION = 1
MIB = 1 << 20
DEFAULT_LEVELS = (80, 90, 95)


class State(enum.Enum):
    ACTIVE = "active"
    OVERFLOW = "Overflow"  # a PO snapshot whose COW is full: writes fail, what was there stays readable
    INVALID = "Invalid"  # the snapshot was dropped: its changes are lost
    FAILED = "failed"  # a thin pool out of space or in failure mode, an overlay that cannot be read


@record
class Limit:
    """One thing that can run out: what it is, how much of it this overlay uses, how much it may use."""

    what: str
    used: int  # bytes
    limit: int  # bytes

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit > 0 else 100.0


@record
class Reading:
    kind: str  # "dm-snapshot" | "dm-thin" | "overlayfs" | "none"
    persistent: bool
    state: State
    limits: tuple[Limit, ...]
    dm_status: tuple[str, ...] = ()  # the raw `dmsetup status` lines, as the LiveOS documentation shows them
    medium: str = ""
    image: str = ""
    mode: str = ""

    @property
    def headline(self) -> Limit | None:
        """The limit closest to running out."""
        return max(self.limits, key=lambda x: x.percent, default=None)

    @property
    def percent(self) -> float:
        h = self.headline
        return h.percent if h else 0.0


def level_reached(reading: Reading, levels: tuple[int, ...] = DEFAULT_LEVELS) -> int | None:
    """The highest warning level at or under the reading's percentage (None: below all)."""
    reached = [lv for lv in levels if reading.percent >= lv]
    return max(reached) if reached else None


def exit_status(reading: Reading, levels: tuple[int, ...] = DEFAULT_LEVELS) -> int:
    """`pylive status`: 0 fine, 1 a warning level reached, 2 overflowed, invalid or failed."""
    if reading.state is not State.ACTIVE:
        return 2
    return 1 if level_reached(reading, levels) is not None else 0


def advice(reading: Reading, levels: tuple[int, ...] = DEFAULT_LEVELS) -> str:
    """What to do, at this reading's level."""
    if reading.state is State.INVALID:
        return ("the overlay was dropped and the root's changes are lost: copy off what is still readable "
                "and reboot")
    if reading.state in (State.OVERFLOW, State.FAILED):
        return ("writes to the root now fail: copy what you need to the live medium's file space "
                "(/run/initramfs/live, if it is writable) or another disk, then reboot"
                + ("; grow the persistent overlay offline with `pylive overlay resize`" if reading.persistent
                   else ""))
    if level_reached(reading, levels) is None:
        return "nothing to do"
    grow = ("grow the overlay offline (`pylive overlay resize`) or reset it" if reading.persistent
            else "reboot to start afresh, or boot with a persistent overlay")
    return f"save your work to /run/initramfs/live (if writable) or another disk, then {grow}"


# --- the kinds ------------------------------------------------------------------------------------


def snapshot_limits(usage: SnapshotUsage, *, in_ram: bool, mem_available: int | None) -> tuple[Limit, ...]:
    """A snapshot's COW (sectors from `dmsetup status`), and for a COW in RAM the memory that must back
    every chunk it has yet to write."""
    used, total = usage.allocated * 512, usage.total * 512
    limits = [Limit("the snapshot's COW", used, total)]
    if in_ram and mem_available is not None:
        limits.append(Limit("RAM behind the COW", used, used + mem_available))
    return tuple(limits)


def snapshot_state(usage: SnapshotUsage) -> State:
    if not usage.state:
        return State.ACTIVE
    if usage.state == "Overflow":
        return State.OVERFLOW
    return State.INVALID if usage.state == "Invalid" else State.FAILED


@record
class ThinPool:
    """`dmsetup status` of a thin-pool target, in blocks, and the block sizes from its table."""

    data_used: int
    data_total: int
    meta_used: int
    meta_total: int
    data_block: int  # bytes
    meta_block: int = 4096
    mode: str = "rw"  # rw | ro | out_of_data_space | Fail


def parse_thin_pool(status: str, table: str) -> ThinPool | None:
    """`<transaction> <meta used>/<meta total> <data used>/<data total> <held root> <mode> …` (thin-pool
    status) and `<meta dev> <data dev> <data block sectors> <low water mark> …` (its table)."""
    words, twords = status.split(), table.split()
    if len(words) < 3 or words[0] == "Fail" or len(twords) < 3 or not twords[2].isdigit():
        return None
    try:
        mu, mt = (int(x) for x in words[1].split("/"))
        du, dt = (int(x) for x in words[2].split("/"))
    except ValueError:
        return None
    mode = words[4] if len(words) > 4 and words[4] in ("rw", "ro", "out_of_data_space") else "rw"
    return ThinPool(du, dt, mu, mt, int(twords[2]) * 512, mode=mode)


def thin_limits(pool: ThinPool, *, backing_free: int | None) -> tuple[Limit, ...]:
    """Data and metadata of the pool; its sparse files live on a tmpfs, so the data can also not grow
    past what that tmpfs (and the RAM behind it) still holds."""
    data_used = pool.data_used * pool.data_block
    limits = [Limit("the thin pool's data", data_used, pool.data_total * pool.data_block),
              Limit("the thin pool's metadata", pool.meta_used * pool.meta_block, pool.meta_total * pool.meta_block)]
    if backing_free is not None:
        limits.append(Limit("RAM behind the thin pool", data_used, data_used + backing_free))
    return tuple(limits)


@record
class FsSpace:
    """statvfs of a filesystem, in bytes (free: what an unprivileged writer may still use)."""

    total: int
    free: int

    @property
    def used(self) -> int:
        return self.total - self.free


def filesystem_limits(what: str, space: FsSpace, *, in_ram: bool, mem_available: int | None) -> tuple[Limit, ...]:
    """An OverlayFS upper (or a root written in place) on a filesystem: its space, and for a tmpfs the RAM
    that must back what it has yet to hold (a tmpfs may be sized larger than the memory there is)."""
    limits = [Limit(what, space.used, space.total)]
    if in_ram and mem_available is not None:
        limits.append(Limit(f"RAM behind {what}", space.used, space.used + mem_available))
    return tuple(limits)


# --- output ---------------------------------------------------------------------------------------


def _mib(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n < 100 * 1024 * MIB else f"{n / MIB / 1024:.0f} GiB"


def bar(percent: float, width: int = 30) -> str:
    filled = min(width, max(0, round(percent * width / 100)))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def human(reading: Reading, levels: tuple[int, ...] = DEFAULT_LEVELS) -> str:
    """`pylive status`: readable at a glance."""
    kind = f"{'persistent' if reading.persistent else 'temporary'} {reading.kind}"
    lines = [f"overlay: {kind} ({reading.mode})" if reading.mode else f"overlay: {kind}",
             f"state:   {reading.state.value}"]
    for lim in sorted(reading.limits, key=lambda x: -x.percent):
        lines.append(f"  {bar(lim.percent)} {lim.percent:5.1f}%  {_mib(lim.used)} of {_mib(lim.limit)}: {lim.what}")
    h = reading.headline
    if h is not None:
        lines.append(f"full:    {h.percent:.1f}% of the effective limit ({h.what}); warnings at "
                     + ", ".join(f"{lv}%" for lv in levels))
    lines += [f"dm:      {line}" for line in reading.dm_status]
    if reading.medium or reading.image:
        lines.append(f"booted:  {reading.image} from {reading.medium}".rstrip())
    lines.append(f"advice:  {advice(reading, levels)}")
    return "\n".join(lines)


def as_json(reading: Reading, levels: tuple[int, ...] = DEFAULT_LEVELS) -> dict[str, object]:
    """`pylive status --json`, schema version 1 (README, "Watching the overlay")."""
    h = reading.headline
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": reading.kind,
        "persistent": reading.persistent,
        "mode": reading.mode,
        "state": reading.state.value,
        "percent": round(reading.percent, 2),
        "used_bytes": h.used if h else 0,
        "limit_bytes": h.limit if h else 0,
        "limited_by": h.what if h else "",
        "limits": [{"what": x.what, "used_bytes": x.used, "limit_bytes": x.limit, "percent": round(x.percent, 2)}
                   for x in reading.limits],
        "levels": list(levels),
        "level": level_reached(reading, levels),
        "exit_status": exit_status(reading, levels),
        "dm_status": list(reading.dm_status),
        "medium": reading.medium,
        "image": reading.image,
        "advice": advice(reading, levels),
    }

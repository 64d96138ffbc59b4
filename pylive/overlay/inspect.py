"""`pylive overlay inspect FILE`: what a device-mapper COW file holds, as the kernel would load it.

Exit status (as monitoring plugins count it): 0 usable (valid and under 90 % full, or never used),
1 warning (90 % full or more; or a size the kernel invalidates as it fills), 2 unusable for writing
(overflowed, full for pylive's boot, invalidated), 3 not readable as an overlay (not a COW file,
cut short, a damaged table, unreadable). With --json, one object (schema_version 1, README).
"""

from __future__ import annotations

import enum
import os

from pylive.dmtable import SnapshotUsage
from pylive.errors import LiveError, one_line
from pylive.overlay import cowformat as cow
from pylive.overlay.files import identity_record, mib, parse_identity, reader, size_of
from pylive.planner.overlay import IDENTITY_SUFFIX, SNAPSHOT_WARN_PERCENT, check_snapshot_usage
from pylive.probe import sniff_fstype
from pylive.record import mutable_record

SCHEMA_VERSION = 1
FRESH_BYTES = 4096  # what pylive's boot checks for zeros to take a file as a fresh COW (boot._probe_overlay)
EXIT_OK, EXIT_WARNING, EXIT_UNUSABLE, EXIT_UNREADABLE = 0, 1, 2, 3


class State(enum.Enum):
    NEVER_USED = "never-used"
    VALID = "valid"
    OVERFLOWED = "overflowed"
    INVALID = "invalid"
    UNREADABLE = "unreadable"


@mutable_record
class Examined:
    """A COW file as read: its state, chunk size, table (None when never used or unreadable)."""

    state: State
    size: int
    chunk_sectors: int = cow.PYLIVE_CHUNK_SECTORS
    table: cow.CowTable | None = None
    problems: tuple[str, ...] = ()

    @property
    def chunk_bytes(self) -> int:
        return self.chunk_sectors * cow.SECTOR

    @property
    def total_chunks(self) -> int:
        return self.size // self.chunk_bytes

    @property
    def used_chunks(self) -> int:
        """The kernel's next_free: header, metadata areas and data, as `dmsetup status` counts them."""
        return self.table.next_free if self.table is not None else 0

    @property
    def usage(self) -> SnapshotUsage:
        """What `dmsetup status` would show once loaded (persistent_usage), in sectors."""
        if self.table is None:
            return SnapshotUsage(0, self.size // cow.SECTOR, 0)
        return SnapshotUsage(self.used_chunks * self.chunk_sectors, self.size // cow.SECTOR,
                             (self.table.areas + 1) * self.chunk_sectors)


def examine(read: cow.Read, size: int) -> Examined:
    """Read a COW file as the kernel's persistent store loads it; CowError when it is not one."""
    head = read(0, FRESH_BYTES)
    header = cow.parse_header(head)
    if header.magic == 0:
        if any(head):
            raise cow.CowError("its first 4 KiB are neither a snapshot header nor zeros")
        return Examined(State.NEVER_USED, size)
    cow.check_header(header)
    try:
        table = cow.read_table(read, size, header.chunk_sectors)
    except cow.CowError:
        if header.valid:
            raise
        return Examined(State.INVALID, size, header.chunk_sectors)  # the kernel reads no table then anyway
    problems = tuple(cow.table_problems(table, size))
    if not header.valid:
        state = State.INVALID
    elif (table.next_free + 1) * header.chunk_sectors > size // cow.SECTOR:
        state = State.OVERFLOWED  # persistent_prepare_exception: -ENOSPC for the next new chunk
    else:
        state = State.VALID
    return Examined(state, size, header.chunk_sectors, table, problems)


@mutable_record
class Verdict:
    exit_status: int
    message: str
    notes: tuple[str, ...] = ()


def verdict(e: Examined) -> Verdict:
    """The one line that sums up a COW file, its exit status, and what else is worth saying."""
    notes = _size_notes(e)
    if e.problems:
        return Verdict(EXIT_UNREADABLE, f"damaged: {e.problems[0]}", (*e.problems[1:], *notes))
    if e.state is not State.VALID:
        return _not_valid(e, notes)
    used = _used(e)
    try:
        warning = check_snapshot_usage(e.usage, "it", writable=True)  # the boot's own thresholds
    except LiveError:
        return Verdict(EXIT_UNUSABLE, f"full ({used}): pylive's boot will not write to it (less than 1 MiB or "
                       "1 % free); `pylive overlay resize` gives it room", notes)
    if warning is not None:
        notes = (f"nearly full: from {SNAPSHOT_WARN_PERCENT} % pylive's boot warns", *notes)
    return Verdict(EXIT_WARNING if notes else EXIT_OK, f"valid, {used}", notes)


def _used(e: Examined) -> str:
    return f"{mib(e.used_chunks * e.chunk_bytes)} of {mib(e.size)} used, {e.usage.percent} %"


def _size_notes(e: Examined) -> tuple[str, ...]:
    if e.state in (State.NEVER_USED, State.VALID) and cow.fills_into_invalid(e.size, e.chunk_sectors):
        return (f"its size ({e.total_chunks} chunks) ends exactly where a metadata area would go: the kernel "
                "invalidates such a snapshot when it fills up, instead of an overflow that keeps the data; "
                "`pylive overlay resize` to any other size avoids it",)
    return ()


def _not_valid(e: Examined, notes: tuple[str, ...]) -> Verdict:
    if e.state is State.NEVER_USED:
        return Verdict(EXIT_WARNING if notes else EXIT_OK,
                       "never used: all zeros; the first boot that uses it writes its header", notes)
    if e.state is State.INVALID:
        held = f"its table still lists {len(e.table)} changed chunks" if e.table is not None else "its table is lost"
        return Verdict(EXIT_UNUSABLE, "invalidated by the kernel (an I/O error, or an overflow without the 'O' "
                       f"option): no boot can use it; {held}: `pylive overlay merge --force` applies them to a "
                       "copy of the base; then reset the overlay (rd.live.overlay.reset)", notes)
    return Verdict(EXIT_UNUSABLE, f"overflowed ({_used(e)}): no chunk is left for a new write, and writes made "
                   "after it filled up failed; `pylive overlay resize` gives it room again, or copy your files "
                   "off (boot with rd.live.overlay.readonly) and reset it", notes)


def not_a_cow_reason(path: str, head: bytes) -> str:
    """Why a file is not read as a COW file, naming what it is when pylive knows."""
    if os.path.isdir(path):
        return "it is a directory (an OverlayFS overlay?): inspect reads device-mapper COW files; df shows its use"
    fstype = sniff_fstype(head)
    if fstype is not None and fstype != "DM_snapshot_cow":
        return (f"it holds a {fstype} filesystem (the OverlayFS image form?), not a device-mapper COW: "
                "check it with its fsck")
    return ""


def examine_path(path: str) -> Examined:
    """examine() on a file or block device, opened read-only; CowError saying why it cannot be read."""
    if os.path.isdir(path):
        raise cow.CowError(not_a_cow_reason(path, b""))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise cow.CowError(f"{e.strerror}: give the overlay's COW file (<dir>/overlay-<LABEL>-<UUID>)") from None
    try:
        read = reader(fd)
        try:
            return examine(read, size_of(fd))
        except cow.CowError:
            reason = not_a_cow_reason(path, read(0, 65536 + 72))
            if reason:
                raise cow.CowError(reason) from None
            raise
        except OSError as e:
            raise cow.CowError(f"reading it failed: {e.strerror}") from None
    finally:
        os.close(fd)


@mutable_record
class Report:
    """Everything inspect says of a file."""

    file: str
    verdict: Verdict
    examined: Examined | None  # None: not readable as a COW file
    base: str | None  # the identity record beside it

    @property
    def state(self) -> State:
        return self.examined.state if self.examined is not None else State.UNREADABLE

    def to_json(self) -> dict[str, object]:
        """The --json object; README documents schema_version 1."""
        e, fields = self.examined, parse_identity(self.base or "")
        return {
            "schema_version": SCHEMA_VERSION, "file": self.file, "state": self.state.value,
            "exit_status": self.verdict.exit_status, "verdict": self.verdict.message, "notes": list(self.verdict.notes),
            "size_bytes": e.size if e else None,
            "chunk_bytes": e.chunk_bytes if e and e.state is not State.NEVER_USED else None,
            "chunks_total": e.total_chunks if e and e.state is not State.NEVER_USED else None,
            "chunks_used": e.used_chunks if e else None,
            "data_chunks": len(e.table) if e and e.table is not None else None,
            "metadata_areas": e.table.areas if e and e.table is not None else None,
            "percent_used": e.usage.percent if e else None,
            "base": None if self.base is None else {
                "record": self.base, "record_file": self.file.rstrip("/") + IDENTITY_SUFFIX,
                "size": int(fields["size"]) if fields.get("size", "").isdigit() else None,
                "sha256_64k": fields.get("sha256-64k"),
            },
        }


def inspect_file(path: str) -> Report:
    base = identity_record(path)
    try:
        e = examine_path(path)
    except cow.CowError as err:
        return Report(path, Verdict(EXIT_UNREADABLE, f"not readable as a device-mapper overlay: {err}"), None, base)
    return Report(path, verdict(e), e, base)


def render(r: Report) -> str:
    """The text form: the verdict line, then the figures (none for a file that is not a COW)."""
    lines = [f"{one_line(r.file)}: {r.verdict.message}"]
    e = r.examined
    if e is None:
        return lines[0] + "\n"
    if e.table is not None:
        lines.append(f"  chunks: {e.used_chunks} of {e.total_chunks} used, {e.chunk_bytes} bytes each "
                     f"({len(e.table)} changed chunks of the base, {e.table.areas} metadata "
                     f"area{'s' if e.table.areas != 1 else ''}, 1 header)")
    else:
        lines.append(f"  size: {mib(e.size)}")
    lines.append(f"  base image: {r.base} (recorded in {one_line(r.file)}{IDENTITY_SUFFIX})" if r.base
                 else "  base image: not recorded (pylive records it the first time it boots with the overlay)")
    lines += [f"  note: {n}" for n in r.verdict.notes]
    return "\n".join(lines) + "\n"


def run(path: str, as_json: bool) -> int:
    """`pylive overlay inspect`: the report on stdout; the exit status says how it stands."""
    r = inspect_file(path)
    if as_json:
        import json

        print(json.dumps(r.to_json(), indent=2, sort_keys=True))
    else:
        print(render(r), end="")
    return r.verdict.exit_status

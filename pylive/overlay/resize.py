"""`pylive overlay resize FILE --size SIZE`: give a device-mapper COW file more room (the "enlarge" step
of an overlay's recovery).

Appending room is all it takes. The kernel places metadata areas and data chunks by a fixed stride
from the start of the file (area i at chunk 1 + i * (E + 1)), reads the table until an area that is
not full, and looks at the file's size only when it hands out a new chunk
(persistent_prepare_exception: -ENOSPC when next_free + 1 chunks do not fit). So the table and
next_free stay what they were, and the next boot has the new room. The appended bytes are zeros
(posix_fallocate), as the metadata areas to come expect.

- An overflowed snapshot (pylive's and dracut's 'PO' tables keep it valid when it fills) takes writes
  again. What failed to be written while it was full is lost: the filesystem in it may need a check.
- An invalidated one (valid = 0) is not helped by room: the kernel reads none of its table. Its
  changes can still be applied to a copy of the base (`pylive overlay merge --force`).
- A used overlay only grows; one never used (all zeros) can take any size.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pylive.errors import LiveError, one_line
from pylive.overlay.cowformat import FIRST_DATA_CHUNK, CowError, exceptions_per_area, free_data_chunks, safe_size
from pylive.overlay.files import FAT_MAX_MIB, FAT_TYPES, MIB, free_bytes, fs_of, mib, parse_size, reader, refuse_in_use
from pylive.overlay.inspect import Examined, State, examine
from pylive.record import record


@record
class ResizePlan:
    old: int
    new: int
    notes: tuple[str, ...] = ()


def plan_resize(path: str, e: Examined, size: int, fstype: str, free: int) -> ResizePlan:
    """The new size, or a LiveError saying why not. Pure."""
    name = one_line(path)
    if e.problems:
        raise LiveError(f"{name} is damaged ({e.problems[0]})", "resizing cannot mend it; see `pylive overlay inspect`")
    if e.state is State.INVALID:
        raise LiveError(f"{name} was invalidated by the kernel: room would not make it usable (the kernel reads "
                        "none of its table)", "apply its changes to a copy of the base with `pylive overlay merge "
                        "--force`, then reset it (rd.live.overlay.reset)")
    new = safe_size(size, e.chunk_sectors)
    notes: tuple[str, ...] = ()
    if new != size:
        notes = (f"{mib(new)}, one chunk more than asked: at exactly {mib(size)} the kernel would invalidate the "
                 "snapshot when it fills, instead of an overflow that keeps the data",)
    if new == e.size:
        raise LiveError(f"{name} is {mib(e.size)} already", "give another --size")
    if new < e.size and e.state is not State.NEVER_USED:
        raise LiveError(f"{name} holds changes ({mib(e.used_chunks * e.chunk_bytes)} used): a used overlay only grows",
                        f"give a --size above {mib(e.size)}")
    if fstype in FAT_TYPES and new > FAT_MAX_MIB * MIB:
        raise LiveError(f"--size {mib(new)}: {fstype} holds no file larger than 4 GiB - 1 byte",
                        f"use at most --size {FAT_MAX_MIB}M")
    if new - e.size > free:
        raise LiveError(f"{name} cannot grow by {mib(new - e.size)}: its filesystem has {mib(free)} free",
                        "make room there, or give a smaller --size")
    if e.state is State.OVERFLOWED:
        notes += ("it had overflowed: the next boot can write to it again; writes that failed while it was full "
                  "are lost, so the filesystem in it may need a check (`pylive overlay merge` reports e2fsck's "
                  "verdict on a merged copy)",)
    return ResizePlan(e.size, new, notes)


def run(path: str, size_text: str, root: Path = Path("/")) -> int:
    """`pylive overlay resize`: grow the file in place, after every check."""
    size = parse_size(size_text)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        raise LiveError(f"{one_line(path)}: {err.strerror}", "give the overlay's COW file, writable") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LiveError(f"{one_line(path)} is not a regular file", "only a COW file can be resized")
        refuse_in_use(root, path)
        try:
            e = examine(reader(fd), os.fstat(fd).st_size)
        except CowError as bad:
            raise LiveError(f"{one_line(path)} is not readable as a device-mapper overlay: {bad}",
                            "give the overlay's COW file") from None
        mount = fs_of(root, path)
        plan = plan_resize(path, e, size, mount.fstype if mount else "", free_bytes(os.path.dirname(path) or "."))
        if plan.new > plan.old:
            os.posix_fallocate(fd, plan.old, plan.new - plan.old)
        else:
            os.ftruncate(fd, plan.new)
        os.fsync(fd)
    finally:
        os.close(fd)
    verb = "grew" if plan.new > plan.old else "shrank"
    room = free_data_chunks(e.used_chunks or FIRST_DATA_CHUNK, plan.new // e.chunk_bytes,
                            exceptions_per_area(e.chunk_sectors)) * e.chunk_bytes
    print(f"{verb} {path} from {mib(plan.old)} to {mib(plan.new)}: room for {mib(room)} more changes")
    for note in plan.notes:
        print(f"note: {note}")
    return 0

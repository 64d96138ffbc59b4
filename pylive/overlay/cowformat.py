"""The device-mapper persistent snapshot's on-disk format (the COW file of a persistent overlay), read
and written as the kernel does it (drivers/md/dm-snap-persistent.c). Pure: bytes in, bytes out.

Layout, in chunks of `chunk_size` sectors (pylive and dracut use 8: 4 KiB):
- chunk 0: the header, four little-endian u32: magic 0x70416e53 ("SnAp"), valid, version (1),
  chunk_size (in sectors). A magic of 0 means a new snapshot: the kernel writes the header and
  zeroes area 0 on first use.
- metadata area i at chunk 1 + i * (E + 1), E = chunk bytes / 16 exceptions per area, each
  {old_chunk u64, new_chunk u64}: origin chunk old_chunk is kept in COW chunk new_chunk. The E data
  chunks an area describes follow it, allocated in order, skipping the next area's chunk.
- the table ends at the first exception whose new_chunk is 0 (chunk 0 is the header, so no data is
  ever there). An area with all E slots used is full: the next one is read. The kernel zeroes the
  next area on disk before it commits the exception that fills the current one.
- valid = 0: the kernel invalidated the snapshot (an I/O error, or an overflow without the 'O'
  option); it then reads no exception at all ("Snapshot is marked invalid").
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable

from pylive.record import record

SNAP_MAGIC = 0x70416E53
DISK_VERSION = 1
SECTOR = 512
HEADER = struct.Struct("<IIII")  # magic, valid, version, chunk_size (sectors)
EXCEPTION = struct.Struct("<QQ")  # old_chunk, new_chunk
PYLIVE_CHUNK_SECTORS = 8  # the chunk size of pylive's and dracut's tables ("PO 8")
MAX_CHUNK_SECTORS = 0x7FFFFFFF >> 9  # dm_exception_store_set_chunk_size: INT_MAX >> SECTOR_SHIFT
FIRST_DATA_CHUNK = 2  # persistent_ctr: next_free = header + the first area

Read = Callable[[int, int], bytes]  # (offset, size) → bytes; short at the end of the file


class CowError(ValueError):
    """The bytes are not a persistent snapshot the kernel could load; str() says why, in one line."""


@record
class Header:
    magic: int
    valid: int
    version: int
    chunk_sectors: int

    def pack(self) -> bytes:
        return HEADER.pack(self.magic, self.valid, self.version, self.chunk_sectors)


def exceptions_per_area(chunk_sectors: int) -> int:
    return chunk_sectors * SECTOR // EXCEPTION.size


def area_chunk(area: int, per_area: int) -> int:
    """The chunk of metadata area `area` (area_location)."""
    return 1 + (per_area + 1) * area


def is_metadata_chunk(chunk: int, per_area: int) -> bool:
    return chunk >= 1 and (chunk - 1) % (per_area + 1) == 0


def skip_metadata(next_free: int, per_area: int) -> int:
    """skip_metadata(): a chunk that is the next area's place is not handed out for data."""
    return next_free + 1 if next_free % (per_area + 1) == 1 else next_free


def free_data_chunks(next_free: int, total: int, per_area: int) -> int:
    """Chunks still to be handed out for data from next_free on, in a file of `total` chunks: all but the
    metadata areas among them."""
    stride = per_area + 1

    def areas_below(n: int) -> int:  # metadata chunks c < n: c = 1, 1 + stride, …
        return (n - 1 + stride - 1) // stride if n > 1 else 0

    return max(0, (total - next_free) - (areas_below(total) - areas_below(next_free)))


def parse_header(head: bytes) -> Header:
    if len(head) < HEADER.size:
        raise CowError(f"it is {len(head)} bytes long, too short for a snapshot header")
    return Header(*HEADER.unpack_from(head))


def check_header(h: Header) -> None:
    """The checks read_header() and persistent_read_metadata() make before they read a table."""
    if h.magic != SNAP_MAGIC:
        raise CowError(f"it has no device-mapper snapshot header (magic {h.magic:#010x}, not 'SnAp')")
    if h.version != DISK_VERSION:
        raise CowError(f"its snapshot format version is {h.version}; the kernel reads version {DISK_VERSION} only")
    c = h.chunk_sectors
    if c == 0 or c & (c - 1) or c > MAX_CHUNK_SECTORS:
        raise CowError(f"its header's chunk size of {c} sectors is not one the kernel accepts (a power of 2)")


class CowTable:
    """A snapshot's exception table as the kernel loads it (read_exceptions): the exceptions in table
    order (two arrays of u64), how many metadata areas were read, and next_free."""

    __slots__ = ("areas", "chunk_sectors", "new", "next_free", "old")

    def __init__(self, chunk_sectors: int, old: array[int], new: array[int], areas: int) -> None:
        self.chunk_sectors = chunk_sectors
        self.old = old
        self.new = new
        self.areas = areas
        per_area = exceptions_per_area(chunk_sectors)
        # insert_exceptions: next_free = one past the highest new_chunk, starting at FIRST_DATA_CHUNK
        self.next_free = skip_metadata(max(FIRST_DATA_CHUNK, max(new, default=0) + 1), per_area)

    @property
    def chunk_bytes(self) -> int:
        return self.chunk_sectors * SECTOR

    @property
    def per_area(self) -> int:
        return exceptions_per_area(self.chunk_sectors)

    def __len__(self) -> int:
        return len(self.new)


def _u64s(raw: bytes) -> array[int]:
    a = array("Q", raw)
    if sys.byteorder == "big":
        a.byteswap()
    return a


def read_table(read: Read, size: int, chunk_sectors: int) -> CowTable:
    """The exceptions, area after area, until an area that is not full; CowError if an area lies past
    the end (the kernel's load would fail with an I/O error there)."""
    per_area = exceptions_per_area(chunk_sectors)
    chunk_bytes = chunk_sectors * SECTOR
    old, new = array("Q"), array("Q")
    area = 0
    while True:
        chunk = area_chunk(area, per_area)
        raw = read(chunk * chunk_bytes, chunk_bytes) if (chunk + 1) * chunk_bytes <= size else b""
        if len(raw) < chunk_bytes:
            raise CowError(f"it ends at {size} bytes, before its metadata area {area} (chunk {chunk}): "
                           "it was cut short")
        values = _u64s(raw)
        news = values[1::2]
        try:
            used = news.index(0)
        except ValueError:
            used = per_area
        old.extend(values[0 : 2 * used : 2])
        new.extend(news[:used])
        area += 1
        if used < per_area:
            return CowTable(chunk_sectors, old, new, area)


def table_problems(table: CowTable, size: int) -> list[str]:
    """What in a table the kernel would trip over later (it checks none of it on load): data past the end
    of the file, data in a metadata chunk, two exceptions sharing a chunk."""
    total = size // table.chunk_bytes
    problems = []
    if table.new and max(table.new) >= total:
        i = next(i for i, n in enumerate(table.new) if n >= total)
        problems.append(f"exception {i} keeps its data in chunk {table.new[i]}, past the end of the file "
                        f"({total} chunks): it was cut short")
    per_area = table.per_area
    bad = next((i for i, n in enumerate(table.new) if is_metadata_chunk(n, per_area)), None)
    if bad is not None:
        problems.append(f"exception {bad} keeps its data in chunk {table.new[bad]}, a metadata chunk")
    if len(set(table.new)) != len(table.new):
        problems.append("two exceptions keep their data in the same chunk")
    if len(set(table.old)) != len(table.old):
        problems.append("two exceptions stand for the same chunk of the base image")
    return problems


def fills_into_invalid(size: int, chunk_sectors: int) -> bool:
    """True when this size makes the kernel invalidate the snapshot as it fills, instead of an overflow.

    The exception that fills area k keeps its data in the chunk just before area k + 1, and
    persistent_commit_exception() zeroes area k + 1 before it commits it. When the file ends exactly
    at area k + 1, the data chunk still fits (persistent_prepare_exception checks data only) but the
    zeroing fails: the snapshot is marked invalid instead of overflowing. One chunk more avoids it.
    """
    chunks = size // SECTOR // chunk_sectors
    stride = exceptions_per_area(chunk_sectors) + 1
    return chunks > stride and chunks % stride == 1


def safe_size(size: int, chunk_sectors: int = PYLIVE_CHUNK_SECTORS) -> int:
    """`size`, or one chunk more when that size would be invalidated as it fills (fills_into_invalid)."""
    return size + chunk_sectors * SECTOR if fills_into_invalid(size, chunk_sectors) else size


# --- writing, as the kernel does -------------------------------------------------------------------


class CowFull(Exception):
    """persistent_prepare_exception's -ENOSPC: no chunk left for a new exception (the overflow)."""


class CowWriter:
    """Builds a persistent snapshot the way the kernel fills one, through `write(offset, data)` over a
    file of `size` bytes: the header on first use, data chunks handed out in order around the metadata
    areas, each area written after each exception, the next area zeroed when one fills up. A write
    past `size` fails as the block layer would fail it, and invalidates the snapshot as the kernel does.
    """

    def __init__(self, write: Callable[[int, bytes], None], size: int,
                 chunk_sectors: int = PYLIVE_CHUNK_SECTORS) -> None:
        self._write = write
        self.size = size
        self.chunk_sectors = chunk_sectors
        self.chunk_bytes = chunk_sectors * SECTOR
        self.per_area = exceptions_per_area(chunk_sectors)
        self.valid = True
        self.next_free = FIRST_DATA_CHUNK
        self.area = 0
        self._slots = bytearray(self.chunk_bytes)
        self._used = 0
        self._put(0, Header(SNAP_MAGIC, 1, DISK_VERSION, chunk_sectors).pack().ljust(self.chunk_bytes, b"\0"))
        self._put(area_chunk(0, self.per_area) * self.chunk_bytes, bytes(self.chunk_bytes))

    @classmethod
    def resume(cls, write: Callable[[int, bytes], None], size: int, table: CowTable) -> CowWriter:
        """Go on filling a snapshot from its table, as the kernel does after loading it (read_exceptions
        leaves current_area at the last area read, current_committed at its first free slot)."""
        w = cls.__new__(cls)
        w._write, w.size, w.chunk_sectors = write, size, table.chunk_sectors
        w.chunk_bytes, w.per_area, w.valid = table.chunk_bytes, table.per_area, True
        w.next_free, w.area = table.next_free, table.areas - 1
        w._used = len(table) - w.area * w.per_area
        w._slots = bytearray(w.chunk_bytes)
        for i in range(w._used):
            j = w.area * w.per_area + i
            EXCEPTION.pack_into(w._slots, i * EXCEPTION.size, table.old[j], table.new[j])
        return w

    def _put(self, offset: int, data: bytes) -> bool:
        if offset + len(data) > self.size:
            return False
        self._write(offset, data)
        return True

    def add(self, old_chunk: int, data: bytes) -> int:
        """Keep `data` for origin chunk `old_chunk`; the COW chunk it went to. CowFull when there is none
        left; an invalidated snapshot takes nothing more (as the kernel errors every bio)."""
        if not self.valid:
            raise CowFull("the snapshot is invalid")
        if (self.next_free + 1) * self.chunk_sectors > self.size // SECTOR:
            raise CowFull(f"no free chunk left in {self.size} bytes")
        new = self.next_free
        self.next_free = skip_metadata(new + 1, self.per_area)
        self._put(new * self.chunk_bytes, data.ljust(self.chunk_bytes, b"\0"))
        EXCEPTION.pack_into(self._slots, self._used * EXCEPTION.size, old_chunk, new)
        self._used += 1
        full = self._used == self.per_area
        if full and not self._put(area_chunk(self.area + 1, self.per_area) * self.chunk_bytes,
                                  bytes(self.chunk_bytes)):
            self.invalidate()  # zero_disk_area() failed: ps->valid = 0, the area is not written
            return new
        self._put(area_chunk(self.area, self.per_area) * self.chunk_bytes, bytes(self._slots))
        if full:
            self.area += 1
            self._used = 0
            self._slots = bytearray(self.chunk_bytes)
        return new

    def invalidate(self) -> None:
        """drop_snapshot(): the header is written again with valid = 0."""
        self.valid = False
        self._put(0, Header(SNAP_MAGIC, 0, DISK_VERSION, self.chunk_sectors).pack().ljust(self.chunk_bytes, b"\0"))

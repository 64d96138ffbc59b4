"""The MD5 that implantisomd5 (isomd5sum) writes into an ISO 9660 image, and its check (pure).

Format, as isomd5sum 1.2 writes and reads it:
- the 512-byte application-use area of the primary volume descriptor (ECMA-119 8.4.32, byte 883 of
  the descriptor) holds text: `ISO MD5SUM = <32 hex>;SKIPSECTORS = 15;RHLISOSTATUS=0;FRAGMENT SUMS
  = <60 chars>;FRAGMENT COUNT = 20;THIS IS NOT THE SAME AS RUNNING MD5SUM ON THIS ISO!!`;
- the MD5 covers the image from byte 0 to the volume size (PVD byte 84, big-endian sectors) less
  SKIPSECTORS sectors at the end (burned CDs misread their last sectors), with the application-use
  area read as 512 spaces;
- the fragment sums split the checked size into COUNT + 1 parts: at each of COUNT checkpoints the
  MD5 so far is finalised and the first hex digit of each of its first 60 / COUNT bytes is kept, so
  a damaged medium fails early. The checkpoints sit on isomd5sum's 32 KiB read grid: fragment k is
  checked at the end of the first 32 KiB block whose start offset o has o // (total // (COUNT + 1))
  == k. This module reads in larger blocks and cuts the MD5 input at those same places.

The caller opens the file or device; nothing here touches the system.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator

from pylive.record import record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time

SECTOR = 2048
SYSTEM_AREA = 16 * SECTOR  # the volume descriptors start at sector 16
APPDATA_OFFSET = 883  # in the primary volume descriptor
APPDATA_SIZE = 512
GRID = 16 * SECTOR  # isomd5sum's read size: where the fragment checkpoints fall
FRAGMENT_SUM_SIZE = 60
READ_BLOCK = 1 << 20

_MD5 = re.compile(rb"ISO MD5SUM = (.{32})", re.DOTALL)
_SKIP = re.compile(rb"SKIPSECTORS = \s*([+-]?[0-9]+);")
_FRAG_SUMS = re.compile(rb"FRAGMENT SUMS = (.{60})", re.DOTALL)
_FRAG_COUNT = re.compile(rb"FRAGMENT COUNT = \s*([+-]?[0-9]+);")


if TYPE_CHECKING:
    from typing import Protocol

    class Readable(Protocol):
        def readinto(self, buffer: memoryview, /) -> int | None: ...
        def seek(self, offset: int, whence: int = 0, /) -> int: ...


@record
class Implanted:
    """What implantisomd5 wrote, and where the primary volume descriptor is."""

    md5: str  # as written: 32 lower-case hex digits
    skip_sectors: int
    fragment_sums: str  # "" without fragment sums
    fragment_count: int
    pvd_offset: int
    volume_size: int  # bytes, from the PVD

    @property
    def checked_size(self) -> int:
        return self.volume_size - self.skip_sectors * SECTOR


class Status(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NO_CHECKSUM = "no implanted MD5"
    NOT_ISO = "not an ISO 9660 image"
    ABORTED = "skipped"


@record
class Verdict:
    status: Status
    reason: str = ""  # why it failed, in words
    done: int = 0  # bytes read and summed
    total: int = 0  # bytes the check covers
    implanted: Implanted | None = None


def find_pvd(read_sector: Callable[[int], bytes], limit: int = 32) -> tuple[int, bytes] | None:
    """The offset and bytes of the primary volume descriptor: the first descriptor of type 1 from
    sector 16 on (isomd5sum gets the offset wrong when the PVD is not the first descriptor; it always
    is in images made by xorriso, mkisofs and genisoimage)."""
    for i in range(limit):
        offset = SYSTEM_AREA + i * SECTOR
        sector = read_sector(offset)
        if len(sector) < SECTOR or sector[1:6] != b"CD001" or sector[0] == 255:
            return None
        if sector[0] == 1:
            return offset, sector
    return None


def parse_pvd(offset: int, pvd: bytes) -> Implanted | None:
    """The implanted sums in a primary volume descriptor, or None when there are none."""
    area = pvd[APPDATA_OFFSET : APPDATA_OFFSET + APPDATA_SIZE - 1]  # isomd5sum ends the text at byte 511
    md5, skip = _MD5.search(area), _SKIP.search(area)
    if md5 is None or skip is None:
        return None
    sums = _FRAG_SUMS.search(area)
    count = _FRAG_COUNT.search(area)
    fragment_count = int(count[1]) if count else 20  # isomd5sum's default when the count is missing
    return Implanted(
        md5=md5[1].decode("latin-1"),
        skip_sectors=int(skip[1]),
        fragment_sums=sums[1].decode("latin-1") if sums else "",
        fragment_count=fragment_count if sums and fragment_count > 0 else 0,
        pvd_offset=offset,
        volume_size=int.from_bytes(pvd[84:88], "big") * SECTOR,
    )


def read_implanted(f: Readable) -> Implanted | Status:
    """The implanted sums of an open image or device; Status.NOT_ISO or NO_CHECKSUM when there are none."""

    def read_sector(offset: int) -> bytes:
        f.seek(offset)
        buf = bytearray(SECTOR)
        n = _fill(f, memoryview(buf))
        return bytes(buf[:n])

    found = find_pvd(read_sector)
    if found is None:
        return Status.NOT_ISO
    return parse_pvd(*found) or Status.NO_CHECKSUM


def checkpoints(total: int, count: int) -> list[tuple[int, int]]:
    """(end offset, fragment number) of each fragment check, as isomd5sum places them."""
    fragment_size = total // (count + 1) if count else 0
    if fragment_size <= 0:  # nothing to check, or SKIPSECTORS beyond the volume
        return []
    out = []
    for k in range(1, count + 1):
        start = -(-k * fragment_size // GRID) * GRID  # the first grid block starting in fragment k
        if start < total and start // fragment_size == k:
            out.append((min(start + GRID, total), k))
    return out


def fragment_digits(digest: bytes, n: int) -> str:
    """isomd5sum's fragment sum: the first digit of printf("%x") of each of the first n bytes."""
    return "".join(format(b, "x")[0] for b in digest[:n])


def check(blocks: Iterable[memoryview], implanted: Implanted,
          progress: Callable[[int], bool] | None = None) -> Verdict:
    """Sum the image once and compare its MD5 (and fragment sums on the way) with the implanted ones.

    `blocks`: the image from byte 0 in writable blocks of any size (it may go on past the checked
    size; a read error raised by it is a failure). `progress(bytes_done)` is called after each block;
    when it returns True the check stops (ABORTED).
    """
    total = implanted.checked_size
    per_fragment = FRAGMENT_SUM_SIZE // implanted.fragment_count if implanted.fragment_count else 0
    # More than 60 fragments leave no digit to compare (isomd5sum compares none): no checkpoints, not
    # billions of them (FRAGMENT COUNT is text on the medium).
    points = checkpoints(total, implanted.fragment_count) if per_fragment else []
    area_lo = implanted.pvd_offset + APPDATA_OFFSET
    area_hi = area_lo + APPDATA_SIZE
    h = hashlib.md5(usedforsecurity=False)
    done = 0
    next_point = 0

    def verdict(status: Status, reason: str = "") -> Verdict:
        return Verdict(status, reason, done, total, implanted)

    it = iter(blocks)
    while done < total:
        try:
            view = next(it, None)
        except OSError as e:
            # the errno's own words: the reader's strerror may carry its offset too, which is `done` here
            what = os.strerror(e.errno) if e.errno else e.strerror or str(e)
            return verdict(Status.FAILED, f"read error at {done >> 20} MiB: {what}")
        if view is None:
            return verdict(Status.FAILED, f"it ends at {done >> 20} MiB, but its ISO 9660 volume is "
                                          f"{implanted.volume_size >> 20} MiB (an incomplete copy)")
        n = min(len(view), total - done)
        end = done + n
        lo, hi = max(area_lo, done), min(area_hi, end)
        if lo < hi:
            view[lo - done : hi - done] = b" " * (hi - lo)
        fed = done
        while next_point < len(points) and points[next_point][0] <= end:
            cut, k = points[next_point]
            h.update(view[fed - done : cut - done])
            fed = cut
            want = implanted.fragment_sums[(k - 1) * per_fragment : k * per_fragment]
            if fragment_digits(h.copy().digest(), min(per_fragment, 16)) != want[:16]:
                done = cut
                return verdict(Status.FAILED, f"MD5 mismatch in fragment {k} of {implanted.fragment_count}, "
                                              f"within the first {-(-cut * 100 // total)}%")
            next_point += 1
        h.update(view[fed - done : n])
        done = end
        if progress is not None and progress(done):
            return verdict(Status.ABORTED)
    if h.hexdigest() != implanted.md5:
        return verdict(Status.FAILED, "MD5 mismatch")
    return verdict(Status.PASSED)


def file_blocks(f: Readable, block: int = READ_BLOCK) -> Iterator[memoryview]:
    """A file from byte 0 in blocks, read in this thread (linux.copy.read_ahead reads ahead in another)."""
    f.seek(0)
    buf = memoryview(bytearray(block))
    while n := _fill(f, buf):
        yield buf[:n]


def _fill(f: Readable, view: memoryview) -> int:
    """Read until `view` is full or the end of the file; the number of bytes read."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got

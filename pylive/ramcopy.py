"""What a RAM copy is checked against (pure): block sums taken while reading, and room in /run.

A copy is summed twice: once over the bytes as they are read from the medium (before they are
written), and once by reading the copy back. The sum is CRC-32 per block (zlib): it finds a short,
torn or changed copy, which is what can go wrong between a medium and a tmpfs. Measured in the
binary's own Python (no OpenSSL), zlib's CRC-32 runs at about 2.5 GiB/s, the built-in MD5 at 0.5,
BLAKE2b at 0.4 and SHA-256 at 0.15: any of those would make the copy slower than the medium.
"""

from __future__ import annotations

from pylive.record import record

MIB = 1 << 20


@record
class BlockSums:
    """CRC-32 of each `block`-sized piece of a file, in order, and the byte count."""

    size: int
    block: int
    crcs: tuple[int, ...]


@record
class Room:
    """The filesystem that will hold a RAM copy (statvfs of its directory)."""

    mountpoint: str
    fstype: str
    size: int  # bytes
    avail: int  # bytes

    @property
    def size_mib(self) -> int:
        return self.size // MIB

    @property
    def avail_mib(self) -> int:
        return self.avail // MIB


def difference(expected_size: int, source: BlockSums, copy: BlockSums) -> str | None:
    """How a copy differs from what was read from its source, in words; None when it does not."""
    if source.size != expected_size:
        return f"{source.size} bytes were read, the file has {expected_size}"
    if copy.size != source.size:
        return f"the copy has {copy.size} bytes, {source.size} were read"
    if copy.block != source.block or len(copy.crcs) != len(source.crcs):
        return "the copy was summed in other blocks than the source"
    for i, (a, b) in enumerate(zip(source.crcs, copy.crcs, strict=True)):
        if a != b:
            return f"the block at {i * source.block // MIB} MiB differs"
    return None

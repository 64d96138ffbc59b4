"""The persistent snapshot's on-disk format: files packed by hand here with struct (independently of
pylive's writer), the writer checked byte for byte against them, the kernel's end-of-table and
next-free rules, and inputs cut short or scrambled at random (they must never crash the reader)."""

from __future__ import annotations

import random
import struct

import pytest

from pylive.overlay import cowformat as cow
from pylive.overlay.inspect import EXIT_OK, EXIT_UNREADABLE, EXIT_UNUSABLE, EXIT_WARNING, State, examine, verdict

CHUNK = 4096  # 8 sectors, as pylive's and dracut's tables ask
PER_AREA = CHUNK // 16  # 256 exceptions per metadata area; an area and its data: 257 chunks


def hand_cow(exceptions: list[tuple[int, int]], chunks: int, valid: int = 1, chunk: int = CHUNK) -> bytearray:
    """A COW file packed by hand: header, areas at 1 + i*(E+1) with the exceptions in order, a pattern in
    each data chunk (its old chunk number), nothing else."""
    per_area = chunk // 16
    buf = bytearray(chunks * chunk)
    struct.pack_into("<4I", buf, 0, 0x70416E53, valid, 1, chunk // 512)
    for i, (old, new) in enumerate(exceptions):
        area, slot = divmod(i, per_area)
        struct.pack_into("<2Q", buf, (1 + area * (per_area + 1)) * chunk + slot * 16, old, new)
        buf[new * chunk : (new + 1) * chunk] = pattern(old, chunk)
    return buf


def pattern(old: int, chunk: int = CHUNK) -> bytes:
    return struct.pack("<Q", old + 1) * (chunk // 8)


def data_chunks(n: int, per_area: int = PER_AREA) -> list[int]:
    """The first n chunks the kernel hands out for data: from 2 on, around the metadata areas."""
    out, c = [], 2
    while len(out) < n:
        if (c - 1) % (per_area + 1):
            out.append(c)
        c += 1
    return out


def read_of(buf: bytes | bytearray) -> cow.Read:
    return lambda offset, size: bytes(buf[offset : offset + size])


def written(size: int, olds: list[int], chunk_sectors: int = 8) -> tuple[bytearray, cow.CowWriter]:
    buf = bytearray(size)

    def write(offset: int, data: bytes) -> None:
        assert offset + len(data) <= size
        buf[offset : offset + len(data)] = data

    w = cow.CowWriter(write, size, chunk_sectors)
    for old in olds:
        w.add(old, pattern(old, chunk_sectors * 512))
    return buf, w


def test_a_hand_packed_table_reads_back_in_order() -> None:
    ex = [(0, 2), (7, 3), (5, 4)]
    t = cow.read_table(read_of(hand_cow(ex, 64)), 64 * CHUNK, 8)
    assert list(zip(t.old, t.new, strict=True)) == ex
    assert (t.areas, t.next_free, len(t)) == (1, 5, 3)


def test_a_full_area_goes_on_to_the_next_and_next_free_skips_its_chunk() -> None:
    ex = list(zip(range(1000, 1000 + PER_AREA), data_chunks(PER_AREA), strict=True))
    t = cow.read_table(read_of(hand_cow(ex, 600)), 600 * CHUNK, 8)
    assert (len(t), t.areas) == (PER_AREA, 2)  # area 0 full, so area 1 (all zeros) was read too
    assert t.new[-1] == 257 and t.next_free == 259  # 258 is area 1: skip_metadata() steps over it
    more = ex + list(zip(range(5000, 5002), data_chunks(PER_AREA + 2)[PER_AREA:], strict=True))
    t = cow.read_table(read_of(hand_cow(more, 600)), 600 * CHUNK, 8)
    assert list(t.new[-2:]) == [259, 260] and (t.areas, t.next_free) == (2, 261)


def test_the_table_ends_at_the_first_new_chunk_of_zero_not_at_an_old_chunk_of_zero() -> None:
    buf = hand_cow([(0, 2), (0x1234, 3)], 64)
    struct.pack_into("<2Q", buf, CHUNK + 3 * 16, 99, 9)  # after a terminator: never read
    struct.pack_into("<2Q", buf, CHUNK + 2 * 16, 42, 0)  # the terminator: new_chunk 0, whatever old_chunk is
    t = cow.read_table(read_of(buf), len(buf), 8)
    assert list(t.old) == [0, 0x1234] and list(t.new) == [2, 3]


@pytest.mark.parametrize("chunk_sectors", [8, 16, 1])
def test_the_writer_lays_out_what_the_hand_packing_does(chunk_sectors: int) -> None:
    chunk = chunk_sectors * 512
    olds = [random.Random(chunk_sectors).randrange(10**6) for _ in range(700)]
    olds = list(dict.fromkeys(olds))
    chunks = 1 + 700 + 700 // (chunk // 16) + 8
    buf, w = written(chunks * chunk, olds, chunk_sectors)
    want = hand_cow(list(zip(olds, data_chunks(len(olds), chunk // 16), strict=True)), chunks, chunk=chunk)
    assert buf == want
    t = cow.read_table(read_of(buf), len(buf), chunk_sectors)
    assert list(t.old) == olds and t.next_free == w.next_free


@pytest.mark.parametrize(("header", "reason"), [
    ((0x534E4170, 1, 1, 8), "no device-mapper snapshot header"),
    ((0x70416E53, 1, 2, 8), "format version is 2"),
    ((0x70416E53, 1, 1, 0), "chunk size of 0 sectors"),
    ((0x70416E53, 1, 1, 12), "chunk size of 12 sectors"),
    ((0x70416E53, 1, 1, 1 << 22), "chunk size of 4194304 sectors"),
])
def test_headers_the_kernel_refuses(header: tuple[int, int, int, int], reason: str) -> None:
    buf = bytearray(16 * CHUNK)
    struct.pack_into("<4I", buf, 0, *header)
    with pytest.raises(cow.CowError, match=reason):
        examine(read_of(buf), len(buf))


def test_never_used_is_zeros_and_a_zero_magic_with_bytes_after_it_is_not() -> None:
    assert examine(read_of(bytes(64 * CHUNK)), 64 * CHUNK).state is State.NEVER_USED
    junk = bytearray(64 * CHUNK)
    junk[100] = 1
    with pytest.raises(cow.CowError, match="neither a snapshot header nor zeros"):
        examine(read_of(junk), len(junk))


def test_a_file_cut_before_an_area_or_a_data_chunk() -> None:
    ex = list(zip(range(PER_AREA + 3), data_chunks(PER_AREA + 3), strict=True))
    buf = hand_cow(ex, 300)
    with pytest.raises(cow.CowError, match="before its metadata area 1 .chunk 258.: it was cut short"):
        examine(read_of(buf[: 258 * CHUNK + 100]), 258 * CHUNK + 100)
    e = examine(read_of(buf[: 260 * CHUNK]), 260 * CHUNK)  # area 1 is there, its last data chunk is not
    assert e.problems == ("exception 257 keeps its data in chunk 260, past the end of the file (260 chunks): "
                          "it was cut short",)
    assert verdict(e).exit_status == EXIT_UNREADABLE


def test_tables_the_kernel_would_trip_over_later() -> None:
    e = examine(read_of(hand_cow([(1, 2), (2, 258), (3, 2), (1, 5)], 600)), 600 * CHUNK)
    assert e.problems == ("exception 1 keeps its data in chunk 258, a metadata chunk",
                          "two exceptions keep their data in the same chunk",
                          "two exceptions stand for the same chunk of the base image")


def test_cut_short_or_scrambled_at_random_never_crashes() -> None:
    rng = random.Random(20240611)
    good, _ = written(700 * CHUNK, [rng.randrange(1 << 20) for _ in range(600)])
    seen = set()
    for _ in range(400):
        buf = bytearray(good[: rng.randrange(len(good) + 1)])
        for _ in range(rng.choice((0, 1, 8))):
            if buf:
                buf[rng.randrange(min(len(buf), 4 * CHUNK))] = rng.randrange(256)  # the header and first areas
        try:
            e = examine(read_of(buf), len(buf))
        except cow.CowError as err:
            assert "\n" not in str(err)
            seen.add("error")
            continue
        seen.add(e.state.value)
        verdict(e)
    assert {"error", "valid"} <= seen


def test_usage_is_what_dmsetup_status_shows() -> None:
    _, w = written(64 << 20, list(range(300)))
    buf, _ = written(64 << 20, list(range(300)))
    e = examine(read_of(buf), len(buf))
    assert e.used_chunks == w.next_free == 2 + 300 + 1  # header, area 0, 300 data chunks, area 1 skipped
    u = e.usage
    assert (u.allocated, u.total, u.metadata) == (303 * 8, (64 << 20) // 512, 3 * 8)  # header + 2 areas
    assert verdict(e).exit_status == EXIT_OK
    assert verdict(e).message == "valid, 1.2 MiB of 64 MiB used, 1 %"


def _filled(size: int, leave: int) -> tuple[bytearray, cow.CowWriter]:
    """A snapshot of `size` bytes filled until `leave` data chunks are left (0: until the kernel refuses)."""
    buf, w = written(size, [])
    old = 0
    try:
        while (size // CHUNK) - w.next_free > leave or not leave:
            w.add(old, b"x")
            old += 1
    except cow.CowFull:
        pass
    return buf, w


@pytest.mark.parametrize(("leave", "state", "status"), [
    (0, State.OVERFLOWED, EXIT_UNUSABLE),  # the kernel refused a chunk: the Overflow of a PO table
    (200, State.VALID, EXIT_UNUSABLE),  # less than 1 MiB left: pylive's boot will not write to it
    (300, State.VALID, EXIT_WARNING),  # 92 %
    (4000, State.VALID, EXIT_OK),
])
def test_how_full_and_what_it_means(leave: int, state: State, status: int) -> None:
    buf, _ = _filled(16 << 20, leave)
    e = examine(read_of(buf), len(buf))
    assert (e.state, verdict(e).exit_status) == (state, status), verdict(e)


def test_a_size_that_ends_where_an_area_goes_invalidates_as_it_fills() -> None:
    bad = (1 + 257 * 15) * CHUNK
    assert cow.fills_into_invalid(bad, 8) and cow.fills_into_invalid(256 << 20, 8)
    assert not cow.fills_into_invalid(bad + CHUNK, 8) and not cow.fills_into_invalid(16 << 20, 8)
    assert cow.safe_size(256 << 20) == (256 << 20) + CHUNK and cow.safe_size(16 << 20) == 16 << 20
    buf, w = _filled(bad, 0)
    e = examine(read_of(buf), len(buf))
    assert not w.valid and e.state is State.INVALID
    assert len(e.table) == 15 * PER_AREA - 1  # the exception that filled area 14 was never written
    assert "invalidated by the kernel" in verdict(e).message
    buf, w = _filled(bad + CHUNK, 0)
    assert w.valid and examine(read_of(buf), len(buf)).state is State.OVERFLOWED
    fresh = examine(read_of(bytes(bad)), bad)
    assert verdict(fresh).exit_status == EXIT_WARNING and "invalidates such a snapshot" in verdict(fresh).notes[0]


def test_an_invalidated_snapshot_still_shows_its_table() -> None:
    buf = hand_cow([(4, 2), (9, 3)], 64, valid=0)
    e = examine(read_of(buf), len(buf))
    assert e.state is State.INVALID and list(e.table.new) == [2, 3]  # type: ignore[union-attr]
    assert "its table still lists 2 changed chunks" in verdict(e).message

"""The RAM copy's reading, summing and verification on ordinary files (no root)."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import threading
import zlib
from pathlib import Path

import pytest

from pylive.linux.copy import copy_with_sums, read_ahead, sums_of
from pylive.ramcopy import BlockSums, difference

MIB = 1 << 20


@pytest.fixture
def image(tmp_path: Path) -> Path:
    p = tmp_path / "squashfs.img"
    p.write_bytes(os.urandom(9 * MIB + 12345))
    return p


def test_copy_is_byte_identical_and_its_sums_are_of_the_source(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ram/squashed.img"
    dest.parent.mkdir()
    seen: list[int] = []
    sums = copy_with_sums(str(image), str(dest), block=4 * MIB, progress=seen.append)
    data = image.read_bytes()
    assert dest.read_bytes() == data
    assert sums == BlockSums(len(data), 4 * MIB, tuple(zlib.crc32(data[i : i + 4 * MIB])
                                                         for i in range(0, len(data), 4 * MIB)))
    assert seen == [4 * MIB, 8 * MIB, len(data)]
    assert sums_of(str(dest), block=4 * MIB) == sums
    assert difference(len(data), sums, sums_of(str(dest), block=4 * MIB)) is None


def test_a_changed_byte_in_the_copy_is_found(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    sums = copy_with_sums(str(image), str(dest), block=MIB)
    with open(dest, "r+b") as f:
        f.seek(5 * MIB + 7)
        byte = f.read(1)
        f.seek(5 * MIB + 7)
        f.write(bytes([byte[0] ^ 1]))
    assert difference(image.stat().st_size, sums, sums_of(str(dest), block=MIB)) == "the block at 5 MiB differs"


def test_a_short_copy_or_source_is_found(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    size = image.stat().st_size
    sums = copy_with_sums(str(image), str(dest))
    os.truncate(dest, size - 1)
    assert difference(size, sums, sums_of(str(dest))) == f"the copy has {size - 1} bytes, {size} were read"
    assert difference(size + 1, sums, sums) == f"{size} bytes were read, the file has {size + 1}"
    other_blocks = BlockSums(size, MIB, sums.crcs)
    assert difference(size, sums, other_blocks) == "the copy was summed in other blocks than the source"


def test_a_read_error_names_the_source_and_leaves_no_partial_copy(tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    with pytest.raises(OSError) as e:
        copy_with_sums(str(tmp_path), str(dest))  # read(2) of a directory: EISDIR
    assert e.value.errno == errno.EISDIR
    assert e.value.filename == str(tmp_path)
    assert "(reading at 0 MiB)" in str(e.value.strerror)
    assert not dest.exists()


def test_a_write_error_names_the_copy_and_removes_it(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write(2) fails with EFBIG
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (5 * MIB, old_limit[1]))
    try:
        with pytest.raises(OSError) as e:
            copy_with_sums(str(image), str(dest))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert (e.value.errno, e.value.filename) == (errno.EFBIG, str(dest))
    assert "(writing at 4 MiB)" in str(e.value.strerror)
    assert not dest.exists()


def test_an_existing_file_is_never_overwritten(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    dest.write_text("keep")
    with pytest.raises(FileExistsError):
        copy_with_sums(str(image), str(dest))
    assert dest.read_text() == "keep"


def test_read_ahead_stops_at_the_limit_and_its_thread_ends(image: Path) -> None:
    before = threading.active_count()
    fd = os.open(image, os.O_RDONLY)
    try:
        sizes = [len(v) for v in read_ahead(fd, block=MIB, limit=3 * MIB + 5)]
        assert sizes == [MIB, MIB, MIB, 5]
        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.closing(read_ahead(fd, block=MIB)) as blocks:
            first = bytes(next(blocks))
        assert first == image.read_bytes()[:MIB]
    finally:
        os.close(fd)
    assert threading.active_count() == before

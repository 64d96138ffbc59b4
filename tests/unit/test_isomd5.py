"""The implanted-MD5 check against isomd5sum's own tools: every verdict is compared with checkisomd5's."""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylive import isomd5
from pylive.isomd5 import Status

from .fuzzing import within
from .isoimages import SECTOR, checkisomd5, make_image, need_isomd5sum, poke

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _tools() -> None:
    need_isomd5sum()


def verdict(path: Path, block: int = 1 << 20) -> isomd5.Verdict:
    with open(path, "rb", buffering=0) as f:
        found = isomd5.read_implanted(f)
        if not isinstance(found, isomd5.Implanted):
            return isomd5.Verdict(found)
        return isomd5.check(isomd5.file_blocks(f, block), found)


def test_reads_what_implantisomd5_wrote(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.iso", 1000)
    out = subprocess.run(["checkisomd5", "--md5sumonly", str(image)], capture_output=True, text=True,
                         check=True).stdout
    with open(image, "rb") as f:
        found = isomd5.read_implanted(f)
    assert isinstance(found, isomd5.Implanted)
    assert f"{image}:   {found.md5}" in out
    assert f"Fragment sums: {found.fragment_sums}" in out
    assert (found.skip_sectors, found.fragment_count, found.pvd_offset, found.volume_size) == (15, 20, 16 * SECTOR,
                                                                                                1000 * SECTOR)


# 40-333 sectors: fragments smaller than isomd5sum's 32 KiB read size, where implantisomd5 writes the
# fragment sums of the fragments it saw one after the other and checkisomd5 reads them by fragment
# number: isomd5sum fails its own image, and pylive must say the same. 500 sectors and up: real sizes.
@pytest.mark.parametrize("sectors", [40, 64, 100, 333, 500, 1000, 1500, 4097, 33333])
def test_verdict_on_intact_images_is_checkisomd5s(tmp_path: Path, sectors: int) -> None:
    image = make_image(tmp_path / "a.iso", sectors, seed=sectors)
    expected = Status.PASSED if checkisomd5(image) == 0 else Status.FAILED
    assert expected is (Status.PASSED if sectors >= 500 else Status.FAILED)
    for block in (3 * SECTOR, 1 << 20, 4 << 20):  # the checkpoints do not depend on the read size
        assert verdict(image, block).status is expected


SIZE = 4097  # sectors; the checked part ends 15 sectors before the end


@pytest.mark.parametrize(("where", "offset", "status"), [
    ("system area", 100, Status.FAILED),
    ("pvd, outside the application area", 16 * SECTOR + 40, Status.FAILED),
    ("application area, after the text", 16 * SECTOR + 883 + 500, Status.PASSED),  # read as spaces
    ("first fragment", 40 * SECTOR, Status.FAILED),
    ("middle", SIZE * SECTOR // 2, Status.FAILED),
    ("last checked byte", (SIZE - 15) * SECTOR - 1, Status.FAILED),
    ("first skipped byte", (SIZE - 15) * SECTOR, Status.PASSED),
    ("last byte (skipped)", SIZE * SECTOR - 1, Status.PASSED),
])
def test_verdict_on_a_changed_byte_is_checkisomd5s(tmp_path: Path, where: str, offset: int, status: Status) -> None:
    image = make_image(tmp_path / "a.iso", SIZE)
    poke(image, offset)
    assert (checkisomd5(image) == 0) is (status is Status.PASSED), where
    assert verdict(image).status is status, where


def test_damage_is_found_at_its_fragment_not_at_the_end(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.iso", SIZE)
    poke(image, SIZE * SECTOR // 10)
    v = verdict(image)
    assert v.status is Status.FAILED
    assert v.reason == "MD5 mismatch in fragment 2 of 20, within the first 11%"
    assert v.done < v.total // 5


def test_damage_after_the_last_fragment_is_found_by_the_md5(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.iso", SIZE)
    poke(image, (SIZE - 16) * SECTOR)
    v = verdict(image)
    assert (v.status, v.reason, v.done) == (Status.FAILED, "MD5 mismatch", v.total)


def test_no_implanted_md5(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.iso", 1000, implant=False)
    assert checkisomd5(image) == 1
    assert verdict(image).status is Status.NO_CHECKSUM


def test_not_an_iso_image(tmp_path: Path) -> None:
    other = tmp_path / "disk.img"
    other.write_bytes(bytes(64 * SECTOR))
    assert verdict(other).status is Status.NOT_ISO
    short = tmp_path / "short"
    short.write_bytes(b"x")
    assert verdict(short).status is Status.NOT_ISO


def test_a_short_copy_fails_with_its_sizes(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.iso", SIZE)
    with open(image, "r+b") as f:
        f.truncate(2048 * SECTOR)
    assert checkisomd5(image) == 1
    v = verdict(image)
    assert (v.status, v.reason) == (Status.FAILED,
                                    "it ends at 4 MiB, but its ISO 9660 volume is 8 MiB (an incomplete copy)")


def _rewrite(image: Path, field: bytes, value: bytes) -> None:
    """A number of implantisomd5's text, written over in place (the text after it may be lost)."""
    data = bytearray(image.read_bytes())
    at = data.index(field, 16 * SECTOR) + len(field)
    data[at : at + len(value) + 1] = value + b";"
    image.write_bytes(data)


# Found by fuzzing: FRAGMENT COUNT and SKIPSECTORS are text on the medium; 4000000000 fragments of a volume
# said to be 8 TiB, or of a negative checked size (SKIPSECTORS beyond the volume), made billions of
# checkpoints before the first byte was read: rd.live.check hung.
VOLUME_8_TIB = ((16 * SECTOR + 80, b"\xff\xff\xff\xff"), (16 * SECTOR + 84, b"\xff\xff\xff\xff"))


@pytest.mark.parametrize(("volume", "skip", "count", "status"), [
    (VOLUME_8_TIB, None, b"4000000000", Status.FAILED),  # it ends long before 8 TiB
    ((), b"4000000000", b"4000000000", Status.FAILED),  # it would skip more than the volume
    ((), None, b"61", Status.PASSED),  # 60 digits for 61 fragments: none per fragment, the MD5 alone counts
], ids=["8-tib", "skip-beyond", "61-fragments"])
def test_numbers_on_the_medium_cannot_hang_the_check(tmp_path: Path, volume: tuple[tuple[int, bytes], ...],
                                                     skip: bytes | None, count: bytes, status: Status) -> None:
    image = make_image(tmp_path / "a.iso", SIZE)
    if skip is not None:
        _rewrite(image, b"SKIPSECTORS = ", skip)
    _rewrite(image, b"FRAGMENT COUNT = ", count)
    data = bytearray(image.read_bytes())
    for at, raw in volume:
        data[at : at + len(raw)] = raw
    image.write_bytes(data)
    with within(2):
        v = verdict(image)
    assert v.status is status
    if status is Status.PASSED:
        assert checkisomd5(image) == 0


def test_a_read_error_is_a_failure_that_says_where(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.iso", SIZE)
    with open(image, "rb", buffering=0) as f:
        found = isomd5.read_implanted(f)
        assert isinstance(found, isomd5.Implanted)

        def failing() -> Iterator[memoryview]:
            yield from isomd5.file_blocks(f, 1 << 20)
            raise OSError(errno.EIO, "Input/output error (reading at 8 MiB)")  # as linux.copy.read_ahead says

        found = isomd5.Implanted(found.md5, found.skip_sectors, "", 0, found.pvd_offset, found.volume_size + (4 << 20))
        v = isomd5.check(failing(), found)
    assert (v.status, v.reason) == (Status.FAILED, "read error at 8 MiB: Input/output error")


def test_progress_is_reported_and_can_stop_the_check(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.iso", SIZE)
    seen: list[int] = []
    with open(image, "rb", buffering=0) as f:
        found = isomd5.read_implanted(f)
        assert isinstance(found, isomd5.Implanted)
        v = isomd5.check(isomd5.file_blocks(f, 1 << 20), found, lambda done: seen.append(done) or len(seen) == 3)
    assert (v.status, v.done) == (Status.ABORTED, 3 << 20)
    assert seen == [1 << 20, 2 << 20, 3 << 20]


def _isomd5sum_checkpoints(total: int, count: int) -> list[tuple[int, int]]:
    """libcheckisomd5.c's loop, step by step: 32 KiB reads; after each, the fragment of the read's start."""
    fragment_size = total // (count + 1)
    out, previous, offset = [], 0, 0
    while offset < total:
        n = min(total - offset, isomd5.GRID)
        current = offset // fragment_size
        if current != previous:
            out.append((offset + n, current))
            previous = current
        offset += n
    return out


# from fragments smaller than a 32 KiB read (the first) to a DVD image
@pytest.mark.parametrize("total", [318 * SECTOR, 2_000_000, 4082 * SECTOR, 700 * (1 << 20) + 12 * SECTOR,
                                   2_254_438_400])
def test_checkpoints_are_those_of_isomd5sums_read_loop(total: int) -> None:
    assert isomd5.checkpoints(total, 20) == _isomd5sum_checkpoints(total, 20)


def test_fragment_digits_are_printf_x_first_digits() -> None:
    assert isomd5.fragment_digits(bytes([0x00, 0x05, 0x10, 0xAB]), 4) == "051a"


def _pylive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylive", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False)


def test_check_media_command(tmp_path: Path) -> None:
    good = make_image(tmp_path / "good.iso", SIZE)
    proc = _pylive("check-media", str(good))
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"{good}: the implanted MD5 matches (")
    assert f"checking {good}: 100% of 8 MiB in " in proc.stderr  # progress: not a terminal, whole lines

    bad = make_image(tmp_path / "bad.iso", SIZE)
    poke(bad, SIZE * SECTOR // 2)
    proc = _pylive("check-media", str(bad))
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.splitlines()[-1] == (
        f"error: the medium {bad} is damaged (MD5 mismatch in fragment 11 of 20, within the first 53%): "
        "download or write the image again")

    bare = make_image(tmp_path / "bare.iso", SIZE, implant=False)
    proc = _pylive("check-media", str(bare))
    assert (proc.returncode, proc.stderr) == (4, f"error: {bare} carries no implanted MD5 (implantisomd5 was not "
                                                 "run on the image): it cannot be checked\n")

    proc = _pylive("check-media", str(tmp_path / "missing.iso"))
    assert (proc.returncode, proc.stderr) == (2, f"error: {tmp_path}/missing.iso: No such file or directory: "
                                                 "give an ISO image, or the device it was written to\n")
    assert _pylive("check-media").returncode == 2

"""`pylive overlay resize`: growing keeps the table and next_free as the kernel reads them, an overflowed
snapshot takes writes again (the kernel's allocation, modelled by CowWriter.resume), and every
refusal leaves the file as it was."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.errors import LiveError
from pylive.overlay import cowformat as cow
from pylive.overlay.inspect import State, examine
from pylive.overlay.resize import plan_resize

from .test_overlay_inspect import make_cow

MIB = 1 << 20


def fake_root(tmp_path: Path, fstype: str = "ext4", loop_backing: Path | None = None) -> Path:
    root = tmp_path / "root"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mountinfo").write_text(f"22 1 8:1 / / rw - {fstype} /dev/sda1 rw\n")
    if loop_backing is not None:
        (root / "sys/block/loop3/loop").mkdir(parents=True)
        (root / "sys/block/loop3/loop/backing_file").write_text(f"{loop_backing}\n")
    return root


def resize(capsys: pytest.CaptureFixture[str], root: Path, f: Path, size: str) -> tuple[int, str, str]:
    status = main(["overlay", "resize", "--root", os.fspath(root), os.fspath(f), "--size", size])
    out = capsys.readouterr()
    return status, out.out, out.err


def read_file(f: Path) -> cow.Read:
    def read(offset: int, size: int) -> bytes:
        with open(f, "rb") as fh:
            fh.seek(offset)
            return fh.read(size)
    return read


def test_an_overflowed_cow_grown_takes_writes_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cow"
    make_cow(f, 16 * MIB, 4079)  # every data chunk taken: the kernel's next new chunk fails
    before = f.read_bytes()
    full = examine(read_file(f), 16 * MIB)
    assert full.state is State.OVERFLOWED
    status, out, err = resize(capsys, fake_root(tmp_path), f, "64M")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"grew {f} from 16 MiB to 64 MiB: room for 47.8 MiB more changes",
        "note: it had overflowed: the next boot can write to it again; writes that failed while it was full are "
        "lost, so the filesystem in it may need a check (`pylive overlay merge` reports e2fsck's verdict on a "
        "merged copy)",
    ]
    data = f.read_bytes()
    assert len(data) == 64 * MIB and data[: 16 * MIB] == before and not any(data[16 * MIB :])
    grown = examine(read_file(f), 64 * MIB)
    assert grown.state is State.VALID and grown.table is not None and full.table is not None
    assert (list(grown.table.old), grown.table.next_free) == (list(full.table.old), full.table.next_free)

    # the kernel, after loading it, hands out chunks from next_free on, around the areas: all reads back
    buf = bytearray(data)

    def write(offset: int, chunk: bytes) -> None:
        buf[offset : offset + len(chunk)] = chunk

    w = cow.CowWriter.resume(write, len(buf), grown.table)
    for old in range(10**6, 10**6 + 3000):
        w.add(old, old.to_bytes(8, "little") * 512)
    after = examine(lambda o, n: bytes(buf[o : o + n]), len(buf))
    assert after.state is State.VALID and after.table is not None and not after.problems
    assert list(after.table.old) == list(full.table.old) + list(range(10**6, 10**6 + 3000))
    n = after.table.new[-1]
    assert bytes(buf[n * 4096 : n * 4096 + 8]) == (10**6 + 2999).to_bytes(8, "little")


def test_growing_a_valid_cow_keeps_every_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cow"
    make_cow(f, 16 * MIB, 700)
    before = f.read_bytes()
    assert resize(capsys, fake_root(tmp_path), f, "20M")[0] == 0
    assert f.read_bytes()[: 16 * MIB] == before and f.stat().st_size == 20 * MIB
    assert f.stat().st_blocks * 512 >= 20 * MIB - 16 * MIB  # the new room is allocated


def test_a_size_the_kernel_would_invalidate_gets_one_chunk_more(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cow"
    make_cow(f, 16 * MIB, 100)
    status, out, _ = resize(capsys, fake_root(tmp_path), f, "256M")
    assert status == 0 and f.stat().st_size == 256 * MIB + 4096
    assert "note: 256 MiB + 4 KiB, one chunk more than asked" in out


def test_one_never_used_can_shrink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cow"
    f.write_bytes(bytes(8 * MIB))
    status, out, _ = resize(capsys, fake_root(tmp_path), f, "2M")
    assert status == 0 and f.stat().st_size == 2 * MIB and out.startswith(f"shrank {f} from 8 MiB to 2 MiB")


@pytest.mark.parametrize(("case", "message"), [
    ("shrink", "holds changes (2.4 MiB used): a used overlay only grows: give a --size above 16 MiB"),
    ("same", "is 16 MiB already: give another --size"),
    ("invalid", "was invalidated by the kernel: room would not make it usable (the kernel reads none of its table): "
                "apply its changes to a copy of the base with `pylive overlay merge --force`"),
    ("fat", "--size 5120 MiB: vfat holds no file larger than 4 GiB - 1 byte: use at most --size 4095M"),
    ("in use", "is in use by /dev/loop3: do this when no live system uses it"),
    ("damaged", "is damaged (exception 0 keeps its data in chunk 9999, past the end of the file"),
    ("not a cow", "is not readable as a device-mapper overlay: it has no device-mapper snapshot header"),
    ("badsize", "--size 1.5G: not a size"),
])
def test_refusals_leave_the_file_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                           message: str) -> None:
    f = tmp_path / "cow"
    make_cow(f, 16 * MIB, 600, valid=case != "invalid")
    if case == "damaged":
        with open(f, "r+b") as fh:
            fh.seek(4096 + 8)
            fh.write((9999).to_bytes(8, "little"))
    if case == "not a cow":
        f.write_bytes(b"x" * MIB)
    root = fake_root(tmp_path, "vfat" if case == "fat" else "ext4", f if case == "in use" else None)
    size = {"shrink": "8M", "same": "16M", "fat": "5G", "badsize": "1.5G"}.get(case, "32M")
    before = hashlib.sha256(f.read_bytes()).hexdigest()
    status, out, err = resize(capsys, root, f, size)
    assert (status, out) == (1, "")
    assert err.count("\n") == 1 and message in err, err
    assert hashlib.sha256(f.read_bytes()).hexdigest() == before


def test_no_room_to_grow() -> None:
    e = examine(lambda o, n: bytes(n), 16 * MIB)
    with pytest.raises(LiveError, match="cannot grow by 48 MiB: its filesystem has 10 MiB free"):
        plan_resize("/x/cow", e, 64 * MIB, "ext4", 10 * MIB)

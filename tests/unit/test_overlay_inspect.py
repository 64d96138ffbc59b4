"""`pylive overlay inspect` through the entry point: text, --json (schema_version 1) and exit statuses,
on COW files written here as the kernel writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.overlay import cowformat as cow

SCHEMA_KEYS = {"schema_version", "file", "state", "exit_status", "verdict", "notes", "size_bytes", "chunk_bytes",
               "chunks_total", "chunks_used", "data_chunks", "metadata_areas", "percent_used", "base"}


def make_cow(path: Path, size: int, changed: int, valid: bool = True) -> None:
    """A COW file of `size` bytes with `changed` chunks of the base kept, as the kernel fills one."""
    with open(path, "wb") as f:
        f.truncate(size)

        def write(offset: int, data: bytes) -> None:
            f.seek(offset)
            f.write(data)

        w = cow.CowWriter(write, size)
        for old in range(changed):
            w.add(old * 7, old.to_bytes(4, "little") * 1024)
        if not valid:
            w.invalidate()


def inspect(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(["overlay", "inspect", *argv])
    return status, capsys.readouterr().out


def test_a_valid_overlay_and_its_base_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "overlay-L-U"
    make_cow(f, 64 << 20, 1000)
    (tmp_path / "overlay-L-U.pylive-base").write_text("size=67108864 sha256-64k=0123456789abcdef0123456789abcdef\n")
    status, out = inspect(capsys, str(f))
    assert status == 0
    assert out == (f"{f}: valid, 3.9 MiB of 64 MiB used, 6 %\n"
                   "  chunks: 1005 of 16384 used, 4096 bytes each (1000 changed chunks of the base, 4 metadata "
                   "areas, 1 header)\n"
                   "  base image: size=67108864 sha256-64k=0123456789abcdef0123456789abcdef "
                   f"(recorded in {f}.pylive-base)\n")
    status, out = inspect(capsys, str(f), "--json")
    data = json.loads(out)
    assert status == 0 and set(data) == SCHEMA_KEYS
    assert data == {
        "schema_version": 1, "file": str(f), "state": "valid", "exit_status": 0,
        "verdict": "valid, 3.9 MiB of 64 MiB used, 6 %", "notes": [], "size_bytes": 64 << 20, "chunk_bytes": 4096,
        "chunks_total": 16384, "chunks_used": 1005, "data_chunks": 1000, "metadata_areas": 4, "percent_used": 6,
        "base": {"record": "size=67108864 sha256-64k=0123456789abcdef0123456789abcdef",
                 "record_file": f"{f}.pylive-base", "size": 67108864,
                 "sha256_64k": "0123456789abcdef0123456789abcdef"},
    }


@pytest.mark.parametrize(("changed", "valid", "expect"), [
    (4079, True, (2, "overflowed", "overflowed (16 MiB of 16 MiB used, 100 %)")),
    (3900, True, (2, "valid", "full (15.3 MiB of 16 MiB used, 95 %)")),
    (3700, True, (1, "valid", "valid, 14.5 MiB of 16 MiB used, 90 %")),
    (10, False, (2, "invalid", "invalidated by the kernel")),
    (0, True, (0, "valid", "valid, 8 KiB of 16 MiB used, 0 %")),
])
def test_states_and_exit_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str], changed: int, valid: bool,
                                  expect: tuple[int, str, str]) -> None:
    f = tmp_path / "cow"
    make_cow(f, 16 << 20, changed, valid)
    got, out = inspect(capsys, str(f), "--json")
    data = json.loads(out)
    status, state, start = expect
    assert (got, data["state"], data["exit_status"]) == (status, state, status), data
    assert data["verdict"].startswith(start), data["verdict"]


def test_never_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cow"
    f.write_bytes(bytes(1 << 20))
    status, out = inspect(capsys, str(f))
    assert status == 0
    assert out.splitlines()[:2] == [f"{f}: never used: all zeros; the first boot that uses it writes its header",
                                    "  size: 1 MiB"]
    data = json.loads(inspect(capsys, str(f), "--json")[1])
    assert (data["state"], data["chunks_used"], data["chunk_bytes"]) == ("never-used", 0, None)


@pytest.mark.parametrize(("content", "reason"), [
    (None, "No such file or directory: give the overlay's COW file"),
    (b"", "it is 0 bytes long, too short for a snapshot header"),
    (b"hello" * 1000, "it has no device-mapper snapshot header (magic 0x6c6c6568, not 'SnAp')"),
    ("dir", "it is a directory (an OverlayFS overlay?)"),
])
def test_what_is_not_an_overlay_gets_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              content: bytes | str | None, reason: str) -> None:
    f = tmp_path / "cow"
    if content == "dir":
        f.mkdir()
    elif isinstance(content, bytes):
        f.write_bytes(content)
    status, out = inspect(capsys, str(f))
    assert status == 3
    assert out.count("\n") == 1 and out.startswith(f"{f}: not readable as a device-mapper overlay: {reason}"), out
    data = json.loads(inspect(capsys, str(f), "--json")[1])
    assert set(data) == SCHEMA_KEYS and data["state"] == "unreadable" and data["size_bytes"] is None


def test_a_filesystem_image_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "overlay"
    raw = bytearray(1 << 20)
    raw[1080:1082] = b"\x53\xef"  # the ext2/3/4 magic
    f.write_bytes(raw)
    status, out = inspect(capsys, str(f))
    assert status == 3 and "it holds a ext4 filesystem (the OverlayFS image form?)" in out


def test_the_file_is_only_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cow"
    make_cow(f, 16 << 20, 500)
    f.chmod(0o400)
    before = f.read_bytes(), f.stat().st_mtime_ns
    assert inspect(capsys, str(f))[0] == 0
    assert (f.read_bytes(), f.stat().st_mtime_ns) == before

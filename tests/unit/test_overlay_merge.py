"""`pylive overlay merge`: the COW of a changed ext4 image (every chunk that differs, written as the
kernel fills a snapshot) merged onto the base gives the changed image back byte for byte, from a
rootfs.img or from the squashfs.img holding it; the inputs are only read; every refusal writes
nothing; e2fsck's verdict (journal replay, errors, --repair)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.errors import LiveError
from pylive.overlay import cowformat as cow
from pylive.overlay import merge
from pylive.probe import image_identity

from .fsimages import TOOLS_PATH

MIB = 1 << 20
needs_e2fsprogs = pytest.mark.skipif(
    any(shutil.which(t, path=TOOLS_PATH) is None for t in ("mkfs.ext4", "debugfs", "e2fsck")),
    reason="e2fsprogs is needed")
needs_squashfs = pytest.mark.skipif(
    any(shutil.which(t, path=TOOLS_PATH) is None for t in ("mksquashfs", "unsquashfs")),
    reason="squashfs-tools is needed")


def tool(*cmd: str | Path) -> str:
    return subprocess.run([os.fspath(c) for c in cmd], check=True, capture_output=True, text=True,
                          env=dict(os.environ, PATH=TOOLS_PATH)).stdout


def snapshot_of(base: Path, changed: Path, out: Path, cow_size: int = 32 * MIB) -> int:
    """The COW file the kernel would hold after the writes that turned `base` into `changed`; the chunks."""
    a, b = base.read_bytes(), changed.read_bytes()
    with open(out, "wb") as f:
        f.truncate(cow_size)

        def write(offset: int, data: bytes) -> None:
            f.seek(offset)
            f.write(data)

        w = cow.CowWriter(write, cow_size)
        order = [i for i in range(0, len(a), 4096) if a[i : i + 4096] != b[i : i + 4096]]
        random.Random(7).shuffle(order)  # the kernel keeps chunks in the order they were first written
        for i in order:
            w.add(i // 4096, b[i : i + 4096])
    return len(order)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """base.img (ext4), changed.img (a token and 3 MiB of checkable data written into a copy), and
    overlay: their snapshot, with pylive's identity record of base.img beside it."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("NAME=pylive-test\n")
    base, changed, overlay = tmp_path / "base.img", tmp_path / "changed.img", tmp_path / "overlay"
    tool("mkfs.ext4", "-q", "-L", "pylive-root", "-d", tree, base, "32M")
    shutil.copyfile(base, changed)
    (tmp_path / "token").write_text("token-1234\n")
    (tmp_path / "fill").write_bytes(random.Random(1).randbytes(3 * MIB))
    tool("debugfs", "-w", "-R", f"write {tmp_path / 'token'} /pylive-write-test", changed)
    tool("debugfs", "-w", "-R", f"write {tmp_path / 'fill'} /pylive-fill", changed)
    snapshot_of(base, changed, overlay)
    (tmp_path / "overlay.pylive-base").write_text(image_identity(os.fspath(base)) + "\n")
    return {"base": base, "changed": changed, "overlay": overlay}


def run_merge(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    status = main(["overlay", "merge", *(os.fspath(a) for a in argv)])
    out = capsys.readouterr()
    return status, out.out, out.err


def sums(*paths: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@needs_e2fsprogs
def test_the_merge_is_the_changed_image(tmp_path: Path, images: dict[str, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = sums(images["base"], images["overlay"])
    new = tmp_path / "out" / "rootfs.img"
    new.parent.mkdir()
    status, out, err = run_merge(capsys, images["overlay"], "--base", images["base"], "--out", new)
    assert (status, err) == (0, "")
    assert new.read_bytes() == images["changed"].read_bytes()
    assert sums(images["base"], images["overlay"]) == before  # only read
    lines = out.splitlines()
    assert lines[0].startswith("merged ")
    assert f"of {images['overlay']} onto {images['base']}: {new} (32 MiB, " in lines[0]
    assert lines[1:] == ["e2fsck -fn: clean"]
    assert tool("debugfs", "-R", "cat /pylive-write-test", new) == "token-1234\n"
    assert new.stat().st_blocks * 512 < 16 * MIB  # the copy is sparse
    assert os.listdir(new.parent) == ["rootfs.img"]  # no temporary file left


@needs_e2fsprogs
@needs_squashfs
def test_from_the_squashfs_holding_rootfs_img(tmp_path: Path, images: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sq/LiveOS").mkdir(parents=True)
    shutil.copyfile(images["base"], tmp_path / "sq/LiveOS/rootfs.img")
    squash = tmp_path / "squashfs.img"
    tool("mksquashfs", tmp_path / "sq", squash, "-quiet", "-noappend", "-no-progress")
    (tmp_path / "overlay.pylive-base").write_text(image_identity(os.fspath(squash)) + "\n")  # as the boot records
    before = sums(squash)
    status, out, _ = run_merge(capsys, images["overlay"], "--base", squash, "--out", tmp_path / "new.img")
    assert status == 0 and f"onto LiveOS/rootfs.img in {squash}" in out
    assert (tmp_path / "new.img").read_bytes() == images["changed"].read_bytes()
    assert sums(squash) == before


@needs_e2fsprogs
@needs_squashfs
def test_squashfs_refusals(tmp_path: Path, images: dict[str, Path], capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flat/usr").mkdir(parents=True)
    flat = tmp_path / "flat.img"
    tool("mksquashfs", tmp_path / "flat", flat, "-quiet", "-noappend", "-no-progress")
    status, _, err = run_merge(capsys, images["overlay"], "--base", flat, "--out", tmp_path / "new.img")
    assert status == 1 and f"error: {flat} holds no LiveOS/rootfs.img" in err and err.count("\n") == 1
    monkeypatch.setattr(merge, "SBIN_PATH", os.fspath(tmp_path / "nothing"))
    status, _, err = run_merge(capsys, images["overlay"], "--base", flat, "--out", tmp_path / "new.img")
    assert status == 1 and err.startswith("error: unsquashfs (squashfs-tools) is needed to read LiveOS/rootfs.img")
    assert not (tmp_path / "new.img").exists()


def _refusal(tmp_path: Path, images: dict[str, Path], case: str) -> tuple[list[str | Path], str]:
    """The arguments of a merge that must be refused, after breaking what `case` says; the error's text."""
    new = tmp_path / "new.img"
    argv: list[str | Path] = [images["overlay"], "--base", images["base"], "--out", new]
    if case == "wrong base":
        argv[2] = tmp_path / "other.img"
        tool("mkfs.ext4", "-q", argv[2], "32M")
        message = f"was made for another base image (recorded size={32 * MIB} sha256-64k="
    elif case == "smaller base":
        argv[2] = small = tmp_path / "small.img"
        small.write_bytes(images["base"].read_bytes()[: 4 * MIB])
        argv.append("--any-base")
        message = f"past the end of {small} (1024 chunks of 4096 bytes): it was made for a larger image"
    elif case == "exists":
        new.write_text("mine\n")
        message = f"{new} exists already: give a new file name with --out"
    elif case == "no dir":
        argv[4] = tmp_path / "nowhere/new.img"
        message = "nowhere is not a directory"
    elif case == "never used":
        images["overlay"].write_bytes(bytes(MIB))
        message = "was never used: there is nothing to merge: the base image is the result"
    elif case in ("invalid", "damaged"):
        with open(images["overlay"], "r+b") as f:
            f.seek(4 if case == "invalid" else 4096 + 8)
            f.write(b"\0\0\0\0" if case == "invalid" else (1 << 40).to_bytes(8, "little"))
        message = ("was invalidated by the kernel: its table may miss the last changes before that, and no boot "
                   "would read it: add --force" if case == "invalid" else
                   "is damaged (exception 0 keeps its data in chunk 1099511627776, past the end of the file")
    elif case == "not a cow":
        images["overlay"].write_bytes(b"\x01" * MIB)
        message = "is not readable as a device-mapper overlay: it has no device-mapper snapshot header"
    else:
        argv[2] = tmp_path / "missing.img"
        message = "missing.img: No such file"
    return argv, message


@needs_e2fsprogs
@pytest.mark.parametrize("case", ["wrong base", "smaller base", "exists", "no dir", "never used", "invalid",
                                  "damaged", "not a cow", "no base"])
def test_refusals_write_nothing(tmp_path: Path, images: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                case: str) -> None:
    argv, message = _refusal(tmp_path, images, case)
    listing = sorted(os.listdir(tmp_path))
    kept = sums(*(tmp_path / n for n in listing if (tmp_path / n).is_file()))
    status, out, err = run_merge(capsys, *argv)
    assert (status, out) == (1, "")
    assert err.count("\n") == 1 and message in err, err
    assert sorted(os.listdir(tmp_path)) == listing
    assert sums(*(tmp_path / n for n in listing if (tmp_path / n).is_file())) == kept


@needs_e2fsprogs
def test_an_invalidated_overlay_with_force(tmp_path: Path, images: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with open(images["overlay"], "r+b") as f:
        f.seek(4)
        f.write(b"\0\0\0\0")  # valid = 0: what drop_snapshot() writes
    status, out, _ = run_merge(capsys, images["overlay"], "--base", images["base"], "--out", tmp_path / "new.img",
                               "--force")
    assert status == 0 and "note: the overlay was invalidated by the kernel" in out
    assert (tmp_path / "new.img").read_bytes() == images["changed"].read_bytes()


def test_no_room() -> None:
    with pytest.raises(LiveError, match="no room for /x/new.img: it needs up to 72 MiB, its filesystem has 10 MiB"):
        merge.check_room("/x/new.img", 72 * MIB, 10 * MIB)


@needs_e2fsprogs
def test_a_failure_while_writing_leaves_nothing(tmp_path: Path, images: dict[str, Path],
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(merge, "apply_changes", full)
    status, _, err = run_merge(capsys, images["overlay"], "--base", images["base"], "--out", tmp_path / "new.img")
    assert status == 1
    assert err == f"error: writing {tmp_path / 'new.img'} failed: No space left on device: nothing was kept; make " \
                  "room, or write it elsewhere with --out\n"
    assert not [n for n in os.listdir(tmp_path) if "new.img" in n]


@needs_e2fsprogs
def test_errors_found_are_reported_and_repaired_on_request(tmp_path: Path, images: dict[str, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    blocks = tool("debugfs", "-R", "blocks /pylive-fill", images["changed"]).split()
    tool("debugfs", "-w", "-R", f"freeb {blocks[0]} 8", images["changed"])  # used blocks marked free
    snapshot_of(images["base"], images["changed"], images["overlay"])
    status, out, _ = run_merge(capsys, images["overlay"], "--base", images["base"], "--out", tmp_path / "new.img")
    assert status == 3
    assert "e2fsck -fn: errors (exit status 4), the first: " in out
    assert out.endswith(f"repair {tmp_path / 'new.img'} before use: e2fsck -fy {tmp_path / 'new.img'} (or merge again "
                        "with --repair)\n")
    status, out, _ = run_merge(capsys, images["overlay"], "--base", images["base"], "--out", tmp_path / "new2.img",
                               "--repair")
    assert status == 0 and out.splitlines()[-2:] == ["e2fsck -fy: repaired", "e2fsck -fn: clean"]


@needs_e2fsprogs
def test_a_journal_that_wants_replay_gets_it(tmp_path: Path, images: dict[str, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    tool("debugfs", "-w", "-R", "feature needs_recovery", images["changed"])  # as a filesystem in use leaves it
    snapshot_of(images["base"], images["changed"], images["overlay"])
    status, out, _ = run_merge(capsys, images["overlay"], "--base", images["base"], "--out", tmp_path / "new.img")
    assert status == 0
    assert out.splitlines()[1:] == ["journal replayed (the filesystem was in use when the overlay was last written), "
                                    "as a mount would", "e2fsck -fn: clean"]


def test_runs_join_chunks_consecutive_in_both_files() -> None:
    from array import array

    table = cow.CowTable(8, array("Q", [10, 11, 12, 40, 13, 41]), array("Q", [2, 3, 4, 5, 6, 7]), 1)
    assert list(merge.runs(table)) == [(10, 2, 3), (40, 5, 1), (13, 6, 1), (41, 7, 1)]
    long = cow.CowTable(8, array("Q", range(300)), array("Q", range(2, 302)), 2)
    assert list(merge.runs(long)) == [(0, 2, 256), (256, 258, 44)]


def test_the_last_chunk_is_cut_at_the_end_of_the_base(tmp_path: Path) -> None:
    from array import array

    src, dst = tmp_path / "cow", tmp_path / "out"
    src.write_bytes(bytes(8192) + b"a" * 4096 + b"b" * 4096)
    dst.write_bytes(b"." * 6000)
    table = cow.CowTable(8, array("Q", [0, 1]), array("Q", [2, 3]), 1)
    s, d = os.open(src, os.O_RDONLY), os.open(dst, os.O_RDWR)
    try:
        assert merge.apply_changes(table, s, d, 6000) == 6000
    finally:
        os.close(s)
        os.close(d)
    assert dst.read_bytes() == b"a" * 4096 + b"b" * 1904

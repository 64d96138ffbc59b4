"""The overlay tools against the host kernel's real objects (root; loop devices and ext4, no
device-mapper): create on a mounted filesystem, named from its device's superblock; a COW held by a
loop device refused by resize and merge; the merge of a filesystem copied while mounted, whose
journal wants replay."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.linux import loop, mount
from pylive.probe import image_identity, read_identity

from ..unit.test_overlay_merge import snapshot_of
from .test_kernel_layer import capability  # noqa: F401 - skips (or fails in CI) without root and loop devices

pytestmark = pytest.mark.privileged
MIB = 1 << 20
PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def tool(*cmd: str | Path) -> str:
    return subprocess.run([os.fspath(c) for c in cmd], check=True, capture_output=True, text=True,
                          env=dict(os.environ, PATH=PATH)).stdout


@pytest.fixture
def mounted_ext4(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """An ext4 image on a loop device, mounted: (device, mount point, image)."""
    image, target = tmp_path / "stick.img", tmp_path / "stick"
    tool("mkfs.ext4", "-q", "-L", "LIVE", image, "64M")
    target.mkdir()
    node = loop.attach_loop(os.fspath(image), readonly=False)
    try:
        mount.mount(node, os.fspath(target), "ext4", ())
        try:
            yield node, target, image
        finally:
            mount.umount(os.fspath(target), lazy=False)
    finally:
        loop.detach_loop(node)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    status = main(["overlay", *(os.fspath(a) for a in argv)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_create_on_a_mounted_stick(mounted_ext4: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    node, target, _ = mounted_ext4
    uuid = read_identity(node).uuid
    status, out, err = run(capsys, "create", "--size", "16M", target)
    assert (status, err) == (0, "")
    made = target / "LiveOS" / f"overlay-LIVE-{uuid}"
    assert out.splitlines()[1:] == [f"named after the live medium {node}: LABEL='LIVE', UUID={uuid}",
                                    "boot with: rd.live.overlay=LABEL=LIVE"]
    assert made.stat().st_size == 16 * MIB and not any(made.read_bytes())
    status, _, err = run(capsys, "create", "--size", "16M", node)
    assert status == 1 and err == f"error: {node} is a block device mounted on {target}: give that directory: " \
                                  f"pylive overlay create {target}\n"


def test_a_cow_in_use_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cow = tmp_path / "cow"
    cow.write_bytes(bytes(8 * MIB))
    node = loop.attach_loop(os.fspath(cow), readonly=False)
    try:
        status, _, err = run(capsys, "resize", cow, "--size", "16M")
        assert status == 1 and err == f"error: {cow} is in use by {node}: do this when no live system uses it " \
                                      "(shut it down, or boot without the overlay)\n"
        status, _, err = run(capsys, "merge", cow, "--base", cow, "--out", tmp_path / "new.img")
        assert status == 1 and f"is in use by {node}" in err
    finally:
        loop.detach_loop(node)
    assert cow.stat().st_size == 8 * MIB and not (tmp_path / "new.img").exists()


def test_a_filesystem_left_in_use_gets_its_journal_replayed(mounted_ext4: tuple[str, Path, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, target, image = mounted_ext4
    base = tmp_path / "base.img"
    shutil.copyfile(image, base)  # as mounted, before the writes
    (target / "pylive-write-test").write_text("token-in-the-journal\n")
    os.sync()
    changed = tmp_path / "changed.img"
    shutil.copyfile(image, changed)  # what a power cut would leave: the journal holds the last transaction
    assert "needs_recovery" in tool("dumpe2fs", "-h", changed)
    cow = tmp_path / "cow"
    snapshot_of(base, changed, cow, 16 * MIB)
    (tmp_path / "cow.pylive-base").write_text(image_identity(os.fspath(base)) + "\n")
    status, out, _ = run(capsys, "merge", cow, "--base", base, "--out", tmp_path / "new.img")
    assert status == 0
    assert out.splitlines()[1:] == ["journal replayed (the filesystem was in use when the overlay was last written), "
                                    "as a mount would", "e2fsck -fn: clean"]
    assert tool("debugfs", "-R", "cat /pylive-write-test", tmp_path / "new.img") == "token-in-the-journal\n"

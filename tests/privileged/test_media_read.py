"""The media check and the RAM copy on real block devices, tmpfs and mounts (root; no device-mapper)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylive import mountinfo, planner, probe
from pylive.cmdline import Args
from pylive.errors import CopyFailed
from pylive.executor import Executor
from pylive.isomd5 import Status
from pylive.linux import loop, mount
from pylive.linux.copy import copy_with_sums
from pylive.options import parse_options
from pylive.plan import AttachLoop, CopyToRam, ReleaseMedium, ResizeTmpfs
from pylive.system import RealSystem

from ..unit.isoimages import make_image, need_isomd5sum, poke
from .test_kernel_layer import capability  # noqa: F401 - skips (or fails in CI) without root and loop devices

pytestmark = pytest.mark.privileged
MIB = 1 << 20


@pytest.fixture
def system() -> RealSystem:
    return RealSystem(console=None)  # progress into the log: the host's console is not ours


@contextlib.contextmanager
def attached(path: Path, readonly: bool = True) -> Iterator[str]:
    node = loop.attach_loop(os.fspath(path), readonly)
    try:
        yield node
    finally:
        loop.detach_loop(node)


@contextlib.contextmanager
def tmpfs(target: Path, *options: str) -> Iterator[Path]:
    target.mkdir(exist_ok=True)
    mount.mount("tmpfs", os.fspath(target), "tmpfs", options)
    try:
        yield target
    finally:
        mount.umount(os.fspath(target), lazy=True)


def test_media_check_of_a_block_device(system: RealSystem, tmp_path: Path) -> None:
    need_isomd5sum()
    image = make_image(tmp_path / "live.iso", 4097)
    with attached(image) as node:
        verdict = system.check_media(node)
        assert (verdict.status, verdict.total) == (Status.PASSED, (4097 - 15) * 2048)
    poke(image, 3000 * 2048)
    with attached(image) as node:
        verdict = system.check_media(node)
    assert verdict.status is Status.FAILED
    assert verdict.reason == "MD5 mismatch in fragment 16 of 20, within the first 77%"
    bare = make_image(tmp_path / "bare.iso", 600, implant=False)
    with attached(bare) as node:
        assert system.check_media(node).status is Status.NO_CHECKSUM


def test_copy_from_a_block_device_reads_its_whole_size(tmp_path: Path) -> None:
    image = tmp_path / "medium.img"
    image.write_bytes(os.urandom(5 * MIB))
    with attached(image) as node:
        sums = copy_with_sums(node, os.fspath(tmp_path / "copy"))
    assert sums.size == 5 * MIB
    assert (tmp_path / "copy").read_bytes() == image.read_bytes()


def test_run_is_grown_with_its_flags_kept_and_the_copy_verified(system: RealSystem, tmp_path: Path,
                                                               pylive_logs: pytest.LogCaptureFixture) -> None:
    caplog = pylive_logs
    src = tmp_path / "squashfs.img"
    src.write_bytes(os.urandom(6 * MIB + 4096))
    opts = parse_options(Args.from_text("root=live:CDLABEL=X rd.live.ram rd.minmem=2"))
    with tmpfs(tmp_path / "run", "nosuid", "nodev", "mode=0755", "size=2m") as run:
        room = system.fs_space(os.fspath(run))
        assert room is not None and (room.mountpoint, room.fstype, room.size_mib) == (os.fspath(run), "tmpfs", 2)
        dest = os.fspath(run / "squashed.img")
        steps = planner.plan_copy_to_ram(opts, "rd.live.ram", os.fspath(src), dest, image_bytes=src.stat().st_size,
                                         mem_total_mib=4096, room=room)
        assert steps[0] == ResizeTmpfs(os.fspath(run), 9, 2)  # used 0 + 7 MiB + rd.minmem 2
        with Executor(system) as ex:
            ex.run(steps)
            assert Path(dest).read_bytes() == src.read_bytes()
            grown = mountinfo.mount_of(Path("/"), os.fspath(run))
            assert grown is not None and {"nosuid", "nodev"} <= set(grown.options)
            assert os.statvfs(run).f_blocks * os.statvfs(run).f_frsize == 9 * MIB
        # no commit: the rollback removes the copy and gives /run its size back
        assert not Path(dest).exists()
        assert os.statvfs(run).f_blocks * os.statvfs(run).f_frsize == 2 * MIB
    assert any(m.startswith(f"copied {src} to RAM as {dest} and verified it: 6 MiB in ") for m in caplog.messages)


def test_a_full_tmpfs_is_one_line_and_leaves_nothing(system: RealSystem, tmp_path: Path) -> None:
    src = tmp_path / "squashfs.img"
    src.write_bytes(os.urandom(3 * MIB))
    with tmpfs(tmp_path / "run", "size=1m") as run:
        dest = os.fspath(run / "squashed.img")
        with pytest.raises(CopyFailed) as e, Executor(system) as ex:
            ex.run((CopyToRam(os.fspath(src), dest),))
        assert str(e.value) == (f"rd.live.ram: no room in RAM for the copy of {src} (3 MiB) at {dest}: give the "
                                "machine more memory, or boot without rd.live.ram")
        assert os.listdir(run) == []


def _squashfs_medium(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "LiveOS").mkdir(parents=True)
    (tree / "LiveOS/squashfs.img").write_bytes(os.urandom(2 * MIB))
    medium = tmp_path / "medium.img"
    subprocess.run(["mksquashfs", tree, medium, "-quiet", "-noappend", "-no-progress", "-noI", "-noD"], check=True)
    return medium


def test_the_medium_is_released_once_the_root_reads_from_ram(system: RealSystem, tmp_path: Path,
                                                            pylive_logs: pytest.LogCaptureFixture) -> None:
    caplog = pylive_logs
    live = tmp_path / "live"
    live.mkdir()
    with attached(_squashfs_medium(tmp_path)) as medium, tmpfs(tmp_path / "run") as run:
        mount.mount(medium, os.fspath(live), "squashfs", ("ro",))
        try:
            copy = os.fspath(run / "squashed.img")
            with Executor(system) as ex:
                ex.run((CopyToRam(os.fspath(live / "LiveOS/squashfs.img"), copy),
                        AttachLoop(copy, True, planner.SQUASH_LOOP), ReleaseMedium(os.fspath(live))))
                assert not os.path.ismount(live)
                node = ex.handles["squashfs-loop"]
                with open(node, "rb") as f:
                    assert f.read(16) == Path(copy).read_bytes()[:16]
        finally:
            if os.path.ismount(live):
                mount.umount(os.fspath(live))
    assert (f"the live medium is no longer used and was unmounted from {live}: it can be removed"
            in caplog.messages)


def test_a_busy_medium_stays_mounted_with_a_warning(system: RealSystem, tmp_path: Path,
                                                   pylive_logs: pytest.LogCaptureFixture) -> None:
    caplog = pylive_logs
    live = tmp_path / "live"
    live.mkdir()
    with attached(_squashfs_medium(tmp_path)) as medium:
        mount.mount(medium, os.fspath(live), "squashfs", ("ro",))
        try:
            with attached(live / "LiveOS/squashfs.img"), Executor(system) as ex:  # like a COW file on the medium
                ex.run((ReleaseMedium(os.fspath(live)),))
                ex.commit()
            assert os.path.ismount(live)
        finally:
            mount.umount(os.fspath(live))
    assert (f"the live medium stays mounted at {live} (umount: Device or resource busy): it cannot be removed while "
            "the system runs") in caplog.messages


def test_parent_disk_of_a_partition(tmp_path: Path) -> None:
    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk not installed (fdisk package)")
    disk = tmp_path / "stick.img"
    with open(disk, "wb") as f:
        f.truncate(8 * MIB)
    subprocess.run(["sfdisk", "-q", disk], input="label: gpt\n,4M\n", text=True, check=True)
    node = subprocess.run(["losetup", "-P", "-f", "--show", "-r", disk], capture_output=True, text=True,
                          check=True).stdout.strip()
    try:
        for _ in range(100):
            if os.path.exists(f"/sys/class/block/{Path(node).name}p1"):
                break
            time.sleep(0.02)
        else:
            pytest.skip("this kernel makes no partitions of a partitioned loop device (no partition table support)")
        assert probe.parent_disk(Path("/"), f"{node}p1") == node
        assert probe.parent_disk(Path("/"), node) is None
    finally:
        loop.detach_loop(node)

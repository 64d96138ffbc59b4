"""Persistent overlays through pylive, over chained boots of the same disk: a device-mapper COW
file and an OverlayFS directory on a second disk (LABEL=persist), reset, and the refusal of an
overlay made for another base image. Each boot asserts what the guest saw, including what the
previous boot wrote to the live root."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from qemu import BUILD_DIR, NO_SHELL_ARGS, boot
from qemu.media import build_uncompressed_iso, make_ext4_image
from qemu.pylive_initrd import build_pylive_initrd

PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


@pytest.fixture(scope="session")
def pylive_initrd(kernel):
    return build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-systemd.img")


def persist_disk(workdir: Path, files: dict[str, int | None]) -> Path:
    """An ext4 disk labelled 'persist' holding files (size in bytes, sparse zeros) and dirs (None)."""
    tree = workdir / "persist-tree"
    for rel, size in files.items():
        p = tree / rel
        if size is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "wb") as f:
                f.truncate(size)
    return make_ext4_image(tree, workdir / "persist.img", 256, "persist")


def debugfs(disk: Path, command: str) -> str:
    return subprocess.run(["debugfs", "-R", command, str(disk)], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PATH=PATH)).stdout


def run_boot(kernel, initrd, iso, disk, extra: str, *, workdir: Path, name: str):
    return boot(kernel, initrd, f'"root=live:CDLABEL={iso.label}" {extra} {NO_SHELL_ARGS}', cdrom=iso.path,
                disks=[(disk, "persist")], workdir=workdir / name, timeout_s=240)


def written(report) -> tuple[str, str]:
    """(what the previous boot left, what this boot wrote)."""
    token = report["root-write"].splitlines()[0].removeprefix("token=")
    return report.get("previous-write", "").strip(), token


def test_dm_cow_file_persists_and_resets(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    disk = persist_disk(qemu_workdir, {name: 128 << 20})
    option = "rd.live.overlay=LABEL=persist"

    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    table = r1.report["dmsetup-table"]
    assert re.search(r"live-rw: 0 131072 snapshot 7:\d+ 7:\d+ PO 8", table), table
    cow = [ln for ln in r1.report["loops"].splitlines() if ln.endswith(f"backing_file=/{name}")]
    assert len(cow) == 1 and " ro=0 " in cow[0] and "size=262144 " in cow[0], r1.report["loops"]
    previous, token1 = written(r1.report)
    assert previous == "" and r1.report["root-write"].splitlines()[2] == "match=yes"
    record = debugfs(disk, f'cat "/{name}.pylive-base"')
    assert re.fullmatch(r"size=\d+ sha256-64k=[0-9a-f]{32}\n", record), record

    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot2")
    assert r2.report, r2.console[-3000:]
    previous, token2 = written(r2.report)
    assert previous == token1  # what boot 1 wrote to the root is there after a reboot
    assert debugfs(disk, f'cat "/{name}.pylive-base"') == record

    r3 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " rd.live.overlay.reset",
                  workdir=qemu_workdir, name="boot3")
    assert r3.report, r3.console[-3000:]
    assert written(r3.report)[0] == ""  # reset: nothing from the earlier boots
    assert f"reset: the persistent overlay /run/initramfs/overlayfs/{name} is wiped" in r3.report["dmesg"]
    listing = debugfs(disk, "ls -l /LiveOS")
    assert name.split("/")[1] in listing and ".pylive-base" in listing


def test_overlayfs_dir_persists(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    disk = persist_disk(qemu_workdir, {name: None, "LiveOS/ovlwork": None})
    option = "rd.live.overlay=LABEL=persist"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    root = next(ln for ln in r1.report["mounts"].splitlines() if ln.split()[1] == "/")
    assert root.startswith("LiveOS_rootfs / overlay ")
    in_mounts = name.replace(" ", "\\040")  # /proc/mounts escapes spaces
    assert f"upperdir=/run/initramfs/overlayfs/{in_mounts}" in root
    assert "workdir=/run/initramfs/overlayfs/LiveOS/ovlwork" in root
    _, token1 = written(r1.report)
    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot2")
    assert r2.report, r2.console[-3000:]
    assert written(r2.report)[0] == token1
    assert "pylive-write-test" in debugfs(disk, f'ls "/{name}"')  # the file itself sits in the upper dir


def test_overlay_for_another_image_is_refused(kernel, pylive_initrd, live_iso, test_root, qemu_workdir):
    disk = persist_disk(qemu_workdir, {"LiveOS/cow": 64 << 20})
    option = "rd.live.overlay=LABEL=persist:/LiveOS/cow"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    before = debugfs(disk, "stat /LiveOS/cow")
    other = build_uncompressed_iso(BUILD_DIR / "media" / "uncompressed.iso", "PYLIVE RAW", root_tree=test_root)
    r2 = run_boot(kernel, pylive_initrd, other, disk, option, workdir=qemu_workdir, name="boot2")
    assert not r2.report and not r2.timed_out
    lines = [ln.split("] ", 1)[1] for ln in r2.console.splitlines() if "was made for another live image" in ln]
    assert len(lines) == 1, r2.console[-3000:]
    assert lines[0].startswith(
        "pylive: the persistent overlay /LiveOS/cow was made for another live image (recorded base size=")
    assert lines[0].endswith("boot the image it belongs to, or add rd.live.overlay.reset to start the overlay afresh")
    after = debugfs(disk, "stat /LiveOS/cow")
    mtime = re.compile(r"mtime: .*")
    assert mtime.findall(before) == mtime.findall(after)  # the overlay was not touched

"""Reaching the live ISO as a file, through pylive in QEMU: `iso-scan/filename=` on a disk's ext4
partition whose journal needs recovery (nothing may be written to it), the `<devspec>:<path>`
extension, a path that is not there, and `root=live:/live.iso` inside the initramfs.

Debian 12's dracut can hang on the iso-scan boot (dracut-live.md §5.1); the plain case runs five
boots in a row here."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from guestreport import mounts

from qemu import NO_SHELL_ARGS, boot
from qemu._util import run
from qemu.initrd import with_extra_files
from qemu.media import assemble_gpt_disk, make_ext4_image

MIB = 1 << 20


@pytest.fixture(scope="module")
def iso_disk(live_iso, tmp_path_factory) -> Path:
    """GPT disk: p1 ext4 'other' (no ISO), p2 ext4 'data' holding /isos/live.iso, with its journal
    marked as needing recovery (a plain read-only mount would replay it and write to the disk)."""
    work = tmp_path_factory.mktemp("isoscan")
    (work / "p1").mkdir()
    p1 = make_ext4_image(work / "p1", work / "p1.img", 16, "other")
    (work / "p2/isos").mkdir(parents=True)
    shutil.copyfile(live_iso.path, work / "p2/isos/live.iso")
    size_mb = live_iso.path.stat().st_size // MIB + 24
    p2 = make_ext4_image(work / "p2", work / "p2.img", size_mb, "data")
    run(["debugfs", "-w", "-R", "feature needs_recovery", p2])
    disk = assemble_gpt_disk(work / "disk.img", [p1, p2])
    return disk


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_iso_boot(kernel, initrd, disk: Path, extra: str, workdir: Path):
    return boot(kernel, initrd, f"{extra} {NO_SHELL_ARGS}", disks=[(disk, "isohost")], workdir=workdir,
                timeout_s=240)


def test_iso_scan_five_boots_in_a_row(kernel, pylive_initrd, live_iso, iso_disk, qemu_workdir):
    before = sha(iso_disk)
    for i in range(5):
        r = run_iso_boot(kernel, pylive_initrd, iso_disk,
                         f'iso-scan/filename=/isos/live.iso "root=live:CDLABEL={live_iso.label}"',
                         qemu_workdir / f"boot{i}")
        assert r.report_complete, (i, r.console[-3000:])
        source, _, fstype, options = mounts(r.report)["/run/initramfs/isoscan"][:4]
        assert re.fullmatch(r"/dev/sd[a-z]2", source) and fstype == "ext4", (source, fstype)
        assert options.split(",")[0] == "ro" and "norecovery" in options.split(","), options
        assert re.search(rf"isoscandev -> {source}$", r.report["run-initramfs"], re.M), r.report["run-initramfs"]
        iso_loops = [ln for ln in r.report["loops"].splitlines()
                     if ln.endswith("backing_file=/run/initramfs/isoscan/isos/live.iso")]
        assert len(iso_loops) == 1 and " ro=1 " in iso_loops[0], r.report["loops"]
        loop = iso_loops[0].split()[0]
        assert r.report["livedev"].strip() == f"/dev/{loop}"
        assert mounts(r.report)["/run/initramfs/live"][:3] == [f"/dev/{loop}", "/run/initramfs/live", "iso9660"]
        assert re.search(r"live-rw: 0 131072 snapshot 7:\d+ 7:\d+ PO 8", r.report["dmsetup-table"])
        assert r.report["root-write"].splitlines()[2] == "match=yes"
        assert sha(iso_disk) == before, f"boot {i} wrote to the disk that holds the ISO"


def test_iso_scan_on_one_filesystem_with_overlayfs(kernel, pylive_initrd, live_iso, iso_disk, qemu_workdir):
    before = sha(iso_disk)
    r = run_iso_boot(kernel, pylive_initrd, iso_disk,
                     f"iso-scan/filename=LABEL=data:/isos/live.iso root=live:UUID={live_iso.uuid} rd.overlay",
                     qemu_workdir / "boot")
    assert r.report_complete, r.console[-3000:]
    assert mounts(r.report)["/"][:3] == ["LiveOS_rootfs", "/", "overlay"]
    assert mounts(r.report)["/run/initramfs/isoscan"][2] == "ext4"
    assert r.report["root-write"].splitlines()[2] == "match=yes"
    assert sha(iso_disk) == before


def test_iso_scan_path_not_found_says_what_was_searched(kernel, pylive_initrd, live_iso, iso_disk, qemu_workdir):
    r = run_iso_boot(kernel, pylive_initrd, iso_disk,
                     f'iso-scan/filename=/isos/other.iso "root=live:CDLABEL={live_iso.label}" rd.retry=8',
                     qemu_workdir / "boot")
    assert not r.report and not r.timed_out
    lines = [ln.split("] ", 1)[1] for ln in r.console.splitlines()
             if "] pylive: " in ln and "no filesystem holds" in ln]
    assert len(lines) == 1, r.console[-3000:]
    assert lines[0].startswith("pylive: iso-scan/filename=/isos/other.iso: no filesystem holds /isos/other.iso "
                               "after 8s (looked in: "), lines[0]
    assert "ext4" in lines[0] and lines[0].endswith("or raise rd.retry"), lines[0]


def test_iso_scan_without_systemd(kernel, nosd_initrd, live_iso, iso_disk, qemu_workdir):
    before = sha(iso_disk)
    r = run_iso_boot(kernel, nosd_initrd, iso_disk,
                     f'iso-scan/filename=/isos/live.iso "root=live:CDLABEL={live_iso.label}"', qemu_workdir / "boot")
    assert r.report_complete, r.console[-3000:]
    assert mounts(r.report)["/run/initramfs/isoscan"][2] == "ext4"
    assert r.report["root-write"].splitlines()[2] == "match=yes"
    assert "systemd[1]" not in r.report["dmesg"].split("pylive-test-init")[0]
    assert sha(iso_disk) == before


def test_iso_file_inside_the_initramfs(kernel, pylive_initrd, live_iso, qemu_workdir):
    """root=live:/live.iso: the ISO rides in a second initramfs archive (the kernel unpacks both)."""
    initrd = with_extra_files(pylive_initrd, {"live.iso": live_iso.path}, qemu_workdir / "initrd-with-iso.img")
    r = boot(kernel, initrd, f"root=live:/live.iso {NO_SHELL_ARGS}", workdir=qemu_workdir / "boot",
             timeout_s=240, memory_mb=2048)
    assert r.report_complete, r.console[-3000:]
    # switch-root empties the initramfs: the file is gone from the tree, the loop device keeps it
    iso_loops = [ln for ln in r.report["loops"].splitlines() if "backing_file=/live.iso" in ln]
    assert len(iso_loops) == 1 and " ro=1 " in iso_loops[0], r.report["loops"]
    assert mounts(r.report)["/run/initramfs/live"][2] == "iso9660"
    assert r.report["root-write"].splitlines()[2] == "match=yes"

"""More ways to reach the live image, through pylive in QEMU: a hybrid ISO written to a whole disk
(ISO 9660 on the disk, partitions beside it), a partition that is itself the squashfs, a squashfs
image inside the initramfs (`root=live:/live.img`), 059's legacy LiveOS/ext3fs.img, and
`rd.live.overlay=none rw` writing straight into an uncompressed image on a USB disk."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from guestreport import loops, mounts, pylive_lines, root_ok, written

from qemu import NO_SHELL_ARGS, boot
from qemu._util import run
from qemu.initrd import with_extra_files
from qemu.media import assemble_gpt_disk, make_ext4_image, make_iso, make_squashfs

MIB = 1 << 20


@pytest.fixture(scope="module")
def squashfs_img(test_root, tmp_path_factory) -> Path:
    """LiveOS/squashfs.img as on the Fedora ISO: a squashfs holding LiveOS/rootfs.img (ext4)."""
    work = tmp_path_factory.mktemp("squash")
    make_ext4_image(test_root, work / "src/LiveOS/rootfs.img", 64, "pylive-root")
    return make_squashfs(work / "src", work / "squashfs.img")


def run_boot(kernel, initrd, cmdline: str, workdir: Path, **kw):
    return boot(kernel, initrd, f"{cmdline} {NO_SHELL_ARGS}", workdir=workdir, timeout_s=240, **kw)


def test_hybrid_iso_on_a_whole_disk_with_check(kernel, pylive_initrd, squashfs_img, qemu_workdir):
    tree = qemu_workdir / "isoroot/LiveOS"
    tree.mkdir(parents=True)
    os.link(squashfs_img, tree / "squashfs.img")
    efi = qemu_workdir / "efi.img"
    with open(efi, "wb") as f:
        f.truncate(4 * MIB)
    run(["mkfs.vfat", "-n", "EFIBOOT", efi])
    disk = qemu_workdir / "hybrid.img"
    # as Fedora's ISOs: the ISO 9660 at the start of the disk, an EFI partition appended beside it
    run(["xorriso", "-as", "mkisofs", "-quiet", "-o", disk, "-V", "PYLIVE HYB", "-R", "-J",
          "-partition_offset", "16", "-append_partition", "2", "0xef", efi, qemu_workdir / "isoroot"])
    run(["implantisomd5", disk])
    r = run_boot(kernel, pylive_initrd, '"root=live:CDLABEL=PYLIVE HYB" rd.live.check', qemu_workdir / "boot",
                 disks=[(disk, "hybrid")])
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    devs = {ln.split()[0] for ln in r.report["blockdevs"].splitlines()}
    assert {"sda", "sda1", "sda2"} <= devs, devs
    source = mounts(r.report)["/run/initramfs/live"]
    assert re.fullmatch(r"/dev/sda1?", source[0]) and source[2] == "iso9660", source
    passed = pylive_lines(r.console, "passed its media check")
    assert len(passed) == 1 and passed[0].startswith("pylive: rd.live.check: /dev/sda passed its media check"), passed


def test_partition_that_is_the_squashfs(kernel, pylive_initrd, squashfs_img, qemu_workdir):
    disk = assemble_gpt_disk(qemu_workdir / "sq.img", [squashfs_img], ["pylive-squash"])
    r = run_boot(kernel, pylive_initrd, "root=live:PARTLABEL=pylive-squash", qemu_workdir / "boot",
                 disks=[(disk, "sqdev")])
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    assert "/run/initramfs/live" not in mounts(r.report)  # no filesystem around the image: nothing to mount there
    by_file = loops(r.report)
    assert by_file["/dev/sda1"]["ro"] == "1", by_file  # the partition is the squashfs (dracut: SQUASHED=$livedev)
    # the squashfs mount is detached lazily once rootfs.img is attached, as with an ISO
    assert by_file["/LiveOS/rootfs.img"]["ro"] == "1", by_file
    assert pylive_lines(r.console, "live medium PARTLABEL=pylive-squash is /dev/sda1 (squashfs)")
    assert re.search(r"live-rw: 0 131072 snapshot 7:\d+ 7:\d+ PO 8", r.report["dmsetup-table"])


def test_partition_that_is_the_squashfs_copied_to_ram(kernel, pylive_initrd, squashfs_img, qemu_workdir):
    disk = assemble_gpt_disk(qemu_workdir / "sq.img", [squashfs_img], ["pylive-squash"])
    r = run_boot(kernel, pylive_initrd, "root=live:PARTLABEL=pylive-squash rd.live.ram", qemu_workdir / "boot",
                 disks=[(disk, "sqdev")], memory_mb=2048)
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    by_file = loops(r.report)
    assert "/dev/sda1" not in by_file and by_file["/run/initramfs/squashed.img"]["ro"] == "1", by_file
    assert len(pylive_lines(r.console, "the live medium is no longer used: it can be removed")) == 1
    assert not pylive_lines(r.console, "stays mounted"), r.console[-3000:]


def test_squashfs_image_inside_the_initramfs(kernel, pylive_initrd, squashfs_img, qemu_workdir):
    initrd = with_extra_files(pylive_initrd, {"live.img": squashfs_img}, qemu_workdir / "initrd-with-img.img")
    r = run_boot(kernel, initrd, "root=live:/live.img", qemu_workdir / "boot", memory_mb=2048)
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    assert any("backing_file=/live.img" in ln and " ro=1 " in ln for ln in r.report["loops"].splitlines()), \
        r.report["loops"]


def test_legacy_ext3fs_img(kernel, pylive_initrd, test_root, qemu_workdir):
    """dracut 059 still boots LiveOS/ext3fs.img inside the squashfs (removed in dracut-ng 110)."""
    make_ext4_image(test_root, qemu_workdir / "src/LiveOS/ext3fs.img", 64, "pylive-root")
    make_squashfs(qemu_workdir / "src", qemu_workdir / "isoroot/LiveOS/squashfs.img")
    iso = make_iso(qemu_workdir / "isoroot", qemu_workdir / "ext3fs.iso", "PYLIVE EXT3FS")
    r = run_boot(kernel, pylive_initrd, '"root=live:CDLABEL=PYLIVE EXT3FS"', qemu_workdir / "boot", cdrom=iso)
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    assert loops(r.report)["/LiveOS/ext3fs.img"]["ro"] == "1"  # inside the squashfs, detached lazily


def test_no_overlay_writes_into_the_image_on_the_disk(kernel, pylive_initrd, test_root, qemu_workdir):
    make_ext4_image(test_root, qemu_workdir / "stick/LiveOS/rootfs.img", 64, "pylive-root")
    part = make_ext4_image(qemu_workdir / "stick", qemu_workdir / "part.img", 128, "PYLIVE RW")
    disk = assemble_gpt_disk(qemu_workdir / "stick.img", [part], ["pylive-rw"])
    cmdline = '"root=live:LABEL=PYLIVE RW" rd.live.overlay=none rw'
    r1 = run_boot(kernel, pylive_initrd, cmdline, qemu_workdir / "boot1", disks=[(disk, "stick")])
    assert r1.report_complete, r1.console[-3000:]
    root_ok(r1.report)
    previous, token1 = written(r1.report)
    assert previous == ""
    assert re.search(r"^live-rw: 0 131072 linear 7:\d+ 0$", r1.report["dmsetup-table"], re.M), \
        r1.report["dmsetup-table"]
    assert loops(r1.report)["/run/initramfs/live/LiveOS/rootfs.img"]["ro"] == "0"
    assert mounts(r1.report)["/run/initramfs/live"][3].split(",")[0] == "rw"
    r2 = run_boot(kernel, pylive_initrd, cmdline, qemu_workdir / "boot2", disks=[(disk, "stick")])
    assert r2.report_complete, r2.console[-3000:]
    root_ok(r2.report)
    assert written(r2.report)[0] == token1  # written into the image itself

    # without rw it refuses, in one line, instead of failing on the first write
    r3 = run_boot(kernel, pylive_initrd, '"root=live:LABEL=PYLIVE RW" rd.live.overlay=none', qemu_workdir / "boot3",
                  disks=[(disk, "stick")])
    assert not r3.report and not r3.timed_out
    assert len(pylive_lines(r3.console, "but the live medium is mounted read-only: add rw")) == 1, \
        r3.console[-3000:]

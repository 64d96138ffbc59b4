"""More media through pylive: an uncompressed rootfs.img, a flattened EROFS image, and USB-style
GPT disks (ext4 and vfat) named by PARTUUID, PARTLABEL and a by-id path. The guest reports."""

from __future__ import annotations

import re

import pytest
from guestreport import mounts as mounts_of
from guestreport import root_ok

from qemu import BUILD_DIR, NO_SHELL_ARGS, boot, parse_kv_lines
from qemu.media import build_erofs_flat_iso, build_live_disk, build_uncompressed_iso


def test_uncompressed_rootfs_img(kernel, pylive_initrd, test_root, qemu_workdir):
    iso = build_uncompressed_iso(BUILD_DIR / "media" / "uncompressed.iso", "PYLIVE RAW", root_tree=test_root)
    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={iso.label}" {NO_SHELL_ARGS}', cdrom=iso.path,
             workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    root_ok(r.report)
    assert mounts_of(r.report)["/"][:3] == ["/dev/mapper/live-rw", "/", "ext4"]
    loops = {d["name"]: d for d in parse_kv_lines(r.report["loops"])}
    base = [d for d in loops.values() if d["backing_file"] == "/run/initramfs/live/LiveOS/rootfs.img"]
    assert len(base) == 1 and base[0]["ro"] == "1"  # straight from the medium, no squashfs
    assert not any("squashfs" in d["backing_file"] for d in loops.values())
    assert re.search(r"live-rw: 0 131072 snapshot 7:\d+ 7:\d+ PO 8", r.report["dmsetup-table"])


def test_flattened_erofs(kernel, pylive_initrd, test_root, qemu_workdir):
    iso = build_erofs_flat_iso(BUILD_DIR / "media" / "erofs-flat.iso", "PYLIVE EROFS", root_tree=test_root)
    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={iso.label}" {NO_SHELL_ARGS}', cdrom=iso.path,
             workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    root_ok(r.report)
    mounts = mounts_of(r.report)
    assert mounts["/"][:3] == ["LiveOS_rootfs", "/", "overlay"]
    assert mounts["/run/rootfsbase"][2] == "erofs"
    assert "/run/initramfs/squashfs" not in mounts  # lazily unmounted, as dracut does: the bind holds it


@pytest.mark.parametrize(
    ("fstype", "how"),
    [("ext4", "partuuid"), ("ext4", "by-id"), ("vfat", "partlabel"), ("vfat", "label")],
)
def test_usb_disk(*, fstype, how, kernel, pylive_initrd, test_root, qemu_workdir):
    disk = build_live_disk(BUILD_DIR / "media" / f"live-disk-{fstype}.img",
                           "PYLIVE" if fstype == "vfat" else "PYLIVE TEST 1", root_tree=test_root, fstype=fstype)
    serial = f"stick{fstype}"
    root = {
        "partuuid": f"root=live:PARTUUID={disk.partuuid}",
        "partlabel": "root=live:PARTLABEL=pylive-live",
        "label": f'"root=live:LABEL={disk.label}"',
        # a /dev path that udev makes from the disk's serial
        "by-id": f"root=live:/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_{serial}-part1",
    }[how]
    r = boot(kernel, pylive_initrd, f"{root} {NO_SHELL_ARGS}", disks=[(disk.path, serial)], workdir=qemu_workdir,
             timeout_s=240)
    assert r.report, r.console[-3000:]
    root_ok(r.report)
    mounts = mounts_of(r.report)
    assert mounts["/run/initramfs/live"][0] == "/dev/sda1" and mounts["/run/initramfs/live"][2] == fstype
    assert mounts["/"][0] == "/dev/mapper/live-rw"
    assert r.report["livedev"].strip() == root.split("live:", 1)[1].strip('"').replace(
        f"PARTUUID={disk.partuuid}", f"/dev/disk/by-partuuid/{disk.partuuid}").replace(
        "PARTLABEL=pylive-live", "/dev/disk/by-partlabel/pylive-live").replace(
        f"LABEL={disk.label}", f"/dev/disk/by-label/{disk.label.replace(' ', chr(92) + 'x20')}")

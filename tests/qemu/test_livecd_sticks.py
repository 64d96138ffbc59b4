"""Sticks made the way livecd-iso-to-disk makes them (qemu/sticks.py), booted with the arguments it
writes into their boot menus: the image, its persistent overlay and the persistent /home all on the
one stick. Each test chains boots of its own stick and asserts what the guest saw and what is left
on the stick."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from guestreport import loops, mounts, pylive_lines, root_ok, written

from qemu import BUILD_DIR, NO_SHELL_ARGS, boot
from qemu._util import run
from qemu.sticks import GPT_TYPE_ESP, LiveDir, Stick, build_stick


def boot_stick(kernel, initrd, stick: Stick, extra: str, workdir: Path, *, name: str):
    r = boot(kernel, initrd, f"{stick.root_args} {extra} {NO_SHELL_ARGS}", disks=[(stick.path, "stick")],
             workdir=workdir / name, timeout_s=240)
    assert r.report, r.console[-3000:]
    root_ok(r.report)
    return r


def livesys(report: dict[str, str]) -> dict[str, str]:
    """The livesys exercise's key=value lines (qemu/guest/init.sh)."""
    return dict(ln.split("=", 1) for ln in report["livesys"].splitlines() if "=" in ln)


def stick_files(stick: Stick, workdir: Path) -> dict[str, str]:
    """Every file on the (ext4) stick → its sha256, read on the host with debugfs (no mount)."""
    n = len(list(workdir.glob("rdump-*")))
    part, out = stick.partition(workdir / f"part-{n}.img"), workdir / f"rdump-{n}"
    out.mkdir()
    run(["debugfs", "-R", f"rdump / {out}", part], quiet=True)
    part.unlink()
    return {str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(out.rglob("*")) if f.is_file()}


def assert_cow_on_stick(report: dict[str, str], overlay: str) -> None:
    """live-rw is a persistent snapshot whose COW is the overlay file on the stick, read-write."""
    table = report["dmsetup-table"]
    assert re.search(r"live-rw: 0 131072 snapshot 7:\d+ 7:\d+ PO 8", table), table
    cow = loops(report)[f"/{overlay}"]
    assert cow["ro"] == "0", cow
    assert mounts(report)["/run/initramfs/live"][0] == "/dev/sda1"


def test_overlay_and_home_on_one_stick_survive_reboot_and_reset(kernel, pylive_initrd, test_root,
                                                                 qemu_workdir):
    live = LiveDir(overlay_mb=64, home_mb=16)
    stick = build_stick(qemu_workdir / "stick.img", root_tree=test_root, media_dir=BUILD_DIR / "media",
                        dirs=(live,))
    overlay = stick.overlay_name(live)

    r1 = boot_stick(kernel, pylive_initrd, stick, "pylive.test=livesys", qemu_workdir, name="boot1")
    assert_cow_on_stick(r1.report, overlay)
    home1 = livesys(r1.report)
    assert home1["home-previous"] == "" and home1["home-written"].startswith("home-"), r1.report["livesys"]
    assert home1["home-mount"].startswith("/dev/loop"), r1.report["livesys"]
    _, token1 = written(r1.report)

    r2 = boot_stick(kernel, pylive_initrd, stick, "pylive.test=livesys", qemu_workdir, name="boot2")
    assert written(r2.report)[0] == token1  # the root's change persisted in the stick's overlay
    home2 = livesys(r2.report)
    assert home2["home-previous"] == home1["home-written"]  # and /home in home.img
    assert pylive_lines(r2.console, "of 64 MiB used"), r2.console[-3000:]

    # reset, with livesys told to leave /home alone: only the overlay file changes on the stick
    before = stick_files(stick, qemu_workdir)
    r3 = boot_stick(kernel, pylive_initrd, stick, "rd.live.overlay.reset nopersistenthome pylive.test=livesys",
                    qemu_workdir, name="boot3-reset")
    assert written(r3.report)[0] == ""
    assert livesys(r3.report) == {"home": "none"}
    after = stick_files(stick, qemu_workdir)
    changed = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
    assert changed == {overlay}, changed
    assert before[f"{live.name}/home.img"] == after[f"{live.name}/home.img"]  # /home came through the reset


def test_multi_two_images_each_with_its_own_overlay(kernel, pylive_initrd, test_root, qemu_workdir):
    """--multi: two --livedir images on one stick, one of them --skipcompress (rootfs.img straight
    from the stick), each chosen with rd.live.dir and each with its own overlay."""
    f40, f41 = LiveDir("F40", overlay_mb=48), LiveDir("F41", skipcompress=True, overlay_mb=48)
    stick = build_stick(qemu_workdir / "stick.img", root_tree=test_root, media_dir=BUILD_DIR / "media",
                        dirs=(f40, f41))

    a1 = boot_stick(kernel, pylive_initrd, stick, "rd.live.dir=F40", qemu_workdir, name="boot1-F40")
    assert_cow_on_stick(a1.report, stick.overlay_name(f40))
    assert "/run/initramfs/live/F40/squashfs.img" in loops(a1.report)
    _, token_a = written(a1.report)

    before = stick_files(stick, qemu_workdir)
    b1 = boot_stick(kernel, pylive_initrd, stick, "rd.live.dir=F41", qemu_workdir, name="boot2-F41")
    assert_cow_on_stick(b1.report, stick.overlay_name(f41))
    base = loops(b1.report)["/run/initramfs/live/F41/rootfs.img"]
    assert base["ro"] == "1", base  # the uncompressed image is looped read-only from the stick
    assert not any("squashfs" in f for f in loops(b1.report)), b1.report["loops"]
    assert written(b1.report)[0] == ""  # F40's change is not in F41's root
    after = stick_files(stick, qemu_workdir)
    changed = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
    assert changed == {stick.overlay_name(f41), f"{stick.overlay_name(f41)}.pylive-base"}, changed

    a2 = boot_stick(kernel, pylive_initrd, stick, "rd.live.dir=F40", qemu_workdir, name="boot3-F40")
    assert written(a2.report)[0] == token_a  # F40 kept its own change, untouched by F41's boot


def test_efi_vfat_stick_with_overlay(kernel, pylive_initrd, test_root, qemu_workdir):
    """--efi on a FAT32 stick: a GPT whose one partition is an EFI System Partition holding
    EFI/BOOT beside LiveOS, with the overlay file (named from the FAT volume id) on it too."""
    live = LiveDir(overlay_mb=32)
    stick = build_stick(qemu_workdir / "stick.img", root_tree=test_root, media_dir=BUILD_DIR / "media",
                        dirs=(live,), fstype="vfat", efi=True)
    assert re.fullmatch(r"[0-9A-F]{4}-[0-9A-F]{4}", stick.uuid)
    table = json.loads(run(["sfdisk", "-J", stick.path], quiet=True).stdout)["partitiontable"]
    assert table["label"] == "gpt" and table["partitions"][0]["type"] == GPT_TYPE_ESP, table
    r1 = boot_stick(kernel, pylive_initrd, stick, "", qemu_workdir, name="boot1")
    assert_cow_on_stick(r1.report, stick.overlay_name(live))
    assert mounts(r1.report)["/run/initramfs/live"][2] == "vfat"
    _, token1 = written(r1.report)
    r2 = boot_stick(kernel, pylive_initrd, stick, "", qemu_workdir, name="boot2")
    assert written(r2.report)[0] == token1
    assert pylive_lines(r2.console, "of 32 MiB used"), r2.console[-3000:]

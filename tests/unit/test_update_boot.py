"""`pylive update-boot`: the version order, the newest kernel in fake live roots (Fedora, Debian), the
boot files named by real-world stick configurations (livecd-iso-to-disk's syslinux and EFI layouts,
GRUB, EXTLINUX), each refusal as one line, and the replacement carried out on a tree in tmp_path
(the stick "is mounted" through a mountinfo written here), including failures half way."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pylive.__main__ import main
from pylive.bootfiles import apply, kernels, loaderconf
from pylive.bootfiles.plan import NotALiveStick, describe, plan_update
from pylive.bootfiles.version import vercmp
from pylive.errors import EXIT_FAILED, EXIT_NOT_LIVE, LiveError

MIB = 1 << 20
OLD, NEW = "6.8.5-301.fc40.x86_64", "6.9.7-200.fc40.x86_64"

# livecd-iso-to-disk's syslinux.cfg (trimmed): paths relative to syslinux/, a check entry, memtest
SYSLINUX_CFG = """default vesamenu.c32
timeout 100
menu title Fedora-Workstation-Live-40
label linux0
  menu label ^Start Fedora-Workstation-Live 40
  kernel vmlinuz
  append initrd=initrd.img root=live:LABEL=LIVE rd.live.image rd.live.overlay=LABEL=LIVE quiet
menu default
label check0
  menu label Test this ^media & start Fedora-Workstation-Live 40
  kernel vmlinuz
  append initrd=initrd.img root=live:LABEL=LIVE rd.live.image rd.live.check quiet
label memtest
  menu label Run a ^memory test.
  kernel memtest
label local
  menu label Boot from ^local drive
  localboot 0xffff
"""
# livecd-iso-to-disk --efi: EFI/BOOT/grub.cfg, names from the top of the stick
GRUB_CFG = """set default="0"
function load_video {
  insmod all_video
}
search --no-floppy --set=root -l 'LIVE'
menuentry 'Start Fedora-Workstation-Live 40' --class fedora --class gnu-linux {
\tlinuxefi /images/pxeboot/vmlinuz root=live:LABEL=LIVE rd.live.image rd.live.overlay=LABEL=LIVE quiet
\tinitrdefi /images/pxeboot/initrd.img
}
submenu 'Troubleshooting -->' {
\tmenuentry 'Start in basic graphics mode' {
\t\tlinuxefi ($root)/images/pxeboot/vmlinuz root=live:LABEL=LIVE rd.live.image nomodeset
\t\tinitrdefi ($root)/images/pxeboot/initrd.img
\t}
\tmenuentry 'Boot an ISO file' {
\t\tloopback loop $isofile
\t\tlinux (loop)/images/pxeboot/vmlinuz iso-scan/filename=$isofile
\t\tinitrd (loop)/images/pxeboot/initrd.img
\t}
}
"""


# --- the version order ------------------------------------------------------------------------------

@pytest.mark.parametrize(("older", "newer"), [
    ("6.1.0-9-amd64", "6.1.0-13-amd64"),        # Debian's ABI number, as a number
    ("6.9.12-200.fc40", "6.10.0-100.fc40"),     # 10 > 9
    ("6.9.0-0.rc3.fc40", "6.9.0-1.fc40"),       # Fedora's pre-release release numbers
    ("6.9~rc1", "6.9"),                         # ~ before the release
    ("6.9", "6.9^20240501git"),                 # ^ after it
    ("1.a", "1.1"),                             # a number is newer than letters
    ("1.0", "1.0.1"),
    ("5.14.0-427.el9", "5.14.0-427.13.1.el9"),
])
def test_version_order(older: str, newer: str) -> None:
    assert vercmp(older, newer) == -1 and vercmp(newer, older) == 1


def test_versions_equal_as_rpm_has_them() -> None:
    assert vercmp("1.01", "1.1") == 0 and vercmp("1-0", "1.0") == 0 and vercmp("6.9", "6.9") == 0


@given(st.text("0123456789.-~^abc", max_size=12), st.text("0123456789.-~^abc", max_size=12))
def test_version_order_is_antisymmetric(a: str, b: str) -> None:
    assert vercmp(a, b) == -vercmp(b, a)


@given(st.lists(st.text("0123456789.~^ab", max_size=8), min_size=3, max_size=3))
def test_version_order_is_transitive(vs: list[str]) -> None:
    a, b, c = sorted(vs, key=functools.cmp_to_key(vercmp))
    assert vercmp(a, b) <= 0 and vercmp(b, c) <= 0 and vercmp(a, c) <= 0


# --- fake trees -------------------------------------------------------------------------------------

def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def fedora_kernel(root: Path, version: str, content: bytes | None = None, *, initramfs: bool = True) -> None:
    write(root / f"lib/modules/{version}/vmlinuz", content or f"kernel {version}\n".encode())
    write(root / f"boot/vmlinuz-{version}", content or f"kernel {version}\n".encode())
    if initramfs:
        write(root / f"boot/initramfs-{version}.img", f"initramfs {version}\n".encode() * 100)


def live_root(tmp_path: Path, *, options: str = "rw,relatime", fstype: str = "ext4", efi: bool = False) -> Path:
    """A live root with OLD and NEW installed and a livecd-iso-to-disk stick on /run/initramfs/live booting OLD."""
    root = tmp_path / "root"
    write(root / "proc/self/mountinfo",
          "22 1 253:0 / / rw,relatime - ext4 /dev/mapper/live-rw rw\n"
          f"40 22 8:1 / /run/initramfs/live {options} - {fstype} /dev/sda1 rw\n")
    fedora_kernel(root, OLD)
    fedora_kernel(root, NEW)
    top = root / "run/initramfs/live"
    write(top / "LiveOS/squashfs.img", b"squashfs")
    if efi:
        write(top / "EFI/BOOT/grub.cfg", GRUB_CFG)
        kdir = top / "images/pxeboot"
    else:
        write(top / "syslinux/syslinux.cfg", SYSLINUX_CFG)
        kdir = top / "syslinux"
    write(kdir / "vmlinuz", (root / f"boot/vmlinuz-{OLD}").read_bytes())
    write(kdir / "initrd.img", (root / f"boot/initramfs-{OLD}.img").read_bytes())
    return root


def tree(top: Path) -> dict[str, str]:
    return {str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(top.rglob("*")) if p.is_file()}


# --- the newest kernel ------------------------------------------------------------------------------

def test_newest_fedora_kernel_and_its_initramfs(tmp_path: Path) -> None:
    for v in (OLD, NEW, "6.9.7-100.fc40.x86_64"):
        fedora_kernel(tmp_path, v)
    write(tmp_path / "boot/vmlinuz-0-rescue-0123456789abcdef", b"rescue")
    write(tmp_path / "boot/initramfs-0-rescue-0123456789abcdef.img", b"rescue")
    assert kernels.newest(tmp_path) == kernels.KernelPair(NEW, f"/boot/vmlinuz-{NEW}", f"/boot/initramfs-{NEW}.img")


def test_fedora_kernel_only_in_lib_modules(tmp_path: Path) -> None:
    write(tmp_path / f"usr/lib/modules/{NEW}/vmlinuz", b"k")
    write(tmp_path / f"boot/initramfs-{NEW}.img", b"i")
    assert kernels.newest(tmp_path) == kernels.KernelPair(NEW, f"/usr/lib/modules/{NEW}/vmlinuz",
                                                          f"/boot/initramfs-{NEW}.img")


def test_newest_debian_kernel(tmp_path: Path) -> None:
    for v in ("6.1.0-9-amd64", "6.1.0-13-amd64"):
        write(tmp_path / f"boot/vmlinuz-{v}", b"k")
        write(tmp_path / f"boot/initrd.img-{v}", b"i")
    assert kernels.newest(tmp_path).initramfs == "/boot/initrd.img-6.1.0-13-amd64"


def test_no_kernel_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    with pytest.raises(LiveError, match=r"^no kernel found in the live root .*: install one"):
        kernels.newest(tmp_path)


def test_newest_kernel_without_initramfs_is_refused_not_passed_over(tmp_path: Path) -> None:
    fedora_kernel(tmp_path, OLD)
    fedora_kernel(tmp_path, NEW, initramfs=False)
    with pytest.raises(LiveError) as e:
        kernels.newest(tmp_path)
    assert str(e.value) == (f"the newest kernel, {NEW} (/boot/vmlinuz-{NEW}), has no initramfs (looked for "
                            f"/boot/initramfs-{NEW}.img and /boot/initrd.img-{NEW}): build it inside the live system: "
                            f"dracut --force --no-hostonly --kver {NEW}")


# --- the stick's boot configuration -----------------------------------------------------------------

def test_livecd_iso_to_disk_syslinux(tmp_path: Path) -> None:
    write(tmp_path / "syslinux/syslinux.cfg", SYSLINUX_CFG)
    configs, entries, skipped = loaderconf.boot_entries(tmp_path)
    assert configs == ["syslinux/syslinux.cfg"] and skipped == []
    assert [(e.title, e.kernel, e.initrds) for e in entries] == [
        ("linux0", "syslinux/vmlinuz", ("syslinux/initrd.img",)),
        ("check0", "syslinux/vmlinuz", ("syslinux/initrd.img",))]


def test_livecd_iso_to_disk_efi_grub_on_vfat_any_case(tmp_path: Path) -> None:
    write(tmp_path / "efi/boot/GRUB.CFG", GRUB_CFG)
    configs, entries, skipped = loaderconf.boot_entries(tmp_path)
    assert configs == ["efi/boot/GRUB.CFG"]
    assert {(e.kernel, e.initrds) for e in entries} == {("images/pxeboot/vmlinuz", ("images/pxeboot/initrd.img",))}
    assert [e.title for e in entries] == ["Start Fedora-Workstation-Live 40", "Start in basic graphics mode"]
    assert [s.title for s in skipped] == ["Boot an ISO file"]


def test_extlinux_with_include_absolute_names_and_initrd_keyword(tmp_path: Path) -> None:
    write(tmp_path / "boot/extlinux/extlinux.conf", "UI menu.c32\nINCLUDE entries.cfg\n")
    write(tmp_path / "boot/extlinux/entries.cfg",
          "LABEL live\n  LINUX /boot/vmlinuz0\n  INITRD /boot/initrd0.img\n  APPEND root=live:LABEL=LIVE\n")
    _, entries, _ = loaderconf.boot_entries(tmp_path)
    assert [(e.config, e.kernel, e.initrds) for e in entries] == [
        ("boot/extlinux/entries.cfg", "boot/vmlinuz0", ("boot/initrd0.img",))]


def test_a_fallback_entry_is_left_alone(tmp_path: Path) -> None:
    write(tmp_path / "syslinux/syslinux.cfg", SYSLINUX_CFG + "label fallback\n  kernel vmlinuz.prev\n"
          "  append initrd=initrd.img.prev root=live:LABEL=LIVE\n")
    _, entries, skipped = loaderconf.boot_entries(tmp_path)
    assert [e.title for e in entries] == ["linux0", "check0"]
    assert [(s.title, s.why) for s in skipped] == [("fallback", "a fallback entry (its files are the *.prev pair)")]


# --- the plan and its refusals ----------------------------------------------------------------------

def test_plan_for_a_syslinux_stick(tmp_path: Path) -> None:
    root = live_root(tmp_path)
    plan = plan_update(root, lambda _: 100 * MIB)
    assert plan.pair.version == NEW and not plan.remount and plan.device == "/dev/sda1"
    assert [(r.path, r.source, r.fallback) for r in plan.files] == [
        ("syslinux/vmlinuz", f"/boot/vmlinuz-{NEW}", "syslinux/vmlinuz.prev"),
        ("syslinux/initrd.img", f"/boot/initramfs-{NEW}.img", "syslinux/initrd.img.prev")]
    assert plan.need == sum(r.size + r.old_size for r in plan.files) + 2 * (64 << 10)
    text = "\n".join(describe(plan))
    assert (f"replace /syslinux/initrd.img (4 KiB) with /boot/initramfs-{NEW}.img (4 KiB), the old one kept as "
            "/syslinux/initrd.img.prev") in text
    assert "'check0' boots /syslinux/vmlinuz with /syslinux/initrd.img" in text


def test_a_read_only_stick_is_remounted_for_the_update(tmp_path: Path) -> None:
    assert plan_update(live_root(tmp_path, options="ro,relatime"), lambda _: 100 * MIB).remount


def test_not_mounted_is_exit_3(tmp_path: Path) -> None:
    root = live_root(tmp_path)
    write(root / "proc/self/mountinfo", "22 1 253:0 / / rw - ext4 /dev/mapper/live-rw rw\n")
    with pytest.raises(NotALiveStick, match=r"^nothing is mounted on /run/initramfs/live .*: mount the stick there"):
        plan_update(root)
    assert main(["update-boot", "--root", str(root)]) == EXIT_NOT_LIVE


def test_a_cd_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LiveError, match=r"/dev/sda1 on /run/initramfs/live is iso9660, which cannot be written"):
        plan_update(live_root(tmp_path, fstype="iso9660"))


def test_no_boot_configuration(tmp_path: Path) -> None:
    root = live_root(tmp_path)
    (root / "run/initramfs/live/syslinux/syslinux.cfg").unlink()
    with pytest.raises(LiveError, match=r"^no boot loader configuration on the stick \(/run/initramfs/live: looked "):
        plan_update(root)


def test_a_name_the_configuration_gives_that_is_not_there(tmp_path: Path) -> None:
    root = live_root(tmp_path)
    (root / "run/initramfs/live/syslinux/initrd.img").unlink()
    with pytest.raises(LiveError) as e:
        plan_update(root)
    assert str(e.value) == ("syslinux/syslinux.cfg (linux0) names the initrd /syslinux/initrd.img, which is not on "
                            "the stick: fix the boot configuration: update-boot replaces the files it names")


def test_not_enough_room_says_how_much(tmp_path: Path) -> None:
    root = live_root(tmp_path, efi=True)
    with pytest.raises(LiveError) as e:
        plan_update(root, lambda _: 100 << 10)
    assert str(e.value).startswith("not enough room on the stick (/dev/sda1 on /run/initramfs/live): the new kernel "
                                   "and initramfs and the fallback copies need 135 KiB, 100 KiB free; nothing was "
                                   "changed")


def test_already_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = live_root(tmp_path)
    top = root / "run/initramfs/live"
    write(top / "syslinux/vmlinuz", (root / f"boot/vmlinuz-{NEW}").read_bytes())
    write(top / "syslinux/initrd.img", (root / f"boot/initramfs-{NEW}.img").read_bytes())
    assert plan_update(root, lambda _: 0).files == ()
    assert main(["update-boot", "--root", str(root)]) == 0
    assert f"the stick already boots {NEW}: nothing to do" in capsys.readouterr().out


# --- carrying it out --------------------------------------------------------------------------------

def test_update_then_the_fallback_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = live_root(tmp_path, efi=True, options="ro,relatime")
    top = root / "run/initramfs/live"
    before = tree(top)
    calls: list[tuple[str, bool]] = []
    assert apply.run(False, root, remount_fn=lambda mp, rw: calls.append((mp, rw))) == 0
    assert calls == [("/run/initramfs/live", True), ("/run/initramfs/live", False)]
    after = tree(top)
    new = tree(root / "boot")
    assert after["images/pxeboot/vmlinuz"] == new[f"vmlinuz-{NEW}"]
    assert after["images/pxeboot/initrd.img"] == new[f"initramfs-{NEW}.img"]
    assert after["images/pxeboot/vmlinuz.prev"] == before["images/pxeboot/vmlinuz"]
    assert after["images/pxeboot/initrd.img.prev"] == before["images/pxeboot/initrd.img"]
    assert set(after) == set(before) | {"images/pxeboot/vmlinuz.prev", "images/pxeboot/initrd.img.prev"}
    out = capsys.readouterr().out
    assert "replaced /images/pxeboot/initrd.img with /boot/initramfs-" in out
    assert f"the stick boots {NEW} next time" in out
    # a newer update again: the pair that booted until now becomes the fallback
    fedora_kernel(root, "6.10.1-100.fc40.x86_64")
    assert apply.run(False, root, remount_fn=lambda mp, rw: None) == 0
    assert tree(top)["images/pxeboot/vmlinuz.prev"] == new[f"vmlinuz-{NEW}"]
    assert tree(top)["images/pxeboot/initrd.img.prev"] == new[f"initramfs-{NEW}.img"]


def test_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = live_root(tmp_path, options="ro")
    before = tree(root)
    assert main(["update-boot", "--dry-run", "--root", str(root)]) == 0
    assert tree(root) == before
    out = capsys.readouterr().out
    assert "would replace /syslinux/vmlinuz" in out and "would remount /run/initramfs/live read-write" in out


def test_a_full_stick_while_writing_leaves_the_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = live_root(tmp_path)
    top = root / "run/initramfs/live"
    before = tree(top)
    real_copy, calls = apply._copy, []

    def copy(src: Path, dest: Path, mode: int) -> None:
        calls.append(dest)
        if len(calls) == 4:  # the new initramfs, after three files were written
            with open(dest, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_copy(src, dest, mode)

    monkeypatch.setattr(apply, "_copy", copy)
    assert main(["update-boot", "--root", str(root)]) == EXIT_FAILED
    assert tree(top) == before  # no temporary file left, nothing renamed
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: the stick filled up while writing /syslinux/initrd.img; nothing was changed: "
                   "free some room on the stick"]


def test_a_rename_failing_half_way_restores_the_boot_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = live_root(tmp_path)
    top = root / "run/initramfs/live"
    before = tree(top)
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if str(dst).endswith("syslinux/initrd.img"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(LiveError, match=r"renaming into /syslinux/initrd.img failed \(Input/output error\)"):
        apply.run(False, root)
    after = tree(top)
    assert after["syslinux/vmlinuz"] == before["syslinux/vmlinuz"]
    assert after["syslinux/initrd.img"] == before["syslinux/initrd.img"]
    assert not [f for f in after if f.endswith(apply.TEMP_SUFFIX)]

"""Reading the whole medium, through pylive in QEMU: rd.live.check on an ISO with an implanted MD5
(intact, and damaged: the line is held until Enter), rd.live.ram of a squashfs and of an
uncompressed rootfs.img (the copy is used, the medium released), rd.writable.fsimg, a copy that
cannot fit; and the same paths in an initramfs built without systemd."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from guestreport import loops, mounts, pylive_lines, pylive_status, root_ok

from qemu import BUILD_DIR, NO_SHELL_ARGS, ConsoleEvent, boot
from qemu._util import run
from qemu.media import build_flat_iso, build_uncompressed_iso, make_filler_iso


@pytest.fixture(scope="module")
def implanted_iso(live_iso, tmp_path_factory) -> Path:
    """The live ISO with an MD5 implanted by isomd5sum's implantisomd5."""
    out = tmp_path_factory.mktemp("md5") / "live-md5.iso"
    shutil.copyfile(live_iso.path, out)
    run(["implantisomd5", out])
    run(["checkisomd5", out])
    return out


def live_boot(kernel, initrd, iso: Path, label: str, extra: str, *, workdir: Path, **kw):
    return boot(kernel, initrd, f'"root=live:CDLABEL={label}" {extra} {NO_SHELL_ARGS}', cdrom=iso,
                workdir=workdir, timeout_s=240, **kw)


def test_check_passes_on_an_intact_medium(kernel, pylive_initrd, live_iso, implanted_iso, qemu_workdir):
    """With the label escaped as boot menus write it (lorax, livecd-tools: \\x20 for a space), and under
    `quiet`: the verdict the user asked for is on the console all the same, once, without a timestamp
    (written on /dev/console: the kernel prints no notice under quiet)."""
    escaped = live_iso.label.replace(" ", "\\x20")
    assert escaped != live_iso.label
    r = boot(kernel, pylive_initrd, f"root=live:CDLABEL={escaped} rd.live.check quiet {NO_SHELL_ARGS}",
             cdrom=implanted_iso, workdir=qemu_workdir / "boot", timeout_s=240)
    assert r.report_complete, r.console[-3000:]
    passed = [ln for ln in r.console.splitlines() if "passed its media check" in ln]
    assert len(passed) == 1 and passed[0].startswith(
        "pylive: rd.live.check: /dev/sr0 passed its media check (the implanted MD5 matches)"), passed
    assert re.search(r"MiB in \d+\.\d s$", passed[0]), passed
    assert not pylive_lines(r.console, "live medium")  # quiet: the info chatter stays in the log
    assert "live medium CDLABEL=PYLIVE TEST 1 is /dev/sr0" in r.report["dmesg"]
    assert r.report["livedev"].strip() == "/dev/disk/by-label/" + escaped
    root_ok(r.report)


def test_check_of_a_damaged_medium_stops_and_waits_for_enter(kernel, pylive_initrd, live_iso, implanted_iso,
                                                             qemu_workdir):
    damaged = qemu_workdir / "damaged.iso"
    shutil.copyfile(implanted_iso, damaged)
    with open(damaged, "r+b") as f:  # one byte in the middle of the image (inside the squashfs)
        f.seek(damaged.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    r = live_boot(kernel, pylive_initrd, damaged, live_iso.label, "rd.live.check", workdir=qemu_workdir / "boot",
                  events=[ConsoleEvent("Press Enter to continue", b"\r", delay_s=4.0)])
    assert not r.report and not r.timed_out, r.console[-3000:]
    lines = pylive_lines(r.console, "is damaged")
    assert lines and lines[0].startswith("pylive: the medium /dev/sr0 is damaged (MD5 mismatch"), lines
    assert lines[0].endswith("write it again, or boot with rd.live.check=0 to skip the check"), lines
    assert not pylive_lines(r.console, "root: ")  # nothing was built on it


def test_check_skipped_with_esc(kernel, pylive_initrd, test_root, qemu_workdir):
    """An ISO large enough (256 MiB of random data) that Esc arrives while the check runs."""
    iso = make_filler_iso(qemu_workdir, qemu_workdir / "big.iso", "PYLIVE BIG", root_tree=test_root, filler_mib=256)
    run(["implantisomd5", iso])
    r = live_boot(kernel, pylive_initrd, iso, "PYLIVE BIG", "rd.live.check", workdir=qemu_workdir / "boot",
                  events=[ConsoleEvent("checking /dev/sr0 (Esc skips)", b"\x1b", delay_s=0.5)], memory_mb=2048)
    assert r.report_complete, r.console[-3000:]
    skipped = pylive_lines(r.console, "was skipped with Esc at")
    assert len(skipped) == 1, r.console[-3000:]
    assert not pylive_lines(r.console, "passed its media check")
    root_ok(r.report)


def test_check_of_a_medium_without_md5_warns_and_boots(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = live_boot(kernel, pylive_initrd, live_iso.path, live_iso.label, "rd.live.check", workdir=qemu_workdir / "boot")
    assert r.report_complete, r.console[-3000:]
    assert pylive_lines(r.console, "carries no implanted MD5"), r.console[-3000:]
    root_ok(r.report)


def assert_ram_squashfs(r) -> None:
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    by_file = loops(r.report)
    assert by_file["/run/initramfs/squashed.img"]["ro"] == "1", by_file
    assert not any(f.startswith("/run/initramfs/live/") for f in by_file), by_file
    assert "/run/initramfs/live" not in mounts(r.report)  # released: the disc can be taken out
    assert pylive_lines(r.console, "and verified it"), r.console[-3000:]
    assert pylive_lines(r.console, "it can be removed"), r.console[-3000:]
    assert re.search(r"live-rw: 0 131072 snapshot 7:\d+ 7:\d+ PO 8", r.report["dmsetup-table"])


def test_ram_copy_of_a_squashfs_releases_the_medium(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = live_boot(kernel, pylive_initrd, live_iso.path, live_iso.label, "rd.live.ram", workdir=qemu_workdir / "boot")
    assert_ram_squashfs(r)


def test_ram_copy_of_an_uncompressed_image_is_used_writable(kernel, pylive_initrd, test_root, qemu_workdir):
    iso = build_uncompressed_iso(BUILD_DIR / "media" / "uncompressed.iso", "PYLIVE RAW", root_tree=test_root)
    r = live_boot(kernel, pylive_initrd, iso.path, iso.label, "rd.live.ram", workdir=qemu_workdir / "boot")
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    by_file = loops(r.report)
    assert by_file["/run/initramfs/rootfs.img"]["ro"] == "0", by_file
    assert re.search(r"^live-rw: 0 131072 linear 7:\d+ 0$", r.report["dmsetup-table"], re.M), \
        r.report["dmsetup-table"]
    assert "/run/initramfs/live" not in mounts(r.report)


def test_writable_fsimg(kernel, pylive_initrd, live_iso, qemu_workdir):
    """On a 1 GiB machine, as Debian's 059 and dracut-ng boot it: the copy leaves less than rd.minmem
    free, which is a warning, not a refusal."""
    r = live_boot(kernel, pylive_initrd, live_iso.path, live_iso.label, "rd.writable.fsimg",
                  workdir=qemu_workdir / "boot", memory_mb=1024)
    assert r.report_complete, r.console[-3000:]
    assert len(pylive_lines(r.console, "less than rd.minmem=1024 MiB")) == 1, r.console[-3000:]
    root_ok(r.report)
    by_file = loops(r.report)
    assert by_file["/run/initramfs/fsimg/rootfs.img"]["ro"] == "0", by_file
    assert re.search(r"^live-rw: 0 131072 linear 7:\d+ 0$", r.report["dmsetup-table"], re.M)
    assert mounts(r.report)["/run/initramfs/live"][2] == "iso9660"  # dracut keeps the medium here
    status = pylive_status(r.report)  # no overlay: the root filesystem itself is what fills
    assert status["kind"] == "none" and status["limited_by"] == "the root filesystem"


def test_writable_fsimg_with_ram_copies_only_the_root_image(kernel, pylive_initrd, live_iso, qemu_workdir):
    """Both options: the root image comes straight out of the squashfs on the medium; the squashfs is not
    copied, its loop is detached and the medium released (dracut holds both copies in RAM)."""
    r = live_boot(kernel, pylive_initrd, live_iso.path, live_iso.label, "rd.live.ram rd.writable.fsimg",
                  workdir=qemu_workdir / "boot")
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    attached = {f: d for f, d in loops(r.report).items() if f}
    assert list(attached) == ["/run/initramfs/fsimg/rootfs.img"], r.report["loops"]
    assert attached["/run/initramfs/fsimg/rootfs.img"]["ro"] == "0"
    assert re.search(r"^live-rw: 0 131072 linear 7:\d+ 0$", r.report["dmsetup-table"], re.M)
    seen = mounts(r.report)
    assert "/run/initramfs/live" not in seen and "/run/initramfs/squashfs" not in seen, r.report["mounts"]
    assert "squashed.img" not in r.report["run-initramfs"], r.report["run-initramfs"]
    assert len(pylive_lines(r.console, "was unmounted from /run/initramfs/live: it can be removed")) == 1


def test_ram_copy_that_cannot_fit_stops_in_one_line(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = live_boot(kernel, pylive_initrd, live_iso.path, live_iso.label, "rd.live.ram rd.minmem=100000",
                  workdir=qemu_workdir / "boot")
    assert not r.report and not r.timed_out
    lines = pylive_lines(r.console, "does not fit in RAM")
    assert len(lines) == 1, r.console[-3000:]
    assert "rd.minmem=100000 MiB" in lines[0], lines


# --- the same paths without systemd (dracut's own init and initqueue) ------------------------------


def test_without_systemd_ram_copy(kernel, nosd_initrd, live_iso, qemu_workdir):
    r = live_boot(kernel, nosd_initrd, live_iso.path, live_iso.label, "rd.live.ram", workdir=qemu_workdir / "boot")
    assert_ram_squashfs(r)
    assert "systemd[1]" not in r.report["dmesg"].split("pylive-test-init")[0]


def test_without_systemd_flattened_overlayfs_and_check(kernel, nosd_initrd, test_root, qemu_workdir):
    iso = build_flat_iso(BUILD_DIR / "media" / "flat.iso", "PYLIVE FLAT", root_tree=test_root)
    implanted = qemu_workdir / "flat-md5.iso"
    shutil.copyfile(iso.path, implanted)
    run(["implantisomd5", implanted])
    r = live_boot(kernel, nosd_initrd, implanted, iso.label, "rd.live.check", workdir=qemu_workdir / "boot")
    assert r.report_complete, r.console[-3000:]
    root_ok(r.report)
    assert mounts(r.report)["/"][:3] == ["LiveOS_rootfs", "/", "overlay"]
    assert pylive_lines(r.console, "passed its media check")
    assert "systemd[1]" not in r.report["dmesg"].split("pylive-test-init")[0]

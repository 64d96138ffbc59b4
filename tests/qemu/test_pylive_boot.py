"""Boots of the demo live ISO through pylive (systemd initramfs). Each test asserts what the
guest itself reported: its mounts, device-mapper tables, loop devices and a file written and read
back on the live root."""

from __future__ import annotations

import re

from guestreport import pylive_status

from qemu import NO_SHELL_ARGS, TIMING_CMDLINE, boot, parse_kv_lines

COW_DEFAULT_SECTORS = 32768 * 2048  # rd.live.overlay.size default: 32 GiB in 512-byte sectors



def _mounts(report: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    out = {}
    for line in report["mounts"].splitlines():
        dev, target, fstype, opts, *_ = line.split()
        out[target] = (dev, fstype, opts)
    return out


def _loops(report: dict[str, str]) -> dict[str, dict[str, str]]:
    return {d["name"]: d for d in parse_kv_lines(report["loops"])}


def assert_live_root(report: dict[str, str], cow_sectors: int) -> None:
    """The classic temporary dm-snapshot live root, as dmsquash-live builds it."""
    mounts = _mounts(report)
    assert mounts["/"][:2] == ("/dev/mapper/live-rw", "ext4")
    assert mounts["/run/initramfs/live"][:2] == ("/dev/sr0", "iso9660")
    assert mounts["/run/initramfs/live"][2].startswith("ro,")
    assert "/run/initramfs/squashfs" not in mounts  # lazily unmounted once the stack holds it

    tables = dict(line.split(": ", 1) for line in report["dmsetup-table"].splitlines())
    snap = re.fullmatch(r"0 (\d+) snapshot (\d+:\d+) (\d+:\d+) PO 8", tables["live-rw"])
    assert snap, tables["live-rw"]
    base_sectors, base_dev, cow_dev = int(snap[1]), snap[2], snap[3]
    assert tables["live-base"] == f"0 {base_sectors} linear {base_dev} 0"

    loops = _loops(report)
    by_devno = {f"7:{name.removeprefix('loop')}": d for name, d in loops.items()}
    base, cow = by_devno[base_dev], by_devno[cow_dev]
    # the squashfs is lazily unmounted (as dmsquash does), so the loop names the path inside it
    assert base["backing_file"] == "/LiveOS/rootfs.img" and base["ro"] == "1"
    assert int(base["size"]) == base_sectors == 64 * 2048
    assert base["name"] == report["dev-live-base"].strip().removeprefix("/dev/")
    assert cow["backing_file"].startswith("/overlay") and cow["ro"] == "0"
    assert int(cow["size"]) == cow_sectors
    squash = [d for d in loops.values() if d["backing_file"] == "/run/initramfs/live/LiveOS/squashfs.img"]
    assert len(squash) == 1 and squash[0]["ro"] == "1"

    status = dict(line.split(": ", 1) for line in report["dmsetup-status"].splitlines())
    used = re.fullmatch(r"0 \d+ snapshot (\d+)/(\d+) (\d+)", status["live-rw"].strip())
    assert used and int(used[2]) == cow_sectors and int(used[1]) > 0  # the write test used the COW

    assert report["root-write"].splitlines()[2] == "match=yes"
    assert "pylive.json" in report["run-initramfs"] and ".need_shutdown" in report["run-initramfs"]


def test_cdlabel_with_spaces(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={live_iso.label}" rd.live.image quiet {NO_SHELL_ARGS}',
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    assert_live_root(r.report, COW_DEFAULT_SECTORS)
    assert r.report["livedev"].strip() == "/dev/disk/by-label/PYLIVE\\x20TEST\\x201"
    assert "pylive: root: temporary device-mapper snapshot" in r.report["dmesg"]


def test_uuid(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f"root=live:UUID={live_iso.uuid} {NO_SHELL_ARGS}",
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    assert_live_root(r.report, COW_DEFAULT_SECTORS)
    assert r.report["livedev"].strip() == f"/dev/disk/by-uuid/{live_iso.uuid}"


def test_live_image_with_plain_label(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f'rd.live.image "root=LABEL={live_iso.label}" {NO_SHELL_ARGS}',
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    assert_live_root(r.report, COW_DEFAULT_SECTORS)


def test_overlay_size(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd,
             f'"root=live:CDLABEL={live_iso.label}" rd.live.overlay.size=2048 {NO_SHELL_ARGS} {TIMING_CMDLINE}',
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    assert_live_root(r.report, 2048 * 2048)


def test_wrong_label_fails_fast_with_one_line(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f"root=live:CDLABEL=NO_SUCH_LABEL rd.retry=20 quiet {NO_SHELL_ARGS}",
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=200)
    assert not r.timed_out, "the guest did not end by itself"
    assert not r.report  # never reached a root
    lines = [ln for ln in r.console.splitlines() if "pylive: live medium" in ln]
    assert len(lines) == 1, r.console[-3000:]
    assert re.search(
        r"pylive: live medium CDLABEL=NO_SUCH_LABEL not found after 20s "
        r"\(waited for /dev/disk/by-label/NO_SUCH_LABEL\); block devices seen: .*"
        r'sr0\(iso9660,"PYLIVE TEST 1"\).*: check the label or UUID on root=, or raise rd.retry$',
        lines[0],
    ), lines[0]
    assert r.seconds < 150


def test_without_systemd(kernel, nosd_initrd, live_iso, qemu_workdir):
    """dracut's own init and initqueue (no systemd in the initramfs): the same root. The label escaped
    as boot menus write it (no quote on the command line): the cmdline hook answers in the shell
    (pylive-lib.sh) and the initqueue's run is the binary's one start in this boot; the quoted form
    goes through `pylive cmdline-hook` first (the other tests without systemd)."""
    escaped = live_iso.label.replace(" ", "\\x20")
    r = boot(kernel, nosd_initrd, f"root=live:CDLABEL={escaped} {NO_SHELL_ARGS}",
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    assert_live_root(r.report, COW_DEFAULT_SECTORS)
    assert "dracut: Mounted root filesystem /dev/mapper/live-rw" in r.console
    assert "systemd[1]" not in r.report["dmesg"].split("pylive-test-init")[0]
    # dracut's init mounts /run noexec: the copy left for the booted system has a tmpfs of its own, and runs
    own = _mounts(r.report)["/run/pylive"]
    assert own[1] == "tmpfs" and "noexec" not in own[2].split(","), own
    assert "noexec" in _mounts(r.report)["/run"][2].split(",")
    status = pylive_status(r.report)
    assert status["kind"] == "dm-snapshot" and status["state"] == "active", status


def test_missing_image_says_what_was_searched(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd,
             f'"root=live:CDLABEL={live_iso.label}" rd.live.squashimg=missing.img {NO_SHELL_ARGS}',
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=200)
    assert not r.timed_out and not r.report
    lines = [ln.split("] ", 1)[1] for ln in r.console.splitlines() if "pylive: no live root image" in ln]
    assert lines == [
        "pylive: no live root image in the live medium CDLABEL=PYLIVE TEST 1 (searched: /LiveOS/missing.img, "
        "/LiveOS/rootfs.img): check rd.live.dir=LiveOS and rd.live.squashimg=missing.img"
    ], r.console[-3000:]
    assert "pylive: rolled back: mount /run/initramfs/live" in r.console  # nothing left mounted

"""The fault matrix of the medium (issue 14), through pylive in QEMU: a damaged squashfs and a truncated ISO,
read errors at given sectors (QEMU's blkdebug) during the mount, the RAM copy and the media check, the medium
pulled out (QMP device_del) before and after it was found, a medium that appears late (QMP device_add, a slow USB
stick), and two devices with the same label. Each boot ends in one line naming the cause and what to do, within
a short rd.retry, or boots where booting is right. Nine boots, each on the small default medium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from guestreport import mounts, pylive_lines, root_ok

from pylive.media import view_iso
from qemu import NO_SHELL_ARGS, ConsoleEvent, QmpEvent, boot
from qemu._util import run

SECTOR = 512  # blkdebug's sectors
RETRY = "rd.retry=8"  # a failure is expected: keep the boot short


@pytest.fixture(scope="module")
def squashfs_extent(live_iso) -> tuple[int, int]:
    """(byte offset, size) of LiveOS/squashfs.img inside the default ISO."""
    entry = view_iso(live_iso.path).entries["LiveOS/squashfs.img"]
    assert entry.extent is not None
    return entry.extent * 2048, entry.size


def cmdline(label: str, extra: str = "") -> str:
    return f'"root=live:CDLABEL={label}" {extra} {NO_SHELL_ARGS}'


def stopped(r, text: str) -> str:
    """The boot stopped (no root, no report, no hang) with exactly one pylive line containing `text`."""
    assert not r.report and not r.timed_out, r.describe()
    lines = [ln for ln in pylive_lines(r.console, text)]
    assert len(lines) == 1, r.console[-4000:]
    assert not pylive_lines(r.console, "root: "), r.console[-4000:]  # nothing was built
    return lines[0]


def blkdebug_cdrom(work: Path, iso: Path, sector: int) -> list[str]:
    """QEMU arguments for a CD whose reads of 512-byte `sector` fail with EIO (errno 5), every time."""
    cfg = work / "blkdebug.cfg"
    cfg.write_text(f'[inject-error]\nevent = "read_aio"\nerrno = "5"\nsector = "{sector}"\n')
    return ["-device", "virtio-scsi-pci,id=scsi0",
            "-drive", f"if=none,id=cdbad,media=cdrom,readonly=on,format=raw,file=blkdebug:{cfg}:{iso}",
            "-device", "scsi-cd,drive=cdbad,bus=scsi0.0,id=cdbaddev"]


# --- 1. damaged and truncated media ----------------------------------------------------------------------


def test_truncated_iso_is_refused_before_anything_is_mounted(kernel, pylive_initrd, live_iso, squashfs_extent,
                                                            qemu_workdir):
    """An ISO cut in the middle of its squashfs (an interrupted download or copy): the ISO 9660 volume says how
    big it is, the device is smaller, and that is told before the mount."""
    offset, size = squashfs_extent
    iso = qemu_workdir / "truncated.iso"
    shutil.copyfile(live_iso.path, iso)
    with open(iso, "r+b") as f:
        f.truncate((offset + size // 2) // 2048 * 2048)
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label, RETRY), cdrom=iso, workdir=qemu_workdir / "boot",
             timeout_s=180)
    line = stopped(r, "is truncated")
    assert line.startswith("pylive: the medium /dev/sr0 is truncated: it ends at "), line
    assert "rd.live.check" in line and "pylive check-media" in line, line
    assert not any("Input/output error" in ln for ln in pylive_lines(r.console, "pylive: ")), r.console[-4000:]


def test_damaged_squashfs_blocks_point_to_the_media_check(kernel, pylive_initrd, live_iso, squashfs_extent,
                                                          qemu_workdir):
    """Damaged compressed blocks inside the squashfs: the one behind its superblock (the start of the root
    image, which pylive reads) and one in the middle (which nothing reads before the switch root). The
    squashfs mounts; the read of the root image inside it fails (the kernel: SQUASHFS error, EIO), and the line
    points to the media check. Damage that pylive does not read surfaces later as EIO on a file: only
    rd.live.check / pylive check-media find it beforehand."""
    offset, size = squashfs_extent
    iso = qemu_workdir / "damaged.iso"
    shutil.copyfile(live_iso.path, iso)
    with open(iso, "r+b") as f:
        for at in (offset + 256, offset + size // 2):
            f.seek(at)
            f.write(bytes(range(256)) * 16)
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label, RETRY), cdrom=iso, workdir=qemu_workdir / "boot",
             timeout_s=180)
    assert re.search(r"SQUASHFS error", r.console), r.console[-4000:]
    line = stopped(r, "Input/output error")
    assert "/dev/sr0" in line and "rd.live.check" in line and "pylive check-media" in line, line
    assert "internal error" not in r.console and "Traceback" not in r.console


# --- 2. read errors at given sectors (blkdebug) ----------------------------------------------------------


def test_read_error_during_the_mount(kernel, pylive_initrd, live_iso, squashfs_extent, qemu_workdir):
    """Every read of the sector of the squashfs's id table fails: the mount reads it (it is at the end of the
    image, where udev's blkid, which also probes 64 KiB into the CD for a btrfs, does not read)."""
    offset, _ = squashfs_extent
    with open(live_iso.path, "rb") as f:
        f.seek(offset)
        id_table = int.from_bytes(f.read(96)[48:56], "little")
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label, RETRY), workdir=qemu_workdir / "boot", timeout_s=180,
             extra_qemu_args=blkdebug_cdrom(qemu_workdir, live_iso.path, (offset + id_table) // SECTOR))
    line = stopped(r, "Input/output error")
    assert "/dev/sr0" in line and "rd.live.check" in line, line
    assert "internal error" not in r.console and "Traceback" not in r.console


def test_read_error_during_the_ram_copy(kernel, pylive_initrd, live_iso, squashfs_extent, qemu_workdir):
    """A sector in the middle of the squashfs: the mount does not read it, rd.live.ram's copy does."""
    offset, size = squashfs_extent
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label, f"rd.live.ram {RETRY}"),
             workdir=qemu_workdir / "boot", timeout_s=180,
             extra_qemu_args=blkdebug_cdrom(qemu_workdir, live_iso.path, (offset + size // 2) // SECTOR))
    line = stopped(r, "for the RAM copy failed")
    assert line.startswith("pylive: rd.live.ram: reading /run/initramfs/live/LiveOS/squashfs.img on /dev/sr0 "
                           "for the RAM copy failed: Input/output error (reading at "), line
    assert "/dev/sr0 may be damaged or unreadable: check it with rd.live.check" in line, line
    assert "was removed" not in line, line
    assert not pylive_lines(r.console, "and verified it")


def test_read_error_during_the_media_check(kernel, pylive_initrd, live_iso, squashfs_extent, qemu_workdir):
    """rd.live.check reads the whole medium: a read error is a failed check, held on the screen until Enter
    (as a damaged medium is), and then the boot stops."""
    offset, size = squashfs_extent
    iso = qemu_workdir / "md5.iso"
    shutil.copyfile(live_iso.path, iso)
    run(["implantisomd5", iso])
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label, f"rd.live.check {RETRY}"),
             workdir=qemu_workdir / "boot", timeout_s=180,
             extra_qemu_args=blkdebug_cdrom(qemu_workdir, iso, (offset + size // 2) // SECTOR),
             events=[ConsoleEvent("Press Enter to continue", b"\r", delay_s=1.0)])
    line = stopped(r, "is damaged")
    # the check reads in blocks of 4 MiB: the error is placed within the block that failed
    assert re.match(r"pylive: the medium /dev/sr0 is damaged \(read error at \d+ MiB: Input/output error", line), line
    assert "Press Enter to continue" in r.console


# --- 3. the medium pulled out ----------------------------------------------------------------------------


def test_medium_removed_before_it_was_found(kernel, pylive_initrd, live_iso, qemu_workdir):
    """device_del as QEMU starts: the wait ends after rd.retry with the one line that lists what is there."""
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label, "rd.retry=5"), cdrom=live_iso.path,
             workdir=qemu_workdir / "boot", timeout_s=180, qmp_events=[QmpEvent("device_del", {"id": "cd0dev"})])
    assert r.qmp_log and r.qmp_log[0].get("reply") == {"return": {}}, r.qmp_log
    line = stopped(r, "not found after 5s")
    assert line.startswith("pylive: live medium CDLABEL=PYLIVE TEST 1 not found after 5s "
                           "(waited for /dev/disk/by-label/PYLIVE\\x20TEST\\x201)"), line
    assert "sr0" not in line, line


def test_medium_removed_during_the_ram_copy(kernel, pylive_initrd, live_iso, qemu_workdir):
    """Found, mounted, and pulled out while rd.live.ram copies it (the CD reads at 1 MiB/s)."""
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label, f"rd.live.ram {RETRY}"), cdrom=live_iso.path,
             cdrom_read_mib_s=1, workdir=qemu_workdir / "boot", timeout_s=180,
             qmp_events=[QmpEvent("device_del", {"id": "cd0dev"}, marker="copying squashfs.img to RAM",
                                  delay_s=0.3)])
    assert any(e.get("reply") == {"return": {}} for e in r.qmp_log), r.qmp_log
    line = stopped(r, "for the RAM copy failed")
    assert "/dev/sr0" in line and "was removed" in line, line
    assert not pylive_lines(r.console, "and verified it")


# --- 4. a medium that appears late -----------------------------------------------------------------------


def test_medium_that_appears_late_boots(kernel, pylive_initrd, live_iso, qemu_workdir):
    """No CD at start; one is plugged in 6 s after pylive said it waits (like a slow USB stick; a fixed time
    after QEMU's start would race pylive's own start under TCG): the default rd.retry waits."""
    waiting = "waiting up to 180 s for CDLABEL=PYLIVE TEST 1"
    late = [QmpEvent("blockdev-add", {"driver": "raw", "node-name": "late0", "read-only": True,
                                      "file": {"driver": "file", "filename": str(live_iso.path.resolve()),
                                               "read-only": True}}, marker=waiting, delay_s=6),
            QmpEvent("device_add", {"driver": "scsi-cd", "drive": "late0", "bus": "scsi0.0", "id": "late"},
                     marker=waiting, delay_s=6)]
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label), workdir=qemu_workdir / "boot", timeout_s=240,
             extra_qemu_args=["-device", "virtio-scsi-pci,id=scsi0"], qmp_events=late)
    assert [e.get("reply") for e in r.qmp_log if "execute" in e] == [{"return": {}}] * 2, r.qmp_log
    assert r.report_complete, r.describe()
    root_ok(r.report)
    waited = pylive_lines(r.report["dmesg"], "appeared after")
    assert len(waited) == 1, r.report["dmesg"][-3000:]
    m = re.search(r"pylive: CDLABEL=PYLIVE TEST 1 appeared after (\d+\.\d) s: /dev/sr0", waited[0])
    assert m, waited
    assert 6.0 <= float(m[1]) <= 60.0, waited
    assert pylive_lines(r.report["dmesg"], waiting)
    assert mounts(r.report)["/run/initramfs/live"][0] == "/dev/sr0"


# --- 5. two devices with the same label ------------------------------------------------------------------


def test_two_devices_with_the_same_label(kernel, pylive_initrd, live_iso, qemu_workdir):
    """The CD and a disk holding a copy of the same ISO (same label, same UUID): pylive takes the device with
    the lowest device number (major:minor; the disk sda is 8:0, the CD sr0 11:0), whatever udev's by-label
    link points at, and says so in a warning naming both."""
    copy = qemu_workdir / "copy.iso"
    shutil.copyfile(live_iso.path, copy)
    r = boot(kernel, pylive_initrd, cmdline(live_iso.label), cdrom=live_iso.path, disks=[(copy, "copy")],
             workdir=qemu_workdir / "boot", timeout_s=240)
    assert r.report_complete, r.describe()
    root_ok(r.report)
    warned = pylive_lines(r.console, "devices are labelled")
    assert len(warned) == 1, r.console[-4000:]
    assert warned[0].startswith("pylive: 2 devices are labelled 'PYLIVE TEST 1': /dev/sda (8:0), /dev/sr0 (11:0); "
                                "using /dev/sda"), warned
    assert mounts(r.report)["/run/initramfs/live"][0] == "/dev/sda"

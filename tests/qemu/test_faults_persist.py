"""Persistence and command-line faults, through pylive in QEMU (issue 14's fault matrix): a
write-protected stick, a stick whose filesystem needs repair (ext4 with errors, vfat with its dirty
bit), a stick too full for the overlay, too little RAM for rd.live.ram, and a hostile command line.

Each boot ends in one line naming the cause and what to do, or boots where booting is right; the
stick is compared byte for byte before and after (it changes only when the command line asks for a
change). Boots on one stick are chained."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from guestreport import mounts, pylive_lines, root_ok, written
from persist import debugfs, run_boot, vfat_disk_with_overlay_image

from qemu import NO_SHELL_ARGS, boot
from qemu._util import run
from qemu.media import make_ext4_image

NOLOAD = {"noload", "norecovery"}  # how /proc/mounts may name ext4's noload
LOST = "this boot uses the overlay read-only, and changes go to a temporary overlay in RAM, lost at shutdown"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def ext4_stick_with_upper(workdir: Path, name: str, token: str) -> Path:
    """An ext4 stick (LABEL=persist) with the OverlayFS directories of <name>, whose upper holds the
    file a previous boot wrote (the guest's init reports it as previous-write)."""
    tree = workdir / "stick-tree"
    (tree / name).mkdir(parents=True)
    (tree / name).parent.joinpath("ovlwork").mkdir()
    (tree / name / "pylive-write-test").write_text(token + "\n")
    return make_ext4_image(tree, workdir / "stick.img", 64, "persist")


def read_only_persistent_root(report: dict[str, str]) -> None:
    """The root is OverlayFS with the persistent layer as a lower layer and a temporary upper in RAM."""
    m = mounts(report)
    assert "ro" in m["/run/initramfs/overlayfs"][3].split(","), m["/run/initramfs/overlayfs"]
    root = " ".join(m["/"])
    assert "lowerdir=/run/overlayfs-r:/run/rootfsbase" in root, root
    assert "upperdir=/run/initramfs/overlay/overlayfs" in root, root
    root_ok(report)  # the temporary upper takes writes


def test_write_protected_then_dirty_ext4(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    stick = ext4_stick_with_upper(qemu_workdir, name, "host-token")
    option = "rd.live.overlay=LABEL=persist"
    before = sha256(stick)

    # 1. the stick's write-protect switch: QEMU's readonly=on drive (the guest's sd driver sees WP)
    wp = ["-drive", f"if=none,id=wp0,format=raw,readonly=on,file={stick}",
          "-device", "scsi-hd,drive=wp0,bus=scsi0.0,serial=persist"]
    r1 = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={live_iso.label}" {option} {NO_SHELL_ARGS}',
              cdrom=live_iso.path, workdir=qemu_workdir / "boot1-write-protected", timeout_s=240,
              extra_qemu_args=wp)
    assert r1.report, r1.console[-3000:]
    lines = pylive_lines(r1.console, "is write-protected")
    assert len(lines) == 1, r1.console[-3000:]
    assert re.fullmatch(
        r"pylive: the persistent overlay's device LABEL=persist \(/dev/sd[a-z], ext4\) is write-protected: "
        + re.escape(LOST) + r": to keep changes, switch off the stick's write protection and boot again",
        lines[0]), lines
    assert re.search(r"^sd[a-z] size=\d+ ro=1$", r1.report["blockdevs"], re.M), r1.report["blockdevs"]
    assert written(r1.report)[0] == "host-token"  # the persistent layer is there, read-only
    read_only_persistent_root(r1.report)
    assert "Traceback" not in r1.console
    assert sha256(stick) == before

    # 2. the same stick, writable, with errors recorded in its superblock (as the kernel's ext4_error does)
    run(["debugfs", "-w", "-R", "ssv state 3", stick])  # EXT4_VALID_FS | EXT4_ERROR_FS
    assert "Filesystem state:         clean with errors" in run(["dumpe2fs", "-h", stick], quiet=True).stdout
    before = sha256(stick)
    r2 = run_boot(kernel, pylive_initrd, live_iso, stick, option + " rd.live.overlay.reset",
                  workdir=qemu_workdir, name="boot2-ext4-errors")
    assert r2.report, r2.console[-3000:]
    lines = pylive_lines(r2.console, "needs repair")
    assert len(lines) == 1, r2.console[-3000:]
    assert re.fullmatch(
        r"pylive: the persistent overlay's filesystem on LABEL=persist \(/dev/sd[a-z], ext4\) needs repair: the "
        r"kernel recorded errors in it; pylive does not write to it: " + re.escape(LOST)
        + r"; rd.live.overlay.reset was not done: to keep changes, boot once without the persistent overlay and "
        r"run e2fsck -f /dev/sd[a-z] \(or repair it on another computer\), then boot again", lines[0]), lines
    assert written(r2.report)[0] == "host-token"  # not reset, still readable
    read_only_persistent_root(r2.report)
    assert set(mounts(r2.report)["/run/initramfs/overlayfs"][3].split(",")) & NOLOAD, r2.report["mounts"]
    assert sha256(stick) == before  # not a byte written: no journal replay, no identity record, no reset
    assert "host-token" in debugfs(stick, f'cat "/{name}/pylive-write-test"')


def test_dirty_vfat_stick(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    # as a crash leaves a FAT stick: its dirty bit set, and the ext4 image on it with its journal to replay
    stick = vfat_disk_with_overlay_image(qemu_workdir, name, {"pylive-write-test": "host-token\n"},
                                         image_needs_recovery=True)
    with open(stick, "r+b") as f:  # the dirty bit the kernel's fat driver sets while mounted (FAT16: byte 37)
        boot_sector = bytearray(f.read(512))
        assert boot_sector[54:59] == b"FAT16", boot_sector[54:62]
        boot_sector[37] |= 0x01
        f.seek(0)
        f.write(boot_sector)
    before = sha256(stick)
    r = run_boot(kernel, pylive_initrd, live_iso, stick, "rd.live.overlay=LABEL=PERSIST",
                 workdir=qemu_workdir, name="boot-dirty-vfat")
    assert r.report, r.console[-3000:]
    lines = pylive_lines(r.console, "needs repair")
    assert len(lines) == 1, r.console[-3000:]
    assert re.fullmatch(
        r"pylive: the persistent overlay's filesystem on LABEL=PERSIST \(/dev/sd[a-z], vfat\) needs repair: it was "
        r"not cleanly unmounted \(its dirty bit is set\) and FAT has no journal; pylive does not write to it: "
        + re.escape(LOST) + r": to keep changes, boot once without the persistent overlay and run fsck.vfat -a "
        r"/dev/sd[a-z] \(or repair it on another computer\), then boot again", lines[0]), lines
    assert written(r.report)[0] == "host-token"  # the overlay image's upper, read-only
    m = mounts(r.report)
    assert m["/run/initramfs/overlayfs"][2] == "vfat" and "ro" in m["/run/initramfs/overlayfs"][3].split(",")
    image_opts = set(m["/run/initramfs/overlayfs-image"][3].split(","))
    assert "ro" in image_opts and image_opts & NOLOAD, image_opts  # the image's journal left alone
    read_only_persistent_root(r.report)
    assert sha256(stick) == before


def free_blocks(stick: Path) -> int:
    return int(re.search(r"Free blocks:\s+(\d+)", run(["dumpe2fs", "-h", stick], quiet=True).stdout)[1])  # type: ignore[index]


def full_ext4_stick(workdir: Path) -> Path:
    """An ext4 stick (LABEL=persist, no blocks reserved for root) with less than 1 MiB free."""
    tree = workdir / "full-tree"
    tree.mkdir()
    (tree / "photos.bin").write_bytes(hashlib.shake_256(b"photos").digest(20 << 20))  # data: not made sparse
    stick = workdir / "full.img"
    run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-L", "persist", "-d", tree, stick, "32M"])
    free = free_blocks(stick)
    n = 0
    while free > 64:  # top it up to under 256 KiB free with files of data
        chunk = workdir / "chunk.bin"
        chunk.write_bytes(hashlib.shake_256(str(n).encode()).digest(min(free - 32, 2048) * 4096))
        debugfs_out = run(["debugfs", "-w", "-R", f"write {chunk} more-{n}.bin", stick], quiet=True).stdout
        assert "Allocated inode" in debugfs_out, debugfs_out
        free = free_blocks(stick)
        n += 1
    return stick


def test_full_stick_and_too_little_ram(kernel, pylive_initrd, live_iso, qemu_workdir):
    # dracut-ng's device mode makes overlay/ and ovlwork/ at the top of the device on first use
    stick = full_ext4_stick(qemu_workdir)
    before = sha256(stick)
    r1 = run_boot(kernel, pylive_initrd, live_iso, stick, "rd.overlay=LABEL=persist rd.retry=5",
                  workdir=qemu_workdir, name="boot1-full")
    assert not r1.report and not r1.timed_out, r1.console[-3000:]
    lines = pylive_lines(r1.console, "is full")
    assert len(lines) == 1, r1.console[-3000:]
    assert re.fullmatch(
        r"pylive: the persistent overlay's device LABEL=persist is full \(\d{1,3} KiB of \d\d MiB free\): overlay/ "
        r"and ovlwork/ cannot be made there, and were not: free some room on it, or name another "
        r"device in rd.overlay=", lines[0]), lines
    assert "Traceback" not in r1.console
    assert sha256(stick) == before  # mounted read-only to look, never writable
    assert "ovlwork" not in debugfs(stick, "ls /")

    # rd.live.ram on a 1 GiB machine: the copy would leave less than rd.minmem (1024 MiB) free
    r2 = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={live_iso.label}" rd.live.ram rd.retry=5 {NO_SHELL_ARGS}',
              cdrom=live_iso.path, workdir=qemu_workdir / "boot2-ram", timeout_s=240, memory_mb=1024)
    assert not r2.report and not r2.timed_out, r2.console[-3000:]
    lines = pylive_lines(r2.console, "does not fit in RAM")
    assert len(lines) == 1, r2.console[-3000:]
    assert re.fullmatch(
        r"pylive: rd.live.ram: /LiveOS/squashfs.img \(\d+ MiB\) does not fit in RAM \(\d+ MiB, of which "
        r"rd.minmem=1024 MiB must stay free\): boot without rd.live.ram, lower rd.minmem, or give the machine "
        r"more memory", lines[0]), lines


# What a shell would print on the console if it ever ran these (no spaces: ${IFS}); the marker is not in
# the text itself.
MARK_SUBST = "$(printf${IFS}%s%s${IFS}ZQ${IFS}XJ>/dev/kmsg)"
MARK_BACKTICK = "`printf${IFS}%s%s${IFS}QK${IFS}WV>/dev/kmsg`"


def test_hostile_command_line(kernel, pylive_initrd, live_iso, qemu_workdir):
    # 1. boots: an overlay device that does not exist, named with quotes, $(...), backticks, a byte that is not
    # UTF-8 (\xff, as a boot loader can pass it) and a long tail; words separated by a newline and a tab
    hostile = f"LABEL=it's{MARK_SUBST}{MARK_BACKTICK};reboot\"q\"\udcff{'x' * 600}"
    cmdline = (f'"root=live:CDLABEL={live_iso.label}" rd.live.overlay={hostile}\nrd.live.overlay.nouserconfirmprompt'
               f"\trd.retry=3 pylive.junk=a'b {NO_SHELL_ARGS}")
    r1 = boot(kernel, pylive_initrd, cmdline, cdrom=live_iso.path, workdir=qemu_workdir / "boot1-hostile",
              timeout_s=240)
    assert r1.report, r1.console[-3000:]
    assert "ZQXJ" not in r1.console and "QKWV" not in r1.console  # nothing reached a shell
    assert "Traceback" not in r1.console and "internal error" not in r1.console
    missing = pylive_lines(r1.console, "persistent overlay device LABEL=it")
    assert len(missing) == 1, r1.console[-3000:]
    assert "\\xff" in missing[0] and "is not there" in missing[0], missing
    assert len(missing[0]) < 1000, len(missing[0])
    assert "Press [Enter]" not in r1.console  # the word after the newline was read
    root_ok(r1.report)
    assert written(r1.report)[0] == ""  # a temporary overlay

    # 2. fails: the live medium's label is hostile; one line after rd.retry, with the label escaped
    label = f"Fedora\"{MARK_SUBST}\"'{MARK_BACKTICK}\\x20\udcfe"
    r2 = boot(kernel, pylive_initrd, f"root=live:CDLABEL={label} rd.retry=4 {NO_SHELL_ARGS}",
              cdrom=live_iso.path, workdir=qemu_workdir / "boot2-hostile-root", timeout_s=240)
    assert not r2.report and not r2.timed_out, r2.console[-3000:]
    assert "ZQXJ" not in r2.console and "QKWV" not in r2.console
    assert "Traceback" not in r2.console and "internal error" not in r2.console
    lines = pylive_lines(r2.console, "not found after")
    assert len(lines) == 1, r2.console[-3000:]
    assert lines[0].startswith("pylive: live medium CDLABEL=Fedora"), lines
    assert "\\xfe" in lines[0] and "check the label or UUID on root=, or raise rd.retry" in lines[0], lines

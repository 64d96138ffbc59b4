"""rd.live.check, rd.live.ram and rd.writable.fsimg through the whole boot, against a fake system."""

from __future__ import annotations

import errno
import logging

import pytest

from pylive import boot
from pylive.cmdline import Args
from pylive.errors import CopyFailed, LiveError, MediaCheckFailed, StepFailed
from pylive.isomd5 import Status, Verdict
from pylive.log import NOTICE
from pylive.options import parse_options
from pylive.plan import CopyToRam, Notice, ResizeTmpfs, Step
from pylive.planner import Mode, plan_copy_to_ram
from pylive.ramcopy import Room

from .fakesystem import FakeSystem, live_iso_system

CMDLINE = '"root=live:CDLABEL=Test Live 1" rd.live.image'
MIB = 1 << 20
SQUASH = "/run/initramfs/live/LiveOS/squashfs.img"


def run(cmdline: str, system: FakeSystem) -> boot.BootResult:
    return boot.run(parse_options(Args.from_text(cmdline)), system, "/sysroot")


def ram_system(squash_mib: int = 700, **kw: object) -> FakeSystem:
    sys = live_iso_system(**kw)  # type: ignore[arg-type]
    sys.file_sizes["LiveOS/squashfs.img"] = squash_mib * MIB
    return sys


RAM_CALLS = [
    "modprobe loop squashfs dm_mod dm_snapshot",
    r"wait /dev/disk/by-label/Test\x20Live\x201 180",
    r"ln -s /dev/disk/by-label/Test\x20Live\x201 /run/initramfs/livedev",
    "mkdir /run/initramfs/live",
    "mount -t iso9660 -o ro /dev/sr0 /run/initramfs/live",
    f"cp {SQUASH} /run/initramfs/squashed.img",
    "verify /run/initramfs/squashed.img",
    "losetup -r /dev/loop0 /run/initramfs/squashed.img",
    "mkdir /run/initramfs/squashfs",
    "mount -t squashfs -o ro /dev/loop0 /run/initramfs/squashfs",
    "losetup -r /dev/loop1 /run/initramfs/squashfs/LiveOS/rootfs.img",
    "truncate -s 34359738368 /overlay",
    "losetup /dev/loop2 /overlay",
    "dmsetup create live-rw 0 131072 snapshot 7:1 7:2 PO 8",
    "dmsetup create --readonly live-base 0 131072 linear 7:1 0",
    "ln -s /dev/loop1 /dev/live-base",
    "mount -t ext4 -o defaults /dev/mapper/live-rw /sysroot",
    "umount -l /run/initramfs/squashfs",
    "umount /run/initramfs/live",
    "ln -s null /dev/root",
    "mkdir /run/initramfs",
    "touch /run/initramfs/.need_shutdown",
    "write /run/initramfs/pylive.json",
]


def test_ram_copies_verifies_boots_from_the_copy_and_releases_the_medium(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = ram_system()
    result = run(CMDLINE + " rd.live.ram", sys)
    assert sys.calls == RAM_CALLS
    assert result.mode is Mode.DM_SNAPSHOT_TEMP
    assert "/run/initramfs/live" not in sys.mounts
    # what rd.live.ram was asked for: notices, on the console even under `quiet`
    notices = [r.getMessage() for r in pylive_logs.records if r.levelno == NOTICE]
    assert len(notices) == 2
    assert notices[0].startswith(f"copied {SQUASH} to RAM as /run/initramfs/squashed.img and verified it: 700 MiB in ")
    assert notices[1] == ("the live medium is no longer used and was unmounted from /run/initramfs/live: "
                          "it can be removed")


def test_ram_grows_run_when_the_copy_does_not_fit(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = ram_system()
    sys.rooms["/run/initramfs"] = Room("/run", "tmpfs", 800 * MIB, 790 * MIB)  # systemd: 20% of RAM
    run(CMDLINE + " rd.live.ram", sys)
    i = sys.calls.index(f"cp {SQUASH} /run/initramfs/squashed.img")
    assert sys.calls[i - 1] == "mount -o remount,size=1734m /run"  # used 10 + image 700 + rd.minmem 1024
    assert "growing /run from 800 to 1734 MiB, so that the RAM copy fits" in pylive_logs.messages


def test_ram_leaves_run_alone_when_it_is_large_enough() -> None:
    sys = ram_system()
    sys.rooms["/run/initramfs"] = Room("/run", "tmpfs", 4000 * MIB, 3990 * MIB)
    run(CMDLINE + " rd.live.ram", sys)
    assert not any(c.startswith("mount -o remount") for c in sys.calls)


def test_ram_on_a_full_non_tmpfs_run_stops_before_copying() -> None:
    sys = ram_system()
    sys.rooms["/run/initramfs"] = Room("/run", "ext4", 800 * MIB, 300 * MIB)
    with pytest.raises(LiveError) as e:
        run(CMDLINE + " rd.live.ram", sys)
    assert str(e.value) == ("rd.live.ram: /run (ext4) has 300 MiB free; the copy of /LiveOS/squashfs.img needs "
                            "700 MiB: boot without rd.live.ram")
    assert not any(c.startswith("cp ") for c in sys.calls) and sys.mounts == {}


@pytest.mark.parametrize(("damage", "problem"), [
    ("copy", "the block at 696 MiB differs"),  # the fake changes the last block
    ("source", f"{700 * MIB - 4096} bytes were read, the file has {700 * MIB}"),
])
def test_a_copy_that_is_not_what_was_read_is_not_used(damage: str, problem: str) -> None:
    sys = ram_system(squash_mib=700)
    sys.copy_damage = damage
    with pytest.raises(CopyFailed) as e:
        run(CMDLINE + " rd.live.ram", sys)
    assert str(e.value) == (
        f"rd.live.ram: the RAM copy /run/initramfs/squashed.img of {SQUASH} is not what was read ({problem}): boot "
        "again, or without rd.live.ram; if it happens again, check the medium with rd.live.check")
    assert "rm /run/initramfs/squashed.img" in sys.calls  # the rollback frees the RAM
    assert not any(c.startswith("losetup") for c in sys.calls) and sys.mounts == {}


@pytest.mark.parametrize(("err", "message"), [
    (OSError(errno.ENOSPC, "No space left on device", "/run/initramfs/squashed.img"),
     f"rd.live.ram: no room in RAM for the copy of {SQUASH} (700 MiB) at /run/initramfs/squashed.img: "
     "give the machine more memory, or boot without rd.live.ram"),
    (OSError(errno.EIO, "Input/output error (reading at 12 MiB)", SQUASH),
     f"rd.live.ram: reading {SQUASH} on /dev/sr0 for the RAM copy failed: Input/output error (reading at 12 MiB): "
     "/dev/sr0 may be damaged or unreadable: check it with rd.live.check, or with `pylive check-media /dev/sr0` on "
     "another machine, and write it again if it fails; or boot without rd.live.ram"),
])
def test_copy_errors_are_one_line(err: OSError, message: str) -> None:
    sys = ram_system()

    def failing(src: str, dest: str) -> object:
        raise err

    sys.copy_file = failing  # type: ignore[method-assign,assignment]
    sys.paths.add("/dev/sr0")  # the medium is still there (tests/unit/test_medium_faults.py: pulled out)
    with pytest.raises(CopyFailed) as e:
        run(CMDLINE + " rd.live.ram", sys)
    assert str(e.value) == message
    assert sys.mounts == {}


def test_ram_too_big_names_the_image_and_rd_minmem() -> None:
    sys = ram_system(squash_mib=3500)
    with pytest.raises(LiveError) as e:
        run(CMDLINE + " rd.live.ram", sys)
    assert str(e.value) == ("rd.live.ram: /LiveOS/squashfs.img (3500 MiB) does not fit in RAM (4096 MiB, of which "
                            "rd.minmem=1024 MiB must stay free): boot without rd.live.ram, lower rd.minmem, or give "
                            "the machine more memory")


def uncompressed_system(rootfs_mib: int = 700) -> FakeSystem:
    sys = live_iso_system(medium={"LiveOS/rootfs.img"})
    img = "/run/initramfs/live/LiveOS/rootfs.img"
    sys.fstypes[img] = "ext4"
    sys.sectors[img] = rootfs_mib * 2048
    sys.file_sizes["LiveOS/rootfs.img"] = rootfs_mib * MIB
    return sys


def test_ram_of_an_uncompressed_image_is_checked_copied_and_used_writable() -> None:
    sys = uncompressed_system()
    result = run(CMDLINE + " rd.live.ram", sys)
    assert result.mode is Mode.DM_LINEAR_RW
    i = sys.calls.index("cp /run/initramfs/live/LiveOS/rootfs.img /run/initramfs/rootfs.img")
    assert sys.calls[i + 1 : i + 5] == [
        "verify /run/initramfs/rootfs.img",
        "losetup /dev/loop0 /run/initramfs/rootfs.img",
        "dmsetup create live-rw 0 1433600 linear 7:0 0",
        "mount -t ext4 -o defaults /dev/mapper/live-rw /sysroot",  # no live-base: the image is written to
    ]
    assert "umount /run/initramfs/live" in sys.calls


def test_ram_copy_of_the_uncompressed_image_below_rd_minmem_is_a_warning(pylive_logs) -> None:
    # dracut-ng holds only the squashfs copy to rd.minmem (dracut-live.md, rd.minmem row)
    sys = uncompressed_system(3500)
    assert run(CMDLINE + " rd.live.ram", sys).mode is Mode.DM_LINEAR_RW
    warning = ("rd.live.ram: the copy of /LiveOS/rootfs.img (3500 MiB) leaves 596 MiB of RAM free, less than "
               "rd.minmem=1024 MiB: the system may run short of memory")
    assert (logging.WARNING, warning) in [(r.levelno, r.getMessage()) for r in pylive_logs.records]
    assert "cp /run/initramfs/live/LiveOS/rootfs.img /run/initramfs/rootfs.img" in sys.calls


def test_ram_copy_of_the_uncompressed_image_that_cannot_fit_is_refused() -> None:
    sys = uncompressed_system(4000)
    with pytest.raises(LiveError) as e:
        run(CMDLINE + " rd.live.ram", sys)
    assert str(e.value) == ("rd.live.ram: /LiveOS/rootfs.img (4000 MiB) does not fit in RAM (4096 MiB, of which the "
                            "initramfs needs 128 MiB): boot without rd.live.ram, or give the machine more memory")
    assert not any(c.startswith("cp ") for c in sys.calls)


def test_writable_fsimg_of_a_small_image_boots_on_a_1_gib_machine(pylive_logs) -> None:
    # Debian's 059 and dracut-ng boot it (they do not check this copy); pylive warns and boots too
    sys = live_iso_system()
    sys.mem_mib = 976
    sys.file_sizes["LiveOS/rootfs.img"] = 300 * MIB
    assert run(CMDLINE + " rd.writable.fsimg", sys).mode is Mode.DM_LINEAR_RW
    assert ("rd.writable.fsimg: the copy of /run/initramfs/squashfs/LiveOS/rootfs.img (300 MiB) leaves 676 MiB of "
            "RAM free, less than rd.minmem=1024 MiB: the system may run short of memory") in pylive_logs.messages
    assert "cp /run/initramfs/squashfs/LiveOS/rootfs.img /run/initramfs/fsimg/rootfs.img" in sys.calls


def test_ram_copy_of_the_squashfs_below_rd_minmem_is_refused_on_a_1_gib_machine() -> None:
    sys = ram_system(squash_mib=300)
    sys.mem_mib = 976
    with pytest.raises(LiveError, match=r"^rd.live.ram: /LiveOS/squashfs.img \(300 MiB\) does not fit in RAM "
                                        r"\(976 MiB, of which rd.minmem=1024 MiB must stay free\)"):
        run(CMDLINE + " rd.live.ram", sys)


def test_writable_fsimg_copies_the_inner_image_and_keeps_the_medium() -> None:
    sys = live_iso_system()
    sys.file_sizes["LiveOS/rootfs.img"] = 64 * MIB
    result = run(CMDLINE + " rd.writable.fsimg", sys)
    assert result.mode is Mode.DM_LINEAR_RW
    i = sys.calls.index("mkdir /run/initramfs/fsimg")
    assert sys.calls[i + 1 : i + 4] == [
        "cp /run/initramfs/squashfs/LiveOS/rootfs.img /run/initramfs/fsimg/rootfs.img",
        "verify /run/initramfs/fsimg/rootfs.img",
        "losetup /dev/loop1 /run/initramfs/fsimg/rootfs.img",
    ]
    assert "umount /run/initramfs/live" not in sys.calls  # without rd.live.ram the medium stays, as in dracut


def test_writable_fsimg_with_ram_copies_only_the_root_image_and_releases_the_medium() -> None:
    # dracut copies the squashfs to RAM, then the root image out of it, and holds both
    sys = ram_system(squash_mib=1500)
    sys.file_sizes["LiveOS/rootfs.img"] = 1800 * MIB  # 4096 - 1800 >= 1024: fits without the squashfs copy
    result = run(CMDLINE + " rd.live.ram rd.writable.fsimg", sys)
    assert result.mode is Mode.DM_LINEAR_RW
    assert not any("squashed.img" in c for c in sys.calls)
    assert f"losetup -r /dev/loop0 {SQUASH}" in sys.calls
    i = sys.calls.index("cp /run/initramfs/squashfs/LiveOS/rootfs.img /run/initramfs/fsimg/rootfs.img")
    assert sys.calls[i + 1 : i + 3] == ["verify /run/initramfs/fsimg/rootfs.img",
                                        "losetup /dev/loop1 /run/initramfs/fsimg/rootfs.img"]
    j = sys.calls.index("mount -t ext4 -o defaults /dev/mapper/live-rw /sysroot")
    assert sys.calls[j + 1 : j + 4] == ["umount /run/initramfs/squashfs", "losetup -d /dev/loop0",
                                        "umount /run/initramfs/live"]
    assert sys.loops == {"/dev/loop1": "/run/initramfs/fsimg/rootfs.img"}


def _copy(option: str, image_mib: int, *, in_ram_mib: int = 0, minmem_refuses: bool = False,
          room: Room | None = None) -> tuple[Step, ...]:
    opts = parse_options(Args.from_text(CMDLINE + " rd.live.ram"))
    return plan_copy_to_ram(opts, option, "/run/initramfs/live/LiveOS/x.img", "/run/initramfs/x.img",
                            image_bytes=image_mib * MIB, mem_total_mib=4096, room=room, in_ram_mib=in_ram_mib,
                            minmem_refuses=minmem_refuses)


@pytest.mark.parametrize(("image_mib", "in_ram_mib", "minmem_refuses", "outcome"), [
    (3072, 0, True, "copy"),  # leaves 1024 = rd.minmem: fits
    (3073, 0, True, "refused"),  # the squashfs copy (dracut-ng's check_live_ram)
    (3073, 0, False, "warned"),  # the other copies: a warning
    (3968, 0, False, "warned"),  # leaves exactly RAM_MARGIN_MIB
    (3969, 0, False, "refused"),  # cannot fit
    (2000, 1969, False, "refused"),  # what this boot already holds counts
])
def test_ram_rules(image_mib: int, in_ram_mib: int, minmem_refuses: bool, outcome: str) -> None:
    if outcome == "refused":
        with pytest.raises(LiveError, match="does not fit in RAM"):
            _copy("rd.live.ram", image_mib, in_ram_mib=in_ram_mib, minmem_refuses=minmem_refuses)
        return
    steps = _copy("rd.live.ram", image_mib, in_ram_mib=in_ram_mib, minmem_refuses=minmem_refuses)
    assert isinstance(steps[-1], CopyToRam)
    assert any(isinstance(s, Notice) for s in steps) == (outcome == "warned")


def test_run_grows_for_a_copy_that_is_only_warned_about() -> None:
    room = Room("/run", "tmpfs", 800 * MIB, 790 * MIB)
    steps = _copy("rd.writable.fsimg", 3500, room=room)
    assert [type(s) for s in steps] == [Notice, ResizeTmpfs, CopyToRam]
    assert steps[1] == ResizeTmpfs("/run", 10 + 3500 + 1024, 800)


def test_writable_fsimg_with_ram_that_cannot_fit() -> None:
    sys = ram_system(squash_mib=1500)
    sys.file_sizes["LiveOS/rootfs.img"] = 4000 * MIB
    with pytest.raises(LiveError) as e:
        run(CMDLINE + " rd.live.ram rd.writable.fsimg", sys)
    assert str(e.value) == (
        "rd.writable.fsimg: /run/initramfs/squashfs/LiveOS/rootfs.img (4000 MiB) does not fit in RAM (4096 MiB, of "
        "which the initramfs needs 128 MiB): boot without rd.writable.fsimg, or give the machine more memory")
    assert sys.mounts == {} and sys.loops == {}


def test_a_rollback_does_not_detach_a_loop_twice() -> None:
    sys = ram_system(squash_mib=1500)
    sys.file_sizes["LiveOS/rootfs.img"] = 64 * MIB
    sys.fail_on = "touch /run/initramfs/.need_shutdown"
    with pytest.raises(StepFailed):
        run(CMDLINE + " rd.live.ram rd.writable.fsimg", sys)
    assert sys.calls.count("losetup -d /dev/loop0") == 1
    assert sys.calls.count("umount /run/initramfs/live") == 1  # released, so the rollback leaves it
    assert sys.loops == {}


def test_no_overlay_over_the_medium_image_needs_rw() -> None:
    with pytest.raises(LiveError, match=r"but the live medium is mounted read-only: add rw to the command line"):
        run(CMDLINE + " rd.live.overlay=none", uncompressed_system())


def test_ram_with_the_persistent_overlay_on_the_medium_keeps_it_mounted(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = ram_system()
    sys.links["/dev/disk/by-label/persist"] = "/dev/sr0"
    sys.labels["/dev/sr0"] = ("Test Live 1", "U")
    sys.contents["/dev/sr0"].add("LiveOS/overlay-Test Live 1-U")
    sys.file_sizes["LiveOS/overlay-Test Live 1-U"] = 64 * MIB
    result = run(CMDLINE + " rd.live.ram rd.live.overlay=LABEL=persist", sys)
    assert result.mode is Mode.DM_SNAPSHOT_PERSISTENT
    assert "umount /run/initramfs/live" not in sys.calls
    assert ("rd.live.ram: the live medium stays mounted at /run/initramfs/live: the persistent overlay is on it, so "
            "it must not be removed") in pylive_logs.messages


# --- rd.live.check ---


def test_check_runs_before_the_medium_is_mounted_and_logs_one_line(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = live_iso_system()
    run(CMDLINE + " rd.live.check", sys)
    assert sys.calls[2:4] == ["checkisomd5 /dev/sr0",
                              r"ln -s /dev/disk/by-label/Test\x20Live\x201 /run/initramfs/livedev"]
    passed = [r for r in pylive_logs.records if "passed its media check" in r.getMessage()]
    assert len(passed) == 1 and passed[0].getMessage().startswith(
        "rd.live.check: /dev/sr0 passed its media check (the implanted MD5 matches): 700 MiB in ")
    assert passed[0].levelno == NOTICE  # shown on the console under `quiet` (test_log.py)


def test_check_failure_stops_with_one_line_held_on_the_console() -> None:
    sys = live_iso_system()
    sys.verdict = Verdict(Status.FAILED, "MD5 mismatch in fragment 7 of 20, within the first 38%")
    with pytest.raises(MediaCheckFailed) as e:
        run(CMDLINE + " rd.live.check", sys)
    line = ("the medium /dev/sr0 is damaged (MD5 mismatch in fragment 7 of 20, within the first 38%): write it again, "
            "or boot with rd.live.check=0 to skip the check")
    assert str(e.value) == line
    assert sys.held == [line]
    assert sys.mounts == {} and "mount" not in " ".join(sys.calls)


@pytest.mark.parametrize(("verdict", "warning"), [
    (Verdict(Status.NO_CHECKSUM), "rd.live.check: the medium /dev/sr0 carries no implanted MD5 (implantisomd5 was "
                                  "not run on its image): it was not checked"),
    (Verdict(Status.NOT_ISO), "rd.live.check: the medium /dev/sr0 has no ISO 9660 volume descriptor, so no "
                              "implanted MD5: it was not checked"),
    (Verdict(Status.ABORTED, done=300, total=1000), "rd.live.check: the check of the medium /dev/sr0 was skipped "
                                                    "with Esc at 30%"),
])
def test_check_without_md5_or_skipped_warns_once_and_boots(verdict: Verdict, warning: str,
                                                           pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = live_iso_system()
    sys.verdict = verdict
    result = run(CMDLINE + " rd.live.check", sys)
    assert result.mode is Mode.DM_SNAPSHOT_TEMP and sys.held == []
    assert [r.getMessage() for r in pylive_logs.records if r.levelno == logging.WARNING] == [warning]


def test_check_of_a_hybrid_iso_on_a_stick_reads_the_whole_disk() -> None:
    sys = live_iso_system()
    sys.links = {r"/dev/disk/by-label/Test\x20Live\x201": "/dev/sdb1"}
    sys.fstypes["/dev/sdb1"] = "iso9660"
    sys.contents["/dev/sdb1"] = sys.contents["/dev/sr0"]
    sys.parents["/dev/sdb1"] = "/dev/sdb"
    sys.fstypes["/dev/sdb"] = "iso9660"
    run(CMDLINE + " rd.live.check", sys)
    assert "checkisomd5 /dev/sdb" in sys.calls


def test_check_of_a_partition_on_a_partitioned_disk_reads_the_partition() -> None:
    sys = live_iso_system()
    sys.links = {r"/dev/disk/by-label/Test\x20Live\x201": "/dev/sdb1"}
    sys.fstypes["/dev/sdb1"] = "iso9660"
    sys.contents["/dev/sdb1"] = sys.contents["/dev/sr0"]
    sys.parents["/dev/sdb1"] = "/dev/sdb"  # a GPT disk: no ISO at its start
    run(CMDLINE + " rd.live.check", sys)
    assert "checkisomd5 /dev/sdb1" in sys.calls


def test_check_of_a_medium_that_is_not_an_iso_says_so(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = live_iso_system()
    sys.fstypes["/dev/sr0"] = "vfat"
    run(CMDLINE + " rd.live.check", sys)
    assert not any(c.startswith("checkisomd5") for c in sys.calls)
    assert ("rd.live.check: the live medium CDLABEL=Test Live 1 is vfat, not an ISO image: it carries no implanted "
            "MD5 and is not checked") in pylive_logs.messages


def test_check_zero_does_not_check() -> None:
    sys = live_iso_system()
    run(CMDLINE + " rd.live.check=0", sys)
    assert not any(c.startswith("checkisomd5") for c in sys.calls)


def test_explain_lists_the_check_and_the_copy_without_running_them() -> None:
    sys = ram_system()
    result = boot.run(parse_options(Args.from_text(CMDLINE + " rd.live.check rd.live.ram")), sys, dry_run=True)
    steps = [s.describe() for s in result.steps]
    assert steps[2] == "check the implanted MD5 of <livedev> (Esc skips)"
    assert f"copy {SQUASH} to RAM as /run/initramfs/squashed.img and verify it" in steps
    assert steps[-2] == "umount /run/initramfs/live: the root is in RAM, the medium can be removed"
    assert not any(c.startswith(("checkisomd5", "cp ", "verify", "umount /run/initramfs/live")) for c in sys.calls)


def test_ram_copy_of_a_squashfs_partition_has_no_medium_to_unmount(pylive_logs: pytest.LogCaptureFixture) -> None:
    # the partition is the image itself: nothing is mounted at /run/initramfs/live
    sys = FakeSystem()
    sys.links["/dev/disk/by-label/LIVESQ"] = "/dev/sdb2"
    sys.fstypes["/dev/sdb2"] = "squashfs"
    sys.contents["/dev/sdb2"] = {"LiveOS/rootfs.img"}
    sys.fstypes["/run/initramfs/squashfs/LiveOS/rootfs.img"] = "ext4"
    sys.sectors["/run/initramfs/squashfs/LiveOS/rootfs.img"] = 131072
    sys.file_sizes["/dev/sdb2"] = 300 * MIB
    run("root=live:LABEL=LIVESQ rd.live.ram", sys)
    assert "cp /dev/sdb2 /run/initramfs/squashed.img" in sys.calls
    assert not any(c.startswith("umount /run/initramfs/live") for c in sys.calls)
    assert "the live medium is no longer used: it can be removed" in pylive_logs.messages
    assert not [r for r in pylive_logs.records if r.levelname == "WARNING"]

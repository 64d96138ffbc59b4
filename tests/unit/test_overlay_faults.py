"""A persistent overlay's device that must not be written: write-protected, a filesystem that needs
repair, or full (issue 14's fault matrix; the QEMU side is tests/qemu/test_faults_persist.py)."""

from __future__ import annotations

import struct

import pytest

from pylive import boot
from pylive.cmdline import Args
from pylive.errors import LiveError
from pylive.options import parse_options
from pylive.probe import FsHealth, fs_health
from pylive.ramcopy import MIB, Room

from .test_decisions import DM_P, DM_P_RO, LIVE, OV_P, OV_P_RO, OVL, P, machine

# --- the superblock reader ---


def ext4_head(state: int, compat: int = 0x4, incompat: int = 0) -> bytes:
    head = bytearray(4096)
    struct.pack_into("<H", head, 1024 + 0x38, 0xEF53)
    struct.pack_into("<H", head, 1024 + 0x3A, state)
    struct.pack_into("<II", head, 1024 + 0x5C, compat, incompat)
    return bytes(head)


def fat_head(fat32: bool, state: int) -> bytes:
    head = bytearray(4096)
    head[510:512] = b"\x55\xaa"
    if fat32:
        head[82:87], head[65] = b"FAT32", state
    else:
        head[54:59], head[37] = b"FAT16", state
    return bytes(head)


@pytest.mark.parametrize(("head", "want"), [
    (ext4_head(1), FsHealth()),
    (ext4_head(1, incompat=0x4), FsHealth(replay=True)),  # any unclean shutdown: the journal is replayed
    (ext4_head(0, incompat=0x4), FsHealth(replay=True)),
    (ext4_head(3), FsHealth(repair="the kernel recorded errors in it", fsck="e2fsck -f")),
    (ext4_head(2, incompat=0x4), FsHealth(repair="the kernel recorded errors in it", fsck="e2fsck -f", replay=True)),
    (ext4_head(0), FsHealth(repair="it is marked as not cleanly unmounted and has no journal to replay",
                            fsck="e2fsck -f")),
    (ext4_head(0, compat=0), FsHealth(repair="it is marked as not cleanly unmounted and has no journal to replay",
                                      fsck="e2fsck -f")),  # ext2
    (fat_head(False, 0), FsHealth()),
    (fat_head(True, 0), FsHealth()),
    (fat_head(False, 1), FsHealth(repair="it was not cleanly unmounted (its dirty bit is set) and FAT has no journal",
                                  fsck="fsck.vfat -a")),
    (fat_head(True, 3), FsHealth(repair="it was not cleanly unmounted (its dirty bit is set) and FAT has no journal",
                                 fsck="fsck.vfat -a")),
    (b"", FsHealth()),
    (ext4_head(3)[:1100], FsHealth()),  # cut short: nothing to read
])
def test_fs_health(head: bytes, want: FsHealth) -> None:
    assert fs_health(head) == want


# --- the boot ---

LOST = "this boot uses the overlay read-only, and changes go to a temporary overlay in RAM, lost at shutdown"
ERRORS = FsHealth(repair="the kernel recorded errors in it", fsck="e2fsck -f")


def run(cmdline: str, overlay: str, health: FsHealth, fstype: str = "ext4", room: Room | None = None):
    sys = machine("inner", overlay)
    sys.fstypes["/dev/sdb1"] = fstype
    sys.health["/dev/sdb1"] = health
    if room is not None:
        sys.rooms["/run/initramfs/overlayfs"] = room
    return sys, boot.run(parse_options(Args.from_text(cmdline)), sys)


@pytest.mark.parametrize(("overlay", "mode"), [("ovl-dir", OV_P_RO), ("dm-cow", DM_P_RO)])
def test_write_protected_device_boots_read_only_with_one_warning(overlay, mode, pylive_logs) -> None:
    sys, result = run(f"{LIVE} {P} rd.live.overlay.reset", overlay, FsHealth(read_only=True))
    assert result.mode is mode
    assert "mount -t ext4 -o ro,noload /dev/sdb1 /run/initramfs/overlayfs" in sys.calls
    on_device = ("write /run/initramfs/overlayfs", "wipe ", "empty ", "mkdir /run/initramfs/overlayfs/")
    assert not [c for c in sys.calls if c.startswith(on_device)]
    warnings = [r.getMessage() for r in pylive_logs.records if "write-protected" in r.getMessage()]
    assert warnings == [
        f"the persistent overlay's device LABEL=persist (/dev/sdb1, ext4) is write-protected: {LOST}; "
        "rd.live.overlay.reset was not done: to keep changes, switch off the stick's write protection and boot again"]


@pytest.mark.parametrize(("fstype", "health", "fsck"), [
    ("ext4", ERRORS, "e2fsck -f"),
    ("vfat", FsHealth(repair="it was not cleanly unmounted", fsck="fsck.vfat -a"), "fsck.vfat -a"),
])
def test_filesystem_that_needs_repair_is_not_written(fstype, health, fsck, pylive_logs) -> None:
    sys, result = run(f"{LIVE} {P}", "ovl-dir", health, fstype)
    assert result.mode is OV_P_RO
    options = "ro,noload" if fstype == "ext4" else "ro"
    assert f"mount -t {fstype} -o {options} /dev/sdb1 /run/initramfs/overlayfs" in sys.calls
    on_device = ("write /run/initramfs/overlayfs", "mkdir /run/initramfs/overlayfs/")
    assert not [c for c in sys.calls if c.startswith(on_device)]
    warning = next(r.getMessage() for r in pylive_logs.records if "needs repair" in r.getMessage())
    assert warning.endswith(f"{LOST}: to keep changes, boot once without the persistent overlay and run {fsck} "
                            "/dev/sdb1 (or repair it on another computer), then boot again")


def test_journal_to_replay_is_said_and_the_overlay_is_used(pylive_logs) -> None:
    sys, result = run(f"{LIVE} {P}", "dm-cow", FsHealth(replay=True))
    assert result.mode is DM_P
    i = sys.calls.index("mount -t ext4 -o ro /dev/sdb1 /run/initramfs/overlayfs")  # found first, then written
    assert sys.calls[i + 1] == "mount -t none -o remount,rw /dev/sdb1 /run/initramfs/overlayfs", sys.calls[i:]
    assert any("was not cleanly unmounted: the kernel replays its journal" in r.getMessage()
               for r in pylive_logs.records)


def test_readonly_option_mounts_ext4_without_its_journal(pylive_logs) -> None:
    sys, result = run(f"{LIVE} {P} rd.live.overlay.readonly", "ovl-dir", FsHealth(replay=True))
    assert result.mode is OV_P_RO
    assert "mount -t ext4 -o ro,noload /dev/sdb1 /run/initramfs/overlayfs" in sys.calls
    assert not any("journal" in r.getMessage() for r in pylive_logs.records)  # nothing replayed, nothing to say


def test_full_device_refuses_to_make_the_overlay_and_is_never_mounted_writable() -> None:
    sys = machine("inner", "nothing")
    sys.rooms["/run/initramfs/overlayfs"] = Room("/run/initramfs/overlayfs", "ext4", 32 * MIB, 200 * 1024)
    with pytest.raises(LiveError) as e:
        boot.run(parse_options(Args.from_text(f"{LIVE} rd.overlay=LABEL=persist")), sys)
    assert "mount -t auto -o ro /dev/sdb1 /run/initramfs/overlayfs" in sys.calls
    made = ("mkdir /run/initramfs/overlayfs/", "write ")
    assert not [c for c in sys.calls if "remount,rw" in c or c.startswith(made)]
    assert str(e.value) == (
        "the persistent overlay's device LABEL=persist is full (200 KiB of 32 MiB free): overlay/ and ovlwork/ cannot "
        "be made there, and were not: free some room on it, or name another device in rd.overlay=")


def test_full_device_refuses_to_write_an_existing_overlayfs_upper() -> None:
    sys = machine("inner", "ovl-dir")
    sys.rooms["/run/initramfs/overlayfs"] = Room("/run/initramfs/overlayfs", "ext4", 64 * MIB, 0)
    with pytest.raises(LiveError) as e:
        boot.run(parse_options(Args.from_text(f"{LIVE} {P}")), sys)
    assert str(e.value) == (
        f"the persistent overlay's device LABEL=persist is full (0 KiB of 64 MiB free): this boot could not write to "
        f"the overlay /{OVL}, which is left as it is: free some room on it (boot with rd.live.overlay.readonly "
        "to reach your files)")
    assert not [c for c in sys.calls if c.startswith(("write ", "wipe ")) or "remount,rw /dev/sdb1" in c]
    assert sys.mounts == {} and sys.loops == {}  # unwound


def test_full_device_with_room_enough_or_read_only_boots() -> None:
    room = Room("/run/initramfs/overlayfs", "ext4", 64 * MIB, MIB)
    assert run(f"{LIVE} {P}", "ovl-dir", FsHealth(), room=room)[1].mode is OV_P
    full = Room("/run/initramfs/overlayfs", "ext4", 64 * MIB, 0)
    assert run(f"{LIVE} {P} rd.live.overlay.readonly", "ovl-dir", FsHealth(), room=full)[1].mode is OV_P_RO
    assert run(f"{LIVE} {P}", "dm-cow", FsHealth(), room=full)[1].mode is DM_P  # writes go into the file


def test_missing_overlay_leaves_its_device_read_only() -> None:
    sys, result = run(f"{LIVE} {P} rd.live.overlay.nouserconfirmprompt", "nothing", FsHealth())
    assert "mount -t ext4 -o ro /dev/sdb1 /run/initramfs/overlayfs" in sys.calls
    assert not [c for c in sys.calls if "remount,rw" in c]


DIRTY = "it was not cleanly unmounted (its dirty bit is set) and FAT has no journal"


def fat_stick(dirty_before: bool, write_protected: bool = False):  # type: ignore[no-untyped-def]
    """The overlay on the live medium itself, a FAT stick (livecd-iso-to-disk's layout) whose dirty bit
    the kernel sets while it is mounted writable, as on a real stick: read after pylive's own `rw`
    mount, the bit says nothing about the stick's state before this boot (found on the EFI stick of
    tests/qemu/test_livecd_sticks.py)."""
    sys = machine("inner", "ovl-dir", overlay_on_medium=True)
    sys.fstypes["/dev/sr0"] = "vfat"

    def health(dev: str) -> FsHealth:
        if dev != "/dev/sr0":
            return FsHealth()
        mounted_rw = any(c.startswith("mount -t vfat -o rw ") and c.endswith(" /run/initramfs/live")
                         for c in sys.calls)
        dirty = dirty_before or mounted_rw
        return FsHealth(read_only=write_protected, repair=DIRTY if dirty else "", fsck="fsck.vfat -a" if dirty else "")

    sys.fs_health = health  # type: ignore[method-assign]
    return sys


OVERLAY_ON_MEDIUM = f"{LIVE} rd.live.overlay=CDLABEL=Test\\x20Live\\x201"


def test_a_clean_fat_medium_mounted_rw_is_not_dirty_by_its_own_mount(pylive_logs) -> None:
    sys = fat_stick(dirty_before=False)
    result = boot.run(parse_options(Args.from_text(f"{OVERLAY_ON_MEDIUM} rw")), sys)
    assert result.mode is OV_P
    assert [c for c in sys.calls if c.startswith("mount ") and c.endswith(" /run/initramfs/live")][0].startswith(
        "mount -t vfat -o rw ")
    assert not [r for r in pylive_logs.records if "repair" in r.getMessage()]


def test_a_dirty_fat_medium_is_not_mounted_rw_and_its_overlay_is_read_only(pylive_logs) -> None:
    sys = fat_stick(dirty_before=True)
    result = boot.run(parse_options(Args.from_text(f"{OVERLAY_ON_MEDIUM} rw")), sys)
    assert result.mode is OV_P_RO
    assert not [c for c in sys.calls if " -o rw" in c or "remount,rw" in c]
    assert [m for m in pylive_logs.messages if m.startswith("the live medium")] == [
        f"the live medium CDLABEL=Test Live 1 (/dev/sr0, vfat) needs repair: {DIRTY}: pylive mounts it read-only, "
        "not read-write as rw asks: run fsck.vfat -a /dev/sr0 (or repair it on another computer), then boot again"]
    assert len([m for m in pylive_logs.messages if "needs repair" in m]) == 2  # the medium, then its overlay


def test_a_dirty_fat_medium_without_rw_warns_for_its_overlay_only(pylive_logs) -> None:
    sys = fat_stick(dirty_before=True)
    result = boot.run(parse_options(Args.from_text(OVERLAY_ON_MEDIUM)), sys)
    assert result.mode is OV_P_RO
    lines = [m for m in pylive_logs.messages if "needs repair" in m]
    assert len(lines) == 1 and lines[0].startswith("the persistent overlay's filesystem"), lines


def test_a_write_protected_medium_with_rw_boots_read_only(pylive_logs) -> None:
    sys = fat_stick(dirty_before=False, write_protected=True)
    result = boot.run(parse_options(Args.from_text(f"{OVERLAY_ON_MEDIUM} rw")), sys)
    assert result.mode is OV_P_RO
    assert not [c for c in sys.calls if " -o rw" in c or "remount,rw" in c]
    assert [m for m in pylive_logs.messages if m.startswith("the live medium")] == [(
        "the live medium CDLABEL=Test Live 1 (/dev/sr0, vfat) is write-protected: pylive mounts it read-only, not "
        "read-write as rw asks: switch off the stick's write protection to write to it")]

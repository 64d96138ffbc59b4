"""iso-scan's search, against a FakeSystem: order, mount options, skips, waiting for new disks."""

from __future__ import annotations

import pytest

from pylive import isoscan
from pylive.errors import LiveError, NotFoundOnDisks
from pylive.isoscan import describe_scan, find_file, pick_medium, scan_order
from pylive.plan import FindFile, Ref
from pylive.probe import BlockDevice, FsIdentity

from .fakesystem import FakeSystem

ISO = "isos/live.iso"
PROBE_DIR = "/run/initramfs/.pylive-probe"


def step(timeout_s: int = 30, device: str | None = None, path: str = "/" + ISO) -> FindFile:
    return FindFile(f"iso-scan/filename={path}", (path,), "/run/initramfs/isoscan", timeout_s, Ref("isoscandev"),
                    device=device)


def disk(name: str, parent: str | None = None, number: int = 0, *, removable: bool = False, size: int = 1 << 20,
         fstype: str | None = None) -> BlockDevice:
    return BlockDevice(name, size, None, fstype, parent, number, removable)


def host(*filesystems: tuple[BlockDevice, str | None, set[str]]) -> FakeSystem:
    sys = FakeSystem()
    for dev, fstype, files in filesystems:
        sys.devices.append(dev)
        if fstype:
            sys.fstypes[dev.node] = fstype
        sys.contents[dev.node] = files
    return sys


def mounts_of(sys: FakeSystem) -> list[str]:
    return [c for c in sys.calls if c.startswith(("mount", "umount"))]


def test_scan_order_is_removable_first_then_natural_names_disk_before_partitions() -> None:
    devices = [disk("sda10", "sda", 10), disk("sda2", "sda", 2), disk("sda"), disk("nvme0n1p1", "nvme0n1", 1),
               disk("sdb1", "sdb", 1, removable=True), disk("sr0", removable=True), disk("loop0"),
               disk("zram0"), disk("ram0"), disk("sdc", size=0, removable=True), disk("loop0p1", "loop0", 1)]
    assert [d.name for d in scan_order(devices)] == ["sdb1", "sr0", "nvme0n1p1", "sda", "sda2", "sda10"]


def test_found_file_stays_mounted_read_only_without_journal_replay() -> None:
    sys = host((disk("sda"), None, set()), (disk("sda1", "sda", 1), "ext4", {"home/x"}),
               (disk("sda2", "sda", 2), "ext4", {ISO}))
    assert find_file(sys, step()) == "/dev/sda2"
    assert mounts_of(sys) == [
        f"mount -t ext4 -o ro,noload /dev/sda1 {PROBE_DIR}",
        f"umount {PROBE_DIR}",
        f"mount -t ext4 -o ro,noload /dev/sda2 {PROBE_DIR}",
        f"mount -t none -o bind {PROBE_DIR} /run/initramfs/isoscan",
        f"umount {PROBE_DIR}",
    ]
    assert sys.mounts == {"/run/initramfs/isoscan": "/dev/sda2"}


@pytest.mark.parametrize(("fstype", "mount"), [
    ("xfs", "mount -t xfs -o ro,norecovery"), ("btrfs", "mount -t btrfs -o ro,rescue=nologreplay"),
    ("f2fs", "mount -t f2fs -o ro,norecovery"), ("vfat", "mount -t vfat -o ro"), ("exfat", "mount -t exfat -o ro"),
    ("ntfs", "mount -t ntfs3 -o ro"), ("iso9660", "mount -t iso9660 -o ro"),
])
def test_every_filesystem_is_mounted_so_that_nothing_is_written(fstype: str, mount: str) -> None:
    sys = host((disk("sda1", "sda", 1), fstype, {ISO}))
    find_file(sys, step())
    assert mounts_of(sys)[0] == f"{mount} /dev/sda1 {PROBE_DIR}"
    assert not any(",rw" in c or " rw " in c or "-o rw" in c for c in sys.calls)


def test_unclean_ntfs_and_unknown_filesystems_are_not_mounted(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = host((disk("sda1", "sda", 1), "ntfs", {ISO}), (disk("sda2", "sda", 2), "crypto_LUKS", {ISO}),
               (disk("sdb1", "sdb", 1), "ext4", {ISO}))
    sys.unclean["/dev/sda1"] = "Windows is hibernated or did not shut down cleanly (Fast Startup does this); ..."
    assert find_file(sys, step()) == "/dev/sdb1"
    assert not any("sda1" in c or "sda2" in c for c in mounts_of(sys))
    assert "iso-scan/filename=/isos/live.iso: sda1 (ntfs) is not looked at: Windows is hibernated" in pylive_logs.text


def test_a_filesystem_that_will_not_mount_read_only_is_skipped(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = host((disk("sda1", "sda", 1), "btrfs", {ISO}), (disk("sdb1", "sdb", 1), "vfat", {ISO}))
    sys.fail_on = "mount -t btrfs"
    assert find_file(sys, step()) == "/dev/sdb1"
    assert "sda1 (btrfs) cannot be mounted read-only with ro,rescue=nologreplay (" in pylive_logs.text


def test_waits_for_disks_that_appear_later_and_tries_each_once() -> None:
    sys = host((disk("sda1", "sda", 1), "ext4", set()))
    late = disk("sdb1", "sdb", 1, removable=True)
    sys.hotplug = [[], [disk("sdb", removable=True)], [late]]
    sys.fstypes[late.node], sys.contents[late.node] = "vfat", {ISO}
    assert find_file(sys, step()) == "/dev/sdb1"
    assert sys.waited_s == 3.0
    assert mounts_of(sys).count(f"mount -t ext4 -o ro,noload /dev/sda1 {PROBE_DIR}") == 1


def test_a_drive_without_a_disc_is_looked_at_again() -> None:
    sys = host((disk("sr0", removable=True), "iso9660", {ISO}))
    reads = []

    def fstype(path: str) -> str | None:
        reads.append(path)
        if len(reads) == 1:
            raise OSError(123, "No medium found")
        return "iso9660"

    sys.fstype = fstype  # type: ignore[method-assign]
    assert find_file(sys, step()) == "/dev/sr0"
    assert reads == ["/dev/sr0", "/dev/sr0"]


def test_timeout_names_what_was_looked_at_and_skipped() -> None:
    sys = host((disk("sda"), None, set()), (disk("sda1", "sda", 1), "ext4", {"other"}),
               (disk("sdb1", "sdb", 1), "ntfs", set()))
    sys.unclean["/dev/sdb1"] = "the volume is marked dirty (Windows did not shut down cleanly; run chkdsk in Windows)"
    with pytest.raises(NotFoundOnDisks) as e:
        find_file(sys, step(timeout_s=7))
    assert str(e.value) == (
        "iso-scan/filename=/isos/live.iso: no filesystem holds /isos/live.iso after 7s (looked in: sda1(ext4); "
        "skipped: sdb1(ntfs: the volume is marked dirty); no filesystem to look in: sda): check the path (from the "
        "top of the filesystem that holds it), or raise rd.retry"
    )
    assert sys.waited_s == 7.0 and sys.mounts == {}


def test_a_named_device_is_the_only_one_looked_at() -> None:
    sys = host((disk("sda1", "sda", 1), "ext4", {ISO}), (disk("sdb1", "sdb", 1), "ext4", {ISO}))
    sys.links["/dev/disk/by-label/data"] = "/dev/sdb1"
    assert find_file(sys, step(device="/dev/disk/by-label/data")) == "/dev/sdb1"
    assert not any("sda1" in c for c in sys.calls)


def test_a_named_device_that_never_comes() -> None:
    sys = host((disk("sda1", "sda", 1, fstype="ext4"), "ext4", {ISO}))
    with pytest.raises(NotFoundOnDisks) as e:
        find_file(sys, step(timeout_s=20, device="/dev/disk/by-label/data"))
    assert str(e.value) == (
        "iso-scan/filename=/isos/live.iso: device /dev/disk/by-label/data not found after 20s; block devices seen: "
        "sda1(ext4): check the device named before ':', or raise rd.retry"
    )


def test_a_named_device_that_never_comes_with_a_near_label() -> None:
    sys = host((BlockDevice("sda1", 1 << 20, "DATA", "ext4", "sda", 1), "ext4", {ISO}))
    what = "iso-scan/filename=LABEL=data:/isos/live.iso"
    with pytest.raises(NotFoundOnDisks) as e:
        find_file(sys, FindFile(what, ("/" + ISO,), "/run/initramfs/isoscan", 20, Ref("isoscandev"),
                                device="/dev/disk/by-label/data"))
    assert str(e.value).endswith("did you mean LABEL=DATA? (/dev/sda1 is labelled 'DATA')")


def test_pick_medium_reads_the_label_and_prefers_the_whole_device() -> None:
    whole = FsIdentity("iso9660", ("Fedora-Live", "Fedora-Live"), "2024-04-14-22-21-08-00")
    part = FsIdentity("iso9660", ("Fedora-Live",), "2024-04-14-22-21-08-00")
    cands = [("/dev/loop0", whole), ("/dev/loop0p1", part), ("/dev/loop0p2", FsIdentity("vfat", ("ANACONDA",)))]
    assert pick_medium("w", "CDLABEL=Fedora-Live", ("Fedora-Live",), "", cands) == "/dev/loop0"
    assert pick_medium("w", "UUID=2024-04-14-22-21-08-00", (), "2024-04-14-22-21-08-00", cands) == "/dev/loop0"
    assert pick_medium("w", "LABEL=ANACONDA", ("ANACONDA",), "", cands) == "/dev/loop0p2"
    with pytest.raises(LiveError, match="^w: the file found \\(/dev/loop0, iso9660\\) is labelled 'Fedora-Live' "
                                        "with UUID 2024-04-14-22-21-08-00, not CDLABEL=Other: use root=live:CDLABEL="
                                        "Fedora-Live$"):
        pick_medium("w", "CDLABEL=Other", ("Other",), "", cands)


def test_describe_scan_for_explain() -> None:
    devices = [disk("sda1", "sda", 1, fstype="ext4"), disk("sdb1", "sdb", 1, fstype="ntfs", removable=True),
               disk("sda2", "sda", 2, fstype="swap"), disk("sda")]
    assert describe_scan(devices) == [
        "sdb1: ntfs: mount -t ntfs3 -o ro, if Windows left it clean",
        "sda: no filesystem known: not mounted",
        "sda1: ext4: mount -t ext4 -o ro,noload",
        "sda2: swap: not mounted",
    ]
    assert set(isoscan.SCAN_MOUNT) >= {"ext4", "xfs", "btrfs", "vfat", "exfat", "ntfs", "iso9660"}

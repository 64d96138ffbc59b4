"""A medium that is short, unreadable, pulled out or labelled twice: what pylive decides and says (pure parts,
and the boot against a fake system). The same faults on real media boot in tests/qemu/test_faults_media.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pylive import boot
from pylive.cmdline import Args
from pylive.errors import CopyFailed, MediumTruncated, MediumUnreadable, StepFailed
from pylive.linux.udev import settle
from pylive.options import parse_options
from pylive.probe import (
    ISO_TAIL_SLACK,
    BlockDevice,
    iso_shortfall,
    iso_volume_bytes,
    read_fstype,
    same_filesystem,
    squashfs_shortfall,
)

from .fakesystem import FakeSystem, live_iso_system

CMDLINE = '"root=live:CDLABEL=Test Live 1" rd.live.image'
SQUASH = "/run/initramfs/live/LiveOS/squashfs.img"


def iso_head(sectors: int, block: int = 2048) -> bytes:
    """The first 34 KiB of an ISO 9660 image whose volume space size is `sectors` logical blocks."""
    pvd = bytearray(2048)
    pvd[0:6] = b"\x01CD001"
    pvd[80:88] = sectors.to_bytes(4, "little") + sectors.to_bytes(4, "big")
    pvd[128:132] = block.to_bytes(2, "little") + block.to_bytes(2, "big")
    return bytes(32768) + bytes(pvd)


def squashfs_head(bytes_used: int) -> bytes:
    head = bytearray(96)
    head[0:4] = b"hsqs"
    head[40:48] = bytes_used.to_bytes(8, "little")
    return bytes(head)


def test_iso_volume_size() -> None:
    assert iso_volume_bytes(iso_head(1600)) == 1600 * 2048
    assert iso_volume_bytes(iso_head(1600, 512)) == 1600 * 512
    assert iso_volume_bytes(bytes(34816)) is None
    assert iso_volume_bytes(iso_head(1600)[:34000]) is None  # too short to hold the PVD


def test_iso_shortfall_allows_the_tail_a_drive_may_not_report() -> None:
    head = iso_head(1600)
    assert iso_shortfall(head, 1600 * 2048) is None
    assert iso_shortfall(head, 2000 * 2048) is None  # a stick larger than the image
    assert iso_shortfall(head, 1600 * 2048 - ISO_TAIL_SLACK) is None
    assert iso_shortfall(head, 1600 * 2048 - ISO_TAIL_SLACK - 2048) == 1600 * 2048
    assert iso_shortfall(bytes(34816), 0) is None


def test_squashfs_shortfall() -> None:
    assert squashfs_shortfall(squashfs_head(5000), 4096) == 5000
    assert squashfs_shortfall(squashfs_head(4096), 4096) is None
    assert squashfs_shortfall(squashfs_head(5000)[:90], 0) is None
    assert squashfs_shortfall(bytes(96), 0) is None


def dev(name: str, devnum: str, label: str | None = "LIVE", parent: str | None = None,
        uuid: str | None = None) -> BlockDevice:
    return BlockDevice(name, 2048, label, "iso9660", parent, 1 if parent else 0, devnum=devnum, uuid=uuid)


def test_same_label_on_two_disks_in_device_number_order() -> None:
    devices = [dev("sr0", "11:0"), dev("sdq", "65:0"), dev("sda", "8:0"), dev("vda", "254:0", None)]
    assert [d.name for d in same_filesystem("/dev/disk/by-label/LIVE", devices)] == ["sda", "sr0", "sdq"]


def test_a_hybrid_iso_and_its_partition_are_one_medium() -> None:
    devices = [dev("sdb", "8:16"), dev("sdb1", "8:17", parent="sdb")]
    assert same_filesystem("/dev/disk/by-label/LIVE", devices) == []
    devices.append(dev("sr0", "11:0"))
    assert [d.name for d in same_filesystem("/dev/disk/by-label/LIVE", devices)] == ["sdb", "sdb1", "sr0"]


def test_same_uuid_and_escaped_labels() -> None:
    devices = [dev("sr0", "11:0", "My Live", uuid="2026-01-01"), dev("sda", "8:0", "My Live", uuid="2026-01-01")]
    assert [d.name for d in same_filesystem(r"/dev/disk/by-label/My\x20Live", devices)] == ["sda", "sr0"]
    assert [d.name for d in same_filesystem("/dev/disk/by-uuid/2026-01-01", devices)] == ["sda", "sr0"]
    assert same_filesystem("/dev/disk/by-partlabel/My\\x20Live", devices) == []
    assert same_filesystem("/dev/sr0", devices) == []


def run(cmdline: str, system: FakeSystem) -> boot.BootResult:
    return boot.run(parse_options(Args.from_text(cmdline)), system)


def test_the_lowest_device_number_is_used_with_a_warning(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = live_iso_system()  # udev's link points at /dev/sr0
    sys.devices = [BlockDevice("sr0", 2048, "Test Live 1", "iso9660", devnum="11:0"),
                   BlockDevice("sda", 2048, "Test Live 1", "iso9660", devnum="8:0")]
    sys.fstypes["/dev/sda"] = "iso9660"
    sys.contents["/dev/sda"] = sys.contents["/dev/sr0"]
    result = run(CMDLINE, sys)
    assert result.handles["livedev"] == "/dev/sda"
    assert "mount -t iso9660 -o ro /dev/sda /run/initramfs/live" in sys.calls
    assert ("2 devices are labelled 'Test Live 1': /dev/sda (8:0), /dev/sr0 (11:0); using /dev/sda, the lowest "
            "device number: take the others out, or name one by another label, UUID or its /dev path on the "
            "command line") in pylive_logs.messages


def test_a_truncated_iso_is_refused_before_the_mount() -> None:
    sys = live_iso_system()
    sys.heads["/dev/sr0"] = iso_head(1600)
    sys.sectors["/dev/sr0"] = 1000 * 4  # 512-byte sectors: 2 MiB of 3.1
    with pytest.raises(MediumTruncated) as e:
        run(CMDLINE, sys)
    assert str(e.value) == (
        "the medium /dev/sr0 is truncated: it ends at 2.0 MiB, but its ISO 9660 volume is 3.1 MiB (an incomplete "
        "download, copy or write): write it again from a complete image; rd.live.check or `pylive check-media` "
        "verify a medium")
    assert not any(c.startswith("mount") for c in sys.calls)


def test_a_complete_iso_and_a_partition_are_not_measured() -> None:
    sys = live_iso_system()
    sys.heads["/dev/sr0"] = iso_head(1600)
    sys.sectors["/dev/sr0"] = 1600 * 4
    run(CMDLINE, sys)
    sys = live_iso_system()
    sys.heads["/dev/sr0"] = iso_head(1600)
    sys.parents["/dev/sr0"] = "/dev/sdz"  # as if a partition: its size follows the partition table, not the PVD
    run(CMDLINE, sys)


def test_a_truncated_squashfs_file_is_refused() -> None:
    sys = live_iso_system()
    sys.heads["LiveOS/squashfs.img"] = squashfs_head(10 << 20)
    sys.file_sizes["LiveOS/squashfs.img"] = 4 << 20
    with pytest.raises(MediumTruncated, match=r"^LiveOS/squashfs.img on /dev/sr0 is truncated: it ends at 4.0 MiB, "
                                               r"but its squashfs superblock's size is 10.0 MiB"):
        run(CMDLINE, sys)
    assert "/run/initramfs/squashfs" not in sys.mounts


def test_a_read_error_in_a_mount_points_to_the_media_check() -> None:
    sys = live_iso_system()
    sys.paths.add("/dev/sr0")
    sys.fail_on = "mount -t squashfs"
    with pytest.raises(StepFailed) as e:
        run(CMDLINE, sys)
    assert str(e.value).endswith(
        "failed: mount -t squashfs: Input/output error: /dev/sr0 may be damaged or unreadable: check it with "
        "rd.live.check, or with `pylive check-media /dev/sr0` on another machine, and write it again if it fails")
    assert sys.mounts == {} and sys.loops == {}


def test_a_read_error_of_pylive_itself_is_one_line() -> None:
    """A read of the root image's superblock (its filesystem type) that fails: a line, not an internal error."""

    class Unreadable(FakeSystem):
        def fstype(self, path: str) -> str | None:
            if path.endswith("rootfs.img"):
                raise OSError(errno.EIO, "Input/output error", path)
            return super().fstype(path)

    sys = live_iso_system()
    sys.__class__ = Unreadable
    sys.paths.add("/dev/sr0")
    with pytest.raises(MediumUnreadable) as e:
        run(CMDLINE, sys)
    assert str(e.value).startswith("reading /run/initramfs/squashfs/LiveOS/rootfs.img on /dev/sr0 failed: "
                                   "Input/output error: /dev/sr0 may be damaged or unreadable: check it with "
                                   "rd.live.check")
    assert sys.mounts == {} and sys.loops == {}


def test_a_medium_pulled_out_during_the_ram_copy() -> None:
    class Pulled(FakeSystem):
        def copy_file(self, src: str, dest: str):  # type: ignore[no-untyped-def]
            raise OSError(errno.EIO, "Input/output error (reading at 1 MiB)", src)

    sys = live_iso_system()
    sys.__class__ = Pulled
    sys.file_sizes["LiveOS/squashfs.img"] = 4 << 20
    with pytest.raises(CopyFailed) as e:  # /dev/sr0 is not there any more
        run(CMDLINE + " rd.live.ram", sys)
    assert str(e.value) == (
        f"rd.live.ram: reading {SQUASH} on /dev/sr0 for the RAM copy failed: Input/output error (reading at 1 MiB): "
        "/dev/sr0 was removed while pylive read it: put the medium back and boot again; or boot without rd.live.ram")
    sys = live_iso_system()
    sys.__class__ = Pulled
    sys.file_sizes["LiveOS/squashfs.img"] = 4 << 20
    sys.paths.add("/dev/sr0")
    with pytest.raises(CopyFailed, match="/dev/sr0 may be damaged or unreadable: check it with rd.live.check"):
        run(CMDLINE + " rd.live.ram", sys)


def test_read_fstype_names_the_file_of_a_read_error(tmp_path: Path) -> None:
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("no /proc")
    with pytest.raises(OSError) as e:
        read_fstype("/proc/self/mem")  # offset 0 is not mapped: EIO
    assert e.value.filename == "/proc/self/mem" and e.value.errno == errno.EIO


def test_settle_waits_for_udev_queue_at_most_the_timeout(tmp_path: Path) -> None:
    import time

    queue = tmp_path / "queue"
    settle(0.2, str(queue))  # no queue: at once
    queue.touch()
    t0 = time.monotonic()
    settle(0.2, str(queue))
    assert 0.2 <= time.monotonic() - t0 < 1.0

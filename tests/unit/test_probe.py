import struct
from pathlib import Path

import pytest

from pylive.probe import BlockDevice, block_devices, sniff_fstype, unescape_udev


def _fake_block(root: Path, name: str, dev: str, size: int, props: dict[str, str]) -> None:
    d = root / "sys/class/block" / name
    d.mkdir(parents=True)
    (d / "size").write_text(f"{size}\n")
    (d / "dev").write_text(f"{dev}\n")
    data = root / "run/udev/data"
    data.mkdir(parents=True, exist_ok=True)
    (data / f"b{dev}").write_text("".join(f"E:{k}={v}\n" for k, v in props.items()))


def test_block_devices_from_sysfs_and_udev_db(tmp_path: Path) -> None:
    _fake_block(tmp_path, "sr0", "11:0", 6292,
                {"ID_FS_TYPE": "iso9660", "ID_FS_LABEL": "PYLIVE_TEST_1", "ID_FS_LABEL_ENC": r"PYLIVE\x20TEST\x201"})
    _fake_block(tmp_path, "vda", "254:0", 4096, {})
    _fake_block(tmp_path, "loop3", "7:3", 0, {})
    _fake_block(tmp_path, "sdb1", "8:17", 100, {"ID_FS_TYPE": "vfat", "ID_FS_LABEL": "OLD"})
    devices = block_devices(tmp_path)
    assert devices == [
        BlockDevice("sdb1", 100, "OLD", "vfat"),
        BlockDevice("sr0", 6292, "PYLIVE TEST 1", "iso9660"),
        BlockDevice("vda", 4096, None, None),
    ]
    assert [str(d) for d in devices] == ['sdb1(vfat,"OLD")', 'sr0(iso9660,"PYLIVE TEST 1")', "vda"]


def test_unescape_udev() -> None:
    assert unescape_udev(r"a\x2fb\x20c") == "a/b c"
    assert unescape_udev(r"\xc3\xbc") == "ü"


def _at(offset: int, data: bytes, size: int = 70000) -> bytes:
    buf = bytearray(size)
    buf[offset : offset + len(data)] = data
    return bytes(buf)


@pytest.mark.parametrize(
    ("head", "fstype"),
    [
        (_at(0, b"hsqs"), "squashfs"),
        (_at(1024, struct.pack("<I", 0xE0F5E1E2)), "erofs"),
        (_at(1080, b"\x53\xef"), "ext4"),
        (_at(32769, b"CD001"), "iso9660"),
        (_at(0, b"XFSB"), "xfs"),
        (_at(65600, b"_BHRfS_M"), "btrfs"),
        (_at(3, b"NTFS    "), "ntfs"),
        (bytes(70000), None),
    ],
)
def test_sniff_fstype(head: bytes, fstype: str | None) -> None:
    assert sniff_fstype(head) == fstype


def test_parent_disk_from_sysfs(tmp_path: Path) -> None:
    from pylive.probe import parent_disk

    disk = tmp_path / "sys/devices/pci0000:00/usb1/block/sdb"
    (disk / "sdb1").mkdir(parents=True)
    (disk / "sdb1/partition").write_text("1\n")
    (tmp_path / "sys/class/block").mkdir(parents=True)
    (tmp_path / "sys/class/block/sdb").symlink_to("../../devices/pci0000:00/usb1/block/sdb")
    (tmp_path / "sys/class/block/sdb1").symlink_to("../../devices/pci0000:00/usb1/block/sdb/sdb1")
    assert parent_disk(tmp_path, "/dev/sdb1") == "/dev/sdb"
    assert parent_disk(tmp_path, "/dev/sdb") is None
    assert parent_disk(tmp_path, "/dev/sr0") is None


def test_mount_of_a_path_from_mountinfo(tmp_path: Path) -> None:
    from pylive.probe import MountEntry, mount_of

    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        "22 1 0:21 / / rw,relatime - rootfs rootfs rw\n"
        "25 22 0:23 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=402112k,mode=755\n"
        "30 25 7:0 / /run/initramfs/live ro,relatime - iso9660 /dev/sr0 ro\n"
        "31 22 0:30 / /a\\040b rw - tmpfs tmpfs rw\n"
        "32 25 0:31 / /run rw,noexec - tmpfs tmpfs rw,size=900m\n"  # mounted over the first /run
    )
    assert mount_of(tmp_path, "/run/initramfs/squashed.img") == MountEntry("/run", "tmpfs", ("rw", "noexec"))
    assert mount_of(tmp_path, "/run/initramfs/live/LiveOS") == MountEntry("/run/initramfs/live", "iso9660",
                                                                          ("ro", "relatime"))
    assert mount_of(tmp_path, "/a b/c") == MountEntry("/a b", "tmpfs", ("rw",))
    assert mount_of(tmp_path, "/runx") == MountEntry("/", "rootfs", ("rw", "relatime"))
    assert mount_of(tmp_path / "nothing", "/run") is None

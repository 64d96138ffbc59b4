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

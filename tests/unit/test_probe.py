import struct
from pathlib import Path

import pytest

from pylive.probe import (
    LOGFILE_NO_CLIENT,
    NTFS_VOLUME_DIRTY,
    RESTART_VOLUME_IS_CLEAN,
    SNIFF_BYTES,
    BlockDevice,
    block_devices,
    ntfs_unclean,
    partitions,
    read_identity,
    read_ntfs_unclean,
    sniff_fstype,
    unescape_udev,
)

from .fsimages import blkid, image, needs_mkfs


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
    _fake_block(tmp_path, "sdb1", "8:17", 100, {"ID_FS_TYPE": "vfat", "ID_FS_LABEL": "OLD",
                                                "ID_PART_ENTRY_NAME": r"live\x20data"})
    devices = block_devices(tmp_path)
    assert devices == [
        BlockDevice("sdb1", 100, "OLD", "vfat", partlabel="live data", devnum="8:17"),
        BlockDevice("sr0", 6292, "PYLIVE TEST 1", "iso9660", devnum="11:0"),
        BlockDevice("vda", 4096, None, None, devnum="254:0"),
    ]
    assert [str(d) for d in devices] == ['sdb1(vfat,"OLD")', 'sr0(iso9660,"PYLIVE TEST 1")', "vda"]


def test_a_udev_database_line_that_is_not_utf8_hides_nothing(tmp_path: Path) -> None:
    """Found by fuzzing: one byte that is not UTF-8 in /run/udev/data/b<dev> raised UnicodeDecodeError out of
    block_devices (iso-scan's search, the device list of a timeout message)."""
    _fake_block(tmp_path, "sdb1", "8:17", 100, {})
    (tmp_path / "run/udev/data/b8:17").write_bytes(b"E:ID_MODEL=Stick \xff\xfe\nE:ID_FS_TYPE=vfat\n"
                                                   b"E:ID_FS_LABEL=\xe9t\xe9\n")
    assert block_devices(tmp_path) == [BlockDevice("sdb1", 100, "\udce9t\udce9", "vfat", devnum="8:17")]


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


def test_partitions_and_removable_from_sysfs(tmp_path: Path) -> None:
    # sysfs: a partition is a directory inside its disk's, reached through /sys/class/block/<name>
    devices = tmp_path / "sys/devices/pci0/usb1/block/sdb"
    for name, dev, size, extra in (("sdb", "8:16", 4096, {"removable": "1"}),
                                   ("sdb/sdb2", "8:18", 100, {"partition": "2"}),
                                   ("sdb/sdb1", "8:17", 100, {"partition": "1"})):
        d = devices.parent / name
        d.mkdir(parents=True)
        for k, v in {"size": str(size), "dev": dev, **extra}.items():
            (d / k).write_text(v + "\n")
        (tmp_path / "sys/class/block").mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys/class/block" / d.name).symlink_to(d)
    by_name = {d.name: d for d in block_devices(tmp_path)}
    assert by_name["sdb"] == BlockDevice("sdb", 4096, None, None, None, 0, True, devnum="8:16")
    assert by_name["sdb1"] == BlockDevice("sdb1", 100, None, None, "sdb", 1, True, devnum="8:17")
    assert partitions(tmp_path, "/dev/sdb") == ["/dev/sdb1", "/dev/sdb2"]
    assert BlockDevice("cciss!c0d0", 1).node == "/dev/cciss/c0d0"


# --- LABEL and UUID as blkid reports them, on filesystems made by the real tools ---

@needs_mkfs
@pytest.mark.parametrize("kind", ["ext4", "vfat32", "vfat16", "vfat-nolabel", "iso9660"])
def test_identity_matches_blkid(tmp_path: Path, kind: str) -> None:
    img = image(tmp_path, kind)
    ident = read_identity(str(img))
    want = blkid(img)
    assert ident.fstype == ("vfat" if kind.startswith("vfat") else kind)
    assert ident.uuid == want["UUID"]
    assert (ident.labels[0] if ident.labels else None) == want.get("LABEL")


@needs_mkfs
def test_iso9660_long_label_also_has_its_joliet_form(tmp_path: Path) -> None:
    ident = read_identity(str(image(tmp_path, "iso9660")))
    assert ident.labels == ("Fedora-WS-Live-40-1-14", "Fedora-WS-Live-4")  # a Joliet volume name stops at 16 chars


# --- NTFS: is it safe to mount read-only? (images built here: the format is small and documented) ---

CLUSTER, RECORD, MFT_LCN, LOG_LCN = 4096, 1024, 4, 256


def _ntfs_record(attrs: bytes, usn: bytes = b"\x01\x00", torn: bool = False) -> bytes:
    rec = bytearray(RECORD)
    rec[0:4] = b"FILE"
    struct.pack_into("<HH", rec, 4, 0x30, RECORD // 512 + 1)  # update sequence: offset, count
    struct.pack_into("<H", rec, 0x14, 0x38)  # first attribute
    rec[0x38 : 0x38 + len(attrs)] = attrs
    end = 0x38 + len(attrs)
    rec[end : end + 4] = b"\xff\xff\xff\xff"
    rec[0x30:0x32] = usn
    for i in range(1, RECORD // 512 + 1):  # the last two bytes of each sector move to the array
        rec[0x30 + 2 * i : 0x32 + 2 * i] = rec[i * 512 - 2 : i * 512]
        rec[i * 512 - 2 : i * 512] = b"\x00\x00" if torn else usn
    return bytes(rec)


def _volume_info(flags: int) -> bytes:
    value = struct.pack("<8xBBH", 3, 1, flags)
    return struct.pack("<IIBBHHHIH2x", 0x70, 0x18 + 16, 0, 0, 0, 0, 0, len(value), 0x18) + value + bytes(16 - 12)


def _logfile_data() -> bytes:
    runs = bytes([0x21, 16, LOG_LCN & 0xFF, LOG_LCN >> 8, 0])  # 16 clusters at LCN 256
    attr = bytearray(0x48)
    struct.pack_into("<IIB", attr, 0, 0x80, len(attr), 1)
    struct.pack_into("<H", attr, 0x20, 0x40)
    attr[0x40 : 0x40 + len(runs)] = runs
    return bytes(attr)


def _restart_page(lsn: int, in_use: int, flags: int) -> bytes:
    page = bytearray(4096)
    page[0:4] = b"RSTR"
    struct.pack_into("<I", page, 0x10, 4096)  # system page size
    struct.pack_into("<H", page, 0x18, 0x30)  # restart area offset
    struct.pack_into("<QHHHH", page, 0x30, lsn, 1, 0xFFFF, in_use, flags)
    return bytes(page)


def _ntfs(tmp_path: Path, *, dirty: bool = False, pages: tuple[bytes, bytes] | None = None,
          torn: bool = False) -> Path:
    img = bytearray(LOG_LCN * CLUSTER + 16 * CLUSTER)
    boot = bytearray(512)
    boot[3:11] = b"NTFS    "
    struct.pack_into("<HB", boot, 0x0B, 512, CLUSTER // 512)
    struct.pack_into("<Q", boot, 0x30, MFT_LCN)
    struct.pack_into("<b", boot, 0x40, -10)  # 2**10-byte MFT records
    img[0:512] = boot
    mft = MFT_LCN * CLUSTER
    img[mft + 2 * RECORD : mft + 3 * RECORD] = _ntfs_record(_logfile_data())
    img[mft + 3 * RECORD : mft + 4 * RECORD] = _ntfs_record(_volume_info(NTFS_VOLUME_DIRTY if dirty else 0),
                                                            torn=torn)
    first, second = pages or (_restart_page(10, 0, RESTART_VOLUME_IS_CLEAN), _restart_page(9, 0, 0))
    img[LOG_LCN * CLUSTER : LOG_LCN * CLUSTER + 8192] = first + second
    path = tmp_path / "ntfs.img"
    path.write_bytes(bytes(img))
    return path


def test_ntfs_left_clean_is_looked_at(tmp_path: Path) -> None:
    path = _ntfs(tmp_path)
    assert sniff_fstype(path.read_bytes()[:SNIFF_BYTES]) == "ntfs"
    assert read_ntfs_unclean(str(path)) is None
    emptied = (b"\xff" * 4096, b"\xff" * 4096)  # a log emptied by ntfsfix or a fresh mkntfs
    assert read_ntfs_unclean(str(_ntfs(tmp_path, pages=emptied))) is None


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"dirty": True}, "the volume is marked dirty"),
    ({"pages": (_restart_page(10, 0, 0), _restart_page(9, 0, RESTART_VOLUME_IS_CLEAN))}, "Windows is hibernated"),
    # the later of the two restart pages counts
    ({"pages": (_restart_page(9, 0, RESTART_VOLUME_IS_CLEAN), _restart_page(10, 0, 0))}, "Windows is hibernated"),
    ({"pages": (b"CHKD" + bytes(4092), bytes(4096))}, "its log is not in a clean state"),
    ({"torn": True}, "its metadata could not be read (MFT record 3 is torn"),
])
def test_ntfs_hibernated_or_dirty_is_not_looked_at(tmp_path: Path, kwargs: dict[str, object], why: str) -> None:
    assert (read_ntfs_unclean(str(_ntfs(tmp_path, **kwargs))) or "").startswith(why)  # type: ignore[arg-type]


def test_ntfs_log_without_a_client_in_use_is_clean(tmp_path: Path) -> None:
    pages = (_restart_page(10, LOGFILE_NO_CLIENT, 0), _restart_page(9, LOGFILE_NO_CLIENT, 0))
    assert read_ntfs_unclean(str(_ntfs(tmp_path, pages=pages))) is None


LOG_RUN = MFT_LCN * CLUSTER + 2 * RECORD + 0x38 + 0x40  # the $LogFile run list in the image _ntfs builds


# Found by fuzzing: numbers from a damaged (or hostile) volume reached os.pread as an offset of 2**76
# (OverflowError) or a negative one (OSError), or a restart area past its page raised struct.error: all
# out of iso-scan's search. Geometry ntfs3 would not mount made reads of hundreds of MiB.
@pytest.mark.parametrize(("offset", "data", "why"), [
    (0x30, b"\xff" * 8, "it points outside the device"),  # the MFT's LCN
    (LOG_RUN, bytes([0x11, 16, 0x80]), "it points outside the device"),  # $LogFile at LCN -128
    (LOG_LCN * CLUSTER + 0x18, b"\xff\x0f", "unpack_from requires a buffer"),  # the restart area's offset
    (0x0B, b"\x00\x80\x80", "sectors of 32768, clusters of 4194304 and MFT records of 1024 bytes are no NTFS"),
    (0x40, b"\x7f", "sectors of 512, clusters of 4096 and MFT records of 520192 bytes are no NTFS"),
    (MFT_LCN * CLUSTER + 3 * RECORD + 6, b"\xff\x00", "MFT record 3 has an update sequence beyond its end"),
], ids=["mft-lcn", "negative-lcn", "restart-area", "sector-size", "record-size", "usa-count"])
def test_damaged_ntfs_metadata_is_a_reason_not_a_crash(tmp_path: Path, offset: int, data: bytes, why: str) -> None:
    image = bytearray(_ntfs(tmp_path).read_bytes())
    image[offset : offset + len(data)] = data
    sizes: list[int] = []

    def read(at: int, size: int) -> bytes:
        assert 0 <= at < 2**63
        sizes.append(size)
        return bytes(image[at : at + size])

    assert (ntfs_unclean(read) or "").startswith(f"its metadata could not be read ({why}")
    assert max(sizes) <= 4096


@pytest.mark.parametrize(("per_cluster", "cluster"), [(8, 4096), (0x80, 65536), (0xF8, 128 << 10), (0xF5, 1 << 20)])
def test_ntfs_clusters_of_128_kib_and_more(per_cluster: int, cluster: int) -> None:
    """A sectors-per-cluster byte above 0x80 is 2**(256 - byte) sectors (it was read as a count)."""
    from pylive.probe import _ntfs_geometry

    boot = bytearray(512)
    boot[3:11] = b"NTFS    "
    struct.pack_into("<HB", boot, 0x0B, 512, per_cluster)
    struct.pack_into("<b", boot, 0x40, -10)
    assert _ntfs_geometry(bytes(boot)) == (cluster, 1024)


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
    from pylive.mountinfo import MountEntry, mount_of

    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        "22 1 0:21 / / rw,relatime - rootfs rootfs rw\n"
        "25 22 0:23 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=402112k,mode=755\n"
        "30 25 7:0 / /run/initramfs/live ro,relatime - iso9660 /dev/sr0 ro\n"
        "31 22 0:30 / /a\\040b rw - tmpfs tmpfs rw\n"
        "32 25 0:31 / /run rw,noexec - tmpfs tmpfs rw,size=900m\n"  # mounted over the first /run
        "33 22 8:1 /exports/a\\040b /srv rw - ext4 /dev/sda1 rw\n"  # a bind mount of a subdirectory
    )
    assert mount_of(tmp_path, "/run/initramfs/squashed.img") == MountEntry("/run", "tmpfs", ("rw", "noexec"),
                                                                           "tmpfs", "0:31")
    assert mount_of(tmp_path, "/run/initramfs/live/LiveOS") == MountEntry("/run/initramfs/live", "iso9660",
                                                                          ("ro", "relatime"), "/dev/sr0", "7:0")
    assert mount_of(tmp_path, "/a b/c") == MountEntry("/a b", "tmpfs", ("rw",), "tmpfs", "0:30")
    assert mount_of(tmp_path, "/runx") == MountEntry("/", "rootfs", ("rw", "relatime"), "rootfs", "0:21")
    assert mount_of(tmp_path, "/srv/x") == MountEntry("/srv", "ext4", ("rw",), "/dev/sda1", "8:1", "/exports/a b")
    assert mount_of(tmp_path / "nothing", "/run") is None

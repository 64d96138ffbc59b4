import struct

from pylive.dmtable import (
    DM_READONLY_FLAG,
    TargetLine,
    ioctl_number,
    linear_table,
    pack_dm_ioctl,
    snapshot_table,
    unpack_dm_ioctl,
    unpack_table_status,
)
from pylive.plan import Ref


def test_tables_match_dracut_lines() -> None:
    # dmsquash-live-root.sh: `echo 0 "$sz" snapshot "$base" "$over" PO 8 | dmsetup create live-rw`
    assert [t.describe() for t in snapshot_table(Ref("base"), Ref("cow"))] == [
        "0 <sectors of base> snapshot <base> <cow> PO 8"
    ]
    # `echo 0 "$sz" linear "$BASE_LOOPDEV" 0 | dmsetup create --readonly live-base`
    assert [t.describe() for t in linear_table(Ref("base"))] == ["0 <sectors of base> linear <base> 0"]


def test_ioctl_numbers() -> None:
    # _IOWR(0xfd, nr, struct dm_ioctl) with sizeof(struct dm_ioctl) == 312, as dmsetup issues them
    assert ioctl_number("DM_VERSION") == 0xC138FD00
    assert ioctl_number("DM_DEV_CREATE") == 0xC138FD03
    assert ioctl_number("DM_TABLE_LOAD") == 0xC138FD09
    assert ioctl_number("DM_DEV_SUSPEND") == 0xC138FD06


def test_pack_table_load() -> None:
    line = TargetLine(0, 131072, "snapshot", "7:1 7:2 PO 8")
    buf = pack_dm_ioctl("live-rw", flags=DM_READONLY_FLAG, targets=(line,), buffer_size=0)
    version, data_size, data_start, count = struct.unpack_from("=3sIII", b"\0" * 3 + buf[12:24])
    assert struct.unpack_from("=3I", buf) == (4, 0, 0)
    assert data_start == 312 and count == 1 and data_size == len(buf)
    assert buf[48:48 + 8] == b"live-rw\0"
    start, length, status, nxt, ttype = struct.unpack_from("=QQiI16s", buf, 312)
    assert (start, length, nxt, ttype.rstrip(b"\0")) == (0, 131072, 0, b"snapshot")
    assert buf[312 + 40 :].rstrip(b"\0") == b"7:1 7:2 PO 8"
    assert (len(buf) - 312) % 8 == 0
    assert unpack_dm_ioctl(buf).flags == DM_READONLY_FLAG


def test_two_targets_are_chained_by_next() -> None:
    lines = (TargetLine(0, 8, "linear", "7:1 0"), TargetLine(8, 8, "zero", ""))
    buf = pack_dm_ioctl("x", targets=lines, buffer_size=0)
    _, _, _, nxt, _ = struct.unpack_from("=QQiI16s", buf, 312)
    start2, _, _, nxt2, ttype2 = struct.unpack_from("=QQiI16s", buf, 312 + nxt)
    assert (start2, nxt2, ttype2.rstrip(b"\0")) == (8, 0, b"zero")


def test_unpack_status_reply() -> None:
    # A reply as the kernel writes it: `next` counts from the start of the data area.
    lines = (TargetLine(0, 8, "linear", "7:1 0"), TargetLine(8, 16, "snapshot", "16/8 16"))
    buf = bytearray(pack_dm_ioctl("x", targets=lines, buffer_size=0))
    first_len = struct.unpack_from("=QQiI16s", buf, 312)[3]
    struct.pack_into("=I", buf, 312 + 20, first_len)  # relative to data start == relative to spec 1
    assert unpack_table_status(bytes(buf)) == list(lines)


def test_bad_names_are_refused() -> None:
    import pytest

    for name in ("", "a/b", "x" * 128):
        with pytest.raises(ValueError):
            pack_dm_ioctl(name)

import os
import stat
import struct

import pytest

from pylive.dmtable import (
    DM_READONLY_FLAG,
    TargetLine,
    ioctl_number,
    linear_table,
    pack_dm_ioctl,
    pack_dm_message,
    parse_snapshot_status,
    snapshot_table,
    unpack_dm_ioctl,
    unpack_table_status,
)
from pylive.errors import LiveError
from pylive.plan import Ref
from pylive.planner import check_snapshot_usage


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


def test_pack_target_message() -> None:
    buf = pack_dm_message("live-overlay-pool", "create_thin 0")
    reply = unpack_dm_ioctl(buf)
    assert reply.data_start == 312 and reply.data_size == len(buf) and len(buf) % 8 == 0
    assert buf[312:320] == bytes(8)  # sector 0
    assert buf[320:].rstrip(b"\0") == b"create_thin 0"
    assert ioctl_number("DM_TARGET_MSG") == 0xC138FD0E


@pytest.mark.parametrize(
    ("status", "writable", "outcome"),
    [
        ("16/262144 16", True, None),
        ("240000/262144 480", True, "is 91% full (117 of 128 MiB used)"),
        ("240000/262144 480", False, None),
        ("260000/262144 500", True, LiveError("is full (126 of 128 MiB used)")),
        ("262144/262144 500", False, None),
        ("Invalid", False, LiveError("was invalidated by the kernel")),
        ("Overflow", True, LiveError("the kernel reports it as 'Overflow'")),
        ("Overflow", False, None),
        ("", True, LiveError("the kernel reports it as 'Unknown'")),
    ],
)
def test_snapshot_usage_verdict(status: str, writable: bool, outcome) -> None:
    usage = parse_snapshot_status(status)
    if isinstance(outcome, LiveError):
        with pytest.raises(LiveError, match=str(outcome).replace("(", r"\(").replace(")", r"\)")):
            check_snapshot_usage(usage, "/LiveOS/cow", writable)
        return
    warning = check_snapshot_usage(usage, "/LiveOS/cow", writable)
    assert (warning is None) if outcome is None else (outcome in warning)


def _char_node(dev_dir, minor: int) -> int:  # type: ignore[no-untyped-def]
    """dev_dir/dm-<minor>: a character node of that minor (devtmpfs makes the real one with the device)."""
    dev = os.makedev(1, minor)  # mem devices, which exist on every Linux: never opened here
    try:
        os.mknod(dev_dir / f"dm-{minor}", stat.S_IFCHR | 0o600, dev)
    except PermissionError:  # root without CAP_MKNOD (a container)
        pytest.skip("mknod is not allowed here")
    return dev


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_the_mapper_link_is_made_at_once_and_a_stale_one_replaced(tmp_path) -> None:
    """/dev/mapper/<name> is made by pylive right after the create (no wait for udev's rules); a link udev
    made first is kept, and one left by a removed device of the same name is replaced."""
    from pylive.linux import dm

    (tmp_path / "mapper").mkdir()
    first, second = _char_node(tmp_path, 3), _char_node(tmp_path, 5)
    link = dm.ensure_mapper_node("live-rw", first, str(tmp_path))
    assert link == f"{tmp_path}/mapper/live-rw" and os.readlink(link) == "../dm-3"
    assert dm.ensure_mapper_node("live-rw", first, str(tmp_path)) == link and os.readlink(link) == "../dm-3"
    dm.ensure_mapper_node("live-rw", second, str(tmp_path))  # the name's device was removed and made again
    assert os.readlink(link) == "../dm-5" and sorted(os.listdir(tmp_path / "mapper")) == ["live-rw"]

"""Overlay health: the status arithmetic for every kind, warning levels and their hysteresis, the
sinks (a real pseudo-terminal for wall), what the boot leaves under /run, and `pylive status`."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.dmtable import parse_snapshot_status
from pylive.health import leave, measure, notify
from pylive.health.levels import Event, Levels, parse_levels
from pylive.health.status import (
    MIB,
    FsSpace,
    Limit,
    Reading,
    State,
    advice,
    as_json,
    exit_status,
    filesystem_limits,
    human,
    parse_thin_pool,
    snapshot_limits,
    snapshot_state,
    thin_limits,
)

GIB = 1024 * MIB


def snap(status: str, *, in_ram: bool = True, mem: int | None = None, persistent: bool = False) -> Reading:
    usage = parse_snapshot_status(status)
    return Reading("dm-snapshot", persistent, snapshot_state(usage),
                   snapshot_limits(usage, in_ram=in_ram, mem_available=mem),
                   (f"live-rw: 0 8388608 snapshot {status}",))


def test_the_documentations_example_against_the_cow() -> None:
    """`live-rw: 0 8388608 snapshot 42296/1048576 176` (the LiveOS documentation): 4 % of a 512 MiB COW."""
    r = snap("42296/1048576 176", in_ram=False, persistent=True)
    assert r.headline == Limit("the snapshot's COW", 42296 * 512, 1048576 * 512)
    assert round(r.percent, 2) == 4.03 and exit_status(r) == 0


def test_a_temporary_cow_in_ram_is_held_to_the_memory_left() -> None:
    """A 32 GiB sparse COW with 600 MiB used and 300 MiB of memory left is 67 % full, not 2 %."""
    used_sectors = 600 * MIB // 512
    r = snap(f"{used_sectors}/{32 * GIB // 512} 1000", mem=300 * MIB)
    assert r.headline is not None and r.headline.what == "RAM behind the COW"
    assert round(r.percent) == 67
    assert [round(x.percent, 1) for x in r.limits] == [1.8, 66.7]


@pytest.mark.parametrize(("status", "state", "code"), [
    ("Overflow", State.OVERFLOW, 2), ("Invalid", State.INVALID, 2), ("Merge failed", State.FAILED, 2),
    ("100/1000 8", State.ACTIVE, 0), ("850/1000 8", State.ACTIVE, 1),
])
def test_states_and_exit_status(status: str, state: State, code: int) -> None:
    r = snap(status, in_ram=False)
    assert r.state is state and exit_status(r) == code


def test_thin_pool_data_metadata_and_the_tmpfs_behind() -> None:
    pool = parse_thin_pool("0 141/4096 1500/2048 - rw discard_passdown queue_if_no_space - 1024",
                           "7:2 7:3 128 0 1 skip_block_zeroing")
    assert pool is not None and pool.data_block == 64 * 1024 and pool.mode == "rw"
    limits = thin_limits(pool, backing_free=10 * MIB)
    assert [x.what for x in limits] == ["the thin pool's data", "the thin pool's metadata", "RAM behind the thin pool"]
    assert round(limits[0].percent, 1) == 73.2  # 1500 of 2048 blocks
    assert limits[1].used == 141 * 4096 and limits[1].limit == 4096 * 4096
    assert round(limits[2].percent, 1) == 90.4  # 93.75 MiB written, 10 MiB left behind it
    assert parse_thin_pool("Fail", "7:2 7:3 128 0") is None
    assert parse_thin_pool("0 1/2 3/4 - out_of_data_space", "a b 128 0").mode == "out_of_data_space"


def test_a_filesystem_upper_in_ram() -> None:
    limits = filesystem_limits("the upper layer's filesystem", FsSpace(total=1000 * MIB, free=400 * MIB),
                               in_ram=True, mem_available=200 * MIB)
    assert [round(x.percent) for x in limits] == [60, 75]
    assert len(filesystem_limits("x", FsSpace(100, 50), in_ram=False, mem_available=1)) == 1


def test_levels_once_each_and_again_after_going_below() -> None:
    tracker = Levels((80, 90, 95))

    def at(pct: float) -> list[int | None]:
        reading = Reading("x", False, State.ACTIVE, (Limit("x", int(pct * 100), 10000),))
        return [e.level for e in tracker.update(reading)]

    assert at(79) == []
    assert at(81) == [80]
    assert at(85) == []
    assert at(91) == [90]
    assert at(89) == []  # not 2 points below 90: not re-armed
    assert at(91) == []
    assert at(77) == []  # re-arms 80 and 90
    assert at(81) == [80]
    assert at(96) == [95]  # 90 and 95 crossed at once: one warning, the highest


def test_a_state_change_is_reported_once() -> None:
    tracker = Levels()
    overflow = Reading("dm-snapshot", False, State.OVERFLOW, ())
    assert tracker.update(overflow) == [Event(None, State.OVERFLOW, 0.0)]
    assert tracker.update(overflow) == []


@pytest.mark.parametrize(("text", "levels"), [("", (80, 90, 95)), ("0", None), ("no", None), ("50,75", (50, 75))])
def test_parse_levels(text: str, levels: tuple[int, ...] | None) -> None:
    assert parse_levels(text) == levels


@pytest.mark.parametrize("text", ["90,80", "80,80", "0,50", "100", "x", "80;90"])
def test_parse_levels_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="percentages"):
        parse_levels(text)


def test_the_option_is_checked_on_the_command_line(capsys) -> None:
    rc = main(["explain", "--cmdline", "root=live:CDLABEL=x rd.pylive.watch=95,90"])
    err = capsys.readouterr().err
    assert rc == 2 and "rd.pylive.watch=95,90: must be increasing percentages from 1 to 99" in err
    assert "use e.g. rd.pylive.watch=80,90,95" in err


def test_human_and_json() -> None:
    r = snap(f"{900 * MIB // 512}/{1024 * MIB // 512} 16", in_ram=False, persistent=True)
    text = human(r)
    assert "state:   active" in text and "87.9%" in text and "dm:      live-rw: 0 8388608 snapshot" in text
    assert "pylive overlay resize" in text  # a persistent overlay can be grown offline
    doc = as_json(r)
    assert doc["schema_version"] == 1 and doc["level"] == 80 and doc["exit_status"] == 1
    assert doc["limited_by"] == "the snapshot's COW" and doc["used_bytes"] == 900 * MIB
    assert json.loads(json.dumps(doc)) == doc


def test_advice_per_state() -> None:
    assert "lost" in advice(Reading("dm-snapshot", False, State.INVALID, ()))
    assert "reboot" in advice(Reading("dm-snapshot", False, State.OVERFLOW, ()))
    assert advice(Reading("x", False, State.ACTIVE, (Limit("x", 1, 100),))) == "nothing to do"


# --- sinks ------------------------------------------------------------------------------------------


def utmp_record(kind: int, line: str, user: str = "liveuser") -> bytes:
    return struct.pack("=hxxi32s4s32s256shhiii16s20s", kind, 1234, line.encode(), b"", user.encode(), b"",
                       0, 0, 0, 0, 0, b"", b"")


def test_wall_reaches_each_logged_in_terminal(tmp_path) -> None:
    master, slave = os.openpty()
    try:
        tty = os.ttyname(slave)
        utmp = tmp_path / "utmp"
        utmp.write_bytes(utmp_record(8, "pts/99") + utmp_record(7, tty.removeprefix("/dev/"))
                         + utmp_record(7, "../etc/passwd"))
        assert list(notify.logged_in_terminals(str(utmp))) == [tty]
        assert notify.to_terminals("the live overlay is 91% full", str(utmp)) == [tty]
        got = os.read(master, 4096)
        assert b"Broadcast message from pylive" in got and b"the live overlay is 91% full" in got
    finally:
        os.close(master)
        os.close(slave)


def test_desktop_notification_command() -> None:
    users = notify.graphical_users([{"Type": "tty", "Name": "root"}, {"Type": "wayland", "Name": "liveuser"},
                                    {"Type": "x11", "Name": "guest", "Active": "no"}])
    assert users == ["liveuser"]
    cmd = notify.desktop_command("liveuser", "Live system: overlay 91% full", "body", critical=False)
    assert cmd[:4] == ["busctl", "--user", "--machine=liveuser@.host", "call"]
    assert cmd[8:] == ["susssasa{sv}i", "pylive", "0", "drive-harddisk", "Live system: overlay 91% full", "body",
                       "0", "1", "urgency", "y", "1", "-1"]


def test_summary_names_how_full_of_what_and_what_to_do() -> None:
    r = snap(f"{900 * MIB // 512}/{1024 * MIB // 512} 16", in_ram=False)
    line = notify.summary(Event(80, State.ACTIVE, r.percent), r)
    assert line.startswith("the live overlay is 88% full (900 of 1024 MiB of the snapshot's COW): ")
    assert "/run/initramfs/live" in line


# --- left for the booted system, and pylive status on it -----------------------------------------------


def test_leave_behind(tmp_path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "pylive").write_text("binary")
    for name in ("_codecs_jp.so", "libcrypto.so.3", "_ssl.so"):  # the last two: the full build's (pylive-net)
        (dist / name).write_text("not needed")
    root = tmp_path / "root"
    leave.leave_behind(str(root), str(dist), (70, 85))
    assert sorted(p.name for p in (root / "run/pylive/dist").iterdir()) == ["pylive"]
    wrapper = root / "run/pylive/pylive"
    assert os.access(wrapper, os.X_OK) and "exec /run/pylive/dist/pylive" in wrapper.read_text()
    unit = (root / "run/systemd/system/pylive-overlay-watch.service").read_text()
    assert "ExecStart=/run/pylive/pylive watch --levels 70,85" in unit
    assert "ConditionPathExists=!/etc/initrd-release" in unit
    link = root / "run/systemd/system/multi-user.target.wants/pylive-overlay-watch.service"
    assert os.readlink(link) == "../pylive-overlay-watch.service"
    leave.leave_behind(str(root), str(dist), (70, 85))  # again: replaced, not failed
    assert leave.compiled_dist() is None  # from source: the boot leaves nothing


def statvfs_with(free: int, real=os.statvfs):  # type: ignore[no-untyped-def]
    def fake(path):  # type: ignore[no-untyped-def]
        st = real(path)
        return os.statvfs_result((4096, 4096, st.f_blocks, free // 4096, free // 4096, *st[5:]))
    return fake


def test_leave_behind_on_a_full_run_copies_nothing(tmp_path, monkeypatch) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "pylive").write_bytes(b"x" * (3 << 20))
    (dist / "_codecs_jp.so").write_bytes(b"x" * (8 << 20))  # not copied, so not counted
    assert leave.copy_bytes(str(dist)) == 3 << 20
    root = tmp_path / "root"
    monkeypatch.setattr(os, "statvfs", statvfs_with(2 << 20))
    with pytest.raises(leave.NotLeft, match=r"^/run has 2048 KiB free, the copy of pylive there needs 3 MiB$"):
        leave.leave_behind(str(root), str(dist), (70, 85))
    assert not (root / "run").exists()


def test_leave_behind_removes_a_copy_that_failed_half_way(tmp_path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ("a.so", "b.so"):
        (dist / name).write_text(name)
    os.mkfifo(dist / "pylive")  # shutil refuses to copy a named pipe: one file fails, the others were copied
    root = tmp_path / "root"
    with pytest.raises(leave.NotLeft, match=r"^copying it to /run/pylive failed: .*named pipe"):
        leave.leave_behind(str(root), str(dist), (70, 85))
    assert not (root / "run/pylive").exists()


def noexec_run(monkeypatch, root: Path, mem_available_kib: int, real=os.statvfs) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    """`root` with a /run mounted noexec (dracut's init without systemd) and that much RAM available; the
    own tmpfs's mount and umount are recorded, not done."""
    (root / "run").mkdir(parents=True)
    (root / "proc").mkdir()
    (root / "proc/meminfo").write_text(f"MemTotal:  1000000 kB\nMemAvailable: {mem_available_kib} kB\n")

    def fake(path):  # type: ignore[no-untyped-def]
        st = real(path)
        return os.statvfs_result((*st[:8], st.f_flag | os.ST_NOEXEC, st.f_namemax))

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(os, "statvfs", fake)
    monkeypatch.setattr(leave, "mount_own_tmpfs", lambda path, size: calls.append(("mount", path, str(size))))
    monkeypatch.setattr(leave, "umount_own_tmpfs", lambda path: calls.append(("umount", path)))
    return calls


def a_dist(tmp_path: Path, binary: bytes) -> Path:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "pylive").write_bytes(binary)
    return dist


def test_leave_behind_on_a_noexec_run_gives_the_copy_a_tmpfs_of_its_own(tmp_path, monkeypatch) -> None:
    dist, root = a_dist(tmp_path, b"x" * (3 << 20)), tmp_path / "root"
    calls = noexec_run(monkeypatch, root, 200 * 1024)
    leave.leave_behind(str(root), str(dist), (70, 85))
    # the copy (3 MiB) and a MiB for the wrapper and the watcher's state file
    assert calls == [("mount", str(root / "run/pylive"), str(4 << 20))]
    assert (root / "run/pylive/dist/pylive").stat().st_size == 3 << 20
    assert (root / "run/systemd/system/pylive-overlay-watch.service").exists()


def test_leave_behind_on_a_noexec_run_weighs_the_copy_against_ram(tmp_path, monkeypatch) -> None:
    dist, root = a_dist(tmp_path, b"x" * (3 << 20)), tmp_path / "root"
    calls = noexec_run(monkeypatch, root, 15 * 1024)
    with pytest.raises(leave.NotLeft, match=r"^/run is mounted noexec, so the copy of pylive needs a tmpfs of its "
                       r"own \(4 MiB\), more than a quarter of the 15 MiB of RAM available$"):
        leave.leave_behind(str(root), str(dist), (70, 85))
    assert calls == [] and not (root / "run/pylive").exists()


def test_leave_behind_undoes_everything_when_the_unit_cannot_be_written(tmp_path, monkeypatch) -> None:
    dist, root = a_dist(tmp_path, b"binary"), tmp_path / "root"
    calls = noexec_run(monkeypatch, root, 200 * 1024)
    (root / "run/systemd").write_text("")  # not a directory: the unit cannot be written (as on a full /run)
    with pytest.raises(leave.NotLeft, match=r"^writing /run/pylive/pylive and /run/systemd/system/"
                       r"pylive-overlay-watch.service failed: "):
        leave.leave_behind(str(root), str(dist), (70, 85))
    run = str(root / "run/pylive")
    assert calls == [("mount", run, str(2 << 20)), ("umount", run)]
    assert not (root / "run/pylive").exists()


def live_root(tmp_path: Path, mode: str, *, upper_fstype: str = "tmpfs", mem_kib: int = 204800) -> Path:
    root = tmp_path / "root"
    (root / "run/initramfs").mkdir(parents=True)
    (root / "proc/self").mkdir(parents=True)
    (root / "run/initramfs/pylive.json").write_text(json.dumps({
        "mode": mode, "mode_text": "temporary OverlayFS", "image_file": "/LiveOS/squashfs.img",
        "devices": {"livedev": "/dev/sr0"}}))
    upper = tmp_path / "upper"
    upper.mkdir()
    (root / "run/overlayfs").symlink_to(upper)
    (root / "proc/meminfo").write_text(f"MemTotal: 1000000 kB\nMemAvailable: {mem_kib} kB\n")
    (root / "proc/self/mountinfo").write_text(f"30 1 0:5 / {upper} rw - {upper_fstype} tmpfs rw\n")
    return root


def test_status_of_a_temporary_overlayfs(tmp_path, capsys) -> None:
    root = live_root(tmp_path, "overlayfs_temp")
    r = measure.read(root)
    assert r.kind == "overlayfs" and not r.persistent and r.medium == "/dev/sr0"
    assert [x.what for x in r.limits] == ["the upper layer's filesystem", "RAM behind the upper layer's filesystem"]
    st = os.statvfs(tmp_path)
    assert r.limits[0].limit == st.f_blocks * st.f_frsize
    rc = main(["status", "--root", str(root), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1 and doc["kind"] == "overlayfs" and rc == doc["exit_status"]
    assert doc["image"] == "/LiveOS/squashfs.img" and doc["mode"] == "temporary OverlayFS"


def test_status_of_a_snapshot_reads_dm(tmp_path, monkeypatch, capsys) -> None:
    root = live_root(tmp_path, "dm_snapshot_persistent")
    monkeypatch.setattr(measure, "dm_line", lambda name, status=True: "0 8388608 snapshot Overflow")
    rc = main(["status", "--root", str(root)])
    out = capsys.readouterr().out
    assert rc == 2 and "state:   Overflow" in out and "dm:      live-rw: 0 8388608 snapshot Overflow" in out


def test_status_outside_a_live_system(tmp_path, capsys) -> None:
    assert main(["status", "--root", str(tmp_path)]) == 3
    assert "was not booted by pylive" in capsys.readouterr().err


def test_watch_once_writes_the_state_file(tmp_path, monkeypatch) -> None:
    root = live_root(tmp_path, "dm_snapshot_temp", mem_kib=1024)
    monkeypatch.setattr(measure, "dm_line", lambda name, status=True: f"0 8388608 snapshot {8 * 1024}/67108864 16")
    state = tmp_path / "state.json"
    monkeypatch.setattr(notify, "STATE_FILE", str(state))
    sent: list[str] = []
    monkeypatch.setattr(notify, "to_log", lambda text, prio: sent.append(f"<{prio}>{text}"))
    monkeypatch.setattr(notify, "to_terminals", lambda text, utmp="": [])
    monkeypatch.setattr(notify, "to_desktops", lambda *a, **k: [])
    assert main(["watch", "--root", str(root), "--once", "--levels", "50,75"]) == 0
    doc = json.loads(state.read_text())
    assert doc["limited_by"] == "RAM behind the COW" and doc["level"] == 75
    assert len(sent) == 1 and sent[0].startswith("<4>the live overlay is 80% full (4 of 5 MiB of RAM behind the COW)")
    assert doc["warnings"][0]["level"] == 75


def test_the_unit_passes_systemd_analyze(tmp_path) -> None:
    """The watcher's unit as systemd reads it (the binary's path swapped for one that exists here)."""
    import shutil
    import subprocess

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / leave.UNIT_NAME
    unit.write_text(leave.unit_text((80, 90, 95)).replace(f"{leave.RUN_DIR}/pylive", "/bin/true"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr

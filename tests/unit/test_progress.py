"""The progress line, Esc, and the console on a pseudo-terminal (no root)."""

from __future__ import annotations

import os
import termios
import threading
import time
from pathlib import Path

import pytest

from pylive.linux.console import Console
from pylive.progress import Display, Meter, Ticker, Watch, esc_pressed
from pylive.system import RealSystem

from .isoimages import make_image, need_isomd5sum, poke

MIB = 1 << 20


def test_line_shows_percent_rate_and_time_left() -> None:
    m = Meter("copying squashfs.img to RAM", 2150 * MIB, start=100.0)
    assert m.line(100.1) == "copying squashfs.img to RAM: 0% of 2150 MiB"  # no rate yet
    m.done = 300 * MIB
    assert m.line(102.0) == "copying squashfs.img to RAM: 13% of 2150 MiB, 150 MiB/s, 0:12 left"
    m.done = 900 * MIB
    assert m.line(104.0) == "copying squashfs.img to RAM: 41% of 2150 MiB, 225 MiB/s, 0:06 left"
    m.done = 2150 * MIB
    assert m.line(118.0) == "copying squashfs.img to RAM: 100% of 2150 MiB in 18.0 s (119 MiB/s)"


def test_rate_is_recent_so_a_stall_shows() -> None:
    m = Meter("checking the medium /dev/sr0", 4000 * MIB, start=0.0)
    for t in range(1, 11):
        m.done = t * 100 * MIB
        m.line(float(t))
    assert m.line(10.5).endswith("91 MiB/s, 0:33 left")  # the last 5 s: 500 MiB in 5.5 s
    assert m.line(16.0) == "checking the medium /dev/sr0: 25% of 4000 MiB, 0 MiB/s (waiting for the device)"
    m.done = 1200 * MIB
    assert "MiB/s" in m.line(17.0) and "waiting" not in m.line(17.0)
    assert Meter("x", 3 * 3600 * MIB, 0.0).line(0.0) == "x: 0% of 10800 MiB"


def test_hours_left() -> None:
    m = Meter("x", 100_000 * MIB, start=0.0)
    m.done = 10 * MIB
    assert m.line(1.0).endswith("10 MiB/s, 2:46:39 left")


def test_display_rewrites_a_terminal_line_and_paces_plain_lines() -> None:
    out: list[str] = []
    tty = Display(out.append, overwrite=True, every_s=1.0)
    assert tty.due(0.0) and not tty.due(0.5) and tty.due(1.0)
    tty.show("long line here")
    tty.show("short")
    tty.show("x" * 100)
    tty.close()
    assert out == ["\rlong line here", "\rshort         ", "\r" + "x" * 79, "\n"]
    out.clear()
    log = Display(out.append, overwrite=False, every_s=2.0)
    assert log.due(0.0) and not log.due(1.9) and log.due(2.0)
    log.show("a")
    log.close()
    assert out == ["a\n"]


@pytest.mark.parametrize(("keys", "pressed"), [
    (b"\x1b", True),
    (b"abc\x1b", True),
    (b"\x1b[A", False),  # arrow up
    (b"\x1bOP", False),  # F1
    (b"\x1b[A\x1b", True),
    (b"\x1b\x1b[B", True),
    (b"q", False),
    (b"", False),
])
def test_esc_is_a_lone_escape(keys: bytes, pressed: bool) -> None:
    assert esc_pressed(keys) is pressed


def test_watch_stops_on_esc_and_shows_where_it_ended() -> None:
    out: list[str] = []
    typed = [b"", b"x", b"\x1b"]
    watch = Watch(Meter("checking", 10 * MIB, 0.0), Display(out.append, overwrite=False, every_s=0.0),
                  keys=lambda: typed.pop(0) if typed else b"", clock=lambda: 1.0)
    assert watch.update(MIB) is False
    watch._tick()
    watch._tick()
    assert watch.update(2 * MIB) is False
    watch._tick()
    assert watch.update(3 * MIB) is True
    assert out[0] == "checking: 10% of 10 MiB, 1 MiB/s, 0:09 left\n"


def test_ticker_ticks_from_a_thread_until_the_block_ends() -> None:
    ticks: list[float] = []
    with Ticker(lambda: ticks.append(time.monotonic()), 0.02):
        time.sleep(0.2)
    n = len(ticks)
    time.sleep(0.06)
    assert n >= 3 and len(ticks) == n


@pytest.fixture
def pty() -> tuple[int, str]:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    yield master, name
    os.close(master)


def _read_all(fd: int) -> bytes:
    import select

    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_console_keys_enter_and_restored_terminal(pty: tuple[int, str]) -> None:
    master, name = pty
    keep = os.open(name, os.O_RDWR | os.O_NOCTTY)  # holds the terminal's settings between opens
    before = termios.tcgetattr(keep)
    os.write(master, b"typed before")  # not an answer to what is asked later
    console = Console.open(name)
    assert console is not None
    assert console.read_keys() == b""
    os.write(master, b"\x1b")
    time.sleep(0.05)
    assert console.read_keys() == b"\x1b"
    assert console.wait_for_enter(0.1) is False
    threading.Timer(0.1, os.write, (master, b"y\r")).start()
    assert console.wait_for_enter(5) is True
    console.write("line\n")
    console.close()
    assert termios.tcgetattr(keep) == before
    os.close(keep)
    assert b"line" in _read_all(master)


def test_no_console_is_none(tmp_path: Path) -> None:
    assert Console.open(str(tmp_path / "none")) is None
    regular = tmp_path / "file"
    regular.write_text("")
    assert Console.open(str(regular)) is None  # not a terminal


def test_hold_keeps_the_line_until_enter(pty: tuple[int, str]) -> None:
    master, name = pty
    threading.Timer(0.3, os.write, (master, b"\r")).start()
    t0 = time.monotonic()
    RealSystem(console=name).hold("the medium /dev/sr0 is damaged (MD5 mismatch): write it again")
    assert time.monotonic() - t0 >= 0.25
    shown = _read_all(master).decode()
    assert "pylive: the medium /dev/sr0 is damaged (MD5 mismatch): write it again" in shown
    assert "Press Enter to continue." in shown
    t0 = time.monotonic()
    RealSystem(console=None).hold("no console: at once")
    assert time.monotonic() - t0 < 0.1


def test_media_check_shows_progress_on_the_console(pty: tuple[int, str], tmp_path: Path) -> None:
    need_isomd5sum()
    image = make_image(tmp_path / "a.iso", 4097)
    verdict = RealSystem(console=name_of(pty)).check_media(str(image))
    assert verdict.status.value == "passed"
    shown = _read_all(pty[0]).decode()
    assert f"\rchecking {image} (Esc skips): 100% of 8 MiB in "[:79] in shown  # cut: never wraps
    poke(image, 4000 * 2048 // 2)
    verdict = RealSystem(console=None).check_media(str(image))
    assert verdict.status.value == "failed"
    assert verdict.reason == "MD5 mismatch in fragment 11 of 20, within the first 53%"


def name_of(pty: tuple[int, str]) -> str:
    return pty[1]


def _fake_plymouth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, running: bool) -> Path:
    """A plymouth on PATH that logs its arguments; --ping answers as a daemon would."""
    calls = tmp_path / "plymouth.calls"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "plymouth"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" != --ping ] || exit {0 if running else 1}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return calls


def test_a_running_splash_is_hidden_once_before_the_console_is_used(
        pty: tuple[int, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_plymouth(tmp_path, monkeypatch, running=True)
    system = RealSystem(console=pty[1])
    for _ in range(2):
        threading.Timer(0.2, os.write, (pty[0], b"\r")).start()
        system.hold("the medium /dev/sr0 is damaged (MD5 mismatch): write it again")
    assert calls.read_text().split("\n") == ["--ping", "--hide-splash", ""]


def test_a_splash_that_is_not_running_is_left_alone(
        pty: tuple[int, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_plymouth(tmp_path, monkeypatch, running=False)
    need_isomd5sum()
    image = make_image(tmp_path / "a.iso", 4097)
    assert RealSystem(console=pty[1]).check_media(str(image)).status.value == "passed"
    assert calls.read_text() == "--ping\n"


def test_no_console_leaves_the_splash_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_plymouth(tmp_path, monkeypatch, running=True)
    RealSystem(console=None).hold("no console")
    assert not calls.exists()

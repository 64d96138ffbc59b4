"""Where pylive's records go in the initramfs: /dev/kmsg with syslog priorities, and the console for
what the person at the machine asked for or must act on, when the kernel's loglevel hides it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pylive.log import NOTICE
from pylive.loghandlers import KmsgHandler, console_loglevel, kernel_shows


def _emit(tmp_path: Path, level: int, loglevel: str, console: bool = True) -> tuple[str, str]:
    kmsg, tty, printk = tmp_path / "kmsg", tmp_path / "console", tmp_path / "printk"
    kmsg.touch()
    tty.touch()
    printk.write_text(f"{loglevel}\t4\t1\t7\n")
    handler = KmsgHandler(str(kmsg), str(tty) if console else None, str(printk))
    handler.emit(logging.LogRecord("pylive", level, __file__, 1, "rd.live.check: %s passed", ("/dev/sr0",), None))
    return kmsg.read_text(), tty.read_text()


@pytest.mark.parametrize(("level", "loglevel", "pri", "on_console"), [
    (logging.INFO, "4", 6, False),  # chatter: the log's
    (NOTICE, "4", 5, True),  # `quiet`: the kernel shows only priorities below 4
    (logging.WARNING, "4", 4, True),
    (logging.ERROR, "4", 3, False),  # the kernel shows it itself
    (NOTICE, "5", 5, True),  # loglevel=5
    (logging.WARNING, "5", 4, False),
    (NOTICE, "7", 5, False),  # the kernel's default: it prints the notice, once
    (logging.ERROR, "1", 3, True),  # loglevel=1
])
def test_records_reach_the_console_when_the_kernel_hides_them(tmp_path: Path, level: int, loglevel: str, pri: int,
                                                               on_console: bool) -> None:
    kmsg, tty = _emit(tmp_path, level, loglevel)
    assert kmsg == f"<{pri}>pylive: rd.live.check: /dev/sr0 passed\n"
    assert tty == ("pylive: rd.live.check: /dev/sr0 passed\n" if on_console else "")


def test_the_cmdline_hook_writes_nothing_on_the_console(tmp_path: Path) -> None:
    assert _emit(tmp_path, logging.WARNING, "4", console=False)[1] == ""


def test_console_loglevel(tmp_path: Path) -> None:
    (tmp_path / "printk").write_text("4\t4\t1\t7\n")
    assert console_loglevel(str(tmp_path / "printk")) == 4
    assert console_loglevel(str(tmp_path / "missing")) == 7
    assert kernel_shows(3, 4) and not kernel_shows(4, 4)

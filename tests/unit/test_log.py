"""Where pylive's records go in the initramfs: /dev/kmsg with syslog priorities, and the console for
what the person at the machine asked for or must act on, when the kernel's loglevel hides it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from pylive.log import NOTICE
from pylive.loghandlers import KmsgHandler, _StderrFormatter, console_loglevel, kernel_shows


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


# Found by fuzzing: a label or path from the command line reached the log as it came, and a line break,
# an escape sequence or NEL (which splitlines() splits at) in it made kmsg records of their own.
@pytest.mark.parametrize("value", ["x\n<3>pylive: forged", "x\x85forged", "\x1b[2Jx", "\udcffx"],
                         ids=["newline", "nel", "escape", "not-utf8"])
def test_a_value_in_a_record_cannot_start_another(tmp_path: Path, value: str) -> None:
    kmsg, tty, printk = tmp_path / "kmsg", tmp_path / "console", tmp_path / "printk"
    kmsg.touch()
    tty.touch()
    printk.write_text("4\t4\t1\t7\n")  # `quiet`: the warning goes to the console too
    handler = KmsgHandler(str(kmsg), str(tty), str(printk))
    handler.emit(logging.LogRecord("pylive", logging.WARNING, __file__, 1, "wait for %s", (value,), None))
    escaped = value.encode("unicode_escape").decode().replace("\\udcff", "\\xff")
    assert kmsg.read_text() == f"<4>pylive: wait for {escaped}\n"
    assert tty.read_text() == f"pylive: wait for {escaped}\n"


def test_stderr_gets_one_line_per_record_and_the_traceback_after_it() -> None:
    formatter = _StderrFormatter("%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("pylive", logging.ERROR, __file__, 1, "internal error in %s", ("a\nb",),
                                   sys.exc_info())
    lines = formatter.format(record).splitlines()
    assert lines[0] == "error: internal error in a\\nb" and lines[1] == "Traceback (most recent call last):"


def test_the_cmdline_hook_writes_nothing_on_the_console(tmp_path: Path) -> None:
    assert _emit(tmp_path, logging.WARNING, "4", console=False)[1] == ""


def test_console_loglevel(tmp_path: Path) -> None:
    (tmp_path / "printk").write_text("4\t4\t1\t7\n")
    assert console_loglevel(str(tmp_path / "printk")) == 4
    assert console_loglevel(str(tmp_path / "missing")) == 7
    assert kernel_shows(3, 4) and not kernel_shows(4, 4)

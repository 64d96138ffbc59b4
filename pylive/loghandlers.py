"""Where pylive's records go: /dev/kmsg with syslog priorities in the initramfs, stderr elsewhere.

Loaded with the first record pylive emits (pylive/log.py).
"""

from __future__ import annotations

import logging
import os
import sys

from pylive.errors import one_line
from pylive.log import NOTICE

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, NOTICE: 5, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def kernel_shows(priority: int, console_loglevel: int) -> bool:
    """Whether the kernel prints a /dev/kmsg record of this priority on the console: below the console
    loglevel (`quiet` makes it 4: only errors; `loglevel=5`: warnings too; the default 7: all but debug)."""
    return priority < console_loglevel


def console_loglevel(printk: str) -> int:
    """The first field of /proc/sys/kernel/printk (7 when it cannot be read: the kernel's default)."""
    try:
        with open(printk) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 7


class OneLine(logging.Formatter):
    """A record's message as one line (errors.one_line): a value from the command line, a label or a path in
    a message cannot start a record of its own (a forged "error:" line, or a NEL, which splitlines() and
    the console take for a line break). A traceback (log.exception) still follows on lines of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return one_line(super().formatMessage(record))


class KmsgHandler(logging.Handler):
    """One write per record, "<pri>pylive: text", like dracut-lib's `echo "<30>dracut: …" > /dev/kmsg`.

    Errors go out at priority 3, which the console shows even under `quiet` (console loglevel 4).
    With `console`, a record from NOTICE up that the kernel would not print there (a notice or a
    warning under `quiet`) is written on the console as well: what the user asked for or must act
    on is seen, as dracut's warn and the output of checkisomd5 are. The device is opened per record:
    the kernel rate-limits writes per open file.
    """

    def __init__(self, path: str = "/dev/kmsg", console: str | None = None,
                 printk: str = "/proc/sys/kernel/printk") -> None:
        super().__init__()
        self.setFormatter(OneLine())
        self.path = path
        self.console = console
        self.printk = printk

    def emit(self, record: logging.LogRecord) -> None:
        pri = _PRIORITY.get(record.levelno, 6)
        text = self.format(record)
        lines = text.splitlines() or [""]
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
            try:
                for line in lines:
                    os.write(fd, f"<{pri}>pylive: {line}\n".encode(errors="replace")[:1000])
            finally:
                os.close(fd)
        except OSError:
            self.handleError(record)
        if (self.console and record.levelno >= NOTICE
                and not kernel_shows(pri, console_loglevel(self.printk))):
            self._to_console("".join(f"pylive: {line}\n" for line in lines))

    def _to_console(self, text: str) -> None:
        assert self.console is not None
        try:
            fd = os.open(self.console, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:
            return  # no console: the record is in the log
        try:
            os.write(fd, text.encode(errors="replace"))
        except OSError:
            pass
        finally:
            os.close(fd)


class _StderrFormatter(OneLine):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}
        return prefix.get(record.levelno, "") + super().format(record)


def configure(level: int, kmsg: bool, console: bool = False) -> logging.Logger:
    logging.addLevelName(NOTICE, "NOTICE")
    logger = logging.getLogger("pylive")
    logger.handlers.clear()
    logger.setLevel(level)
    handler: logging.Handler
    if kmsg and os.access("/dev/kmsg", os.W_OK):
        handler = KmsgHandler(console="/dev/console" if console else None)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_StderrFormatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return logger

"""Where pylive's records go: /dev/kmsg with syslog priorities in the initramfs, stderr elsewhere.

Loaded with the first record pylive emits (pylive/log.py).
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class KmsgHandler(logging.Handler):
    """One write per record, "<pri>pylive: text", like dracut-lib's `echo "<30>dracut: …" > /dev/kmsg`.

    Errors go out at priority 3, which the console shows even under `quiet` (console loglevel 4).
    The device is opened per record: the kernel rate-limits writes per open file.
    """

    def __init__(self, path: str = "/dev/kmsg") -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        pri = _PRIORITY.get(record.levelno, 6)
        text = self.format(record)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
            try:
                for line in text.splitlines() or [""]:
                    os.write(fd, f"<{pri}>pylive: {line}\n".encode(errors="replace")[:1000])
            finally:
                os.close(fd)
        except OSError:
            self.handleError(record)


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}
        return prefix.get(record.levelno, "") + super().format(record)


def configure(level: int, kmsg: bool) -> logging.Logger:
    logger = logging.getLogger("pylive")
    logger.handlers.clear()
    logger.setLevel(level)
    handler: logging.Handler
    if kmsg and os.access("/dev/kmsg", os.W_OK):
        handler = KmsgHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_StderrFormatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return logger

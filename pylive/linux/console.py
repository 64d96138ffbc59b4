"""/dev/console for the person at the machine: progress lines, Esc, and Enter.

pylive runs without a terminal of its own (systemd gives the service the journal), so it opens the
console itself, as checkisomd5@.service does with StandardInput=tty-force. Keys are read without
blocking: the terminal is switched to non-canonical mode without echo (VMIN=0, VTIME=0) for as long
as the Console is open, and restored on close. No console, or one that is not a terminal, gives
None: the caller goes on without keys.
"""

from __future__ import annotations

import os
import select
import termios
import time
from types import TracebackType

TYPE_CHECKING = False  # typing stays unimported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


class Console:
    def __init__(self, fd: int, saved: list[Any]) -> None:
        self.fd = fd
        self._saved = saved

    @classmethod
    def open(cls, path: str = "/dev/console") -> Console | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            saved = termios.tcgetattr(fd)
            raw = termios.tcgetattr(fd)
            raw[3] &= ~(termios.ICANON | termios.ECHO)
            raw[6][termios.VMIN] = 0
            raw[6][termios.VTIME] = 0
            termios.tcsetattr(fd, termios.TCSANOW, raw)
            termios.tcflush(fd, termios.TCIFLUSH)  # keys pressed before the question do not answer it
        except (termios.error, OSError):
            os.close(fd)
            return None
        return cls(fd, saved)

    def write(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode(errors="replace"))
        except OSError:
            pass  # a console that went away: the line is in the log as well

    def read_keys(self) -> bytes:
        """What was typed since the last call (never blocks)."""
        try:
            return os.read(self.fd, 256)
        except OSError:
            return b""

    def wait_for_enter(self, timeout_s: float) -> bool:
        """Block until Enter is pressed (True) or timeout_s have passed (False)."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], min(left, 60.0))
            if not ready:
                continue
            keys = self.read_keys()
            if not keys:
                return False  # hung up: no one can answer
            if b"\r" in keys or b"\n" in keys:
                return True
        return False

    def close(self) -> None:
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)
        except (termios.error, OSError):
            pass
        os.close(self.fd)

    def __enter__(self) -> Console:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


"""Progress of a long read (the media check, the RAM copy): one line with percent, MiB/s and time left.

Meter and Display are pure (the clock is passed in). Ticker shows the line from a thread, so it
also appears while a read stalls (a scratched disc retrying a sector), at least every 2 s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

MIB = 1 << 20
RATE_WINDOW_S = 5.0  # MiB/s over the last seconds: a stall shows at once
TICK_S = 0.25  # how often keys are looked at; the line is shown every Display.every_s
ESC = 0x1B


class Meter:
    """How far a read of `total` bytes has come; `done` is set by the reading thread."""

    def __init__(self, what: str, total: int, start: float) -> None:
        self.what = what
        self.total = total
        self.start = start
        self.done = 0
        self._samples: deque[tuple[float, int]] = deque([(start, 0)])

    def rate(self, now: float) -> float | None:
        """Bytes per second over the last RATE_WINDOW_S seconds (None until time has passed)."""
        done = self.done
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        t0, d0 = samples[0]
        return (done - d0) / (now - t0) if now - t0 >= 0.2 else None

    def line(self, now: float) -> str:
        done, total = self.done, self.total
        pct = done * 100 // total if total else 100
        head = f"{self.what}: {pct}% of {_mib(total)} MiB"
        if total and done >= total:
            return f"{head} in {self.summary(now).partition(' in ')[2]}"
        rate = self.rate(now)
        if rate is None:
            return head
        if rate <= 0:
            return f"{head}, 0 MiB/s (waiting for the device)"
        return f"{head}, {rate / MIB:.0f} MiB/s, {_clock((total - done) / rate)} left"

    def summary(self, now: float) -> str:
        """`<n> MiB in <s> s (<r> MiB/s)`, for the line that ends the read."""
        seconds = max(now - self.start, 1e-6)
        return f"{_mib(self.done)} MiB in {seconds:.1f} s ({self.done / MIB / seconds:.0f} MiB/s)"


class Display:
    """Where the line goes: a terminal gets it rewritten in place (\\r), anything else a line at a time."""

    def __init__(self, write: Callable[[str], object], overwrite: bool, every_s: float, width: int = 80) -> None:
        self.write = write
        self.overwrite = overwrite
        self.every_s = every_s
        self.width = width  # a line rewritten in place must not wrap
        self._last: float | None = None
        self._width = 0

    def due(self, now: float) -> bool:
        """Whether a line is due (the first one is): call show() then."""
        if self._last is not None and now - self._last < self.every_s:
            return False
        self._last = now
        return True

    def show(self, line: str) -> None:
        if self.overwrite:
            line = line[: self.width - 1]
            self.write("\r" + line.ljust(self._width))  # pad over a longer previous line, no escape codes
            self._width = len(line)
        else:
            self.write(line + "\n")

    def close(self) -> None:
        if self.overwrite and self._width:
            self.write("\n")
            self._width = 0


class Ticker:
    """`with Ticker(tick, 0.25):` calls tick() every interval from a thread until the block ends."""

    def __init__(self, tick: Callable[[], None], interval_s: float) -> None:
        self.tick = tick
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pylive-progress", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


class Watch:
    """A Meter shown through a Display by a Ticker while a read runs; with `keys` (what was typed
    since the last call), Esc asks the read to stop. `with Watch(…) as w: read(progress=w.update)`."""

    def __init__(self, meter: Meter, display: Display, keys: Callable[[], bytes] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.meter = meter
        self.display = display
        self.keys = keys
        self.clock = clock
        self.cancelled = False
        self._ticker = Ticker(self._tick, TICK_S)

    def update(self, done: int) -> bool:
        """Record progress; True once Esc was pressed."""
        self.meter.done = done
        return self.cancelled

    def _tick(self) -> None:
        now = self.clock()
        if self.display.due(now):
            self.display.show(self.meter.line(now))
        if self.keys is not None and esc_pressed(self.keys()):
            self.cancelled = True

    def __enter__(self) -> Watch:
        self._ticker.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._ticker.__exit__(exc_type, exc, tb)
        self.display.show(self.meter.line(self.clock()))  # where it ended, 100% or not
        self.display.close()


def esc_pressed(keys: bytes) -> bool:
    """A lone Esc: not the start of an arrow or function key (Esc [ … and Esc O …)."""
    i = keys.find(ESC)
    while i >= 0:
        if keys[i + 1 : i + 2] not in (b"[", b"O"):
            return True
        i = keys.find(ESC, i + 1)
    return False


def _mib(n: int) -> int:
    return -(-n // MIB)


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"

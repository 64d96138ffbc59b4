"""Guest-side timing extracted from the report's dmesg section.

Boot with ``TIMING_CMDLINE`` (systemd logs its unit status lines to kmsg) so
that the lines below carry kernel timestamps, e.g.::

    [    3.201234] systemd[1]: Starting dracut-initqueue.service - dracut initqueue hook...
    [    3.301234] systemd[1]: Starting pylive.service - ...
    [    6.402345] systemd[1]: Mounted sysroot.mount - /sysroot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# systemd → kmsg at info level; printk.devkmsg=on stops the kernel from
# rate-limiting (dropping) systemd's kmsg lines; a larger log buffer keeps them.
TIMING_CMDLINE = ("systemd.log_target=kmsg systemd.log_level=info "
                  "printk.devkmsg=on log_buf_len=4M")

_TS = r"^\s*\[\s*(?P<ts>\d+\.\d+)\]\s*"
START_PATTERNS = (
    re.compile(_TS + r".*\bStarting (?:dracut-initqueue(?:\.service)?\b|dracut initqueue hook)"),
    re.compile(_TS + r".*\bStarting pylive(?:\.service)?\b"),
)
ROOT_PATTERNS = (
    # systemd: "Mounted sysroot.mount - /sysroot." (252) / "Mounted /sysroot." (older)
    re.compile(_TS + r".*\bMounted (?:sysroot\.mount\b|/sysroot\b)"),
    # pylive mounts the root itself and says so
    re.compile(_TS + r"pylive: root: .* mounted on /sysroot$"),
)


@dataclass(frozen=True)
class TimingMatch:
    start_s: float
    start_line: str
    root_s: float
    root_line: str

    @property
    def ms(self) -> float:
        return (self.root_s - self.start_s) * 1000.0


def _first(dmesg: str, patterns: tuple[re.Pattern[str], ...]) -> tuple[float, str] | None:
    best = None
    for line in dmesg.splitlines():
        for pat in patterns:
            m = pat.search(line)
            if m:
                ts = float(m.group("ts"))
                if best is None or ts < best[0]:
                    best = (ts, line.strip())
                break
    return best


def initqueue_match(dmesg: str) -> TimingMatch | None:
    """The matched start and root lines (earliest of each), or None."""
    start = _first(dmesg, START_PATTERNS)
    if start is None:
        return None
    root = None
    for line in dmesg.splitlines():
        for pat in ROOT_PATTERNS:
            m = pat.search(line)
            if m and float(m.group("ts")) >= start[0]:
                root = (float(m.group("ts")), line.strip())
                break
        if root:
            break
    if root is None:
        return None
    return TimingMatch(start[0], start[1], root[0], root[1])


def initqueue_to_root_ms(dmesg: str) -> float | None:
    """Milliseconds (guest kernel clock) from the earliest "Starting
    dracut-initqueue"/"Starting pylive" line to the "/sysroot mounted" line."""
    m = initqueue_match(dmesg)
    return None if m is None else m.ms

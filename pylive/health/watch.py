"""`pylive watch`: the overlay watcher of the booted live system.

It reads the overlay every `interval` seconds (one DM_TABLE_STATUS ioctl, a statvfs and
/proc/meminfo: next to nothing), and it wakes at once on what the kernel says when the overlay
breaks: a device-mapper event (poll(2) on /dev/mapper/control, armed with DM_DEV_ARM_POLL: an
invalidated snapshot, a thin pool out of space) or a device-mapper line in the kernel log (a
persistent `PO` snapshot that overflows only logs "Snapshot overflowed"). Each level is warned
about once (levels.py); the state file is rewritten at each change.
"""

from __future__ import annotations

import os
import select
import time

from pylive.health import measure, notify
from pylive.health.levels import Levels
from pylive.health.status import DEFAULT_LEVELS, as_json

KMSG_WAKE = (b"device-mapper:", b"snapshots:", b"thin")
STATE_EVERY_S = 60  # the state file is rewritten when the reading changes, else this often


def _open_kmsg() -> int | None:
    """/dev/kmsg positioned at its end: only new records wake the watcher."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def _drain_kmsg(fd: int) -> bool:
    """Read the new kernel records; whether one of them is device-mapper's."""
    hit = False
    while True:
        try:
            rec = os.read(fd, 8192)
        except BlockingIOError:
            return hit
        except OSError:  # EPIPE: records were overwritten before we read them; go on from here
            continue
        if not rec:
            return hit
        msg = rec.partition(b";")[2]
        hit = hit or (not msg.startswith(b"pylive-watch:") and any(w in msg for w in KMSG_WAKE))


def _open_dm_events() -> int | None:
    try:
        from pylive.linux import dm

        return dm.open_events()
    except OSError:  # no device-mapper, or a kernel before 4.13: the polls alone
        return None


def run(levels: tuple[int, ...] = DEFAULT_LEVELS, interval: float = 2.0, root: str = "/",
        once: bool = False) -> int:
    tracker = Levels(levels)
    record = measure.boot_record(root)
    kmsg, dmfd = _open_kmsg(), _open_dm_events()
    warned: list[dict[str, object]] = []
    started = written_at = time.time()
    last: dict[str, object] = {}
    while True:
        reading = measure.read(root, record)
        events = tracker.update(reading)
        for event in events:
            text = notify.notify(event, reading, levels)
            warned.append({"at": round(time.time(), 3), "level": event.level, "state": event.state.value,
                           "percent": round(event.percent, 2), "text": text})
        doc = as_json(reading, levels)
        now = time.time()
        if events or doc != last or now - written_at >= STATE_EVERY_S or once:  # the file only when it says more
            notify.write_state(doc | {"watcher_pid": os.getpid(), "watching_since": round(started, 3),
                                      "read_at": round(now, 3), "warnings": warned})
            last, written_at = doc, now
        if once:
            return 0
        fds = [fd for fd in (kmsg, dmfd) if fd is not None]
        if not fds:
            time.sleep(interval)
            continue
        ready = select.select(fds, [], [], interval)[0]
        if dmfd is not None and dmfd in ready:
            from pylive.linux import dm

            dm.arm_events(dmfd)
        if kmsg is not None and kmsg in ready:
            _drain_kmsg(kmsg)

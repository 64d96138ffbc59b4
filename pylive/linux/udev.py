"""Waiting for block devices through udev (pyudev)."""

from __future__ import annotations

import ctypes.util
import os
import time

# pyudev finds libudev with ctypes.util.find_library, which runs ldconfig/gcc: neither exists in
# an initramfs. Pin the soname before pyudev is imported (it binds find_library at import).
_find_library = ctypes.util.find_library
_PINNED = {"udev": "libudev.so.1", "c": "libc.so.6"}
ctypes.util.find_library = lambda name: _PINNED.get(name) or _find_library(name)

import pyudev  # noqa: E402

UDEV_QUEUE = "/run/udev/queue"  # exists while udevd has events to process (what `udevadm settle` waits on)
SETTLE_S = 1.0


def settle(timeout_s: float = SETTLE_S, queue: str = UDEV_QUEUE) -> None:
    """Wait, `timeout_s` at most, until udev has processed the events it has: a device found by its label
    is compared with the others that carry it, and udev must have probed those too."""
    deadline = time.monotonic() + timeout_s
    while os.path.exists(queue) and time.monotonic() < deadline:
        time.sleep(0.02)


def wait_for_path(path: str, timeout_s: float) -> str | None:
    """Wait until udev has created `path` (a /dev node or symlink); return the real node or None.

    A monitor on the block subsystem wakes us on every event; the existence check comes after
    the monitor is started, so an event between the check and the wait cannot be missed.
    """
    found = _wait_for_path(path, timeout_s)
    if found is not None:
        settle()
    return found


def _wait_for_path(path: str, timeout_s: float) -> str | None:
    if os.path.exists(path):
        return os.path.realpath(path)
    context = pyudev.Context()
    monitor = pyudev.Monitor.from_netlink(context)
    monitor.filter_by(subsystem="block")
    monitor.start()
    deadline = time.monotonic() + timeout_s
    while True:
        if os.path.exists(path):
            return os.path.realpath(path)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        monitor.poll(timeout=min(left, 1.0))


def trigger_change(name: str, sys_dir: str = "/sys") -> None:
    """What `udevadm trigger --action=change` does for one block device: ask the kernel to send a
    "change" uevent, so that udev probes it again (blkid) and makes its /dev/disk links."""
    with open(f"{sys_dir}/class/block/{name}/uevent", "w") as f:
        f.write("change")


class BlockEvents:
    """Kernel uevents of the block subsystem, as they happen (udev need not be running).

    The kernel creates the /dev node (devtmpfs) before it sends the "add" uevent, so a device can
    be read as soon as its event arrives.
    """

    def __init__(self) -> None:
        self.monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        self.monitor.filter_by(subsystem="block")
        self.monitor.start()

    def wait(self, timeout_s: float) -> float:
        """Wait until a block device event arrives or `timeout_s` passes; return the seconds waited."""
        start = time.monotonic()
        if self.monitor.poll(timeout=timeout_s) is not None:
            while self.monitor.poll(timeout=0) is not None:  # several events come together: take them all
                pass
        return time.monotonic() - start

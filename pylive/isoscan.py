"""Finding a file on the disks' filesystems without writing to them (iso-scan/filename), and
picking the live medium among a loop device and its partitions.

The decisions are pure (scan order, mount options, which device carries root='s label); the
search loop runs on any host that offers the few calls of ScanHost (RealSystem, and the unit
tests' FakeSystem, so the loop itself is unit-tested).
"""

from __future__ import annotations

import posixpath
import re

from pylive.devspec import label_suggestion
from pylive.errors import LiveError, NotFoundOnDisks
from pylive.log import log
from pylive.plan import FindFile
from pylive.probe import BlockDevice, FsIdentity

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)


def probe_dir(mountpoint: str) -> str:
    """Where candidates are looked at: beside, not at, where the booted system looks (e.g.
    /run/initramfs/isoscan). Only the filesystem that holds the file is then bound there."""
    return posixpath.join(posixpath.dirname(mountpoint.rstrip("/")), ".pylive-probe")


# How each filesystem is mounted to be looked at: read-only, and journalled ones without replaying
# (or even loading) their journal. A plain read-only mount of ext4, XFS or btrfs still replays a
# dirty journal or log onto the device (dracut-ng#2562). Anything else is not mounted at all.
SCAN_MOUNT: dict[str, tuple[str, tuple[str, ...]]] = {
    "ext4": ("ext4", ("ro", "noload")),  # ext2 and ext3 too (one superblock magic, one driver)
    "xfs": ("xfs", ("ro", "norecovery")),
    "btrfs": ("btrfs", ("ro", "rescue=nologreplay")),
    "f2fs": ("f2fs", ("ro", "norecovery")),
    "vfat": ("vfat", ("ro",)),
    "exfat": ("exfat", ("ro",)),
    "ntfs": ("ntfs3", ("ro",)),  # only when Windows left it clean (probe.ntfs_unclean)
    "iso9660": ("iso9660", ("ro",)),
    "squashfs": ("squashfs", ("ro",)),
    "erofs": ("erofs", ("ro",)),
}
NEVER_SCANNED = ("loop", "ram", "zram")  # loop devices (ours among them) and RAM disks


def _natural(name: str) -> tuple[str | int, ...]:
    """sda2 < sda10 < sdb1: digits compare as numbers (re.split alternates text and digits)."""
    return tuple(int(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", name)))


def scan_order(devices: list[BlockDevice]) -> list[BlockDevice]:
    """iso-scan's order, stable across boots: removable disks first (CD/DVD drives, most USB sticks),
    so that a stick holding the ISO spares the internal disks; then by disk name (natural order);
    a whole disk before its partitions, partitions by number. Loop and RAM devices are left out,
    and so are empty ones (a drive without a disc: looked at again when the disc arrives)."""
    wanted = [d for d in devices if not d.name.startswith(NEVER_SCANNED) and d.size_sectors > 0]
    return sorted(wanted, key=lambda d: (not d.removable, _natural(d.parent or d.name), d.partition))


def describe_scan(devices: list[BlockDevice]) -> list[str]:
    """What iso-scan would do with each device, in order (pylive explain; fstype as udev knows it)."""
    lines = []
    for d in scan_order(devices):
        how = SCAN_MOUNT.get(d.fstype or "")
        if how is None:
            lines.append(f"{d.name}: {d.fstype or 'no filesystem known'}: not mounted")
            continue
        when = ", if Windows left it clean" if d.fstype == "ntfs" else ""
        lines.append(f"{d.name}: {d.fstype}: mount -t {how[0]} -o {','.join(how[1])}{when}")
    return lines


if TYPE_CHECKING:
    from typing import Protocol

    class ScanHost(Protocol):
        def block_devices(self) -> list[BlockDevice]: ...
        def fstype(self, path: str) -> str | None: ...
        def ntfs_unclean(self, dev: str) -> str | None: ...
        def make_dir(self, path: str) -> None: ...
        def mount(self, source: str, target: str, fstype: str, options: tuple[str, ...]) -> None: ...
        def umount(self, target: str, lazy: bool) -> None: ...
        def is_file(self, path: str) -> bool: ...
        def wait_for_device(self, path: str, timeout_s: float) -> str | None: ...
        def wait_block_event(self, timeout_s: float) -> float: ...


class _Search:
    """One search: what was looked at, for the log and for the line that ends a failed search."""

    def __init__(self, host: ScanHost, what: str, paths: tuple[str, ...], probe: str) -> None:
        self.host, self.what, self.paths, self.probe = host, what, paths, probe
        self.searched: list[str] = []
        self.skipped: list[str] = []
        self.no_fs: list[str] = []
        self.fstype = ""  # of the last filesystem mounted

    def names(self) -> str:
        return " or ".join(self.paths)

    def look(self, node: str) -> bool | None:
        """Mount `node` at the probe directory and look; True leaves it mounted there. None: try later."""
        host, name = self.host, node.removeprefix("/dev/")
        try:
            fstype = host.fstype(node)
        except OSError as e:  # e.g. a drive without a disc
            log.debug("%s: %s cannot be read yet (%s)", self.what, name, e.strerror)
            return None
        how = SCAN_MOUNT.get(fstype or "")
        if how is None:
            log.debug("%s: %s holds no filesystem pylive mounts (%s)", self.what, name, fstype or "none found")
            self.no_fs.append(name)
            return False
        assert fstype is not None
        if fstype == "ntfs":
            why = host.ntfs_unclean(node)
            if why:
                log.warning("%s: %s (ntfs) is not looked at: %s", self.what, name, why)
                self.skipped.append(f"{name}(ntfs: {why.split(' (')[0]})")
                return False
        driver, options = how
        try:
            host.mount(node, self.probe, driver, options)
        except OSError as e:
            log.info("%s: %s (%s) cannot be mounted read-only with %s (%s): skipped", self.what, name, fstype,
                     ",".join(options), e.strerror or e)
            self.skipped.append(f"{name}({fstype}: {e.strerror or e})")
            return False
        self.searched.append(f"{name}({fstype})")
        self.fstype = fstype
        if any(host.is_file(self.probe + p) for p in self.paths):
            return True
        host.umount(self.probe, False)
        log.info("%s: %s (%s, mounted %s): no %s", self.what, name, fstype, ",".join(options), self.names())
        return False

    def keep(self, node: str, mountpoint: str) -> str:
        """The filesystem at the probe directory holds the file: bind it where the system looks."""
        try:
            self.host.mount(self.probe, mountpoint, "none", ("bind",))
        finally:
            self.host.umount(self.probe, False)
        log.info("%s: found on %s (%s); it stays mounted read-only on %s", self.what, node, self.fstype, mountpoint)
        return node

    def summary(self) -> str:
        parts = [f"looked in: {', '.join(self.searched) or 'nothing'}"]
        if self.skipped:
            parts.append(f"skipped: {', '.join(self.skipped)}")
        if self.no_fs:
            parts.append(f"no filesystem to look in: {', '.join(self.no_fs)}")
        return "; ".join(parts)


def find_file(host: ScanHost, step: FindFile, within: list[str] | None = None) -> str:
    """Find one of the step's paths on a filesystem; return its device, mounted read-only on the
    step's mountpoint.

    Candidates: the device at the udev path `step.device`; or the nodes `within` (a disk image's
    partitions; no waiting); or else every block device, in scan_order, rescanned whenever a
    block device appears, until `step.timeout_s` seconds have passed.
    """
    what, mountpoint, timeout_s, device = step.what, step.mountpoint, step.timeout_s, step.device
    search = _Search(host, what, step.paths, probe_dir(mountpoint))
    host.make_dir(search.probe)
    host.make_dir(mountpoint)
    if device is not None:
        node = host.wait_for_device(device, timeout_s)
        if node is None:
            devices = host.block_devices()
            seen = ", ".join(str(d) for d in devices) or "none"
            raise NotFoundOnDisks(what, f"device {device} not found after {timeout_s:.0f}s; block devices seen: {seen}",
                                  label_suggestion(what.partition("=")[2], device, devices)
                                  or "check the device named before ':', or raise rd.retry")
        if search.look(node):
            return search.keep(node, mountpoint)
        raise NotFoundOnDisks(what, f"{device} does not hold {search.names()} ({search.summary()})",
                              "check the path after ':' (from the top of that filesystem)", search.searched)
    if within is not None:
        for node in within:
            if search.look(node):
                return search.keep(node, mountpoint)
        raise NotFoundOnDisks(what, f"no partition holds {search.names()} ({search.summary()})",
                              "the file must be an ISO, a squashfs or EROFS image, a filesystem holding the live "
                              "directory, or a disk image with a partition that holds it", search.searched)
    tried: set[str] = set()
    waited = 0.0
    while True:
        for dev in scan_order(host.block_devices()):
            if dev.node in tried:
                continue
            found = search.look(dev.node)
            if found is None:
                continue
            tried.add(dev.node)
            if found:
                return search.keep(dev.node, mountpoint)
        if waited >= timeout_s:
            raise NotFoundOnDisks(what, f"no filesystem holds {search.names()} after {timeout_s:.0f}s "
                                  f"({search.summary()})",
                                  "check the path (from the top of the filesystem that holds it), or raise rd.retry",
                                  search.searched)
        waited += host.wait_block_event(min(1.0, timeout_s - waited))


def pick_medium(what: str, spec: str, labels: tuple[str, ...], uuid: str,
                candidates: list[tuple[str, FsIdentity]]) -> str:
    """The device among `candidates` (a loop device, then its partitions) whose filesystem carries
    root='s label or UUID. Its own superblock says so: nothing waits for udev to say it."""
    for node, ident in candidates:
        if (uuid and ident.uuid.lower() == uuid.lower()) or set(labels) & set(ident.labels):
            return node
    node, ident = candidates[0]
    shown = f"labelled {ident.labels[0]!r}" if ident.labels else "unlabelled"
    hint = (f"use root=live:CDLABEL={ident.labels[0]}" if ident.labels
            else f"use root=live:UUID={ident.uuid}" if ident.uuid else "check the file")
    raise LiveError(f"{what}: the file found ({node}, {ident.fstype or 'no filesystem'}) is {shown}"
                    f"{f' with UUID {ident.uuid}' if ident.uuid else ''}, not {spec}", hint)

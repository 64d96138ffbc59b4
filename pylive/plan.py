"""The plan is data: steps with describe(); only executor.py runs them (pure).

Steps name earlier results by symbolic handle (Ref("base")), never by /dev/loop3: the executor
keeps the mapping from handle to device node, so a plan reads the same on every machine.
"""

from __future__ import annotations

from pylive.record import record


@record
class Ref:
    """A device that an earlier step produced."""

    name: str

    def __str__(self) -> str:
        return f"<{self.name}>"


@record
class SizeOf:
    """The size in 512-byte sectors of a device, known once it exists."""

    ref: Ref

    def __str__(self) -> str:
        return f"<sectors of {self.ref.name}>"


Source = Ref | str


@record
class DmTarget:
    start: int
    length: int | SizeOf
    target: str
    args: tuple[Source | int, ...]

    def describe(self) -> str:
        return " ".join(str(x) for x in (self.start, self.length, self.target, *self.args))


@record
class WaitForDevice:
    spec: str
    udev_path: str
    timeout_s: int
    out: Ref
    optional: bool = False  # absent after the wait: the handle is "" instead of an error

    def describe(self) -> str:
        maybe = ", if it is there" if self.optional else ""
        return f"wait up to {self.timeout_s}s for {self.spec} ({self.udev_path}){maybe} → {self.out}"


@record
class LoadModules:
    names: tuple[str, ...]

    def describe(self) -> str:
        return f"load kernel modules {' '.join(self.names)}"


@record
class MakeDir:
    path: str

    def describe(self) -> str:
        return f"mkdir -p {self.path}"


@record
class Symlink:
    target: Source
    link: str

    def describe(self) -> str:
        return f"ln -s {self.target} {self.link}"


@record
class Mount:
    source: Source
    target: str
    fstype: str
    options: tuple[str, ...] = ("ro",)

    def describe(self) -> str:
        return f"mount -t {self.fstype} -o {','.join(self.options) or 'defaults'} {self.source} {self.target}"


@record
class Unmount:
    target: str
    lazy: bool = False

    def describe(self) -> str:
        return f"umount {'-l ' if self.lazy else ''}{self.target}"


@record
class AttachLoop:
    file: Source
    readonly: bool
    out: Ref
    partscan: bool = False  # also create the partitions of a disk image (LO_FLAGS_PARTSCAN)

    def describe(self) -> str:
        return f"losetup{' -r' if self.readonly else ''}{' -P' if self.partscan else ''} {self.file} → {self.out}"


@record
class DetachLoop:
    """Detach a loop device that nothing reads any more (its file can then go: a medium be released)."""

    loop: Ref

    def describe(self) -> str:
        return f"losetup -d {self.loop}"


@record
class CreateSparseFile:
    path: str
    size_mib: int

    def describe(self) -> str:
        return f"create sparse file {self.path} of {self.size_mib} MiB"


@record
class CreateDm:
    name: str
    table: tuple[DmTarget, ...]
    readonly: bool
    out: Ref

    def describe(self) -> str:
        lines = "; ".join(t.describe() for t in self.table)
        return f"dmsetup create{' --readonly' if self.readonly else ''} {self.name} '{lines}' → {self.out}"


@record
class MarkDone:
    """Leave the completion marks for the initramfs: /dev/root and the shutdown request."""

    def describe(self) -> str:
        return "ln -s null /dev/root; touch /run/initramfs/.need_shutdown"


@record
class DmMessage:
    name: str
    message: str

    def describe(self) -> str:
        return f"dmsetup message {self.name} 0 '{self.message}'"


@record
class CheckSnapshot:
    """Read a persistent snapshot's usage (`dmsetup status`): refuse one the kernel invalidated or
    that is full, instead of letting the root fail on its first write; warn when it is nearly full."""

    name: str
    overlay: str  # the COW file, for the message
    writable: bool = True

    def describe(self) -> str:
        return f"check how full {self.name} ({self.overlay}) is"


@record
class CheckMedia:
    """Verify the MD5 implanted in an ISO image (implantisomd5's format) by reading the whole device."""

    device: Source

    def describe(self) -> str:
        return f"check the implanted MD5 of {self.device} (Esc skips)"


@record
class ResizeTmpfs:
    """Grow a tmpfs (/run) so that a RAM copy fits, as dracut-ng's check_live_ram does."""

    mountpoint: str
    size_mib: int
    was_mib: int

    def describe(self) -> str:
        return (f"mount -o remount,size={self.size_mib}m {self.mountpoint} (was {self.was_mib} MiB): "
                "room for the RAM copy")


@record
class CopyToRam:
    """Copy an image into RAM (/run), verify the copy, use it instead of the medium's."""

    src: str
    dest: str
    option: str = "rd.live.ram"  # the option that asked for it, for the messages

    def describe(self) -> str:
        return f"copy {self.src} to RAM as {self.dest} and verify it"


@record
class ReleaseMedium:
    """Unmount the live medium once the root no longer reads from it (rd.live.ram): it can be removed.
    iso-scan: then the ISO's loop device is detached and the filesystem holding the ISO unmounted too,
    so that its disk can be removed as well (dracut's apply-live-updates.sh does the same)."""

    target: str
    mounted: bool = True  # False: the device is the image itself, copied: nothing to unmount
    iso_loop: Ref | None = None
    iso_host: str | None = None

    def describe(self) -> str:
        iso = f", detach {self.iso_loop}, umount {self.iso_host}" if self.iso_host else ""
        if not self.mounted:
            return f"{iso.removeprefix(', ')}{': ' if iso else ''}the root is in RAM, the medium can be removed"
        return f"umount {self.target}{iso}: the root is in RAM, the medium can be removed"


@record
class WipeHeader:
    """Reset a persistent device-mapper COW file: zero its header (dracut: dd bs=64k count=1)."""

    path: str
    size: int

    def describe(self) -> str:
        return f"reset: zero the first {self.size // 1024} KiB of {self.path}"


@record
class EmptyDir:
    """Reset a persistent OverlayFS upper directory: remove what it holds, keep the directory."""

    path: str

    def describe(self) -> str:
        return f"reset: empty {self.path}"


@record
class WriteFile:
    """Write a small file durably (the identity record beside a persistent overlay)."""

    path: str
    text: str

    def describe(self) -> str:
        return f"write {self.path}: {self.text.strip()}"


@record
class Notice:
    """A message for the person at the console; with wait_for_enter, the boot waits for Enter."""

    text: str
    wait_for_enter: bool = False

    def describe(self) -> str:
        return f"{'ask' if self.wait_for_enter else 'tell'}: {self.text}"


@record
class FindFile:
    """Find a file on the filesystems of block devices, never writing to them (iso-scan).

    Each candidate is mounted read-only without journal replay in a private directory, and
    unmounted again unless it holds one of `paths`; the one that does is left mounted at
    `mountpoint`. `out` is its device. Candidates: the device udev names `device` (iso-scan's
    `<devspec>:<path>`), the partitions of `within` (a disk image), or else every block device,
    rescanned as new ones appear, for up to `timeout_s` seconds.
    """

    what: str  # the option that asks, for messages: iso-scan/filename=…
    paths: tuple[str, ...]
    mountpoint: str
    timeout_s: int
    out: Ref
    device: str | None = None  # a udev path
    within: Ref | None = None

    def describe(self) -> str:
        names = " or ".join(self.paths)
        if self.within is not None:
            where = f"the partitions of {self.within}"
        elif self.device is not None:
            where = f"{self.device}, waiting up to {self.timeout_s}s for it"
        else:
            where = (f"every block device's filesystem (removable ones first, then by name), waiting up to "
                     f"{self.timeout_s}s for more devices")
        return (f"find {names} on {where}: each mounted read-only without journal replay, skipped when that is "
                f"not safe; keep the one holding it mounted on {self.mountpoint} → {self.out}")


@record
class TriggerUevent:
    """Make udev probe a device we set up (and its partitions) again: `udevadm trigger --action=change`.

    Linux 5.19 to 6.15 send no uevent for a loop device once it is configured (dracut's iso-scan
    hangs on that, dracutdevs#2183): udev would never learn its label.
    """

    device: Ref

    def describe(self) -> str:
        return f"udevadm trigger --action=change {self.device} and its partitions"


@record
class SelectMedium:
    """The live medium is `device` or one of its partitions: the one whose superblock carries the
    label or UUID of root= (read directly: no waiting for udev)."""

    spec: str
    labels: tuple[str, ...]  # any of these labels (empty: the UUID decides)
    uuid: str
    device: Ref
    out: Ref
    what: str = ""  # the option that found the device, for messages

    def describe(self) -> str:
        return f"take {self.device}, or the partition of it, whose filesystem carries {self.spec} → {self.out}"


@record
class WaitNetwork:
    """Wait (netlink, no polling) until a link is up with carrier and an address, and the kernel has a
    route to `server`; dracut's network modules bring the interfaces up."""

    server: str
    timeout_s: int

    def describe(self) -> str:
        return f"wait up to {self.timeout_s}s for a link, an address and a route to {self.server}"


@record
class FetchImage:
    """Download an image into RAM: the size checked against `room_bytes` before the first byte, the
    checksum (if any) verified, a dropped connection resumed, the URLs (mirrors) tried in order."""

    urls: tuple[str, ...]
    dest: str
    checksum: str | None
    verify_tls: bool
    room_bytes: int | None
    option: str = "root"  # the option that names it, for the messages

    def describe(self) -> str:
        more = f" (then {len(self.urls) - 1} mirror{'s' if len(self.urls) > 2 else ''})" if len(self.urls) > 1 else ""
        room = f", at most {self.room_bytes >> 20} MiB" if self.room_bytes is not None else ""
        check = f", verify {self.checksum}" if self.checksum else ""
        tls = "" if self.verify_tls else ", TLS certificates not verified"
        return f"download {self.urls[0]}{more} into {self.dest}{room}{check}{tls}"


@record
class MountNfs:
    """Mount an NFS export read-only (mount.nfs when the initramfs has it, else the kernel's own
    text options with addr= and nolock)."""

    export: str  # server:/path
    target: str
    version: str = ""  # "" (3, as dracut's nfs:// default) or "4"
    port: int = 0  # the server's NFS port when the URL gives one (nfs://server:port/…), else 0: the default

    def describe(self) -> str:
        port = f",port={self.port}" if self.port else ""
        return (f"mount -t nfs{self.version if self.version == '4' else ''} -o ro,nolock{port} "
                f"{self.export} {self.target}")


@record
class ApplyUpdates:
    """live.updates=: copy the updates image's files into the root (dracut's apply-live-updates)."""

    image: str
    newroot: str

    def describe(self) -> str:
        return f"copy the files of {self.image} into {self.newroot}"


Step = (
    WaitForDevice | LoadModules | MakeDir | Symlink | Mount | Unmount | AttachLoop | DetachLoop | CreateSparseFile
    | CreateDm | MarkDone | DmMessage | CheckSnapshot | CheckMedia | ResizeTmpfs | CopyToRam | ReleaseMedium
    | WipeHeader | EmptyDir | Notice | WriteFile | FindFile | TriggerUevent | SelectMedium | WaitNetwork | FetchImage
    | MountNfs | ApplyUpdates
)

"""The persistent overlay: where it is, what it holds, whether it may be used (its fill, the base image
it was made for), and its reset (pure)."""

from __future__ import annotations

import enum

from pylive.dmtable import SnapshotUsage
from pylive.errors import LiveError
from pylive.options import LiveOptions
from pylive.plan import EmptyDir, MakeDir, Mount, Notice, Step, WaitForDevice, WipeHeader, WriteFile
from pylive.planner.intent import Intent, OverlaySpec
from pylive.planner.paths import LIVE, LIVEDEV_REF, OVERLAY_DEV, OVERLAY_MNT
from pylive.probe import FsHealth
from pylive.ramcopy import MIB, Room
from pylive.record import record


class Found(enum.Enum):
    NOTHING = "nothing"
    DM_COW = "a device-mapper COW file"  # empty file or DM_snapshot_cow
    OVERLAYFS_DIR = "an OverlayFS directory (with ../ovlwork)"
    FS_IMAGE = "a filesystem image holding overlayfs/ and ovlwork/"
    DEVICE_TOP = "overlay/ and ovlwork/ at the top of the device"


@record
class OverlayProbe:
    """The persistent overlay as found (or not) on its device, mounted at OVERLAY_MNT."""

    found: Found
    path: str = ""  # absolute path in the initramfs
    device_present: bool = True
    fresh: bool = False  # a DM COW file never used: all zeros, no snapshot header yet
    fstype: str | None = None  # a filesystem image's type


def overlay_path(opts: LiveOptions, spec: OverlaySpec, live_label: str, live_uuid: str) -> str:
    """The path on the overlay device: the pathspec, or /<rd.live.dir>/overlay-<LABEL>-<UUID> of the medium."""
    return spec.path or f"/{opts.live_dir.strip('/')}/overlay-{live_label}-{live_uuid}"



def plan_overlay_wait(intent: Intent, opts: LiveOptions) -> tuple[Step, ...]:
    """Look for the persistent overlay's device; its absence is not an error (a temporary overlay is used)."""
    assert intent.persistent is not None
    path = intent.persistent.device.udev_path()
    assert path is not None
    return (WaitForDevice(str(intent.persistent.device), path, min(opts.retry_s, 10), OVERLAY_DEV, optional=True),)


def plan_overlay_mount(intent: Intent, same_as_live: bool, fstype: str | None = None) -> tuple[Step, ...]:
    """Mount the overlay's filesystem at OVERLAY_MNT, read-only. On the live medium itself: remount it
    read-write and bind it there (dracut 057+). Read-only mode never mounts it writable, and an
    ext3/4 is then mounted without its journal (noload): a read-only mount would otherwise replay it,
    writing to the device, and on a write-protected device it could not be mounted at all."""
    if same_as_live:
        return (
            *(() if intent.readonly else (Mount(LIVEDEV_REF, LIVE, "none", ("remount", "rw")),)),
            MakeDir(OVERLAY_MNT),
            Mount(LIVE, OVERLAY_MNT, "none", ("bind",)),
        )
    # read-only until the overlay is known to be used and to fit (plan_overlay_writable)
    options = ("ro", "noload") if intent.readonly and fstype == "ext4" else ("ro",)
    return (MakeDir(OVERLAY_MNT), Mount(OVERLAY_DEV, OVERLAY_MNT, "auto", options))


def plan_overlay_writable(intent: Intent, probe: OverlayProbe, same_as_live: bool) -> tuple[Step, ...]:
    """Remount the overlay's device read-write once the overlay was found and may be written: a device
    whose overlay is missing, or full, or that is used read-only, is never mounted writable."""
    if intent.readonly or same_as_live or probe.found is Found.NOTHING:
        return ()
    return (Mount(OVERLAY_DEV, OVERLAY_MNT, "none", ("remount", "rw")),)


def check_overlay_device(intent: Intent, node: str, fstype: str | None, health: FsHealth) -> tuple[Intent, str | None]:
    """A persistent overlay is written only to a device that takes writes, on a filesystem that needs no
    repair. Otherwise the boot goes on as with rd.live.overlay.readonly (the overlay read-only under a
    temporary one in RAM), and one warning says why and what to do: (the intent to boot with, the warning).
    A journal to replay is the kernel's to replay; that it writes is said (a warning too)."""
    assert intent.persistent is not None
    if intent.readonly:
        return intent, None
    where = f"{intent.persistent.device} ({node}, {fstype or 'unknown filesystem'})"
    if health.read_only:
        why = f"the persistent overlay's device {where} is write-protected"
        todo = "to keep changes, switch off the stick's write protection and boot again"
    elif health.repair:
        why = (f"the persistent overlay's filesystem on {where} needs repair: {health.repair}; "
               "pylive does not write to it")
        todo = (f"to keep changes, boot once without the persistent overlay and run {health.fsck} {node} "
                "(or repair it on another computer), then boot again")
    elif health.replay:
        return intent, (f"the persistent overlay's filesystem on {where} was not cleanly unmounted: the kernel "
                        "replays its journal as it mounts it (this writes to the device)")
    else:
        return intent, None
    reset = "; rd.live.overlay.reset was not done" if intent.reset else ""
    readonly = Intent(intent.overlayfs, intent.tmpfs_options, intent.persistent, intent.no_overlay, reset=False,
                      readonly=True, thin=intent.thin, warnings=intent.warnings)
    return readonly, (f"{why}: this boot uses the overlay read-only, and changes go to a temporary overlay in RAM, "
                      f"lost at shutdown{reset}: {todo}")


FULL_BYTES = MIB


def check_overlay_room(intent: Intent, probe: OverlayProbe, room: Room | None) -> None:
    """Refuse to use an OverlayFS upper layer on its device's filesystem (a directory, or device mode's
    overlay/) with less than FULL_BYTES free: the overlay would be made only in part, or the boot's first
    writes fail. The device is still mounted read-only when this is refused. A COW file or a
    filesystem image holds the overlay's writes in its own size: a full one is reported by its own check."""
    if (intent.readonly or room is None or room.avail >= FULL_BYTES
            or probe.found not in (Found.OVERLAYFS_DIR, Found.DEVICE_TOP)):
        return
    sizes = f"{room.avail // 1024} KiB of {room.size // MIB} MiB free"
    assert intent.persistent is not None
    device = intent.persistent.device
    if probe.fresh and probe.found is Found.DEVICE_TOP:
        raise LiveError(f"the persistent overlay's device {device} is full ({sizes}): overlay/ and ovlwork/ "
                        "cannot be made there, and were not",
                        "free some room on it, or name another device in rd.overlay=")
    raise LiveError(f"the persistent overlay's device {device} is full ({sizes}): this boot could not write "
                    f"to the overlay {probe.path.removeprefix(OVERLAY_MNT)}, which is left as it is",
                    "free some room on it (boot with rd.live.overlay.readonly to reach your files)")


def classify_overlay(path: str, *, is_file: bool, size: int, fstype: str | None, is_dir: bool,
                     ovlwork_sibling: bool, device_mode: bool, head_zero: bool = True,
                     top_exists: bool = False) -> OverlayProbe:
    """What a persistent overlay path holds (dmsquash-live-root.sh do_live_overlay, part b).

    A device-mapper COW file is one with the snapshot header, or a fresh one: zeros from the start
    (dracut takes any file blkid cannot name, which would turn a stray file into a COW)."""
    if is_file:
        if size == 0:
            raise LiveError(f"the persistent overlay {path.removeprefix(OVERLAY_MNT)} is an empty file",
                            "give it a size to use it as a device-mapper overlay, e.g. truncate -s 4G <file>")
        if fstype == "DM_snapshot_cow" or (fstype is None and head_zero):
            return OverlayProbe(Found.DM_COW, path, fresh=fstype is None)
        if fstype is not None:
            return OverlayProbe(Found.FS_IMAGE, path, fstype=fstype)
        raise LiveError(f"the persistent overlay {path.removeprefix(OVERLAY_MNT)} is neither a device-mapper "
                        "COW file nor a filesystem image; it was left untouched",
                        "move it away, or choose another path with rd.live.overlay=<dev>:<path>")
    if is_dir and ovlwork_sibling:
        return OverlayProbe(Found.OVERLAYFS_DIR, path)
    if device_mode:
        return OverlayProbe(Found.DEVICE_TOP, f"{OVERLAY_MNT}/overlay", fresh=not top_exists)
    return OverlayProbe(Found.NOTHING, path)


SNAPSHOT_WARN_PERCENT = 90


def check_snapshot_usage(usage: SnapshotUsage, overlay: str, writable: bool) -> str | None:
    """Refuse a persistent snapshot the kernel cannot use, or one too full to boot; else a warning or None.

    Full means less free room than 1 % of the file or 1 MiB: the first writes of the boot would
    overflow it, and the kernel then fails every write with EIO ("Overflow"). Read-only use is fine."""
    if usage.state == "Invalid":  # a 'P' snapshot that overflowed, or an I/O error: its data is gone
        raise LiveError(f"the persistent overlay {overlay} was invalidated by the kernel "
                        "(it overflowed or hit an I/O error) and cannot be read back",
                        "boot with rd.live.overlay.reset to start it afresh")
    if usage.state and (writable or usage.state != "Overflow"):
        raise LiveError(f"the persistent overlay {overlay} is unusable: the kernel reports it as '{usage.state}'",
                        "boot with rd.live.overlay.reset to start it afresh")
    if usage.state:
        return None
    mib = f"{usage.allocated // 2048} of {usage.total // 2048} MiB used"
    if writable and usage.total - usage.allocated < max(2048, usage.total // 100):
        raise LiveError(f"the persistent overlay {overlay} is full ({mib}): this boot could not write to it",
                        "boot with rd.live.overlay.readonly to reach your files and copy them off, "
                        "then with rd.live.overlay.reset to start the overlay afresh")
    if writable and usage.percent >= SNAPSHOT_WARN_PERCENT:
        return (f"the persistent overlay {overlay} is {usage.percent}% full ({mib}); when it is full, "
                "writes fail: copy your files off and reset it (rd.live.overlay.reset)")
    return None


IDENTITY_SUFFIX = ".pylive-base"


def identity_path(probe: OverlayProbe) -> str:
    """Where pylive records which base image a persistent overlay belongs to: beside the overlay."""
    return probe.path.rstrip("/") + IDENTITY_SUFFIX


def plan_identity(probe: OverlayProbe, intent: Intent, identity: str, record: str | None) -> tuple[Step, ...]:
    """Never apply an overlay made for another base image (e.g. a stick updated to a new ISO).

    The record is written the first time pylive uses the overlay; a reset starts the overlay
    afresh and records the new base. In read-only mode nothing is written."""
    line = f"{identity}\n"
    if record is not None and record.strip() != identity and not intent.reset:
        raise LiveError(
            f"the persistent overlay {probe.path.removeprefix(OVERLAY_MNT)} was made for another live image "
            f"(recorded base {record.strip()}, this boot's base {identity})",
            "boot the image it belongs to, or add rd.live.overlay.reset to start the overlay afresh",
        )
    if intent.readonly or (record is not None and record.strip() == identity):
        return ()
    return (WriteFile(identity_path(probe), line),)


def plan_reset(probe: OverlayProbe, intent: Intent) -> tuple[Step, ...]:
    """rd.live.overlay.reset: wipe the COW header (dracut: dd if=/dev/zero bs=64k count=1) or empty the
    upper directory. It runs before the identity record is written: a reset cut short by power loss
    leaves the old record, and the next boot refuses the overlay instead of trusting it."""
    if not intent.reset:
        return ()
    if probe.found is Found.DM_COW:
        return (WipeHeader(probe.path, 64 * 1024),)
    if probe.found in (Found.OVERLAYFS_DIR, Found.DEVICE_TOP) and not probe.fresh:
        return (EmptyDir(probe.path),)
    return ()  # a filesystem image is emptied once mounted (plan_root)


def plan_missing_overlay_notice(opts: LiveOptions, intent: Intent) -> tuple[Step, ...]:
    """dracut asks for Enter when requested persistence is missing, unless told not to."""
    text = (f"Unable to find a persistent overlay ({intent.persistent}); using a temporary one. "
            "All root filesystem changes will be lost on shutdown.")
    wait = not (opts.no_prompt or opts.rhgb or opts.splash)
    return (Notice(text, wait_for_enter=wait),)

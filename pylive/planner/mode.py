"""The decision table (dracut-live.md §4.9): which overlay mode the root is built in (pure)."""

from __future__ import annotations

import enum

from pylive.errors import LiveError
from pylive.options import LiveOptions, Percent
from pylive.planner.image import ImageKind, RootImage
from pylive.planner.intent import Intent
from pylive.planner.overlay import Found, OverlayProbe
from pylive.planner.paths import LIVE
from pylive.planner.ram import copies_fsimg
from pylive.record import field, record


class Mode(enum.Enum):
    DM_SNAPSHOT_TEMP = "temporary device-mapper snapshot"
    DM_THIN_TEMP = "temporary dm-thin snapshot"
    DM_LINEAR_RW = "writable linear device (no overlay)"
    DM_SNAPSHOT_PERSISTENT = "persistent device-mapper snapshot"
    DM_SNAPSHOT_PERSISTENT_RO = "persistent device-mapper snapshot, read-only, under a temporary one"
    OVERLAYFS_TEMP = "temporary OverlayFS"
    OVERLAYFS_PERSISTENT = "persistent OverlayFS"
    OVERLAYFS_PERSISTENT_RO = "persistent OverlayFS, read-only, under a temporary upper"



@record
class Decision:
    mode: Mode
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())


def choose_mode(opts: LiveOptions, intent: Intent, image: RootImage, probe: OverlayProbe | None,
                overlayfs_available: bool = True) -> Decision:
    """The decision table (dracut-live.md §4.9), with the fixes documented in README.md."""
    why: list[str] = []
    warn: list[str] = []
    writable_base = (
        (image.kind is ImageKind.UNCOMPRESSED and opts.live_ram and not intent.overlayfs)
        or opts.writable_fsimg or intent.no_overlay
    )
    if probe is not None and probe.found is not Found.NOTHING:
        return _persistent_decision(intent, image, probe, overlayfs_available)
    if probe is not None:
        why.append(f"persistent overlay {intent.persistent} not found: a temporary overlay is used")
    if writable_base and not intent.readonly:
        return _writable_base_decision(opts, intent, image, why, warn)
    if image.kind is ImageKind.FLATTENED:
        why.append("the squashfs is the root itself (flattened): OverlayFS is required")
        if not overlayfs_available:
            raise LiveError("OverlayFS is required but not available", "include the overlay kernel module")
        if intent.thin:
            warn.append("rd.live.overlay.thin is ignored: a flattened image needs OverlayFS")
        return Decision(Mode.OVERLAYFS_TEMP, tuple(why), tuple(warn))
    if intent.overlayfs:
        if overlayfs_available:
            why.append("OverlayFS requested (rd.live.overlay.overlayfs / rd.overlay)")
            return Decision(Mode.OVERLAYFS_TEMP, tuple(why), tuple(warn))
        warn.append("OverlayFS is not available; using a temporary device-mapper overlay")
    if intent.thin:
        why.append("rd.live.overlay.thin: a dm-thin pool over sparse files in RAM")
        return Decision(Mode.DM_THIN_TEMP, tuple(why), tuple(warn))
    why.append("no overlay option: a temporary snapshot over a sparse file in RAM (dracut's default)")
    return Decision(Mode.DM_SNAPSHOT_TEMP, tuple(why), tuple(warn))


def _persistent_decision(intent: Intent, image: RootImage, probe: OverlayProbe,
                         overlayfs_available: bool) -> Decision:
    """choose_mode when the persistent overlay was found: its kind decides between DM and OverlayFS."""
    why = [f"persistent overlay {intent.persistent}: found {probe.found.value} at {probe.path}"]
    warn: list[str] = []
    if probe.found is Found.DM_COW:
        if image.kind is ImageKind.FLATTENED:
            raise LiveError(f"the persistent overlay {probe.path} is a device-mapper COW file, but "
                            f"{image.fsimg.removeprefix(LIVE)} is a flattened image that needs OverlayFS",
                            "use an OverlayFS overlay directory, or boot without rd.live.overlay")
        if intent.overlayfs:
            warn.append("OverlayFS is not used: the persistent overlay found is a device-mapper COW file")
        if intent.thin:
            warn.append("rd.live.overlay.thin is ignored: a persistent overlay was found")
        if intent.readonly and probe.fresh:  # a never-used COW has no header to load read-only
            why.append("it was never used (no snapshot header): nothing to apply read-only, "
                       "so a temporary snapshot is used")
            return Decision(Mode.DM_SNAPSHOT_TEMP, tuple(why), tuple(warn))
        return Decision(Mode.DM_SNAPSHOT_PERSISTENT_RO if intent.readonly else Mode.DM_SNAPSHOT_PERSISTENT,
                        tuple(why), tuple(warn))
    if not overlayfs_available:
        raise LiveError("OverlayFS is required but not available", "include the overlay kernel module")
    if intent.readonly and probe.fresh:  # device mode, overlay/ not made yet: nothing to stack
        why.append("overlay/ does not exist yet: nothing to apply read-only, so a temporary OverlayFS is used")
        return Decision(Mode.OVERLAYFS_TEMP, tuple(why), tuple(warn))
    return Decision(Mode.OVERLAYFS_PERSISTENT_RO if intent.readonly else Mode.OVERLAYFS_PERSISTENT,
                    tuple(why), tuple(warn))


def _writable_base_decision(opts: LiveOptions, intent: Intent, image: RootImage, why: list[str],
                            warn: list[str]) -> Decision:
    """choose_mode when the root writes straight into its image (no overlay at all)."""
    if intent.no_overlay:
        why.append("rd.live.overlay=none: the root writes straight into the image")
    elif opts.writable_fsimg:
        why.append("rd.writable.fsimg: the root image is copied to RAM and used writable")
    else:
        why.append("rd.live.ram with an uncompressed image: the RAM copy is used writable")
    if image.kind is ImageKind.FLATTENED:
        raise LiveError(f"{image.fsimg.removeprefix(LIVE)} is a flattened squashfs and cannot be written to",
                        "drop rd.live.overlay=none / rd.writable.fsimg, or use an image with LiveOS/rootfs.img")
    if intent.no_overlay and not copies_fsimg(opts, image):  # straight into the image on the medium
        where = (image.squashfs or image.fsimg).removeprefix(LIVE)
        if image.kind is not ImageKind.UNCOMPRESSED:
            raise LiveError(f"rd.live.overlay=none writes straight into the root image, but it is inside {where}, "
                            "which cannot be written to",
                            "use an uncompressed LiveOS/rootfs.img on a writable medium, or rd.writable.fsimg "
                            "for a writable copy in RAM")
        if not opts.medium_rw:
            raise LiveError(f"rd.live.overlay=none writes straight into {where}, but the live medium is mounted "
                            "read-only", "add rw to the command line (the medium is then mounted read-write, unless "
                            "it is write-protected or needs repair)")
    return Decision(Mode.DM_LINEAR_RW, tuple(why), tuple(warn))


def cow_size_mib(opts: LiveOptions, mem_total_mib: int | None) -> int:
    size = opts.overlay_size_mib
    if isinstance(size, Percent):
        if mem_total_mib is None:
            raise LiveError(f"rd.live.overlay.size={size.value}% needs the size of RAM", "give a size in MiB")
        return size.of(mem_total_mib)
    return size

"""The boot decisions (pure): options and observed facts → plans. No I/O, nothing from linux/.

boot.py calls these phase by phase, because what the medium holds is only known once it is
mounted: wait → medium → image → persistent overlay → root. The decision table is dracut's
(../shared/reference/dracut-live.md §4.9), with its known defects fixed where a user would expect
otherwise (README, "Where pylive differs from dracut on purpose").
"""

from __future__ import annotations

import enum
import posixpath

from pylive.devspec import DeviceSpec, SpecKind, parse_device_spec
from pylive.dmtable import SnapshotUsage, linear_table, snapshot_table
from pylive.errors import CmdlineError, ImageNotFound, LiveError, NotSupportedYet, shown
from pylive.options import FALSE_WORDS, LiveOptions, Percent, medium_path, parse_tmpfs_options
from pylive.plan import (
    AttachLoop,
    CheckMedia,
    CheckSnapshot,
    CopyToRam,
    CreateDm,
    CreateSparseFile,
    DetachLoop,
    DmMessage,
    DmTarget,
    EmptyDir,
    FindFile,
    LoadModules,
    MakeDir,
    MarkDone,
    Mount,
    Notice,
    Ref,
    ReleaseMedium,
    ResizeTmpfs,
    SelectMedium,
    SizeOf,
    Source,
    Step,
    Symlink,
    TriggerUevent,
    Unmount,
    WaitForDevice,
    WipeHeader,
    WriteFile,
)
from pylive.probe import unescape_udev
from pylive.ramcopy import MIB, Room
from pylive.record import field, record

LIVE = "/run/initramfs/live"
LIVEDEV = "/run/initramfs/livedev"
SQUASHFS_MNT = "/run/initramfs/squashfs"
OVERLAY_MNT = "/run/initramfs/overlayfs"  # the persistent overlay's filesystem
TMP_COW = "/overlay"  # dmsquash-live-root.sh: the sparse COW file lives in the initramfs root
ROOTFSBASE = "/run/rootfsbase"
THIN_DIR = "/run/initramfs/thin-overlay"
TMPFS_UPPER = "/run/initramfs/overlay"  # dracut-ng: the upper layer's own tmpfs (rd.overlay=tmpfs:…)
LIVEDEV_REF = Ref("livedev")
SQUASH_LOOP = Ref("squashfs-loop")
BASE_LOOP = Ref("base-loop")
COW_LOOP = Ref("cow-loop")
OVERLAY_DEV = Ref("overlay-dev")
LIVE_RW = Ref("live-rw")
LIVE_RO = Ref("live-ro")
LIVE_BASE = Ref("live-base")
THIN_META = Ref("thin-meta-loop")
THIN_DATA = Ref("thin-data-loop")
THIN_POOL = Ref("live-overlay-pool")
SQUASH_TYPES = ("squashfs", "erofs")
INNER_ROOTFS = posixpath.join(SQUASHFS_MNT, "LiveOS/rootfs.img")  # fixed inside the squashfs (not rd.live.dir)
INNER_EXT3FS = posixpath.join(SQUASHFS_MNT, "LiveOS/ext3fs.img")  # 059's legacy name
ISOSCAN = "/run/initramfs/isoscan"  # iso-scan: the filesystem that holds the ISO file (dracut's path)
ISOSCANDEV = "/run/initramfs/isoscandev"  # iso-scan: → that filesystem's device
ISOSCAN_DEV = Ref("isoscandev")
ISO_LOOP = Ref("iso-loop")
LIVE_PART = Ref("live-partition")  # root=live:<disk image>: the partition that holds the live directory
FILE_KINDS = (SpecKind.ISO_FILE, SpecKind.IMG_FILE)
RAM_DIR = "/run/initramfs"  # where the RAM copies go (on /run's tmpfs)
SQUASHED_RAM = "/run/initramfs/squashed.img"  # rd.live.ram of a squashfs image
ROOTFS_RAM = "/run/initramfs/rootfs.img"  # rd.live.ram of an uncompressed rootfs.img
FSIMG_RAM = "/run/initramfs/fsimg/rootfs.img"  # rd.writable.fsimg
ISO_TYPES = ("iso9660", "udf")  # media that can carry an implanted MD5


class Mode(enum.Enum):
    DM_SNAPSHOT_TEMP = "temporary device-mapper snapshot"
    DM_THIN_TEMP = "temporary dm-thin snapshot"
    DM_LINEAR_RW = "writable linear device (no overlay)"
    DM_SNAPSHOT_PERSISTENT = "persistent device-mapper snapshot"
    DM_SNAPSHOT_PERSISTENT_RO = "persistent device-mapper snapshot, read-only, under a temporary one"
    OVERLAYFS_TEMP = "temporary OverlayFS"
    OVERLAYFS_PERSISTENT = "persistent OverlayFS"
    OVERLAYFS_PERSISTENT_RO = "persistent OverlayFS, read-only, under a temporary upper"


def copies_squashfs(opts: LiveOptions) -> bool:
    """rd.live.ram copies the squashfs image to RAM, unless rd.writable.fsimg copies the root image out of
    it: that copy is all the root needs, so the squashfs is read from the medium once, and the medium
    released after (dracut copies both, and holds both in RAM)."""
    return opts.live_ram and not opts.writable_fsimg


def copies_fsimg(opts: LiveOptions, image: RootImage) -> bool:
    """Whether plan_root copies the root filesystem image into RAM."""
    if image.kind is ImageKind.FLATTENED:
        return False
    return opts.writable_fsimg or (image.kind is ImageKind.UNCOMPRESSED and opts.live_ram)


# --- what the command line asks for --------------------------------------------------------------


@record
class OverlaySpec:
    """A persistent overlay location: `<devspec>[:<pathspec>|:auto]` (pathspec None = the default name)."""

    device: DeviceSpec
    path: str | None
    device_mode: bool = False  # dracut-ng rd.overlay=<dev>: overlay/ and ovlwork/ at the top as a fallback

    def __str__(self) -> str:
        return f"{self.device}:{self.path}" if self.path else str(self.device)


@record
class Intent:
    """The command line reconciled across dracut 059 and dracut-ng names (pure, from LiveOptions)."""

    overlayfs: bool = False
    tmpfs_options: tuple[str, ...] = ()
    persistent: OverlaySpec | None = None
    no_overlay: bool = False
    reset: bool = False
    readonly: bool = False
    thin: bool = False
    warnings: tuple[str, ...] = ()


def split_overlay_spec(option: str, value: str) -> OverlaySpec:
    """`<devspec>[:<pathspec>|:auto]`. dracut splits the device at the first ':' (so by-path names
    cannot be used); pylive splits a /dev/ path at the last ':/' or ':auto', and other device specs
    at the first ':'. A relative pathspec is made absolute, as dracut-ng does."""
    dev, path = value, None
    if value.endswith(":auto"):
        dev = value[: -len(":auto")]
    elif value.startswith("/dev/"):
        i = value.rfind(":/")
        if i > 0:
            dev, path = value[:i], value[i + 1 :]
    elif ":" in value:
        dev, path = value.split(":", 1)
        path = "/" + path.lstrip("/") if path else None
    spec = parse_device_spec(dev)
    if spec is None or not spec.is_block_device:
        raise CmdlineError(option, value, "is not a device for a persistent overlay",
                           f"{option}=LABEL=<label>, {option}=UUID=<uuid>:/LiveOS/overlay or {option}=none")
    if path is not None:
        path = "/" + medium_path(option, value, path, f"{option}=LABEL=<label>:/LiveOS/overlay")
    return OverlaySpec(spec, path)


def _rd_overlay_intent(opts: LiveOptions, ng: str,
                       warnings: list[str]) -> tuple[bool, tuple[str, ...], OverlaySpec | None, bool]:
    """What rd.overlay=<ng> (dracut-ng) asks for: (overlayfs, tmpfs options, persistent overlay, no overlay)."""
    overlayfs, no_overlay = opts.overlayfs, False
    tmpfs_options: tuple[str, ...] = ()
    persistent: OverlaySpec | None = None
    low = ng.lower()
    if ng == "" or low in ("1", "yes", "on", "true"):
        overlayfs = True
    elif low in FALSE_WORDS:
        if opts.overlayfs:
            warnings.append(f"rd.overlay={ng} and rd.live.overlay.overlayfs contradict each other: rd.overlay wins")
        overlayfs = False
    elif low == "none":  # dracut-ng turns OverlayFS *on* here (a bug); the man page means no overlay
        no_overlay = True
    elif low == "tmpfs" or low.startswith("tmpfs:"):
        overlayfs = True
        tmpfs_options = parse_tmpfs_options(ng)
    else:
        spec = split_overlay_spec("rd.overlay", ng)
        persistent = OverlaySpec(spec.device, spec.path, device_mode=spec.path is None)
        overlayfs = True
    if opts.overlay is not None and (persistent or no_overlay):
        warnings.append(f"rd.live.overlay={shown(opts.overlay)} is ignored: rd.overlay={shown(ng)} wins")
    return overlayfs, tmpfs_options, persistent, no_overlay


def resolve_intent(opts: LiveOptions) -> Intent:
    """Which overlay the command line asks for, and the warnings when its options disagree."""
    warnings: list[str] = []
    overlayfs, no_overlay = opts.overlayfs, False
    tmpfs_options: tuple[str, ...] = ()
    persistent: OverlaySpec | None = None
    ng = opts.rd_overlay
    if ng is not None:
        overlayfs, tmpfs_options, persistent, no_overlay = _rd_overlay_intent(opts, ng, warnings)
    if ng is None or (not persistent and not no_overlay and opts.overlay is not None):
        old = opts.overlay
        if old is not None and old.lower() == "none":
            no_overlay = True
        elif old:
            persistent = split_overlay_spec("rd.live.overlay", old)
        elif old == "":
            warnings.append("rd.live.overlay= is empty and is ignored")
    reset = opts.overlay_reset or opts.rd_overlay_reset
    readonly = opts.overlay_readonly or opts.rd_overlay_readonly
    thin = opts.overlay_thin
    if no_overlay and readonly:
        warnings.append("rd.live.overlay.readonly and an overlay of 'none' contradict each other: "
                        "readonly wins (a temporary overlay over the read-only image)")
        no_overlay = False
    if reset and readonly:
        warnings.append("rd.live.overlay.reset and rd.live.overlay.readonly contradict each other: "
                        "readonly wins and nothing is reset")
        reset = False
    if (reset or readonly) and persistent is None:
        for name, on in (("reset", reset), ("readonly", readonly)):
            if on:
                warnings.append(f"rd.live.overlay.{name} has no effect "
                                "without a persistent overlay (rd.live.overlay=…)")
        reset = readonly = False
    if thin and (overlayfs or no_overlay):
        warnings.append("rd.live.overlay.thin is ignored: "
                        + ("OverlayFS is not a device-mapper overlay" if overlayfs else "there is no overlay"))
        thin = False
    if opts.writable_fsimg and overlayfs and persistent is None:
        warnings.append("rd.writable.fsimg gives a writable root image of its own: OverlayFS is not used")
        overlayfs = False
    return Intent(overlayfs, tmpfs_options, persistent, no_overlay, reset, readonly, thin, tuple(warnings))


# --- what the medium holds ---------------------------------------------------------------------


class ImageKind(enum.Enum):
    INNER_ROOTFS = "LiveOS/rootfs.img inside the squashfs"
    INNER_EXT3FS = "LiveOS/ext3fs.img inside the squashfs (legacy)"
    FLATTENED = "the squashfs is the root filesystem itself"
    UNCOMPRESSED = "an uncompressed rootfs.img on the medium"
    DEVICE_IMAGE = "the live device is itself a squashfs/erofs image"


@record
class MediumImages:
    """What the mounted medium offers under <rd.live.dir>."""

    squashfs: str | None
    rootfs: str | None
    searched: tuple[str, ...]


def medium_candidates(opts: LiveOptions) -> tuple[str, str, str]:
    """Where the images may be on the mounted medium: <dir>/<squashimg>, <dir>/rootfs.img, <dir>/ext3fs.img."""
    base = posixpath.join(LIVE, opts.live_dir.strip("/"))
    return (posixpath.join(base, opts.squash_image), posixpath.join(base, "rootfs.img"),
            posixpath.join(base, "ext3fs.img"))


def find_medium_images(opts: LiveOptions, exists: frozenset[str]) -> MediumImages:
    """Which images the medium holds, given the set of paths that exist on it."""
    squash, rootfs, ext3 = medium_candidates(opts)
    return MediumImages(
        squash if squash in exists else None,
        rootfs if rootfs in exists else ext3 if ext3 in exists else None,
        (squash, rootfs),
    )


@record
class SquashContents:
    rootfs_img: bool  # LiveOS/rootfs.img inside
    has_liveos: bool
    flattened: bool  # /usr or /ostree: the squashfs is the root itself
    ext3fs_img: bool = False


@record
class RootImage:
    kind: ImageKind
    fsimg: str  # the root filesystem image (a file, or the squashfs loop for flattened images)
    squashfs: str | None = None  # the squashfs image file, when there is one


def classify_squashfs(squash_path: str, contents: SquashContents) -> RootImage:
    """What is inside the mounted squashfs (dmsquash-live-root.sh: /LiveOS → rootfs.img; /usr → flattened)."""
    if contents.rootfs_img:
        return RootImage(ImageKind.INNER_ROOTFS, INNER_ROOTFS, squash_path)
    if contents.ext3fs_img:
        return RootImage(ImageKind.INNER_EXT3FS, INNER_EXT3FS, squash_path)
    if contents.flattened:
        return RootImage(ImageKind.FLATTENED, squash_path, squash_path)
    where = squash_path.removeprefix(LIVE) or squash_path
    if contents.has_liveos:  # dracut sets nothing up here and waits until a timeout
        raise ImageNotFound(where, ["/LiveOS/rootfs.img", "/LiveOS/ext3fs.img"],
                            "the squashfs has a LiveOS directory but no root image in it")
    raise ImageNotFound(where, ["/LiveOS/rootfs.img", "/usr", "/ostree"],
                        "the squashfs must hold LiveOS/rootfs.img, or be a root tree itself")


# --- what a persistent overlay location holds ------------------------------------------------------


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


def overlay_path(opts: LiveOptions, spec: OverlaySpec, live_label: str, live_uuid: str) -> str:
    """The path on the overlay device: the pathspec, or /<rd.live.dir>/overlay-<LABEL>-<UUID> of the medium."""
    return spec.path or f"/{opts.live_dir.strip('/')}/overlay-{live_label}-{live_uuid}"


# --- the decision ------------------------------------------------------------------------------


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
                            "read-only", "add rw to the command line (the medium is then mounted read-write)")
    return Decision(Mode.DM_LINEAR_RW, tuple(why), tuple(warn))


def cow_size_mib(opts: LiveOptions, mem_total_mib: int | None) -> int:
    size = opts.overlay_size_mib
    if isinstance(size, Percent):
        if mem_total_mib is None:
            raise LiveError(f"rd.live.overlay.size={size.value}% needs the size of RAM", "give a size in MiB")
        return size.of(mem_total_mib)
    return size


# --- plans -------------------------------------------------------------------------------------


def plan_modules() -> tuple[Step, ...]:
    return (LoadModules(("loop", "squashfs", "erofs", "dm_mod", "dm_snapshot")),)


def plan_wait(opts: LiveOptions) -> tuple[Step, ...]:
    """Wait for the medium named on root= (or find it: iso-scan, a file in the initramfs) → LIVEDEV_REF."""
    assert opts.spec is not None
    if opts.overlay_crypt is not None:
        raise NotSupportedYet(f"rd.overlay.crypt={shown(opts.overlay_crypt)} (an encrypted overlay)")
    if opts.iso_scan_filename is not None:
        return plan_iso_scan(opts, parse_iso_scan(opts.iso_scan_filename))
    if opts.spec.kind in FILE_KINDS:
        return plan_live_file(opts)
    path = opts.spec.udev_path()
    if path is None:
        raise NotSupportedYet(f"root=live:{opts.spec} ({opts.spec.kind.value})")
    return (WaitForDevice(str(opts.spec), path, opts.retry_s, LIVEDEV_REF),)


# --- iso-scan/filename and root=live:<file> ---------------------------------------------------------


@record
class IsoScan:
    """iso-scan/filename=[<devspec>:]<path>: the ISO file, and the one device to look on (pylive)."""

    path: str  # from the top of the filesystem that holds it, with a leading "/"
    device: DeviceSpec | None = None


def parse_iso_scan(value: str) -> IsoScan:
    """`/isos/x.iso` (dracut: looked for on every filesystem), or pylive's `LABEL=data:/isos/x.iso`,
    `UUID=…:…`, `PARTUUID=…:…`, `PARTLABEL=…:…`, `/dev/…:…` (only that filesystem is looked at).
    The device part ends at the first ':/' (the last one for /dev/ paths, which may hold ':'), or
    else at the first ':'."""
    example = "iso-scan/filename=/isos/Fedora-Live.iso or iso-scan/filename=LABEL=data:/isos/Fedora-Live.iso"
    text, device = value.strip(), None
    if text.startswith(("LABEL=", "CDLABEL=", "UUID=", "PARTUUID=", "PARTLABEL=", "/dev/")):
        at = text.rfind(":/") if text.startswith("/dev/") else text.find(":/")
        at = at if at > 0 else (text.rfind(":") if text.startswith("/dev/") else text.find(":"))
        if at <= 0:
            raise CmdlineError("iso-scan/filename", value, "names a device but no file on it", example)
        device = parse_device_spec(text[:at])
        if device is None or not device.is_block_device:
            raise CmdlineError("iso-scan/filename", value, f"'{shown(text[:at])}' is not a device", example)
        text = text[at + 1 :]
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        raise CmdlineError("iso-scan/filename", value, "names no file", example)
    if ".." in parts:
        raise CmdlineError("iso-scan/filename", value, "must not leave the filesystem that holds it ('..')", example)
    return IsoScan("/" + "/".join(parts), device)


def spec_identity(spec: DeviceSpec) -> tuple[tuple[str, ...], str] | None:
    """(labels, uuid) that a filesystem named by root= must carry, when its superblock can tell."""
    if spec.kind in (SpecKind.LABEL, SpecKind.CDLABEL):
        return (spec.value,), ""
    if spec.kind is SpecKind.UUID:
        return (), spec.value
    if spec.kind is SpecKind.PATH and spec.value.startswith("/dev/disk/by-label/"):
        return (unescape_udev(spec.value.removeprefix("/dev/disk/by-label/")),), ""
    if spec.kind is SpecKind.PATH and spec.value.startswith("/dev/disk/by-uuid/"):
        return (), spec.value.removeprefix("/dev/disk/by-uuid/")
    return None  # PARTUUID, PARTLABEL, other /dev paths: udev names them


def plan_iso_scan(opts: LiveOptions, scan: IsoScan) -> tuple[Step, ...]:
    """Find the ISO file on the disks (read-only), attach it, and take the live medium from it.

    dracut-059's iso-scan then waits for udev to name the loop device by its label, which Linux
    5.19 to 6.15 may never make it do (README, "iso-scan"). pylive reads the label off the loop
    device's own superblock instead, and tells udev about the device only for the booted system.
    """
    spec = opts.spec
    assert spec is not None and opts.iso_scan_filename is not None
    what = f"iso-scan/filename={opts.iso_scan_filename}"
    if spec.kind in FILE_KINDS:
        raise CmdlineError("iso-scan/filename", opts.iso_scan_filename,
                           f"and root=live:{spec} both name a file; root= names the ISO's label",
                           "root=live:CDLABEL=<the ISO's label>")
    if not spec.is_block_device:
        raise NotSupportedYet(f"root=live:{spec} ({spec.kind.value})")
    device = scan.device.udev_path() if scan.device is not None else None
    steps: list[Step] = [
        FindFile(what, (scan.path,), ISOSCAN, opts.retry_s, ISOSCAN_DEV, device=device),
        Symlink(ISOSCAN_DEV, ISOSCANDEV),
        AttachLoop(ISOSCAN + scan.path, True, ISO_LOOP, partscan=True),
        TriggerUevent(ISO_LOOP),
    ]
    identity = spec_identity(spec)
    if identity is not None:
        steps.append(SelectMedium(str(spec), identity[0], identity[1], ISO_LOOP, LIVEDEV_REF, what))
    else:  # udev names it (PARTUUID, …): it has just been told about the loop device and its partitions
        path = spec.udev_path()
        assert path is not None
        steps.append(WaitForDevice(str(spec), path, min(opts.retry_s, 20), LIVEDEV_REF))
    return tuple(steps)


def plan_live_file(opts: LiveOptions) -> tuple[Step, ...]:
    """root=live:/path.iso or /path.img, a file inside the initramfs: attached read-only, with its
    partitions (a disk image). The loop device is the live device; boot.py then sees whether it
    holds a filesystem, a squashfs/EROFS image, or partitions (plan_image_partition)."""
    assert opts.spec is not None
    return (AttachLoop(opts.spec.value, True, LIVEDEV_REF, partscan=True), TriggerUevent(LIVEDEV_REF))


def plan_image_partition(opts: LiveOptions) -> tuple[Step, ...]:
    """A disk image without a filesystem of its own: the medium is the first partition (by number)
    whose filesystem holds the live directory's images; it is left mounted on LIVE."""
    assert opts.spec is not None
    paths = tuple(p.removeprefix(LIVE) for p in medium_candidates(opts)[:2])  # not 059's legacy ext3fs.img
    return (FindFile(f"root=live:{opts.spec}", paths, LIVE, 0, LIVE_PART, within=LIVEDEV_REF),)


def plan_file_is_root() -> tuple[Step, ...]:
    """root=live:/path.img holding a root tree rather than the live directory: dracut uses the image
    as the root filesystem itself; it is unmounted from LIVE and attached as the base (plan_root)."""
    return (Unmount(LIVE),)


def plan_medium(opts: LiveOptions, medium_fstype: str | None, device: Ref = LIVEDEV_REF, *,
                mounted: bool = False, check_device: str | None = None,
                check_fstype: str | None = None) -> tuple[Step, ...]:
    """Check (rd.live.check) and mount the medium; a squashfs/erofs medium is itself the image and is
    not mounted.

    /run/initramfs/livedev names root='s udev path, or the device itself when pylive found it
    (iso-scan, a file in the initramfs); `mounted`: a search already left it on LIVE. check_device:
    the whole disk to check instead of the medium's partition, when that disk is the ISO image (a
    hybrid ISO written to a USB stick), as dracut's get_check_dev does."""
    assert opts.spec is not None
    found = opts.iso_scan_filename is not None or opts.spec.kind in FILE_KINDS
    target: Source = device if found else opts.spec.udev_path() or str(opts.spec)
    steps: list[Step] = []
    if opts.check:
        fstype = check_fstype if check_device else medium_fstype
        if fstype in ISO_TYPES:
            steps.append(CheckMedia(check_device or device))
        else:
            steps.append(Notice(f"rd.live.check: the live medium {opts.spec} is {fstype or 'of an unknown type'}, "
                                "not an ISO image: it carries no implanted MD5 and is not checked"))
    steps += [Symlink(target, LIVEDEV), MakeDir(LIVE)]
    if medium_fstype in SQUASH_TYPES:
        return tuple(steps)  # the device is the image: plan_squashfs attaches and mounts it
    if medium_fstype == "ntfs":
        raise NotSupportedYet("an NTFS live medium")
    if not mounted:
        steps.append(Mount(device, LIVE, medium_fstype or "auto", ("rw",) if opts.medium_rw else ("ro",)))
    return tuple(steps)


def plan_squashfs(opts: LiveOptions, images: MediumImages, image_bytes: int | None = None,
                  mem_total_mib: int | None = None, room: Room | None = None) -> tuple[Step, ...]:
    """Copy (rd.live.ram), attach and mount the squashfs image."""
    if images.squashfs is None:
        if images.rootfs is not None:
            return ()  # an uncompressed image: nothing to mount first
        raise ImageNotFound(
            f"the live medium {opts.spec}", [p.removeprefix(LIVE) or "/" for p in images.searched],
            f"check rd.live.dir={opts.live_dir} and rd.live.squashimg={opts.squash_image}",
        )
    steps: list[Step] = []
    source: str = images.squashfs
    if copies_squashfs(opts):
        steps += plan_copy_to_ram(opts, "rd.live.ram", images.squashfs, SQUASHED_RAM, image_bytes=image_bytes,
                                  mem_total_mib=mem_total_mib, room=room)
        source = SQUASHED_RAM
    return (
        *steps,
        AttachLoop(source, True, SQUASH_LOOP),
        MakeDir(SQUASHFS_MNT),
        Mount(SQUASH_LOOP, SQUASHFS_MNT, "auto", ("ro",)),  # squashfs, or EROFS (dracut-ng 103)
    )


def plan_copy_to_ram(opts: LiveOptions, option: str, src: str, dest: str, *, image_bytes: int | None,
                     mem_total_mib: int | None, room: Room | None = None, in_ram_mib: int = 0) -> tuple[Step, ...]:
    """A RAM copy: refused up front when the image cannot fit beside rd.minmem (dracut-ng's check_live_ram,
    here for every copy: the squashfs, an uncompressed rootfs.img and rd.writable.fsimg's), and /run grown
    when it is too small. in_ram_mib: what an earlier copy of this boot already holds."""
    minmem = opts.minmem_mib.of(mem_total_mib or 0) if isinstance(opts.minmem_mib, Percent) else opts.minmem_mib
    image_mib = -(-image_bytes // MIB) if image_bytes is not None else None
    if image_mib is not None and mem_total_mib is not None and mem_total_mib - in_ram_mib - image_mib < minmem:
        held = f", {in_ram_mib} MiB of it holding the squashfs copy" if in_ram_mib else ""
        raise LiveError(
            f"{option}: {src.removeprefix(LIVE)} ({image_mib} MiB) does not fit in RAM "
            f"({mem_total_mib} MiB{held}, of which rd.minmem={minmem} MiB must stay free)",
            f"boot without {option}, or give the machine more memory",
        )
    steps: list[Step] = list(plan_room(option, src, image_mib, minmem, room))
    if posixpath.dirname(dest) != RAM_DIR:
        steps.append(MakeDir(posixpath.dirname(dest)))
    steps.append(CopyToRam(src, dest, option))
    return tuple(steps)


def plan_room(option: str, src: str, image_mib: int | None, minmem: int, room: Room | None) -> tuple[Step, ...]:
    """dracut-ng's rule: when the copy would leave less than rd.minmem free on /run, /run is remounted
    with size = used + image + rd.minmem (systemd's initramfs /run is 20% of RAM, too small for most
    images: dracutdevs/dracut#2550). A filesystem that is not a tmpfs cannot grow."""
    if room is None or image_mib is None or room.avail_mib - image_mib >= minmem:
        return ()
    if room.fstype != "tmpfs":
        if room.avail_mib >= image_mib:
            return ()
        raise LiveError(f"{option}: {room.mountpoint} ({room.fstype}) has {room.avail_mib} MiB free; the copy of "
                        f"{src.removeprefix(LIVE)} needs {image_mib} MiB", f"boot without {option}")
    return (ResizeTmpfs(room.mountpoint, room.size_mib - room.avail_mib + image_mib + minmem, room.size_mib),)


def plan_root(opts: LiveOptions, intent: Intent, image: RootImage, decision: Decision, newroot: str, *,
              root_fstype: str, mem_total_mib: int | None = None, probe: OverlayProbe | None = None,
              fsimg_bytes: int | None = None, room: Room | None = None, in_ram_mib: int = 0,
              overlay_on_medium: bool = False) -> tuple[Step, ...]:
    """Build the writable root for the chosen mode, and mount it on newroot.

    fsimg_bytes, room, in_ram_mib: for the RAM copy of the root image (see plan_copy_to_ram);
    overlay_on_medium: the persistent overlay's device is the live medium (it stays mounted)."""
    mode = decision.mode
    rootflags = tuple(o for o in (opts.rootflags or "").split(",") if o)
    steps: list[Step] = []
    flattened = image.kind is ImageKind.FLATTENED
    fsimg = image.fsimg
    if copies_fsimg(opts, image):
        option, dest = ("rd.writable.fsimg", FSIMG_RAM) if opts.writable_fsimg else ("rd.live.ram", ROOTFS_RAM)
        steps += plan_copy_to_ram(opts, option, fsimg, dest, image_bytes=fsimg_bytes, mem_total_mib=mem_total_mib,
                                  room=room, in_ram_mib=in_ram_mib)
        fsimg = dest
    base: Ref = SQUASH_LOOP if flattened else BASE_LOOP
    if not flattened:
        steps.append(AttachLoop(fsimg, mode is not Mode.DM_LINEAR_RW, BASE_LOOP))
    if mode in (Mode.DM_SNAPSHOT_TEMP, Mode.DM_THIN_TEMP, Mode.DM_LINEAR_RW, Mode.DM_SNAPSHOT_PERSISTENT,
                Mode.DM_SNAPSHOT_PERSISTENT_RO):
        steps += _dm_steps(opts, intent, mode, mem_total_mib, probe)
        steps.append(CreateDm("live-base", linear_table(BASE_LOOP), True, LIVE_BASE))
        steps.append(Symlink(BASE_LOOP, "/dev/live-base"))
        steps.append(Mount("/dev/mapper/live-rw", newroot, root_fstype, rootflags))
    else:
        steps += _overlayfs_steps(opts, intent, mode, image, base, newroot=newroot, rootflags=rootflags,
                                  mem_total_mib=mem_total_mib, probe=probe)
    if image.squashfs is not None and not flattened:
        if opts.live_ram and opts.writable_fsimg:
            # the root is the copy: the squashfs on the medium is read no more, and its loop would hold the medium
            steps += [Unmount(SQUASHFS_MNT), DetachLoop(SQUASH_LOOP)]
        else:
            steps.append(Unmount(SQUASHFS_MNT, lazy=True))
    steps += plan_release(opts, overlay_on_medium,
                          mounted=any(p.startswith(LIVE + "/") for p in (image.squashfs, image.fsimg) if p))
    steps.append(MarkDone())
    return tuple(steps)


def plan_release(opts: LiveOptions, overlay_on_medium: bool, *, mounted: bool = True) -> tuple[Step, ...]:
    """rd.live.ram exists so that the medium can be removed (a DVD ejected, a stick reused): once the root
    is built from the RAM copy, the medium is unmounted (dracut leaves it mounted). A persistent overlay
    on the medium keeps it in use, and mounted, as dracut does. mounted: the medium is mounted at LIVE
    (a squashfs or EROFS device is the image itself, and never is)."""
    if not opts.live_ram:
        return ()
    if overlay_on_medium:
        return (Notice(f"rd.live.ram: the live medium stays mounted at {LIVE}: "
                       "the persistent overlay is on it, so it must not be removed"),)
    return (ReleaseMedium(LIVE, mounted),)


def _dm_steps(opts: LiveOptions, intent: Intent, mode: Mode, mem_total_mib: int | None,
              probe: OverlayProbe | None) -> list[Step]:
    if mode is Mode.DM_LINEAR_RW:
        return [CreateDm("live-rw", linear_table(BASE_LOOP), False, LIVE_RW)]
    if mode in (Mode.DM_SNAPSHOT_PERSISTENT, Mode.DM_SNAPSHOT_PERSISTENT_RO):
        assert probe is not None
        steps: list[Step] = [AttachLoop(probe.path, mode is Mode.DM_SNAPSHOT_PERSISTENT_RO, COW_LOOP)]
        steps.append(Unmount(OVERLAY_MNT, lazy=True))  # the loop device holds the file
        if mode is Mode.DM_SNAPSHOT_PERSISTENT:
            steps.append(CreateDm("live-rw", snapshot_table(BASE_LOOP, COW_LOOP), False, LIVE_RW))
            steps.append(CheckSnapshot("live-rw", probe.path.removeprefix(OVERLAY_MNT)))
            return steps
        tmp = Ref("tmp-cow-loop")
        steps += [
            CreateDm("live-ro", snapshot_table(BASE_LOOP, COW_LOOP, "P"), True, LIVE_RO),
            CheckSnapshot("live-ro", probe.path.removeprefix(OVERLAY_MNT), writable=False),
            CreateSparseFile(TMP_COW, cow_size_mib(opts, mem_total_mib)),
            AttachLoop(TMP_COW, False, tmp),
            CreateDm("live-rw", (DmTarget(0, SizeOf(BASE_LOOP), "snapshot", ("/dev/mapper/live-ro", tmp, "PO", 8)),),
                     False, LIVE_RW),
        ]
        return steps
    size = cow_size_mib(opts, mem_total_mib)
    if mode is Mode.DM_THIN_TEMP:
        data_sectors = size * 2048
        return [
            LoadModules(("dm_thin_pool",)),
            MakeDir(THIN_DIR),
            # "on tmpfs so the loop device supports TRIM": deleting files gives memory back
            CreateSparseFile(f"{THIN_DIR}/meta", max(1, size // 10)),
            CreateSparseFile(f"{THIN_DIR}/data", size),
            AttachLoop(f"{THIN_DIR}/meta", False, THIN_META),
            AttachLoop(f"{THIN_DIR}/data", False, THIN_DATA),
            CreateDm("live-overlay-pool",
                     (DmTarget(0, data_sectors, "thin-pool", (THIN_META, THIN_DATA, 1024, 1024)),), False, THIN_POOL),
            DmMessage("live-overlay-pool", "create_thin 0"),
            # dracut-ng: the thin device is as large as the overlay, so the root can be grown
            CreateDm("live-rw", (DmTarget(0, data_sectors, "thin", (THIN_POOL, 0, BASE_LOOP)),),
                     False, LIVE_RW),
        ]
    return [
        CreateSparseFile(TMP_COW, size),
        AttachLoop(TMP_COW, False, COW_LOOP),
        CreateDm("live-rw", snapshot_table(BASE_LOOP, COW_LOOP), False, LIVE_RW),
    ]


OVERLAY_IMG_MNT = "/run/initramfs/overlayfs-image"


def _persistent_dirs(probe: OverlayProbe, readonly: bool = False) -> tuple[list[Step], str, str]:
    """Steps to reach a found persistent OverlayFS layer, and its upper and work directories."""
    if probe.found is Found.FS_IMAGE:  # e.g. on a vfat stick: a filesystem image holding the dirs
        loop = Ref("overlay-image-loop")
        return ([AttachLoop(probe.path, readonly, loop), MakeDir(OVERLAY_IMG_MNT),
                 Mount(loop, OVERLAY_IMG_MNT, "auto", ("ro",) if readonly else ())],
                f"{OVERLAY_IMG_MNT}/overlayfs", f"{OVERLAY_IMG_MNT}/ovlwork")
    if probe.found is Found.DEVICE_TOP:  # dracut-ng device mode creates them
        upper, work = f"{OVERLAY_MNT}/overlay", f"{OVERLAY_MNT}/ovlwork"
        return [MakeDir(upper), MakeDir(work)], upper, work
    return [], probe.path, posixpath.join(posixpath.dirname(probe.path.rstrip("/")), "ovlwork")


def _overlayfs_steps(opts: LiveOptions, intent: Intent, mode: Mode, image: RootImage, base: Ref, *, newroot: str,
                     rootflags: tuple[str, ...], mem_total_mib: int | None,
                     probe: OverlayProbe | None) -> list[Step]:
    steps: list[Step] = [LoadModules(("overlay",)), MakeDir(ROOTFSBASE)]
    if image.kind is ImageKind.FLATTENED:
        # dracut-ng 108: a bind mount, not a second mount of the same image (dracut-ng#1384)
        steps.append(Mount(SQUASHFS_MNT, ROOTFSBASE, "none", ("bind",)))
    else:
        steps.append(Mount(base, ROOTFSBASE, "auto", ("ro",)))
    lower = ROOTFSBASE
    if mode is Mode.OVERLAYFS_PERSISTENT:
        assert probe is not None
        pre, upper, work = _persistent_dirs(probe)
        steps += pre
        if intent.reset and probe.found is Found.FS_IMAGE:  # the others are reset before the root is built
            steps.append(EmptyDir(upper))
    else:
        if mode is Mode.OVERLAYFS_PERSISTENT_RO:
            assert probe is not None
            pre, persistent_upper, _ = _persistent_dirs(probe, readonly=True)
            steps += pre
            lower = f"{persistent_upper}:{ROOTFSBASE}"
        tmpfs = intent.tmpfs_options
        if opts.overlay_size_mib != 32768 and not any(o.startswith("size=") for o in tmpfs):
            # pylive: rd.live.overlay.size sizes the OverlayFS upper too (dracut ignores it, dracut-ng#1415)
            tmpfs = (f"size={cow_size_mib(opts, mem_total_mib)}m", *tmpfs)
        if tmpfs:
            steps += [MakeDir(TMPFS_UPPER), Mount("tmpfs", TMPFS_UPPER, "tmpfs", ("mode=0755", *tmpfs))]
        root = TMPFS_UPPER if tmpfs else "/run/initramfs/overlay"
        upper, work = f"{root}/overlayfs", f"{root}/ovlwork"
        steps += [MakeDir(upper), MakeDir(work)]
    steps += [
        Symlink(upper, "/run/overlayfs"),
        Symlink(work, "/run/ovlwork"),
        Symlink(base, "/dev/live-base"),
        Mount("LiveOS_rootfs", newroot, "overlay",
              (*rootflags, f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}")),
    ]
    return steps


def plan_overlay_wait(intent: Intent, opts: LiveOptions) -> tuple[Step, ...]:
    """Look for the persistent overlay's device; its absence is not an error (a temporary overlay is used)."""
    assert intent.persistent is not None
    path = intent.persistent.device.udev_path()
    assert path is not None
    return (WaitForDevice(str(intent.persistent.device), path, min(opts.retry_s, 10), OVERLAY_DEV, optional=True),)


def plan_overlay_mount(intent: Intent, same_as_live: bool) -> tuple[Step, ...]:
    """Mount the overlay's filesystem at OVERLAY_MNT. On the live medium itself: remount it
    read-write and bind it there (dracut 057+). Read-only mode never mounts it writable."""
    rw = () if intent.readonly else ("rw",)
    if same_as_live:
        return (
            *(() if intent.readonly else (Mount(LIVEDEV_REF, LIVE, "none", ("remount", "rw")),)),
            MakeDir(OVERLAY_MNT),
            Mount(LIVE, OVERLAY_MNT, "none", ("bind",)),
        )
    return (MakeDir(OVERLAY_MNT), Mount(OVERLAY_DEV, OVERLAY_MNT, "auto", rw or ("ro",)))


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
            return OverlayProbe(Found.FS_IMAGE, path)
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

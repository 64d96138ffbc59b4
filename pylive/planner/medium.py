"""Finding and mounting the medium: the wait for root=, iso-scan, a file in the initramfs, the media
check, and the squashfs image (pure plans)."""

from __future__ import annotations

from pylive.devspec import DeviceSpec, SpecKind, parse_device_spec
from pylive.errors import CmdlineError, ImageNotFound, NotSupportedYet, shown
from pylive.options import LiveOptions
from pylive.plan import (
    AttachLoop,
    CheckMedia,
    FindFile,
    LoadModules,
    MakeDir,
    Mount,
    Notice,
    Ref,
    SelectMedium,
    Source,
    Step,
    Symlink,
    TriggerUevent,
    Unmount,
    WaitForDevice,
)
from pylive.planner.image import MediumImages, medium_candidates
from pylive.planner.paths import (
    FILE_KINDS,
    ISO_LOOP,
    ISO_TYPES,
    ISOSCAN,
    ISOSCAN_DEV,
    ISOSCANDEV,
    LIVE,
    LIVE_PART,
    LIVEDEV,
    LIVEDEV_REF,
    SQUASH_LOOP,
    SQUASH_TYPES,
    SQUASHED_RAM,
    SQUASHFS_MNT,
)
from pylive.planner.ram import copies_squashfs, plan_copy_to_ram
from pylive.probe import FsHealth, unescape_udev
from pylive.ramcopy import Room
from pylive.record import record


def plan_modules() -> tuple[Step, ...]:
    # erofs is left to the kernel, which loads it (module alias fs-erofs) at the mount of an erofs image:
    # most images are squashfs, and each module loaded costs boot time.
    return (LoadModules(("loop", "squashfs", "dm_mod", "dm_snapshot")),)


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


def medium_rw_refusal(opts: LiveOptions, dev: str, fstype: str | None, health: FsHealth) -> str | None:
    """`rw` asks for the medium read-write; one that is write-protected, or whose filesystem needs repair,
    is mounted read-only instead (the persistent overlay's rule, pylive/planner/overlay.py), said in one line."""
    if health.read_only:
        why, todo = "is write-protected", "switch off the stick's write protection to write to it"
    elif health.repair:
        why = f"needs repair: {health.repair}"
        todo = f"run {health.fsck} {dev} (or repair it on another computer), then boot again"
    else:
        return None
    return (f"the live medium {opts.spec} ({dev}, {fstype or 'unknown filesystem'}) {why}: pylive mounts it "
            f"read-only, not read-write as rw asks: {todo}")


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
                                  mem_total_mib=mem_total_mib, room=room, minmem_refuses=True)
        source = SQUASHED_RAM
    return (
        *steps,
        AttachLoop(source, True, SQUASH_LOOP),
        MakeDir(SQUASHFS_MNT),
        Mount(SQUASH_LOOP, SQUASHFS_MNT, "auto", ("ro",)),  # squashfs, or EROFS (dracut-ng 103)
    )

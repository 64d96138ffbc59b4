"""The boot: the only place that alternates planning and execution, phase by phase."""

from __future__ import annotations

import contextlib
import json
import posixpath

from pylive import planner
from pylive.devspec import SpecKind, label_suggestion
from pylive.errors import READ_ERRNOS, LiveError, MediumTruncated, MediumUnreadable, NoNetworkSupport, shown
from pylive.executor import Executor
from pylive.log import log
from pylive.options import LiveOptions
from pylive.plan import ApplyUpdates, Step
from pylive.planner import Found, ImageKind, Mode, RootImage
from pylive.planner.net import (
    UPDATES_IMG,
    NetRoot,
    as_file_root,
    image_file,
    is_network,
    parse_net_root,
    plan_network,
    plan_updates,
)
from pylive.probe import PVD_END, SQUASHFS_SUPERBLOCK, FsHealth, iso_shortfall, iso_volume_bytes, squashfs_shortfall
from pylive.ramcopy import MIB
from pylive.record import record, replace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from pylive.system import System  # annotations only: explain never loads the real system

STATE_FILE = "/run/initramfs/pylive.json"


@record
class BootResult:
    decision: planner.Decision
    image: RootImage
    probe: planner.OverlayProbe | None
    steps: tuple[Step, ...]
    handles: dict[str, str]

    @property
    def mode(self) -> Mode:
        return self.decision.mode


def run(opts: LiveOptions, system: System, newroot: str = "/sysroot", dry_run: bool = False) -> BootResult:
    """Find the medium, build the live root and mount it on `newroot`; undo everything on failure.

    dry_run (pylive explain): the steps are planned and listed; `system` then only reads.
    """
    intent = planner.resolve_intent(opts)
    for warning in intent.warnings:
        log.warning("%s", warning)
    net = parse_net_root(opts) if is_network(opts) else None
    if (net is not None or opts.live_updates) and not system.has_network_code():
        # the base binary (an initramfs without module pylive-net): one line before anything is done
        raise NoNetworkSupport(f"root={shown(opts.root or '')}" if net is not None
                               else f"live.updates={shown(opts.live_updates or '')}")
    with Executor(system, dry_run) as ex:
        try:
            result = _build(opts, intent, system, ex, newroot, net=net)
        except OSError as e:  # pylive's own reads (a superblock, a head): a read error on the medium is one line
            if e.errno not in READ_ERRNOS:
                raise
            dev = ex.livedev
            raise MediumUnreadable(e.filename or dev or "the live medium", dev, e,
                                   gone=dev is not None and ex.gone(dev)) from e
    _leave_state(system, state(opts, result))
    return result


def _build(opts: LiveOptions, intent: planner.Intent, system: System, ex: Executor, newroot: str, *,
           net: NetRoot | None) -> BootResult:
    """The boot's steps; a network root (`net`) is fetched first and then booted as `root=live:<file>`."""
    ex.run(planner.plan_modules())
    mem = system.mem_total_mib()
    net_bytes = 0
    if net is not None:  # the image becomes a file in RAM (or on the NFS export): root=live:<file> from here
        ex.run(plan_network(opts, net, mem))
        if not net.is_nfs and not ex.dry_run:
            net_bytes = system.file_size(image_file(net))
        opts = as_file_root(opts, net)
    medium = _medium(opts, system, ex)
    livedev, images, opts = medium.dev, medium.images, medium.opts
    squash_bytes = (system.file_size(images.squashfs) if images.squashfs and planner.copies_squashfs(opts)
                    else None)
    room = system.fs_space(planner.RAM_DIR) if squash_bytes is not None else None
    ex.run(planner.plan_squashfs(opts, images, squash_bytes, mem, room))
    image = _root_image(system, images)

    probe = None
    if intent.persistent is not None:
        intent, probe = _probe_overlay(opts, intent, system, ex, medium)
        # before anything is written to the overlay's device (the reset, the identity record)
        planner.check_overlay_room(intent, probe, system.fs_space(planner.OVERLAY_MNT))
        ex.run(planner.plan_overlay_writable(intent, probe, ex.handles.get(planner.OVERLAY_DEV.name) == livedev))
    decision = planner.choose_mode(opts, intent, image, probe)
    for warning in decision.warnings:
        log.warning("%s", warning)
    if planner.upper_on_run(opts, intent, decision.mode) and not ex.dry_run:
        if low := planner.run_room_warning(system.fs_space(posixpath.dirname(planner.TMPFS_UPPER))):
            log.warning("%s", low)
    if probe is not None and probe.found is Found.NOTHING:
        ex.run(planner.plan_missing_overlay_notice(opts, intent))
    elif probe is not None:
        base_file = image.squashfs or image.fsimg
        identity = system.image_identity(base_file)
        record = system.read_small(planner.identity_path(probe))
        # planned before the reset runs: a mismatch is refused before anything is wiped
        identity_steps = planner.plan_identity(probe, intent, identity, record)
        ex.run(planner.plan_reset(probe, intent))
        ex.run(identity_steps)
    root_fstype = "squashfs" if image.kind is ImageKind.FLATTENED else system.fstype(image.fsimg) or "auto"
    copies = planner.copies_fsimg(opts, image)
    ex.run(planner.plan_root(
        opts, intent, image, decision, newroot, root_fstype=root_fstype, mem_total_mib=mem, probe=probe,
        fsimg_bytes=system.file_size(image.fsimg) if copies else None,
        room=system.fs_space(planner.RAM_DIR) if copies else None,  # after the squashfs copy, if any
        in_ram_mib=-(-(squash_bytes or 0) // MIB) + -(-net_bytes // MIB),
        overlay_on_medium=probe is not None and ex.handles.get(planner.OVERLAY_DEV.name) == livedev,
    ))
    log.info("root: %s over %s, mounted on %s", decision.mode.value,
             (image.squashfs or image.fsimg).removeprefix(planner.LIVE), newroot)
    updates = plan_updates(opts, mem)
    if updates:
        ex.run((*updates, ApplyUpdates(UPDATES_IMG, newroot)))
    ex.commit()
    return BootResult(decision, image, probe, tuple(ex.done), dict(ex.handles))


def _leave_state(system: System, record: dict[str, object]) -> None:
    """The state file, after the root is built: a failure to write it (a full /run) is a warning, not a
    failed boot."""
    try:
        system.write_text(STATE_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
    except OSError as e:
        with contextlib.suppress(OSError):  # no half-written record for `pylive status` to misread
            system.unlink(STATE_FILE)
        log.warning("%s could not be written (%s): `pylive status` in the booted system will not know the overlay",
                    STATE_FILE, e.strerror or e)


def _medium(opts: LiveOptions, system: System, ex: Executor) -> Medium:
    """Find and mount the live medium; return its device, the images it offers, and its health as read
    before a writable mount (`rw`), with the options as followed (`rw` dropped when the medium must not be written)."""
    ex.run(planner.plan_wait(opts))
    livedev = ex.handles[planner.LIVEDEV_REF.name]
    medium_fstype = system.fstype(livedev)
    medium, mounted = planner.LIVEDEV_REF, False
    if medium_fstype is None and opts.spec is not None and opts.spec.kind in planner.FILE_KINDS:
        ex.run(planner.plan_image_partition(opts))  # a disk image: the medium is one of its partitions
        medium, mounted = planner.LIVE_PART, True
        livedev = ex.handles[medium.name]
        medium_fstype = system.fstype(livedev)
    log.info("live medium %s is %s (%s)", opts.spec, livedev, medium_fstype or "unknown filesystem")
    if medium_fstype in planner.ISO_TYPES and system.parent_disk(livedev) is None:
        _refuse_truncated_iso(system, livedev)
    check_device, check_fstype = _check_device(opts, system, livedev)
    health = None
    if opts.medium_rw and not mounted and medium_fstype not in planner.SQUASH_TYPES:
        # read before pylive's own writable mount: the kernel marks a FAT filesystem dirty while it is mounted so
        health = system.fs_health(livedev)
        if refusal := planner.medium_rw_refusal(opts, livedev, medium_fstype, health):
            log.warning("%s", refusal)
            opts = replace(opts, medium_rw=False)
    ex.run(planner.plan_medium(opts, medium_fstype, medium, mounted=mounted, check_device=check_device,
                               check_fstype=check_fstype))
    if medium_fstype in planner.SQUASH_TYPES:  # the device is the image itself (dracut: SQUASHED=$livedev)
        return Medium(livedev, planner.MediumImages(livedev, None, (livedev,)), health, opts)
    candidates = planner.medium_candidates(opts)
    images = planner.find_medium_images(opts, frozenset(p for p in candidates if system.exists(p)))
    if images.squashfs is not None:
        _refuse_truncated_squashfs(system, images.squashfs, livedev)
    if (images.squashfs is None and images.rootfs is None and opts.spec is not None and not mounted
            and opts.spec.kind is SpecKind.IMG_FILE and system.is_dir(posixpath.join(planner.LIVE, "usr"))):
        # dracut: an .img in the initramfs that is no squashfs is the root filesystem itself (FSIMG=$livedev)
        log.info("%s holds no %s but a root tree: it is the root filesystem itself", opts.spec, opts.live_dir)
        ex.run(planner.plan_file_is_root())
        return Medium(livedev, planner.MediumImages(None, opts.spec.value, images.searched), health, opts)
    return Medium(livedev, images, health, opts)


@record
class Medium:
    """The live medium as found and mounted (_medium)."""

    dev: str
    images: planner.MediumImages
    health: FsHealth | None  # read before a writable mount (`rw`); None: not read
    opts: LiveOptions  # as followed: `rw` dropped when the medium must not be written


def _refuse_truncated_iso(system: System, dev: str) -> None:
    """A whole device (a CD, an ISO file's loop, an ISO written to a disk without partitions) that ends before
    the end its ISO 9660 volume gives: refused before anything is mounted (reads past the end would fail with
    I/O errors at some later point). Partitions of a hybrid ISO are left alone: their sizes follow other rules."""
    head = system.read_head(dev, PVD_END)
    if iso_volume_bytes(head) is None:
        return
    have = system.device_sectors(dev) * 512
    want = iso_shortfall(head, have)
    if want is not None:
        raise MediumTruncated(f"the medium {dev}", have, want, "ISO 9660 volume")


def _refuse_truncated_squashfs(system: System, image: str, dev: str) -> None:
    """A squashfs image (a file, or the medium itself) smaller than its superblock's bytes_used."""
    want = squashfs_shortfall(system.read_head(image, SQUASHFS_SUPERBLOCK), system.file_size(image))
    if want is not None:
        where = image if image == dev else f"{image.removeprefix(planner.LIVE + '/')} on {dev}"
        raise MediumTruncated(where, system.file_size(image), want, "squashfs superblock's size")


def _check_device(opts: LiveOptions, system: System, livedev: str) -> tuple[str | None, str | None]:
    """rd.live.check on a partition of a disk that is itself the ISO image (a hybrid ISO written to a
    USB stick): check the whole disk, as dracut's get_check_dev does (the MD5 covers the whole image)."""
    if not opts.check:
        return None, None
    disk = system.parent_disk(livedev)
    if disk is None:
        return None, None
    fstype = system.fstype(disk)
    return (disk, fstype) if fstype in planner.ISO_TYPES else (None, None)


def _root_image(system: System, images: planner.MediumImages) -> RootImage:
    if images.squashfs is None:
        assert images.rootfs is not None
        return RootImage(ImageKind.UNCOMPRESSED, images.rootfs)
    mnt = planner.SQUASHFS_MNT
    contents = planner.SquashContents(
        rootfs_img=system.exists(planner.INNER_ROOTFS),
        has_liveos=system.is_dir(posixpath.join(mnt, "LiveOS")),
        flattened=system.is_dir(posixpath.join(mnt, "usr")) or system.is_dir(posixpath.join(mnt, "ostree")),
        ext3fs_img=system.exists(planner.INNER_EXT3FS),
    )
    return planner.classify_squashfs(images.squashfs, contents)


def _probe_overlay(opts: LiveOptions, intent: planner.Intent, system: System, ex: Executor,
                   medium: Medium) -> tuple[planner.Intent, planner.OverlayProbe]:
    """Find the persistent overlay: its device, then what its path holds. The intent comes back
    read-only when the device must not be written (write-protected, or a filesystem that needs repair)."""
    assert intent.persistent is not None
    ex.run(planner.plan_overlay_wait(intent, opts))
    node = ex.handles[planner.OVERLAY_DEV.name]
    if not node:
        device = intent.persistent.device
        suggestion = label_suggestion(str(device), device.udev_path() or "", system.block_devices())
        log.warning("persistent overlay device %s is not there%s", device, f": {suggestion}" if suggestion else "")
        return intent, planner.OverlayProbe(Found.NOTHING, "", device_present=False)
    if node == ex.handles.get(planner.ISOSCAN_DEV.name):
        raise LiveError(f"the persistent overlay's device {intent.persistent.device} holds the ISO file of "
                        "iso-scan/filename, which pylive mounts read-only without journal replay and never writes to",
                        "put the persistent overlay on another device")
    livedev = medium.dev
    fstype = system.fstype(node)
    # the medium mounted writable (`rw`): its health as read before that mount, not the dirty bit it set
    health = medium.health if node == livedev and medium.health is not None else system.fs_health(node)
    intent, warning = planner.check_overlay_device(intent, node, fstype, health)
    assert intent.persistent is not None
    if warning:
        log.warning("%s", warning)
    ex.run(planner.plan_overlay_mount(intent, same_as_live=node == livedev, fstype=fstype))
    label, uuid = system.label_uuid(livedev)
    path = planner.OVERLAY_MNT + planner.overlay_path(opts, intent.persistent, label, uuid)
    is_file = system.is_file(path)
    return intent, planner.classify_overlay(
        path, is_file=is_file, size=system.file_size(path) if is_file else 0,
        fstype=system.fstype(path) if is_file else None, is_dir=system.is_dir(path),
        head_zero=not any(system.read_head(path, 4096)) if is_file else False,
        ovlwork_sibling=system.is_dir(posixpath.join(posixpath.dirname(path.rstrip("/")), "ovlwork")),
        device_mode=intent.persistent.device_mode,
        top_exists=system.is_dir(f"{planner.OVERLAY_MNT}/overlay"),
    )


def state(opts: LiveOptions, result: BootResult) -> dict[str, object]:
    """The machine-readable record left for the booted system (installers, livesys, support)."""
    return {
        "spec": str(opts.spec),
        "mode": result.mode.name.lower(),
        "mode_text": result.mode.value,
        "image_file": (result.image.squashfs or result.image.fsimg or "").removeprefix(planner.LIVE),
        "why": list(result.decision.reasons),
        "image": result.image.kind.name.lower(),
        "devices": result.handles,
        "steps": [s.describe() for s in result.steps],
        "overlay_size_mib": str(opts.overlay_size_mib),
    }

"""The writable root for the chosen mode, mounted on newroot, and the release of the medium (pure)."""

from __future__ import annotations

import posixpath

from pylive.dmtable import linear_table, snapshot_table
from pylive.options import DEFAULT_OVERLAY_MIB, LiveOptions
from pylive.plan import (
    AttachLoop,
    CheckSnapshot,
    CreateDm,
    CreateSparseFile,
    DetachLoop,
    DmMessage,
    DmTarget,
    EmptyDir,
    LoadModules,
    MakeDir,
    MarkDone,
    Mount,
    Notice,
    Ref,
    ReleaseMedium,
    SizeOf,
    Step,
    Symlink,
    Unmount,
)
from pylive.planner.image import ImageKind, RootImage
from pylive.planner.intent import Intent
from pylive.planner.mode import Decision, Mode, cow_size_mib
from pylive.planner.overlay import Found, OverlayProbe
from pylive.planner.paths import (
    BASE_LOOP,
    COW_LOOP,
    FSIMG_RAM,
    ISO_LOOP,
    ISOSCAN,
    LIVE,
    LIVE_BASE,
    LIVE_RO,
    LIVE_RW,
    OVERLAY_BACKING,
    OVERLAY_IMG_MNT,
    OVERLAY_MNT,
    ROOTFS_RAM,
    ROOTFSBASE,
    SQUASH_LOOP,
    SQUASHFS_MNT,
    THIN_DATA,
    THIN_DIR,
    THIN_META,
    THIN_POOL,
    TMP_COW,
    TMPFS_UPPER,
    UPPER_LINK,
    UPPER_RO_LINK,
    WORK_LINK,
    WORK_RO_LINK,
)
from pylive.planner.ram import copies_fsimg, plan_copy_to_ram
from pylive.ramcopy import MIB, Room

RUN_LOW_BYTES = 64 * MIB  # a temporary upper on /run with less free than this warns (run_room_warning)


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
        if mode is not Mode.DM_LINEAR_RW:  # a writable image has no pristine base to offer (dracut: setup=rw)
            steps.append(CreateDm("live-base", linear_table(BASE_LOOP), True, LIVE_BASE))
            steps.append(Symlink(BASE_LOOP, "/dev/live-base"))
        steps.append(Mount("/dev/mapper/live-rw", newroot, root_fstype, rootflags))
    else:
        steps += _overlayfs_steps(opts, intent, mode, image, base, newroot=newroot, rootflags=rootflags,
                                  mem_total_mib=mem_total_mib, probe=probe)
    if image.squashfs is not None and opts.live_ram and opts.writable_fsimg and not flattened:
        # the root is the copy: the squashfs on the medium is read no more, and its loop would hold the medium
        steps += [Unmount(SQUASHFS_MNT), DetachLoop(SQUASH_LOOP)]
    elif image.squashfs is not None:  # dracut: umount -l; the loop, or /run/rootfsbase's bind, holds it
        steps.append(Unmount(SQUASHFS_MNT, lazy=True))
    steps += plan_release(opts, overlay_on_medium,
                          mounted=any(p.startswith(LIVE + "/") for p in (image.squashfs, image.fsimg) if p))
    steps.append(MarkDone())
    return tuple(steps)


def plan_release(opts: LiveOptions, overlay_on_medium: bool, *, mounted: bool = True) -> tuple[Step, ...]:
    """rd.live.ram exists so that the medium can be removed (a DVD ejected, a stick reused): once the root
    is built from the RAM copy, the medium is unmounted (dracut leaves it mounted). A persistent overlay
    on the medium keeps it in use, and mounted, as dracut does. mounted: the medium is mounted at LIVE
    (a squashfs or EROFS device is the image itself, and never is). iso-scan: the ISO file is let go
    of too, and the filesystem that holds it unmounted, as dracut does."""
    if not opts.live_ram:
        return ()
    if overlay_on_medium:
        return (Notice(f"rd.live.ram: the live medium stays mounted at {LIVE}: "
                       "the persistent overlay is on it, so it must not be removed"),)
    if opts.iso_scan_filename is not None:
        return (ReleaseMedium(LIVE, mounted, ISO_LOOP, ISOSCAN),)
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


def _persistent_dirs(probe: OverlayProbe, readonly: bool = False) -> tuple[list[Step], str, str]:
    """Steps to reach a found persistent OverlayFS layer, and its upper and work directories."""
    if probe.found is Found.FS_IMAGE:  # e.g. on a vfat stick: a filesystem image holding the dirs
        loop = Ref("overlay-image-loop")
        # read-only: an ext3/4 without its journal (a read-only loop device cannot replay it)
        options = ("ro", "noload") if readonly and probe.fstype == "ext4" else ("ro",) if readonly else ()
        return ([AttachLoop(probe.path, readonly, loop), MakeDir(OVERLAY_IMG_MNT),
                 Mount(loop, OVERLAY_IMG_MNT, "auto", options)],
                f"{OVERLAY_IMG_MNT}/overlayfs", f"{OVERLAY_IMG_MNT}/ovlwork")
    if probe.found is Found.DEVICE_TOP:  # dracut-ng device mode creates them, on its /run/overlayfs-backing
        upper, work = f"{OVERLAY_MNT}/overlay", f"{OVERLAY_MNT}/ovlwork"
        return [MakeDir(upper), MakeDir(work), Symlink(OVERLAY_MNT, OVERLAY_BACKING)], upper, work
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
        if mode is Mode.OVERLAYFS_PERSISTENT_RO:  # dracut: the persistent layer at /run/overlayfs-r, a lower
            assert probe is not None
            pre, persistent_upper, persistent_work = _persistent_dirs(probe, readonly=True)
            steps += [*pre, Symlink(persistent_upper, UPPER_RO_LINK), Symlink(persistent_work, WORK_RO_LINK)]
            lower = f"{UPPER_RO_LINK}:{ROOTFSBASE}"
        tmpfs = upper_tmpfs_options(opts, intent, mem_total_mib)
        if tmpfs:
            steps += [MakeDir(TMPFS_UPPER), Mount("tmpfs", TMPFS_UPPER, "tmpfs", ("mode=0755", *tmpfs))]
        upper, work = f"{TMPFS_UPPER}/overlayfs", f"{TMPFS_UPPER}/ovlwork"
        steps += [MakeDir(upper), MakeDir(work)]
    steps += [
        Symlink(upper, UPPER_LINK),
        Symlink(work, WORK_LINK),
        Symlink(base, "/dev/live-base"),
        Mount("LiveOS_rootfs", newroot, "overlay",
              (*rootflags, f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}")),
    ]
    return steps


def _overlay_size_given(opts: LiveOptions) -> bool:
    # pylive: rd.live.overlay.size sizes the OverlayFS upper too (dracut ignores it, dracut-ng#1415)
    return opts.overlay_size_mib != DEFAULT_OVERLAY_MIB


def upper_tmpfs_options(opts: LiveOptions, intent: Intent, mem_total_mib: int | None) -> tuple[str, ...]:
    """The options of the temporary OverlayFS upper's own tmpfs; none: the upper is a directory on /run."""
    tmpfs = intent.tmpfs_options
    if _overlay_size_given(opts) and not any(o.startswith("size=") for o in tmpfs):
        tmpfs = (f"size={cow_size_mib(opts, mem_total_mib)}m", *tmpfs)
    return tmpfs


def upper_on_run(opts: LiveOptions, intent: Intent, mode: Mode) -> bool:
    """Whether the live system's changes will be kept in a directory on /run's tmpfs: a temporary upper
    for which upper_tmpfs_options() is empty (asked without its sizes, which a percentage of RAM would need)."""
    return (mode in (Mode.OVERLAYFS_TEMP, Mode.OVERLAYFS_PERSISTENT_RO)
            and not intent.tmpfs_options and not _overlay_size_given(opts))


def run_room_warning(room: Room | None) -> str | None:
    """A temporary upper on a /run with less than RUN_LOW_BYTES free: the first writes of the live
    system fail (ENOSPC) soon after the boot. Said before the root is built, with what to do."""
    if room is None or room.avail >= RUN_LOW_BYTES:
        return None
    return (f"{room.mountpoint} has {room.avail // 1024} KiB free (of {room.size // MIB} MiB): the temporary overlay "
            f"keeps the live system's changes there, and its writes fail once it is full: give the overlay a tmpfs "
            f"of its own (rd.overlay=tmpfs:size=2G, or rd.live.overlay.size=<MiB>), or find what filled "
            f"{room.mountpoint}")

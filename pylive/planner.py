"""The boot decisions (pure): options and observed facts → plans. No I/O, nothing from linux/.

boot.py calls these phase by phase, because what the medium holds is only known once it is
mounted: wait → medium → image → root.
"""

from __future__ import annotations

import enum
import posixpath
from dataclasses import dataclass

from pylive.dmtable import linear_table, snapshot_table
from pylive.errors import ImageNotFound, NotSupportedYet
from pylive.options import LiveOptions
from pylive.plan import (
    AttachLoop,
    CreateDm,
    CreateSparseFile,
    LoadModules,
    MakeDir,
    MarkDone,
    Mount,
    Ref,
    Step,
    Symlink,
    Unmount,
    WaitForDevice,
)

LIVE = "/run/initramfs/live"
LIVEDEV = "/run/initramfs/livedev"
SQUASHFS_MNT = "/run/initramfs/squashfs"
TMP_COW = "/overlay"  # dmsquash-live-root.sh: the sparse COW file lives in the initramfs root
LIVEDEV_REF = Ref("livedev")
SQUASH_LOOP = Ref("squashfs-loop")
BASE_LOOP = Ref("base-loop")
COW_LOOP = Ref("cow-loop")
LIVE_RW = Ref("live-rw")
LIVE_BASE = Ref("live-base")
SQUASH_TYPES = ("squashfs", "erofs")
INNER_ROOTFS = posixpath.join(SQUASHFS_MNT, "LiveOS/rootfs.img")  # fixed inside the squashfs (not rd.live.dir)


class Mode(enum.Enum):
    DM_SNAPSHOT_TEMP = "temporary device-mapper snapshot"
    DM_SNAPSHOT_PERSISTENT = "persistent device-mapper snapshot"
    DM_THIN_TEMP = "temporary dm-thin snapshot"
    DM_LINEAR_RW = "writable linear device (no overlay)"
    OVERLAYFS_TEMP = "temporary OverlayFS"
    OVERLAYFS_PERSISTENT = "persistent OverlayFS"


def plan_modules() -> tuple[Step, ...]:
    return (LoadModules(("loop", "squashfs", "dm_mod", "dm_snapshot")),)


def plan_wait(opts: LiveOptions) -> tuple[Step, ...]:
    """Wait for the medium named on root=."""
    assert opts.spec is not None
    path = opts.spec.udev_path()
    if path is None:
        raise NotSupportedYet(f"root=live:{opts.spec} ({opts.spec.kind.value})")
    return (WaitForDevice(str(opts.spec), path, opts.retry_s, LIVEDEV_REF),)


def plan_medium(opts: LiveOptions, medium_fstype: str | None) -> tuple[Step, ...]:
    """Link and mount the medium; a squashfs/erofs medium is itself the image and is not mounted."""
    assert opts.spec is not None
    steps: list[Step] = [Symlink(opts.spec.udev_path() or str(opts.spec), LIVEDEV), MakeDir(LIVE)]
    if medium_fstype in SQUASH_TYPES:
        raise NotSupportedYet(f"a {medium_fstype} live device (no filesystem around the image)")
    if medium_fstype == "ntfs":
        raise NotSupportedYet("an NTFS live medium")
    steps.append(Mount(LIVEDEV_REF, LIVE, medium_fstype or "auto", ("rw",) if opts.medium_rw else ("ro",)))
    return tuple(steps)


@dataclass(frozen=True)
class MediumImages:
    """What the mounted medium offers under <rd.live.dir>."""

    squashfs: str | None  # path of the squashfs image, when present
    rootfs: str | None  # path of an uncompressed rootfs.img, when present
    searched: tuple[str, ...]


def medium_candidates(opts: LiveOptions) -> tuple[str, str]:
    """Where the images may be on the mounted medium: <dir>/<squashimg>, then <dir>/rootfs.img."""
    base = posixpath.join(LIVE, opts.live_dir.strip("/"))
    return posixpath.join(base, opts.squash_image), posixpath.join(base, "rootfs.img")


def find_medium_images(opts: LiveOptions, exists: frozenset[str]) -> MediumImages:
    """Which images the medium holds, given the set of paths that exist on it."""
    squash, rootfs = medium_candidates(opts)
    return MediumImages(
        squash if squash in exists else None,
        rootfs if rootfs in exists else None,
        (squash, rootfs),
    )


def plan_squashfs(opts: LiveOptions, images: MediumImages) -> tuple[Step, ...]:
    """Attach and mount the squashfs image; an uncompressed rootfs.img is a later issue's mode."""
    if images.squashfs is None:
        if images.rootfs is not None:
            raise NotSupportedYet(f"an uncompressed {images.rootfs}")
        raise ImageNotFound(
            f"the live medium {opts.spec}", [p.removeprefix(LIVE) or "/" for p in images.searched],
            f"check rd.live.dir={opts.live_dir} and rd.live.squashimg={opts.squash_image}",
        )
    if opts.live_ram:
        raise NotSupportedYet("rd.live.ram")
    return (
        AttachLoop(images.squashfs, True, SQUASH_LOOP),
        MakeDir(SQUASHFS_MNT),
        Mount(SQUASH_LOOP, SQUASHFS_MNT, "squashfs", ("ro",)),
    )


@dataclass(frozen=True)
class SquashContents:
    rootfs_img: bool  # LiveOS/rootfs.img inside
    has_liveos: bool
    flattened: bool  # /usr or /ostree: the squashfs is the root itself


def choose_mode(opts: LiveOptions) -> Mode:
    overlay = opts.rd_overlay if opts.rd_overlay is not None else opts.overlay
    if opts.overlay_thin:
        return Mode.DM_THIN_TEMP
    if overlay is not None and overlay.lower() == "none":
        return Mode.DM_LINEAR_RW
    if opts.overlayfs or (opts.rd_overlay is not None and opts.rd_overlay not in ("0", "no", "off")):
        return Mode.OVERLAYFS_TEMP
    if overlay is not None:
        return Mode.DM_SNAPSHOT_PERSISTENT
    return Mode.DM_SNAPSHOT_TEMP


def plan_root(opts: LiveOptions, squash_path: str, contents: SquashContents, newroot: str,
              root_fstype: str) -> tuple[Step, ...]:
    """Build the writable root over the image inside the squashfs, and mount it on newroot."""
    inner = INNER_ROOTFS
    if not contents.rootfs_img:
        if contents.flattened:
            raise NotSupportedYet(f"a flattened {squash_path.removeprefix(LIVE)} (OverlayFS root)")
        raise ImageNotFound(
            squash_path.removeprefix(LIVE) or squash_path, ["/LiveOS/rootfs.img", "/usr", "/ostree"],
            "the squashfs must hold LiveOS/rootfs.img, or be a root tree itself",
        )
    mode = choose_mode(opts)
    if mode is not Mode.DM_SNAPSHOT_TEMP:
        raise NotSupportedYet(mode.value)
    rootflags = tuple(o for o in (opts.rootflags or "").split(",") if o)
    return (
        AttachLoop(inner, True, BASE_LOOP),
        CreateSparseFile(TMP_COW, opts.overlay_size_mib),
        AttachLoop(TMP_COW, False, COW_LOOP),
        CreateDm("live-rw", snapshot_table(BASE_LOOP, COW_LOOP), False, LIVE_RW),
        CreateDm("live-base", linear_table(BASE_LOOP), True, LIVE_BASE),
        Symlink(BASE_LOOP, "/dev/live-base"),
        Mount("/dev/mapper/live-rw", newroot, root_fstype, rootflags),
        Unmount(SQUASHFS_MNT, lazy=True),
        MarkDone(),
    )

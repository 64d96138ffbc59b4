"""What the medium holds: which images, and what kind of root image (pure)."""

from __future__ import annotations

import enum
import posixpath

from pylive.errors import ImageNotFound
from pylive.options import LiveOptions
from pylive.planner.paths import INNER_EXT3FS, INNER_ROOTFS, LIVE
from pylive.record import record


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

"""Where the live stage puts things (dracut's paths, which the booted system reads), and the handles
(Refs) by which steps name the devices they create."""

from __future__ import annotations

import posixpath

from pylive.devspec import SpecKind
from pylive.plan import Ref

LIVE = "/run/initramfs/live"
LIVEDEV = "/run/initramfs/livedev"
SQUASHFS_MNT = "/run/initramfs/squashfs"
OVERLAY_MNT = "/run/initramfs/overlayfs"  # the persistent overlay's filesystem
TMP_COW = "/overlay"  # dmsquash-live-root.sh: the sparse COW file lives in the initramfs root
ROOTFSBASE = "/run/rootfsbase"
UPPER_LINK, WORK_LINK = "/run/overlayfs", "/run/ovlwork"  # → the OverlayFS upper and work directories
# rd.live.overlay.readonly: → the persistent upper (and work) directories; the upper is an extra lower layer
UPPER_RO_LINK, WORK_RO_LINK = "/run/overlayfs-r", "/run/ovlwork-r"
OVERLAY_BACKING = "/run/overlayfs-backing"  # dracut-ng device mode (rd.overlay=<dev>): the device's filesystem
THIN_DIR = "/run/initramfs/thin-overlay"
# the temporary upper's directory, on /run; or its own tmpfs there (dracut-ng: rd.overlay=tmpfs:…)
TMPFS_UPPER = "/run/initramfs/overlay"
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

OVERLAY_IMG_MNT = "/run/initramfs/overlayfs-image"

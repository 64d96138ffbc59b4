"""The whole decision table, planned against fake machines (dry run: every mode is planned).

Each case: a command line, the medium's layout, what the persistent overlay location holds, and
the expected mode (or the one line the boot stops with), plus steps and warnings it must show.
Rows of dracut-live.md §4.9 and the dracut-ng TEST-30-DMSQUASH / TEST-21-OVERLAYFS command lines
are among them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from pylive import boot
from pylive.cmdline import Args
from pylive.errors import LiveError
from pylive.options import parse_options
from pylive.planner import Mode
from pylive.probe import BlockDevice, FsIdentity

from .fakesystem import FakeSystem

LABEL, UUID = "Test Live 1", "2026-11-26-14-40-54-00"
OVL = f"LiveOS/overlay-{LABEL}-{UUID}"
LIVE = '"root=live:CDLABEL=Test Live 1"'

# medium layouts: files on the medium, and inside its squashfs (None: no squashfs)
LAYOUTS = {
    "inner": ({"LiveOS/squashfs.img"}, {"LiveOS/rootfs.img"}),
    "flat": ({"LiveOS/squashfs.img"}, {"usr/bin/sh", "etc/os-release"}),
    "ostree": ({"LiveOS/squashfs.img"}, {"ostree/repo/config"}),
    "ext3fs": ({"LiveOS/squashfs.img"}, {"LiveOS/ext3fs.img"}),
    "liveos-empty": ({"LiveOS/squashfs.img"}, {"LiveOS/README"}),
    "no-root": ({"LiveOS/squashfs.img"}, {"etc/hostname"}),
    "uncompressed": ({"LiveOS/rootfs.img"}, None),
    "empty": ({"EFI/BOOT/bootx64.efi"}, None),
    "livedir": ({"images/squashfs.img"}, {"LiveOS/rootfs.img"}),
    "root-tree": ({"usr/bin/sh", "etc/os-release"}, None),
}
# persistent overlay device /dev/sdb1 (LABEL=persist) contents: path → (size, fstype) or "dir"
OVERLAYS = {
    "none": None,  # no such device
    "nothing": {},
    "dm-empty": {OVL: (1 << 30, None)},  # a fresh COW file: zeros
    "zero-size": {OVL: (0, None)},
    "dm-cow": {OVL: (1 << 20, "DM_snapshot_cow")},
    "ovl-dir": {OVL + "/etc": "dir", "LiveOS/ovlwork/work": "dir"},
    "fs-image": {OVL: (1 << 20, "ext4")},
    "garbage": {OVL: (1 << 20, None)},  # made non-zero in machine()
    "custom": {"persist/cow": (1 << 20, None)},
}


# Where the medium is: a CD (/dev/sr0), or an ISO file found by iso-scan on /dev/sda1 (ext4), or a
# file inside the initramfs: an ISO, a squashfs image, a disk image whose second partition is the medium.
ISO_FILES = {"isoscan": "/run/initramfs/isoscan/isos/live.iso", "iso": "/images/live.iso",
             "img-squashfs": "/live.img", "img-disk": "/live.img", "img-ext4": "/live.img",
             "net-iso": "/run/initramfs/live-net/live.iso", "net-squashfs": "/run/initramfs/live-net/squashfs.img",
             "net-ext4": "/run/initramfs/live-net/rootfs.img", "nfs-iso": "/run/initramfs/nfs/live.iso"}


def _file_medium(sys: FakeSystem, source: str, medium: set[str], squash: set[str] | None, iso: str) -> None:
    file = ISO_FILES[source] if source != "isoscan" else "/run/initramfs/isoscan" + iso
    sys.labels["/dev/loop0"] = (LABEL, UUID)
    if source in ("img-squashfs", "net-squashfs"):
        sys.fstypes[file], sys.contents[file] = "squashfs", set(squash or ())
    elif source in ("img-ext4", "net-ext4"):
        sys.fstypes[file], sys.contents[file], sys.sectors[file] = "ext4", set(medium), 131072
    elif source == "img-disk":
        sys.parts[file] = ["/dev/loop0p1", "/dev/loop0p2"]
        sys.fstypes["/dev/loop0p1"], sys.contents["/dev/loop0p1"] = "vfat", {"EFI/BOOT/bootx64.efi"}
        sys.fstypes["/dev/loop0p2"], sys.contents["/dev/loop0p2"] = "ext4", set(medium)
        sys.labels["/dev/loop0p2"] = (LABEL, UUID)
    else:
        sys.fstypes[file], sys.contents[file] = "iso9660", set(medium)
        sys.fsids[file] = FsIdentity("iso9660", (LABEL,), UUID)
    if source == "isoscan":
        sys.devices = [BlockDevice("sda", 1 << 21), BlockDevice("sda1", 1 << 20, None, None, "sda", 1),
                       BlockDevice("sdb", 1 << 21), BlockDevice("sdb1", 1 << 20, None, None, "sdb", 1)]
        sys.fstypes["/dev/sda1"], sys.contents["/dev/sda1"] = "ext4", {iso.lstrip("/")}
        sys.fstypes["/dev/sdb1"], sys.contents["/dev/sdb1"] = "ntfs", {iso.lstrip("/")}
        sys.unclean["/dev/sdb1"] = "Windows is hibernated"
        sys.links["/dev/disk/by-label/data"] = "/dev/sda1"
        sys.links["/dev/disk/by-partuuid/abcd-01"] = "/dev/loop0"


def machine(layout: str, overlay: str = "none", overlay_on_medium: bool = False, source: str = "cd",
            iso: str = "/isos/live.iso") -> FakeSystem:
    medium, squash = LAYOUTS[layout]
    sys = FakeSystem()
    if source == "cd":
        sys.links[r"/dev/disk/by-label/Test\x20Live\x201"] = "/dev/sr0"
        sys.links["/dev/disk/by-uuid/" + UUID] = "/dev/sr0"
        sys.links["/dev/sr0"] = "/dev/sr0"
        sys.fstypes["/dev/sr0"] = "iso9660"
        sys.labels["/dev/sr0"] = (LABEL, UUID)
        sys.contents["/dev/sr0"] = set(medium)
    else:
        _file_medium(sys, source, set(medium), squash, iso)
    for f in medium:
        sys.fstypes[f"/run/initramfs/live/{f}"] = "squashfs" if squash is not None else "ext4"
        sys.contents[f"/run/initramfs/live/{f}"] = set(squash or ())
        sys.file_sizes[f] = 700 << 20
    for inner in ("rootfs.img", "ext3fs.img"):
        sys.fstypes[f"/run/initramfs/squashfs/LiveOS/{inner}"] = "ext4"
        sys.sectors[f"/run/initramfs/squashfs/LiveOS/{inner}"] = 131072
    if overlay == "garbage":
        sys.heads[OVL] = b"not a filesystem"
    contents = OVERLAYS[overlay]
    if contents is not None:
        dev = "/dev/sr0" if overlay_on_medium else "/dev/sdb1"
        if not overlay_on_medium:
            sys.links["/dev/disk/by-label/persist"] = dev
            sys.contents[dev] = set()
        for path, what in contents.items():
            sys.contents[dev].add(path)
            if what != "dir":
                size, fstype = what
                sys.file_sizes[path] = size
                if fstype:
                    sys.fstypes[f"/run/initramfs/overlayfs/{path}"] = fstype
    return sys


@dataclass(frozen=True)
class Case:
    id: str
    cmdline: str
    layout: str = "inner"
    overlay: str = "none"
    mode: Mode | None = None
    error: str = ""  # a regular expression the one-line error must match
    steps: tuple[str, ...] = ()  # substrings that must appear in the planned steps
    warnings: tuple[str, ...] = ()
    on_medium: bool = False
    not_live: bool = False
    source: str = "cd"  # where the medium is (machine())
    iso: str = "/isos/live.iso"  # iso-scan: the ISO's path on /dev/sda1


DM_TEMP, DM_THIN, DM_RW = Mode.DM_SNAPSHOT_TEMP, Mode.DM_THIN_TEMP, Mode.DM_LINEAR_RW
DM_P, DM_P_RO = Mode.DM_SNAPSHOT_PERSISTENT, Mode.DM_SNAPSHOT_PERSISTENT_RO
OV_TEMP, OV_P, OV_P_RO = Mode.OVERLAYFS_TEMP, Mode.OVERLAYFS_PERSISTENT, Mode.OVERLAYFS_PERSISTENT_RO
P = "rd.live.overlay=LABEL=persist"
NOT_YET = "is not supported by this pylive yet"

CASES = [
    # --- root= forms ---
    Case("cdlabel", LIVE, mode=DM_TEMP, steps=(r"wait up to 180s for CDLABEL=Test Live 1",)),
    Case("uuid", f"root=live:UUID={UUID}", mode=DM_TEMP),
    Case("live-image-label", '"root=LABEL=Test Live 1" rd.live.image', mode=DM_TEMP),
    Case("live-image-cdlabel", '"root=CDLABEL=Test Live 1" rd.live.image', mode=DM_TEMP),
    Case("live-image-uuid", f"root=UUID={UUID} rd.live.image", mode=DM_TEMP),
    Case("liveimg-alias", '"root=CDLABEL=Test Live 1" liveimg', mode=DM_TEMP, warnings=("'liveimg' is deprecated",)),
    Case("partuuid", "root=live:PARTUUID=abcd-01", error=r"live medium PARTUUID=abcd-01 not found"),
    Case("partlabel", "root=live:PARTLABEL=live", error=r"waited for /dev/disk/by-partlabel/live"),
    Case("dev-path", "root=live:/dev/sr1", error=r"live medium /dev/sr1 not found"),
    Case("iso-file", "root=live:/images/live.iso", source="iso", mode=DM_TEMP, steps=(
        "losetup -r -P /images/live.iso → <livedev>", "udevadm trigger --action=change <livedev> and its partitions",
        "ln -s <livedev> /run/initramfs/livedev", "mount -t iso9660 -o ro <livedev> /run/initramfs/live")),
    Case("img-squashfs", "root=live:/live.img", source="img-squashfs", mode=DM_TEMP, steps=(
        "losetup -r -P /live.img → <livedev>", "losetup -r /dev/loop0 → <squashfs-loop>",
        "losetup -r /run/initramfs/squashfs/LiveOS/rootfs.img → <base-loop>")),
    Case("img-squashfs-flat", "root=live:/live.img", "flat", source="img-squashfs", mode=OV_TEMP, steps=(
        "mount -t none -o bind /run/initramfs/squashfs /run/rootfsbase",)),
    Case("img-disk", "root=live:/live.img", source="img-disk", mode=DM_TEMP, steps=(
        "find /LiveOS/squashfs.img or /LiveOS/rootfs.img on the partitions of <livedev>",
        "keep the one holding it mounted on /run/initramfs/live → <live-partition>",
        "ln -s <live-partition> /run/initramfs/livedev", "losetup -r /run/initramfs/live/LiveOS/squashfs.img")),
    Case("img-root-tree", "root=live:/live.img", "root-tree", source="img-ext4", mode=DM_TEMP, steps=(
        "mount -t ext4 -o ro <livedev> /run/initramfs/live", "umount /run/initramfs/live",
        "losetup -r /live.img → <base-loop>", "snapshot <base-loop> <cow-loop> PO 8")),
    Case("img-ext4-empty", "root=live:/live.img", "empty", source="img-ext4",
         error=r"^no live root image in the live medium /live.img \(searched: /LiveOS/squashfs.img, "
               r"/LiveOS/rootfs.img\)"),
    Case("img-disk-livedir", "root=live:/live.img rd.live.dir=images", source="img-disk",
         error=r"^root=live:/live.img: no partition holds /images/squashfs.img or /images/rootfs.img \(looked in: "
               r"loop0p1\(vfat\), loop0p2\(ext4\)\): the file must be an ISO"),
    # --- iso-scan/filename: an ISO file on a disk's filesystem ---
    Case("isoscan", f"{LIVE} iso-scan/filename=/isos/live.iso", source="isoscan", mode=DM_TEMP, steps=(
        "find /isos/live.iso on every block device's filesystem (removable ones first, then by name), waiting up "
        "to 180s for more devices: each mounted read-only without journal replay, skipped when that is not safe; "
        "keep the one holding it mounted on /run/initramfs/isoscan → <isoscandev>",
        "ln -s <isoscandev> /run/initramfs/isoscandev",
        "losetup -r -P /run/initramfs/isoscan/isos/live.iso → <iso-loop>",
        "udevadm trigger --action=change <iso-loop> and its partitions",
        "take <iso-loop>, or the partition of it, whose filesystem carries CDLABEL=Test Live 1 → <livedev>",
        "ln -s <livedev> /run/initramfs/livedev", "mount -t iso9660 -o ro <livedev> /run/initramfs/live")),
    Case("isoscan-label", f'"root=live:LABEL={LABEL}" iso-scan/filename=/isos/live.iso', source="isoscan",
         mode=DM_TEMP),
    Case("isoscan-uuid", f"root=live:UUID={UUID} iso-scan/filename=/isos/live.iso", source="isoscan", mode=DM_TEMP,
         steps=(f"carries UUID={UUID} → <livedev>",)),
    Case("isoscan-relative", f"{LIVE} iso-scan/filename=isos/./live.iso", source="isoscan", mode=DM_TEMP,
         steps=("losetup -r -P /run/initramfs/isoscan/isos/live.iso",)),
    Case("isoscan-devspec", f"{LIVE} iso-scan/filename=LABEL=data:/isos/live.iso", source="isoscan", mode=DM_TEMP,
         steps=("find /isos/live.iso on /dev/disk/by-label/data, waiting up to 180s for it",)),
    Case("isoscan-overlayfs", f"{LIVE} rd.overlay iso-scan/filename=/isos/live.iso", source="isoscan",
         mode=OV_TEMP),
    Case("isoscan-ram", f"{LIVE} iso-scan/filename=/isos/live.iso rd.live.ram", source="isoscan", mode=DM_TEMP,
         steps=("umount /run/initramfs/live, detach <iso-loop>, umount /run/initramfs/isoscan: the root is in RAM",)),
    Case("isoscan-partuuid", "root=live:PARTUUID=abcd-01 iso-scan/filename=/isos/live.iso", source="isoscan",
         mode=DM_TEMP, steps=("wait up to 20s for PARTUUID=abcd-01 (/dev/disk/by-partuuid/abcd-01) → <livedev>",)),
    Case("isoscan-wrong-label", "root=live:CDLABEL=Other iso-scan/filename=/isos/live.iso", source="isoscan",
         error=r"^iso-scan/filename=/isos/live.iso: the file found \(/dev/loop0, iso9660\) is labelled 'Test Live 1' "
               rf"with UUID {UUID}, not CDLABEL=Other: use root=live:CDLABEL=Test Live 1$"),
    Case("isoscan-missing", f"{LIVE} iso-scan/filename=/isos/other.iso rd.retry=5", source="isoscan",
         error=r"^iso-scan/filename=/isos/other.iso: no filesystem holds /isos/other.iso after 5s \(looked in: "
               r"sda1\(ext4\); skipped: sdb1\(ntfs: Windows is hibernated\); no filesystem to look in: sda, sdb\): "
               r"check the path"),
    Case("isoscan-devspec-missing", f"{LIVE} iso-scan/filename=LABEL=data:/isos/other.iso", source="isoscan",
         error=r"^iso-scan/filename=LABEL=data:/isos/other.iso: /dev/disk/by-label/data does not hold /isos/other.iso "
               r"\(looked in: sda1\(ext4\)\): check the path after ':'"),
    Case("isoscan-dotdot", f"{LIVE} iso-scan/filename=/isos/../../etc/x.iso",
         error=r"^iso-scan/filename=/isos/../../etc/x.iso: must not leave the filesystem that holds it"),
    Case("isoscan-no-path", f"{LIVE} iso-scan/filename=LABEL=data",
         error=r"^iso-scan/filename=LABEL=data: names a device but no file on it: use e.g. iso-scan/filename="),
    Case("isoscan-empty", f"{LIVE} iso-scan/filename=", error=r"^iso-scan/filename=: names no file"),
    Case("isoscan-bad-device", f"{LIVE} iso-scan/filename=LABEL=:/x.iso", error=r"'LABEL=' is not a device"),
    Case("isoscan-and-file", "root=live:/images/live.iso iso-scan/filename=/isos/live.iso",
         error=r"and root=live:/images/live.iso both name a file"),
    Case("isoscan-url", "root=live:http://10.0.2.2/x.iso iso-scan/filename=/isos/live.iso",
         error=r"^iso-scan/filename=/isos/live.iso: looks for the ISO on the disks, but "
               r"root=live:http://10.0.2.2/x.iso is on the network"),
    Case("isoscan-persist-on-host", f"{LIVE} iso-scan/filename=/isos/live.iso rd.live.overlay=LABEL=data",
         source="isoscan",
         error=r"^the persistent overlay's device LABEL=data holds the ISO file of iso-scan/filename"),
    # root=live:<url>: the image downloaded into a tmpfs of its own, then booted as a file in the initramfs
    Case("url-squashfs", "root=live:http://10.0.2.2:8000/LiveOS/squashfs.img", source="net-squashfs", mode=DM_TEMP,
         steps=("wait up to 60s for a link, an address and a route to 10.0.2.2",
                "mount -t tmpfs -o size=3072m,mode=0755 tmpfs /run/initramfs/live-net",  # 4096 MiB less rd.minmem
                "download http://10.0.2.2:8000/LiveOS/squashfs.img into /run/initramfs/live-net/squashfs.img, "
                "at most 3072 MiB", "losetup -r -P /run/initramfs/live-net/squashfs.img",
                "ln -s <livedev> /run/initramfs/livedev")),
    Case("url-squashfs-flat-minmem", "root=live:http://10.0.2.2/squashfs.img rd.minmem=3000", "flat",
         source="net-squashfs", mode=OV_TEMP, steps=("at most 1096 MiB",)),
    Case("url-iso-overlayfs-check", "root=live:http://10.0.2.2/live.iso rd.live.overlay.overlayfs rd.live.check "
         "rd.pylive.checksum=sha256:" + "ab" * 32 + " rd.pylive.mirror=http://10.0.2.3/live.iso",
         source="net-iso", mode=OV_TEMP,
         steps=("download http://10.0.2.2/live.iso (then 1 mirror) into /run/initramfs/live-net/live.iso",
                "verify sha256:abab", "check the implanted MD5",
                "mount -t iso9660 -o ro <livedev> /run/initramfs/live")),
    Case("url-alias-noverifyssl", "root=https://10.0.2.2/live.iso rd.noverifyssl", source="net-iso", mode=DM_TEMP,
         steps=("TLS certificates not verified", "tell: rd.noverifyssl: the HTTPS server's certificate is not "
                "verified")),
    Case("url-fsimg", "root=live:tftp://10.0.2.2/squashfs.img rd.writable.fsimg", source="net-squashfs",
         mode=DM_RW, steps=("download tftp://10.0.2.2/squashfs.img", "copy /run/initramfs/squashfs/LiveOS/"
                                  "rootfs.img to RAM as /run/initramfs/fsimg/rootfs.img")),
    Case("url-rootfs", "root=live:ftp://10.0.2.2/rootfs.img", "root-tree", source="net-ext4", mode=DM_TEMP,
         steps=("download ftp://10.0.2.2/rootfs.img", "umount /run/initramfs/live")),
    Case("nfs-iso", "root=live:nfs://10.0.2.2/srv/live/live.iso", source="nfs-iso", mode=DM_TEMP,
         steps=("mount -t nfs -o ro,nolock 10.0.2.2:/srv/live /run/initramfs/nfs",
                "losetup -r -P /run/initramfs/nfs/live.iso")),
    Case("nfs4-iso-ram", "root=live:nfs4://10.0.2.2/srv/live/live.iso rd.live.ram", source="nfs-iso", mode=DM_TEMP,
         steps=("mount -t nfs4 -o ro,nolock 10.0.2.2:/srv/live /run/initramfs/nfs",
                "copy /run/initramfs/live/LiveOS/squashfs.img to RAM")),
    Case("nfs-other-form", "root=live:nfs:10.0.2.2:/srv/live", error=rf"an NFS root other than .*{NOT_YET}"),
    Case("url-no-file", "root=live:http://10.0.2.2/", error=r"^root=live:http://10.0.2.2/: the URL names no file"),
    Case("url-bad-mirror", "root=live:http://10.0.2.2/x.img rd.pylive.mirror=gopher://h/x",
         error=r"^rd.pylive.mirror=gopher://h/x: not a URL pylive can fetch"),
    Case("url-bad-checksum", "root=live:http://10.0.2.2/x.img rd.pylive.checksum=sha256:abc",
         error=r"^rd.pylive.checksum=sha256:abc: a sha256 checksum is 64 hex digits"),
    Case("plain-root", "root=/dev/sda1", not_live=True),
    Case("plain-label", "root=LABEL=dracut", not_live=True),
    # --- dracut-live.md §4.9, row by row ---
    Case("inner-none", LIVE, "inner", mode=DM_TEMP, steps=(
        "losetup -r /run/initramfs/squashfs/LiveOS/rootfs.img", "create sparse file /overlay of 32768 MiB",
        "dmsetup create live-rw '0 <sectors of base-loop> snapshot <base-loop> <cow-loop> PO 8'",
        "dmsetup create --readonly live-base", "umount -l /run/initramfs/squashfs")),
    Case("inner-overlayfs", LIVE + " rd.live.overlay.overlayfs", "inner", mode=OV_TEMP, steps=(
        "mount -t auto -o ro <base-loop> /run/rootfsbase",
        "mount -t overlay -o lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlay/overlayfs,"
        "workdir=/run/initramfs/overlay/ovlwork LiveOS_rootfs /sysroot")),
    Case("inner-rd-overlay", LIVE + " rd.overlay", "inner", mode=OV_TEMP),
    Case("inner-persist-dm", f"{LIVE} {P}", "inner", "dm-empty", mode=DM_P, steps=(
        f"losetup /run/initramfs/overlayfs/{OVL} → <cow-loop>", "umount -l /run/initramfs/overlayfs",
        "snapshot <base-loop> <cow-loop> PO 8")),
    Case("inner-persist-dir", f"{LIVE} {P}", "inner", "ovl-dir", mode=OV_P, steps=(
        f"upperdir=/run/initramfs/overlayfs/{OVL},workdir=/run/initramfs/overlayfs/LiveOS/ovlwork",)),
    Case("inner-persist-missing", f"{LIVE} {P}", "inner", "nothing", mode=DM_TEMP, steps=(
        "ask: Unable to find a persistent overlay (LABEL=persist); using a temporary one.",)),
    Case("inner-persist-missing-noprompt", f"{LIVE} {P} rd.live.overlay.nouserconfirmprompt", "inner", "nothing",
         mode=DM_TEMP, steps=("tell: Unable to find a persistent overlay",)),
    Case("inner-persist-missing-rhgb", f"{LIVE} {P} rhgb", "inner", "nothing", mode=DM_TEMP,
         steps=("tell: Unable to find",)),
    Case("inner-persist-no-device", f"{LIVE} {P}", "inner", "none", mode=DM_TEMP,
         steps=("wait up to 10s for LABEL=persist (/dev/disk/by-label/persist), if it is there", "ask: Unable")),
    Case("flat-none", LIVE, "flat", mode=OV_TEMP, steps=(
        "mount -t none -o bind /run/initramfs/squashfs /run/rootfsbase", "ln -s <squashfs-loop> /dev/live-base")),
    Case("ostree-none", LIVE, "ostree", mode=OV_TEMP),
    Case("flat-overlayfs", LIVE + " rd.live.overlay.overlayfs", "flat", mode=OV_TEMP),
    Case("flat-persist-dir", f"{LIVE} {P}", "flat", "ovl-dir", mode=OV_P),
    Case("flat-persist-dm", f"{LIVE} {P}", "flat", "dm-cow",
         error=r"is a device-mapper COW file, but /LiveOS/squashfs.img is a flattened image that needs OverlayFS"),
    Case("liveos-empty", LIVE, "liveos-empty",
         error=r"no live root image in /LiveOS/squashfs.img \(searched: /LiveOS/rootfs.img, /LiveOS/ext3fs.img\)"),
    Case("liveos-empty-overlayfs", LIVE + " rd.live.overlay.overlayfs", "liveos-empty", error=r"no live root image"),
    Case("no-root-in-squashfs", LIVE, "no-root", error=r"searched: /LiveOS/rootfs.img, /usr, /ostree"),
    Case("ext3fs-legacy", LIVE, "ext3fs", mode=DM_TEMP,
         steps=("losetup -r /run/initramfs/squashfs/LiveOS/ext3fs.img",)),
    Case("uncompressed-none", LIVE, "uncompressed", mode=DM_TEMP, steps=(
        "losetup -r /run/initramfs/live/LiveOS/rootfs.img → <base-loop>",)),
    Case("uncompressed-ram", LIVE + " rd.live.ram", "uncompressed", mode=DM_RW, steps=(
        "copy /run/initramfs/live/LiveOS/rootfs.img to RAM as /run/initramfs/rootfs.img",
        "losetup /run/initramfs/rootfs.img → <base-loop>", "linear <base-loop> 0")),
    Case("uncompressed-overlayfs", LIVE + " rd.live.overlay.overlayfs", "uncompressed", mode=OV_TEMP),
    Case("uncompressed-ram-overlayfs", LIVE + " rd.live.ram rd.overlay", "uncompressed", mode=OV_TEMP),
    Case("uncompressed-none-overlay", LIVE + " rd.live.overlay=none rw", "uncompressed", mode=DM_RW,
         steps=("mount -t iso9660 -o rw", "losetup /run/initramfs/live/LiveOS/rootfs.img")),
    Case("empty-medium", LIVE, "empty",
         error=r"no live root image in the live medium CDLABEL=Test Live 1 \(searched: /LiveOS/squashfs.img"),
    Case("empty-medium-overlayfs", LIVE + " rd.overlay", "empty", error=r"no live root image"),
    Case("livedir", LIVE + " rd.live.dir=images", "livedir", mode=DM_TEMP),
    Case("livedir-missing", LIVE + " rd.live.dir=images", "inner", error=r"check rd.live.dir=images"),
    Case("squashimg", LIVE + " rd.live.squashimg=other.img", "inner", error=r"searched: /LiveOS/other.img"),
    # a leading / stays on the medium, as in dracut's "$live_dir/$squash_image"; `..` would leave it
    Case("squashimg-slash", LIVE + " rd.live.squashimg=/squashfs.img rd.live.dir=/LiveOS/", "inner", mode=DM_TEMP,
         steps=("losetup -r /run/initramfs/live/LiveOS/squashfs.img",)),
    Case("livedir-top", LIVE + " rd.live.dir=/ rd.live.squashimg=./LiveOS/squashfs.img", "inner", mode=DM_TEMP,
         steps=("losetup -r /run/initramfs/live/LiveOS/squashfs.img",)),
    Case("livedir-dotdot", LIVE + " rd.live.dir=../../etc",
         error=r"^rd.live.dir=../../etc: must not lead outside the filesystem it is on \('..'\): "
               r"use e.g. rd.live.dir=LiveOS$"),
    Case("squashimg-dotdot", LIVE + " rd.live.squashimg=../../../etc/shadow",
         error=r"^rd.live.squashimg=../../../etc/shadow: must not lead outside"),
    # --- dracut-ng TEST-30-DMSQUASH (base line has rd.overlay; the medium is ext4 with a squashfs rootfs.img) ---
    Case("test30-overlayfs", "rd.overlay root=live:/dev/sr0", "uncompressed", mode=OV_TEMP),
    Case("test30-live", "rd.overlay root=live:/dev/sr0 rd.live.image", "uncompressed", mode=OV_TEMP),
    Case("test30-livedir", "rd.overlay root=live:/dev/sr0 rd.live.image rd.live.dir=LiveOS", "uncompressed",
         mode=OV_TEMP),
    Case("test30-iso", "rd.overlay root=live:/dev/sr0 iso-scan/filename=linux.iso "
         r"root=live:/dev/disk/by-label/Test\x20Live\x201", "uncompressed", source="isoscan", iso="/linux.iso",
         mode=OV_TEMP, steps=("losetup -r -P /run/initramfs/isoscan/linux.iso",
                              r"carries /dev/disk/by-label/Test\x20Live\x201 → <livedev>")),
    Case("test30-autooverlay",
         "rd.overlay root=live:/dev/sr0 rd.live.image rd.overlay=LABEL=persist rd.live.dir=LiveOS",
         "uncompressed", "ovl-dir", mode=OV_P),
    Case("test30-autooverlay-deprecated",
         "rd.overlay root=live:/dev/sr0 rd.live.image rd.live.overlay=LABEL=persist rd.live.dir=LiveOS",
         "uncompressed", "ovl-dir", mode=OV_P),
    # --- dracut-ng TEST-21-OVERLAYFS, as live boots ---
    Case("test21-off", LIVE + " rd.overlay=0", mode=DM_TEMP),
    Case("test21-bool", LIVE + " rd.overlay", mode=OV_TEMP),
    Case("test21-one", LIVE + " rd.overlay=1", mode=OV_TEMP),
    Case("test21-device-label", LIVE + " rd.overlay=LABEL=persist", overlay="nothing", mode=OV_P, steps=(
        "mkdir -p /run/initramfs/overlayfs/overlay", "upperdir=/run/initramfs/overlayfs/overlay,"
        "workdir=/run/initramfs/overlayfs/ovlwork")),
    Case("test21-device-missing", LIVE + " rd.overlay=LABEL=persist", overlay="none", mode=OV_TEMP,
         steps=("ask: Unable to find a persistent overlay",)),
    Case("test21-tmpfs-sized", LIVE + " rd.overlay=tmpfs:size=32M,nr_inodes=100000", mode=OV_TEMP, steps=(
        "mount -t tmpfs -o mode=0755,size=32M,nr_inodes=100000 tmpfs /run/initramfs/overlay",)),
    Case("test21-crypt", LIVE + " rd.overlay.crypt=LABEL=CRYPT", error=rf"rd.overlay.crypt=LABEL=CRYPT .*{NOT_YET}"),
    Case("test21-not-live", "root=LABEL=dracut rd.overlay", not_live=True),
    # --- overlay options and their interplay ---
    Case("thin", LIVE + " rd.live.overlay.thin", mode=DM_THIN, steps=(
        "dmsetup create live-overlay-pool '0 67108864 thin-pool <thin-meta-loop> <thin-data-loop> 1024 1024'",
        "dmsetup message live-overlay-pool 0 'create_thin 0'",
        "dmsetup create live-rw '0 67108864 thin <live-overlay-pool> 0 <base-loop>'")),
    Case("thin-overlayfs", LIVE + " rd.live.overlay.thin rd.overlay", mode=OV_TEMP,
         warnings=("rd.live.overlay.thin is ignored: OverlayFS is not a device-mapper overlay",)),
    Case("thin-flat", LIVE + " rd.live.overlay.thin", "flat", mode=OV_TEMP,
         warnings=("rd.live.overlay.thin is ignored: a flattened image needs OverlayFS",)),
    Case("thin-persistent", f"{LIVE} {P} rd.live.overlay.thin", overlay="dm-cow", mode=DM_P,
         warnings=("rd.live.overlay.thin is ignored: a persistent overlay was found",)),
    Case("none", LIVE + " rd.live.overlay=none", error=r"rd.live.overlay=none writes straight into the root image, "
         r"but it is inside /LiveOS/squashfs.img, which cannot be written to: use an uncompressed"),
    Case("none-caps", LIVE + " rd.live.overlay=NONE rw", error=r"inside /LiveOS/squashfs.img"),
    Case("ng-none", LIVE + " rd.overlay=none rw", "uncompressed", mode=DM_RW),  # dracut-ng: OverlayFS on (bug B)
    Case("none-uncompressed-ro", LIVE + " rd.live.overlay=none", "uncompressed",
         error=r"writes straight into /LiveOS/rootfs.img, but the live medium is mounted read-only: add rw"),
    Case("none-uncompressed-rw", LIVE + " rd.live.overlay=none rw", "uncompressed", mode=DM_RW, steps=(
        "mount -t iso9660 -o rw <livedev> /run/initramfs/live", "losetup /run/initramfs/live/LiveOS/rootfs.img",
        "dmsetup create live-rw '0 <sectors of base-loop> linear <base-loop> 0'")),
    Case("none-readonly", LIVE + " rd.live.overlay=none rd.live.overlay.readonly", mode=DM_TEMP,
         warnings=("readonly wins",)),
    Case("none-flat", LIVE + " rd.live.overlay=none", "flat",
         error=r"is a flattened squashfs and cannot be written to"),
    Case("writable-fsimg", LIVE + " rd.writable.fsimg", mode=DM_RW, steps=(
        "copy /run/initramfs/squashfs/LiveOS/rootfs.img to RAM as /run/initramfs/fsimg/rootfs.img",)),
    Case("writable-fsimg-overlayfs", LIVE + " rd.writable.fsimg rd.overlay", mode=DM_RW,
         warnings=("rd.writable.fsimg gives a writable root image of its own",)),
    Case("ram", LIVE + " rd.live.ram", mode=DM_TEMP, steps=(
        "copy /run/initramfs/live/LiveOS/squashfs.img to RAM as /run/initramfs/squashed.img",
        "losetup -r /run/initramfs/squashed.img")),
    Case("ram-too-big", LIVE + " rd.live.ram rd.minmem=3500", error=(
        r"rd.live.ram: /LiveOS/squashfs.img \(700 MiB\) does not fit in RAM \(4096 MiB, of which rd.minmem=3500 MiB")),
    Case("ram-alias", LIVE + " live_ram", mode=DM_TEMP, warnings=("'live_ram' is deprecated",)),
    Case("size-2048", LIVE + " rd.live.overlay.size=2048", mode=DM_TEMP, steps=("/overlay of 2048 MiB",)),
    Case("size-4g", LIVE + " rd.live.overlay.size=4G", mode=DM_TEMP, steps=("/overlay of 4096 MiB",)),
    Case("size-percent", LIVE + " rd.live.overlay.size=25%", mode=DM_TEMP, steps=("/overlay of 1024 MiB",)),
    Case("size-overlayfs", LIVE + " rd.overlay rd.live.overlay.size=512", mode=OV_TEMP, steps=(
        "mount -t tmpfs -o mode=0755,size=512m tmpfs /run/initramfs/overlay",)),
    Case("size-bad", LIVE + " rd.live.overlay.size=4X", error=r"rd.live.overlay.size=4X: not a size in MiB"),
    Case("check", LIVE + " rd.live.check", mode=DM_TEMP, steps=("check the implanted MD5 of <livedev>",)),
    Case("check-zero", LIVE + " rd.live.check=0", mode=DM_TEMP),
    Case("check-alias", LIVE + " check", mode=DM_TEMP, steps=("check the implanted MD5",)),
    Case("rootflags", LIVE + " rootflags=noatime", mode=DM_TEMP,
         steps=("mount -t ext4 -o noatime /dev/mapper/live-rw",)),
    Case("rootflags-overlayfs", LIVE + " rd.overlay rootflags=noatime", mode=OV_TEMP,
         steps=("-o noatime,lowerdir=/run/rootfsbase",)),
    Case("medium-rw", LIVE + " rw", mode=DM_TEMP, steps=("mount -t iso9660 -o rw <livedev>",)),
    Case("ro-rw", LIVE + " ro rw ro", mode=DM_TEMP, warnings=("the last one (ro) wins",)),
    # --- persistence ---
    Case("persist-reset-dm", f"{LIVE} {P} rd.live.overlay.reset", overlay="dm-cow", mode=DM_P,
         steps=(f"reset: zero the first 64 KiB of /run/initramfs/overlayfs/{OVL}",)),
    Case("persist-reset-dir", f"{LIVE} {P} rd.overlay.reset", overlay="ovl-dir", mode=OV_P,
         steps=(f"reset: empty /run/initramfs/overlayfs/{OVL}",)),
    Case("persist-readonly-dm", f"{LIVE} {P} rd.live.overlay.readonly", overlay="dm-cow", mode=DM_P_RO, steps=(
        "mount -t auto -o ro <overlay-dev> /run/initramfs/overlayfs",
        f"losetup -r /run/initramfs/overlayfs/{OVL} → <cow-loop>",
        "dmsetup create --readonly live-ro '0 <sectors of base-loop> snapshot <base-loop> <cow-loop> P 8'",
        "snapshot /dev/mapper/live-ro <tmp-cow-loop> PO 8")),
    Case("persist-readonly-dir", f"{LIVE} {P} rd.overlay.readonly", overlay="ovl-dir", mode=OV_P_RO, steps=(
        f"ln -s /run/initramfs/overlayfs/{OVL} /run/overlayfs-r",
        "lowerdir=/run/overlayfs-r:/run/rootfsbase,upperdir=/run/initramfs/overlay/overlayfs",)),
    Case("persist-readonly-fresh-dm", f"{LIVE} {P} rd.live.overlay.readonly", overlay="dm-empty", mode=DM_TEMP,
         steps=("mount -t auto -o ro <overlay-dev> /run/initramfs/overlayfs",)),
    Case("persist-readonly-fs-image", f"{LIVE} {P} rd.live.overlay.readonly", overlay="fs-image", mode=OV_P_RO,
         steps=(f"losetup -r /run/initramfs/overlayfs/{OVL} → <overlay-image-loop>",
                "mount -t auto -o ro,noload <overlay-image-loop> /run/initramfs/overlayfs-image",
                "ln -s /run/initramfs/overlayfs-image/overlayfs /run/overlayfs-r",
                "lowerdir=/run/overlayfs-r:/run/rootfsbase")),
    Case("test21-device-readonly-fresh", LIVE + " rd.overlay=LABEL=persist rd.overlay.readonly", overlay="nothing",
         mode=OV_TEMP),
    Case("test21-device-reset-fresh", LIVE + " rd.overlay=LABEL=persist rd.overlay.reset", overlay="nothing",
         mode=OV_P),
    Case("persist-dm-checked", f"{LIVE} {P}", overlay="dm-cow", mode=DM_P,
         steps=(f"check how full live-rw (/{OVL}) is",)),
    Case("persist-readonly-typo", f"{LIVE} {P} rd.live.overlayfs.readonly", overlay="dm-cow", mode=DM_P_RO,
         warnings=("'rd.live.overlayfs.readonly' is deprecated",)),
    Case("persist-reset-readonly", f"{LIVE} {P} rd.live.overlay.reset rd.live.overlay.readonly", overlay="dm-cow",
         mode=DM_P_RO, warnings=("readonly wins and nothing is reset",)),
    Case("reset-alone", LIVE + " rd.live.overlay.reset", mode=DM_TEMP,
         warnings=("rd.live.overlay.reset has no effect without a persistent overlay",)),
    Case("persist-fs-image", f"{LIVE} {P}", overlay="fs-image", mode=OV_P, steps=(
        f"losetup /run/initramfs/overlayfs/{OVL} → <overlay-image-loop>",
        "upperdir=/run/initramfs/overlayfs-image/overlayfs,workdir=/run/initramfs/overlayfs-image/ovlwork")),
    Case("persist-garbage", f"{LIVE} {P}", overlay="garbage",
         error=rf"the persistent overlay /{OVL} is neither a device-mapper COW file nor a filesystem image"),
    Case("persist-zero-size", f"{LIVE} {P}", overlay="zero-size",
         error=rf"the persistent overlay /{OVL} is an empty file: give it a size"),
    Case("persist-identity-recorded", f"{LIVE} {P}", overlay="dm-cow", mode=DM_P,
         steps=(f"write /run/initramfs/overlayfs/{OVL}.pylive-base: size=1 sha256-64k=base",)),
    Case("persist-custom-path", f"{LIVE} rd.live.overlay=LABEL=persist:/persist/cow", overlay="custom", mode=DM_P),
    Case("persist-relative-path", f"{LIVE} rd.live.overlay=LABEL=persist:persist/cow", overlay="custom", mode=DM_P),
    Case("persist-auto", f"{LIVE} rd.live.overlay=LABEL=persist:auto", overlay="dm-cow", mode=DM_P),
    Case("persist-on-medium",
         f"{LIVE} rd.live.overlay=CDLABEL=Test Live 1".replace("rd.live.overlay=CDLABEL=Test Live 1",
                                                                '"rd.live.overlay=CDLABEL=Test Live 1"'),
         overlay="dm-empty", on_medium=True, mode=DM_P, steps=(
        "mount -t none -o remount,rw <livedev> /run/initramfs/live",
        "mount -t none -o bind /run/initramfs/live /run/initramfs/overlayfs")),
    Case("persist-ng-name", f"{LIVE} rd.overlay=LABEL=persist:auto", overlay="dm-cow", mode=DM_P),
    Case("persist-both-names", f"{LIVE} rd.live.overlay=LABEL=old rd.overlay=LABEL=persist", overlay="ovl-dir",
         mode=OV_P, warnings=("rd.live.overlay=LABEL=old is ignored: rd.overlay=LABEL=persist wins",)),
    Case("persist-by-path-colons",
         f"{LIVE} rd.live.overlay=/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1:/LiveOS/overlay", overlay="none",
         mode=DM_TEMP, steps=("wait up to 10s for /dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1 ",)),
    Case("overlay-bad", LIVE + " rd.live.overlay=somewhere", error=r"rd.live.overlay=somewhere: is not a device"),
    Case("ng-overlay-bad", LIVE + " rd.overlay=maybe", error=r"rd.overlay=maybe: is not a device"),
    Case("ng-tmpfs-bad", LIVE + " rd.overlay=tmpfs:colour=red", error=r"unknown tmpfs option 'colour=red'"),
    Case("ng-tmpfs-size-bad", LIVE + " rd.overlay=tmpfs:size=abc",
         error=r"^rd.overlay=tmpfs:size=abc: 'size=abc' is not size=<number>\[k\|m\|g\|t\|p\|e\|%\] as tmpfs takes"),
    Case("overlay-dotdot", f"{LIVE} {P}:/LiveOS/../../etc/x",
         error=r"^rd.live.overlay=LABEL=persist:/LiveOS/../../etc/x: must not lead outside the filesystem it is on "
               r"\('..'\): use e.g. rd.live.overlay=LABEL=<label>:/LiveOS/overlay$"),
    Case("ng-overlay-dotdot", LIVE + " rd.overlay=/dev/sdb1:/..", error=r"^rd.overlay=/dev/sdb1:/..: must not lead"),
    Case("overlay-dot", f"{LIVE} {P}:./persist/./cow", overlay="custom", mode=DM_P,
         steps=("/run/initramfs/overlayfs/persist/cow",)),
    Case("overlayfs-and-off", LIVE + " rd.live.overlay.overlayfs rd.overlay=0", mode=DM_TEMP,
         warnings=("rd.overlay=0 and rd.live.overlay.overlayfs contradict each other: rd.overlay wins",)),
    Case("unknown-option", LIVE + " rd.live.overlay.sise=4", mode=DM_TEMP,
         warnings=("did you mean rd.live.overlay.size",)),
]


def plan(case: Case):
    opts = parse_options(Args.from_text(case.cmdline))
    sys = machine(case.layout, case.overlay, case.on_medium, case.source, case.iso)
    return opts, sys, boot.run(opts, sys, dry_run=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_decision(case: Case) -> None:
    if case.not_live:
        assert not parse_options(Args.from_text(case.cmdline)).is_live
        return
    if case.error:
        with pytest.raises(LiveError) as e:
            plan(case)
        assert "\n" not in str(e.value)
        assert re.search(case.error, str(e.value)), str(e.value)
        return
    opts, sys, result = plan(case)
    assert result.mode is case.mode, result.decision.reasons
    steps = [s.describe() for s in result.steps]
    for want in case.steps:
        assert any(want in s for s in steps), (want, steps)
    warnings = (*opts.warnings, *__import__("pylive.planner").planner.resolve_intent(opts).warnings,
                *result.decision.warnings)
    for want in case.warnings:
        assert any(want in w for w in warnings), (want, warnings)
    assert steps[-1].startswith("ln -s null /dev/root")


def test_table_size() -> None:
    assert len(CASES) >= 80
    assert {c.mode for c in CASES} >= set(Mode)


RECORD = f"/run/initramfs/overlayfs/{OVL}.pylive-base"


def _run(cmdline: str, overlay: str, record: str | None, dry_run: bool = False):
    opts = parse_options(Args.from_text(cmdline))
    sys = machine("inner", overlay)
    if record is not None:
        sys.files[RECORD] = record
    return sys, boot.run(opts, sys, dry_run=dry_run)


@pytest.mark.parametrize("overlay", ["dm-cow", "ovl-dir"])
def test_overlay_for_another_base_is_refused_and_untouched(overlay: str) -> None:
    with pytest.raises(LiveError) as e:
        _run(f"{LIVE} {P}", overlay, "size=9 sha256-64k=old\n")
    assert str(e.value) == (
        f"the persistent overlay /{OVL} was made for another live image (recorded base size=9 sha256-64k=old, "
        "this boot's base size=1 sha256-64k=base): boot the image it belongs to, or add rd.live.overlay.reset "
        "to start the overlay afresh"
    )


def test_matching_record_is_used_without_writing() -> None:
    sys, result = _run(f"{LIVE} {P}", "dm-cow", "size=1 sha256-64k=base\n")
    assert result.mode is DM_P and "write" not in " ".join(s.describe() for s in result.steps)
    assert sys.files[RECORD] == "size=1 sha256-64k=base\n"


def test_reset_starts_afresh_and_records_the_new_base() -> None:
    sys, result = _run(f"{LIVE} {P} rd.live.overlay.reset", "dm-cow", "size=9 sha256-64k=old\n")
    assert f"wipe 65536 /run/initramfs/overlayfs/{OVL}" in sys.calls
    assert sys.files[RECORD] == "size=1 sha256-64k=base\n"
    i_write, i_wipe = sys.calls.index(f"write {RECORD}"), sys.calls.index(f"wipe 65536 /run/initramfs/overlayfs/{OVL}")
    assert i_wipe < i_write  # wiped first: a reset cut short keeps the old record, so it is refused again


def test_missing_overlay_prompts_unless_told_not_to() -> None:
    sys, _ = _run(f"{LIVE} {P}", "nothing", None)
    assert sys.asked and sys.asked[0].startswith("Unable to find a persistent overlay (LABEL=persist)")
    sys, _ = _run(f"{LIVE} {P} rd.live.overlay.nouserconfirmprompt", "nothing", None)
    assert sys.asked == []


def test_full_persistent_snapshot_stops_the_boot_and_unwinds() -> None:
    opts = parse_options(Args.from_text(f"{LIVE} {P}"))
    sys = machine("inner", "dm-cow")
    sys.dm_statuses["live-rw"] = "131000/131072 64"
    with pytest.raises(LiveError) as e:
        boot.run(opts, sys)
    assert str(e.value) == (
        f"the persistent overlay /{OVL} is full (63 of 64 MiB used): this boot could not write to it: boot with "
        "rd.live.overlay.readonly to reach your files and copy them off, then with rd.live.overlay.reset to "
        "start the overlay afresh")
    assert sys.dm == {} and sys.loops == {}


def test_full_persistent_snapshot_boots_read_only() -> None:
    opts = parse_options(Args.from_text(f"{LIVE} {P} rd.live.overlay.readonly"))
    sys = machine("inner", "dm-cow")
    sys.dm_statuses["live-ro"] = "131072/131072 64"
    assert boot.run(opts, sys).mode is DM_P_RO


def test_thin_pool_gets_its_thin_device() -> None:
    opts = parse_options(Args.from_text(f"{LIVE} rd.live.overlay.thin rd.live.overlay.size=1024"))
    sys = machine("inner")
    result = boot.run(opts, sys)
    assert result.mode is DM_THIN
    i = sys.calls.index("dmsetup message live-overlay-pool 0 create_thin 0")
    assert sys.calls[i - 1].startswith("dmsetup create live-overlay-pool 0 2097152 thin-pool 7:")
    assert sys.calls[i + 1].startswith("dmsetup create live-rw 0 2097152 thin 253:0 0 7:")

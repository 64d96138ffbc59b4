"""USB sticks laid out the way Fedora's livecd-iso-to-disk writes them (peers.md, "On-media layout").

One partition (LABEL ``LIVE`` by default) holds, for each ``--livedir`` (``--multi`` puts several
on one stick):
- ``<dir>/squashfs.img``, or ``<dir>/rootfs.img`` uncompressed (``--skipcompress``);
- ``<dir>/overlay-<LABEL>-<UUID>`` (``--overlay-size-mb``): a zero-filled file that the initramfs
  turns into a device-mapper COW, named from the stick's own label and filesystem UUID;
- ``<dir>/home.img`` (``--home-size-mb --unencrypted-home``): an ext4 image that the live system's
  livesys service loop-mounts on /home;
- ``syslinux/`` (MBR) or ``EFI/BOOT/`` (``--efi``: a GPT whose partition is an EFI System
  Partition) with the boot menu, naming the kernel and initrd as livecd-iso-to-disk's do
  (``syslinux/vmlinuz`` and ``syslinux/initrd.img``; ``images/pxeboot/`` for ``--efi``). QEMU boots
  the kernel directly: the files are on the stick only when ``boot_pair`` gives them, and then
  ``boot_files_of`` reads the menu on the host and takes out the files it names, to boot them.

A stick is written to by its boots, so each test makes its own (a few seconds); the squashfs and
the root image inside it are built once and shared.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ._util import HarnessError, digest, run, serialized
from .media import (
    ROOTFS_LABEL,
    _run_stdin,
    _stable_uuid,
    blkid_probe,
    fat_add_tree,
    make_ext4_image,
    make_squashfs,
    sources_key,
)

_MIB = 1 << 20
GPT_TYPE_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
STICK_LABEL = "LIVE"
# livecd-iso-to-disk's menus, trimmed: names relative to syslinux/ (SYSLINUX's working directory), or
# from the top of the stick (GRUB)
SYSLINUX_CFG = """default vesamenu.c32
timeout 100
label linux0
  menu label ^Start the live system
  kernel vmlinuz
  append initrd=initrd.img {args}
menu default
label check0
  menu label Test this ^media & start the live system
  kernel vmlinuz
  append initrd=initrd.img {args} rd.live.check
"""
GRUB_CFG = """search --no-floppy --set=root -l 'LIVE'
menuentry 'Start the live system' --class fedora {{
\tlinuxefi /images/pxeboot/vmlinuz {args}
\tinitrdefi /images/pxeboot/initrd.img
}}
"""


@dataclass(frozen=True)
class LiveDir:
    """One ``--livedir`` on the stick."""

    name: str = "LiveOS"
    skipcompress: bool = False      # rootfs.img instead of squashfs.img
    overlay_mb: int | None = None   # --overlay-size-mb
    home_mb: int | None = None      # --home-size-mb, unencrypted


@dataclass(frozen=True)
class Stick:
    path: Path
    label: str
    uuid: str                        # the filesystem UUID as blkid (and the overlay's name) has it
    fstype: str
    dirs: tuple[LiveDir, ...] = field(default=())
    partition_offset: int = _MIB

    def overlay_name(self, livedir: LiveDir) -> str:
        return f"{livedir.name}/overlay-{self.label}-{self.uuid}"

    @property
    def root_args(self) -> str:
        """The kernel arguments livecd-iso-to-disk writes into the stick's boot menu."""
        return f"root=live:LABEL={self.label} rd.live.image rd.live.overlay=LABEL={self.label} rw"

    def partition(self, dest: Path) -> Path:
        """The stick's filesystem, copied out of the disk image (for debugfs on the host)."""
        run(["dd", f"if={self.path}", f"of={dest}", "bs=1M", f"skip={self.partition_offset}",
             "iflag=skip_bytes", "conv=sparse", "status=none"])
        return dest


@serialized
def shared_images(root_tree: Path, media_dir: Path) -> tuple[Path, Path]:
    """(squashfs.img ⊃ LiveOS/rootfs.img, the bare rootfs.img) of the test root, built once."""
    key = digest(["stick-images-v1", ROOTFS_LABEL], [root_tree, *sources_key(), Path(__file__).resolve()])
    squash, rootfs = media_dir / "stick-squashfs.img", media_dir / "stick-rootfs.img"
    stamp = media_dir / "stick-images.key"
    if squash.is_file() and rootfs.is_file() and stamp.is_file() and stamp.read_text() == key:
        return squash, rootfs
    stamp.unlink(missing_ok=True)
    work = media_dir / "stick-images.work"
    shutil.rmtree(work, ignore_errors=True)
    make_ext4_image(root_tree, work / "LiveOS" / "rootfs.img", 64, ROOTFS_LABEL)
    make_squashfs(work, squash)
    shutil.move(work / "LiveOS" / "rootfs.img", rootfs)
    shutil.rmtree(work)
    stamp.write_text(key)
    return squash, rootfs


def _partition_table(disk: Path, size_mb: int, *, efi: bool, fstype: str, seed: str) -> None:
    with open(disk, "wb") as fh:
        fh.truncate(size_mb * _MIB)
    size = (size_mb - 2) * 2048
    if efi:  # --efi: GPT, the partition an EFI System Partition
        script = (f"label: gpt\nlabel-id: {_stable_uuid(seed, 'disk')}\nunit: sectors\n"
                  f"start=2048, size={size}, type={GPT_TYPE_ESP}, uuid={_stable_uuid(seed, 'part')}\n")
    else:  # the classic stick: MBR, one bootable partition
        mbr_type = "83" if fstype == "ext4" else "c"
        script = f"label: dos\nunit: sectors\nstart=2048, size={size}, type={mbr_type}, bootable\n"
    _run_stdin(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "always", disk], script)
    table = json.loads(run(["sfdisk", "-J", disk], quiet=True).stdout)["partitiontable"]
    if len(table.get("partitions", [])) != 1 or table["partitions"][0]["start"] != 2048:
        raise HarnessError(f"unexpected partition table on {disk}: {table}")


def _boot_menu(tree: Path, stick: Stick, *, efi: bool, boot_pair: tuple[Path, Path] | None) -> None:
    if efi:
        (tree / "EFI/BOOT").mkdir(parents=True)
        (tree / "EFI/BOOT/grub.cfg").write_text(GRUB_CFG.format(args=stick.root_args))
        (tree / "EFI/BOOT/BOOTX64.EFI").write_bytes(b"MZ pylive test: not a real loader\n")
        boot_dir = tree / "images/pxeboot"
    else:
        (tree / "syslinux").mkdir()
        (tree / "syslinux/syslinux.cfg").write_text(SYSLINUX_CFG.format(args=stick.root_args))
        boot_dir = tree / "syslinux"
    if boot_pair is not None:
        boot_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(boot_pair[0], boot_dir / "vmlinuz")
        shutil.copyfile(boot_pair[1], boot_dir / "initrd.img")


def build_stick(out: Path, *, root_tree: Path, media_dir: Path, dirs: tuple[LiveDir, ...] = (LiveDir(),),
                fstype: str = "ext4", efi: bool = False, size_mb: int = 384, label: str = STICK_LABEL,
                boot_pair: tuple[Path, Path] | None = None) -> Stick:
    """A stick as ``livecd-iso-to-disk [--efi] [--multi --livedir D] [--skipcompress]
    [--overlay-size-mb N] [--home-size-mb N --unencrypted-home]`` leaves it; ``boot_pair`` (kernel,
    initrd) are the boot files its menu names."""
    if efi and fstype != "vfat":
        raise ValueError("an EFI System Partition is vfat")
    squash, rootfs = shared_images(root_tree, media_dir)
    seed = f"{out.name}\0{label}"
    fs_uuid = _stable_uuid(seed, "fs")
    blkid_uuid = str(fs_uuid) if fstype == "ext4" else f"{fs_uuid.hex[:4]}-{fs_uuid.hex[4:8]}".upper()
    stick = Stick(out, label, blkid_uuid, fstype, dirs)

    work = out.with_name(out.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    tree = work / "tree"
    for d in dirs:
        base = tree / d.name
        base.mkdir(parents=True)
        if d.skipcompress:
            shutil.copyfile(rootfs, base / "rootfs.img")
        else:
            shutil.copyfile(squash, base / "squashfs.img")
        if d.overlay_mb:
            with open(tree / stick.overlay_name(d), "wb") as fh:  # dd if=/dev/zero: zeros, no header
                fh.truncate(d.overlay_mb * _MIB)
        if d.home_mb:
            home_tree = work / f"home-{d.name}"
            home_tree.mkdir()
            make_ext4_image(home_tree, base / "home.img", d.home_mb, "home")
    _boot_menu(tree, stick, efi=efi, boot_pair=boot_pair)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    _partition_table(out, size_mb, efi=efi, fstype=fstype, seed=seed)
    part_img = work / "part.img"
    part_bytes = (size_mb - 2) * _MIB
    if fstype == "ext4":
        run(["mkfs.ext4", "-q", "-F", "-L", label, "-U", str(fs_uuid), "-d", tree, part_img,
             f"{part_bytes // 1024}k"])
    else:
        with open(part_img, "wb") as fh:
            fh.truncate(part_bytes)
        run(["mkfs.vfat", "-F", "32", "-n", label, "-i", fs_uuid.hex[:8], part_img])
        fat_add_tree(part_img, tree)
    info = blkid_probe(part_img)
    if info.get("LABEL") != label or info.get("UUID") != blkid_uuid or info.get("TYPE") != fstype:
        raise HarnessError(f"blkid sees {info} in {part_img}, wanted {fstype} {label!r} {blkid_uuid}")
    run(["dd", f"if={part_img}", f"of={out}", "bs=1M", f"seek={stick.partition_offset}",
         "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"])
    shutil.rmtree(work)
    return stick



def boot_files_of(stick: Stick, dest: Path) -> tuple[Path, Path]:
    """The kernel and initrd the (ext4, syslinux) stick's menu boots by default, copied out into
    ``dest`` with debugfs (no mount): what a BIOS booting the stick would load."""
    dest.mkdir(parents=True, exist_ok=True)
    part = stick.partition(dest / "part.img")
    try:
        cfg = run(["debugfs", "-R", "cat /syslinux/syslinux.cfg", part], quiet=True).stdout
        default = re.search(r"^default\s+(\S+)", cfg, re.MULTILINE | re.IGNORECASE)
        labels = re.split(r"^\s*label\s+", cfg, flags=re.MULTILINE | re.IGNORECASE)[1:]
        entry = next((e for e in labels if default and e.split()[0] == default[1]), labels[0] if labels else "")
        kernel = re.search(r"^\s*kernel\s+(\S+)", entry, re.MULTILINE | re.IGNORECASE)
        initrd = re.search(r"\binitrd=([^\s,]+)", entry)
        if kernel is None or initrd is None:
            raise HarnessError(f"no kernel and initrd in the stick's syslinux.cfg:\n{cfg}")
        out = []
        for name, local in ((kernel[1], "vmlinuz"), (initrd[1], "initrd.img")):
            path = name if name.startswith("/") else f"/syslinux/{name}"
            run(["debugfs", "-R", f"dump {path} {dest / local}", part], quiet=True)
            if not (dest / local).is_file() or (dest / local).stat().st_size == 0:
                raise HarnessError(f"{path}, named by the stick's syslinux.cfg, is not on the stick")
            out.append(dest / local)
        return out[0], out[1]
    finally:
        part.unlink()

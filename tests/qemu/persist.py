"""Helpers of the persistence boot tests: a second disk (LABEL=persist), boots with it, and what
the guest reported or left on the disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

from qemu import NO_SHELL_ARGS, boot
from qemu._util import run
from qemu.media import fat_add_tree, make_ext4_image


def persist_disk(workdir: Path, files: dict[str, int | None]) -> Path:
    """An ext4 disk labelled 'persist' holding files (size in bytes, sparse zeros) and dirs (None)."""
    tree = workdir / "persist-tree"
    tree.mkdir(parents=True, exist_ok=True)
    for rel, size in files.items():
        p = tree / rel
        if size is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "wb") as f:
                f.truncate(size)
    return make_ext4_image(tree, workdir / "persist.img", 256, "persist")


def debugfs(disk: Path, command: str) -> str:
    return run(["debugfs", "-R", command, disk], quiet=True).stdout


def run_boot(kernel, initrd, iso, disk, extra: str, *, workdir: Path, name: str, **kw):
    return boot(kernel, initrd, f'"root=live:CDLABEL={iso.label}" {extra} {NO_SHELL_ARGS}', cdrom=iso.path,
                disks=[(disk, "persist")], workdir=workdir / name, timeout_s=240, **kw)


def checksums(disk: Path, workdir: Path) -> dict[str, str]:
    """Every file on the ext4 disk → its sha256 (extracted with debugfs rdump: no mount, no root)."""
    out = workdir / f"rdump-{len(list(workdir.glob('rdump-*')))}"
    out.mkdir(parents=True)
    debugfs(disk, f"rdump / {out}")
    return {str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(out.rglob("*")) if f.is_file()}


def vfat_disk_with_overlay_image(workdir: Path, name: str, upper: dict[str, str] | None = None,
                                 image_needs_recovery: bool = False) -> Path:
    """A vfat disk (LABEL=PERSIST) holding <name>: an ext4 image with overlayfs/ and ovlwork/ (the
    layout livecd-iso-to-disk writes on FAT sticks, which cannot hold an OverlayFS upper); upper: files in
    overlayfs/, as a previous boot would have left them; image_needs_recovery: the image's ext4 flagged as a
    crash leaves it (its journal to replay)."""
    inner_tree = workdir / "inner-tree"
    (inner_tree / "overlayfs").mkdir(parents=True)
    (inner_tree / "ovlwork").mkdir()
    for rel, text in (upper or {}).items():  # files a previous boot left in the upper layer
        (inner_tree / "overlayfs" / rel).write_text(text)
    stick_tree = workdir / "stick-tree"
    (stick_tree / name).parent.mkdir(parents=True)
    make_ext4_image(inner_tree, stick_tree / name, 48, "overlay")
    if image_needs_recovery:
        run(["debugfs", "-w", "-R", "feature needs_recovery", stick_tree / name])
    disk = workdir / "stick.img"
    with open(disk, "wb") as f:
        f.truncate(128 << 20)
    run(["mkfs.vfat", "-n", "PERSIST", disk])
    fat_add_tree(disk, stick_tree)
    return disk

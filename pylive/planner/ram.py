"""The RAM copies (rd.live.ram, rd.writable.fsimg): which are made, whether they fit, and /run's room (pure)."""

from __future__ import annotations

import posixpath

from pylive.errors import LiveError
from pylive.options import LiveOptions, Percent
from pylive.plan import CopyToRam, MakeDir, ResizeTmpfs, Step
from pylive.planner.image import ImageKind, RootImage
from pylive.planner.paths import LIVE, RAM_DIR
from pylive.ramcopy import MIB, Room


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

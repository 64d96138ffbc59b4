"""The RAM copies (rd.live.ram, rd.writable.fsimg): which are made, whether they fit, and /run's room (pure)."""

from __future__ import annotations

import posixpath

from pylive.errors import LiveError
from pylive.options import LiveOptions, Percent
from pylive.plan import CopyToRam, MakeDir, Notice, ResizeTmpfs, Step
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


# What the initramfs and the kernel need beside a RAM copy that is not held to rd.minmem: a copy that
# would leave less cannot be made (the initramfs itself is in RAM until switch_root frees it).
RAM_MARGIN_MIB = 128


def plan_copy_to_ram(opts: LiveOptions, option: str, src: str, dest: str, *, image_bytes: int | None,
                     mem_total_mib: int | None, room: Room | None = None, in_ram_mib: int = 0,
                     minmem_refuses: bool = False) -> tuple[Step, ...]:
    """A RAM copy, weighed against RAM before it starts, and /run grown when it is too small.

    minmem_refuses (rd.live.ram's copy of the squashfs): refused when it would leave less than rd.minmem
    of RAM, as dracut-ng's check_live_ram does. The other copies (rd.writable.fsimg's, rd.live.ram's of an
    uncompressed rootfs.img), which dracut does not check, are refused only when they cannot fit: when
    less than RAM_MARGIN_MIB would be left; less than rd.minmem left is a warning, and the boot goes on.
    in_ram_mib: what an earlier copy of this boot already holds."""
    minmem = opts.minmem_mib.of(mem_total_mib or 0) if isinstance(opts.minmem_mib, Percent) else opts.minmem_mib
    image_mib = -(-image_bytes // MIB) if image_bytes is not None else None
    steps: list[Step] = []
    if image_mib is not None and mem_total_mib is not None:
        left = mem_total_mib - in_ram_mib - image_mib
        held = f", {in_ram_mib} MiB of it holding the squashfs copy" if in_ram_mib else ""
        what = f"{src.removeprefix(LIVE)} ({image_mib} MiB)"
        if minmem_refuses and left < minmem:
            raise LiveError(f"{option}: {what} does not fit in RAM ({mem_total_mib} MiB{held}, of which "
                            f"rd.minmem={minmem} MiB must stay free)",
                            f"boot without {option}, lower rd.minmem, or give the machine more memory")
        if left < RAM_MARGIN_MIB:
            raise LiveError(f"{option}: {what} does not fit in RAM ({mem_total_mib} MiB{held}, of which the "
                            f"initramfs needs {RAM_MARGIN_MIB} MiB)",
                            f"boot without {option}, or give the machine more memory")
        if left < minmem:
            steps.append(Notice(f"{option}: the copy of {what} leaves {left} MiB of RAM free, less than "
                                f"rd.minmem={minmem} MiB: the system may run short of memory"))
    steps += plan_room(option, src, image_mib, minmem, room)
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

"""What `pylive update-boot` will do: which of the stick's files get the new kernel and initramfs, the
room that takes, and the one line for each refusal. Reads the live root and the stick, changes nothing.

The fallback: each replaced file's previous content is kept beside it as `<name>.prev`
(`syslinux/vmlinuz.prev`, `syslinux/initrd.img.prev`): the pair that booted before this update. The
boot loader configuration is not rewritten (README, "Kernel updates on a persistent stick", says how
to boot the fallback). Files are replaced as a pair: when either differs from the new pair, both
move to `.prev`, so the fallback is always a pair that booted together.

Room: every new file and every fallback copy is written before anything is renamed (a failure then
leaves the old files as they were), so all of them must fit at once, besides what the stick holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pylive import mountinfo
from pylive.bootfiles import kernels, loaderconf
from pylive.errors import EXIT_NOT_LIVE, LiveError, one_line
from pylive.overlay.files import MIB, free_bytes
from pylive.record import record

LIVE_MOUNT = "/run/initramfs/live"
READ_ONLY_TYPES = ("iso9660", "udf", "squashfs", "erofs")
SLACK_PER_FILE = 64 << 10  # directory entries, FAT clusters, ext4 extent blocks


class NotALiveStick(LiveError):
    exit_code = EXIT_NOT_LIVE


@record
class Replace:
    path: str          # the stick's file, relative to its top
    source: str        # the new content: a file in the live root (absolute)
    size: int          # the new content's size
    old_size: int
    fallback: str      # where the old content goes: path + .prev


@record
class UpdatePlan:
    medium: str                    # where the stick is mounted (/run/initramfs/live)
    device: str                    # what is mounted there (/dev/sdb1)
    fstype: str
    pair: kernels.KernelPair
    configs: tuple[str, ...]
    entries: tuple[loaderconf.Entry, ...]
    skipped: tuple[loaderconf.Skipped, ...]
    files: tuple[Replace, ...]     # empty: the stick already boots this pair
    need: int                      # bytes written before the old files are let go
    free: int
    remount: bool                  # mounted read-only: remounted read-write for the update only


def same_content(a: Path, b: Path, size: int) -> bool:
    """Whether two files hold the same bytes (sizes compared first; then 1 MiB at a time)."""
    if a.stat().st_size != size or b.stat().st_size != size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def live_mount(root: Path) -> mountinfo.MountEntry:
    """The live medium's mount; NotALiveStick when nothing is mounted on /run/initramfs/live."""
    m = mountinfo.mount_of(root, LIVE_MOUNT)
    if m is None or m.mountpoint != LIVE_MOUNT:
        if not (root / "run/initramfs").is_dir():
            raise NotALiveStick(f"{LIVE_MOUNT} is not mounted and there is no /run/initramfs: this is not a live "
                                "system", "run `pylive update-boot` in the live system booted from the stick")
        raise NotALiveStick(f"nothing is mounted on {LIVE_MOUNT} (the live medium was released, e.g. rd.live.ram, "
                            "or this system did not boot from live media)",
                            f"mount the stick there (mount LABEL=<its label> {LIVE_MOUNT}) and run it again")
    if m.fstype in READ_ONLY_TYPES:
        raise LiveError(f"the live medium {one_line(m.source)} on {LIVE_MOUNT} is {m.fstype}, which cannot be written "
                        "(a CD, or an ISO image written to the stick as it is)",
                        "write the image with livecd-iso-to-disk (or another tool that makes a writable stick)")
    return m


def targets(top: Path, entries: list[loaderconf.Entry]) -> tuple[list[str], list[str]]:
    """(kernel files, initrd files) the entries name, each once; LiveError when one is missing or ambiguous."""
    kernel_files: dict[str, None] = {}
    initrd_files: dict[str, None] = {}
    for e in entries:
        where = f"{one_line(e.config)} ({one_line(e.title)})"
        if len(e.initrds) != 1:
            raise LiveError(f"{where} names {len(e.initrds)} initrds ({one_line(', '.join(e.initrds))})",
                            "update-boot replaces one kernel and one initramfs: give the entry one initrd")
        for name, kind in ((e.kernel, "kernel"), (e.initrds[0], "initrd")):
            found = loaderconf.find_ci(top, name)
            if found is None or not found.is_file():
                raise LiveError(f"{where} names the {kind} /{one_line(name)}, which is not on the stick",
                                "fix the boot configuration: update-boot replaces the files it names")
            rel = str(found.relative_to(top))
            (kernel_files if kind == "kernel" else initrd_files)[rel] = None
    both = kernel_files.keys() & initrd_files.keys()
    if both:
        raise LiveError(f"/{one_line(sorted(both)[0])} is named as a kernel and as an initrd",
                        "fix the boot configuration")
    return list(kernel_files), list(initrd_files)


def plan_update(root: Path, free_of: Callable[[str], int] = free_bytes) -> UpdatePlan:
    """The update of the stick mounted on /run/initramfs/live under `root` from the newest pair in `root`."""
    mount = live_mount(root)
    top = root / LIVE_MOUNT.lstrip("/")
    pair = kernels.newest(root)
    configs, entries, skipped = loaderconf.boot_entries(top)
    if not configs:
        raise LiveError(f"no boot loader configuration on the stick ({LIVE_MOUNT}: looked for "
                        "syslinux/syslinux.cfg, isolinux/isolinux.cfg, extlinux/extlinux.conf, EFI/*/grub.cfg, "
                        "boot/grub*/grub.cfg)", "update-boot replaces the kernel and initrd those name")
    if not entries:
        raise LiveError(f"the stick's boot configuration ({one_line(', '.join(configs))}) has no entry that boots "
                        "a kernel with an initrd from the stick", "update-boot replaces the files such an entry names")
    kernel_files, initrd_files = targets(top, entries)
    new = {"kernel": root / pair.kernel.lstrip("/"), "initramfs": root / pair.initramfs.lstrip("/")}
    sizes = {k: p.stat().st_size for k, p in new.items()}
    wanted = [(f, "kernel") for f in kernel_files] + [(f, "initramfs") for f in initrd_files]
    files: tuple[Replace, ...] = ()
    if not all(same_content(top / f, new[kind], sizes[kind]) for f, kind in wanted):
        files = tuple(Replace(f, str(pair.kernel if kind == "kernel" else pair.initramfs), sizes[kind],
                              (top / f).stat().st_size, f + loaderconf.FALLBACK_SUFFIX) for f, kind in wanted)
    need = sum(r.size + r.old_size + SLACK_PER_FILE for r in files)
    free = free_of(str(top)) if files else 0
    plan = UpdatePlan(LIVE_MOUNT, mount.source, mount.fstype, pair, tuple(configs), tuple(entries), tuple(skipped),
                      files, need, free, "ro" in mount.options)
    if files and need > free:
        prev = sum(_size(top / r.fallback) for r in files)
        hint = "free some room on the stick" + (f" (the old *.prev files hold {mib(prev)})" if prev else "")
        raise LiveError(f"not enough room on the stick ({one_line(mount.source)} on {LIVE_MOUNT}): the new kernel and "
                        f"initramfs and the fallback copies need {mib(need)}, {mib(free)} free; nothing was changed",
                        hint)
    return plan


def mib(n: int) -> str:
    """A size as the messages give it: MiB with one decimal, KiB (rounded up) below 1 MiB."""
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{-(-n // 1024)} KiB"


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def describe(plan: UpdatePlan) -> list[str]:
    """What the plan does, a line each (--dry-run prints them with "would")."""
    pair = plan.pair
    lines = [f"newest kernel in the live root: {pair.version} ({pair.kernel}, {pair.initramfs})",
             f"live medium: {plan.device} on {plan.medium} ({plan.fstype}"
             f"{', mounted read-only' if plan.remount else ''})",
             f"boot configuration: {', '.join(plan.configs)}: " + "; ".join(
                 f"{e.title!r} boots /{e.kernel} with /{', /'.join(e.initrds)}" for e in plan.entries)]
    lines += [f"left alone: {s.config} ({s.title!r}): {s.why}" for s in plan.skipped]
    if not plan.files:
        lines.append(f"the stick already boots {pair.version}: nothing to do")
        return lines
    for r in plan.files:
        lines.append(f"replace /{r.path} ({mib(r.old_size)}) with {r.source} ({mib(r.size)}), the old one kept as "
                     f"/{r.fallback}")
    lines.append(f"room: {mib(plan.need)} written before the old files are let go, {mib(plan.free)} free")
    if plan.remount:
        lines.append(f"remount {plan.medium} read-write for the update, then read-only again")
    return lines

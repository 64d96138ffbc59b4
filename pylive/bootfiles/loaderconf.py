"""The kernel and initrd files the stick's boot loader configurations name.

Read where livecd-iso-to-disk and the usual stick tools put them (a vfat stick's names match
whatever their case):
- SYSLINUX, ISOLINUX, EXTLINUX: `syslinux/syslinux.cfg` (livecd-iso-to-disk's MBR stick),
  `isolinux/isolinux.cfg`, `extlinux/extlinux.conf`, and the same under `boot/` or at the top;
  `KERNEL`/`LINUX` name the kernel, `INITRD` or `initrd=` in `APPEND` the initrd; a name without a
  leading `/` is relative to the configuration's directory (SYSLINUX's working directory);
  `INCLUDE` and `MENU INCLUDE` are followed;
- GRUB: `EFI/*/grub.cfg` (livecd-iso-to-disk's `--efi` stick: `EFI/BOOT/grub.cfg`),
  `boot/grub/grub.cfg`, `boot/grub2/grub.cfg`; `linux`/`linuxefi`/`linux16` and
  `initrd`/`initrdefi`/`initrd16`, names from the top of the stick, a `($root)` or `(hd0,1)` before
  them allowed.
An entry whose names hold a variable (`$isofile`) or another device (`(loop)/…`) boots something
else and is left alone; so is an entry naming `*.prev` files (a fallback entry; README).
"""

from __future__ import annotations

import re
from pathlib import Path

from pylive.errors import LiveError, one_line
from pylive.record import record

SYSLINUX_CONFIGS = ("syslinux/syslinux.cfg", "boot/syslinux/syslinux.cfg", "syslinux.cfg",
                    "isolinux/isolinux.cfg", "boot/isolinux/isolinux.cfg", "isolinux.cfg",
                    "extlinux/extlinux.conf", "boot/extlinux/extlinux.conf", "extlinux.conf")
GRUB_CONFIGS = ("EFI/*/grub.cfg", "boot/grub/grub.cfg", "boot/grub2/grub.cfg")
FALLBACK_SUFFIX = ".prev"
_INCLUDE_DEPTH = 4
_GRUB_DEVICE = re.compile(r"^\(([^)]*)\)")


@record
class Entry:
    config: str                 # the configuration file, relative to the top of the stick
    title: str                  # the label or menu entry
    kernel: str                 # relative to the top of the stick (not checked to exist)
    initrds: tuple[str, ...]


@record
class Skipped:
    config: str
    title: str
    why: str


def find_ci(top: Path, rel: str) -> Path | None:
    """`top`/`rel`, each name matched exactly or else regardless of case (a vfat stick's names); None if absent."""
    here = top
    for name in (p for p in rel.split("/") if p and p != "."):
        if name == "..":
            return None  # never outside the stick
        exact = here / name
        if exact.exists() or exact.is_symlink():
            here = exact
            continue
        if not here.is_dir():
            return None
        matches = [c for c in here.iterdir() if c.name.lower() == name.lower()]
        if not matches:
            return None
        here = sorted(matches)[0]
    return here


def config_files(top: Path) -> list[str]:
    """The boot loader configurations on the stick, relative to its top."""
    found: list[str] = []
    for rel in SYSLINUX_CONFIGS + GRUB_CONFIGS:
        if "*" in rel:
            efi = find_ci(top, rel.split("/")[0])
            if efi is not None and efi.is_dir():
                for d in sorted(efi.iterdir()):
                    cfg = find_ci(d, rel.rsplit("/", 1)[1])
                    if cfg is not None and cfg.is_file():
                        found.append(str(cfg.relative_to(top)))
            continue
        path = find_ci(top, rel)
        if path is not None and path.is_file():
            found.append(str(path.relative_to(top)))
    return list(dict.fromkeys(found))


def _read(top: Path, rel: str) -> str:
    try:
        return (top / rel).read_text(errors="replace")
    except OSError as e:
        raise LiveError(f"{one_line(rel)} on the stick cannot be read: {e.strerror}",
                        "check the stick (fsck)") from None


def _syslinux_path(cfg_dir: str, name: str) -> str:
    return name.lstrip("/") if name.startswith("/") else f"{cfg_dir}/{name}".lstrip("/")


def syslinux_entries(top: Path, rel: str, depth: int = 0) -> tuple[list[Entry], list[Skipped]]:  # noqa: PLR0912 - a branch per keyword
    """The labels of a SYSLINUX-family configuration that boot a kernel with an initrd."""
    cfg_dir = rel.rpartition("/")[0]
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    blocks: list[dict[str, str]] = [{"title": "(before any LABEL)"}]
    for raw in _read(top, rel).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, arg = line.partition(" ")
        word, arg = word.lower(), arg.strip()
        if word == "menu" and arg.lower().startswith("include "):
            word, arg = "include", arg[8:].strip()
        if word == "label":
            blocks.append({"title": arg})
        elif word in ("kernel", "linux"):
            blocks[-1]["kernel"] = arg.split()[0] if arg else ""
        elif word == "initrd":
            blocks[-1]["initrd"] = arg.split()[0] if arg else ""
        elif word == "append":
            for token in arg.split():
                if token.startswith("initrd="):
                    blocks[-1]["initrd"] = token[7:]
        elif word == "include" and arg and depth < _INCLUDE_DEPTH:
            inc = find_ci(top, _syslinux_path(cfg_dir, arg.split()[0]))
            if inc is not None and inc.is_file():
                more, more_skipped = syslinux_entries(top, str(inc.relative_to(top)), depth + 1)
                entries += more
                skipped += more_skipped
    default_initrd = blocks[0].get("initrd", "")
    for block in blocks:
        kernel = block.get("kernel", "")
        initrd = block.get("initrd", default_initrd)
        if not kernel or not initrd or kernel.lower().endswith((".c32", ".com", ".bin", ".0")):
            continue  # a menu module, a chain loader, memtest: no kernel with an initramfs
        entries.append(Entry(rel, block["title"], _syslinux_path(cfg_dir, kernel),
                             tuple(_syslinux_path(cfg_dir, i) for i in initrd.split(",") if i)))
    return entries, skipped


def _grub_path(word: str) -> str | None:
    """A GRUB file name as a path from the top of the stick; None when it names something else."""
    m = _GRUB_DEVICE.match(word)
    if m:
        if m[1] not in ("$root", "${root}") and not re.fullmatch(r"hd\d+(,\w+)?", m[1]):
            return None  # (loop), (memdisk), (cd): not the stick's filesystem
        word = word[m.end():]
    if "$" in word or not word:
        return None
    return word.lstrip("/")


def grub_entries(top: Path, rel: str) -> tuple[list[Entry], list[Skipped]]:
    """The menu entries of a grub.cfg that boot a kernel with an initrd (submenus included)."""
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    title, kernel, initrds = "(outside any menuentry)", "", ""
    for raw in _read(top, rel).splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        m = re.match(r"menuentry\s+(['\"])(.*?)\1", line)
        if m or line.startswith("menuentry "):
            title, kernel, initrds = (m[2] if m else line.split()[1]), "", ""
            continue
        word, _, arg = line.partition(" ")
        if word in ("linux", "linuxefi", "linux16"):
            kernel = arg.split()[0] if arg.split() else ""
        elif word in ("initrd", "initrdefi", "initrd16"):
            initrds = arg
        else:
            continue
        if not kernel or not initrds:
            continue
        paths = [_grub_path(w) for w in (kernel, *initrds.split())]
        if any(p is None for p in paths):
            skipped.append(Skipped(rel, title, f"names {one_line(kernel)} {one_line(initrds)}, not files on the stick"))
        else:
            entries.append(Entry(rel, title, str(paths[0]), tuple(str(p) for p in paths[1:])))
        kernel, initrds = "", ""
    return entries, skipped


def boot_entries(top: Path) -> tuple[list[str], list[Entry], list[Skipped]]:
    """(configurations found, entries that boot a kernel with an initrd from the stick, entries left alone)."""
    configs = config_files(top)
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for rel in configs:
        more, more_skipped = (grub_entries if rel.lower().endswith("grub.cfg") else syslinux_entries)(top, rel)
        for e in more:
            if any(p.endswith(FALLBACK_SUFFIX) for p in (e.kernel, *e.initrds)):
                skipped.append(Skipped(rel, e.title, "a fallback entry (its files are the *.prev pair)"))
            else:
                entries.append(e)
        skipped += more_skipped
    return configs, entries, skipped

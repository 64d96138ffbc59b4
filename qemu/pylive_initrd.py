"""Initramfs images that boot through pylive: the system's dracut plus our module, no install.

dracut.sh honours the `dracutbasedir` environment variable, so a private tree of symlinks (the
system's modules.d plus dracut-module/90pylive) lets us build without touching /usr/lib/dracut.
The module reads the Nuitka dist from $PYLIVE_DIST.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import BUILD_DIR, REPO_ROOT
from ._util import HarnessError, serialized
from .initrd import build_initrd
from .kernel import Kernel

SYSTEM_DRACUT = Path("/usr/lib/dracut")
MODULE_DIR = REPO_ROOT / "dracut-module" / "90pylive"
DIST = BUILD_DIR / "pylive.dist"
# dracut modules that make up the systemd flavour of the initramfs
SYSTEMD_MODULES = ("systemd", "systemd-initrd", "dracut-systemd")


@serialized
def ensure_dracut_base(dest: Path = BUILD_DIR / "dracut-base") -> Path:
    """A dracutbasedir with the system's files and modules plus ours (rebuilt when out of date)."""
    want = {p.name: p for p in SYSTEM_DRACUT.iterdir() if p.name != "modules.d"}
    modules = {p.name: p for p in (SYSTEM_DRACUT / "modules.d").iterdir()}
    modules["90pylive"] = MODULE_DIR
    current = {p.name: p.readlink() for p in dest.iterdir() if p.is_symlink()} if dest.is_dir() else {}
    current_mods = ({p.name: p.readlink() for p in (dest / "modules.d").iterdir()}
                    if (dest / "modules.d").is_dir() else {})
    if current == want and current_mods == modules:
        return dest
    if dest.exists():
        for p in sorted(dest.rglob("*"), reverse=True):
            p.unlink() if p.is_symlink() or p.is_file() else p.rmdir()
    (dest / "modules.d").mkdir(parents=True, exist_ok=True)
    for name, target in want.items():
        (dest / name).symlink_to(target)
    for name, target in modules.items():
        (dest / "modules.d" / name).symlink_to(target)
    return dest


def build_pylive_initrd(kernel: Kernel, out: Path | None = None, *, systemd: bool = True,
                        extra_modules: tuple[str, ...] = (), dist: Path = DIST) -> Path:
    """dracut's default initramfs (with or without systemd) with `pylive` added."""
    if not (dist / "pylive").is_file():
        raise HarnessError(f"no pylive binary in {dist}: run `make binary` first")
    flavour = "systemd" if systemd else "nosystemd"
    out = out or BUILD_DIR / "initrd" / f"pylive-{flavour}.img"
    os.environ["PYLIVE_DIST"] = str(dist)
    return build_initrd(
        kernel, out, add_modules=("pylive", *extra_modules),
        omit_modules=() if systemd else SYSTEMD_MODULES,
        dracutbasedir=ensure_dracut_base(), extra_inputs=(dist, MODULE_DIR),
    )

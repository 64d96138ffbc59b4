"""Initramfs images that boot through pylive: the system's dracut plus our module, no install.

dracut.sh honours the `dracutbasedir` environment variable, so a private tree of symlinks (the
system's modules.d plus dracut-module/90pylive) lets us build without touching /usr/lib/dracut.
The module reads the Nuitka dists from $PYLIVE_DIST (the base one) and $PYLIVE_NET_DIST (the full one,
installed instead when pylive-net is in the image).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import BUILD_DIR, REPO_ROOT
from ._util import HarnessError, run, serialized
from .initrd import build_initrd
from .kernel import Kernel

SYSTEM_DRACUT = Path("/usr/lib/dracut")
MODULE_DIR = REPO_ROOT / "dracut-module" / "90pylive"
NET_MODULE_DIR = REPO_ROOT / "dracut-module" / "90pylive-net"
# The network modules (Debian's dracut-network), unpacked into the build tree rather than installed: an
# installed dracut-network would change every other --no-hostonly image the tests build.
NETWORK_DEB_DIR = BUILD_DIR / "dracut-network"
DIST = BUILD_DIR / "pylive.dist"  # without the network code
NET_DIST = BUILD_DIR / "pylive-net.dist"  # everything: what an image with pylive-net gets
# dracut modules that make up the systemd flavour of the initramfs
SYSTEMD_MODULES = ("systemd", "systemd-initrd", "dracut-systemd")


def network_modules() -> Path:
    """modules.d of dracut-network: the system's when it is installed, else the package unpacked here."""
    if (SYSTEM_DRACUT / "modules.d" / "40network").is_dir():
        return SYSTEM_DRACUT / "modules.d"
    mods = NETWORK_DEB_DIR / "usr/lib/dracut/modules.d"
    if not (mods / "40network").is_dir():
        NETWORK_DEB_DIR.mkdir(parents=True, exist_ok=True)
        run(["apt-get", "download", "dracut-network"], cwd=NETWORK_DEB_DIR)
        debs = sorted(NETWORK_DEB_DIR.glob("dracut-network_*.deb"))
        if not debs:
            raise HarnessError("apt-get download dracut-network gave no package")
        run(["dpkg-deb", "-x", debs[-1], NETWORK_DEB_DIR])
    return mods


@serialized
def ensure_dracut_base(dest: Path = BUILD_DIR / "dracut-base", *, net: bool = False) -> Path:
    """A dracutbasedir with the system's files and modules plus ours (rebuilt when out of date);
    net: also dracut-network's modules and pylive-net (a tree of its own, so the others stay as they are)."""
    want = {p.name: p for p in SYSTEM_DRACUT.iterdir() if p.name != "modules.d"}
    modules = {p.name: p for p in (SYSTEM_DRACUT / "modules.d").iterdir()}
    modules["90pylive"] = MODULE_DIR
    if net:
        modules.update({p.name: p for p in network_modules().iterdir()})
        modules["90pylive-net"] = NET_MODULE_DIR
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
                        extra_modules: tuple[str, ...] = (), dist: Path = DIST, net: bool = False,
                        net_dist: Path = NET_DIST) -> Path:
    """dracut's default initramfs (with or without systemd) with `pylive` added (the base dist); net: with
    `pylive-net` (the full dist) and the network handler of the flavour (systemd-networkd, or
    network-legacy without systemd)."""
    for d in (dist, *((net_dist,) if net else ())):
        if not (d / "pylive").is_file():
            raise HarnessError(f"no pylive binary in {d}: run `make binary` first")
    flavour = "systemd" if systemd else "nosystemd"
    out = out or BUILD_DIR / "initrd" / f"pylive-{flavour}.img"
    os.environ["PYLIVE_DIST"] = str(dist)
    os.environ["PYLIVE_NET_DIST"] = str(net_dist)
    if net:
        extra_modules = ("pylive-net", "systemd-networkd" if systemd else "network-legacy", *extra_modules)
    base = ensure_dracut_base(BUILD_DIR / "dracut-base-net", net=True) if net else ensure_dracut_base()
    return build_initrd(
        kernel, out, add_modules=("pylive", *extra_modules),
        omit_modules=() if systemd else SYSTEMD_MODULES,
        dracutbasedir=base, extra_inputs=(dist, MODULE_DIR, *((net_dist, NET_MODULE_DIR) if net else ())),
    )

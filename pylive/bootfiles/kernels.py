"""The newest kernel in the live root and the initramfs built for it.

Where distributions put them:
- Fedora: /lib/modules/<ver>/vmlinuz (the package's copy) and /boot/vmlinuz-<ver> (kernel-install's),
  the initramfs in /boot/initramfs-<ver>.img;
- Debian and Ubuntu: /boot/vmlinuz-<ver> and /boot/initrd.img-<ver>;
- openSUSE: /boot/vmlinuz-<ver> and /boot/initrd-<ver>.
Rescue kernels (vmlinuz-0-rescue-<machine-id>) are not updates and are left out. The newest kernel
is the one the update installed; when it has no initramfs yet, that is an error (the initramfs is
what finds the live medium), never a silent fall back to an older pair.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pylive.bootfiles.version import vercmp
from pylive.errors import LiveError, one_line
from pylive.record import record

MODULE_DIRS = ("lib/modules", "usr/lib/modules")


@record
class KernelPair:
    version: str
    kernel: str     # absolute paths in the live root
    initramfs: str


def initramfs_names(version: str) -> tuple[str, ...]:
    """Where the initramfs for `version` may be, in the order they are tried (relative to the root)."""
    return (f"boot/initramfs-{version}.img", f"boot/initrd.img-{version}", f"boot/initrd-{version}",
            *(f"{d}/{version}/initramfs.img" for d in MODULE_DIRS))


def kernels(root: Path) -> dict[str, str]:
    """Installed kernels: version → the kernel's path relative to `root` (/boot's copy first)."""
    found: dict[str, str] = {}
    boot = root / "boot"
    if boot.is_dir():
        for f in sorted(boot.glob("vmlinuz-*")):
            version = f.name.removeprefix("vmlinuz-")
            if f.is_file() and version and "-rescue-" not in f.name and not version.endswith((".hmac", ".prev")):
                found.setdefault(version, f"boot/{f.name}")
    for d in MODULE_DIRS:
        top = root / d
        if top.is_dir():  # on a merged /usr both name the same directory: the first name is kept
            for f in sorted(top.glob("*/vmlinuz")):
                if f.is_file():
                    found.setdefault(f.parent.name, f"{d}/{f.parent.name}/vmlinuz")
    return found


def newest(root: Path) -> KernelPair:
    """The newest installed kernel and its initramfs; LiveError when there is none, or no initramfs."""
    found = kernels(root)
    if not found:
        raise LiveError("no kernel found in the live root (looked for /boot/vmlinuz-<version> and "
                        "/lib/modules/<version>/vmlinuz)",
                        "install one (dnf install kernel, apt install linux-image-…)")
    version = max(found, key=functools.cmp_to_key(vercmp))
    for name in initramfs_names(version):
        if (root / name).is_file():
            return KernelPair(version, "/" + found[version], "/" + name)
    looked = " and ".join(f"/{one_line(n)}" for n in initramfs_names(version)[:2])
    raise LiveError(f"the newest kernel, {one_line(version)} (/{one_line(found[version])}), has no initramfs "
                    f"(looked for {looked})",
                    f"build it inside the live system: dracut --force --no-hostonly --kver {one_line(version)}")

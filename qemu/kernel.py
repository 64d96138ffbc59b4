"""Fetch and unpack the current Debian guest kernel (linux-image-amd64).

The host kernel has no device-mapper, so the guest boots a Debian kernel that
is downloaded with ``apt-get download`` (never pinned: the archive keeps only
the current version), extracted with ``dpkg -x`` and indexed with ``depmod``.

Cache layout (under ``<cache>/kernel/``)::

    debs/<package>_<ver>_amd64.deb
    <package>/root/boot/vmlinuz-<kver>
    <package>/root/lib/modules/<kver>/...
    <package>/kernel.json          # written last: marks a complete extraction
    current.json                   # the package last resolved online
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ._util import HarnessError, log, run, serialized, which

METAPACKAGE = "linux-image-amd64"


@dataclass(frozen=True)
class Kernel:
    version: str     # e.g. "6.1.0-56-amd64"
    vmlinuz: Path
    moddir: Path     # the .../lib/modules directory that contains <version>/

    @property
    def module_dir(self) -> Path:
        return self.moddir / self.version


def _resolve_package() -> str:
    """Name of the real kernel package the metapackage depends on right now."""
    proc = run(["apt-cache", "depends", METAPACKAGE], check=False, quiet=True)
    if proc.returncode == 0:
        for line in proc.stdout.splitlines():
            m = re.match(r"\s*\|?Depends:\s*(linux-image-\S+)", line)
            if m and not m.group(1).startswith("<"):
                return m.group(1)
    raise HarnessError(
        f"cannot resolve {METAPACKAGE} with apt-cache (run apt-get update?):\n"
        f"{proc.stdout}{proc.stderr}")


def _load(meta: Path) -> Kernel | None:
    try:
        d = json.loads(meta.read_text())
        k = Kernel(d["version"], Path(d["vmlinuz"]), Path(d["moddir"]))
    except (OSError, ValueError, KeyError):
        return None
    if k.vmlinuz.is_file() and (k.module_dir / "modules.dep").is_file():
        return k
    return None


def _cached_kernels(kdir: Path) -> list[Kernel]:
    found = []
    for meta in sorted(kdir.glob("*/kernel.json"), key=lambda p: p.stat().st_mtime):
        k = _load(meta)
        if k:
            found.append(k)
    return found


def _extract(pkg: str, kdir: Path) -> Kernel:
    debs = kdir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    candidates = sorted(debs.glob(f"{pkg}_*.deb"))
    if not candidates:
        run(["apt-get", "download", pkg], cwd=debs)
        candidates = sorted(debs.glob(f"{pkg}_*.deb"))
        if not candidates:
            raise HarnessError(f"apt-get download {pkg} produced no .deb in {debs}")
    deb = candidates[-1]
    pdir = kdir / pkg
    tmp = kdir / f".{pkg}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "root").mkdir(parents=True)
    run(["dpkg-deb", "-x", deb, tmp / "root"])
    root = tmp / "root"
    # Debian 12 ships /lib/modules; be tolerant of a merged-/usr layout too.
    moddirs = [d for d in (root / "lib/modules", root / "usr/lib/modules") if d.is_dir()]
    if not moddirs:
        raise HarnessError(f"{deb}: no lib/modules directory")
    versions = sorted(p.name for p in moddirs[0].iterdir() if p.is_dir())
    if len(versions) != 1:
        raise HarnessError(f"{deb}: expected one kernel version, found {versions}")
    version = versions[0]
    vmlinuz = root / "boot" / f"vmlinuz-{version}"
    if not vmlinuz.is_file():
        raise HarnessError(f"{deb}: {vmlinuz.name} missing")
    # depmod -b <base> looks in <base>/lib/modules/<version>
    run(["depmod", "-b", moddirs[0].parent.parent, version])
    if pdir.exists():
        shutil.rmtree(pdir)
    tmp.rename(pdir)
    rel_moddir = moddirs[0].relative_to(tmp)
    k = Kernel(version, pdir / "root" / "boot" / f"vmlinuz-{version}", pdir / rel_moddir)
    (pdir / "kernel.json").write_text(json.dumps(
        {"package": pkg, "deb": deb.name, **{k_: str(v) for k_, v in asdict(k).items()}},
        indent=2) + "\n")
    # keep only the current kernel (.deb and extraction: ~470 MB each)
    for old in debs.glob("*.deb"):
        if old != deb:
            old.unlink()
    for old_meta in kdir.glob("*/kernel.json"):
        if old_meta.parent != pdir:
            shutil.rmtree(old_meta.parent, ignore_errors=True)
    return k


@serialized
def ensure_kernel(cache: Path) -> Kernel:
    """Return the current Debian kernel, downloading/extracting it if needed.

    Works offline when the cache is warm: if apt cannot resolve or download the
    package but an extracted kernel exists in the cache, that one is used.
    """
    cache = Path(cache).resolve()
    kdir = cache / "kernel"
    kdir.mkdir(parents=True, exist_ok=True)
    try:
        pkg = _resolve_package()
    except HarnessError as exc:
        cached = _cached_kernels(kdir)
        if cached:
            log(f"apt resolution failed, using cached kernel {cached[-1].version}: {exc}")
            return cached[-1]
        raise
    k = _load(kdir / pkg / "kernel.json")
    if k:
        return k
    for tool in ("apt-get", "dpkg-deb", "depmod"):
        if not which(tool):
            raise HarnessError(f"{tool} not found")
    try:
        k = _extract(pkg, kdir)
    except HarnessError as exc:
        cached = _cached_kernels(kdir)
        if cached:
            log(f"fetching {pkg} failed, using cached kernel {cached[-1].version}: {exc}")
            return cached[-1]
        raise
    log(f"kernel {k.version} ready: {k.vmlinuz}")
    return k


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m qemu.kernel", description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("build/cache"))
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    k = ensure_kernel(args.cache)
    if args.json:
        print(json.dumps({k_: str(v) for k_, v in asdict(k).items()}, indent=2))
    else:
        print(f"version: {k.version}")
        print(f"vmlinuz: {k.vmlinuz}")
        print(f"moddir:  {k.moddir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

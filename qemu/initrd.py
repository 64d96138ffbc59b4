"""Build dracut initramfs images for the guest kernel.

``build_initrd`` runs the host's dracut against the extracted Debian kernel
(``--kmoddir``), non-hostonly, and caches the result by a hash of its inputs
(dracut version, kernel, arguments, the dracut module tree, extra input files).
dracut's output goes to ``<out>.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._util import HarnessError, digest, log, run, serialized, which
from .kernel import Kernel, ensure_kernel

# The drivers the guest needs: CD-ROM on virtio-scsi or AHCI, virtio disks, NIC and RNG, the live stack
# and the filesystems the test media use. The test images hold these drivers only (dracut --drivers),
# not the ~100 MB of every storage and filesystem driver a --no-hostonly image carries: under TCG the
# kernel spends seconds unpacking those on every boot (4-5 s measured), for hardware QEMU does not have.
# Both initramfs kinds and the stock dmsquash-live image are built with the same list.
GUEST_DRIVERS = (
    "virtio_scsi", "virtio_blk", "virtio_pci", "virtio_net", "virtio_rng", "sr_mod", "sd_mod", "cdrom",
    "ahci", "libahci", "ata_piix",
    "squashfs", "loop", "iso9660", "ext4", "erofs", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859_1", "nls_utf8",
    "dm_snapshot", "dm_mod", "dm_thin_pool", "overlay",
)
DEFAULT_DRACUTBASEDIR = Path("/usr/lib/dracut")


def _dracut_version() -> str:
    proc = run(["dracut", "--version"], check=False, quiet=True)
    return str(proc.stdout + proc.stderr).strip()


@serialized
def build_initrd(kernel: Kernel, out: Path, *, add_modules: Sequence[str] = (),
                 omit_modules: Sequence[str] = (), dracutbasedir: Path | None = None,
                 extra_args: Sequence[str] = (), add_drivers: Sequence[str] = GUEST_DRIVERS,
                 host_config: bool = False, extra_inputs: Sequence[Path] = (),
                 use_cache: bool = True) -> Path:
    """Run dracut for ``kernel`` and write the initramfs to ``out``.

    dracut --force --no-hostonly --kver V --kmoddir <moddir>/V
           [--drivers GUEST_DRIVERS] [--add M]... [--omit M]... [extra_args] out

    ``add_drivers`` are the only drivers of dracut's kernel-modules module (``--drivers``); the
    modules' own (pylive's squashfs, loop, …) come in beside them. Empty: dracut's whole set.

    ``dracutbasedir``: exported as ``dracutbasedir=`` (dracut.sh then loads its
    functions and modules.d from there). ``host_config=False`` isolates the
    build from /etc/dracut.conf{,.d} (``--conf /dev/null --confdir <empty>``).
    ``extra_inputs``: more files/dirs whose content goes into the cache key
    (e.g. the binary a module installs from outside the module tree).
    """
    if not which("dracut"):
        raise HarnessError("dracut not found")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    logfile = out.with_name(out.name + ".log")
    basedir = Path(dracutbasedir).resolve() if dracutbasedir else None
    kmoddir = kernel.moddir / kernel.version

    cmd: list[str] = ["dracut", "--force", "--no-hostonly", "--kver", kernel.version,
                      "--kmoddir", str(kmoddir)]
    if not host_config:
        empty = out.parent / ".dracut-empty-confdir"
        empty.mkdir(exist_ok=True)
        cmd += ["--conf", "/dev/null", "--confdir", str(empty)]
    if add_drivers:
        cmd += ["--drivers", " ".join(add_drivers)]
    for m in add_modules:
        cmd += ["--add", m]
    for m in omit_modules:
        cmd += ["--omit", m]
    cmd += [str(a) for a in extra_args]
    cmd.append(str(out))
    env = {"dracutbasedir": str(basedir)} if basedir else {}

    tree = basedir or DEFAULT_DRACUTBASEDIR
    key = digest(["initrd-v2", _dracut_version(), kernel.version, str(kernel.vmlinuz),
                  kernel.vmlinuz.stat().st_size, cmd, env, host_config],
                 [tree / "modules.d", tree / "dracut-functions.sh", tree / "dracut-init.sh",
                  *(Path(p) for p in extra_inputs)]
                 + ([Path("/etc/dracut.conf"), Path("/etc/dracut.conf.d")]
                    if host_config else []),
                 follow_symlinks=True)
    stamp = out.with_name(out.name + ".json")
    if use_cache and out.is_file():
        try:
            if json.loads(stamp.read_text()).get("key") == key:
                log(f"initrd cached: {out}")
                return out
        except (OSError, ValueError):
            pass

    stamp.unlink(missing_ok=True)
    logfile.unlink(missing_ok=True)
    run(cmd, env=env, logfile=logfile)
    if not out.is_file():
        raise HarnessError(f"dracut did not produce {out}; see {logfile}")
    stamp.write_text(json.dumps({"key": key, "cmd": cmd, "env": env,
                                 "size": out.stat().st_size}, indent=2) + "\n")
    log(f"initrd ready: {out} ({out.stat().st_size} bytes)")
    return out


def list_initrd(initrd: Path) -> str:
    """File listing of an initramfs (lsinitrd), for debugging."""
    return str(run(["lsinitrd", initrd], quiet=True).stdout)


def main(argv: list[str] | None = None) -> int:
    from . import BUILD_DIR, CACHE_DIR
    ap = argparse.ArgumentParser(prog="python3 -m qemu.initrd", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=CACHE_DIR)
    ap.add_argument("--add", action="append", default=[])
    ap.add_argument("--omit", action="append", default=[])
    ap.add_argument("--dracutbasedir", type=Path)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("extra", nargs="*", help="extra dracut arguments (after --)")
    args = ap.parse_args(argv)
    del BUILD_DIR
    k = ensure_kernel(args.cache)
    p = build_initrd(k, args.out, add_modules=args.add, omit_modules=args.omit,
                     dracutbasedir=args.dracutbasedir, extra_args=args.extra,
                     use_cache=not args.no_cache)
    print(f"{p} {os.path.getsize(p)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def with_extra_files(initrd: Path, files: dict[str, Path], out: Path) -> Path:
    """``initrd`` followed by an uncompressed cpio (newc) holding ``files`` (name at the top of the
    initramfs → source). The kernel unpacks both; the second must start 4-byte aligned, so the first
    is padded with zeros, which the kernel skips."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in files.items():
            shutil.copyfile(src, Path(tmp) / name)  # no hard links: cpio would defer their data
        names = "".join(f"{n}\n" for n in files).encode()
        archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=names, cwd=tmp, capture_output=True,
                                 check=True).stdout
    base = Path(initrd).read_bytes()
    out.write_bytes(base + bytes(-len(base) % 512) + archive)
    return out

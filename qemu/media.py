"""Build the guest's test root tree and LiveOS boot media.

Layouts are built from small composable steps so that more of them can be
added later (uncompressed ``LiveOS/rootfs.img``, flattened squashfs, disk
images with partitions, ...)::

    build_test_root(tree)                         # busybox + dmsetup + init
    make_ext4_image(tree, rootfs.img, 64, label)  # LiveOS/rootfs.img
    make_squashfs(srcdir, squashfs.img)           # LiveOS/squashfs.img
    make_iso(isoroot, out.iso, label)             # ISO9660, volume id = label

Every public builder is cached: it rebuilds only when a hash of its inputs
(the tree's content, parameters, and this file plus the guest init) changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ._util import HarnessError, digest, log, run, which

HERE = Path(__file__).resolve().parent
GUEST_INIT = HERE / "guest" / "init.sh"
DEFAULT_LABEL = "PYLIVE TEST 1"
ROOTFS_LABEL = "pylive-root"
# Tools copied (with their shared libraries) into the test root, and where.
COPIED_TOOLS = {"dmsetup": "sbin/dmsetup", "losetup": "sbin/losetup",
                "blockdev": "sbin/blockdev"}
OS_RELEASE = (
    'NAME="pylive test root"\nID=pylive-test\nPRETTY_NAME="pylive test root"\n'
    'VERSION_ID=1\n')


@dataclass(frozen=True)
class Media:
    path: Path
    label: str            # blkid LABEL of the medium
    uuid: str             # blkid UUID (ISO9660: e.g. 2026-11-26-14-40-00-00)
    fstype: str = "iso9660"
    layout: str = "squashfs-rootfs"   # LiveOS/squashfs.img containing LiveOS/rootfs.img
    rootfs_label: str = ROOTFS_LABEL  # label of the ext4 LiveOS/rootfs.img


# --------------------------------------------------------------------------
# busybox

def _is_static(binary: Path) -> bool:
    proc = run(["ldd", binary], check=False, quiet=True)
    text = proc.stdout + proc.stderr
    return "not a dynamic executable" in text or "statically linked" in text


def static_busybox(cache: Path | None = None) -> Path:
    """Path of a statically linked busybox.

    Uses the host's /bin/busybox if it is static (busybox-static installed),
    else downloads the busybox-static .deb into ``<cache>/busybox-static`` and
    extracts it (busybox-static conflicts with Debian's busybox package, so it
    is not installed on the host).
    """
    for cand in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if cand.is_file() and _is_static(cand):
            return cand
    if cache is None:
        from . import CACHE_DIR
        cache = CACHE_DIR
    bdir = Path(cache).resolve() / "busybox-static"
    extracted = bdir / "root" / "bin" / "busybox"
    if extracted.is_file():
        return extracted
    bdir.mkdir(parents=True, exist_ok=True)
    debs = sorted(bdir.glob("busybox-static_*.deb"))
    if not debs:
        run(["apt-get", "download", "busybox-static"], cwd=bdir)
        debs = sorted(bdir.glob("busybox-static_*.deb"))
        if not debs:
            raise HarnessError("apt-get download busybox-static produced no .deb")
    tmp = bdir / "root.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    run(["dpkg-deb", "-x", debs[-1], tmp])
    shutil.rmtree(bdir / "root", ignore_errors=True)
    tmp.rename(bdir / "root")
    if not extracted.is_file() or not _is_static(extracted):
        raise HarnessError(f"{extracted} missing or not static")
    return extracted


# --------------------------------------------------------------------------
# test root tree

def _shared_libs(binary: Path) -> list[Path]:
    """The shared libraries and the dynamic loader of a binary, via ldd."""
    proc = run(["ldd", binary], check=False, quiet=True)
    if "not a dynamic executable" in proc.stdout + proc.stderr:
        return []
    if proc.returncode != 0:
        raise HarnessError(f"ldd {binary} failed: {proc.stderr}")
    libs = []
    for raw in proc.stdout.splitlines():
        line = raw.strip()
        m = re.match(r"\S+\s+=>\s+(/\S+)\s+\(", line)     # libx.so.1 => /lib/.. (0x..)
        if not m:
            m = re.match(r"(/\S+)\s+\(", line)             # /lib64/ld-linux-x86-64.so.2 (0x..)
        if m:
            libs.append(Path(m.group(1)))
        elif "=>" in line and "not found" in line:
            raise HarnessError(f"ldd {binary}: {line}")
    return libs


def _copy_file(src: Path, dest_root: Path, rel: str) -> None:
    dst = dest_root / rel.lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    shutil.copy2(os.path.realpath(src), dst)   # dereference: the file itself


def build_test_root(dest: Path, *, init_script: Path | None = None,
                    busybox: Path | None = None) -> Path:
    """(Re)create the tiny root filesystem tree at ``dest`` and return it.

    Content: static busybox with applet symlinks, dmsetup/losetup/blockdev with
    their shared libraries and the dynamic loader, ``/sbin/init`` = the guest
    init (qemu/guest/init.sh), /etc/os-release (systemd's switch-root refuses a
    root without it) and empty proc sys dev run tmp mnt.
    """
    dest = Path(dest)
    init_script = Path(init_script) if init_script else GUEST_INIT
    busybox = Path(busybox) if busybox else static_busybox()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev",
              "run", "tmp", "mnt", "root", "var"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)

    shutil.copy2(busybox, dest / "bin/busybox")
    os.chmod(dest / "bin/busybox", 0o755)
    proc = run([busybox, "--list-full"], quiet=True)
    skip = {"sbin/init", "linuxrc", "bin/busybox"} | set(COPIED_TOOLS.values())
    skip_names = set(COPIED_TOOLS)
    for rel in sorted(set(proc.stdout.split())):
        if rel in skip or Path(rel).name in skip_names:
            continue
        link = dest / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and not link.is_symlink():
            link.symlink_to("/bin/busybox")

    for tool, rel in COPIED_TOOLS.items():
        src = which(tool)
        if not src:
            raise HarnessError(f"{tool} not found on the host")
        _copy_file(Path(src), dest, rel)
        for lib in _shared_libs(Path(src)):
            _copy_file(lib, dest, str(lib))

    (dest / "etc/os-release").write_text(OS_RELEASE)
    (dest / "etc/hostname").write_text("pylive-test\n")
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\n")
    shutil.copyfile(init_script, dest / "sbin/init")
    os.chmod(dest / "sbin/init", 0o755)
    return dest


def default_root_tree(build_dir: Path | None = None) -> Path:
    """Build the default test root under ``<build>/test-root``."""
    if build_dir is None:
        from . import BUILD_DIR
        build_dir = BUILD_DIR
    return build_test_root(Path(build_dir) / "test-root")


# --------------------------------------------------------------------------
# filesystem images

def make_ext4_image(tree: Path, out: Path, size_mb: int, label: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", tree, out, f"{size_mb}M"])
    return out


def make_squashfs(srcdir: Path, out: Path, *, comp: str = "xz") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    run(["mksquashfs", srcdir, out, "-noappend", "-no-progress", "-quiet",
         "-comp", comp, "-all-root"])
    return out


def make_iso(isoroot: Path, out: Path, label: str, *,
             date: str | None = None) -> Path:
    """ISO9660 (+Rock Ridge) image with volume id ``label``.

    ``date`` ("YYYY-MM-DD-hh-mm-ss-cc", the form blkid reports as UUID) pins
    the volume dates and so the UUID; by default xorriso uses the current time.
    """
    if len(label) > 32:
        raise ValueError(f"ISO9660 volume id longer than 32 characters: {label!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-o", out, "-V", label,
           "-iso-level", "3", "-R"]
    if date:
        if not re.fullmatch(r"\d{4}(-\d\d){6}", date):
            raise ValueError(f"bad ISO date/UUID {date!r}")
        cmd.append("--modification-date=" + date.replace("-", ""))
    cmd.append(isoroot)
    run(cmd)
    return out


def blkid_probe(path: Path) -> dict[str, str]:
    """Low-level blkid probe of an image file: {'LABEL':..., 'UUID':..., 'TYPE':...}."""
    proc = run(["blkid", "-p", "-o", "export", path], quiet=True)
    info = {}
    for line in proc.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            info[k] = v
    # blkid -o export escapes spaces etc. with a backslash
    return {k: re.sub(r"\\(.)", r"\1", v) for k, v in info.items()}


# --------------------------------------------------------------------------
# caching

def _stamp_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def _cached(out: Path, key: str) -> dict[str, str] | None:
    try:
        meta = json.loads(_stamp_path(out).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(meta, dict) and meta.get("key") == key and out.is_file():
        return {str(k): str(v) for k, v in meta.items()}
    return None


def _write_stamp(out: Path, key: str, meta: dict[str, str]) -> None:
    _stamp_path(out).write_text(json.dumps({"key": key, **meta}, indent=2) + "\n")


def _sources_key() -> list[Path]:
    return [Path(__file__).resolve(), GUEST_INIT]


# --------------------------------------------------------------------------
# layouts

def build_live_iso(out: Path, label: str = DEFAULT_LABEL, work: Path | None = None, *,
                   root_tree: Path, rootfs_mb: int = 64, squashfs_comp: str = "xz",
                   iso_date: str | None = None,
                   rootfs_label: str = ROOTFS_LABEL) -> Media:
    """Classic Fedora live ISO: LiveOS/squashfs.img ⊃ LiveOS/rootfs.img (ext4).

    Rebuilt only when the root tree, the parameters or the harness sources
    changed. Returns the medium with the LABEL/UUID that blkid reports.
    """
    out = Path(out).resolve()
    work = Path(work).resolve() if work else out.parent / (out.stem + ".work")
    key = digest(["live-iso-v1", label, rootfs_mb, squashfs_comp, iso_date, rootfs_label],
                 [root_tree, *_sources_key()])
    meta = _cached(out, key)
    if meta:
        return Media(out, meta["label"], meta["uuid"], meta["fstype"], meta["layout"],
                     meta["rootfs_label"])
    log(f"building live ISO {out} (label {label!r})")
    if work.exists():
        shutil.rmtree(work)
    squash_src = work / "squash-src"
    isoroot = work / "isoroot"
    make_ext4_image(root_tree, squash_src / "LiveOS" / "rootfs.img", rootfs_mb, rootfs_label)
    make_squashfs(squash_src, isoroot / "LiveOS" / "squashfs.img", comp=squashfs_comp)
    make_iso(isoroot, out, label, date=iso_date)
    info = blkid_probe(out)
    if info.get("TYPE") != "iso9660":
        raise HarnessError(f"blkid does not see an iso9660 image in {out}: {info}")
    if info.get("LABEL") != label:
        raise HarnessError(f"blkid LABEL {info.get('LABEL')!r} != requested {label!r}")
    media = Media(out, info["LABEL"], info.get("UUID", ""), "iso9660", "squashfs-rootfs",
                  rootfs_label)
    _write_stamp(out, key, {k: str(v) for k, v in asdict(media).items()})
    shutil.rmtree(work, ignore_errors=True)
    log(f"ISO ready: LABEL={media.label!r} UUID={media.uuid} "
        f"size={out.stat().st_size} bytes")
    return media


def main(argv: list[str] | None = None) -> int:
    from . import BUILD_DIR
    ap = argparse.ArgumentParser(prog="python3 -m qemu.media",
                                 description="build the test root and the default live ISO")
    ap.add_argument("--out", type=Path, default=BUILD_DIR / "media" / "live.iso")
    ap.add_argument("--label", default=DEFAULT_LABEL)
    ap.add_argument("--rootfs-mb", type=int, default=64)
    args = ap.parse_args(argv)
    tree = default_root_tree()
    m = build_live_iso(args.out, args.label, root_tree=tree, rootfs_mb=args.rootfs_mb)
    print(json.dumps({k: str(v) for k, v in asdict(m).items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

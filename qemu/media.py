"""Build the guest's test root tree and LiveOS boot media.

Layouts are built from small composable steps so that more of them can be
added later (uncompressed ``LiveOS/rootfs.img``, flattened squashfs, disk
images with partitions, ...)::

    build_test_root(tree)                         # busybox + dmsetup + init
    make_ext4_image(tree, rootfs.img, 64, label)  # LiveOS/rootfs.img
    make_squashfs(srcdir, squashfs.img)           # LiveOS/squashfs.img
    make_iso(isoroot, out.iso, label)             # ISO9660, volume id = label

Layouts (``Media.layout``): build_live_iso "squashfs-rootfs"; build_flat_iso
"squashfs-flat"; build_erofs_flat_iso "erofs-flat"; build_uncompressed_iso
"uncompressed-rootfs"; build_live_disk "squashfs-rootfs" on a GPT partition
(``Media.fstype`` ext4 or vfat, ``Media.partuuid``/``partlabel`` set).

Every public builder is cached: it rebuilds only when a hash of its inputs
(the tree's content, parameters, and this file plus the guest init) changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import string
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

from ._util import HarnessError, digest, log, quote_cmd, run, serialized, tool_env, which

HERE = Path(__file__).resolve().parent
GUEST_INIT = HERE / "guest" / "init.sh"
DEFAULT_LABEL = "PYLIVE TEST 1"
ROOTFS_LABEL = "pylive-root"
# Tools copied (with their shared libraries) into the test root, and where.
COPIED_TOOLS = {"dmsetup": "sbin/dmsetup", "losetup": "sbin/losetup",
                "blockdev": "sbin/blockdev"}
# Libraries a distribution's root always has: `pylive status` and the watcher, left under /run by the
# initramfs, run on the live root's libc, libm and libz (README, Watching the overlay).
DISTRO_LIBS = ("libz.so.1",)
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
    rootfs_label: str = ROOTFS_LABEL  # label of the ext4 LiveOS/rootfs.img ("" if none)
    partuuid: str = ""    # disk images: GPT partition UUID (lower case, as blkid reports it)
    partlabel: str = ""   # disk images: GPT partition name (PARTLABEL)


# --------------------------------------------------------------------------
# busybox

def _is_static(binary: Path) -> bool:
    proc = run(["ldd", binary], check=False, quiet=True)
    text = proc.stdout + proc.stderr
    return "not a dynamic executable" in text or "statically linked" in text


@serialized
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

def shared_libs(binary: Path) -> list[Path]:
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


@serialized
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
    # Kept when its inputs are unchanged: another test process may be reading the tree.
    tools = [Path(p) for p in (which(t) for t in sorted(COPIED_TOOLS)) if p]
    key = digest(["test-root-v1", OS_RELEASE, sorted(COPIED_TOOLS.items())],
                 [init_script, busybox, Path(__file__).resolve(), *tools], follow_symlinks=True)
    stamp = dest.with_name(dest.name + ".key")
    if dest.is_dir() and stamp.is_file() and stamp.read_text() == key:
        return dest
    stamp.unlink(missing_ok=True)
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
        for lib in shared_libs(Path(src)):
            _copy_file(lib, dest, str(lib))

    for name in DISTRO_LIBS:  # what every distribution's root has, and pylive's binary needs there
        found = [p for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64")
                 if (p := Path(d) / name).exists()]
        if not found:
            raise HarnessError(f"{name} not found on the host")
        _copy_file(found[0].resolve(), dest, str(found[0]))
    (dest / "etc/os-release").write_text(OS_RELEASE)
    (dest / "etc/hostname").write_text("pylive-test\n")
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\n")
    shutil.copyfile(init_script, dest / "sbin/init")
    os.chmod(dest / "sbin/init", 0o755)
    stamp.write_text(key)
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


def sources_key() -> list[Path]:
    """The harness files a built medium depends on, beside its root tree (for cache keys)."""
    return [Path(__file__).resolve(), GUEST_INIT]


# --------------------------------------------------------------------------
# layouts

@serialized
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
                 [root_tree, *sources_key()])
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


# --------------------------------------------------------------------------
# more layouts: flattened squashfs / EROFS, uncompressed rootfs.img, GPT disk

LIVE_PARTLABEL = "pylive-live"          # GPT partition name of build_live_disk
LIVE_DISK_ROOTFS_MB = 64                # size of the ext4 LiveOS/rootfs.img on live disks
GPT_TYPE_LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_TYPE_BASIC_DATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"   # FAT sticks
_MIB = 1 << 20
_UUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://pylive.invalid/qemu/media")
# dracut-ng treats a squashfs/EROFS image as flattened if /usr or /ostree is at its
# top (059 looks for /proc); a root tree needs proc/ anyway.
_FLAT_MARKERS = ("usr", "proc")


def _stable_uuid(*parts: str) -> uuid.UUID:
    """A UUID that depends only on ``parts`` (reproducible disk/partition/fs ids)."""
    return uuid.uuid5(_UUID_NS, "\0".join(parts))


def _media_from_meta(meta: dict[str, str], out: Path) -> Media:
    kw: dict[str, Any] = {f.name: meta[f.name] for f in fields(Media) if f.name in meta}
    kw["path"] = out
    return Media(**kw)


def _begin(out: Path, work: Path, what: str, label: str) -> float:
    """Start a rebuild: drop the stale stamp (a half-written image must never look
    cached) and the work directory."""
    log(f"building {what} {out} (label {label!r})")
    _stamp_path(out).unlink(missing_ok=True)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return time.monotonic()


def _finish(out: Path, key: str, media: Media, work: Path, t0: float) -> Media:
    _write_stamp(out, key, {k: str(v) for k, v in asdict(media).items()})
    shutil.rmtree(work, ignore_errors=True)
    st = out.stat()
    log(f"{media.layout} medium ready ({time.monotonic() - t0:.1f} s): {out} "
        f"TYPE={media.fstype} LABEL={media.label!r} UUID={media.uuid}"
        + (f" PARTUUID={media.partuuid}" if media.partuuid else "")
        + f" size={st.st_size} bytes ({st.st_blocks * 512} allocated)")
    return media


def _paths(out: Path, work: Path | None) -> tuple[Path, Path]:
    out = Path(out).resolve()
    return out, (Path(work).resolve() if work else out.parent / (out.stem + ".work"))


def _check_iso(out: Path, label: str) -> dict[str, str]:
    info = blkid_probe(out)
    if info.get("TYPE") != "iso9660":
        raise HarnessError(f"blkid does not see an iso9660 image in {out}: {info}")
    if info.get("LABEL") != label:
        raise HarnessError(f"blkid LABEL {info.get('LABEL')!r} != requested {label!r}")
    return info


def _blkid_probe_at(path: Path, offset: int) -> dict[str, str]:
    """``blkid -p -O <offset>``: probe a filesystem inside an image (a partition)."""
    proc = run(["blkid", "-p", "-o", "export", "-O", str(offset), path], quiet=True, check=False)
    info: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            info[k] = re.sub(r"\\(.)", r"\1", v)
    return info


def flat_source_tree(root_tree: Path, work: Path) -> Path:
    """The directory to put at the top of a flattened image.

    ``root_tree`` itself if it has ``usr/`` and ``proc/`` (or ``ostree/``
    instead of ``usr/``), else a copy (``cp -a``, under ``work``) with the
    missing ones added as empty directories; ``root_tree`` is never changed.
    """
    root_tree = Path(root_tree)
    missing = [d for d in _FLAT_MARKERS if not (root_tree / d).is_dir()]
    if "usr" in missing and (root_tree / "ostree").is_dir():
        missing.remove("usr")
    if not missing:
        return root_tree
    copy = Path(work) / "flat-src"
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    run(["cp", "-a", "--", f"{root_tree}/.", copy])
    for d in missing:
        (copy / d).mkdir(mode=0o755)
    log(f"flattened image: added empty {', '.join(missing)} to a copy of {root_tree}")
    return copy


def make_erofs(srcdir: Path, out: Path, *, comp: str | None = "lz4hc",
               fs_uuid: str | None = None) -> Path:
    """EROFS image of ``srcdir`` (mkfs.erofs; ``comp`` None = uncompressed).

    erofs-utils 1.5 (Debian 12) offers lz4/lz4hc only; Debian's 6.1 kernel has
    CONFIG_EROFS_FS_ZIP (lz4) but not ZIP_LZMA.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    cmd: list[object] = ["mkfs.erofs", "--quiet", "--all-root"]
    if comp:
        cmd.append(f"-z{comp}")
    if fs_uuid:
        cmd.append(f"-U{fs_uuid}")
    run([*cmd, out, srcdir])
    return out


@serialized
def _cached_iso(out: Path, work: Path | None, key: list[object], root_tree: Path, *, what: str, label: str,
                layout: str, iso_date: str | None, fill: Callable[[Path, Path], object],
                rootfs_label: str = "") -> Media:
    """An ISO of one layout, rebuilt only when ``key``, the root tree or the harness changed:
    ``fill(isoroot, work)`` puts LiveOS/ in isoroot."""
    out, work = _paths(out, work)
    digest_key = digest(key, [root_tree, *sources_key()])
    meta = _cached(out, digest_key)
    if meta:
        return _media_from_meta(meta, out)
    t0 = _begin(out, work, what, label)
    isoroot = work / "isoroot"
    fill(isoroot, work)
    make_iso(isoroot, out, label, date=iso_date)
    info = _check_iso(out, label)
    media = Media(out, label, info.get("UUID", ""), "iso9660", layout, rootfs_label)
    return _finish(out, digest_key, media, work, t0)


def build_flat_iso(out: Path, label: str, work: Path | None = None, *, root_tree: Path,
                   squashfs_comp: str = "xz", iso_date: str | None = None) -> Media:
    """ISO whose LiveOS/squashfs.img is a squashfs of the root tree itself
    (flattened: /usr, /etc, /sbin/init at its top). Layout "squashfs-flat"."""
    def fill(isoroot: Path, work: Path) -> None:
        make_squashfs(flat_source_tree(root_tree, work), isoroot / "LiveOS" / "squashfs.img", comp=squashfs_comp)

    return _cached_iso(out, work, ["flat-iso-v1", label, squashfs_comp, iso_date], root_tree,
                       what="flattened-squashfs ISO", label=label, layout="squashfs-flat", iso_date=iso_date,
                       fill=fill)


def build_erofs_flat_iso(out: Path, label: str, work: Path | None = None, *, root_tree: Path,
                         erofs_comp: str | None = "lz4hc",
                         iso_date: str | None = None) -> Media:
    """Like build_flat_iso, but LiveOS/squashfs.img is an EROFS image of the
    root tree (dracut-ng >= 103 accepts erofs there). Layout "erofs-flat"."""
    def fill(isoroot: Path, work: Path) -> None:
        img = make_erofs(flat_source_tree(root_tree, work), isoroot / "LiveOS" / "squashfs.img", comp=erofs_comp)
        if blkid_probe(img).get("TYPE") != "erofs":
            raise HarnessError(f"blkid does not see erofs in {img}: {blkid_probe(img)}")

    return _cached_iso(out, work, ["erofs-flat-iso-v1", label, erofs_comp, iso_date], root_tree,
                       what="flattened-EROFS ISO", label=label, layout="erofs-flat", iso_date=iso_date, fill=fill)


def build_uncompressed_iso(out: Path, label: str, work: Path | None = None, *,
                           root_tree: Path, rootfs_mb: int = 64, iso_date: str | None = None,
                           rootfs_label: str = ROOTFS_LABEL) -> Media:
    """ISO with LiveOS/rootfs.img (ext4) directly on it and no squashfs
    (livecd-tools ``--skipcompress``). Layout "uncompressed-rootfs"."""
    def fill(isoroot: Path, _work: Path) -> None:
        make_ext4_image(root_tree, isoroot / "LiveOS" / "rootfs.img", rootfs_mb, rootfs_label)

    return _cached_iso(out, work, ["uncompressed-iso-v1", label, rootfs_mb, iso_date, rootfs_label], root_tree,
                       what="uncompressed-rootfs ISO", label=label, layout="uncompressed-rootfs",
                       iso_date=iso_date, fill=fill, rootfs_label=rootfs_label)


@serialized
def make_filler_iso(work: Path, out: Path, label: str, *, root_tree: Path, filler_mib: int) -> Path:
    """A live ISO whose squashfs also holds ``filler_mib`` MiB of random data (LiveOS/filler), so
    that reading the medium takes a while: the media check and the RAM copy benchmark. The
    data does not compress; lz4 keeps mksquashfs quick. Not cached: the caller decides."""
    src = work / "squash-src"
    make_ext4_image(root_tree, src / "LiveOS" / "rootfs.img", 64, ROOTFS_LABEL)
    with open(src / "LiveOS" / "filler", "wb") as fh:
        for _ in range(filler_mib):
            fh.write(os.urandom(_MIB))
    make_squashfs(src, work / "isoroot" / "LiveOS" / "squashfs.img", comp="lz4")
    return make_iso(work / "isoroot", out, label)


# ---- GPT disk image ------------------------------------------------------

def _run_stdin(cmd: list[object], stdin: str) -> subprocess.CompletedProcess[str]:
    argv = [str(c) for c in cmd]
    log(f"$ {quote_cmd(argv)} <<EOF\n{stdin}EOF")
    proc = subprocess.run(argv, input=stdin, env=tool_env(), capture_output=True, text=True,
                          errors="replace", check=False)
    if proc.returncode != 0:
        raise HarnessError(f"command failed (rc={proc.returncode}): {quote_cmd(argv)}\n"
                           + proc.stdout + proc.stderr)
    return proc


def make_gpt_disk(disk: Path, size_mb: int, *, name: str, type_guid: str, partuuid: str,
                  disk_id: str) -> dict[str, Any]:
    """Sparse raw image of ``size_mb`` MiB with a GPT and one partition from
    1 MiB to 1 MiB before the end. Returns the partition as ``sfdisk -J``
    reports it (start/size in 512-byte sectors, type, uuid, name)."""
    if size_mb < 4:
        raise ValueError(f"disk of {size_mb} MiB is too small for a GPT and a partition")
    disk.parent.mkdir(parents=True, exist_ok=True)
    disk.unlink(missing_ok=True)
    with open(disk, "wb") as fh:
        fh.truncate(size_mb * _MIB)
    script = (f"label: gpt\nlabel-id: {disk_id}\nunit: sectors\n"
              f'start=2048, size={(size_mb - 2) * 2048}, type={type_guid}, uuid={partuuid}, '
              f'name="{name}"\n')
    _run_stdin(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "always",
                disk], script)
    table = json.loads(run(["sfdisk", "-J", disk], quiet=True).stdout)["partitiontable"]
    parts = table.get("partitions", [])
    if table.get("label") != "gpt" or len(parts) != 1 or table.get("sectorsize", 512) != 512:
        raise HarnessError(f"unexpected partition table on {disk}: {table}")
    part: dict[str, Any] = parts[0]
    return part


def assemble_gpt_disk(out: Path, partitions: list[Path], names: list[str] | None = None) -> Path:
    """A raw disk with a GPT and one partition per image file, in order (1 MiB aligned), each
    image copied in at its partition's offset. No loop devices, no root."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sizes = [-(-p.stat().st_size // _MIB) * _MIB for p in partitions]
    with open(out, "wb") as fh:
        fh.truncate(2 * _MIB + sum(sizes))
    script, start = "label: gpt\nunit: sectors\n", 2048
    for i, size in enumerate(sizes):
        name = f', name="{names[i]}"' if names else ""
        script += f"start={start}, size={size // 512}{name}\n"
        start += size // 512
    _run_stdin(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", out], script)
    offset = _MIB
    with open(out, "r+b") as fh:
        for part, size in zip(partitions, sizes, strict=True):
            fh.seek(offset)
            with open(part, "rb") as src:
                shutil.copyfileobj(src, fh, 4 * _MIB)
            offset += size
    return out


def _check_fs_label(label: str, fstype: str) -> None:
    limit = {"ext4": 16, "vfat": 11}[fstype]
    if len(label.encode()) > limit:
        raise ValueError(f"{fstype} label longer than {limit} bytes: {label!r}")


@serialized
def build_live_disk(out: Path, label: str, work: Path | None = None, *, root_tree: Path,
                    size_mb: int = 256, fstype: str = "ext4") -> Media:
    """Raw disk image (the classic USB stick): a GPT with one partition
    (PARTLABEL "pylive-live") whose ext4 or vfat filesystem (LABEL ``label``)
    holds LiveOS/squashfs.img ⊃ LiveOS/rootfs.img.

    No loop devices: the filesystem is made in a partition-sized file
    (``mkfs.ext4 -d``; for vfat ``mkfs.vfat`` + :func:`fat_add_tree`) and
    copied into the disk at the partition offset. The disk id, PARTUUID and
    filesystem UUID are derived from the file name and the label, so rebuilds
    keep them. ``Media.uuid`` is the filesystem UUID, ``Media.partuuid`` the
    partition's. Layout "squashfs-rootfs" (the content), ``fstype`` ext4/vfat.
    """
    if fstype not in ("ext4", "vfat"):
        raise ValueError(f"fstype must be 'ext4' or 'vfat', not {fstype!r}")
    _check_fs_label(label, fstype)
    out, work = _paths(out, work)
    key = digest(["live-disk-v1", label, size_mb, fstype, LIVE_DISK_ROOTFS_MB, ROOTFS_LABEL,
                  LIVE_PARTLABEL], [root_tree, *sources_key()])
    meta = _cached(out, key)
    if meta:
        return _media_from_meta(meta, out)
    t0 = _begin(out, work, f"{fstype} live disk", label)
    squash_src, partdir, part_img = work / "squash-src", work / "part-root", work / "part.img"
    make_ext4_image(root_tree, squash_src / "LiveOS" / "rootfs.img", LIVE_DISK_ROOTFS_MB,
                    ROOTFS_LABEL)
    squash = make_squashfs(squash_src, partdir / "LiveOS" / "squashfs.img", comp="xz")

    seed = f"{out.name}\0{label}"
    fs_uuid = _stable_uuid(seed, "fs", fstype)
    part = make_gpt_disk(out, size_mb, name=LIVE_PARTLABEL,
                         type_guid=GPT_TYPE_LINUX_FS if fstype == "ext4" else GPT_TYPE_BASIC_DATA,
                         partuuid=str(_stable_uuid(seed, "partition")),
                         disk_id=str(_stable_uuid(seed, "disk")))
    start, part_bytes = int(part["start"]) * 512, int(part["size"]) * 512
    if squash.stat().st_size + 4 * _MIB > part_bytes:
        raise HarnessError(f"{squash.stat().st_size} bytes of squashfs.img do not fit a "
                           f"{part_bytes}-byte partition; raise size_mb ({size_mb})")
    if fstype == "ext4":
        run(["mkfs.ext4", "-q", "-F", "-L", label, "-U", fs_uuid, "-d", partdir, part_img,
             f"{part_bytes // 1024}k"])
    else:
        with open(part_img, "wb") as fh:
            fh.truncate(part_bytes)
        run(["mkfs.vfat", "-n", label, "-i", fs_uuid.hex[:8], part_img])
        fat_add_tree(part_img, partdir)
    if part_img.stat().st_size != part_bytes:
        raise HarnessError(f"{part_img} is {part_img.stat().st_size} bytes, "
                           f"the partition {part_bytes}")
    pinfo = blkid_probe(part_img)
    run(["dd", f"if={part_img}", f"of={out}", "bs=1M", f"seek={start}", "oflag=seek_bytes",
         "conv=notrunc,sparse", "status=none"])
    dinfo = _blkid_probe_at(out, start)
    for k in ("TYPE", "LABEL", "UUID"):
        if not pinfo.get(k) or dinfo.get(k) != pinfo.get(k):
            raise HarnessError(f"blkid of the partition in {out} ({dinfo}) does not match "
                               f"the filesystem image ({pinfo})")
    if pinfo["TYPE"] != fstype or pinfo["LABEL"] != label:
        raise HarnessError(f"blkid sees {pinfo} in {part_img}, wanted {fstype} {label!r}")
    media = Media(out, label, pinfo["UUID"], fstype, "squashfs-rootfs", ROOTFS_LABEL,
                  partuuid=str(part["uuid"]).lower(), partlabel=str(part.get("name", "")))
    return _finish(out, key, media, work, t0)


# ---- FAT writer (no mtools, no loop devices) --------------------------------

_FAT_DATE = ((2024 - 1980) << 9) | (1 << 5) | 1       # 2024-01-01: reproducible images
_FAT_SFN_CHARS = frozenset(string.ascii_uppercase + string.digits + "!#$%&'()-@^_`{}~")
_ATTR_DIR, _ATTR_ARCHIVE, _ATTR_LFN = 0x10, 0x20, 0x0F


def _fat_short_names(names: list[str]) -> dict[str, tuple[bytes, bool]]:
    """{name: (11-byte 8.3 name, needs a long-name entry)} for one directory."""
    used: set[bytes] = set()
    result: dict[str, tuple[bytes, bool]] = {}
    for name in names:
        if len(name) > 255 or name in (".", ".."):
            raise HarnessError(f"cannot store {name!r} in a FAT directory")
        up = name.upper()
        dot = up.rfind(".")
        base, ext = (up[:dot], up[dot + 1:]) if dot > 0 else (up, "")
        b = "".join(c if c in _FAT_SFN_CHARS else "_" for c in base.replace(" ", "").replace(".", ""))
        e = "".join(c if c in _FAT_SFN_CHARS else "_" for c in ext.replace(" ", ""))
        exact = b == base and e == ext and 1 <= len(b) <= 8 and len(e) <= 3
        sfn = (b.ljust(8) + e.ljust(3)).encode()
        if not exact or sfn in used:
            for n in range(1, 1_000_000):
                tail = f"~{n}"
                sfn = ((b[:8 - len(tail)] + tail).ljust(8) + e[:3].ljust(3)).encode()
                if sfn not in used:
                    break
        used.add(sfn)
        s_base, s_ext = sfn[:8].decode().rstrip(), sfn[8:].decode().rstrip()
        result[name] = (sfn, name != (f"{s_base}.{s_ext}" if s_ext else s_base))
    return result


def _fat_lfn_entries(name: str, sfn: bytes) -> bytes:
    csum = 0
    for byte in sfn:
        csum = (((csum & 1) << 7) + (csum >> 1) + byte) & 0xFF
    raw = name.encode("utf-16-le")
    units = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if len(units) % 13:
        units.append(b"\0\0")
    while len(units) % 13:
        units.append(b"\xff\xff")
    count = len(units) // 13
    entries = []
    for i in range(count):
        chunk = b"".join(units[i * 13:(i + 1) * 13])
        order = (i + 1) | (0x40 if i == count - 1 else 0)
        entries.append(struct.pack("<B10sBBB12sH4s", order, chunk[:10], _ATTR_LFN, 0, csum,
                                   chunk[10:22], 0, chunk[22:26]))
    return b"".join(reversed(entries))


def _fat_sfn_entry(sfn: bytes, attr: int, cluster: int, size: int) -> bytes:
    return struct.pack("<11sBBBHHHHHHHI", sfn, attr, 0, 0, 0, _FAT_DATE, _FAT_DATE,
                       cluster >> 16, 0, _FAT_DATE, cluster & 0xFFFF, size)


class _FatImage:
    """Just enough FAT16/FAT32 to add a tree to a freshly formatted image:
    clusters are allocated contiguously after the highest one in use."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        fh.seek(0)
        bs = fh.read(512)
        if len(bs) < 512 or bs[510:512] != b"\x55\xaa":
            raise HarnessError("no FAT boot sector")
        bpb: tuple[int, ...] = struct.unpack_from("<HBHBHHBH", bs, 11)
        self.bps, self.spc, self.rsvd, self.nfats, root_ents, tot16, _media, fatsz16 = bpb
        ebpb: tuple[int, ...] = struct.unpack_from("<I I 4x I H", bs, 32)
        tot32, fatsz32, self.root_clus, self.fsinfo = ebpb
        self.fatsz = fatsz16 or fatsz32
        totsec = tot16 or tot32
        root_secs = (root_ents * 32 + self.bps - 1) // self.bps
        self.root_off = (self.rsvd + self.nfats * self.fatsz) * self.bps
        self.root_bytes = root_ents * 32
        self.first_data = self.rsvd + self.nfats * self.fatsz + root_secs
        nclusters = (totsec - self.first_data) // self.spc
        if nclusters < 4085:
            raise HarnessError("FAT12 is not supported; make the filesystem larger")
        self.fat32 = nclusters >= 65525
        self.width = 4 if self.fat32 else 2
        self.eoc = 0x0FFFFFFF if self.fat32 else 0xFFFF
        self.max_cluster = nclusters + 1
        self.csize = self.spc * self.bps
        fh.seek(self.rsvd * self.bps)
        self.fat = bytearray(fh.read(self.fatsz * self.bps))
        self.next = 2
        for c in range(self.max_cluster, 1, -1):
            if self.get(c):
                self.next = c + 1
                break

    def get(self, c: int) -> int:
        fmt = "<I" if self.fat32 else "<H"
        v: int = struct.unpack_from(fmt, self.fat, c * self.width)[0]
        return v & 0x0FFFFFFF if self.fat32 else v

    def set(self, c: int, v: int) -> None:
        struct.pack_into("<I" if self.fat32 else "<H", self.fat, c * self.width, v)

    def chain(self, c: int) -> list[int]:
        out: list[int] = []
        while 2 <= c < (0x0FFFFFF8 if self.fat32 else 0xFFF8) and len(out) <= self.max_cluster:
            out.append(c)
            c = self.get(c)
        return out

    def alloc(self, n: int) -> int:
        if n == 0:
            return 0
        start = self.next
        if start + n - 1 > self.max_cluster:
            raise HarnessError("FAT filesystem full; make it larger")
        for c in range(start, start + n - 1):
            self.set(c, c + 1)
        self.set(start + n - 1, self.eoc)
        self.next = start + n
        return start

    def offset(self, c: int) -> int:
        return (self.first_data + (c - 2) * self.spc) * self.bps

    def write_clusters(self, clusters: list[int], data: bytes) -> None:
        if len(data) > len(clusters) * self.csize:
            raise HarnessError("directory larger than its clusters")
        data = data.ljust(len(clusters) * self.csize, b"\0")
        for i, c in enumerate(clusters):
            self.fh.seek(self.offset(c))
            self.fh.write(data[i * self.csize:(i + 1) * self.csize])

    def dir_size(self, src: Path) -> int:
        names = sorted(p.name for p in src.iterdir())
        sfns = _fat_short_names(names)
        n = 2 + sum(1 + (((len(nm.encode("utf-16-le")) // 2) + 12) // 13 if sfns[nm][1] else 0)
                    for nm in names)
        return n * 32

    def entries(self, src: Path, me: int) -> bytes:
        """Write the children of ``src`` (recursively); return their dir entries.
        ``me`` is the cluster of the directory being filled (0 for the root)."""
        children = sorted(src.iterdir(), key=lambda p: p.name)
        sfns = _fat_short_names([p.name for p in children])
        out = b""
        for child in children:
            sfn, lfn = sfns[child.name]
            if child.is_symlink():
                raise HarnessError(f"FAT cannot store the symlink {child}")
            if child.is_dir():
                nclus = max(1, -(-self.dir_size(child) // self.csize))
                c = self.alloc(nclus)
                dots = (_fat_sfn_entry(b".".ljust(11), _ATTR_DIR, c, 0)
                        + _fat_sfn_entry(b"..".ljust(11), _ATTR_DIR, me, 0))
                self.write_clusters(self.chain(c), dots + self.entries(child, c))
                attr, size = _ATTR_DIR, 0
            elif child.is_file():
                size = child.stat().st_size
                if size >= 1 << 32:
                    raise HarnessError(f"{child} is too large for FAT")
                c = self.alloc(-(-size // self.csize))
                if size:
                    self.fh.seek(self.offset(c))
                    with open(child, "rb") as src_fh:
                        shutil.copyfileobj(src_fh, self.fh, _MIB)
                attr = _ATTR_ARCHIVE
            else:
                raise HarnessError(f"FAT cannot store the special file {child}")
            out += (_fat_lfn_entries(child.name, sfn) if lfn else b"")
            out += _fat_sfn_entry(sfn, attr, c, size)
        return out

    @staticmethod
    def _used(raw: bytes) -> bytes:
        for i in range(0, len(raw), 32):
            if raw[i] == 0:
                return raw[:i]
        return raw

    def add_tree(self, tree: Path) -> None:
        new = self.entries(tree, 0)
        if self.fat32:
            clusters = self.chain(self.root_clus)
            data = b"".join(self._read(self.offset(c), self.csize) for c in clusters)
            data = self._used(data) + new
            need = -(-len(data) // self.csize)
            if need > len(clusters):
                extra = self.alloc(need - len(clusters))
                self.set(clusters[-1], extra)
                clusters = self.chain(self.root_clus)
            self.write_clusters(clusters, data)
        else:
            data = self._used(self._read(self.root_off, self.root_bytes)) + new
            if len(data) > self.root_bytes:
                raise HarnessError("FAT16 root directory full")
            self.fh.seek(self.root_off)
            self.fh.write(data)
        for i in range(self.nfats):
            self.fh.seek((self.rsvd + i * self.fatsz) * self.bps)
            self.fh.write(self.fat)
        if self.fat32 and self.fsinfo not in (0, 0xFFFF):
            pos = self.fsinfo * self.bps
            sector = bytearray(self._read(pos, 512))
            if sector[:4] == b"RRaA" and sector[484:488] == b"rrAa":
                free = sum(1 for c in range(2, self.max_cluster + 1) if not self.get(c))
                struct.pack_into("<II", sector, 488, free, self.next)
                self.fh.seek(pos)
                self.fh.write(sector)

    def _read(self, pos: int, n: int) -> bytes:
        self.fh.seek(pos)
        return self.fh.read(n)


def fat_add_tree(image: Path, tree: Path) -> None:
    """Copy the directories and regular files of ``tree`` into the root of a
    freshly made FAT16/FAT32 filesystem image (mkfs.vfat), with long names.

    A stand-in for ``mcopy -s`` (mtools is not installed) that needs neither
    loop devices nor mount. Files are contiguous; dates are fixed (2024-01-01).
    """
    with open(image, "r+b") as fh:
        _FatImage(fh).add_tree(Path(tree))


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

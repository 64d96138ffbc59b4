"""Reading a live medium without mounting it: a directory tree, an ISO9660 image, and the file
list of a squashfs image inside either (for `pylive explain`). Nothing here needs root.

shutil, subprocess and tempfile are imported where a medium is read, not with the module: `pylive
explain` without --media needs none of them (start-up time)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from pylive.probe import SNIFF_BYTES, iso9660_uuid, sniff_fstype
from pylive.record import field, mutable_record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import BinaryIO

SECTOR = 2048


@mutable_record
class Entry:
    is_dir: bool
    size: int
    head: bytes = b""  # the first bytes of a file, for the filesystem type
    extent: int = -1  # ISO9660: first sector of the data


@mutable_record
class MediaView:
    """A read-only listing: relative path ("LiveOS/squashfs.img") → Entry."""

    name: str
    fstype: str | None
    entries: dict[str, Entry] = field(default_factory=dict)
    source: Path | None = None  # the image file, for reading file data out of it
    label: str = ""
    uuid: str = ""

    def exists(self, rel: str) -> bool:
        return rel.strip("/") in self.entries

    def is_dir(self, rel: str) -> bool:
        e = self.entries.get(rel.strip("/"))
        return e is not None and e.is_dir

    def file_fstype(self, rel: str) -> str | None:
        e = self.entries.get(rel.strip("/"))
        return sniff_fstype(e.head) if e and e.head else None

    def read_file(self, rel: str, dest: Path) -> bool:
        """Copy a file out of the view (for listing an image inside it); False when impossible."""
        e = self.entries.get(rel.strip("/"))
        if e is None or e.is_dir or self.source is None:
            return False
        if self.source.is_dir():
            import shutil

            shutil.copyfile(self.source / rel, dest)
            return True
        with open(self.source, "rb") as src, open(dest, "wb") as out:
            src.seek(e.extent * SECTOR)
            left = e.size
            while left:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    return False
                out.write(chunk)
                left -= len(chunk)
        return True


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    except OSError:
        return b""


def view_directory(root: Path) -> MediaView:
    view = MediaView(os.fspath(root), None, source=root)
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root)
        for d in dirnames:
            view.entries[(base / d).as_posix()] = Entry(True, 0)
        for f in filenames:
            p = Path(dirpath) / f
            view.entries[(base / f).as_posix()] = Entry(False, p.stat().st_size, _head(p))
    return view


def _rock_ridge_name(system_use: bytes) -> str | None:
    """The NM (alternate name) entry of the SUSP area, if the image has Rock Ridge."""
    i, name = 0, b""
    while i + 4 <= len(system_use):
        sig, length = system_use[i : i + 2], system_use[i + 2]
        if length < 4:
            break
        if sig == b"NM":
            name += system_use[i + 5 : i + length]
        i += length
    return name.decode(errors="replace") if name else None


# What a directory listing may read in all: far more than the directories of any live ISO (a damaged
# directory size can claim 4 GiB, and a directory listed again under itself would never end).
DIRECTORY_BYTES = 64 << 20
RECORD_MIN = 34  # ECMA-119 9.1: 33 bytes and a name of at least one


def view_iso(path: Path) -> MediaView:
    """List an ISO9660 image (with Rock Ridge names when present) by reading its directories. A damaged
    directory raises ValueError (explain then assumes the usual layout)."""
    with open(path, "rb") as f:
        f.seek(16 * SECTOR)
        pvd = f.read(SECTOR)
        if len(pvd) < SECTOR or pvd[1:6] != b"CD001" or pvd[0] != 1:
            raise ValueError(f"{path}: not an ISO9660 image")
        label = pvd[40:72].decode(errors="replace").rstrip()
        uuid = iso9660_uuid(pvd)
        view = MediaView(f"{path} (label {label!r})", "iso9660", source=path, label=label, uuid=uuid)
        root = pvd[156:190]
        _IsoWalk(f, view).walk(struct.unpack_from("<I", root, 2)[0], struct.unpack_from("<I", root, 10)[0], "", 0)
    return view


class _IsoWalk:
    """The directories of an ISO 9660 image, each read once, DIRECTORY_BYTES in all at most."""

    def __init__(self, f: BinaryIO, view: MediaView) -> None:
        self.f, self.view = f, view
        self.seen: set[int] = set()
        self.budget = DIRECTORY_BYTES

    def walk(self, extent: int, size: int, prefix: str, depth: int) -> None:
        if depth > 32 or extent in self.seen:
            return
        self.seen.add(extent)
        self.budget -= size
        if self.budget < 0:
            raise ValueError(f"{self.view.source}: its directories are larger than {DIRECTORY_BYTES >> 20} MiB")
        self.f.seek(extent * SECTOR)
        data = self.f.read(size)
        pos = 0
        while pos < len(data):
            length = data[pos]
            if length == 0:  # records do not cross sectors: skip to the next one
                pos = (pos // SECTOR + 1) * SECTOR
                continue
            rec = data[pos : pos + length]
            if length < RECORD_MIN or len(rec) < length or RECORD_MIN - 1 + rec[32] > length:
                raise ValueError(f"{self.view.source}: a directory record at sector {extent + pos // SECTOR} "
                                 "is damaged")
            pos += length
            self.record(rec, prefix, depth)

    def record(self, rec: bytes, prefix: str, depth: int) -> None:
        ext, dsize = struct.unpack_from("<I", rec, 2)[0], struct.unpack_from("<I", rec, 10)[0]
        flags, nlen = rec[25], rec[32]
        raw = rec[33 : 33 + nlen]
        if raw in (b"\0", b"\1"):
            return
        su = rec[33 + nlen + (1 - nlen % 2) :]
        name = _rock_ridge_name(su) or raw.decode(errors="replace").split(";")[0].rstrip(".")
        rel = f"{prefix}{name}"
        if flags & 2:
            self.view.entries[rel] = Entry(True, 0, extent=ext)
            self.walk(ext, dsize, rel + "/", depth + 1)
            return
        self.f.seek(ext * SECTOR)
        self.view.entries[rel] = Entry(False, dsize, self.f.read(min(dsize, SNIFF_BYTES)), ext)


def view_squashfs(image: Path, name: str) -> MediaView | None:
    """The file list of a squashfs image through `unsquashfs -lls`; None when that tool is absent."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("unsquashfs") is None:
        return None
    proc = subprocess.run(["unsquashfs", "-lls", "-d", "", os.fspath(image)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return None
    view = MediaView(name, "squashfs")
    with tempfile.TemporaryDirectory() as tmp:
        for line in proc.stdout.splitlines():
            parts = line.split(None, 5)
            if len(parts) < 6 or parts[0][0] not in "d-lbcps":
                continue
            rel = parts[5].lstrip("/").split(" -> ")[0]
            if not rel:
                continue
            size = int(parts[2]) if parts[2].isdigit() else 0
            view.entries[rel] = Entry(parts[0][0] == "d", size)
        # the inner image's filesystem type: extract just its first bytes
        for rel, entry in view.entries.items():
            if not entry.is_dir and rel.endswith(".img"):
                out = Path(tmp) / "x"
                subprocess.run(["unsquashfs", "-f", "-q", "-n", "-d", os.fspath(out), os.fspath(image), rel],
                               capture_output=True, check=False)
                entry.head = _head(out / rel)
    return view


def open_media(path: Path) -> MediaView:
    if path.is_dir():
        return view_directory(path)
    return view_iso(path)

"""`pylive overlay merge FILE --base IMAGE --out NEW`: a new root image, the base with the overlay's changes
applied (the "repair and merge" step of an overlay's recovery, and the way to carry a live system's
changes over to a new image).

- IMAGE is the root image (LiveOS/rootfs.img), or the squashfs.img holding it: rootfs.img is then read
  out of it with unsquashfs (squashfs-tools), streamed, not unpacked to a directory.
- FILE and IMAGE are only read. Before anything is written: the identity record beside FILE (the
  base pylive's boot recorded) must match IMAGE, the changes must fall inside it, and NEW's filesystem
  must have room. NEW is written under a temporary name beside it and renamed at the end; on any
  failure the partial file is removed.
- The copy is sparse (zero blocks are skipped); the changed chunks are written in runs, in the order
  the COW holds them.
- An ext2/3/4 result whose journal wants replay (the live system was not shut down cleanly, or it
  overflowed) gets it, as a mount would (e2fsck -E journal_only), and then e2fsck -fn's verdict;
  with --repair, e2fsck -fy first.

Exit status: 0 merged (and clean, or not ext2/3/4), 1 refused or failed (nothing is written),
3 merged, but e2fsck found errors in NEW (it is kept: repair it before use).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pylive.errors import LiveError, one_line
from pylive.overlay.cowformat import CowError, CowTable
from pylive.overlay.files import (
    free_bytes,
    identity_record,
    mib,
    open_read,
    reader,
    refuse_in_use,
    size_of,
)
from pylive.overlay.inspect import Examined, State, examine
from pylive.probe import image_identity, sniff_fstype
from pylive.record import record

ROOTFS = "LiveOS/rootfs.img"  # where dracut (and pylive) look inside squashfs.img
BLOCK = 1 << 20
RUN_CHUNKS = 256  # changed chunks copied in one read and write when they are consecutive in both files
EXIT_MERGED_WITH_ERRORS = 3
SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))
EXT_RECOVER = 0x4  # s_feature_incompat: the journal needs replay


@record
class Base:
    """The base as merge reads it."""

    path: str
    squashfs: bool  # the root image is LiveOS/rootfs.img inside it
    size: int  # bytes of the root image
    need: int  # at most this much of NEW's filesystem for the copy


def check_merge(file: str, e: Examined, base: Base, record: str | None, identity: str, *, force: bool,
                any_base: bool) -> list[str]:
    """Whether FILE can be merged onto the base; the notes worth printing. Pure."""
    name = one_line(file)
    if e.problems:
        raise LiveError(f"{name} is damaged ({e.problems[0]})", "it cannot be merged; see `pylive overlay inspect`")
    if e.state is State.NEVER_USED:
        raise LiveError(f"{name} was never used: there is nothing to merge", "the base image is the result")
    notes = []
    if e.state is State.INVALID:
        if not force:
            raise LiveError(f"{name} was invalidated by the kernel: its table may miss the last changes before "
                            "that, and no boot would read it", "add --force to apply what its table holds anyway")
        notes.append("the overlay was invalidated by the kernel: changes made just before that may be missing")
    if e.state is State.OVERFLOWED:
        notes.append("the overlay had overflowed: writes made after it filled up are not in it")
    if record is None:
        notes.append(f"no identity record beside {name}: whether it was made for this base cannot be checked")
    elif record != identity and not any_base:
        raise LiveError(f"{name} was made for another base image (recorded {record}; {one_line(base.path)} is "
                        f"{identity})", "give the image it was made for (pylive records squashfs.img when the "
                        "medium has one, else rootfs.img), or add --any-base if you know better")
    assert e.table is not None
    base_chunks = -(-base.size // e.chunk_bytes)
    if len(e.table) and max(e.table.old) >= base_chunks:
        raise LiveError(f"{name} changes chunk {max(e.table.old)} of its base, past the end of "
                        f"{one_line(base.path)} ({base_chunks} chunks of {e.chunk_bytes} bytes)",
                        "it was made for a larger image: give that one")
    return notes


def check_room(new: str, need: int, free: int) -> None:
    if need > free:
        raise LiveError(f"no room for {one_line(new)}: it needs up to {mib(need)}, its filesystem has {mib(free)} free",
                        "make room there, or write it elsewhere with --out")


# --- reading the base --------------------------------------------------------------------------


def _unsquashfs() -> str:
    found = shutil.which("unsquashfs", path=SBIN_PATH)
    if found is None:
        raise LiveError(f"unsquashfs (squashfs-tools) is needed to read {ROOTFS} out of a squashfs image",
                        f"install squashfs-tools, or give the {ROOTFS} itself as --base (mount -o loop,ro the "
                        "squashfs.img to reach it)")
    return found


def squashfs_rootfs_size(image: str) -> int:
    """The size of LiveOS/rootfs.img inside a squashfs image (unsquashfs -lls)."""
    proc = subprocess.run([_unsquashfs(), "-lls", image, ROOTFS], capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0].startswith("-") and fields[-1].endswith("/" + ROOTFS):
            return int(fields[2])
    raise LiveError(f"{one_line(image)} holds no {ROOTFS}" + (f" ({proc.stderr.strip().splitlines()[-1]})"
                                                            if proc.returncode and proc.stderr.strip() else ""),
                    "a squashfs of the root tree itself is the base of an OverlayFS overlay, not of a "
                    "device-mapper one; give the image the overlay was made for")


def read_base(path: str) -> Base:
    fd = open_read(path)
    try:
        st = os.fstat(fd)
        size = size_of(fd)
        if sniff_fstype(os.pread(fd, 4096, 0)) == "squashfs":
            inner = squashfs_rootfs_size(path)
            return Base(path, True, inner, inner)
        return Base(path, False, size, min(size, st.st_blocks * 512) if st.st_blocks else size)
    finally:
        os.close(fd)


def _write_sparse(dst: int, offset: int, data: bytes) -> None:
    """Write `data` at `offset`, leaving holes where whole 4 KiB blocks are zeros."""
    zero = bytes(4096)
    start = 0
    for i in range(0, len(data), 4096):
        if data[i : i + 4096] == zero[: len(data[i : i + 4096])]:
            if start < i:
                os.pwrite(dst, data[start:i], offset + start)
            start = i + 4096
    if start < len(data):
        os.pwrite(dst, data[start:], offset + start)


def copy_image(src: str, dst: int, size: int) -> None:
    """A sparse copy of an image file: only its data extents (SEEK_DATA), without zero blocks."""
    fd = open_read(src)
    try:
        pos = 0
        while pos < size:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break  # only a hole is left
                raise
            end = os.lseek(fd, pos, os.SEEK_HOLE)
            while pos < end:
                data = os.pread(fd, min(BLOCK, end - pos), pos)
                if not data:
                    break
                _write_sparse(dst, pos, data)
                pos += len(data)
    finally:
        os.close(fd)
    os.ftruncate(dst, size)


def extract_rootfs(image: str, dst: int, size: int) -> None:
    """LiveOS/rootfs.img streamed out of a squashfs image by `unsquashfs -cat`, written sparse."""
    with subprocess.Popen([_unsquashfs(), "-cat", image, ROOTFS], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        pos = 0
        while chunk := proc.stdout.read(BLOCK):
            _write_sparse(dst, pos, chunk)
            pos += len(chunk)
        err = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0 or pos != size:
        raise LiveError(f"unsquashfs could not read {ROOTFS} out of {one_line(image)} ({pos} of {size} bytes"
                        + (f": {err.splitlines()[-1]}" if err else "") + ")", "check the image (unsquashfs -lls)")
    os.ftruncate(dst, size)


# --- applying the changes ------------------------------------------------------------------------


def runs(table: CowTable) -> Iterator[tuple[int, int, int]]:
    """(old_chunk, new_chunk, count): the exceptions in COW order, consecutive ones in both files joined."""
    pairs = sorted(zip(table.new, table.old, strict=True))
    i = 0
    while i < len(pairs):
        new, old = pairs[i]
        n = 1
        while (n < RUN_CHUNKS and i + n < len(pairs)
               and pairs[i + n][0] == new + n and pairs[i + n][1] == old + n):
            n += 1
        yield old, new, n
        i += n


def apply_changes(table: CowTable, cow_fd: int, dst: int, base_size: int) -> int:
    """Write each changed chunk over the copy (the last one cut at the end of the base, as the kernel copies
    it: start_copy reads min(chunk, origin size - start)). The bytes written."""
    cb = table.chunk_bytes
    done = 0
    for old, new, n in runs(table):
        want = min(n * cb, base_size - old * cb)
        data = os.pread(cow_fd, want, new * cb)
        if len(data) != want:
            raise LiveError(f"the overlay ends before its chunk {new}",
                            "it was cut short; see `pylive overlay inspect`")
        os.pwrite(dst, data, old * cb)
        done += len(data)
    return done


# --- checking the result -------------------------------------------------------------------------


@record
class Check:
    ok: bool
    lines: tuple[str, ...]


def _e2fsck() -> str | None:
    return shutil.which("e2fsck", path=SBIN_PATH)


def check_ext(path: str, repair: bool) -> Check:
    """Journal replay if the filesystem wants it, --repair's e2fsck -fy, then e2fsck -fn's verdict."""
    e2fsck = _e2fsck()
    if e2fsck is None:
        return Check(True, ("e2fsck not found: the result was not checked",))
    lines = []
    with open(path, "rb") as f:
        f.seek(1024 + 0x60)
        (incompat,) = struct.unpack("<I", f.read(4))
    if incompat & EXT_RECOVER:
        replay = subprocess.run([e2fsck, "-E", "journal_only", "-p", path], capture_output=True, check=False)
        lines.append("journal replayed (the filesystem was in use when the overlay was last written), as a mount "
                     "would" if replay.returncode in (0, 1) else
                     f"journal replay failed (e2fsck -E journal_only: exit status {replay.returncode})")
    if repair:
        fixed = subprocess.run([e2fsck, "-fy", path], capture_output=True, text=True, check=False)
        lines.append(f"e2fsck -fy: {'repaired' if fixed.returncode & 1 else 'nothing to repair'}")
    proc = subprocess.run([e2fsck, "-fn", path], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return Check(True, (*lines, "e2fsck -fn: clean"))
    out = proc.stdout.splitlines()
    problem = next((out[i - 1].strip() for i, ln in enumerate(out) if re.search(r"\? no$", ln) and i), "")
    return Check(False, (*lines, f"e2fsck -fn: errors (exit status {proc.returncode})"
                         + (f", the first: {problem}" if problem else "")))


# --- the whole -----------------------------------------------------------------------------------


@contextlib.contextmanager
def temporary_beside(new: str) -> Iterator[tuple[int, str]]:
    """A new file beside NEW, removed unless it was renamed to NEW."""
    directory = posixpath.dirname(new) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{posixpath.basename(new)}.", suffix=".pylive-merge", dir=directory)
    try:
        yield fd, tmp
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def publish(tmp: str, new: str) -> None:
    """Rename the finished file to NEW without replacing anything that appeared there meanwhile."""
    try:
        os.link(tmp, new)
    except FileExistsError:
        raise LiveError(f"{one_line(new)} exists already; nothing was written over it", "give another --out") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(new):  # no hard links here (vfat): check, then rename
            raise LiveError(f"{one_line(new)} exists already; nothing was written over it",
                            "give another --out") from None
        os.rename(tmp, new)


def _write(table: CowTable, cow_fd: int, base: Base, new: str, repair: bool) -> tuple[int, Check | None]:
    """Copy, apply, check and publish NEW; (bytes of changes written, the check of an ext2/3/4 result)."""
    with temporary_beside(new) as (out, tmp):
        os.fchmod(out, 0o644)
        if base.squashfs:
            extract_rootfs(base.path, out, base.size)
        else:
            copy_image(base.path, out, base.size)
        written = apply_changes(table, cow_fd, out, base.size)
        os.fsync(out)
        check = check_ext(tmp, repair) if sniff_fstype(os.pread(out, 4096, 0)) == "ext4" else None
        publish(tmp, new)
    return written, check


def run(file: str, base_path: str, new: str, *, force: bool = False, any_base: bool = False, repair: bool = False,
        root: Path = Path("/")) -> int:
    """`pylive overlay merge`: check, copy, apply, check the result, publish."""
    if os.path.lexists(new):
        raise LiveError(f"{one_line(new)} exists already", "give a new file name with --out")
    directory = posixpath.dirname(new) or "."
    if not os.path.isdir(directory):
        raise LiveError(f"{one_line(directory)} is not a directory", "give --out a path in an existing directory")
    refuse_in_use(root, file)
    start = time.monotonic()
    cow_fd = open_read(file)
    try:
        try:
            e = examine(reader(cow_fd), size_of(cow_fd))
        except CowError as bad:
            raise LiveError(f"{one_line(file)} is not readable as a device-mapper overlay: {bad}",
                            "give the overlay's COW file") from None
        base = read_base(base_path)
        notes = check_merge(file, e, base, identity_record(file), image_identity(base_path), force=force,
                            any_base=any_base)
        assert e.table is not None
        check_room(new, base.need + len(e.table) * e.chunk_bytes, free_bytes(directory))
        try:
            written, check = _write(e.table, cow_fd, base, new, repair)
        except OSError as err:
            raise LiveError(f"writing {one_line(new)} failed: {err.strerror}", "nothing was kept; make room, or "
                            "write it elsewhere with --out") from None
    finally:
        os.close(cow_fd)
    seconds = time.monotonic() - start
    source = f"{ROOTFS} in {base.path}" if base.squashfs else base.path
    print(f"merged {len(e.table)} changed chunks ({mib(written)}) of {file} onto {source}: {new} "
          f"({mib(base.size)}, {seconds:.1f} s)")
    for note in notes:
        print(f"note: {note}")
    if check is None:
        print("not an ext2/3/4 filesystem: not checked")
        return 0
    for line in check.lines:
        print(line)
    if not check.ok:
        print(f"repair {new} before use: e2fsck -fy {new} (or merge again with --repair)")
        return EXIT_MERGED_WITH_ERRORS
    return 0

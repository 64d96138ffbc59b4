"""Reading a medium at its own speed, and streaming a file into RAM with block sums (rd.live.ram,
rd.writable.fsimg, rd.live.check).

- A thread reads a few blocks ahead of the caller. A USB stick or a disc reads ahead only 128-256
  KiB by itself, so a single thread leaves the device idle while it sums and writes; with the
  reader thread the device keeps reading meanwhile (read(2), zlib and write(2) release the GIL).
- The bytes go through user space (read, CRC-32, write): they are summed as read from the medium.
  copy_file_range(2) keeps them in the kernel, and since Linux 5.19 refuses to copy between
  filesystems (EXDEV) anyway; sendfile(2) cannot sum them either.
- The source is read with POSIX_FADV_SEQUENTIAL and dropped from the page cache behind the read:
  the medium is released afterwards, and two copies in RAM help no one.
- The destination is not allocated in advance: posix_fallocate on tmpfs zeroes every page before
  the first read (about 0.35 s per GiB measured, with the device idle); room is checked before the
  copy instead (planner.plan_copy_to_ram).

The block size and the methods were measured with tests/bench/copy_speed.py (README, "Copy to RAM").
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import zlib
from collections.abc import Callable, Generator

from pylive.ramcopy import BlockSums

BLOCK = 4 << 20
DEPTH = 3  # blocks in flight: one being summed, two being read
DROP_BEHIND = 64 << 20  # drop the source's cached pages in steps of this size


def source_size(fd: int) -> int:
    """Size of a regular file or a block device."""
    size = os.fstat(fd).st_size
    return size or os.lseek(fd, 0, os.SEEK_END)


def read_ahead(fd: int, *, block: int = BLOCK, limit: int | None = None, depth: int = DEPTH,
               drop_behind: bool = False, crcs: list[int] | None = None) -> Generator[memoryview, None, None]:
    """The bytes of fd from its current offset (up to `limit`), in full blocks but the last, read by a
    thread up to `depth` blocks ahead. A view is valid until the next one is asked for. A read error
    is raised here, with the offset it happened at. With `crcs`, the reading thread appends each
    block's CRC-32 to it (the sums then cost the consumer nothing: a copy's writes run beside them)."""
    free: queue.Queue[memoryview | None] = queue.Queue()
    full: queue.Queue[tuple[memoryview, int] | OSError] = queue.Queue()
    for _ in range(depth):
        free.put(memoryview(bytearray(block)))
    start = os.lseek(fd, 0, os.SEEK_CUR)
    _advise(fd, os.POSIX_FADV_SEQUENTIAL)

    def reader() -> None:
        pos = dropped = 0
        while (view := free.get()) is not None:
            want = block if limit is None else min(block, limit - pos)
            try:
                n = _fill(fd, view[:want]) if want > 0 else 0
            except OSError as e:
                full.put(OSError(e.errno, f"{e.strerror} (reading at {pos >> 20} MiB)", e.filename))
                return
            if crcs is not None and n:
                crcs.append(zlib.crc32(view[:n]))
            full.put((view, n))
            if n == 0:
                return
            pos += n
            if drop_behind and pos - dropped >= DROP_BEHIND:
                _advise(fd, os.POSIX_FADV_DONTNEED, start + dropped, pos - dropped)
                dropped = pos

    thread = threading.Thread(target=reader, name="pylive-read-ahead", daemon=True)
    thread.start()
    lent: memoryview | None = None
    try:
        while True:
            if lent is not None:
                free.put(lent)
                lent = None
            item = full.get()
            if isinstance(item, OSError):
                raise item
            view, n = item
            if n == 0:
                return
            lent = view
            yield view[:n]
    finally:
        free.put(None)  # the reader stops after its current read
        thread.join()


def copy_with_sums(src: str, dest: str, *, block: int = BLOCK,
                   progress: Callable[[int], object] | None = None) -> BlockSums:
    """Copy src to a new file dest (an existing one is an error: nothing is overwritten); the sums are
    of the bytes as read from src. On failure the partial dest is removed; the OSError names the file
    and the offset."""
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fout = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            crcs: list[int] = []
            done = 0
            with contextlib.closing(read_ahead(fin, block=block, drop_behind=True, crcs=crcs)) as chunks:
                for chunk in chunks:
                    try:
                        _write_all(fout, chunk)
                    except OSError as e:
                        raise OSError(e.errno, f"{e.strerror} (writing at {done >> 20} MiB)", dest) from e
                    done += len(chunk)
                    if progress is not None:
                        progress(done)
        except OSError as e:
            os.close(fout)
            os.unlink(dest)
            raise OSError(e.errno, e.strerror, e.filename or src) from e
        except BaseException:
            os.close(fout)
            os.unlink(dest)
            raise
        os.close(fout)
        return BlockSums(done, block, tuple(crcs))
    finally:
        os.close(fin)


def sums_of(path: str, *, block: int = BLOCK, progress: Callable[[int], object] | None = None) -> BlockSums:
    """The block sums of a file as read back now (the verification of a copy)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        crcs: list[int] = []
        done = 0
        with contextlib.closing(read_ahead(fd, block=block)) as chunks:
            for chunk in chunks:
                crcs.append(zlib.crc32(chunk))
                done += len(chunk)
                if progress is not None:
                    progress(done)
        return BlockSums(done, block, tuple(crcs))
    finally:
        os.close(fd)


def _fill(fd: int, view: memoryview) -> int:
    """Read until the block is full or the end: the sums of source and copy cover the same blocks."""
    got = 0
    while got < len(view):
        n = os.readv(fd, [view[got:]])
        if n == 0:
            break
        got += n
    return got


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _advise(fd: int, advice: int, offset: int = 0, length: int = 0) -> None:
    try:
        os.posix_fadvise(fd, offset, length, advice)
    except OSError:
        pass  # advice only (e.g. a pipe)

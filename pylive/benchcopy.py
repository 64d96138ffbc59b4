"""`pylive bench-copy FILE`: the RAM copy's throughput against a plain sequential read of the same file.

In the binary so that it runs where the copy runs (a QEMU guest has no Python). Each run starts
cold: the file's cached pages are dropped first (POSIX_FADV_DONTNEED; the device behind it may
still cache, as a host does for a QEMU guest, and then does so for every method alike).

Methods:
- read:      read(2) into one buffer, nothing else: the baseline, what the medium gives;
- copy:      pylive's copy (read, CRC-32, write, allocated destination): rd.live.ram's first pass;
- verify:    pylive's read-back of the copy (CRC-32 of the copy in RAM): its second pass;
- copy1:     the same copy in one thread (no reader thread): what the read-ahead thread gains;
- rw:        read and write without sums (what the sums cost);
- kernel:    copy_file_range(2) (no sums possible: for comparison);
- sendfile:  sendfile(2) (likewise).
"""

from __future__ import annotations

import errno
import json
import os
import time
import zlib
from collections.abc import Callable

from pylive.linux.copy import BLOCK, _advise, _fill, _write_all, copy_with_sums, source_size, sums_of

MIB = 1 << 20
METHODS = ("read", "copy", "verify", "copy1", "rw", "kernel", "sendfile")


def drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _advise(fd, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def plain_read(src: str, dest: str, block: int) -> int:
    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _advise(fd, os.POSIX_FADV_SEQUENTIAL)
        view = memoryview(bytearray(block))
        done = 0
        while n := _fill(fd, view):
            done += n
        return done
    finally:
        os.close(fd)


def copy(src: str, dest: str, block: int) -> int:
    return copy_with_sums(src, dest, block=block).size


def verify(src: str, dest: str, block: int) -> int:
    return sums_of(dest, block=block).size


def _file_to_file(body: Callable[[int, int, int], int]) -> Callable[[str, str, int], int]:
    """A runner that opens src (sequential read-ahead) and a fresh dest, and lets `body` copy."""
    def run(src: str, dest: str, block: int) -> int:
        fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        fout = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _advise(fin, os.POSIX_FADV_SEQUENTIAL)
            return body(fin, fout, block)
        finally:
            os.close(fin)
            os.close(fout)
    return run


def _user_copy(with_sums: bool) -> Callable[[str, str, int], int]:
    """A copy through a buffer in one thread: with CRC-32 sums (what pylive's copy does, without its
    read-ahead thread), or without (the floor of any copy)."""
    def body(fin: int, fout: int, block: int) -> int:
        view = memoryview(bytearray(block))
        done = 0
        while n := _fill(fin, view):
            if with_sums:
                zlib.crc32(view[:n])
            _write_all(fout, view[:n])
            done += n
        return done
    return _file_to_file(body)


def _kernel(call: Callable[[int, int, int], int]) -> Callable[[str, str, int], int]:
    """A copy the kernel makes (copy_file_range, sendfile): nothing passes through user space."""
    def body(fin: int, fout: int, block: int) -> int:
        done = 0
        while n := call(fin, fout, block):
            done += n
        return done
    return _file_to_file(body)


RUNNERS: dict[str, Callable[[str, str, int], int]] = {
    "read": plain_read, "copy": copy, "verify": verify, "copy1": _user_copy(True), "rw": _user_copy(False),
    "kernel": _kernel(os.copy_file_range),
    "sendfile": _kernel(lambda i, o, n: os.sendfile(o, i, None, n)),
}


def bench(src: str, dest_dir: str, blocks: tuple[int, ...] = (BLOCK,), methods: tuple[str, ...] = METHODS,
          runs: int = 3) -> list[dict[str, object]]:
    """The best of `runs` cold runs of each method and block size, in MiB/s."""
    dest = os.path.join(dest_dir, f"pylive-bench-copy.{os.getpid()}")
    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    size = source_size(fd)
    os.close(fd)
    rows: list[dict[str, object]] = []
    try:
        for block in blocks:
            for method in methods:
                try:
                    best = _best(src, dest, method, block=block, size=size, runs=runs)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS):
                        raise
                    rows.append({"method": method, "block": block, "mib_s": f"n/a ({os.strerror(e.errno)})"})
                    continue
                rows.append({"method": method, "block": block, "mib_s": round(best)})
    finally:
        if os.path.exists(dest):
            os.unlink(dest)
    return rows


def _best(src: str, dest: str, method: str, *, block: int, size: int, runs: int) -> float:
    best = 0.0
    for _ in range(runs):
        if method != "verify":
            drop_cache(src)
            if os.path.exists(dest):
                os.unlink(dest)
        elif not os.path.exists(dest):
            copy(src, dest, block)
        t0 = time.perf_counter()
        done = RUNNERS[method](src, dest, block)
        seconds = time.perf_counter() - t0
        if done != size:
            raise RuntimeError(f"{method}: {done} of {size} bytes")
        best = max(best, size / MIB / seconds)
    return best


def report(src: str, rows: list[dict[str, object]]) -> str:
    """A table, and one JSON line per block size with copy / read (the ≥ 0.9 target)."""
    lines = [f"{src}: best of the runs, MiB/s"]
    by_block: dict[object, dict[object, object]] = {}
    for r in rows:
        by_block.setdefault(r["block"], {})[r["method"]] = r["mib_s"]
        lines.append(f"  {r['method']:9s} block {int(str(r['block'])) >> 10:6d} KiB  {r['mib_s']:>6} MiB/s")
    for block, m in by_block.items():
        read, copied = m.get("read"), m.get("copy")
        if isinstance(read, int) and isinstance(copied, int) and read:
            summary = {"block": block, "read_mib_s": read, "copy_mib_s": copied,
                       "copy_vs_read": round(copied / read, 3), "verify_mib_s": m.get("verify")}
            lines.append("bench-copy " + json.dumps(summary, sort_keys=True))
    return "\n".join(lines) + "\n"

"""Small helpers shared by the harness modules (stdlib only)."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


def log(msg: str) -> None:
    """Harness progress messages go to stderr (pytest shows them on failure)."""
    print(f"[qemu-harness] {msg}", file=sys.stderr, flush=True)


def quote_cmd(cmd: Sequence[object]) -> str:
    return " ".join(shlex.quote(str(c)) for c in cmd)


def tool_env() -> dict[str, str]:
    """Environment with the sbin directories on PATH (mkfs.ext4, depmod, ...)."""
    env = dict(os.environ)
    parts = env.get("PATH", "").split(os.pathsep)
    for d in ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        if d not in parts:
            parts.append(d)
    env["PATH"] = os.pathsep.join(p for p in parts if p)
    env.setdefault("LC_ALL", "C")
    return env


def which(name: str) -> str | None:
    return shutil.which(name, path=tool_env()["PATH"])


def run(
    cmd: Sequence[object],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    logfile: Path | None = None,
    check: bool = True,
    quiet: bool = False,
    tail_lines: int = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a command, logging it shell-quoted.

    With ``logfile`` stdout+stderr go to that file (appended, preceded by the
    command line) and the tail is shown on failure; otherwise output is captured
    and shown on failure.
    """
    argv = [str(c) for c in cmd]
    full_env = tool_env()
    if env:
        full_env.update(env)
    if not quiet:
        log(f"$ {quote_cmd(argv)}" + (f"  (log: {logfile})" if logfile else ""))
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(f"\n$ {quote_cmd(argv)}\n")
            if env:
                fh.write(f"# extra env: {env}\n")
            fh.flush()
            proc = subprocess.run(argv, cwd=cwd, env=full_env, stdout=fh, check=False,
                                  text=True, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            text = logfile.read_text(encoding="utf-8", errors="replace")
            tail = "\n".join(text.splitlines()[-tail_lines:])
            raise HarnessError(
                f"command failed (rc={proc.returncode}): {quote_cmd(argv)}\n"
                f"--- tail of {logfile} ---\n{tail}")
        return proc
    proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, check=False,
                          text=True, errors="replace", stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr).splitlines()[-tail_lines:]
        raise HarnessError(
            f"command failed (rc={proc.returncode}): {quote_cmd(argv)}\n" + "\n".join(out))
    return proc


class HarnessError(RuntimeError):
    """A harness step (download, dracut, mkfs, ...) failed."""


def hash_update_path(h: hashlib._Hash, path: Path, *, follow_symlinks: bool = False,
                     _seen: set[str] | None = None) -> None:
    """Feed a file or a directory tree (names, modes, symlink targets, contents).

    ``follow_symlinks``: hash what a symlink points to (e.g. a dracutbasedir
    made of symlinks) instead of the link text; loops are cut.
    """
    path = Path(path)
    if path.is_symlink():
        if follow_symlinks and path.exists():
            seen = _seen if _seen is not None else set()
            real = os.path.realpath(path)
            if real in seen:
                h.update(b"loop:" + real.encode())
                return
            seen.add(real)
            h.update(b"S" + path.name.encode())
            hash_update_path(h, Path(real), follow_symlinks=True, _seen=seen)
            h.update(b"/S")
            return
        h.update(b"L" + str(path.name).encode() + b"->" + os.readlink(path).encode())
        return
    if path.is_file():
        h.update(b"F" + path.name.encode() + oct(path.stat().st_mode & 0o7777).encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return
    if path.is_dir():
        h.update(b"D" + path.name.encode() + oct(path.stat().st_mode & 0o7777).encode())
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            hash_update_path(h, child, follow_symlinks=follow_symlinks, _seen=_seen)
        h.update(b"/D")
        return
    h.update(b"?" + str(path).encode())


def digest(items: Iterable[object], paths: Iterable[Path] = (), *,
           follow_symlinks: bool = False) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(repr(it).encode() + b"\0")
    for p in paths:
        hash_update_path(h, Path(p), follow_symlinks=follow_symlinks)
    return h.hexdigest()[:16]


# Builds of shared artefacts (kernel, initramfs images, media, test roots under build/) take one
# lock, so that two test processes (pytest -n 2) never build or replace the same file at once: the
# second one waits, then finds the first one's cache stamp and returns. The lock is reentrant within
# a process, since builders call builders. Boots take no lock: they only read what was built.
_lock_depth = [0]  # how deep this process is inside build_lock()


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    if _lock_depth[0]:
        _lock_depth[0] += 1
        try:
            yield
        finally:
            _lock_depth[0] -= 1
        return
    from . import BUILD_DIR
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _lock_depth[0] = 1
        try:
            yield
        finally:
            _lock_depth[0] = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


def serialized(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run a builder of shared artefacts under build_lock()."""
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with build_lock():
            return fn(*args, **kwargs)
    return wrapper

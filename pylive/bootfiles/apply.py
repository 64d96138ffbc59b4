"""`pylive update-boot`: the plan (plan.py) carried out on the stick.

Two phases, so that a failure leaves the files the stick boots as they were:
1. write: for each file, a copy of its current content and the new content, as temporary files in
   its own directory (the same filesystem), each synced (fsync) before the next step;
2. commit: rename each copy over `<name>.prev`, then each new file over `<name>`, then sync the
   directories. A rename within a directory is atomic: each name holds either the old or the new
   content, never a part. If a rename fails half way, the files already replaced get their old
   content back from their `.prev` copies.
Any failure removes the temporary files. A stick mounted read-only is remounted read-write for the
two phases only, and read-only again after them, whatever happened.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from pylive.bootfiles.plan import UpdatePlan, describe, plan_update
from pylive.errors import LiveError, one_line
from pylive.log import log

TEMP_SUFFIX = ".pylive-new"
Remount = Callable[[str, bool], None]


def remount(mountpoint: str, writable: bool) -> None:
    """mount -o remount,rw|ro (as Fedora's livesys remounts the stick for its /home image)."""
    mode = "rw" if writable else "ro"
    proc = subprocess.run(["mount", "-o", f"remount,{mode}", mountpoint], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise LiveError(f"{mountpoint} cannot be remounted {'read-write' if writable else 'read-only'}: {last}",
                        "run as root" if writable else f"mount -o remount,ro {mountpoint}")


def _copy(src: Path, dest: Path, mode: int) -> None:
    """`src` to a new file `dest`, synced to the disk."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & 0o777)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        while block := inp.read(1 << 20):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _failed(what: str, path: Path, e: OSError, top: Path) -> LiveError:
    name = "/" + str(path.relative_to(top)) if path.is_relative_to(top) else str(path)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return LiveError(f"the stick filled up while writing {one_line(name)}; nothing was changed",
                         "free some room on the stick")
    return LiveError(f"{what} {one_line(name)} failed ({e.strerror}); nothing was changed", "check the stick (dmesg)")


def replace(plan: UpdatePlan, root: Path) -> None:
    """Write the new pair and the fallback copies, then rename them into place (the module's docstring)."""
    top = root / plan.medium.lstrip("/")
    temps: list[tuple[Path, Path]] = []  # (temporary, final name)
    try:
        for r in plan.files:
            dest = top / r.path
            mode = dest.stat().st_mode
            for src, final in ((dest, top / r.fallback), (root / r.source.lstrip("/"), dest)):
                tmp = final.with_name(f".{final.name}{TEMP_SUFFIX}")
                _unlink_quietly(tmp)  # left by an earlier run that was killed
                try:
                    _copy(src, tmp, mode)
                except OSError as e:
                    _unlink_quietly(tmp)
                    raise _failed("writing", final, e, top) from None
                temps.append((tmp, final))
        for directory in {tmp.parent for tmp, _ in temps}:
            _sync_dir(directory)
        _commit(temps, top)
    finally:
        for tmp, _ in temps:
            _unlink_quietly(tmp)


def _commit(temps: list[tuple[Path, Path]], top: Path) -> None:
    """Fallback copies first (the boot files stay the old ones), then the new files."""
    fallbacks = temps[0::2]
    news = temps[1::2]
    for tmp, final in fallbacks:
        try:
            os.replace(tmp, final)
        except OSError as e:
            raise _failed("renaming into", final, e, top) from None
    done: list[tuple[Path, Path]] = []
    try:
        for (tmp, final), (_, prev) in zip(news, fallbacks, strict=True):
            os.replace(tmp, final)
            done.append((final, prev))
    except OSError as e:
        failed = final
        for replaced, prev in done:  # the old content back from its copy
            os.replace(prev, replaced)
        raise _failed("renaming into", failed, e, top) from None
    finally:
        for directory in {final.parent for _, final in temps}:
            _sync_dir(directory)


def run(dry_run: bool, root: Path = Path("/"), *, remount_fn: Remount = remount,
        free_of: Callable[[str], int] | None = None) -> int:
    """`pylive update-boot [--dry-run]`."""
    plan = plan_update(root) if free_of is None else plan_update(root, free_of)
    lines = describe(plan)
    if dry_run or not plan.files:
        prefix = "would " if plan.files else ""
        for line in lines:
            print(prefix + line if line.startswith(("replace ", "remount ")) else line)
        return 0
    for line in lines[:3]:
        print(line)
    if plan.remount:
        remount_fn(plan.medium, True)
    try:
        replace(plan, root)
    finally:
        if plan.remount:
            try:
                remount_fn(plan.medium, False)
            except LiveError as e:
                log.warning("%s", e)
    for r in plan.files:
        print(f"replaced /{r.path} with {r.source}; the old one is /{r.fallback}")
    print(f"the stick boots {plan.pair.version} next time; the pair it booted before is kept as *.prev")
    return 0

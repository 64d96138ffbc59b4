"""Which mount holds a path, from /proc/self/mountinfo (pure but for the one read; no pathlib: the
overlay watcher imports it, and each module it loads is memory for as long as the live system runs)."""

from __future__ import annotations

import os
import re

from pylive.record import record


@record
class MountEntry:
    mountpoint: str
    fstype: str
    options: tuple[str, ...]  # the per-mount options (rw, nosuid, nodev, relatime, …)
    source: str = ""  # what was mounted: /dev/sdb1, tmpfs, …
    devno: str = ""  # major:minor of the filesystem
    fsroot: str = "/"  # the directory of the filesystem the mount shows (not / for a bind mount of a subdirectory)


def _read(root: str | os.PathLike[str]) -> str | None:
    try:
        with open(os.path.join(root, "proc/self/mountinfo")) as fh:
            return fh.read()
    except OSError:
        return None


def mount_of(root: str | os.PathLike[str], path: str) -> MountEntry | None:
    """The mount that holds `path`, from /proc/self/mountinfo (the last mount on the deepest point wins)."""
    text = _read(root)
    if text is None:
        return None
    best: MountEntry | None = None
    for line in text.splitlines():
        fields, _, rest = line.partition(" - ")
        f = fields.split()
        if len(f) < 6 or not rest:
            continue
        point = _unoctal(f[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mountpoint)):
            fs = rest.split()
            best = MountEntry(point, fs[0], tuple(f[5].split(",")), _unoctal(fs[1]) if len(fs) > 1 else "", f[2],
                              _unoctal(f[3]))
    return best


def mount_points_of(root: str | os.PathLike[str], devno: str) -> list[str]:
    """Where the filesystem with this major:minor is mounted (mountinfo's third field)."""
    text = _read(root) or ""
    return [_unoctal(f[4]) for f in (line.split() for line in text.splitlines()) if len(f) > 4 and f[2] == devno]


def _unoctal(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)

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


def mount_of(root: str | os.PathLike[str], path: str) -> MountEntry | None:
    """The mount that holds `path`, from /proc/self/mountinfo (the last mount on the deepest point wins)."""
    try:
        with open(os.path.join(root, "proc/self/mountinfo")) as fh:
            text = fh.read()
    except OSError:
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
            best = MountEntry(point, rest.split()[0], tuple(f[5].split(",")))
    return best


def _unoctal(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)

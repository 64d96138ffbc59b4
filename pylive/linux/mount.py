"""mount(2) and umount2(2)."""

from __future__ import annotations

import os

from pylive.linux._libc import libc, oserror

MS_RDONLY = 1
MNT_DETACH = 2

# Options that are mount flags rather than filesystem data (mount(8) translates the same ones).
MS_REMOUNT = 32
MS_BIND = 4096
_FLAGS = {"ro": MS_RDONLY, "rw": 0, "nosuid": 2, "nodev": 4, "noexec": 8, "defaults": 0, "remount": MS_REMOUNT,
          "bind": MS_BIND}


def split_options(options: tuple[str, ...]) -> tuple[int, str]:
    flags = 0
    data = []
    for o in options:
        if o in _FLAGS:
            flags = (flags | _FLAGS[o]) if o != "rw" else (flags & ~MS_RDONLY)
        else:
            data.append(o)
    return flags, ",".join(data)


def mount(source: str, target: str, fstype: str, options: tuple[str, ...] = ()) -> None:
    """Mount `source` on `target`. Raises OSError("mount: …", target)."""
    flags, data = split_options(options)
    if libc.mount(source.encode(), os.fsencode(target), fstype.encode(), flags, data.encode() or None) < 0:
        oserror("mount", target)


def umount(target: str, lazy: bool = False) -> None:
    if libc.umount2(os.fsencode(target), MNT_DETACH if lazy else 0) < 0:
        oserror("umount", target)

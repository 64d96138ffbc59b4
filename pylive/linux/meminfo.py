"""/proc/meminfo, read by the boot (RAM for copies and tmpfs sizes) and by the watcher (what is left)."""

from __future__ import annotations

import os


def meminfo_bytes(root: str, key: str) -> int | None:
    """One field of `root`/proc/meminfo (`MemTotal`, `MemAvailable`, …) in bytes; None when unreadable."""
    try:
        with open(os.path.join(root, "proc/meminfo")) as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None

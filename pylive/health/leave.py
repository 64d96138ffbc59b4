"""What the boot leaves under /run for the booted system, so that `pylive status` and the watcher
work there with nothing installed in the image.

- /run/pylive/dist: a copy of the binary's dist (tmpfs; it replaces the initramfs copy, which is
  freed at switch-root), and /run/pylive/pylive, a wrapper that pins the C locale;
- /run/systemd/system/pylive-overlay-watch.service, wanted by multi-user.target: systemd reads
  units in /run/systemd/system after switch-root, so the watcher starts in the live system. The
  unit does not run in the initramfs (ConditionPathExists=!/etc/initrd-release).
Without systemd the init system must start `/run/pylive/pylive watch` itself (README).
"""

from __future__ import annotations

import os
import shutil

RUN_DIR = "/run/pylive"
UNIT_NAME = "pylive-overlay-watch.service"
UNIT_DIR = "/run/systemd/system"
WANTS = "multi-user.target.wants"

# Extension modules status and watch never load (the CJK codecs, ctypes and libffi, termios, _queue,
# _typing: ~1.2 MiB; in the full build of an initramfs with pylive-net also TLS and OpenSSL's hashes, ~5.9
# MiB; the QEMU tests run status and watch from this copy): each byte copied is RAM.
NOT_NEEDED = ("_codecs_*.so", "_multibytecodec.so", "_ctypes.so", "libffi.so*", "termios.so", "_queue.so",
              "_typing.so", "_ssl*.so", "_hashlib*.so", "libssl.so*", "libcrypto.so*")
IGNORE = shutil.ignore_patterns(*NOT_NEEDED)

WRAPPER = """#!/bin/sh
# Left by pylive's initramfs stage: the live root's binary, run with the C locale (README).
LC_ALL=C exec /run/pylive/dist/pylive "$@"
"""


def unit_text(levels: tuple[int, ...]) -> str:
    return f"""# Left by pylive's initramfs stage (rd.pylive.watch=0 leaves no watcher).
[Unit]
Description=Warn before the live overlay fills up (pylive)
Documentation=man:pylive(8)
ConditionPathExists=!/etc/initrd-release
DefaultDependencies=no
After=local-fs.target
Conflicts=shutdown.target
Before=shutdown.target

[Service]
ExecStart={RUN_DIR}/pylive watch --levels {",".join(str(x) for x in levels)}
Restart=on-failure
RestartSec=5
Nice=10
"""


class NotLeft(Exception):
    """The dist was not copied to /run (too little room, or the copy failed): nothing of it is left there."""


def copy_bytes(dist_dir: str) -> int:
    """What the copy of the dist takes (the files it copies, rounded up to 4 KiB pages as on tmpfs)."""
    total = 0
    for top, dirs, files in os.walk(dist_dir):
        skip = IGNORE(top, [*dirs, *files])
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            if name not in skip:
                total += -(-os.lstat(os.path.join(top, name)).st_size // 4096) * 4096
    return total


def leave_behind(root: str, dist_dir: str, levels: tuple[int, ...]) -> None:
    """Copy the dist and write the wrapper and the unit under `root` (the initramfs's /). Refused
    (NotLeft) before anything is copied when /run lacks the room; a copy that fails half-way is
    removed, so that nothing half-copied stays in RAM."""
    run = os.path.join(root, RUN_DIR.lstrip("/"))
    dest = os.path.join(run, "dist")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    where = run
    while not os.path.isdir(where):  # /run/pylive is made only when the copy fits
        where = os.path.dirname(where)
    st = os.statvfs(where)
    need, free = copy_bytes(dist_dir), st.f_bavail * st.f_frsize
    if need + (1 << 20) > free:  # and a MiB for the booted system's first files on /run
        raise NotLeft(f"/run has {free >> 10} KiB free, the copy of pylive there needs {-(-need >> 20)} MiB")
    os.makedirs(run, exist_ok=True)
    try:
        shutil.copytree(dist_dir, dest, symlinks=True, ignore=IGNORE)
    except OSError as e:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(e, shutil.Error) and e.args and e.args[0]:  # a list: (src, dest, why) per file that failed
            raise NotLeft(f"copying it to {RUN_DIR} failed: {e.args[0][0][2]}") from e
        raise NotLeft(f"copying it to {RUN_DIR} failed: {e.strerror or e}"
                      + (f" ({e.filename})" if e.filename else "")) from e
    wrapper = os.path.join(run, "pylive")
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    os.chmod(wrapper, 0o755)
    units = os.path.join(root, UNIT_DIR.lstrip("/"))
    os.makedirs(os.path.join(units, WANTS), exist_ok=True)
    with open(os.path.join(units, UNIT_NAME), "w") as f:
        f.write(unit_text(levels))
    link = os.path.join(units, WANTS, UNIT_NAME)
    if not os.path.lexists(link):
        os.symlink(f"../{UNIT_NAME}", link)


def compiled_dist() -> str | None:
    """The directory of the running Nuitka binary, or None when pylive runs from source."""
    if "__compiled__" not in globals():
        return None
    return os.path.dirname(os.path.realpath("/proc/self/exe"))

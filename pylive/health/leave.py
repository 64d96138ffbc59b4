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


def leave_behind(root: str, dist_dir: str, levels: tuple[int, ...]) -> None:
    """Copy the dist and write the wrapper and the unit under `root` (the initramfs's /)."""
    run = os.path.join(root, RUN_DIR.lstrip("/"))
    dest = os.path.join(run, "dist")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    shutil.copytree(dist_dir, dest, symlinks=True, ignore=shutil.ignore_patterns(*NOT_NEEDED))
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

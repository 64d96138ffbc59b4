"""What the boot leaves under /run for the booted system, so that `pylive status` and the watcher
work there with nothing installed in the image.

- /run/pylive/dist: a copy of the binary's dist (tmpfs; it replaces the initramfs copy, which is
  freed at switch-root), and /run/pylive/pylive, a wrapper that pins the C locale;
- /run/systemd/system/pylive-overlay-watch.service, wanted by multi-user.target: systemd reads
  units in /run/systemd/system after switch-root, so the watcher starts in the live system. The
  unit does not run in the initramfs (ConditionPathExists=!/etc/initrd-release).
Without systemd the init system must start `/run/pylive/pylive watch` itself (README).
dracut's init without systemd mounts /run noexec: the copy then has a tmpfs of its own at /run/pylive.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from pylive.linux.meminfo import meminfo_bytes

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
    """The dist was not left for the booted system (too little room, or a copy or write that failed): nothing
    of it stays under /run."""


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


def own_tmpfs_size(need: int) -> int:
    """The size of /run/pylive's own tmpfs: the copy, the wrapper and the watcher's state file, in whole MiB."""
    return (need + (1 << 20) + (1 << 20) - 1) >> 20 << 20


def mount_own_tmpfs(path: str, size: int) -> None:
    from pylive.linux.mount import mount

    mount("tmpfs", path, "tmpfs", ("nosuid", "nodev", "mode=0755", f"size={size}"))


def umount_own_tmpfs(path: str) -> None:
    from pylive.linux.mount import umount

    umount(path, lazy=True)


def leave_behind(root: str, dist_dir: str, levels: tuple[int, ...]) -> None:
    """Copy the dist and write the wrapper and the unit under `root` (the initramfs's /).

    A /run mounted noexec (dracut's own init, without systemd) could hold the copy but not run it:
    the copy then gets a tmpfs of its own at /run/pylive (exec, nosuid, nodev), which moves into the
    booted system with /run, weighed against the RAM available instead of /run's room. Refused
    (NotLeft) before anything is copied when the room is lacking; a copy or a write that fails
    half-way is undone, so that nothing half-left stays in RAM."""
    run = os.path.join(root, RUN_DIR.lstrip("/"))
    dest = os.path.join(run, "dist")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    where = run
    while not os.path.isdir(where):  # /run/pylive is made only when the copy fits
        where = os.path.dirname(where)
    st = os.statvfs(where)
    need = copy_bytes(dist_dir)
    own = bool(st.f_flag & os.ST_NOEXEC)
    if own:
        avail = meminfo_bytes(root, "MemAvailable")
        size = own_tmpfs_size(need)
        if avail is None or size > avail // 4:  # at most a quarter of what is left: the live system needs it more
            raise NotLeft(f"/run is mounted noexec, so the copy of pylive needs a tmpfs of its own ({size >> 20} MiB), "
                          + (f"more than a quarter of the {avail >> 20} MiB of RAM available" if avail is not None
                             else "and /proc/meminfo does not say how much RAM is available"))
    elif need + (1 << 20) > st.f_bavail * st.f_frsize:  # and a MiB for the booted system's first files on /run
        raise NotLeft(f"/run has {st.f_bavail * st.f_frsize >> 10} KiB free, the copy of pylive there needs "
                      f"{-(-need >> 20)} MiB")
    made = not os.path.isdir(run)
    mounted = False
    step = f"making {RUN_DIR}"
    try:
        os.makedirs(run, exist_ok=True)
        if own and not os.path.ismount(run):
            step = f"mounting a tmpfs on {RUN_DIR}"
            mount_own_tmpfs(run, size)
            mounted = True
        step = f"copying it to {RUN_DIR}"
        shutil.copytree(dist_dir, dest, symlinks=True, ignore=IGNORE)
        step = f"writing {RUN_DIR}/pylive and {UNIT_DIR}/{UNIT_NAME}"
        _write_wrapper_and_unit(root, run, levels)
    except OSError as e:
        _undo(root, run, dest, mounted=mounted, made=made)
        if isinstance(e, shutil.Error) and e.args and e.args[0]:  # a list: (src, dest, why) per file that failed
            raise NotLeft(f"{step} failed: {e.args[0][0][2]}") from e
        raise NotLeft(f"{step} failed: {e.strerror or e}") from e


def _write_wrapper_and_unit(root: str, run: str, levels: tuple[int, ...]) -> None:
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


def _undo(root: str, run: str, dest: str, *, mounted: bool, made: bool) -> None:
    """Remove what leave_behind() made: the copy, the wrapper, the unit and its link, the own tmpfs."""
    units = os.path.join(root, UNIT_DIR.lstrip("/"))
    for path in (os.path.join(units, WANTS, UNIT_NAME), os.path.join(units, UNIT_NAME), os.path.join(run, "pylive")):
        with contextlib.suppress(OSError):
            os.unlink(path)
    shutil.rmtree(dest, ignore_errors=True)
    if mounted:
        with contextlib.suppress(OSError):
            umount_own_tmpfs(run)
    if made:
        with contextlib.suppress(OSError):
            os.rmdir(run)


def compiled_dist() -> str | None:
    """The directory of the running Nuitka binary, or None when pylive runs from source."""
    if "__compiled__" not in globals():
        return None
    return os.path.dirname(os.path.realpath("/proc/self/exe"))

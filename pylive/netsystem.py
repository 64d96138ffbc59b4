"""The network steps on the running system: waiting for the path to the server, the download, the NFS
mount, and applying an updates image (RealSystem delegates here; pylive.net does the protocol work)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager

from pylive.errors import LiveError
from pylive.log import log
from pylive.plan import FetchImage
from pylive.progress import Watch

Progress = Callable[[str, int], AbstractContextManager[Watch]]
UPDATES_MNT = "/run/initramfs/updates-image"


def wait_network(server: str, timeout_s: float) -> None:
    from pylive.net.ready import wait_ready

    wait_ready(server, timeout_s)  # logs the interface and gateway it found


def fetch_image(step: FetchImage, progress: Progress) -> None:
    from pylive.net.fetch import fetch

    got = fetch(list(step.urls), step.dest, checksum=step.checksum, verify_tls=step.verify_tls,
                room_bytes=step.room_bytes, progress=progress)
    mib = got.size / (1 << 20)
    rate = mib / got.seconds if got.seconds > 0 else 0.0
    log.info("%s: %s downloaded: %.1f MiB in %.2f s (%.1f MiB/s)%s", step.option, got.url, mib, got.seconds, rate,
             ", checksum verified" if got.digest else "")


def mount_nfs(export: str, target: str, version: str, port: int = 0) -> None:
    """Read-only, without locking (no rpc.statd in the initramfs): mount.nfs when the initramfs has it,
    else the kernel's own text options, which need the server's address (addr=). `port`: the server's
    NFS port when it is not 2049 (nfs://server:port/…)."""
    host = export.rpartition(":")[0].strip("[]")
    options = ["ro", "nolock"] + ([f"vers={version}"] if version else []) + ([f"port={port}"] if port else [])
    if shutil.which("mount.nfs"):
        proc = subprocess.run(["mount", "-t", "nfs", "-o", ",".join(options), export, target],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LiveError(f"root=live:nfs: mounting {export} failed: {proc.stderr.strip() or proc.returncode}",
                            "check that the server exports it to this machine (exportfs -v on the server)")
        return
    from pylive.linux.mount import mount

    try:
        addr = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
    except OSError as e:
        raise LiveError(f"root=live:nfs: the NFS server {host} has no address ({e})",
                        "check the server name, or write its address") from None
    options += [f"addr={addr}"] + ([] if version == "4" else ["proto=tcp", "mountproto=tcp"])
    try:
        mount(export, target, "nfs4" if version == "4" else "nfs", tuple(options))
    except OSError as e:
        raise LiveError(f"root=live:nfs: mounting {export} failed: {os.strerror(e.errno or 0) or e}",
                        "check that the server exports it to this machine (exportfs -v on the server) and that "
                        "the initramfs has the nfs kernel module") from None


def apply_updates(image: str, newroot: str, fstype: str | None) -> int:
    """Copy the files of a filesystem image into the root (dracut's apply-live-updates: directories made,
    everything else copied as it is, symlinks kept); the count of files copied."""
    from pylive.linux.loop import attach_loop, detach_loop
    from pylive.linux.mount import mount, umount

    if fstype is None:
        raise LiveError(f"live.updates: {image} is no filesystem image pylive can read",
                        "make the updates image with mksquashfs or mkfs.ext4")
    os.makedirs(UPDATES_MNT, exist_ok=True)
    loop = attach_loop(image, True)
    try:
        mount(loop, UPDATES_MNT, fstype, ("ro",))
        try:
            return _copy_tree(UPDATES_MNT, newroot)
        finally:
            umount(UPDATES_MNT)
    finally:
        detach_loop(loop)


def _copy_tree(src: str, dest: str) -> int:
    count = 0
    for top, dirs, files in os.walk(src):
        rel = os.path.relpath(top, src)
        where = dest if rel == "." else os.path.join(dest, rel)
        for d in list(dirs):
            if os.path.islink(os.path.join(top, d)):
                dirs.remove(d)
                files.append(d)
            else:
                os.makedirs(os.path.join(where, d), exist_ok=True)
        for name in files:
            target = os.path.join(where, name)
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)
            shutil.copy2(os.path.join(top, name), target, follow_symlinks=False)
            count += 1
    return count

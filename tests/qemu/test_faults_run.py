"""A full /run, through pylive in QEMU (issue 14's fault matrix), in the initramfs without systemd.

/run is the tmpfs that carries everything the initramfs hands to the booted system: the medium's
mount, the state file, the temporary OverlayFS upper (unless the overlay has a tmpfs of its own),
and the watcher's unit (the copy of the binary has a tmpfs of its own when /run is noexec, as
here). The test initramfs gets a cpio appended (as the kernel reads one) with a cmdline hook that
queues a job ahead of pylive's own (settled jobs run in name order): it shrinks /run to 4 MiB and
fills it, so pylive starts on a full /run after udev has settled.

What must happen: the boot completes (dracut's initqueue knows it is done although the state file
cannot be written), with one line for each thing a full /run takes away (the temporary overlay's
room, `pylive status`, the watcher), and nothing half-copied left on /run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from guestreport import mounts, pylive_lines

from qemu import NO_SHELL_ARGS, boot

HOOK = "usr/lib/dracut/hooks/cmdline/99-pylive-test-fill-run.sh"  # /lib is a link to usr/lib in the initramfs
FILLER = "usr/sbin/pylive-test-fill-run"
FILLER_SH = """#!/bin/sh
# test only (tests/qemu/test_faults_run.py): /run full before pylive's boot job
mount -o remount,size=4m /run || { echo "pylive-test: /run not shrunk" > /dev/kmsg; exit 0; }
i=0
while [ $i -lt 256 ] && printf '%65536s' '' >> /run/pylive-test-fill 2>/dev/null; do i=$((i + 1)); done
i=0
while [ $i -lt 64 ] && printf '%4096s' '' >> /run/pylive-test-fill 2>/dev/null; do i=$((i + 1)); done
echo "pylive-test: /run filled" > /dev/kmsg
"""


def padded(data: bytes, to: int) -> bytes:
    return data + b"\0" * (-len(data) % to)


def filling_initrd(initrd: Path, work: Path) -> Path:
    """The test initramfs with the filler job appended (the module docstring)."""
    tree = work / "fill-tree"
    (tree / HOOK).parent.mkdir(parents=True, exist_ok=True)
    (tree / FILLER).parent.mkdir(parents=True, exist_ok=True)
    (tree / HOOK).write_text("/sbin/initqueue --settled --onetime --unique --name 00-pylive-test-fill-run "
                             "/sbin/pylive-test-fill-run\n")
    (tree / FILLER).write_text(FILLER_SH)
    (tree / FILLER).chmod(0o755)
    files = f"{HOOK}\n{FILLER}\n"  # no directory entries: the initramfs's own stay as they are
    cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=tree, input=files.encode(),
                          capture_output=True, check=True).stdout
    out = work / "initrd-fill-run.img"
    out.write_bytes(padded(initrd.read_bytes(), 4) + cpio)
    return out


def test_full_run_temporary_overlayfs(kernel, nosd_initrd, live_iso, qemu_workdir):
    initrd = filling_initrd(nosd_initrd, qemu_workdir)
    cmdline = f'"root=live:CDLABEL={live_iso.label}" rd.live.overlay.overlayfs rd.retry=20 {NO_SHELL_ARGS}'
    r = boot(kernel, initrd, cmdline, cdrom=live_iso.path, workdir=qemu_workdir / "boot", timeout_s=240)
    assert "pylive-test: /run filled" in r.console, r.console[-3000:]
    assert "Traceback" not in r.console and "internal error" not in r.console
    assert r.report, r.console[-3000:]  # booted
    m = mounts(r.report)
    assert "lowerdir=/run/rootfsbase" in " ".join(m["/"]) and "upperdir=/run/initramfs/overlay/overlayfs" in \
        " ".join(m["/"]), m["/"]
    room = pylive_lines(r.console, "the temporary overlay keeps")
    assert len(room) == 1, r.console[-4000:]
    assert re.fullmatch(r"pylive: /run has \d+ KiB free \(of 4 MiB\): the temporary overlay keeps the live "
                        r"system's changes there, and its writes fail once it is full: give the overlay a tmpfs of "
                        r"its own \(rd.overlay=tmpfs:size=2G, or rd.live.overlay.size=<MiB>\), or find what filled "
                        r"/run", room[0]), room
    state = pylive_lines(r.console, "/run/initramfs/pylive.json could not be written (No space left on device)")
    assert len(state) == 1, r.console[-4000:]
    watcher = pylive_lines(r.console, "no `pylive status` or overlay watcher")
    assert len(watcher) == 1, r.console[-4000:]
    # /run is noexec here (dracut's init): the copy had a tmpfs of its own, but the unit could not be written
    assert watcher[0] == ("pylive: the booted system gets no `pylive status` or overlay watcher: writing "
                          "/run/pylive/pylive and /run/systemd/system/pylive-overlay-watch.service failed: No space "
                          "left on device"), watcher
    assert "/run/pylive" not in m  # undone: the own tmpfs too
    # nothing half-written or half-copied stays on the full /run; the initqueue knew the root was there
    listing = r.report["run-initramfs"]
    assert " pylive.json" not in listing and " pylive\n" not in listing + "\n", listing
    assert " .pylive-done" in listing, listing
    assert "Could not boot" not in r.console and "dracut Warning" not in r.console

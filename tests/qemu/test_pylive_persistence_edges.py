"""Persistence at its edges, through pylive in QEMU: a filesystem image holding the OverlayFS dirs
on a vfat stick, dracut-ng's device mode, requested-but-missing overlays (with and without the
Enter prompt), the temporary dm-thin overlay giving memory back, a persistent snapshot that
overflows, and a power cut while writing. Chained boots share one disk image."""

from __future__ import annotations

import re

from guestreport import pylive_lines, pylive_status, status_limits, written
from persist import debugfs, persist_disk, run_boot, vfat_disk_with_overlay_image

from qemu import NO_SHELL_ARGS, ConsoleEvent, boot


def test_vfat_stick_with_overlay_filesystem_image(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    disk = vfat_disk_with_overlay_image(qemu_workdir, name)
    option = "rd.live.overlay=LABEL=PERSIST"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    mounts = r1.report["mounts"].splitlines()
    assert any(ln.split()[1:3] == ["/run/initramfs/overlayfs", "vfat"] for ln in mounts), mounts
    assert any(ln.split()[1:3] == ["/run/initramfs/overlayfs-image", "ext4"] for ln in mounts), mounts
    root = next(ln for ln in mounts if ln.split()[1] == "/")
    assert "upperdir=/run/initramfs/overlayfs-image/overlayfs" in root, root
    assert "workdir=/run/initramfs/overlayfs-image/ovlwork" in root, root
    _, token1 = written(r1.report)
    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot2")
    assert r2.report, r2.console[-3000:]
    assert written(r2.report)[0] == token1


def test_device_mode_and_missing_device(kernel, pylive_initrd, live_iso, qemu_workdir):
    disk = persist_disk(qemu_workdir, {})
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, "rd.overlay=LABEL=persist", workdir=qemu_workdir,
                  name="boot1")
    assert r1.report, r1.console[-3000:]
    root = next(ln for ln in r1.report["mounts"].splitlines() if ln.split()[1] == "/")
    assert "upperdir=/run/initramfs/overlayfs/overlay,workdir=/run/initramfs/overlayfs/ovlwork" in root, root
    _, token1 = written(r1.report)
    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, "rd.overlay=LABEL=persist", workdir=qemu_workdir,
                  name="boot2")
    assert r2.report, r2.console[-3000:]
    assert written(r2.report)[0] == token1
    assert "pylive-write-test" in debugfs(disk, "ls /overlay")

    # the device is not there: a temporary OverlayFS, one warning, and no prompt when told so
    r3 = run_boot(kernel, pylive_initrd, live_iso, disk,
                  "rd.overlay=LABEL=elsewhere rd.live.overlay.nouserconfirmprompt rd.retry=4",
                  workdir=qemu_workdir, name="boot3-missing")
    assert r3.report, r3.console[-3000:]
    root = next(ln for ln in r3.report["mounts"].splitlines() if ln.split()[1] == "/")
    assert "upperdir=/run/initramfs/overlay/overlayfs" in root, root
    assert pylive_lines(r3.console, "persistent overlay device LABEL=elsewhere is not there")
    assert pylive_lines(r3.console, "Unable to find a persistent overlay (LABEL=elsewhere); using a temporary one")
    assert "Press [Enter]" not in r3.console
    assert written(r3.report)[0] == ""


def _stamp(line: str) -> float:
    return float(re.match(r"\[\s*([\d.]+)\]", line).group(1))  # type: ignore[union-attr]


def test_missing_overlay_waits_for_enter(kernel, pylive_initrd, live_iso, qemu_workdir):
    disk = persist_disk(qemu_workdir, {})  # the device is there, the overlay file is not
    r = run_boot(kernel, pylive_initrd, live_iso, disk, "rd.live.overlay=LABEL=persist", workdir=qemu_workdir,
                 name="boot", events=[ConsoleEvent("Press [Enter] to continue.", b"\r", delay_s=6.0)])
    assert r.report, r.console[-3000:]
    lines = r.console.splitlines()
    asked = next(ln for ln in lines if "] pylive: Unable to find a persistent overlay (LABEL=persist)" in ln)
    after = next(ln for ln in lines if "] pylive: root: " in ln)
    assert _stamp(after) - _stamp(asked) >= 5.0, (asked, after)  # it waited for the key
    assert "Press [Enter] to continue." in r.console


def test_thin_overlay_gives_memory_back(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={live_iso.label}" rd.live.overlay.thin '
             f"pylive.test=trim=32 {NO_SHELL_ARGS}", cdrom=live_iso.path, workdir=qemu_workdir / "boot",
             timeout_s=240)
    assert r.report, r.console[-3000:]
    table = r.report["dmsetup-table"]
    assert re.search(r"live-overlay-pool: 0 67108864 thin-pool 7:\d+ 7:\d+ 1024 1024", table), table
    assert re.search(r"live-rw: 0 67108864 thin 25\d:\d+ 0 7:\d+", table), table
    kib = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+) data-kib=(\d+) ", r.report["trim"], re.M)}
    assert kib["written"] - kib["before"] >= 30 * 1024, r.report["trim"]
    freed = kib["written"] - kib["trimmed"]
    assert freed >= 0.85 * 32 * 1024, r.report["trim"]  # fstrim gave back (nearly) all the file held
    assert r.report["root-write"].splitlines()[2] == "match=yes"
    status = pylive_status(r.report)  # read before the trim exercise
    assert status["kind"] == "dm-thin" and status["state"] == "active" and not status["persistent"]
    limits = status_limits(status)
    assert set(limits) == {"the thin pool's data", "the thin pool's metadata", "RAM behind the thin pool"}
    assert limits["the thin pool's data"] == 67108864 * 512
    assert str(status["dm_status"][0]).startswith("live-overlay-pool: 0 67108864 thin-pool ")


def test_overflow_is_reported_at_the_next_boot(kernel, pylive_initrd, live_iso, qemu_workdir):
    disk = persist_disk(qemu_workdir, {"LiveOS/cow": 16 << 20})
    option = "rd.live.overlay=LABEL=persist:/LiveOS/cow"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " pylive.test=fill=40", workdir=qemu_workdir,
                  name="boot1-fill")
    assert r1.report.get("fill"), r1.console[-3000:]
    _, token1 = written(r1.report)
    assert "dd-status=0" not in r1.report["fill"]
    assert re.search(r"^0 131072 snapshot Overflow", r1.report["fill"], re.M), r1.report["fill"]

    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot2")
    assert not r2.report and not r2.timed_out
    full = pylive_lines(r2.console, "is full")
    assert len(full) == 1, r2.console[-3000:]
    assert re.fullmatch(
        r"pylive: the persistent overlay /LiveOS/cow is full \(1[56] of 16 MiB used\): this boot could not write "
        r"to it: boot with rd.live.overlay.readonly to reach your files and copy them off, then with "
        r"rd.live.overlay.reset to start the overlay afresh", full[0]), full

    r3 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " rd.live.overlay.readonly",
                  workdir=qemu_workdir, name="boot3-readonly")
    assert r3.report, r3.console[-3000:]
    assert written(r3.report)[0] == token1  # what was synced before the overflow is all there


def test_power_cut_while_writing(kernel, pylive_initrd, live_iso, qemu_workdir):
    disk = persist_disk(qemu_workdir, {"LiveOS/cow": 128 << 20})
    option = "rd.live.overlay=LABEL=persist:/LiveOS/cow"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " pylive.test=powercut", workdir=qemu_workdir,
                  name="boot1-cut", events=[ConsoleEvent("powercut-ready", None, delay_s=2.0)])
    assert r1.power_cut, r1.console[-3000:]
    synced = r1.report["powercut"].splitlines()[0].removeprefix("synced=")
    _, token1 = written(r1.report)
    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot2")
    assert r2.report, r2.console[-3000:]
    assert r2.report["previous-powercut"].strip() == synced
    replay = pylive_lines(r2.console, "replays its journal")  # the cut left the stick's ext4 journal to replay
    assert len(replay) == 1 and "LABEL=persist (/dev/sd" in replay[0], r2.console[-3000:]
    assert not pylive_lines(r1.console, "replays its journal")  # a fresh disk
    assert written(r2.report)[0] == token1
    assert r2.report["root-write"].splitlines()[2] == "match=yes"  # the overlay still takes writes

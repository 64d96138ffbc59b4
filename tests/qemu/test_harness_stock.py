"""Harness acceptance: boot the live ISO with Debian 12's STOCK dracut
90dmsquash-live (dracut 059, default module set = with systemd) and check
that the guest's report arrives and shows the classic DM-snapshot live root.

Also documents two stock behaviours (marked ``documents_behaviour``):
* a CDLABEL with spaces does not boot with stock 059 (the udev rule →
  initqueue job loses the backslashes of ``\\x20``);
* a wrong label with rd.retry=20 gives up ("Could not boot.") and powers off.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from qemu import BUILD_DIR, NO_SHELL_ARGS, TIMING_CMDLINE, boot, initqueue_match, parse_kv_lines

pytestmark = pytest.mark.qemu

NOSPACE_LABEL = "PYLIVE_TEST_1"


@pytest.fixture(scope="module")
def live_iso_nospace(test_root):
    from qemu import build_live_iso
    return build_live_iso(BUILD_DIR / "media" / "live-nospace.iso", NOSPACE_LABEL,
                          BUILD_DIR / "media" / "live-nospace.work", root_tree=test_root)


def dm_lines(section: str) -> dict[str, str]:
    """'name: rest' lines of dmsetup table/status → {name: rest}."""
    out = {}
    for line in section.splitlines():
        name, sep, rest = line.partition(": ")
        if sep:
            out[name.strip()] = rest.strip()
    return out


def root_mount(mounts: str) -> tuple[str, str] | None:
    """(device, fstype) of the last mount on / in /proc/mounts."""
    found = None
    for line in mounts.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] == "/":
            found = (f[0], f[2])
    return found


def assert_dm_live_root(r, expected_livedev: str) -> None:
    rep = r.report
    assert r.report_complete, r.describe()

    table = dm_lines(rep["dmsetup-table"])
    assert "live-rw" in table and "live-base" in table, rep["dmsetup-table"]
    assert re.fullmatch(r"0 \d+ snapshot \d+:\d+ \d+:\d+ PO 8", table["live-rw"]), table
    assert re.fullmatch(r"0 \d+ linear \d+:\d+ 0", table["live-base"]), table
    # live-rw and live-base have the size of LiveOS/rootfs.img (64 MiB = 131072 sectors)
    assert table["live-rw"].split()[1] == table["live-base"].split()[1] == "131072"

    status = dm_lines(rep["dmsetup-status"])
    assert re.fullmatch(r"0 \d+ snapshot \d+/\d+ \d+", status["live-rw"]), status

    assert root_mount(rep["mounts"]) == ("/dev/mapper/live-rw", "ext4"), rep["mounts"]
    assert re.search(r"^/dev/sr0 /run/initramfs/live iso9660 ro[, ]", rep["mounts"], re.M), \
        rep["mounts"]
    assert rep["livedev"].strip() == expected_livedev
    assert re.fullmatch(r"/dev/loop\d+", rep["dev-live-base"].strip()), rep["dev-live-base"]
    assert "live-rw" in rep["mapper"] and "live-base" in rep["mapper"]

    loops = {row["name"]: row for row in parse_kv_lines(rep["loops"])}
    squash = [row for row in loops.values()
              if row.get("backing_file") == "/run/initramfs/live/LiveOS/squashfs.img"]
    assert squash and squash[0]["ro"] == "1", rep["loops"]

    write = dict(line.split("=", 1) for line in rep["root-write"].splitlines()
                 if re.match(r"^(token|readback|match)=", line))
    assert write["match"] == "yes" and write["token"] == write["readback"], rep["root-write"]
    assert rep["uname"].strip() == r.cmd[r.cmd.index("-kernel") + 1].rsplit("vmlinuz-", 1)[1]
    assert "Linux version" in rep["dmesg"]


def record_timing(r, workdir: Path) -> None:
    m = initqueue_match(r.report.get("dmesg", ""))
    text = (f"boot wall time: {r.seconds:.1f} s ({r.accel})\n"
            + (f"initqueue→/sysroot: {m.ms:.0f} ms\n  start: {m.start_line}\n"
               f"  root:  {m.root_line}\n" if m else "initqueue→/sysroot: no match\n"))
    (workdir / "timing.txt").write_text(text)
    print(text)


@pytest.fixture
def stock_boot_env(kernel, stock_initrd, live_iso, live_iso_nospace):
    return kernel, stock_initrd, live_iso, live_iso_nospace


@pytest.mark.parametrize("how", ["uuid", "cdlabel-nospace"])
def test_stock_live_boot(how, stock_boot_env, qemu_workdir):
    kernel, stock_initrd, live_iso, live_iso_nospace = stock_boot_env
    if how == "uuid":
        # the default ISO (label with spaces), selected by its ISO9660 UUID
        media, root = live_iso, f"root=live:UUID={live_iso.uuid}"
        livedev = f"/dev/disk/by-uuid/{live_iso.uuid}"
    else:
        media, root = live_iso_nospace, f"root=live:CDLABEL={NOSPACE_LABEL}"
        livedev = f"/dev/disk/by-label/{NOSPACE_LABEL}"
    r = boot(kernel, stock_initrd, f"{root} rd.live.image {NO_SHELL_ARGS} {TIMING_CMDLINE}",
             cdrom=media.path, timeout_s=180, workdir=qemu_workdir)
    assert not r.timed_out, r.describe()
    assert_dm_live_root(r, livedev)
    assert r.returncode == 0, r.describe()      # the test init powered off
    record_timing(r, qemu_workdir)
    assert initqueue_match(r.report["dmesg"]) is not None


@pytest.mark.documents_behaviour
def test_stock_cdlabel_with_spaces_fails(kernel, stock_initrd, live_iso, qemu_workdir):
    """Stock 059 turns CDLABEL=PYLIVE TEST 1 into /dev/disk/by-label/PYLIVE\\x20TEST\\x201;
    the udev rule matches, but the initqueue job is a sourced shell line, so
    dmsquash-live-root gets '.../PYLIVEx20TESTx201' and dies."""
    assert " " in live_iso.label
    r = boot(kernel, stock_initrd,
             f'"root=live:CDLABEL={live_iso.label}" rd.live.image {NO_SHELL_ARGS}',
             cdrom=live_iso.path, timeout_s=150, workdir=qemu_workdir)
    assert not r.report, "stock dracut 059 unexpectedly booted a spaced CDLABEL"
    assert "PYLIVEx20TESTx201" in r.console, r.describe()
    assert "Failed to mount block device of live image" in r.console, r.describe()
    # die() under systemd halts (not powers off): the harness notices and kills QEMU
    assert r.halted and not r.timed_out, r.describe()
    print(f"spaced CDLABEL: halted after {r.seconds:.1f} s")


@pytest.mark.documents_behaviour
def test_stock_wrong_label(kernel, stock_initrd, live_iso, qemu_workdir):
    """No medium with that label: no root. Observed with 059 + systemd:
    "Could not boot." after rd.retry, then rd.emergency=poweroff powers off
    (~60 s under TCG) instead of hanging."""
    r = boot(kernel, stock_initrd,
             f"root=live:CDLABEL=NO_SUCH_LABEL rd.live.image rd.retry=20 {NO_SHELL_ARGS}",
             cdrom=live_iso.path, timeout_s=150, workdir=qemu_workdir)
    assert not r.report, r.describe()
    assert "pylive-test-init" not in r.console
    if r.timed_out:
        assert r.returncode is None and r.seconds >= 150 and r.seconds < 170
        outcome = "hung until the harness timeout"
    else:
        assert "Could not boot." in r.console, r.describe()
        outcome = "gave up and powered off" if r.returncode == 0 else f"ended rc={r.returncode}"
    print(f"wrong label: {outcome} after {r.seconds:.1f} s")
    (qemu_workdir / "outcome.txt").write_text(f"{outcome} after {r.seconds:.1f} s\n")


def _qemu_running_with(path: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in cmd and str(path).encode() in cmd:
                pids.append(int(d.name))
    return pids


def test_harness_timeout_kills_qemu(kernel, stock_initrd, live_iso, qemu_workdir):
    """A guest that never finishes is killed at timeout_s and reported as timed out."""
    r = boot(kernel, stock_initrd,
             f"root=live:CDLABEL=NO_SUCH_LABEL rd.live.image {NO_SHELL_ARGS}",
             cdrom=live_iso.path, timeout_s=15, workdir=qemu_workdir)
    assert r.timed_out and r.returncode is None and not r.halted, r.describe()
    assert 15 <= r.seconds < 25, r.seconds
    assert not r.report
    assert r.console, "console log should hold the partial boot"
    assert not _qemu_running_with(qemu_workdir), "QEMU still running after the timeout"
    assert os.path.exists(qemu_workdir / "qemu-cmd.sh")

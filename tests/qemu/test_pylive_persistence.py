"""Persistent overlays through pylive, over chained boots of the same disk: a device-mapper COW
file and an OverlayFS directory on a second disk (LABEL=persist), read-only use, reset (nothing
else on the disk changes), and the refusal of an overlay made for another base image. Each boot
asserts what the guest saw, including what the previous boot wrote to the live root."""

from __future__ import annotations

import re

from guestreport import pylive_lines, pylive_status, status_limits, written
from persist import checksums, debugfs, persist_disk, run_boot

from qemu import BUILD_DIR
from qemu.media import build_uncompressed_iso


def test_dm_cow_file_persists_and_resets(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    disk = persist_disk(qemu_workdir, {name: 128 << 20})
    option = "rd.live.overlay=LABEL=persist"

    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    table = r1.report["dmsetup-table"]
    assert re.search(r"live-rw: 0 131072 snapshot 7:\d+ 7:\d+ PO 8", table), table
    cow = [ln for ln in r1.report["loops"].splitlines() if ln.endswith(f"backing_file=/{name}")]
    assert len(cow) == 1 and " ro=0 " in cow[0] and "size=262144 " in cow[0], r1.report["loops"]
    previous, token1 = written(r1.report)
    assert previous == "" and r1.report["root-write"].splitlines()[2] == "match=yes"
    record = debugfs(disk, f'cat "/{name}.pylive-base"')
    assert re.fullmatch(r"size=\d+ sha256-64k=[0-9a-f]{32}\n", record), record
    status = pylive_status(r1.report)  # a persistent COW is held to its file alone
    assert status["kind"] == "dm-snapshot" and status["persistent"] and status["state"] == "active"
    assert status_limits(status) == {"the snapshot's COW": 128 << 20}

    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot2")
    assert r2.report, r2.console[-3000:]
    previous, token2 = written(r2.report)
    assert previous == token1  # what boot 1 wrote to the root is there after a reboot
    assert pylive_lines(r2.console, "of 128 MiB used"), r2.console[-3000:]
    assert debugfs(disk, f'cat "/{name}.pylive-base"') == record

    # read-only: the persistent snapshot is live-ro under a temporary one; nothing reaches the disk
    r3 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " rd.live.overlay.readonly",
                  workdir=qemu_workdir, name="boot3-readonly")
    assert r3.report, r3.console[-3000:]
    table = r3.report["dmsetup-table"]
    assert re.search(r"live-ro: 0 131072 snapshot 7:\d+ 7:\d+ P 8", table), table
    assert re.search(r"live-rw: 0 131072 snapshot 25\d:\d+ 7:\d+ PO 8", table), table
    cow = [ln for ln in r3.report["loops"].splitlines() if ln.endswith(f"backing_file=/{name}")]
    assert len(cow) == 1 and " ro=1 " in cow[0], r3.report["loops"]
    assert written(r3.report)[0] == token2 and r3.report["root-write"].splitlines()[2] == "match=yes"
    r4 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot4")
    assert r4.report, r4.console[-3000:]
    _, token4 = written(r4.report)
    assert written(r4.report)[0] == token2  # boot 3's write did not persist

    before = checksums(disk, qemu_workdir)
    r5 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " rd.live.overlay.reset",
                  workdir=qemu_workdir, name="boot5-reset")
    assert r5.report, r5.console[-3000:]
    assert written(r5.report)[0] == ""  # reset: nothing from the earlier boots
    assert f"reset: the persistent overlay /run/initramfs/overlayfs/{name} is wiped" in r5.report["dmesg"]
    after = checksums(disk, qemu_workdir)
    assert before[name] != after[name]
    changed = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
    assert changed == {name}, changed  # the record matched already; nothing else on the disk changed


def test_overlayfs_dir_persists(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    disk = persist_disk(qemu_workdir, {name: None, "LiveOS/ovlwork": None})
    option = "rd.live.overlay=LABEL=persist"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    root = next(ln for ln in r1.report["mounts"].splitlines() if ln.split()[1] == "/")
    assert root.startswith("LiveOS_rootfs / overlay ")
    in_mounts = name.replace(" ", "\\040")  # /proc/mounts escapes spaces
    assert f"upperdir=/run/initramfs/overlayfs/{in_mounts}" in root
    assert "workdir=/run/initramfs/overlayfs/LiveOS/ovlwork" in root
    _, token1 = written(r1.report)
    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot2")
    assert r2.report, r2.console[-3000:]
    assert written(r2.report)[0] == token1
    assert "pylive-write-test" in debugfs(disk, f'ls "/{name}"')  # the file itself sits in the upper dir


def test_overlayfs_dir_readonly_then_reset(kernel, pylive_initrd, live_iso, qemu_workdir):
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    disk = persist_disk(qemu_workdir, {name: None, "LiveOS/ovlwork": None, "keep/notes.txt": 4096})
    option = "rd.live.overlay=LABEL=persist"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    _, token1 = written(r1.report)

    r2 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " rd.overlay.readonly",
                  workdir=qemu_workdir, name="boot2-readonly")
    assert r2.report, r2.console[-3000:]
    root = next(ln for ln in r2.report["mounts"].splitlines() if ln.split()[1] == "/")
    assert "lowerdir=/run/overlayfs-r:/run/rootfsbase" in root, root  # dracut's path for the persistent layer
    assert f"overlayfs-r -> /run/initramfs/overlayfs/{name}" in r2.report["run-initramfs"], r2.report["run-initramfs"]
    assert "upperdir=/run/initramfs/overlay/overlayfs" in root, root
    persist = next(ln for ln in r2.report["mounts"].splitlines() if ln.split()[1] == "/run/initramfs/overlayfs")
    assert persist.split()[3].split(",")[0] == "ro", persist
    assert written(r2.report)[0] == token1 and r2.report["root-write"].splitlines()[2] == "match=yes"

    before = checksums(disk, qemu_workdir)
    r3 = run_boot(kernel, pylive_initrd, live_iso, disk, option + " rd.overlay.reset",
                  workdir=qemu_workdir, name="boot3-reset")
    assert r3.report, r3.console[-3000:]
    assert written(r3.report)[0] == ""  # boot 2 wrote nothing to the disk; the reset emptied boot 1's
    assert f"reset: the persistent overlay /run/initramfs/overlayfs/{name} is emptied" in r3.report["dmesg"]
    after = checksums(disk, qemu_workdir)
    assert f"{name}/pylive-write-test" in before
    upper_after = {f for f in after if f.startswith(name + "/")}
    assert upper_after == {f"{name}/pylive-write-test"}, upper_after  # only what boot 3 itself wrote
    assert after[f"{name}/pylive-write-test"] != before[f"{name}/pylive-write-test"]
    kept = {f: h for f, h in before.items() if not f.startswith(name + "/")}
    assert {f: after.get(f) for f in kept} == kept  # the rest of the disk is byte-for-byte the same


def test_overlay_for_another_image_is_refused(kernel, pylive_initrd, live_iso, test_root, qemu_workdir):
    disk = persist_disk(qemu_workdir, {"LiveOS/cow": 64 << 20})
    option = "rd.live.overlay=LABEL=persist:/LiveOS/cow"
    r1 = run_boot(kernel, pylive_initrd, live_iso, disk, option, workdir=qemu_workdir, name="boot1")
    assert r1.report, r1.console[-3000:]
    before = debugfs(disk, "stat /LiveOS/cow")
    other = build_uncompressed_iso(BUILD_DIR / "media" / "uncompressed.iso", "PYLIVE RAW", root_tree=test_root)
    r2 = run_boot(kernel, pylive_initrd, other, disk, option, workdir=qemu_workdir, name="boot2")
    assert not r2.report and not r2.timed_out
    lines = [ln.split("] ", 1)[1] for ln in r2.console.splitlines() if "was made for another live image" in ln]
    assert len(lines) == 1, r2.console[-3000:]
    assert lines[0].startswith(
        "pylive: the persistent overlay /LiveOS/cow was made for another live image (recorded base size=")
    assert lines[0].endswith("boot the image it belongs to, or add rd.live.overlay.reset to start the overlay afresh")
    after = debugfs(disk, "stat /LiveOS/cow")
    mtime = re.compile(r"mtime: .*")
    assert mtime.findall(before) == mtime.findall(after)  # the overlay was not touched

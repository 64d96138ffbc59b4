"""Temporary OverlayFS roots through pylive: asked for on the command line, and required by a
flattened image. Each test asserts the guest's own mounts, and a file written and read back."""

from __future__ import annotations

import pytest
from guestreport import pylive_status, status_limits

from qemu import BUILD_DIR, NO_SHELL_ARGS, boot, parse_kv_lines
from qemu.media import build_flat_iso


@pytest.fixture(scope="session")
def flat_iso(test_root):
    return build_flat_iso(BUILD_DIR / "media" / "flat.iso", "PYLIVE FLAT", BUILD_DIR / "media" / "flat.work",
                          root_tree=test_root)


def _mounts(report: dict[str, str]) -> dict[str, tuple[str, str, list[str]]]:
    out = {}
    for line in report["mounts"].splitlines():
        dev, target, fstype, opts, *_ = line.split()
        out[target] = (dev, fstype, opts.split(","))
    return out


def assert_overlay_root(report: dict[str, str], upper_root: str = "/run/initramfs/overlay") -> dict:
    mounts = _mounts(report)
    dev, fstype, opts = mounts["/"]
    assert (dev, fstype) == ("LiveOS_rootfs", "overlay"), mounts["/"]
    assert "lowerdir=/run/rootfsbase" in opts
    assert f"upperdir={upper_root}/overlayfs" in opts and f"workdir={upper_root}/ovlwork" in opts
    assert mounts["/run/initramfs/live"][1] == "iso9660"
    assert report["dmsetup-table"].strip() in ("", "No devices found")  # no device-mapper in this mode
    assert report["root-write"].splitlines()[2] == "match=yes"
    assert "pylive.json" in report["run-initramfs"]
    status = pylive_status(report)  # a temporary upper on a tmpfs: its size and the RAM behind it
    assert status["kind"] == "overlayfs" and not status["persistent"] and status["state"] == "active"
    assert set(status_limits(status)) == {"the upper layer's filesystem", "RAM behind the upper layer's filesystem"}
    return mounts


def test_overlayfs_requested_on_classic_iso(kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={live_iso.label}" rd.live.overlay.overlayfs {NO_SHELL_ARGS}',
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    mounts = assert_overlay_root(r.report)
    base_dev, base_type, base_opts = mounts["/run/rootfsbase"]
    assert base_type == "ext4" and "ro" in base_opts and base_dev.startswith("/dev/loop")
    loops = {d["name"]: d for d in parse_kv_lines(r.report["loops"])}
    assert loops[base_dev.removeprefix("/dev/")]["backing_file"] == "/LiveOS/rootfs.img"
    assert r.report["dev-live-base"].strip() == base_dev


def test_flattened_image_needs_no_flag(kernel, pylive_initrd, flat_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={flat_iso.label}" {NO_SHELL_ARGS}',
             cdrom=flat_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    mounts = assert_overlay_root(r.report)
    assert mounts["/run/rootfsbase"][1] == "squashfs"  # a bind of the squashfs itself
    assert "/run/initramfs/squashfs" not in mounts  # lazily unmounted, as dracut does: the bind holds it
    assert "pylive: root: temporary OverlayFS" in r.report["dmesg"]


@pytest.mark.parametrize(
    ("option", "size_k", "inodes"),
    [("rd.overlay=tmpfs:size=256M,nr_inodes=100000", 262144, "100000"),
     ("rd.overlay rd.live.overlay.size=300", 307200, None)],
)
def test_sized_upper_tmpfs(*, option, size_k, inodes, kernel, pylive_initrd, live_iso, qemu_workdir):
    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={live_iso.label}" {option} {NO_SHELL_ARGS}',
             cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=240)
    assert r.report, r.console[-3000:]
    mounts = assert_overlay_root(r.report)
    dev, fstype, opts = mounts["/run/initramfs/overlay"]
    assert (dev, fstype) == ("tmpfs", "tmpfs")
    assert f"size={size_k}k" in opts
    if inodes:
        assert f"nr_inodes={inodes}" in opts

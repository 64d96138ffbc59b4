"""What the dracut module puts into the initramfs, and what it refuses."""

from __future__ import annotations

import os
import subprocess

from qemu import BUILD_DIR
from qemu.initrd import GUEST_DRIVERS
from qemu.pylive_initrd import DIST, ensure_dracut_base


def test_initrd_has_pylive_and_no_dmsquash(kernel):
    from qemu.pylive_initrd import build_pylive_initrd

    img = build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-systemd.img")
    listing = subprocess.run(["lsinitrd", str(img)], capture_output=True, text=True, errors="replace",
                             check=True).stdout
    assert "usr/lib/pylive/pylive\n" in listing
    assert "pylive-generator" in listing and "pylive.service" in listing
    assert "libudev.so.1" in listing
    assert "dmsquash-live-root" not in listing and "dmsquash" not in listing


def test_both_live_modules_refused(kernel, tmp_path):
    out = tmp_path / "both.img"
    env = dict(os.environ, dracutbasedir=str(ensure_dracut_base()), PYLIVE_DIST=str(DIST))
    proc = subprocess.run(
        ["dracut", "--force", "--no-hostonly", "--kver", kernel.version, "--kmoddir",
         str(kernel.moddir / kernel.version), "--conf", "/dev/null", "--confdir", str(tmp_path),
         "--drivers", " ".join(GUEST_DRIVERS), "--add", "pylive dmsquash-live", str(out)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode != 0
    assert not out.exists()
    assert "pylive: the modules 'pylive' and 'dmsquash-live' both boot live media; include only one" in proc.stderr

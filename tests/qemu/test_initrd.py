"""What the dracut module puts into the initramfs, and what it refuses."""

from __future__ import annotations

import os
import re
import subprocess

from qemu import BUILD_DIR
from qemu.initrd import GUEST_DRIVERS
from qemu.pylive_initrd import DIST, NET_DIST, ensure_dracut_base


def test_initrd_has_pylive_and_no_dmsquash(kernel):
    from qemu.pylive_initrd import build_pylive_initrd

    img = build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-systemd.img")
    listing = subprocess.run(["lsinitrd", str(img)], capture_output=True, text=True, errors="replace",
                             check=True).stdout
    assert "usr/lib/pylive/pylive\n" in listing
    assert "pylive-generator" in listing and "pylive.service" in listing
    assert "libudev.so.1" in listing
    assert "dmsquash-live-root" not in listing and "dmsquash" not in listing
    # the base dist: no network code, no TLS, no OpenSSL (module pylive-net is not in this image)
    assert not re.findall(r" usr/lib/pylive/(?:libssl|libcrypto|_ssl|_hashlib)\S*", listing)
    assert _binary_bytes(listing) == (DIST / "pylive").stat().st_size


def _binary_bytes(listing: str) -> int:
    """The size lsinitrd lists for usr/lib/pylive/pylive."""
    line = next(x for x in listing.splitlines() if x.endswith(" usr/lib/pylive/pylive"))
    return int(line.split()[4])


def test_net_initrd_has_the_full_dist(kernel):
    """With module pylive-net, module pylive installs the full dist in the same place (the image the
    network boots of test_pylive_net.py use, without systemd)."""
    from qemu.pylive_initrd import build_pylive_initrd

    img = build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-net-nosystemd.img", systemd=False, net=True)
    listing = subprocess.run(["lsinitrd", str(img)], capture_output=True, text=True, errors="replace",
                             check=True).stdout
    assert _binary_bytes(listing) == (NET_DIST / "pylive").stat().st_size != (DIST / "pylive").stat().st_size
    for name in ("libssl.so.3", "libcrypto.so.3", "_ssl.so", "_hashlib.so"):
        assert f" usr/lib/pylive/{name}\n" in listing, name


def test_both_live_modules_refused(kernel, tmp_path):
    out = tmp_path / "both.img"
    env = dict(os.environ, dracutbasedir=str(ensure_dracut_base()), PYLIVE_DIST=str(DIST),
               PYLIVE_NET_DIST=str(NET_DIST))
    proc = subprocess.run(
        ["dracut", "--force", "--no-hostonly", "--kver", kernel.version, "--kmoddir",
         str(kernel.moddir / kernel.version), "--conf", "/dev/null", "--confdir", str(tmp_path),
         "--drivers", " ".join(GUEST_DRIVERS), "--add", "pylive dmsquash-live", str(out)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode != 0
    assert not out.exists()
    assert "pylive: the modules 'pylive' and 'dmsquash-live' both boot live media; include only one" in proc.stderr


def test_base_build_refuses_a_network_step_in_one_line(kernel, pylive_initrd, live_iso, qemu_workdir):
    """The image without pylive-net (the base build, under systemd) and a local medium with
    live.updates=<url>: pylive.service stops before its first step with the one line naming the module,
    never an ImportError."""
    from qemu import NO_SHELL_ARGS, boot

    r = boot(kernel, pylive_initrd, f'"root=live:CDLABEL={live_iso.label}" live.updates=http://10.0.2.2/u.img '
             f"{NO_SHELL_ARGS}", cdrom=live_iso.path, workdir=qemu_workdir, timeout_s=200)
    assert not r.timed_out, "the guest did not end by itself"
    assert not r.report  # never reached a root
    line = ("live.updates=http://10.0.2.2/u.img needs pylive's network support, which this initramfs does not "
            "have: build the initramfs with the pylive-net dracut module (dracut --add pylive-net; needs "
            "dracut-network)")
    said = [ln for ln in r.console.splitlines() if line in ln]
    assert said and all(ln.endswith(line) for ln in said), r.console[-3000:]
    assert "Traceback" not in r.console and "internal error" not in r.console

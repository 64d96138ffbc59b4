"""pylive as an image builder adopts it: the Debian packages installed with dpkg, an initramfs made by
plain `dracut` with pylive-dracut-conf's snippet doing the switching (no private dracut tree, no
environment variables), that initramfs booted in QEMU to the live root, and the packages purged with
nothing left behind.

The host is changed only between dpkg -i and dpkg --purge (the purge runs whatever happens): the boot
comes after it, so other builds on this machine see an installed pylive for as short a time as possible.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from qemu import BUILD_DIR, CACHE_DIR, NO_SHELL_ARGS, boot, ensure_kernel
from qemu.media import DEFAULT_LABEL, build_live_iso, default_root_tree

DEB_DIR = BUILD_DIR / "deb"
PACKAGES = ("pylive", "pylive-dracut-conf")


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([os.fspath(c) for c in cmd], capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _status(package: str) -> str:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else "unknown"


def _debs() -> list[Path]:
    debs = [next(DEB_DIR.glob(f"{p}_*.deb"), None) for p in PACKAGES]
    if None in debs:
        pytest.fail(f"no packages in {DEB_DIR}: run `make deb` (make test-package does)", pytrace=False)
    return [d for d in debs if d]


def _paths(deb: Path) -> list[str]:
    """The paths a .deb installs (dpkg-deb -c), directories included."""
    out = []
    for line in _run("dpkg-deb", "-c", deb).splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0].removeprefix(".").rstrip("/")
        out.append(name or "/")
    return out


def test_packages_install_build_boot_and_purge(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root (dpkg -i)", pytrace=False)
    for p in PACKAGES:
        if _status(p) not in ("unknown", "unknown ok not-installed", "deinstall ok not-installed"):
            pytest.fail(f"{p} is already on this host ({_status(p)}): the test would purge it", pytrace=False)
    debs = _debs()
    kernel = ensure_kernel(CACHE_DIR)
    iso = build_live_iso(BUILD_DIR / "media" / "live.iso", DEFAULT_LABEL, BUILD_DIR / "media" / "live.work",
                         root_tree=default_root_tree(BUILD_DIR))
    paths = sorted({p for deb in debs for p in _paths(deb)})
    existed = {p for p in paths if os.path.lexists(p)}
    initrd = tmp_path / "initrd.img"
    env = {k: v for k, v in os.environ.items() if k not in ("PYLIVE_DIST", "PYLIVE_NET_DIST", "dracutbasedir")}

    _run("dpkg", "-i", *debs)
    try:
        listed = set(_run("dpkg", "-L", *PACKAGES).split())
        assert {"/usr/bin/pylive", "/usr/lib/pylive/pylive", "/usr/lib/pylive-net/pylive",
                "/usr/lib/dracut/modules.d/90pylive/module-setup.sh",
                "/usr/lib/dracut/dracut.conf.d/50-pylive.conf", "/usr/share/man/man8/pylive.8.gz",
                "/usr/share/bash-completion/completions/pylive"} <= listed
        # no conffile: removing the packages cannot leave an add_dracutmodules line for a module that is gone
        assert _run("dpkg-query", "-W", "-f=${Conffiles}", *PACKAGES).strip() == ""
        assert _run("pylive", "--version", env=env).strip().startswith("pylive ")
        assert _run("man", "-w", "pylive").strip() == "/usr/share/man/man8/pylive.8.gz"
        # plain dracut, as a builder runs it: the host's configuration (the snippet), the installed module
        _run("dracut", "--force", "--no-hostonly", "--kver", kernel.version, "--kmoddir", kernel.module_dir,
             initrd, env=env)
        listing = _run("lsinitrd", initrd)
        assert "usr/lib/pylive/pylive" in listing
        assert "libssl" not in listing  # the base dist: no module pylive-net in this build
        assert "dmsquash-live-root" not in listing  # omitted by the snippet
        for module in ("virtio_scsi", "sr_mod", "isofs", "squashfs", "dm-snapshot", "overlay"):  # no --add-drivers
            assert re.search(rf"/{module}\.ko(\.xz|\.zst)?\b", listing), module
        assert re.search(r"libexpat\.so\.1", listing)  # Debian's, now that the package does not carry a copy
        _run("dpkg", "-r", *PACKAGES)
        assert not os.path.lexists("/usr/lib/dracut/dracut.conf.d/50-pylive.conf")
    finally:
        subprocess.run(["dpkg", "--purge", *PACKAGES], capture_output=True, check=False)
    assert [p for p in PACKAGES if _status(p) not in ("unknown", "unknown ok not-installed")] == []
    left = [p for p in paths if p not in existed and os.path.lexists(p)]
    assert left == [], f"left behind after --purge: {left}"
    assert all(os.path.lexists(p) for p in existed)

    r = boot(kernel, initrd, f'"root=live:CDLABEL={iso.label}" rd.live.image {NO_SHELL_ARGS}', cdrom=iso.path,
             workdir=tmp_path / "boot", timeout_s=300)
    assert r.report, r.console[-3000:]
    mounts = {ln.split()[1]: ln.split() for ln in r.report["mounts"].splitlines()}
    assert mounts["/"][:3] == ["/dev/mapper/live-rw", "/", "ext4"]
    assert mounts["/run/initramfs/live"][:3] == ["/dev/sr0", "/run/initramfs/live", "iso9660"]
    assert "pylive: root: temporary device-mapper snapshot" in r.report["dmesg"]
    assert r.report["root-write"].splitlines()[2] == "match=yes"

"""A test root whose init is systemd (the host's), for what must be seen under a real systemd PID 1:
units the initramfs left in /run/systemd/system start after switch-root, and what they log reaches
the journal.

The tree is the standard test root (busybox, the guest init) plus systemd, systemd-journald,
systemctl and journalctl with their libraries, the journal's own units from the host, and a few
units of our own: a bare multi-user.target (the default) that wants the journal and
pylive-test-report.service, which runs the guest init (qemu/guest/init.sh) as a service once the
overlay watcher has started. The report and the power-off are the guest init's, as in every boot.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ._util import HarnessError, digest, serialized, which
from .media import GUEST_INIT, _copy_file, build_test_root, shared_libs

SYSTEMD = Path("/lib/systemd")
BINARIES = {"systemd": SYSTEMD / "systemd", "systemd-journald": SYSTEMD / "systemd-journald"}
TOOLS = ("systemctl", "journalctl")
HOST_UNITS = ("systemd-journald.service", "systemd-journald.socket", "systemd-journald-dev-log.socket")

UNITS = {
    "multi-user.target": """[Unit]
Description=pylive test root
""",
    "pylive-test-report.service": """[Unit]
Description=pylive test report (qemu/guest/init.sh as a service)
After=pylive-overlay-watch.service systemd-journald.service

[Service]
Type=oneshot
ExecStart=/sbin/pylive-test-init
StandardInput=null
StandardOutput=journal+console
""",
}


@serialized
def build_systemd_root(dest: Path) -> Path:
    """The test root at `dest`, with systemd as /sbin/init (kept when its inputs are unchanged)."""
    sources = [BINARIES[b] for b in BINARIES] + [Path(p) for t in TOOLS if (p := which(t))]
    if len(sources) != len(BINARIES) + len(TOOLS) or not all(p.exists() for p in sources):
        raise HarnessError(f"systemd is not installed on the host (need {', '.join([*BINARIES, *TOOLS])})")
    units = [SYSTEMD / "system" / u for u in HOST_UNITS]
    key = digest(["systemd-root-v1", sorted(UNITS.items())],
                 [*sources, *units, GUEST_INIT, Path(__file__).resolve()], follow_symlinks=True)
    stamp = dest.with_name(dest.name + ".sdkey")
    if dest.is_dir() and stamp.is_file() and stamp.read_text() == key:
        return dest
    stamp.unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    dest.with_name(dest.name + ".key").unlink(missing_ok=True)  # build_test_root's own stamp: build anew
    build_test_root(dest)
    for src in sources:
        _copy_file(src, dest, str(src))
        for lib in shared_libs(src):
            _copy_file(lib, dest, str(lib))
    unit_dir = dest / "lib/systemd/system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    for u in units:
        shutil.copyfile(u, unit_dir / u.name)
    for name, text in UNITS.items():
        (unit_dir / name).write_text(text)
    (unit_dir / "default.target").symlink_to("multi-user.target")
    wants = unit_dir / "multi-user.target.wants"
    wants.mkdir()
    for name in ("systemd-journald.service", "pylive-test-report.service"):
        (wants / name).symlink_to(f"../{name}")
    # the guest init runs as a service; systemd is PID 1
    (dest / "sbin/init").unlink()
    shutil.copyfile(GUEST_INIT, dest / "sbin/pylive-test-init")
    (dest / "sbin/pylive-test-init").chmod(0o755)
    (dest / "sbin/init").symlink_to("/lib/systemd/systemd")
    stamp.write_text(key)
    return dest

"""Fixtures for the QEMU boot tests (everything here is marked ``qemu``).

Run with ``python3 -m pytest -m qemu tests/qemu`` from the repository root.
Boots are slow (TCG, ~30 s each): the fixtures cache the kernel, media and
initramfs images under build/ and reuse them across sessions.

Missing tools: skipped when the environment variable CI is unset (a developer
machine without QEMU/dracut), but a FAILURE under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from qemu import BUILD_DIR, CACHE_DIR  # noqa: E402

QEMU_TESTS_DIR = Path(__file__).resolve().parent
REQUIRED_TOOLS = ("qemu-system-x86_64", "dracut", "mksquashfs", "xorriso", "mkfs.ext4",
                  "dmsetup", "losetup", "blockdev", "blkid", "depmod", "dpkg-deb", "apt-get",
                  "lsinitrd")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "qemu: boots a VM under QEMU (slow; select with -m qemu)")
    config.addinivalue_line(
        "markers", "documents_behaviour: records what a reference implementation does "
                   "(not a requirement on pylive)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: add the marker before the -m deselection runs
    for item in items:
        try:
            Path(str(item.path)).resolve().relative_to(QEMU_TESTS_DIR)
        except ValueError:
            continue
        item.add_marker(pytest.mark.qemu)


def _sbin_path() -> str:
    path = os.environ.get("PATH", "")
    extra = [d for d in ("/usr/sbin", "/sbin") if d not in path.split(os.pathsep)]
    return os.pathsep.join([path, *extra])


@pytest.fixture(scope="session")
def qemu_tools() -> None:
    """Fail (CI) or skip (developer machine) when a required tool is missing."""
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t, path=_sbin_path()) is None]
    if missing:
        msg = f"QEMU test tools missing: {' '.join(missing)}"
        if in_ci():
            pytest.fail(msg + " (CI is set: this is an error)", pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def kernel(qemu_tools):
    from qemu import ensure_kernel
    return ensure_kernel(CACHE_DIR)


@pytest.fixture(scope="session")
def test_root(qemu_tools) -> Path:
    """The guest root tree (busybox, dmsetup, the report-writing init)."""
    from qemu import default_root_tree
    return default_root_tree(BUILD_DIR)


@pytest.fixture(scope="session")
def live_iso(test_root):
    """Default medium: LiveOS/squashfs.img ⊃ LiveOS/rootfs.img, label with spaces."""
    from qemu.media import DEFAULT_LABEL, build_live_iso
    return build_live_iso(BUILD_DIR / "media" / "live.iso", DEFAULT_LABEL,
                          BUILD_DIR / "media" / "live.work", root_tree=test_root)


@pytest.fixture(scope="session")
def stock_initrd(kernel) -> Path:
    """Initramfs with Debian's stock 90dmsquash-live (dracut default set, with systemd)."""
    from qemu import build_initrd
    return build_initrd(kernel, BUILD_DIR / "initrd" / "stock-dmsquash.img",
                        add_modules=["dmsquash-live"])


@pytest.fixture(scope="session")
def pylive_initrd(kernel) -> Path:
    """Initramfs with pylive (dracut default set, with systemd), built from build/pylive.dist."""
    from qemu.pylive_initrd import build_pylive_initrd
    return build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-systemd.img")


@pytest.fixture(scope="session")
def nosd_initrd(kernel) -> Path:
    """Initramfs with pylive and no systemd (dracut's own init and initqueue)."""
    from qemu.pylive_initrd import build_pylive_initrd
    return build_pylive_initrd(kernel, BUILD_DIR / "initrd" / "pylive-nosystemd.img", systemd=False)


@pytest.fixture
def qemu_workdir(request) -> Path:
    """Per-test directory under build/qemu-tests/ (kept after the run for debugging)."""
    nodeid = request.node.nodeid.replace("tests/qemu/", "").replace(".py::", "-")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[:120]
    d = BUILD_DIR / "qemu-tests" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d

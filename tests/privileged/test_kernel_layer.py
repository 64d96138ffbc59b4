"""The kernel layer on the host's real loop devices and mount(2) (root; no device-mapper here)."""

import os
import subprocess
from pathlib import Path

import pytest

from pylive import probe
from pylive.linux import loop, mount

pytestmark = pytest.mark.privileged


def _can_loop_and_mount() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control"
    return None


@pytest.fixture(scope="module", autouse=True)
def capability() -> None:
    why = _can_loop_and_mount()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"privileged tier cannot run in CI: {why}")
        pytest.skip(why)


@pytest.fixture
def squashfs_image(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "LiveOS").mkdir(parents=True)
    (tree / "LiveOS/rootfs.img").write_bytes(b"\xee" * 8192)
    (tree / "hello").write_text("pylive\n")
    image = tmp_path / "squashfs.img"
    subprocess.run(["mksquashfs", str(tree), str(image), "-quiet", "-noappend", "-no-progress"], check=True)
    return image


def _backing_file(node: str) -> str:
    return Path(f"/sys/block/{Path(node).name}/loop/backing_file").read_text().strip()


def test_attach_readonly_mount_and_detach(squashfs_image: Path, tmp_path: Path) -> None:
    node = loop.attach_loop(os.fspath(squashfs_image), readonly=True)
    try:
        name = Path(node).name
        assert _backing_file(node) == os.fspath(squashfs_image)
        assert Path(f"/sys/block/{name}/ro").read_text().strip() == "1"
        assert probe.read_fstype(node) == "squashfs"
        assert probe.device_sectors(node) == squashfs_image.stat().st_size // 512
        target = tmp_path / "mnt"
        target.mkdir()
        mount.mount(node, os.fspath(target), "squashfs", ("ro",))
        try:
            assert (target / "hello").read_text() == "pylive\n"
            assert (target / "LiveOS/rootfs.img").stat().st_size == 8192
            # the inner image attaches read-only from the mounted squashfs, as at boot
            inner = loop.attach_loop(os.fspath(target / "LiveOS/rootfs.img"), readonly=True)
            try:
                assert probe.device_sectors(inner) == 16
                with open(inner, "rb") as f:
                    assert f.read(4) == b"\xee" * 4
                with pytest.raises(OSError), open(inner, "r+b", buffering=0) as f:
                    f.write(b"x" * 512)  # a read-only loop refuses writes (EPERM or EACCES)
            finally:
                loop.detach_loop(inner)
        finally:
            mount.umount(os.fspath(target))
        assert not os.path.ismount(target)
    finally:
        loop.detach_loop(node)
    assert not Path(f"/sys/block/{name}/loop/backing_file").exists()


def test_writable_loop_over_sparse_file(tmp_path: Path) -> None:
    cow = tmp_path / "overlay"
    fd = os.open(cow, os.O_CREAT | os.O_WRONLY, 0o600)
    os.ftruncate(fd, 2048 * 1024 * 1024)
    os.close(fd)
    assert os.stat(cow).st_blocks == 0  # sparse: no memory or disk used until written
    node = loop.attach_loop(os.fspath(cow), readonly=False)
    try:
        assert probe.device_sectors(node) == 2048 * 2048
        with open(node, "r+b") as f:
            f.seek(4096)
            f.write(b"written")
        with open(cow, "rb") as f:
            f.seek(4096)
            assert f.read(7) == b"written"
    finally:
        loop.detach_loop(node)


def test_mount_errors_name_the_syscall_and_target(tmp_path: Path) -> None:
    with pytest.raises(OSError) as e:
        mount.mount("/dev/does-not-exist", os.fspath(tmp_path), "squashfs", ("ro",))
    assert e.value.filename == os.fspath(tmp_path)
    assert str(e.value.strerror).startswith("mount: ")


def test_mount_options_split_flags_from_data() -> None:
    assert mount.split_options(("ro", "noatime", "size=10M")) == (mount.MS_RDONLY, "noatime,size=10M")
    assert mount.split_options(("ro", "rw")) == (0, "")


def test_size_of_a_block_device_is_its_bytes(tmp_path: Path) -> None:
    """A squashfs partition copied to RAM: st_size of a block device is 0, its size is what matters."""
    from pylive.system import RealSystem

    image = tmp_path / "disk.img"
    image.write_bytes(b"\x01" * (3 << 20))
    dev = loop.attach_loop(str(image), True)
    try:
        assert os.stat(dev).st_size == 0
        assert RealSystem().file_size(dev) == 3 << 20
        assert RealSystem().file_size(str(image)) == 3 << 20
    finally:
        loop.detach_loop(dev)

"""iso-scan and root=live:<file> on the host's real loop devices and mounts (root; no device-mapper).

The scanned "disks" are image files on writable loop devices, as a real disk would be: a read-only
mount could write to them, and the tests check that pylive's does not.
"""

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylive import isoscan, probe
from pylive.errors import NotFoundOnDisks
from pylive.linux import loop, mount
from pylive.linux.udev import BlockEvents, trigger_change
from pylive.plan import FindFile, Ref
from pylive.system import RealSystem

from .test_kernel_layer import capability  # noqa: F401 - the module's skip-or-fail probe

pytestmark = pytest.mark.privileged
SBIN = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=dict(os.environ, PATH=SBIN)).stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sysfs(node: str, attr: str) -> str:
    return Path(f"/sys/block/{Path(node).name}/{attr}").read_text().strip()


@pytest.fixture
def loops() -> Iterator[list[str]]:
    """Loop devices a test attached; detached afterwards, whatever happened."""
    attached: list[str] = []
    yield attached
    for node in reversed(attached):
        loop.detach_loop(node)


def ext4_image(path: Path, label: str, tree: Path, size_mib: int = 24) -> Path:
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    run("mkfs.ext4", "-q", "-F", "-L", label, "-d", str(tree), str(path))
    return path


def hybrid_iso(tmp_path: Path) -> Path:
    """An ISO9660 labelled 'HYBRID LIVE' with a GPT beside it whose partition 2 is a vfat 'ESP' (as xorriso makes
    Fedora's), holding LiveOS/squashfs.img."""
    tree = tmp_path / "iso-tree/LiveOS"
    tree.mkdir(parents=True)
    (tree / "squashfs.img").write_bytes(b"hsqs" + bytes(4092))
    esp = tmp_path / "esp.img"
    with open(esp, "wb") as f:
        f.truncate(4 << 20)
    run("mkfs.vfat", "-n", "ESP", str(esp))
    iso = tmp_path / "live.iso"
    run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "HYBRID LIVE", "-append_partition", "2", "0xef",
        str(esp), "-appended_part_as_gpt", "-o", str(iso), str(tree.parent))
    return iso


@pytest.fixture(scope="module")
def partition_tables(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip when the kernel reads no GPT (a kernel built without CONFIG_EFI_PARTITION creates no loopNpM)."""
    disk = tmp_path_factory.mktemp("gpt") / "probe.img"
    with open(disk, "wb") as f:
        f.truncate(4 << 20)
    subprocess.run(["sfdisk", "-q", str(disk)], input="label: gpt\nstart=2048, size=2048\n", text=True, check=True,
                   env=dict(os.environ, PATH=SBIN))
    node = loop.attach_loop(os.fspath(disk), True, partscan=True)
    try:
        if not Path(f"/sys/block/{Path(node).name}/{Path(node).name}p1").exists():
            pytest.skip("this kernel reads no GPT partition table (CONFIG_EFI_PARTITION)")
    finally:
        loop.detach_loop(node)


def test_iso_attached_read_only_with_partscan_and_its_label_read_directly(tmp_path: Path, loops: list[str]) -> None:
    iso = hybrid_iso(tmp_path)
    system = RealSystem()
    node = system.attach_loop_partscan(os.fspath(iso))
    loops.append(node)
    assert sysfs(node, "ro") == "1" and sysfs(node, "loop/partscan") == "1"
    assert sysfs(node, "loop/backing_file") == os.fspath(iso)
    whole = system.fs_identity(node)
    assert whole.fstype == "iso9660" and "HYBRID LIVE" in whole.labels
    assert whole.uuid == run("blkid", "-p", "-o", "value", "-s", "UUID", str(iso)).strip()
    candidates = [(c, system.fs_identity(c)) for c in (node, *system.partitions(node))]
    assert isoscan.pick_medium("t", "CDLABEL=HYBRID LIVE", ("HYBRID LIVE",), "", candidates) == node
    with pytest.raises(OSError), open(node, "r+b", buffering=0) as f:
        f.write(bytes(512))


@pytest.mark.usefixtures("partition_tables")
def test_hybrid_iso_partitions_appear_and_can_carry_the_label(tmp_path: Path, loops: list[str]) -> None:
    system = RealSystem()
    node = system.attach_loop_partscan(os.fspath(hybrid_iso(tmp_path)))
    loops.append(node)
    parts = system.partitions(node)
    assert parts == [f"{node}p1", f"{node}p2", f"{node}p3"] and all(os.path.exists(p) for p in parts)
    candidates = [(c, system.fs_identity(c)) for c in (node, *parts)]
    assert isoscan.pick_medium("t", "LABEL=ESP", ("ESP",), "", candidates) == f"{node}p2"


def test_udev_is_told_about_the_loop_device(tmp_path: Path, loops: list[str]) -> None:
    # Linux 5.19 to 6.15 announce no configured loop device; pylive sends the "change" uevent itself
    # (udevadm trigger). The kernel's uevent socket shows that it went out.
    node = loop.attach_loop(os.fspath(hybrid_iso(tmp_path)), True, partscan=True)
    loops.append(node)
    events = BlockEvents()
    events.wait(0.2)  # whatever the attach itself announced
    trigger_change(Path(node).name)
    event = events.monitor.poll(timeout=5)
    assert event is not None and event.action == "change" and event.sys_name == Path(node).name


def test_a_dirty_journal_is_not_replayed(tmp_path: Path, loops: list[str]) -> None:
    tree = tmp_path / "host"
    (tree / "isos").mkdir(parents=True)
    (tree / "isos/live.iso").write_bytes(b"iso")
    disk = ext4_image(tmp_path / "disk.img", "data", tree)
    run("debugfs", "-w", "-R", "feature needs_recovery", str(disk))  # as after a crash: the journal wants replay
    control = tmp_path / "control.img"
    control.write_bytes(disk.read_bytes())
    before = sha256(disk)

    node = loop.attach_loop(os.fspath(disk), readonly=False)  # a writable disk, as in a real machine
    loops.append(node)
    where = tmp_path / "run/isoscan"
    step = FindFile("iso-scan/filename=/isos/live.iso", ("/isos/live.iso",), os.fspath(where), 0,
                    Ref("isoscandev"), device=node)
    assert RealSystem().find_file(step, None) == node
    try:
        assert (where / "isos/live.iso").read_bytes() == b"iso"
        assert not os.path.ismount(isoscan.probe_dir(os.fspath(where)))
        options = next(line.split()[3] for line in Path("/proc/mounts").read_text().splitlines()
                       if line.split()[1] == os.fspath(where))
        assert options.split(",")[0] == "ro" and "norecovery" in options.split(",")  # ext4 shows noload so
    finally:
        mount.umount(os.fspath(where))
    assert sha256(disk) == before

    # The control: a plain read-only mount of the same image does write (the journal is replayed).
    node = loop.attach_loop(os.fspath(control), readonly=False)
    loops.append(node)
    target = tmp_path / "plain"
    target.mkdir()
    mount.mount(node, os.fspath(target), "ext4", ("ro",))
    mount.umount(os.fspath(target))
    assert sha256(control) != before


def test_devices_that_do_not_mount_read_only_or_lack_the_file_are_passed_over(tmp_path: Path,
                                                                               loops: list[str]) -> None:
    # a vfat ESP (on a kernel without vfat, it does not mount: skipped with a line), an ext4 without the
    # file, then the ext4 that holds it
    esp = tmp_path / "esp.img"
    with open(esp, "wb") as f:
        f.truncate(8 << 20)
    run("mkfs.vfat", "-n", "ESP", str(esp))
    empty, full = tmp_path / "empty", tmp_path / "full"
    (empty / "LiveOS").mkdir(parents=True)
    (full / "LiveOS").mkdir(parents=True)
    (full / "LiveOS/squashfs.img").write_bytes(b"hsqs")
    images = [esp, ext4_image(tmp_path / "a.img", "OTHER", empty), ext4_image(tmp_path / "b.img", "LIVE", full)]
    before = [sha256(i) for i in images]
    nodes = [loop.attach_loop(os.fspath(i), readonly=False) for i in images]
    loops.extend(nodes)
    live = tmp_path / "run/live"
    step = FindFile("root=live:/live.img", ("/LiveOS/squashfs.img", "/LiveOS/rootfs.img"), os.fspath(live), 0,
                    Ref("live-partition"), within=Ref("livedev"))
    assert RealSystem().find_file(step, nodes) == nodes[2]
    try:
        assert (live / "LiveOS/squashfs.img").read_bytes() == b"hsqs"
        assert not os.path.ismount(isoscan.probe_dir(os.fspath(live)))
    finally:
        mount.umount(os.fspath(live))
    with pytest.raises(NotFoundOnDisks, match=r"^root=live:/live.img: no partition holds /LiveOS/other.img "
                                              r"\(looked in: .*loop\d+\(ext4\), loop\d+\(ext4\)"):
        RealSystem().find_file(FindFile("root=live:/live.img", ("/LiveOS/other.img",), os.fspath(live), 0,
                                        Ref("p"), within=Ref("livedev")), nodes)
    assert not os.path.ismount(live) and [sha256(i) for i in images] == before


@pytest.mark.usefixtures("partition_tables")
def test_disk_image_partition_holding_the_live_directory(tmp_path: Path, loops: list[str]) -> None:
    # root=live:/live.img: a GPT disk whose partition 1 is an ESP and partition 2 the medium
    tree = tmp_path / "medium"
    (tree / "LiveOS").mkdir(parents=True)
    (tree / "LiveOS/squashfs.img").write_bytes(b"hsqs")
    esp, medium = tmp_path / "esp.img", ext4_image(tmp_path / "medium.img", "LIVE", tree)
    with open(esp, "wb") as f:
        f.truncate(8 << 20)
    run("mkfs.vfat", "-n", "ESP", str(esp))
    disk = tmp_path / "live.img"
    with open(disk, "wb") as f:
        f.truncate(40 << 20)
    subprocess.run(["sfdisk", "-q", str(disk)], input="label: gpt\nstart=2048, size=16384, type=U\n"
                   "start=18432, size=49152, type=L\n", text=True, check=True, env=dict(os.environ, PATH=SBIN))
    for part, start in ((esp, 2048), (medium, 18432)):
        run("dd", f"if={part}", f"of={disk}", "bs=512", f"seek={start}", "conv=notrunc", "status=none")
    before = sha256(disk)

    system = RealSystem()
    node = system.attach_loop_partscan(os.fspath(disk))
    loops.append(node)
    assert probe.read_fstype(node) is None  # no filesystem on the whole image: its partitions are looked at
    live = tmp_path / "run/live"
    step = FindFile("root=live:/live.img", ("/LiveOS/squashfs.img", "/LiveOS/rootfs.img"), os.fspath(live), 0,
                    Ref("live-partition"), within=Ref("livedev"))
    assert system.find_file(step, system.partitions(node)) == f"{node}p2"
    try:
        assert (live / "LiveOS/squashfs.img").read_bytes() == b"hsqs"
        assert system.fs_identity(f"{node}p2").labels == ("LIVE",)
    finally:
        mount.umount(os.fspath(live))
    assert sha256(disk) == before

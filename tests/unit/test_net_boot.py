"""A network root= run for real against a fake machine: the order of the network steps, what is left
out (rd.live.ram of an image already in RAM), what is undone on failure, live.updates, the state file."""

from __future__ import annotations

import json

import pytest

from pylive import boot
from pylive.cmdline import Args
from pylive.errors import LiveError, NoNetworkSupport
from pylive.options import parse_options
from pylive.planner.net import download_room_bytes

from .test_decisions import LIVE, machine

URL = "http://10.0.2.2:8000/LiveOS/squashfs.img"


def _index(calls: list[str], prefix: str) -> int:
    return next(i for i, c in enumerate(calls) if c.startswith(prefix))


def test_network_root_runs_in_order_and_skips_the_ram_copy() -> None:
    sys = machine("inner", source="net-squashfs")
    opts = parse_options(Args.from_text(f"root=live:{URL} rd.live.ram live.updates=http://10.0.2.2:8000/u.img"))
    result = boot.run(opts, sys)
    calls = sys.calls
    wait, tmpfs = _index(calls, "wait_network 10.0.2.2 60"), _index(calls, "mount -t tmpfs -o size=3072m")
    fetch = _index(calls, f"fetch {URL} /run/initramfs/live-net/squashfs.img")
    attach = _index(calls, "losetup -r -P")
    assert wait < tmpfs < fetch < attach, calls
    assert "/run/initramfs/live-net/squashfs.img" in calls[attach]
    assert not any(c.startswith("cp ") for c in calls), "the download is in RAM already: no rd.live.ram copy"
    # live.updates: fetched and applied once the root is mounted on /sysroot
    root = next(i for i, c in enumerate(calls) if c.startswith("mount ") and c.endswith(" /sysroot"))
    updates = _index(calls, "fetch http://10.0.2.2:8000/u.img /run/initramfs/live-net/updates.img")
    assert root < updates < _index(calls, "apply_updates /run/initramfs/live-net/updates.img /sysroot"), calls
    state = json.loads(sys.files[boot.STATE_FILE])
    assert state["spec"] == URL  # what the user asked for, not the file it became
    assert result.handles["livedev"] == "/dev/loop0"


def test_a_failed_download_undoes_the_tmpfs() -> None:
    sys = machine("inner", source="net-squashfs")
    sys.fail_on = "fetch"
    with pytest.raises(LiveError):
        boot.run(parse_options(Args.from_text(f"root=live:{URL}")), sys)
    assert "umount /run/initramfs/live-net" in sys.calls, sys.calls
    assert not any(c.startswith("losetup") for c in sys.calls)


def test_nfs_root_mounts_the_export_and_reads_the_image_there() -> None:
    sys = machine("inner", source="nfs-iso")
    boot.run(parse_options(Args.from_text("root=live:nfs://10.0.2.2/srv/live/live.iso")), sys)
    calls = sys.calls
    assert _index(calls, "wait_network 10.0.2.2") < _index(calls, "mount_nfs 10.0.2.2:/srv/live /run/initramfs/nfs")
    assert any(c.startswith("losetup -r -P") and c.endswith("/run/initramfs/nfs/live.iso") for c in calls), calls
    assert not any(c.startswith("fetch") for c in calls)


@pytest.mark.parametrize(("root", "call"), [
    ("nfs4://10.0.2.2:20490/srv/live/live.iso", "mount_nfs 10.0.2.2:/srv/live /run/initramfs/nfs 4 port=20490"),
    ("nfs://10.0.2.2:2049/srv/live/live.iso", "mount_nfs 10.0.2.2:/srv/live /run/initramfs/nfs "),
])
def test_nfs_port_in_the_url_is_the_mount_port(root: str, call: str) -> None:
    """dracut's nfs://server:port/path gives port=; the default port (2049) gives none."""
    sys = machine("inner", source="nfs-iso")
    boot.run(parse_options(Args.from_text(f"root=live:{root}")), sys)
    mount = [c for c in sys.calls if c.startswith("mount_nfs")]
    assert mount == [call], sys.calls


@pytest.mark.parametrize(("mem", "minmem", "room_mib"), [
    (4096, "1024", 3072), (4096, "50%", 2048), (1024, "64", 1024 - 128), (100, "1024", 0), (None, "1024", None),
])
def test_download_room(mem: int | None, minmem: str, room_mib: int | None) -> None:
    """RAM less rd.minmem (dracut-ng's check_live_ram), and at least 128 MiB left for the initramfs."""
    opts = parse_options(Args.from_text(f"root=live:{URL} rd.minmem={minmem}"))
    room = download_room_bytes(opts, mem)
    assert room == (None if room_mib is None else room_mib << 20)


@pytest.mark.parametrize(("cmdline", "named"), [
    (f"root=live:{URL}", f"root=live:{URL}"),
    ("root=live:nfs://10.0.2.2/srv/live/live.iso", "root=live:nfs://10.0.2.2/srv/live/live.iso"),
    (f"{LIVE} live.updates=http://10.0.2.2:8000/u.img", "live.updates=http://10.0.2.2:8000/u.img"),
])
def test_the_base_binary_refuses_a_network_boot_before_any_step(cmdline: str, named: str) -> None:
    """Without the network code (an initramfs without module pylive-net): one line naming the option and
    the dracut module, and nothing done on the machine."""
    sys = machine("inner", source="net-squashfs")
    sys.network_code = False
    with pytest.raises(NoNetworkSupport) as e:
        boot.run(parse_options(Args.from_text(cmdline)), sys)
    assert str(e.value) == (f"{named} needs pylive's network support, which this initramfs does not have: "
                            "build the initramfs with the pylive-net dracut module "
                            "(dracut --add pylive-net; needs dracut-network)")
    assert sys.calls == []


def test_a_local_boot_does_not_need_the_network_code() -> None:
    sys = machine("inner")
    sys.network_code = False
    boot.run(parse_options(Args.from_text(LIVE)), sys)
    assert any(c.endswith(" /sysroot") for c in sys.calls)

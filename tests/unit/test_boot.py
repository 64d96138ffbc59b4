"""The whole boot decision for the default path, against a fake system (no root needed)."""

import json

import pytest

from pylive import boot
from pylive.cmdline import Args
from pylive.errors import DeviceTimeout, ImageNotFound, LiveError, StepFailed
from pylive.options import parse_options
from pylive.planner import Mode
from pylive.probe import BlockDevice, FsIdentity
from pylive.ramcopy import MIB, Room

from .fakesystem import FakeSystem, live_iso_system

CMDLINE = '"root=live:CDLABEL=Test Live 1" rd.live.image quiet'

EXPECTED_CALLS = [
    "modprobe loop squashfs dm_mod dm_snapshot",
    r"wait /dev/disk/by-label/Test\x20Live\x201 180",
    r"ln -s /dev/disk/by-label/Test\x20Live\x201 /run/initramfs/livedev",
    "mkdir /run/initramfs/live",
    "mount -t iso9660 -o ro /dev/sr0 /run/initramfs/live",
    "losetup -r /dev/loop0 /run/initramfs/live/LiveOS/squashfs.img",
    "mkdir /run/initramfs/squashfs",
    "mount -t squashfs -o ro /dev/loop0 /run/initramfs/squashfs",
    "losetup -r /dev/loop1 /run/initramfs/squashfs/LiveOS/rootfs.img",
    "truncate -s 34359738368 /overlay",
    "losetup /dev/loop2 /overlay",
    "dmsetup create live-rw 0 131072 snapshot 7:1 7:2 PO 8",
    "dmsetup create --readonly live-base 0 131072 linear 7:1 0",
    "ln -s /dev/loop1 /dev/live-base",
    "mount -t ext4 -o defaults /dev/mapper/live-rw /sysroot",
    "umount -l /run/initramfs/squashfs",
    "ln -s null /dev/root",
    "mkdir /run/initramfs",
    "touch /run/initramfs/.need_shutdown",
    "write /run/initramfs/pylive.json",
]


def run(cmdline: str, system, newroot: str = "/sysroot"):
    return boot.run(parse_options(Args.from_text(cmdline)), system, newroot)


def test_default_path() -> None:
    sys = live_iso_system()
    result = run(CMDLINE, sys)
    assert sys.calls == EXPECTED_CALLS
    assert result.mode is Mode.DM_SNAPSHOT_TEMP
    assert result.handles["live-rw"] == "/dev/mapper/live-rw"
    state = json.loads(sys.files["/run/initramfs/pylive.json"])
    assert state["mode"] == "dm_snapshot_temp" and state["devices"]["livedev"] == "/dev/sr0"


def test_overlay_size_and_rootflags() -> None:
    sys = live_iso_system()
    run(CMDLINE + " rd.live.overlay.size=2048 rootflags=noatime,discard", sys)
    assert "truncate -s 2147483648 /overlay" in sys.calls
    assert "mount -t ext4 -o noatime,discard /dev/mapper/live-rw /sysroot" in sys.calls


@pytest.mark.parametrize(
    ("cmdline", "udev_path"),
    [
        ("root=live:UUID=2026-11-26-14-40-00-00", "/dev/disk/by-uuid/2026-11-26-14-40-00-00"),
        ("rd.live.image root=LABEL=LIVE", "/dev/disk/by-label/LIVE"),
        ("root=live:LABEL=a/b", r"/dev/disk/by-label/a\x2fb"),
    ],
)
def test_other_specs_wait_for_their_udev_path(cmdline: str, udev_path: str) -> None:
    sys = live_iso_system()
    sys.links = {udev_path: "/dev/sr0"}
    run(cmdline, sys)
    assert f"wait {udev_path} 180" in sys.calls


def test_rd_live_dir_and_squashimg() -> None:
    sys = live_iso_system(medium={"images/live.sqfs"})
    sys.fstypes["/run/initramfs/live/images/live.sqfs"] = "squashfs"
    sys.contents["/run/initramfs/live/images/live.sqfs"] = {"LiveOS/rootfs.img"}
    run(CMDLINE + " rd.live.dir=images rd.live.squashimg=live.sqfs", sys)
    assert "losetup -r /dev/loop0 /run/initramfs/live/images/live.sqfs" in sys.calls


def test_missing_device_names_spec_path_and_devices_seen() -> None:
    sys = live_iso_system(label="Other")
    with pytest.raises(DeviceTimeout) as e:
        run(CMDLINE + " rd.retry=20", sys)
    assert str(e.value) == (
        r"live medium CDLABEL=Test Live 1 not found after 20s (waited for /dev/disk/by-label/Test\x20Live\x201); "
        'block devices seen: sr0(iso9660,"Other"), vda: check the label or UUID on root=, or raise rd.retry'
    )
    assert sys.calls[-1] == r"wait /dev/disk/by-label/Test\x20Live\x201 20"


def test_a_label_written_as_boot_menus_write_it_is_found() -> None:
    sys = live_iso_system(label="CentOS 7 x86_64")
    result = run(r"root=live:CDLABEL=CentOS\x207\x20x86_64 rd.live.image", sys)
    assert r"wait /dev/disk/by-label/CentOS\x207\x20x86_64 180" in sys.calls
    assert result.handles["livedev"] == "/dev/sr0"
    assert json.loads(sys.files["/run/initramfs/pylive.json"])["spec"] == "CDLABEL=CentOS 7 x86_64"


def test_missing_device_suggests_a_label_that_differs_only_in_case() -> None:
    sys = live_iso_system(label="CentOS 7 x86_64")
    with pytest.raises(DeviceTimeout) as e:
        run(r"root=live:CDLABEL=CENTOS\x207\x20x86_64 rd.live.image rd.retry=5", sys)
    assert str(e.value) == (
        "live medium CDLABEL=CENTOS 7 x86_64 not found after 5s "
        r"(waited for /dev/disk/by-label/CENTOS\x207\x20x86_64); "
        """block devices seen: sr0(iso9660,"CentOS 7 x86_64"), vda: """
        r"did you mean CDLABEL=CentOS\x207\x20x86_64? (/dev/sr0 is labelled 'CentOS 7 x86_64')"
    )


def test_missing_overlay_device_suggests_a_near_label(pylive_logs) -> None:
    sys = live_iso_system()
    sys.devices.append(BlockDevice("sdb1", 1 << 20, "Persist", "ext4", "sdb", 1))
    run(CMDLINE + " rd.live.overlay=LABEL=persist rd.live.overlay.nouserconfirmprompt", sys)
    assert ("persistent overlay device LABEL=persist is not there: did you mean LABEL=Persist? "
            "(/dev/sdb1 is labelled 'Persist')") in pylive_logs.messages


def test_medium_without_image_says_what_was_searched_and_unwinds() -> None:
    sys = live_iso_system(medium={"EFI/BOOT/grubx64.efi"})
    with pytest.raises(ImageNotFound) as e:
        run(CMDLINE, sys)
    assert str(e.value) == (
        "no live root image in the live medium CDLABEL=Test Live 1 (searched: /LiveOS/squashfs.img, "
        "/LiveOS/rootfs.img): check rd.live.dir=LiveOS and rd.live.squashimg=squashfs.img"
    )
    assert sys.mounts == {} and sys.calls[-2:] == ["umount /run/initramfs/live", "rm /run/initramfs/livedev"]


def test_squashfs_with_liveos_but_no_image() -> None:
    # dracut sets nothing up here and the boot waits for a device that never comes
    sys = live_iso_system(squash={"LiveOS/other.img"})
    with pytest.raises(ImageNotFound) as e:
        run(CMDLINE, sys)
    assert str(e.value) == (
        "no live root image in /LiveOS/squashfs.img (searched: /LiveOS/rootfs.img, /LiveOS/ext3fs.img): "
        "the squashfs has a LiveOS directory but no root image in it"
    )


def test_squashfs_without_rootfs_img_or_usr() -> None:
    sys = live_iso_system(squash={"etc/hostname"})
    with pytest.raises(ImageNotFound) as e:
        run(CMDLINE, sys)
    assert str(e.value) == (
        "no live root image in /LiveOS/squashfs.img (searched: /LiveOS/rootfs.img, /usr, /ostree): "
        "the squashfs must hold LiveOS/rootfs.img, or be a root tree itself"
    )
    assert sys.loops == {} and sys.mounts == {}


def test_failure_rolls_back_everything() -> None:
    sys = live_iso_system()
    sys.fail_on = "dmsetup create --readonly live-base"
    with pytest.raises(StepFailed, match="^dmsetup create --readonly live-base .* failed: "):
        run(CMDLINE, sys)
    assert sys.dm == {} and sys.loops == {} and sys.mounts == {}
    assert "rm /overlay" in sys.calls


def test_state_file_that_cannot_be_written_is_a_warning(pylive_logs: pytest.LogCaptureFixture) -> None:
    """Found by fuzzing: a failed write of the state file (a full /run) escaped as OSError once the root was
    built, and failed the boot as an internal error."""
    sys = live_iso_system()
    sys.fail_on = "write /run/initramfs/pylive.json"
    result = run(CMDLINE, sys)
    assert result.mode is Mode.DM_SNAPSHOT_TEMP and sys.mounts["/sysroot"] == "/dev/mapper/live-rw"
    assert ("/run/initramfs/pylive.json could not be written (write /run/initramfs/pylive.json: Input/output error): "
            "`pylive status` in the booted system will not know the overlay") in pylive_logs.messages
    assert "rm /run/initramfs/pylive.json" in sys.calls  # nothing half-written for `pylive status` to misread


@pytest.mark.parametrize(("extra", "warned"), [
    ("rd.live.overlay.overlayfs", True),
    ("rd.overlay=1", True),  # dracut-ng's name for the same temporary OverlayFS
    ("rd.live.overlay.overlayfs rd.live.overlay.size=2048", False),  # the upper has a tmpfs of its own
    ("rd.live.overlay.overlayfs rd.live.overlay.size=50%", False),  # so here, sized from RAM
    ("rd.overlay=tmpfs:size=1G", False),
    ("", False),  # the temporary snapshot's COW file is in the initramfs's root, not on /run
])
def test_a_temporary_upper_on_a_full_run_warns_before_the_root(
        extra: str, warned: bool, pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = live_iso_system()
    sys.rooms["/run/initramfs"] = Room("/run", "tmpfs", 4 * MIB, 12 * 1024)
    run(f"{CMDLINE} {extra}", sys)
    lines = [m for m in pylive_logs.messages if "the temporary overlay keeps" in m]
    assert lines == ([
        "/run has 12 KiB free (of 4 MiB): the temporary overlay keeps the live system's changes there, and its "
        "writes fail once it is full: give the overlay a tmpfs of its own (rd.overlay=tmpfs:size=2G, or "
        "rd.live.overlay.size=<MiB>), or find what filled /run"] if warned else [])


def test_a_temporary_upper_on_a_roomy_run_says_nothing(pylive_logs: pytest.LogCaptureFixture) -> None:
    sys = live_iso_system()
    sys.rooms["/run/initramfs"] = Room("/run", "tmpfs", 300 * MIB, 64 * MIB)
    run(f"{CMDLINE} rd.live.overlay.overlayfs", sys)
    assert not [m for m in pylive_logs.messages if "the temporary overlay keeps" in m]


def test_no_overlay_inside_a_squashfs_stops_with_one_line() -> None:
    sys = live_iso_system()
    with pytest.raises(LiveError, match=r"^rd.live.overlay=none writes straight into the root image, but it is "
                       r"inside /LiveOS/squashfs.img, which cannot be written to: "):
        run(CMDLINE + " rd.live.overlay=none", sys)
    assert sys.mounts == {} and sys.loops == {}


OVERLAYFS_TAIL = [
    "modprobe overlay",
    "mkdir /run/rootfsbase",
    "mount -t ext4 -o ro /dev/loop1 /run/rootfsbase",
    "mkdir /run/initramfs/overlay/overlayfs",
    "mkdir /run/initramfs/overlay/ovlwork",
    "ln -s /run/initramfs/overlay/overlayfs /run/overlayfs",
    "ln -s /run/initramfs/overlay/ovlwork /run/ovlwork",
    "ln -s /dev/loop1 /dev/live-base",
    "mount -t overlay -o lowerdir=/run/rootfsbase,upperdir=/run/initramfs/overlay/overlayfs,"
    "workdir=/run/initramfs/overlay/ovlwork LiveOS_rootfs /sysroot",
    "umount -l /run/initramfs/squashfs",
]


def test_temporary_overlayfs() -> None:
    sys = live_iso_system()
    result = run(CMDLINE + " rd.live.overlay.overlayfs", sys)
    assert result.mode is Mode.OVERLAYFS_TEMP
    i = sys.calls.index("losetup -r /dev/loop1 /run/initramfs/squashfs/LiveOS/rootfs.img")
    assert sys.calls[i + 1 : i + 1 + len(OVERLAYFS_TAIL)] == OVERLAYFS_TAIL
    assert sys.dm == {}


def test_flattened_image_gets_overlayfs_without_a_flag() -> None:
    sys = live_iso_system(squash={"usr/bin/sh", "etc/os-release"})
    result = run(CMDLINE, sys)
    assert result.mode is Mode.OVERLAYFS_TEMP
    assert "mount -t none -o bind /run/initramfs/squashfs /run/rootfsbase" in sys.calls
    # as dracut: the squashfs's own mount goes (lazily); /run/rootfsbase's bind of it stays the lower layer
    i = sys.calls.index("umount -l /run/initramfs/squashfs")
    assert sys.calls[i - 1].startswith("mount -t overlay -o lowerdir=/run/rootfsbase,")
    assert sys.mounts["/sysroot"] == "LiveOS_rootfs"


def iso_on_disk_system(label: str = "Test Live 1") -> FakeSystem:
    """No CD: the live ISO is a file on /dev/sda2 (ext4); /dev/sda1 is an ext4 without it."""
    sys = live_iso_system(label)
    sys.links.clear()
    iso = "/run/initramfs/isoscan/isos/live.iso"
    sys.fstypes[iso], sys.contents[iso] = "iso9660", sys.contents.pop("/dev/sr0")
    sys.fsids[iso] = FsIdentity("iso9660", (label,), "2026-11-26-14-40-00-00")
    sys.devices = [BlockDevice("sda", 1 << 21), BlockDevice("sda1", 1 << 20, None, None, "sda", 1),
                   BlockDevice("sda2", 1 << 20, None, None, "sda", 2)]
    sys.fstypes["/dev/sda1"], sys.contents["/dev/sda1"] = "ext4", {"home/user/notes.txt"}
    sys.fstypes["/dev/sda2"], sys.contents["/dev/sda2"] = "ext4", {"isos/live.iso"}
    return sys


ISO_SCAN_CALLS = [
    "modprobe loop squashfs dm_mod dm_snapshot",
    "mkdir /run/initramfs/.pylive-probe",
    "mkdir /run/initramfs/isoscan",
    "mount -t ext4 -o ro,noload /dev/sda1 /run/initramfs/.pylive-probe",
    "umount /run/initramfs/.pylive-probe",
    "mount -t ext4 -o ro,noload /dev/sda2 /run/initramfs/.pylive-probe",
    "mount -t none -o bind /run/initramfs/.pylive-probe /run/initramfs/isoscan",
    "umount /run/initramfs/.pylive-probe",
    "ln -s /dev/sda2 /run/initramfs/isoscandev",
    "losetup -r -P /dev/loop0 /run/initramfs/isoscan/isos/live.iso",
    "udevadm trigger --action=change /dev/loop0",
    "ln -s /dev/loop0 /run/initramfs/livedev",
    "mkdir /run/initramfs/live",
    "mount -t iso9660 -o ro /dev/loop0 /run/initramfs/live",
    "losetup -r /dev/loop1 /run/initramfs/live/LiveOS/squashfs.img",
]


def test_iso_scan_finds_the_iso_read_only_and_boots_it() -> None:
    sys = iso_on_disk_system()
    result = run(CMDLINE + " iso-scan/filename=/isos/live.iso", sys)
    assert sys.calls[: len(ISO_SCAN_CALLS)] == ISO_SCAN_CALLS
    assert result.mode is Mode.DM_SNAPSHOT_TEMP
    assert sys.mounts["/run/initramfs/isoscan"] == "/dev/sda2" and sys.loops["/dev/loop0"].endswith("live.iso")
    assert all("ro" in c.split()[4].split(",") for c in sys.calls if c.startswith("mount") and "/dev/sda" in c)
    state = json.loads(sys.files["/run/initramfs/pylive.json"])
    assert state["devices"]["isoscandev"] == "/dev/sda2" and state["devices"]["livedev"] == "/dev/loop0"


def test_iso_scan_with_ram_lets_go_of_the_iso_and_its_filesystem(pylive_logs) -> None:
    # dracut's apply-live-updates.sh: umount --detach-loop /run/initramfs/live; umount /run/initramfs/isoscan
    sys = iso_on_disk_system()
    sys.file_sizes["LiveOS/squashfs.img"] = 64 << 20
    run(CMDLINE + " iso-scan/filename=/isos/live.iso rd.live.ram", sys)
    i = sys.calls.index("umount /run/initramfs/live")
    assert sys.calls[i + 1 : i + 3] == ["losetup -d /dev/loop0", "umount /run/initramfs/isoscan"]
    assert "/run/initramfs/isoscan" not in sys.mounts and "/dev/loop0" not in sys.loops
    assert ("the ISO file is no longer used and the filesystem holding it was unmounted from /run/initramfs/isoscan: "
            "its disk can be removed") in pylive_logs.messages


def test_iso_scan_with_ram_goes_on_when_the_iso_filesystem_stays_busy(pylive_logs) -> None:
    sys = iso_on_disk_system()
    sys.file_sizes["LiveOS/squashfs.img"] = 64 << 20
    sys.fail_on = "umount /run/initramfs/isoscan"
    run(CMDLINE + " iso-scan/filename=/isos/live.iso rd.live.ram", sys)
    assert "/run/initramfs/isoscan" in sys.mounts and "/run/initramfs/live" not in sys.mounts
    assert any(m.startswith("the filesystem holding the ISO file stays mounted at /run/initramfs/isoscan")
               for m in pylive_logs.messages)


def test_iso_scan_failure_later_rolls_back_the_scan_too() -> None:
    sys = iso_on_disk_system()
    sys.fail_on = "dmsetup create live-rw"
    with pytest.raises(StepFailed):
        run(CMDLINE + " iso-scan/filename=/isos/live.iso", sys)
    assert sys.mounts == {} and sys.loops == {}
    assert "rm /run/initramfs/isoscandev" in sys.calls and "umount /run/initramfs/isoscan" in sys.calls


def test_iso_with_another_label_stops_with_the_label_to_use() -> None:
    sys = iso_on_disk_system(label="Fedora-WS-Live-40")
    with pytest.raises(LiveError) as e:
        run(CMDLINE + " iso-scan/filename=/isos/live.iso", sys)
    assert str(e.value) == (
        "iso-scan/filename=/isos/live.iso: the file found (/dev/loop0, iso9660) is labelled 'Fedora-WS-Live-40' "
        "with UUID 2026-11-26-14-40-00-00, not CDLABEL=Test Live 1: use root=live:CDLABEL=Fedora-WS-Live-40"
    )
    assert sys.mounts == {} and sys.loops == {}


def test_iso_in_the_initramfs() -> None:
    sys = iso_on_disk_system()
    sys.devices = []
    iso = "/run/initramfs/isoscan/isos/live.iso"
    sys.fstypes["/images/live.iso"], sys.contents["/images/live.iso"] = sys.fstypes[iso], sys.contents[iso]
    result = run("root=live:/images/live.iso", sys)
    assert sys.calls[1:6] == [
        "losetup -r -P /dev/loop0 /images/live.iso",
        "udevadm trigger --action=change /dev/loop0",
        "ln -s /dev/loop0 /run/initramfs/livedev",
        "mkdir /run/initramfs/live",
        "mount -t iso9660 -o ro /dev/loop0 /run/initramfs/live",
    ]
    assert result.mode is Mode.DM_SNAPSHOT_TEMP

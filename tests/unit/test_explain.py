"""`pylive explain` runs the real boot decision against a medium read without mounting."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.cmdline import Args
from pylive.explain import explain
from pylive.media import view_iso
from pylive.options import parse_options
from pylive.probe import BlockDevice

from .fuzzing import within

GOLDEN = Path(__file__).parent / "golden"
TOOLS = ("mksquashfs", "unsquashfs", "mkfs.ext4", "xorriso")
needs_tools = pytest.mark.skipif(
    any(shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None for t in TOOLS)
    and not os.environ.get("CI"),
    reason="squashfs-tools, e2fsprogs and xorriso are needed",
)


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, PATH=os.environ["PATH"] + ":/usr/sbin"))


@pytest.fixture(scope="module")
def medium_tree(tmp_path_factory) -> Path:
    """A medium directory: LiveOS/squashfs.img ⊃ LiveOS/rootfs.img (a real 8 MiB ext4)."""
    work = tmp_path_factory.mktemp("medium")
    inner = work / "inner/LiveOS"
    inner.mkdir(parents=True)
    _run("mkfs.ext4", "-q", "-F", "-L", "root", str(inner / "rootfs.img"), "8M")
    tree = work / "tree"
    (tree / "LiveOS").mkdir(parents=True)
    (tree / "EFI").mkdir()
    _run("mksquashfs", str(work / "inner"), str(tree / "LiveOS/squashfs.img"), "-quiet", "-noappend", "-no-progress")
    return tree


@pytest.fixture(scope="module")
def medium_iso(medium_tree, tmp_path_factory) -> Path:
    iso = tmp_path_factory.mktemp("iso") / "live.iso"
    _run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "Test Live 1", "-o", str(iso), str(medium_tree))
    return iso


def opts(text: str):
    return parse_options(Args.from_text(text))


@needs_tools
def test_iso_is_read_without_mounting(medium_iso) -> None:
    view = view_iso(medium_iso)
    assert view.fstype == "iso9660" and "'Test Live 1'" in view.name
    assert view.is_dir("LiveOS") and view.exists("LiveOS/squashfs.img")
    assert view.file_fstype("LiveOS/squashfs.img") == "squashfs"


def _root_records(iso: bytes) -> dict[bytes, int]:
    """The records of an ISO's root directory: name as recorded → offset in the image."""
    root = iso[16 * 2048 + 156 : 16 * 2048 + 190]
    start = struct.unpack_from("<I", root, 2)[0] * 2048
    out, pos = {}, start
    while iso[pos]:
        out[iso[pos + 33 : pos + 33 + iso[pos + 32]]] = pos
        pos += iso[pos]
    return out


# Found by fuzzing: a directory record shorter than its fields raised IndexError or struct.error out of
# `pylive explain --media` (an internal error); a directory listed under itself was walked again and
# again (two such: 2**32 walks, the listing never ended).
@needs_tools
@pytest.mark.parametrize("damage", ["short-record", "record-past-the-end", "name-past-the-record"])
def test_damaged_iso_directory_is_a_valueerror(medium_iso, tmp_path, damage: str) -> None:
    iso = bytearray(medium_iso.read_bytes())
    at = _root_records(bytes(iso))[b"LIVEOS"]
    if damage == "short-record":
        iso[at] = 15
    elif damage == "record-past-the-end":  # the root directory's size ends within the record
        start = struct.unpack_from("<I", iso, 16 * 2048 + 156 + 2)[0] * 2048
        struct.pack_into("<I", iso, 16 * 2048 + 156 + 10, at - start + 20)
    else:
        iso[at + 32] = 200
    bad = tmp_path / "bad.iso"
    bad.write_bytes(iso)
    with within(2), pytest.raises(ValueError, match=r"bad.iso: a directory record at sector \d+ is damaged"):
        view_iso(bad)
    data = explain(opts("root=live:LABEL=x"), bad)
    assert "error" not in data and "cannot be read without mounting" in " ".join(data["notes"])


@needs_tools
def test_unreadable_overlay_media_is_a_note(medium_tree, tmp_path, capsys) -> None:
    """--overlay-media that is no ISO: its ValueError ended explain as an internal error."""
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\xff" * 65536)
    argv = ["explain", "--cmdline", "root=live:LABEL=LIVE rd.live.overlay=LABEL=persist", "--media", str(medium_tree),
            "--overlay-media", str(junk)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{junk}: cannot be read without mounting ({junk}: not an ISO9660 image): the persistent overlay's " \
           "device is assumed absent" in out


@needs_tools
def test_iso_cut_within_its_volume_descriptor_is_no_iso(medium_iso, tmp_path) -> None:
    """Found by fuzzing: an image that ends 6 bytes into its primary volume descriptor raised struct.error."""
    cut = tmp_path / "cut.iso"
    cut.write_bytes(medium_iso.read_bytes()[: 16 * 2048 + 6])
    with pytest.raises(ValueError, match="cut.iso: not an ISO9660 image"):
        view_iso(cut)


@needs_tools
def test_iso_directory_listed_under_itself_is_read_once(medium_iso, tmp_path) -> None:
    iso = bytearray(medium_iso.read_bytes())
    records = _root_records(bytes(iso))
    root_extent = iso[records[b"\0"] + 2 : records[b"\0"] + 6]
    for name in (b"LIVEOS", b"EFI"):  # both subdirectories are the root again
        iso[records[name] + 2 : records[name] + 6] = root_extent
    loop = tmp_path / "loop.iso"
    loop.write_bytes(iso)
    with within(2):
        view = view_iso(loop)
    assert view.is_dir("LiveOS") and view.is_dir("EFI") and not view.exists("LiveOS/LiveOS")


@needs_tools
@pytest.mark.parametrize("kind", ["tree", "iso"])
def test_explain_default_path(kind, medium_tree, medium_iso) -> None:
    media = medium_tree if kind == "tree" else medium_iso
    data = explain(opts('"root=live:CDLABEL=Test Live 1" rd.live.overlay.size=2G'), media)
    assert "error" not in data, data
    assert data["device"]["udev_path"] == r"/dev/disk/by-label/Test\x20Live\x201"
    assert data["dm_tables"] == {
        "live-rw": ["0 16384 snapshot 7:1 7:2 PO 8"],
        "live-base": ["0 16384 linear 7:1 0"],
    }
    assert data["loop_devices"]["/dev/loop2"] == "/overlay"
    assert "create sparse file /overlay of 2048 MiB" in data["steps"]
    assert data["mounts"][-1] == "/dev/mapper/live-rw on /sysroot type ext4 (rw)"


@pytest.fixture(scope="module")
def overlay_tree(tmp_path_factory) -> Path:
    """A persistent overlay device's tree: LiveOS/overlay-LIVE-<uuid>/ with a sibling ovlwork/."""
    tree = tmp_path_factory.mktemp("persist")
    (tree / "LiveOS/overlay-LIVE-/etc").mkdir(parents=True)
    (tree / "LiveOS/ovlwork").mkdir()
    return tree


GOLDEN_CASES = {
    # name: (command line, uses the overlay tree, expected exit status)
    "explain-tree": ("root=live:LABEL=LIVE rd.live.imgae", False, 0),
    "explain-overlayfs-sized": ("root=live:LABEL=LIVE rd.overlay=tmpfs:size=2G rootflags=noatime", False, 0),
    "explain-persistent-dir": ("root=live:LABEL=LIVE rd.live.overlay=LABEL=persist rd.live.overlay.readonly", True, 0),
}


@needs_tools
@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_explain_text_matches_golden(name, medium_tree, overlay_tree, capsys) -> None:
    cmdline, with_overlay, status = GOLDEN_CASES[name]
    argv = ["explain", "--cmdline", cmdline, "--media", str(medium_tree)]
    if with_overlay:
        argv += ["--overlay-media", str(overlay_tree)]
    rc = main(argv)
    out = capsys.readouterr().out.replace(str(medium_tree), "<MEDIA>").replace(str(overlay_tree), "<OVERLAY>")
    assert rc == status
    if os.environ.get("PYLIVE_UPDATE_GOLDEN"):
        (GOLDEN / f"{name}.txt").write_text(out)
    assert out == (GOLDEN / f"{name}.txt").read_text()


@needs_tools
def test_explain_missing_image(medium_tree) -> None:
    data = explain(opts("root=live:LABEL=LIVE rd.live.dir=Other"), medium_tree)
    assert data["error"] == (
        "no live root image in the live medium LABEL=LIVE (searched: /Other/squashfs.img, /Other/rootfs.img): "
        "check rd.live.dir=Other and rd.live.squashimg=squashfs.img"
    )


def test_explain_without_media_assumes_the_fedora_layout(capsys) -> None:
    rc = main(["explain", "--json", "--cmdline", "root=live:UUID=2026-11-26-14-40-54-00"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert data["device"]["udev_path"] == "/dev/disk/by-uuid/2026-11-26-14-40-54-00"
    assert data["dm_tables"]["live-rw"] == ["0 0 snapshot 7:1 7:2 PO 8"]  # base size unknown without media
    assert any("no --media given" in n for n in data["notes"])


def test_explain_not_live_and_unsupported(capsys) -> None:
    assert main(["explain", "--cmdline", "root=/dev/sda1"]) == 1
    assert "error: root=/dev/sda1 is not a live medium" in capsys.readouterr().out
    assert main(["explain", "--cmdline", "root=live:nfs:10.0.2.2:/live"]) == 1
    out = capsys.readouterr().out
    assert "root=live:nfs:10.0.2.2:/live (an NFS root other than nfs://server/path/image) is not supported" in out


def test_explain_network_root(capsys) -> None:
    """The download into its own tmpfs, sized to RAM less rd.minmem, then the image as a file in the initramfs."""
    assert main(["explain", "--cmdline", "root=live:http://10.0.2.2/live.iso rd.minmem=512 "
                 "rd.pylive.mirror=http://10.0.2.3/live.iso rd.live.overlay.overlayfs"]) == 0
    out = capsys.readouterr().out
    assert "on the network" in out
    assert "wait up to 60s for a link, an address and a route to 10.0.2.2" in out
    assert re.search(r"download http://10\.0\.2\.2/live\.iso \(then 1 mirror\) into "
                     r"/run/initramfs/live-net/live\.iso, at most \d+ MiB", out), out
    assert "losetup -r -P /run/initramfs/live-net/live.iso" in out
    assert "which disk holds" not in out


def test_explain_thin_lists_the_pool_message(capsys) -> None:
    assert main(["explain", "--cmdline", "root=live:LABEL=x rd.live.overlay.thin"]) == 0
    out = capsys.readouterr().out
    assert "mode: temporary dm-thin snapshot\n  because rd.live.overlay.thin" in out
    assert "does not execute" not in out
    assert "dmsetup message live-overlay-pool 0 'create_thin 0'" in out


def test_explain_says_why_it_cannot_read_a_disk_image(tmp_path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 40000)
    data = explain(opts("root=live:LABEL=LIVE"), disk)
    assert any(n.startswith(f"{disk}: cannot be read without mounting") for n in data["notes"])
    assert data["dm_tables"]["live-rw"] == ["0 0 snapshot 7:1 7:2 PO 8"]


@pytest.fixture
def iso_host(medium_iso, tmp_path_factory) -> Path:
    """The directory tree of a disk's filesystem that holds the live ISO at /isos/live.iso."""
    host = tmp_path_factory.mktemp("host")
    (host / "isos").mkdir()
    shutil.copyfile(medium_iso, host / "isos/live.iso")
    return host


@pytest.fixture
def this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The block devices explain lists for iso-scan, fixed (they are the machine's own otherwise)."""
    devices = [BlockDevice("sda", 1 << 21), BlockDevice("sda1", 1 << 20, None, "ext4", "sda", 1),
               BlockDevice("sdb1", 1 << 20, None, "ntfs", "sdb", 1, True), BlockDevice("loop0", 10)]
    monkeypatch.setattr("pylive.explain.probe.block_devices", lambda: devices)


@needs_tools
@pytest.mark.usefixtures("this_machine")
def test_explain_iso_scan_matches_golden(iso_host, capsys) -> None:
    cmdline = '"root=live:CDLABEL=Test Live 1" iso-scan/filename=/isos/live.iso'
    assert main(["explain", "--cmdline", cmdline, "--media", str(iso_host)]) == 0
    out = capsys.readouterr().out.replace(str(iso_host), "<HOST>")
    if os.environ.get("PYLIVE_UPDATE_GOLDEN"):
        (GOLDEN / "explain-iso-scan.txt").write_text(out)
    assert out == (GOLDEN / "explain-iso-scan.txt").read_text()


@needs_tools
@pytest.mark.usefixtures("this_machine")
def test_explain_iso_scan_errors(iso_host, medium_iso) -> None:
    data = explain(opts('"root=live:CDLABEL=Test Live 1" iso-scan/filename=/isos/other.iso'), iso_host)
    assert data["error"] == (f"iso-scan/filename=/isos/other.iso: --media {iso_host} does not hold /isos/other.iso: "
                             "check the path (from the top of the filesystem that holds it)")
    data = explain(opts("root=live:CDLABEL=Other iso-scan/filename=/isos/live.iso"), iso_host)
    assert data["error"].startswith("iso-scan/filename=/isos/live.iso: the file found (/dev/loop0, iso9660) is "
                                    "labelled 'Test Live 1'")
    # --media may also be the ISO itself; which disk holds it is then unknown
    data = explain(opts('"root=live:LABEL=Test Live 1" iso-scan/filename=LABEL=data:/isos/live.iso'), medium_iso)
    assert "error" not in data, data
    assert data["steps"][1].startswith("find /isos/live.iso on /dev/disk/by-label/data, waiting up to 180s for it")
    assert any("which disk holds the file is only known at boot" in n for n in data["notes"])
    assert "iso_scan_order" not in data  # only the named device is looked at


@needs_tools
def test_explain_iso_in_the_initramfs(medium_iso) -> None:
    data = explain(opts("root=live:/images/live.iso rd.overlay"), medium_iso)
    assert "error" not in data, data
    assert data["steps"][1:6] == [
        "losetup -r -P /images/live.iso → <livedev>", "udevadm trigger --action=change <livedev> and its partitions",
        "ln -s <livedev> /run/initramfs/livedev", "mkdir -p /run/initramfs/live",
        "mount -t iso9660 -o ro <livedev> /run/initramfs/live"]
    assert data["loop_devices"]["/dev/loop0"] == "/images/live.iso"
    assert "/run/initramfs/livedev -> /dev/loop0" in data["left_for_booted_system"]


@pytest.fixture
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() sets pylive's logging up anew, on this test's stderr (an earlier test may have set it up)."""
    from pylive.log import log

    monkeypatch.setattr(log, "kmsg", None)
    monkeypatch.setattr(log, "_pending", False)
    monkeypatch.setattr(log, "level", 0)


LIVE_X = "root=live:CDLABEL=x"
# (command line, exit status, a line the output must hold)
HOSTILE_LINES = {
    "unbalanced quote": (f'"rd.live.ram {LIVE_X}', 1, "error: root=(unset) is not a live medium; pylive would do "
                                                      "nothing"),
    "unbalanced quote at the end": (f'{LIVE_X} rd.live.overlay.overlayfs "rd.live.ram', 0, "mode: temporary OverlayFS"),
    "quote mid-word": (f'{LIVE_X} rd.live.overlay."overlayfs"', 0, "mode: temporary OverlayFS"),
    "carriage returns": (f"{LIVE_X}\r\nrd.live.overlay.overlayfs\r\n", 0, "mode: temporary OverlayFS"),
    "tab, vertical tab, form feed": (f"{LIVE_X}\t\vrd.live.overlay.overlayfs\f", 0, "mode: temporary OverlayFS"),
    "lone and leading =": (f'{LIVE_X} = == =x ""', 0, "mode: temporary device-mapper snapshot"),
    "NUL": (f"{LIVE_X}\0 rd.live.dir=../..", 0, "mode: temporary device-mapper snapshot"),
    "shell in values": ("root=live:CDLABEL=$(reboot) rd.live.dir=`reboot`", 0,
                        "live medium: CDLABEL=$(reboot): wait up to 180s for /dev/disk/by-label/\\x24\\x28reboot\\x29"),
    "newline in a label": ('"root=live:CDLABEL=a\nerror: forged"', 0,
                           "live medium: CDLABEL=a\\x0aerror: forged: wait up to 180s for "
                           "/dev/disk/by-label/a\\x0aerror:\\x20forged"),
    "not UTF-8": ("root=live:CDLABEL=\udcff rd.live.dir=\udcfe", 0,
                  "live medium: CDLABEL=\\xff: wait up to 180s for /dev/disk/by-label/\\xff"),
    "10 KB label": ("root=live:CDLABEL=" + "x" * 10240, 0, "mode: temporary device-mapper snapshot"),
    "..": (f"{LIVE_X} rd.live.dir=../../etc", 2, "error: rd.live.dir=../../etc: must not lead outside"),
    ".. in the overlay's path": (f"{LIVE_X} rd.live.overlay=LABEL=p:/../../etc", 1,
                                 "error: rd.live.overlay=LABEL=p:/../../etc: must not lead outside"),
    "tmpfs size": (f"{LIVE_X} rd.overlay=tmpfs:size=abc", 2, "error: rd.overlay=tmpfs:size=abc: 'size=abc' is not"),
    "newline in a bad size": (f'{LIVE_X} "rd.live.overlay.size=4\nerror: forged"', 2,
                              "error: rd.live.overlay.size=4\\nerror: forged: not a size in MiB"),
    "10 KB bad size": (f"{LIVE_X} rd.live.overlay.size={'9' * 10240}X", 2, "error: rd.live.overlay.size=999"),
    "newline in an unknown option": (f'{LIVE_X} "rd.live.x\nerror: forged"', 0,
                                     "  unknown option 'rd.live.x\\nerror: forged' is ignored"),
}


@pytest.mark.usefixtures("fresh_log")
@pytest.mark.parametrize(("line", "status", "holds"), HOSTILE_LINES.values(), ids=HOSTILE_LINES.keys())
def test_explain_ends_with_a_plan_or_one_error_line(line: str, status: int, holds: str, capsys) -> None:
    """Whatever the command line holds: a plan, or one line saying what is wrong; never a traceback."""
    rc = main(["explain", "--cmdline", line])
    out, err = capsys.readouterr()
    lines = (out + err).splitlines()
    assert rc == status, out + err
    assert holds in lines or any(x.startswith(holds) for x in lines), out + err
    assert all(x.isprintable() and len(x) < 400 for x in lines if "x" * 300 not in x), out + err
    assert [x for x in lines if x.startswith("error: ")] == ([] if rc == 0 else [lines[-1]]), out + err
    assert "internal error" not in out + err and "Traceback" not in out + err
    if rc == 0:
        assert "mode: " in out

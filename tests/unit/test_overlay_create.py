"""`pylive overlay create`: the name from real ext4, vfat and ISO 9660 images (as blkid reads them), the
three forms, and each refusal leaving nothing behind. The target "is mounted" through a mountinfo
written here (create reads its root, as every pylive reader does), so no root or mount is needed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.errors import LiveError
from pylive.overlay.create import CreatePlan, Form, Target, live_dir_of, overlay_name, plan_create
from pylive.overlay.files import parse_size
from pylive.probe import read_fstype

from .fsimages import TOOLS_PATH, blkid, image, needs_mkfs

MIB = 1 << 20


def mounted(tmp_path: Path, source: Path | str, fstype: str, options: str = "rw,relatime",
            fsroot: str = "/") -> tuple[Path, Path]:
    """A fake root whose mountinfo says `source` (fstype) is mounted on tmp_path/stick; (root, stick)."""
    root, stick = tmp_path / "root", tmp_path / "stick"
    (root / "proc/self").mkdir(parents=True)
    stick.mkdir()
    (root / "proc/self/mountinfo").write_text(
        "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n"
        f"40 22 7:3 {fsroot} {os.fspath(stick).replace(' ', chr(92) + '040')} {options} - {fstype} {source} rw\n")
    return root, stick


def create(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    status = main(["overlay", "create", "--root", os.fspath(root), *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def tree(path: Path) -> list[str]:
    return sorted(os.fspath(p.relative_to(path)) for p in path.rglob("*"))


@needs_mkfs
@pytest.mark.parametrize(("kind", "fstype"), [("ext4", "ext4"), ("vfat32", "vfat"), ("vfat16", "vfat")])
def test_a_cow_file_named_after_the_filesystem_it_is_on(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       kind: str, fstype: str) -> None:
    img = image(tmp_path, kind)
    want = blkid(img)
    root, stick = mounted(tmp_path, img, fstype)
    status, out, err = create(capsys, root, "--size", "8", os.fspath(stick))
    assert (status, err) == (0, "")
    cow = stick / "LiveOS" / f"overlay-{want['LABEL']}-{want['UUID']}"
    assert tree(stick) == ["LiveOS", f"LiveOS/{cow.name}"]
    st = cow.stat()
    assert st.st_size == 8 * MIB and st.st_blocks * 512 >= 8 * MIB  # allocated, not sparse
    assert oct(st.st_mode & 0o777) == "0o600" and not any(cow.read_bytes())
    assert out.splitlines() == [
        f"created {cow}: a device-mapper COW file of 8 MiB, allocated, reading as zeros (the first boot writes "
        "its header)",
        f"named after the live medium {img}: LABEL={want['LABEL']!r}, UUID={want['UUID']}",
        "boot with: rd.live.overlay=" + (f"UUID={want['UUID']}" if " " in want["LABEL"] else f"LABEL={want['LABEL']}"),
    ]


@needs_mkfs
def test_named_after_another_medium_and_in_another_live_dir(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    iso, disk = image(tmp_path, "iso9660"), image(tmp_path, "ext4")
    want = blkid(iso)
    root, stick = mounted(tmp_path, disk, "ext4")
    status, out, _ = create(capsys, root, "--size", "1M", "--dir", "/multi/F40/", "--medium", os.fspath(iso),
                            os.fspath(stick))
    assert status == 0
    assert (stick / f"multi/F40/overlay-{want['LABEL']}-{want['UUID']}").stat().st_size == MIB
    assert "boot with: rd.live.overlay=UUID=0f3c6a52-6a3e-4a36-9c43-1f3e2f0f4e11" in out  # the disk's, not the ISO's


def test_an_overlayfs_directory_and_its_sister_ovlwork(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "medium.img"
    subprocess.run(["mkfs.ext4", "-q", "-L", "persist", "-U", "11111111-2222-3333-4444-555555555555", str(img),
                    "8M"], check=True, env=dict(os.environ, PATH=TOOLS_PATH))
    root, stick = mounted(tmp_path, img, "xfs")
    assert create(capsys, root, "--overlayfs", os.fspath(stick))[0] == 0
    upper = stick / "LiveOS/overlay-persist-11111111-2222-3333-4444-555555555555"
    assert tree(stick) == ["LiveOS", f"LiveOS/{upper.name}", "LiveOS/ovlwork"]
    for d in (upper, stick / "LiveOS/ovlwork"):
        assert d.is_dir() and oct(d.stat().st_mode & 0o777) == "0o755" and d.stat().st_uid == 0


@needs_mkfs
def test_on_vfat_the_overlayfs_form_is_an_ext4_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = image(tmp_path, "vfat32")
    root, stick = mounted(tmp_path, img, "vfat")
    status, out, _ = create(capsys, root, "--overlayfs", "--size", "16M", os.fspath(stick))
    assert status == 0
    made = stick / "LiveOS/overlay-STICK-1234-ABCD"
    assert out.startswith(f"created {made}: an ext4 image holding overlayfs/ and ovlwork/ of 16 MiB\n")
    assert made.stat().st_size == 16 * MIB and read_fstype(os.fspath(made)) == "ext4"
    assert blkid(made)["LABEL"] == "OVERLAY"
    for d in ("overlayfs", "ovlwork"):
        stat = subprocess.run(["debugfs", "-R", f"stat /{d}", str(made)], capture_output=True, text=True,
                              check=True, env=dict(os.environ, PATH=TOOLS_PATH)).stdout
        assert "Type: directory" in stat and "Mode:  0755" in stat and "User:     0   Group:     0" in stat, stat
    check = subprocess.run(["e2fsck", "-fn", str(made)], capture_output=True, env=dict(os.environ, PATH=TOOLS_PATH),
                           check=False)
    assert check.returncode == 0


def test_a_cow_size_the_kernel_would_invalidate_gets_one_chunk_more(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    t = Target("/s", "ext4", 1 << 40, "L", "U")
    plan = plan_create(t, 256 * MIB, False, "LiveOS", lambda p: False)
    assert plan.size == 256 * MIB + 4096 and "one chunk (4 KiB) more than asked" in plan.notes[0]
    assert plan_create(t, 255 * MIB, False, "LiveOS", lambda p: False).notes == ()


@pytest.mark.parametrize(("fstype", "size", "overlayfs", "form"), [
    ("ext4", 4 * MIB, False, Form.COW),
    ("vfat", 4095 * MIB, False, Form.COW),
    ("btrfs", None, True, Form.DIR),
    ("vfat", 8 * MIB, True, Form.IMAGE),
    ("exfat", 5000 * MIB, True, Form.IMAGE),  # no OverlayFS upper there, and no 4 GiB cap
])
def test_which_form(fstype: str, size: int | None, overlayfs: bool, form: Form) -> None:
    plan = plan_create(Target("/s", fstype, 1 << 40, "L", "U"), size, overlayfs, "LiveOS", lambda p: False)
    assert plan == CreatePlan(form, "/s/LiveOS/overlay-L-U", size or 0,
                              "/s/LiveOS/ovlwork" if form is Form.DIR else "")


@pytest.mark.parametrize(("fstype", "size", "overlayfs", "exists", "message"), [
    ("vfat", 4096 * MIB, False, "", "--size 4096 MiB: vfat holds no file larger than 4 GiB - 1 byte: use at most "
                                    "--size 4095M, or put the overlay on another filesystem"),
    ("ext4", 2 << 30, False, "", "/s has 1024 MiB free, a device-mapper COW file of 2048 MiB does not fit: give a "
                                 "smaller --size, or make room"),
    ("ext4", None, False, "", "--size is needed for a device-mapper COW file: add e.g. --size 4G"),
    ("vfat", None, True, "", "--size is needed for an ext4 image holding overlayfs/ and ovlwork/ on vfat, which "
                             "cannot hold an OverlayFS directory: add e.g. --size 4G"),
    ("ext4", MIB, True, "", "--size: an OverlayFS directory on ext4 has no size"),
    ("ext4", MIB, False, "/s/LiveOS/overlay-L-U", "/s/LiveOS/overlay-L-U exists already; it was left as it is: move "
                                                  "it away first"),
    ("ext4", None, True, "/s/LiveOS/ovlwork", "/s/LiveOS/ovlwork exists already"),
])
def test_what_create_refuses(fstype: str, size: int | None, overlayfs: bool, exists: str, message: str) -> None:
    with pytest.raises(LiveError) as e:
        plan_create(Target("/s", fstype, 1 << 30, "L", "U"), size, overlayfs, "LiveOS", lambda p: p == exists)
    assert str(e.value).startswith(message), str(e.value)


def test_names_and_dirs_that_cannot_be() -> None:
    assert overlay_name("Fedora-WS-Live-40", "2024-04-16-03-25-09-00", "/dev/sr0") == \
        "overlay-Fedora-WS-Live-40-2024-04-16-03-25-09-00"
    assert overlay_name("", "1234-ABCD", "/dev/sdb1") == "overlay--1234-ABCD"  # what the boot looks for then
    with pytest.raises(LiveError, match="/dev/sdb1 has no UUID to name the overlay after: give the live medium"):
        overlay_name("x", "", "/dev/sdb1")
    with pytest.raises(LiveError, match="has a '/'"):
        overlay_name("a/b", "U", "/dev/sdb1")
    assert live_dir_of("/multi//F40/") == "multi/F40"
    for bad in ("", "/", "../x", "a/../b"):
        with pytest.raises(LiveError, match="not a directory on the medium"):
            live_dir_of(bad)


@pytest.mark.parametrize(("text", "size"), [("4096", 4 << 30), ("512M", 512 * MIB), ("4G", 4 << 30), ("4GiB", 4 << 30),
                                            ("64k", 64 << 10), ("1T", 1 << 40), (" 8MB ", 8 * MIB)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "-1", "4.5G", "1P", "", "13K", "0x10"])
def test_sizes_that_are_not(text: str) -> None:
    with pytest.raises(LiveError, match="--size"):
        parse_size(text)


@needs_mkfs
@pytest.mark.parametrize(("setup", "message"), [
    ("file", "ext4.img is a file, not a directory: mount the filesystem it holds (e.g. mount -o loop"),
    ("inside", "stick/sub is inside the filesystem mounted on"),
    ("bind", "stick shows the directory /data of its filesystem, not its top: give a directory the whole "
             "filesystem is mounted on"),
    ("ro", "stick is mounted read-only: remount it read-write"),
    ("missing", "nothing: No such file or directory: give the directory the stick is mounted on"),
    ("tmpfs", "the LABEL and UUID of tmpfs (mounted on"),
    ("badmedium", "--medium"),
])
def test_targets_that_are_refused_leave_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str,
                                                message: str) -> None:
    img = image(tmp_path, "ext4")
    root, stick = mounted(tmp_path, "tmpfs" if setup == "tmpfs" else img, "ext4",
                          options="ro,relatime" if setup == "ro" else "rw", fsroot="/data" if setup == "bind" else "/")
    (stick / "sub").mkdir()
    target = {"file": img, "inside": stick / "sub", "missing": tmp_path / "nothing"}.get(setup, stick)
    extra = ["--medium", os.fspath(tmp_path)] if setup == "badmedium" else []
    before = tree(tmp_path)
    status, out, err = create(capsys, root, "--size", "4", *extra, os.fspath(target))
    assert (status, out) == (1, "")
    assert err.count("\n") == 1 and message in err, err
    assert tree(tmp_path) == before


@needs_mkfs
def test_a_failed_step_takes_back_what_it_made(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = image(tmp_path, "vfat32")
    root, stick = mounted(tmp_path, img, "vfat")
    status, _, err = create(capsys, root, "--overlayfs", "--size", "8K", os.fspath(stick))  # too small for mke2fs
    assert status == 1 and err.startswith("error: mkfs.ext4 failed on ") and err.count("\n") == 1, err
    assert tree(stick) == []  # neither the image nor the LiveOS directory made for it

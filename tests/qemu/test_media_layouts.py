"""LiveOS media layouts besides the classic ISO: what each builder puts where.

No VM is booted. Each medium is built (cached) under build/media/ and inspected
with the real tools: xorriso, unsquashfs, blkid, debugfs, fsck.erofs, sfdisk,
fsck.fat.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from qemu import BUILD_DIR
from qemu._util import tool_env
from qemu.media import (
    DEFAULT_LABEL,
    GPT_TYPE_BASIC_DATA,
    GPT_TYPE_LINUX_FS,
    LIVE_PARTLABEL,
    ROOTFS_LABEL,
    Media,
    blkid_probe,
    build_erofs_flat_iso,
    build_flat_iso,
    build_live_disk,
    build_test_root,
    build_uncompressed_iso,
    fat_add_tree,
)

MEDIA_DIR = BUILD_DIR / "media"
VFAT_LABEL = "PYLIVE"
LAYOUT_TOOLS = ("sfdisk", "mkfs.erofs", "fsck.erofs", "unsquashfs", "mkfs.vfat", "fsck.fat",
                "debugfs", "dd", "cp")


def sh(*cmd: object, check: bool = True, utf8: bool = False) -> subprocess.CompletedProcess[str]:
    env = tool_env() | ({"LC_ALL": "C.UTF-8"} if utf8 else {})
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, errors="replace",
                          env=env, check=check)


def iso_paths(iso: Path) -> set[str]:
    out = sh("xorriso", "-indev", iso, "-find", "/LiveOS", "-exec", "lsdl").stdout
    return set(re.findall(r"'(/[^']*)'$", out, re.M))


def iso_extract(iso: Path, dest: Path) -> Path:
    sh("xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/LiveOS", dest / "LiveOS")
    return dest / "LiveOS"


def squashfs_paths(img: Path, offset: int = 0) -> set[str]:
    out = sh("unsquashfs", "-o", offset, "-d", "ROOT", "-l", img).stdout
    return {line[len("ROOT/"):] for line in out.splitlines() if line.startswith("ROOT/")}


def assert_flat_root(paths: set[str]) -> None:
    assert {"usr", "usr/bin", "sbin/init", "etc/os-release", "bin/busybox", "proc"} <= paths
    assert not any(p.startswith("LiveOS") for p in paths)


@pytest.fixture(scope="module")
def layout_tools(qemu_tools) -> None:
    missing = [t for t in LAYOUT_TOOLS if shutil.which(t, path=tool_env()["PATH"]) is None]
    if missing:
        msg = f"media layout tools missing: {' '.join(missing)} (apt: fdisk erofs-utils dosfstools)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(msg + " (CI is set: this is an error)", pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def layout_root(layout_tools) -> Path:
    """The standard test root, built in its own directory: the session fixture
    ``test_root`` rebuilds build/test-root in place, which a concurrently running
    boot session may be reading."""
    return build_test_root(BUILD_DIR / "test-root-layouts")


@pytest.fixture(scope="module")
def flat_iso(layout_root) -> Media:
    return build_flat_iso(MEDIA_DIR / "flat.iso", DEFAULT_LABEL, root_tree=layout_root)


@pytest.fixture(scope="module")
def erofs_iso(layout_root) -> Media:
    return build_erofs_flat_iso(MEDIA_DIR / "erofs-flat.iso", DEFAULT_LABEL, root_tree=layout_root)


@pytest.fixture(scope="module")
def uncompressed_iso(layout_root) -> Media:
    return build_uncompressed_iso(MEDIA_DIR / "uncompressed.iso", DEFAULT_LABEL,
                                  root_tree=layout_root)


@pytest.fixture(scope="module")
def ext4_disk(layout_root) -> Media:
    return build_live_disk(MEDIA_DIR / "live-disk-ext4.img", DEFAULT_LABEL, root_tree=layout_root)


@pytest.fixture(scope="module")
def vfat_disk(layout_root) -> Media:
    return build_live_disk(MEDIA_DIR / "live-disk-vfat.img", VFAT_LABEL, root_tree=layout_root,
                           fstype="vfat")


def assert_iso_media(m: Media, layout: str) -> None:
    info = blkid_probe(m.path)
    assert (info["TYPE"], info["LABEL"], info["UUID"]) == ("iso9660", DEFAULT_LABEL, m.uuid)
    assert (m.fstype, m.label, m.layout) == ("iso9660", DEFAULT_LABEL, layout)
    assert re.fullmatch(r"\d{4}(-\d\d){6}", m.uuid)
    assert m.partuuid == "" and m.partlabel == ""


# ---- ISOs ------------------------------------------------------------------

def test_flat_squashfs_iso(flat_iso, tmp_path):
    assert_iso_media(flat_iso, "squashfs-flat")
    assert flat_iso.rootfs_label == ""
    assert iso_paths(flat_iso.path) == {"/LiveOS", "/LiveOS/squashfs.img"}
    img = iso_extract(flat_iso.path, tmp_path) / "squashfs.img"
    assert blkid_probe(img)["TYPE"] == "squashfs"
    assert_flat_root(squashfs_paths(img))


def test_flat_iso_is_cached(flat_iso, layout_root):
    before = flat_iso.path.stat().st_mtime_ns
    again = build_flat_iso(MEDIA_DIR / "flat.iso", DEFAULT_LABEL, root_tree=layout_root)
    assert again == flat_iso
    assert flat_iso.path.stat().st_mtime_ns == before


def test_flat_iso_adds_usr_to_a_copy_of_a_tree_without_it(layout_tools, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sbin").mkdir(parents=True)
    (tree / "sbin/init").write_text("#!/bin/sh\n")
    (tree / "etc").mkdir()
    (tree / "etc/os-release").write_text("ID=x\n")
    m = build_flat_iso(tmp_path / "f.iso", "NOUSR", root_tree=tree)
    paths = squashfs_paths(iso_extract(m.path, tmp_path / "x") / "squashfs.img")
    assert {"usr", "proc", "sbin/init", "etc/os-release"} <= paths
    assert sorted(p.name for p in tree.iterdir()) == ["etc", "sbin"]    # tree untouched


def test_erofs_flat_iso(erofs_iso, layout_root, tmp_path):
    assert_iso_media(erofs_iso, "erofs-flat")
    assert iso_paths(erofs_iso.path) == {"/LiveOS", "/LiveOS/squashfs.img"}
    img = iso_extract(erofs_iso.path, tmp_path) / "squashfs.img"
    info = blkid_probe(img)
    assert info["TYPE"] == "erofs" and info["UUID"]
    root = tmp_path / "root"
    sh("fsck.erofs", f"--extract={root}", img)
    assert (root / "usr/bin").is_dir() and (root / "proc").is_dir()
    assert (root / "sbin/init").read_bytes() == (layout_root / "sbin/init").read_bytes()
    assert (root / "bin/busybox").read_bytes() == (layout_root / "bin/busybox").read_bytes()
    assert not (root / "LiveOS").exists()


def test_uncompressed_rootfs_iso(uncompressed_iso, layout_root, tmp_path):
    assert_iso_media(uncompressed_iso, "uncompressed-rootfs")
    assert uncompressed_iso.rootfs_label == ROOTFS_LABEL
    assert iso_paths(uncompressed_iso.path) == {"/LiveOS", "/LiveOS/rootfs.img"}
    img = iso_extract(uncompressed_iso.path, tmp_path) / "rootfs.img"
    assert img.stat().st_size == 64 << 20
    info = blkid_probe(img)
    assert (info["TYPE"], info["LABEL"]) == ("ext4", ROOTFS_LABEL)
    os_release = sh("debugfs", "-R", "cat /etc/os-release", img).stdout
    assert os_release == (layout_root / "etc/os-release").read_text()
    assert "Type: regular" in sh("debugfs", "-R", "stat /sbin/init", img).stdout


# ---- GPT disks ---------------------------------------------------------------

def partition_table(disk: Path) -> dict:
    return json.loads(sh("sfdisk", "-J", disk).stdout)["partitiontable"]


def extract_partition(disk: Path, part: dict, dest: Path) -> Path:
    sh("dd", f"if={disk}", f"of={dest}", "bs=1M", f"skip={part['start'] * 512}",
       f"count={part['size'] * 512}", "iflag=skip_bytes,count_bytes", "conv=sparse", "status=none")
    return dest


def assert_disk(m: Media, fstype: str, label: str, type_guid: str) -> dict:
    assert (m.fstype, m.label, m.layout, m.rootfs_label, m.partlabel) == (
        fstype, label, "squashfs-rootfs", ROOTFS_LABEL, LIVE_PARTLABEL)
    table = partition_table(m.path)
    assert table["label"] == "gpt" and len(table["partitions"]) == 1
    part = table["partitions"][0]
    assert (part["name"], part["type"], part["uuid"].lower()) == (LIVE_PARTLABEL, type_guid,
                                                                   m.partuuid)
    assert part["start"] == 2048
    assert blkid_probe(m.path)["PTTYPE"] == "gpt"
    fs = sh("blkid", "-p", "-o", "export", "-O", part["start"] * 512, m.path).stdout
    assert f"TYPE={fstype}\n" in fs and f"UUID={m.uuid}\n" in fs
    assert f"LABEL={label.replace(' ', chr(92) + ' ')}\n" in fs     # blkid escapes spaces
    return part


def test_live_disk_ext4(ext4_disk, tmp_path):
    part = assert_disk(ext4_disk, "ext4", DEFAULT_LABEL, GPT_TYPE_LINUX_FS)
    assert ext4_disk.path.stat().st_size == 256 << 20
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", ext4_disk.uuid)
    pimg = extract_partition(ext4_disk.path, part, tmp_path / "part.img")
    assert blkid_probe(pimg)["UUID"] == ext4_disk.uuid
    assert "squashfs.img" in sh("debugfs", "-R", "ls -l /LiveOS", pimg).stdout
    sq = tmp_path / "squashfs.img"
    sh("debugfs", "-R", f"dump /LiveOS/squashfs.img {sq}", pimg)
    assert squashfs_paths(sq) == {"LiveOS", "LiveOS/rootfs.img"}
    sh("unsquashfs", "-d", tmp_path / "sq", sq)
    info = blkid_probe(tmp_path / "sq/LiveOS/rootfs.img")
    assert (info["TYPE"], info["LABEL"]) == ("ext4", ROOTFS_LABEL)


def test_live_disk_ids_survive_a_rebuild(ext4_disk, layout_root):
    ext4_disk.path.with_name(ext4_disk.path.name + ".json").unlink()     # force a rebuild
    again = build_live_disk(ext4_disk.path, DEFAULT_LABEL, root_tree=layout_root)
    assert again == ext4_disk


def test_live_disk_vfat(vfat_disk, tmp_path):
    part = assert_disk(vfat_disk, "vfat", VFAT_LABEL, GPT_TYPE_BASIC_DATA)
    assert re.fullmatch(r"[0-9A-F]{4}-[0-9A-F]{4}", vfat_disk.uuid)
    pimg = extract_partition(vfat_disk.path, part, tmp_path / "part.img")
    fsck = sh("fsck.fat", "-n", "-l", pimg, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    listed = re.findall(r"^Checking file (/\S*)", fsck.stdout, re.M)
    assert "/LiveOS" in listed and "/LiveOS/squashfs.img" in listed
    # the squashfs is stored contiguously: find its superblock and list it in place
    data = pimg.read_bytes()
    offset = data.find(b"hsqs")
    assert offset > 0 and offset % 512 == 0
    assert squashfs_paths(pimg, offset) == {"LiveOS", "LiveOS/rootfs.img"}


def test_live_disk_rejects_bad_parameters(layout_root, tmp_path):
    with pytest.raises(ValueError, match="label longer than 11"):
        build_live_disk(tmp_path / "d.img", DEFAULT_LABEL, root_tree=layout_root, fstype="vfat")
    with pytest.raises(ValueError, match="fstype"):
        build_live_disk(tmp_path / "d.img", "X", root_tree=layout_root, fstype="btrfs")
    from qemu._util import HarnessError
    with pytest.raises(HarnessError, match="do not fit"):
        build_live_disk(tmp_path / "d.img", "X", root_tree=layout_root, size_mb=5)


# ---- the FAT writer ------------------------------------------------------------

@pytest.mark.parametrize("fat_bits", [16, 32])
def test_fat_add_tree(layout_tools, tmp_path, fat_bits):
    tree = tmp_path / "tree"
    (tree / "LiveOS" / "sub dir").mkdir(parents=True)
    (tree / "LiveOS" / "squashfs.img").write_bytes(bytes(range(256)) * 5000)
    (tree / "LiveOS" / "sub dir" / "A long name, with spaces.txt").write_text("x\n")
    (tree / "Ünïcödé").write_text("u\n")
    (tree / "empty").touch()
    (tree / "README").write_text("r\n")
    for i in range(40):                          # more root entries than one 512-byte cluster
        (tree / f"entry number {i} with a long name").write_text(f"{i}\n")
    img = tmp_path / "fat.img"
    with open(img, "wb") as fh:
        fh.truncate(40 << 20)
    # FAT32 with 512-byte clusters, so that the root directory needs a second cluster
    sh("mkfs.vfat", "-F", fat_bits, *(["-s", 1] if fat_bits == 32 else []), "-n", "FATTEST", img)
    fat_add_tree(img, tree)
    fsck = sh("fsck.fat", "-n", "-V", "-l", img, check=False, utf8=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert f"FAT{fat_bits}" in blkid_probe(img)["VERSION"]
    listed = {re.sub(r" \([^()]*\)$", "", line[len("Checking file "):])
              for line in fsck.stdout.splitlines() if line.startswith("Checking file /")}
    want = {"/" + str(p.relative_to(tree)) for p in tree.rglob("*")}
    assert listed - {"/", "/FATTEST"} == want

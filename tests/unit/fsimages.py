"""Filesystem images made by the real tools (mkfs.ext4, mkfs.vfat, xorriso) and blkid's view of them,
shared by the tests that read LABEL and UUID."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def tool(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, PATH=TOOLS_PATH))


def blkid(path: Path) -> dict[str, str]:
    out = subprocess.run(["blkid", "-p", "-o", "export", str(path)], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PATH=TOOLS_PATH)).stdout
    pairs = (line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {k: v.replace("\\ ", " ") for k, v in pairs}  # export format: shell-escaped


def image(tmp_path: Path, kind: str) -> Path:
    img = tmp_path / f"{kind}.img"
    if kind == "iso9660":
        tree = tmp_path / "tree"
        (tree / "LiveOS").mkdir(parents=True)
        tool("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "Fedora-WS-Live-40-1-14", "-o", str(img),
             str(tree))
        return img
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    if kind == "ext4":
        tool("mkfs.ext4", "-q", "-F", "-L", "data disk", "-U", "0f3c6a52-6a3e-4a36-9c43-1f3e2f0f4e11", str(img))
    elif kind == "vfat32":
        tool("mkfs.vfat", "-F", "32", "-n", "STICK", "-i", "1234ABCD", str(img))
    elif kind == "vfat16":
        tool("mkfs.vfat", "-F", "16", "-n", "OLD STICK", "-i", "0000BEEF", str(img))
    elif kind == "vfat-nolabel":
        tool("mkfs.vfat", "-F", "32", "-i", "1234ABCD", str(img))
    return img


needs_mkfs = pytest.mark.skipif(
    any(shutil.which(t, path=TOOLS_PATH) is None for t in ("mkfs.ext4", "mkfs.vfat", "xorriso", "blkid"))
    and not os.environ.get("CI"), reason="e2fsprogs, dosfstools, xorriso and blkid are needed")

"""Real images to start fuzzing the medium readers from, made by the real tools with fixed times and UUIDs
(the same bytes on every run where the tools are the same), and the mutations applied to them.

An ISO 9660 image as a live medium is laid out (xorriso, Rock Ridge and Joliet, a squashfs inside, the MD5
implanted by implantisomd5); the first 96 KiB of ext4, FAT16 and FAT32 filesystems (what the superblock
readers read); small squashfs and EROFS images; an NTFS volume left clean by Windows (test_probe builds it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import strategies as st

from pylive.probe import ISO_DESCRIPTORS

from .cmdlines import one_in
from .test_probe import _ntfs

TOOLS = ("xorriso", "implantisomd5", "mkfs.ext4", "mkfs.vfat", "mksquashfs", "mkfs.erofs")
TOOLS_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
_ENV = {"SOURCE_DATE_EPOCH": "1700000000", "E2FSPROGS_FAKE_TIME": "1700000000", "PATH": TOOLS_PATH}


def need_tools() -> None:
    """Skip without the tools outside CI (make deps installs them); in CI their absence is a failure."""
    missing = [t for t in TOOLS if shutil.which(t, path=TOOLS_PATH) is None]
    if not missing:
        return
    if os.environ.get("CI"):
        pytest.fail(f"missing: {' '.join(missing)}")
    pytest.skip(f"not installed: {' '.join(missing)}")


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, **_ENV))


def _blank(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def build(work: Path) -> dict[str, bytes]:
    """name → the bytes of each seed image."""
    tree = work / "tree"
    (tree / "LiveOS").mkdir(parents=True)
    (tree / "EFI/BOOT").mkdir(parents=True)
    (tree / "EFI/BOOT/grub.cfg").write_text("menuentry live {}\n")
    inner = work / "inner"
    (inner / "LiveOS").mkdir(parents=True)
    (inner / "LiveOS/rootfs.img").write_bytes(b"\0" * 1080 + b"\x53\xef" + b"\0" * 1000)
    _run("mksquashfs", str(inner), str(tree / "LiveOS/squashfs.img"), "-quiet", "-noappend", "-no-progress")
    iso = work / "live.iso"
    _run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "Fedora-WS-Live-40-1-14", "-o", str(iso), str(tree))
    _run("implantisomd5", str(iso))
    seeds = {"iso9660": iso.read_bytes(), "squashfs": (tree / "LiveOS/squashfs.img").read_bytes()}
    _run("mkfs.ext4", "-q", "-F", "-L", "data disk", "-U", "0f3c6a52-6a3e-4a36-9c43-1f3e2f0f4e11",
         "-E", "hash_seed=0f3c6a52-6a3e-4a36-9c43-1f3e2f0f4e12", str(_blank(work / "ext4.img", 8 << 20)))
    _run("mkfs.vfat", "--invariant", "-F", "32", "-n", "STICK", "-i", "1234ABCD",
         str(_blank(work / "vfat32.img", 40 << 20)))
    _run("mkfs.vfat", "--invariant", "-F", "16", "-n", "OLD STICK", "-i", "0000BEEF",
         str(_blank(work / "vfat16.img", 16 << 20)))
    for name in ("ext4", "vfat32", "vfat16"):
        seeds[name] = (work / f"{name}.img").read_bytes()[:ISO_DESCRIPTORS]
    erofs = work / "erofs.img"
    _run("mkfs.erofs", "--quiet", "-T0", "-U", "0f3c6a52-6a3e-4a36-9c43-1f3e2f0f4e13", str(erofs), str(inner))
    seeds["erofs"] = erofs.read_bytes()
    seeds["ntfs"] = _ntfs(work).read_bytes()
    return seeds


# --- mutations ------------------------------------------------------------------------------------

INTERESTING = [0, 1, 2, 3, 4, 15, 16, 17, 32, 33, 34, 0x7F, 0x80, 0xFF, 0x100, 0x200, 0x800, 0x1000, 0x7FFF,
               0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
WIDTHS = [(1, "little"), (2, "little"), (4, "little"), (2, "big"), (4, "big"), (8, "little")]


def hot_offsets(seed: bytes) -> list[int]:
    """Where the structures are: offsets of the non-zero bytes (and the byte before each run of them)."""
    return sorted({i for i, b in enumerate(seed) if b} | {i - 1 for i, b in enumerate(seed) if b and i})


def number_fields(seed: bytes) -> list[int]:
    """Where a number is written as text (`SKIPSECTORS = 15;`, `FRAGMENT COUNT = 20;` of implantisomd5)."""
    return [m.start(1) for m in re.finditer(rb"= *([0-9]+);", seed[: 64 << 10])]


NUMBERS = [b"0", b"1", b"-1", b"+7", b"60", b"61", b"4000000000", b"18446744073709551617", b"9" * 400]


class Mutant:
    """A seed image with some fields overwritten and maybe cut short; its repr is the recipe, not the bytes
    (a failing example stays readable)."""

    def __init__(self, name: str, seed: bytes, edits: list[tuple[int, bytes]], cut: int | None) -> None:
        self.name, self.edits, self.cut = name, edits, cut
        data = bytearray(seed)
        for at, piece in edits:
            data[at : at + len(piece)] = piece
        self.data = bytes(data if cut is None else data[:cut])

    def __repr__(self) -> str:
        return f"Mutant({self.name!r}, edits={self.edits!r}, cut={self.cut!r})"


@st.composite
def mutated(draw: st.DrawFn, name: str, seed: bytes, hot: list[int], numbers: list[int]) -> Mutant:
    """`seed` with a few fields overwritten (bytes, integers of every width and byte order, runs of 00 or FF,
    numbers written as text), near its structures mostly, and maybe cut short."""
    anywhere = st.integers(0, max(len(seed) - 1, 0))
    edits = []
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.one_of(st.sampled_from(hot), anywhere) if hot else anywhere)
        width, order = draw(st.sampled_from(WIDTHS))
        value = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2 ** (8 * width) - 1)))
        if draw(one_in(6)):  # a run of a filler byte
            piece = bytes([draw(st.sampled_from([0, 0xFF, 0x20]))]) * draw(st.integers(1, 64))
        else:
            piece = (value % 2 ** (8 * width)).to_bytes(width, order)
        edits.append((at, piece))
    for at in draw(st.lists(st.sampled_from(numbers), max_size=2)) if numbers else ():
        edits.append((at, draw(st.sampled_from(NUMBERS)) + b";"))
    cut = draw(st.integers(0, len(seed))) if draw(one_in(5)) else None
    return Mutant(name, seed, edits, cut)

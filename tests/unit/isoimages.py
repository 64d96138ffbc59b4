"""ISO images with an implanted MD5 for the media-check tests, made by isomd5sum's own implantisomd5.

The image is the smallest thing implantisomd5 accepts: a primary volume descriptor at sector 16
(type 1, "CD001", the volume size, an application-use area of spaces), a set terminator at 17, and
random bytes around them. checkisomd5 is the reference the tests compare pylive's verdicts with.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

SECTOR = 2048


def need_isomd5sum() -> None:
    """Skip without isomd5sum outside CI (make deps installs it); in CI its absence is a failure."""
    if shutil.which("implantisomd5") and shutil.which("checkisomd5"):
        return
    if os.environ.get("CI"):
        pytest.fail("implantisomd5/checkisomd5 missing (apt-get install isomd5sum)")
    pytest.skip("isomd5sum not installed")


def make_image(path: Path, sectors: int, seed: int = 0, implant: bool = True) -> Path:
    data = bytearray(random.Random(seed).randbytes(sectors * SECTOR))
    data[: 16 * SECTOR] = bytes(16 * SECTOR)
    pvd = bytearray(SECTOR)
    pvd[0], pvd[1:6], pvd[6] = 1, b"CD001", 1
    pvd[80:84], pvd[84:88] = sectors.to_bytes(4, "little"), sectors.to_bytes(4, "big")
    pvd[883 : 883 + 512] = b" " * 512
    data[16 * SECTOR : 17 * SECTOR] = pvd
    term = bytearray(SECTOR)
    term[0], term[1:6], term[6] = 255, b"CD001", 1
    data[17 * SECTOR : 18 * SECTOR] = term
    path.write_bytes(data)
    if implant:
        subprocess.run(["implantisomd5", str(path)], check=True, capture_output=True)
    return path


def checkisomd5(path: Path) -> int:
    """checkisomd5's exit status: 0 pass, 1 fail or no checksum."""
    return subprocess.run(["checkisomd5", str(path)], capture_output=True, check=False,
                          stdin=subprocess.DEVNULL).returncode


def poke(path: Path, offset: int, byte: bytes = b"X") -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)
        f.seek(offset)
        f.write(byte if byte != old else b"Y")

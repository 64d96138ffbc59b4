"""Fuzzing the readers of bytes from a medium (Hypothesis, tests/unit/fuzzing.py): superblock sniffing and
LABEL/UUID (probe.py), the ISO 9660 directory reader of `pylive explain` (media.view_iso), the implanted MD5
and its check (isomd5.py), the NTFS clean-state reader (probe.ntfs_unclean) and the udev database reader
(probe.block_devices). Inputs are real images (mediaseeds.py) mutated and cut short, and random bytes;
every reader returns its documented result (a value, None, a status, ValueError where explain expects it)
within a bounded time, whatever the bytes.

The device-mapper COW reader (pylive/overlay/) is not covered here: it is not on this branch yet.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pylive import isomd5, media, probe
from pylive.errors import MediaCheckFailed

from . import mediaseeds
from .cmdlines import one_in
from .fuzzing import campaign, kept, regressions, within
from .test_fuzz_cmdline import assert_one_line, run_main

KNOWN_FSTYPES = {fstype for _, _, fstype in probe._MAGICS} | {"vfat", None}
SECONDS = 2.0  # any reader, on any input of up to a few MiB: milliseconds are expected


_work: list[tempfile.TemporaryDirectory[str]] = []


@cache
def seeds() -> dict[str, bytes]:
    """The seed images, made once per process (each test calls this first: it skips without the tools)."""
    mediaseeds.need_tools()
    _work.append(tempfile.TemporaryDirectory(prefix="pylive-fuzz-seeds."))
    return mediaseeds.build(Path(_work[-1].name))


@cache
def hot(name: str) -> tuple[list[int], list[int]]:
    return mediaseeds.hot_offsets(seeds()[name]), mediaseeds.number_fields(seeds()[name])


def scratch(data: bytes) -> Path:
    """`data` in a file (the readers take a path or an open file, as on a device)."""
    path = Path(_work[-1].name) / "input"
    path.write_bytes(data)
    return path


@st.composite
def inputs(draw: st.DrawFn, names: tuple[str, ...]) -> mediaseeds.Mutant | bytes:
    """A seed image mutated, or random bytes of a length the reader looks at."""
    if draw(one_in(10)):
        return draw(st.binary(max_size=4096))
    name = draw(st.sampled_from(names))
    return draw(mediaseeds.mutated(name, seeds()[name], *hot(name)))


def _bytes(given: mediaseeds.Mutant | bytes) -> bytes:
    return given if isinstance(given, bytes) else given.data


# --- the properties ---------------------------------------------------------------------------------

def check_superblock(data: bytes) -> None:
    with within(SECONDS):
        fstype = probe.sniff_fstype(data)
        ident = probe.fs_identity(data)
        health = probe.fs_health(data)  # the persistent overlay's device: errors, dirty bit, journal to replay
        shortfalls = (probe.iso_shortfall(data, len(data)), probe.squashfs_shortfall(data, len(data)))
    assert fstype in KNOWN_FSTYPES and ident.fstype == fstype
    assert isinstance(health.repair, str) and (not health.repair or health.fsck)
    assert all(x is None or (isinstance(x, int) and x > len(data)) for x in shortfalls)
    assert all(isinstance(x, str) for x in ident.labels) and isinstance(ident.uuid, str)


def check_iso(data: bytes) -> None:
    """What reads an ISO: explain's directory reader, the media check, blkid's LABEL and UUID."""
    path = scratch(data)
    with within(SECONDS):
        try:
            view = media.view_iso(path)
        except ValueError:  # explain: "cannot be read without mounting", the Fedora layout assumed
            view = None
        with open(path, "rb", buffering=0) as f:
            found = isomd5.read_implanted(f)
            verdict = isomd5.check(isomd5.file_blocks(f), found) if isinstance(found, isomd5.Implanted) else None
        ident = probe.read_identity(str(path))
    if view is not None:
        assert all(isinstance(k, str) and isinstance(e.size, int) for k, e in view.entries.items())
    if verdict is not None:
        assert verdict.status in (isomd5.Status.PASSED, isomd5.Status.FAILED)
        assert_one_line(str(MediaCheckFailed("/dev/sr0", verdict.reason)))
    else:
        assert found in (isomd5.Status.NOT_ISO, isomd5.Status.NO_CHECKSUM)
    assert ident.fstype in KNOWN_FSTYPES


def check_ntfs(data: bytes) -> None:
    path = scratch(data)
    with within(SECONDS):
        why = probe.read_ntfs_unclean(str(path))
    assert why is None or isinstance(why, str)


def check_explain_media(data: bytes) -> None:
    """`pylive explain --media` on the image: a plan or the one line the boot would stop with, whatever the
    ISO holds (its squashfs is listed by unsquashfs, the tool's output read by media.view_squashfs)."""
    path = scratch(data)
    with within(4 * SECONDS):
        rc, out, _ = run_main(["explain", "--cmdline", "root=live:CDLABEL=x", "--media", str(path)])
    lines = out.decode().splitlines()
    assert rc in (0, 1) and all(x.isprintable() for x in lines)
    assert (rc == 1) == lines[-1].startswith("error: "), lines


# A block device as sysfs and the udev database show it: name, sysfs size, dev, partition, removable, and
# the bytes of /run/udev/data/b<dev>.
UDEV_KEYS = [b"E:ID_FS_LABEL_ENC=", b"E:ID_FS_LABEL=", b"E:ID_FS_TYPE=", b"E:ID_PART_ENTRY_NAME=", b"S:disk/by-label/",
             b"E:", b"E:=", b"", b"G:systemd", b"I:123"]
udev_values = st.one_of(st.sampled_from([b"Fedora\\x20Live", b"\\x", b"\\xzz", b"\\xff\\xfe", b"\\x00", b"\xff\xfe",
                                         b"\xc3\xa9", b"a=b", b"iso9660", b"ntfs"]), st.binary(max_size=40))
udev_db = st.lists(st.builds(bytes.__add__, st.sampled_from(UDEV_KEYS), udev_values), max_size=6).map(b"\n".join)
sysfs_numbers = st.sampled_from(["0", "2048", "-1", "", "x", "1\n", "9" * 5000, "\u0661"])
block_device = st.tuples(st.sampled_from(["sda", "sda1", "sr0", "loop0", "ram0", "nvme0n1p1", "cciss!c0d0", "vda"]),
                         sysfs_numbers, st.sampled_from(["8:0", "8:1", "11:0", "", "8:0\n", "x"]),
                         st.sampled_from(["1", "", "0", "x", "\u0661"]), st.sampled_from(["1", "0", ""]), udev_db)


def check_udev(devices: tuple[tuple[str, str, str, str, str, bytes], ...]) -> None:
    root = Path(tempfile.mkdtemp(dir=_work[-1].name))
    for name, size, dev, partition, removable, db in devices:
        entry = root / "sys/class/block" / name
        entry.mkdir(parents=True, exist_ok=True)
        for field, text in (("size", size), ("dev", dev), ("partition", partition), ("removable", removable)):
            (entry / field).write_text(text)
        (root / "run/udev/data").mkdir(parents=True, exist_ok=True)
        (root / f"run/udev/data/b{dev.strip()}").write_bytes(db)
    with within(SECONDS):
        found = probe.block_devices(root)
    for d in found:
        assert isinstance(d.size_sectors, int) and all(isinstance(x, (str, type(None))) for x in
                                                       (d.label, d.fstype, d.parent, d.partlabel))


CHECKS = {"superblock": check_superblock, "iso": check_iso, "ntfs": check_ntfs, "udev": check_udev,
          "explain-media": check_explain_media}
SUPERBLOCKS = ("iso9660", "ext4", "vfat32", "vfat16", "squashfs", "erofs", "ntfs")


@campaign("superblock", ci_examples=1500, before=seeds)
@given(inputs(SUPERBLOCKS))
def test_superblocks_give_a_type_and_identity_or_none(data: mediaseeds.Mutant | bytes) -> None:
    with kept("superblock", _bytes(data)):
        check_superblock(_bytes(data))


@campaign("iso", ci_examples=1000, before=seeds)
@given(inputs(("iso9660",)))
def test_iso_readers_end_with_a_listing_or_valueerror_and_a_verdict(data: mediaseeds.Mutant | bytes) -> None:
    with kept("iso", _bytes(data)):
        check_iso(_bytes(data))


@campaign("explain-media", ci_examples=150, before=seeds)
@given(inputs(("iso9660",)))
def test_explain_reads_any_iso_without_crashing(data: mediaseeds.Mutant | bytes) -> None:
    with kept("explain-media", _bytes(data)):
        check_explain_media(_bytes(data))


@campaign("ntfs", ci_examples=1000, before=seeds)
@given(inputs(("ntfs",)))
def test_ntfs_clean_state_is_a_reason_or_none(data: mediaseeds.Mutant | bytes) -> None:
    with kept("ntfs", _bytes(data)):
        check_ntfs(_bytes(data))


@campaign("udev", ci_examples=500, before=seeds)
@given(st.lists(block_device, max_size=4, unique_by=lambda d: d[0]).map(tuple))
def test_the_udev_database_gives_devices_whatever_it_holds(devices: tuple[tuple[str, str, str, str, str, bytes], ...],
                                                           ) -> None:
    with kept("udev", devices):
        check_udev(devices)


@pytest.mark.parametrize(("target", "data"), regressions(*CHECKS))
def test_regressions(target: str, data: bytes) -> None:
    """The inputs fuzzing once failed on (tests/unit/fuzz_regressions/)."""
    seeds()  # and the scratch directory
    CHECKS[target](data)

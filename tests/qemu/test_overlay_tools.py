"""The offline overlay tools on COW files the guest kernel wrote (the host has no device-mapper): a
boot writes its token and 8 MiB to a persistent overlay; on the host `pylive overlay inspect` reads the
COW taken out of the disk image with debugfs, `merge` applies it to the ISO's squashfs.img (its
LiveOS/rootfs.img), and the merged image holds, byte for byte, what the guest wrote. A second boot
overflows a 16 MiB COW: inspect says so, merge keeps what was synced before, and `resize` makes it
valid again. Two boots; the tools run from the source tree."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

from guestreport import written
from persist import debugfs, persist_disk, run_boot

from qemu import REPO_ROOT
from qemu._util import run

MIB = 1 << 20
OPTION = "rd.live.overlay=LABEL=persist"


def pylive(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """The overlay tools as a user runs them (python -m pylive overlay …), from this tree."""
    return subprocess.run([sys.executable, "-m", "pylive", "overlay", *map(str, argv)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)


def take_out(disk: Path, name: str, dest: Path) -> Path:
    """A file of the ext4 disk image, and its identity record when there is one (debugfs: no mount)."""
    debugfs(disk, f'dump -p "/{name}" {dest}')
    record = debugfs(disk, f'cat "/{name}.pylive-base"')
    if record:
        dest.with_name(dest.name + ".pylive-base").write_text(record)
    assert dest.stat().st_size > 0, name
    return dest


def inspect(cow: Path, workdir: Path) -> tuple[int, dict[str, object]]:
    text = pylive("inspect", cow)
    (workdir / f"inspect-{cow.name}.txt").write_text(text.stdout)  # kept for the README
    js = pylive("inspect", "--json", cow)
    assert js.returncode == text.returncode, (js, text)
    return js.returncode, json.loads(js.stdout)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


COW = "LiveOS/cow"


def test_kernel_made_cows_inspected_merged_and_grown(kernel, pylive_initrd, live_iso, qemu_workdir):
    boot = functools.partial(run_boot, kernel, pylive_initrd, live_iso, workdir=qemu_workdir)
    # The boots first, each checked only for a report; what the tools say of their COW files after: a
    # tool's failure is then looked into on the files kept in the test's directory, with no boot.
    name = f"LiveOS/overlay-{live_iso.label}-{live_iso.uuid}"
    disk1 = persist_disk(qemu_workdir / "disk1", {name: 64 * MIB})
    r1 = boot(disk1, f"{OPTION} pylive.test=fill=8", name="boot1")
    assert r1.report.get("fill"), r1.console[-3000:]
    disk2 = persist_disk(qemu_workdir / "disk2", {COW: 16 * MIB})
    r2 = boot(disk2, f"{OPTION}:/{COW} pylive.test=fill=40", name="boot2-overflow")
    assert r2.report.get("fill"), r2.console[-3000:]

    squash = qemu_workdir / "squashfs.img"
    run(["xorriso", "-osirrox", "on", "-indev", live_iso.path, "-extract", "/LiveOS/squashfs.img", squash],
        quiet=True)
    written_and_merged(r1.report, take_out(disk1, name, qemu_workdir / "cow1"), squash, qemu_workdir)
    overflowed_merged_and_grown(r2.report, take_out(disk2, COW, qemu_workdir / "cow2"), squash, qemu_workdir)


def written_and_merged(report: dict[str, str], cow: Path, squash: Path, workdir: Path) -> None:
    """Boot 1 wrote its token and 8 MiB of zeros (/pylive-fill) on the overlay named after the ISO: inspect
    and merge on the host, and read both back from the merged image."""
    assert "dd-status=0" in report["fill"], report["fill"]
    _, token = written(report)
    status, data = inspect(cow, workdir)
    assert (status, data["state"], data["chunk_bytes"]) == (0, "valid", 4096), data
    assert isinstance(data["data_chunks"], int) and data["data_chunks"] > 8 * MIB // 4096, data
    assert isinstance(data["base"], dict) and data["base"]["record"] == \
        (workdir / "cow1.pylive-base").read_text().strip()
    inputs = {p: sha256(p) for p in (cow, squash)}

    merged = workdir / "merged1.img"
    m = pylive("merge", cow, "--base", squash, "--out", merged)
    (workdir / "merge1.txt").write_text(m.stdout + m.stderr)
    assert m.returncode == 0, m.stdout + m.stderr
    assert m.stdout.splitlines()[-1] == "e2fsck -fn: clean", m.stdout
    assert {p: sha256(p) for p in inputs} == inputs  # the COW and the base were only read
    assert debugfs(merged, "cat /pylive-write-test") == token + "\n"
    fill = workdir / "fill1"
    debugfs(merged, f"dump /pylive-fill {fill}")
    assert fill.stat().st_size == 8 * MIB and sha256(fill) == hashlib.sha256(bytes(8 * MIB)).hexdigest()


def overflowed_merged_and_grown(report: dict[str, str], cow: Path, squash: Path, workdir: Path) -> None:
    """Boot 2 wrote 40 MiB into a 16 MiB COW, which overflowed (PO: it stays valid): inspect says so, the
    merge keeps the token synced before, and resize gives it room (the table as it was)."""
    assert re.search(r"^0 131072 snapshot Overflow", report["fill"], re.M), report["fill"]
    _, token = written(report)
    status, data = inspect(cow, workdir)
    assert (status, data["state"], data["chunks_used"], data["chunks_total"]) == (2, "overflowed", 4096, 4096), data
    m = pylive("merge", cow, "--base", squash, "--out", workdir / "merged2.img")
    (workdir / "merge2.txt").write_text(m.stdout + m.stderr)
    assert m.returncode in (0, 3), m.stdout + m.stderr  # 3: e2fsck finds what the failed writes left
    assert "note: the overlay had overflowed: writes made after it filled up are not in it" in m.stdout
    assert debugfs(workdir / "merged2.img", "cat /pylive-write-test") == token + "\n"

    g = pylive("resize", cow, "--size", "64M")
    (workdir / "resize2.txt").write_text(g.stdout + g.stderr)
    assert g.returncode == 0 and g.stdout.startswith(f"grew {cow} from 16 MiB to 64 MiB"), g.stdout + g.stderr
    status, grown = inspect(cow, workdir)
    assert (status, grown["state"], grown["chunks_used"], grown["data_chunks"]) == \
        (0, "valid", 4096, data["data_chunks"]), grown

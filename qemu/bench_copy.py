"""`make bench` (QEMU part): rd.live.ram's copy throughput against a plain sequential read of the
same file, in the same guest.

The ISO's squashfs carries 256 MiB of random data (incompressible, so the copy moves that much).
pylive copies it to RAM at boot and logs its rate; the booted guest then mounts the released CD
again, drops its caches and reads the same squashfs.img with dd (pylive.test=readbench). Prints
both rates and their ratio. Not a test: nothing here passes or fails.

Each vCPU count boots with the CD unthrottled and with it held to real media rates (QEMU block
throttling): 80 MiB/s (a USB 3 stick's low end, a hard disk) and 30 MiB/s (a USB 2 stick, a 16x
DVD). Unthrottled, the virtual CD is the host's page cache and under TCG the emulated CPU is the
slower side, for the plain read and the copy alike; the throttled rows are the case the copy is
built for, where the medium sets the pace.

A second pair of boots runs `pylive bench-copy` inside the guest, unthrottled: the copy methods side
by side, among them sendfile(2), a copy the kernel makes with no sums, the floor of any copy into
RAM. The guest's root carries the compiled binary for that (/opt/pylive, pylive.test=benchcopy).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from . import BUILD_DIR, CACHE_DIR
from ._util import digest
from .kernel import Kernel, ensure_kernel
from .media import build_test_root, default_root_tree, make_filler_iso, shared_libs, sources_key
from .pylive_initrd import build_pylive_initrd
from .run_qemu import NO_SHELL_ARGS, boot

FILLER_MIB = 256
LABEL = "PYLIVE BENCH"
MEDIUM_MIB_S = (None, 80, 30)  # the CD's read rate: unthrottled, then held to these


def build_bench_iso() -> Path:
    """The bench ISO, rebuilt when the test root (its guest init among it) or the harness changed."""
    work = BUILD_DIR / "bench-copy"
    iso, stamp = work / "bench.iso", work / "bench.iso.key"
    tree = default_root_tree(BUILD_DIR)
    key = digest([FILLER_MIB, LABEL], [tree, *sources_key()])
    if iso.exists() and stamp.exists() and stamp.read_text() == key:
        return iso
    make_filler_iso(work, iso, LABEL, root_tree=tree, filler_mib=FILLER_MIB)
    stamp.write_text(key)
    return iso


def build_methods_iso() -> Path:
    """The bench ISO with the compiled binary in its root (rebuilt each time: the binary changes)."""
    work = BUILD_DIR / "bench-copy-methods"
    shutil.rmtree(work / "root", ignore_errors=True)  # a kept tree would still hold the last binary
    tree = build_test_root(work / "root")
    dist = BUILD_DIR / "pylive.dist"
    shutil.copytree(dist, tree / "opt/pylive")
    for lib in shared_libs(dist / "pylive"):  # libc, libm, libz: what the initramfs gets from dracut
        if not (tree / "opt/pylive" / lib.name).exists() and not (tree / str(lib).lstrip("/")).exists():
            shutil.copy2(lib, tree / "opt/pylive" / lib.name)
    return make_filler_iso(work, work / "bench.iso", LABEL, root_tree=tree, filler_mib=FILLER_MIB)


def methods_in_guest(kernel: Kernel, initrd: Path, iso: Path, smp: int) -> str | None:
    r = boot(kernel, initrd, f'"root=live:CDLABEL={LABEL}" pylive.test=benchcopy {NO_SHELL_ARGS}',
             cdrom=iso, timeout_s=900, memory_mb=2048, smp=smp, workdir=BUILD_DIR / f"bench-copy-methods/boot-smp{smp}")
    text = r.report.get("benchcopy", "")
    if "bench-copy {" not in text:
        print(f"smp={smp}: the guest's bench-copy did not finish; console tail:\n" + r.console_tail(30))
        return None
    return text


def measure(kernel: Kernel, initrd: Path, iso: Path, smp: int,
            medium_mib_s: int | None) -> tuple[float, float, str] | None:
    """(plain read MiB/s, copy MiB/s, copy seconds) in one guest with `smp` vCPUs."""
    r = boot(kernel, initrd, f'"root=live:CDLABEL={LABEL}" rd.live.ram pylive.test=readbench {NO_SHELL_ARGS}',
             cdrom=iso, cdrom_read_mib_s=medium_mib_s, timeout_s=600, memory_mb=2048, smp=smp,
             workdir=BUILD_DIR / f"bench-copy/boot-smp{smp}-{medium_mib_s or 'max'}")
    copied = re.search(r"copied \S+ to RAM as \S+ and verified it: (\d+) MiB in ([\d.]+) s \(([\d.]+) MiB/s\)",
                       r.report.get("dmesg", ""))
    # the faster of two cold reads: on this 2-core host a read is sometimes starved by the emulator
    reads = [int(b) / 2**20 / max(float(sec), 0.01)
             for b, sec in re.findall(r"bytes=(\d+) seconds=([\d.]+)", r.report.get("readbench", ""))]
    if not copied or not reads:
        print(f"smp={smp} medium={medium_mib_s}: the guest did not report both figures; console tail:\n"
              + r.console_tail(30))
        return None
    copy_mib_s = int(copied[1]) / max(float(copied[2]), 0.01)  # finer than the logged whole MiB/s
    return max(reads), copy_mib_s, copied[2]


def main() -> int:
    kernel = ensure_kernel(CACHE_DIR)
    iso = build_bench_iso()
    initrd = build_pylive_initrd(kernel)
    print(f"rd.live.ram in QEMU (TCG here), {FILLER_MIB} MiB of random data in squashfs.img on the virtual CD:")
    print(f"{'vCPUs':>6} {'CD held to':>11} {'plain read MiB/s':>17} {'pylive copy MiB/s':>18} {'copy / read':>12}")
    ok = True
    for smp in (1, 2):
        for medium in MEDIUM_MIB_S:
            got = measure(kernel, initrd, iso, smp, medium)
            if got is None:
                ok = False
                continue
            read, copy, _seconds = got
            held = f"{medium} MiB/s" if medium else "-"
            print(f"{smp:>6} {held:>11} {read:>17.1f} {copy:>18.1f} {copy / read:>12.2f}", flush=True)
    print("(plain read: the faster of two dd bs=4M after dropping caches; copy: pylive's logged rate, "
          "CRC-32 sums included, read-back verification not included; '-': the CD unthrottled, "
          "so the emulated CPU sets both rates)")
    print("\n`pylive bench-copy` in the guest, CD unthrottled (best of 2 cold runs; read = plain read, "
          "copy = pylive's, copy1 = the same in one thread, rw = read + write without sums, "
          "sendfile = a kernel copy without sums):")
    methods_iso = build_methods_iso()
    for smp in (1, 2):
        text = methods_in_guest(kernel, initrd, methods_iso, smp)
        if text is None:
            ok = False
            continue
        print(f"{smp} vCPU{'s' if smp > 1 else ''}:\n" + "\n".join(
            line for line in text.splitlines() if "block" in line and "bench-copy {" not in line), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""`make bench` (QEMU part): rd.live.ram's copy throughput against a plain sequential read of the
same file, in the same guest.

The ISO's squashfs carries 256 MiB of random data (incompressible, so the copy moves that much).
pylive copies it to RAM at boot and logs its rate; the booted guest then mounts the released CD
again, drops its caches and reads the same squashfs.img with dd (pylive.test=readbench). Prints
both rates and their ratio. Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from . import BUILD_DIR, CACHE_DIR
from .kernel import Kernel, ensure_kernel
from .media import default_root_tree, make_filler_iso
from .pylive_initrd import build_pylive_initrd
from .run_qemu import NO_SHELL_ARGS, boot

FILLER_MIB = 256
LABEL = "PYLIVE BENCH"


def build_bench_iso() -> Path:
    work = BUILD_DIR / "bench-copy"
    iso = work / "bench.iso"
    if iso.exists():
        return iso
    return make_filler_iso(work, iso, LABEL, root_tree=default_root_tree(BUILD_DIR), filler_mib=FILLER_MIB)


def measure(kernel: Kernel, initrd: Path, iso: Path, smp: int) -> tuple[float, float, str] | None:
    """(plain read MiB/s, copy MiB/s, copy seconds) in one guest with `smp` vCPUs."""
    r = boot(kernel, initrd, f'"root=live:CDLABEL={LABEL}" rd.live.ram pylive.test=readbench {NO_SHELL_ARGS}',
             cdrom=iso, workdir=BUILD_DIR / f"bench-copy/boot-smp{smp}", timeout_s=600, memory_mb=2048, smp=smp)
    copied = re.search(r"copied \S+ to RAM as \S+ and verified it: (\d+) MiB in ([\d.]+) s \(([\d.]+) MiB/s\)",
                       r.report.get("dmesg", ""))
    read = re.search(r"bytes=(\d+) seconds=([\d.]+)", r.report.get("readbench", ""))
    if not copied or not read:
        print(f"smp={smp}: the guest did not report both figures; console tail:\n" + r.console_tail(30))
        return None
    return int(read[1]) / 2**20 / max(float(read[2]), 0.01), float(copied[3]), copied[2]


def main() -> int:
    kernel = ensure_kernel(CACHE_DIR)
    iso = build_bench_iso()
    initrd = build_pylive_initrd(kernel)
    print(f"rd.live.ram in QEMU (TCG here), {FILLER_MIB} MiB of random data in squashfs.img on the virtual CD:")
    print(f"{'vCPUs':>6} {'plain read MiB/s':>17} {'pylive copy MiB/s':>18} {'copy / read':>12}")
    ok = True
    for smp in (1, 2):
        got = measure(kernel, initrd, iso, smp)
        if got is None:
            ok = False
            continue
        read, copy, _seconds = got
        print(f"{smp:>6} {read:>17.1f} {copy:>18.1f} {copy / read:>12.2f}")
    print("(plain read: dd bs=4M after dropping caches; copy: pylive's logged rate, CRC-32 sums included, "
          "read-back verification not included)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

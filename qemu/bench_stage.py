"""`make bench` (QEMU part): pylive's initramfs stage against Debian's stock dmsquash-live, side by side.

Both initramfs images come from the same dracut with the same flags: the same kernel and driver set
(`initrd.GUEST_DRIVERS`), dracut's default module set plus `dmsquash-live` (stock) or `pylive`,
`--compress zstd`, isolated from the host's dracut.conf. Each flavour (with systemd, dracut's default,
and without it) boots the two images alternately, BENCH_ROUNDS rounds (default 5; the first of each
pair alternates), from the same ISO (`root=live:CDLABEL=PYLIVE_TEST_1 rd.live.image`), one guest at a
time. Every boot must reach the test init with the live root mounted, or the bench fails.

What is measured, on the guest kernel's clock (kmsg timestamps in the guest's own dmesg):
- with systemd (`systemd.log_target=kmsg`): from the line systemd logs when it starts as PID 1
  ("systemd 252… running in system mode"; the generators, which read the command line, run right
  after it, pylive's among them) to "Reached target initrd-root-fs.target" (the root is mounted on
  /sysroot). dracut-cmdline.service → that target is recorded too.
- without systemd: from dracut's first kmsg line (init.sh's `info "$NAME-$VERSION_ID"`, just before
  the cmdline hooks) to "dracut: Switching root" (after the mount, pre-pivot and cleanup hooks).
- from the kernel's start (0 s) to the same end: this includes unpacking the initramfs.
- from the stage's start to the kernel's line for the medium's device (the CD drive's sr0): it
  appears after the same units in both images (PID 1, udev's coldplug, the kernel's drivers), so it
  is the earliest the work on it can begin; and from the kernel's line for the root's mount to the
  stage's end (`tail_ms`: in stock's boots, the init system's own steps after the root). pylive's
  medium plus stock's tail (`floor_ms`, `floor_ratio` against stock's stage) is a lower bound for any
  stage on these units, with the medium found and the root built in no time.
The medians, the ratio pylive / stock and the image sizes go to build/bench/stage.json and a table.
Not a test: the figures are measured, nothing passes or fails on them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import BUILD_DIR, CACHE_DIR
from .initrd import build_initrd
from .kernel import Kernel, ensure_kernel
from .media import build_live_iso, default_root_tree
from .pylive_initrd import DIST, MODULE_DIR, SYSTEMD_MODULES, ensure_dracut_base
from .run_qemu import NO_SHELL_ARGS, boot
from .timing import TIMING_CMDLINE

OUT = BUILD_DIR / "bench"
LABEL = "PYLIVE_TEST_1"  # stock 059 cannot boot a label with spaces (test_harness_stock.py)
CMDLINE = f"root=live:CDLABEL={LABEL} rd.live.image {NO_SHELL_ARGS} {TIMING_CMDLINE}"
FLAGS = ("--compress", "zstd")
FLAVOURS = ("systemd", "nosystemd")
KINDS = ("stock", "pylive")

_TS = r"^\s*\[\s*(\d+\.\d+)\]\s*"
# (start, end) of the stage per flavour, and the extra start systemd's dracut-cmdline.service gives
MARKS = {
    "systemd": (re.compile(_TS + r"systemd\[1\]: systemd \S+ running in system mode"),
                re.compile(_TS + r"systemd\[1\]: Reached target initrd-root-fs\.target\b")),
    "nosystemd": (re.compile(_TS + r"dracut: "), re.compile(_TS + r"dracut: Switching root$")),
}
CMDLINE_SERVICE = re.compile(_TS + r"systemd\[1\]: Starting dracut-cmdline\.service\b")
# the kernel's line for the live medium's device (the ISO on QEMU's CD drive): no stage can end before it
MEDIUM = re.compile(_TS + r"sr 0:0:0:0: Attached scsi CD-ROM sr0$")
# the kernel's line for the live root's mount (ext4 on the snapshot, in both): after it, the init system's own steps
ROOT_MOUNTED = re.compile(_TS + r"EXT4-fs \(dm-0\): mounted filesystem")


@dataclass(frozen=True)
class Stage:
    stage_ms: float          # the stage as defined above
    total_ms: float          # kernel start → the stage's end
    cmdline_ms: float | None  # systemd only: dracut-cmdline.service → initrd-root-fs.target
    medium_ms: float | None   # the stage's start → the medium's device appears (MEDIUM)
    tail_ms: float | None     # the root is mounted (ROOT_MOUNTED) → the stage's end


def first_ts(dmesg: str, pattern: re.Pattern[str]) -> float | None:
    for line in dmesg.splitlines():
        m = pattern.search(line)
        if m:
            return float(m[1])
    return None


def stage_of(dmesg: str, flavour: str) -> Stage | None:
    start_re, end_re = MARKS[flavour]
    start, end = first_ts(dmesg, start_re), first_ts(dmesg, end_re)
    if start is None or end is None or end < start:
        return None
    cmd = first_ts(dmesg, CMDLINE_SERVICE) if flavour == "systemd" else None
    medium, mounted = first_ts(dmesg, MEDIUM), first_ts(dmesg, ROOT_MOUNTED)
    return Stage((end - start) * 1000, end * 1000, None if cmd is None else (end - cmd) * 1000,
                 None if medium is None else (medium - start) * 1000,
                 None if mounted is None else (end - mounted) * 1000)


def build_images(kernel: Kernel, dist: Path, out: Path) -> dict[tuple[str, str], Path]:
    """The four images (stock and pylive, with and without systemd), built with the same flags."""
    os.environ["PYLIVE_DIST"] = str(dist)  # module-setup.sh reads the dist from here
    base = ensure_dracut_base()
    images = {}
    for flavour in FLAVOURS:
        omit = SYSTEMD_MODULES if flavour == "nosystemd" else ()
        for kind in KINDS:
            module = "dmsquash-live" if kind == "stock" else "pylive"
            images[kind, flavour] = build_initrd(
                kernel, out / f"{kind}-{flavour}.img", add_modules=(module,), omit_modules=omit,
                dracutbasedir=base, extra_args=FLAGS, extra_inputs=(dist, MODULE_DIR) if kind == "pylive" else ())
    return images


def one_boot(kernel: Kernel, initrd: Path, iso: Path, flavour: str, workdir: Path) -> Stage:
    r = boot(kernel, initrd, CMDLINE, cdrom=iso, timeout_s=300, workdir=workdir)
    mounted = any(line.split()[1:2] == ["/"] and "live-rw" in line
                  for line in r.report.get("mounts", "").splitlines())
    if not (r.report_complete and mounted):
        raise SystemExit(f"bench: {initrd.name} did not boot to the live root:\n{r.describe()}")
    st = stage_of(r.report.get("dmesg", ""), flavour)
    if st is None:
        raise SystemExit(f"bench: the stage marks are not in {workdir}/report.txt (dmesg section)")
    return st


def summary(samples: dict[str, list[Stage]], sizes: dict[str, int], flavour: str) -> dict[str, Any]:
    """Medians per kind, the ratio pylive / stock of the stage, the sizes."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        got = samples[kind]
        cmd = [s.cmdline_ms for s in got if s.cmdline_ms is not None]
        medium = [s.medium_ms for s in got if s.medium_ms is not None]
        tail = [s.tail_ms for s in got if s.tail_ms is not None]
        out[kind] = {"stage_ms": statistics.median(s.stage_ms for s in got),
                     "total_ms": statistics.median(s.total_ms for s in got),
                     "cmdline_ms": statistics.median(cmd) if cmd else None,
                     "medium_ms": statistics.median(medium) if medium else None,
                     "tail_ms": statistics.median(tail) if tail else None,
                     "samples_stage_ms": [round(s.stage_ms, 1) for s in got],
                     "size_bytes": sizes[f"{kind}-{flavour}"]}
    out["ratio"] = round(out["pylive"]["stage_ms"] / out["stock"]["stage_ms"], 3)
    # A lower bound for any stage on these units: the medium's device appears (in pylive's boots) after the same
    # units as in stock's (PID 1, udev's coldplug, the kernel's drivers), and after the root is mounted the init
    # system still runs its own steps (as in stock's boots, where nothing of the live module's runs then).
    py, stock = out["pylive"], out["stock"]
    if py["medium_ms"] is not None and stock["tail_ms"] is not None:
        out["floor_ms"] = round(py["medium_ms"] + stock["tail_ms"], 1)
        out["floor_ratio"] = round(out["floor_ms"] / stock["stage_ms"], 3)
    out["size_extra_bytes"] = out["pylive"]["size_bytes"] - out["stock"]["size_bytes"]
    return out


def mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m qemu.bench_stage", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    ap.add_argument("--flavours", default=os.environ.get("BENCH_FLAVOURS", ",".join(FLAVOURS)))
    ap.add_argument("--dist", type=Path, default=DIST, help="the Nuitka dist to put in pylive's image")
    ap.add_argument("--out", type=Path, default=OUT / "stage.json")
    args = ap.parse_args(argv)
    flavours = [f for f in args.flavours.split(",") if f]
    kernel = ensure_kernel(CACHE_DIR)
    iso = build_live_iso(BUILD_DIR / "media" / "live-nospace.iso", LABEL, BUILD_DIR / "media" / "live-nospace.work",
                         root_tree=default_root_tree(BUILD_DIR))
    images = build_images(kernel, args.dist.resolve(), OUT / "initrd")
    samples: dict[str, dict[str, list[Stage]]] = {f: {k: [] for k in KINDS} for f in flavours}
    for rnd in range(args.rounds):
        for flavour in flavours:
            order = KINDS if rnd % 2 == 0 else KINDS[::-1]
            for kind in order:
                st = one_boot(kernel, images[kind, flavour], iso.path, flavour,
                              OUT / "boots" / f"{flavour}-{kind}-{rnd}")
                samples[flavour][kind].append(st)
                print(f"round {rnd + 1}/{args.rounds} {flavour:<9} {kind:<6} stage {st.stage_ms:7.0f} ms  "
                      f"kernel start → end {st.total_ms:7.0f} ms", flush=True)
    sizes = {f"{k}-{f}": images[k, f].stat().st_size for f in flavours for k in KINDS}
    result: dict[str, Any] = {
        "rounds": args.rounds, "cmdline": CMDLINE, "dracut_flags": list(FLAGS), "dist": str(args.dist),
        "sizes": sizes, "flavours": {f: summary(samples[f], sizes, f) for f in flavours}}
    print(f"\ninitramfs stage in QEMU (TCG), median of {args.rounds} boots each, guest kernel clock:")
    print(f"{'flavour':<10}{'':8}{'stage ms':>10}{'ratio':>7}{'medium ms':>11}{'cmdline→root ms':>17}"
          f"{'kernel→end ms':>15}{'initramfs (zstd)':>27}")
    for flavour in flavours:
        fl = result["flavours"][flavour]
        for k in KINDS:
            m = fl[k]
            cmd = f"{m['cmdline_ms']:.0f}" if m["cmdline_ms"] is not None else "-"
            ratio = f"{fl['ratio']:.2f}" if k == "pylive" else ""
            medium = f"{m['medium_ms']:.0f}" if m["medium_ms"] is not None else "-"
            print(f"{flavour:<10}{k:<8}{m['stage_ms']:>10.0f}{ratio:>7}{medium:>11}{cmd:>17}{m['total_ms']:>15.0f}"
                  f"{m['size_bytes']:>14} B {mib(m['size_bytes']):>10}")
        print(f"{'':<18}pylive's image is {fl['size_extra_bytes']} bytes ({mib(fl['size_extra_bytes'])}) "
              "larger than stock's")
        if "floor_ms" in fl:
            print(f"{'':<18}floor {fl['floor_ms']:.0f} ms ({fl['floor_ratio']:.2f}x stock's stage): in pylive's boots, "
                  "the medium appears, plus stock's steps after the root is mounted")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"(written to {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

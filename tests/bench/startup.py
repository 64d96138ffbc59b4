"""`make bench`: how fast pylive starts and decides, compiled (Nuitka) against the Python source.

Measures, in the same run:
- cold start to a finished plan: `pylive explain --cmdline <typical>` as a new process, each run;
- parse + plan in-process for a long command line (no process start-up).
Prints a table; the figures go into the issue notes. Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

BINARY = ROOT / "build/pylive.dist/pylive"
VENV_PY = ROOT / "build/venv/bin/python"
TYPICAL = ("BOOT_IMAGE=/vmlinuz root=live:CDLABEL=Fedora-WS-Live-40 rd.live.image "
           "rd.live.overlay.size=4096 quiet rhgb")
LONG = " ".join([TYPICAL] + [f"opt{i}=value{i}" for i in range(200)]
                + ['"rd.live.dir=Live OS"', "rd.live.squashimg=squashfs.img", "rd.retry=60", "rootflags=noatime"])
RUNS = int(os.environ.get("BENCH_RUNS", "30"))


def wall_ms(cmd: list[str], runs: int = RUNS) -> list[float]:
    env = dict(os.environ, LC_ALL="C", PYTHONPATH=str(ROOT))
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the page cache
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=env)
        out.append((time.perf_counter() - t) * 1000)
    return out


def in_process_us(text: str, runs: int = 2000) -> list[float]:
    from pylive.cmdline import Args
    from pylive.explain import explain
    from pylive.options import parse_options

    out = []
    for _ in range(runs // 10):
        t = time.perf_counter()
        opts = parse_options(Args.from_text(text))
        explain(opts, None)
        out.append((time.perf_counter() - t) * 1e6)
    parse = []
    for _ in range(runs):
        t = time.perf_counter()
        parse_options(Args.from_text(text))
        parse.append((time.perf_counter() - t) * 1e6)
    return [statistics.median(out), statistics.median(parse)]


def row(name: str, samples: list[float], unit: str) -> str:
    return (f"{name:<58} median {statistics.median(samples):8.1f} {unit}   "
            f"min {min(samples):8.1f}   max {max(samples):8.1f}")


def main() -> int:
    if not BINARY.exists():
        print(f"no binary at {BINARY}: run `make binary`", file=sys.stderr)
        return 1
    args = ["explain", "--cmdline", TYPICAL]
    print(f"runs per command: {RUNS}; machine: {os.cpu_count()} CPUs")
    print(row("cold start → plan, Nuitka binary", wall_ms([str(BINARY), *args]), "ms"))
    print(row("cold start → plan, Python source (venv, .pyc cached)", wall_ms([str(VENV_PY), "-m", "pylive", *args]),
              "ms"))
    print(row("cold start, Nuitka binary --version (imports only)", wall_ms([str(BINARY), "--version"]), "ms"))
    plan_us, parse_us = in_process_us(LONG)
    print(f"{'in process (CPython), long command line of ' + str(len(LONG)) + ' chars':<58} "
          f"parse+plan {plan_us:8.1f} µs   parse+options {parse_us:8.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: how fast pylive starts and decides, compiled (Nuitka) against the Python source.

Measures, in the same run:
- cold start as a new process (LC_ALL=C, as the dracut glue runs it), each run:
  `pylive explain --cmdline <typical>` (to a finished plan) and `pylive cmdline-hook --cmdline
  <typical>` (once per boot), compiled and from source, and a hello world compiled with the
  same flags (the floor any Nuitka binary pays);
- parse + plan in-process for a long command line (no process start-up).
The commands take turns, run by run, so a busy neighbour on the host slows them all alike.
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
HELLO = ROOT / "build/hello.dist/hello"
VENV_PY = ROOT / "build/venv/bin/python"
TYPICAL = ("BOOT_IMAGE=/vmlinuz root=live:CDLABEL=Fedora-WS-Live-40 rd.live.image "
           "rd.live.overlay.size=4096 quiet rhgb")
LONG = " ".join([TYPICAL] + [f"opt{i}=value{i}" for i in range(200)]
                + ['"rd.live.dir=Live OS"', "rd.live.squashimg=squashfs.img", "rd.retry=60", "rootflags=noatime"])
RUNS = int(os.environ.get("BENCH_RUNS", "30"))


def wall_ms(commands: dict[str, list[str]], runs: int = RUNS) -> dict[str, list[float]]:
    """Wall time of each command per run, the commands taking turns."""
    env = dict(os.environ, LC_ALL="C", PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the source runs use cached .pyc files, as installed Python does
    for cmd in commands.values():
        subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the page cache, write .pyc files
    out: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            out[name].append((time.perf_counter() - t) * 1000)
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
    p90 = statistics.quantiles(samples, n=10)[-1] if len(samples) > 1 else samples[0]
    return (f"{name:<52} median {statistics.median(samples):7.1f} {unit}   p90 {p90:7.1f}   "
            f"min {min(samples):7.1f}   max {max(samples):7.1f}")


def main() -> int:
    if not BINARY.exists():
        print(f"no binary at {BINARY}: run `make binary`", file=sys.stderr)
        return 1
    explain = ["explain", "--cmdline", TYPICAL]
    hook = ["cmdline-hook", "--cmdline", TYPICAL]
    source = [str(VENV_PY), "-m", "pylive"]
    commands = {
        "cold start → plan (explain), Nuitka binary": [str(BINARY), *explain],
        "cold start, cmdline-hook, Nuitka binary": [str(BINARY), *hook],
        "cold start → plan (explain), Python source": [*source, *explain],
        "cold start, cmdline-hook, Python source": [*source, *hook],
    }
    if HELLO.exists():
        commands["floor: hello world, Nuitka binary, same flags"] = [str(HELLO)]
    print(f"runs per command: {RUNS}; machine: {os.cpu_count()} CPUs; source: {VENV_PY.resolve()} (.pyc cached)")
    for name, samples in wall_ms(commands).items():
        print(row(name, samples, "ms"))
    plan_us, parse_us = in_process_us(LONG)
    print(f"{'in process (CPython), command line of ' + str(len(LONG)) + ' chars':<52} "
          f"parse+plan {plan_us:7.1f} µs   parse+options {parse_us:7.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The RAM copy against a plain sequential read, over block sizes and methods (host, from the source tree).

    build/venv/bin/python tests/bench/copy_speed.py [FILE] [--dest-dir /dev/shm] [--size-mib 1024] [--runs 3]

Without FILE it writes a file of random bytes under /var/tmp (on disk, not tmpfs) and removes it
afterwards. In a QEMU guest the compiled binary runs the same code: `pylive bench-copy FILE`.
Prints a table; not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pylive.benchcopy import METHODS, bench, report  # noqa: E402

BLOCKS = (64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?")
    p.add_argument("--dest-dir", default="/dev/shm")
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--blocks", default=",".join(str(b >> 10) for b in BLOCKS), help="KiB, comma-separated")
    p.add_argument("--methods", default=",".join(METHODS))
    args = p.parse_args()
    blocks = tuple(int(b) << 10 for b in args.blocks.split(","))
    methods = tuple(args.methods.split(","))
    made = None
    src = args.file
    if src is None:
        fd, made = tempfile.mkstemp(prefix="pylive-bench-", dir="/var/tmp")
        with os.fdopen(fd, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        src = made
    try:
        print(report(src, bench(src, args.dest_dir, blocks, methods, args.runs)), end="")
    finally:
        if made:
            os.unlink(made)
    return 0


if __name__ == "__main__":
    sys.exit(main())

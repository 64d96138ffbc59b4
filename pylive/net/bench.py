"""`pylive bench-fetch URL`: pylive's download of a URL, timed, for comparing it with curl or wget of the
same URL on the same machine (the QEMU tests alternate the two in the booted guest: README, "Booting
over the network"). Each run is the boot's own fetch() into a file in `dest_dir`, removed after it;
the seconds are fetch()'s (from the connection to the last byte written), not the process's."""

from __future__ import annotations

import contextlib
import os

from pylive.net.fetch import Fetched, RetryPolicy, fetch

ONE_TRY = RetryPolicy(tries=1, max_failures=1)  # a benchmark reports a failure, it does not hide it in retries


def bench(url: str, dest_dir: str, runs: int, *, verify_tls: bool = True) -> list[Fetched]:
    dest = os.path.join(dest_dir, f"pylive-bench-fetch.{os.getpid()}")
    results = []
    try:
        for _ in range(runs):
            results.append(fetch(url, dest, verify_tls=verify_tls, retry=ONE_TRY))
            os.unlink(dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest)
    return results


def report(results: list[Fetched]) -> str:
    """One line a run: `run=<n> bytes=<size> seconds=<s> mib_s=<rate>`."""
    return "".join(f"run={i} bytes={r.size} seconds={r.seconds:.3f} "
                   f"mib_s={r.size / (1 << 20) / max(r.seconds, 1e-6):.1f}\n" for i, r in enumerate(results, 1))

"""QEMU test harness for pylive.

Builds a Debian guest kernel, dracut initramfs images and LiveOS test media,
boots them under QEMU and parses the report that the guest's test init writes
to the second serial port.

Typical use::

    from qemu import ensure_kernel, build_initrd, build_test_root, build_live_iso, boot
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
CACHE_DIR = BUILD_DIR / "cache"

# Public names, imported lazily (PEP 562) so that `python3 -m qemu.<module>`
# does not import its own module twice.
_EXPORTS = {
    "Kernel": "kernel", "ensure_kernel": "kernel",
    "Media": "media", "build_live_iso": "media", "build_test_root": "media",
    "default_root_tree": "media",
    "build_initrd": "initrd",
    "BootResult": "run_qemu", "boot": "run_qemu", "parse_report": "run_qemu",
    "parse_kv_lines": "run_qemu", "kvm_usable": "run_qemu",
    "NO_SHELL_ARGS": "run_qemu", "BASE_CMDLINE": "run_qemu", "ConsoleEvent": "run_qemu", "QmpEvent": "run_qemu",
    "initqueue_to_root_ms": "timing", "initqueue_match": "timing",
    "TIMING_CMDLINE": "timing",
}


def __getattr__(name: str) -> object:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'qemu' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "REPO_ROOT",
    "BUILD_DIR",
    "CACHE_DIR",
    "Kernel",
    "ensure_kernel",
    "Media",
    "build_live_iso",
    "build_test_root",
    "default_root_tree",
    "build_initrd",
    "BootResult",
    "ConsoleEvent",
    "QmpEvent",
    "boot",
    "parse_report",
    "kvm_usable",
    "parse_kv_lines",
    "NO_SHELL_ARGS",
    "BASE_CMDLINE",
    "initqueue_to_root_ms",
    "initqueue_match",
    "TIMING_CMDLINE",
]

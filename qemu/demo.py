"""`make run`: build the demo live ISO and a pylive initramfs, boot them in QEMU and show what the
booted live system saw. Exit status 0 when the guest booted into the live root and wrote to it."""

from __future__ import annotations

import sys

from . import BUILD_DIR, CACHE_DIR
from .kernel import ensure_kernel
from .media import DEFAULT_LABEL, build_live_iso, default_root_tree
from .pylive_initrd import build_pylive_initrd
from .run_qemu import NO_SHELL_ARGS, boot
from .timing import TIMING_CMDLINE, initqueue_match


def section(title: str, text: str) -> None:
    print(f"\n== {title}")
    print(text.rstrip() or "(empty)")


def main() -> int:
    kernel = ensure_kernel(CACHE_DIR)
    iso = build_live_iso(BUILD_DIR / "media" / "live.iso", DEFAULT_LABEL, BUILD_DIR / "media" / "live.work",
                         root_tree=default_root_tree(BUILD_DIR))
    initrd = build_pylive_initrd(kernel)
    cmdline = f'"root=live:CDLABEL={iso.label}" rd.live.image quiet {NO_SHELL_ARGS} {TIMING_CMDLINE}'
    print(f"kernel {kernel.version}; initramfs {initrd} ({initrd.stat().st_size / 1e6:.1f} MB); ISO {iso.path}")
    print(f"kernel command line: {cmdline}")
    result = boot(kernel, initrd, cmdline, cdrom=iso.path, workdir=BUILD_DIR / "demo", timeout_s=300)
    r = result.report
    # `quiet` keeps pylive's info lines off the console; the guest's kernel log has them all
    log_text = r.get("dmesg") or result.console
    section("pylive's messages (guest kernel log)", "\n".join(ln for ln in log_text.splitlines() if "pylive:" in ln))
    if not r or "root-write" not in r:
        section("console tail", "\n".join(result.console.splitlines()[-40:]))
        print(f"\nFAILED: the guest did not report from the live root (log: {BUILD_DIR / 'demo'})")
        return 1
    root = next((ln for ln in r["mounts"].splitlines() if ln.split()[1] == "/"), "?")
    section("root device (mount of /)", root)
    section("dmsetup table", r["dmsetup-table"])
    section("dmsetup status (overlay usage: snapshot <used>/<total> <metadata> sectors)", r["dmsetup-status"])
    section("live mounts", "\n".join(ln for ln in r["mounts"].splitlines() if "/run/initramfs" in ln or " / " in ln))
    section("/run/initramfs/livedev", r.get("livedev", ""))
    section("/dev/live-base", r.get("dev-live-base", ""))
    section("loop devices", "\n".join(ln for ln in r["loops"].splitlines() if "size=0 " not in ln))
    section("write test on the live root", r["root-write"])
    timing = initqueue_match(r.get("dmesg", ""))
    if timing:
        section("guest time from pylive start to root mount", f"{timing.ms:.0f} ms (TCG)\n  {timing.start_line}\n"
                f"  {timing.root_line}")
    ok = "match=yes" in r["root-write"] and root.startswith("/dev/mapper/live-rw ")
    verdict = "OK" if ok else "FAILED"
    print(f"\n{verdict}: booted in {result.seconds:.0f}s ({result.accel}); logs in {BUILD_DIR / 'demo'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Kernel updates on a persistent stick (README): `pylive update-boot` in the live system, then the
next boot from what the stick's boot menu names.

QEMU boots with -kernel/-initrd, so "booting from the stick" means here: the host reads the stick's
syslinux.cfg (debugfs, no mount), takes out the kernel and initrd its default entry names and hands
those files to QEMU (qemu/sticks.py, boot_files_of), as a BIOS with SYSLINUX would load them.

The new pair is the test kernel with bytes appended (a bzImage boots with trailing data, as a signed
kernel does) and the test initramfs with a cpio archive appended: a marker file and a pre-pivot hook
that copies it to /run/initramfs, which the guest reports (section initrd-marker). The pairs come on
a second disk (labelled PAIRS), mounted on /boot in the guest (qemu/guest/init.sh, pylive.test=updateboot=<dir>).

Three boots of one stick:
1. the original pair: update-boot (--dry-run, then for real) from /boot holding the new pair, an
   older kernel and a rescue kernel; the stick's files are the new pair, the old one is *.prev;
2. from the stick's files: the marker is there (the new initramfs is in use) and the overlay kept
   the first boot's write; then with the stick filled up, update-boot to another pair fails with
   one line and changes nothing on the stick;
3. from the stick's files again (still the new pair): it boots; update-boot has nothing to do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from guestreport import root_ok, written

from qemu import BUILD_DIR, NO_SHELL_ARGS, boot
from qemu.media import make_ext4_image
from qemu.sticks import LiveDir, Stick, boot_files_of, build_stick

UPDATE = "6.1.99-pylive.update"  # the new pair's version
FULL = "6.1.100-pylive.full"    # the pair the full stick has no room for
MARKER = "pylive-test-initramfs updated-by-update-boot"
HOOK = "usr/lib/dracut/hooks/pre-pivot/99-pylive-test-marker.sh"  # /lib is a link to usr/lib in the initramfs


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def padded(data: bytes, to: int) -> bytes:
    return data + b"\0" * (-len(data) % to)


def marked_pair(kernel: Path, initrd: Path, work: Path) -> tuple[Path, Path]:
    """A kernel and an initramfs that differ from the test's and say so (the module docstring)."""
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "marker-tree"
    (tree / HOOK).parent.mkdir(parents=True)
    (tree / "pylive-test-marker").write_text(MARKER + "\n")
    (tree / HOOK).write_text("#!/bin/sh\ncp /pylive-test-marker /run/initramfs/pylive-test-marker\n")
    files = "pylive-test-marker\n" + HOOK + "\n"  # no directory entries: the initramfs's own stay as they are
    cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=tree, input=files.encode(),
                          capture_output=True, check=True).stdout
    new_kernel, new_initrd = work / "vmlinuz-new", work / "initrd-new.img"
    new_kernel.write_bytes(padded(kernel.read_bytes(), 512) + b"pylive-test-kernel " + MARKER.encode())
    new_initrd.write_bytes(padded(initrd.read_bytes(), 4) + cpio)
    return new_kernel, new_initrd


def pairs_disk(out: Path, work: Path, new: tuple[Path, Path], old: tuple[Path, Path]) -> Path:
    """The second disk: first/ is /boot for the update (Debian's names), second/ for the full stick."""
    tree = work / "pairs-tree"
    for d, version, (k, i) in (("first", UPDATE, new), ("second", FULL, old)):
        (tree / d).mkdir(parents=True)
        shutil.copyfile(k, tree / d / f"vmlinuz-{version}")
        shutil.copyfile(i, tree / d / f"initrd.img-{version}")
    (tree / "first/vmlinuz-6.1.0-9-amd64").write_bytes(b"an older kernel")  # version order: not picked
    (tree / "first/initrd.img-6.1.0-9-amd64").write_bytes(b"its initramfs")
    (tree / "first/vmlinuz-0-rescue-0123456789abcdef").write_bytes(b"a rescue kernel: never an update")
    size_mb = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) // (1 << 20) + 32
    return make_ext4_image(tree, out, size_mb, "PAIRS")


def stick_boot(kernel, stick: Stick, pairs: Path, extra: str, workdir: Path, *, name: str):
    """Boot the pair the stick's menu names; (result, the kernel and initrd booted)."""
    k, i = boot_files_of(stick, workdir / name / "from-stick")
    r = boot(dataclasses.replace(kernel, vmlinuz=k), i, f"{stick.root_args} {extra} {NO_SHELL_ARGS}",
             disks=[(stick.path, "stick"), (pairs, "pairs")], workdir=workdir / name, timeout_s=300)
    assert r.report, r.console[-3000:]
    root_ok(r.report)
    return r, (k, i)


def section_lines(report: dict[str, str], name: str, prefix: str) -> list[str]:
    return [ln.removeprefix(prefix) for ln in report[name].splitlines() if ln.startswith(prefix)]


def boot_dir(report: dict[str, str]) -> dict[str, tuple[int, str]]:
    """The stick's syslinux/ as the guest listed it: name → (size, sha256)."""
    out = {}
    for ln in report["stick-boot-dir"].splitlines():
        name, size, digest = ln.split()
        out[name] = (int(size), digest)
    return out


def test_update_boot_then_boot_the_new_pair_and_refuse_a_full_stick(kernel, pylive_initrd, test_root, qemu_workdir):
    old = (Path(kernel.vmlinuz), Path(pylive_initrd))
    new = marked_pair(*old, qemu_workdir / "pairs")
    pairs = pairs_disk(qemu_workdir / "pairs.img", qemu_workdir / "pairs", new, old)
    live = LiveDir(overlay_mb=32)
    stick = build_stick(qemu_workdir / "stick.img", root_tree=test_root, media_dir=BUILD_DIR / "media",
                        dirs=(live,), boot_pair=old)

    # 1: the stick's original pair; the update
    r1, booted = stick_boot(kernel, stick, pairs, "pylive.test=updateboot=first", qemu_workdir, name="boot1")
    assert [sha(p) for p in booted] == [sha(p) for p in old]
    assert r1.report["initrd-marker"].strip() == ""
    ub = r1.report["update-boot"]
    assert "dry-run-rc=0" in ub and "rc=0" in ub.splitlines(), ub
    assert f"dry-run: newest kernel in the live root: {UPDATE} (/boot/vmlinuz-{UPDATE}, /boot/initrd.img-{UPDATE})" \
        in ub.splitlines(), ub
    assert "dry-run: would replace /syslinux/initrd.img" in ub and "dry-run: would replace /syslinux/vmlinuz" in ub
    assert "'linux0' boots /syslinux/vmlinuz with /syslinux/initrd.img" in ub
    assert f"out: the stick boots {UPDATE} next time; the pair it booted before is kept as *.prev" in ub.splitlines()
    assert section_lines(r1.report, "update-boot", "err: ") == []
    listing = boot_dir(r1.report)
    assert listing == {
        "syslinux.cfg": listing["syslinux.cfg"],
        "vmlinuz": (new[0].stat().st_size, sha(new[0])), "initrd.img": (new[1].stat().st_size, sha(new[1])),
        "vmlinuz.prev": (old[0].stat().st_size, sha(old[0])), "initrd.img.prev": (old[1].stat().st_size, sha(old[1])),
    }  # and no temporary file left
    _, token1 = written(r1.report)

    # 2: the stick's files now: the new initramfs is in use; then a full stick refuses another update
    r2, booted = stick_boot(kernel, stick, pairs, "pylive.test=updateboot=second,stickfull", qemu_workdir,
                            name="boot2")
    assert [sha(p) for p in booted] == [sha(p) for p in new]
    assert r2.report["initrd-marker"].strip() == MARKER
    assert written(r2.report)[0] == token1  # the overlay came through the update
    ub = r2.report["update-boot"]
    assert int(re.search(r"^filled-kib=(\d+)$", ub, re.MULTILINE)[1]) > 50 << 10, ub
    assert "dry-run-rc=1" in ub and "rc=1" in ub.splitlines(), ub
    err = section_lines(r2.report, "update-boot", "err: ")
    assert len(err) == 1, ub
    m = re.fullmatch(r"error: not enough room on the stick \(/dev/sd[ab]1 on /run/initramfs/live\): the new kernel and "
                     r"initramfs and the fallback copies need ([\d.]+) MiB, ([\d.]+) (MiB|KiB) free; nothing was "
                     r"changed: free some room on the stick \(the old \*\.prev files hold ([\d.]+) MiB\)", err[0])
    assert m, err
    need_mib = float(m[1])
    assert need_mib > 2 * (old[0].stat().st_size + old[1].stat().st_size) / (1 << 20), err
    assert section_lines(r2.report, "update-boot", "out: ") == []  # refused before anything was done
    assert boot_dir(r2.report) == listing  # nothing written, nothing renamed
    _, token2 = written(r2.report)

    # 3: the pair the refused run left still boots; the update it holds is current
    r3, booted = stick_boot(kernel, stick, pairs, "pylive.test=updateboot=first", qemu_workdir, name="boot3")
    assert [sha(p) for p in booted] == [sha(p) for p in new]
    assert r3.report["initrd-marker"].strip() == MARKER
    assert written(r3.report)[0] == token2
    ub = r3.report["update-boot"]
    assert "rc=0" in ub.splitlines() and f"out: the stick already boots {UPDATE}: nothing to do" in ub.splitlines(), ub
    assert boot_dir(r3.report) == listing

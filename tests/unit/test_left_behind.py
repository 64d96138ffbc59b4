"""What each mode leaves for the booted system (dracut-live.md §4.11): the paths dracut makes, made by
the plan, mode by mode; and none that dracut does not make there. Planned against the fake machines
of test_decisions.py (a dry run)."""

from __future__ import annotations

import pytest

from pylive.plan import (
    CopyToRam,
    CreateDm,
    CreateSparseFile,
    FindFile,
    MakeDir,
    Mount,
    ReleaseMedium,
    Step,
    Symlink,
    Unmount,
)

from .test_decisions import CASES, OVL, plan

OVERLAY_DIR = f"/run/initramfs/overlayfs/{OVL}"


def left_behind(steps: tuple[Step, ...]) -> set[str]:
    """What is there once the plan has run: `mount <target>`, `link <path> -> <target>`, `dir <path>`,
    `file <path>` and `dm <name>` (mounts that were unmounted again are not there)."""
    mounts: dict[str, str] = {}
    out: set[str] = set()
    for s in steps:
        if isinstance(s, Mount):
            mounts[s.target] = str(s.source)
        elif isinstance(s, FindFile):
            mounts[s.mountpoint] = "found"
        elif isinstance(s, Unmount):
            mounts.pop(s.target, None)
        elif isinstance(s, ReleaseMedium):
            mounts.pop(s.target, None)
            if s.iso_host:
                mounts.pop(s.iso_host, None)
        elif isinstance(s, Symlink):
            out.add(f"link {s.link} -> {s.target}")
        elif isinstance(s, MakeDir):
            out.add(f"dir {s.path}")
        elif isinstance(s, CreateSparseFile | CopyToRam):
            out.add(f"file {s.path if isinstance(s, CreateSparseFile) else s.dest}")
        elif isinstance(s, CreateDm):
            out.add(f"dm {s.name}")
    return out | {f"mount {m}" for m in mounts}


COMMON = {"mount /run/initramfs/live", "link /run/initramfs/livedev -> /dev/disk/by-label/Test\\x20Live\\x201",
          "mount /sysroot"}
DM_BASE = {"dm live-rw", "dm live-base", "link /dev/live-base -> <base-loop>"}
TEMP_UPPER = {"link /run/overlayfs -> /run/initramfs/overlay/overlayfs",
              "link /run/ovlwork -> /run/initramfs/overlay/ovlwork"}
OVERLAYFS = {"mount /run/rootfsbase", "link /dev/live-base -> <base-loop>"}
# (there, not there) per case of test_decisions.py
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "inner-none": (COMMON | DM_BASE | {"file /overlay"},
                   {"mount /run/initramfs/squashfs", "mount /run/rootfsbase", "dm live-ro"}),
    "persist-dm-checked": (COMMON | DM_BASE | {"dir /run/initramfs/overlayfs"},  # lazily unmounted: the loop holds it
                           {"mount /run/initramfs/overlayfs", "file /overlay"}),
    "persist-readonly-dm": (COMMON | DM_BASE | {"dm live-ro", "file /overlay"}, {"mount /run/initramfs/overlayfs"}),
    "thin": (COMMON | DM_BASE | {"dm live-overlay-pool", "file /run/initramfs/thin-overlay/meta",
                                 "file /run/initramfs/thin-overlay/data"}, set()),
    "inner-overlayfs": (COMMON | OVERLAYFS | TEMP_UPPER,
                        {"dm live-rw", "dm live-base", "mount /run/initramfs/squashfs"}),
    "flat-none": (COMMON | TEMP_UPPER | {"mount /run/rootfsbase", "link /dev/live-base -> <squashfs-loop>"},
                  {"mount /run/initramfs/squashfs"}),  # dracut: umount -l; the bind on /run/rootfsbase stays
    "inner-persist-dir": (COMMON | OVERLAYFS | {
        "mount /run/initramfs/overlayfs", f"link /run/overlayfs -> {OVERLAY_DIR}",
        "link /run/ovlwork -> /run/initramfs/overlayfs/LiveOS/ovlwork"},
        {"link /run/overlayfs-r -> " + OVERLAY_DIR}),
    "persist-readonly-dir": (COMMON | OVERLAYFS | TEMP_UPPER | {
        "mount /run/initramfs/overlayfs", f"link /run/overlayfs-r -> {OVERLAY_DIR}",
        "link /run/ovlwork-r -> /run/initramfs/overlayfs/LiveOS/ovlwork"}, set()),
    "test21-device-label": (COMMON | OVERLAYFS | {
        "mount /run/initramfs/overlayfs", "link /run/overlayfs-backing -> /run/initramfs/overlayfs",
        "link /run/overlayfs -> /run/initramfs/overlayfs/overlay",
        "link /run/ovlwork -> /run/initramfs/overlayfs/ovlwork"}, set()),
    # no overlay: dracut makes neither live-base nor /dev/live-base (setup=rw): the image is written to
    "writable-fsimg": (COMMON | {"dm live-rw", "file /run/initramfs/fsimg/rootfs.img"},
                       {"dm live-base", "link /dev/live-base -> <base-loop>"}),
    "none-uncompressed-rw": (COMMON | {"dm live-rw"}, {"dm live-base", "link /dev/live-base -> <base-loop>"}),
    "ram": ({*COMMON - {"mount /run/initramfs/live"}, *DM_BASE, "file /run/initramfs/squashed.img"},
            {"mount /run/initramfs/live"}),
    "uncompressed-ram": ({*COMMON - {"mount /run/initramfs/live"}, "dm live-rw", "file /run/initramfs/rootfs.img"},
                         {"mount /run/initramfs/live", "dm live-base"}),
    "isoscan": ({"mount /run/initramfs/isoscan", "link /run/initramfs/isoscandev -> <isoscandev>",
                 "link /run/initramfs/livedev -> <livedev>", "mount /run/initramfs/live", *DM_BASE}, set()),
    # dracut's apply-live-updates: the medium and the filesystem holding the ISO are let go of
    "isoscan-ram": ({"link /run/initramfs/isoscandev -> <isoscandev>", "file /run/initramfs/squashed.img",
                     *DM_BASE}, {"mount /run/initramfs/isoscan", "mount /run/initramfs/live"}),
}


@pytest.mark.parametrize("case_id", EXPECTED)
def test_paths_left_for_the_booted_system(case_id: str) -> None:
    there, not_there = EXPECTED[case_id]
    result = plan(next(c for c in CASES if c.id == case_id))[2]
    left = left_behind(result.steps)
    assert there <= left, sorted(there - left)
    assert not not_there & left, sorted(not_there & left)
    assert result.steps[-1].describe().startswith("ln -s null /dev/root")


def test_read_only_overlayfs_stacks_the_persistent_layer_by_dracuts_path() -> None:
    result = plan(next(c for c in CASES if c.id == "persist-readonly-dir"))[2]
    root = next(s for s in result.steps if isinstance(s, Mount) and s.target == "/sysroot")
    assert "lowerdir=/run/overlayfs-r:/run/rootfsbase" in root.options
    links = [s.link for s in result.steps if isinstance(s, Symlink)]
    assert links.index("/run/overlayfs-r") < links.index("/run/overlayfs")  # made before the mount that uses it

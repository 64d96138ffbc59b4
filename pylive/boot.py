"""The boot: the only place that alternates planning and execution, phase by phase."""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass

from pylive import planner
from pylive.executor import Executor
from pylive.options import LiveOptions
from pylive.plan import Step
from pylive.system import System

log = logging.getLogger("pylive")
STATE_FILE = "/run/initramfs/pylive.json"


@dataclass(frozen=True)
class BootResult:
    mode: planner.Mode
    steps: tuple[Step, ...]
    handles: dict[str, str]


def run(opts: LiveOptions, system: System, newroot: str = "/sysroot") -> BootResult:
    """Find the medium, build the live root and mount it on `newroot`; undo everything on failure."""
    with Executor(system) as ex:
        ex.run(planner.plan_modules())
        ex.run(planner.plan_wait(opts))
        livedev = ex.handles[planner.LIVEDEV_REF.name]
        medium_fstype = system.fstype(livedev)
        log.info("live medium %s is %s (%s)", opts.spec, livedev, medium_fstype or "unknown filesystem")
        ex.run(planner.plan_medium(opts, medium_fstype))

        candidates = planner.medium_candidates(opts)
        images = planner.find_medium_images(opts, frozenset(p for p in candidates if system.exists(p)))
        ex.run(planner.plan_squashfs(opts, images))
        assert images.squashfs is not None

        mnt = planner.SQUASHFS_MNT
        contents = planner.SquashContents(
            rootfs_img=system.exists(planner.INNER_ROOTFS),
            has_liveos=system.is_dir(posixpath.join(mnt, "LiveOS")),
            flattened=system.is_dir(posixpath.join(mnt, "usr")) or system.is_dir(posixpath.join(mnt, "ostree")),
        )
        root_fstype = (system.fstype(planner.INNER_ROOTFS) if contents.rootfs_img else None) or "auto"
        mode = planner.choose_mode(opts)
        ex.run(planner.plan_root(opts, images.squashfs, contents, newroot, root_fstype))
        log.info("root: %s over %s, mounted on %s", mode.value, images.squashfs.removeprefix(planner.LIVE), newroot)
        ex.commit()
        result = BootResult(mode, tuple(ex.done), dict(ex.handles))
    system.write_text(STATE_FILE, json.dumps(state(opts, result), indent=2, sort_keys=True) + "\n")
    return result


def state(opts: LiveOptions, result: BootResult) -> dict[str, object]:
    """The machine-readable record left for the booted system (installers, livesys, support)."""
    return {
        "spec": str(opts.spec),
        "mode": result.mode.name.lower(),
        "devices": result.handles,
        "steps": [s.describe() for s in result.steps],
        "overlay_size_mib": opts.overlay_size_mib,
    }

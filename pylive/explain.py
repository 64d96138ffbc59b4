"""`pylive explain`: run the real boot decision against a system that only reads the medium.

The boot code (boot.run) is the same one the initramfs runs; ExplainSystem answers its questions
from a directory tree or an ISO image read without mounting, and records what would be done.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pylive import boot, isomd5, planner
from pylive.devspec import DeviceSpec
from pylive.dmtable import TargetLine
from pylive.errors import CmdlineError, LiveError
from pylive.media import Entry, MediaView, open_media, view_squashfs
from pylive.options import LiveOptions
from pylive.plan import CopyToRam, ReleaseMedium
from pylive.probe import BlockDevice
from pylive.ramcopy import BlockSums, Room

ASSUMED_ROOTFS_SECTORS = 0  # unknown without the image


def assumed_medium(opts: LiveOptions) -> MediaView:
    """The classic Fedora layout, used when no medium is given."""
    view = MediaView("(no --media: assuming the Fedora layout)", "iso9660")
    view.entries[opts.live_dir.strip("/")] = Entry(True, 0)
    view.entries[f"{opts.live_dir.strip('/')}/{opts.squash_image}"] = Entry(False, 0, b"hsqs")
    return view


def assumed_squashfs(name: str) -> MediaView:
    view = MediaView(f"{name} (contents not inspected: assuming LiveOS/rootfs.img)", "squashfs")
    view.entries["LiveOS"] = Entry(True, 0)
    view.entries["LiveOS/rootfs.img"] = Entry(False, 0, b"\0" * 1080 + b"\x53\xef")
    return view


@dataclass
class ExplainSystem:
    medium: MediaView
    work: Path
    notes: list[str] = field(default_factory=list)
    mounts: dict[str, MediaView] = field(default_factory=dict)
    mount_lines: list[str] = field(default_factory=list)
    loops: dict[str, str] = field(default_factory=dict)  # node → backing file
    dm: dict[str, tuple[TargetLine, ...]] = field(default_factory=dict)
    sparse: dict[str, int] = field(default_factory=dict)
    livedev: str = ""
    overlay_media: MediaView | None = None
    waited: list[str] = field(default_factory=list)
    copies: dict[str, str] = field(default_factory=dict)  # RAM copy → its source (dry run)
    spec: DeviceSpec | None = None

    # --- where a path lives ---
    def _locate(self, path: str) -> tuple[MediaView, str] | None:
        path = self.copies.get(path, path)
        for target in sorted(self.mounts, key=len, reverse=True):
            if path.startswith(target + "/"):
                return self.mounts[target], path[len(target) + 1 :]
        return None

    def _entry(self, path: str) -> Entry | None:
        loc = self._locate(path)
        return loc[0].entries.get(loc[1]) if loc else None

    # --- the System protocol ---
    def wait_for_device(self, path: str, timeout_s: float) -> str | None:
        self.waited.append(path)
        if len(self.waited) == 1:
            self.livedev = path
            return path
        if path == self.livedev:  # the persistent overlay is on the live medium
            return path
        if self.overlay_media is None:
            self.notes.append(f"{path}: not known offline (give --overlay-media); assumed absent")
            return None
        return path

    def is_file(self, path: str) -> bool:
        e = self._entry(path)
        return e is not None and not e.is_dir

    def file_size(self, path: str) -> int:
        e = self._entry(path)
        return e.size if e else 0

    def mem_total_mib(self) -> int | None:
        from pylive.probe import mem_total_mib

        return mem_total_mib()

    def label_uuid(self, dev: str) -> tuple[str, str]:
        if self.medium.label or self.medium.uuid or self.spec is None:
            return self.medium.label, self.medium.uuid
        # a directory tree has no label: the one root= names is the one the medium must have
        kind = self.spec.kind.value
        label = self.spec.value if kind in ("LABEL", "CDLABEL") else ""
        self.notes.append(f"the medium's label and UUID are taken from root= ({label or '?'} / "
                          f"{self.spec.value if kind == 'UUID' else '?'})")
        return label, self.spec.value if kind == "UUID" else ""

    def block_devices(self) -> list[BlockDevice]:
        return []

    def fstype(self, path: str) -> str | None:
        if path == self.livedev:
            return self.medium.fstype
        if path in self.loops:
            path = self.loops[path]
        loc = self._locate(path)
        return loc[0].file_fstype(loc[1]) if loc else None

    def exists(self, path: str) -> bool:
        loc = self._locate(path)
        return bool(loc and loc[0].exists(loc[1]))

    def is_dir(self, path: str) -> bool:
        loc = self._locate(path)
        return bool(loc and loc[0].is_dir(loc[1]))

    def mount(self, source: str, target: str, fstype: str, options: tuple[str, ...]) -> None:
        self.mount_lines.append(f"{source} on {target} type {fstype} ({','.join(options) or 'rw'})")
        if "bind" in options and source in self.mounts:
            self.mounts[target] = self.mounts[source]
        elif "remount" in options:
            pass
        elif source == self.livedev:
            self.mounts[target] = self.medium
        elif source in self.waited and self.overlay_media is not None:
            self.mounts[target] = self.overlay_media
        elif source in self.loops:
            self.mounts[target] = self._image_view(self.loops[source])

    def _image_view(self, file: str) -> MediaView:
        loc = self._locate(file)
        name = file.removeprefix(planner.LIVE)
        if loc is None:
            return assumed_squashfs(name)
        extracted = self.work / "image"
        if loc[0].entries.get(loc[1], Entry(False, 0)).size and loc[0].read_file(loc[1], extracted):
            view = view_squashfs(extracted, name)
            if view is not None:
                return view
            self.notes.append(f"{name}: squashfs contents not inspected (unsquashfs is not installed)")
        return assumed_squashfs(name)

    def attach_loop(self, file: str, readonly: bool) -> str:
        node = f"/dev/loop{len(self.loops)}"
        self.loops[node] = file
        return node

    def device_sectors(self, dev: str) -> int:
        file = self.loops.get(dev, dev)
        if file in self.sparse:
            return self.sparse[file] // 512
        e = self._entry(file)
        return e.size // 512 if e else ASSUMED_ROOTFS_SECTORS

    def dev_numbers(self, dev: str) -> str:
        return f"7:{dev.removeprefix('/dev/loop')}" if dev in self.loops else dev

    def create_sparse_file(self, path: str, size_bytes: int) -> None:
        self.sparse[path] = size_bytes

    def read_head(self, path: str, size: int) -> bytes:
        e = self._entry(path)
        return e.head[:size] if e else b""

    def read_small(self, path: str) -> str | None:
        return None  # offline, no identity record is read: the plan shows the one pylive would write

    def image_identity(self, path: str) -> str:
        e = self._entry(path)
        return f"size={e.size if e else '?'} sha256-64k=(computed at boot)"

    def wipe_header(self, path: str, size: int) -> None: ...
    def empty_dir(self, path: str) -> None: ...
    def ask(self, text: str) -> None: ...
    def hold(self, text: str) -> None: ...

    def parent_disk(self, dev: str) -> str | None:
        return None  # an image file or a tree: no partition table is read

    def fs_space(self, path: str) -> Room | None:
        return None  # the initramfs's /run is not this machine's: its size is known only at boot

    # A dry run lists these steps without running them (executor._run_media_step).
    def check_media(self, dev: str) -> isomd5.Verdict:
        raise AssertionError("a dry run does not check media")

    def resize_tmpfs(self, mountpoint: str, size_mib: int) -> None:
        raise AssertionError("a dry run does not remount")

    def copy_file(self, src: str, dest: str) -> BlockSums:
        raise AssertionError("a dry run does not copy")

    def file_sums(self, path: str, block: int) -> BlockSums:
        raise AssertionError("a dry run does not copy")

    def note_copy(self, src: str, dest: str) -> None:
        loc = self._locate(src)
        if loc is not None:
            self.copies[dest] = src

    def dm_create(self, name: str, table: tuple[TargetLine, ...], readonly: bool) -> str:
        self.dm[name] = table
        return f"/dev/mapper/{name}"

    def load_modules(self, names: tuple[str, ...]) -> None: ...
    def make_dir(self, path: str) -> None: ...
    def symlink(self, target: str, link: str) -> None: ...
    def unlink(self, path: str) -> None: ...
    def touch(self, path: str) -> None: ...
    def write_text(self, path: str, text: str) -> None: ...
    def umount(self, target: str, lazy: bool) -> None: ...
    def detach_loop(self, dev: str) -> None: ...
    def dm_remove(self, name: str) -> None: ...


def explain(opts: LiveOptions, media: Path | None, newroot: str = "/sysroot",
            overlay_media: Path | None = None) -> dict[str, Any]:
    """What booting with `opts` would do, as data; `error` holds the line the boot would stop with."""
    out: dict[str, Any] = {"warnings": list(opts.warnings)}
    if opts.spec is None:
        out["error"] = f"root={opts.root or '(unset)'} is not a live medium; pylive would do nothing"
        return out
    out["device"] = {"spec": str(opts.spec), "udev_path": opts.spec.udev_path(), "timeout_s": opts.retry_s}
    reading_note = ""
    try:
        medium = open_media(media) if media is not None else assumed_medium(opts)
    except (OSError, ValueError) as e:
        reading_note = (f"{media}: cannot be read without mounting ({e}); pylive reads directory trees and ISO9660 "
                        "images: the Fedora layout is assumed instead")
        medium = assumed_medium(opts)
    out["medium"] = {"name": medium.name, "fstype": medium.fstype}
    with tempfile.TemporaryDirectory(prefix="pylive-explain.") as tmp:
        system = ExplainSystem(medium, Path(tmp), spec=opts.spec)
        if overlay_media is not None:
            system.overlay_media = open_media(overlay_media)
        if reading_note:
            system.notes.append(reading_note)
        if media is None:
            system.notes.append("no --media given: "
                                "the medium is assumed to hold LiveOS/squashfs.img ⊃ LiveOS/rootfs.img")
        try:
            out["warnings"] += planner.resolve_intent(opts).warnings
        except CmdlineError:
            pass  # boot.run stops with this same error below
        try:
            result = boot.run(opts, system, newroot=newroot, dry_run=True)
            out["mode"] = result.mode.value
            out["why"] = list(result.decision.reasons)
            out["warnings"] += result.decision.warnings
            out["image"] = result.image.kind.value
            out["steps"] = [s.describe() for s in result.steps]
            out["executable"] = planner.executable(result.mode, opts, result.image)
            if not out["executable"]:
                out["notes"] = [f"this pylive does not execute '{result.mode.value}' yet: the boot would stop there"]
        except LiveError as e:
            out["error"] = str(e)
        out["loop_devices"] = dict(system.loops)
        out["dm_tables"] = {name: [str(t) for t in table] for name, table in system.dm.items()}
        out["mounts"] = system.mount_lines
        out["notes"] = out.get("notes", []) + system.notes
    if "error" not in out:
        released = any(isinstance(s, ReleaseMedium) for s in result.steps)
        live = f"{planner.LIVE} (unmounted: rd.live.ram, the medium can be removed)" if released else planner.LIVE
        copies = [f"{s.dest} (the RAM copy of {s.src.removeprefix(planner.LIVE)})" for s in result.steps
                  if isinstance(s, CopyToRam)]
        common = [live, f"{planner.LIVEDEV} -> {opts.spec.udev_path()}", *copies]
        if out["mode"].startswith(("temporary OverlayFS", "persistent OverlayFS")):
            special = ["/run/rootfsbase", "/run/overlayfs", "/run/ovlwork", "/dev/live-base",
                       "LiveOS_rootfs (overlay) on /"]
        else:
            special = [*(f"/dev/mapper/{n}" for n in system.dm), "/dev/live-base"]
        out["left_for_booted_system"] = [*common, *special, "/dev/root -> null", boot.STATE_FILE]
    return out


def render(data: dict[str, Any]) -> str:
    lines = []
    if "device" in data:
        d = data["device"]
        lines.append(f"live medium: {d['spec']}: wait up to {d['timeout_s']}s for {d['udev_path']}")
    if "medium" in data:
        lines.append(f"medium: {data['medium']['name']} ({data['medium']['fstype'] or 'type unknown'})")
    if "image" in data:
        lines.append(f"image: {data['image']}")
    if "mode" in data:
        lines.append(f"mode: {data['mode']}")
        lines += [f"  because {w}" for w in data.get("why", [])]
    for title, key in (("steps", "steps"), ("mounts", "mounts"), ("notes", "notes"), ("warnings", "warnings")):
        if data.get(key):
            lines.append(f"{title}:")
            lines += [f"  {i}. {s}" if key == "steps" else f"  {s}" for i, s in enumerate(data[key], 1)]
    if data.get("loop_devices"):
        lines.append("loop devices:")
        lines += [f"  {n}: {f}" for n, f in data["loop_devices"].items()]
    if data.get("dm_tables"):
        lines.append("device-mapper tables (dmsetup table):")
        lines += [f"  {n}: {t}" for n, ts in data["dm_tables"].items() for t in ts]
    if data.get("left_for_booted_system"):
        lines.append("left for the booted system:")
        lines += [f"  {p}" for p in data["left_for_booted_system"]]
    if "error" in data:
        lines.append(f"error: {data['error']}")
    return "\n".join(lines) + "\n"


__all__ = ["explain", "render", "ExplainSystem", "os"]

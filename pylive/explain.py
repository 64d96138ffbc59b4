"""`pylive explain`: run the real boot decision against a system that only reads the medium.

The boot code (boot.run) is the same one the initramfs runs; ExplainSystem answers its questions
from a directory tree or an ISO image read without mounting, and records what would be done.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pylive import boot, isoscan, planner, probe
from pylive.devspec import DeviceSpec
from pylive.dmtable import TargetLine
from pylive.errors import CmdlineError, LiveError, NotFoundOnDisks, one_line, shown
from pylive.media import Entry, MediaView, open_media, view_directory, view_squashfs
from pylive.options import LiveOptions
from pylive.plan import CopyToRam, FetchImage, FindFile, ReleaseMedium, Step, Symlink
from pylive.planner.net import image_file, is_network, parse_net_root
from pylive.probe import BlockDevice, FsIdentity
from pylive.ramcopy import BlockSums, Room
from pylive.record import field, mutable_record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import Any

    from pylive import isomd5

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


@mutable_record
class ExplainSystem:
    medium: MediaView
    cleanup: contextlib.ExitStack  # removes the scratch directory
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
    live_file: str = ""  # root=live:<file>, or iso-scan's ISO: its loop device is the live device
    iso_host: MediaView | None = None  # iso-scan: the filesystem that holds the ISO (a --media directory)
    scan_order: list[str] = field(default_factory=list)
    work: Path | None = None  # the scratch directory (_scratch)

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
            # a directory tree has no type: "auto" keeps a file in the initramfs from being read as a disk image
            return self.medium.fstype or ("auto" if self.live_file else None)
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
        if loc[0].entries.get(loc[1], Entry(False, 0)).size and loc[0].read_file(loc[1], self._scratch("image")):
            view = view_squashfs(self._scratch("image"), name)
            if view is not None:
                return view
            self.notes.append(f"{name}: squashfs contents not inspected (unsquashfs is not installed)")
        return assumed_squashfs(name)

    def _scratch(self, name: str) -> Path:
        """A path in the scratch directory, made on first use: most runs read no image."""
        if self.work is None:
            import tempfile

            self.work = Path(self.cleanup.enter_context(tempfile.TemporaryDirectory(prefix="pylive-explain.")))
        return self.work / name

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

    def fs_health(self, dev: str) -> probe.FsHealth:
        return probe.FsHealth()  # the overlay's device is not read offline: the boot reads its state

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

    # --- iso-scan and root=live:<file> ---
    def attach_loop_partscan(self, file: str) -> str:
        node = self.attach_loop(file, True)
        if file == self.live_file:
            self.livedev = node
        return node

    def partitions(self, dev: str) -> list[str]:
        return []  # the image is read as one filesystem (the ISO, or the tree)

    def fs_identity(self, dev: str) -> FsIdentity:
        label, uuid = self.label_uuid(dev)
        return FsIdentity(self.medium.fstype, (label,) if label else (), uuid)

    def find_file(self, step: FindFile, within: list[str] | None) -> str:
        host = self.iso_host
        if host is None:
            host = MediaView("(assumed)", None)
            host.entries.update((p.strip("/"), Entry(False, 0)) for p in step.paths)
            self.notes.append(f"{step.what}: which disk holds the file is only known at boot; "
                              "give --media the directory tree of that filesystem to check the path")
        elif not any(host.exists(p) for p in step.paths):
            raise NotFoundOnDisks(step.what, f"--media {host.name} does not hold {' or '.join(step.paths)}",
                                  "check the path (from the top of the filesystem that holds it)")
        if step.device is None and within is None:
            self.scan_order = isoscan.describe_scan(probe.block_devices())
        self.mounts[step.mountpoint] = host
        self.mount_lines.append(f"<the device holding it> on {step.mountpoint} (ro, without journal replay)")
        return "<the device holding it>"

    def trigger_uevent(self, dev: str) -> None: ...
    def has_network_code(self) -> bool:
        return True  # the plan a binary with the network code (module pylive-net) would follow

    def wait_network(self, server: str, timeout_s: float) -> None: ...
    def fetch_image(self, step: FetchImage) -> None: ...
    def mount_nfs(self, export: str, target: str, version: str, port: int = 0) -> None: ...
    def apply_updates(self, image: str, newroot: str) -> int:
        return 0
    def load_modules(self, names: tuple[str, ...]) -> None: ...
    def make_dir(self, path: str) -> None: ...
    def symlink(self, target: str, link: str) -> None: ...
    def unlink(self, path: str) -> None: ...
    def touch(self, path: str) -> None: ...
    def write_text(self, path: str, text: str) -> None: ...
    def umount(self, target: str, lazy: bool) -> None: ...
    def detach_loop(self, dev: str) -> None: ...
    def dm_remove(self, name: str) -> None: ...

    def dm_message(self, name: str, message: str) -> None: ...

    def dm_status(self, name: str) -> list[TargetLine]:
        return []


def _found_medium(opts: LiveOptions, media: Path | None) -> tuple[Path | None, MediaView | None, str, str]:
    """root=live:<file> and iso-scan: (the medium to read, the filesystem holding the ISO, the file whose
    loop device is the live device, how the medium is found). With iso-scan, a --media directory is the
    filesystem that holds the ISO, and the medium is the ISO inside it."""
    assert opts.spec is not None
    if opts.iso_scan_filename is not None:
        try:
            iso_path = planner.parse_iso_scan(opts.iso_scan_filename).path
        except CmdlineError:
            iso_path = "/"  # boot.run stops with this error
        iso_host = None
        if media is not None and media.is_dir():
            iso_host = view_directory(media)
            media = media / iso_path.lstrip("/") if (media / iso_path.lstrip("/")).is_file() else None
        return media, iso_host, planner.ISOSCAN + iso_path, f"iso-scan/filename={opts.iso_scan_filename}"
    if opts.spec.kind in planner.FILE_KINDS:
        return media, None, opts.spec.value, "file"
    if is_network(opts):
        try:
            return media, None, image_file(parse_net_root(opts)), "network"
        except LiveError:
            return media, None, "", ""  # boot.run stops with this same error
    return media, None, "", ""


def _left_for_booted_system(opts: LiveOptions, mode: str, system: ExplainSystem,
                            steps: tuple[Step, ...]) -> list[str]:
    assert opts.spec is not None
    released = any(isinstance(s, ReleaseMedium) and s.mounted for s in steps)
    live = f"{planner.LIVE} (unmounted: rd.live.ram, the medium can be removed)" if released else planner.LIVE
    common = [live, f"{planner.LIVEDEV} -> {opts.spec.udev_path() or system.livedev}"]
    if opts.iso_scan_filename is not None:
        iso_released = any(isinstance(s, ReleaseMedium) and s.iso_host for s in steps)
        host = ("unmounted: rd.live.ram, its disk can be removed" if iso_released
                else "the filesystem that holds the ISO, read-only")
        common = [f"{planner.ISOSCAN} ({host})", f"{planner.ISOSCANDEV} -> its device", live,
                  f"{planner.LIVEDEV} -> {system.livedev}"]
    common += [f"{s.dest} (the RAM copy of {s.src.removeprefix(planner.LIVE)})" for s in steps
               if isinstance(s, CopyToRam)]
    if system.live_file and opts.spec.udev_path():  # udev names the loop device once told about it
        common.append(f"{opts.spec.udev_path()} -> {system.livedev} (udev)")
    # /run/overlayfs, /run/ovlwork (-r), /run/overlayfs-backing, /dev/live-base: as the plan makes them
    links = [s.link for s in steps if isinstance(s, Symlink) and s.link not in (planner.LIVEDEV, planner.ISOSCANDEV)]
    if mode.startswith(("temporary OverlayFS", "persistent OverlayFS")):
        special = [planner.ROOTFSBASE, *links, "LiveOS_rootfs (overlay) on /"]
    else:
        special = [*(f"/dev/mapper/{n}" for n in system.dm), *links]
    return [*common, *special, "/dev/root -> null", boot.STATE_FILE]


def explain(opts: LiveOptions, media: Path | None, newroot: str = "/sysroot",
            overlay_media: Path | None = None) -> dict[str, Any]:
    """What booting with `opts` would do, as data; `error` holds the line the boot would stop with."""
    out: dict[str, Any] = {"warnings": list(opts.warnings)}
    if opts.spec is None:
        out["error"] = f"root={shown(opts.root or '(unset)')} is not a live medium; pylive would do nothing"
        return out
    out["device"] = {"spec": str(opts.spec), "udev_path": opts.spec.udev_path(), "timeout_s": opts.retry_s}
    media, iso_host, live_file, found_by = _found_medium(opts, media)
    if found_by:
        out["device"]["found_by"] = found_by
    reading_note = ""
    try:
        medium = open_media(media) if media is not None else assumed_medium(opts)
    except (OSError, ValueError) as e:
        reading_note = (f"{media}: cannot be read without mounting ({e}); pylive reads directory trees and ISO9660 "
                        "images: the Fedora layout is assumed instead")
        medium = assumed_medium(opts)
    out["medium"] = {"name": medium.name, "fstype": medium.fstype}
    with contextlib.ExitStack() as cleanup:
        system = ExplainSystem(medium, cleanup, spec=opts.spec, live_file=live_file, iso_host=iso_host)
        if overlay_media is not None:
            try:
                system.overlay_media = open_media(overlay_media)
            except (OSError, ValueError) as e:
                system.notes.append(f"{overlay_media}: cannot be read without mounting ({e}): the persistent "
                                    "overlay's device is assumed absent")
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
        except LiveError as e:
            out["error"] = str(e)
        out["loop_devices"] = dict(system.loops)
        if system.scan_order:
            out["iso_scan_order"] = system.scan_order
        out["dm_tables"] = {name: [str(t) for t in table] for name, table in system.dm.items()}
        out["mounts"] = system.mount_lines
        out["notes"] = out.get("notes", []) + system.notes
    if "error" not in out:
        out["left_for_booted_system"] = _left_for_booted_system(opts, out["mode"], system, result.steps)
    return out


def _device_line(d: dict[str, Any]) -> str:
    if d.get("found_by") == "file":
        return f"live medium: {d['spec']}: a file in the initramfs, attached read-only with its partitions"
    if d.get("found_by") == "network":
        return (f"live medium: {d['spec']}: on the network; the image (--media, or else the Fedora layout "
                "assumed) is attached read-only as a file in the initramfs is")
    if d.get("found_by"):
        return (f"live medium: {d['spec']}: in the ISO file of {d['found_by']}, looked for on the disks "
                f"for up to {d['timeout_s']}s")
    return f"live medium: {d['spec']}: wait up to {d['timeout_s']}s for {d['udev_path']}"


def render(data: dict[str, Any]) -> str:
    lines = []
    if "device" in data:
        lines.append(_device_line(data["device"]))
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
    if data.get("iso_scan_order"):
        lines.append("iso-scan would look on this machine's block devices (as udev knows them) in this order:")
        lines += [f"  {x}" for x in data["iso_scan_order"]]
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
    return "".join(f"{one_line(line)}\n" for line in lines)  # a label or path cannot break a line in two


__all__ = ["explain", "render", "ExplainSystem", "os"]

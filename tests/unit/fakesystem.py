"""A System that keeps state in memory and records every call (same interface as RealSystem)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from pylive import isomd5, isoscan
from pylive.dmtable import TargetLine
from pylive.plan import FetchImage, FindFile
from pylive.probe import BlockDevice, FsHealth, FsIdentity
from pylive.ramcopy import BlockSums, Room


@dataclass
class FakeSystem:
    # udev path → device node, once udev has made it
    links: dict[str, str] = field(default_factory=dict)
    # device node or file → filesystem type (what a superblock probe would say)
    fstypes: dict[str, str] = field(default_factory=dict)
    # device node or image file → the paths inside it (relative, "/"-separated)
    contents: dict[str, set[str]] = field(default_factory=dict)
    sectors: dict[str, int] = field(default_factory=dict)
    devices: list[BlockDevice] = field(default_factory=list)
    fail_on: str | None = None  # a call name that raises OSError
    mem_mib: int | None = 4096
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    heads: dict[str, bytes] = field(default_factory=dict)  # relative path → first bytes (default: zeros)
    identities: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    file_sizes: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    mounts: dict[str, str] = field(default_factory=dict)
    loops: dict[str, str] = field(default_factory=dict)
    dm: dict[str, tuple[TargetLine, ...]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    dm_statuses: dict[str, str] = field(default_factory=dict)  # dm name → `dmsetup status` params
    # iso-scan and disk images; keys: a device node, or an image file (full path, or relative to its mount)
    fsids: dict[str, FsIdentity] = field(default_factory=dict)
    parts: dict[str, list[str]] = field(default_factory=dict)
    unclean: dict[str, str] = field(default_factory=dict)  # NTFS device → why it is not looked at
    hotplug: list[list[BlockDevice]] = field(default_factory=list)  # devices that appear on successive waits
    waited_s: float = 0.0
    parents: dict[str, str] = field(default_factory=dict)  # partition → whole disk
    verdict: isomd5.Verdict = isomd5.Verdict(isomd5.Status.PASSED, total=700 << 20)  # what a media check finds
    held: list[str] = field(default_factory=list)  # messages held on the console
    rooms: dict[str, Room] = field(default_factory=dict)  # statvfs of a directory
    health: dict[str, FsHealth] = field(default_factory=dict)  # device → its read-only flag and filesystem state
    copy_damage: str | None = None  # "source": fewer bytes read than the size; "copy": a block differs
    network_code: bool = True  # False: the base binary, built without pylive.netsystem

    def _call(self, text: str) -> None:
        self.calls.append(text)
        if self.fail_on and text.startswith(self.fail_on):
            raise OSError(5, f"{self.fail_on}: Input/output error")

    def _backing(self, path: str) -> str:
        """The device or file whose contents a path shows, following mounts and loops."""
        for target, source in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            if path == target or path.startswith(target + "/"):
                return self.loops.get(source, source)
        return path

    def wait_for_device(self, path: str, timeout_s: float) -> str | None:
        self._call(f"wait {path} {timeout_s}")
        return self.links.get(path)

    def block_devices(self) -> list[BlockDevice]:
        return list(self.devices)

    def fstype(self, path: str) -> str | None:
        if path in self.fstypes or path in self.loops:
            return self.fstypes.get(self.loops.get(path, path))
        return self.fstypes.get(path)

    def exists(self, path: str) -> bool:
        if path in self.paths:
            return True
        for target, source in self.mounts.items():
            inner = self.contents.get(self.loops.get(source, source), set())
            if path.startswith(target + "/") and path[len(target) + 1 :] in inner:
                return True
        return False

    def is_dir(self, path: str) -> bool:
        for target, source in self.mounts.items():
            inner = self.contents.get(self.loops.get(source, source), set())
            rel = path[len(target) + 1 :]
            if path.startswith(target + "/") and any(p.startswith(rel + "/") for p in inner):
                return True
        return False

    def is_file(self, path: str) -> bool:
        return self.exists(path) and not self.is_dir(path)

    def file_size(self, path: str) -> int:
        for target in self.mounts:
            if path.startswith(target + "/") and path[len(target) + 1 :] in self.file_sizes:
                return self.file_sizes[path[len(target) + 1 :]]
        return self.file_sizes.get(path, 0)

    def mem_total_mib(self) -> int | None:
        return self.mem_mib

    def label_uuid(self, dev: str) -> tuple[str, str]:
        return self.labels.get(dev, ("", ""))

    def load_modules(self, names: tuple[str, ...]) -> None:
        self._call(f"modprobe {' '.join(names)}")

    def make_dir(self, path: str) -> None:
        self._call(f"mkdir {path}")
        self.paths.add(path)

    def symlink(self, target: str, link: str) -> None:
        self._call(f"ln -s {target} {link}")
        self.paths.add(link)

    def unlink(self, path: str) -> None:
        self._call(f"rm {path}")
        self.paths.discard(path)

    def touch(self, path: str) -> None:
        self._call(f"touch {path}")
        self.paths.add(path)

    def write_text(self, path: str, text: str) -> None:
        self._call(f"write {path}")
        self.files[path] = text

    def mount(self, source: str, target: str, fstype: str, options: tuple[str, ...]) -> None:
        self._call(f"mount -t {fstype} -o {','.join(options) or 'defaults'} {source} {target}")
        if "remount" in options:
            return
        self.mounts[target] = self.mounts.get(source, source) if "bind" in options else source

    def umount(self, target: str, lazy: bool) -> None:
        self._call(f"umount{' -l' if lazy else ''} {target}")
        del self.mounts[target]

    def attach_loop(self, file: str, readonly: bool, partscan: bool = False) -> str:
        node = f"/dev/loop{len(self.loops)}"
        self._call(f"losetup{' -r' if readonly else ''}{' -P' if partscan else ''} {node} {file}")
        backing = self._backing(file)
        rel = file
        for target in self.mounts:
            if file.startswith(target + "/"):
                rel = file[len(target) + 1 :]
        self.loops[node] = file
        # what the loop shows is the image file's own contents and type
        if file in self.contents:
            self.contents[node] = self.contents[file]
        self.fstypes.setdefault(node, self.fstypes.get(file, self.fstypes.get(rel, "")))
        self.sectors.setdefault(node, self.sectors.get(file, self.sectors.get(rel, 0)))
        for table in (self.fsids, self.parts):
            for key in (file, rel):
                if key in table:
                    table[node] = table[key]  # type: ignore[index]
        del backing
        return node

    def detach_loop(self, dev: str) -> None:
        self._call(f"losetup -d {dev}")
        del self.loops[dev]

    def create_sparse_file(self, path: str, size_bytes: int) -> None:
        self._call(f"truncate -s {size_bytes} {path}")
        self.paths.add(path)
        self.sectors[path] = size_bytes // 512

    def device_sectors(self, dev: str) -> int:
        return self.sectors[dev]

    def dev_numbers(self, dev: str) -> str:
        if dev.startswith("/dev/loop"):
            return f"7:{dev.removeprefix('/dev/loop')}"
        if dev.startswith("/dev/mapper/"):
            return f"253:{list(self.dm).index(dev.removeprefix('/dev/mapper/'))}"
        raise AssertionError(dev)

    def dm_create(self, name: str, table: tuple[TargetLine, ...], readonly: bool) -> str:
        self._call(f"dmsetup create{' --readonly' if readonly else ''} {name} {'; '.join(map(str, table))}")
        self.dm[name] = table
        return f"/dev/mapper/{name}"

    def _rel(self, path: str) -> str:
        for target in sorted(self.mounts, key=len, reverse=True):
            if path.startswith(target + "/"):
                return path[len(target) + 1 :]
        return path

    def read_head(self, path: str, size: int) -> bytes:
        return self.heads.get(self._rel(path), bytes(size))[:size]

    def read_small(self, path: str) -> str | None:
        return self.files.get(path)

    def image_identity(self, path: str) -> str:
        return self.identities.get(path, "size=1 sha256-64k=base")

    def wipe_header(self, path: str, size: int) -> None:
        self._call(f"wipe {size} {path}")

    def empty_dir(self, path: str) -> None:
        self._call(f"empty {path}")

    def ask(self, text: str) -> None:
        self.asked.append(text)

    def note_copy(self, src: str, dest: str) -> None:
        for table in (self.contents, self.fstypes, self.sectors):
            if src in table:
                table[dest] = table[src]  # type: ignore[index]

    def dm_message(self, name: str, message: str) -> None:
        self._call(f"dmsetup message {name} 0 {message}")

    def dm_status(self, name: str) -> list[TargetLine]:
        line = self.dm[name][0]
        params = self.dm_statuses.get(name, f"16/{line.length} 16" if line.target == "snapshot" else "")
        return [TargetLine(line.start, line.length, line.target, params)]

    def dm_remove(self, name: str) -> None:
        self._call(f"dmsetup remove {name}")
        del self.dm[name]

    # --- iso-scan and root=live:<file> ---
    def attach_loop_partscan(self, file: str) -> str:
        return self.attach_loop(file, True, partscan=True)

    def trigger_uevent(self, dev: str) -> None:
        self._call(f"udevadm trigger --action=change {dev}")

    def partitions(self, dev: str) -> list[str]:
        return list(self.parts.get(dev, []))

    def fs_identity(self, dev: str) -> FsIdentity:
        return self.fsids.get(dev) or FsIdentity(self.fstype(dev))

    def ntfs_unclean(self, dev: str) -> str | None:
        return self.unclean.get(dev)

    def wait_block_event(self, timeout_s: float) -> float:
        self.waited_s += timeout_s
        if self.hotplug:
            self.devices += self.hotplug.pop(0)
        return timeout_s

    def find_file(self, step: FindFile, within: list[str] | None) -> str:
        return isoscan.find_file(self, step, within)
    def hold(self, text: str) -> None:
        self.held.append(text)

    def parent_disk(self, dev: str) -> str | None:
        return self.parents.get(dev)

    def check_media(self, dev: str) -> isomd5.Verdict:
        self._call(f"checkisomd5 {dev}")
        return self.verdict

    def fs_space(self, path: str) -> Room | None:
        return self.rooms.get(path)

    def fs_health(self, dev: str) -> FsHealth:
        return self.health.get(dev, FsHealth())

    def resize_tmpfs(self, mountpoint: str, size_mib: int) -> None:
        self._call(f"mount -o remount,size={size_mib}m {mountpoint}")

    def copy_file(self, src: str, dest: str) -> BlockSums:
        self._call(f"cp {src} {dest}")
        self.note_copy(src, dest)
        self.paths.add(dest)
        size = self.file_size(src)
        self.file_sizes[dest] = size
        if self.copy_damage == "source":
            size -= 4096
        return BlockSums(size, 4 << 20, tuple(range(-(-size // (4 << 20)))))

    def file_sums(self, path: str, block: int) -> BlockSums:
        self._call(f"verify {path}")
        size = self.file_sizes.get(path, 0)
        crcs = list(range(-(-size // block)))
        if self.copy_damage == "copy":
            crcs[-1] += 1
        return BlockSums(size, block, tuple(crcs))

    # --- the network: the image "arrives" as a file the test described beforehand ---
    def has_network_code(self) -> bool:
        return self.network_code

    def wait_network(self, server: str, timeout_s: float) -> None:
        self._call(f"wait_network {server} {timeout_s}")

    def fetch_image(self, step: FetchImage) -> None:
        self._call(f"fetch {' '.join(step.urls)} {step.dest}")
        self.paths.add(step.dest)

    def mount_nfs(self, export: str, target: str, version: str, port: int = 0) -> None:
        self._call(f"mount_nfs {export} {target} {version}" + (f" port={port}" if port else ""))
        self.mounts[target] = export

    def apply_updates(self, image: str, newroot: str) -> int:
        self._call(f"apply_updates {image} {newroot}")
        return 1


def live_iso_system(label: str = "Test Live 1", squash: set[str] | None = None, medium: set[str] | None = None,
                    rootfs_sectors: int = 131072) -> FakeSystem:
    """A machine with a Fedora-layout live CD in /dev/sr0."""
    from pylive.devspec import udev_escape

    sys = FakeSystem()
    sys.links[f"/dev/disk/by-label/{udev_escape(label)}"] = "/dev/sr0"
    sys.fstypes["/dev/sr0"] = "iso9660"
    sys.contents["/dev/sr0"] = medium if medium is not None else {"LiveOS/squashfs.img", "isolinux/isolinux.cfg"}
    img = "/run/initramfs/live/LiveOS/squashfs.img"
    sys.fstypes[img] = "squashfs"
    sys.contents[img] = squash if squash is not None else {"LiveOS/rootfs.img"}
    inner = "/run/initramfs/squashfs/LiveOS/rootfs.img"
    sys.fstypes[inner] = "ext4"
    sys.sectors[inner] = rootfs_sectors
    sys.devices = [BlockDevice("sr0", 2048, label, "iso9660"), BlockDevice("vda", 4096, None, None)]
    return sys


__all__ = ["FakeSystem", "live_iso_system", "posixpath"]

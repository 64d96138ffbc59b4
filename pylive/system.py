"""The System interface the executor drives, and RealSystem, which wires it to linux/*."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pylive import probe
from pylive.dmtable import TargetLine
from pylive.plan import FindFile

if TYPE_CHECKING:
    from pylive.linux.udev import BlockEvents


class System(Protocol):
    def wait_for_device(self, path: str, timeout_s: float) -> str | None: ...
    def block_devices(self) -> list[probe.BlockDevice]: ...
    def fstype(self, path: str) -> str | None: ...
    def exists(self, path: str) -> bool: ...
    def is_dir(self, path: str) -> bool: ...
    def is_file(self, path: str) -> bool: ...
    def file_size(self, path: str) -> int: ...
    def mem_total_mib(self) -> int | None: ...
    def label_uuid(self, dev: str) -> tuple[str, str]: ...
    def load_modules(self, names: tuple[str, ...]) -> None: ...
    def make_dir(self, path: str) -> None: ...
    def symlink(self, target: str, link: str) -> None: ...
    def unlink(self, path: str) -> None: ...
    def touch(self, path: str) -> None: ...
    def write_text(self, path: str, text: str) -> None: ...
    def mount(self, source: str, target: str, fstype: str, options: tuple[str, ...]) -> None: ...
    def umount(self, target: str, lazy: bool) -> None: ...
    def attach_loop(self, file: str, readonly: bool) -> str: ...
    def detach_loop(self, dev: str) -> None: ...
    def create_sparse_file(self, path: str, size_bytes: int) -> None: ...
    def device_sectors(self, dev: str) -> int: ...
    def dev_numbers(self, dev: str) -> str: ...
    def dm_create(self, name: str, table: tuple[TargetLine, ...], readonly: bool) -> str: ...
    def dm_remove(self, name: str) -> None: ...
    def dm_message(self, name: str, message: str) -> None: ...
    def dm_status(self, name: str) -> list[TargetLine]: ...
    def note_copy(self, src: str, dest: str) -> None: ...
    def read_head(self, path: str, size: int) -> bytes: ...
    def read_small(self, path: str) -> str | None: ...
    def image_identity(self, path: str) -> str: ...
    def wipe_header(self, path: str, size: int) -> None: ...
    def empty_dir(self, path: str) -> None: ...
    def ask(self, text: str) -> None: ...
    # iso-scan and root=live:<file>
    def attach_loop_partscan(self, file: str) -> str: ...
    def trigger_uevent(self, dev: str) -> None: ...
    def partitions(self, dev: str) -> list[str]: ...
    def fs_identity(self, dev: str) -> probe.FsIdentity: ...
    def find_file(self, step: FindFile, within: list[str] | None) -> str: ...


class RealSystem:
    """The running kernel. Imports the kernel layer lazily so `pylive explain` needs none of it."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root
        self._block_events: BlockEvents | None = None  # started by iso-scan's first wait for more devices

    def wait_for_device(self, path: str, timeout_s: float) -> str | None:
        from pylive.linux.udev import wait_for_path

        return wait_for_path(path, timeout_s)

    def block_devices(self) -> list[probe.BlockDevice]:
        return probe.block_devices(self.root)

    def fstype(self, path: str) -> str | None:
        return probe.read_fstype(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def is_file(self, path: str) -> bool:
        return os.path.isfile(path)

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def mem_total_mib(self) -> int | None:
        return probe.mem_total_mib(self.root)

    def label_uuid(self, dev: str) -> tuple[str, str]:
        return probe.label_uuid(self.root, dev)

    def load_modules(self, names: tuple[str, ...]) -> None:
        # modprobe resolves dependencies, aliases and modprobe.d options: kmod's job, not ours.
        # A module built into the kernel or already loaded is fine; a missing one shows up as a
        # clear error at the step that needs it.
        missing = [n for n in names if not os.path.isdir(f"/sys/module/{n}")]
        if missing:
            subprocess.run(["modprobe", "-a", "-q", *missing], check=False)

    def make_dir(self, path: str) -> None:
        os.makedirs(path, mode=0o755, exist_ok=True)

    def symlink(self, target: str, link: str) -> None:
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def touch(self, path: str) -> None:
        with open(path, "a"):
            pass

    def write_text(self, path: str, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)  # it may sit on a stick that is pulled without a clean shutdown
        finally:
            os.close(fd)

    def read_head(self, path: str, size: int) -> bytes:
        with open(path, "rb") as f:
            return f.read(size)

    def read_small(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read(4096)
        except FileNotFoundError:
            return None

    def image_identity(self, path: str) -> str:
        return probe.image_identity(path)

    def wipe_header(self, path: str, size: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.pwrite(fd, bytes(min(size, os.fstat(fd).st_size)), 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def empty_dir(self, path: str) -> None:
        import shutil

        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)

    def ask(self, text: str) -> None:
        # dracut: the message, then a blocking read on the console until Enter is pressed
        with open("/dev/console", "r+b", buffering=0) as console:
            console.write(f"\n\n{text}\nPress [Enter] to continue.\n".encode())
            console.readline()

    def mount(self, source: str, target: str, fstype: str, options: tuple[str, ...]) -> None:
        from pylive.linux.mount import mount

        mount(source, target, fstype, options)

    def umount(self, target: str, lazy: bool) -> None:
        from pylive.linux.mount import umount

        umount(target, lazy)

    def attach_loop(self, file: str, readonly: bool) -> str:
        from pylive.linux.loop import attach_loop

        return attach_loop(file, readonly)

    def detach_loop(self, dev: str) -> None:
        from pylive.linux.loop import detach_loop

        detach_loop(dev)

    def create_sparse_file(self, path: str, size_bytes: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size_bytes)  # apparent size only: no memory is used until written
        finally:
            os.close(fd)

    def device_sectors(self, dev: str) -> int:
        return probe.device_sectors(dev)

    def dev_numbers(self, dev: str) -> str:
        rdev = os.stat(dev).st_rdev
        return f"{os.major(rdev)}:{os.minor(rdev)}"

    def dm_create(self, name: str, table: tuple[TargetLine, ...], readonly: bool) -> str:
        from pylive.linux import dm

        return dm.create_device(name, table, readonly)

    def dm_remove(self, name: str) -> None:
        from pylive.linux import dm

        dm.remove_device(name)

    def dm_message(self, name: str, message: str) -> None:
        from pylive.linux import dm

        dm.message(name, message)

    def dm_status(self, name: str) -> list[TargetLine]:
        from pylive.linux import dm

        return dm.table(name, status=True)

    def note_copy(self, src: str, dest: str) -> None:
        raise AssertionError("only dry runs note copies")  # the real copy is a step of its own

    # --- iso-scan and root=live:<file> ---
    def attach_loop_partscan(self, file: str) -> str:
        from pylive.linux.loop import attach_loop

        return attach_loop(file, True, partscan=True)

    def trigger_uevent(self, dev: str) -> None:
        from pylive.linux.udev import trigger_change

        for node in (dev, *self.partitions(dev)):
            trigger_change(os.path.basename(os.path.realpath(node)), os.fspath(self.root / "sys"))

    def partitions(self, dev: str) -> list[str]:
        return probe.partitions(self.root, dev)

    def fs_identity(self, dev: str) -> probe.FsIdentity:
        return probe.read_identity(dev)

    def ntfs_unclean(self, dev: str) -> str | None:
        return probe.read_ntfs_unclean(dev)

    def wait_block_event(self, timeout_s: float) -> float:
        from pylive.linux.udev import BlockEvents

        if self._block_events is None:
            self._block_events = BlockEvents()
        return self._block_events.wait(timeout_s)

    def find_file(self, step: FindFile, within: list[str] | None) -> str:
        from pylive.isoscan import find_file

        return find_file(self, step, within)

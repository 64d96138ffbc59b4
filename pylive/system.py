"""The System interface the executor drives, and RealSystem, which wires it to linux/*."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pylive import probe
from pylive.dmtable import TargetLine
from pylive.errors import NoNetworkSupport
from pylive.log import log
from pylive.mountinfo import mount_of
from pylive.plan import FetchImage, FindFile
from pylive.progress import Display, Meter, Watch
from pylive.ramcopy import BlockSums, Room

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import Protocol

    from pylive import isomd5  # imported by check_media: only rd.live.check reads the MD5 (start-up, make bench)
    from pylive.linux.udev import BlockEvents
else:
    Protocol = object  # System is a typing.Protocol for the type checker only

HOLD_S = 12 * 3600  # dracut-ng shows a failed media check for 12 hours before it gives up


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
    def hold(self, text: str) -> None: ...
    def parent_disk(self, dev: str) -> str | None: ...
    def check_media(self, dev: str) -> isomd5.Verdict: ...
    def fs_space(self, path: str) -> Room | None: ...
    def fs_health(self, dev: str) -> probe.FsHealth: ...
    def resize_tmpfs(self, mountpoint: str, size_mib: int) -> None: ...
    def copy_file(self, src: str, dest: str) -> BlockSums: ...
    def file_sums(self, path: str, block: int) -> BlockSums: ...
    def has_network_code(self) -> bool: ...
    def wait_network(self, server: str, timeout_s: float) -> None: ...
    def fetch_image(self, step: FetchImage) -> None: ...
    def mount_nfs(self, export: str, target: str, version: str, port: int = 0) -> None: ...
    def apply_updates(self, image: str, newroot: str) -> int: ...


class RealSystem:
    """The running kernel. Imports the kernel layer lazily so `pylive explain` needs none of it.

    `console`: where progress, Esc and held messages go (None: progress in the log, no keys)."""

    def __init__(self, root: Path = Path("/"), console: str | None = "/dev/console") -> None:
        self.root = root
        self._block_events: BlockEvents | None = None  # started by iso-scan's first wait for more devices
        self.console = console
        self._splash_hidden = False

    def _hide_splash(self) -> None:
        """Plymouth's splash covers the console and takes its keys: hide it, once, before pylive shows
        progress or asks for a key there (dracut hides it before its media check too)."""
        if self._splash_hidden:
            return
        self._splash_hidden = True
        import shutil

        plymouth = shutil.which("plymouth")
        if plymouth is None:  # no plymouth in this initramfs
            return
        try:
            running = subprocess.run([plymouth, "--ping"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, timeout=5, check=False).returncode == 0
            if running:
                subprocess.run([plymouth, "--hide-splash"], stdin=subprocess.DEVNULL, timeout=5, check=True)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("could not hide the plymouth splash (%s): what pylive shows on the console may be "
                        "hidden; press Esc to see it", e)

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
        """Bytes in a file, or in a block device (a squashfs partition copied to RAM), whose st_size is 0."""
        from pylive.linux.copy import source_size

        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return source_size(fd)
        finally:
            os.close(fd)

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
        self._hide_splash()
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
    # --- reading a whole medium: the media check and the RAM copy ---

    @contextlib.contextmanager
    def _watch(self, what: str, total: int, esc: bool = False) -> Iterator[Watch]:
        """Progress on the console (rewritten in place, every second), or in the log every 5 s
        when there is no console; with esc, Esc on the console stops the read."""
        from pylive.linux.console import Console

        if self.console:
            self._hide_splash()  # before the console's mode is set: plymouth may reset it when it lets go
        console = Console.open(self.console) if self.console else None
        with contextlib.ExitStack() as stack:
            if console is not None:
                stack.callback(console.close)
                display = Display(console.write, overwrite=True, every_s=1.0)
            else:
                display = Display(lambda line: log.info("%s", line.rstrip()), overwrite=False, every_s=5.0)
            keys = console.read_keys if esc and console is not None else None
            label = f"{what} (Esc skips)" if keys else what
            with Watch(Meter(label, total, time.monotonic()), display, keys) as watch:
                yield watch

    def check_media(self, dev: str) -> isomd5.Verdict:
        from pylive import isomd5
        from pylive.linux.copy import read_ahead

        with open(dev, "rb", buffering=0) as f:
            found = isomd5.read_implanted(f)
            if not isinstance(found, isomd5.Implanted):
                return isomd5.Verdict(found)
            f.seek(0)
            with (self._watch(f"checking {dev}", found.checked_size, esc=True) as watch,
                  contextlib.closing(read_ahead(f.fileno(), limit=found.checked_size)) as blocks):
                verdict = isomd5.check(blocks, found, watch.update)
                watch.update(verdict.done)  # the last line shows where it stopped
                return verdict

    def hold(self, text: str) -> None:
        """Keep a message that stops the boot on the screen until Enter (no console: go on at once)."""
        from pylive.linux.console import Console

        if self.console:
            self._hide_splash()
        console = Console.open(self.console) if self.console else None
        if console is None:
            return
        with console:
            console.write(f"\n\npylive: {text}\n\nThe boot stops here. Press Enter to continue.\n")
            console.wait_for_enter(HOLD_S)

    def parent_disk(self, dev: str) -> str | None:
        return probe.parent_disk(self.root, dev)

    def fs_space(self, path: str) -> Room | None:
        path = os.path.realpath(path)
        while not os.path.exists(path):  # /run/initramfs/fsimg before it is made: its parent's filesystem
            path = os.path.dirname(path)
        entry = mount_of(self.root, path)
        try:
            st = os.statvfs(path)
        except OSError:
            return None
        if entry is None:
            return None
        return Room(entry.mountpoint, entry.fstype, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)

    def fs_health(self, dev: str) -> probe.FsHealth:
        return probe.read_health(self.root, dev)

    def resize_tmpfs(self, mountpoint: str, size_mib: int) -> None:
        from pylive.linux.mount import mount

        # A remount sets the mount's flags anew: keep nosuid/nodev/noexec/ro as they are (mount(8)
        # does the same through libmount); the access-time flags are kept by the kernel.
        entry = mount_of(self.root, mountpoint)
        keep = tuple(o for o in (entry.options if entry else ()) if o in ("ro", "nosuid", "nodev", "noexec"))
        mount("tmpfs", mountpoint, "tmpfs", ("remount", *keep, f"size={size_mib}m"))

    def copy_file(self, src: str, dest: str) -> BlockSums:
        from pylive.linux.copy import copy_with_sums

        with self._watch(f"copying {os.path.basename(src)} to RAM", os.stat(src).st_size) as watch:
            return copy_with_sums(src, dest, progress=watch.update)

    def file_sums(self, path: str, block: int) -> BlockSums:
        from pylive.linux.copy import sums_of

        with self._watch("verifying the RAM copy", os.stat(path).st_size) as watch:
            return sums_of(path, block=block, progress=watch.update)

    # --- the network (root=live:<url>, live.updates=) ---
    # pylive.netsystem and what it imports (pylive.net's I/O, pyroute2, ssl) are only in the binary of an
    # initramfs with module pylive-net: the base binary is built without them (the Makefile's NET_ONLY).
    # boot.run asks has_network_code() before the first step.

    def has_network_code(self) -> bool:
        try:
            with network_code():
                import pylive.netsystem  # noqa: F401
        except NoNetworkSupport:
            return False
        return True

    def wait_network(self, server: str, timeout_s: float) -> None:
        with network_code():
            from pylive.netsystem import wait_network
        wait_network(server, timeout_s)

    def fetch_image(self, step: FetchImage) -> None:
        with network_code():
            from pylive.netsystem import fetch_image
        fetch_image(step, self._watch)

    def mount_nfs(self, export: str, target: str, version: str, port: int = 0) -> None:
        with network_code():
            from pylive.netsystem import mount_nfs
        mount_nfs(export, target, version, port)

    def apply_updates(self, image: str, newroot: str) -> int:
        with network_code():
            from pylive.netsystem import apply_updates
        return apply_updates(image, newroot, self.fstype(image))


@contextlib.contextmanager
def network_code(what: str = "this network step", module: str = "pylive.netsystem") -> Iterator[None]:
    """Around an import of the network code (`module`): NoNetworkSupport naming `what` in the base
    binary, built without it (the Makefile's NET_ONLY)."""
    try:
        yield
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise NoNetworkSupport(what) from None

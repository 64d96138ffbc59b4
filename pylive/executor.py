"""Runs plans against a System. Every step registers its undo; a failure unwinds them all."""

from __future__ import annotations

import contextlib
import errno
import time

from pylive import planner, probe
from pylive.devspec import label_suggestion
from pylive.dmtable import TargetLine, parse_snapshot_status
from pylive.errors import (
    READ_ERRNOS,
    CopyFailed,
    DeviceTimeout,
    MediaCheckFailed,
    StepFailed,
    one_line,
    read_error_hint,
)
from pylive.isoscan import pick_medium
from pylive.log import log
from pylive.plan import (
    ApplyUpdates,
    AttachLoop,
    CheckMedia,
    CheckSnapshot,
    CopyToRam,
    CreateDm,
    CreateSparseFile,
    DetachLoop,
    DmMessage,
    DmTarget,
    EmptyDir,
    FetchImage,
    FindFile,
    LoadModules,
    MakeDir,
    MarkDone,
    Mount,
    MountNfs,
    Notice,
    Ref,
    ReleaseMedium,
    ResizeTmpfs,
    SelectMedium,
    SizeOf,
    Source,
    Step,
    Symlink,
    TriggerUevent,
    Unmount,
    WaitForDevice,
    WaitNetwork,
    WipeHeader,
    WriteFile,
)

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import Any

    from pylive.system import System  # annotations only: explain never loads the real system

MIB = 1 << 20


class Executor:
    """`with Executor(system) as ex: ex.run(steps) …; ex.commit()`: without commit, the exit unwinds."""

    def __init__(self, system: System, dry_run: bool = False) -> None:
        self.system = system
        self.dry_run = dry_run
        self.handles: dict[str, str] = {}
        self.done: list[Step] = []
        self._stack = contextlib.ExitStack()
        self._unmounted: set[str] = set()  # planned unmounts: their mounts need no undo
        self._detached: set[str] = set()  # planned loop detaches: likewise

    def __enter__(self) -> Executor:
        self._stack.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            log.info("rolling back %d steps", len(self.done))
        self._stack.__exit__(*exc)

    def commit(self) -> None:
        """Give the live stack to the booted system: it must outlive us."""
        self._stack.pop_all()

    def resolve(self, source: Source) -> str:
        return self.handles[source.name] if isinstance(source, Ref) else source

    def _dm_line(self, t: DmTarget) -> TargetLine:
        length = self.system.device_sectors(self.resolve(t.length.ref)) if isinstance(t.length, SizeOf) else t.length
        params = " ".join(
            self.system.dev_numbers(self.resolve(a)) if isinstance(a, Ref) else str(a) for a in t.args
        )
        return TargetLine(t.start, length, t.target, params)

    def run(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            log.debug("+ %s", step.describe())
            try:
                self._run(step)
            except OSError as e:
                reads = isinstance(step, Mount | AttachLoop)  # read the medium (the media steps say so themselves)
                raise StepFailed(step.describe(), e, self.read_hint(e) if reads else "") from e
            self.done.append(step)

    @property
    def livedev(self) -> str | None:
        """The live medium's device, once the wait found it."""
        return self.handles.get(planner.LIVEDEV_REF.name) or None

    def read_hint(self, e: OSError) -> str:
        """What to do about an error: for a read error (EIO, a medium gone), check or put back the medium."""
        if e.errno not in READ_ERRNOS:
            return ""
        dev = self.livedev
        gone = e.errno == errno.ENOMEDIUM or (dev is not None and self.gone(dev))
        return read_error_hint(dev, gone=gone)

    def gone(self, dev: str, wait_s: float = 1.0) -> bool:
        """Whether the device node went away: a disk pulled out fails its reads before the kernel removes its
        node, so a read error waits up to `wait_s` for that."""
        deadline = time.monotonic() + wait_s
        while self.system.exists(dev):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _undo(self, what: str, fn: Any, *args: Any) -> None:
        def undo() -> None:
            try:
                fn(*args)
                log.info("rolled back: %s", what)
            except OSError as e:
                log.warning("rollback of %s failed: %s", what, e)

        self._stack.callback(undo)

    def _run(self, step: Step) -> None:  # noqa: PLR0912, PLR0915 - one branch per step type is the point
        s = self.system
        if isinstance(step, CheckMedia | ResizeTmpfs | CopyToRam | ReleaseMedium):
            self._run_media_step(step)
        elif isinstance(step, WaitForDevice):
            t0 = time.monotonic()
            if not self.dry_run and not s.exists(step.udev_path):
                log.info("waiting up to %d s for %s (%s)", step.timeout_s, step.spec, step.udev_path)
            node = s.wait_for_device(step.udev_path, step.timeout_s)
            if node is None and step.optional:
                node = ""
            elif node is None:
                devices = s.block_devices()
                raise DeviceTimeout(step.spec, step.udev_path, step.timeout_s, [str(d) for d in devices],
                                    label_suggestion(step.spec, step.udev_path, devices))
            else:
                waited = time.monotonic() - t0
                if waited >= 1.0:
                    log.info("%s appeared after %.1f s: %s", step.spec, waited, node)
                node = self._one_of_same(step, node)
            self.handles[step.out.name] = node
        elif isinstance(step, LoadModules):
            s.load_modules(step.names)
        elif isinstance(step, MakeDir):
            s.make_dir(step.path)
        elif isinstance(step, Symlink):
            s.symlink(self.resolve(step.target), step.link)
            self._undo(f"link {step.link}", s.unlink, step.link)
        elif isinstance(step, Mount):
            fstype = step.fstype
            source = self.resolve(step.source)
            if fstype == "auto":
                fstype = s.fstype(source) or "auto"
            s.mount(source, step.target, fstype, step.options)
            if "remount" not in step.options:  # a remount's mount has its undo already
                self._unmounted.discard(step.target)
                self._undo(f"mount {step.target}", self._umount_unless_done, step.target)
        elif isinstance(step, Unmount):
            s.umount(step.target, step.lazy)
            self._unmounted.add(step.target)
        elif isinstance(step, AttachLoop):
            node = (s.attach_loop_partscan(self.resolve(step.file)) if step.partscan
                    else s.attach_loop(self.resolve(step.file), step.readonly))
            self.handles[step.out.name] = node
            self._detached.discard(node)
            self._undo(f"loop {node}", self._detach_unless_done, node)
        elif isinstance(step, DetachLoop):
            node = self.resolve(step.loop)
            s.detach_loop(node)
            self._detached.add(node)
        elif isinstance(step, CreateSparseFile):
            s.create_sparse_file(step.path, step.size_mib * 1024 * 1024)
            self._undo(f"file {step.path}", s.unlink, step.path)
        elif isinstance(step, CreateDm):
            lines = tuple(self._dm_line(t) for t in step.table)
            log.debug("  %s: %s", step.name, "; ".join(str(x) for x in lines))
            self.handles[step.out.name] = s.dm_create(step.name, lines, step.readonly)
            self._undo(f"dm {step.name}", s.dm_remove, step.name)
        elif isinstance(step, DmMessage | CheckSnapshot):
            self._run_dm_step(step)
        elif isinstance(step, WipeHeader | EmptyDir | WriteFile | Notice):
            self._run_file_step(step)
        elif isinstance(step, FindFile | TriggerUevent | SelectMedium):
            self._run_search_step(step)
        elif isinstance(step, WaitNetwork | FetchImage | MountNfs | ApplyUpdates):
            self._run_net_step(step)
        elif isinstance(step, MarkDone):
            s.symlink("null", "/dev/root")
            s.make_dir("/run/initramfs")
            s.touch("/run/initramfs/.need_shutdown")
        else:  # pragma: no cover - the Step union is closed
            raise TypeError(step)

    def _run_net_step(self, step: WaitNetwork | FetchImage | MountNfs | ApplyUpdates) -> None:
        """The network: a dry run only lists these steps (pylive explain answers from the plan)."""
        s = self.system
        if self.dry_run:
            return
        if isinstance(step, WaitNetwork):
            s.wait_network(step.server, step.timeout_s)
        elif isinstance(step, FetchImage):
            s.fetch_image(step)
            self._undo(f"file {step.dest}", s.unlink, step.dest)
        elif isinstance(step, MountNfs):
            s.mount_nfs(step.export, step.target, step.version, step.port)
            self._unmounted.discard(step.target)
            self._undo(f"mount {step.target}", self._umount_unless_done, step.target)
        else:
            count = s.apply_updates(step.image, step.newroot)
            log.notice("live.updates: %d files of %s copied into the root", count, step.image)

    def _detach_unless_done(self, node: str) -> None:
        if node not in self._detached:
            self.system.detach_loop(node)

    def _umount_unless_done(self, target: str) -> None:
        if target not in self._unmounted:
            self.system.umount(target, False)

    def _run_dm_step(self, step: DmMessage | CheckSnapshot) -> None:
        if isinstance(step, DmMessage):
            self.system.dm_message(step.name, step.message)
        elif not self.dry_run:  # a dry run knows no usage
            self._check_snapshot(step)

    def _check_snapshot(self, step: CheckSnapshot) -> None:
        lines = self.system.dm_status(step.name)
        usage = parse_snapshot_status(lines[0].params if lines else "")
        warning = planner.check_snapshot_usage(usage, step.overlay, step.writable)
        if warning:
            log.warning("%s", warning)
        elif not usage.state:
            log.info("persistent overlay %s: %d of %d MiB used", step.overlay, usage.allocated // 2048,
                     usage.total // 2048)

    def _one_of_same(self, step: WaitForDevice, node: str) -> str:
        """A label or UUID that more than one disk carries: the device with the lowest number, whichever one
        udev's link points at (the last one udev probed), and a warning naming them all."""
        same = probe.same_filesystem(step.udev_path, self.system.block_devices())
        if not same:
            return node
        what = "labelled" if step.udev_path.startswith("/dev/disk/by-label/") else "have the UUID"
        value = step.spec.partition("=")[2] or step.spec
        listed = ", ".join(f"{d.node} ({d.devnum})" for d in same)
        log.warning("%d devices are %s '%s': %s; using %s, the lowest device number: take the others out, or "
                    "name one by another label, UUID or its /dev path on the command line", len(same), what,
                    one_line(value), listed, same[0].node)
        return same[0].node

    def _run_media_step(self, step: CheckMedia | ResizeTmpfs | CopyToRam | ReleaseMedium) -> None:
        """Steps that read a whole medium, or free it. A dry run only lists them (and reads a copy as
        its source)."""
        s = self.system
        if self.dry_run:
            if isinstance(step, CopyToRam):
                s.note_copy(step.src, step.dest)
            return
        if isinstance(step, CheckMedia):
            self._check_media(self.resolve(step.device))
        elif isinstance(step, ResizeTmpfs):
            log.info("growing %s from %d to %d MiB, so that the RAM copy fits", step.mountpoint, step.was_mib,
                     step.size_mib)
            s.resize_tmpfs(step.mountpoint, step.size_mib)
            self._undo(f"size of {step.mountpoint}", s.resize_tmpfs, step.mountpoint, step.was_mib)
        elif isinstance(step, CopyToRam):
            self._copy_to_ram(step)
        else:
            self._release(step)

    def _release(self, step: ReleaseMedium) -> None:
        """rd.live.ram: let go of the medium (and of the ISO file of iso-scan, and the filesystem that holds
        it). What cannot be let go of is a warning: the boot goes on. Notices say what can be removed:
        what rd.live.ram is for, on the console even under `quiet`."""
        s = self.system
        if step.mounted:
            try:
                s.umount(step.target, False)
            except OSError as e:
                log.warning("the live medium stays mounted at %s (%s): it cannot be removed while the system runs",
                            step.target, e.strerror)
                return
            self._unmounted.add(step.target)  # a later rollback leaves it unmounted
        if step.iso_host is not None and step.iso_loop is not None:
            loop = self.resolve(step.iso_loop)
            try:
                s.detach_loop(loop)
                self._detached.add(loop)
                s.umount(step.iso_host, False)
            except OSError as e:
                log.warning("the filesystem holding the ISO file stays mounted at %s (%s): its disk cannot be removed "
                            "while the system runs", step.iso_host, e.strerror)
            else:
                self._unmounted.add(step.iso_host)
                log.notice("the ISO file is no longer used and the filesystem holding it was unmounted from %s: "
                           "its disk can be removed", step.iso_host)
        if not step.mounted:
            log.notice("the live medium is no longer used: it can be removed")
        else:
            log.notice("the live medium is no longer used and was unmounted from %s: it can be removed", step.target)

    def _check_media(self, dev: str) -> None:
        """rd.live.check: a pass is one notice, no implanted MD5 or Esc one warning (both reach the
        console under `quiet`); a failure stops the boot, and its line stays on the console until Enter."""
        from pylive import isomd5  # hashlib: not on the start-up path of explain and the cmdline hook

        t0 = time.monotonic()
        verdict = self.system.check_media(dev)
        status = verdict.status
        if status is isomd5.Status.PASSED:
            # the verdict the user asked for: a notice, on the console even under `quiet` (log.py)
            log.notice("rd.live.check: %s passed its media check (the implanted MD5 matches): %d MiB in %.1f s",
                       dev, verdict.total // MIB, time.monotonic() - t0)
        elif status is isomd5.Status.NO_CHECKSUM:
            log.warning("rd.live.check: the medium %s carries no implanted MD5 (implantisomd5 was not run on its "
                        "image): it was not checked", dev)
        elif status is isomd5.Status.NOT_ISO:
            log.warning("rd.live.check: the medium %s has no ISO 9660 volume descriptor, so no implanted MD5: "
                        "it was not checked", dev)
        elif status is isomd5.Status.ABORTED:
            log.warning("rd.live.check: the check of the medium %s was skipped with Esc at %d%%",
                        dev, verdict.done * 100 // max(verdict.total, 1))
        else:
            error = MediaCheckFailed(dev, verdict.reason)
            self.system.hold(str(error))  # logged once, by whoever stops the boot
            raise error

    def _copy_to_ram(self, step: CopyToRam) -> None:
        """Copy, then read the copy back: it is used only when its size and block sums match what was
        read from the medium."""
        s = self.system
        expected = s.file_size(step.src)
        t0 = time.monotonic()
        try:
            sums = s.copy_file(step.src, step.dest)
        except OSError as e:
            mib = -(-expected // MIB)
            if e.errno == errno.ENOSPC:
                raise CopyFailed(step.option, f"no room in RAM for the copy of {step.src} ({mib} MiB) at {step.dest}",
                                 f"give the machine more memory, or boot without {step.option}") from e
            if e.filename == step.src:
                on = f" on {self.livedev}" if self.livedev else ""
                hint = self.read_hint(e) or "the medium may be damaged: check it with rd.live.check"
                raise CopyFailed(step.option, f"reading {step.src}{on} for the RAM copy failed: {e.strerror}",
                                 f"{hint}; or boot without {step.option}") from e
            raise
        seconds = time.monotonic() - t0
        self._undo(f"file {step.dest}", s.unlink, step.dest)
        from pylive import ramcopy

        problem = ramcopy.difference(expected, sums, s.file_sums(step.dest, sums.block))
        if problem is not None:
            raise CopyFailed(step.option, f"the RAM copy {step.dest} of {step.src} is not what was read ({problem})",
                             f"boot again, or without {step.option}; if it happens again, check the medium "
                             "with rd.live.check")
        log.notice("copied %s to RAM as %s and verified it: %d MiB in %.1f s (%.0f MiB/s)", step.src, step.dest,
                   sums.size // MIB, seconds, sums.size / MIB / max(seconds, 1e-6))

    def _run_file_step(self, step: WipeHeader | EmptyDir | WriteFile | Notice) -> None:
        """Steps that change files on a persistent medium, or talk to the person at the console."""
        s = self.system
        if isinstance(step, WipeHeader):
            log.warning("reset: the persistent overlay %s is wiped (rd.live.overlay.reset)", step.path)
            s.wipe_header(step.path, step.size)
        elif isinstance(step, EmptyDir):
            log.warning("reset: the persistent overlay %s is emptied (rd.live.overlay.reset)", step.path)
            s.empty_dir(step.path)
        elif isinstance(step, WriteFile):
            s.write_text(step.path, step.text)
        else:
            log.warning("%s", step.text)
            if step.wait_for_enter:
                s.ask(step.text)

    def _run_search_step(self, step: FindFile | TriggerUevent | SelectMedium) -> None:
        """iso-scan and root=live:<file>: find a file on the disks, and the live medium in a loop device."""
        s = self.system
        if isinstance(step, FindFile):
            within = s.partitions(self.resolve(step.within)) if step.within is not None else None
            node = s.find_file(step, within)
            self.handles[step.out.name] = node
            self._undo(f"mount {step.mountpoint}", self._umount_unless_done, step.mountpoint)
        elif isinstance(step, TriggerUevent):
            try:
                s.trigger_uevent(self.resolve(step.device))
            except OSError as e:  # udev's links are for the booted system; the boot does not wait on them
                log.warning("udev was not told about %s: %s", self.resolve(step.device), e)
        else:
            node = self.resolve(step.device)
            candidates = [(c, s.fs_identity(c)) for c in (node, *s.partitions(node))]
            self.handles[step.out.name] = pick_medium(step.what, step.spec, step.labels, step.uuid, candidates)

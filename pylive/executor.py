"""Runs plans against a System. Every step registers its undo; a failure unwinds them all."""

from __future__ import annotations

import contextlib

from pylive import planner
from pylive.dmtable import TargetLine, parse_snapshot_status
from pylive.errors import DeviceTimeout, NotSupportedYet, StepFailed
from pylive.isoscan import pick_medium
from pylive.log import log
from pylive.plan import (
    AttachLoop,
    CheckMedia,
    CheckSnapshot,
    CopyToRam,
    CreateDm,
    CreateSparseFile,
    DmMessage,
    DmTarget,
    EmptyDir,
    FindFile,
    LoadModules,
    MakeDir,
    MarkDone,
    Mount,
    Notice,
    Ref,
    SelectMedium,
    SizeOf,
    Source,
    Step,
    Symlink,
    TriggerUevent,
    Unmount,
    WaitForDevice,
    WipeHeader,
    WriteFile,
)

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import Any

    from pylive.system import System  # annotations only: explain never loads the real system

# Steps planned for modes whose execution comes in a later release: running one stops the boot
# with one line (never a silent fallback). A dry run (pylive explain) only lists them.
NOT_YET = (CheckMedia, CopyToRam)



class Executor:
    """`with Executor(system) as ex: ex.run(steps) …; ex.commit()`: without commit, the exit unwinds."""

    def __init__(self, system: System, dry_run: bool = False) -> None:
        self.system = system
        self.dry_run = dry_run
        self.handles: dict[str, str] = {}
        self.done: list[Step] = []
        self._stack = contextlib.ExitStack()
        self._unmounted: set[str] = set()  # planned unmounts: their mounts need no undo

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
                raise StepFailed(step.describe(), e) from e
            self.done.append(step)

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
        if isinstance(step, NOT_YET):
            if not self.dry_run:
                raise NotSupportedYet(f"the step '{step.describe()}'")
            if isinstance(step, CopyToRam):
                s.note_copy(step.src, step.dest)  # a dry run reads the copy as its source
            return
        if isinstance(step, WaitForDevice):
            node = s.wait_for_device(step.udev_path, step.timeout_s)
            if node is None and step.optional:
                node = ""
            elif node is None:
                raise DeviceTimeout(step.spec, step.udev_path, step.timeout_s, [str(d) for d in s.block_devices()])
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
            self._unmounted.discard(step.target)
            self._undo(f"mount {step.target}", self._umount_unless_done, step.target)
        elif isinstance(step, Unmount):
            s.umount(step.target, step.lazy)
            self._unmounted.add(step.target)
        elif isinstance(step, AttachLoop):
            node = (s.attach_loop_partscan(self.resolve(step.file)) if step.partscan
                    else s.attach_loop(self.resolve(step.file), step.readonly))
            self.handles[step.out.name] = node
            self._undo(f"loop {node}", s.detach_loop, node)
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
        elif isinstance(step, MarkDone):
            s.symlink("null", "/dev/root")
            s.make_dir("/run/initramfs")
            s.touch("/run/initramfs/.need_shutdown")
        else:  # pragma: no cover - the Step union is closed
            raise TypeError(step)

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
            self._undo(f"mount {step.mountpoint}", s.umount, step.mountpoint, False)
        elif isinstance(step, TriggerUevent):
            try:
                s.trigger_uevent(self.resolve(step.device))
            except OSError as e:  # udev's links are for the booted system; the boot does not wait on them
                log.warning("udev was not told about %s: %s", self.resolve(step.device), e)
        else:
            node = self.resolve(step.device)
            candidates = [(c, s.fs_identity(c)) for c in (node, *s.partitions(node))]
            self.handles[step.out.name] = pick_medium(step.what, step.spec, step.labels, step.uuid, candidates)

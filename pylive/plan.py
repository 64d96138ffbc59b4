"""The plan is data: steps with describe(); only executor.py runs them (pure).

Steps name earlier results by symbolic handle (Ref("base")), never by /dev/loop3: the executor
keeps the mapping from handle to device node, so a plan reads the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Ref:
    """A device that an earlier step produced."""

    name: str

    def __str__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True)
class SizeOf:
    """The size in 512-byte sectors of a device, known once it exists."""

    ref: Ref

    def __str__(self) -> str:
        return f"<sectors of {self.ref.name}>"


Source = Union[Ref, str]


@dataclass(frozen=True)
class DmTarget:
    start: int
    length: int | SizeOf
    target: str
    args: tuple[Source | int, ...]

    def describe(self) -> str:
        return " ".join(str(x) for x in (self.start, self.length, self.target, *self.args))


@dataclass(frozen=True)
class WaitForDevice:
    spec: str
    udev_path: str
    timeout_s: int
    out: Ref

    def describe(self) -> str:
        return f"wait up to {self.timeout_s}s for {self.spec} ({self.udev_path}) → {self.out}"


@dataclass(frozen=True)
class LoadModules:
    names: tuple[str, ...]

    def describe(self) -> str:
        return f"load kernel modules {' '.join(self.names)}"


@dataclass(frozen=True)
class MakeDir:
    path: str

    def describe(self) -> str:
        return f"mkdir -p {self.path}"


@dataclass(frozen=True)
class Symlink:
    target: Source
    link: str

    def describe(self) -> str:
        return f"ln -s {self.target} {self.link}"


@dataclass(frozen=True)
class Mount:
    source: Source
    target: str
    fstype: str
    options: tuple[str, ...] = ("ro",)

    def describe(self) -> str:
        return f"mount -t {self.fstype} -o {','.join(self.options) or 'defaults'} {self.source} {self.target}"


@dataclass(frozen=True)
class Unmount:
    target: str
    lazy: bool = False

    def describe(self) -> str:
        return f"umount {'-l ' if self.lazy else ''}{self.target}"


@dataclass(frozen=True)
class AttachLoop:
    file: Source
    readonly: bool
    out: Ref

    def describe(self) -> str:
        return f"losetup{' -r' if self.readonly else ''} {self.file} → {self.out}"


@dataclass(frozen=True)
class CreateSparseFile:
    path: str
    size_mib: int

    def describe(self) -> str:
        return f"create sparse file {self.path} of {self.size_mib} MiB"


@dataclass(frozen=True)
class CreateDm:
    name: str
    table: tuple[DmTarget, ...]
    readonly: bool
    out: Ref

    def describe(self) -> str:
        lines = "; ".join(t.describe() for t in self.table)
        return f"dmsetup create{' --readonly' if self.readonly else ''} {self.name} '{lines}' → {self.out}"


@dataclass(frozen=True)
class MarkDone:
    """Leave the completion marks for the initramfs: /dev/root and the shutdown request."""

    def describe(self) -> str:
        return "ln -s null /dev/root; touch /run/initramfs/.need_shutdown"


Step = Union[
    WaitForDevice, LoadModules, MakeDir, Symlink, Mount, Unmount, AttachLoop, CreateSparseFile, CreateDm, MarkDone
]

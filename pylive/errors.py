"""Typed errors. Each one renders as one line that names the thing at fault and what to do."""

from __future__ import annotations

import errno
from collections.abc import Sequence

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from pathlib import Path

# Exit codes shared with the dracut glue (dracut-module/90pylive).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CMDLINE = 2
EXIT_NOT_LIVE = 3
EXIT_NO_CHECKSUM = 4  # pylive check-media: the image carries no implanted MD5


SHOWN_CHARS = 80  # how much of a value from the command line a message shows
# The longest error line: a /dev/kmsg record keeps 1000 bytes (loghandlers.KmsgHandler), and
# "<3>pylive: " and a prefix such as "error: " come before it.
LINE_BYTES = 960


def one_line(text: str) -> str:
    """`text` with what is not printable escaped as repr() escapes it (line breaks, control and
    format characters); a byte that was not UTF-8 (a surrogate, cmdline.read_cmdline) as `\\xNN`.
    A value from the command line or a disk label then cannot break a message into two log lines."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xDC00:02x}"
    return repr(c)[1:-1]


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """A value as a one-line message shows it: escaped (one_line) and cut to `limit` characters with '…'."""
    text = one_line(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fitted(text: str, limit: int) -> str:
    """A printable line (one_line) cut to `limit` bytes of UTF-8, '…' included."""
    raw = text.encode()
    return text if len(raw) <= limit else raw[: limit - 3].decode("utf-8", "ignore") + "…"


class LiveError(Exception):
    """A failure with a message and a hint; `str()` is the one line a user sees."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        """One line of at most LINE_BYTES, whatever it names (a value of kilobytes from /etc/cmdline.d, a
        label): the hint, which says what to do, keeps up to half of it."""
        message, hint = one_line(self.message), fitted(one_line(self.hint), LINE_BYTES // 2)
        if not hint:
            return fitted(message, LINE_BYTES)
        return f"{fitted(message, LINE_BYTES - 2 - len(hint.encode()))}: {hint}"


class CmdlineError(LiveError):
    """A kernel command line option has a value pylive cannot use. The value is shown escaped and cut
    (shown()): the message stays one bounded line whatever the command line holds."""

    exit_code = EXIT_BAD_CMDLINE

    def __init__(self, option: str, value: str | None, problem: str, example: str = "") -> None:
        what = option if value is None else f"{option}={shown(value)}"
        hint = f"use e.g. {example}" if example else ""
        super().__init__(f"{what}: {problem}", hint)
        self.option = option
        self.value = value


class DeviceTimeout(LiveError):
    """The live medium never appeared."""

    def __init__(self, spec: str, udev_path: str, waited_s: float, seen: Sequence[str], suggestion: str = "") -> None:
        seen_text = ", ".join(seen) if seen else "none"
        super().__init__(
            f"live medium {spec} not found after {waited_s:.0f}s (waited for {udev_path}); "
            f"block devices seen: {seen_text}",
            suggestion or "check the label or UUID on root=, or raise rd.retry",
        )
        self.spec = spec
        self.udev_path = udev_path
        self.seen = tuple(seen)


class ImageNotFound(LiveError):
    """The medium or the squashfs does not hold a root filesystem image."""

    def __init__(self, where: str, searched: Sequence[str | Path], hint: str) -> None:
        names = ", ".join(str(p) for p in searched)
        super().__init__(f"no live root image in {where} (searched: {names})", hint)
        self.searched = tuple(str(p) for p in searched)


class NotSupportedYet(LiveError):
    """The plan needs a mode that this version of pylive cannot execute yet."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not supported by this pylive yet",
                         "boot without it, or use dracut's dmsquash-live")


class NoNetworkSupport(LiveError):
    """A network root= or live.updates= given to the base binary, which is built without the network
    code (the Makefile's NET_ONLY): only an initramfs with the pylive-net dracut module has it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} needs pylive's network support, which this initramfs does not have",
                         "build the initramfs with the pylive-net dracut module "
                         "(dracut --add pylive-net; needs dracut-network)")


class StepFailed(LiveError):
    """A kernel operation failed while executing the plan."""

    def __init__(self, step: str, error: OSError, hint: str = "") -> None:
        super().__init__(f"{step} failed: {error.strerror or error}",
                         hint or "see the messages above; add rd.debug for details")
        self.step = step
        self.error = error


# What a medium that cannot be read (a damaged disc, a failing stick, one pulled out) makes reads fail with.
READ_ERRNOS = frozenset({errno.EIO, errno.ENXIO, errno.ENODEV, errno.ENOMEDIUM})


def read_error_hint(device: str | None, gone: bool = False) -> str:
    """What to do about a read error on the live medium `device` (None: unknown), or about its removal."""
    if gone and device:
        return f"{device} was removed while pylive read it: put the medium back and boot again"
    named = device or "the live medium"
    return (f"{named} may be damaged or unreadable: check it with rd.live.check, or with `pylive check-media "
            f"{device or 'DEVICE'}` on another machine, and write it again if it fails")


class MediumUnreadable(LiveError):
    """A read of the live medium failed outside a kernel operation of the plan (pylive's own reads)."""

    def __init__(self, what: str, device: str | None, error: OSError, gone: bool = False) -> None:
        where = f" on {device}" if device and not what.startswith(device) else ""
        super().__init__(f"reading {what}{where} failed: {error.strerror or error}", read_error_hint(device, gone))
        self.device = device
        self.error = error


class MediumTruncated(LiveError):
    """The medium, or the image on it, ends before the size its own header gives."""

    def __init__(self, what: str, have: int, want: int, header: str) -> None:
        super().__init__(f"{what} is truncated: it ends at {_mib(have)}, but its {header} is {_mib(want)} "
                         "(an incomplete download, copy or write)",
                         "write it again from a complete image; rd.live.check or `pylive check-media` verify a medium")
        self.have = have
        self.want = want


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class NotFoundOnDisks(LiveError):
    """A search of the disks' filesystems (iso-scan) or of a loop device's partitions came up empty."""

    def __init__(self, what: str, problem: str, hint: str, searched: Sequence[str] = ()) -> None:
        super().__init__(f"{what}: {problem}", hint)
        self.what = what
        self.searched = tuple(searched)


class MediaCheckFailed(LiveError):
    """The medium does not match the MD5 implanted in it (rd.live.check, pylive check-media)."""

    def __init__(self, device: str, reason: str,
                 hint: str = "write it again, or boot with rd.live.check=0 to skip the check") -> None:
        super().__init__(f"the medium {device} is damaged ({reason})", hint)
        self.device = device
        self.reason = reason


class CopyFailed(LiveError):
    """A RAM copy (rd.live.ram, rd.writable.fsimg) could not be made, or is not what was read."""

    def __init__(self, option: str, message: str, hint: str = "") -> None:
        super().__init__(f"{option}: {message}", hint or f"boot without {option}")
        self.option = option

"""The network library's errors: each one is one line naming the URL or the interface and what to do."""

from __future__ import annotations

from pylive.errors import LiveError, shown


class NetError(LiveError):
    """A network image could not be had. `retry` says whether trying the same URL again may help
    (a dropped connection, a refused connection, a 5xx) or not (a 404, a failed TLS verification)."""

    retry = False

    def __init__(self, message: str, hint: str = "", *, retry: bool | None = None) -> None:
        super().__init__(message, hint)
        if retry is not None:
            self.retry = retry


class BadUrl(NetError):
    """A URL that pylive cannot fetch (bad syntax, an unknown scheme, no file named)."""

    def __init__(self, url: str, problem: str, hint: str = "") -> None:
        super().__init__(f"{shown(url)}: {problem}", hint)
        self.url = url


class FetchFailed(NetError):
    """A download failed; `url` is the URL as given (shown cut to a bounded length)."""

    def __init__(self, url: str, problem: str, hint: str = "", *, retry: bool = False) -> None:
        super().__init__(f"{shown(url)}: {problem}", hint, retry=retry)
        self.url = url
        self.problem = problem


class TooLarge(NetError):
    """The image does not fit in the RAM left for it; found before the download starts."""

    def __init__(self, url: str, size: int, room: int) -> None:
        super().__init__(f"{shown(url)}: the image is {_mib(size)} MiB, only {_mib(room)} MiB of RAM can hold it",
                         "give the machine more memory, or lower rd.minmem")
        self.url = url
        self.size = size
        self.room = room


class ChecksumMismatch(NetError):
    """The image was downloaded whole but its digest is not the expected one."""

    def __init__(self, url: str, algorithm: str, expected: str, got: str) -> None:
        super().__init__(f"{shown(url)}: {algorithm} checksum mismatch (expected {expected[:16]}…, got {got[:16]}…)",
                         "the image or the checksum is wrong: fetch them again from the same release")
        self.url = url
        self.expected = expected
        self.got = got


class AllMirrorsFailed(NetError):
    """Several URLs were given and none gave the image; each one's failure is named."""

    def __init__(self, failures: list[NetError]) -> None:
        super().__init__("no URL gave the image: " + "; ".join(f.message for f in failures),
                         failures[-1].hint if failures else "")
        self.failures = tuple(failures)


class NotReady(NetError):
    """The path to the server never became usable: `missing` is what was missing at the timeout."""

    def __init__(self, interface: str | None, missing: str, waited_s: float, hint: str) -> None:
        where = f"{interface}: " if interface else ""
        super().__init__(f"network not ready after {waited_s:.0f}s: {where}{missing}", hint)
        self.interface = interface
        self.missing = missing


def _mib(n: int) -> int:
    return -(-n // (1 << 20))

"""Download a network image into a file: mirrors in order, the size checked against the room before
the first byte, progress, resumption of a dropped transfer (HTTP Range, FTP REST) under a bounded
retry policy, and a checksum taken on the way. The image is written to `<dest>.part` and renamed to
`dest` only when it is whole and verified."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Sequence

from pylive.log import log
from pylive.net.checksum import ChecksumSpec, Digest, find_in_sum_file, parse_checksum
from pylive.net.errors import AllMirrorsFailed, ChecksumMismatch, FetchFailed, NetError, TooLarge
from pylive.net.stream import MIB, Options
from pylive.net.url import NetUrl, parse_url
from pylive.record import record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import BinaryIO, Protocol

    from pylive.net.stream import Stream

    class Sink(Protocol):
        """Where progress goes (pylive.progress.Watch is one): the bytes of the file done so far."""

        def update(self, done: int) -> object: ...

    # progress(what, total bytes or 0 when unknown) → a context manager giving a Sink (RealSystem._watch).
    ProgressFactory = Callable[[str, int], AbstractContextManager[Sink]]

BUFFER = 1 * MIB
SUM_FILE_LIMIT = 4 * MIB


@record
class RetryPolicy:
    """How often a URL is tried again after a failure that may pass (a dropped connection, a refused
    one, a 5xx): at most `tries` failures in a row with no progress (a try that got `progress_bytes`
    more counts as progress), `max_failures` in all, and no new try once `total_s` have passed since
    the first. The wait before try n is first_delay_s * factor**(n-2), at most max_delay_s."""

    tries: int = 5
    first_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 10.0
    max_failures: int = 20
    total_s: float = 600.0
    progress_bytes: int = MIB

    def delay(self, failures: int) -> float:
        return min(self.first_delay_s * self.factor ** max(failures - 1, 0), self.max_delay_s)


@record
class Fetched:
    """What fetch() got: the URL that gave the image (after mirrors; redirects are logged), its size,
    the seconds it took, and the hex digest when a checksum was verified."""

    url: str
    size: int
    seconds: float
    digest: str | None = None


def fetch(urls: Sequence[str | NetUrl] | str, dest: str, *, checksum: str | ChecksumSpec | None = None,
          verify_tls: bool = True, ca_file: str | None = None, room_bytes: int | Callable[[], int] | None = None,
          progress: ProgressFactory | None = None, retry: RetryPolicy | None = None, timeout_s: float = 30.0,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Fetched:
    """The image at the first of `urls` that gives it, in `dest`. Raises a NetError (one line): the one
    URL's failure, or AllMirrorsFailed naming each. TooLarge and a checksum file that cannot be had
    end the search at once (the other mirrors serve the same image)."""
    parsed = [parse_url(u) if isinstance(u, str) else u for u in ([urls] if isinstance(urls, str) else urls)]
    if not parsed:
        raise FetchFailed("", "no URL given")
    options = Options(verify_tls=verify_tls, ca_file=ca_file, timeout_s=timeout_s)
    if not verify_tls and any(u.scheme == "https" for u in parsed):
        log.warning("rd.noverifyssl: the HTTPS server's certificate is not verified; anyone on the path can "
                    "change the image")
    run = _Run(options, retry or RetryPolicy(), sleep, clock)
    spec = parse_checksum(checksum) if isinstance(checksum, str) else checksum
    failures: list[NetError] = []
    for i, url in enumerate(parsed):
        try:
            expected = run.expected_sum(spec, url)
            return run.fetch_one(url, dest, expected, room_bytes, progress)
        except TooLarge:
            raise
        except NetError as e:
            failures.append(e)
            if i + 1 < len(parsed):
                log.warning("%s; trying the next URL", e)
    raise failures[0] if len(failures) == 1 else AllMirrorsFailed(failures)


def open_stream(url: NetUrl, offset: int, options: Options) -> Stream:
    """The protocol's Stream for `url` from `offset` (a protocol that cannot resume starts at 0)."""
    if url.scheme in ("http", "https"):
        from pylive.net import http

        return http.open_stream(url, offset, options)
    if url.scheme == "ftp":
        from pylive.net import ftp

        return ftp.open_stream(url, offset, options)
    if url.scheme == "tftp":
        from pylive.net import tftp

        return tftp.open_stream(url, offset, options)
    raise FetchFailed(url.text, f"{url.scheme}: is mounted, not downloaded", "mount it (nfs) instead")


class _Run:
    """One fetch()'s settings, shared by the mirrors and the checksum file."""

    def __init__(self, options: Options, policy: RetryPolicy, sleep: Callable[[float], None],
                 clock: Callable[[], float]) -> None:
        self.options = options
        self.policy = policy
        self.sleep = sleep
        self.clock = clock

    def fetch_bytes(self, url: NetUrl, limit: int) -> bytes:
        """A small file (a checksum file, at most `limit` bytes) in memory, retried as an image is."""
        data = bytearray()
        buf = memoryview(bytearray(64 * 1024))

        def one_try() -> None:
            stream = open_stream(url, 0, self.options)
            try:
                data.clear()
                if stream.size is not None and stream.size > limit:
                    raise FetchFailed(url.text, f"{stream.size} bytes, more than a checksum file has")
                while n := stream.readinto(buf):
                    data.extend(buf[:n])
                    if len(data) > limit:
                        raise FetchFailed(url.text, f"more than {limit // MIB} MiB, more than a checksum file has")
            finally:
                stream.close()

        self.with_retries(one_try, lambda: len(data))
        return bytes(data)

    def expected_sum(self, spec: ChecksumSpec | None, url: NetUrl) -> ChecksumSpec | None:
        if spec is None or spec.url is None:
            return spec
        try:
            content = self.fetch_bytes(spec.url, SUM_FILE_LIMIT)
        except NetError as e:
            raise NetError(f"the checksum file {e.message}", e.hint) from None
        return find_in_sum_file(content.decode("utf-8", "replace"), url.file_name, spec.url.text)

    def fetch_one(self, url: NetUrl, dest: str, expected: ChecksumSpec | None,
                  room_bytes: int | Callable[[], int] | None, progress: ProgressFactory | None) -> Fetched:
        start = self.clock()
        part = dest + ".part"
        with contextlib.ExitStack() as stack:
            try:
                f = stack.enter_context(open(part, "wb", buffering=0))
            except OSError as e:
                raise _write_failed(url, part, e) from None
            stack.callback(_remove, part)  # a failed download leaves no file (gone by then on success)
            into = _Into(url, f, expected, room_bytes=room_bytes, progress=progress, stack=stack)
            self.with_retries(lambda: into.one_try(self.options), lambda: into.done)
            got = into.digest.hexdigest() if into.digest is not None else None
            if expected is not None and got != expected.hexdigest:
                raise ChecksumMismatch(url.text, expected.algorithm, expected.hexdigest, got or "")
            try:
                os.replace(part, dest)
            except OSError as e:
                raise _write_failed(url, dest, e) from None
        seconds = self.clock() - start
        done = into.done
        log.info("%s: %d MiB in %.1f s (%.0f MiB/s)%s", url.text, _mib(done), seconds,
                 done / MIB / max(seconds, 1e-6), f", {expected.algorithm} verified" if expected is not None else "")
        return Fetched(url.text, done, seconds, got)

    def with_retries(self, one_try: Callable[[], None], done: Callable[[], int]) -> None:
        """one_try() until it succeeds, as the policy allows; each retry logged with its reason."""
        policy, clock = self.policy, self.clock
        start = clock()
        in_a_row = failures = 0
        while True:
            before = done()
            try:
                one_try()
                return
            except NetError as e:
                if not e.retry:
                    raise
                failures += 1
                in_a_row = 1 if done() - before >= policy.progress_bytes else in_a_row + 1
                delay = policy.delay(in_a_row)
                if (in_a_row >= policy.tries or failures >= policy.max_failures
                        or clock() + delay - start > policy.total_s):
                    raise NetError(f"{e.message} (gave up after {failures} tries in {clock() - start:.0f}s)",
                                   e.hint) from None
                at = f", resuming at {done() // MIB} MiB" if done() else ""
                log.warning("%s; try %d of %d in %.0fs%s", e.message, in_a_row + 1, policy.tries, delay, at)
                self.sleep(delay)


class _Into:
    """The file an image is downloaded into, across the tries: bytes done, the digest, the room."""

    def __init__(self, url: NetUrl, file: BinaryIO, expected: ChecksumSpec | None, *,
                 room_bytes: int | Callable[[], int] | None, progress: ProgressFactory | None,
                 stack: contextlib.ExitStack[bool | None]) -> None:
        self.url = url
        self.file = file
        self.digest = Digest(expected.algorithm) if expected is not None else None
        self.room_bytes = room_bytes
        self.progress = progress
        self.stack = stack
        self.done = 0
        self.room: int | None = None
        self.sink: Sink | None = None
        self.started = False
        self.buf = memoryview(bytearray(BUFFER))

    def one_try(self, options: Options) -> None:
        stream = open_stream(self.url, self.done, options)
        try:
            self._start(stream)
            f, digest, sink, buf, room = self.file, self.digest, self.sink, self.buf, self.room
            while n := stream.readinto(buf):
                chunk = buf[:n]
                try:
                    f.write(chunk)
                except OSError as e:
                    raise _write_failed(self.url, f.name, e) from None
                if digest is not None:
                    digest.update(chunk)
                self.done += n
                if sink is not None:
                    sink.update(self.done)
                if room is not None and self.done > room:
                    raise TooLarge(self.url.text, self.done, room)
            if stream.size is not None and self.done != stream.size:
                raise FetchFailed(self.url.text, f"{self.done} bytes came, the server announced {stream.size}",
                                  retry=True)
        finally:
            stream.close()

    def _start(self, stream: Stream) -> None:
        """A new stream: back to 0 if the server does not resume; on the first, the room and the progress."""
        url = self.url
        if stream.offset != self.done:
            if self.done:
                log.info("%s: the server does not resume; starting again from 0", url.text)
            self.file.seek(0)
            self.file.truncate()
            self.done = 0
            if self.digest is not None:
                self.digest.reset()
        if self.started:
            return
        self.started = True
        self.room = room = _room(self.room_bytes)
        size = stream.size
        if room is not None and size is not None and size > room:
            raise TooLarge(url.text, size, room)
        log.info("%s: %s", url.text, f"{_mib(size)} MiB" if size is not None else "size unknown")
        if self.progress is not None:
            self.sink = self.stack.enter_context(self.progress(f"downloading {url.file_name}", size or 0))


def _write_failed(url: NetUrl, path: object, error: OSError) -> NetError:
    hint = ("the image does not fit in RAM: give the machine more memory" if error.errno == errno.ENOSPC
            else "check where the image is written")
    return FetchFailed(url.text, f"cannot write {path} ({error.strerror or error})", hint)


def _room(room_bytes: int | Callable[[], int] | None) -> int | None:
    return room_bytes() if callable(room_bytes) else room_bytes


def _mib(n: int) -> int:
    return -(-n // MIB)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)

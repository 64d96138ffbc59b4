"""A small HTTP/1.1 client for one GET (http.client would bring the email package): redirects,
Range to resume, Content-Length or chunked bodies, over TCP or TLS (stream.py)."""

from __future__ import annotations

import socket
from io import BufferedReader

from pylive.log import log
from pylive.net.errors import BadUrl, FetchFailed
from pylive.net.stream import LOWAT, Options, connect, dropped, set_lowat, wrap_tls
from pylive.net.url import NetUrl, join

MAX_REDIRECTS = 5
MAX_HEAD = 64 * 1024  # the status line and the headers
BUFFER = 256 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


def open_stream(url: NetUrl, offset: int, options: Options) -> HttpStream:
    """A GET of `url` from byte `offset` (Range), following up to MAX_REDIRECTS redirects."""
    first = url
    for _ in range(MAX_REDIRECTS + 1):
        stream = HttpStream(url, offset, options)
        status, reason, headers = stream.request()
        if status in REDIRECTS and "location" in headers:
            stream.close()
            location = headers["location"]
            try:
                url = join(url, location)
            except BadUrl as e:
                raise FetchFailed(first.text, f"redirected to a bad URL ({e.message})") from None
            if url.scheme not in ("http", "https"):
                raise FetchFailed(first.text, f"redirected to {url.scheme}:, which HTTP cannot follow",
                                  "give the final URL on the command line")
            log.info("%s: redirected (HTTP %d) to %s", first.text, status, url.text)
            continue
        try:
            stream.start_body(status, reason, headers)
        except BaseException:
            stream.close()
            raise
        return stream
    raise FetchFailed(first.text, f"more than {MAX_REDIRECTS} redirects", "give the final URL on the command line")


class HttpStream:
    """One GET on its own connection (Connection: close)."""

    def __init__(self, url: NetUrl, offset: int, options: Options) -> None:
        self.url = url
        self.offset = offset
        self.size: int | None = None
        self.resumable = False
        self.options = options
        self._asked = offset
        self._remaining: int | None = None  # body bytes left (Content-Length), None: until close
        self._chunked = False
        self._chunk_left = 0
        self._done = 0
        self._lowat = 0  # the SO_RCVLOWAT set, 0: none (TLS, chunked, unknown length)
        sock = connect(url, url.port, options)
        self._sock = wrap_tls(sock, url, options) if url.scheme == "https" else sock
        self._file = BufferedReader(socket.SocketIO(self._sock, "rb"), BUFFER)

    def request(self) -> tuple[int, str, dict[str, str]]:
        url = self.url
        lines = [f"GET {url.path} HTTP/1.1", f"Host: {url.host_port}", f"User-Agent: {self.options.user_agent}",
                 "Accept: */*", "Accept-Encoding: identity", "Connection: close"]
        if self._asked:
            lines.append(f"Range: bytes={self._asked}-")
        if url.user:
            import binascii

            token = binascii.b2a_base64(f"{url.user}:{url.password}".encode(), newline=False).decode()
            lines.append(f"Authorization: Basic {token}")
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
            return self._read_head()
        except OSError as e:
            raise dropped(url, e, 0, None, self.options.timeout_s) from None

    def _read_head(self) -> tuple[int, str, dict[str, str]]:
        status_line = self._file.readline(MAX_HEAD)
        if not status_line:
            raise dropped(self.url, None, 0, None, self.options.timeout_s)
        version, _, rest = status_line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/") or not code.isdigit():
            raise FetchFailed(self.url.text, f"not an HTTP server (it answered {status_line[:40]!r})",
                              "check the port and the scheme (http or https) in the URL")
        headers: dict[str, str] = {}
        total = len(status_line)
        while True:
            line = self._file.readline(MAX_HEAD)
            total += len(line)
            if not line or total > MAX_HEAD:
                raise FetchFailed(self.url.text, "the server's answer has no end of headers", retry=True)
            text = line.decode("latin-1").rstrip("\r\n")
            if not text:
                return int(code), reason, headers
            name, _, value = text.partition(":")
            headers[name.strip().lower()] = value.strip()

    def start_body(self, status: int, reason: str, headers: dict[str, str]) -> None:
        """Checks the answer (one line per failing status) and how its body is framed."""
        if status not in (200, 206):
            raise _status_error(self.url, status, reason)
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length", "")
        self._remaining = int(length) if length.isdigit() and not self._chunked else None
        self.resumable = headers.get("accept-ranges", "").lower() == "bytes" or status == 206
        if status == 206:
            unit, _, spec = headers.get("content-range", "").partition(" ")
            span, _, total = spec.partition("/")
            start = span.partition("-")[0]
            if unit.lower() != "bytes" or not start.isdigit():
                raise FetchFailed(self.url.text, f"the server answered a Range request with {spec or 'no range'!r}")
            self.offset = int(start)
            self.size = int(total) if total.isdigit() else None
        else:
            self.offset = 0
            self.size = self._remaining
        if self._remaining is not None and self.url.scheme == "http":  # TLS reads whole records: left alone
            self._lowat = 1

    def readinto(self, buf: memoryview) -> int:
        try:
            n = self._read_chunked(buf) if self._chunked else self._read_plain(buf)
        except OSError as e:
            raise dropped(self.url, e, self.offset + self._done, self.size, self.options.timeout_s) from None
        self._done += n
        return n

    def _read_plain(self, buf: memoryview) -> int:
        if self._remaining is not None:
            if self._remaining == 0:
                return 0
            buf = buf[: self._remaining]
            if self._lowat and self._done:  # from the second read: the first empties what came with the headers
                self._lowat = set_lowat(self._sock, self._lowat, min(LOWAT, len(buf)))
        n = self._file.readinto1(buf)
        if self._remaining is not None:
            if n == 0:
                raise dropped(self.url, None, self.offset + self._done, self.size, self.options.timeout_s)
            self._remaining -= n
        return n

    def _read_chunked(self, buf: memoryview) -> int:
        if self._chunk_left == 0:
            line = self._file.readline(1024)
            size_text = line.split(b";")[0].strip()
            try:
                self._chunk_left = int(size_text, 16)
            except ValueError:
                raise dropped(self.url, None, self.offset + self._done, self.size, self.options.timeout_s) from None
            if self._chunk_left == 0:
                self._chunked = False
                self._remaining = 0
                return 0
        n = self._file.readinto1(buf[: self._chunk_left])
        if n == 0:
            raise dropped(self.url, None, self.offset + self._done, self.size, self.options.timeout_s)
        self._chunk_left -= n
        if self._chunk_left == 0:
            self._file.readline(16)  # the CRLF after the chunk's data
        return n

    def close(self) -> None:
        self._file.close()
        try:
            self._sock.close()
        except OSError:
            pass


def _status_error(url: NetUrl, status: int, reason: str) -> FetchFailed:
    text = f"HTTP {status} {reason}".rstrip()
    if status == 404:
        return FetchFailed(url.text, text, "check the path in the URL (the file is not on the server)")
    if status in (401, 403):
        return FetchFailed(url.text, text, "check the server's permissions for the file (or the user in the URL)")
    if status == 416:
        return FetchFailed(url.text, text, "the file on the server changed while it was downloaded", retry=True)
    if status >= 500:
        return FetchFailed(url.text, f"{text} (a server error)", "check the server's log", retry=True)
    return FetchFailed(url.text, text, "check the URL")


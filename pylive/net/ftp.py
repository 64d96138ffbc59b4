"""A small FTP client for one download (ftplib is left out of the binary): login (anonymous unless the
URL names a user), binary mode, SIZE, passive mode (EPSV, then PASV), REST to resume, RETR."""

from __future__ import annotations

import socket
from io import BufferedReader

from pylive.net.errors import FetchFailed
from pylive.net.stream import LOWAT, Options, connect, dropped, set_lowat
from pylive.net.url import NetUrl

MAX_LINE = 8192


def open_stream(url: NetUrl, offset: int, options: Options) -> FtpStream:
    """RETR of url's file from `offset` (REST), on a passive data connection."""
    stream = FtpStream(url, options)
    try:
        stream.start(offset)
    except BaseException:
        stream.close()
        raise
    return stream


class FtpStream:
    resumable = True

    def __init__(self, url: NetUrl, options: Options) -> None:
        self.url = url
        self.options = options
        self.offset = 0
        self.size: int | None = None
        self._done = 0
        self._data: socket.socket | None = None
        self._ctrl = connect(url, url.port, options, "the FTP server")
        self._file = BufferedReader(socket.SocketIO(self._ctrl, "rb"))

    def start(self, offset: int) -> None:
        url = self.url
        self._expect("the greeting", (220,))
        code, text = self._command(f"USER {url.user or 'anonymous'}")
        if code == 331:
            code, text = self._command(f"PASS {url.password or 'pylive@'}")
        if code != 230:
            raise FetchFailed(url.text, f"the FTP server refused the login ({code} {text})",
                              "give user:password@ in the URL, or allow anonymous downloads")
        self._expect("TYPE I", (200,))
        path = url.file_path[1:]  # RFC 1738: relative to where the login lands; ftp://host//abs for /abs
        code, text = self._command(f"SIZE {path}")
        if code == 213 and text.strip().isdigit():
            self.size = int(text.strip())
        elif code == 550:
            raise self._no_file(code, text)
        self._data = self._passive()
        if offset:
            code, _ = self._command(f"REST {offset}")
            self.offset = offset if code == 350 else 0
        code, text = self._command(f"RETR {path}")
        if code == 550:
            raise self._no_file(code, text)
        if code not in (125, 150):
            raise self._failed(f"RETR {path}", code, text)

    def _passive(self) -> socket.socket:
        peer = self._ctrl.getpeername()[0]
        code, text = self._command("EPSV")
        if code == 229:  # (|||port|)
            port_text = text.partition("(")[2].partition(")")[0].strip("|")
        else:
            code, text = self._command("PASV")
            if code != 227:
                raise self._failed("PASV", code, text)
            numbers = text.partition("(")[2].partition(")")[0].split(",")
            if len(numbers) != 6 or not all(n.strip().isdigit() for n in numbers):
                raise self._failed("PASV", code, text)
            port_text = str(int(numbers[4]) * 256 + int(numbers[5]))
        if not port_text.isdigit():
            raise self._failed("EPSV", code, text)
        # the control connection's address, not the one in the PASV answer (a server behind NAT gets it wrong)
        try:
            data = socket.create_connection((peer, int(port_text)), timeout=self.options.timeout_s)
        except OSError as e:
            raise dropped(self.url, e, 0, self.size, self.options.timeout_s) from None
        set_lowat(data, 0, LOWAT)  # the server closes the data connection at the end: the last read never waits
        return data

    def readinto(self, buf: memoryview) -> int:
        data = self._data
        if data is None:
            return 0
        try:
            n = data.recv_into(buf)
        except OSError as e:
            raise dropped(self.url, e, self.offset + self._done, self.size, self.options.timeout_s) from None
        if n:
            self._done += n
            return n
        data.close()
        self._data = None
        code, text = self._reply()
        if code not in (226, 250):
            raise dropped(self.url, None, self.offset + self._done, self.size, self.options.timeout_s)
        return 0

    def close(self) -> None:
        for sock in (self._data, self._ctrl):
            if sock is not None:
                sock.close()
        self._file.close()

    def _command(self, line: str) -> tuple[int, str]:
        try:
            self._ctrl.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")
        except OSError as e:
            raise dropped(self.url, e, 0, self.size, self.options.timeout_s) from None
        return self._reply()

    def _expect(self, what: str, codes: tuple[int, ...]) -> None:
        code, text = self._reply() if what == "the greeting" else self._command(what)
        if code not in codes:
            raise self._failed(what, code, text)

    def _reply(self) -> tuple[int, str]:
        """A reply, multi-line ones (`123-…` up to `123 …`) included: (code, text of its last line)."""
        try:
            line = self._file.readline(MAX_LINE).decode("utf-8", "replace").rstrip("\r\n")
            code = line[:3]
            if line[3:4] == "-":
                while True:
                    more = self._file.readline(MAX_LINE)
                    if not more:
                        break
                    line = more.decode("utf-8", "replace").rstrip("\r\n")
                    if line[:3] == code and line[3:4] == " ":
                        break
        except OSError as e:
            raise dropped(self.url, e, self._done, self.size, self.options.timeout_s) from None
        if not code.isdigit():
            raise FetchFailed(self.url.text, f"not an FTP server (it answered {line[:40]!r})",
                              "check the host and the port in the URL", retry=not line)
        return int(code), line[4:]

    def _no_file(self, code: int, text: str) -> FetchFailed:
        return FetchFailed(self.url.text, f"FTP {code} {text}".rstrip(),
                           "check the path in the URL (relative to the FTP login directory; // for an absolute path)")

    def _failed(self, what: str, code: int, text: str) -> FetchFailed:
        return FetchFailed(self.url.text, f"the FTP server answered {what} with {code} {text}".rstrip(),
                           "check the FTP server", retry=400 <= code < 500)

"""A TFTP client for one read (RFC 1350), asking for a larger block and the size first (RFC 2347-2349:
blksize, tsize). Each packet is retransmitted on timeout; a transfer cannot resume (the protocol has
no offset), so a retry starts again from the first block."""

from __future__ import annotations

import socket
import struct

from pylive.net.errors import FetchFailed
from pylive.net.stream import Options, connect_failed, dropped
from pylive.net.url import NetUrl

RRQ, DATA, ACK, ERROR, OACK = 1, 3, 4, 5, 6
BLKSIZE = 1468  # the largest block in one 1500-byte Ethernet frame over IPv4 (RFC 2348)
RETRANSMIT_S = 1.0  # the wait for a packet before the last one is sent again
ERRORS = {1: "file not found", 2: "access violation", 3: "disk full", 4: "illegal TFTP operation",
          5: "unknown transfer ID", 6: "file already exists", 7: "no such user", 8: "option refused"}


def open_stream(url: NetUrl, offset: int, options: Options) -> TftpStream:
    """A read of url's file from its first block (`offset` is ignored: TFTP cannot resume)."""
    return TftpStream(url, options)


class TftpStream:
    resumable = False

    def __init__(self, url: NetUrl, options: Options, retransmit_s: float = RETRANSMIT_S) -> None:
        self.url = url
        self.offset = 0
        self.size: int | None = None
        self.options = options
        self.retransmit_s = retransmit_s
        self.blksize = 512
        self._block = 0  # the last block received (and acknowledged)
        self._done = 0
        self._ended = False
        self._peer: tuple[str, int] | None = None
        self._packet = bytearray(65536 + 4)
        try:
            family, _, _, _, address = socket.getaddrinfo(url.host, url.port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as e:
            raise FetchFailed(url.text, f"cannot resolve {url.host} ({e.strerror})",
                              "check the DNS server that ip= or nameserver= gives, or name the server by its address",
                              retry=True) from None
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.settimeout(retransmit_s)
        self._server = address
        name = url.file_path.removeprefix("/").encode("utf-8", "surrogateescape")
        self._last = (struct.pack("!H", RRQ) + name + b"\0octet\0"
                      + b"blksize\0%d\0tsize\0%d\0" % (BLKSIZE, 0))
        try:
            self._sock.sendto(self._last, address)
            self._first()
        except BaseException:
            self._sock.close()
            raise

    def _first(self) -> None:
        """The server's answer to the request: OACK (send ACK 0), or block 1 straight away."""
        opcode, n = self._receive(0)
        if opcode == OACK:
            fields = bytes(self._packet[2:n]).split(b"\0")
            values = {fields[i].decode("ascii", "replace").lower(): fields[i + 1] for i in range(0, len(fields) - 1, 2)}
            if values.get("blksize", b"").isdigit():
                self.blksize = int(values["blksize"])
            if values.get("tsize", b"").isdigit():
                self.size = int(values["tsize"]) or None
            self._ack(0)
            self._pending = 0
        else:  # DATA 1: an RFC 1350 server, 512-byte blocks and no size
            self._pending = n

    def _receive(self, after: int) -> tuple[int, int]:
        """The next packet from the server (DATA of block after+1, or OACK when after is 0),
        resending the last packet on each timeout; (opcode, length)."""
        tries = max(int(self.options.timeout_s / self.retransmit_s), 1)
        for _ in range(tries):
            try:
                while True:
                    n, peer = self._sock.recvfrom_into(self._packet)
                    if self._peer is None and peer[0] == self._server[0]:
                        self._peer = peer  # the server's transfer ID (RFC 1350 §4)
                        self._sock.connect(peer)
                    elif peer != self._peer:
                        self._sock.sendto(struct.pack("!HH", ERROR, 5) + b"unknown transfer ID\0", peer)
                        continue
                    opcode, number = struct.unpack_from("!HH", self._packet)
                    if opcode == ERROR:
                        self._error(number, n)
                    if opcode == OACK and after == 0:
                        return opcode, n
                    if opcode == DATA and number == (after + 1) & 0xFFFF:
                        return opcode, n
                    if opcode == DATA and number == after & 0xFFFF and after:
                        self._ack(after)  # our ACK was lost: the server sent the block again
            except TimeoutError:
                self._resend()
            except OSError as e:
                raise dropped(self.url, e, self._done, self.size, self.options.timeout_s) from None
        if self._peer is None:
            where = f"{self.url.host}:{self.url.port}"
            raise connect_failed(self.url, where, TimeoutError(), self.options.timeout_s, "the TFTP server")
        raise dropped(self.url, TimeoutError(), self._done, self.size, self.options.timeout_s)

    def _error(self, code: int, n: int) -> None:
        text = bytes(self._packet[4:n]).split(b"\0")[0].decode("utf-8", "replace")
        problem = f"TFTP error {code} ({text or ERRORS.get(code, 'undefined')})"
        if code == 1:
            raise FetchFailed(self.url.text, problem, "check the path in the URL, relative to the TFTP server's root")
        if code == 2:
            raise FetchFailed(self.url.text, problem, "check the file's permissions on the TFTP server")
        raise FetchFailed(self.url.text, problem, "check the TFTP server's log", retry=code in (0, 3))

    def _ack(self, block: int) -> None:
        self._last = struct.pack("!HH", ACK, block & 0xFFFF)
        self._send(self._last)

    def _resend(self) -> None:
        self._send(self._last)

    def _send(self, packet: bytes) -> None:
        if self._peer is not None:
            self._sock.send(packet)
        else:
            self._sock.sendto(packet, self._server)

    def readinto(self, buf: memoryview) -> int:
        """Whole blocks while they fit in buf (each one acknowledged as it comes)."""
        filled = 0
        blksize = self.blksize
        while not self._ended and len(buf) - filled >= blksize:
            if self._pending:
                n, self._pending = self._pending, 0
            else:
                _, n = self._receive(self._block)
            data = n - 4
            buf[filled : filled + data] = self._packet[4:n]
            filled += data
            self._block += 1
            self._done += data
            self._ack(self._block)
            if data < blksize:
                self._ended = True
        return filled

    def close(self) -> None:
        self._sock.close()

"""In-process servers on 127.0.0.1 for the network library's tests: HTTP(S) with Range and faults,
TFTP (RFC 1350 with blksize/tsize), FTP (passive, SIZE, REST). Each runs in a daemon thread."""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import struct
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Files:
    """What the servers serve, by path, and what they were asked (for the assertions)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str]] = []  # (path, Range header or "")
        self.drop_after: dict[str, list[int]] = {}  # path -> byte counts at which the next answers stop
        self.lock = threading.Lock()

    def next_drop(self, path: str) -> int | None:
        with self.lock:
            drops = self.drop_after.get(path)
            return drops.pop(0) if drops else None


class HttpHandler(http.server.BaseHTTPRequestHandler):
    """GET with Range; /status/<n> answers n; /redirect/<k>/<path> redirects k times, then to /<path>;
    /norange/<path> ignores Range; /chunked/<path> sends the body chunked."""

    files: Files
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        files = self.files
        path = self.path
        files.requests.append((path, self.headers.get("Range", "")))
        parts = path.strip("/").split("/")
        if parts[0] == "status":
            self.send_response(int(parts[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts[0] == "redirect":
            k = int(parts[1])
            target = "/" + "/".join(parts[2:]) if k == 0 else f"/redirect/{k - 1}/" + "/".join(parts[2:])
            self.send_response(302)
            self.send_header("Location", target if k % 2 else f"http://{self.headers['Host']}{target}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        norange = parts[0] == "norange"
        chunked = parts[0] == "chunked"
        name = "/" + "/".join(parts[1:]) if norange or chunked else path
        data = files.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and not norange and not chunked:
            start = int(rng[6:].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if not norange:
            self.send_header("Accept-Ranges", "bytes")
        body = memoryview(data)[start:]
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 100_000):
                piece = body[i : i + 100_000]
                self.wfile.write(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = files.next_drop(name)
        if drop is not None:
            self.wfile.write(body[: max(drop - start, 0)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


class _Threading(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def http_server(files: Files, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """`http://127.0.0.1:<port>` (https with tls=(cert, key)) serving `files`."""
    handler = type("Handler", (HttpHandler,), {"files": files})
    server = _Threading(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls is not None:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def self_signed(directory: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for `host` and 127.0.0.1 (openssl), and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- TFTP ---

class TftpServer:
    """RFC 1350 read requests with the blksize and tsize options (RFC 2347-2349), one transfer
    at a time. `lose` lists block numbers whose first sending is dropped (the client must
    retransmit its ACK); `options=False` makes it an RFC 1350-only server."""

    def __init__(self, files: dict[str, bytes], lose: tuple[int, ...] = (), options: bool = True,
                 max_blksize: int = 65464) -> None:
        self.files = files
        self.max_blksize = max_blksize
        self.lose = set(lose)
        self.options = options
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.requests: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                packet, peer = self.sock.recvfrom(2048)
            except OSError:
                return
            if struct.unpack("!H", packet[:2])[0] != 1:
                continue
            fields = packet[2:].split(b"\0")
            name, opts = fields[0].decode(), fields[2:-1]
            asked = {opts[i].decode().lower(): opts[i + 1].decode() for i in range(0, len(opts) - 1, 2)}
            self.requests.append({"name": name, **asked})
            threading.Thread(target=self._transfer, args=(name, asked, peer), daemon=True).start()

    def _transfer(self, name: str, asked: dict[str, str], peer: tuple[str, int]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(5.0)
            data = self.files.get(name.lstrip("/"))
            if data is None:
                s.sendto(struct.pack("!HH", 5, 1) + b"File not found\0", peer)
                return
            blksize = 512
            if self.options and asked:
                oack = b""
                if "blksize" in asked:
                    blksize = min(int(asked["blksize"]), self.max_blksize)
                    oack += b"blksize\0%d\0" % blksize
                if "tsize" in asked:
                    oack += b"tsize\0%d\0" % len(data)
                if not self._send(s, struct.pack("!H", 6) + oack, peer, 0):
                    return
            block, start = 1, 0
            while True:
                payload = struct.pack("!HH", 3, block & 0xFFFF) + data[start : start + blksize]
                if not self._send(s, payload, peer, block, skip_first=block in self.lose):
                    return
                self.lose.discard(block)
                if len(payload) - 4 < blksize:
                    return
                block, start = block + 1, start + blksize

    def _send(self, s: socket.socket, payload: bytes, peer: tuple[str, int], block: int,
              skip_first: bool = False) -> bool:
        """Sends until the ACK of `block` comes; the client's ACK of the block before (its timeout)
        makes it send again. skip_first: the first sending is "lost"."""
        for _ in range(20):
            if not skip_first:
                s.sendto(payload, peer)
            skip_first = False
            try:
                while True:
                    ack, _ = s.recvfrom(1024)
                    answer = struct.unpack("!HH", ack[:4])
                    if answer == (4, block & 0xFFFF):
                        return True
                    if answer == (4, (block - 1) & 0xFFFF):
                        break
            except TimeoutError:
                continue
        return False

    def close(self) -> None:
        self.sock.close()


# --- FTP ---

class FtpServer:
    """A minimal FTP server: USER/PASS, TYPE, SIZE, PASV/EPSV, REST, RETR, QUIT. `drop_after`: the
    first RETR of each listed file stops after that many bytes."""

    def __init__(self, files: dict[str, bytes], drop_after: dict[str, int] | None = None) -> None:
        self.files = files
        self.drop_after = dict(drop_after or {})
        self.commands: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session_or_hang_up, args=(conn,), daemon=True).start()

    def _session_or_hang_up(self, conn: socket.socket) -> None:
        try:
            self._session(conn)
        except OSError:  # the client went away (a refused size, the end of a test)
            conn.close()

    def _session(self, conn: socket.socket) -> None:  # noqa: PLR0912 (one branch per command)
        f = conn.makefile("rwb", buffering=0)
        f.write(b"220-pylive test FTP\r\n220 ready\r\n")
        passive: socket.socket | None = None
        rest = 0
        with conn:
            for raw in iter(f.readline, b""):
                line = raw.decode().rstrip("\r\n")
                self.commands.append(line)
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                name = arg.lstrip("/")
                if verb == "USER":
                    f.write(b"331 password please\r\n")
                elif verb == "PASS":
                    f.write(b"230 logged in\r\n")
                elif verb == "TYPE":
                    f.write(b"200 binary\r\n")
                elif verb == "SIZE":
                    data = self.files.get(name)
                    f.write(b"213 %d\r\n" % len(data) if data is not None else b"550 no such file\r\n")
                elif verb in ("PASV", "EPSV"):
                    passive = socket.create_server(("127.0.0.1", 0))
                    port = passive.getsockname()[1]
                    if verb == "EPSV":
                        f.write(b"229 Entering Extended Passive Mode (|||%d|)\r\n" % port)
                    else:
                        f.write(b"227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n" % (port >> 8, port & 255))
                elif verb == "REST":
                    rest = int(arg)
                    f.write(b"350 restarting\r\n")
                elif verb == "RETR":
                    data = self.files.get(name)
                    if data is None or passive is None:
                        f.write(b"550 no such file\r\n")
                        continue
                    f.write(b"150 sending\r\n")
                    dconn, _ = passive.accept()
                    passive.close()
                    passive = None
                    body = data[rest:]
                    drop = self.drop_after.pop(name, None)
                    with dconn:
                        dconn.sendall(body if drop is None else body[: drop - rest])
                    rest = 0
                    f.write(b"226 done\r\n" if drop is None else b"426 connection closed; transfer aborted\r\n")
                elif verb == "QUIT":
                    f.write(b"221 bye\r\n")
                    return
                else:
                    f.write(b"502 not implemented\r\n")

    def close(self) -> None:
        self.sock.close()


def random_bytes(n: int) -> bytes:
    return os.urandom(n)

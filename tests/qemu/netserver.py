"""An HTTP server for the network boots: files from a directory, on 127.0.0.1 only (the QEMU guest
reaches it as 10.0.2.2 through user networking), with Range requests, and paths that misbehave:

  /flaky/<name>   the first GET of <name> sends the headers for the whole file and closes the
                  connection halfway through the body; later requests (with Range) are served
  anything else that is missing: 404

With tls=(certificate, key) it speaks HTTPS (make_ca and server_cert make a test CA and certificates
for 10.0.2.2 with the openssl command). Every request is recorded (method, path, Range header, status)
so tests can assert what the guest asked.
"""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], OSError):  # a refused handshake, a client gone: recorded or expected
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class NetServer:
    def __init__(self, root: Path, tls: tuple[Path, Path] | None = None) -> None:
        self.root = root
        self.scheme = "https" if tls else "http"
        self.requests: list[tuple[str, str, str, int]] = []
        self.broken: set[str] = set()  # flaky names already broken once
        self.tls_failures: list[str] = []  # TLS handshakes that failed (the client refused the certificate)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

            def setup(self) -> None:
                handshake = getattr(self.request, "do_handshake", None)
                if handshake is not None:
                    try:
                        handshake()
                    except OSError as e:
                        server.tls_failures.append(str(e))
                        raise
                super().setup()

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._serve(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                path = self.path.partition("?")[0]
                flaky = path.startswith("/flaky/")
                name = path.removeprefix("/flaky/").lstrip("/")
                file = server.root / name
                rng = self.headers.get("Range", "")
                if ".." in name or not file.is_file():
                    self._status(404, path, rng)
                    return
                size = file.stat().st_size
                start = 0
                if rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit():
                    start = int(rng[6:-1])
                if start >= size and size:
                    self._status(416, path, rng)
                    return
                status = 206 if start else 200
                server.requests.append((self.command, path, rng, status))
                self.send_response(status)
                self.send_header("Content-Length", str(size - start))
                self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()
                if not body:
                    return
                cut = size // 2 if flaky and body and name not in server.broken and not start else None
                with open(file, "rb") as f:
                    f.seek(start)
                    left = (cut if cut is not None else size) - start
                    while left > 0:
                        chunk = f.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        left -= len(chunk)
                if cut is not None:
                    server.broken.add(name)
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)

            def _status(self, code: int, path: str, rng: str) -> None:
                server.requests.append((self.command, path, rng, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            # the handshake happens in the request's thread (a client refusing the certificate fails only that)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True,
                                                    do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """The URL the guest uses (10.0.2.2 is the host's loopback under QEMU user networking)."""
        return f"{self.scheme}://10.0.2.2:{self.port}/{path.lstrip('/')}"

    def __enter__(self) -> NetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_ca(d: Path) -> tuple[Path, Path]:
    """A CA for the tests (certificate, key), valid for two days."""
    cert, key = d / "test-ca.pem", d / "test-ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pylive test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", key, "-out", cert)
    return cert, key


def server_cert(d: Path, name: str, ca: tuple[Path, Path] | None, ip: str = "10.0.2.2") -> tuple[Path, Path]:
    """A server certificate for `ip` (certificate, key): signed by `ca`, or self-signed when ca is None."""
    cert, key, csr, ext = d / f"{name}.pem", d / f"{name}.key", d / f"{name}.csr", d / f"{name}.ext"
    ext.write_text(f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    if ca is None:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={ip}",
                 "-addext", f"subjectAltName=IP:{ip}", "-keyout", key, "-out", cert)
    else:
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}", "-keyout", key, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
                 "-extfile", ext, "-out", cert)
    return cert, key

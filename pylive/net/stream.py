"""What the protocols share: the Stream a download reads from, the connection options, and a TCP
(or TLS) connection whose failures become one-line NetErrors."""

from __future__ import annotations

import os
import socket

from pylive.net.errors import FetchFailed
from pylive.net.url import NetUrl
from pylive.record import record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    import ssl
    from typing import Protocol

    class Stream(Protocol):
        """An open download: `offset` is where its bytes start in the file (0, or the point a resume
        asked for and the server accepted); `size` the file's whole size when the server said it."""

        url: NetUrl
        offset: int
        size: int | None
        resumable: bool

        def readinto(self, buf: memoryview) -> int:
            """Bytes read into buf; 0 at the end. A failure is a FetchFailed (retry=True if trying again may help)."""
            ...

        def close(self) -> None: ...

MIB = 1 << 20
# SO_RCVLOWAT of a download's socket (set_lowat): a read wakes once this much has come, not for every few packets
LOWAT = 256 * 1024

# Where distributions keep the CA bundle (Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine/Arch).
CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


@record
class Options:
    """How to connect: `timeout_s` bounds each connect and each wait for data; `ca_file` None looks
    for the system's bundle (CA_BUNDLES)."""

    verify_tls: bool = True
    ca_file: str | None = None
    timeout_s: float = 30.0
    user_agent: str = "pylive"


def connect(url: NetUrl, port: int, options: Options, what: str = "") -> socket.socket:
    """A TCP connection to url.host:port (each address the name resolves to, in order)."""
    where = f"[{url.host}]:{port}" if ":" in url.host else f"{url.host}:{port}"
    try:
        infos = socket.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise FetchFailed(url.text, f"cannot resolve {url.host} ({e.strerror})",
                          "check the DNS server that ip= or nameserver= gives, or name the server by its address",
                          retry=True) from None
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(options.timeout_s)
        try:
            sock.connect(address)
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise connect_failed(url, where, error, options.timeout_s, what)


def connect_failed(url: NetUrl, where: str, error: OSError | None, timeout_s: float, what: str = "") -> FetchFailed:
    what = what or "the server"
    if isinstance(error, ConnectionRefusedError):
        return FetchFailed(url.text, f"connection refused by {where}",
                           f"check that {what} runs and listens on that port", retry=True)
    if isinstance(error, TimeoutError):
        return FetchFailed(url.text, f"no answer from {where} in {timeout_s:g}s",
                           "check the server's address and the network path to it (ip=, the gateway)", retry=True)
    reason = error.strerror if error is not None and error.strerror else str(error)
    return FetchFailed(url.text, f"cannot connect to {where} ({reason})",
                       "check the server's address and the network path to it (ip=, the gateway)", retry=True)


def dropped(url: NetUrl, error: OSError | None, done: int, size: int | None, timeout_s: float) -> FetchFailed:
    """A transfer that stopped at `done` bytes: the one line says where and why."""
    at = f"at {done // MIB} of {size // MIB} MiB" if size else f"after {done // MIB} MiB"
    if isinstance(error, TimeoutError):
        problem = f"the server sent nothing for {timeout_s:g}s {at}"
    elif error is None:
        problem = f"the server closed the connection {at}"
    else:
        problem = f"the connection broke {at} ({error.strerror or error})"
    return FetchFailed(url.text, problem, "check the server and the network path to it", retry=True)


def set_lowat(sock: socket.socket, current: int, want: int) -> int:
    """SO_RCVLOWAT of `sock` to `want` bytes (when it is not `current` already): poll() and so each read
    wait until that much has come, or the end, or the timeout. Fewer, larger reads: under QEMU TCG
    this took pylive's HTTP download from 92 % to 101 % of busybox wget's (README, Booting over the
    network). The reader lowers it to the bytes still to come near the end. 0 when it cannot be set."""
    if want == current:
        return current
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, max(want, 1))
    except OSError:
        return 0  # read as the data comes
    return want


def tls_context(url: NetUrl, options: Options) -> ssl.SSLContext:
    """A client context: the system's CA bundle and host name checks, or no verification at all."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not options.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    ca_file = options.ca_file or next((p for p in CA_BUNDLES if os.path.exists(p)), None)
    if ca_file is None:
        raise FetchFailed(url.text, f"no CA certificates to verify the server (looked for {', '.join(CA_BUNDLES)})",
                          "add the CA bundle to the initramfs (dracut: install_items+=), or boot with rd.noverifyssl")
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise FetchFailed(url.text, f"cannot read the CA certificates in {ca_file} ({e})",
                          "fix the CA bundle in the initramfs, or boot with rd.noverifyssl") from None
    return context


def wrap_tls(sock: socket.socket, url: NetUrl, options: Options) -> socket.socket:
    """`sock` after a TLS handshake with url.host; verification failures are not retried."""
    import ssl

    context = tls_context(url, options)
    try:
        return context.wrap_socket(sock, server_hostname=url.host)
    except ssl.SSLCertVerificationError as e:
        sock.close()
        raise FetchFailed(url.text, f"TLS: the server's certificate cannot be verified ({e.verify_message})",
                          "put its CA in the initramfs' CA bundle, or boot with rd.noverifyssl (no checks)") from None
    except ssl.SSLError as e:
        sock.close()
        raise FetchFailed(url.text, f"TLS handshake failed ({e.reason or e})",
                          "check that the server speaks HTTPS on that port") from None
    except OSError as e:
        sock.close()
        raise dropped(url, e, 0, None, options.timeout_s) from None

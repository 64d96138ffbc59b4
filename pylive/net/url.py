"""Network image URLs (pure): `scheme://[user[:password]@]host[:port]/path` for http, https, ftp,
tftp and nfs, parsed and checked without urllib (whose import brings ipaddress, `make bench`)."""

from __future__ import annotations

import socket

from pylive.net.errors import BadUrl
from pylive.record import record

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "tftp": 69, "nfs": 2049}
EXAMPLE = "use e.g. root=live:http://192.168.1.1/LiveOS/squashfs.img"
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_HEX = frozenset("0123456789abcdefABCDEF")


@record
class NetUrl:
    """A parsed URL. `path` is as written (percent-escapes kept: an HTTP request sends it so);
    `file_path` is it decoded (what FTP, TFTP and NFS name); `text` the URL as given."""

    text: str
    scheme: str
    host: str  # without the [] of an IPv6 literal
    port: int
    path: str  # starts with '/'; the query, if any, is kept (HTTP)
    user: str = ""
    password: str = ""

    @property
    def file_path(self) -> str:
        return unquote(self.path.partition("?")[0])

    @property
    def file_name(self) -> str:
        """The last component of the path: the name a checksum file lists the image under."""
        return self.file_path.rstrip("/").rpartition("/")[2]

    @property
    def host_port(self) -> str:
        """`host[:port]` as an HTTP Host header writes it (the port only when not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def with_path(self, path: str) -> NetUrl:
        """The same server, another path (a redirect to a path only)."""
        return NetUrl(self.text, self.scheme, self.host, self.port, path, self.user, self.password)


def parse_url(text: str) -> NetUrl:
    """`text` as a NetUrl; BadUrl (one line naming the URL) when it cannot be fetched."""
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise BadUrl(text, "not a URL pylive can fetch (http, https, ftp, tftp or nfs)", EXAMPLE)
    if any(c.isspace() or not c.isprintable() for c in text):
        raise BadUrl(text, "a URL cannot hold spaces or control characters", "write a space as %20")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    path = path.partition("#")[0]
    userinfo, at, hostport = authority.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    host, port = _host_port(text, hostport, DEFAULT_PORTS[scheme])
    _check_escapes(text, path)
    if not path.partition("?")[0].rstrip("/"):
        raise BadUrl(text, "the URL names no file on the server", EXAMPLE)
    if scheme != "nfs" and path.partition("?")[0].endswith("/"):
        raise BadUrl(text, "the URL names a directory, not an image file", EXAMPLE)
    return NetUrl(text, scheme, host, port, path, unquote(user), unquote(password))


def join(base: NetUrl, location: str) -> NetUrl:
    """Where an HTTP redirect's Location leads from `base`: an absolute URL, `//host/path` or a path."""
    if "://" in location:
        return parse_url(location)
    if location.startswith("//"):
        return parse_url(f"{base.scheme}:{location}")
    if not location.startswith("/"):
        location = base.path.partition("?")[0].rpartition("/")[0] + "/" + location
    _check_escapes(base.text, location)
    return base.with_path(location)


def unquote(text: str) -> str:
    """Percent-escapes decoded as UTF-8 (a byte that is not UTF-8 stays escaped as surrogateescape)."""
    if "%" not in text:
        return text
    parts = text.split("%")
    out = bytearray(parts[0].encode())
    for part in parts[1:]:
        if len(part) >= 2 and part[0] in _HEX and part[1] in _HEX:
            out.append(int(part[:2], 16))
            out += part[2:].encode()
        else:
            out += b"%" + part.encode()
    return out.decode("utf-8", "surrogateescape")


def _host_port(text: str, hostport: str, default: int) -> tuple[str, int]:
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except (OSError, ValueError):
            raise BadUrl(text, f"[{host}] is not an IPv6 address", "use e.g. http://[fd00::1]/live.img") from None
        if not bracket or (after and not after.startswith(":")):
            raise BadUrl(text, "the IPv6 address is not closed by ]", "use e.g. http://[fd00::1]:8080/live.img")
        port_text = after[1:] if after else ""
    else:
        host, _, port_text = hostport.partition(":")
        if not host:
            raise BadUrl(text, "the URL names no server", EXAMPLE)
        if not set(host) <= _HOST_CHARS or host.startswith(("-", ".")):
            raise BadUrl(text, f"{host!r} is not a host name or an address", EXAMPLE)
    if not port_text:
        if hostport.endswith(":"):
            raise BadUrl(text, "the port after ':' is empty", EXAMPLE)
        return host, default
    if not port_text.isdigit() or not 0 < int(port_text) < 65536 or not port_text.isascii():
        raise BadUrl(text, f"{port_text!r} is not a port number (1-65535)", EXAMPLE)
    return host, int(port_text)


def _check_escapes(text: str, path: str) -> None:
    parts = path.split("%")
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise BadUrl(text, "a % in the path is not followed by two hex digits", "write a % as %25")

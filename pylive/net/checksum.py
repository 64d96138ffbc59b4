"""Checksums of a network image (pure): `sha256:<hex>`, `sha512:<hex>`, `md5:<hex>`, or the URL of a
checksum file (`sha256sum` lines `<hex>  <name>`, or BSD lines `SHA256 (<name>) = <hex>` as in
Fedora's CHECKSUM files) in which the line for the image's file name gives the value.

The digest is taken while the image is downloaded (Digest). hashlib uses OpenSSL's _hashlib when the
binary has it and the built-in _sha256/_sha512/_md5 modules otherwise (the Makefile's NOFOLLOW).
"""

from __future__ import annotations

from pylive.net.errors import BadUrl, NetError
from pylive.net.url import NetUrl, parse_url
from pylive.record import record

HEX_LENGTHS = {"md5": 32, "sha256": 64, "sha512": 128}
EXAMPLE = "sha256:<64 hex digits>, or the URL of a SHA256SUMS file"


@record
class ChecksumSpec:
    """A checksum to verify: the value itself (`algorithm`, `hexdigest`), or `url`, a checksum file."""

    algorithm: str = ""
    hexdigest: str = ""
    url: NetUrl | None = None

    @property
    def text(self) -> str:
        return self.url.text if self.url is not None else f"{self.algorithm}:{self.hexdigest}"


class ChecksumError(NetError):
    """A checksum value or file that cannot be used."""


def parse_checksum(text: str, option: str = "checksum") -> ChecksumSpec:
    """`sha256:<hex>` (sha512, md5) or a URL; ChecksumError naming `option` otherwise."""
    algorithm, colon, value = text.partition(":")
    if colon and algorithm.lower() in HEX_LENGTHS:
        algorithm = algorithm.lower()
        value = value.lower()
        if len(value) != HEX_LENGTHS[algorithm] or not _is_hex(value):
            raise ChecksumError(f"{option}={text[:80]}: a {algorithm} checksum is {HEX_LENGTHS[algorithm]} hex digits",
                                f"use e.g. {EXAMPLE}")
        return ChecksumSpec(algorithm, value)
    try:
        return ChecksumSpec(url=parse_url(text))
    except BadUrl as e:
        raise ChecksumError(f"{option}={text[:80]}: neither a checksum nor a URL ({e.message})",
                            f"use e.g. {EXAMPLE}") from None


def find_in_sum_file(content: str, file_name: str, source: str) -> ChecksumSpec:
    """The checksum a `sha256sum`/`sha512sum`/`md5sum` or BSD-style file gives for `file_name`
    (PGP-signed files included: the armour lines are ignored). The algorithm comes from the BSD tag,
    or else from the length of the digest."""
    for raw in content.splitlines():
        line = raw.strip()
        bsd = _bsd_line(line)
        if bsd is not None:
            algorithm, name, value = bsd
        else:
            value, _, name = line.partition(" ")
            name = name.lstrip(" ").removeprefix("*")  # `<hex> *<name>`: binary mode
            algorithm = next((a for a, n in HEX_LENGTHS.items() if n == len(value)), "")
        if name.removeprefix("./").rpartition("/")[2] != file_name or not algorithm or not _is_hex(value):
            continue
        if len(value) != HEX_LENGTHS[algorithm]:
            continue
        return ChecksumSpec(algorithm, value.lower())
    raise ChecksumError(f"{source}: no checksum for {file_name} in it",
                        "give the checksum file of this image's release, or sha256:<hex>")


class Digest:
    """The running digest of the bytes downloaded so far; reset() when a download starts over."""

    def __init__(self, algorithm: str) -> None:
        import hashlib  # only with a checksum: OpenSSL's _hashlib loads libcrypto (about 6 ms, PYTHONPROFILEIMPORTTIME)

        self.algorithm = algorithm
        self._new = hashlib.new
        self._hash = hashlib.new(algorithm)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    def reset(self) -> None:
        self._hash = self._new(self.algorithm)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _bsd_line(line: str) -> tuple[str, str, str] | None:
    """`SHA256 (name) = hex` as (algorithm, name, hex)."""
    tag, space, rest = line.partition(" (")
    name, sep, value = rest.rpartition(") = ")
    if not space or not sep or tag.lower() not in HEX_LENGTHS:
        return None
    return tag.lower(), name, value.strip()


def _is_hex(value: str) -> bool:
    return bool(value) and all(c in "0123456789abcdefABCDEF" for c in value)

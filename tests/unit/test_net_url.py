"""Network image URLs and checksum specs (pure)."""

from __future__ import annotations

import pytest

from pylive.net.checksum import ChecksumError, ChecksumSpec, find_in_sum_file, parse_checksum
from pylive.net.errors import BadUrl
from pylive.net.url import NetUrl, join, parse_url, unquote


@pytest.mark.parametrize(("text", "want"), [
    ("http://192.168.1.1/LiveOS/squashfs.img", ("http", "192.168.1.1", 80, "/LiveOS/squashfs.img", "", "")),
    ("HTTPS://Mirror.example.org:8443/f%20x.iso?x=1", ("https", "Mirror.example.org", 8443, "/f%20x.iso?x=1", "", "")),
    ("ftp://u%40x:p%3Aw@[fd00::1]:2121/pub/live.img", ("ftp", "fd00::1", 2121, "/pub/live.img", "u@x", "p:w")),
    ("tftp://10.0.2.2/live.img", ("tftp", "10.0.2.2", 69, "/live.img", "", "")),
    ("nfs://server/export/live/", ("nfs", "server", 2049, "/export/live/", "", "")),
    ("http://h/a.img#frag", ("http", "h", 80, "/a.img", "", "")),
])
def test_parse(text: str, want: tuple[str, str, int, str, str, str]) -> None:
    url = parse_url(text)
    assert (url.scheme, url.host, url.port, url.path, url.user, url.password) == want
    assert url.text == text


@pytest.mark.parametrize(("text", "problem"), [
    ("live:CDLABEL=x", "not a URL pylive can fetch (http, https, ftp, tftp or nfs)"),
    ("gopher://h/x.img", "not a URL pylive can fetch"),
    ("http:///x.img", "the URL names no server"),
    ("http://h", "the URL names no file on the server"),
    ("http://h/", "the URL names no file on the server"),
    ("http://h/dir/", "the URL names a directory, not an image file"),
    ("http://h:0/x.img", "'0' is not a port number (1-65535)"),
    ("http://h:99999/x.img", "'99999' is not a port number"),
    ("http://h:/x.img", "the port after ':' is empty"),
    ("http://[fd00::1/x.img", "the IPv6 address is not closed by ]"),
    ("http://[nothex]/x.img", "[nothex] is not an IPv6 address"),
    ("http://h_ö/x.img", "'h_ö' is not a host name or an address"),
    ("http://h/x y.img", "a URL cannot hold spaces or control characters"),
    ("http://h/x%zz.img", "a % in the path is not followed by two hex digits"),
])
def test_bad_urls_one_line(text: str, problem: str) -> None:
    with pytest.raises(BadUrl) as e:
        parse_url(text)
    line = str(e.value)
    assert line.startswith(f"{text}: {problem}") and "\n" not in line


def test_file_names_and_hosts() -> None:
    url = parse_url("http://[fd00::1]:8080/LiveOS/my%20image.img?token=1")
    assert url.file_path == "/LiveOS/my image.img" and url.file_name == "my image.img"
    assert url.host_port == "[fd00::1]:8080"
    assert parse_url("https://h:443/x").host_port == "h"
    assert unquote("%e2%82%ac%41%") == "€A%"


def test_join_redirects() -> None:
    base = parse_url("http://h:81/a/b/c.img")
    assert join(base, "/d.img") == NetUrl(base.text, "http", "h", 81, "/d.img")
    assert join(base, "e.img").path == "/a/b/e.img"
    assert join(base, "//m:82/x.img").host_port == "m:82"
    assert join(base, "https://m/x.img").scheme == "https"


SHA = "a" * 64


def test_checksum_values() -> None:
    assert parse_checksum(f"SHA256:{SHA.upper()}") == ChecksumSpec("sha256", SHA)
    assert parse_checksum("md5:" + "0" * 32).algorithm == "md5"
    assert parse_checksum("http://h/SHA256SUMS").url == parse_url("http://h/SHA256SUMS")
    with pytest.raises(ChecksumError, match=r"^rd.live.checksum=sha256:abc: a sha256 checksum is 64 hex digits: use"):
        parse_checksum("sha256:abc", "rd.live.checksum")
    with pytest.raises(ChecksumError, match=r"^checksum=crc:1: neither a checksum nor a URL \(crc:1: not a URL"):
        parse_checksum("crc:1")


def test_checksum_files() -> None:
    gnu = f"{'b' * 64}  other.img\n{SHA} *LiveOS/squashfs.img\n"
    assert find_in_sum_file(gnu, "squashfs.img", "S") == ChecksumSpec("sha256", SHA)
    bsd = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# Fedora-Live.iso: 2147483648 bytes\n"
           f"SHA256 (Fedora-Live.iso) = {SHA}\n-----BEGIN PGP SIGNATURE-----\nxyz\n")
    assert find_in_sum_file(bsd, "Fedora-Live.iso", "S") == ChecksumSpec("sha256", SHA)
    assert find_in_sum_file(f"{'c' * 128}  x.img\n", "x.img", "S").algorithm == "sha512"
    with pytest.raises(ChecksumError, match=r"^http://h/SUMS: no checksum for y.img in it: give the checksum file"):
        find_in_sum_file(gnu, "y.img", "http://h/SUMS")

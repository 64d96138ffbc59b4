"""fetch() over HTTP(S) against servers on 127.0.0.1: resume, redirects, statuses, room, mirrors,
checksums, TLS, progress, and the one line each failure gives."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pylive.net.checksum import parse_checksum
from pylive.net.errors import AllMirrorsFailed, ChecksumMismatch, FetchFailed, NetError, TooLarge
from pylive.net.fetch import Fetched, RetryPolicy, fetch
from pylive.progress import Display, Meter, Watch

from .netservers import Files, closed_port, http_server, self_signed

MIB = 1 << 20
IMAGE = os.urandom(3 * MIB + 12345)
FAST = RetryPolicy(tries=3, first_delay_s=0.0, max_failures=6)


@pytest.fixture
def files() -> Files:
    return Files({"/LiveOS/squashfs.img": IMAGE, "/small.img": b"x" * 1000,
                  "/SHA256SUMS": f"{hashlib.sha256(IMAGE).hexdigest()}  squashfs.img\n".encode()})


@pytest.fixture
def server(files: Files) -> Iterator[str]:
    with http_server(files) as base:
        yield base


def _fetch(url: str | list[str], tmp_path: Path, **kw: object) -> Fetched:
    kw.setdefault("retry", FAST)
    return fetch(url, str(tmp_path / "img"), sleep=lambda s: None, timeout_s=5.0, **kw)  # type: ignore[arg-type]


def test_whole_image(server: str, tmp_path: Path) -> None:
    got = _fetch(f"{server}/LiveOS/squashfs.img", tmp_path)
    assert (tmp_path / "img").read_bytes() == IMAGE
    assert got.size == len(IMAGE) and got.url == f"{server}/LiveOS/squashfs.img" and got.digest is None
    assert not (tmp_path / "img.part").exists()


def test_resumes_with_range_after_a_drop(server: str, files: Files, tmp_path: Path,
                                         pylive_logs: pytest.LogCaptureFixture) -> None:
    files.drop_after["/LiveOS/squashfs.img"] = [MIB + 7, 2 * MIB + 100]
    got = _fetch(f"{server}/LiveOS/squashfs.img", tmp_path, checksum=f"sha256:{hashlib.sha256(IMAGE).hexdigest()}")
    assert (tmp_path / "img").read_bytes() == IMAGE
    assert got.digest == hashlib.sha256(IMAGE).hexdigest()
    assert [r for _, r in files.requests] == ["", f"bytes={MIB + 7}-", f"bytes={2 * MIB + 100}-"]
    retries = [r.getMessage() for r in pylive_logs.records if "try 2 of 3" in r.getMessage()]
    assert len(retries) == 2 and "the server closed the connection at 1 of 3 MiB" in retries[0], retries
    assert "resuming at 1 MiB" in retries[0]


def test_a_server_without_range_starts_again(server: str, files: Files, tmp_path: Path) -> None:
    files.drop_after["/LiveOS/squashfs.img"] = [MIB]
    sha = "sha256:" + hashlib.sha256(IMAGE).hexdigest()
    got = _fetch(f"{server}/norange/LiveOS/squashfs.img", tmp_path, checksum=sha)
    assert (tmp_path / "img").read_bytes() == IMAGE and got.size == len(IMAGE)


def test_gives_up_after_the_retries(server: str, files: Files, tmp_path: Path) -> None:
    files.drop_after["/LiveOS/squashfs.img"] = [100, 100, 100, 100]
    with pytest.raises(NetError) as e:
        _fetch(f"{server}/LiveOS/squashfs.img", tmp_path)
    assert str(e.value).startswith(f"{server}/LiveOS/squashfs.img: the server closed the connection at 0 of 3 MiB "
                                   "(gave up after 3 tries in ")
    assert not (tmp_path / "img").exists() and not (tmp_path / "img.part").exists()


def test_chunked_and_redirects(server: str, files: Files, tmp_path: Path) -> None:
    _fetch(f"{server}/redirect/3/chunked/LiveOS/squashfs.img", tmp_path)
    assert (tmp_path / "img").read_bytes() == IMAGE
    assert [p for p, _ in files.requests][:4] == ["/redirect/3/chunked/LiveOS/squashfs.img",
                                                  "/redirect/2/chunked/LiveOS/squashfs.img",
                                                  "/redirect/1/chunked/LiveOS/squashfs.img",
                                                  "/redirect/0/chunked/LiveOS/squashfs.img"]


def test_too_many_redirects(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match=r"/redirect/9/small.img: more than 5 redirects: give the final URL"):
        _fetch(f"{server}/redirect/9/small.img", tmp_path)


@pytest.mark.parametrize(("status", "line"), [
    (404, "HTTP 404 Not Found: check the path in the URL"),
    (403, "HTTP 403 Forbidden: check the server's permissions"),
    (500, "HTTP 500 Internal Server Error (a server error) (gave up after 3 tries"),
])
def test_http_errors(server: str, tmp_path: Path, status: int, line: str) -> None:
    with pytest.raises(NetError) as e:
        _fetch(f"{server}/status/{status}", tmp_path)
    assert str(e.value).startswith(f"{server}/status/{status}: {line}")


def test_not_found_is_not_retried(server: str, files: Files, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match="HTTP 404"):
        _fetch(f"{server}/nothing.img", tmp_path)
    assert len(files.requests) == 1


def test_too_large_is_refused_before_the_download(server: str, files: Files, tmp_path: Path) -> None:
    with pytest.raises(TooLarge) as e:
        _fetch([f"{server}/LiveOS/squashfs.img", f"{server}/small.img"], tmp_path, room_bytes=lambda: 2 * MIB)
    assert str(e.value) == (f"{server}/LiveOS/squashfs.img: the image is 4 MiB, only 2 MiB of RAM can hold it: "
                            "give the machine more memory, or lower rd.minmem")
    assert len(files.requests) == 1  # neither read whole nor the next mirror tried
    assert not (tmp_path / "img.part").exists()


def test_mirrors_in_order_each_failure_named(server: str, tmp_path: Path,
                                             pylive_logs: pytest.LogCaptureFixture) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/LiveOS/squashfs.img"
    got = _fetch([f"{server}/missing.img", dead, f"{server}/LiveOS/squashfs.img"], tmp_path)
    assert got.url == f"{server}/LiveOS/squashfs.img"
    warnings = [r.getMessage() for r in pylive_logs.records if "trying the next URL" in r.getMessage()]
    assert len(warnings) == 2 and "HTTP 404" in warnings[0] and "connection refused by 127.0.0.1:" in warnings[1]


def test_all_mirrors_failing(server: str, tmp_path: Path) -> None:
    port = closed_port()
    with pytest.raises(AllMirrorsFailed) as e:
        _fetch([f"{server}/missing.img", f"http://127.0.0.1:{port}/x.img"], tmp_path)
    assert str(e.value).startswith(f"no URL gave the image: {server}/missing.img: HTTP 404 Not Found; "
                                   f"http://127.0.0.1:{port}/x.img: connection refused by 127.0.0.1:{port} "
                                   "(gave up after 3 tries")


def test_dns_failure(tmp_path: Path) -> None:
    with pytest.raises(NetError, match=r"http://no-such-host.invalid/x.img: cannot resolve no-such-host.invalid \(.*"
                                       r"check the DNS server"):
        _fetch("http://no-such-host.invalid/x.img", tmp_path, retry=RetryPolicy(tries=1))


def test_checksum_value_and_file(server: str, tmp_path: Path) -> None:
    got = _fetch(f"{server}/LiveOS/squashfs.img", tmp_path, checksum=f"{server}/SHA256SUMS")
    assert got.digest == hashlib.sha256(IMAGE).hexdigest()
    sha512 = hashlib.sha512(IMAGE).hexdigest()
    assert _fetch(f"{server}/LiveOS/squashfs.img", tmp_path, checksum=f"sha512:{sha512}").digest == sha512


def test_checksum_mismatch_leaves_no_image(server: str, tmp_path: Path) -> None:
    wrong = "sha256:" + "ab" * 32
    with pytest.raises(ChecksumMismatch) as e:
        _fetch(f"{server}/LiveOS/squashfs.img", tmp_path, checksum=parse_checksum(wrong))
    assert str(e.value).startswith(f"{server}/LiveOS/squashfs.img: sha256 checksum mismatch (expected abababab")
    assert list(tmp_path.iterdir()) == []


def test_checksum_file_without_the_image(server: str, tmp_path: Path) -> None:
    with pytest.raises(NetError, match=r"SHA256SUMS: no checksum for small.img in it"):
        _fetch(f"{server}/small.img", tmp_path, checksum=f"{server}/SHA256SUMS")


def test_progress(server: str, files: Files, tmp_path: Path) -> None:
    """The RAM copy's progress line (pylive.progress), opened once with the size, across a resume, and closed."""
    lines: list[str] = []
    opened: list[tuple[str, int]] = []

    @contextmanager
    def progress(what: str, total: int) -> Iterator[Watch]:
        opened.append((what, total))
        with Watch(Meter(what, total, time.monotonic()), Display(lines.append, overwrite=False, every_s=0.0)) as w:
            yield w
        lines.append("closed")

    files.drop_after["/LiveOS/squashfs.img"] = [2 * MIB]
    _fetch(f"{server}/LiveOS/squashfs.img", tmp_path, progress=progress)
    assert opened == [("downloading squashfs.img", len(IMAGE))]
    assert lines[-2].startswith("downloading squashfs.img: 100% of 4 MiB in ") and lines[-1] == "closed"


def test_tls_verification(tmp_path: Path, files: Files, pylive_logs: pytest.LogCaptureFixture) -> None:
    cert, key = self_signed(tmp_path)
    with http_server(files, tls=(cert, key)) as base:
        url = f"{base}/small.img"
        with pytest.raises(FetchFailed, match=r"TLS: the server's certificate cannot be verified \(.*rd.noverifyssl"):
            _fetch(url, tmp_path, ca_file="/etc/ssl/certs/ca-certificates.crt")
        assert _fetch(url, tmp_path, ca_file=str(cert)).size == 1000
        localhost = url.replace("127.0.0.1", "localhost")
        assert _fetch(localhost, tmp_path, ca_file=str(cert)).size == 1000
        assert _fetch(url, tmp_path, verify_tls=False).size == 1000
    assert any("certificate is not verified" in r.getMessage() for r in pylive_logs.records)


def test_a_server_that_never_answers(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.img"
        with pytest.raises(NetError) as e:
            fetch(url, str(tmp_path / "img"), timeout_s=0.3, retry=RetryPolicy(tries=2, first_delay_s=0.0))
    assert str(e.value).startswith(f"{url}: the server sent nothing for 0.3s after 0 MiB (gave up after 2 tries in ")


def test_write_failures_are_one_line(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match=r"/small.img: cannot write .*/no/dir/img.part \(No such file or direc"):
        fetch(f"{server}/small.img", str(tmp_path / "no/dir/img"))
    if Path("/dev/full").exists():  # ENOSPC on the first write
        (tmp_path / "full.part").symlink_to("/dev/full")
        with pytest.raises(FetchFailed, match=r"cannot write .* \(No space left on device\): the image does not fit"):
            fetch(f"{server}/small.img", str(tmp_path / "full"))


@pytest.mark.parametrize("pieces", [(100_000, 300_000, 150_000, 50_000), (500, 500), (300_000,)])
def test_a_body_in_pieces_on_a_connection_kept_open_ends_without_waiting(tmp_path: Path,
                                                                       pieces: tuple[int, ...]) -> None:
    """The reads wait for 256 KiB at a time (SO_RCVLOWAT), never for bytes that will not come: the
    server sends the first piece with the headers, the rest with pauses, then keeps the connection
    open (it ignores Connection: close): the download ends with the last byte, not at the timeout."""
    body = os.urandom(sum(pieces))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            start = 0
            for i, size in enumerate(pieces):
                conn.sendall((head if i == 0 else b"") + body[start : start + size])
                start += size
                time.sleep(0.1)
            time.sleep(8)

    import threading

    threading.Thread(target=serve, daemon=True).start()
    t0 = time.monotonic()
    got = fetch(f"http://127.0.0.1:{port}/x.img", str(tmp_path / "x.img"), timeout_s=5, retry=FAST)
    assert time.monotonic() - t0 < 3
    assert got.size == len(body) and (tmp_path / "x.img").read_bytes() == body
    listener.close()

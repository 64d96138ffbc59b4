"""fetch() over FTP (passive, SIZE, REST) and TFTP (blksize, tsize, retransmission) against servers
on 127.0.0.1 (tests/unit/netservers.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pylive.net.errors import FetchFailed, NetError, TooLarge
from pylive.net.fetch import RetryPolicy, fetch
from pylive.net.stream import Options
from pylive.net.tftp import TftpStream
from pylive.net.url import parse_url

from .netservers import FtpServer, TftpServer, closed_port

MIB = 1 << 20
IMAGE = os.urandom(2 * MIB + 777)
FAST = RetryPolicy(tries=3, first_delay_s=0.0)


def _fetch(url: str, tmp_path: Path, **kw: object) -> int:
    got = fetch(url, str(tmp_path / "img"), retry=FAST, sleep=lambda s: None, timeout_s=3.0, **kw)  # type: ignore[arg-type]
    assert (tmp_path / "img").read_bytes() == IMAGE
    return got.size


def test_ftp_download_and_resume(tmp_path: Path, pylive_logs: pytest.LogCaptureFixture) -> None:
    server = FtpServer({"pub/live.img": IMAGE}, drop_after={"pub/live.img": MIB + 5})
    try:
        sha = hashlib.sha256(IMAGE).hexdigest()
        assert _fetch(f"ftp://127.0.0.1:{server.port}/pub/live.img", tmp_path, checksum=f"sha256:{sha}") == len(IMAGE)
    finally:
        server.close()
    assert "USER anonymous" in server.commands and "SIZE pub/live.img" in server.commands
    assert f"REST {MIB + 5}" in server.commands and server.commands.count("RETR pub/live.img") == 2
    assert any("the server closed the connection at 1 of 2 MiB; try 2 of 3 in 0s, resuming at 1 MiB" in r.getMessage()
               for r in pylive_logs.records)


def test_ftp_missing_file_and_size(tmp_path: Path) -> None:
    server = FtpServer({"live.img": IMAGE})
    try:
        with pytest.raises(FetchFailed, match=r"/nothing.img: FTP 550 no such file: check the path in the URL"):
            _fetch(f"ftp://127.0.0.1:{server.port}/nothing.img", tmp_path)
        with pytest.raises(TooLarge, match=r"the image is 3 MiB, only 1 MiB of RAM can hold it"):
            _fetch(f"ftp://127.0.0.1:{server.port}/live.img", tmp_path, room_bytes=MIB)
    finally:
        server.close()
    assert server.commands.count("RETR live.img") == 1  # refused on SIZE: the data was never read


def test_tftp_with_options_and_a_lost_packet(tmp_path: Path) -> None:
    server = TftpServer({"boot/live.img": IMAGE}, lose=(3, 1000))
    try:
        stream = TftpStream(parse_url(f"tftp://127.0.0.1:{server.port}/boot/live.img"), Options(timeout_s=3.0),
                            retransmit_s=0.2)
        got = bytearray()
        buf = memoryview(bytearray(MIB))
        while n := stream.readinto(buf):
            got += buf[:n]
        stream.close()
        assert bytes(got) == IMAGE and stream.size == len(IMAGE) and stream.blksize == 1468
        assert not server.lose  # both losses happened and were recovered
    finally:
        server.close()
    assert server.requests[0] == {"name": "boot/live.img", "blksize": "1468", "tsize": "0"}


def test_tftp_block_numbers_wrap(tmp_path: Path) -> None:
    data = IMAGE[: 8 * 70000 + 3]  # 70001 blocks of 8 bytes: the block number goes past 65535 to 0
    server = TftpServer({"x.img": data}, max_blksize=8)
    try:
        got = fetch(f"tftp://127.0.0.1:{server.port}/x.img", str(tmp_path / "x"), timeout_s=3.0)
    finally:
        server.close()
    assert (tmp_path / "x").read_bytes() == data and got.size == len(data)


def test_tftp_rfc1350_server(tmp_path: Path) -> None:
    small = IMAGE[: 40000]
    server = TftpServer({"x.img": small}, options=False)  # RFC 1350 only: 512-byte blocks, no size
    try:
        got = fetch(f"tftp://127.0.0.1:{server.port}/x.img", str(tmp_path / "x"), timeout_s=3.0)
    finally:
        server.close()
    assert (tmp_path / "x").read_bytes() == small and got.size == len(small)


def test_tftp_size_refused_and_missing(tmp_path: Path) -> None:
    server = TftpServer({"live.img": IMAGE})
    try:
        with pytest.raises(TooLarge, match=r"tftp://127.0.0.1:\d+/live.img: the image is 3 MiB, only 1 MiB"):
            _fetch(f"tftp://127.0.0.1:{server.port}/live.img", tmp_path, room_bytes=MIB)
        with pytest.raises(FetchFailed, match=r"/no.img: TFTP error 1 \(File not found\): check the path"):
            _fetch(f"tftp://127.0.0.1:{server.port}/no.img", tmp_path)
    finally:
        server.close()


def test_tftp_no_server(tmp_path: Path) -> None:
    url = f"tftp://127.0.0.1:{closed_port()}/x.img"
    with pytest.raises(NetError, match=r"x.img: (no answer from|cannot connect to) 127.0.0.1:\d+"):
        fetch(url, str(tmp_path / "x"), timeout_s=0.5, retry=RetryPolicy(tries=1))

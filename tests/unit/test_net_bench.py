"""`pylive bench-fetch`: pylive's download of a URL, timed, against a server on 127.0.0.1."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pylive.__main__ import main
from pylive.net.bench import bench, report

from .netservers import Files, closed_port, http_server

DATA = os.urandom(2 * (1 << 20) + 7)


def test_each_run_downloads_the_whole_file_and_leaves_nothing(tmp_path: Path) -> None:
    files = Files({"/big.img": DATA})
    with http_server(files) as base:
        results = bench(f"{base}/big.img", str(tmp_path), 3)
    assert [r.size for r in results] == [len(DATA)] * 3
    assert [p for p, _ in files.requests] == ["/big.img"] * 3
    assert list(tmp_path.iterdir()) == []
    lines = report(results).splitlines()
    assert len(lines) == 3
    assert all(re.fullmatch(rf"run={i} bytes={len(DATA)} seconds=\d+\.\d{{3}} mib_s=\d+\.\d", ln)
               for i, ln in enumerate(lines, 1)), lines


def test_the_command_prints_the_runs_and_a_failure_in_one_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with http_server(Files({"/a.img": DATA})) as base:
        assert main(["bench-fetch", f"{base}/a.img", "--dest-dir", str(tmp_path), "--runs", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in out] == [["run=1", f"bytes={len(DATA)}"], ["run=2", f"bytes={len(DATA)}"]]
    url = f"http://127.0.0.1:{closed_port()}/a.img"
    assert main(["bench-fetch", url, "--dest-dir", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "connection refused" in err[0] and "gave up after 1 tries" in err[0], err
    assert list(tmp_path.iterdir()) == []

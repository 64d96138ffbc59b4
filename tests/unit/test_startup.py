"""What a cold start imports. `make bench` measures the time; this keeps the heavy modules off the
two paths that count: the cmdline hook (once per boot) and `pylive explain`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pylive.log import WARNING, log, log_setup

ROOT = Path(__file__).resolve().parents[2]
TYPICAL = "BOOT_IMAGE=/vmlinuz root=live:CDLABEL=Fedora-WS-Live-40 rd.live.image rd.live.overlay.size=4096 quiet rhgb"
NEVER = {"argparse", "logging", "typing", "difflib", "tempfile", "shutil", "subprocess", "dataclasses", "lark"}


def _imported(argv: list[str]) -> set[str]:
    code = f"import sys; from pylive.__main__ import main; main({argv!r}); print(*sys.modules)"
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return set(proc.stdout.splitlines()[-1].split())


@pytest.mark.skipif(not (ROOT / "pylive/_cmdline_parser.py").exists(), reason="no generated parser (make grammar)")
@pytest.mark.parametrize(("argv", "not_imported"), [
    (["cmdline-hook", "--cmdline", TYPICAL], NEVER | {"json", "pathlib"}),
    (["explain", "--cmdline", TYPICAL], NEVER),
], ids=lambda v: v[0] if isinstance(v, list) else "")
def test_start_up_imports(argv: list[str], not_imported: set[str]) -> None:
    assert _imported(argv) & not_imported == set()


def test_the_run_imports_the_media_check_only_for_it() -> None:
    """`pylive run` starts once per boot: the implanted-MD5 reader (with hashlib) waits for rd.live.check, and
    typing (for the type checker only) is never imported; the kernel layer is imported as the run does."""
    code = ("import sys, pylive.boot, pylive.system, pylive.health.leave, pylive.linux.loop, pylive.linux.dm, "
            "pylive.linux.mount, pylive.linux.console; print(*sys.modules)")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert set(proc.stdout.split()) & {"pylive.isomd5", "hashlib", "typing"} == set()


def test_records_below_the_level_are_dropped_the_rest_go_to_stderr(capsys) -> None:
    log_setup(kmsg=False, level=WARNING)
    log.info("not shown")
    log.warning("shown %s", 1)
    log.error("failed")
    assert capsys.readouterr().err == "warning: shown 1\nerror: failed\n"

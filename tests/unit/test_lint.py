"""Linters as tests: the shell that ends up in the initramfs must be shellcheck-clean."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SH_SCRIPTS = sorted((ROOT / "dracut-module/90pylive").glob("*.sh")) + sorted((ROOT / "qemu/guest").glob("*.sh"))


@pytest.mark.skipif(shutil.which("shellcheck") is None and not os.environ.get("CI"), reason="shellcheck not installed")
@pytest.mark.parametrize("script", SH_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    shell = "bash" if script.name == "module-setup.sh" else "sh"
    proc = subprocess.run(["shellcheck", "-s", shell, str(script)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout

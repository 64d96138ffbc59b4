"""Linters as tests: the shell that ends up in the initramfs must be shellcheck-clean, and the Python
ruff- and mypy-clean (configuration in pyproject.toml)."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SH_SCRIPTS = (sorted((ROOT / "dracut-module").glob("*/*.sh")) + sorted((ROOT / "qemu/guest").glob("*.sh"))
              + [ROOT / "packaging/dracut/50-pylive.conf"])


def _missing(module: str) -> bool:
    """True when a linter is not installed; under CI (env CI set) a missing linter fails instead of skipping."""
    return importlib.util.find_spec(module) is None and not os.environ.get("CI")


@pytest.mark.skipif(shutil.which("shellcheck") is None and not os.environ.get("CI"), reason="shellcheck not installed")
@pytest.mark.parametrize("script", SH_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    shell = "bash" if script.name in ("module-setup.sh", "50-pylive.conf") else "sh"
    proc = subprocess.run(["shellcheck", "-s", shell, str(script)], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    assert proc.returncode == 0, proc.stdout


def _run_linter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.mark.skipif(_missing("ruff"), reason="ruff not installed (pip install -r requirements-dev.txt)")
def test_ruff() -> None:
    proc = _run_linter("ruff", "check", "--no-fix", "pylive", "qemu", "tests", "cmdline_grammar", "packaging")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(_missing("mypy"), reason="mypy not installed (pip install -r requirements-dev.txt)")
def test_mypy() -> None:
    proc = _run_linter("mypy", "pylive", "qemu", "cmdline_grammar", "packaging")
    assert proc.returncode == 0, proc.stdout + proc.stderr

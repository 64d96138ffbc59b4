"""What the packages ship: pylive(8) and the bash completion made from the parser (packaging/docgen.py)."""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pylive import errors
from pylive.__main__ import _parser
from pylive.options import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

_spec = importlib.util.spec_from_file_location("docgen", ROOT / "packaging/docgen.py")
assert _spec and _spec.loader
docgen = importlib.util.module_from_spec(_spec)
sys.modules["docgen"] = docgen  # dataclasses look their module up there
_spec.loader.exec_module(docgen)


def _tool(name: str) -> str:
    """The tool's path; a skip when it is missing, a failure under CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not installed (CI is set)")
        pytest.skip(f"{name} not installed")
    return path


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _visible_options(p: argparse.ArgumentParser) -> list[str]:
    return [s for a in p._actions if a.help != argparse.SUPPRESS for s in a.option_strings]


# the man page


def test_manpage_names_every_command_option_kernel_option_and_exit_code() -> None:
    page = docgen.manpage(_parser(), README)
    for name, p in _subcommands().items():
        assert docgen.roff_code(name) in page
        for option in _visible_options(p):
            assert docgen.roff_code(option) in page, (name, option)
        for a in p._actions:
            if a.help and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction):
                assert docgen.roff_escape(a.help) in page, (name, a.help)
    assert "--root" not in page.replace("\\-", "-")  # hidden from --help, so from the man page too
    for o in OPTIONS:
        assert f".TP\n{docgen.roff_code(o.name)}\n" in page
        assert docgen.roff_inline(o.help) in page
    for name, code in vars(errors).items():
        if name.startswith("EXIT_"):
            assert f".TP\n\\fB{code}\\fR\n{docgen.EXIT_STATUS[name]}" in page


def test_manpage_description_is_readmes_opening() -> None:
    page = docgen.manpage(_parser(), README)
    first = README.split("\n\n")[1]  # after the title: "pylive boots Fedora-style *LiveOS* media …"
    assert docgen.roff_inline(" ".join(first.split())) in page


def test_readme_markdown_to_roff() -> None:
    readme = "# pylive\n\nIt mounts `LiveOS/squashfs.img`, *quickly*:\n- a `--flag`;\n- a\n  long item\n\n## Next\n"
    assert docgen.readme_description(readme) == [
        ".PP", "It mounts \\fBLiveOS/squashfs.img\\fR, \\fIquickly\\fR:",
        ".IP \\(bu 2", "a \\fB\\-\\-flag\\fR;", ".IP \\(bu 2", "a long item",
    ]
    assert docgen.roff_line(".x") == "\\&.x" and docgen.roff_line("'x") == "\\&'x"
    assert docgen.roff_escape("a\\x20…") == "a\\ex20\\[u2026]"


def test_an_option_without_help_stops_the_generator() -> None:
    parser = argparse.ArgumentParser(prog="pylive")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="set up").add_argument("--newroot")
    with pytest.raises(ValueError, match=r"pylive run: \['--newroot'\] has no help text"):
        docgen.manpage(parser, README)


def test_an_exit_code_without_a_description_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "EXIT_NEW", 9, raising=False)
    with pytest.raises(ValueError, match="EXIT_NEW has no line"):
        docgen.manpage(_parser(), README)


def test_manpage_renders_without_warnings(tmp_path: Path) -> None:
    """As lintian checks a man page (manpage-has-errors-from-man): man's warnings are errors."""
    man = _tool("man")
    page = tmp_path / "pylive.8"
    page.write_text(docgen.manpage(_parser(), README, date="2025-01-01"), encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANROFFSEQ": "", "MANWIDTH": "80"}
    proc = subprocess.run([man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(page)], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = subprocess.run([man, "-l", str(page)], env={**env, "MANWIDTH": "200"}, capture_output=True, text=True,
                          check=True).stdout
    assert "pylive check-media FILE" in text and "rd.live.overlay.size" in text and "2025-01-01" in text


# the bash completion


def _complete(tmp_path: Path, *words: str) -> list[str]:
    """What `pylive <words><TAB>` offers: the completion function run in bash on these COMP_WORDS."""
    bash = _tool("bash")
    script = tmp_path / "pylive.bash"
    script.write_text(docgen.bash_completion(_parser()))
    run = ('source "$1"; shift; COMP_WORDS=(pylive "$@"); COMP_CWORD=$#; COMPREPLY=(); _pylive; '
           'printf "%s\\n" "${COMPREPLY[@]}"; complete -p pylive >&2')
    proc = subprocess.run([bash, "--norc", "-c", run, "bash", str(script), *words], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert proc.stderr == "complete -F _pylive pylive\n"
    return [w for w in proc.stdout.splitlines() if w]


def test_completion_of_subcommands(tmp_path: Path) -> None:
    assert _complete(tmp_path, "ex") == ["explain"]
    assert _complete(tmp_path, "") == [*_subcommands(), "--help", "--version"]
    assert _complete(tmp_path, "--v") == ["--version"]
    assert _complete(tmp_path, "c") == ["cmdline-hook", "check-media"]


def test_completion_of_each_commands_options(tmp_path: Path) -> None:
    for name, p in _subcommands().items():
        options = [o for o in _visible_options(p) if o not in ("-h", "--help")]
        assert _complete(tmp_path, name, "--") == [*options, "--help"], name
    assert _complete(tmp_path, "explain", "--cmdline", "root=live:X", "--j") == ["--json"]
    assert _complete(tmp_path, "explain", "--cmdline", "") == []  # a command line is not guessed


def test_completion_of_paths(tmp_path: Path) -> None:
    (tmp_path / "live.iso").touch()
    (tmp_path / "livetree").mkdir()
    assert sorted(_complete(tmp_path, "explain", "--media", "liv")) == ["live.iso", "livetree"]
    assert _complete(tmp_path, "check-media", "live.") == ["live.iso"]
    assert _complete(tmp_path, "run", "--newroot", "liv") == ["livetree"]  # a directory
    assert _complete(tmp_path, "bench-copy", "--runs", "") == []


def test_completion_is_shellcheck_clean(tmp_path: Path) -> None:
    shellcheck = _tool("shellcheck")
    script = tmp_path / "pylive.bash"
    script.write_text(docgen.bash_completion(_parser()))
    proc = subprocess.run([shellcheck, "-s", "bash", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout

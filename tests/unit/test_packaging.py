"""What the packages ship: pylive(8) and the bash completion made from the parser (packaging/docgen.py),
and `make install` / `make uninstall` into a DESTDIR with a stand-in dist (no Nuitka build needed)."""

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
            if isinstance(a, argparse._SubParsersAction):  # verbs (pylive overlay inspect): each as a command
                for verb, vp in a.choices.items():
                    assert docgen.roff_code(f"{name} {verb}") in page
                    for option in _visible_options(vp):
                        assert docgen.roff_code(option) in page, (name, verb, option)
            elif a.help and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction):
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
    assert _complete(tmp_path, "up") == ["update-boot"]
    assert _complete(tmp_path, "update-boot", "--") == ["--dry-run", "--help"]  # --root stays hidden


def test_completion_of_each_commands_options(tmp_path: Path) -> None:
    for name, p in _subcommands().items():
        options = [o for o in _visible_options(p) if o not in ("-h", "--help")]
        assert _complete(tmp_path, name, "--") == [*options, "--help"], name
    assert _complete(tmp_path, "explain", "--cmdline", "root=live:X", "--j") == ["--json"]
    assert _complete(tmp_path, "explain", "--cmdline", "") == []  # a command line is not guessed


def test_completion_of_verbs(tmp_path: Path) -> None:
    assert _complete(tmp_path, "overlay", "") == ["inspect", "create", "resize", "merge", "--help"]
    assert _complete(tmp_path, "overlay", "inspect", "--") == ["--json", "--help"]
    assert _complete(tmp_path, "overlay", "merge", "--b") == ["--base"]


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


# make install / make uninstall


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not the outer make's jobs
    return subprocess.run([_tool("make"), "-s", "-C", str(ROOT), *args], env=env, capture_output=True, text=True,
                          check=False)


@pytest.fixture
def built(tmp_path: Path) -> list[str]:
    """A stand-in for `make binary docs`: the base and the full dist, whose binaries say which they are,
    a man page with the FILES lines, a completion; as make variables."""
    for name, extra in (("dist", "_ctypes.so"), ("net-dist", "_ssl.so")):
        dist = tmp_path / name
        dist.mkdir()
        (dist / "pylive").write_text(f'#!/bin/sh\necho "fake pylive ({name}) $*"\n')
        (dist / "pylive").chmod(0o755)
        (dist / extra).write_bytes(b"\x7fELF")
    (tmp_path / "pylive.8").write_text(".TH PYLIVE 8\n.SH FILES\n\\fB/usr/lib/pylive/\\fR\n"
                                       "\\fB/usr/lib/pylive\\-net/\\fR\n")
    (tmp_path / "pylive.bash").write_text("complete -F _pylive pylive\n")
    return [f"DIST={tmp_path / 'dist'}", f"NET_DIST={tmp_path / 'net-dist'}", f"MANPAGE={tmp_path / 'pylive.8'}",
            f"COMPLETION={tmp_path / 'pylive.bash'}"]


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else "dir" if p.is_dir() else oct(p.stat().st_mode & 0o777)
    return out


def _pylive_dist(module_setup: Path, function: str = "pylive_dist") -> str:
    """Where the installed dracut module takes a dist from (its pylive_dist or pylive_net_dist, PYLIVE_DIST
    and PYLIVE_NET_DIST unset)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYLIVE_DIST", "PYLIVE_NET_DIST")}
    return subprocess.run(["bash", "-c", f'source "$1"; {function}', "bash", str(module_setup)], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


MODULE = "usr/lib/dracut/modules.d/90pylive"
NET_MODULE = "usr/lib/dracut/modules.d/90pylive-net"


def test_install_then_uninstall_leaves_nothing(tmp_path: Path, built: list[str]) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    for target in ("install", "install-dracut-conf"):
        proc = _make(target, f"DESTDIR={dest}", *built)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    tree = _tree(dest)
    module_files = sorted(p.name for p in (ROOT / "dracut-module/90pylive").iterdir())
    net_module_files = sorted(p.name for p in (ROOT / "dracut-module/90pylive-net").iterdir())
    assert {k: v for k, v in tree.items() if v != "dir"} == {
        "usr/bin/pylive": "-> ../lib/pylive-net/pylive",
        "usr/lib/pylive/pylive": "0o755",
        "usr/lib/pylive/_ctypes.so": "0o644",
        "usr/lib/pylive-net/pylive": "0o755",
        "usr/lib/pylive-net/_ssl.so": "0o644",
        **{f"{MODULE}/{n}": "0o755" if n.endswith(".sh") else "0o644" for n in module_files},
        **{f"{NET_MODULE}/{n}": "0o755" if n.endswith(".sh") else "0o644" for n in net_module_files},
        "usr/lib/dracut/dracut.conf.d/50-pylive.conf": "0o644",
        "usr/share/man/man8/pylive.8": "0o644",
        "usr/share/bash-completion/completions/pylive": "0o644",
        "usr/share/doc/pylive/README.md": "0o644",
        "usr/share/doc/pylive/examples/50-pylive.conf": "0o644",
    }
    # the symlink runs the binary as itself (a Nuitka binary finds its dist through /proc/self/exe)
    assert subprocess.run([dest / "usr/bin/pylive", "--version"], capture_output=True, text=True,
                          check=True).stdout == "fake pylive (net-dist) --version\n"
    assert _pylive_dist(dest / MODULE / "module-setup.sh") == "/usr/lib/pylive"
    assert _pylive_dist(dest / MODULE / "module-setup.sh", "pylive_net_dist") == "/usr/lib/pylive-net"
    assert (dest / "usr/lib/dracut/dracut.conf.d/50-pylive.conf").read_text() == \
        (ROOT / "packaging/dracut/50-pylive.conf").read_text()

    proc = _make("uninstall", f"DESTDIR={dest}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _tree(dest) == {}


def test_install_elsewhere_points_the_module_and_man_page_there(tmp_path: Path, built: list[str]) -> None:
    dest = tmp_path / "dest"
    proc = _make("install", f"DESTDIR={dest}", "PREFIX=/opt/pl", "LIBDIR=/opt/pl/lib64", *built)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.readlink(dest / "opt/pl/bin/pylive") == "../lib64/pylive-net/pylive"
    setup = dest / "opt/pl/lib/dracut/modules.d/90pylive/module-setup.sh"
    assert _pylive_dist(setup) == "/opt/pl/lib64/pylive"
    assert _pylive_dist(setup, "pylive_net_dist") == "/opt/pl/lib64/pylive-net"
    assert "${PYLIVE_NET_DIST:-/opt/pl/lib64/pylive-net}/pylive" in \
        (dest / "opt/pl/lib/dracut/modules.d/90pylive-net/module-setup.sh").read_text()
    man = (dest / "opt/pl/share/man/man8/pylive.8").read_text()
    assert "\\fB/opt/pl/lib64/pylive/\\fR" in man and "\\fB/opt/pl/lib64/pylive\\-net/\\fR" in man
    proc = _make("uninstall", f"DESTDIR={dest}", "PREFIX=/opt/pl", "LIBDIR=/opt/pl/lib64")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _tree(dest) == {}


def test_install_without_a_build_says_so_in_one_line(tmp_path: Path, built: list[str]) -> None:
    proc = _make("install", f"DESTDIR={tmp_path / 'dest'}", f"DIST={tmp_path / 'none'}", *built[1:])
    assert proc.returncode != 0
    missing = tmp_path / "none" / "pylive"
    assert proc.stderr.splitlines()[0] == f"make install: {missing} is missing: run make binary docs first"
    assert not (tmp_path / "dest").exists()


def test_package_versions_are_pylives() -> None:
    """debian/changelog and the RPM spec name the version pylive --version prints."""
    from pylive import __version__

    changelog = (ROOT / "debian/changelog").read_text().splitlines()[0]
    assert changelog.startswith(f"pylive ({__version__}) "), changelog
    spec = (ROOT / "packaging/rpm/pylive.spec").read_text()
    assert f"\nVersion:        {__version__}\n" in spec
    assert f"\nversion = \"{__version__}\"\n" in (ROOT / "pyproject.toml").read_text()


# the dracut.conf.d snippet


def _sourced(snippet: str) -> dict[str, str]:
    """The variables dracut reads after sourcing `snippet` as it does (bash, `.`), starting from none."""
    script = ('hostonly=""; add_dracutmodules=""; omit_dracutmodules=""; . "$1"; '
              'printf "%s\\n" "hostonly=$hostonly" "add=$add_dracutmodules" "omit=$omit_dracutmodules"')
    out = subprocess.run(["bash", "-c", script, "bash", snippet], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_snippet_switches_pylive_on_and_hostonly_off_only_in_a_live_system(tmp_path: Path) -> None:
    text = (ROOT / "packaging/dracut/50-pylive.conf").read_text()
    assert text.count("/run/initramfs/livedev") == 3  # the comment and the test
    live_marker = tmp_path / "livedev"
    copy = tmp_path / "50-pylive.conf"  # the same file, its marker path here: the test can make it exist
    copy.write_text(text.replace("/run/initramfs/livedev", str(live_marker)))
    installed = {"add": " pylive ", "omit": " dmsquash-live "}
    assert _sourced(str(copy)) == {**installed, "hostonly": ""}  # an installed system keeps its host-only images
    live_marker.symlink_to("/dev/disk/by-label/LIVE")  # as the initramfs leaves it (the stick may be gone)
    assert _sourced(str(copy)) == {**installed, "hostonly": "no"}

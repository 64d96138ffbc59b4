"""The entry point reads plain argv without argparse; it must read it exactly as argparse does."""

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pylive.__main__ import COMMANDS, OPTIONS, _parser, _plain_args, main
from pylive.cmdline import Args
from pylive.options import parse_options

PLAIN = [
    ["cmdline-hook"],
    ["cmdline-hook", "--no-kmsg"],
    ["cmdline-hook", "--kmsg", "--cmdline", "root=live:CDLABEL=Fedora-WS-Live-40 quiet"],
    ["run"],
    ["run", "--newroot", "/sysroot", "--root", "/tmp/root", "--kmsg"],
    ["parse", "--json", "--cmdline", ""],
    ["parse", "--cmdline", "root=live:LABEL=a", "--cmdline", "root=live:LABEL=b"],  # the last one wins
    ["explain", "--cmdline", "root=live:LABEL=x", "--media", "m.iso", "--overlay-media", "o", "--json"],
    ["explain", "--kmsg", "--no-kmsg", "--cmdline", "x=a b"],
    ["status", "--json", "--levels", "50,60"],
    ["watch", "--levels", "50,60", "--interval", "1", "--once", "--root", "/x"],
]
# Left to argparse: help, version, usage errors, forms argparse reads in its own way.
NOT_PLAIN = [
    [],
    ["--version"],
    ["-h"],
    ["bogus"],
    ["explain", "-h"],
    ["explain", "--cmdline=root=live:LABEL=x"],
    ["explain", "--cmd", "root=live:LABEL=x"],
    ["explain", "--cmdline"],
    ["explain", "--cmdline", "-x y"],
    ["explain", "--newroot", "/x"],
    ["cmdline-hook", "--json"],
    ["explain", "stray"],
    ["explain", "--", "--cmdline", "x"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_argv_reads_as_argparse_reads_it(argv: list[str]) -> None:
    plain = _plain_args(argv)
    assert plain is not None
    assert vars(plain) == vars(_parser().parse_args(argv))


@pytest.mark.parametrize("argv", NOT_PLAIN, ids=" ".join)
def test_everything_else_goes_to_argparse(argv: list[str]) -> None:
    assert _plain_args(argv) is None


def test_plain_options_are_argparse_options() -> None:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(OPTIONS) <= set(sub.choices) == set(COMMANDS)  # the others always go through argparse
    for name, parser in sub.choices.items():
        if name not in OPTIONS:
            continue
        options = {o: a.nargs != 0 for a in parser._actions for o in a.option_strings}
        common = {"-h": False, "--help": False, "--cmdline": True, "--root": True, "--kmsg": False, "--no-kmsg": False}
        assert options == common | OPTIONS[name], name


# root= values the cmdline hook hands to the shell (parse-pylive.sh: eval "$(pylive cmdline-hook)").
HOSTILE_ROOTS = {
    "command substitution": "root=live:CDLABEL=$(reboot)",
    "backticks": "root=live:CDLABEL=`reboot`",
    "single quote": "root=live:/dev/disk/by-id/x';reboot;'",
    "double quote, space": 'root=live:/dev/disk/by-id/"a b"c',
    "variable, backslash": "root=live:/dev/$PATH\\",
    "newline": '"root=live:/dev/a\nrootok=0"',
    "not UTF-8": "root=live:/dev/\udcff\udcfe",
    "10 KB": "root=live:/dev/" + "x" * 10240,
    "unbalanced quote": '"root=live:/dev/sr0 rd.live.ram',
}


@pytest.mark.parametrize("line", HOSTILE_ROOTS.values(), ids=HOSTILE_ROOTS.keys())
def test_cmdline_hook_quotes_what_it_prints(line: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """The printed assignments read back, as a POSIX shell reads them, to the very value pylive parsed."""
    assert main(["cmdline-hook", "--no-kmsg", "--cmdline", line]) == 0
    out = capsysbinary.readouterr().out.decode("utf-8", "surrogateescape")  # bytes that are not UTF-8 as given
    spec = parse_options(Args.from_text(line)).spec
    assert spec is not None
    root = f"live:{spec.udev_path()}"
    assert shlex.split(out) == [f"root={root}", "rootok=1"]
    if shutil.which("sh"):  # as parse-pylive.sh applies it
        script = 'eval "$1"; printf "%s|%s" "$root" "$rootok"'
        shown = subprocess.run(["sh", "-c", script, "sh", out], capture_output=True, check=True).stdout
        assert shown == f"{root}|1".encode("utf-8", "surrogateescape")


ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("how", ["source", "binary"])
@pytest.mark.parametrize(("cmdline", "rc", "out", "err"), [
    ("root=live:CDLABEL=x rd.live.image", 0, "root=live:/dev/disk/by-label/x\nrootok=1\n", ""),
    ("root=/dev/sda1", 3, "", ""),
    ("root=live:CDLABEL=x rd.live.overlay.size=abc", 2, "",
     "error: rd.live.overlay.size=abc: not a size in MiB: use e.g. rd.live.overlay.size=4096, "
     "rd.live.overlay.size=4G or rd.live.overlay.size=50%\n"),
])
def test_the_boot_commands_exit_at_once_with_all_their_output(how: str, cmdline: str, rc: int, out: str,
                                                              err: str) -> None:
    """`run` and `cmdline-hook` end with os._exit (no teardown, FAST_EXIT): into pipes, as the hook reads it,
    their output is whole and their exit status kept."""
    binary = ROOT_DIR / "build/pylive.dist/pylive"
    if how == "binary" and not binary.exists():
        pytest.skip("the binary is not built (make binary)")
    argv = [str(binary)] if how == "binary" else [sys.executable, "-m", "pylive"]
    proc = subprocess.run([*argv, "cmdline-hook", "--no-kmsg", "--cmdline", cmdline], capture_output=True,
                          text=True, cwd=ROOT_DIR, env={"LC_ALL": "C", "PYTHONPATH": str(ROOT_DIR)}, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (rc, out, err)

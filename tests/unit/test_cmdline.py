"""The grammar and dracut's getarg semantics, on a table of command lines."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from pylive import cmdline
from pylive.cmdline import Arg, Args, parse_cmdline, read_cmdline

SLIM = Path(cmdline.GRAMMAR).parent / "slim_standalone.py"

A = Arg
# (command line, the arguments it holds)
SYNTAX = [
    ("", ()),
    ("   \t\n ", ()),
    ("quiet", (A("quiet", None),)),
    ("  quiet  ", (A("quiet", None),)),
    ("ro rw", (A("ro", None), A("rw", None))),
    ("root=live:CDLABEL=Fedora-WS-Live-40", (A("root", "live:CDLABEL=Fedora-WS-Live-40"),)),
    ("root=", (A("root", ""),)),
    ("rd.live.overlay=", (A("rd.live.overlay", ""),)),
    ("a=b=c", (A("a", "b=c"),)),
    ("a=b:c:d", (A("a", "b:c:d"),)),
    ("rd.live.overlay=LABEL=persist:/LiveOS/overlay-x", (A("rd.live.overlay", "LABEL=persist:/LiveOS/overlay-x"),)),
    ('"root=live:CDLABEL=Test Live 1"', (A("root", "live:CDLABEL=Test Live 1"),)),
    ('root="live:CDLABEL=Test Live 1"', (A("root", "live:CDLABEL=Test Live 1"),)),
    ('root=live:CDLABEL="Test Live 1"', (A("root", "live:CDLABEL=Test Live 1"),)),
    ('root=live:"CDLABEL=Test Live 1" quiet', (A("root", "live:CDLABEL=Test Live 1"), A("quiet", None))),
    ('x=a"b c"d', (A("x", "ab cd"),)),
    ('k=""', (A("k", ""),)),
    ('"quiet"', (A("quiet", None),)),
    ('"k=v" "a b"', (A("k", "v"), A("a b", None))),
    ('k="unterminated value', (A("k", "unterminated value"),)),
    ("BOOT_IMAGE=/vmlinuz-6.1 root=live:UUID=2023-04-13-19-55-00-00 rd.live.image quiet rhgb",
     (A("BOOT_IMAGE", "/vmlinuz-6.1"), A("root", "live:UUID=2023-04-13-19-55-00-00"), A("rd.live.image", None),
      A("quiet", None), A("rhgb", None))),
    ("console=ttyS0,115200n8 console=tty0", (A("console", "ttyS0,115200n8"), A("console", "tty0"))),
    ("rd.overlay=tmpfs:size=512M,nr_inodes=1000", (A("rd.overlay", "tmpfs:size=512M,nr_inodes=1000"),)),
    ("iso-scan/filename=/isos/fedora.iso", (A("iso-scan/filename", "/isos/fedora.iso"),)),
    ("root=live:/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
     (A("root", "live:/dev/disk/by-path/pci-0000:00:1f.2-ata-1"),)),
    ("root=live:http://10.0.2.2:8000/root.squashfs", (A("root", "live:http://10.0.2.2:8000/root.squashfs"),)),
    ("a\tb\nc", (A("a", None), A("b", None), A("c", None))),
    ("root=live:CDLABEL=$(reboot) rd.live.dir=a;b", (A("root", "live:CDLABEL=$(reboot)"), A("rd.live.dir", "a;b"))),
    ("init=/bin/sh -- single", (A("init", "/bin/sh"), A("--", None), A("single", None))),
    ("LABEL=é", (A("LABEL", "é"),)),
]


@pytest.mark.parametrize(("text", "expected"), SYNTAX)
def test_syntax(text: str, expected: tuple[Arg, ...]) -> None:
    assert parse_cmdline(text) == expected


def test_standalone_parser_agrees_with_lark(tmp_path, monkeypatch) -> None:
    """The generated standalone parser, slimmed as `make grammar` does (what the binary uses), gives the
    same trees as lark."""
    generated, out = tmp_path / "generated.py", tmp_path / "_cmdline_parser.py"
    subprocess.run([sys.executable, "-m", "lark.tools.standalone", cmdline.GRAMMAR, "-o", str(generated)],
                   check=True)
    subprocess.run([sys.executable, str(SLIM), str(generated), str(out)], check=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    standalone = importlib.import_module("_cmdline_parser").Lark_StandAlone()
    from lark import Lark

    runtime = Lark(Path(cmdline.GRAMMAR).read_text(), parser="lalr", lexer="contextual")

    def shape(tree):
        return [(str(p.data), [(t.type, str(t)) for t in p.children]) for p in tree.children]

    for text, _ in SYNTAX:
        assert shape(standalone.parse(text)) == shape(runtime.parse(text)), text


# getarg semantics: (command line, key(s), expected value of the last one; None = bare, "-" = absent)
LAST_WINS = [
    ("root=a root=b", ("root",), "b"),
    ("root=a quiet root=", ("root",), ""),
    ("rd.live.image liveimg", ("rd.live.image", "liveimg"), None),
    ("rd.live.dir=x live_dir=y", ("rd.live.dir", "live_dir"), "y"),
    ("live_dir=y rd.live.dir=x", ("rd.live.dir", "live_dir"), "x"),
    ("quiet", ("root",), "-"),
    ("rd.retry=10 rd.retry=20 rd.retry=30", ("rd.retry",), "30"),
]


@pytest.mark.parametrize(("text", "keys", "expected"), LAST_WINS)
def test_last_occurrence_wins(text: str, keys: tuple[str, ...], expected: str | None) -> None:
    arg = Args.from_text(text).last(*keys)
    if expected == "-":
        assert arg is None
    else:
        assert arg is not None and arg.value == expected


def test_read_cmdline_order(tmp_path) -> None:
    """dracut's getcmdline: /etc/cmdline.d/*.conf, then /etc/cmdline, then /proc/cmdline."""
    (tmp_path / "etc/cmdline.d").mkdir(parents=True)
    (tmp_path / "proc").mkdir()
    (tmp_path / "etc/cmdline.d/20-b.conf").write_text("root=b\n")
    (tmp_path / "etc/cmdline.d/10-a.conf").write_text("root=a rd.live.image\n")
    (tmp_path / "etc/cmdline").write_text("root=c\n")
    (tmp_path / "proc/cmdline").write_text("root=live:CDLABEL=d quiet\n")
    text = read_cmdline(tmp_path)
    assert text == "root=a rd.live.image root=b root=c root=live:CDLABEL=d quiet"
    assert Args.from_text(text).last("root").value == "live:CDLABEL=d"


def test_read_cmdline_without_files(tmp_path) -> None:
    assert read_cmdline(tmp_path) == ""

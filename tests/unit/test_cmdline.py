"""The grammar and dracut's getarg semantics, on a table of command lines."""

import importlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pylive import cmdline
from pylive.cmdline import WHITESPACE, Arg, Args, parse_cmdline, read_cmdline

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
    # Where the kernel splits (lib/cmdline.c: next_arg), quotes removed as above:
    # an unbalanced quote runs to the end of the line, whitespace and `=` included
    ('"rd.live.ram root=live:CDLABEL=x', (A("rd.live.ram root", "live:CDLABEL=x"),)),
    ('root=live:CDLABEL=x "rd.live.ram quiet', (A("root", "live:CDLABEL=x"), A("rd.live.ram quiet", None))),
    ('a"b c', (A("ab c", None),)),
    # a quote toggles wherever it stands
    ('a"b c"d e', (A("ab cd", None), A("e", None))),
    ('a"b"c=d"e f"', (A("abc", "de f"),)),
    # every isspace() character separates; other control characters do not
    ("a\rb\nc\td\ve\ff  g", tuple(A(k, None) for k in "abcdefg")),
    ("root=live:CDLABEL=x\r\nrd.live.ram\r\n", (A("root", "live:CDLABEL=x"), A("rd.live.ram", None))),
    ("a\x1bb\x85c\xa0d\u2028e", (A("a\x1bb\x85c\xa0d\u2028e", None),)),
    ('k="a\nb"', (A("k", "a\nb"),)),
    # the key ends at the first `=`, inside quotes or not
    ('"a b"=c', (A("a b", "c"),)),
    ('x"=y z', (A("x", "y z"),)),
    ('"k=a b" c', (A("k", "a b"), A("c", None))),
    ('k="a=b" c', (A("k", "a=b"), A("c", None))),
    # empty quotes, empty values, lone and leading `=` (an `=` that starts a word does not split it)
    ('""', (A("", None),)),
    ('"" x', (A("", None), A("x", None))),
    ('k="" x', (A("k", ""), A("x", None))),
    ('""=x', (A("", "x"),)),
    ("=", (A("=", None),)),
    ("= x", (A("=", None), A("x", None))),
    ("=value", (A("=value", None),)),
    ('"=value"', (A("=value", None),)),
    ("=a=b", (A("=a", "b"),)),
    ("==x", (A("=", "x"),)),
    ("k==", (A("k", "="),)),
    ('k"="', (A("k", ""),)),
    # a NUL ends the kernel's string
    ("root=live:LABEL=x\0 rd.live.ram", (A("root", "live:LABEL=x"),)),
    ('k="a\0b c" d', (A("k", "a"),)),
    ("\0quiet", ()),
    # shell syntax is text like any other
    ("root=live:CDLABEL=`reboot` x=$(rm -rf /);y", (A("root", "live:CDLABEL=`reboot`"), A("x", "$(rm"),
                                                      A("-rf", None), A("/);y", None))),
    ("x='a b'", (A("x", "'a"), A("b'", None))),
    # bytes that are not UTF-8 (read_cmdline keeps them as surrogates)
    ("root=live:CDLABEL=\udcff\udca0x", (A("root", "live:CDLABEL=\udcff\udca0x"),)),
    ("k=" + "v" * 10000, (A("k", "v" * 10000),)),
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

    for text in [t for t, _ in SYNTAX] + random_lines(500):
        assert shape(standalone.parse(text)) == shape(runtime.parse(text)), text


def next_arg(line: str) -> tuple[str, str | None, str]:
    """lib/cmdline.c next_arg, ported: (param, val, the rest of the line). `line` has no NUL and starts
    with no whitespace. The kernel leaves some quotes in param and val; pylive removes them all."""
    in_quote = line.startswith('"')
    args = line[1:] if in_quote else line
    i, equals = 0, 0
    while i < len(args):
        if args[i] in WHITESPACE and not in_quote:
            break
        if equals == 0 and args[i] == "=":  # equals == 0 also after an `=` at index 0: it does not count
            equals = i
        if args[i] == '"':
            in_quote = not in_quote
        i += 1
    if not equals:
        return args[:i], None, args[i + 1 :]
    return args[:equals], args[equals + 1 : i], args[i + 1 :]


def kernel_args(line: str) -> tuple[Arg, ...]:
    """parse_args: skip_spaces, then next_arg until the NUL that ends the string."""
    rest, args = line.partition("\0")[0].lstrip(WHITESPACE), []
    while rest:
        param, val, rest = next_arg(rest)
        args.append(Arg(param.replace('"', ""), None if val is None else val.replace('"', "")))
        rest = rest.lstrip(WHITESPACE)
    return tuple(args)


NASTY = ["a", "b", "=", '"', " ", "\t", "\n", "\r", "\v", "\f", "\0", "é", "\xa0", "\x85", "\u2028", "\x1b",
         "$(", "`", "\\", "'", ";", ":", "/", "..", "\udcff", "root=", "rd.live.dir="]


def random_lines(count: int, seed: int = 14) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(NASTY) for _ in range(rnd.randrange(20))) for _ in range(count)]


@pytest.mark.parametrize(("text", "expected"), SYNTAX)
def test_syntax_table_is_the_kernels(text: str, expected: tuple[Arg, ...]) -> None:
    assert kernel_args(text) == expected


def test_any_text_splits_as_the_kernel_splits_it() -> None:
    """parse_cmdline never raises, and agrees with next_arg on random lines over a nasty alphabet."""
    for text in random_lines(5000):
        assert parse_cmdline(text) == kernel_args(text), repr(text)


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


def test_read_cmdline_takes_any_bytes(tmp_path) -> None:
    """Bytes that are not UTF-8 are kept (as surrogates, the same bytes again in a path); a NUL ends a file's
    line as it ends the kernel's string; only the kernel's whitespace is trimmed."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "proc").mkdir()
    (tmp_path / "etc/cmdline").write_bytes(b"rd.live.dir=\xff\xfe\0 junk\n")
    (tmp_path / "proc/cmdline").write_bytes(b"root=live:CDLABEL=caf\xc3\xa9\xa0\n")
    text = read_cmdline(tmp_path)
    assert text == "rd.live.dir=\udcff\udcfe root=live:CDLABEL=café\udca0"
    assert Args.from_text(text).last("rd.live.dir").value.encode("utf-8", "surrogateescape") == b"\xff\xfe"


def test_read_cmdline_keeps_a_stray_quote_in_its_file(tmp_path) -> None:
    """An unbalanced quote in a .conf runs to the end of that file, not over /proc/cmdline; hidden
    .conf files are skipped as dracut's glob skips them."""
    (tmp_path / "etc/cmdline.d").mkdir(parents=True)
    (tmp_path / "proc").mkdir()
    (tmp_path / "etc/cmdline.d/10-x.conf").write_text('rd.live.ram "rd.live.dir=My Dir\n')
    (tmp_path / "etc/cmdline.d/.20-hidden.conf").write_text("rd.live.check\n")
    (tmp_path / "proc/cmdline").write_text("root=live:CDLABEL=d quiet\n")
    args = Args.from_text(read_cmdline(tmp_path))
    assert [str(a) for a in args] == ["rd.live.ram", "rd.live.dir=My Dir", "root=live:CDLABEL=d", "quiet"]

"""Kernel command line: text → arguments (pure).

The syntax comes from the lark grammar in cmdline_grammar/; at build time it is compiled into the
standalone parser pylive/_cmdline_parser.py so the initramfs binary carries no lark runtime and no
grammar file. Source runs (tests, `python -m pylive`) fall back to lark and the grammar file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import cache

from pylive.record import record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import Any

# os.path rather than pathlib, here and in read_cmdline: the cmdline hook needs no pathlib (start-up time).
GRAMMAR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "cmdline_grammar",
                       "kernel_cmdline.lark")
# What separates words (the kernel's isspace() in ASCII; see the grammar on the byte 0xA0).
WHITESPACE = " \t\n\v\f\r"


@record
class Arg:
    """One command line token: `key` (value None), `key=` (value "") or `key=value`."""

    key: str
    value: str | None

    def __str__(self) -> str:
        return self.key if self.value is None else f"{self.key}={self.value}"


@cache
def _parser() -> Any:
    try:
        from pylive._cmdline_parser import Lark_StandAlone

        return Lark_StandAlone()
    except ImportError:
        from lark import Lark

        with open(GRAMMAR) as f:
            return Lark(f.read(), parser="lalr", lexer="contextual")


def _unquote(text: str) -> str:
    # Quotes only group; they are never part of a key or value (systemd's proc_cmdline_parse
    # removes them wherever they stand, and so does dracut's getarg for whole-value quotes).
    return text.replace('"', "")


def parse_cmdline(text: str) -> tuple[Arg, ...]:
    """Split a command line into arguments, in order, as the kernel splits it. Any text parses."""
    args = []
    for param in _parser().parse(text).children:
        tokens = [t for t in param.children if t.type != "EQ"]
        key = _unquote(tokens[0])
        if param.data == "flag":
            args.append(Arg(key, None))
        else:
            args.append(Arg(key, _unquote(tokens[1]) if len(tokens) > 1 else ""))
    return tuple(args)


def read_cmdline(root: str | os.PathLike[str] = "/") -> str:
    """The command line as dracut assembles it: /etc/cmdline.d/*.conf, /etc/cmdline, /proc/cmdline."""
    confdir = os.path.join(root, "etc/cmdline.d")
    files = []
    if os.path.isdir(confdir):  # the shell glob *.conf: hidden files are not read
        files += sorted(os.path.join(confdir, n) for n in os.listdir(confdir)
                        if n.endswith(".conf") and not n.startswith("."))
    files += [os.path.join(root, "etc/cmdline"), os.path.join(root, "proc/cmdline")]
    parts = []
    for path in files:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                text = _decode(f.read()).strip(WHITESPACE)
            # Each file is a line of its own: a quote left open runs to the end of its file, not
            # into the next one (a stray quote in a .conf must not swallow /proc/cmdline).
            parts.append(text + '"' if text.count('"') % 2 else text)
    return " ".join(s for s in parts if s)


def _decode(data: bytes) -> str:
    # The kernel takes any bytes: those that are not UTF-8 are kept as surrogates (they name the same
    # bytes again in a path). A NUL ends the kernel's string, so it ends each file's line here.
    return data.partition(b"\0")[0].decode("utf-8", "surrogateescape")


class Args:
    """Lookup over parsed arguments with dracut's getarg semantics: the last occurrence wins."""

    def __init__(self, args: Iterable[Arg]) -> None:
        self.args = tuple(args)

    @classmethod
    def from_text(cls, text: str) -> Args:
        return cls(parse_cmdline(text))

    def __iter__(self) -> Iterator[Arg]:
        return iter(self.args)

    def last(self, *keys: str) -> Arg | None:
        """The last argument whose key is one of `keys` (aliases compete on position)."""
        for arg in reversed(self.args):
            if arg.key in keys:
                return arg
        return None

    def all(self, key: str) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.key == key)

    def has(self, key: str) -> bool:
        return any(a.key == key for a in self.args)

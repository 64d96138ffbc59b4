"""Hypothesis strategies for kernel command lines: the options pylive knows with values of their kind, good
and bad, in hostile spellings.

A line is words joined by whitespace. A word is mostly an option from pylive.options.OPTIONS (its name, an
old name or dracut-ng's name) with a value drawn for what it takes: root= forms of pylive.devspec, sizes,
seconds, paths on the medium, overlay locations, tmpfs options, watch levels, booleans. Values mix the
valid with the invalid (-1, 0x10, 101%, numbers of thousands of digits, '..', \\xHH escapes, empty), and
words get quotes in odd places. Between words: any isspace() character (only ASCII ones separate), and
the line may hold NUL, bytes that are not UTF-8 (surrogates, as cmdline.read_cmdline keeps them) and
values of many kilobytes.
"""

from __future__ import annotations

from hypothesis import strategies as st

from pylive.options import OPTIONS, Kind

SEPARATORS = " \t\n\v\f\r"  # the kernel's isspace() in ASCII: these split words
OTHER_SPACES = "".join(chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c) not in SEPARATORS)
NASTY = ['"', "'", "=", "\\", "$(", "`", ";", ":", "/", "..", ",", "%", "*", "\x1b", "\x7f", "é", "\u0301",
         "\ufeff", "\ufffe", "\U0001f600", "\\x", "\\x20", "\\xff", "\\xzz", "\\x00", "\\x2f", "\\x0a"]
# One draw each (Hypothesis's cost is per draw): the pieces above, every isspace() character, every byte that
# is not UTF-8; and now and then any character at all.
PIECES = [*NASTY, *OTHER_SPACES, *SEPARATORS, *(chr(0xDC00 + b) for b in range(0x80, 0x100))]
nasty = st.one_of(st.sampled_from(PIECES), st.sampled_from(PIECES), st.sampled_from(PIECES),
                  st.characters(exclude_categories=["Cs"], exclude_characters="\0"))
junk = st.lists(nasty, max_size=6).map("".join)  # a little of everything
long_text = st.integers(1000, 12000).map(lambda n: "x" * n)  # command lines of /etc/cmdline.d have no limit

# --- values ---------------------------------------------------------------------------------------

NUMBERS = ["0", "00", "1", "010", "0x10", "-1", "+1", "1e3", " 1", "1 ", "4_096", "1.5", "\u0661\u0662", "\u00b2",
           "4096", "18446744073709551616", "9" * 25, "9" * 400, "9" * 5000, ""]
numbers = st.one_of(st.sampled_from(NUMBERS), st.integers(-(2**70), 2**70).map(str))
UNITS = ["", "M", "G", "T", "m", "g", "t", "MiB", "GiB", "GB", "gb", "K", "k", "P", "E", "%", "%%", "B", " ", "i"]
sizes = st.builds(str.__add__, numbers, st.sampled_from(UNITS))
BOOLS = ["0", "no", "off", "NO", "yes", "1", "", "true", "false", "on", "2"]

LABEL_PIECES = ["Fedora-WS-Live-40", "Test Live 1", "Test", "LIVE", "persist", "a;b", "$x", "`x`", " ", "_", "\\x20",
                "\\x2f", "\\x00", "\\xff", "\\xc3\\xa9", "\\xed\\xa0\\x80", "\\x", "\\xz1", "\\", "/", "..", "\n",
                "2026-11-26-14-40-54-00", "abcd-01", "0f3c6a52-6a3e-4a36-9c43-1f3e2f0f4e11"]
labels = st.lists(st.one_of(st.sampled_from(LABEL_PIECES), nasty), max_size=6).map("".join)
PATH_PIECES = ["LiveOS", "..", ".", "", "squashfs.img", "rootfs.img", "live.iso", "isos", "a b", "\\x2e\\x2e", "%2e",
               "overlay-LIVE-", "images", "dev", "sr0", "sda1", "disk", "by-label", "x:y", ":auto"]
paths = st.builds(str.__add__, st.sampled_from(["", "/", "//"]),
                  st.lists(st.one_of(st.sampled_from(PATH_PIECES), junk), max_size=5).map("/".join))
SPEC_KINDS = ["CDLABEL=", "LABEL=", "UUID=", "PARTUUID=", "PARTLABEL=", "label=", "Uuid="]
URLS = ["http://", "https://", "ftp://", "tftp://", "nfs://", "nfs4:", "nfs:", "http:/", "file://"]
labelled = st.builds(str.__add__, st.sampled_from(SPEC_KINDS), labels)
specs = st.one_of(
    labelled,
    labelled,
    st.builds(lambda p: "/dev/" + p.lstrip("/"), paths),
    st.builds(lambda p, ext: "/" + p.lstrip("/") + ext, paths, st.sampled_from([".iso", ".img", ".ISO", ".Img", ""])),
    st.builds(str.__add__, st.sampled_from(URLS), junk),
    junk,
)
roots = st.one_of(st.builds(str.__add__, st.sampled_from(["live:", "live:", "", "live:live:", "LIVE:"]), specs),
                  st.sampled_from(["", "live:", "/dev/sda1", "live"]))
overlays = st.one_of(
    st.sampled_from(["none", "None", "NONE", "auto", ":auto", "", "1", "0", "yes", "off", ":", "LABEL=", "/dev/"]),
    st.builds(lambda dev, sep, path: dev + sep + path, specs, st.sampled_from(["", ":", ":/", ":auto", "::", ":/:"]),
              paths),
)
tmpfs_options = st.lists(st.builds(lambda k, sep, v: k + sep + v,
                                   st.sampled_from(["size", "nr_blocks", "nr_inodes", "mode", "huge", "", "SIZE"]),
                                   st.sampled_from(["=", "", "=="]), sizes), max_size=4).map(",".join)
tmpfs_overlays = st.builds(str.__add__, st.sampled_from(["tmpfs", "tmpfs:", "TMPFS:", "tmpfs:,"]), tmpfs_options)
ng_overlays = st.one_of(overlays, st.sampled_from(BOOLS), tmpfs_overlays)
iso_scans = st.one_of(paths, st.builds(lambda dev, sep, path: dev + sep + path, specs,
                                       st.sampled_from([":", ":/", ""]), paths))
watch_levels = st.one_of(st.sampled_from(["80,90,95", "0", "no", "", "on", "101", "90,80", "50,50", ",", "8_0"]),
                         st.lists(numbers, max_size=5).map(",".join))

_TEXT_VALUES = {
    "root": roots,
    "rd.live.dir": paths,
    "rd.live.squashimg": paths,
    "rd.live.overlay": overlays,
    "rd.overlay": ng_overlays,
    "iso-scan/filename": iso_scans,
    "rd.pylive.watch": watch_levels,
    "rootflags": st.lists(st.sampled_from(["noatime", "discard", "ro", "rw", "size=1G", "", "x=y"]), max_size=3)
    .map(",".join),
}
_KIND_VALUES = {Kind.BOOL: st.sampled_from(BOOLS), Kind.SIZE_MIB: sizes, Kind.SECONDS: numbers, Kind.TEXT: junk}


def _values(name: str, kind: Kind) -> st.SearchStrategy[str]:
    return st.one_of(_TEXT_VALUES.get(name, _KIND_VALUES[kind]), junk)


# Every spelling of every option (its name, old names, dracut-ng name): (spelling, name, kind).
# (sorted: a set's order changes with PYTHONHASHSEED, and the ci profile must draw the same lines every run)
_SPELLINGS = [(n, o.name, o.kind) for o in OPTIONS
              for n in sorted({o.name, *o.old_names, *([o.ng_name] if o.ng_name else [])})]
KEYS = sorted({n for n, _, _ in _SPELLINGS} | {"ro", "rw", "quiet", "rd.live.imgae", "rd.overlay.sise", "rd.pylive.x",
                                               "rd.live.", "BOOT_IMAGE", "init", "--", "", "="})
option_words = st.one_of([
    st.builds(lambda n, v: f"{n}={v}" if v is not None else n, st.just(n),
              st.one_of(_values(name, kind), st.none()))
    for n, name, kind in _SPELLINGS
])
root_words = st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["root", "root", "rd.live.overlay", "rd.overlay",
                                                                 "iso-scan/filename"]), st.one_of(roots, specs))
words = st.one_of(option_words, option_words, option_words, root_words, st.sampled_from(KEYS),
                  st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), junk), junk)


@st.composite
def quoted(draw: st.DrawFn, word: str) -> str:
    """`word` with double quotes put in at a few places (around it, in the key, in the value, left open)."""
    places = draw(st.lists(st.integers(0, len(word)), max_size=3))
    for at in sorted(places, reverse=True):
        word = word[:at] + '"' + word[at:]
    return word


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True one time in n. (Not `integers(0, n - 1) == 0`: Hypothesis draws the bounds of a range far more
    often than the numbers between them.)"""
    return st.integers(1, n).map(lambda x: x == (n + 1) // 2)


# Between words: mostly one space, else runs of the separators and of the other isspace() characters (which do
# not separate), one draw each.
spaces = st.one_of(st.just(" "), st.sampled_from([*SEPARATORS, *OTHER_SPACES, "  ", "\r\n", " \t ", "\n\n", " \xa0",
                                                 "\u3000 ", "\x1c\x1d", " \x85"]))


@st.composite
def structured_lines(draw: st.DrawFn) -> str:
    parts = [draw(spaces) if draw(st.booleans()) else ""]
    for word in draw(st.lists(words, max_size=8)):
        parts += [draw(quoted(word)) if draw(one_in(4)) else word, draw(spaces)]
    if draw(st.booleans()):  # most lines boot a live medium: the decisions are made past that (last one wins)
        at = len(parts) if draw(st.booleans()) else draw(st.integers(0, len(parts)))
        parts.insert(at, f" root=live:{draw(specs)} ")
    if draw(one_in(8)):  # a value of kilobytes, for one option
        parts.insert(draw(st.integers(0, len(parts))), f" {draw(st.sampled_from(KEYS))}={draw(long_text)} ")
    line = "".join(parts)
    if line and draw(one_in(10)):  # a NUL ends the kernel's string: what follows is not read
        at = len(line) - draw(st.integers(0, len(line)))  # Hypothesis favours 0: near the end, mostly
        line = line[:at] + "\0" + line[at:]
    return line


def as_read(text: str) -> str:
    """`text` as pylive gets it, from /proc/cmdline (cmdline.read_cmdline) or argv: bytes decoded with
    surrogateescape. (Surrogates that spell valid UTF-8 together, such as \\udcc2\\udc80, come back as the
    character they spell.)"""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


cmdlines = st.one_of(structured_lines(), structured_lines(), structured_lines(),
                     st.lists(nasty).map("".join)).map(as_read)

"""The Makefile's size trimming (STDLIB_UNUSED, DIST_UNUSED) never leaves out what pylive imports.

Nuitka's standalone mode adds many stdlib modules whether anything imports them or not; the Makefile
leaves out those that no import in pylive reaches (--nofollow-import-to). Here the imports of pylive,
followed through the standard library as the binary would (modulefinder, over every import statement,
those inside functions too), must reach none of them, nor the CJK codecs removed from the dist.
"""

from __future__ import annotations

import modulefinder
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()


def make_list(name: str) -> list[str]:
    m = re.search(rf"^{name} := ((?:.*\\\n)*.*)$", MAKEFILE, re.M)
    assert m, f"{name} is not in the Makefile"
    return [w for w in re.split(r"[\s,\\]+", m[1]) if w]


# Modules the interpreter imports by name, which no import statement shows: codecs are looked up by
# their name (socket.getaddrinfo() encodes a host name with "idna", which imports stringprep: leaving
# stringprep out made every network boot fail with "unknown encoding: idna").
IMPLICIT = ("encodings.idna",)


def reached() -> set[str]:
    # NOFOLLOW: guarded or lazy imports the binary already leaves out (measured long ago): not followed here
    finder = modulefinder.ModuleFinder(path=[str(ROOT), *sys.path], excludes=make_list("NOFOLLOW"))
    finder.run_script(str(ROOT / "pylive" / "__main__.py"))
    for name in IMPLICIT:
        finder.import_hook(name)
    return set(finder.modules)


def test_the_lists_are_read() -> None:
    assert "webbrowser" in make_list("STDLIB_UNUSED") and "_codecs_jp.so" in make_list("DIST_UNUSED")


def test_no_import_in_pylive_reaches_a_left_out_module() -> None:
    names = reached()
    assert "pylive.boot" in names and "pyudev" in names  # the finder did follow pylive's imports
    assert "stringprep" in names  # and the implicit ones
    left_out = set(make_list("STDLIB_UNUSED"))
    hit = sorted(n for n in names if n in left_out or any(n.startswith(p + ".") for p in left_out))
    assert not hit, f"pylive now imports {hit}: take them off STDLIB_UNUSED in the Makefile"
    codecs = {f.removesuffix(".so") for f in make_list("DIST_UNUSED") if f.endswith(".so")}
    assert not sorted(codecs & names), "a codec module removed from the dist is imported: fix DIST_UNUSED"

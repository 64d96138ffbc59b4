"""The Makefile's size trimming (STDLIB_UNUSED, DIST_UNUSED) never leaves out what pylive imports, and
its two builds hold what they should: the base dist (build/pylive.dist) no network code, the full one
(build/pylive-net.dist, for module pylive-net) all of it.

Nuitka's standalone mode adds many stdlib modules whether anything imports them or not; the Makefile
leaves out those that no import in pylive reaches (--nofollow-import-to). Here the imports of pylive,
followed through the standard library as the binary would (modulefinder, over every import statement,
those inside functions too), must reach none of them, nor the CJK codecs removed from the dist. The
base build also leaves out NET_ONLY (pylive.netsystem, _hashlib): what only that reaches must be network
code (and BASE_STDLIB_UNUSED, reached by nothing else), and the parsing and planning of a network command
line must stay.
"""

from __future__ import annotations

import modulefinder
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

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


# What only the network steps need (pylive.netsystem and below): out of the base build.
NETWORK_ONLY = ("pylive.netsystem", "pylive.net.bench", "pylive.net.fetch", "pylive.net.http", "pylive.net.ftp",
                "pylive.net.tftp", "pylive.net.stream", "pylive.net.ready", "pylive.net.readiness", "pyroute2", "ssl",
                "_ssl", "_hashlib")
# What parsing and planning a network command line needs (pylive parse/explain/cmdline-hook): in both.
PLANNING = ("pylive.net.url", "pylive.net.errors", "pylive.net.checksum", "pylive.planner.net", "pylive.explain")
BUILDS = {"base": (ROOT / "build/pylive.dist", ROOT / "build/nuitka-report.xml"),
          "full": (ROOT / "build/pylive-net.dist", ROOT / "build/nuitka-report-net.xml")}
NETWORK_FILES = re.compile(r"^(_ssl|_hashlib)\..*so$|^lib(ssl|crypto)\.so")


def reached(base: bool = False) -> set[str]:
    # NOFOLLOW: guarded or lazy imports the binary already leaves out (measured long ago): not followed here
    excludes = make_list("NOFOLLOW") + (make_list("NET_ONLY") if base else [])
    finder = modulefinder.ModuleFinder(path=[str(ROOT), *sys.path], excludes=excludes)
    finder.run_script(str(ROOT / "pylive" / "__main__.py"))
    for name in IMPLICIT:
        finder.import_hook(name)
    return set(finder.modules)


def test_the_lists_are_read() -> None:
    assert "webbrowser" in make_list("STDLIB_UNUSED") and "_codecs_jp.so" in make_list("DIST_UNUSED")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("base", [False, True], ids=["full", "base"])
def test_no_import_in_pylive_reaches_a_left_out_module(base: bool) -> None:
    names = reached(base)
    assert "pylive.boot" in names and "pyudev" in names  # the finder did follow pylive's imports
    assert "stringprep" in names  # and the implicit ones
    left_out = set(make_list("STDLIB_UNUSED") + (make_list("BASE_STDLIB_UNUSED") if base else []))
    hit = sorted(n for n in names if n in left_out or any(n.startswith(p + ".") for p in left_out))
    assert not hit, f"pylive now imports {hit}: take them off (BASE_)STDLIB_UNUSED in the Makefile"
    codecs = {f.removesuffix(".so") for f in make_list("DIST_UNUSED") if f.endswith(".so")}
    assert not sorted(codecs & names), "a codec module removed from the dist is imported: fix DIST_UNUSED"


def test_the_base_build_leaves_out_the_network_code_and_keeps_the_planning() -> None:
    base, full = reached(base=True), reached()
    assert not sorted(n for n in base if _under(n, NETWORK_ONLY)), "the base binary would hold network code"
    assert all(n in base for n in PLANNING)
    assert all(n in full for n in ("pylive.netsystem", "pylive.net.ready", "pyroute2.netlink.rtnl.ifinfmsg", "ssl"))


def _built(which: str) -> tuple[Path, set[str]]:
    dist, report = BUILDS[which]
    if not (dist / "pylive").is_file() or not report.is_file():
        pytest.skip(f"{dist} is not built (make binary)")
    return dist, {m.get("name", "") for m in ET.parse(report).getroot().iter("module")}


def test_the_built_dists_hold_what_they_should() -> None:
    """Nuitka's own reports of the two builds, and their files (what module 90pylive installs)."""
    base_dist, base = _built("base")
    full_dist, full = _built("full")
    assert not sorted(n for n in base if _under(n, NETWORK_ONLY))
    assert all(n in base for n in PLANNING) and all(n in full for n in NETWORK_ONLY)
    # what the base leaves out is network code (and BASE_STDLIB_UNUSED) only: anything else would be missing
    gone = sorted(n for n in full - base if not _under(n, NETWORK_ONLY + tuple(make_list("BASE_STDLIB_UNUSED"))))
    assert not gone, f"the base build now leaves out {gone} too: import them outside pylive.netsystem's reach"
    assert not [f.name for f in base_dist.iterdir() if NETWORK_FILES.search(f.name)]
    assert len([f.name for f in full_dist.iterdir() if NETWORK_FILES.search(f.name)]) == 4


def test_the_base_binary_refuses_a_network_root_in_one_line(tmp_path: Path) -> None:
    """The real base binary, `pylive run` with a network command line: one line naming the module, before any
    step (run as nobody when the tests run as root: a regression could not touch this machine)."""
    dist, _ = _built("base")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    tmp_path.chmod(0o755)
    url, updates = "http://10.0.2.2/LiveOS/squashfs.img", "tftp://10.0.2.2/u.img"
    for cmdline, named in ((f"root=live:{url}", f"root=live:{url}"),
                           (f"root=live:CDLABEL=Live live.updates={updates}", f"live.updates={updates}")):
        proc = subprocess.run([*as_nobody, str(dist / "pylive"), "run", "--cmdline", cmdline, "--root", str(tmp_path),
                               "--newroot", str(tmp_path / "sysroot"), "--no-kmsg"], check=False,
                              capture_output=True, text=True, timeout=60, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
        assert (proc.returncode, proc.stdout) == (1, "")
        assert proc.stderr == (f"error: {named} needs pylive's network support, which this initramfs does not have: "
                               "build the initramfs with the pylive-net dracut module (dracut --add pylive-net; "
                               "needs dracut-network)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    proc = subprocess.run([*as_nobody, str(dist / "pylive"), "bench-fetch", url], check=False, capture_output=True,
                          text=True, timeout=60, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("error: pylive bench-fetch needs pylive's network support"), proc.stderr

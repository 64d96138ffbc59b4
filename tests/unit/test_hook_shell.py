"""The shell's own reading of the command line (dracut-module/90pylive/pylive-lib.sh): the generator and the
cmdline hook skip `pylive cmdline-hook` when it says yes, so a yes must mean exactly what pylive would have
answered for the same line: a live boot of a local medium, with the same root= value (or an option the run
then names as bad, as the hook would have). Run with every POSIX shell at hand (dracut's /bin/sh is dash on
Debian, bash on Fedora)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylive.cmdline import Args, read_cmdline
from pylive.devspec import SpecKind

from .cmdlines import cmdlines
from .test_fuzz_cmdline import options_or_error

LIB = Path(__file__).resolve().parents[2] / "dracut-module/90pylive/pylive-lib.sh"
SHELLS = [s for s in ("dash", "bash", "busybox") if shutil.which(s)]
# each root directory given is answered with one line: "yes <value>" or "no"; then the variables left set
SCRIPT = """. "$1"; shift
for r in "$@"; do
    if pylive_plain_root "$r"; then printf 'yes %s\\n' "$pylive_root"; else echo no; fi
done
set | grep '^_pl_' || true
"""


def shell_says(shell: str, roots: list[Path]) -> list[str | None]:
    """The root= value the shell found in each root directory, or None where it left the answer to pylive."""
    argv = ["busybox", "sh"] if shell == "busybox" else [shell]
    out = subprocess.run([*argv, "-c", SCRIPT, "sh", str(LIB), *map(str, roots)], capture_output=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.decode("utf-8", "surrogateescape").split("\n")
    answers, leftover = out[: len(roots)], out[len(roots) :]
    assert leftover == [""], leftover  # nothing of the function's own left set
    return [a.removeprefix("yes ") if a.startswith("yes ") else None for a in answers]


def make_root(base: Path, proc: str | bytes, *, conf: dict[str, str] | None = None) -> Path:
    (base / "proc").mkdir(parents=True)
    (base / "proc/cmdline").write_bytes(proc if isinstance(proc, bytes) else proc.encode("utf-8", "surrogateescape"))
    for name, text in (conf or {}).items():
        (base / "etc/cmdline.d").mkdir(parents=True, exist_ok=True)
        (base / "etc/cmdline.d" / name).write_text(text)
    return base


CASES = {
    # (/proc/cmdline, /etc/cmdline.d files) → root= value, or None: ask pylive
    "Fedora's menu": ("BOOT_IMAGE=/images/pxeboot/vmlinuz root=live:CDLABEL=Fedora-WS-Live-40 rd.live.image quiet "
                      "rhgb", {}, "live:CDLABEL=Fedora-WS-Live-40"),
    "label escaped as lorax writes it": (r"root=live:CDLABEL=Test\x20Live\x201 rd.live.image", {},
                                         r"live:CDLABEL=Test\x20Live\x201"),
    "UUID, tabs and newline": ("root=live:UUID=2026-11-26-14-40-54-00\trd.live.ram\n", {},
                               "live:UUID=2026-11-26-14-40-54-00"),
    "a device path": ("root=live:/dev/sr0 rd.live.overlay.overlayfs", {}, "live:/dev/sr0"),
    "from /etc/cmdline.d": ("quiet", {"10-live.conf": "root=live:LABEL=LIVE\n"}, "live:LABEL=LIVE"),
    "quoted label": ('root=live:CDLABEL="Test Live"', {}, None),
    "quote elsewhere": ('root=live:CDLABEL=A "rd.live.dir=Live OS"', {}, None),
    "single quote": ("root=live:CDLABEL=a'b", {}, None),
    "two root=": ("root=live:CDLABEL=A root=live:CDLABEL=B", {}, None),
    "two sources": ("root=live:CDLABEL=A", {"10.conf": "root=live:CDLABEL=B"}, None),
    "hidden conf file is not read": ("quiet", {".x.conf": "root=live:CDLABEL=A"}, None),
    "rd.break": ("root=live:CDLABEL=A rd.break=pre-udev", {}, None),
    "rd.break alone": ("root=live:CDLABEL=A rd.break", {}, None),
    "rdbreak": ("root=live:CDLABEL=A rdbreak=initqueue", {}, None),
    "http": ("root=live:http://10.0.2.2/squashfs.img", {}, None),
    "nfs": ("root=live:nfs:10.0.2.2:/srv/live.iso", {}, None),
    "plain root= with rd.live.image": ("root=LABEL=LIVE rd.live.image", {}, None),
    "empty": ("root=live:", {}, None),
    "command substitution": ("root=live:CDLABEL=$(reboot)", {}, None),
    "backticks": ("root=live:CDLABEL=`reboot`", {}, None),
    "carriage return splits for the kernel": ("root=live:CDLABEL=A\rrd.live.ram", {}, None),
    "not ASCII": ("root=live:CDLABEL=Fédora", {}, None),
    "not UTF-8": (b"root=live:CDLABEL=\xff", {}, None),
    "no root=": ("quiet", {}, None),
}


@pytest.mark.skipif(not SHELLS, reason="no POSIX shell")
@pytest.mark.parametrize("shell", SHELLS)
def test_table(shell: str, tmp_path: Path) -> None:
    roots = [make_root(tmp_path / str(i), proc, conf=conf) for i, (proc, conf, _) in enumerate(CASES.values())]
    got = dict(zip(CASES, shell_says(shell, roots), strict=True))
    assert got == {name: want for name, (_, _, want) in CASES.items()}


def assert_pylive_agrees(root: Path, said: str | None) -> None:
    """A yes names the root= pylive reads, for a live boot of a local medium, or a line pylive stops on."""
    if said is None:
        return
    text = read_cmdline(root)
    arg = Args.from_text(text).last("root")
    assert arg is not None and arg.value == said, (text, said)
    opts = options_or_error(text)
    if hasattr(opts, "spec"):  # else a CmdlineError: the run names the option, as the hook would have
        assert opts.spec is not None and opts.spec.kind not in (SpecKind.URL, SpecKind.NFS), text


@pytest.mark.skipif(not SHELLS, reason="no POSIX shell")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(st.one_of(cmdlines, st.builds(lambda a, b: f"{a} root=live:{b}", cmdlines,
                                                    st.sampled_from(["CDLABEL=A", "/dev/sr0", "UUID=x y"]))),
                      min_size=20, max_size=20))
def test_random_lines(lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("roots")
    roots = [make_root(base / str(i), line) for i, line in enumerate(lines)]
    for shell in SHELLS:
        for root, said in zip(roots, shell_says(shell, roots), strict=True):
            assert_pylive_agrees(root, said)

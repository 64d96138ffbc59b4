"""Option meaning: the typed table over the parsed command line."""

import pytest

from pylive.cmdline import Args
from pylive.devspec import SpecKind
from pylive.errors import LINE_BYTES, CmdlineError, DeviceTimeout, ImageNotFound, LiveError, NotFoundOnDisks
from pylive.options import OPTIONS, LiveOptions, Percent, parse_options


def opts(text: str) -> LiveOptions:
    return parse_options(Args.from_text(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rd.live.ram", True),
        ("rd.live.ram=1", True),
        ("rd.live.ram=yes", True),
        ("rd.live.ram=0", False),
        ("rd.live.ram=no", False),
        ("rd.live.ram=off", False),
        ("rd.live.ram=", True),  # getargbool: any value but 0/no/off is true
        ("rd.live.ram rd.live.ram=0", False),
        ("rd.live.ram=0 rd.live.ram", True),
        ("live_ram", True),
        ("", False),
    ],
)
def test_booleans(text: str, expected: bool) -> None:
    assert opts(text).live_ram is expected


def test_check_zero_means_no_check() -> None:
    # dracut reads rd.live.check with getarg (presence), so =0 still checks; pylive does not (README).
    assert opts("rd.live.check=0").check is False
    assert opts("rd.live.check").check is True
    assert opts("check").check is True


@pytest.mark.parametrize(
    ("value", "mib"),
    [("2048", 2048), ("512M", 512), ("512MiB", 512), ("4G", 4096), ("4g", 4096), ("1T", 1048576), ("32768", 32768)],
)
def test_overlay_size(value: str, mib: int) -> None:
    assert opts(f"rd.live.overlay.size={value}").overlay_size_mib == mib


def test_overlay_size_default_is_32_gib() -> None:
    assert opts("root=live:LABEL=x").overlay_size_mib == 32768


def test_percent_sizes() -> None:
    size = opts("rd.live.overlay.size=50%").overlay_size_mib
    assert isinstance(size, Percent) and size.of(8192) == 4096 and str(size) == "50% of RAM"


@pytest.mark.parametrize("value", ["4X", "", "-1", "0", "1.5G", "big", "4 G", "101%", "0%"])
def test_bad_sizes_name_the_option_and_an_example(value: str) -> None:
    with pytest.raises(CmdlineError) as e:
        opts(f'"rd.live.overlay.size={value}"')
    line = str(e.value)
    assert "\n" not in line
    assert line.startswith(f"rd.live.overlay.size={value}:")
    assert "rd.live.overlay.size=4096, rd.live.overlay.size=4G or rd.live.overlay.size=50%" in line


# Found by fuzzing: int() refused the 5000 digits (ValueError); a size beyond off_t would reach
# os.ftruncate (OverflowError) or the tmpfs size.
@pytest.mark.parametrize(("value", "problem"), [
    ("9" * 5000, r"larger than any file can be \(8 EiB\)"),
    ("8589934592G", r"larger than any file can be \(8 EiB\)"),  # 8 EiB: one MiB too many
    ("9" * 5000 + "%", "not a size in MiB"),
    ("0" * 5000, "not a size in MiB"),
], ids=["5000-digits", "8-eib", "5000-digit-percent", "5000-zeros"])
def test_sizes_beyond_any_file_are_refused(value: str, problem: str) -> None:
    with pytest.raises(CmdlineError, match=f"^rd.live.overlay.size=.*: {problem}: use e.g. "):
        opts(f"rd.live.overlay.size={value}")


def test_largest_size_and_leading_zeros() -> None:
    assert opts("rd.live.overlay.size=8589934591G").overlay_size_mib == 8589934591 * 1024
    assert opts("rd.live.overlay.size=0004G").overlay_size_mib == 4096
    assert opts("rd.live.overlay.size=0100%").overlay_size_mib == Percent(100)


def test_bad_retry() -> None:
    with pytest.raises(CmdlineError, match=r"^rd.retry=soon: not a whole number of seconds: use e.g. rd.retry=180$"):
        opts("rd.retry=soon")


# Found by fuzzing: '²' passed str.isdigit() and int() raised ValueError; int() refuses 5000 digits, and
# 400 digits made a deadline (time.monotonic() + timeout) overflow a float.
@pytest.mark.parametrize(("value", "problem"), [
    ("\u00b2", "not a whole number of seconds"),
    ("\u0661\u0662", "not a whole number of seconds"),  # Arabic-Indic 12: int() reads it, the kernel does not
    ("9" * 5000, "more than 2147483647 seconds"),
    ("9" * 400, "more than 2147483647 seconds"),
    ("2147483648", "more than 2147483647 seconds"),
], ids=["superscript", "arabic-indic", "5000-digits", "400-digits", "2-31"])
def test_retry_is_ascii_digits_a_wait_can_use(value: str, problem: str) -> None:
    with pytest.raises(CmdlineError, match=f"^rd.retry=.*: {problem}: use e.g. rd.retry=180$"):
        opts(f"rd.retry={value}")


def test_retry_takes_leading_zeros_and_the_largest_wait() -> None:
    assert opts("rd.retry=00000000000000000000000000180").retry_s == 180
    assert opts("rd.retry=2147483647").retry_s == 2**31 - 1
    assert opts("rd.retry=0").retry_s == 0


def test_deprecated_names_work_and_say_the_new_name() -> None:
    assert opts("rd.live.overlayfs.readonly").overlay_readonly  # dracut-ng's misspelled fallback
    o = opts("root=CDLABEL=x liveimg live_dir=Live reset_overlay")
    assert o.live_image and o.live_dir == "Live" and o.overlay_reset
    assert "kernel command line option 'liveimg' is deprecated, use 'rd.live.image' instead" in o.warnings
    assert any("'live_dir'" in w and "'rd.live.dir'" in w for w in o.warnings)


def test_unknown_live_option_gets_a_suggestion() -> None:
    o = opts("root=live:LABEL=x rd.live.overlay.sise=10 rd.live.imgae")
    assert "unknown option 'rd.live.overlay.sise' is ignored; did you mean rd.live.overlay.size?" in o.warnings
    assert "unknown option 'rd.live.imgae' is ignored; did you mean rd.live.image?" in o.warnings


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("root=live:CDLABEL=Fedora-WS-Live-40", SpecKind.CDLABEL, "Fedora-WS-Live-40"),
        ('"root=live:CDLABEL=Test Live 1"', SpecKind.CDLABEL, "Test Live 1"),
        ("root=live:LABEL=LIVE", SpecKind.LABEL, "LIVE"),
        ("root=live:UUID=2023-04-13-19-55-00-00", SpecKind.UUID, "2023-04-13-19-55-00-00"),
        ("root=live:PARTUUID=0a1b-02", SpecKind.PARTUUID, "0a1b-02"),
        ("root=live:PARTLABEL=live", SpecKind.PARTLABEL, "live"),
        ("root=live:/dev/sr0", SpecKind.PATH, "/dev/sr0"),
        ("rd.live.image root=LABEL=x", SpecKind.LABEL, "x"),
        ("rd.live.image root=CDLABEL=x", SpecKind.CDLABEL, "x"),
        ("rd.live.image root=/dev/sr0", SpecKind.PATH, "/dev/sr0"),  # 059 missed this one
        ("rd.live.image root=live:UUID=u", SpecKind.UUID, "u"),
        ("root=live:/images/live.iso", SpecKind.ISO_FILE, "/images/live.iso"),
        ("root=live:/root.IMG", SpecKind.IMG_FILE, "/root.IMG"),
        ("root=https://host/root.squashfs", SpecKind.URL, "https://host/root.squashfs"),
        ("root=/dev/sda1 root=live:LABEL=last", SpecKind.LABEL, "last"),
    ],
)
def test_live_root_forms(text: str, kind: SpecKind, value: str) -> None:
    spec = opts(text).spec
    assert spec is not None and (spec.kind, spec.value) == (kind, value)


@pytest.mark.parametrize(
    "text", ["root=/dev/sda1", "root=LABEL=x", "quiet", "root=live:LABEL=x root=/dev/sda1", "root="],
)
def test_not_a_live_boot(text: str) -> None:
    assert not opts(text).is_live


@pytest.mark.parametrize("text", ["root=live:FOO=bar", "root=live:LABEL=", "root=live:relative/path"])
def test_unknown_live_forms_are_an_error(text: str) -> None:
    with pytest.raises(CmdlineError, match="^root=live:.*: is not a live medium pylive knows"):
        opts(text)


def test_ro_rw_last_wins() -> None:
    assert opts("ro rw").medium_rw
    assert "both ro and rw are given: the last one (rw) wins for the live medium" in opts("ro rw").warnings
    assert not opts("rw ro").medium_rw
    assert not opts("").medium_rw


def test_values_are_data_not_shell() -> None:
    o = opts("root=live:CDLABEL=$(reboot) rd.live.dir=a;b rd.live.squashimg=`x`")
    assert o.spec is not None and o.spec.value == "$(reboot)"
    assert o.live_dir == "a;b" and o.squash_image == "`x`"


def test_empty_live_dir_is_refused() -> None:
    with pytest.raises(CmdlineError, match=r"^rd.live.dir=: must not be empty: use e.g. rd.live.dir=LiveOS$"):
        opts("root=live:LABEL=x rd.live.dir=")


def test_table_has_unique_names_and_dests() -> None:
    names = [o.name for o in OPTIONS] + [n for o in OPTIONS for n in o.old_names]
    assert len(names) == len(set(names))
    assert len({o.dest for o in OPTIONS}) == len(OPTIONS)
    defaults = LiveOptions()
    for o in OPTIONS:
        assert getattr(defaults, o.dest) == o.default, o.name


# Values a command line may hold that must not reach a log line as they are.
HOSTILE = {
    "command substitution": "$(reboot)",
    "backticks": "`reboot`",
    "newline": "4\nerror: forged line",
    "carriage return": "4\rforged",
    "escape sequence": "\x1b[2J",
    "right-to-left override": "4\u202eG",
    "not UTF-8": "4\udcff\udcfe",
    "10 KB": "9" * 10240 + "X",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("option", ["rd.live.overlay.size", "rd.minmem", "rd.retry", "root"])
def test_errors_are_one_bounded_line_whatever_the_value(option: str, value: str) -> None:
    with pytest.raises(CmdlineError) as e:
        opts(f'"{option}={value if option != "root" else "live:" + value}"')
    line = str(e.value)
    assert line.isprintable(), repr(line)  # no line break, control character or stray byte
    assert len(line) < 250
    assert line.startswith(f"{option}=")
    assert e.value.value is not None and e.value.value.endswith(value)  # the value itself is kept whole


def test_values_are_shown_escaped_and_cut() -> None:
    with pytest.raises(CmdlineError) as e:
        opts('"rd.retry=1\n2"')
    assert str(e.value) == r"rd.retry=1\n2: not a whole number of seconds: use e.g. rd.retry=180"
    with pytest.raises(CmdlineError) as e:
        opts("rd.retry=\udcff" + "x" * 200)
    assert str(e.value).startswith(r"rd.retry=\xff" + "x" * 75 + "…: not a whole number of seconds")


def test_unknown_option_warning_is_one_line() -> None:
    o = opts('root=live:LABEL=x "rd.live.x\nerror: forged"')
    assert r"unknown option 'rd.live.x\nerror: forged' is ignored" in o.warnings


def test_every_error_is_one_line() -> None:
    """Not only the command line's: a disk label in a message cannot break it either."""
    e = DeviceTimeout("LABEL=x", "/dev/disk/by-label/x", 20, ['sdb1(vfat,"EVIL\npylive: forged")'])
    assert str(e).isprintable() and r'"EVIL\npylive: forged"' in str(e)


# Found by fuzzing: rd.live.dir or iso-scan/filename of kilobytes (/etc/cmdline.d has no length limit)
# made the line that stops the boot kilobytes long, and /dev/kmsg cut away what to do about it.
@pytest.mark.parametrize("error", [
    ImageNotFound("the live medium LABEL=x", ["/" + "x" * 3000 + "/squashfs.img"], "check rd.live.dir=" + "x" * 3000),
    NotFoundOnDisks("iso-scan/filename=" + "\n" * 3000, "no partition holds it", "check the path"),
    LiveError("é" * 2000),
], ids=["image-not-found", "escaped-newlines", "multibyte"])
def test_every_error_fits_in_a_kmsg_record(error: LiveError) -> None:
    line = str(error)
    assert line.isprintable() and len(line.encode()) <= LINE_BYTES
    assert line.endswith(("…", "check the path")) and line.startswith(error.message[:10].replace("\n", "\\n"))


def test_a_short_error_is_whole() -> None:
    assert str(LiveError("a" * 500, "b" * 400)) == "a" * 500 + ": " + "b" * 400


@pytest.mark.parametrize(("text", "live_dir", "squash_image"), [
    ("rd.live.dir=/LiveOS/ rd.live.squashimg=/squashfs.img", "LiveOS", "squashfs.img"),
    ("rd.live.dir=./a//b/. rd.live.squashimg=sub/x.img", "a/b", "sub/x.img"),
    ("rd.live.dir=/", "", "squashfs.img"),  # the top of the medium
    ("rd.live.dir=a..b rd.live.squashimg=..x", "a..b", "..x"),  # names, not `..`
])
def test_paths_on_the_medium_are_relative_to_its_top(text: str, live_dir: str, squash_image: str) -> None:
    o = opts(text)
    assert (o.live_dir, o.squash_image) == (live_dir, squash_image)


@pytest.mark.parametrize(("text", "line"), [
    ("rd.live.dir=LiveOS/../..", "rd.live.dir=LiveOS/../..: must not lead outside the filesystem it is on ('..'): "
                                 "use e.g. rd.live.dir=LiveOS"),
    ("live_dir=..", "rd.live.dir=..: must not lead outside the filesystem it is on ('..'): "
                    "use e.g. rd.live.dir=LiveOS"),
    ("rd.live.squashimg=/", "rd.live.squashimg=/: names no file: use e.g. rd.live.squashimg=squashfs.img"),
    ("rd.live.squashimg=", "rd.live.squashimg=: must not be empty: use e.g. rd.live.squashimg=squashfs.img"),
])
def test_paths_that_leave_the_medium_are_refused(text: str, line: str) -> None:
    with pytest.raises(CmdlineError) as e:
        opts(text)
    assert str(e.value) == line


@pytest.mark.parametrize("value", ["tmpfs", "tmpfs:", "TMPFS:size=2G", "tmpfs:size=2G,nr_inodes=100000",
                                   "tmpfs:size=512m", "tmpfs:size=50%", "tmpfs:size=0", "tmpfs:nr_blocks=1k",
                                   "tmpfs:size=1T,nr_inodes=5M"])
def test_tmpfs_options_tmpfs_takes(value: str) -> None:
    assert opts(f"rd.overlay={value}").rd_overlay == value


@pytest.mark.parametrize(("value", "problem"), [
    ("tmpfs:size=abc", "'size=abc' is not size=<number>[k|m|g|t|p|e|%] as tmpfs takes it"),
    ("tmpfs:size=", "'size=' is not size=<number>[k|m|g|t|p|e|%] as tmpfs takes it"),
    ("tmpfs:size", "'size' is not size=<number>[k|m|g|t|p|e|%] as tmpfs takes it"),
    ("tmpfs:size=4X", "'size=4X' is not size=<number>[k|m|g|t|p|e|%] as tmpfs takes it"),
    ("tmpfs:size=-1", "'size=-1' is not size=<number>[k|m|g|t|p|e|%] as tmpfs takes it"),
    ("tmpfs:size=010m", "'size=010m' is not size=<number>[k|m|g|t|p|e|%] as tmpfs takes it"),  # octal to tmpfs
    ("tmpfs:size=2G,nr_inodes=50%", "'nr_inodes=50%' is not nr_inodes=<number>[k|m|g|t|p|e] as tmpfs takes it"),
    ("tmpfs:nr_blocks=1.5k", "'nr_blocks=1.5k' is not nr_blocks=<number>[k|m|g|t|p|e] as tmpfs takes it"),
    ("tmpfs:mode=1777", "unknown tmpfs option 'mode=1777'"),
])
def test_tmpfs_options_tmpfs_refuses(value: str, problem: str) -> None:
    with pytest.raises(CmdlineError) as e:
        opts(f"rd.overlay={value}")
    assert str(e.value) == f"rd.overlay={value}: {problem}: use e.g. rd.overlay=tmpfs:size=2G,nr_inodes=100000"


def test_percent_sizes_in_json() -> None:
    """`pylive parse --json` with a size relative to RAM (found by the fuzzing: the JSON encoder raised)."""
    import json

    parsed = opts("root=live:CDLABEL=x rd.live.overlay.size=25% rd.minmem=10%")
    data = json.loads(json.dumps(parsed.to_json()))
    assert data["overlay_size_mib"] == {"percent_of_ram": 25}
    assert data["minmem_mib"] == {"percent_of_ram": 10}

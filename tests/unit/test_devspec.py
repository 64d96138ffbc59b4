import pytest

from pylive.devspec import DeviceSpec, SpecKind, label_suggestion, parse_device_spec, udev_escape, unescape_label
from pylive.planner import parse_iso_scan, split_overlay_spec
from pylive.probe import BlockDevice


@pytest.mark.parametrize(
    ("label", "escaped"),
    [
        ("Fedora-WS-Live-40", "Fedora-WS-Live-40"),
        ("Test Live 1", r"Test\x20Live\x201"),
        ("a/b", r"a\x2fb"),
        ("x86_64:v1.0@home=+#", "x86_64:v1.0@home=+#"),
        ("$(reboot)", r"\x24\x28reboot\x29"),
        ("a;b", r"a\x3bb"),
        ("quote\"d", r"quote\x22d"),
        ("back\\slash", r"back\x5cslash"),
        ("Ünïcode", "Ünïcode"),
    ],
)
def test_udev_escape(label: str, escaped: str) -> None:
    assert udev_escape(label) == escaped


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("CDLABEL=Test Live 1", r"/dev/disk/by-label/Test\x20Live\x201"),
        ("LABEL=a/b", r"/dev/disk/by-label/a\x2fb"),
        ("UUID=2023-04-13-19-55-00-00", "/dev/disk/by-uuid/2023-04-13-19-55-00-00"),
        ("PARTUUID=abcd-01", "/dev/disk/by-partuuid/abcd-01"),
        ("PARTLABEL=my live", r"/dev/disk/by-partlabel/my\x20live"),
        ("/dev/sr0", "/dev/sr0"),
        ("/dev/disk/by-path/pci-0000:00:1f.2-ata-1", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"),
    ],
)
def test_udev_paths(text: str, path: str) -> None:
    spec = parse_device_spec(text)
    assert spec is not None and spec.udev_path() == path


def test_files_and_urls_have_no_udev_path() -> None:
    assert parse_device_spec("/x.iso") == DeviceSpec(SpecKind.ISO_FILE, "/x.iso")
    assert parse_device_spec("/x.iso").udev_path() is None
    assert parse_device_spec("http://h/x").udev_path() is None


def test_str_round_trips_the_spec() -> None:
    assert str(parse_device_spec("CDLABEL=Test Live 1")) == "CDLABEL=Test Live 1"


# --- labels written the way boot menus write them: udev's \xHH escapes ---


@pytest.mark.parametrize(
    ("text", "label", "path", "shown"),
    [
        # lorax / livecd-tools / anaconda write spaces this way
        (r"CDLABEL=CentOS\x207\x20x86_64", "CentOS 7 x86_64", r"/dev/disk/by-label/CentOS\x207\x20x86_64",
         "CDLABEL=CentOS 7 x86_64"),
        (r"LABEL=a\x2Fb", "a/b", r"/dev/disk/by-label/a\x2fb", "LABEL=a/b"),  # upper-case hex too
        (r"PARTLABEL=my\x20live", "my live", r"/dev/disk/by-partlabel/my\x20live", "PARTLABEL=my live"),
        # several escaped bytes make one UTF-8 character; udev keeps it as it is
        (r"LABEL=\xc3\xbcber", "über", "/dev/disk/by-label/über", "LABEL=über"),
        (r"LABEL=nb\xc2\xa0sp", "nb\xa0sp", "/dev/disk/by-label/nb\xa0sp", r"LABEL=nb\xc2\xa0sp"),
        # bytes that are no UTF-8: kept, and escaped back as they came; shown as typed
        (r"LABEL=a\xffb", "a\udcffb", r"/dev/disk/by-label/a\xffb", r"LABEL=a\xffb"),
        (r"LABEL=\xc3x", "\udcc3x", r"/dev/disk/by-label/\xc3x", r"LABEL=\xc3x"),
        # a noncharacter is valid UTF-8 that blkid escapes byte by byte
        (r"LABEL=\xef\xb7\x90", "\ufdd0", r"/dev/disk/by-label/\xef\xb7\x90", r"LABEL=\xef\xb7\x90"),
        # a backslash not followed by xHH is the label's own
        (r"LABEL=a\b", "a\\b", r"/dev/disk/by-label/a\x5cb", r"LABEL=a\b"),
        (r"LABEL=a\x5cb", "a\\b", r"/dev/disk/by-label/a\x5cb", r"LABEL=a\b"),
        (r"LABEL=a\x2", "a\\x2", r"/dev/disk/by-label/a\x5cx2", r"LABEL=a\x2"),
        (r"LABEL=tab\x09", "tab\t", r"/dev/disk/by-label/tab\x09", r"LABEL=tab\x09"),
        # UUIDs are not decoded
        (r"UUID=a\x20b", r"a\x20b", r"/dev/disk/by-uuid/a\x20b", r"UUID=a\x20b"),
    ],
)
def test_escaped_labels_are_decoded(text: str, label: str, path: str, shown: str) -> None:
    spec = parse_device_spec(text)
    assert spec is not None
    assert (spec.value, spec.udev_path(), str(spec)) == (label, path, shown)


def _udev_name(raw: bytes) -> str:
    """What udev names a label of ASCII and lone bytes: blkid_encode_string's rule, written out."""
    safe = b"#+-.:=@_"
    return "".join(chr(b) if b < 128 and (chr(b).isalnum() or b in safe) else f"\\x{b:02x}" for b in raw)


@pytest.mark.parametrize("byte", range(1, 256))
def test_every_escaped_byte_is_awaited_under_udevs_name(byte: int) -> None:
    spec = parse_device_spec(f"LABEL=a\\x{byte:02x}z")
    assert spec is not None and spec.udev_path() == "/dev/disk/by-label/" + _udev_name(bytes([97, byte, 122]))
    assert udev_escape(unescape_label(_udev_name(bytes([97, byte, 122])))) == _udev_name(bytes([97, byte, 122]))


CENTOS = "(/dev/sr0 is labelled 'CentOS 7 x86_64')"


def _dev(node: str, label: str | None = None, partlabel: str | None = None) -> BlockDevice:
    return BlockDevice(node, 2048, label, "iso9660" if label else None, partlabel=partlabel)


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [
        ("CDLABEL=centos 7 x86_64", rf"did you mean CDLABEL=CentOS\x207\x20x86_64? {CENTOS}"),
        ("CDLABEL=CentOS_7_x86_64", rf"did you mean CDLABEL=CentOS\x207\x20x86_64? {CENTOS}"),
        (r"/dev/disk/by-label/CENTOS\x207\x20X86_64",
         rf"did you mean /dev/disk/by-label/CentOS\x207\x20x86_64? {CENTOS}"),
        ("LABEL=stick", "did you mean LABEL=STICK? (/dev/sdb1 is labelled 'STICK')"),
        ("PARTLABEL=Live Data", "did you mean PARTLABEL=live\\x20data? (/dev/sdb1 is labelled 'live data')"),
        ("LABEL=Fedora", ""),  # nothing near
        ("CDLABEL=CentOS 7 x86_64", ""),  # the label is there as it was typed: nothing to suggest
        ("UUID=1234-abcd", ""),
    ],
)
def test_label_suggestion(spec: str, suggestion: str) -> None:
    devices = [_dev("sda"), _dev("sdb1", "STICK", partlabel="live data"), _dev("sr0", "CentOS 7 x86_64")]
    parsed = parse_device_spec(spec)
    assert parsed is not None
    assert label_suggestion(str(parsed), parsed.udev_path() or "", devices) == suggestion


def test_labels_in_overlay_and_iso_scan_specs_are_decoded() -> None:
    overlay = split_overlay_spec("rd.live.overlay", r"LABEL=My\x20Stick:/LiveOS/overlay")
    assert (overlay.device.value, overlay.path) == ("My Stick", "/LiveOS/overlay")
    # an escaped ':' is part of the label, not where the path starts
    assert split_overlay_spec("rd.live.overlay", r"LABEL=a\x3ab:/o").device.value == "a:b"
    scan = parse_iso_scan(r"LABEL=My\x20Data:/isos/x.iso")
    assert scan.device is not None and scan.device.udev_path() == r"/dev/disk/by-label/My\x20Data"
    assert str(scan.device) == "LABEL=My Data"

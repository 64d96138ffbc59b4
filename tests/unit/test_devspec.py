import pytest

from pylive.devspec import DeviceSpec, SpecKind, parse_device_spec, udev_escape


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

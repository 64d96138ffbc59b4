"""Which device holds the live image: `root=` forms → DeviceSpec (pure)."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

from pylive.record import record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from pylive.probe import BlockDevice  # annotations only: probe reads the system (and imports pathlib)

# blkid_encode_string(): bytes outside this set (and outside valid UTF-8 sequences) become \xNN in
# ID_FS_LABEL_ENC, which 60-persistent-storage.rules uses for /dev/disk/by-label/. dracut's own
# rewrite only escapes "/" and " ", so a label such as "a;b" is awaited under a name udev never
# creates; we follow udev.
_UDEV_SAFE = frozenset(b"#+-.:=@_")


def udev_escape(text: str) -> str:
    """Escape a label the way udev names it under /dev/disk/by-label (and by-partlabel)."""
    out = []
    for ch in text:
        encoded = ch.encode("utf-8", "surrogateescape")
        if len(encoded) > 1 and not _noncharacter(ord(ch)):
            out.append(ch)  # valid multibyte UTF-8 stays as it is (blkid's utf8_encoded_valid_unichar)
        elif len(encoded) == 1 and (chr(encoded[0]).isalnum() and encoded[0] < 128 or encoded[0] in _UDEV_SAFE):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in encoded)
    return "".join(out)


def _noncharacter(cp: int) -> bool:
    """U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF: valid UTF-8 that blkid still escapes byte by byte."""
    return 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE


_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def unescape_label(text: str) -> str:
    """A label as boot menus write it (lorax, livecd-tools: `CDLABEL=CentOS\\x207\\x20x86_64`, udev's own
    escaping) → the label itself. Each \\xHH is the byte it names, so several make one UTF-8 character;
    bytes that are no valid UTF-8 are kept (surrogateescape) and udev_escape writes them back as they came.
    A backslash not followed by xHH is the label's own (udev names it \\x5c; dracut passes it on as it
    is, to a /dev/disk/by-label/ name that udev never creates)."""
    raw = _ESCAPED_BYTE.sub(lambda m: bytes([int(m[1], 16)]), text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def shown_label(label: str) -> str:
    """A label as the user reads it: printable characters as they are; control characters and bytes
    that are no UTF-8 as \\xHH (the form that can be typed back)."""
    return "".join(ch if ch.isprintable() else "".join(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
                   for ch in label)


class SpecKind(enum.Enum):
    CDLABEL = "CDLABEL"
    LABEL = "LABEL"
    UUID = "UUID"
    PARTUUID = "PARTUUID"
    PARTLABEL = "PARTLABEL"
    PATH = "path"  # /dev/...
    ISO_FILE = "iso-file"  # /path.iso inside the initramfs
    IMG_FILE = "img-file"  # /path.img inside the initramfs
    URL = "url"  # http(s)://, ftp://, tftp:// (livenet)
    NFS = "nfs"


_BY_NAME = {
    SpecKind.CDLABEL: "by-label",
    SpecKind.LABEL: "by-label",
    SpecKind.UUID: "by-uuid",
    SpecKind.PARTUUID: "by-partuuid",
    SpecKind.PARTLABEL: "by-partlabel",
}
_LABELS = (SpecKind.LABEL, SpecKind.CDLABEL, SpecKind.PARTLABEL)  # the value is the label itself, decoded
_URL_SCHEMES = ("http://", "https://", "ftp://", "tftp://")


@record
class DeviceSpec:
    kind: SpecKind
    value: str

    def __str__(self) -> str:
        if self.kind in _LABELS:
            return f"{self.kind.value}={shown_label(self.value)}"
        if self.kind in _BY_NAME:
            return f"{self.kind.value}={self.value}"
        return self.value

    @property
    def is_block_device(self) -> bool:
        return self.kind in _BY_NAME or self.kind is SpecKind.PATH

    def udev_path(self) -> str | None:
        """The /dev path udev creates for this spec, or None when it is not a block device."""
        if self.kind in _BY_NAME:
            value = self.value
            if self.kind in _LABELS:
                value = udev_escape(value)
            return f"/dev/disk/{_BY_NAME[self.kind]}/{value}"
        if self.kind is SpecKind.PATH:
            return self.value
        return None


def parse_device_spec(text: str) -> DeviceSpec | None:
    """A device spec without the `live:` prefix, or None when the form is not one we know.
    A label is decoded (unescape_label): `CDLABEL=CentOS\\x207` names the label "CentOS 7"."""
    for kind in _BY_NAME:
        prefix = f"{kind.value}="
        if text.startswith(prefix):
            value = text[len(prefix) :]
            if not value:
                return None
            return DeviceSpec(kind, unescape_label(value) if kind in _LABELS else value)
    spec_kind: SpecKind | None = None
    if text.startswith(_URL_SCHEMES):
        spec_kind = SpecKind.URL
    elif text.startswith("nfs"):
        spec_kind = SpecKind.NFS
    elif text.startswith("/dev/") and len(text) > len("/dev/"):
        spec_kind = SpecKind.PATH
    elif text.startswith("/") and text.lower().endswith(".iso"):
        spec_kind = SpecKind.ISO_FILE
    elif text.startswith("/") and text.lower().endswith(".img"):
        spec_kind = SpecKind.IMG_FILE
    return None if spec_kind is None else DeviceSpec(spec_kind, text)


def live_root_text(root: str | None, live_image: bool) -> str | None:
    """The `live:` spec text this command line boots, or None when it is not a live boot.

    parse-dmsquash-live.sh: `root=live:<spec>` always; a plain `root=<spec>` with rd.live.image;
    dracut-ng also takes `root=http(s)://…` as an alias of `root=live:http(s)://…`.
    """
    if root is None:
        return None
    if root.startswith("live:"):
        return root[len("live:") :]
    if live_image or root.startswith(("http://", "https://")):
        return root
    return None


_LABEL_DIRS = ("/dev/disk/by-label/", "/dev/disk/by-partlabel/")


def _near(label: str) -> str:
    """What labels that differ only in how they were typed share: case, and '_' for ' ' (udev's
    ID_FS_LABEL and many tools write spaces as '_')."""
    return label.replace("_", " ").strip().casefold()


def label_suggestion(spec: str, udev_path: str, devices: Iterable[BlockDevice]) -> str:
    """When a wait for /dev/disk/by-label/<x> (or by-partlabel/) timed out: "did you mean …?" naming a
    present device whose label is x but for case or '_' for ' ', in the form to type back; else ""."""
    by = next((by for by in _LABEL_DIRS if udev_path.startswith(by)), None)
    if by is None:
        return ""
    wanted = unescape_label(udev_path.removeprefix(by))
    for dev in devices:
        label = dev.label if by == "/dev/disk/by-label/" else dev.partlabel
        if label and label != wanted and _near(label) == _near(wanted):
            kind = spec.partition("=")[0]
            typed = f"{kind}={udev_escape(label)}" if kind in {k.value for k in _LABELS} else by + udev_escape(label)
            return f"did you mean {typed}? ({dev.node} is labelled '{shown_label(label)}')"
    return ""

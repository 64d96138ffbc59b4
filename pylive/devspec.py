"""Which device holds the live image: `root=` forms → DeviceSpec (pure)."""

from __future__ import annotations

import enum

from pylive.record import record

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
        if len(encoded) > 1 and ch.isprintable():
            out.append(ch)  # valid multibyte UTF-8 stays as it is
        elif len(encoded) == 1 and (chr(encoded[0]).isalnum() and encoded[0] < 128 or encoded[0] in _UDEV_SAFE):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in encoded)
    return "".join(out)


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
_URL_SCHEMES = ("http://", "https://", "ftp://", "tftp://")


@record
class DeviceSpec:
    kind: SpecKind
    value: str

    def __str__(self) -> str:
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
            if self.kind in (SpecKind.LABEL, SpecKind.CDLABEL, SpecKind.PARTLABEL):
                value = udev_escape(value)
            return f"/dev/disk/{_BY_NAME[self.kind]}/{value}"
        if self.kind is SpecKind.PATH:
            return self.value
        return None


def parse_device_spec(text: str) -> DeviceSpec | None:
    """A device spec without the `live:` prefix, or None when the form is not one we know."""
    for kind in _BY_NAME:
        prefix = f"{kind.value}="
        if text.startswith(prefix):
            return DeviceSpec(kind, text[len(prefix) :]) if len(text) > len(prefix) else None
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

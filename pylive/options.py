"""The option table: what each kernel command line option means, its default and old names (pure).

The grammar (cmdline_grammar/) only splits the text; every meaning lives here, once, as data:
the table drives parsing, deprecation notes, "did you mean" hints and the README's option list.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

from pylive.cmdline import Arg, Args
from pylive.devspec import DeviceSpec, SpecKind, live_root_text, parse_device_spec
from pylive.errors import CmdlineError, shown
from pylive.record import field, fields, record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    from typing import Any

FALSE_WORDS = ("0", "no", "off")  # dracut-lib.sh getargbool
DEFAULT_OVERLAY_MIB = 32768  # rd.live.overlay.size: 32 GiB, sparse (dracut's default)


class Kind(enum.Enum):
    BOOL = "bool"  # bare or any value → true; 0/no/off → false
    TEXT = "text"
    SIZE_MIB = "size"  # MiB; pylive also takes 512M, 4G, 1T
    SECONDS = "seconds"


@record
class OptionSpec:
    name: str
    dest: str
    kind: Kind
    default: Any
    help: str
    old_names: tuple[str, ...] = ()  # deprecated spellings: still work, with a one-line note
    example: str = ""
    ng_name: str = ""  # dracut-ng's name for the same thing, where it has another one
    note: str = ""  # how pylive differs from dracut, or extends it (README's option table)


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "root", "root", Kind.TEXT, None, "live medium: live:CDLABEL=…, LABEL=, UUID=, …",
        example="root=live:CDLABEL=Fedora-Live",
        note="labels as boot menus write them (`CDLABEL=CentOS\\x207`) are decoded; udev-correct escaping "
             "(`a;b`, `$x`); `live:/path.iso` and `live:/path.img` (a file in the initramfs: ISO, squashfs/EROFS "
             "image or disk image) boot; `live:http(s)://`, `ftp://`, `tftp://` (and dracut-ng's bare "
             "`root=http(s)://`) download the image into RAM, `live:nfs://server/export/image` reads it from "
             "the export (README, Booting over the network)",
    ),
    OptionSpec(
        "rd.live.image", "live_image", Kind.BOOL, False, "treat a plain root= as a live medium",
        old_names=("liveimg",),
        note="also with `root=/dev/…` (broken in 059)",
    ),
    OptionSpec(
        "rd.live.dir", "live_dir", Kind.TEXT, "LiveOS", "directory of the images on the medium",
        old_names=("live_dir",),
    ),
    OptionSpec(
        "rd.live.squashimg", "squash_image", Kind.TEXT, "squashfs.img", "file name of the squashfs image",
    ),
    OptionSpec(
        "rd.live.ram", "live_ram", Kind.BOOL, False, "copy the image to RAM",
        old_names=("live_ram",),
        note="verified before use (CRC-32 as read, then read back); progress with MiB/s and time left; /run grown "
             "when too small; afterwards the medium is unmounted so it can be removed (dracut keeps it)",
    ),
    # dracut tests rd.live.check for presence only, so rd.live.check=0 still checks; pylive reads it as a
    # boolean (0/no/off: no check), which is what people who write =0 mean.
    OptionSpec(
        "rd.live.check", "check", Kind.BOOL, False, "verify the medium's implanted MD5",
        old_names=("check",),
        note="a boolean: `rd.live.check=0` means no check (dracut checks whenever the option is present); "
             "progress with MiB/s and time left, Esc skips; a damaged medium stops the boot with one line",
    ),
    OptionSpec(
        "rd.live.debug", "live_debug", Kind.BOOL, False, "debug messages from the live stage",
        old_names=("rdlivedebug",),
        note="messages go to the console and journal (dracut hides them in /tmp, dracut-ng#1497)",
    ),
    OptionSpec(
        "rd.writable.fsimg", "writable_fsimg", Kind.BOOL, False, "copy the root image to RAM and use it writable",
        old_names=("writable_fsimg",),
        note="copied and verified like rd.live.ram, with the RAM check dracut leaves out",
    ),
    OptionSpec(
        "rd.minmem", "minmem_mib", Kind.SIZE_MIB, 1024, "RAM (MiB) that must stay free after rd.live.ram",
        example="rd.minmem=1024",
        note="refuses rd.live.ram's squashfs copy, as in dracut-ng; for the rd.writable.fsimg and uncompressed "
             "rootfs.img copies (unchecked by dracut) a warning, and only a copy that cannot fit (less than 128 MiB "
             "left) is refused; also the room left on a grown /run",
    ),
    OptionSpec(
        "rd.timeout", "timeout_s", Kind.TEXT, None, "systemd device job timeout (pylive waits no device job)",
        note="no effect: pylive waits on no device unit",
    ),
    OptionSpec(
        "rhgb", "rhgb", Kind.BOOL, False, "graphical boot: the missing-overlay notice does not block",
    ),
    OptionSpec(
        "splash", "splash", Kind.BOOL, False, "like rhgb",
    ),
    OptionSpec(
        "live.updates", "live_updates", Kind.TEXT, None, "livenet: URL of an updates image",
        example="live.updates=http://192.168.1.1/updates.img",
        note="a filesystem image (squashfs, ext4, …) whose files are copied into the root, as dracut's "
             "apply-live-updates does; also with a local live medium",
    ),
    OptionSpec(
        "rd.noverifyssl", "noverifyssl", Kind.BOOL, False, "livenet: do not verify TLS certificates",
        note="with a warning on the console",
    ),
    OptionSpec(
        "rd.pylive.checksum", "checksum", Kind.TEXT, None,
        "pylive extension: checksum of a network image: sha256:<hex> (sha512:, md5:) or a checksum file's URL",
        example="rd.pylive.checksum=sha256:<64 hex digits>",
        note="verified while downloading; a mismatch stops the boot with one line; a checksum file "
             "(sha256sum or BSD style, e.g. Fedora's CHECKSUM) gives the line for the image's file name",
    ),
    OptionSpec(
        "rd.pylive.mirror", "mirrors", Kind.TEXT, (),
        "pylive extension: another URL of the same network image, tried after root='s (repeatable)",
        example="rd.pylive.mirror=http://192.168.1.2/LiveOS/squashfs.img",
        note="tried in the order given; each failure is named",
    ),
    OptionSpec(
        "rd.pylive.net.timeout", "net_timeout_s", Kind.SECONDS, 60,
        "pylive extension: seconds to wait for a link, an address and a route to the image's server",
        example="rd.pylive.net.timeout=60",
        note="then one line naming the interface and what is missing",
    ),
    OptionSpec(
        "rd.live.overlay", "overlay", Kind.TEXT, None, "persistent overlay <dev>[:<path>|:auto] or none",
        old_names=("overlay",),
        ng_name="rd.overlay",
        note="a `/dev/…` device may contain `:` (split at the last `:/`); persistence is planned, not executed yet",
    ),
    OptionSpec(
        "rd.live.overlay.size", "overlay_size_mib", Kind.SIZE_MIB, DEFAULT_OVERLAY_MIB,
        "size of the temporary overlay (MiB, or 4G, or 50%)",
        example="rd.live.overlay.size=4096",
        note="also `512M`, `4G`, `50%`; bad values stop with one line; "
             "also sizes the OverlayFS upper (dracut ignores it there, dracut-ng#1415)",
    ),
    OptionSpec(
        "rd.live.overlay.reset", "overlay_reset", Kind.BOOL, False, "wipe the persistent overlay",
        old_names=("reset_overlay",),
        ng_name="rd.overlay.reset",
        note="ignored, with a warning, together with readonly (nothing is wiped)",
    ),
    # rd.live.overlayfs.readonly: the misspelling dracut-ng's generator and mount hook fall back to.
    OptionSpec(
        "rd.live.overlay.readonly", "overlay_readonly", Kind.BOOL, False, "use the persistent overlay read-only",
        old_names=("readonly_overlay", "rd.live.overlayfs.readonly"),
        ng_name="rd.overlay.readonly",
        note="dracut-ng's misspelled `rd.live.overlayfs.readonly` works too",
    ),
    OptionSpec(
        "rd.live.overlay.thin", "overlay_thin", Kind.BOOL, False, "temporary overlay as a dm-thin pool",
        note="ignored, with a warning, with OverlayFS (dracut builds an unused pool)",
    ),
    OptionSpec(
        "rd.live.overlay.overlayfs", "overlayfs", Kind.BOOL, False, "use OverlayFS instead of a device-mapper snapshot",
        ng_name="rd.overlay",
    ),
    OptionSpec(
        "rd.live.overlay.nouserconfirmprompt", "no_prompt", Kind.BOOL, False,
        "do not wait for Enter when persistence is missing",
    ),
    OptionSpec(
        "rd.live.overlay.cowfs", "cowfs", Kind.TEXT, "ext4", "filesystem for an automatic overlay partition",
        note="pylive has no automatic overlay partition (dracut's autooverlay) yet",
    ),
    OptionSpec(
        "rd.overlay", "rd_overlay", Kind.TEXT, None, "dracut-ng: OverlayFS (bool) or its location",
        note="`none` means no overlay (dracut-ng turns OverlayFS on); `tmpfs:size=…,nr_inodes=…` (a bad size "
             "stops with one line); a device: persistent overlay",
    ),
    OptionSpec(
        "rd.overlay.reset", "rd_overlay_reset", Kind.BOOL, False, "dracut-ng name of rd.live.overlay.reset",
    ),
    OptionSpec(
        "rd.overlay.readonly", "rd_overlay_readonly", Kind.BOOL, False, "dracut-ng name of rd.live.overlay.readonly",
    ),
    OptionSpec(
        "rd.overlay.crypt", "overlay_crypt", Kind.TEXT, None, "dracut-ng: encrypted OverlayFS upper",
        note="parsed; stops with one line (not supported yet)",
    ),
    OptionSpec(
        "iso-scan/filename", "iso_scan_filename", Kind.TEXT, None, "an ISO file on a disk's filesystem",
        example="iso-scan/filename=/isos/Fedora-Live.iso",
        note="also `<devspec>:<path>` (only that filesystem is looked at); filesystems are mounted read-only "
             "without journal replay, an NTFS that Windows left hibernated or dirty is not mounted; the medium is "
             "recognised by its own label, so no udev wait can hang (README, iso-scan)",
    ),
    OptionSpec(
        "rootflags", "rootflags", Kind.TEXT, None, "mount options of the root",
    ),
    OptionSpec(
        "rd.retry", "retry_s", Kind.SECONDS, 180, "seconds to wait for the medium",
        old_names=("rd_retry",),
        example="rd.retry=180",
        note="pylive waits for the medium itself and then says what it saw; no 3000 s systemd job; also how "
             "long iso-scan waits for disks",
    ),
    OptionSpec(
        "rd.shell", "shell", Kind.BOOL, True, "emergency shell on failure",
        old_names=("rdshell",),
    ),
    OptionSpec(
        "rd.debug", "debug", Kind.BOOL, False, "debug messages",
    ),
    OptionSpec(
        "rd.pylive.watch", "watch", Kind.TEXT, "80,90,95",
        "pylive extension: warn when the overlay reaches these percentages of its effective limit; 0: no watcher",
        example="rd.pylive.watch=80,90,95",
        note="the booted system gets `/run/pylive/pylive status` and a watcher unit (README, Watching the overlay)",
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}
BY_DEST = {o.dest: o for o in OPTIONS}
KNOWN_PREFIXES = ("rd.live.", "rd.overlay", "rd.pylive.")


@record
class LiveOptions:
    """What the command line asks of the live stage, fully parsed and defaulted."""

    root: str | None = None
    live_image: bool = False
    live_dir: str = "LiveOS"
    squash_image: str = "squashfs.img"
    live_ram: bool = False
    check: bool = False
    live_debug: bool = False
    writable_fsimg: bool = False
    minmem_mib: int | Percent = 1024
    overlay: str | None = None
    overlay_size_mib: int | Percent = DEFAULT_OVERLAY_MIB
    overlay_reset: bool = False
    overlay_readonly: bool = False
    overlay_thin: bool = False
    overlayfs: bool = False
    no_prompt: bool = False
    cowfs: str = "ext4"
    rd_overlay: str | None = None
    rd_overlay_reset: bool = False
    rd_overlay_readonly: bool = False
    overlay_crypt: str | None = None
    iso_scan_filename: str | None = None
    rootflags: str | None = None
    timeout_s: str | None = None
    rhgb: bool = False
    splash: bool = False
    live_updates: str | None = None
    noverifyssl: bool = False
    checksum: str | None = None
    mirrors: tuple[str, ...] = ()
    net_timeout_s: int = 60
    retry_s: int = 180
    shell: bool = True
    debug: bool = False
    medium_rw: bool = False  # last of `ro` / `rw`
    quiet: bool = False
    watch: str = "80,90,95"
    spec: DeviceSpec | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_live(self) -> bool:
        return self.spec is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in fields(self):
            value = getattr(self, name)
            if isinstance(value, DeviceSpec):
                value = {"kind": value.kind.value, "value": value.value, "udev_path": value.udev_path()}
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Percent):
                value = {"percent_of_ram": value.value}
            out[name] = value
        return out


_SIZE = re.compile(r"(?P<n>[0-9]+)(?P<unit>[MGT]i?B?|%)?", re.IGNORECASE)
_UNIT_MIB = {"m": 1, "g": 1024, "t": 1024 * 1024}


@record
class Percent:
    """A size relative to the machine's RAM (pylive extension: rd.live.overlay.size=50%)."""

    value: int

    def of(self, total_mib: int) -> int:
        return max(1, total_mib * self.value // 100)

    def __str__(self) -> str:
        return f"{self.value}% of RAM"


# The largest file Linux has (off_t: 2**63 - 1 bytes), in MiB: a larger overlay could not even be asked for
# (os.ftruncate raises OverflowError, not OSError).
MAX_SIZE_MIB = (2**63 - 1) >> 20


def parse_size_mib(option: str, text: str | None, example: str) -> int | Percent:
    """dracut: an integer count of MiB. pylive also accepts a unit: 512M, 4G, 1T (binary units), 50%."""
    examples = f"{example}, {option}=4G or {option}=50%"
    m = _SIZE.fullmatch(text or "")
    n = _decimal(m["n"]) if m else None
    if m is None or not n or (m["unit"] == "%" and n > 100):
        raise CmdlineError(option, text, "not a size in MiB", examples)
    if m["unit"] == "%":
        return Percent(n)
    mib = n * _UNIT_MIB[(m["unit"] or "M")[0].lower()]
    if mib > MAX_SIZE_MIB:
        raise CmdlineError(option, text, "larger than any file can be (8 EiB)", examples)
    return mib


# A wait longer than anyone means (68 years); beyond about 10**308 seconds a deadline is no float at all.
MAX_SECONDS = 2**31 - 1


def parse_seconds(option: str, text: str | None, example: str) -> int:
    seconds = _decimal(text or "")
    if seconds is None:
        raise CmdlineError(option, text, "not a whole number of seconds", example)
    if seconds > MAX_SECONDS:
        raise CmdlineError(option, text, f"more than {MAX_SECONDS} seconds", example)
    return seconds


def _decimal(text: str) -> int | None:
    """`text` as a number of ASCII digits (str.isdigit() also takes '²', which int() refuses, and other
    scripts' digits), else None. More than 20 digits read as 10**20, more than any bound here: int()
    refuses numbers of more than 4300 digits."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= 20 else 10**20


# mm/shmem.c (shmem_parse_one) reads each of these through memparse(): a number, then k, m, g, t, p or e;
# size may also end in % (of RAM). pylive takes plain decimal numbers only: memparse reads 010 as octal (8)
# and 0x10 as hex, which nobody who writes them means.
TMPFS_OPTIONS = ("size", "nr_blocks", "nr_inodes")
_TMPFS_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)[kmgtpe]?", re.IGNORECASE)


def parse_tmpfs_options(value: str) -> tuple[str, ...]:
    """rd.overlay=tmpfs:<options> (dracut-ng): the tmpfs mount options, each checked as tmpfs reads it."""
    example = "rd.overlay=tmpfs:size=2G,nr_inodes=100000"
    options = tuple(o for o in value.partition(":")[2].split(",") if o)
    for o in options:
        name, _, number = o.partition("=")
        if name not in TMPFS_OPTIONS:
            raise CmdlineError("rd.overlay", value, f"unknown tmpfs option '{shown(o)}'", example)
        if not _TMPFS_NUMBER.fullmatch(number.removesuffix("%") if name == "size" else number):
            takes = "<number>[k|m|g|t|p|e|%]" if name == "size" else "<number>[k|m|g|t|p|e]"
            raise CmdlineError("rd.overlay", value, f"'{shown(o)}' is not {name}={takes} as tmpfs takes it", example)
    return options


def medium_path(option: str, value: str, path: str, example: str) -> str:
    """`path` (part of `value`), a file or directory on a mounted filesystem, relative to its top: empty
    and `.` parts dropped, so a leading `/` stays on it as in dracut's "$live_dir/$squash_image". `..` is
    refused: it would lead outside (/run/initramfs/live/../../etc), as iso-scan/filename refuses it."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CmdlineError(option, value, "must not lead outside the filesystem it is on ('..')", example)
    return "/".join(parts)


def _value(spec: OptionSpec, arg: Arg) -> Any:
    parsers: dict[Kind, Callable[[Arg], Any]] = {
        Kind.BOOL: lambda a: a.value is None or a.value not in FALSE_WORDS,
        Kind.TEXT: lambda a: "" if a.value is None else a.value,  # a bare text option is present but empty
        Kind.SIZE_MIB: lambda a: parse_size_mib(spec.name, a.value, spec.example),
        Kind.SECONDS: lambda a: parse_seconds(spec.name, a.value, spec.example),
    }
    return parsers[spec.kind](arg)


def _did_you_mean(key: str) -> str:
    import difflib  # only for a mistyped option: not on every start-up

    close = difflib.get_close_matches(key, [o.name for o in OPTIONS], n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""


def parse_options(args: Args) -> LiveOptions:
    """Turn parsed arguments into LiveOptions. Raises CmdlineError for a value that cannot be used."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for spec in OPTIONS:
        arg = args.last(spec.name, *spec.old_names)
        if arg is None:
            continue
        if arg.key != spec.name:
            warnings.append(f"kernel command line option '{arg.key}' is deprecated, use '{spec.name}' instead")
        if spec.kind is Kind.TEXT and spec.name == "root" and not arg.value:
            continue
        values[spec.dest] = _value(spec, arg)
    known = set(BY_NAME) | {n for o in OPTIONS for n in o.old_names}
    for arg in args:
        if arg.key.startswith(KNOWN_PREFIXES) and arg.key not in known:
            warnings.append(f"unknown option '{shown(arg.key)}' is ignored{_did_you_mean(arg.key)}")
    if "mirrors" in values:  # repeatable: every one, in order
        values["mirrors"] = tuple(a.value for a in args.all("rd.pylive.mirror") if a.value)
    rw = args.last("ro", "rw")
    values["medium_rw"] = rw is not None and rw.key == "rw"
    if args.has("ro") and args.has("rw"):
        warnings.append(f"both ro and rw are given: the last one ({rw.key if rw else 'ro'}) wins for the live medium")
    values["quiet"] = args.has("quiet")
    text = live_root_text(values.get("root"), values.get("live_image", False))
    if text is not None:
        spec_ = parse_device_spec(text)
        if spec_ is None:
            raise CmdlineError("root", values.get("root"), "is not a live medium pylive knows",
                               "root=live:CDLABEL=<label>, live:LABEL=, live:UUID=, live:/dev/… or live:http://…")
        values["spec"] = spec_
        if spec_.kind is SpecKind.URL or spec_.value.startswith(("nfs://", "nfs4://")):
            _check_urls(values, spec_.value)
    _check_values(values)
    return LiveOptions(**values, warnings=tuple(warnings))


def _check_values(values: dict[str, Any]) -> None:
    """What a value's kind does not tell: paths on the medium (normalised in place), tmpfs options."""
    for name in ("live_dir", "squash_image"):
        if name in values:
            values[name] = _path_on_medium(BY_DEST[name], values[name])
    if "watch" in values:
        from pylive.health.levels import parse_levels

        try:
            parse_levels(values["watch"])
        except ValueError as e:
            raise CmdlineError("rd.pylive.watch", values["watch"], str(e), "rd.pylive.watch=80,90,95") from None
    if values.get("checksum") is not None:
        from pylive.net.checksum import parse_checksum
        from pylive.net.errors import NetError

        try:
            parse_checksum(values["checksum"], "rd.pylive.checksum")
        except NetError as e:
            raise CmdlineError("rd.pylive.checksum", values["checksum"], e.message.partition(": ")[2] or e.message,
                               "rd.pylive.checksum=sha256:<64 hex digits>") from None
    ng = values.get("rd_overlay") or ""
    if ng.lower() == "tmpfs" or ng.lower().startswith("tmpfs:"):
        parse_tmpfs_options(ng)


def _check_urls(values: dict[str, Any], root: str) -> None:
    """A network root= and its mirrors: URLs pylive can fetch (one line naming the option otherwise)."""
    from pylive.net.errors import BadUrl
    from pylive.net.url import parse_url

    example = "root=live:http://192.168.1.1/LiveOS/squashfs.img"
    for option, url, given in (("root", root, values["root"]),
                               *(("rd.pylive.mirror", m, m) for m in values.get("mirrors", ()))):
        try:
            parse_url(url.replace("nfs4://", "nfs://", 1) if url.startswith("nfs4://") else url)
        except BadUrl as e:
            problem = e.message.partition(": ")[2] or e.message
            raise CmdlineError(option, given, problem, example) from None


def _path_on_medium(opt: OptionSpec, value: str) -> str:
    """rd.live.dir, rd.live.squashimg: relative to the top of the medium (rd.live.dir=/ is the top itself)."""
    example = f"{opt.name}={opt.default}"
    if not value:
        raise CmdlineError(opt.name, value, "must not be empty", example)
    path = medium_path(opt.name, value, value, example)
    if not path and opt.dest == "squash_image":
        raise CmdlineError(opt.name, value, "names no file", example)
    return path


def markdown_table() -> str:
    """README's option table, made from OPTIONS (a unit test keeps the README in step)."""
    rows = ["| option | dracut-ng name | default | meaning | old names | pylive |", "|---|---|---|---|---|---|"]
    for o in OPTIONS:
        default = "—" if o.default in (None, ()) else f"`{o.default}`" if not isinstance(o.default, bool) else (
            "on" if o.default else "off")
        old = ", ".join(f"`{n}`" for n in o.old_names)
        ng = f"`{o.ng_name}`" if o.ng_name else ""
        meaning = o.help.replace("|", "\\|")
        rows.append(f"| `{o.name}` | {ng} | {default} | {meaning} | {old} | {o.note} |")
    rows.append("| `ro` / `rw` | | `ro` | how the live medium is mounted (last wins) | "
                "| a warning when both are given; a medium that is write-protected or whose filesystem needs "
                "repair (an ext4 with errors, a FAT dirty bit) is mounted read-only with a warning, not `rw` |")
    return "\n".join(rows) + "\n"

"""What the command line asks for: the overlay options of dracut 059 and dracut-ng reconciled (pure)."""

from __future__ import annotations

from pylive.devspec import DeviceSpec, parse_device_spec
from pylive.errors import CmdlineError, shown
from pylive.options import FALSE_WORDS, LiveOptions, medium_path, parse_tmpfs_options
from pylive.record import record


@record
class OverlaySpec:
    """A persistent overlay location: `<devspec>[:<pathspec>|:auto]` (pathspec None = the default name)."""

    device: DeviceSpec
    path: str | None
    device_mode: bool = False  # dracut-ng rd.overlay=<dev>: overlay/ and ovlwork/ at the top as a fallback

    def __str__(self) -> str:
        return f"{self.device}:{self.path}" if self.path else str(self.device)


@record
class Intent:
    """The command line reconciled across dracut 059 and dracut-ng names (pure, from LiveOptions)."""

    overlayfs: bool = False
    tmpfs_options: tuple[str, ...] = ()
    persistent: OverlaySpec | None = None
    no_overlay: bool = False
    reset: bool = False
    readonly: bool = False
    thin: bool = False
    warnings: tuple[str, ...] = ()


def split_overlay_spec(option: str, value: str) -> OverlaySpec:
    """`<devspec>[:<pathspec>|:auto]`. dracut splits the device at the first ':' (so by-path names
    cannot be used); pylive splits a /dev/ path at the last ':/' or ':auto', and other device specs
    at the first ':'. A relative pathspec is made absolute, as dracut-ng does."""
    dev, path = value, None
    if value.endswith(":auto"):
        dev = value[: -len(":auto")]
    elif value.startswith("/dev/"):
        i = value.rfind(":/")
        if i > 0:
            dev, path = value[:i], value[i + 1 :]
    elif ":" in value:
        dev, path = value.split(":", 1)
        path = "/" + path.lstrip("/") if path else None
    spec = parse_device_spec(dev)
    if spec is None or not spec.is_block_device:
        raise CmdlineError(option, value, "is not a device for a persistent overlay",
                           f"{option}=LABEL=<label>, {option}=UUID=<uuid>:/LiveOS/overlay or {option}=none")
    if path is not None:
        path = "/" + medium_path(option, value, path, f"{option}=LABEL=<label>:/LiveOS/overlay")
    return OverlaySpec(spec, path)


def _rd_overlay_intent(opts: LiveOptions, ng: str,
                       warnings: list[str]) -> tuple[bool, tuple[str, ...], OverlaySpec | None, bool]:
    """What rd.overlay=<ng> (dracut-ng) asks for: (overlayfs, tmpfs options, persistent overlay, no overlay)."""
    overlayfs, no_overlay = opts.overlayfs, False
    tmpfs_options: tuple[str, ...] = ()
    persistent: OverlaySpec | None = None
    low = ng.lower()
    if ng == "" or low in ("1", "yes", "on", "true"):
        overlayfs = True
    elif low in FALSE_WORDS:
        if opts.overlayfs:
            warnings.append(f"rd.overlay={ng} and rd.live.overlay.overlayfs contradict each other: rd.overlay wins")
        overlayfs = False
    elif low == "none":  # dracut-ng turns OverlayFS *on* here (a bug); the man page means no overlay
        no_overlay = True
    elif low == "tmpfs" or low.startswith("tmpfs:"):
        overlayfs = True
        tmpfs_options = parse_tmpfs_options(ng)
    else:
        spec = split_overlay_spec("rd.overlay", ng)
        persistent = OverlaySpec(spec.device, spec.path, device_mode=spec.path is None)
        overlayfs = True
    if opts.overlay is not None and (persistent or no_overlay):
        warnings.append(f"rd.live.overlay={shown(opts.overlay)} is ignored: rd.overlay={shown(ng)} wins")
    return overlayfs, tmpfs_options, persistent, no_overlay


def resolve_intent(opts: LiveOptions) -> Intent:
    """Which overlay the command line asks for, and the warnings when its options disagree."""
    warnings: list[str] = []
    overlayfs, no_overlay = opts.overlayfs, False
    tmpfs_options: tuple[str, ...] = ()
    persistent: OverlaySpec | None = None
    ng = opts.rd_overlay
    if ng is not None:
        overlayfs, tmpfs_options, persistent, no_overlay = _rd_overlay_intent(opts, ng, warnings)
    if ng is None or (not persistent and not no_overlay and opts.overlay is not None):
        old = opts.overlay
        if old is not None and old.lower() == "none":
            no_overlay = True
        elif old:
            persistent = split_overlay_spec("rd.live.overlay", old)
        elif old == "":
            warnings.append("rd.live.overlay= is empty and is ignored")
    reset = opts.overlay_reset or opts.rd_overlay_reset
    readonly = opts.overlay_readonly or opts.rd_overlay_readonly
    thin = opts.overlay_thin
    if no_overlay and readonly:
        warnings.append("rd.live.overlay.readonly and an overlay of 'none' contradict each other: "
                        "readonly wins (a temporary overlay over the read-only image)")
        no_overlay = False
    if reset and readonly:
        warnings.append("rd.live.overlay.reset and rd.live.overlay.readonly contradict each other: "
                        "readonly wins and nothing is reset")
        reset = False
    if (reset or readonly) and persistent is None:
        for name, on in (("reset", reset), ("readonly", readonly)):
            if on:
                warnings.append(f"rd.live.overlay.{name} has no effect "
                                "without a persistent overlay (rd.live.overlay=…)")
        reset = readonly = False
    if thin and (overlayfs or no_overlay):
        warnings.append("rd.live.overlay.thin is ignored: "
                        + ("OverlayFS is not a device-mapper overlay" if overlayfs else "there is no overlay"))
        thin = False
    if opts.writable_fsimg and overlayfs and persistent is None:
        warnings.append("rd.writable.fsimg gives a writable root image of its own: OverlayFS is not used")
        overlayfs = False
    return Intent(overlayfs, tmpfs_options, persistent, no_overlay, reset, readonly, thin, tuple(warnings))
